//! syscount - count system calls, by process or by system call, with
//! latency and failures.
//!
//! USAGE: syscount [-chvxLm] [-t top] [-e ERRNO] [-i secs]
//!                 {-p PID|--tid TID|-d secs|command [args...]}
//!
//! Counts come from the `raw_syscalls:sys_enter`/`sys_exit` tracepoints in a
//! private ftrace instance. Where the kernel has hist triggers
//! (CONFIG_HIST_TRIGGERS) and only counts are wanted, the kernel counts in
//! a hash table and nothing goes through the trace buffer; otherwise
//! syscount reads the binary per-CPU buffers and counts in user space. Both
//! print the same thing. Latency (`-L`, `--hist`) always uses the buffer:
//! each call's time is its `sys_exit` time stamp minus its `sys_enter`.
//!
//! syscount's own system calls are never counted: its PID is in the
//! instance's `set_event_notrace_pid`, so the kernel never records them.
//!
//! A command given after the options is started by syscount and traced from
//! its first system call (its `execve`) until it exits, with its children;
//! syscount then exits with the command's exit status.
//!
//! REQUIREMENTS: root, tracefs (mounted by syscount if needed), the
//! raw_syscalls tracepoints (CONFIG_FTRACE_SYSCALLS). Hist triggers are
//! used where present.
//!
//! OVERHEAD: every system call of the traced tasks is recorded: the kernel
//! spends roughly 0.1-0.3 us per call on it. In the buffer, syscount reads
//! whole binary sub-buffers; at about 1 M calls/s it uses a fraction of a
//! core (the README has measured figures). With hist triggers syscount
//! itself costs nearly nothing.

mod agg;
mod child;
mod cli;
mod count;
mod file;
mod plan;
mod report;
mod tasks;

use agg::{Agg, By, IdMap, Names};
use child::Child;
use cli::{Args, CountIn};
use count::{Counter, Decoder, KernelCount};
use ftrace_common::app::output::Output;
use ftrace_common::app::status::{self, TracingLine};
use ftrace_common::app::stream::{stream, StreamOpts};
use ftrace_common::kernel::proc::Task;
use ftrace_common::kernel::syscalls::{self, errno};
use ftrace_common::kernel::tracefs::Tracefs;
use ftrace_common::kernel::{caps, needs, proc};
use ftrace_common::lifecycle::hist::HistTrigger;
use ftrace_common::lifecycle::instance::{Instance, InstanceOptions};
use ftrace_common::lifecycle::sweep;
use ftrace_common::{Error, Result};
use plan::Plan;
use report::Report;
use std::collections::HashMap;
use std::process::ExitCode;
use tasks::Tasks;

pub fn main() -> ExitCode {
    let args = match ftrace_common::app::cli::parse_or_exit::<Args>() {
        Ok(a) => a,
        Err(code) => return code,
    };
    let mut command_status = None;
    let code = ftrace_common::app::cli::run("syscount", || {
        command_status = syscount(args)?;
        Ok(())
    });
    // The body succeeded: a traced command's own status is ours.
    match command_status {
        Some(s) => ExitCode::from(s),
        None => code,
    }
}

ftrace_common::tool_command!(Args);

fn syscount(args: Args) -> Result<Option<u8>> {
    let plan = plan::plan(&args)?;
    if args.list {
        plan::list(&plan.table)?;
        return Ok(None);
    }
    if let Some(f) = args.read.open()? {
        file::count(&args, &plan, &f)?;
        return Ok(None);
    }
    let tfs = Tracefs::open()?;
    let in_kernel = checks(&tfs, &args)?;
    sweep::sweep_dead(&tfs);
    // The command's process, forked before the instance exists so that it
    // cannot inherit our notrace entry (see child.rs).
    let mut child = match &plan.command {
        Some((path, argv)) => Some(Child::spawn(path, argv)?),
        None => None,
    };
    warn_32bit(&args, &plan);
    let (armed, dec, tasks) = setup(&tfs, &args, &plan, in_kernel, child.as_ref())?;
    count(&tfs, &args, &plan, &armed, dec, tasks, &mut child)?;
    drop(armed);
    child::command_status(child)
}

