//! sslsniff's sink: each call's entry and return paired per thread
//! (`probes::pair`), its bytes read from the process at the return, and
//! shown in bcc's form or as JSON (`probes::tls`).

use ftrace_common::app::output::Output;
use ftrace_common::app::printer::Execs;
use ftrace_common::app::stream::Sink;
use ftrace_common::buffer::format::Field;
use ftrace_common::buffer::reader::Event;
use ftrace_common::kernel::proc::CommCache;
use ftrace_common::probes::pair::{PairOut, Pairs};
use ftrace_common::probes::tls::{self, Call, Data, Dir, Hook, Show, Tasks};
use ftrace_common::Flow;
use std::collections::HashMap;

/// What to show.
pub struct Filters {
    /// `-u`.
    pub uid: Option<u32>,
    /// `-c`.
    pub comm: Option<String>,
}

/// One traced function: how its return reads.
pub struct Slot {
    pub hook: Hook,
    /// The return value's field.
    pub ret: Field,
    /// `_ex` forms: the stack pointer and the caller's frame at the
    /// return.
    pub frame: Option<(Field, Field)>,
}

pub struct Sniff {
    pub execs: Option<Execs>,
    slots: Vec<Slot>,
    /// Event id: the slot, and whether it is the return.
    ids: HashMap<u16, (usize, bool)>,
    pairs: Pairs,
    comms: CommCache,
    /// Per thread: (real UID, process).
    pub tasks: Tasks,
    filters: Filters,
    show: Show,
    max: usize,
    json: bool,
    /// The first call's time stamp: TIME(s) counts from it.
    start: Option<u64>,
    pub out: Output,
}

impl Sniff {
    pub fn new(
        comms: CommCache,
        filters: Filters,
        show: Show,
        max: usize,
        json: bool,
        out: Output,
    ) -> Sniff {
        Sniff {
            execs: None,
            slots: Vec::new(),
            ids: HashMap::new(),
            pairs: Pairs::default(),
            comms,
            tasks: Tasks::default(),
            filters,
            show,
            max,
            json,
            start: None,
            out,
        }
    }

    /// A kind of function's slot, the entry and return event ids, and the
    /// pairing. Every kind shares the one entry event (pairing index 0): a
    /// thread's calls nest, so a return belongs to its latest entry.
    pub fn add(&mut self, slot: Slot, (entry, ret): (u16, u16), out: PairOut) {
        let k = self.slots.len();
        self.slots.push(slot);
        self.ids.insert(entry, (usize::MAX, false));
        self.ids.insert(ret, (k, true));
        self.pairs.add(0, k + 1, out);
    }

    pub fn header(&mut self) -> Flow {
        self.out
            .line(&tls::header(self.show.extra, self.show.latency))
    }

    /// One line for stderr when pairing missed calls.
    pub fn pair_note(&self) -> Option<String> {
        let p = &self.pairs;
        (p.unpaired + p.dropped > 0).then(|| {
            format!(
                "{} return(s) not shown for want of their entry (begun before tracing, or lost), {} entr(ies) dropped (lost events, threads gone)",
                p.unpaired, p.dropped
            )
        })
    }

    fn ret(&mut self, k: usize, ev: &Event) -> Flow {
        let Some((ts0, vals)) = self.pairs.entry() else {
            return Flow::Continue;
        };
        let arg = |n: u32| vals.iter().find(|(m, _)| *m == n).map_or(0, |(_, v)| *v);
        let slot = &self.slots[k];
        let hook = slot.hook;
        let ret = slot.ret.i64(ev.data).unwrap_or(0);
        let tid = ev.pid;
        let ids = self.tasks.get(tid);
        let process = ids.map(|(_, p)| p);
        let frame = slot
            .frame
            .as_ref()
            .and_then(|(sp, fr)| tls::from_frame(fr.bytes(ev.data)?, sp.u64(ev.data)?, arg(4)));
        let Some(len) = tls::moved(hook.len, ret, || {
            if let Some(v) = frame.filter(|&v| v != 0) {
                return Some(v);
            }
            let mut b = [0u8; 8];
            match tls::read_task(tid, process, arg(4), &mut b) {
                Ok(8) => Some(u64::from_ne_bytes(b)),
                _ => None,
            }
        }) else {
            return Flow::Continue;
        };
        let comm = self.comms.get(tid).to_string();
        if self.filters.comm.as_ref().is_some_and(|c| *c != comm) {
            return Flow::Continue;
        }
        if let Some(u) = self.filters.uid {
            if ids.map(|(uid, _)| uid) != Some(u) {
                return Flow::Continue;
            }
        }
        let data = match hook.dir {
            Dir::Handshake => Data::Nothing,
            _ => tls::read(tid, process, arg(2), len, self.max),
        };
        let start = *self.start.get_or_insert(ev.ts);
        let call = Call {
            dir: hook.dir,
            time: ev.ts.saturating_sub(start) as f64 / 1e9,
            comm,
            pid: ids.map_or(tid as u32, |(_, p)| p),
            tid: tid as u32,
            uid: ids.map(|(u, _)| u),
            len,
            lat_ns: (ts0 > 0).then(|| ev.ts.saturating_sub(ts0)),
            data,
        };
        if self.json {
            self.out.json(&tls::json(&call, self.show))
        } else {
            self.out.line(&tls::text(&call, self.show))
        }
    }
}

impl Sink for Sniff {
    fn event(&mut self, ev: &Event) -> Flow {
        if self
            .execs
            .as_ref()
            .is_some_and(|x| x.rename(ev, &mut self.comms))
        {
            return Flow::Continue;
        }
        if self.tasks.take(ev) {
            return Flow::Continue;
        }
        let Some(&(k, is_ret)) = self.ids.get(&ev.id) else {
            return Flow::Continue;
        };
        if !is_ret {
            // Names and ids while the thread surely lives.
            let _ = self.comms.get(ev.pid);
            let _ = self.tasks.get(ev.pid);
            self.pairs.take_at(0, ev.pid, ev.ts, ev.data);
            return Flow::Continue;
        }
        if self.pairs.take_at(k + 1, ev.pid, ev.ts, ev.data) {
            return Flow::Continue;
        }
        self.ret(k, ev)
    }

    fn lost(&mut self, _cpu: u32, _count: Option<u64>) -> Flow {
        self.pairs.lost();
        Flow::Continue
    }

    fn round_end(&mut self) -> Flow {
        // Calls may be rare: notice a closed pipe without one.
        if self.out.reader_gone() {
            return Flow::Stop;
        }
        self.out.flush()
    }
}
