//! bitesize's counts: histograms of Kbytes by process name, from the
//! buffer ([`Counts`]) or the kernel's table ([`Kernel`]), and how they
//! are printed (bcc's layout, or a JSON line per name).

use ftrace_common::app::output::{Log2Hist, Output};
use ftrace_common::app::stream::Sink;
use ftrace_common::buffer::format::Field;
use ftrace_common::buffer::reader::Event;
use ftrace_common::lifecycle::hist::{self, HistTrigger};
use ftrace_common::{Error, Flow, Result};
use std::collections::BTreeMap;

/// Histograms of Kbytes by process name.
pub type Hists = BTreeMap<String, Log2Hist>;

/// The kernel's path: its table, read at each interval and at the end.
pub struct Kernel<'a> {
    pub trig: &'a HistTrigger,
    /// The table's counts at the last read, by (name, bytes).
    pub seen: BTreeMap<(String, u64), u64>,
    /// What was counted since the last print.
    pub now: Hists,
    pub out: &'a mut Output,
    pub json: bool,
    pub error: Option<Error>,
}

impl Kernel<'_> {
    /// Adds what the kernel counted since the last read.
    pub fn collect(&mut self) -> Result<hist::Hist> {
        let table = hist::parse(&self.trig.read_text()?);
        add_table(&mut self.seen, &mut self.now, &table);
        Ok(table)
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
        let h = std::mem::take(&mut self.now);
        tick_print(self.out, &h, self.json)
    }
}

/// An interval's histograms (a line saying none when there were none).
fn tick_print(out: &mut Output, h: &Hists, json: bool) -> Flow {
    if h.is_empty() && !json {
        out.line("\n(no block I/O)");
    }
    print(out, h, json);
    let flow = out.flush();
    if out.is_closed() {
        return Flow::Stop;
    }
    flow
}

/// The buffer's path: one count per `block_rq_issue`.
pub struct Counts<'a> {
    pub id: u16,
    pub comm: Field,
    pub bytes: Field,
    pub hists: Hists,
    pub undecodable: u64,
    pub out: &'a mut Output,
    pub json: bool,
}

impl Sink for Counts<'_> {
    fn tick(&mut self) -> Flow {
        let h = std::mem::take(&mut self.hists);
        tick_print(self.out, &h, self.json)
    }

    fn event(&mut self, ev: &Event) -> Flow {
        if ev.id != self.id {
            return Flow::Continue;
        }
        match (self.comm.bytes(ev.data), self.bytes.u64(ev.data)) {
            (Some(c), Some(b)) => add(&mut self.hists, &comm_text(c), b, 1),
            _ => self.undecodable += 1,
        }
        Flow::Continue
    }
}

/// A comm as the kernel stores it: up to the first NUL.
fn comm_text(c: &[u8]) -> String {
    let end = c.iter().position(|&b| b == 0).unwrap_or(c.len());
    String::from_utf8_lossy(&c[..end]).into_owned()
}

/// Counts `n` requests of `bytes` by `comm`.
fn add(h: &mut Hists, comm: &str, bytes: u64, n: u64) {
    h.entry(comm.to_string())
        .or_default()
        .add_count(Log2Hist::bucket(bytes / 1024), n);
}

/// Adds what a read of the kernel's table (`{ comm: dd, bytes: 4096 }
/// hitcount: 10`) counted since the counts `seen`.
fn add_table(seen: &mut BTreeMap<(String, u64), u64>, now: &mut Hists, table: &hist::Hist) {
    for e in &table.entries {
        if let (Some(c), Some(b)) = (e.key("comm"), e.key("bytes").and_then(|k| k.value)) {
            let seen = seen.entry((c.raw.clone(), b)).or_insert(0);
            if e.hitcount() > *seen {
                add(now, &c.raw, b, e.hitcount() - *seen);
                *seen = e.hitcount();
            }
        }
    }
}

/// bcc's layout, a histogram per process name, or a JSON line each.
pub fn print(out: &mut Output, hists: &Hists, json: bool) {
    for (comm, h) in hists {
        if json {
            out.json(&serde_json::json!({
                "comm": comm, "unit": "Kbytes", "total": h.total(), "buckets": h.to_json(),
            }));
        } else {
            out.line(&format!("\nProcess Name = {comm}"));
            out.text(&h.render("Kbytes"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_tables_and_buffer_counts_agree() {
        let text = "\
# trigger info: hist:keys=comm,bytes:vals=hitcount:sort=hitcount:size=8192 [active]

{ comm: ftt-workload                                      , bytes:       4096 } hitcount:         10
{ comm: ftt-workload                                      , bytes:      65536 } hitcount:          5
{ comm: kworker/u4:1                                      , bytes:          0 } hitcount:          2

Totals:
    Hits: 17
    Entries: 3
    Dropped: 0
";
        let (mut seen, mut k) = (BTreeMap::new(), Hists::new());
        add_table(&mut seen, &mut k, &hist::parse(text));
        // Read again, nothing new.
        let mut again = Hists::new();
        add_table(&mut seen, &mut again, &hist::parse(text));
        assert!(again.is_empty());
        let mut b = Hists::new();
        for _ in 0..10 {
            add(&mut b, &comm_text(b"ftt-workload\0\0\0\0"), 4096, 1);
        }
        for _ in 0..5 {
            add(&mut b, "ftt-workload", 65536, 1);
        }
        add(&mut b, "kworker/u4:1", 0, 2);
        assert_eq!(k, b);
        assert_eq!(
            k["ftt-workload"].rows(),
            vec![
                (4, 7, 10),
                (8, 15, 0),
                (16, 31, 0),
                (32, 63, 0),
                (64, 127, 5)
            ]
        );
    }
}
