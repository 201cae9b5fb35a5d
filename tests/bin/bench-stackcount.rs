//! bench-stackcount: what counting stacks costs, three ways, on the same
//! workload in the same run.
//!
//!   bench-stackcount [--secs S] [--runs N]
//!
//! Uses the release builds next to this program (`cargo build --release
//! --workspace --bins`). A getppid loop pinned to one CPU, as fast as it can
//! (`ftt-workload spin S`), first untraced, then with the kernel stacks of
//! `__do_sys_getppid` (a kprobe) counted by:
//!
//! - `stackcount --in kernel -K -p PID` (a hist trigger keyed on the stack,
//!   where the kernel has hist triggers);
//! - `stackcount --in buffer -K -p PID` (a stack record per event, read
//!   from the binary buffer and counted);
//! - perf-tools' way: `kprobe -s -p PID` printing every event and its
//!   stack, piped into a count of the events (this program).
//!
//! Per run: calls offered (the loop's count), counted, lost; the tool's CPU
//! (user + system from wait4's rusage, less its start-up) as a share of one
//! core; the loop's rate against the untraced one. Then the medians, and
//! each way against `kprobe -s` as ratios.
//!
//! Kprobes exist in the VM guests, not on this project's host: run it
//! there, e.g. `tests/vm/run-in-guest bpo --tracefs --
//! target/release/bench-stackcount`. Needs root.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::Instant;

#[path = "shared/bench.rs"]
mod bench;
use bench::{bin, done_count, median, ncpus, proc_cpu, spin, wait_rusage};

const FUNC: &str = "__do_sys_getppid";

struct Run {
    offered: u64,
    counted: u64,
    /// What the tool said of lost events.
    said: Option<String>,
    rate: f64,
    cores: f64,
}

/// Counts the events of `kprobe -s` output: every line but the stack
/// frames (` => func+off`).
fn kprobe_events(out: &str) -> u64 {
    out.lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with("=>"))
        .count() as u64
}

/// The total of stackcount's blocks (a count alone on the last line of
/// each).
fn stackcount_total(out: &str) -> u64 {
    out.split("\n\n")
        .filter_map(|b| b.lines().last()?.trim().parse::<u64>().ok())
        .sum()
}

fn traced(secs: f64, way: &str) -> Run {
    let mut w = spin(secs, true);
    let pid = w.id().to_string();
    let mut cmd = match way {
        "kprobe -s" => {
            let mut c = Command::new(bin("kprobe"));
            c.args(["-s", "-p", &pid, &format!("p:{FUNC}")]);
            c
        }
        place => {
            let mut c = Command::new(bin("stackcount"));
            c.args(["--in", place, "-K", "-p", &pid, FUNC]);
            c
        }
    };
    let mut t = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the tool");
    let mut err = BufReader::new(t.stderr.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        if err.read_line(&mut line).unwrap() == 0 {
            panic!("{way} exited before tracing");
        }
        if line.contains("Tracing") {
            break;
        }
    }
    // Read its output while it runs, as a pipe into a count would.
    let mut stdout = t.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        stdout.read_to_string(&mut out).unwrap();
        out
    });
    let setup = proc_cpu(t.id());
    let t0 = Instant::now();
    w.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let offered = done_count(&mut w);
    let (code, cpu) = wait_rusage(&mut t);
    let wall = t0.elapsed();
    let out = reader.join().unwrap();
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    assert_eq!(code, 0, "{way} failed: {rest}");
    let counted = if way == "kprobe -s" {
        kprobe_events(&out)
    } else {
        stackcount_total(&out)
    };
    Run {
        offered,
        counted,
        said: rest
            .lines()
            .find(|l| l.contains("LOST") || l.contains("lost"))
            .map(|l| l.trim().to_string()),
        rate: offered as f64 / secs,
        cores: cpu.saturating_sub(setup).as_secs_f64() / wall.as_secs_f64(),
    }
}

fn has(path: &str) -> bool {
    ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
        .iter()
        .any(|r| std::path::Path::new(r).join(path).exists())
}

fn main() {
    let mut secs = 2.0f64;
    let mut runs = 3usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--secs" => secs = args.next().and_then(|s| s.parse().ok()).expect("--secs S"),
            "--runs" => runs = args.next().and_then(|s| s.parse().ok()).expect("--runs N"),
            _ => {
                eprintln!("usage: bench-stackcount [--secs S] [--runs N]");
                std::process::exit(2);
            }
        }
    }
    // SAFETY: no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("bench-stackcount: needs root");
        std::process::exit(2);
    }
    if !has("kprobe_events") {
        println!("no kprobe events here: run it in a VM guest (tests/vm/run-in-guest)");
        return;
    }
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    println!(
        "kernel {}, {} CPUs, the getppid loop pinned to CPU {}; stacks of {FUNC}",
        kernel.trim(),
        ncpus(),
        ncpus() - 1
    );
    let mut w = spin(secs, false);
    let base = done_count(&mut w) as f64 / secs;
    println!("untraced: {:.3} M calls/s", base / 1e6);
    let mut ways = vec!["kprobe -s", "buffer"];
    if has("events/syscalls/sys_enter_getppid/hist") {
        ways.push("kernel");
    } else {
        println!("no hist triggers here: the kernel way is left out");
    }
    let name = |w: &str| match w {
        "kprobe -s" => "kprobe -s | count".to_string(),
        p => format!("stackcount --in {p}"),
    };
    let mut all: Vec<(&str, Vec<Run>)> = ways.iter().map(|w| (*w, Vec::new())).collect();
    for _ in 0..runs {
        for (way, v) in all.iter_mut() {
            let r = traced(secs, way);
            println!(
                "{}: offered {} counted {} lost {}{}; loop {:.3} M/s = {:.2}x slower than untraced; tool CPU {:.3} core",
                name(way),
                r.offered,
                r.counted,
                r.offered as i64 - r.counted as i64,
                r.said.as_deref().map(|l| format!(" ({l})")).unwrap_or_default(),
                r.rate / 1e6,
                base / r.rate,
                r.cores
            );
            v.push(r);
        }
    }
    let med = |v: &[Run], f: fn(&Run) -> f64| median(v.iter().map(f).collect());
    for (way, v) in &all {
        println!(
            "median {}: {:.0} events/s, lost {:.1}%, loop {:.2}x slower than untraced, tool CPU {:.3} core",
            name(way),
            med(v, |r| r.rate),
            med(v, |r| 100.0 * (r.offered as f64 - r.counted as f64) / r.offered.max(1) as f64),
            base / med(v, |r| r.rate),
            med(v, |r| r.cores)
        );
    }
    let (_, k) = &all[0];
    for (way, v) in &all[1..] {
        println!(
            "{} against kprobe -s | count (medians): events/s {:.2}x, tool CPU {:.3}x",
            name(way),
            med(v, |r| r.rate) / med(k, |r| r.rate),
            med(v, |r| r.cores) / med(k, |r| r.cores).max(1e-9)
        );
    }
}
