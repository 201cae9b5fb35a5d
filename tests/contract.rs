//! The contract every tool of the suite keeps, tested over one table of
//! tools ([`TOOLS`]): a new tool is covered by adding its row.
//!
//! For each tool: stop signals at random moments of setup and of streaming
//! end the run within the bound and leave nothing behind; a closed stdout
//! ends it with status 0; under nohup a hangup does not end it; `--help`
//! ends with examples; a missing PID, a missing event and an unreadable
//! file each give exit 2 and a one-line reason; `-j` prints JSON that
//! parses; a run as non-root is refused with exit 2. And every tool has its
//! crate, its test file, its man page, its example transcript and its rows
//! in the docs (docs/adding-a-tool.md).
//!
//! Live items skip (`skipping: ...`) where the kernel lacks what the tool
//! needs; the VM harness runs them on kernels that have it.
mod support;

use ftrace_common::kernel::caps::Feature;
use std::io::BufRead;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use support::{ToolRun, Workload};

/// What keeps events coming while a tool runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Load {
    /// Nothing: the tool prints without it (or never streams).
    None,
    /// getppid(), about 1000 a second.
    Getppid,
    /// Calls of the workload's ftt_probe_target(), about 1000 a second.
    Call,
    /// read()s of /dev/zero, about 1000 a second.
    Read,
    /// Direct 4 KiB reads of a file on a block device.
    DirectRead,
    /// kill(2) of itself with signal 0, about 1000 a second.
    Kill,
    /// open(2) and close(2) of /dev/null, about 1000 a second.
    Open,
    /// fork(2) and exec of the workload itself, about 100 a second.
    Exec,
}

/// One row of the table. In arguments, `{wl}` is the workload program,
/// `{pid}` the PID of the run (a live process, or a missing one), `{text}`
/// a file of text (not a program, not a device, not executable).
struct Tool {
    name: &'static str,
    /// What the kernel must have for the live items.
    needs: &'static [Feature],
    /// The tool takes the top level on some kernels: one such run at a time.
    /// Such tools also start and stop the function tracers, whose code
    /// patching takes the kernel seconds under emulation: their exit bound
    /// in the VM guests is longer (on real hardware it is the same).
    exclusive: bool,
    load: Load,
    /// A run that streams events of the load until it is stopped.
    stream: Option<&'static [&'static str]>,
    /// A run that prints JSON lines of the load and ends by itself.
    json: Option<&'static [&'static str]>,
    /// A run limited to `{pid}`.
    pid: Option<&'static [&'static str]>,
    /// A run naming an event, function or device this kernel lacks.
    missing_event: Option<&'static [&'static str]>,
    /// A run naming a file the tool reads that is not what it needs.
    bad_file: Option<&'static [&'static str]>,
}

