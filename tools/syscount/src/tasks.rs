//! Who a task ID is: its process (thread group) ID and its name.
//!
//! Events carry only the task (thread) ID. Names and processes are looked
//! up when a summary is printed: for a task that exited during the run from
//! its `sched_process_exit` event (its final name), for a task created
//! during the run from `task_newtask` (its process, from `CLONE_THREAD`),
//! else from `/proc`, else from the kernel's `saved_cmdlines`, else `<...>`
//! as ftrace prints unknown tasks.

use crate::agg::IdMap;
use std::path::PathBuf;

const CLONE_THREAD: u64 = 0x0001_0000;

#[derive(Debug, Default, Clone)]
struct Info {
    tgid: Option<i32>,
    comm: Option<String>,
    /// The name is final (the task exited).
    exited: bool,
}

/// The task table.
#[derive(Debug)]
pub struct Tasks {
    info: IdMap<i32, Info>,
    saved_path: Option<PathBuf>,
    saved: Option<IdMap<i32, String>>,
    /// Tasks of another machine (a trace.dat file): never looked up here.
    offline: bool,
}

impl Tasks {
    /// An empty table; `saved_cmdlines` is the kernel's file of recent
    /// task names, used last.
    pub fn new(saved_cmdlines: Option<PathBuf>) -> Tasks {
        Tasks {
            info: IdMap::default(),
            saved_path: saved_cmdlines,
            saved: None,
            offline: false,
        }
    }

    /// The tasks of a trace.dat file: its names and threads' processes.
    pub fn offline(
        names: &std::collections::HashMap<i32, String>,
        tgids: &std::collections::HashMap<i32, u32>,
    ) -> Tasks {
        let mut t = Tasks::new(None);
        t.offline = true;
        t.saved = Some(names.iter().map(|(p, c)| (*p, c.clone())).collect());
        for (&tid, &tgid) in tgids {
            t.info.entry(tid).or_default().tgid = Some(tgid as i32);
        }
        t
    }

    /// Records the process of existing tasks (from `/proc/PID/task`).
    pub fn know_threads(&mut self, tgid: i32, tids: &[u32]) {
        for &t in tids {
            self.info.entry(t as i32).or_default().tgid = Some(tgid);
        }
    }

    /// Records the process of every task now alive (`/proc/*/task/*`).
    pub fn snapshot(&mut self) {
        let Ok(rd) = std::fs::read_dir("/proc") else {
            return;
        };
        for e in rd.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
                for t in tasks.flatten() {
                    if let Some(tid) = t.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) {
                        self.info.entry(tid).or_default().tgid.get_or_insert(pid);
                    }
                }
            }
        }
    }

    /// A task was created (`task:task_newtask`, seen in the parent).
    pub fn new_task(&mut self, parent: i32, child: i32, comm: &str, clone_flags: u64) {
        let tgid = if clone_flags & CLONE_THREAD != 0 {
            self.tgid(parent)
        } else {
            child
        };
        self.info.insert(
            child,
            Info {
                tgid: Some(tgid),
                comm: Some(comm.to_string()),
                exited: false,
            },
        );
    }

    /// A task ran exec (`sched:sched_process_exec`): its name changed.
    /// When a thread other than the leader execs it takes over the leader's
    /// ID (`old_pid` -> `pid`).
    pub fn exec(&mut self, pid: i32, old_pid: i32) {
        for t in [pid, old_pid] {
            if let Some(i) = self.info.get_mut(&t) {
                i.comm = None;
                i.exited = false;
            }
        }
    }

    /// A task exited (`sched:sched_process_exit`) with this name.
    pub fn exited(&mut self, tid: i32, comm: &str) {
        let i = self.info.entry(tid).or_default();
        i.comm = Some(comm.to_string());
        i.exited = true;
    }

    /// The process of a task, as far as known (else the task ID itself).
    pub fn tgid(&mut self, tid: i32) -> i32 {
        if let Some(t) = self.info.get(&tid).and_then(|i| i.tgid) {
            return t;
        }
        match read_tgid(tid).filter(|_| !self.offline) {
            Some(t) => {
                self.info.entry(tid).or_default().tgid = Some(t);
                t
            }
            None => tid,
        }
    }

    /// The process and the name of a task.
    pub fn resolve(&mut self, tid: i32) -> (i32, String) {
        let tgid = self.tgid(tid);
        let info = self.info.entry(tid).or_default();
        if !info.exited && !self.offline {
            if let Some(c) = read_comm(tid) {
                info.comm = Some(c);
            }
        }
        if let Some(c) = &info.comm {
            return (tgid, c.clone());
        }
        let name = self.saved(tid).unwrap_or_else(|| "<...>".to_string());
        (tgid, name)
    }

    fn saved(&mut self, tid: i32) -> Option<String> {
        if self.saved.is_none() {
            let mut map = IdMap::default();
            if let Some(text) = self
                .saved_path
                .as_ref()
                .and_then(|p| std::fs::read_to_string(p).ok())
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
        self.saved.as_ref()?.get(&tid).cloned()
    }
}

