//! Call graphs rebuilt from function_graph records.
//!
//! The kernel records one `funcgraph_entry` (function, depth) when a traced
//! function is called and one `funcgraph_exit` (function, depth, call and
//! return times) when it returns. [`Builder`] turns that stream, merged
//! from all CPUs in time order, back into calls:
//!
//! - Stacks are kept per task (the record's `common_pid`), not per CPU: a
//!   task can migrate between a call and its return, and the events of
//!   tasks running on several CPUs interleave. The idle tasks all have PID
//!   0, so PID 0 is kept per CPU.
//! - The depth in each record says where it belongs. An entry at a depth
//!   where a frame is still open, or an exit that skips open frames, means
//!   exits were lost: those frames end as [`End::ExitLost`] without a
//!   duration. (Unless no event was lost: an entry at the open frame's own
//!   depth is then an interrupt taken while that frame returned, and shows
//!   inside it.) An exit without its entry ([`End::EntryLost`]) keeps the
//!   duration its record carries. Nothing is invented.
//! - Only subtrees of the root functions (the ones asked for) are shown,
//!   with depths counted from the outermost root; frames of excluded
//!   functions are hidden with their subtrees; `max_depth` hides deeper
//!   frames (their time stays in their parents' durations).
//! - With `on_cpu`, the time a task spent switched out (from
//!   `sched_switch` records) between a call and its return is taken off
//!   that call's duration.
//! - After lost events on a CPU, the next event of each task that was in
//!   the middle of a graph there carries a [`Out::Gap`] mark: calls may be
//!   missing at that point.

use crate::graph::fast::FastMap;
#[cfg(test)]
use std::collections::HashMap;

/// The most levels one call may sit below its parent (the kernel's depths
/// jump where frames were not recorded; anything larger is damage).
const MAX_DEPTH_STEP: i64 = 8;

/// A function, as numbered by the caller's symbol table.
pub type FuncId = u32;

/// What the graph needs to know about a function.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FuncFlags {
    /// One of the functions whose graphs are shown.
    pub root: bool,
    /// Hidden, with everything it calls.
    pub excluded: bool,
}

/// Looks up the flags of a function.
pub trait Flags {
    /// The flags of `f`.
    fn flags(&self, f: FuncId) -> FuncFlags;
}

impl<F: Fn(FuncId) -> FuncFlags> Flags for F {
    fn flags(&self, f: FuncId) -> FuncFlags {
        self(f)
    }
}

/// One decoded record, in time order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rec {
    /// `funcgraph_entry`.
    Entry {
        /// The CPU whose buffer held it.
        cpu: u32,
        /// Its time stamp.
        ts: u64,
        /// The task.
        pid: i32,
        /// The function.
        func: FuncId,
        /// The kernel's depth.
        depth: i64,
    },
    /// `funcgraph_exit`.
    Exit {
        /// The CPU whose buffer held it.
        cpu: u32,
        /// Its time stamp.
        ts: u64,
        /// The task.
        pid: i32,
        /// The function.
        func: FuncId,
        /// The kernel's depth.
        depth: i64,
        /// Calls that did not fit the task's return stack.
        overrun: u32,
        /// When it was called (the kernel's local clock).
        calltime: u64,
        /// When it returned (same clock).
        rettime: u64,
        /// Its return value, where the kernel records it.
        retval: Option<u64>,
    },
    /// `sched:sched_switch` (used for on-CPU time).
    Switch {
        /// The CPU.
        cpu: u32,
        /// Its time stamp.
        ts: u64,
        /// The task switched out.
        prev: i32,
        /// The task switched in.
        next: i32,
    },
    /// Events lost on a CPU.
    Lost {
        /// The CPU.
        cpu: u32,
        /// How many, if known.
        count: Option<u64>,
    },
}

/// A task: its PID, and the CPU for the idle tasks (all PID 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskKey {
    /// The PID (thread ID).
    pub pid: i32,
    /// The CPU for PID 0, else `u32::MAX`.
    pub cpu: u32,
}

