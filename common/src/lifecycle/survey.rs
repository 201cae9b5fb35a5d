//! Who is tracing now, read only: the top level's settings where they
//! differ from the kernel's defaults at boot, every instance and every
//! dynamic event with who owns it (a run of ours, live or killed, or
//! someone else), the top level when a run of ours holds it, and the
//! memory all trace buffers take.
//!
//! Nothing here writes to tracefs, mounts anything or takes a lock: it is
//! what `ftrace-status` shows, and what its exit status is made from.

use crate::kernel::functions;
use crate::kernel::tracefs::Tracefs;
use crate::lifecycle::instance::list_instances;
use crate::lifecycle::owner::{Liveness, Owner};
use crate::lifecycle::toplevel;
use serde::Serialize;
use std::io::Read;
use std::path::{Path, PathBuf};

/// What was found.
#[derive(Debug, Clone, Serialize)]
pub struct Survey {
    /// The top level.
    pub top: Dir,
    /// Every instance, by name.
    pub instances: Vec<InstanceUse>,
    /// Every dynamic event, by group.
    pub groups: Vec<Group>,
    /// A run of ours that holds the top level, or a killed one whose
    /// changes are still there.
    pub top_held: Option<toplevel::Use>,
    /// KiB of memory all trace buffers take now.
    pub buffers_kb: u64,
    /// KiB they take once every buffer is in use (the kernel allocates a
    /// buffer in full at its first use).
    pub buffers_expanded_kb: u64,
}

/// Who owns something in tracefs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Ownership {
    /// Not named by us.
    NotOurs,
    /// A run of ours that is running.
    Live {
        /// The tool, where the name says it.
        tool: Option<String>,
        /// Its PID.
        pid: u32,
        /// Its command line.
        command: String,
    },
    /// A run of ours that was killed: what it left.
    LeftBehind {
        /// The tool, where the name says it.
        tool: Option<String>,
        /// Its PID.
        pid: u32,
    },
    /// A run of ours from another PID namespace (a container): we cannot
    /// tell whether it runs.
    OtherNamespace {
        /// Its PID there.
        pid: u32,
    },
}

impl Ownership {
    fn of(tool: Option<String>, owner: Owner) -> Ownership {
        match owner.liveness() {
            Liveness::Alive => Ownership::Live {
                tool,
                pid: owner.pid,
                command: command_line(owner.pid),
            },
            Liveness::Dead => Ownership::LeftBehind {
                tool,
                pid: owner.pid,
            },
            Liveness::Foreign => Ownership::OtherNamespace { pid: owner.pid },
        }
    }

    /// Whether a run of ours made it.
    pub fn is_ours(&self) -> bool {
        *self != Ownership::NotOurs
    }
}

/// A process's command line, arguments joined by spaces (empty if gone).
pub fn command_line(pid: u32) -> String {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let words: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|w| !w.is_empty())
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect();
    words.join(" ")
}

/// A setting that differs from its default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Setting {
    /// The file, relative to the directory (`current_tracer`).
    pub file: String,
    /// What it holds (one line; lists joined by spaces).
    pub value: String,
    /// What it holds at boot.
    pub default: String,
    /// Whether it makes the kernel record anything (a tracer, the
    /// profiler), rather than only shaping what is recorded.
    pub tracing: bool,
}

/// Something set on one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventSetting {
    /// `system:event`.
    pub event: String,
    /// The filter or trigger, as the kernel shows it.
    pub value: String,
}

/// The state of a tracing directory: the top level or an instance.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Dir {
    /// Settings that differ from the boot defaults.
    pub settings: Vec<Setting>,
    /// Enabled events (`set_event`).
    pub events: Vec<String>,
    /// Event filters.
    pub filters: Vec<EventSetting>,
    /// Event triggers.
    pub triggers: Vec<EventSetting>,
    /// Per-CPU buffer size in KiB (what it will be once used).
    pub buffer_kb: u64,
    /// KiB the buffers of all CPUs take now.
    pub total_kb: u64,
    /// KiB they take once used.
    pub expanded_kb: u64,
}

