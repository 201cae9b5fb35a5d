//! Parsing a kprobe definition: `{p|r}:[NAME ]LOCATION [ARGS] [if FILTER]`.
//!
//! This is perf-tools' form, kept word for word:
//! - `p:` probes a kernel function's entry (or an instruction in it), `r:`
//!   its return;
//! - if the first word is followed by a second word that does not look like
//!   a fetch argument, the first word is the event NAME
//!   (`p:myopen do_sys_open`); otherwise the first word is both the event
//!   name and the function (`p:do_sys_open`, `'r:do_sys_open $retval'`);
//! - LOCATION is `FUNC`, `FUNC+OFFSET`, `MODULE:FUNC[+OFFSET]` or `0xADDR`;
//! - ARGS are the kernel's fetch arguments, passed on as given (`%di`,
//!   `+0(%si):string`, `$retval`, `mode=%cx:u16`), and `$argN`
//!   (`f=+0($arg2):string`): the kernel's where it has it, else the
//!   registers of the calling convention ([`crate::probes::argn`]).
//!
//! As in `uprobe` (the shape both share is [`crate::probes::spec`]),
//! a definition given with `-e` can carry its own filter after a standalone
//! word `if` (`-e 'r:vfs_read ret=$retval:s64 if ret < 0'`).
//!
//! Parsing is pure and never panics (see the property test).

use crate::lifecycle::dynevent::{ProbeDef, ProbeKind};
use crate::probes::argn::{self, Arch, KernelArgs, ProbeType, Site};
use crate::probes::pair::{self, PairPlan};
use crate::probes::spec::{self as probespec, Grammar};
pub use crate::probes::spec::{sanitize, Kind};
use crate::{Error, Result};

/// Where the probe goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// `[MODULE:]FUNC[+OFFSET]`.
    Symbol {
        /// The module, for `MODULE:FUNC`.
        module: Option<String>,
        /// The function.
        function: String,
        /// Bytes into the function.
        offset: u64,
    },
    /// `0xADDR`: a kernel text address.
    Address(u64),
}

impl Location {
    /// The location as `kprobe_events` takes it (offsets in hex, so that
    /// the kernel's base-0 parsing cannot read `010` as octal).
    pub fn kernel_form(&self) -> String {
        match self {
            Location::Symbol {
                module,
                function,
                offset,
            } => {
                let mut s = String::new();
                if let Some(m) = module {
                    s.push_str(m);
                    s.push(':');
                }
                s.push_str(function);
                if *offset > 0 {
                    s.push_str(&format!("+{offset:#x}"));
                }
                s
            }
            Location::Address(a) => format!("{a:#x}"),
        }
    }
}

/// A parsed definition.
pub type Definition = probespec::Definition<Location>;

const FORM: &str = "{p|r}:[NAME ]FUNC[+OFFSET]|MODULE:FUNC|0xADDR [ARGS]";

/// Whether a word is a fetch argument rather than an event location
/// (perf-tools looked for `=`, `%` and `$`; `@`, `(`, `\` and a leading
/// `+`/`-` are fetch-argument syntax too).
pub fn looks_like_arg(word: &str) -> bool {
    word.contains(['=', '%', '$', '@', '(', '\\']) || word.starts_with(['+', '-'])
}

