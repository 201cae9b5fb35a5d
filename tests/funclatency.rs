//! Black-box tests of `funclatency`, run against the real kernel: user
//! functions on the host (uprobes), kernel functions where the kernel has
//! kprobes (the VM guests).
mod support;

use ftrace_common::kernel::caps::Feature;
use std::time::Duration;
use support::{Finished, ToolRun, Workload};

/// The paths this kernel can run: always the buffer; the kernel's where
/// it has synthetic events (and hist triggers).
fn paths() -> Vec<&'static str> {
    let mut p = vec!["buffer"];
    if support::has(Feature::SyntheticEvents) && support::has(Feature::HistTriggers) {
        p.push("kernel");
    } else {
        support::skip("the kernel path: no synthetic events or hist triggers here");
    }
    p
}

/// How each path says it on the Tracing line.
fn how(path: &str) -> &'static str {
    if path == "kernel" {
        "(histogram in the kernel)"
    } else {
        "(calls paired from the trace buffer)"
    }
}

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
fn histogram(out: &str) -> (String, Rows) {
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
    for path in paths() {
        let (f, made) = time_workload(
            &["usleep", "30", "3000"],
            &["--in", path, "-u"],
            "libc:usleep",
        );
        assert_eq!(made, 30);
        let (unit, rows) = histogram(&f.stdout);
        assert_eq!(unit, "usecs", "{path}: {}", f.stdout);
        assert_eq!(
            rows.iter().map(|r| r.2).sum::<u64>(),
            30,
            "{path}: {}",
            f.stdout
        );
        // 3 ms is 3000 us: 2048 -> 4095, or above under load; never below.
        let first = rows.iter().find(|r| r.2 > 0).unwrap();
        assert!(first.0 >= 2048, "{path}: {}", f.stdout);
        assert!(
            f.stderr.contains("Tracing libc:usleep for PID"),
            "{}",
            f.stderr
        );
        assert!(f.stderr.contains(how(path)), "{path}: {}", f.stderr);
    }
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
    for path in paths() {
        // The workload's own wait reads with readv: its only read(2)s, and
        // so its only vfs_read() calls, are the 200 of its mode.
        let (f, made) = time_workload(&["read-4k", "200", "0"], &["--in", path], "vfs_read");
        assert_eq!(made, 200);
        let (_, rows) = histogram(&f.stdout);
        assert_eq!(
            rows.iter().map(|r| r.2).sum::<u64>(),
            200,
            "{path}: {}",
            f.stdout
        );
        assert!(f.stderr.contains(how(path)), "{path}: {}", f.stderr);
    }
}

#[test]
fn a_kernel_pattern_times_each_function_it_matches() {
    require_tracing!(KprobeEvents, Instances);
    for path in paths() {
        // read(2) is ksys_read() calling vfs_read(): 200 calls of each.
        let (f, _) = time_workload(
            &["read-4k", "200", "0"],
            &["--in", path, "-F", "-r"],
            "^(ksys_read|vfs_read)$",
        );
        let s = sections(&f.stdout);
        let names: Vec<&str> = s.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["ksys_read", "vfs_read"], "{path}: {}", f.stdout);
        for (name, rows) in &s {
            assert_eq!(total(rows), 200, "{path}: {name}: {}", f.stdout);
        }
        assert!(
            f.stderr.contains("Tracing 2 functions matching"),
            "{path}: {}",
            f.stderr
        );
    }
}

/// Rows of a histogram: `(low, high, count)`.
type Rows = Vec<(u64, u64, u64)>;

/// The sections of -F output: `(function, rows)`.
fn sections(out: &str) -> Vec<(String, Rows)> {
    let mut v = Vec::new();
    for part in out.split("Function = ").skip(1) {
        let (name, rest) = part.split_once('\n').unwrap();
        v.push((name.trim().to_string(), histogram(rest).1));
    }
    v
}

fn total(rows: &[(u64, u64, u64)]) -> u64 {
    rows.iter().map(|r| r.2).sum()
}

