//! Black-box tests of `kprobe`. The host kernel has no kprobes: there they
//! check the clear refusal and skip the rest; in the VM kernels
//! (`tests/vm/test-guests 6.1 bpo`) they check exact counts of a child's
//! opens, return values, -p, stacks, the aggregate modes, bad input and
//! cleanup after signals.
mod support;

use std::time::{Duration, Instant};
use support::{run, Finished, ToolRun, Workload};

/// The kernel function every open() goes through on this kernel, found in
/// kallsyms: `do_sys_openat2` from 5.6, `do_sys_open` before. Both take the
/// file name as their second argument (%si on x86_64).
fn open_func() -> String {
    for f in ["do_sys_openat2", "do_sys_open"] {
        if in_kallsyms(f) {
            return f.to_string();
        }
    }
    panic!("neither do_sys_openat2 nor do_sys_open in /proc/kallsyms");
}

/// Whether the running kernel has a symbol of this name.
fn in_kallsyms(name: &str) -> bool {
    let syms = std::fs::read_to_string("/proc/kallsyms").unwrap_or_default();
    syms.lines()
        .any(|l| l.split_whitespace().nth(2) == Some(name))
}

/// A path no other test opens; created (so that opens succeed) if `create`.
fn unique_path(tag: &str, create: bool) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let p = std::env::temp_dir().join(format!("ftt-kprobe-{}-{tag}-{n}", std::process::id()));
    if create {
        std::fs::write(&p, b"x").unwrap();
    }
    p.to_string_lossy().into_owned()
}

/// Waits until the workload blocks reading its "go" line, so that its
/// start-up (the dynamic loader's opens) is over before tracing starts.
fn wait_blocked(w: &Workload) {
    let path = format!("/proc/{}/syscall", w.pid());
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        match std::fs::read_to_string(&path) {
            // Its wait is a readv(2) (no read(2) of its own to count).
            Ok(s) if s.split_whitespace().next() == Some(&libc::SYS_readv.to_string()) => return,
            Ok(_) => {}
            Err(_) => {
                std::thread::sleep(Duration::from_millis(500));
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("the workload did not start");
}

/// Starts `kprobe ARGS`, waits until it traces, lets the workloads run,
/// waits for them and stops the tool; nothing may be left or warned of.
fn trace_around(args: &[&str], workloads: Vec<(Workload, u64)>) -> Finished {
    let mut c = std::process::Command::new(support::bin("kprobe"));
    c.args(args);
    let f = run_around(&mut c, workloads);
    assert_no_probe_left(&f);
    f
}

/// [`trace_around`] for a command of the caller's making, without the
/// checks of what is left and warned of.
fn run_around(c: &mut std::process::Command, workloads: Vec<(Workload, u64)>) -> Finished {
    for (w, _) in &workloads {
        wait_blocked(w);
    }
    let mut t = ToolRun::start_cmd(c);
    t.wait_ready();
    let mut ws = workloads;
    for (w, _) in ws.iter_mut() {
        w.go();
    }
    for (w, n) in ws {
        assert_eq!(w.wait(), n);
    }
    let f = t.stop();
    assert_eq!(f.code(), 0, "{}", f.stderr);
    f
}

/// Nothing of the run in tracefs (instance, kprobe_events), and no warning
/// about a probe that could not be removed.
fn assert_no_probe_left(f: &Finished) {
    support::assert_nothing_left(f.pid);
    let root = support::tracefs_root();
    let ke = std::fs::read_to_string(root.join("kprobe_events")).unwrap_or_default();
    let mine = format!("ftrace_tools_{}_", f.pid);
    assert!(!ke.contains(&mine), "left in kprobe_events: {ke}");
    assert!(!f.stderr.contains("warning"), "{}", f.stderr);
}

/// Output lines of one event name (`NAME: (`), not stack lines.
fn event_lines<'a>(f: &'a Finished, name: &str) -> Vec<&'a str> {
    let pat = format!(" {name}: (");
    f.stdout.lines().filter(|l| l.contains(&pat)).collect()
}

#[test]
fn refuses_clearly_without_kprobe_events() {
    require!(support::is_root(), "needs root");
    let t = support::tracefs().expect("tracefs");
    require!(
        !t.exists("kprobe_events"),
        "this kernel has kprobe events (the refusal is for kernels without)"
    );
    let f = run("kprobe", &["p:do_sys_openat2"]);
    assert_eq!(f.code(), 2);
    assert_eq!(
        f.stderr,
        "kprobe: this kernel has no kprobe events (CONFIG_KPROBE_EVENTS); for the whole picture, run ftrace-status\n"
    );
    assert_eq!(f.stdout, "");
    support::assert_nothing_left(f.pid);
}

