//! A hist trigger SPEC, in the kernel's syntax, checked against an event's
//! format the way the kernel's `trace_events_hist.c` checks it.
//!
//! `[hist:]keys=K[,K...][:vals=V[,V...]][:sort=S[,S]][:size=N] [if FILTER]`
//! (also `key=`, `val=`, `values=`). A key or value is a field of the
//! event, `common_timestamp`, `common_cpu` (or `cpu`), with at most one
//! modifier: `.hex`, `.sym`, `.sym-offset`, `.execname` (`common_pid`
//! only), `.syscall`, `.log2`, `.buckets=N`, `.usecs` (`common_timestamp`
//! only). At most 3 keys, 2 values besides `hitcount`, 2 sort keys
//! (`.descending` or `.ascending`), a size from 128 to 131072 entries
//! (rounded up to a power of two).
//!
//! [`split`] takes the SPEC apart; [`compile`] binds it to an event's
//! format for computing in user space, and refuses what the kernel would
//! refuse with the kernel's words and the position of the offending part.
//! What only the kernel computes (variables, expressions, actions, named
//! or cleared triggers, stack traces as keys...) is refused there too,
//! saying so. Pure; never panics.

use ftrace_common::buffer::filter::{Filter, FilterError};
use ftrace_common::buffer::format::{EventFormat, Field, FieldKind};

/// The smallest and largest table, as `map_bits` (`tracing_map.h`).
const BITS_MIN: u32 = 7;
const BITS_MAX: u32 = 17;
/// The kernel's default table: 2048 entries.
pub const BITS_DEFAULT: u32 = 11;
const KEYS_MAX: usize = 3;
const VALS_MAX: usize = 2;
const SORT_KEYS_MAX: usize = 2;
/// The longest string key the kernel keeps (`MAX_FILTER_STR_VAL`).
pub const STR_MAX: usize = 256;
/// All keys together at most (`HIST_KEY_SIZE_MAX`).
const KEY_SIZE_MAX: usize = STR_MAX + 16 * 8;

/// A SPEC taken apart: the attributes after `hist:` and the filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecText {
    /// The attributes (`keys=...:vals=...`), as written.
    pub body: String,
    /// The filter after `if`, trimmed.
    pub filter: Option<String>,
}

impl SpecText {
    /// The command as the kernel shows it in `error_log`.
    pub fn command(&self) -> String {
        ftrace_common::lifecycle::hist::command(&self.body, self.filter.as_deref(), None)
    }
}

/// Why a SPEC cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// What is wrong.
    pub message: String,
    /// Where in [`SpecText::command`] (or, for the filter, in the filter).
    pub pos: usize,
    /// The error is in the filter.
    pub in_filter: bool,
    /// The kernel would take it; only user space cannot compute it.
    pub kernel_only: bool,
}

impl SpecError {
    fn at(message: impl Into<String>, pos: usize) -> SpecError {
        SpecError {
            message: message.into(),
            pos,
            in_filter: false,
            kernel_only: false,
        }
    }

    fn kernel(what: &str, pos: usize) -> SpecError {
        SpecError {
            kernel_only: true,
            ..SpecError::at(
                format!("{what} is computed only by the kernel's hist triggers"),
                pos,
            )
        }
    }

    /// The message with the command and a caret, as the kernel's
    /// `error_log` shows them.
    pub fn render(&self, spec: &SpecText) -> String {
        if self.in_filter {
            let f = spec.filter.as_deref().unwrap_or("");
            return FilterError {
                message: self.message.clone(),
                pos: self.pos,
            }
            .render(f);
        }
        FilterError {
            message: self.message.clone(),
            pos: self.pos,
        }
        .render(&spec.command())
    }
}

