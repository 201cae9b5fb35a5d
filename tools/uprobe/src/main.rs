//! uprobe - trace user-space function calls and returns (uprobes), one event
//! per line.
//!
//! USAGE: uprobe [-FhHsv] [-d secs] [-p PID] [-L TID] [-M N] [-j]
//!               {-l target [glob] | [-e definition]... [definition [filter]]}
//!
//! A definition is `{p|r}:[NAME ]TARGET:SYMBOL[+OFFSET]|0xADDR [ARGS]`, as in
//! perf-tools: `p:bash:readline`, `'r:bash:readline +0($retval):string'`,
//! `'p:libssl:SSL_write +0(%si):string'`. TARGET is a path, a program on
//! PATH, or a library name (`libc` finds libc.so.6 through the ld.so cache);
//! with -p, the file that process really maps, through /proc/PID/root so
//! that a process in a container works. Symbols are resolved to file
//! offsets from the ELF symbol tables, in Rust (no objdump, ldconfig or
//! file); IFUNCs (strlen, memcpy) are explained rather than probed. Events
//! are read from the binary per-CPU buffers of a private ftrace instance and
//! printed in ftrace's text shape: `comm-pid [cpu] ts: NAME: (0xaddr) args`,
//! and for return probes `(0xret <- 0xfunc)`.
//!
//! REQUIREMENTS: uprobe events (CONFIG_UPROBE_EVENTS), tracefs (mounted by
//! uprobe if needed), instances, root.
//!
//! OVERHEAD: every hit of a uprobe is a breakpoint trap handled by the
//! kernel: about 5 to 8 us here, in every process that runs the probed code,
//! whether or not -p/-L or a filter keep the event. Probing malloc() of libc
//! slows every process on the machine down. Probe rarely called functions,
//! or for a short time (-d).
//!
//! WARNINGS: -F allows probing raw addresses that are not instruction
//! boundaries, or IFUNC resolvers; a probe in the middle of an instruction
//! corrupts the traced program.

mod spec;

use clap::Parser;
use ftrace_common::cli;
use ftrace_common::dynevent::{ProbeDef, ProbeGroup, ProbeKind};
use ftrace_common::format::EventFormat;
use ftrace_common::glob::Glob;
use ftrace_common::instance::{Instance, InstanceOptions};
use ftrace_common::output::Output;
use ftrace_common::probetool::{self, Addrs, ProbeOut};
use ftrace_common::proc::{self, CommCache};
use ftrace_common::reader::{stream, Event, Flow, MaxEvents, Reader, Sink, StreamOpts};
use ftrace_common::sym::elf::{ElfFile, Resolved};
use ftrace_common::sym::symbolize::{Frame, UserSymbols};
use ftrace_common::sym::target::{resolve_target, Target};
use ftrace_common::tracefs::Tracefs;
use ftrace_common::{caps, signals, sweep, Error, Result};
use spec::{Definition, Kind};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const EXAMPLES: &str = "\
Examples:
  uprobe p:bash:readline                 # trace readline() calls in bash
  uprobe 'r:bash:readline +0($retval):string'
                                         # commands typed in every bash
  uprobe 'p:libssl:SSL_write +0(%si):string'
                                         # what is sent through OpenSSL
  uprobe -e 'p:libssl:SSL_write +0(%si):string' -e 'r:libssl:SSL_read'
                                         # two probes in one run
  uprobe 'p:libc:sleep %di'              # sleep() with its argument
  uprobe p:libc:0xbf130                  # an address, as objdump shows it
  uprobe -p 1182 p:libc:fopen            # one process (even in a container)
  uprobe 'r:libc:fopen file=$retval' 'file == 0'
                                         # failed fopen()s
  uprobe -e 'r:libc:fopen file=$retval if file == 0' -e p:libc:fclose
                                         # several probes, each its filter
  uprobe -s p:libc:abort                 # with symbolized user stacks
  uprobe -v 'p:libc:open +0(%di):string' # show the event format and exit
  uprobe -l libssl 'SSL_*'               # list functions of a library
  uprobe --json -d 5 p:bash:readline     # JSON lines for 5 seconds";

const LONG_ABOUT: &str = "\
Trace user-space function calls and returns with uprobes, printing one line per event, \
decoded from ftrace's binary buffers in a private instance. Lost events are always \
reported.

