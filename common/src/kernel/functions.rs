//! Kernel functions the function tracer can hook: the list in
//! `available_filter_functions`, matching it by glob or regular expression,
//! and writing a `set_ftrace_filter` quickly and safely.
//!
//! Facts that shape this module (kernel `ftrace.c`, checked in the 6.1 and
//! 6.12 guests of `tests/vm`):
//! - The kernel takes one name per `write()` call on `set_ftrace_filter`
//!   (a longer write returns a short count) and compares a plain name with
//!   every traceable function, looking each one's name up in kallsyms:
//!   70 names took 10 to 20 s in a TCG guest. A number `N` instead selects
//!   the function on line `N` of `available_filter_functions` (kernel 5.1
//!   and later) without any name lookup: 400 indexes took 0.05 to 0.5 s.
//!   [`write_filter`] writes indexes and checks the result, and writes
//!   names only if the kernel did not take the indexes.
//! - The filter is applied (code patched) once, when the file is closed:
//!   all names go through one open file.
//! - Line numbers change when a module is loaded or unloaded between
//!   reading the list and writing the filter: the filter read back must
//!   list exactly the functions wanted, or it is written again by name.
//! - An empty filter means *every* function: [`write_filter`] never leaves
//!   a filter empty that should hold something.
//! - Lines may end with ` [module]`; names repeat (static functions of the
//!   same name in several files); 6.1 lists placeholders
//!   `__ftrace_invalid_address___N` for functions the build dropped.

use crate::base::error::{Error, ErrorKind, Result};
use crate::base::glob;
use crate::kernel::tracefs::{self, Tracefs};
use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// What `set_ftrace_filter` reads when it holds no function.
pub const ALL_FUNCTIONS: &str = "#### all functions enabled ####";

/// One line of `available_filter_functions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceableFunction {
    /// Its line number, from 1: what `set_ftrace_filter` takes as an index.
    pub index: u32,
    /// The function name (`vfs_read`, `tcp_v4_rcv.cold`).
    pub name: String,
    /// The module, for functions of a loaded module.
    pub module: Option<String>,
}

impl TraceableFunction {
    /// The line as the kernel prints it (`name` or `name [module]`): also
    /// what `set_ftrace_filter` lists.
    pub fn line(&self) -> String {
        match &self.module {
            Some(m) => format!("{} [{m}]", self.name),
            None => self.name.clone(),
        }
    }
}

/// Whether a name is one of the placeholders some kernels list for
/// functions whose code was dropped (never a real function).
pub fn is_placeholder(name: &str) -> bool {
    name.starts_with("__ftrace_invalid_address__")
}

/// The traceable functions of the running kernel.
#[derive(Debug, Clone, Default)]
pub struct FunctionList {
    funcs: Vec<TraceableFunction>,
}

impl FunctionList {
    /// Reads `available_filter_functions`. The read fails with EPERM where
    /// the function tracer is listed but unusable: check
    /// [`crate::kernel::caps::Feature::FunctionTracer`] first for a clear message.
    pub fn load(tfs: &Tracefs) -> Result<FunctionList> {
        Ok(FunctionList::parse(
            &tfs.read("available_filter_functions")?,
        ))
    }

    /// Parses the text of `available_filter_functions`. Never panics;
    /// lines it cannot read still count for the numbering.
    pub fn parse(text: &str) -> FunctionList {
        let mut funcs = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let mut words = line.split_whitespace();
            let Some(name) = words.next() else { continue };
            let module = words
                .next()
                .and_then(|m| m.strip_prefix('['))
                .and_then(|m| m.strip_suffix(']'))
                .map(str::to_string);
            funcs.push(TraceableFunction {
                index: (i + 1).min(u32::MAX as usize) as u32,
                name: name.to_string(),
                module,
            });
        }
        FunctionList { funcs }
    }

    /// Every function, in the kernel's order.
    pub fn all(&self) -> &[TraceableFunction] {
        &self.funcs
    }

    /// The number of lines.
    pub fn len(&self) -> usize {
        self.funcs.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.funcs.is_empty()
    }

    /// The functions whose name `matches`, placeholders left out, in the
    /// kernel's order.
    pub fn matching(&self, matches: impl Fn(&str) -> bool) -> Vec<&TraceableFunction> {
        self.funcs
            .iter()
            .filter(|f| !is_placeholder(&f.name) && matches(&f.name))
            .collect()
    }

    /// The functions `pattern` matches (through `matches`); an error naming
    /// the pattern, with names close to it, when it matches none. `what`
    /// says what the pattern is for (`"the function "`, or empty).
    pub fn require_matching(
        &self,
        pattern: &str,
        what: &str,
        matches: impl Fn(&str) -> bool,
    ) -> Result<Vec<&TraceableFunction>> {
        let found = self.matching(matches);
        if found.is_empty() {
            return Err(Error::usage(format!(
                "no traceable kernel function matches {what}'{pattern}' (checked {} functions in available_filter_functions){}",
                self.len(),
                glob::hint(&self.suggestions(pattern, 4))
            )));
        }
        Ok(found)
    }

    /// Names close to `wanted` for a "did you mean" (glob characters are
    /// dropped first; a prefix of a name also counts).
    pub fn suggestions(&self, wanted: &str, max: usize) -> Vec<String> {
        let plain: String = wanted
            .chars()
            .filter(|c| !matches!(c, '*' | '?' | '[' | ']' | '^' | '$' | '\\' | '.' | '+'))
            .collect();
        let mut seen = std::collections::HashSet::new();
        let names: Vec<&str> = self
            .funcs
            .iter()
            .map(|f| f.name.as_str())
            .filter(|n| !is_placeholder(n) && seen.insert(*n))
            .collect();
        glob::suggestions(&plain, names.iter().copied(), max)
    }
}