/// Takes `[hist:]ATTRS [if FILTER]` apart as the kernel does: the filter
/// starts at the first word `if` with blanks on both sides.
pub fn split(text: &str) -> Result<SpecText, SpecError> {
    if let Some(c) = text.chars().find(|c| c.is_control() && *c != '\t') {
        return Err(SpecError::at(
            format!("the spec contains a control character ({c:?}): it must be one line"),
            0,
        ));
    }
    let t = text.trim();
    let t = t.strip_prefix("hist:").unwrap_or(t);
    if t.ends_with(" if") || t.ends_with("\tif") {
        return Err(SpecError::at("no filter after 'if'", 5 + t.len() - 2));
    }
    let b = t.as_bytes();
    let mut at = None;
    for (i, _) in t.match_indices("if") {
        let before = i.checked_sub(1).map(|j| b[j]);
        let after = b.get(i + 2).copied();
        if matches!(before, Some(b' ' | b'\t')) && matches!(after, Some(b' ' | b'\t')) {
            at = Some(i);
            break;
        }
    }
    let (body, filter) = match at {
        Some(i) => {
            let f = t[i + 2..].trim();
            if f.is_empty() {
                return Err(SpecError::at("no filter after 'if'", 5 + i));
            }
            (t[..i].trim(), Some(f.to_string()))
        }
        None => (t.trim(), None),
    };
    if body.is_empty() {
        return Err(SpecError::at("the spec is empty: give keys=FIELD,...", 5));
    }
    Ok(SpecText {
        body: body.to_string(),
        filter,
    })
}

/// Where a key's or value's number comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A field of the event.
    Field(Field),
    /// `common_timestamp`: the event's time stamp.
    Timestamp,
    /// `common_cpu` (or `cpu`): the CPU that recorded it.
    Cpu,
}

/// How a key is shown (and, for `.log2` and `.buckets`, grouped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Modifier {
    /// As a decimal number (a string as text).
    Plain,
    /// `.hex`
    Hex,
    /// `.sym`: the kernel symbol.
    Sym,
    /// `.sym-offset`: symbol, offset and size.
    SymOffset,
    /// `.execname`: the task name (keys on `common_pid`).
    Execname,
    /// `.syscall`: the system call name.
    Syscall,
    /// `.log2`: grouped by power of two.
    Log2,
    /// `.buckets=N`: grouped by N.
    Buckets(u64),
    /// `.usecs` (on `common_timestamp`).
    Usecs,
}

impl Modifier {
    fn text(self) -> Option<String> {
        Some(match self {
            Modifier::Plain => return None,
            Modifier::Hex => "hex".into(),
            Modifier::Sym => "sym".into(),
            Modifier::SymOffset => "sym-offset".into(),
            Modifier::Execname => "execname".into(),
            Modifier::Syscall => "syscall".into(),
            Modifier::Log2 => "log2".into(),
            Modifier::Buckets(n) => format!("buckets={n}"),
            Modifier::Usecs => "usecs".into(),
        })
    }
}

/// One key or value.
#[derive(Debug, Clone)]
pub struct Item {
    /// The name the kernel shows (`common_pid`, `common_timestamp`).
    pub name: String,
    /// Where its number comes from.
    pub source: Source,
    /// Its modifier.
    pub modifier: Modifier,
}

impl Item {
    /// Whether it is a string (keys only: strings are compared as text).
    pub fn is_string(&self) -> bool {
        matches!(&self.source, Source::Field(f) if f.is_string())
    }

    /// `name[.modifier]` as the trigger info prints it.
    pub fn print(&self) -> String {
        match self.modifier.text() {
            Some(m) => format!("{}.{m}", self.name),
            None => self.name.clone(),
        }
    }

    /// (size, signed) of the number as the kernel compares it.
    pub fn cmp_type(&self) -> (usize, bool) {
        match &self.source {
            Source::Field(f) => (f.size, f.signed),
            _ => (8, false),
        }
    }
}

/// What entries are sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    /// The hit count.
    Hitcount,
    /// A value's sum (index into [`Compiled::vals`]).
    Val(usize),
    /// A key (index into [`Compiled::keys`]).
    Key(usize),
}