A definition is {p|r}:[NAME ]TARGET:SYMBOL[+OFFSET]|0xADDR [ARGS], as in perf-tools. \
p: probes the entry, r: the return. If the first word is followed by a word that is not \
a fetch argument, the first word is the event NAME (default: p_TARGET_SYMBOL, or \
r_...). TARGET is a path, a program on PATH, or a library name matched against the \
ld.so cache and the library directories (libc, libssl); with -p, the file that process \
maps, reached through /proc/PID/root (a process in a container). SYMBOL is a function \
(name@VERSION for another version than the default; C++ and Rust names also \
demangled, as -l lists them), name+OFFSET, or an address as objdump shows it. IFUNCs \
(strlen, memcpy) are refused with the implementations to probe instead. ARGS are the \
kernel's fetch arguments, passed on as given: %di, +0(%si):string, $retval, \
file=$retval, +8($stack):u32, +0(%si):u8[16]; a bad one is refused with the kernel's \
error_log text. FILTER uses the kernel's event filter syntax on the argument names \
(e.g. 'file == 0'). Several probes: give each with -e; a definition given with -e may \
end with `if FILTER`.

Fields: the task name and thread ID (COMM-TID), the CPU, a time stamp in seconds \
(CLOCK_MONOTONIC), the event name, then for an entry probe (ADDR), the address where \
it fired, and for a return probe (RET <- FUNC), the return address and the function; \
then each argument as NAME=VALUE, in hex unless a type says otherwise (u32, s64, \
string...), strings quoted with \\n, \\\" and bytes that are not text as \\xNN. With -s, \
user stack frames follow, as func+0xoff (file), at most 8 (the kernel walks frame \
pointers).

Requirements: root, tracefs (mounted if needed), instances, uprobe events \
(CONFIG_UPROBE_EVENTS). Probes are created in a group of this run's own and removed \
at the end, also on SIGINT, SIGTERM, SIGHUP, SIGQUIT or a closed pipe; what a \
SIGKILLed run left is removed by the next run, or by reset-ftrace.

Overhead: each hit is a breakpoint trap, 5 to 8 us on the test machine (about 10 us \
for a return probe), paid by every process that runs the probed code, whether -p, -L \
or a filter keep the event or not: probing malloc() of libc slows down every process. \
Probe rarely called functions, or for a short time (-d). uprobe itself keeps up with \
a probed function called in a tight loop (bench-uprobe).";

/// Trace user-space function calls and returns (uprobes).
#[derive(Debug, Parser)]
#[command(
    name = "uprobe",
    version,
    about = "Trace user-space function calls and returns with uprobes",
    long_about = LONG_ABOUT,
    after_help = EXAMPLES
)]
struct Args {
    /// Force: probe IFUNC resolvers, offsets past a function's end, and
    /// addresses outside the executable segments.
    #[arg(short = 'F', long = "force")]
    force: bool,
    /// Print column headers.
    #[arg(short = 'H', long = "headers")]
    headers: bool,
    /// Print the user stack (symbolized) after each event.
    #[arg(short = 's', long = "stacks")]
    stacks: bool,
    /// Create the probes, show their event formats, remove them and exit.
    #[arg(short = 'v', long = "view")]
    view: bool,
    /// Trace for this many seconds, then end (output streams meanwhile).
    #[arg(short = 'd', long = "duration", value_name = "SECS", value_parser = cli::parse_secs)]
    duration: Option<Duration>,
    /// Trace this process only (all its threads, also ones created later),
    /// in the files it maps.
    #[arg(short = 'p', long = "pid", value_name = "PID", value_parser = cli::parse_pid, conflicts_with = "tid")]
    pid: Option<u32>,
    /// Trace this thread only.
    #[arg(short = 'L', long = "tid", value_name = "TID", value_parser = cli::parse_pid)]
    tid: Option<u32>,
    /// List the functions of TARGET (matching an optional glob, given as
    /// the next argument) and exit.
    #[arg(short = 'l', long = "list", value_name = "TARGET")]
    list: Option<String>,
    /// A probe definition; repeat for several probes. May end with
    /// `if FILTER`.
    #[arg(short = 'e', long = "probe", value_name = "DEFINITION")]
    probes: Vec<String>,
    /// Stop after this many events.
    #[arg(short = 'M', long = "max-events", value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    max_events: Option<u64>,
    /// Print events as JSON lines.
    #[arg(short = 'j', long = "json")]
    json: bool,
    /// Per-CPU trace buffer size in KiB for this run's private instance
    /// (default: the kernel's, about 1.4 MB per CPU, which keeps up with
    /// the rate of breakpoint traps; more for big string arguments).
    #[arg(short = 'b', long = "buffer-kb", value_name = "KB")]
    buffer_kb: Option<u32>,
    /// The probe: {p|r}:[NAME ]TARGET:SYMBOL[+OFFSET]|0xADDR [ARGS];
    /// with -l, an optional glob of function names.
    #[arg(value_name = "DEFINITION")]
    definition: Option<String>,
    /// An event filter in the kernel's syntax on the probe's arguments,
    /// e.g. 'file == 0'.
    #[arg(value_name = "FILTER")]
    filter: Option<String>,
}

