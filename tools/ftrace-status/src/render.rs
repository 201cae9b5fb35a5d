//! The report as text: kernel, features, tools, tracing now, hints.

use crate::report::{ours_at_top, Report};
use ftrace_common::lifecycle::survey::{Dir, Ownership, Survey};
use std::fmt::Write;

/// Up to three items, then `...`.
pub fn first_few(items: &[String]) -> String {
    let mut s = items.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
    if items.len() > 3 {
        s.push_str(", ...");
    }
    s
}

fn kib(k: u64) -> String {
    if k >= 10 * 1024 {
        format!("{:.1} MiB", k as f64 / 1024.0)
    } else {
        format!("{k} KiB")
    }
}

/// The whole report.
pub fn text(r: &Report) -> String {
    let mut o = String::new();
    let k = &r.kernel;
    let _ = writeln!(o, "Kernel");
    let _ = writeln!(o, "  release     Linux {}", k.release);
    match (&k.tracefs, &k.tracefs_note) {
        (Some(t), _) => {
            let _ = writeln!(o, "  tracefs     {t}");
        }
        (None, note) => {
            let _ = writeln!(
                o,
                "  tracefs     {}",
                note.as_deref().unwrap_or("not mounted")
            );
        }
    }
    // For an unknown mode the sentence is the reason, not what it blocks.
    let blocks = if k.lockdown == "unknown" {
        ""
    } else {
        "blocks "
    };
    let _ = writeln!(
        o,
        "  lockdown    {}: {blocks}{}",
        k.lockdown, k.lockdown_blocks
    );
    let _ = writeln!(
        o,
        "  config      {}",
        k.config
            .as_deref()
            .unwrap_or("not readable (no /proc/config.gz, no /boot/config-RELEASE)")
    );

    let _ = writeln!(o, "\nFeatures");
    if r.features.is_empty() {
        let _ = writeln!(o, "  cannot be seen (no tracefs, no kernel config)");
    }
    for f in &r.features {
        let mut line = format!("  {:<28}", f.name);
        if f.yes {
            line.push_str("yes");
        } else {
            let _ = write!(line, "no: {}", f.why.as_deref().unwrap_or(""));
            if let (Some(c), "tracefs") = (&f.config, f.source) {
                let _ = write!(line, "; in the config: {c}");
            }
        }
        if f.source == "config" {
            line.push_str(" (from the config)");
        }
        let _ = writeln!(o, "{line}");
    }

    let _ = writeln!(o, "\nTools");
    for t in &r.tools {
        match t.verdict {
            "works" => {
                let _ = writeln!(o, "  {:<14}works", t.tool);
            }
            "limited" => {
                let _ = writeln!(o, "  {:<14}works, except:", t.tool);
                for l in &t.limits {
                    let _ = writeln!(o, "  {:<16}{}: {}", "", l.gives, l.why);
                }
            }
            v => {
                let head = if v == "cannot" {
                    "cannot run here"
                } else {
                    "unknown"
                };
                let _ = writeln!(o, "  {:<14}{head}: {}", t.tool, t.why.join("; "));
            }
        }
    }

    if let Some(s) = &r.tracing {
        tracing_now(&mut o, s);
    }
    if !r.foreign_top_level.is_empty() {
        let _ = writeln!(
            o,
            "\nSomeone else is tracing at the top level: {}.",
            r.foreign_top_level.join("; ")
        );
    }
    if !r.hints.is_empty() {
        let _ = writeln!(o, "\nHints");
        for h in &r.hints {
            let _ = writeln!(o, "  {}:", capitalize(&h.what));
            for c in &h.commands {
                let _ = writeln!(o, "    {c}");
            }
        }
    }
    o
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn owner_text(o: &Ownership) -> String {
    match o {
        Ownership::NotOurs => "not ours".into(),
        Ownership::Live { tool, pid, command } => format!(
            "ours, running: {} PID {pid}{}",
            tool.as_deref().unwrap_or("ftrace-tools"),
            if command.is_empty() {
                String::new()
            } else {
                format!(" ({command})")
            }
        ),
        Ownership::LeftBehind { tool, pid } => format!(
            "ours, LEFT BEHIND by {} PID {pid} (killed)",
            tool.as_deref().unwrap_or("a run")
        ),
        Ownership::OtherNamespace { pid } => {
            format!("ours, from another PID namespace (PID {pid} there)")
        }
    }
}

/// The lines of what is set in a directory, each with its owner mark.
fn dir_lines(d: &Dir, ours: &dyn Fn(&str) -> bool) -> Vec<String> {
    let mut v = Vec::new();
    for s in &d.settings {
        v.push(format!(
            "{} is '{}' (boot: '{}'){}",
            s.file,
            s.value,
            s.default,
            if ours(&s.file) { ", ours" } else { "" }
        ));
    }
    if !d.events.is_empty() {
        v.push(format!(
            "{} event{} enabled: {}",
            d.events.len(),
            if d.events.len() == 1 { "" } else { "s" },
            first_few(&d.events)
        ));
    }
    for f in &d.filters {
        v.push(format!("filter on {}: {}", f.event, f.value));
    }
    for t in &d.triggers {
        v.push(format!("trigger on {}: {}", t.event, t.value));
    }
    v
}

fn tracing_now(o: &mut String, s: &Survey) {
    let _ = writeln!(o, "\nTracing now");
    match &s.top_held {
        Some(u) if u.live => {
            let _ = writeln!(
                o,
                "  top level held by {} PID {} (ours, running): what it shows is that run's",
                u.tool, u.pid
            );
        }
        Some(u) => {
            let _ = writeln!(
                o,
                "  top level LEFT BEHIND by {} PID {} (killed): {} still hold what it wrote",
                u.tool,
                u.pid,
                u.holding().join(", ")
            );
        }
        None => {}
    }
    let top = dir_lines(&s.top, &|f| ours_at_top(s, f));
    if top.is_empty() {
        let _ = writeln!(o, "  top level: as at boot (nothing traced, nothing set)");
    } else {
        let _ = writeln!(o, "  top level:");
        for l in &top {
            let _ = writeln!(o, "    {l}");
        }
    }
    let _ = writeln!(o, "  instances: {}", s.instances.len());
    for i in &s.instances {
        let _ = writeln!(
            o,
            "    {}: {} per CPU; {}",
            i.name,
            kib(i.state.buffer_kb),
            owner_text(&i.owner)
        );
        // A run of ours sets up its instance as it needs: only someone
        // else's is shown in full.
        if !i.owner.is_ours() {
            for l in dir_lines(&i.state, &|_| false) {
                let _ = writeln!(o, "      {l}");
            }
        }
    }
    let n: usize = s.groups.iter().map(|g| g.events.len()).sum();
    let _ = writeln!(o, "  dynamic events: {n}");
    for g in &s.groups {
        let evs: Vec<String> = g
            .events
            .iter()
            .map(|e| format!("{} {}", e.kind, e.name))
            .collect();
        let _ = writeln!(
            o,
            "    {}: {}; {}",
            g.group,
            first_few(&evs),
            owner_text(&g.owner)
        );
    }
    let _ = write!(o, "  buffers: {} in all now", kib(s.buffers_kb));
    if s.buffers_expanded_kb > s.buffers_kb {
        let _ = write!(o, ", {} once all are in use", kib(s.buffers_expanded_kb));
    }
    let _ = writeln!(o);
}
