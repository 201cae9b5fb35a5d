//! The sink of the read loop: decodes raw_syscalls events (and the task
//! events that name tasks), counts them, or adds what the kernel's hist
//! table counted; prints a summary per interval.

use crate::agg::{Agg, IdMap, Names};
use crate::hist::HistTrigger;
use crate::report::Report;
use crate::tasks::{self, Tasks};
use ftrace_common::app::stream::Sink;
use ftrace_common::buffer::format::{EventFormat, Field};
use ftrace_common::buffer::reader::Event;
use ftrace_common::lifecycle::instance::Instance;
use ftrace_common::Flow;
use ftrace_common::{Error, Result};
use std::collections::HashMap;

/// What an error filter keeps.
#[derive(Debug, Clone, Copy, Default)]
pub struct ErrFilter {
    /// Failed calls only.
    pub failed: bool,
    /// Calls failed with this errno only.
    pub errno: Option<i32>,
}

impl ErrFilter {
    pub fn active(&self) -> bool {
        self.failed || self.errno.is_some()
    }

    /// Whether a `sys_exit` of call `nr` returning `ret` is kept. An exit
    /// numbered -1 is no call's failure: `rt_sigreturn` sets the number to
    /// -1 while it restores the registers (and the return value) of the
    /// call a signal interrupted, and a tracer sets -1 to skip a call.
    #[inline]
    pub fn keeps(&self, nr: i64, ret: i64) -> bool {
        match self.errno {
            Some(e) => ret == -(e as i64) && nr != -1,
            None => !self.failed || ((-4095..0).contains(&ret) && nr != -1),
        }
    }

    /// The same test in the kernel's filter syntax, on `ret` and `id`.
    pub fn kernel_filter(&self) -> Option<String> {
        match self.errno {
            Some(e) => Some(format!("ret == -{e} && id != -1")),
            None if self.failed => Some("ret < 0 && ret >= -4095 && id != -1".to_string()),
            None => None,
        }
    }
}

/// Field offsets of the events syscount reads.
pub struct Decoder {
    pub enter_id: u16,
    pub enter_nr: Field,
    pub exit_id: u16,
    pub exit_nr: Field,
    pub exit_ret: Field,
    pub want_enter: bool,
    pub want_exit: bool,
    pub newtask: Option<(u16, Field, Field, Field)>,
    pub pexit: Option<(u16, Field, Field)>,
    pub pexec: Option<(u16, Field, Field)>,
}

impl Decoder {
    pub fn new(enter: &EventFormat, exit: &EventFormat) -> Result<Decoder> {
        Ok(Decoder {
            enter_id: enter.id,
            enter_nr: enter.require("id")?.clone(),
            exit_id: exit.id,
            exit_nr: exit.require("id")?.clone(),
            exit_ret: exit.require("ret")?.clone(),
            want_enter: false,
            want_exit: false,
            newtask: None,
            pexit: None,
            pexec: None,
        })
    }

    /// Enables the task events that tell who a task ID was (optional: a
    /// kernel without one of them gives `<...>` names for tasks that came
    /// and went).
    pub fn meta(&mut self, inst: &mut Instance) -> Result<()> {
        if let Ok(f) = inst.event_format("task", "task_newtask") {
            if let (Some(p), Some(c), Some(fl)) =
                (f.field("pid"), f.field("comm"), f.field("clone_flags"))
            {
                self.newtask = Some((f.id, p.clone(), c.clone(), fl.clone()));
                inst.enable_event("task", "task_newtask")?;
            }
        }
        if let Ok(f) = inst.event_format("sched", "sched_process_exit") {
            if let (Some(p), Some(c)) = (f.field("pid"), f.field("comm")) {
                self.pexit = Some((f.id, p.clone(), c.clone()));
                inst.enable_event("sched", "sched_process_exit")?;
            }
        }
        if let Ok(f) = inst.event_format("sched", "sched_process_exec") {
            if let (Some(p), Some(o)) = (f.field("pid"), f.field("old_pid")) {
                self.pexec = Some((f.id, p.clone(), o.clone()));
                inst.enable_event("sched", "sched_process_exec")?;
            }
        }
        Ok(())
    }
}

/// In-kernel counting: the trigger and what its table said last time.
pub struct KernelCount<'t> {
    pub trig: &'t HistTrigger,
    pub prev: HashMap<(i32, i64), u64>,
    pub dropped: u64,
}

/// The sink: counts events (or polls the kernel's table) and prints.
pub struct Counter<'t> {
    pub dec: Decoder,
    pub count_at_enter: bool,
    pub latency: bool,
    pub err: ErrFilter,
    pub pending: IdMap<i32, (u64, i64)>,
    pub agg: Agg,
    pub tasks: Tasks,
    pub kernel: Option<KernelCount<'t>>,
    pub names: Names,
    pub report: Report,
    pub error: Option<Error>,
    pub warned: Vec<String>,
    pub lost_flagged: u64,
    /// Tasks seen since the last summary.
    pub seen: IdMap<i32, ()>,
    /// The last task seen.
    pub last_seen: i32,
    /// Processes already checked for being 32-bit programs.
    pub checked_32bit: std::collections::HashSet<i32>,
    /// Counting a file's events (--read): its processes are not here to
    /// check.
    pub offline: bool,
}

