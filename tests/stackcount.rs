//! Black-box tests of `stackcount`, run against the real kernel: user
//! stacks of a tracepoint on the host (a C program built with frame
//! pointers reaches getppid() through two call paths a known number of
//! times each), kernel functions where the kernel has kprobes (the VM
//! guests).
mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::{Finished, ToolRun, Workload};

/// Two call paths to one system call: path_a N1 times, then path_b N2
/// times, once a byte arrives on stdin. `leaf` is there because the
/// kernel's frame-pointer walk misses the caller of the function that
/// makes the call (libc's syscall() sets up no frame).
const TWO_PATHS: &str = r#"
#define _GNU_SOURCE
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>
__attribute__((noinline)) long leaf(void) { return syscall(SYS_getppid); }
__attribute__((noinline)) void path_a(void) { leaf(); __asm__ volatile(""); }
__attribute__((noinline)) void path_b(void) { leaf(); __asm__ volatile(""); }
int main(int argc, char **argv) {
    int n1 = atoi(argv[1]), n2 = atoi(argv[2]);
    char c;
    if (read(0, &c, 1) != 1) return 1;
    for (int i = 0; i < n1; i++) path_a();
    for (int i = 0; i < n2; i++) path_b();
    return 0;
}
"#;

const N1: u64 = 300;
const N2: u64 = 700;

fn two_paths(dir: &Path) -> PathBuf {
    support::cc(
        dir,
        "twopaths",
        TWO_PATHS,
        &["-O0", "-fno-omit-frame-pointer"],
    )
}

/// Runs `stackcount ARGS -p PID t:syscalls:sys_enter_getppid` over the
/// two-path program; the run ends when the program exits.
fn count_two_paths(prog: &Path, args: &[&str]) -> Finished {
    let mut child: Child = Command::new(prog)
        .args([N1.to_string(), N2.to_string()])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let mut a = args.to_vec();
    a.extend(["-p", &pid, "t:syscalls:sys_enter_getppid"]);
    let mut t = ToolRun::start("stackcount", &a);
    t.wait_ready();
    child.stdin.take().unwrap().write_all(b"g").unwrap();
    assert!(child.wait().unwrap().success());
    let f = t.finish(Duration::from_secs(60));
    assert_eq!(f.code(), 0, "{}", f.stderr);
    support::assert_nothing_left(f.pid);
    f
}

/// bcc's blocks: (frames, count), in the order printed.
fn blocks(out: &str) -> Vec<(Vec<String>, u64)> {
    out.split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .map(|b| {
            let mut lines: Vec<String> = b.lines().map(|l| l.trim().to_string()).collect();
            let n = lines.pop().unwrap().parse().unwrap();
            (lines, n)
        })
        .collect()
}

fn require_user_stacks() -> bool {
    support::require_cc()
}

#[test]
fn user_stacks_of_two_paths_are_counted_exactly() {
    require_tracing!(SyscallTracepoints, Instances, UserStacks);
    if !require_user_stacks() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let prog = two_paths(dir.path());
    let f = count_two_paths(&prog, &["-U"]);
    let b = blocks(&f.stdout);
    assert_eq!(b.len(), 2, "{}", f.stdout);
    // The most frequent last.
    let (a, na) = &b[0];
    let (bb, nb) = &b[1];
    assert_eq!((*na, *nb), (N1, N2), "{}", f.stdout);
    assert!(a.iter().any(|l| l == "path_a"), "{}", f.stdout);
    assert!(!a.iter().any(|l| l == "path_b"), "{}", f.stdout);
    assert!(bb.iter().any(|l| l == "path_b"), "{}", f.stdout);
    for (frames, _) in &b {
        assert!(frames.iter().any(|l| l == "main"), "{}", f.stdout);
        assert_eq!(frames.last().unwrap(), "twopaths", "{}", f.stdout);
    }
    assert!(f.stderr.contains("counted from the buffer"), "{}", f.stderr);
}

