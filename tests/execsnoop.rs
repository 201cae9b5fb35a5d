//! Black-box tests of `execsnoop`, run against the real kernel (the host
//! and every guest): a workload forks children that exec a program of a
//! distinctive name with distinctive arguments, then fails to exec a
//! missing one; every exec must be shown once, with its parent, result and
//! arguments. Where the kernel has kprobe events the arguments are copied
//! in the kernel; on the host they are read from /proc (the children live
//! until the end of the workload, so the reads are exact).
mod support;

use std::time::Duration;
use support::{Finished, ToolRun, Workload};

const N: usize = 20;
const FAIL: usize = 5;
/// The children's name (the program's, a link to ftt-workload).
const CHILD: &str = "ftt-exec-child";

/// A directory with `CHILD` in it, and the link's path.
fn program() -> (tempfile::TempDir, String) {
    let d = tempfile::Builder::new()
        .prefix("ftt-execsnoop-")
        .tempdir()
        .unwrap();
    let p = d.path().join(CHILD);
    std::os::unix::fs::symlink(support::workload_bin(), &p).unwrap();
    let s = p.to_string_lossy().into_owned();
    (d, s)
}

/// Runs `execsnoop ARGS -p WORKLOAD` around `ftt-workload execs PROG N FAIL`.
fn snoop(args: &[&str]) -> (Finished, u32, String) {
    let (_d, prog) = program();
    let mut w = Workload::waiting(&["execs", &prog, &N.to_string(), &FAIL.to_string()]);
    let pid = w.pid();
    let ps = pid.to_string();
    let mut a = args.to_vec();
    a.extend(["-p", &ps]);
    let mut t = ToolRun::start("execsnoop", &a);
    t.wait_ready();
    w.go();
    assert_eq!(w.wait(), (N + FAIL) as u64);
    let f = t.finish(Duration::from_secs(120));
    assert_eq!(f.code(), 0, "{}", f.stderr);
    support::assert_nothing_left(f.pid);
    (f, pid, prog)
}

/// The rows of the text output: `[PCOMM, PID, PPID, RET, ARGS]`.
fn rows(out: &str) -> Vec<Vec<String>> {
    let mut lines = out.lines();
    let head = lines.next().unwrap_or_default();
    assert!(head.contains("PPID") && head.contains("ARGS"), "{out}");
    lines
        .map(|l| {
            let mut r = Vec::new();
            let mut rest = l;
            for _ in 0..4 {
                rest = rest.trim_start();
                let end = rest.find(' ').unwrap_or(rest.len());
                r.push(rest[..end].to_string());
                rest = &rest[end..];
            }
            r.push(rest.trim().to_string());
            r
        })
        .collect()
}

/// The arguments child K was given, as shown.
fn child_args(prog: &str, k: usize) -> String {
    format!("{prog} exec-child --k={k} ftt distinct")
}

#[test]
fn every_exec_shows_its_parent_result_and_arguments() {
    require_tracing!(SyscallTracepoints, Instances);
    let (f, pid, prog) = snoop(&[]);
    let r = rows(&f.stdout);
    assert_eq!(r.len(), N, "{}", f.stdout);
    let mut ks = Vec::new();
    let mut pids = std::collections::HashSet::new();
    for r in &r {
        assert_eq!(r[0], CHILD, "{r:?}");
        assert_ne!(r[1], pid.to_string(), "{r:?}");
        assert!(pids.insert(r[1].clone()), "{r:?}");
        assert_eq!(r[2], pid.to_string(), "{r:?}");
        assert_eq!(r[3], "0", "{r:?}");
        let k = (0..N)
            .find(|&k| r[4] == child_args(&prog, k))
            .unwrap_or_else(|| panic!("{r:?}"));
        ks.push(k);
    }
    ks.sort();
    assert_eq!(ks, (0..N).collect::<Vec<_>>());
    if !support::has(ftrace_common::kernel::caps::Feature::KprobeEvents) {
        assert!(
            f.stdout.starts_with("PCOMM") && f.stdout.lines().next().unwrap().ends_with("ARGS*")
        );
        assert!(
            f.stderr.contains("ARGS* are read from /proc/PID/cmdline"),
            "{}",
            f.stderr
        );
    }
}

