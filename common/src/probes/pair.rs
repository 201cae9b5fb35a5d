//! `$argN` in a return probe where the kernel cannot give it (every
//! uprobe): the tool arms a matching entry probe that records the
//! arguments, and pairs each return with its entry per thread.
//!
//! - [`plan_return`] splits a return definition's arguments: the entry
//!   probe records each `$argN` used (as the calling convention places it,
//!   [`crate::probes::argn`]); the return probe keeps the other arguments
//!   (and `$retval` where a length needs it); each of the user's
//!   arguments becomes an output column, in the order given.
//! - [`Pairs`] keeps a stack of entries per probe and thread (so recursion
//!   pairs the innermost call first), and at the return event computes the
//!   columns. Memory behind an entry pointer (`+0($arg2):string`,
//!   `+0($arg2):bytes[$retval]`) is read then, from the thread with
//!   process_vm_readv(2): after the function returned, so the process may
//!   have reused the buffer, and a process that has gone shows `(gone)`.
//!
//! Fetches on `$argN` at a return: `$argN[:TYPE]`, `+OFF(FETCH)`,
//! `-OFF(FETCH)` (nested), with TYPE one of `u8..u64`, `s8..s64`,
//! `x8..x64` (the default), `string` (up to the NUL, at most
//! [`MAX_STRING`] bytes), or `bytes[LEN]`: exactly LEN bytes (at most
//! [`MAX_BYTES`]; none when LEN is 0 or negative, as a long or as an int),
//! LEN a number, `$retval` or `$argM`, printed quoted as the kernel prints strings, every byte that
//! is not printable as `\xNN` (a NUL too).
//!
//! Parsing is pure and never panics (see the property test).

use crate::buffer::format::{EventFormat, Field};
use crate::probes::argn::{self, Arch};
use crate::probes::args::ArgStyles;
use crate::{Error, Result};
use std::collections::HashMap;
use std::fmt::Write;

/// Most bytes a `:string` at a return reads.
pub const MAX_STRING: usize = 4096;
/// Most bytes a `:bytes[LEN]` reads.
pub const MAX_BYTES: usize = 8192;
/// Most pending entries kept per probe and thread (deeper recursion drops
/// the oldest, counted).
const MAX_DEPTH: usize = 1024;

/// Where a `bytes[LEN]` takes its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Len {
    /// A number.
    Fixed(u64),
    /// The return value.
    Retval,
    /// An argument at entry.
    Arg(u32),
}

/// How a column's value is read and printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    /// An integer of `size` bytes.
    Int {
        /// 1, 2, 4 or 8.
        size: u8,
        /// `s`: decimal, signed.
        signed: bool,
        /// `x`: hex; `u`: decimal.
        hex: bool,
    },
    /// A NUL-terminated string.
    Str,
    /// LEN bytes.
    Bytes(Len),
}

/// A fetch on entry arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// `$argN`.
    Arg(u32),
    /// `+OFF(inner)`: memory at inner's value plus OFF.
    Deref(i64, Box<Expr>),
}

/// Where one output column comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Src {
    /// The return event's field of this name.
    Kernel(String),
    /// Computed from the entry's arguments.
    Entry(Expr, Ty),
}

/// One output column: the user's argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// NAME, or `argK` as the kernel would name it.
    pub name: String,
    /// Its source.
    pub src: Src,
}

/// A return definition split into its entry probe and its return probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairPlan {
    /// The entry probe's arguments (`ftt_aN=LOC`).
    pub entry_args: Vec<String>,
    /// The return probe's arguments.
    pub ret_args: Vec<String>,
    /// The output, in the user's order.
    pub columns: Vec<Column>,
    /// The N recorded at entry, in the order of `entry_args`.
    pub recorded: Vec<u32>,
    /// The return field holding `$retval` for a length, if needed.
    pub retval: Option<String>,
}

/// The name of the entry field recording `$argN`.
fn entry_field(n: u32) -> String {
    format!("ftt_a{n}")
}

const RETVAL_FIELD: &str = "ftt_retval";

