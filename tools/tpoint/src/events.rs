//! tpoint's part of the event printer: each traced event's text as the
//! kernel prints it (its compiled `print fmt`), or with `--fields` every
//! field as `name=value`; JSON with every field typed.

use ftrace_common::app::printer::{Events, Symbols};
use ftrace_common::buffer::format::{EventFormat, Value};
use ftrace_common::buffer::printfmt::{EventText, Kernel};
use ftrace_common::buffer::reader::Event;
use std::collections::HashMap;

/// One traced event.
pub struct Tracepoint {
    /// Its system (`sched`).
    pub system: String,
    /// Its format (syscalls' unsigned longs marked hex for `--fields`).
    pub fmt: EventFormat,
    text: EventText,
    /// Whether the fallback to `name=value` was said on stderr.
    noted: bool,
}

impl Tracepoint {
    /// The event `system`:`fmt.name`, its text compiled for this kernel.
    pub fn new(system: &str, fmt: EventFormat, kernel: Kernel) -> Tracepoint {
        let text = EventText::new(system, &fmt, kernel);
        let fmt = if system == "syscalls" {
            fmt.hex_longs()
        } else {
            fmt
        };
        Tracepoint {
            system: system.to_string(),
            fmt,
            text,
            noted: false,
        }
    }

    /// `SYSTEM:EVENT`.
    pub fn full_name(&self) -> String {
        format!("{}:{}", self.system, self.fmt.name)
    }
}

/// The traced events, by id.
pub struct Tracepoints {
    /// The events, in the order given.
    pub list: Vec<Tracepoint>,
    by_id: HashMap<u16, usize>,
    /// `--fields`: `name=value` instead of the kernel's text.
    fields: bool,
}

impl Tracepoints {
    /// The events, printed as the kernel does or (`fields`) by field.
    pub fn new(list: Vec<Tracepoint>, fields: bool) -> Tracepoints {
        let by_id = list
            .iter()
            .enumerate()
            .map(|(i, t)| (t.fmt.id, i))
            .collect();
        Tracepoints {
            list,
            by_id,
            fields,
        }
    }

    /// Whether printing needs kernel symbols (`%pS`).
    pub fn uses_symbols(&self) -> bool {
        !self.fields && self.list.iter().any(|t| t.text.uses_symbols())
    }

    fn fields_text(t: &Tracepoint, ev: &Event, line: &mut String) {
        for f in &t.fmt.fields {
            line.push(' ');
            f.write_text(ev.data, line);
        }
    }
}

impl Events for Tracepoints {
    fn which(&self, id: u16) -> Option<usize> {
        self.by_id.get(&id).copied()
    }

    fn name(&self, which: usize) -> &str {
        &self.list[which].fmt.name
    }

    fn json_name(&self, which: usize) -> String {
        self.list[which].full_name()
    }

    fn text(&mut self, which: usize, ev: &Event, _: &mut Symbols, line: &mut String) {
        Tracepoints::fields_text(&self.list[which], ev, line);
    }

    fn line(&mut self, which: usize, ev: &Event, syms: &mut Symbols, line: &mut String) {
        let t = &mut self.list[which];
        if self.fields {
            line.push_str(&t.fmt.name);
            line.push(':');
            Tracepoints::fields_text(t, ev, line);
            return;
        }
        if let (Some(why), false) = (t.text.fallback(), t.noted) {
            t.noted = true;
            eprintln!(
                "tpoint: note: {} is shown as name=value, not as the kernel prints it: its format uses {why}",
                t.full_name()
            );
        }
        t.text.write_event(ev.data, syms.lookups(), line);
    }

    fn json(
        &mut self,
        which: usize,
        ev: &Event,
        _: &mut Symbols,
        obj: &mut serde_json::Map<String, serde_json::Value>,
    ) {
        let mut fields = serde_json::Map::new();
        for f in &self.list[which].fmt.fields {
            let v = match f.value(ev.data) {
                Some(Value::Int(i)) => serde_json::json!(i),
                Some(Value::Uint(u)) => serde_json::json!(u),
                Some(Value::Str(s)) => serde_json::json!(s),
                Some(Value::Array(a)) => serde_json::json!(a),
                Some(v) => serde_json::json!(v.to_string()),
                None => serde_json::Value::Null,
            };
            fields.insert(f.name.clone(), v);
        }
        obj.insert("fields".into(), fields.into());
    }
}
