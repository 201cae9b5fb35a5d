//! iolatency - summarize block I/O latency as a histogram in milliseconds.
//!
//! USAGE: iolatency [-hQT] [-d device] [-i iotype] [-j] [--in WHERE] [interval [count]]
//!
//! perf-tools' iolatency: a histogram of power-of-two ranges of
//! milliseconds every interval (1 second by default). Latency is from
//! `block:block_rq_issue` (or, with -Q, the request's creation) to its
//! completion. Where the kernel has hist triggers and synthetic events,
//! it pairs and counts the I/O itself (`lifecycle::latency`, keyed by
//! disk and sector); elsewhere the block events are read from the binary
//! buffer of a private instance and paired as iosnoop pairs them
//! (`kernel::block::Tracker`).
//!
//! REQUIREMENTS: tracefs with instances, block tracepoints, root; in the
//! kernel: CONFIG_HIST_TRIGGERS, CONFIG_SYNTH_EVENTS, Linux 5.16.
//! OVERHEAD: two hash updates per I/O in the kernel; else three to five
//! events per I/O read by iolatency.

mod cli;
mod hist;

use cli::Args;
use ftrace_common::app::blockio::{dev_filter, Dec, Devs, Plan};
use ftrace_common::app::output::{Log2Hist, Output};
use ftrace_common::app::status::{self, TracingLine};
use ftrace_common::app::stream::{self, StreamOpts};
use ftrace_common::app::{cli as app_cli, signals};
use ftrace_common::kernel::block::{self, DevSel, DevTable, Tracker};
use ftrace_common::kernel::caps::Feature;
use ftrace_common::kernel::needs;
use ftrace_common::kernel::tracefs::Tracefs;
use ftrace_common::lifecycle::instance::{Instance, InstanceOptions};
use ftrace_common::lifecycle::latency::{log2_recipe, takes_constants, Endpoint, LatencyTriggers};
use ftrace_common::lifecycle::sweep;
use ftrace_common::{Error, Result};
use hist::{Filters, Kernel, MsHist, Pairs};
use std::process::ExitCode;

/// Entries of the kernel's tables of in-flight I/O (one per disk and
/// sector ever seen).
const TABLE: u32 = 16384;

pub fn main() -> ExitCode {
    app_cli::main("iolatency", iolatency)
}

ftrace_common::tool_command!(Args);

fn iolatency(args: Args) -> Result<()> {
    let (filters, table) = options(&args)?;
    let tfs = Tracefs::open()?;
    let (plan, in_kernel) = checks(&tfs, &args)?;
    sweep::sweep_dead(&tfs);
    let mut inst = Instance::create_with(
        &tfs,
        "iolatency",
        &InstanceOptions {
            buffer_kb: args.buffer.buffer_kb,
            kernel_buffer: in_kernel,
            keep_clock: in_kernel,
            trace_self: true,
        },
    )?;
    signals::check()?;
    let hist = MsHist {
        hist: Log2Hist::new(),
        out: Output::new(),
        timestamp: args.timestamp,
        json: args.json.json,
        printed: 0,
        count: args.count,
    };
    if in_kernel {
        let arm = || arm(&inst, &args, &filters);
        let mut k = Kernel {
            trigs: Some(arm()?),
            arm: &arm,
            seen: Vec::new(),
            hist,
            dropped: 0,
            rearmed: 0,
            error: None,
        };
        let label = filters.dev.as_ref().map(|d| d.label.clone());
        inst.start()?;
        let summary = trace(None, &mut k, &args, label, true)?;
        if let Some(e) = k.error.take() {
            return Err(e);
        }
        k.collect()?;
        if k.dropped > 0 {
            eprintln!(
                "iolatency: {} I/Os found the kernel's table of I/O in flight ({TABLE} disks and sectors) full and were not counted; it was made anew {} times",
                k.dropped, k.rearmed
            );
        }
        finish(&mut k.hist, &summary, &args)
    } else {
        let label = filters.dev.as_ref().map(|d| d.label.clone());
        let mut pairs = setup(&mut inst, &plan, filters, table, hist)?;
        let mut reader = inst.reader()?;
        inst.start()?;
        let summary = trace(Some(&mut reader), &mut pairs, &args, label, false)?;
        drop(reader);
        notes(&pairs, &plan);
        finish(&mut pairs.hist, &summary, &args)
    }
}

/// Options, checked before any kernel state changes.
fn options(args: &Args) -> Result<(Filters, DevTable)> {
    let iotype = args
        .iotype
        .as_deref()
        .map(block::type_pattern)
        .transpose()?;
    let table = DevTable::load();
    let dev = args
        .device
        .as_deref()
        .map(|d| table.select(d))
        .transpose()?;
    let filters = Filters {
        dev,
        iotype,
        queued: args.queued,
    };
    Ok((filters, table))
}

