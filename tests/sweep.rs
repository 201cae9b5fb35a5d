//! The stale sweep, tested alone: every tool sweeps the leftovers of
//! dead runs when it starts, so a SIGKILLed run's instance survives only
//! while no other tool starts. In a file of its own this test runs with
//! no other test of ours beside it (cargo runs test executables one at a
//! time). A sweep by a run of someone else's is still possible; the
//! killed run is then made again.
mod support;

use std::time::Duration;
use support::{run, ToolRun, Workload};

const EV: &str = "syscalls:sys_enter_getppid";

#[test]
fn sigkill_leftovers_are_swept_but_live_runs_never_are() {
    require_tracing!(SyscallTracepoints, Instances);
    // A live run that must survive the sweeps below.
    let mut live_w = Workload::waiting(&["getppid", "1000"]);
    let live_pid = live_w.pid().to_string();
    let mut live = ToolRun::start("tpoint", &["-p", &live_pid, EV]);
    live.wait_ready();

    // A run killed with SIGKILL leaves its instance behind, which
    // `reset-ftrace -n` only lists and `reset-ftrace` removes. Should a
    // run of someone else's sweep it first, the step is tried again.
    let mut k = None;
    for _ in 0..3 {
        let mut killed = ToolRun::start("tpoint", &["-L", "1", EV]);
        killed.wait_ready();
        killed.signal(libc::SIGKILL);
        let f = killed.finish(Duration::from_secs(10));
        if support::leftovers_of(f.pid).is_empty() {
            eprintln!("PID {}'s leftovers were swept by another run", f.pid);
            continue;
        }
        let dry = run("reset-ftrace", &["-n"]);
        assert_eq!(dry.code(), 0, "{}", dry.stderr);
        let left = support::leftovers_of(f.pid);
        if left.is_empty() {
            eprintln!("PID {}'s leftovers were swept by another run", f.pid);
            continue;
        }
        assert!(
            dry.stdout.contains(&format!("-{}-", f.pid)),
            "reset-ftrace -n does not list {left:?}: {}",
            dry.stdout
        );
        let r = run("reset-ftrace", &[]);
        assert_eq!(r.code(), 0, "{}", r.stderr);
        k = Some(f);
        break;
    }
    let k = k.expect("three killed runs were all swept by others before reset-ftrace");
    support::assert_nothing_left(k.pid);
    assert!(
        !support::leftovers_of(live.pid()).is_empty(),
        "the live run was swept"
    );

    // Another kill, swept this time by the next tool run at its start.
    let mut killed = ToolRun::start("tpoint", &["-L", "1", EV]);
    killed.wait_ready();
    killed.signal(libc::SIGKILL);
    let k = killed.finish(Duration::from_secs(10));
    let f = run("tpoint", &["-d", "0.2", "-L", "1", EV]);
    assert_eq!(f.code(), 0, "{}", f.stderr);
    support::assert_nothing_left(k.pid);

    // The live run still counts exactly.
    live_w.go();
    assert_eq!(live_w.wait(), 1000);
    let f = live.stop();
    assert_eq!(f.count("sys_enter_getppid:"), 1000, "{}", f.stderr);
    support::assert_nothing_left(f.pid);
}
