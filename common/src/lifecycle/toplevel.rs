//! The top level of tracefs, taken for one run where the kernel offers no
//! other way: funcgraph where function_graph cannot run in an instance
//! (Linux 6.1 and earlier: an instance lists only `function` and `nop`),
//! funccount's function profiler (global by nature).
//!
//! The top level is everyone's: a tool takes it only when nobody seems to
//! use it ([`users`]: tracer `nop`, no function filters, no PID filter, no
//! graph settings, the function profiler off; funcgraph's `-F` overrides),
//! and puts back every setting it changed:
//!
//! - one lock (`top-level.lock`, held for the whole run) keeps two runs of
//!   ours off the top level at once: the second one is told who holds it;
//! - before each change, the record in the lock file gets the setting's
//!   old value and the one about to be written, durably;
//! - [`TopLevel`] restores every setting on drop, newest first (the
//!   tracer goes back to `nop` before its filters are put back);
//! - a run killed with SIGKILL cannot restore: the next run that takes the
//!   top level, or [`recover_stale`] (every tool that may take it, and
//!   reset-ftrace), finds the record with the lock free and restores each
//!   setting that still holds the value the dead run wrote (and only
//!   those).

use crate::kernel::functions;
use crate::kernel::proc::Task;
use crate::kernel::tracefs::{self, Tracefs};
use crate::lifecycle::lock::LockFile;
use crate::lifecycle::owner::Owner;
use crate::{Error, ErrorKind, Result};
use serde_json::json;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// How a setting is read and written back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One value (`current_tracer`, `tracing_on`, `options/*`,
    /// `max_graph_depth`, `tracing_thresh`).
    Plain,
    /// `trace_clock`: the selected clock, in brackets.
    Clock,
    /// `buffer_size_kb`: per-CPU KiB (`7 (expanded: 1408)` is 1408).
    BufferKb,
    /// `set_ftrace_pid` and co.: PIDs, `no pid` when empty.
    Pids,
    /// `set_graph_function` and co.: one function a line, empty when it
    /// holds none.
    Functions,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Plain => "plain",
            Kind::Clock => "clock",
            Kind::BufferKb => "buffer",
            Kind::Pids => "pids",
            Kind::Functions => "functions",
        }
    }

    fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "plain" => Kind::Plain,
            "clock" => Kind::Clock,
            "buffer" => Kind::BufferKb,
            "pids" => Kind::Pids,
            "functions" => Kind::Functions,
            _ => return None,
        })
    }
}

/// The value of a setting, in the form it is compared and written in.
pub fn normalize(kind: Kind, text: &str) -> String {
    match kind {
        Kind::Plain => text.trim().to_string(),
        Kind::Clock => text
            .split_whitespace()
            .find_map(|w| w.strip_prefix('[').and_then(|w| w.strip_suffix(']')))
            .unwrap_or("")
            .to_string(),
        Kind::BufferKb => {
            let t = text.trim();
            if let Some(i) = t.find("(expanded:") {
                t[i + 10..].trim().trim_end_matches(')').trim().to_string()
            } else {
                t.split_whitespace().next().unwrap_or("").to_string()
            }
        }
        Kind::Pids => {
            let mut v: Vec<&str> = text
                .split_whitespace()
                .filter(|w| w.chars().all(|c| c.is_ascii_digit()))
                .collect();
            v.sort_unstable();
            v.join(" ")
        }
        Kind::Functions => {
            let mut v = functions::parse_filter(text);
            v.sort();
            v.join("\n")
        }
    }
}

/// Reads a top-level setting in normalized form.
pub fn current(tfs: &Tracefs, file: &str, kind: Kind) -> Result<String> {
    Ok(normalize(kind, &tfs.read(file)?))
}

/// Writes a normalized value back.
pub fn write_value(tfs: &Tracefs, file: &str, kind: Kind, value: &str) -> Result<()> {
    let path = tfs.path(file);
    match kind {
        Kind::Functions => {
            write_functions(&path, &value.lines().map(plain_name).collect::<Vec<_>>())
        }
        Kind::Pids if value.is_empty() => tracefs::write_file(&path, "", false),
        _ => tracefs::write_file(&path, value, false),
    }
}

