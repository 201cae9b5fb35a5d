//! funclatency - time functions' calls, as log2 histograms.
//!
//! USAGE: funclatency [-umTFrj] [-p PID|-L TID] [-i secs] [-d secs] [-b KB] PATTERN
//!
//! PATTERN names kernel functions (`vfs_read`, `'vfs_fstat*'`) or user
//! functions as `LIB:SYMBOL` (`libc:malloc`, `'libc:mall*'`, resolved as
//! uprobe resolves them); a glob, or with -r a regular expression. Each
//! function gets an entry and a return probe (kprobe and kretprobe, or
//! uprobe and uretprobe) in a group of ours, their events recorded in a
//! private instance, and each return is paired with its thread's entry of
//! the same function in user space, from the binary buffer. The histogram
//! is bcc's (`nsecs : count distribution`); -F gives one per function.
//!
//! REQUIREMENTS: CONFIG_KPROBE_EVENTS (kernel functions) or
//! CONFIG_UPROBE_EVENTS (user functions), instances, root.
//! OVERHEAD: two probe hits per call (about 0.1 to 0.3 us each for a
//! kernel function, a few us for a user function, which traps), and two
//! events read by funclatency. At hundreds of thousands of calls a second
//! that is a noticeable part of a CPU.

mod targets;

use clap::Parser;
use ftrace_common::app::cli::{self, parse_secs};
use ftrace_common::app::opts::{BufferOpt, DurationOpt, JsonOpt, TaskOpts};
use ftrace_common::app::output::{local_time, Log2Hist, Output};
use ftrace_common::app::stream::{self, Sink, StreamOpts};
use ftrace_common::app::{signals, status};
use ftrace_common::buffer::reader::Event;
use ftrace_common::kernel::tracefs::Tracefs;
use ftrace_common::lifecycle::instance::{Instance, InstanceOptions};
use ftrace_common::probes::tool as probetool;
use ftrace_common::{Flow, Result};
use std::collections::HashMap;
use std::process::ExitCode;
use std::time::Duration;
use targets::Target;

const EXAMPLES: &str = "\
Examples:
  funclatency vfs_read                # time vfs_read() (ns), until Ctrl-C
  funclatency -u -d 10 do_sys_openat2 # 10 seconds, in microseconds
  funclatency -m -i 1 vfs_fsync       # every second, in milliseconds
  funclatency -mTi 5 vfs_read         # every 5 seconds, with the time
  funclatency -p 181 vfs_read         # PID 181 only
  funclatency 'vfs_fstat*'            # vfs_fstat() and vfs_fstatat(), together
  funclatency -F 'vfs_r*'             # one histogram per function matched
  funclatency -Fr '^vfs_(read|write)$' # a regular expression
  funclatency -u libc:usleep          # a user function (all processes)
  funclatency -F 'libc:mall*'         # libc's functions matching mall*
  funclatency -j -i 1 vfs_read        # a JSON line per histogram
  funclatency -p 181 /usr/bin/bash:readline
                                      # a program's function, one process";

const LONG_ABOUT: &str = "\
Time the calls of kernel functions (vfs_read, 'vfs_fstat*') or user functions \
(LIB:SYMBOL, e.g. libc:malloc, 'libc:mall*') and print their latency as a log2 \
histogram, as bcc's funclatency does: one for all the functions matched, or one per \
function with -F. An entry and a return probe per function record each call in a \
private instance; funclatency pairs every return with its thread's entry of the same \
function from the binary trace buffer. Lost events are always reported (the calls \
they belonged to are not counted).

Requirements: root, tracefs with instances; kernel functions need kprobe events \
(CONFIG_KPROBE_EVENTS) and functions the kernel lets be probed; user functions need \
uprobe events (CONFIG_UPROBE_EVENTS).

Overhead: two probe hits per call, about 0.1 to 0.3 us each for a kernel function and a \
few microseconds for a user function (a breakpoint trap), plus reading two events per \
call. A function called hundreds of thousands of times a second costs a noticeable \
part of a CPU; -p limits what is recorded to one process. Each function matched is two \
probes: patterns that match many functions take seconds to attach.";

