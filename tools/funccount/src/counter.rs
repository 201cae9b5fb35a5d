//! What a run counts while it streams: records from the binary buffer (the
//! function tracer's by address, other events by id), the profiler's and
//! `kprobe_profile`'s counters, and each summary printed from them.

use crate::counts::{self, AddrNames, Cumulative, IpCounts};
use crate::method::Method;
use crate::profiler::{self, Profiler};
use ftrace_common::app::output::Output;
use ftrace_common::buffer::reader::Item;
use ftrace_common::kernel::tracefs::Tracefs;
use ftrace_common::{Flow, Result};
use std::collections::{HashMap, HashSet};

/// Counts coming from the binary buffer.
#[derive(Default)]
pub struct BufferCounts {
    /// ftrace:function, by address.
    pub fn_id: Option<u16>,
    pub ip_offset: usize,
    ips: IpCounts,
    /// Other events by id: slot in `names`/`counts`.
    slots: HashMap<u16, usize>,
    names: Vec<String>,
    counts: Vec<u64>,
    /// Records read, and those of no event counted here.
    pub events: u64,
    pub other: u64,
    /// Lost events the sub-buffers reported.
    lost: u64,
    lost_unknown: bool,
}

impl BufferCounts {
    /// Counts the records of event `id` as `name`.
    pub fn add_event(&mut self, id: u16, name: String) {
        let slot = self.names.len();
        self.names.push(name);
        self.counts.push(0);
        self.slots.insert(id, slot);
    }

    /// Counts one item of the reader.
    pub fn item(&mut self, item: Item) -> Flow {
        match item {
            Item::Event(ev) => {
                self.events += 1;
                if Some(ev.id) == self.fn_id {
                    let o = self.ip_offset;
                    if let Some(b) = ev.data.get(o..o + 8) {
                        let ip = u64::from_ne_bytes(b.try_into().unwrap_or([0; 8]));
                        self.ips.add(ip);
                    }
                } else if let Some(&s) = self.slots.get(&ev.id) {
                    self.counts[s] += 1;
                } else {
                    self.other += 1;
                }
            }
            Item::Lost(_, Some(n)) => self.lost += n,
            Item::Lost(_, None) => self.lost_unknown = true,
        }
        Flow::Continue
    }
}

/// Everything counted, and how to turn it into one interval's rows.
pub struct Counter {
    pub buf: BufferCounts,
    addr_names: Option<AddrNames>,
    /// The kernel functions counted, by name.
    wanted: Vec<String>,
    prof: Cumulative,
    /// With kprobes counted by the kernel: their counters, and the
    /// function of each event.
    pub kprobes: Option<(Cumulative, HashMap<String, String>)>,
    /// Lost events already reported.
    lost_reported: u64,
}

impl Counter {
    pub fn new(wanted: Vec<String>) -> Counter {
        Counter {
            buf: BufferCounts::default(),
            addr_names: None,
            wanted,
            prof: Cumulative::default(),
            kprobes: None,
            lost_reported: 0,
        }
    }

    /// The counts since the last call, by name.
    fn take(&mut self, tfs: &Tracefs, prof: Option<&Profiler>) -> Result<HashMap<String, u64>> {
        let mut out: HashMap<String, u64> = HashMap::new();
        if !self.buf.ips.is_empty() {
            let names = self.addr_names.get_or_insert_with(|| {
                let text = std::fs::read_to_string("/proc/kallsyms").unwrap_or_default();
                let wanted: HashSet<&str> = self.wanted.iter().map(String::as_str).collect();
                AddrNames::parse(&text, &wanted)
            });
            for (ip, n) in self.buf.ips.take() {
                let name = names
                    .lookup(ip)
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("{ip:#x}"));
                *out.entry(name).or_insert(0) += n;
            }
        }
        for (name, n) in self.buf.names.iter().zip(self.buf.counts.iter_mut()) {
            if *n > 0 {
                *out.entry(name.clone()).or_insert(0) += *n;
                *n = 0;
            }
        }
        if let Some(p) = prof {
            for (name, n) in self.prof.delta(p.counts()?) {
                let name = profiler::full_name(&name, &self.wanted);
                *out.entry(name).or_insert(0) += n;
            }
        }
        if let Some((cum, map)) = &mut self.kprobes {
            let all = counts::parse_kprobe_profile(&tfs.read("kprobe_profile")?);
            let ours: HashMap<String, u64> = all
                .into_iter()
                .filter_map(|(ev, n)| map.get(&ev).map(|f| (f.clone(), n)))
                .collect();
            for (name, n) in cum.delta(ours) {
                *out.entry(name).or_insert(0) += n;
            }
        }
        Ok(out)
    }

    /// Prints the summary of the counts since the last one, after a warning
    /// of the events lost meanwhile. `kernel_lost`: at the end, the
    /// kernel's count of the whole run, where the sub-buffers could not say.
    pub fn summary(
        &mut self,
        tfs: &Tracefs,
        prof: Option<&Profiler>,
        kernel_lost: Option<u64>,
        printer: &mut Printer,
    ) -> Result<Flow> {
        let counts = self.take(tfs, prof)?;
        let total = self.buf.lost.max(kernel_lost.unwrap_or(0));
        let lost = total.saturating_sub(self.lost_reported);
        self.lost_reported = total;
        if lost > 0 {
            eprintln!(
                "funccount: LOST {lost} events: the counts above are low by that much; use a larger -b/--buffer-kb or fewer functions"
            );
        } else if self.buf.lost_unknown {
            eprintln!("funccount: events were LOST (the kernel did not say how many): the counts above are low");
        }
        Ok(printer.summary(counts, lost))
    }
}

/// Prints summaries: perf-tools' table, or a JSON line each.
pub struct Printer {
    pub out: Output,
    json: bool,
    top: Option<usize>,
    timestamp: bool,
    method: Option<Method>,
    seq: u64,
}

impl Printer {
    pub fn new(json: bool, top: Option<usize>, timestamp: bool, method: Option<Method>) -> Printer {
        Printer {
            out: Output::new(),
            json,
            top,
            timestamp,
            method,
            seq: 0,
        }
    }

    fn summary(&mut self, counts: HashMap<String, u64>, lost: u64) -> Flow {
        self.seq += 1;
        let rows = counts::sorted_rows(counts);
        let rows = counts::top(&rows, self.top);
        let date = self.timestamp.then(ftrace_common::app::output::date_now);
        let flow = if self.json {
            let list: Vec<serde_json::Value> = rows
                .iter()
                .map(|(f, n)| serde_json::json!({"func": f, "count": n}))
                .collect();
            let mut v = serde_json::json!({
                "summary": self.seq,
                "method": self.method.map(Method::name),
                "counts": list,
                "lost": lost,
            });
            if let Some(d) = date {
                v["date"] = serde_json::Value::String(d);
            }
            self.out.json(&v)
        } else {
            self.out.text(&counts::render(rows, date.as_deref()))
        };
        if flow == Flow::Stop {
            return Flow::Stop;
        }
        self.out.flush()
    }
}
