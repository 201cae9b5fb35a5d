//! What the running kernel's tracing can do, and why not when it cannot.
//!
//! Every check is a read (or a `stat`): detecting a feature never changes
//! kernel state. A missing feature becomes an [`Error`] whose sentence names
//! the kernel option a user would need.

use crate::base::error::{Error, Result};
use crate::kernel::tracefs::Tracefs;
use std::fs::File;
use std::io::Read;

/// A tracing feature the tools may need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Feature {
    /// Tracing instances (`instances/`).
    Instances,
    /// The binary per-CPU buffers (`per_cpu/cpuN/trace_pipe_raw`).
    TracePipeRaw,
    /// The kernel's reasons for rejected commands (`error_log`).
    ErrorLog,
    /// PIDs whose events are not recorded (`set_event_notrace_pid`): a
    /// tool's own reads of the buffer kept out of its trace.
    EventNotracePid,
    /// `kprobe_events` (kprobes and kretprobes).
    KprobeEvents,
    /// `uprobe_events` (uprobes and uretprobes).
    UprobeEvents,
    /// `dynamic_events`, the one file of every kind of dynamic event.
    DynamicEvents,
    /// fprobe events (`f:` in `dynamic_events`).
    FprobeEvents,
    /// Event probes (`e:` in `dynamic_events`).
    EprobeEvents,
    /// Probe arguments by name, from BTF (`p:open do_sys_open filename`).
    BtfArgs,
    /// `$argN` in kernel return probes.
    ReturnProbeArgs,
    /// The function tracer, really usable (not only listed).
    FunctionTracer,
    /// The function_graph tracer.
    FunctionGraph,
    /// function_graph in an instance of its own (not only at the top level).
    GraphInInstances,
    /// Return values in function_graph's exit events.
    GraphRetval,
    /// The function profiler (`function_profile_enabled`).
    FunctionProfiler,
    /// Hist triggers (`events/*/*/hist`).
    HistTriggers,
    /// Synthetic events (`synthetic_events`), with hist variables,
    /// `common_timestamp` and `onmatch()` (Linux 4.17; needs hist triggers).
    SyntheticEvents,
    /// Kernel stack traces on events (`options/stacktrace`).
    KernelStacks,
    /// User stack traces on events (`options/userstacktrace`).
    UserStacks,
    /// `syscalls:sys_enter_*` / `sys_exit_*` tracepoints.
    SyscallTracepoints,
    /// `raw_syscalls:sys_enter` / `sys_exit`.
    RawSyscalls,
    /// `block:*` tracepoints.
    BlockTracepoints,
}

impl Feature {
    /// Every feature, in the order reports list them.
    pub const ALL: [Feature; 23] = [
        Feature::Instances,
        Feature::TracePipeRaw,
        Feature::ErrorLog,
        Feature::EventNotracePid,
        Feature::KprobeEvents,
        Feature::UprobeEvents,
        Feature::DynamicEvents,
        Feature::FprobeEvents,
        Feature::EprobeEvents,
        Feature::BtfArgs,
        Feature::ReturnProbeArgs,
        Feature::FunctionTracer,
        Feature::FunctionGraph,
        Feature::GraphInInstances,
        Feature::GraphRetval,
        Feature::FunctionProfiler,
        Feature::HistTriggers,
        Feature::SyntheticEvents,
        Feature::KernelStacks,
        Feature::UserStacks,
        Feature::SyscallTracepoints,
        Feature::RawSyscalls,
        Feature::BlockTracepoints,
    ];

