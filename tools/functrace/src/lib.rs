//! functrace - trace kernel function calls matching a pattern.
//!
//! USAGE: functrace [-hH] [-p PID] [-L TID] [-d secs] [-j] [-F] funcstring
//!
//! perf-tools' functrace set the top-level function tracer and printed
//! trace_pipe. This one runs the function tracer in its own instance
//! (set_ftrace_filter and set_ftrace_pid are the instance's, nothing global
//! changes) and reads the `function` records (ip, parent_ip) from the
//! binary per-CPU buffer, naming both addresses from /proc/kallsyms. Lost
//! events are reported. A pattern that matches more than 1000 functions
//! needs -F, as in funccount.
//!
//! REQUIREMENTS: root, tracefs, a usable function tracer that runs in
//! instances (Linux 4.17+).

mod cli;

use cli::Args;
use ftrace_common::app::cli as app_cli;
use ftrace_common::app::output::Output;
use ftrace_common::app::signals;
use ftrace_common::app::status::{self, TracingLine};
use ftrace_common::app::stream::{stream, Sink, StreamOpts};
use ftrace_common::base::glob::Glob;
use ftrace_common::buffer::reader::Event;
use ftrace_common::graph::check_pattern;
use ftrace_common::kernel::functions::{self, TraceableFunction};
use ftrace_common::kernel::needs;
use ftrace_common::kernel::proc::CommCache;
use ftrace_common::kernel::tracefs::Tracefs;
use ftrace_common::lifecycle::instance::{Instance, InstanceOptions};
use ftrace_common::lifecycle::sweep;
use ftrace_common::sym::kallsyms::KernelSymbols;
use ftrace_common::{Error, Flow, Result};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::process::ExitCode;

pub fn main() -> ExitCode {
    app_cli::main("functrace", functrace)
}

ftrace_common::tool_command!(Args);

fn functrace(args: Args) -> Result<()> {
    check_pattern(&args.func)?;
    let tfs = Tracefs::open()?;
    needs::FUNCTRACE.require(&tfs)?;
    if let Some(t) = args.task.task() {
        t.require_exists()?;
    }
    let list = functions::FunctionList::load(&tfs)?;
    let g = Glob::new(&args.func)?;
    let funcs = list.require_matching(&args.func, "the pattern ", |n| g.matches(n))?;
    functions::refuse_huge_match(
        funcs.len(),
        funcs.len(),
        args.force,
        &attach_estimate(funcs.len()),
        "trace them",
        "",
    )?;
    let syms = KernelSymbols::load()?;
    sweep::sweep_dead(&tfs);

    // Setup: the instance, its filter and task, the function tracer.
    let mut inst = Instance::create_with(
        &tfs,
        "functrace",
        &InstanceOptions {
            buffer_kb: args.buffer.buffer_kb,
            ..InstanceOptions::default()
        },
    )?;
    let ip_offsets = arm(&mut inst, &funcs, &args)?;
    let mut sink = CallSink {
        ip_offsets,
        traced: funcs.iter().map(|f| f.name.clone()).collect(),
        syms,
        names: HashMap::new(),
        comms: CommCache::new(Some(tfs.path("saved_cmdlines"))),
        out: Output::new(),
        json: args.json.json,
        calls: 0,
        buf: String::new(),
    };
    if args.headers.headers && !args.json.json {
        sink.out.line(HEADER);
    }
    let mut reader = inst.reader()?;
    signals::check()?;
    inst.start()?;
    TracingLine::new(format!(
        "\"{}\" ({} function{})",
        args.func,
        funcs.len(),
        if funcs.len() == 1 { "" } else { "s" }
    ))
    .task(args.task.task())
    .duration(args.duration.duration)
    .print();
    let summary = stream(
        &mut reader,
        &mut sink,
        StreamOpts {
            duration: args.duration.duration,
            ordered: true,
            task: args.task.task(),
            ..StreamOpts::default()
        },
    )?;
    status::finish("functrace", &mut sink.out, &summary, "")?;
    eprintln!(
        "functrace: {} call{} traced",
        sink.calls,
        if sink.calls == 1 { "" } else { "s" }
    );
    Ok(())
}

/// The kernel's own header of the function tracer (without irq-info).
const HEADER: &str = "#           TASK-PID     CPU#     TIMESTAMP  FUNCTION";

/// About how long attaching and detaching `n` functions with the function
/// tracer can take on a slow machine (funccount's tracer figures).
fn attach_estimate(n: usize) -> String {
    let ms = 500 + 220 * n as u64 / 1000;
    format!("{:.0} s", (ms as f64 / 1000.0).ceil())
}