/// More matched functions than this need -F (funccount, functrace).
pub const HUGE_MATCH: usize = 1000;

/// Refuses, unless forced, `total` matches (`functions` of them kernel
/// functions) above [`HUGE_MATCH`]: attaching that many is slow and slows
/// every call. `estimate` is how long attaching can take (`11 s`), `hint`
/// how to narrow down (`-l lists the matches`).
pub fn refuse_huge_match(
    total: usize,
    functions: usize,
    force: bool,
    estimate: &str,
    doing: &str,
    hint: &str,
) -> Result<()> {
    if total <= HUGE_MATCH || force {
        return Ok(());
    }
    Err(Error::usage(format!(
        "the patterns match {total} functions and events ({functions} kernel functions): attaching and detaching that many can take about {estimate} (less on a fast machine) and slows every call of each; use -F to {doing} anyway, or narrow the patterns{hint}"
    )))
}

/// The lines of a `set_ftrace_filter` (empty when it holds no function;
/// `name:command` probe lines are kept as they are).
pub fn read_filter(path: &Path) -> Result<Vec<String>> {
    Ok(parse_filter(&tracefs::read_text(path)?))
}

/// Parses the text of a `set_ftrace_filter`.
pub fn parse_filter(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && *l != ALL_FUNCTIONS && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// Writes `tokens` to `path` through one open file: truncating first
/// (`append` false) or adding. The kernel takes one token per `write()`;
/// short writes are continued. `stop` is asked between tokens (a signal):
/// `Ok(false)` means it said stop, and the file was closed with what was
/// written so far.
fn write_tokens(
    path: &Path,
    tokens: &[String],
    append: bool,
    stop: &dyn Fn() -> bool,
) -> std::io::Result<bool> {
    let mut opts = OpenOptions::new();
    opts.write(true).custom_flags(libc::O_CLOEXEC);
    if append {
        opts.append(true);
    } else {
        opts.truncate(true);
    }
    let mut f = opts.open(path)?;
    // Batches of whole tokens of at most 4 KiB: the kernel's parser holds
    // one token at a time, so a write may end anywhere after one.
    let mut batch = String::new();
    let mut i = 0;
    while i < tokens.len() {
        if stop() {
            return Ok(false);
        }
        batch.clear();
        while i < tokens.len() && (batch.is_empty() || batch.len() + tokens[i].len() < 4096) {
            batch.push_str(&tokens[i]);
            batch.push(' ');
            i += 1;
        }
        f.write_all(batch.as_bytes())?;
    }
    // Closing applies the filter; errors of that step come from close,
    // which Rust ignores: the caller reads the filter back instead.
    drop(f);
    Ok(true)
}

fn multiset(lines: impl IntoIterator<Item = String>) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for l in lines {
        *m.entry(l).or_insert(0) += 1;
    }
    m
}

/// How [`write_filter`] got the filter in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterWrite {
    /// By line numbers.
    ByIndex,
    /// By names (the kernel did not take the indexes, or the list changed).
    ByName,
}

