//! Helpers shared by the black-box tests: finding the built tools, running
//! them until they say they are tracing, workloads with known behaviour,
//! skipping politely, and checking that nothing was left in tracefs.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How soon a tool must exit after a stop signal: 1 s on real hardware; in
/// the VM harness's guests (qemu without KVM, tens of times slower, on a
/// shared host) every kernel step takes longer, and the bound is 10 s.
pub fn exit_bound() -> Duration {
    if std::env::var_os("FTRACE_TOOLS_IN_VM").is_some() {
        Duration::from_secs(10)
    } else {
        Duration::from_secs(1)
    }
}

/// How long a tool may take to say it is tracing (TCG guests are slow).
pub const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// The directory of the built binaries.
pub fn bin_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("FTRACE_TOOLS_BIN_DIR") {
        return PathBuf::from(d);
    }
    Path::new(env!("CARGO_BIN_EXE_ftt-workload"))
        .parent()
        .expect("target dir")
        .to_path_buf()
}

/// The path of a built tool; panics with what to do if it was not built.
pub fn bin(name: &str) -> PathBuf {
    default_signals();
    let p = bin_dir().join(name);
    assert!(
        p.exists(),
        "{} is not built: run `cargo build --workspace` first (tests/run does)",
        p.display()
    );
    p
}

/// The tools of the suite (the directories of `tools/` but the multi-call
/// binary's), sorted.
pub fn tool_names() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut v: Vec<String> = std::fs::read_dir(root.join("tools"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "ftrace-tools")
        .collect();
    v.sort();
    v
}

/// The workload program.
pub fn workload_bin() -> PathBuf {
    default_signals();
    PathBuf::from(env!("CARGO_BIN_EXE_ftt-workload"))
}

/// Gives this process the default action for the signals the tests send,
/// so that the programs it starts inherit it: run under nohup or as a
/// background job of a script, SIGHUP or SIGINT would be ignored, and
/// the tools rightly leave an ignored SIGHUP alone.
pub fn default_signals() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        for sig in [libc::SIGHUP, libc::SIGINT, libc::SIGQUIT, libc::SIGTERM] {
            // SAFETY: resets a disposition; this process installs no
            // handler of its own for these.
            unsafe { libc::signal(sig, libc::SIG_DFL) };
        }
    });
}

/// Says why a test does not run here: prints `skipping: <reason>` and
/// records it in `$FTRACE_TOOLS_SKIP_LOG` for the VM summary.
pub fn skip(reason: &str) {
    let name = std::thread::current().name().unwrap_or("?").to_string();
    eprintln!("skipping: {reason}");
    println!("skipping: {name}: {reason}");
    if let Some(log) = std::env::var_os("FTRACE_TOOLS_SKIP_LOG") {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
        {
            // One write: tests skipping at once must not mix their lines.
            let _ = f.write_all(format!("{name}: {reason}\n").as_bytes());
        }
    }
}

/// Skips the test (returns from it) unless the condition holds.
#[macro_export]
macro_rules! require {
    ($cond:expr, $($why:tt)+) => {
        if !$cond {
            $crate::support::skip(&format!($($why)+));
            return;
        }
    };
}

