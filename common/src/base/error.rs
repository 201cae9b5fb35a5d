//! Errors of the suite, and the exit status each one gives.
//!
//! Library code returns [`Error`]; a tool's `main` prints it as one line
//! (`tool: message`) and exits with [`Error::exit_code`]. Bad input, missing
//! privileges and missing kernel features exit 2, as perf-tools users expect
//! a usage error to; failures at run time exit 1.

use std::fmt;
use std::io;
use std::path::Path;

/// What went wrong, in the broad categories that decide the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The user's input is wrong: an option, a probe spec, a filter, a name.
    Usage,
    /// Not root (or lacking CAP_SYS_ADMIN / CAP_PERFMON).
    Permission,
    /// The running kernel lacks a feature; the message names its option.
    Unsupported,
    /// The kernel refused a write (a probe line, a filter); the message
    /// carries the kernel's `error_log` text where there is one.
    Rejected,
    /// Someone else holds a resource we need and will not share.
    Busy,
    /// An I/O or system-call failure at run time.
    Io,
    /// A stop signal (or a closed output) ended a step before it was done:
    /// not a failure. The run ends quietly, with status 0, once every guard
    /// has undone its change.
    Interrupted,
}

/// An error with a complete, user-facing message.
#[derive(Debug, Clone)]
pub struct Error {
    kind: ErrorKind,
    msg: String,
}

/// The suite's result type.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Builds an error of a kind with a message.
    pub fn new(kind: ErrorKind, msg: impl Into<String>) -> Error {
        Error {
            kind,
            msg: msg.into(),
        }
    }

    /// A usage error (exit 2).
    pub fn usage(msg: impl Into<String>) -> Error {
        Error::new(ErrorKind::Usage, msg)
    }

    /// A missing kernel feature (exit 2).
    pub fn unsupported(msg: impl Into<String>) -> Error {
        Error::new(ErrorKind::Unsupported, msg)
    }

    /// A write the kernel refused (exit 2).
    pub fn rejected(msg: impl Into<String>) -> Error {
        Error::new(ErrorKind::Rejected, msg)
    }

    /// A step cut short by a stop signal (exit 0, nothing printed).
    pub fn interrupted() -> Error {
        Error::new(ErrorKind::Interrupted, "interrupted")
    }

    /// Whether a stop signal cut the step short.
    pub fn is_interrupted(&self) -> bool {
        self.kind == ErrorKind::Interrupted
    }

    /// An I/O error on a path, with the operation that failed.
    pub fn io(op: &str, path: &Path, err: io::Error) -> Error {
        let kind = match err.raw_os_error() {
            Some(libc::EACCES) | Some(libc::EPERM) => ErrorKind::Permission,
            Some(libc::EBUSY) => ErrorKind::Busy,
            _ => ErrorKind::Io,
        };
        Error::new(kind, format!("{op} {}: {err}", path.display()))
    }

    /// The category of this error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, without the tool's name.
    pub fn message(&self) -> &str {
        &self.msg
    }

    /// Adds context in front of the message: `"{ctx}: {msg}"`.
    pub fn context(mut self, ctx: impl fmt::Display) -> Error {
        self.msg = format!("{ctx}: {}", self.msg);
        self
    }

    /// The process exit status for this error: 2 for anything the user
    /// can fix by changing the command or the machine, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self.kind {
            ErrorKind::Io => 1,
            ErrorKind::Interrupted => 0,
            _ => 2,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for Error {}

/// Attaches a path and an operation to `io::Result`s.
pub trait IoContext<T> {
    /// Maps an `io::Error` to an [`Error`] naming `op` and `path`.
    fn ctx(self, op: &str, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, op: &str, path: &Path) -> Result<T> {
        self.map_err(|e| Error::io(op, path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_kind() {
        assert_eq!(Error::usage("x").exit_code(), 2);
        assert_eq!(Error::unsupported("x").exit_code(), 2);
        assert_eq!(Error::new(ErrorKind::Io, "x").exit_code(), 1);
        assert_eq!(Error::interrupted().exit_code(), 0);
        assert!(Error::interrupted().is_interrupted());
        assert!(!Error::usage("interrupted").is_interrupted());
        let e = Error::io(
            "open",
            Path::new("/x"),
            io::Error::from_raw_os_error(libc::EPERM),
        );
        assert_eq!(e.kind(), ErrorKind::Permission);
        assert_eq!(
            e.to_string(),
            format!("open /x: {}", io::Error::from_raw_os_error(libc::EPERM))
        );
    }
}
