//! tpoint - trace a kernel tracepoint, one event per line.
//!
//! USAGE: tpoint [-hHsvj] [-d secs] [-p PID] [-L TID] [-M N] [-b KB]
//!               {-l [glob] | tracepoint [filter]}
//!
//! Events are read from the binary per-CPU buffers of a private ftrace
//! instance and printed in the shape of ftrace's own text output
//! (`comm-pid [cpu] timestamp: event: field=value ...`).
//!
//! REQUIREMENTS: tracefs (mounted by tpoint if needed), instances, root.
//! OVERHEAD: each event costs the kernel well under a microsecond to record;
//! printing is what costs: a busy tracepoint (sched, syscalls without a
//! filter) can produce millions of lines per second. Filter, or count with
//! `syscount`/`funccount` instead.
//!
//! This is the smallest tool, and the template of a new one (see
//! docs/adding-a-tool.md): options, checks, setup, stream, summary.

use clap::Parser;
use ftrace_common::app::cli;
use ftrace_common::app::opts::{EventOpts, KernelStacksOpt, ReadOpt, WriteOpt};
use ftrace_common::app::output::Output;
use ftrace_common::app::printer::{self, EventPrinter, Events, PrinterOpts, StackKind, Symbols};
use ftrace_common::app::status;
use ftrace_common::base::glob::{self, Glob};
use ftrace_common::buffer::format::{EventFormat, Value};
use ftrace_common::buffer::reader::Event;
use ftrace_common::buffer::tracedat::read::TraceDat;
use ftrace_common::kernel::caps;
use ftrace_common::kernel::proc::CommCache;
use ftrace_common::kernel::tracefs::Tracefs;
use ftrace_common::lifecycle::instance::{Instance, InstanceOptions};
use ftrace_common::lifecycle::sweep;
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
  tpoint -s sched:sched_process_exec          # execs, with kernel stacks
  tpoint -v block:block_rq_complete           # show the fields and exit
  tpoint --json -d 5 sched:sched_process_fork # JSON lines
  tpoint -w out.dat sched:sched_switch        # record into a trace.dat file
  tpoint --read out.dat                       # print it (here or elsewhere)";

const LONG_ABOUT: &str = "\
Trace a kernel tracepoint and print each event, decoded by field name from ftrace's \
binary buffers in a private instance. Lost events are always reported. The filter uses \
the kernel's event filter syntax (see the kernel's events.rst), e.g. 'count > 1024' or \
'comm ~ \"ba*\"'.

Requirements: root, tracefs (mounted if needed) with instances (Linux 4.4 or later); -s \
needs CONFIG_STACKTRACE.

Overhead: recording an event costs the kernel well under a microsecond, paid whether or \
not -p or the filter keep it. Printing costs far more: a busy tracepoint (sched, \
syscalls without a filter) can make millions of lines a second, more than one CPU can \
print; lost events are then reported. Filter, limit the run (-d, -M), or count with \
syscount or funccount instead.";

/// Trace a kernel tracepoint and print each event.
#[derive(Debug, Parser)]
#[command(
    name = "tpoint",
    version,
    about = "Trace a kernel tracepoint and print each event",
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
    /// Show the tracepoint's format (its fields) and exit.
    #[arg(short = 'v', long = "view")]
    view: bool,
    /// List tracepoints (matching the optional glob) and exit.
    #[arg(short = 'l', long = "list")]
    list: bool,
    /// The tracepoint, as SYSTEM:EVENT (e.g. syscalls:sys_enter_openat);
    /// with -l, an optional glob; with --read, the one event to print
    /// (default: every event of the file).
    #[arg(value_name = "TRACEPOINT")]
    tracepoint: Option<String>,
    /// An event filter in the kernel's syntax, e.g. 'count > 1024'.
    #[arg(value_name = "FILTER")]
    filter: Option<String>,
}

ftrace_common::cli_tests!(Args);