impl Dir {
    /// Whether the kernel records anything here: a tracer, the profiler,
    /// enabled events or triggers.
    pub fn is_tracing(&self) -> bool {
        self.settings.iter().any(|s| s.tracing)
            || !self.events.is_empty()
            || !self.triggers.is_empty()
    }

    /// Whether anything differs from the boot defaults.
    pub fn differs(&self) -> bool {
        !self.settings.is_empty()
            || !self.events.is_empty()
            || !self.filters.is_empty()
            || !self.triggers.is_empty()
    }
}

/// An instance and its owner.
#[derive(Debug, Clone, Serialize)]
pub struct InstanceUse {
    /// Its name (`instances/NAME`).
    pub name: String,
    /// Who made it.
    pub owner: Ownership,
    /// What is set in it (events and settings are looked at only in
    /// instances that are not ours).
    pub state: Dir,
}

/// The dynamic events of one group.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    /// The group (`kprobes`, `ftrace_tools_...`).
    pub group: String,
    /// Who made it.
    pub owner: Ownership,
    /// Its events.
    pub events: Vec<DynEvent>,
}

/// One dynamic event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DynEvent {
    /// `kprobe`, `uprobe`, `fprobe`, `tprobe`, `eprobe`, `synthetic`.
    pub kind: String,
    /// Its name in the group.
    pub name: String,
    /// The file that removes it (`uprobe_events`, `dynamic_events`, ...).
    pub file: String,
}

/// The top-level settings compared with their boot defaults: the file,
/// its default, whether it makes the kernel record, and how it reads.
const SETTINGS: &[(&str, &str, bool, Reading)] = &[
    ("current_tracer", "nop", true, Reading::Plain),
    ("function_profile_enabled", "0", true, Reading::Plain),
    ("tracing_on", "1", false, Reading::Plain),
    ("set_ftrace_filter", "", false, Reading::Functions),
    ("set_ftrace_notrace", "", false, Reading::Functions),
    ("set_graph_function", "", false, Reading::Functions),
    ("set_graph_notrace", "", false, Reading::Functions),
    ("set_ftrace_pid", "", false, Reading::Pids),
    ("set_ftrace_notrace_pid", "", false, Reading::Pids),
    ("set_event_pid", "", false, Reading::Pids),
    ("set_event_notrace_pid", "", false, Reading::Pids),
    ("tracing_thresh", "0", false, Reading::Plain),
    ("max_graph_depth", "0", false, Reading::Plain),
    ("trace_clock", "local", false, Reading::Clock),
    ("options/stacktrace", "0", false, Reading::Plain),
    ("options/userstacktrace", "0", false, Reading::Plain),
    ("options/event-fork", "0", false, Reading::Plain),
    ("options/function-fork", "0", false, Reading::Plain),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    Plain,
    Functions,
    Pids,
    Clock,
}

/// Reads a small tracefs file in as few system calls as it takes: a read
/// that does not fill the buffer got all of it (these files answer whole
/// from their first read), so no second read looks for the end.
fn read_small(path: &Path, buf: &mut Vec<u8>) -> Option<String> {
    const CHUNK: usize = 4096;
    let mut f = std::fs::File::open(path).ok()?;
    buf.clear();
    loop {
        let at = buf.len();
        buf.resize(at + CHUNK, 0);
        let n = f.read(&mut buf[at..]).ok()?;
        buf.truncate(at + n);
        if n < CHUNK {
            break;
        }
    }
    Some(String::from_utf8_lossy(buf).into_owned())
}

fn normalize(r: Reading, text: &str) -> String {
    match r {
        Reading::Plain => text.trim().to_string(),
        Reading::Functions => functions::parse_filter(text).join(" "),
        Reading::Pids => toplevel::normalize(toplevel::Kind::Pids, text),
        Reading::Clock => toplevel::normalize(toplevel::Kind::Clock, text),
    }
}

/// `14 (expanded: 2816)` -> (14, 2816); `2816` -> (2816, 2816).
pub fn parse_size(text: &str) -> Option<(u64, u64)> {
    let t = text.trim();
    let now: u64 = t.split_whitespace().next()?.parse().ok()?;
    let expanded = match t.find("(expanded:") {
        Some(i) => t[i + 10..]
            .trim()
            .trim_end_matches(')')
            .trim()
            .parse()
            .ok()?,
        None => now,
    };
    Some((now, expanded))
}

