//! Black-box tests of `iosnoop`, run against the real kernel and a real
//! disk: dd writes and reads exactly 200 blocks of 4096 bytes with direct
//! I/O, and the tool must show them, attributed to dd.
mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use support::{run, Finished, ToolRun, Workload};

const BLOCKS: usize = 200;

/// The disk holding a directory: (name, "MAJ,MIN" of the whole disk), or
/// why it cannot be used.
fn disk_of(dir: &Path) -> Result<(String, String), String> {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(dir).map_err(|e| e.to_string())?.dev();
    let (maj, min) = (libc::major(dev), libc::minor(dev));
    let sys = PathBuf::from(format!("/sys/dev/block/{maj}:{min}"));
    let real = std::fs::canonicalize(&sys)
        .map_err(|_| format!("{} is not on a block device ({maj}:{min})", dir.display()))?;
    let disk = if real.join("partition").exists() {
        real.parent().unwrap().to_path_buf()
    } else {
        real
    };
    if !disk.join("mq").exists() {
        return Err(format!(
            "{} is on {}, which has no request queue",
            dir.display(),
            disk.display()
        ));
    }
    let name = disk.file_name().unwrap().to_string_lossy().into_owned();
    let num = std::fs::read_to_string(disk.join("dev")).unwrap();
    Ok((name, num.trim().replace(':', ",")))
}

/// A directory on a real disk: the VM's scratch disk, else the temp dir.
fn scratch() -> PathBuf {
    std::env::var_os("FTRACE_TOOLS_SCRATCH")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
}

/// A file name of our own in the scratch directory, removed on drop.
struct ScratchFile(PathBuf);