fn main() -> ExitCode {
    cli::main("tpoint", tpoint)
}

fn tpoint(args: Args) -> Result<()> {
    if let Some(file) = args.read.open()? {
        return read(&args, &file);
    }
    let tfs = Tracefs::open()?;
    if args.list {
        return list(&tfs, args.tracepoint.as_deref());
    }
    let (sys, name) = options(&args)?;
    checks(&tfs, &args, sys, name)?;
    if args.view {
        print!("{}", tfs.read(format!("events/{sys}/{name}/format"))?);
        return Ok(());
    }
    let (inst, printer) = setup(&tfs, &args, sys, name)?;
    trace(&inst, printer, &args)
}

/// Options: the tracepoint as SYSTEM:EVENT.
fn options(args: &Args) -> Result<(&str, &str)> {
    let Some(tp) = args.tracepoint.as_deref() else {
        return Err(Error::usage(
            "no tracepoint given (see tpoint -h, or tpoint -l to list them)",
        ));
    };
    if args.write.write.is_some() && (args.ev.max.max_events.is_some() || args.ev.json.json) {
        return Err(Error::usage(
            "-M and -j shape what is printed; with -w nothing is (end with -d or Ctrl-C)",
        ));
    }
    split_tracepoint(tp)
}

fn split_tracepoint(tp: &str) -> Result<(&str, &str)> {
    let (sys, name) = tp
        .split_once(':')
        .or_else(|| tp.split_once('/'))
        .ok_or_else(|| {
            Error::usage(format!(
                "'{tp}' is not a tracepoint: give SYSTEM:EVENT, e.g. syscalls:sys_enter_openat (see tpoint -l)"
            ))
        })?;
    let ok = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ok(sys) || !ok(name) {
        return Err(Error::usage(format!("'{tp}' is not a tracepoint name")));
    }
    Ok((sys, name))
}