fn number(s: &str) -> Option<u64> {
    match s.strip_prefix("0x") {
        Some(h) if !h.is_empty() => u64::from_str_radix(h, 16).ok(),
        Some(_) => None,
        None if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s.parse().ok(),
        None => None,
    }
}

fn arg_number(s: &str) -> Option<u32> {
    let d = s.strip_prefix("$arg")?;
    if d.is_empty() || !d.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    d.parse().ok().filter(|n| (1..=argn::MAX_ARG).contains(n))
}

/// Parses a fetch on entry arguments.
pub fn parse_expr(s: &str) -> Option<Expr> {
    if let Some(n) = arg_number(s) {
        return Some(Expr::Arg(n));
    }
    let (neg, rest) = match s.as_bytes().first()? {
        b'+' => (false, &s[1..]),
        b'-' => (true, &s[1..]),
        _ => return None,
    };
    let rest = rest.strip_prefix('u').unwrap_or(rest);
    let open = rest.find('(')?;
    let inner = rest[open + 1..].strip_suffix(')')?;
    let off = i64::try_from(number(&rest[..open])?).ok()?;
    let inner = parse_expr(inner)?;
    Some(Expr::Deref(if neg { -off } else { off }, Box::new(inner)))
}

/// Parses a TYPE of a column on entry arguments.
pub fn parse_ty(s: &str) -> Option<Ty> {
    if s == "string" || s == "ustring" {
        return Some(Ty::Str);
    }
    if let Some(l) = s.strip_prefix("bytes[").and_then(|r| r.strip_suffix(']')) {
        let len = if l == "$retval" {
            Len::Retval
        } else if let Some(n) = arg_number(l) {
            Len::Arg(n)
        } else {
            Len::Fixed(number(l)?)
        };
        return Some(Ty::Bytes(len));
    }
    let (kind, bits) = s.split_at_checked(1)?;
    let size = match bits {
        "8" => 1,
        "16" => 2,
        "32" => 4,
        "64" => 8,
        _ => return None,
    };
    match kind {
        "u" => Some(Ty::Int {
            size,
            signed: false,
            hex: false,
        }),
        "s" => Some(Ty::Int {
            size,
            signed: true,
            hex: false,
        }),
        "x" => Some(Ty::Int {
            size,
            signed: false,
            hex: true,
        }),
        _ => None,
    }
}

/// `(NAME, body)` of an argument: NAME given or `None`.
fn name_and_body(a: &str) -> (Option<&str>, &str) {
    match a.split_once('=') {
        Some((n, b))
            if !n.is_empty() && n.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_') =>
        {
            (Some(n), b)
        }
        _ => (None, a),
    }
}

