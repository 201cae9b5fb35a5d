//! System call names and numbers, and errno names.
//!
//! `raw_syscalls:sys_enter`/`sys_exit` carry only the system call's number.
//! The names come from tables generated from the kernel's own syscall
//! tables and checked in ([`x86_64`], [`aarch64`], written by `gen.py` in
//! this directory; each records the kernel version it came from). A number
//! the table does not know prints as `[unknown: N]`, never as a guess.
//!
//! A kernel newer than the table can have system calls the table does not
//! name. [`cross_check`] compares the table with the kernel's syscall
//! tracepoints (`events/syscalls/sys_enter_*`, named after each call's entry
//! point) and lists what the kernel has and the table lacks, so a tool can
//! say so instead of silently printing numbers.

pub mod aarch64;
pub mod errno;
pub mod x86_64;

use crate::kernel::tracefs::Tracefs;
use std::borrow::Cow;

/// A system call table of one architecture.
#[derive(Debug, Clone, Copy)]
pub struct Table {
    /// The architecture (`x86_64`, `aarch64`).
    pub arch: &'static str,
    /// The kernel version the table was generated from.
    pub kernel: &'static str,
    entries: &'static [(u32, &'static str, &'static str)],
}

impl Table {
    /// The table of an architecture as Rust names it
    /// (`std::env::consts::ARCH`).
    pub fn for_arch(arch: &str) -> Option<Table> {
        let (kernel, entries) = match arch {
            "x86_64" => (x86_64::KERNEL, x86_64::TABLE),
            "aarch64" => (aarch64::KERNEL, aarch64::TABLE),
            _ => return None,
        };
        Some(Table {
            arch: if arch == "x86_64" {
                "x86_64"
            } else {
                "aarch64"
            },
            kernel,
            entries,
        })
    }

    /// The table of the architecture this program was built for (the
    /// kernel's, for a native 64-bit program).
    pub fn native() -> Option<Table> {
        Table::for_arch(std::env::consts::ARCH)
    }

    /// A table with no entries (an architecture we have no table for):
    /// every number prints as `[unknown: N]`.
    pub fn empty(arch: &'static str) -> Table {
        Table {
            arch,
            kernel: "none",
            entries: &[],
        }
    }

    /// `(number, name, entry point)`, ascending by number.
    pub fn entries(&self) -> &'static [(u32, &'static str, &'static str)] {
        self.entries
    }

    fn find(&self, nr: i64) -> Option<&'static (u32, &'static str, &'static str)> {
        let nr = u32::try_from(nr).ok()?;
        self.entries
            .binary_search_by_key(&nr, |e| e.0)
            .ok()
            .map(|i| &self.entries[i])
    }

    /// The name of a system call number (`110` -> `getppid` on x86_64).
    pub fn name(&self, nr: i64) -> Option<&'static str> {
        self.find(nr).map(|e| e.1)
    }

    /// The kernel entry point of a number (`sys_newfstat` for `fstat`);
    /// `None` if unknown or reserved.
    pub fn entry(&self, nr: i64) -> Option<&'static str> {
        self.find(nr).map(|e| e.2).filter(|e| !e.is_empty())
    }

    /// The number of a system call, by its name (`fstat`), its entry point
    /// (`sys_newfstat`) or the entry point's tracepoint name (`newfstat`).
    pub fn number(&self, name: &str) -> Option<u32> {
        let name = name.trim();
        if name.is_empty() {
            return None;
        }
        if let Some(e) = self.entries.iter().find(|e| e.1 == name) {
            return Some(e.0);
        }
        let bare = name.strip_prefix("sys_").unwrap_or(name);
        self.entries
            .iter()
            .find(|e| !e.2.is_empty() && e.2.strip_prefix("sys_").unwrap_or(e.2) == bare)
            .map(|e| e.0)
    }

    /// The name to print for a number: the name, or `[unknown: N]`.
    pub fn display(&self, nr: i64) -> Cow<'static, str> {
        match self.name(nr) {
            Some(n) => Cow::Borrowed(n),
            None => Cow::Owned(unknown(nr)),
        }
    }

    /// Names close to `name`, for "did you mean".
    pub fn suggestions(&self, name: &str) -> Vec<String> {
        crate::base::glob::suggestions(name, self.entries.iter().map(|e| e.1), 3)
    }
}

/// How an unknown system call number prints.
pub fn unknown(nr: i64) -> String {
    format!("[unknown: {nr}]")
}

/// The system calls the running kernel has tracepoints for: the names of
/// `events/syscalls/sys_enter_*` without that prefix (entry-point names:
/// `newfstat`, not `fstat`). Empty when the kernel has no syscall
/// tracepoints (CONFIG_FTRACE_SYSCALLS).
pub fn kernel_syscall_events(tfs: &Tracefs) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(tfs.path("events/syscalls"))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| {
                    e.file_name()
                        .to_str()?
                        .strip_prefix("sys_enter_")
                        .map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// What [`cross_check`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CrossCheck {
    /// System calls the kernel has (a tracepoint) that the table does not
    /// name: the kernel is newer than the table. Their numbers print as
    /// `[unknown: N]`.
    pub kernel_only: Vec<String>,
    /// How many of the kernel's syscall tracepoints the table names.
    pub matched: usize,
}

