//! Stacks counted from the trace buffer (stackcount, and later offcputime):
//! the `kernel_stack` and `user_stack` records the kernel writes after each
//! event (the instance's `stacktrace` and `userstacktrace` options) are
//! joined to the event they follow on the same CPU, symbolized once per
//! distinct stack (while its process still runs: a process's maps are read
//! when it first appears, so frames of a process that has exited since still
//! resolve), and counted by what they show.
//!
//! Printed as bcc prints them: one block per stack, innermost frame first,
//! the count on its own line, the most frequent last; or folded (one line a
//! stack, outermost first, joined by `;`), which is also what
//! [`crate::app::flame`] draws.

use crate::app::flame;
use crate::app::output::Output;
use crate::buffer::format::EventFormat;
use crate::buffer::reader::Event;
use crate::buffer::stack;
use crate::kernel::proc::CommCache;
use crate::lifecycle::instance::Instance;
use crate::sym::kallsyms::KernelSyms;
use crate::sym::symbolize::{Frame, UserSymbols};
use crate::Flow;
use crate::Result;
use std::collections::{HashMap, HashSet};

/// Which stacks are counted, and how they are shown.
#[derive(Debug, Clone, Default)]
pub struct StackOpts {
    /// Kernel stacks.
    pub kernel: bool,
    /// User stacks.
    pub user: bool,
    /// One count per process (`-P`): the process name and PID are part of
    /// the stack.
    pub per_process: bool,
    /// The process name is part of the stack (it starts a folded line).
    pub comm: bool,
    /// Addresses beside the names (`-v`), and offsets into functions.
    pub addresses: bool,
    /// Frames left out at the innermost end (`-s N`).
    pub skip: usize,
    /// `--` between the kernel and the user frames (`-` when folded).
    pub delimited: bool,
    /// One count per thread, named by its thread ID (offcputime, as bcc's:
    /// each block ends with `-  comm (tid)`; folded lines start with the
    /// name only, and lines alike are added up).
    pub per_thread: bool,
    /// The event is a tracepoint: the innermost kernel frames of the code
    /// that records it (`trace_event_raw_event_*`, `__traceiter_*`, ...)
    /// are left out, so that a stack starts where the tracepoint is.
    pub tracepoint: bool,
}

/// Whether a kernel frame is the tracepoint machinery's, not the traced
/// code's (tcpretrans leaves them out of its stacks too).
pub fn tracing_frame(name: &str) -> bool {
    const PREFIXES: [&str; 6] = [
        "ftrace_syscall_",
        "trace_event_raw_event_",
        "__traceiter_",
        "perf_trace_",
        "__bpf_trace_",
        "__probestub_",
    ];
    PREFIXES.iter().any(|p| name.starts_with(p))
}

/// How stacks are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StackForm {
    /// bcc's blocks, the most frequent last.
    Blocks,
    /// One folded line a stack.
    Folded,
    /// One JSON object a stack.
    Json,
}

impl StackForm {
    /// `-j` over `-f` over bcc's blocks.
    pub fn of(json: bool, folded: bool) -> StackForm {
        match (json, folded) {
            (true, _) => StackForm::Json,
            (_, true) => StackForm::Folded,
            _ => StackForm::Blocks,
        }
    }
}

/// A stack as shown: what stacks are counted by.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StackKey {
    /// The process name, where it is part of the stack.
    pub comm: Option<String>,
    /// The process, with `-P`; the thread, with
    /// [`StackOpts::per_thread`].
    pub pid: Option<u32>,
    /// Kernel frames, innermost first.
    pub kernel: Vec<String>,
    /// User frames, innermost first.
    pub user: Vec<String>,
}

/// What was read of one CPU's latest event: its task and the stacks that
/// followed it so far.
#[derive(Debug)]
struct Pending {
    pid: i32,
    use_: Use,
    kernel: Option<Vec<u64>>,
    user: Option<(u32, Vec<u64>)>,
}

/// What becomes of a stack once read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Use {
    /// Counted this many times.
    Count(u64),
    /// Held for this tag until [`StackCounter::weigh`].
    Hold(u64),
    /// Not counted (the event's stacks are of no interest).
    Drop,
}

type RawKey = (u32, Vec<u64>, Vec<u64>);

