//! iosnoop - trace block device I/O, one line per I/O, with its latency.
//!
//! USAGE: iosnoop [-hQst] [-d device] [-i iotype] [-p PID] [-n name] [duration]
//!
//! Each I/O is shown when it completes: the process that submitted it, its
//! type (rwbs), device, first block (512-byte sector), size and latency.
//! Events come from the binary per-CPU buffers of a private ftrace instance,
//! decoded by field name, so kernel layout changes cannot shift columns.
//!
//! Events: on Linux 6.5 and later `block:block_io_start` (in the submitting
//! process) and `block:block_io_done`; before, `block:block_getrq` (also in
//! the submitter) and `block:block_rq_complete`. Both use
//! `block:block_rq_issue` for the time the device got the I/O and its final
//! size, and follow `block:block_bio_frontmerge`/`block:block_rq_merge`
//! where the kernel has them.
//!
//! REQUIREMENTS: tracefs (mounted by iosnoop if needed), block tracepoints
//! (CONFIG_BLOCK, CONFIG_TRACEPOINTS), root.
//! OVERHEAD: three to five events per I/O, each well under a microsecond in
//! the kernel; iosnoop's own CPU grows with the I/O rate (printing a line
//! per I/O). See the README's benchmarks.
//!
//! PAIRING: these events carry no request id, so requests are keyed by
//! (disk, sector), with merges, requeues, partial completions and lost
//! events handled in `ftrace_common::kernel::block::Tracker`.

mod cli;
mod snoop;

use cli::Args;
use ftrace_common::app::blockio::{dev_filter, Dec, Devs, Plan};
use ftrace_common::app::cli as app_cli;
use ftrace_common::app::output::Output;
use ftrace_common::app::status::TracingLine;
use ftrace_common::app::stream::{replay, stream, StreamOpts, Summary};
use ftrace_common::base::glob::NameMatch;
use ftrace_common::buffer::tracedat::read::TraceDat;
use ftrace_common::kernel::block::{self, DevTable, Tracker};
use ftrace_common::kernel::proc::Task;
use ftrace_common::kernel::tracefs::Tracefs;
use ftrace_common::kernel::{needs, proc};
use ftrace_common::lifecycle::instance::{Instance, InstanceOptions};
use ftrace_common::lifecycle::sweep;
use ftrace_common::{Error, Result};
use snoop::{Filters, Snoop};
use std::collections::{BTreeMap, HashMap};
use std::process::ExitCode;
use std::time::{Duration, Instant};

pub fn main() -> ExitCode {
    app_cli::main("iosnoop", iosnoop)
}

ftrace_common::tool_command!(Args);

fn iosnoop(args: Args) -> Result<()> {
    let (filters, table) = options(&args)?;
    if let Some(file) = args.read.open()? {
        return read(&args, filters, &file);
    }
    let tfs = Tracefs::open()?;
    let plan = checks(&tfs, &args, &filters)?;
    sweep::sweep_dead(&tfs);
    let (inst, mut snoop) = setup(&tfs, &args, &plan, filters, table)?;
    let summary = trace(&inst, &mut snoop, &args)?;
    summarize(snoop, &summary, &args, &plan)
}

/// Options: everything the user typed, checked before any kernel state
/// changes.
fn options(args: &Args) -> Result<(Filters, DevTable)> {
    let iotype = args
        .iotype
        .as_deref()
        .map(block::type_pattern)
        .transpose()?;
    let name = args.name.as_deref().map(NameMatch::new).transpose()?;
    let table = DevTable::load();
    let dev = args
        .device
        .as_deref()
        .map(|d| table.select(d))
        .transpose()?;
    let filters = Filters {
        dev,
        iotype,
        pid: args.pid,
        name,
        min_ns: args.min_ms.map(|m| (m * 1e6) as u64).unwrap_or(0),
    };
    Ok((filters, table))
}

fn plan(tfs: &Tracefs, legacy: bool) -> Result<Plan> {
    needs::IOSNOOP.require(tfs)?;
    Plan::with(
        &|e: &str| tfs.exists(format!("events/block/{e}/format")),
        legacy,
    )
}

/// Checks: the process, the block events of this kernel, the device.
fn checks(tfs: &Tracefs, args: &Args, filters: &Filters) -> Result<Plan> {
    if let Some(p) = args.pid {
        proc::require_exists(p)?;
    }
    let plan = plan(tfs, args.legacy_events)?;
    if let Some(sel) = &filters.dev {
        if sel.request_based == Some(false) {
            eprintln!(
                "iosnoop: warning: {} has no request queue (device-mapper, md, zram, ...): \
its I/O shows on the disks beneath it, not as {}",
                sel.label, sel.label
            );
        }
    }
    Ok(plan)
}

