//! bench-tpoint: figures for the foundation's read path (issue 2).
//!
//! (a) Offline: sub-buffer parsing speed on one core, in events/s, over
//!     sub-buffers captured from real kernels (common/testdata/kernels/*/raw)
//!     or, if none are there, built ones of the same shape.
//! (b) Live, about 2 s: a child calls getppid as fast as it can while
//!     `tpoint -p CHILD` prints every event; events offered (the child's own
//!     count), received and lost. Then the same workload read as text through
//!     the `trace_pipe` of an instance, in the same run, for comparison.
//!     tpoint writes into a file, once printing the kernel's text (the
//!     default) and once `--fields`, to show what rendering costs in
//!     losses.
//! (c) Start-up and signal-to-exit times of `tpoint EVENT` (idle), over
//!     15 runs: exec to "Tracing" (the event enabled in a fresh instance),
//!     and SIGINT to exit (the instance disabled, drained and removed).
//! (d) Rendering cost per event: about 1 s of the records of a mixed
//!     workload (sched, timer, kmem, irq, signal, workqueue, syscalls),
//!     captured from an instance, then printed offline as the kernel's
//!     text (the print-fmt renderer) and as `name=value`, in ns an event.
//!
//! Run as root: `cargo build --release && target/release/bench-tpoint [SECS]`
//! (tests/bench runs every benchmark).

use ftrace_common::buffer::format::EventFormat;
use ftrace_common::buffer::printfmt::{EventText, Kernel, KernelStrings, Lookups};
use ftrace_common::buffer::reader::{Event, Item};
use ftrace_common::buffer::ringbuf::{build::PageBuilder, Lost, Page, PageLayout};
use ftrace_common::kernel::tracefs::Tracefs;
use ftrace_common::lifecycle::instance::Instance;
use ftrace_common::sym::kallsyms::KernelSyms;
use ftrace_common::Flow;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bin(name: &str) -> PathBuf {
    std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .join(name)
}

fn captured_pages() -> (Vec<Vec<u8>>, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("common/testdata/kernels");
    let mut pages = Vec::new();
    let mut from = Vec::new();
    if let Ok(rd) = std::fs::read_dir(&root) {
        for k in rd.flatten() {
            let raw = k.path().join("raw");
            let Ok(files) = std::fs::read_dir(&raw) else {
                continue;
            };
            for f in files.flatten() {
                let name = f.file_name().to_string_lossy().into_owned();
                if name.starts_with("getppid-cpu") && name.ends_with(".bin") {
                    let bytes = std::fs::read(f.path()).unwrap_or_default();
                    for chunk in bytes.chunks(4096) {
                        if chunk.len() == 4096 {
                            pages.push(chunk.to_vec());
                        }
                    }
                    from.push(format!("{}/{}", k.file_name().to_string_lossy(), name));
                }
            }
        }
    }
    if pages.is_empty() {
        // Built sub-buffers like those of sys_enter_getppid: 16-byte payloads.
        let payload = [
            0x31u8, 0x01, 0, 0, 0x39, 0x30, 0, 0, 110, 0, 0, 0, 0, 0, 0, 0,
        ];
        for p in 0..64u64 {
            let mut b = PageBuilder::new(p * 1_000_000);
            for _ in 0..200 {
                b = b.event(100, &payload);
            }
            pages.push(b.finish(Lost::None));
        }
        from.push("built sub-buffers (no captures found)".into());
    }
    (pages, from.join(", "))
}

