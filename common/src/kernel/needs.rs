//! What each tool of the suite needs of the kernel: one table, read both
//! by the tools' own checks (so a tool refuses exactly when its row says
//! it cannot run) and by `ftrace-status` (which says, per tool, whether it
//! works here, works with limits, or cannot run).
//!
//! A row has the features without which the tool cannot run at all
//! (`required`), and those that only some of its options or targets need
//! (`optional`, each with what it gives). A tool checks its required
//! features with [`Needs::require`] and an optional one, when the run asks
//! for what it gives, with [`Needs::require_optional`] or [`Needs::has`].

use crate::base::error::Result;
use crate::kernel::caps::{self, Feature, Support};
use crate::kernel::tracefs::Tracefs;

/// One tool's row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needs {
    /// The tool's name (its crate and binary).
    pub tool: &'static str,
    /// Without any of these the tool cannot run.
    pub required: &'static [Feature],
    /// Each of these, when missing, takes away what it gives.
    pub optional: &'static [Optional],
}

/// A feature that only part of a tool needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Optional {
    /// The feature.
    pub feature: Feature,
    /// What it gives the tool (an option, a kind of target).
    pub gives: &'static str,
}

const fn opt(feature: Feature, gives: &'static str) -> Optional {
    Optional { feature, gives }
}

/// `tpoint`.
pub const TPOINT: Needs = Needs {
    tool: "tpoint",
    required: &[Feature::Instances, Feature::TracePipeRaw],
    optional: &[
        opt(Feature::KernelStacks, "-s (kernel stacks)"),
        opt(
            Feature::ErrorLog,
            "the kernel's reason for a rejected filter",
        ),
    ],
};

/// `uprobe`.
pub const UPROBE: Needs = Needs {
    tool: "uprobe",
    required: &[
        Feature::UprobeEvents,
        Feature::Instances,
        Feature::TracePipeRaw,
    ],
    optional: &[
        opt(Feature::UserStacks, "-s (user stacks)"),
        opt(
            Feature::ErrorLog,
            "the kernel's reason for a rejected probe or filter",
        ),
    ],
};

/// `kprobe`.
pub const KPROBE: Needs = Needs {
    tool: "kprobe",
    required: &[
        Feature::KprobeEvents,
        Feature::Instances,
        Feature::TracePipeRaw,
    ],
    optional: &[
        opt(Feature::KernelStacks, "-s (kernel stacks)"),
        opt(
            Feature::ErrorLog,
            "the kernel's reason for a rejected probe or filter",
        ),
    ],
};

/// `syscount`.
pub const SYSCOUNT: Needs = Needs {
    tool: "syscount",
    required: &[
        Feature::RawSyscalls,
        Feature::Instances,
        Feature::TracePipeRaw,
    ],
    optional: &[opt(
        Feature::HistTriggers,
        "counts kept in the kernel (else counted from the buffer, at more cost)",
    )],
};

/// `iosnoop`.
pub const IOSNOOP: Needs = Needs {
    tool: "iosnoop",
    required: &[
        Feature::BlockTracepoints,
        Feature::Instances,
        Feature::TracePipeRaw,
    ],
    optional: &[],
};

/// `funccount`: tracepoints (`t:`) need nothing more than instances.
pub const FUNCCOUNT: Needs = Needs {
    tool: "funccount",
    required: &[Feature::Instances],
    optional: &[
        opt(Feature::FunctionTracer, "kernel functions"),
        opt(
            Feature::FunctionProfiler,
            "--method profiler (kernel functions counted in the kernel)",
        ),
        opt(Feature::KprobeEvents, "--method kprobe"),
        opt(Feature::UprobeEvents, "u: user functions"),
    ],
};