/// Reads a tracing directory. `events` also looks at every event's filter
/// and trigger (a few thousand small reads).
pub fn read_dir_state(dir: &Path, events: bool) -> Dir {
    let mut buf = Vec::with_capacity(4096);
    let mut d = Dir::default();
    for (file, default, tracing, reading) in SETTINGS {
        let Some(text) = read_small(&dir.join(file), &mut buf) else {
            continue;
        };
        let value = normalize(*reading, &text);
        if value != *default {
            d.settings.push(Setting {
                file: file.to_string(),
                value,
                default: default.to_string(),
                tracing: *tracing,
            });
        }
    }
    if let Some(text) = read_small(&dir.join("set_event"), &mut buf) {
        d.events = text.lines().map(str::to_string).collect();
    }
    let size =
        |f: &str, buf: &mut Vec<u8>| read_small(&dir.join(f), buf).and_then(|t| parse_size(&t));
    let per_cpu = size("buffer_size_kb", &mut buf);
    d.buffer_kb = per_cpu.map(|s| s.1).unwrap_or(0);
    let (now, expanded) = size("buffer_total_size_kb", &mut buf)
        .or_else(|| {
            let n = std::fs::read_dir(dir.join("per_cpu")).map_or(1, |r| r.count()) as u64;
            per_cpu.map(|(a, b)| (a * n, b * n))
        })
        .unwrap_or((0, 0));
    d.total_kb = now;
    d.expanded_kb = expanded;
    if events {
        scan_events(&dir.join("events"), &mut d, &mut buf);
    }
    d
}

/// Every event's filter and trigger that is set.
fn scan_events(events: &Path, d: &mut Dir, buf: &mut Vec<u8>) {
    let Ok(systems) = std::fs::read_dir(events) else {
        return;
    };
    let mut path = PathBuf::new();
    for sys in systems.flatten() {
        if !sys.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let Ok(evs) = std::fs::read_dir(sys.path()) else {
            continue;
        };
        let sys_name = sys.file_name().to_string_lossy().into_owned();
        for ev in evs.flatten() {
            if !ev.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let name = || format!("{sys_name}:{}", ev.file_name().to_string_lossy());
            path.clear();
            path.push(ev.path());
            path.push("filter");
            if let Some(f) = read_small(&path, buf) {
                let f = f.trim();
                if !f.is_empty() && f != "none" {
                    d.filters.push(EventSetting {
                        event: name(),
                        value: f.to_string(),
                    });
                }
            }
            path.set_file_name("trigger");
            if let Some(t) = read_small(&path, buf) {
                for line in t
                    .lines()
                    .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
                {
                    d.triggers.push(EventSetting {
                        event: name(),
                        value: line.trim().to_string(),
                    });
                }
            }
        }
    }
    d.filters.sort_by(|a, b| a.event.cmp(&b.event));
    d.triggers.sort_by(|a, b| a.event.cmp(&b.event));
}

/// The command that removes a trigger the kernel shows as `shown`: its
/// filter and state dropped, a count as `:0`.
pub fn trigger_removal(shown: &str) -> String {
    let mut t = shown.split(" if ").next().unwrap_or(shown).trim();
    for suffix in [" [active]", " [paused]"] {
        t = t.strip_suffix(suffix).unwrap_or(t);
    }
    let mut t = t.trim_end_matches(":unlimited").to_string();
    if !t.starts_with("hist") {
        if let Some((head, count)) = t.rsplit_once(':') {
            if !count.is_empty() && count.bytes().all(|b| b.is_ascii_digit()) {
                t = format!("{head}:0");
            }
        }
    }
    format!("!{t}")
}

/// Parses a dynamic-event file into (kind letter, group, name) triples.
fn dyn_lines(text: &str) -> Vec<(char, String, String)> {
    text.lines()
        .filter_map(|l| {
            let head = l.split_whitespace().next()?;
            let (kind, ev) = head.split_once(':')?;
            let (g, n) = ev.split_once('/')?;
            Some((kind.chars().next()?, g.to_string(), n.to_string()))
        })
        .collect()
}