impl TaskKey {
    /// The key of `pid` seen on `cpu`.
    pub fn new(pid: i32, cpu: u32) -> TaskKey {
        TaskKey {
            pid,
            cpu: if pid == 0 { cpu } else { u32::MAX },
        }
    }
}

/// Where and when something happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Site {
    /// The task.
    pub task: TaskKey,
    /// The CPU of the record.
    pub cpu: u32,
    /// The record's time stamp.
    pub ts: u64,
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// It returned; the duration is known.
    Returned,
    /// A later record of its task shows it returned, but its exit record
    /// was lost: no duration.
    ExitLost,
    /// Still running when tracing ended.
    Unfinished,
    /// Its exit was seen, its entry was lost: the duration is the one its
    /// exit record carries.
    EntryLost,
}

/// What the builder hands out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Out {
    /// A shown call began.
    Enter {
        /// Where.
        at: Site,
        /// Depth from the outermost root (0).
        depth: u32,
        /// The function.
        func: FuncId,
    },
    /// A shown call ended.
    Exit {
        /// Where (for [`End::ExitLost`] and [`End::Unfinished`]: the record
        /// that revealed it, or the last one of the task).
        at: Site,
        /// Its depth.
        depth: u32,
        /// The function.
        func: FuncId,
        /// Its duration in ns, when known.
        dur: Option<u64>,
        /// How it ended.
        end: End,
        /// Calls below it that the kernel could not record (return stack
        /// full).
        overrun: u32,
        /// The return value, where the kernel gives it.
        retval: Option<u64>,
    },
    /// Events were lost: calls may be missing here in this task's graph.
    Gap {
        /// Where.
        at: Site,
        /// The depth of the mark.
        depth: u32,
    },
    /// Events were lost on a CPU (reported once, where they were seen).
    Lost {
        /// The CPU.
        cpu: u32,
        /// How many, if known.
        count: Option<u64>,
    },
}

impl Out {
    /// The task an item belongs to (`None` for [`Out::Lost`]).
    pub fn task(&self) -> Option<TaskKey> {
        match self {
            Out::Enter { at, .. } | Out::Exit { at, .. } | Out::Gap { at, .. } => Some(at.task),
            Out::Lost { .. } => None,
        }
    }
}

/// Choices that shape the graphs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Config {
    /// Show frames only down to this many levels (1 = the roots alone).
    pub max_depth: Option<u32>,
    /// Take switched-out time off durations.
    pub on_cpu: bool,
    /// Record time stamps are one clock for all CPUs (`mono`). Durations
    /// are the kernel's (return time - call time, from the CPU's own clock,
    /// `trace_clock_local`); with this set, a call that returned on
    /// another CPU, or whose kernel duration is shorter than a call shown
    /// inside it, is timed from its records instead.
    pub global_ts: bool,
}

#[derive(Debug, Clone, Copy)]
struct Frame {
    func: FuncId,
    kdepth: i64,
    /// Depth from the outermost root, when in scope.
    rel: u32,
    /// Inside (or at) a root.
    scope: bool,
    /// Shown (in scope, not excluded, not too deep).
    shown: bool,
    /// The task's switched-out total at the call.
    off_at_entry: u64,
    /// The CPU and time stamp of the entry record.
    cpu: u32,
    ts: u64,
    /// The longest duration shown for a call inside it so far.
    longest_child: u64,
}

impl Frame {
    /// The exit line of a call whose exit was not seen: lost, or still
    /// running when tracing ended. No duration is made up.
    fn unended(&self, at: Site, end: End) -> Out {
        Out::Exit {
            at,
            depth: self.rel,
            func: self.func,
            dur: None,
            end,
            overrun: 0,
            retval: None,
        }
    }
}

#[derive(Debug, Default)]
struct Task {
    stack: Vec<Frame>,
    /// Total switched-out time so far.
    off_total: u64,
    /// When it was switched out, if it is.
    off_since: Option<u64>,
    /// The CPU of its last record.
    last_cpu: u32,
    /// The time of its last record.
    last_ts: u64,
    /// Events were lost on the CPU it last ran on since then.
    suspect: bool,
}

