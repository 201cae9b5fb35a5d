//! Black-box tests of `funcslower`. function_graph needs a kernel the host
//! does not have (its function tracer refuses with EPERM): there the tests
//! check the one-line refusal and skip the rest; tests/vm runs them in the
//! Debian 6.1 guest (function_graph at the top level) and the 6.12 one (in
//! an instance). A workload makes K slow do_nanosleep calls (200 ms) and N
//! fast ones (zero-length sleeps); exactly the K must be shown, each at
//! least the threshold, and the N counted as faster.
mod support;

use ftrace_common::kernel::caps::Feature;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;
use support::{Finished, ToolRun, Workload};

/// On 6.1 one function_graph user at a time (the top level), and the tests
/// compare top-level settings before and after.
static GLOBAL: Mutex<()> = Mutex::new(());

fn global() -> std::sync::MutexGuard<'static, ()> {
    GLOBAL.lock().unwrap_or_else(|e| e.into_inner())
}

const SLOW: u64 = 3;
const FAST: u64 = 8;
/// The slow sleeps' length, and the threshold (us): far apart, as a
/// zero-length sleep of a loaded TCG guest can take over 10 ms.
const SLOW_MS: &str = "200";
const THRESHOLD_US: u64 = 100_000;

/// The top-level settings a run may touch (and must put back).
fn top_level() -> BTreeMap<String, String> {
    let mut m = support::top_level_snapshot(&[]);
    let root = support::tracefs_root();
    for f in [
        "set_ftrace_pid",
        "set_graph_function",
        "set_graph_notrace",
        "max_graph_depth",
        "tracing_thresh",
        "options/sleep-time",
    ] {
        if let Ok(t) = std::fs::read_to_string(root.join(f)) {
            m.insert(f.to_string(), t);
        }
    }
    // The buffer size: the kernel's to expand when a tracer starts (see
    // tests/funcgraph.rs); not compared here.
    m.remove("buffer_size_kb");
    m
}