/// The function name of a filter line (`name [module]` -> `name`).
fn plain_name(line: &str) -> String {
    line.split_whitespace().next().unwrap_or("").to_string()
}

/// Replaces a function-list file (`set_graph_function`, ...) with `tokens`
/// (names or globs) through one open file: the kernel parses one token per
/// `write()` and swaps the new list in when the file is closed, so readers
/// never see it half written. No tokens: the file is emptied.
pub fn write_functions(path: &std::path::Path, tokens: &[String]) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| Error::io("open", path, e))?;
    for t in tokens.iter().filter(|t| !t.is_empty()) {
        f.write_all(format!("{t} ").as_bytes()).map_err(|e| {
            Error::new(
                if e.raw_os_error() == Some(libc::EINVAL) {
                    ErrorKind::Rejected
                } else {
                    ErrorKind::Io
                },
                format!("writing '{t}' to {}: {e}", path.display()),
            )
        })?;
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Saved {
    file: String,
    kind: Kind,
    original: String,
    ours: String,
}

/// Why the top level looks in use; empty if it looks free.
pub fn users(tfs: &Tracefs) -> Vec<String> {
    let mut why = Vec::new();
    let get = |f: &str, k: Kind| current(tfs, f, k).unwrap_or_default();
    let tracer = get("current_tracer", Kind::Plain);
    if !tracer.is_empty() && tracer != "nop" {
        why.push(format!("the top-level tracer is '{tracer}'"));
    }
    for f in [
        "set_ftrace_filter",
        "set_ftrace_notrace",
        "set_graph_function",
        "set_graph_notrace",
    ] {
        let v = get(f, Kind::Functions);
        if !v.is_empty() {
            let names: Vec<&str> = v.lines().collect();
            why.push(format!(
                "{f} lists {} function{} ({}{})",
                names.len(),
                if names.len() == 1 { "" } else { "s" },
                names.iter().take(3).copied().collect::<Vec<_>>().join(", "),
                if names.len() > 3 { ", ..." } else { "" }
            ));
        }
    }
    for f in ["set_ftrace_pid", "set_ftrace_notrace_pid"] {
        if tfs.exists(f) {
            let v = get(f, Kind::Pids);
            if !v.is_empty() {
                why.push(format!("{f} holds PIDs {v}"));
            }
        }
    }
    for f in ["max_graph_depth", "tracing_thresh"] {
        if tfs.exists(f) {
            let v = get(f, Kind::Plain);
            if !v.is_empty() && v != "0" {
                why.push(format!("{f} is {v}"));
            }
        }
    }
    if tfs.exists("function_profile_enabled") && get("function_profile_enabled", Kind::Plain) == "1"
    {
        why.push("the function profiler is on (function_profile_enabled)".into());
    }
    why
}

/// Who holds the top level: `another funcgraph (PID 123)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder(String);

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The top level, held for this run; restores what it changed on drop.
pub struct TopLevel {
    tfs: Tracefs,
    lock: LockFile,
    tool: String,
    owner: Owner,
    saved: Vec<Saved>,
    /// What was restored from a killed run at start, to report.
    pub recovered: Option<String>,
}

const LOCK_NAME: &str = "top-level.lock";

/// The value recorded for a function list before the kernel has shown what
/// the written globs matched: restored whatever it holds then.
const PENDING: &str = "\u{1}pending";

struct Record {
    tool: String,
    pid: u32,
    owner: Option<Owner>,
    saved: Vec<Saved>,
}

fn record_text(tool: &str, owner: &Owner, saved: &[Saved]) -> String {
    let list: Vec<serde_json::Value> = saved
        .iter()
        .map(|s| json!({"file": s.file, "kind": s.kind.name(), "original": s.original, "ours": s.ours}))
        .collect();
    json!({"tool": tool, "owner": [owner.pid, owner.start, owner.pidns], "saved": list}).to_string()
}

fn parse_record(text: &str) -> Option<Record> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let pid = v["owner"][0].as_u64()? as u32;
    let owner = match (v["owner"][1].as_u64(), v["owner"][2].as_u64()) {
        (Some(start), Some(pidns)) => Some(Owner { pid, start, pidns }),
        _ => None,
    };
    let tool = v["tool"].as_str().unwrap_or("ftrace-tools").to_string();
    let mut saved = Vec::new();
    for s in v["saved"].as_array()? {
        saved.push(Saved {
            file: s["file"].as_str()?.to_string(),
            kind: Kind::parse(s["kind"].as_str()?)?,
            original: s["original"].as_str()?.to_string(),
            ours: s["ours"].as_str()?.to_string(),
        });
    }
    Some(Record {
        tool,
        pid,
        owner,
        saved,
    })
}