impl CrossCheck {
    /// A one-line note for the user, or `None` if the table covers the
    /// kernel.
    pub fn note(&self, table: &Table) -> Option<String> {
        if self.kernel_only.is_empty() {
            return None;
        }
        Some(format!(
            "this kernel has {} system call(s) that the {} table (from Linux {}) does not name: {}; \
             their numbers print as [unknown: N]",
            self.kernel_only.len(),
            table.arch,
            table.kernel,
            self.kernel_only.join(", ")
        ))
    }
}

/// Compares a table with the kernel's syscall tracepoint names (see
/// [`kernel_syscall_events`]).
pub fn cross_check(table: &Table, kernel_events: &[String]) -> CrossCheck {
    let mut out = CrossCheck::default();
    for ev in kernel_events {
        let known = table.entries.iter().any(|e| {
            e.1 == ev || (!e.2.is_empty() && e.2.strip_prefix("sys_").unwrap_or(e.2) == ev)
        });
        if known {
            out.matched += 1;
        } else {
            out.kernel_only.push(ev.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted_unique(t: &Table) {
        let e = t.entries();
        assert!(e.len() > 300, "{}", t.arch);
        for w in e.windows(2) {
            assert!(w[0].0 < w[1].0, "{}: {:?} {:?}", t.arch, w[0], w[1]);
        }
        for (i, a) in e.iter().enumerate() {
            assert!(
                e[..i].iter().all(|b| b.1 != a.1),
                "{}: {} twice",
                t.arch,
                a.1
            );
        }
    }

    #[test]
    fn tables_are_sorted_and_hold_well_known_numbers() {
        let x = Table::for_arch("x86_64").unwrap();
        sorted_unique(&x);
        assert_eq!(x.name(0), Some("read"));
        assert_eq!(x.name(3), Some("close"));
        assert_eq!(x.name(35), Some("nanosleep"));
        assert_eq!(x.name(110), Some("getppid"));
        assert_eq!(x.name(231), Some("exit_group"));
        assert_eq!(x.name(435), Some("clone3"));
        assert_eq!(x.entry(5), Some("sys_newfstat"));
        assert_eq!(x.entry(134), None); // uselib: reserved
        let a = Table::for_arch("aarch64").unwrap();
        sorted_unique(&a);
        assert_eq!(a.name(57), Some("close"));
        assert_eq!(a.name(63), Some("read"));
        assert_eq!(a.name(101), Some("nanosleep"));
        assert_eq!(a.name(173), Some("getppid"));
        assert_eq!(a.name(79), Some("newfstatat"));
        assert_eq!(a.name(221), Some("execve"));
        assert!(a.number("open").is_none(), "arm64 has only openat");
        assert!(Table::for_arch("mips").is_none());
    }

    #[test]
    // c_long is i32 on 32-bit targets: the conversion is not useless there.
    #[allow(clippy::useless_conversion)]
    fn native_table_agrees_with_libc() {
        let Some(t) = Table::native() else { return };
        let pairs: &[(&str, libc::c_long)] = &[
            ("read", libc::SYS_read),
            ("write", libc::SYS_write),
            ("close", libc::SYS_close),
            ("openat", libc::SYS_openat),
            ("getppid", libc::SYS_getppid),
            ("nanosleep", libc::SYS_nanosleep),
            ("clone", libc::SYS_clone),
            ("execve", libc::SYS_execve),
            ("exit_group", libc::SYS_exit_group),
            ("futex", libc::SYS_futex),
            ("epoll_pwait", libc::SYS_epoll_pwait),
            ("io_uring_setup", libc::SYS_io_uring_setup),
            ("clone3", libc::SYS_clone3),
            ("process_mrelease", libc::SYS_process_mrelease),
            ("newfstatat", libc::SYS_newfstatat),
        ];
        for (name, nr) in pairs {
            assert_eq!(t.number(name), Some(*nr as u32), "{name}");
            assert_eq!(t.name(i64::from(*nr)), Some(*name));
        }
    }

    #[test]
    fn lookups_by_name_entry_point_and_display() {
        let x = Table::for_arch("x86_64").unwrap();
        assert_eq!(x.number("fstat"), Some(5));
        assert_eq!(x.number("newfstat"), Some(5));
        assert_eq!(x.number("sys_newfstat"), Some(5));
        assert_eq!(x.number("nope"), None);
        assert_eq!(x.number(""), None);
        assert_eq!(x.display(110), "getppid");
        assert_eq!(x.display(9999), "[unknown: 9999]");
        assert_eq!(x.display(-1), "[unknown: -1]");
        assert_eq!(x.display(i64::MAX), format!("[unknown: {}]", i64::MAX));
        assert!(x.suggestions("getpid_").contains(&"getpid".to_string()));
        assert_eq!(Table::empty("mips").display(4001), "[unknown: 4001]");
    }

    #[test]
    fn cross_check_names_what_the_table_lacks() {
        let x = Table::for_arch("x86_64").unwrap();
        let kernel: Vec<String> = ["read", "newfstat", "getppid", "brand_new_call"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let c = cross_check(&x, &kernel);
        assert_eq!(c.matched, 3);
        assert_eq!(c.kernel_only, vec!["brand_new_call".to_string()]);
        let note = c.note(&x).unwrap();
        assert!(
            note.contains("brand_new_call") && note.contains(x.kernel),
            "{note}"
        );
        assert!(cross_check(&x, &kernel[..3]).note(&x).is_none());
    }
}
