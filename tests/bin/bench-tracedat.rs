//! bench-tracedat: recording into a trace.dat file, `tpoint -w` against
//! `trace-cmd record`, side by side in the same run (issue 14).
//!
//! A child calls getppid as fast as it can for SECS seconds (2 by
//! default); each recorder follows that one process and records
//! raw_syscalls:sys_enter. For each: events offered (the child's own
//! count), events of the child in the file (read back with our reader),
//! events lost (the file's per-CPU statistics and lost-event marks), the
//! recorder's CPU time (user + system, its threads and children), and the
//! file's size. trace-cmd runs first, then tpoint, then trace-cmd again,
//! so that a drift of the machine shows.
//!
//! Run as root where trace-cmd can record (the VM harness's guests:
//! `tests/vm/run-in-guest bpo -- target/release/bench-tracedat`), after
//! `cargo build --release`. Where it cannot, only tpoint's figures print.

use ftrace_common::buffer::reader::Item;
use ftrace_common::buffer::tracedat::read::TraceDat;
use ftrace_common::Flow;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn bin(name: &str) -> PathBuf {
    std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .join(name)
}

struct Figures {
    offered: u64,
    recorded: u64,
    lost: u64,
    cpu: f64,
    bytes: u64,
    secs: f64,
}

fn spawn_workload(secs: f64) -> Child {
    Command::new(bin("ftt-workload"))
        .args(["--wait", "spin", &secs.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("ftt-workload (build with cargo build --release)")
}

/// Reads the recorder's stream to its end, sending `true` on `tx` when a
/// line holds one of `ready`, and each other line's text.
fn watch(
    r: impl Read + Send + 'static,
    ready: &'static [&'static str],
    tx: mpsc::Sender<Option<String>>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            let is_ready = ready.iter().any(|r| line.contains(r));
            let _ = tx.send(if is_ready { None } else { Some(line) });
        }
    });
}

/// CPU seconds (user + system) of a child, reaped here.
fn reap(child: &Child) -> f64 {
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 on our own child.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// How a recorder shows it is recording.
enum Ready {
    /// It prints a line holding one of these (unbuffered: tpoint's stderr).
    Says(&'static [&'static str]),
    /// This tracefs file reads "1" (trace-cmd's "Hit Ctrl^C" goes to a
    /// buffered stdout when piped, so the event's enable file is watched).
    Enabled(PathBuf),
}

/// Runs a recorder made by `start` (given the child's PID) around the
/// workload; `None` if it could not start.
fn record(secs: f64, file: &Path, ready: Ready, start: &dyn Fn(u32) -> Command) -> Option<Figures> {
    let mut w = spawn_workload(secs);
    let mut cmd = start(w.id());
    let spawned = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let Ok(mut r) = spawned else {
        eprintln!("{cmd:?}: cannot start");
        let _ = w.kill();
        let _ = w.wait();
        return None;
    };
    let out = r.stdout.take().unwrap();
    let err = r.stderr.take().unwrap();
    // Either stream may carry the ready line.
    let lines: &'static [&'static str] = match &ready {
        Ready::Says(l) => l,
        Ready::Enabled(_) => &[],
    };
    let (tx, rx) = mpsc::channel();
    watch(out, lines, tx.clone());
    watch(err, lines, tx);
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut said = String::new();
    let started = loop {
        if let Ready::Enabled(f) = &ready {
            if std::fs::read_to_string(f).is_ok_and(|t| t.trim() == "1") {
                break true;
            }
        }
        if Instant::now() >= deadline {
            break false;
        }
        match rx.recv_timeout(Duration::from_millis(20)) {
            Ok(None) => break true,
            Ok(Some(line)) => {
                said.push_str(&line);
                said.push('\n');
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break false,
        }
    };
    if !started {
        eprintln!("{}", said.trim_end());
        let _ = w.kill();
        let _ = w.wait();
        let _ = r.kill();
        reap(&r);
        return None;
    }
    // trace-cmd says it is ready before its recorders have opened every
    // CPU's buffer: give both the same second.
    std::thread::sleep(Duration::from_secs(1));
    let t0 = Instant::now();
    w.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let mut s = String::new();
    w.stdout.take().unwrap().read_to_string(&mut s).unwrap();
    w.wait().unwrap();
    let offered: u64 = s.trim().trim_start_matches("done ").parse().unwrap();
    let secs = t0.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(200));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(r.id() as i32, libc::SIGINT) };
    let cpu = reap(&r);
    let pid = w.id() as i32;
    let dat = match TraceDat::open(file) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{e}");
            return None;
        }
    };
    // The child's getppid calls: raw_syscalls:sys_enter with id 110.
    let fmt = dat.format("raw_syscalls", "sys_enter")?;
    let nr = fmt.field("id")?.clone();
    let mut recorded = 0u64;
    let mut marked = 0u64;
    dat.events(&mut |it| {
        match it {
            Item::Event(ev)
                if ev.pid == pid
                    && ev.id == fmt.id
                    && nr.u64(ev.data) == Some(libc::SYS_getppid as u64) =>
            {
                recorded += 1
            }
            Item::Lost(_, n) => marked += n.unwrap_or(0),
            _ => {}
        }
        Flow::Continue
    })
    .map_err(|e| eprintln!("{e}"))
    .ok()?;
    let stats: u64 = dat.lost_per_cpu().iter().map(|(_, n)| n).sum();
    Some(Figures {
        offered,
        recorded,
        lost: stats.max(marked),
        cpu,
        bytes: std::fs::metadata(file).map(|m| m.len()).unwrap_or(0),
        secs,
    })
}

