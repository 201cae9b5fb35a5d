//! `$argN`, the N-th argument of the probed function, in kprobe and
//! uprobe definitions: alone (`$arg1`), inside fetches (`+0($arg2):string`)
//! and named (`buf=+0($arg2):string`).
//!
//! The kernel has `$argN` for kprobes at a function's entry (its README
//! lists `$arg<N>` among the fetch arguments; Linux 4.20 on x86-64, 5.x on
//! arm64) and, since 6.10, in kretprobes (`kernel return probes support:
//! $retval, $arg<N>, $comm`). Uprobes never have it. Where the kernel has
//! it, the definition goes to the kernel as given; where it has not, at an
//! entry, `$argN` is rewritten to where the calling convention puts the
//! argument at the first instruction of a function:
//!
//! | N | x86-64 (System V) | arm64 (AAPCS64) |
//! |---|---|---|
//! | 1..6 | `%di %si %dx %cx %r8 %r9` | `%x0`..`%x5` |
//! | 7, 8 | `+8(%sp)`, `+16(%sp)` | `%x6`, `%x7` |
//! | further | `+8*(N-6)(%sp)` | `+8*(N-9)(%sp)` |
//!
//! (x86-64's `call` leaves the return address at `0(%sp)`; arm64 keeps it
//! in `x30`.) This holds for integer and pointer arguments that fit a
//! register; floating-point arguments and structures passed by value
//! take other registers or slots. Arguments on the stack are read from
//! user memory in uprobes; in kprobes on a kernel without `$argN`, only the
//! register ones are offered.
//!
//! Pure; never panics (see the property tests).

use crate::probes::spec::Kind;
use crate::{Error, Result};

/// The largest N taken: no real function has more arguments, and a larger
/// one is a typo.
pub const MAX_ARG: u32 = 64;

/// What the kernel itself offers, from its tracefs README.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KernelArgs {
    /// `$argN` in kprobes at a function's entry.
    pub entry: bool,
    /// `$argN` in kretprobes (the value at entry; 6.10+).
    pub ret: bool,
}

impl KernelArgs {
    /// Reads the kernel's README text.
    pub fn from_readme(readme: &str) -> KernelArgs {
        let entry = readme
            .lines()
            .any(|l| !l.contains("return probes") && l.contains("$arg<N>"));
        let ret = readme
            .lines()
            .any(|l| l.contains("return probes support") && l.contains("$arg<N>"));
        KernelArgs { entry, ret }
    }

    /// The kernel behind `tfs`.
    pub fn read(tfs: &crate::kernel::tracefs::Tracefs) -> KernelArgs {
        KernelArgs::from_readme(&tfs.read("README").unwrap_or_default())
    }
}

/// The probe's kind of event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeType {
    /// A kernel function.
    Kprobe,
    /// A user function.
    Uprobe,
}

/// A calling convention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// x86-64, System V.
    X86_64,
    /// arm64, AAPCS64.
    Aarch64,
    /// Another: `$argN` only where the kernel has it.
    Other,
}

impl Arch {
    /// The machine this runs on.
    pub fn host() -> Arch {
        if cfg!(target_arch = "x86_64") {
            Arch::X86_64
        } else if cfg!(target_arch = "aarch64") {
            Arch::Aarch64
        } else {
            Arch::Other
        }
    }

    fn registers(self) -> &'static [&'static str] {
        match self {
            Arch::X86_64 => &["%di", "%si", "%dx", "%cx", "%r8", "%r9"],
            Arch::Aarch64 => &["%x0", "%x1", "%x2", "%x3", "%x4", "%x5", "%x6", "%x7"],
            Arch::Other => &[],
        }
    }

    /// Where argument `n` (from 1) is at a function's first instruction;
    /// `stack`: whether a fetch from the stack may be given.
    pub fn location(self, n: u32, stack: bool) -> Option<String> {
        let regs = self.registers();
        let i = n.checked_sub(1)? as usize;
        if let Some(r) = regs.get(i) {
            return Some(r.to_string());
        }
        if !stack {
            return None;
        }
        let past = (i - regs.len()) as u64;
        match self {
            Arch::X86_64 => Some(format!("+{}(%sp)", 8 * (past + 1))),
            Arch::Aarch64 => Some(format!("+{}(%sp)", 8 * past)),
            Arch::Other => None,
        }
    }

    /// The name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86-64",
            Arch::Aarch64 => "arm64",
            Arch::Other => std::env::consts::ARCH,
        }
    }
}

