//! Sweeping state left by runs that were killed (SIGKILL, a crash, a power
//! cut of the terminal): our instances and dynamic events whose owner is
//! gone. State of a live run, state from another PID namespace and anything
//! not named by us is never touched.

use crate::base::error::Result;
use crate::kernel::tracefs::Tracefs;
use crate::lifecycle::dynevent::{list_events, remove_event};
use crate::lifecycle::instance::{list_instances, remove_instance_dir};
use crate::lifecycle::owner::{Liveness, Owner};

/// Which of our state to remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Only state whose owner is dead (what every tool does at start).
    Dead,
    /// Also state whose owner is alive (`reset-ftrace --all`).
    AllOurs,
}

/// One piece of our state found in tracefs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// `instance NAME` or `uprobe GROUP/NAME` / `kprobe GROUP/NAME`.
    pub what: String,
    /// Its owner.
    pub owner: Owner,
    /// Whether the owner is alive.
    pub liveness: Liveness,
    /// What happened to it.
    pub outcome: Outcome,
}

/// What the sweep did with an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Removed.
    Removed,
    /// Would be removed (dry run).
    WouldRemove,
    /// Left alone (owner alive or foreign).
    Kept,
    /// Removal failed; the message says why.
    Failed(String),
}

/// Finds our state and removes what `scope` covers (nothing when
/// `dry_run`). Instances go first: removing one disables the events it had
/// enabled, which the kernel requires before the events can be removed.
pub fn sweep(tfs: &Tracefs, scope: Scope, dry_run: bool) -> Result<Vec<Item>> {
    let me = Owner::current();
    let mut items = Vec::new();
    let decide = |owner: &Owner| -> (Liveness, bool) {
        let l = owner.liveness();
        let remove = match scope {
            Scope::Dead => l == Liveness::Dead,
            // Never our own state: the caller's guards own that.
            Scope::AllOurs => l != Liveness::Foreign && *owner != me,
        };
        (l, remove)
    };
    if tfs.exists("instances") {
        for name in list_instances(tfs)? {
            let Some((_, owner)) = Owner::from_instance_name(&name) else {
                continue;
            };
            let (liveness, remove) = decide(&owner);
            let outcome = if !remove {
                Outcome::Kept
            } else if dry_run {
                Outcome::WouldRemove
            } else {
                let dir = tfs.path("instances").join(&name);
                let _ = crate::kernel::tracefs::write_file(&dir.join("tracing_on"), "0", false);
                match remove_instance_dir(&dir) {
                    Ok(()) => Outcome::Removed,
                    Err(e) => Outcome::Failed(e.to_string()),
                }
            };
            items.push(Item {
                what: format!("instance {name}"),
                owner,
                liveness,
                outcome,
            });
        }
    }
    for (file, label) in [("uprobe_events", "uprobe"), ("kprobe_events", "kprobe")] {
        if !tfs.exists(file) {
            continue;
        }
        let text = tfs.read(file)?;
        for (group, name) in list_events(&text) {
            let Some(owner) = Owner::from_group_name(&group) else {
                continue;
            };
            let (liveness, remove) = decide(&owner);
            let outcome = if !remove {
                Outcome::Kept
            } else if dry_run {
                Outcome::WouldRemove
            } else {
                match remove_event(tfs, file, &group, &name) {
                    Ok(()) => Outcome::Removed,
                    Err(e) => Outcome::Failed(e.to_string()),
                }
            };
            items.push(Item {
                what: format!("{label} {group}/{name}"),
                owner,
                liveness,
                outcome,
            });
        }
    }
    Ok(items)
}

/// The sweep every tool runs at start: removes dead runs' state and says so
/// on stderr in one line per failure (success is silent).
pub fn sweep_dead(tfs: &Tracefs) {
    match sweep(tfs, Scope::Dead, false) {
        Ok(items) => {
            for it in items {
                if let Outcome::Failed(why) = it.outcome {
                    eprintln!(
                        "warning: cannot remove {} left by a dead run: {why}",
                        it.what
                    );
                }
            }
        }
        Err(e) => eprintln!("warning: cannot look for state left by dead runs: {e}"),
    }
}