#[test]
fn string_argument_with_a_filter_counts_exactly() {
    require_tracing!(KprobeEvents, Instances);
    let func = open_func();
    let path = unique_path("filter", false);
    let n = 50;
    let w = Workload::waiting(&["open", &path, &n.to_string()]);
    let wpid = w.pid();
    let def = format!("p:{func} f=+0(%si):string");
    let filter = format!("f == \"{path}\"");
    let f = trace_around(&[&def, &filter], vec![(w, n)]);
    // The kernel's `==` on a string it could not read (a page not yet in
    // memory; printed as (fault)) is true: another process's open may slip
    // through. Count the lines that carry the path.
    let carrying = format!("f=\"{path}\"");
    let lines: Vec<&str> = event_lines(&f, &func)
        .into_iter()
        .filter(|l| !l.ends_with(" f=(fault)"))
        .collect();
    assert_eq!(lines.len(), n as usize, "{}\n{}", f.stdout, f.stderr);
    assert!(lines.iter().all(|l| l.ends_with(&carrying)), "{lines:?}");
    // The ftrace line shape: comm-pid [cpu] ts: name: (func+0x0/0xSIZE) args
    let re = regex::Regex::new(&format!(
        r#"^ *ftt-workload-{wpid} +\[\d{{3}}\] \d+\.\d{{6}}: {func}: \({func}\+0x0/0x[0-9a-f]+\) f="{}"$"#,
        regex::escape(&path)
    ))
    .unwrap();
    for l in &lines {
        assert!(re.is_match(l), "{l}");
    }
    assert!(
        f.stderr.contains(&format!(
            "Tracing kprobe {func} (p:{func} {func} f=+0(%si):string)"
        )),
        "{}",
        f.stderr
    );
}

#[test]
fn write_then_read_and_trace_cmd_report_show_every_open() {
    require_tracing!(KprobeEvents, Instances);
    let func = open_func();
    let path = unique_path("write", true);
    let n = 40;
    let w = Workload::waiting(&["open", &path, &n.to_string()]);
    let wpid = w.pid().to_string();
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("open.dat");
    let out = file.to_str().unwrap();
    let def = format!("p:{func} f=+0(%si):string");
    let filter = format!("common_pid == {wpid}");
    let f = trace_around(&["-w", out, &def, &filter], vec![(w, n)]);
    assert_eq!(f.stdout, "", "nothing is printed while writing");
    let carrying = format!("f=\"{path}\"");
    // Read back, here: the lines a live run prints, symbols from the file.
    let r = run("kprobe", &["--read", out]);
    assert_eq!(r.code(), 0, "{}", r.stderr);
    let lines: Vec<&str> = event_lines(&r, &func)
        .into_iter()
        .filter(|l| l.ends_with(&carrying))
        .collect();
    assert_eq!(lines.len(), n as usize, "{}\n{}", r.stdout, r.stderr);
    assert!(
        lines.iter().all(|l| l.contains(&format!("({func}+0x0/0x"))),
        "{lines:?}"
    );
    // trace-cmd's report of the same file.
    if let Some(text) = support::trace_cmd_report(&file) {
        let seen = text
            .lines()
            .filter(|l| l.contains(&format!("{func}:")) && l.trim_end().ends_with(&carrying))
            .count();
        assert_eq!(seen, n as usize, "{text}");
    }
    let _ = std::fs::remove_file(path);
}

#[test]
fn return_probe_shows_the_descriptors_the_child_got() {
    require_tracing!(KprobeEvents, Instances);
    let func = open_func();
    let path = unique_path("ret", true);
    let n = 40;
    let w = Workload::waiting(&["open", &path, &n.to_string()]);
    let pid = w.pid().to_string();
    let def = format!("r:{func} $retval");
    let f = trace_around(&["-p", &pid, &def], vec![(w, n)]);
    let lines = event_lines(&f, &func);
    assert_eq!(lines.len(), n as usize, "{}", f.stdout);
    let re = regex::Regex::new(&format!(
        r"^ *ftt-workload-{pid} +\[\d{{3}}\] \d+\.\d{{6}}: {func}: \(\S+\+0x[0-9a-f]+/0x[0-9a-f]+ <- {func}\) arg1=(0x[0-9a-f]+|-?\d+)$"
    ))
    .unwrap();
    for l in lines {
        let c = re.captures(l).unwrap_or_else(|| panic!("{l}"));
        // Untyped, $retval prints in hex (x64); kernels that type it from
        // BTF (6.6 and later, as bookworm-backports' 6.12) print a long.
        let fd = match c[1].strip_prefix("0x") {
            Some(h) => i64::from_str_radix(h, 16).unwrap(),
            None => c[1].parse().unwrap(),
        };
        assert!((3..1024).contains(&fd), "not a new descriptor: {l}");
    }
    std::fs::remove_file(&path).ok();
}

