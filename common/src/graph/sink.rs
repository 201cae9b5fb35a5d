//! The stream's sink: records -> calls (graph.rs) -> lines and trees
//! (emit.rs) -> text or JSON on stdout (render.rs).

use crate::app::output::Output;
use crate::app::stream::Sink;
use crate::buffer::reader::Event;
use crate::graph::decode::Decoder;
use crate::graph::emit::{Emitter, Line, LineSink};
use crate::graph::funcs::Funcs;
use crate::graph::render::{self, Names, Text};
use crate::graph::tree::{self, Builder, Out, Rec};
use crate::kernel::proc::CommCache;
use crate::Flow;

/// Function and task names for the printer.
pub struct NameTable {
    /// Function names, by address.
    pub funcs: Funcs,
    /// Task names, by PID.
    pub comms: CommCache,
}

impl Names for NameTable {
    fn func(&self, f: tree::FuncId) -> &str {
        self.funcs.name(f)
    }
    fn comm(&mut self, pid: i32) -> String {
        self.comms.get(pid).to_string()
    }
}

/// Lines (or trees) to stdout.
pub struct Printer {
    /// Where the lines go.
    pub out: Output,
    /// The graph text's formatter.
    pub text: Text,
    /// Function and task names.
    pub names: NameTable,
    /// JSON trees instead of lines.
    pub json: bool,
    /// A line's text, reused.
    pub buf: String,
}

impl LineSink for Printer {
    fn line(&mut self, l: Line) -> Flow {
        if self.json {
            return match l {
                Line::Lost { cpu, count } => self.out.lost_marker(cpu, count, true),
                _ => Flow::Continue,
            };
        }
        self.buf.clear();
        self.text.format(&l, &mut self.names, &mut self.buf);
        self.out.line(&self.buf)
    }

    fn tree(&mut self, items: &[Out], dropped: u64) -> Flow {
        let v = render::tree_json(items, dropped, &mut self.names);
        self.out.json(&v)
    }
}

/// The stream's sink: records -> calls -> lines.
pub struct GraphSink {
    /// The records' decoder.
    pub dec: Decoder,
    /// Return values decoded and shown.
    pub retval: bool,
    /// Calls rebuilt per task.
    pub builder: Builder,
    /// Calls cut and filtered into lines.
    pub emitter: Emitter,
    /// The builder's output, reused.
    pub outs: Vec<Out>,
    /// Lines out.
    pub printer: Printer,
}

impl GraphSink {
    fn flush_outs(&mut self) -> Flow {
        let outs = std::mem::take(&mut self.outs);
        let f = self.emitter.push(&outs, &mut self.printer);
        self.outs = outs;
        self.outs.clear();
        f
    }

    /// The end of the stream: the graphs still open are closed and shown
    /// (unless the sink itself stopped the stream: nothing more is
    /// wanted then).
    pub fn finish(&mut self, stopped_by_sink: bool) {
        if !stopped_by_sink {
            let mut outs = Vec::new();
            self.builder.finish(&mut outs);
            self.emitter.push(&outs, &mut self.printer);
            self.emitter.finish(&mut self.printer);
        }
    }
}

impl Sink for GraphSink {
    fn event(&mut self, ev: &Event) -> Flow {
        let Some((mut rec, addr)) = self.dec.decode(ev, self.retval) else {
            if let Some(name) = self.dec.exec_name(ev) {
                self.printer.names.comms.set(ev.pid, &name);
            }
            return Flow::Continue;
        };
        match &mut rec {
            Rec::Entry { func, .. } | Rec::Exit { func, .. } => {
                *func = self.printer.names.funcs.id(addr);
            }
            _ => {}
        }
        self.builder
            .push(rec, &self.printer.names.funcs, &mut self.outs);
        if self.outs.is_empty() {
            return Flow::Continue;
        }
        self.flush_outs()
    }

    fn lost(&mut self, cpu: u32, count: Option<u64>) -> Flow {
        self.builder.push(
            Rec::Lost { cpu, count },
            &self.printer.names.funcs,
            &mut self.outs,
        );
        self.flush_outs()
    }

    fn round_end(&mut self) -> Flow {
        self.printer.out.flush()
    }
}
