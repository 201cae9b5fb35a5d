//! opensnoop's sink: each call's entry, path and return paired per
//! thread, and shown as a line or a JSON object; and the kprobes that copy
//! paths in the kernel.

use crate::flags;
use ftrace_common::app::output::{ts_secs, Output, TimeColumn};
use ftrace_common::app::snoop::{Names, Open, Pending, SnoopSink, SyscallRegs, Syscalls};
use ftrace_common::base::glob::NameMatch;
use ftrace_common::buffer::format::{EventFormat, Field};
use ftrace_common::buffer::reader::Event;
use ftrace_common::kernel::proc;
use ftrace_common::Flow;

/// The longest path read from a process (the kernel's PATH_MAX).
const PATH_MAX: usize = 4096;

/// The kprobe (as `k:` EVENT text) copying call `c`'s path, and for
/// openat2 its flags (the first member of `struct open_how`), from the
/// registers the call's wrapper was given.
pub fn path_probe(regs: &SyscallRegs, c: &str) -> Option<String> {
    let (path, how) = match c {
        "open" | "creat" => (0, None),
        "openat" => (1, None),
        "openat2" => (1, Some(2)),
        _ => return None,
    };
    let mut d = format!("k:{} path=+0({}):ustring", regs.function(c), regs.arg(path));
    if let Some(h) = how {
        d.push_str(&format!(" how_flags=+0({}):x64", regs.arg(h)));
    }
    Some(d)
}

/// Whether bytes read from a process afterwards can be the path it
/// passed: not empty, UTF-8, no control characters.
fn plausible(p: &[u8]) -> bool {
    !p.is_empty() && std::str::from_utf8(p).is_ok_and(|s| !s.chars().any(char::is_control))
}

/// Where paths come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathsFrom {
    /// Copied by a kprobe in the kernel.
    Kernel,
    /// Read from the process afterwards (`--paths user`), best effort.
    Process,
    /// Nowhere: the kernel cannot copy them, and best effort was not asked.
    Nowhere,
}

/// One call's decoders.
pub struct Call {
    name: &'static str,
    filename: Field,
    /// open and openat's `flags`.
    flags: Option<Field>,
    /// openat2's `how`.
    how: Option<Field>,
    /// The kprobe's `path` and `how_flags`.
    path: Option<Field>,
    how_flags: Option<Field>,
}

impl Call {
    /// From the formats of the call's entry and probe.
    pub fn new(
        name: &'static str,
        enter: &EventFormat,
        probe: Option<&EventFormat>,
    ) -> ftrace_common::Result<Call> {
        Ok(Call {
            name,
            // creat(2) calls it `pathname`.
            filename: match enter.field("pathname") {
                Some(f) => f.clone(),
                None => enter.require("filename")?.clone(),
            },
            flags: enter.field("flags").cloned(),
            how: enter.field("how").cloned(),
            path: probe.map(|p| p.require("path").cloned()).transpose()?,
            how_flags: probe.and_then(|p| p.field("how_flags").cloned()),
        })
    }
}

/// What to show.
pub struct Filters {
    pub name: Option<NameMatch>,
    pub flags: Vec<i32>,
    pub path: Option<regex::Regex>,
    pub failed: bool,
}

/// What a call keeps between its entry and its return.
pub struct Opening {
    flags: Option<i64>,
    path: Option<Vec<u8>>,
}

/// Pairs the events of each call per thread and prints it.
pub struct Snoop {
    pub names: Names,
    pub syscalls: Syscalls,
    pub calls: Vec<Call>,
    pub pending: Pending<Opening>,
    pub filters: Filters,
    /// Where paths come from.
    pub paths: PathsFrom,
    pub extended: bool,
    pub time: Option<TimeColumn>,
    pub json: bool,
    pub out: Output,
}

impl Snoop {
    /// The column headers (none for JSON).
    fn columns(&mut self) -> Flow {
        if self.json {
            return Flow::Continue;
        }
        let mut h = String::new();
        if let Some(t) = &self.time {
            h.push_str(&t.header());
            h.push(' ');
        }
        h.push_str(&format!(
            "{:<7} {:<16} {:>3} {:>3} ",
            "PID", "COMM", "FD", "ERR"
        ));
        if self.extended {
            h.push_str(&format!("{:<24} ", "FLAGS"));
        }
        h.push_str(match self.paths {
            PathsFrom::Process => "PATH*",
            _ => "PATH",
        });
        self.out.line(&h)
    }
}

