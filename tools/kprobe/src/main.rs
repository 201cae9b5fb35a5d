//! kprobe - trace kernel function calls and returns (kprobes), one event per
//! line, or counted.
//!
//! USAGE: kprobe [-FhHsv] [-d secs] [-p PID] [-L TID] [-M N] [-j]
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
//! limit the run (-d, -M). (Not measured here: the kernels with kprobes
//! run under TCG emulation in tests/vm, where timings mean little.)
//!
//! WARNINGS: -F allows functions the kernel does not list as traceable and
//! offsets past a function's end; the kernel still refuses addresses that
//! are not instruction boundaries and its own blacklist.

mod agg;
mod funcs;
mod spec;

use agg::{ByKey, HistOf, ProbeAgg};
use clap::Parser;
use ftrace_common::cli::{self, CommonArgs};
use ftrace_common::dynevent::{ProbeDef, ProbeGroup, ProbeKind};
use ftrace_common::format::{EventFormat, Field, FieldKind};
use ftrace_common::instance::Instance;
use ftrace_common::output::{Log2Hist, Output};
use ftrace_common::probetool::{self, Addrs, ProbeOut};
use ftrace_common::proc::{self, CommCache};
use ftrace_common::reader::{stream, Event, Flow, MaxEvents, Reader, Sink, StreamOpts};
use ftrace_common::sym::kallsyms::KernelSymbols;
use ftrace_common::tracefs::Tracefs;
use ftrace_common::{caps, signals, sweep, Error, Result};
use funcs::Functions;
use spec::{Definition, Kind};
use std::collections::HashMap;
use std::process::ExitCode;
use std::time::Duration;

const EXAMPLES: &str = "\
Examples:
  kprobe p:do_sys_open                   # trace open() entries (do_sys_open)
  kprobe r:do_sys_open                   # trace their returns
  kprobe 'r:do_sys_open $retval'         # returns, with the return value
  kprobe 'r:myopen do_sys_open $retval'  # the same, event named myopen
  kprobe 'p:myopen do_sys_open mode=%cx:u16'
                                         # an argument from a register
  kprobe 'p:myopen do_sys_open filename=+0(%si):string'
                                         # the file name (x86_64 ABI: 2nd arg)
  kprobe 'p:do_sys_open file=+0(%si):string' 'file ~ \"*stat\"'
                                         # only names ending in stat
  kprobe -s 'p:myprobe tcp_retransmit_skb'
                                         # TCP retransmits, with kernel stacks
  kprobe -p 1182 -d 10 p:vfs_read        # one process, 10 seconds
  kprobe p:ext4:ext4_file_open           # a function of a module
  kprobe -e 'p:vfs_read' -e 'r:vfs_read ret=$retval:s64 if ret < 0'
                                         # two probes, the second filtered
  kprobe -C -d 5 -e p:vfs_read -e p:vfs_write
                                         # count calls for 5 seconds
  kprobe -C --by f 'p:do_sys_openat2 f=+0(%si):string'
                                         # count opens per file name
  kprobe --hist '$retval' r:vfs_read     # histogram of read() sizes
  kprobe -v 'p:do_sys_open +0(%si):string'
                                         # show the event format and exit
  kprobe --json -M 10 p:do_sys_openat2   # 10 events as JSON lines";