    /// A short name for reports (`kprobe-events`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Feature::Instances => "instances",
            Feature::TracePipeRaw => "trace-pipe-raw",
            Feature::ErrorLog => "error-log",
            Feature::EventNotracePid => "event-notrace-pid",
            Feature::KprobeEvents => "kprobe-events",
            Feature::UprobeEvents => "uprobe-events",
            Feature::DynamicEvents => "dynamic-events",
            Feature::FprobeEvents => "fprobe-events",
            Feature::EprobeEvents => "eprobe-events",
            Feature::BtfArgs => "btf-args",
            Feature::ReturnProbeArgs => "return-probe-args",
            Feature::FunctionTracer => "function-tracer",
            Feature::FunctionGraph => "function-graph",
            Feature::GraphInInstances => "function-graph-in-instances",
            Feature::GraphRetval => "function-graph-retval",
            Feature::FunctionProfiler => "function-profiler",
            Feature::HistTriggers => "hist-triggers",
            Feature::SyntheticEvents => "synthetic-events",
            Feature::KernelStacks => "kernel-stacks",
            Feature::UserStacks => "user-stacks",
            Feature::SyscallTracepoints => "syscall-tracepoints",
            Feature::RawSyscalls => "raw-syscalls",
            Feature::BlockTracepoints => "block-tracepoints",
        }
    }

    /// The first mainline Linux release with the feature (x86-64). The
    /// README's table of features and kernels is checked against this,
    /// and the checks' messages name it.
    pub fn since(self) -> (u32, u32) {
        match self {
            Feature::Instances => (3, 10),
            Feature::TracePipeRaw => (2, 6),
            Feature::ErrorLog => (5, 2),
            Feature::EventNotracePid => (5, 8),
            Feature::KprobeEvents => (2, 6),
            Feature::UprobeEvents => (3, 5),
            Feature::DynamicEvents => (5, 0),
            Feature::FprobeEvents => (6, 4),
            Feature::EprobeEvents => (5, 15),
            Feature::BtfArgs => (6, 6),
            Feature::ReturnProbeArgs => (6, 10),
            Feature::FunctionTracer => (2, 6),
            Feature::FunctionGraph => (2, 6),
            Feature::GraphInInstances => (6, 11),
            Feature::GraphRetval => (6, 5),
            Feature::FunctionProfiler => (2, 6),
            Feature::HistTriggers => (4, 7),
            Feature::SyntheticEvents => (4, 17),
            Feature::KernelStacks => (2, 6),
            Feature::UserStacks => (2, 6),
            Feature::SyscallTracepoints => (2, 6),
            Feature::RawSyscalls => (2, 6),
            Feature::BlockTracepoints => (2, 6),
        }
    }

    /// `Linux X.Y or later`, for messages.
    pub fn since_text(self) -> String {
        let (a, b) = self.since();
        format!("Linux {a}.{b} or later")
    }

    /// The kernel options behind the feature, outermost first: with the
    /// kernel's config at hand, the first one not set is the reason.
    pub fn options(self) -> &'static [&'static str] {
        match self {
            Feature::Instances
            | Feature::TracePipeRaw
            | Feature::ErrorLog
            | Feature::EventNotracePid => &["CONFIG_TRACING"],
            Feature::KprobeEvents => &["CONFIG_KPROBES", "CONFIG_KPROBE_EVENTS"],
            Feature::UprobeEvents => &["CONFIG_UPROBES", "CONFIG_UPROBE_EVENTS"],
            Feature::DynamicEvents => &["CONFIG_DYNAMIC_EVENTS"],
            Feature::FprobeEvents => &["CONFIG_FPROBE", "CONFIG_FPROBE_EVENTS"],
            Feature::EprobeEvents => &["CONFIG_EPROBE_EVENTS"],
            Feature::BtfArgs => &["CONFIG_DEBUG_INFO_BTF", "CONFIG_PROBE_EVENTS_BTF_ARGS"],
            Feature::ReturnProbeArgs => &[
                "CONFIG_HAVE_FUNCTION_ARG_ACCESS_API",
                "CONFIG_KPROBES",
                "CONFIG_KPROBE_EVENTS",
            ],
            Feature::FunctionTracer => &["CONFIG_FUNCTION_TRACER", "CONFIG_DYNAMIC_FTRACE"],
            Feature::FunctionGraph | Feature::GraphInInstances => {
                &["CONFIG_FUNCTION_TRACER", "CONFIG_FUNCTION_GRAPH_TRACER"]
            }
            Feature::GraphRetval => &[
                "CONFIG_FUNCTION_TRACER",
                "CONFIG_FUNCTION_GRAPH_TRACER",
                "CONFIG_FUNCTION_GRAPH_RETVAL",
            ],
            Feature::FunctionProfiler => &["CONFIG_FUNCTION_TRACER", "CONFIG_FUNCTION_PROFILER"],
            Feature::HistTriggers => &["CONFIG_HIST_TRIGGERS"],
            Feature::SyntheticEvents => &["CONFIG_HIST_TRIGGERS", "CONFIG_SYNTH_EVENTS"],
            Feature::KernelStacks => &["CONFIG_STACKTRACE"],
            Feature::UserStacks => &["CONFIG_USER_STACKTRACE_SUPPORT"],
            Feature::SyscallTracepoints | Feature::RawSyscalls => &["CONFIG_FTRACE_SYSCALLS"],
            Feature::BlockTracepoints => &["CONFIG_BLOCK", "CONFIG_TRACEPOINTS"],
        }
    }
}

/// The answer for one feature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Support {
    /// The kernel has it.
    Yes,
    /// It does not; the sentence says why and names the kernel option.
    No(String),
}