/// Checks: the tracepoint, the task and stacks exist here.
fn checks(tfs: &Tracefs, args: &Args, sys: &str, name: &str) -> Result<()> {
    if !tfs.exists(format!("events/{sys}/{name}/format")) {
        let all = tfs.read("available_events").unwrap_or_default();
        let hint = glob::did_you_mean(&format!("{sys}:{name}"), all.lines(), 3);
        return Err(Error::usage(format!(
            "no tracepoint {sys}:{name} on this kernel{hint} (tpoint -l lists them)"
        )));
    }
    if let Some(t) = args.ev.task.task() {
        t.require_exists()?;
    }
    if args.stacks.stacks {
        caps::require(tfs, caps::Feature::KernelStacks)?;
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
    sys: &str,
    name: &str,
) -> Result<(Instance, EventPrinter<Tracepoint>)> {
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
    let mut fmt = inst.event_format(sys, name)?;
    if sys == "syscalls" {
        fmt = fmt.hex_longs();
    }
    if let Some(f) = &args.filter {
        inst.set_filter(sys, name, f)?;
    }
    if let Some(t) = args.ev.task.task() {
        inst.follow(t, false)?;
    }
    let stacks = printer::enable_stacks(&mut inst, args.stacks.stacks, StackKind::Kernel)?;
    inst.enable_event(sys, name)?;
    let printer = EventPrinter::new(
        Tracepoint {
            events: vec![(sys.to_string(), fmt)],
        },
        CommCache::new(Some(tfs.path("saved_cmdlines"))),
        PrinterOpts {
            json: args.ev.json.json,
            max_events: args.ev.max.max_events,
            skip_own: args.ev.task.task().is_none(),
            stacks,
            ..PrinterOpts::default()
        },
    );
    Ok((inst, printer))
}

/// Stream and summary.
fn trace(inst: &Instance, mut printer: EventPrinter<Tracepoint>, args: &Args) -> Result<()> {
    let (sys, fmt) = &printer.events.events[0];
    let line = args
        .write
        .line(args.ev.tracing_line(format!("{sys}:{}", fmt.name)));
    let mut run = args.ev.run(line);
    run.recording = args.write.start("tpoint", inst, args.stacks.stacks)?;
    let summary = printer.trace(inst, run)?;
    status::finish("tpoint", &mut printer.out, &summary, "")
}

/// `--read FILE [TRACEPOINT]`: the file's events (or that one's), printed
/// as a run prints them.
fn read(args: &Args, file: &TraceDat) -> Result<()> {
    let e = &args.ev;
    if e.task.task().is_some() || e.duration.duration.is_some() || e.buffer.buffer_kb.is_some() {
        return Err(Error::usage(
            "-p, -L, -d and -b set up tracing: not with --read",
        ));
    }
    if args.filter.is_some() || args.list || args.view {
        return Err(Error::usage(
            "a filter, -l and -v need tracing: not with --read",
        ));
    }
    let only = args
        .tracepoint
        .as_deref()
        .map(split_tracepoint)
        .transpose()?;
    let mut events: Vec<(String, EventFormat)> = file
        .formats()
        .into_iter()
        .filter(|(s, f)| s != "ftrace" && only.is_none_or(|(os, on)| s == os && f.name == on))
        .map(|(s, f)| (s.clone(), if s == "syscalls" { f.hex_longs() } else { f }))
        .collect();
    if let (Some((s, n)), true) = (only, events.is_empty()) {
        return Err(Error::usage(format!(
            "{} has no event {s}:{n}",
            file.path().display()
        )));
    }
    events.sort_by_key(|(_, f)| f.id);
    let opts = PrinterOpts {
        json: e.json.json,
        max_events: e.max.max_events,
        ..PrinterOpts::default()
    };
    let mut printer = EventPrinter::new(Tracepoint { events }, CommCache::default(), opts);
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

/// The tracepoints' part of the printer: `field=value ...` (one event
/// traced; with --read, any of the file's).
struct Tracepoint {
    events: Vec<(String, EventFormat)>,
}

impl Events for Tracepoint {
    fn which(&self, id: u16) -> Option<usize> {
        self.events.iter().position(|(_, f)| f.id == id)
    }

    fn name(&self, i: usize) -> &str {
        &self.events[i].1.name
    }

    fn json_name(&self, i: usize) -> String {
        format!("{}:{}", self.events[i].0, self.events[i].1.name)
    }

    fn text(&mut self, i: usize, ev: &Event, _: &mut Symbols, line: &mut String) {
        for f in &self.events[i].1.fields {
            line.push(' ');
            f.write_text(ev.data, line);
        }
    }

    fn json(
        &mut self,
        i: usize,
        ev: &Event,
        _: &mut Symbols,
        obj: &mut serde_json::Map<String, serde_json::Value>,
    ) {
        let mut fields = serde_json::Map::new();
        for f in &self.events[i].1.fields {
            let v = match f.value(ev.data) {
                Some(Value::Int(i)) => serde_json::json!(i),
                Some(Value::Uint(u)) => serde_json::json!(u),
                Some(Value::Str(s)) => serde_json::json!(s),
                Some(Value::Array(a)) => serde_json::json!(a),
                Some(v) => serde_json::json!(v.to_string()),
                None => serde_json::Value::Null,
            };
            fields.insert(f.name.clone(), v);
        }
        obj.insert("fields".into(), fields.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracepoint_names() {
        assert_eq!(
            split_tracepoint("syscalls:sys_enter_read").unwrap(),
            ("syscalls", "sys_enter_read")
        );
        assert_eq!(
            split_tracepoint("block/block_rq_issue").unwrap(),
            ("block", "block_rq_issue")
        );
        for bad in ["nocolon", ":x", "x:", "a:b c", "a:b\n-:x", "../x:y"] {
            assert_eq!(split_tracepoint(bad).unwrap_err().exit_code(), 2, "{bad}");
        }
    }
}