fn main() -> ExitCode {
    let args = match cli::parse_or_exit::<Args>() {
        Ok(a) => a,
        Err(code) => return code,
    };
    cli::run("uprobe", || uprobe(args))
}

/// A probe resolved to a file offset, ready to be created.
struct Planned {
    def: Definition,
    target: Target,
    at: Resolved,
    probe: ProbeDef,
    filter: Option<String>,
}

/// The definitions given: the positional one (with the positional filter)
/// and every -e.
fn definitions(args: &Args) -> Result<Vec<(Definition, Option<String>)>> {
    probetool::definitions(
        "uprobe",
        args.definition.as_deref(),
        args.filter.as_deref(),
        &args.probes,
        "no probe given: e.g. uprobe p:bash:readline (see uprobe -h; uprobe -l TARGET lists functions)",
    )
}

/// Resolves each definition to a file and offset. Files are parsed once
/// even when several probes are in the same one.
fn plan(
    defs: Vec<(Definition, Option<String>)>,
    pid: Option<u32>,
    force: bool,
) -> Result<Vec<Planned>> {
    let mut files: HashMap<PathBuf, ElfFile> = HashMap::new();
    let mut out = Vec::new();
    for (def, filter) in defs {
        let target = resolve_target(&def.target, pid).map_err(|e| {
            let missing = def.target.contains('/') && !std::path::Path::new(&def.target).exists();
            if pid.is_none() && missing {
                // Perhaps a file only a container (another mount namespace)
                // sees.
                Error::new(
                    e.kind(),
                    format!(
                        "{} If it is a file of a process in a container, add -p PID: the path is then looked up as that process sees it.",
                        e.message()
                    ),
                )
            } else {
                e
            }
        })?;
        if !files.contains_key(&target.path) {
            let elf = ElfFile::open(&target.path)?.with_name(&target.display_path);
            files.insert(target.path.clone(), elf);
        }
        let at = files[&target.path].resolve(&def.symbol, force)?;
        let name = def.name.clone().unwrap_or_else(|| spec::default_name(&def));
        let probe = ProbeDef {
            kind: match def.kind {
                Kind::Entry => ProbeKind::Uprobe,
                Kind::Return => ProbeKind::Uretprobe,
            },
            name,
            location: format!("{}:{:#x}", target.path.display(), at.offset),
            args: def.args.clone(),
        };
        // Refuse a line that could not be written before touching tracefs.
        probe.line("ftrace_tools_check")?;
        out.push(Planned {
            def,
            target,
            at,
            probe,
            filter,
        });
    }
    Ok(out)
}