#[test]
fn folded_output_and_flame_graph_hold_both_paths() {
    require_tracing!(SyscallTracepoints, Instances, UserStacks);
    if !require_user_stacks() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let prog = two_paths(dir.path());
    let svg = dir.path().join("out.svg");
    let folded = dir.path().join("out.folded");
    let f = count_two_paths(
        &prog,
        &[
            "-U",
            "-f",
            "--svg",
            svg.to_str().unwrap(),
            "--folded",
            folded.to_str().unwrap(),
        ],
    );
    let lines: Vec<&str> = f.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", f.stdout);
    let parse = |l: &str| {
        let (stack, n) = l.rsplit_once(' ').unwrap();
        (stack.to_string(), n.parse::<u64>().unwrap())
    };
    let (sa, na) = parse(lines[0]);
    let (sb, nb) = parse(lines[1]);
    assert_eq!((na, nb), (N1, N2), "{}", f.stdout);
    assert!(
        sa.starts_with("twopaths;") && sa.contains(";main;path_a;"),
        "{sa}"
    );
    assert!(
        sb.starts_with("twopaths;") && sb.contains(";main;path_b;"),
        "{sb}"
    );
    // The file holds what -f printed.
    let file = std::fs::read_to_string(&folded).unwrap();
    assert_eq!(file, f.stdout);
    // The SVG is well-formed XML with both paths, titled with the tool,
    // its command line and the kernel.
    let text = std::fs::read_to_string(&svg).unwrap();
    let mut r = quick_xml::Reader::from_str(&text);
    let mut elements = 0;
    loop {
        match r.read_event() {
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(quick_xml::events::Event::Start(_)) => elements += 1,
            Ok(_) => {}
            Err(e) => panic!("the SVG is not XML: {e}"),
        }
    }
    assert!(elements > 10, "{text}");
    assert!(text.contains("path_a") && text.contains("path_b"));
    assert!(text.contains("stackcount -U -f --svg"), "no title");
    assert!(text.contains("(Linux "), "no kernel in the title");
}

#[test]
fn a_missing_tracepoint_or_function_is_refused() {
    require_tracing!(Instances);
    let f = support::run("stackcount", &["t:syscalls:sys_enter_no_such_call"]);
    assert_eq!(f.code(), 2, "{}", f.stderr);
    assert!(f.stderr.contains("no tracepoint"), "{}", f.stderr);
    let f = support::run("stackcount", &["-K", "-U", "vfs_read"]);
    assert_eq!(f.code(), 2, "{}", f.stderr);
}

/// Counts `__do_sys_getppid`'s kernel stacks in `place` while the workload
/// calls getppid() a known number of times: the stacks' total must be
/// that number.
fn getppid_stacks(place: &str, extra: &[&str]) -> (Finished, u64) {
    let mut w = Workload::waiting(&["getppid", "500"]);
    let pid = w.pid().to_string();
    // __x64_sys_getppid is not traceable in Debian's 6.1 and 6.12; the
    // function it calls once per call is.
    let mut a = vec!["--in", place, "-K", "-p", &pid];
    a.extend(extra);
    a.push("__do_sys_getppid");
    let mut t = ToolRun::start("stackcount", &a);
    t.wait_ready();
    w.go();
    let made = w.wait();
    let f = t.finish(Duration::from_secs(120));
    assert_eq!(f.code(), 0, "{}", f.stderr);
    support::assert_nothing_left(f.pid);
    (f, made)
}

#[test]
fn kernel_function_stacks_sum_to_the_calls() {
    require_tracing!(KprobeEvents, Instances, KernelStacks);
    let (f, made) = getppid_stacks("buffer", &[]);
    assert!(f.stderr.contains("counted from the buffer"), "{}", f.stderr);
    let b = blocks(&f.stdout);
    let total: u64 = b.iter().map(|(_, n)| n).sum();
    assert_eq!(total, made, "{}", f.stdout);
    assert!(
        b.iter()
            .any(|(fr, _)| fr.iter().any(|l| l.contains("do_syscall_64"))),
        "{}",
        f.stdout
    );
}