/// Puts back the settings a record lists, newest first; with
/// `only_if_ours`, only where they still hold the value written by the run
/// that made the record. Returns the files restored.
fn restore(tfs: &Tracefs, saved: &[Saved], only_if_ours: bool) -> Vec<String> {
    let mut done = Vec::new();
    for s in saved.iter().rev() {
        if only_if_ours {
            let now = current(tfs, &s.file, s.kind).unwrap_or_default();
            if (now != s.ours && s.ours != PENDING) || now == s.original {
                continue;
            }
        }
        // Written back even when it reads the same: an emptied PID list
        // reads like none, but only a write gives back the kernel's
        // "no pid".
        match write_value(tfs, &s.file, s.kind, &s.original) {
            Ok(()) => done.push(s.file.clone()),
            Err(e) => eprintln!("warning: could not restore the top-level {}: {e}", s.file),
        }
    }
    done
}

/// With the lock held: undoes what the record of a run that did not end
/// cleanly lists, and empties the record. Says what it did.
fn recover(tfs: &Tracefs, lock: &mut LockFile) -> Result<Option<String>> {
    let Some(rec) = parse_record(&lock.read()) else {
        return Ok(None);
    };
    let done = restore(tfs, &rec.saved, true);
    lock.write("")?;
    Ok((!done.is_empty()).then(|| {
        format!(
            "restored the top-level settings left by {} PID {} (killed): {}",
            rec.tool,
            rec.pid,
            done.join(", ")
        )
    }))
}

/// Restores what a killed run left at the top level, if no run holds it
/// now. Silent (`None`) unless it restored something; never fails.
pub fn recover_stale(tfs: &Tracefs) -> Option<String> {
    let path = crate::lifecycle::lock::lock_dir().join(LOCK_NAME);
    if !path.exists() {
        return None;
    }
    let mut lock = LockFile::open(LOCK_NAME).ok()?;
    if !lock.try_lock().ok()? {
        return None;
    }
    recover(tfs, &mut lock).ok().flatten()
}

/// A run of ours at the top level, as its record in the lock file shows
/// it, read without taking the lock (taking it, even briefly, could make
/// a run of ours that starts meanwhile refuse).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Use {
    /// The tool (`funcgraph`, `funccount`).
    pub tool: String,
    /// Its PID.
    pub pid: u32,
    /// Whether it still runs; if not, it was killed before it could put
    /// the settings back.
    pub live: bool,
    /// The top-level files it changed.
    pub files: Vec<UseFile>,
}

/// One file a run of ours changed at the top level.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UseFile {
    /// The file, relative to tracefs.
    pub file: String,
    /// Whether it still holds what the run wrote (for a killed run: what
    /// reset-ftrace would put back).
    pub holds_ours: bool,
}

impl Use {
    /// The files that still hold what the run wrote.
    pub fn holding(&self) -> Vec<&str> {
        self.files
            .iter()
            .filter(|f| f.holds_ours)
            .map(|f| f.file.as_str())
            .collect()
    }
}

/// The run of ours that holds the top level, or the one killed while it
/// held it and whose changes are not undone yet; `None` if neither.
pub fn in_use(tfs: &Tracefs) -> Option<Use> {
    let path = crate::lifecycle::lock::lock_dir().join(LOCK_NAME);
    let rec = parse_record(&std::fs::read_to_string(path).ok()?)?;
    let live = rec
        .owner
        .map(|o| o.liveness() != crate::lifecycle::owner::Liveness::Dead)
        .unwrap_or(false);
    let files: Vec<UseFile> = rec
        .saved
        .iter()
        .map(|s| {
            let now = current(tfs, &s.file, s.kind).unwrap_or_default();
            UseFile {
                file: s.file.clone(),
                holds_ours: (now == s.ours || s.ours == PENDING) && now != s.original,
            }
        })
        .collect();
    // A killed run whose settings were all put back (or changed since by
    // someone else) left nothing to undo.
    if !live && !files.iter().any(|f| f.holds_ours) {
        return None;
    }
    Some(Use {
        tool: rec.tool,
        pid: rec.pid,
        live,
        files,
    })
}

