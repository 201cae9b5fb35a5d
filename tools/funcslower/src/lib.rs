//! funcslower - show kernel function calls slower than a threshold.
//!
//! USAGE: funcslower [-aCHPt] [-p PID] [-L TID] [-d secs] [--graph] [-j]
//!                   funcstring latency_us
//!
//! perf-tools' funcslower ran function_graph with tracing_thresh. This one
//! runs the suite's function_graph engine (`ftrace_common::graph`, shared
//! with funcgraph): its own instance where the kernel allows it (Linux
//! 6.11+), else the top level taken with care and put back; the records
//! come from the binary buffer, calls are rebuilt per task and only those
//! whose duration reaches the threshold are shown (with their graph with
//! --graph). The threshold is applied here, not by tracing_thresh: that
//! file is global on kernels with instances, and without graphs the
//! kernel's depth limit (top level) already keeps the records few.
//!
//! REQUIREMENTS: root, tracefs, CONFIG_FUNCTION_GRAPH_TRACER with a usable
//! function tracer; return values need Linux 6.5+ with
//! CONFIG_FUNCTION_GRAPH_RETVAL (said once when missing).

mod cli;

use cli::Args;
use ftrace_common::app::cli as app_cli;
use ftrace_common::app::signals;
use ftrace_common::app::status::{self, TracingLine};
use ftrace_common::app::stream::{stream, StreamOpts};
use ftrace_common::base::glob::Glob;
use ftrace_common::buffer::format::EventFormat;
use ftrace_common::graph::funcs::Funcs;
use ftrace_common::graph::place::{self, Place};
use ftrace_common::graph::render::Columns;
use ftrace_common::graph::{self, check_pattern, GraphOpts, ShowOpts};
use ftrace_common::kernel::caps::{Feature, Support};
use ftrace_common::kernel::functions::FunctionList;
use ftrace_common::kernel::needs;
use ftrace_common::kernel::tracefs::Tracefs;
use ftrace_common::lifecycle::sweep;
use ftrace_common::sym::kallsyms::KernelSymbols;
use ftrace_common::Result;
use std::collections::HashSet;
use std::process::ExitCode;

pub fn main() -> ExitCode {
    app_cli::main("funcslower", funcslower)
}

ftrace_common::tool_command!(Args);

fn funcslower(args: Args) -> Result<()> {
    check_pattern(&args.func)?;
    let tfs = Tracefs::open()?;
    needs::FUNCSLOWER.require(&tfs)?;
    if let Some(t) = args.task.task() {
        t.require_exists()?;
    }
    let list = FunctionList::load(&tfs)?;
    let g = Glob::new(&args.func)?;
    let roots: HashSet<String> = list
        .require_matching(&args.func, "the function ", |n| g.matches(n))?
        .into_iter()
        .map(|f| f.name.clone())
        .collect();
    let entry = EventFormat::parse(&tfs.read("events/ftrace/funcgraph_entry/format")?)?;
    let exit = EventFormat::parse(&tfs.read("events/ftrace/funcgraph_exit/format")?)?;
    let retval = match needs::FUNCSLOWER.has(&tfs, Feature::GraphRetval) {
        Support::Yes => true,
        Support::No(why) => {
            eprintln!("funcslower: note: no return values: {why}");
            false
        }
    };
    let funcs = Funcs::new(KernelSymbols::load()?, roots, HashSet::new());
    sweep::sweep_dead(&tfs);

    // Setup. Dropped after the reader: the instance, then the top level
    // or the shared graph filter.
    let show = show_opts(&args, retval);
    let placed = place::setup(&tfs, &graph_opts(&args), &list)?;
    let mut sink = graph::setup_sink(&tfs, &placed, (&entry, &exit), funcs, &show)?;
    let mut reader = placed.inst.reader()?;
    signals::check()?;
    placed.inst.start()?;
    for n in &placed.notes {
        eprintln!("funcslower: note: {n}");
    }
    tracing_line(&args, placed.place()).print();
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
    sink.finish(summary.stopped_by_sink());
    status::finish("funcslower", &mut sink.printer.out, &summary, "")?;
    let e = &sink.emitter;
    eprintln!(
        "funcslower: {} call{} of at least {} us, {} faster",
        e.graphs,
        if e.graphs == 1 { "" } else { "s" },
        us(args.latency),
        e.below_threshold
    );
    Ok(())
}

/// Where and how function_graph runs: the traced function alone (depth 1)
/// unless --graph.
fn graph_opts(args: &Args) -> GraphOpts {
    GraphOpts {
        tool: "funcslower",
        patterns: vec![args.func.clone()],
        exclude: Vec::new(),
        force: args.force,
        on_cpu: args.on_cpu,
        record: false,
        task: args.task.task(),
        max_depth: (!args.graph).then_some(1),
        buffer_kb: args.buffer.buffer_kb,
    }
}

/// What is shown: -a is -HPt; the threshold on the traced call.
fn show_opts(args: &Args, retval: bool) -> ShowOpts {
    ShowOpts {
        cols: Columns {
            abs_time: args.timestamps || args.all,
            proc: args.proc || args.all,
            duration: true,
            tail: false,
        },
        headers: args.headers.headers || args.all,
        json: args.json.json,
        retval,
        threshold: Some(args.latency),
        on_cpu: args.on_cpu,
        max_depth: (!args.graph).then_some(1),
    }
}

/// Nanoseconds as microseconds, without a needless fraction.
fn us(ns: u64) -> String {
    if ns.is_multiple_of(1000) {
        (ns / 1000).to_string()
    } else {
        format!("{:.3}", ns as f64 / 1000.0)
    }
}

/// `Tracing "vfs_read" calls of 10000 us or more for PID 7 (function_graph
/// in a private instance). Ctrl-C to end.`
fn tracing_line(args: &Args, place: Place) -> TracingLine {
    TracingLine::new(format!(
        "\"{}\" calls of {} us or more",
        args.func,
        us(args.latency)
    ))
    .task(args.task.task())
    .duration(args.duration.duration)
    .how(place.how())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracing_line_says_what_and_where() {
        let a = cli::args(&["-p", "7", "-d", "2", "vfs_read", "10000"]);
        assert_eq!(
            tracing_line(&a, Place::Instance).to_string(),
            "Tracing \"vfs_read\" calls of 10000 us or more for PID 7 for 2 seconds (function_graph in a private instance). Ctrl-C to end."
        );
        let a = cli::args(&["do_nanosleep", "0.5"]);
        assert!(tracing_line(&a, Place::TopLevel)
            .to_string()
            .contains("of 0.500 us or more"));
    }

    #[test]
    fn graph_only_when_asked() {
        let a = cli::args(&["f", "1"]);
        assert_eq!(graph_opts(&a).max_depth, Some(1));
        assert_eq!(show_opts(&a, false).threshold, Some(1000));
        let a = cli::args(&["--graph", "-a", "f", "1"]);
        assert_eq!(graph_opts(&a).max_depth, None);
        let s = show_opts(&a, true);
        assert!(s.headers && s.cols.proc && s.cols.abs_time && s.retval);
    }
}
