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
//! Where it runs (ftrace_common::graph::place; see the man page):
//! - function_graph in funcgraph's own instance where the kernel allows it
//!   (Linux 6.11 and later); `set_graph_function` is global there, shared
//!   by our runs (ftrace_common::graph::graphfilter);
//! - else (earlier kernels) at the top level, only if nobody seems to use
//!   it (-F overrides), every setting put back afterwards
//!   (`ftrace_common::lifecycle::toplevel`).
//!
//! REQUIREMENTS: root, tracefs, CONFIG_FUNCTION_GRAPH_TRACER with a usable
//! function tracer. Where the kernel refuses the function tracer (EPERM),
//! funcgraph says so and exits 2. --retval: Linux 6.5 or later with
//! CONFIG_FUNCTION_GRAPH_RETVAL.
//!
//! OVERHEAD: every call and return of every kernel function below the
//! traced ones is recorded (two events, each a few hundred ns): a busy
//! function can slow the system by 50% or more (perf-tools warns the same),
//! and the traced code itself runs many times slower. Starting takes
//! seconds: the kernel patches every traceable function. Measured figures:
//! the README's benchmark table (`tests/bench funcgraph`).

mod cli;
mod file;
#[cfg(test)]
mod replay;
#[cfg(test)]
mod speed;

use cli::Args;
use ftrace_common::app::cli as app_cli;
use ftrace_common::app::signals;
use ftrace_common::app::status::{self, TracingLine};
use ftrace_common::app::stream::{stream, StreamOpts, Summary};
use ftrace_common::base::glob::{self, Glob};
use ftrace_common::buffer::format::EventFormat;
use ftrace_common::graph::{self as engine, funcs, place, render, sink};
use ftrace_common::graph::{check_pattern, GraphOpts, ShowOpts};
use ftrace_common::kernel::functions::FunctionList;
use ftrace_common::kernel::tracefs::Tracefs;
use ftrace_common::kernel::{caps, needs};
use ftrace_common::lifecycle::sweep;
use ftrace_common::sym::kallsyms::KernelSymbols;
use ftrace_common::{Error, Result};
use funcs::Funcs;
use place::Place;
use render::Columns;
use sink::GraphSink;
use std::collections::HashSet;
use std::path::Path;
use std::process::ExitCode;

pub fn main() -> ExitCode {
    app_cli::main("funcgraph", funcgraph)
}

ftrace_common::tool_command!(Args);

fn funcgraph(args: Args) -> Result<()> {
    let cols = columns(&args);
    if let Some(file) = args.read.open()? {
        return file::read(&args, cols, &file);
    }
    options(&args)?;
    let tfs = Tracefs::open()?;
    let checked = checks(&tfs, &args)?;
    sweep::sweep_dead(&tfs);
    // Dropped after the reader (declared later): the instance (its tracer
    // stops), then the top level or the shared graph filter.
    let placed = place::setup(&tfs, &graph_opts(&args), &checked.list)?;
    let mut sink = engine::setup_sink(
        &tfs,
        &placed,
        (&checked.entry_fmt, &checked.exit_fmt),
        Funcs::new(checked.ksyms, checked.roots, checked.excluded),
        &show_opts(&args, cols),
    )?;
    // With -w: the file's addresses need the symbols.
    let mut rec = args.write.start("funcgraph", &placed.inst, true)?;
    let mut reader = placed.inst.reader()?;
    signals::check()?;
    placed.inst.start()?;
    for n in &placed.notes {
        eprintln!("funcgraph: note: {n}");
    }
    args.write.line(tracing_line(&args, placed.place())).print();
    let summary = stream(
        &mut reader,
        &mut sink,
        StreamOpts {
            duration: args.duration.duration,
            ordered: true,
            task: args.task.task(),
            recorder: rec.as_mut().map(|r| &mut r.recorder),
            ..StreamOpts::default()
        },
    )?;
    if let Some(r) = rec {
        drop(reader);
        r.finish(&placed.inst)?;
    }
    finish(&mut sink, &summary, &args)
}

/// Options: with -w the whole graphs are recorded; what shapes or cuts
/// the graphs shown is for --read.
fn options(args: &Args) -> Result<()> {
    let shaping = args.all
        || args.on_cpu
        || args.no_duration
        || args.headers.headers
        || args.proc
        || args.timestamps
        || args.tails
        || args.max_depth.is_some()
        || !args.exclude.is_empty()
        || args.threshold.is_some()
        || args.retval
        || args.json.json;
    if args.write.write.is_some() && shaping {
        return Err(Error::usage(
            "with -w the whole graphs are recorded: -m, -x, -C, --threshold, --retval and the output options (-aDHPtTj) apply when they are shown: give them to --read FILE",
        ));
    }
    Ok(())
}

