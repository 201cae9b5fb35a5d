//! Black-box tests of `syscount`, run against the real kernel (and, by
//! tests/vm, against the guest kernels, where hist triggers count in the
//! kernel).
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use support::{run, Finished, ToolRun, Workload};

/// The rows of a `SYSCALL COUNT` table: name -> count.
fn by_syscall(out: &str) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for line in out.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        if w.len() >= 2 && w[0] != "SYSCALL" {
            if let Ok(n) = w[1].parse() {
                m.insert(w[0].to_string(), n);
            }
        }
    }
    m
}

/// A buffer large enough that the whole run of 1 M calls fits even if the
/// reader (a debug build, sharing 2 cores with other tests) never ran:
/// only needed where the kernel cannot count in place.
fn big_buffer_unless_hist() -> Vec<&'static str> {
    if support::has(ftrace_common::kernel::caps::Feature::HistTriggers) {
        vec![]
    } else {
        vec!["-b", "131072"]
    }
}

/// Runs `syscount ARGS -p WORKLOAD` on a waiting workload, lets the
/// workload go once tracing, and returns the tool's output (the run ends by
/// itself when the workload exits) and the workload's count.
fn count_workload(workload: &[&str], args: &[&str]) -> (Finished, u64) {
    let mut w = Workload::waiting(workload);
    let pid = w.pid().to_string();
    let mut a: Vec<&str> = args.to_vec();
    a.extend(["-p", &pid]);
    let mut t = ToolRun::start("syscount", &a);
    t.wait_ready();
    w.go();
    let made = w.wait();
    (t.finish(Duration::from_secs(120)), made)
}

#[test]
fn list_names_the_known_calls() {
    let f = run("syscount", &["-l"]);
    assert_eq!(f.code(), 0, "{}", f.stderr);
    let nr = libc::SYS_getppid;
    assert!(
        f.stdout
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == [nr.to_string().as_str(), "getppid"]),
        "{}",
        f.stdout
    );
}

#[test]
fn exactly_a_million_getppid_calls_of_one_process() {
    require_tracing!(RawSyscalls, Instances);
    let n = 1_000_000u64;
    let mut args = vec!["-c"];
    args.extend(big_buffer_unless_hist());
    let (f, made) = count_workload(&["getppid", &n.to_string()], &args);
    assert_eq!(made, n);
    assert_eq!(f.code(), 0, "{}", f.stderr);
    assert!(
        f.stdout
            .starts_with(&format!("{:<17} {:>8}\n", "SYSCALL", "COUNT")),
        "{}",
        f.stdout
    );
    let rows = by_syscall(&f.stdout);
    assert_eq!(rows.get("getppid"), Some(&n), "{}\n{}", f.stdout, f.stderr);
    // Largest last, as perf-tools sorts.
    assert!(f
        .stdout
        .trim_end()
        .lines()
        .last()
        .unwrap()
        .starts_with("getppid "));
    assert!(!f.stderr.contains("LOST"), "{}", f.stderr);
    support::assert_nothing_left(f.pid);
}

#[test]
fn one_thread_with_tid() {
    require_tracing!(RawSyscalls, Instances);
    let n = 30_000u64;
    let mut w = Workload::waiting(&["getppid", &n.to_string()]);
    let tid = w.pid().to_string();
    let mut t = ToolRun::start("syscount", &["-c", "--tid", &tid]);
    t.wait_ready();
    w.go();
    assert_eq!(w.wait(), n);
    let f = t.finish(Duration::from_secs(60));
    assert_eq!(f.code(), 0, "{}", f.stderr);
    assert!(f.stderr.contains(&format!("for TID {tid}")), "{}", f.stderr);
    assert_eq!(
        by_syscall(&f.stdout).get("getppid"),
        Some(&n),
        "{}",
        f.stdout
    );
    support::assert_nothing_left(f.pid);
}