/// Splits a return probe's arguments for pairing; `None` if none uses
/// `$argN`. `kernel_memory`: the probe is a kernel function's, whose
/// memory user space cannot read (only `$argN` values are paired).
/// `loc(N)` is where the entry probe finds `$argN`.
pub fn plan_return(
    args: &[String],
    kernel_memory: bool,
    loc: &dyn Fn(u32) -> Result<String>,
) -> Result<Option<PairPlan>> {
    if !args.iter().any(|a| argn::uses_any(a)) {
        argn::check(args)?;
        return Ok(None);
    }
    let mut plan = PairPlan {
        entry_args: Vec::new(),
        ret_args: Vec::new(),
        columns: Vec::new(),
        recorded: Vec::new(),
        retval: None,
    };
    let record = |n: u32, plan: &mut PairPlan| -> Result<()> {
        if !plan.recorded.contains(&n) {
            plan.entry_args
                .push(format!("{}={}", entry_field(n), loc(n)?));
            plan.recorded.push(n);
        }
        Ok(())
    };
    for (i, a) in args.iter().enumerate() {
        let (name, body) = name_and_body(a);
        let col_name = name.map(str::to_string).unwrap_or(format!("arg{}", i + 1));
        if plan.columns.iter().any(|c| c.name == col_name) || col_name.starts_with("ftt_") {
            return Err(Error::usage(format!(
                "'{a}': the name {col_name} is taken; give each argument its own name"
            )));
        }
        let uses = argn::uses(a)?;
        if uses.is_empty() {
            plan.ret_args.push(format!("{col_name}={body}"));
            plan.columns.push(Column {
                name: col_name.clone(),
                src: Src::Kernel(col_name),
            });
            continue;
        }
        let (fetch, ty) = match body.rsplit_once(':') {
            Some((f, t)) => (f, Some(t)),
            None => (body, None),
        };
        let bad = || {
            Error::usage(format!(
                "'{a}': in a return probe, a fetch on $argN is $argN[:TYPE] or +OFF(...)[:TYPE] around it, TYPE u8..u64, s8..s64, x8..x64, string or bytes[LEN] (LEN a number, $retval or $argM)"
            ))
        };
        let expr = parse_expr(fetch).ok_or_else(bad)?;
        let ty = match ty {
            Some(t) => parse_ty(t).ok_or_else(bad)?,
            None => Ty::Int {
                size: 8,
                signed: false,
                hex: true,
            },
        };
        if matches!(ty, Ty::Str | Ty::Bytes(_)) && matches!(expr, Expr::Arg(_)) {
            return Err(Error::usage(format!(
                "'{a}': a string or bytes is read through a pointer: +0($argN):{}",
                ty_name(ty)
            )));
        }
        if kernel_memory && !matches!(expr, Expr::Arg(_)) {
            return Err(Error::usage(format!(
                "'{a}': this kernel has no $arg<N> in return probes (6.10 and later have), and kernel memory cannot be read at the return from user space: record it at entry with a p: probe"
            )));
        }
        for u in uses {
            record(u.n, &mut plan)?;
        }
        if let Ty::Bytes(Len::Retval) = ty {
            if plan.retval.is_none() {
                plan.ret_args.push(format!("{RETVAL_FIELD}=$retval:s64"));
                plan.retval = Some(RETVAL_FIELD.to_string());
            }
        }
        if let Ty::Bytes(Len::Arg(m)) = ty {
            record(m, &mut plan)?;
        }
        plan.columns.push(Column {
            name: col_name,
            src: Src::Entry(expr, ty),
        });
    }
    Ok(Some(plan))
}

/// `loc` for [`plan_return`] of a uprobe on this machine.
pub fn uprobe_loc(n: u32) -> Result<String> {
    Arch::host().location(n, true).ok_or_else(|| {
        Error::usage(format!(
            "$arg{n}: uprobe knows the calling convention of x86-64 and arm64 only, not {}",
            Arch::host().name()
        ))
    })
}

fn ty_name(t: Ty) -> String {
    match t {
        Ty::Str => "string".into(),
        Ty::Bytes(_) => "bytes[LEN]".into(),
        Ty::Int { size, signed, hex } => format!(
            "{}{}",
            if hex {
                'x'
            } else if signed {
                's'
            } else {
                'u'
            },
            size as u32 * 8
        ),
    }
}

/// Reads user memory of thread `tid` at `addr`; how many bytes were read.
pub trait Memory {
    /// Fills as much of `buf` as can be read; `Err` with errno when none.
    fn read(&mut self, tid: i32, addr: u64, buf: &mut [u8]) -> std::result::Result<usize, i32>;
}

/// process_vm_readv(2).
pub struct ProcessMemory;

impl Memory for ProcessMemory {
    fn read(&mut self, tid: i32, addr: u64, buf: &mut [u8]) -> std::result::Result<usize, i32> {
        crate::kernel::proc::read_user(tid as u32, addr, buf)
    }
}

/// A paired return probe, as the printer needs it.
pub struct PairOut {
    /// The columns.
    pub columns: Vec<Column>,
    /// The entry's field of each recorded N.
    pub entry_fields: Vec<(u32, Field)>,
    /// The return's fields of the kernel columns, by name.
    pub ret_fields: HashMap<String, Field>,
    /// The return field of `$retval`.
    pub retval: Option<Field>,
    /// How the return's fields print.
    pub styles: ArgStyles,
}

