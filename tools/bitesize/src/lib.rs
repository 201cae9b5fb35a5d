//! bitesize - summarize block I/O sizes as a histogram per process name.
//!
//! USAGE: bitesize [-hj] [-c COMM] [-d device] [--in WHERE] [duration]
//!
//! bcc's bitesize: from `block:block_rq_issue` (its `bytes`, and `comm`,
//! the task on the CPU when the request went to the device), a log2
//! histogram of sizes in Kbytes per process name, printed at the end (or
//! after `duration` seconds, as perf-tools' bitesize takes it). Where the
//! kernel has hist triggers it counts `(comm, bytes)` itself and bitesize
//! reads the table at the end; elsewhere the events are read from the
//! binary buffer of a private instance.
//!
//! REQUIREMENTS: tracefs with instances, block tracepoints, root; in the
//! kernel: CONFIG_HIST_TRIGGERS.
//! OVERHEAD: one event per request: a hash update in the kernel, or an
//! event read by bitesize.

use clap::Parser;
use ftrace_common::app::cli::{self as app_cli, parse_secs};
use ftrace_common::app::opts::{BufferOpt, InOpt, JsonOpt};
use ftrace_common::app::output::Output;
use ftrace_common::app::signals;
use ftrace_common::app::status::{self, TracingLine};
use ftrace_common::app::stream::{self, StreamOpts};
use ftrace_common::kernel::block::{DevSel, DevTable};
use ftrace_common::kernel::caps::Feature;
use ftrace_common::kernel::needs;
use ftrace_common::kernel::tracefs::Tracefs;
use ftrace_common::lifecycle::hist::{HistSpec, HistTrigger};
use ftrace_common::lifecycle::instance::{Instance, InstanceOptions};
use ftrace_common::lifecycle::sweep;
use ftrace_common::{Error, Result};
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

const EXAMPLES: &str = "\
Examples:
  bitesize                   # sizes per process name, until Ctrl-C
  bitesize 10                # for 10 seconds
  bitesize -c postgres       # processes named postgres only
  bitesize -d vda            # one disk (or 254,0, a partition: sda1)
  bitesize -i 1              # every second
  bitesize -j 5              # one JSON line per process name
  bitesize --in buffer       # count in bitesize, not the kernel";

const LONG_ABOUT: &str = "\
Summarize the sizes of block device I/O as a log2 histogram in Kbytes (1024 bytes) per \
process name, as bcc's bitesize does. Each request counts once, with its size and the name \
of the task running when it went to the device (block:block_rq_issue): the submitting \
process for most direct and synchronous I/O, a kernel worker for writeback. Requests without \
data (flushes) count as 0 Kbytes.

Where the kernel has hist triggers it counts (process name, bytes) itself and bitesize reads \
its table at the end; nothing goes through the trace buffer. Elsewhere, or with --in buffer, \
the events are recorded in a private instance and counted from the binary trace buffer. The \
Tracing line says which.

Requirements: root, tracefs (mounted if needed) with instances (Linux 4.4 or later), block \
tracepoints (CONFIG_BLOCK, CONFIG_TRACEPOINTS). In the kernel: CONFIG_HIST_TRIGGERS.

Overhead: one event per request: a hash update in the kernel, or one event read by \
bitesize.";

/// Entries of the kernel's table (process names times sizes).
const TABLE: u32 = 8192;

/// Summarize block I/O sizes as a histogram per process name.
#[derive(Debug, Parser)]
#[command(
    name = "bitesize",
    version,
    about = "Summarize block I/O sizes as a histogram per process name",
    long_about = LONG_ABOUT,
    after_help = EXAMPLES
)]
struct Args {
    /// Count only I/O issued by processes of this name (exactly, as the
    /// kernel records it: at most 15 characters).
    #[arg(short = 'c', long = "comm", value_name = "COMM")]
    comm: Option<String>,
    /// Count this device only: MAJ,MIN (e.g. 254,0) or a name (vda, sda1,
    /// nvme0n1, /dev/sda1). A partition selects its disk's I/O within it.
    #[arg(short = 'd', long = "device", value_name = "DEVICE")]
    device: Option<String>,
    #[command(flatten)]
    json: JsonOpt,
    #[command(flatten)]
    place: InOpt,
    #[command(flatten)]
    buffer: BufferOpt,
    /// Print the histograms every SECS seconds, and start them anew.
    #[arg(short = 'i', long = "interval", value_name = "SECS", value_parser = parse_secs)]
    interval: Option<Duration>,
    /// Trace for this many seconds, then print (default: until Ctrl-C).
    #[arg(value_name = "DURATION", value_parser = parse_secs)]
    duration: Option<Duration>,
}

ftrace_common::cli_tests!(Args);

mod count;

use count::{print, Counts, Hists, Kernel};

pub fn main() -> ExitCode {
    app_cli::main("bitesize", bitesize)
}

ftrace_common::tool_command!(Args);

