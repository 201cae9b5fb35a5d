//! The function_graph engine: where the tracer runs (`place`), the binary
//! records decoded (`decode`), the graphs rebuilt per task (`tree`), cut
//! and filtered (`emit`), and printed as the kernel's graph text or JSON
//! (`render`, `sink`). Used by funcgraph (every graph) and funcslower
//! (the calls slower than a threshold).

pub mod decode;
pub mod emit;
pub mod fast;
pub mod funcs;
pub mod graphfilter;
pub mod place;
pub mod render;
pub mod sink;
pub mod tree;

use crate::app::output::Output;
use crate::kernel::proc::{CommCache, Task};
use crate::kernel::tracefs::Tracefs;
use crate::lifecycle::instance;
use crate::Result;
use decode::Decoder;
use emit::{EmitConfig, Emitter};
use funcs::Funcs;
use place::{Place, Placed};
use render::{Columns, Text};
use sink::{GraphSink, NameTable, Printer};
use tree::{Builder, Config};

/// The tools that run function_graph through this engine: their instances
/// share set_graph_function (graphfilter).
pub const TOOLS: &[&str] = &["funcgraph", "funcslower"];

/// What the placing of function_graph needs to know of a run.
#[derive(Debug, Clone, Default)]
pub struct GraphOpts {
    /// The tool: its instance's name, and its messages.
    pub tool: &'static str,
    /// The functions graphed (set_graph_function), each once, sorted.
    pub patterns: Vec<String>,
    /// Functions hidden with what they call (set_graph_notrace).
    pub exclude: Vec<String>,
    /// Take the top level, or share set_graph_function, even when in use.
    pub force: bool,
    /// On-CPU time only (-C).
    pub on_cpu: bool,
    /// Recording into a file (sched_switch recorded too).
    pub record: bool,
    /// The task the run is limited to.
    pub task: Option<Task>,
    /// Depth limit.
    pub max_depth: Option<u32>,
    /// Per-CPU buffer size asked for.
    pub buffer_kb: Option<u32>,
}

/// How the graphs are shown.
#[derive(Debug, Clone, Copy, Default)]
pub struct ShowOpts {
    /// The text's columns.
    pub cols: Columns,
    /// Column headers first (text only).
    pub headers: bool,
    /// JSON, one object per graph.
    pub json: bool,
    /// Return values.
    pub retval: bool,
    /// Only graphs whose outer call took this long (ns).
    pub threshold: Option<u64>,
    /// Durations without switched-out time.
    pub on_cpu: bool,
    /// Depth limit.
    pub max_depth: Option<u32>,
}

/// Setup of the reading side, once function_graph is placed: the decoder
/// (from the entry and exit formats), the graph builder, the emitter and
/// the printer (with the headers).
pub fn setup_sink(
    tfs: &Tracefs,
    placed: &Placed,
    formats: (
        &crate::buffer::format::EventFormat,
        &crate::buffer::format::EventFormat,
    ),
    names: Funcs,
    show: &ShowOpts,
) -> Result<GraphSink> {
    let inst = &placed.inst;
    let switch_fmt = if placed.switch_events {
        Some(inst.event_format("sched", "sched_switch")?)
    } else {
        None
    };
    let exec_fmt = if inst.exists("events/sched/sched_process_exec/format") {
        inst.event_format("sched", "sched_process_exec").ok()
    } else {
        None
    };
    let dec = Decoder::new(formats.0, formats.1, switch_fmt.as_ref())?.with_exec(exec_fmt.as_ref());
    let mono = inst
        .read("trace_clock")
        .map(|c| c.contains(&format!("[{}]", instance::CLOCK)))
        .unwrap_or(false);
    // Where the kernel takes switched-out time off (the top level's
    // sleep-time), its times must be kept.
    let global_ts = mono && !(placed.place() == Place::TopLevel && show.on_cpu);
    let names = NameTable {
        funcs: names,
        comms: CommCache::new(Some(tfs.path("saved_cmdlines"))),
    };
    let ncpus = inst.cpus().len();
    Ok(graph_sink(
        show,
        dec,
        (placed.switch_events, global_ts),
        names,
        ncpus,
    ))
}

/// The sink over a decoder and the names: the graph builder (`times`:
/// on-CPU time from sched_switch records, and one clock for all CPUs),
/// the emitter and the printer, headers printed.
pub fn graph_sink(
    show: &ShowOpts,
    dec: Decoder,
    times: (bool, bool),
    names: NameTable,
    ncpus: usize,
) -> GraphSink {
    let mut out = Output::new();
    if show.headers && !show.json {
        for h in render::header(show.cols) {
            out.line(&h);
        }
    }
    GraphSink {
        dec,
        retval: show.retval,
        builder: Builder::new(Config {
            max_depth: show.max_depth,
            on_cpu: times.0,
            global_ts: times.1,
        }),
        emitter: Emitter::new(EmitConfig {
            threshold: show.threshold,
            trees: show.json,
            on_cpu: show.on_cpu,
            ..EmitConfig::default()
        }),
        outs: Vec::new(),
        printer: Printer {
            out,
            text: Text::new(show.cols, ncpus),
            names,
            json: show.json,
            buf: String::new(),
        },
    }
}

/// A pattern as set_graph_function takes it: one token, no commands.
pub fn check_pattern(p: &str) -> Result<()> {
    let ok = !p.is_empty()
        && p.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '*' | '?' | '[' | ']'));
    if !ok {
        return Err(crate::Error::usage(format!(
            "'{p}' is not a function name or glob (letters, digits, _ . * ? [ ] only)"
        )));
    }
    Ok(())
}
