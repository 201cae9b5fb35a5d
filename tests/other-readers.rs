//! Other readers and writers of trace.dat files. Files that `trace-cmd
//! record` writes, read by our tools: versions 6 and 7, uncompressed and
//! zstd, tracepoints, raw_syscalls and function_graph. Where trace-cmd
//! cannot record (not installed, or a kernel where its global ftrace switch
//! is refused, as on hosts whose function tracer is locked away), those
//! tests skip; the VM harness's guests run them. And KernelShark's own
//! loader (libkshark) on a file that tpoint writes.
mod support;

use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use support::{run, Workload};

/// Writes the top level's buffer size back when it drops.
struct RestoreBufferSize(std::path::PathBuf, Option<String>);

impl Drop for RestoreBufferSize {
    fn drop(&mut self) {
        // "7 (expanded: 1408)": the buffer is not allocated yet, and 1408
        // KiB is what it will be.
        let kb = self.1.as_deref().and_then(|t| {
            t.split("expanded:")
                .nth(1)
                .or(Some(t))
                .and_then(|v| v.trim().trim_end_matches(')').split_whitespace().next())
        });
        if let Some(kb) = kb {
            let _ = std::fs::write(&self.0, kb);
        }
    }
}

/// trace-cmd record works on the top level: one recording at a time.
static TOP: Mutex<()> = Mutex::new(());

/// `trace-cmd record OPTS -o FILE WORKLOAD ARGS...`; false (after saying
/// why) where trace-cmd cannot record here.
fn record(file: &Path, opts: &[&str], workload: &[&str]) -> bool {
    // trace-cmd leaves the top level's buffer size at its -b: put it back.
    let size = support::tracefs_root().join("buffer_size_kb");
    let _restore = RestoreBufferSize(size.clone(), std::fs::read_to_string(&size).ok());
    let out = Command::new("trace-cmd")
        .arg("record")
        .arg("-q")
        .args(["-b", "8192"])
        .args(opts)
        .arg("-o")
        .arg(file)
        .arg(support::workload_bin())
        .args(workload)
        .output();
    let out = match out {
        Ok(o) => o,
        Err(_) => {
            support::skip("trace-cmd is not installed");
            return false;
        }
    };
    if !out.status.success() || !file.exists() {
        let err = String::from_utf8_lossy(&out.stderr);
        let why = err.lines().find(|l| !l.trim().is_empty()).unwrap_or("?");
        support::skip(&format!("trace-cmd cannot record here: {why}"));
        return false;
    }
    true
}

#[test]
fn tpoint_reads_trace_cmds_files_of_versions_6_and_7_and_zstd() {
    require_tracing!(SyscallTracepoints);
    let _g = TOP.lock().unwrap_or_else(|e| e.into_inner());
    let d = tempfile::tempdir().unwrap();
    let n = 1000;
    let versions: [(&str, &[&str]); 3] = [
        ("v6", &["--file-version", "6"]),
        ("v7", &["--file-version", "7", "--compression", "none"]),
        ("v7-zstd", &["--file-version", "7", "--compression", "zstd"]),
    ];
    for (tag, opts) in versions {
        let file = d.path().join(format!("getppid-{tag}.dat"));
        let mut o = opts.to_vec();
        o.extend(["-e", "syscalls:sys_enter_getppid"]);
        if !record(&file, &o, &["getppid", &n.to_string()]) {
            return;
        }
        let path = file.to_str().unwrap();
        // trace-cmd's own report is the oracle of what the file holds.
        let Some(text) = support::trace_cmd_report(&file) else {
            return;
        };
        // trace-cmd may lose events in a loaded machine: what the file
        // holds is the oracle, and all of it only when nothing was lost.
        let want = support::count_lines(&text, "ftt-workload-");
        assert!(want > 0, "{tag}: no event of the workload in\n{text}");
        if !dropped(&text) {
            assert_eq!(want, n, "{tag}: trace-cmd report shows {want} of {n}");
        }
        let t = run("tpoint", &["--read", path]);
        assert_eq!(t.code(), 0, "{tag}: {}", t.stderr);
        // tpoint prints the entry as the kernel does (trace-cmd by its
        // event name).
        assert_eq!(
            t.count(": sys_getppid()"),
            support::count_lines(&text, "sys_enter_getppid:"),
            "{tag}"
        );
        assert_eq!(t.count("ftt-workload-"), want, "{tag}");
    }
}