/// Trace kernel function calls and returns (kprobes).
#[derive(Debug, Parser)]
#[command(
    name = "kprobe",
    version,
    about = "Trace kernel function calls and returns with kprobes",
    long_about = "Trace kernel function calls and returns with kprobes, printing one \
line per event from ftrace's binary buffers in a private instance, or counting them. \
A definition is {p|r}:[NAME ]FUNC[+OFFSET]|MODULE:FUNC|0xADDR [ARGS], as in perf-tools: \
p: probes the entry (or an instruction at +OFFSET), r: the return; if the first word is \
followed by a word that is not a fetch argument, the first word is the event NAME \
(default: the function's name). ARGS are the kernel's fetch arguments, passed on as \
given: %di, +0(%si):string, $retval, mode=%cx:u16 (see the kernel's kprobetrace.rst). \
The function is checked against available_filter_functions (or /proc/kallsyms) before \
anything is created; -F skips the check. The FILTER uses the kernel's event filter \
syntax on the argument names (e.g. 'file ~ \"*stat\"'). Several probes: give each with \
-e; a definition given with -e may end with `if FILTER`. A string argument the kernel \
could not read (its page was not in memory) prints as (fault), as in the kernel's own \
output; beware that the kernel's == and ~ filters let such events through. Lost events \
are always reported. -p PID keeps the events of that process, all its threads and the \
processes it starts while kprobe runs (unlike perf-tools, which kept the one PID).\n\n\
Requirements: root, kprobe events (CONFIG_KPROBE_EVENTS), tracefs (mounted by kprobe if \
needed) with instances; -s needs CONFIG_STACKTRACE. On a kernel without kprobe events \
kprobe says so in one line and exits with status 2.\n\n\
Overhead: every call of a probed function pays for the probe, in every process, whatever \
-p or the filter keep; printing each event costs far more than recording it. For a \
function called thousands of times a second, filter, count (-C, --hist) or limit the \
run (-d, -M).",
    after_help = EXAMPLES
)]
struct Args {
    /// Force: skip the check that the function is in
    /// available_filter_functions (and that an offset is inside it).
    #[arg(short = 'F', long = "force")]
    force: bool,
    /// Print column headers.
    #[arg(short = 'H', long = "headers")]
    headers: bool,
    /// Print the kernel stack after each event.
    #[arg(short = 's', long = "stacks", conflicts_with_all = ["count", "hist"])]
    stacks: bool,
    /// Create the probes, show their event formats, remove them and exit.
    #[arg(short = 'v', long = "view")]
    view: bool,
    /// Trace for this many seconds, then end (output streams meanwhile).
    #[arg(short = 'd', long = "duration", value_name = "SECS", value_parser = cli::parse_secs)]
    duration: Option<Duration>,
    /// Trace this process only: all its threads and the processes it starts
    /// meanwhile.
    #[arg(short = 'p', long = "pid", value_name = "PID", value_parser = cli::parse_pid, conflicts_with = "tid")]
    pid: Option<u32>,
    /// Trace this thread only.
    #[arg(short = 'L', long = "tid", value_name = "TID", value_parser = cli::parse_pid)]
    tid: Option<u32>,
    /// A probe definition; repeat for several probes. May end with
    /// `if FILTER`.
    #[arg(short = 'e', long = "probe", value_name = "DEFINITION")]
    probes: Vec<String>,
    /// Stop after this many events.
    #[arg(short = 'M', long = "max-events", value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    max_events: Option<u64>,
    /// Count the events of each probe instead of printing them; the counts
    /// are printed at the end.
    #[arg(short = 'C', long = "count", conflicts_with = "hist")]
    count: bool,
    /// With -C: count per value of ARG (a probe argument's name), comm or
    /// pid.
    #[arg(long = "by", value_name = "ARG", requires = "count")]
    by: Option<String>,
    /// Print a log2 histogram of ARG (a probe argument's name, or $retval
    /// for return probes) instead of the events.
    #[arg(long = "hist", value_name = "ARG")]
    hist: Option<String>,
    /// Print events (or the aggregate) as JSON lines.
    #[arg(short = 'j', long = "json")]
    json: bool,
    #[command(flatten)]
    common: CommonArgs,
    /// The probe: {p|r}:[NAME ]FUNC[+OFFSET]|MODULE:FUNC|0xADDR [ARGS].
    #[arg(value_name = "DEFINITION")]
    definition: Option<String>,
    /// An event filter in the kernel's syntax on the probe's arguments,
    /// e.g. 'file ~ "*stat"'.
    #[arg(value_name = "FILTER")]
    filter: Option<String>,
}

fn main() -> ExitCode {
    let args = match cli::parse_or_exit::<Args>() {
        Ok(a) => a,
        Err(code) => return code,
    };
    cli::run("kprobe", || kprobe(args))
}

/// A probe checked and ready to be created.
#[derive(Debug)]
struct Planned {
    def: Definition,
    probe: ProbeDef,
    filter: Option<String>,
    /// The argument field `--hist` reads in this probe, if it has it, and
    /// whether its values are to be read as signed.
    hist_field: Option<(String, bool)>,
}