impl Support {
    /// Whether the feature is there.
    pub fn is_yes(&self) -> bool {
        matches!(self, Support::Yes)
    }
}

fn no(what: &str, option: &str) -> Support {
    Support::No(format!("this kernel has no {what} ({option})"))
}

fn yes_if(has: bool, what: &str, option: &str) -> Support {
    if has {
        Support::Yes
    } else {
        no(what, option)
    }
}

/// Whether the tracefs README (the kernel's own summary of what it
/// accepts) has a line containing `text`.
fn readme_has(tfs: &Tracefs, text: &str) -> bool {
    tfs.read("README")
        .map(|r| r.contains(text))
        .unwrap_or(false)
}

/// Checks one feature of the kernel behind `tfs`.
pub fn check(tfs: &Tracefs, feature: Feature) -> Support {
    match feature {
        Feature::Instances => yes_if(
            tfs.exists("instances"),
            "tracing instances",
            &format!("CONFIG_TRACING, {}", Feature::Instances.since_text()),
        ),
        Feature::TracePipeRaw => yes_if(
            tfs.exists("per_cpu/cpu0/trace_pipe_raw"),
            "binary per-CPU buffers (per_cpu/cpuN/trace_pipe_raw)",
            "CONFIG_TRACING",
        ),
        Feature::EventNotracePid => yes_if(
            tfs.exists("set_event_notrace_pid"),
            "set_event_notrace_pid: a tool's own reads of the buffer can show in its trace",
            &Feature::EventNotracePid.since_text(),
        ),
        Feature::ErrorLog => yes_if(
            tfs.exists("error_log"),
            "error_log: a rejected probe or filter comes without the kernel's reason",
            &Feature::ErrorLog.since_text(),
        ),
        Feature::KprobeEvents => yes_if(
            tfs.exists("kprobe_events"),
            "kprobe events",
            "CONFIG_KPROBE_EVENTS",
        ),
        Feature::UprobeEvents => yes_if(
            tfs.exists("uprobe_events"),
            "uprobe events",
            "CONFIG_UPROBE_EVENTS",
        ),
        Feature::DynamicEvents => yes_if(
            tfs.exists("dynamic_events"),
            "dynamic_events file",
            &format!(
                "CONFIG_DYNAMIC_EVENTS, {}",
                Feature::DynamicEvents.since_text()
            ),
        ),
        Feature::FprobeEvents => yes_if(
            tfs.exists("dynamic_events") && readme_has(tfs, "f[:[<group>/][<event>]] <func-name>"),
            "fprobe events",
            &format!(
                "CONFIG_FPROBE_EVENTS, {}",
                Feature::FprobeEvents.since_text()
            ),
        ),
        Feature::EprobeEvents => eprobes(tfs),
        Feature::BtfArgs => {
            let probes = tfs.exists("kprobe_events") || check(tfs, Feature::FprobeEvents).is_yes();
            yes_if(
                probes && readme_has(tfs, "<argname>"),
                "probe arguments by name from BTF",
                &format!(
                    "CONFIG_PROBE_EVENTS_BTF_ARGS with kprobe or fprobe events, {}",
                    Feature::BtfArgs.since_text()
                ),
            )
        }
        Feature::ReturnProbeArgs => {
            if !readme_has(tfs, "return probes support: $retval, $arg<N>") {
                no(
                    "$argN in return probes",
                    &format!(
                        "{}, CONFIG_HAVE_FUNCTION_ARG_ACCESS_API",
                        Feature::ReturnProbeArgs.since_text()
                    ),
                )
            } else if tfs.exists("kprobe_events") || check(tfs, Feature::FprobeEvents).is_yes() {
                Support::Yes
            } else {
                Support::No(
                    "this kernel takes $argN in return probes, but has no kprobe or fprobe \
                     events to use it in (CONFIG_KPROBE_EVENTS, CONFIG_FPROBE_EVENTS)"
                        .into(),
                )
            }
        }
        Feature::FunctionTracer => function_tracer(tfs),
        Feature::FunctionGraph if !tracer_listed(tfs, "function_graph") => {
            no("function_graph tracer", "CONFIG_FUNCTION_GRAPH_TRACER")
        }
        Feature::FunctionGraph => match function_tracer(tfs) {
            Support::Yes => Support::Yes,
            Support::No(why) => Support::No(format!("{why}; function_graph needs it")),
        },
        Feature::GraphInInstances => graph_in_instances(tfs),
        Feature::GraphRetval => match check(tfs, Feature::FunctionGraph) {
            Support::Yes => {
                let fmt = tfs
                    .read("events/ftrace/funcgraph_exit/format")
                    .unwrap_or_default();
                yes_if(
                    fmt.contains(" retval;"),
                    "return values in function_graph's exit events",
                    &format!(
                        "{}, CONFIG_FUNCTION_GRAPH_RETVAL",
                        Feature::GraphRetval.since_text()
                    ),
                )
            }
            no => no,
        },
        Feature::FunctionProfiler => yes_if(
            tfs.exists("function_profile_enabled"),
            "function profiler",
            "CONFIG_FUNCTION_PROFILER",
        ),
        Feature::HistTriggers => yes_if(
            ["sched/sched_switch/hist", "raw_syscalls/sys_enter/hist"]
                .iter()
                .any(|p| tfs.exists(format!("events/{p}"))),
            "hist triggers",
            "CONFIG_HIST_TRIGGERS",
        ),
        // Usable with hist variables, common_timestamp and onmatch()
        // only where hist triggers are (Linux 4.17).
        Feature::SyntheticEvents => match check(tfs, Feature::HistTriggers) {
            Support::Yes => yes_if(
                tfs.exists("synthetic_events"),
                "synthetic events",
                "CONFIG_SYNTH_EVENTS",
            ),
            Support::No(why) => Support::No(format!("{why}; synthetic events need them")),
        },
        Feature::KernelStacks => yes_if(
            tfs.exists("options/stacktrace"),
            "kernel stack traces for events",
            "CONFIG_STACKTRACE",
        ),
        Feature::UserStacks => yes_if(
            tfs.exists("options/userstacktrace"),
            "user stack traces for events",
            "CONFIG_USER_STACKTRACE_SUPPORT",
        ),
        Feature::SyscallTracepoints => yes_if(
            tfs.exists("events/syscalls/sys_enter_getppid"),
            "syscall tracepoints",
            "CONFIG_FTRACE_SYSCALLS",
        ),
        Feature::RawSyscalls => yes_if(
            tfs.exists("events/raw_syscalls/sys_enter"),
            "raw_syscalls tracepoints",
            "CONFIG_FTRACE_SYSCALLS",
        ),
        Feature::BlockTracepoints => yes_if(
            tfs.exists("events/block/block_rq_complete"),
            "block tracepoints",
            "CONFIG_BLOCK",
        ),
    }
}