/// Checks: the events, the task; where to count.
fn checks(tfs: &Tracefs, args: &Args) -> Result<bool> {
    needs::SYSCOUNT.require(tfs)?;
    if let Some(p) = args.pid {
        proc::require_exists(p)?;
        if let Some(tgid) = proc::tgid(p) {
            if tgid != p {
                return Err(Error::usage(format!(
                    "{p} is a thread of process {tgid}: use -p {tgid}, or --tid {p} for that thread alone"
                )));
            }
        }
    }
    if let Some(t) = args.tid {
        proc::require_exists(t)?;
    }
    let hist_ok = needs::SYSCOUNT.has(tfs, caps::Feature::HistTriggers);
    let latency = args.latency || !args.hist.is_empty() || args.write.write.is_some();
    Ok(match args.count_in {
        CountIn::Buffer => false,
        CountIn::Auto => hist_ok.is_yes() && !latency,
        CountIn::Kernel => match hist_ok {
            caps::Support::Yes => true,
            caps::Support::No(why) => return Err(caps::unsupported(why)),
        },
    })
}

/// A 32-bit program's calls are numbered by its own ABI: say so before
/// printing names from the 64-bit table (also checked per summary for every
/// process seen).
fn warn_32bit(args: &Args, plan: &Plan) {
    let is_32 = match (&plan.command, args.pid.or(args.tid)) {
        (Some((path, _)), _) => tasks::elf_is_32bit(path),
        (None, Some(p)) => tasks::is_32bit(p as i32),
        _ => None,
    };
    if is_32 == Some(true) && cfg!(target_pointer_width = "64") {
        eprintln!(
            "syscount: this is a 32-bit program: its system calls carry the 32-bit ABI's numbers, \
             counted here under the {} names of those numbers",
            plan.table.arch
        );
    }
}

/// Whether the counts need task names (and the task events).
fn need_tasks(args: &Args, plan: &Plan) -> bool {
    plan.by != By::Syscall || args.pid.is_some()
}

/// Whether calls are counted at their entry (not their return).
fn count_at_enter(plan: &Plan) -> bool {
    !plan.latency && !plan.err.active()
}

/// The instance and, when counting in the kernel, its hist trigger. Fields
/// drop in their order: the trigger is removed before the instance.
struct Armed {
    trigger: Option<HistTrigger>,
    inst: Instance,
}

/// Setup, in a private instance that is removed when it drops. Counting
/// needs no common clock (latency does), and in the kernel no big buffer
/// (only task events go there): each skipped step saves an RCU wait at
/// start.
fn setup(
    tfs: &Tracefs,
    args: &Args,
    plan: &Plan,
    in_kernel: bool,
    child: Option<&Child>,
) -> Result<(Armed, Decoder, Tasks)> {
    let mut inst = Instance::create_with(
        tfs,
        "syscount",
        &InstanceOptions {
            buffer_kb: args
                .buffer
                .buffer_kb
                .or((!in_kernel).then(|| plan::default_buffer_kb(proc::online_cpus()))),
            kernel_buffer: in_kernel,
            keep_clock: !plan.latency && args.write.write.is_none(),
            ..InstanceOptions::default()
        },
    )?;
    let mut tasks = Tasks::new(Some(tfs.path("saved_cmdlines")));
    if let Some(pid) = args.pid {
        inst.follow(Task::Process(pid), false)?;
        tasks.know_threads(pid as i32, &proc::threads(pid).unwrap_or_default());
    } else if let Some(tid) = args.tid {
        inst.follow(Task::Thread(tid), false)?;
    } else if let Some(c) = child {
        inst.set_event_pids(&[c.pid()], true)?;
    }
    let (mut dec, trigger) = plan::arm(
        &mut inst,
        plan,
        in_kernel,
        need_tasks(args, plan),
        count_at_enter(plan),
    )?;
    if args.write.write.is_some() {
        file::record_all(&mut inst, &mut dec, need_tasks(args, plan))?;
    }
    Ok((Armed { inst, trigger }, dec, tasks))
}

