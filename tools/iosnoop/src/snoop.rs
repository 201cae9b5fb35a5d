//! iosnoop's sink: block events paired into I/Os (through `block::Tracker`),
//! filtered, and shown one line per I/O, as JSON, or as latency histograms.

use ftrace_common::app::blockio::{Dec, Devs, Role};
use ftrace_common::app::output::{ts_secs, Log2Hist, Output};
use ftrace_common::app::stream::{now_mono_ns, Sink, Summary};
use ftrace_common::base::glob::{Glob, NameMatch};
use ftrace_common::buffer::reader::Event;
use ftrace_common::kernel::block::{self, DevSel, Done, Tracker};
use ftrace_common::kernel::proc;
use ftrace_common::Flow;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

pub struct Filters {
    pub dev: Option<DevSel>,
    pub iotype: Option<Glob>,
    pub pid: Option<u32>,
    pub name: Option<NameMatch>,
    pub min_ns: u64,
}

/// `saved_tgids`: lines of `TID TGID`.
pub fn parse_saved_tgids(text: &str) -> HashMap<i32, u32> {
    text.lines()
        .filter_map(|l| {
            let (a, b) = l.split_once(' ')?;
            Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
        })
        .filter(|&(_, tgid): &(i32, u32)| tgid > 0)
        .collect()
}

pub struct Snoop {
    pub decs: Vec<Dec>,
    pub partial: bool,
    pub tracker: Tracker,
    pub devs: Devs,
    pub filters: Filters,
    pub out: Output,
    pub queued: bool,
    pub start: bool,
    pub end: bool,
    pub queue_column: bool,
    pub disk_names: bool,
    pub json: bool,
    /// Histograms per disk (0: all disks), in --hist mode.
    pub hist: Option<BTreeMap<u32, Log2Hist>>,
    pub per_disk: bool,
    pub tgids: HashMap<i32, Option<u32>>,
    pub saved_tgids: Option<std::path::PathBuf>,
    pub saved: HashMap<i32, u32>,
    pub saved_read: Option<Instant>,
    pub line: String,
    pub shown: u64,
    pub undecodable: u64,
    pub last_expire: Instant,
    pub lost_pending: u64,
    pub lost_warned: Option<Instant>,
    /// Reading a file (--read): "now" is its last event's time, and its
    /// tasks are not this machine's.
    pub offline: bool,
    pub last_ts: u64,
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

impl Snoop {
    pub fn header(&mut self) {
        self.line.clear();
        if self.start {
            let _ = write!(self.line, "{:<14} ", "STARTs");
        }
        if self.end {
            let _ = write!(self.line, "{:<14} ", "ENDs");
        }
        let _ = write!(
            self.line,
            "{:<16} {:<6} {:<4} {:<8} {:<12} {:<6}",
            "COMM", "PID", "TYPE", "DEV", "BLOCK", "BYTES"
        );
        if self.queue_column {
            let _ = write!(self.line, " {:>8}", "QUEms");
        }
        let _ = write!(self.line, " {:>8}", "LATms");
        self.out.line(&self.line);
    }

    /// The process of a thread: from /proc while it lives, else from the
    /// kernel's `saved_tgids` (filled because our instance has
    /// `record-tgid` on), re-read at most every 50 ms.
    fn tgid(&mut self, tid: i32) -> Option<u32> {
        if tid <= 0 {
            return None;
        }
        if let Some(&t) = self.tgids.get(&tid) {
            return t;
        }
        let mut t = if self.offline {
            None
        } else {
            proc::tgid(tid as u32)
        };
        if t.is_none() {
            if let Some(path) = &self.saved_tgids {
                let due = self
                    .saved_read
                    .map(|r| r.elapsed() >= Duration::from_millis(50))
                    .unwrap_or(true);
                if due && !self.saved.contains_key(&tid) {
                    self.saved =
                        parse_saved_tgids(&std::fs::read_to_string(path).unwrap_or_default());
                    self.saved_read = Some(Instant::now());
                }
                t = self.saved.get(&tid).copied();
            }
        }
        self.tgids.insert(tid, t);
        t
    }