/// A SPEC bound to an event, ready to be computed in user space.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// The keys, in order.
    pub keys: Vec<Item>,
    /// The summed values besides `hitcount`.
    pub vals: Vec<Item>,
    /// Up to two sort keys, each with `descending`.
    pub sort: Vec<(SortBy, bool)>,
    /// The table holds `1 << bits` entries.
    pub bits: u32,
    /// The filter, compiled.
    pub filter: Option<Filter>,
    /// Time stamps in microseconds (some `common_timestamp.usecs`).
    pub usecs: bool,
    /// The trigger info line without its state (`hist:keys=...:size=2048
    /// if ...`), as the kernel prints it.
    pub info: String,
}

/// Splits at commas outside `(...)` (not needed by the kernel's own
/// syntax, but keeps `f(a,b)`-looking mistakes in one piece).
fn items(list: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in list.char_indices() {
        if c == ',' {
            out.push((start, &list[start..i]));
            start = i + 1;
        }
    }
    out.push((start, &list[start..]));
    out
}

/// Parses one key or value: `field[.modifier]`, at `pos` in the command.
fn item(text: &str, pos: usize, fmt: &EventFormat, key: bool) -> Result<Item, SpecError> {
    if text == "stacktrace" || text == "common_stacktrace" || text.ends_with(".stacktrace") {
        return Err(SpecError::kernel("a stack trace key", pos));
    }
    if text.starts_with('$') {
        return Err(SpecError::kernel("a variable reference", pos));
    }
    if text.contains(['+', '*', '/'])
        || text[1.min(text.len())..].contains('-') && !text.contains(".sym-offset")
    {
        return Err(SpecError::kernel("an expression", pos));
    }
    if text.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(SpecError::kernel("a constant", pos));
    }
    let (name, modifier) = match text.split_once('.') {
        Some((n, m)) => (n, Some(m)),
        None => (text, None),
    };
    let mpos = pos + name.len() + 1;
    let modifier = match modifier {
        None => Modifier::Plain,
        Some("hex") => Modifier::Hex,
        Some("sym") => Modifier::Sym,
        Some("sym-offset") => Modifier::SymOffset,
        Some("execname") if name == "common_pid" => Modifier::Execname,
        Some("syscall") => Modifier::Syscall,
        Some("log2") => Modifier::Log2,
        Some("usecs") => Modifier::Usecs,
        Some("percent" | "graph") => {
            return Err(SpecError::kernel(
                &format!("'.{}'", modifier.unwrap_or_default()),
                mpos,
            ))
        }
        Some(m) if m.starts_with("bucket") => {
            let rest = m["bucket".len()..]
                .strip_prefix('s')
                .unwrap_or(&m["bucket".len()..]);
            let n = rest
                .strip_prefix('=')
                .and_then(parse_ulong)
                .filter(|n| *n > 0)
                .ok_or_else(|| SpecError::at("Invalid field modifier", mpos))?;
            Modifier::Buckets(n)
        }
        Some(_) => return Err(SpecError::at("Invalid field modifier", mpos)),
    };
    let source = if name == "common_timestamp" {
        Source::Timestamp
    } else if name == "common_cpu" {
        Source::Cpu
    } else {
        match fmt.field(name) {
            Some(f) => Source::Field(f.clone()),
            None if name == "cpu" || name == "CPU" => Source::Cpu,
            None => return Err(SpecError::at("Couldn't find field", pos)),
        }
    };
    if let Source::Field(f) = &source {
        let scalar = f.kind == FieldKind::Scalar && matches!(f.size, 1 | 2 | 4 | 8);
        if !scalar && !f.is_string() {
            return Err(SpecError::at(
                format!(
                    "{name} is an array of {} bytes: it cannot be a key or a value",
                    f.size
                ),
                pos,
            ));
        }
        if f.is_string() && (!key || !matches!(modifier, Modifier::Plain)) {
            return Err(SpecError::at(
                if key {
                    "Invalid field modifier"
                } else {
                    "a string cannot be a summed value"
                },
                if key { mpos } else { pos },
            ));
        }
    }
    if !key && !matches!(modifier, Modifier::Plain | Modifier::Hex | Modifier::Usecs) {
        return Err(SpecError::at("Invalid field modifier", mpos));
    }
    let name = match source {
        Source::Cpu => "common_cpu".to_string(),
        _ => name.to_string(),
    };
    Ok(Item {
        name,
        source,
        modifier,
    })
}