/// Options: the columns of the text output (-a is -HPt).
fn columns(args: &Args) -> Columns {
    Columns {
        abs_time: args.timestamps || args.all,
        proc: args.proc || args.all,
        duration: !args.no_duration,
        tail: args.tails,
    }
}

/// What the checks found: the functions and the record formats.
struct Checked {
    list: FunctionList,
    roots: HashSet<String>,
    excluded: HashSet<String>,
    entry_fmt: EventFormat,
    exit_fmt: EventFormat,
    ksyms: KernelSymbols,
}

/// Checks: function_graph, the patterns, the task, --retval; nothing is
/// changed yet.
fn checks(tfs: &Tracefs, args: &Args) -> Result<Checked> {
    needs::FUNCGRAPH.require(tfs)?;
    for p in args.funcs.iter().chain(args.exclude.iter()) {
        check_pattern(p)?;
    }
    if let Some(t) = args.task.task() {
        t.require_exists()?;
    }
    let list = FunctionList::load(tfs)?;
    let roots = match_functions(&list, &args.funcs, "the function", None)?;
    let excluded = match_functions(&list, &args.exclude, "the exclusion", None)?;
    let entry_fmt = EventFormat::parse(&tfs.read("events/ftrace/funcgraph_entry/format")?)?;
    let exit_fmt = EventFormat::parse(&tfs.read("events/ftrace/funcgraph_exit/format")?)?;
    if args.retval {
        needs::FUNCGRAPH.require_optional(tfs, caps::Feature::GraphRetval)?;
    }
    Ok(Checked {
        list,
        roots,
        excluded,
        entry_fmt,
        exit_fmt,
        ksyms: KernelSymbols::load()?,
    })
}

/// The function names `patterns` match, each pattern matching something:
/// in the traceable functions, or in the symbols of a file being read.
fn match_functions(
    list: &FunctionList,
    patterns: &[String],
    what: &str,
    file: Option<&Path>,
) -> Result<HashSet<String>> {
    let mut names = HashSet::new();
    for p in patterns {
        check_pattern(p)?;
        let g = Glob::new(p)?;
        let found = match file {
            None => list.require_matching(p, &format!("{what} "), |n| g.matches(n))?,
            Some(f) => match list.matching(|n| g.matches(n)) {
                v if v.is_empty() => {
                    return Err(Error::usage(format!(
                        "no function in the symbols of {} matches {what} '{p}' ({} symbols){}",
                        f.display(),
                        list.len(),
                        glob::hint(&list.suggestions(p, 4))
                    )))
                }
                v => v,
            },
        };
        names.extend(found.into_iter().map(|f| f.name.clone()));
    }
    Ok(names)
}

/// What place::setup needs of the run.
fn graph_opts(args: &Args) -> GraphOpts {
    GraphOpts {
        tool: "funcgraph",
        patterns: args.patterns(),
        exclude: args.exclude.clone(),
        force: args.force,
        on_cpu: args.on_cpu,
        record: args.write.write.is_some(),
        task: args.task.task(),
        max_depth: args.max_depth,
        buffer_kb: args.buffer.buffer_kb,
    }
}

/// How the graphs are shown.
fn show_opts(args: &Args, cols: Columns) -> ShowOpts {
    ShowOpts {
        cols,
        headers: args.headers.headers || args.all,
        json: args.json.json,
        retval: args.retval,
        threshold: args.threshold,
        on_cpu: args.on_cpu,
        max_depth: args.max_depth,
    }
}

/// `Tracing "vfs_read" for PID 7 (function_graph in a private instance). Ctrl-C to end.`
fn tracing_line(args: &Args, place: Place) -> TracingLine {
    let funcs: Vec<String> = args.funcs.iter().map(|f| format!("\"{f}\"")).collect();
    TracingLine::new(funcs.join(" "))
        .task(args.task.task())
        .duration(args.duration.duration)
        .how(place.how())
}

/// Summary: the graphs still open, lost events, why the run ended, and
/// with --threshold how many graphs were shown.
fn finish(sink: &mut GraphSink, summary: &Summary, args: &Args) -> Result<()> {
    sink.finish(summary.stopped_by_sink());
    status::finish("funcgraph", &mut sink.printer.out, summary, "")?;
    if args.threshold.is_some() {
        let e = &sink.emitter;
        eprintln!(
            "funcgraph: {} graph{} shown, {} below the threshold",
            e.graphs,
            if e.graphs == 1 { "" } else { "s" },
            e.below_threshold
        );
    }
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
        let m = match_functions(&list, &["vfs_*".into()], "the function", None).unwrap();
        assert_eq!(m.len(), 2);
        let e = match_functions(&list, &["vfs_raed".into()], "the function", None).unwrap_err();
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
