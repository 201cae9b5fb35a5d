//! functrace's command line: its options, help and examples.

use clap::Parser;
use ftrace_common::app::opts::{BufferOpt, DurationOpt, HeadersOpt, JsonOpt, TaskOpts};

pub const EXAMPLES: &str = "\
Examples:
  functrace do_nanosleep             # every do_nanosleep() call
  functrace 'vfs_*'                  # calls of the functions starting vfs_
  functrace -p 198 'ext4_*'          # PID 198 only
  functrace -L 201 vfs_read          # thread 201 only
  functrace -H -d 5 'tcp_*' > out    # with a header, for 5 seconds
  functrace -j vfs_read              # one JSON object per call
  functrace -F '*_lock'              # more than 1000 functions";

const LONG_ABOUT: &str = "\
Trace the calls of kernel functions matching a pattern (a name or glob of traceable \
functions, as in available_filter_functions), with ftrace's function tracer in \
functrace's own instance: its set_ftrace_filter holds the matching functions, its \
set_ftrace_pid the task, and the calls are read from its binary per-CPU buffer. One \
line per call, in the kernel's trace text shape: TASK-PID, [CPU], the time stamp \
(seconds of CLOCK_MONOTONIC), the function and, after <-, the function that called it. \
Lost events are reported (CPU:N [LOST n EVENTS]), never dropped silently. With --json, \
one object per call: ts (ns), cpu, pid, comm, func, parent.

Patterns that match more than 1000 functions are refused unless -F is given: attaching \
that many takes seconds, and every call of each is recorded.

Requirements: root, tracefs (mounted if needed), a usable function tracer \
(CONFIG_FUNCTION_TRACER, CONFIG_DYNAMIC_FTRACE) that runs in instances (Linux 4.17 or \
later).

Overhead: every call of each matching function is recorded (about 100 to 300 ns \
each): functions called millions of times a second slow the machine and can make \
events faster than functrace reads them (those are lost, and reported). Keep to narrow \
patterns, or one process (-p). Starting and ending take seconds on a slow machine: the \
kernel patches the traced functions.";

/// Trace kernel function calls.
#[derive(Debug, Parser)]
#[command(
    name = "functrace",
    version,
    about = "Trace kernel function calls matching a pattern",
    long_about = LONG_ABOUT,
    override_usage = "functrace [-hH] [-p PID] [-L TID] [-d secs] [-j] [-F] [-b KB] funcstring",
    after_help = EXAMPLES
)]
pub struct Args {
    #[command(flatten)]
    pub headers: HeadersOpt,
    #[command(flatten)]
    pub task: TaskOpts,
    #[command(flatten)]
    pub duration: DurationOpt,
    #[command(flatten)]
    pub json: JsonOpt,
    /// Trace the functions even when the pattern matches more than 1000.
    #[arg(short = 'F', long = "force")]
    pub force: bool,
    #[command(flatten)]
    pub buffer: BufferOpt,
    /// The functions: a name or glob of traceable kernel functions.
    #[arg(value_name = "FUNCSTRING")]
    pub func: String,
}

ftrace_common::cli_tests!(Args);

#[cfg(test)]
pub fn args(v: &[&str]) -> Args {
    Args::try_parse_from(std::iter::once("functrace").chain(v.iter().copied())).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn perf_tools_forms_parse() {
        let a = args(&["do_nanosleep"]);
        assert_eq!(a.func, "do_nanosleep");
        let a = args(&["-H", "-p", "198", "-d", "2", "vfs_*"]);
        assert!(a.headers.headers);
        assert_eq!(a.task.pid, Some(198));
        assert_eq!(a.duration.duration, Some(Duration::from_secs(2)));
        let a = args(&["-L", "5", "-j", "-F", "f"]);
        assert_eq!(a.task.tid, Some(5));
        assert!(a.json.json && a.force);
        for bad in [&[][..], &["a", "b"], &["-p", "1", "-L", "2", "f"]] {
            let v = std::iter::once("functrace").chain(bad.iter().copied());
            assert!(Args::try_parse_from(v).is_err(), "{bad:?}");
        }
    }
}
