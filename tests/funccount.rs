//! Black-box tests of `funccount`. Kernel functions need a usable function
//! tracer: the host kernel refuses it (these tests check the refusal
//! there), tests/vm runs them in the Debian 6.1 and 6.12 guests and in a
//! 6.1 built with the function profiler (`prof`), where the profiler path
//! is compared with the tracer path. Tracepoints and user functions are
//! counted on any kernel.
mod support;

use ftrace_common::kernel::caps::Feature;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;
use support::{run, Finished, ToolRun, Workload};

/// Tests that count without -p see every process, and tests that compare
/// the top-level settings see any other run's: every test that runs a
/// workload or funccount takes this lock, so that none runs meanwhile.
static GLOBAL: Mutex<()> = Mutex::new(());

fn global() -> std::sync::MutexGuard<'static, ()> {
    GLOBAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Every summary of a run: the rows of each `FUNC COUNT` table.
fn summaries(out: &str) -> Vec<BTreeMap<String, u64>> {
    let mut all = Vec::new();
    for line in out.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        if w == ["FUNC", "COUNT"] {
            all.push(BTreeMap::new());
            continue;
        }
        if let ([name, n], Some(cur)) = (w.as_slice(), all.last_mut()) {
            if let Ok(n) = n.parse() {
                cur.insert(name.to_string(), n);
            }
        }
    }
    all
}

/// The rows of the last summary.
fn last(f: &Finished) -> BTreeMap<String, u64> {
    summaries(&f.stdout)
        .pop()
        .unwrap_or_else(|| panic!("no summary:\n{}\n{}", f.stdout, f.stderr))
}

fn traceable(name: &str) -> bool {
    let text = std::fs::read_to_string(support::tracefs_root().join("available_filter_functions"))
        .unwrap_or_default();
    text.lines().any(|l| l == name)
}

/// The kernel function every read() goes through, by this kernel's name.
fn read_function() -> &'static str {
    ["ksys_read", "vfs_read"]
        .into_iter()
        .find(|f| traceable(f))
        .expect("no ksys_read or vfs_read")
}

/// The /dev/zero read functions this kernel has: only the workload's
/// read-zero mode calls them.
fn zero_functions() -> Vec<&'static str> {
    let v: Vec<&str> = ["read_zero", "read_iter_zero"]
        .into_iter()
        .filter(|f| traceable(f))
        .collect();
    assert!(!v.is_empty(), "no read_zero or read_iter_zero");
    v
}

/// The sum of the rows named in `names`.
fn sum(rows: &BTreeMap<String, u64>, names: &[&str]) -> u64 {
    names.iter().filter_map(|n| rows.get(*n)).sum()
}

/// `funccount ARGS -p CHILD` on a waiting workload, released once tracing;
/// the run ends when the child does.
fn count_pid(workload: &[&str], args: &[&str]) -> (Finished, u64) {
    let mut w = Workload::waiting(workload);
    let pid = w.pid().to_string();
    let mut a: Vec<&str> = args.to_vec();
    a.extend(["-p", &pid]);
    let mut t = ToolRun::start("funccount", &a);
    t.wait_ready();
    w.go();
    let made = w.wait();
    (t.finish(Duration::from_secs(120)), made)
}

/// `funccount ARGS -L TID` on a waiting workload's only thread, beside a
/// second workload doing the same, which must not be counted; the run
/// ends when the thread does. Returns the TID too.
fn count_tid(workload: &[&str], args: &[&str]) -> (Finished, u64, String) {
    let mut w = Workload::waiting(workload);
    let mut other = Workload::waiting(workload);
    let tid = w.pid().to_string();
    let mut a: Vec<&str> = args.to_vec();
    a.extend(["-L", &tid]);
    let mut t = ToolRun::start("funccount", &a);
    t.wait_ready();
    other.go();
    w.go();
    other.wait();
    let made = w.wait();
    (t.finish(Duration::from_secs(120)), made, tid)
}