/// The kernel is the oracle of the arguments' text: while kprobe traces a
/// child's opens, an instance of the test's records the same events, and
/// every line's text (the `%pS` addresses and each type's rendering) must
/// be the kernel's own.
#[test]
fn arguments_print_as_the_kernel_prints_them() {
    require_tracing!(KprobeEvents, Instances);
    let func = open_func();
    let path = unique_path("text", true);
    let n = 30;
    let mut w = Workload::waiting(&["open", &path, &n.to_string()]);
    let pid = w.pid().to_string();
    wait_blocked(&w);
    let e = format!(
        "p:ftt_kin {func} dfd=%di:s32 dx=%di:x16 name=+0(%si):ustring how=+0(%dx):x64 \
         fl=+0(%dx):b4@0/64 who=$comm at=%ip:symbol b=+0(%si):x8[3]"
    );
    let r = format!("r:ftt_kout {func} rv=$retval:s32 rx=$retval:x8 ru=$retval:u64");
    let mut t = ToolRun::start("kprobe", &["-p", &pid, "-e", &e, "-e", &r]);
    t.wait_ready();
    let kernel = support::KernelText::start(t.pid(), "kprobe_events", w.pid());
    w.go();
    assert_eq!(w.wait(), n);
    std::thread::sleep(Duration::from_millis(500));
    let kernel = kernel.finish();
    let f = t.stop();
    assert_eq!(f.code(), 0, "{}", f.stderr);
    assert_no_probe_left(&f);
    let names = ["ftt_kin", "ftt_kout"];
    support::assert_same_probe_texts(&kernel, &f.stdout, &names, 2 * n as usize);
    std::fs::remove_file(&path).ok();
}

#[test]
fn task_names_follow_exec() {
    require_tracing!(KprobeEvents, Instances);
    let func = open_func();
    let path = unique_path("exec", true);
    let def = format!("p:{func} f=+0(%si):string");
    let filter = format!("f == \"{path}\"");
    let mut t = ToolRun::start("kprobe", &[&def, &filter]);
    t.wait_ready();
    // The shell opens the file, then becomes ftt-workload, which opens it
    // twice: one PID, two names.
    let script = format!(
        "exec 3<'{path}'; exec '{}' open '{path}' 2",
        support::workload_bin().display()
    );
    let out = std::process::Command::new("/bin/sh")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let f = t.stop();
    assert_eq!(f.code(), 0, "{}", f.stderr);
    let carrying = format!("f=\"{path}\"");
    let lines: Vec<&str> = event_lines(&f, &func)
        .into_iter()
        .filter(|l| l.ends_with(&carrying))
        .collect();
    assert_eq!(lines.len(), 3, "{}", f.stdout);
    let who: Vec<&str> = lines
        .iter()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    let pid = who[0].rsplit('-').next().unwrap();
    assert_eq!(who[0], format!("sh-{pid}"), "{lines:?}");
    assert_eq!(who[1], format!("ftt-workload-{pid}"), "{lines:?}");
    assert_eq!(who[2], format!("ftt-workload-{pid}"), "{lines:?}");
    assert_no_probe_left(&f);
    std::fs::remove_file(&path).ok();
}

#[test]
fn pid_counts_only_that_child() {
    require_tracing!(KprobeEvents, Instances);
    let func = open_func();
    let path = unique_path("pid", false);
    let mine = Workload::waiting(&["open", &path, "30"]);
    let other = Workload::waiting(&["open", &path, "20"]);
    let pid = mine.pid().to_string();
    let def = format!("p:{func} file=+0(%si):string");
    // perf-tools' glob filter form.
    let name = path.rsplit('/').next().unwrap();
    let filter = format!("file ~ \"*{name}\"");
    let f = trace_around(&["-p", &pid, &def, &filter], vec![(mine, 30), (other, 20)]);
    let lines = event_lines(&f, &func);
    assert_eq!(lines.len(), 30, "{}", f.stdout);
    for l in lines {
        assert!(l.contains(&format!("-{pid} ")), "{l}");
    }
    assert!(f.stderr.contains(&format!("for PID {pid}")), "{}", f.stderr);

    // -L: one thread (the workload's only one), with the same filter.
    let mine = Workload::waiting(&["open", &path, "15"]);
    let other = Workload::waiting(&["open", &path, "10"]);
    let tid = mine.pid().to_string();
    let f = trace_around(&["-L", &tid, &def, &filter], vec![(mine, 15), (other, 10)]);
    let lines = event_lines(&f, &func);
    assert_eq!(lines.len(), 15, "{}", f.stdout);
    assert!(
        lines.iter().all(|l| l.contains(&format!("-{tid} "))),
        "{lines:?}"
    );
    assert!(f.stderr.contains(&format!("for TID {tid}")), "{}", f.stderr);
}