/// Why the top level cannot be taken now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Another run of ours holds it.
    Held(Holder),
    /// Someone else seems to use it: what [`users`] found.
    InUse(Vec<String>),
}

impl TopLevel {
    /// Takes the top level for `tool` if no run of ours holds it and
    /// nobody else seems to use it (unless `force`). The tool words the
    /// refusal.
    pub fn take(
        tfs: &Tracefs,
        tool: &str,
        force: bool,
    ) -> Result<std::result::Result<TopLevel, Refusal>> {
        let top = match TopLevel::acquire(tfs, tool)? {
            Ok(t) => t,
            Err(holder) => return Ok(Err(Refusal::Held(holder))),
        };
        let why = users(tfs);
        if !why.is_empty() && !force {
            return Ok(Err(Refusal::InUse(why)));
        }
        Ok(Ok(top))
    }

    /// Limits the top level's function tracers to a task (`set_ftrace_pid`:
    /// its threads, read twice so that threads started meanwhile are in;
    /// for a process also what it starts, `function-fork`), or with `None`
    /// to everyone but this process (`set_ftrace_pid` emptied, this process
    /// in `set_ftrace_notrace_pid`: its reads of the buffer must not feed
    /// back). Every file is recorded and put back like the others.
    pub fn set_function_pids(&mut self, task: Option<Task>) -> Result<()> {
        let ids = |v: &[u32]| {
            v.iter()
                .map(|t| t.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        };
        let Some(task) = task else {
            if !current(&self.tfs, "set_ftrace_pid", Kind::Pids)?.is_empty() {
                self.set("set_ftrace_pid", Kind::Pids, "")?;
            }
            if self.tfs.exists("set_ftrace_notrace_pid") {
                self.set(
                    "set_ftrace_notrace_pid",
                    Kind::Pids,
                    &std::process::id().to_string(),
                )?;
            }
            return Ok(());
        };
        let process = matches!(task, Task::Process(_));
        if process {
            self.set("options/function-fork", Kind::Plain, "1")?;
        }
        let first = ids(&task.threads()?);
        self.change(
            "set_ftrace_pid",
            Kind::Pids,
            normalize(Kind::Pids, &first),
            |path| {
                tracefs::write_file(path, &first, false)?;
                if process {
                    tracefs::write_file(path, &ids(&task.threads().unwrap_or_default()), true)?;
                }
                Ok(())
            },
        )
    }

    /// Takes the top level for `tool`, or names the run of ours that holds
    /// it. Undoes first what a killed run left. Whether someone else
    /// (not ours) seems to use it is the caller's to check ([`users`]).
    pub fn acquire(tfs: &Tracefs, tool: &str) -> Result<std::result::Result<TopLevel, Holder>> {
        let mut lock = LockFile::open(LOCK_NAME)?;
        if !lock.try_lock()? {
            return Ok(Err(Holder(match parse_record(&lock.read()) {
                Some(r) => format!("another {} (PID {})", r.tool, r.pid),
                None => "another ftrace-tools run".into(),
            })));
        }
        let recovered = recover(tfs, &mut lock)?;
        let owner = Owner::current();
        // Named from the start, so that a run that is refused can say who
        // holds the top level.
        lock.write(&record_text(tool, &owner, &[]))?;
        Ok(Ok(TopLevel {
            tfs: tfs.clone(),
            lock,
            tool: tool.to_string(),
            owner,
            saved: Vec::new(),
            recovered,
        }))
    }

    /// Sets a top-level file, recording its old value first. For
    /// [`Kind::Functions`], `value` holds tokens (names or globs), one a
    /// line.
    pub fn set(&mut self, file: &str, kind: Kind, value: &str) -> Result<()> {
        let tokens: Vec<String> = value.lines().map(str::to_string).collect();
        let tfs = self.tfs.clone();
        self.change(file, kind, normalize(kind, value), |path| match kind {
            Kind::Functions => write_functions(path, &tokens),
            _ => write_value(&tfs, file, kind, value),
        })
    }

    /// Changes a top-level file with `write`, recording its old value
    /// first; `expected` is what it should read afterwards (any value for
    /// a function list, which the kernel expands). The value it then holds
    /// goes in the record, whatever `write` returned.
    pub fn change<T>(
        &mut self,
        file: &str,
        kind: Kind,
        expected: String,
        write: impl FnOnce(&Path) -> Result<T>,
    ) -> Result<T> {
        let original = current(&self.tfs, file, kind)?;
        if !self.saved.iter().any(|s| s.file == file) {
            let ours = match kind {
                Kind::Functions => PENDING.to_string(),
                _ => expected,
            };
            self.saved.push(Saved {
                file: file.to_string(),
                kind,
                original,
                ours,
            });
            self.lock
                .write(&record_text(&self.tool, &self.owner, &self.saved))?;
        }
        let r = write(&self.tfs.path(file));
        // The value as the kernel shows it (a list of functions from globs).
        let now = current(&self.tfs, file, kind).unwrap_or_default();
        if let Some(s) = self.saved.iter_mut().find(|s| s.file == file) {
            s.ours = now;
        }
        self.lock
            .write(&record_text(&self.tool, &self.owner, &self.saved))?;
        r
    }

    /// Puts everything back now (also done on drop).
    pub fn release(&mut self) {
        if !self.lock.locked() {
            return;
        }
        restore(&self.tfs, &self.saved, false);
        self.saved.clear();
        let _ = self.lock.write("");
        self.lock.unlock();
    }
}

impl Drop for TopLevel {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_normalize() {
        assert_eq!(normalize(Kind::Clock, "[local] global mono\n"), "local");
        assert_eq!(normalize(Kind::Clock, "local global [mono]\n"), "mono");
        assert_eq!(normalize(Kind::BufferKb, "7 (expanded: 1408)\n"), "1408");
        assert_eq!(normalize(Kind::BufferKb, "8192\n"), "8192");
        assert_eq!(normalize(Kind::Pids, "no pid\n"), "");
        assert_eq!(normalize(Kind::Pids, "12\n3\n"), "12 3");
        assert_eq!(
            normalize(Kind::Functions, "#### all functions enabled ####\n"),
            ""
        );
        assert_eq!(normalize(Kind::Functions, "b\na [m]\n"), "a [m]\nb");
        assert_eq!(plain_name("a [m]"), "a");
    }

