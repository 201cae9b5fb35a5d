//! Which kernel functions a kprobe can go on, checked before anything is
//! written to `kprobe_events` (perf-tools checked `available_filter_functions`
//! too, and `-F` skipped the check).
//!
//! The list is `available_filter_functions` (`name` or `name [module]` per
//! line), or, where reading it fails (EPERM on some kernels), the text
//! symbols of `/proc/kallsyms`. Unknown names get close suggestions; a name
//! that kallsyms has but the ftrace list does not (a `notrace` function) is
//! explained; a module that is not loaded is named as such. Offsets are
//! checked against the function's size (from the kallsyms neighbours).

use crate::base::glob;
use crate::probes::kprobe::Location;
use crate::sym::kallsyms::KernelSymbols;
use crate::{Error, Result};
use std::cell::OnceCell;
use std::path::PathBuf;

/// Where the list of functions came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `available_filter_functions` of tracefs.
    FilterFunctions,
    /// `/proc/kallsyms` (text symbols).
    Kallsyms,
}

impl Source {
    fn describe(self) -> &'static str {
        match self {
            Source::FilterFunctions => "available_filter_functions",
            Source::Kallsyms => "/proc/kallsyms",
        }
    }
}

/// The kernel's function lists, as text. The few names a run asks about
/// are looked up by scanning the text: building tables of 40 000 to 200 000
/// names would cost more than the whole check (seconds in a TCG guest).
/// `/proc/kallsyms` is only read when it is needed: the ftrace list cannot
/// be read, an offset or address must be checked, or an error explained.
#[derive(Debug)]
pub struct Functions {
    filter: Option<String>,
    kallsyms: OnceCell<String>,
    kallsyms_path: Option<PathBuf>,
}

/// Splits a `name [module]` line of `available_filter_functions`.
fn filter_line(line: &str) -> Option<(&str, Option<&str>)> {
    let mut it = line.split_whitespace();
    let name = it.next()?;
    let module = it
        .next()
        .and_then(|m| m.strip_prefix('['))
        .and_then(|m| m.strip_suffix(']'));
    Some((name, module))
}

/// Splits a kallsyms line into (address, name, module) for text symbols.
fn kallsyms_line(line: &str) -> Option<(u64, &str, Option<&str>)> {
    let mut it = line.split_ascii_whitespace();
    let (addr, ty, name) = (it.next()?, it.next()?, it.next()?);
    if !matches!(ty, "t" | "T" | "w" | "W") {
        return None;
    }
    let addr = u64::from_str_radix(addr, 16).ok()?;
    let module = it
        .next()
        .and_then(|m| m.strip_prefix('['))
        .and_then(|m| m.strip_suffix(']'));
    Some((addr, name, module))
}

fn module_matches(want: Option<&str>, have: Option<&str>) -> bool {
    want.is_none() || want == have
}

impl Functions {
    /// The lists of the running kernel: `available_filter_functions` now,
    /// `/proc/kallsyms` when first needed.
    pub fn load(filter_functions: Option<String>) -> Functions {
        Functions {
            filter: filter_functions.filter(|t| !t.trim().is_empty()),
            kallsyms: OnceCell::new(),
            kallsyms_path: Some(PathBuf::from("/proc/kallsyms")),
        }
    }

    /// The lists from given texts (tests).
    #[cfg(test)]
    pub fn from_texts(filter_functions: Option<&str>, kallsyms: &str) -> Functions {
        let cell = OnceCell::new();
        let _ = cell.set(kallsyms.to_string());
        Functions {
            filter: filter_functions
                .filter(|t| !t.trim().is_empty())
                .map(str::to_string),
            kallsyms: cell,
            kallsyms_path: None,
        }
    }

    fn kallsyms(&self) -> &str {
        self.kallsyms.get_or_init(|| {
            self.kallsyms_path
                .as_ref()
                .and_then(|p| std::fs::read_to_string(p).ok())
                .unwrap_or_default()
        })
    }

    /// Text symbols of kallsyms: (address, name, module).
    fn text_symbols(&self) -> impl Iterator<Item = (u64, &str, Option<&str>)> {
        self.kallsyms().lines().filter_map(kallsyms_line)
    }

    /// Where the list comes from, if there is one.
    pub fn source(&self) -> Option<Source> {
        if self.filter.is_some() {
            Some(Source::FilterFunctions)
        } else if self.text_symbols().next().is_some() {
            Some(Source::Kallsyms)
        } else {
            None
        }
    }