impl SnoopSink for Snoop {
    type Call = Opening;

    fn syscalls(&self) -> &Syscalls {
        &self.syscalls
    }

    fn pending(&mut self) -> &mut Pending<Opening> {
        &mut self.pending
    }

    fn other(&mut self, ev: &Event) -> bool {
        self.names.exec(ev)
    }

    fn enter(&mut self, i: usize, ev: &Event) {
        let c = &self.calls[i];
        let mut flags = match c.name {
            "creat" => Some((libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC) as i64),
            _ => c.flags.as_ref().and_then(|f| f.i64(ev.data)),
        };
        let mut path = None;
        if self.paths == PathsFrom::Process {
            // Best effort: the process may have moved on or exited.
            let tid = ev.pid as u32;
            if let Some(p) = c.filename.u64(ev.data) {
                // What was read afterwards may be memory reused since:
                // only text that can be a path is shown as one.
                path = proc::read_user_string(tid, p, PATH_MAX).filter(|p| plausible(p));
            }
            if let Some(h) = c.how.as_ref().and_then(|h| h.u64(ev.data)) {
                let mut b = [0u8; 8];
                if proc::read_user(tid, h, &mut b) == Ok(8) {
                    flags = Some(u64::from_ne_bytes(b) as i64);
                }
            }
        }
        // A name for the opener while it lives (it may exit soon).
        let _ = self.names.get(ev.pid);
        self.pending.enter(ev, i, Opening { flags, path });
    }

    fn probe(&mut self, i: usize, ev: &Event) {
        let c = &self.calls[i];
        if let Some(o) = self.pending.get_mut(ev.pid, i).map(|o| &mut o.data) {
            o.path = c.path.as_ref().and_then(|f| f.bytes(ev.data)).map(|b| {
                let end = b.iter().position(|&x| x == 0).unwrap_or(b.len());
                b[..end].to_vec()
            });
            if let Some(f) = c.how_flags.as_ref().and_then(|f| f.i64(ev.data)) {
                o.flags = Some(f);
            }
        }
    }

    fn show(&mut self, tid: i32, o: Open<Opening>, ret: i64) -> Flow {
        let (ts, call, o) = (o.ts, self.calls[o.call].name, o.data);
        let f = &self.filters;
        if f.failed && ret >= 0 {
            return Flow::Continue;
        }
        if !f.flags.is_empty() {
            let Some(fl) = o.flags else {
                return Flow::Continue;
            };
            if !f.flags.iter().any(|w| flags::has(fl, *w)) {
                return Flow::Continue;
            }
        }
        let path = o
            .path
            .as_deref()
            .map(|p| String::from_utf8_lossy(p).into_owned());
        if let Some(re) = &f.path {
            if !path.as_deref().is_some_and(|p| re.is_match(p)) {
                return Flow::Continue;
            }
        }
        let comm = self.names.get(tid);
        if let Some(n) = &self.filters.name {
            if !n.matches(&comm) {
                return Flow::Continue;
            }
        }
        let (fd, err) = if ret < 0 { (-1, -ret) } else { (ret, 0) };
        if self.json {
            let v = serde_json::json!({
                "ts": ts_secs(ts),
                "pid": tid,
                "comm": comm,
                "call": call,
                "fd": fd,
                "err": err,
                "flags": o.flags,
                "flag_names": o.flags.map(flags::names),
                "path": path,
                "path_from": match self.paths {
                    PathsFrom::Kernel => Some("kernel"),
                    PathsFrom::Process => Some("process (best effort)"),
                    PathsFrom::Nowhere => None,
                },
            });
            return self.out.json(&v);
        }
        let mut line = String::new();
        if let Some(t) = &self.time {
            line.push_str(&t.cell(ts));
            line.push(' ');
        }
        line.push_str(&format!("{tid:<7} {comm:<16} {fd:>3} {err:>3} "));
        if self.extended {
            let names = o.flags.map(flags::names).unwrap_or_else(|| "?".into());
            line.push_str(&format!("{names:<24} "));
        }
        let p = match self.paths {
            PathsFrom::Nowhere => "-".into(),
            _ => path.unwrap_or_else(|| "?".into()),
        };
        // One line per call, whatever the path holds.
        for ch in p.chars() {
            if ch.is_control() {
                line.extend(ch.escape_default());
            } else {
                line.push(ch);
            }
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