/// The definitions given: the positional one (with the positional filter)
/// and every -e.
fn definitions(args: &Args) -> Result<Vec<(Definition, Option<String>)>> {
    let out = probetool::definitions(
        "kprobe",
        args.definition.as_deref(),
        args.filter.as_deref(),
        &args.probes,
        "no probe given: e.g. kprobe p:do_sys_open (see kprobe -h)",
    )?;
    // Refused now rather than after the probes exist.
    for (_, f) in &out {
        if let Some(f) = f {
            ftrace_common::instance::check_one_line("filter", f)?;
        }
    }
    Ok(out)
}

/// Names, kernel lines and the `--hist` field of each definition; nothing
/// is written yet.
fn plan(defs: Vec<(Definition, Option<String>)>, hist: Option<&str>) -> Result<Vec<Planned>> {
    let names: Vec<String> = defs
        .iter()
        .map(|(d, _)| d.name.clone().unwrap_or_else(|| spec::default_name(d)))
        .collect();
    let mut out = Vec::new();
    for (i, (def, filter)) in defs.into_iter().enumerate() {
        let mut name = names[i].clone();
        // perf-tools names p: and r: probes of a function alike; in one run
        // the return probe says what it is.
        if def.name.is_none()
            && def.kind == Kind::Return
            && names.iter().enumerate().any(|(j, n)| j != i && *n == name)
        {
            name.push_str("_ret");
        }
        let mut args = def.args.clone();
        let mut hist_field = None;
        if let Some(h) = hist {
            let fields = spec::arg_field_names(&args);
            if h == "$retval" {
                if def.kind == Kind::Return {
                    match args.iter().position(|a| spec::arg_fetch(a) == "$retval") {
                        Some(k) => {
                            // Untyped, the kernel records it as x64: read
                            // it as signed, since errors are negative.
                            let typed = args[k].rsplit_once(':').is_some();
                            hist_field = Some((fields[k].clone(), !typed));
                        }
                        None => {
                            if fields.iter().any(|f| f == "retval") {
                                return Err(Error::usage(format!(
                                    "probe {name}: an argument is already named retval; give $retval its own name and use --hist NAME"
                                )));
                            }
                            args.push("retval=$retval:s64".to_string());
                            hist_field = Some(("retval".to_string(), false));
                        }
                    }
                }
            } else if fields.iter().any(|f| f == h) {
                hist_field = Some((h.to_string(), false));
            }
        }
        let probe = ProbeDef {
            kind: match def.kind {
                Kind::Entry => ProbeKind::Kprobe,
                Kind::Return => ProbeKind::Kretprobe,
            },
            name,
            location: def.location.kernel_form(),
            args,
        };
        // Refuse a line that could not be written before touching tracefs.
        probe.line("ftrace_tools_check")?;
        out.push(Planned {
            def,
            probe,
            filter,
            hist_field,
        });
    }
    if let Some(h) = hist {
        if out.iter().all(|p| p.hist_field.is_none()) {
            return Err(Error::usage(if h == "$retval" {
                "--hist '$retval' needs a return probe (r:FUNC)".to_string()
            } else {
                format!("--hist {h}: no probe has an argument named {h} (name one with {h}=FETCHARG, e.g. '{h}=%di')")
            }));
        }
    }
    Ok(out)
}