#[test]
fn stacks_go_through_the_system_call_entry() {
    require_tracing!(KprobeEvents, Instances, KernelStacks);
    let func = open_func();
    let path = unique_path("stack", false);
    let w = Workload::waiting(&["open", &path, "3"]);
    let pid = w.pid().to_string();
    let def = format!("p:{func} f=+0(%si):string");
    let filter = format!("f == \"{path}\"");
    let f = trace_around(&["-s", "-p", &pid, &def, &filter], vec![(w, 3)]);
    assert_eq!(event_lines(&f, &func).len(), 3, "{}", f.stdout);
    // Each event is followed by its stack, innermost first.
    let mut stacks: Vec<Vec<&str>> = Vec::new();
    for l in f.stdout.lines() {
        if let Some(frame) = l.strip_prefix(" => ") {
            stacks
                .last_mut()
                .expect("a stack before any event")
                .push(frame);
        } else {
            stacks.push(Vec::new());
        }
    }
    assert_eq!(stacks.len(), 3, "{}", f.stdout);
    for s in stacks {
        assert!(
            s.first()
                .is_some_and(|f| f.starts_with(&format!("{func}+"))),
            "{s:?}"
        );
        assert!(s.iter().any(|f| f.starts_with("do_syscall_64+")), "{s:?}");
        assert!(s.iter().any(|f| f.starts_with("entry_SYSCALL_64")), "{s:?}");
    }
}

/// The count of `-C` output's line for `name`.
fn count_of(stdout: &str, name: &str) -> u64 {
    stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no count for {name} in:\n{stdout}"))
}

#[test]
fn aggregate_counts_equal_the_printed_events() {
    require_tracing!(KprobeEvents, Instances);
    let func = open_func();
    let n = 60;
    let def = format!("p:{func} f=+0(%si):string");
    let runs: [&[&str]; 4] = [&[], &["-C"], &["-C", "--by", "f"], &["-C", "--json"]];
    let mut seen = Vec::new();
    for extra in runs {
        let path = unique_path("agg", false);
        let filter = format!("f == \"{path}\"");
        let w = Workload::waiting(&["open", &path, &n.to_string()]);
        let pid = w.pid().to_string();
        let mut args = extra.to_vec();
        args.push("-p");
        args.push(&pid);
        args.push(&def);
        args.push(&filter);
        let f = trace_around(&args, vec![(w, n)]);
        let got = match extra {
            [] => event_lines(&f, &func).len() as u64,
            ["-C"] => {
                assert!(f.stdout.starts_with("PROBE "), "{}", f.stdout);
                count_of(&f.stdout, &func)
            }
            ["-C", "--by", _] => {
                let quoted = format!("\"{path}\"");
                let row = f
                    .stdout
                    .lines()
                    .find(|l| l.contains(&quoted))
                    .unwrap_or_else(|| panic!("{}", f.stdout));
                row.split_whitespace().last().unwrap().parse().unwrap()
            }
            _ => {
                let v: serde_json::Value = serde_json::from_str(f.stdout.trim()).unwrap();
                assert_eq!(v["event"], func.as_str());
                v["count"].as_u64().unwrap()
            }
        };
        seen.push(got);
    }
    assert_eq!(seen, vec![n; 4]);
}

/// A return probe misses the returns of the tasks inside its function
/// while all its instances are taken; the kernel counts them and kprobe
/// says how many. T threads of the workload wait in select(2) together,
/// the probe given one instance: every return is either shown or counted
/// as missed, and some are missed.
#[test]
fn missed_returns_are_counted_and_said() {
    require_tracing!(KprobeEvents, Instances);
    let func = "__x64_sys_select";
    if !in_kallsyms(func) {
        return support::skip("no __x64_sys_select in /proc/kallsyms (not x86-64)");
    }
    let threads = 6;
    let w = Workload::waiting(&["select-threads", &threads.to_string(), "1000"]);
    let pid = w.pid().to_string();
    let def = format!("r:ftt_select {func}");
    let mut c = std::process::Command::new(support::bin("kprobe"));
    c.args(["-p", &pid, &def])
        .env("FTRACE_TOOLS_KRETPROBE_MAXACTIVE", "1");
    let f = run_around(&mut c, vec![(w, threads)]);
    support::assert_nothing_left(f.pid);
    let shown = event_lines(&f, "ftt_select").len() as u64;
    let re = regex::Regex::new(&format!(
        r"kprobe: warning: the kernel missed (\d+) returns? of {func}: "
    ))
    .unwrap();
    let missed: u64 = re
        .captures(&f.stderr)
        .map(|c| c[1].parse().unwrap())
        .unwrap_or(0);
    assert!(missed > 0, "no missed return said:\n{}", f.stderr);
    assert_eq!(
        shown + missed,
        threads,
        "{shown} shown, {missed} said missed\n{}\n{}",
        f.stdout,
        f.stderr
    );
    // With the default instances nothing is missed, and nothing said.
    let w = Workload::waiting(&["select-threads", &threads.to_string(), "1000"]);
    let pid = w.pid().to_string();
    let f = trace_around(&["-p", &pid, &def], vec![(w, threads)]);
    assert_eq!(
        event_lines(&f, "ftt_select").len() as u64,
        threads,
        "{}",
        f.stdout
    );
}

