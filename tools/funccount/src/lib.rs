//! funccount - count kernel function calls matching patterns; also
//! tracepoints and user functions.
//!
//! USAGE: funccount [-hTvFrlj] [-i secs] [-d secs] [-t top] [-p PID] [-L TID]
//!                  [--method auto|profiler|tracer|kprobe] pattern...
//!
//! Kernel functions are matched against `available_filter_functions` and
//! counted exactly, by the cheapest way this kernel offers (see METHODS in
//! the man page; method.rs chooses):
//! - the function profiler (CONFIG_FUNCTION_PROFILER): per-CPU counters
//!   in the kernel; global, so only taken when nobody else uses it or the
//!   top-level filter, and put back afterwards (profiler.rs);
//! - the function tracer in funccount's own instance, its own
//!   `set_ftrace_filter` (written by index: seconds faster than by name),
//!   each call a 24-byte record in the binary buffer, counted by address
//!   in user space; `-p`/`-L` use the instance's `set_ftrace_pid`;
//! - kprobes, one per function, counted by the kernel in `kprobe_profile`
//!   (from the buffer with -p/-L).
//!
//! Tracepoints (`t:SYS:EVENT`) and user functions (`u:LIB:FUNC`, uprobes)
//! are counted from the binary buffer by event (counter.rs).
//!
//! REQUIREMENTS: root, tracefs; for kernel functions a usable function
//! tracer (CONFIG_FUNCTION_TRACER, CONFIG_DYNAMIC_FTRACE); the profiler
//! and kprobes are used where present. Where the function tracer is listed
//! but refuses every use (EPERM), funccount says so and exits 2.
//!
//! OVERHEAD: every call of a counted function costs the kernel the
//! counting method's hook (well under a microsecond); with the tracer,
//! funccount's reading grows with the rate of calls. Counting hundreds of
//! busy functions slows the machine measurably; more than 1000 functions
//! needs -F.

mod cli;
mod counter;
mod counts;
mod method;
mod profiler;

use cli::{Args, MethodArg};
use counter::{Counter, Printer};
use ftrace_common::app::cli as app_cli;
use ftrace_common::app::output;
use ftrace_common::app::signals;
use ftrace_common::app::status::TracingLine;
use ftrace_common::app::stream::{self, End, Sink, StreamOpts, Summary};
use ftrace_common::buffer::reader::{Event, Item};
use ftrace_common::kernel::caps::Feature;
use ftrace_common::kernel::functions;
use ftrace_common::kernel::needs;
use ftrace_common::kernel::tracefs::Tracefs;
use ftrace_common::lifecycle::dynevent::ProbeGroup;
use ftrace_common::lifecycle::instance::{Instance, InstanceOptions};
use ftrace_common::lifecycle::{sweep, toplevel};
use ftrace_common::probes::{matching as plan, pattern as spec};
use ftrace_common::{Error, Flow, Result};
use method::{AttachLog, Method};
use plan::Plan;
use profiler::Profiler;
use spec::Spec;
use std::process::ExitCode;
use std::time::Instant;

pub fn main() -> ExitCode {
    app_cli::main("funccount", funccount)
}

ftrace_common::tool_command!(Args);

fn funccount(args: Args) -> Result<()> {
    let specs = options(&args)?;
    let tfs = Tracefs::open()?;
    let plan = checks(&tfs, &args, &specs)?;
    if args.list {
        return output::print_lines(plan.listing());
    }
    sweep::sweep_dead(&tfs);
    if let Some(m) = toplevel::recover_stale(&tfs) {
        eprintln!("funccount: {m}");
    }
    let mut armed = setup(&tfs, &args, &plan)?;
    let mut printer = Printer::new(
        args.json.json,
        args.summary.top,
        args.timestamp,
        armed.method,
    );
    let line = tracing_line(&args, &plan, armed.method);
    let streamed = count(&tfs, &args, &mut armed, &mut printer, line)?;
    summary(&tfs, &args, &mut armed, printer, streamed)?;
    // Detach, timed for -v.
    let t_detach = Instant::now();
    drop(armed);
    verbose(args.verbose, || {
        format!("detached in {:.2} s", t_detach.elapsed().as_secs_f64())
    });
    Ok(())
}

/// Options: the patterns, and what cannot go together.
fn options(args: &Args) -> Result<Vec<Spec>> {
    let specs = args.patterns.iter().map(|p| spec::parse(p));
    let specs = specs.collect::<Result<Vec<Spec>>>()?;
    if args.method == MethodArg::Profiler && args.task.task().is_some() {
        return Err(Error::usage(
            "the function profiler counts every task: -p and -L need --method tracer (or kprobe)",
        ));
    }
    Ok(specs)
}

