//! bench-uprobe: figures for `uprobe` (issue 4).
//!
//! (a) Start-up and teardown of `uprobe p:libc:malloc`: from exec to the
//!     "Tracing" line (the probe is armed just before it is printed), and
//!     from SIGINT to exit (the instance and the probe are gone by then).
//!     Several runs; min / median / max. One more run with
//!     FTRACE_TOOLS_TIMING=1 gives the tool's own phase times.
//! (b) The kernel's share: the same tracefs operations done bare (create
//!     the probe, mkdir the instance, set the clock, size the buffer,
//!     enable, disable, rmdir, remove the probe), timed one by one.
//! (c) Rate: `ftt-workload spin-call SECS` calls a probed function in a
//!     tight loop while `uprobe -p` prints every event: calls made (the
//!     workload's own count), events received and lost, for an entry and a
//!     return probe.
//! (d) RSS: the tool's VmHWM (from /proc/PID/status) at the end of (a) and
//!     (c).
//!
//! Run as root: `cargo build --release && target/release/bench-uprobe [SECS] [RUNS]`
//! (tests/bench runs every benchmark).

use ftrace_common::kernel::tracefs::{self, Tracefs};
use ftrace_common::lifecycle::dynevent::{ProbeDef, ProbeGroup, ProbeKind};
use ftrace_common::lifecycle::owner::Owner;
use ftrace_common::sym::elf::ElfFile;
use ftrace_common::sym::target::resolve_target;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn bin(name: &str) -> PathBuf {
    std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .join(name)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn stats(v: &mut [f64]) -> String {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    format!(
        "min {:6.1} ms  median {:6.1} ms  max {:6.1} ms",
        v[0],
        v[v.len() / 2],
        v[v.len() - 1]
    )
}

fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn sigint(c: &Child) {
    // SAFETY: signalling our own child.
    unsafe { libc::kill(c.id() as i32, libc::SIGINT) };
}

/// Starts uprobe with `args`; returns it with its stderr reader once it
/// said "Tracing", and the time that took.
fn start_uprobe(
    args: &[&str],
    env: &[(&str, &str)],
    stdout: Stdio,
) -> (
    Child,
    BufReader<std::process::ChildStderr>,
    Duration,
    String,
) {
    let t0 = Instant::now();
    let mut c = Command::new(bin("uprobe"))
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .expect("uprobe (build with cargo build --release)");
    let mut err = BufReader::new(c.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        if err.read_line(&mut line).unwrap() == 0 {
            panic!("uprobe exited before tracing: {seen}");
        }
        seen.push_str(&line);
        if line.starts_with("Tracing") {
            break;
        }
    }
    (c, err, t0.elapsed(), seen)
}

fn left_in_uprobe_events(pid: u32) -> bool {
    let tfs = Tracefs::open().unwrap();
    tfs.read("uprobe_events")
        .unwrap_or_default()
        .contains(&format!("ftrace_tools_{pid}_"))
}

fn startup_teardown(runs: usize) {
    println!("(a) start-up and teardown of `uprobe p:libc:malloc`, {runs} runs:");
    let mut up = Vec::new();
    let mut down = Vec::new();
    let mut hwm = 0;
    for _ in 0..runs {
        let (mut c, mut err, t, _) = start_uprobe(&["p:libc:malloc"], &[], Stdio::null());
        up.push(ms(t));
        std::thread::sleep(Duration::from_millis(50));
        hwm = hwm.max(vm_hwm_kb(c.id()).unwrap_or(0));
        let t0 = Instant::now();
        sigint(&c);
        c.wait().unwrap();
        down.push(ms(t0.elapsed()));
        let mut rest = String::new();
        let _ = err.read_to_string(&mut rest);
        assert!(!left_in_uprobe_events(c.id()), "a probe was left behind");
    }
    println!("    start-up (exec to \"Tracing\"):  {}", stats(&mut up));
    println!("    teardown (SIGINT to exit):     {}", stats(&mut down));
    println!("    RSS (VmHWM): {hwm} kB");
    // The tool's own phase times.
    let (c, mut err, _, seen) = start_uprobe(
        &["p:libc:malloc"],
        &[("FTRACE_TOOLS_TIMING", "1")],
        Stdio::null(),
    );
    std::thread::sleep(Duration::from_millis(50));
    sigint(&c);
    let mut rest = String::new();
    let _ = err.read_to_string(&mut rest);
    let mut c = c;
    c.wait().unwrap();
    let phases: Vec<String> = seen
        .lines()
        .chain(rest.lines())
        .filter_map(|l| l.strip_prefix("timing: "))
        .map(|l| l.replace(" at ", " "))
        .collect();
    println!(
        "    phases of one run (ms since main): {}",
        phases.join(", ")
    );
}

fn timed(f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    ms(t.elapsed())
}

fn kernel_share(runs: usize) {
    println!("(b) the kernel's share, bare tracefs operations for libc:malloc (median of {runs}):");
    let tfs = Tracefs::open().unwrap();
    let t = resolve_target("libc", None).unwrap();
    let off = ElfFile::open(&t.path)
        .unwrap()
        .resolve("malloc", false)
        .unwrap()
        .offset;
    let names = [
        "create probe",
        "mkdir",
        "trace_clock=mono",
        "buffer_size_kb=8192",
        "enable",
        "disable",
        "rmdir",
        "remove probe",
    ];
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    for _ in 0..runs {
        let mut g = ProbeGroup::new(&tfs);
        let def = ProbeDef {
            kind: ProbeKind::Uprobe,
            name: "bench_malloc".into(),
            location: format!("{}:{off:#x}", t.path.display()),
            args: vec![],
        };
        let group_name = g.group().to_string();
        let dir = tfs
            .path("instances")
            .join(Owner::current().instance_name("bench-uprobe"));
        let ev = |f: &str| dir.join(format!("events/{group_name}/bench_malloc/{f}"));
        let w = |p: PathBuf, v: &str| tracefs::write_file(&p, v, false).unwrap();
        let mut step = 0;
        let mut rec = |v: f64| {
            times[step].push(v);
            step += 1;
        };
        rec(timed(|| {
            g.add(&def).unwrap();
        }));
        rec(timed(|| std::fs::create_dir(&dir).unwrap()));
        rec(timed(|| w(dir.join("trace_clock"), "mono")));
        rec(timed(|| w(dir.join("buffer_size_kb"), "8192")));
        rec(timed(|| w(ev("enable"), "1")));
        rec(timed(|| w(ev("enable"), "0")));
        rec(timed(|| std::fs::remove_dir(&dir).unwrap()));
        rec(timed(|| {
            ftrace_common::lifecycle::dynevent::remove_event(
                &tfs,
                "uprobe_events",
                &group_name,
                "bench_malloc",
            )
            .unwrap()
        }));
        drop(g);
    }
    let parts: Vec<String> = names
        .iter()
        .zip(times.iter_mut())
        .map(|(n, v)| {
            v.sort_by(|a, b| a.partial_cmp(b).unwrap());
            format!("{n} {:.1}", v[v.len() / 2])
        })
        .collect();
    println!("    {} (ms)", parts.join(", "));
}

struct Rate {
    offered: u64,
    received: u64,
    lost: u64,
    secs: f64,
    hwm_kb: u64,
}

fn rate(secs: f64, kind: char) -> Rate {
    let mut w = Command::new(bin("ftt-workload"))
        .args(["--wait", "spin-call", &secs.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("ftt-workload");
    let def = format!(
        "{kind}:bench_spin {}:ftt_probe_target{}",
        bin("ftt-workload").display(),
        if kind == 'r' { " $retval" } else { "" }
    );
    let pid = w.id().to_string();
    let (mut c, mut err, _, _) = start_uprobe(&["-p", &pid, &def], &[], Stdio::piped());
    let mut out = c.stdout.take().unwrap();
    let counter = std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 20];
        let mut n = 0u64;
        let mut text_lost = 0u64;
        let mut carry = Vec::new();
        loop {
            let k = out.read(&mut buf).unwrap();
            if k == 0 {
                break;
            }
            carry.extend_from_slice(&buf[..k]);
            let end = carry
                .iter()
                .rposition(|&b| b == b'\n')
                .map(|p| p + 1)
                .unwrap_or(0);
            for line in carry[..end].split(|&b| b == b'\n') {
                if line.windows(11).any(|x| x == b": bench_spi") {
                    n += 1;
                } else if line.windows(5).any(|x| x == b"[LOST") {
                    text_lost += 1;
                }
            }
            carry.drain(..end);
        }
        (n, text_lost)
    });
    // The tool ends by itself when the workload exits (-p): sample its
    // peak RSS while it runs.
    let tool_pid = c.id();
    let sampler = std::thread::spawn(move || {
        let mut hwm = 0;
        while let Some(kb) = vm_hwm_kb(tool_pid) {
            hwm = hwm.max(kb);
            std::thread::sleep(Duration::from_millis(20));
        }
        hwm
    });
    let t0 = Instant::now();
    w.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let mut s = String::new();
    w.stdout.take().unwrap().read_to_string(&mut s).unwrap();
    w.wait().unwrap();
    let secs = t0.elapsed().as_secs_f64();
    let offered: u64 = s.trim().trim_start_matches("done ").parse().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    sigint(&c);
    let (received, _) = counter.join().unwrap();
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    c.wait().unwrap();
    let hwm_kb = sampler.join().unwrap();
    let lost = rest
        .split("LOST ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    Rate {
        offered,
        received,
        lost,
        secs,
        hwm_kb,
    }
}

fn main() {
    let mut a = std::env::args().skip(1);
    let secs: f64 = a.next().and_then(|s| s.parse().ok()).unwrap_or(2.0);
    let runs: usize = a.next().and_then(|s| s.parse().ok()).unwrap_or(11);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "bench-uprobe ({} CPUs, load average {})",
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
    startup_teardown(runs);
    kernel_share(5.min(runs));
    println!("(c) rate: a tight loop calling a probed function for {secs} s, every event printed:");
    for kind in ['p', 'r'] {
        let r = rate(secs, kind);
        println!(
            "    {}: calls {:>8} ({:.0}/s, {:.1} us each)  received {:>8}  lost {:>6} ({:.2}%)  RSS {} kB",
            if kind == 'p' { "entry (p:) " } else { "return (r:)" },
            r.offered,
            r.offered as f64 / r.secs,
            r.secs * 1e6 / r.offered.max(1) as f64,
            r.received,
            r.lost,
            100.0 * r.lost as f64 / r.offered.max(1) as f64,
            r.hwm_kb
        );
    }
}
