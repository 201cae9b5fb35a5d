//! iolatency's histograms: perf-tools' layout (power-of-two ranges in
//! milliseconds, `#` bars) or JSON lines, filled from the buffer
//! ([`Pairs`]: block events paired by `kernel::block::Tracker`) or from the
//! kernel's hist triggers ([`Kernel`]), one per interval.

use ftrace_common::app::blockio::{Dec, Devs, Role};
use ftrace_common::app::output::{local_time, Log2Hist, Output};
use ftrace_common::app::stream::{now_mono_ns, Sink};
use ftrace_common::base::glob::Glob;
use ftrace_common::buffer::reader::Event;
use ftrace_common::kernel::block::{DevSel, Done, Tracker};
use ftrace_common::lifecycle::latency::LatencyTriggers;
use ftrace_common::{Error, Flow, Result};

/// Bar width, as perf-tools'.
const BAR: usize = 38;

/// The histogram of the current interval and how it is printed.
pub struct MsHist {
    /// Latencies in whole milliseconds: bucket 0 is `0 -> 1`, bucket `k`
    /// is `2^(k-1) -> 2^k`.
    pub hist: Log2Hist,
    pub out: Output,
    pub timestamp: bool,
    pub json: bool,
    /// Histograms printed so far, and how many to print.
    pub printed: u64,
    pub count: Option<u64>,
}

/// The rows of a histogram: `(>= ms, < ms, count)` from `0 -> 1` to the
/// last non-empty range (one row when empty).
pub fn rows(h: &Log2Hist) -> Vec<(u64, u64, u64)> {
    let c = h.counts();
    let n = c.len().max(1);
    (0..n)
        .map(|i| {
            // Bucket 64 (a value of 2^63 or more) has no upper end in u64.
            let pow = |n: usize| 1u64.checked_shl(n as u32).unwrap_or(u64::MAX);
            let lo = if i == 0 { 0 } else { pow(i - 1) };
            (lo, pow(i), c.get(i).copied().unwrap_or(0))
        })
        .collect()
}

/// perf-tools' text of a histogram.
pub fn render(h: &Log2Hist) -> String {
    let rows = rows(h);
    let max = rows.iter().map(|r| r.2).max().unwrap_or(0);
    let mut s = format!(
        "  >=(ms) .. <(ms)   : I/O      |{:<BAR$}|\n",
        "Distribution"
    );
    for (lo, hi, c) in rows {
        let n = if c == 0 || max == 0 {
            0
        } else {
            ((c as u128 * BAR as u128).div_ceil(max as u128) as usize).max(1)
        };
        s.push_str(&format!(
            "{lo:>8} -> {hi:<8}: {c:<8} |{:<BAR$}|\n",
            "#".repeat(n)
        ));
    }
    s
}

impl MsHist {
    /// Adds one I/O of `ms` milliseconds.
    pub fn add(&mut self, ms: u64) {
        self.hist.add(ms);
    }

    /// Prints the interval's histogram and starts a new one; `Stop` when
    /// the count is reached or the output closed.
    pub fn print(&mut self) -> Flow {
        let h = std::mem::take(&mut self.hist);
        if self.json {
            let buckets: Vec<_> = rows(&h)
                .into_iter()
                .map(|(lo, hi, c)| serde_json::json!({"ge_ms": lo, "lt_ms": hi, "count": c}))
                .collect();
            let v = serde_json::json!({
                "time": local_time("%H:%M:%S"),
                "unit": "ms",
                "total": h.total(),
                "buckets": buckets,
            });
            self.out.json(&v);
        } else {
            let mut text = String::from("\n");
            if self.timestamp {
                text.push_str(&local_time("%H:%M:%S"));
                text.push('\n');
            }
            text.push_str(&render(&h));
            self.out.text(&text);
        }
        self.printed += 1;
        let flow = self.out.flush();
        if self.count.is_some_and(|c| self.printed >= c) || self.out.is_closed() {
            return Flow::Stop;
        }
        flow
    }
}

/// What to count.
pub struct Filters {
    pub dev: Option<DevSel>,
    pub iotype: Option<Glob>,
    pub queued: bool,
}

/// The buffer's path: block events paired into I/Os.
pub struct Pairs {
    pub decs: Vec<Dec>,
    pub partial: bool,
    pub tracker: Tracker,
    pub devs: Devs,
    pub filters: Filters,
    pub hist: MsHist,
    pub undecodable: u64,
    pub lost: u64,
}

