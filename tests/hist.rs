//! Black-box tests of `hist`, run against the real kernel. On a host
//! without hist triggers they test the user-space path (the table computed
//! from the buffer); tests/vm runs them in guests whose kernels have hist
//! triggers, where the kernel's path runs too and both are compared.
mod support;

use ftrace_common::kernel::caps::Feature;
use std::time::Duration;
use support::{run, Finished, ToolRun, Workload};

/// The seed's hist trigger: who reads most, and how much.
const SEED: &str = "hist:key=common_pid.execname:values=ret:sort=ret if ret >= 0";

/// The paths this kernel can run: always the buffer; the kernel's where
/// it has hist triggers.
fn paths(feature: Feature) -> Vec<&'static str> {
    let mut p = vec!["buffer"];
    if support::has(feature) {
        p.push("kernel");
    } else {
        support::skip(&format!("the kernel path: no {feature:?} here"));
    }
    p
}

/// Runs `hist --in PATH ARGS -p WORKLOAD` on a waiting workload, lets it go
/// once tracing, and returns the tool's run (it ends when the workload
/// exits), the workload's count and its PID.
fn hist_on(workload: &[&str], path: &str, args: &[&str]) -> (Finished, u64, u32) {
    let mut w = Workload::waiting(workload);
    let pid = w.pid();
    let pid_s = pid.to_string();
    let mut a = vec!["--in", path, "-p", &pid_s];
    a.extend(args);
    let mut t = ToolRun::start("hist", &a);
    t.wait_ready();
    w.go();
    let made = w.wait();
    let f = t.finish(Duration::from_secs(120));
    assert_eq!(f.code(), 0, "{path}: {}", f.stderr);
    support::assert_nothing_left(f.pid);
    (f, made, pid)
}

/// The numbers after `name:` in a line of the kernel's hist text.
fn field(line: &str, name: &str) -> Option<u64> {
    let at = line.find(&format!("{name}:"))? + name.len() + 1;
    line[at..].split_whitespace().next()?.parse().ok()
}

/// The entry lines (`{ ... } hitcount: ...`) of a hist text.
fn entries(out: &str) -> Vec<&str> {
    out.lines().filter(|l| l.starts_with("{ ")).collect()
}

#[test]
fn the_seeds_spec_gives_exactly_the_reads_and_bytes_of_its_pid() {
    require_tracing!(SyscallTracepoints, Instances);
    for path in paths(Feature::HistTriggers) {
        let (f, made, pid) = hist_on(
            &["read-4k", "1000", "7"],
            path,
            &["syscalls:sys_exit_read", SEED],
        );
        assert_eq!(made, 1007);
        let how = if path == "kernel" {
            "(hist in the kernel)"
        } else {
            "(hist computed from the trace buffer)"
        };
        assert!(f.stderr.contains(how), "{path}: {}", f.stderr);
        let e = entries(&f.stdout);
        assert_eq!(e.len(), 1, "{path}: {}", f.stdout);
        assert!(
            e[0].contains(&format!("ftt-workload    [{pid:>10}]")),
            "{path}: {}",
            e[0]
        );
        assert_eq!(field(e[0], "hitcount"), Some(1000), "{path}: {}", e[0]);
        assert_eq!(field(e[0], "ret"), Some(1000 * 4096), "{path}: {}", e[0]);
        assert!(
            f.stdout.contains("    Hits: 1000\n"),
            "{path}: {}",
            f.stdout
        );
        assert!(
            f.stdout.contains("    Dropped: 0\n"),
            "{path}: {}",
            f.stdout
        );
    }
}

#[test]
fn the_kernel_and_the_buffer_print_the_same_text() {
    require_tracing!(SyscallTracepoints, Instances);
    let paths = paths(Feature::HistTriggers);
    for spec in [
        "keys=ret:sort=ret",
        "keys=ret.log2:values=ret if ret >= 0",
        "keys=ret.hex:sort=hitcount.descending",
        "keys=common_pid.execname,ret:sort=ret if ret < 0",
        // Every time stamp of the run is in the first bucket: the text
        // (and the trigger info's clock=global) is the same on both paths.
        "keys=common_timestamp.buckets=1000000000000000",
    ] {
        let mut texts = Vec::new();
        for path in &paths {
            let (f, _, pid) = hist_on(
                &["read-4k", "300", "5"],
                path,
                &["syscalls:sys_exit_read", spec],
            );
            let hits: u64 = entries(&f.stdout)
                .iter()
                .filter_map(|l| field(l, "hitcount"))
                .sum();
            let want = if spec.contains("ret < 0") {
                5
            } else if spec.contains("ret >= 0") {
                300
            } else {
                305
            };
            assert_eq!(hits, want, "{path} {spec}: {}", f.stdout);
            texts.push(f.stdout.replace(&format!("{pid:>10}"), "       PID"));
        }
        if let [buffer, kernel] = &texts[..] {
            assert_eq!(
                buffer, kernel,
                "{spec}: the buffer's text, then the kernel's"
            );
        }
    }
}

