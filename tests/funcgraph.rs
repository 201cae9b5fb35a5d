//! Black-box tests of `funcgraph`. function_graph needs a kernel the host
//! does not have (its function tracer refuses with EPERM): there the tests
//! check the one-line refusal and skip the rest; tests/vm runs them in the
//! Debian 6.1 guest (function_graph only at the top level) and the 6.12
//! one (function_graph in an instance, set_graph_function global).
//!
//! Enabling function_graph patches every traceable function: seconds on a
//! real machine, 15 s and more under TCG. Each test waits for the Tracing
//! line before its workload goes.
mod support;

use ftrace_common::kernel::caps::Feature;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use support::{Finished, ToolRun, Workload};

/// On 6.1 only one funcgraph can run at a time (the top level), and the
/// tests compare top-level settings before and after: one test at a time.
static GLOBAL: Mutex<()> = Mutex::new(());

fn global() -> std::sync::MutexGuard<'static, ()> {
    GLOBAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn traceable(name: &str) -> bool {
    let text = std::fs::read_to_string(support::tracefs_root().join("available_filter_functions"))
        .unwrap_or_default();
    text.lines().any(|l| l == name)
}

/// The function every open() goes through on this kernel.
fn open_function() -> &'static str {
    ["do_sys_openat2", "do_sys_open"]
        .into_iter()
        .find(|f| traceable(f))
        .expect("no do_sys_openat2 or do_sys_open")
}

/// The top-level settings funcgraph may touch (and must put back).
fn top_level() -> BTreeMap<String, String> {
    let mut m = support::top_level_snapshot(&[]);
    let root = support::tracefs_root();
    for f in [
        "set_ftrace_filter",
        "set_ftrace_notrace",
        "set_ftrace_pid",
        "set_ftrace_notrace_pid",
        "set_graph_function",
        "set_graph_notrace",
        "max_graph_depth",
        "options/sleep-time",
        "options/function-fork",
        "options/funcgraph-irqs",
        "events/sched/sched_process_exec/enable",
        "events/sched/sched_switch/enable",
    ] {
        if let Ok(t) = std::fs::read_to_string(root.join(f)) {
            m.insert(f.to_string(), t);
        }
    }
    // Read as it is (the common snapshot leaves the note out).
    if let Ok(t) = std::fs::read_to_string(root.join("buffer_size_kb")) {
        m.insert("buffer_size_kb".to_string(), t);
    }
    // "7 (expanded: 1408)": the buffer is not allocated yet; setting any
    // tracer allocates it (the kernel's doing), in whole sub-buffers, after
    // which it reads 1408 KiB rounded up to them (1410 with 4080-byte
    // data areas). The same setting.
    if let Some(v) = m.get_mut("buffer_size_kb") {
        if let Some(i) = v.find("(expanded:") {
            let kb: u64 = v[i + 10..]
                .trim()
                .trim_end_matches(')')
                .trim()
                .parse()
                .unwrap();
            let hp = ftrace_common::kernel::tracefs::read_text(&root.join("events/header_page"))
                .unwrap();
            let data: u64 = hp
                .lines()
                .find(|l| l.contains(" data;"))
                .and_then(|l| l.split("size:").nth(1))
                .and_then(|s| s.trim_end_matches(';').split(';').next())
                .and_then(|s| s.trim().parse().ok())
                .unwrap();
            *v = format!("{}\n", (kb * 1024).div_ceil(data) * data / 1024);
        }
    }
    m
}

/// A scratch file to open.
fn scratch_file(tag: &str) -> String {
    let dir = std::env::var("FTRACE_TOOLS_SCRATCH").unwrap_or_else(|_| "/tmp".into());
    let p = format!("{dir}/ftt-funcgraph-{tag}-{}", std::process::id());
    std::fs::write(&p, "x").unwrap();
    p
}

/// `funcgraph ARGS -p CHILD` on a waiting workload, released once tracing;
/// the run ends by itself when the child has exited.
fn graph_pid(workload: &[&str], args: &[&str]) -> (Finished, u64) {
    let mut w = Workload::waiting(workload);
    let pid = w.pid().to_string();
    let mut a: Vec<&str> = vec!["-p", &pid];
    a.extend(args);
    let mut t = ToolRun::start("funcgraph", &a);
    t.wait_ready();
    w.go();
    let made = w.wait();
    let f = t.finish(Duration::from_secs(180));
    assert_eq!(f.code(), 0, "{}", f.stderr);
    support::assert_nothing_left(f.pid);
    (f, made)
}

