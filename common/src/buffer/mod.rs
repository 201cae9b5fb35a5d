//! The binary ring buffer and the formats that decode it: event `format`
//! files, `header_page` and sub-buffers (`trace_pipe_raw`), the per-CPU
//! reader of an instance, the stack records that follow events, the
//! kernel's event filter syntax evaluated on records, and each event's
//! text as the kernel prints it (`printfmt`).

pub mod filter;
pub mod format;
pub mod printfmt;
pub mod reader;
pub mod ringbuf;
pub mod stack;
pub mod tracedat;
