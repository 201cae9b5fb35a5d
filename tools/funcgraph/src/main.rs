//! funcgraph - trace kernel function-call graphs, with durations.
//!
//! USAGE: funcgraph [-aCDhHPtT] [-m maxdepth] [-p PID] [-L TID] [-d secs]
//!                  [-x FUNC] [--threshold US] [--retval] [-j] funcstring...
//!
//! The function_graph tracer records every call and return below the
//! given functions; funcgraph reads the records from the binary trace
//! buffer and prints them in the kernel's graph shape (`CPU) DURATION |
//! func() {`), rebuilt per task so that CPUs never mix and migrations are
//! followed. Depth limits, exclusions, a duration threshold and on-CPU
//! time are applied while rebuilding; lost events are marked where they
//! cut a graph.
//!
//! Where it runs (what the kernels of tests/vm show; see the man page):
//! - function_graph in funcgraph's own instance where the kernel allows it
//!   (Linux 6.12); `set_graph_function` is global there, shared by our
//!   runs (graphfilter.rs);
//! - else (Linux 6.1) at the top level, only if nobody seems to use it
//!   (-F overrides), every setting put back afterwards (toplevel.rs).
//!
//! REQUIREMENTS: root, tracefs, CONFIG_FUNCTION_GRAPH_TRACER with a usable
//! function tracer. The host kernel of this project refuses the function
//! tracer (EPERM): funcgraph says so and exits 2.
//!
//! OVERHEAD: every call and return of every kernel function below the
//! traced ones is recorded (two events, each a few hundred ns; more under
//! emulation): a busy function can slow the system by 50% or more
//! (perf-tools warns the same). Starting takes seconds: the kernel patches
//! every traceable function. See bench-funcgraph and the README.

mod decode;
mod emit;
mod fast;
mod funcs;
mod graph;
mod graphfilter;
mod render;
#[cfg(test)]
mod replay;
mod sink;
#[cfg(test)]
mod speed;

use clap::Parser;
use decode::Decoder;
use emit::{EmitConfig, Emitter};
use ftrace_common::app::cli::{self, CommonArgs};
use ftrace_common::app::output::Output;
use ftrace_common::app::stream::{stream, StreamOpts};
use ftrace_common::base::glob::Glob;
use ftrace_common::buffer::format::EventFormat;
use ftrace_common::kernel::functions::FunctionList;
use ftrace_common::kernel::proc::CommCache;
use ftrace_common::kernel::tracefs::Tracefs;
use ftrace_common::lifecycle::instance::{self, Instance, InstanceOptions};
use ftrace_common::lifecycle::toplevel::{self, Kind, TopLevel};
use ftrace_common::sym::kallsyms::KernelSymbols;
use ftrace_common::{
    app::signals, kernel::caps, kernel::proc, lifecycle::sweep, Error, ErrorKind, Result,
};
use funcs::Funcs;
use graph::{Builder, Config};
use graphfilter::GraphFilter;
use render::{Columns, Text};
use sink::{GraphSink, NameTable, Printer};
use std::collections::HashSet;
use std::process::ExitCode;
use std::time::Duration;

const EXAMPLES: &str = "\
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
  funcgraph -j -d 5 vfs_read        # one JSON object per graph";

/// The kernel's default per-CPU buffer (trace_buf_size, 1408 KiB), which
/// the top level gets when a tracer starts, unless a buffer was sized since
/// boot.
const TOP_LEVEL_DEFAULT_KB: u32 = 1408;

/// Trace kernel function-call graphs with durations.
#[derive(Debug, Parser)]
#[command(
    name = "funcgraph",
    version,
    about = "Trace kernel function-call graphs, with durations",
    long_about = "Trace the graphs of kernel function calls below the given functions \
(names or globs of traceable functions, as in available_filter_functions) with ftrace's \
function_graph tracer, and print them in the kernel's own graph shape: CPU, duration, and \
each call indented by depth, `func() {` ... `}`, or `func();` for a call with nothing \
shown inside. The graphs are rebuilt from ftrace's binary buffer per task, not per CPU: \
tasks running on several CPUs never mix, a task that moves to another CPU keeps its \
graph, and depth limits, exclusions and thresholds stay right. Lost events are reported \
(CPU:N [LOST n EVENTS]) and marked where they cut a graph; a call whose exit was lost has \
no duration (nothing is made up). Starting takes seconds on a real machine, more under \
emulation: the kernel patches every traceable function.

