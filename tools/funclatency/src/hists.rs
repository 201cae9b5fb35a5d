//! The histograms of a run and how they are printed (bcc's layout, or
//! JSON lines), and where they come from: calls paired from the buffer
//! ([`Pairs`]) or the kernel's hist triggers read at each interval
//! ([`KernelHists`]).

use crate::kernel;
use ftrace_common::app::output::{local_time, Log2Hist, Output};
use ftrace_common::app::stream::Sink;
use ftrace_common::buffer::reader::Event;
use ftrace_common::lifecycle::latency::LatencyTriggers;
use ftrace_common::{Error, Flow, Result};
use std::collections::HashMap;

/// How the histograms are printed.
#[derive(Debug, Clone, Copy)]
pub struct How {
    /// -F: one per function.
    pub per_function: bool,
    /// -T: the time first.
    pub timestamp: bool,
    /// -j: JSON lines.
    pub json: bool,
    /// -i: numbered intervals.
    pub interval: bool,
}

/// The histograms and how they are printed.
pub struct Hists {
    /// One per function with -F, else one named by the pattern.
    names: Vec<String>,
    hists: Vec<Log2Hist>,
    /// The unit, as the divisor of nanoseconds.
    pub div: u64,
    unit: &'static str,
    per_function: bool,
    timestamp: bool,
    json: bool,
    interval: bool,
    /// Where they are printed.
    pub out: Output,
    printed: u64,
}

impl Hists {
    /// Empty histograms named `names`, in `unit` (ns divided by `div`).
    pub fn new(names: Vec<String>, div: u64, unit: &'static str, how: How) -> Hists {
        Hists {
            hists: vec![Log2Hist::new(); names.len()],
            names,
            div,
            unit,
            per_function: how.per_function,
            timestamp: how.timestamp,
            json: how.json,
            interval: how.interval,
            out: Output::new(),
            printed: 0,
        }
    }

    /// The histogram of function `func`.
    pub fn index(&self, func: usize) -> usize {
        if self.per_function {
            func
        } else {
            0
        }
    }

    /// Adds a call of function `func` from `start` to `end` (ns): the
    /// difference of the two times in the unit, as the kernel's path
    /// computes it (`common_timestamp/1000-$ts0`).
    pub fn add(&mut self, func: usize, start: u64, end: u64) {
        let i = self.index(func);
        let lat = (end / self.div).saturating_sub(start / self.div);
        self.hists[i].add(lat);
    }

    /// Calls in all the histograms.
    pub fn total(&self) -> u64 {
        self.hists.iter().map(Log2Hist::total).sum()
    }

    /// Prints the histograms (bcc's layout: with -T the time first; with
    /// -F `Function = NAME` before each function that was called), then
    /// starts them anew.
    pub fn print(&mut self) -> Flow {
        self.printed += 1;
        let time = self.timestamp.then(|| local_time("%H:%M:%S"));
        let mut order: Vec<usize> = (0..self.names.len()).collect();
        order.sort_by(|&a, &b| self.names[a].cmp(&self.names[b]));
        let shown: Vec<usize> = order
            .into_iter()
            .filter(|&i| !self.per_function || self.hists[i].total() > 0)
            .collect();
        let flow = if self.json {
            let mut flow = Flow::Continue;
            for &i in &shown {
                let mut v = serde_json::json!({
                    "function": self.names[i], "unit": self.unit,
                    "total": self.hists[i].total(), "buckets": self.hists[i].to_json(),
                });
                if self.interval {
                    v["interval"] = self.printed.into();
                }
                if let Some(t) = &time {
                    v["time"] = t.clone().into();
                }
                flow = self.out.json(&v);
                if flow == Flow::Stop {
                    break;
                }
            }
            flow
        } else {
            let mut text = String::new();
            if self.printed > 1 {
                text.push('\n');
            }
            if let Some(t) = &time {
                text.push_str(&format!("{t:<8}\n"));
            }
            for (n, &i) in shown.iter().enumerate() {
                if self.per_function {
                    if n > 0 {
                        text.push('\n');
                    }
                    text.push_str(&format!("Function = {}\n", self.names[i]));
                }
                text.push_str(&self.hists[i].render(self.unit));
            }
            self.out.text(&text)
        };
        self.hists.iter_mut().for_each(|h| *h = Log2Hist::new());
        if flow == Flow::Stop {
            return flow;
        }
        self.out.flush()
    }
}

/// Entries waiting for their returns, per thread and function (a stack:
/// recursion), and the histograms of the paired calls.
pub struct Pairs {
    /// Event id to (function, is the return).
    pub ids: HashMap<u16, (usize, bool)>,
    pub open: HashMap<(i32, usize), Vec<u64>>,
    pub hists: Hists,
}

impl Sink for Pairs {
    fn event(&mut self, ev: &Event) -> Flow {
        match self.ids.get(&ev.id) {
            Some(&(func, false)) => self.open.entry((ev.pid, func)).or_default().push(ev.ts),
            Some(&(func, true)) => {
                if let Some(start) = self.open.get_mut(&(ev.pid, func)).and_then(Vec::pop) {
                    self.hists.add(func, start, ev.ts);
                }
            }
            None => {}
        }
        Flow::Continue
    }

    fn lost(&mut self, _cpu: u32, _count: Option<u64>) -> Flow {
        // A lost entry or return would pair the wrong calls: start anew.
        self.open.clear();
        Flow::Continue
    }

    fn tick(&mut self) -> Flow {
        self.hists.print()
    }
}

/// The histograms the kernel keeps, read (and cleared) at each interval
/// and at the end.
pub struct KernelHists<'t> {
    pub trigs: &'t [LatencyTriggers],
    pub hists: Hists,
    pub error: Option<Error>,
}

impl KernelHists<'_> {
    /// Reads every function's histogram into ours, clearing the kernel's.
    fn collect(&mut self) -> Result<()> {
        for (func, t) in self.trigs.iter().enumerate() {
            let text = t.hist.read_text()?;
            let i = self.hists.index(func);
            kernel::add_text(&mut self.hists.hists[i], &text);
            t.hist.clear()?;
        }
        Ok(())
    }
}

/// Where the histograms come from, for the read loop.
pub trait Source: Sink {
    /// Brings the histograms up to date (the kernel's path reads them).
    fn collect(&mut self) -> Result<()> {
        Ok(())
    }
    /// The histograms.
    fn hists(&mut self) -> &mut Hists;
}

impl Sink for KernelHists<'_> {
    fn event(&mut self, _ev: &Event) -> Flow {
        Flow::Continue
    }

    fn tick(&mut self) -> Flow {
        if let Err(e) = KernelHists::collect(self) {
            self.error = Some(e);
            return Flow::Stop;
        }
        self.hists.print()
    }
}

impl Source for KernelHists<'_> {
    fn collect(&mut self) -> Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        KernelHists::collect(self)
    }
    fn hists(&mut self) -> &mut Hists {
        &mut self.hists
    }
}

impl Source for Pairs {
    fn hists(&mut self) -> &mut Hists {
        &mut self.hists
    }
}