fn uprobe(args: Args) -> Result<()> {
    let timing = probetool::Timing::new();
    // Options.
    if let Some(target) = &args.list {
        if !args.probes.is_empty() || args.filter.is_some() {
            return Err(Error::usage(
                "-l lists functions: give it a TARGET and at most a glob",
            ));
        }
        return list(target, args.definition.as_deref(), args.pid.or(args.tid));
    }
    let defs = definitions(&args)?;

    // Checks.
    let tfs = Tracefs::open()?;
    caps::require(&tfs, caps::Feature::UprobeEvents)?;
    let pid = match (args.pid, args.tid) {
        (Some(p), _) => {
            proc::require_exists(p)?;
            Some(p)
        }
        (_, Some(t)) => {
            proc::require_exists(t)?;
            Some(proc::tgid(t).unwrap_or(t))
        }
        _ => None,
    };
    if args.stacks {
        caps::require(&tfs, caps::Feature::UserStacks)?;
    }
    let planned = plan(defs, pid, args.force)?;
    timing.mark("resolved");
    for p in &planned {
        if let (Some(pid), Some(false)) = (pid, p.target.mapped) {
            eprintln!(
                "uprobe: note: PID {pid} does not map {} now: {} fires only if it loads it later",
                p.target.display_path.display(),
                p.probe.name
            );
        }
    }
    sweep::sweep_dead(&tfs);
    timing.mark("swept");

    // Setup. The group is declared before the instance, so that the
    // instance (which disables the events) is dropped first.
    let mut group = ProbeGroup::new(&tfs);
    let created = probetool::create(&mut group, planned.iter().map(|p| &p.probe))?;
    timing.mark("probes created");
    if signals::stop_requested() {
        return Ok(());
    }
    if args.view {
        return probetool::show_formats(&tfs, &group, &created);
    }
    // Uprobe events come at most at the rate of breakpoint traps (about
    // 150 000/s per CPU here): the kernel's default buffer keeps up, and a
    // resize would cost start-up time. Instead of a notrace PID list (whose
    // removal waits for the scheduler hooks it installed), a filter keeps
    // our own calls out (we run libc too). It goes on every probe: whether
    // we map the same file cannot be told reliably (overlayfs shows other
    // device numbers in /proc/PID/maps than stat does).
    let mut inst = Instance::create_with(
        &tfs,
        "uprobe",
        &InstanceOptions {
            buffer_kb: args.buffer_kb,
            kernel_buffer: true,
            trace_self: true,
            ..InstanceOptions::default()
        },
    )?;
    timing.mark("instance created");
    let me = std::process::id();
    let mut probes = Vec::new();
    for (p, (name, _)) in planned.iter().zip(&created) {
        let fmt = inst.event_format(group.group(), name)?;
        let mut extra = vec![format!("common_pid != {me}")];
        if let Some(tid) = args.tid {
            extra.push(format!("common_pid == {tid}"));
        }
        if let Some(f) = combined_filter(p.filter.as_deref(), &extra) {
            if let Err(e) = inst.set_filter(group.group(), name, &f) {
                // Show the kernel's complaint about the user's own text.
                if let Some(user) = &p.filter {
                    inst.set_filter(group.group(), name, user)?;
                }
                return Err(e);
            }
        }
        probes.push(ProbeOut::new(name.clone(), p.def.kind, &fmt)?);
    }
    if let Some(pid) = args.pid {
        inst.set_event_pids(&proc::threads(pid)?, true)?;
        // Threads started while the list was written.
        inst.add_event_pids(&proc::threads(pid).unwrap_or_default())?;
    }
    let stack_fmt = if args.stacks {
        inst.set_option("userstacktrace", true)?;
        Some(inst.event_format("ftrace", "user_stack")?)
    } else {
        None
    };
    // A stop asked for during setup: no need to arm anything.
    if signals::stop_requested() {
        return Ok(());
    }
    for (name, _) in &created {
        inst.enable_event(group.group(), name)?;
    }
    timing.mark("events enabled");
    if signals::stop_requested() {
        return Ok(());
    }
    let mut users = UserSymbols::new();
    if let (true, Some(pid)) = (args.stacks, pid) {
        // Read the process's maps and symbols now, before recording starts,
        // so that stacks of events it records just before it exits can
        // still be symbolized.
        let maps = ftrace_common::sym::maps::read_maps(std::path::Path::new("/proc"), Some(pid));
        for m in maps.unwrap_or_default() {
            if m.executable && m.is_file() {
                users.lookup(pid, m.start);
            }
        }
    }
    let mut reader = Reader::open(&inst)?;
    inst.start()?;
    timing.mark("armed");
    eprintln!("{}", tracing_line(&planned, &created, &args));

    // Trace.
    let mut out = Output::new();
    if args.headers && !args.json {
        probetool::headers(&mut out);
    }
    let mut printer = Printer {
        out,
        by_id: probes.into_iter().map(|p| (p.id, p)).collect(),
        stack_fmt,
        users,
        comms: CommCache::new(Some(tfs.path("saved_cmdlines"))),
        json: args.json,
        max: MaxEvents::new(args.max_events),
        line: String::new(),
    };
    // With -p or -L, nothing can come once the process (thread) is gone.
    let watched = args.pid.or(args.tid);
    let mut gone = false;
    let mut exited = || {
        gone = watched.is_some_and(|p| !alive(p));
        gone
    };
    let summary = stream(
        &mut reader,
        &mut printer,
        StreamOpts {
            duration: args.duration,
            ordered: true,
            stop_when: Some(&mut exited),
            ..StreamOpts::default()
        },
    )?;
    if gone {
        eprintln!(
            "uprobe: {} {} exited; ending.",
            if args.pid.is_some() {
                "process"
            } else {
                "thread"
            },
            watched.unwrap_or(0)
        );
    }

    // Summary.
    timing.mark("stopped");
    probetool::finish(&mut printer.out)?;
    if let Some(w) = summary.lost_warning() {
        eprintln!("uprobe: {w}");
    }

    // Cleanup, in the order the kernel needs: the instance disables the
    // events and goes, then the probes can be removed. (On an error above,
    // the guards do the same when they drop.)
    drop(reader);
    drop(inst);
    timing.mark("instance removed");
    drop(group);
    timing.mark("probes removed");
    Ok(())
}

