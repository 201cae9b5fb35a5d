//! Black-box tests of `ftrace-status`: what it reports of the kernel and
//! of who is tracing, that it changes nothing, and its refusals.
//!
//! Someone else's tracing is made by the tests themselves (names that are
//! not ours, unique per run) and removed at the end, even on failure. The
//! top level is everyone's: the one change made there is a filter on an
//! event nobody traces (`syscalls:sys_enter_getpgid`), for a few hundred
//! milliseconds; the trigger goes in an instance of the test's own. The
//! tests of this file take turns: each one's runs would show in another's
//! report.
mod support;

use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use support::{Finished, ToolRun, Workload};

static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

/// The event of the top-level filter and the instance's trigger: one that
/// every kernel has, and that no test enables.
const RARE: &str = "syscalls/sys_enter_getpgid";

fn status(args: &[&str]) -> Finished {
    let f = support::run("ftrace-status", args);
    assert!(matches!(f.code(), 0 | 1), "exit {}: {}", f.code(), f.stderr);
    f
}

/// The report as JSON, checking that the exit status agrees with it.
fn report() -> (Value, Finished) {
    let f = status(&["-j"]);
    assert_eq!(f.stdout.lines().count(), 1, "{}", f.stdout);
    let v: Value = serde_json::from_str(&f.stdout).expect("-j prints JSON");
    let foreign = !v["foreign_top_level"].as_array().unwrap().is_empty();
    assert_eq!(f.code(), i32::from(foreign), "{}", f.stdout);
    (v, f)
}

fn append(path: &Path, line: &str) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)?
        .write_all(line.as_bytes())
}

fn write(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)?
        .write_all(text.as_bytes())
}

/// Someone else's tracing, made by the test and removed on drop: an
/// instance with a trigger, a uprobe event, a top-level event filter.
struct Foreign {
    root: PathBuf,
    instance: String,
    group: String,
    filter: bool,
}

impl Foreign {
    fn new(root: &Path) -> Foreign {
        let id = std::process::id();
        let mut f = Foreign {
            root: root.to_path_buf(),
            instance: format!("ftst-instance-{id}"),
            group: format!("ftst_group_{id}"),
            filter: false,
        };
        let inst = root.join("instances").join(&f.instance);
        std::fs::create_dir(&inst).unwrap();
        write(
            &inst.join(format!("events/{RARE}/trigger")),
            "stacktrace if common_pid < 0",
        )
        .unwrap();
        let wl = support::workload_bin();
        append(
            &root.join("uprobe_events"),
            &format!("p:{}/probe {}:0x0\n", f.group, wl.display()),
        )
        .unwrap();
        f.filter = true;
        write(
            &root.join(format!("events/{RARE}/filter")),
            "common_pid < 0",
        )
        .unwrap();
        f
    }
}

impl Drop for Foreign {
    fn drop(&mut self) {
        if self.filter {
            let _ = write(&self.root.join(format!("events/{RARE}/filter")), "0");
        }
        let inst = self.root.join("instances").join(&self.instance);
        let _ = write(&inst.join(format!("events/{RARE}/trigger")), "!stacktrace");
        let _ = std::fs::remove_dir(&inst);
        let _ = append(
            &self.root.join("uprobe_events"),
            &format!("-:{}/probe\n", self.group),
        );
    }
}

/// The files of the test's instance that ftrace-status must not change.
fn instance_files(root: &Path, name: &str) -> Vec<(String, String)> {
    let inst = root.join("instances").join(name);
    [
        "current_tracer",
        "tracing_on",
        "buffer_size_kb",
        "set_event",
        "trace_options",
    ]
    .iter()
    .map(|f| f.to_string())
    .chain([
        format!("events/{RARE}/trigger"),
        format!("events/{RARE}/enable"),
    ])
    .map(|f| {
        let text = std::fs::read_to_string(inst.join(&f)).unwrap_or_default();
        (f, text)
    })
    .collect()
}

