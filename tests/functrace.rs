//! Black-box tests of `functrace`. The function tracer refuses on the host
//! (EPERM): there the tests check the one-line refusal and skip the rest;
//! tests/vm runs them in the Debian 6.1 and 6.12 guests. A workload calls
//! getppid N times: exactly N calls of the system call's function must be
//! shown for its PID.
mod support;

use ftrace_common::kernel::caps::Feature;
use std::time::Duration;
use support::{Finished, ToolRun, Workload};

const N: u64 = 300;

/// The getppid system call's traceable function on this kernel.
fn getppid_function() -> Option<&'static str> {
    let text = std::fs::read_to_string(support::tracefs_root().join("available_filter_functions"))
        .unwrap_or_default();
    [
        "__x64_sys_getppid",
        "__arm64_sys_getppid",
        "__do_sys_getppid",
        "sys_getppid",
    ]
    .into_iter()
    .find(|f| {
        text.lines()
            .any(|l| l.split_whitespace().next() == Some(*f))
    })
}

/// `functrace ARGS -p CHILD FUNC` around `ftt-workload getppid N`.
fn trace(args: &[&str], func: &str) -> (Finished, u32) {
    let mut w = Workload::waiting(&["getppid", &N.to_string()]);
    let pid = w.pid();
    let ps = pid.to_string();
    let mut a: Vec<&str> = vec!["-p", &ps];
    a.extend(args);
    a.push(func);
    let mut t = ToolRun::start("functrace", &a);
    t.wait_ready();
    w.go();
    assert_eq!(w.wait(), N);
    let f = t.finish(Duration::from_secs(180));
    assert_eq!(f.code(), 0, "{}", f.stderr);
    support::assert_nothing_left(f.pid);
    (f, pid)
}

#[test]
fn refuses_in_one_line_without_the_function_tracer() {
    require!(support::is_root(), "needs root");
    require!(support::tracefs().is_some(), "needs tracefs");
    require!(
        !support::has(Feature::FunctionTracer),
        "this kernel has a usable function tracer (the refusal is for kernels without it)"
    );
    let f = support::run("functrace", &["vfs_read"]);
    assert_eq!(f.code(), 2, "{f:?}");
    let lines: Vec<&str> = f.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", f.stderr);
    assert!(lines[0].starts_with("functrace: "), "{}", f.stderr);
    assert!(lines[0].contains("function"), "{}", f.stderr);
    support::assert_nothing_left(f.pid);
}

#[test]
fn bad_input_exits_2_and_leaves_nothing() {
    require_tracing!(FunctionTracer, Instances);
    for args in [
        vec!["no_such_function_xyz"],
        vec!["vfs_read:mod:ext4"],
        vec!["-p", "999999999", "vfs_read"],
        vec!["a", "b"],
        vec![],
    ] {
        let f = support::run("functrace", &args);
        assert_eq!(f.code(), 2, "{args:?}: {f:?}");
        assert!(!f.stderr.is_empty(), "{args:?}");
        support::assert_nothing_left(f.pid);
    }
    let f = support::run("functrace", &["vfs_raed"]);
    assert!(f.stderr.contains("did you mean vfs_read"), "{}", f.stderr);
}

/// As funccount: more than 1000 functions need -F, and the refusal says
/// how many and what to do.
#[test]
fn a_huge_pattern_needs_force() {
    require_tracing!(FunctionTracer, Instances);
    let f = support::run("functrace", &["*"]);
    assert_eq!(f.code(), 2, "{f:?}");
    assert_eq!(f.stderr.lines().count(), 1, "{}", f.stderr);
    assert!(
        f.stderr.contains("use -F to trace them anyway"),
        "{}",
        f.stderr
    );
    assert!(f.stderr.contains("functions and events"), "{}", f.stderr);
    support::assert_nothing_left(f.pid);
}

#[test]
fn every_call_once() {
    require_tracing!(FunctionTracer, Instances);
    let Some(func) = getppid_function() else {
        support::skip("no traceable getppid function");
        return;
    };
    let (f, pid) = trace(&["-H"], func);
    let task = format!("-{pid} ");
    let rows: Vec<&str> = f
        .stdout
        .lines()
        .filter(|l| l.contains(&format!(": {func} <-")))
        .collect();
    assert_eq!(rows.len() as u64, N, "{}\n{}", f.stdout, f.stderr);
    assert!(rows.iter().all(|r| r.contains(&task)), "{rows:?}");
    assert!(f.stdout.starts_with("#"), "-H: {}", f.stdout);
    assert_eq!(f.stdout.lines().count() as u64, N + 1, "{}", f.stdout);
    assert!(
        f.stderr.contains(&format!("{N} calls traced")),
        "{}",
        f.stderr
    );
}

#[test]
fn json_every_call_once() {
    require_tracing!(FunctionTracer, Instances);
    let Some(func) = getppid_function() else {
        support::skip("no traceable getppid function");
        return;
    };
    let (f, pid) = trace(&["-j"], func);
    let objs: Vec<serde_json::Value> = f
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    assert_eq!(objs.len() as u64, N, "{}", f.stdout);
    for o in &objs {
        assert_eq!(o["func"], func, "{o}");
        assert_eq!(o["pid"], pid, "{o}");
        assert!(o["parent"].as_str().is_some_and(|p| !p.is_empty()), "{o}");
        assert!(o["ts"].as_u64().is_some(), "{o}");
    }
}
