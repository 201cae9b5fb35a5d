//! Evaluating a compiled format on one record: C's arithmetic on the
//! record's fields, the helpers' text (trace_output.c's
//! `trace_print_flags_seq`, `trace_print_symbols_seq`,
//! `trace_print_hex_seq`, `trace_print_array_seq`,
//! `trace_print_bitmask_seq`), and the conversions written as the kernel's
//! vsnprintf writes them.
//!
//! Nothing here trusts the record: a load outside it reads as 0 (and is
//! counted as a fault), a pointer outside it as an empty string.

use super::compile::{Arg, Helper, Node, Program, Step};
use super::parse::BinOp;
use super::pointers::{self, Ext};
use super::printf::{self, number, Spec};
use super::types::IntTy;
use super::KernelStrings;
use crate::sym::kallsyms::KernelSyms;

/// A value at run time.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Val<'a> {
    Int(u64),
    /// A pointer to bytes we hold: from where it points to the end of the
    /// record (or literal).
    Data(&'a [u8]),
    Null,
    /// A pointer whose value the record does not hold.
    Unknown,
    /// A probe's string the kernel could not read.
    Fault,
}

/// One record being rendered.
pub(crate) struct Rec<'a, 's> {
    pub data: &'a [u8],
    pub vars: [u64; super::compile::MAX_VARS],
    pub faults: u32,
    pub syms: Option<&'s mut KernelSyms>,
    pub strings: Option<&'s mut KernelStrings>,
}

impl<'a> Rec<'a, '_> {
    pub fn new(data: &'a [u8]) -> Rec<'a, 'static> {
        Rec {
            data,
            vars: [0; super::compile::MAX_VARS],
            faults: 0,
            syms: None,
            strings: None,
        }
    }

    fn read(&mut self, off: usize, size: usize) -> u64 {
        match read_le(self.data, off, size) {
            Some(v) => v,
            None => {
                self.faults += 1;
                0
            }
        }
    }
}

fn read_le(b: &[u8], off: usize, size: usize) -> Option<u64> {
    let s = b.get(off..off.checked_add(size)?)?;
    Some(match size {
        1 => s[0] as u64,
        2 => u16::from_ne_bytes([s[0], s[1]]) as u64,
        4 => u32::from_ne_bytes([s[0], s[1], s[2], s[3]]) as u64,
        8 => u64::from_ne_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]]),
        _ => return None,
    })
}

/// The value of an expression made of constants (folding at compile
/// time).
pub(crate) fn constant(n: &Node) -> Option<u64> {
    let mut r = Rec::new(&[]);
    match eval(n, &mut r) {
        Val::Int(v) if r.faults == 0 => Some(v),
        _ => None,
    }
}

fn truth(v: Val) -> bool {
    match v {
        Val::Int(x) => x != 0,
        Val::Null => false,
        Val::Data(_) | Val::Unknown | Val::Fault => true,
    }
}

fn int(v: Val) -> u64 {
    match v {
        Val::Int(x) => x,
        _ => 0,
    }
}

