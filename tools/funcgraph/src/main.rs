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

mod cli;
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

use cli::Args;
use decode::Decoder;
use emit::{EmitConfig, Emitter};
use ftrace_common::app::cli as app_cli;
use ftrace_common::app::output::Output;
use ftrace_common::app::signals;
use ftrace_common::app::status::{self, TracingLine};
use ftrace_common::app::stream::{stream, StreamOpts};
use ftrace_common::base::glob::Glob;
use ftrace_common::buffer::format::EventFormat;
use ftrace_common::kernel::caps;
use ftrace_common::kernel::functions::FunctionList;
use ftrace_common::kernel::proc::{self, CommCache, Task};
use ftrace_common::kernel::tracefs::{self, Tracefs};
use ftrace_common::lifecycle::instance::{self, Instance, InstanceOptions};
use ftrace_common::lifecycle::sweep;
use ftrace_common::lifecycle::toplevel::{self, Kind, TopLevel};
use ftrace_common::sym::kallsyms::KernelSymbols;
use ftrace_common::{Error, ErrorKind, Result};
use funcs::Funcs;
use graph::{Builder, Config};
use graphfilter::GraphFilter;
use render::{Columns, Text};
use sink::{GraphSink, NameTable, Printer};
use std::collections::HashSet;
use std::process::ExitCode;

/// The kernel's default per-CPU buffer (trace_buf_size, 1408 KiB), which
/// the top level gets when a tracer starts, unless a buffer was sized since
/// boot.
const TOP_LEVEL_DEFAULT_KB: u32 = 1408;

fn main() -> ExitCode {
    app_cli::main("funcgraph", funcgraph)
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

impl Place {
    /// How the Tracing line says it.
    fn how(self) -> &'static str {
        match self {
            Place::Instance => "function_graph in a private instance",
            Place::TopLevel => "function_graph at the top level",
        }
    }
}

/// The top level's set_ftrace_pid: the task's threads (and, for a process,
/// what it starts: function-fork), or nobody's but not ours.
fn set_function_pids(tfs: &Tracefs, t: &mut TopLevel, task: Option<Task>) -> Result<()> {
    let ids = |v: &[u32]| {
        v.iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    };
    match task {
        Some(task) => {
            let process = matches!(task, Task::Process(_));
            if process {
                t.set("options/function-fork", Kind::Plain, "1")?;
            }
            t.set("set_ftrace_pid", Kind::Pids, &ids(&task.threads()?))?;
            if process {
                // Threads started meanwhile.
                let more = ids(&task.threads().unwrap_or_default());
                tracefs::write_file(&tfs.path("set_ftrace_pid"), &more, true)?;
            }
        }
        None => {
            if !toplevel::current(tfs, "set_ftrace_pid", Kind::Pids)?.is_empty() {
                t.set("set_ftrace_pid", Kind::Pids, "")?;
            }
            if tfs.exists("set_ftrace_notrace_pid") {
                // Our own reads of the buffer must not feed back.
                t.set(
                    "set_ftrace_notrace_pid",
                    Kind::Pids,
                    &std::process::id().to_string(),
                )?;
            }
        }
    }
    Ok(())
}

/// `Tracing "vfs_read" for PID 7 (function_graph in a private instance). Ctrl-C to end.`
fn tracing_line(args: &Args, place: Place) -> TracingLine {
    let funcs: Vec<String> = args.funcs.iter().map(|f| format!("\"{f}\"")).collect();
    TracingLine::new(funcs.join(" "))
        .task(args.task.task())
        .duration(args.duration.duration)
        .how(place.how())
}

fn funcgraph(args: Args) -> Result<()> {
    // Options.
    let cols = Columns {
        abs_time: args.timestamps || args.all,
        proc: args.proc || args.all,
        duration: !args.no_duration,
        tail: args.tails,
    };
    let headers = (args.headers.headers || args.all) && !args.json.json;

    // Checks.
    let tfs = Tracefs::open()?;
    caps::require(&tfs, caps::Feature::FunctionGraph)?;
    for p in args.funcs.iter().chain(args.exclude.iter()) {
        check_pattern(p)?;
    }
    if let Some(t) = args.task.task() {
        t.require_exists()?;
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
        .buffer
        .buffer_kb
        .unwrap_or_else(|| instance::default_buffer_kb(proc::online_cpus()));
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
            let g = GraphFilter::acquire(
                &tfs,
                &list,
                &args.patterns(),
                args.force,
                &signals::stop_requested,
            )?;
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
            match args.task.task() {
                Some(t) if user_on_cpu => inst.follow(t, true)?,
                Some(t) => inst.set_function_pids(t)?,
                // Our own reads of the buffer must not feed back.
                None => inst.exclude_self_from_functions()?,
            }
            if user_on_cpu {
                inst.enable_event("sched", "sched_switch")?;
            }
            if inst.exists("events/sched/sched_process_exec/enable") {
                // Task names change at exec: the lines name them as they were.
                inst.enable_event("sched", "sched_process_exec")?;
            }
            signals::check()?;
            inst.set_tracer("function_graph")
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
                .buffer
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
            signals::check()?;
            t.set(
                "set_graph_function",
                Kind::Functions,
                &args.patterns().join("\n"),
            )?;
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
            set_function_pids(&tfs, t, args.task.task())?;
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
            signals::check()?;
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
    signals::check()?;
    inst.start()?;
    for n in &notes {
        eprintln!("funcgraph: note: {n}");
    }
    tracing_line(&args, place).print();

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
            trees: args.json.json,
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
            json: args.json.json,
            buf: String::new(),
        },
    };
    let summary = stream(
        &mut reader,
        &mut sink,
        StreamOpts {
            duration: args.duration.duration,
            ordered: true,
            task: args.task.task(),
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
    status::finish("funcgraph", &mut sink.printer.out, &summary, "")?;
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
        let a = cli::args(&["-p", "7", "-d", "2", "vfs_read"]);
        assert_eq!(
            tracing_line(&a, Place::Instance).to_string(),
            "Tracing \"vfs_read\" for PID 7 for 2 seconds (function_graph in a private instance). Ctrl-C to end."
        );
        let a = cli::args(&["-L", "9", "vfs_read", "vfs_write"]);
        assert_eq!(
            tracing_line(&a, Place::TopLevel).to_string(),
            "Tracing \"vfs_read\" \"vfs_write\" for TID 9 (function_graph at the top level). Ctrl-C to end."
        );
    }
}
