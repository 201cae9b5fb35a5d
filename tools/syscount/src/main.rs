//! syscount - count system calls, by process or by system call, with
//! latency and failures.
//!
//! USAGE: syscount [-chvxLm] [-t top] [-e ERRNO] [-i secs]
//!                 {-p PID|--tid TID|-d secs|command [args...]}
//!
//! Counts come from the `raw_syscalls:sys_enter`/`sys_exit` tracepoints in a
//! private ftrace instance. Where the kernel has hist triggers
//! (CONFIG_HIST_TRIGGERS) and only counts are wanted, the kernel counts in
//! a hash table and nothing goes through the trace buffer; otherwise
//! syscount reads the binary per-CPU buffers and counts in user space. Both
//! print the same thing. Latency (`-L`, `--hist`) always uses the buffer:
//! each call's time is its `sys_exit` time stamp minus its `sys_enter`.
//!
//! syscount's own system calls are never counted: its PID is in the
//! instance's `set_event_notrace_pid`, so the kernel never records them.
//!
//! A command given after the options is started by syscount and traced from
//! its first system call (its `execve`) until it exits, with its children;
//! syscount then exits with the command's exit status.
//!
//! REQUIREMENTS: root, tracefs (mounted by syscount if needed), the
//! raw_syscalls tracepoints (CONFIG_FTRACE_SYSCALLS). Hist triggers are
//! used where present.
//!
//! OVERHEAD: every system call of the traced tasks is recorded: the kernel
//! spends roughly 0.1-0.3 us per call on it. In the buffer, syscount reads
//! whole binary sub-buffers; at about 1 M calls/s it uses a fraction of a
//! core (see examples/syscount_example.txt and the README for measured
//! figures). With hist triggers syscount itself costs nearly nothing.

mod agg;
mod child;
mod count;
mod report;
mod tasks;

use agg::{Agg, By, IdMap, Names};
use child::{Child, Exit};
use clap::Parser;
use count::{Counter, Decoder, ErrFilter, KernelCount};
use ftrace_common::app::cli::{self, CommonArgs};
use ftrace_common::app::output::Output;
use ftrace_common::app::stream::{stream, StreamOpts};
use ftrace_common::kernel::syscalls::{self, errno, Table};
use ftrace_common::kernel::tracefs::Tracefs;
use ftrace_common::lifecycle::hist::{HistSpec, HistTrigger};
use ftrace_common::lifecycle::instance::{Instance, InstanceOptions};
use ftrace_common::Flow;
use ftrace_common::{kernel::caps, kernel::proc, lifecycle::sweep, Error, ErrorKind, Result};
use report::Report;
use std::collections::HashMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tasks::Tasks;

const EXAMPLES: &str = "\
Examples:
  syscount                      # count system calls by process name
  syscount -c                   # count by system call name
  syscount -c -d 5              # for 5 seconds
  syscount -cp 923              # by name, for PID 923
  syscount -c ls -l             # by name, for the command \"ls -l\"
  syscount -v -t 10             # by PID and name, top 10
  syscount -cL -m               # with total and average latency in ms
  syscount -cx                  # failed calls only
  syscount -c -e ENOENT         # calls that failed with ENOENT
  syscount -c -i 1 -d 10        # a summary each second, for 10 seconds
  syscount --hist read,nanosleep -p 923
                                # latency histograms of two calls
  syscount -l                   # list the system calls this table knows
  syscount -c --json -d 1       # JSON";

/// Count system calls, by process or by system call.
#[derive(Debug, Parser)]
#[command(
    name = "syscount",
    version,
    about = "Count system calls, by process or by system call, with latency and failures",
    long_about = "Count system calls, by process name (default), process (-v) or system call \
name (-c), from ftrace's raw_syscalls tracepoints in a private instance. Counts are exact: \
every call is counted once; lost events are reported. Where the kernel has hist triggers \
and only counts are wanted, the kernel does the counting (--count-in). syscount's own system \
calls are never counted (its PID is in the instance's set_event_notrace_pid). A command \
after the options is run and traced from its first system call (its execve) until it \
exits, with its children; syscount then exits with the command's status. Output is sorted \
by count (by time with -L), largest last, as perf-tools' syscount sorts.