Fields: CPU) the CPU that recorded the line. With -P, the task as comm-pid (the name cut \
to 7 characters, as the kernel does). DURATION: the call's time from entry to return in \
us, from the kernel's own call and return times, on `func();` and `}` lines; marks for \
long calls: + over 10 us, ! over 100 us, # over 1 ms, * over 10 ms, @ over 100 ms, $ over \
1 s. A parent's duration includes its children's. The times are the kernel's own call \
and return times, read from one CPU's clock; a call that returned on another CPU, or \
that those times make shorter than a call shown inside it (an interrupt taken between \
its return and its record, seen in the test guests), is timed from its records' time \
stamps instead (one clock for all CPUs). With -C, time the task spent switched \
out (asleep or preempted) is left out. With -t, the time stamp (seconds of \
CLOCK_MONOTONIC) of the line's record. When the lines of a CPU go from one task to \
another, a banner names both, as in the kernel's text. With --json, one object per \
graph: func, cpu, ts (ns), duration_ns (null when unknown), end (returned, exit lost, \
entry lost, running), calls (nested), and pid and comm on the outermost call.

Where it runs (as seen in the Debian kernels of tests/vm): on Linux 6.12 an instance \
can run function_graph, and funcgraph runs it in its own instance (set_ftrace_pid, \
function-fork and the buffer are the instance's). But set_graph_function, \
set_graph_notrace, max_graph_depth and tracing_thresh exist only at the top level there, \
and apply to every function_graph tracer: funcgraph adds its functions to \
set_graph_function, shared with other funcgraph runs (each shows only its own graphs) \
and taken out at the end, and refuses when someone else runs function_graph or has \
functions in that list (-F adds them anyway). Depth limits and exclusions are then \
applied by funcgraph (the kernel still records the hidden calls), and -C counts \
switched-out time from sched_switch events in the instance. On Linux 6.1 an instance \
offers only function and nop: funcgraph takes the top level, only when its tracer is \
nop and no function filter, graph filter, PID filter, depth limit, threshold or the \
function profiler is set (it names what it finds; -F takes it anyway), one funcgraph at \
a time (a second one refuses), and puts every setting it changed back at the end, also \
after SIGINT, SIGTERM, SIGHUP, SIGQUIT or a closed output; a run killed with SIGKILL is \
undone by the next funcgraph. There the kernel applies -m (max_graph_depth), -x \
(set_graph_notrace) and -C (the sleep-time option) itself. Using any tracer makes the \
kernel allocate an unused top-level buffer (buffer_size_kb 7 (expanded: 1408) becomes \
1410); -b resizes it for the run (written back afterwards, rounded by the kernel to whole \
sub-buffers). Once any trace buffer was sized since boot (ftrace-tools size their \
instances' with -b, some tools by default), the kernel leaves that buffer at 7 KiB: \
funcgraph then gives it 1408 KiB for the run. --retval needs a kernel that records return values (Linux 6.5 or later \
with CONFIG_FUNCTION_GRAPH_RETVAL): none of the test kernels does, and funcgraph says so.

Requirements: root, tracefs (mounted if needed), a usable function tracer with \
CONFIG_FUNCTION_GRAPH_TRACER and CONFIG_DYNAMIC_FTRACE.

