//! funccount's command line: its options, help and examples.

use clap::Parser;
use ftrace_common::app::opts::{BufferOpt, DurationOpt, JsonOpt, SummaryOpts, TaskOpts};

pub const EXAMPLES: &str = "\
Examples:
  funccount 'vfs_*'               # count kernel functions matching vfs_*
  funccount -d 5 'tcp_*'          # for 5 seconds
  funccount -t 10 'ext4_*'        # show the top 10 only
  funccount -i 1 'ext4_*'         # a summary every second
  funccount -i 1 -d 5 'ext4_*'    # 5 one-second summaries
  funccount -p 1234 'vfs_*'       # calls made by PID 1234 only
  funccount -L 1235 'vfs_*'       # calls made by thread 1235 only
  funccount -r '^vfs_(read|write)$'   # a regular expression
  funccount 'vfs_*' 'ksys_*'      # several patterns
  funccount 't:syscalls:sys_enter_*'  # tracepoints
  funccount 'u:libc:malloc' -p 1234   # user functions (uprobes)
  funccount -l 'tcp_*'            # list what a pattern matches, and exit
  funccount -v --method tracer 'vfs_*'  # choose the method, say what it does
  funccount --json -d 1 'vfs_*'   # JSON";

const LONG_ABOUT: &str = "\
Count kernel function calls matching patterns (globs, or regular expressions with -r), \
in the kernel where it can, exactly otherwise. The method is chosen from what the kernel \
offers: the function profiler (CONFIG_FUNCTION_PROFILER, only when nobody else uses it; \
restored afterwards), else the function tracer in a private instance, counted from the \
binary trace buffer, else kprobes. The Tracing line names the method; --method chooses \
one. Tracepoints (t:SYSTEM:EVENT) and user functions (u:LIB:FUNC) are counted from the \
trace buffer. Output is FUNC COUNT, ascending by count, as perf-tools' funccount prints \
it. Lost events are always reported.";

/// `--help` (and the man page): how funccount counts, what each way needs
/// of the kernel, and what it costs; the examples last.
const LONG_HELP: &str = "\
Methods (--method; the Tracing line names the one used, -v says why):
  profiler  The kernel's function profiler (CONFIG_FUNCTION_PROFILER): per-CPU
            counters in the kernel, read from trace_stat/function*. It is
            global, so funccount takes it only when nobody else can be using
            it: the profiler off, the top-level tracer nop, the top-level
            set_ftrace_filter, set_ftrace_notrace and set_ftrace_pid empty,
            and no other funccount holding it (a lock). It writes the
            top-level set_ftrace_filter and function_profile_enabled and puts
            both back at the end, also on INT, TERM, HUP, QUIT and PIPE; after
            a SIGKILL the next funccount run puts them back. Counts every
            process (funccount's own reads of trace_stat too); no -p or -L.
  tracer    The function tracer in funccount's own instance, with its own
            set_ftrace_filter (and set_ftrace_pid for -p and -L): each call is
            a record in the binary buffer, counted by address in user space.
            funccount's own calls are not counted. Lost events (a reader that
            fell behind) are reported with their number.
  kprobe    A kprobe per function, in funccount's own group; the kernel counts
            the hits (kprobe_profile). With -p or -L, or with tracepoints or
            user functions in the same run, hits are counted from the buffer.
            A name that several functions share gets one kprobe, on the one
            the kernel picks.
  auto      With -p or -L: the tracer. Otherwise the profiler where it is
            free; else kprobes for up to 10 kernel functions (when nothing else
            is counted), else the tracer. A kprobe the kernel refuses makes
            auto use the next method.
  Tracepoints (t:) and user functions (u:, uprobes) are counted from the
  buffer of the same instance, whatever the method.

What each method needs of the kernel:
  profiler  CONFIG_FUNCTION_PROFILER, which some distribution kernels (Debian's
            among them) are built without.
  tracer    CONFIG_FUNCTION_TRACER and CONFIG_DYNAMIC_FTRACE; in an instance,
            Linux 4.17 or later.
  kprobe    CONFIG_KPROBE_EVENTS.
  Where the function tracer is listed but refuses every use (EPERM: ftrace
  disabled after a fault, or a kernel locked down), funccount says so in one
  line and exits 2; tracepoints and user functions are counted all the same.

