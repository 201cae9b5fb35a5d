//! Black-box tests of `offcputime`, run against the real kernel: a C
//! program built with frame pointers sleeps a known time on each of two
//! call paths (path_a: 30 x 10 ms, path_b: 30 x 20 ms); the time summed
//! by stack must be each path's planned time within 5% (or, where the
//! machine overran the plan, lie between the plan and what the program
//! measured of its own sleeps, 5% to spare).
mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::{Finished, ToolRun};

/// Sleeps on two call paths once a byte arrives on stdin, and prints how
/// long each path's sleeps really took (CLOCK_MONOTONIC around each call,
/// in microseconds): on a busy machine, or a virtual one whose CPUs are
/// taken away by the host, a sleep overruns, and the program says by how
/// much. `leaf` is there because the kernel's frame-pointer walk misses
/// the caller of the function that makes the call (libc's syscall() sets
/// up no frame). The program runs SCHED_FIFO where it may, so that its
/// wakeups do not wait for a CPU.
const TWO_SLEEPS: &str = r#"
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
static long long now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000LL + t.tv_nsec / 1000;
}
__attribute__((noinline)) long leaf(long ms) {
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    return syscall(SYS_nanosleep, &ts, NULL);
}
__attribute__((noinline)) void path_a(long ms) { leaf(ms); __asm__ volatile(""); }
__attribute__((noinline)) void path_b(long ms) { leaf(ms); __asm__ volatile(""); }
int main(int argc, char **argv) {
    int n1 = atoi(argv[1]), ms1 = atoi(argv[2]), n2 = atoi(argv[3]), ms2 = atoi(argv[4]);
    long long a = 0, b = 0, t;
    struct sched_param sp = { .sched_priority = 10 };
    sched_setscheduler(0, SCHED_FIFO, &sp);
    char c;
    if (read(0, &c, 1) != 1) return 1;
    for (int i = 0; i < n1; i++) { t = now_us(); path_a(ms1); a += now_us() - t; }
    for (int i = 0; i < n2; i++) { t = now_us(); path_b(ms2); b += now_us() - t; }
    printf("%lld %lld\n", a, b);
    return 0;
}
"#;

/// path_a: 30 sleeps of 10 ms; path_b: 30 of 20 ms.
const A: (u64, u64) = (30, 10);
const B: (u64, u64) = (30, 20);
const PLANNED_A_US: u64 = A.0 * A.1 * 1000;
const PLANNED_B_US: u64 = B.0 * B.1 * 1000;

/// What a run saw, and how long the program's sleeps really took.
struct Run {
    f: Finished,
    slept_a: u64,
    slept_b: u64,
    /// Blocks the tool said it could not count (the kernel's buffer lost
    /// the switch that ended them, which it detects and reports).
    unended: u64,
}

fn two_sleeps(dir: &Path) -> PathBuf {
    support::cc(
        dir,
        "twosleeps",
        TWO_SLEEPS,
        &["-O0", "-fno-omit-frame-pointer"],
    )
}

