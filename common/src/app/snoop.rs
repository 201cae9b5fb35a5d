//! The skeleton of the snoops (killsnoop, opensnoop, execsnoop): system
//! calls traced by their own `sys_enter_`/`sys_exit_` tracepoints in a
//! private instance, each call's entry paired with its return per thread
//! from the binary buffer, and shown when it returns. What every snoop
//! takes (`-p`/`-L`, `-d`, `-b`, `-j`, `-t`, `-x`, `-n`), which of its calls
//! the kernel has, the instance, the pairing, the registers a kprobe on a
//! call's wrapper finds the arguments in, and the run itself are here; a
//! snoop keeps its own columns.

use crate::app::opts::{BufferOpt, DurationOpt, JsonOpt, TaskOpts};
use crate::app::output::Output;
use crate::app::printer::{follow_execs, Execs};
use crate::app::stream::{self, Sink, StreamOpts};
use crate::app::{signals, status};
use crate::base::glob::NameMatch;
use crate::buffer::format::{EventFormat, Field};
use crate::buffer::reader::Event;
use crate::kernel::proc::CommCache;
use crate::kernel::tracefs::Tracefs;
use crate::lifecycle::instance::{Instance, InstanceOptions};
use crate::{Error, ErrorKind, Flow, Result};
use std::collections::HashMap;

/// What every snoop takes.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SnoopOpts {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub task: TaskOpts,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub duration: DurationOpt,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub buffer: BufferOpt,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub json: JsonOpt,
    /// TIMEs: when each call was made, in seconds of CLOCK_MONOTONIC (as
    /// perf-tools prints them).
    #[arg(short = 't', long = "timestamps")]
    pub timestamps: bool,
    /// Only calls that failed.
    #[arg(short = 'x', long = "failed")]
    pub failed: bool,
    /// Only calls by processes whose name contains NAME (or matches it, if
    /// NAME is a glob).
    #[arg(short = 'n', long = "name", value_name = "NAME")]
    pub name: Option<String>,
}

impl SnoopOpts {
    /// The `-n` filter, checked.
    pub fn name_match(&self) -> Result<Option<NameMatch>> {
        self.name.as_deref().map(NameMatch::new).transpose()
    }
}

/// Where a system call's arguments are at the entry of its wrapper
/// (`__x64_sys_openat(const struct pt_regs *regs)`): the register that
/// holds `regs`, and the offset in `struct pt_regs` of each argument.
#[derive(Debug, Clone, Copy)]
pub struct SyscallRegs {
    prefix: &'static str,
    regs: &'static str,
    args: [u32; 5],
}

impl SyscallRegs {
    /// This architecture's, if known.
    pub const ARCH: Option<SyscallRegs> = if cfg!(target_arch = "x86_64") {
        // di, si, dx, r10, r8 in struct pt_regs.
        Some(SyscallRegs {
            prefix: "__x64_sys_",
            regs: "%di",
            args: [112, 104, 96, 56, 72],
        })
    } else if cfg!(target_arch = "aarch64") {
        Some(SyscallRegs {
            prefix: "__arm64_sys_",
            regs: "%x0",
            args: [0, 8, 16, 24, 32],
        })
    } else {
        None
    };

    /// The wrapper of system call `call` (`__x64_sys_openat`).
    pub fn function(&self, call: &str) -> String {
        format!("{}{call}", self.prefix)
    }

    /// Where argument `n` (from 0) of the call is: a fetch argument
    /// reading it from the saved registers (`+112(%di)`).
    pub fn arg(&self, n: usize) -> String {
        format!("+{}({})", self.args[n], self.regs)
    }
}