/// `funcslower ARGS -p CHILD do_nanosleep 100000` around the workload;
/// the kernel's list of the functions it hooks (enabled_functions) read
/// while it traces.
fn slower(args: &[&str]) -> (Finished, Vec<String>) {
    let mut w = Workload::waiting(&[
        "nanosleep-slowfast",
        &SLOW.to_string(),
        SLOW_MS,
        &FAST.to_string(),
    ]);
    let pid = w.pid().to_string();
    let th = THRESHOLD_US.to_string();
    let mut a: Vec<&str> = vec!["-p", &pid];
    a.extend(args);
    a.extend(["do_nanosleep", th.as_str()]);
    let mut t = ToolRun::start("funcslower", &a);
    t.wait_ready();
    let hooked = std::fs::read_to_string(support::tracefs_root().join("enabled_functions"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    w.go();
    assert_eq!(w.wait(), SLOW + FAST);
    let f = t.finish(Duration::from_secs(180));
    assert_eq!(f.code(), 0, "{}", f.stderr);
    support::assert_nothing_left(f.pid);
    (f, hooked)
}

#[test]
fn refuses_in_one_line_without_function_graph() {
    require!(support::is_root(), "needs root");
    require!(support::tracefs().is_some(), "needs tracefs");
    require!(
        !support::has(Feature::FunctionGraph),
        "this kernel has function_graph (the refusal is for kernels without it)"
    );
    let before = top_level();
    let f = support::run("funcslower", &["do_nanosleep", "10000"]);
    assert_eq!(f.code(), 2, "{f:?}");
    let lines: Vec<&str> = f.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", f.stderr);
    assert!(lines[0].starts_with("funcslower: "), "{}", f.stderr);
    assert!(lines[0].contains("function"), "{}", f.stderr);
    support::assert_nothing_left(f.pid);
    assert_eq!(top_level(), before);
}

#[test]
fn bad_input_exits_2_and_leaves_nothing() {
    require_tracing!(FunctionGraph);
    let _g = global();
    let before = top_level();
    for args in [
        vec!["no_such_function_xyz", "1000"],
        vec!["vfs_read:mod:ext4", "1000"],
        vec!["-p", "999999999", "vfs_read", "1000"],
        vec!["vfs_read", "0"],
        vec!["vfs_read", "ten"],
        vec!["vfs_read"],
    ] {
        let f = support::run("funcslower", &args);
        assert_eq!(f.code(), 2, "{args:?}: {f:?}");
        assert!(!f.stderr.is_empty(), "{args:?}");
        support::assert_nothing_left(f.pid);
    }
    let f = support::run("funcslower", &["vfs_raed", "10"]);
    assert!(f.stderr.contains("did you mean vfs_read"), "{}", f.stderr);
    assert_eq!(top_level(), before);
}

/// Exactly the K slow calls, one line each, each over the threshold; the
/// fast ones counted.
#[test]
fn only_the_slow_calls_are_shown() {
    require_tracing!(FunctionGraph);
    let _g = global();
    let before = top_level();
    let (f, hooked) = slower(&["-P"]);
    // Without --graph only the traced function is hooked (the kernel's
    // list has it, and whatever else traces functions now: not thousands).
    assert!(
        hooked.iter().any(|h| h == "do_nanosleep") && hooked.len() < 100,
        "enabled_functions while tracing: {} functions ({:?}...)",
        hooked.len(),
        &hooked[..hooked.len().min(5)]
    );
    let rows: Vec<&str> = f
        .stdout
        .lines()
        .filter(|l| l.contains("do_nanosleep"))
        .collect();
    assert_eq!(rows.len() as u64, SLOW, "{}\n{}", f.stdout, f.stderr);
    for r in &rows {
        assert!(r.contains("do_nanosleep();"), "{r}");
        assert!(r.contains("ftt-wor"), "-P names the task: {r}");
        // ` 0)  comm-pid   | @ 203629.5 us |  do_nanosleep();`
        let field = r.split('|').find(|f| f.trim_end().ends_with("us")).unwrap();
        let us: f64 = field
            .trim()
            .trim_start_matches(['+', '!', '#', '*', '@', '$'])
            .trim()
            .trim_end_matches("us")
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{r}: {e}"));
        assert!(us >= THRESHOLD_US as f64, "{r}");
    }
    // Every line of stdout is a row (no graph inside).
    assert_eq!(f.stdout.lines().count() as u64, SLOW, "{}", f.stdout);
    let summary = format!("{SLOW} calls of at least {THRESHOLD_US} us, {FAST} faster");
    assert!(f.stderr.contains(&summary), "{}", f.stderr);
    if support::has(Feature::GraphRetval) {
        assert!(rows.iter().all(|r| r.contains("/* = 0 */")), "{rows:?}");
    } else {
        assert!(f.stderr.contains("no return values"), "{}", f.stderr);
    }
    assert_eq!(top_level(), before);
}

/// With --graph and JSON: the same K calls, each with what it called.
#[test]
fn json_with_graphs() {
    require_tracing!(FunctionGraph);
    let _g = global();
    let before = top_level();
    let (f, hooked) = slower(&["-j", "--graph"]);
    // With graphs, everything do_nanosleep may call is hooked.
    assert!(
        hooked.len() > 1000,
        "enabled_functions while tracing --graph: {:?}",
        hooked
    );
    let objs: Vec<serde_json::Value> = f
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    let calls: Vec<&serde_json::Value> = objs.iter().filter(|v| v.get("func").is_some()).collect();
    assert_eq!(calls.len() as u64, SLOW, "{}\n{}", f.stdout, f.stderr);
    for c in calls {
        assert_eq!(c["func"], "do_nanosleep", "{c}");
        assert_eq!(c["end"], "returned", "{c}");
        assert!(
            c["duration_ns"].as_u64().unwrap() >= THRESHOLD_US * 1000,
            "{c}"
        );
        assert!(c["calls"].as_array().is_some_and(|v| !v.is_empty()), "{c}");
        if support::has(Feature::GraphRetval) {
            assert_eq!(c["retval"], 0, "{c}");
        }
    }
    assert_eq!(top_level(), before);
}
