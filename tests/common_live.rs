//! Live tests of the `common` library against the running kernel: dynamic
//! events (uprobes here, kprobes in the VM kernels), the order of cleanup,
//! rejected lines and the reader's exact counts.
mod support;

use ftrace_common::app::stream::{stream, Sink, StreamOpts};
use ftrace_common::buffer::reader::Event;
use ftrace_common::lifecycle::dynevent::{ProbeDef, ProbeGroup, ProbeKind};
use ftrace_common::lifecycle::instance::Instance;
use ftrace_common::sym::elf::ElfFile;
use ftrace_common::ErrorKind;
use ftrace_common::Flow;
use support::Workload;

/// Counts the events of one id.
struct Count {
    id: u16,
    n: u64,
}

impl Sink for Count {
    fn event(&mut self, ev: &Event) -> Flow {
        if ev.id == self.id {
            self.n += 1;
        }
        Flow::Continue
    }
}

fn listed(file: &str, group: &str) -> bool {
    let root = support::tracefs_root();
    std::fs::read_to_string(root.join(file))
        .unwrap_or_default()
        .contains(group)
}

/// Runs `n` calls of the workload `mode` under a probe `def` in our group
/// and returns the events counted for that process.
fn count_probe_hits(def: ProbeDef, mode: &str, n: u64) -> u64 {
    let tfs = support::tracefs().unwrap();
    let mut w = Workload::waiting(&[mode, &n.to_string()]);
    // The group first: it must outlive the instance that enables its event.
    let mut group = ProbeGroup::new(&tfs);
    let name = group.add(&def).unwrap().name.clone();
    let gname = group.group().to_string();
    let (count, file) = {
        let mut inst = Instance::create(&tfs, "common-live", None).unwrap();
        let fmt = inst.event_format(&gname, &name).unwrap();
        inst.set_event_pids(&[w.pid()], true).unwrap();
        inst.enable_event(&gname, &name).unwrap();
        // The kernel refuses to remove an event that is enabled: removal
        // must wait for the instance, and says why if it cannot.
        let busy =
            ftrace_common::lifecycle::dynevent::remove_event(&tfs, def.kind.file(), &gname, &name)
                .unwrap_err();
        assert_eq!(busy.kind(), ErrorKind::Busy, "{busy}");
        let mut reader = inst.reader().unwrap();
        inst.start().unwrap();
        w.go();
        assert_eq!(w.wait(), n);
        // The workload has finished: one round, then the final drain.
        let mut rounds = 0;
        let mut stop = || {
            rounds += 1;
            rounds > 1
        };
        let mut sink = Count { id: fmt.id, n: 0 };
        let summary = stream(
            &mut reader,
            &mut sink,
            StreamOpts {
                stop_when: Some(&mut stop),
                ..StreamOpts::default()
            },
        )
        .unwrap();
        assert_eq!(summary.lost(), 0);
        (sink.n, def.kind.file())
    };
    assert!(listed(file, &gname), "still listed while the group lives");
    drop(group);
    assert!(!listed(file, &gname), "the probe was not removed");
    count
}

#[test]
fn uprobe_through_common_fires_exactly_and_is_removed() {
    require_tracing!(UprobeEvents, Instances);
    let wl = support::workload_bin();
    let elf = ElfFile::open(&wl).unwrap();
    let at = elf.resolve("ftt_probe_target", false).unwrap();
    let def = ProbeDef {
        kind: ProbeKind::Uprobe,
        name: "target".into(),
        location: format!("{}:{:#x}", wl.display(), at.offset),
        args: vec!["x=%di:u64".into()],
    };
    assert_eq!(count_probe_hits(def.clone(), "call", 2500), 2500);
    let ret = ProbeDef {
        kind: ProbeKind::Uretprobe,
        args: vec!["ret=$retval:u64".into()],
        ..def
    };
    assert_eq!(count_probe_hits(ret, "call", 700), 700);
}