/// Every dynamic event, by group, with who made it.
fn read_groups(tfs: &Tracefs) -> Vec<Group> {
    let read = |f: &str| tfs.read(f).unwrap_or_default();
    let uprobes: Vec<(String, String)> = dyn_lines(&read("uprobe_events"))
        .into_iter()
        .map(|(_, g, n)| (g, n))
        .collect();
    let mut all: Vec<(String, String, String, String)> = Vec::new();
    let mut add = |kind: &str, g: String, n: String, file: &str| {
        if !all.iter().any(|(_, ag, an, _)| *ag == g && *an == n) {
            all.push((kind.to_string(), g, n, file.to_string()));
        }
    };
    if tfs.exists("dynamic_events") {
        for (k, g, n) in dyn_lines(&read("dynamic_events")) {
            let is_uprobe = uprobes.iter().any(|(ug, un)| *ug == g && *un == n);
            let kind = match k {
                'p' | 'r' if is_uprobe => "uprobe",
                'p' | 'r' => "kprobe",
                'f' => "fprobe",
                't' => "tprobe",
                'e' => "eprobe",
                's' => "synthetic",
                _ => "other",
            };
            add(kind, g, n, "dynamic_events");
        }
    } else {
        for (_, g, n) in dyn_lines(&read("kprobe_events")) {
            add("kprobe", g, n, "kprobe_events");
        }
        for (g, n) in uprobes.clone() {
            add("uprobe", g, n, "uprobe_events");
        }
    }
    let mut groups: Vec<Group> = Vec::new();
    for (kind, g, n, file) in all {
        let ev = DynEvent {
            kind,
            name: n,
            file,
        };
        match groups.iter_mut().find(|x| x.group == g) {
            Some(x) => x.events.push(ev),
            None => groups.push(Group {
                owner: match Owner::from_group_name(&g) {
                    Some(o) => Ownership::of(None, o),
                    None => Ownership::NotOurs,
                },
                group: g,
                events: vec![ev],
            }),
        }
    }
    groups.sort_by(|a, b| a.group.cmp(&b.group));
    groups
}