Output: FUNC COUNT (%-30s %8s), ascending by count, as perf-tools' funccount
prints it, after an empty line; only what was called. Kernel functions by name
(functions that share a name are added up), tracepoints as SYSTEM:EVENT, user
functions as TARGET:FUNC. -i prints one summary per interval (counts start
again), -T a date line before each, -t the largest NUM rows. --json: one line
per summary: {\"summary\":N,\"method\":M,\"counts\":[{\"func\":F,\"count\":N}],\"lost\":N}.

Requirements: root; tracefs (mounted if needed); for kernel functions a
usable function tracer (CONFIG_FUNCTION_TRACER, CONFIG_DYNAMIC_FTRACE); the
profiler and kprobes (CONFIG_KPROBE_EVENTS) where the kernel has them;
uprobes (CONFIG_UPROBE_EVENTS) for u:.

Overhead: every call of a counted function, in every process (-p and -L only
choose what is counted), runs an ftrace hook, well under a microsecond: with
the profiler or kprobes it adds to a counter in the kernel; with the tracer it
writes a 24-byte record that funccount then reads and counts, so the tracer
costs the most per call and funccount's own CPU time grows with the rate of
calls. Counting hundreds of busy functions slows the machine measurably.
Attaching and detaching hundreds of functions takes under a second with the
profiler or the tracer; kprobes are attached and detached one at a time, which
for hundreds of functions takes many seconds. More than 1000 functions need -F.

";

/// Count kernel function calls (and tracepoints, user functions).
#[derive(Debug, Parser)]
#[command(
    name = "funccount",
    version,
    about = "Count kernel function calls matching patterns; also tracepoints and user functions",
    long_about = LONG_ABOUT,
    after_help = EXAMPLES,
    after_long_help = format!("{LONG_HELP}{EXAMPLES}")
)]
pub struct Args {
    #[command(flatten)]
    pub duration: DurationOpt,
    #[command(flatten)]
    pub summary: SummaryOpts,
    /// Print the date before each summary.
    #[arg(short = 'T', long = "timestamp")]
    pub timestamp: bool,
    #[command(flatten)]
    pub task: TaskOpts,
    /// Patterns are regular expressions, matched anywhere in the name
    /// (anchor them with ^ and $).
    #[arg(short = 'r', long = "regexp")]
    pub regexp: bool,
    /// Count even when the patterns match more than 1000 kernel functions.
    #[arg(short = 'F', long = "force")]
    pub force: bool,
    /// How to count kernel functions: auto picks the cheapest available.
    #[arg(long = "method", value_enum, default_value_t = MethodArg::Auto)]
    pub method: MethodArg,
    /// List the functions and events the patterns match, and exit.
    #[arg(short = 'l', long = "list")]
    pub list: bool,
    /// Say which method is used and why, and how long attaching took.
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,
    #[command(flatten)]
    pub json: JsonOpt,
    #[command(flatten)]
    pub buffer: BufferOpt,
    /// What to count: kernel functions (vfs_*, k:vfs_*), tracepoints
    /// (t:SYSTEM:EVENT) or user functions (u:LIB:FUNC).
    #[arg(value_name = "PATTERN", required = true)]
    pub patterns: Vec<String>,
}

ftrace_common::cli_tests!(Args);

/// The --method values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MethodArg {
    /// The cheapest method this kernel offers.
    Auto,
    /// The function profiler (global; not with -p or -L).
    Profiler,
    /// The function tracer in a private instance.
    Tracer,
    /// One kprobe per function.
    Kprobe,
}

#[cfg(test)]
mod tests {
    use super::*;
    use ftrace_common::kernel::proc::Task;
    use std::time::Duration;

    fn args(v: &[&str]) -> Args {
        Args::try_parse_from(std::iter::once("funccount").chain(v.iter().copied())).unwrap()
    }

    #[test]
    fn perf_tools_forms_parse() {
        let a = args(&["-i", "1", "-d", "5", "-t", "10", "-T", "ext4*"]);
        assert_eq!(a.summary.interval, Some(Duration::from_secs(1)));
        assert_eq!(a.duration.duration, Some(Duration::from_secs(5)));
        assert_eq!(a.summary.top, Some(10));
        assert!(a.timestamp);
        assert_eq!(a.patterns, ["ext4*"]);
        let a = args(&["vfs_*", "t:sched:*", "--method", "tracer", "-p", "7"]);
        assert_eq!(a.patterns.len(), 2);
        assert_eq!(a.method, MethodArg::Tracer);
        assert_eq!(a.task.task(), Some(Task::Process(7)));
        assert_eq!(args(&["-L", "8", "x"]).task.task(), Some(Task::Thread(8)));
        for bad in [
            &[][..],
            &["-t", "0", "x"],
            &["-p", "1", "-L", "2", "x"],
            &["-b", "0", "x"],
        ] {
            assert!(
                Args::try_parse_from(std::iter::once("funccount").chain(bad.iter().copied()))
                    .is_err(),
                "{bad:?}"
            );
        }
    }
}