Fields: SYSCALL: the system call's name, from a table generated from Linux 6.12's syscall \
tables; a number the table does not know prints as [unknown: N] (syscount -l lists what it \
knows, and what this kernel has beyond it). A 32-bit program's calls carry its own ABI's numbers (the \
kernel's events do not tell them apart): syscount says so when it sees one. COMM: the task's name (for a task that exited, \
its last name; a task that ran exec is named after the new program). PID: the process. \
COUNT: calls made (taken at their entry); with -L, -x or -e calls completed (taken at \
their return), failed calls being those that return -4095..-1. TIME and AVG (-L): total and \
average time from entry to return, in us (ms with -m), including time asleep.

Requirements: root, tracefs (mounted if needed), raw_syscalls tracepoints \
(CONFIG_FTRACE_SYSCALLS); hist triggers (CONFIG_HIST_TRIGGERS) where present.

Overhead: every system call of the traced tasks is recorded; on this project's 2-CPU VM a \
getppid loop ran 1.4-1.9x slower with raw_syscalls:sys_enter recorded at all (the \
kernel's own cost, about 0.1 us a call) and about 2.2x slower while syscount read the \
buffer, syscount using about 0.05 of a core per million calls a second, losing none \
(bench-syscount). Counting in the kernel (hist triggers) costs syscount nearly nothing \
while it runs (a fifth to a third of its CPU with the buffer, in the 6.1 and 6.12 test \
guests) and cannot fall behind, but each traced call pays a hash-table update instead of \
a buffer write: in those (emulated) guests the loop ran at 0.8 to 1.5 times its rate with \
the buffer read. --count-in buffer chooses the buffer.",
    override_usage = "syscount [-chvxLm] [-t top] [-e ERRNO] [-i secs] {-p PID|--tid TID|-d secs|command [args...]}",
    after_help = EXAMPLES
)]
struct Args {
    /// Count by system call name (SYSCALL COUNT) instead of by process name.
    #[arg(short = 'c', long = "syscalls")]
    syscalls: bool,
    /// Show process IDs (PID COMM COUNT; with -c: PID COMM SYSCALL COUNT).
    #[arg(short = 'v', long = "verbose")]
    verbose: bool,
    /// Show only the top NUM rows.
    #[arg(short = 't', long = "top", value_name = "NUM", value_parser = parse_top)]
    top: Option<usize>,
    /// Trace this process only (all its threads, also ones started later;
    /// not its child processes). The run ends when the process does.
    #[arg(short = 'p', long = "pid", value_name = "PID", value_parser = cli::parse_pid)]
    pid: Option<u32>,
    /// Trace this thread only.
    #[arg(long = "tid", value_name = "TID", value_parser = cli::parse_pid, conflicts_with = "pid")]
    tid: Option<u32>,
    /// Trace for this many seconds.
    #[arg(short = 'd', long = "duration", value_name = "SECS", value_parser = cli::parse_secs)]
    duration: Option<Duration>,
    /// Print a summary every SECS seconds (counts start again each time).
    #[arg(short = 'i', long = "interval", value_name = "SECS", value_parser = cli::parse_secs)]
    interval: Option<Duration>,
    /// Show latency: total and average time per row, in microseconds
    /// (counts are then of completed calls, taken at their return).
    #[arg(short = 'L', long = "latency")]
    latency: bool,
    /// Show times in milliseconds instead of microseconds.
    #[arg(short = 'm', long = "milliseconds")]
    milliseconds: bool,
    /// Count failed calls only (those that return an error).
    #[arg(short = 'x', long = "failures")]
    failures: bool,
    /// Count calls that failed with this error only: a name (EBADF) or a
    /// number (9).
    #[arg(short = 'e', long = "errno", value_name = "ERRNO")]
    errno: Option<String>,
    /// Print a log2 histogram of the latency of these system calls
    /// (comma-separated names; implies -L).
    #[arg(long = "hist", value_name = "SYSCALLS", value_delimiter = ',')]
    hist: Vec<String>,
    /// List the system calls syscount can name and exit.
    #[arg(short = 'l', long = "list")]
    list: bool,
    /// Print each summary as one JSON line.
    #[arg(short = 'j', long = "json")]
    json: bool,
    /// Where to count: in the kernel with a hist trigger, from the trace
    /// buffer in user space, or auto (the kernel where it can).
    #[arg(
        long = "count-in",
        value_name = "WHERE",
        value_enum,
        default_value = "auto"
    )]
    count_in: CountIn,
    #[command(flatten)]
    common: CommonArgs,
    /// A command to run and trace, with its arguments.
    #[arg(
        value_name = "COMMAND",
        trailing_var_arg = true,
        allow_hyphen_values = true,
        conflicts_with_all = ["pid", "tid"]
    )]
    command: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum CountIn {
    /// The kernel where it has hist triggers and no latency is wanted.
    Auto,
    /// The kernel (hist triggers).
    Kernel,
    /// The trace buffer, counted by syscount.
    Buffer,
}

