//! Black-box tests of `tpoint`, run against the real kernel.
mod support;

use std::time::{Duration, Instant};
use support::{run, Finished, ToolRun, Workload};

const EV: &str = "syscalls:sys_enter_getppid";
/// A getppid entry as the kernel prints it (`... 1234.567890: sys_getppid()`).
const LINE: &str = ": sys_getppid()";

/// Traces `n` getppid calls of one workload process with tpoint -p;
/// `extra` are options, `filter` the optional filter.
fn trace_getppid(n: u64, extra: &[&str]) -> (Finished, u64) {
    trace_getppid_filtered(n, extra, None)
}

fn trace_getppid_filtered(n: u64, extra: &[&str], filter: Option<&str>) -> (Finished, u64) {
    let mut w = Workload::waiting(&["getppid", &n.to_string()]);
    let pid = w.pid().to_string();
    let mut args = vec!["-p", pid.as_str()];
    args.extend_from_slice(extra);
    args.push(EV);
    args.extend(filter);
    let mut t = ToolRun::start("tpoint", &args);
    t.wait_ready();
    w.go();
    let made = w.wait();
    (t.stop(), made)
}

#[test]
fn exact_count_for_one_process() {
    require_tracing!(SyscallTracepoints, Instances);
    let n = 100_000;
    let (f, made) = trace_getppid(n, &[]);
    assert_eq!(made, n);
    assert_eq!(f.code(), 0, "{}", f.stderr);
    assert_eq!(f.count(LINE), n as usize, "stderr: {}", f.stderr);
    assert!(!f.stderr.contains("LOST"), "{}", f.stderr);
    support::assert_nothing_left(f.pid);
}

#[test]
fn four_runs_at_once_count_only_their_own_and_leave_the_top_level_alone() {
    require_tracing!(SyscallTracepoints, Instances);
    let before = support::top_level_snapshot(&[EV]);
    let counts = [10_000u64, 20_000, 30_000, 40_000];
    let handles: Vec<_> = counts
        .iter()
        .map(|&n| std::thread::spawn(move || trace_getppid(n, &[])))
        .collect();
    for (h, n) in handles.into_iter().zip(counts) {
        let (f, made) = h.join().unwrap();
        assert_eq!(made, n);
        assert_eq!(f.count(LINE), n as usize, "{}", f.stderr);
        support::assert_nothing_left(f.pid);
    }
    assert_eq!(support::top_level_snapshot(&[EV]), before);
}

#[test]
fn json_lines_carry_every_field() {
    require_tracing!(SyscallTracepoints, Instances);
    let (f, _) = trace_getppid(3, &["--json"]);
    let lines: Vec<serde_json::Value> = f
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{}", f.stdout);
    for v in lines {
        assert_eq!(v["event"], EV);
        assert_eq!(v["comm"], "ftt-workload");
        assert_eq!(v["fields"]["__syscall_nr"], libc::SYS_getppid);
    }
}

/// The kernel's line: `comm-pid [cpu] flags timestamp: text`, its
/// text from the event's print fmt; `--fields` prints name=value.
#[test]
fn lines_as_the_kernel_prints_them_or_by_field() {
    require_tracing!(SyscallTracepoints, Instances);
    let (f, _) = trace_getppid(3, &[]);
    let re = regex::Regex::new(
        // Five irq-info columns from 5.13, four before.
        r"^ *ftt-workload-\d+ +\[\d{3}\] [.dDbNnpLlBXhsHzZ0-9a-f]{4,5} +\d+\.\d{6}: sys_getppid\(\)$",
    )
    .unwrap();
    let lines: Vec<&str> = f.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", f.stdout);
    assert!(lines.iter().all(|l| re.is_match(l)), "{}", f.stdout);
    let (f, _) = trace_getppid(3, &["--fields"]);
    assert_eq!(
        f.count(&format!(
            "sys_enter_getppid: __syscall_nr={}",
            libc::SYS_getppid
        )),
        3,
        "{}",
        f.stdout
    );
    let (f, _) = trace_getppid(1, &["-H"]);
    // The kernel's own header of an instance's trace is the oracle.
    let header = kernel_trace_header();
    assert!(!header.is_empty());
    for l in &header {
        assert!(
            f.stdout.lines().any(|o| o == l),
            "{l:?} not in\n{}",
            f.stdout
        );
    }
}

