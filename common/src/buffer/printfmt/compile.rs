//! From the parsed `print fmt` to a program over one event's records:
//! every `REC->field` resolved to its offset and type, every conversion of
//! the format string paired with the arguments it takes, and C's types
//! checked once, so that evaluating a record is only loads, arithmetic and
//! writing text. What the renderer cannot evaluate exactly is refused here,
//! with the reason, and the event falls back to `name=value`.

use super::parse::{Ast, BinOp, Decl, TypeName, UnOp};
use super::pointers::Ext;
use super::printf::{Conv, Piece, Spec};
use super::types::{Base, IntTy};
use crate::buffer::format::{EventFormat, Field, FieldKind};

/// What an expression is, in C's terms, as far as printing needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {
    Int(IntTy),
    /// A pointer to bytes the record (or a literal) holds: `char comm[16]`,
    /// `__get_str(name)`, `"R"`. `None`: `void *`.
    Data(Option<IntTy>),
    /// A pointer known by its value only (`void *callsite`,
    /// `(void *)REC->ip`): printable as a number or a symbol.
    Addr,
    /// Text a helper writes (`__print_flags`): only `%s` takes it.
    Text,
    /// A pointer computed from a kernel variable the record does not hold
    /// (`vmemmap_base`): only plain `%p` takes it.
    Unknown,
}

impl Ty {
    fn is_stringish(self) -> bool {
        matches!(self, Ty::Data(_) | Ty::Text)
    }
}

/// An expression, compiled.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Const(u64),
    Str(Box<[u8]>),
    Null,
    Unknown,
    /// A scalar field.
    Load {
        off: usize,
        ty: IntTy,
    },
    /// A pointer into the record at a fixed offset (an array field,
    /// `&REC->field`).
    FieldPtr {
        off: usize,
    },
    /// `__get_dynamic_array()` and the like: the offset of the `__data_loc`
    /// (or `__rel_loc`) word. `probe`: a probe's string, which the kernel
    /// records with length 0 when it could not read it.
    DynPtr {
        off: usize,
        rel: bool,
        probe: bool,
    },
    /// `__get_dynamic_array_len()`.
    DynLen {
        off: usize,
    },
    Var(usize),
    Let(usize, Box<Node>, Box<Node>),
    /// An integer conversion.
    Conv(Box<Node>, IntTy),
    /// `!= 0` of anything: an integer, a pointer.
    Truth(Box<Node>),
    Neg(Box<Node>, IntTy),
    BitNot(Box<Node>, IntTy),
    /// Arithmetic, bitwise or comparison of two integers converted to
    /// `IntTy` (for shifts: the left operand's promoted type).
    Bin(BinOp, Box<Node>, Box<Node>, IntTy),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Cond(Box<Node>, Box<Node>, Box<Node>),
    /// An element of what a data pointer points to.
    Index(Box<Node>, Box<Node>, IntTy),
    /// A data pointer moved by a number of elements of `usize` bytes.
    Offset(Box<Node>, Box<Node>, usize),
    /// Text a helper writes.
    Helper(Box<Helper>),
    /// `jiffies_to_msecs()` for this kernel's HZ.
    JiffiesToMsecs(Box<Node>, u64),
}

/// The helpers that write text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Helper {
    Flags {
        val: Node,
        delim: Option<Box<[u8]>>,
        table: Vec<(u64, Box<str>)>,
    },
    Symbolic {
        val: Node,
        table: Vec<(u64, Box<str>)>,
    },
    Hex {
        buf: Node,
        len: Node,
        concat: bool,
    },
    Array {
        buf: Node,
        count: Node,
        el_size: u64,
    },
    Bitmask {
        off: usize,
        rel: bool,
    },
}

/// A conversion's argument, by what it prints.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Arg {
    Int(Node, u8),
    Char(Node),
    Str(Node),
    /// `%p`, `%pS`...: the pointer's value.
    PtrValue(Node, Ext),
    /// `%pI4`, `%pM`...: the bytes it points to.
    PtrData(Node, Ext),
}

/// A piece of the compiled format.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step {
    Lit(Box<str>),
    Conv {
        spec: Spec,
        width: Option<Node>,
        prec: Option<Node>,
        arg: Arg,
    },
    Stop,
}

