//! Small readers of `/proc`: process names, threads, existence.

use crate::base::error::{Error, Result};
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

/// Whether a task still runs: it exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_none_or(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// The task a run is limited to (`-p PID` or `-L TID`). Every tool ends
/// its run when that task has exited: nothing more can come from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// A process: all its threads, and what it starts while traced.
    Process(u32),
    /// One thread.
    Thread(u32),
}

impl Task {
    /// The task of `-p PID` or `-L TID`, if either is given.
    pub fn from_ids(pid: Option<u32>, tid: Option<u32>) -> Option<Task> {
        match (pid, tid) {
            (Some(p), _) => Some(Task::Process(p)),
            (_, Some(t)) => Some(Task::Thread(t)),
            _ => None,
        }
    }

    /// The PID or TID.
    pub fn id(&self) -> u32 {
        match *self {
            Task::Process(p) | Task::Thread(p) => p,
        }
    }

    /// The process: the PID, or the thread's thread group.
    pub fn process(&self) -> u32 {
        match *self {
            Task::Process(p) => p,
            Task::Thread(t) => tgid(t).unwrap_or(t),
        }
    }

    /// An error naming the task if it does not exist.
    pub fn require_exists(&self) -> Result<()> {
        require_exists(self.id())
    }

    /// Whether it still runs.
    pub fn alive(&self) -> bool {
        alive(self.id())
    }

    /// `PID 7` or `TID 7`, for messages.
    pub fn label(&self) -> String {
        match *self {
            Task::Process(p) => format!("PID {p}"),
            Task::Thread(t) => format!("TID {t}"),
        }
    }

    /// What a tool says when the run ends because the task exited.
    pub fn exited(&self) -> String {
        match *self {
            Task::Process(p) => format!("process {p} exited; ending."),
            Task::Thread(t) => format!("thread {t} exited; ending."),
        }
    }

    /// The threads to trace now: all the process's, or the one thread.
    pub fn threads(&self) -> Result<Vec<u32>> {
        match *self {
            Task::Process(p) => threads(p),
            Task::Thread(t) => {
                require_exists(t)?;
                Ok(vec![t])
            }
        }
    }
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
    /// Names from elsewhere (a trace.dat file): never this machine's.
    offline: bool,
}

impl CommCache {
    /// A cache that falls back to `saved_cmdlines` at `saved_cmdlines`.
    pub fn new(saved_cmdlines: Option<std::path::PathBuf>) -> CommCache {
        CommCache {
            saved_path: saved_cmdlines,
            ..CommCache::default()
        }
    }

    /// Names of another machine (a trace.dat file's cmdlines): a PID they
    /// do not name is `<...>`, never looked up here.
    pub fn offline(names: HashMap<i32, String>) -> CommCache {
        CommCache {
            names,
            offline: true,
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
            } else if self.offline {
                None
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

/// Reads process (or thread) `pid`'s memory at `addr` into `buf`, as far
/// as it is mapped: the number of bytes read, or the errno when none could
/// be (ESRCH: the process has exited; EFAULT: the address is not mapped).
pub fn read_user(pid: u32, addr: u64, buf: &mut [u8]) -> std::result::Result<usize, i32> {
    if buf.is_empty() {
        return Ok(0);
    }
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as usize as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: the local iovec covers `buf`, which lives across the call;
    // the remote one is only read, by the kernel, in process `pid`.
    let n = unsafe { libc::process_vm_readv(pid as libc::pid_t, &local, 1, &remote, 1, 0) };
    if n < 0 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(n as usize)
    }
}

/// Reads a C string of process `pid` at `addr`, of at most `max` bytes (the
/// NUL is not returned): `None` if nothing could be read.
pub fn read_user_string(pid: u32, addr: u64, max: usize) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut at = addr;
    // Page by page: a read that crosses into an unmapped page fails whole.
    while out.len() < max {
        let room = (4096 - (at % 4096) as usize).min(max - out.len());
        let mut buf = vec![0u8; room];
        let n = read_user(pid, at, &mut buf).unwrap_or(0);
        if n == 0 {
            return (!out.is_empty()).then_some(out);
        }
        buf.truncate(n);
        if let Some(end) = buf.iter().position(|&c| c == 0) {
            out.extend_from_slice(&buf[..end]);
            return Some(out);
        }
        out.extend_from_slice(&buf);
        at += n as u64;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_of_this_process() {
        let me = std::process::id();
        let t = Task::from_ids(Some(me), None).unwrap();
        assert!(t.alive());
        assert!(t.require_exists().is_ok());
        assert!(t.threads().unwrap().contains(&me));
        assert_eq!(t.label(), format!("PID {me}"));
        assert_eq!(Task::Thread(me).process(), me);
        assert_eq!(Task::from_ids(None, Some(3)), Some(Task::Thread(3)));
        assert_eq!(Task::from_ids(None, None), None);
        assert!(!alive(u32::MAX - 1));
        assert!(Task::Thread(u32::MAX - 1).threads().is_err());
    }

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