impl PairOut {
    /// From the plan and both events' formats.
    pub fn new(plan: &PairPlan, entry: &EventFormat, ret: &EventFormat) -> Result<PairOut> {
        let mut entry_fields = Vec::new();
        for &n in &plan.recorded {
            entry_fields.push((n, entry.require(&entry_field(n))?.clone()));
        }
        let mut ret_fields = HashMap::new();
        for c in &plan.columns {
            if let Src::Kernel(f) = &c.src {
                ret_fields.insert(f.clone(), ret.require(f)?.clone());
            }
        }
        let retval = match &plan.retval {
            Some(f) => Some(ret.require(f)?.clone()),
            None => None,
        };
        Ok(PairOut {
            columns: plan.columns.clone(),
            entry_fields,
            ret_fields,
            retval,
            styles: ArgStyles::parse(&ret.print_fmt),
        })
    }
}

/// An entry waiting for its return: the recorded arguments.
pub type Pending = Vec<(u32, u64)>;

/// The pairing state of a run.
#[derive(Default)]
pub struct Pairs {
    /// Per probe index: the paired return's output, if it is one.
    outs: HashMap<usize, PairOut>,
    /// Per entry probe index: the return probe index it feeds.
    feeds: HashMap<usize, usize>,
    /// Per return probe index: its entry probe (one entry probe may feed
    /// several returns: a thread's calls nest, so its latest entry is the
    /// one a return belongs to).
    fed_by: HashMap<usize, usize>,
    /// Per entry probe and thread: the entries waiting, each with its
    /// time stamp.
    pending: HashMap<(usize, i32), Vec<(u64, Pending)>>,
    current: Option<(u64, Pending)>,
    /// Returns shown without their entry: begun before tracing, or lost.
    pub unpaired: u64,
    /// Entries dropped: after lost events, past [`MAX_DEPTH`], or of
    /// threads that exited.
    pub dropped: u64,
}

impl Pairs {
    /// Adds a pair: the entry probe's index, the return's, its output.
    pub fn add(&mut self, entry: usize, ret: usize, out: PairOut) {
        self.feeds.entry(entry).or_insert(ret);
        self.fed_by.insert(ret, entry);
        self.outs.insert(ret, out);
    }

    /// Whether probe `i` is a hidden entry.
    pub fn is_entry(&self, i: usize) -> bool {
        self.feeds.contains_key(&i)
    }

    /// Whether probe `i` is a paired return.
    pub fn is_paired(&self, i: usize) -> bool {
        self.outs.contains_key(&i)
    }

    /// Takes an event of probe `i` by thread `tid`: records an entry
    /// (true: not to be shown), or pops a paired return's entry for the
    /// next [`Pairs::write`] (true: no entry, not to be shown).
    pub fn take(&mut self, i: usize, tid: i32, data: &[u8]) -> bool {
        self.take_at(i, tid, 0, data)
    }

    /// [`Pairs::take`] of an event stamped `ts`: an entry keeps its time
    /// stamp, for [`Pairs::entry`] at its return (latency).
    pub fn take_at(&mut self, i: usize, tid: i32, ts: u64, data: &[u8]) -> bool {
        if let Some(&ret) = self.feeds.get(&i) {
            let Some(out) = self.outs.get(&ret) else {
                return true;
            };
            let vals: Pending = out
                .entry_fields
                .iter()
                .map(|(n, f)| (*n, f.u64(data).unwrap_or(0)))
                .collect();
            if self.pending.len() > 4096 {
                self.prune();
            }
            let stack = self.pending.entry((i, tid)).or_default();
            if stack.len() >= MAX_DEPTH {
                stack.remove(0);
                self.dropped += 1;
            }
            stack.push((ts, vals));
            return true;
        }
        if !self.outs.contains_key(&i) {
            return false;
        }
        let key = (self.fed_by.get(&i).copied().unwrap_or(usize::MAX), tid);
        let popped = self.pending.get_mut(&key).and_then(Vec::pop);
        if self.pending.get(&key).is_some_and(|s| s.is_empty()) {
            self.pending.remove(&key);
        }
        match popped {
            Some(v) => {
                self.current = Some(v);
                false
            }
            None => {
                self.unpaired += 1;
                true
            }
        }
    }

    /// Events were lost: an entry's return may be among them, or a
    /// return's entry; the pending entries cannot be trusted.
    pub fn lost(&mut self) {
        self.dropped += self.pending.values().map(|s| s.len() as u64).sum::<u64>();
        self.pending.clear();
    }

