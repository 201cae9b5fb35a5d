//! The kernel's function profiler (CONFIG_FUNCTION_PROFILER): per-CPU hit
//! counters in the kernel, read from `trace_stat/function<CPU>`.
//!
//! The profiler is global: one switch (`function_profile_enabled`) and the
//! top-level `set_ftrace_filter` (which it shares with the top-level
//! function and function_graph tracers). funccount uses it only when nobody
//! else can be using either, and puts both back afterwards:
//!
//! - a lock (`flock` on a file under `/run/ftrace-tools/`) keeps two
//!   funccount runs from taking it at once; the kernel frees the lock when
//!   its holder dies, so a lock is never left behind;
//! - under the lock, the profiler must be off (`function_profile_enabled`
//!   0), the top-level tracer `nop`, the top-level `set_ftrace_filter` and
//!   `set_ftrace_notrace` empty and no top-level `set_ftrace_pid` or
//!   `set_ftrace_notrace_pid` set. Anything else means someone (perf-tools'
//!   funccount, trace-cmd, a person) uses or is setting up the top level:
//!   funccount then counts in its own instance instead;
//! - before changing anything, the lock file records who changes what (the
//!   owner, and a hash of the filter to be written). A run killed with
//!   SIGKILL cannot restore: the next funccount finds the record, sees the
//!   lock free (so the owner is gone) and, if the filter still is the one
//!   recorded, turns the profiler off and empties the filter;
//! - [`Profiler`] restores both on drop (signals unwind to it).
//!
//! Counts start when the profiler is enabled (the kernel zeroes them then)
//! and cover every task, funccount's own reads of `trace_stat` included.
//! Where the kernel has function_graph, the profiler runs on it: enabling
//! fails with EBUSY while a function_graph tracer runs, and counting
//! stops for tasks while their return stack is full (deeper than 50).

use ftrace_common::kernel::functions::{self, TraceableFunction};
use ftrace_common::kernel::tracefs::{self, Tracefs};
use ftrace_common::lifecycle::owner::{Liveness, Owner};
use ftrace_common::{Error, ErrorKind, Result};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

/// Where the lock and record live; `FTRACE_TOOLS_LOCK_DIR` overrides it
/// (tests).
fn lock_path() -> PathBuf {
    let dir = std::env::var_os("FTRACE_TOOLS_LOCK_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/run/ftrace-tools"));
    dir.join("function-profiler.lock")
}

/// Parses a `trace_stat/function<N>` file: `(function, hits)` for each
/// row. Header lines and anything else without a number in the second
/// column are skipped; never panics.
pub fn parse_stat(text: &str) -> Vec<(String, u64)> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let name = w.next()?;
            let hits = w.next()?.parse().ok()?;
            Some((name.to_string(), hits))
        })
        .collect()
}

/// Sums the per-CPU profiles by function name.
pub fn read_counts(tfs: &Tracefs) -> Result<HashMap<String, u64>> {
    let dir = tfs.path("trace_stat");
    let rd = std::fs::read_dir(&dir).map_err(|e| Error::io("list", &dir, e))?;
    let mut out: HashMap<String, u64> = HashMap::new();
    for e in rd.flatten() {
        let name = e.file_name();
        if !name.to_string_lossy().starts_with("function") {
            continue;
        }
        for (f, n) in parse_stat(&tracefs::read_text(&e.path())?) {
            *out.entry(f).or_insert(0) += n;
        }
    }
    Ok(out)
}

/// `trace_stat/function*` prints names in 30 columns, cut there
/// (`%-30.30s`).
pub const STAT_NAME_WIDTH: usize = 30;

/// The full name of a function as `trace_stat` shows it, from the names
/// counted: a name cut at 30 characters is completed when one counted
/// name starts with it; when several do, it is shown as `cut*` (their
/// calls are added up there).
pub fn full_name(shown: &str, counted: &[String]) -> String {
    if shown.len() < STAT_NAME_WIDTH {
        return shown.to_string();
    }
    let mut full = counted.iter().filter(|n| n.starts_with(shown));
    match (full.next(), full.next()) {
        (Some(one), None) => one.clone(),
        (Some(_), Some(_)) => format!("{shown}*"),
        (None, _) => shown.to_string(),
    }
}

