//! offcputime - sum the time threads spend blocked, by stack.
//!
//! USAGE: offcputime [-uk] [-UK] [-fj] [-p PID | -t TID] [-m US] [-M US]
//!                   [--state N] [-i secs] [-d secs] [--folded FILE]
//!                   [--svg FILE] [duration]
//!
//! Each sched:sched_switch event of a private instance is followed by the
//! stack of the thread switched out (the `stacktrace`/`userstacktrace`
//! options); the block lasts until a later sched_switch switches the
//! thread back in. The events are merged in time order, the stacks held
//! (common's `app::stacks`) until their time is known, and summed in
//! microseconds, printed as bcc prints them, or folded, or as JSON, or
//! drawn as an off-CPU flame graph.
//!
//! REQUIREMENTS: instances, root, sched:sched_switch; stack traces on
//! events.
//! OVERHEAD: a stack walk and one or two stack records per context switch
//! of the traced threads (of every thread, without -p or -t).

mod cli;
mod threads;

use cli::Args;
use ftrace_common::app::flame::{FlameFiles, Palette};
use ftrace_common::app::output::Output;
use ftrace_common::app::stacks::{StackCounter, StackForm, StackOpts};
use ftrace_common::app::stream::{self, Sink, StreamOpts};
use ftrace_common::app::{cli as app_cli, signals, status};
use ftrace_common::buffer::format::{EventFormat, Field};
use ftrace_common::buffer::reader::Event;
use ftrace_common::kernel::caps::Feature;
use ftrace_common::kernel::needs::OFFCPUTIME;
use ftrace_common::kernel::proc::Task;
use ftrace_common::kernel::tracefs::Tracefs;
use ftrace_common::lifecycle::instance::{Instance, InstanceOptions};
use ftrace_common::lifecycle::sweep;
use ftrace_common::{Error, Flow, Result};
use std::collections::HashMap;
use std::process::ExitCode;
use threads::Threads;

pub fn main() -> ExitCode {
    app_cli::main("offcputime", offcputime)
}

ftrace_common::tool_command!(Args);

fn offcputime(args: Args) -> Result<()> {
    let tfs = Tracefs::open()?;
    checks(&tfs, &args)?;
    let files = args.flame.create()?;
    let (inst, sink) = setup(&tfs, &args)?;
    trace(&inst, sink, &args, files)
}

fn task(args: &Args) -> Option<Task> {
    Task::from_ids(args.pid, args.tid)
}

/// Checks: the kernel has what the stacks need, the task exists, the
/// block times make sense.
fn checks(tfs: &Tracefs, args: &Args) -> Result<()> {
    OFFCPUTIME.require(tfs)?;
    let opts = stack_opts(args);
    if opts.kernel {
        OFFCPUTIME.require_optional(tfs, Feature::KernelStacks)?;
    }
    if opts.user {
        OFFCPUTIME.require_optional(tfs, Feature::UserStacks)?;
    }
    if let Some(t) = task(args) {
        t.require_exists()?;
    }
    if let (Some(min), Some(max)) = (args.min_us, args.max_us) {
        if min > max {
            return Err(Error::usage(format!(
                "-m {min} is more than -M {max}: no block could be counted"
            )));
        }
    }
    Ok(())
}

/// Kernel and user stacks, as bcc; -U and -K choose one.
fn stack_opts(args: &Args) -> StackOpts {
    StackOpts {
        kernel: !args.user_stacks,
        user: !args.kernel_stacks,
        per_thread: true,
        tracepoint: true,
        comm: true,
        delimited: args.delimited,
        ..StackOpts::default()
    }
}

/// The fields of sched_switch that offcputime reads.
struct Switch {
    id: u16,
    prev_comm: Field,
    prev_pid: Field,
    prev_state: Field,
    next_pid: Field,
}

impl Switch {
    fn new(f: &EventFormat) -> Result<Switch> {
        Ok(Switch {
            id: f.id,
            prev_comm: f.require("prev_comm")?.clone(),
            prev_pid: f.require("prev_pid")?.clone(),
            prev_state: f.require("prev_state")?.clone(),
            next_pid: f.require("next_pid")?.clone(),
        })
    }
}

/// Setup: sweep, the private instance limited to the task, the stack
/// options and sched_switch on.
fn setup(tfs: &Tracefs, args: &Args) -> Result<(Instance, OffCpu)> {
    sweep::sweep_dead(tfs);
    let mut inst = Instance::create_with(
        tfs,
        "offcputime",
        &InstanceOptions {
            buffer_kb: args.buffer.buffer_kb,
            ..InstanceOptions::default()
        },
    )?;
    if let Some(t) = task(args) {
        // sched_switch passes set_event_pid when either thread is in it.
        inst.follow(t, false)?;
    }
    let mut stacks = StackCounter::new(&mut inst, stack_opts(args))?;
    if let Some(t) = task(args) {
        stacks.remember(t.process());
    }
    let switch = Switch::new(&inst.event_format("sched", "sched_switch")?)?;
    signals::check()?;
    inst.enable_event("sched", "sched_switch")?;
    let sink = OffCpu {
        switch,
        stacks,
        threads: Threads::default(),
        off: HashMap::new(),
        unended: 0,
        own: std::process::id(),
        pid: args.pid,
        tid: args.tid.map(|t| t as i32),
        user_threads: args.user_threads,
        kernel_threads: args.kernel_threads,
        state: args.state,
        min_us: args.min_us,
        max_us: args.max_us,
        out: Output::new(),
        folded: args.folded_out,
        json: args.json.json,
    };
    Ok((inst, sink))
}