#[test]
fn a_thread_id_given_as_a_process_is_explained() {
    require_tracing!(RawSyscalls, Instances);
    let (tx, rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let h = std::thread::spawn(move || {
        // SAFETY: gettid has no preconditions.
        tx.send(unsafe { libc::gettid() }).unwrap();
        let _ = done_rx.recv();
    });
    let tid = rx.recv().unwrap().to_string();
    let f = run("syscount", &["-c", "-p", &tid]);
    done_tx.send(()).unwrap();
    h.join().unwrap();
    assert_eq!(f.code(), 2, "{}", f.stderr);
    let me = std::process::id();
    assert!(
        f.stderr.contains(&format!(
            "{tid} is a thread of process {me}: use -p {me}, or --tid {tid}"
        )),
        "{}",
        f.stderr
    );
    support::assert_nothing_left(f.pid);
}

#[test]
fn failed_calls_and_errno_filters() {
    require_tracing!(RawSyscalls, Instances);
    let n = 20_000u64;
    for (args, want) in [
        (vec!["-c", "-x"], Some(n)),
        (vec!["-c", "-e", "EBADF"], Some(n)),
        (vec!["-c", "-e", "9"], Some(n)),
        (vec!["-c", "-e", "ENOENT"], None),
    ] {
        let (f, made) = count_workload(&["close-fail", &n.to_string()], &args);
        assert_eq!(made, n);
        assert_eq!(f.code(), 0, "{}", f.stderr);
        let rows = by_syscall(&f.stdout);
        assert_eq!(rows.get("close").copied(), want, "{args:?}:\n{}", f.stdout);
        assert!(
            f.stderr.contains("Tracing failed system calls"),
            "{}",
            f.stderr
        );
        support::assert_nothing_left(f.pid);
    }
}

#[test]
fn command_mode_counts_the_command_from_its_first_call() {
    require_tracing!(RawSyscalls, Instances);
    let n = 54_321u64;
    let wl = support::workload_bin();
    let f = run(
        "syscount",
        &["-c", wl.to_str().unwrap(), "getppid", &n.to_string()],
    );
    assert_eq!(f.code(), 0, "{}", f.stderr);
    assert!(f.stdout.starts_with(&format!("done {n}\n")), "{}", f.stdout);
    let rows = by_syscall(&f.stdout);
    assert_eq!(rows.get("getppid"), Some(&n), "{}", f.stdout);
    // Its very first call is the execve, its last the exit_group.
    assert_eq!(rows.get("execve"), Some(&1), "{}", f.stdout);
    assert_eq!(rows.get("exit_group"), Some(&1), "{}", f.stdout);
    // syscount's own reads and writes (the pipe it released the child
    // with) are not there: the child makes exactly one write ("done N").
    assert_eq!(rows.get("write"), Some(&1), "{}", f.stdout);
    support::assert_nothing_left(f.pid);
}

/// The command's children are counted too: a shell that runs the
/// workload twice.
#[test]
fn command_mode_counts_the_commands_children() {
    require_tracing!(RawSyscalls, Instances);
    let wl = support::workload_bin();
    let wl = wl.to_str().unwrap();
    let script = format!("{wl} close-fail 70; {wl} close-fail 30");
    let f = run("syscount", &["-c", "-x", "sh", "-c", &script]);
    assert_eq!(f.code(), 0, "{}", f.stderr);
    assert!(f.stdout.starts_with("done 70\ndone 30\n"), "{}", f.stdout);
    // Each close(-1) fails with EBADF; the shell itself closes no -1.
    let rows = by_syscall(&f.stdout);
    assert_eq!(rows.get("close"), Some(&100), "{}", f.stdout);
    support::assert_nothing_left(f.pid);
}

#[test]
fn command_mode_by_process_name_and_exit_status() {
    require_tracing!(RawSyscalls, Instances);
    let wl = support::workload_bin();
    let f = run("syscount", &[wl.to_str().unwrap(), "getppid", "1000"]);
    assert_eq!(f.code(), 0, "{}", f.stderr);
    let names: Vec<&str> = f
        .stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    // The command is named by what it became (not by the "syscount" it
    // was between fork and exec).
    assert!(names.contains(&"ftt-workload"), "{}", f.stdout);
    assert!(!names.contains(&"syscount"), "{}", f.stdout);

    let f = run("syscount", &["-c", "sh", "-c", "exit 3"]);
    assert_eq!(f.code(), 3, "{}", f.stderr);
    assert!(f.stderr.contains("exited with status 3"), "{}", f.stderr);
    assert_eq!(
        by_syscall(&f.stdout).get("exit_group"),
        Some(&1),
        "{}",
        f.stdout
    );
    support::assert_nothing_left(f.pid);
}

/// Runs the `nanosleep-timed` workload (N sleeps of MS ms) under
/// `syscount ARGS -p`; returns the output and the workload's own average
/// time per sleep in ns (measured around each sleep, in the process).
fn timed_sleeps(n: u64, ms: u64, args: &[&str]) -> (Finished, f64) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("total");
    let p = path.to_str().unwrap();
    let (f, made) = count_workload(
        &["nanosleep-timed", &n.to_string(), &ms.to_string(), p],
        args,
    );
    assert_eq!(made, n);
    let total: f64 = std::fs::read_to_string(&path).unwrap().parse().unwrap();
    (f, total / n as f64)
}