/// What -p/-L runs say on stderr: the task in the Tracing line, and its
/// end.
fn assert_task_said(f: &Finished, label: &str, exited: &str) {
    assert!(
        f.stderr
            .lines()
            .any(|l| l.starts_with("Tracing") && l.contains(&format!(" for {label}"))),
        "{}",
        f.stderr
    );
    assert!(
        f.stderr
            .contains(&format!("funccount: {exited} exited; ending.")),
        "{}",
        f.stderr
    );
}

/// `funccount ARGS` (no -p) around a workload run, stopped with SIGINT.
fn count_all(workload: &[&str], args: &[&str]) -> (Finished, u64) {
    let mut w = Workload::waiting(workload);
    let mut t = ToolRun::start("funccount", args);
    t.wait_ready();
    w.go();
    let made = w.wait();
    (t.stop(), made)
}

fn method_of(f: &Finished) -> &str {
    let l = f
        .stderr
        .lines()
        .find(|l| l.starts_with("Tracing"))
        .unwrap_or_else(|| panic!("no Tracing line: {}", f.stderr));
    let m = l.split("method: ").nth(1).expect("method named");
    &m[..m.find(')').expect(")")]
}

/// The top-level settings funccount may touch (and must put back).
fn top_level() -> BTreeMap<String, String> {
    let mut m = support::top_level_snapshot(&[]);
    let root = support::tracefs_root();
    for f in [
        "set_ftrace_filter",
        "set_ftrace_notrace",
        "set_ftrace_pid",
        "function_profile_enabled",
    ] {
        if let Ok(t) = std::fs::read_to_string(root.join(f)) {
            m.insert(f.to_string(), t);
        }
    }
    m
}

#[test]
fn refuses_in_one_line_where_the_function_tracer_is_unusable() {
    require!(support::is_root(), "needs root");
    let Some(tfs) = support::tracefs() else {
        return support::skip("needs tracefs");
    };
    let ftrace_common::kernel::caps::Support::No(why) =
        ftrace_common::kernel::caps::check(&tfs, Feature::FunctionTracer)
    else {
        return support::skip(
            "the function tracer works here (the refusal is for kernels without)",
        );
    };
    let f = run("funccount", &["vfs_read"]);
    assert_eq!(f.code(), 2, "{}", f.stderr);
    assert_eq!(f.stderr.lines().count(), 1, "{}", f.stderr);
    assert_eq!(
        f.stderr.trim_end(),
        format!("funccount: {why}; for the whole picture, run ftrace-status")
    );
    assert!(f.stderr.contains("function tracer"), "{}", f.stderr);
    assert!(f.stdout.is_empty());
    support::assert_nothing_left(f.pid);
}

#[test]
fn pid_counts_the_kernel_read_function_exactly() {
    require_tracing!(FunctionTracer, Instances);
    let _g = global();
    let n = 5000u64;
    let func = read_function();
    let zero = zero_functions();
    let mut methods = vec![vec![], vec!["--method", "tracer"]];
    if support::has(Feature::KprobeEvents) {
        methods.push(vec!["--method", "kprobe"]);
    }
    for m in methods {
        let mut args = m.clone();
        args.push(func);
        args.extend(zero.iter().copied());
        let (f, made) = count_pid(&["read-zero", &n.to_string()], &args);
        assert_eq!(made, n);
        assert_eq!(f.code(), 0, "{m:?}: {}", f.stderr);
        let rows = last(&f);
        assert_eq!(
            rows.get(func),
            Some(&n),
            "{m:?}:\n{}\n{}",
            f.stdout,
            f.stderr
        );
        assert_eq!(sum(&rows, &zero), n, "{m:?}:\n{}", f.stdout);
        assert!(!f.stderr.contains("LOST"), "{}", f.stderr);
        if m.is_empty() {
            // -p: the profiler cannot filter by process.
            assert_eq!(method_of(&f), "tracer", "{}", f.stderr);
        }
        support::assert_nothing_left(f.pid);
    }
}

