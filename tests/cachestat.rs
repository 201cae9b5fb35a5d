//! Black-box tests of `cachestat`. Page accesses are counted with a
//! kprobe: on a kernel without kprobes (the build host) cachestat must
//! refuse with exit 2 and say why; tests/vm runs the counting tests in the
//! Debian 6.1 and 6.12 guests, on their ext4 scratch disk.
//!
//! The oracle: a file of N pages, written, synced and dropped from the
//! page cache (the workload checks with mincore(2) that none of its pages
//! is cached), read by a process that cachestat follows with -p: exactly N
//! pages are added to the cache (N misses, no hit); read again: N hits, no
//! miss. The reader is held alive until cachestat has stopped: its exit
//! would add the accesses of unmapping its program (see `read_once`).
mod support;

use ftrace_common::kernel::caps::Feature;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;
use support::ToolRun;

/// Pages of the test file.
const PAGES: u64 = 256;

fn scratch() -> PathBuf {
    std::env::var_os("FTRACE_TOOLS_SCRATCH")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
}

/// The file of the test, removed on drop.
struct TestFile(PathBuf);

impl Drop for TestFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The totals of a run's JSON lines: hits, misses, and the counts of each
/// counting point.
#[derive(Debug, Default)]
struct Totals {
    hits: u64,
    misses: u64,
    dirties: u64,
    accessed: u64,
    added: u64,
    lost: u64,
    lines: usize,
}

fn totals(out: &str) -> Totals {
    let mut t = Totals::default();
    for l in out.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        let n = |k: &str| v[k].as_u64().unwrap_or_else(|| panic!("no {k}: {l}"));
        t.hits += n("hits");
        t.misses += n("misses");
        t.dirties += n("dirties");
        t.lost += n("lost");
        t.accessed += v["counts"]["accessed"].as_u64().unwrap();
        t.added += v["counts"]["added"].as_u64().unwrap();
        t.lines += 1;
    }
    t
}

/// `cachestat -j 600 -p PID` around one `cache-read` of the file, stopped
/// with SIGINT once the reads are done but before the reader exits (its
/// exit unmaps its program's pages, which marks them accessed: 493 more
/// accesses measured in the 6.12 guest).
fn read_once(path: &str) -> (Totals, String) {
    let mut w = Command::new(support::workload_bin())
        .args(["--wait", "cache-read", path, "hold"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn workload");
    let pid = w.id().to_string();
    let mut t = ToolRun::start("cachestat", &["-j", "-p", &pid, "600"]);
    t.wait_ready();
    let mut stdin = w.stdin.take().unwrap();
    stdin.write_all(b"go\n").unwrap();
    let mut line = String::new();
    BufReader::new(w.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), format!("done {PAGES}"), "pages read");
    t.signal(libc::SIGINT);
    let f = t.finish(Duration::from_secs(120));
    drop(stdin);
    assert!(w.wait().unwrap().success());
    assert_eq!(f.code(), 0, "{}", f.stderr);
    assert!(!f.stderr.contains("not shown"), "{}", f.stderr);
    support::assert_nothing_left(f.pid);
    (totals(&f.stdout), f.stderr)
}

#[test]
fn misses_then_hits_of_one_file() {
    require!(support::is_root(), "needs root");
    require!(
        support::has(Feature::KprobeEvents),
        "no kprobe events on this kernel (refusal_without_kprobes checks the refusal)"
    );
    let file = TestFile(scratch().join(format!("cachestat-test-{}.dat", std::process::id())));
    let path = file.0.to_str().unwrap().to_string();
    let prep = Command::new(support::workload_bin())
        .args(["cache-prep", &path, &PAGES.to_string()])
        .output()
        .unwrap();
    let why = String::from_utf8_lossy(&prep.stderr);
    require!(
        prep.status.success() || !why.contains("still cached"),
        "{} cannot drop a file from the page cache (tmpfs?): {why}",
        scratch().display()
    );
    assert!(prep.status.success(), "cache-prep: {why}");

    let (first, stderr) = read_once(&path);
    eprintln!("first read: {first:?}");
    assert!(stderr.contains("added: "), "{stderr}");
    assert_eq!(first.lost, 0);
    assert_eq!(first.added, PAGES, "pages added by the first read");
    assert_eq!(first.misses, PAGES, "misses of the first read");
    assert_eq!(first.hits, 0, "hits of the first read: {first:?}");
    assert_eq!(first.dirties, 0);

    let (second, _) = read_once(&path);
    eprintln!("second read: {second:?}");
    assert_eq!(second.lost, 0);
    assert_eq!(second.misses, 0, "misses of the second read");
    assert_eq!(second.added, 0);
    assert_eq!(second.hits, PAGES, "hits of the second read: {second:?}");
    assert_eq!(second.accessed, PAGES, "{second:?}");
}

#[test]
fn lines_every_interval_then_the_count() {
    require!(support::is_root(), "needs root");
    require!(support::has(Feature::KprobeEvents), "no kprobe events");
    let f = support::run("cachestat", &["-t", "-D", "0.3", "3"]);
    assert_eq!(f.code(), 0, "{}", f.stderr);
    let lines: Vec<&str> = f.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "a header and 3 lines:\n{}", f.stdout);
    let head: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        head,
        [
            "TIME",
            "HITS",
            "MISSES",
            "DIRTIES",
            "RATIO",
            "BUFFERS_MB",
            "CACHED_MB",
            "ACCESSED",
            "ADDED",
            "DIRTIED",
            "BUF_DIRTIED"
        ]
    );
    for l in &lines[1..] {
        let w: Vec<&str> = l.split_whitespace().collect();
        assert_eq!(w.len(), head.len(), "{l}");
        assert!(w[4].ends_with('%'), "{l}");
    }
    assert!(
        f.stderr.starts_with("Tracing page cache (accessed: "),
        "{}",
        f.stderr
    );
    support::assert_nothing_left(f.pid);
}

#[test]
fn refusal_without_kprobes() {
    require!(support::is_root(), "needs root");
    require!(
        !support::has(Feature::KprobeEvents),
        "this kernel has kprobe events (the refusal is for kernels without)"
    );
    let f = support::run("cachestat", &["1", "1"]);
    assert_eq!(f.code(), 2, "{}", f.stderr);
    assert_eq!(f.stderr.lines().count(), 1, "{}", f.stderr);
    assert!(
        f.stderr.contains("no kprobe events") && f.stderr.contains("folio_mark_accessed"),
        "{}",
        f.stderr
    );
    assert!(f.stdout.is_empty());
    support::assert_nothing_left(f.pid);
}

#[test]
fn bad_arguments_exit_2() {
    for args in [&["0"][..], &["1", "0"], &["-p", "0"], &["x"]] {
        let f = support::run("cachestat", args);
        assert_eq!(f.code(), 2, "{args:?}: {}", f.stderr);
    }
}
