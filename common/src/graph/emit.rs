//! From calls to lines: the kernel's leaf form (`func();` for a call with
//! nothing shown inside), and holding each task's graph until its root
//! returns where the output needs the whole graph first (a duration
//! threshold, JSON trees).
//!
//! - Streaming (the default): a call's `func() {` line waits for the next
//!   item of its task; if that is its own return, the two become one
//!   `func();` line, as the kernel's text does.
//! - Held (`--threshold`, `--json`): each graph (a root call and
//!   everything inside) is kept until the root returns. With a threshold
//!   it is then shown only if the root took at least that long; a graph
//!   whose root has already been running longer than the threshold is
//!   shown as it goes (wall time only: with on-CPU time that is not known
//!   early). A graph larger than the hold limit keeps its first items and
//!   counts the rest.

use crate::graph::fast::FastMap;
use crate::graph::tree::{End, FuncId, Out, Site, TaskKey};
use crate::Flow;

/// One printable item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    /// `func() {`
    Enter {
        /// Where the call began.
        at: Site,
        /// Its depth.
        depth: u32,
        /// The function.
        func: FuncId,
    },
    /// `func();` (a call with nothing shown inside).
    Leaf {
        /// Where the call began.
        at: Site,
        /// Its depth.
        depth: u32,
        /// The function.
        func: FuncId,
        /// Its duration when known.
        dur: Option<u64>,
        /// How it ended.
        end: End,
        /// Its return value, if recorded.
        retval: Option<u64>,
        /// Calls inside it the kernel could not record.
        overrun: u32,
    },
    /// `}`
    Close {
        /// Where the call ended (or was found to have ended).
        at: Site,
        /// Its depth.
        depth: u32,
        /// The function.
        func: FuncId,
        /// Its duration when known.
        dur: Option<u64>,
        /// How it ended.
        end: End,
        /// Its return value, if recorded.
        retval: Option<u64>,
        /// Calls inside it the kernel could not record.
        overrun: u32,
    },
    /// Events were lost here in this graph.
    Gap {
        /// Where.
        at: Site,
        /// The depth of the mark.
        depth: u32,
    },
    /// Events lost on a CPU.
    Lost {
        /// The CPU.
        cpu: u32,
        /// How many, if known.
        count: Option<u64>,
    },
    /// Items of a held graph that were not kept (too large).
    Dropped {
        /// The graph's root.
        at: Site,
        /// How many.
        count: u64,
    },
}

/// Where lines and whole graphs go.
pub trait LineSink {
    /// One line (streaming, or a held graph replayed).
    fn line(&mut self, l: Line) -> Flow;
    /// A whole graph (JSON mode): its items in order, and how many were
    /// not kept.
    fn tree(&mut self, items: &[Out], dropped: u64) -> Flow;
}

/// How the emitter works.
#[derive(Debug, Clone, Copy)]
pub struct EmitConfig {
    /// Show only graphs whose root took at least this many ns.
    pub threshold: Option<u64>,
    /// Hand whole graphs to [`LineSink::tree`] instead of lines.
    pub trees: bool,
    /// Durations are on-CPU time (a long-running root is not known to be
    /// slow before it returns).
    pub on_cpu: bool,
    /// The most items held per graph.
    pub hold_limit: usize,
}

impl Default for EmitConfig {
    fn default() -> Self {
        EmitConfig {
            threshold: None,
            trees: false,
            on_cpu: false,
            hold_limit: 200_000,
        }
    }
}

#[derive(Debug, Default)]
struct Held {
    items: Vec<Out>,
    dropped: u64,
    root_ts: u64,
    /// Known slow: its items go straight out (text with a threshold).
    streaming: bool,
}

