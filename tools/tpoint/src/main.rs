//! tpoint - trace a kernel tracepoint, one event per line.
//!
//! USAGE: tpoint [-hHsv] [-d secs] [-p PID] [-L TID] [-l] tracepoint [filter]
//!
//! Events are read from the binary per-CPU buffers of a private ftrace
//! instance and printed in the shape of ftrace's own text output
//! (`comm-pid [cpu] timestamp: event: field=value ...`).
//!
//! REQUIREMENTS: tracefs (mounted by tpoint if needed), root.
//! OVERHEAD: each event costs the kernel well under a microsecond to record;
//! printing is what costs: a busy tracepoint (sched, syscalls without a
//! filter) can produce millions of lines per second. Filter, or count with
//! `syscount`/`funccount` instead.

use clap::Parser;
use ftrace_common::cli::{self, CommonArgs};
use ftrace_common::format::EventFormat;
use ftrace_common::format::Value;
use ftrace_common::glob::{self, Glob};
use ftrace_common::instance::{Instance, InstanceOptions};
use ftrace_common::output::Output;
use ftrace_common::proc::CommCache;
use ftrace_common::reader::{stream, Event, Flow, MaxEvents, Reader, Sink, StreamOpts};
use ftrace_common::sym::symbolize::KernelSymbols;
use ftrace_common::tracefs::Tracefs;
use ftrace_common::{caps, proc, sweep, Error, Result};
use std::process::ExitCode;
use std::time::Duration;

const EXAMPLES: &str = "\
Examples:
  tpoint -l                                   # list tracepoints
  tpoint -l 'block:*'                         # list block tracepoints
  tpoint syscalls:sys_enter_openat            # trace openat() entries
  tpoint -H -d 1 block:block_rq_issue         # 1 second, with a header
  tpoint -p 1234 syscalls:sys_enter_read 'count > 1024'
                                              # big reads of PID 1234
  tpoint -s sched:sched_process_exec          # execs, with kernel stacks
  tpoint -v block:block_rq_complete           # show the fields and exit
  tpoint --json -d 5 sched:sched_process_fork # JSON lines";

/// Trace a kernel tracepoint and print each event.
#[derive(Debug, Parser)]
#[command(
    name = "tpoint",
    version,
    about = "Trace a kernel tracepoint and print each event",
    long_about = "Trace a kernel tracepoint and print each event, decoded by field name \
from ftrace's binary buffers in a private instance. Lost events are always reported. \
The filter uses the kernel's event filter syntax (see the kernel's events.rst), e.g. \
'count > 1024' or 'comm ~ \"ba*\"'.",
    after_help = EXAMPLES
)]
struct Args {
    /// Print column headers.
    #[arg(short = 'H', long = "headers")]
    headers: bool,
    /// Print a kernel stack trace after each event.
    #[arg(short = 's', long = "stacks")]
    stacks: bool,
    /// Show the tracepoint's format (its fields) and exit.
    #[arg(short = 'v', long = "view")]
    view: bool,
    /// Trace for this many seconds, then end (output streams meanwhile).
    #[arg(short = 'd', long = "duration", value_name = "SECS", value_parser = cli::parse_secs)]
    duration: Option<Duration>,
    /// Trace this process only (all its threads, also ones created later).
    #[arg(short = 'p', long = "pid", value_name = "PID", value_parser = cli::parse_pid, conflicts_with = "tid")]
    pid: Option<u32>,
    /// Trace this thread only.
    #[arg(short = 'L', long = "tid", value_name = "TID", value_parser = cli::parse_pid)]
    tid: Option<u32>,
    /// List tracepoints (matching the optional glob) and exit.
    #[arg(short = 'l', long = "list")]
    list: bool,
    /// Stop after this many events.
    #[arg(short = 'M', long = "max-events", value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    max_events: Option<u64>,
    /// Print events as JSON lines.
    #[arg(short = 'j', long = "json")]
    json: bool,
    #[command(flatten)]
    common: CommonArgs,
    /// The tracepoint, as SYSTEM:EVENT (e.g. syscalls:sys_enter_openat);
    /// with -l, an optional glob.
    #[arg(value_name = "TRACEPOINT")]
    tracepoint: Option<String>,
    /// An event filter in the kernel's syntax, e.g. 'count > 1024'.
    #[arg(value_name = "FILTER")]
    filter: Option<String>,
}

fn main() -> ExitCode {
    let args = match cli::parse_or_exit::<Args>() {
        Ok(a) => a,
        Err(code) => return code,
    };
    cli::run("tpoint", || tpoint(args))
}