fn kprobe(args: Args) -> Result<()> {
    let timing = probetool::Timing::new();
    // Options.
    let defs = definitions(&args)?;
    let planned = plan(defs, args.hist.as_deref())?;

    // Checks.
    let tfs = Tracefs::open()?;
    caps::require(&tfs, caps::Feature::KprobeEvents)?;
    caps::require(&tfs, caps::Feature::Instances)?;
    if let Some(p) = args.pid {
        proc::require_exists(p)?;
    }
    if let Some(t) = args.tid {
        proc::require_exists(t)?;
    }
    if args.stacks {
        caps::require(&tfs, caps::Feature::KernelStacks)?;
    }
    let aggregate = args.count || args.hist.is_some();
    // Kernel symbols print the events' addresses; reading and sorting
    // them takes a while (seconds in a slow VM): do it meanwhile.
    let ksyms = if aggregate || args.view {
        None
    } else {
        Some(std::thread::spawn(|| {
            KernelSymbols::load().unwrap_or_else(|_| KernelSymbols::parse(""))
        }))
    };
    let funcs = Functions::load(tfs.read("available_filter_functions").ok());
    for p in &planned {
        funcs.check(&p.def.location, args.force)?;
    }
    drop(funcs);
    timing.mark("checked");
    sweep::sweep_dead(&tfs);
    timing.mark("swept");

    // Setup. The group is declared before the instance, so that the
    // instance (which disables the events) is dropped first: the kernel
    // refuses to remove an enabled probe.
    let mut group = ProbeGroup::new(&tfs);
    let created = probetool::create(&mut group, planned.iter().map(|p| &p.probe))?;
    timing.mark("probes created");
    if args.view {
        return probetool::show_formats(&tfs, &group, &created);
    }
    if signals::stop_requested() {
        return Ok(());
    }
    let mut inst = Instance::create(&tfs, "kprobe", args.common.buffer_kb)?;
    timing.mark("instance created");
    let mut probes = Vec::new();
    let mut aggs = Vec::new();
    for (p, (name, _)) in planned.iter().zip(&created) {
        let fmt = inst.event_format(group.group(), name)?;
        if let Some(f) = &p.filter {
            inst.set_filter(group.group(), name, f)?;
        }
        aggs.push(make_agg(name, &fmt, p, &args)?);
        probes.push(ProbeOut::new(name.clone(), p.def.kind, &fmt)?);
    }
    if let Some(pid) = args.pid {
        inst.set_event_pids(&proc::threads(pid)?, true)?;
        // Threads started while the list was written.
        inst.add_event_pids(&proc::threads(pid).unwrap_or_default())?;
    } else if let Some(tid) = args.tid {
        inst.set_event_pids(&[tid], false)?;
    }
    let stack_fmt = if args.stacks {
        inst.set_option("stacktrace", true)?;
        Some(inst.event_format("ftrace", "kernel_stack")?)
    } else {
        None
    };
    for (name, _) in &created {
        inst.enable_event(group.group(), name)?;
    }
    let exec_fmt = follow_execs(&mut inst);
    if signals::stop_requested() {
        return Ok(());
    }
    let mut reader = Reader::open(&inst)?;
    inst.start()?;
    timing.mark("armed");
    eprintln!("{}", tracing_line(&planned, &created, &args));

    // Trace.
    let mut out = Output::new();
    if args.headers && !args.json && !aggregate {
        probetool::headers(&mut out);
    }
    let mut printer = Printer {
        out,
        by_id: probes.iter().enumerate().map(|(i, p)| (p.id, i)).collect(),
        probes,
        aggs,
        aggregate,
        stack_fmt,
        exec_fmt,
        syms: Syms::new(ksyms),
        comms: CommCache::new(Some(tfs.path("saved_cmdlines"))),
        json: args.json,
        max: MaxEvents::new(args.max_events),
        after_exec: false,
        line: String::new(),
    };
    let summary = stream(
        &mut reader,
        &mut printer,
        StreamOpts {
            duration: args.duration,
            ordered: !aggregate,
            ..StreamOpts::default()
        },
    )?;

    // Summary; cleanup is done by the guards (instance, then probes).
    if aggregate {
        printer.print_aggregate(args.count && args.by.is_none());
    }
    probetool::finish(&mut printer.out)?;
    if let Some(w) = summary.lost_warning() {
        eprintln!(
            "kprobe: {w}{}",
            if aggregate {
                " (the counts above miss them)"
            } else {
                ""
            }
        );
    }
    Ok(())
}

/// The aggregate state of one created probe, its `--by` and `--hist`
/// fields resolved through the event's format.
fn make_agg(name: &str, fmt: &EventFormat, p: &Planned, args: &Args) -> Result<ProbeAgg> {
    let mut a = ProbeAgg::new(name.to_string());
    if let Some(by) = &args.by {
        let key = match fmt.field(by) {
            Some(f) if !f.name.starts_with("__probe_") => ByKey::Field(f.clone()),
            _ if by == "comm" => ByKey::Comm,
            _ if by == "pid" => ByKey::Pid,
            _ => {
                return Err(Error::usage(format!(
                    "--by {by}: probe {name} has no argument named {by} (nor is it comm or pid)"
                )))
            }
        };
        a.by = Some((by.clone(), key));
    }
    if let Some((field, force_signed)) = &p.hist_field {
        let f = fmt.require(field)?.clone();
        if !matches!(f.kind, FieldKind::Scalar) {
            return Err(Error::usage(format!(
                "--hist {field}: the argument {field} of probe {name} is not a number ({}); give it a numeric type, e.g. {field}=%di:u64",
                f.ctype
            )));
        }
        let signed = f.signed || *force_signed;
        a.hist = Some(HistOf {
            field: f,
            signed,
            hist: Log2Hist::new(),
            negative: 0,
            min_negative: 0,
        });
    }
    Ok(a)
}

