//! tpoint - trace kernel tracepoints, one event per line, as the kernel
//! prints them.
//!
//! USAGE: tpoint [-hHsvj] [--fields] [-d secs] [-p PID] [-L TID] [-M N]
//!               [-b KB] [-w FILE] {-l [glob] | tracepoint[,tracepoint...]
//!               [filter] | --read FILE [tracepoint]}
//!
//! Events are read from the binary per-CPU buffers of a private ftrace
//! instance and printed as the kernel's own `trace` file shows them
//! (`comm-pid [cpu] flags timestamp: event: text`), each event's text
//! rendered from its `print fmt`; `--fields` prints `name=value` instead.
//!
//! REQUIREMENTS: tracefs (mounted by tpoint if needed), instances, root.
//! OVERHEAD: each event costs the kernel well under a microsecond to record;
//! printing is what costs: a busy tracepoint (sched, syscalls without a
//! filter) can produce millions of lines per second. Filter, or count with
//! `syscount`/`funccount` instead.
//!
//! This is the smallest tool, and the template of a new one (see
//! docs/adding-a-tool.md): options, checks, setup, stream, summary.

mod events;
mod select;

use clap::Parser;
use events::{Tracepoint, Tracepoints};
use ftrace_common::app::cli;
use ftrace_common::app::opts::{EventOpts, KernelStacksOpt, ReadOpt, WriteOpt};
use ftrace_common::app::output::Output;
use ftrace_common::app::printer::{self, EventPrinter, PrinterOpts, StackKind};
use ftrace_common::app::status;
use ftrace_common::base::glob::Glob;
use ftrace_common::buffer::printfmt::{Kernel, KernelStrings};
use ftrace_common::buffer::tracedat::read::TraceDat;
use ftrace_common::kernel::proc::CommCache;
use ftrace_common::kernel::tracefs::Tracefs;
use ftrace_common::kernel::{caps, needs};
use ftrace_common::lifecycle::instance::{Instance, InstanceOptions};
use ftrace_common::lifecycle::sweep;
use ftrace_common::sym::kallsyms::KernelSyms;
use ftrace_common::{Error, Flow, Result};
use std::process::ExitCode;

const EXAMPLES: &str = "\
Examples:
  tpoint -l                                   # list tracepoints
  tpoint -l 'block:*'                         # list block tracepoints
  tpoint -d 2 sched:sched_switch              # 2 seconds of context switches
  tpoint syscalls:sys_enter_openat            # trace openat() entries
  tpoint -H -d 1 block:block_rq_issue         # 1 second, with a header
  tpoint -p 1234 syscalls:sys_enter_read 'count > 1024'
                                              # big reads of PID 1234
  tpoint 'sched:sched_wakeup*,sched:sched_switch'
                                              # several tracepoints, one stream
  tpoint -d 1 'timer:*'                       # every timer tracepoint
  tpoint --fields kmem:kmalloc                # each field as name=value
  tpoint -s sched:sched_process_exec          # execs, with kernel stacks
  tpoint -v block:block_rq_complete           # show the fields and exit
  tpoint --json -d 5 sched:sched_process_fork # JSON lines
  tpoint -w out.dat sched:sched_switch        # record into a trace.dat file
  tpoint --read out.dat                       # print it (here or elsewhere)";

const LONG_ABOUT: &str = "\
Trace kernel tracepoints and print each event as the kernel's own trace file shows it: \
task, PID, CPU, the flags column (irqs off, need-resched, hard/soft irq, preempt depth, \
migrate-disable), time stamp, and the event's text rendered from its print fmt (the \
kernel's TP_printk), read from ftrace's binary buffers in a private instance. Lost events \
are always reported. TRACEPOINT is SYSTEM:EVENT, a glob ('sched:*') or a comma-separated \
list of both ('sched:*,timer:hrtimer_*'), all in one stream. The filter uses the kernel's \
event filter syntax (see the kernel's events.rst), e.g. 'count > 1024' or 'comm ~ \"ba*\"'; \
with several tracepoints it applies to each that has its fields, the others are traced \
unfiltered (as the kernel does with a filter on a whole system).

Plain %p values print as the raw pointer (the kernel prints them hashed unless its \
hash-ptr option is off). An event whose print fmt uses what only the kernel can evaluate \
(a kernel function, an enum the format does not define) is printed as name=value, and \
tpoint says so on stderr once. --fields prints every event that way; -j prints JSON with \
every field typed.

Requirements: root, tracefs (mounted if needed) with instances (Linux 4.4 or later); -s \
needs CONFIG_STACKTRACE; %pS symbols need a readable /proc/kallsyms.

Overhead: recording an event costs the kernel well under a microsecond, paid whether or \
not -p or the filter keep it. Printing costs far more: a busy tracepoint (sched, \
syscalls without a filter) can make millions of lines a second, more than one CPU can \
print; lost events are then reported. Filter, limit the run (-d, -M), or count with \
syscount or funccount instead.";