/// Setup, in a private instance that is removed when it drops.
/// Completions fire in interrupt context on whatever task is running: a
/// notrace PID list with our PID would drop those that land while we run,
/// so the instance traces us too (our own I/O is rare and real).
fn setup(
    tfs: &Tracefs,
    args: &Args,
    plan: &Plan,
    filters: Filters,
    table: DevTable,
) -> Result<(Instance, Snoop)> {
    let mut inst = Instance::create_with(
        tfs,
        "iosnoop",
        &InstanceOptions {
            buffer_kb: args.buffer.buffer_kb,
            trace_self: true,
            ..InstanceOptions::default()
        },
    )?;
    // The submitter's process ID (-p, JSON) outlives short-lived threads
    // only in the kernel's saved_tgids, which record-tgid fills.
    let want_tgids = args.pid.is_some() || args.json.json || args.write.write.is_some();
    let saved_tgids =
        (want_tgids && tfs.exists("saved_tgids") && inst.set_option("record-tgid", true).is_ok())
            .then(|| tfs.path("saved_tgids"));
    let mut decs = Vec::new();
    for (ev, role, _) in &plan.events {
        let fmt = inst.event_format("block", ev)?;
        decs.push(Dec::new(&fmt, *role)?);
        if let Some(sel) = &filters.dev {
            inst.set_filter("block", ev, &dev_filter(sel, &table, *role, ev))?;
        }
    }
    for (ev, _, _) in &plan.events {
        inst.enable_event("block", ev)?;
    }
    let snoop = new_snoop(args, plan, filters, table, decs, saved_tgids);
    Ok((inst, snoop))
}

/// The sink, over the decoders of the plan's events.
fn new_snoop(
    args: &Args,
    plan: &Plan,
    filters: Filters,
    table: DevTable,
    decs: Vec<Dec>,
    saved_tgids: Option<std::path::PathBuf>,
) -> Snoop {
    let mut snoop = Snoop {
        decs,
        partial: plan.partial_completions,
        tracker: Tracker::new(),
        devs: Devs::new(table),
        filters,
        out: Output::new(),
        queued: args.queued,
        start: args.start,
        end: args.end,
        queue_column: args.queue_column,
        disk_names: args.disk_names,
        json: args.json.json,
        hist: args.hist.then(BTreeMap::new),
        per_disk: args.per_disk,
        tgids: HashMap::new(),
        saved_tgids,
        saved: HashMap::new(),
        saved_read: None,
        line: String::new(),
        shown: 0,
        undecodable: 0,
        last_expire: Instant::now(),
        lost_pending: 0,
        lost_warned: None,
        offline: false,
        last_ts: 0,
    };
    if let (Some(p), None) = (args.pid, &args.read.read) {
        for t in proc::threads(p).unwrap_or_default() {
            snoop.tgids.insert(t as i32, Some(p));
        }
    }
    snoop
}

/// `--read FILE`: a file's block events paired into I/Os and shown as a
/// run shows them (disks as MAJ,MIN: names are the recording machine's).
fn read(args: &Args, filters: Filters, file: &TraceDat) -> Result<()> {
    if args.duration.is_some() || args.buffer.buffer_kb.is_some() {
        return Err(Error::usage(
            "a duration and -b set up tracing: not with --read",
        ));
    }
    let plan = Plan::with(
        &|e: &str| file.format("block", e).is_some(),
        args.legacy_events,
    )?;
    let mut decs = Vec::new();
    for (ev, role, _) in &plan.events {
        decs.push(Dec::new(
            &file.format("block", ev).expect("planned"),
            *role,
        )?);
    }
    let mut snoop = new_snoop(
        args,
        &plan,
        filters,
        DevTable::from_proc_partitions(""),
        decs,
        None,
    );
    snoop.offline = true;
    snoop.devs.offline = true;
    for (&t, &g) in &file.tgids {
        snoop.tgids.insert(t, Some(g));
    }
    if !args.hist && !args.json.json {
        snoop.header();
    }
    let summary = replay(file, &mut snoop, args.interval)?;
    summarize(snoop, &summary, args, &plan)
}

/// Stream: with -p, the run ends a second after the process exits (its
/// last I/O may still complete meanwhile).
fn trace(inst: &Instance, snoop: &mut Snoop, args: &Args) -> Result<Summary> {
    let mut reader = inst.reader()?;
    inst.start()?;
    let mut line = TracingLine::new(if args.hist {
        "block I/O latency"
    } else {
        "block I/O"
    })
    .duration(args.duration);
    if let Some(sel) = &snoop.filters.dev {
        line = line.scope(format!(" on {}", sel.label));
    }
    if let Some(p) = args.pid {
        line = line.scope(format!(" issued by PID {p}"));
    } else if let Some(n) = &args.name {
        line = line.scope(format!(" issued by process name \"{n}\""));
    }
    let mut rec = args.write.start("iosnoop", inst, false)?;
    args.write.line(line).print();
    if !args.hist && !args.json.json && rec.is_none() {
        snoop.header();
    }
    let task = args.pid.map(Task::Process);
    let mut exited: Option<Instant> = None;
    let mut ended = || {
        if let Some(t) = task.filter(|t| !t.alive()) {
            let at = *exited.get_or_insert_with(Instant::now);
            if at.elapsed() >= Duration::from_secs(1) {
                eprintln!("iosnoop: {}", t.exited());
                return true;
            }
        }
        false
    };
    let summary = stream(
        &mut reader,
        snoop,
        StreamOpts {
            duration: args.duration,
            ordered: true,
            tick: args.interval,
            stop_when: Some(&mut ended),
            recorder: rec.as_mut().map(|r| &mut r.recorder),
            ..StreamOpts::default()
        },
    )?;
    if let Some(r) = rec {
        drop(reader);
        r.finish(inst)?;
    }
    Ok(summary)
}

/// Summary: the histogram, and what could not be shown.
fn summarize(mut snoop: Snoop, summary: &Summary, args: &Args, plan: &Plan) -> Result<()> {
    if snoop.hist.is_some()
        && args.write.write.is_none()
        && (args.interval.is_none() || snoop.hist_has_data())
    {
        snoop.print_hist();
    }
    snoop.out.finish()?;
    snoop.report(summary, plan.label);
    Ok(())
}