/// Event probes leave no file of their own, and the README lists them on
/// every kernel: an `e:` event in `dynamic_events` proves them; else the
/// kernel's config says, where it has the option (Linux 6.14 or so made
/// them optional; from 5.15 they came with dynamic events); else the
/// kernel's BTF, which names `struct trace_eprobe` only where they were
/// built.
fn eprobes(tfs: &Tracefs) -> Support {
    let Ok(events) = tfs.read("dynamic_events") else {
        return no("event probes", "CONFIG_EPROBE_EVENTS, needs dynamic_events");
    };
    if events.lines().any(|l| l.starts_with("e:")) {
        return Support::Yes;
    }
    let cfg = crate::kernel::config::KernelConfig::load();
    if let Some(c) = cfg.as_ref().filter(|c| c.knows("CONFIG_EPROBE_EVENTS")) {
        return yes_if(
            c.is_set("CONFIG_EPROBE_EVENTS"),
            "event probes",
            "CONFIG_EPROBE_EVENTS",
        );
    }
    if let Ok(btf) = std::fs::read("/sys/kernel/btf/vmlinux") {
        return yes_if(
            memchr::memmem::find(&btf, b"\0trace_eprobe\0").is_some(),
            "event probes",
            "CONFIG_EPROBE_EVENTS",
        );
    }
    let release = crate::kernel::config::release();
    let version = crate::kernel::config::version(&release).unwrap_or((0, 0));
    let probes = tfs.exists("kprobe_events") || tfs.exists("uprobe_events");
    if version < Feature::EprobeEvents.since() {
        no("event probes", &Feature::EprobeEvents.since_text())
    } else if cfg.is_some() && probes {
        // A config without the option predates it: event probes were
        // built with kprobe and uprobe events then.
        Support::Yes
    } else {
        Support::No(
            "event probes cannot be seen on this kernel without its config or BTF; \
             assume none (CONFIG_EPROBE_EVENTS)"
                .into(),
        )
    }
}