/// Checks: what the kernel must have, the task, and what the patterns
/// match (not too much, without -F).
fn checks(tfs: &Tracefs, args: &Args, specs: &[Spec]) -> Result<Plan> {
    needs::FUNCCOUNT.require(tfs)?;
    if specs.iter().any(|s| matches!(s, Spec::Kernel { .. })) {
        needs::FUNCCOUNT.require_optional(tfs, Feature::FunctionTracer)?;
        match args.method {
            MethodArg::Profiler => {
                needs::FUNCCOUNT.require_optional(tfs, Feature::FunctionProfiler)?
            }
            MethodArg::Kprobe => needs::FUNCCOUNT.require_optional(tfs, Feature::KprobeEvents)?,
            _ => {}
        }
    }
    if specs.iter().any(|s| matches!(s, Spec::User { .. })) {
        needs::FUNCCOUNT.require_optional(tfs, Feature::UprobeEvents)?;
    }
    let task = args.task.task();
    if let Some(t) = task {
        t.require_exists()?;
    }
    let t_match = Instant::now();
    let plan = plan::plan(tfs, specs, args.regexp, task.map(|t| t.process()))?;
    verbose(args.verbose, || {
        format!(
            "matched {} kernel functions ({} names), {} tracepoints, {} user functions in {:.2} s",
            plan.funcs.len(),
            plan.names.len(),
            plan.tracepoints.len(),
            plan.user.len(),
            t_match.elapsed().as_secs_f64()
        )
    });
    let total = plan.total();
    let m = match args.method {
        MethodArg::Kprobe => Method::Kprobe,
        _ => Method::Tracer,
    };
    functions::refuse_huge_match(
        total,
        plan.names.len(),
        args.force || args.list,
        &method::attach_estimate(m, total),
        "count them",
        " (-l lists the matches)",
    )?;
    Ok(plan)
}

/// What setup armed. The fields drop in order: the instance (its events
/// and tracer end), then the profiler (put back), then the probes.
struct Armed {
    inst: Option<Instance>,
    prof: Option<Profiler>,
    /// Held: dropping it removes the probes.
    _probes: ProbeGroup,
    method: Option<Method>,
    counter: Counter,
    /// Whether anything is counted from the buffer.
    buffered: bool,
    log: AttachLog,
}

/// Setup: the method for the kernel functions, and the instance with what
/// is counted from its buffer, limited to the task.
fn setup(tfs: &Tracefs, args: &Args, plan: &Plan) -> Result<Armed> {
    let mut log = AttachLog::new();
    let mut probes = ProbeGroup::new(tfs);
    let chosen = match plan.funcs.is_empty() {
        true => None,
        false => Some(method::choose(tfs, args, plan, &mut probes, &mut log)?),
    };
    let method = chosen.as_ref().map(|c| c.method);
    let (prof, kprobes) = chosen.map(|c| (c.prof, c.kprobes)).unwrap_or_default();
    let task = args.task.task();
    let kprobe_from_buffer = task.is_some() || !plan.only_functions();
    let buffered = method == Some(Method::Tracer)
        || (method == Some(Method::Kprobe) && kprobe_from_buffer)
        || !plan.only_functions();
    let has_events = !plan.only_functions() || method == Some(Method::Kprobe);
    let mut inst = None;
    if buffered || has_events {
        let opts = InstanceOptions {
            buffer_kb: args.buffer.buffer_kb,
            kernel_buffer: !buffered,
            // Events of ours are kept out by set_event_notrace_pid; the
            // function tracer has its own list (method::arm_tracer).
            trace_self: !has_events,
            keep_clock: true,
        };
        inst = Some(Instance::create_with(tfs, "funccount", &opts)?);
        log.mark("instance");
    }
    let mut counter = Counter::new(plan.names.clone());
    if let Some(inst) = inst.as_mut() {
        if method == Some(Method::Tracer) {
            method::arm_tracer(inst, plan, task, &mut counter, &mut log)?;
        }
        if method == Some(Method::Kprobe) {
            let group = probes.group().to_string();
            method::arm_kprobes(tfs, inst, &group, kprobes, kprobe_from_buffer, &mut counter)?;
            log.mark("enable");
        }
        method::arm_events(tfs, inst, &mut probes, plan, &mut counter)?;
        if let (Some(t), true) = (task, has_events) {
            inst.follow(t, false)?;
        }
    }
    Ok(Armed {
        inst,
        prof,
        _probes: probes,
        method,
        counter,
        buffered,
        log,
    })
}

/// What the read loop feeds: the counts, and a summary every interval.
struct Counting<'a> {
    tfs: &'a Tracefs,
    armed: &'a mut Armed,
    printer: &'a mut Printer,
    error: Option<Error>,
}

