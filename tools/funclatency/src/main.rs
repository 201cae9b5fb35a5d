//! funclatency - time a function's calls, as a log2 histogram.
//!
//! USAGE: funclatency [-um] [-p PID|-L TID] [-i secs] [-d secs] [-b KB] FUNCTION
//!
//! FUNCTION is a kernel function (`vfs_read`) or a user function as
//! `LIB:SYMBOL` (`libc:malloc`, resolved as uprobe resolves it). An entry
//! and a return probe (kprobe and kretprobe, or uprobe and uretprobe) are
//! made in a group of ours, their events recorded in a private instance,
//! and each return is paired with its thread's entry in user space, from
//! the binary buffer. The histogram is bcc's (`nsecs : count
//! distribution`).
//!
//! REQUIREMENTS: CONFIG_KPROBE_EVENTS (kernel functions) or
//! CONFIG_UPROBE_EVENTS (user functions), instances, root.
//! OVERHEAD: two probe hits per call (about 0.1 to 0.3 us each for a
//! kernel function, a few us for a user function, which traps), and two
//! events read by funclatency. At hundreds of thousands of calls a second
//! that is a noticeable part of a CPU.

use clap::Parser;
use ftrace_common::app::cli::{self, parse_secs};
use ftrace_common::app::opts::{BufferOpt, DurationOpt, TaskOpts};
use ftrace_common::app::output::{Log2Hist, Output};
use ftrace_common::app::stream::{self, Sink, StreamOpts};
use ftrace_common::app::{signals, status};
use ftrace_common::buffer::reader::Event;
use ftrace_common::kernel::tracefs::Tracefs;
use ftrace_common::lifecycle::instance::{Instance, InstanceOptions};
use ftrace_common::probes::event::{self, EventArg};
use ftrace_common::{Error, Flow, Result};
use std::collections::HashMap;
use std::process::ExitCode;
use std::time::Duration;

const EXAMPLES: &str = "\
Examples:
  funclatency vfs_read                # time vfs_read() (ns), until Ctrl-C
  funclatency -u -d 10 do_sys_openat2 # 10 seconds, in microseconds
  funclatency -m -i 1 vfs_fsync       # every second, in milliseconds
  funclatency -p 181 vfs_read         # PID 181 only
  funclatency -u libc:usleep          # a user function (all processes)
  funclatency -p 181 /usr/bin/bash:readline
                                      # a program's function, one process";

const LONG_ABOUT: &str = "\
Time the calls of a kernel function (vfs_read) or a user function (LIB:SYMBOL, e.g. \
libc:malloc) and print their latency as a log2 histogram, as bcc's funclatency does. \
An entry and a return probe record each call in a private instance; funclatency pairs \
every return with its thread's entry from the binary trace buffer. Lost events are \
always reported (the calls they belonged to are not counted).

Requirements: root, tracefs with instances; kernel functions need kprobe events \
(CONFIG_KPROBE_EVENTS) and a function the kernel lets be probed; user functions need \
uprobe events (CONFIG_UPROBE_EVENTS).

Overhead: two probe hits per call, about 0.1 to 0.3 us each for a kernel function and a \
few microseconds for a user function (a breakpoint trap), plus reading two events per \
call. A function called hundreds of thousands of times a second costs a noticeable \
part of a CPU; -p limits what is recorded to one process.";

/// Time a function's calls, as a log2 histogram.
#[derive(Debug, Parser)]
#[command(
    name = "funclatency",
    version,
    about = "Time kernel or user function calls, as a log2 histogram",
    long_about = LONG_ABOUT,
    after_help = EXAMPLES
)]
struct Args {
    #[command(flatten)]
    task: TaskOpts,
    #[command(flatten)]
    duration: DurationOpt,
    #[command(flatten)]
    buffer: BufferOpt,
    /// Print the histogram every SECS seconds, and start it anew.
    #[arg(short = 'i', long = "interval", value_name = "SECS", value_parser = parse_secs)]
    interval: Option<Duration>,
    /// Microseconds instead of nanoseconds.
    #[arg(short = 'u', long = "microseconds", conflicts_with = "milliseconds")]
    microseconds: bool,
    /// Milliseconds instead of nanoseconds.
    #[arg(short = 'm', long = "milliseconds")]
    milliseconds: bool,
    /// The function: a kernel function (vfs_read), or LIB:SYMBOL for a
    /// user function (libc:malloc, /usr/bin/bash:readline).
    #[arg(value_name = "FUNCTION")]
    function: String,
}

ftrace_common::cli_tests!(Args);

fn main() -> ExitCode {
    cli::main("funclatency", funclatency)
}

fn funclatency(args: Args) -> Result<()> {
    let tfs = Tracefs::open()?;
    let (entry, ret) = options(&args)?;
    let probes = checks(&tfs, &args, &entry, &ret)?;
    // Declared in the order the kernel needs them undone, last first: the
    // instance (it disables the events), then the probes.
    let (_group, names) = event::create(&tfs, &[&entry, &ret], &probes)?;
    signals::check()?;
    let (inst, pairs) = setup(&tfs, &args, &names)?;
    trace(&inst, pairs, &args)
}

