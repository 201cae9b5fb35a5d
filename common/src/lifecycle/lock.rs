//! Lock files with a record inside, for kernel state that is global and
//! that runs of ours share or take in turn (the top level, funcgraph's
//! shared `set_graph_function`).
//!
//! `flock()` on a file under `/run/ftrace-tools/` (or
//! `$FTRACE_TOOLS_LOCK_DIR`): the kernel frees the lock when its holder
//! dies, so a lock is never left behind; the record (JSON) says what the
//! holders changed, so a later run can undo what a killed one left.

use crate::{Error, ErrorKind, Result};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The directory of the lock files.
pub fn lock_dir() -> PathBuf {
    std::env::var_os("FTRACE_TOOLS_LOCK_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/run/ftrace-tools"))
}

/// An open lock file; locked while [`LockFile::locked`] is true.
pub struct LockFile {
    file: File,
    path: PathBuf,
    locked: bool,
}

impl LockFile {
    /// Opens (creating) `name` in [`lock_dir`].
    pub fn open(name: &str) -> Result<LockFile> {
        let dir = lock_dir();
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join(name);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| Error::io("open the lock file", &path, e))?;
        Ok(LockFile {
            file,
            path,
            locked: false,
        })
    }

    /// Whether this process holds the lock.
    pub fn locked(&self) -> bool {
        self.locked
    }

    /// Takes the lock without waiting; `Ok(false)` if someone holds it.
    pub fn try_lock(&mut self) -> Result<bool> {
        // SAFETY: flock on a descriptor we own.
        let rc = unsafe { libc::flock(self.file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            self.locked = true;
            return Ok(true);
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EWOULDBLOCK) || e.raw_os_error() == Some(libc::EINTR) {
            return Ok(false);
        }
        Err(Error::io("lock", &self.path, e))
    }

    /// Takes the lock, waiting up to `timeout`; gives up early (with
    /// `Ok(false)`) when `stop` says so.
    pub fn lock(&mut self, timeout: Duration, stop: &dyn Fn() -> bool) -> Result<bool> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.try_lock()? {
                return Ok(true);
            }
            if stop() || Instant::now() >= deadline {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Lets the lock go.
    pub fn unlock(&mut self) {
        if self.locked {
            // SAFETY: flock on a descriptor we own.
            unsafe { libc::flock(self.file.as_raw_fd(), libc::LOCK_UN) };
            self.locked = false;
        }
    }

    /// The record (empty if none).
    pub fn read(&mut self) -> String {
        let mut s = String::new();
        let _ = self.file.rewind();
        let _ = self.file.read_to_string(&mut s);
        s
    }

    /// Replaces the record, durably (it must survive this process).
    pub fn write(&mut self, text: &str) -> Result<()> {
        let r = (|| {
            self.file.set_len(0)?;
            self.file.rewind()?;
            self.file.write_all(text.as_bytes())?;
            self.file.sync_data()
        })();
        r.map_err(|e| {
            Error::new(
                ErrorKind::Io,
                format!("writing the record {}: {e}", self.path.display()),
            )
        })
    }
}

impl Drop for LockFile {
    fn drop(&mut self) {
        self.unlock();
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// One lock directory for all unit tests of this crate (they run in
    /// parallel and share the environment).
    pub fn test_lock_dir() -> &'static std::path::Path {
        static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
        DIR.get_or_init(|| {
            let d = tempfile::tempdir().unwrap().keep();
            std::env::set_var("FTRACE_TOOLS_LOCK_DIR", &d);
            d
        })
    }

    #[test]
    fn one_holder_at_a_time_and_records_persist() {
        test_lock_dir();
        let mut a = LockFile::open("t.lock").unwrap();
        let mut b = LockFile::open("t.lock").unwrap();
        assert!(a.try_lock().unwrap());
        assert!(!b.try_lock().unwrap());
        assert!(!b.lock(Duration::from_millis(30), &|| false).unwrap());
        a.write("{\"x\":1}").unwrap();
        a.unlock();
        assert!(b.lock(Duration::from_millis(30), &|| false).unwrap());
        assert_eq!(b.read(), "{\"x\":1}");
    }
}