fn split_tracepoint(tp: &str) -> Result<(&str, &str)> {
    let (sys, name) = tp
        .split_once(':')
        .or_else(|| tp.split_once('/'))
        .ok_or_else(|| {
            Error::usage(format!(
                "'{tp}' is not a tracepoint: give SYSTEM:EVENT, e.g. syscalls:sys_enter_openat (see tpoint -l)"
            ))
        })?;
    let ok = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ok(sys) || !ok(name) {
        return Err(Error::usage(format!("'{tp}' is not a tracepoint name")));
    }
    Ok((sys, name))
}

fn tpoint(args: Args) -> Result<()> {
    // Checks.
    let tfs = Tracefs::open()?;
    if args.list {
        return list(&tfs, args.tracepoint.as_deref());
    }
    let Some(tp) = args.tracepoint.as_deref() else {
        return Err(Error::usage(
            "no tracepoint given (see tpoint -h, or tpoint -l to list them)",
        ));
    };
    let (sys, name) = split_tracepoint(tp)?;
    if !tfs.exists(format!("events/{sys}/{name}/format")) {
        let all = tfs.read("available_events").unwrap_or_default();
        let near = glob::suggestions(tp, all.lines(), 3);
        let hint = if near.is_empty() {
            String::new()
        } else {
            format!("; did you mean {}?", near.join(", "))
        };
        return Err(Error::usage(format!(
            "no tracepoint {sys}:{name} on this kernel{hint} (tpoint -l lists them)"
        )));
    }
    if args.view {
        print!("{}", tfs.read(format!("events/{sys}/{name}/format"))?);
        return Ok(());
    }
    if let Some(p) = args.pid {
        proc::require_exists(p)?;
    }
    if let Some(t) = args.tid {
        proc::require_exists(t)?;
    }
    if args.stacks {
        caps::require(&tfs, caps::Feature::KernelStacks)?;
    }
    sweep::sweep_dead(&tfs);

    // Setup, in a private instance that is removed when `inst` drops. Our
    // own events are dropped as they are read, not kept out by the kernel's
    // set_event_notrace_pid: removing that list's scheduler hooks at the end
    // cost 80 to 100 ms, most of the exit time (its own -p list is needed).
    let mut inst = Instance::create_with(
        &tfs,
        "tpoint",
        &InstanceOptions {
            buffer_kb: args.common.buffer_kb,
            trace_self: true,
            ..InstanceOptions::default()
        },
    )?;
    let mut fmt = inst.event_format(sys, name)?;
    if sys == "syscalls" {
        fmt = fmt.hex_longs();
    }
    if let Some(f) = &args.filter {
        inst.set_filter(sys, name, f)?;
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
    inst.enable_event(sys, name)?;
    let mut reader = Reader::open(&inst)?;
    inst.start()?;
    eprintln!(
        "Tracing {sys}:{name}{}. Ctrl-C to end.",
        match (args.pid, args.tid, args.duration) {
            (Some(p), _, _) => format!(" for PID {p}"),
            (_, Some(t), _) => format!(" for TID {t}"),
            (_, _, Some(d)) => format!(" for {} s", d.as_secs_f64()),
            _ => String::new(),
        }
    );

    // Stream.
    let mut out = Output::new();
    if args.headers && !args.json {
        out.line("#            TASK-PID     CPU#   TIMESTAMP  FUNCTION");
        out.line("#               | |         |       |         |");
    }
    let mut printer = Printer {
        out,
        fmt,
        stack_fmt,
        ksyms: None,
        comms: CommCache::new(Some(tfs.path("saved_cmdlines"))),
        json: args.json,
        system: sys.to_string(),
        max: MaxEvents::new(args.max_events),
        line: String::new(),
        own: (args.pid.is_none() && args.tid.is_none()).then(|| std::process::id() as i32),
    };
    let summary = stream(
        &mut reader,
        &mut printer,
        StreamOpts {
            duration: args.duration,
            ordered: true,
            ..StreamOpts::default()
        },
    )?;

    // Summary.
    printer.out.flush();
    if let Some(e) = printer.out.take_error() {
        return Err(Error::new(
            ftrace_common::ErrorKind::Io,
            format!("writing output: {e}"),
        ));
    }
    if let Some(w) = summary.lost_warning() {
        eprintln!("tpoint: {w}");
    }
    Ok(())
}

fn list(tfs: &Tracefs, pattern: Option<&str>) -> Result<()> {
    let glob = pattern.map(Glob::new).transpose()?;
    let all = tfs.read("available_events")?;
    let mut out = Output::new();
    let mut n = 0;
    for ev in all.lines() {
        if glob.as_ref().map(|g| g.matches(ev)).unwrap_or(true) {
            n += 1;
            if out.line(ev) == Flow::Stop {
                break;
            }
        }
    }
    out.flush();
    if n == 0 {
        if let Some(p) = pattern {
            return Err(Error::usage(format!("no tracepoint matches '{p}'")));
        }
    }
    Ok(())
}

struct Printer {
    out: Output,
    fmt: EventFormat,
    stack_fmt: Option<EventFormat>,
    ksyms: Option<KernelSymbols>,
    comms: CommCache,
    json: bool,
    system: String,
    max: MaxEvents,
    line: String,
    /// Our PID, whose events (and their stacks) are not shown.
    own: Option<i32>,
}

impl Printer {
    fn stack(&mut self, ev: &Event) -> Flow {
        let Some(sf) = &self.stack_fmt else {
            return Flow::Continue;
        };
        if self.max.skip_stack() {
            return Flow::Continue;
        }
        let addrs = ftrace_common::stack::kernel_stack(sf, ev.data);
        // Loaded at the first stack (about 40 ms), not at start.
        let ksyms = self.ksyms.get_or_insert_with(|| {
            KernelSymbols::load().unwrap_or_else(|_| KernelSymbols::parse(""))
        });
        if self.json {
            let frames: Vec<serde_json::Value> = addrs
                .iter()
                .map(|a| serde_json::Value::String(ksyms.symbolize(*a)))
                .collect();
            return self.out.json(&serde_json::json!({"cpu": ev.cpu, "ts": ev.ts, "pid": ev.pid, "kernel_stack": frames}));
        }
        for a in addrs {
            let line = format!(" => {}", ksyms.symbolize(a));
            if self.out.line(&line) == Flow::Stop {
                return Flow::Stop;
            }
        }
        Flow::Continue
    }
}

impl Sink for Printer {
    fn event(&mut self, ev: &Event) -> Flow {
        if Some(ev.pid) == self.own {
            return Flow::Continue;
        }
        if ev.id != self.fmt.id {
            if self.stack_fmt.as_ref().map(|f| f.id) == Some(ev.id) {
                return self.stack(ev);
            }
            return Flow::Continue;
        }
        if self.max.past() {
            return Flow::Continue;
        }
        let flow = if self.json {
            let comm = self.comms.get(ev.pid).to_string();
            let mut fields = serde_json::Map::new();
            for f in &self.fmt.fields {
                let v = match f.value(ev.data) {
                    Some(Value::Int(i)) => serde_json::json!(i),
                    Some(Value::Uint(u)) => serde_json::json!(u),
                    Some(Value::Str(s)) => serde_json::json!(s),
                    Some(Value::Array(a)) => serde_json::json!(a),
                    Some(v) => serde_json::json!(v.to_string()),
                    None => serde_json::Value::Null,
                };
                fields.insert(f.name.clone(), v);
            }
            self.out.json(&serde_json::json!({
                "ts": ev.ts, "cpu": ev.cpu, "pid": ev.pid, "comm": comm,
                "event": format!("{}:{}", self.system, self.fmt.name),
                "fields": fields,
            }))
        } else {
            use std::fmt::Write;
            self.line.clear();
            let comm = self.comms.get(ev.pid);
            let _ = write!(
                self.line,
                "{comm:>16}-{:<7} [{:03}] {}.{:06}: {}:",
                ev.pid,
                ev.cpu,
                ev.ts / 1_000_000_000,
                (ev.ts % 1_000_000_000) / 1000,
                self.fmt.name
            );
            for f in &self.fmt.fields {
                self.line.push(' ');
                f.write_text(ev.data, &mut self.line);
            }
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

    #[test]
    fn tracepoint_names() {
        assert_eq!(
            split_tracepoint("syscalls:sys_enter_read").unwrap(),
            ("syscalls", "sys_enter_read")
        );
        assert_eq!(
            split_tracepoint("block/block_rq_issue").unwrap(),
            ("block", "block_rq_issue")
        );
        for bad in ["nocolon", ":x", "x:", "a:b c", "a:b\n-:x", "../x:y"] {
            assert_eq!(split_tracepoint(bad).unwrap_err().exit_code(), 2, "{bad}");
        }
    }
}