impl ScratchFile {
    fn new(tag: &str) -> ScratchFile {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        ScratchFile(scratch().join(format!("iosnoop-test-{}-{tag}-{n}.dat", std::process::id())))
    }
    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for ScratchFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// dd, started but waiting for `go()`: a shell that reads a line, then
/// execs dd, so its PID is dd's PID before dd runs.
struct Dd {
    child: Child,
}

impl Dd {
    fn waiting(args: &[&str]) -> Dd {
        let child = Command::new("sh")
            .arg("-c")
            .arg("read x; exec dd \"$@\" 2>/dev/null")
            .arg("sh")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn sh/dd");
        Dd { child }
    }
    fn pid(&self) -> u32 {
        self.child.id()
    }
    fn go_and_wait(mut self) {
        let mut s = self.child.stdin.take().unwrap();
        s.write_all(b"go\n").unwrap();
        drop(s);
        let st = self.child.wait().unwrap();
        assert!(st.success(), "dd failed: {st:?}");
    }
    fn write(file: &ScratchFile) -> Dd {
        Dd::waiting(&[
            "if=/dev/zero",
            &format!("of={}", file.path()),
            "bs=4096",
            &format!("count={BLOCKS}"),
            "oflag=direct",
        ])
    }
    fn read(file: &ScratchFile) -> Dd {
        Dd::waiting(&[
            &format!("if={}", file.path()),
            "of=/dev/null",
            "bs=4096",
            &format!("count={BLOCKS}"),
            "iflag=direct",
        ])
    }
}

/// One text row of iosnoop's output.
#[derive(Debug)]
struct Row {
    start: Option<f64>,
    end: Option<f64>,
    comm: String,
    pid: u32,
    typ: String,
    dev: String,
    bytes: u64,
    que: Option<String>,
    lat: f64,
}

/// Parses the rows after the header (`ts`: -s and -t given; `que`: the
/// QUEms column is there).
fn rows(f: &Finished, ts: bool, que: bool) -> Vec<Row> {
    let mut lines = f.stdout.lines();
    let header = lines.next().unwrap_or_default();
    assert!(
        header.contains("COMM") && header.trim_end().ends_with("LATms"),
        "header: {header:?}\nstderr: {}",
        f.stderr
    );
    lines
        .map(|l| {
            // Fixed columns at both ends; a COMM may hold spaces (rustc's
            // threads are "opt cgu.00"), so it is what lies between.
            let mut w: Vec<&str> = l.split_whitespace().collect();
            let short = || panic!("short row {l:?}");
            let (start, end) = if ts {
                if w.len() < 2 {
                    short();
                }
                let s = w.remove(0).parse().unwrap();
                let e = w.remove(0).parse().unwrap();
                (Some(s), Some(e))
            } else {
                (None, None)
            };
            let mut back = || w.pop().unwrap_or_else(short);
            let lat = back().parse().unwrap();
            let que = que.then(|| back().to_string());
            let bytes = back().parse().unwrap();
            let _block = back();
            let dev = back().to_string();
            let typ = back().to_string();
            let pid = back().parse().unwrap_or(0);
            let comm = w.join(" ");
            Row {
                start,
                end,
                comm,
                pid,
                typ,
                dev,
                bytes,
                que,
                lat,
            }
        })
        .collect()
}

fn start_tool(args: &[&str]) -> ToolRun {
    let mut t = ToolRun::start("iosnoop", args);
    t.wait_ready();
    t
}

/// The disk under the scratch directory, or skips the test.
macro_rules! scratch_disk {
    () => {
        match disk_of(&scratch()) {
            Ok(d) => d,
            Err(why) => {
                support::skip(&why);
                return;
            }
        }
    };
}

#[test]
fn help_names_the_events_and_the_device_option() {
    let f = run("iosnoop", &["-h"]);
    assert_eq!(f.code(), 0);
    assert!(f.stdout.contains("block:block_io_start"), "{}", f.stdout);
    assert!(f.stdout.contains("block:block_rq_complete"), "{}", f.stdout);
    assert!(f.stdout.contains("-d, --device <DEVICE>"), "{}", f.stdout);
}

#[test]
fn dd_direct_writes_show_as_dd_rows_by_disk_name_and_number() {
    require_tracing!(BlockTracepoints, Instances);
    let (disk, devnum) = scratch_disk!();
    let file = ScratchFile::new("w");
    let dd = Dd::write(&file);
    let pid = dd.pid();
    let by_name = start_tool(&["-ts", "-d", &disk]);
    let json = start_tool(&["--json", "-d", &devnum]);
    let names = start_tool(&["--disk-names", "-d", &devnum]);
    let t0 = Instant::now();
    dd.go_and_wait();
    let wall_ms = t0.elapsed().as_secs_f64() * 1000.0 + 1.0;

    // Text, perf-tools' columns with -ts.
    let f = by_name.stop();
    assert_eq!(f.code(), 0, "{}", f.stderr);
    let mine: Vec<Row> = rows(&f, true, false)
        .into_iter()
        .filter(|r| r.pid == pid)
        .collect();
    assert!(
        mine.len() >= BLOCKS,
        "{} rows of dd\n{}",
        mine.len(),
        f.stdout
    );
    let writes = mine
        .iter()
        .filter(|r| r.comm == "dd" && r.typ.contains('W') && r.bytes == 4096)
        .count();
    assert!(
        writes >= BLOCKS,
        "{writes} 4 KiB writes of dd:\n{}",
        f.stdout
    );
    for r in &mine {
        // Until execve renames the task, its reads of dd's own file (when
        // not cached) are the shell's.
        if r.comm == "sh" && r.typ.contains('R') {
            continue;
        }
        assert_eq!(r.comm, "dd", "{r:?}");
        assert_eq!(r.dev, devnum, "{r:?}");
        assert!(r.lat > 0.0 && r.lat < wall_ms, "{r:?}");
        let (s, e) = (r.start.unwrap(), r.end.unwrap());
        assert!(e >= s && ((e - s) * 1000.0 - r.lat).abs() < 0.02, "{r:?}");
    }
    support::assert_nothing_left(f.pid);

    // JSON: exact latencies, PIDs and the disk's name.
    let f = json.stop();
    assert_eq!(f.code(), 0, "{}", f.stderr);
    let objs: Vec<serde_json::Value> = f
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &serde_json::Value| v["pid"] == pid)
        .collect();
    let w: Vec<_> = objs
        .iter()
        .filter(|v| {
            v["comm"] == "dd"
                && v["tid"] == pid
                && v["type"].as_str().unwrap().contains('W')
                && v["bytes"] == 4096
                && v["dev"] == devnum.as_str()
                && v["disk"] == disk.as_str()
        })
        .collect();
    assert!(w.len() >= BLOCKS, "{} JSON rows:\n{}", w.len(), f.stdout);
    for v in w {
        let lat = v["lat_ms"].as_f64().unwrap();
        assert!(lat > 0.0 && lat < wall_ms, "{v}");
        assert_eq!(v["device_ms"], v["lat_ms"]);
    }
    support::assert_nothing_left(f.pid);

