//! bench-hist: hist's kernel path against its user-space path, side by
//! side on the same workload.
//!
//!   bench-hist [--secs S] [--runs N]
//!
//! Uses the release builds next to this program (`cargo build --release
//! --workspace --bins`). A getppid loop pinned to one CPU, as fast as it can
//! (`ftt-workload spin S`; about 1 M calls/s in the 6.12 guest under TCG,
//! 3 to 4 M/s on the host), first untraced, then under
//! `hist -p PID --in WHERE syscalls:sys_enter_getppid keys=common_pid` for
//! each path this kernel has (`buffer` always, `kernel` where it has hist
//! triggers), N runs each, alternating. Prints, per run: calls offered (the
//! loop's count), counted (the hitcount), lost; hist's own CPU (user +
//! system, from wait4's rusage, less what its start-up took) as a share of
//! one core and per 1 M events/s;
//! the loop's rate against the untraced one. Then the medians, and the
//! kernel path against the buffer path as ratios.
//!
//! Hist triggers exist in the VM guests, not on the host: run it there,
//! e.g. `tests/vm/run-in-guest bpo --tracefs -- target/release/bench-hist`.
//! Needs root.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

#[path = "shared/bench.rs"]
mod bench;
use bench::{bin, done_count, median, ncpus, proc_cpu, spin, wait_rusage};

fn has_hist() -> bool {
    ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
        .iter()
        .any(|r| {
            Path::new(r)
                .join("events/syscalls/sys_enter_getppid/hist")
                .exists()
        })
}

struct Run {
    offered: u64,
    counted: u64,
    lost: Option<String>,
    rate: f64,
    cores: f64,
}

fn traced(secs: f64, place: &str) -> Run {
    let mut w = spin(secs, true);
    let pid = w.id().to_string();
    let mut h = Command::new(bin("hist"))
        .args([
            "-p",
            &pid,
            "--in",
            place,
            "syscalls:sys_enter_getppid",
            "keys=common_pid",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start hist");
    let mut err = BufReader::new(h.stderr.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        if err.read_line(&mut line).unwrap() == 0 {
            panic!("hist exited before tracing");
        }
        if line.contains("Tracing") {
            break;
        }
    }
    // Its start-up (instance, probe, trigger) is not the cost per event.
    let setup = proc_cpu(h.id());
    let t0 = Instant::now();
    w.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let offered = done_count(&mut w);
    let mut stdout = h.stdout.take().unwrap();
    let (code, cpu) = wait_rusage(&mut h);
    let wall = t0.elapsed();
    let mut out = String::new();
    stdout.read_to_string(&mut out).unwrap();
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    assert_eq!(code, 0, "hist failed: {rest}");
    let counted = out
        .lines()
        .filter_map(|l| l.split("hitcount:").nth(1))
        .filter_map(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    Run {
        offered,
        counted,
        lost: rest
            .lines()
            .find(|l| l.contains("LOST") || l.contains("lost"))
            .map(str::to_string),
        rate: offered as f64 / secs,
        cores: cpu.saturating_sub(setup).as_secs_f64() / wall.as_secs_f64(),
    }
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
                eprintln!("usage: bench-hist [--secs S] [--runs N]");
                std::process::exit(2);
            }
        }
    }
    // SAFETY: no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("bench-hist: needs root");
        std::process::exit(2);
    }
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    println!(
        "kernel {}, {} CPUs, the loop pinned to CPU {}",
        kernel.trim(),
        ncpus(),
        ncpus() - 1
    );
    let mut w = spin(secs, false);
    let base = done_count(&mut w) as f64 / secs;
    println!("getppid loop, untraced: {:.2} M calls/s", base / 1e6);
    let mut places = vec!["buffer"];
    if has_hist() {
        places.push("kernel");
    } else {
        println!("no hist triggers here: the buffer path only (run it in a VM guest)");
    }
    let mut all: Vec<(&str, Vec<Run>)> = places.iter().map(|p| (*p, Vec::new())).collect();
    for _ in 0..runs {
        for (place, v) in all.iter_mut() {
            let r = traced(secs, place);
            println!(
                "--in {place}: offered {} counted {} lost {}{}; loop {:.2} M/s = {:.2}x slower than untraced; hist CPU {:.3} core = {:.3} core per 1 M events/s",
                r.offered,
                r.counted,
                r.offered as i64 - r.counted as i64,
                r.lost.as_deref().map(|l| format!(" ({l})")).unwrap_or_default(),
                r.rate / 1e6,
                base / r.rate,
                r.cores,
                r.cores / (r.rate / 1e6)
            );
            v.push(r);
        }
    }
    let med = |v: &[Run], f: fn(&Run) -> f64| median(v.iter().map(f).collect());
    for (place, v) in &all {
        println!(
            "median --in {place}: loop {:.2} M/s ({:.2}x slower than untraced), hist CPU {:.3} core, {:.3} core per 1 M events/s",
            med(v, |r| r.rate) / 1e6,
            base / med(v, |r| r.rate),
            med(v, |r| r.cores),
            med(v, |r| r.cores / (r.rate / 1e6))
        );
    }
    if let [(_, b), (_, k)] = &all[..] {
        println!(
            "kernel vs buffer (medians): loop rate {:.2}x, hist CPU {:.3}x",
            med(k, |r| r.rate) / med(b, |r| r.rate),
            med(k, |r| r.cores) / med(b, |r| r.cores).max(1e-9)
        );
    }
}