/// Rebuilds calls from records; see the module documentation.
#[derive(Debug, Default)]
pub struct Builder {
    cfg: Config,
    tasks: FastMap<TaskKey, Task>,
    /// Some events were lost in this run.
    lost_seen: bool,
}

impl Builder {
    /// A builder with these choices.
    pub fn new(cfg: Config) -> Builder {
        Builder {
            cfg,
            ..Builder::default()
        }
    }

    /// Takes one record; what it shows is appended to `out`.
    pub fn push(&mut self, rec: Rec, flags: &dyn Flags, out: &mut Vec<Out>) {
        match rec {
            Rec::Entry {
                cpu,
                ts,
                pid,
                func,
                depth,
            } => self.entry(cpu, ts, pid, func, depth, flags, out),
            Rec::Exit {
                cpu,
                ts,
                pid,
                func,
                depth,
                overrun,
                calltime,
                rettime,
                retval,
            } => {
                let site = Site {
                    task: TaskKey::new(pid, cpu),
                    cpu,
                    ts,
                };
                let ex = ExitRec {
                    func,
                    depth,
                    overrun,
                    dur: rettime.saturating_sub(calltime),
                    retval,
                };
                self.exit(site, ex, flags, out)
            }
            Rec::Switch {
                cpu,
                ts,
                prev,
                next,
            } => {
                if !self.cfg.on_cpu {
                    return;
                }
                if let Some(t) = self.tasks.get_mut(&TaskKey::new(prev, cpu)) {
                    t.off_since = Some(ts);
                }
                if let Some(t) = self.tasks.get_mut(&TaskKey::new(next, cpu)) {
                    if let Some(since) = t.off_since.take() {
                        t.off_total += ts.saturating_sub(since);
                    }
                }
            }
            Rec::Lost { cpu, count } => {
                self.lost_seen = true;
                for t in self.tasks.values_mut() {
                    if t.last_cpu == cpu && !t.stack.is_empty() {
                        t.suspect = true;
                    }
                }
                out.push(Out::Lost { cpu, count });
            }
        }
    }

    /// Ends every open call as [`End::Unfinished`] (tracing stopped).
    pub fn finish(&mut self, out: &mut Vec<Out>) {
        let mut keys: Vec<TaskKey> = self.tasks.keys().copied().collect();
        keys.sort();
        for k in keys {
            let Some(mut t) = self.tasks.remove(&k) else {
                continue;
            };
            let at = Site {
                task: k,
                cpu: t.last_cpu,
                ts: t.last_ts,
            };
            while let Some(f) = t.stack.pop() {
                if f.shown {
                    out.push(f.unended(at, End::Unfinished));
                }
            }
        }
    }

    /// Pops frames while `pred` holds, as calls whose exits were lost.
    fn pop_lost(t: &mut Task, at: Site, pred: impl Fn(&Frame) -> bool, out: &mut Vec<Out>) {
        while let Some(top) = t.stack.last() {
            if !pred(top) {
                break;
            }
            let f = t.stack.pop().expect("a frame");
            if f.shown {
                out.push(f.unended(at, End::ExitLost));
            }
        }
    }

