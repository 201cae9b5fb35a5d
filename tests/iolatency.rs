//! Black-box tests of `iolatency`, against the real kernel: a loop device
//! of our own gets exactly 10 O_DIRECT reads of 4 KiB and 5 writes of
//! 64 KiB, and the histograms of that device must count exactly 15 I/Os
//! (5 with -i '*W*'), from the buffer and, where the kernel has hist
//! triggers, in the kernel.
mod support;

use ftrace_common::kernel::caps::Feature;
use support::{run, Finished, LoopDevice, ToolRun, Workload};

const READS: u64 = 10;
const WRITES: u64 = 5;

/// The I/O counted in a run's JSON lines.
fn total(f: &Finished) -> u64 {
    f.stdout
        .lines()
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}"));
            let sum: u64 = v["buckets"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b["count"].as_u64().unwrap())
                .sum();
            assert_eq!(v["total"].as_u64(), Some(sum), "{l}");
            sum
        })
        .sum()
}

fn loop_device() -> Option<LoopDevice> {
    match LoopDevice::new("iolatency", 16) {
        Ok(l) => Some(l),
        Err(why) => {
            support::skip(&format!("no loop device: {why}"));
            None
        }
    }
}

/// Runs each argument list on the loop device while the workload does its
/// I/O; the finished runs.
fn count_with(lp: &LoopDevice, runs: &[&[&str]]) -> Vec<Finished> {
    let mut w = Workload::waiting(&[
        "direct-io",
        &lp.dev,
        &READS.to_string(),
        "4",
        &WRITES.to_string(),
        "64",
    ]);
    let tools: Vec<ToolRun> = runs
        .iter()
        .map(|a| {
            let mut args = vec!["-j", "-d", lp.name()];
            args.extend_from_slice(a);
            let mut t = ToolRun::start("iolatency", &args);
            t.wait_ready();
            t
        })
        .collect();
    w.go();
    assert_eq!(w.wait(), READS + WRITES);
    // Let the last completion reach every reader.
    std::thread::sleep(std::time::Duration::from_millis(300));
    tools
        .into_iter()
        .map(|t| {
            let f = t.stop();
            assert_eq!(f.code(), 0, "{}", f.stderr);
            support::assert_nothing_left(f.pid);
            f
        })
        .collect()
}

#[test]
fn help_shows_perf_tools_usage() {
    let f = run("iolatency", &["--help"]);
    assert_eq!(f.code(), 0);
    for s in [
        "-Q",
        "-T",
        "--device",
        "--iotype",
        "[INTERVAL]",
        "[COUNT]",
        "Examples:",
    ] {
        assert!(f.stdout.contains(s), "{s}: {}", f.stdout);
    }
}

#[test]
fn from_the_buffer_every_io_of_the_device_is_counted_once() {
    require_tracing!(BlockTracepoints, Instances);
    let Some(lp) = loop_device() else { return };
    let f = count_with(
        &lp,
        &[
            &["--in", "buffer"],
            &["--in", "buffer", "-Q"],
            &["--in", "buffer", "-i", "*W*"],
        ],
    );
    assert!(
        f[0].stderr.contains("paired from the trace buffer"),
        "{}",
        f[0].stderr
    );
    assert_eq!(total(&f[0]), READS + WRITES, "{}", f[0].stdout);
    assert_eq!(total(&f[1]), READS + WRITES, "{}", f[1].stdout);
    assert_eq!(total(&f[2]), WRITES, "{}", f[2].stdout);
}

#[test]
fn in_the_kernel_every_io_of_the_device_is_counted_once() {
    require_tracing!(BlockTracepoints, Instances);
    let t = support::tracefs().unwrap();
    if !ftrace_common::kernel::needs::IOLATENCY
        .has(&t, Feature::SyntheticEvents)
        .is_yes()
    {
        support::skip("this kernel has no hist triggers or synthetic events");
        return;
    }
    require!(
        ftrace_common::lifecycle::latency::takes_constants(
            &ftrace_common::kernel::config::release()
        ),
        "counting in the kernel needs Linux 5.16 or later (constants in hist expressions)"
    );
    let Some(lp) = loop_device() else { return };
    let f = count_with(
        &lp,
        &[
            &["--in", "kernel"],
            &["--in", "kernel", "-i", "*W*"],
            &["--in", "buffer"],
        ],
    );
    assert!(
        f[0].stderr.contains("counted in the kernel"),
        "{}",
        f[0].stderr
    );
    assert_eq!(total(&f[0]), READS + WRITES, "{}", f[0].stdout);
    assert_eq!(total(&f[1]), WRITES, "{}", f[1].stdout);
    // The kernel and the buffer agree, bucket by bucket, but for I/O
    // near a millisecond boundary the two paths see at different times.
    assert_eq!(total(&f[2]), READS + WRITES, "{}", f[2].stdout);
}

#[test]
fn interval_and_count_end_the_run_in_perf_tools_layout() {
    require_tracing!(BlockTracepoints, Instances);
    let f = run("iolatency", &["-T", "--in", "buffer", "0.2", "2"]);
    assert_eq!(f.code(), 0, "{}", f.stderr);
    assert_eq!(
        f.count(">=(ms) .. <(ms)   : I/O      |Distribution"),
        2,
        "{}",
        f.stdout
    );
    assert!(f.stdout.contains("       0 -> 1       : "), "{}", f.stdout);
    support::assert_nothing_left(f.pid);
}

#[test]
fn bad_input_exits_2_and_leaves_nothing() {
    for args in [
        &["-d", "no_such_disk"][..],
        &["-i", "X"],
        &["0"],
        &["1", "0"],
        &["--in", "nowhere"],
    ] {
        let f = run("iolatency", args);
        assert_eq!(f.code(), 2, "{args:?}: {}", f.stderr);
        assert!(!f.stderr.trim().is_empty(), "{args:?}");
        support::assert_nothing_left(f.pid);
    }
}
