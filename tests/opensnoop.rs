//! Black-box tests of `opensnoop`, run against the real kernel (the host
//! and every guest): a workload opens a path of its own through open,
//! openat and openat2 with known flags, and a missing path; every call
//! must be shown once, with its descriptor, error, flags and path. Where
//! the kernel has kprobe events the paths are copied in the kernel; on the
//! host they are read from the (still living) workload.
mod support;

use std::time::Duration;
use support::{Finished, ToolRun, Workload};

const N: usize = 30;
const FAIL: usize = 10;

/// A file of this test's own, and the path the failing opens use.
fn marker(tag: &str) -> (tempfile::TempPath, String, String) {
    let f = tempfile::Builder::new()
        .prefix(&format!("ftt-opensnoop-{tag}-"))
        .tempfile()
        .unwrap()
        .into_temp_path();
    let p = f.to_string_lossy().into_owned();
    let missing = format!("{p}.missing");
    (f, p, missing)
}

/// Runs `opensnoop ARGS -p WORKLOAD` around `ftt-workload opens PATH N FAIL`,
/// paths from the kernel where it can, else read from the workload.
fn snoop(path: &str, args: &[&str]) -> (Finished, u32) {
    let mut a = args.to_vec();
    if !support::has(ftrace_common::kernel::caps::Feature::KprobeEvents) {
        a.extend(["--paths", "user"]);
    }
    snoop_as_asked(path, &a)
}

fn snoop_as_asked(path: &str, args: &[&str]) -> (Finished, u32) {
    let mut w = Workload::waiting(&["opens", path, &N.to_string(), &FAIL.to_string()]);
    let pid = w.pid();
    let ps = pid.to_string();
    let mut a = args.to_vec();
    a.extend(["-p", &ps]);
    let mut t = ToolRun::start("opensnoop", &a);
    t.wait_ready();
    w.go();
    assert_eq!(w.wait(), (N + FAIL) as u64);
    let f = t.finish(Duration::from_secs(120));
    assert_eq!(f.code(), 0, "{}", f.stderr);
    support::assert_nothing_left(f.pid);
    (f, pid)
}

/// The rows of the text output, split on white space.
fn rows(out: &str) -> Vec<Vec<String>> {
    let mut lines = out.lines();
    let head = lines.next().unwrap_or_default();
    assert!(head.contains("FD") && head.contains("PATH"), "{out}");
    lines
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

#[test]
fn every_open_shows_its_descriptor_flags_and_path() {
    require_tracing!(SyscallTracepoints, Instances);
    let (_f, path, missing) = marker("all");
    let (f, pid) = snoop(&path, &["-e"]);
    let r = rows(&f.stdout);
    assert_eq!(r.len(), N + FAIL, "{}", f.stdout);
    let pid = pid.to_string();
    let modes = [
        "O_RDONLY|O_CLOEXEC",
        "O_WRONLY|O_CLOEXEC",
        "O_RDWR|O_CLOEXEC",
    ];
    for (k, r) in r.iter().enumerate() {
        // PID COMM FD ERR FLAGS PATH
        assert_eq!(r.len(), 6, "{r:?}");
        assert_eq!(
            (r[0].as_str(), r[1].as_str()),
            (pid.as_str(), "ftt-workload")
        );
        if k < N {
            assert!(r[2].parse::<i32>().unwrap() >= 3, "{r:?}");
            assert_eq!(r[3], "0", "{r:?}");
            assert_eq!(r[4], modes[k % 3], "{r:?}");
            assert_eq!(r[5], path, "{r:?}");
        } else {
            assert_eq!((r[2].as_str(), r[3].as_str()), ("-1", "2"), "{r:?}");
            assert_eq!(r[4], "O_RDONLY", "{r:?}");
            assert_eq!(r[5], missing, "{r:?}");
        }
    }
}

#[test]
fn failed_flag_and_path_filters() {
    require_tracing!(SyscallTracepoints, Instances);
    let (_f, path, _) = marker("filters");
    let (f, _) = snoop(&path, &["-x"]);
    let r = rows(&f.stdout);
    assert_eq!(r.len(), FAIL, "{}", f.stdout);
    assert!(r.iter().all(|r| r[3] == "2"), "{r:?}");
    let (f, _) = snoop(&path, &["-f", "O_WRONLY"]);
    assert_eq!(rows(&f.stdout).len(), N / 3, "{}", f.stdout);
    let (f, _) = snoop(&path, &["-f", "wronly", "-f", "O_RDWR"]);
    assert_eq!(rows(&f.stdout).len(), 2 * N / 3, "{}", f.stdout);
    let (f, _) = snoop(&path, &["missing$"]);
    assert_eq!(rows(&f.stdout).len(), FAIL, "{}", f.stdout);
}

#[test]
fn json_names_each_call_and_where_the_path_came_from() {
    require_tracing!(SyscallTracepoints, Instances);
    let (_f, path, _) = marker("json");
    let (f, pid) = snoop(&path, &["-j"]);
    let v: Vec<serde_json::Value> = f
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(v.len(), N + FAIL, "{}", f.stdout);
    let kprobes = support::has(ftrace_common::kernel::caps::Feature::KprobeEvents);
    let first = if cfg!(target_arch = "x86_64") {
        "open"
    } else {
        "openat"
    };
    let calls = [first, "openat", "openat2"];
    for (k, e) in v.iter().take(N).enumerate() {
        assert_eq!(e["call"], calls[k % 3], "{e}");
        assert_eq!(e["pid"], pid, "{e}");
        assert_eq!(e["path"], path, "{e}");
        assert_eq!(e["err"], 0, "{e}");
        let from = if kprobes {
            "kernel"
        } else {
            "process (best effort)"
        };
        assert_eq!(e["path_from"], from, "{e}");
    }
    assert!(v[N..].iter().all(|e| e["err"] == 2 && e["fd"] == -1));
}

/// Without kprobes, no path is guessed unless asked: the column shows `-`
/// and the Tracing line says why.
#[test]
fn without_kprobes_paths_are_not_guessed() {
    require_tracing!(SyscallTracepoints, Instances);
    if support::has(ftrace_common::kernel::caps::Feature::KprobeEvents) {
        support::skip("this kernel has kprobe events (paths are copied in the kernel)");
        return;
    }
    let (_f, path, _) = marker("nopath");
    let (f, _) = snoop_as_asked(&path, &[]);
    let r = rows(&f.stdout);
    assert_eq!(r.len(), N + FAIL, "{}", f.stdout);
    assert!(r.iter().all(|r| r.last().unwrap() == "-"), "{}", f.stdout);
    assert!(
        f.stderr
            .contains("No PATH: this kernel has no kprobe events"),
        "{}",
        f.stderr
    );
}

#[test]
fn bad_input_exits_2() {
    for args in [&["-f", "O_NOPE"][..], &["("], &["-n", ""]] {
        let f = support::run("opensnoop", args);
        assert_eq!(f.code(), 2, "{args:?}: {}", f.stderr);
        assert_eq!(f.stderr.lines().count(), 1, "{}", f.stderr);
    }
}
