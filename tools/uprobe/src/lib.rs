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
//! kernel, several microseconds, in every process that runs the probed code,
//! whether or not -p/-L or a filter keep the event. Probing malloc() of libc
//! slows every process on the machine down. Probe rarely called functions,
//! or for a short time (-d).
//!
//! WARNINGS: -F allows probing raw addresses that are not instruction
//! boundaries, or IFUNC resolvers; a probe in the middle of an instruction
//! corrupts the traced program.

mod cli;
mod plan;

use cli::Args;
use plan::Planned;

use ftrace_common::app::cli as app_cli;
use ftrace_common::app::output::Output;
use ftrace_common::app::printer::{self, EventPrinter, PrinterOpts, StackKind};
use ftrace_common::app::signals;
use ftrace_common::app::status::{self, Timing, TracingLine};
use ftrace_common::base::glob::Glob;
use ftrace_common::kernel::proc::{CommCache, Task};
use ftrace_common::kernel::tracefs::Tracefs;
use ftrace_common::kernel::{caps, needs};
use ftrace_common::lifecycle::dynevent::ProbeGroup;
use ftrace_common::lifecycle::instance::{Instance, InstanceOptions};
use ftrace_common::probes::tool::{self as probetool, AddrStyle, ProbeEvents, ProbeOut};
use ftrace_common::probes::uprobe::{self as spec, Definition};
use ftrace_common::sym::elf::ElfFile;
use ftrace_common::sym::target::resolve_target;
use ftrace_common::{Error, Flow, Result};
use std::process::ExitCode;

pub fn main() -> ExitCode {
    app_cli::main("uprobe", uprobe)
}

ftrace_common::tool_command!(Args);

fn uprobe(args: Args) -> Result<()> {
    let timing = Timing::new();
    if let Some(target) = &args.list {
        if !args.probe.probes.is_empty() || args.probe.filter.is_some() {
            return Err(Error::usage(
                "-l lists functions: give it a TARGET and at most a glob",
            ));
        }
        return list(target, args.definition.as_deref(), args.ev.task.task());
    }
    if let Some(file) = args.read.open()? {
        if args.definition.is_some() || !args.probe.probes.is_empty() || args.probe.view {
            return Err(Error::usage(
                "--read prints the file's probe events: no definition, -e or -v with it",
            ));
        }
        return printer::read_probes("uprobe", &args.ev, &file, AddrStyle::Hex);
    }
    if args.write.write.is_some() {
        args.ev.refuse_when_writing()?;
    }
    let defs = plan::definitions(&args)?;
    let tfs = Tracefs::open()?;
    let planned = checks(&tfs, &args, defs)?;
    if args.write.write.is_some() && planned.iter().any(|p| p.pair.is_some()) {
        return Err(Error::usage(
            "$argN at a return is paired with the entry and read while tracing: not with -w",
        ));
    }
    timing.mark("resolved");
    // The probes as given, then the entry probes of returns with $argN.
    let entries = planned
        .iter()
        .filter_map(|p| p.pair.as_ref().map(|(e, _)| e));
    let probes = planned.iter().map(|p| &p.probe).chain(entries);
    let Some((group, created)) = probetool::create_all(&tfs, probes, args.probe.view)? else {
        return Ok(());
    };
    timing.mark("probes created");
    signals::check()?;
    let (inst, printer) = setup(&tfs, &args, &group, &planned, &created)?;
    timing.mark("events enabled");
    trace(
        &inst,
        printer,
        &args,
        tracing_line(&planned, &created, &args),
    )?;
    timing.mark("stopped");
    // Cleanup, in the order the kernel needs: the instance disables the
    // events and goes, then the probes can be removed. (On an error above,
    // the guards do the same when they drop.)
    drop(inst);
    timing.mark("instance removed");
    drop(group);
    timing.mark("probes removed");
    Ok(())
}

/// Checks: the kernel's uprobes and stacks, the task, and every
/// definition resolved to a file and offset.
fn checks(
    tfs: &Tracefs,
    args: &Args,
    defs: Vec<(Definition, Option<String>)>,
) -> Result<Vec<Planned>> {
    needs::UPROBE.require(tfs)?;
    let task = args.ev.task.task();
    if let Some(t) = task {
        t.require_exists()?;
    }
    if args.stacks.stacks {
        needs::UPROBE.require_optional(tfs, caps::Feature::UserStacks)?;
    }
    let pid = task.map(|t| t.process());
    if let Some(note) = defs.iter().find_map(|(d, _)| spec::read_at_entry_note(d)) {
        eprintln!("uprobe: note: {note}");
    }
    let planned = plan::plan(defs, pid, args.force)?;
    for p in &planned {
        if let (Some(pid), Some(false)) = (pid, p.target.mapped) {
            eprintln!(
                "uprobe: note: PID {pid} does not map {} now: {} fires only if it loads it later",
                p.target.display_path.display(),
                p.probe.name
            );
        }
    }
    Ok(planned)
}

