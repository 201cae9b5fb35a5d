//! hist - the kernel's hist triggers on any event, and on any kernel.
//!
//! USAGE: hist [-j] [--table] [-d secs] [-i secs] [-t num] [-p PID|-L TID]
//!             [--in auto|kernel|buffer] [-b KB] EVENT 'SPEC'
//!        hist --latency [--on FIELD[=FIELD]]... [--nsecs] START END ['SPEC']
//!
//! `hist syscalls:sys_exit_read 'hist:key=common_pid.execname:values=ret:sort=ret if ret >= 0'`
//! shows which program reads most, and how much. Where the kernel has hist
//! triggers (CONFIG_HIST_TRIGGERS, Linux 4.7), the table is kept by the
//! kernel: a trigger on the event in a private instance (the event is not
//! even enabled: nothing goes through the trace buffer). Where it has none,
//! the events are read from the binary trace buffer and the same table is
//! computed in user space, and printed byte for byte the way the kernel
//! prints its `hist` file. `--latency` measures the time between two
//! events matched on a field, with synthetic events and `onmatch()` in the
//! kernel (Linux 4.17) or pairing in user space.
//!
//! EVENT is a tracepoint or a probe made for the run (`k:vfs_read
//! count=%dx:u64`, `kr:vfs_read ret=$retval:s64`, `u:libc:malloc
//! size=%di:u64`, `ur:...`).
//!
//! REQUIREMENTS: root, tracefs, instances; hist triggers to compute in the
//! kernel; kprobe or uprobe events for probes.
//!
//! OVERHEAD: in the kernel, a hash update per event; from the buffer, the
//! event is also recorded and read (a fraction of a CPU at 1 M events/s).

mod cli;
mod engine;
mod latency;
mod show;
mod spec;
mod tables;
#[cfg(test)]
mod testdata;

use cli::Args;
use engine::Engine;
use ftrace_common::app::{cli as app_cli, signals, status};
use ftrace_common::kernel::caps::Feature;
use ftrace_common::kernel::needs;
use ftrace_common::kernel::proc::CommCache;
use ftrace_common::kernel::tracefs::Tracefs;
use ftrace_common::lifecycle::hist::HistTrigger;
use ftrace_common::lifecycle::instance::{Instance, InstanceOptions};
use ftrace_common::probes::event::{self, EventArg};
use ftrace_common::{Error, Result};
use spec::SpecText;
use std::process::ExitCode;
use tables::{print_tables, BufferTable, KernelTable};

pub fn main() -> ExitCode {
    app_cli::main("hist", hist)
}

ftrace_common::tool_command!(Args);

fn hist(args: Args) -> Result<()> {
    let tfs = Tracefs::open()?;
    if args.latency {
        return latency::run(&tfs, &args);
    }
    let (ev, spec) = options(&args)?;
    let in_kernel = checks(&tfs, &args, Feature::HistTriggers)?;
    let probe = event::plan(&tfs, &ev, args.task.task().map(|t| t.process()))?;
    // Declared in the order the kernel needs them undone, last first:
    // the trigger, the instance, then the probes.
    let (_group, names) = event::create(&tfs, &[&ev], &[probe])?;
    signals::check()?;
    let (system, name) = &names[0];
    let mut inst = instance(&tfs, &args, in_kernel)?;
    let what = format!("{system}:{name}");
    let line = tracing_line(&args, &ev.text, in_kernel);
    if in_kernel {
        let trigger = kernel_trigger(&inst, system, name, &spec)?;
        let mut table = KernelTable {
            trigger: &trigger,
            lost_matches: None,
        };
        print_tables(&inst, &args, &mut table, &what, line, false)
    } else {
        let fmt = inst.event_format(system, name)?;
        let compiled = spec::compile(&spec, &fmt).map_err(|e| spec_error(&e, &spec, &what))?;
        if compiled.timestamps() {
            // The kernel's trigger switches its instance to the hist's
            // clock (`clock=global` by default): common_timestamp then
            // counts in that clock, in ns (µs with .usecs).
            inst.write("trace_clock", HIST_CLOCK)?;
        }
        inst.enable_event(system, name)?;
        let mut table = BufferTable {
            engine: Engine::new(compiled, CommCache::new(Some(tfs.path("saved_cmdlines")))),
            id: fmt.id,
        };
        print_tables(&inst, &args, &mut table, &what, line, false)
    }
}