/// What the compiler needs to know of the kernel.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Env {
    /// CONFIG_HZ, for `jiffies_to_msecs()`.
    pub hz: Option<u64>,
    /// The event is a kprobe's or uprobe's: `__get_str()` of a string it
    /// could not read prints `(fault)`, as the kernel's own printing does.
    pub probe: bool,
}

/// A compiled format: its steps, how many variables its statement
/// expressions use, and whether it prints kernel symbols.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Program {
    pub steps: Vec<Step>,
    pub vars: usize,
    pub symbols: bool,
}

/// The most variables the `({ ... })` of one format may declare.
pub(crate) const MAX_VARS: usize = 64;

struct Compiler<'f> {
    fmt: &'f EventFormat,
    env: Env,
    scopes: Vec<(String, usize, IntTy)>,
    vars: usize,
}

/// Compiles a parsed `print fmt` (its format string and arguments).
pub(crate) fn compile(fmt: &EventFormat, args: &[Ast], env: Env) -> Result<Program, String> {
    let Some(Ast::Str(text)) = args.first() else {
        return Err("the print fmt does not start with a string".into());
    };
    let mut c = Compiler {
        fmt,
        env,
        scopes: Vec::new(),
        vars: 0,
    };
    let mut next = args[1..].iter();
    let mut take = |what: &str| {
        next.next()
            .ok_or_else(|| format!("the format has more conversions than arguments (at {what})"))
    };
    let mut steps = Vec::new();
    let mut symbols = false;
    for piece in super::printf::decode(text) {
        match piece {
            Piece::Lit(s) => steps.push(Step::Lit(s.into())),
            Piece::Stop => {
                steps.push(Step::Stop);
                break;
            }
            Piece::Conv {
                spec,
                conv,
                star_width,
                star_prec,
            } => {
                let width = if star_width {
                    Some(c.int(take("a '*' width")?, IntTy::INT)?)
                } else {
                    None
                };
                let prec = if star_prec {
                    Some(c.int(take("a '*' precision")?, IntTy::INT)?)
                } else {
                    None
                };
                let a = take("a conversion")?;
                let arg = match conv {
                    Conv::Int { bits } => {
                        let (n, t) = c.expr(a)?;
                        match t {
                            Ty::Int(_) | Ty::Addr => Arg::Int(n, bits),
                            _ => return Err(format!("an integer conversion of a {t:?}")),
                        }
                    }
                    Conv::Char => Arg::Char(c.int(a, IntTy::INT)?),
                    Conv::Str => {
                        let (n, t) = c.expr(a)?;
                        match t {
                            Ty::Data(_) | Ty::Text | Ty::Addr => Arg::Str(n),
                            Ty::Int(_) if n == Node::Const(0) => Arg::Str(Node::Null),
                            _ => return Err(format!("%s of a {t:?}")),
                        }
                    }
                    Conv::Ptr(ext) => {
                        let Some(e) = Ext::parse(&ext) else {
                            return Err(format!(
                                "%p{ext}, which prints what only the kernel's memory holds"
                            ));
                        };
                        let (n, t) = c.expr(a)?;
                        if e.takes_value() {
                            symbols |= matches!(e, Ext::Symbol { .. });
                            match (t, &e) {
                                (Ty::Int(_) | Ty::Addr, _) => Arg::PtrValue(n, e),
                                (Ty::Unknown, Ext::Raw) => Arg::PtrValue(n, e),
                                _ => return Err(format!("%p{ext} of a {t:?}")),
                            }
                        } else {
                            match t {
                                Ty::Data(_) => Arg::PtrData(n, e),
                                _ => return Err(format!("%p{ext} of a {t:?}")),
                            }
                        }
                    }
                };
                steps.push(Step::Conv {
                    spec,
                    width,
                    prec,
                    arg,
                });
            }
        }
    }
    Ok(Program {
        steps,
        vars: c.vars,
        symbols,
    })
}

/// A `{ mask, "name" }` table entry's mask must be a constant: its value.
fn constant(n: &Node) -> Option<u64> {
    match n {
        Node::Const(v) => Some(*v),
        Node::Null => Some(0),
        _ => None,
    }
}