/// The suite.
const TOOLS: &[Tool] = &[
    Tool {
        name: "tpoint",
        needs: &[Feature::SyscallTracepoints, Feature::Instances],
        exclusive: false,
        load: Load::Getppid,
        stream: Some(&["syscalls:sys_enter_getppid"]),
        json: Some(&["-j", "-M", "5", "syscalls:sys_enter_getppid"]),
        pid: Some(&["-p", "{pid}", "syscalls:sys_enter_getppid"]),
        missing_event: Some(&["syscalls:sys_enter_no_such_call"]),
        bad_file: None,
    },
    Tool {
        name: "uprobe",
        needs: &[Feature::UprobeEvents, Feature::Instances],
        exclusive: false,
        load: Load::Call,
        stream: Some(&["p:{wl}:ftt_probe_target"]),
        json: Some(&["-j", "-M", "5", "p:{wl}:ftt_probe_target"]),
        pid: Some(&["-p", "{pid}", "p:{wl}:ftt_probe_target"]),
        missing_event: Some(&["p:{wl}:no_such_function_xyz"]),
        bad_file: Some(&["p:{text}:main"]),
    },
    Tool {
        name: "kprobe",
        needs: &[Feature::KprobeEvents, Feature::Instances],
        exclusive: false,
        load: Load::Read,
        stream: Some(&["p:vfs_read"]),
        json: Some(&["-j", "-M", "5", "p:vfs_read"]),
        pid: Some(&["-p", "{pid}", "p:vfs_read"]),
        missing_event: Some(&["p:no_such_function_xyz"]),
        bad_file: None,
    },
    Tool {
        name: "syscount",
        needs: &[Feature::RawSyscalls, Feature::Instances],
        exclusive: false,
        load: Load::Getppid,
        stream: Some(&["-c", "-i", "0.2"]),
        json: Some(&["-c", "-j", "-d", "0.5"]),
        pid: Some(&["-c", "-p", "{pid}"]),
        missing_event: Some(&["--hist", "no_such_call"]),
        bad_file: Some(&["{text}"]),
    },
    Tool {
        name: "iosnoop",
        needs: &[Feature::BlockTracepoints, Feature::Instances],
        exclusive: false,
        load: Load::DirectRead,
        stream: Some(&[]),
        json: Some(&["-j", "1"]),
        pid: Some(&["-p", "{pid}"]),
        missing_event: Some(&["-d", "no_such_disk"]),
        bad_file: Some(&["-d", "{text}"]),
    },
    Tool {
        name: "funccount",
        needs: &[Feature::FunctionTracer, Feature::Instances],
        exclusive: true,
        load: Load::Read,
        stream: Some(&["-i", "0.2", "vfs_read"]),
        json: Some(&["-j", "-d", "0.5", "vfs_read"]),
        pid: Some(&["-p", "{pid}", "vfs_read"]),
        missing_event: Some(&["no_such_function_xyz"]),
        bad_file: Some(&["u:{text}:main"]),
    },
    Tool {
        name: "funcgraph",
        needs: &[Feature::FunctionGraph],
        exclusive: true,
        load: Load::Read,
        stream: Some(&["-m", "1", "vfs_read"]),
        json: Some(&["-j", "-m", "1", "-d", "1", "vfs_read"]),
        pid: Some(&["-m", "1", "-p", "{pid}", "vfs_read"]),
        missing_event: Some(&["no_such_function_xyz"]),
        bad_file: None,
    },
    Tool {
        name: "funcslower",
        needs: &[Feature::FunctionGraph],
        exclusive: true,
        load: Load::Read,
        stream: Some(&["vfs_read", "0.001"]),
        json: Some(&["-j", "-d", "1", "vfs_read", "0.001"]),
        pid: Some(&["-p", "{pid}", "vfs_read", "0.001"]),
        missing_event: Some(&["no_such_function_xyz", "1000"]),
        bad_file: None,
    },
    Tool {
        name: "functrace",
        needs: &[Feature::FunctionTracer, Feature::Instances],
        exclusive: false,
        load: Load::Read,
        stream: Some(&["vfs_read"]),
        json: Some(&["-j", "-d", "0.5", "vfs_read"]),
        pid: Some(&["-p", "{pid}", "vfs_read"]),
        missing_event: Some(&["no_such_function_xyz"]),
        bad_file: None,
    },
    Tool {
        name: "hist",
        needs: &[Feature::SyscallTracepoints, Feature::Instances],
        exclusive: false,
        load: Load::Getppid,
        stream: Some(&["-i", "0.2", "syscalls:sys_enter_getppid", "keys=common_pid"]),
        json: Some(&[
            "-j",
            "-d",
            "0.5",
            "syscalls:sys_enter_getppid",
            "keys=common_pid",
        ]),
        pid: Some(&[
            "-p",
            "{pid}",
            "syscalls:sys_enter_getppid",
            "keys=common_pid",
        ]),
        missing_event: Some(&["syscalls:sys_enter_no_such_call", "keys=common_pid"]),
        bad_file: Some(&["u:{text}:main", "keys=common_pid"]),
    },
    Tool {
        name: "funclatency",
        needs: &[Feature::UprobeEvents, Feature::Instances],
        exclusive: false,
        load: Load::Call,
        stream: Some(&["-i", "0.2", "{wl}:ftt_probe_target"]),
        json: Some(&["-j", "-d", "0.5", "{wl}:ftt_probe_target"]),
        pid: Some(&["-p", "{pid}", "{wl}:ftt_probe_target"]),
        missing_event: Some(&["{wl}:no_such_function_xyz"]),
        bad_file: Some(&["{text}:main"]),
    },
    Tool {
        name: "killsnoop",
        needs: &[Feature::SyscallTracepoints, Feature::Instances],
        exclusive: false,
        load: Load::Kill,
        stream: Some(&[]),
        json: Some(&["-j", "-d", "0.5"]),
        pid: Some(&["-p", "{pid}"]),
        missing_event: None,
        bad_file: None,
    },
    Tool {
        name: "opensnoop",
        needs: &[Feature::SyscallTracepoints, Feature::Instances],
        exclusive: false,
        load: Load::Open,
        stream: Some(&[]),
        json: Some(&["-j", "-d", "0.5"]),
        pid: Some(&["-p", "{pid}"]),
        missing_event: None,
        bad_file: None,
    },
    Tool {
        name: "execsnoop",
        needs: &[Feature::SyscallTracepoints, Feature::Instances],
        exclusive: false,
        load: Load::Exec,
        stream: Some(&[]),
        json: Some(&["-j", "-d", "0.5"]),
        pid: Some(&["-p", "{pid}"]),
        missing_event: None,
        bad_file: None,
    },
    Tool {
        name: "stackcount",
        needs: &[Feature::SyscallTracepoints, Feature::Instances],
        exclusive: false,
        load: Load::Getppid,
        stream: Some(&["-i", "0.2", "t:syscalls:sys_enter_getppid"]),
        json: None,
        pid: Some(&["-p", "{pid}", "t:syscalls:sys_enter_getppid"]),
        missing_event: Some(&["t:syscalls:sys_enter_no_such_call"]),
        bad_file: Some(&["{text}:main"]),
    },
    Tool {
        name: "offcputime",
        needs: &[Feature::Instances, Feature::KernelStacks],
        exclusive: false,
        load: Load::Getppid,
        stream: Some(&["-i", "0.2"]),
        json: Some(&["-j", "-d", "0.5"]),
        pid: Some(&["-p", "{pid}"]),
        missing_event: None,
        bad_file: None,
    },
    Tool {
        name: "iolatency",
        needs: &[Feature::BlockTracepoints, Feature::Instances],
        exclusive: false,
        load: Load::DirectRead,
        stream: Some(&["0.2"]),
        json: Some(&["-j", "0.3", "2"]),
        pid: None,
        missing_event: Some(&["-d", "no_such_disk"]),
        bad_file: Some(&["-d", "{text}"]),
    },
    Tool {
        name: "bitesize",
        needs: &[Feature::BlockTracepoints, Feature::Instances],
        exclusive: false,
        load: Load::DirectRead,
        stream: Some(&["-i", "0.2"]),
        json: Some(&["-j", "0.5"]),
        pid: None,
        missing_event: Some(&["-d", "no_such_disk"]),
        bad_file: Some(&["-d", "{text}"]),
    },
    Tool {
        name: "sslsniff",
        needs: &[Feature::UprobeEvents, Feature::Instances],
        exclusive: false,
        load: Load::None,
        stream: Some(&[]),
        json: None,
        pid: Some(&["-p", "{pid}"]),
        missing_event: Some(&["-ogn", "--extra-lib", "openssl:/no/such/libssl.so.3"]),
        bad_file: Some(&["-ogn", "--extra-lib", "openssl:{text}"]),
    },
    Tool {
        name: "tcpretrans",
        needs: &[Feature::Instances],
        exclusive: false,
        load: Load::None,
        stream: Some(&[]),
        json: Some(&["-j", "-c", "-d", "0.5"]),
        pid: None,
        missing_event: None,
        bad_file: None,
    },
    Tool {
        name: "reset-ftrace",
        needs: &[],
        exclusive: false,
        load: Load::None,
        stream: None,
        json: None,
        pid: None,
        missing_event: None,
        bad_file: None,
    },
    // Its JSON is tested in tests/ftrace-status.rs: here its exit status
    // would say whether someone else traces at the top level.
    Tool {
        name: "ftrace-status",
        needs: &[],
        exclusive: false,
        load: Load::None,
        stream: None,
        json: None,
        pid: None,
        missing_event: None,
        bad_file: None,
    },
    Tool {
        name: "cachestat",
        needs: &[Feature::KprobeEvents, Feature::Instances],
        exclusive: false,
        load: Load::Read,
        stream: Some(&["0.2"]),
        json: Some(&["-j", "-d", "0.5"]),
        pid: Some(&["-p", "{pid}"]),
        missing_event: None,
        bad_file: None,
    },
];