/// Counts stacks from the buffer.
pub struct StackCounter {
    opts: StackOpts,
    kfmt: Option<EventFormat>,
    ufmt: Option<EventFormat>,
    pending: Vec<Option<Pending>>,
    kernel_syms: KernelSyms,
    user_syms: UserSymbols,
    comms: CommCache,
    raw: HashMap<RawKey, usize>,
    seen: HashSet<i32>,
    keys: Vec<StackKey>,
    by_key: HashMap<StackKey, usize>,
    counts: Vec<u64>,
    totals: Vec<u64>,
    held: HashMap<u64, usize>,
}

impl StackCounter {
    /// Turns on the stack records `opts` asks for in `inst`.
    pub fn new(inst: &mut Instance, opts: StackOpts) -> Result<StackCounter> {
        let mut c = StackCounter::fed(inst, opts);
        // Addresses to look up: load the table while tracing starts.
        c.kernel_syms = KernelSyms::in_background();
        if c.opts.kernel {
            inst.set_option("stacktrace", true)?;
            c.kfmt = Some(inst.event_format("ftrace", "kernel_stack")?);
        }
        if c.opts.user {
            inst.set_option("userstacktrace", true)?;
            c.ufmt = Some(inst.event_format("ftrace", "user_stack")?);
        }
        Ok(c)
    }

    /// A counter fed stacks counted elsewhere (a hist trigger keyed on the
    /// stack), through [`StackCounter::add`]: no stack records are turned
    /// on, and it prints them as it prints its own.
    pub fn fed(inst: &Instance, opts: StackOpts) -> StackCounter {
        StackCounter {
            opts,
            kfmt: None,
            ufmt: None,
            pending: Vec::new(),
            kernel_syms: KernelSyms::on_demand(),
            user_syms: UserSymbols::new(),
            comms: CommCache::new(Some(inst.tracefs().path("saved_cmdlines"))),
            raw: HashMap::new(),
            seen: HashSet::new(),
            keys: Vec::new(),
            by_key: HashMap::new(),
            counts: Vec::new(),
            totals: Vec::new(),
            held: HashMap::new(),
        }
    }

    /// Reads the maps of `pid` now (`-p`): its frames resolve even if it
    /// exits before its first stack is read.
    pub fn remember(&mut self, pid: u32) {
        if self.opts.user {
            self.user_syms.remember(pid);
        }
    }

    /// An event whose stacks are counted (`weight` times): closes what the
    /// CPU's previous event had, and waits for this one's stacks.
    pub fn start(&mut self, ev: &Event, weight: u64) {
        self.open(ev, Use::Count(weight));
    }

    /// An event whose stacks are weighed later: once read, the stack is
    /// held for `tag` (one stack a tag; a later one replaces it) until
    /// [`StackCounter::weigh`].
    pub fn start_held(&mut self, ev: &Event, tag: u64) {
        self.open(ev, Use::Hold(tag));
    }

    /// An event whose stacks are not counted: closes what the CPU's
    /// previous event had, so that they are not taken for its.
    pub fn skip(&mut self, ev: &Event) {
        self.open(ev, Use::Drop);
    }

    /// Adds `weight` to the stack held for `tag`, and lets it go (a weight
    /// of 0 only lets it go). False when no stack is held for `tag`.
    pub fn weigh(&mut self, tag: u64, weight: u64) -> bool {
        // Its stack records may not all have been read yet (a lost one):
        // the newest event of the tag is the one weighed.
        let slot = self
            .pending
            .iter()
            .position(|p| p.as_ref().is_some_and(|p| p.use_ == Use::Hold(tag)));
        if let Some(p) = slot.and_then(|i| self.pending[i].take()) {
            self.count(p);
        }
        match self.held.remove(&tag) {
            Some(i) => {
                self.counts[i] += weight;
                self.totals[i] += weight;
                true
            }
            None => false,
        }
    }

    /// Names a task, as the event that starts its stack names it (its
    /// `comm` now, which saved_cmdlines or /proc may no longer have).
    pub fn name(&mut self, pid: i32, comm: &str) {
        self.comms.set(pid, comm);
    }

    fn open(&mut self, ev: &Event, use_: Use) {
        if use_ != Use::Drop && self.opts.user && self.seen.insert(ev.pid) {
            self.user_syms.remember(ev.pid.max(0) as u32);
        }
        let cpu = ev.cpu as usize;
        if self.pending.len() <= cpu {
            self.pending.resize_with(cpu + 1, || None);
        }
        if let Some(p) = self.pending[cpu].take() {
            self.count(p);
        }
        self.pending[cpu] = Some(Pending {
            pid: ev.pid,
            use_,
            kernel: None,
            user: None,
        });
    }