/// Writes `funcs` into the `set_ftrace_filter` at `path` (replacing what is
/// there) and checks, by reading it back, that it lists exactly them.
///
/// Never leaves the filter empty: when it returns an error, the filter
/// was emptied only if nothing else could be written, and the caller
/// must not start tracing with it. `stop` is asked between writes
/// (signals); a stop gives an error of kind `Io` with the message
/// `interrupted`.
pub fn write_filter(
    path: &Path,
    funcs: &[&TraceableFunction],
    stop: &dyn Fn() -> bool,
) -> Result<FilterWrite> {
    if funcs.is_empty() {
        return Err(Error::usage("no function to put in the filter"));
    }
    let want = multiset(funcs.iter().map(|f| f.line()));
    let check = || -> Result<bool> {
        let got = multiset(read_filter(path)?);
        // Duplicated names: an index selects one line, a name all of
        // them; either way every wanted line must be there, and nothing
        // else.
        Ok(got.keys().all(|k| want.contains_key(k))
            && want
                .iter()
                .all(|(k, n)| got.get(k).copied().unwrap_or(0) >= (*n).min(1)))
    };
    let io_err = |e: std::io::Error| Error::io("write the function filter", path, e);
    let interrupted = Error::interrupted;
    let indexes: Vec<String> = funcs.iter().map(|f| f.index.to_string()).collect();
    match write_tokens(path, &indexes, false, stop) {
        Ok(false) => return Err(interrupted()),
        Ok(true) if check()? => return Ok(FilterWrite::ByIndex),
        // EINVAL: a kernel without index support (or a line that moved
        // past the end); anything else is worth reporting.
        Ok(true) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
        Err(e) => return Err(io_err(e)),
    }
    let mut names: Vec<String> = funcs.iter().map(|f| f.name.clone()).collect();
    names.sort();
    names.dedup();
    match write_tokens(path, &names, false, stop) {
        Ok(false) => Err(interrupted()),
        Ok(true) if check()? => Ok(FilterWrite::ByName),
        Ok(true) => Err(Error::new(
            ErrorKind::Io,
            format!(
                "the function filter {} does not hold the functions written to it (did a module load or unload?)",
                path.display()
            ),
        )),
        Err(e) => Err(io_err(e)),
    }
}

/// Empties a `set_ftrace_filter` (truncating it).
pub fn clear_filter(path: &Path) -> Result<()> {
    tracefs::write_file(path, "", false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LIST: &str = "\
vfs_read
vfs_write
ksys_read
__ftrace_invalid_address___64
do_one [modx]
do_one
";

    #[test]
    fn parses_lines_with_indexes_and_modules() {
        let l = FunctionList::parse(LIST);
        assert_eq!(l.len(), 6);
        assert_eq!(l.all()[0].index, 1);
        assert_eq!(l.all()[4].module.as_deref(), Some("modx"));
        assert_eq!(l.all()[4].line(), "do_one [modx]");
        assert_eq!(l.all()[5].line(), "do_one");
        let m = l.matching(|n| n.starts_with("vfs_"));
        assert_eq!(m.len(), 2);
        assert_eq!(m[1].index, 2);
        assert_eq!(l.matching(|_| true).len(), 5, "placeholders left out");
        assert_eq!(l.matching(|n| n == "do_one").len(), 2);
        assert_eq!(l.suggestions("vfs_raed", 2)[0], "vfs_read");
        assert_eq!(l.suggestions("ksys_rea*", 2)[0], "ksys_read");
    }

    #[test]
    fn filter_text_parses() {
        assert!(parse_filter("#### all functions enabled ####\n").is_empty());
        assert_eq!(
            parse_filter("vfs_read\ndo_one [modx]\n"),
            ["vfs_read", "do_one [modx]"]
        );
    }

    #[test]
    fn writes_indexes_then_checks() {
        // A plain file stands in for set_ftrace_filter: it keeps what is
        // written, so the check sees indexes and falls back to names.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("set_ftrace_filter");
        std::fs::write(&p, "").unwrap();
        let l = FunctionList::parse(LIST);
        let m = l.matching(|n| n.starts_with("vfs_"));
        // Names written one per token: the file reads back "vfs_read
        // vfs_write " on one line, which is not the two lines wanted.
        let e = write_filter(&p, &m, &|| false).unwrap_err();
        assert!(e.message().contains("does not hold"), "{e}");
        let e = write_filter(&p, &m, &|| true).unwrap_err();
        assert!(e.is_interrupted(), "{e}");
        assert!(write_filter(&p, &[], &|| false).is_err());
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in "\\PC{0,300}") {
            let l = FunctionList::parse(&s);
            let _ = l.matching(|n| n.len() > 3);
            let _ = l.suggestions(&s, 3);
            let _ = parse_filter(&s);
        }
    }
}
