//! What the patterns of [`crate::probes::pattern`] match (funccount,
//! stackcount): kernel functions (from
//! `available_filter_functions`), tracepoints (from `available_events`) and
//! user functions (from the target's ELF symbols). Nothing is written.

use crate::base::glob;
use crate::kernel::functions::{FunctionList, TraceableFunction};
use crate::kernel::tracefs::Tracefs;
use crate::probes::pattern::{Matcher, Spec};
use crate::probes::uprobe;
use crate::{Error, Result};
use std::collections::{HashMap, HashSet};

/// A user function to count.
#[derive(Debug, Clone)]
pub struct UserFunc {
    /// As printed: `libc:malloc`.
    pub display: String,
    /// `PATH:0xOFFSET` for uprobe_events.
    pub location: String,
}

/// What the patterns matched.
#[derive(Debug, Default)]
pub struct Plan {
    /// Kernel function lines (for filters), in the kernel's order.
    pub funcs: Vec<TraceableFunction>,
    /// Their distinct names.
    pub names: Vec<String>,
    /// Tracepoints.
    pub tracepoints: Vec<(String, String)>,
    /// User functions.
    pub user: Vec<UserFunc>,
}

/// Matches every pattern; `pid` is the process whose files `u:` targets
/// are looked up in (its mounts and maps).
pub fn plan(tfs: &Tracefs, specs: &[Spec], regexp: bool, pid: Option<u32>) -> Result<Plan> {
    let mut plan = Plan::default();
    kernel_functions(tfs, specs, regexp, &mut plan)?;
    tracepoints(tfs, specs, regexp, &mut plan)?;
    user_functions(specs, regexp, pid, &mut plan)?;
    Ok(plan)
}

impl Plan {
    /// Functions and events in all.
    pub fn total(&self) -> usize {
        self.names.len() + self.tracepoints.len() + self.user.len()
    }

    /// Only kernel functions: nothing else needs the buffer.
    pub fn only_functions(&self) -> bool {
        self.tracepoints.is_empty() && self.user.is_empty()
    }

    /// Names that belong to several functions (static functions of
    /// different files): a kprobe by name sits on one of them.
    pub fn shared_names(&self) -> usize {
        self.funcs.len() - self.names.len()
    }

    /// `2 functions, 1 tracepoint`, for the Tracing line.
    pub fn what(&self) -> String {
        let n = |count: usize, what: &str| {
            (count > 0).then(|| format!("{count} {what}{}", if count == 1 { "" } else { "s" }))
        };
        [
            n(self.names.len(), "function"),
            n(self.tracepoints.len(), "tracepoint"),
            n(self.user.len(), "user function"),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", ")
    }

    /// `-l`: what the patterns match, one a line.
    pub fn listing(&self) -> Vec<String> {
        self.names
            .iter()
            .cloned()
            .chain(self.tracepoints.iter().map(|(s, e)| format!("t:{s}:{e}")))
            .chain(self.user.iter().map(|u| format!("u:{}", u.display)))
            .collect()
    }
}

fn kernel_functions(tfs: &Tracefs, specs: &[Spec], regexp: bool, plan: &mut Plan) -> Result<()> {
    let patterns: Vec<&str> = specs
        .iter()
        .filter_map(|s| match s {
            Spec::Kernel { pattern } => Some(pattern.as_str()),
            _ => None,
        })
        .collect();
    if patterns.is_empty() {
        return Ok(());
    }
    let list = FunctionList::load(tfs)?;
    let mut seen = HashSet::new();
    for p in &patterns {
        let m = Matcher::new(p, regexp)?;
        for f in list.require_matching(p, "", |n| m.matches(n))? {
            if seen.insert(f.index) {
                plan.funcs.push(f.clone());
            }
        }
    }
    plan.funcs.sort_by_key(|f| f.index);
    let mut names: Vec<String> = plan.funcs.iter().map(|f| f.name.clone()).collect();
    names.sort();
    names.dedup();
    plan.names = names;
    Ok(())
}

fn tracepoints(tfs: &Tracefs, specs: &[Spec], regexp: bool, plan: &mut Plan) -> Result<()> {
    let mut all: Option<String> = None;
    let mut seen = HashSet::new();
    for s in specs {
        let Spec::Tracepoint { system, event } = s else {
            continue;
        };
        let text = match &all {
            Some(t) => t,
            None => all.insert(tfs.read("available_events")?),
        };
        let ms = Matcher::new(system, regexp)?;
        let me = Matcher::new(event, regexp)?;
        let mut n = 0;
        for line in text.lines() {
            let Some((sys, ev)) = line.split_once(':') else {
                continue;
            };
            if ms.matches(sys) && me.matches(ev) {
                n += 1;
                if seen.insert(line.to_string()) {
                    plan.tracepoints.push((sys.to_string(), ev.to_string()));
                }
            }
        }
        if n == 0 {
            let wanted = format!("{system}:{event}").replace(['*', '?'], "");
            return Err(Error::usage(format!(
                "no tracepoint matches '{}'{} (tpoint -l lists them)",
                s.text(),
                glob::did_you_mean(&wanted, text.lines(), 3)
            )));
        }
    }
    Ok(())
}

fn user_functions(specs: &[Spec], regexp: bool, pid: Option<u32>, plan: &mut Plan) -> Result<()> {
    let mut files = HashMap::new();
    for s in specs {
        let Spec::User { target, func } = s else {
            continue;
        };
        let (t, found) = uprobe::matching(target, func, regexp, pid, &mut files)?;
        for (name, off) in found {
            plan.user.push(UserFunc {
                display: format!("{target}:{name}"),
                location: format!("{}:{off:#x}", t.path.display()),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_counted_in_words() {
        let mut p = Plan {
            names: vec!["vfs_read".into(), "vfs_write".into()],
            ..Plan::default()
        };
        assert_eq!(p.what(), "2 functions");
        p.tracepoints.push(("sched".into(), "sched_switch".into()));
        assert_eq!(p.what(), "2 functions, 1 tracepoint");
        p.names.clear();
        p.user.push(UserFunc {
            display: "libc:malloc".into(),
            location: "/lib/libc.so.6:0x10".into(),
        });
        assert_eq!(p.what(), "1 tracepoint, 1 user function");
        assert_eq!(p.total(), 2);
        assert!(!p.only_functions());
    }
}
