//! execsnoop's sink: each call's entry, probe, exec and return paired per
//! thread, the parents from the forks, and each call shown as a line or a
//! JSON object; and the kprobes that copy the arguments in the kernel.

use ftrace_common::app::output::{ts_secs, Output, TimeColumn};
use ftrace_common::app::snoop::{Names, Open, Pending, SnoopSink, SyscallRegs, Syscalls};
use ftrace_common::base::glob::NameMatch;
use ftrace_common::buffer::format::{EventFormat, Field};
use ftrace_common::buffer::reader::Event;
use ftrace_common::kernel::proc;
use ftrace_common::Flow;
use std::collections::{HashMap, HashSet};

/// The longest path or argument read from a process.
const ARG_MAX: usize = 4096;
/// Forks remembered (child to parent) before the oldest are forgotten.
const PARENTS_MAX: usize = 1 << 16;

/// The kprobe (as `k:` EVENT text) copying call `c`'s path and arguments
/// 1 to `max` + 1 (one more, to know whether any were cut) from the
/// registers its wrapper was given: `+0(+u8(ARGV)):ustring` is argv[1].
pub fn args_probe(regs: &SyscallRegs, c: &str, max: usize) -> String {
    let (path, argv) = if c == "execveat" { (1, 2) } else { (0, 1) };
    let mut d = format!(
        "k:{} filename=+0({}):ustring",
        regs.function(c),
        regs.arg(path)
    );
    for k in 1..=max + 1 {
        d.push_str(&format!(
            " a{k}=+0(+u{}({})):ustring",
            8 * k,
            regs.arg(argv)
        ));
    }
    d
}

/// A user ID from a number or a name (getpwnam_r).
pub fn user_id(u: &str) -> Option<u32> {
    if let Ok(n) = u.parse() {
        return Some(n);
    }
    let name = std::ffi::CString::new(u).ok()?;
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16384];
    let mut out: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: getpwnam_r writes only into pw and buf, of the sizes given.
    let r = unsafe {
        libc::getpwnam_r(
            name.as_ptr(),
            &mut pw,
            buf.as_mut_ptr(),
            buf.len(),
            &mut out,
        )
    };
    (r == 0 && !out.is_null()).then_some(pw.pw_uid)
}

/// Where arguments come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgsFrom {
    /// Copied by a kprobe in the kernel.
    Kernel,
    /// Read from /proc/PID/cmdline (or the caller's memory) afterwards.
    Process,
}

/// One call's decoders.
pub struct Call {
    name: &'static str,
    /// The entry's pointers.
    filename: Field,
    argv: Field,
    /// The kprobe's path and arguments 1 to max + 1.
    probe_filename: Option<Field>,
    probe_args: Vec<Field>,
}

impl Call {
    /// From the formats of the call's entry and probe.
    pub fn new(
        name: &'static str,
        enter: &EventFormat,
        probe: Option<&EventFormat>,
        max: usize,
    ) -> ftrace_common::Result<Call> {
        let mut probe_args = Vec::new();
        if let Some(p) = probe {
            for k in 1..=max + 1 {
                probe_args.push(p.require(&format!("a{k}"))?.clone());
            }
        }
        Ok(Call {
            name,
            filename: enter.require("filename")?.clone(),
            argv: enter.require("argv")?.clone(),
            probe_filename: probe.map(|p| p.require("filename").cloned()).transpose()?,
            probe_args,
        })
    }
}

/// The sched events: execs and forks.
pub struct Sched {
    exec_filename: Field,
    exec_pid: Field,
    exec_old_pid: Field,
    fork: u16,
    parent: Field,
    child: Field,
}

impl Sched {
    /// From the formats of sched_process_exec and sched_process_fork.
    pub fn new(exec: &EventFormat, fork: &EventFormat) -> ftrace_common::Result<Sched> {
        Ok(Sched {
            exec_filename: exec.require("filename")?.clone(),
            exec_pid: exec.require("pid")?.clone(),
            exec_old_pid: exec.require("old_pid")?.clone(),
            fork: fork.id,
            parent: fork.require("parent_pid")?.clone(),
            child: fork.require("child_pid")?.clone(),
        })
    }
}

/// What to show.
pub struct Filters {
    pub name: Option<NameMatch>,
    pub pattern: Option<regex::Regex>,
    pub line: Option<regex::Regex>,
    pub uid: Option<u32>,
    pub failed: bool,
    pub reexecs: bool,
}