/// Makes the command run as user and group nobody (65534), without
/// supplementary groups.
pub fn as_nobody(c: &mut Command) {
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(c, || {
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(65534) != 0
                || libc::setuid(65534) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Whether we run as root.
pub fn is_root() -> bool {
    // SAFETY: no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The tracefs of this machine (mounted if needed), or `None` when not
/// root.
pub fn tracefs() -> Option<ftrace_common::kernel::tracefs::Tracefs> {
    if !is_root() {
        return None;
    }
    ftrace_common::kernel::tracefs::Tracefs::open().ok()
}

/// Whether the kernel has a feature; `None` when we cannot tell (not root).
pub fn has(feature: ftrace_common::kernel::caps::Feature) -> bool {
    tracefs()
        .map(|t| ftrace_common::kernel::caps::check(&t, feature).is_yes())
        .unwrap_or(false)
}

/// Skips unless root with tracefs and the given features.
#[macro_export]
macro_rules! require_tracing {
    ($($feature:ident),*) => {
        $crate::require!($crate::support::is_root(), "needs root");
        $crate::require!($crate::support::tracefs().is_some(), "needs tracefs");
        $(
            {
                let t = $crate::support::tracefs().unwrap();
                if let ftrace_common::kernel::caps::Support::No(why) =
                    ftrace_common::kernel::caps::check(&t, ftrace_common::kernel::caps::Feature::$feature)
                {
                    $crate::support::skip(&why);
                    return;
                }
            }
        )*
    };
}

/// What a finished tool run produced.
#[derive(Debug)]
pub struct Finished {
    /// Exit status.
    pub status: ExitStatus,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// The tool's PID.
    pub pid: u32,
    /// Time from the stop request (or start) to exit.
    pub exit_time: Duration,
}

impl Finished {
    /// Lines of stdout containing `pat`.
    pub fn count(&self, pat: &str) -> usize {
        self.stdout.lines().filter(|l| l.contains(pat)).count()
    }

    /// The exit code (panics if killed by a signal).
    pub fn code(&self) -> i32 {
        self.status
            .code()
            .unwrap_or_else(|| panic!("killed by a signal: {self:?}"))
    }
}

/// A tool running in the background.
pub struct ToolRun {
    child: Child,
    stdout: Option<std::thread::JoinHandle<String>>,
    stderr: Arc<(Mutex<String>, Condvar)>,
    stderr_thread: Option<std::thread::JoinHandle<()>>,
    started: Instant,
    /// The command line, for messages.
    what: String,
}

impl ToolRun {
    /// Starts `tool args`, capturing its output.
    pub fn start(tool: &str, args: &[&str]) -> ToolRun {
        Self::start_cmd(Command::new(bin(tool)).args(args))
    }

    /// Starts a prepared command, capturing its output.
    pub fn start_cmd(cmd: &mut Command) -> ToolRun {
        let prog = std::path::Path::new(cmd.get_program())
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut what = prog;
        for a in cmd.get_args() {
            what.push(' ');
            what.push_str(&a.to_string_lossy());
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tool");
        let mut out = child.stdout.take().unwrap();
        let stdout = std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = out.read_to_end(&mut s);
            String::from_utf8_lossy(&s).into_owned()
        });
        let err = child.stderr.take().unwrap();
        let stderr = Arc::new((Mutex::new(String::new()), Condvar::new()));
        let st = Arc::clone(&stderr);
        let stderr_thread = std::thread::spawn(move || {
            let r = BufReader::new(err);
            for line in r.lines() {
                let Ok(line) = line else { break };
                let (m, c) = &*st;
                let mut g = m.lock().unwrap();
                g.push_str(&line);
                g.push('\n');
                c.notify_all();
            }
            let (m, c) = &*st;
            let mut g = m.lock().unwrap();
            g.push_str("\u{0}EOF");
            c.notify_all();
        });
        ToolRun {
            child,
            stdout: Some(stdout),
            stderr,
            stderr_thread: Some(stderr_thread),
            started: Instant::now(),
            what,
        }
    }

    /// The tool's PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until stderr contains `needle`; panics with the output if the
    /// tool exits first or the timeout passes.
    pub fn wait_for_stderr(&mut self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let (m, c) = &*self.stderr;
        let mut g = m.lock().unwrap();
        loop {
            if g.contains(needle) {
                return;
            }
            if g.contains("\u{0}EOF") {
                let err = g.clone();
                drop(g);
                panic!("tool exited before printing {needle:?}; stderr:\n{err}");
            }
            let now = Instant::now();
            if now >= deadline {
                panic!("timeout waiting for {needle:?}; stderr so far:\n{}", *g);
            }
            g = c.wait_timeout(g, deadline - now).unwrap().0;
        }
    }

    /// Waits until the tool says it is tracing.
    pub fn wait_ready(&mut self) {
        self.wait_for_stderr("Tracing", READY_TIMEOUT);
    }

    /// Sends a signal.
    pub fn signal(&self, sig: i32) {
        // SAFETY: sending a signal to our own child.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    /// Waits for the exit (killing the tool after `timeout`) and collects
    /// the output. `exit_time` counts from this call.
    pub fn finish(mut self, timeout: Duration) -> Finished {
        let t0 = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                break s;
            }
            if t0.elapsed() > timeout {
                let _ = self.child.kill();
                let s = self.child.wait().expect("wait");
                let err = self.stderr.0.lock().unwrap().clone();
                panic!("tool did not exit within {timeout:?} (killed: {s:?}); stderr:\n{err}");
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let exit_time = t0.elapsed();
        let stdout = self.stdout.take().unwrap().join().unwrap();
        self.stderr_thread.take().unwrap().join().unwrap();
        let stderr = self.stderr.0.lock().unwrap().replace("\u{0}EOF", "");
        Finished {
            status,
            stdout,
            stderr,
            pid: self.child.id(),
            exit_time,
        }
    }

    /// Sends `sig` after `after`, then checks what every tool promises
    /// for a stop signal at any moment: it ends within `bound`, and, if a
    /// handler took the signal (the tool exited rather than died of it,
    /// which only the default action before main's setup may do), with
    /// status 0. Returns the output for the tool's own checks (what it
    /// must have left behind: nothing).
    pub fn signal_after(self, after: Duration, sig: i32, bound: Duration) -> Finished {
        let what = self.what.clone();
        std::thread::sleep(after);
        self.signal(sig);
        let f = self.finish(Duration::from_secs(60));
        assert!(
            f.exit_time < bound,
            "{what}: signal {sig} {after:?} after the start: exit took {:?}\n{}",
            f.exit_time,
            f.stderr
        );
        if let Some(code) = f.status.code() {
            assert_eq!(
                code, 0,
                "{what}: signal {sig} {after:?} after the start: {}",
                f.stderr
            );
        }
        f
    }

    /// Sends SIGINT and collects the output.
    pub fn stop(self) -> Finished {
        self.signal(libc::SIGINT);
        self.finish(Duration::from_secs(60))
    }

    /// Whether the tool has not exited yet.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Time since start.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

impl Drop for ToolRun {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A small pseudo-random sequence for spreading signals over a run: `r(n)`
/// is below `n`. Seeded from the clock and the pid, and the seed printed,
/// so that a failure can be replayed with FTT_SEED=SEED.
pub fn rng() -> impl FnMut(u64) -> u64 {
    let seed = std::env::var("FTT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                ^ (std::process::id() as u64).wrapping_mul(2_654_435_761)
        });
    eprintln!("FTT_SEED={seed}");
    let mut x = seed | 1;
    move |n| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n.max(1)
    }
}

/// Runs a tool to completion.
pub fn run(tool: &str, args: &[&str]) -> Finished {
    ToolRun::start(tool, args).finish(Duration::from_secs(300))
}

/// Runs a prepared command (a tool, with its environment) to completion.
pub fn run_cmd(cmd: &mut Command) -> Finished {
    ToolRun::start_cmd(cmd).finish(Duration::from_secs(300))
}

/// A workload process, started and waiting for "go" (or already going).
pub struct Workload {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Workload {
    /// Starts `ftt-workload --wait ARGS`: it waits for [`Workload::go`].
    pub fn waiting(args: &[&str]) -> Workload {
        let mut child = Command::new(workload_bin())
            .arg("--wait")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn workload");
        let stdin = child.stdin.take();
        Workload { child, stdin }
    }

    /// Its PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Lets it run.
    pub fn go(&mut self) {
        let mut s = self.stdin.take().expect("go once");
        s.write_all(b"go\n").unwrap();
    }

    /// Waits for it and returns the `N` of its `done N` line.
    pub fn wait(mut self) -> u64 {
        let mut out = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        let st = self.child.wait().unwrap();
        assert!(st.success(), "workload failed: {st:?}");
        out.trim()
            .strip_prefix("done ")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("workload said {out:?}"))
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The tracefs root path (tests are root when they get here).
pub fn tracefs_root() -> PathBuf {
    tracefs().expect("tracefs").root().to_path_buf()
}

/// Our instances and dynamic events owned by process `pid` that are still
/// in tracefs.
pub fn leftovers_of(pid: u32) -> Vec<String> {
    let root = tracefs_root();
    let mut left = Vec::new();
    if let Ok(rd) = std::fs::read_dir(root.join("instances")) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some((_, o)) = ftrace_common::lifecycle::owner::Owner::from_instance_name(&name)
            {
                if o.pid == pid {
                    left.push(format!("instance {name}"));
                }
            }
        }
    }
    for f in ["uprobe_events", "kprobe_events"] {
        let text = std::fs::read_to_string(root.join(f)).unwrap_or_default();
        for (g, n) in ftrace_common::lifecycle::dynevent::list_events(&text) {
            if let Some(o) = ftrace_common::lifecycle::owner::Owner::from_group_name(&g) {
                if o.pid == pid {
                    left.push(format!("{f}: {g}/{n}"));
                }
            }
        }
    }
    let synth = std::fs::read_to_string(root.join("synthetic_events")).unwrap_or_default();
    for name in ftrace_common::lifecycle::synth::list(&synth) {
        if ftrace_common::lifecycle::owner::Owner::from_synth_name(&name)
            .is_some_and(|o| o.pid == pid)
        {
            left.push(format!("synthetic event {name}"));
        }
    }
    left
}

/// Asserts that the run left nothing in tracefs.
pub fn assert_nothing_left(pid: u32) {
    let left = leftovers_of(pid);
    assert!(left.is_empty(), "process {pid} left state behind: {left:?}");
}

/// The top-level tracefs settings that no tool may change. Lines of our
/// own dynamic-event groups are left out of the dynamic-event files: tests
/// that run in parallel create and remove theirs; `assert_nothing_left`
/// checks those per run.
pub fn top_level_snapshot(events: &[&str]) -> BTreeMap<String, String> {
    let root = tracefs_root();
    let mut files: Vec<String> = [
        "current_tracer",
        "tracing_on",
        "buffer_size_kb",
        "set_event",
        "trace_options",
        "trace_clock",
        "set_event_pid",
        "uprobe_events",
        "kprobe_events",
        "tracing_thresh",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for e in events {
        files.push(format!("events/{}/enable", e.replace(':', "/")));
        files.push(format!("events/{}/filter", e.replace(':', "/")));
    }
    let mut map = BTreeMap::new();
    for f in files {
        let Ok(text) = std::fs::read_to_string(root.join(&f)) else {
            continue;
        };
        let text: String = text
            .lines()
            .filter(|l| !l.contains(ftrace_common::lifecycle::owner::GROUP_PREFIX))
            .map(|l| format!("{l}\n"))
            .collect();
        // "7 (expanded: 1408)" turns into "7" for good once any buffer,
        // an instance's too, is sized after boot (a global flag of the
        // kernel's, which nothing can set back): the size is compared.
        let text = match (f.as_str(), text.split_once(" (expanded:")) {
            ("buffer_size_kb", Some((size, _))) => format!("{size}\n"),
            _ => text,
        };
        map.insert(f, text);
    }
    map
}

/// `trace-cmd report FILE`: its stdout, or `None` (after saying why) where
/// trace-cmd is not installed. Its stderr must be empty: every file we
/// write reads without a warning.
pub fn trace_cmd_report(file: &Path) -> Option<String> {
    let out = match Command::new("trace-cmd").arg("report").arg(file).output() {
        Ok(o) => o,
        Err(_) => {
            skip("trace-cmd is not installed: the trace-cmd half of the check");
            return None;
        }
    };
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "trace-cmd report failed: {err}");
    assert!(err.trim().is_empty(), "trace-cmd report warned: {err}");
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Lines of `text` containing `pat`.
pub fn count_lines(text: &str, pat: &str) -> usize {
    text.lines().filter(|l| l.contains(pat)).count()
}

/// The kernel's own text of a probe tool's events, the oracle of how they
/// print: an instance of the test's records, for task `pid`, every event of
/// the dynamic-event groups of run `tool_pid` from [`KernelText::start`]
/// to [`KernelText::finish`].
pub struct KernelText {
    inst: ftrace_common::lifecycle::instance::Instance,
    groups: Vec<String>,
}

impl KernelText {
    /// Starts recording run `tool_pid`'s probe events (listed in
    /// `events_file`: `kprobe_events` or `uprobe_events`) of task `pid`.
    pub fn start(tool_pid: u32, events_file: &str, pid: u32) -> KernelText {
        let text = std::fs::read_to_string(tracefs_root().join(events_file)).unwrap();
        let mut groups: Vec<String> = ftrace_common::lifecycle::dynevent::list_events(&text)
            .into_iter()
            .map(|(g, _)| g)
            .filter(|g| {
                ftrace_common::lifecycle::owner::Owner::from_group_name(g)
                    .is_some_and(|o| o.pid == tool_pid)
            })
            .collect();
        groups.dedup();
        assert!(
            !groups.is_empty(),
            "no probe of run {tool_pid} in {events_file}: {text}"
        );
        let tfs = tracefs().unwrap();
        let mut inst =
            ftrace_common::lifecycle::instance::Instance::create(&tfs, "test-probe-text", None)
                .unwrap();
        inst.set_event_pids(&[pid], false).unwrap();
        for g in &groups {
            inst.write(format!("events/{g}/enable"), "1").unwrap();
        }
        inst.start().unwrap();
        KernelText { inst, groups }
    }

    /// Stops recording, removes the instance, and returns the kernel's
    /// `trace` text of what it recorded.
    pub fn finish(mut self) -> String {
        self.inst.stop().unwrap();
        let text = self.inst.read("trace").unwrap();
        for g in &self.groups {
            self.inst.write(format!("events/{g}/enable"), "0").unwrap();
        }
        self.inst.remove().unwrap();
        text
    }
}

/// What follows `TIMESTAMP: ` in each line of an event of `names` (`NAME:
/// (ADDRESS) ARGS`), sorted.
pub fn probe_texts(out: &str, names: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = out
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            names.iter().find_map(|n| {
                let at = l.find(&format!(": {n}: ("))?;
                Some(l[at + 2..].to_string())
            })
        })
        .collect();
    v.sort();
    v
}

/// Asserts that the tool printed each event's text as the kernel did:
/// `expected` events, the same texts.
pub fn assert_same_probe_texts(kernel: &str, tool: &str, names: &[&str], expected: usize) {
    let theirs = probe_texts(kernel, names);
    let ours = probe_texts(tool, names);
    assert_eq!(theirs.len(), expected, "the kernel's text:\n{kernel}");
    for (a, b) in theirs.iter().zip(&ours) {
        assert_eq!(a, b, "the kernel's text, then the tool's");
    }
    assert_eq!(ours.len(), expected, "the tool's text:\n{tool}");
    eprintln!(
        "  {expected} events of {}: the tool's text is the kernel's",
        names.join(", ")
    );
}

/// Compiles `src` into `dir/name` with `cc -o dir/name SRC FLAGS`.
pub fn cc(dir: &Path, name: &str, src: &str, flags: &[&str]) -> PathBuf {
    let c = dir.join(format!("{name}.c"));
    std::fs::write(&c, src).unwrap();
    let out = dir.join(name);
    let st = Command::new("cc")
        .arg("-o")
        .arg(&out)
        .arg(&c)
        .args(flags)
        .status()
        .unwrap();
    assert!(st.success(), "cc {flags:?} failed");
    out
}

/// Whether a command is on PATH.
pub fn has_command(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Whether a C compiler is there; skips (saying so) when not.
pub fn require_cc() -> bool {
    if !has_command("cc") {
        skip("needs a C compiler (cc)");
        return false;
    }
    true
}

/// A loop device over a file of its own in memory (`/dev/shm`, else the
/// temp dir), for block I/O that nothing else makes (iolatency, bitesize);
/// detached and removed on drop.
pub struct LoopDevice {
    /// `/dev/loopN`.
    pub dev: String,
    file: PathBuf,
}

impl LoopDevice {
    /// A loop device of `mib` MiB, or why there is none.
    pub fn new(tag: &str, mib: u64) -> Result<LoopDevice, String> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let file = dir.join(format!(
            "{tag}-test-{}-{}.img",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::File::create(&file)
            .and_then(|f| f.set_len(mib << 20))
            .map_err(|e| format!("{}: {e}", file.display()))?;
        let out = Command::new("losetup")
            .args(["-f", "--show"])
            .arg(&file)
            .output()
            .map_err(|e| format!("losetup: {e}"));
        let out = match out {
            Ok(o) if o.status.success() => o,
            Ok(o) => {
                let _ = std::fs::remove_file(&file);
                return Err(format!(
                    "losetup failed: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                ));
            }
            Err(e) => {
                let _ = std::fs::remove_file(&file);
                return Err(e);
            }
        };
        let dev = String::from_utf8_lossy(&out.stdout).trim().to_string();
        Ok(LoopDevice { dev, file })
    }

    /// `loopN`.
    pub fn name(&self) -> &str {
        self.dev.trim_start_matches("/dev/")
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.dev]).status();
        let _ = std::fs::remove_file(&self.file);
    }
}
