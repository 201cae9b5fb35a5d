//! funcgraph's command line: its options, help and examples.

use clap::Parser;
use ftrace_common::app::opts::{
    BufferOpt, DurationOpt, HeadersOpt, JsonOpt, ReadOpt, TaskOpts, WriteOpt,
};

pub const EXAMPLES: &str = "\
Examples:
  funcgraph do_nanosleep            # graphs of do_nanosleep() calls
  funcgraph -m 3 do_sys_openat2     # three levels deep only
  funcgraph -a do_sys_openat2       # with headers, task names, times (-HPt)
  funcgraph -p 198 vfs_read         # PID 198 only
  funcgraph -L 201 vfs_read         # thread 201 only
  funcgraph -d 1 do_sys_openat2 > out   # trace for 1 second
  funcgraph -C do_nanosleep         # on-CPU time only (sleeps left out)
  funcgraph -D -T vfs_read          # no durations; comment closing braces
  funcgraph vfs_read vfs_write      # several functions
  funcgraph -x 'security_*' do_sys_openat2   # hide these calls' graphs
  funcgraph --threshold 1000 vfs_read        # graphs of calls over 1 ms
  funcgraph --retval do_sys_openat2 # return values (Linux 6.5+, CONFIG_FUNCTION_GRAPH_RETVAL)
  funcgraph -j -d 5 vfs_read        # one JSON object per graph
  funcgraph -w open.dat -d 5 do_sys_openat2  # record into a trace.dat file
  funcgraph --read open.dat -m 3    # its graphs, three levels deep (any machine)
  funcgraph --read trace.dat        # trace-cmd record -p function_graph's file";

const LONG_ABOUT: &str = "\
Trace the graphs of kernel function calls below the given functions (names or globs of \
traceable functions, as in available_filter_functions) with ftrace's function_graph \
tracer, and print them in the kernel's own graph shape: CPU, duration, and each call \
indented by depth, `func() {` ... `}`, or `func();` for a call with nothing shown inside. \
The graphs are rebuilt from ftrace's binary buffer per task, not per CPU: tasks running \
on several CPUs never mix, a task that moves to another CPU keeps its graph, and depth \
limits, exclusions and thresholds stay right. Lost events are reported (CPU:N [LOST n \
EVENTS]) and marked where they cut a graph; a call whose exit was lost has no duration \
(nothing is made up). Starting takes seconds: the kernel patches every traceable \
function (with -m 1, only those traced).

Fields: CPU) the CPU that recorded the line. With -P, the task as comm-pid (the name cut \
to 7 characters, as the kernel does). DURATION: the call's time from entry to return in \
us, from the kernel's own call and return times, on `func();` and `}` lines; marks for \
long calls: + over 10 us, ! over 100 us, # over 1 ms, * over 10 ms, @ over 100 ms, $ over \
1 s. A parent's duration includes its children's. The times are the kernel's own call \
and return times, read from one CPU's clock; a call that returned on another CPU, or \
that those times make shorter than a call shown inside it (an interrupt taken between \
its return and its record), is timed from its records' time stamps instead (one clock \
for all CPUs). With -C, time the task spent switched out (asleep or preempted) is left \
out. With -t, the time stamp (seconds of CLOCK_MONOTONIC) of the line's record. When the \
lines of a CPU go from one task to another, a banner names both, as in the kernel's \
text. With --json, one object per graph: func, cpu, ts (ns), duration_ns (null when \
unknown), end (returned, exit lost, entry lost, running), calls (nested), and pid and \
comm on the outermost call.

