//! Small readers of `/proc`: process names, threads, existence.

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::fs;

/// The threads (TIDs) of a process, ascending; an error naming the PID if
/// there is no such process.
pub fn threads(pid: u32) -> Result<Vec<u32>> {
    let dir = format!("/proc/{pid}/task");
    let rd = fs::read_dir(&dir).map_err(|_| no_such_process(pid))?;
    let mut tids: Vec<u32> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    tids.sort_unstable();
    if tids.is_empty() {
        return Err(no_such_process(pid));
    }
    Ok(tids)
}

/// Checks that a process (or thread) exists.
pub fn require_exists(pid: u32) -> Result<()> {
    if pid == 0 || !std::path::Path::new(&format!("/proc/{pid}")).exists() {
        return Err(no_such_process(pid));
    }
    Ok(())
}

fn no_such_process(pid: u32) -> Error {
    Error::usage(format!("no process with PID {pid}"))
}

/// The thread group (process) ID of a thread, from `/proc/TID/status`.
pub fn tgid(tid: u32) -> Option<u32> {
    let s = fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("Tgid:"))
        .and_then(|v| v.trim().parse().ok())
}

/// The command name of a task, from `/proc/PID/comm`.
pub fn comm(pid: u32) -> Option<String> {
    let s = fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    Some(s.trim_end_matches('\n').to_string())
}

/// Names for the PIDs that appear in events. A name is looked up once, when
/// a PID is first seen: from `/proc`, else from the kernel's
/// `saved_cmdlines` (which remembers tasks that recorded events, even after
/// they exit), else `<...>` as the kernel's own output shows it.
#[derive(Debug, Default)]
pub struct CommCache {
    names: HashMap<i32, String>,
    saved: Option<HashMap<i32, String>>,
    saved_at: Option<std::time::Instant>,
    saved_path: Option<std::path::PathBuf>,
}

impl CommCache {
    /// A cache that falls back to `saved_cmdlines` at `saved_cmdlines`.
    pub fn new(saved_cmdlines: Option<std::path::PathBuf>) -> CommCache {
        CommCache {
            saved_path: saved_cmdlines,
            ..CommCache::default()
        }
    }

    /// Remembers a name learned from an event (exec, rename).
    pub fn set(&mut self, pid: i32, name: &str) {
        self.names.insert(pid, name.to_string());
    }

    /// The name of `pid`.
    pub fn get(&mut self, pid: i32) -> &str {
        if !self.names.contains_key(&pid) {
            let name = if pid == 0 {
                Some("<idle>".to_string())
            } else {
                comm(pid as u32).or_else(|| self.lookup_saved(pid))
            };
            self.names
                .insert(pid, name.unwrap_or_else(|| "<...>".into()));
        }
        &self.names[&pid]
    }

    fn lookup_saved(&mut self, pid: i32) -> Option<String> {
        // The kernel saves a task's name when it is scheduled out, so a
        // short-lived task may appear there after our last look: read the
        // file again on a miss, at most every 50 ms.
        let stale = self
            .saved_at
            .map(|t| t.elapsed() > std::time::Duration::from_millis(50))
            .unwrap_or(true);
        let missing = self
            .saved
            .as_ref()
            .map(|m| !m.contains_key(&pid))
            .unwrap_or(true);
        if missing && stale {
            self.saved = None;
        }
        if self.saved.is_none() {
            self.saved_at = Some(std::time::Instant::now());
            let mut map = HashMap::new();
            if let Some(text) = self
                .saved_path
                .as_ref()
                .and_then(|p| fs::read_to_string(p).ok())
            {
                for line in text.lines() {
                    if let Some((p, c)) = line.split_once(' ') {
                        if let Ok(p) = p.parse() {
                            map.insert(p, c.to_string());
                        }
                    }
                }
            }
            self.saved = Some(map);
        }
        self.saved.as_ref()?.get(&pid).cloned()
    }
}

/// Number of online CPUs as the kernel lists them.
pub fn online_cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_threads_and_a_name() {
        let me = std::process::id();
        assert!(threads(me).unwrap().contains(&me));
        assert_eq!(tgid(me), Some(me));
        assert!(require_exists(me).is_ok());
        let mut c = CommCache::new(None);
        assert_eq!(c.get(me as i32), comm(me).unwrap());
        assert_eq!(c.get(0), "<idle>");
        assert_eq!(c.get(i32::MAX), "<...>");
        let e = threads(u32::MAX).unwrap_err();
        assert_eq!(e.to_string(), format!("no process with PID {}", u32::MAX));
    }

    #[test]
    fn saved_cmdlines_fill_in_for_exited_tasks() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("saved_cmdlines");
        fs::write(&p, "2147483000 gone-task\n1 init\n").unwrap();
        let mut c = CommCache::new(Some(p));
        assert_eq!(c.get(2147483000), "gone-task");
    }
}