fn parse_top(s: &str) -> std::result::Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("'{s}' is not a positive number of rows")),
    }
}

fn main() -> ExitCode {
    let args = match cli::parse_or_exit::<Args>() {
        Ok(a) => a,
        Err(code) => return code,
    };
    let mut command_status = None;
    let code = cli::run("syscount", || {
        command_status = syscount(args)?;
        Ok(())
    });
    // The body succeeded: a traced command's own status is ours.
    match command_status {
        Some(s) => ExitCode::from(s),
        None => code,
    }
}

/// Everything decided from the options before touching the kernel.
struct Plan {
    by: By,
    latency: bool,
    err: ErrFilter,
    hist_nrs: Vec<(i64, String)>,
    unit_ns: u64,
    table: Table,
    command: Option<(std::path::PathBuf, Vec<String>)>,
}

fn plan(args: &Args) -> Result<Plan> {
    let table = Table::native().unwrap_or_else(|| Table::empty(std::env::consts::ARCH));
    let latency = args.latency || !args.hist.is_empty();
    if args.milliseconds && !latency {
        return Err(Error::usage("-m/--milliseconds needs -L or --hist"));
    }
    let errno = args
        .errno
        .as_deref()
        .map(errno::parse)
        .transpose()
        .map_err(Error::usage)?;
    let err = ErrFilter {
        failed: args.failures || errno.is_some(),
        errno,
    };
    let mut hist_nrs = Vec::new();
    for name in &args.hist {
        let name = name.trim();
        let nr = match name.parse::<i64>() {
            Ok(n) => n,
            Err(_) => match table.number(name) {
                Some(n) => n as i64,
                None => {
                    let near = table.suggestions(name);
                    return Err(Error::usage(format!(
                        "no system call '{name}' in the {} table{} (syscount -l lists them)",
                        table.arch,
                        ftrace_common::base::glob::hint(&near)
                    )));
                }
            },
        };
        if !hist_nrs.iter().any(|(n, _)| *n == nr) {
            hist_nrs.push((nr, table.display(nr).into_owned()));
        }
    }
    let by = match (args.syscalls, args.verbose) {
        (true, false) => By::Syscall,
        (true, true) => By::PidSyscall,
        (false, false) => By::Comm,
        (false, true) => By::Pid,
    };
    if latency && args.count_in == CountIn::Kernel {
        return Err(Error::usage(
            "--count-in kernel cannot measure latency (-L, --hist): it needs the trace buffer",
        ));
    }
    let command = match args.command.first() {
        Some(prog) => Some((child::resolve(prog)?, args.command.clone())),
        None => None,
    };
    Ok(Plan {
        by,
        latency,
        err,
        hist_nrs,
        unit_ns: if args.milliseconds { 1_000_000 } else { 1_000 },
        table,
        command,
    })
}

