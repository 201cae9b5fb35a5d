//! opensnoop - trace open(2), openat(2), openat2(2) and creat(2) calls: who
//! opened what, and with what result.
//!
//! USAGE: opensnoop [-etx] [-j] [-p PID|-L TID] [-n NAME] [-f FLAG] [-d secs] [FILENAME]
//!
//! Each call is shown when it returns. The calls come from the system
//! calls' own tracepoints (`syscalls:sys_enter_openat` ... and their
//! `sys_exit_`), so openat2 is not missed as in perf-tools'. The path is
//! user memory, which those tracepoints do not copy: where the kernel has
//! kprobe events, a kprobe on each call's entry copies it in the kernel
//! (`:ustring` through the saved registers); elsewhere opensnoop reads it
//! from the process when it reads the event, which is best effort and
//! marked as such.
//!
//! REQUIREMENTS: system call tracepoints (CONFIG_FTRACE_SYSCALLS),
//! instances, root; kprobe events (CONFIG_KPROBE_EVENTS) for paths copied
//! in the kernel.
//! OVERHEAD: two or three events per open; on a machine opening 100 000
//! files a second that is a few percent of a CPU. See the README.

use clap::Parser;
use ftrace_common::app::cli;
use ftrace_common::app::output::{Output, TimeColumn};
use ftrace_common::app::snoop::{self as skel, Names, Pending, SnoopOpts, Syscalls};
use ftrace_common::app::{signals, status};
use ftrace_common::kernel::caps::{self, Feature, Support};
use ftrace_common::kernel::needs;
use ftrace_common::kernel::tracefs::Tracefs;
use ftrace_common::lifecycle::dynevent::ProbeGroup;
use ftrace_common::lifecycle::instance::Instance;
use ftrace_common::probes::event;
use ftrace_common::{Error, ErrorKind, Result};
use snoop::{Call, Filters, PathsFrom, Snoop};
use std::process::ExitCode;

mod flags;
mod snoop;

const EXAMPLES: &str = "\
Examples:
  opensnoop                  # trace every open, until Ctrl-C
  opensnoop -t               # with a TIMEs column
  opensnoop -x               # only opens that failed
  opensnoop -p 181           # opens by PID 181
  opensnoop -n postgres      # by processes named *postgres*
  opensnoop -e -f O_WRONLY   # write-only opens, with their flags
  opensnoop 'ld\\.so'         # paths matching a regular expression
  opensnoop -j -d 10         # JSON lines for 10 seconds";

const LONG_ABOUT: &str = "\
Trace open(2), openat(2), openat2(2) and creat(2) calls, one line per call when it \
returns, from the system calls' own tracepoints in a private instance. Lost events are \
always reported.

Fields: TIMEs (-t): when the call was made, in seconds of CLOCK_MONOTONIC. PID and \
COMM: the thread that opened. FD: the descriptor returned (-1 if the call failed). ERR: \
the errno of a failed call (2: no such file, 13: permission denied), 0 otherwise. FLAGS \
(-e): the open flags by name. PATH: the path as the process passed it (relative paths \
are relative to its working directory or to the directory descriptor of openat). JSON \
lines also name the system call and where the path came from.

The path is user memory, which the tracepoints do not copy. Where the kernel has kprobe \
events, a kprobe on each call copies it in the kernel, exactly. Where it has none, the \
PATH column shows '-' and the Tracing line says why; with --paths user opensnoop reads \
each path from the process's memory when it reads the event: best effort, since the \
process may have written something else there by then. The header then reads PATH*, \
and a path that could not be read (the process had exited) shows as '?'.

Requirements: root, tracefs (mounted if needed) with instances, system call tracepoints \
(CONFIG_FTRACE_SYSCALLS); kprobe events (CONFIG_KPROBE_EVENTS) for paths copied in the \
kernel.

Overhead: two events per open, three with the kprobe; a machine opening 100 000 files a \
second spends a few percent of a CPU on them.";

/// Trace open, openat, openat2 and creat calls.
#[derive(Debug, Parser)]
#[command(
    name = "opensnoop",
    version,
    about = "Trace open, openat, openat2 and creat calls with their paths and results",
    long_about = LONG_ABOUT,
    after_help = EXAMPLES
)]
struct Args {
    #[command(flatten)]
    snoop: SnoopOpts,
    /// A FLAGS column: the open flags by name.
    #[arg(short = 'e', long = "extended")]
    extended: bool,
    /// Only opens with this flag (O_WRONLY, O_CREAT, ...); given more
    /// than once, opens with any of them.
    #[arg(short = 'f', long = "flag", value_name = "FLAG")]
    flag: Vec<String>,
    /// Where paths come from: `auto` (the kernel, where it has kprobe
    /// events; else none), `kernel`, or `user`: read from each process
    /// after its call, best effort (it may show what the process wrote
    /// there since).
    #[arg(long = "paths", value_name = "FROM", default_value = "auto", value_parser = ["auto", "kernel", "user"])]
    paths: String,
    /// Only paths matching this regular expression anywhere (a plain
    /// name matches as a part: `passwd`).
    #[arg(value_name = "FILENAME")]
    filename: Option<String>,
}

ftrace_common::cli_tests!(Args);

/// The system calls, as their tracepoints name them.
const CALLS: [&str; 4] = ["open", "openat", "openat2", "creat"];

pub fn main() -> ExitCode {
    cli::main("opensnoop", opensnoop)
}

ftrace_common::tool_command!(Args);