/// Enables `sched:sched_process_exec` in the instance, where the kernel has
/// it: task names come from /proc or the kernel's saved_cmdlines when a
/// PID is first seen, and a process that forked (as its parent's name) and
/// then exec'd would keep its parent's name. Its exec event renames it, in
/// time order with the probes' events. Rare (one per exec), filtered by
/// -p/-L like the probes.
fn follow_execs(inst: &mut Instance) -> Option<(u16, Field)> {
    let fmt = inst.event_format("sched", "sched_process_exec").ok()?;
    let filename = fmt.field("filename")?.clone();
    inst.enable_event("sched", "sched_process_exec").ok()?;
    Some((fmt.id, filename))
}

/// The name the kernel gives a task that execs `filename`: its last
/// component, cut to 15 bytes (TASK_COMM_LEN - 1).
fn comm_after_exec(filename: &str) -> String {
    let base = filename.rsplit('/').next().unwrap_or(filename);
    let mut end = base.len().min(15);
    while !base.is_char_boundary(end) {
        end -= 1;
    }
    base[..end].to_string()
}

/// `Tracing kprobe NAME (p:NAME LOC ARGS) for PID N. Ctrl-C to end.`
fn tracing_line(planned: &[Planned], created: &[(String, String)], args: &Args) -> String {
    let what: Vec<String> = planned
        .iter()
        .zip(created)
        .map(|(p, (name, _))| probetool::describe(p.def.kind, name, &p.probe))
        .collect();
    let scope = probetool::for_task(args.pid, args.tid).unwrap_or_default()
        + &probetool::for_duration(args.duration).unwrap_or_default();
    probetool::tracing_line("kprobe", &what, &scope)
}

/// Kernel addresses as the kernel's `%pS` (`func+0x1a/0x170 [mod]`) and
/// `%ps` (`func`) print them, cached: a probe's address repeats. The
/// symbols are loaded by a thread started before setup.
struct Syms {
    loading: Option<std::thread::JoinHandle<KernelSymbols>>,
    k: KernelSymbols,
    cache: HashMap<(u64, bool), String>,
}

impl Syms {
    fn new(loading: Option<std::thread::JoinHandle<KernelSymbols>>) -> Syms {
        Syms {
            loading,
            k: KernelSymbols::parse(""),
            cache: HashMap::new(),
        }
    }

    fn table(&mut self) -> &KernelSymbols {
        if let Some(h) = self.loading.take() {
            if let Ok(k) = h.join() {
                self.k = k;
            }
        }
        &self.k
    }

    fn get(&mut self, addr: u64, with_offset: bool) -> &str {
        if self.cache.len() > 100_000 {
            self.cache.clear();
        }
        self.table();
        let k = &self.k;
        self.cache.entry((addr, with_offset)).or_insert_with(|| {
            let Some(l) = k.lookup(addr) else {
                return format!("0x{addr:x}");
            };
            let mut s = l.function.to_string();
            if with_offset {
                s.push_str(&format!("+{:#x}", l.offset));
                if let Some(size) = k.function_size(addr) {
                    s.push_str(&format!("/{size:#x}"));
                }
                if let Some(m) = l.module {
                    s.push_str(&format!(" [{m}]"));
                }
            }
            s
        })
    }

    /// `func+0x1a` for stacks and JSON.
    fn short(&mut self, addr: u64) -> String {
        self.table().symbolize(addr)
    }
}