#[test]
fn per_syscall_latency_counts_every_sleep_in_its_bucket() {
    require_tracing!(RawSyscalls, Instances);
    let mut rows = Vec::new();
    for path in paths(Feature::SyntheticEvents) {
        let (f, made, _) = hist_on(
            &["nanosleep", "20", "5"],
            path,
            &[
                "--latency",
                "raw_syscalls:sys_enter",
                "raw_syscalls:sys_exit",
                "keys=id.syscall,lat.log2",
            ],
        );
        assert_eq!(made, 20);
        let sleeps: Vec<&str> = entries(&f.stdout)
            .into_iter()
            .filter(|l| l.contains("nanosleep"))
            .collect();
        let n: u64 = sleeps.iter().filter_map(|l| field(l, "hitcount")).sum();
        assert_eq!(n, 20, "{path}: {}", f.stdout);
        // 5 ms is 5000 us: 2^13 (4097 to 8192) or above under load.
        for l in &sleeps {
            let b: u32 = l
                .split("~ 2^")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .and_then(|b| b.parse().ok())
                .unwrap_or_else(|| panic!("{path}: {l}"));
            assert!(b >= 13, "{path}: a 5 ms sleep below 4 ms: {l}");
        }
        rows.push(n);
    }
    assert!(rows.windows(2).all(|w| w[0] == w[1]), "{rows:?}");
}

