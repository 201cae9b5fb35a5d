//! How kernel functions are counted: choosing a method (the profiler, the
//! function tracer in our instance, or kprobes), what each costs to attach,
//! and arming each, with the tracepoints and user functions counted beside
//! them in the same instance.

use crate::cli::{Args, MethodArg};
use crate::counter::Counter;
use crate::counts::Cumulative;
use crate::plan::Plan;
use crate::profiler::Profiler;
use ftrace_common::app::{attach, signals};
use ftrace_common::kernel::caps;
use ftrace_common::kernel::functions::{self, FilterWrite, TraceableFunction};
use ftrace_common::kernel::proc::Task;
use ftrace_common::kernel::tracefs::Tracefs;
use ftrace_common::lifecycle::dynevent::{ProbeDef, ProbeGroup, ProbeKind};
use ftrace_common::lifecycle::instance::Instance;
use ftrace_common::{Error, ErrorKind, Result};
use std::time::Instant;

/// How kernel functions are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Profiler,
    Tracer,
    Kprobe,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Profiler => "profiler",
            Method::Tracer => "tracer",
            Method::Kprobe => "kprobe",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Method::Profiler => "the function profiler, counting in the kernel",
            Method::Tracer => {
                "the function tracer in a private instance, counted from the trace buffer"
            }
            Method::Kprobe => "a kprobe per function, counted by the kernel (kprobe_profile)",
        }
    }
}

/// Without the profiler, auto counts up to this many functions with
/// kprobes: less time added to each call than the tracer and no work in
/// user space, but each probe costs attach and detach time (measured by
/// bench-funccount; see the README).
const KPROBE_AUTO_MAX: usize = 10;

/// The order auto tries, cheapest first for the case (measured by
/// bench-funccount in the tests/vm guests: per call the profiler and
/// kprobes cost about the same and the tracer (with funccount's reading)
/// about 1.5 to 3 times that; to attach and detach the profiler is the
/// quickest, the tracer close, kprobes far slower). `only_functions`: no
/// tracepoints or user functions, so nothing else needs the buffer.
fn auto_order(task: bool, only_functions: bool, functions: usize) -> Vec<Method> {
    if task {
        // Only the tracer filters by task in the kernel; kprobes would
        // write every hit to the buffer too, and cost more to attach.
        vec![Method::Tracer, Method::Kprobe]
    } else if only_functions && functions <= KPROBE_AUTO_MAX {
        vec![Method::Profiler, Method::Kprobe, Method::Tracer]
    } else {
        vec![Method::Profiler, Method::Tracer, Method::Kprobe]
    }
}

/// Attach plus detach time, for the -F message: (fixed ms, ms per 1000
/// functions), from bench-funccount and runs by hand in the tests/vm
/// guests (see the README), rounded up: an estimate for a slow machine.
const ATTACH_COST: [(Method, u64, u64); 3] = [
    (Method::Profiler, 300, 220),
    (Method::Tracer, 500, 220),
    (Method::Kprobe, 1000, 70000),
];

/// About how long attaching and detaching `n` functions can take: `11 s`.
pub fn attach_estimate(method: Method, n: usize) -> String {
    let (base, per) = ATTACH_COST
        .iter()
        .find(|(m, _, _)| *m == method)
        .map(|(_, b, p)| (*b, *p))
        .unwrap_or((500, 220));
    let ms = base + per * n as u64 / 1000;
    format!("{:.0} s", (ms as f64 / 1000.0).ceil())
}

/// The method chosen, and what it holds.
pub struct Chosen {
    pub method: Method,
    pub prof: Option<Profiler>,
    /// Kprobe event name and function, for [`Method::Kprobe`].
    pub kprobes: Vec<(String, String)>,
}

