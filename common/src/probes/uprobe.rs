//! Parsing a uprobe definition: `{p|r}:[NAME ]TARGET:SYMBOL [ARGS] [if FILTER]`.
//!
//! This is perf-tools' form, kept word for word:
//! - `p:` probes the entry, `r:` the return;
//! - if the first word is followed by a second word that does not look like
//!   a fetch argument, the first word is the event NAME
//!   (`p:rl bash:readline`); otherwise there is no NAME
//!   (`p:bash:readline %di`);
//! - TARGET is a path, a program on PATH or a library name; SYMBOL is a
//!   name, `name+OFFSET` or `0xADDR`;
//! - ARGS are the kernel's fetch arguments, passed on as given (`%di`,
//!   `+0(%si):string`, `$retval`, `file=$retval`), and `$argN`
//!   (`buf=+0($arg2):string`), which uprobe events lack: rewritten to the
//!   calling convention's registers and stack ([`crate::probes::argn`]).
//!
//! One addition, as in `kprobe` (the shape both share is
//! [`crate::probes::spec`]): a definition given with `-e` can carry its
//! own filter after a standalone word `if`
//! (`-e 'r:libc:fopen file=$retval if file == 0'`).
//!
//! Parsing is pure and never panics (see the property test).

use crate::base::pattern::Matcher;
use crate::lifecycle::dynevent::{ProbeDef, ProbeKind};
use crate::probes::argn::{self, Arch, KernelArgs, ProbeType, Site};
use crate::probes::pair::{self, PairPlan};
use crate::probes::spec::{self as probespec, Grammar};
pub use crate::probes::spec::{sanitize, Kind};
use crate::sym::elf::{ElfFile, Resolved};
use crate::sym::target::{resolve_target, Target};
use crate::{Error, Result};
use std::collections::HashMap;
use std::path::PathBuf;

/// Where a uprobe goes, as given, not yet resolved against any file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// TARGET as given (`bash`, `libc`, `/usr/bin/bash`).
    pub target: String,
    /// SYMBOL as given (`readline`, `malloc+0x10`, `0xbf130`).
    pub symbol: String,
}

/// A parsed definition.
pub type Definition = probespec::Definition<Place>;

/// Whether a word is a fetch argument rather than an event location
/// (perf-tools looked for `=`, `%` and `$`; a leading `+`, `-`, `@` or `\`
/// is fetch-argument syntax too). `@` and `(` elsewhere belong to locations
/// (`libc:memcpy@GLIBC_2.2.5`, `prog:ns::f(int)`).
pub fn looks_like_arg(word: &str) -> bool {
    word.contains(['=', '%', '$']) || word.starts_with(['+', '-', '@', '\\'])
}

const FORM: &str = "{p|r}:[NAME ]TARGET:SYMBOL[+OFFSET]|0xADDR [ARGS]";

const GRAMMAR: Grammar = Grammar {
    tool: "uprobe",
    form: FORM,
    example: "p:bash:readline",
    location: "TARGET:SYMBOL",
    words: probespec::words_keeping_groups,
    looks_like_arg,
};

/// Parses a definition.
pub fn parse(def: &str) -> Result<Definition> {
    let parts = probespec::split(def, &GRAMMAR)?;
    let loc = parts.location;
    let Some((target, symbol)) = split_location(loc) else {
        return Err(Error::usage(format!(
            "'{loc}' is not TARGET:SYMBOL (e.g. bash:readline, libc:malloc, /usr/bin/bash:0x8db60)"
        )));
    };
    if target.is_empty() {
        return Err(Error::usage(format!(
            "'{loc}': no TARGET before ':' (a program, a library or a path)"
        )));
    }
    if symbol.is_empty() {
        return Err(Error::usage(format!(
            "'{loc}': no SYMBOL after '{target}:' (a function, function+OFFSET or 0xADDR; uprobe -l {target} lists them)"
        )));
    }
    let place = Place {
        target: target.to_string(),
        symbol: symbol.to_string(),
    };
    Ok(parts.with(place))
}

impl probespec::Location for Place {
    fn parse_definition(text: &str) -> Result<Definition> {
        parse(text)
    }

    /// Also a p: or r: that does not parse: a second definition with a
    /// mistake, rather than a filter.
    fn looks_like_definition(text: &str) -> bool {
        parse(text).is_ok() || text.starts_with("p:") || text.starts_with("r:")
    }
}

/// Splits `TARGET:SYMBOL` at the first `:` (C++ symbols hold `::`). A path
/// that itself holds a `:` is split after the longest existing prefix.
fn split_location(loc: &str) -> Option<(&str, &str)> {
    let (t, s) = loc.split_once(':')?;
    if t.contains('/') && !std::path::Path::new(t).exists() {
        let mut best = None;
        for (i, _) in loc.match_indices(':').skip(1) {
            if std::path::Path::new(&loc[..i]).is_file() {
                best = Some((&loc[..i], &loc[i + 1..]));
            }
        }
        if best.is_some() {
            return best;
        }
    }
    Some((t, s))
}

