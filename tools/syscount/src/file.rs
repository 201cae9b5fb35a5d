//! syscount and trace.dat files: `-w FILE` records everything a later
//! count may need; `--read FILE` counts a file's system calls as a run
//! counts them.

use crate::cli::Args;
use crate::count::Decoder;
use crate::plan::Plan;
use crate::tasks::Tasks;
use ftrace_common::app::status;
use ftrace_common::app::stream::replay;
use ftrace_common::buffer::tracedat::read::TraceDat;
use ftrace_common::lifecycle::instance::Instance;
use ftrace_common::{Error, Result};

/// With `-w`: both raw_syscalls events and the task events, whatever this
/// run's options count, so that the file answers any later `--read`
/// (-c, -v, -L, -x, --hist).
pub fn record_all(inst: &mut Instance, dec: &mut Decoder, need_tasks: bool) -> Result<()> {
    if !dec.want_enter {
        inst.enable_event("raw_syscalls", "sys_enter")?;
    }
    if !dec.want_exit {
        inst.enable_event("raw_syscalls", "sys_exit")?;
    }
    if !need_tasks {
        dec.meta(inst)?;
    }
    Ok(())
}

/// `--read FILE`: the counts of a file's system calls.
pub fn count(args: &Args, plan: &Plan, file: &TraceDat) -> Result<()> {
    if args.pid.is_some() || args.tid.is_some() || !args.command.is_empty() {
        return Err(Error::usage(
            "-p, --tid and a command choose what to trace: not with --read",
        ));
    }
    let fmt = |sys: &str, ev: &str| file.format(sys, ev);
    let (Some(enter), Some(exit)) = (
        fmt("raw_syscalls", "sys_enter"),
        fmt("raw_syscalls", "sys_exit"),
    ) else {
        return Err(Error::usage(format!(
            "{} holds no raw_syscalls events (record them with syscount -w, or trace-cmd record -e raw_syscalls)",
            file.path().display()
        )));
    };
    let mut dec = Decoder::new(&enter, &exit)?;
    // What a live run of these options would read (plan::arm).
    let at_enter = crate::count_at_enter(plan);
    dec.want_enter = at_enter || plan.latency;
    dec.want_exit = !at_enter;
    if let Some(f) = fmt("task", "task_newtask") {
        if let (Some(p), Some(c), Some(fl)) =
            (f.field("pid"), f.field("comm"), f.field("clone_flags"))
        {
            dec.newtask = Some((f.id, p.clone(), c.clone(), fl.clone()));
        }
    }
    if let Some(f) = fmt("sched", "sched_process_exit") {
        if let (Some(p), Some(c)) = (f.field("pid"), f.field("comm")) {
            dec.pexit = Some((f.id, p.clone(), c.clone()));
        }
    }
    if let Some(f) = fmt("sched", "sched_process_exec") {
        if let (Some(p), Some(o)) = (f.field("pid"), f.field("old_pid")) {
            dec.pexec = Some((f.id, p.clone(), o.clone()));
        }
    }
    let tasks = Tasks::offline(&file.cmdlines, &file.tgids);
    let mut counter = crate::new_counter(args, plan, dec, tasks, None);
    counter.offline = true;
    let summary = replay(file, &mut counter, args.summary.interval)?;
    counter.print_summary();
    status::finish("syscount", &mut counter.report.out, &summary, "")
}
