//! bench-snoop: what opensnoop costs per event, and what it loses, at set
//! rates of opens.
//!
//!   bench-snoop [--secs S] [--runs N] [--rates R1,R2,...]
//!
//! Uses the release builds next to this program (`cargo build --release
//! --workspace --bins`). A loop opening and closing a file at a set rate
//! (`ftt-workload open-rate PATH RATE S`, paced; default rates 10 000 and
//! 100 000 a second), under `opensnoop -p PID` (paths as this kernel gives
//! them) and `opensnoop -p PID --paths user` (each path read from the
//! process: a process_vm_readv per event), its output read as fast as it
//! comes. Prints, per run: opens made (the loop's count) and its rate,
//! lines printed, events lost (made less printed) and what opensnoop said
//! of them; opensnoop's own CPU (user + system, from wait4's rusage, less
//! what its start-up took) as a share of one core, and per event. Then the
//! medians. Needs root.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "shared/bench.rs"]
mod bench;
use bench::{bin, done_count, median, proc_cpu, wait_rusage};

struct Run {
    made: u64,
    printed: u64,
    said: Option<String>,
    rate: f64,
    cores: f64,
    per_event: Duration,
}

fn traced(path: &str, rate: u64, secs: f64, extra: &[&str]) -> Run {
    let mut w = Command::new(bin("ftt-workload"))
        .args([
            "--wait",
            "open-rate",
            path,
            &rate.to_string(),
            &secs.to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start ftt-workload");
    let pid = w.id().to_string();
    let mut s = Command::new(bin("opensnoop"))
        .args(["-p", &pid])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start opensnoop");
    let mut err = BufReader::new(s.stderr.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        if err.read_line(&mut line).unwrap() == 0 {
            panic!("opensnoop exited before tracing");
        }
        if line.contains("Tracing") {
            break;
        }
    }
    let out = s.stdout.take().unwrap();
    let lines = std::thread::spawn(move || {
        // The header, then one line per open.
        BufReader::new(out).lines().count().saturating_sub(1) as u64
    });
    // Its start-up (instance, probes) is not the cost per event.
    let setup = proc_cpu(s.id());
    let t0 = Instant::now();
    w.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let made = done_count(&mut w);
    // opensnoop ends by itself when the process has exited.
    let (code, cpu) = wait_rusage(&mut s);
    let wall = t0.elapsed();
    let printed = lines.join().unwrap();
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    assert_eq!(code, 0, "opensnoop failed: {rest}");
    let cpu = cpu.saturating_sub(setup);
    Run {
        made,
        printed,
        said: rest
            .lines()
            .find(|l| l.contains("lost") || l.contains("LOST"))
            .map(str::to_string),
        rate: made as f64 / secs,
        cores: cpu.as_secs_f64() / wall.as_secs_f64(),
        per_event: cpu / printed.max(1) as u32,
    }
}

fn main() {
    let mut secs = 2.0f64;
    let mut runs = 3usize;
    let mut rates = vec![10_000u64, 100_000];
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--secs" => secs = args.next().and_then(|s| s.parse().ok()).expect("--secs S"),
            "--runs" => runs = args.next().and_then(|s| s.parse().ok()).expect("--runs N"),
            "--rates" => {
                rates = args
                    .next()
                    .map(|s| s.split(',').filter_map(|r| r.parse().ok()).collect())
                    .expect("--rates R1,R2")
            }
            _ => {
                eprintln!("usage: bench-snoop [--secs S] [--runs N] [--rates R1,R2,...]");
                std::process::exit(2);
            }
        }
    }
    // SAFETY: no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("bench-snoop: needs root");
        std::process::exit(2);
    }
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("kernel {}, {cpus} CPUs", kernel.trim());
    let path = std::env::temp_dir()
        .join(format!("bench-snoop-{}", std::process::id()))
        .to_string_lossy()
        .into_owned();
    std::fs::write(&path, "opened\n").expect("a file to open");
    for &rate in &rates {
        for (name, extra) in [
            ("opensnoop", &[][..]),
            ("opensnoop --paths user", &["--paths", "user"]),
        ] {
            let mut v = Vec::new();
            for _ in 0..runs {
                let r = traced(&path, rate, secs, extra);
                println!(
                    "{name} at {rate}/s: made {} ({:.0}/s), printed {}, lost {}{}; CPU {:.3} core, {:.2} us per event",
                    r.made,
                    r.rate,
                    r.printed,
                    r.made as i64 - r.printed as i64,
                    r.said.as_deref().map(|l| format!(" ({l})")).unwrap_or_default(),
                    r.cores,
                    r.per_event.as_secs_f64() * 1e6
                );
                v.push(r);
            }
            let med = |f: fn(&Run) -> f64| median(v.iter().map(f).collect());
            println!(
                "median {name} at {rate}/s: {:.0} opens/s made, {:.2}% lost, CPU {:.3} core, {:.2} us per event",
                med(|r| r.rate),
                med(|r| 100.0 * (r.made.saturating_sub(r.printed)) as f64 / r.made.max(1) as f64),
                med(|r| r.cores),
                med(|r| r.per_event.as_secs_f64() * 1e6)
            );
        }
    }
    let _ = std::fs::remove_file(&path);
}