/// A number as the kernel's `kstrtoul(s, 0)` reads it.
fn parse_ulong(s: &str) -> Option<u64> {
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()
    } else if s.len() > 1 && s.starts_with('0') {
        u64::from_str_radix(&s[1..], 8).ok()
    } else {
        s.parse().ok()
    }
}

/// `ilog2(roundup_pow_of_two(n))`, as the kernel sizes tables.
fn map_bits(n: u64) -> u32 {
    if n <= 1 {
        0
    } else {
        64 - (n - 1).leading_zeros()
    }
}

/// Binds a SPEC to an event's format.
pub fn compile(spec: &SpecText, fmt: &EventFormat) -> Result<Compiled, SpecError> {
    // Offsets count in "hist:BODY".
    let base = 5;
    let mut keys_text = None;
    let mut vals_text = None;
    let mut sort_text = None;
    let mut bits = BITS_DEFAULT;
    let mut off = 0;
    for attr in spec.body.split(':') {
        let pos = base + off;
        off += attr.len() + 1;
        if let Some((lhs, rhs)) = attr.split_once('=') {
            if rhs.is_empty() {
                return Err(SpecError::at("Empty assignment", pos));
            }
            let rpos = pos + lhs.len() + 1;
            match lhs {
                "key" | "keys" => keys_text = Some((rpos, rhs)),
                "val" | "vals" | "values" => vals_text = Some((rpos, rhs)),
                "sort" => sort_text = Some((rpos, rhs)),
                "size" => {
                    bits = parse_ulong(rhs)
                        .map(map_bits)
                        .filter(|b| (BITS_MIN..=BITS_MAX).contains(b))
                        .ok_or_else(|| {
                            SpecError::at("the table size must be from 128 to 131072 entries", rpos)
                        })?;
                }
                "name" => return Err(SpecError::kernel("a named (shared) hist", pos)),
                "clock" => return Err(SpecError::kernel("another clock", pos)),
                _ => return Err(SpecError::kernel("a variable", pos)),
            }
        } else {
            match attr {
                "pause" | "cont" | "continue" | "clear" => {
                    return Err(SpecError::at(
                        format!("'{attr}' acts on an existing trigger: hist makes its own"),
                        pos,
                    ))
                }
                a if a.starts_with("onmatch(")
                    || a.starts_with("onmax(")
                    || a.starts_with("onchange(") =>
                {
                    return Err(SpecError::kernel("an action", pos))
                }
                "nohitcount" | "NOHC" => return Err(SpecError::kernel("'nohitcount'", pos)),
                _ => {
                    return Err(SpecError::at(
                        "not a hist attribute (keys=, vals=, sort=, size=)",
                        pos,
                    ))
                }
            }
        }
    }
    let Some((kpos, ktext)) = keys_text else {
        return Err(SpecError::at("a hist needs keys=FIELD[,FIELD...]", base));
    };
    let mut keys = Vec::new();
    let mut key_size = 0;
    for (i, (o, k)) in items(ktext).into_iter().enumerate() {
        if i == KEYS_MAX {
            return Err(SpecError::at("Too many keys (Max = 3)", kpos + o));
        }
        let it = item(k, kpos + o, fmt, true)?;
        key_size += match &it.source {
            Source::Field(f) if f.is_string() => match f.kind {
                FieldKind::Array { .. } => f.size.next_multiple_of(8),
                _ => STR_MAX,
            },
            _ => 8,
        };
        if key_size > KEY_SIZE_MAX {
            return Err(SpecError::at("the keys are too long together", kpos + o));
        }
        keys.push(it);
    }
    let mut vals = Vec::new();
    if let Some((vpos, vtext)) = vals_text {
        for (o, v) in items(vtext) {
            if v == "hitcount" {
                continue;
            }
            if vals.len() == VALS_MAX {
                return Err(SpecError::at(
                    "Too many values (Max = 2 besides hitcount)",
                    vpos + o,
                ));
            }
            vals.push(item(v, vpos + o, fmt, false)?);
        }
    }
    let mut sort = Vec::new();
    if let Some((spos, stext)) = sort_text {
        let list = items(stext);
        if list.len() > SORT_KEYS_MAX {
            return Err(SpecError::at("Too many sort fields (Max = 2)", spos));
        }
        for (o, s) in list {
            let (name, m) = match s.split_once('.') {
                Some((n, m)) => (n, Some(m)),
                None => (s, None),
            };
            if name.is_empty() {
                return Err(SpecError::at("Empty sort field", spos));
            }
            let descending = match m {
                None | Some("ascending") => false,
                Some("descending") => true,
                Some(_) => {
                    return Err(SpecError::at(
                        "Invalid sort modifier",
                        spos + o + name.len() + 1,
                    ))
                }
            };
            let by = if name == "hitcount" {
                SortBy::Hitcount
            } else if let Some(i) = vals.iter().position(|v| v.name == name) {
                SortBy::Val(i)
            } else if let Some(i) = keys.iter().position(|k| k.name == name) {
                SortBy::Key(i)
            } else {
                return Err(SpecError::at("Sort field must be a key or a val", spos + o));
            };
            sort.push((by, descending));
        }
    }
    if sort.is_empty() {
        sort.push((SortBy::Hitcount, false));
    }
    let filter = match &spec.filter {
        Some(f) => Some(Filter::parse(f, fmt).map_err(|e| SpecError {
            message: e.message,
            pos: e.pos,
            in_filter: true,
            kernel_only: false,
        })?),
        None => None,
    };
    let timestamps = keys
        .iter()
        .chain(vals.iter())
        .any(|i| matches!(i.source, Source::Timestamp));
    let usecs = keys
        .iter()
        .chain(vals.iter())
        .any(|i| matches!(i.source, Source::Timestamp) && i.modifier == Modifier::Usecs);
    let mut c = Compiled {
        keys,
        vals,
        sort,
        bits,
        filter,
        usecs,
        info: String::new(),
    };
    c.info = info(&c, timestamps, spec.filter.as_deref());
    Ok(c)
}

