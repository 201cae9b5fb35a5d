//! The report: the kernel, its features, each tool's verdict, and who is
//! tracing now; gathered read only, printed as text or JSON (the same
//! facts: the text is made from this value).

use ftrace_common::kernel::caps::{self, Feature, Support};
use ftrace_common::kernel::config::{self, KernelConfig};
use ftrace_common::kernel::lockdown::Lockdown;
use ftrace_common::kernel::needs::{self, Verdict};
use ftrace_common::kernel::tracefs::Tracefs;
use ftrace_common::lifecycle::survey::{self, Ownership, Survey};
use serde::Serialize;

/// Everything ftrace-status says.
#[derive(Debug, Serialize)]
pub struct Report {
    pub kernel: Kernel,
    pub features: Vec<FeatureRow>,
    pub tools: Vec<ToolRow>,
    /// `None` when tracefs is not mounted.
    pub tracing: Option<Survey>,
    /// What someone else (not a run of ours) is tracing at the top level:
    /// the reasons for exit status 1.
    pub foreign_top_level: Vec<String>,
    pub hints: Vec<Hint>,
}

#[derive(Debug, Serialize)]
pub struct Kernel {
    pub release: String,
    /// Where tracefs is mounted, if it is.
    pub tracefs: Option<String>,
    /// Why it is not, and what happens then.
    pub tracefs_note: Option<String>,
    pub lockdown: String,
    pub lockdown_blocks: String,
    /// The config file read, if any.
    pub config: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct FeatureRow {
    pub name: &'static str,
    pub yes: bool,
    /// Why not.
    pub why: Option<String>,
    /// The option the kernel's config shows off (`CONFIG_KPROBES is not set`).
    pub config: Option<String>,
    /// `tracefs`, or `config` when tracefs is not mounted.
    pub source: &'static str,
}

#[derive(Debug, Serialize)]
pub struct ToolRow {
    pub tool: &'static str,
    /// `works`, `limited`, `cannot` or `unknown`.
    pub verdict: &'static str,
    /// For `limited`: what it cannot do, and why.
    pub limits: Vec<Limit>,
    /// For `cannot` and `unknown`: why.
    pub why: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Limit {
    pub gives: &'static str,
    pub why: String,
}

/// Something that looks left behind, and the commands that clear it.
#[derive(Debug, Serialize)]
pub struct Hint {
    /// Whether it is ours (`reset-ftrace` clears it) or someone else's.
    pub ours: bool,
    pub what: String,
    pub commands: Vec<String>,
}

/// Gathers the report; `tfs` is `None` when tracefs is not mounted.
pub fn gather(tfs: Option<&Tracefs>) -> Report {
    let cfg = KernelConfig::load();
    let lockdown = Lockdown::read();
    let features: Vec<FeatureRow> = match tfs {
        Some(t) => Feature::ALL
            .iter()
            .map(|f| from_tracefs(t, *f, cfg.as_ref()))
            .collect(),
        None => cfg
            .as_ref()
            .map(|c| Feature::ALL.iter().map(|f| from_config(c, *f)).collect())
            .unwrap_or_default(),
    };
    let tools = needs::TOOLS
        .iter()
        .map(|n| tool_row(n, &features, tfs.is_some()))
        .collect();
    let tracing = tfs.map(|t| survey::survey(t, true));
    let foreign_top_level = tracing.as_ref().map(foreign_at_top).unwrap_or_default();
    let hints = match (tfs, &tracing) {
        (Some(t), Some(s)) => crate::hints::hints(t, s),
        _ => Vec::new(),
    };
    Report {
        kernel: Kernel {
            release: config::release(),
            tracefs: tfs.map(|t| t.root().display().to_string()),
            tracefs_note: tfs.is_none().then(not_mounted),
            lockdown: lockdown.name().to_string(),
            lockdown_blocks: lockdown.blocks(),
            config: cfg.map(|c| c.source.display().to_string()),
        },
        features,
        tools,
        tracing,
        foreign_top_level,
        hints,
    }
}

fn not_mounted() -> String {
    let has = std::fs::read_to_string("/proc/filesystems")
        .map(|t| t.split_whitespace().any(|w| w == "tracefs"))
        .unwrap_or(true);
    if has {
        format!(
            "tracefs is not mounted: the tools of ftrace-tools mount it on {} when they start \
             (or: mount -t tracefs nodev {}); until then, features are read from the kernel's \
             config and who is tracing cannot be seen",
            ftrace_common::kernel::tracefs::DEFAULT_MOUNT,
            ftrace_common::kernel::tracefs::DEFAULT_MOUNT
        )
    } else {
        "this kernel has no tracefs (CONFIG_FTRACE, CONFIG_TRACING): no tool of ftrace-tools \
         can run"
            .into()
    }
}

fn from_tracefs(tfs: &Tracefs, f: Feature, cfg: Option<&KernelConfig>) -> FeatureRow {
    let (yes, why) = match caps::check(tfs, f) {
        Support::Yes => (true, None),
        Support::No(why) => (false, Some(why)),
    };
    let config = cfg
        .filter(|_| !yes)
        .and_then(|c| c.first_unset(f.options()))
        .map(|o| format!("{o} is not set"));
    FeatureRow {
        name: f.name(),
        yes,
        why,
        config,
        source: "tracefs",
    }
}

fn from_config(cfg: &KernelConfig, f: Feature) -> FeatureRow {
    // Before the option existed, event probes came with dynamic events.
    let options = match f {
        Feature::EprobeEvents if !cfg.knows("CONFIG_EPROBE_EVENTS") => {
            &["CONFIG_DYNAMIC_EVENTS"][..]
        }
        _ => f.options(),
    };
    let unset = cfg.first_unset(options);
    // The config cannot tell a feature that came with a later release.
    let old = config::version(&config::release()).is_some_and(|v| v < f.since());
    FeatureRow {
        name: f.name(),
        yes: unset.is_none() && !old,
        why: match unset {
            Some(o) => Some(format!("{o} is not set")),
            None if old => Some(format!("this kernel is older: {}", f.since_text())),
            None => None,
        },
        config: unset.map(|o| format!("{o} is not set")),
        source: "config",
    }
}

fn tool_row(n: &needs::Needs, features: &[FeatureRow], mounted: bool) -> ToolRow {
    let mut row = ToolRow {
        tool: n.tool,
        verdict: "works",
        limits: Vec::new(),
        why: Vec::new(),
    };
    if features.is_empty() && (!n.required.is_empty() || !n.optional.is_empty()) {
        row.verdict = "unknown";
        row.why.push(if mounted {
            "no feature could be checked".into()
        } else {
            "tracefs is not mounted and the kernel's config cannot be read".into()
        });
        return row;
    }
    let answer = |f: Feature| match features.iter().find(|r| r.name == f.name()) {
        Some(r) if !r.yes => Support::No(r.why.clone().unwrap_or_default()),
        _ => Support::Yes,
    };
    match n.verdict(&answer) {
        Verdict::Works => {}
        Verdict::Limited(l) => {
            row.verdict = "limited";
            row.limits = l
                .into_iter()
                .map(|l| Limit {
                    gives: l.gives,
                    why: l.why,
                })
                .collect();
        }
        Verdict::Cannot(why) => {
            row.verdict = "cannot";
            row.why = why;
        }
    }
    row
}

/// Whether top-level state is a run of ours: the run that holds the top
/// level (it took it only when nobody else used it: what is there now is
/// its doing), or, for `set_graph_function`, runs of the function_graph
/// tools (funcgraph, funcslower) in instances (they share it).
pub fn ours_at_top(s: &Survey, file: &str) -> bool {
    if let Some(u) = &s.top_held {
        if u.live || u.files.iter().any(|f| f.file == file && f.holds_ours) {
            return true;
        }
    }
    file == "set_graph_function"
        && s.instances
            .iter()
            .any(|i| matches!(&i.owner, Ownership::Live { tool: Some(t), .. } if ftrace_common::graph::TOOLS.contains(&t.as_str())))
}

/// What someone else is tracing at the top level.
fn foreign_at_top(s: &Survey) -> Vec<String> {
    if s.top_held.as_ref().is_some_and(|u| u.live) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for st in s.top.settings.iter().filter(|st| st.tracing) {
        if !ours_at_top(s, &st.file) {
            out.push(format!("{} is '{}'", st.file, st.value));
        }
    }
    if !s.top.events.is_empty() {
        out.push(format!(
            "{} event{} enabled ({})",
            s.top.events.len(),
            if s.top.events.len() == 1 { "" } else { "s" },
            crate::render::first_few(&s.top.events)
        ));
    }
    if !s.top.triggers.is_empty() {
        let names: Vec<String> = s.top.triggers.iter().map(|t| t.event.clone()).collect();
        out.push(format!(
            "{} trigger{} ({})",
            names.len(),
            if names.len() == 1 { "" } else { "s" },
            crate::render::first_few(&names)
        ));
    }
    out
}