    /// Drops the entries of threads that have exited.
    fn prune(&mut self) {
        let before: usize = self.pending.values().map(Vec::len).sum();
        self.pending
            .retain(|(_, tid), _| std::path::Path::new(&format!("/proc/{tid}")).exists());
        let after: usize = self.pending.values().map(Vec::len).sum();
        self.dropped += (before - after) as u64;
    }

    /// Entries still waiting for their return.
    pub fn waiting(&self) -> u64 {
        self.pending.values().map(|s| s.len() as u64).sum()
    }

    /// The entry paired with the return just [`Pairs::take`]n (once): its
    /// time stamp and the value of each `$argN` recorded, for a tool that
    /// shows them in its own way rather than through [`Pairs::write`].
    pub fn entry(&mut self) -> Option<(u64, Pending)> {
        self.current.take()
    }

    /// The columns of paired return `i` (just [`Pairs::take`]n), as
    /// ` NAME=VALUE` each, or in `json`.
    pub fn write(
        &mut self,
        i: usize,
        tid: i32,
        data: &[u8],
        mem: &mut dyn Memory,
        line: &mut String,
        json: Option<&mut serde_json::Map<String, serde_json::Value>>,
    ) {
        let Some(out) = self.outs.get(&i) else { return };
        let entry = self.current.take().map(|(_, e)| e).unwrap_or_default();
        let mut obj = serde_json::Map::new();
        for c in &out.columns {
            let mut v = String::new();
            let jv = match &c.src {
                Src::Kernel(f) => match out.ret_fields.get(f) {
                    Some(field) => {
                        out.styles.write_value(field, data, &mut v);
                        out.styles.json(field, data)
                    }
                    None => serde_json::Value::Null,
                },
                Src::Entry(e, ty) => column(out, &entry, tid, data, e, *ty, mem, &mut v),
            };
            line.push(' ');
            line.push_str(&c.name);
            line.push('=');
            line.push_str(&v);
            obj.insert(c.name.clone(), jv);
        }
        if let Some(j) = json {
            j.insert("args".into(), serde_json::Value::Object(obj));
        }
    }
}

fn eval(
    e: &Expr,
    entry: &Pending,
    tid: i32,
    mem: &mut dyn Memory,
) -> std::result::Result<u64, i32> {
    match e {
        Expr::Arg(n) => Ok(entry
            .iter()
            .find(|(m, _)| m == n)
            .map(|(_, v)| *v)
            .unwrap_or(0)),
        Expr::Deref(off, inner) => {
            let addr = eval(inner, entry, tid, mem)?.wrapping_add(*off as u64);
            let mut b = [0u8; 8];
            match mem.read(tid, addr, &mut b)? {
                8 => Ok(u64::from_ne_bytes(b)),
                _ => Err(libc::EFAULT),
            }
        }
    }
}

/// The address a memory column reads at, or the value of a plain one.
fn address(
    e: &Expr,
    entry: &Pending,
    tid: i32,
    mem: &mut dyn Memory,
) -> std::result::Result<u64, i32> {
    match e {
        Expr::Deref(off, inner) => Ok(eval(inner, entry, tid, mem)?.wrapping_add(*off as u64)),
        Expr::Arg(_) => eval(e, entry, tid, mem),
    }
}

fn failure(errno: i32, out: &mut String) -> serde_json::Value {
    let s = if errno == libc::ESRCH {
        "(gone)"
    } else {
        "(fault)"
    };
    out.push_str(s);
    serde_json::Value::Null
}

