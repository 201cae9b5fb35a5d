//! Command mode: a child that waits, is traced from its first system call
//! on, then runs the command.
//!
//! The child is forked before the tracing instance exists, so it cannot
//! inherit syscount's place in `set_event_notrace_pid` through `event-fork`.
//! It blocks in `read()` on a pipe while syscount puts its PID in
//! `set_event_pid` and starts tracing; the byte syscount then writes lets it
//! go, and its next system call is the `execve` of the command. (The end of
//! that `read()` is traced: a `sys_exit` with no `sys_enter`, which no count
//! uses: counts are taken at `sys_enter`, latencies need both ends, and the
//! read succeeds so it is no failed call.)
//!
//! Between `fork` and `execve` the child calls only async-signal-safe
//! functions; everything it needs (path, argv, environment) is prepared
//! before the fork. If syscount dies before letting it go, the read ends
//! with EOF and the child exits without running the command. A failed
//! `execve` reports its errno back through a second, close-on-exec pipe.

use ftrace_common::{Error, Result};
use std::ffi::{CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// How the command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// `exit(code)`.
    Code(i32),
    /// Killed by a signal.
    Signal(i32),
}

impl Exit {
    fn from_wait(status: i32) -> Option<Exit> {
        if libc::WIFEXITED(status) {
            Some(Exit::Code(libc::WEXITSTATUS(status)))
        } else if libc::WIFSIGNALED(status) {
            Some(Exit::Signal(libc::WTERMSIG(status)))
        } else {
            None
        }
    }

    /// The exit status a shell would show (128 + signal for a signal).
    pub fn shell_status(self) -> u8 {
        match self {
            Exit::Code(c) => (c & 0xff) as u8,
            Exit::Signal(s) => (128 + s).min(255) as u8,
        }
    }
}

/// The traced command's process.
#[derive(Debug)]
pub struct Child {
    pid: libc::pid_t,
    go: Option<i32>,
    err: i32,
    released: bool,
    exit: Option<Exit>,
    name: String,
}

/// Finds a program as `execvp` would: a name with a `/` is a path; any
/// other is looked up in `$PATH`. The error is a usage error naming the
/// program.
pub fn resolve(program: &str) -> Result<PathBuf> {
    if program.is_empty() {
        return Err(Error::usage("the command is empty"));
    }
    let runnable = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if program.contains('/') {
        let p = PathBuf::from(program);
        if !p.exists() {
            return Err(Error::usage(format!("command not found: {program}")));
        }
        if !runnable(&p) {
            return Err(Error::usage(format!(
                "cannot run {program}: not an executable file"
            )));
        }
        return Ok(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    for dir in std::env::split_paths(&path) {
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        let p = dir.join(program);
        if runnable(&p) {
            return Ok(p);
        }
    }
    Err(Error::usage(format!(
        "command not found: {program} (not in PATH)"
    )))
}

fn cstring(s: &OsStr) -> Result<CString> {
    CString::new(s.as_bytes())
        .map_err(|_| Error::usage("the command or an argument contains a NUL byte"))
}

fn pipe() -> Result<(i32, i32)> {
    let mut fds = [0i32; 2];
    // SAFETY: fds is a valid array of two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(Error::new(
            ftrace_common::ErrorKind::Io,
            format!("pipe: {}", std::io::Error::last_os_error()),
        ));
    }
    Ok((fds[0], fds[1]))
}

fn close(fd: i32) {
    // SAFETY: closing a descriptor we own.
    unsafe { libc::close(fd) };
}

