//! Sweeping state left by runs that were killed (SIGKILL, a crash, a power
//! cut of the terminal): our instances (with the hist triggers in them),
//! synthetic events and dynamic events whose owner is gone. State of a live
//! run, state from another PID namespace and anything not named by us is
//! never touched.
//!
//! The order is the kernel's: an instance whose hist triggers define
//! variables cannot be removed (EBUSY) until those triggers are, a
//! synthetic event not while a trigger fires or counts it, a probe not
//! while an instance enables it (a trigger does too).

use crate::base::error::Result;
use crate::kernel::tracefs::Tracefs;
use crate::lifecycle::dynevent::{list_events, remove_event};
use crate::lifecycle::instance::{list_instances, remove_instance_dir};
use crate::lifecycle::owner::{Liveness, Owner};
use crate::lifecycle::synth;
use std::path::Path;

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
    /// `instance NAME`, `synthetic event NAME` or `uprobe GROUP/NAME` /
    /// `kprobe GROUP/NAME`.
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

/// What becomes of an item: kept, or removed by `remove_it` (only said
/// on a dry run).
fn act(remove: bool, dry_run: bool, remove_it: impl FnOnce() -> Result<()>) -> Outcome {
    if !remove {
        Outcome::Kept
    } else if dry_run {
        Outcome::WouldRemove
    } else {
        match remove_it() {
            Ok(()) => Outcome::Removed,
            Err(e) => Outcome::Failed(e.to_string()),
        }
    }
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
            let outcome = act(remove, dry_run, || {
                remove_dead_instance(&tfs.path("instances").join(&name))
            });
            items.push(Item {
                what: format!("instance {name}"),
                owner,
                liveness,
                outcome,
            });
        }
    }
    if tfs.exists(synth::FILE) {
        for name in synth::list(&tfs.read(synth::FILE)?) {
            let Some(owner) = Owner::from_synth_name(&name) else {
                continue;
            };
            let (liveness, remove) = decide(&owner);
            let outcome = act(remove, dry_run, || synth::remove(tfs, &name));
            items.push(Item {
                what: format!("synthetic event {name}"),
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
            let outcome = act(remove, dry_run, || remove_event(tfs, file, &group, &name));
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

/// Stops and removes one of our instances. Where the kernel refuses
/// because hist triggers in it hold variables, the triggers go first:
/// those whose `onmatch()` uses others' variables or fires a synthetic
/// event, then the rest.
fn remove_dead_instance(dir: &Path) -> Result<()> {
    let _ = crate::kernel::tracefs::write_file(&dir.join("tracing_on"), "0", false);
    match std::fs::remove_dir(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(_) => {}
    }
    let mut triggers = hist_triggers(dir);
    triggers.sort_by_key(|(_, cmd)| !cmd.contains("onmatch("));
    for (file, cmd) in &triggers {
        let _ = crate::kernel::tracefs::write_raw(file, cmd, true);
    }
    remove_instance_dir(dir)
}

/// Every hist trigger in an instance: its `trigger` file and the command
/// that removes it.
fn hist_triggers(dir: &Path) -> Vec<(std::path::PathBuf, String)> {
    let mut out = Vec::new();
    let Ok(systems) = std::fs::read_dir(dir.join("events")) else {
        return out;
    };
    for sys in systems.flatten().filter(|e| e.path().is_dir()) {
        let Ok(events) = std::fs::read_dir(sys.path()) else {
            continue;
        };
        for ev in events.flatten() {
            let file = ev.path().join("trigger");
            let Ok(text) = crate::kernel::tracefs::read_text(&file) else {
                continue;
            };
            for line in text.lines() {
                if let Some(cmd) = crate::lifecycle::hist::removal_command(line) {
                    out.push((file.clone(), cmd));
                }
            }
        }
    }
    out
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