#[allow(clippy::too_many_arguments)]
fn column(
    out: &PairOut,
    entry: &Pending,
    tid: i32,
    data: &[u8],
    e: &Expr,
    ty: Ty,
    mem: &mut dyn Memory,
    v: &mut String,
) -> serde_json::Value {
    let addr = match address(e, entry, tid, mem) {
        Ok(a) => a,
        Err(errno) => return failure(errno, v),
    };
    match ty {
        Ty::Int { size, signed, hex } => {
            let raw = if let Expr::Arg(_) = e {
                addr
            } else {
                let mut b = [0u8; 8];
                match mem.read(tid, addr, &mut b[..size as usize]) {
                    Ok(n) if n == size as usize => u64::from_ne_bytes(b),
                    Ok(_) => return failure(libc::EFAULT, v),
                    Err(errno) => return failure(errno, v),
                }
            };
            let bits = size as u32 * 8;
            let u = if bits == 64 {
                raw
            } else {
                raw & ((1u64 << bits) - 1)
            };
            if hex {
                let _ = write!(v, "0x{u:x}");
                serde_json::json!(u)
            } else if signed {
                let s = ((u << (64 - bits)) as i64) >> (64 - bits);
                let _ = write!(v, "{s}");
                serde_json::json!(s)
            } else {
                let _ = write!(v, "{u}");
                serde_json::json!(u)
            }
        }
        Ty::Str => {
            let mut buf = Vec::new();
            let mut at = addr;
            // Page by page: a string may end just before an unmapped page.
            while buf.len() < MAX_STRING {
                let room = (4096 - (at % 4096) as usize).min(MAX_STRING - buf.len());
                let mut chunk = vec![0u8; room];
                match mem.read(tid, at, &mut chunk) {
                    Ok(0) => break,
                    Ok(n) => {
                        chunk.truncate(n);
                        let nul = chunk.iter().position(|&b| b == 0);
                        buf.extend_from_slice(&chunk[..nul.unwrap_or(n)]);
                        if nul.is_some() || n < room {
                            break;
                        }
                        at = at.wrapping_add(n as u64);
                    }
                    Err(errno) if buf.is_empty() => return failure(errno, v),
                    Err(_) => break,
                }
            }
            crate::probes::args::write_quoted_bytes(&buf, v);
            serde_json::json!(String::from_utf8_lossy(&buf))
        }
        Ty::Bytes(len) => {
            let n = match len {
                Len::Fixed(n) => n.min(MAX_BYTES as u64) as usize,
                Len::Retval => length(out.retval.as_ref().and_then(|f| f.u64(data))),
                Len::Arg(m) => length(entry.iter().find(|(k, _)| *k == m).map(|(_, x)| *x)),
            };
            let mut buf = vec![0u8; n];
            let got = match mem.read(tid, addr, &mut buf) {
                Ok(g) => g,
                Err(errno) => return failure(errno, v),
            };
            buf.truncate(got);
            write_all_bytes(&buf, v);
            serde_json::json!(String::from_utf8_lossy(&buf))
        }
    }
}

/// A length from a register: nothing when it is negative as a long or as
/// an int (a function returning int leaves -1 as 0xffffffff), at most
/// [`MAX_BYTES`].
fn length(raw: Option<u64>) -> usize {
    let Some(v) = raw else { return 0 };
    if (v as i64) < 0 || ((v as u32 as i32) < 0 && v <= u32::MAX as u64) {
        return 0;
    }
    v.min(MAX_BYTES as u64) as usize
}