/// function_graph in an instance: an existing instance's tracers say; with
/// no instance to look in (making one would change the kernel's state),
/// the kernel's version does (Linux 6.11 and later).
fn graph_in_instances(tfs: &Tracefs) -> Support {
    if let Support::No(why) = check(tfs, Feature::FunctionGraph) {
        return Support::No(why);
    }
    let first = std::fs::read_dir(tfs.path("instances"))
        .ok()
        .and_then(|mut rd| rd.find_map(|e| e.ok()));
    let has = match first {
        Some(e) => std::fs::read_to_string(e.path().join("available_tracers"))
            .map(|t| t.split_whitespace().any(|t| t == "function_graph"))
            .unwrap_or(false),
        None => crate::kernel::config::version(&crate::kernel::config::release())
            .is_some_and(|v| v >= Feature::GraphInInstances.since()),
    };
    if has {
        Support::Yes
    } else {
        Support::No(format!(
            "this kernel runs function_graph only at the top level, not in an instance ({})",
            Feature::GraphInInstances.since_text()
        ))
    }
}

/// Like [`check`], but an error for a missing feature.
pub fn require(tfs: &Tracefs, feature: Feature) -> Result<()> {
    match check(tfs, feature) {
        Support::Yes => Ok(()),
        Support::No(why) => Err(unsupported(why)),
    }
}

/// The error for a missing feature: the reason, then where to look for
/// the rest.
pub fn unsupported(why: impl std::fmt::Display) -> Error {
    Error::unsupported(format!("{why}; for the whole picture, run {STATUS_TOOL}"))
}

/// The tool that reports everything this kernel can trace.
pub const STATUS_TOOL: &str = "ftrace-status";

fn tracer_listed(tfs: &Tracefs, name: &str) -> bool {
    tfs.read("available_tracers")
        .map(|s| s.split_whitespace().any(|t| t == name))
        .unwrap_or(false)
}

/// The function tracer can be listed in `available_tracers` and still be
/// unusable: on some kernels every use fails with EPERM (ftrace disabled
/// after a fault, or lockdown). Reading `available_filter_functions` fails
/// the same way, without changing anything, so that is the probe.
fn function_tracer(tfs: &Tracefs) -> Support {
    if !tracer_listed(tfs, "function") {
        return no("function tracer", "CONFIG_FUNCTION_TRACER");
    }
    let path = tfs.path("available_filter_functions");
    let mut buf = [0u8; 64];
    match File::open(&path).and_then(|mut f| f.read(&mut buf)) {
        Ok(n) if n > 0 => Support::Yes,
        Ok(_) => Support::No(
            "the function tracer is listed but no function can be traced \
             (available_filter_functions is empty; CONFIG_DYNAMIC_FTRACE)"
                .into(),
        ),
        Err(e) => Support::No(format!(
            "the function tracer is listed but not usable on this kernel: reading \
             available_filter_functions fails ({e}); ftrace may be disabled or the \
             kernel locked down"
        )),
    }
}

/// One line per feature: `name: yes` or `name: no (why)`.
pub fn report(tfs: &Tracefs) -> String {
    let mut out = String::new();
    for f in Feature::ALL {
        match check(tfs, f) {
            Support::Yes => out.push_str(&format!("{}: yes\n", f.name())),
            Support::No(why) => out.push_str(&format!("{}: no ({why})\n", f.name())),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn missing_features_name_their_kernel_option() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("events/syscalls/sys_enter_getppid")).unwrap();
        fs::write(dir.path().join("available_tracers"), "nop function\n").unwrap();
        fs::write(dir.path().join("uprobe_events"), "").unwrap();
        let tfs = Tracefs::at(dir.path());
        assert_eq!(
            require(&tfs, Feature::KprobeEvents)
                .unwrap_err()
                .to_string(),
            "this kernel has no kprobe events (CONFIG_KPROBE_EVENTS); for the whole picture, run ftrace-status"
        );
        assert!(check(&tfs, Feature::UprobeEvents).is_yes());
        assert!(check(&tfs, Feature::SyscallTracepoints).is_yes());
        // Listed but unreadable filter list: not usable.
        match check(&tfs, Feature::FunctionTracer) {
            Support::No(why) => assert!(why.contains("not usable"), "{why}"),
            s => panic!("{s:?}"),
        }
        fs::write(dir.path().join("available_filter_functions"), "vfs_read\n").unwrap();
        assert!(check(&tfs, Feature::FunctionTracer).is_yes());
        match check(&tfs, Feature::FunctionGraph) {
            Support::No(why) => assert!(why.contains("CONFIG_FUNCTION_GRAPH_TRACER")),
            s => panic!("{s:?}"),
        }
        assert_eq!(report(&tfs).lines().count(), Feature::ALL.len());
    }
}
