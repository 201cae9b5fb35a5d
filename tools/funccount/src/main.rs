//! funccount - count kernel function calls matching patterns; also
//! tracepoints and user functions.
//!
//! USAGE: funccount [-hTvFrlj] [-i secs] [-d secs] [-t top] [-p PID]
//!                  [--method auto|profiler|tracer|kprobe] pattern...
//!
//! Kernel functions are matched against `available_filter_functions` and
//! counted exactly, by the cheapest way this kernel offers (see
//! METHODS in the man page and the figures in the README):
//! - the function profiler (CONFIG_FUNCTION_PROFILER): per-CPU counters
//!   in the kernel; global, so only taken when nobody else uses it or the
//!   top-level filter, and put back afterwards (profiler.rs);
//! - the function tracer in funccount's own instance, its own
//!   `set_ftrace_filter` (written by index: seconds faster than by name),
//!   each call a 24-byte record in the binary buffer, counted by address
//!   in user space; `-p` uses the instance's `set_ftrace_pid`;
//! - kprobes, one per function, counted by the kernel in `kprobe_profile`
//!   (from the buffer with -p).
//!
//! Tracepoints (`t:SYS:EVENT`) and user functions (`u:LIB:FUNC`, uprobes)
//! are counted from the binary buffer by event.
//!
//! REQUIREMENTS: root, tracefs; for kernel functions a usable function
//! tracer (CONFIG_FUNCTION_TRACER, CONFIG_DYNAMIC_FTRACE); the profiler
//! and kprobes are used where present. The host kernel of this project
//! refuses the function tracer (EPERM): funccount says so and exits 2.
//!
//! OVERHEAD: every call of a counted function costs the kernel the
//! counting method's price (about 0.1 to 1 us; see the README). Counting
//! hundreds of busy functions slows the machine measurably; more than
//! 1000 functions needs -F.

mod counts;
mod profiler;
mod spec;

use clap::Parser;
use counts::{AddrNames, Cumulative, IpCounts};
use ftrace_common::app::cli::{self, CommonArgs};
use ftrace_common::app::output::Output;
use ftrace_common::buffer::reader::{Item, POLL_INTERVAL};
use ftrace_common::kernel::functions::{self, FilterWrite, FunctionList, TraceableFunction};
use ftrace_common::kernel::tracefs::{self, Tracefs};
use ftrace_common::lifecycle::dynevent::{ProbeDef, ProbeGroup, ProbeKind};
use ftrace_common::lifecycle::instance::{Instance, InstanceOptions};
use ftrace_common::sym::elf::{ElfFile, SymbolKind};
use ftrace_common::sym::target::resolve_target;
use ftrace_common::Flow;
use ftrace_common::{
    app::signals, kernel::caps, kernel::proc, lifecycle::sweep, Error, ErrorKind, Result,
};
use profiler::Profiler;
use spec::{Matcher, Spec};
use std::collections::{HashMap, HashSet};
use std::process::ExitCode;
use std::time::{Duration, Instant};

const EXAMPLES: &str = "\
Examples:
  funccount 'vfs_*'               # count kernel functions matching vfs_*
  funccount -d 5 'tcp_*'          # for 5 seconds
  funccount -t 10 'ext4_*'        # show the top 10 only
  funccount -i 1 'ext4_*'         # a summary every second
  funccount -i 1 -d 5 'ext4_*'    # 5 one-second summaries
  funccount -p 1234 'vfs_*'       # calls made by PID 1234 only
  funccount -r '^vfs_(read|write)$'   # a regular expression
  funccount 'vfs_*' 'ksys_*'      # several patterns
  funccount 't:syscalls:sys_enter_*'  # tracepoints
  funccount 'u:libc:malloc' -p 1234   # user functions (uprobes)
  funccount -l 'tcp_*'            # list what a pattern matches, and exit
  funccount -v --method tracer 'vfs_*'  # choose the method, say what it does
  funccount --json -d 1 'vfs_*'   # JSON";

/// `--help` (and the man page): how funccount counts, where, and at what
/// cost; the examples last.
const LONG_HELP: &str = "\
Methods (--method; the Tracing line names the one used, -v says why):
  profiler  The kernel's function profiler (CONFIG_FUNCTION_PROFILER): per-CPU
            counters in the kernel, read from trace_stat/function*. It is
            global, so funccount takes it only when nobody else can be using
            it: the profiler off, the top-level tracer nop, the top-level
            set_ftrace_filter, set_ftrace_notrace and set_ftrace_pid empty,
            and no other funccount holding it (a lock). It writes the
            top-level set_ftrace_filter and function_profile_enabled and puts
            both back at the end, also on INT, TERM, HUP, QUIT and PIPE; after
            a SIGKILL the next funccount run puts them back. Counts every
            process (funccount's own reads of trace_stat too); no -p.
  tracer    The function tracer in funccount's own instance, with its own
            set_ftrace_filter (and set_ftrace_pid for -p): each call is a
            record in the binary buffer, counted by address in user space.
            funccount's own calls are not counted. Lost events (a reader that
            fell behind) are reported with their number.
  kprobe    A kprobe per function, in funccount's own group; the kernel counts
            the hits (kprobe_profile). With -p, or with tracepoints or user
            functions in the same run, hits are counted from the buffer. A
            name that several functions share gets one kprobe, on the one the
            kernel picks.
  auto      With -p: the tracer. Otherwise the profiler where it is free;
            else kprobes for up to 10 kernel functions (when nothing else is
            counted), else the tracer. A kprobe the kernel refuses makes auto
            use the next method.
  Tracepoints (t:) and user functions (u:, uprobes) are counted from the
  buffer of the same instance, whatever the method.