/// Whether the kernel has `$argN` in kretprobes (6.10 and later), as its
/// README says.
fn kernel_has_argn_at_return() -> bool {
    let readme =
        std::fs::read_to_string(support::tracefs_root().join("README")).unwrap_or_default();
    readme
        .lines()
        .any(|l| l.contains("return probes support") && l.contains("$arg<N>"))
}

#[test]
fn argn_at_entry_and_at_return() {
    require_tracing!(KprobeEvents, Instances);
    let func = open_func();
    // At entry: the file name by argument number, with a filter on it.
    let path = unique_path("argn", false);
    let n = 30;
    let w = Workload::waiting(&["open", &path, &n.to_string()]);
    let def = format!("p:{func} f=+0($arg2):string");
    let filter = format!("f == \"{path}\"");
    let f = trace_around(&[&def, &filter], vec![(w, n)]);
    let carrying = format!(" f=\"{path}\"");
    let lines: Vec<&str> = event_lines(&f, &func)
        .into_iter()
        .filter(|l| !l.ends_with(" f=(fault)"))
        .collect();
    assert_eq!(lines.len(), n as usize, "{}\n{}", f.stdout, f.stderr);
    assert!(lines.iter().all(|l| l.ends_with(&carrying)), "{lines:?}");
    // At the return: the size asked for (an entry argument) next to the
    // size read. The kernel's own $argN where it has it (6.10+), else
    // paired with an entry probe: the same output.
    let n = 25;
    let w = Workload::waiting(&["read-4k", &n.to_string(), "0"]);
    let pid = w.pid().to_string();
    let def = "r:vfs_read count=$arg3:u64 ret=$retval:s64";
    let f = trace_around(&["-p", &pid, def], vec![(w, n)]);
    let lines = event_lines(&f, "vfs_read");
    assert_eq!(lines.len(), n as usize, "{}\n{}", f.stdout, f.stderr);
    for l in &lines {
        assert!(l.ends_with(" count=4096 ret=4096"), "{l}");
        assert!(l.contains(" <- vfs_read)"), "{l}");
    }
    assert!(!f.stdout.contains("vfs_read_entry"), "{}", f.stdout);
    assert!(!f.stderr.contains("$argN at a return"), "{}", f.stderr);
    // What cannot work is refused before anything is created.
    let mut bad = vec![
        (format!("p:{func}+4 $arg1"), "at an offset"),
        (format!("p:{func} $arg0"), "out of range"),
    ];
    if !kernel_has_argn_at_return() {
        bad.push(("r:vfs_read +0($arg2):u8".to_string(), "6.10"));
    }
    for (def, want) in bad {
        let f = run("kprobe", &[&def]);
        assert_eq!(f.code(), 2, "{def}: {}", f.stderr);
        assert!(
            f.stderr.contains(want),
            "{def}: want {want:?} in {}",
            f.stderr
        );
        assert_no_probe_left(&f);
    }
}

