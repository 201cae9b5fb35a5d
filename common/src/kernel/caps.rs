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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    /// `kprobe_events` (kprobes and kretprobes).
    KprobeEvents,
    /// `uprobe_events` (uprobes and uretprobes).
    UprobeEvents,
    /// The function tracer, really usable (not only listed).
    FunctionTracer,
    /// The function_graph tracer.
    FunctionGraph,
    /// The function profiler (`function_profile_enabled`).
    FunctionProfiler,
    /// Hist triggers (`events/*/*/hist`).
    HistTriggers,
    /// Synthetic events (`synthetic_events`), with hist variables,
    /// `common_timestamp` and `onmatch()` (Linux 4.17).
    SynthEvents,
    /// `syscalls:sys_enter_*` / `sys_exit_*` tracepoints.
    SyscallTracepoints,
    /// `raw_syscalls:sys_enter` / `sys_exit`.
    RawSyscalls,
    /// `block:*` tracepoints.
    BlockTracepoints,
    /// Tracing instances (`instances/`).
    Instances,
    /// Kernel stack traces on events (`options/stacktrace`).
    KernelStacks,
    /// User stack traces on events (`options/userstacktrace`).
    UserStacks,
}

impl Feature {
    /// Every feature, in the order reports list them.
    pub const ALL: [Feature; 13] = [
        Feature::KprobeEvents,
        Feature::UprobeEvents,
        Feature::FunctionTracer,
        Feature::FunctionGraph,
        Feature::FunctionProfiler,
        Feature::HistTriggers,
        Feature::SynthEvents,
        Feature::SyscallTracepoints,
        Feature::RawSyscalls,
        Feature::BlockTracepoints,
        Feature::Instances,
        Feature::KernelStacks,
        Feature::UserStacks,
    ];

    /// A short name for reports (`kprobe-events`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Feature::KprobeEvents => "kprobe-events",
            Feature::UprobeEvents => "uprobe-events",
            Feature::FunctionTracer => "function-tracer",
            Feature::FunctionGraph => "function-graph",
            Feature::FunctionProfiler => "function-profiler",
            Feature::HistTriggers => "hist-triggers",
            Feature::SynthEvents => "synthetic-events",
            Feature::SyscallTracepoints => "syscall-tracepoints",
            Feature::RawSyscalls => "raw-syscalls",
            Feature::BlockTracepoints => "block-tracepoints",
            Feature::Instances => "instances",
            Feature::KernelStacks => "kernel-stacks",
            Feature::UserStacks => "user-stacks",
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

/// Checks one feature of the kernel behind `tfs`.
pub fn check(tfs: &Tracefs, feature: Feature) -> Support {
    match feature {
        Feature::KprobeEvents => {
            if tfs.exists("kprobe_events") {
                Support::Yes
            } else {
                no("kprobe events", "CONFIG_KPROBE_EVENTS")
            }
        }
        Feature::UprobeEvents => {
            if tfs.exists("uprobe_events") {
                Support::Yes
            } else {
                no("uprobe events", "CONFIG_UPROBE_EVENTS")
            }
        }
        Feature::FunctionTracer => function_tracer(tfs),
        Feature::FunctionGraph => match function_tracer(tfs) {
            Support::Yes if tracer_listed(tfs, "function_graph") => Support::Yes,
            Support::Yes => no("function_graph tracer", "CONFIG_FUNCTION_GRAPH_TRACER"),
            Support::No(why) => Support::No(format!("{why}; function_graph needs it")),
        },
        Feature::FunctionProfiler => {
            if tfs.exists("function_profile_enabled") {
                Support::Yes
            } else {
                no("function profiler", "CONFIG_FUNCTION_PROFILER")
            }
        }
        Feature::HistTriggers => {
            let has = ["sched/sched_switch/hist", "raw_syscalls/sys_enter/hist"]
                .iter()
                .any(|p| tfs.exists(format!("events/{p}")));
            if has {
                Support::Yes
            } else {
                no("hist triggers", "CONFIG_HIST_TRIGGERS")
            }
        }
        Feature::SynthEvents => match check(tfs, Feature::HistTriggers) {
            Support::Yes if tfs.exists("synthetic_events") => Support::Yes,
            Support::Yes => no(
                "synthetic events",
                "CONFIG_SYNTH_EVENTS, Linux 4.17 or later",
            ),
            Support::No(why) => Support::No(format!("{why}; synthetic events need them")),
        },
        Feature::SyscallTracepoints => {
            if tfs.exists("events/syscalls/sys_enter_getppid") {
                Support::Yes
            } else {
                no("syscall tracepoints", "CONFIG_FTRACE_SYSCALLS")
            }
        }
        Feature::RawSyscalls => {
            if tfs.exists("events/raw_syscalls/sys_enter") {
                Support::Yes
            } else {
                no("raw_syscalls tracepoints", "CONFIG_FTRACE_SYSCALLS")
            }
        }
        Feature::BlockTracepoints => {
            if tfs.exists("events/block/block_rq_complete") {
                Support::Yes
            } else {
                no("block tracepoints", "CONFIG_BLOCK")
            }
        }
        Feature::Instances => {
            if tfs.exists("instances") {
                Support::Yes
            } else {
                no("tracing instances", "CONFIG_TRACING, kernel 3.10 or later")
            }
        }
        Feature::KernelStacks => {
            if tfs.exists("options/stacktrace") {
                Support::Yes
            } else {
                no("kernel stack traces for events", "CONFIG_STACKTRACE")
            }
        }
        Feature::UserStacks => {
            if tfs.exists("options/userstacktrace") {
                Support::Yes
            } else {
                no(
                    "user stack traces for events",
                    "CONFIG_USER_STACKTRACE_SUPPORT",
                )
            }
        }
    }
}

/// Like [`check`], but an error for a missing feature.
pub fn require(tfs: &Tracefs, feature: Feature) -> Result<()> {
    match check(tfs, feature) {
        Support::Yes => Ok(()),
        Support::No(why) => Err(Error::unsupported(why)),
    }
}

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
            "this kernel has no kprobe events (CONFIG_KPROBE_EVENTS)"
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
