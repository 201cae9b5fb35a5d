//! killsnoop's sink: each call's entry and return paired per thread, and
//! shown as a line or a JSON object.

use ftrace_common::app::output::{ts_secs, Output, TimeColumn};
use ftrace_common::app::snoop::{Names, Open, Pending, SnoopSink, Syscalls};
use ftrace_common::base::glob::NameMatch;
use ftrace_common::buffer::format::Field;
use ftrace_common::buffer::reader::Event;
use ftrace_common::kernel::proc;
use ftrace_common::kernel::signame;
use ftrace_common::Flow;

/// What to show.
pub struct Filters {
    pub name: Option<NameMatch>,
    pub signal: Option<i64>,
    pub failed: bool,
}

/// One call's entry decoders.
pub struct Call {
    pub name: &'static str,
    /// The target's field (`pid`, or `pidfd`).
    pub target: Field,
    /// tgkill's `tgid`.
    pub tgid: Option<Field>,
    pub sig: Field,
}

/// What a call keeps between its entry and its return.
pub struct Sent {
    sig: i64,
    target: String,
    tgid: Option<i64>,
}

/// Pairs entries and returns per thread and prints each call.
pub struct Snoop {
    pub names: Names,
    pub syscalls: Syscalls,
    pub calls: Vec<Call>,
    pub pending: Pending<Sent>,
    /// signal_generate's id and its target field.
    pub generate: Option<(u16, Field)>,
    pub filters: Filters,
    pub sig_names: bool,
    pub time: TimeColumn,
    pub json: bool,
    pub out: Output,
}

impl Snoop {
    /// The column headers (none for JSON).
    fn columns(&mut self) -> Flow {
        if self.json {
            return Flow::Continue;
        }
        self.out.line(&format!(
            "{} {:<7} {:<16} {:<11} {:<7} RESULT",
            self.time.header(),
            "PID",
            "COMM",
            "SIG",
            "TPID"
        ))
    }

    fn sig_text(&self, sig: i64) -> String {
        if self.sig_names {
            signame::name(sig).unwrap_or_else(|| sig.to_string())
        } else {
            sig.to_string()
        }
    }
}

/// The process a pidfd of process `pid` refers to, from its fdinfo.
fn pidfd_target(pid: i32, fd: i64) -> Option<i64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("Pid:"))
        .and_then(|v| v.trim().parse().ok())
}

impl SnoopSink for Snoop {
    type Call = Sent;

    fn syscalls(&self) -> &Syscalls {
        &self.syscalls
    }

    fn pending(&mut self) -> &mut Pending<Sent> {
        &mut self.pending
    }

    /// Execs rename; `signal_generate` gives a pidfd's target.
    fn other(&mut self, ev: &Event) -> bool {
        if self.names.exec(ev) {
            return true;
        }
        let Some((id, pid)) = &self.generate else {
            return false;
        };
        if ev.id != *id {
            return false;
        }
        if let Some(o) = self.pending.any_mut(ev.pid) {
            if self.calls[o.call].name == "pidfd_send_signal" {
                if let Some(p) = pid.i64(ev.data) {
                    o.data.target = p.to_string();
                }
            }
        }
        true
    }

    fn enter(&mut self, i: usize, ev: &Event) {
        let c = &self.calls[i];
        let sig = c.sig.i64(ev.data).unwrap_or(0);
        let raw = c.target.i64(ev.data).unwrap_or(0);
        let target = if c.name == "pidfd_send_signal" {
            // The sender's process: its fd table holds the descriptor.
            let owner = proc::tgid(ev.pid as u32).map_or(ev.pid, |p| p as i32);
            match pidfd_target(owner, raw) {
                Some(p) => p.to_string(),
                None => format!("pidfd:{raw}"),
            }
        } else {
            raw.to_string()
        };
        let tgid = c.tgid.as_ref().and_then(|f| f.i64(ev.data));
        // A name for the sender while it lives (it may exit soon).
        let _ = self.names.get(ev.pid);
        self.pending.enter(ev, i, Sent { sig, target, tgid });
    }

    fn show(&mut self, tid: i32, o: Open<Sent>, ret: i64) -> Flow {
        let (ts, call, o) = (o.ts, self.calls[o.call].name, o.data);
        if self.filters.failed && ret >= 0 {
            return Flow::Continue;
        }
        if self.filters.signal.is_some_and(|s| s != o.sig) {
            return Flow::Continue;
        }
        let comm = self.names.get(tid);
        if let Some(n) = &self.filters.name {
            if !n.matches(&comm) {
                return Flow::Continue;
            }
        }
        if self.json {
            let mut v = serde_json::json!({
                "ts": ts_secs(ts),
                "pid": tid,
                "comm": comm,
                "call": call,
                "sig": o.sig,
                "signame": signame::name(o.sig),
                "tpid": o.target,
                "result": ret,
            });
            if let Some(g) = o.tgid {
                v["tgid"] = g.into();
            }
            return self.out.json(&v);
        }
        let time = self.time.cell(ts);
        let line = format!(
            "{time} {tid:<7} {comm:<16} {:<11} {:<7} {ret}",
            self.sig_text(o.sig),
            o.target
        );
        self.out.line(&line)
    }

    fn header(&mut self) -> Flow {
        self.columns()
    }

    fn out(&mut self) -> &mut Output {
        &mut self.out
    }
}