/// Runs `offcputime ARGS -p PID` over the program; the run ends when the
/// program exits.
/// `None` (the test skipped) where the kernel switched the program back
/// in without firing sched_switch for more than a tenth of its 60 sleeps:
/// some kernels do so for every wake from idle on a quiet machine, and
/// nothing can time those blocks (offcputime says how many it left out).
fn run_two_sleeps(prog: &Path, args: &[&str]) -> Option<Run> {
    let mut child: Child = Command::new(prog)
        .args([A.0, A.1, B.0, B.1].map(|n| n.to_string()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let mut a = args.to_vec();
    a.extend(["-p", &pid]);
    let mut t = ToolRun::start("offcputime", &a);
    t.wait_ready();
    child.stdin.take().unwrap().write_all(b"g").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let slept: Vec<u64> = text
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    let f = t.finish(Duration::from_secs(60));
    assert_eq!(f.code(), 0, "{}", f.stderr);
    support::assert_nothing_left(f.pid);
    eprintln!("{}", f.stderr);
    let unended = f
        .stderr
        .lines()
        .filter(|l| l.contains("not counted: the switch that ended"))
        .find_map(|l| l.strip_prefix("offcputime: ")?.split_once(' '))
        .map(|(n, _)| n.parse().unwrap())
        .unwrap_or(0);
    if unended > 6 {
        support::skip(&format!(
            "this kernel switched tasks without firing sched:sched_switch: {unended} of 60 blocks could not be timed"
        ));
        return None;
    }
    Some(Run {
        f,
        slept_a: slept[0],
        slept_b: slept[1],
        unended,
    })
}

/// bcc's blocks: (frames, `-  comm (tid)` line, us), in the order printed.
fn blocks(out: &str) -> Vec<(Vec<String>, String, u64)> {
    out.split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .map(|b| {
            let mut lines: Vec<String> = b.lines().map(|l| l.trim().to_string()).collect();
            let n = lines.pop().unwrap().parse().unwrap();
            let who = lines.pop().unwrap();
            (lines, who, n)
        })
        .collect()
}

/// Asserts `got` is within 5% of the planned time where the machine kept
/// to the plan (the program measured its sleeps within 2% of it), and
/// else lies between the plan and what the program measured, with 5% to
/// spare on either side: the kernel wakes no sleeper before its timer, and
/// the time off-CPU is inside what the program measured around its calls
/// (a virtual machine whose CPU the host takes away while the program is
/// on it adds to the measured time only). `missing`: what the blocks the
/// tool reported uncounted may take away.
fn within_5pct(what: &str, got: u64, slept: u64, planned: u64, missing: u64, out: &str) {
    let (lo, hi) = (planned.min(slept), planned.max(slept));
    if slept.abs_diff(planned) * 50 > planned {
        eprintln!("{what}: this machine's sleeps overran: {slept} us for {planned} us planned; compared with both");
    }
    assert!(
        got <= hi + hi / 20 && got + missing + lo / 20 >= lo,
        "{what}: {got} us off-CPU; planned {planned} us, the program slept {slept} us ({missing} us reported uncounted)\n{out}"
    );
    eprintln!("{what}: {got} us off-CPU; slept {slept} us; planned {planned} us");
}

fn ready() -> Option<(tempfile::TempDir, PathBuf)> {
    if !support::require_cc() {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let prog = two_sleeps(dir.path());
    Some((dir, prog))
}

#[test]
fn user_stacks_of_two_sleeping_paths_get_their_planned_time() {
    require_tracing!(Instances, UserStacks);
    let Some((_dir, prog)) = ready() else { return };
    let Some(r) = run_two_sleeps(&prog, &["-U"]) else {
        return;
    };
    let f = &r.f;
    let b = blocks(&f.stdout);
    let on = |name: &str| -> Vec<&(Vec<String>, String, u64)> {
        b.iter()
            .filter(|(fr, _, _)| fr.iter().any(|l| l == name))
            .collect()
    };
    let (a, bb) = (on("path_a"), on("path_b"));
    assert_eq!((a.len(), bb.len()), (1, 1), "{}", f.stdout);
    assert!(!a[0].0.iter().any(|l| l == "path_b"), "{}", f.stdout);
    for (frames, who, _) in [a[0], bb[0]] {
        assert!(frames.iter().any(|l| l == "main"), "{}", f.stdout);
        assert!(who.starts_with("- ") && who.ends_with(")"), "{who}");
        assert!(who.contains("twosleeps ("), "{who}");
    }
    within_5pct(
        "path_a",
        a[0].2,
        r.slept_a,
        PLANNED_A_US,
        r.unended * A.1 * 1000,
        &f.stdout,
    );
    within_5pct(
        "path_b",
        bb[0].2,
        r.slept_b,
        PLANNED_B_US,
        r.unended * B.1 * 1000,
        &f.stdout,
    );
    // The most time last.
    let totals: Vec<u64> = b.iter().map(|x| x.2).collect();
    assert!(totals.windows(2).all(|w| w[0] <= w[1]), "{totals:?}");
    assert!(
        f.stderr.contains("Tracing off-CPU time (us)"),
        "{}",
        f.stderr
    );
}

#[test]
fn kernel_stacks_show_the_sleep_in_the_kernel() {
    require_tracing!(Instances, KernelStacks);
    let Some((_dir, prog)) = ready() else { return };
    let Some(r) = run_two_sleeps(&prog, &["-K"]) else {
        return;
    };
    let f = &r.f;
    // Both paths sleep in the same kernel stack.
    let total: u64 = blocks(&f.stdout)
        .iter()
        .filter(|(fr, _, _)| fr.iter().any(|l| l.contains("nanosleep")))
        .map(|x| x.2)
        .sum();
    within_5pct(
        "nanosleep",
        total,
        r.slept_a + r.slept_b,
        PLANNED_A_US + PLANNED_B_US,
        r.unended * B.1 * 1000,
        &f.stdout,
    );
    assert!(f.stdout.contains("schedule"), "{}", f.stdout);
}

#[test]
fn folded_output_files_and_flame_graph_hold_both_paths() {
    require_tracing!(Instances, UserStacks);
    let Some((dir, prog)) = ready() else { return };
    let svg = dir.path().join("out.svg");
    let folded = dir.path().join("out.folded");
    let Some(r) = run_two_sleeps(
        &prog,
        &[
            "-U",
            "-f",
            "--svg",
            svg.to_str().unwrap(),
            "--folded",
            folded.to_str().unwrap(),
        ],
    ) else {
        return;
    };
    let f = &r.f;
    let total = |text: &str, path: &str| -> (usize, u64) {
        let lines: Vec<(&str, u64)> = text
            .lines()
            .map(|l| {
                let (s, n) = l.rsplit_once(' ').unwrap();
                (s, n.parse().unwrap())
            })
            .filter(|(s, _)| s.contains(&format!(";main;{path};")))
            .collect();
        for (s, _) in &lines {
            assert!(s.starts_with("twosleeps;"), "{s}");
        }
        (lines.len(), lines.iter().map(|x| x.1).sum())
    };
    let (na, ta) = total(&f.stdout, "path_a");
    let (nb, tb) = total(&f.stdout, "path_b");
    assert_eq!((na, nb), (1, 1), "{}", f.stdout);
    within_5pct(
        "path_a folded",
        ta,
        r.slept_a,
        PLANNED_A_US,
        r.unended * A.1 * 1000,
        &f.stdout,
    );
    within_5pct(
        "path_b folded",
        tb,
        r.slept_b,
        PLANNED_B_US,
        r.unended * B.1 * 1000,
        &f.stdout,
    );
    assert_eq!(std::fs::read_to_string(&folded).unwrap(), f.stdout);
    // The SVG is well-formed XML with both paths, microseconds as the
    // count, titled with the tool, its command line and the kernel.
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
    assert!(text.contains(" us, "), "microseconds are not the count");
    assert!(text.contains("offcputime -U -f --svg"), "no title");
    assert!(text.contains("(Linux "), "no kernel in the title");
}

#[test]
fn json_and_min_block_time() {
    require_tracing!(Instances, UserStacks);
    let Some((_dir, prog)) = ready() else { return };
    // -m 15000: path_a's 10 ms sleeps are left out, path_b's 20 ms kept.
    let Some(r) = run_two_sleeps(&prog, &["-U", "-j", "-m", "15000"]) else {
        return;
    };
    let f = &r.f;
    let objs: Vec<serde_json::Value> = f
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let on = |name: &str| -> Vec<&serde_json::Value> {
        objs.iter()
            .filter(|o| {
                o["user"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|fr| fr.as_str() == Some(name))
            })
            .collect()
    };
    // A 10 ms sleep may overrun past 15 ms on a busy machine: 33 ms of them
    // in a loaded 5.10 guest, 106 and 238 ms of the 300 in 6.12 guests
    // beside two others. Without -m path_a blocks 300 ms or more (a sleep
    // never ends early), so less shows that -m left sleeps out.
    let a: u64 = on("path_a").iter().map(|o| o["us"].as_u64().unwrap()).sum();
    assert!(a < PLANNED_A_US, "{}", f.stdout);
    let b = on("path_b");
    assert_eq!(b.len(), 1, "{}", f.stdout);
    assert_eq!(b[0]["comm"], "twosleeps");
    assert!(b[0].get("kernel").is_none(), "{}", f.stdout);
    assert!(b[0]["tid"].as_u64().is_some(), "{}", f.stdout);
    within_5pct(
        "path_b -m",
        b[0]["us"].as_u64().unwrap(),
        r.slept_b,
        PLANNED_B_US,
        r.unended * B.1 * 1000,
        &f.stdout,
    );
}

#[test]
fn bad_options_are_refused() {
    require_tracing!(Instances);
    for args in [
        &["-m", "5", "-M", "1"][..],
        &["--state", "x"],
        &["-d", "1", "2"],
        &["-U", "-K"],
    ] {
        let f = support::run("offcputime", args);
        assert_eq!(f.code(), 2, "{args:?}: {}", f.stderr);
        assert!(!f.stderr.trim().is_empty());
        support::assert_nothing_left(f.pid);
    }
}