/// Trace kernel tracepoints and print each event as the kernel does.
#[derive(Debug, Parser)]
#[command(
    name = "tpoint",
    version,
    about = "Trace kernel tracepoints and print each event as the kernel does",
    long_about = LONG_ABOUT,
    after_help = EXAMPLES
)]
struct Args {
    #[command(flatten)]
    ev: EventOpts,
    #[command(flatten)]
    stacks: KernelStacksOpt,
    #[command(flatten)]
    write: WriteOpt,
    #[command(flatten)]
    read: ReadOpt,
    /// Show the tracepoints' formats (their fields) and exit.
    #[arg(short = 'v', long = "view")]
    view: bool,
    /// List tracepoints (matching the optional glob) and exit.
    #[arg(short = 'l', long = "list")]
    list: bool,
    /// Print each event's fields as name=value instead of the kernel's text.
    #[arg(long = "fields")]
    fields: bool,
    /// The tracepoints: SYSTEM:EVENT (e.g. syscalls:sys_enter_openat), a
    /// glob ('sched:*') or a comma-separated list; with -l, an optional
    /// glob; with --read, the events to print (default: every event of
    /// the file).
    #[arg(value_name = "TRACEPOINT")]
    tracepoint: Option<String>,
    /// An event filter in the kernel's syntax, e.g. 'count > 1024'.
    #[arg(value_name = "FILTER")]
    filter: Option<String>,
}

ftrace_common::cli_tests!(Args);

pub fn main() -> ExitCode {
    cli::main("tpoint", tpoint)
}

ftrace_common::tool_command!(Args);

fn tpoint(args: Args) -> Result<()> {
    if let Some(file) = args.read.open()? {
        return read(&args, &file);
    }
    let tfs = Tracefs::open()?;
    if args.list {
        return list(&tfs, args.tracepoint.as_deref());
    }
    let chosen = options(&tfs, &args)?;
    checks(&tfs, &args)?;
    if args.view {
        for (i, (sys, name)) in chosen.iter().enumerate() {
            let sep = if i > 0 { "\n" } else { "" };
            print!("{sep}{}", tfs.read(format!("events/{sys}/{name}/format"))?);
        }
        return Ok(());
    }
    let (inst, printer) = setup(&tfs, &args, &chosen)?;
    trace(&inst, printer, &args)
}

/// Options: the tracepoints TRACEPOINT names on this kernel.
fn options(tfs: &Tracefs, args: &Args) -> Result<Vec<(String, String)>> {
    let Some(tp) = args.tracepoint.as_deref() else {
        return Err(Error::usage(
            "no tracepoint given (see tpoint -h, or tpoint -l to list them)",
        ));
    };
    if args.write.write.is_some() {
        args.ev.refuse_when_writing()?;
    }
    let available = tfs.read("available_events").unwrap_or_default();
    select::select(tp, &available)
}

/// Checks: the task and stacks exist here.
fn checks(tfs: &Tracefs, args: &Args) -> Result<()> {
    needs::TPOINT.require(tfs)?;
    if let Some(t) = args.ev.task.task() {
        t.require_exists()?;
    }
    if args.stacks.stacks {
        needs::TPOINT.require_optional(tfs, caps::Feature::KernelStacks)?;
    }
    Ok(())
}

/// Setup, in a private instance that is removed when it drops. Our own
/// events are dropped as they are read, not kept out by the kernel's
/// set_event_notrace_pid: removing that list's scheduler hooks at the end
/// cost 80 to 100 ms, most of the exit time (a -p list is needed anyway).
fn setup(
    tfs: &Tracefs,
    args: &Args,
    chosen: &[(String, String)],
) -> Result<(Instance, EventPrinter<Tracepoints>)> {
    sweep::sweep_dead(tfs);
    let mut inst = Instance::create_with(
        tfs,
        "tpoint",
        &InstanceOptions {
            buffer_kb: args.ev.buffer.buffer_kb,
            // Recording, the kernel keeps our events (our writes) out.
            trace_self: args.write.write.is_none(),
            ..InstanceOptions::default()
        },
    )?;
    let kernel = Kernel::this();
    let mut list = Vec::new();
    for (sys, name) in chosen {
        list.push(Tracepoint::new(sys, inst.event_format(sys, name)?, kernel));
    }
    if let Some(f) = &args.filter {
        set_filter(&mut inst, chosen, f)?;
    }
    if let Some(t) = args.ev.task.task() {
        inst.follow(t, false)?;
    }
    let stacks = printer::enable_stacks(&mut inst, args.stacks.stacks, StackKind::Kernel)?;
    for (sys, name) in chosen {
        inst.enable_event(sys, name)?;
    }
    let events = Tracepoints::new(list, args.fields);
    let symbols = events.uses_symbols() && !args.ev.json.json;
    let mut printer = EventPrinter::new(
        events,
        CommCache::new(Some(tfs.path("saved_cmdlines"))),
        PrinterOpts {
            json: args.ev.json.json,
            max_events: args.ev.max.max_events,
            skip_own: args.ev.task.task().is_none(),
            stacks,
            irq_info: true,
            flame: args.stacks.flame.for_stacks("tpoint", args.stacks.stacks)?,
            ..PrinterOpts::default()
        },
    );
    if symbols || args.stacks.stacks {
        printer.syms.kernel = KernelSyms::in_background();
    }
    printer.syms.strings = KernelStrings::from_file(tfs.path("printk_formats"));
    Ok((inst, printer))
}

