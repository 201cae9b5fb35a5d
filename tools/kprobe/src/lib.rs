//! kprobe - trace kernel function calls and returns (kprobes), one event per
//! line, or counted.
//!
//! USAGE: kprobe [-FhHsvj] [-d secs] [-p PID] [-L TID] [-M N] [-b KB]
//!               [-C [--by ARG] | --hist ARG]
//!               {[-e definition]... [definition [filter]]}
//!
//! A definition is `{p|r}:[NAME ]FUNC[+OFFSET]|MODULE:FUNC|0xADDR [ARGS]`,
//! as in perf-tools: `p:do_sys_open`, `'r:do_sys_open $retval'`,
//! `'p:myopen do_sys_open filename=+0(%si):string'`. The function is checked
//! against available_filter_functions (kallsyms where that cannot be read)
//! before anything is written; -F skips the check. Events are read from the
//! binary per-CPU buffers of a private ftrace instance and printed in
//! ftrace's text shape: `comm-pid [cpu] ts: NAME: (func+0x0/0x170) args`,
//! and for return probes `(caller+0x6a/0xa0 <- func)`. -C counts events per
//! probe (or per value of an argument with --by); --hist makes a log2
//! histogram of an argument or of $retval (bcc argdist's idea).
//!
//! REQUIREMENTS: kprobe events (CONFIG_KPROBE_EVENTS), tracefs (mounted by
//! kprobe if needed), instances, root. Stacks (-s): CONFIG_STACKTRACE.
//!
//! OVERHEAD: every call of a probed function pays for the probe, in every
//! process, whatever -p or the filter keep: an ftrace call-site hook for a
//! probe on a function's entry, a breakpoint trap for one at an offset and
//! for return probes, plus the copy of the arguments into the buffer.
//! Printing each event costs far more than recording it: for a function
//! called thousands of times a second, filter, or count (-C, --hist), or
//! limit the run (-d, -M).
//!
//! WARNINGS: -F allows functions the kernel does not list as traceable and
//! offsets past a function's end; the kernel still refuses addresses that
//! are not instruction boundaries and its own blacklist.

mod agg;
mod cli;
mod plan;

use agg::Kprobes;
use cli::Args;
use ftrace_common::app::printer::{self, EventPrinter, PrinterOpts, StackKind};
use ftrace_common::app::status::{self, Timing, TracingLine};
use ftrace_common::app::{cli as app_cli, signals};
use ftrace_common::kernel::proc::CommCache;
use ftrace_common::kernel::tracefs::Tracefs;
use ftrace_common::kernel::{caps, needs};
use ftrace_common::lifecycle::dynevent::{ProbeDef, ProbeGroup, ProbeKind};
use ftrace_common::lifecycle::instance::Instance;
use ftrace_common::probes::argn::KernelArgs;
use ftrace_common::probes::kfuncs::Functions;
use ftrace_common::probes::kprobe as spec;
use ftrace_common::probes::pair::PairOut;
use ftrace_common::probes::tool::{self as probetool, AddrStyle, ProbeEvents, ProbeOut};
use ftrace_common::sym::kallsyms::KernelSyms;
use ftrace_common::{Error, Result};
use plan::Planned;
use std::process::ExitCode;

pub fn main() -> ExitCode {
    app_cli::main("kprobe", kprobe)
}

ftrace_common::tool_command!(Args);