impl Compiler<'_> {
    /// An expression converted to an integer type.
    fn int(&mut self, a: &Ast, to: IntTy) -> Result<Node, String> {
        let (n, t) = self.expr(a)?;
        self.convert(n, t, to)
    }

    fn convert(&self, n: Node, t: Ty, to: IntTy) -> Result<Node, String> {
        match t {
            Ty::Int(from) if from == to => Ok(n),
            Ty::Int(_) | Ty::Addr if to.boolean => Ok(fold(Node::Truth(Box::new(n)))),
            Ty::Int(_) | Ty::Addr => Ok(fold(Node::Conv(Box::new(n), to))),
            Ty::Data(_) if to.boolean => Ok(fold(Node::Truth(Box::new(n)))),
            _ => Err(format!("a {t:?} used as an integer")),
        }
    }

    fn field(&self, name: &str) -> Result<&Field, String> {
        self.fmt
            .field(name)
            .ok_or_else(|| format!("no field '{name}'"))
    }

    fn dyn_field(&self, name: &Ast) -> Result<(usize, bool), String> {
        let Ast::Ident(name) = name else {
            return Err("a dynamic-array helper without a field name".into());
        };
        let f = self.field(name)?;
        match f.kind {
            FieldKind::DataLoc => Ok((f.offset, false)),
            FieldKind::RelLoc => Ok((f.offset, true)),
            _ => Err(format!("'{name}' is not a dynamic field")),
        }
    }

    fn expr(&mut self, a: &Ast) -> Result<(Node, Ty), String> {
        Ok(match a {
            Ast::Num(v, t) => (Node::Const(*v), Ty::Int(*t)),
            Ast::Str(s) => {
                let mut b = s.clone();
                b.push(0);
                (Node::Str(b.into()), Ty::Data(Some(IntTy::CHAR)))
            }
            Ast::Ident(name) => self.ident(name)?,
            Ast::Rec(name) => self.rec(name)?,
            Ast::Unary(op, x) => self.unary(*op, x)?,
            Ast::Binary(op, x, y) => self.binary(*op, x, y)?,
            Ast::Cond(c, t, f) => self.cond(c, t, f)?,
            Ast::Cast(t, x) => self.cast(t, x)?,
            Ast::SizeofType(t) => (Node::Const(sizeof(t)?), Ty::Int(IntTy::ULONG)),
            Ast::Index(p, i) => {
                let (pn, pt) = self.expr(p)?;
                let Ty::Data(Some(elem)) = pt else {
                    return Err(format!("indexing a {pt:?}"));
                };
                let i = self.int(i, IntTy::LONG)?;
                (Node::Index(Box::new(pn), Box::new(i), elem), Ty::Int(elem))
            }
            Ast::Call(name, args) => self.call(name, args)?,
            Ast::Member(_, m) => return Err(format!("a member access (.{m})")),
            Ast::Init(_) => return Err("a { } table outside a helper".into()),
            Ast::Block(decls, e) => self.block(decls, e)?,
        })
    }

    fn ident(&self, name: &str) -> Result<(Node, Ty), String> {
        if let Some(&(_, slot, t)) = self.scopes.iter().rev().find(|(n, ..)| n == name) {
            return Ok((Node::Var(slot), Ty::Int(t)));
        }
        if let Some(v) = known_constant(name) {
            return Ok((Node::Const(v), Ty::Int(IntTy::INT)));
        }
        match name {
            "NULL" => Ok((Node::Null, Ty::Data(None))),
            // x86-64's base of the array of struct page: randomized per
            // boot (KASLR), and not in the record.
            "vmemmap_base" | "page_offset_base" | "vmalloc_base" => {
                Ok((Node::Unknown, Ty::Unknown))
            }
            _ => Err(format!("'{name}', a name the format does not define")),
        }
    }

    fn rec(&self, name: &str) -> Result<(Node, Ty), String> {
        let f = self.field(name)?;
        match f.kind {
            FieldKind::Scalar if f.ctype.contains('*') && f.size == 8 => Ok((
                Node::Load {
                    off: f.offset,
                    ty: IntTy::ULONG,
                },
                Ty::Addr,
            )),
            FieldKind::Scalar => {
                let ty = if f.ctype == "bool" || f.ctype == "_Bool" {
                    IntTy::BOOL
                } else {
                    IntTy::of_size(f.size, f.signed)
                        .ok_or_else(|| format!("field '{name}' of {} bytes", f.size))?
                };
                Ok((Node::Load { off: f.offset, ty }, Ty::Int(ty)))
            }
            FieldKind::Array { elem, .. } => Ok((
                Node::FieldPtr { off: f.offset },
                Ty::Data(IntTy::of_size(elem, f.signed)),
            )),
            FieldKind::DataLoc | FieldKind::RelLoc => {
                Err(format!("REC->{name} of a dynamic field"))
            }
        }
    }

    fn unary(&mut self, op: UnOp, x: &Ast) -> Result<(Node, Ty), String> {
        if op == UnOp::AddrOf {
            let Ast::Rec(name) = x else {
                return Err("'&' of anything but a field".into());
            };
            let f = self.field(name)?;
            let elem = match f.kind {
                FieldKind::Scalar => IntTy::of_size(f.size, f.signed),
                _ => return Err("'&' of an array or dynamic field".into()),
            };
            return Ok((Node::FieldPtr { off: f.offset }, Ty::Data(elem)));
        }
        let (n, t) = self.expr(x)?;
        match (op, t) {
            (UnOp::Deref, Ty::Data(Some(elem))) => Ok((
                Node::Index(Box::new(n), Box::new(Node::Const(0)), elem),
                Ty::Int(elem),
            )),
            (UnOp::Not, Ty::Int(_) | Ty::Addr | Ty::Data(_)) => {
                let truth = fold(Node::Truth(Box::new(n)));
                Ok((
                    fold(Node::Bin(
                        BinOp::Eq,
                        Box::new(truth),
                        Box::new(Node::Const(0)),
                        IntTy::INT,
                    )),
                    Ty::Int(IntTy::INT),
                ))
            }
            (UnOp::Neg | UnOp::Plus | UnOp::BitNot, Ty::Int(it)) => {
                let p = it.promoted();
                let n = self.convert(n, t, p)?;
                let n = match op {
                    UnOp::Neg => fold(Node::Neg(Box::new(n), p)),
                    UnOp::BitNot => fold(Node::BitNot(Box::new(n), p)),
                    _ => n,
                };
                Ok((n, Ty::Int(p)))
            }
            _ => Err(format!("{op:?} of a {t:?}")),
        }
    }

    fn binary(&mut self, op: BinOp, x: &Ast, y: &Ast) -> Result<(Node, Ty), String> {
        let (a, at) = self.expr(x)?;
        let (b, bt) = self.expr(y)?;
        if matches!(op, BinOp::And | BinOp::Or) {
            for t in [at, bt] {
                if matches!(t, Ty::Text | Ty::Unknown) {
                    return Err(format!("{op:?} of a {t:?}"));
                }
            }
            let a = Box::new(fold(Node::Truth(Box::new(a))));
            let b = Box::new(fold(Node::Truth(Box::new(b))));
            let n = if op == BinOp::And {
                Node::And(a, b)
            } else {
                Node::Or(a, b)
            };
            return Ok((fold(n), Ty::Int(IntTy::INT)));
        }
        // Pointer arithmetic on what the record holds, and on what it
        // cannot know.
        match (op, at, bt) {
            (BinOp::Add | BinOp::Sub, Ty::Data(elem), Ty::Int(_)) => {
                let size = elem.map(IntTy::size).unwrap_or(1);
                let mut i = self.convert(b, bt, IntTy::LONG)?;
                if op == BinOp::Sub {
                    i = fold(Node::Neg(Box::new(i), IntTy::LONG));
                }
                return Ok((Node::Offset(Box::new(a), Box::new(i), size), at));
            }
            (BinOp::Add, Ty::Int(_), Ty::Data(_)) => return self.binary(op, y, x),
            (BinOp::Add | BinOp::Sub, Ty::Unknown, Ty::Int(_)) => {
                return Ok((Node::Unknown, Ty::Unknown))
            }
            _ => {}
        }
        let is_cmp = matches!(
            op,
            BinOp::Lt | BinOp::Gt | BinOp::Le | BinOp::Ge | BinOp::Eq | BinOp::Ne
        );
        let (ai, bi) = match (at, bt) {
            (Ty::Int(ai), Ty::Int(bi)) => (ai, bi),
            // Addresses compare as numbers (with each other, or with 0).
            (Ty::Addr, Ty::Int(_) | Ty::Addr) | (Ty::Int(_), Ty::Addr) if is_cmp => {
                (IntTy::ULONG, IntTy::ULONG)
            }
            _ => return Err(format!("{op:?} of a {at:?} and a {bt:?}")),
        };
        if matches!(op, BinOp::Shl | BinOp::Shr) {
            let lt = ai.promoted();
            let a = self.convert(a, at, lt)?;
            let b = self.convert(b, bt, bi.promoted())?;
            return Ok((
                fold(Node::Bin(op, Box::new(a), Box::new(b), lt)),
                Ty::Int(lt),
            ));
        }
        let ct = IntTy::common(ai, bi);
        let a = self.convert(a, at, ct)?;
        let b = self.convert(b, bt, ct)?;
        let rt = if is_cmp { IntTy::INT } else { ct };
        Ok((
            fold(Node::Bin(op, Box::new(a), Box::new(b), ct)),
            Ty::Int(rt),
        ))
    }

    fn cond(&mut self, c: &Ast, t: &Ast, f: &Ast) -> Result<(Node, Ty), String> {
        let (cn, ct) = self.expr(c)?;
        if matches!(ct, Ty::Text | Ty::Unknown) {
            return Err(format!("a condition on a {ct:?}"));
        }
        let cn = fold(Node::Truth(Box::new(cn)));
        let (tn, tt) = self.expr(t)?;
        let (fnode, ft) = self.expr(f)?;
        // A null pointer constant: `0`, `NULL`, `((void *)0)`.
        let null = |n: &Node, t: Ty| {
            *n == Node::Null || (matches!(t, Ty::Int(_) | Ty::Addr) && *n == Node::Const(0))
        };
        let (tn, fnode, ty) = match (tt, ft) {
            (Ty::Int(a), Ty::Int(b)) => {
                let ct = IntTy::common(a, b);
                (
                    self.convert(tn, tt, ct)?,
                    self.convert(fnode, ft, ct)?,
                    Ty::Int(ct),
                )
            }
            (Ty::Addr, Ty::Addr | Ty::Int(_)) | (Ty::Int(_), Ty::Addr) => (tn, fnode, Ty::Addr),
            (Ty::Unknown, _) if null(&fnode, ft) => (tn, Node::Null, Ty::Unknown),
            (_, Ty::Unknown) if null(&tn, tt) => (Node::Null, fnode, Ty::Unknown),
            (Ty::Data(a), Ty::Data(b)) => (tn, fnode, Ty::Data(if a == b { a } else { None })),
            (a, b) if a.is_stringish() && b.is_stringish() => (tn, fnode, Ty::Text),
            (a, _) if a.is_stringish() && null(&fnode, ft) => (tn, Node::Null, a),
            (_, b) if b.is_stringish() && null(&tn, tt) => (Node::Null, fnode, b),
            (a, b) => return Err(format!("?: of a {a:?} and a {b:?}")),
        };
        Ok((
            fold(Node::Cond(Box::new(cn), Box::new(tn), Box::new(fnode))),
            ty,
        ))
    }

    fn cast(&mut self, t: &TypeName, x: &Ast) -> Result<(Node, Ty), String> {
        let (n, xt) = self.expr(x)?;
        if t.stars > 0 {
            let elem = match t.base {
                Base::Int(i) if t.stars == 1 => Some(i),
                _ => None,
            };
            return Ok(match xt {
                Ty::Int(_) | Ty::Addr => (self.convert(n, xt, IntTy::ULONG)?, Ty::Addr),
                Ty::Data(_) => (n, Ty::Data(elem)),
                Ty::Text if elem.is_some_and(|e| e.bits == 8) => (n, Ty::Text),
                Ty::Unknown => (n, Ty::Unknown),
                _ => return Err(format!("a cast of a {xt:?} to {}", t.text)),
            });
        }
        match t.base {
            Base::Int(to) => match xt {
                Ty::Int(_) | Ty::Addr => Ok((self.convert(n, xt, to)?, Ty::Int(to))),
                Ty::Data(_) if to.boolean => Ok((self.convert(n, xt, to)?, Ty::Int(to))),
                _ => Err(format!("a cast of a {xt:?} to {}", t.text)),
            },
            _ => Err(format!("a cast to {}", t.text)),
        }
    }

    fn block(&mut self, decls: &[Decl], e: &Ast) -> Result<(Node, Ty), String> {
        let depth = self.scopes.len();
        let mut lets = Vec::new();
        for d in decls {
            let (n, t) = self.expr(&d.init)?;
            let ty = match (&d.ty, t) {
                (None, Ty::Int(i)) => i,
                (
                    Some(TypeName {
                        base: Base::Int(i),
                        stars: 0,
                        ..
                    }),
                    _,
                ) => *i,
                _ => {
                    self.scopes.truncate(depth);
                    return Err(format!(
                        "a declaration of '{}' that is not an integer",
                        d.name
                    ));
                }
            };
            let n = self.convert(n, t, ty)?;
            if self.vars >= MAX_VARS {
                return Err("too many variables".into());
            }
            let slot = self.vars;
            self.vars += 1;
            self.scopes.push((d.name.clone(), slot, ty));
            lets.push((slot, n));
        }
        let r = self.expr(e);
        self.scopes.truncate(depth);
        let (mut body, t) = r?;
        for (slot, init) in lets.into_iter().rev() {
            body = Node::Let(slot, Box::new(init), Box::new(body));
        }
        Ok((body, t))
    }

    fn call(&mut self, name: &str, args: &[Ast]) -> Result<(Node, Ty), String> {
        let arity = |n: usize| {
            if args.len() == n {
                Ok(())
            } else {
                Err(format!("{name}() with {} arguments", args.len()))
            }
        };
        let probe = self.env.probe;
        Ok(match name {
            "__get_str" | "__get_rel_str" => {
                arity(1)?;
                let (off, rel) = self.dyn_field(&args[0])?;
                (
                    Node::DynPtr { off, rel, probe },
                    Ty::Data(Some(IntTy::CHAR)),
                )
            }
            "__get_dynamic_array"
            | "__get_rel_dynamic_array"
            | "__get_sockaddr"
            | "__get_rel_sockaddr" => {
                arity(1)?;
                let (off, rel) = self.dyn_field(&args[0])?;
                let probe = false;
                (Node::DynPtr { off, rel, probe }, Ty::Data(None))
            }
            "__get_dynamic_array_len" | "__get_rel_dynamic_array_len" => {
                arity(1)?;
                let (off, _) = self.dyn_field(&args[0])?;
                (Node::DynLen { off }, Ty::Int(IntTy::UINT))
            }
            "__get_bitmask" | "__get_cpumask" | "__get_rel_bitmask" | "__get_rel_cpumask" => {
                arity(1)?;
                let (off, rel) = self.dyn_field(&args[0])?;
                (
                    Node::Helper(Box::new(Helper::Bitmask { off, rel })),
                    Ty::Text,
                )
            }
            "__print_flags" | "__print_flags_u64" => {
                if args.len() < 2 {
                    return Err(format!("{name}() with {} arguments", args.len()));
                }
                let val = self.int(&args[0], IntTy::ULONG)?;
                let delim = match self.expr(&args[1])? {
                    (Node::Str(s), _) => Some(s[..s.len() - 1].into()),
                    (Node::Null, _) | (Node::Const(0), Ty::Int(_)) => None,
                    _ => return Err(format!("{name}() with a delimiter that is not a string")),
                };
                let table = self.table(&args[2..])?;
                (
                    Node::Helper(Box::new(Helper::Flags { val, delim, table })),
                    Ty::Text,
                )
            }
            "__print_symbolic" | "__print_symbolic_u64" => {
                if args.is_empty() {
                    return Err(format!("{name}() without arguments"));
                }
                let val = self.int(&args[0], IntTy::ULONG)?;
                let table = self.table(&args[1..])?;
                (
                    Node::Helper(Box::new(Helper::Symbolic { val, table })),
                    Ty::Text,
                )
            }
            "__print_hex" | "__print_hex_str" => {
                arity(2)?;
                let (buf, bt) = self.expr(&args[0])?;
                if !matches!(bt, Ty::Data(_)) {
                    return Err(format!("{name}() of a {bt:?}"));
                }
                let len = self.int(&args[1], IntTy::INT)?;
                let concat = name == "__print_hex_str";
                (
                    Node::Helper(Box::new(Helper::Hex { buf, len, concat })),
                    Ty::Text,
                )
            }
            "__print_array" => {
                arity(3)?;
                let (buf, bt) = self.expr(&args[0])?;
                if !matches!(bt, Ty::Data(_)) {
                    return Err(format!("{name}() of a {bt:?}"));
                }
                let count = self.int(&args[1], IntTy::INT)?;
                let el_size = constant(&self.int(&args[2], IntTy::ULONG)?)
                    .ok_or("__print_array() with an element size that is not constant")?;
                let h = Helper::Array {
                    buf,
                    count,
                    el_size,
                };
                (Node::Helper(Box::new(h)), Ty::Text)
            }
            "MAJOR" | "MINOR" => {
                arity(1)?;
                let v = self.int(&args[0], IntTy::UINT)?;
                let n = if name == "MAJOR" {
                    Node::Bin(
                        BinOp::Shr,
                        Box::new(v),
                        Box::new(Node::Const(20)),
                        IntTy::UINT,
                    )
                } else {
                    Node::Bin(
                        BinOp::BitAnd,
                        Box::new(v),
                        Box::new(Node::Const((1 << 20) - 1)),
                        IntTy::UINT,
                    )
                };
                (fold(n), Ty::Int(IntTy::UINT))
            }
            "jiffies_to_msecs" => {
                arity(1)?;
                let hz = self
                    .env
                    .hz
                    .filter(|hz| *hz > 0 && 1000 % hz == 0)
                    .ok_or("jiffies_to_msecs() without this kernel's CONFIG_HZ")?;
                let v = self.int(&args[0], IntTy::ULONG)?;
                (Node::JiffiesToMsecs(Box::new(v), hz), Ty::Int(IntTy::UINT))
            }
            "__builtin_expect" => {
                arity(2)?;
                self.expr(&args[0])?
            }
            _ => return Err(format!("{name}(), a function the renderer does not know")),
        })
    }

    /// `{ mask, "name" }, ...`: constant masks; a `NULL` name ends it.
    fn table(&mut self, items: &[Ast]) -> Result<Vec<(u64, Box<str>)>, String> {
        let mut out = Vec::new();
        for it in items {
            let Ast::Init(pair) = it else {
                return Err("a helper's table entry that is not { value, \"name\" }".into());
            };
            let [m, n] = pair.as_slice() else {
                return Err("a helper's table entry that is not { value, \"name\" }".into());
            };
            let (mn, mt) = self.expr(m)?;
            let mask = constant(&self.convert(mn, mt, IntTy::ULONG)?)
                .ok_or("a helper's table entry whose value is not a constant")?;
            match self.expr(n)? {
                (Node::Str(s), _) => {
                    let name = String::from_utf8_lossy(&s[..s.len() - 1]).into_owned();
                    out.push((mask, name.into()));
                }
                // `{ -1, NULL }` ends the table: the kernel's loop stops at
                // a NULL name.
                (Node::Null, _) | (Node::Const(0), Ty::Int(_) | Ty::Addr) => break,
                _ => return Err("a helper's table entry whose name is not a string".into()),
            }
        }
        Ok(out)
    }
}