/// The filter on every chosen event that has its fields. The kernel
/// refuses it on the others (a field not found), which are then traced
/// unfiltered, as a filter on a whole system works in the kernel; when it
/// refuses it everywhere, that is the error.
fn set_filter(inst: &mut Instance, chosen: &[(String, String)], filter: &str) -> Result<()> {
    let mut first_err = None;
    let mut without = Vec::new();
    for (sys, name) in chosen {
        if let Err(e) = inst.set_filter(sys, name, filter) {
            first_err.get_or_insert(e);
            without.push(format!("{sys}:{name}"));
        }
    }
    if without.len() == chosen.len() {
        return Err(first_err.unwrap_or_else(|| Error::usage("the filter was refused")));
    }
    if !without.is_empty() {
        let shown: Vec<&str> = without.iter().take(5).map(String::as_str).collect();
        let more = if without.len() > 5 { ", ..." } else { "" };
        eprintln!(
            "tpoint: the filter applies to {} of {} tracepoints; {} ({}{more}) lack its fields and are traced unfiltered",
            chosen.len() - without.len(),
            chosen.len(),
            without.len(),
            shown.join(", ")
        );
    }
    Ok(())
}

/// Stream and summary.
fn trace(inst: &Instance, mut printer: EventPrinter<Tracepoints>, args: &Args) -> Result<()> {
    let list = &printer.events.list;
    let what = match list.as_slice() {
        [one] => one.full_name(),
        many => format!(
            "{} tracepoints ({})",
            many.len(),
            args.tracepoint.as_deref().unwrap_or_default()
        ),
    };
    let mut run = args.ev.run(args.write.line(args.ev.tracing_line(what)));
    run.recording = args.write.start("tpoint", inst, args.stacks.stacks)?;
    let summary = printer.trace(inst, run)?;
    status::finish("tpoint", &mut printer.out, &summary, "")
}

/// `--read FILE [TRACEPOINT]`: the file's events (or those named), printed
/// as a run prints them, as the recording kernel printed them.
fn read(args: &Args, file: &TraceDat) -> Result<()> {
    let e = &args.ev;
    e.refuse_when_reading()?;
    if args.filter.is_some() || args.list || args.view {
        return Err(Error::usage(
            "a filter, -l and -v need tracing: not with --read",
        ));
    }
    let mut formats: Vec<_> = file
        .formats()
        .into_iter()
        .filter(|(s, _)| s != "ftrace")
        .collect();
    if let Some(tp) = args.tracepoint.as_deref() {
        let names: Vec<String> = formats
            .iter()
            .map(|(s, f)| format!("{s}:{}", f.name))
            .collect();
        let chosen = select::select(tp, &names.join("\n"))
            .map_err(|e| Error::usage(format!("{}: {e}", file.path().display())))?;
        formats.retain(|(s, f)| chosen.iter().any(|(cs, cn)| cs == s && *cn == f.name));
    }
    formats.sort_by_key(|(_, f)| f.id);
    let kernel = file
        .uname
        .as_deref()
        .map(Kernel::from_uname)
        .unwrap_or_else(Kernel::this);
    let list = formats
        .into_iter()
        .map(|(s, f)| Tracepoint::new(&s, f, kernel))
        .collect();
    let opts = PrinterOpts {
        json: e.json.json,
        max_events: e.max.max_events,
        irq_info: true,
        ..PrinterOpts::default()
    };
    let events = Tracepoints::new(list, args.fields);
    let mut printer = EventPrinter::new(events, CommCache::default(), opts);
    let summary = printer.replay(file, e.headers.headers)?;
    status::finish("tpoint", &mut printer.out, &summary, "")
}

/// `-l [GLOB]`: the tracepoints, one a line.
fn list(tfs: &Tracefs, pattern: Option<&str>) -> Result<()> {
    let glob = pattern.map(Glob::new).transpose()?;
    let all = tfs.read("available_events")?;
    let mut out = Output::new();
    let mut n = 0;
    for ev in all.lines() {
        if glob.as_ref().map(|g| g.matches(ev)).unwrap_or(true) {
            n += 1;
            if out.line(ev) == Flow::Stop {
                break;
            }
        }
    }
    out.finish()?;
    if n == 0 {
        if let Some(p) = pattern {
            return Err(Error::usage(format!("no tracepoint matches '{p}'")));
        }
    }
    Ok(())
}
