//! What PATTERN names, and the two probes of each function it matches.
//! The matching itself is common's, shared with funccount: kernel
//! functions from `available_filter_functions` (or kallsyms), user
//! functions from the target's ELF symbols, as uprobe resolves them.

use ftrace_common::base::pattern::Matcher;
use ftrace_common::kernel::tracefs::Tracefs;
use ftrace_common::lifecycle::dynevent::{ProbeDef, ProbeKind};
use ftrace_common::probes::event::{self, EventArg};
use ftrace_common::probes::kfuncs::Functions;
use ftrace_common::probes::{kprobe, uprobe};
use ftrace_common::{Error, Result};
use std::collections::HashMap;

/// The most functions one run times (two probes each).
pub const MAX_FUNCTIONS: usize = 1000;

/// PATTERN, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Kernel functions.
    Kernel(String),
    /// User functions of a program or library.
    User {
        /// The program, library or path, as uprobe takes it.
        target: String,
        /// The function (pattern).
        func: String,
    },
}

/// One function timed: its name as printed and its two probes.
#[derive(Debug, Clone)]
pub struct Func {
    /// The function's name (`vfs_read`, `usleep`).
    pub shown: String,
    /// The entry probe.
    pub entry: ProbeDef,
    /// The return probe.
    pub ret: ProbeDef,
}

impl Target {
    /// Parses PATTERN: `FUNC` (kernel) or `TARGET:FUNC` (user).
    pub fn parse(text: &str) -> Result<Target> {
        let t = text.trim();
        if t.is_empty() || t.contains(char::is_whitespace) || t.contains(char::is_control) {
            return Err(Error::usage(format!(
                "'{}' is not a function: give a kernel function (vfs_read, 'vfs_*') or LIB:SYMBOL (libc:malloc, 'libc:mall*')",
                text.escape_debug()
            )));
        }
        if !t.contains(':') {
            return Ok(Target::Kernel(t.to_string()));
        }
        // uprobe's own split (a path may hold ':'), through its parser.
        let EventArg {
            kind: event::Kind::Uprobe(d),
            ..
        } = event::parse(&format!("u:{t}"))?
        else {
            return Err(Error::usage(format!("'{t}' is not LIB:SYMBOL")));
        };
        Ok(Target::User {
            target: d.location.target,
            func: d.location.symbol,
        })
    }

    /// The functions matched, with their probes: checked (the kernel
    /// function exists, the user symbol resolves, in `pid`'s files with
    /// -p). A name without glob characters (and without -r) is one
    /// function, checked as kprobe and uprobe check theirs.
    pub fn functions(&self, tfs: &Tracefs, regex: bool, pid: Option<u32>) -> Result<Vec<Func>> {
        let funcs = match self {
            Target::Kernel(p) => {
                let m = Matcher::new(p, regex)?;
                if m.is_pattern() {
                    ftrace_common::kernel::caps::require(
                        tfs,
                        ftrace_common::kernel::caps::Feature::KprobeEvents,
                    )?;
                    let list = Functions::load(tfs.read("available_filter_functions").ok());
                    list.matching(p, &m)?
                        .into_iter()
                        .map(kernel_func)
                        .collect::<Result<Vec<_>>>()?
                } else {
                    let plan = |letter: &str| -> Result<ProbeDef> {
                        let ev = event::parse(&format!("{letter}:{p}"))?;
                        event::plan(tfs, &ev, pid)?
                            .ok_or_else(|| Error::usage(format!("{p}: no probe")))
                    };
                    vec![Func {
                        shown: p.clone(),
                        entry: plan("k")?,
                        ret: plan("kr")?,
                    }]
                }
            }
            Target::User { target, func } => {
                ftrace_common::kernel::caps::require(
                    tfs,
                    ftrace_common::kernel::caps::Feature::UprobeEvents,
                )?;
                let (t, found) = uprobe::matching(target, func, regex, pid, &mut HashMap::new())?;
                let path = t.path.display().to_string();
                found
                    .into_iter()
                    .map(|(name, off)| user_func(target, &path, name, off))
                    .collect::<Result<Vec<_>>>()?
            }
        };
        if funcs.len() > MAX_FUNCTIONS {
            return Err(Error::usage(format!(
                "'{}' matches {} functions: funclatency times at most {MAX_FUNCTIONS} (two probes each); narrow the pattern",
                self.text(),
                funcs.len()
            )));
        }
        Ok(funcs)
    }

    /// The pattern as given.
    pub fn text(&self) -> String {
        match self {
            Target::Kernel(p) => p.clone(),
            Target::User { target, func } => format!("{target}:{func}"),
        }
    }
}

/// The kprobe and kretprobe of a kernel function found in the lists.
fn kernel_func(name: String) -> Result<Func> {
    let def = |letter: &str| -> Result<ProbeDef> {
        let d = kprobe::parse(&format!("{letter}:{name}"))?;
        Ok(kprobe::probe(&d, kprobe::default_name(&d)))
    };
    Ok(Func {
        entry: def("p")?,
        ret: def("r")?,
        shown: name,
    })
}

/// The uprobe and uretprobe of a user function at `off` in `path`.
fn user_func(target: &str, path: &str, name: String, off: u64) -> Result<Func> {
    let def = |kind: kprobe::Kind, pkind: ProbeKind| -> Result<ProbeDef> {
        let d = uprobe::Definition {
            kind,
            name: None,
            location: uprobe::Place {
                target: target.to_string(),
                symbol: name.clone(),
            },
            args: Vec::new(),
            filter: None,
        };
        let p = ProbeDef {
            kind: pkind,
            name: uprobe::default_name(&d),
            location: format!("{path}:{off:#x}"),
            args: Vec::new(),
        };
        // Refuse a line that could not be written before touching tracefs.
        p.line("ftrace_tools_check")?;
        Ok(p)
    };
    Ok(Func {
        entry: def(kprobe::Kind::Entry, ProbeKind::Uprobe)?,
        ret: def(kprobe::Kind::Return, ProbeKind::Uretprobe)?,
        shown: name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_and_user_patterns() {
        assert_eq!(
            Target::parse("vfs_fstat*").unwrap(),
            Target::Kernel("vfs_fstat*".into())
        );
        assert_eq!(
            Target::parse("libc:mall*").unwrap(),
            Target::User {
                target: "libc".into(),
                func: "mall*".into()
            }
        );
        assert_eq!(
            Target::parse("/usr/bin/bash:readline").unwrap().text(),
            "/usr/bin/bash:readline"
        );
        for bad in ["", " ", "a b", "libc:", ":x", "vfs\nx"] {
            assert_eq!(Target::parse(bad).unwrap_err().exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn probes_of_a_kernel_function() {
        let f = kernel_func("vfs_read".into()).unwrap();
        assert_eq!(f.entry.kind, ProbeKind::Kprobe);
        assert_eq!(f.ret.kind, ProbeKind::Kretprobe);
        assert_eq!(
            (&*f.entry.location, &*f.ret.location),
            ("vfs_read", "vfs_read")
        );
        let f = user_func("libc", "/lib/libc.so.6", "usleep".into(), 0x10).unwrap();
        assert_eq!(f.ret.location, "/lib/libc.so.6:0x10");
        assert_eq!(f.entry.name, "p_libc_usleep");
        assert_eq!(f.ret.name, "r_libc_usleep");
    }
}