/// Options: the entry and return events of FUNCTION.
fn options(args: &Args) -> Result<(EventArg, EventArg)> {
    let f = args.function.trim();
    if f.is_empty() || f.contains(char::is_whitespace) {
        return Err(Error::usage(format!(
            "'{}' is not a function: give a kernel function (vfs_read) or LIB:SYMBOL (libc:malloc)",
            args.function
        )));
    }
    let (p, r) = if f.contains(':') {
        ("u:", "ur:")
    } else {
        ("k:", "kr:")
    };
    Ok((
        event::parse(&format!("{p}{f}"))?,
        event::parse(&format!("{r}{f}"))?,
    ))
}

/// Checks: the task exists, the kernel has the probes and the function
/// can be probed (in the task's files with -p).
fn checks(
    tfs: &Tracefs,
    args: &Args,
    entry: &EventArg,
    ret: &EventArg,
) -> Result<Vec<Option<ftrace_common::lifecycle::dynevent::ProbeDef>>> {
    ftrace_common::kernel::needs::FUNCLATENCY.require(tfs)?;
    let task = args.task.task();
    if let Some(t) = task {
        t.require_exists()?;
    }
    let pid = task.map(|t| t.process());
    Ok(vec![
        event::plan(tfs, entry, pid)?,
        event::plan(tfs, ret, pid)?,
    ])
}

/// Setup: the private instance, following the task, with both events on.
fn setup(tfs: &Tracefs, args: &Args, names: &[(String, String)]) -> Result<(Instance, Pairs)> {
    let mut inst = Instance::create_with(
        tfs,
        "funclatency",
        &InstanceOptions {
            buffer_kb: args.buffer.buffer_kb,
            ..InstanceOptions::default()
        },
    )?;
    if let Some(t) = args.task.task() {
        inst.follow(t, false)?;
    }
    let mut ids = Vec::new();
    for (system, name) in names {
        ids.push(inst.event_format(system, name)?.id);
        inst.enable_event(system, name)?;
        signals::check()?;
    }
    let (div, unit) = if args.milliseconds {
        (1_000_000, "msecs")
    } else if args.microseconds {
        (1_000, "usecs")
    } else {
        (1, "nsecs")
    };
    Ok((
        inst,
        Pairs {
            entry_id: ids[0],
            return_id: ids[1],
            open: HashMap::new(),
            hist: Log2Hist::new(),
            div,
            unit,
            out: Output::new(),
            printed: 0,
        },
    ))
}

/// Entries waiting for their returns, per thread (a stack: recursion),
/// and the histogram of the paired calls.
struct Pairs {
    entry_id: u16,
    return_id: u16,
    open: HashMap<i32, Vec<u64>>,
    hist: Log2Hist,
    div: u64,
    unit: &'static str,
    out: Output,
    printed: usize,
}

impl Pairs {
    fn print(&mut self) -> Flow {
        if self.printed > 0 {
            self.out.line("");
        }
        self.printed += 1;
        let text = self.hist.render(self.unit);
        let flow = self.out.text(&text);
        if flow == Flow::Stop {
            return flow;
        }
        self.out.flush()
    }
}

impl Sink for Pairs {
    fn event(&mut self, ev: &Event) -> Flow {
        if ev.id == self.entry_id {
            self.open.entry(ev.pid).or_default().push(ev.ts);
        } else if ev.id == self.return_id {
            if let Some(start) = self.open.get_mut(&ev.pid).and_then(Vec::pop) {
                self.hist.add(ev.ts.saturating_sub(start) / self.div);
            }
        }
        Flow::Continue
    }

    fn lost(&mut self, _cpu: u32, _count: Option<u64>) -> Flow {
        // A lost entry or return would pair the wrong calls: start anew.
        self.open.clear();
        Flow::Continue
    }

    fn tick(&mut self) -> Flow {
        let f = self.print();
        self.hist = Log2Hist::new();
        f
    }
}

/// Stream, then the histogram and what was lost.
fn trace(inst: &Instance, mut pairs: Pairs, args: &Args) -> Result<()> {
    let mut reader = inst.reader()?;
    signals::check()?;
    inst.start()?;
    status::TracingLine::new(&args.function)
        .task(args.task.task())
        .duration(args.duration.duration)
        .print();
    let summary = stream::run(
        Some(&mut reader),
        &mut pairs,
        StreamOpts {
            duration: args.duration.duration,
            ordered: true,
            tick: args.interval,
            task: args.task.task(),
            ..StreamOpts::default()
        },
    )?;
    if !summary.stopped_by_sink() && (args.interval.is_none() || pairs.hist.total() > 0) {
        pairs.print();
    }
    status::finish(
        "funclatency",
        &mut pairs.out,
        &summary,
        " (the calls they belonged to are not counted)",
    )
}