fn syscount(args: Args) -> Result<Option<u8>> {
    // Options.
    let plan = plan(&args)?;
    if args.list {
        list(&plan.table)?;
        return Ok(None);
    }

    // Checks.
    let tfs = Tracefs::open()?;
    caps::require(&tfs, caps::Feature::RawSyscalls)?;
    caps::require(&tfs, caps::Feature::Instances)?;
    if let Some(p) = args.pid {
        proc::require_exists(p)?;
        if let Some(tgid) = proc::tgid(p) {
            if tgid != p {
                return Err(Error::usage(format!(
                    "{p} is a thread of process {tgid}: use -p {tgid}, or --tid {p} for that thread alone"
                )));
            }
        }
    }
    if let Some(t) = args.tid {
        proc::require_exists(t)?;
    }
    let hist_ok = caps::check(&tfs, caps::Feature::HistTriggers);
    let in_kernel = match args.count_in {
        CountIn::Buffer => false,
        CountIn::Auto => hist_ok.is_yes() && !plan.latency,
        CountIn::Kernel => match hist_ok {
            caps::Support::Yes => true,
            caps::Support::No(why) => return Err(Error::unsupported(why)),
        },
    };
    sweep::sweep_dead(&tfs);

    // The command's process, forked before the instance exists so that it
    // cannot inherit our notrace entry (see child.rs).
    let mut child = match &plan.command {
        Some((path, argv)) => Some(Child::spawn(path, argv)?),
        None => None,
    };
    // A 32-bit program's calls are numbered by its own ABI: say so before
    // printing names from the 64-bit table (also checked per summary for
    // every process seen).
    let is_32 = match (&plan.command, args.pid.or(args.tid)) {
        (Some((path, _)), _) => tasks::elf_is_32bit(path),
        (None, Some(p)) => tasks::is_32bit(p as i32),
        _ => None,
    };
    if is_32 == Some(true) && cfg!(target_pointer_width = "64") {
        eprintln!(
            "syscount: this is a 32-bit program: its system calls carry the 32-bit ABI's numbers, \
             counted here under the {} names of those numbers",
            plan.table.arch
        );
    }

    // Setup, in a private instance that is removed when `inst` drops.
    // Counting needs no common clock (latency does), and in the kernel no
    // big buffer (only task events go there): each skipped step saves an
    // RCU wait at start.
    let mut inst = Instance::create_with(
        &tfs,
        "syscount",
        &InstanceOptions {
            buffer_kb: args
                .common
                .buffer_kb
                .or((!in_kernel).then(|| default_buffer_kb(proc::online_cpus()))),
            kernel_buffer: in_kernel,
            keep_clock: !plan.latency,
            ..InstanceOptions::default()
        },
    )?;
    let mut tasks = Tasks::new(Some(tfs.path("saved_cmdlines")));
    if let Some(pid) = args.pid {
        let threads = proc::threads(pid)?;
        tasks.know_threads(pid as i32, &threads);
        inst.set_event_pids(&threads, true)?;
        // Threads started while the list was written.
        let again = proc::threads(pid).unwrap_or_default();
        tasks.know_threads(pid as i32, &again);
        inst.add_event_pids(&again)?;
    } else if let Some(tid) = args.tid {
        inst.set_event_pids(&[tid], false)?;
    } else if let Some(c) = &child {
        inst.set_event_pids(&[c.pid()], true)?;
    }

    let need_tasks = plan.by != By::Syscall || args.pid.is_some();
    let count_at_enter = !plan.latency && !plan.err.active();
    let (dec, trigger) = arm(&mut inst, &plan, in_kernel, need_tasks, count_at_enter)?;
    let mut reader = inst.reader()?;
    inst.start()?;
    if let Some(t) = &trigger {
        t.cont()?;
    }
    if plan.by == By::Pid || plan.by == By::PidSyscall {
        // After the start: tasks created from now on come as events.
        tasks.snapshot();
    }
    eprintln!("{}", tracing_line(&args, &plan, child.as_ref(), in_kernel));
    if let Some(c) = child.as_mut() {
        c.release()?;
    }

    // Stream.
    let hist_nrs: Vec<i64> = plan.hist_nrs.iter().map(|(n, _)| *n).collect();
    let by_task = need_tasks;
    let by_nr = matches!(plan.by, By::Syscall | By::PidSyscall);
    let started = Instant::now();
    let mut counter = Counter {
        dec,
        count_at_enter,
        latency: plan.latency,
        err: plan.err,
        pending: IdMap::default(),
        agg: Agg::new(by_task, by_nr, &hist_nrs, plan.unit_ns),
        tasks,
        kernel: trigger.as_ref().map(|t| KernelCount {
            trig: t,
            prev: HashMap::new(),
            dropped: 0,
        }),
        names: Names::new(plan.table),
        report: Report {
            out: Output::new(),
            by: plan.by,
            latency: plan.latency,
            unit_ns: plan.unit_ns,
            top: args.top,
            json: args.json,
            interval: args.interval.is_some(),
            only_process: args.pid.map(|p| p as i32),
            counted_in: if in_kernel { "kernel" } else { "buffer" },
            hist_names: plan.hist_nrs.clone(),
            unknown_seen: false,
        },
        deadline: args.duration.map(|d| started + d),
        interval: args.interval,
        error: None,
        warned: Vec::new(),
        lost_flagged: 0,
        seen: IdMap::default(),
        last_seen: 0,
        checked_32bit: Default::default(),
    };
    // Already said above.
    if let Some(p) = child.as_ref().map(|c| c.pid()).or(args.pid).or(args.tid) {
        counter.checked_32bit.insert(p as i32);
    }
    let mut last_check = Instant::now();
    let mut gone = false;
    let mut stop_when = || {
        if let Some(c) = child.as_mut() {
            return c.try_wait().is_some();
        }
        let target = args.pid.or(args.tid);
        if let Some(p) = target {
            if last_check.elapsed() >= Duration::from_millis(100) {
                last_check = Instant::now();
                gone = !alive(p);
            }
            return gone;
        }
        false
    };
    let summary = stream(
        &mut reader,
        &mut counter,
        StreamOpts {
            duration: args.duration,
            ordered: plan.latency,
            tick: args.interval,
            stop_when: Some(&mut stop_when),
            task: None,
        },
    )?;

    // Summary.
    if let Some(e) = counter.error.take() {
        return Err(e);
    }
    if let Some(t) = &trigger {
        t.pause()?;
    }
    counter.poll_kernel()?;
    counter.print_summary();
    counter.report.out.flush();
    if let Some(e) = counter.report.out.take_error() {
        return Err(Error::new(ErrorKind::Io, format!("writing output: {e}")));
    }
    if let Some(w) = summary.lost_warning() {
        eprintln!("syscount: {w}");
    }
    if let Some(k) = &counter.kernel {
        if k.dropped > 0 {
            eprintln!(
                "syscount: LOST {} events: the kernel's hist table was full; \
                 use --count-in buffer",
                k.dropped
            );
        }
    }
    if counter.report.unknown_seen {
        let check = syscalls::cross_check(&plan.table, &syscalls::kernel_syscall_events(&tfs));
        if let Some(note) = check.note(&plan.table) {
            eprintln!("syscount: {note}");
        }
    }
    // Close the buffers and remove the trigger before the instance goes.
    drop(counter);
    drop(reader);
    drop(trigger);
    drop(inst);

    // The command's status.
    let Some(mut c) = child else {
        return Ok(None);
    };
    let exit = match c.try_wait() {
        Some(e) => Some(e),
        None => c.wait_for(Duration::from_millis(500)),
    };
    match exit {
        Some(Exit::Code(0)) => Ok(Some(0)),
        Some(e @ Exit::Code(n)) => {
            eprintln!("syscount: {} exited with status {n}", c.name());
            Ok(Some(e.shell_status()))
        }
        Some(e @ Exit::Signal(s)) => {
            eprintln!("syscount: {} was killed by signal {s}", c.name());
            Ok(Some(e.shell_status()))
        }
        None => {
            eprintln!(
                "syscount: {} (PID {}) is still running; it is no longer traced",
                c.name(),
                c.pid()
            );
            Ok(None)
        }
    }
}

