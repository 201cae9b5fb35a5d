//! The speed of the pipeline, offline: decode, graph, emitter and text.

use ftrace_common::app::output::Output;
use ftrace_common::buffer::format::EventFormat;
use ftrace_common::buffer::reader::Event;
use ftrace_common::graph::decode::Decoder;
use ftrace_common::graph::emit::{EmitConfig, Emitter, Line, LineSink};
use ftrace_common::graph::funcs::Funcs;
use ftrace_common::graph::render::{Columns, Text};
use ftrace_common::graph::sink::{GraphSink, NameTable, Printer};
use ftrace_common::graph::tree::{Builder, Config, Out, Rec};
use ftrace_common::kernel::proc::CommCache;
use ftrace_common::sym::kallsyms::KernelSymbols;
use ftrace_common::Flow;
use std::collections::HashSet;

/// Records per second through decode, graph, emitter and text, on the
/// captured sub-buffers. `tests/bench funcgraph` runs it with
/// --release and prints the figure; the debug build runs two rounds,
/// so that the measured pipeline is known to work.
#[test]
fn pipeline_speed() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/debian-6.12");
    let layout = ftrace_common::buffer::ringbuf::PageLayout::parse(
        &std::fs::read_to_string(dir.join("header_page")).unwrap(),
    )
    .unwrap();
    let fmt = |f: &str| EventFormat::parse(&std::fs::read_to_string(dir.join(f)).unwrap()).unwrap();
    let dec = Decoder::new(&fmt("entry-format"), &fmt("exit-format"), None).unwrap();
    let raw = std::fs::read(dir.join("raw-cpu1")).unwrap();
    let mut evs = Vec::new();
    for page in raw.chunks(layout.subbuf_size()) {
        for r in ftrace_common::buffer::ringbuf::Page::parse(layout, page).unwrap() {
            evs.push((r.ts, r.data.to_vec()));
        }
    }
    let syms = KernelSymbols::load_from(&dir.join("kallsyms")).unwrap();
    let mut sink = GraphSink {
        dec,
        retval: false,
        builder: Builder::new(Config::default()),
        emitter: Emitter::new(EmitConfig::default()),
        outs: Vec::new(),
        printer: Printer {
            out: Output::new(),
            text: Text::new(
                Columns {
                    duration: true,
                    ..Columns::default()
                },
                2,
            ),
            names: NameTable {
                funcs: Funcs::new(syms, ["do_sys_openat2".to_string()].into(), HashSet::new()),
                comms: CommCache::new(None),
            },
            json: false,
            buf: String::new(),
        },
    };
    // The output goes nowhere: measure the work, not the terminal.
    let t0 = std::time::Instant::now();
    let rounds = if cfg!(debug_assertions) { 2 } else { 300 };
    let mut n = 0u64;
    let mut lines = 0usize;
    for _ in 0..rounds {
        for (ts, data) in &evs {
            let ev = Event::from_record(1, *ts, data).unwrap();
            let Some((mut rec, addr)) = sink.dec.decode(&ev, false) else {
                continue;
            };
            if let Rec::Entry { func, .. } | Rec::Exit { func, .. } = &mut rec {
                *func = sink.printer.names.funcs.id(addr);
            }
            sink.builder
                .push(rec, &sink.printer.names.funcs, &mut sink.outs);
            let outs = std::mem::take(&mut sink.outs);
            struct Count<'a>(&'a mut Printer, &'a mut usize);
            impl LineSink for Count<'_> {
                fn line(&mut self, l: Line) -> Flow {
                    self.0.buf.clear();
                    self.0.text.format(&l, &mut self.0.names, &mut self.0.buf);
                    *self.1 += self.0.buf.len();
                    Flow::Continue
                }
                fn tree(&mut self, _: &[Out], _: u64) -> Flow {
                    Flow::Continue
                }
            }
            sink.emitter
                .push(&outs, &mut Count(&mut sink.printer, &mut lines));
            sink.outs = outs;
            sink.outs.clear();
            n += 1;
        }
    }
    let s = t0.elapsed().as_secs_f64();
    assert_eq!(n, rounds * evs.len() as u64, "every record decodes");
    assert!(lines > 0, "the graph printed nothing");
    eprintln!(
        "{n} records in {s:.3} s: {:.2} M records/s ({lines} bytes of text)",
        n as f64 / s / 1e6
    );
}