/// One line of the default text output.
#[derive(Debug, Clone, PartialEq)]
enum G {
    Enter(usize, String),
    Leaf(usize, String, Option<f64>),
    Close(usize, Option<f64>),
}

/// Parses ` C) DURATION |  <indent>call` lines (banners and others skipped).
fn parse(out: &str) -> Vec<G> {
    let mut v = Vec::new();
    for l in out.lines() {
        let Some(close_paren) = l.find(") ") else {
            continue;
        };
        if !l[..close_paren].trim().chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let Some(bar) = l.find('|') else { continue };
        let dur_text = l[close_paren + 1..bar].trim();
        let dur = dur_text
            .trim_start_matches(['+', '!', '#', '*', '@', '$'])
            .trim()
            .strip_suffix("us")
            .and_then(|d| d.trim().parse::<f64>().ok());
        let Some(rest) = l[bar + 1..].strip_prefix("  ") else {
            continue;
        };
        let indent = rest.len() - rest.trim_start().len();
        let depth = indent / 2;
        let call = rest.trim();
        if let Some(name) = call.strip_suffix("() {") {
            v.push(G::Enter(depth, name.to_string()));
        } else if call.starts_with('}') {
            v.push(G::Close(depth, dur));
        } else if let Some(i) = call.find("();") {
            v.push(G::Leaf(depth, call[..i].to_string(), dur));
        }
    }
    v
}

/// What the graphs of one task show: checks balance and that every
/// parent lasted at least as long as each of its children; returns the
/// top-level calls with their direct children's names and durations.
struct Graph {
    name: String,
    dur: Option<f64>,
    children: Vec<String>,
    max_depth: usize,
}

/// The graphs of a run's output; on a fault, the output is kept (in the
/// guest's results share when there is one) and the test fails.
fn graphs_of(f: &Finished) -> Vec<Graph> {
    let lines = parse(&f.stdout);
    match std::panic::catch_unwind(|| graphs(&lines)) {
        Ok(g) => g,
        Err(e) => {
            let dir = if std::path::Path::new("/mnt/out").is_dir() {
                "/mnt/out"
            } else {
                "/tmp"
            };
            let path = format!("{dir}/funcgraph-failed-{}.txt", f.pid);
            let _ = std::fs::write(&path, format!("{}\n{}", f.stderr, f.stdout));
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("{msg} (output kept in {path})");
        }
    }
}

fn graphs(lines: &[G]) -> Vec<Graph> {
    struct Open {
        depth: usize,
        name: String,
        children: Vec<String>,
        longest_child: f64,
        max_depth: usize,
    }
    let mut stack: Vec<Open> = Vec::new();
    let mut out = Vec::new();
    for (i, g) in lines.iter().enumerate() {
        match g {
            G::Enter(d, name) | G::Leaf(d, name, _) => {
                if let Some(top) = stack.last_mut() {
                    assert!(*d > top.depth, "line {i}: {g:?} not inside {}", top.name);
                    if *d == top.depth + 1 {
                        top.children.push(name.clone());
                    }
                } else {
                    assert_eq!(*d, 0, "line {i}: {g:?} outside any graph");
                }
                for o in stack.iter_mut() {
                    o.max_depth = o.max_depth.max(*d);
                }
                if let G::Leaf(_, _, dur) = g {
                    let dur = dur.unwrap_or_else(|| panic!("line {i}: leaf without a duration"));
                    if let Some(top) = stack.last_mut() {
                        top.longest_child = top.longest_child.max(dur);
                    } else {
                        out.push(Graph {
                            name: name.clone(),
                            dur: Some(dur),
                            children: Vec::new(),
                            max_depth: 0,
                        });
                    }
                } else {
                    stack.push(Open {
                        depth: *d,
                        name: name.clone(),
                        children: Vec::new(),
                        longest_child: 0.0,
                        max_depth: *d,
                    });
                }
            }
            G::Close(d, dur) => {
                let o = stack
                    .pop()
                    .unwrap_or_else(|| panic!("line {i}: a closing brace without a call"));
                assert_eq!(
                    *d, o.depth,
                    "line {i}: closing {} at the wrong depth",
                    o.name
                );
                let dur = dur.unwrap_or_else(|| panic!("line {i}: {} without a duration", o.name));
                assert!(
                    dur >= o.longest_child,
                    "line {i}: {} took {dur} us, less than a child ({} us)",
                    o.name,
                    o.longest_child
                );
                if let Some(p) = stack.last_mut() {
                    p.longest_child = p.longest_child.max(dur);
                } else {
                    out.push(Graph {
                        name: o.name,
                        dur: Some(dur),
                        children: o.children,
                        max_depth: o.max_depth,
                    });
                }
            }
        }
    }
    assert!(
        stack.is_empty(),
        "calls left open: {:?}",
        stack.iter().map(|o| &o.name).collect::<Vec<_>>()
    );
    out
}