/// Turns [`Out`] items into lines or trees; see the module documentation.
#[derive(Debug, Default)]
pub struct Emitter {
    cfg: EmitConfig,
    pending: FastMap<TaskKey, Out>,
    held: FastMap<TaskKey, Held>,
    /// Graphs left out by the threshold.
    pub below_threshold: u64,
    /// Graphs shown.
    pub graphs: u64,
}

impl Emitter {
    /// An emitter.
    pub fn new(cfg: EmitConfig) -> Emitter {
        Emitter {
            cfg,
            ..Emitter::default()
        }
    }

    fn holding(&self) -> bool {
        self.cfg.trees || self.cfg.threshold.is_some()
    }

    /// Takes the builder's items.
    pub fn push(&mut self, items: &[Out], sink: &mut dyn LineSink) -> Flow {
        for o in items {
            if self.one(*o, sink) == Flow::Stop {
                return Flow::Stop;
            }
        }
        Flow::Continue
    }

    fn one(&mut self, o: Out, sink: &mut dyn LineSink) -> Flow {
        let Some(task) = o.task() else {
            // Lost events: reported where they were seen.
            if let Out::Lost { cpu, count } = o {
                return sink.line(Line::Lost { cpu, count });
            }
            return Flow::Continue;
        };
        if !self.holding() {
            if let Out::Exit { depth: 0, .. } = o {
                self.graphs += 1;
            }
            return self.stream(o, sink);
        }
        let root_ends = matches!(o, Out::Exit { depth: 0, .. });
        if !self.held.contains_key(&task) {
            if !root_ends && !matches!(o, Out::Enter { depth: 0, .. }) {
                // Not inside a held graph (cannot happen with the builder's
                // output); shown as it comes.
                return self.stream(o, sink);
            }
            let ts = match o {
                Out::Enter { at, .. } | Out::Exit { at, .. } | Out::Gap { at, .. } => at.ts,
                Out::Lost { .. } => 0,
            };
            self.held.insert(
                task,
                Held {
                    root_ts: ts,
                    ..Held::default()
                },
            );
        }
        let h = self.held.get_mut(&task).expect("held graph");
        if h.streaming {
            if root_ends {
                self.held.remove(&task);
                self.graphs += 1;
            }
            return self.stream(o, sink);
        }
        if h.items.len() < self.cfg.hold_limit || root_ends {
            h.items.push(o);
        } else {
            h.dropped += 1;
        }
        let ts = match o {
            Out::Enter { at, .. } | Out::Exit { at, .. } | Out::Gap { at, .. } => at.ts,
            Out::Lost { .. } => h.root_ts,
        };
        let elapsed = ts.saturating_sub(h.root_ts);
        if root_ends {
            let h = self.held.remove(&task).expect("held graph");
            let Out::Exit { dur, .. } = o else {
                unreachable!()
            };
            let keep = match (self.cfg.threshold, dur) {
                (None, _) => true,
                (Some(t), Some(d)) => d >= t,
                (Some(t), None) => !self.cfg.on_cpu && elapsed >= t,
            };
            if !keep {
                self.below_threshold += 1;
                return Flow::Continue;
            }
            self.graphs += 1;
            return self.release(h, sink);
        }
        // Known slow already: show it as it goes (text only).
        if let Some(t) = self.cfg.threshold {
            if !self.cfg.trees && !self.cfg.on_cpu && elapsed >= t && h.dropped == 0 {
                let items = std::mem::take(&mut h.items);
                h.streaming = true;
                for i in items {
                    if self.stream(i, sink) == Flow::Stop {
                        return Flow::Stop;
                    }
                }
            }
        }
        Flow::Continue
    }