    /// Applies the filters; the latency to show if the I/O passes.
    fn keep(&mut self, d: &Done) -> Option<u64> {
        let lat = if self.queued {
            d.total_ns()
        } else {
            d.device_ns()
        }?;
        if lat < self.filters.min_ns {
            return None;
        }
        if let Some(sel) = &self.filters.dev {
            if !sel.matches(d.req.dev, d.req.block) {
                return None;
            }
        }
        if let Some(g) = &self.filters.iotype {
            if !g.matches(&d.req.rwbs.as_str()) {
                return None;
            }
        }
        if let Some(n) = &self.filters.name {
            if !n.matches(&d.req.comm.as_str()) {
                return None;
            }
        }
        if let Some(p) = self.filters.pid {
            if d.req.tid as u32 != p && self.tgid(d.req.tid) != Some(p) {
                return None;
            }
        }
        Some(lat)
    }

    fn emit(&mut self, d: Done) -> Flow {
        let Some(lat) = self.keep(&d) else {
            return Flow::Continue;
        };
        self.shown += 1;
        if let Some(h) = self.hist.as_mut() {
            let key = if self.per_disk { d.req.dev } else { 0 };
            h.entry(key).or_default().add(lat / 1000);
            return Flow::Continue;
        }
        if self.json {
            let pid = self.tgid(d.req.tid);
            let v = serde_json::json!({
                "comm": d.req.comm.as_str(),
                "pid": pid,
                "tid": d.req.tid,
                "type": d.req.rwbs.as_str(),
                "dev": block::dev_text(d.req.dev),
                "disk": self.devs.name(d.req.dev, d.req.block),
                "block": d.req.block,
                "bytes": d.req.bytes,
                "start_ns": d.t_begin(),
                "end_ns": d.t_done,
                "lat_ms": ms(lat),
                "queue_ms": d.queue_ns().map(ms),
                "device_ms": d.device_ns().map(ms),
            });
            return self.out.json(&v);
        }
        self.line.clear();
        if self.start {
            // Where LATms starts, so that ENDs - STARTs = LATms.
            let _ = write!(self.line, "{:<14} ", ts_secs(d.t_done - lat));
        }
        if self.end {
            let _ = write!(self.line, "{:<14} ", ts_secs(d.t_done));
        }
        let comm = d.req.comm.as_str();
        let comm: String = comm.chars().take(16).collect();
        let dev = match self
            .disk_names
            .then(|| self.devs.name(d.req.dev, d.req.block))
        {
            Some(Some(n)) => n.to_string(),
            _ => block::dev_text(d.req.dev),
        };
        let _ = write!(
            self.line,
            "{:<16} {:<6} {:<4} {:<8} {:<12} {:<6}",
            comm,
            d.req.tid,
            d.req.rwbs.as_str(),
            dev,
            d.req.block,
            d.req.bytes
        );
        if self.queue_column {
            match d.queue_ns() {
                Some(q) => {
                    let _ = write!(self.line, " {:>8.2}", ms(q));
                }
                None => {
                    let _ = write!(self.line, " {:>8}", "-");
                }
            }
        }
        let _ = write!(self.line, " {:>8.2}", ms(lat));
        self.out.line(&self.line)
    }

    pub fn hist_has_data(&self) -> bool {
        self.hist
            .as_ref()
            .map(|h| h.values().any(|x| x.total() > 0))
            .unwrap_or(false)
    }

    pub fn print_hist(&mut self) {
        let Some(mut all) = self.hist.take() else {
            return;
        };
        // Nothing traced: one empty histogram, so that the output says so.
        let per_disk = self.per_disk && !all.is_empty();
        if all.is_empty() {
            all.insert(0, Log2Hist::new());
        }
        for (disk, hist) in &all {
            let (name, dev) = if per_disk {
                (
                    self.devs.name(*disk, 0).map(str::to_string),
                    Some(block::dev_text(*disk)),
                )
            } else {
                (None, None)
            };
            if self.json {
                let v = serde_json::json!({
                    "disk": name, "dev": dev, "unit": "usecs",
                    "total": hist.total(), "buckets": hist.to_json(),
                });
                self.out.json(&v);
            } else {
                if let Some(dev) = &dev {
                    let n = name.clone().unwrap_or_else(|| dev.clone());
                    self.out.line(&format!("\ndisk = {n} ({dev})"));
                }
                let text = hist.render("usecs");
                let colon = text.find(':').unwrap_or(0);
                self.out.text(&text);
                self.out
                    .line(&format!("{:>colon$}: {}", "total ", hist.total()));
            }
        }
        self.hist = Some(BTreeMap::new());
        self.out.flush();
    }