#[test]
fn filter_and_max_events() {
    require_tracing!(SyscallTracepoints, Instances);
    // A filter that matches nothing the workload does.
    let (f, _) = trace_getppid_filtered(50, &[], Some("common_pid == 1"));
    assert_eq!(f.count(LINE), 0, "{}", f.stdout);
    let (f, _) = trace_getppid_filtered(50, &[], Some("__syscall_nr >= 0"));
    assert_eq!(f.count(LINE), 50, "{}", f.stdout);
    let mut w = Workload::waiting(&["getppid", "500"]);
    let pid = w.pid().to_string();
    let mut t = ToolRun::start("tpoint", &["-M", "7", "-p", &pid, EV]);
    t.wait_ready();
    w.go();
    w.wait();
    let f = t.finish(Duration::from_secs(30));
    assert_eq!(f.code(), 0);
    assert_eq!(f.count(LINE), 7);
    support::assert_nothing_left(f.pid);
}

#[test]
fn duration_ends_the_run_by_itself() {
    require_tracing!(SyscallTracepoints, Instances);
    let t0 = Instant::now();
    let f = run("tpoint", &["-d", "0.5", "-L", "1", EV]);
    assert_eq!(f.code(), 0, "{}", f.stderr);
    assert!(t0.elapsed() >= Duration::from_millis(500));
    assert!(f.stderr.contains("Tracing"), "{}", f.stderr);
    support::assert_nothing_left(f.pid);
}

#[test]
fn kernel_stacks_follow_events() {
    require_tracing!(SyscallTracepoints, Instances, KernelStacks);
    let (f, _) = trace_getppid(5, &["-s"]);
    assert_eq!(f.count(LINE), 5, "{}", f.stdout);
    assert!(f.count(" => ") >= 5, "{}", f.stdout);
    // With -M, the last event comes with its stack, and nothing after it.
    let (f, _) = trace_getppid(2000, &["-s", "-M", "3"]);
    assert_eq!(f.count(LINE), 3, "{}", f.stdout);
    let last = f.stdout.lines().last().unwrap_or("");
    assert!(last.starts_with(" => "), "{}", f.stdout);
}

#[test]
fn list_and_view() {
    require_tracing!(SyscallTracepoints);
    let f = run("tpoint", &["-l", "syscalls:sys_enter_getpp*"]);
    assert_eq!(f.stdout.trim(), EV);
    let f = run("tpoint", &["-v", EV]);
    assert!(f.stdout.contains("name: sys_enter_getppid"));
    assert!(f.stdout.contains("field:int __syscall_nr"));
    let f = run("tpoint", &["-l", "nosuch:*"]);
    assert_eq!(f.code(), 2);
}

/// tpoint's own reads of the buffer are read() calls too: never shown.
#[test]
fn never_shows_its_own_events() {
    require_tracing!(SyscallTracepoints, Instances);
    let mut w = Workload::waiting(&["read-zero", "50"]);
    let wpid = w.pid();
    let mut t = ToolRun::start("tpoint", &["syscalls:sys_enter_read"]);
    t.wait_ready();
    w.go();
    assert_eq!(w.wait(), 50);
    std::thread::sleep(Duration::from_millis(300));
    let f = t.stop();
    assert_eq!(f.code(), 0, "{}", f.stderr);
    let mine = format!("-{:<7} [", f.pid);
    assert_eq!(f.count(&mine), 0, "{}", f.stdout);
    // Others' reads are there: the workload's, at least.
    let theirs = format!("-{wpid:<7} [");
    assert!(f.count(&theirs) >= 50, "{}", f.stdout);
    support::assert_nothing_left(f.pid);
}