/// Sets up the counting in the instance: a hist trigger (created paused)
/// or the raw_syscalls events, and the task events where tasks are named.
fn arm(
    inst: &mut Instance,
    plan: &Plan,
    in_kernel: bool,
    need_tasks: bool,
    count_at_enter: bool,
) -> Result<(Decoder, Option<HistTrigger>)> {
    let enter_fmt = inst.event_format("raw_syscalls", "sys_enter")?;
    let exit_fmt = inst.event_format("raw_syscalls", "sys_exit")?;
    let mut dec = Decoder::new(&enter_fmt, &exit_fmt)?;

    let mut trigger = None;
    if in_kernel {
        let mut keys = Vec::new();
        if need_tasks {
            keys.push("common_pid");
        }
        if plan.by == By::Syscall || plan.by == By::PidSyscall {
            keys.push("id.syscall");
        }
        let size = match keys.len() {
            2 => 16384,
            _ if need_tasks => 8192,
            _ => 2048,
        };
        let mut spec = HistSpec::new(&keys).size(size);
        if let Some(f) = plan.err.kernel_filter() {
            spec = spec.filter(f);
        }
        let event = if count_at_enter {
            "sys_enter"
        } else {
            "sys_exit"
        };
        trigger = Some(HistTrigger::add(inst, "raw_syscalls", event, spec, true)?);
    } else {
        if count_at_enter || plan.latency {
            inst.enable_event("raw_syscalls", "sys_enter")?;
            dec.want_enter = true;
        }
        if !count_at_enter {
            if let Some(f) = plan.err.kernel_filter() {
                inst.set_filter("raw_syscalls", "sys_exit", &f)?;
            }
            inst.enable_event("raw_syscalls", "sys_exit")?;
            dec.want_exit = true;
        }
    }
    if need_tasks {
        dec.meta(inst)?;
    }
    Ok((dec, trigger))
}