impl Pairs {
    /// The latency of a finished I/O in whole milliseconds, if it is
    /// counted: the difference of the two times in milliseconds, as the
    /// kernel's path computes it.
    fn latency_ms(&self, d: &Done) -> Option<u64> {
        let begin = if self.filters.queued {
            d.req.t_start.or(d.req.t_issue)
        } else {
            d.req.t_issue
        }?;
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
        Some((d.t_done / 1_000_000).saturating_sub(begin / 1_000_000))
    }
}

impl Sink for Pairs {
    fn event(&mut self, ev: &Event) -> Flow {
        let Some(dec) = self.decs.iter().find(|d| d.id == ev.id) else {
            return Flow::Continue;
        };
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
                if let Some(ms) = self
                    .tracker
                    .complete(&e, self.partial)
                    .and_then(|d| self.latency_ms(&d))
                {
                    self.hist.add(ms);
                }
            }
        }
        Flow::Continue
    }

    fn lost(&mut self, _cpu: u32, count: Option<u64>) -> Flow {
        self.tracker.lost(now_mono_ns());
        self.lost += count.unwrap_or(1).max(1);
        Flow::Continue
    }

    fn tick(&mut self) -> Flow {
        self.tracker.expire(now_mono_ns());
        self.hist.print()
    }
}

/// The kernel's path: the triggers (made anew when their tables fill)
/// and the histogram they have counted so far.
pub struct Kernel<'a> {
    pub trigs: Option<LatencyTriggers>,
    pub arm: &'a dyn Fn() -> Result<LatencyTriggers>,
    /// The kernel's counts at the last read, per bucket.
    pub seen: Vec<u64>,
    pub hist: MsHist,
    /// I/O that found a table full, and how often they were made anew.
    pub dropped: u64,
    pub rearmed: u64,
    pub error: Option<Error>,
}

impl Kernel<'_> {
    /// Adds what the kernel counted since the last read; makes the
    /// triggers anew if a table was full.
    pub fn collect(&mut self) -> Result<()> {
        let Some(t) = &self.trigs else {
            return Ok(());
        };
        let mut now = Log2Hist::new();
        now.add_kernel_log2(&t.hist.read_text()?, "lat");
        for (b, &c) in now.counts().iter().enumerate() {
            let before = self.seen.get(b).copied().unwrap_or(0);
            if c > before {
                self.hist.hist.add_count(b, c - before);
            }
        }
        self.seen = now.counts().to_vec();
        let dropped = t.dropped()?;
        if dropped > 0 {
            self.dropped += dropped;
            self.rearmed += 1;
            self.trigs = None;
            self.seen.clear();
            self.trigs = Some((self.arm)()?);
        }
        Ok(())
    }
}

impl Sink for Kernel<'_> {
    fn event(&mut self, _ev: &Event) -> Flow {
        Flow::Continue
    }

    fn tick(&mut self) -> Flow {
        if let Err(e) = self.collect() {
            self.error = Some(e);
            return Flow::Stop;
        }
        self.hist.print()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perf_tools_layout() {
        let mut h = Log2Hist::new();
        for ms in [0, 0, 0, 1, 2, 3, 9] {
            h.add(ms);
        }
        let text = render(&h);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "  >=(ms) .. <(ms)   : I/O      |Distribution                          |"
        );
        assert_eq!(
            lines[1],
            "       0 -> 1       : 3        |######################################|"
        );
        assert_eq!(
            lines[3],
            format!(
                "       2 -> 4       : 2        |{}{}|",
                "#".repeat(26),
                " ".repeat(12)
            )
        );
        assert_eq!(lines.len(), 6, "{text}");
        assert!(lines[5].starts_with("       8 -> 16      : 1 "));
        // Empty: one row.
        assert_eq!(render(&Log2Hist::new()).lines().count(), 2);
        // Colons line up.
        assert_eq!(lines[0].find(':'), lines[1].find(':'));
        // The kernel's last bucket (2^63 and more) renders without overflow.
        let mut top = Log2Hist::new();
        top.add_count(64, 1);
        let r = rows(&top);
        assert_eq!(r.last(), Some(&(1u64 << 63, u64::MAX, 1)));
        assert_eq!(render(&top).lines().count(), 66);
    }
}