/// Runs of tools that may take the top level go one at a time.
static TOP_LEVEL: Mutex<()> = Mutex::new(());

fn exclusive(t: &Tool) -> Option<std::sync::MutexGuard<'static, ()>> {
    t.exclusive
        .then(|| TOP_LEVEL.lock().unwrap_or_else(|e| e.into_inner()))
}

/// Whether the kernel has what the tool needs; says why not otherwise.
fn can_run(t: &Tool) -> bool {
    if !support::is_root() || support::tracefs().is_none() {
        support::skip(&format!("{}: needs root and tracefs", t.name));
        return false;
    }
    let tfs = support::tracefs().unwrap();
    for f in t.needs {
        if let ftrace_common::kernel::caps::Support::No(why) =
            ftrace_common::kernel::caps::check(&tfs, *f)
        {
            support::skip(&format!("{}: {why}", t.name));
            return false;
        }
    }
    true
}

/// A file on a block device for direct reads, removed on drop.
struct DiskFile(PathBuf);

impl DiskFile {
    fn new() -> DiskFile {
        let dir = std::env::var_os("FTRACE_TOOLS_SCRATCH")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let p = dir.join(format!(
            "contract-{}-{:?}.dat",
            std::process::id(),
            Instant::now()
        ));
        std::fs::write(&p, vec![1u8; 1 << 20]).expect("write the scratch file");
        std::fs::File::open(&p).unwrap().sync_all().unwrap();
        DiskFile(p)
    }
}