/// `funcgraph`.
pub const FUNCGRAPH: Needs = Needs {
    tool: "funcgraph",
    required: &[Feature::FunctionGraph, Feature::TracePipeRaw],
    optional: &[
        opt(
            Feature::GraphInInstances,
            "a private instance (else the top level, taken only when nobody else uses it)",
        ),
        opt(Feature::GraphRetval, "--retval (return values)"),
    ],
};

/// `funcslower`: funcgraph's engine with a threshold.
pub const FUNCSLOWER: Needs = Needs {
    tool: "funcslower",
    required: &[Feature::FunctionGraph, Feature::TracePipeRaw],
    optional: &[
        opt(
            Feature::GraphInInstances,
            "a private instance (else the top level, taken only when nobody else uses it)",
        ),
        opt(Feature::GraphRetval, "return values"),
    ],
};

/// `functrace`: the function tracer in an instance.
pub const FUNCTRACE: Needs = Needs {
    tool: "functrace",
    required: &[
        Feature::FunctionTracer,
        Feature::Instances,
        Feature::TracePipeRaw,
    ],
    optional: &[],
};

/// `hist`: the kernel's tables where it can, else the same from the
/// buffer.
pub const HIST: Needs = Needs {
    tool: "hist",
    required: &[Feature::Instances, Feature::TracePipeRaw],
    optional: &[
        opt(
            Feature::HistTriggers,
            "tables kept by the kernel (--in kernel; else computed from the buffer)",
        ),
        opt(
            Feature::SyntheticEvents,
            "--latency kept by the kernel (else computed from the buffer)",
        ),
        opt(Feature::KprobeEvents, "k: and kr: kernel functions"),
        opt(Feature::UprobeEvents, "u: and ur: user functions"),
    ],
};

/// `funclatency`.
pub const FUNCLATENCY: Needs = Needs {
    tool: "funclatency",
    required: &[Feature::Instances, Feature::TracePipeRaw],
    optional: &[
        opt(Feature::KprobeEvents, "kernel functions"),
        opt(Feature::UprobeEvents, "user functions (LIB:SYMBOL)"),
        opt(
            Feature::SyntheticEvents,
            "histograms kept by the kernel (--in kernel; else computed from the buffer)",
        ),
    ],
};

/// `stackcount`.
pub const STACKCOUNT: Needs = Needs {
    tool: "stackcount",
    required: &[Feature::Instances, Feature::TracePipeRaw],
    optional: &[
        opt(Feature::KprobeEvents, "kernel functions"),
        opt(Feature::UprobeEvents, "user functions (LIB:FUNC)"),
        opt(Feature::KernelStacks, "kernel stacks"),
        opt(Feature::UserStacks, "user stacks (-U)"),
        opt(
            Feature::HistTriggers,
            "kernel stacks counted in the kernel (--in kernel; else from the buffer)",
        ),
    ],
};

/// `offcputime`.
pub const OFFCPUTIME: Needs = Needs {
    tool: "offcputime",
    required: &[Feature::Instances, Feature::TracePipeRaw],
    optional: &[
        opt(Feature::KernelStacks, "kernel stacks"),
        opt(Feature::UserStacks, "user stacks"),
    ],
};

/// `reset-ftrace`: tracefs alone.
pub const RESET_FTRACE: Needs = Needs {
    tool: "reset-ftrace",
    required: &[],
    optional: &[],
};

/// `ftrace-status`: tracefs alone (and without it, it still says what it
/// can).
pub const FTRACE_STATUS: Needs = Needs {
    tool: "ftrace-status",
    required: &[],
    optional: &[],
};

/// `killsnoop`.
pub const KILLSNOOP: Needs = Needs {
    tool: "killsnoop",
    required: &[
        Feature::SyscallTracepoints,
        Feature::Instances,
        Feature::TracePipeRaw,
    ],
    optional: &[],
};

/// `opensnoop`.
pub const OPENSNOOP: Needs = Needs {
    tool: "opensnoop",
    required: &[
        Feature::SyscallTracepoints,
        Feature::Instances,
        Feature::TracePipeRaw,
    ],
    optional: &[opt(
        Feature::KprobeEvents,
        "paths copied in the kernel (else read from the process, best effort)",
    )],
};