    /// A gap mark for a task that may have lost events.
    fn gap(t: &mut Task, at: Site, out: &mut Vec<Out>) {
        if !t.suspect {
            return;
        }
        t.suspect = false;
        if let Some(top) = t.stack.last() {
            if top.shown {
                out.push(Out::Gap {
                    at,
                    depth: top.rel + 1,
                });
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn entry(
        &mut self,
        cpu: u32,
        ts: u64,
        pid: i32,
        func: FuncId,
        depth: i64,
        flags: &dyn Flags,
        out: &mut Vec<Out>,
    ) {
        let fl = flags.flags(func);
        let key = TaskKey::new(pid, cpu);
        if !fl.root && !self.tasks.contains_key(&key) {
            // Not inside anything shown (another run's graph, or a call
            // whose root began before tracing).
            return;
        }
        let at = Site { task: key, cpu, ts };
        let t = self.tasks.entry(key).or_default();
        t.last_cpu = cpu;
        t.last_ts = ts;
        Self::gap(t, at, out);
        // With no events lost, an entry at the depth of the open top frame
        // is an interrupt taken while that frame returned: the kernel
        // lowers the depth before it writes the exit, which then follows
        // the interrupt's calls (seen in the 6.1 guest: a timer interrupt
        // between __cond_resched's return and its exit record). Its calls
        // show inside the frame, which the late exit then closes.
        let returning = !self.lost_seen && t.stack.last().is_some_and(|f| f.kdepth == depth);
        if !returning {
            Self::pop_lost(t, at, |f| f.kdepth >= depth, out);
        }
        let parent = t.stack.last().copied();
        let parent_scope = parent.map(|p| p.scope).unwrap_or(false);
        let scope = parent_scope || fl.root;
        if !scope {
            // Frames outside every root are not tracked.
            if t.stack.is_empty() {
                self.tasks.remove(&key);
            }
            return;
        }
        // Depths follow the kernel's, counted from the root: a frame the
        // kernel did not record (an interrupt's entry path, say) still
        // shows as one more level of indentation, as in its own text.
        let rel = match parent {
            Some(p) if parent_scope => p.rel + (depth - p.kdepth).clamp(1, MAX_DEPTH_STEP) as u32,
            _ => 0,
        };
        let hidden_parent = parent.map(|p| p.scope && !p.shown).unwrap_or(false);
        let shown =
            !hidden_parent && !fl.excluded && self.cfg.max_depth.map(|m| rel < m).unwrap_or(true);
        t.stack.push(Frame {
            func,
            kdepth: depth,
            rel,
            scope,
            shown,
            off_at_entry: t.off_total,
            cpu,
            ts,
            longest_child: 0,
        });
        if shown {
            out.push(Out::Enter {
                at,
                depth: rel,
                func,
            });
        }
    }

    fn exit(&mut self, at: Site, ex: ExitRec, flags: &dyn Flags, out: &mut Vec<Out>) {
        let key = at.task;
        let on_cpu = self.cfg.on_cpu;
        let lost_seen = self.lost_seen;
        let fl = flags.flags(ex.func);
        let Some(t) = self.tasks.get_mut(&key) else {
            // No open frame: an exit whose entry came before tracing began,
            // or was lost. Only the latter is worth a line.
            if fl.root && !fl.excluded && lost_seen && self.cfg.max_depth != Some(0) {
                out.push(orphan(at, 0, &ex, on_cpu));
            }
            return;
        };
        t.last_cpu = at.cpu;
        t.last_ts = at.ts;
        Self::gap(t, at, out);
        Self::pop_lost(t, at, |f| f.kdepth > ex.depth, out);
        match t.stack.last().copied() {
            Some(top) if top.kdepth == ex.depth && top.func == ex.func => {
                t.stack.pop();
                if top.shown {
                    let off = if on_cpu {
                        // A task that returns is running: close any switch
                        // that was never seen to end.
                        t.off_total - top.off_at_entry
                    } else {
                        0
                    };
                    let by_records = at.ts.saturating_sub(top.ts).saturating_sub(off);
                    let mut dur = ex.dur.saturating_sub(off);
                    if self.cfg.global_ts && (at.cpu != top.cpu || dur < top.longest_child) {
                        // The kernel's times are one CPU's clock: a call
                        // that returned elsewhere is timed by the records'
                        // global clock. So is one that looks shorter than
                        // a call inside it: an interrupt taken between its
                        // return time and its exit record (seen in the
                        // guests: irq frames recorded inside
                        // finish_task_switch after its return time).
                        dur = by_records;
                    }
                    if let Some(p) = t.stack.last_mut() {
                        p.longest_child = p.longest_child.max(dur);
                    }
                    out.push(Out::Exit {
                        at,
                        depth: top.rel,
                        func: ex.func,
                        dur: Some(dur),
                        end: End::Returned,
                        overrun: ex.overrun,
                        retval: ex.retval,
                    });
                }
            }
            top => {
                if let Some(top) = top {
                    if top.kdepth == ex.depth {
                        // Another call at this depth: its exit was lost.
                        Self::pop_lost(t, at, |f| f.kdepth >= ex.depth, out);
                    }
                }
                let parent = t.stack.last().copied();
                let (show, depth) = match parent {
                    Some(p) if p.scope => (
                        p.shown,
                        p.rel + (ex.depth - p.kdepth).clamp(1, MAX_DEPTH_STEP) as u32,
                    ),
                    _ => (fl.root, 0),
                };
                let too_deep = self.cfg.max_depth.map(|m| depth >= m).unwrap_or(false);
                if show && !fl.excluded && !too_deep && lost_seen {
                    out.push(orphan(at, depth, &ex, on_cpu));
                }
            }
        }
        if t.stack.is_empty() {
            self.tasks.remove(&key);
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct ExitRec {
    func: FuncId,
    depth: i64,
    overrun: u32,
    dur: u64,
    retval: Option<u64>,
}

fn orphan(at: Site, depth: u32, ex: &ExitRec, on_cpu: bool) -> Out {
    Out::Exit {
        at,
        depth,
        func: ex.func,
        // Switched-out time is unknown for a call whose entry was not
        // seen: no on-CPU figure is made up.
        dur: if on_cpu { None } else { Some(ex.dur) },
        end: End::EntryLost,
        overrun: ex.overrun,
        retval: ex.retval,
    }
}

/// Helpers for the engine's tests.
#[cfg(test)]
pub mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Functions 0..=9 are roots: 1; excluded: 5.
    pub fn flags_of(f: FuncId) -> FuncFlags {
        FuncFlags {
            root: f == 1,
            excluded: f == 5,
        }
    }

    /// An entry record.
    pub fn ent(ts: u64, pid: i32, cpu: u32, func: FuncId, depth: i64) -> Rec {
        Rec::Entry {
            cpu,
            ts,
            pid,
            func,
            depth,
        }
    }

    /// An exit record.
    pub fn ext(ts: u64, pid: i32, cpu: u32, func: FuncId, depth: i64, call: u64) -> Rec {
        Rec::Exit {
            cpu,
            ts,
            pid,
            func,
            depth,
            overrun: 0,
            calltime: call,
            rettime: ts,
            retval: None,
        }
    }

    /// The builder's output for these records.
    pub fn run(cfg: Config, recs: &[Rec]) -> Vec<Out> {
        let mut b = Builder::new(cfg);
        let mut out = Vec::new();
        for r in recs {
            b.push(*r, &flags_of, &mut out);
        }
        b.finish(&mut out);
        out
    }

    /// A compact picture: `>f@d` enter, `<f@d=dur` exit, `!` marks.
    pub fn pic(out: &[Out]) -> String {
        let mut s = Vec::new();
        for o in out {
            s.push(match o {
                Out::Enter { depth, func, at } => format!(">{func}@{depth}/{}", at.task.pid),
                Out::Exit {
                    depth,
                    func,
                    dur,
                    end,
                    ..
                } => match (end, dur) {
                    (End::Returned, Some(d)) => format!("<{func}@{depth}={d}"),
                    (End::ExitLost, _) => format!("<{func}@{depth}=lost"),
                    (End::Unfinished, _) => format!("<{func}@{depth}=running"),
                    (End::EntryLost, Some(d)) => format!("<{func}@{depth}=orphan{d}"),
                    (e, d) => format!("<{func}@{depth}={e:?}{d:?}"),
                },
                Out::Gap { depth, .. } => format!("gap@{depth}"),
                Out::Lost { cpu, count } => format!("lost{cpu}:{count:?}"),
            });
        }
        s.join(" ")
    }

    #[test]
    fn nested_calls_with_durations() {
        let out = run(
            Config::default(),
            &[
                ent(10, 7, 0, 1, 0),
                ent(11, 7, 0, 2, 1),
                ext(13, 7, 0, 2, 1, 11),
                ent(14, 7, 0, 3, 1),
                ent(15, 7, 0, 4, 2),
                ext(16, 7, 0, 4, 2, 15),
                ext(18, 7, 0, 3, 1, 14),
                ext(20, 7, 0, 1, 0, 10),
            ],
        );
        assert_eq!(
            pic(&out),
            ">1@0/7 >2@1/7 <2@1=2 >3@1/7 >4@2/7 <4@2=1 <3@1=4 <1@0=10"
        );
    }

    #[test]
    fn an_interrupt_during_a_return_nests_in_the_returning_call() {
        // 2 returns (depth lowered), an interrupt runs 3 at 2's depth, then
        // 2's exit is written: 3 shows inside 2, nothing is lost.
        let recs = [
            ent(10, 7, 0, 1, 0),
            ent(11, 7, 0, 2, 1),
            ent(12, 7, 0, 3, 1),
            ext(13, 7, 0, 3, 1, 12),
            ext(14, 7, 0, 2, 1, 11),
            ext(20, 7, 0, 1, 0, 10),
        ];
        assert_eq!(
            pic(&run(Config::default(), &recs)),
            ">1@0/7 >2@1/7 >3@2/7 <3@2=1 <2@1=3 <1@0=10"
        );
        // After a loss the same records mean a lost exit, as before.
        let mut lossy = vec![Rec::Lost {
            cpu: 1,
            count: Some(3),
        }];
        lossy.extend(recs);
        assert_eq!(
            pic(&run(Config::default(), &lossy)),
            "lost1:Some(3) >1@0/7 >2@1/7 <2@1=lost >3@1/7 <3@1=1 <2@1=orphan3 <1@0=10"
        );
    }

    #[test]
    fn interleaved_cpus_and_a_migration_stay_apart() {
        // Task 7 starts on CPU 0 and returns on CPU 1; task 8 runs on CPU 1
        // meanwhile; task 9 on CPU 0.
        let out = run(
            Config::default(),
            &[
                ent(10, 7, 0, 1, 0),
                ent(11, 8, 1, 1, 0),
                ent(12, 7, 0, 2, 1),
                ent(13, 8, 1, 3, 1),
                ext(14, 8, 1, 3, 1, 13),
                ent(15, 9, 0, 1, 0),
                ext(16, 7, 1, 2, 1, 12),
                ext(17, 8, 1, 1, 0, 11),
                ext(18, 9, 0, 1, 0, 15),
                ext(19, 7, 1, 1, 0, 10),
            ],
        );
        assert_eq!(
            pic(&out),
            ">1@0/7 >1@0/8 >2@1/7 >3@1/8 <3@1=1 >1@0/9 <2@1=4 <1@0=6 <1@0=3 <1@0=9"
        );
    }

    #[test]
    fn idle_tasks_are_kept_per_cpu() {
        let out = run(
            Config::default(),
            &[
                ent(10, 0, 0, 1, 0),
                ent(11, 0, 1, 1, 0),
                ext(12, 0, 0, 1, 0, 10),
                ext(13, 0, 1, 1, 0, 11),
            ],
        );
        assert_eq!(pic(&out), ">1@0/0 >1@0/0 <1@0=2 <1@0=2");
    }

    #[test]
    fn depth_limit_and_exclusions_hide_subtrees() {
        let recs = [
            ent(10, 7, 0, 1, 0),
            ent(11, 7, 0, 5, 1), // excluded
            ent(12, 7, 0, 2, 2),
            ext(13, 7, 0, 2, 2, 12),
            ext(14, 7, 0, 5, 1, 11),
            ent(15, 7, 0, 3, 1),
            ent(16, 7, 0, 4, 2),
            ext(17, 7, 0, 4, 2, 16),
            ext(18, 7, 0, 3, 1, 15),
            ext(20, 7, 0, 1, 0, 10),
        ];
        assert_eq!(
            pic(&run(Config::default(), &recs)),
            ">1@0/7 >3@1/7 >4@2/7 <4@2=1 <3@1=3 <1@0=10"
        );
        let cfg = Config {
            max_depth: Some(2),
            ..Config::default()
        };
        assert_eq!(pic(&run(cfg, &recs)), ">1@0/7 >3@1/7 <3@1=3 <1@0=10");
    }

    #[test]
    fn only_root_subtrees_count_and_depth_starts_at_the_root() {
        // Function 6 is not a root: its graph (another run's) is ignored,
        // but a root called inside it is shown from depth 0.
        let out = run(
            Config::default(),
            &[
                ent(10, 7, 0, 6, 0),
                ent(11, 7, 0, 2, 1),
                ext(12, 7, 0, 2, 1, 11),
                ent(13, 7, 0, 1, 1),
                ent(14, 7, 0, 2, 2),
                ext(15, 7, 0, 2, 2, 14),
                ext(16, 7, 0, 1, 1, 13),
                ext(17, 7, 0, 6, 0, 10),
            ],
        );
        assert_eq!(pic(&out), ">1@0/7 >2@1/7 <2@1=1 <1@0=3");
    }

    #[test]
    fn lost_exits_and_entries_are_marked_not_invented() {
        let out = run(
            Config::default(),
            &[
                ent(10, 7, 0, 1, 0),
                ent(11, 7, 0, 2, 1),
                ent(12, 7, 0, 3, 2),
                Rec::Lost {
                    cpu: 0,
                    count: Some(4),
                },
                // 3's and 2's exits lost, then a new call at depth 1.
                ent(20, 7, 0, 4, 1),
                ext(21, 7, 0, 4, 1, 20),
                // An exit whose entry was lost.
                ext(23, 7, 0, 6, 1, 22),
                ext(30, 7, 0, 1, 0, 10),
            ],
        );
        assert_eq!(
            pic(&out),
            ">1@0/7 >2@1/7 >3@2/7 lost0:Some(4) gap@3 <3@2=lost <2@1=lost >4@1/7 <4@1=1 <6@1=orphan1 <1@0=20"
        );
    }

    #[test]
    fn exits_from_before_tracing_are_dropped_and_running_calls_end_unfinished() {
        let out = run(
            Config::default(),
            &[
                ext(5, 7, 0, 2, 1, 1),
                ext(6, 7, 0, 1, 0, 1),
                ent(10, 7, 0, 1, 0),
                ent(11, 7, 0, 2, 1),
            ],
        );
        assert_eq!(pic(&out), ">1@0/7 >2@1/7 <2@1=running <1@0=running");
    }

    #[test]
    fn a_call_that_moved_cpu_is_timed_by_the_global_clock() {
        // Called on CPU 0 (its clock 1000 ns ahead), returned on CPU 1.
        let recs = [
            ent(10, 7, 0, 1, 0),
            ent(11, 7, 0, 2, 1),
            Rec::Exit {
                cpu: 0,
                ts: 300,
                pid: 7,
                func: 2,
                depth: 1,
                overrun: 0,
                calltime: 1011,
                rettime: 1300,
                retval: None,
            },
            Rec::Exit {
                cpu: 1,
                ts: 320,
                pid: 7,
                func: 1,
                depth: 0,
                overrun: 0,
                calltime: 1010,
                rettime: 320,
                retval: None,
            },
        ];
        let cfg = Config {
            global_ts: true,
            ..Config::default()
        };
        assert_eq!(pic(&run(cfg, &recs)), ">1@0/7 >2@1/7 <2@1=289 <1@0=310");
        assert_eq!(
            pic(&run(Config::default(), &recs)),
            ">1@0/7 >2@1/7 <2@1=289 <1@0=0"
        );
    }

    #[test]
    fn a_parent_never_shows_shorter_than_its_child() {
        // finish_task_switch returns at 20 (its clock), then an interrupt
        // runs before its exit is recorded at 400: the interrupt's frames
        // come inside it, 300 long.
        let recs = [
            ent(10, 7, 0, 1, 0),
            ent(11, 7, 0, 2, 1),
            ent(30, 7, 0, 3, 2),
            ext(330, 7, 0, 3, 2, 30),
            Rec::Exit {
                cpu: 0,
                ts: 400,
                pid: 7,
                func: 2,
                depth: 1,
                overrun: 0,
                calltime: 11,
                rettime: 20,
                retval: None,
            },
            ext(410, 7, 0, 1, 0, 10),
        ];
        let cfg = Config {
            global_ts: true,
            ..Config::default()
        };
        assert_eq!(
            pic(&run(cfg, &recs)),
            ">1@0/7 >2@1/7 >3@2/7 <3@2=300 <2@1=389 <1@0=400"
        );
    }

    #[test]
    fn on_cpu_time_leaves_out_switched_out_time() {
        let cfg = Config {
            on_cpu: true,
            ..Config::default()
        };
        let out = run(
            cfg,
            &[
                ent(10, 7, 0, 1, 0),
                ent(11, 7, 0, 2, 1),
                Rec::Switch {
                    cpu: 0,
                    ts: 12,
                    prev: 7,
                    next: 0,
                },
                Rec::Switch {
                    cpu: 1,
                    ts: 1012,
                    prev: 0,
                    next: 7,
                },
                ext(1014, 7, 1, 2, 1, 11),
                ext(1020, 7, 1, 1, 0, 10),
            ],
        );
        assert_eq!(pic(&out), ">1@0/7 >2@1/7 <2@1=3 <1@0=10");
    }

    fn arb_rec() -> impl Strategy<Value = Rec> {
        prop_oneof![
            (0u64..100, 0i32..3, 0u32..2, 0u32..7, -1i64..5)
                .prop_map(|(ts, pid, cpu, f, d)| ent(ts, pid, cpu, f, d)),
            (0u64..100, 0i32..3, 0u32..2, 0u32..7, -1i64..5, 0u64..200)
                .prop_map(|(ts, pid, cpu, f, d, c)| ext(ts, pid, cpu, f, d, c)),
            (0u64..100, 0u32..2, 0i32..3, 0i32..3).prop_map(|(ts, cpu, prev, next)| {
                Rec::Switch {
                    cpu,
                    ts,
                    prev,
                    next,
                }
            }),
            (0u32..2).prop_map(|cpu| Rec::Lost {
                cpu,
                count: Some(1)
            }),
        ]
    }

    proptest! {
        /// Whatever the records, the output is balanced per task: every
        /// Enter has one Exit at the same depth, children inside parents.
        #[test]
        fn output_is_always_balanced(recs in proptest::collection::vec(arb_rec(), 0..80),
                                     depth in proptest::option::of(0u32..4),
                                     on_cpu in any::<bool>()) {
            let mut sorted = recs.clone();
            sorted.sort_by_key(|r| match r {
                Rec::Entry { ts, .. } | Rec::Exit { ts, .. } | Rec::Switch { ts, .. } => *ts,
                Rec::Lost { .. } => 0,
            });
            let out = run(Config { max_depth: depth, on_cpu, global_ts: on_cpu }, &sorted);
            let mut stacks: HashMap<TaskKey, Vec<(u32, FuncId)>> = HashMap::new();
            for o in &out {
                match *o {
                    Out::Enter { at, depth: d, func } => {
                        let s = stacks.entry(at.task).or_default();
                        match s.last() {
                            Some(&(pd, _)) => prop_assert!(d > pd),
                            None => prop_assert_eq!(d, 0),
                        }
                        if let Some(m) = depth { prop_assert!(d < m); }
                        s.push((d, func));
                    }
                    Out::Exit { at, depth: d, func, end, .. } if end != End::EntryLost => {
                        let s = stacks.entry(at.task).or_default();
                        prop_assert_eq!(s.pop(), Some((d, func)));
                    }
                    _ => {}
                }
            }
            prop_assert!(stacks.values().all(|s| s.is_empty()));
        }
    }
}