fn kprobe(args: Args) -> Result<()> {
    let timing = Timing::new();
    if let Some(file) = args.read.open()? {
        if args.definition.is_some() || !args.probe.probes.is_empty() || args.probe.view {
            return Err(Error::usage(
                "--read prints the file's probe events: no definition, -e or -v with it",
            ));
        }
        if aggregate(&args) {
            return Err(Error::usage(
                "-C and --hist count while tracing: not with --read",
            ));
        }
        return printer::read_probes("kprobe", &args.ev, &file, AddrStyle::Kernel);
    }
    if args.write.write.is_some() {
        args.ev.refuse_when_writing()?;
        if aggregate(&args) {
            return Err(Error::usage(
                "-C and --hist count instead of recording: not with -w",
            ));
        }
    }
    let mut planned = plan::plan(plan::definitions(&args)?, args.hist.as_deref())?;
    // Kernel symbols print the events' addresses; reading and sorting
    // them takes a while (seconds in a slow VM): do it meanwhile.
    let ksyms = (!aggregate(&args) && !args.probe.view).then(KernelSyms::in_background);
    let tfs = Tracefs::open()?;
    checks(&tfs, &args, &planned)?;
    // $argN: the kernel's where it has it, else registers.
    let kernel_args = KernelArgs::read(&tfs);
    for p in &mut planned {
        // In a return probe, before 6.10: paired with an entry probe.
        if let Some(plan) = spec::pair_plan(&p.def, &p.probe.args, kernel_args)? {
            if aggregate(&args) || args.write.write.is_some() {
                return Err(Error::usage(
                    "$argN in a return probe on this kernel is paired with the entry while printing: not with -C, --hist or -w (kernels 6.10 and later have it themselves)",
                ));
            }
            let entry = ProbeDef {
                kind: ProbeKind::Kprobe,
                name: format!(
                    "{}_entry",
                    p.probe.name.chars().take(56).collect::<String>()
                ),
                location: p.probe.location.clone(),
                args: plan.entry_args.clone(),
            };
            entry.line("ftrace_tools_check")?;
            p.probe.args = plan.ret_args.clone();
            p.pair = Some((entry, plan));
            continue;
        }
        p.probe.args = spec::kernel_args(&p.def, &p.probe.args, kernel_args)?;
    }
    timing.mark("checked");
    // The group before the instance: the kernel refuses to remove an
    // enabled probe, and the instance disables them when it goes.
    // The probes as given, then the entry probes of returns paired.
    let entries = planned
        .iter()
        .filter_map(|p| p.pair.as_ref().map(|(e, _)| e));
    let probes = planned.iter().map(|p| &p.probe).chain(entries);
    let Some((group, created)) = probetool::create_all(&tfs, probes, args.probe.view)? else {
        return Ok(());
    };
    signals::check()?;
    let (inst, mut printer) = setup(&tfs, &args, &group, &planned, &created)?;
    if let Some(k) = ksyms {
        printer.syms.kernel = k;
    }
    timing.mark("armed");
    trace(
        &inst,
        printer,
        &args,
        tracing_line(&planned, &created, &args),
    )
}

/// Whether the events are counted rather than printed.
fn aggregate(args: &Args) -> bool {
    args.count || args.hist.is_some()
}

/// Checks: kprobes, instances, the task, stacks, and every function.
fn checks(tfs: &Tracefs, args: &Args, planned: &[Planned]) -> Result<()> {
    needs::KPROBE.require(tfs)?;
    if let Some(t) = args.ev.task.task() {
        t.require_exists()?;
    }
    if args.stacks.stacks {
        needs::KPROBE.require_optional(tfs, caps::Feature::KernelStacks)?;
    }
    let funcs = Functions::load(tfs.read("available_filter_functions").ok());
    for p in planned {
        funcs.check(&p.def.location, args.force)?;
    }
    Ok(())
}