/// Takes the method asked for, or with auto the first of [`auto_order`]
/// that works here; the log says why the others were passed over.
pub fn choose(
    tfs: &Tracefs,
    args: &Args,
    plan: &Plan,
    probes: &mut ProbeGroup,
    log: &mut AttachLog,
) -> Result<Chosen> {
    let auto = args.method == MethodArg::Auto;
    let order = match args.method {
        MethodArg::Auto => {
            let task = args.task.task().is_some();
            let mut o = auto_order(task, plan.only_functions(), plan.names.len());
            if plan.shared_names() > 0 && o.first() == Some(&Method::Kprobe) {
                o.retain(|m| *m != Method::Kprobe);
                o.push(Method::Kprobe);
                log.why_not
                    .push("kprobe: some names belong to several functions".into());
            }
            o
        }
        MethodArg::Profiler => vec![Method::Profiler],
        MethodArg::Tracer => vec![Method::Tracer],
        MethodArg::Kprobe => vec![Method::Kprobe],
    };
    let chosen = |method, prof, kprobes| {
        Ok(Chosen {
            method,
            prof,
            kprobes,
        })
    };
    for m in order {
        match m {
            Method::Tracer => return chosen(m, None, Vec::new()),
            Method::Profiler => match profiler(tfs, plan, auto)? {
                Ok(p) => {
                    log.mark("profiler");
                    return chosen(m, Some(p), Vec::new());
                }
                Err(why) => log.why_not.push(format!("profiler: {why}")),
            },
            Method::Kprobe => {
                if let caps::Support::No(why) = caps::check(tfs, caps::Feature::KprobeEvents) {
                    log.why_not.push(format!("kprobe: {why}"));
                    continue;
                }
                if !auto && plan.shared_names() > 0 {
                    eprintln!(
                        "funccount: {} names belong to several functions each; a kprobe counts only the one the kernel picks for the name (--method tracer counts them all)",
                        plan.shared_names()
                    );
                }
                match attach::add_kprobes("funccount", "fc", probes, &plan.names, auto) {
                    Ok(names) => {
                        log.mark("kprobes");
                        return chosen(m, None, names);
                    }
                    Err(e) if auto && e.kind() == ErrorKind::Rejected => {
                        let first = e.message().lines().next().unwrap_or("").to_string();
                        log.why_not.push(format!("kprobe: {first}"));
                        probes.remove_all()?;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Err(Error::unsupported(format!(
        "no way to count kernel functions on this kernel: {}",
        log.why_not.join("; ")
    )))
}

/// Takes and starts the profiler. `Ok(Err(why))`: auto may count another
/// way; asked for by name, that is an error.
fn profiler(
    tfs: &Tracefs,
    plan: &Plan,
    auto: bool,
) -> Result<std::result::Result<Profiler, String>> {
    let mut p = match Profiler::acquire(tfs) {
        Ok(p) => p,
        Err(why) if auto => return Ok(Err(why)),
        Err(why) => {
            return Err(Error::new(
                ErrorKind::Busy,
                format!("cannot use the function profiler: {why}"),
            ))
        }
    };
    if let Some(r) = p.recovered.take() {
        eprintln!("funccount: {r}");
    }
    let funcs: Vec<&TraceableFunction> = plan.funcs.iter().collect();
    match p.start(&funcs, &signals::stop_requested) {
        Ok(()) => Ok(Ok(p)),
        Err(e) if auto && e.kind() == ErrorKind::Busy => Ok(Err(e.to_string())),
        Err(e) => Err(e),
    }
}

/// The function tracer in `inst`: its filter, the task (or not ourselves),
/// and the `ip` field counted from each record.
pub fn arm_tracer(
    inst: &mut Instance,
    plan: &Plan,
    task: Option<Task>,
    counter: &mut Counter,
    log: &mut AttachLog,
) -> Result<()> {
    // Checked before the filter is written.
    if !inst.has_tracer("function") || !inst.exists("set_ftrace_filter") {
        return Err(Error::unsupported(
            "this kernel cannot run the function tracer in an instance (it needs Linux 4.17 or later); try --method kprobe",
        ));
    }
    let funcs: Vec<&TraceableFunction> = plan.funcs.iter().collect();
    log.filter = Some(functions::write_filter(
        &inst.path("set_ftrace_filter"),
        &funcs,
        &signals::stop_requested,
    )?);
    log.mark("filter");
    match task {
        Some(t) => inst.set_function_pids(t)?,
        // Our own reads of the buffer would count (vfs_read...) and make
        // more events to read.
        None => inst.exclude_self_from_functions()?,
    }
    for opt in ["func_stack_trace", "func-no-repeats"] {
        if inst.exists(format!("options/{opt}")) {
            inst.set_option(opt, false)?;
        }
    }
    let fmt = inst.event_format("ftrace", "function")?;
    counter.buf.fn_id = Some(fmt.id);
    counter.buf.ip_offset = fmt.require("ip")?.offset;
    signals::check()?;
    inst.set_tracer("function")?;
    log.mark("tracer");
    Ok(())
}

/// Kprobe hits, counted from the buffer by event or by the kernel.
pub fn arm_kprobes(
    tfs: &Tracefs,
    inst: &mut Instance,
    group: &str,
    kprobes: Vec<(String, String)>,
    from_buffer: bool,
    counter: &mut Counter,
) -> Result<()> {
    if from_buffer {
        for (ev, func) in kprobes {
            counter.buf.add_event(tfs.event_id(group, &ev)?, func);
        }
    } else {
        counter.kprobes = Some((Cumulative::default(), kprobes.into_iter().collect()));
    }
    signals::check()?;
    inst.write(format!("events/{group}/enable"), "1")
}

/// Tracepoints and user functions (uprobes), counted from the buffer.
pub fn arm_events(
    tfs: &Tracefs,
    inst: &mut Instance,
    probes: &mut ProbeGroup,
    plan: &Plan,
    counter: &mut Counter,
) -> Result<()> {
    for (sys, ev) in &plan.tracepoints {
        signals::check()?;
        let id = tfs.event_id(sys, ev)?;
        inst.enable_event(sys, ev)?;
        counter.buf.add_event(id, format!("{sys}:{ev}"));
    }
    for (i, u) in plan.user.iter().enumerate() {
        signals::check()?;
        let def = ProbeDef {
            kind: ProbeKind::Uprobe,
            name: format!("fcu{}_{i}", std::process::id()),
            location: u.location.clone(),
            args: Vec::new(),
        };
        let p = probes.add(&def)?.clone();
        let id = tfs.event_id(&p.group, &p.name)?;
        inst.enable_event(&p.group, &p.name)?;
        counter.buf.add_event(id, u.display.clone());
    }
    Ok(())
}

/// What attaching did, for -v: how long each step took, how the filter
/// was written, and why methods were passed over.
pub struct AttachLog {
    start: Instant,
    last: Instant,
    done: Vec<(&'static str, f64)>,
    filter: Option<FilterWrite>,
    pub why_not: Vec<String>,
}

impl AttachLog {
    pub fn new() -> AttachLog {
        let now = Instant::now();
        AttachLog {
            start: now,
            last: now,
            done: Vec::new(),
            filter: None,
            why_not: Vec::new(),
        }
    }

    /// A step ended now.
    pub fn mark(&mut self, what: &'static str) {
        let now = Instant::now();
        self.done.push((what, (now - self.last).as_secs_f64()));
        self.last = now;
    }

    /// `attached in 0.31 s (instance 0.01, ...); kernel functions: ...`
    pub fn text(&self, method: Option<Method>) -> String {
        let steps: Vec<String> = self
            .done
            .iter()
            .map(|(w, t)| format!("{w} {t:.2}"))
            .collect();
        let mut s = format!(
            "attached in {:.2} s ({})",
            self.start.elapsed().as_secs_f64(),
            steps.join(", ")
        );
        if let Some(m) = method {
            s.push_str(&format!(
                "; kernel functions: {} ({})",
                m.name(),
                m.describe()
            ));
        }
        s.push_str(match self.filter {
            Some(FilterWrite::ByIndex) => "; filter written by index",
            Some(FilterWrite::ByName) => "; filter written by name",
            None => "",
        });
        if !self.why_not.is_empty() {
            s.push_str(&format!("; not used: {}", self.why_not.join("; ")));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_scale_with_the_count() {
        assert_eq!(attach_estimate(Method::Tracer, 44642), "11 s");
        assert_eq!(attach_estimate(Method::Kprobe, 1500), "106 s");
    }

    #[test]
    fn auto_prefers_the_tracer_for_a_task_and_kprobes_for_a_few() {
        use Method::*;
        assert_eq!(auto_order(true, true, 1), [Tracer, Kprobe]);
        assert_eq!(auto_order(false, true, 10), [Profiler, Kprobe, Tracer]);
        assert_eq!(auto_order(false, true, 11), [Profiler, Tracer, Kprobe]);
        assert_eq!(auto_order(false, false, 1), [Profiler, Tracer, Kprobe]);
    }
}