#[test]
fn refuses_in_one_line_without_function_graph() {
    require!(support::is_root(), "needs root");
    require!(support::tracefs().is_some(), "needs tracefs");
    require!(
        !support::has(Feature::FunctionGraph),
        "this kernel has function_graph (the refusal is for kernels without it)"
    );
    let before = top_level();
    let f = support::run("funcgraph", &["do_sys_openat2"]);
    assert_eq!(f.code(), 2, "{f:?}");
    let lines: Vec<&str> = f.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", f.stderr);
    assert!(lines[0].starts_with("funcgraph: "), "{}", f.stderr);
    assert!(lines[0].contains("function"), "{}", f.stderr);
    support::assert_nothing_left(f.pid);
    assert_eq!(top_level(), before);
}

#[test]
fn bad_input_exits_2_and_leaves_nothing() {
    require_tracing!(FunctionGraph);
    let _g = global();
    let before = top_level();
    for args in [
        vec!["no_such_function_xyz"],
        vec!["-x", "no_such_function_xyz", "vfs_read"],
        vec!["vfs_read:mod:ext4"],
        vec!["-p", "999999999", "vfs_read"],
    ] {
        let f = support::run("funcgraph", &args);
        assert_eq!(f.code(), 2, "{args:?}: {f:?}");
        assert_eq!(f.stderr.lines().count(), 1, "{args:?}: {}", f.stderr);
        support::assert_nothing_left(f.pid);
    }
    // Option values clap refuses: its usage message, exit 2.
    let f = support::run("funcgraph", &["-m", "0", "vfs_read"]);
    assert_eq!(f.code(), 2, "{f:?}");
    let f = support::run("funcgraph", &["vfs_raed"]);
    assert!(f.stderr.contains("did you mean vfs_read"), "{}", f.stderr);
    assert_eq!(top_level(), before);
}

/// Once any buffer was sized since boot (a run with -b does it), the kernel
/// leaves the top level's boot buffer at 7 KiB when a tracer starts; a
/// funcgraph at the top level then lost nearly every event (6.1 guest).
/// Whatever the state, the buffer in use holds a few graphs, and is put
/// back afterwards.
#[test]
fn the_trace_buffer_is_big_enough_wherever_the_graph_runs() {
    require_tracing!(FunctionGraph, SyscallTracepoints, Instances);
    let _g = global();
    // A sized instance buffer, as the first tool run after boot may make.
    let f = support::run(
        "tpoint",
        &["-b", "64", "-d", "0.1", "syscalls:sys_enter_getppid"],
    );
    assert_eq!(f.code(), 0, "{}", f.stderr);
    let before = top_level();
    let path = scratch_file("buffer");
    let func = open_function();
    let mut w = Workload::waiting(&["open", &path, "5"]);
    let pid = w.pid().to_string();
    let mut t = ToolRun::start("funcgraph", &["-p", &pid, func]);
    t.wait_ready();
    let root = support::tracefs_root();
    let kb = |p: std::path::PathBuf| -> u64 {
        let s = std::fs::read_to_string(p).unwrap_or_default();
        s.split_whitespace()
            .next()
            .unwrap_or("0")
            .parse()
            .unwrap_or(0)
    };
    // Where the graph runs: our instance (6.12) or the top level (6.1).
    let ours = std::fs::read_dir(root.join("instances"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("ftrace-tools-funcgraph-{}-", t.pid())))
        });
    let size = kb(ours.unwrap_or(root.clone()).join("buffer_size_kb"));
    assert!(size >= 1024, "a {size} KiB buffer");
    w.go();
    assert_eq!(w.wait(), 5);
    let f = t.stop();
    assert_eq!(f.code(), 0, "{}", f.stderr);
    assert!(!f.stderr.contains("LOST"), "{}", f.stderr);
    assert_eq!(graphs_of(&f).len(), 5, "{}", f.stdout);
    assert_eq!(top_level(), before);
    support::assert_nothing_left(f.pid);
    let _ = std::fs::remove_file(path);
}

