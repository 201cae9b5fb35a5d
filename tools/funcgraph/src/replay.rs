//! The kernel's own text against funcgraph's, for the same records: raw
//! sub-buffers and the `trace` text captured together in the guests of
//! tests/vm (function_graph on do_sys_openat2, one task, one open).

use ftrace_common::buffer::format::EventFormat;
use ftrace_common::buffer::reader::Event;
use ftrace_common::buffer::ringbuf::{Page, PageLayout};
use ftrace_common::graph::decode::Decoder;
use ftrace_common::graph::emit::{EmitConfig, Emitter, Line, LineSink};
use ftrace_common::graph::funcs::Funcs;
use ftrace_common::graph::render::{Columns, Names, Text};
use ftrace_common::graph::tree::{self as graph, Builder, Config, Out, Rec};
use ftrace_common::sym::kallsyms::KernelSymbols;
use ftrace_common::Flow;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

struct OneComm<'a>(&'a Funcs);
impl Names for OneComm<'_> {
    fn func(&self, f: graph::FuncId) -> &str {
        self.0.name(f)
    }
    fn comm(&mut self, _pid: i32) -> String {
        "ftt-workload".into()
    }
}

/// Every record of the capture in `dir`, in time order.
fn records(dir: &Path) -> (Decoder, Vec<(u32, u64, Vec<u8>)>) {
    let layout =
        PageLayout::parse(&std::fs::read_to_string(dir.join("header_page")).unwrap()).unwrap();
    let fmt = |f: &str| EventFormat::parse(&std::fs::read_to_string(dir.join(f)).unwrap()).unwrap();
    let dec = Decoder::new(&fmt("entry-format"), &fmt("exit-format"), None).unwrap();
    let mut evs = Vec::new();
    for cpu in 0..2u32 {
        let Ok(raw) = std::fs::read(dir.join(format!("raw-cpu{cpu}"))) else {
            continue;
        };
        for page in raw.chunks(layout.subbuf_size()) {
            let p = Page::parse(layout, page).unwrap();
            for r in p {
                evs.push((cpu, r.ts, r.data.to_vec()));
            }
        }
    }
    evs.sort_by_key(|e| e.1);
    (dec, evs)
}

/// funcgraph's lines for the capture, with these columns.
fn render(dir: &Path, cols: Columns) -> Vec<String> {
    let (dec, evs) = records(dir);
    let syms = KernelSymbols::load_from(&dir.join("kallsyms")).unwrap();
    let mut funcs = Funcs::new(syms, ["do_sys_openat2".to_string()].into(), HashSet::new());
    let mut b = Builder::new(Config::default());
    let mut outs = Vec::new();
    for (cpu, ts, data) in &evs {
        let ev = Event::from_record(*cpu, *ts, data).unwrap();
        let Some((mut rec, addr)) = dec.decode(&ev, false) else {
            continue;
        };
        if let Rec::Entry { func, .. } | Rec::Exit { func, .. } = &mut rec {
            *func = funcs.id(addr);
        }
        b.push(rec, &funcs, &mut outs);
    }
    b.finish(&mut outs);
    struct Lines<'a> {
        text: Text,
        funcs: &'a Funcs,
        lines: Vec<String>,
    }
    impl LineSink for Lines<'_> {
        fn line(&mut self, l: Line) -> Flow {
            let mut s = String::new();
            self.text.format(&l, &mut OneComm(self.funcs), &mut s);
            self.lines.extend(s.lines().map(str::to_string));
            Flow::Continue
        }
        fn tree(&mut self, _: &[Out], _: u64) -> Flow {
            Flow::Continue
        }
    }
    let mut sink = Lines {
        text: Text::new(cols, 2),
        funcs: &funcs,
        lines: Vec::new(),
    };
    let mut e = Emitter::new(EmitConfig::default());
    e.push(&outs, &mut sink);
    e.finish(&mut sink);
    sink.lines
}

fn kernel_text(dir: &Path, name: &str) -> Vec<String> {
    std::fs::read_to_string(dir.join(name))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

fn captures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    v
}

#[test]
fn same_lines_as_the_kernel() {
    let caps = captures();
    assert!(!caps.is_empty());
    for dir in caps {
        let dur = Columns {
            duration: true,
            ..Columns::default()
        };
        let all = Columns {
            abs_time: true,
            proc: true,
            duration: true,
            tail: true,
        };
        for (cols, file) in [
            (dur, "text-default"),
            (Columns::default(), "text-nodur"),
            (all, "text-all"),
        ] {
            // The sub-buffers kept are the first ones of the capture,
            // the text its first lines: graphs still open where the
            // records end differ from the kernel's full text there.
            let want = kernel_text(&dir, file);
            let got = render(&dir, cols);
            assert!(want.len() >= 200, "{}", dir.display());
            assert!(got.len() >= want.len(), "{} {file}", dir.display());
            for (i, (g, w)) in got.iter().zip(want.iter()).enumerate() {
                assert_eq!(g, w, "{} {file} line {}", dir.display(), i + 1);
            }
        }
    }
}
