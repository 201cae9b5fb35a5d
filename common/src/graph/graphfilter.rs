//! `set_graph_function`, shared by the funcgraph runs of a kernel that runs
//! function_graph in instances (Linux 6.12 here) but keeps the graph
//! filter global: the file exists only at the top level, and every
//! function_graph tracer, in any instance, records only the graphs of the
//! functions it lists (all functions when it is empty).
//!
//! So each run adds its functions (patterns) to the list and takes them
//! out again at the end; every run then sees the graphs of all runs'
//! functions in its instance and shows only its own (graph.rs). The runs
//! keep a record (`graph-function.lock`, JSON, changed under `flock`):
//! the list as it was before the first of them (`base`), and each run's
//! patterns with its owner (PID, start time, PID namespace). A run that was
//! killed is taken out of the list by the next run that changes it.
//!
//! Someone else's use is left alone: if the list holds functions that no
//! run of ours put there, or a function_graph tracer that is not ours runs
//! (at the top level or in another instance; adding functions would narrow
//! what it records), funcgraph refuses unless forced.
//!
//! The list is always written whole through one open file: the kernel
//! swaps the new list in when the file is closed, so other tracers never
//! see it empty (which would mean every function) half way.

use crate::base::glob::Glob;
use crate::kernel::functions::FunctionList;
use crate::kernel::tracefs::{self, Tracefs};
use crate::lifecycle::instance;
use crate::lifecycle::lock::LockFile;
use crate::lifecycle::owner::{Liveness, Owner};
use crate::lifecycle::toplevel::{current, write_functions, Kind};
use crate::{Error, ErrorKind, Result};
use serde_json::json;
use std::collections::BTreeSet;
use std::time::Duration;

const LOCK_NAME: &str = "graph-function.lock";
const FILE: &str = "set_graph_function";
/// The longest a run waits for another one that is changing the list (one
/// name takes about 0.2 s to write under TCG).
const LOCK_WAIT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Holder {
    owner: Owner,
    patterns: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Record {
    base: Vec<String>,
    holders: Vec<Holder>,
}

impl Record {
    fn parse(text: &str) -> Record {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else {
            return Record::default();
        };
        let strings = |v: &serde_json::Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut holders = Vec::new();
        for h in v["holders"].as_array().into_iter().flatten() {
            let o = &h["owner"];
            let (Some(pid), Some(start), Some(pidns)) =
                (o[0].as_u64(), o[1].as_u64(), o[2].as_u64())
            else {
                continue;
            };
            holders.push(Holder {
                owner: Owner {
                    pid: pid as u32,
                    start,
                    pidns,
                },
                patterns: strings(&h["patterns"]),
            });
        }
        Record {
            base: strings(&v["base"]),
            holders,
        }
    }

    fn text(&self) -> String {
        let hs: Vec<serde_json::Value> = self
            .holders
            .iter()
            .map(|h| json!({"owner": [h.owner.pid, h.owner.start, h.owner.pidns], "patterns": h.patterns}))
            .collect();
        json!({"base": self.base, "holders": hs}).to_string()
    }

    /// The tokens the list must hold: the base's names, then every
    /// holder's patterns.
    fn tokens(&self) -> Vec<String> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        let base = self
            .base
            .iter()
            .map(|l| l.split_whitespace().next().unwrap_or("").to_string());
        for t in base.chain(self.holders.iter().flat_map(|h| h.patterns.iter().cloned())) {
            if !t.is_empty() && seen.insert(t.clone()) {
                out.push(t);
            }
        }
        out
    }
}

/// The function names (as the list shows them, `name [module]`) that
/// tokens select.
fn selected(list: &FunctionList, tokens: &[String]) -> BTreeSet<String> {
    let globs: Vec<Glob> = tokens.iter().filter_map(|t| Glob::new(t).ok()).collect();
    list.all()
        .iter()
        .filter(|f| globs.iter().any(|g| g.matches(&f.name)))
        .map(|f| f.line())
        .collect()
}

/// The list as it is now, as a set of lines.
fn now(tfs: &Tracefs) -> Result<BTreeSet<String>> {
    Ok(current(tfs, FILE, Kind::Functions)?
        .lines()
        .map(str::to_string)
        .collect())
}

