//! Black-box tests of `uprobe`, run against the real kernel: exact counts,
//! return values, OpenSSL, bash, a container, small C programs (PIE,
//! non-PIE, stripped, versioned, IFUNC), bad input and signals.
mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{cc, has_command, require_cc, run, Finished, ToolRun, Workload};

/// `p:NAME WORKLOAD:ftt_probe_target ARGS` with the workload's real path.
fn wl_def(kind: char, name: &str, args: &str) -> String {
    format!(
        "{kind}:{name} {}:ftt_probe_target {args}",
        support::workload_bin().display()
    )
    .trim_end()
    .to_string()
}

/// Runs `uprobe -p WORKLOAD ARGS` around `ftt-workload call N`.
fn trace_calls(n: u64, args: &[&str]) -> (Finished, u64) {
    let mut w = Workload::waiting(&["call", &n.to_string()]);
    let pid = w.pid().to_string();
    let mut a = vec!["-p", pid.as_str()];
    a.extend_from_slice(args);
    let mut t = ToolRun::start("uprobe", &a);
    t.wait_ready();
    w.go();
    let made = w.wait();
    (t.stop(), made)
}

/// The lines of an event NAME (`...: NAME: ...`).
fn events<'a>(f: &'a Finished, name: &str) -> Vec<&'a str> {
    let pat = format!(": {name}: (");
    f.stdout.lines().filter(|l| l.contains(&pat)).collect()
}

/// The value of `key=` in an event line.
fn arg<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!(" {key}=");
    let at = line.find(&pat)? + pat.len();
    let rest = &line[at..];
    if let Some(s) = rest.strip_prefix('"') {
        return s.rfind('"').map(|e| &s[..e]);
    }
    Some(rest.split(' ').next().unwrap_or(""))
}

fn parse_num(s: &str) -> u64 {
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).unwrap(),
        None => s.parse().unwrap(),
    }
}

/// The `(0x...)` address of an entry event.
fn ip(line: &str) -> u64 {
    let s = &line[line.find(": (0x").unwrap() + 5..];
    u64::from_str_radix(&s[..s.find(')').unwrap()], 16).unwrap()
}

/// Nothing of run `pid` is left, and no line of its group is in
/// uprobe_events.
fn clean(f: &Finished) {
    support::assert_nothing_left(f.pid);
    let ue = std::fs::read_to_string(support::tracefs_root().join("uprobe_events")).unwrap();
    let mine = format!("ftrace_tools_{}_", f.pid);
    assert!(!ue.contains(&mine), "left in uprobe_events: {ue}");
}

#[test]
fn entry_probe_counts_exactly() {
    require_tracing!(UprobeEvents, Instances);
    let n = 20_000;
    let (f, made) = trace_calls(n, &[&wl_def('p', "ftt_entry", "")]);
    assert_eq!(made, n);
    assert_eq!(f.code(), 0, "{}", f.stderr);
    assert_eq!(events(&f, "ftt_entry").len(), n as usize, "{}", f.stderr);
    assert!(!f.stderr.contains("LOST"), "{}", f.stderr);
    clean(&f);
}

#[test]
fn return_probe_gives_every_return_value() {
    require_tracing!(UprobeEvents, Instances);
    let n = 5_000;
    // ftt_probe_target(i) returns i + 1 for i in 0..n: 1, 2, ... n in order.
    let (f, _) = trace_calls(n, &[&wl_def('r', "ftt_ret", "$retval")]);
    assert_eq!(f.code(), 0, "{}", f.stderr);
    let vals: Vec<u64> = events(&f, "ftt_ret")
        .iter()
        .map(|l| parse_num(arg(l, "arg1").unwrap()))
        .collect();
    assert_eq!(vals, (1..=n).collect::<Vec<_>>());
    // The return shape: (0xret <- 0xfunc).
    let first = events(&f, "ftt_ret")[0];
    assert!(first.contains(" <- 0x"), "{first}");
    clean(&f);
}

#[test]
fn write_records_every_call_for_trace_cmd_and_read() {
    require_tracing!(UprobeEvents, Instances);
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("calls.dat");
    let path = file.to_str().unwrap();
    let n = 3_000;
    let e = wl_def('p', "ftt_in", "x=%di:u64");
    let r = wl_def('r', "ftt_out", "rv=$retval:s32");
    let (f, made) = trace_calls(n, &["-w", path, "-e", &e, "-e", &r]);
    assert_eq!(made, n);
    assert_eq!(f.code(), 0, "{}", f.stderr);
    assert_eq!(f.stdout, "", "nothing is printed while writing");
    assert!(
        f.stderr.contains(&format!("wrote {} events", 2 * n)),
        "{}",
        f.stderr
    );
    clean(&f);
    // Read back: the lines a live run prints, arguments and all.
    let back = run("uprobe", &["--read", path]);
    assert_eq!(back.code(), 0, "{}", back.stderr);
    let ins = events(&back, "ftt_in");
    let outs = events(&back, "ftt_out");
    assert_eq!((ins.len(), outs.len()), (n as usize, n as usize));
    for (i, (a, b)) in ins.iter().zip(&outs).enumerate() {
        assert_eq!(arg(a, "x"), Some(i.to_string().as_str()), "{a}");
        assert_eq!(arg(b, "rv"), Some((i + 1).to_string().as_str()), "{b}");
    }
    assert!(outs[0].contains(" <- 0x"), "{}", outs[0]);
    // trace-cmd reads the same file: every event, with its arguments.
    if let Some(text) = support::trace_cmd_report(&file) {
        assert_eq!(support::count_lines(&text, "ftt_in:"), n as usize);
        assert_eq!(support::count_lines(&text, "ftt_out:"), n as usize);
        let first = text
            .lines()
            .filter(|l| l.contains("ftt_in:") && l.trim_end().ends_with(" x=0"))
            .count();
        assert_eq!(first, 1, "the argument of the first call");
    }
    // Options that set up tracing, or a file without probes, are refused.
    let bad = run("uprobe", &["--read", path, "-d", "1"]);
    assert_eq!(bad.code(), 2, "{}", bad.stderr);
    let both = run("uprobe", &["-w", path, "-j", &e]);
    assert_eq!(both.code(), 2, "{}", both.stderr);
}