/// How to show it.
pub struct Look {
    pub from: ArgsFrom,
    pub max_args: usize,
    pub quote: bool,
    pub uid: bool,
    pub clock: Option<TimeColumn>,
    pub secs: Option<TimeColumn>,
    pub json: bool,
}

/// What a call keeps between its entry and its return.
#[derive(Default)]
pub struct Exec {
    filename_ptr: u64,
    argv_ptr: u64,
    /// The kernel's copy of the path (the exec's, else the probe's).
    filename: Option<String>,
    /// The kernel's copy of the arguments after argv[0].
    args: Option<Vec<String>>,
}

/// Pairs the events of each call per thread and prints it.
pub struct Snoop {
    names: Names,
    syscalls: Syscalls,
    calls: Vec<Call>,
    sched: Sched,
    pending: Pending<Exec>,
    /// Parent thread by child, from the forks.
    parents: HashMap<i32, i32>,
    /// Processes shown exec'ing since their last fork (re-execs).
    seen: HashSet<i32>,
    filters: Filters,
    pub look: Look,
    out: Output,
}

/// NUL-terminated bytes as text.
fn text(b: &[u8]) -> String {
    let end = b.iter().position(|&x| x == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// Whether bytes read from a process afterwards can be an argument: UTF-8
/// without control characters.
fn plausible(p: &[u8]) -> bool {
    std::str::from_utf8(p).is_ok_and(|s| !s.chars().any(char::is_control))
}

/// `PPid:` and the real `Uid:` of a process, from /proc.
fn status(pid: i32) -> (Option<i64>, Option<u32>) {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return (None, None);
    };
    let field = |k: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|v| v.split_whitespace().next())
            .map(str::to_string)
    };
    (
        field("PPid:").and_then(|v| v.parse().ok()),
        field("Uid:").and_then(|v| v.parse().ok()),
    )
}

/// The arguments of a call, as shown.
struct Args {
    path: String,
    args: Vec<String>,
    /// More than were shown.
    more: bool,
    /// Could not be read: the path alone.
    unread: bool,
}

impl Snoop {
    /// A snoop over the run's events.
    pub fn new(
        names: Names,
        syscalls: Syscalls,
        calls: Vec<Call>,
        sched: Sched,
        filters: Filters,
        look: Look,
    ) -> Snoop {
        Snoop {
            names,
            syscalls,
            calls,
            sched,
            pending: Pending::default(),
            parents: HashMap::new(),
            seen: HashSet::new(),
            filters,
            look,
            out: Output::new(),
        }
    }

    fn columns(&mut self) -> Flow {
        if self.look.json {
            return Flow::Continue;
        }
        let mut h = String::new();
        for t in [&self.look.clock, &self.look.secs].into_iter().flatten() {
            h.push_str(&t.header());
            h.push(' ');
        }
        if self.look.uid {
            h.push_str(&format!("{:<6} ", "UID"));
        }
        h.push_str(&format!(
            "{:<16} {:<7} {:<7} {:>3} ",
            "PCOMM", "PID", "PPID", "RET"
        ));
        h.push_str(match self.look.from {
            ArgsFrom::Process => "ARGS*",
            ArgsFrom::Kernel => "ARGS",
        });
        self.out.line(&h)
    }

    fn exec(&mut self, ev: &Event) {
        let s = &self.sched;
        let pid = s.exec_pid.i64(ev.data).unwrap_or(ev.pid as i64) as i32;
        let old = s.exec_old_pid.i64(ev.data).unwrap_or(pid as i64) as i32;
        let filename = s.exec_filename.str(ev.data).map(|f| f.into_owned());
        self.pending.moved(old, pid);
        if let Some(o) = self.pending.any_mut(pid) {
            if filename.is_some() {
                o.data.filename = filename;
            }
        }
    }

    fn fork(&mut self, ev: &Event) {
        let (Some(parent), Some(child)) = (
            self.sched.parent.i64(ev.data),
            self.sched.child.i64(ev.data),
        ) else {
            return;
        };
        if self.parents.len() >= PARENTS_MAX {
            self.parents.clear();
        }
        self.parents.insert(child as i32, parent as i32);
        // perf-tools: a process that forked may exec again and be shown.
        self.seen.remove(&(parent as i32));
    }

