//! execsnoop - trace new programs: execve(2) and execveat(2) calls, one
//! line each with its parent, result and arguments.
//!
//! USAGE: execsnoop [-rtTUqx] [-j] [-a ARGC] [-p PID|-L TID] [-n NAME]
//!                  [-u USER] [-l LINE] [-d secs] [NAME]
//!
//! Each call is shown when it returns. The calls come from the system
//! calls' own tracepoints (perf-tools' execsnoop probed kernel functions
//! that changed in 4.17); the program run is `sched:sched_process_exec`'s
//! filename, a kernel copy; the parent comes from `sched:sched_process_fork`
//! (or /proc for processes older than the run). The arguments are user
//! memory, which those tracepoints do not copy: where the kernel has kprobe
//! events, a kprobe on each call's wrapper copies them in the kernel
//! (`:ustring` through the saved registers); elsewhere execsnoop reads
//! /proc/PID/cmdline when it reads the event, which is best effort and
//! marked as such.
//!
//! REQUIREMENTS: system call and sched tracepoints, instances, root;
//! kprobe events (CONFIG_KPROBE_EVENTS) for arguments copied in the kernel.
//! OVERHEAD: a few events per exec, which are rare: negligible.

use clap::Parser;
use ftrace_common::app::cli;
use ftrace_common::app::output::TimeColumn;
use ftrace_common::app::snoop::{self as skel, Names, SnoopOpts, SyscallRegs, Syscalls};
use ftrace_common::app::{signals, status};
use ftrace_common::kernel::caps::{self, Feature};
use ftrace_common::kernel::needs;
use ftrace_common::kernel::tracefs::Tracefs;
use ftrace_common::lifecycle::dynevent::ProbeGroup;
use ftrace_common::lifecycle::instance::Instance;
use ftrace_common::lifecycle::sweep;
use ftrace_common::probes::event;
use ftrace_common::{Error, ErrorKind, Result};
use snoop::{ArgsFrom, Call, Filters, Snoop};
use std::process::ExitCode;

mod snoop;

const EXAMPLES: &str = "\
Examples:
  execsnoop                  # trace every exec, until Ctrl-C
  execsnoop -x               # failed execs too
  execsnoop -T -U            # with the time of day and the user ID
  execsnoop -t               # with TIMEs (seconds)
  execsnoop -a 4             # at most 4 arguments each
  execsnoop -q               # each argument in quotes
  execsnoop -n make          # programs named *make*
  execsnoop 'ssh$'           # programs whose name matches a regular expression
  execsnoop -l testpkg       # execs with an argument matching 'testpkg'
  execsnoop -u postgres      # by user postgres
  execsnoop -p 181           # by PID 181 and what it starts
  execsnoop -j -d 10         # JSON lines for 10 seconds";

const LONG_ABOUT: &str = "\
Trace new programs: execve(2) and execveat(2) calls, one line per call when it returns, \
from the system calls' own tracepoints in a private instance. Lost events are always \
reported.