pub(crate) fn eval<'a>(n: &'a Node, r: &mut Rec<'a, '_>) -> Val<'a> {
    match n {
        Node::Const(v) => Val::Int(*v),
        Node::Str(s) => Val::Data(s),
        Node::Null => Val::Null,
        Node::Unknown => Val::Unknown,
        Node::Load { off, ty } => {
            let v = r.read(*off, ty.size());
            Val::Int(ty.norm(v))
        }
        Node::FieldPtr { off } => Val::Data(r.data.get(*off..).unwrap_or(&[])),
        Node::DynPtr { off, rel, probe } => {
            let loc = r.read(*off, 4);
            let mut start = (loc & 0xffff) as usize;
            if *rel {
                start += off + 4;
            }
            if *probe && loc >> 16 == 0 {
                return Val::Fault;
            }
            match r.data.get(start..) {
                Some(d) => Val::Data(d),
                None => {
                    r.faults += 1;
                    Val::Data(&[])
                }
            }
        }
        Node::DynLen { off } => Val::Int((r.read(*off, 4) >> 16) & 0xffff),
        Node::Var(i) => Val::Int(r.vars.get(*i).copied().unwrap_or(0)),
        Node::Let(slot, init, body) => {
            let v = int(eval(init, r));
            if let Some(s) = r.vars.get_mut(*slot) {
                *s = v;
            }
            eval(body, r)
        }
        Node::Conv(x, ty) => Val::Int(ty.norm(int(eval(x, r)))),
        Node::Truth(x) => Val::Int(truth(eval(x, r)) as u64),
        Node::Neg(x, ty) => Val::Int(ty.norm(int(eval(x, r)).wrapping_neg())),
        Node::BitNot(x, ty) => Val::Int(ty.norm(!int(eval(x, r)))),
        Node::Bin(op, a, b, ty) => {
            let a = int(eval(a, r));
            let b = int(eval(b, r));
            match binop(*op, a, b, *ty) {
                Some(v) => Val::Int(v),
                None => {
                    r.faults += 1;
                    Val::Int(0)
                }
            }
        }
        Node::And(a, b) => Val::Int((truth(eval(a, r)) && truth(eval(b, r))) as u64),
        Node::Or(a, b) => Val::Int((truth(eval(a, r)) || truth(eval(b, r))) as u64),
        Node::Cond(c, t, f) => {
            if truth(eval(c, r)) {
                eval(t, r)
            } else {
                eval(f, r)
            }
        }
        Node::Index(p, i, elem) => {
            let p = eval(p, r);
            let i = int(eval(i, r)) as i64;
            let Val::Data(d) = p else {
                r.faults += 1;
                return Val::Int(0);
            };
            let v = usize::try_from(i)
                .ok()
                .and_then(|i| i.checked_mul(elem.size()))
                .and_then(|off| read_le(d, off, elem.size()));
            match v {
                Some(v) => Val::Int(elem.norm(v)),
                None => {
                    r.faults += 1;
                    Val::Int(0)
                }
            }
        }
        Node::Offset(p, i, size) => {
            let p = eval(p, r);
            let i = int(eval(i, r)) as i64;
            match p {
                Val::Data(d) => {
                    let at = usize::try_from(i).ok().and_then(|i| i.checked_mul(*size));
                    match at.and_then(|a| d.get(a..)) {
                        Some(d) => Val::Data(d),
                        None => {
                            r.faults += 1;
                            Val::Data(&[])
                        }
                    }
                }
                other => other,
            }
        }
        // Helpers are text; where a value is asked of one (never, once
        // compiled), it is a pointer to that text.
        Node::Helper(_) => Val::Unknown,
        Node::JiffiesToMsecs(x, hz) => {
            let v = int(eval(x, r));
            Val::Int(IntTy::UINT.norm((1000 / hz.max(&1)).wrapping_mul(v)))
        }
    }
}

/// A binary operator on two values of type `ty` (already converted); `None`
/// for a division by zero.
fn binop(op: BinOp, a: u64, b: u64, ty: IntTy) -> Option<u64> {
    let s = ty.signed;
    let cmp = |lt: bool| Some(lt as u64);
    // Shifts past the width are undefined in C; x86 masks the count.
    let count = (b & (ty.bits as u64 - 1)) as u32;
    Some(match op {
        BinOp::Add => ty.norm(a.wrapping_add(b)),
        BinOp::Sub => ty.norm(a.wrapping_sub(b)),
        BinOp::Mul => ty.norm(a.wrapping_mul(b)),
        BinOp::Div if b == 0 => return None,
        BinOp::Rem if b == 0 => return None,
        BinOp::Div if s => ty.norm((a as i64).wrapping_div(b as i64) as u64),
        BinOp::Rem if s => ty.norm((a as i64).wrapping_rem(b as i64) as u64),
        BinOp::Div => ty.norm(a / b),
        BinOp::Rem => ty.norm(a % b),
        BinOp::Shl => ty.norm(a << count),
        BinOp::Shr if s => ty.norm(((a as i64) >> count) as u64),
        BinOp::Shr => ty.norm(a >> count),
        BinOp::Lt => return cmp(if s { (a as i64) < b as i64 } else { a < b }),
        BinOp::Gt => return cmp(if s { (a as i64) > b as i64 } else { a > b }),
        BinOp::Le => return cmp(if s { (a as i64) <= b as i64 } else { a <= b }),
        BinOp::Ge => return cmp(if s { (a as i64) >= b as i64 } else { a >= b }),
        BinOp::Eq => return cmp(a == b),
        BinOp::Ne => return cmp(a != b),
        BinOp::BitAnd => ty.norm(a & b),
        BinOp::BitOr => ty.norm(a | b),
        BinOp::BitXor => ty.norm(a ^ b),
        BinOp::And => return cmp(a != 0 && b != 0),
        BinOp::Or => return cmp(a != 0 || b != 0),
    })
}