#[test]
fn failed_execs_with_x_in_order() {
    require_tracing!(SyscallTracepoints, Instances);
    let (f, pid, prog) = snoop(&["-x"]);
    let r = rows(&f.stdout);
    assert_eq!(r.len(), N + FAIL, "{}", f.stdout);
    let failed: Vec<&Vec<String>> = r.iter().filter(|r| r[3] != "0").collect();
    assert_eq!(failed.len(), FAIL, "{}", f.stdout);
    for (k, r) in failed.iter().enumerate() {
        assert_eq!(r[0], "ftt-workload", "{r:?}");
        assert_eq!(r[1], pid.to_string(), "{r:?}");
        assert_eq!(r[3], (-libc::ENOENT).to_string(), "{r:?}");
        assert_eq!(r[4], format!("{prog}.missing exec-fail --k={k}"), "{r:?}");
    }
}

#[test]
fn name_line_quote_and_argc() {
    require_tracing!(SyscallTracepoints, Instances);
    let (f, _, _) = snoop(&["-n", "exec-ch"]);
    assert_eq!(rows(&f.stdout).len(), N, "{}", f.stdout);
    let (f, _, _) = snoop(&["-n", "no-such-name", "-x"]);
    assert_eq!(rows(&f.stdout).len(), 0, "{}", f.stdout);
    let (f, _, _) = snoop(&["-x", "child$"]);
    assert_eq!(rows(&f.stdout).len(), N, "{}", f.stdout);
    let (f, _, prog) = snoop(&["-l", "k=7$", "-q"]);
    let r = rows(&f.stdout);
    assert_eq!(r.len(), 1, "{}", f.stdout);
    assert_eq!(
        r[0][4],
        format!("\"{prog}\" \"exec-child\" \"--k=7\" \"ftt distinct\"")
    );
    let (f, _, prog) = snoop(&["-a", "2", "-l", "k=3$"]);
    let r = rows(&f.stdout);
    assert_eq!(r.len(), 1, "{}", f.stdout);
    assert_eq!(r[0][4], format!("{prog} exec-child --k=3 ..."));
}

#[test]
fn json_names_each_call_and_where_the_arguments_came_from() {
    require_tracing!(SyscallTracepoints, Instances);
    let (f, pid, prog) = snoop(&["-j", "-x", "-U"]);
    let v: Vec<serde_json::Value> = f
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(v.len(), N + FAIL, "{}", f.stdout);
    let kprobes = support::has(ftrace_common::kernel::caps::Feature::KprobeEvents);
    let from = if kprobes {
        "kernel"
    } else {
        "process (best effort)"
    };
    let (ok, failed): (Vec<_>, Vec<_>) = v.iter().partition(|e| e["ret"] == 0);
    assert_eq!(ok.len(), N);
    for e in ok {
        assert_eq!(e["call"], "execve", "{e}");
        assert_eq!(e["comm"], CHILD, "{e}");
        assert_eq!(e["ppid"], pid, "{e}");
        assert_eq!(e["filename"], prog, "{e}");
        assert_eq!(e["args"][0], "exec-child", "{e}");
        assert_eq!(e["args"][2], "ftt distinct", "{e}");
        assert_eq!(e["args_from"], from, "{e}");
        assert_eq!(e["uid"], 0, "{e}");
    }
    for (k, e) in failed.iter().enumerate() {
        assert_eq!(e["pid"], pid, "{e}");
        assert_eq!(e["ret"], -libc::ENOENT, "{e}");
        assert_eq!(e["filename"], format!("{prog}.missing"), "{e}");
        assert_eq!(e["args"][1], format!("--k={k}"), "{e}");
    }
}

#[test]
fn bad_input_exits_2() {
    for args in [
        &["-u", "no-such-user-xyz"][..],
        &["("],
        &["-l", "("],
        &["-n", ""],
    ] {
        let f = support::run("execsnoop", args);
        assert_eq!(f.code(), 2, "{args:?}: {}", f.stderr);
        assert_eq!(f.stderr.lines().count(), 1, "{}", f.stderr);
    }
}