impl Counter<'_> {
    /// Adds what the kernel's table counted since the last poll.
    pub fn poll_kernel(&mut self) -> Result<()> {
        let Some(k) = self.kernel.as_mut() else {
            return Ok(());
        };
        let hist = k.trig.read()?;
        for e in &hist.entries {
            let tid = e
                .key("common_pid")
                .and_then(|k| k.value)
                .map(|v| v as i32)
                .unwrap_or(0);
            let (nr, label) = match e.key("id") {
                Some(id) => (
                    id.value.map(|v| v as i64).unwrap_or(-1),
                    id.label.as_deref(),
                ),
                None => (0, None),
            };
            if let Some(l) = label {
                if let Some(w) = self.names.learn(nr, l) {
                    if !self.warned.contains(&w) {
                        eprintln!("syscount: {w}");
                        self.warned.push(w);
                    }
                }
            }
            let now = e.hitcount();
            let before = k.prev.insert((tid, nr), now).unwrap_or(0);
            if now > before {
                self.agg.add(tid, nr, now - before, 0);
            }
        }
        k.dropped = hist.dropped.unwrap_or(0);
        Ok(())
    }

    pub fn print_summary(&mut self) -> Flow {
        let f = self.report.print(&self.agg, &mut self.tasks, &self.names);
        self.warn_32bit();
        self.agg.reset();
        f
    }

    /// Says so once per process when a 32-bit program's calls were counted:
    /// their numbers are the 32-bit ABI's (the kernel's raw_syscalls events
    /// do not tell), so the names printed for them are wrong.
    fn warn_32bit(&mut self) {
        let mut tids: Vec<i32> = self.seen.keys().copied().collect();
        tids.extend(self.agg.tids());
        self.seen.clear();
        self.last_seen = 0;
        for tid in tids {
            let tgid = self.tasks.tgid(tid);
            if self.offline || !self.checked_32bit.insert(tgid) {
                continue;
            }
            if cfg!(target_pointer_width = "64") && tasks::is_32bit(tgid) == Some(true) {
                let (_, comm) = self.tasks.resolve(tid);
                eprintln!(
                    "syscount: PID {tgid} ({comm}) is a 32-bit program: its system calls carry \
                     the 32-bit ABI's numbers, counted here under the {} names of those numbers",
                    self.names.table.arch
                );
            }
        }
    }

    #[inline]
    fn meta_event(&mut self, ev: &Event) {
        let d = &self.dec;
        if let Some((id, pid, comm, flags)) = &d.newtask {
            if ev.id == *id {
                if let (Some(p), Some(c), Some(fl)) =
                    (pid.i64(ev.data), comm.str(ev.data), flags.u64(ev.data))
                {
                    self.tasks.new_task(ev.pid, p as i32, &c, fl);
                }
                return;
            }
        }
        if let Some((id, pid, comm)) = &d.pexit {
            if ev.id == *id {
                if let (Some(p), Some(c)) = (pid.i64(ev.data), comm.str(ev.data)) {
                    self.tasks.exited(p as i32, &c);
                    self.pending.remove(&(p as i32));
                }
                return;
            }
        }
        if let Some((id, pid, old)) = &d.pexec {
            if ev.id == *id {
                if let (Some(p), Some(o)) = (pid.i64(ev.data), old.i64(ev.data)) {
                    self.tasks.exec(p as i32, o as i32);
                }
            }
        }
    }
}

impl Sink for Counter<'_> {
    #[inline]
    fn event(&mut self, ev: &Event) -> Flow {
        // Which tasks made calls, for the 32-bit check (consecutive events
        // mostly come from one task: one map update per change).
        if ev.pid != self.last_seen {
            self.last_seen = ev.pid;
            self.seen.insert(ev.pid, ());
        }
        let d = &self.dec;
        if d.want_enter && ev.id == d.enter_id {
            let Some(nr) = d.enter_nr.i64(ev.data) else {
                return Flow::Continue;
            };
            if self.count_at_enter {
                self.agg.add(ev.pid, nr, 1, 0);
            } else {
                self.pending.insert(ev.pid, (ev.ts, nr));
            }
        } else if d.want_exit && ev.id == d.exit_id {
            let (Some(nr), Some(ret)) = (d.exit_nr.i64(ev.data), d.exit_ret.i64(ev.data)) else {
                return Flow::Continue;
            };
            if self.latency {
                // Only calls whose start was seen: their time is known.
                // rt_sigreturn ends with the number -1 (see ErrFilter::keeps).
                match self.pending.remove(&ev.pid) {
                    Some((t0, n0))
                        if (n0 == nr || nr == -1) && ev.ts >= t0 && self.err.keeps(n0, ret) =>
                    {
                        self.agg.add_latency(ev.pid, n0, ev.ts - t0);
                    }
                    _ => {}
                }
            } else if self.err.keeps(nr, ret) {
                self.agg.add(ev.pid, nr, 1, 0);
            }
        } else {
            self.meta_event(ev);
        }
        Flow::Continue
    }

    fn lost(&mut self, _cpu: u32, count: Option<u64>) -> Flow {
        self.lost_flagged += count.unwrap_or(1);
        Flow::Continue
    }

    fn tick(&mut self) -> Flow {
        if let Err(e) = self.poll_kernel() {
            self.error = Some(e);
            return Flow::Stop;
        }
        if self.lost_flagged > 0 {
            eprintln!(
                "syscount: LOST {} events in this interval: counts are low; use a larger --buffer-kb",
                self.lost_flagged
            );
            self.lost_flagged = 0;
        }
        self.print_summary()
    }
}
