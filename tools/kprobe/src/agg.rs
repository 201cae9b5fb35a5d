//! The aggregate modes (bcc argdist's idea): instead of a line per event,
//! count the events of each probe (`-C`), optionally by the value of an
//! argument, `comm` or `pid` (`--by`), or build a log2 histogram of one
//! argument or of `$retval` (`--hist`). Printed when the run ends.

use ftrace_common::app::output::Log2Hist;
use ftrace_common::app::output::Output;
use ftrace_common::app::printer::{Events, Symbols};
use ftrace_common::buffer::format::Field;
use ftrace_common::buffer::reader::Event;
use ftrace_common::probes::args::ArgStyles;
use ftrace_common::probes::tool::ProbeEvents;
use ftrace_common::Flow;
use std::collections::HashMap;

/// What `--by` counts by.
#[derive(Debug, Clone)]
pub enum ByKey {
    /// The task's name.
    Comm,
    /// The thread ID.
    Pid,
    /// A fetch argument of the probe.
    Field(Field),
}

/// A histogram of one field of a probe.
#[derive(Debug, Clone)]
pub struct HistOf {
    /// The field.
    pub field: Field,
    /// Whether its values are signed (negative ones are kept apart).
    pub signed: bool,
    /// Values >= 0.
    pub hist: Log2Hist,
    /// How many values were negative.
    pub negative: u64,
    /// The smallest negative value seen.
    pub min_negative: i64,
}

/// The aggregate of one probe.
#[derive(Debug, Clone)]
pub struct ProbeAgg {
    /// The event name.
    pub name: String,
    /// Events counted.
    pub count: u64,
    /// `--by`: the label and key, with counts per value.
    pub by: Option<(String, ByKey)>,
    /// Counts per value of the `--by` key.
    pub by_counts: HashMap<String, u64>,
    /// `--hist`: the histogram, if this probe has the field.
    pub hist: Option<HistOf>,
}

impl ProbeAgg {
    /// An empty aggregate.
    pub fn new(name: String) -> ProbeAgg {
        ProbeAgg {
            name,
            count: 0,
            by: None,
            by_counts: HashMap::new(),
            hist: None,
        }
    }

    /// Adds one event. `comm` is the task's name, `styles` how the probe's
    /// arguments print.
    pub fn add(&mut self, data: &[u8], pid: i32, comm: &str, styles: &ArgStyles) {
        self.count += 1;
        if let Some((_, key)) = &self.by {
            let v = match key {
                ByKey::Comm => comm.to_string(),
                ByKey::Pid => pid.to_string(),
                ByKey::Field(f) => {
                    let mut s = String::new();
                    styles.write_value(f, data, &mut s);
                    s
                }
            };
            *self.by_counts.entry(v).or_default() += 1;
        }
        if let Some(h) = &mut self.hist {
            match h.field.u64(data) {
                Some(raw) => {
                    let v = if h.signed {
                        let s = h.field.i64(data).unwrap_or(raw as i64);
                        if s < 0 {
                            h.negative += 1;
                            h.min_negative = h.min_negative.min(s);
                            return;
                        }
                        s as u64
                    } else {
                        raw
                    };
                    h.hist.add(v);
                }
                None => {
                    // A field outside the record (cannot happen with a
                    // kernel-written record): not counted in the histogram.
                }
            }
        }
    }

    /// The `--by` counts, fewest first (the busiest at the bottom, as
    /// funccount prints them), ties by value.
    pub fn sorted_by_counts(&self) -> Vec<(&str, u64)> {
        let mut v: Vec<(&str, u64)> = self
            .by_counts
            .iter()
            .map(|(k, c)| (k.as_str(), *c))
            .collect();
        v.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(b.0)));
        v
    }

    /// The aggregate as one JSON object.
    pub fn json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({"event": self.name, "count": self.count});
        if let Some((label, _)) = &self.by {
            v["by"] = label.clone().into();
            v["counts"] = self
                .sorted_by_counts()
                .into_iter()
                .map(|(k, c)| serde_json::json!({"value": k, "count": c}))
                .collect();
        }
        if let Some(h) = &self.hist {
            v["field"] = h.field.name.clone().into();
            v["hist"] = h.hist.to_json();
            v["negative"] = h.negative.into();
        }
        v
    }
}

/// The `-C` table: one line per probe, `PROBE COUNT`, in the order given.
pub fn count_table(aggs: &[ProbeAgg]) -> String {
    let w = aggs
        .iter()
        .map(|a| a.name.len())
        .max()
        .unwrap_or(0)
        .max("PROBE".len());
    let mut out = format!("{:<w$} {:>10}\n", "PROBE", "COUNT");
    for a in aggs {
        out.push_str(&format!("{:<w$} {:>10}\n", a.name, a.count));
    }
    out
}

/// The `-C --by` table of one probe: `PROBE VALUE COUNT`, fewest first.
pub fn by_table(a: &ProbeAgg) -> String {
    let Some((label, _)) = &a.by else {
        return String::new();
    };
    let rows = a.sorted_by_counts();
    let vw = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0)
        .max(label.len());
    let nw = a.name.len().max("PROBE".len());
    let mut out = format!(
        "{:<nw$} {:<vw$} {:>10}\n",
        "PROBE",
        label.to_uppercase(),
        "COUNT"
    );
    for (k, c) in rows {
        out.push_str(&format!("{:<nw$} {:<vw$} {:>10}\n", a.name, k, c));
    }
    out
}

