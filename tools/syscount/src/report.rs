//! Summaries: perf-tools' columns (with bcc's latency columns), log2
//! histograms, or JSON lines.

use crate::agg::{Agg, By, Names, Row};
use crate::tasks::Tasks;
use ftrace_common::app::output::Output;
use ftrace_common::Flow;

/// How summaries are printed.
pub struct Report {
    pub out: Output,
    pub by: By,
    pub latency: bool,
    pub unit_ns: u64,
    pub top: Option<usize>,
    pub json: bool,
    pub interval: bool,
    pub only_process: Option<i32>,
    pub counted_in: &'static str,
    pub hist_names: Vec<(i64, String)>,
    pub unknown_seen: bool,
}

impl Report {
    fn unit(&self) -> &'static str {
        if self.unit_ns == 1_000_000 {
            "ms"
        } else {
            "us"
        }
    }

    fn time_cols(&self, r: &Row) -> (f64, f64) {
        let total = r.stat.total_ns as f64 / self.unit_ns as f64;
        let avg = if r.stat.count > 0 {
            total / r.stat.count as f64
        } else {
            0.0
        };
        (total, avg)
    }

    pub fn print(&mut self, agg: &Agg, tasks: &mut Tasks, names: &Names) -> Flow {
        let keep_pid = self.only_process;
        let keep = move |tgid: i32| keep_pid.map(|p| p == tgid).unwrap_or(true);
        let mut rows = agg.rows(self.by, tasks, names, &keep, self.latency);
        if let Some(n) = self.top {
            let skip = rows.len().saturating_sub(n);
            rows.drain(..skip);
        }
        // Numbers the table lacks (not -1: no call has it).
        if rows.iter().any(|r| {
            r.nr.is_some_and(|n| n >= 0)
                && r.syscall
                    .as_deref()
                    .is_some_and(|s| s.starts_with("[unknown"))
        }) {
            self.unknown_seen = true;
        }
        if self.json {
            return self.print_json(&rows, agg);
        }
        let mut text = String::new();
        if self.interval {
            text.push_str(&format!("\n[{}]\n", clock_time()));
        }
        let unit = self.unit();
        let (tcol, acol) = (format!("TIME ({unit})"), format!("AVG ({unit})"));
        let head = match self.by {
            By::Syscall => format!("{:<17} {:>8}", "SYSCALL", "COUNT"),
            By::Comm => format!("{:<16} {:>8}", "COMM", "COUNT"),
            By::Pid => format!("{:<6} {:<16} {:>8}", "PID", "COMM", "COUNT"),
            By::PidSyscall => format!(
                "{:<6} {:<16} {:<17} {:>8}",
                "PID", "COMM", "SYSCALL", "COUNT"
            ),
        };
        text.push_str(&head);
        if self.latency {
            text.push_str(&format!(" {tcol:>14} {acol:>10}"));
        }
        text.push('\n');
        for r in &rows {
            let comm = r.comm.as_deref().unwrap_or("");
            let sc = r.syscall.as_deref().unwrap_or("");
            let pid = r.pid.unwrap_or(0);
            let line = match self.by {
                By::Syscall => format!("{sc:<17} {:>8}", r.stat.count),
                By::Comm => format!("{comm:<16} {:>8}", r.stat.count),
                By::Pid => format!("{pid:<6} {comm:<16} {:>8}", r.stat.count),
                By::PidSyscall => format!("{pid:<6} {comm:<16} {sc:<17} {:>8}", r.stat.count),
            };
            text.push_str(&line);
            if self.latency {
                let (t, a) = self.time_cols(r);
                text.push_str(&format!(" {t:>14.3} {a:>10.3}"));
            }
            text.push('\n');
        }
        for (nr, h) in agg.hists() {
            let name = self
                .hist_names
                .iter()
                .find(|(n, _)| n == nr)
                .map(|(_, s)| s.clone())
                .unwrap_or_else(|| names.display(*nr));
            text.push_str(&format!("\nsyscall = {name}\n"));
            if h.total() == 0 {
                text.push_str("     (no calls)\n");
            } else {
                text.push_str(&h.render(if unit == "ms" { "msecs" } else { "usecs" }));
            }
        }
        if self.out.text(&text) == Flow::Stop {
            return Flow::Stop;
        }
        self.out.flush()
    }

    fn print_json(&mut self, rows: &[Row], agg: &Agg) -> Flow {
        let unit = self.unit();
        let rows: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                let mut m = serde_json::Map::new();
                if let Some(p) = r.pid {
                    m.insert("pid".into(), p.into());
                }
                if let Some(c) = &r.comm {
                    m.insert("comm".into(), c.clone().into());
                }
                if let Some(s) = &r.syscall {
                    m.insert("syscall".into(), s.clone().into());
                }
                if let Some(n) = r.nr {
                    m.insert("nr".into(), n.into());
                }
                m.insert("count".into(), r.stat.count.into());
                if self.latency {
                    let (t, a) = self.time_cols(r);
                    m.insert(format!("total_{unit}"), serde_json::json!(t));
                    m.insert(format!("avg_{unit}"), serde_json::json!(a));
                }
                serde_json::Value::Object(m)
            })
            .collect();
        let mut v = serde_json::json!({
            "time": clock_time(),
            "counted_in": self.counted_in,
            "rows": rows,
        });
        if !agg.hists().is_empty() {
            let mut h = serde_json::Map::new();
            for (nr, hist) in agg.hists() {
                let name = self
                    .hist_names
                    .iter()
                    .find(|(n, _)| n == nr)
                    .map(|(_, s)| s.clone())
                    .unwrap_or_default();
                h.insert(name, hist.to_json());
            }
            v["hist_unit"] = if unit == "ms" { "msecs" } else { "usecs" }.into();
            v["hist"] = serde_json::Value::Object(h);
        }
        let f = self.out.json(&v);
        if f == Flow::Stop {
            return f;
        }
        self.out.flush()
    }
}

/// Local wall-clock time as HH:MM:SS.
fn clock_time() -> String {
    ftrace_common::app::output::local_time("%H:%M:%S")
}
