//! syscount's command line: its options, help and examples.

use clap::Parser;
use ftrace_common::app::cli;
use ftrace_common::app::opts::{BufferOpt, DurationOpt, JsonOpt, ReadOpt, SummaryOpts, WriteOpt};

pub const EXAMPLES: &str = "\
Examples:
  syscount                      # count system calls by process name
  syscount -c                   # count by system call name
  syscount -c -d 5              # for 5 seconds
  syscount -cp 923              # by name, for PID 923
  syscount -c ls -l             # by name, for the command \"ls -l\"
  syscount -v -t 10             # by PID and name, top 10
  syscount -cL -m               # with total and average latency in ms
  syscount -cx                  # failed calls only
  syscount -c -e ENOENT         # calls that failed with ENOENT
  syscount -c -i 1 -d 10        # a summary each second, for 10 seconds
  syscount --hist read,nanosleep -p 923
                                # latency histograms of two calls
  syscount -l                   # list the system calls this table knows
  syscount -c --json -d 1       # JSON
  syscount -w calls.dat -d 10   # record 10 seconds into a trace.dat file
  syscount -cL --read calls.dat # count them later, here or elsewhere";

/// Count system calls, by process or by system call.
#[derive(Debug, Parser)]
#[command(
    name = "syscount",
    version,
    about = "Count system calls, by process or by system call, with latency and failures",
    long_about = "Count system calls, by process name (default), process (-v) or system call \
name (-c), from ftrace's raw_syscalls tracepoints in a private instance. Counts are exact: \
every call is counted once; lost events are reported. Where the kernel has hist triggers \
and only counts are wanted, the kernel does the counting (--count-in). syscount's own system \
calls are never counted (its PID is in the instance's set_event_notrace_pid). A command \
after the options is run and traced from its first system call (its execve) until it \
exits, with its children; syscount then exits with the command's status. Output is sorted \
by count (by time with -L), largest last, as perf-tools' syscount sorts.

Fields: SYSCALL: the system call's name, from a table generated from Linux 6.12's syscall \
tables; a number the table does not know prints as [unknown: N] (syscount -l lists what it \
knows, and what this kernel has beyond it). A 32-bit program's calls carry its own ABI's numbers (the \
kernel's events do not tell them apart): syscount says so when it sees one. COMM: the task's name (for a task that exited, \
its last name; a task that ran exec is named after the new program). PID: the process. \
COUNT: calls made (taken at their entry); with -L, -x or -e calls completed (taken at \
their return), failed calls being those that return -4095..-1. TIME and AVG (-L): total and \
average time from entry to return, in us (ms with -m), including time asleep.

Requirements: root, tracefs (mounted if needed) with instances (Linux 4.4 or later), \
raw_syscalls tracepoints (CONFIG_FTRACE_SYSCALLS); hist triggers (CONFIG_HIST_TRIGGERS, \
Linux 4.7 or later) where present.

Overhead: every system call of the traced tasks is recorded, about 0.1 to 0.3 us of the \
kernel's time per call: a program that makes system calls in a tight loop runs up to \
about twice as slow while traced. Reading the buffer, syscount needs a small fraction of \
a CPU per million calls a second. Counting in the kernel (hist triggers) costs syscount \
nearly nothing while it runs and cannot fall behind, but each traced call pays a \
hash-table update instead of a buffer write. --count-in buffer chooses the buffer.",
    override_usage = "syscount [-chvxLm] [-t top] [-e ERRNO] [-i secs] {-p PID|--tid TID|-d secs|command [args...]}",
    after_help = EXAMPLES
)]
pub struct Args {
    /// Count by system call name (SYSCALL COUNT) instead of by process name.
    #[arg(short = 'c', long = "syscalls")]
    pub syscalls: bool,
    /// Show process IDs (PID COMM COUNT; with -c: PID COMM SYSCALL COUNT).
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,
    /// Trace this process only (all its threads, also ones started later;
    /// not its child processes). The run ends when the process does.
    #[arg(short = 'p', long = "pid", value_name = "PID", value_parser = cli::parse_pid)]
    pub pid: Option<u32>,
    /// Trace this thread only.
    #[arg(long = "tid", value_name = "TID", value_parser = cli::parse_pid, conflicts_with = "pid")]
    pub tid: Option<u32>,
    #[command(flatten)]
    pub duration: DurationOpt,
    #[command(flatten)]
    pub summary: SummaryOpts,
    /// Show latency: total and average time per row, in microseconds
    /// (counts are then of completed calls, taken at their return).
    #[arg(short = 'L', long = "latency")]
    pub latency: bool,
    /// Show times in milliseconds instead of microseconds.
    #[arg(short = 'm', long = "milliseconds")]
    pub milliseconds: bool,
    /// Count failed calls only (those that return an error).
    #[arg(short = 'x', long = "failures")]
    pub failures: bool,
    /// Count calls that failed with this error only: a name (EBADF) or a
    /// number (9).
    #[arg(short = 'e', long = "errno", value_name = "ERRNO")]
    pub errno: Option<String>,
    /// Print a log2 histogram of the latency of these system calls
    /// (comma-separated names; implies -L).
    #[arg(long = "hist", value_name = "SYSCALLS", value_delimiter = ',')]
    pub hist: Vec<String>,
    /// List the system calls syscount can name and exit.
    #[arg(short = 'l', long = "list")]
    pub list: bool,
    #[command(flatten)]
    pub json: JsonOpt,
    /// Where to count: in the kernel with a hist trigger, from the trace
    /// buffer in user space, or auto (the kernel where it can).
    #[arg(
        long = "count-in",
        value_name = "WHERE",
        value_enum,
        default_value = "auto"
    )]
    pub count_in: CountIn,
    #[command(flatten)]
    pub buffer: BufferOpt,
    #[command(flatten)]
    pub write: WriteOpt,
    #[command(flatten)]
    pub read: ReadOpt,
    /// A command to run and trace, with its arguments.
    #[arg(
        value_name = "COMMAND",
        trailing_var_arg = true,
        allow_hyphen_values = true,
        conflicts_with_all = ["pid", "tid"]
    )]
    pub command: Vec<String>,
}

ftrace_common::cli_tests!(Args);

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CountIn {
    /// The kernel where it has hist triggers and no latency is wanted.
    Auto,
    /// The kernel (hist triggers).
    Kernel,
    /// The trace buffer, counted by syscount.
    Buffer,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perf_tools_forms_parse() {
        let a = Args::try_parse_from(["syscount", "-cp", "923"]).unwrap();
        assert!(a.syscalls && a.pid == Some(923));
        let a = Args::try_parse_from(["syscount", "-c", "ls", "-l", "/tmp"]).unwrap();
        assert!(a.syscalls);
        assert_eq!(a.command, vec!["ls", "-l", "/tmp"]);
        let a = Args::try_parse_from(["syscount", "-cv", "-t", "5", "-d", "2"]).unwrap();
        assert!(a.verbose && a.summary.top == Some(5));
        assert!(Args::try_parse_from(["syscount", "-t", "0"]).is_err());
        assert!(Args::try_parse_from(["syscount", "-p", "1", "ls"]).is_err());
        let a = Args::try_parse_from(["syscount", "--hist", "read,nanosleep", "-p", "1"]).unwrap();
        assert_eq!(a.hist, vec!["read", "nanosleep"]);
    }
}