Overhead: every call and return of every function below the traced ones is recorded, \
two events per call: the traced code runs many times slower while traced (perf-tools warns \
of at least 50%). In the test guests (emulated CPUs; bench-funcgraph) an open() loop ran \
19 to 59 times slower with do_sys_openat2 graphed in full (about 400 events per open), and \
funcgraph, reading 100 000 to 400 000 events a second there, lost 41 to 70% of them \
(reported); with -m 1 on 6.1, where the kernel applies the depth limit, 2.7 to 4.4 times \
slower and none lost. Trace one process (-p), cut the depth (-m) and keep to narrow \
functions. Starting and ending take seconds (5 to 11 s each in the guests): the kernel \
patches every traceable function.",
    override_usage = "funcgraph [-aCDhHPtT] [-m maxdepth] [-p PID] [-L TID] [-d secs] [-x FUNC]... [--threshold US] [--retval] [-j] [-F] [-b KB] funcstring...",
    after_help = EXAMPLES
)]
struct Args {
    /// All info: headers, task names and time stamps (same as -HPt).
    #[arg(short = 'a', long = "all")]
    all: bool,
    /// On-CPU time only: leave out the time a call spent switched out
    /// (sleeping or preempted).
    #[arg(short = 'C', long = "on-cpu")]
    on_cpu: bool,
    /// Do not show durations.
    #[arg(short = 'D', long = "no-duration")]
    no_duration: bool,
    /// Print column headers.
    #[arg(short = 'H', long = "headers")]
    headers: bool,
    /// Show task names and PIDs.
    #[arg(short = 'P', long = "proc")]
    proc: bool,
    /// Show time stamps (seconds, CLOCK_MONOTONIC).
    #[arg(short = 't', long = "timestamps")]
    timestamps: bool,
    /// Comment closing braces with the function name (`} /* func */`).
    #[arg(short = 'T', long = "tails")]
    tails: bool,
    /// Show this many levels at most (1: the traced functions alone).
    #[arg(short = 'm', long = "max-depth", value_name = "MAXDEPTH", value_parser = parse_depth)]
    max_depth: Option<u32>,
    /// Trace this process only (all its threads, also ones started later).
    #[arg(short = 'p', long = "pid", value_name = "PID", value_parser = cli::parse_pid, conflicts_with = "tid")]
    pid: Option<u32>,
    /// Trace this thread only.
    #[arg(short = 'L', long = "tid", value_name = "TID", value_parser = cli::parse_pid)]
    tid: Option<u32>,
    /// Trace for this many seconds, then end (output streams meanwhile).
    #[arg(short = 'd', long = "duration", value_name = "SECS", value_parser = cli::parse_secs)]
    duration: Option<Duration>,
    /// Hide the calls of these functions (names or globs) and everything
    /// they call; their time stays in their callers' durations. Repeatable.
    #[arg(short = 'x', long = "exclude", value_name = "FUNC")]
    exclude: Vec<String>,
    /// Show only graphs whose traced call took at least US microseconds,
    /// each whole (with everything it called).
    #[arg(long = "threshold", value_name = "US", value_parser = parse_us)]
    threshold: Option<u64>,
    /// Show return values (kernels that record them: Linux 6.5 or later
    /// with CONFIG_FUNCTION_GRAPH_RETVAL).
    #[arg(long = "retval")]
    retval: bool,
    /// Print one JSON object per graph (nested calls).
    #[arg(short = 'j', long = "json")]
    json: bool,
    /// Take the top level even if someone seems to use it, or share
    /// set_graph_function with other users (their settings are put back).
    #[arg(short = 'F', long = "force")]
    force: bool,
    #[command(flatten)]
    common: CommonArgs,
    /// The functions to graph: names or globs of traceable kernel functions.
    #[arg(value_name = "FUNCSTRING", required = true)]
    funcs: Vec<String>,
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

fn main() -> ExitCode {
    let args = match cli::parse_or_exit::<Args>() {
        Ok(a) => a,
        Err(code) => return code,
    };
    cli::run("funcgraph", || funcgraph(args))
}

fn stop() -> bool {
    signals::stop_requested()
}

/// Interrupted setup: the guards undo it; the run ends quietly.
fn interrupted(e: &Error) -> bool {
    e.is_interrupted()
}

/// A pattern as set_graph_function takes it: one token, no commands.
fn check_pattern(p: &str) -> Result<()> {
    let ok = !p.is_empty()
        && p.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '*' | '?' | '[' | ']'));
    if !ok {
        return Err(Error::usage(format!(
            "'{p}' is not a function name or glob (letters, digits, _ . * ? [ ] only)"
        )));
    }
    Ok(())
}

