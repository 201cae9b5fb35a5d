//! Where function_graph runs, and its setup there.
//!
//! - In funcgraph's own instance, where the kernel allows it (Linux 6.11
//!   and later: an instance's available_tracers lists function_graph).
//!   The graph settings stay global there: set_graph_function is shared
//!   with other funcgraph runs (graphfilter.rs), the others are only read.
//! - Else at the top level, taken only when nobody seems to use it (-F
//!   overrides), every setting put back afterwards
//!   (`crate::lifecycle::toplevel`).

use crate::app::signals;
use crate::graph::graphfilter::{self, GraphFilter};
use crate::graph::GraphOpts;
use crate::kernel::functions::FunctionList;
use crate::kernel::proc;
use crate::kernel::tracefs::Tracefs;
use crate::lifecycle::instance::{self, Instance, InstanceOptions};
use crate::lifecycle::toplevel::{self, Kind, Refusal, TopLevel};
use crate::{Error, ErrorKind, Result};

/// The kernel's default per-CPU buffer (trace_buf_size, 1408 KiB), which
/// the top level gets when a tracer starts, unless a buffer was sized since
/// boot.
const TOP_LEVEL_DEFAULT_KB: u32 = 1408;

/// Where function_graph runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// In the tool's own instance.
    Instance,
    /// At the top level of tracefs.
    TopLevel,
}

impl Place {
    /// How the Tracing line says it.
    pub fn how(self) -> &'static str {
        match self {
            Place::Instance => "function_graph in a private instance",
            Place::TopLevel => "function_graph at the top level",
        }
    }
}

/// function_graph set up, recording off; undone on drop.
pub struct Placed {
    /// The instance (or the top level) that runs it.
    pub inst: Instance,
    held: Held,
    /// -C is funcgraph's to apply, from sched_switch events (enabled).
    pub switch_events: bool,
    /// What others set that changes the graphs, to say once tracing.
    pub notes: Vec<String>,
}

/// What a run holds besides the instance, put back when it drops.
enum Held {
    /// This run's functions in the shared set_graph_function.
    GraphFilter(GraphFilter),
    /// The top level, every setting changed recorded.
    TopLevel(TopLevel),
}

impl Placed {
    /// Where function_graph runs.
    pub fn place(&self) -> Place {
        match self.held {
            Held::GraphFilter(_) => Place::Instance,
            Held::TopLevel(_) => Place::TopLevel,
        }
    }
}

impl Drop for Placed {
    /// The instance first (its tracer stops), then the graph filter or the
    /// top level's settings go back.
    fn drop(&mut self) {
        // On failure the instance's own drop tries again, and warns.
        let _ = self.inst.remove();
        match &mut self.held {
            Held::GraphFilter(g) => g.release(),
            Held::TopLevel(t) => t.release(),
        }
    }
}

/// Sets function_graph up in funcgraph's instance where the kernel can run
/// it there, else at the top level.
pub fn setup(tfs: &Tracefs, opts: &GraphOpts, list: &FunctionList) -> Result<Placed> {
    let inst = Instance::create_with(
        tfs,
        opts.tool,
        &InstanceOptions {
            kernel_buffer: true,
            ..InstanceOptions::default()
        },
    )?;
    if inst.has_tracer("function_graph") {
        in_instance(tfs, opts, list, inst)
    } else {
        drop(inst);
        at_top_level(tfs, opts)
    }
}