Fields: TIME (-T): the time of day of the call. TIMEs (-t): seconds of CLOCK_MONOTONIC. \
UID (-U): the user ID of the process. PCOMM: the process's name (the new program's, or \
the caller's for a failed exec). PID: the process. PPID: its parent ('?' if unknown). \
RET: what the call returned: 0, or -ERRNO (-2: no such file, -13: permission denied); \
failed execs are shown with -x only. ARGS: the program's path (the kernel's copy for an \
exec that succeeded) and its arguments after argv[0], ' ...' after the last if more were \
cut by -a. JSON lines also name the call and where the arguments came from.

The arguments are user memory, which the tracepoints do not copy. Where the kernel has \
kprobe events, a kprobe on each call copies them in the kernel, exactly. Where it has \
none, execsnoop reads /proc/PID/cmdline when it reads the event (for a failed exec, the \
caller's memory): best effort, since the process may have changed them or exited by \
then. The header then reads ARGS*, the Tracing line says so, and a process that could \
not be read shows its path followed by [?].

Re-execs: like perf-tools' execsnoop, a process's later execs (without a fork in \
between) are left out unless -r is given.

Requirements: root, tracefs (mounted if needed) with instances, system call tracepoints \
(CONFIG_FTRACE_SYSCALLS), sched tracepoints; kprobe events (CONFIG_KPROBE_EVENTS) for \
arguments copied in the kernel.

Overhead: three or four events per exec, and execs are rare: negligible.";

/// Trace new programs: execve and execveat calls.
#[derive(Debug, Parser)]
#[command(
    name = "execsnoop",
    version,
    about = "Trace new programs: execve and execveat calls with their arguments, parent and result",
    long_about = LONG_ABOUT,
    after_help = EXAMPLES,
    mut_arg("failed", |a| a.help("Include failed execs (left out otherwise), as bcc's -x does"))
)]
struct Args {
    #[command(flatten)]
    snoop: SnoopOpts,
    /// Show at most ARGC arguments after the program's path (then ' ...').
    #[arg(short = 'a', long = "max-args", value_name = "ARGC", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(1..=64))]
    max_args: u32,
    /// Include re-execs: a process's later execs without a fork in between.
    #[arg(short = 'r', long = "reexecs")]
    reexecs: bool,
    /// A TIME column: the time of day of the call.
    #[arg(short = 'T', long = "time")]
    time: bool,
    /// A UID column: the user ID of the process (read from /proc).
    #[arg(short = 'U', long = "print-uid")]
    print_uid: bool,
    /// Only execs by this user (a name or a number).
    #[arg(short = 'u', long = "uid", value_name = "USER")]
    uid: Option<String>,
    /// Each argument in double quotes.
    #[arg(short = 'q', long = "quote")]
    quote: bool,
    /// Only execs with an argument (or path) matching this regular expression.
    #[arg(short = 'l', long = "line", value_name = "LINE")]
    line: Option<String>,
    /// Only programs whose name matches this regular expression anywhere
    /// (perf-tools' name).
    #[arg(value_name = "NAME")]
    pattern: Option<String>,
}

ftrace_common::cli_tests!(Args);

/// The system calls, as their tracepoints name them.
const CALLS: [&str; 2] = ["execve", "execveat"];

pub fn main() -> ExitCode {
    cli::main("execsnoop", execsnoop)
}

ftrace_common::tool_command!(Args);

fn execsnoop(args: Args) -> Result<()> {
    let filters = options(&args)?;
    let tfs = Tracefs::open()?;
    let (calls, kernel_args) = checks(&tfs, &args)?;
    // Declared before the instance, which goes first (it disables the
    // probes' events before they are removed).
    let (_group, probes) = probes(&tfs, &calls, kernel_args, args.max_args)?;
    signals::check()?;
    let (inst, snoop) = setup(&tfs, &args, &calls, &probes, filters)?;
    trace(&inst, snoop, &args)
}

/// A regular expression option, or a one-line reason it is not one.
fn regex(what: &str, p: &str) -> Result<regex::Regex> {
    regex::Regex::new(p).map_err(|e| {
        let e = e.to_string();
        let why = e
            .lines()
            .last()
            .unwrap_or_default()
            .trim_start_matches("error: ")
            .to_string();
        Error::usage(format!("{what} '{p}' is not a regular expression: {why}"))
    })
}

/// Options: the filters.
fn options(args: &Args) -> Result<Filters> {
    let uid = match &args.uid {
        Some(u) => Some(snoop::user_id(u).ok_or_else(|| {
            Error::usage(format!("'{u}' is not a user: give a name or a number"))
        })?),
        None => None,
    };
    Ok(Filters {
        name: args.snoop.name_match()?,
        pattern: args
            .pattern
            .as_deref()
            .map(|p| regex("NAME", p))
            .transpose()?,
        line: args.line.as_deref().map(|p| regex("LINE", p)).transpose()?,
        uid,
        failed: args.snoop.failed,
        reexecs: args.reexecs,
    })
}