    // --disk-names: the DEV column holds the name.
    let f = names.stop();
    let n = rows(&f, false, false)
        .iter()
        .filter(|r| r.pid == pid && r.dev == disk)
        .count();
    assert!(n >= BLOCKS, "{n} rows with DEV {disk}:\n{}", f.stdout);
}

#[test]
fn pid_and_name_filters_show_only_dd_and_the_histogram_counts_the_same() {
    require_tracing!(BlockTracepoints, Instances);
    let (disk, _) = scratch_disk!();
    let file = ScratchFile::new("p");
    let dd = Dd::write(&file);
    let pid = dd.pid().to_string();
    let by_pid = start_tool(&["-Q", "--queue-column", "-p", &pid, "-d", &disk]);
    let by_name = start_tool(&["-n", "dd"]);
    let hist = start_tool(&["--hist", "--json", "-p", &pid]);
    let hist_text = start_tool(&["--hist", "--per-disk", "-p", &pid]);
    let slow = start_tool(&["-p", &pid, "-m", "100000"]);
    // The events of kernels before 6.5, where this kernel has both.
    let legacy = support::tracefs()
        .unwrap()
        .exists("events/block/block_getrq")
        .then(|| start_tool(&["--legacy-events", "-p", &pid]));
    dd.go_and_wait();

    let f = by_pid.stop();
    assert_eq!(f.code(), 0, "{}", f.stderr);
    let r = rows(&f, false, true);
    assert!(r.len() >= BLOCKS, "{} rows:\n{}", r.len(), f.stdout);
    for row in &r {
        assert_eq!(row.pid.to_string(), pid, "{row:?}");
        assert_eq!(row.comm, "dd");
        // With -Q, LATms includes the queue time shown in QUEms.
        let q: f64 = row.que.as_ref().unwrap().parse().unwrap();
        assert!(q >= 0.0 && row.lat + 0.011 >= q, "{row:?}");
    }
    let shown = r.len() as u64;

    let f = by_name.stop();
    let r = rows(&f, false, false);
    assert!(r.iter().filter(|x| x.pid.to_string() == pid).count() >= BLOCKS);
    assert!(r.iter().all(|x| x.comm.contains("dd")), "{}", f.stdout);

    let f = hist.stop();
    assert_eq!(f.code(), 0, "{}", f.stderr);
    let v: serde_json::Value = serde_json::from_str(f.stdout.trim()).unwrap();
    assert_eq!(v["total"], shown, "{}", f.stdout);
    let sum: u64 = v["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .sum();
    assert_eq!(sum, shown);

    let f = hist_text.stop();
    assert!(
        f.stdout.contains(&format!("disk = {disk} (")),
        "{}",
        f.stdout
    );
    assert!(f.stdout.contains("usecs"), "{}", f.stdout);
    let total = f
        .stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("total : "))
        .unwrap_or_else(|| panic!("{}", f.stdout));
    assert_eq!(total.trim(), shown.to_string());

    let f = slow.stop();
    assert_eq!(rows(&f, false, false).len(), 0, "{}", f.stdout);
    support::assert_nothing_left(f.pid);

    if let Some(t) = legacy {
        let f = t.stop();
        assert_eq!(f.code(), 0, "{}", f.stderr);
        let r = rows(&f, false, false);
        assert_eq!(r.len() as u64, shown, "{}", f.stdout);
        assert!(r.iter().all(|x| x.pid.to_string() == pid && x.comm == "dd"));
        support::assert_nothing_left(f.pid);
    }
}

