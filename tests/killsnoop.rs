//! Black-box tests of `killsnoop`, run against the real kernel (the host
//! and every guest): a workload sends known signals through kill, tkill,
//! tgkill and pidfd_send_signal, and known failing kills; every call must
//! be shown once, with its signal, target and result.
mod support;

use std::time::Duration;
use support::{Finished, ToolRun, Workload};

/// Signals the workload sends (each its own number) and kills that fail.
const N: u64 = 20;
const FAIL: u64 = 5;
/// The PID the failing kills aim at (no process has it).
const NOBODY: &str = "2147483632";

/// Runs `killsnoop ARGS -p WORKLOAD` around `ftt-workload signals N FAIL`.
fn snoop(args: &[&str]) -> (Finished, u32) {
    let mut w = Workload::waiting(&["signals", &N.to_string(), &FAIL.to_string()]);
    let pid = w.pid();
    let ps = pid.to_string();
    let mut a = args.to_vec();
    a.extend(["-p", &ps]);
    let mut t = ToolRun::start("killsnoop", &a);
    t.wait_ready();
    w.go();
    assert_eq!(w.wait(), N + FAIL);
    let f = t.finish(Duration::from_secs(120));
    assert_eq!(f.code(), 0, "{}", f.stderr);
    support::assert_nothing_left(f.pid);
    (f, pid)
}

/// The rows of the text output: `[TIME, PID, COMM, SIG, TPID, RESULT]`.
fn rows(out: &str) -> Vec<Vec<String>> {
    let mut lines = out.lines();
    let head = lines.next().unwrap_or_default();
    assert!(head.contains("PID") && head.ends_with("RESULT"), "{out}");
    lines
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

#[test]
fn every_call_shows_its_signal_target_and_result() {
    require_tracing!(SyscallTracepoints, Instances);
    let (f, pid) = snoop(&[]);
    let rows = rows(&f.stdout);
    assert_eq!(rows.len() as u64, N + FAIL, "{}", f.stdout);
    let pid = pid.to_string();
    for (k, r) in rows.iter().enumerate() {
        assert_eq!(r.len(), 6, "{r:?}");
        assert_eq!(r[1], pid, "{r:?}");
        assert_eq!(r[2], "ftt-workload", "{r:?}");
        if (k as u64) < N {
            // kill, tkill, tgkill and pidfd_send_signal in turn, all aimed
            // at the workload itself (its main thread), all delivered.
            assert_eq!(r[3], (35 + k as u64 % 25).to_string(), "{r:?}");
            assert_eq!(r[4], pid, "{r:?}");
            assert_eq!(r[5], "0", "{r:?}");
        } else {
            assert_eq!(r[3], "36", "{r:?}");
            assert_eq!(r[4], NOBODY, "{r:?}");
            assert_eq!(r[5], (-libc::ESRCH).to_string(), "{r:?}");
        }
    }
}

#[test]
fn failed_only_names_and_one_signal() {
    require_tracing!(SyscallTracepoints, Instances);
    let (f, _) = snoop(&["-x", "-s"]);
    let r = rows(&f.stdout);
    assert_eq!(r.len() as u64, FAIL, "{}", f.stdout);
    assert!(
        r.iter()
            .all(|r| r[3] == "SIGRTMIN+4" && r[4] == NOBODY && r[5] == "-3"),
        "{r:?}"
    );
    // RTMIN+4 is 36: the second signal sent, and every failing kill.
    let (f, _) = snoop(&["--signal", "SIGRTMIN+4"]);
    let r = rows(&f.stdout);
    assert_eq!(r.len() as u64, 1 + FAIL, "{}", f.stdout);
    assert!(r.iter().all(|r| r[3] == "36"), "{r:?}");
    let (f, _) = snoop(&["-n", "no-such-name"]);
    assert_eq!(rows(&f.stdout).len(), 0, "{}", f.stdout);
}

#[test]
fn json_names_each_call() {
    require_tracing!(SyscallTracepoints, Instances);
    let (f, pid) = snoop(&["-j", "-t"]);
    let v: Vec<serde_json::Value> = f
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(v.len() as u64, N + FAIL, "{}", f.stdout);
    let calls = ["kill", "tkill", "tgkill", "pidfd_send_signal"];
    for (k, e) in v.iter().take(N as usize).enumerate() {
        assert_eq!(e["call"], calls[k % 4], "{e}");
        assert_eq!(e["pid"], pid, "{e}");
        assert_eq!(e["tpid"], pid.to_string(), "{e}");
        assert_eq!(e["sig"], 35 + k as u64 % 25, "{e}");
        assert_eq!(e["result"], 0, "{e}");
        if k % 4 == 2 {
            assert_eq!(e["tgid"], pid, "{e}");
        }
    }
    assert!(v[N as usize..]
        .iter()
        .all(|e| e["result"] == -3 && e["call"] == "kill"));
}

#[test]
fn bad_input_exits_2() {
    for args in [&["--signal", "NOPE"][..], &["--signal", "65"], &["-n", ""]] {
        let f = support::run("killsnoop", args);
        assert_eq!(f.code(), 2, "{args:?}: {}", f.stderr);
        assert_eq!(f.stderr.lines().count(), 1, "{}", f.stderr);
    }
}