    /// A stack record: joined to its CPU's event. Returns false for any
    /// other event.
    pub fn stack(&mut self, ev: &Event) -> bool {
        let cpu = ev.cpu as usize;
        let slot = self.pending.get_mut(cpu).and_then(Option::as_mut);
        if let Some(f) = self.kfmt.as_ref().filter(|f| f.id == ev.id) {
            if let Some(p) = slot {
                p.kernel
                    .get_or_insert_with(|| stack::kernel_stack(f, ev.data));
            }
        } else if let Some(f) = self.ufmt.as_ref().filter(|f| f.id == ev.id) {
            if let Some(p) = slot {
                p.user.get_or_insert_with(|| stack::user_stack(f, ev.data));
            }
        } else {
            return false;
        }
        // Complete: count it now, while its process surely runs.
        if let Some(p) = self.pending[cpu].as_ref() {
            if (p.kernel.is_some() || !self.opts.kernel) && (p.user.is_some() || !self.opts.user) {
                let p = self.pending[cpu].take().expect("checked");
                self.count(p);
            }
        }
        true
    }

    /// Counts every event still waiting for its stacks.
    pub fn flush(&mut self) {
        for i in 0..self.pending.len() {
            if let Some(p) = self.pending[i].take() {
                self.count(p);
            }
        }
    }

    fn count(&mut self, p: Pending) {
        if p.use_ == Use::Drop {
            return;
        }
        let (tgid, uaddrs) = p.user.unwrap_or((0, Vec::new()));
        let tgid = if tgid == 0 { p.pid.max(0) as u32 } else { tgid };
        let kaddrs = p.kernel.unwrap_or_default();
        // User addresses mean something in their process only.
        let keep_pid = self.opts.user || self.opts.per_process || self.opts.comm;
        let id = if self.opts.per_thread {
            p.pid.max(0) as u32
        } else if keep_pid {
            tgid
        } else {
            0
        };
        let raw = (id, kaddrs, uaddrs);
        let i = match self.raw.get(&raw) {
            Some(&i) => i,
            None => {
                let key = self.symbolize(p.pid, tgid, &raw.1, &raw.2);
                let i = self.slot(key);
                self.raw.insert(raw, i);
                i
            }
        };
        match p.use_ {
            Use::Count(w) => {
                self.counts[i] += w;
                self.totals[i] += w;
            }
            Use::Hold(tag) => {
                self.held.insert(tag, i);
            }
            Use::Drop => {}
        }
    }

    fn symbolize(&mut self, pid: i32, tgid: u32, kaddrs: &[u64], uaddrs: &[u64]) -> StackKey {
        let addresses = self.opts.addresses;
        let mut kernel: Vec<String> = kaddrs
            .iter()
            .map(|&a| {
                if addresses {
                    format!("{a:#x} {}", self.kernel_syms.get(a, true))
                } else {
                    self.kernel_syms.get(a, false).to_string()
                }
            })
            .collect();
        let mut user: Vec<String> = user_frames(&mut self.user_syms, tgid, uaddrs)
            .iter()
            .map(|f| user_frame(f, addresses))
            .collect();
        if self.opts.tracepoint {
            let n = kaddrs
                .iter()
                .take_while(|&&a| tracing_frame(self.kernel_syms.get(a, false)))
                .count();
            kernel.drain(..n);
        }
        let skip = self.opts.skip;
        if !kernel.is_empty() {
            kernel.drain(..skip.min(kernel.len()));
        } else {
            user.drain(..skip.min(user.len()));
        }
        let per_thread = self.opts.per_thread;
        let comm = (self.opts.comm || self.opts.per_process || per_thread).then(|| {
            let who = if tgid > 0 && !per_thread {
                tgid as i32
            } else {
                pid
            };
            self.comms.get(who).to_string()
        });
        let id = if per_thread {
            Some(pid.max(0) as u32)
        } else {
            self.opts.per_process.then_some(tgid)
        };
        StackKey {
            comm,
            pid: id,
            kernel,
            user,
        }
    }