/// -L: that thread's calls only, whatever counts them (the tracer's
/// set_ftrace_pid, kprobes' set_event_pid).
#[test]
fn tid_counts_the_kernel_read_function_of_that_thread_only() {
    require_tracing!(FunctionTracer, Instances);
    let _g = global();
    let n = 3000u64;
    let func = read_function();
    let mut methods = vec![vec![], vec!["--method", "tracer"]];
    if support::has(Feature::KprobeEvents) {
        methods.push(vec!["--method", "kprobe"]);
    }
    for m in methods {
        let mut args = m.clone();
        args.push(func);
        let (f, made, tid) = count_tid(&["read-zero", &n.to_string()], &args);
        assert_eq!(made, n);
        assert_eq!(f.code(), 0, "{m:?}: {}", f.stderr);
        assert_eq!(
            last(&f).get(func),
            Some(&n),
            "{m:?}:\n{}\n{}",
            f.stdout,
            f.stderr
        );
        if m.is_empty() {
            assert_eq!(method_of(&f), "tracer", "{}", f.stderr);
        }
        assert_task_said(&f, &format!("TID {tid}"), &format!("thread {tid}"));
        support::assert_nothing_left(f.pid);
    }
}

#[test]
fn without_pid_counts_at_least_the_calls() {
    require_tracing!(FunctionTracer, Instances);
    let _g = global();
    let before = top_level();
    let n = 3000u64;
    let func = read_function();
    let (f, made) = count_all(&["read-zero", &n.to_string()], &[func]);
    assert_eq!(made, n);
    assert_eq!(f.code(), 0, "{}", f.stderr);
    let rows = last(&f);
    assert!(rows.get(func).copied().unwrap_or(0) >= n, "{}", f.stdout);
    // No -p: auto counts with the profiler where there is one, else (a
    // few functions) with kprobes.
    if support::has(Feature::FunctionProfiler) {
        assert_eq!(method_of(&f), "profiler", "{}", f.stderr);
    } else if support::has(Feature::KprobeEvents) {
        assert_eq!(method_of(&f), "kprobe", "{}", f.stderr);
    }
    support::assert_nothing_left(f.pid);
    assert_eq!(top_level(), before);
}

/// The profiler path and the tracer path (and kprobes) count the same
/// calls at the same time: /dev/zero's read function, which only the
/// workload calls, so counting every process is exact too.
#[test]
fn profiler_tracer_and_kprobes_agree() {
    require_tracing!(FunctionTracer, FunctionProfiler, Instances);
    let _g = global();
    let before = top_level();
    let zero = zero_functions();
    let n = 4000u64;
    let mut runs = Vec::new();
    for m in ["profiler", "tracer", "kprobe"] {
        if m == "kprobe" && !support::has(Feature::KprobeEvents) {
            continue;
        }
        let mut a = vec!["--method", m];
        a.extend(zero.iter().copied());
        let mut t = ToolRun::start("funccount", &a);
        t.wait_ready();
        runs.push((m, t));
    }
    let mut w = Workload::waiting(&["read-zero", &n.to_string()]);
    w.go();
    assert_eq!(w.wait(), n);
    for (m, t) in runs {
        let f = t.stop();
        assert_eq!(f.code(), 0, "{m}: {}", f.stderr);
        assert_eq!(method_of(&f), m);
        assert_eq!(sum(&last(&f), &zero), n, "{m}:\n{}\n{}", f.stdout, f.stderr);
        support::assert_nothing_left(f.pid);
    }
    assert_eq!(top_level(), before);
}

#[test]
fn the_profiler_is_not_shared_a_second_run_counts_in_its_instance() {
    require_tracing!(FunctionTracer, FunctionProfiler, Instances);
    let _g = global();
    let before = top_level();
    let zero = zero_functions();
    let n = 2000u64;
    // More functions than auto counts with kprobes (10): a run that
    // cannot have the profiler falls back to the tracer.
    let many = ["*zero*"];
    let mut first = ToolRun::start("funccount", &many);
    first.wait_ready();
    // Asked for explicitly, the profiler is refused with the reason.
    let mut a = vec!["--method", "profiler"];
    a.extend(zero.iter().copied());
    let refused = run("funccount", &a);
    assert_eq!(refused.code(), 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains(&format!(
            "another funccount (PID {}) is using it",
            first.pid()
        )),
        "{}",
        refused.stderr
    );
    let mut second = ToolRun::start("funccount", &many);
    second.wait_ready();
    let mut w = Workload::waiting(&["read-zero", &n.to_string()]);
    w.go();
    assert_eq!(w.wait(), n);
    let (f1, f2) = (first.stop(), second.stop());
    assert_eq!(method_of(&f1), "profiler", "{}", f1.stderr);
    assert_eq!(method_of(&f2), "tracer", "{}", f2.stderr);
    for f in [&f1, &f2] {
        assert_eq!(sum(&last(f), &zero), n, "{}\n{}", f.stdout, f.stderr);
        support::assert_nothing_left(f.pid);
    }
    assert_eq!(top_level(), before);
}