/// The per-CPU buffer when counting from the buffer: a getppid loop makes
/// about 300 MB/s of raw_syscalls records on one CPU, so 32 MiB is 0.1 s
/// for the reader to be late by (a busy machine's scheduler can be), with
/// at most 256 MiB in all.
fn default_buffer_kb(ncpus: usize) -> u32 {
    (262_144 / ncpus.max(1) as u32).clamp(1024, 32_768)
}

/// Whether a process or thread still runs (a zombie does not).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => match s
            .rfind(')')
            .and_then(|i| s[i + 1..].split_whitespace().next())
        {
            Some(state) => state != "Z" && state != "X",
            None => true,
        },
        Err(_) => false,
    }
}

fn tracing_line(args: &Args, plan: &Plan, child: Option<&Child>, in_kernel: bool) -> String {
    let mut s = String::from("Tracing ");
    s.push_str(match (plan.err.errno, plan.err.failed) {
        (Some(_), _) => "failed system calls",
        (None, true) => "failed system calls",
        _ => "system calls",
    });
    if let Some(e) = plan.err.errno {
        s.push_str(&format!(" ({})", errno::display(e)));
    }
    if let Some(p) = args.pid {
        s.push_str(&format!(" of PID {p}"));
    } else if let Some(t) = args.tid {
        s.push_str(&format!(" of TID {t}"));
    } else if child.is_some() {
        let words: Vec<String> = args.command.iter().map(|w| shell_word(w)).collect();
        s.push_str(&format!(" while running: {}", words.join(" ")));
    }
    if let Some(d) = args.duration {
        s.push_str(&format!(" for {} seconds", d.as_secs_f64()));
    }
    s.push_str(if in_kernel {
        " (counted in the kernel)."
    } else {
        " (from the trace buffer)."
    });
    if let Some(t) = args.top {
        s.push_str(&format!(" Top {t} only."));
    }
    if child.is_none() {
        s.push_str(" Ctrl-C to end.");
    }
    s
}