#[test]
fn histogram_of_the_return_value() {
    require_tracing!(KprobeEvents, Instances);
    let func = open_func();
    let path = unique_path("hist", true);
    let missing = unique_path("hist-missing", false);
    let good = Workload::waiting(&["open", &path, "25"]);
    let bad = Workload::waiting(&["open", &missing, "5"]);
    let (gp, bp) = (good.pid(), bad.pid());
    let def = format!("r:{func}");
    let filter = format!("common_pid == {gp} || common_pid == {bp}");
    let f = trace_around(
        &["--hist", "$retval", &def, &filter],
        vec![(good, 25), (bad, 5)],
    );
    // Every successful open returned the same descriptor (the lowest free
    // one, 3 or more: a harness may leave a descriptor open), so all 25
    // fall in one bucket at or above 2 -> 3.
    assert!(
        f.stdout
            .starts_with(&format!("{func}: retval (30 events)\n")),
        "{}",
        f.stdout
    );
    let row = f
        .stdout
        .lines()
        .find(|l| {
            l.contains(" -> ")
                && l.split(':')
                    .nth(1)
                    .and_then(|c| c.split_whitespace().next())
                    == Some("25")
        })
        .unwrap_or_else(|| panic!("no bucket holds all 25 opens: {}", f.stdout));
    let high: u64 = row
        .split("->")
        .nth(1)
        .and_then(|h| h.split_whitespace().next())
        .and_then(|h| h.parse().ok())
        .unwrap();
    assert!(high >= 3, "{row}");
    assert!(
        f.stdout.contains("5 negative values (smallest -2)"),
        "ENOENT is -2: {}",
        f.stdout
    );
    std::fs::remove_file(&path).ok();
}

#[test]
fn several_probes_in_one_run() {
    require_tracing!(KprobeEvents, Instances);
    let func = open_func();
    let path = unique_path("multi", true);
    let n = 20;
    let w = Workload::waiting(&["open", &path, &n.to_string()]);
    let pid = w.pid().to_string();
    let entry = format!("p:{func} f=+0(%si):string if f == \"{path}\"");
    let ret = format!("r:{func} fd=$retval:s32");
    let f = trace_around(&["-p", &pid, "-e", &entry, "-e", &ret], vec![(w, n)]);
    let entries = event_lines(&f, &func);
    let returns = event_lines(&f, &format!("{func}_ret"));
    assert_eq!(
        (entries.len(), returns.len()),
        (n as usize, n as usize),
        "{}",
        f.stdout
    );
    // The same descriptor each time (closed after each open), 3 or more.
    let fd = returns[0].rsplit("fd=").next().unwrap().to_string();
    assert!(fd.parse::<i32>().unwrap() >= 3, "{returns:?}");
    assert!(
        returns.iter().all(|l| l.ends_with(&format!(" fd={fd}"))),
        "{returns:?}"
    );
    // In time order: each entry before its return.
    let names: Vec<bool> = f
        .stdout
        .lines()
        .map(|l| l.contains(&format!(" {func}: (")))
        .collect();
    assert!(names.chunks(2).all(|c| c == [true, false]), "{}", f.stdout);
    std::fs::remove_file(&path).ok();
}

#[test]
fn max_events_json_and_view() {
    require_tracing!(KprobeEvents, Instances);
    let func = open_func();
    let def = format!("p:{func} f=+0(%si):string");

    // -M ends the run by itself.
    let path = unique_path("max", false);
    let filter = format!("f == \"{path}\"");
    let mut w = Workload::waiting(&["open", &path, "50"]);
    wait_blocked(&w);
    let pid = w.pid().to_string();
    let mut t = ToolRun::start("kprobe", &["-M", "7", "-p", &pid, &def, &filter]);
    t.wait_ready();
    w.go();
    w.wait();
    let f = t.finish(Duration::from_secs(60));
    assert_eq!(f.code(), 0, "{}", f.stderr);
    assert_eq!(event_lines(&f, &func).len(), 7, "{}", f.stdout);
    assert_no_probe_left(&f);

    // JSON lines.
    let path = unique_path("json", false);
    let filter = format!("f == \"{path}\"");
    let w = Workload::waiting(&["open", &path, "3"]);
    let pid = w.pid().to_string();
    let f = trace_around(&["--json", "-p", &pid, &def, &filter], vec![(w, 3)]);
    let lines: Vec<serde_json::Value> = f
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{}", f.stdout);
    for v in lines {
        assert_eq!(v["event"], func.as_str());
        assert_eq!(v["comm"], "ftt-workload");
        assert_eq!(v["args"]["f"], path.as_str());
        assert_eq!(v["ip"], format!("{func}+0x0"));
    }

    // -v shows the format of the probe it made, then removes it.
    let f = run("kprobe", &["-v", &def]);
    assert_eq!(f.code(), 0, "{}", f.stderr);
    assert!(
        f.stdout.contains(&format!("name: {func}\n")),
        "{}",
        f.stdout
    );
    assert!(
        f.stdout.contains("field:__data_loc char[] f;"),
        "{}",
        f.stdout
    );
    assert!(
        f.stdout.contains("field:unsigned long __probe_ip;"),
        "{}",
        f.stdout
    );
    assert_no_probe_left(&f);
}

