//! Black-box tests of `reset-ftrace`, and of the stale sweep that every
//! tool does at its start. The sweep is tested alone: every tool sweeps the leftovers of
//! dead runs when it starts, so a SIGKILLed run's instance survives only
//! while no other tool starts. In a file of its own this test runs with
//! no other test of ours beside it (cargo runs test executables one at a
//! time), and its tests take turns. A sweep by a run of someone else's is
//! still possible; the killed run is then made again.
mod support;

use std::time::Duration;
use support::{run, ToolRun, Workload};

const EV: &str = "syscalls:sys_enter_getppid";

/// The tests of this file take turns: each one's tool runs would sweep
/// the other's killed run.
static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn sigkill_leftovers_are_swept_but_live_runs_never_are() {
    require_tracing!(SyscallTracepoints, Instances);
    let _turn = turn();
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
    assert_eq!(f.count(": sys_getppid()"), 1000, "{}", f.stderr);
    support::assert_nothing_left(f.pid);
}

/// A SIGKILLed uprobe run leaves its probe in uprobe_events (and its
/// instance); the next run of any tool removes both.
#[test]
fn a_killed_runs_probes_are_removed_by_the_next_run() {
    require_tracing!(UprobeEvents, Instances);
    let _turn = turn();
    let probe = format!("p:{}:ftt_probe_target", support::workload_bin().display());
    for _ in 0..3 {
        let mut killed = ToolRun::start("uprobe", &[&probe]);
        killed.wait_ready();
        killed.signal(libc::SIGKILL);
        let k = killed.finish(Duration::from_secs(10));
        let left = support::leftovers_of(k.pid);
        if left.is_empty() {
            eprintln!("PID {}'s leftovers were swept by another run", k.pid);
            continue;
        }
        assert!(
            left.iter()
                .any(|l| l.starts_with("uprobe_events: ftrace_tools_")),
            "{left:?}"
        );
        assert!(left.iter().any(|l| l.starts_with("instance ")), "{left:?}");
        // The same probe again: the sweep comes first, so the new run
        // neither collides with the old probe nor leaves it.
        let mut w = Workload::waiting(&["call", "100"]);
        let pid = w.pid().to_string();
        let mut t = ToolRun::start("uprobe", &["-p", &pid, &probe]);
        t.wait_ready();
        support::assert_nothing_left(k.pid);
        w.go();
        assert_eq!(w.wait(), 100);
        let f = t.stop();
        assert_eq!(f.count(": (0x"), 100, "{}", f.stderr);
        support::assert_nothing_left(f.pid);
        return;
    }
    panic!("three killed runs were all swept by others before the next run");
}