/// The function names `patterns` match, each pattern matching something.
fn match_functions(
    list: &FunctionList,
    patterns: &[String],
    what: &str,
) -> Result<HashSet<String>> {
    let mut names = HashSet::new();
    for p in patterns {
        check_pattern(p)?;
        let g = Glob::new(p)?;
        let found = list.require_matching(p, &format!("{what} "), |n| g.matches(n))?;
        names.extend(found.into_iter().map(|f| f.name.clone()));
    }
    Ok(names)
}

/// Takes the top level: refuses (kind Busy) if another run of ours holds
/// it, or if someone else seems to use it and `force` is off.
fn take_top_level(tfs: &Tracefs, force: bool) -> Result<TopLevel> {
    let top = match TopLevel::acquire(tfs, "funcgraph")? {
        Ok(t) => t,
        Err(holder) => {
            return Err(Error::new(
                ErrorKind::Busy,
                format!(
                    "{holder} is using the top level of tracefs; this kernel runs function_graph only at the top level (not in instances), so one run at a time"
                ),
            ))
        }
    };
    let why = toplevel::users(tfs);
    if !why.is_empty() && !force {
        return Err(Error::new(
            ErrorKind::Busy,
            format!(
                "the top level of tracefs seems in use ({}); this kernel runs function_graph only at the top level. Use -F to take it anyway (funcgraph puts every setting back afterwards)",
                why.join("; ")
            ),
        ));
    }
    Ok(top)
}

/// Where function_graph runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Instance,
    TopLevel,
}

fn tracing_line(args: &Args, place: Place) -> String {
    let funcs: Vec<String> = args.funcs.iter().map(|f| format!("\"{f}\"")).collect();
    let mut s = format!("Tracing {}", funcs.join(" "));
    if let Some(p) = args.pid {
        s.push_str(&format!(" for PID {p}"));
    }
    if let Some(t) = args.tid {
        s.push_str(&format!(" for TID {t}"));
    }
    if let Some(d) = args.duration {
        let secs = d.as_secs_f64();
        s.push_str(&format!(
            " for {secs} second{}",
            if secs == 1.0 { "" } else { "s" }
        ));
    }
    s.push_str(match place {
        Place::Instance => " (function_graph in a private instance)",
        Place::TopLevel => " (function_graph at the top level)",
    });
    s.push_str("... Ctrl-C to end.");
    s
}