/// Stream and summary: counts until the end, then prints them.
fn count(
    tfs: &Tracefs,
    args: &Args,
    plan: &Plan,
    armed: &Armed,
    dec: Decoder,
    mut tasks: Tasks,
    child: &mut Option<Child>,
) -> Result<()> {
    let (inst, trigger) = (&armed.inst, armed.trigger.as_ref());
    let mut reader = inst.reader()?;
    inst.start()?;
    if let Some(t) = trigger {
        t.cont()?;
    }
    if plan.by == By::Pid || plan.by == By::PidSyscall {
        // After the start: tasks created from now on come as events.
        tasks.snapshot();
    }
    let mut rec = args.write.start("syscount", inst, false)?;
    args.write
        .line(tracing_line(args, plan, child.is_some(), trigger.is_some()))
        .print();
    if let Some(c) = child.as_mut() {
        c.release()?;
    }
    let mut counter = new_counter(args, plan, dec, tasks, trigger);
    // Already said above.
    if let Some(p) = child.as_ref().map(|c| c.pid()).or(args.pid).or(args.tid) {
        counter.checked_32bit.insert(p as i32);
    }
    let mut command_ended = || child.as_mut().is_some_and(|c| c.try_wait().is_some());
    let summary = stream(
        &mut reader,
        &mut counter,
        StreamOpts {
            duration: args.duration.duration,
            ordered: plan.latency,
            tick: args.summary.interval,
            task: Task::from_ids(args.pid, args.tid),
            stop_when: Some(&mut command_ended),
            recorder: rec.as_mut().map(|r| &mut r.recorder),
        },
    )?;
    if let Some(r) = rec {
        drop(reader);
        r.finish(inst)?;
        return status::finish("syscount", &mut counter.report.out, &summary, "");
    }
    if let Some(e) = counter.error.take() {
        return Err(e);
    }
    if let Some(t) = trigger {
        t.pause()?;
    }
    counter.poll_kernel()?;
    counter.print_summary();
    status::finish("syscount", &mut counter.report.out, &summary, "")?;
    if let Some(k) = &counter.kernel {
        if k.dropped > 0 {
            eprintln!(
                "syscount: LOST {} events: the kernel's hist table was full; \
                 use --count-in buffer",
                k.dropped
            );
        }
    }
    if counter.report.unknown_seen {
        let check = syscalls::cross_check(&plan.table, &syscalls::kernel_syscall_events(tfs));
        if let Some(note) = check.note(&plan.table) {
            eprintln!("syscount: {note}");
        }
    }
    Ok(())
}

/// The counter the stream feeds.
fn new_counter<'t>(
    args: &Args,
    plan: &Plan,
    dec: Decoder,
    tasks: Tasks,
    trigger: Option<&'t HistTrigger>,
) -> Counter<'t> {
    let hist_nrs: Vec<i64> = plan.hist_nrs.iter().map(|(n, _)| *n).collect();
    let by_nr = matches!(plan.by, By::Syscall | By::PidSyscall);
    Counter {
        dec,
        count_at_enter: count_at_enter(plan),
        latency: plan.latency,
        err: plan.err,
        pending: IdMap::default(),
        agg: Agg::new(need_tasks(args, plan), by_nr, &hist_nrs, plan.unit_ns),
        tasks,
        kernel: trigger.map(|t| KernelCount {
            trig: t,
            prev: HashMap::new(),
            dropped: 0,
        }),
        names: Names::new(plan.table),
        report: Report {
            out: Output::new(),
            by: plan.by,
            latency: plan.latency,
            unit_ns: plan.unit_ns,
            top: args.summary.top,
            json: args.json.json,
            interval: args.summary.interval.is_some(),
            only_process: args.pid.map(|p| p as i32),
            counted_in: if trigger.is_some() {
                "kernel"
            } else {
                "buffer"
            },
            hist_names: plan.hist_nrs.clone(),
            unknown_seen: false,
        },
        error: None,
        warned: Vec::new(),
        lost_flagged: 0,
        seen: IdMap::default(),
        last_seen: 0,
        checked_32bit: Default::default(),
        offline: false,
    }
}

/// `Tracing failed system calls (EBADF) for PID N (counted in the kernel).`
fn tracing_line(args: &Args, plan: &Plan, command: bool, in_kernel: bool) -> TracingLine {
    let mut what = String::from(if plan.err.failed {
        "failed system calls"
    } else {
        "system calls"
    });
    if let Some(e) = plan.err.errno {
        what.push_str(&format!(" ({})", errno::display(e)));
    }
    let mut line = TracingLine::new(what)
        .task(Task::from_ids(args.pid, args.tid))
        .duration(args.duration.duration)
        .how(if in_kernel {
            "counted in the kernel"
        } else {
            "from the trace buffer"
        });
    if command {
        let words: Vec<String> = args.command.iter().map(|w| shell_word(w)).collect();
        line = line
            .scope(format!(" while running: {}", words.join(" ")))
            .no_ctrl_c();
    }
    if let Some(t) = args.summary.top {
        line = line.note(format!("Top {t} only."));
    }
    line
}

/// A word as a shell would need it quoted.
fn shell_word(w: &str) -> String {
    let plain = !w.is_empty()
        && w.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+%@".contains(c));
    if plain {
        w.to_string()
    } else {
        format!("'{}'", w.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_words_are_quoted_like_a_shell_would() {
        assert_eq!(shell_word("ls"), "ls");
        assert_eq!(shell_word("/bin/x=1"), "/bin/x=1");
        assert_eq!(shell_word("a b"), "'a b'");
        assert_eq!(shell_word("it's"), "'it'\\''s'");
        assert_eq!(shell_word(""), "''");
    }
}
