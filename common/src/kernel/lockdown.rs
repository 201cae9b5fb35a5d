//! The kernel lockdown mode (`/sys/kernel/security/lockdown`), and what it
//! takes away from tracing.
//!
//! - `integrity` keeps tracefs: it blocks what could change the running
//!   kernel (mmiotrace, unsigned modules, writes through debugfs).
//! - `confidentiality` also blocks whatever could read kernel memory:
//!   tracefs itself, kprobes, perf and BPF reads of the kernel. No tool of
//!   ours can run then.

use std::path::Path;

/// The lockdown mode, as far as it can be seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lockdown {
    /// Not locked down.
    None,
    /// `integrity`.
    Integrity,
    /// `confidentiality`.
    Confidentiality,
    /// Cannot be seen; the sentence says why.
    Unknown(String),
}

const FILE: &str = "/sys/kernel/security/lockdown";

impl Lockdown {
    /// Reads the mode: from securityfs, else from `lockdown=` on the
    /// kernel command line; never mounts anything.
    pub fn read() -> Lockdown {
        match std::fs::read_to_string(FILE) {
            Ok(text) => Lockdown::parse(&text)
                .unwrap_or_else(|| Lockdown::Unknown(format!("{FILE} reads '{}'", text.trim()))),
            Err(_) if Path::new("/sys/kernel/security/lsm").exists() => Lockdown::None,
            Err(_) => {
                let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
                Lockdown::from_cmdline(&cmdline).unwrap_or_else(|| {
                    Lockdown::Unknown(
                        "securityfs is not mounted (mount -t securityfs none /sys/kernel/security \
                         shows it); the kernel command line sets no lockdown="
                            .into(),
                    )
                })
            }
        }
    }

    /// Parses the securityfs file: `none [integrity] confidentiality`.
    pub fn parse(text: &str) -> Option<Lockdown> {
        let chosen = text
            .split_whitespace()
            .find_map(|w| w.strip_prefix('[').and_then(|w| w.strip_suffix(']')))?;
        Lockdown::named(chosen)
    }

    fn named(name: &str) -> Option<Lockdown> {
        Some(match name {
            "none" => Lockdown::None,
            "integrity" => Lockdown::Integrity,
            "confidentiality" => Lockdown::Confidentiality,
            _ => return None,
        })
    }

    /// `lockdown=MODE` on the kernel command line.
    pub fn from_cmdline(cmdline: &str) -> Option<Lockdown> {
        cmdline
            .split_whitespace()
            .find_map(|w| w.strip_prefix("lockdown="))
            .and_then(Lockdown::named)
    }

    /// `none`, `integrity`, `confidentiality` or `unknown`.
    pub fn name(&self) -> &'static str {
        match self {
            Lockdown::None => "none",
            Lockdown::Integrity => "integrity",
            Lockdown::Confidentiality => "confidentiality",
            Lockdown::Unknown(_) => "unknown",
        }
    }

    /// What the mode takes away from tracing, in a sentence.
    pub fn blocks(&self) -> String {
        match self {
            Lockdown::None => "nothing".into(),
            Lockdown::Integrity => {
                "mmiotrace and writes through debugfs; ftrace through tracefs works".into()
            }
            Lockdown::Confidentiality => "tracefs itself, kprobes, perf and BPF reads of kernel \
                memory: no ftrace-tools tool can run"
                .into(),
            Lockdown::Unknown(why) => why.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse() {
        assert_eq!(
            Lockdown::parse("[none] integrity confidentiality\n"),
            Some(Lockdown::None)
        );
        assert_eq!(
            Lockdown::parse("none integrity [confidentiality]\n"),
            Some(Lockdown::Confidentiality)
        );
        assert_eq!(Lockdown::parse("none"), None);
        assert_eq!(
            Lockdown::from_cmdline("ro quiet lockdown=integrity"),
            Some(Lockdown::Integrity)
        );
        assert_eq!(Lockdown::from_cmdline("ro quiet"), None);
        assert!(Lockdown::Confidentiality.blocks().contains("tracefs"));
    }
}
