//! bench-funccount: what each way of counting kernel functions costs.
//!
//!   bench-funccount [--secs S] [--reps N] [--no-vm] [--vm KERNEL]...
//!
//! Uses the release builds next to this program (`cargo build --release
//! --workspace --bins`, which tests/bench runs). For each method the
//! kernel offers (`--method profiler`, `tracer`, `kprobe`) it prints:
//!
//! 1. Attach and detach time (funccount -v's own figures) for a glob
//!    matching about 50 functions and one matching about 500, with the
//!    wall time of the whole `funccount -d 0.5` run.
//! 2. The slowdown of a read-heavy loop (`ftt-workload spin-read S`: 16
//!    byte reads of /dev/zero, pinned to CPU 1) while funccount (on CPU 0)
//!    counts the kernel functions each read goes through: reads per second
//!    against the untraced loop, the time added per counted call, and
//!    whether the count was exact (calls offered = reads x functions).
//! 3. Events per second counted without loss: the tracer method with -p
//!    on the same loop: offered, counted, lost.
//!
//! Where the function tracer is unusable (this project's host kernel), it
//! runs itself in the tests/vm guests instead (prof, 6.1 and bpo unless
//! --vm names some): TCG emulation, so absolute figures are far slower
//! than on hardware; compare methods within one guest.
//!
//! Needs root.

use ftrace_common::base::glob::Glob;
use ftrace_common::kernel::caps::{self, Feature};
use ftrace_common::kernel::functions::FunctionList;
use ftrace_common::kernel::tracefs::Tracefs;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn bin(name: &str) -> PathBuf {
    let me = std::env::current_exe().expect("own path");
    let p = me.parent().unwrap().join(name);
    if !p.exists() {
        eprintln!(
            "bench-funccount: {} is missing: run `cargo build --release --workspace --bins` (tests/bench does)",
            p.display()
        );
        std::process::exit(2);
    }
    p
}

fn pin_to(cmd: &mut Command, cpu: usize) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the set is built before the fork and only read in the child;
    // sched_setaffinity is async-signal-safe.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        cmd.pre_exec(move || {
            if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

fn ncpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// A funccount run in the background; stderr is collected by a thread
/// that also reports when the Tracing line came.
struct Run {
    child: Child,
    err: std::sync::mpsc::Receiver<String>,
    err_text: String,
    started: Instant,
}

impl Run {
    fn start(args: &[&str], cpu: Option<usize>) -> Run {
        let mut cmd = Command::new(bin("funccount"));
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(c) = cpu {
            pin_to(&mut cmd, c);
        }
        let started = Instant::now();
        let mut child = cmd.spawn().expect("run funccount");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(stderr).lines() {
                let Ok(l) = l else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Run {
            child,
            err: rx,
            err_text: String::new(),
            started,
        }
    }

    /// Waits for the Tracing line; `None` if funccount ended first.
    fn ready(&mut self) -> Option<Duration> {
        while let Ok(l) = self.err.recv_timeout(Duration::from_secs(600)) {
            self.err_text.push_str(&l);
            self.err_text.push('\n');
            if l.starts_with("Tracing") {
                return Some(self.started.elapsed());
            }
        }
        None
    }

    fn signal(&self, sig: i32) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    /// Waits for the exit: (stdout, stderr, wall time since start).
    fn finish(mut self) -> (String, String, Duration) {
        let mut out = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        let _ = self.child.wait();
        let wall = self.started.elapsed();
        while let Ok(l) = self.err.recv_timeout(Duration::from_secs(5)) {
            self.err_text.push_str(&l);
            self.err_text.push('\n');
        }
        (out, self.err_text, wall)
    }
}

/// A process's CPU time so far (user + system), from /proc/PID/stat.
fn proc_cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rfind(')').map(|i| &stat[i + 1..]).unwrap_or("");
    let f: Vec<u64> = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse().ok())
        .collect();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Duration::from_secs_f64(f.iter().sum::<u64>() as f64 / hz)
}

/// A number of seconds after `key` in funccount -v's stderr.
fn secs_after(err: &str, key: &str) -> Option<f64> {
    let at = err.find(key)? + key.len();
    err[at..].split_whitespace().next()?.parse().ok()
}

