//! What looks left behind, and how to clear it: ours with one
//! `reset-ftrace`; someone else's by hand, file by file (ftrace-tools
//! never touches what it did not make).

use crate::report::{ours_at_top, Hint};
use ftrace_common::kernel::tracefs::Tracefs;
use ftrace_common::lifecycle::survey::{trigger_removal, Ownership, Survey};

/// The hints for what the survey found.
pub fn hints(tfs: &Tracefs, s: &Survey) -> Vec<Hint> {
    let root = tfs.root().display().to_string();
    let mut ours = Vec::new();
    for i in &s.instances {
        if let Ownership::LeftBehind { tool, pid } = &i.owner {
            ours.push(format!(
                "instance {} ({} PID {pid}, killed)",
                i.name,
                tool.as_deref().unwrap_or("ftrace-tools")
            ));
        }
    }
    for g in &s.groups {
        if let Ownership::LeftBehind { pid, .. } = &g.owner {
            ours.push(format!(
                "{} dynamic event{} in group {} (PID {pid}, killed)",
                g.events.len(),
                if g.events.len() == 1 { "" } else { "s" },
                g.group
            ));
        }
    }
    if let Some(u) = s.top_held.as_ref().filter(|u| !u.live) {
        ours.push(format!(
            "top-level settings of {} PID {} (killed): {}",
            u.tool,
            u.pid,
            u.holding().join(", ")
        ));
    }
    let mut out = Vec::new();
    if !ours.is_empty() {
        out.push(Hint {
            ours: true,
            what: format!(
                "left by killed runs of ours: {}; the next run of any tool also clears them",
                ours.join("; ")
            ),
            commands: vec!["reset-ftrace".into()],
        });
    }
    let mut cmds = Vec::new();
    let top_mine = s.top_held.as_ref().is_some_and(|u| u.live);
    if !top_mine {
        for st in &s.top.settings {
            if ours_at_top(s, &st.file) {
                continue;
            }
            let value = if st.default.is_empty() {
                String::new()
            } else {
                format!("{} ", st.default)
            };
            cmds.push(format!("echo {value}> {root}/{}", st.file));
        }
        if !s.top.events.is_empty() {
            cmds.push(format!("echo > {root}/set_event"));
        }
        for f in &s.top.filters {
            cmds.push(format!(
                "echo 0 > {root}/events/{}/filter",
                f.event.replace(':', "/")
            ));
        }
        for t in &s.top.triggers {
            cmds.push(format!(
                "echo '{}' > {root}/events/{}/trigger",
                trigger_removal(&t.value),
                t.event.replace(':', "/")
            ));
        }
    }
    for i in s.instances.iter().filter(|i| !i.owner.is_ours()) {
        cmds.push(format!("rmdir {root}/instances/{}", i.name));
    }
    for g in s.groups.iter().filter(|g| !g.owner.is_ours()) {
        for e in &g.events {
            cmds.push(format!(
                "echo '-:{}/{}' >> {root}/{}",
                g.group, e.name, e.file
            ));
        }
    }
    if !cmds.is_empty() {
        out.push(Hint {
            ours: false,
            what: "not ours, and someone may still be using them; if nobody is, an \
                   administrator resets them by hand (an event must be disabled everywhere \
                   before its probe can be removed)"
                .into(),
            commands: cmds,
        });
    }
    out
}