    fn release(&mut self, h: Held, sink: &mut dyn LineSink) -> Flow {
        if self.cfg.trees {
            return sink.tree(&h.items, h.dropped);
        }
        let n = h.items.len();
        for (i, o) in h.items.into_iter().enumerate() {
            // The dropped items came before the root's return, the last.
            if h.dropped > 0 && i + 1 == n {
                if let Some(task) = o.task() {
                    self.flush_pending(task, sink);
                }
                let at = match o {
                    Out::Exit { at, .. } => at,
                    _ => continue,
                };
                if sink.line(Line::Dropped {
                    at,
                    count: h.dropped,
                }) == Flow::Stop
                {
                    return Flow::Stop;
                }
            }
            if self.stream(o, sink) == Flow::Stop {
                return Flow::Stop;
            }
        }
        Flow::Continue
    }

    fn flush_pending(&mut self, task: TaskKey, sink: &mut dyn LineSink) -> Flow {
        if let Some(Out::Enter { at, depth, func }) = self.pending.remove(&task) {
            return sink.line(Line::Enter { at, depth, func });
        }
        Flow::Continue
    }

    fn stream(&mut self, o: Out, sink: &mut dyn LineSink) -> Flow {
        let Some(task) = o.task() else {
            return Flow::Continue;
        };
        match o {
            Out::Enter { .. } => {
                let f = self.flush_pending(task, sink);
                self.pending.insert(task, o);
                f
            }
            Out::Exit {
                at,
                depth,
                func,
                dur,
                end,
                overrun,
                retval,
            } => {
                let leaf = match self.pending.get(&task) {
                    Some(Out::Enter {
                        depth: d, func: f, ..
                    }) => *d == depth && *f == func && end != End::EntryLost,
                    _ => false,
                };
                if leaf {
                    let Some(Out::Enter { at: eat, .. }) = self.pending.remove(&task) else {
                        unreachable!()
                    };
                    if end == End::Unfinished {
                        // Still running: the kernel's text leaves it open.
                        return sink.line(Line::Enter {
                            at: eat,
                            depth,
                            func,
                        });
                    }
                    return sink.line(Line::Leaf {
                        at: eat,
                        depth,
                        func,
                        dur,
                        end,
                        retval,
                        overrun,
                    });
                }
                if self.flush_pending(task, sink) == Flow::Stop {
                    return Flow::Stop;
                }
                if end == End::Unfinished {
                    return Flow::Continue;
                }
                sink.line(Line::Close {
                    at,
                    depth,
                    func,
                    dur,
                    end,
                    retval,
                    overrun,
                })
            }
            Out::Gap { at, depth } => {
                if self.flush_pending(task, sink) == Flow::Stop {
                    return Flow::Stop;
                }
                sink.line(Line::Gap { at, depth })
            }
            Out::Lost { .. } => Flow::Continue,
        }
    }