#[test]
fn bad_input_exits_2_and_leaves_nothing() {
    require_tracing!(SyscallTracepoints, Instances);
    let cases: [(&[&str], &str); 5] = [
        (
            &["syscalls:sys_enter_nosuch"],
            "no tracepoint syscalls:sys_enter_nosuch",
        ),
        (&["nocolon"], "is not a tracepoint"),
        (&[EV, "nosuchfield == 1"], "Field not found"),
        (&[EV, "common_pid == 1\n-:kprobes/x"], "control character"),
        (&["-p", "999999999", EV], "no process with PID 999999999"),
    ];
    for (args, want) in cases {
        let f = run("tpoint", args);
        assert_eq!(f.code(), 2, "{args:?}: {}", f.stderr);
        assert!(
            f.stderr.contains(want),
            "{args:?}: want {want:?} in {}",
            f.stderr
        );
        assert_eq!(
            f.stderr
                .trim()
                .lines()
                .filter(|l| l.starts_with("tpoint:"))
                .count(),
            1,
            "{}",
            f.stderr
        );
        support::assert_nothing_left(f.pid);
    }
    // -M 0 would mean "stop before the first event": refused.
    let f = run("tpoint", &["-M", "0", EV]);
    assert_eq!(f.code(), 2, "{}", f.stderr);
    assert!(
        f.stderr.contains("'0' for '--max-events <N>'"),
        "{}",
        f.stderr
    );
    // A filter error shows the kernel's error_log text.
    let f = run("tpoint", &[EV, "nosuchfield == 1"]);
    assert!(
        f.stderr.contains("Command: nosuchfield == 1"),
        "{}",
        f.stderr
    );
}

/// More signals while it cleans up (an impatient user pressing Ctrl-C
/// again, then a TERM) do not cut the cleanup short. (A first signal at any
/// moment: tests/contract.rs.)
#[test]
fn more_signals_during_cleanup_do_not_cut_it_short() {
    require_tracing!(SyscallTracepoints, Instances);
    for gap in [0, 1, 5, 20] {
        let mut t = ToolRun::start("tpoint", &[EV]);
        t.wait_ready();
        t.signal(libc::SIGINT);
        std::thread::sleep(Duration::from_millis(gap));
        t.signal(libc::SIGINT);
        t.signal(libc::SIGTERM);
        let f = t.finish(Duration::from_secs(10));
        assert!(
            f.exit_time < support::exit_bound(),
            "took {:?}",
            f.exit_time
        );
        assert_eq!(f.code(), 0, "{}", f.stderr);
        support::assert_nothing_left(f.pid);
    }
}

#[test]
fn mounts_tracefs_itself_in_a_namespace_without_it() {
    require_tracing!(SyscallTracepoints, Instances);
    let has_unshare = std::process::Command::new("unshare")
        .arg("--version")
        .output()
        .is_ok();
    require!(has_unshare, "needs unshare(1) from util-linux");
    let root = support::tracefs_root();
    let tpoint = support::bin("tpoint");
    let wl = support::workload_bin();
    // In a private mount namespace: unmount every tracefs (and debugfs),
    // check it is gone, then let tpoint find nothing and mount it.
    let script = format!(
        "set -e
         while grep -q ' tracefs ' /proc/self/mounts; do umount -l \"$(awk '$3==\"tracefs\"{{print $2; exit}}' /proc/self/mounts)\"; done
         umount -l /sys/kernel/debug 2>/dev/null || true
         test ! -e {root}/events
         {wl} --wait getppid 321 < /tmp/ftt-mount-go-$$ > /dev/null &
         sleep 0.01
         {tp} -p $! {ev} > /tmp/ftt-mount-out-$$ 2>&1 &
         tp=$!
         while ! grep -q Tracing /tmp/ftt-mount-out-$$; do sleep 0.05; done
         echo go > /tmp/ftt-mount-go-$$
         wait %1
         kill -INT $tp; wait $tp
         grep -c 'sys_getppid()' /tmp/ftt-mount-out-$$
         grep ' tracefs ' /proc/self/mounts | head -1
         rm -f /tmp/ftt-mount-out-$$ /tmp/ftt-mount-go-$$",
        root = root.display(),
        wl = wl.display(),
        tp = tpoint.display(),
        ev = EV
    );
    let script = format!("mkfifo /tmp/ftt-mount-go-$$; {script}");
    let out = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("321"), "{stdout}");
    assert!(
        lines
            .next()
            .unwrap_or("")
            .contains("/sys/kernel/tracing tracefs"),
        "{stdout}"
    );
}

