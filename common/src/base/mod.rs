//! The vocabulary every layer speaks: errors and their exit statuses,
//! glob patterns (with "did you mean") and name patterns (glob or regex), the running tool's name, and [`Flow`], what a consumer of
//! events or output lines asks for next. Nothing here touches the kernel.

pub mod error;
#[cfg(feature = "old-glibc")]
pub mod glibc;
pub mod glob;
pub mod pattern;
pub mod tool;

/// What a consumer (a sink of events, an output) wants after an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Go on.
    Continue,
    /// Stop reading now (enough events, or the output was closed).
    Stop,
}
