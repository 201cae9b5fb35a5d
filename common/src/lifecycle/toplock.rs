//! One lock for tracefs's global top level, taken by every tool that must
//! change it: funccount's function profiler (top-level `set_ftrace_filter`
//! and `function_profile_enabled`) and funcgraph on kernels that run
//! function_graph only at the top level. Each tool first checks that
//! nobody seems to use the top level; this lock closes the window between
//! two ftrace-tools runs checking at the same moment.
//!
//! It is an `flock()` on `top-level.lock` in `/run/ftrace-tools/` (or
//! `$FTRACE_TOOLS_LOCK_DIR`): the kernel frees it when its holder dies, so it
//! is never left behind. The file names the holder, for messages.

use crate::base::error::{Error, Result};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

/// The directory of the suite's lock files.
pub fn lock_dir() -> PathBuf {
    std::env::var_os("FTRACE_TOOLS_LOCK_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/run/ftrace-tools"))
}

/// The top level, held by this process until dropped.
#[derive(Debug)]
pub struct TopLevelLock {
    _file: File,
}

fn open() -> Result<File> {
    let dir = lock_dir();
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("top-level.lock");
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(&path)
        .map_err(|e| Error::io("open the lock file", &path, e))
}

impl TopLevelLock {
    /// Takes the lock without waiting, naming `tool` as the holder.
    /// `Ok(Err(holder))` when another run holds it (`holder` says which).
    pub fn try_take(tool: &str) -> Result<std::result::Result<TopLevelLock, String>> {
        let mut file = open()?;
        // SAFETY: flock on a descriptor we own.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                let mut who = String::new();
                let _ = file.read_to_string(&mut who);
                let who = who.trim();
                return Ok(Err(if who.is_empty() {
                    "another ftrace-tools run".to_string()
                } else {
                    who.to_string()
                }));
            }
            return Err(Error::io("lock", &lock_dir().join("top-level.lock"), e));
        }
        let _ = file.set_len(0);
        let _ = file.rewind();
        let _ = write!(file, "{tool} (PID {})", std::process::id());
        Ok(Ok(TopLevelLock { _file: file }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time_and_named() {
        let dir = tempfile::tempdir().unwrap();
        std::env::set_var("FTRACE_TOOLS_LOCK_DIR", dir.path());
        let a = TopLevelLock::try_take("funccount").unwrap().unwrap();
        // flock locks belong to the open file: a second open in the same
        // process conflicts, as another process would.
        let held = TopLevelLock::try_take("funcgraph").unwrap().unwrap_err();
        assert_eq!(held, format!("funccount (PID {})", std::process::id()));
        drop(a);
        assert!(TopLevelLock::try_take("funcgraph").unwrap().is_ok());
        std::env::remove_var("FTRACE_TOOLS_LOCK_DIR");
    }
}