#[test]
fn offsets_into_a_function() {
    require_tracing!(KprobeEvents, Instances);
    let func = open_func();
    // The first instruction after the ftrace call site (5 bytes), after an
    // endbr64 as well (4 more) on kernels built with IBT.
    let mut offset = None;
    for off in [5, 9, 4, 8] {
        let f = run("kprobe", &["-v", &format!("p:{func}+{off}")]);
        assert_no_probe_left(&f);
        if f.code() == 0 {
            offset = Some(off);
            break;
        }
        assert_eq!(f.code(), 2, "{}", f.stderr);
        assert!(f.stderr.contains("instruction boundary"), "{}", f.stderr);
    }
    let off = offset.expect("no offset among 5, 9, 4, 8 is an instruction boundary");
    let path = unique_path("offset", false);
    let w = Workload::waiting(&["open", &path, "10"]);
    let pid = w.pid().to_string();
    let f = trace_around(&["-p", &pid, &format!("p:{func}+{off}")], vec![(w, 10)]);
    let name = format!("{func}_{off:#x}");
    let lines = event_lines(&f, &name);
    assert_eq!(lines.len(), 10, "{}", f.stdout);
    assert!(
        lines
            .iter()
            .all(|l| l.contains(&format!("({func}+{off:#x}/0x"))),
        "{lines:?}"
    );

    // One byte in is no instruction boundary; far out is past the end.
    let f = run("kprobe", &[&format!("p:{func}+1")]);
    assert_eq!(f.code(), 2, "{}", f.stderr);
    assert!(f.stderr.contains("instruction boundary"), "{}", f.stderr);
    assert!(
        f.stderr.contains("Command:"),
        "no error_log text: {}",
        f.stderr
    );
    assert_no_probe_left(&f);
    let f = run("kprobe", &[&format!("p:{func}+0x100000")]);
    assert_eq!(f.code(), 2, "{}", f.stderr);
    assert!(f.stderr.contains("past the end"), "{}", f.stderr);
    assert_no_probe_left(&f);
}

/// A function of a loaded module from available_filter_functions, e.g.
/// `ext4_file_open [ext4]`.
fn module_function(prefer: &str) -> Option<(String, String)> {
    let t = support::tracefs_root();
    let text = std::fs::read_to_string(t.join("available_filter_functions")).ok()?;
    let mut first = None;
    for l in text.lines() {
        let mut it = l.split_whitespace();
        let (Some(f), Some(m)) = (it.next(), it.next()) else {
            continue;
        };
        let Some(m) = m.strip_prefix('[').and_then(|m| m.strip_suffix(']')) else {
            continue;
        };
        if f == prefer {
            return Some((m.to_string(), f.to_string()));
        }
        first.get_or_insert((m.to_string(), f.to_string()));
    }
    first
}

#[test]
fn module_functions() {
    require_tracing!(KprobeEvents, Instances);
    let f = run("kprobe", &["p:nosuchmod_ftt:foo"]);
    assert_eq!(f.code(), 2, "{}", f.stderr);
    assert!(f.stderr.contains("is nosuchmod_ftt loaded"), "{}", f.stderr);
    assert_no_probe_left(&f);

    let Some((module, func)) = module_function("ext4_file_open") else {
        support::skip("no module function in available_filter_functions");
        return;
    };
    let f = run("kprobe", &["-v", &format!("p:{module}:{func}")]);
    assert_eq!(f.code(), 0, "{}", f.stderr);
    assert!(
        f.stdout.contains(&format!(" {module}:{func}\n")),
        "{}",
        f.stdout
    );
    assert_no_probe_left(&f);

    // Live, when ext4 is a module and the scratch disk is ext4.
    let scratch = std::env::var("FTRACE_TOOLS_SCRATCH").ok();
    let ext4_scratch = scratch.as_ref().is_some_and(|d| {
        std::fs::read_to_string("/proc/mounts")
            .unwrap_or_default()
            .lines()
            .any(|l| {
                let v: Vec<&str> = l.split_whitespace().collect();
                v.len() > 2 && v[1] == d && v[2] == "ext4"
            })
    });
    if module != "ext4" || func != "ext4_file_open" || !ext4_scratch {
        support::skip("the live module test needs ext4 as a module and an ext4 scratch disk");
        return;
    }
    let path = format!("{}/ftt-kprobe-{}", scratch.unwrap(), std::process::id());
    std::fs::write(&path, b"x").unwrap();
    let w = Workload::waiting(&["open", &path, "12"]);
    let pid = w.pid().to_string();
    let f = trace_around(&["-p", &pid, "p:ext4:ext4_file_open"], vec![(w, 12)]);
    let lines = event_lines(&f, "ext4_file_open");
    assert_eq!(lines.len(), 12, "{}", f.stdout);
    // At +0x4 where the kernel has IBT: a kprobe goes after the endbr64 of
    // a function whose address is taken.
    let re = regex::Regex::new(r"\(ext4_file_open\+0x[04]/0x[0-9a-f]+ \[ext4\]\)$").unwrap();
    assert!(lines.iter().all(|l| re.is_match(l)), "{lines:?}");
    std::fs::remove_file(&path).ok();
}

