//! funclatency - time functions' calls, as log2 histograms.
//!
//! USAGE: funclatency [-umTFrj] [-p PID|-L TID] [-i secs] [-d secs] [-b KB] PATTERN
//!
//! PATTERN names kernel functions (`vfs_read`, `'vfs_fstat*'`) or user
//! functions as `LIB:SYMBOL` (`libc:malloc`, `'libc:mall*'`, resolved as
//! uprobe resolves them); a glob, or with -r a regular expression. Each
//! function gets an entry and a return probe (kprobe and kretprobe, or
//! uprobe and uretprobe) in a group of ours. Where the kernel has
//! synthetic events and hist triggers, it keeps the histograms (see
//! `kernel.rs`); elsewhere the events are recorded in a private instance
//! and each return is paired with its thread's entry of the same function
//! in user space, from the binary buffer. The histogram is bcc's (`nsecs :
//! count distribution`); -F gives one per function.
//!
//! REQUIREMENTS: CONFIG_KPROBE_EVENTS (kernel functions) or
//! CONFIG_UPROBE_EVENTS (user functions), instances, root.
//! OVERHEAD: two probe hits per call (about 0.1 to 0.3 us each for a
//! kernel function, a few us for a user function, which traps), and two
//! events read by funclatency. At hundreds of thousands of calls a second
//! that is a noticeable part of a CPU.

mod hists;
mod kernel;
mod targets;

use clap::Parser;
use ftrace_common::app::cli::{self, parse_secs};
use ftrace_common::app::opts::{BufferOpt, DurationOpt, InOpt, JsonOpt, TaskOpts};
use ftrace_common::app::stream::{self, StreamOpts};
use ftrace_common::app::{signals, status};
use ftrace_common::kernel::caps::Feature;
use ftrace_common::kernel::needs;
use ftrace_common::kernel::tracefs::Tracefs;
use ftrace_common::lifecycle::instance::{Instance, InstanceOptions};
use ftrace_common::lifecycle::latency::LatencyTriggers;
use ftrace_common::probes::tool as probetool;
use ftrace_common::Result;
use hists::{Hists, How, KernelHists, Pairs, Source};
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
  funclatency --in buffer vfs_read    # pair calls in user space, not the kernel
  funclatency -p 181 /usr/bin/bash:readline
                                      # a program's function, one process";

const LONG_ABOUT: &str = "\
Time the calls of kernel functions (vfs_read, 'vfs_fstat*') or user functions \
(LIB:SYMBOL, e.g. libc:malloc, 'libc:mall*') and print their latency as a log2 \
histogram, as bcc's funclatency does: one for all the functions matched, or one per \
function with -F. Each function gets an entry and a return probe. Where the kernel \
has synthetic events and hist triggers, it keeps the histograms itself (the kernel \
documentation's latency recipe: the entry saves a time stamp per thread, the return \
fires a synthetic event with the latency, a hist trigger counts it in log2 buckets); \
nothing goes through the trace buffer. Elsewhere, or with --in buffer, the probes' \
events are recorded in a private instance and funclatency pairs every return with its \
thread's entry of the same function from the binary trace buffer. The Tracing line \
says which. Lost events are always reported (the calls they belonged to are not \
counted). Latencies are the difference of the two times in the unit (each time \
divided by 1000 for -u, as the kernel computes it), on either path.

Requirements: root, tracefs with instances; kernel functions need kprobe events \
(CONFIG_KPROBE_EVENTS) and functions the kernel lets be probed; user functions need \
uprobe events (CONFIG_UPROBE_EVENTS). In the kernel: synthetic events \
(CONFIG_SYNTH_EVENTS) and hist triggers (CONFIG_HIST_TRIGGERS), and Linux 5.16 or \
later (constants and division in hist expressions); older kernels use the buffer.

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
    #[command(flatten)]
    place: InOpt,
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

pub fn main() -> ExitCode {
    cli::main("funclatency", funclatency)
}

ftrace_common::tool_command!(Args);

fn funclatency(args: Args) -> Result<()> {
    let tfs = Tracefs::open()?;
    let target = Target::parse(&args.pattern)?;
    let (funcs, in_kernel) = checks(&tfs, &args, &target)?;
    // Declared in the order the kernel needs them undone, last first: the
    // triggers, the instance (it disables the events), then the probes.
    let defs: Vec<_> = funcs.iter().flat_map(|f| [&f.entry, &f.ret]).collect();
    let Some((group, created)) = probetool::create_all(&tfs, defs, false)? else {
        return Ok(());
    };
    signals::check()?;
    let names: Vec<String> = created.into_iter().map(|(n, _)| n).collect();
    let mut inst = instance(&tfs, &args, in_kernel)?;
    let hists = hists(&args, &funcs);
    if in_kernel {
        let trigs = kernel::arm(&inst, group.group(), &names, hists.div)?;
        let mut sink = KernelHists {
            trigs: &trigs,
            hists,
            error: None,
        };
        let r = trace(&inst, &mut sink, &args, &funcs, true);
        let dropped = trigs
            .iter()
            .map(LatencyTriggers::dropped)
            .sum::<Result<u64>>()?;
        if dropped > 0 {
            eprintln!(
                "funclatency: {dropped} entries or returns found no room in the kernel's tables of threads (2048 each) and were not timed"
            );
        }
        r
    } else {
        let mut pairs = setup(&mut inst, group.group(), &names, hists)?;
        trace(&inst, &mut pairs, &args, &funcs, false)
    }
}