    fn warn_lost(&mut self, force: bool) {
        if self.lost_pending == 0 {
            return;
        }
        let due = self
            .lost_warned
            .map(|t| t.elapsed() >= Duration::from_secs(1))
            .unwrap_or(true);
        if due || force {
            eprintln!(
                "iosnoop: WARNING: {} events lost (the reader fell behind); I/O in flight \
then is not shown (use a larger --buffer-kb, a filter, or --hist)",
                self.lost_pending
            );
            self.lost_pending = 0;
            self.lost_warned = Some(Instant::now());
        }
    }

    pub fn report(&mut self, summary: &Summary, events: &str) {
        self.warn_lost(true);
        ftrace_common::app::status::report("iosnoop", summary, "");
        let s = self.tracker.stats;
        let mut notes = Vec::new();
        if s.unmatched > 0 {
            notes.push(format!(
                "{} completions had no known start (begun before tracing, or their start was lost)",
                s.unmatched
            ));
        }
        if s.discarded_lost > 0 {
            notes.push(format!(
                "{} I/Os in flight when events were lost were not shown (their times could not be trusted)",
                s.discarded_lost
            ));
        }
        if s.stale + s.overflow > 0 {
            notes.push(format!(
                "{} I/Os never completed while traced (dropped after 10 minutes or beyond 1 M in flight)",
                s.stale + s.overflow
            ));
        }
        if self.undecodable > 0 {
            notes.push(format!(
                "{} events could not be decoded ({events} formats)",
                self.undecodable
            ));
        }
        for n in notes {
            eprintln!("iosnoop: {n}");
        }
    }
}

impl Snoop {
    fn now(&self) -> u64 {
        if self.offline {
            self.last_ts
        } else {
            now_mono_ns()
        }
    }
}

impl Sink for Snoop {
    fn event(&mut self, ev: &Event) -> Flow {
        self.last_ts = ev.ts;
        let Some(i) = self.decs.iter().position(|d| d.id == ev.id) else {
            return Flow::Continue;
        };
        let dec = &self.decs[i];
        let role = dec.role;
        let Some(e) = dec.decode(ev, &mut self.devs) else {
            self.undecodable += 1;
            return Flow::Continue;
        };
        match role {
            Role::Start => self.tracker.start(&e),
            Role::Issue => self.tracker.issue(&e),
            Role::FrontMerge => self.tracker.front_merge(&e),
            Role::RqMerge => self.tracker.rq_merge(&e),
            Role::Done => {
                if let Some(d) = self.tracker.complete(&e, self.partial) {
                    return self.emit(d);
                }
            }
        }
        Flow::Continue
    }

    fn lost(&mut self, cpu: u32, count: Option<u64>) -> Flow {
        self.tracker.lost(self.now());
        self.lost_pending += count.unwrap_or(1).max(1);
        if self.json && self.out.lost_marker(cpu, count, true) == Flow::Stop {
            return Flow::Stop;
        }
        self.warn_lost(false);
        Flow::Continue
    }

    fn round_end(&mut self) -> Flow {
        if self.last_expire.elapsed() >= Duration::from_secs(1) {
            self.tracker.expire(self.now());
            self.last_expire = Instant::now();
            self.warn_lost(false);
        }
        self.out.flush()
    }

    fn tick(&mut self) -> Flow {
        if self.hist.is_some() {
            if !self.json {
                self.out.line("");
            }
            self.print_hist();
        }
        if self.out.is_closed() {
            Flow::Stop
        } else {
            Flow::Continue
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_tgids_parse() {
        let m = parse_saved_tgids("1 1\n42 40\nbad\n7 0\n");
        assert_eq!(m.get(&42), Some(&40));
        assert_eq!(m.get(&7), None);
        assert_eq!(m.len(), 2);
    }
}