#[test]
fn kprobe_through_common_fires_exactly_and_is_removed() {
    require_tracing!(KprobeEvents, Instances);
    // The getppid system call's function has a different name on each
    // architecture and version; take the one this kernel has.
    let syms = std::fs::read_to_string("/proc/kallsyms").unwrap();
    let func = ["__x64_sys_getppid", "__arm64_sys_getppid", "sys_getppid"]
        .into_iter()
        .find(|f| syms.lines().any(|l| l.split_whitespace().nth(2) == Some(f)))
        .expect("a getppid function in kallsyms");
    let def = ProbeDef {
        kind: ProbeKind::Kprobe,
        name: "getppid".into(),
        location: func.into(),
        args: vec![],
    };
    assert_eq!(count_probe_hits(def, "getppid", 3000), 3000);
}

#[test]
fn a_rejected_probe_shows_the_kernels_reason_and_leaves_nothing() {
    require_tracing!(UprobeEvents);
    let tfs = support::tracefs().unwrap();
    let wl = support::workload_bin();
    let mut group = ProbeGroup::new(&tfs);
    let gname = group.group().to_string();
    let e = group
        .add(&ProbeDef {
            kind: ProbeKind::Uprobe,
            name: "bad".into(),
            location: format!("{}:0x0", wl.display()),
            args: vec!["+0(%nosuchreg):string".into()],
        })
        .unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(e.message().contains("the kernel rejected the probe"), "{e}");
    assert!(
        e.message().contains("Command:"),
        "no error_log text in: {e}"
    );
    let e = group
        .add(&ProbeDef {
            kind: ProbeKind::Uprobe,
            name: "inject".into(),
            location: format!("{}:0x0", wl.display()),
            args: vec!["%di\n-:uprobes/other".into()],
        })
        .unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(e.message().contains("control character"), "{e}");
    assert!(!listed("uprobe_events", &gname));
}

#[test]
fn not_root_is_one_clear_line_and_exit_2() {
    require!(
        support::is_root(),
        "needs root to switch to an unprivileged user"
    );
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(support::bin("tpoint"));
    cmd.args(["syscalls:sys_enter_getppid"]);
    // SAFETY: setuid/setgid are async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setgid(65534) != 0 || libc::setuid(65534) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = match cmd.output() {
        Ok(o) => o,
        Err(e) => {
            support::skip(&format!("cannot run the tool as nobody here: {e}"));
            return;
        }
    };
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("needs root"), "{err}");
}

#[test]
fn captured_kernel_buffers_exist_for_the_host() {
    // The unit tests parse sub-buffers captured from each kernel; make sure
    // the host's are there (capture them with tests/vm/capture-testdata).
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("common/testdata/kernels");
    let n = std::fs::read_dir(&root).map(|r| r.count()).unwrap_or(0);
    assert!(n >= 1, "no captured kernel data under {}", root.display());
}

/// The README's table of features and first kernels, as (name, (major, minor)).
fn readme_feature_table() -> Vec<(String, (u32, u32))> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let table = readme
        .split("### Features and the first kernel that has them")
        .nth(1)
        .expect("README has the table of features and kernels");
    table
        .lines()
        .skip_while(|l| !l.starts_with("| feature |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            let name = cells[0].trim_matches('`').to_string();
            let (a, b) = cells[cells.len() - 1].split_once('.').expect(l);
            (name, (a.parse().expect(l), b.parse().expect(l)))
        })
        .collect()
}

#[test]
fn readme_feature_table_is_the_one_the_checks_use() {
    use ftrace_common::kernel::caps::Feature;
    let table = readme_feature_table();
    let want: Vec<(String, (u32, u32))> = Feature::ALL
        .iter()
        .map(|f| (f.name().to_string(), f.since()))
        .collect();
    assert_eq!(
        table, want,
        "README's feature table and Feature::since() disagree"
    );
}

/// On the running kernel, a feature present where the table says it came
/// later would prove the table wrong.
#[test]
fn no_feature_is_present_before_the_table_says() {
    use ftrace_common::kernel::caps::{check, Feature};
    use ftrace_common::kernel::config::{release, version};
    let Some(tfs) = support::tracefs() else {
        return support::skip("needs root and tracefs");
    };
    let running = version(&release()).expect("kernel version");
    for f in Feature::ALL {
        if check(&tfs, f).is_yes() {
            assert!(
                running >= f.since(),
                "{} is present on {running:?}, but the table says it came in {:?}",
                f.name(),
                f.since()
            );
        }
    }
}