#[test]
fn iotype_pattern_shows_only_reads() {
    require_tracing!(BlockTracepoints, Instances);
    let (disk, _) = scratch_disk!();
    let file = ScratchFile::new("r");
    Dd::write(&file).go_and_wait();
    let dd = Dd::read(&file);
    let pid = dd.pid();
    let t = start_tool(&["-i", "*R*", "-d", &disk]);
    dd.go_and_wait();
    let f = t.stop();
    assert_eq!(f.code(), 0, "{}", f.stderr);
    let r = rows(&f, false, false);
    assert!(r.iter().all(|x| x.typ.contains('R')), "{}", f.stdout);
    let reads = r
        .iter()
        .filter(|x| x.pid == pid && x.comm == "dd" && x.bytes == 4096)
        .count();
    assert!(reads >= BLOCKS, "{reads} reads of dd:\n{}", f.stdout);
    support::assert_nothing_left(f.pid);
}

#[test]
fn lost_events_are_reported_and_no_latency_is_absurd() {
    require_tracing!(BlockTracepoints, Instances);
    let (disk, _) = scratch_disk!();
    let file = ScratchFile::new("l");
    std::fs::write(&file.0, vec![7u8; 1 << 20]).unwrap();
    std::fs::File::open(&file.0).unwrap().sync_all().unwrap();
    let mut w = Workload::waiting(&["direct-read", file.path(), "30000"]);
    let wpid = w.pid();
    // A 4 KiB buffer per CPU holds a few dozen events.
    let t = start_tool(&["-b", "4", "-ts", "-d", &disk]);
    let t0 = Instant::now();
    w.go();
    // Stop the reader now and then so that the buffer overflows for sure.
    let waiter = std::thread::spawn(move || w.wait());
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(50));
        t.signal(libc::SIGSTOP);
        std::thread::sleep(Duration::from_millis(200));
        t.signal(libc::SIGCONT);
    }
    assert_eq!(waiter.join().unwrap(), 30000);
    let wall_ms = t0.elapsed().as_secs_f64() * 1000.0;
    let f = t.stop();
    assert_eq!(f.code(), 0, "{}", f.stderr);
    assert!(f.stderr.contains("lost"), "no loss reported:\n{}", f.stderr);
    let r = rows(&f, true, false);
    assert!(
        r.iter().any(|x| x.pid == wpid),
        "no rows of the workload:\n{}",
        f.stderr
    );
    for x in &r {
        assert!(
            x.lat >= 0.0 && x.lat <= wall_ms,
            "absurd: {x:?} (run: {wall_ms} ms)"
        );
    }
    support::assert_nothing_left(f.pid);
}

