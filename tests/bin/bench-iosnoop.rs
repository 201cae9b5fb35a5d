//! bench-iosnoop: how fast block I/O can be and still be reported, and what
//! it costs iosnoop.
//!
//!   bench-iosnoop [SECS] [THREADS...]     (default: 3 seconds; 1 and 2 threads)
//!
//! The fastest I/O this machine can make: 4 KiB O_DIRECT reads of a loop
//! device backed by a file in tmpfs (no disk behind it). For each thread
//! count it prints the I/O rate without tracing, then runs `iosnoop -d
//! loopN` (the release build next to this program) and `iosnoop --hist`
//! over the same workload and prints I/Os done (the workload's own count),
//! I/Os reported (rows of the workload's threads; the histogram's total),
//! lost, and iosnoop's own CPU time (user + system, from getrusage of children) as a share
//! of one CPU. perf-tools' iosnoop documents a ceiling of about 10 000 IOPS
//! at one full CPU.
//!
//! Needs root and losetup (util-linux). The loop device and its file are
//! removed at the end, also on failure.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const FILE_MB: u64 = 64;

/// A loop device over a tmpfs file; detached and removed on drop.
struct Loop {
    dev: String,
    file: PathBuf,
}

impl Loop {
    fn new() -> Loop {
        let dir = if Path::new("/dev/shm").is_dir() {
            "/dev/shm"
        } else {
            "/tmp"
        };
        let file = PathBuf::from(format!(
            "{dir}/ftt-bench-iosnoop-{}.img",
            std::process::id()
        ));
        let f = std::fs::File::create(&file).expect("create the backing file");
        // Real pages, so that reads do not hit holes.
        let chunk = vec![0x5au8; 1 << 20];
        for i in 0..FILE_MB {
            f.write_all_at(&chunk, i << 20)
                .expect("fill the backing file");
        }
        drop(f);
        let out = Command::new("losetup")
            .args(["-f", "--show"])
            .arg(&file)
            .output()
            .expect("run losetup (util-linux)");
        if !out.status.success() {
            let _ = std::fs::remove_file(&file);
            panic!("losetup failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let dev = String::from_utf8_lossy(&out.stdout).trim().to_string();
        Loop { dev, file }
    }

    fn name(&self) -> &str {
        self.dev.trim_start_matches("/dev/")
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.dev]).status();
        let _ = std::fs::remove_file(&self.file);
    }
}

fn gettid() -> i32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::syscall(libc::SYS_gettid) as i32 }
}

/// `threads` threads of 4 KiB O_DIRECT reads for `secs`: (I/Os, their TIDs).
fn workload(dev: &str, threads: usize, secs: f64) -> (u64, HashSet<i32>) {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let tids = Arc::new(Mutex::new(HashSet::new()));
    let blocks = FILE_MB * 256;
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (stop, done, tids) = (stop.clone(), done.clone(), tids.clone());
            let dev = dev.to_string();
            std::thread::spawn(move || {
                tids.lock().unwrap().insert(gettid());
                let f = std::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_DIRECT)
                    .open(&dev)
                    .expect("open the loop device with O_DIRECT");
                let mut raw = vec![0u8; 2 * 4096];
                let off = raw.as_ptr().align_offset(4096);
                let buf = &mut raw[off..off + 4096];
                let mut i = t as u64 * 7919;
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    f.read_exact_at(buf, (i % blocks) * 4096)
                        .expect("direct read");
                    i = i.wrapping_add(13);
                    n += 1;
                }
                done.fetch_add(n, Ordering::Relaxed);
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().unwrap();
    }
    let tids = tids.lock().unwrap().clone();
    (done.load(Ordering::Relaxed), tids)
}

struct ToolResult {
    stdout: Vec<String>,
    stderr: String,
    cpu_secs: f64,
    traced_secs: f64,
}