/// A word as a shell would need it quoted.
fn shell_word(w: &str) -> String {
    let plain = !w.is_empty()
        && w.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+%@".contains(c));
    if plain {
        w.to_string()
    } else {
        format!("'{}'", w.replace('\'', "'\\''"))
    }
}

fn list(table: &Table) -> Result<()> {
    let mut out = Output::new();
    out.line(&format!("{:>4} SYSCALL", "NR"));
    for (nr, name, _) in table.entries() {
        if out.line(&format!("{nr:>4} {name}")) == Flow::Stop {
            return Ok(());
        }
    }
    // What the running kernel has beyond the table, where we can see it.
    if let Ok(tfs) = Tracefs::open() {
        let check = syscalls::cross_check(table, &syscalls::kernel_syscall_events(&tfs));
        for name in &check.kernel_only {
            out.line(&format!(
                "{:>4} {name} (this kernel has it; the {} table from Linux {} has no number for it)",
                "?", table.arch, table.kernel
            ));
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

    #[test]
    fn perf_tools_forms_parse() {
        let a = Args::try_parse_from(["syscount", "-cp", "923"]).unwrap();
        assert!(a.syscalls && a.pid == Some(923));
        let a = Args::try_parse_from(["syscount", "-c", "ls", "-l", "/tmp"]).unwrap();
        assert!(a.syscalls);
        assert_eq!(a.command, vec!["ls", "-l", "/tmp"]);
        let a = Args::try_parse_from(["syscount", "-cv", "-t", "5", "-d", "2"]).unwrap();
        assert!(a.verbose && a.top == Some(5));
        assert!(Args::try_parse_from(["syscount", "-t", "0"]).is_err());
        assert!(Args::try_parse_from(["syscount", "-p", "1", "ls"]).is_err());
        let a = Args::try_parse_from(["syscount", "--hist", "read,nanosleep", "-p", "1"]).unwrap();
        assert_eq!(a.hist, vec!["read", "nanosleep"]);
    }

    #[test]
    fn command_words_are_quoted_like_a_shell_would() {
        assert_eq!(shell_word("ls"), "ls");
        assert_eq!(shell_word("/bin/x=1"), "/bin/x=1");
        assert_eq!(shell_word("a b"), "'a b'");
        assert_eq!(shell_word("it's"), "'it'\\''s'");
        assert_eq!(shell_word(""), "''");
    }

    #[test]
    fn error_filters() {
        let f = ErrFilter {
            failed: true,
            errno: None,
        };
        assert!(f.keeps(3, -9) && f.keeps(3, -4095));
        assert!(!f.keeps(3, 0) && !f.keeps(3, -4096) && !f.keeps(3, 3) && !f.keeps(-1, -4));
        assert_eq!(
            f.kernel_filter().unwrap(),
            "ret < 0 && ret >= -4095 && id != -1"
        );
        let e = ErrFilter {
            failed: true,
            errno: Some(9),
        };
        assert!(e.keeps(3, -9) && !e.keeps(3, -2) && !e.keeps(-1, -9));
        assert_eq!(e.kernel_filter().unwrap(), "ret == -9 && id != -1");
        assert!(
            ErrFilter::default().keeps(-1, 5) && ErrFilter::default().kernel_filter().is_none()
        );
    }

    #[test]
    fn plan_refuses_bad_input_with_exit_2() {
        let bad = [
            vec!["syscount", "-e", "EBDF"],
            vec!["syscount", "-m"],
            vec!["syscount", "--hist", "nosuchcall"],
            vec!["syscount", "no-such-command-xyz"],
            vec!["syscount", "-L", "--count-in", "kernel"],
        ];
        for argv in bad {
            let a = Args::try_parse_from(&argv).unwrap();
            let e = plan(&a)
                .err()
                .unwrap_or_else(|| panic!("{argv:?} accepted"));
            assert_eq!(e.exit_code(), 2, "{argv:?}: {e}");
        }
        let a = Args::try_parse_from(["syscount", "-e", "EBDF"]).unwrap();
        let msg = plan(&a).err().unwrap().to_string();
        assert!(msg.contains("EBADF"), "{msg}");
    }
}