/// The calls of `all` this kernel has tracepoints for; an error naming
/// `what` if none.
pub fn available(tfs: &Tracefs, all: &[&'static str], what: &str) -> Result<Vec<&'static str>> {
    let calls: Vec<&'static str> = all
        .iter()
        .copied()
        .filter(|c| tfs.exists(format!("events/syscalls/sys_enter_{c}")))
        .collect();
    if calls.is_empty() {
        return Err(Error::new(
            ErrorKind::Unsupported,
            format!(
                "this kernel has no tracepoints for {what} (events/syscalls/sys_enter_{} is missing)",
                all.first().copied().unwrap_or_default()
            ),
        ));
    }
    Ok(calls)
}

/// The run's private instance, limited to the task of `-p`/`-L`.
pub fn instance(tfs: &Tracefs, tool: &str, opts: &SnoopOpts) -> Result<Instance> {
    let mut inst = Instance::create_with(
        tfs,
        tool,
        &InstanceOptions {
            buffer_kb: opts.buffer.buffer_kb,
            ..InstanceOptions::default()
        },
    )?;
    if let Some(t) = opts.task.task() {
        inst.follow(t, false)?;
    }
    Ok(inst)
}

/// What an event of a traced call is to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Its `sys_enter_` tracepoint.
    Enter,
    /// Its `sys_exit_` tracepoint.
    Exit,
    /// Another event the snoop made for it (a kprobe copying its strings).
    Probe,
}

/// The traced calls' events: their ids and each call's `ret`.
pub struct Syscalls {
    /// The calls, as their tracepoints name them.
    pub names: Vec<&'static str>,
    ids: HashMap<u16, (usize, Role)>,
    ret: Vec<Field>,
}

impl Syscalls {
    /// Reads the formats of each call's events (and probe, `(system,
    /// event)`, if any) and hands them to `each` (the call's index, its
    /// name, its entry's, return's and probe's formats); then enables
    /// them, entry before probe before return.
    pub fn setup(
        inst: &mut Instance,
        calls: &[&'static str],
        probes: &[Option<(String, String)>],
        mut each: impl FnMut(
            usize,
            &'static str,
            &EventFormat,
            &EventFormat,
            Option<&EventFormat>,
        ) -> Result<()>,
    ) -> Result<Syscalls> {
        let mut ids = HashMap::new();
        let mut ret = Vec::new();
        for (i, name) in calls.iter().enumerate() {
            let e = inst.event_format("syscalls", &format!("sys_enter_{name}"))?;
            let x = inst.event_format("syscalls", &format!("sys_exit_{name}"))?;
            let p = match probes.get(i).and_then(Option::as_ref) {
                Some((s, n)) => Some(inst.event_format(s, n)?),
                None => None,
            };
            each(i, name, &e, &x, p.as_ref())?;
            ret.push(x.require("ret")?.clone());
            ids.insert(e.id, (i, Role::Enter));
            ids.insert(x.id, (i, Role::Exit));
            if let Some(p) = &p {
                ids.insert(p.id, (i, Role::Probe));
            }
        }
        for (i, name) in calls.iter().enumerate() {
            inst.enable_event("syscalls", &format!("sys_enter_{name}"))?;
            if let Some((s, n)) = probes.get(i).and_then(Option::as_ref) {
                inst.enable_event(s, n)?;
            }
            inst.enable_event("syscalls", &format!("sys_exit_{name}"))?;
            signals::check()?;
        }
        Ok(Syscalls {
            names: calls.to_vec(),
            ids,
            ret,
        })
    }

    /// Which call `ev` belongs to, and as what.
    pub fn role(&self, ev: &Event) -> Option<(usize, Role)> {
        self.ids.get(&ev.id).copied()
    }

    /// What call `i` returned, from its `sys_exit_` event.
    pub fn ret(&self, i: usize, ev: &Event) -> i64 {
        self.ret[i].i64(ev.data).unwrap_or(0)
    }
}

/// A call between its entry and its return.
pub struct Open<T> {
    /// The call's index in [`Syscalls::names`].
    pub call: usize,
    /// When it was entered.
    pub ts: u64,
    /// What the snoop keeps of it.
    pub data: T,
}

/// The calls in progress, one per thread.
pub struct Pending<T> {
    open: HashMap<i32, Open<T>>,
}

impl<T> Default for Pending<T> {
    fn default() -> Self {
        Pending {
            open: HashMap::new(),
        }
    }
}

impl<T> Pending<T> {
    /// Call `call` entered by `ev`'s thread.
    pub fn enter(&mut self, ev: &Event, call: usize, data: T) {
        self.open.insert(
            ev.pid,
            Open {
                call,
                ts: ev.ts,
                data,
            },
        );
    }

    /// Thread `tid`'s call in progress, if it is `call`.
    pub fn get_mut(&mut self, tid: i32, call: usize) -> Option<&mut Open<T>> {
        self.open.get_mut(&tid).filter(|o| o.call == call)
    }

    /// Thread `tid`'s call in progress, whatever it is.
    pub fn any_mut(&mut self, tid: i32) -> Option<&mut Open<T>> {
        self.open.get_mut(&tid)
    }

    /// The call `ev`'s thread returns from, if it was `call`.
    pub fn exit(&mut self, ev: &Event, call: usize) -> Option<Open<T>> {
        self.open.remove(&ev.pid).filter(|o| o.call == call)
    }

    /// A call in progress now belongs to another thread (a thread that
    /// exec'd takes its thread group leader's PID).
    pub fn moved(&mut self, from: i32, to: i32) {
        if from != to {
            if let Some(o) = self.open.remove(&from) {
                self.open.insert(to, o);
            }
        }
    }

    /// Forgets every call in progress: an entry whose return was lost must
    /// not pair with a later one.
    pub fn clear(&mut self) {
        self.open.clear();
    }
}

/// A snoop: what it does with its calls' entries and returns. The run
/// pairs them per thread and hands each finished call to
/// [`SnoopSink::show`]; a lost event forgets every call in progress.
pub trait SnoopSink {
    /// What the snoop keeps of a call between its entry and its return.
    type Call;
    /// The calls' events.
    fn syscalls(&self) -> &Syscalls;
    /// The calls in progress.
    fn pending(&mut self) -> &mut Pending<Self::Call>;
    /// An event that is not one of the calls' (an exec, a fork): true when
    /// the snoop took it.
    fn other(&mut self, _ev: &Event) -> bool {
        false
    }
    /// Call `call` entered by `ev`'s thread.
    fn enter(&mut self, call: usize, ev: &Event);
    /// The kprobe event of call `call` (what the kernel copied).
    fn probe(&mut self, _call: usize, _ev: &Event) {}
    /// A call returned `ret` in thread `tid`: shows it.
    fn show(&mut self, tid: i32, call: Open<Self::Call>, ret: i64) -> Flow;
    /// Prints the column headers (none for JSON).
    fn header(&mut self) -> Flow;
    /// Its output.
    fn out(&mut self) -> &mut Output;
}

/// A snoop as the stream's sink.
struct SnoopRun<'a, S>(&'a mut S);

impl<S: SnoopSink> Sink for SnoopRun<'_, S> {
    fn event(&mut self, ev: &Event) -> Flow {
        let s = &mut *self.0;
        if s.other(ev) {
            return Flow::Continue;
        }
        match s.syscalls().role(ev) {
            Some((i, Role::Enter)) => s.enter(i, ev),
            Some((i, Role::Probe)) => s.probe(i, ev),
            Some((i, Role::Exit)) => {
                let ret = s.syscalls().ret(i, ev);
                if let Some(o) = s.pending().exit(ev, i) {
                    return s.show(ev.pid, o, ret);
                }
            }
            None => {}
        }
        Flow::Continue
    }

    fn lost(&mut self, _cpu: u32, _count: Option<u64>) -> Flow {
        self.0.pending().clear();
        Flow::Continue
    }

    fn round_end(&mut self) -> Flow {
        self.0.out().flush()
    }
}