struct Printer {
    out: Output,
    by_id: HashMap<u16, usize>,
    probes: Vec<ProbeOut>,
    aggs: Vec<ProbeAgg>,
    aggregate: bool,
    stack_fmt: Option<EventFormat>,
    /// `sched:sched_process_exec` (its id and `filename`), to name a
    /// process by what it runs from its exec on.
    exec_fmt: Option<(u16, Field)>,
    syms: Syms,
    comms: CommCache,
    json: bool,
    max: MaxEvents,
    /// The last event was an exec: the stack that follows is its.
    after_exec: bool,
    line: String,
}

impl Printer {
    fn stack(&mut self, ev: &Event) -> Flow {
        let Some(sf) = &self.stack_fmt else {
            return Flow::Continue;
        };
        if self.after_exec || self.max.skip_stack() {
            return Flow::Continue;
        }
        let frames = ftrace_common::stack::kernel_stack(sf, ev.data)
            .into_iter()
            .map(|a| self.syms.short(a))
            .collect();
        probetool::print_stack(&mut self.out, self.json, ev, "kernel_stack", frames)
    }

    fn print_event(&mut self, i: usize, ev: &Event) -> Flow {
        let p = &self.probes[i];
        let comm = self.comms.get(ev.pid);
        if self.json {
            let addrs = match &p.addrs {
                Addrs::Entry(ip) => vec![("ip", self.syms.short(ip.u64(ev.data).unwrap_or(0)))],
                Addrs::Return { func, ret } => vec![
                    (
                        "func",
                        self.syms
                            .get(func.u64(ev.data).unwrap_or(0), false)
                            .to_string(),
                    ),
                    ("ret", self.syms.short(ret.u64(ev.data).unwrap_or(0))),
                ],
            };
            return self.out.json(&p.json(ev, comm, addrs));
        }
        self.line.clear();
        p.write_head(&mut self.line, ev, comm);
        self.line.push('(');
        match &p.addrs {
            Addrs::Entry(ip) => {
                self.line
                    .push_str(self.syms.get(ip.u64(ev.data).unwrap_or(0), true));
            }
            Addrs::Return { func, ret } => {
                self.line
                    .push_str(self.syms.get(ret.u64(ev.data).unwrap_or(0), true));
                self.line.push_str(" <- ");
                self.line
                    .push_str(self.syms.get(func.u64(ev.data).unwrap_or(0), false));
            }
        }
        self.line.push(')');
        p.write_args(&mut self.line, ev.data);
        self.out.line(&self.line)
    }

    fn print_aggregate(&mut self, plain_count: bool) {
        if self.json {
            for a in &self.aggs {
                if self.out.json(&a.json()) == Flow::Stop {
                    return;
                }
            }
            return;
        }
        if plain_count {
            self.out.text(&agg::count_table(&self.aggs));
            return;
        }
        for (i, a) in self.aggs.iter().enumerate() {
            if i > 0 {
                self.out.line("");
            }
            let text = if a.by.is_some() {
                agg::by_table(a)
            } else {
                agg::hist_block(a)
            };
            if self.out.text(&text) == Flow::Stop {
                return;
            }
        }
    }
}

impl Sink for Printer {
    fn event(&mut self, ev: &Event) -> Flow {
        let Some(&i) = self.by_id.get(&ev.id) else {
            if self.stack_fmt.as_ref().map(|f| f.id) == Some(ev.id) {
                return self.stack(ev);
            }
            if let Some((id, filename)) = &self.exec_fmt {
                if *id == ev.id {
                    if let Some(f) = filename.str(ev.data) {
                        self.comms.set(ev.pid, &comm_after_exec(&f));
                    }
                    // With -s, a stack follows the exec event too.
                    self.after_exec = true;
                }
            }
            return Flow::Continue;
        };
        self.after_exec = false;
        if self.max.past() {
            return Flow::Continue;
        }
        let flow = if self.aggregate {
            let comm = self.comms.get(ev.pid);
            self.aggs[i].add(ev.data, ev.pid, comm, &self.probes[i].styles);
            Flow::Continue
        } else {
            self.print_event(i, ev)
        };
        if flow == Flow::Stop {
            return Flow::Stop;
        }
        self.max.shown(self.stack_fmt.is_some())
    }