Which kernels offer which (the tests/vm guests):
  Debian 6.1 and 6.12 (bookworm, backports)       tracer, kprobe
  6.1 built with CONFIG_FUNCTION_PROFILER         profiler, tracer, kprobe
  this project's host, 6.18 (Firecracker)         none: the function tracer is
      listed but refuses every use (EPERM); funccount says so in one line and
      exits 2. Tracepoints and user functions are counted there all the same.

Output: FUNC COUNT (%-30s %8s), ascending by count, as perf-tools' funccount
prints it, after an empty line; only what was called. Kernel functions by name
(functions that share a name are added up), tracepoints as SYSTEM:EVENT, user
functions as TARGET:FUNC. -i prints one summary per interval (counts start
again), -T a date line before each, -t the largest NUM rows. --json: one line
per summary: {\"summary\":N,\"method\":M,\"counts\":[{\"func\":F,\"count\":N}],\"lost\":N}.

Requirements: root; tracefs (mounted if needed); for kernel functions a
usable function tracer (CONFIG_FUNCTION_TRACER, CONFIG_DYNAMIC_FTRACE); the
profiler and kprobes (CONFIG_KPROBE_EVENTS) where the kernel has them;
uprobes (CONFIG_UPROBE_EVENTS) for u:.

Overhead (bench-funccount, TCG guests: compare methods, not absolute times):
each counted call cost about 0.6 to 0.9 us with the profiler or kprobes and
1.3 to 2.4 us with the tracer, funccount's reading included; hardware is many
times faster. Attaching and detaching 500 functions took under a second with
the profiler or the tracer, 20 to 34 s with kprobes; all 44 600 functions
of the 6.12 kernel, 10 s with the tracer. The tracer counted
475 000 to 645 000 events/s of one process without loss. More than 1000
functions need -F.

";

/// More matched functions than this needs -F.
const HUGE_MATCH: usize = 1000;

/// Attach plus detach time, for the -F message: (fixed ms, ms per 1000
/// functions), measured by bench-funccount and by hand in TCG guests
/// (tracer: 0.5 s for 50 functions, 1.1 s for 2900, 10 s for all 44 600;
/// kprobes: 20 to 34 s for 500), rounded up.
const ATTACH_COST: [(Method, u64, u64); 3] = [
    (Method::Profiler, 300, 220),
    (Method::Tracer, 500, 220),
    (Method::Kprobe, 1000, 70000),
];

/// Count kernel function calls (and tracepoints, user functions).
#[derive(Debug, Parser)]
#[command(
    name = "funccount",
    version,
    about = "Count kernel function calls matching patterns; also tracepoints and user functions",
    long_about = "Count kernel function calls matching patterns (globs, or regular \
expressions with -r), in the kernel where it can, exactly otherwise. The method is \
chosen from what the kernel offers: the function profiler (CONFIG_FUNCTION_PROFILER, \
only when nobody else uses it; restored afterwards), else the function tracer in a \
private instance, counted from the binary trace buffer, else kprobes. The Tracing line \
names the method; --method chooses one. Tracepoints (t:SYSTEM:EVENT) and user functions \
(u:LIB:FUNC) are counted from the trace buffer. Output is FUNC COUNT, ascending by count, \
as perf-tools' funccount prints it. Lost events are always reported.",
    after_help = EXAMPLES,
    after_long_help = format!("{LONG_HELP}{EXAMPLES}")
)]
struct Args {
    /// Trace for this many seconds, then print the summary.
    #[arg(short = 'd', long = "duration", value_name = "SECS", value_parser = cli::parse_secs)]
    duration: Option<Duration>,
    /// Print a summary every SECS seconds (counts start again each time).
    #[arg(short = 'i', long = "interval", value_name = "SECS", value_parser = cli::parse_secs)]
    interval: Option<Duration>,
    /// Show only the top NUM functions.
    #[arg(short = 't', long = "top", value_name = "NUM", value_parser = parse_top)]
    top: Option<usize>,
    /// Print the date before each summary.
    #[arg(short = 'T', long = "timestamp")]
    timestamp: bool,
    /// Count calls made by this process only (all its threads, and threads
    /// and children started later). The run ends when the process does.
    #[arg(short = 'p', long = "pid", value_name = "PID", value_parser = cli::parse_pid)]
    pid: Option<u32>,
    /// Patterns are regular expressions, matched anywhere in the name
    /// (anchor them with ^ and $).
    #[arg(short = 'r', long = "regexp")]
    regexp: bool,
    /// Count even when the patterns match more than 1000 kernel functions.
    #[arg(short = 'F', long = "force")]
    force: bool,
    /// How to count kernel functions: auto picks the cheapest available.
    #[arg(long = "method", value_enum, default_value_t = MethodArg::Auto)]
    method: MethodArg,
    /// List the functions and events the patterns match, and exit.
    #[arg(short = 'l', long = "list")]
    list: bool,
    /// Say which method is used and why, and how long attaching took.
    #[arg(short = 'v', long = "verbose")]
    verbose: bool,
    /// Print each summary as a JSON line.
    #[arg(short = 'j', long = "json")]
    json: bool,
    #[command(flatten)]
    common: CommonArgs,
    /// What to count: kernel functions (vfs_*, k:vfs_*), tracepoints
    /// (t:SYSTEM:EVENT) or user functions (u:LIB:FUNC).
    #[arg(value_name = "PATTERN", required = true)]
    patterns: Vec<String>,
}

fn parse_top(s: &str) -> std::result::Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("'{s}' is not a positive number of rows")),
    }
}