/// function_graph in funcgraph's instance; the global graph settings are
/// checked, and set_graph_function shared.
fn in_instance(
    tfs: &Tracefs,
    opts: &GraphOpts,
    list: &FunctionList,
    inst: Instance,
) -> Result<Placed> {
    let mut notes = Vec::new();
    let kb = opts
        .buffer_kb
        .unwrap_or_else(|| instance::default_buffer_kb(proc::online_cpus()));
    inst.write("buffer_size_kb", &kb.to_string()).map_err(|e| {
        e.context(format!(
            "cannot get a {kb} KiB per-CPU trace buffer (try a smaller -b)"
        ))
    })?;
    let global = |f: &str| toplevel::current(tfs, f, Kind::Plain).unwrap_or_default();
    let thresh = global("tracing_thresh");
    if !thresh.is_empty() && thresh != "0" && !opts.force {
        return Err(Error::new(
            ErrorKind::Busy,
            format!("tracing_thresh is {thresh} (set by someone else; global on this kernel): function_graph then records only returns slower than that, in every instance, and no graphs. Use -F to trace anyway"),
        ));
    }
    let depth = global("max_graph_depth");
    if !depth.is_empty() && depth != "0" {
        notes.push(format!("max_graph_depth is {depth} (global, set by someone else): graphs are cut at that depth"));
    }
    let nt = graphfilter::listed_notrace(tfs);
    if !nt.is_empty() {
        notes.push(format!(
            "set_graph_notrace (global) hides {}: set by someone else",
            nt.join(", ")
        ));
    }
    // On-CPU time: from sched_switch events, unless the kernel already
    // leaves switched-out time out (someone turned sleep-time off).
    let sleep_time_off = global("options/sleep-time") == "0";
    if sleep_time_off {
        notes.push("the kernel's sleep-time option is off (global, set by someone else): durations leave out time switched out".into());
    }
    let g = GraphFilter::acquire(
        tfs,
        list,
        &opts.patterns,
        opts.force,
        &signals::stop_requested,
    )?;
    if !g.swept.is_empty() {
        let pids: Vec<String> = g.swept.iter().map(|p| p.to_string()).collect();
        notes.push(format!(
            "took the functions of funcgraph runs that did not end cleanly (PID {}) out of set_graph_function",
            pids.join(", ")
        ));
    }
    if !g.foreign.is_empty() {
        notes.push(format!(
            "set_graph_function also holds {} (someone else's); kept",
            g.foreign.join(", ")
        ));
    }
    let mut p = Placed {
        inst,
        held: Held::GraphFilter(g),
        // Recording, they go in the file for a later --read -C.
        switch_events: (opts.on_cpu || opts.record) && !sleep_time_off,
        notes,
    };
    match opts.task {
        Some(t) if p.switch_events => p.inst.follow(t, true)?,
        Some(t) => p.inst.set_function_pids(t)?,
        // Our own reads of the buffer must not feed back.
        None => p.inst.exclude_self_from_functions()?,
    }
    if let Some(list) = only_the_functions(opts) {
        p.inst.write("set_ftrace_filter", &list)?;
    }
    if p.switch_events {
        p.inst.enable_event("sched", "sched_switch")?;
    }
    if p.inst.exists("events/sched/sched_process_exec/enable") {
        // Task names change at exec: the lines name them as they were.
        p.inst.enable_event("sched", "sched_process_exec")?;
    }
    signals::check()?;
    p.inst.set_tracer("function_graph").map_err(|e| {
        e.context(format!(
            "cannot start function_graph in {}'s instance",
            opts.tool
        ))
    })?;
    Ok(p)
}

/// The functions to hook when a graph is one call deep (funcgraph -m 1,
/// funcslower): the kernel then patches those alone, not every traceable
/// function (tens of thousands, seconds of stop-the-machine work each way).
fn only_the_functions(opts: &GraphOpts) -> Option<String> {
    (opts.max_depth == Some(1)).then(|| opts.patterns.join("\n"))
}

