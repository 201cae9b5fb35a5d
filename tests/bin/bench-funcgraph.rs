//! bench-funcgraph: figures for `funcgraph` (issue 9).
//!
//! An open() loop (`ftt-workload open PATH N`, timed from "go" to its
//! "done" line) untraced, then under funcgraph on the kernel's open
//! function (do_sys_openat2, or do_sys_open before 5.6) in several
//! configurations. For each: microseconds per open(), the slowdown
//! against the untraced loop (perf-tools warns the kernel runs at least
//! 50% slower under funcgraph), the records the graphs held (a `func() {`
//! or `}` line is one record, a `func();` line two), their rate, and the
//! events funcgraph reported lost. Also the time funcgraph takes to start
//! (to its Tracing line: the kernel patches every traceable function) and
//! to end.
//!
//! function_graph needs a kernel with a usable function tracer: run it in
//! a guest of tests/vm, e.g.
//!   tests/vm/run-in-guest 6.1 -- target/release/bench-funcgraph [N] [RUNS]
//! Under TCG (what tests/vm uses) the CPU is emulated: absolute times are
//! many times those of hardware; the ratios are what to read.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

fn bin(name: &str) -> PathBuf {
    std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .join(name)
}

fn traceable(name: &str) -> bool {
    ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
        .iter()
        .filter_map(|d| std::fs::read_to_string(format!("{d}/available_filter_functions")).ok())
        .any(|t| t.lines().any(|l| l == name))
}

struct Workload {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Workload {
    fn start(path: &str, n: u64) -> Workload {
        let mut child = Command::new(bin("ftt-workload"))
            .args(["--wait", "open", path, &n.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("ftt-workload");
        let stdin = child.stdin.take();
        // Let it reach its wait (the dynamic loader's opens come before).
        std::thread::sleep(Duration::from_millis(300));
        Workload { child, stdin }
    }

    /// Lets it go; the time until its "done" line.
    fn run(mut self) -> Duration {
        let mut out = BufReader::new(self.child.stdout.take().unwrap());
        let t0 = Instant::now();
        self.stdin.take().unwrap().write_all(b"go\n").unwrap();
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let took = t0.elapsed();
        assert!(line.starts_with("done"), "workload said {line:?}");
        self.child.wait().unwrap();
        took
    }
}

struct Traced {
    per_open_us: f64,
    records: u64,
    lost: u64,
    start: Duration,
    end: Duration,
    place: String,
}

/// Runs funcgraph ARGS around one workload run.
fn traced(path: &str, n: u64, args: &[&str], pid_filter: bool) -> Traced {
    let w = Workload::start(path, n);
    let pid = w.child.id().to_string();
    let mut a: Vec<&str> = Vec::new();
    if pid_filter {
        a.extend(["-p", &pid]);
    }
    a.extend(args);
    let t0 = Instant::now();
    let mut fg = Command::new(bin("funcgraph"))
        .args(&a)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("funcgraph");
    let mut err = BufReader::new(fg.stderr.take().unwrap());
    let place = loop {
        let mut l = String::new();
        if err.read_line(&mut l).unwrap() == 0 {
            panic!("funcgraph ended before tracing");
        }
        if l.starts_with("Tracing") {
            break if l.contains("private instance") {
                "private instance"
            } else {
                "top level"
            }
            .to_string();
        }
        eprint!("{l}");
    };
    let start = t0.elapsed();
    // Count records from the output while it runs.
    let mut out = fg.stdout.take().unwrap();
    let counter = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        let mut records = 0u64;
        for l in s.lines() {
            let call = l.rsplit('|').next().unwrap_or("").trim();
            if call.ends_with("() {") || call.starts_with('}') {
                records += 1;
            } else if call.contains("();") {
                records += 2;
            }
        }
        records
    });
    let took = w.run();
    let t1 = Instant::now();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(fg.id() as i32, libc::SIGINT) };
    let mut rest = String::new();
    let _ = err.read_to_string(&mut rest);
    fg.wait().unwrap();
    let end = t1.elapsed();
    let records = counter.join().unwrap();
    let lost = rest
        .lines()
        .find_map(|l| l.split("LOST ").nth(1))
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    Traced {
        per_open_us: took.as_secs_f64() * 1e6 / n as f64,
        records,
        lost,
        start,
        end,
        place,
    }
}

fn main() {
    let mut argv = std::env::args().skip(1);
    let n: u64 = argv.next().and_then(|s| s.parse().ok()).unwrap_or(2000);
    let runs: usize = argv.next().and_then(|s| s.parse().ok()).unwrap_or(3);
    if unsafe { libc::geteuid() } != 0 {
        println!("skipping: needs root");
        return;
    }
    // funcgraph mounts tracefs itself; its refusal says why it cannot run.
    let probe = Command::new(bin("funcgraph"))
        .args(["-d", "0.001", "no_such_function_for_bench"])
        .output()
        .expect("funcgraph");
    let why = String::from_utf8_lossy(&probe.stderr);
    if !why.contains("no traceable kernel function") {
        println!("skipping: {}", why.trim());
        return;
    }
    let Some(func) = ["do_sys_openat2", "do_sys_open"]
        .into_iter()
        .find(|f| traceable(f))
    else {
        println!("skipping: no do_sys_openat2 or do_sys_open to trace");
        return;
    };
    let dir = std::env::var("FTRACE_TOOLS_SCRATCH").unwrap_or_else(|_| "/tmp".into());
    let path = format!("{dir}/bench-funcgraph-{}", std::process::id());
    std::fs::write(&path, "x").unwrap();
    let uname = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let vm = std::env::var("FTRACE_TOOLS_IN_VM").ok();
    println!(
        "kernel {}{}",
        uname.trim(),
        match &vm {
            Some(t) => format!(
                ", tests/vm guest '{t}' (qemu TCG: an emulated CPU; absolute times are many times a real machine's)"
            ),
            None => String::new(),
        }
    );
    println!("open() loop: {n} opens of {path}, traced function {func}");

    let mut base: Vec<f64> = (0..runs)
        .map(|_| Workload::start(&path, n).run().as_secs_f64() * 1e6 / n as f64)
        .collect();
    base.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let base_us = base[base.len() / 2];
    println!(
        "{:<44} {:>10.1} us/open  (median of {runs})",
        "untraced", base_us
    );
    let configs: [(&str, Vec<&str>, bool); 4] = [
        ("funcgraph -p PID FUNC", vec![func], true),
        ("funcgraph -p PID -m 1 FUNC", vec!["-m", "1", func], true),
        ("funcgraph FUNC (all tasks)", vec![func], false),
        (
            "funcgraph -p PID -b 64 FUNC (small buffer)",
            vec!["-b", "64", func],
            true,
        ),
    ];
    for (name, args, pid) in configs {
        let t = traced(&path, n, &args, pid);
        println!(
            "{:<44} {:>10.1} us/open  x{:.1} slower ({:+.0}%); {} records ({:.0}/open, {:.0}/s), lost {}; start {:.1} s, end {:.1} s ({})",
            name,
            t.per_open_us,
            t.per_open_us / base_us,
            (t.per_open_us / base_us - 1.0) * 100.0,
            t.records,
            t.records as f64 / n as f64,
            t.records as f64 / (t.per_open_us * n as f64 / 1e6),
            t.lost,
            t.start.as_secs_f64(),
            t.end.as_secs_f64(),
            t.place
        );
    }
    let _ = std::fs::remove_file(&path);
}