#[test]
fn open_path_graphs_are_whole_balanced_and_add_up() {
    require_tracing!(FunctionGraph);
    let _g = global();
    let before = top_level();
    let path = scratch_file("open");
    let func = open_function();
    // Two busy tasks meanwhile: the child is preempted and moves between
    // CPUs, and its records interleave with theirs.
    let mut w = Workload::waiting(&["open", &path, "5"]);
    let pid = w.pid().to_string();
    let mut t = ToolRun::start("funcgraph", &["-p", &pid, func]);
    t.wait_ready();
    let mut busy: Vec<Workload> = (0..2).map(|_| Workload::waiting(&["spin", "3"])).collect();
    for b in &mut busy {
        b.go();
    }
    w.go();
    let made = w.wait();
    let f = t.finish(Duration::from_secs(180));
    assert_eq!(f.code(), 0, "{}", f.stderr);
    support::assert_nothing_left(f.pid);
    for b in busy {
        b.wait();
    }
    assert_eq!(made, 5);
    let gs = graphs_of(&f);
    assert_eq!(gs.len(), 5, "{}\n{}", f.stdout, f.stderr);
    for g in &gs {
        assert_eq!(g.name, func);
        assert!(g.dur.unwrap() > 0.0);
        for want in ["getname", "do_filp_open"] {
            assert!(
                g.children.iter().any(|c| c == want),
                "{want} not called by {func}: {:?}",
                g.children
            );
        }
        assert!(g.max_depth >= 3, "a shallow graph: {}", g.max_depth);
    }
    assert!(!f.stderr.contains("LOST"), "{}", f.stderr);
    assert_eq!(top_level(), before);
    let _ = std::fs::remove_file(path);
}

#[test]
fn write_then_read_gives_the_same_graphs_and_trace_cmd_reads_the_file() {
    require_tracing!(FunctionGraph);
    let _g = global();
    let before = top_level();
    let path = scratch_file("write");
    let func = open_function();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("open.dat");
    let out = file.to_str().unwrap();
    let (w, made) = graph_pid(&["open", &path, "4"], &["-w", out, func]);
    assert_eq!(made, 4);
    assert!(w.stdout.trim().is_empty(), "-w printed: {}", w.stdout);
    assert_eq!(top_level(), before);
    // The file holds whole graphs: --read builds the 4 graphs of the
    // function, each with the calls the live run shows.
    let r = support::run("funcgraph", &["--read", out, func]);
    assert_eq!(r.code(), 0, "{}", r.stderr);
    let gs = graphs_of(&r);
    assert_eq!(gs.len(), 4, "{}\n{}", r.stdout, r.stderr);
    for g in &gs {
        assert_eq!(g.name, func);
        assert!(
            g.children.iter().any(|c| c == "do_filp_open"),
            "{:?}",
            g.children
        );
    }
    // -m applies when reading: nothing deeper than two levels.
    let m = support::run("funcgraph", &["--read", out, "-m", "2", func]);
    assert_eq!(m.code(), 0, "{}", m.stderr);
    let gm = graphs_of(&m);
    assert_eq!(gm.len(), 4, "{}", m.stdout);
    assert!(gm.iter().all(|g| g.max_depth <= 1), "{}", m.stdout);
    // trace-cmd reads the same file: one funcgraph_entry of the function
    // per graph.
    if let Some(text) = support::trace_cmd_report(&file) {
        let entries = text
            .lines()
            .filter(|l| l.contains("funcgraph_entry") && l.contains(&format!("{func}()")))
            .count();
        assert_eq!(entries, 4, "{text}");
    }
    let _ = std::fs::remove_file(path);
}

#[test]
fn max_depth_and_exclusions_cut_the_graph() {
    require_tracing!(FunctionGraph);
    let _g = global();
    let before = top_level();
    let path = scratch_file("depth");
    let func = open_function();
    let (f, _) = graph_pid(&["open", &path, "3"], &["-m", "2", "-x", "getname", func]);
    let lines = parse(&f.stdout);
    let gs = graphs_of(&f);
    assert_eq!(gs.len(), 3, "{}\n{}", f.stdout, f.stderr);
    for g in &gs {
        assert!(
            g.max_depth <= 1,
            "deeper than 2 levels: {}\n{}",
            g.max_depth,
            f.stdout
        );
        assert!(
            g.children.iter().any(|c| c == "do_filp_open"),
            "{:?}",
            g.children
        );
        assert!(
            !g.children.iter().any(|c| c == "getname"),
            "{:?}",
            g.children
        );
    }
    // With -m 2, each child is a leaf with its whole time.
    assert!(lines
        .iter()
        .any(|l| matches!(l, G::Leaf(1, n, Some(_)) if n == "do_filp_open")));
    assert_eq!(top_level(), before);
    let _ = std::fs::remove_file(path);
}

