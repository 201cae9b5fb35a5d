//! stackcount's command line.

use ftrace_common::app::cli::parse_secs;
use ftrace_common::app::flame::FlameOpts;
use ftrace_common::app::opts::{BufferOpt, DurationOpt, InOpt, JsonOpt, TaskOpts};
use std::time::Duration;

const EXAMPLES: &str = "\
Examples:
  stackcount submit_bio              # kernel stacks that reach submit_bio()
  stackcount -d 10 'vfs_*'           # 10 seconds, every vfs_* function
  stackcount -r '^tcp_send(msg|page)$'  # a regular expression
  stackcount t:block:block_rq_issue  # kernel stacks of a tracepoint
  stackcount --in buffer -d 5 submit_bio    # count from the trace buffer
  stackcount -U -p 181 t:syscalls:sys_enter_write  # who in PID 181 writes
  stackcount -P libc:malloc          # user stacks of malloc(), per process
  stackcount -p 181 /usr/bin/bash:readline
  stackcount -f -d 5 -U -p 181 t:raw_syscalls:sys_enter > out.folded
  stackcount --svg out.svg -d 5 submit_bio    # a flame graph
  stackcount -j -d 5 t:block:block_rq_issue   # JSON, one object a stack";

const LONG_ABOUT: &str = "\
Count the stacks that lead to an event and print each distinct stack with its count, \
the most frequent last, as bcc's stackcount does. PATTERN is a kernel function or glob \
(submit_bio, 'vfs_*'; a kprobe on each), a tracepoint (t:SYSTEM:EVENT), or a user \
function (LIB:FUNC or /path/to/file:FUNC, resolved as uprobe resolves it; a uprobe \
on each). The kernel writes a stack record after each event (the instance's \
stacktrace and userstacktrace options) into a private instance; stackcount reads the \
binary buffer, joins each stack to its event and counts it. Lost events are always \
reported. Where the kernel has hist triggers and only kernel stacks are counted \
(kernel functions and tracepoints, without -U, -p or -L, or with -K), they are \
counted in the kernel instead, by a hist trigger keyed on the stack: nothing goes \
through the buffer, and the kernel keeps the innermost 16 frames of each stack. The \
Tracing line says which; --in kernel or --in buffer chooses. With -j each stack is one \
line of JSON: its frames (\"kernel\", \"user\", innermost first), \"comm\" and \"pid\" \
where shown, and \"count\".

Kernel stacks are the default for kernel functions and tracepoints; user stacks for \
user functions, and also with -p. Frames show function names (kallsyms for the \
kernel; for user code the process's ELF files, read through its maps when it is \
first seen, so stacks of processes that have exited since still resolve); a frame \
that cannot be resolved shows its address and the file it lies in.

User stacks: the kernel walks them by frame pointers from the registers at kernel \
entry, and keeps at most 8 frames. The caller of a leaf function (one that sets up \
no frame, such as libc's syscall wrappers) is often missing, and code built without \
frame pointers (most distributions' libraries; -fomit-frame-pointer) gives one or two \
frames, or wrong ones, past the first. Build what you trace with \
-fno-omit-frame-pointer for whole stacks.

Requirements: root, tracefs with instances; kernel functions need kprobe events \
(CONFIG_KPROBE_EVENTS), user functions uprobe events (CONFIG_UPROBE_EVENTS), user \
stacks CONFIG_USER_STACKTRACE_SUPPORT.

Overhead: per event the probe or tracepoint, plus the kernel's stack walk and one \
or two stack records of up to a few hundred bytes, which stackcount reads and looks \
up in a table (each distinct stack is symbolized once). At hundreds of thousands of \
events a second that is a noticeable part of a CPU; -p limits what is recorded to \
one process.";

/// Count the stacks that lead to an event.
#[derive(Debug, clap::Parser)]
#[command(
    name = "stackcount",
    version,
    about = "Count the stacks that lead to an event, kernel or user",
    long_about = LONG_ABOUT,
    after_help = EXAMPLES
)]
pub struct Args {
    #[command(flatten)]
    pub task: TaskOpts,
    #[command(flatten)]
    pub duration: DurationOpt,
    #[command(flatten)]
    pub buffer: BufferOpt,
    #[command(flatten)]
    pub place: InOpt,
    /// Print the counts every SECS seconds, and start them anew.
    #[arg(short = 'i', long = "interval", value_name = "SECS", value_parser = parse_secs)]
    pub interval: Option<Duration>,
    /// A date line before each printout (with -j, a "time" in each
    /// object).
    #[arg(short = 'T', long = "timestamp")]
    pub timestamp: bool,
    /// Show only the NUM most frequent stacks.
    #[arg(short = 't', long = "top", value_name = "NUM", value_parser = clap::value_parser!(u64).range(1..))]
    pub top: Option<u64>,
    /// PATTERN's names are a regular expression (found anywhere in the
    /// name; anchor it with ^ and $), not a glob.
    #[arg(short = 'r', long = "regexp")]
    pub regexp: bool,
    /// Leave out the N innermost frames of each stack.
    #[arg(short = 's', long = "skip", value_name = "N", default_value_t = 0)]
    pub skip: usize,
    /// Count per process: each stack with its process name and PID.
    #[arg(short = 'P', long = "per-pid")]
    pub per_pid: bool,
    /// Kernel stacks only.
    #[arg(short = 'K', long = "kernel-stacks-only", conflicts_with = "user_only")]
    pub kernel_only: bool,
    /// User stacks only.
    #[arg(short = 'U', long = "user-stacks-only")]
    pub user_only: bool,
    /// Show addresses, and offsets into functions, beside the names.
    #[arg(short = 'v', long = "verbose")]
    pub addresses: bool,
    /// Print the stacks folded (one a line, outermost frame first, the
    /// process name first, frames joined by ';', then the count), for
    /// flame graphs.
    #[arg(short = 'f', long = "folded-output")]
    pub folded_out: bool,
    /// A line `--` between kernel and user frames (`-` when folded).
    #[arg(long = "delimited")]
    pub delimited: bool,
    #[command(flatten)]
    pub json: JsonOpt,
    #[command(flatten)]
    pub flame: FlameOpts,
    /// What to count the stacks of: a kernel function or glob (vfs_read,
    /// 'vfs_*'), t:SYSTEM:EVENT (a tracepoint), or LIB:FUNC / /path:FUNC
    /// (a user function).
    #[arg(value_name = "PATTERN")]
    pub pattern: String,
}