/// FNV-1a over the sorted, distinct filter lines: recorded before the
/// filter is written, compared by a later run that restores.
pub fn filter_hash(lines: &[String]) -> u64 {
    let mut v: Vec<&str> = lines.iter().map(String::as_str).collect();
    v.sort_unstable();
    v.dedup();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for l in v {
        for b in l.bytes().chain(std::iter::once(b'\n')) {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// What a run records before it changes the top level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Who changes it.
    pub owner: Owner,
    /// The hash of the filter it writes.
    pub filter: u64,
}

impl Record {
    fn text(&self) -> String {
        format!(
            "owner {} {} {}\nfilter {:016x}\n",
            self.owner.pid, self.owner.start, self.owner.pidns, self.filter
        )
    }

    /// Parses a record; `None` if it is not one (empty, damaged).
    pub fn parse(text: &str) -> Option<Record> {
        let mut owner = None;
        let mut filter = None;
        for l in text.lines() {
            let w: Vec<&str> = l.split_whitespace().collect();
            match w.as_slice() {
                ["owner", p, s, n] => {
                    owner = Some(Owner {
                        pid: p.parse().ok()?,
                        start: s.parse().ok()?,
                        pidns: n.parse().ok()?,
                    })
                }
                ["filter", h] => filter = Some(u64::from_str_radix(h, 16).ok()?),
                _ => {}
            }
        }
        Some(Record {
            owner: owner?,
            filter: filter?,
        })
    }
}

/// Why the profiler cannot be used now (funccount then uses its
/// instance).
pub type Unavailable = String;

/// The lock file, locked.
struct Lock {
    file: File,
}

impl Lock {
    /// Opens and locks without waiting. `Ok(None)`: another run holds it.
    fn take() -> std::result::Result<Option<Lock>, String> {
        let path = lock_path();
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| format!("cannot open the lock {}: {e}", path.display()))?;
        // SAFETY: flock on a descriptor we own.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                return Ok(None);
            }
            return Err(format!("cannot lock {}: {e}", path.display()));
        }
        Ok(Some(Lock { file }))
    }

    fn read(&mut self) -> String {
        let mut s = String::new();
        let _ = self.file.rewind();
        let _ = self.file.read_to_string(&mut s);
        s
    }

    fn write(&mut self, text: &str) -> std::io::Result<()> {
        self.file.set_len(0)?;
        self.file.rewind()?;
        self.file.write_all(text.as_bytes())?;
        self.file.sync_data()
    }
}

/// Who holds the profiler, from the record of the run holding the lock.
fn holder() -> String {
    let text = std::fs::read_to_string(lock_path()).unwrap_or_default();
    match Record::parse(&text) {
        Some(r) => format!("another funccount (PID {}) is using it", r.owner.pid),
        None => "another funccount is using it".to_string(),
    }
}

fn is_one(tfs: &Tracefs, rel: &str) -> bool {
    tfs.read(rel).map(|s| s.trim() == "1").unwrap_or(false)
}

/// Puts back what a killed run left, if the record says it was ours and
/// the filter is still the one it wrote. Returns what it did.
fn recover(tfs: &Tracefs, lock: &mut Lock) -> Option<String> {
    let rec = Record::parse(&lock.read())?;
    if rec.owner == Owner::current() {
        return None;
    }
    let path = tfs.path("set_ftrace_filter");
    let now = functions::read_filter(&path).unwrap_or_default();
    let msg = if !now.is_empty() && filter_hash(&now) == rec.filter {
        let _ = tfs.write("function_profile_enabled", "0");
        // An empty filter with the profiler on would profile everything.
        if is_one(tfs, "function_profile_enabled") {
            return Some(format!(
                "the function profiler left on by funccount PID {} cannot be turned off",
                rec.owner.pid
            ));
        }
        let _ = functions::clear_filter(&path);
        Some(format!(
            "turned off the function profiler and emptied the top-level set_ftrace_filter left by funccount PID {}{}",
            rec.owner.pid,
            if rec.owner.liveness() == Liveness::Alive {
                ""
            } else {
                " (killed)"
            }
        ))
    } else {
        // Someone else's filter now (or already cleaned up): not ours.
        None
    };
    let _ = lock.write("");
    msg
}

/// At start: restores what a killed run left (see the module docs).
/// Silent unless it restored something; never fails.
pub fn recover_stale(tfs: &Tracefs) -> Option<String> {
    if !lock_path().exists() || !tfs.exists("function_profile_enabled") {
        return None;
    }
    let mut lock = Lock::take().ok().flatten()?;
    recover(tfs, &mut lock)
}