Where it runs: on Linux 6.11 and later an instance can run function_graph (its \
available_tracers lists it), and funcgraph runs it in its own instance (set_ftrace_pid, \
function-fork and the buffer are the instance's). But set_graph_function, \
set_graph_notrace, max_graph_depth and tracing_thresh exist only at the top level there, \
and apply to every function_graph tracer: funcgraph adds its functions to \
set_graph_function, shared with other funcgraph runs (each shows only its own graphs) \
and taken out at the end, and refuses when someone else runs function_graph or has \
functions in that list (-F adds them anyway). Depth limits and exclusions are then \
applied by funcgraph (the kernel still records the hidden calls), and -C counts \
switched-out time from sched_switch events in the instance. Before Linux 6.11 an \
instance cannot run function_graph: funcgraph takes the top level, only when its \
tracer is nop and no function filter, graph filter, PID filter, depth limit, threshold \
or the function profiler is set (it names what it finds; -F takes it anyway), one \
funcgraph at a time (a second one refuses), and puts every setting it changed back at \
the end, also after SIGINT, SIGTERM, SIGHUP, SIGQUIT or a closed output; a run killed \
with SIGKILL is undone by the next funcgraph. There the kernel applies -m \
(max_graph_depth), -x (set_graph_notrace) and -C (the sleep-time option) itself. Using \
any tracer makes the kernel allocate an unused top-level buffer (buffer_size_kb 7 \
(expanded: 1408) becomes 1408 KiB, rounded up to whole sub-buffers); -b resizes it for \
the run (written back afterwards, rounded by the kernel to whole sub-buffers). Once any \
trace buffer was sized since boot (ftrace-tools size their instances' with -b, some \
tools by default), the kernel leaves that buffer at 7 KiB: funcgraph then gives it 1408 \
KiB for the run. With -m 1, wherever it runs, only the functions traced are hooked \
(set_ftrace_filter): the kernel patches those alone instead of every traceable function, \
which makes starting and ending cheaper. --retval needs a kernel that records return values (Linux 6.5 or later \
built with CONFIG_FUNCTION_GRAPH_RETVAL); elsewhere funcgraph refuses it and says why.

Recording (-w FILE): the records are copied into a trace.dat file, with /proc/kallsyms \
for the function names, and the whole graphs are kept: -m, -x, -C, --threshold, --retval \
and the output options apply when the file is read, and are refused with -w (sched_switch \
events are recorded as well, for a later -C). --read FILE builds the graphs from the \
file's records with the file's symbols and task names: ours, or trace-cmd record -p \
function_graph's; with no function given, every call at the outermost level of the \
file's records starts a graph (as trace-cmd report shows them), with functions, only \
the graphs of those.

Requirements: root, tracefs (mounted if needed), a usable function tracer with \
CONFIG_FUNCTION_GRAPH_TRACER and CONFIG_DYNAMIC_FTRACE; function_graph in an instance \
needs Linux 6.11 or later (earlier kernels: the top level, as above).

Overhead: every call and return of every function below the traced ones is recorded, \
two events per call, a few hundred ns each; that includes the calls that --threshold \
hides, and in an instance those that -m and -x hide. Code that makes many short calls, \
as most system calls do, runs many times slower while traced (perf-tools warns of at \
least 50%), and the full graph of a busy function can make events faster than \
funcgraph reads them: those are lost, and reported. Trace one process (-p), cut the \
depth (-m) and keep to narrow functions. Starting and ending take seconds: the kernel \
patches every traceable function, and patches it back (with -m 1, only the functions \
traced).";