#[test]
fn bad_input_exits_2_with_one_line_and_leaves_nothing() {
    require_tracing!(BlockTracepoints, Instances);
    for (args, want) in [
        (
            &["-d", "nosuchdisk0"][..],
            "no block device named 'nosuchdisk0'",
        ),
        (&["-d", "4000,4000"][..], "no block device 4000,4000"),
        (&["-d", "vdaa"][..], "no block device named 'vdaa'"),
        (&["-i", "*r*"][..], "bad I/O type pattern '*r*'"),
        (&["-i", "[RW"][..], "'['"),
        (&["-i", "read"][..], "bad I/O type pattern"),
        (&["-n", ""][..], "process name"),
        (&["-p", "999999999"][..], "no process with PID 999999999"),
    ] {
        let f = run("iosnoop", args);
        assert_eq!(f.code(), 2, "{args:?}: {}", f.stderr);
        let lines: Vec<&str> = f.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{args:?}: {}", f.stderr);
        assert!(lines[0].starts_with("iosnoop: "), "{args:?}: {}", f.stderr);
        assert!(lines[0].contains(want), "{args:?}: {}", f.stderr);
        assert!(f.stdout.is_empty(), "{args:?}: {}", f.stdout);
        support::assert_nothing_left(f.pid);
    }
    // Option errors come from the parser, also exit 2.
    for args in [
        &["-m", "x"][..],
        &["--per-disk"][..],
        &["-p", "1", "-n", "x"][..],
    ] {
        let f = run("iosnoop", args);
        assert_eq!(f.code(), 2, "{args:?}: {}", f.stderr);
    }
}

#[test]
fn duration_ends_the_run_and_the_top_level_is_untouched() {
    require_tracing!(BlockTracepoints, Instances);
    let evs = [
        "block:block_rq_issue",
        "block:block_io_start",
        "block:block_io_done",
        "block:block_rq_complete",
        "block:block_getrq",
    ];
    let before = support::top_level_snapshot(&evs);
    let t0 = Instant::now();
    let f = run("iosnoop", &["0.5"]);
    assert_eq!(f.code(), 0, "{}", f.stderr);
    assert!(t0.elapsed() < Duration::from_secs(30));
    assert!(f.stdout.starts_with("COMM "), "{}", f.stdout);
    assert!(f.stderr.contains("for 0.5 seconds"), "{}", f.stderr);
    support::assert_nothing_left(f.pid);
    assert_eq!(support::top_level_snapshot(&evs), before);
}

/// A loop device with two MBR partitions over a file in tmpfs; detached
/// and removed on drop.
struct PartitionedLoop {
    dev: String,
    file: PathBuf,
}