/// function_graph at the top level, every setting recorded to be put back.
fn at_top_level(tfs: &Tracefs, opts: &GraphOpts) -> Result<Placed> {
    let mut t = take_top_level(tfs, opts.tool, opts.force)?;
    if let Some(r) = t.recovered.take() {
        eprintln!("{}: {r}", opts.tool);
    }
    let now = |f: &str, kind: Kind| toplevel::current(tfs, f, kind);
    t.set("tracing_on", Kind::Plain, "0")?;
    if now("current_tracer", Kind::Plain)? != "nop" {
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
    // The top level's buffer size is left alone unless asked: the kernel
    // rounds sizes to whole sub-buffers, so an old size written back may
    // not read the same.
    // But once any buffer was sized since boot (our own instances' are),
    // the kernel no longer expands the top level's 7 KiB boot buffer when a
    // tracer starts: graphs would be lost by the thousand. Such a buffer
    // gets the kernel's default size for the run.
    let size_now = tfs.read("buffer_size_kb")?;
    let small = !size_now.contains("expanded")
        && toplevel::normalize(Kind::BufferKb, &size_now)
            .parse::<u32>()
            .is_ok_and(|kb| kb < TOP_LEVEL_DEFAULT_KB);
    let size = opts.buffer_kb.or(small.then_some(TOP_LEVEL_DEFAULT_KB));
    if let Some(kb) = size {
        t.set("buffer_size_kb", Kind::BufferKb, &kb.to_string())
            .map_err(|e| {
                e.context(format!(
                    "cannot get a {kb} KiB per-CPU trace buffer (try a smaller -b)"
                ))
            })?;
    }
    match only_the_functions(opts) {
        Some(list) => t.set("set_ftrace_filter", Kind::Functions, &list)?,
        None if !now("set_ftrace_filter", Kind::Functions)?.is_empty() => {
            t.set("set_ftrace_filter", Kind::Functions, "")?
        }
        None => {}
    }
    if !now("set_ftrace_notrace", Kind::Functions)?.is_empty() {
        t.set("set_ftrace_notrace", Kind::Functions, "")?;
    }
    signals::check()?;
    t.set(
        "set_graph_function",
        Kind::Functions,
        &opts.patterns.join("\n"),
    )?;
    if !opts.exclude.is_empty() {
        t.set(
            "set_graph_notrace",
            Kind::Functions,
            &opts.exclude.join("\n"),
        )?;
    } else if !now("set_graph_notrace", Kind::Functions)?.is_empty() {
        t.set("set_graph_notrace", Kind::Functions, "")?;
    }
    if let Some(m) = opts.max_depth {
        t.set("max_graph_depth", Kind::Plain, &m.to_string())?;
    } else if now("max_graph_depth", Kind::Plain)? != "0" {
        t.set("max_graph_depth", Kind::Plain, "0")?;
    }
    if now("tracing_thresh", Kind::Plain)? != "0" {
        t.set("tracing_thresh", Kind::Plain, "0")?;
    }
    t.set_function_pids(opts.task)?;
    let sleep = if opts.on_cpu { "0" } else { "1" };
    if tfs.exists("options/sleep-time") && now("options/sleep-time", Kind::Plain)? != sleep {
        t.set("options/sleep-time", Kind::Plain, sleep)?;
    }
    let mut events = vec!["sched_process_exec"];
    if opts.record {
        // In the file, for a later --read -C.
        events.push("sched_switch");
    }
    for ev in events {
        let enable = format!("events/sched/{ev}/enable");
        if tfs.exists(&enable) && now(&enable, Kind::Plain)? != "1" {
            t.set(&enable, Kind::Plain, "1")?;
        }
    }
    signals::check()?;
    t.set("current_tracer", Kind::Plain, "function_graph").map_err(|e| {
        if e.kind() == ErrorKind::Busy {
            e.context("cannot start function_graph at the top level: someone holds the top-level trace_pipe open")
        } else {
            e
        }
    })?;
    Ok(Placed {
        inst: Instance::top_level(tfs),
        held: Held::TopLevel(t),
        switch_events: false,
        notes: Vec::new(),
    })
}

/// Takes the top level: refuses (kind Busy) if another run of ours holds
/// it, or if someone else seems to use it and `force` is off.
fn take_top_level(tfs: &Tracefs, tool: &str, force: bool) -> Result<TopLevel> {
    let why = match TopLevel::take(tfs, tool, force)? {
        Ok(top) => return Ok(top),
        Err(Refusal::Held(holder)) => format!(
            "{holder} is using the top level of tracefs; this kernel runs function_graph only at the top level (not in instances), so one run at a time"
        ),
        Err(Refusal::InUse(why)) => format!(
            "the top level of tracefs seems in use ({}); this kernel runs function_graph only at the top level. Use -F to take it anyway ({tool} puts every setting back afterwards)",
            why.join("; ")
        ),
    };
    Err(Error::new(ErrorKind::Busy, why))
}