impl Sink for Counting<'_> {
    fn event(&mut self, ev: &Event) -> Flow {
        self.armed.counter.buf.item(Item::Event(*ev))
    }

    fn lost(&mut self, cpu: u32, count: Option<u64>) -> Flow {
        self.armed.counter.buf.item(Item::Lost(cpu, count))
    }

    fn tick(&mut self) -> Flow {
        let a = &mut *self.armed;
        match a
            .counter
            .summary(self.tfs, a.prof.as_ref(), None, self.printer)
        {
            Ok(flow) => flow,
            Err(e) => {
                self.error = Some(e);
                Flow::Stop
            }
        }
    }
}

/// Stream: counts until a stop signal, the duration or the task's end,
/// with a summary every interval; then stops recording and counts what is
/// left in the buffers.
fn count(
    tfs: &Tracefs,
    args: &Args,
    armed: &mut Armed,
    printer: &mut Printer,
    line: TracingLine,
) -> Result<Summary> {
    let inst = armed.inst.take();
    let mut reader = match (&inst, armed.buffered) {
        (Some(i), true) => Some(i.reader()?),
        _ => None,
    };
    signals::check()?;
    if let (Some(i), Some(_)) = (&inst, &reader) {
        i.start()?;
    }
    armed.log.mark("start");
    verbose(args.verbose, || armed.log.text(armed.method));
    line.print();
    let mut sink = Counting {
        tfs,
        armed,
        printer,
        error: None,
    };
    let summary = stream::run(
        reader.as_mut(),
        &mut sink,
        StreamOpts {
            duration: args.duration.duration,
            tick: args.summary.interval,
            task: args.task.task(),
            ..StreamOpts::default()
        },
    )?;
    if let Some(e) = sink.error.take() {
        return Err(e);
    }
    drop(reader);
    if let Some(i) = &inst {
        let _ = i.stop();
    }
    sink.armed.inst = inst;
    Ok(summary)
}

/// Summary: the last interval's counts, and what the run should say on
/// stderr (the task's end, unreadable sub-buffers, -v's statistics).
fn summary(
    tfs: &Tracefs,
    args: &Args,
    armed: &mut Armed,
    mut printer: Printer,
    streamed: Summary,
) -> Result<()> {
    if !printer.out.is_closed() {
        // The kernel's own count of lost events, where there is a buffer.
        let lost = armed
            .buffered
            .then(|| streamed.lost_per_cpu.iter().map(|(_, n)| n).sum());
        armed
            .counter
            .summary(tfs, armed.prof.as_ref(), lost, &mut printer)?;
    }
    printer.out.finish()?;
    if let End::TaskExited(t) = streamed.ended {
        eprintln!("funccount: {}", t.exited());
    }
    if armed.buffered {
        let st = streamed.read;
        if st.bad_pages > 0 {
            eprintln!(
                "funccount: {} sub-buffers could not be read whole: the counts may be low",
                st.bad_pages
            );
        }
        let buf = &armed.counter.buf;
        verbose(args.verbose, || {
            format!(
                "read {} sub-buffers, {} events ({} of no counted event)",
                st.pages, buf.events, buf.other
            )
        });
    }
    if streamed.unshown > 0 {
        eprintln!(
            "funccount: {} events recorded before the stop were not counted (the run ends at once on a stop signal): the counts above are low by that much",
            streamed.unshown
        );
    }
    Ok(())
}

/// `Tracing "vfs_*" for PID 7 (2 functions; method: tracer). Top 3 only.
/// Ctrl-C to end.`
fn tracing_line(args: &Args, plan: &Plan, method: Option<Method>) -> TracingLine {
    let pats: Vec<String> = args.patterns.iter().map(|p| format!("\"{p}\"")).collect();
    let mut line = TracingLine::new(pats.join(" "))
        .task(args.task.task())
        .duration(args.duration.duration)
        .how(plan.what());
    if let Some(m) = method {
        line = line.how(format!("method: {}", m.name()));
    }
    if let Some(t) = args.summary.top {
        line = line.note(format!("Top {t} only."));
    }
    line
}

fn verbose(on: bool, msg: impl FnOnce() -> String) {
    if on {
        eprintln!("funccount: {}", msg());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn tracing_line_names_method_and_options() {
        let a = Args::try_parse_from(["funccount", "-d", "5", "-t", "3", "-L", "9", "vfs_*"]);
        let plan = Plan {
            names: vec!["vfs_read".into(), "vfs_write".into()],
            ..Plan::default()
        };
        assert_eq!(
            tracing_line(&a.unwrap(), &plan, Some(Method::Tracer)).to_string(),
            "Tracing \"vfs_*\" for TID 9 for 5 seconds (2 functions; method: tracer). Top 3 only. Ctrl-C to end."
        );
    }
}
