//! Black-box tests of `funclatency`, run against the real kernel: user
//! functions on the host (uprobes), kernel functions where the kernel has
//! kprobes (the VM guests).
mod support;

use std::time::Duration;
use support::{Finished, ToolRun, Workload};

/// Runs `funclatency ARGS -p WORKLOAD FUNCTION` on a waiting workload, lets
/// it go once tracing, and returns the run (it ends when the workload
/// exits) and the workload's count.
fn time_workload(workload: &[&str], args: &[&str], function: &str) -> (Finished, u64) {
    let mut w = Workload::waiting(workload);
    let pid = w.pid().to_string();
    let mut a = args.to_vec();
    a.extend(["-p", &pid, function]);
    let mut t = ToolRun::start("funclatency", &a);
    t.wait_ready();
    w.go();
    let made = w.wait();
    let f = t.finish(Duration::from_secs(120));
    assert_eq!(f.code(), 0, "{}", f.stderr);
    support::assert_nothing_left(f.pid);
    (f, made)
}

/// The histogram's unit and its rows `(low, high, count)`.
fn histogram(out: &str) -> (String, Vec<(u64, u64, u64)>) {
    let mut lines = out.lines();
    let unit = lines
        .next()
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_default()
        .to_string();
    let rows = lines
        .filter_map(|l| {
            let (range, rest) = l.split_once(':')?;
            let (lo, hi) = range.split_once("->")?;
            let count = rest.split_whitespace().next()?;
            Some((
                lo.trim().parse().ok()?,
                hi.trim().parse().ok()?,
                count.parse().ok()?,
            ))
        })
        .collect();
    (unit, rows)
}

#[test]
fn every_usleep_call_is_timed_in_its_bucket() {
    require_tracing!(UprobeEvents, Instances);
    let (f, made) = time_workload(&["usleep", "30", "3000"], &["-u"], "libc:usleep");
    assert_eq!(made, 30);
    let (unit, rows) = histogram(&f.stdout);
    assert_eq!(unit, "usecs", "{}", f.stdout);
    assert_eq!(rows.iter().map(|r| r.2).sum::<u64>(), 30, "{}", f.stdout);
    // 3 ms is 3000 us: 2048 -> 4095, or above under load; never below.
    let first = rows.iter().find(|r| r.2 > 0).unwrap();
    assert!(first.0 >= 2048, "{}", f.stdout);
    assert!(
        f.stderr.contains("Tracing libc:usleep for PID"),
        "{}",
        f.stderr
    );
}

#[test]
fn milliseconds_and_nanoseconds() {
    require_tracing!(UprobeEvents, Instances);
    let (f, _) = time_workload(&["usleep", "10", "3000"], &["-m"], "libc:usleep");
    let (unit, rows) = histogram(&f.stdout);
    assert_eq!(unit, "msecs", "{}", f.stdout);
    assert_eq!(rows.iter().map(|r| r.2).sum::<u64>(), 10, "{}", f.stdout);
    assert!(rows.iter().all(|r| r.2 == 0 || r.0 >= 2), "{}", f.stdout);
    let (f, _) = time_workload(&["usleep", "10", "3000"], &[], "libc:usleep");
    let (unit, rows) = histogram(&f.stdout);
    assert_eq!(unit, "nsecs", "{}", f.stdout);
    assert_eq!(rows.iter().map(|r| r.2).sum::<u64>(), 10, "{}", f.stdout);
    assert!(
        rows.iter().all(|r| r.2 == 0 || r.0 >= 2_097_152),
        "{}",
        f.stdout
    );
}

#[test]
fn every_vfs_read_of_a_process_is_timed() {
    require_tracing!(KprobeEvents, Instances);
    // The workload's own wait reads with readv: its only read(2)s, and so
    // its only vfs_read() calls, are the 200 of its mode.
    let (f, made) = time_workload(&["read-4k", "200", "0"], &[], "vfs_read");
    assert_eq!(made, 200);
    let (_, rows) = histogram(&f.stdout);
    assert_eq!(rows.iter().map(|r| r.2).sum::<u64>(), 200, "{}", f.stdout);
}
