//! stackcount - count the stacks that lead to an event.
//!
//! USAGE: stackcount [-KUPvfTr] [-p PID|-L TID] [-i secs] [-d secs] [-s N]
//!                   [--folded FILE] [--svg FILE] PATTERN
//!
//! PATTERN is a kernel function or glob (a kprobe on each), a tracepoint
//! (`t:SYSTEM:EVENT`) or a user function (`LIB:FUNC`, `/path:FUNC`, a
//! uprobe on each). The kernel writes a stack record after each event (the
//! `stacktrace`/`userstacktrace` options of a private instance); the
//! stacks are counted from the binary buffer (common's `app::stacks`) and
//! printed as bcc prints them, or folded, or drawn as a flame graph.
//!
//! REQUIREMENTS: instances, root; CONFIG_KPROBE_EVENTS for kernel
//! functions, CONFIG_UPROBE_EVENTS for user functions.
//! OVERHEAD: the probe, a stack walk and one or two stack records per
//! event, read and looked up by stackcount.

mod cli;
mod kernel;

use cli::Args;
use ftrace_common::app::flame::{FlameFiles, Palette};
use ftrace_common::app::output::{date_now, Output};
use ftrace_common::app::stacks::{StackCounter, StackForm, StackOpts};
use ftrace_common::app::stream::{self, Sink, StreamOpts};
use ftrace_common::app::{attach, cli as app_cli, signals, status};
use ftrace_common::buffer::reader::Event;
use ftrace_common::kernel::caps::Feature;
use ftrace_common::kernel::needs::STACKCOUNT;
use ftrace_common::kernel::tracefs::Tracefs;
use ftrace_common::lifecycle::dynevent::{ProbeDef, ProbeGroup, ProbeKind};
use ftrace_common::lifecycle::instance::{Instance, InstanceOptions};
use ftrace_common::lifecycle::sweep;
use ftrace_common::probes::matching::{self, Plan};
use ftrace_common::probes::pattern::{self, Spec};
use ftrace_common::{Flow, Result};
use kernel::KernelStacks;
use std::process::ExitCode;

ftrace_common::cli_tests!(Args);

pub fn main() -> ExitCode {
    app_cli::main("stackcount", stackcount)
}

ftrace_common::tool_command!(Args);

fn stackcount(args: Args) -> Result<()> {
    let tfs = Tracefs::open()?;
    let spec = pattern::parse_lib_func(args.pattern.trim())?;
    let (plan, in_kernel) = checks(&tfs, &args, &spec)?;
    let mut probes = ProbeGroup::new(&tfs);
    let files = args.flame.create()?;
    let (inst, counter) = setup(&tfs, &args, &spec, &plan, &mut probes, in_kernel)?;
    trace(&inst, counter, &args, &plan, files)
}

/// Checks: the kernel has what PATTERN needs, the task exists, and the
/// pattern matches something; whether to count in the kernel.
fn checks(tfs: &Tracefs, args: &Args, spec: &Spec) -> Result<(Plan, bool)> {
    STACKCOUNT.require(tfs)?;
    match spec {
        Spec::Kernel { .. } => STACKCOUNT.require_optional(tfs, Feature::KprobeEvents)?,
        Spec::User { .. } => STACKCOUNT.require_optional(tfs, Feature::UprobeEvents)?,
        Spec::Tracepoint { .. } => {}
    }
    let task = args.task.task();
    if let Some(t) = task {
        t.require_exists()?;
    }
    let opts = stack_opts(args, spec);
    if opts.kernel {
        STACKCOUNT.require_optional(tfs, Feature::KernelStacks)?;
    }
    if opts.user {
        STACKCOUNT.require_optional(tfs, Feature::UserStacks)?;
    }
    // A hist key holds a kernel stack only.
    let in_kernel = args.place.in_kernel(
        || !opts.user && STACKCOUNT.has(tfs, Feature::HistTriggers).is_yes(),
        || {
            if opts.user {
                return Err(ftrace_common::Error::usage(
                    "--in kernel counts kernel stacks only: add -K",
                ));
            }
            STACKCOUNT.require_optional(tfs, Feature::HistTriggers)
        },
    )?;
    let plan = matching::plan(
        tfs,
        std::slice::from_ref(spec),
        args.regexp,
        task.map(|t| t.process()),
    )?;
    Ok((plan, in_kernel))
}

/// Which stacks: kernel stacks for kernel events, user stacks for user
/// functions and with -p (as bcc); -K and -U choose one.
fn stack_opts(args: &Args, spec: &Spec) -> StackOpts {
    let user_event = matches!(spec, Spec::User { .. });
    let user = args.user_only || (!args.kernel_only && (user_event || args.task.task().is_some()));
    let kernel = args.kernel_only || (!args.user_only && !user_event);
    StackOpts {
        kernel,
        user,
        per_process: args.per_pid,
        comm: user || args.folded_out || args.flame.any(),
        addresses: args.addresses,
        skip: args.skip,
        delimited: args.delimited,
        per_thread: false,
        tracepoint: matches!(spec, Spec::Tracepoint { .. }),
    }
}