    fn fake_tracefs() -> (tempfile::TempDir, Tracefs) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::write(p.join("current_tracer"), "nop\n").unwrap();
        std::fs::write(p.join("trace_clock"), "[local] mono\n").unwrap();
        std::fs::write(
            p.join("set_ftrace_filter"),
            "#### all functions enabled ####\n",
        )
        .unwrap();
        std::fs::write(
            p.join("set_graph_function"),
            "#### all functions enabled ####\n",
        )
        .unwrap();
        std::fs::write(p.join("set_ftrace_pid"), "no pid\n").unwrap();
        std::fs::write(p.join("tracing_thresh"), "0\n").unwrap();
        let tfs = Tracefs::at(p);
        (dir, tfs)
    }

    #[test]
    fn takes_restores_and_recovers_from_a_killed_run() {
        crate::lifecycle::lock::tests::test_lock_dir();
        let (_d, tfs) = fake_tracefs();
        assert!(users(&tfs).is_empty());
        {
            let mut t = TopLevel::acquire(&tfs, "funcgraph").unwrap().unwrap();
            t.set("current_tracer", Kind::Plain, "function_graph")
                .unwrap();
            t.set("tracing_thresh", Kind::Plain, "5").unwrap();
            t.set("set_graph_function", Kind::Functions, "vfs_read\nvfs_write")
                .unwrap();
            assert_eq!(tfs.read("current_tracer").unwrap(), "function_graph");
            let u = in_use(&tfs).unwrap();
            assert!(u.live && u.tool == "funcgraph" && u.pid == std::process::id());
            assert_eq!(u.files.len(), 3);
            assert!(u.files.iter().all(|f| f.holds_ours), "{u:?}");
            // A second run is refused while this one holds it, and told who.
            let held = TopLevel::acquire(&tfs, "funccount").unwrap().err().unwrap();
            assert_eq!(
                held.to_string(),
                format!("another funcgraph (PID {})", std::process::id())
            );
        }
        assert_eq!(tfs.read("current_tracer").unwrap(), "nop");
        assert_eq!(tfs.read("tracing_thresh").unwrap(), "0");
        assert_eq!(tfs.read("set_graph_function").unwrap(), "");
        assert_eq!(in_use(&tfs), None);

        // Someone else's tracer is seen.
        std::fs::write(tfs.path("current_tracer"), "function\n").unwrap();
        assert!(users(&tfs)[0].contains("'function'"), "{:?}", users(&tfs));
        std::fs::write(tfs.path("current_tracer"), "nop\n").unwrap();

        // A killed run: its record stays; the next run restores the
        // settings that still hold its values, not the others.
        let mut t = TopLevel::acquire(&tfs, "funccount").unwrap().unwrap();
        t.set("current_tracer", Kind::Plain, "function_graph")
            .unwrap();
        t.set("tracing_thresh", Kind::Plain, "5").unwrap();
        std::fs::write(tfs.path("tracing_thresh"), "7\n").unwrap();
        // As a killed run leaves it: the record of an owner that is gone.
        let dead = Owner {
            start: t.owner.start + 1,
            ..t.owner
        };
        t.lock
            .write(&record_text("funccount", &dead, &t.saved))
            .unwrap();
        t.lock.unlock();
        t.saved.clear();
        drop(t);
        let u = in_use(&tfs).unwrap();
        assert!(!u.live && u.tool == "funccount", "{u:?}");
        let held: Vec<(&str, bool)> = u
            .files
            .iter()
            .map(|f| (f.file.as_str(), f.holds_ours))
            .collect();
        assert_eq!(held, [("current_tracer", true), ("tracing_thresh", false)]);
        let msg = recover_stale(&tfs).unwrap();
        assert!(msg.contains("left by funccount PID"), "{msg}");
        assert!(msg.contains("current_tracer"), "{msg}");
        assert!(!msg.contains("tracing_thresh"), "{msg}");
        assert_eq!(tfs.read("current_tracer").unwrap(), "nop");
        assert_eq!(tfs.read("tracing_thresh").unwrap(), "7\n");
        assert_eq!(recover_stale(&tfs), None);
        assert_eq!(in_use(&tfs), None);
    }