/// Checks: the task exists, the kernel has the probes, and the pattern
/// matches functions that can be probed (in the task's files with -p);
/// where the histograms are kept (the kernel where it has synthetic
/// events and hist triggers, unless --in says otherwise).
fn checks(tfs: &Tracefs, args: &Args, target: &Target) -> Result<(Vec<targets::Func>, bool)> {
    needs::FUNCLATENCY.require(tfs)?;
    let task = args.task.task();
    if let Some(t) = task {
        t.require_exists()?;
    }
    let in_kernel = args.place.in_kernel(
        // Synthetic events are made by hist triggers: the check of one
        // is the check of both.
        || {
            needs::FUNCLATENCY
                .has(tfs, Feature::SyntheticEvents)
                .is_yes()
                && kernel::takes_constants(&ftrace_common::kernel::config::release())
        },
        || needs::FUNCLATENCY.require_optional(tfs, Feature::SyntheticEvents),
    )?;
    let funcs = target.functions(tfs, args.regexp, task.map(|t| t.process()))?;
    Ok((funcs, in_kernel))
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

/// The private instance, following the task: for the kernel's
/// histograms no buffer to read (the kernel's default size, its clock);
/// for the user-space path the buffer asked for, and the `mono` clock.
fn instance(tfs: &Tracefs, args: &Args, in_kernel: bool) -> Result<Instance> {
    let mut inst = Instance::create_with(
        tfs,
        "funclatency",
        &InstanceOptions {
            buffer_kb: args.buffer.buffer_kb,
            kernel_buffer: in_kernel,
            keep_clock: in_kernel,
            ..InstanceOptions::default()
        },
    )?;
    if let Some(t) = args.task.task() {
        inst.follow(t, false)?;
    }
    signals::check()?;
    Ok(inst)
}

/// The empty histograms: one per function with -F, else one.
fn hists(args: &Args, funcs: &[targets::Func]) -> Hists {
    let (div, unit) = unit(args);
    let shown: Vec<String> = if args.per_function {
        funcs.iter().map(|f| f.shown.clone()).collect()
    } else {
        vec![args.pattern.clone()]
    };
    let how = How {
        per_function: args.per_function,
        timestamp: args.timestamp,
        json: args.json.json,
        interval: args.interval.is_some(),
    };
    Hists::new(shown, div, unit, how)
}

/// Setup of the user-space path: every event on.
fn setup(inst: &mut Instance, system: &str, names: &[String], hists: Hists) -> Result<Pairs> {
    let mut ids = HashMap::new();
    for (i, name) in names.iter().enumerate() {
        ids.insert(inst.event_format(system, name)?.id, (i / 2, i % 2 == 1));
        inst.enable_event(system, name)?;
        signals::check()?;
    }
    Ok(Pairs {
        ids,
        open: HashMap::new(),
        hists,
    })
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

/// Stream (reading the buffer on the user-space path), then the
/// histograms and what was lost.
fn trace(
    inst: &Instance,
    source: &mut dyn Source,
    args: &Args,
    funcs: &[targets::Func],
    in_kernel: bool,
) -> Result<()> {
    let mut reader = if in_kernel {
        None
    } else {
        Some(inst.reader()?)
    };
    signals::check()?;
    inst.start()?;
    status::TracingLine::new(tracing_what(args, funcs))
        .task(args.task.task())
        .duration(args.duration.duration)
        .how(if in_kernel {
            "histogram in the kernel"
        } else {
            "calls paired from the trace buffer"
        })
        .print();
    let summary = stream::run(
        reader.as_mut(),
        source,
        StreamOpts {
            duration: args.duration.duration,
            ordered: true,
            tick: args.interval,
            task: args.task.task(),
            ..StreamOpts::default()
        },
    )?;
    source.collect()?;
    let hists = source.hists();
    if !summary.stopped_by_sink() && (args.interval.is_none() || hists.total() > 0) {
        hists.print();
    }
    status::finish(
        "funclatency",
        &mut hists.out,
        &summary,
        " (the calls they belonged to are not counted)",
    )
}