    /// The arguments of a call that returned `ret`.
    fn args(&self, tid: i32, e: &Exec, ret: i64) -> Args {
        let max = self.look.max_args;
        let cut = |mut v: Vec<String>| {
            let more = v.len() > max;
            v.truncate(max);
            (v, more)
        };
        if let Some(a) = &e.args {
            let (args, more) = cut(a.clone());
            return Args {
                path: e.filename.clone().unwrap_or_else(|| "?".into()),
                args,
                more,
                unread: false,
            };
        }
        let unread = |path: Option<String>| Args {
            path: path.unwrap_or_else(|| "?".into()),
            args: Vec::new(),
            more: false,
            unread: true,
        };
        if self.look.from == ArgsFrom::Kernel {
            // The probe's event was lost (too long for a buffer page?).
            return unread(e.filename.clone());
        }
        if ret >= 0 {
            let Ok(cmd) = std::fs::read(format!("/proc/{tid}/cmdline")) else {
                return unread(e.filename.clone());
            };
            let mut v: Vec<String> = cmd
                .split(|&b| b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            if cmd.last() == Some(&0) {
                v.pop();
            }
            if v.is_empty() {
                return unread(e.filename.clone());
            }
            // A script's command line is its interpreter's: the
            // arguments follow the script's path, where it is there.
            let at = e
                .filename
                .as_ref()
                .and_then(|f| v.iter().take(3).position(|a| a == f))
                .filter(|&p| p > 0)
                .unwrap_or(0);
            let (args, more) = cut(v.split_off(at + 1));
            return Args {
                path: e.filename.clone().unwrap_or_else(|| v[0].clone()),
                args,
                more,
                unread: false,
            };
        }
        // A failed exec: the caller's memory, as it is now.
        let tid_u = tid as u32;
        let path = proc::read_user_string(tid_u, e.filename_ptr, ARG_MAX)
            .filter(|p| !p.is_empty() && plausible(p))
            .map(|p| text(&p));
        if path.is_none() {
            return unread(None);
        }
        let mut args = Vec::new();
        for k in 1..=max as u64 + 1 {
            let mut b = [0u8; 8];
            if proc::read_user(tid_u, e.argv_ptr + 8 * k, &mut b) != Ok(8) {
                return unread(path);
            }
            let p = u64::from_ne_bytes(b);
            if p == 0 {
                break;
            }
            match proc::read_user_string(tid_u, p, ARG_MAX).filter(|a| plausible(a)) {
                Some(a) => args.push(text(&a)),
                None => return unread(path),
            }
        }
        let (args, more) = cut(args);
        Args {
            path: path.unwrap_or_default(),
            args,
            more,
            unread: false,
        }
    }

    fn quoted(&self, a: &str) -> String {
        let mut s = String::new();
        if self.look.quote {
            s.push('"');
        }
        for ch in a.chars() {
            if self.look.quote && (ch == '"' || ch == '\\') {
                s.push('\\');
                s.push(ch);
            } else if ch.is_control() {
                s.extend(ch.escape_default());
            } else {
                s.push(ch);
            }
        }
        if self.look.quote {
            s.push('"');
        }
        s
    }
}

impl SnoopSink for Snoop {
    type Call = Exec;

    fn syscalls(&self) -> &Syscalls {
        &self.syscalls
    }

    fn pending(&mut self) -> &mut Pending<Exec> {
        &mut self.pending
    }

    /// Execs (which rename and name the program run) and forks.
    fn other(&mut self, ev: &Event) -> bool {
        if self.names.exec(ev) {
            self.exec(ev);
            return true;
        }
        if ev.id == self.sched.fork {
            self.fork(ev);
            return true;
        }
        false
    }

    fn enter(&mut self, i: usize, ev: &Event) {
        let c = &self.calls[i];
        let e = Exec {
            filename_ptr: c.filename.u64(ev.data).unwrap_or(0),
            argv_ptr: c.argv.u64(ev.data).unwrap_or(0),
            ..Exec::default()
        };
        // The caller's name while it lives (a failed exec keeps it).
        let _ = self.names.get(ev.pid);
        self.pending.enter(ev, i, e);
    }

