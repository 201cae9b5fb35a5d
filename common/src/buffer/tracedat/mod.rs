//! trace-cmd's `trace.dat` files: written from a run's raw sub-buffers
//! ([`write`]), read back from ours and from `trace-cmd record`'s
//! ([`read`]).
//!
//! We write **version 6**: every trace-cmd since 2.x reads it (3.x reads 6
//! and 7; `trace-cmd convert` moves between them), and so does every
//! KernelShark, so a file captured on one machine opens on whatever the
//! machine it is looked at has. Version 7 (sections anywhere, compressed)
//! saves disk space but would gain us nothing else: the per-CPU data must
//! be contiguous in both. The layout written:
//!
//! ```text
//!   "\x17\x08\x44tracing" "6\0" endian(1) long size(1) page size(u32)
//!   "header_page\0"  u64 size, events/header_page
//!   "header_event\0" u64 size, events/header_event
//!   u32 count, then u64 size + text of each events/ftrace/*/format
//!   u32 systems; each: "name\0" u32 count, then u64 size + format text
//!                    (the events enabled in the run's instance: our
//!                    kprobe/uprobe groups ftrace_tools_* included)
//!   u32 size, /proc/kallsyms (empty unless addresses need names)
//!   u32 size, printk_formats
//!   u64 size, saved cmdlines ("PID COMM" lines: the kernel's, and ours)
//!   u32 CPUs (highest CPU + 1)
//!   "options  \0", options (u16 id, u32 size, data), u16 0
//!       DATE, UNAME, VERSION, TRACECLOCK, CPUSTAT (one per CPU)
//!   "flyrecord\0", per CPU: u64 offset, u64 size
//!   u64 size, "[clock]"  (because of the TRACECLOCK option)
//!   padding to a page, then each CPU's sub-buffers, as the kernel
//!   handed them out (lost-event flags and counts included)
//!   optional trailer: "TID TGID" lines, u64 size, TRAILER_MAGIC
//! ```
//!
//! The trailer holds what the format has no place for (threads'
//! processes, from the kernel's `saved_tgids`); trace-cmd reads data only
//! where the header's offsets point and never sees it.
//!
//! Numbers are in the byte order of the machine that recorded the file.

pub mod read;
pub mod write;

/// The first ten bytes of every trace.dat file.
pub const MAGIC: [u8; 10] = *b"\x17\x08\x44tracing";

/// Marks the end of our trailer (see the module's documentation).
pub const TRAILER_MAGIC: [u8; 16] = *b"ftrace-tools-tg1";

/// Option ids of trace-cmd 3.x.
#[allow(missing_docs)]
pub mod option {
    pub const DONE: u16 = 0;
    pub const DATE: u16 = 1;
    pub const CPUSTAT: u16 = 2;
    pub const BUFFER: u16 = 3;
    pub const TRACECLOCK: u16 = 4;
    pub const UNAME: u16 = 5;
    pub const HOOK: u16 = 6;
    pub const OFFSET: u16 = 7;
    pub const CPUCOUNT: u16 = 8;
    pub const VERSION: u16 = 9;
    pub const PROCMAPS: u16 = 10;
    pub const TRACEID: u16 = 11;
    pub const TIME_SHIFT: u16 = 12;
    pub const GUEST: u16 = 13;
    pub const TSC2NSEC: u16 = 14;
    pub const STRINGS: u16 = 15;
    pub const HEADER_INFO: u16 = 16;
    pub const FTRACE_EVENTS: u16 = 17;
    pub const EVENT_FORMATS: u16 = 18;
    pub const KALLSYMS: u16 = 19;
    pub const PRINTK: u16 = 20;
    pub const CMDLINES: u16 = 21;
    pub const BUFFER_TEXT: u16 = 22;
}

/// Whether an event's print format shows kernel addresses as symbols
/// (`%pS`, `%ps`, `%pB`, ...): a file holding it needs kallsyms.
pub fn prints_symbols(print_fmt: &str) -> bool {
    ["%pS", "%ps", "%pB", "%pF", "%pf", "%pSR"]
        .iter()
        .any(|p| print_fmt.contains(p))
}

#[cfg(test)]
mod tests;