/// Task states as sched_switch reports them (S, D, T, t, X, Z, P, I);
/// above them the kernel marks a preempted task.
const STATE_MASK: u64 = 0xff;
/// EXIT_DEAD and EXIT_ZOMBIE: the thread will not run again.
const EXITING: u64 = 0x10 | 0x20;

/// The sink: a switch starts the block of the thread switched out (its
/// stack held by its thread ID) and ends that of the thread switched in.
struct OffCpu {
    switch: Switch,
    stacks: StackCounter,
    threads: Threads,
    /// Threads off-CPU now: when they were switched out.
    off: HashMap<i32, u64>,
    /// Blocks whose end was never seen (its event lost).
    unended: u64,
    own: u32,
    pid: Option<u32>,
    tid: Option<i32>,
    user_threads: bool,
    kernel_threads: bool,
    state: Option<u64>,
    min_us: Option<u64>,
    max_us: Option<u64>,
    out: Output,
    folded: bool,
    json: bool,
}

impl OffCpu {
    /// Whether the block of `prev`, switched out in `state`, is counted.
    fn counted(&mut self, prev: i32, state: u64) -> bool {
        if prev <= 0 || self.tid.is_some_and(|t| t != prev) {
            return false;
        }
        if let Some(s) = self.state {
            let st = state & STATE_MASK;
            if (s == 0 && st != 0) || (s != 0 && st & s == 0) {
                return false;
            }
        }
        let tgid = self.threads.tgid(prev);
        if tgid == Some(self.own) || self.pid.is_some_and(|p| tgid != Some(p)) {
            return false;
        }
        if self.user_threads || self.kernel_threads {
            return self.threads.kthread(prev) == self.kernel_threads;
        }
        true
    }

    fn print(&mut self) -> Flow {
        self.stacks.flush();
        let rows = self.stacks.sorted(false, None);
        self.stacks.print(
            &mut self.out,
            &rows,
            StackForm::of(self.json, self.folded),
            "us",
            None,
        )
    }
}

impl Sink for OffCpu {
    fn event(&mut self, ev: &Event) -> Flow {
        if ev.id != self.switch.id {
            self.stacks.stack(ev);
            return Flow::Continue;
        }
        let d = ev.data;
        let (Some(prev), Some(next), Some(state)) = (
            self.switch.prev_pid.i64(d),
            self.switch.next_pid.i64(d),
            self.switch.prev_state.i64(d),
        ) else {
            self.stacks.skip(ev);
            return Flow::Continue;
        };
        let (prev, next, state) = (prev as i32, next as i32, state as u64);
        // The end of next's block.
        if let Some(t0) = self.off.remove(&next) {
            let us = ev.ts.saturating_sub(t0) / 1000;
            let keep = self.min_us.is_none_or(|m| us >= m) && self.max_us.is_none_or(|m| us <= m);
            self.stacks.weigh(next as u64, if keep { us } else { 0 });
        }
        // The start of prev's. A thread switched out again without having
        // been switched in: the event that ended its block was lost.
        if self.off.contains_key(&prev) {
            self.unended += 1;
        }
        if self.counted(prev, state) {
            if let Some(c) = self.switch.prev_comm.str(d) {
                self.stacks.name(prev, &c);
            }
            self.off.insert(prev, ev.ts);
            self.stacks.start_held(ev, prev as u64);
        } else {
            self.off.remove(&prev);
            self.stacks.skip(ev);
        }
        if state & STATE_MASK & EXITING != 0 {
            self.off.remove(&prev);
            self.stacks.weigh(prev as u64, 0);
            self.threads.forget(prev);
        }
        Flow::Continue
    }

    fn tick(&mut self) -> Flow {
        let f = self.print();
        self.stacks.clear();
        f
    }
}

/// Stream, then the totals, the files and what was lost.
fn trace(inst: &Instance, mut sink: OffCpu, args: &Args, files: FlameFiles) -> Result<()> {
    let mut reader = inst.reader()?;
    signals::check()?;
    inst.start()?;
    let which = match (args.user_threads, args.kernel_threads) {
        (true, _) => "user threads",
        (_, true) => "kernel threads",
        _ => "all threads",
    };
    let stacks = match (args.user_stacks, args.kernel_stacks) {
        (true, _) => "user stacks",
        (_, true) => "kernel stacks",
        _ => "user + kernel stacks",
    };
    status::TracingLine::new(format!("off-CPU time (us) of {which} by {stacks}"))
        .task(task(args))
        .duration(args.duration())
        .how("sched:sched_switch, summed from the buffer")
        .print();
    let summary = stream::run(
        Some(&mut reader),
        &mut sink,
        StreamOpts {
            duration: args.duration(),
            tick: args.interval,
            task: task(args),
            ordered: true,
            ..StreamOpts::default()
        },
    )?;
    if !summary.stopped_by_sink() {
        sink.stacks.flush();
        if args.interval.is_none() || !sink.stacks.sorted(false, None).is_empty() {
            sink.print();
        }
        let all = sink.stacks.sorted(true, None);
        let lines = sink.stacks.folded(&all);
        files.write("offcputime", "us", Palette::Io, &lines)?;
    }
    if sink.unended > 0 {
        let n = sink.unended;
        let (s, are) = if n == 1 { ("", "is") } else { ("s", "are") };
        eprintln!("offcputime: {n} block{s} {are} not counted: the switch that ended each was missing from what the buffer gave (a lost event)");
    }
    status::finish(
        "offcputime",
        &mut sink.out,
        &summary,
        " (blocks they began or ended are not counted)",
    )
}