/// Runs the program over a record, appending the event's text.
pub(crate) fn run<'a>(p: &'a Program, r: &mut Rec<'a, '_>, out: &mut String) {
    // A probe's string the kernel could not read prints `(fault)` without
    // the quotes its format puts around the string (print_type_string()).
    let mut unquote = false;
    for step in &p.steps {
        match step {
            Step::Lit(s) if unquote => {
                unquote = false;
                out.push_str(s.strip_prefix('"').unwrap_or(s));
            }
            Step::Lit(s) => out.push_str(s),
            Step::Stop => return,
            Step::Conv {
                spec,
                width,
                prec,
                arg,
            } => {
                let mut spec = *spec;
                if let Some(w) = width {
                    printf::star_width(&mut spec, int(eval(w, r)) as i64);
                }
                if let Some(p) = prec {
                    printf::star_prec(&mut spec, int(eval(p, r)) as i64);
                }
                if let Arg::Str(n @ Node::DynPtr { probe: true, .. }) = arg {
                    if matches!(eval(n, r), Val::Fault) && out.ends_with('"') {
                        out.pop();
                        printf::text(out, "(fault)", spec);
                        unquote = true;
                        continue;
                    }
                }
                conversion(arg, spec, r, out);
            }
        }
    }
}

fn conversion<'a>(arg: &'a Arg, spec: Spec, r: &mut Rec<'a, '_>, out: &mut String) {
    match arg {
        Arg::Int(n, bits) => {
            let v = int(eval(n, r));
            number(out, printf::int_arg(v, *bits, &spec), spec);
        }
        Arg::Char(n) => printf::char(out, int(eval(n, r)) as u8, spec),
        Arg::Str(n) => string(n, spec, r, out),
        Arg::PtrValue(n, ext) => match (eval(n, r), ext) {
            (Val::Unknown, _) => {
                // What the kernel prints for a pointer it will not show
                // (ptr_to_id() before its key is ready).
                printf::text(out, "(____ptrval____)", Spec { width: 16, ..spec });
            }
            (v, Ext::Symbol { offset, backtrace }) => {
                let addr = int(v);
                match r.syms.as_deref_mut() {
                    Some(syms) => pointers::symbol(out, addr, *offset, *backtrace, syms, spec),
                    None => pointers::raw(out, addr, spec),
                }
            }
            (v, _) => pointers::raw(out, int(v), spec),
        },
        Arg::PtrData(n, ext) => match eval(n, r) {
            Val::Data(d) => pointers::data(out, ext, d, spec),
            _ => printf::text(out, "(null)", error_spec(spec)),
        },
    }
}

/// error_string(): at most 16 characters unless a precision says.
fn error_spec(mut spec: Spec) -> Spec {
    if spec.precision == -1 {
        spec.precision = 16;
    }
    spec
}

