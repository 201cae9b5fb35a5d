//! bench-uprobe-pair: what pairing costs (issue 13, part 6). A return probe
//! with `$argN` (`r: ... $retval n=$arg1`) arms an entry probe too and pairs
//! the two per thread in the tool; a plain return probe (`r: ... $retval`)
//! does neither. In the same run, alternately, `ftt-workload spin-call SECS`
//! calls the probed function in a tight loop while `uprobe -p` prints every
//! return:
//!
//! - calls/s of the workload (the traps slow it down: two per call when
//!   paired, entry and return);
//! - events shown per second, and lost;
//! - the tool's CPU (user + system, wait4's rusage) per call shown;
//!
//! each variant's median of RUNS, and paired / plain as a ratio.
//!
//! Run as root: `cargo build --release && target/release/bench-uprobe-pair [SECS] [RUNS]`.

#[path = "shared/bench.rs"]
mod bench;
use bench::{bin, median, wait_rusage};

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::Instant;

struct Run {
    calls_per_s: f64,
    shown_per_s: f64,
    lost: u64,
    cpu_us_per_shown: f64,
}

fn run(secs: f64, args: &str) -> Run {
    let mut w = Command::new(bin("ftt-workload"))
        .args(["--wait", "spin-call", &secs.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("ftt-workload");
    let def = format!(
        "r:bench_pair {}:ftt_probe_target {args}",
        bin("ftt-workload").display()
    );
    let pid = w.id().to_string();
    let mut c = Command::new(bin("uprobe"))
        .args(["-p", &pid, &def])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("uprobe (build with cargo build --release)");
    let mut err = BufReader::new(c.stderr.take().unwrap());
    loop {
        let mut line = String::new();
        assert!(err.read_line(&mut line).unwrap() > 0, "uprobe exited");
        if line.starts_with("Tracing") {
            break;
        }
    }
    let mut out = c.stdout.take().unwrap();
    let counter = std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 20];
        let mut n = 0u64;
        loop {
            let k = out.read(&mut buf).unwrap();
            if k == 0 {
                break;
            }
            n += buf[..k].iter().filter(|&&b| b == b'\n').count() as u64;
        }
        n
    });
    let t0 = Instant::now();
    w.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let mut s = String::new();
    w.stdout.take().unwrap().read_to_string(&mut s).unwrap();
    w.wait().unwrap();
    let took = t0.elapsed().as_secs_f64();
    let calls: u64 = s.trim().trim_start_matches("done ").parse().unwrap();
    // uprobe ends by itself once the workload has exited (-p).
    let (_, cpu) = wait_rusage(&mut c);
    let shown = counter.join().unwrap();
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    let lost = rest
        .split("LOST ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    Run {
        calls_per_s: calls as f64 / took,
        shown_per_s: shown as f64 / took,
        lost,
        cpu_us_per_shown: cpu.as_secs_f64() * 1e6 / shown.max(1) as f64,
    }
}

fn main() {
    let mut a = std::env::args().skip(1);
    let secs: f64 = a.next().and_then(|s| s.parse().ok()).unwrap_or(2.0);
    let runs: usize = a.next().and_then(|s| s.parse().ok()).unwrap_or(3);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "bench-uprobe-pair ({} CPUs, load average {}), {runs} runs of {secs} s each, alternating",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    // SAFETY: no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("skipping: needs root");
        return;
    }
    let variants = [
        ("plain  r: $retval", "$retval"),
        ("paired r: $retval n=$arg1", "$retval n=$arg1"),
    ];
    let mut got: Vec<Vec<Run>> = vec![Vec::new(), Vec::new()];
    for _ in 0..runs {
        for (i, (_, args)) in variants.iter().enumerate() {
            got[i].push(run(secs, args));
        }
    }
    let mut meds = Vec::new();
    for (i, (name, _)) in variants.iter().enumerate() {
        let r = &got[i];
        let calls = median(r.iter().map(|x| x.calls_per_s).collect());
        let shown = median(r.iter().map(|x| x.shown_per_s).collect());
        let cpu = median(r.iter().map(|x| x.cpu_us_per_shown).collect());
        let lost: u64 = r.iter().map(|x| x.lost).sum();
        println!(
            "    {name:<26} calls {calls:>9.0}/s ({:.2} us each)  shown {shown:>9.0}/s  lost {lost}  tool CPU {cpu:.2} us per call shown",
            1e6 / calls
        );
        meds.push((calls, shown, cpu));
    }
    let (p, q) = (meds[0], meds[1]);
    println!(
        "    paired / plain: calls/s {:.2}x, events shown/s {:.2}x, tool CPU per call {:.2}x",
        q.0 / p.0,
        q.1 / p.1,
        q.2 / p.2
    );
}