/// One `$argN` in an argument: its byte range and N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Use {
    /// Where `$argN` starts.
    pub start: usize,
    /// Where it ends.
    pub end: usize,
    /// N.
    pub n: u32,
}

/// The `$argN` in one fetch argument (outside immediate strings), each
/// checked: N from 1 to [`MAX_ARG`].
pub fn uses(arg: &str) -> Result<Vec<Use>> {
    let mut out = Vec::new();
    // An immediate string (`\"text"`) is text, not fetches.
    let scan = match arg.find("\\\"") {
        Some(p) => &arg[..p],
        None => arg,
    };
    let mut from = 0;
    while let Some(p) = scan[from..].find("$arg") {
        let start = from + p;
        let digits_at = start + 4;
        let rest = &scan[digits_at..];
        let len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let end = digits_at + len;
        let next = scan[end..].chars().next();
        let word_goes_on = next.is_some_and(|c| c.is_alphanumeric() || c == '_');
        if len == 0 || word_goes_on {
            let word: String = scan[start..]
                .chars()
                .take_while(|c| *c == '$' || c.is_alphanumeric() || *c == '_')
                .collect();
            return Err(Error::usage(format!(
                "'{arg}': '{word}' is not an argument of the function: give $argN, N from 1 (the first) to {MAX_ARG}"
            )));
        }
        let n = rest[..len]
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_ARG).contains(n));
        let Some(n) = n else {
            return Err(Error::usage(format!(
                "'{arg}': ${} is out of range: arguments count from $arg1 (the first) to ${}{MAX_ARG}",
                &scan[start + 1..end],
                "arg"
            )));
        };
        out.push(Use { start, end, n });
        from = end;
    }
    Ok(out)
}

/// Whether an argument uses `$argN`.
pub fn uses_any(arg: &str) -> bool {
    uses(arg).map(|u| !u.is_empty()).unwrap_or(false)
}

/// Checks every `$argN` of a definition's arguments (N in range, a
/// number): what can be told from the text alone.
pub fn check(args: &[String]) -> Result<()> {
    for a in args {
        uses(a)?;
    }
    Ok(())
}

/// Where a probe goes, as far as `$argN` cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Site {
    /// A kprobe or a uprobe.
    pub ty: ProbeType,
    /// Entry or return.
    pub kind: Kind,
    /// Whether an entry probe is at the function's first instruction
    /// (not at +OFFSET, where the registers hold other things).
    pub at_entry: bool,
}