/// Constants the formats name without defining them (the kernel lacks a
/// `TRACE_DEFINE_ENUM` for them, so the name stays in the text where the
/// kernel's compiler saw its value), and whose values have not changed in
/// the kernels that have those events. The side-by-side test against the
/// kernel's own text checks them.
fn known_constant(name: &str) -> Option<u64> {
    if let Some(state) = name.strip_prefix("TCP_") {
        return crate::kernel::tcp::state_number(state);
    }
    if let Some(mode) = name.strip_prefix("HRTIMER_MODE_") {
        // enum hrtimer_mode: ABS 0, REL 1, PINNED 2, SOFT 4, HARD 8, and
        // their combinations named by their parts.
        let mut v = 0;
        for part in mode.split('_') {
            v |= match part {
                "ABS" => 0,
                "REL" => 1,
                "PINNED" => 2,
                "SOFT" => 4,
                "HARD" => 8,
                _ => return None,
            };
        }
        return Some(v);
    }
    Some(match name {
        "false" => 0,
        "true" => 1,
        // include/uapi/linux/ioprio.h
        "IOPRIO_CLASS_NONE" => 0,
        "IOPRIO_CLASS_RT" => 1,
        "IOPRIO_CLASS_BE" => 2,
        "IOPRIO_CLASS_IDLE" => 3,
        "IOPRIO_CLASS_INVALID" => 7,
        _ => return None,
    })
}

