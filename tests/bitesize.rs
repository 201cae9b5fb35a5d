//! Black-box tests of `bitesize`, against the real kernel: a loop device
//! of our own gets exactly 10 O_DIRECT reads of 4 KiB and 5 writes of
//! 64 KiB from ftt-workload, and its histograms must hold exactly 10 in
//! `4 -> 7` and 5 in `64 -> 127` Kbytes, from the buffer and, where the
//! kernel has hist triggers, in the kernel (the kernel's table and the
//! buffer's counts agreeing name by name).
mod support;

use ftrace_common::kernel::caps::Feature;
use support::{run, Finished, LoopDevice, ToolRun, Workload};

/// `(low, count)` of the non-empty buckets of `comm`'s JSON line, or
/// with `None` of all the lines together.
fn buckets(f: &Finished, comm: Option<&str>) -> Vec<(u64, u64)> {
    let lines: Vec<serde_json::Value> = f
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .filter(|v: &serde_json::Value| comm.is_none_or(|c| v["comm"] == c))
        .collect();
    let mut sum = std::collections::BTreeMap::new();
    for b in lines
        .iter()
        .flat_map(|v| v["buckets"].as_array().unwrap().clone())
    {
        *sum.entry(b["low"].as_u64().unwrap()).or_insert(0) += b["count"].as_u64().unwrap();
    }
    sum.into_iter().filter(|b| b.1 > 0).collect()
}

/// The process names of a run's JSON lines.
fn names(f: &Finished) -> Vec<String> {
    f.stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["comm"].to_string())
        .collect()
}

fn sizes_with(runs: &[&[&str]]) -> Option<Vec<Finished>> {
    let lp = match LoopDevice::new("bitesize", 16) {
        Ok(l) => l,
        Err(why) => {
            support::skip(&format!("no loop device: {why}"));
            return None;
        }
    };
    let mut w = Workload::waiting(&["direct-io", &lp.dev, "10", "4", "5", "64"]);
    let tools: Vec<ToolRun> = runs
        .iter()
        .map(|a| {
            let mut args = vec!["-j", "-d", lp.name()];
            args.extend_from_slice(a);
            let mut t = ToolRun::start("bitesize", &args);
            t.wait_ready();
            t
        })
        .collect();
    w.go();
    assert_eq!(w.wait(), 15);
    Some(
        tools
            .into_iter()
            .map(|t| {
                let f = t.stop();
                assert_eq!(f.code(), 0, "{}", f.stderr);
                support::assert_nothing_left(f.pid);
                f
            })
            .collect(),
    )
}

#[test]
fn help_names_the_tracepoint() {
    let f = run("bitesize", &["--help"]);
    assert_eq!(f.code(), 0);
    assert!(f.stdout.contains("block:block_rq_issue"), "{}", f.stdout);
    assert!(f.stdout.contains("Examples:"), "{}", f.stdout);
}

/// Every request on the device, once, in its bucket: the 10 reads of
/// 4 KiB under the workload's name (issued in its own context); the
/// writes too on this host, but a kernel may hand some requests to its
/// block workers (kworker/N:1H, as Debian's 6.1 does with these writes),
/// whose name block_rq_issue then records, as bcc's bitesize shows it.
fn check_sizes(f: &Finished) {
    assert_eq!(buckets(f, None), vec![(4, 10), (64, 5)], "{}", f.stdout);
    let mine = buckets(f, Some("ftt-workload"));
    assert_eq!(mine.first(), Some(&(4, 10)), "{}", f.stdout);
    for n in names(f) {
        assert!(
            n == "\"ftt-workload\"" || n.starts_with("\"kworker/"),
            "{}",
            f.stdout
        );
    }
}

#[test]
fn from_the_buffer_sizes_are_counted_per_process_name() {
    require_tracing!(BlockTracepoints, Instances);
    let Some(f) = sizes_with(&[
        &["--in", "buffer"],
        &["--in", "buffer", "-c", "no-such-comm"],
    ]) else {
        return;
    };
    assert!(
        f[0].stderr.contains("counted from the trace buffer"),
        "{}",
        f[0].stderr
    );
    check_sizes(&f[0]);
    assert_eq!(f[1].stdout, "", "{}", f[1].stderr);
}

/// The kernel's counts and the buffer's, of the same requests, agree name
/// by name.
#[test]
fn in_the_kernel_sizes_are_counted_per_process_name() {
    require_tracing!(BlockTracepoints, Instances);
    let t = support::tracefs().unwrap();
    if !ftrace_common::kernel::needs::BITESIZE
        .has(&t, Feature::HistTriggers)
        .is_yes()
    {
        support::skip("this kernel has no hist triggers");
        return;
    }
    let Some(f) = sizes_with(&[
        &["--in", "kernel"],
        &["--in", "buffer"],
        &["--in", "kernel", "-c", "ftt-workload"],
    ]) else {
        return;
    };
    assert!(
        f[0].stderr.contains("counted in the kernel"),
        "{}",
        f[0].stderr
    );
    check_sizes(&f[0]);
    assert_eq!(f[0].stdout, f[1].stdout);
    assert_eq!(
        buckets(&f[2], None),
        buckets(&f[0], Some("ftt-workload")),
        "{}",
        f[2].stdout
    );
}

#[test]
fn text_is_bccs_layout_and_duration_ends_the_run() {
    require_tracing!(BlockTracepoints, Instances);
    let f = run("bitesize", &["--in", "buffer", "-c", "ftt-workload", "0.3"]);
    assert_eq!(f.code(), 0, "{}", f.stderr);
    assert!(f.stderr.contains("for 0.3 seconds"), "{}", f.stderr);
    support::assert_nothing_left(f.pid);
}

#[test]
fn bad_input_exits_2_and_leaves_nothing() {
    for args in [
        &["-d", "no_such_disk"][..],
        &["-c", "a_name_longer_than_15"],
        &["-c", ""],
        &["x"],
        &["--in", "nowhere"],
    ] {
        let f = run("bitesize", args);
        assert_eq!(f.code(), 2, "{args:?}: {}", f.stderr);
        assert!(!f.stderr.trim().is_empty(), "{args:?}");
        support::assert_nothing_left(f.pid);
    }
}