/// The --method values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum MethodArg {
    /// The cheapest method this kernel offers.
    Auto,
    /// The function profiler (global; not with -p).
    Profiler,
    /// The function tracer in a private instance.
    Tracer,
    /// One kprobe per function.
    Kprobe,
}

/// How kernel functions are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Profiler,
    Tracer,
    Kprobe,
}

impl Method {
    fn name(self) -> &'static str {
        match self {
            Method::Profiler => "profiler",
            Method::Tracer => "tracer",
            Method::Kprobe => "kprobe",
        }
    }

    fn describe(self) -> &'static str {
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
fn auto_order(pid: bool, only_functions: bool, functions: usize) -> Vec<Method> {
    if pid {
        // Only the tracer filters by process in the kernel; kprobes would
        // write every hit to the buffer too, and cost more to attach.
        vec![Method::Tracer, Method::Kprobe]
    } else if only_functions && functions <= KPROBE_AUTO_MAX {
        vec![Method::Profiler, Method::Kprobe, Method::Tracer]
    } else {
        vec![Method::Profiler, Method::Tracer, Method::Kprobe]
    }
}

/// Creates a kprobe for each name. A name the kernel refuses (the kprobe
/// blacklist, a function it cannot place) is an error with `strict`;
/// otherwise it is left out with a warning. `Ok(None)`: interrupted.
fn add_kprobes(
    probes: &mut ProbeGroup,
    names: &[String],
    strict: bool,
) -> Result<Option<Vec<(String, String)>>> {
    let mut made = Vec::new();
    let mut refused: Vec<String> = Vec::new();
    let mut first_refusal = None;
    for (i, name) in names.iter().enumerate() {
        if stop() {
            return Ok(None);
        }
        let def = ProbeDef {
            kind: ProbeKind::Kprobe,
            name: format!("fc{}_{i}", std::process::id()),
            location: name.clone(),
            args: Vec::new(),
        };
        match probes.add(&def) {
            Ok(p) => made.push((p.name.clone(), name.clone())),
            Err(e) if e.kind() == ErrorKind::Rejected => {
                if strict {
                    return Err(e);
                }
                refused.push(name.clone());
                first_refusal.get_or_insert(e);
            }
            Err(e) => return Err(e),
        }
    }
    if made.is_empty() {
        return Err(first_refusal.unwrap_or_else(|| Error::rejected("no kprobe was accepted")));
    }
    if !refused.is_empty() {
        eprintln!(
            "funccount: the kernel refused kprobes on {} of the functions, which are not counted: {}{}",
            refused.len(),
            refused.iter().take(5).cloned().collect::<Vec<_>>().join(", "),
            if refused.len() > 5 { ", ..." } else { "" }
        );
    }
    Ok(Some(made))
}

fn main() -> ExitCode {
    let args = match cli::parse_or_exit::<Args>() {
        Ok(a) => a,
        Err(code) => return code,
    };
    cli::run("funccount", || funccount(args))
}

/// A user function to count.
#[derive(Debug, Clone)]
struct UserFunc {
    /// As printed: `libc:malloc`.
    display: String,
    /// `PATH:0xOFFSET` for uprobe_events.
    location: String,
}

/// What the patterns matched.
#[derive(Debug, Default)]
struct Plan {
    /// Kernel function lines (for filters), in the kernel's order.
    funcs: Vec<TraceableFunction>,
    /// Their distinct names.
    names: Vec<String>,
    /// Tracepoints.
    tracepoints: Vec<(String, String)>,
    /// User functions.
    user: Vec<UserFunc>,
}

fn kernel_functions(tfs: &Tracefs, specs: &[Spec], args: &Args, plan: &mut Plan) -> Result<()> {
    let patterns: Vec<&str> = specs
        .iter()
        .filter_map(|s| match s {
            Spec::Kernel { pattern } => Some(pattern.as_str()),
            _ => None,
        })
        .collect();
    if patterns.is_empty() {
        return Ok(());
    }
    let list = FunctionList::load(tfs)?;
    let mut seen = HashSet::new();
    for p in &patterns {
        let m = Matcher::new(p, args.regexp)?;
        let found = list.require_matching(p, "", |n| m.matches(n))?;
        for f in found {
            if seen.insert(f.index) {
                plan.funcs.push(f.clone());
            }
        }
    }
    plan.funcs.sort_by_key(|f| f.index);
    let mut names: Vec<String> = plan.funcs.iter().map(|f| f.name.clone()).collect();
    names.sort();
    names.dedup();
    plan.names = names;
    Ok(())
}

fn tracepoints(tfs: &Tracefs, specs: &[Spec], args: &Args, plan: &mut Plan) -> Result<()> {
    let mut all: Option<String> = None;
    let mut seen = HashSet::new();
    for s in specs {
        let Spec::Tracepoint { system, event } = s else {
            continue;
        };
        let text = match &all {
            Some(t) => t,
            None => all.insert(tfs.read("available_events")?),
        };
        let ms = Matcher::new(system, args.regexp)?;
        let me = Matcher::new(event, args.regexp)?;
        let mut n = 0;
        for line in text.lines() {
            let Some((sys, ev)) = line.split_once(':') else {
                continue;
            };
            if ms.matches(sys) && me.matches(ev) {
                n += 1;
                if seen.insert(line.to_string()) {
                    plan.tracepoints.push((sys.to_string(), ev.to_string()));
                }
            }
        }
        if n == 0 {
            let near = ftrace_common::base::glob::suggestions(
                &format!("{system}:{event}").replace(['*', '?'], ""),
                text.lines(),
                3,
            );
            return Err(Error::usage(format!(
                "no tracepoint matches '{}'{} (tpoint -l lists them)",
                s.text(),
                ftrace_common::base::glob::hint(&near)
            )));
        }
    }
    Ok(())
}

