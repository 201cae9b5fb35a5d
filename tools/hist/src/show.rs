//! How a table is printed: the kernel's hist text as it is (the default),
//! a sorted table (`--table`) or a JSON line (`-j`). The table and the
//! JSON are made from the text, whichever path computed it, so the two
//! paths print the same in every form.

use ftrace_common::app::output::{self, Output};
use ftrace_common::lifecycle::hist::{self, HistEntry};
use ftrace_common::Flow;
use serde_json::json;

/// The form of the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// The kernel's hist text.
    Text,
    /// A table.
    Table,
    /// One JSON object per print.
    Json,
}

/// Prints tables, one per interval or one at the end.
pub struct Show {
    /// Where it goes.
    pub out: Output,
    form: Form,
    event: String,
    computed_in: &'static str,
    top: Option<usize>,
    printed: usize,
}

impl Show {
    /// Tables of `event`, computed in the kernel or from the buffer
    /// (`computed_in`), the `top` largest entries only if given.
    pub fn new(form: Form, event: &str, computed_in: &'static str, top: Option<usize>) -> Show {
        Show {
            out: Output::new(),
            form,
            event: event.to_string(),
            computed_in,
            top,
            printed: 0,
        }
    }

    /// Prints one `hist` text.
    pub fn print(&mut self, text: &str) -> Flow {
        let text = match self.top {
            Some(n) => keep_top(text, n),
            None => text.to_string(),
        };
        let first = self.printed == 0;
        self.printed += 1;
        let flow = match self.form {
            Form::Text => {
                if !first {
                    self.out.line("");
                }
                self.out.text(&text)
            }
            Form::Table => {
                if !first {
                    self.out.line("");
                }
                self.out.text(&table(&text))
            }
            Form::Json => self.out.json(&self.json(&text)),
        };
        if flow == Flow::Stop {
            return flow;
        }
        self.out.flush()
    }

    fn json(&self, text: &str) -> serde_json::Value {
        let h = hist::parse(text);
        let entries: Vec<serde_json::Value> = h.entries.iter().map(entry_json).collect();
        json!({
            "event": self.event,
            "computed_in": self.computed_in,
            "trigger": h.info,
            "entries": entries,
            "totals": {
                "hits": h.hits,
                "entries": h.entries.len(),
                "dropped": h.dropped,
            },
        })
    }
}

/// The text with only the `n` largest entries: the last ones in the
/// hist's order, or the first where its first sort key is `.descending`.
fn keep_top(text: &str, n: usize) -> String {
    let descending = text
        .lines()
        .find_map(|l| l.strip_prefix("# trigger info: "))
        .and_then(|info| info.split(':').find_map(|p| p.strip_prefix("sort=")))
        .is_some_and(|sort| {
            sort.split(',')
                .next()
                .unwrap_or("")
                .ends_with(".descending")
        });
    let total = text.lines().filter(|l| l.starts_with('{')).count();
    let keep = if descending {
        0..n
    } else {
        total.saturating_sub(n)..total
    };
    let mut seen = 0;
    let mut out = String::with_capacity(text.len());
    for l in text.lines() {
        if l.starts_with('{') {
            seen += 1;
            if !keep.contains(&(seen - 1)) {
                continue;
            }
        }
        out.push_str(l);
        out.push('\n');
    }
    out
}

/// A key as a table cell: `name [value]` for labelled keys (`.execname`,
/// `.syscall`), else the text the kernel printed.
fn key_cell(k: &hist::HistKey) -> String {
    match (&k.label, k.value) {
        (Some(l), Some(v)) => format!("{l} [{v}]"),
        _ => k.raw.clone(),
    }
}

/// The entries as an aligned table with a header, then the totals.
pub fn table(text: &str) -> String {
    let h = hist::parse(text);
    let Some(first) = h.entries.first() else {
        return format!(
            "(no entries) hits: {}, dropped: {}\n",
            h.hits.unwrap_or(0),
            h.dropped.unwrap_or(0)
        );
    };
    let mut header: Vec<String> = first.keys.iter().map(|k| k.name.to_uppercase()).collect();
    header.extend(first.raw_values.iter().map(|(n, _)| n.to_uppercase()));
    let mut rows = vec![header];
    for e in &h.entries {
        let mut r: Vec<String> = e.keys.iter().map(key_cell).collect();
        r.extend(e.raw_values.iter().map(|(_, v)| v.clone()));
        rows.push(r);
    }
    let mut out = output::table(&rows);
    out.push_str(&format!(
        "hits: {}, entries: {}, dropped: {}\n",
        h.hits.unwrap_or(0),
        h.entries.len(),
        h.dropped.unwrap_or(0)
    ));
    out
}

fn entry_json(e: &HistEntry) -> serde_json::Value {
    let mut keys = serde_json::Map::new();
    for k in &e.keys {
        let v = match (&k.label, k.value) {
            (Some(l), Some(v)) => json!({"value": v, "label": l}),
            (None, Some(v)) => json!(v),
            _ => json!(k.raw),
        };
        keys.insert(k.name.clone(), v);
    }
    let mut vals = serde_json::Map::new();
    for (n, raw) in &e.raw_values {
        if n == "hitcount" {
            continue;
        }
        let v = e
            .values
            .iter()
            .find(|(m, _)| m == n)
            .map(|(_, v)| json!(v))
            .unwrap_or_else(|| json!(raw));
        vals.insert(n.clone(), v);
    }
    json!({"keys": keys, "hitcount": e.hitcount(), "values": vals})
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testdata::SEED_HIST as TEXT;

    #[test]
    fn tables_json_and_top() {
        assert_eq!(
            table(TEXT),
            "COMMON_PID          HITCOUNT  RET\ncat [150]           3         3828\nftt-workload [148]  305       1249280\nhits: 308, entries: 2, dropped: 0\n"
        );
        let s = Show::new(Form::Json, "syscalls:sys_exit_read", "buffer", None);
        let j = s.json(TEXT);
        assert_eq!(
            j["entries"][1]["keys"]["common_pid"]["label"],
            "ftt-workload"
        );
        assert_eq!(j["entries"][1]["values"]["ret"], 1249280);
        assert_eq!(j["entries"][1]["hitcount"], 305);
        assert_eq!(j["totals"]["hits"], 308);
        assert!(j["trigger"]
            .as_str()
            .unwrap()
            .starts_with("hist:keys=common_pid"));
        let t = keep_top(TEXT, 1);
        assert!(!t.contains("cat ") && t.contains("ftt-workload") && t.contains("Entries: 2"));
        let cat = TEXT.lines().find(|l| l.contains("cat ")).unwrap();
        let desc = TEXT
            .replace("sort=ret:", "sort=ret.descending:")
            .replace(&format!("{cat}\n"), "")
            .replace("\n\nTotals", &format!("\n{cat}\n\nTotals"));
        let t = keep_top(&desc, 1);
        assert!(!t.contains("cat ") && t.contains("ftt-workload"), "{t}");
        assert!(table("").starts_with("(no entries)"));
    }
}