/// The longest event name we make up: the kernel allows 63 bytes, and a
/// second probe of the same name gets `_N` appended.
const MAX_DEFAULT_NAME: usize = 56;

/// The default event name, as perf-tools made it: `p_bash_readline`,
/// `r_libc_fopen`, `p_libc_0xbf130` (TARGET's file name, the symbol).
pub fn default_name(d: &Definition) -> String {
    let base = d
        .location
        .target
        .rsplit('/')
        .next()
        .unwrap_or(&d.location.target);
    let mut name = format!(
        "{}_{}_{}",
        d.kind.letter(),
        sanitize(base),
        sanitize(&d.location.symbol)
    );
    if name.len() > MAX_DEFAULT_NAME {
        name.truncate(MAX_DEFAULT_NAME);
        while name.ends_with('_') {
            name.pop();
        }
    }
    name
}

/// The note for the mission's form, an entry probe on a read (`SSL_read`,
/// `*_read*`, `*recv*`) that fetches through the buffer argument
/// (`p:libssl:SSL_read +0(%si):string`): the buffer is filled only by the
/// time the function returns, and the command that shows what was read.
/// `None` for any other definition.
pub fn read_at_entry_note(d: &Definition) -> Option<String> {
    if d.kind != Kind::Entry {
        return None;
    }
    let func = d.location.symbol.split('+').next().unwrap_or("");
    let lower = func.to_ascii_lowercase();
    if !(lower.contains("read") || lower.contains("recv")) || func.starts_with("0x") {
        return None;
    }
    let buf = ["(%si)", "(%rsi)", "(%x1)", "($arg2)"];
    if !d.args.iter().any(|a| buf.iter().any(|b| a.contains(b))) {
        return None;
    }
    let mut fix = "sslsniff shows what TLS reads returned".to_string();
    if !lower.ends_with("_ex") {
        fix.push_str(&format!(
            "; for this function: uprobe 'r:{}:{func} +0($arg2):bytes[$retval]'",
            d.location.target
        ));
    }
    Some(format!(
        "{func} fills its buffer before it returns: at its entry the buffer holds what was there before the call. {fix} (read from the process after the return)."
    ))
}

/// A probe resolved to a file offset, ready to be created.
pub struct Planned {
    /// The definition as given.
    pub def: Definition,
    /// The file it goes in.
    pub target: Target,
    /// Where in that file.
    pub at: Resolved,
    /// The probe to create.
    pub probe: ProbeDef,
    /// Its filter.
    pub filter: Option<String>,
    /// For a return probe with `$argN`: the entry probe that records the
    /// arguments, and how the two pair ([`crate::probes::pair`]).
    pub pair: Option<(ProbeDef, PairPlan)>,
}

/// Resolves each definition to a file and offset. Files are parsed once
/// even when several probes are in the same one.
pub fn plan(
    defs: Vec<(Definition, Option<String>)>,
    pid: Option<u32>,
    force: bool,
) -> Result<Vec<Planned>> {
    let mut files: HashMap<PathBuf, ElfFile> = HashMap::new();
    let mut out = Vec::new();
    for (def, filter) in defs {
        let target = resolve_target(&def.location.target, pid).map_err(|e| {
            let missing = def.location.target.contains('/') && !std::path::Path::new(&def.location.target).exists();
            if pid.is_none() && missing {
                // Perhaps a file only a container (another mount namespace)
                // sees.
                Error::new(
                    e.kind(),
                    format!(
                        "{} If it is a file of a process in a container, add -p PID: the path is then looked up as that process sees it.",
                        e.message()
                    ),
                )
            } else {
                e
            }
        })?;
        if !files.contains_key(&target.path) {
            let elf = ElfFile::open(&target.path)?.with_name(&target.display_path);
            files.insert(target.path.clone(), elf);
        }
        let at = files[&target.path].resolve(&def.location.symbol, force)?;
        let name = def.name.clone().unwrap_or_else(|| default_name(&def));
        // A raw address at a symbol's start is an entry too.
        let at_entry = at.symbol_offset == 0;
        let site = Site {
            ty: ProbeType::Uprobe,
            kind: def.kind,
            at_entry,
        };
        let location = format!("{}:{:#x}", target.path.display(), at.offset);
        let mut pair = None;
        let args = match def.kind {
            Kind::Return => match pair::plan_return(&def.args, false, &pair::uprobe_loc)? {
                Some(plan) => {
                    if !at_entry {
                        return Err(Error::usage(format!(
                            "'{}': $argN at a return pairs the return with the function's entry: give the function, not +OFFSET",
                            def.location.symbol
                        )));
                    }
                    let entry = ProbeDef {
                        kind: ProbeKind::Uprobe,
                        name: format!("{}_entry", name.chars().take(56).collect::<String>()),
                        location: location.clone(),
                        args: plan.entry_args.clone(),
                    };
                    entry.line("ftrace_tools_check")?;
                    let args = plan.ret_args.clone();
                    pair = Some((entry, plan));
                    args
                }
                None => def.args.clone(),
            },
            Kind::Entry => argn::rewrite(&def.args, site, KernelArgs::default(), Arch::host())?,
        };
        let probe = ProbeDef {
            kind: match def.kind {
                Kind::Entry => ProbeKind::Uprobe,
                Kind::Return => ProbeKind::Uretprobe,
            },
            name,
            location,
            args,
        };
        // Refuse a line that could not be written before touching tracefs.
        probe.line("ftrace_tools_check")?;
        out.push(Planned {
            def,
            target,
            at,
            probe,
            filter,
            pair,
        });
    }
    Ok(out)
}