/// The `--hist` block of one probe.
pub fn hist_block(a: &ProbeAgg) -> String {
    let Some(h) = &a.hist else {
        return format!(
            "{}: {} events (no histogram: the probe has no such argument)\n",
            a.name, a.count
        );
    };
    let mut out = format!("{}: {} ({} events)\n", a.name, h.field.name, a.count);
    if h.hist.total() > 0 {
        out.push_str(&h.hist.render(&h.field.name));
    }
    if h.negative > 0 {
        out.push_str(&format!(
            "{} negative values (smallest {}), not in the histogram\n",
            h.negative, h.min_negative
        ));
    }
    out
}

/// kprobe's part of the event printer: the probes, and in the aggregate
/// modes their counts and histograms.
pub struct Kprobes {
    /// The probes as printed.
    pub probes: ProbeEvents,
    /// Their aggregates (used with -C and --hist).
    pub aggs: Vec<ProbeAgg>,
}

impl Events for Kprobes {
    fn which(&self, id: u16) -> Option<usize> {
        self.probes.which(id)
    }

    fn name(&self, which: usize) -> &str {
        self.probes.name(which)
    }

    fn text(&mut self, which: usize, ev: &Event, syms: &mut Symbols, line: &mut String) {
        self.probes.text(which, ev, syms, line);
    }

    fn json(
        &mut self,
        which: usize,
        ev: &Event,
        syms: &mut Symbols,
        obj: &mut serde_json::Map<String, serde_json::Value>,
    ) {
        self.probes.json(which, ev, syms, obj);
    }

    fn collect(&mut self, which: usize, ev: &Event, comm: &str) {
        let styles = &self.probes.probes[which].styles;
        self.aggs[which].add(ev.data, ev.pid, comm, styles);
    }

    fn consume(&mut self, which: usize, ev: &Event) -> bool {
        self.probes.consume(which, ev)
    }

    fn lost(&mut self) {
        self.probes.lost();
    }
}

impl Kprobes {
    /// The aggregates at the end: a count table (`-C`), or per probe its
    /// counts by value (`--by`) or histogram (`--hist`); JSON, one object
    /// per probe.
    pub fn print(&self, out: &mut Output, json: bool, plain_count: bool) {
        if json {
            for a in &self.aggs {
                if out.json(&a.json()) == Flow::Stop {
                    return;
                }
            }
            return;
        }
        if plain_count {
            out.text(&count_table(&self.aggs));
            return;
        }
        for (i, a) in self.aggs.iter().enumerate() {
            if i > 0 {
                out.line("");
            }
            let text = if a.by.is_some() {
                by_table(a)
            } else {
                hist_block(a)
            };
            if out.text(&text) == Flow::Stop {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ftrace_common::buffer::format::EventFormat;

    const RET_FMT: &str = "name: r\nID: 1495\nformat:\n\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n\tfield:unsigned long __probe_func;\toffset:8;\tsize:8;\tsigned:0;\n\tfield:unsigned long __probe_ret_ip;\toffset:16;\tsize:8;\tsigned:0;\n\tfield:s64 retval;\toffset:24;\tsize:8;\tsigned:1;\n\nprint fmt: \"(%lx <- %lx) retval=%Ld\", REC->__probe_func, REC->__probe_ret_ip, REC->retval\n";

    fn rec(v: i64) -> Vec<u8> {
        let mut d = vec![0u8; 32];
        d[24..32].copy_from_slice(&v.to_ne_bytes());
        d
    }

    #[test]
    fn counts_by_value_and_histograms() {
        let fmt = EventFormat::parse(RET_FMT).unwrap();
        let st = ArgStyles::parse(&fmt.print_fmt);
        let f = fmt.field("retval").unwrap().clone();
        let mut a = ProbeAgg::new("do_sys_openat2".into());
        a.by = Some(("retval".into(), ByKey::Field(f.clone())));
        a.hist = Some(HistOf {
            field: f,
            signed: true,
            hist: Log2Hist::new(),
            negative: 0,
            min_negative: 0,
        });
        for v in [3, 3, 3, 4, -2, -13] {
            a.add(&rec(v), 7, "cat", &st);
        }
        assert_eq!(a.count, 6);
        assert_eq!(
            a.sorted_by_counts(),
            vec![("-13", 1), ("-2", 1), ("4", 1), ("3", 3)]
        );
        let h = a.hist.as_ref().unwrap();
        assert_eq!((h.hist.total(), h.negative, h.min_negative), (4, 2, -13));
        let text = hist_block(&a);
        assert!(
            text.starts_with("do_sys_openat2: retval (6 events)\n"),
            "{text}"
        );
        assert!(text.contains("2 negative values (smallest -13)"), "{text}");
        let t = by_table(&a);
        assert!(t.lines().last().unwrap().ends_with(" 3"), "{t}");
        let j = a.json();
        assert_eq!(j["count"], 6);
        assert_eq!(j["negative"], 2);
        assert_eq!(j["counts"][3]["value"], "3");
        let c = count_table(&[a]);
        assert_eq!(
            c.lines().nth(1).unwrap().split_whitespace().last(),
            Some("6")
        );
    }

    #[test]
    fn counts_by_comm_and_pid() {
        let st = ArgStyles::default();
        let mut a = ProbeAgg::new("p".into());
        a.by = Some(("comm".into(), ByKey::Comm));
        a.add(&[], 1, "bash", &st);
        a.add(&[], 2, "bash", &st);
        a.add(&[], 3, "cat", &st);
        assert_eq!(a.sorted_by_counts(), vec![("cat", 1), ("bash", 2)]);
        a.by = Some(("pid".into(), ByKey::Pid));
        a.by_counts.clear();
        a.add(&[], 9, "x", &st);
        assert_eq!(a.sorted_by_counts(), vec![("9", 1)]);
    }
}