fn user_functions(specs: &[Spec], args: &Args, plan: &mut Plan) -> Result<()> {
    let mut files: HashMap<std::path::PathBuf, ElfFile> = HashMap::new();
    for s in specs {
        let Spec::User { target, func } = s else {
            continue;
        };
        let t = resolve_target(target, args.pid)?;
        if !files.contains_key(&t.path) {
            let elf = ElfFile::open(&t.path)?.with_name(&t.display_path);
            files.insert(t.path.clone(), elf);
        }
        let elf = &files[&t.path];
        let m = Matcher::new(func, args.regexp)?;
        let mut found: Vec<(String, u64)> = Vec::new();
        if !m.is_pattern() {
            let at = elf.resolve(func, false)?;
            found.push((at.symbol.unwrap_or_else(|| func.clone()), at.offset));
        } else {
            // One probe per address: aliases (malloc, __libc_malloc) share
            // one; the plainest name is shown.
            let mut by_addr: HashMap<u64, String> = HashMap::new();
            for sym in elf.functions(None) {
                let shown = sym.display_name();
                if sym.kind == SymbolKind::Ifunc || !(m.matches(&shown) || m.matches(&sym.name)) {
                    continue;
                }
                let better = |old: &String| {
                    let score = |n: &str| (n.bytes().take_while(|&b| b == b'_').count(), n.len());
                    score(&shown) < score(old)
                };
                match by_addr.get(&sym.vaddr) {
                    Some(old) if !better(old) => {}
                    _ => {
                        by_addr.insert(sym.vaddr, shown);
                    }
                }
            }
            let mut v: Vec<(u64, String)> = by_addr.into_iter().collect();
            v.sort_by(|a, b| a.1.cmp(&b.1));
            for (vaddr, shown) in v {
                if let Some(off) = elf.vaddr_to_offset(vaddr) {
                    found.push((shown, off));
                }
            }
        }
        if found.is_empty() {
            return Err(Error::usage(format!(
                "no function of {} matches '{func}' (uprobe -l {target} lists them)",
                t.display_path.display()
            )));
        }
        for (name, off) in found {
            plan.user.push(UserFunc {
                display: format!("{target}:{name}"),
                location: format!("{}:{off:#x}", t.path.display()),
            });
        }
    }
    Ok(())
}

fn attach_estimate(method: Method, n: usize) -> String {
    let (base, per) = ATTACH_COST
        .iter()
        .find(|(m, _, _)| *m == method)
        .map(|(_, b, p)| (*b, *p))
        .unwrap_or((500, 220));
    let ms = base + per * n as u64 / 1000;
    format!("{:.0} s", (ms as f64 / 1000.0).ceil())
}

/// Counts coming from the binary buffer.
#[derive(Default)]
struct BufferCounts {
    /// ftrace:function, by address.
    fn_id: Option<u16>,
    ip_offset: usize,
    ips: IpCounts,
    /// Other events by id: slot in `names`/`counts`.
    slots: HashMap<u16, usize>,
    names: Vec<String>,
    counts: Vec<u64>,
    /// Records read, and those of no event counted here.
    events: u64,
    other: u64,
    /// Lost events the sub-buffers reported.
    lost: u64,
    lost_unknown: bool,
}

impl BufferCounts {
    fn add_event(&mut self, id: u16, name: String) {
        let slot = self.names.len();
        self.names.push(name);
        self.counts.push(0);
        self.slots.insert(id, slot);
    }

    fn item(&mut self, item: Item) -> Flow {
        match item {
            Item::Event(ev) => {
                self.events += 1;
                if Some(ev.id) == self.fn_id {
                    let o = self.ip_offset;
                    if let Some(b) = ev.data.get(o..o + 8) {
                        let ip = u64::from_ne_bytes(b.try_into().unwrap_or([0; 8]));
                        self.ips.add(ip);
                    }
                } else if let Some(&s) = self.slots.get(&ev.id) {
                    self.counts[s] += 1;
                } else {
                    self.other += 1;
                }
            }
            Item::Lost(_, Some(n)) => self.lost += n,
            Item::Lost(_, None) => self.lost_unknown = true,
        }
        Flow::Continue
    }
}

/// Everything counted, and how to turn it into one interval's rows.
struct Counter {
    buf: BufferCounts,
    addr_names: Option<AddrNames>,
    wanted: Vec<String>,
    prof: Cumulative,
    kprobes: Option<(Cumulative, HashMap<String, String>)>,
    /// Lost events already reported.
    lost_reported: u64,
}

impl Counter {
    fn take(&mut self, tfs: &Tracefs, prof: Option<&Profiler>) -> Result<HashMap<String, u64>> {
        let mut out: HashMap<String, u64> = HashMap::new();
        if !self.buf.ips.is_empty() {
            let names = self.addr_names.get_or_insert_with(|| {
                let text = std::fs::read_to_string("/proc/kallsyms").unwrap_or_default();
                let wanted: HashSet<&str> = self.wanted.iter().map(String::as_str).collect();
                AddrNames::parse(&text, &wanted)
            });
            for (ip, n) in self.buf.ips.take() {
                let name = names
                    .lookup(ip)
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("{ip:#x}"));
                *out.entry(name).or_insert(0) += n;
            }
        }
        for (name, n) in self.buf.names.iter().zip(self.buf.counts.iter_mut()) {
            if *n > 0 {
                *out.entry(name.clone()).or_insert(0) += *n;
                *n = 0;
            }
        }
        if let Some(p) = prof {
            for (name, n) in self.prof.delta(p.counts()?) {
                let name = profiler::full_name(&name, &self.wanted);
                *out.entry(name).or_insert(0) += n;
            }
        }
        if let Some((cum, map)) = &mut self.kprobes {
            let all = counts::parse_kprobe_profile(&tfs.read("kprobe_profile")?);
            let ours: HashMap<String, u64> = all
                .into_iter()
                .filter_map(|(ev, n)| map.get(&ev).map(|f| (f.clone(), n)))
                .collect();
            for (name, n) in cum.delta(ours) {
                *out.entry(name).or_insert(0) += n;
            }
        }
        Ok(out)
    }
}

