//! funcslower's command line: its options, help and examples.

use clap::Parser;
use ftrace_common::app::opts::{BufferOpt, DurationOpt, HeadersOpt, JsonOpt, TaskOpts};

pub const EXAMPLES: &str = "\
Examples:
  funcslower do_nanosleep 10000      # do_nanosleep() calls slower than 10 ms
  funcslower -P vfs_read 10000       # with the task's name and PID
  funcslower -a ext4_readdir 5000    # headers, task names and time stamps (-HPt)
  funcslower -p 198 vfs_read 10000   # PID 198 only
  funcslower -L 201 vfs_read 10000   # thread 201 only
  funcslower -C vfs_read 1000        # on-CPU time over 1 ms (sleeps left out)
  funcslower -d 5 vfs_write 500 > out   # for 5 seconds
  funcslower --graph vfs_read 10000  # each slow call's whole graph
  funcslower -j do_nanosleep 10000   # one JSON object per slow call";

const LONG_ABOUT: &str = "\
Show the calls of a kernel function (a name or glob of traceable functions, as in \
available_filter_functions) that took at least LATENCY_US microseconds, with ftrace's \
function_graph tracer, one line per slow call in the kernel's graph shape: CPU, \
duration, `func();`. With --graph, each slow call is shown with everything it called \
(as funcgraph shows it). Calls are timed from the kernel's own call and return times; \
the calls below the threshold are counted and the count printed at the end.

Fields: CPU) the CPU that recorded the call's return. With -P, the task as comm-pid (the \
name cut to 7 characters, as the kernel does). DURATION: the call's time from entry to \
return in us, marked as the kernel marks long calls (+ over 10 us, ! over 100 us, # over \
1 ms, * over 10 ms, @ over 100 ms, $ over 1 s). With -C, time the task spent switched out \
(asleep or preempted) is left out, and the threshold applies to the time left. With -t, \
the time stamp (seconds of CLOCK_MONOTONIC) of the line's record. Return values are \
shown (`/* = 0 */`, errors by name) where the kernel records them (Linux 6.5 or later \
built with CONFIG_FUNCTION_GRAPH_RETVAL); elsewhere funcslower says once that it cannot. \
With --json, one object per slow call: func, cpu, ts (ns), duration_ns, end, retval \
where known, pid and comm (and calls, nested, with --graph).

Where it runs: as funcgraph. On Linux 6.11 and later function_graph runs in \
funcslower's own instance, the function is added to the global set_graph_function \
(shared with funcgraph runs, taken out at the end) and the threshold is applied by \
funcslower; the kernel's tracing_thresh is global there and left alone (funcslower \
refuses to run when someone else set it, -F runs anyway). Before Linux 6.11 it takes \
the top level, only when nobody seems to use it (-F takes it anyway), and puts every \
setting back at the end; there the kernel records only the traced function itself \
(max_graph_depth 1) unless --graph is given. Without --graph, wherever it runs, only \
the traced function is hooked (set_ftrace_filter), so the kernel patches that one \
function and not every traceable one.

Requirements: root, tracefs (mounted if needed), a usable function tracer with \
CONFIG_FUNCTION_GRAPH_TRACER and CONFIG_DYNAMIC_FTRACE.

Overhead: every call and return of the function is recorded (and with --graph, of \
everything it calls), fast calls too: a few hundred ns each. Keep to \
narrow functions, or one process (-p). With --graph, starting and ending take seconds: \
the kernel patches every traceable function, and patches it back.";

/// Show kernel function calls slower than a threshold.
#[derive(Debug, Parser)]
#[command(
    name = "funcslower",
    version,
    about = "Show kernel function calls slower than a threshold",
    long_about = LONG_ABOUT,
    override_usage = "funcslower [-aCHPt] [-p PID] [-L TID] [-d secs] [--graph] [-j] [-F] [-b KB] funcstring latency_us",
    after_help = EXAMPLES
)]
pub struct Args {
    /// All info: headers, task names and time stamps (same as -HPt).
    #[arg(short = 'a', long = "all")]
    pub all: bool,
    /// On-CPU time only: leave out the time a call spent switched out
    /// (sleeping or preempted); the threshold applies to what is left.
    #[arg(short = 'C', long = "on-cpu")]
    pub on_cpu: bool,
    #[command(flatten)]
    pub headers: HeadersOpt,
    /// Show task names and PIDs.
    #[arg(short = 'P', long = "proc")]
    pub proc: bool,
    /// Show time stamps (seconds, CLOCK_MONOTONIC).
    #[arg(short = 't', long = "timestamps")]
    pub timestamps: bool,
    #[command(flatten)]
    pub task: TaskOpts,
    #[command(flatten)]
    pub duration: DurationOpt,
    /// Show each slow call's whole graph (everything it called).
    #[arg(long = "graph")]
    pub graph: bool,
    #[command(flatten)]
    pub json: JsonOpt,
    /// Take the top level even if someone seems to use it, or share
    /// set_graph_function with other users (their settings are put back).
    #[arg(short = 'F', long = "force")]
    pub force: bool,
    #[command(flatten)]
    pub buffer: BufferOpt,
    /// The function: a name or glob of traceable kernel functions.
    #[arg(value_name = "FUNCSTRING")]
    pub func: String,
    /// Show calls that took at least this many microseconds.
    #[arg(value_name = "LATENCY_US", value_parser = parse_us)]
    pub latency: u64,
}

ftrace_common::cli_tests!(Args);

/// Microseconds (> 0) to nanoseconds.
fn parse_us(s: &str) -> std::result::Result<u64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v < 1e12 => match (v * 1000.0).round() as u64 {
            0 => Err(format!("'{s}' is less than a nanosecond (0.001 us)")),
            ns => Ok(ns),
        },
        _ => Err(format!("'{s}' is not a positive number of microseconds")),
    }
}

#[cfg(test)]
pub fn args(v: &[&str]) -> Args {
    Args::try_parse_from(std::iter::once("funcslower").chain(v.iter().copied())).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn perf_tools_forms_parse() {
        let a = args(&["do_nanosleep", "10000"]);
        assert_eq!((a.func.as_str(), a.latency), ("do_nanosleep", 10_000_000));
        let a = args(&["-a", "-C", "-p", "198", "-d", "2", "vfs_read", "0.5"]);
        assert!(a.all && a.on_cpu);
        assert_eq!(a.task.pid, Some(198));
        assert_eq!(a.duration.duration, Some(Duration::from_secs(2)));
        assert_eq!(a.latency, 500);
        let a = args(&["-HPt", "-L", "5", "--graph", "-j", "f", "1"]);
        assert!(a.headers.headers && a.proc && a.timestamps && a.graph && a.json.json);
        assert_eq!(a.task.tid, Some(5));
        for bad in [
            &[][..],
            &["f"],
            &["f", "0"],
            &["f", "0.0001"],
            &["f", "-3"],
            &["f", "ten"],
            &["f", "1", "extra"],
            &["-p", "1", "-L", "2", "f", "1"],
        ] {
            let v = std::iter::once("funcslower").chain(bad.iter().copied());
            assert!(Args::try_parse_from(v).is_err(), "{bad:?}");
        }
    }
}