/// A scratch directory, removed at the end.
struct Scratch(PathBuf);

impl Scratch {
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn print(name: &str, f: &Figures) {
    println!(
        "{name:<22} offered {:>9} ({:.2} M/s), recorded {:>9}, lost {:>8}, recorder CPU {:>5.2} s, file {:>6.1} MB",
        f.offered,
        f.offered as f64 / f.secs / 1e6,
        f.recorded,
        f.lost,
        f.cpu,
        f.bytes as f64 / 1e6
    );
}

fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let dir = Scratch(std::env::temp_dir().join(format!("bench-tracedat-{}", std::process::id())));
    std::fs::create_dir_all(dir.path()).unwrap();
    let tc = |tag: &str, extra: &'static [&'static str]| {
        let file = dir.path().join(format!("trace-cmd-{tag}.dat"));
        let f = file.clone();
        let enable = Path::new("/sys/kernel/tracing/events/raw_syscalls/sys_enter/enable");
        let r = record(secs, &file, Ready::Enabled(enable.into()), &move |pid| {
            let mut c = Command::new("trace-cmd");
            c.arg("record")
                .args(extra)
                .args(["-e", "raw_syscalls:sys_enter", "-P"])
                .arg(pid.to_string())
                .arg("-o")
                .arg(&f);
            c
        });
        match &r {
            Some(fig) => print(&format!("trace-cmd record ({tag})"), fig),
            None => println!("trace-cmd record: cannot record here (not installed, or refused)"),
        }
        r
    };
    let first = tc("1", &[]);
    let file = dir.path().join("tpoint.dat");
    let f = file.clone();
    let ours = record(secs, &file, Ready::Says(&["Tracing"]), &move |pid| {
        let mut c = Command::new(bin("tpoint"));
        c.args(["-p", &pid.to_string(), "-w"])
            .arg(&f)
            .arg("raw_syscalls:sys_enter");
        c
    });
    match &ours {
        Some(fig) => print("tpoint -w", fig),
        None => println!("tpoint -w: did not start (root and tracefs needed)"),
    }
    let second = if first.is_some() { tc("2", &[]) } else { None };
    // trace-cmd 3's default file is version 7, zstd-compressed where it
    // was built with libzstd: the size of an uncompressed one, as ours.
    let v6 = if first.is_some() {
        tc("3, v6", &["--file-version", "6"])
    } else {
        None
    };
    if let (Some(o), Some(a), Some(b)) = (&ours, &first, &second) {
        let tc_lost = format!("{} and {}", a.lost, b.lost);
        let tc_cpu = (a.cpu + b.cpu) / 2.0;
        println!(
            "tpoint -w against trace-cmd: lost {} vs {}, CPU {:.2}x, file size {:.2}x (of its compressed files){}",
            o.lost,
            tc_lost,
            o.cpu / tc_cpu.max(1e-9),
            o.bytes as f64 / ((a.bytes + b.bytes) as f64 / 2.0).max(1.0),
            v6.as_ref()
                .map(|c| format!(
                    ", {:.2}x (of its version 6 file)",
                    o.bytes as f64 / c.bytes.max(1) as f64
                ))
                .unwrap_or_default()
        );
    }
}