/// Whether a process runs a 32-bit program (ELF class 1): on a 64-bit
/// kernel its system calls carry the 32-bit ABI's numbers, which the
/// native table names wrongly. `None` when it cannot be told (gone, a
/// kernel thread).
pub fn is_32bit(pid: i32) -> Option<bool> {
    if pid <= 0 {
        return None;
    }
    elf_is_32bit(std::path::Path::new(&format!("/proc/{pid}/exe")))
}

/// Whether a file is a 32-bit ELF program; `None` if it is no ELF file
/// (a script) or cannot be read.
pub fn elf_is_32bit(path: &std::path::Path) -> Option<bool> {
    use std::io::Read;
    let mut head = [0u8; 5];
    let mut f = std::fs::File::open(path).ok()?;
    f.read_exact(&mut head).ok()?;
    if &head[..4] != b"\x7fELF" {
        return None;
    }
    Some(head[4] == 1)
}

fn read_comm(tid: i32) -> Option<String> {
    if tid <= 0 {
        return None;
    }
    let s = std::fs::read_to_string(format!("/proc/{tid}/comm")).ok()?;
    Some(s.strip_suffix('\n').unwrap_or(&s).to_string())
}

fn read_tgid(tid: i32) -> Option<i32> {
    if tid <= 0 {
        return None;
    }
    ftrace_common::kernel::proc::tgid(tid as u32).map(|t| t as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exits_and_new_tasks_outlive_proc() {
        let mut t = Tasks::new(None);
        let me = std::process::id() as i32;
        let (tgid, comm) = t.resolve(me);
        assert_eq!(tgid, me);
        assert_eq!(comm, read_comm(me).unwrap());
        // A thread of ours created and gone during the run.
        t.new_task(me, i32::MAX - 1, "worker", CLONE_THREAD);
        t.exited(i32::MAX - 1, "worker-renamed");
        assert_eq!(t.resolve(i32::MAX - 1), (me, "worker-renamed".to_string()));
        // A child process.
        t.new_task(me, i32::MAX - 2, "child", 0x11);
        assert_eq!(t.resolve(i32::MAX - 2), (i32::MAX - 2, "child".to_string()));
        // Unknown.
        assert_eq!(t.resolve(i32::MAX - 3), (i32::MAX - 3, "<...>".to_string()));
    }

    #[test]
    fn saved_cmdlines_are_the_last_resort() {
        let dir = tempfile_dir();
        let p = dir.join("saved_cmdlines");
        std::fs::write(&p, "2147483000 gone\n").unwrap();
        let mut t = Tasks::new(Some(p));
        assert_eq!(t.resolve(2147483000).1, "gone");
        let _ = std::fs::remove_dir_all(dir);
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("syscount-test-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn we_are_not_a_32bit_program() {
        assert_eq!(
            is_32bit(std::process::id() as i32),
            Some(cfg!(target_pointer_width = "32"))
        );
        assert_eq!(is_32bit(0), None);
        assert_eq!(is_32bit(i32::MAX), None);
    }

    #[test]
    fn snapshot_knows_our_own_threads() {
        let mut t = Tasks::new(None);
        t.snapshot();
        let me = std::process::id() as i32;
        assert_eq!(t.tgid(me), me);
    }
}