/// The clock of the kernel's hist triggers when their spec names none.
const HIST_CLOCK: &str = "global";

/// Options: the EVENT and the SPEC.
fn options(args: &Args) -> Result<(EventArg, SpecText)> {
    if args.latency_spec.is_some() {
        return Err(Error::usage(
            "a third argument is the SPEC of --latency; without it, give EVENT and SPEC",
        ));
    }
    let ev = event::parse(&args.event)?;
    if ev.filter.is_some() {
        return Err(Error::usage(format!(
            "{}: a filter goes at the end of the SPEC ('keys=... if FILTER')",
            args.event
        )));
    }
    let Some(text) = args.spec.as_deref() else {
        return Err(Error::usage(
            "no SPEC given: e.g. hist syscalls:sys_exit_read 'keys=common_pid.execname:vals=ret'",
        ));
    };
    let spec =
        spec::split(text).map_err(|e| Error::usage(format!("bad SPEC '{text}': {}", e.message)))?;
    Ok((ev, spec))
}

/// Checks: the task exists; where the table is computed (the kernel
/// where it has `feature`, unless --in says otherwise).
pub fn checks(tfs: &Tracefs, args: &Args, feature: Feature) -> Result<bool> {
    needs::HIST.require(tfs)?;
    if let Some(t) = args.task.task() {
        t.require_exists()?;
    }
    args.place.in_kernel(
        || needs::HIST.has(tfs, feature).is_yes(),
        || needs::HIST.require_optional(tfs, feature),
    )
}

/// The private instance: for the kernel's tables no buffer to read (the
/// kernel's default size, its clock); for the user-space path a buffer
/// large enough for a million events a second, and the `mono` clock.
pub fn instance(tfs: &Tracefs, args: &Args, in_kernel: bool) -> Result<Instance> {
    let mut inst = Instance::create_with(
        tfs,
        "hist",
        &InstanceOptions {
            buffer_kb: args.buffer.buffer_kb,
            kernel_buffer: in_kernel,
            keep_clock: in_kernel,
            ..InstanceOptions::default()
        },
    )?;
    if let Some(t) = args.task.task() {
        inst.follow(t, false)?;
    }
    signals::check()?;
    Ok(inst)
}

/// The trigger in the kernel (made last, just before the Tracing line). A
/// refusal carries the kernel's error_log line; where the kernel logged
/// none (filters on older kernels), hist's own reading says where.
fn kernel_trigger(
    inst: &Instance,
    system: &str,
    name: &str,
    spec: &SpecText,
) -> Result<HistTrigger> {
    HistTrigger::add_text(
        inst,
        system,
        name,
        &spec.body,
        spec.filter.as_deref(),
        false,
    )
    .map_err(|e| {
        if e.message().contains("Command:") {
            return e;
        }
        match inst
            .event_format(system, name)
            .map(|f| spec::compile(spec, &f))
        {
            Ok(Err(why)) if !why.kernel_only => Error::new(
                e.kind(),
                format!("{}\n{}", e.message(), indent(&why.render(spec))),
            ),
            _ => e,
        }
    })
}

/// A SPEC that user space cannot compute: exit 2, saying why and where.
pub fn spec_error(e: &spec::SpecError, spec: &SpecText, what: &str) -> Error {
    let why = if e.kernel_only {
        "; this kernel has no hist triggers (CONFIG_HIST_TRIGGERS), or --in buffer was given"
    } else {
        ""
    };
    Error::usage(format!(
        "the hist spec cannot be used on {what}{why}:\n{}",
        indent(&e.render(spec))
    ))
}

fn indent(s: &str) -> String {
    s.lines()
        .map(|l| format!("    {l}\n"))
        .collect::<String>()
        .trim_end()
        .to_string()
}

/// `Tracing EVENT for PID N (hist in the kernel). Ctrl-C to end.`
pub fn tracing_line(args: &Args, what: &str, in_kernel: bool) -> status::TracingLine {
    status::TracingLine::new(what)
        .task(args.task.task())
        .duration(args.duration.duration)
        .how(if in_kernel {
            "hist in the kernel"
        } else {
            "hist computed from the trace buffer"
        })
}