#[test]
fn json_has_the_entries_and_totals() {
    require_tracing!(SyscallTracepoints, Instances);
    let (f, _, _) = hist_on(
        &["read-4k", "200", "3"],
        "buffer",
        &["-j", "syscalls:sys_exit_read", "keys=ret"],
    );
    let v: serde_json::Value = serde_json::from_str(f.stdout.trim()).expect("one JSON line");
    assert_eq!(v["totals"]["hits"], 203, "{v}");
    assert_eq!(v["computed_in"], "buffer", "{v}");
    let by_ret: Vec<(u64, u64)> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["keys"]["ret"].as_u64().unwrap(),
                e["hitcount"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(by_ret.contains(&(4096, 200)), "{by_ret:?}");
    assert!(by_ret.contains(&((-9i64) as u64, 3)), "{by_ret:?}");
}

#[test]
fn a_spec_the_kernel_refuses_is_refused_on_both_paths_pointing_at_it() {
    require_tracing!(SyscallTracepoints, Instances);
    for path in paths(Feature::HistTriggers) {
        let f = run(
            "hist",
            &[
                "--in",
                path,
                "-d",
                "1",
                "syscalls:sys_exit_read",
                "keys=ret:values=nosuch",
            ],
        );
        assert_eq!(f.code(), 2, "{path}: {}", f.stderr);
        assert!(
            f.stderr.contains("keys=ret:values=nosuch"),
            "{path}: {}",
            f.stderr
        );
        let caret = f.stderr.lines().find(|l| l.trim() == "^");
        assert!(caret.is_some(), "{path}: no caret: {}", f.stderr);
        assert!(f.stdout.is_empty(), "{path}: {}", f.stdout);
        support::assert_nothing_left(f.pid);
    }
}

#[test]
fn in_kernel_without_hist_triggers_names_the_option() {
    require_tracing!(SyscallTracepoints, Instances);
    require!(
        !support::has(Feature::HistTriggers),
        "this kernel has hist triggers"
    );
    let f = run(
        "hist",
        &[
            "--in",
            "kernel",
            "-d",
            "1",
            "syscalls:sys_exit_read",
            "keys=ret",
        ],
    );
    assert_eq!(f.code(), 2, "{}", f.stderr);
    assert!(f.stderr.contains("CONFIG_HIST_TRIGGERS"), "{}", f.stderr);
}

#[test]
fn signals_during_a_latency_run_leave_no_trigger_or_synthetic_event() {
    require_tracing!(RawSyscalls, Instances);
    let mut rng = support::rng();
    let args = |path| {
        [
            "--in",
            path,
            "--latency",
            "raw_syscalls:sys_enter",
            "raw_syscalls:sys_exit",
            "keys=id.syscall,lat.log2",
        ]
    };
    for path in paths(Feature::SyntheticEvents) {
        // How long setup takes here (the kernel's: a synthetic event, three
        // triggers), to aim signals into it.
        let mut first = ToolRun::start("hist", &args(path));
        first.wait_ready();
        let setup = first.elapsed();
        let f = first.signal_after(Duration::ZERO, libc::SIGINT, support::exit_bound());
        assert!(f.stdout.contains("Totals:"), "{path}: {}", f.stdout);
        support::assert_nothing_left(f.pid);
        for (sig, during_setup) in [
            (libc::SIGINT, true),
            (libc::SIGTERM, true),
            (libc::SIGHUP, false),
            (libc::SIGINT, false),
        ] {
            let mut run = ToolRun::start("hist", &args(path));
            let after = if during_setup {
                Duration::from_micros(rng(setup.as_micros() as u64 + 1))
            } else {
                run.wait_ready();
                Duration::from_millis(rng(300))
            };
            let f = run.signal_after(after, sig, support::exit_bound());
            support::assert_nothing_left(f.pid);
        }
    }
}

/// The sum of the hitcounts and the smallest log2 bucket of `lat` in a
/// `keys=lat.log2` hist.
fn latencies(out: &str) -> (u64, Option<u32>) {
    let e = entries(out);
    let n = e.iter().filter_map(|l| field(l, "hitcount")).sum();
    let low = e
        .iter()
        .filter_map(|l| {
            l.split("~ 2^")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .min();
    (n, low)
}

#[test]
fn a_user_functions_latency_pairs_every_call() {
    require_tracing!(UprobeEvents, Instances);
    for path in paths(Feature::SyntheticEvents) {
        let (f, made, _) = hist_on(
            &["usleep", "30", "3000"],
            path,
            &[
                "--latency",
                "u:libc:usleep",
                "ur:libc:usleep",
                "keys=lat.log2",
            ],
        );
        assert_eq!(made, 30);
        let (n, low) = latencies(&f.stdout);
        assert_eq!(n, 30, "{path}: {}", f.stdout);
        // 3 ms is 3000 us: 2^12 (2049 to 4096) or above under load.
        assert!(low >= Some(12), "{path}: {}", f.stdout);
    }
}

#[test]
fn a_kernel_functions_latency_pairs_every_call() {
    require_tracing!(KprobeEvents, Instances);
    for path in paths(Feature::SyntheticEvents) {
        // The workload's own wait reads with readv: its only read(2)s,
        // and so its only vfs_read() calls, are the 200 of its mode.
        let (f, made, _) = hist_on(
            &["read-4k", "200", "0"],
            path,
            &["--latency", "k:vfs_read", "kr:vfs_read", "keys=lat.log2"],
        );
        assert_eq!(made, 200);
        let (n, _) = latencies(&f.stdout);
        assert_eq!(n, 200, "{path}: {}", f.stdout);
    }
}

/// The mean `common_timestamp` (with `.usecs` when `usecs`) of the
/// workload's 305 reads, on one path.
fn mean_timestamp(path: &str, usecs: bool) -> u64 {
    let spec = if usecs {
        "keys=common_pid:vals=common_timestamp.usecs"
    } else {
        "keys=common_pid:vals=common_timestamp"
    };
    let (f, _, _) = hist_on(
        &["read-4k", "300", "5"],
        path,
        &["syscalls:sys_exit_read", spec],
    );
    let e = entries(&f.stdout);
    assert_eq!(e.len(), 1, "{path} {spec}: {}", f.stdout);
    assert_eq!(field(e[0], "hitcount"), Some(305), "{path}: {}", e[0]);
    let sum = field(e[0], "common_timestamp").unwrap_or_else(|| panic!("{path}: {}", e[0]));
    sum / 305
}

#[test]
fn common_timestamp_counts_in_the_kernels_clock_and_units() {
    require_tracing!(SyscallTracepoints, Instances);
    let mut means = Vec::new();
    for path in paths(Feature::HistTriggers) {
        let ns = mean_timestamp(path, false);
        let us = mean_timestamp(path, true);
        // ns, then us: the second run is later, by less than a minute.
        let later = us * 1000;
        assert!(
            ns > 0 && later >= ns && later - ns < 60_000_000_000,
            "{path}: {ns} ns, then {us} us"
        );
        means.push((path, ns / 1000));
    }
    if let [(_, buffer), (_, kernel)] = &means[..] {
        // The kernel's runs came later, on the same clock.
        assert!(
            kernel >= buffer && kernel - buffer < 120_000_000,
            "the buffer's mean {buffer} us, then the kernel's {kernel} us"
        );
    }
}