/// function_graph tracers that are not funcgraph runs in `ours`.
fn other_graph_tracers(tfs: &Tracefs, ours: &[Owner]) -> Vec<String> {
    let mut who = Vec::new();
    if current(tfs, "current_tracer", Kind::Plain).unwrap_or_default() == "function_graph" {
        who.push("the top-level tracer is function_graph".to_string());
    }
    for name in instance::list_instances(tfs).unwrap_or_default() {
        let t = current(
            tfs,
            &format!("instances/{name}/current_tracer"),
            Kind::Plain,
        )
        .unwrap_or_default();
        if t != "function_graph" {
            continue;
        }
        let mine = Owner::from_instance_name(&name)
            .map(|(tool, o)| crate::graph::TOOLS.contains(&tool.as_str()) && ours.contains(&o))
            .unwrap_or(false);
        if !mine {
            who.push(format!("instance {name} runs function_graph"));
        }
    }
    who
}

/// This run's share of `set_graph_function`; taken out on drop.
pub struct GraphFilter {
    tfs: Tracefs,
    me: Owner,
    list: FunctionList,
    held: bool,
    /// Lines of the list at start that funcgraph will put back (with -F).
    pub foreign: Vec<String>,
    /// Runs of ours found dead and taken out at start.
    pub swept: Vec<u32>,
}

impl GraphFilter {
    /// Adds `patterns` (validated names or globs) to the list. Refuses
    /// (Busy) when someone else uses function_graph or the list, unless
    /// `force`. `stop` is asked while waiting for another run.
    pub fn acquire(
        tfs: &Tracefs,
        list: &FunctionList,
        patterns: &[String],
        force: bool,
        stop: &dyn Fn() -> bool,
    ) -> Result<GraphFilter> {
        let me = Owner::current();
        let mut lock = LockFile::open(LOCK_NAME)?;
        if !lock.lock(LOCK_WAIT, stop)? {
            return Err(if stop() {
                Error::interrupted()
            } else {
                Error::new(
                    ErrorKind::Busy,
                    "another funcgraph run kept set_graph_function locked for too long",
                )
            });
        }
        let mut rec = Record::parse(&lock.read());
        let mut swept = Vec::new();
        let had_holders = !rec.holders.is_empty();
        let expected = selected(list, &rec.tokens());
        rec.holders.retain(|h| {
            let alive = h.owner.liveness() != Liveness::Dead;
            if !alive {
                swept.push(h.owner.pid);
            }
            alive
        });
        let cur = now(tfs)?;
        // Lines that no run of ours accounts for: someone else's.
        let foreign: Vec<String> = if had_holders {
            cur.difference(&expected).cloned().collect()
        } else {
            cur.iter().cloned().collect()
        };
        if !had_holders {
            rec.base.clear();
        }
        let live: Vec<Owner> = rec.holders.iter().map(|h| h.owner).collect();
        let mut why = Vec::new();
        if !foreign.is_empty() {
            why.push(format!(
                "set_graph_function lists {} function{} that funcgraph did not put there ({}{})",
                foreign.len(),
                if foreign.len() == 1 { "" } else { "s" },
                foreign
                    .iter()
                    .take(3)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
                if foreign.len() > 3 { ", ..." } else { "" }
            ));
        }
        why.extend(other_graph_tracers(tfs, &live));
        if !why.is_empty() && !force {
            return Err(Error::new(
                ErrorKind::Busy,
                format!(
                    "someone else uses function_graph ({}); set_graph_function is global on this kernel (one list for every instance), so adding funcgraph's functions would change what they record. Use -F to add them anyway (they are taken out again afterwards)",
                    why.join("; ")
                ),
            ));
        }
        for f in &foreign {
            if !rec.base.contains(f) {
                rec.base.push(f.clone());
            }
        }
        rec.holders.push(Holder {
            owner: me,
            patterns: patterns.to_vec(),
        });
        if stop() {
            return Err(Error::interrupted());
        }
        // The record first: a run killed during the write is then known.
        lock.write(&rec.text())?;
        let written =
            write_functions(&tfs.path(FILE), &rec.tokens()).and_then(|()| {
                let want = selected(list, patterns);
                let got = now(tfs)?;
                let missing: Vec<&String> = want.difference(&got).collect();
                if missing.is_empty() {
                    return Ok(());
                }
                Err(Error::new(
                    ErrorKind::Io,
                    format!(
                    "set_graph_function does not list {} after writing it (did a module unload?)",
                    missing.iter().take(3).map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                ),
                ))
            });
        // Unlocked before a failure drops the guard, which locks again.
        drop(lock);
        let gf = GraphFilter {
            tfs: tfs.clone(),
            me,
            list: list.clone(),
            held: true,
            foreign,
            swept,
        };
        written.map(|()| gf)
    }