    /// The (name, module) pairs of the list.
    fn listed(&self) -> Box<dyn Iterator<Item = (&str, Option<&str>)> + '_> {
        match &self.filter {
            Some(t) => Box::new(t.lines().filter_map(filter_line)),
            None => Box::new(self.text_symbols().map(|(_, n, m)| (n, m))),
        }
    }

    fn is_listed(&self, function: &str, module: Option<&str>) -> bool {
        self.listed()
            .any(|(n, m)| n == function && module_matches(module, m))
    }

    fn module_loaded(&self, module: &str) -> bool {
        self.listed().any(|(_, m)| m == Some(module))
            || self.text_symbols().any(|(_, _, m)| m == Some(module))
    }

    /// The kallsyms address of a function (in `module` if given; the core
    /// kernel's first, as the kernel resolves a plain name).
    pub fn address(&self, function: &str, module: Option<&str>) -> Option<u64> {
        let mut first = None;
        for (a, n, m) in self.text_symbols() {
            if n != function || !module_matches(module, m) {
                continue;
            }
            if module.is_some() || m.is_none() {
                return Some(a);
            }
            first.get_or_insert(a);
        }
        first
    }

    /// The size of the function at `addr`: the distance to the next text
    /// symbol, as the kernel measures it.
    pub fn size_at(&self, addr: u64) -> Option<u64> {
        self.text_symbols()
            .map(|(a, _, _)| a)
            .filter(|&a| a > addr)
            .min()
            .map(|next| next - addr)
    }

    fn suggest(&self, function: &str, module: Option<&str>) -> String {
        let near = glob::suggestions(
            function,
            self.listed()
                .filter(|(_, m)| module_matches(module, *m))
                .map(|(n, _)| n),
            3,
        );
        glob::hint(&near)
    }

    /// The distinct names of the listed functions that `m` matches, in
    /// the list's order (placeholders of dropped functions left out); an
    /// error naming the pattern, with close names, when none does.
    pub fn matching(
        &self,
        pattern: &str,
        m: &crate::base::pattern::Matcher,
    ) -> Result<Vec<String>> {
        let Some(source) = self.source() else {
            return Err(Error::usage(
                "cannot match kernel functions: neither available_filter_functions nor /proc/kallsyms can be read",
            ));
        };
        let mut seen = std::collections::HashSet::new();
        let found: Vec<String> = self
            .listed()
            .map(|(n, _)| n)
            .filter(|n| !crate::kernel::functions::is_placeholder(n) && m.matches(n))
            .filter(|n| seen.insert(*n))
            .map(str::to_string)
            .collect();
        if found.is_empty() {
            let plain: String = pattern
                .chars()
                .filter(|c| {
                    !matches!(
                        c,
                        '*' | '?' | '[' | ']' | '^' | '$' | '\\' | '.' | '+' | '(' | ')' | '|'
                    )
                })
                .collect();
            return Err(Error::usage(format!(
                "no kernel function matches '{pattern}' (checked in {}){}",
                source.describe(),
                self.suggest(&plain, None)
            )));
        }
        Ok(found)
    }

    /// Checks that a probe can go at `loc`; `force` skips every check.
    pub fn check(&self, loc: &Location, force: bool) -> Result<()> {
        if force {
            return Ok(());
        }
        let Some(source) = self.source() else {
            return Err(Error::usage(
                "cannot check the function: neither available_filter_functions nor /proc/kallsyms can be read; -F creates the probe without checking",
            ));
        };
        match loc {
            Location::Address(a) => {
                if KernelSymbols::parse(self.kallsyms()).lookup(*a).is_some() {
                    Ok(())
                } else {
                    Err(Error::usage(format!(
                        "{a:#x} is in no kernel function that /proc/kallsyms knows; -F probes it anyway"
                    )))
                }
            }
            Location::Symbol {
                module,
                function,
                offset,
            } => {
                let module = module.as_deref();
                if !self.is_listed(function, module) {
                    let what = match module {
                        Some(m) => format!("{m}:{function}"),
                        None => function.clone(),
                    };
                    if let Some(m) = module {
                        if !self.module_loaded(m) {
                            return Err(Error::usage(format!(
                                "no function of module {m} in {}: is {m} loaded (lsmod)? -F creates the probe anyway, and the kernel arms it when the module loads",
                                source.describe()
                            )));
                        }
                    }
                    let in_kallsyms = self
                        .text_symbols()
                        .any(|(_, n, m)| n == function && module_matches(module, m));
                    if source == Source::FilterFunctions && in_kallsyms {
                        return Err(Error::usage(format!(
                            "{what} is in /proc/kallsyms but not in available_filter_functions (a notrace or non-traceable function): the kernel may refuse it; -F tries anyway"
                        )));
                    }
                    return Err(Error::usage(format!(
                        "no kernel function {what} (checked in {}){}; -F skips this check",
                        source.describe(),
                        self.suggest(function, module)
                    )));
                }
                if *offset > 0 {
                    let size = self.address(function, module).and_then(|a| self.size_at(a));
                    if let Some(size) = size {
                        if *offset >= size {
                            return Err(Error::usage(format!(
                                "offset {offset:#x} is past the end of {function} ({size:#x} bytes); -F probes it anyway"
                            )));
                        }
                    }
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probes::kprobe::parse_location;
    use proptest::prelude::*;

    const FILTER: &str = "\
do_sys_openat2
do_sys_open
vfs_read
vfs_write
virtblk_done [virtio_blk]
ext4_file_open [ext4]
";

    const KALLSYMS: &str = "\
ffffffff81363fa0 t do_sys_openat2
ffffffff81364110 t __do_sys_openat2
ffffffff81364470 T do_sys_open
ffffffff81364600 T vfs_read
ffffffff81364800 T vfs_write
ffffffff81364900 t notrace_helper
ffffffff81364a00 D some_data
ffffffffc0a00000 t ext4_file_open\t[ext4]
ffffffffc0a00100 t ext4_other\t[ext4]
ffffffffc0b00000 t virtblk_done\t[virtio_blk]
";

    fn check(f: &Functions, loc: &str) -> Result<()> {
        f.check(&parse_location(loc).unwrap(), false)
    }

    #[test]
    fn from_available_filter_functions() {
        let f = Functions::from_texts(Some(FILTER), KALLSYMS);
        assert_eq!(f.source(), Some(Source::FilterFunctions));
        for ok in [
            "do_sys_openat2",
            "do_sys_openat2+5",
            "ext4:ext4_file_open",
            "ext4_file_open",
            "virtio_blk:virtblk_done",
            "0xffffffff81363fa5",
        ] {
            check(&f, ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        let e = check(&f, "do_sys_openat3").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.message().contains("did you mean do_sys_openat2"), "{e}");
        let e = check(&f, "notrace_helper").unwrap_err();
        assert!(
            e.message().contains("not in available_filter_functions"),
            "{e}"
        );
        let e = check(&f, "nosuchmod:foo").unwrap_err();
        assert!(e.message().contains("is nosuchmod loaded"), "{e}");
        let e = check(&f, "ext4:ext4_file_opn").unwrap_err();
        assert!(e.message().contains("did you mean ext4_file_open"), "{e}");
        let e = check(&f, "ext4:vfs_read").unwrap_err();
        assert!(
            e.message().contains("no kernel function ext4:vfs_read"),
            "{e}"
        );
        // do_sys_openat2 is 0x170 bytes long.
        check(&f, "do_sys_openat2+0x16f").unwrap();
        let e = check(&f, "do_sys_openat2+0x170").unwrap_err();
        assert!(e.message().contains("past the end"), "{e}");
        let e = check(&f, "0x1000").unwrap_err();
        assert!(e.message().contains("-F"), "{e}");
        // -F skips everything.
        f.check(&parse_location("nosuch").unwrap(), true).unwrap();
    }

    #[test]
    fn from_kallsyms_when_the_ftrace_list_is_unreadable() {
        let f = Functions::from_texts(None, KALLSYMS);
        assert_eq!(f.source(), Some(Source::Kallsyms));
        check(&f, "notrace_helper").unwrap();
        check(&f, "ext4:ext4_other").unwrap();
        assert!(check(&f, "some_data").is_err());
        let e = check(&f, "vfs_reed").unwrap_err();
        assert!(e.message().contains("/proc/kallsyms"), "{e}");
        assert!(e.message().contains("vfs_read"), "{e}");
    }

    #[test]
    fn patterns_match_distinct_names_in_the_lists_order() {
        use crate::base::pattern::Matcher;
        let f = Functions::from_texts(Some(FILTER), KALLSYMS);
        let m = |p: &str, r: bool| f.matching(p, &Matcher::new(p, r).unwrap());
        assert_eq!(m("vfs_*", false).unwrap(), ["vfs_read", "vfs_write"]);
        assert_eq!(
            m("^do_sys_open", true).unwrap(),
            ["do_sys_openat2", "do_sys_open"]
        );
        let e = m("vfs_reed*", false).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.message().contains("'vfs_reed*'"), "{e}");
        assert!(e.message().contains("vfs_read"), "{e}");
        let k = Functions::from_texts(None, KALLSYMS);
        let m = |p: &str| k.matching(p, &Matcher::new(p, false).unwrap());
        assert_eq!(m("notrace_*").unwrap(), ["notrace_helper"]);
        assert!(m("some_*").is_err());
    }

    #[test]
    fn nothing_readable() {
        let f = Functions::from_texts(Some(""), "");
        assert_eq!(f.source(), None);
        assert!(check(&f, "vfs_read").unwrap_err().message().contains("-F"));
    }

    proptest! {
        #[test]
        fn never_panics(a in "\\PC{0,200}", b in "\\PC{0,200}", loc in "[a-z_:+0-9x]{1,20}") {
            let f = Functions::from_texts(Some(&a), &b);
            if let Ok(l) = parse_location(&loc) {
                let _ = f.check(&l, false);
            }
        }
    }
}