impl Compiled {
    /// Whether a key or value is `common_timestamp`: the kernel then runs
    /// the instance on the hist's clock (`global`, as the trigger info
    /// says), and so must the buffer for the same numbers.
    pub fn timestamps(&self) -> bool {
        self.keys
            .iter()
            .chain(self.vals.iter())
            .any(|i| matches!(i.source, Source::Timestamp))
    }
}

/// The trigger info as `event_hist_trigger_print()` writes it, without
/// the state (`[active]`).
fn info(c: &Compiled, timestamps: bool, filter: Option<&str>) -> String {
    let keys: Vec<String> = c.keys.iter().map(Item::print).collect();
    let mut vals = vec!["hitcount".to_string()];
    vals.extend(c.vals.iter().map(Item::print));
    let sort: Vec<String> = c
        .sort
        .iter()
        .map(|(by, desc)| {
            let mut s = match by {
                SortBy::Hitcount => "hitcount".to_string(),
                SortBy::Val(i) => c.vals[*i].print(),
                SortBy::Key(i) => c.keys[*i].print(),
            };
            if *desc {
                s.push_str(".descending");
            }
            s
        })
        .collect();
    let mut s = format!(
        "hist:keys={}:vals={}:sort={}:size={}",
        keys.join(","),
        vals.join(","),
        sort.join(","),
        1u32 << c.bits
    );
    if timestamps {
        s.push_str(":clock=global");
    }
    if let Some(f) = filter {
        s.push_str(" if ");
        s.push_str(f);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    use crate::testdata::SYS_EXIT_READ as FMT;

    fn fmt() -> EventFormat {
        EventFormat::parse(FMT).unwrap()
    }

    fn c(text: &str) -> Result<Compiled, SpecError> {
        compile(&split(text)?, &fmt())
    }

    #[test]
    fn the_seeds_spec_and_its_trigger_info() {
        let s = split("hist:key=common_pid.execname:values=ret:sort=ret if ret >= 0").unwrap();
        assert_eq!(s.body, "key=common_pid.execname:values=ret:sort=ret");
        assert_eq!(s.filter.as_deref(), Some("ret >= 0"));
        let k = compile(&s, &fmt()).unwrap();
        assert_eq!(
            k.info,
            "hist:keys=common_pid.execname:vals=hitcount,ret:sort=ret:size=2048 if ret >= 0"
        );
        assert_eq!(k.sort, [(SortBy::Val(0), false)]);
        // The kernel's own lines, as 6.1 and 6.12 print them.
        for (spec, info) in [
            (
                "keys=ret.log2:vals=hitcount:sort=ret",
                "hist:keys=ret.log2:vals=hitcount:sort=ret.log2:size=2048",
            ),
            (
                "keys=common_pid.hex,ret.buckets=1000:vals=ret.hex,hitcount:size=128",
                "hist:keys=common_pid.hex,ret.buckets=1000:vals=hitcount,ret.hex:sort=hitcount:size=128",
            ),
            (
                "keys=common_timestamp.usecs:vals=hitcount",
                "hist:keys=common_timestamp.usecs:vals=hitcount:sort=hitcount:size=2048:clock=global",
            ),
            (
                "hist:keys=comm,ret:sort=hitcount.descending,comm:size=127",
                "hist:keys=comm,ret:vals=hitcount:sort=hitcount.descending,comm:size=128",
            ),
            (
                "keys=cpu:vals=ret:sort=ret.ascending",
                "hist:keys=common_cpu:vals=hitcount,ret:sort=ret:size=2048",
            ),
            (
                "keys=__syscall_nr.syscall,ret.bucket=0x10",
                "hist:keys=__syscall_nr.syscall,ret.buckets=16:vals=hitcount:sort=hitcount:size=2048",
            ),
        ] {
            assert_eq!(c(spec).unwrap().info, info, "{spec}");
        }
    }

    #[test]
    fn what_the_kernel_refuses_is_refused_with_its_words() {
        for (spec, msg, pos) in [
            ("keys=nosuch", "Couldn't find field", 10),
            ("keys=ret.foo", "Invalid field modifier", 14),
            (
                "keys=ret:sort=nosuch",
                "Sort field must be a key or a val",
                19,
            ),
            ("keys=ret:vals=nosuch", "Couldn't find field", 19),
            ("vals=ret", "a hist needs keys=FIELD[,FIELD...]", 5),
            ("keys=ret:sort=ret.up", "Invalid sort modifier", 23),
            ("keys=ret.buckets=0", "Invalid field modifier", 14),
            ("keys=ret:sort=a,b,c", "Too many sort fields (Max = 2)", 19),
            ("keys=common_pid.execname.hex", "Invalid field modifier", 21),
            ("keys=ret.execname", "Invalid field modifier", 14),
            ("keys=ret:vals=ret.log2", "Invalid field modifier", 23),
            ("keys=ret:sort=", "Empty assignment", 14),
            ("keys=", "Empty assignment", 5),
            (
                "keys=ret:size=0",
                "the table size must be from 128 to 131072 entries",
                19,
            ),
            (
                "keys=ret:size=1000000",
                "the table size must be from 128 to 131072 entries",
                19,
            ),
            (
                "keys=ret:bogus",
                "not a hist attribute (keys=, vals=, sort=, size=)",
                14,
            ),
            ("keys=a,b,c,d", "Couldn't find field", 10),
            ("keys=ret,ret,ret,ret", "Too many keys (Max = 3)", 22),
            (
                "keys=ret:vals=ret,ret,ret",
                "Too many values (Max = 2 besides hitcount)",
                27,
            ),
            (
                "keys=args",
                "args is an array of 48 bytes: it cannot be a key or a value",
                10,
            ),
            ("keys=comm.hex", "Invalid field modifier", 15),
            (
                "keys=ret:vals=comm",
                "a string cannot be a summed value",
                19,
            ),
        ] {
            let e = c(spec).unwrap_err();
            assert_eq!((e.message.as_str(), e.pos), (msg, pos), "{spec}");
            assert!(!e.kernel_only, "{spec}");
        }
        let e = c("keys=ret if nosuch == 1").unwrap_err();
        assert!(e.in_filter && e.message == "Field not found" && e.pos == 0);
        let s = split("keys=nosuch").unwrap();
        assert_eq!(
            c("keys=nosuch").unwrap_err().render(&s),
            "error: Couldn't find field\n  Command: hist:keys=nosuch\n                     ^"
        );
        assert!(split("keys=ret if ").is_err());
        assert!(split("").is_err());
        assert!(split("keys=ret\n!x").is_err());
    }

    #[test]
    fn what_only_the_kernel_computes_says_so() {
        for spec in [
            "keys=common_pid:ts0=common_timestamp",
            "keys=common_pid:vals=ret+1",
            "keys=stacktrace",
            "keys=common_stacktrace",
            "keys=common_pid:onmax($x).save(ret)",
            "keys=common_pid:name=shared",
            "keys=common_pid:clock=mono",
            "keys=$ts0",
            "keys=common_pid:vals=ret.percent",
            "keys=common_pid:nohitcount:vals=ret",
        ] {
            let e = c(spec).unwrap_err();
            assert!(e.kernel_only, "{spec}: {e:?}");
            assert!(e.message.contains("only by the kernel"), "{spec}: {e:?}");
        }
        assert!(c("keys=ret:pause")
            .unwrap_err()
            .message
            .contains("existing trigger"));
    }

    #[test]
    fn sort_keys_resolve_values_first_as_the_kernel_does() {
        let k = c("keys=ret,common_pid:vals=ret:sort=common_pid,ret").unwrap();
        assert_eq!(k.sort, [(SortBy::Key(1), false), (SortBy::Val(0), false)]);
        assert_eq!(map_bits(2048), 11);
        assert_eq!(map_bits(2049), 12);
        assert_eq!(map_bits(127), 7);
    }

    proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,80}") {
            if let Ok(s) = split(&text) {
                match compile(&s, &fmt()) {
                    Ok(k) => prop_assert!(!k.info.is_empty()),
                    Err(e) => { let _ = e.render(&s); }
                }
            }
        }

        #[test]
        fn specs_made_of_the_grammar_never_panic(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just("keys="), Just("vals="), Just("sort="), Just("size="), Just(":"),
                    Just(","), Just("ret"), Just("comm"), Just("common_pid"), Just(".log2"),
                    Just(".execname"), Just(".buckets=8"), Just(".descending"), Just("hitcount"),
                    Just("common_timestamp"), Just(".usecs"), Just(" if ret > 0"), Just("128"),
                ],
                0..14,
            ),
        ) {
            let text = parts.concat();
            if let Ok(s) = split(&text) {
                if let Err(e) = compile(&s, &fmt()) {
                    let _ = e.render(&s);
                }
            }
        }
    }
}