/// The names of tasks, kept right across execs: the run's exec events
/// (`sched:sched_process_exec`) rename them, in time order.
pub struct Names {
    /// The exec events, where the kernel has them.
    pub execs: Option<Execs>,
    /// Names by PID.
    pub comms: CommCache,
}

impl Names {
    /// Follows the execs in `inst`.
    pub fn new(tfs: &Tracefs, inst: &mut Instance) -> Names {
        Names {
            execs: follow_execs(inst),
            comms: CommCache::new(Some(tfs.path("saved_cmdlines"))),
        }
    }

    /// If `ev` is an exec, renames its task and says so.
    pub fn exec(&mut self, ev: &Event) -> bool {
        self.execs
            .as_ref()
            .is_some_and(|x| x.rename(ev, &mut self.comms))
    }

    /// The name of `tid` now.
    pub fn get(&mut self, tid: i32) -> String {
        self.comms.get(tid).to_string()
    }
}

/// The run: starts tracing, says so (`line`), prints the headers, streams
/// until the end, and reports what was lost.
pub fn trace<S: SnoopSink>(
    tool: &str,
    inst: &Instance,
    sink: &mut S,
    opts: &SnoopOpts,
    line: status::TracingLine,
) -> Result<()> {
    let mut reader = inst.reader()?;
    signals::check()?;
    inst.start()?;
    line.task(opts.task.task())
        .duration(opts.duration.duration)
        .print();
    sink.header();
    let summary = stream::run(
        Some(&mut reader),
        &mut SnoopRun(&mut *sink),
        StreamOpts {
            duration: opts.duration.duration,
            ordered: true,
            task: opts.task.task(),
            ..StreamOpts::default()
        },
    )?;
    status::finish(
        tool,
        sink.out(),
        &summary,
        " (the calls they belonged to are not shown)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapper_arguments() {
        if let Some(r) = SyscallRegs::ARCH {
            if cfg!(target_arch = "x86_64") {
                assert_eq!(r.function("execve"), "__x64_sys_execve");
                assert_eq!(r.arg(1), "+104(%di)");
            }
        }
    }
}
