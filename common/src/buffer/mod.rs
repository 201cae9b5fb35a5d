//! The binary ring buffer and the formats that decode it: event `format`
//! files, `header_page` and sub-buffers (`trace_pipe_raw`), the per-CPU
//! reader of an instance, the stack records that follow events, and the
//! kernel's event filter syntax evaluated on records.

pub mod filter;
pub mod format;
pub mod reader;
pub mod ringbuf;
pub mod stack;
pub mod tracedat;
