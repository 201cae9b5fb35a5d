//! ftrace-common: the shared engine of ftrace-tools.
#![deny(missing_docs)]

pub mod block;
pub mod caps;
pub mod cli;
pub mod dynevent;
pub mod error;
pub mod errorlog;
pub mod format;
pub mod functions;
pub mod glob;
pub mod hist;
pub mod instance;
pub mod output;
pub mod owner;
pub mod probeargs;
pub mod probespec;
pub mod probetool;
pub mod proc;
pub mod reader;
pub mod ringbuf;
pub mod signals;
pub mod stack;
pub mod sweep;
pub mod sym;
pub mod syscalls;
pub mod toplock;
pub mod tracefs;

pub use error::{Error, ErrorKind, Result};