/// A number as the kernel takes offsets: decimal or `0x` hex.
fn number(s: &str) -> Option<u64> {
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        if h.is_empty() || !h.chars().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        return u64::from_str_radix(h, 16).ok();
    }
    if s.is_empty() || !s.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn is_symbol(s: &str) -> bool {
    // Kernel symbols: C identifiers, plus the `.` of compiler clones
    // (`foo.isra.0`, `bar.cold`).
    !s.is_empty()
        && s.len() <= 200
        && s.chars()
            .next()
            .map(|c| c.is_ascii_alphabetic() || c == '_')
            .unwrap_or(false)
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

fn is_module(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 56
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Parses `FUNC[+OFFSET]`, `MODULE:FUNC[+OFFSET]` or `0xADDR`.
pub fn parse_location(loc: &str) -> Result<Location> {
    if let Some(hex) = loc.strip_prefix("0x") {
        return match u64::from_str_radix(hex, 16) {
            Ok(a) if !hex.is_empty() && a != 0 => Ok(Location::Address(a)),
            _ => Err(Error::usage(format!(
                "'{loc}' is not a kernel address (0x followed by hex digits)"
            ))),
        };
    }
    let (module, rest) = match loc.split_once(':') {
        Some((m, r)) => (Some(m), r),
        None => (None, loc),
    };
    if let Some(m) = module {
        if !is_module(m) {
            return Err(Error::usage(format!(
                "'{loc}': '{m}' is not a module name (MODULE:FUNC, e.g. ext4:ext4_file_open)"
            )));
        }
    }
    let (function, offset) = match rest.split_once('+') {
        Some((f, o)) => {
            let off = number(o).ok_or_else(|| {
                Error::usage(format!(
                    "'{loc}': the offset '{o}' is not a number (decimal or 0x hex)"
                ))
            })?;
            (f, off)
        }
        None => (rest, 0),
    };
    if !is_symbol(function) {
        return Err(Error::usage(format!(
            "'{loc}' is not a kernel function ({FORM}, e.g. p:do_sys_open)"
        )));
    }
    Ok(Location::Symbol {
        // The kernel names modules with `_` (`virtio-pci` is `virtio_pci`).
        module: module.map(|m| m.replace('-', "_")),
        function: function.to_string(),
        offset,
    })
}

const GRAMMAR: Grammar = Grammar {
    tool: "kprobe",
    form: FORM,
    example: "p:do_sys_open",
    location: "function",
    words: probespec::words,
    looks_like_arg,
};

/// Parses a definition.
pub fn parse(def: &str) -> Result<Definition> {
    let parts = probespec::split(def, &GRAMMAR)?;
    let (kind, loc) = (parts.kind, parts.location);
    let location = parse_location(loc)?;
    if let (Kind::Return, Location::Symbol { offset, .. }) = (kind, &location) {
        if *offset != 0 {
            return Err(Error::usage(format!(
                "'{loc}': a return probe (r:) goes on a function, without +OFFSET"
            )));
        }
    }
    Ok(parts.with(location))
}

impl probespec::Location for Location {
    fn parse_definition(text: &str) -> Result<Definition> {
        parse(text)
    }
}

/// The longest event name we make up: the kernel allows 63 bytes, and a
/// second probe of the same name gets `_N` appended.
const MAX_DEFAULT_NAME: usize = 56;

/// The default event name, as perf-tools made it: the function's name
/// (`do_sys_open`), with the offset (`do_sys_open_0x5`); `p_ADDR` for an
/// address.
pub fn default_name(d: &Definition) -> String {
    let mut name = match &d.location {
        Location::Symbol {
            function, offset, ..
        } => {
            if *offset > 0 {
                sanitize(&format!("{function}_{offset:#x}"))
            } else {
                sanitize(function)
            }
        }
        Location::Address(a) => format!("{}_{a:x}", d.kind.letter()),
    };
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert_str(0, "p_");
    }
    if name.len() > MAX_DEFAULT_NAME {
        name.truncate(MAX_DEFAULT_NAME);
        while name.ends_with('_') {
            name.pop();
        }
    }
    name
}

/// The probe to create for a definition, named `name`, with its own
/// fetch arguments.
pub fn probe(def: &Definition, name: String) -> ProbeDef {
    ProbeDef {
        kind: match def.kind {
            Kind::Entry => ProbeKind::Kprobe,
            Kind::Return => ProbeKind::Kretprobe,
        },
        name,
        location: def.location.kernel_form(),
        args: def.args.clone(),
    }
}

/// The arguments to give the kernel: `$argN` kept where `kernel` has it,
/// else rewritten to registers, or refused (see
/// [`crate::probes::argn::rewrite`]).
pub fn kernel_args(def: &Definition, args: &[String], kernel: KernelArgs) -> Result<Vec<String>> {
    let at_entry = matches!(def.location, Location::Symbol { offset: 0, .. });
    let site = Site {
        ty: ProbeType::Kprobe,
        kind: def.kind,
        at_entry,
    };
    argn::rewrite(args, site, kernel, Arch::host())
}

/// For a return probe with `$argN` on a kernel without `$arg<N>` in
/// return probes (before 6.10): the entry probe's arguments and how the
/// two pair ([`crate::probes::pair`]); only `$argN` values (kernel memory
/// cannot be read at the return from user space). `None` where the kernel
/// does it, or nothing uses `$argN`.
pub fn pair_plan(
    def: &Definition,
    args: &[String],
    kernel: KernelArgs,
) -> Result<Option<PairPlan>> {
    if def.kind != Kind::Return || kernel.ret {
        return Ok(None);
    }
    pair::plan_return(args, true, &|n| {
        if kernel.entry {
            return Ok(format!("$arg{n}"));
        }
        Arch::host().location(n, false).ok_or_else(|| {
            Error::usage(format!(
                "$arg{n}: this kernel's kprobes have no $argN, and on {} it is not in a register; give its place",
                Arch::host().name()
            ))
        })
    })
}

/// The field name the kernel gives each fetch argument: `NAME` for
/// `NAME=...`, else `argN` (N counting from 1).
pub fn arg_field_names(args: &[String]) -> Vec<String> {
    args.iter()
        .enumerate()
        .map(|(i, a)| match a.split_once('=') {
            Some((n, _)) if !n.is_empty() && !looks_like_arg(n) => n.to_string(),
            _ => format!("arg{}", i + 1),
        })
        .collect()
}

/// The fetch part of an argument (`$retval` for `ret=$retval:s32`).
pub fn arg_fetch(arg: &str) -> &str {
    let body = match arg.split_once('=') {
        Some((n, rest)) if !n.is_empty() && !looks_like_arg(n) => rest,
        _ => arg,
    };
    // A `:TYPE` suffix after the fetch (strings hold no ':' in a fetch,
    // except in immediates, which are not aggregated).
    match body.rsplit_once(':') {
        Some((f, _)) if !f.is_empty() => f,
        _ => body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(s: &str) -> Definition {
        parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn sym(f: &str) -> Location {
        Location::Symbol {
            module: None,
            function: f.into(),
            offset: 0,
        }
    }

    #[test]
    fn perf_tools_examples() {
        let d = p("p:do_sys_open");
        assert_eq!(
            (d.kind, d.name.as_deref(), &d.location),
            (Kind::Entry, None, &sym("do_sys_open"))
        );
        assert_eq!(default_name(&d), "do_sys_open");
        let d = p("r:do_sys_open");
        assert_eq!(
            (d.kind, default_name(&d)),
            (Kind::Return, "do_sys_open".into())
        );
        let d = p("r:do_sys_open $retval");
        assert_eq!((d.name, d.args), (None, vec!["$retval".to_string()]));
        let d = p("r:myopen do_sys_open $retval");
        assert_eq!(d.name.as_deref(), Some("myopen"));
        assert_eq!(d.location, sym("do_sys_open"));
        let d = p("p:myopen do_sys_open mode=%cx:u16");
        assert_eq!(d.args, ["mode=%cx:u16"]);
        let d = p("p:myopen do_sys_open filename=+0(%si):string");
        assert_eq!(d.args, ["filename=+0(%si):string"]);
        let d = p("p:do_sys_open file=+0(%si):string");
        assert_eq!((d.name, d.args.len()), (None, 1));
        let d = p("p:myprobe tcp_retransmit_skb");
        assert_eq!(d.name.as_deref(), Some("myprobe"));
        assert_eq!(d.location, sym("tcp_retransmit_skb"));
        // A second word that is an argument without `=`.
        let d = p("p:do_sys_open +0(%si):string %dx");
        assert_eq!(d.name, None);
        assert_eq!(d.args.len(), 2);
    }

    #[test]
    fn offsets_modules_and_addresses() {
        let d = p("p:do_sys_openat2+5");
        assert_eq!(
            d.location,
            Location::Symbol {
                module: None,
                function: "do_sys_openat2".into(),
                offset: 5
            }
        );
        assert_eq!(d.location.kernel_form(), "do_sys_openat2+0x5");
        assert_eq!(default_name(&d), "do_sys_openat2_0x5");
        // `010` is ten for us: the kernel gets it in hex, never as octal.
        assert_eq!(p("p:f+010").location.kernel_form(), "f+0xa");
        assert_eq!(p("p:f+0x10").location.kernel_form(), "f+0x10");
        let d = p("p:ext4:ext4_file_open");
        assert_eq!(d.location.kernel_form(), "ext4:ext4_file_open");
        assert_eq!(default_name(&d), "ext4_file_open");
        let d = p("p:opens ext4:ext4_file_open+4 %di");
        assert_eq!(d.name.as_deref(), Some("opens"));
        assert_eq!(d.location.kernel_form(), "ext4:ext4_file_open+0x4");
        let d = p("p:0xffffffff81363fa0");
        assert_eq!(d.location, Location::Address(0xffffffff81363fa0));
        assert_eq!(default_name(&d), "p_ffffffff81363fa0");
        let d = p("p:foo.isra.0");
        assert_eq!(default_name(&d), "foo_isra_0");
        // A return probe takes no offset.
        assert_eq!(parse("r:do_sys_open+4").unwrap_err().exit_code(), 2);
    }

    #[test]
    fn filters_after_if() {
        let d = p("r:vfs_read ret=$retval:s64 if ret < 0");
        assert_eq!(d.args, ["ret=$retval:s64"]);
        assert_eq!(d.filter.as_deref(), Some("ret < 0"));
        let d = p("p:vfs_read if common_pid == 1");
        assert_eq!(d.name, None);
        assert_eq!(d.filter.as_deref(), Some("common_pid == 1"));
        let d = p("p:if vfs_read");
        assert_eq!(d.name.as_deref(), Some("if"));
        assert!(parse("p:vfs_read if ").is_err());
    }

    #[test]
    fn refuses_what_is_not_a_definition() {
        for bad in [
            "",
            "do_sys_open",
            "x:do_sys_open",
            "p:",
            "p: do_sys_open",
            "p:do_sys_open\n-:kprobes/x",
            "p:do_sys_open\r",
            "p:do_sys_open+",
            "p:do_sys_open+x1",
            "p:do_sys_open+-1",
            "p:e/4:f",
            "p::do_sys_open",
            "p:mod:",
            "p:0x",
            "p:0xzz",
            "p:0x0",
            "p:my-name do_sys_open",
            "p:g/n do_sys_open",
            "p:1abc",
            "p:a/b",
            "p:do;sys",
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn argument_field_names() {
        let args: Vec<String> = [
            "$retval",
            "ret=$retval:s32",
            "+0(%si):string",
            "f=+0(%si):string",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(arg_field_names(&args), ["arg1", "ret", "arg3", "f"]);
        assert_eq!(arg_fetch("$retval"), "$retval");
        assert_eq!(arg_fetch("ret=$retval:s32"), "$retval");
        assert_eq!(arg_fetch("f=+0(%si):string"), "+0(%si)");
        assert_eq!(arg_fetch("%di"), "%di");
    }

    proptest! {
        #[test]
        fn parsing_never_panics_and_yields_one_line(s in "\\PC{0,60}") {
            if let Ok(d) = parse(&s) {
                let k = d.location.kernel_form();
                prop_assert!(!k.contains(char::is_whitespace) && !k.starts_with('-'));
                let n = default_name(&d);
                prop_assert!(crate::lifecycle::dynevent::check_event_name(&n).is_ok(), "{}", n);
            }
        }

        #[test]
        fn arbitrary_chars_never_panic(s in proptest::collection::vec(any::<char>(), 0..40)) {
            let s: String = s.into_iter().collect();
            let _ = parse(&s);
            let _ = sanitize(&s);
            let _ = arg_fetch(&s);
        }

        #[test]
        fn perf_tools_shapes_parse(
            func in "[a-z_][a-z0-9_]{0,20}",
            name in proptest::option::of("[a-z_][a-z0-9_]{0,10}"),
            ret in any::<bool>(),
        ) {
            // `if` after a name would start a filter.
            prop_assume!(func != "if");
            let text = format!(
                "{}:{}{func} a=%di",
                if ret { 'r' } else { 'p' },
                name.as_ref().map(|n| format!("{n} ")).unwrap_or_default()
            );
            let d = parse(&text).unwrap();
            prop_assert_eq!(d.location, Location::Symbol { module: None, function: func, offset: 0 });
            prop_assert_eq!(d.name, name);
            prop_assert_eq!(d.args, vec!["a=%di".to_string()]);
        }
    }
}