/// The functions of TARGET (as uprobe takes it: a program, a library, a
/// path; in `pid`'s files with -p) that FUNC names: a glob or, with
/// `regex`, a regular expression ([`Matcher`]), or one plain name resolved
/// as [`ElfFile::resolve`] does (versions, IFUNCs explained). Each as
/// (name, file offset), with the target; an error when none matches.
/// `files` keeps the ELF files parsed, for several patterns in one file.
pub fn matching(
    target: &str,
    func: &str,
    regex: bool,
    pid: Option<u32>,
    files: &mut HashMap<PathBuf, ElfFile>,
) -> Result<(Target, Vec<(String, u64)>)> {
    let t = resolve_target(target, pid)?;
    if !files.contains_key(&t.path) {
        let elf = ElfFile::open(&t.path)?.with_name(&t.display_path);
        files.insert(t.path.clone(), elf);
    }
    let elf = &files[&t.path];
    let m = Matcher::new(func, regex)?;
    let found = if m.is_pattern() {
        elf.matching_functions(&m)
    } else {
        let at = elf.resolve(func, false)?;
        vec![(at.symbol.unwrap_or_else(|| func.to_string()), at.offset)]
    };
    if found.is_empty() {
        return Err(Error::usage(format!(
            "no function of {} matches '{func}' (uprobe -l {target} lists them)",
            t.display_path.display()
        )));
    }
    Ok((t, found))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(s: &str) -> Definition {
        parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn perf_tools_examples() {
        let d = p("p:bash:readline");
        assert_eq!(
            (
                d.kind,
                d.name.as_deref(),
                &*d.location.target,
                &*d.location.symbol
            ),
            (Kind::Entry, None, "bash", "readline")
        );
        assert_eq!(default_name(&d), "p_bash_readline");
        let d = p("p:/bin/bash:readline");
        assert_eq!(d.location.target, "/bin/bash");
        assert_eq!(default_name(&d), "p_bash_readline");
        let d = p("r:bash:readline +0($retval):string");
        assert_eq!(d.kind, Kind::Return);
        assert_eq!(d.args, ["+0($retval):string"]);
        assert_eq!(default_name(&d), "r_bash_readline");
        let d = p("p:libc:sleep %di");
        assert_eq!((d.name, d.args), (None, vec!["%di".to_string()]));
        let d = p("p:libc:0xbf130");
        assert_eq!(d.location.symbol, "0xbf130");
        assert_eq!(default_name(&d), "p_libc_0xbf130");
        let d = p("r:libc:fopen file=$retval");
        assert_eq!(d.args, ["file=$retval"]);
        let d = p("p:libssl:SSL_write +0(%si):string");
        assert_eq!(default_name(&d), "p_libssl_SSL_write");
    }

    #[test]
    fn the_missions_form_gets_a_note() {
        let note = |s: &str| read_at_entry_note(&p(s));
        let n = note("p:libssl:SSL_read +0(%si):string").unwrap();
        assert!(
            n.contains("uprobe 'r:libssl:SSL_read +0($arg2):bytes[$retval]'"),
            "{n}"
        );
        assert!(n.contains("sslsniff"));
        assert!(note("p:libc:read buf=+0($arg2):string").is_some());
        assert!(note("p:libgnutls:gnutls_record_recv +0(%si):u64").is_some());
        let n = note("p:libssl:SSL_read_ex +0(%si):string").unwrap();
        assert!(!n.contains("bytes[$retval]"), "{n}");
        for quiet in [
            "r:libssl:SSL_read +0($arg2):bytes[$retval]",
            "p:libssl:SSL_write +0(%si):string",
            "p:libssl:SSL_read %si",
            "p:libssl:SSL_read +0(%di):u32",
        ] {
            assert_eq!(note(quiet), None, "{quiet}");
        }
    }

    #[test]
    fn a_second_word_that_is_not_an_argument_makes_the_first_a_name() {
        let d = p("p:rl bash:readline");
        assert_eq!(d.name.as_deref(), Some("rl"));
        assert_eq!(
            (&*d.location.target, &*d.location.symbol),
            ("bash", "readline")
        );
        let d = p("r:myopen libc:fopen file=$retval +0(%di):string");
        assert_eq!(d.name.as_deref(), Some("myopen"));
        assert_eq!(d.args.len(), 2);
        // The name must be an identifier.
        assert_eq!(parse("p:my-name bash:readline").unwrap_err().exit_code(), 2);
        assert_eq!(parse("p:g/n bash:readline").unwrap_err().exit_code(), 2);
    }

    #[test]
    fn filters_after_if() {
        let d = p("r:libc:fopen file=$retval if file == 0");
        assert_eq!(d.args, ["file=$retval"]);
        assert_eq!(d.filter.as_deref(), Some("file == 0"));
        let d = p("p:libc:malloc if common_pid == 1");
        assert_eq!(d.name, None);
        assert_eq!(d.location.symbol, "malloc");
        assert_eq!(d.filter.as_deref(), Some("common_pid == 1"));
        // A name `if` is still a name.
        let d = p("p:if libc:malloc");
        assert_eq!(d.name.as_deref(), Some("if"));
        assert!(parse("p:libc:malloc if ").is_err());
    }

    #[test]
    fn cpp_names_and_offsets() {
        let d = p("p:./prog:ns::Klass::method(int, char const*) %di");
        assert_eq!(d.location.target, "./prog");
        assert_eq!(d.location.symbol, "ns::Klass::method(int, char const*)");
        assert_eq!(d.args, ["%di"]);
        assert_eq!(default_name(&d), "p_prog_ns_Klass_method_int_char_const");
        let d = p("p:libc:malloc+0x10");
        assert_eq!(default_name(&d), "p_libc_malloc_0x10");
        // Versions and parameter lists do not make a location an argument.
        let d = p("p:old libfoo:vfunc@V1");
        assert_eq!(
            (d.name.as_deref(), &*d.location.symbol),
            (Some("old"), "vfunc@V1")
        );
        let d =
            p("p:v libstdc++:std::vector<int, std::allocator<int> >::push_back(int const&) %si");
        assert_eq!(
            d.location.symbol,
            "std::vector<int, std::allocator<int> >::push_back(int const&)"
        );
        assert_eq!(
            (d.name.as_deref(), &*d.location.target),
            (Some("v"), "libstdc++")
        );
        assert_eq!(d.args, ["%si"]);
        let d = p("p:libc:malloc %di if arg1 < 5");
        assert_eq!(d.filter.as_deref(), Some("arg1 < 5"));
        let d = p("p:m ./prog:ns::f(int) +0(%di):u32");
        assert_eq!(
            (d.name.as_deref(), &*d.location.symbol),
            (Some("m"), "ns::f(int)")
        );
        assert_eq!(d.args, ["+0(%di):u32"]);
    }

    #[test]
    fn refuses_what_is_not_a_definition() {
        for bad in [
            "",
            "bash:readline",
            "x:bash:readline",
            "p:",
            "p: bash:readline",
            "p:bash",
            "p:bash:",
            "p::readline",
            "p:bash:readline\n-:uprobes/x",
            "p:bash:readline\r",
            "p:name %di",
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn default_names_are_valid_and_bounded() {
        let d = p("p:/opt/my-app.v2/bin/a.out:0x1000");
        assert_eq!(default_name(&d), "p_a_out_0x1000");
        let long = format!("p:libc:{}", "x".repeat(200));
        let n = default_name(&p(&long));
        assert!(n.len() <= MAX_DEFAULT_NAME);
        crate::lifecycle::dynevent::check_event_name(&n).unwrap();
    }

    proptest! {
        #[test]
        fn parsing_never_panics_and_yields_one_line(s in "\\PC{0,60}") {
            if let Ok(d) = parse(&s) {
                prop_assert!(!d.location.target.is_empty() && !d.location.symbol.is_empty());
                prop_assert!(!d.location.target.contains('\n') && !d.location.symbol.contains('\n'));
                let n = default_name(&d);
                prop_assert!(crate::lifecycle::dynevent::check_event_name(&n).is_ok(), "{}", n);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(s in proptest::collection::vec(any::<char>(), 0..40)) {
            let s: String = s.into_iter().collect();
            let _ = parse(&s);
            let _ = sanitize(&s);
        }
    }
}