#[test]
fn threshold_keeps_the_slow_call_and_drops_the_fast_ones() {
    require_tracing!(FunctionGraph);
    let _g = global();
    let before = top_level();
    // Eight zero-length sleeps and one of 200 ms; graphs over 100 ms
    // only, as JSON. (With 20 and 10 ms, a zero-length sleep of a guest
    // whose vCPU the loaded host left waiting took 11.5 ms.)
    let (f, made) = graph_pid(
        &["nanosleep-mix", "8", "200"],
        &["--threshold", "100000", "-j", "do_nanosleep"],
    );
    assert_eq!(made, 9);
    let objs: Vec<serde_json::Value> = f
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let trees: Vec<&serde_json::Value> = objs.iter().filter(|v| v.get("func").is_some()).collect();
    assert_eq!(trees.len(), 1, "{}\n{}", f.stdout, f.stderr);
    let t = trees[0];
    assert_eq!(t["func"], "do_nanosleep");
    assert_eq!(t["end"], "returned");
    assert!(t["duration_ns"].as_u64().unwrap() >= 200_000_000, "{t}");
    assert!(t["calls"].as_array().is_some_and(|c| !c.is_empty()), "{t}");
    assert!(
        f.stderr.contains("1 graph shown, 8 below the threshold"),
        "{}",
        f.stderr
    );
    assert_eq!(top_level(), before);
}

#[test]
fn on_cpu_time_leaves_the_sleep_out() {
    require_tracing!(FunctionGraph);
    let _g = global();
    let before = top_level();
    let (f, _) = graph_pid(
        &["nanosleep", "3", "30"],
        &["-C", "-m", "1", "do_nanosleep"],
    );
    let gs = graphs_of(&f);
    assert_eq!(gs.len(), 3, "{}\n{}", f.stdout, f.stderr);
    for g in &gs {
        let us = g.dur.unwrap();
        // 30 ms asleep; on the CPU well under that even under emulation.
        assert!(
            us < 15_000.0,
            "{us} us on-CPU for a 30 ms sleep\n{}",
            f.stdout
        );
    }
    let (f, _) = graph_pid(&["nanosleep", "2", "30"], &["-m", "1", "do_nanosleep"]);
    let gs = graphs_of(&f);
    assert_eq!(gs.len(), 2, "{}\n{}", f.stdout, f.stderr);
    for g in &gs {
        assert!(g.dur.unwrap() >= 30_000.0, "{:?}", g.dur);
    }
    assert_eq!(top_level(), before);
}