impl Drop for DiskFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The load of a row, running (and the file it reads).
struct Running {
    work: Option<Workload>,
    _file: Option<DiskFile>,
}

impl Running {
    fn start(load: Load) -> Running {
        let (args, file): (Vec<String>, Option<DiskFile>) = match load {
            Load::None => {
                return Running {
                    work: None,
                    _file: None,
                }
            }
            Load::Getppid => (vec!["steady".into(), "getppid".into(), "600".into()], None),
            Load::Call => (vec!["steady".into(), "call".into(), "600".into()], None),
            Load::Read => (vec!["steady".into(), "read".into(), "600".into()], None),
            Load::Kill => (vec!["steady".into(), "kill".into(), "600".into()], None),
            Load::Open => (vec!["steady".into(), "open".into(), "600".into()], None),
            Load::Exec => {
                let wl = support::workload_bin().display().to_string();
                let a = ["execs", &wl, "1000000", "0", "10"];
                (a.iter().map(|s| s.to_string()).collect(), None)
            }
            Load::DirectRead => {
                let f = DiskFile::new();
                let a = vec![
                    "direct-read".into(),
                    f.0.display().to_string(),
                    "100000000".into(),
                ];
                (a, Some(f))
            }
        };
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut w = Workload::waiting(&a);
        w.go();
        Running {
            work: Some(w),
            _file: file,
        }
    }

    fn pid(&self) -> u32 {
        self.work.as_ref().map(|w| w.pid()).unwrap_or(1)
    }
}