#[test]
fn syscount_counts_a_trace_cmd_raw_syscalls_file_exactly() {
    require_tracing!(RawSyscalls);
    let _g = TOP.lock().unwrap_or_else(|e| e.into_inner());
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("raw.dat");
    let n = 2000;
    // -F: the workload's events only.
    let opts = ["--file-version", "7", "-F", "-e", "raw_syscalls"];
    if !record(&file, &opts, &["getppid", &n.to_string()]) {
        return;
    }
    let c = run("syscount", &["-c", "--read", file.to_str().unwrap()]);
    assert_eq!(c.code(), 0, "{}", c.stderr);
    let got: Vec<usize> = c
        .stdout
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (w.first() == Some(&"getppid")).then(|| w.get(1)?.parse().ok())?
        })
        .collect();
    // The oracle: trace-cmd's report of the same file (all n calls when
    // it lost nothing).
    let Some(text) = support::trace_cmd_report(&file) else {
        return;
    };
    let calls = |ev: &str, nr: &str| {
        text.lines()
            .filter(|l| l.contains(ev) && l.contains(nr))
            .count()
    };
    let (enters, exits) = (
        calls("sys_enter:", &format!("NR {} (", libc::SYS_getppid)),
        calls("sys_exit:", &format!("NR {} = ", libc::SYS_getppid)),
    );
    if !dropped(&text) {
        assert_eq!((enters, exits), (n, n), "trace-cmd report");
    }
    assert!(
        got == [enters] || got == [exits],
        "syscount: {got:?}, trace-cmd: {enters} entries and {exits} exits\n{}",
        c.stdout
    );
}

/// Whether trace-cmd's report marks lost events.
fn dropped(report: &str) -> bool {
    report.contains("DROPPED") || report.contains("[LOST")
}

#[test]
fn funcgraph_reads_a_trace_cmd_function_graph_file() {
    require_tracing!(FunctionGraph);
    let _g = TOP.lock().unwrap_or_else(|e| e.into_inner());
    let funcs = std::fs::read_to_string(support::tracefs_root().join("available_filter_functions"))
        .unwrap_or_default();
    let Some(func) = ["do_sys_openat2", "do_sys_open"]
        .into_iter()
        .find(|f| funcs.lines().any(|l| l == *f))
    else {
        return support::skip("no do_sys_openat2 or do_sys_open to graph");
    };
    let d = tempfile::tempdir().unwrap();
    let target = d.path().join("target");
    std::fs::write(&target, "x").unwrap();
    let file = d.path().join("fgraph.dat");
    let n = 10;
    let opts = ["--file-version", "6", "-p", "function_graph", "-g", func];
    if !record(
        &file,
        &opts,
        &["open", target.to_str().unwrap(), &n.to_string()],
    ) {
        return;
    }
    let Some(text) = support::trace_cmd_report(&file) else {
        return;
    };
    // The workload's opens of the target, and those of the loader and of
    // trace-cmd's own start: every outermost call of the function is a
    // graph, as many as trace-cmd shows.
    let top = |t: &str| {
        let t = t.trim_end();
        t.ends_with(&format!("{func}() {{")) || t.ends_with(&format!("{func}();"))
    };
    let entries = text.lines().filter(|l| top(l)).count();
    assert!(entries >= n, "trace-cmd report shows {entries} of {n}");
    let g = run("funcgraph", &["--read", file.to_str().unwrap(), func]);
    assert_eq!(g.code(), 0, "{}", g.stderr);
    let opened = g.stdout.lines().filter(|l| top(l)).count();
    assert_eq!(opened, entries, "{}", g.stdout);
    assert!(
        g.stdout.contains("do_filp_open"),
        "no callee in the graphs:\n{}",
        g.stdout
    );
}

#[test]
fn kernelshark_loads_every_event_tpoint_writes() {
    require_tracing!(SyscallTracepoints, Instances);
    let d = tempfile::tempdir().unwrap();
    let loader = d.path().join("load");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kernelshark/load.c");
    let cc = Command::new("cc")
        .arg(&src)
        .arg("-o")
        .arg(&loader)
        .args(["-I/usr/include/kernelshark", "-lkshark"])
        .output();
    match cc {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            return support::skip(&format!(
                "KernelShark's library cannot be built against (libkshark-dev, libjson-c-dev): {}",
                String::from_utf8_lossy(&o.stderr)
                    .lines()
                    .next()
                    .unwrap_or("?")
            ))
        }
        Err(_) => return support::skip("no C compiler to build KernelShark's loader with"),
    }
    let file = d.path().join("getppid.dat");
    let n = 3000u64;
    let mut w = Workload::waiting(&["getppid", &n.to_string()]);
    let pid = w.pid().to_string();
    let mut t = support::ToolRun::start(
        "tpoint",
        &[
            "-p",
            &pid,
            "-w",
            file.to_str().unwrap(),
            "syscalls:sys_enter_getppid",
        ],
    );
    t.wait_ready();
    w.go();
    assert_eq!(w.wait(), n);
    let f = t.stop();
    assert_eq!(f.code(), 0, "{}", f.stderr);
    support::assert_nothing_left(f.pid);
    let out = Command::new(&loader)
        .arg(&file)
        .args(["syscalls/sys_enter_getppid", "ftt-workload"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "KernelShark's loader failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        text.trim(),
        format!("{n} {n}"),
        "entries, then the workload's"
    );
}