#[test]
fn two_runs_at_once_with_different_patterns_are_both_exact() {
    require_tracing!(FunctionTracer, Instances);
    let _g = global();
    let before = top_level();
    let (n1, n2) = (3000u64, 1700u64);
    let func = read_function();
    let zero = zero_functions();
    let mut w1 = Workload::waiting(&["read-zero", &n1.to_string()]);
    let mut w2 = Workload::waiting(&["read-zero", &n2.to_string()]);
    let (p1, p2) = (w1.pid().to_string(), w2.pid().to_string());
    let mut a2 = vec!["-p", &p2];
    a2.extend(zero.iter().copied());
    let mut t1 = ToolRun::start("funccount", &["-p", &p1, func]);
    let mut t2 = ToolRun::start("funccount", &a2);
    t1.wait_ready();
    t2.wait_ready();
    w1.go();
    w2.go();
    assert_eq!((w1.wait(), w2.wait()), (n1, n2));
    let f1 = t1.finish(Duration::from_secs(120));
    let f2 = t2.finish(Duration::from_secs(120));
    assert_eq!(last(&f1).get(func), Some(&n1), "{}", f1.stdout);
    assert_eq!(last(&f1).len(), 1, "{}", f1.stdout);
    assert_eq!(sum(&last(&f2), &zero), n2, "{}", f2.stdout);
    assert!(!last(&f2).contains_key(func), "{}", f2.stdout);
    support::assert_nothing_left(f1.pid);
    support::assert_nothing_left(f2.pid);
    assert_eq!(top_level(), before);
}

#[test]
fn a_glob_lists_several_functions_and_top_keeps_five() {
    require_tracing!(FunctionTracer, Instances);
    let _g = global();
    let func = read_function();
    let (f, _) = count_pid(
        &["read-zero", "500"],
        &["vfs_*", "ksys_*", "__x64_sys_*", "*_zero"],
    );
    assert_eq!(f.code(), 0, "{}", f.stderr);
    let rows = last(&f);
    let vfs = rows.keys().filter(|k| k.starts_with("vfs_")).count();
    assert!(vfs >= 1 && rows.len() >= 5, "{}", f.stdout);
    assert_eq!(rows.get(func), Some(&500));

    // No -p: the whole machine (which may be idle but for a workload
    // that reads and one that opens files).
    let mut t = ToolRun::start("funccount", &["vfs_*"]);
    t.wait_ready();
    let mut opener = Workload::waiting(&["open", "/etc/passwd", "300"]);
    let mut reader = Workload::waiting(&["read-zero", "300"]);
    opener.go();
    reader.go();
    opener.wait();
    reader.wait();
    let f = t.stop();
    assert_eq!(f.code(), 0, "{}", f.stderr);
    let rows = last(&f);
    assert!(rows.len() >= 2, "{}", f.stdout);
    assert!(rows.keys().all(|k| k.starts_with("vfs_")), "{}", f.stdout);

    let (f, _) = count_pid(
        &["read-zero", "500"],
        &["-t", "5", "vfs_*", "ksys_*", "__x64_sys_*", "*_zero"],
    );
    let top = last(&f);
    assert_eq!(top.len(), 5, "{}", f.stdout);
    // The five largest of the full table, in ascending order.
    let counts: Vec<u64> = f
        .stdout
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1)?.parse().ok())
        .collect();
    assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{}", f.stdout);
}