impl PartitionedLoop {
    /// Partition 1: sectors 2048..34816, partition 2: 34816..67584.
    fn new() -> Result<PartitionedLoop, String> {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = if Path::new("/dev/shm").is_dir() {
            "/dev/shm"
        } else {
            "/tmp"
        };
        let file = PathBuf::from(format!(
            "{dir}/iosnoop-test-{}-{}.img",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let mut img = vec![0u8; 34 << 20];
        for (i, (first, len)) in [(2048u32, 32768u32), (34816, 32768)].iter().enumerate() {
            let e = &mut img[446 + 16 * i..446 + 16 * (i + 1)];
            e[4] = 0x83;
            e[8..12].copy_from_slice(&first.to_le_bytes());
            e[12..16].copy_from_slice(&len.to_le_bytes());
        }
        img[510] = 0x55;
        img[511] = 0xaa;
        std::fs::write(&file, &img).map_err(|e| e.to_string())?;
        let out = Command::new("losetup")
            .args(["-P", "-f", "--show"])
            .arg(&file)
            .output()
            .map_err(|e| format!("losetup: {e}"))?;
        if !out.status.success() {
            let _ = std::fs::remove_file(&file);
            return Err(format!(
                "losetup failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let dev = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let lp = PartitionedLoop { dev, file };
        // The partitions may appear a moment later.
        let deadline = Instant::now() + Duration::from_secs(2);
        while !Path::new(&format!("{}p2", lp.dev)).exists() {
            if Instant::now() > deadline {
                return Err(format!(
                    "the kernel made no partitions on {} (CONFIG_MSDOS_PARTITION?)",
                    lp.dev
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(lp)
    }
    fn name(&self) -> &str {
        self.dev.trim_start_matches("/dev/")
    }
}

impl Drop for PartitionedLoop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.dev]).status();
        let _ = std::fs::remove_file(&self.file);
    }
}

#[test]
fn a_partition_selects_its_sectors_of_the_disk() {
    require_tracing!(BlockTracepoints, Instances);
    let lp = match PartitionedLoop::new() {
        Ok(l) => l,
        Err(why) => {
            support::skip(&format!("no partitioned loop device: {why}"));
            return;
        }
    };
    let p2 = format!("{}p2", lp.name());
    let dd = Dd::waiting(&[
        "if=/dev/zero",
        &format!("of={}", format_args!("{}p2", lp.dev)),
        "bs=4096",
        &format!("count={BLOCKS}"),
        "oflag=direct",
    ]);
    let pid = dd.pid();
    let on_p2 = start_tool(&["--disk-names", "-d", &format!("{}p2", lp.dev)]);
    let on_p1 = start_tool(&["-d", &format!("{}p1", lp.name())]);
    let on_disk = start_tool(&["--json", "-d", lp.name()]);
    dd.go_and_wait();

    let f = on_p2.stop();
    assert_eq!(f.code(), 0, "{}", f.stderr);
    let r: Vec<Row> = rows(&f, false, false);
    let mine = r.iter().filter(|x| x.pid == pid).count();
    assert!(mine >= BLOCKS, "{mine} rows on {p2}:\n{}", f.stdout);
    assert!(r.iter().all(|x| x.dev == p2), "{}", f.stdout);
    support::assert_nothing_left(f.pid);

    let f = on_p1.stop();
    assert_eq!(rows(&f, false, false).len(), 0, "{}", f.stdout);

    // The requests name the whole disk, with the partition's sectors.
    let f = on_disk.stop();
    let objs: Vec<serde_json::Value> = f
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &serde_json::Value| v["tid"] == pid)
        .collect();
    assert!(objs.len() >= BLOCKS, "{}", f.stdout);
    for v in objs {
        let b = v["block"].as_u64().unwrap();
        assert!((34816..67584).contains(&b), "{v}");
        assert_eq!(v["disk"], p2.as_str(), "{v}");
    }
}

#[test]
fn write_then_read_pairs_the_same_io_and_trace_cmd_sees_every_event() {
    require_tracing!(BlockTracepoints, Instances);
    let (disk, _) = scratch_disk!();
    let file = ScratchFile::new("w");
    std::fs::write(&file.0, vec![7u8; 1 << 20]).unwrap();
    std::fs::File::open(&file.0).unwrap().sync_all().unwrap();
    // The recording goes to memory (tmpfs in the guests; else the temp
    // dir): its own writes stay off the traced disk where they can.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("io.dat");
    let n = 300u64;
    let mut w = Workload::waiting(&["direct-read", file.path(), &n.to_string()]);
    let wpid = w.pid().to_string();
    let t = start_tool(&["-w", out.to_str().unwrap(), "-d", &disk]);
    w.go();
    assert_eq!(w.wait(), n);
    let f = t.stop();
    assert_eq!(f.code(), 0, "{}", f.stderr);
    assert!(f.stdout.is_empty(), "{}", f.stdout);
    let r = run("iosnoop", &["--read", out.to_str().unwrap(), "-p", &wpid]);
    assert_eq!(r.code(), 0, "{}", r.stderr);
    let reads = r
        .stdout
        .lines()
        .filter(|l| l.contains(" R") && l.contains(" 4096 "))
        .count();
    assert_eq!(reads as u64, n, "{}\n{}", r.stdout, r.stderr);
    // Every recorded event, by both readers.
    let ours = run("tpoint", &["--read", out.to_str().unwrap()]);
    if let Some(text) = support::trace_cmd_report(&out) {
        for ev in ["block_rq_issue:", "block_rq_complete:", "block_io_done:"] {
            assert_eq!(support::count_lines(&text, ev), ours.count(ev), "{ev}");
        }
        assert!(support::count_lines(&text, "block_rq_issue:") as u64 >= n);
    }
}