    /// At the end: held graphs whose root is still running are shown if
    /// they are known to be slow (or always, without a threshold), and
    /// every waiting `func() {` line is printed.
    pub fn finish(&mut self, sink: &mut dyn LineSink) -> Flow {
        let mut tasks: Vec<TaskKey> = self.held.keys().copied().collect();
        tasks.sort();
        for t in tasks {
            let Some(h) = self.held.remove(&t) else {
                continue;
            };
            if h.streaming {
                continue;
            }
            if self.cfg.threshold.is_some() {
                // Unfinished roots were judged when the builder ended them;
                // anything left here never got its root's exit.
                self.below_threshold += 1;
                continue;
            }
            if self.release(h, sink) == Flow::Stop {
                return Flow::Stop;
            }
        }
        let mut tasks: Vec<TaskKey> = self.pending.keys().copied().collect();
        tasks.sort();
        for t in tasks {
            if self.flush_pending(t, sink) == Flow::Stop {
                return Flow::Stop;
            }
        }
        Flow::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::tree::tests::{ent, ext, run};
    use crate::graph::tree::{Config, Rec};

    #[derive(Default)]
    struct Collect {
        lines: Vec<String>,
        trees: Vec<(usize, u64)>,
    }

    impl LineSink for Collect {
        fn line(&mut self, l: Line) -> Flow {
            self.lines.push(match l {
                Line::Enter { depth, func, .. } => {
                    format!("{}{func}{{", " ".repeat(depth as usize))
                }
                Line::Leaf {
                    depth, func, dur, ..
                } => {
                    format!(
                        "{}{func}();{}",
                        " ".repeat(depth as usize),
                        dur.unwrap_or(0)
                    )
                }
                Line::Close {
                    depth, dur, end, ..
                } => format!(
                    "{}}}{}{}",
                    " ".repeat(depth as usize),
                    dur.map(|d| d.to_string()).unwrap_or_default(),
                    if end == End::Returned { "" } else { "?" }
                ),
                Line::Gap { .. } => "gap".into(),
                Line::Lost { .. } => "lost".into(),
                Line::Dropped { count, .. } => format!("dropped{count}"),
            });
            Flow::Continue
        }
        fn tree(&mut self, items: &[Out], dropped: u64) -> Flow {
            self.trees.push((items.len(), dropped));
            Flow::Continue
        }
    }

    fn emit(cfg: EmitConfig, recs: &[Rec]) -> Collect {
        let out = run(Config::default(), recs);
        let mut e = Emitter::new(cfg);
        let mut c = Collect::default();
        e.push(&out, &mut c);
        e.finish(&mut c);
        c
    }

    fn two_calls() -> Vec<Rec> {
        vec![
            // A fast graph (3 ns) and a slow one (100 ns).
            ent(10, 7, 0, 1, 0),
            ent(11, 7, 0, 2, 1),
            ext(12, 7, 0, 2, 1, 11),
            ext(13, 7, 0, 1, 0, 10),
            ent(20, 7, 0, 1, 0),
            ent(21, 7, 0, 2, 1),
            ent(22, 7, 0, 3, 2),
            ext(23, 7, 0, 3, 2, 22),
            ext(110, 7, 0, 2, 1, 21),
            ext(120, 7, 0, 1, 0, 20),
        ]
    }

    #[test]
    fn leaves_fold_into_one_line() {
        let c = emit(EmitConfig::default(), &two_calls());
        assert_eq!(
            c.lines,
            ["1{", " 2();1", "}3", "1{", " 2{", "  3();1", " }89", "}100"]
        );
    }

    #[test]
    fn threshold_keeps_slow_graphs_whole() {
        let cfg = EmitConfig {
            threshold: Some(50),
            ..EmitConfig::default()
        };
        let c = emit(cfg, &two_calls());
        assert_eq!(c.lines, ["1{", " 2{", "  3();1", " }89", "}100"]);
        // Without on-CPU time, a root known to be slow streams early, with
        // the same lines.
        let cfg = EmitConfig {
            threshold: Some(5),
            ..EmitConfig::default()
        };
        let c = emit(cfg, &two_calls());
        assert_eq!(c.lines, ["1{", " 2{", "  3();1", " }89", "}100"]);
    }

    #[test]
    fn trees_are_handed_whole_and_big_ones_are_cut() {
        let cfg = EmitConfig {
            trees: true,
            ..EmitConfig::default()
        };
        let c = emit(cfg, &two_calls());
        assert_eq!(c.trees, [(4, 0), (6, 0)]);
        let cfg = EmitConfig {
            hold_limit: 3,
            ..EmitConfig::default()
        };
        let cfg = EmitConfig {
            threshold: Some(1),
            on_cpu: true,
            ..cfg
        };
        let c = emit(cfg, &two_calls());
        assert_eq!(c.lines[..3], ["1{", " 2();1", "}3"]);
        assert_eq!(c.lines[3..], ["1{", " 2{", "  3{", "dropped2", "}100"]);
    }

    #[test]
    fn unfinished_calls_stay_open() {
        let c = emit(
            EmitConfig::default(),
            &[ent(10, 7, 0, 1, 0), ent(11, 7, 0, 2, 1)],
        );
        assert_eq!(c.lines, ["1{", " 2{"]);
    }
}