#[test]
fn two_runs_at_once() {
    require_tracing!(FunctionGraph);
    let _g = global();
    let before = top_level();
    let func = open_function();
    let p1 = scratch_file("two-a");
    let p2 = scratch_file("two-b");
    let mut w1 = Workload::waiting(&["open", &p1, "3"]);
    let mut w2 = Workload::waiting(&["open", &p2, "4"]);
    let (s1, s2) = (w1.pid().to_string(), w2.pid().to_string());
    let mut a = ToolRun::start("funcgraph", &["-p", &s1, func]);
    a.wait_ready();
    // Where the first run went: the top level shows it.
    let top_tracer =
        std::fs::read_to_string(support::tracefs_root().join("current_tracer")).unwrap();
    let in_instance = top_tracer.trim() == "nop";
    let mut b = ToolRun::start("funcgraph", &["-p", &s2, "getname"]);
    if in_instance {
        b.wait_ready();
        w1.go();
        w2.go();
        assert_eq!(w1.wait(), 3);
        assert_eq!(w2.wait(), 4);
        let fa = a.finish(Duration::from_secs(180));
        let fb = b.finish(Duration::from_secs(180));
        assert!(fa.stderr.contains("private instance"), "{}", fa.stderr);
        let ga = graphs_of(&fa);
        let gb = graphs_of(&fb);
        assert_eq!(ga.len(), 3, "{}\n{}", fa.stdout, fa.stderr);
        assert!(ga
            .iter()
            .all(|g| g.name == func && g.children.iter().any(|c| c == "getname")));
        assert_eq!(gb.len(), 4, "{}\n{}", fb.stdout, fb.stderr);
        assert!(gb.iter().all(|g| g.name == "getname"));
        support::assert_nothing_left(fa.pid);
        support::assert_nothing_left(fb.pid);
    } else {
        // Only the top level: the second run refuses, cleanly and at once.
        let t0 = Instant::now();
        let fb = b.finish(Duration::from_secs(60));
        assert!(t0.elapsed() < Duration::from_secs(60));
        assert_eq!(fb.code(), 2, "{}", fb.stderr);
        assert_eq!(fb.stderr.lines().count(), 1, "{}", fb.stderr);
        assert!(
            fb.stderr.contains("another funcgraph (PID"),
            "{}",
            fb.stderr
        );
        support::assert_nothing_left(fb.pid);
        w1.go();
        assert_eq!(w1.wait(), 3);
        drop(w2);
        let fa = a.finish(Duration::from_secs(180));
        assert!(fa.stderr.contains("top level"), "{}", fa.stderr);
        assert_eq!(graphs_of(&fa).len(), 3, "{}", fa.stdout);
        support::assert_nothing_left(fa.pid);
    }
    eprintln!(
        "two runs: {}",
        if in_instance {
            "both in instances"
        } else {
            "top level: second refused"
        }
    );
    assert_eq!(top_level(), before);
    let _ = std::fs::remove_file(p1);
    let _ = std::fs::remove_file(p2);
}

#[test]
fn signals_at_random_moments_restore_everything() {
    require_tracing!(FunctionGraph);
    let _g = global();
    let before = top_level();
    let func = open_function();
    // How long starting takes here, to spread the signals over it.
    let t0 = Instant::now();
    let mut first = ToolRun::start("funcgraph", &["-x", "getname", "-m", "4", "-C", func]);
    first.wait_ready();
    let ready = t0.elapsed();
    let f = first.stop();
    assert_eq!(f.code(), 0, "{}", f.stderr);
    support::assert_nothing_left(f.pid);
    assert_eq!(top_level(), before, "after SIGINT once tracing");
    let span = ready.as_millis() as u64 + 2000;
    let mut r = support::rng();
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
        let at = Duration::from_millis(r(span));
        let t = ToolRun::start("funcgraph", &["-x", "getname", "-m", "4", "-C", func]);
        std::thread::sleep(at);
        t.signal(sig);
        let sent = Instant::now();
        let f = t.finish(Duration::from_secs(120));
        let took = sent.elapsed();
        // Before the handlers are installed (early in start-up, well
        // before it says it is tracing) the default action may still kill
        // it: nothing exists yet, as checked below. Later it exits itself.
        assert!(
            f.status.code().is_some() || at < ready,
            "signal {sig} at {at:?}, after start-up ({ready:?}), killed it: {:?}\n{}",
            f.status,
            f.stderr
        );
        assert!(
            f.stderr.lines().all(|l| !l.contains("warning")),
            "{}",
            f.stderr
        );
        support::assert_nothing_left(f.pid);
        assert_eq!(
            top_level(),
            before,
            "after signal {sig} at {at:?} (exit in {took:?})"
        );
    }
}

#[test]
fn sigkill_leftovers_are_undone_by_the_next_run() {
    require_tracing!(FunctionGraph);
    let _g = global();
    let before = top_level();
    let mut t = ToolRun::start("funcgraph", &["-m", "2", "do_nanosleep"]);
    t.wait_ready();
    t.signal(libc::SIGKILL);
    let f = t.finish(Duration::from_secs(30));
    assert!(f.status.code().is_none(), "{:?}", f.status);
    // Left behind: the tracer at the top level (6.1), or the instance
    // and its functions in the global set_graph_function (6.12).
    assert_ne!(top_level(), before);
    let g = support::run("funcgraph", &["-d", "0.5", "-m", "1", "do_nanosleep"]);
    assert_eq!(g.code(), 0, "{}", g.stderr);
    assert!(
        g.stderr.contains(&format!("PID {}", f.pid)),
        "the next run says what it undid: {}",
        g.stderr
    );
    support::assert_nothing_left(f.pid);
    support::assert_nothing_left(g.pid);
    assert_eq!(top_level(), before);
}