/// Checks: the kernel has what execsnoop needs, the task exists, which of
/// the calls it has tracepoints for, and whether the arguments can be
/// copied in the kernel.
fn checks(tfs: &Tracefs, args: &Args) -> Result<(Vec<&'static str>, bool)> {
    needs::EXECSNOOP.require(tfs)?;
    if let Some(t) = args.snoop.task.task() {
        t.require_exists()?;
    }
    for ev in ["sched_process_exec", "sched_process_fork"] {
        if !tfs.exists(format!("events/sched/{ev}/format")) {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!("this kernel has no sched:{ev} tracepoint"),
            ));
        }
    }
    let calls = skel::available(tfs, &CALLS, "execve or execveat")?;
    let kprobes = caps::check(tfs, Feature::KprobeEvents).is_yes();
    Ok((calls, kprobes && SyscallRegs::ARCH.is_some()))
}

/// A probe made: its `(system, event)`.
type Made = (String, String);

/// The kprobes that copy each call's path and arguments in the kernel:
/// their group and, per call, the `(system, event)` made.
fn probes(
    tfs: &Tracefs,
    calls: &[&'static str],
    kernel_args: bool,
    max: u32,
) -> Result<(Option<ProbeGroup>, Vec<Option<Made>>)> {
    let Some(regs) = SyscallRegs::ARCH.filter(|_| kernel_args) else {
        let none = calls.iter().map(|_| None).collect();
        sweep::sweep_dead(tfs);
        return Ok((None, none));
    };
    let mut evs = Vec::new();
    for c in calls {
        evs.push(event::parse(&snoop::args_probe(&regs, c, max as usize))?);
    }
    let mut plans = Vec::new();
    for e in &evs {
        plans.push(event::plan(tfs, e, None)?);
    }
    let refs: Vec<&event::EventArg> = evs.iter().collect();
    let (group, made) = event::create(tfs, &refs, &plans)?;
    Ok((group, made.into_iter().map(Some).collect()))
}

/// Setup: the private instance with each call's events (and probe), the
/// execs and the forks enabled.
fn setup(
    tfs: &Tracefs,
    args: &Args,
    calls: &[&'static str],
    probes: &[Option<Made>],
    filters: Filters,
) -> Result<(Instance, Snoop)> {
    let mut inst = skel::instance(tfs, "execsnoop", &args.snoop)?;
    let fork = inst.event_format("sched", "sched_process_fork")?;
    inst.enable_event("sched", "sched_process_fork")?;
    let exec = inst.event_format("sched", "sched_process_exec")?;
    let mut decs = Vec::new();
    let syscalls = Syscalls::setup(&mut inst, calls, probes, |_, name, e, _, p| {
        decs.push(Call::new(name, e, p, args.max_args as usize)?);
        Ok(())
    })?;
    // Enables sched_process_exec, which names each new program.
    let names = Names::new(tfs, &mut inst);
    let from = if probes.iter().any(Option::is_some) {
        ArgsFrom::Kernel
    } else {
        ArgsFrom::Process
    };
    let snoop = Snoop::new(
        names,
        syscalls,
        decs,
        snoop::Sched::new(&exec, &fork)?,
        filters,
        snoop::Look {
            from,
            max_args: args.max_args as usize,
            quote: args.quote,
            uid: args.print_uid,
            clock: args.time.then_some(TimeColumn { seconds: false }),
            secs: args
                .snoop
                .timestamps
                .then_some(TimeColumn { seconds: true }),
            json: args.snoop.json.json,
        },
    );
    Ok((inst, snoop))
}

/// Stream, then what was lost.
fn trace(inst: &Instance, mut snoop: Snoop, args: &Args) -> Result<()> {
    let mut line = status::TracingLine::new("execve and execveat");
    if snoop.look.from == ArgsFrom::Process {
        line = line.note(
            "ARGS* are read from /proc/PID/cmdline (a failed exec's from the caller's memory) \
             when each event is read: best effort, this kernel has no kprobe events \
             (CONFIG_KPROBE_EVENTS) to copy them; [?] where they could not be read.",
        );
    }
    skel::trace("execsnoop", inst, &mut snoop, &args.snoop, line)
}