    /// Takes this run's functions out (also done on drop).
    pub fn release(&mut self) {
        if !self.held {
            return;
        }
        self.held = false;
        let lock = LockFile::open(LOCK_NAME).and_then(|mut l| {
            // Cleanup goes on after a stop signal.
            if l.lock(LOCK_WAIT, &|| false)? {
                Ok(l)
            } else {
                Err(Error::new(ErrorKind::Busy, "the lock stayed busy"))
            }
        });
        let mut lock = match lock {
            Ok(l) => l,
            Err(e) => {
                eprintln!("funcgraph: warning: cannot take set_graph_function's lock to take our functions out: {e}");
                return;
            }
        };
        let mut rec = Record::parse(&lock.read());
        let expected = selected(&self.list, &rec.tokens());
        let me = self.me;
        rec.holders
            .retain(|h| h.owner != me && h.owner.liveness() != Liveness::Dead);
        // Lines someone added meanwhile stay.
        let cur = now(&self.tfs).unwrap_or_default();
        let extra: Vec<String> = cur.difference(&expected).cloned().collect();
        let mut tokens = rec.tokens();
        tokens.extend(
            extra
                .iter()
                .map(|l| l.split_whitespace().next().unwrap_or("").to_string()),
        );
        if let Err(e) = write_functions(&self.tfs.path(FILE), &tokens) {
            eprintln!("funcgraph: warning: cannot restore set_graph_function: {e}");
        }
        let text = if rec.holders.is_empty() {
            String::new()
        } else {
            rec.text()
        };
        let _ = lock.write(&text);
    }
}

impl Drop for GraphFilter {
    fn drop(&mut self) {
        self.release();
    }
}

/// What the (global) `set_graph_notrace` lists, for messages.
pub fn listed_notrace(tfs: &Tracefs) -> Vec<String> {
    tracefs::read_text(&tfs.path("set_graph_notrace"))
        .map(|t| crate::kernel::functions::parse_filter(&t))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One lock directory for all unit tests of this crate (they run in
    /// parallel and share the environment).
    fn test_lock_dir() -> &'static std::path::Path {
        static DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
        DIR.get_or_init(|| {
            let d = tempfile::tempdir().unwrap().keep();
            std::env::set_var("FTRACE_TOOLS_LOCK_DIR", &d);
            d
        })
    }

    const FUNCS: &str = "vfs_read\nvfs_write\ndo_sys_openat2\ngetname\n";

    fn fake() -> (tempfile::TempDir, Tracefs) {
        test_lock_dir();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::write(p.join("current_tracer"), "nop\n").unwrap();
        std::fs::create_dir(p.join("instances")).unwrap();
        std::fs::write(p.join(FILE), "").unwrap();
        let tfs = Tracefs::at(p);
        (dir, tfs)
    }

    #[test]
    fn records_round_trip() {
        let r = Record {
            base: vec!["a [m]".into()],
            holders: vec![Holder {
                owner: Owner {
                    pid: 1,
                    start: 2,
                    pidns: 3,
                },
                patterns: vec!["vfs_*".into(), "getname".into()],
            }],
        };
        assert_eq!(Record::parse(&r.text()), r);
        assert_eq!(r.tokens(), ["a", "vfs_*", "getname"]);
        assert_eq!(Record::parse("garbage"), Record::default());
        let list = FunctionList::parse(FUNCS);
        let s = selected(&list, &["vfs_*".to_string()]);
        assert_eq!(s.into_iter().collect::<Vec<_>>(), ["vfs_read", "vfs_write"]);
    }

    #[test]
    fn refuses_foreign_lists_and_tracers_unless_forced() {
        let (_d, tfs) = fake();
        let list = FunctionList::parse(FUNCS);
        // A plain file keeps the tokens on one line, unlike the kernel:
        // only the refusals are checked here, before anything is written.
        std::fs::write(tfs.path(FILE), "getname\n").unwrap();
        let e = GraphFilter::acquire(&tfs, &list, &["vfs_read".into()], false, &|| false)
            .err()
            .unwrap();
        assert_eq!(e.kind(), ErrorKind::Busy);
        assert!(e.message().contains("did not put there (getname)"), "{e}");
        std::fs::write(tfs.path(FILE), "").unwrap();
        std::fs::create_dir(tfs.path("instances/theirs")).unwrap();
        std::fs::write(
            tfs.path("instances/theirs/current_tracer"),
            "function_graph\n",
        )
        .unwrap();
        let e = GraphFilter::acquire(&tfs, &list, &["vfs_read".into()], false, &|| false)
            .err()
            .unwrap();
        assert!(
            e.message().contains("instance theirs runs function_graph"),
            "{e}"
        );
        let e = GraphFilter::acquire(&tfs, &list, &["vfs_read".into()], true, &|| true)
            .err()
            .unwrap();
        assert!(e.is_interrupted(), "{e}");
    }
}