#[test]
fn interval_and_duration_print_three_summaries() {
    require_tracing!(FunctionTracer, Instances);
    let _g = global();
    let f = run("funccount", &["-i", "1", "-d", "3", "-T", "vfs_*"]);
    assert_eq!(f.code(), 0, "{}", f.stderr);
    assert_eq!(summaries(&f.stdout).len(), 3, "{}", f.stdout);
    // -T: a date line before each header.
    let dates = f
        .stdout
        .lines()
        .zip(f.stdout.lines().skip(1))
        .filter(|(_, b)| b.starts_with("FUNC "))
        .filter(|(a, _)| !a.is_empty())
        .count();
    assert_eq!(dates, 3, "{}", f.stdout);
}

#[test]
fn regular_expressions_and_json() {
    require_tracing!(FunctionTracer, Instances);
    let _g = global();
    let func = read_function();
    let re = format!("^{func}$");
    let (f, _) = count_pid(&["read-zero", "800"], &["-r", "--json", &re]);
    assert_eq!(f.code(), 0, "{}", f.stderr);
    let line = f.stdout.lines().last().expect("a JSON line");
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["counts"][0]["func"], func);
    assert_eq!(v["counts"][0]["count"], 800);
    assert_eq!(v["counts"].as_array().unwrap().len(), 1);
    assert_eq!(v["lost"], 0);
    assert_eq!(v["method"], "tracer");
}

#[test]
fn bad_patterns_exit_2_with_advice_and_leave_nothing() {
    require_tracing!(FunctionTracer, Instances);
    let _g = global();
    let f = run("funccount", &["ksys_raed"]);
    assert_eq!(f.code(), 2, "{}", f.stderr);
    assert!(
        f.stderr
            .contains("no traceable kernel function matches 'ksys_raed'"),
        "{}",
        f.stderr
    );
    assert!(f.stderr.contains("did you mean ksys_read"), "{}", f.stderr);
    support::assert_nothing_left(f.pid);

    let f = run("funccount", &["*"]);
    assert_eq!(f.code(), 2, "{}", f.stderr);
    assert!(f.stderr.contains("-F"), "{}", f.stderr);
    assert!(f.stderr.contains("about"), "{}", f.stderr);
    support::assert_nothing_left(f.pid);

    for bad in [
        vec!["x:y"],
        vec!["-r", "("],
        vec!["t:nosuchsys:*"],
        vec!["--method", "profiler", "-p", "1", "vfs_read"],
    ] {
        let f = run("funccount", &bad);
        assert_eq!(f.code(), 2, "{bad:?}: {}", f.stderr);
        assert_eq!(f.stderr.lines().count(), 1, "{bad:?}: {}", f.stderr);
    }
}

#[test]
fn list_shows_matches_without_tracing() {
    require_tracing!(FunctionTracer);
    let f = run(
        "funccount",
        &["-l", "vfs_read*", "t:syscalls:sys_enter_getppid"],
    );
    assert_eq!(f.code(), 0, "{}", f.stderr);
    assert!(f.stdout.lines().any(|l| l == "vfs_read"), "{}", f.stdout);
    assert!(
        f.stdout
            .lines()
            .any(|l| l == "t:syscalls:sys_enter_getppid"),
        "{}",
        f.stdout
    );
}

/// Tracepoints need no function tracer: this runs on the host too.
#[test]
fn tracepoints_count_exactly() {
    require_tracing!(SyscallTracepoints, Instances);
    let _g = global();
    let n = 20_000u64;
    let (f, made) = count_pid(
        &["getppid", &n.to_string()],
        &["t:syscalls:sys_enter_getpp*", "t:syscalls:sys_exit_getppid"],
    );
    assert_eq!(made, n);
    assert_eq!(f.code(), 0, "{}", f.stderr);
    let rows = last(&f);
    assert_eq!(
        rows.get("syscalls:sys_enter_getppid"),
        Some(&n),
        "{}",
        f.stdout
    );
    assert_eq!(
        rows.get("syscalls:sys_exit_getppid"),
        Some(&n),
        "{}",
        f.stdout
    );
    support::assert_nothing_left(f.pid);
}