/// Whether the top level is free for the profiler: the rule of the module
/// docs. `Err` says who seems to use it.
pub fn check_free(tfs: &Tracefs) -> std::result::Result<(), Unavailable> {
    if is_one(tfs, "function_profile_enabled") {
        return Err("the function profiler is already on (function_profile_enabled is 1)".into());
    }
    if let Ok(t) = tfs.read("current_tracer") {
        let t = t.trim();
        if t != "nop" {
            return Err(format!(
                "the top-level tracer is in use (current_tracer is {t})"
            ));
        }
    }
    for f in ["set_ftrace_filter", "set_ftrace_notrace"] {
        if let Ok(lines) = functions::read_filter(&tfs.path(f)) {
            if !lines.is_empty() {
                return Err(format!(
                    "the top-level {f} is in use ({} entries)",
                    lines.len()
                ));
            }
        }
    }
    for f in ["set_ftrace_pid", "set_ftrace_notrace_pid"] {
        if let Ok(t) = tfs.read(f) {
            let t = t.trim();
            if !t.is_empty() && t != "no pid" {
                return Err(format!("the top-level {f} is in use ({t})"));
            }
        }
    }
    Ok(())
}

/// The profiler, taken by this run. Dropping it turns the profiler off and
/// empties the top-level filter (both were so before).
pub struct Profiler {
    tfs: Tracefs,
    lock: Lock,
    /// The suite's top-level lock (funcgraph takes it too).
    _top: ftrace_common::lifecycle::toplock::TopLevelLock,
    filter_written: bool,
    enabled: bool,
    /// What [`recover_stale`]-like recovery did while taking the lock.
    pub recovered: Option<String>,
}

impl Profiler {
    /// Takes the profiler if the kernel has it and nobody uses it.
    pub fn acquire(tfs: &Tracefs) -> std::result::Result<Profiler, Unavailable> {
        if !tfs.exists("function_profile_enabled") {
            return Err("this kernel has no function profiler (CONFIG_FUNCTION_PROFILER)".into());
        }
        let mut lock = match Lock::take()? {
            Some(l) => l,
            None => return Err(format!("the function profiler is taken: {}", holder())),
        };
        let recovered = recover(tfs, &mut lock);
        let top = match ftrace_common::lifecycle::toplock::TopLevelLock::try_take("funccount") {
            Ok(Ok(t)) => t,
            Ok(Err(who)) => return Err(format!("the top level is taken by {who}")),
            Err(e) => return Err(e.to_string()),
        };
        check_free(tfs)?;
        Ok(Profiler {
            tfs: tfs.clone(),
            lock,
            _top: top,
            filter_written: false,
            enabled: false,
            recovered,
        })
    }

    /// Writes the top-level filter and turns the profiler on. An error of
    /// kind `Busy` means the kernel refused to start it (function_graph in
    /// use): the caller may count another way. `stop` is asked between
    /// writes (signals).
    pub fn start(&mut self, funcs: &[&TraceableFunction], stop: &dyn Fn() -> bool) -> Result<()> {
        let lines: Vec<String> = funcs.iter().map(|f| f.line()).collect();
        let rec = Record {
            owner: Owner::current(),
            filter: filter_hash(&lines),
        };
        self.lock
            .write(&rec.text())
            .map_err(|e| Error::io("write the lock record", &lock_path(), e))?;
        self.filter_written = true;
        functions::write_filter(&self.tfs.path("set_ftrace_filter"), funcs, stop)?;
        if stop() {
            return Err(Error::interrupted());
        }
        match tracefs::write_raw(&self.tfs.path("function_profile_enabled"), "1", false) {
            Ok(()) => {
                self.enabled = true;
                Ok(())
            }
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => Err(Error::new(
                ErrorKind::Busy,
                "the kernel refused to start the function profiler (EBUSY: a function_graph tracer is running)",
            )),
            Err(e) => Err(Error::io(
                "enable the function profiler",
                &self.tfs.path("function_profile_enabled"),
                e,
            )),
        }
    }

    /// The counts so far (since the start), by function name.
    pub fn counts(&self) -> Result<HashMap<String, u64>> {
        read_counts(&self.tfs)
    }