fn funcgraph(args: Args) -> Result<()> {
    // Options.
    let cols = Columns {
        abs_time: args.timestamps || args.all,
        proc: args.proc || args.all,
        duration: !args.no_duration,
        tail: args.tails,
    };
    let headers = (args.headers || args.all) && !args.json;

    // Checks.
    let tfs = Tracefs::open()?;
    caps::require(&tfs, caps::Feature::FunctionGraph)?;
    for p in args.funcs.iter().chain(args.exclude.iter()) {
        check_pattern(p)?;
    }
    if let Some(p) = args.pid {
        proc::require_exists(p)?;
    }
    if let Some(t) = args.tid {
        proc::require_exists(t)?;
    }
    let list = FunctionList::load(&tfs)?;
    let roots = match_functions(&list, &args.funcs, "the function")?;
    let excluded = match_functions(&list, &args.exclude, "the exclusion")?;
    let entry_fmt = EventFormat::parse(&tfs.read("events/ftrace/funcgraph_entry/format")?)?;
    let exit_fmt = EventFormat::parse(&tfs.read("events/ftrace/funcgraph_exit/format")?)?;
    if args.retval && exit_fmt.field("retval").is_none() {
        return Err(Error::unsupported(
            "this kernel does not record return values of function_graph calls (its funcgraph_exit event has no retval field: that needs Linux 6.5 or later built with CONFIG_FUNCTION_GRAPH_RETVAL)",
        ));
    }
    let ksyms = KernelSymbols::load()?;
    sweep::sweep_dead(&tfs);

    // Setup. Guards drop in reverse order: the reader, the instance (its
    // tracer stops), then the top level or the shared graph filter.
    let mut top: Option<TopLevel> = None;
    let mut graph_filter: Option<GraphFilter> = None;
    let ncpus;
    let kb = args
        .common
        .buffer_kb
        .unwrap_or_else(|| instance::default_buffer_kb(proc::online_cpus()));
    if args.common.buffer_kb == Some(0) {
        return Err(Error::usage("the buffer size must be at least 1 KiB"));
    }
    let mut inst = Instance::create_with(
        &tfs,
        "funcgraph",
        &InstanceOptions {
            kernel_buffer: true,
            ..InstanceOptions::default()
        },
    )?;
    let place = if inst
        .read("available_tracers")
        .map(|t| t.split_whitespace().any(|t| t == "function_graph"))
        .unwrap_or(false)
    {
        Place::Instance
    } else {
        Place::TopLevel
    };
    // On-CPU time: by the kernel where funcgraph owns the setting (the top
    // level), else from sched_switch events in the instance.
    let mut user_on_cpu = false;
    let max_depth = args.max_depth;
    let mut notes: Vec<String> = Vec::new();
    match place {
        Place::Instance => {
            inst.write("buffer_size_kb", &kb.to_string()).map_err(|e| {
                e.context(format!(
                    "cannot get a {kb} KiB per-CPU trace buffer (try a smaller -b)"
                ))
            })?;
            let thresh = toplevel::current(&tfs, "tracing_thresh", Kind::Plain).unwrap_or_default();
            if !thresh.is_empty() && thresh != "0" && !args.force {
                return Err(Error::new(
                    ErrorKind::Busy,
                    format!("tracing_thresh is {thresh} (set by someone else; global on this kernel): function_graph then records only returns slower than that, in every instance, and no graphs. Use -F to trace anyway"),
                ));
            }
            let depth = toplevel::current(&tfs, "max_graph_depth", Kind::Plain).unwrap_or_default();
            if !depth.is_empty() && depth != "0" {
                notes.push(format!("max_graph_depth is {depth} (global, set by someone else): graphs are cut at that depth"));
            }
            let nt = graphfilter::listed_notrace(&tfs);
            if !nt.is_empty() {
                notes.push(format!(
                    "set_graph_notrace (global) hides {}: set by someone else",
                    nt.join(", ")
                ));
            }
            let sleep_time =
                toplevel::current(&tfs, "options/sleep-time", Kind::Plain).unwrap_or_default();
            if sleep_time == "0" {
                notes.push("the kernel's sleep-time option is off (global, set by someone else): durations leave out time switched out".into());
            } else if args.on_cpu {
                user_on_cpu = true;
            }
            let mut patterns = args.funcs.clone();
            patterns.sort();
            patterns.dedup();
            match GraphFilter::acquire(&tfs, &list, &patterns, args.force, &stop) {
                Ok(g) => {
                    if !g.swept.is_empty() {
                        notes.push(format!(
                            "took the functions of funcgraph runs that did not end cleanly (PID {}) out of set_graph_function",
                            g.swept.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", ")
                        ));
                    }
                    if !g.foreign.is_empty() {
                        notes.push(format!(
                            "set_graph_function also holds {} (someone else's); kept",
                            g.foreign.join(", ")
                        ));
                    }
                    graph_filter = Some(g);
                }
                Err(e) if interrupted(&e) => return Ok(()),
                Err(e) => return Err(e),
            }
            if let Some(pid) = args.pid {
                inst.set_option("function-fork", true)?;
                let list = |t: &[u32]| {
                    t.iter()
                        .map(|t| t.to_string())
                        .collect::<Vec<_>>()
                        .join(" ")
                };
                inst.write("set_ftrace_pid", &list(&proc::threads(pid)?))?;
                ftrace_common::kernel::tracefs::write_file(
                    &inst.path("set_ftrace_pid"),
                    &list(&proc::threads(pid).unwrap_or_default()),
                    true,
                )?;
            } else if let Some(tid) = args.tid {
                inst.write("set_ftrace_pid", &tid.to_string())?;
            } else if inst.exists("set_ftrace_notrace_pid") {
                // Our own reads of the buffer must not feed back.
                inst.write("set_ftrace_notrace_pid", &std::process::id().to_string())?;
            }
            if user_on_cpu {
                if let Some(pid) = args.pid {
                    inst.set_event_pids(&proc::threads(pid)?, true)?;
                } else if let Some(tid) = args.tid {
                    inst.set_event_pids(&[tid], false)?;
                }
                inst.enable_event("sched", "sched_switch")?;
            }
            if inst.exists("events/sched/sched_process_exec/enable") {
                // Task names change at exec: the lines name them as they were.
                inst.enable_event("sched", "sched_process_exec")?;
            }
            if stop() {
                return Ok(());
            }
            inst.write("current_tracer", "function_graph")
                .map_err(|e| e.context("cannot start function_graph in funcgraph's instance"))?;
            ncpus = inst.cpus().len();
        }
        Place::TopLevel => {
            drop(inst);
            let mut t = take_top_level(&tfs, args.force)?;
            if let Some(r) = t.recovered.take() {
                eprintln!("funcgraph: {r}");
            }
            top = Some(t);
            let t = top.as_mut().expect("top level");
            t.set("tracing_on", Kind::Plain, "0")?;
            if toplevel::current(&tfs, "current_tracer", Kind::Plain)? != "nop" {
                t.set("current_tracer", Kind::Plain, "nop")?;
            }
            if tfs
                .read("trace_clock")
                .map(|c| {
                    c.split_whitespace()
                        .any(|w| w.trim_matches(['[', ']']) == instance::CLOCK)
                })
                .unwrap_or(false)
            {
                t.set("trace_clock", Kind::Clock, instance::CLOCK)?;
            }
            // The top level's buffer size is left alone unless asked: the
            // kernel rounds sizes to whole sub-buffers, so an old size
            // written back may not read the same.
            // But once any buffer was sized since boot (our own instances'
            // are), the kernel no longer expands the top level's 7 KiB
            // boot buffer when a tracer starts: graphs would be lost by
            // the thousand. Such a buffer gets the kernel's default size
            // for the run.
            let now = tfs.read("buffer_size_kb")?;
            let small = !now.contains("expanded")
                && toplevel::normalize(Kind::BufferKb, &now)
                    .parse::<u32>()
                    .is_ok_and(|kb| kb < TOP_LEVEL_DEFAULT_KB);
            let size = args
                .common
                .buffer_kb
                .or(small.then_some(TOP_LEVEL_DEFAULT_KB));
            if let Some(kb) = size {
                t.set("buffer_size_kb", Kind::BufferKb, &kb.to_string())
                    .map_err(|e| {
                        e.context(format!(
                            "cannot get a {kb} KiB per-CPU trace buffer (try a smaller -b)"
                        ))
                    })?;
            }
            for f in ["set_ftrace_filter", "set_ftrace_notrace"] {
                if !toplevel::current(&tfs, f, Kind::Functions)?.is_empty() {
                    t.set(f, Kind::Functions, "")?;
                }
            }
            if stop() {
                return Ok(());
            }
            let mut patterns = args.funcs.clone();
            patterns.sort();
            patterns.dedup();
            t.set("set_graph_function", Kind::Functions, &patterns.join("\n"))?;
            if !args.exclude.is_empty() {
                t.set(
                    "set_graph_notrace",
                    Kind::Functions,
                    &args.exclude.join("\n"),
                )?;
            } else if !toplevel::current(&tfs, "set_graph_notrace", Kind::Functions)?.is_empty() {
                t.set("set_graph_notrace", Kind::Functions, "")?;
            }
            if let Some(m) = args.max_depth {
                t.set("max_graph_depth", Kind::Plain, &m.to_string())?;
            } else if toplevel::current(&tfs, "max_graph_depth", Kind::Plain)? != "0" {
                t.set("max_graph_depth", Kind::Plain, "0")?;
            }
            if toplevel::current(&tfs, "tracing_thresh", Kind::Plain)? != "0" {
                t.set("tracing_thresh", Kind::Plain, "0")?;
            }
            if let Some(pid) = args.pid {
                t.set("options/function-fork", Kind::Plain, "1")?;
                let tids: Vec<String> = proc::threads(pid)?.iter().map(|t| t.to_string()).collect();
                t.set("set_ftrace_pid", Kind::Pids, &tids.join(" "))?;
                let more: Vec<String> = proc::threads(pid)
                    .unwrap_or_default()
                    .iter()
                    .map(|t| t.to_string())
                    .collect();
                ftrace_common::kernel::tracefs::write_file(
                    &tfs.path("set_ftrace_pid"),
                    &more.join(" "),
                    true,
                )?;
            } else if let Some(tid) = args.tid {
                t.set("set_ftrace_pid", Kind::Pids, &tid.to_string())?;
            } else {
                if !toplevel::current(&tfs, "set_ftrace_pid", Kind::Pids)?.is_empty() {
                    t.set("set_ftrace_pid", Kind::Pids, "")?;
                }
                if tfs.exists("set_ftrace_notrace_pid") {
                    t.set(
                        "set_ftrace_notrace_pid",
                        Kind::Pids,
                        &std::process::id().to_string(),
                    )?;
                }
            }
            let sleep = if args.on_cpu { "0" } else { "1" };
            if tfs.exists("options/sleep-time")
                && toplevel::current(&tfs, "options/sleep-time", Kind::Plain)? != sleep
            {
                t.set("options/sleep-time", Kind::Plain, sleep)?;
            }
            let exec_enable = "events/sched/sched_process_exec/enable";
            if tfs.exists(exec_enable) && toplevel::current(&tfs, exec_enable, Kind::Plain)? != "1"
            {
                t.set(exec_enable, Kind::Plain, "1")?;
            }
            if stop() {
                return Ok(());
            }
            t.set("current_tracer", Kind::Plain, "function_graph").map_err(|e| {
                if e.kind() == ErrorKind::Busy {
                    e.context("cannot start function_graph at the top level: someone holds the top-level trace_pipe open")
                } else {
                    e
                }
            })?;
            inst = Instance::top_level(&tfs);
            ncpus = inst.cpus().len();
        }
    }
    let switch_fmt = if user_on_cpu {
        Some(inst.event_format("sched", "sched_switch")?)
    } else {
        None
    };
    let exec_fmt = if inst.exists("events/sched/sched_process_exec/format") {
        inst.event_format("sched", "sched_process_exec").ok()
    } else {
        None
    };
    let dec =
        Decoder::new(&entry_fmt, &exit_fmt, switch_fmt.as_ref())?.with_exec(exec_fmt.as_ref());
    let mono = inst
        .read("trace_clock")
        .map(|c| c.contains(&format!("[{}]", instance::CLOCK)))
        .unwrap_or(false);
    let mut reader = inst.reader()?;
    if stop() {
        return Ok(());
    }
    inst.start()?;
    for n in &notes {
        eprintln!("funcgraph: note: {n}");
    }
    eprintln!("{}", tracing_line(&args, place));

    // Stream.
    let mut out = Output::new();
    if headers {
        for h in render::header(cols) {
            out.line(&h);
        }
    }
    let mut sink = GraphSink {
        dec,
        retval: args.retval,
        builder: Builder::new(Config {
            max_depth,
            on_cpu: user_on_cpu,
            // Where the kernel takes switched-out time off (the top level's
            // sleep-time), its times must be kept.
            global_ts: mono && !(place == Place::TopLevel && args.on_cpu),
        }),
        emitter: Emitter::new(EmitConfig {
            threshold: args.threshold,
            trees: args.json,
            on_cpu: args.on_cpu,
            ..EmitConfig::default()
        }),
        outs: Vec::new(),
        printer: Printer {
            out,
            text: Text::new(cols, ncpus),
            names: NameTable {
                funcs: Funcs::new(ksyms, roots, excluded),
                comms: CommCache::new(Some(tfs.path("saved_cmdlines"))),
            },
            json: args.json,
            buf: String::new(),
        },
    };
    let target = args.pid.or(args.tid);
    let mut gone =
        move || target.is_some_and(|p| !std::path::Path::new(&format!("/proc/{p}")).exists());
    let summary = stream(
        &mut reader,
        &mut sink,
        StreamOpts {
            duration: args.duration,
            ordered: true,
            stop_when: Some(&mut gone),
            ..StreamOpts::default()
        },
    )?;

    // Summary.
    if !summary.stopped_by_sink() {
        let mut outs = Vec::new();
        sink.builder.finish(&mut outs);
        sink.emitter.push(&outs, &mut sink.printer);
        sink.emitter.finish(&mut sink.printer);
    }
    sink.printer.out.flush();
    if let Some(e) = sink.printer.out.take_error() {
        return Err(Error::new(ErrorKind::Io, format!("writing output: {e}")));
    }
    if let Some(w) = summary.lost_warning() {
        eprintln!("funcgraph: {w}");
    }
    if args.threshold.is_some() {
        eprintln!(
            "funcgraph: {} graph{} shown, {} below the threshold",
            sink.emitter.graphs,
            if sink.emitter.graphs == 1 { "" } else { "s" },
            sink.emitter.below_threshold
        );
    }
    drop(reader);
    drop(inst);
    drop(top);
    drop(graph_filter);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn man_page_is_fresh() {
        cli::check_man_page(Args::command(), env!("CARGO_MANIFEST_DIR")).unwrap();
    }

    #[test]
    fn cli_is_consistent() {
        Args::command().debug_assert();
    }

    fn args(v: &[&str]) -> Args {
        Args::try_parse_from(std::iter::once("funcgraph").chain(v.iter().copied())).unwrap()
    }

    #[test]
    fn perf_tools_forms_parse() {
        let a = args(&["-m", "3", "do_sys_open"]);
        assert_eq!(a.max_depth, Some(3));
        let a = args(&["-a", "do_sys_open"]);
        assert!(a.all);
        let a = args(&["-p", "198", "vfs_read"]);
        assert_eq!(a.pid, Some(198));
        let a = args(&["-d", "1", "-CDHPtT", "-L", "5", "do_sys_open"]);
        assert_eq!(a.duration, Some(Duration::from_secs(1)));
        assert!(a.on_cpu && a.no_duration && a.headers && a.proc && a.timestamps && a.tails);
        assert_eq!(a.tid, Some(5));
        let a = args(&[
            "--threshold",
            "20.5",
            "-x",
            "getname",
            "-x",
            "security_*",
            "a",
            "b",
        ]);
        assert_eq!(a.threshold, Some(20_500));
        assert_eq!(a.exclude, ["getname", "security_*"]);
        assert_eq!(a.funcs, ["a", "b"]);
        assert!(Args::try_parse_from(["funcgraph"]).is_err());
        assert!(Args::try_parse_from(["funcgraph", "-m", "0", "x"]).is_err());
        assert!(Args::try_parse_from(["funcgraph", "-p", "1", "-L", "2", "x"]).is_err());
    }

    #[test]
    fn patterns_are_single_tokens() {
        for ok in ["vfs_read", "vfs_*", "getname_flags.part.0", "[ab]*"] {
            assert!(check_pattern(ok).is_ok(), "{ok}");
        }
        for bad in ["", "!vfs_read", "a b", "a\nb", "x:mod:ext4", "-x"] {
            assert_eq!(check_pattern(bad).unwrap_err().exit_code(), 2, "{bad:?}");
        }
        let list = FunctionList::parse("vfs_read\nvfs_write\n__ftrace_invalid_address___1\n");
        let m = match_functions(&list, &["vfs_*".into()], "the function").unwrap();
        assert_eq!(m.len(), 2);
        let e = match_functions(&list, &["vfs_raed".into()], "the function").unwrap_err();
        assert!(e.message().contains("did you mean vfs_read"), "{e}");
    }

    #[test]
    fn tracing_line_says_where() {
        let a = args(&["-p", "7", "-d", "2", "vfs_read"]);
        assert_eq!(
            tracing_line(&a, Place::Instance),
            "Tracing \"vfs_read\" for PID 7 for 2 seconds (function_graph in a private instance)... Ctrl-C to end."
        );
    }
}