#[test]
fn someone_elses_tracing_is_reported_and_left_untouched() {
    require_tracing!(Instances, UprobeEvents);
    let _turn = turn();
    let root = support::tracefs_root();
    let at_start = support::top_level_snapshot(&[RARE]);
    let foreign = Foreign::new(&root);
    let before = support::top_level_snapshot(&[RARE]);
    let inst_before = instance_files(&root, &foreign.instance);

    let text = status(&[]);
    let (v, _) = report();

    assert_eq!(support::top_level_snapshot(&[RARE]), before);
    assert_eq!(instance_files(&root, &foreign.instance), inst_before);
    let out = &text.stdout;
    let event = RARE.replace('/', ":");
    for want in [
        format!("{}: ", foreign.instance),
        format!("{}: uprobe probe; not ours", foreign.group),
        format!("filter on {event}: common_pid < 0"),
        format!("trigger on {event}: stacktrace:unlimited if common_pid < 0"),
        format!("rmdir {}/instances/{}", root.display(), foreign.instance),
        format!("echo 0 > {}/events/{RARE}/filter", root.display()),
    ] {
        assert!(out.contains(&want), "no {want:?} in:\n{out}");
    }
    assert!(
        out.contains(&format!("echo '-:{}/probe' >> ", foreign.group)),
        "{out}"
    );
    // The JSON says the same.
    let t = &v["tracing"];
    let inst = t["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == foreign.instance.as_str())
        .expect("the instance in the JSON");
    assert_eq!(inst["owner"]["kind"], "not-ours");
    assert_eq!(inst["state"]["triggers"][0]["event"], event.as_str());
    let group = t["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group"] == foreign.group.as_str())
        .expect("the group in the JSON");
    assert_eq!(group["owner"]["kind"], "not-ours");
    assert_eq!(group["events"][0]["kind"], "uprobe");
    assert!(
        t["top"]["filters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["event"] == event.as_str() && f["value"] == "common_pid < 0"),
        "{}",
        t["top"]
    );
    // A filter alone traces nothing: it is no reason for exit status 1.
    assert!(!v["foreign_top_level"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r.as_str().unwrap().contains("getpgid")));
    drop(foreign);
    assert_eq!(support::top_level_snapshot(&[RARE]), at_start);
}

/// What the kernels we test on have (docs/kernels.md), by
/// FTRACE_TOOLS_IN_VM; the host is a 6.18 without kprobes.
fn expected() -> Vec<(&'static str, bool)> {
    let tag = std::env::var("FTRACE_TOOLS_IN_VM").unwrap_or_default();
    let host = tag.is_empty()
        && std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .is_ok_and(|r| r.starts_with("6.18.") && r.contains("-fc-"));
    match tag.as_str() {
        "6.1" => vec![
            ("kprobe-events", true),
            ("hist-triggers", true),
            ("synthetic-events", true),
            ("function-graph", true),
            ("function-graph-in-instances", false),
            ("function-profiler", false),
            ("fprobe-events", false),
            ("return-probe-args", false),
            // Built with dynamic events, before they had an option.
            ("eprobe-events", true),
        ],
        "bpo" => vec![
            ("kprobe-events", true),
            ("hist-triggers", true),
            ("function-graph", true),
            ("function-graph-in-instances", true),
            ("fprobe-events", true),
            ("btf-args", true),
            ("return-probe-args", true),
            ("function-profiler", false),
            ("function-graph-retval", false),
            ("eprobe-events", true),
        ],
        // Debian 11's 5.10 is built without hist triggers.
        "5.10" => vec![
            ("kprobe-events", true),
            ("uprobe-events", true),
            ("function-graph", true),
            ("function-graph-in-instances", false),
            ("function-profiler", false),
            ("hist-triggers", false),
            ("synthetic-events", false),
            ("fprobe-events", false),
            ("eprobe-events", false),
            ("btf-args", false),
            ("return-probe-args", false),
            ("event-notrace-pid", true),
        ],
        "prof" => vec![
            ("kprobe-events", true),
            ("function-profiler", true),
            ("function-graph", true),
        ],
        _ if host => vec![
            ("kprobe-events", false),
            ("uprobe-events", true),
            ("function-tracer", false),
            ("function-graph", false),
            ("function-profiler", false),
            ("hist-triggers", false),
            ("fprobe-events", false),
            ("eprobe-events", false),
            ("instances", true),
            ("trace-pipe-raw", true),
        ],
        _ => vec![],
    }
}

#[test]
fn features_and_tools_match_this_kernel_and_the_text_says_what_the_json_does() {
    require_tracing!();
    let _turn = turn();
    let (v, _) = report();
    let text = status(&[]).stdout;
    let features = v["features"].as_array().unwrap();
    let has = |name: &str| {
        features
            .iter()
            .find(|f| f["name"] == name)
            .unwrap_or_else(|| panic!("no feature {name}"))["yes"]
            .as_bool()
            .unwrap()
    };
    for (name, want) in expected() {
        assert_eq!(has(name), want, "{name}: {}", v["features"]);
    }
    // Against tracefs itself, on any kernel.
    let root = support::tracefs_root();
    assert_eq!(has("kprobe-events"), root.join("kprobe_events").exists());
    assert_eq!(
        has("function-profiler"),
        root.join("function_profile_enabled").exists()
    );
    // Every missing feature names a kernel option or version.
    for f in features.iter().filter(|f| f["yes"] == false) {
        let why = f["why"].as_str().unwrap();
        assert!(
            why.contains("CONFIG_") || why.contains("Linux ") || why.contains("not usable"),
            "{f}"
        );
    }
    // Each feature and tool has its line in the text, saying the same.
    for f in features {
        let name = f["name"].as_str().unwrap();
        let line = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no line for {name}:\n{text}"));
        let rest = line.trim_start()[name.len()..].trim_start();
        if f["yes"] == true {
            assert_eq!(rest, "yes", "{line}");
        } else {
            assert!(rest.starts_with(&format!("no: {}", f["why"].as_str().unwrap())));
        }
    }
    for t in v["tools"].as_array().unwrap() {
        let tool = t["tool"].as_str().unwrap();
        let line = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(tool))
            .unwrap_or_else(|| panic!("no line for {tool}:\n{text}"));
        let says = match t["verdict"].as_str().unwrap() {
            "works" => "works",
            "limited" => "works, except:",
            "cannot" => "cannot run here:",
            _ => "unknown:",
        };
        assert!(line.contains(says), "{tool}: {line} / {t}");
    }
    let verdict = |tool: &str| {
        v["tools"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["tool"] == tool)
            .unwrap()["verdict"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        verdict("kprobe") == "cannot",
        !has("kprobe-events"),
        "{}",
        v["tools"]
    );
    assert_eq!(verdict("funcgraph") == "cannot", !has("function-graph"));
    assert_eq!(verdict("reset-ftrace"), "works");
    assert_eq!(
        verdict("syscount") == "limited",
        !has("hist-triggers"),
        "{}",
        v["tools"]
    );
    // The memory of the buffers, in both.
    let kb = v["tracing"]["buffers_kb"].as_u64().unwrap();
    assert!(kb > 0);
    assert!(text.contains("  buffers: "), "{text}");
}

/// A run of ours while it runs, and once SIGKILLed: live with its PID and
/// command, then left behind (its instance and its probe group), with
/// reset-ftrace as the hint. Another run's start-up may sweep the killed
/// run's leftovers first: then the step is tried again.
#[test]
fn a_run_of_ours_is_live_with_its_pid_then_left_behind_when_killed() {
    require_tracing!(UprobeEvents, Instances);
    let _turn = turn();
    let probe = format!("p:{}:ftt_probe_target", support::workload_bin().display());
    let w = Workload::waiting(&["call", "1"]);
    let wpid = w.pid().to_string();
    for _ in 0..3 {
        let mut run = ToolRun::start("uprobe", &["-p", &wpid, &probe]);
        run.wait_ready();
        let pid = run.pid();
        let (v, _) = report();
        let mine = |v: &Value, what: &str| -> Vec<Value> {
            v["tracing"][what]
                .as_array()
                .unwrap()
                .iter()
                .filter(|i| i["owner"]["pid"] == pid)
                .cloned()
                .collect()
        };
        let inst = mine(&v, "instances");
        assert_eq!(inst.len(), 1, "{}", v["tracing"]);
        assert_eq!(inst[0]["owner"]["kind"], "live");
        assert_eq!(inst[0]["owner"]["tool"], "uprobe");
        assert!(
            inst[0]["owner"]["command"]
                .as_str()
                .unwrap()
                .contains("ftt_probe_target"),
            "{}",
            inst[0]
        );
        let groups = mine(&v, "groups");
        assert_eq!(groups.len(), 1, "{}", v["tracing"]);
        assert_eq!(groups[0]["owner"]["kind"], "live");
        let text = status(&[]).stdout;
        assert!(
            text.contains(&format!("ours, running: uprobe PID {pid}")),
            "{text}"
        );

        run.signal(libc::SIGKILL);
        let f = run.finish(Duration::from_secs(10));
        let (v, _) = report();
        let text = status(&[]).stdout;
        let (inst, groups) = (mine(&v, "instances"), mine(&v, "groups"));
        if inst.is_empty() || groups.is_empty() {
            eprintln!("PID {}'s leftovers were swept by another run", f.pid);
            continue;
        }
        assert_eq!(inst[0]["owner"]["kind"], "left-behind", "{}", inst[0]);
        assert_eq!(groups[0]["owner"]["kind"], "left-behind", "{}", groups[0]);
        assert!(
            text.contains(&format!("ours, LEFT BEHIND by uprobe PID {pid} (killed)")),
            "{text}"
        );
        let hint = v["hints"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["ours"] == true)
            .unwrap_or_else(|| panic!("no hint for ours: {}", v["hints"]));
        assert_eq!(hint["commands"][0], "reset-ftrace");
        assert!(text.contains("\n    reset-ftrace\n"), "{text}");
        let r = support::run("reset-ftrace", &[]);
        assert_eq!(r.code(), 0, "{}", r.stderr);
        support::assert_nothing_left(pid);
        return;
    }
    panic!("three killed runs were all swept by others before ftrace-status saw them");
}

/// Where function_graph runs only at the top level (Linux 6.10 and
/// earlier), funcgraph holds it: shown as ours while it runs, and its
/// settings as left behind once it is killed, until reset-ftrace puts
/// them back.
#[test]
fn the_top_level_held_by_a_run_of_ours_is_shown_live_then_left_behind() {
    require_tracing!(FunctionGraph);
    require!(
        !support::has(ftrace_common::kernel::caps::Feature::GraphInInstances),
        "function_graph runs in instances here: funcgraph does not take the top level"
    );
    let _turn = turn();
    let before = support::top_level_snapshot(&[]);
    let mut w = Workload::waiting(&["steady", "read", "600"]);
    w.go();
    let wpid = w.pid().to_string();
    let mut run = ToolRun::start("funcgraph", &["-m", "1", "-p", &wpid, "vfs_read"]);
    run.wait_ready();
    let pid = run.pid();
    let (v, f) = report();
    let held = &v["tracing"]["top_held"];
    assert_eq!(held["tool"], "funcgraph", "{}", v["tracing"]);
    assert_eq!(held["pid"], pid);
    assert_eq!(held["live"], true);
    if std::env::var_os("FTRACE_TOOLS_IN_VM").is_some() {
        // Nobody else traces in the guests: a run of ours is no reason
        // for status 1.
        assert_eq!(f.code(), 0, "{}", v["foreign_top_level"]);
    }
    run.signal(libc::SIGKILL);
    let _ = run.finish(Duration::from_secs(30));
    let (v, _) = report();
    let held = &v["tracing"]["top_held"];
    assert_eq!(held["live"], false, "{}", v["tracing"]);
    assert!(
        held["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["file"] == "current_tracer" && f["holds_ours"] == true),
        "{held}"
    );
    let text = status(&[]).stdout;
    assert!(
        text.contains(&format!(
            "top level LEFT BEHIND by funcgraph PID {pid} (killed)"
        )),
        "{text}"
    );
    assert!(text.contains("\n    reset-ftrace\n"), "{text}");
    let r = support::run("reset-ftrace", &[]);
    assert_eq!(r.code(), 0, "{}", r.stderr);
    let (v, _) = report();
    assert!(v["tracing"]["top_held"].is_null(), "{}", v["tracing"]);
    let mut after = support::top_level_snapshot(&[]);
    let mut before = before;
    // The kernel expands the buffer at the first use of a tracer.
    after.remove("buffer_size_kb");
    before.remove("buffer_size_kb");
    assert_eq!(after, before);
}

#[test]
fn non_root_and_a_missing_tracefs_each_get_a_clear_message() {
    require!(support::is_root(), "needs root to drop to another user");
    let _turn = turn();
    let mut c = Command::new(support::bin("ftrace-status"));
    support::as_nobody(&mut c);
    let f = support::run_cmd(&mut c);
    assert_eq!(f.code(), 2, "{}", f.stderr);
    assert_eq!(f.stderr.lines().count(), 1, "{}", f.stderr);
    assert!(
        f.stderr.starts_with("ftrace-status: ") && f.stderr.contains("root"),
        "{}",
        f.stderr
    );

    // In a mount namespace of its own without tracefs: it says so, still
    // reports what it can, and mounts nothing.
    require!(
        Path::new("/usr/bin/unshare").exists(),
        "needs unshare(1) for a mount namespace"
    );
    let script = r#"for m in $(grep ' - tracefs ' /proc/self/mountinfo | cut -d' ' -f5); do
    umount -l "$m" || exit 9
done
"$0"; rc=$?
"$0" -j > "$1" || exit 8
grep -q ' - tracefs ' /proc/self/mountinfo && echo STILL-MOUNTED
exit $rc"#;
    let json = tempfile::NamedTempFile::new().unwrap();
    let f = support::run_cmd(
        Command::new("/usr/bin/unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", script])
            .arg(support::bin("ftrace-status"))
            .arg(json.path()),
    );
    assert_eq!(f.code(), 0, "{}{}", f.stdout, f.stderr);
    assert!(
        f.stdout
            .contains("tracefs is not mounted: the tools of ftrace-tools mount it"),
        "{}",
        f.stdout
    );
    assert!(!f.stdout.contains("STILL-MOUNTED"), "{}", f.stdout);
    assert!(!f.stdout.contains("Tracing now"), "{}", f.stdout);
    let v: Value = serde_json::from_str(&std::fs::read_to_string(json.path()).unwrap()).unwrap();
    assert!(
        v["kernel"]["tracefs"].is_null() && v["tracing"].is_null(),
        "{v}"
    );
    if !v["kernel"]["config"].is_null() {
        assert_eq!(v["features"][0]["source"], "config", "{v}");
        assert!(f.stdout.contains("(from the config)"), "{}", f.stdout);
    }
}