fn opensnoop(args: Args) -> Result<()> {
    let filters = options(&args)?;
    let tfs = Tracefs::open()?;
    let (calls, kernel_paths) = checks(&tfs, &args)?;
    // Declared before the instance, which goes first (it disables the
    // probes' events before they are removed).
    let (_group, probes) = probes(&tfs, &calls, kernel_paths)?;
    signals::check()?;
    let (inst, snoop) = setup(&tfs, &args, &calls, &probes, filters)?;
    trace(&inst, snoop, &args)
}

/// Options: the name, flag and path filters.
fn options(args: &Args) -> Result<Filters> {
    let name = args.snoop.name_match()?;
    let mut fl = Vec::new();
    for f in &args.flag {
        fl.push(flags::parse(f).ok_or_else(|| {
            Error::usage(format!(
                "'{f}' is not an open flag: give e.g. O_WRONLY, O_CREAT, O_RDONLY"
            ))
        })?);
    }
    let path = match &args.filename {
        Some(p) => Some(regex::Regex::new(p).map_err(|e| {
            // The regex crate's message spans lines; its last says why.
            let e = e.to_string();
            let why = e
                .lines()
                .last()
                .unwrap_or_default()
                .trim_start_matches("error: ");
            Error::usage(format!("FILENAME '{p}' is not a regular expression: {why}"))
        })?),
        None => None,
    };
    Ok(Filters {
        name,
        flags: fl,
        path,
        failed: args.snoop.failed,
    })
}

/// Checks: the kernel has what opensnoop needs, the task exists, which of
/// the four calls it has tracepoints for (open and creat do not exist on
/// arm64), and whether paths can be copied in the kernel.
fn checks(tfs: &Tracefs, args: &Args) -> Result<(Vec<&'static str>, bool)> {
    needs::OPENSNOOP.require(tfs)?;
    if let Some(t) = args.snoop.task.task() {
        t.require_exists()?;
    }
    let calls = skel::available(tfs, &CALLS, "open, openat, openat2 or creat")?;
    let kprobes = matches!(caps::check(tfs, Feature::KprobeEvents), Support::Yes);
    let kernel_paths = match args.paths.as_str() {
        "user" => false,
        "kernel" if !kprobes => return Err(Error::new(
            ErrorKind::Unsupported,
            "--paths kernel needs kprobe events (CONFIG_KPROBE_EVENTS), which this kernel lacks",
        )),
        _ => kprobes && skel::SyscallRegs::ARCH.is_some(),
    };
    Ok((calls, kernel_paths))
}

/// A probe made: its `(system, event)`.
type Made = (String, String);

/// The kprobes that copy each call's path (and openat2's flags) in the
/// kernel: their group and, per call, the `(system, event)` made.
fn probes(
    tfs: &Tracefs,
    calls: &[&'static str],
    kernel_paths: bool,
) -> Result<(Option<ProbeGroup>, Vec<Option<Made>>)> {
    let arch = skel::SyscallRegs::ARCH.filter(|_| kernel_paths);
    let mut evs = Vec::new();
    let mut which = Vec::new();
    for c in calls {
        if let Some(def) = arch.and_then(|a| snoop::path_probe(&a, c)) {
            evs.push(event::parse(&def)?);
            which.push(true);
        } else {
            which.push(false);
        }
    }
    let mut plans = Vec::new();
    for e in &evs {
        plans.push(event::plan(tfs, e, None)?);
    }
    let refs: Vec<&event::EventArg> = evs.iter().collect();
    let (group, made) = event::create(tfs, &refs, &plans)?;
    let mut made = made.into_iter();
    let per_call = which
        .into_iter()
        .map(|w| if w { made.next() } else { None })
        .collect();
    Ok((group, per_call))
}

/// Setup: the private instance with each call's events (and path probe)
/// enabled.
fn setup(
    tfs: &Tracefs,
    args: &Args,
    calls: &[&'static str],
    probes: &[Option<Made>],
    filters: Filters,
) -> Result<(Instance, Snoop)> {
    let mut inst = skel::instance(tfs, "opensnoop", &args.snoop)?;
    let mut decs = Vec::new();
    let syscalls = Syscalls::setup(&mut inst, calls, probes, |_, name, e, _, p| {
        decs.push(Call::new(name, e, p)?);
        Ok(())
    })?;
    let paths = if probes.iter().any(Option::is_some) {
        PathsFrom::Kernel
    } else if args.paths == "user" {
        PathsFrom::Process
    } else {
        PathsFrom::Nowhere
    };
    let names = Names::new(tfs, &mut inst);
    let snoop = Snoop {
        names,
        syscalls,
        calls: decs,
        pending: Pending::default(),
        filters,
        paths,
        extended: args.extended,
        time: args
            .snoop
            .timestamps
            .then_some(TimeColumn { seconds: true }),
        json: args.snoop.json.json,
        out: Output::new(),
    };
    Ok((inst, snoop))
}

/// Stream, then what was lost.
fn trace(inst: &Instance, mut snoop: Snoop, args: &Args) -> Result<()> {
    let mut line = status::TracingLine::new("open, openat, openat2 and creat");
    match snoop.paths {
        PathsFrom::Kernel => {}
        PathsFrom::Process => {
            line = line.note(
                "PATH* is read from each process after its call: best effort, it may \
                 show what the process wrote there since ('?' where nothing could be read).",
            );
        }
        PathsFrom::Nowhere => {
            line = line.note(
                "No PATH: this kernel has no kprobe events (CONFIG_KPROBE_EVENTS) to copy \
                 paths; --paths user reads them from each process afterwards, best effort.",
            );
        }
    }
    skel::trace("opensnoop", inst, &mut snoop, &args.snoop, line)
}