    /// The stacks counted since the last [`StackCounter::clear`] (`total`:
    /// since the start), least frequent first; `top`: the most frequent
    /// ones only.
    pub fn sorted(&self, total: bool, top: Option<usize>) -> Vec<(&StackKey, u64)> {
        let counts = if total { &self.totals } else { &self.counts };
        let mut v: Vec<(&StackKey, u64)> = self
            .keys
            .iter()
            .zip(counts.iter().copied())
            .filter(|(_, n)| *n > 0)
            .collect();
        v.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(a.0)));
        if let Some(t) = top {
            let cut = v.len().saturating_sub(t);
            v.drain(..cut);
        }
        v
    }

    /// Adds `n` to the count of `key`, a stack already shown as text
    /// (innermost frame first): the tracepoint's frames and `-s` are left
    /// out here, the rest is the caller's.
    pub fn add(&mut self, mut key: StackKey, n: u64) {
        if self.opts.tracepoint {
            let name = |f: &String| f.split(['+', ' ']).next().unwrap_or("").to_string();
            let n = key
                .kernel
                .iter()
                .take_while(|f| tracing_frame(&name(f)))
                .count();
            key.kernel.drain(..n);
        }
        let skip = self.opts.skip;
        if !key.kernel.is_empty() {
            key.kernel.drain(..skip.min(key.kernel.len()));
        } else {
            key.user.drain(..skip.min(key.user.len()));
        }
        let i = self.slot(key);
        self.counts[i] += n;
        self.totals[i] += n;
    }

    /// The index of `key`'s counts, made on first sight.
    fn slot(&mut self, key: StackKey) -> usize {
        if let Some(&i) = self.by_key.get(&key) {
            return i;
        }
        self.keys.push(key.clone());
        self.counts.push(0);
        self.totals.push(0);
        self.by_key.insert(key, self.keys.len() - 1);
        self.keys.len() - 1
    }

    /// Starts the counts of an interval anew (the totals stay).
    pub fn clear(&mut self) {
        self.counts.iter_mut().for_each(|n| *n = 0);
    }

    /// Prints `stacks` in `form` to `out` and flushes it; JSON objects
    /// name the count `count_name` and carry `time` where given.
    pub fn print(
        &self,
        out: &mut Output,
        stacks: &[(&StackKey, u64)],
        form: StackForm,
        count_name: &str,
        time: Option<&str>,
    ) -> Flow {
        let mut flow = Flow::Continue;
        match form {
            StackForm::Json => {
                for mut v in self.json(stacks, count_name) {
                    if let Some(t) = time {
                        v["time"] = t.into();
                    }
                    flow = out.json(&v);
                    if flow == Flow::Stop {
                        break;
                    }
                }
            }
            StackForm::Folded => {
                for l in self.folded(stacks) {
                    flow = out.line(&l);
                    if flow == Flow::Stop {
                        break;
                    }
                }
            }
            StackForm::Blocks => flow = out.text(&self.render(stacks)),
        }
        if flow == Flow::Stop {
            return flow;
        }
        out.flush()
    }

    /// The text of `stacks` as bcc prints it.
    /// (stackcount's two-space frames; with [`StackOpts::per_thread`],
    /// offcputime's four spaces and `-  comm (tid)`).
    pub fn render(&self, stacks: &[(&StackKey, u64)]) -> String {
        let per_thread = self.opts.per_thread;
        let pad = if per_thread { "    " } else { "  " };
        let mut s = String::new();
        for (k, n) in stacks {
            for f in &k.kernel {
                s.push_str(&format!("{pad}{f}\n"));
            }
            if self.opts.delimited && self.opts.kernel && self.opts.user {
                s.push_str(&format!("{pad}--\n"));
            }
            for f in &k.user {
                s.push_str(&format!("{pad}{f}\n"));
            }
            match (&k.comm, k.pid) {
                (Some(c), Some(p)) if per_thread => {
                    s.push_str(&format!("{pad}{:<16} {c} ({p})\n", "-"))
                }
                (Some(c), Some(p)) => s.push_str(&format!("{pad}{c} [{p}]\n")),
                (Some(c), None) => s.push_str(&format!("{pad}{c}\n")),
                _ => {}
            }
            s.push_str(&format!("{pad}{pad}{n}\n\n"));
        }
        s
    }

    /// `stacks` as JSON, one object a stack: `comm`, `pid` (`-P`) or `tid`
    /// (per thread), `kernel` and `user` (frame lists, innermost first, as
    /// asked), and the count under `count_name` (`count`, `us`).
    pub fn json(&self, stacks: &[(&StackKey, u64)], count_name: &str) -> Vec<serde_json::Value> {
        stacks
            .iter()
            .map(|(k, n)| {
                let mut m = serde_json::Map::new();
                if let Some(c) = &k.comm {
                    m.insert("comm".into(), c.clone().into());
                }
                if let Some(p) = k.pid {
                    let name = if self.opts.per_thread { "tid" } else { "pid" };
                    m.insert(name.into(), p.into());
                }
                if self.opts.kernel {
                    m.insert("kernel".into(), k.kernel.clone().into());
                }
                if self.opts.user {
                    m.insert("user".into(), k.user.clone().into());
                }
                m.insert(count_name.into(), (*n).into());
                serde_json::Value::Object(m)
            })
            .collect()
    }

    /// `stacks` folded, one a line, outermost frame first.
    /// Stacks that fold alike (per thread, where the thread ID is left
    /// out) are one line, their counts added; the order stays least first.
    pub fn folded(&self, stacks: &[(&StackKey, u64)]) -> Vec<String> {
        let mut lines: Vec<(Vec<String>, u64)> = Vec::new();
        let mut at: HashMap<Vec<String>, usize> = HashMap::new();
        for (k, n) in stacks {
            let mut frames = Vec::new();
            match (&k.comm, k.pid) {
                (Some(c), Some(_)) if self.opts.per_thread => frames.push(c.clone()),
                (Some(c), Some(p)) => frames.push(format!("{c}-{p}")),
                (Some(c), None) => frames.push(c.clone()),
                _ => {}
            }
            frames.extend(k.user.iter().rev().cloned());
            if self.opts.delimited && self.opts.kernel && self.opts.user {
                frames.push("-".into());
            }
            frames.extend(k.kernel.iter().rev().cloned());
            match at.get(&frames) {
                Some(&i) => lines[i].1 += n,
                None => {
                    at.insert(frames.clone(), lines.len());
                    lines.push((frames, *n));
                }
            }
        }
        lines.sort_by_key(|(_, n)| *n);
        lines
            .iter()
            .map(|(f, n)| flame::folded_line(f, *n))
            .collect()
    }
}