/// Checks: the block events of this kernel, and where to count (the
/// kernel where it can, unless --in says otherwise).
fn checks(tfs: &Tracefs, args: &Args) -> Result<(Plan, bool)> {
    needs::IOLATENCY.require(tfs)?;
    let has = |e: &str| tfs.exists(format!("events/block/{e}/format"));
    let plan = Plan::with(&has, false)?;
    let queue_event = !args.queued || has("block_io_start");
    let recent = takes_constants(&ftrace_common::kernel::config::release());
    let in_kernel = args.place.in_kernel(
        || {
            needs::IOLATENCY
                .has(tfs, Feature::SyntheticEvents)
                .is_yes()
                && recent
                && queue_event
        },
        || {
            needs::IOLATENCY.require_optional(tfs, Feature::SyntheticEvents)?;
            if !recent {
                return Err(Error::unsupported(
                    "counting in the kernel needs Linux 5.16 or later (constants and division in hist expressions); use --in buffer",
                ));
            }
            if !queue_event {
                return Err(Error::unsupported(
                    "-Q in the kernel needs block:block_io_start (Linux 6.5 or later); use --in buffer",
                ));
            }
            Ok(())
        },
    )?;
    Ok((plan, in_kernel))
}

/// The kernel filter of the device (a partition: its sectors).
fn kernel_dev_filter(sel: &DevSel) -> String {
    match sel.range {
        Some((s, e)) => format!("dev == {} && sector >= {s} && sector < {e}", sel.disk),
        None => format!("dev == {}", sel.disk),
    }
}

/// The kernel's path: issue (or, with -Q, `block_io_start`) saves a time
/// stamp per disk and sector, the completion fires the latency.
fn arm(inst: &Instance, args: &Args, f: &Filters) -> Result<LatencyTriggers> {
    let dev = f.dev.as_ref().map(kernel_dev_filter);
    let point = |event: &str, filter: Option<String>| Endpoint {
        system: "block".to_string(),
        event: event.to_string(),
        // The table's size rides with the keys: `keys=dev,sector:size=N`.
        keys: vec!["dev".to_string(), format!("sector:size={TABLE}")],
        filter,
    };
    let start = point(
        if args.queued {
            "block_io_start"
        } else {
            "block_rq_issue"
        },
        dev.clone(),
    );
    let iotype = args.iotype.as_ref().map(|p| format!("rwbs ~ \"{p}\""));
    let end_filter = match (dev, iotype) {
        (Some(d), Some(t)) => Some(format!("({d}) && {t}")),
        (d, t) => d.or(t),
    };
    let end = point("block_rq_complete", end_filter);
    LatencyTriggers::arm(inst, &start, &end, &log2_recipe("iolat", 1_000_000), false)
}

/// Setup of the buffer's path: the plan's events, filtered to the device.
fn setup(
    inst: &mut Instance,
    plan: &Plan,
    filters: Filters,
    table: DevTable,
    hist: MsHist,
) -> Result<Pairs> {
    let mut decs = Vec::new();
    for (ev, role, _) in &plan.events {
        decs.push(Dec::new(&inst.event_format("block", ev)?, *role)?);
        if let Some(sel) = &filters.dev {
            inst.set_filter("block", ev, &dev_filter(sel, &table, *role, ev))?;
        }
    }
    for (ev, _, _) in &plan.events {
        inst.enable_event("block", ev)?;
        signals::check()?;
    }
    Ok(Pairs {
        decs,
        partial: plan.partial_completions,
        tracker: Tracker::new(),
        devs: Devs::new(table),
        filters,
        hist,
        undecodable: 0,
        lost: 0,
    })
}

/// Starts, says so, and reads (or waits) until Ctrl-C or the count.
fn trace(
    reader: Option<&mut ftrace_common::buffer::reader::Reader>,
    sink: &mut dyn stream::Sink,
    args: &Args,
    device: Option<String>,
    in_kernel: bool,
) -> Result<stream::Summary> {
    let mut line = TracingLine::new("block I/O");
    if let Some(d) = device {
        line = line.scope(format!(" on {d}"));
    }
    if let Some(t) = &args.iotype {
        line = line.scope(format!(" of type '{t}'"));
    }
    let secs = args.interval.as_secs_f64();
    line.how(if in_kernel {
        "latency counted in the kernel"
    } else {
        "paired from the trace buffer"
    })
    .note(format!(
        "Output every {secs} second{}.",
        if secs == 1.0 { "" } else { "s" }
    ))
    .print();
    stream::run(
        reader,
        sink,
        StreamOpts {
            ordered: true,
            tick: Some(args.interval),
            ..StreamOpts::default()
        },
    )
}

/// What the pairing could not count.
fn notes(p: &Pairs, plan: &Plan) {
    let s = p.tracker.stats;
    if s.unmatched > 0 {
        eprintln!(
            "iolatency: {} completions had no known issue (begun before tracing, or lost) and were not counted",
            s.unmatched
        );
    }
    if s.discarded_lost > 0 {
        eprintln!(
            "iolatency: {} I/Os in flight when events were lost were not counted",
            s.discarded_lost
        );
    }
    if p.undecodable > 0 {
        eprintln!(
            "iolatency: {} events could not be decoded ({} formats)",
            p.undecodable, plan.label
        );
    }
}

/// The last, partial interval (if it counted anything and the count was
/// not reached), then lost events.
fn finish(h: &mut MsHist, summary: &stream::Summary, args: &Args) -> Result<()> {
    let reached = args.count.is_some_and(|c| h.printed >= c);
    if !reached && h.hist.total() > 0 && !h.out.is_closed() {
        h.print();
    }
    status::finish(
        "iolatency",
        &mut h.out,
        summary,
        " (the I/O they belonged to is not counted)",
    )
}