/// Bytes quoted as the kernel quotes strings, every byte that is not
/// printable ASCII (a NUL too) as `\xNN`.
pub fn write_all_bytes(b: &[u8], out: &mut String) {
    out.push('"');
    for &c in b {
        match c {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            b'\r' => out.push_str("\\r"),
            0x20..=0x7e => out.push(c as char),
            _ => {
                let _ = write!(out, "\\x{c:02x}");
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    fn x86(n: u32) -> Result<String> {
        Ok(Arch::X86_64.location(n, true).unwrap())
    }

    #[test]
    fn a_return_splits_into_entry_and_return() {
        let p = plan_return(
            &v(&[
                "$retval",
                "buf=+0($arg2):bytes[$retval]",
                "n=$arg3:u32",
                "+0($arg2):string",
            ]),
            false,
            &x86,
        )
        .unwrap()
        .unwrap();
        assert_eq!(p.entry_args, ["ftt_a2=%si", "ftt_a3=%dx"]);
        assert_eq!(p.ret_args, ["arg1=$retval", "ftt_retval=$retval:s64"]);
        assert_eq!(p.recorded, [2, 3]);
        let names: Vec<&str> = p.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["arg1", "buf", "n", "arg4"]);
        assert_eq!(
            p.columns[1].src,
            Src::Entry(
                Expr::Deref(0, Box::new(Expr::Arg(2))),
                Ty::Bytes(Len::Retval)
            )
        );
        assert_eq!(plan_return(&v(&["$retval"]), false, &x86).unwrap(), None);
        // bytes[$argM] records M.
        let p = plan_return(&v(&["+0($arg2):bytes[$arg3]"]), false, &x86)
            .unwrap()
            .unwrap();
        assert_eq!(p.recorded, [2, 3]);
        assert_eq!(
            parse_expr("-8(+16($arg7))"),
            Some(Expr::Deref(
                -8,
                Box::new(Expr::Deref(16, Box::new(Expr::Arg(7))))
            ))
        );
    }

    #[test]
    fn refusals() {
        for (a, kmem, why) in [
            ("$arg2:string", false, "through a pointer"),
            ("+0(%si):string x=$arg1", false, ""),
            ("+0($arg2):bytes[%dx]", false, "bytes[LEN]"),
            ("+0($arg2+1):u8", false, "+OFF"),
            ("+0($arg2):string", true, "6.10"),
            ("ftt_x=$arg1", false, "taken"),
            ("$arg0", false, "out of range"),
        ] {
            match plan_return(&v(&a.split(' ').collect::<Vec<_>>()), kmem, &x86) {
                Err(e) => {
                    assert_eq!(e.exit_code(), 2, "{a}");
                    assert!(e.to_string().contains(why), "{a}: {e}");
                }
                Ok(p) => assert!(why.is_empty(), "{a}: {p:?}"),
            }
        }
    }

    /// Memory of one fake thread: `base..` holds `bytes`.
    struct Fake {
        base: u64,
        bytes: Vec<u8>,
    }

    impl Memory for Fake {
        fn read(&mut self, tid: i32, addr: u64, buf: &mut [u8]) -> std::result::Result<usize, i32> {
            if tid != 7 {
                return Err(libc::ESRCH);
            }
            let Some(off) = addr.checked_sub(self.base).map(|o| o as usize) else {
                return Err(libc::EFAULT);
            };
            if off >= self.bytes.len() {
                return Err(libc::EFAULT);
            }
            let n = buf.len().min(self.bytes.len() - off);
            buf[..n].copy_from_slice(&self.bytes[off..off + n]);
            Ok(n)
        }
    }

    const ENTRY: &str = "name: e\nID: 10\nformat:\n\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n\tfield:unsigned long __probe_ip;\toffset:8;\tsize:8;\tsigned:0;\n\tfield:u64 ftt_a2;\toffset:16;\tsize:8;\tsigned:0;\n\tfield:u64 ftt_a3;\toffset:24;\tsize:8;\tsigned:0;\n\nprint fmt: \"(%lx) ftt_a2=0x%Lx ftt_a3=0x%Lx\", REC->__probe_ip, REC->ftt_a2, REC->ftt_a3\n";
    const RET: &str = "name: r\nID: 11\nformat:\n\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n\tfield:unsigned long __probe_func;\toffset:8;\tsize:8;\tsigned:0;\n\tfield:unsigned long __probe_ret_ip;\toffset:16;\tsize:8;\tsigned:0;\n\tfield:u64 arg1;\toffset:24;\tsize:8;\tsigned:0;\n\tfield:s64 ftt_retval;\toffset:32;\tsize:8;\tsigned:1;\n\nprint fmt: \"(%lx <- %lx) arg1=0x%Lx ftt_retval=%Ld\", REC->__probe_func, REC->__probe_ret_ip, REC->arg1, REC->ftt_retval\n";

    fn rec(len: usize, at: &[(usize, u64)]) -> Vec<u8> {
        let mut d = vec![0u8; len];
        for (o, v) in at {
            d[*o..*o + 8].copy_from_slice(&v.to_ne_bytes());
        }
        d
    }

    #[test]
    fn pairs_per_thread_with_recursion_and_reads_memory_at_the_return() {
        let p = plan_return(
            &v(&[
                "$retval",
                "buf=+0($arg2):bytes[$retval]",
                "n=$arg3:u32",
                "s=+0($arg2):string",
            ]),
            false,
            &x86,
        )
        .unwrap()
        .unwrap();
        let ef = EventFormat::parse(ENTRY).unwrap();
        let rf = EventFormat::parse(RET).unwrap();
        let mut pairs = Pairs::default();
        pairs.add(0, 1, PairOut::new(&p, &ef, &rf).unwrap());
        let mut mem = Fake {
            base: 0x1000,
            bytes: b"ab\0\x01\xff\"cd".to_vec(),
        };
        // Thread 7 enters twice (recursion), thread 8 once.
        assert!(pairs.take(0, 7, &rec(32, &[(16, 0x1000), (24, 5)])));
        assert!(pairs.take(0, 7, &rec(32, &[(16, 0x1003), (24, 6)])));
        assert!(pairs.take(0, 8, &rec(32, &[(16, 0x1000), (24, 9)])));
        // The inner return first: 3 bytes from 0x1003.
        assert!(!pairs.take(1, 7, &[]));
        let mut line = String::new();
        pairs.write(
            1,
            7,
            &rec(40, &[(24, 3), (32, 3)]),
            &mut mem,
            &mut line,
            None,
        );
        assert_eq!(
            line,
            " arg1=0x3 buf=\"\\x01\\xff\\\"\" n=6 s=\"\\x01\\xff\\\"cd\""
        );
        assert!(!pairs.take(1, 7, &[]));
        let mut line = String::new();
        let mut obj = serde_json::Map::new();
        pairs.write(
            1,
            7,
            &rec(40, &[(24, 4), (32, 4)]),
            &mut mem,
            &mut line,
            Some(&mut obj),
        );
        assert_eq!(line, " arg1=0x4 buf=\"ab\\x00\\x01\" n=5 s=\"ab\"");
        assert_eq!(obj["args"]["n"], 5);
        // Thread 8 has gone: its memory cannot be read.
        assert!(!pairs.take(1, 8, &[]));
        let mut line = String::new();
        pairs.write(
            1,
            8,
            &rec(40, &[(24, 2), (32, 2)]),
            &mut mem,
            &mut line,
            None,
        );
        assert_eq!(line, " arg1=0x2 buf=(gone) n=9 s=(gone)");
        // A return without an entry is not shown, and counted.
        assert!(pairs.take(1, 7, &[]));
        assert_eq!((pairs.unpaired, pairs.waiting()), (1, 0));
        // Lost events drop what waits.
        assert!(pairs.take(0, 7, &rec(32, &[(16, 0x1000), (24, 5)])));
        pairs.lost();
        assert_eq!((pairs.dropped, pairs.waiting()), (1, 0));
        // A negative length reads nothing.
        assert!(pairs.take(0, 7, &rec(32, &[(16, 0x1000), (24, 5)])));
        assert!(!pairs.take(1, 7, &[]));
        let mut line = String::new();
        pairs.write(
            1,
            7,
            &rec(40, &[(32, (-11i64) as u64)]),
            &mut mem,
            &mut line,
            None,
        );
        assert!(line.contains(" buf=\"\" "), "{line}");
        // So does an int's -1 (0xffffffff in the register).
        assert!(pairs.take(0, 7, &rec(32, &[(16, 0x1000), (24, 5)])));
        assert!(!pairs.take(1, 7, &[]));
        let mut line = String::new();
        pairs.write(
            1,
            7,
            &rec(40, &[(32, 0xffff_ffff)]),
            &mut mem,
            &mut line,
            None,
        );
        assert!(line.contains(" buf=\"\" "), "{line}");
        assert_eq!(
            (length(Some(5)), length(Some(1 << 40)), length(None)),
            (5, MAX_BYTES, 0)
        );
    }

    proptest! {
        #[test]
        fn never_panics(args in proptest::collection::vec("[-+$a-z0-9():\\[\\]=%_]{0,24}", 0..4), k in any::<bool>()) {
            let _ = plan_return(&args, k, &x86);
            for a in &args {
                let _ = parse_expr(a);
                let _ = parse_ty(a);
            }
        }
    }
}