/// Time functions' calls, as log2 histograms.
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
    #[command(flatten)]
    json: JsonOpt,
    /// Print the histogram every SECS seconds, and start it anew.
    #[arg(short = 'i', long = "interval", value_name = "SECS", value_parser = parse_secs)]
    interval: Option<Duration>,
    /// Print the time (HH:MM:SS) before each histogram.
    #[arg(short = 'T', long = "timestamp")]
    timestamp: bool,
    /// Microseconds instead of nanoseconds.
    #[arg(short = 'u', long = "microseconds", conflicts_with = "milliseconds")]
    microseconds: bool,
    /// Milliseconds instead of nanoseconds.
    #[arg(short = 'm', long = "milliseconds")]
    milliseconds: bool,
    /// One histogram per function matched, instead of one for them all.
    #[arg(short = 'F', long = "function")]
    per_function: bool,
    /// The pattern is a regular expression, matched anywhere in the name
    /// (anchor it with ^ and $), instead of a glob.
    #[arg(short = 'r', long = "regexp")]
    regexp: bool,
    /// The functions: a kernel function (vfs_read) or a glob of them
    /// ('vfs_fstat*'); LIB:SYMBOL for user functions (libc:malloc,
    /// 'libc:mall*', /usr/bin/bash:readline).
    #[arg(value_name = "PATTERN")]
    pattern: String,
}

ftrace_common::cli_tests!(Args);

fn main() -> ExitCode {
    cli::main("funclatency", funclatency)
}

fn funclatency(args: Args) -> Result<()> {
    let tfs = Tracefs::open()?;
    let target = Target::parse(&args.pattern)?;
    let funcs = checks(&tfs, &args, &target)?;
    // Declared in the order the kernel needs them undone, last first: the
    // instance (it disables the events), then the probes.
    let defs: Vec<_> = funcs.iter().flat_map(|f| [&f.entry, &f.ret]).collect();
    let Some((group, created)) = probetool::create_all(&tfs, defs, false)? else {
        return Ok(());
    };
    signals::check()?;
    let names: Vec<String> = created.into_iter().map(|(n, _)| n).collect();
    let (inst, pairs) = setup(&tfs, &args, &funcs, group.group(), &names)?;
    trace(&inst, pairs, &args, &funcs)
}

/// Checks: the task exists, the kernel has the probes, and the pattern
/// matches functions that can be probed (in the task's files with -p).
fn checks(tfs: &Tracefs, args: &Args, target: &Target) -> Result<Vec<targets::Func>> {
    ftrace_common::kernel::needs::FUNCLATENCY.require(tfs)?;
    let task = args.task.task();
    if let Some(t) = task {
        t.require_exists()?;
    }
    target.functions(tfs, args.regexp, task.map(|t| t.process()))
}

/// The units of the histograms: the divisor of nanoseconds and bcc's name.
fn unit(args: &Args) -> (u64, &'static str) {
    if args.milliseconds {
        (1_000_000, "msecs")
    } else if args.microseconds {
        (1_000, "usecs")
    } else {
        (1, "nsecs")
    }
}

/// Setup: the private instance, following the task, with every event on.
fn setup(
    tfs: &Tracefs,
    args: &Args,
    funcs: &[targets::Func],
    system: &str,
    names: &[String],
) -> Result<(Instance, Pairs)> {
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
    let mut ids = HashMap::new();
    for (i, name) in names.iter().enumerate() {
        ids.insert(inst.event_format(system, name)?.id, (i / 2, i % 2 == 1));
        inst.enable_event(system, name)?;
        signals::check()?;
    }
    let (div, unit) = unit(args);
    let shown: Vec<String> = if args.per_function {
        funcs.iter().map(|f| f.shown.clone()).collect()
    } else {
        vec![args.pattern.clone()]
    };
    Ok((
        inst,
        Pairs {
            ids,
            open: HashMap::new(),
            hists: Hists::new(shown, div, unit, args),
        },
    ))
}

/// The histograms and how they are printed.
struct Hists {
    /// One per function with -F, else one named by the pattern.
    names: Vec<String>,
    hists: Vec<Log2Hist>,
    div: u64,
    unit: &'static str,
    per_function: bool,
    timestamp: bool,
    json: bool,
    interval: bool,
    out: Output,
    printed: u64,
}

impl Hists {
    fn new(names: Vec<String>, div: u64, unit: &'static str, args: &Args) -> Hists {
        Hists {
            hists: vec![Log2Hist::new(); names.len()],
            names,
            div,
            unit,
            per_function: args.per_function,
            timestamp: args.timestamp,
            json: args.json.json,
            interval: args.interval.is_some(),
            out: Output::new(),
            printed: 0,
        }
    }

