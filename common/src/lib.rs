//! ftrace-common: the shared engine of ftrace-tools.
#![deny(missing_docs)]

pub mod caps;
pub mod error;
pub mod errorlog;
pub mod format;
pub mod instance;
pub mod owner;
pub mod ringbuf;
pub mod tracefs;

pub use error::{Error, ErrorKind, Result};