/// A file of text, mode 0644, removed on drop.
fn text_file() -> tempfile::NamedTempFile {
    use std::os::unix::fs::PermissionsExt;
    let f = tempfile::Builder::new()
        .prefix("contract-text")
        .tempfile()
        .unwrap();
    std::fs::write(f.path(), "just text\n").unwrap();
    std::fs::set_permissions(f.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
    f
}

/// The arguments with `{wl}`, `{pid}` and `{text}` filled in.
fn fill(args: &[&str], pid: u32) -> Vec<String> {
    fill_text(args, pid, Path::new("/nonexistent"))
}

fn fill_text(args: &[&str], pid: u32, text: &Path) -> Vec<String> {
    let wl = support::workload_bin().display().to_string();
    let text = text.display().to_string();
    args.iter()
        .map(|a| {
            a.replace("{wl}", &wl)
                .replace("{pid}", &pid.to_string())
                .replace("{text}", &text)
        })
        .collect()
}

fn command(t: &Tool, args: &[String]) -> Command {
    let mut c = Command::new(support::bin(t.name));
    c.args(args);
    c
}

/// How long a tool may take to exit once told to.
fn bound(t: &Tool) -> Duration {
    if t.exclusive && std::env::var_os("FTRACE_TOOLS_IN_VM").is_some() {
        // function_graph's teardown unpatches every traceable function:
        // 5 to 11 s under TCG, well under a second on hardware.
        Duration::from_secs(30)
    } else {
        support::exit_bound()
    }
}

/// Every tool of the suite: those of kernel::needs, whose unit test
/// checks them against tools/.
#[test]
fn every_tool_is_in_the_table() {
    let mut suite: Vec<&str> = ftrace_common::kernel::needs::TOOLS
        .iter()
        .map(|t| t.tool)
        .collect();
    suite.sort();
    let mut rows: Vec<&str> = TOOLS.iter().map(|t| t.name).collect();
    rows.sort();
    assert_eq!(
        suite, rows,
        "the suite (tools/, kernel::needs::TOOLS) and the contract's table of tools differ"
    );
}

/// docs/adding-a-tool.md's checklist, checked for every tool.
#[test]
fn every_tool_has_its_test_file_man_page_example_and_rows() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let letters = std::fs::read_to_string(root.join("docs/option-letters.md")).unwrap();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let mut missing = Vec::new();
    for t in TOOLS {
        let n = t.name;
        for (what, path) in [
            ("crate", format!("tools/{n}/Cargo.toml")),
            ("lib.rs (the tool's main)", format!("tools/{n}/src/lib.rs")),
            ("test file", format!("tests/{n}.rs")),
            ("man page", format!("man/man8/{n}.8")),
            ("example transcript", format!("examples/{n}_example.txt")),
        ] {
            if !root.join(&path).exists() {
                missing.push(format!("{n}: no {what} ({path})"));
            }
        }
        if !letters.contains(&format!("\n## {n}\n")) {
            missing.push(format!(
                "{n}: no section '## {n}' in docs/option-letters.md"
            ));
        }
        if !readme.contains(&format!("| `{n}` |")) {
            missing.push(format!("{n}: no row in README.md's table of tools"));
        }
        let main =
            std::fs::read_to_string(root.join(format!("tools/{n}/src/lib.rs"))).unwrap_or_default();
        let lines = main.lines().count();
        if lines > 400 {
            missing.push(format!("{n}: lib.rs has {lines} lines (at most 400)"));
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

#[test]
fn help_ends_with_examples() {
    for t in TOOLS {
        let f = support::run(t.name, &["--help"]);
        assert_eq!(f.code(), 0, "{}: {}", t.name, f.stderr);
        let text = f.stdout.trim_end();
        let at = text
            .rfind("\nExamples:\n")
            .unwrap_or_else(|| panic!("{}: --help has no Examples:\n{text}", t.name));
        let examples: Vec<&str> = text[at + 11..].lines().collect();
        assert!(
            examples.len() >= 2 && examples.iter().all(|l| l.starts_with("  ")),
            "{}: --help does not end with indented examples:\n{}",
            t.name,
            &text[at..]
        );
        assert!(
            examples.iter().any(|l| l.trim_start().starts_with(t.name)),
            "{}: no example runs {}",
            t.name,
            t.name
        );
    }
}

/// Exit 2 and one line on stderr, naming `what`.
fn refused(t: &Tool, f: &support::Finished, what: &str) {
    assert_eq!(f.code(), 2, "{}: {what}: {}", t.name, f.stderr);
    let lines: Vec<&str> = f.stderr.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "{}: {what}: not one line:\n{}",
        t.name,
        f.stderr
    );
    assert!(
        lines[0].starts_with(&format!("{}: ", t.name)),
        "{}: {what}: {}",
        t.name,
        lines[0]
    );
    support::assert_nothing_left(f.pid);
}

#[test]
fn bad_input_exits_2_with_one_line_and_leaves_nothing() {
    for t in TOOLS {
        let live = support::is_root()
            && support::tracefs().is_some()
            && t.needs.iter().all(|f| support::has(*f));
        if let Some(a) = t.pid {
            let f = support::run_cmd(&mut command(t, &fill(a, 999_999_999)));
            if live {
                refused(t, &f, "a missing PID");
                assert!(f.stderr.contains("999999999"), "{}: {}", t.name, f.stderr);
            } else {
                assert_eq!(f.code(), 2, "{}: {}", t.name, f.stderr);
            }
        }
        if let Some(a) = t.missing_event {
            let f = support::run_cmd(&mut command(t, &fill(a, 1)));
            if live {
                refused(t, &f, "a missing event");
            } else {
                assert_eq!(f.code(), 2, "{}: {}", t.name, f.stderr);
            }
        }
        if let Some(a) = t.bad_file {
            let text = text_file();
            let f = support::run_cmd(&mut command(t, &fill_text(a, 1, text.path())));
            if live {
                refused(t, &f, "an unreadable file");
            } else {
                assert_eq!(f.code(), 2, "{}: {}", t.name, f.stderr);
            }
        }
        // Every tool reads tracefs: a path that is not one is refused.
        let args = fill(t.stream.unwrap_or(&[]), 1);
        let f = support::run_cmd(
            command(t, &args).env(ftrace_common::kernel::tracefs::TRACEFS_ENV, "/etc/hostname"),
        );
        assert_eq!(f.code(), 2, "{}: {}", t.name, f.stderr);
        assert_eq!(f.stderr.lines().count(), 1, "{}: {}", t.name, f.stderr);
        assert!(
            f.stderr.contains("/etc/hostname"),
            "{}: {}",
            t.name,
            f.stderr
        );
    }
}

#[test]
fn a_run_as_non_root_is_refused_clearly() {
    if !support::is_root() {
        support::skip("needs root to drop to another user");
        return;
    }
    for t in TOOLS {
        let args = fill(t.stream.unwrap_or(&[]), 1);
        let mut c = command(t, &args);
        support::as_nobody(&mut c);
        let f = support::run_cmd(&mut c);
        refused(t, &f, "non-root");
        assert!(f.stderr.contains("root"), "{}: {}", t.name, f.stderr);
    }
}

#[test]
fn json_lines_parse() {
    for t in TOOLS {
        let Some(a) = t.json else { continue };
        if !can_run(t) {
            continue;
        }
        let _g = exclusive(t);
        let load = Running::start(t.load);
        let f = support::run_cmd(&mut command(t, &fill(a, load.pid())));
        assert_eq!(f.code(), 0, "{}: {}", t.name, f.stderr);
        let lines: Vec<&str> = f.stdout.lines().collect();
        assert!(
            !lines.is_empty(),
            "{}: no JSON printed; stderr:\n{}",
            t.name,
            f.stderr
        );
        for l in lines {
            let v: Result<serde_json::Value, _> = serde_json::from_str(l);
            assert!(v.is_ok(), "{}: not JSON: {l}", t.name);
        }
        support::assert_nothing_left(f.pid);
    }
}

#[test]
fn a_closed_output_ends_the_run_with_status_0() {
    for t in TOOLS {
        let Some(a) = t.stream else { continue };
        if !can_run(t) {
            continue;
        }
        let _g = exclusive(t);
        let load = Running::start(t.load);
        let mut child = command(t, &fill(a, load.pid()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        // `| head -1`: one line read, then the pipe closes.
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        out.read_line(&mut first).unwrap();
        drop(out);
        let t0 = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if t0.elapsed() > support::READY_TIMEOUT {
                let _ = child.kill();
                panic!(
                    "{}: still running {:?} after its output closed",
                    t.name,
                    t0.elapsed()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let mut err = String::new();
        let _ = std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err);
        assert!(!first.is_empty(), "{}: printed nothing: {err}", t.name);
        assert_eq!(status.code(), Some(0), "{}: {status:?}: {err}", t.name);
        support::assert_nothing_left(pid);
        drop(load);
    }
}

#[test]
/// Also: under nohup (SIGHUP ignored when the tool starts) a hangup does not
/// end the run. The first run of each tool checks that, then ends with
/// SIGINT; one run fewer per tool than a test of its own, which in a guest
/// under emulation is seconds per tool.
fn signals_at_random_moments_end_the_run_quickly_and_leave_nothing() {
    let mut rng = support::rng();
    let sigs = [
        libc::SIGINT,
        libc::SIGTERM,
        libc::SIGHUP,
        libc::SIGQUIT,
        libc::SIGPIPE,
    ];
    for t in TOOLS {
        let Some(a) = t.stream else { continue };
        if !can_run(t) {
            continue;
        }
        // One tool at a time, so that the top level can be compared.
        let _g = TOP_LEVEL.lock().unwrap_or_else(|e| e.into_inner());
        let before = top_level();
        let load = Running::start(t.load);
        let args = fill(a, load.pid());
        // How long setup takes here, to aim signals into it; under nohup.
        let mut c = command(t, &args);
        // SAFETY: signal() is async-signal-safe.
        unsafe {
            c.pre_exec(|| {
                libc::signal(libc::SIGHUP, libc::SIG_IGN);
                Ok(())
            });
        }
        let mut first = ToolRun::start_cmd(&mut c);
        first.wait_ready();
        let setup = first.elapsed();
        first.signal(libc::SIGHUP);
        // A run that took the hangup for a stop would be gone by now: every
        // tool's stop path is the shared one, and all but the function
        // tracers' end well within this (in a guest, too).
        let in_vm = std::env::var_os("FTRACE_TOOLS_IN_VM").is_some();
        std::thread::sleep(Duration::from_millis(if in_vm { 1500 } else { 500 }));
        assert!(
            first.is_running(),
            "{}: the ignored SIGHUP ended the run",
            t.name
        );
        let f = first.signal_after(Duration::ZERO, libc::SIGINT, bound(t));
        assert_eq!(f.code(), 0, "{}: {}", t.name, f.stderr);
        support::assert_nothing_left(f.pid);
        // Two moments of each kind on the host; one of each in a guest,
        // where every run costs several times more (the guests' two
        // kernels and the host's run cover the others).
        let moments: &[bool] = if in_vm {
            &[true, false]
        } else {
            &[true, true, false, false]
        };
        for &during_setup in moments {
            // SIGPIPE only once the tool runs: a Rust program ignores it
            // until main installs handlers, so one sent by kill(1) in that
            // first millisecond is lost (a closed pipe raises it on a
            // write, always later).
            let sig = if during_setup {
                sigs[rng(4) as usize]
            } else {
                sigs[rng(5) as usize]
            };
            let mut run = ToolRun::start_cmd(&mut command(t, &args));
            let after = if during_setup {
                Duration::from_micros(rng(setup.as_micros() as u64 + 1))
            } else {
                run.wait_ready();
                Duration::from_millis(rng(300))
            };
            let f = run.signal_after(after, sig, bound(t));
            if !during_setup {
                assert_eq!(
                    f.status.code(),
                    Some(0),
                    "{}: signal {sig} while streaming: {}",
                    t.name,
                    f.stderr
                );
            }
            support::assert_nothing_left(f.pid);
        }
        drop(load);
        assert_eq!(top_level(), before, "{}: the top level changed", t.name);
    }
}

/// The top-level settings, but for the buffer size, which the kernel
/// itself expands at the first use of a tracer after boot.
fn top_level() -> std::collections::BTreeMap<String, String> {
    let mut m = support::top_level_snapshot(&[]);
    m.remove("buffer_size_kb");
    m
}