/// Runs iosnoop with `args` around `work`, collecting its output and CPU.
fn with_iosnoop<T>(bin: &Path, args: &[&str], work: impl FnOnce() -> T) -> (T, ToolResult) {
    let mut child = Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start iosnoop");
    let pid = child.id() as i32;
    let out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        BufReader::new(out)
            .lines()
            .map_while(|l| l.ok())
            .collect::<Vec<_>>()
    });
    let err = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let err_reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(err).lines().map_while(|l| l.ok()) {
            if line.contains("Tracing") {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("iosnoop did not start tracing");
    let t0 = Instant::now();
    let r = work();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, libc::SIGINT) };
    // iosnoop's CPU: what waiting for it adds to our children's usage.
    let before = children_cpu();
    child.wait().expect("wait for iosnoop");
    let cpu_secs = children_cpu() - before;
    let traced_secs = t0.elapsed().as_secs_f64();
    let stdout = reader.join().unwrap();
    let stderr = err_reader.join().unwrap();
    (
        r,
        ToolResult {
            stdout,
            stderr,
            cpu_secs,
            traced_secs,
        },
    )
}

/// User + system time of our waited-for children, in seconds.
fn children_cpu() -> f64 {
    // SAFETY: an all-zero rusage is valid; getrusage fills it in.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: ru is valid for writing.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn main() {
    // SAFETY: no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("bench-iosnoop: needs root (tracefs, losetup)");
        std::process::exit(2);
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let secs: f64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(3.0);
    let mut threads: Vec<usize> = args.iter().skip(1).filter_map(|s| s.parse().ok()).collect();
    if threads.is_empty() {
        threads = vec![1, 2];
    }
    let bin = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .join("iosnoop");
    assert!(
        bin.exists(),
        "{} is not built: cargo build --release --workspace --bins",
        bin.display()
    );
    let lp = Loop::new();
    println!(
        "bench-iosnoop: 4 KiB O_DIRECT reads of {} (loop over a {FILE_MB} MiB tmpfs file), {secs} s per run, {} CPUs",
        lp.dev,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    println!("iosnoop: {}", bin.display());
    // Let udev finish probing the new device.
    let _ = Command::new("udevadm").args(["settle", "-t", "5"]).status();
    for &t in &threads {
        let (base, _) = workload(&lp.dev, t, secs);
        println!();
        println!(
            "{t} thread(s), untraced: {base} I/Os, {:.0} IOPS",
            base as f64 / secs
        );
        for (mode, extra) in [("rows", &[][..]), ("--hist", &["--hist", "--json"][..])] {
            let mut a: Vec<&str> = vec!["-d", lp.name()];
            a.extend_from_slice(extra);
            let ((done, tids), res) = with_iosnoop(&bin, &a, || workload(&lp.dev, t, secs));
            let reported = if mode == "rows" {
                res.stdout
                    .iter()
                    .skip(1)
                    .filter(|l| {
                        l.split_whitespace()
                            .nth(1)
                            .and_then(|p| p.parse::<i32>().ok())
                            .map(|p| tids.contains(&p))
                            .unwrap_or(false)
                    })
                    .count() as u64
            } else {
                res.stdout
                    .iter()
                    .filter_map(|l| serde_json_total(l))
                    .sum::<u64>()
            };
            let iops = done as f64 / secs;
            let cpu = res.cpu_secs / res.traced_secs;
            println!(
                "  iosnoop {mode:<7}: done {done} ({iops:.0} IOPS), reported {reported}, lost {}, \
iosnoop CPU {:.1}% of one CPU ({:.3} CPU per 10 000 IOPS; perf-tools: about 1)",
                done as i64 - reported as i64,
                cpu * 100.0,
                cpu / (iops / 10_000.0)
            );
            for l in res.stderr.lines().filter(|l| !l.starts_with("Tracing")) {
                println!("    iosnoop said: {l}");
            }
        }
    }
}

/// The `total` of a `--hist --json` line.
fn serde_json_total(line: &str) -> Option<u64> {
    let i = line.find("\"total\":")? + 8;
    let rest = &line[i..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}