fn offline() {
    let (pages, from) = captured_pages();
    let layout = PageLayout::DEFAULT_64;
    let per_pass: u64 = pages
        .iter()
        .map(|p| {
            Page::parse(layout, p)
                .map(|pg| pg.count() as u64)
                .unwrap_or(0)
        })
        .sum();
    let t0 = Instant::now();
    let mut events = 0u64;
    let mut pid_sum = 0i64;
    while t0.elapsed() < Duration::from_secs(1) {
        for p in &pages {
            let Ok(pg) = Page::parse(layout, p) else {
                continue;
            };
            for r in pg {
                if let Some(ev) = Event::from_record(0, r.ts, r.data) {
                    pid_sum = pid_sum.wrapping_add(ev.pid as i64);
                    events += 1;
                }
            }
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    std::hint::black_box(pid_sum);
    println!(
        "(a) offline parsing: {} sub-buffers, {per_pass} events per pass ({from})",
        pages.len()
    );
    println!(
        "    {:.1} M events/s on one core (target: at least 50 M/s)",
        events as f64 / secs / 1e6
    );
}

struct Live {
    offered: u64,
    received: u64,
    lost: u64,
    secs: f64,
}

fn spawn_workload(secs: f64) -> std::process::Child {
    Command::new(bin("ftt-workload"))
        .args(["--wait", "spin", &secs.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("ftt-workload (build with cargo build --release)")
}

fn finish_workload(mut w: std::process::Child) -> u64 {
    let mut s = String::new();
    w.stdout.take().unwrap().read_to_string(&mut s).unwrap();
    w.wait().unwrap();
    s.trim().trim_start_matches("done ").parse().unwrap()
}

fn live_tpoint(secs: f64, extra: &[&str]) -> Live {
    let mut w = spawn_workload(secs);
    let out_path = std::env::temp_dir().join(format!("bench-tpoint-{}.txt", std::process::id()));
    let file = std::fs::File::create(&out_path).unwrap();
    let pid = w.id().to_string();
    let mut args = vec!["-p", pid.as_str()];
    args.extend_from_slice(extra);
    args.push("syscalls:sys_enter_getppid");
    let mut t = Command::new(bin("tpoint"))
        .args(&args)
        .stdout(file)
        .stderr(Stdio::piped())
        .spawn()
        .expect("tpoint");
    let mut err = BufReader::new(t.stderr.take().unwrap());
    let mut line = String::new();
    while err.read_line(&mut line).unwrap() > 0 && !line.contains("Tracing") {}
    let t0 = Instant::now();
    w.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let offered = finish_workload(w);
    let secs = t0.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(100));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(t.id() as i32, libc::SIGINT) };
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    t.wait().unwrap();
    let text = std::fs::read(&out_path).unwrap_or_default();
    std::fs::remove_file(&out_path).ok();
    let lines = text.split(|&b| b == b'\n').filter(|l| !l.is_empty());
    // "[LOST" marker lines are not events.
    let received = lines
        .filter(|l| !l.windows(5).any(|w| w == b"[LOST"))
        .count() as u64;
    let lost = rest
        .split("LOST ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    Live {
        offered,
        received,
        lost,
        secs,
    }
}

/// The text path: `trace_pipe` of an instance, read with 64 KiB reads like
/// `cat`, with the same buffer size tpoint uses by default.
fn live_text(secs: f64) -> Live {
    let tfs = Tracefs::open().expect("tracefs");
    let mut w = spawn_workload(secs);
    let mut inst = Instance::create(&tfs, "bench-text", None).unwrap();
    inst.set_event_pids(&[w.id()], true).unwrap();
    inst.enable_event("syscalls", "sys_enter_getppid").unwrap();
    let pipe_path = inst.path("trace_pipe");
    inst.start().unwrap();
    let reader = std::thread::spawn(move || {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(pipe_path)
            .unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let mut n = 0u64;
        let mut idle_since: Option<Instant> = None;
        loop {
            match f.read(&mut buf) {
                Ok(k) if k > 0 => {
                    n += buf[..k].iter().filter(|&&b| b == b'\n').count() as u64;
                    idle_since = None;
                }
                _ => {
                    let t = *idle_since.get_or_insert_with(Instant::now);
                    if STOP.load(std::sync::atomic::Ordering::Relaxed)
                        && t.elapsed() > Duration::from_millis(300)
                    {
                        break;
                    }
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
        }
        n
    });
    let t0 = Instant::now();
    w.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let offered = finish_workload(w);
    let secs = t0.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(100));
    inst.stop().unwrap();
    STOP.store(true, std::sync::atomic::Ordering::Relaxed);
    let received = reader.join().unwrap();
    let lost: u64 = inst
        .cpus()
        .iter()
        .map(|c| {
            ftrace_common::buffer::ringbuf::lost_from_stats(
                &inst
                    .read(format!("per_cpu/cpu{c}/stats"))
                    .unwrap_or_default(),
            )
        })
        .sum();
    Live {
        offered,
        received,
        lost,
        secs,
    }
}

static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn report(name: &str, l: &Live) {
    println!(
        "    {name:<28} offered {:>9}  received {:>9}  lost {:>9} ({:.1}%)  {:.2} M events/s offered",
        l.offered,
        l.received,
        l.lost,
        100.0 * l.lost as f64 / l.offered.max(1) as f64,
        l.offered as f64 / l.secs / 1e6
    );
}

fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    println!(
        "bench-tpoint ({} CPUs)",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    offline();
    // SAFETY: no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("(b) live: skipping: needs root");
        return;
    }
    println!("(b) live, {secs} s of getppid as fast as one CPU can:");
    let t = live_tpoint(secs, &[]);
    report("tpoint > file", &t);
    let t = live_tpoint(secs, &["--fields"]);
    report("tpoint --fields > file", &t);
    let x = live_text(secs);
    report("text trace_pipe (instance)", &x);
    start_and_exit(15);
    rendering();
}

/// (d): the renderer's cost per event against `name=value`, offline, on
/// records this kernel wrote.
fn rendering() {
    let tfs = Tracefs::open().expect("tracefs");
    let systems = [
        "sched",
        "timer",
        "kmem",
        "irq",
        "signal",
        "workqueue",
        "syscalls",
    ];
    let mut inst = Instance::create(&tfs, "bench-render", Some(16 * 1024)).unwrap();
    let mut formats: HashMap<u16, (String, EventFormat)> = HashMap::new();
    for s in systems {
        if inst.write(format!("events/{s}/enable"), "1").is_err() {
            continue;
        }
        let Ok(rd) = std::fs::read_dir(inst.path(format!("events/{s}"))) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Ok(f) = inst.event_format(s, &name) {
                formats.insert(f.id, (s.to_string(), f));
            }
        }
    }
    let scratch = std::env::temp_dir();
    let mut w = Command::new(bin("ftt-workload"))
        .args(["--wait", "mix", "1", &scratch.to_string_lossy()])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("ftt-workload");
    inst.start().unwrap();
    w.stdin.take().unwrap().write_all(b"go\n").unwrap();
    w.wait().unwrap();
    inst.stop().unwrap();
    let mut records: Vec<(u16, Vec<u8>)> = Vec::new();
    let mut reader = inst.reader().unwrap();
    loop {
        let (n, _) = reader
            .drain(&mut |item| {
                if let Item::Event(ev) = item {
                    if formats.contains_key(&ev.id) {
                        records.push((ev.id, ev.data.to_vec()));
                    }
                }
                Flow::Continue
            })
            .unwrap();
        if n == 0 {
            break;
        }
    }
    drop(reader);
    for s in systems {
        inst.write(format!("events/{s}/enable"), "0").ok();
    }
    inst.remove().unwrap();
    let kernel = Kernel::this();
    let texts: HashMap<u16, EventText> = formats
        .iter()
        .map(|(id, (s, f))| (*id, EventText::new(s, f, kernel)))
        .collect();
    let types = records
        .iter()
        .map(|(id, _)| *id)
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let mut syms = KernelSyms::default();
    let mut strings = KernelStrings::default();
    let mut line = String::new();
    let mut time = |f: &mut dyn FnMut(u16, &[u8], &mut String)| {
        let t0 = Instant::now();
        let mut passes = 0u64;
        while passes == 0 || t0.elapsed() < Duration::from_secs(1) {
            for (id, data) in &records {
                line.clear();
                f(*id, data, &mut line);
                std::hint::black_box(&line);
            }
            passes += 1;
        }
        t0.elapsed().as_secs_f64() * 1e9 / (passes * records.len().max(1) as u64) as f64
    };
    let kernel_ns = time(&mut |id, data, line| {
        let look = Lookups {
            syms: &mut syms,
            strings: &mut strings,
        };
        texts[&id].write_event(data, look, line);
    });
    let fields_ns = time(&mut |id, data, line| {
        for f in formats[&id].1.fields.iter() {
            line.push(' ');
            f.write_text(data, line);
        }
    });
    println!(
        "(d) rendering {} records of {types} event types (mixed workload), offline, one core:",
        records.len()
    );
    println!("    the kernel's text  {kernel_ns:7.0} ns an event");
    println!("    name=value         {fields_ns:7.0} ns an event");
}

/// (c): medians and maxima in ms of exec-to-"Tracing" and SIGINT-to-exit.
fn start_and_exit(runs: usize) {
    let mut up = Vec::new();
    let mut down = Vec::new();
    for _ in 0..runs {
        let t0 = Instant::now();
        let mut t = Command::new(bin("tpoint"))
            .arg("syscalls:sys_enter_getppid")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tpoint");
        let mut err = BufReader::new(t.stderr.take().unwrap());
        let mut line = String::new();
        while err.read_line(&mut line).unwrap() > 0 && !line.contains("Tracing") {}
        up.push(t0.elapsed().as_secs_f64() * 1e3);
        std::thread::sleep(Duration::from_millis(50));
        let t1 = Instant::now();
        // SAFETY: signalling our own child.
        unsafe { libc::kill(t.id() as i32, libc::SIGINT) };
        let st = t.wait().unwrap();
        down.push(t1.elapsed().as_secs_f64() * 1e3);
        assert!(st.success(), "tpoint: {st}");
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        (v[v.len() / 2], v[v.len() - 1])
    };
    let (um, ux) = med(&mut up);
    let (dm, dx) = med(&mut down);
    println!("(c) tpoint syscalls:sys_enter_getppid, {runs} runs, idle:");
    println!("    exec to \"Tracing\"   median {um:6.1} ms  max {ux:6.1} ms");
    println!("    SIGINT to exit       median {dm:6.1} ms  max {dx:6.1} ms (target 100 ms)");
}