/// Trace kernel function-call graphs with durations.
#[derive(Debug, Parser)]
#[command(
    name = "funcgraph",
    version,
    about = "Trace kernel function-call graphs, with durations",
    long_about = LONG_ABOUT,
    override_usage = "funcgraph [-aCDhHPtT] [-m maxdepth] [-p PID] [-L TID] [-d secs] [-x FUNC]... [--threshold US] [--retval] [-j] [-F] [-b KB] [-w FILE] funcstring...\n       funcgraph --read FILE [-aCDhHPtT] [-m maxdepth] [-x FUNC]... [--threshold US] [--retval] [-j] [funcstring...]",
    after_help = EXAMPLES
)]
pub struct Args {
    /// All info: headers, task names and time stamps (same as -HPt).
    #[arg(short = 'a', long = "all")]
    pub all: bool,
    /// On-CPU time only: leave out the time a call spent switched out
    /// (sleeping or preempted).
    #[arg(short = 'C', long = "on-cpu")]
    pub on_cpu: bool,
    /// Do not show durations.
    #[arg(short = 'D', long = "no-duration")]
    pub no_duration: bool,
    #[command(flatten)]
    pub headers: HeadersOpt,
    /// Show task names and PIDs.
    #[arg(short = 'P', long = "proc")]
    pub proc: bool,
    /// Show time stamps (seconds, CLOCK_MONOTONIC).
    #[arg(short = 't', long = "timestamps")]
    pub timestamps: bool,
    /// Comment closing braces with the function name (`} /* func */`).
    #[arg(short = 'T', long = "tails")]
    pub tails: bool,
    /// Show this many levels at most (1: the traced functions alone).
    #[arg(short = 'm', long = "max-depth", value_name = "MAXDEPTH", value_parser = parse_depth)]
    pub max_depth: Option<u32>,
    #[command(flatten)]
    pub task: TaskOpts,
    #[command(flatten)]
    pub duration: DurationOpt,
    /// Hide the calls of these functions (names or globs) and everything
    /// they call; their time stays in their callers' durations. Repeatable.
    #[arg(short = 'x', long = "exclude", value_name = "FUNC")]
    pub exclude: Vec<String>,
    /// Show only graphs whose traced call took at least US microseconds,
    /// each whole (with everything it called).
    #[arg(long = "threshold", value_name = "US", value_parser = parse_us)]
    pub threshold: Option<u64>,
    /// Show return values (kernels that record them: Linux 6.5 or later
    /// with CONFIG_FUNCTION_GRAPH_RETVAL).
    #[arg(long = "retval")]
    pub retval: bool,
    #[command(flatten)]
    pub json: JsonOpt,
    /// Take the top level even if someone seems to use it, or share
    /// set_graph_function with other users (their settings are put back).
    #[arg(short = 'F', long = "force")]
    pub force: bool,
    #[command(flatten)]
    pub buffer: BufferOpt,
    #[command(flatten)]
    pub write: WriteOpt,
    #[command(flatten)]
    pub read: ReadOpt,
    /// The functions to graph: names or globs of traceable kernel functions
    /// (with --read: of the file's; none: every graph in the file).
    #[arg(value_name = "FUNCSTRING", required_unless_present = "read")]
    pub funcs: Vec<String>,
}

ftrace_common::cli_tests!(Args);

impl Args {
    /// The patterns given for the graphs, each once, sorted.
    pub fn patterns(&self) -> Vec<String> {
        let mut p = self.funcs.clone();
        p.sort();
        p.dedup();
        p
    }
}

fn parse_depth(s: &str) -> std::result::Result<u32, String> {
    match s.parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("'{s}' is not a depth (1 or more)")),
    }
}

fn parse_us(s: &str) -> std::result::Result<u64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v < 1e12 => Ok((v * 1000.0).round() as u64),
        _ => Err(format!("'{s}' is not a positive number of microseconds")),
    }
}

#[cfg(test)]
pub fn args(v: &[&str]) -> Args {
    Args::try_parse_from(std::iter::once("funcgraph").chain(v.iter().copied())).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn perf_tools_forms_parse() {
        let a = args(&["-m", "3", "do_sys_open"]);
        assert_eq!(a.max_depth, Some(3));
        let a = args(&["-a", "do_sys_open"]);
        assert!(a.all);
        let a = args(&["-p", "198", "vfs_read"]);
        assert_eq!(a.task.pid, Some(198));
        let a = args(&["-d", "1", "-CDHPtT", "-L", "5", "do_sys_open"]);
        assert_eq!(a.duration.duration, Some(Duration::from_secs(1)));
        assert!(a.on_cpu && a.no_duration && a.headers.headers && a.proc);
        assert!(a.timestamps && a.tails);
        assert_eq!(a.task.tid, Some(5));
        let a = args(&[
            "--threshold",
            "20.5",
            "-x",
            "getname",
            "-x",
            "security_*",
            "b",
            "a",
            "b",
        ]);
        assert_eq!(a.threshold, Some(20_500));
        assert_eq!(a.exclude, ["getname", "security_*"]);
        assert_eq!(a.funcs, ["b", "a", "b"]);
        assert_eq!(a.patterns(), ["a", "b"]);
        for bad in [
            &[][..],
            &["-m", "0", "x"],
            &["-p", "1", "-L", "2", "x"],
            &["-b", "0", "x"],
        ] {
            let v = std::iter::once("funcgraph").chain(bad.iter().copied());
            assert!(Args::try_parse_from(v).is_err(), "{bad:?}");
        }
    }
}