/// Setup: the private instance with the probes' events, filters, the
/// task and stacks; the printer.
///
/// Uprobe events come at most at the rate of breakpoint traps: the
/// kernel's default buffer keeps up, and a resize would cost start-up
/// time. Instead of a notrace PID list (whose removal waits for the
/// scheduler hooks it installed), a filter keeps our own calls out (we run
/// libc too). It goes on every probe: whether we map the same file cannot
/// be told reliably (overlayfs shows other device numbers in
/// /proc/PID/maps than stat does).
fn setup(
    tfs: &Tracefs,
    args: &Args,
    group: &ProbeGroup,
    planned: &[Planned],
    created: &[(String, String)],
) -> Result<(Instance, EventPrinter<ProbeEvents>)> {
    let mut inst = Instance::create_with(
        tfs,
        "uprobe",
        &InstanceOptions {
            buffer_kb: args.ev.buffer.buffer_kb,
            kernel_buffer: true,
            trace_self: true,
            ..InstanceOptions::default()
        },
    )?;
    let me = std::process::id();
    let mut probes = Vec::new();
    let mut extra = vec![format!("common_pid != {me}")];
    if let Some(tid) = args.ev.task.tid {
        extra.push(format!("common_pid == {tid}"));
    }
    // Entry probes of returns with $argN: our filter only (the user's
    // names the return's arguments).
    let mut pairs = Vec::new();
    let mut entry_names = created[planned.len()..].iter();
    for (i, p) in planned.iter().enumerate() {
        let Some((_, plan)) = &p.pair else { continue };
        let Some((entry, _)) = entry_names.next() else {
            return Err(Error::usage("an entry probe was not created"));
        };
        let efmt = inst.event_format(group.group(), entry)?;
        let rfmt = inst.event_format(group.group(), &created[i].0)?;
        inst.set_filter(group.group(), entry, &extra.join(" && "))?;
        let out = ftrace_common::probes::pair::PairOut::new(plan, &efmt, &rfmt)?;
        pairs.push((
            planned.len() + pairs.len(),
            i,
            out,
            ProbeOut::new(entry.clone(), spec::Kind::Entry, &efmt)?,
        ));
    }
    for (p, (name, _)) in planned.iter().zip(created) {
        let fmt = inst.event_format(group.group(), name)?;
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
    if let Some(pid) = args.ev.task.pid {
        inst.follow(Task::Process(pid), false)?;
    }
    let stacks = printer::enable_stacks(&mut inst, args.stacks.stacks, StackKind::User)?;
    signals::check()?;
    for (name, _) in created {
        inst.enable_event(group.group(), name)?;
    }
    let execs = printer::follow_execs(&mut inst);
    let mut pairing = Vec::new();
    for (entry, ret, out, probe) in pairs {
        probes.push(probe);
        pairing.push((entry, ret, out));
    }
    let mut events = ProbeEvents::new(probes, AddrStyle::Hex);
    for (entry, ret, out) in pairing {
        events.pairs.add(entry, ret, out);
    }
    let mut printer = EventPrinter::new(
        events,
        CommCache::new(Some(tfs.path("saved_cmdlines"))),
        PrinterOpts {
            json: args.ev.json.json,
            max_events: args.ev.max.max_events,
            stacks,
            execs,
            flame: args.stacks.flame.for_stacks("uprobe", args.stacks.stacks)?,
            ..PrinterOpts::default()
        },
    );
    if let (true, Some(t)) = (args.stacks.stacks, args.ev.task.task()) {
        // Read the process's maps and symbols now, before recording starts,
        // so that stacks of events it records just before it exits can
        // still be symbolized.
        let pid = t.process();
        let maps = ftrace_common::sym::maps::read_maps(std::path::Path::new("/proc"), Some(pid));
        for m in maps.unwrap_or_default() {
            if m.executable && m.is_file() {
                printer.syms.user.lookup(pid, m.start);
            }
        }
    }
    Ok((inst, printer))
}

/// Stream and summary.
fn trace(
    inst: &Instance,
    mut printer: EventPrinter<ProbeEvents>,
    args: &Args,
    line: TracingLine,
) -> Result<()> {
    let mut run = args.ev.run(args.write.line(line));
    run.recording = args.write.start("uprobe", inst, false)?;
    let summary = printer.trace(inst, run)?;
    if let Some(note) = printer.events.pair_note() {
        eprintln!("uprobe: {note}");
    }
    status::finish("uprobe", &mut printer.out, &summary, "")
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
fn tracing_line(planned: &[Planned], created: &[(String, String)], args: &Args) -> TracingLine {
    let mut entries = created[planned.len()..].iter();
    let what: Vec<String> = planned
        .iter()
        .zip(created)
        .map(|(p, (name, _))| {
            let mut s = match (&p.pair, p.pair.as_ref().and_then(|_| entries.next())) {
                (Some(_), Some((entry, _))) => {
                    probetool::describe_paired(name, &p.probe, &p.def.args, entry)
                }
                _ => probetool::describe(p.def.kind, name, &p.probe),
            };
            // A raw address: say which function it is in.
            if let (true, Some(sym)) = (p.def.location.symbol.starts_with("0x"), &p.at.symbol) {
                s.push_str(&format!(" [{sym}+{:#x}]", p.at.symbol_offset));
            }
            s
        })
        .collect();
    args.ev
        .tracing_line(probetool::tracing_what("uprobe", &what))
}

/// `-l TARGET [GLOB]`: the functions of the file, demangled, one a line.
fn list(target: &str, pattern: Option<&str>, task: Option<Task>) -> Result<()> {
    let glob = pattern.map(Glob::new).transpose()?;
    let pid = match task {
        Some(t) => {
            t.require_exists()?;
            Some(t.process())
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
    out.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

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