fn sizeof(t: &TypeName) -> Result<u64, String> {
    if t.stars > 0 {
        return Ok(8);
    }
    match t.base {
        Base::Int(i) => Ok(i.size() as u64),
        _ => Err(format!("sizeof({})", t.text)),
    }
}

/// Folds constant subexpressions: the masks of flag tables are long
/// constant expressions, evaluated once here.
fn fold(n: Node) -> Node {
    let all_const = match &n {
        Node::Conv(a, _) | Node::Truth(a) | Node::Neg(a, _) | Node::BitNot(a, _) => {
            matches!(**a, Node::Const(_))
        }
        Node::Bin(_, a, b, _) | Node::And(a, b) | Node::Or(a, b) => {
            matches!(**a, Node::Const(_)) && matches!(**b, Node::Const(_))
        }
        Node::Cond(c, ..) => matches!(**c, Node::Const(_)),
        _ => false,
    };
    if !all_const {
        return n;
    }
    if let Node::Cond(c, t, f) = n {
        return if matches!(*c, Node::Const(0)) { *f } else { *t };
    }
    match super::eval::constant(&n) {
        Some(v) => Node::Const(v),
        None => n,
    }
}

#[cfg(test)]
mod tests {
    use super::super::{lex, parse};
    use super::*;

    pub(crate) fn fmt_with(fields: &str) -> EventFormat {
        let mut text = String::from("name: t\nID: 1\nformat:\n\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n");
        text.push_str(fields);
        EventFormat::parse(&text).unwrap()
    }