/// Looks at everything. `events` also reads every event's filter and
/// trigger, at the top level and in instances that are not ours.
pub fn survey(tfs: &Tracefs, events: bool) -> Survey {
    let top = read_dir_state(tfs.root(), events);
    let mut instances = Vec::new();
    if tfs.exists("instances") {
        for name in list_instances(tfs).unwrap_or_default() {
            let owner = match Owner::from_instance_name(&name) {
                Some((tool, o)) => Ownership::of(Some(tool), o),
                None => Ownership::NotOurs,
            };
            let state = read_dir_state(
                &tfs.path("instances").join(&name),
                events && !owner.is_ours(),
            );
            instances.push(InstanceUse { name, owner, state });
        }
    }
    // A group's name says its owner, not the tool: its instance does.
    let mut groups = read_groups(tfs);
    for g in &mut groups {
        let pid = match &g.owner {
            Ownership::Live { pid, .. } | Ownership::LeftBehind { pid, .. } => *pid,
            _ => continue,
        };
        let tool_of = instances.iter().find_map(|i| match &i.owner {
            Ownership::Live { tool, pid: p, .. } | Ownership::LeftBehind { tool, pid: p }
                if *p == pid =>
            {
                tool.clone()
            }
            _ => None,
        });
        if let Ownership::Live { tool, .. } | Ownership::LeftBehind { tool, .. } = &mut g.owner {
            *tool = tool_of;
        }
    }
    let buffers_kb = top.total_kb + instances.iter().map(|i| i.state.total_kb).sum::<u64>();
    let buffers_expanded_kb =
        top.expanded_kb + instances.iter().map(|i| i.state.expanded_kb).sum::<u64>();
    Survey {
        top_held: toplevel::in_use(tfs),
        groups,
        top,
        instances,
        buffers_kb,
        buffers_expanded_kb,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn sizes_and_trigger_removals() {
        assert_eq!(parse_size("14 (expanded: 2816)\n"), Some((14, 2816)));
        assert_eq!(parse_size("2816\n"), Some((2816, 2816)));
        assert_eq!(parse_size("x"), None);
        for (shown, cmd) in [
            ("stacktrace:unlimited if common_pid < 0", "!stacktrace"),
            ("traceoff:3", "!traceoff:0"),
            (
                "enable_event:kmem:kmalloc:unlimited",
                "!enable_event:kmem:kmalloc",
            ),
            (
                "hist:keys=id:vals=hitcount:sort=hitcount:size=2048 [active]",
                "!hist:keys=id:vals=hitcount:sort=hitcount:size=2048",
            ),
        ] {
            assert_eq!(trigger_removal(shown), cmd);
        }
    }

    /// A tracefs as a fresh kernel shows it, with one change at a time.
    #[test]
    fn what_differs_from_boot_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        let w = |f: &str, s: &str| {
            let path = p.join(f);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, s).unwrap();
        };
        w("current_tracer", "nop\n");
        w("tracing_on", "1\n");
        w("set_ftrace_filter", "#### all functions enabled ####\n");
        w("set_ftrace_pid", "no pid\n");
        w("trace_clock", "[local] global\n");
        w("set_event", "");
        w("buffer_size_kb", "7 (expanded: 1408)\n");
        w("buffer_total_size_kb", "14 (expanded: 2816)\n");
        w("events/sched/sched_switch/filter", "none\n");
        w(
            "events/sched/sched_switch/trigger",
            "# Available triggers:\n# traceon traceoff\n",
        );
        fs::create_dir_all(p.join("instances")).unwrap();
        let d = read_dir_state(p, true);
        assert!(!d.differs() && !d.is_tracing(), "{d:?}");
        assert_eq!((d.buffer_kb, d.total_kb, d.expanded_kb), (1408, 14, 2816));

        w("tracing_on", "0\n");
        w("events/sched/sched_switch/filter", "prev_pid == 1\n");
        let d = read_dir_state(p, true);
        assert!(d.differs() && !d.is_tracing(), "{d:?}");
        assert_eq!(d.settings[0].file, "tracing_on");
        assert_eq!(d.filters[0].event, "sched:sched_switch");

        w(
            "events/sched/sched_switch/trigger",
            "# Available triggers:\n# traceon traceoff\nstacktrace:unlimited\n",
        );
        w("set_event", "sched:sched_wakeup\n");
        w("current_tracer", "function\n");
        let d = read_dir_state(p, true);
        assert!(d.is_tracing());
        assert_eq!(d.triggers[0].value, "stacktrace:unlimited");
        assert_eq!(d.events, ["sched:sched_wakeup"]);
        assert!(d
            .settings
            .iter()
            .any(|s| s.file == "current_tracer" && s.tracing));

        // Instances and groups, ours or not.
        let me = Owner::current();
        fs::create_dir_all(p.join("instances/someone")).unwrap();
        fs::create_dir_all(p.join("instances").join(me.instance_name("tpoint"))).unwrap();
        let dead = Owner {
            start: me.start + 1,
            ..me
        };
        w(
            "uprobe_events",
            &format!(
                "p:uprobes/x /bin/true:0x10\np:{}/y /bin/true:0x20\n",
                dead.group_name()
            ),
        );
        let tfs = Tracefs::at(p);
        let s = survey(&tfs, true);
        assert_eq!(s.instances.len(), 2);
        let mine = s.instances.iter().find(|i| i.name != "someone").unwrap();
        assert!(
            matches!(&mine.owner, Ownership::Live { tool: Some(t), pid, .. } if t == "tpoint" && *pid == me.pid),
            "{:?}",
            mine.owner
        );
        assert_eq!(s.groups.len(), 2);
        assert_eq!(s.groups[1].group, "uprobes");
        assert_eq!(s.groups[1].owner, Ownership::NotOurs);
        assert_eq!(s.groups[1].events[0].kind, "uprobe");
        assert!(matches!(s.groups[0].owner, Ownership::LeftBehind { .. }));
        assert_eq!(s.buffers_kb, 14);
    }
}