impl Child {
    /// Forks a child that waits to run `path` with `args` (`args[0]` is the
    /// name the command was given as).
    pub fn spawn(path: &Path, args: &[String]) -> Result<Child> {
        let cpath = cstring(path.as_os_str())?;
        let cargs: Vec<CString> = args
            .iter()
            .map(|a| cstring(OsStr::new(a)))
            .collect::<Result<_>>()?;
        let mut argv: Vec<*const libc::c_char> = cargs.iter().map(|a| a.as_ptr()).collect();
        argv.push(std::ptr::null());
        let env: Vec<CString> = std::env::vars_os()
            .filter_map(|(k, v)| {
                let mut kv = k.as_bytes().to_vec();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                CString::new(kv).ok()
            })
            .collect();
        let mut envp: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
        envp.push(std::ptr::null());

        let (go_r, go_w) = pipe()?;
        let (err_r, err_w) = match pipe() {
            Ok(p) => p,
            Err(e) => {
                close(go_r);
                close(go_w);
                return Err(e);
            }
        };
        // SAFETY: fork in a single-threaded process; the child below only
        // makes async-signal-safe calls until execve or _exit.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            let e = std::io::Error::last_os_error();
            for fd in [go_r, go_w, err_r, err_w] {
                close(fd);
            }
            return Err(Error::new(
                ftrace_common::ErrorKind::Io,
                format!("fork: {e}"),
            ));
        }
        if pid == 0 {
            // SAFETY: async-signal-safe calls only; pointers prepared above
            // stay valid (the child has its own copy of the memory).
            unsafe {
                libc::close(go_w);
                libc::close(err_r);
                // Rust ignores SIGPIPE; the command must get the default.
                libc::signal(libc::SIGPIPE, libc::SIG_DFL);
                let mut b = 0u8;
                loop {
                    let n = libc::read(go_r, (&mut b as *mut u8).cast(), 1);
                    if n == 1 {
                        break;
                    }
                    if n < 0 && *libc::__errno_location() == libc::EINTR {
                        continue;
                    }
                    // syscount went away before tracing started.
                    libc::_exit(127);
                }
                libc::execve(cpath.as_ptr(), argv.as_ptr(), envp.as_ptr());
                let e = *libc::__errno_location();
                libc::write(err_w, (&e as *const i32).cast(), 4);
                libc::_exit(127);
            }
        }
        close(go_r);
        close(err_w);
        Ok(Child {
            pid,
            go: Some(go_w),
            err: err_r,
            released: false,
            exit: None,
            name: args.first().cloned().unwrap_or_default(),
        })
    }

    /// The child's PID.
    pub fn pid(&self) -> u32 {
        self.pid as u32
    }

    /// Lets the child run the command; returns once it has (or an error
    /// if `execve` failed).
    pub fn release(&mut self) -> Result<()> {
        let Some(go) = self.go.take() else {
            return Ok(());
        };
        let b = [1u8];
        // SAFETY: writing one byte from a valid buffer to our pipe.
        let n = unsafe { libc::write(go, b.as_ptr().cast(), 1) };
        close(go);
        if n != 1 {
            return Err(Error::new(
                ftrace_common::ErrorKind::Io,
                format!(
                    "cannot start the command: {}",
                    std::io::Error::last_os_error()
                ),
            ));
        }
        self.released = true;
        let mut e = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            // SAFETY: reading into the rest of a valid buffer.
            let n = unsafe { libc::read(self.err, e[got..].as_mut_ptr().cast(), 4 - got) };
            if n < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            if n <= 0 {
                break;
            }
            got += n as usize;
        }
        if got == 4 {
            let errno = i32::from_ne_bytes(e);
            self.wait_blocking();
            return Err(Error::usage(format!(
                "cannot run {}: {}",
                self.name,
                std::io::Error::from_raw_os_error(errno)
            )));
        }
        Ok(())
    }

    /// Whether the command has exited (it is then reaped).
    pub fn try_wait(&mut self) -> Option<Exit> {
        if self.exit.is_some() {
            return self.exit;
        }
        let mut status = 0;
        // SAFETY: waiting for our own child without blocking.
        let r = unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) };
        if r == self.pid {
            self.exit = Exit::from_wait(status);
        }
        self.exit
    }

    fn wait_blocking(&mut self) -> Option<Exit> {
        loop {
            let mut status = 0;
            // SAFETY: waiting for our own child.
            let r = unsafe { libc::waitpid(self.pid, &mut status, 0) };
            if r == self.pid {
                self.exit = Exit::from_wait(status);
                return self.exit;
            }
            if r < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                return None;
            }
        }
    }

    /// Waits up to `timeout` for the command to exit.
    pub fn wait_for(&mut self, timeout: std::time::Duration) -> Option<Exit> {
        let end = std::time::Instant::now() + timeout;
        loop {
            if let Some(e) = self.try_wait() {
                return Some(e);
            }
            if std::time::Instant::now() >= end {
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// The name the command was given as.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if let Some(go) = self.go.take() {
            // Never released: EOF makes it exit without running anything.
            close(go);
            self.wait_blocking();
        }
        close(self.err);
        // A released command that is still running is left to run: it is
        // the user's program, not ours to kill.
    }
}

/// The command's status, which becomes syscount's.
pub fn command_status(child: Option<Child>) -> Result<Option<u8>> {
    let Some(mut c) = child else {
        return Ok(None);
    };
    let exit = match c.try_wait() {
        Some(e) => Some(e),
        None => c.wait_for(std::time::Duration::from_millis(500)),
    };
    match exit {
        Some(Exit::Code(0)) => Ok(Some(0)),
        Some(e @ Exit::Code(n)) => {
            eprintln!("syscount: {} exited with status {n}", c.name());
            Ok(Some(e.shell_status()))
        }
        Some(e @ Exit::Signal(s)) => {
            eprintln!("syscount: {} was killed by signal {s}", c.name());
            Ok(Some(e.shell_status()))
        }
        None => {
            eprintln!(
                "syscount: {} (PID {}) is still running; it is no longer traced",
                c.name(),
                c.pid()
            );
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_like_execvp() {
        assert!(resolve("sh").unwrap().ends_with("sh"));
        assert!(resolve("/bin/sh").is_ok());
        let e = resolve("no-such-command-xyz").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("command not found"), "{e}");
        assert!(resolve("/etc/passwd")
            .unwrap_err()
            .to_string()
            .contains("not an executable"));
        assert!(resolve("").is_err());
    }

    #[test]
    fn runs_after_release_and_reports_the_status() {
        let p = resolve("sh").unwrap();
        let mut c = Child::spawn(&p, &["sh".into(), "-c".into(), "exit 3".into()]).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(c.try_wait(), None, "it must wait for release");
        c.release().unwrap();
        assert_eq!(
            c.wait_for(std::time::Duration::from_secs(10)),
            Some(Exit::Code(3))
        );
        assert_eq!(Exit::Signal(9).shell_status(), 137);
    }

    #[test]
    fn an_unreleased_child_exits_without_running() {
        let p = resolve("sh").unwrap();
        let dir = std::env::temp_dir().join(format!("syscount-child-{}", std::process::id()));
        let cmd = format!("touch {}", dir.display());
        let c = Child::spawn(&p, &["sh".into(), "-c".into(), cmd]).unwrap();
        drop(c);
        assert!(!dir.exists());
    }
}