/// Setup: the private instance with the probes' events, filters, the task
/// and stacks; the printer.
fn setup(
    tfs: &Tracefs,
    args: &Args,
    group: &ProbeGroup,
    planned: &[Planned],
    created: &[(String, String)],
) -> Result<(Instance, EventPrinter<Kprobes>)> {
    let mut inst = Instance::create(tfs, "kprobe", args.ev.buffer.buffer_kb)?;
    let mut probes = Vec::new();
    let mut aggs = Vec::new();
    for (p, (name, _)) in planned.iter().zip(created) {
        let fmt = inst.event_format(group.group(), name)?;
        if let Some(f) = &p.filter {
            inst.set_filter(group.group(), name, f)?;
        }
        aggs.push(plan::make_agg(name, &fmt, p, args)?);
        probes.push(ProbeOut::new(name.clone(), p.def.kind, &fmt)?);
    }
    // Entry probes of paired returns, after the probes as given.
    let mut pairs = Vec::new();
    let mut entry_names = created[planned.len()..].iter();
    for (i, p) in planned.iter().enumerate() {
        let Some((_, plan)) = &p.pair else { continue };
        let Some((entry, _)) = entry_names.next() else {
            return Err(Error::usage("an entry probe was not created"));
        };
        let efmt = inst.event_format(group.group(), entry)?;
        let rfmt = inst.event_format(group.group(), &created[i].0)?;
        pairs.push((probes.len(), i, PairOut::new(plan, &efmt, &rfmt)?));
        aggs.push(plan::make_agg(entry, &efmt, p, args)?);
        probes.push(ProbeOut::new(entry.clone(), spec::Kind::Entry, &efmt)?);
    }
    if let Some(t) = args.ev.task.task() {
        inst.follow(t, false)?;
    }
    let stacks = printer::enable_stacks(&mut inst, args.stacks.stacks, StackKind::Kernel)?;
    for (name, _) in created {
        inst.enable_event(group.group(), name)?;
    }
    let execs = printer::follow_execs(&mut inst);
    signals::check()?;
    let mut events = ProbeEvents::new(probes, AddrStyle::Kernel);
    for (entry, ret, out) in pairs {
        events.pairs.add(entry, ret, out);
    }
    let printer = EventPrinter::new(
        Kprobes {
            probes: events,
            aggs,
        },
        CommCache::new(Some(tfs.path("saved_cmdlines"))),
        PrinterOpts {
            json: args.ev.json.json,
            max_events: args.ev.max.max_events,
            collect: aggregate(args),
            stacks,
            execs,
            flame: args.stacks.flame.for_stacks("kprobe", args.stacks.stacks)?,
            ..PrinterOpts::default()
        },
    );
    Ok((inst, printer))
}

/// Stream, then the summary: the aggregate where events were counted.
fn trace(
    inst: &Instance,
    mut printer: EventPrinter<Kprobes>,
    args: &Args,
    line: TracingLine,
) -> Result<()> {
    let aggregate = aggregate(args);
    let mut run = args.ev.run(args.write.line(line));
    run.headers &= !aggregate;
    run.recording = args.write.start("kprobe", inst, true)?;
    let summary = printer.trace(inst, run)?;
    if let Some(note) = printer.events.probes.pair_note() {
        eprintln!("kprobe: {note}");
    }
    if aggregate {
        let plain_count = args.count && args.by.is_none();
        printer
            .events
            .print(&mut printer.out, args.ev.json.json, plain_count);
    }
    let note = if aggregate {
        " (the counts above miss them)"
    } else {
        ""
    };
    status::finish("kprobe", &mut printer.out, &summary, note)
}

/// `Tracing kprobe NAME (p:NAME LOC ARGS) for PID N. Ctrl-C to end.`
fn tracing_line(planned: &[Planned], created: &[(String, String)], args: &Args) -> TracingLine {
    let mut entries = created[planned.len()..].iter();
    let what: Vec<String> = planned
        .iter()
        .zip(created)
        .map(
            |(p, (name, _))| match (&p.pair, p.pair.as_ref().and_then(|_| entries.next())) {
                (Some(_), Some((entry, _))) => {
                    probetool::describe_paired(name, &p.probe, &p.def.args, entry)
                }
                _ => probetool::describe(p.def.kind, name, &p.probe),
            },
        )
        .collect();
    args.ev
        .tracing_line(probetool::tracing_what("kprobe", &what))
}