#[test]
fn entry_and_return_in_one_run_with_typed_args() {
    require_tracing!(UprobeEvents, Instances);
    let n = 300;
    let e = wl_def('p', "ftt_in", "x=%di:u64");
    let r = wl_def('r', "ftt_out", "rv=$retval:s32");
    let (f, _) = trace_calls(n, &["-e", &e, "-e", &r]);
    assert_eq!(f.code(), 0, "{}", f.stderr);
    assert!(f.stderr.contains("Tracing uprobes ftt_in"), "{}", f.stderr);
    let ins = events(&f, "ftt_in");
    let outs = events(&f, "ftt_out");
    assert_eq!((ins.len(), outs.len()), (n as usize, n as usize));
    // Decimal as typed, in time order: in(i) precedes out(i + 1).
    for (i, (a, b)) in ins.iter().zip(&outs).enumerate() {
        assert_eq!(arg(a, "x"), Some(i.to_string().as_str()), "{a}");
        assert_eq!(arg(b, "rv"), Some((i + 1).to_string().as_str()), "{b}");
    }
    let order: Vec<&str> = f
        .stdout
        .lines()
        .take(4)
        .map(|l| if l.contains("ftt_in:") { "in" } else { "out" })
        .collect();
    assert_eq!(order, ["in", "out", "in", "out"], "{}", f.stdout);
    clean(&f);
}

/// The kernel is the oracle of the arguments' text: while uprobe traces
/// the workload, an instance of the test's own records the same events,
/// and every line's text (addresses and each type's rendering) must be
/// the kernel's own.
#[test]
fn arguments_print_as_the_kernel_prints_them() {
    require_tracing!(UprobeEvents, Instances);
    let n = 40u64;
    let e = wl_def(
        'p',
        "ftt_types",
        "a=%di:u8 b=%di:s16 c=%di:x32 d=%di:s64 e=%di:x64 f=%di:b3@1/8 st=+0(%sp):x8[4] w=+0(%sp):u16[2] who=$comm",
    );
    let r = wl_def(
        'r',
        "ftt_rtypes",
        "rv=$retval:s32 rx=$retval:x16 rb=$retval:b2@0/64",
    );
    let mut w = Workload::waiting(&["call", &n.to_string()]);
    let pid = w.pid().to_string();
    let mut t = ToolRun::start("uprobe", &["-p", &pid, "-e", &e, "-e", &r]);
    t.wait_ready();
    let kernel = support::KernelText::start(t.pid(), "uprobe_events", w.pid());
    w.go();
    assert_eq!(w.wait(), n);
    std::thread::sleep(Duration::from_millis(300));
    let kernel = kernel.finish();
    let f = t.stop();
    assert_eq!(f.code(), 0, "{}", f.stderr);
    let names = ["ftt_types", "ftt_rtypes"];
    support::assert_same_probe_texts(&kernel, &f.stdout, &names, 2 * n as usize);
    clean(&f);
}

/// `WORKLOAD:FUNC` with the workload's real path.
fn wl_fn(func: &str) -> String {
    format!("{}:{func}", support::workload_bin().display())
}

/// Runs `uprobe -p WORKLOAD ARGS` around `ftt-workload args N 1500`
/// (alive 1.5 s after its calls, so that its memory can be read at the
/// returns).
fn trace_args(n: u64, args: &[&str]) -> Finished {
    let mut w = Workload::waiting(&["args", &n.to_string(), "1500"]);
    let pid = w.pid().to_string();
    let mut a = vec!["-p", pid.as_str()];
    a.extend_from_slice(args);
    let mut t = ToolRun::start("uprobe", &a);
    t.wait_ready();
    w.go();
    assert_eq!(w.wait(), n);
    t.stop()
}

#[test]
fn argn_at_entry_in_registers_and_on_the_stack() {
    require_tracing!(UprobeEvents, Instances);
    let n = 200;
    let all: Vec<String> = (1..=8).map(|i| format!("$arg{i}")).collect();
    let a8 = format!("p:a8 {} {}", wl_fn("ftt_args8"), all.join(" "));
    let fill = format!(
        "p:fin {} i=$arg1:u64 s=+0($arg2):string cap=$arg3:u32",
        wl_fn("ftt_fill")
    );
    let f = trace_args(n, &["-e", &a8, "-e", &fill]);
    assert_eq!(f.code(), 0, "{}", f.stderr);
    let a8s = events(&f, "a8");
    let fins = events(&f, "fin");
    assert_eq!(
        (a8s.len(), fins.len()),
        (n as usize, n as usize),
        "{}",
        f.stderr
    );
    for (i, l) in a8s.iter().enumerate() {
        for k in 1..=8u64 {
            let v = parse_num(arg(l, &format!("arg{k}")).unwrap());
            assert_eq!(v, i as u64 + k - 1, "arg{k}: {l}");
        }
    }
    for (i, l) in fins.iter().enumerate() {
        assert_eq!(arg(l, "i"), Some(i.to_string().as_str()), "{l}");
        assert_eq!(arg(l, "s"), Some(format!("in-{i}").as_str()), "{l}");
        assert_eq!(arg(l, "cap"), Some("256"), "{l}");
    }
    clean(&f);
}