/// `%s` of a node: a record's or literal's bytes, a helper's text, or a
/// kernel string known by its address.
fn string<'a>(n: &'a Node, spec: Spec, r: &mut Rec<'a, '_>, out: &mut String) {
    match n {
        Node::Cond(c, t, f) => {
            let pick = if truth(eval(c, r)) { t } else { f };
            return string(pick, spec, r, out);
        }
        Node::Helper(h) => {
            let start = out.len();
            helper(h, r, out);
            let text = out.split_off(start);
            printf::text(out, &text, spec);
            return;
        }
        _ => {}
    }
    match eval(n, r) {
        Val::Data(d) => printf::data_string(out, d, spec),
        Val::Null | Val::Int(0) => printf::text(out, "(null)", error_spec(spec)),
        Val::Int(a) if a < 4096 => printf::text(out, "(efault)", error_spec(spec)),
        Val::Int(a) => match r.strings.as_deref_mut().and_then(|s| s.get(a)) {
            Some(s) => printf::text(out, s, spec),
            None => {
                let start = out.len();
                number(out, a, Spec::HEX_0X);
                let text = out.split_off(start);
                printf::text(out, &text, spec);
            }
        },
        Val::Fault => printf::text(out, "(fault)", spec),
        Val::Unknown => printf::text(out, "(____ptrval____)", spec),
    }
}

fn helper<'a>(h: &'a Helper, r: &mut Rec<'a, '_>, out: &mut String) {
    match h {
        Helper::Flags { val, delim, table } => {
            let mut flags = int(eval(val, r));
            let mut first = true;
            let delim = delim.as_deref();
            for (mask, name) in table {
                if flags == 0 {
                    break;
                }
                if flags & mask != *mask {
                    continue;
                }
                flags &= !mask;
                if let (false, Some(d)) = (first, delim) {
                    printf::escape_bytes(out, d);
                }
                first = false;
                out.push_str(name);
            }
            if flags != 0 {
                if let (false, Some(d)) = (first, delim) {
                    printf::escape_bytes(out, d);
                }
                number(out, flags, Spec::HEX_0X);
            }
        }
        Helper::Symbolic { val, table } => {
            let v = int(eval(val, r));
            let start = out.len();
            if let Some((_, name)) = table.iter().find(|(m, _)| *m == v) {
                out.push_str(name);
            }
            if out.len() == start {
                number(out, v, Spec::HEX_0X);
            }
        }
        Helper::Hex { buf, len, concat } => {
            let d = match eval(buf, r) {
                Val::Data(d) => d,
                _ => &[],
            };
            let len = int(eval(len, r)) as i64 as i32;
            let mut i = 0;
            while i < len {
                if !concat && i != 0 {
                    out.push(' ');
                }
                let chunk = (len - i).min(16);
                let ext = Ext::Hex {
                    sep: if *concat { None } else { Some(' ') },
                };
                let from = d.get(i as usize..).unwrap_or(&[]);
                pointers::data(
                    out,
                    &ext,
                    from,
                    Spec {
                        width: chunk,
                        ..Spec::STR
                    },
                );
                i += 16;
            }
        }
        Helper::Array {
            buf,
            count,
            el_size,
        } => {
            let d = match eval(buf, r) {
                Val::Data(d) => d,
                _ => &[],
            };
            let count = int(eval(count, r)) as i64 as i32;
            out.push('{');
            // buf_len is count * el_size as size_t: a negative count reads
            // until the record ends.
            let size = *el_size as usize;
            let total = (count as i64 as u64).saturating_mul(*el_size);
            let mut at = 0u64;
            let mut first = true;
            while at < total {
                let Some(v) = read_le(d, at as usize, size.min(8)) else {
                    break;
                };
                if !first {
                    out.push(',');
                }
                first = false;
                match size {
                    1 | 2 | 4 | 8 => number(out, v, Spec::HEX_0X),
                    _ => {
                        // The kernel's own complaint, then bytes.
                        out.push_str(&format!("BAD SIZE:{size} "));
                        number(out, v & 0xff, Spec::HEX_0X);
                        at += 1;
                        continue;
                    }
                }
                at += size as u64;
            }
            out.push('}');
        }
        Helper::Bitmask { off, rel } => {
            let loc = r.read(*off, 4);
            let mut start = (loc & 0xffff) as usize;
            if *rel {
                start += off + 4;
            }
            let len = (loc >> 16) as usize;
            let d = r.data.get(start..).unwrap_or(&[]);
            let d = &d[..len.min(d.len())];
            pointers::data(
                out,
                &Ext::Bitmap { list: false },
                d,
                Spec {
                    width: (len * 8).min(printf::MAX_WIDTH as usize * 8) as i32,
                    ..Spec::STR
                },
            );
        }
    }
}