    fn compile_str(fields: &str, pf: &str) -> Result<Program, String> {
        let f = fmt_with(fields);
        let args = parse::parse_args(&lex::tokens(pf)?)?;
        compile(&f, &args, Env::default())
    }

    #[test]
    fn refusals_say_why() {
        let fields = "\tfield:int a;\toffset:8;\tsize:4;\tsigned:1;\n\tfield:void * p;\toffset:16;\tsize:8;\tsigned:0;\n";
        for (pf, why) in [
            (r#""%d", REC->nope"#, "no field 'nope'"),
            (r#""%d %d", REC->a"#, "more conversions than arguments"),
            (r#""%s", REC->a"#, "%s of a Int"),
            (r#""%pd", REC->p"#, "%pd"),
            (r#""%d", foo(REC->a)"#, "foo()"),
            (r#""%d", SOME_ENUM"#, "'SOME_ENUM'"),
            (r#""%d", (struct x)REC->a"#, "a cast to struct x"),
            (r#""%d", jiffies_to_msecs(REC->a)"#, "CONFIG_HZ"),
        ] {
            let e = compile_str(fields, pf).unwrap_err();
            assert!(e.contains(why), "{pf}: {e}");
        }
        assert!(
            compile_str(fields, r#""%pS %p %s", REC->p, REC->p, REC->a ? "x" : "y""#)
                .unwrap()
                .symbols
        );
    }

    #[test]
    fn constants_fold() {
        let p = compile_str(
            "",
            r#""%lu", (( gfp_t)((((1UL))) << (10))|((((1UL))) << (11))) & ~1"#,
        )
        .unwrap();
        let Step::Conv {
            arg: Arg::Int(n, _),
            ..
        } = &p.steps[0]
        else {
            panic!("{p:?}")
        };
        assert_eq!(*n, Node::Const(0xc00));
    }
}