struct Printer {
    out: Output,
    json: bool,
    top: Option<usize>,
    timestamp: bool,
    method: Option<Method>,
    seq: u64,
}

impl Printer {
    fn summary(&mut self, counts: HashMap<String, u64>, lost: u64) -> Flow {
        self.seq += 1;
        let rows = counts::sorted_rows(counts);
        let rows = counts::top(&rows, self.top);
        let date = self.timestamp.then(counts::date_now);
        let flow = if self.json {
            let list: Vec<serde_json::Value> = rows
                .iter()
                .map(|(f, n)| serde_json::json!({"func": f, "count": n}))
                .collect();
            let mut v = serde_json::json!({
                "summary": self.seq,
                "method": self.method.map(Method::name),
                "counts": list,
                "lost": lost,
            });
            if let Some(d) = date {
                v["date"] = serde_json::Value::String(d);
            }
            self.out.json(&v)
        } else {
            self.out.text(&counts::render(rows, date.as_deref()))
        };
        if flow == Flow::Stop {
            return Flow::Stop;
        }
        self.out.flush()
    }
}

fn stop() -> bool {
    signals::stop_requested()
}

/// How long each attach step took, for -v.
struct Steps {
    last: Instant,
    done: Vec<(&'static str, f64)>,
}

impl Steps {
    fn new() -> Steps {
        Steps {
            last: Instant::now(),
            done: Vec::new(),
        }
    }

    fn mark(&mut self, what: &'static str) {
        let now = Instant::now();
        self.done.push((what, (now - self.last).as_secs_f64()));
        self.last = now;
    }

