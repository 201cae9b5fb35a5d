//! bench-ftrace-status: how long `ftrace-status` takes (target: under
//! 100 ms), text and `-j`, exec to exit, over RUNS runs (default 21); and
//! its CPU time (user + system), which the machine's load does not
//! stretch. Also how many tracefs files a report reads (one filter and one
//! trigger per event, at the top level and in instances that are not
//! ours).
//!
//! Run as root: `cargo build --release && target/release/bench-ftrace-status [RUNS]`
//! (tests/bench runs every benchmark).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// ftrace-status, built beside this benchmark.
fn status_bin() -> PathBuf {
    std::env::current_exe()
        .unwrap()
        .with_file_name("ftrace-status")
}

/// The children's CPU time so far (user + system).
fn children_cpu() -> Duration {
    // SAFETY: getrusage fills the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Wall and CPU times of `runs` runs, sorted.
fn times(args: &[&str], runs: usize) -> (Vec<Duration>, Vec<Duration>) {
    let mut wall = Vec::new();
    let mut cpu = Vec::new();
    for _ in 0..runs {
        let c0 = children_cpu();
        let t0 = Instant::now();
        let st = Command::new(status_bin())
            .args(args)
            .stdout(Stdio::null())
            .status()
            .expect("ftrace-status (build with cargo build --release)");
        wall.push(t0.elapsed());
        cpu.push(children_cpu() - c0);
        assert!(matches!(st.code(), Some(0 | 1)), "ftrace-status: {st:?}");
    }
    wall.sort();
    cpu.sort();
    (wall, cpu)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(21);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    println!(
        "bench-ftrace-status ({cpus} CPUs, load average {})",
        load.join(" ")
    );
    // SAFETY: no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("skipping: needs root (tracefs is root's)");
        return;
    }
    let out = Command::new(status_bin())
        .arg("-j")
        .output()
        .expect("ftrace-status");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let instances = v["tracing"]["instances"]
        .as_array()
        .map(|a| a.len())
        .unwrap_or(0);
    let events = std::fs::read_to_string(
        v["kernel"]["tracefs"]
            .as_str()
            .map(|r| format!("{r}/available_events"))
            .unwrap_or_default(),
    )
    .map(|t| t.lines().count())
    .unwrap_or(0);
    println!("    {events} events (a filter and a trigger each), {instances} instances");
    for (label, args) in [("text", &[][..]), ("-j", &["-j"][..])] {
        let (wall, cpu) = times(args, runs);
        println!(
            "    {label:<4}: exec to exit median {} (min {}, max {}), CPU median {} over {runs} runs (target: under 100 ms)",
            ms(wall[runs / 2]),
            ms(wall[0]),
            ms(wall[runs - 1]),
            ms(cpu[runs / 2])
        );
    }
}