#[test]
fn bad_input_exits_2_and_leaves_nothing() {
    require!(support::is_root(), "needs root");
    let has_kprobes = support::has(ftrace_common::kernel::caps::Feature::KprobeEvents);
    let func = if has_kprobes {
        open_func()
    } else {
        "do_sys_openat2".to_string()
    };
    let p = |s: &str| format!("p:{func}{s}");
    // Refused before tracefs is touched, on every kernel.
    let everywhere: Vec<(Vec<String>, &str)> = vec![
        (vec![format!("x:{func}")], "is not a kprobe definition"),
        (vec![p("\n-:kprobes/x")], "control character"),
        (
            vec![p(" f=+0(%si):string\n-:kprobes/x")],
            "control character",
        ),
        (
            vec![p(""), "f == 1\n-:kprobes/x".into()],
            "control character",
        ),
        (vec![p(" %di;b")], "not allowed in a probe definition"),
        (vec![format!("r:{func}+5")], "without +OFFSET"),
        (vec![p(""), p("")], "looks like a second probe definition"),
        (
            vec!["--hist".into(), "$retval".into(), p("")],
            "needs a return probe",
        ),
    ];
    // Refused by the check or the kernel, where there are kprobes.
    let with_kprobes: Vec<(Vec<String>, &str)> = vec![
        (vec!["p:do_sys_openat3".into()], "did you mean"),
        (vec![p(""), "nosuchfield == 1".into()], "Field not found"),
        (vec![p(" %nosuchreg")], "the kernel rejected the probe"),
        (
            vec![p(" +0(%si):nosuchtype")],
            "the kernel rejected the probe",
        ),
        (
            vec!["-p".into(), "999999999".into(), p("")],
            "no process with PID 999999999",
        ),
    ];
    let mut cases = everywhere;
    for (args, want) in with_kprobes {
        cases.push((
            args,
            if has_kprobes {
                want
            } else {
                "this kernel has no kprobe events (CONFIG_KPROBE_EVENTS)"
            },
        ));
    }
    for (args, want) in cases {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let f = run("kprobe", &a);
        assert_eq!(f.code(), 2, "{args:?}: {}", f.stderr);
        assert!(
            f.stderr.contains(want),
            "{args:?}: want {want:?} in {}",
            f.stderr
        );
        assert_eq!(
            f.stderr
                .lines()
                .filter(|l| l.starts_with("kprobe:"))
                .count(),
            1,
            "{}",
            f.stderr
        );
        assert_eq!(f.stdout, "", "{args:?}");
        if has_kprobes {
            assert_no_probe_left(&f);
        }
    }
    if has_kprobes {
        // The kernel's own words for a rejected line.
        let f = run("kprobe", &[&p(" %nosuchreg")]);
        assert!(
            f.stderr.contains("Command:"),
            "no error_log text: {}",
            f.stderr
        );
    }
}

#[test]
fn while_tracing_the_probe_cannot_be_removed_and_after_a_signal_it_is_gone() {
    require_tracing!(KprobeEvents, Instances);
    let func = open_func();
    let mut t = ToolRun::start("kprobe", &[&format!("p:{func}")]);
    t.wait_ready();
    // Our group's line in kprobe_events.
    let root = support::tracefs_root();
    let ke = std::fs::read_to_string(root.join("kprobe_events")).unwrap();
    let mine = format!("ftrace_tools_{}_", t.pid());
    let line = ke
        .lines()
        .find(|l| l.contains(&mine))
        .unwrap_or_else(|| panic!("the probe is not in kprobe_events: {ke}"));
    let event = line
        .split_whitespace()
        .next()
        .unwrap()
        .split_once(':')
        .unwrap()
        .1;
    // The kernel refuses to remove an enabled probe: this is why the tool
    // must disable it (drop its instance) before removing it.
    let e = std::fs::OpenOptions::new()
        .append(true)
        .open(root.join("kprobe_events"))
        .and_then(|mut fh| {
            use std::io::Write;
            fh.write_all(format!("-:{event}\n").as_bytes())
        })
        .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EBUSY), "{e}");
    let ke = std::fs::read_to_string(root.join("kprobe_events")).unwrap();
    assert!(ke.contains(event), "{ke}");
    let f = t.stop();
    assert_eq!(f.code(), 0, "{}", f.stderr);
    assert_no_probe_left(&f);
}