/// The `clock_nanosleep` row (std's sleep on Linux) split in words.
fn sleep_row(out: &str) -> Vec<String> {
    out.lines()
        .find(|l| l.starts_with("clock_nanosleep "))
        .unwrap_or_else(|| panic!("no clock_nanosleep row:\n{out}"))
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

#[test]
fn latency_of_sleeps_is_measured() {
    require_tracing!(RawSyscalls, Instances);
    let (f, real_ns) = timed_sleeps(100, 10, &["-c", "-L", "--hist", "clock_nanosleep"]);
    assert_eq!(f.code(), 0, "{}", f.stderr);
    let head = f.stdout.lines().next().unwrap();
    assert_eq!(
        head,
        format!(
            "{:<17} {:>8} {:>14} {:>10}",
            "SYSCALL", "COUNT", "TIME (us)", "AVG (us)"
        )
    );
    let w = sleep_row(&f.stdout);
    assert_eq!(w[1], "100", "{w:?}");
    let avg: f64 = w[3].parse().unwrap();
    let real = real_ns / 1000.0;
    // Never shorter than asked, and what the sleeping process saw itself
    // (a loaded VM oversleeps: that is real, and measured as such).
    assert!(
        avg >= 10_000.0 && (avg - real).abs() <= real * 0.1,
        "average {avg} us, the workload saw {real:.0} us per sleep: {w:?}"
    );
    if real <= 10_500.0 {
        // A machine that sleeps on time: within 10% of 10 ms.
        assert!((avg - 10_000.0).abs() <= 1_000.0, "{w:?}");
    }
    // The histogram holds all 100 calls.
    assert!(
        f.stdout.contains("syscall = clock_nanosleep"),
        "{}",
        f.stdout
    );
    let in_hist: u64 = f
        .stdout
        .lines()
        .filter(|l| l.contains(" -> ") && l.contains('|'))
        .filter_map(|l| {
            l.split(':')
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum();
    assert_eq!(in_hist, 100, "{}", f.stdout);
    support::assert_nothing_left(f.pid);
}

#[test]
fn latency_in_milliseconds() {
    require_tracing!(RawSyscalls, Instances);
    let (f, real_ns) = timed_sleeps(5, 20, &["-c", "-L", "-m"]);
    assert_eq!(f.code(), 0, "{}", f.stderr);
    assert!(f.stdout.contains("TIME (ms)"));
    let w = sleep_row(&f.stdout);
    let avg: f64 = w[3].parse().unwrap();
    let real = real_ns / 1e6;
    assert!(
        avg >= 20.0 && (avg - real).abs() <= real * 0.1,
        "{w:?} ({real:.1} ms)"
    );
}

#[test]
fn intervals_print_one_summary_each() {
    require_tracing!(RawSyscalls, Instances);
    let t0 = Instant::now();
    let f = run("syscount", &["-c", "-i", "1", "-d", "3"]);
    let took = t0.elapsed();
    assert_eq!(f.code(), 0, "{}", f.stderr);
    assert_eq!(f.count("SYSCALL"), 3, "{}", f.stdout);
    let stamp = regex::Regex::new(r"^\[\d\d:\d\d:\d\d\]$").unwrap();
    assert_eq!(
        f.stdout.lines().filter(|l| stamp.is_match(l)).count(),
        3,
        "{}",
        f.stdout
    );
    assert!(took < Duration::from_secs(10), "{took:?}");
    support::assert_nothing_left(f.pid);
}

#[test]
fn top_keeps_the_largest_rows() {
    require_tracing!(RawSyscalls, Instances);
    let wl = support::workload_bin();
    let f = run(
        "syscount",
        &["-c", "-t", "5", wl.to_str().unwrap(), "getppid", "777"],
    );
    assert_eq!(f.code(), 0, "{}", f.stderr);
    let table: Vec<&str> = f
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("SYSCALL"))
        .collect();
    assert_eq!(table.len(), 1 + 5, "{}", f.stdout);
    assert!(table[5].starts_with("getppid "), "{}", f.stdout);
    assert!(f.stderr.contains("Top 5 only"), "{}", f.stderr);
}

#[test]
fn never_counts_itself() {
    require_tracing!(RawSyscalls, Instances);
    let f = run("syscount", &["-v", "-d", "1"]);
    assert_eq!(f.code(), 0, "{}", f.stderr);
    assert!(f
        .stdout
        .starts_with(&format!("{:<6} {:<16} {:>8}\n", "PID", "COMM", "COUNT")));
    let me = f.pid.to_string();
    for line in f.stdout.lines().skip(1) {
        assert_ne!(
            line.split_whitespace().next(),
            Some(me.as_str()),
            "{}",
            f.stdout
        );
    }
    support::assert_nothing_left(f.pid);
}

/// A 32-bit x86 program of three getpid() calls and exit(0), by hand:
/// an ELF header, one program header, 30 bytes of code.
fn tiny_i386_program(path: &std::path::Path) {
    let mut code = Vec::new();
    for _ in 0..3 {
        code.extend_from_slice(&[0xb8, 20, 0, 0, 0, 0xcd, 0x80]); // mov eax, 20 (getpid); int 0x80
    }
    code.extend_from_slice(&[0xb8, 1, 0, 0, 0, 0x31, 0xdb, 0xcd, 0x80]); // exit(0)
    let base: u32 = 0x0804_8000;
    let total = 84 + code.len() as u32;
    let mut f = vec![0x7f, b'E', b'L', b'F', 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    for (v, n) in [
        (2u32, 2),
        (3, 2),
        (1, 4),
        (base + 84, 4),
        (52, 4),
        (0, 4),
        (0, 4),
    ] {
        f.extend_from_slice(&v.to_le_bytes()[..n]);
    }
    for v in [52u16, 32, 1, 0, 0, 0] {
        f.extend_from_slice(&v.to_le_bytes());
    }
    for v in [1u32, 0, base, base, total, total, 5, 0x1000] {
        f.extend_from_slice(&v.to_le_bytes());
    }
    f.extend_from_slice(&code);
    std::fs::write(path, f).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn a_32bit_program_is_called_out() {
    require_tracing!(RawSyscalls, Instances);
    require!(cfg!(target_arch = "x86_64"), "the test program is x86 code");
    let dir = tempfile::tempdir().unwrap();
    let prog = dir.path().join("tiny32");
    tiny_i386_program(&prog);
    let runs = std::process::Command::new(&prog)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    require!(
        runs,
        "this kernel runs no 32-bit programs (CONFIG_IA32_EMULATION)"
    );
    let f = run("syscount", &["-c", prog.to_str().unwrap()]);
    assert_eq!(f.code(), 0, "{}", f.stderr);
    assert!(f.stderr.contains("is a 32-bit program"), "{}", f.stderr);
    // Its three getpid calls (i386 number 20) are counted, under number 20.
    let rows = by_syscall(&f.stdout);
    assert_eq!(rows.get("writev"), Some(&3), "{}", f.stdout);
}

#[test]
fn json_summaries() {
    require_tracing!(RawSyscalls, Instances);
    let wl = support::workload_bin();
    let f = run(
        "syscount",
        &["-c", "-j", wl.to_str().unwrap(), "getppid", "100"],
    );
    assert_eq!(f.code(), 0, "{}", f.stderr);
    let line = f.stdout.lines().find(|l| l.starts_with('{')).unwrap();
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    let rows = v["rows"].as_array().unwrap();
    let g = rows.iter().find(|r| r["syscall"] == "getppid").unwrap();
    assert_eq!(g["count"], 100);
    assert_eq!(g["nr"], libc::SYS_getppid);
}

#[test]
fn a_process_option_leaves_out_its_children() {
    require_tracing!(RawSyscalls, Instances);
    // A shell that waits, then runs the workload as a child (not exec).
    let wl = support::workload_bin();
    let script = format!("read x; {} getppid 5000; true", wl.display());
    let mut sh = std::process::Command::new("sh")
        .args(["-c", &script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = sh.id().to_string();
    let mut t = ToolRun::start("syscount", &["-c", "-p", &pid]);
    t.wait_ready();
    use std::io::Write;
    sh.stdin.take().unwrap().write_all(b"go\n").unwrap();
    assert!(sh.wait().unwrap().success());
    let f = t.finish(Duration::from_secs(60));
    assert_eq!(f.code(), 0, "{}", f.stderr);
    let rows = by_syscall(&f.stdout);
    // The shell's own calls are there (it forked and waited) ...
    assert!(rows.contains_key("wait4"), "{}", f.stdout);
    // ... its child's 5000 getppid calls are not.
    assert!(
        rows.get("getppid").copied().unwrap_or(0) < 5000,
        "{}",
        f.stdout
    );
}

#[test]
fn bad_input_exits_2_with_one_line_and_leaves_nothing() {
    require_tracing!(RawSyscalls, Instances);
    let cases: [(&[&str], &str); 6] = [
        (&["-e", "EBDF"], "unknown errno 'EBDF'; did you mean EBADF"),
        (&["-p", "999999999"], "no process with PID 999999999"),
        (
            &["no-such-command-xyz"],
            "command not found: no-such-command-xyz",
        ),
        (
            &["--hist", "getppdi", "-d", "1"],
            "no system call 'getppdi'",
        ),
        (&["-m", "-d", "1"], "needs -L"),
        (&["-t", "0"], "not a positive number"),
    ];
    for (args, msg) in cases {
        let f = run("syscount", args);
        assert_eq!(f.code(), 2, "{args:?}: {}", f.stderr);
        assert!(f.stderr.contains(msg), "{args:?}: {}", f.stderr);
        assert!(f.stdout.is_empty(), "{args:?}: {}", f.stdout);
        support::assert_nothing_left(f.pid);
    }
    // One clear line for our own errors.
    let f = run("syscount", &["-e", "EBDF"]);
    assert_eq!(f.stderr.trim_end().lines().count(), 1, "{}", f.stderr);
    assert!(f.stderr.starts_with("syscount: "));
}

#[test]
fn sigint_prints_the_summary_and_leaves_nothing() {
    require_tracing!(RawSyscalls, Instances);
    let mut t = ToolRun::start("syscount", &["-c"]);
    t.wait_ready();
    std::thread::sleep(Duration::from_millis(300));
    let f = t.stop();
    assert_eq!(f.code(), 0, "{}", f.stderr);
    assert!(f.stdout.starts_with("SYSCALL"), "{}", f.stdout);
    assert!(f.exit_time < support::exit_bound(), "{:?}", f.exit_time);
    support::assert_nothing_left(f.pid);
}

/// The same workloads counted in the kernel (hist triggers) and from the
/// buffer give the same tables. Needs hist triggers: runs in the VM guests.
#[test]
fn kernel_and_buffer_counting_agree() {
    require_tracing!(RawSyscalls, Instances, HistTriggers);
    let n = 100_000u64;
    let cases: [(&[&str], Vec<&str>); 4] = [
        (&["getppid", "100000"], vec!["-c"]),
        (&["close-fail", "30000"], vec!["-c", "-x"]),
        (&["close-fail", "30000"], vec!["-c", "-e", "EBADF"]),
        (&["read-zero", "20000"], vec!["-v"]),
    ];
    for (workload, args) in cases {
        let mut outs = Vec::new();
        for count_in in ["kernel", "buffer"] {
            let mut a = args.clone();
            a.extend(["--count-in", count_in]);
            let (f, _) = count_workload(workload, &a);
            assert_eq!(f.code(), 0, "{a:?}: {}", f.stderr);
            let how = if count_in == "kernel" {
                "(counted in the kernel)"
            } else {
                "(from the trace buffer)"
            };
            assert!(f.stderr.contains(how), "{a:?}: {}", f.stderr);
            assert!(!f.stderr.contains("LOST"), "{a:?}: {}", f.stderr);
            assert!(!f.stderr.contains("disagree"), "{a:?}: {}", f.stderr);
            support::assert_nothing_left(f.pid);
            outs.push(f.stdout);
        }
        // PIDs differ between the two runs (two workloads): compare
        // without the PID column.
        let strip = |s: &str| -> Vec<String> {
            s.lines()
                .map(|l| {
                    let w: Vec<&str> = l.split_whitespace().collect();
                    if args.contains(&"-v") && w.len() == 3 {
                        format!("{} {}", w[1], w[2])
                    } else {
                        w.join(" ")
                    }
                })
                .collect()
        };
        assert_eq!(strip(&outs[0]), strip(&outs[1]), "{args:?} {workload:?}");
    }
    let (f, _) = count_workload(&["getppid", &n.to_string()], &["-c"]);
    assert!(
        f.stderr.contains("(counted in the kernel)"),
        "auto picks the kernel: {}",
        f.stderr
    );
    assert_eq!(by_syscall(&f.stdout).get("getppid"), Some(&n));
}

/// Hist triggers are removed with the run: nothing stays on the events of
/// our instance, and the top level's triggers are untouched.
#[test]
fn hist_trigger_leaves_nothing() {
    require_tracing!(RawSyscalls, Instances, HistTriggers);
    let root = support::tracefs_root();
    let top = |e: &str| {
        std::fs::read_to_string(root.join(format!("events/raw_syscalls/{e}/trigger"))).unwrap()
    };
    let before = (top("sys_enter"), top("sys_exit"));
    let f = run("syscount", &["-c", "-d", "1"]);
    assert_eq!(f.code(), 0, "{}", f.stderr);
    assert!(f.stderr.contains("(counted in the kernel)"), "{}", f.stderr);
    assert_eq!((top("sys_enter"), top("sys_exit")), before);
    support::assert_nothing_left(f.pid);
}

#[test]
fn write_then_trace_cmd_report_and_read_count_the_same_calls() {
    require_tracing!(RawSyscalls, Instances);
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("calls.dat");
    let path = file.to_str().unwrap();
    let wl = support::workload_bin();
    let n = 5_000u64;
    let f = run(
        "syscount",
        &["-w", path, wl.to_str().unwrap(), "getppid", &n.to_string()],
    );
    assert_eq!(f.code(), 0, "{}", f.stderr);
    assert!(f.stderr.contains("wrote "), "{}", f.stderr);
    let r = run("syscount", &["-c", "--read", path]);
    assert_eq!(r.code(), 0, "{}", r.stderr);
    assert_eq!(
        by_syscall(&r.stdout).get("getppid"),
        Some(&n),
        "{}",
        r.stdout
    );
    // Latency from the same file: both events were recorded.
    let l = run("syscount", &["-cL", "--read", path]);
    assert_eq!(
        by_syscall(&l.stdout).get("getppid"),
        Some(&n),
        "{}",
        l.stdout
    );
    if let Some(text) = support::trace_cmd_report(&file) {
        let nr = format!("NR {} ", libc::SYS_getppid);
        let enter = text
            .lines()
            .filter(|l| l.contains("sys_enter:") && l.contains(&nr))
            .count();
        let exit = text
            .lines()
            .filter(|l| l.contains("sys_exit:") && l.contains(&nr))
            .count();
        assert_eq!((enter, exit), (n as usize, n as usize));
    }
}
