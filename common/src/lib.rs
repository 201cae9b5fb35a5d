//! ftrace-common: the shared engine of ftrace-tools.
#![deny(missing_docs)]

pub mod error;

pub use error::{Error, ErrorKind, Result};