/// `execsnoop`.
pub const EXECSNOOP: Needs = Needs {
    tool: "execsnoop",
    required: &[
        Feature::SyscallTracepoints,
        Feature::Instances,
        Feature::TracePipeRaw,
    ],
    optional: &[opt(
        Feature::KprobeEvents,
        "arguments copied in the kernel (else read from /proc, best effort)",
    )],
};

/// `sslsniff`.
pub const SSLSNIFF: Needs = Needs {
    tool: "sslsniff",
    required: &[
        Feature::UprobeEvents,
        Feature::Instances,
        Feature::TracePipeRaw,
    ],
    optional: &[],
};

/// `tcpretrans`: the tcp:tcp_retransmit_skb tracepoint (4.15) is checked
/// by the tool itself, naming it.
pub const TCPRETRANS: Needs = Needs {
    tool: "tcpretrans",
    required: &[Feature::Instances, Feature::TracePipeRaw],
    optional: &[
        opt(
            Feature::KprobeEvents,
            "-l (tail loss probes: a kprobe on tcp_send_loss_probe)",
        ),
        opt(Feature::KernelStacks, "-s (kernel stacks)"),
    ],
};

/// `iolatency`.
pub const IOLATENCY: Needs = Needs {
    tool: "iolatency",
    required: &[
        Feature::BlockTracepoints,
        Feature::Instances,
        Feature::TracePipeRaw,
    ],
    optional: &[opt(
        Feature::SyntheticEvents,
        "latency counted by the kernel (--in kernel; else paired from the buffer)",
    )],
};

/// `bitesize`.
pub const BITESIZE: Needs = Needs {
    tool: "bitesize",
    required: &[
        Feature::BlockTracepoints,
        Feature::Instances,
        Feature::TracePipeRaw,
    ],
    optional: &[opt(
        Feature::HistTriggers,
        "sizes counted by the kernel (--in kernel; else counted from the buffer)",
    )],
};

/// `cachestat`: page accesses have no tracepoint, so kprobes are required.
pub const CACHESTAT: Needs = Needs {
    tool: "cachestat",
    required: &[
        Feature::KprobeEvents,
        Feature::Instances,
        Feature::TracePipeRaw,
    ],
    optional: &[],
};

/// Every tool of the suite, in the order reports list them.
pub const TOOLS: &[Needs] = &[
    TPOINT,
    UPROBE,
    KPROBE,
    SYSCOUNT,
    IOSNOOP,
    FUNCCOUNT,
    FUNCGRAPH,
    FUNCSLOWER,
    FUNCTRACE,
    HIST,
    FUNCLATENCY,
    KILLSNOOP,
    OPENSNOOP,
    EXECSNOOP,
    STACKCOUNT,
    OFFCPUTIME,
    SSLSNIFF,
    TCPRETRANS,
    RESET_FTRACE,
    FTRACE_STATUS,
    IOLATENCY,
    BITESIZE,
    CACHESTAT,
];

/// Whether a tool can run on a kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Everything it can do.
    Works,
    /// It runs, without what the missing optional features give.
    Limited(Vec<Limit>),
    /// It cannot run: the reasons of the required features missing.
    Cannot(Vec<String>),
}

/// Something a tool cannot do here, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    /// What the missing feature gives.
    pub gives: &'static str,
    /// Why it is missing.
    pub why: String,
}

impl Needs {
    /// Checks the required features: the first missing one is the error
    /// (exit 2, naming its kernel option and `ftrace-status`).
    pub fn require(&self, tfs: &Tracefs) -> Result<()> {
        for f in self.required {
            caps::require(tfs, *f)?;
        }
        Ok(())
    }