/// What `ftt_fill(i, ...)` writes (the workload's `fill_bytes`), quoted as
/// uprobe prints bytes: every byte that is not printable ASCII as \xNN.
fn fill_quoted(i: u64) -> String {
    let mut v = format!("out-{i}").into_bytes();
    v.extend_from_slice(b"\0\x01\xff\n\"\\ ");
    v.extend(std::iter::repeat_n(b'z', (i % 7) as usize));
    let mut s = String::new();
    for c in v {
        match c {
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            b'\n' => s.push_str("\\n"),
            0x20..=0x7e => s.push(c as char),
            _ => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s
}

#[test]
fn argn_at_return_pairs_with_the_entry_and_reads_the_exact_bytes() {
    require_tracing!(UprobeEvents, Instances);
    let n = 300;
    let def = format!(
        "r:fill {} n=$retval:u64 buf=+0($arg2):bytes[$retval] i=$arg1:u64 s=+0($arg2):string cap=$arg3:u16",
        wl_fn("ftt_fill")
    );
    let f = trace_args(n, &[&def]);
    assert_eq!(f.code(), 0, "{}", f.stderr);
    let fills = events(&f, "fill");
    assert_eq!(fills.len(), n as usize, "{}", f.stderr);
    for (i, l) in fills.iter().enumerate() {
        let i = i as u64;
        let want = format!(
            " n={} buf=\"{}\" i={i} s=\"out-{i}\" cap=256",
            11 + i.to_string().len() + (i % 7) as usize,
            fill_quoted(i)
        );
        assert!(l.ends_with(&want), "{l}\nwant {want}");
        assert!(l.contains(" <- 0x"), "{l}");
    }
    // The hidden entry probe is nowhere in the output, and nothing is
    // missed.
    assert!(!f.stdout.contains("fill_entry"), "{}", f.stdout);
    assert!(!f.stderr.contains("$argN at a return"), "{}", f.stderr);
    clean(&f);
    // JSON carries the same values.
    let f = trace_args(20, &["--json", &def]);
    assert_eq!(f.code(), 0, "{}", f.stderr);
    let objs: Vec<serde_json::Value> = f
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(objs.len(), 20, "{}", f.stdout);
    for (i, o) in objs.iter().enumerate() {
        assert_eq!(o["args"]["i"], i as u64, "{o}");
        assert_eq!(o["args"]["s"], format!("out-{i}"), "{o}");
    }
    clean(&f);
}

#[test]
fn argn_at_return_pairs_per_thread_through_recursion() {
    require_tracing!(UprobeEvents, Instances);
    // 8 threads, each 50 calls recursing 5 deep: 2400 returns, each
    // paired with the entry of its own depth in its own thread.
    let (t, m, d) = (8u64, 50u64, 5u64);
    let mut w = Workload::waiting(&["nest", &t.to_string(), &m.to_string(), &d.to_string()]);
    let pid = w.pid().to_string();
    let def = format!("r:nest {} d=$arg1:u64 ret=$retval:u64", wl_fn("ftt_nest"));
    let mut tr = ToolRun::start("uprobe", &["-p", &pid, &def]);
    tr.wait_ready();
    w.go();
    assert_eq!(w.wait(), t * m * (d + 1));
    let f = tr.stop();
    assert_eq!(f.code(), 0, "{}", f.stderr);
    let lines = events(&f, "nest");
    assert_eq!(lines.len() as u64, t * m * (d + 1), "{}", f.stderr);
    let mut tids = std::collections::HashSet::new();
    for l in &lines {
        assert_eq!(arg(l, "d"), arg(l, "ret"), "{l}");
        tids.insert(l.split_whitespace().next().unwrap().to_string());
    }
    assert_eq!(tids.len() as u64, t, "{tids:?}");
    assert!(!f.stderr.contains("$argN at a return"), "{}", f.stderr);
    clean(&f);
}

#[test]
fn argn_at_return_leaves_nothing_after_each_signal() {
    require_tracing!(UprobeEvents, Instances);
    // The return probe and the entry probe armed beside it both go, on
    // every signal the tools handle.
    let def = format!(
        "r:{} n=$retval:u64 buf=+0($arg2):bytes[$retval]",
        wl_fn("ftt_fill")
    );
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
        let mut t = ToolRun::start("uprobe", &[&def]);
        t.wait_ready();
        let ue = std::fs::read_to_string(support::tracefs_root().join("uprobe_events")).unwrap();
        let mine = format!("ftrace_tools_{}_", t.pid());
        assert_eq!(ue.lines().filter(|l| l.contains(&mine)).count(), 2, "{ue}");
        t.signal(sig);
        let f = t.finish(Duration::from_secs(60));
        assert_eq!(f.code(), 0, "signal {sig}: {}", f.stderr);
        clean(&f);
    }
}

#[test]
fn argn_where_it_cannot_work_exits_2_and_leaves_nothing() {
    require_tracing!(UprobeEvents, Instances);
    for (def, want) in [
        (format!("p:{} $arg0", wl_fn("ftt_fill")), "out of range"),
        (format!("p:{} $arg65", wl_fn("ftt_fill")), "out of range"),
        (format!("p:{} $arg", wl_fn("ftt_fill")), "give $argN"),
        (
            format!("p:{} +0($argv):string", wl_fn("ftt_fill")),
            "'$argv'",
        ),
        (format!("p:{}+0x4 $arg1", wl_fn("ftt_fill")), "at an offset"),
        (
            format!("r:{} +0($arg2):bytes[%dx]", wl_fn("ftt_fill")),
            "bytes[LEN]",
        ),
        (
            format!("r:{} $arg2:string", wl_fn("ftt_fill")),
            "through a pointer",
        ),
        (format!("r:{}+0x4 $arg1", wl_fn("ftt_fill")), "not +OFFSET"),
    ] {
        let f = run("uprobe", &[&def]);
        assert_eq!(f.code(), 2, "{def}: {}", f.stderr);
        assert!(
            f.stderr.contains(want),
            "{def}: want {want:?} in {}",
            f.stderr
        );
        assert!(!f.stderr.contains("Tracing"), "{def}: {}", f.stderr);
        clean(&f);
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("argn.dat");
    let def = format!("r:{} $arg1", wl_fn("ftt_fill"));
    let f = run("uprobe", &["-w", file.to_str().unwrap(), &def]);
    assert_eq!(f.code(), 2, "{}", f.stderr);
    assert!(f.stderr.contains("not with -w"), "{}", f.stderr);
    assert!(!file.exists());
    clean(&f);
}

#[test]
fn pid_counts_only_that_process_of_two_identical_ones() {
    require_tracing!(UprobeEvents, Instances);
    let mut a = Workload::waiting(&["call", "1000"]);
    let mut b = Workload::waiting(&["call", "3000"]);
    let pid = a.pid().to_string();
    let mut t = ToolRun::start("uprobe", &["-p", &pid, &wl_def('p', "ftt_two", "")]);
    t.wait_ready();
    a.go();
    b.go();
    assert_eq!((a.wait(), b.wait()), (1000, 3000));
    let f = t.stop();
    let ev = events(&f, "ftt_two");
    assert_eq!(ev.len(), 1000, "{}", f.stderr);
    assert!(ev.iter().all(|l| l.contains(&format!("-{pid} "))));
    clean(&f);
}

#[test]
fn filter_with_pid_and_with_tid() {
    require_tracing!(UprobeEvents, Instances);
    let def = wl_def('r', "ftt_filt", "rv=$retval:u64");
    let (f, _) = trace_calls(1000, &[&def, "rv > 900"]);
    assert_eq!(f.code(), 0, "{}", f.stderr);
    assert_eq!(events(&f, "ftt_filt").len(), 100, "{}", f.stderr);
    // The same filter given with `if`, and -L (the main thread).
    let mut w = Workload::waiting(&["call", "1000"]);
    let tid = w.pid().to_string();
    let def = format!("{def} if rv <= 10");
    let mut t = ToolRun::start("uprobe", &["-L", &tid, "-e", &def]);
    t.wait_ready();
    w.go();
    w.wait();
    let f = t.stop();
    assert_eq!(events(&f, "ftt_filt").len(), 10, "{}", f.stderr);
    clean(&f);
}

#[test]
fn json_and_max_events() {
    require_tracing!(UprobeEvents, Instances);
    let (f, _) = trace_calls(5, &["--json", &wl_def('r', "ftt_json", "rv=$retval:u64")]);
    let lines: Vec<serde_json::Value> = f
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5, "{}", f.stdout);
    for (i, v) in lines.iter().enumerate() {
        assert_eq!(v["event"], "ftt_json");
        assert_eq!(v["comm"], "ftt-workload");
        assert_eq!(v["args"]["rv"], i as u64 + 1);
        assert!(v["func"].as_str().unwrap().starts_with("0x"));
    }
    // -M ends the run by itself.
    let mut w = Workload::waiting(&["call", "500"]);
    let pid = w.pid().to_string();
    let mut t = ToolRun::start(
        "uprobe",
        &["-M", "7", "-p", &pid, &wl_def('p', "ftt_m", "")],
    );
    t.wait_ready();
    w.go();
    w.wait();
    let f = t.finish(Duration::from_secs(30));
    assert_eq!(f.code(), 0, "{}", f.stderr);
    assert_eq!(events(&f, "ftt_m").len(), 7);
    clean(&f);
}

#[test]
fn user_stacks_are_symbolized() {
    require_tracing!(UprobeEvents, Instances, UserStacks);
    let (f, _) = trace_calls(3, &["-s", &wl_def('p', "ftt_stack", "")]);
    assert_eq!(events(&f, "ftt_stack").len(), 3, "{}", f.stdout);
    let frames = f.count(" => ftt_probe_target+0x0 (");
    assert_eq!(frames, 3, "{}{}", f.stdout, f.stderr);
    clean(&f);
    // With -M, the last event's stack is awaited: events that come in the
    // same read are not printed, nor are their stacks.
    let mut w = Workload::waiting(&["call", "2000"]);
    let pid = w.pid().to_string();
    let mut t = ToolRun::start(
        "uprobe",
        &["-M", "7", "-s", "-p", &pid, &wl_def('p', "ftt_stack_m", "")],
    );
    t.wait_ready();
    w.go();
    w.wait();
    let f = t.finish(Duration::from_secs(30));
    assert_eq!(f.code(), 0, "{}", f.stderr);
    assert_eq!(events(&f, "ftt_stack_m").len(), 7, "{}", f.stdout);
    assert_eq!(f.count(" => ftt_probe_target+0x0 ("), 7, "{}", f.stdout);
    clean(&f);
}

#[test]
fn view_shows_the_format_and_leaves_nothing() {
    require_tracing!(UprobeEvents);
    let f = run("uprobe", &["-v", &wl_def('r', "ftt_view", "file=$retval")]);
    assert_eq!(f.code(), 0, "{}", f.stderr);
    assert!(f.stdout.contains("name: ftt_view"), "{}", f.stdout);
    assert!(f.stdout.contains("field:unsigned long __probe_func;"));
    assert!(f.stdout.contains("u64 file;"), "{}", f.stdout);
    clean(&f);
}

#[test]
fn list_functions_with_a_glob() {
    let wl = support::workload_bin();
    let wl = wl.to_str().unwrap();
    let f = run("uprobe", &["-l", wl, "ftt_probe_*"]);
    assert_eq!(f.code(), 0, "{}", f.stderr);
    assert_eq!(f.stdout.trim(), "ftt_probe_target");
    let f = run("uprobe", &["-l", wl, "nothing_like_this*"]);
    assert_eq!(f.code(), 2);
    // A library by name, functions demangled where mangled.
    let f = run("uprobe", &["-l", "libc", "mallo*"]);
    assert_eq!(f.code(), 0, "{}", f.stderr);
    assert!(f.stdout.lines().any(|l| l == "malloc"), "{}", f.stdout);
    let f = run("uprobe", &["-l", wl, "*lang_start*"]);
    assert!(f.stdout.contains("std::rt::lang_start"), "{}", f.stdout);
}

// ---------------------------------------------------------------- C programs

/// A program compiled for one test, waiting for a line on stdin, then doing
/// its work and printing `done N`.
struct Prog {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Prog {
    fn start(cmd: &mut Command) -> Prog {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn");
        let stdin = child.stdin.take();
        Prog { child, stdin }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn go(&mut self) {
        self.stdin.take().unwrap().write_all(b"go\n").unwrap();
    }

    fn wait(mut self) -> String {
        let mut out = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert!(self.child.wait().unwrap().success(), "{out}");
        out
    }
}

impl Drop for Prog {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Calls `NAME` (defined here or in a library) N times after "go".
fn main_src(decl: &str, call: &str) -> String {
    format!(
        r#"#include <stdio.h>
#include <stdlib.h>
{decl}
int main(int argc, char **argv) {{
    long n = atol(argv[1]), acc = 0;
    char line[16];
    if (!fgets(line, sizeof line, stdin)) return 1;
    for (long i = 0; i < n; i++) acc += {call}((int)i);
    printf("done %ld\n", n);
    return acc == -1;
}}
"#
    )
}

const LOCAL_FN: &str =
    "__attribute__((noinline)) int ftt_c_target(int x) { __asm__ volatile(\"\"); return x + 1; }";

/// The load address of a file in a process (its mapping at offset 0).
fn load_base(pid: u32, file: &Path) -> u64 {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let file = file.canonicalize().unwrap();
    for l in maps.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() >= 6 && Path::new(f[5]) == file && f[2] == "00000000" {
            return u64::from_str_radix(f[0].split('-').next().unwrap(), 16).unwrap();
        }
    }
    panic!("{} not mapped in {pid}:\n{maps}", file.display());
}

/// Probes `def` while `prog N` runs; returns the events of `name` and the
/// program's load base of `file`.
fn probe_prog(
    prog: &Path,
    env: &[(&str, &str)],
    n: u64,
    def: &str,
    name: &str,
    file: &Path,
) -> (Vec<String>, u64, Finished) {
    let mut p = Prog::start(
        Command::new(prog)
            .arg(n.to_string())
            .envs(env.iter().copied()),
    );
    // The program is loaded (its libraries too) once it waits on stdin.
    let deadline = Instant::now() + Duration::from_secs(30);
    let base = loop {
        let maps = std::fs::read_to_string(format!("/proc/{}/maps", p.pid())).unwrap_or_default();
        if maps.contains(file.canonicalize().unwrap().to_str().unwrap()) {
            break load_base(p.pid(), file);
        }
        assert!(Instant::now() < deadline, "{} never mapped", file.display());
        std::thread::sleep(Duration::from_millis(5));
    };
    let pid = p.pid().to_string();
    let mut t = ToolRun::start("uprobe", &["-p", &pid, def]);
    t.wait_ready();
    p.go();
    assert_eq!(p.wait().trim(), format!("done {n}"));
    let f = t.stop();
    assert_eq!(f.code(), 0, "{}", f.stderr);
    let ev = events(&f, name).iter().map(|s| s.to_string()).collect();
    clean(&f);
    (ev, base, f)
}

/// The address of a symbol in a file, read with our own ELF reader.
fn sym_vaddr(file: &Path, name: &str) -> u64 {
    let elf = ftrace_common::sym::elf::ElfFile::open(file).unwrap();
    elf.resolve(name, false).unwrap().vaddr
}

#[test]
fn pie_and_non_pie_programs_give_exact_counts_at_the_resolved_address() {
    require_tracing!(UprobeEvents, Instances);
    if !require_cc() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = main_src(LOCAL_FN, "ftt_c_target");
    for (name, flags, pie) in [
        ("pie", &["-O2", "-fPIE", "-pie"][..], true),
        ("nopie", &["-O2", "-fno-pie", "-no-pie"][..], false),
    ] {
        let prog = cc(dir.path(), name, &src, flags);
        let n = 777;
        let def = format!("p:ftt_c_{name} {}:ftt_c_target", prog.display());
        let (ev, base, _) = probe_prog(&prog, &[], n, &def, &format!("ftt_c_{name}"), &prog);
        assert_eq!(ev.len(), n as usize, "{name}");
        let vaddr = sym_vaddr(&prog, "ftt_c_target");
        let want = if pie { base + vaddr } else { vaddr };
        assert!(
            ev.iter().all(|l| ip(l) == want),
            "{name}: want {want:#x}: {}",
            ev[0]
        );
    }
}

#[test]
fn stripped_program_with_only_dynsym() {
    require_tracing!(UprobeEvents, Instances);
    if !require_cc() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = main_src(LOCAL_FN, "ftt_c_target");
    // -rdynamic exports the function in .dynsym; -s drops .symtab.
    let prog = cc(dir.path(), "stripped", &src, &["-O2", "-rdynamic", "-s"]);
    let elf = ftrace_common::sym::elf::ElfFile::open(&prog).unwrap();
    assert!(!elf.has_full_symbols(), "still has .symtab");
    let n = 1234;
    let def = format!("p:ftt_c_strip {}:ftt_c_target", prog.display());
    let (ev, base, _) = probe_prog(&prog, &[], n, &def, "ftt_c_strip", &prog);
    assert_eq!(ev.len(), n as usize);
    assert_eq!(ip(&ev[0]), base + sym_vaddr(&prog, "ftt_c_target"));
}

#[test]
fn versioned_symbols_take_the_default_version() {
    require_tracing!(UprobeEvents, Instances);
    if !require_cc() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // libfttv.so: vfunc@V1 (old) and vfunc@@V2 (the default).
    std::fs::write(
        d.join("v.c"),
        r#"__attribute__((noinline)) int vfunc_v1(int x) { __asm__ volatile(""); return x - 1; }
__attribute__((noinline)) int vfunc_v2(int x) { __asm__ volatile(""); return x + 1; }
__asm__(".symver vfunc_v1, vfunc@V1");
__asm__(".symver vfunc_v2, vfunc@@V2");
"#,
    )
    .unwrap();
    std::fs::write(
        d.join("v.map"),
        "V1 { global: vfunc; local: *; };\nV2 { global: vfunc; } V1;\n",
    )
    .unwrap();
    let lib = d.join("libfttv.so");
    let st = Command::new("cc")
        .args(["-O2", "-shared", "-fPIC", "-Wl,--version-script"])
        .arg(d.join("v.map"))
        .arg("-o")
        .arg(&lib)
        .arg(d.join("v.c"))
        .status()
        .unwrap();
    assert!(st.success());
    let prog = cc(
        d,
        "vprog",
        &main_src("int vfunc(int);", "vfunc"),
        &[
            "-O2",
            &format!("-L{}", d.display()),
            "-lfttv",
            &format!("-Wl,-rpath,{}", d.display()),
        ][..],
    );
    let n = 500;
    let def = format!("p:ftt_vdef {}:vfunc", lib.display());
    let (ev, base, _) = probe_prog(&prog, &[], n, &def, "ftt_vdef", &lib);
    assert_eq!(ev.len(), n as usize);
    assert_eq!(ip(&ev[0]), base + sym_vaddr(&lib, "vfunc_v2"));
    // The old version by name: never called.
    let def = format!("p:ftt_vold {}:vfunc@V1", lib.display());
    let (ev, _, f) = probe_prog(&prog, &[], n, &def, "ftt_vold", &lib);
    assert_eq!(ev.len(), 0, "{}", f.stdout);
}

#[test]
fn ifunc_is_refused_with_the_implementations_named() {
    require_tracing!(UprobeEvents);
    let f = run("uprobe", &["p:libc:strlen"]);
    assert_eq!(f.code(), 2, "{}", f.stderr);
    assert!(f.stderr.contains("IFUNC"), "{}", f.stderr);
    assert!(f.stderr.contains("__strlen_"), "{}", f.stderr);
    assert!(f.stderr.contains("-F"), "{}", f.stderr);
    clean(&f);
    // The implementation it names is the one a program of ours calls.
    let Some(chosen) = f
        .stderr
        .split("resolves to ")
        .nth(1)
        .and_then(|r| r.split_once(" (at "))
        .map(|(n, _)| n.to_string())
    else {
        panic!("no implementation named as chosen: {}", f.stderr);
    };
    let mut w = Workload::waiting(&["strlen", "1000"]);
    let pid = w.pid().to_string();
    let mut t = ToolRun::start("uprobe", &["-p", &pid, &format!("p:libc:{chosen}")]);
    t.wait_ready();
    w.go();
    assert_eq!(w.wait(), 1000);
    let f = t.stop();
    assert_eq!(f.count(": (0x"), 1000, "{}", f.stderr);
    clean(&f);
}

/// gettimeofday is an IFUNC too, bound to the kernel's vDSO, which no
/// uprobe can reach: that is what the refusal must say.
#[test]
fn an_ifunc_bound_to_the_vdso_is_explained() {
    require_tracing!(UprobeEvents);
    // Where does this process's gettimeofday lead? (glibc on x86_64 and
    // arm64: into [vdso], unless the kernel offers none.)
    // SAFETY: dlsym on the default namespace with a NUL-terminated name.
    let addr = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"gettimeofday".as_ptr()) } as u64;
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let in_vdso = maps.lines().any(|l| {
        let (range, rest) = l.split_once(' ').unwrap_or_default();
        let (a, b) = range.split_once('-').unwrap_or_default();
        let (a, b) = (
            u64::from_str_radix(a, 16).unwrap_or(0),
            u64::from_str_radix(b, 16).unwrap_or(0),
        );
        rest.ends_with("[vdso]") && a <= addr && addr < b
    });
    require!(
        in_vdso,
        "this libc's gettimeofday does not lead into the vDSO"
    );
    let f = run("uprobe", &["p:libc:gettimeofday"]);
    assert_eq!(f.code(), 2, "{}", f.stderr);
    assert!(f.stderr.contains("IFUNC"), "{}", f.stderr);
    assert!(f.stderr.contains("the kernel's vDSO"), "{}", f.stderr);
    assert!(f.stderr.contains("uprobes cannot trace it"), "{}", f.stderr);
    clean(&f);
}

// ---------------------------------------------------------------- real programs

#[test]
fn openssl_write_and_read_are_seen_in_clear() {
    require_tracing!(UprobeEvents, Instances);
    if !has_command("openssl") {
        support::skip("needs the openssl command");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    let st = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=localhost", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "openssl req failed");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let msg = format!("ftt-secret-{}-{}", std::process::id(), port);

    let mut t = ToolRun::start(
        "uprobe",
        &[
            "-e",
            "p:ftt_ssl_w libssl:SSL_write +0(%si):string",
            "-e",
            "r:ftt_ssl_r libssl:SSL_read $retval",
            "-e",
            "r:ftt_ssl_rb libssl:SSL_read len=$retval:s32 buf=+0($arg2):bytes[$retval]",
        ],
    );
    t.wait_ready();

    // The server reads commands on stdin and quits at its end: keep it open.
    let mut server = Command::new("openssl")
        .args([
            "s_server",
            "-accept",
            &format!("127.0.0.1:{port}"),
            "-naccept",
            "1",
        ])
        .arg("-cert")
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let seen = Arc::new(Mutex::new(String::new()));
    let s2 = Arc::clone(&seen);
    let sout = server.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        for l in BufReader::new(sout).lines().map_while(|l| l.ok()) {
            s2.lock().unwrap().push_str(&format!("{l}\n"));
        }
    });
    let wait_for = |what: &str| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !seen.lock().unwrap().contains(what) {
            assert!(Instant::now() < deadline, "server never said {what:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    wait_for("ACCEPT");
    let mut client = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-quiet",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    client
        .stdin
        .as_mut()
        .unwrap()
        .write_all(format!("{msg}\n").as_bytes())
        .unwrap();
    wait_for(&msg);
    // The server's buffer is read when uprobe reads the return event: let
    // it do that before the server goes.
    std::thread::sleep(Duration::from_millis(1000));
    let (cpid, spid) = (client.id(), server.id());
    let _ = client.kill();
    let _ = client.wait();
    drop(server.stdin.take());
    let _ = server.kill();
    let _ = server.wait();
    let _ = reader.join();

    let f = t.stop();
    assert_eq!(f.code(), 0, "{}", f.stderr);
    let writes: Vec<&str> = events(&f, "ftt_ssl_w")
        .into_iter()
        .filter(|l| l.contains(&format!("-{cpid} ")))
        .collect();
    assert!(
        writes
            .iter()
            .any(|l| l.contains(&format!("arg1=\"{msg}\\n"))),
        "client {cpid} writes: {writes:?}\n{}",
        f.stdout
    );
    // The server read the message exactly once (its length with the
    // newline), whatever else it read.
    let len = format!("arg1=0x{:x}", msg.len() + 1);
    let reads: Vec<&str> = events(&f, "ftt_ssl_r")
        .into_iter()
        .filter(|l| l.contains(&format!("-{spid} ")))
        .collect();
    assert_eq!(
        reads.iter().filter(|l| l.ends_with(&len)).count(),
        1,
        "server {spid} reads: {reads:?}"
    );
    // With $argN at the return: the exact bytes SSL_read returned.
    let exact = format!(" len={} buf=\"{msg}\\n\"", msg.len() + 1);
    let reads: Vec<&str> = events(&f, "ftt_ssl_rb")
        .into_iter()
        .filter(|l| l.contains(&format!("-{spid} ")))
        .collect();
    assert_eq!(
        reads.iter().filter(|l| l.ends_with(&exact)).count(),
        1,
        "server {spid} reads: {reads:?}"
    );
    clean(&f);
}

#[test]
fn bash_readline_shows_the_typed_command() {
    require_tracing!(UprobeEvents, Instances);
    if !has_command("bash") || !has_command("script") {
        support::skip("needs bash and script(1)");
        return;
    }
    let cmd = format!("echo ftt-typed-{}", std::process::id());
    let mut t = ToolRun::start("uprobe", &["r:ftt_rl bash:readline +0($retval):string"]);
    t.wait_ready();
    // An interactive bash on a pseudo-terminal (script's), reading our input.
    let mut sh = Command::new("script")
        .args(["-qfc", "bash --norc --noprofile -i", "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut input = sh.stdin.take().unwrap();
    let mut out = sh.stdout.take().unwrap();
    let typed = cmd.clone();
    let echo = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    std::thread::sleep(Duration::from_millis(300));
    input.write_all(format!("{typed}\n").as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    input.write_all(b"exit\n").unwrap();
    drop(input);
    let deadline = Instant::now() + Duration::from_secs(30);
    while sh.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "bash did not exit");
        std::thread::sleep(Duration::from_millis(10));
    }
    let screen = echo.join().unwrap();
    // Wait until the command has been read (the output lines of the tool
    // are read at the end).
    std::thread::sleep(Duration::from_millis(100));
    let f = t.stop();
    assert_eq!(f.code(), 0, "{}", f.stderr);
    let hits: Vec<&str> = events(&f, "ftt_rl")
        .into_iter()
        .filter(|l| arg(l, "arg1") == Some(cmd.as_str()))
        .collect();
    assert_eq!(hits.len(), 1, "{}\nscreen: {screen}", f.stdout);
    assert!(hits[0].trim_start().starts_with("bash-"), "{}", hits[0]);
    clean(&f);
}

#[test]
fn a_program_seen_only_in_a_private_mount_namespace_is_probed_with_pid() {
    require_tracing!(UprobeEvents, Instances);
    if !has_command("unshare") {
        support::skip("needs unshare(1)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let inside = dir.path().join("mnt");
    std::fs::create_dir(&inside).unwrap();
    let wl = support::workload_bin();
    let n = 400;
    // In its own mount namespace: a tmpfs over `inside`, the workload copied
    // there and run from there. Outside, `inside` stays empty.
    let script = format!(
        "mount -t tmpfs ftt-uprobe-test {d} && cp {wl} {d}/ftt-contained && exec {d}/ftt-contained --wait call {n}",
        d = inside.display(),
        wl = wl.display()
    );
    let mut p = Prog::start(Command::new("unshare").args([
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        &script,
    ]));
    let pid = p.pid();
    let exe = inside.join("ftt-contained");
    let deadline = Instant::now() + Duration::from_secs(30);
    // (Under a chroot, as in the VM harness, the link may show a longer
    // path ending the same way.)
    while !std::fs::read_link(format!("/proc/{pid}/exe"))
        .map(|l| l.ends_with(exe.strip_prefix("/").unwrap()))
        .unwrap_or(false)
    {
        assert!(
            Instant::now() < deadline,
            "the contained program did not start"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(!exe.exists(), "the file must not be visible outside");
    // Without -p, the path means nothing here.
    let def = format!("p:ftt_ns {}:ftt_probe_target", exe.display());
    let f = run("uprobe", &["-d", "0.1", &def]);
    assert_eq!(f.code(), 2, "{}", f.stderr);
    clean(&f);
    // With -p, it is the process's own file, through /proc/PID/root.
    let pids = pid.to_string();
    let mut t = ToolRun::start("uprobe", &["-p", &pids, &def]);
    t.wait_ready();
    assert!(
        t_contains_root(&pids),
        "the probe should go through /proc/{pid}/root"
    );
    p.go();
    assert_eq!(p.wait().trim(), format!("done {n}"));
    let f = t.stop();
    assert_eq!(f.code(), 0, "{}", f.stderr);
    assert_eq!(events(&f, "ftt_ns").len(), n as usize, "{}", f.stderr);
    assert!(
        f.stderr.contains(&format!("/proc/{pid}/root")),
        "{}",
        f.stderr
    );
    clean(&f);
}

/// Whether a line of uprobe_events probes a file under /proc/PID/root.
fn t_contains_root(pid: &str) -> bool {
    let ue = std::fs::read_to_string(support::tracefs_root().join("uprobe_events")).unwrap();
    ue.lines()
        .any(|l| l.contains(&format!("/proc/{pid}/root/")))
}

// ---------------------------------------------------------------- bad input, signals

#[test]
fn bad_input_exits_2_with_one_line_and_leaves_nothing() {
    require_tracing!(UprobeEvents, Instances);
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "just text\n").unwrap();
    let wl = support::workload_bin();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["p:ftt-no-such-program:main".into()],
            "no program or library named",
        ),
        (
            vec!["p:libc:ftt_no_such_function".into()],
            "no function named",
        ),
        (vec!["p:libc:mallocc".into()], "Did you mean: malloc"),
        (
            vec![format!("p:{}:main", text.display())],
            "not an ELF file",
        ),
        (
            vec![format!("p:{}:main", dir.path().display())],
            "is a directory",
        ),
        (
            vec![format!("p:{}:ftt_probe_target %zz", wl.display())],
            "Invalid register name",
        ),
        (
            vec![format!("p:{}:ftt_probe_target $retval", wl.display())],
            "$retval",
        ),
        (
            vec![format!(
                "p:{}:ftt_probe_target\n-:ftrace_tools_1_1_1/x",
                wl.display()
            )],
            "control character",
        ),
        (
            vec![
                format!("p:{}:ftt_probe_target", wl.display()),
                "x == 1\n-:a/b".into(),
            ],
            "control character",
        ),
        (
            vec![
                format!("p:{}:ftt_probe_target", wl.display()),
                "nosuchfield == 1".into(),
            ],
            "Field not found",
        ),
        (vec!["p:libc:malloc".into(), "p:libc:free".into()], "-e"),
        (vec!["bash:readline".into()], "starts with p:"),
        (
            vec!["p:my-name bash:readline".into()],
            "cannot be an event name",
        ),
        (vec!["p:libc:0x10".into()], "not executable"),
        (
            vec!["-p".into(), "999999999".into(), "p:libc:malloc".into()],
            "no process with PID 999999999",
        ),
        (vec![], "no probe given"),
    ];
    for (args, want) in cases {
        let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        let f = run("uprobe", &a);
        assert_eq!(f.code(), 2, "{a:?}: {}", f.stderr);
        assert!(
            f.stderr.contains(want),
            "{a:?}: want {want:?} in {}",
            f.stderr
        );
        let tool_lines = f
            .stderr
            .lines()
            .filter(|l| l.starts_with("uprobe:"))
            .count();
        assert_eq!(tool_lines, 1, "{a:?}: {}", f.stderr);
        assert!(!f.stderr.contains("Tracing"), "{a:?}: {}", f.stderr);
        clean(&f);
    }
    // The kernel's error_log entry is shown for a rejected argument.
    let f = run(
        "uprobe",
        &[&format!("p:{}:ftt_probe_target %zz", wl.display())],
    );
    assert!(
        f.stderr.contains("Command: p:ftrace_tools_"),
        "{}",
        f.stderr
    );
}

#[test]
fn event_names_default_like_perf_tools() {
    require_tracing!(UprobeEvents);
    let f = run("uprobe", &["-v", "p:libc:malloc", "-e", "r:bash:readline"]);
    assert_eq!(f.code(), 0, "{}", f.stderr);
    let names: BTreeMap<&str, ()> = f
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("name: "))
        .map(|n| (n, ()))
        .collect();
    assert_eq!(
        names.keys().copied().collect::<Vec<_>>(),
        ["p_libc_malloc", "r_bash_readline"]
    );
    clean(&f);
}

#[test]
fn never_traces_itself_in_libc_it_also_runs() {
    require_tracing!(UprobeEvents, Instances);
    // Every printed line costs the tool calls into libc; none may show.
    let mut w = Workload::waiting(&["call", "2000"]);
    let mut t = ToolRun::start("uprobe", &["-d", "1", "p:ftt_self libc:malloc"]);
    t.wait_ready();
    w.go();
    w.wait();
    let f = t.finish(Duration::from_secs(60));
    assert_eq!(f.code(), 0, "{}", f.stderr);
    assert!(!events(&f, "ftt_self").is_empty(), "no malloc at all?");
    let mine = format!("-{} ", f.pid);
    assert!(
        !events(&f, "ftt_self").iter().any(|l| l.contains(&mine)),
        "the tool traced itself"
    );
    clean(&f);
}

#[test]
fn buffer_size_is_the_kernels_unless_asked() {
    require_tracing!(UprobeEvents, Instances);
    let root = support::tracefs_root();
    let size_of = |pid: u32| {
        let inst = std::fs::read_dir(root.join("instances"))
            .unwrap()
            .flatten()
            .find(|e| {
                ftrace_common::lifecycle::owner::Owner::from_instance_name(
                    &e.file_name().to_string_lossy(),
                )
                .is_some_and(|(_, o)| o.pid == pid)
            })
            .expect("the run's instance");
        std::fs::read_to_string(inst.path().join("buffer_size_kb")).unwrap()
    };
    let w = Workload::waiting(&["call", "1"]);
    let pid = w.pid().to_string();
    let def = wl_def('p', "ftt_buf", "");
    let mut t = ToolRun::start("uprobe", &["-p", &pid, "-b", "3000", &def]);
    t.wait_ready();
    assert_eq!(size_of(t.pid()).trim(), "3000");
    clean(&t.stop());
    let mut t = ToolRun::start("uprobe", &["-p", &pid, &def]);
    t.wait_ready();
    let kernel_default = size_of(t.pid());
    assert!(
        kernel_default.trim().parse::<u32>().unwrap() < 8192,
        "{kernel_default}"
    );
    clean(&t.stop());
}

#[test]
fn a_traced_process_that_exits_ends_the_run() {
    require_tracing!(UprobeEvents, Instances);
    let mut w = Workload::waiting(&["call", "10"]);
    let pid = w.pid().to_string();
    let mut t = ToolRun::start("uprobe", &["-p", &pid, &wl_def('p', "ftt_exit", "")]);
    t.wait_ready();
    w.go();
    w.wait();
    // No signal: the run ends by itself, with every event of the process.
    let f = t.finish(Duration::from_secs(30));
    assert_eq!(f.code(), 0, "{}", f.stderr);
    assert_eq!(events(&f, "ftt_exit").len(), 10);
    assert!(
        f.stderr.contains(&format!("process {pid} exited")),
        "{}",
        f.stderr
    );
    clean(&f);
}

#[test]
fn cpp_and_rust_functions_by_their_demangled_names() {
    require_tracing!(UprobeEvents, Instances);
    // Rust: the workload's `num`, called once after "go" in `call` mode.
    let (f, _) = trace_calls(
        3,
        &[&format!(
            "p:ftt_rs {}:ftt_workload::num",
            support::workload_bin().display()
        )],
    );
    assert_eq!(f.code(), 0, "{}", f.stderr);
    assert_eq!(events(&f, "ftt_rs").len(), 1, "{}", f.stdout);
    if !has_command("g++") {
        support::skip("needs g++ for the C++ half");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("cart.cc");
    std::fs::write(
        &src,
        r#"#include <cstdio>
#include <cstdlib>
namespace shop {
struct Cart { int add(int x); };
__attribute__((noinline)) int Cart::add(int x) { __asm__ volatile(""); return x + 1; }
}
int main(int argc, char **argv) {
    long n = atol(argv[1]), acc = 0;
    char line[16];
    if (!fgets(line, sizeof line, stdin)) return 1;
    shop::Cart c;
    for (long i = 0; i < n; i++) acc += c.add((int)i);
    printf("done %ld\n", n);
    return acc == -1;
}
"#,
    )
    .unwrap();
    let prog = dir.path().join("cart");
    let st = Command::new("g++")
        .args(["-O2", "-o"])
        .arg(&prog)
        .arg(&src)
        .status()
        .unwrap();
    assert!(st.success());
    let p = prog.to_str().unwrap();
    let l = run("uprobe", &["-l", p, "shop::*"]);
    assert_eq!(l.stdout.trim(), "shop::Cart::add(int)", "{}", l.stderr);
    for (name, sym) in [
        ("ftt_cxx1", "shop::Cart::add(int)"),
        ("ftt_cxx2", "shop::Cart::add"),
    ] {
        let def = format!("p:{name} {p}:{sym} %si:s32");
        let (ev, _, _) = probe_prog(&prog, &[], 250, &def, name, &prog);
        assert_eq!(ev.len(), 250, "{sym}");
        assert_eq!(arg(&ev[249], "arg1"), Some("249"), "{}", ev[249]);
    }
}

#[test]
fn an_entry_probe_fetching_a_read_buffer_gets_one_note_with_the_command_that_works() {
    require_tracing!(UprobeEvents, Instances);
    if support::tracefs().is_none()
        || ftrace_common::sym::target::resolve_target("libssl", None).is_err()
    {
        support::skip("needs libssl");
        return;
    }
    let f = run(
        "uprobe",
        &[
            "-d",
            "0.1",
            "-e",
            "p:libssl:SSL_read +0(%si):string",
            "-e",
            "p:libssl:SSL_read_ex +0(%si):string",
        ],
    );
    assert_eq!(f.code(), 0, "{}", f.stderr);
    let notes: Vec<&str> = f
        .stderr
        .lines()
        .filter(|l| l.starts_with("uprobe: note:"))
        .collect();
    assert_eq!(notes.len(), 1, "{}", f.stderr);
    assert!(
        notes[0].contains("SSL_read fills its buffer before it returns"),
        "{}",
        notes[0]
    );
    assert!(notes[0].contains("sslsniff"), "{}", notes[0]);
    assert!(
        notes[0].contains("uprobe 'r:libssl:SSL_read +0($arg2):bytes[$retval]'"),
        "{}",
        notes[0]
    );
    clean(&f);
    // The form that shows the bytes, and a write's entry, get none.
    let f = run(
        "uprobe",
        &[
            "-d",
            "0.1",
            "-e",
            "r:libssl:SSL_read +0($arg2):bytes[$retval]",
            "-e",
            "p:libssl:SSL_write +0(%si):string",
        ],
    );
    assert_eq!(f.code(), 0, "{}", f.stderr);
    assert!(!f.stderr.contains("note:"), "{}", f.stderr);
    clean(&f);
}