/// The README's first command shows something even on an idle machine.
#[test]
fn the_readmes_first_command_prints_events() {
    require_tracing!(Instances);
    let readme = include_str!("../README.md");
    let cmd = readme
        .lines()
        .find_map(|l| l.split("target/release/").nth(1))
        .expect("a command in README.md");
    let words: Vec<&str> = cmd.split_whitespace().collect();
    assert_eq!(words[0], "tpoint", "{cmd}");
    let f = run("tpoint", &words[1..]);
    assert_eq!(f.code(), 0, "{}", f.stderr);
    assert!(
        f.stdout.lines().count() > 0,
        "`{cmd}` printed no event:\n{}",
        f.stderr
    );
    support::assert_nothing_left(f.pid);
}

#[test]
fn write_records_every_event_for_trace_cmd_and_read() {
    require_tracing!(SyscallTracepoints, Instances);
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("getppid.dat");
    let path = file.to_str().unwrap();
    let n = 20_000;
    let (f, made) = trace_getppid(n, &["-w", path]);
    assert_eq!(made, n);
    assert_eq!(f.code(), 0, "{}", f.stderr);
    assert_eq!(f.stdout, "", "nothing is printed while writing");
    assert!(
        f.stderr.contains(&format!("wrote {n} events")),
        "{}",
        f.stderr
    );
    // Our reader: the same lines a live run prints.
    let r = run("tpoint", &["--read", path]);
    assert_eq!(r.code(), 0, "{}", r.stderr);
    assert_eq!(r.count(LINE), n as usize);
    let fields = run("tpoint", &["--read", path, "--fields"]);
    assert_eq!(fields.count("sys_enter_getppid: __syscall_nr="), n as usize);
    assert_eq!(r.count("ftt-workload-"), n as usize, "names from the file");
    let one = run("tpoint", &["--read", path, "-M", "1", EV]);
    assert_eq!(one.stdout.lines().count(), 1, "{}", one.stdout);
    // trace-cmd's.
    if let Some(text) = support::trace_cmd_report(&file) {
        assert_eq!(
            support::count_lines(&text, "sys_enter_getppid:"),
            n as usize
        );
        assert_eq!(support::count_lines(&text, "ftt-workload-"), n as usize);
    }
    support::assert_nothing_left(f.pid);
}

#[test]
fn read_refuses_bad_files_clearly() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("bad.dat");
    std::fs::write(&p, b"\x17\x08\x44tracing6\0\0\x08\0\x10\0\0header_page\0").unwrap();
    let f = run("tpoint", &["--read", p.to_str().unwrap()]);
    assert_eq!(f.code(), 2, "{}", f.stderr);
    assert!(
        f.stderr.contains("bad.dat") && f.stderr.contains("offset"),
        "{}",
        f.stderr
    );
    let w = run("tpoint", &["-w", "/nonexistent-dir/x.dat", EV]);
    assert_ne!(w.code(), 0);
    assert!(w.stderr.contains("/nonexistent-dir/x.dat"), "{}", w.stderr);
}

/// The column header lines (`#` lines with `|` or `=>`) of the kernel's
/// `trace` of a fresh instance of ours.
fn kernel_trace_header() -> Vec<String> {
    let root = support::tracefs_root();
    let dir = root.join(format!(
        "instances/ftrace-tools-test-{}",
        std::process::id()
    ));
    std::fs::create_dir(&dir).unwrap();
    let text = std::fs::read_to_string(dir.join("trace")).unwrap_or_default();
    std::fs::remove_dir(&dir).unwrap();
    text.lines()
        .filter(|l| l.starts_with('#') && (l.contains('|') || l.contains("=>")))
        .map(|l| l.to_string())
        .collect()
}