/// The rows of the last summary.
fn rows(out: &str) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for l in out.lines() {
        let w: Vec<&str> = l.split_whitespace().collect();
        if w == ["FUNC", "COUNT"] {
            m.clear();
        } else if let [name, n] = w.as_slice() {
            if let Ok(n) = n.parse() {
                m.insert(name.to_string(), n);
            }
        }
    }
    m
}

fn lost(err: &str) -> u64 {
    err.lines()
        .filter_map(|l| {
            l.split("LOST ")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

/// A waiting `spin-read SECS` loop on `cpu`.
fn spin_read(secs: f64, cpu: usize) -> Child {
    let mut cmd = Command::new(bin("ftt-workload"));
    cmd.args(["--wait", "spin-read", &secs.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    pin_to(&mut cmd, cpu);
    cmd.spawn().expect("run ftt-workload")
}

fn go_and_wait(mut c: Child) -> u64 {
    c.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let mut out = String::new();
    c.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let _ = c.wait();
    out.trim()
        .strip_prefix("done ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("workload said {out:?}"))
}

fn methods(tfs: &Tracefs) -> Vec<&'static str> {
    let mut m = Vec::new();
    if caps::check(tfs, Feature::FunctionProfiler).is_yes() {
        m.push("profiler");
    }
    m.push("tracer");
    if caps::check(tfs, Feature::KprobeEvents).is_yes() {
        m.push("kprobe");
    }
    m
}

/// Globs whose match counts are nearest 50 and 500 on this kernel.
fn patterns(list: &FunctionList) -> Vec<(String, usize)> {
    let candidates = [
        "vfs_*",
        "tcp_*",
        "ext4_*",
        "security_*",
        "blk_*",
        "sched_*",
        "tty_*",
        "kmem_*",
        "pci_*",
        "acpi_*",
        "inet_*",
        "ip_*",
        "sock_*",
        "irq_*",
        "rcu_*",
        "net_*",
        "cpu_*",
        "kobject_*",
        "device_*",
        "page_*",
        "mm_*",
        "__x64_sys_*",
        "do_*",
        "file_*",
        "d_*",
        "xa_*",
        "rb_*",
        "dev_*",
        "skb_*",
        "memcg_*",
        "folio_*",
        "bio_*",
        "ep_*",
        "path_*",
        "seq_*",
        "pipe_*",
        "perf_*",
        "trace_*",
        "ftrace_*",
        "bpf_*",
        "crypto_*",
        "virtio_*",
        "kernfs_*",
        "sysfs_*",
        "proc_*",
        "filemap_*",
        "iomap_*",
        "jbd2_*",
        "nfs_*",
        "audit_*",
    ];
    let counted: Vec<(String, usize)> = candidates
        .iter()
        .filter_map(|p| {
            let g = Glob::new(p).ok()?;
            let mut names: Vec<&str> = list
                .matching(|n| g.matches(n))
                .iter()
                .map(|f| f.name.as_str())
                .collect();
            names.sort_unstable();
            names.dedup();
            Some((p.to_string(), names.len()))
        })
        .collect();
    let near = |target: usize| {
        counted
            .iter()
            .min_by_key(|(_, n)| (*n as i64 - target as i64).unsigned_abs())
            .cloned()
            .unwrap()
    };
    vec![near(50), near(500)]
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    Some(v[v.len() / 2])
}

fn attach_detach(methods: &[&str], pats: &[(String, usize)], reps: usize) {
    println!(
        "1. Attach and detach (funccount -v -d 0.5 --method M PATTERN; seconds, median of {reps} runs)"
    );
    println!(
        "   {:<9} {:<14} {:>6} {:>8} {:>8} {:>8} {:>8}",
        "method", "pattern", "funcs", "match", "attach", "detach", "wall"
    );
    for m in methods {
        for (p, n) in pats {
            let mut cols: [Vec<f64>; 4] = Default::default();
            let mut failed = None;
            for _ in 0..reps {
                let mut r = Run::start(&["-v", "-d", "0.5", "--method", m, p], Some(0));
                let _ = r.ready();
                let (_, err, wall) = r.finish();
                if !err.contains("detached in") {
                    failed = Some(err.lines().last().unwrap_or("").to_string());
                    break;
                }
                for (i, k) in [" user functions in ", "attached in ", "detached in "]
                    .iter()
                    .enumerate()
                {
                    if let Some(v) = secs_after(&err, k) {
                        cols[i].push(v);
                    }
                }
                cols[3].push(wall.as_secs_f64());
            }
            if let Some(why) = failed {
                println!("   {m:<9} {p:<14} {n:>6} failed: {why}");
                continue;
            }
            let f = |v: &Vec<f64>| {
                median(v.clone())
                    .map(|v| format!("{v:.2}"))
                    .unwrap_or_else(|| "-".into())
            };
            println!(
                "   {:<9} {:<14} {:>6} {:>8} {:>8} {:>8} {:>8}",
                m,
                p,
                n,
                f(&cols[0]),
                f(&cols[1]),
                f(&cols[2]),
                f(&cols[3])
            );
        }
    }
}

/// One traced run of the read loop: (reads/s, funccount CPU share while
/// counting, counted calls, offered calls, lost), or the error line.
fn traced_run(m: &str, funcs: &[&str], secs: f64) -> Result<(f64, f64, u64, u64, u64), String> {
    let mut args = vec!["--method", m];
    args.extend(funcs);
    let mut r = Run::start(&args, Some(0));
    if r.ready().is_none() {
        let (_, err, _) = r.finish();
        return Err(err.lines().last().unwrap_or("").to_string());
    }
    let t0 = Instant::now();
    let cpu0 = proc_cpu(r.child.id());
    let reads = go_and_wait(spin_read(secs, 1));
    // funccount's CPU while counting (not attaching or detaching).
    let cpu = proc_cpu(r.child.id()).saturating_sub(cpu0);
    let during = t0.elapsed().as_secs_f64();
    r.signal(libc::SIGINT);
    let (out, err, _) = r.finish();
    let counted: u64 = rows(&out)
        .iter()
        .filter(|(k, _)| funcs.contains(&k.as_str()))
        .map(|(_, v)| v)
        .sum();
    Ok((
        reads as f64 / secs,
        cpu.as_secs_f64() / during,
        counted,
        reads * funcs.len() as u64,
        lost(&err),
    ))
}

fn slowdown(methods: &[&str], funcs: &[&str], secs: f64, reps: usize) {
    println!(
        "2. A read loop (spin-read, CPU 1) while funccount (CPU 0) counts the {} functions each read calls ({}); {reps} rounds, each method right after an untraced run; medians",
        funcs.len(),
        funcs.join(" ")
    );
    println!(
        "   {:<9} {:>10} {:>10} {:>9} {:>9} {:>8} {:>9}  exact",
        "method", "untraced/s", "reads/s", "slowdown", "ns/call", "fc cpu", "total ns"
    );
    for m in methods {
        let mut base = Vec::new();
        let mut rate = Vec::new();
        let mut slow = Vec::new();
        let mut ns = Vec::new();
        let mut cpu = Vec::new();
        let mut total = Vec::new();
        let mut exact = Vec::new();
        let mut failed = None;
        for _ in 0..reps {
            let b = go_and_wait(spin_read(secs, 1)) as f64 / secs;
            match traced_run(m, funcs, secs) {
                Ok((r, c, counted, offered, lost)) => {
                    let per = (1e9 / r - 1e9 / b) / funcs.len() as f64;
                    let fc = c * 1e9 / (r * funcs.len() as f64);
                    base.push(b);
                    rate.push(r);
                    slow.push(100.0 * (1.0 - r / b));
                    ns.push(per);
                    cpu.push(100.0 * c);
                    total.push(per + fc);
                    exact.push(if counted >= offered && lost == 0 {
                        "yes".to_string()
                    } else {
                        format!("{counted}/{offered} lost {lost}")
                    });
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        if let Some(e) = failed {
            println!("   {m:<9} failed: {e}");
            continue;
        }
        let md = |v: &Vec<f64>| median(v.clone()).unwrap_or(0.0);
        exact.dedup();
        println!(
            "   {:<9} {:>10.0} {:>10.0} {:>8.1}% {:>9.0} {:>7.0}% {:>9.0}  {}",
            m,
            md(&base),
            md(&rate),
            md(&slow),
            md(&ns),
            md(&cpu),
            md(&total),
            exact.join(", ")
        );
    }
    println!("   ns/call: time the loop lost per counted call; fc cpu: funccount's own CPU while counting (share of one core);");
    println!("   total ns: both, per call; exact: every call of the loop counted (other processes' reads count too), none lost.");
}

fn rate_without_loss(funcs: &[&str], secs: f64) {
    println!(
        "3. Events per second through the trace buffer (tracer, -p on the loop, default buffer)"
    );
    let mut w = spin_read(secs, 1);
    let pid = w.id().to_string();
    let mut args = vec!["--method", "tracer", "-p", &pid];
    args.extend(funcs);
    let mut r = Run::start(&args, Some(0));
    if r.ready().is_none() {
        let (_, err, _) = r.finish();
        println!("   failed: {}", err.lines().last().unwrap_or(""));
        let _ = w.kill();
        let _ = w.wait();
        return;
    }
    let t0 = Instant::now();
    let reads = go_and_wait(w);
    let el = t0.elapsed().as_secs_f64();
    let (out, err, _) = r.finish();
    let counted: u64 = rows(&out).values().sum();
    let offered = reads * funcs.len() as u64;
    println!(
        "   offered {offered} ({:.0}/s), counted {counted} ({:.0}/s), lost {}{}",
        offered as f64 / el,
        counted as f64 / el,
        lost(&err),
        if counted == offered { ", exact" } else { "" }
    );
}

fn run_here(tfs: &Tracefs, secs: f64, reps: usize) {
    let uname = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    println!(
        "Linux {} ({} CPUs){}",
        uname.trim(),
        ncpus(),
        match std::env::var("FTRACE_TOOLS_IN_VM") {
            Ok(k) => format!(
                ", tests/vm guest '{k}' under TCG: absolute figures are slow; compare methods"
            ),
            Err(_) => String::new(),
        }
    );
    let list = FunctionList::load(tfs).expect("read available_filter_functions");
    let ms = methods(tfs);
    let pats = patterns(&list);
    attach_detach(&ms, &pats, reps);
    let has = |f: &str| list.all().iter().any(|l| l.name == f);
    // The functions a read() of /dev/zero calls; its read op is read_zero
    // where the device has one (it is used before read_iter_zero).
    let mut funcs: Vec<&str> = ["__x64_sys_read", "ksys_read", "vfs_read"]
        .into_iter()
        .filter(|f| has(f))
        .collect();
    funcs.extend(["read_zero", "read_iter_zero"].into_iter().find(|f| has(f)));
    slowdown(&ms, &funcs, secs, reps);
    rate_without_loss(&funcs, secs);
}

fn main() {
    let mut secs = 3.0;
    let mut reps = 3;
    let mut vm = true;
    let mut kernels: Vec<String> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--secs" => secs = args.next().and_then(|s| s.parse().ok()).expect("--secs S"),
            "--reps" => reps = args.next().and_then(|s| s.parse().ok()).expect("--reps N"),
            "--no-vm" => vm = false,
            "--vm" => kernels.push(args.next().expect("--vm KERNEL")),
            _ => {
                eprintln!(
                    "usage: bench-funccount [--secs S] [--reps N] [--no-vm] [--vm KERNEL]..."
                );
                std::process::exit(2);
            }
        }
    }
    // SAFETY: no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("bench-funccount: needs root");
        std::process::exit(2);
    }
    let tfs = Tracefs::open().expect("tracefs");
    if let caps::Support::No(why) = caps::check(&tfs, Feature::FunctionTracer) {
        println!("Here: {why}.");
        if !vm {
            return;
        }
        if kernels.is_empty() {
            kernels = ["prof", "6.1", "bpo"].map(String::from).to_vec();
        }
        let cache = std::env::var("FTRACE_TOOLS_VM_CACHE")
            .unwrap_or_else(|_| "/var/cache/ftrace-tools-vm".into());
        let runner = Path::new("tests/vm/run-in-guest");
        for k in kernels {
            if !runner.exists() || !Path::new(&format!("{cache}/kernels/{k}/ready")).exists() {
                println!("--- guest {k}: not prepared (run tests/vm/prepare, then this from the repository root)");
                continue;
            }
            println!("--- in the {k} guest (tests/vm/run-in-guest)");
            let _ = std::io::stdout().flush();
            let st = Command::new(runner)
                .args([&k, "--timeout", "1800", "--"])
                .arg(std::env::current_exe().unwrap())
                .args(["--no-vm", "--secs", &secs.to_string()])
                .args(["--reps", &reps.to_string()])
                .status()
                .expect("run tests/vm/run-in-guest");
            if !st.success() {
                println!("   (the guest run failed: {st})");
            }
        }
        return;
    }
    run_here(&tfs, secs, reps);
}