    fn lost(&mut self, cpu: u32, count: Option<u64>) -> Flow {
        if self.aggregate {
            // Reported once at the end, with the total.
            return Flow::Continue;
        }
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
        Args::try_parse_from(std::iter::once("kprobe").chain(v.iter().copied())).unwrap()
    }

    #[test]
    fn definitions_positional_and_repeated() {
        let d = definitions(&args(&[
            "p:do_sys_open file=+0(%si):string",
            "file ~ \"*stat\"",
        ]))
        .unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].1.as_deref(), Some("file ~ \"*stat\""));
        let d = definitions(&args(&[
            "-e",
            "p:vfs_read",
            "-e",
            "r:vfs_read ret=$retval:s64 if ret < 0",
        ]))
        .unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d[1].1.as_deref(), Some("ret < 0"));
        // A second definition where the filter goes is explained.
        let e = definitions(&args(&["p:vfs_read", "p:vfs_write"])).unwrap_err();
        assert!(e.to_string().contains("-e"), "{e}");
        assert!(definitions(&args(&[])).is_err());
        assert!(definitions(&args(&["p:vfs_read if a > 1", "a > 2"])).is_err());
    }

    #[test]
    fn plan_names_and_hist_fields() {
        let p = plan(
            definitions(&args(&["-e", "p:vfs_read", "-e", "r:vfs_read"])).unwrap(),
            None,
        )
        .unwrap();
        assert_eq!(p[0].probe.name, "vfs_read");
        assert_eq!(p[1].probe.name, "vfs_read_ret");
        // --hist $retval adds the argument to return probes that lack it.
        let p = plan(
            definitions(&args(&["-e", "p:vfs_read", "-e", "r:vfs_read"])).unwrap(),
            Some("$retval"),
        )
        .unwrap();
        assert_eq!(p[0].hist_field, None);
        assert_eq!(p[1].probe.args, ["retval=$retval:s64"]);
        assert_eq!(p[1].hist_field, Some(("retval".into(), false)));
        // ... and uses the one that is there, read as signed when untyped.
        let p = plan(
            definitions(&args(&["r:vfs_read $retval"])).unwrap(),
            Some("$retval"),
        )
        .unwrap();
        assert_eq!(p[0].probe.args, ["$retval"]);
        assert_eq!(p[0].hist_field, Some(("arg1".into(), true)));
        let p = plan(
            definitions(&args(&["r:vfs_read n=$retval:u32"])).unwrap(),
            Some("$retval"),
        )
        .unwrap();
        assert_eq!(p[0].hist_field, Some(("n".into(), false)));
        let p = plan(
            definitions(&args(&["p:vfs_read count=%dx:u64"])).unwrap(),
            Some("count"),
        )
        .unwrap();
        assert_eq!(p[0].hist_field, Some(("count".into(), false)));
        for (a, h) in [
            (&["p:vfs_read"][..], "$retval"),
            (&["p:vfs_read count=%dx"][..], "size"),
            (&["r:vfs_read retval=%ax"][..], "$retval"),
        ] {
            let e = plan(definitions(&args(a)).unwrap(), Some(h)).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{a:?} {h}");
        }
        // An injected line is refused before anything is written.
        let e = plan(
            vec![(spec::parse("p:vfs_read").unwrap(), None)]
                .into_iter()
                .map(|(mut d, f)| {
                    d.args.push("x;y".into());
                    (d, f)
                })
                .collect(),
            None,
        )
        .unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn names_after_exec() {
        assert_eq!(comm_after_exec("/usr/bin/cat"), "cat");
        assert_eq!(comm_after_exec("cat"), "cat");
        assert_eq!(
            comm_after_exec("/x/a-very-long-program-name"),
            "a-very-long-pro"
        );
        assert_eq!(comm_after_exec("/x/ééééééééé"), "ééééééé");
        assert_eq!(comm_after_exec(""), "");
    }

    #[test]
    fn options_that_do_not_go_together() {
        for bad in [
            &["-C", "--hist", "x", "p:f"][..],
            &["--by", "comm", "p:f"][..],
            &["-s", "-C", "p:f"][..],
            &["-p", "1", "-L", "1", "p:f"][..],
        ] {
            assert!(
                Args::try_parse_from(std::iter::once("kprobe").chain(bad.iter().copied())).is_err(),
                "{bad:?}"
            );
        }
    }
}