/// -L with tracepoints (set_event_pid): runs on the host too.
#[test]
fn tid_counts_tracepoints_of_that_thread_only() {
    require_tracing!(SyscallTracepoints, Instances);
    let _g = global();
    let n = 5000u64;
    let (f, made, tid) = count_tid(
        &["getppid", &n.to_string()],
        &["t:syscalls:sys_enter_getppid"],
    );
    assert_eq!(made, n);
    assert_eq!(f.code(), 0, "{}", f.stderr);
    assert_eq!(
        last(&f).get("syscalls:sys_enter_getppid"),
        Some(&n),
        "{}\n{}",
        f.stdout,
        f.stderr
    );
    assert_task_said(&f, &format!("TID {tid}"), &format!("thread {tid}"));
    support::assert_nothing_left(f.pid);
}

#[test]
fn user_functions_count_exactly() {
    require_tracing!(UprobeEvents, Instances);
    let _g = global();
    let n = 10_000u64;
    // The program through /proc/PID/exe: the file the process runs, even
    // if a build replaces target/debug/ftt-workload meanwhile.
    let mut w = Workload::waiting(&["call", &n.to_string()]);
    let pid = w.pid().to_string();
    let exe = format!("/proc/{pid}/exe");
    let target = format!("u:{exe}:ftt_probe_tar*");
    let mut t = ToolRun::start("funccount", &["-p", &pid, &target]);
    t.wait_ready();
    w.go();
    let made = w.wait();
    let f = t.finish(Duration::from_secs(120));
    assert_eq!(made, n);
    assert_eq!(f.code(), 0, "{}", f.stderr);
    let rows = last(&f);
    let key = format!("{exe}:ftt_probe_target");
    assert_eq!(rows.get(&key), Some(&n), "{}\n{}", f.stdout, f.stderr);
    assert_task_said(&f, &format!("PID {pid}"), &format!("process {pid}"));
    support::assert_nothing_left(f.pid);
}

/// A signal at any moment, setup included, ends the run soon and puts
/// every setting back: the instance, the kprobes, the profiler and the
/// top-level filter.
#[test]
fn signals_at_random_moments_restore_everything() {
    require_tracing!(FunctionTracer, Instances);
    let _g = global();
    let before = top_level();
    let mut r = support::rng();
    let mut methods = vec!["auto", "tracer"];
    if support::has(Feature::KprobeEvents) {
        methods.push("kprobe");
    }
    if support::has(Feature::FunctionProfiler) {
        methods.push("profiler");
    }
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
        for m in &methods {
            let t = ToolRun::start("funccount", &["--method", m, "vfs_read*", "ksys_read"]);
            // Anywhere from start-up through attaching (seconds under
            // TCG) to counting.
            let at = Duration::from_millis(r(2500));
            eprintln!("method {m}");
            let f = t.signal_after(at, sig, Duration::from_secs(5));
            support::assert_nothing_left(f.pid);
            assert_eq!(top_level(), before, "signal {sig} ({m})");
        }
    }
}

/// SIGKILL leaves the profiler on; the next run puts it back.
#[test]
fn a_killed_profiler_run_is_restored_by_the_next_run() {
    require_tracing!(FunctionTracer, FunctionProfiler, Instances);
    let _g = global();
    let before = top_level();
    let zero = zero_functions();
    let mut a = vec!["--method", "profiler"];
    a.extend(zero.iter().copied());
    let mut t = ToolRun::start("funccount", &a);
    t.wait_ready();
    t.signal(libc::SIGKILL);
    let pid = t.pid();
    let _ = t.finish(Duration::from_secs(30));
    let root = support::tracefs_root();
    let on = std::fs::read_to_string(root.join("function_profile_enabled")).unwrap();
    assert_eq!(on.trim(), "1", "the profiler was left on");
    // Any next run puts it back, whatever it counts with; then the
    // profiler can be taken again.
    let f = run("funccount", &["-d", "0.5", "--method", "tracer", zero[0]]);
    assert_eq!(f.code(), 0, "{}", f.stderr);
    assert!(
        f.stderr
            .contains(&format!("left by funccount PID {pid} (killed)")),
        "{}",
        f.stderr
    );
    assert_eq!(top_level(), before);
    let f = run("funccount", &["-d", "0.5", "--method", "profiler", zero[0]]);
    assert_eq!(f.code(), 0, "{}", f.stderr);
    assert_eq!(method_of(&f), "profiler", "{}", f.stderr);
    assert_eq!(top_level(), before);
}