/// User frames of `tgid`. Maps read too early (before an exec, or before
/// the libraries were loaded) are read again once when no frame falls in
/// any file.
pub fn user_frames(users: &mut UserSymbols, tgid: u32, addrs: &[u64]) -> Vec<Frame> {
    let mut frames: Vec<Frame> = addrs.iter().map(|&a| users.lookup(tgid, a)).collect();
    if !frames.is_empty() && frames.iter().all(|f| f.object.is_none()) {
        users.forget(tgid);
        frames = addrs.iter().map(|&a| users.lookup(tgid, a)).collect();
    }
    frames
}

/// A user frame as stackcount shows it: the function (with `addresses`,
/// `0xADDR func+0xOFF (file)`); unresolved, the address and its file.
pub fn user_frame(f: &Frame, addresses: bool) -> String {
    match (&f.function, &f.object) {
        (Some(func), Some(obj)) if addresses => {
            format!("{:#x} {func}+{:#x} ({obj})", f.addr, f.offset)
        }
        (Some(func), _) => func.clone(),
        (None, Some(obj)) => format!("{:#x} ({obj})", f.addr),
        (None, None) => format!("{:#x} [unknown]", f.addr),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracepoint_frames_are_known() {
        assert!(tracing_frame("trace_event_raw_event_sched_switch"));
        assert!(tracing_frame("__traceiter_sched_switch"));
        assert!(!tracing_frame("__schedule"));
        assert!(!tracing_frame("trace_call_bpf"));
    }

    #[test]
    fn user_frames_show_names_or_address_and_file() {
        let f = Frame {
            addr: 0x5000,
            function: Some("path_a".into()),
            offset: 0x12,
            object: Some("/tmp/prog".into()),
        };
        assert_eq!(user_frame(&f, false), "path_a");
        assert_eq!(user_frame(&f, true), "0x5000 path_a+0x12 (/tmp/prog)");
        let g = Frame {
            function: None,
            ..f.clone()
        };
        assert_eq!(user_frame(&g, false), "0x5000 (/tmp/prog)");
        let h = Frame { object: None, ..g };
        assert_eq!(user_frame(&h, false), "0x5000 [unknown]");
    }
}