/// The arguments to give the kernel for a probe at `site`: `$argN` kept
/// where the kernel has it, else rewritten to the calling convention's
/// registers and stack (see the module's table). Refuses, with exit 2,
/// what cannot work: `$argN` past a function's entry, in a return probe
/// where the kernel has no `$argN` there, past the registers in a kprobe
/// without the kernel's `$argN`, or on a machine whose convention is not
/// known.
pub fn rewrite(args: &[String], site: Site, kernel: KernelArgs, arch: Arch) -> Result<Vec<String>> {
    let mut out = Vec::with_capacity(args.len());
    for a in args {
        let found = uses(a)?;
        if found.is_empty() {
            out.push(a.clone());
            continue;
        }
        let what = match site.ty {
            ProbeType::Kprobe => "kprobe",
            ProbeType::Uprobe => "uprobe",
        };
        match (site.ty, site.kind) {
            (ProbeType::Kprobe, Kind::Return) if kernel.ret => {
                out.push(a.clone());
                continue;
            }
            (_, Kind::Return) => {
                return Err(Error::usage(format!(
                    "'{a}': $argN in a return probe (r:) needs {}; use a p: probe for the arguments and r: for $retval",
                    match site.ty {
                        ProbeType::Kprobe => "a kernel with $arg<N> in return probes (6.10 or later)",
                        ProbeType::Uprobe => "the value at entry, which uprobe events cannot carry to the return",
                    }
                )));
            }
            (_, Kind::Entry) if !site.at_entry => {
                return Err(Error::usage(format!(
                    "'{a}': $argN is where the function's arguments are at its first instruction; this {what} is at an offset into the function (use registers there, e.g. %di)"
                )));
            }
            (ProbeType::Kprobe, Kind::Entry) if kernel.entry => {
                out.push(a.clone());
                continue;
            }
            (_, Kind::Entry) => {}
        }
        let stack = site.ty == ProbeType::Uprobe;
        let mut s = String::with_capacity(a.len() + 8);
        let mut last = 0;
        for u in &found {
            let Some(loc) = arch.location(u.n, stack) else {
                return Err(Error::usage(if arch == Arch::Other {
                    format!(
                        "'{a}': this kernel has no $argN for a {what}, and {what} knows the calling convention of x86-64 and arm64 only, not {}; give the register",
                        arch.name()
                    )
                } else {
                    format!(
                        "'{a}': $arg{} is passed on the stack on {}, and this kernel's kprobes have no $argN; give its place (e.g. +8($stack))",
                        u.n,
                        arch.name()
                    )
                }));
            };
            s.push_str(&a[last..u.start]);
            s.push_str(&loc);
            last = u.end;
        }
        s.push_str(&a[last..]);
        out.push(s);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    const UP: Site = Site {
        ty: ProbeType::Uprobe,
        kind: Kind::Entry,
        at_entry: true,
    };
    const KP: Site = Site {
        ty: ProbeType::Kprobe,
        ..UP
    };
    const NONE: KernelArgs = KernelArgs {
        entry: false,
        ret: false,
    };
    const ALL: KernelArgs = KernelArgs {
        entry: true,
        ret: true,
    };

    #[test]
    fn readme_says_what_the_kernel_has() {
        // The lines of 6.1's and 6.12's README.
        let r61 = "\t fetcharg: (%<register>|$<efield>), @<address>, @<symbol>[+|-<offset>],\n\t           $stack<index>, $stack, $retval, $comm, $arg<N>,\n";
        assert_eq!(
            KernelArgs::from_readme(r61),
            KernelArgs {
                entry: true,
                ret: false
            }
        );
        let r612 = format!("{r61}\t     kernel return probes support: $retval, $arg<N>, $comm\n");
        assert_eq!(KernelArgs::from_readme(&r612), ALL);
        assert_eq!(KernelArgs::from_readme(""), NONE);
    }

    #[test]
    fn uprobes_get_registers_and_the_stack() {
        let got = rewrite(
            &v(&[
                "$arg1",
                "buf=+0($arg2):string",
                "n=$arg3:u32",
                "%ax",
                "x=$arg7",
                "y=+4($arg8):u8",
                "+0(+0($arg6)):x8",
            ]),
            UP,
            ALL,
            Arch::X86_64,
        )
        .unwrap();
        assert_eq!(
            got,
            [
                "%di",
                "buf=+0(%si):string",
                "n=%dx:u32",
                "%ax",
                "x=+8(%sp)",
                "y=+4(+16(%sp)):u8",
                "+0(+0(%r9)):x8"
            ]
        );
        let got = rewrite(
            &v(&["$arg1", "$arg8", "$arg9", "+0($arg10):string"]),
            UP,
            NONE,
            Arch::Aarch64,
        )
        .unwrap();
        assert_eq!(got, ["%x0", "%x7", "+0(%sp)", "+0(+8(%sp)):string"]);
        // An immediate string is left alone.
        let got = rewrite(&v(&["\\\"$arg1\""]), UP, NONE, Arch::X86_64).unwrap();
        assert_eq!(got, ["\\\"$arg1\""]);
    }

    #[test]
    fn kprobes_keep_the_kernels_own() {
        let a = v(&["$arg1", "f=+0($arg2):string"]);
        assert_eq!(rewrite(&a, KP, ALL, Arch::X86_64).unwrap(), a);
        assert_eq!(
            rewrite(&a, KP, NONE, Arch::X86_64).unwrap(),
            ["%di", "f=+0(%si):string"]
        );
        let ret = Site {
            kind: Kind::Return,
            ..KP
        };
        assert_eq!(rewrite(&a, ret, ALL, Arch::X86_64).unwrap(), a);
        // Plain arguments pass anywhere.
        let plain = v(&["$retval", "%ax", "$comm", "$stack2"]);
        assert_eq!(rewrite(&plain, ret, NONE, Arch::Other).unwrap(), plain);
    }

    #[test]
    fn refusals_say_why() {
        let ret = |ty| Site {
            ty,
            kind: Kind::Return,
            at_entry: true,
        };
        let inner = Site {
            at_entry: false,
            ..UP
        };
        for (args, site, k, arch, why) in [
            ("$arg1", ret(ProbeType::Kprobe), NONE, Arch::X86_64, "6.10"),
            (
                "$arg1",
                ret(ProbeType::Uprobe),
                ALL,
                Arch::X86_64,
                "return probe",
            ),
            ("$arg1", inner, NONE, Arch::X86_64, "at an offset"),
            (
                "$arg1",
                Site {
                    at_entry: false,
                    ..KP
                },
                ALL,
                Arch::X86_64,
                "at an offset",
            ),
            ("$arg7", KP, NONE, Arch::X86_64, "on the stack"),
            ("$arg9", KP, NONE, Arch::Aarch64, "on the stack"),
            ("$arg1", UP, NONE, Arch::Other, "calling convention"),
            ("$arg0", UP, NONE, Arch::X86_64, "out of range"),
            ("$arg65", UP, NONE, Arch::X86_64, "out of range"),
            (
                "$arg99999999999999999999",
                UP,
                NONE,
                Arch::X86_64,
                "out of range",
            ),
            ("$arg", UP, NONE, Arch::X86_64, "give $argN"),
            ("+0($argv)", UP, NONE, Arch::X86_64, "'$argv'"),
            ("$arg1x", UP, NONE, Arch::X86_64, "'$arg1x'"),
        ] {
            let e = rewrite(&v(&[args]), site, k, arch).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{args}");
            assert!(e.to_string().contains(why), "{args}: {e}");
        }
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,40}", pick in 0usize..6) {
            let site = [UP, KP, Site { kind: Kind::Return, ..UP }, Site { kind: Kind::Return, ..KP }, Site { at_entry: false, ..UP }, KP][pick];
            let arch = [Arch::X86_64, Arch::Aarch64, Arch::Other][pick % 3];
            let _ = uses(&s);
            let _ = rewrite(std::slice::from_ref(&s), site, NONE, arch);
            let _ = rewrite(std::slice::from_ref(&s), site, ALL, arch);
        }

        #[test]
        fn translated_entries_hold_no_argn(
            n in 1u32..=MAX_ARG,
            pre in "[+0-9(%a-z=]{0,6}",
            post in "[):a-z0-9]{0,6}",
            arm in any::<bool>(),
        ) {
            let a = format!("{pre}$arg{n}{post}");
            let arch = if arm { Arch::Aarch64 } else { Arch::X86_64 };
            match rewrite(std::slice::from_ref(&a), UP, NONE, arch) {
                Ok(out) => {
                    prop_assert!(!out[0].contains("$arg"), "{}", out[0]);
                    prop_assert!(out[0].starts_with(&pre));
                }
                // Only when `post` continues the word (`$arg1a`).
                Err(e) => prop_assert!(post.starts_with(|c: char| c.is_ascii_alphanumeric()), "{a}: {e}"),
            }
        }
    }
}
