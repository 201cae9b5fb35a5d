//! killsnoop - trace signals sent by kill(2), tkill(2), tgkill(2) and
//! pidfd_send_signal(2), one line per call, with its result.
//!
//! USAGE: killsnoop [-stx] [-j] [-p PID|-L TID] [-n NAME] [--signal SIG] [-d secs]
//!
//! Each call is shown when it returns: the sender, the signal, the target
//! and what the call returned. The events are the system calls' own
//! tracepoints (`syscalls:sys_enter_kill` ... and their `sys_exit_`),
//! recorded in a private instance and paired per thread from the binary
//! buffer; perf-tools' killsnoop saw kill(2) alone.
//!
//! REQUIREMENTS: system call tracepoints (CONFIG_FTRACE_SYSCALLS),
//! instances, root.
//! OVERHEAD: two events per call of these four system calls, which are
//! rare on most systems: negligible.

use clap::Parser;
use ftrace_common::app::cli;
use ftrace_common::app::output::{Output, TimeColumn};
use ftrace_common::app::snoop::{self as skel, Names, Pending, SnoopOpts, Syscalls};
use ftrace_common::app::status;
use ftrace_common::buffer::format::EventFormat;
use ftrace_common::kernel::tracefs::Tracefs;
use ftrace_common::kernel::{needs, signame};
use ftrace_common::lifecycle::instance::Instance;
use ftrace_common::lifecycle::sweep;
use ftrace_common::{Error, Result};
use snoop::{Call, Filters, Snoop};
use std::process::ExitCode;

mod snoop;

const EXAMPLES: &str = "\
Examples:
  killsnoop                 # trace every signal sent, until Ctrl-C
  killsnoop -s              # signal names instead of numbers
  killsnoop -t              # TIMEs: seconds since boot instead of the clock
  killsnoop -x              # only calls that failed
  killsnoop -p 181          # signals sent by PID 181
  killsnoop -n bash         # sent by processes named *bash*
  killsnoop --signal KILL   # SIGKILL only (a name or a number)
  killsnoop -j -d 10        # JSON lines for 10 seconds";

const LONG_ABOUT: &str = "\
Trace the signals processes send with kill(2), tkill(2), tgkill(2) and \
pidfd_send_signal(2), one line per call when it returns, from the system calls' own \
tracepoints in a private instance. Lost events are always reported.

Fields: TIME: when the call was made, local time (TIMEs with -t: seconds of \
CLOCK_MONOTONIC, as perf-tools prints them). PID and COMM: the thread that sent the \
signal. SIG: the signal number (its name with -s; 0 only checks that the target \
exists). TPID: the target: for kill(2) the PID (0: the sender's process group, -1: every \
process it may signal, below -1: the process group -TPID); for tkill(2) and tgkill(2) \
the thread; for pidfd_send_signal(2) the process the descriptor refers to, as the \
kernel resolved it (signal:signal_generate), or from the sender's /proc fdinfo for a \
call that sent nothing (pidfd:N if the descriptor is gone by then). RESULT: what the call returned: 0, or -ERRNO (-3: no such process, -1: not \
permitted). JSON lines also name the system call and, for tgkill(2), the thread group.

Requirements: root, tracefs (mounted if needed) with instances, system call tracepoints \
(CONFIG_FTRACE_SYSCALLS).

Overhead: two events per call of these four system calls, which are rare on most \
systems: negligible.";

/// Trace signals sent by kill, tkill, tgkill and pidfd_send_signal.
#[derive(Debug, Parser)]
#[command(
    name = "killsnoop",
    version,
    about = "Trace signals sent by kill, tkill, tgkill and pidfd_send_signal",
    long_about = LONG_ABOUT,
    after_help = EXAMPLES
)]
struct Args {
    #[command(flatten)]
    snoop: SnoopOpts,
    /// Signal names (SIGKILL) instead of numbers in the SIG column.
    #[arg(short = 's', long = "names")]
    names: bool,
    /// Only this signal: a number (9) or a name (KILL, SIGKILL).
    #[arg(long = "signal", value_name = "SIG")]
    signal: Option<String>,
}

ftrace_common::cli_tests!(Args);

/// The system calls, as their tracepoints name them.
const CALLS: [&str; 4] = ["kill", "tkill", "tgkill", "pidfd_send_signal"];

pub fn main() -> ExitCode {
    cli::main("killsnoop", killsnoop)
}

ftrace_common::tool_command!(Args);

fn killsnoop(args: Args) -> Result<()> {
    let filters = options(&args)?;
    let tfs = Tracefs::open()?;
    let calls = checks(&tfs, &args)?;
    let (inst, snoop) = setup(&tfs, &args, &calls, filters)?;
    trace(&inst, snoop, &args)
}

/// Options: the name and signal filters.
fn options(args: &Args) -> Result<Filters> {
    let name = args.snoop.name_match()?;
    let signal = match &args.signal {
        Some(s) => Some(signame::parse(s).ok_or_else(|| {
            Error::usage(format!(
                "'{s}' is not a signal: give a number (9) or a name (KILL, SIGKILL, RTMIN+1)"
            ))
        })? as i64),
        None => None,
    };
    Ok(Filters {
        name,
        signal,
        failed: args.snoop.failed,
    })
}

/// Checks: the kernel has what killsnoop needs, the task exists, and
/// which of the four calls this kernel has tracepoints for (pidfd_send_signal
/// came in 5.1).
fn checks(tfs: &Tracefs, args: &Args) -> Result<Vec<&'static str>> {
    needs::KILLSNOOP.require(tfs)?;
    if let Some(t) = args.snoop.task.task() {
        t.require_exists()?;
    }
    skel::available(tfs, &CALLS, "kill, tkill, tgkill or pidfd_send_signal")
}

/// Setup: the private instance with both events of each call enabled.
fn setup(
    tfs: &Tracefs,
    args: &Args,
    calls: &[&'static str],
    filters: Filters,
) -> Result<(Instance, Snoop)> {
    sweep::sweep_dead(tfs);
    let mut inst = skel::instance(tfs, "killsnoop", &args.snoop)?;
    // The target of a pidfd, as the kernel resolved it: signal_generate
    // fires inside the call, in the sender, with the target's PID.
    let generate = match inst.event_format("signal", "signal_generate") {
        Ok(f) => {
            inst.enable_event("signal", "signal_generate")?;
            Some((f.id, f.require("pid")?.clone()))
        }
        Err(_) => None,
    };
    let mut decs = Vec::new();
    let syscalls = Syscalls::setup(&mut inst, calls, &[], |_, name, e, _, _| {
        let field = |f: &EventFormat, n: &str| f.require(n).cloned();
        let target = if name == "pidfd_send_signal" {
            "pidfd"
        } else {
            "pid"
        };
        decs.push(Call {
            name,
            target: field(e, target)?,
            tgid: e.field("tgid").cloned(),
            sig: field(e, "sig")?,
        });
        Ok(())
    })?;
    let names = Names::new(tfs, &mut inst);
    let snoop = Snoop {
        names,
        syscalls,
        calls: decs,
        pending: Pending::default(),
        generate,
        filters,
        sig_names: args.names,
        time: TimeColumn {
            seconds: args.snoop.timestamps,
        },
        json: args.snoop.json.json,
        out: Output::new(),
    };
    Ok((inst, snoop))
}

/// Stream, then what was lost.
fn trace(inst: &Instance, mut snoop: Snoop, args: &Args) -> Result<()> {
    let line = status::TracingLine::new("kill, tkill, tgkill and pidfd_send_signal");
    skel::trace("killsnoop", inst, &mut snoop, &args.snoop, line)
}