    fn probe(&mut self, i: usize, ev: &Event) {
        let c = &self.calls[i];
        let Some(o) = self.pending.get_mut(ev.pid, i) else {
            return;
        };
        let e = &mut o.data;
        e.filename = c
            .probe_filename
            .as_ref()
            .and_then(|f| f.bytes(ev.data))
            .map(text);
        let mut args = Vec::new();
        for f in &c.probe_args {
            // A fault (the NULL that ends argv) has no bytes at all.
            match f.bytes(ev.data) {
                Some(b) if !b.is_empty() => args.push(text(b)),
                _ => break,
            }
        }
        e.args = Some(args);
    }

    fn show(&mut self, tid: i32, o: Open<Exec>, ret: i64) -> Flow {
        let f = &self.filters;
        if ret < 0 && !f.failed {
            return Flow::Continue;
        }
        if ret >= 0 && !f.reexecs && self.seen.contains(&tid) {
            return Flow::Continue;
        }
        let comm = self.names.get(tid);
        if f.name.as_ref().is_some_and(|n| !n.matches(&comm))
            || f.pattern.as_ref().is_some_and(|p| !p.is_match(&comm))
        {
            return Flow::Continue;
        }
        let need_status =
            self.look.uid || self.look.json || f.uid.is_some() || !self.parents.contains_key(&tid);
        let (st_ppid, uid) = if need_status {
            status(tid)
        } else {
            (None, None)
        };
        if f.uid.is_some() && f.uid != uid {
            return Flow::Continue;
        }
        let a = self.args(tid, &o.data, ret);
        if let Some(re) = &f.line {
            if !re.is_match(&a.path) && !a.args.iter().any(|x| re.is_match(x)) {
                return Flow::Continue;
            }
        }
        if ret >= 0 {
            self.seen.insert(tid);
        }
        let ppid = match self.parents.get(&tid) {
            Some(&p) => Some(proc::tgid(p as u32).map_or(p as i64, |g| g as i64)),
            None => st_ppid,
        };
        let call = self.calls[o.call].name;
        if self.look.json {
            let from = match (self.look.from, a.unread) {
                (_, true) => None,
                (ArgsFrom::Kernel, _) => Some("kernel"),
                (ArgsFrom::Process, _) => Some("process (best effort)"),
            };
            let v = serde_json::json!({
                "ts": ts_secs(o.ts),
                "pid": tid,
                "ppid": ppid,
                "uid": uid,
                "comm": comm,
                "call": call,
                "ret": ret,
                "filename": a.path,
                "args": (!a.unread).then_some(&a.args),
                "args_cut": a.more,
                "args_from": from,
            });
            return self.out.json(&v);
        }
        let mut line = String::new();
        for t in [&self.look.clock, &self.look.secs].into_iter().flatten() {
            line.push_str(&t.cell(o.ts));
            line.push(' ');
        }
        if self.look.uid {
            let u = uid.map_or("?".into(), |u| u.to_string());
            line.push_str(&format!("{u:<6} "));
        }
        let pp = ppid.map_or("?".into(), |p| p.to_string());
        line.push_str(&format!("{comm:<16} {tid:<7} {pp:<7} {ret:>3} "));
        line.push_str(&self.quoted(&a.path));
        for x in &a.args {
            line.push(' ');
            line.push_str(&self.quoted(x));
        }
        if a.more {
            line.push_str(" ...");
        }
        if a.unread {
            line.push_str(" [?]");
        }
        self.out.line(&line)
    }

    fn header(&mut self) -> Flow {
        self.columns()
    }

    fn out(&mut self) -> &mut Output {
        &mut self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_fetches_argv_through_the_saved_registers() {
        let Some(r) = SyscallRegs::ARCH else { return };
        let d = args_probe(&r, "execve", 2);
        if cfg!(target_arch = "x86_64") {
            assert_eq!(
                d,
                "k:__x64_sys_execve filename=+0(+112(%di)):ustring \
                 a1=+0(+u8(+104(%di))):ustring a2=+0(+u16(+104(%di))):ustring \
                 a3=+0(+u24(+104(%di))):ustring"
            );
            assert!(args_probe(&r, "execveat", 1).contains("filename=+0(+104(%di))"));
        }
    }

    #[test]
    fn users_by_number_and_name() {
        assert_eq!(user_id("0"), Some(0));
        assert_eq!(user_id("root"), Some(0));
        assert_eq!(user_id("no-such-user-xyz"), None);
    }
}