/// Whether a task still runs: it exists and is not a zombie.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| !matches!(state, 'Z' | 'X')),
        Err(_) => false,
    }
}

/// The user's filter and ours, joined with `&&`.
fn combined_filter(user: Option<&str>, extra: &[String]) -> Option<String> {
    let mut parts: Vec<String> = user.map(|u| format!("({u})")).into_iter().collect();
    parts.extend(extra.iter().cloned());
    match parts.len() {
        0 => None,
        1 if extra.is_empty() => user.map(str::to_string),
        _ => Some(parts.join(" && ")),
    }
}

/// `Tracing uprobe NAME (LINE) for PID N. Ctrl-C to end.`
fn tracing_line(planned: &[Planned], created: &[(String, String)], args: &Args) -> String {
    let what: Vec<String> = planned
        .iter()
        .zip(created)
        .map(|(p, (name, _))| {
            let mut s = probetool::describe(p.def.kind, name, &p.probe);
            // A raw address: say which function it is in.
            if let (true, Some(sym)) = (p.def.symbol.starts_with("0x"), &p.at.symbol) {
                s.push_str(&format!(" [{sym}+{:#x}]", p.at.symbol_offset));
            }
            s
        })
        .collect();
    // Unlike kprobe's, the duration is said only without -p or -L.
    let scope = probetool::for_task(args.pid, args.tid).or(probetool::for_duration(args.duration));
    probetool::tracing_line("uprobe", &what, &scope.unwrap_or_default())
}

/// `-l TARGET [GLOB]`: the functions of the file, demangled, one a line.
fn list(target: &str, pattern: Option<&str>, pid: Option<u32>) -> Result<()> {
    let glob = pattern.map(Glob::new).transpose()?;
    let pid = match pid {
        Some(p) => {
            proc::require_exists(p)?;
            Some(proc::tgid(p).unwrap_or(p))
        }
        None => None,
    };
    let t = resolve_target(target, pid)?;
    let elf = ElfFile::open(&t.path)?.with_name(&t.display_path);
    let funcs = elf.functions(glob.as_ref());
    if funcs.is_empty() {
        return Err(Error::usage(match pattern {
            Some(p) => format!("no function in {} matches '{p}'", t.display_path.display()),
            None => format!("{} has no function symbols", t.display_path.display()),
        }));
    }
    let mut out = Output::new();
    let mut last = String::new();
    for f in funcs {
        let name = f.display_name();
        // Aliases at other addresses print once: the name is what one
        // types.
        if name == last {
            continue;
        }
        if out.line(&name) == Flow::Stop {
            break;
        }
        last = name;
    }
    probetool::finish(&mut out)
}

struct Printer {
    out: Output,
    by_id: HashMap<u16, ProbeOut>,
    stack_fmt: Option<EventFormat>,
    users: UserSymbols,
    comms: CommCache,
    json: bool,
    max: MaxEvents,
    line: String,
}

fn hex(v: u64) -> String {
    format!("0x{v:x}")
}

impl Printer {
    fn stack(&mut self, ev: &Event) -> Flow {
        let Some(sf) = &self.stack_fmt else {
            return Flow::Continue;
        };
        if self.max.skip_stack() {
            return Flow::Continue;
        }
        let (tgid, addrs) = ftrace_common::stack::user_stack(sf, ev.data);
        let tgid = if tgid == 0 { ev.pid as u32 } else { tgid };
        let mut frames: Vec<Frame> = addrs.iter().map(|&a| self.users.lookup(tgid, a)).collect();
        if !frames.is_empty() && frames.iter().all(|f| f.object.is_none()) {
            // Maps read too early (before an exec, or before the libraries
            // were loaded) and kept: read them again once.
            self.users.forget(tgid);
            frames = addrs.iter().map(|&a| self.users.lookup(tgid, a)).collect();
        }
        let frames: Vec<String> = frames
            .iter()
            .map(|f| match (&f.function, &f.object) {
                (Some(func), Some(obj)) => format!("{func}+{:#x} ({obj})", f.offset),
                (None, None) => format!("{:#x} [unknown]", f.addr),
                _ => f.to_string(),
            })
            .collect();
        probetool::print_stack(&mut self.out, self.json, ev, "user_stack", frames)
    }
}