fn bitesize(args: Args) -> Result<()> {
    let (filter, label) = options(&args)?;
    let tfs = Tracefs::open()?;
    needs::BITESIZE.require(&tfs)?;
    let in_kernel = args.place.in_kernel(
        || needs::BITESIZE.has(&tfs, Feature::HistTriggers).is_yes(),
        || needs::BITESIZE.require_optional(&tfs, Feature::HistTriggers),
    )?;
    sweep::sweep_dead(&tfs);
    let mut inst = Instance::create_with(
        &tfs,
        "bitesize",
        &InstanceOptions {
            buffer_kb: args.buffer.buffer_kb,
            kernel_buffer: in_kernel,
            keep_clock: true,
            trace_self: true,
        },
    )?;
    signals::check()?;
    let mut out = Output::new();
    let (hists, summary) = if in_kernel {
        let spec = HistSpec::new(&["comm", "bytes"]).size(TABLE);
        let spec = match &filter {
            Some(f) => spec.filter(f.clone()),
            None => spec,
        };
        let trig = HistTrigger::add(&inst, "block", "block_rq_issue", spec, false)?;
        inst.start()?;
        tracing_line(&args, label, true);
        let mut k = Kernel {
            trig: &trig,
            seen: BTreeMap::new(),
            now: Hists::new(),
            out: &mut out,
            json: args.json.json,
            error: None,
        };
        let summary = stream::run(None, &mut k, stream_opts(&args))?;
        if let Some(e) = k.error.take() {
            return Err(e);
        }
        let table = k.collect()?;
        if let Some(d) = table.dropped.filter(|&d| d > 0) {
            eprintln!("bitesize: {d} requests found the kernel's table ({TABLE} names and sizes) full and were not counted");
        }
        (std::mem::take(&mut k.now), summary)
    } else {
        let fmt = inst.event_format("block", "block_rq_issue")?;
        let mut counts = Counts {
            id: fmt.id,
            comm: fmt.require("comm")?.clone(),
            bytes: fmt.require("bytes")?.clone(),
            hists: Hists::new(),
            undecodable: 0,
            out: &mut out,
            json: args.json.json,
        };
        if let Some(f) = &filter {
            inst.set_filter("block", "block_rq_issue", f)?;
        }
        inst.enable_event("block", "block_rq_issue")?;
        let mut reader = inst.reader()?;
        inst.start()?;
        tracing_line(&args, label, false);
        let summary = stream::run(Some(&mut reader), &mut counts, stream_opts(&args))?;
        if counts.undecodable > 0 {
            eprintln!(
                "bitesize: {} events could not be decoded",
                counts.undecodable
            );
        }
        (std::mem::take(&mut counts.hists), summary)
    };
    if args.interval.is_none() || !hists.is_empty() {
        print(&mut out, &hists, args.json.json);
    }
    status::finish(
        "bitesize",
        &mut out,
        &summary,
        " (the counts above miss them)",
    )
}

/// Options, checked before any kernel state changes: the kernel filter
/// (device, name) and the device's name.
fn options(args: &Args) -> Result<(Option<String>, Option<String>)> {
    let mut parts = Vec::new();
    let mut label = None;
    if let Some(d) = &args.device {
        let sel = DevTable::load().select(d)?;
        parts.push(dev_filter(&sel));
        label = Some(sel.label);
    }
    if let Some(c) = &args.comm {
        if c.is_empty()
            || c.len() > 15
            || c.contains(['"', '\\'])
            || c.chars().any(char::is_control)
        {
            return Err(Error::usage(format!(
                "bad process name '{}': 1 to 15 characters, no quotes or backslashes",
                c.escape_debug()
            )));
        }
        parts.push(format!("comm == \"{c}\""));
    }
    Ok(((!parts.is_empty()).then(|| parts.join(" && ")), label))
}

/// The kernel filter of a device (a partition: its sectors of the disk).
fn dev_filter(sel: &DevSel) -> String {
    match sel.range {
        Some((s, e)) => format!("(dev == {} && sector >= {s} && sector < {e})", sel.disk),
        None => format!("dev == {}", sel.disk),
    }
}

fn stream_opts(args: &Args) -> StreamOpts<'static> {
    StreamOpts {
        duration: args.duration,
        tick: args.interval,
        ..StreamOpts::default()
    }
}

fn tracing_line(args: &Args, device: Option<String>, in_kernel: bool) {
    let mut line = TracingLine::new("block I/O sizes").duration(args.duration);
    if let Some(d) = device {
        line = line.scope(format!(" on {d}"));
    }
    if let Some(c) = &args.comm {
        line = line.scope(format!(" of process name \"{c}\""));
    }
    line.how(if in_kernel {
        "counted in the kernel"
    } else {
        "counted from the trace buffer"
    })
    .print();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_names_are_refused() {
        for c in ["", "a\"b", "sixteen_chars_xx"] {
            let a = Args::try_parse_from(["bitesize", "-c", c]).unwrap();
            assert!(options(&a).is_err(), "{c:?}");
        }
    }
}