    fn text(&self) -> String {
        let v: Vec<String> = self
            .done
            .iter()
            .map(|(w, t)| format!("{w} {t:.2}"))
            .collect();
        v.join(", ")
    }
}

/// Interrupted setup: the guards undo it; the run ends quietly.
fn interrupted(e: &Error) -> bool {
    e.is_interrupted()
}

fn verbose(on: bool, msg: impl FnOnce() -> String) {
    if on {
        eprintln!("funccount: {}", msg());
    }
}

fn funccount(args: Args) -> Result<()> {
    // Options.
    let specs: Vec<Spec> = args
        .patterns
        .iter()
        .map(|p| spec::parse(p))
        .collect::<Result<_>>()?;
    let has_kernel = specs.iter().any(|s| matches!(s, Spec::Kernel { .. }));
    if args.method == MethodArg::Profiler && args.pid.is_some() {
        return Err(Error::usage(
            "the function profiler counts every task: -p needs --method tracer (or kprobe)",
        ));
    }

    // Checks.
    let tfs = Tracefs::open()?;
    if has_kernel {
        caps::require(&tfs, caps::Feature::FunctionTracer)?;
        match args.method {
            MethodArg::Profiler => caps::require(&tfs, caps::Feature::FunctionProfiler)?,
            MethodArg::Kprobe => caps::require(&tfs, caps::Feature::KprobeEvents)?,
            _ => {}
        }
    }
    if specs.iter().any(|s| matches!(s, Spec::User { .. })) {
        caps::require(&tfs, caps::Feature::UprobeEvents)?;
    }
    if let Some(p) = args.pid {
        proc::require_exists(p)?;
    }
    let t_match = Instant::now();
    let mut plan = Plan::default();
    kernel_functions(&tfs, &specs, &args, &mut plan)?;
    tracepoints(&tfs, &specs, &args, &mut plan)?;
    user_functions(&specs, &args, &mut plan)?;
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
    if args.list {
        return list(&plan);
    }
    let total = plan.names.len() + plan.tracepoints.len() + plan.user.len();
    if total > HUGE_MATCH && !args.force {
        let m = match args.method {
            MethodArg::Kprobe => Method::Kprobe,
            _ => Method::Tracer,
        };
        return Err(Error::usage(format!(
            "the patterns match {total} functions and events ({} kernel functions): attaching and detaching that many takes about {} (measured in a TCG guest; less on hardware) and slows every call of each; use -F to count them anyway, or narrow the patterns (-l lists the matches)",
            plan.names.len(),
            attach_estimate(m, total)
        )));
    }
    sweep::sweep_dead(&tfs);
    if let Some(m) = ftrace_common::lifecycle::toplevel::recover_stale(&tfs) {
        eprintln!("funccount: {m}");
    }

    // Setup. Guards drop in reverse order: the reader, then the instance
    // (disabling its events), then the profiler, then the probes.
    let t_attach = Instant::now();
    let mut steps = Steps::new();
    let mut probes = ProbeGroup::new(&tfs);
    let mut prof: Option<Profiler> = None;
    let mut method = None;
    let mut why_not: Vec<String> = Vec::new();
    let only_functions = plan.tracepoints.is_empty() && plan.user.is_empty();
    let kprobe_from_buffer = args.pid.is_some() || !only_functions;
    // Kprobes made while choosing: event name -> function.
    let mut kprobe_names: Vec<(String, String)> = Vec::new();
    if !plan.funcs.is_empty() {
        let order: Vec<Method> = match args.method {
            MethodArg::Auto => {
                // A name that several functions share (static functions in
                // different files): a kprobe by name sits on one of them.
                let shared = plan.funcs.len() > plan.names.len();
                let mut o = auto_order(args.pid.is_some(), only_functions, plan.names.len());
                if shared && o.first() == Some(&Method::Kprobe) {
                    o.retain(|m| *m != Method::Kprobe);
                    o.push(Method::Kprobe);
                    why_not.push("kprobe: some names belong to several functions".into());
                }
                o
            }
            MethodArg::Profiler => vec![Method::Profiler],
            MethodArg::Tracer => vec![Method::Tracer],
            MethodArg::Kprobe => vec![Method::Kprobe],
        };
        let auto = args.method == MethodArg::Auto;
        let funcs: Vec<&TraceableFunction> = plan.funcs.iter().collect();
        for m in order {
            match m {
                Method::Profiler => match Profiler::acquire(&tfs) {
                    Ok(mut p) => {
                        if let Some(r) = p.recovered.take() {
                            eprintln!("funccount: {r}");
                        }
                        match p.start(&funcs, &stop) {
                            Ok(()) => {
                                prof = Some(p);
                                method = Some(m);
                                steps.mark("profiler");
                                break;
                            }
                            Err(e) if interrupted(&e) => return Ok(()),
                            Err(e) if auto && e.kind() == ErrorKind::Busy => {
                                why_not.push(format!("profiler: {e}"));
                            }
                            Err(e) => return Err(e),
                        }
                    }
                    Err(why) if auto => why_not.push(format!("profiler: {why}")),
                    Err(why) => {
                        return Err(Error::new(
                            ErrorKind::Busy,
                            format!("cannot use the function profiler: {why}"),
                        ))
                    }
                },
                Method::Kprobe => {
                    if let caps::Support::No(why) = caps::check(&tfs, caps::Feature::KprobeEvents) {
                        why_not.push(format!("kprobe: {why}"));
                        continue;
                    }
                    if !auto && plan.funcs.len() > plan.names.len() {
                        eprintln!(
                            "funccount: {} names belong to several functions each; a kprobe counts only the one the kernel picks for the name (--method tracer counts them all)",
                            plan.funcs.len() - plan.names.len()
                        );
                    }
                    match add_kprobes(&mut probes, &plan.names, auto) {
                        Ok(Some(names)) => {
                            kprobe_names = names;
                            method = Some(m);
                            steps.mark("kprobes");
                            break;
                        }
                        // Interrupted.
                        Ok(None) => return Ok(()),
                        Err(e) if auto && e.kind() == ErrorKind::Rejected => {
                            why_not.push(format!(
                                "kprobe: {}",
                                e.message().lines().next().unwrap_or("")
                            ));
                            probes.remove_all()?;
                        }
                        Err(e) => return Err(e),
                    }
                }
                Method::Tracer => {
                    method = Some(m);
                    break;
                }
            }
        }
        if method.is_none() {
            return Err(Error::unsupported(format!(
                "no way to count kernel functions on this kernel: {}",
                why_not.join("; ")
            )));
        }
    }
    let buffered = method == Some(Method::Tracer)
        || (method == Some(Method::Kprobe) && kprobe_from_buffer)
        || !plan.tracepoints.is_empty()
        || !plan.user.is_empty();
    let has_events =
        !plan.tracepoints.is_empty() || !plan.user.is_empty() || method == Some(Method::Kprobe);
    let mut inst: Option<Instance> = None;
    if buffered || has_events {
        inst = Some(Instance::create_with(
            &tfs,
            "funccount",
            &InstanceOptions {
                buffer_kb: args.common.buffer_kb,
                kernel_buffer: !buffered,
                // Events of ours are kept out by set_event_notrace_pid; the
                // function tracer has its own list (below).
                trace_self: !has_events,
                keep_clock: true,
            },
        )?);
        steps.mark("instance");
    }
    let mut counter = Counter {
        buf: BufferCounts::default(),
        addr_names: None,
        wanted: plan.names.clone(),
        prof: Cumulative::default(),
        kprobes: None,
        lost_reported: 0,
    };
    let mut filter_how = None;
    if method == Some(Method::Tracer) {
        let inst = inst.as_mut().expect("an instance for the tracer");
        let tracers = inst.read("available_tracers").unwrap_or_default();
        if !tracers.split_whitespace().any(|t| t == "function") {
            return Err(Error::unsupported(
                "this kernel cannot run the function tracer in an instance (it needs Linux 4.17 or later); try --method kprobe",
            ));
        }
        let funcs: Vec<&TraceableFunction> = plan.funcs.iter().collect();
        filter_how = match functions::write_filter(&inst.path("set_ftrace_filter"), &funcs, &stop) {
            Ok(h) => Some(h),
            Err(e) if interrupted(&e) => return Ok(()),
            Err(e) => return Err(e),
        };
        steps.mark("filter");
        if let Some(pid) = args.pid {
            inst.set_option("function-fork", true)?;
            let tids = proc::threads(pid)?;
            let list = |t: &[u32]| {
                t.iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            inst.write("set_ftrace_pid", &list(&tids))?;
            // Threads started while the list was written.
            tracefs::write_file(
                &inst.path("set_ftrace_pid"),
                &list(&proc::threads(pid).unwrap_or_default()),
                true,
            )?;
        } else if inst.exists("set_ftrace_notrace_pid") {
            // Our own reads of the buffer would count (vfs_read...) and
            // make more events to read.
            inst.write("set_ftrace_notrace_pid", &std::process::id().to_string())?;
        }
        for opt in ["func_stack_trace", "func-no-repeats"] {
            if inst.exists(format!("options/{opt}")) {
                inst.set_option(opt, false)?;
            }
        }
        let f = tfs.read("events/ftrace/function/format")?;
        let fmt = ftrace_common::buffer::format::EventFormat::parse(&f)?;
        counter.buf.fn_id = Some(fmt.id);
        counter.buf.ip_offset = fmt.require("ip")?.offset;
        if stop() {
            return Ok(());
        }
        inst.write("current_tracer", "function")?;
        steps.mark("tracer");
    }
    if method == Some(Method::Kprobe) {
        let inst = inst.as_mut().expect("an instance for kprobes");
        let group = probes.group().to_string();
        if kprobe_from_buffer {
            for (ev, func) in &kprobe_names {
                let id: u16 = tfs
                    .read(format!("events/{group}/{ev}/id"))?
                    .trim()
                    .parse()
                    .map_err(|_| Error::new(ErrorKind::Io, format!("bad id of {group}/{ev}")))?;
                counter.buf.add_event(id, func.clone());
            }
        } else {
            let map = kprobe_names.iter().cloned().collect();
            counter.kprobes = Some((Cumulative::default(), map));
        }
        if stop() {
            return Ok(());
        }
        inst.write(format!("events/{group}/enable"), "1")?;
        steps.mark("enable");
    }
    for (sys, ev) in &plan.tracepoints {
        let inst = inst.as_mut().expect("an instance for tracepoints");
        if stop() {
            return Ok(());
        }
        let id: u16 = tfs
            .read(format!("events/{sys}/{ev}/id"))?
            .trim()
            .parse()
            .map_err(|_| Error::new(ErrorKind::Io, format!("bad id of {sys}:{ev}")))?;
        inst.enable_event(sys, ev)?;
        counter.buf.add_event(id, format!("{sys}:{ev}"));
    }
    for (i, u) in plan.user.iter().enumerate() {
        let inst = inst.as_mut().expect("an instance for uprobes");
        if stop() {
            return Ok(());
        }
        let def = ProbeDef {
            kind: ProbeKind::Uprobe,
            name: format!("fcu{}_{i}", std::process::id()),
            location: u.location.clone(),
            args: Vec::new(),
        };
        let p = probes.add(&def)?.clone();
        let id: u16 = tfs
            .read(format!("events/{}/{}/id", p.group, p.name))?
            .trim()
            .parse()
            .map_err(|_| Error::new(ErrorKind::Io, format!("bad id of {}", p.name)))?;
        inst.enable_event(&p.group, &p.name)?;
        counter.buf.add_event(id, u.display.clone());
    }
    if let (Some(pid), Some(inst)) = (args.pid, inst.as_mut()) {
        if has_events {
            inst.set_event_pids(&proc::threads(pid)?, true)?;
            inst.add_event_pids(&proc::threads(pid).unwrap_or_default())?;
        }
    }
    let mut reader = match (&inst, buffered) {
        (Some(i), true) => Some(i.reader()?),
        _ => None,
    };
    if stop() {
        return Ok(());
    }
    if let (Some(i), true) = (&inst, buffered) {
        i.start()?;
    }
    steps.mark("start");
    verbose(args.verbose, || {
        let mut s = format!(
            "attached in {:.2} s ({})",
            t_attach.elapsed().as_secs_f64(),
            steps.text()
        );
        if let Some(m) = method {
            s.push_str(&format!(
                "; kernel functions: {} ({})",
                m.name(),
                m.describe()
            ));
        }
        if let Some(h) = filter_how {
            s.push_str(match h {
                FilterWrite::ByIndex => "; filter written by index",
                FilterWrite::ByName => "; filter written by name",
            });
        }
        if !why_not.is_empty() {
            s.push_str(&format!("; not used: {}", why_not.join("; ")));
        }
        s
    });
    eprintln!("{}", tracing_line(&args, &plan, method));

    // Count.
    let mut printer = Printer {
        out: Output::new(),
        json: args.json,
        top: args.top,
        timestamp: args.timestamp,
        method,
        seq: 0,
    };
    let start = Instant::now();
    let deadline = args.duration.map(|d| start + d);
    let mut next_tick = args.interval.map(|i| start + i);
    let mut lost_total = 0u64;
    loop {
        if let Some(r) = reader.as_mut() {
            r.drain(&mut |item| counter.buf.item(item))?;
        }
        let now = Instant::now();
        if let (Some(t), Some(every)) = (next_tick, args.interval) {
            if now >= t {
                next_tick = Some(t + every);
                // The last interval ends with the duration: printed below,
                // after the buffers are drained.
                let last = deadline.is_some_and(|d| t + every / 2 >= d);
                if !last {
                    let c = counter.take(&tfs, prof.as_ref())?;
                    let lost = counter.buf.lost - counter.lost_reported;
                    counter.lost_reported = counter.buf.lost;
                    lost_total += lost;
                    warn_lost(lost, counter.buf.lost_unknown);
                    if printer.summary(c, lost) == Flow::Stop {
                        break;
                    }
                }
            }
        }
        if stop() || deadline.is_some_and(|d| now >= d) {
            break;
        }
        // With -p the run ends when the process does.
        if let Some(p) = args.pid {
            if !std::path::Path::new(&format!("/proc/{p}")).exists() {
                break;
            }
        }
        let mut wait = POLL_INTERVAL;
        for t in [deadline, next_tick].into_iter().flatten() {
            wait = wait.min(t.saturating_duration_since(now));
        }
        match reader.as_ref() {
            Some(r) if !wait.is_zero() => r.wait(wait),
            _ => std::thread::sleep(wait),
        }
    }

    // Summary: stop recording, take the rest, print.
    if let Some(i) = &inst {
        let _ = i.stop();
    }
    if let Some(r) = reader.as_mut() {
        loop {
            let (n, _) = r.drain(&mut |item| counter.buf.item(item))?;
            if n == 0 {
                break;
            }
        }
    }
    if !printer.out.is_closed() {
        let c = counter.take(&tfs, prof.as_ref())?;
        let mut lost = counter.buf.lost - counter.lost_reported;
        // The kernel's own count, where the sub-buffers could not say.
        if let Some(r) = reader.as_ref() {
            let stats: u64 = r.lost_per_cpu().iter().map(|(_, n)| n).sum();
            if stats > lost_total + lost {
                lost = stats - lost_total;
            }
        }
        warn_lost(lost, counter.buf.lost_unknown);
        printer.summary(c, lost);
    }
    printer.out.flush();
    if let Some(e) = printer.out.take_error() {
        return Err(Error::new(ErrorKind::Io, format!("writing output: {e}")));
    }

    if let Some(r) = reader.as_ref() {
        let st = r.stats;
        if st.bad_pages > 0 {
            eprintln!(
                "funccount: {} sub-buffers could not be read whole: the counts may be low",
                st.bad_pages
            );
        }
        verbose(args.verbose, || {
            format!(
                "read {} sub-buffers, {} events ({} of no counted event)",
                st.pages, counter.buf.events, counter.buf.other
            )
        });
    }

    // Detach, timed for -v.
    let t_detach = Instant::now();
    drop(reader);
    drop(inst);
    drop(prof);
    drop(probes);
    verbose(args.verbose, || {
        format!("detached in {:.2} s", t_detach.elapsed().as_secs_f64())
    });
    Ok(())
}

fn warn_lost(lost: u64, unknown: bool) {
    if lost > 0 {
        eprintln!(
            "funccount: LOST {lost} events: the counts above are low by that much; use a larger -b/--buffer-kb or fewer functions"
        );
    } else if unknown {
        eprintln!("funccount: events were LOST (the kernel did not say how many): the counts above are low");
    }
}

fn tracing_line(args: &Args, plan: &Plan, method: Option<Method>) -> String {
    let mut what = Vec::new();
    if !plan.names.is_empty() {
        what.push(format!(
            "{} function{}",
            plan.names.len(),
            if plan.names.len() == 1 { "" } else { "s" }
        ));
    }
    if !plan.tracepoints.is_empty() {
        what.push(format!(
            "{} tracepoint{}",
            plan.tracepoints.len(),
            if plan.tracepoints.len() == 1 { "" } else { "s" }
        ));
    }
    if !plan.user.is_empty() {
        what.push(format!(
            "{} user function{}",
            plan.user.len(),
            if plan.user.len() == 1 { "" } else { "s" }
        ));
    }
    let pats: Vec<String> = args.patterns.iter().map(|p| format!("\"{p}\"")).collect();
    let mut s = format!("Tracing {}", pats.join(" "));
    s.push_str(&format!(" ({}", what.join(", ")));
    if let Some(m) = method {
        s.push_str(&format!("; method: {}", m.name()));
    }
    s.push(')');
    if let Some(p) = args.pid {
        s.push_str(&format!(" for PID {p}"));
    }
    if let Some(d) = args.duration {
        let secs = d.as_secs_f64();
        s.push_str(&format!(
            " for {secs} second{}",
            if secs == 1.0 { "" } else { "s" }
        ));
    }
    s.push('.');
    if let Some(t) = args.top {
        s.push_str(&format!(" Top {t} only."));
    }
    s.push_str(".. Ctrl-C to end.");
    s
}

fn list(plan: &Plan) -> Result<()> {
    let mut out = Output::new();
    for n in &plan.names {
        if out.line(n) == Flow::Stop {
            return Ok(());
        }
    }
    for (s, e) in &plan.tracepoints {
        if out.line(&format!("t:{s}:{e}")) == Flow::Stop {
            return Ok(());
        }
    }
    for u in &plan.user {
        if out.line(&format!("u:{}", u.display)) == Flow::Stop {
            return Ok(());
        }
    }
    out.flush();
    Ok(())
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
        Args::try_parse_from(std::iter::once("funccount").chain(v.iter().copied())).unwrap()
    }

    #[test]
    fn perf_tools_forms_parse() {
        let a = args(&["-i", "1", "-d", "5", "-t", "10", "-T", "ext4*"]);
        assert_eq!(a.interval, Some(Duration::from_secs(1)));
        assert_eq!(a.duration, Some(Duration::from_secs(5)));
        assert_eq!(a.top, Some(10));
        assert!(a.timestamp);
        assert_eq!(a.patterns, ["ext4*"]);
        let a = args(&["vfs_*", "t:sched:*", "--method", "tracer", "-p", "7"]);
        assert_eq!(a.patterns.len(), 2);
        assert_eq!(a.method, MethodArg::Tracer);
        assert!(Args::try_parse_from(["funccount"]).is_err());
        assert!(Args::try_parse_from(["funccount", "-t", "0", "x"]).is_err());
    }

    #[test]
    fn tracing_line_names_method_and_options() {
        let a = args(&["-d", "5", "-t", "3", "vfs_*"]);
        let plan = Plan {
            names: vec!["vfs_read".into(), "vfs_write".into()],
            ..Plan::default()
        };
        let l = tracing_line(&a, &plan, Some(Method::Tracer));
        assert_eq!(
            l,
            "Tracing \"vfs_*\" (2 functions; method: tracer) for 5 seconds. Top 3 only... Ctrl-C to end."
        );
    }

    #[test]
    fn estimates_scale_with_the_count() {
        assert_eq!(attach_estimate(Method::Tracer, 44642), "11 s");
        assert_eq!(attach_estimate(Method::Kprobe, 1500), "106 s");
    }
}