/// The function tracer in the instance: the filter, the task (or not
/// ourselves), stack traces and repeat folding off; the `function`
/// record's id and the offsets of ip and parent_ip.
fn arm(
    inst: &mut Instance,
    funcs: &[&TraceableFunction],
    args: &Args,
) -> Result<(u16, usize, usize)> {
    if !inst.has_tracer("function") || !inst.exists("set_ftrace_filter") {
        return Err(Error::unsupported(
            "this kernel cannot run the function tracer in an instance (it needs Linux 4.17 or later)",
        ));
    }
    functions::write_filter(
        &inst.path("set_ftrace_filter"),
        funcs,
        &signals::stop_requested,
    )?;
    match args.task.task() {
        Some(t) => inst.set_function_pids(t)?,
        // Our own reads of the buffer must not feed back.
        None => inst.exclude_self_from_functions()?,
    }
    for opt in ["func_stack_trace", "func-no-repeats"] {
        if inst.exists(format!("options/{opt}")) {
            inst.set_option(opt, false)?;
        }
    }
    let fmt = inst.event_format("ftrace", "function")?;
    let ids = (
        fmt.id,
        fmt.require("ip")?.offset,
        fmt.require("parent_ip")?.offset,
    );
    signals::check()?;
    inst.set_tracer("function")?;
    Ok(ids)
}

/// Function records to lines (or JSON objects).
struct CallSink {
    /// The `function` record's id, and its ip and parent_ip offsets.
    ip_offsets: (u16, usize, usize),
    /// The functions in the filter: a traced address is named by one of
    /// them when the symbol table has several names for it.
    traced: HashSet<String>,
    syms: KernelSymbols,
    /// Names by address, looked up once.
    names: HashMap<u64, String>,
    comms: CommCache,
    out: Output,
    json: bool,
    calls: u64,
    buf: String,
}

impl CallSink {
    /// The function at `addr`; for a traced one (`traced`), the name the
    /// filter has, where the symbol table has it under several.
    fn name(&mut self, addr: u64, traced: bool) -> String {
        let (syms, filter) = (&self.syms, &self.traced);
        self.names
            .entry(addr)
            .or_insert_with(|| match syms.lookup(addr) {
                Some(l) if traced && !filter.contains(l.function) => syms
                    .aliases(addr)
                    .into_iter()
                    .find(|a| filter.contains(*a))
                    .or_else(|| (filter.len() == 1).then(|| filter.iter().next().unwrap().as_str()))
                    .unwrap_or(l.function)
                    .to_string(),
                Some(l) => l.function.to_string(),
                None => format!("0x{addr:x}"),
            })
            .clone()
    }
}

fn read_u64(data: &[u8], off: usize) -> Option<u64> {
    let b = data.get(off..off.checked_add(8)?)?;
    Some(u64::from_ne_bytes(b.try_into().ok()?))
}

impl Sink for CallSink {
    fn event(&mut self, ev: &Event) -> Flow {
        let (id, ip_off, parent_off) = self.ip_offsets;
        if ev.id != id {
            return Flow::Continue;
        }
        let (Some(ip), Some(parent)) = (read_u64(ev.data, ip_off), read_u64(ev.data, parent_off))
        else {
            return Flow::Continue;
        };
        self.calls += 1;
        let func = self.name(ip, true);
        let parent = self.name(parent, false);
        let comm = self.comms.get(ev.pid).to_string();
        if self.json {
            return self.out.json(&json!({
                "ts": ev.ts, "cpu": ev.cpu, "pid": ev.pid, "comm": comm,
                "func": func, "parent": parent,
            }));
        }
        self.buf.clear();
        line(&mut self.buf, &comm, ev, &func, &parent);
        self.out.line(&self.buf)
    }

    fn lost(&mut self, cpu: u32, count: Option<u64>) -> Flow {
        self.out.lost_marker(cpu, count, self.json)
    }

    fn round_end(&mut self) -> Flow {
        self.out.flush()
    }
}

/// `            bash-1234    [001]  6075.461561: vfs_read <-ksys_read`, as
/// the kernel prints it (`%16s-%-7d [%03d] %5lu.%06lu: `).
fn line(buf: &mut String, comm: &str, ev: &Event, func: &str, parent: &str) {
    use std::fmt::Write;
    let _ = write!(
        buf,
        "{comm:>16}-{:<7} [{:03}] {:>5}.{:06}: {func} <-{parent}",
        ev.pid,
        ev.cpu,
        ev.ts / 1_000_000_000,
        ev.ts % 1_000_000_000 / 1000
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_as_the_kernel_prints_them() {
        let ev = Event {
            cpu: 1,
            ts: 6_075_461_561_999,
            id: 1,
            pid: 1234,
            data: &[],
        };
        let mut s = String::new();
        line(&mut s, "bash", &ev, "vfs_read", "ksys_read");
        assert_eq!(
            s,
            "            bash-1234    [001]  6075.461561: vfs_read <-ksys_read"
        );
        // The header's columns end where the line's do.
        assert_eq!(HEADER.find("-PID"), s.find("-1234"));
        assert_eq!(HEADER.find("CPU#"), s.find("001]").map(|i| i - 1));
        assert_eq!(HEADER.find("TIMESTAMP").map(|i| i + 9), s.find(':'));
    }

    #[test]
    fn short_records_are_skipped() {
        assert_eq!(read_u64(&[1, 2, 3], 0), None);
        assert_eq!(read_u64(&[0; 16], 9), None);
        assert_eq!(read_u64(&1u64.to_ne_bytes(), 0), Some(1));
        assert_eq!(read_u64(&[0; 8], usize::MAX - 2), None);
    }

    #[test]
    fn estimate_grows_with_the_count() {
        assert_eq!(attach_estimate(1000), "1 s");
        assert_eq!(attach_estimate(50_000), "12 s");
    }
}