/// The same count in the kernel (a hist trigger keyed on the stack): the
/// same total, the same frames, and folded lines that start with the
/// process name the kernel keyed them on.
#[test]
fn kernel_and_buffer_paths_give_the_same_counts() {
    require_tracing!(KprobeEvents, Instances, KernelStacks, HistTriggers);
    let (f, made) = getppid_stacks("kernel", &[]);
    assert!(f.stderr.contains("counted in the kernel"), "{}", f.stderr);
    let b = blocks(&f.stdout);
    let total: u64 = b.iter().map(|(_, n)| n).sum();
    assert_eq!(total, made, "{}", f.stdout);
    for (frames, _) in &b {
        assert!(frames.iter().any(|l| l == "do_syscall_64"), "{}", f.stdout);
    }
    let (f, made) = getppid_stacks("kernel", &["-f"]);
    let mut total = 0;
    for l in f.stdout.lines() {
        let (stack, n) = l.rsplit_once(' ').unwrap();
        assert!(stack.starts_with("ftt-workload;"), "{}", f.stdout);
        assert!(stack.contains(";do_syscall_64;"), "{}", f.stdout);
        total += n.parse::<u64>().unwrap();
    }
    assert_eq!(total, made, "{}", f.stdout);
    // A hist key holds no user stack.
    let f = support::run("stackcount", &["--in", "kernel", "-U", "__do_sys_getppid"]);
    assert_eq!(f.code(), 2, "{}", f.stderr);
}

/// The probe tools' `-s --folded FILE`: every stack printed is counted in
/// the file (here uprobe's, at the entry of leaf(), reached N1 + N2 times).
#[test]
fn uprobe_stacks_are_folded_into_a_file() {
    require_tracing!(UprobeEvents, Instances, UserStacks);
    if !require_user_stacks() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let prog = two_paths(dir.path());
    let folded = dir.path().join("u.folded");
    let mut child: Child = Command::new(&prog)
        .args([N1.to_string(), N2.to_string()])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let def = format!("p:{}:leaf", prog.display());
    let mut t = ToolRun::start(
        "uprobe",
        &["-s", "--folded", folded.to_str().unwrap(), "-p", &pid, &def],
    );
    t.wait_ready();
    child.stdin.take().unwrap().write_all(b"g").unwrap();
    assert!(child.wait().unwrap().success());
    let f = t.finish(Duration::from_secs(60));
    assert_eq!(f.code(), 0, "{}", f.stderr);
    let text = std::fs::read_to_string(&folded).unwrap();
    let total: u64 = text
        .lines()
        .map(|l| {
            assert!(l.starts_with("twopaths;") && l.contains(";leaf "), "{l}");
            l.rsplit_once(' ').unwrap().1.parse::<u64>().unwrap()
        })
        .sum();
    assert_eq!(total, N1 + N2, "{text}");
}

/// `-j`: one JSON object a stack, with its frames and count.
#[test]
fn json_objects_hold_frames_and_counts() {
    require_tracing!(SyscallTracepoints, Instances, UserStacks);
    if !require_user_stacks() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let prog = two_paths(dir.path());
    let f = count_two_paths(&prog, &["-U", "-j"]);
    let objs: Vec<serde_json::Value> = f
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(objs.len(), 2, "{}", f.stdout);
    for (o, path, n) in [(&objs[0], "path_a", N1), (&objs[1], "path_b", N2)] {
        assert_eq!(o["count"].as_u64(), Some(n), "{o}");
        assert_eq!(o["comm"], "twopaths", "{o}");
        let user: Vec<&str> = o["user"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert!(user.contains(&path) && user.contains(&"main"), "{o}");
        assert!(o.get("kernel").is_none(), "{o}");
    }
}