#[test]
fn a_regex_times_each_function_it_matches_with_per_function_histograms() {
    require_tracing!(UprobeEvents, Instances);
    // glibc's usleep() calls nanosleep() (through its alias __nanosleep):
    // each call of the workload is one call of each.
    for path in paths() {
        per_function_user_histograms(path);
    }
}

fn per_function_user_histograms(path: &str) {
    let (f, made) = time_workload(
        &["usleep", "20", "2000"],
        &["--in", path, "-u", "-F", "-r"],
        "libc:^(usleep|nanosleep)$",
    );
    assert_eq!(made, 20);
    let s = sections(&f.stdout);
    let names: Vec<&str> = s.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["nanosleep", "usleep"], "{}", f.stdout);
    for (name, rows) in &s {
        assert_eq!(total(rows), 20, "{name}: {}", f.stdout);
        assert!(rows.iter().all(|r| r.2 == 0 || r.0 >= 1024), "{}", f.stdout);
    }
    assert!(
        f.stderr
            .contains("Tracing 2 functions matching 'libc:^(usleep|nanosleep)$' for PID"),
        "{}",
        f.stderr
    );
    // Without -F, one histogram holds both functions' calls.
    let (f, _) = time_workload(
        &["usleep", "20", "2000"],
        &["--in", path, "-u", "-r"],
        "libc:^(usleep|nanosleep)$",
    );
    assert!(!f.stdout.contains("Function = "), "{}", f.stdout);
    assert_eq!(total(&histogram(&f.stdout).1), 40, "{}", f.stdout);
}

#[test]
fn a_glob_and_timestamps() {
    require_tracing!(UprobeEvents, Instances);
    let (f, _) = time_workload(&["usleep", "10", "2000"], &["-u", "-T"], "libc:usle?p");
    let mut lines = f.stdout.lines();
    let time = lines.next().unwrap_or_default();
    let b = time.as_bytes();
    assert!(
        time.len() == 8 && b[2] == b':' && b[5] == b':',
        "{}",
        f.stdout
    );
    let rest: Vec<&str> = lines.collect();
    assert_eq!(total(&histogram(&rest.join("\n")).1), 10, "{}", f.stdout);
    assert!(
        f.stderr
            .contains("Tracing 1 function matching 'libc:usle?p'"),
        "{}",
        f.stderr
    );
}

#[test]
fn json_lines_per_histogram() {
    require_tracing!(UprobeEvents, Instances);
    let (f, _) = time_workload(
        &["usleep", "10", "2000"],
        &["-j", "-T", "-m", "-F"],
        "libc:usleep",
    );
    let lines: Vec<serde_json::Value> = f
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(lines.len(), 1, "{}", f.stdout);
    let v = &lines[0];
    assert_eq!(v["function"], "usleep", "{v}");
    assert_eq!(v["unit"], "msecs", "{v}");
    assert_eq!(v["total"], 10, "{v}");
    assert_eq!(v["time"].as_str().map(str::len), Some(8), "{v}");
    let counted: u64 = v["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, 10, "{v}");
}

#[test]
fn a_pattern_that_matches_nothing_is_refused() {
    require_tracing!(UprobeEvents, Instances);
    let f = ToolRun::start("funclatency", &["libc:no_such_fn_*"]).finish(Duration::from_secs(30));
    assert_eq!(f.code(), 2, "{}", f.stderr);
    assert!(f.stderr.contains("matches 'no_such_fn_*'"), "{}", f.stderr);
    support::assert_nothing_left(f.pid);
}

#[test]
fn in_kernel_without_synthetic_events_names_the_option() {
    require_tracing!(UprobeEvents, Instances);
    require!(
        !support::has(Feature::SyntheticEvents),
        "this kernel has synthetic events"
    );
    let f = support::run("funclatency", &["--in", "kernel", "-d", "1", "libc:usleep"]);
    assert_eq!(f.code(), 2, "{}", f.stderr);
    assert!(
        f.stderr.contains("CONFIG_SYNTH_EVENTS") || f.stderr.contains("CONFIG_HIST_TRIGGERS"),
        "{}",
        f.stderr
    );
    support::assert_nothing_left(f.pid);
}