    /// Turns the profiler off and empties the filter; [`Drop`] calls this.
    pub fn restore(&mut self) -> Result<()> {
        let mut first_err = None;
        if self.enabled {
            match self.tfs.write("function_profile_enabled", "0") {
                Ok(()) => self.enabled = false,
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        if self.filter_written && !self.enabled {
            match functions::clear_filter(&self.tfs.path("set_ftrace_filter")) {
                Ok(()) => self.filter_written = false,
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        if !self.enabled && !self.filter_written {
            let _ = self.lock.write("");
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Drop for Profiler {
    fn drop(&mut self) {
        if let Err(e) = self.restore() {
            eprintln!(
                "warning: {e}; the next funccount run restores the function profiler settings"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_trace_stat_with_and_without_times() {
        let graph = "  Function                               Hit    Time            Avg             s^2\n  --------                               ---    ----            ---             ---\n  vfs_read                              1011    3445.905 us     3.408 us        2264.691 us \n  read_zero                             1000    563.757 us      0.563 us        1.023 us    \n";
        assert_eq!(
            parse_stat(graph),
            vec![
                ("vfs_read".to_string(), 1011),
                ("read_zero".to_string(), 1000)
            ]
        );
        let plain = "  Function                               Hit\n  --------                               ---\n  ksys_read                                5\n";
        assert_eq!(parse_stat(plain), vec![("ksys_read".to_string(), 5)]);
        assert!(parse_stat("").is_empty());
    }

    #[test]
    fn names_cut_at_30_columns_are_completed() {
        let counted: Vec<String> = [
            "ext4_convert_unwritten_io_end_vec",
            "ext4_map_query_blocks.constprop.0",
            "ext4_mb_scan_groups_linear.constprop.0",
            "ext4_mb_scan_groups_linear.constprop.1",
            "vfs_read",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            full_name("ext4_convert_unwritten_io_end_", &counted),
            "ext4_convert_unwritten_io_end_vec"
        );
        assert_eq!(
            full_name("ext4_mb_scan_groups_linear.con", &counted),
            "ext4_mb_scan_groups_linear.con*"
        );
        assert_eq!(full_name("vfs_read", &counted), "vfs_read");
        assert_eq!(
            full_name("something_else_of_thirty_chars", &counted),
            "something_else_of_thirty_chars"
        );
    }

    #[test]
    fn records_round_trip_and_hashes_ignore_order() {
        let r = Record {
            owner: Owner {
                pid: 12,
                start: 345,
                pidns: 4026531836,
            },
            filter: 0xdead_beef,
        };
        assert_eq!(Record::parse(&r.text()), Some(r));
        assert_eq!(Record::parse(""), None);
        assert_eq!(Record::parse("owner 1 2\nfilter 3\n"), None);
        let a = filter_hash(&["b".into(), "a".into(), "a".into()]);
        assert_eq!(a, filter_hash(&["a".into(), "b".into()]));
        assert_ne!(a, filter_hash(&["a".into()]));
    }

    #[test]
    fn free_only_when_nobody_uses_the_top_level() {
        let dir = tempfile::tempdir().unwrap();
        let w = |f: &str, s: &str| std::fs::write(dir.path().join(f), s).unwrap();
        w("function_profile_enabled", "0\n");
        w("current_tracer", "nop\n");
        w("set_ftrace_filter", "#### all functions enabled ####\n");
        w("set_ftrace_notrace", "");
        w("set_ftrace_pid", "no pid\n");
        let tfs = Tracefs::at(dir.path());
        assert_eq!(check_free(&tfs), Ok(()));
        w("set_ftrace_filter", "vfs_read\n");
        assert!(check_free(&tfs).unwrap_err().contains("set_ftrace_filter"));
        w("set_ftrace_filter", "");
        w("current_tracer", "function\n");
        assert!(check_free(&tfs)
            .unwrap_err()
            .contains("current_tracer is function"));
        w("current_tracer", "nop\n");
        w("set_ftrace_pid", "123\n");
        assert!(check_free(&tfs).unwrap_err().contains("set_ftrace_pid"));
        w("set_ftrace_pid", "no pid\n");
        w("function_profile_enabled", "1\n");
        assert!(check_free(&tfs).unwrap_err().contains("already on"));
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in "\\PC{0,200}") {
            let _ = parse_stat(&s);
            let _ = Record::parse(&s);
        }
    }
}