/// Setup: sweep, probes, the private instance with the stack options and
/// the events on.
fn setup(
    tfs: &Tracefs,
    args: &Args,
    spec: &Spec,
    plan: &Plan,
    probes: &mut ProbeGroup,
    in_kernel: bool,
) -> Result<(Instance, Counter)> {
    sweep::sweep_dead(tfs);
    let mut events: Vec<(String, String)> = plan.tracepoints.clone();
    if !plan.names.is_empty() {
        for (ev, _) in attach::add_kprobes("stackcount", "sc", probes, &plan.names, false)? {
            events.push((probes.group().to_string(), ev));
        }
    }
    for (i, u) in plan.user.iter().enumerate() {
        signals::check()?;
        let def = ProbeDef {
            kind: ProbeKind::Uprobe,
            name: format!("scu{}_{i}", std::process::id()),
            location: u.location.clone(),
            args: Vec::new(),
        };
        let p = probes.add(&def)?;
        events.push((p.group.clone(), p.name.clone()));
    }
    let mut inst = Instance::create_with(
        tfs,
        "stackcount",
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
    let opts = stack_opts(args, spec);
    let mut ids = vec![false; 1 << 16];
    let (mut stacks, kernel) = if in_kernel {
        let k = KernelStacks::arm(&inst, &events, &opts)?;
        (StackCounter::fed(&inst, opts), Some(k))
    } else {
        let s = StackCounter::new(&mut inst, opts)?;
        for (sys, ev) in &events {
            signals::check()?;
            ids[inst.event_format(sys, ev)?.id as usize] = true;
            inst.enable_event(sys, ev)?;
        }
        (s, None)
    };
    if let Some(t) = args.task.task() {
        stacks.remember(t.process());
    }
    let counter = Counter {
        kernel,
        error: None,
        ids,
        own: std::process::id() as i32,
        stacks,
        out: Output::new(),
        folded: args.folded_out,
        json: args.json.json,
        timestamp: args.timestamp,
        top: args.top.map(|n| n as usize),
    };
    Ok((inst, counter))
}

/// The sink: events of ours start a stack; stack records complete it.
/// Counting in the kernel, the tables are read at each printout instead.
struct Counter {
    kernel: Option<KernelStacks>,
    error: Option<ftrace_common::Error>,
    ids: Vec<bool>,
    own: i32,
    stacks: StackCounter,
    out: Output,
    folded: bool,
    json: bool,
    timestamp: bool,
    top: Option<usize>,
}

impl Counter {
    fn print(&mut self) -> Flow {
        self.stacks.flush();
        if let Some(k) = self.kernel.as_mut() {
            if let Err(e) = k.collect(&mut self.stacks) {
                self.error = Some(e);
                return Flow::Stop;
            }
        }
        if self.timestamp && !self.json {
            self.out.line(&date_now());
        }
        let rows = self.stacks.sorted(false, self.top);
        let time = (self.json && self.timestamp).then(date_now);
        let form = StackForm::of(self.json, self.folded);
        self.stacks
            .print(&mut self.out, &rows, form, "count", time.as_deref())
    }
}

impl Sink for Counter {
    fn event(&mut self, ev: &Event) -> Flow {
        if self.ids[ev.id as usize] {
            if ev.pid != self.own {
                self.stacks.start(ev, 1);
            }
        } else {
            self.stacks.stack(ev);
        }
        Flow::Continue
    }

    fn tick(&mut self) -> Flow {
        let f = self.print();
        self.stacks.clear();
        f
    }
}

/// Stream, then the counts, the files and what was lost.
fn trace(
    inst: &Instance,
    mut counter: Counter,
    args: &Args,
    plan: &Plan,
    files: FlameFiles,
) -> Result<()> {
    let mut reader = match counter.kernel {
        Some(_) => None,
        None => Some(inst.reader()?),
    };
    signals::check()?;
    inst.start()?;
    status::TracingLine::new(format!("stacks of {} \"{}\"", plan.what(), args.pattern))
        .task(args.task.task())
        .duration(args.duration.duration)
        .how(if counter.kernel.is_some() {
            "counted in the kernel (hist trigger)"
        } else {
            "counted from the buffer"
        })
        .print();
    let summary = stream::run(
        reader.as_mut(),
        &mut counter,
        StreamOpts {
            duration: args.duration.duration,
            tick: args.interval,
            task: args.task.task(),
            ..StreamOpts::default()
        },
    )?;
    if let Some(e) = counter.error.take() {
        return Err(e);
    }
    if !summary.stopped_by_sink() {
        // With -i, what came after the last printout is printed too.
        counter.stacks.flush();
        if args.interval.is_none() || !counter.stacks.sorted(false, None).is_empty() {
            counter.print();
        }
        let all = counter.stacks.sorted(true, None);
        let lines = counter.stacks.folded(&all);
        files.write("stackcount", "events", Palette::Hot, &lines)?;
    }
    status::finish(
        "stackcount",
        &mut counter.out,
        &summary,
        " (their stacks are not counted)",
    )?;
    if let Some(n) = counter
        .kernel
        .as_ref()
        .map(|k| k.dropped)
        .filter(|&n| n > 0)
    {
        eprintln!("stackcount: {n} events were not counted: the kernel's table of stacks was full");
    }
    Ok(())
}
