//! ftrace-status - what this kernel can trace, which ftrace-tools work
//! here, and who else is tracing.
//!
//! USAGE: ftrace-status [-hj]
//!
//! The first thirty seconds on an unfamiliar box: the kernel (version,
//! tracefs, lockdown, config), each tracing feature the tools use (yes, or
//! no and why, naming the CONFIG_ option), each tool of the suite (works,
//! works except for some options, cannot run here and why; from the same
//! table of requirements the tools check themselves), and who is tracing
//! now: the top level where it differs from the boot defaults, every
//! instance and dynamic event with its owner (a run of ours, live or
//! killed, or someone else), the memory all trace buffers take. What looks
//! left behind ends in a hint: `reset-ftrace` for ours, the files to reset
//! by hand for the rest.
//!
//! REQUIREMENTS: root (tracefs is root's). Read only: writes nothing to
//! tracefs, takes no lock, and does not mount tracefs: when it is not
//! mounted it says so (the other tools mount it) and reads the features
//! from the kernel's config (/proc/config.gz or /boot/config-RELEASE).
//!
//! OVERHEAD: a few thousand small reads (every event's filter and trigger,
//! at the top level and in instances not ours); tens of milliseconds.
//!
//! EXIT STATUS: 0; 1 when someone else (not a run of ours) is tracing at
//! the top level (a tracer, the function profiler, enabled events or
//! triggers); 2 for bad usage or when not root.

mod hints;
mod render;
mod report;

use clap::Parser;
use ftrace_common::app::cli;
use ftrace_common::app::opts::JsonOpt;
use ftrace_common::app::output::Output;
use ftrace_common::kernel::needs;
use ftrace_common::kernel::tracefs::{self, Tracefs};
use ftrace_common::{Error, ErrorKind, Result};
use std::process::ExitCode;

const EXAMPLES: &str = "\
Examples:
  ftrace-status                 # what this kernel can trace, and who is tracing
  ftrace-status -j | jq .tools  # which tools work here, as JSON
  ftrace-status >/dev/null; [ $? = 1 ] && echo 'someone else traces at the top level'";

const LONG_ABOUT: &str = "\
Say what this kernel's tracing can do, which ftrace-tools work here, and who else is \
tracing: the kernel's version, tracefs, lockdown mode and config; each tracing feature \
the tools use (instances, trace_pipe_raw, error_log, kprobe, uprobe, dynamic, fprobe and \
eprobe events, BTF arguments, $argN in return probes, the function, function_graph and \
profiler tracers, hist triggers, synthetic events, kernel and user stacks), yes or no \
with the reason and the CONFIG_ option; each tool: works, works except for some options, \
or cannot run here and why; then the top level where it differs from the boot defaults \
(tracer, tracing_on, enabled events, filters, triggers, function and PID filters), every \
instance with its buffer and owner, every kprobe, uprobe and dynamic event by group, the \
top level when a run of ours holds it, and the memory all trace buffers take. A run of \
ours is shown with its PID and command while it runs, and as left behind once killed. \
What looks left behind ends in a hint: reset-ftrace for ours, the files an administrator \
resets by hand for the rest.

Read only: nothing is written to tracefs, no lock is taken, and tracefs is not mounted. \
When it is not mounted, ftrace-status says so (the other tools mount it when they start) \
and reads the features from the kernel's config (/proc/config.gz, CONFIG_IKCONFIG_PROC, \
or /boot/config-RELEASE).

Requirements: root (tracefs is readable by root only); Linux 4.x or later with tracefs \
(CONFIG_FTRACE, CONFIG_TRACING). Lockdown is read from /sys/kernel/security/lockdown \
(securityfs).

Overhead: a few thousand small reads of tracefs files (every event's filter and \
trigger, at the top level and in instances that are not ours); nothing is traced.

Exit status: 0; 1 when someone else (not a run of ftrace-tools) is tracing at the top \
level: a tracer, the function profiler, enabled events or triggers (a script can check \
before it starts); 2 for bad usage or when not run as root.";

/// What this kernel can trace, which tools work here, and who else is
/// tracing.
#[derive(Debug, Parser)]
#[command(
    name = "ftrace-status",
    version,
    about = "What this kernel can trace, which ftrace-tools work here, and who else is tracing",
    long_about = LONG_ABOUT,
    after_help = EXAMPLES
)]
struct Args {
    #[command(flatten)]
    json: JsonOpt,
}

ftrace_common::cli_tests!(Args);

pub fn main() -> ExitCode {
    let args = match cli::parse_or_exit::<Args>() {
        Ok(a) => a,
        Err(code) => return code,
    };
    let mut foreign = false;
    let code = cli::run("ftrace-status", || {
        foreign = status(&args)?;
        Ok(())
    });
    if foreign && code == ExitCode::SUCCESS {
        ExitCode::from(1)
    } else {
        code
    }
}

ftrace_common::tool_command!(Args);

/// Prints the report; says whether someone else traces at the top level.
fn status(args: &Args) -> Result<bool> {
    let tfs = checks()?;
    let report = report::gather(tfs.as_ref());
    let mut out = Output::new();
    if args.json.json {
        let v = serde_json::to_value(&report)
            .map_err(|e| Error::new(ErrorKind::Io, format!("JSON: {e}")))?;
        out.json(&v);
    } else {
        out.text(&render::text(&report));
    }
    out.finish()?;
    Ok(!report.foreign_top_level.is_empty())
}

/// Checks: root, and where tracefs is (`None`: not mounted; never
/// mounted here).
fn checks() -> Result<Option<Tracefs>> {
    if std::env::var_os(tracefs::TRACEFS_ENV).is_none() && !tracefs::is_root() {
        return Err(Error::new(
            ErrorKind::Permission,
            "this needs root: tracefs can only be read by root (try sudo)",
        ));
    }
    let tfs = Tracefs::find()?;
    if let Some(t) = &tfs {
        needs::FTRACE_STATUS.require(t)?;
    }
    Ok(tfs)
}