impl Sink for Printer {
    fn event(&mut self, ev: &Event) -> Flow {
        let Some(p) = self.by_id.get(&ev.id) else {
            if self.stack_fmt.as_ref().map(|f| f.id) == Some(ev.id) {
                return self.stack(ev);
            }
            return Flow::Continue;
        };
        if self.max.past() {
            return Flow::Continue;
        }
        let comm = self.comms.get(ev.pid);
        let flow = if self.json {
            let addrs = match &p.addrs {
                Addrs::Entry(ip) => vec![("ip", hex(ip.u64(ev.data).unwrap_or(0)))],
                Addrs::Return { func, ret } => vec![
                    ("func", hex(func.u64(ev.data).unwrap_or(0))),
                    ("ret", hex(ret.u64(ev.data).unwrap_or(0))),
                ],
            };
            self.out.json(&p.json(ev, comm, addrs))
        } else {
            use std::fmt::Write;
            self.line.clear();
            p.write_head(&mut self.line, ev, comm);
            let _ = match &p.addrs {
                Addrs::Entry(ip) => write!(self.line, "(0x{:x})", ip.u64(ev.data).unwrap_or(0)),
                Addrs::Return { func, ret } => write!(
                    self.line,
                    "(0x{:x} <- 0x{:x})",
                    ret.u64(ev.data).unwrap_or(0),
                    func.u64(ev.data).unwrap_or(0)
                ),
            };
            p.write_args(&mut self.line, ev.data);
            self.out.line(&self.line)
        };
        if flow == Flow::Stop {
            return Flow::Stop;
        }
        self.max.shown(self.stack_fmt.is_some())
    }

    fn lost(&mut self, cpu: u32, count: Option<u64>) -> Flow {
        self.out.lost_marker(cpu, count, self.json)
    }

    fn round_end(&mut self) -> Flow {
        self.max.round_end(self.out.flush())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn man_page_is_fresh() {
        cli::check_man_page(Args::command(), env!("CARGO_MANIFEST_DIR")).unwrap();
    }

    #[test]
    fn cli_is_consistent() {
        Args::command().debug_assert();
    }

    fn args(v: &[&str]) -> Args {
        Args::try_parse_from(std::iter::once("uprobe").chain(v.iter().copied())).unwrap()
    }

    #[test]
    fn definitions_positional_and_repeated() {
        let d = definitions(&args(&["r:libc:fopen file=$retval", "file == 0"])).unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].1.as_deref(), Some("file == 0"));
        let d = definitions(&args(&[
            "-e",
            "p:libssl:SSL_write +0(%si):string",
            "-e",
            "r:libssl:SSL_read if arg1 > 0",
        ]))
        .unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d[1].1.as_deref(), Some("arg1 > 0"));
        let d = definitions(&args(&[
            "-e",
            "p:libc:free",
            "p:libc:malloc",
            "common_pid == 1",
        ]))
        .unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].1.as_deref(), Some("common_pid == 1"));
        assert_eq!(d[1].1, None);
        // A second definition where the filter goes is explained.
        let e = definitions(&args(&["p:libc:malloc", "p:libc:free"])).unwrap_err();
        assert!(e.to_string().contains("-e"), "{e}");
        assert!(definitions(&args(&[])).is_err());
        assert!(definitions(&args(&["p:libc:malloc if arg1 > 1", "arg1 > 2"])).is_err());
    }

    #[test]
    fn filters_are_joined() {
        let me = vec!["common_pid != 7".to_string()];
        assert_eq!(combined_filter(None, &[]), None);
        assert_eq!(
            combined_filter(Some("a == 1"), &[]).as_deref(),
            Some("a == 1")
        );
        assert_eq!(
            combined_filter(None, &me).as_deref(),
            Some("common_pid != 7")
        );
        assert_eq!(
            combined_filter(Some("a == 1 || b"), &me).as_deref(),
            Some("(a == 1 || b) && common_pid != 7")
        );
    }
}