    #[test]
    fn users_name_what_is_in_use() {
        let (_d, tfs) = fake_tracefs();
        let w = |f: &str, s: &str| std::fs::write(tfs.path(f), s).unwrap();
        w("function_profile_enabled", "0\n");
        w("set_ftrace_notrace", "");
        assert!(users(&tfs).is_empty());
        for (file, value, says) in [
            (
                "set_ftrace_filter",
                "vfs_read\n",
                "set_ftrace_filter lists 1 function (vfs_read)",
            ),
            (
                "current_tracer",
                "function\n",
                "the top-level tracer is 'function'",
            ),
            ("set_ftrace_pid", "123\n", "set_ftrace_pid holds PIDs 123"),
            (
                "function_profile_enabled",
                "1\n",
                "the function profiler is on",
            ),
            ("tracing_thresh", "10\n", "tracing_thresh is 10"),
        ] {
            let old = std::fs::read_to_string(tfs.path(file)).unwrap();
            w(file, value);
            let why = users(&tfs);
            assert!(why.iter().any(|w| w.contains(says)), "{file}: {why:?}");
            w(file, &old);
        }
        assert!(users(&tfs).is_empty());
    }

    #[test]
    fn records_parse_or_are_ignored() {
        let o = Owner {
            pid: 5,
            start: 6,
            pidns: 7,
        };
        let s = vec![Saved {
            file: "x".into(),
            kind: Kind::Pids,
            original: "".into(),
            ours: "1 2".into(),
        }];
        let r = parse_record(&record_text("funcgraph", &o, &s)).unwrap();
        assert_eq!((r.tool.as_str(), r.pid, r.saved), ("funcgraph", 5, s));
        assert_eq!(r.owner, Some(o));
        assert!(parse_record("").is_none());
        assert!(parse_record("{\"owner\":1}").is_none());
    }
}