    /// Adds a call of function `func` that took `ns`.
    fn add(&mut self, func: usize, ns: u64) {
        let i = if self.per_function { func } else { 0 };
        self.hists[i].add(ns / self.div);
    }

    fn total(&self) -> u64 {
        self.hists.iter().map(Log2Hist::total).sum()
    }

    /// Prints the histograms (bcc's layout: with -T the time first; with
    /// -F `Function = NAME` before each function that was called), then
    /// starts them anew.
    fn print(&mut self) -> Flow {
        self.printed += 1;
        let time = self.timestamp.then(|| local_time("%H:%M:%S"));
        let mut order: Vec<usize> = (0..self.names.len()).collect();
        order.sort_by(|&a, &b| self.names[a].cmp(&self.names[b]));
        let shown: Vec<usize> = order
            .into_iter()
            .filter(|&i| !self.per_function || self.hists[i].total() > 0)
            .collect();
        let flow = if self.json {
            let mut flow = Flow::Continue;
            for &i in &shown {
                let mut v = serde_json::json!({
                    "function": self.names[i], "unit": self.unit,
                    "total": self.hists[i].total(), "buckets": self.hists[i].to_json(),
                });
                if self.interval {
                    v["interval"] = self.printed.into();
                }
                if let Some(t) = &time {
                    v["time"] = t.clone().into();
                }
                flow = self.out.json(&v);
                if flow == Flow::Stop {
                    break;
                }
            }
            flow
        } else {
            let mut text = String::new();
            if self.printed > 1 {
                text.push('\n');
            }
            if let Some(t) = &time {
                text.push_str(&format!("{t:<8}\n"));
            }
            for (n, &i) in shown.iter().enumerate() {
                if self.per_function {
                    if n > 0 {
                        text.push('\n');
                    }
                    text.push_str(&format!("Function = {}\n", self.names[i]));
                }
                text.push_str(&self.hists[i].render(self.unit));
            }
            self.out.text(&text)
        };
        self.hists.iter_mut().for_each(|h| *h = Log2Hist::new());
        if flow == Flow::Stop {
            return flow;
        }
        self.out.flush()
    }
}

/// Entries waiting for their returns, per thread and function (a stack:
/// recursion), and the histograms of the paired calls.
struct Pairs {
    /// Event id to (function, is the return).
    ids: HashMap<u16, (usize, bool)>,
    open: HashMap<(i32, usize), Vec<u64>>,
    hists: Hists,
}

impl Sink for Pairs {
    fn event(&mut self, ev: &Event) -> Flow {
        match self.ids.get(&ev.id) {
            Some(&(func, false)) => self.open.entry((ev.pid, func)).or_default().push(ev.ts),
            Some(&(func, true)) => {
                if let Some(start) = self.open.get_mut(&(ev.pid, func)).and_then(Vec::pop) {
                    self.hists.add(func, ev.ts.saturating_sub(start));
                }
            }
            None => {}
        }
        Flow::Continue
    }

    fn lost(&mut self, _cpu: u32, _count: Option<u64>) -> Flow {
        // A lost entry or return would pair the wrong calls: start anew.
        self.open.clear();
        Flow::Continue
    }

    fn tick(&mut self) -> Flow {
        self.hists.print()
    }
}

/// What the Tracing line says is traced: the function, or how many a
/// pattern matched.
fn tracing_what(args: &Args, funcs: &[targets::Func]) -> String {
    match funcs {
        [f] if f.shown == args.pattern || args.pattern.ends_with(&format!(":{}", f.shown)) => {
            args.pattern.clone()
        }
        [_] => format!("1 function matching '{}'", args.pattern),
        _ => format!("{} functions matching '{}'", funcs.len(), args.pattern),
    }
}

/// Stream, then the histograms and what was lost.
fn trace(inst: &Instance, mut pairs: Pairs, args: &Args, funcs: &[targets::Func]) -> Result<()> {
    let mut reader = inst.reader()?;
    signals::check()?;
    inst.start()?;
    status::TracingLine::new(tracing_what(args, funcs))
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
    if !summary.stopped_by_sink() && (args.interval.is_none() || pairs.hists.total() > 0) {
        pairs.hists.print();
    }
    status::finish(
        "funclatency",
        &mut pairs.hists.out,
        &summary,
        " (the calls they belonged to are not counted)",
    )
}