    /// Checks an optional feature that the run asks for.
    pub fn require_optional(&self, tfs: &Tracefs, feature: Feature) -> Result<()> {
        match self.has(tfs, feature) {
            Support::Yes => Ok(()),
            Support::No(why) => Err(caps::unsupported(why)),
        }
    }

    /// Whether an optional feature is there (for a tool that does
    /// without it).
    pub fn has(&self, tfs: &Tracefs, feature: Feature) -> Support {
        debug_assert!(
            self.optional.iter().any(|o| o.feature == feature),
            "{}: {feature:?} is not in its row of kernel::needs::TOOLS",
            self.tool
        );
        caps::check(tfs, feature)
    }

    /// The verdict, from the answers for each feature.
    pub fn verdict(&self, answer: &dyn Fn(Feature) -> Support) -> Verdict {
        let missing: Vec<String> = self
            .required
            .iter()
            .filter_map(|f| match answer(*f) {
                Support::Yes => None,
                Support::No(why) => Some(why),
            })
            .collect();
        if !missing.is_empty() {
            return Verdict::Cannot(missing);
        }
        let limits: Vec<Limit> = self
            .optional
            .iter()
            .filter_map(|o| match answer(o.feature) {
                Support::Yes => None,
                Support::No(why) => Some(Limit {
                    gives: o.gives,
                    why,
                }),
            })
            .collect();
        if limits.is_empty() {
            Verdict::Works
        } else {
            Verdict::Limited(limits)
        }
    }
}

/// Every feature some tool needs or may use.
pub fn used_features() -> Vec<Feature> {
    Feature::ALL
        .into_iter()
        .filter(|f| {
            TOOLS
                .iter()
                .any(|t| t.required.contains(f) || t.optional.iter().any(|o| o.feature == *f))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn tools_dir() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools")
    }

    #[test]
    fn every_tool_has_a_row_and_checks_with_it() {
        let mut dirs: Vec<String> = std::fs::read_dir(tools_dir())
            .unwrap()
            .flatten()
            .filter(|e| e.path().join("Cargo.toml").exists())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            // The multi-call binary: every tool, not one.
            .filter(|n| n != "ftrace-tools")
            .collect();
        dirs.sort();
        let mut rows: Vec<String> = TOOLS.iter().map(|t| t.tool.to_string()).collect();
        rows.sort();
        assert_eq!(dirs, rows, "tools/ and kernel::needs::TOOLS differ");
        // Each tool checks the kernel through its own row.
        for t in TOOLS {
            let konst = t.tool.to_uppercase().replace('-', "_");
            let src = tools_dir().join(t.tool).join("src");
            let mut text = String::new();
            for e in std::fs::read_dir(&src).unwrap().flatten() {
                text.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
            }
            assert!(
                text.contains(&format!("needs::{konst}")),
                "{}: its checks do not use needs::{konst}",
                t.tool
            );
        }
    }

    #[test]
    fn verdicts_follow_the_row() {
        let none = |_| Support::Yes;
        assert_eq!(TPOINT.verdict(&none), Verdict::Works);
        let no_stacks = |f| {
            if f == Feature::KernelStacks {
                Support::No("no stacks".into())
            } else {
                Support::Yes
            }
        };
        assert_eq!(
            TPOINT.verdict(&no_stacks),
            Verdict::Limited(vec![Limit {
                gives: "-s (kernel stacks)",
                why: "no stacks".into()
            }])
        );
        let no_kprobes = |f| {
            if f == Feature::KprobeEvents {
                Support::No("no kprobes".into())
            } else {
                Support::Yes
            }
        };
        assert_eq!(
            KPROBE.verdict(&no_kprobes),
            Verdict::Cannot(vec!["no kprobes".into()])
        );
        assert!(matches!(
            FUNCCOUNT.verdict(&no_kprobes),
            Verdict::Limited(_)
        ));
        assert!(used_features().contains(&Feature::HistTriggers));
        assert!(!used_features().contains(&Feature::EprobeEvents));
    }
}
