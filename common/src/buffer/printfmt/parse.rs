//! The C expressions of a `print fmt` line, parsed into a tree.
//!
//! The grammar is C's, cut to what the kernel's formats contain:
//! operators with C's precedence, casts, `sizeof`, indexing, calls of
//! helpers, `{ a, b }` tables (the helpers' arguments) and the statement
//! expressions that `min()`/`max()` expand to
//! (`({ int x = (a); int y = (b); x < y ? x : y; })`).

use super::lex::Tok;
use super::types::{self, Base, IntTy};

/// A type name: its base and how many `*`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TypeName {
    pub base: Base,
    pub stars: u8,
    /// The words, for messages.
    pub text: String,
}

/// A declaration in a statement expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Decl {
    /// The declared type; `None` for `typeof(init)`/`__auto_type`.
    pub ty: Option<TypeName>,
    pub name: String,
    pub init: Ast,
}

/// Operators of one operand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UnOp {
    Neg,
    Plus,
    Not,
    BitNot,
    Deref,
    AddrOf,
}

/// Operators of two operands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Mul,
    Div,
    Rem,
    Add,
    Sub,
    Shl,
    Shr,
    Lt,
    Gt,
    Le,
    Ge,
    Eq,
    Ne,
    BitAnd,
    BitXor,
    BitOr,
    And,
    Or,
}

/// An expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Ast {
    Num(u64, IntTy),
    Str(Vec<u8>),
    Ident(String),
    /// `REC->field`.
    Rec(String),
    Unary(UnOp, Box<Ast>),
    Binary(BinOp, Box<Ast>, Box<Ast>),
    Cond(Box<Ast>, Box<Ast>, Box<Ast>),
    Cast(TypeName, Box<Ast>),
    SizeofType(TypeName),
    Index(Box<Ast>, Box<Ast>),
    Call(String, Vec<Ast>),
    /// `a.b` or `a->b` on anything but `REC`.
    Member(Box<Ast>, String),
    /// `{ a, b, ... }`.
    Init(Vec<Ast>),
    /// `({ decls; expr; })`.
    Block(Vec<Decl>, Box<Ast>),
}

/// Parses the whole line: comma-separated expressions (the first is the
/// format string).
pub(crate) fn parse_args(toks: &[Tok]) -> Result<Vec<Ast>, String> {
    let mut p = Parser {
        toks,
        pos: 0,
        depth: 0,
    };
    let mut out = Vec::new();
    if p.toks.is_empty() {
        return Ok(out);
    }
    loop {
        let e = p.expr()?;
        if tree_depth(&e) > MAX_TREE {
            return Err("expression nested too deeply".into());
        }
        out.push(e);
        if p.eat(",") {
            continue;
        }
        if p.pos < p.toks.len() {
            return Err(format!("unexpected {} after an argument", p.describe()));
        }
        return Ok(out);
    }
}

/// How deep parentheses and operators may nest while parsing: deeper is
/// refused instead of overflowing the stack (the kernel's deepest, gfp
/// flags, nest about 12).
const MAX_DEPTH: usize = 200;

/// How deep the tree may be (chains of `+` or `|` deepen it without
/// nesting): compiling and evaluating recurse over it.
const MAX_TREE: usize = 1000;

/// The depth of a tree, counted without recursion.
fn tree_depth<'a>(a: &'a Ast) -> usize {
    let mut max = 0;
    let mut stack: Vec<(&'a Ast, usize)> = vec![(a, 1)];
    while let Some((a, d)) = stack.pop() {
        max = max.max(d);
        if d > MAX_TREE {
            break;
        }
        let mut push = |c: &'a Ast| stack.push((c, d + 1));
        match a {
            Ast::Unary(_, x) | Ast::Cast(_, x) | Ast::Member(x, _) => push(x),
            Ast::Binary(_, x, y) | Ast::Index(x, y) => {
                push(x);
                push(y);
            }
            Ast::Cond(x, y, z) => {
                push(x);
                push(y);
                push(z);
            }
            Ast::Call(_, v) | Ast::Init(v) => v.iter().for_each(push),
            Ast::Block(decls, x) => {
                decls.iter().for_each(|d| push(&d.init));
                push(x);
            }
            Ast::Num(..) | Ast::Str(_) | Ast::Ident(_) | Ast::Rec(_) | Ast::SizeofType(_) => {}
        }
    }
    max
}

struct Parser<'t> {
    toks: &'t [Tok],
    pos: usize,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn peek_at(&self, n: usize) -> Option<&Tok> {
        self.toks.get(self.pos + n)
    }

    fn is(&self, p: &str) -> bool {
        matches!(self.peek(), Some(Tok::Punct(q)) if *q == p)
    }

    fn is_at(&self, n: usize, p: &str) -> bool {
        matches!(self.peek_at(n), Some(Tok::Punct(q)) if *q == p)
    }

    fn eat(&mut self, p: &str) -> bool {
        if self.is(p) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, p: &str) -> Result<(), String> {
        if self.eat(p) {
            Ok(())
        } else {
            Err(format!("expected '{p}', found {}", self.describe()))
        }
    }

    fn describe(&self) -> String {
        match self.peek() {
            None => "the end".into(),
            Some(Tok::Ident(s)) => format!("'{s}'"),
            Some(Tok::Punct(s)) => format!("'{s}'"),
            Some(Tok::Num(v, _)) => format!("'{v}'"),
            Some(Tok::Char(_)) => "a character constant".into(),
            Some(Tok::Str(_)) => "a string".into(),
        }
    }

    fn ident(&mut self) -> Result<String, String> {
        match self.peek() {
            Some(Tok::Ident(s)) => {
                let s = s.clone();
                self.pos += 1;
                Ok(s)
            }
            _ => Err(format!("expected a name, found {}", self.describe())),
        }
    }

    fn expr(&mut self) -> Result<Ast, String> {
        self.cond()
    }

    fn cond(&mut self) -> Result<Ast, String> {
        let c = self.binary(0)?;
        if !self.eat("?") {
            return Ok(c);
        }
        // GNU `a ?: b`.
        let t = if self.is(":") {
            c.clone()
        } else {
            self.expr()?
        };
        self.expect(":")?;
        let f = self.cond()?;
        Ok(Ast::Cond(Box::new(c), Box::new(t), Box::new(f)))
    }

    /// Precedence climbing over C's binary operators.
    fn binary(&mut self, min: u8) -> Result<Ast, String> {
        let mut lhs = self.unary()?;
        loop {
            let Some(Tok::Punct(p)) = self.peek() else {
                return Ok(lhs);
            };
            let Some((op, prec)) = binop(p) else {
                return Ok(lhs);
            };
            if prec < min {
                return Ok(lhs);
            }
            self.pos += 1;
            let rhs = self.binary(prec + 1)?;
            lhs = Ast::Binary(op, Box::new(lhs), Box::new(rhs));
        }
    }

    fn unary(&mut self) -> Result<Ast, String> {
        self.depth += 1;
        let r = if self.depth > MAX_DEPTH {
            Err("expression nested too deeply".into())
        } else {
            self.unary_inner()
        };
        self.depth -= 1;
        r
    }

    fn unary_inner(&mut self) -> Result<Ast, String> {
        let op = match self.peek() {
            Some(Tok::Punct("-")) => Some(UnOp::Neg),
            Some(Tok::Punct("+")) => Some(UnOp::Plus),
            Some(Tok::Punct("!")) => Some(UnOp::Not),
            Some(Tok::Punct("~")) => Some(UnOp::BitNot),
            Some(Tok::Punct("*")) => Some(UnOp::Deref),
            Some(Tok::Punct("&")) => Some(UnOp::AddrOf),
            _ => None,
        };
        if let Some(op) = op {
            self.pos += 1;
            let e = self.unary()?;
            return Ok(Ast::Unary(op, Box::new(e)));
        }
        if matches!(self.peek(), Some(Tok::Ident(w)) if w == "sizeof") {
            self.pos += 1;
            if self.is("(") && self.type_follows(1) {
                self.pos += 1;
                let t = self.type_name()?;
                self.expect(")")?;
                return Ok(Ast::SizeofType(t));
            }
            return Err("sizeof of an expression".into());
        }
        if self.is("(") && self.type_follows(1) {
            self.pos += 1;
            let t = self.type_name()?;
            self.expect(")")?;
            let e = self.unary()?;
            return Ok(Ast::Cast(t, Box::new(e)));
        }
        self.postfix()
    }

    /// Whether a type name starts `n` tokens ahead: a type keyword, a
    /// known typedef, or an unknown name alone in parentheses that is
    /// followed by something a cast applies to (`(foo_t)REC->x`).
    fn type_follows(&self, n: usize) -> bool {
        let Some(Tok::Ident(w)) = self.peek_at(n) else {
            return false;
        };
        if types::is_type_keyword(w) || types::typedef(w).is_some() {
            return true;
        }
        if w == "REC" || !self.is_at(n + 1, ")") {
            return false;
        }
        matches!(
            self.peek_at(n + 2),
            Some(Tok::Ident(_) | Tok::Num(..) | Tok::Str(_) | Tok::Char(_))
                | Some(Tok::Punct("(" | "~" | "!"))
        )
    }

    fn type_name(&mut self) -> Result<TypeName, String> {
        let mut words = Vec::new();
        while let Some(Tok::Ident(w)) = self.peek() {
            let w = w.clone();
            let tag = matches!(w.as_str(), "struct" | "union" | "enum");
            words.push(w);
            self.pos += 1;
            if tag {
                words.push(self.ident()?);
            }
        }
        let mut stars = 0u8;
        while self.eat("*") {
            stars = stars.saturating_add(1);
            while matches!(self.peek(), Some(Tok::Ident(w)) if w == "const" || w == "volatile") {
                self.pos += 1;
            }
        }
        if words.is_empty() {
            return Err(format!("expected a type, found {}", self.describe()));
        }
        Ok(TypeName {
            base: types::base_of(&words),
            stars,
            text: words.join(" ") + &"*".repeat(stars as usize),
        })
    }

    fn postfix(&mut self) -> Result<Ast, String> {
        let mut e = self.primary()?;
        loop {
            if self.eat("[") {
                let i = self.expr()?;
                self.expect("]")?;
                e = Ast::Index(Box::new(e), Box::new(i));
            } else if self.is("->") || self.is(".") {
                self.pos += 1;
                let name = self.ident()?;
                e = match e {
                    Ast::Ident(r) if r == "REC" => Ast::Rec(name),
                    other => Ast::Member(Box::new(other), name),
                };
            } else if self.is("(") {
                let Ast::Ident(name) = e else {
                    return Err("a call through an expression".into());
                };
                self.pos += 1;
                let mut args = Vec::new();
                if !self.eat(")") {
                    loop {
                        args.push(self.arg()?);
                        if self.eat(")") {
                            break;
                        }
                        self.expect(",")?;
                    }
                }
                e = Ast::Call(name, args);
            } else if self.is("++") || self.is("--") {
                return Err("an increment".into());
            } else {
                return Ok(e);
            }
        }
    }

    /// A call's argument: an expression or a `{ ... }` table.
    fn arg(&mut self) -> Result<Ast, String> {
        if self.is("{") {
            return self.init();
        }
        self.expr()
    }

    fn init(&mut self) -> Result<Ast, String> {
        self.expect("{")?;
        let mut items = Vec::new();
        if !self.eat("}") {
            loop {
                items.push(self.arg()?);
                if self.eat("}") {
                    break;
                }
                self.expect(",")?;
                if self.eat("}") {
                    break;
                }
            }
        }
        Ok(Ast::Init(items))
    }

    fn primary(&mut self) -> Result<Ast, String> {
        match self.peek().cloned() {
            Some(Tok::Num(v, t)) => {
                self.pos += 1;
                Ok(Ast::Num(v, t))
            }
            Some(Tok::Char(c)) => {
                self.pos += 1;
                Ok(Ast::Num(IntTy::INT.norm(c as u64), IntTy::INT))
            }
            Some(Tok::Str(mut s)) => {
                self.pos += 1;
                // Adjacent literals are one.
                while let Some(Tok::Str(more)) = self.peek() {
                    s.extend_from_slice(more);
                    self.pos += 1;
                }
                Ok(Ast::Str(s))
            }
            Some(Tok::Ident(w)) => {
                self.pos += 1;
                Ok(Ast::Ident(w))
            }
            Some(Tok::Punct("(")) => {
                self.pos += 1;
                if self.is("{") {
                    return self.block();
                }
                let e = self.expr()?;
                self.expect(")")?;
                Ok(e)
            }
            _ => Err(format!("unexpected {}", self.describe())),
        }
    }

    /// `({ T a = e; ...; expr; })`, the `(` already read.
    fn block(&mut self) -> Result<Ast, String> {
        self.expect("{")?;
        let mut decls = Vec::new();
        loop {
            if self.decl_follows() {
                let ty = if matches!(self.peek(), Some(Tok::Ident(w)) if w == "typeof" || w == "__typeof__" || w == "__auto_type")
                {
                    self.skip_typeof()?;
                    None
                } else {
                    // The words before the name are the type: read them as
                    // a type name of their own.
                    let mut end = self.pos;
                    while !matches!(self.toks.get(end + 1), Some(Tok::Punct("=")) | None) {
                        end += 1;
                    }
                    let mut sub = Parser {
                        toks: &self.toks[..end],
                        pos: self.pos,
                        depth: self.depth,
                    };
                    let t = sub.type_name()?;
                    if sub.pos != end {
                        return Err("a declaration whose type cannot be read".into());
                    }
                    self.pos = end;
                    Some(t)
                };
                let name = self.ident()?;
                self.expect("=")?;
                let init = self.expr()?;
                self.expect(";")?;
                decls.push(Decl { ty, name, init });
                continue;
            }
            let e = self.expr()?;
            self.expect(";")?;
            self.expect("}")?;
            self.expect(")")?;
            return Ok(Ast::Block(decls, Box::new(e)));
        }
    }

    /// Whether a declaration starts here: type words then a name then `=`.
    fn decl_follows(&self) -> bool {
        let mut n = 0;
        let mut words = 0;
        loop {
            match self.peek_at(n) {
                Some(Tok::Ident(w)) if w == "typeof" || w == "__typeof__" => return true,
                Some(Tok::Ident(w)) if w == "__auto_type" => return true,
                Some(Tok::Ident(_)) => words += 1,
                Some(Tok::Punct("*")) if words > 0 => {}
                Some(Tok::Punct("=")) => return words >= 2,
                _ => return false,
            }
            n += 1;
        }
    }

    /// Skips `typeof(...)` or `__auto_type`: the declared variable takes
    /// its initializer's type.
    fn skip_typeof(&mut self) -> Result<(), String> {
        let w = self.ident()?;
        if w == "__auto_type" {
            return Ok(());
        }
        self.expect("(")?;
        let mut depth = 1;
        while depth > 0 {
            match self.peek() {
                None => return Err("an unterminated typeof".into()),
                Some(Tok::Punct("(")) => depth += 1,
                Some(Tok::Punct(")")) => depth -= 1,
                _ => {}
            }
            self.pos += 1;
        }
        Ok(())
    }
}

fn binop(p: &str) -> Option<(BinOp, u8)> {
    Some(match p {
        "*" => (BinOp::Mul, 10),
        "/" => (BinOp::Div, 10),
        "%" => (BinOp::Rem, 10),
        "+" => (BinOp::Add, 9),
        "-" => (BinOp::Sub, 9),
        "<<" => (BinOp::Shl, 8),
        ">>" => (BinOp::Shr, 8),
        "<" => (BinOp::Lt, 7),
        ">" => (BinOp::Gt, 7),
        "<=" => (BinOp::Le, 7),
        ">=" => (BinOp::Ge, 7),
        "==" => (BinOp::Eq, 6),
        "!=" => (BinOp::Ne, 6),
        "&" => (BinOp::BitAnd, 5),
        "^" => (BinOp::BitXor, 4),
        "|" => (BinOp::BitOr, 3),
        "&&" => (BinOp::And, 2),
        "||" => (BinOp::Or, 1),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::super::lex::tokens;
    use super::*;

    fn parse(s: &str) -> Vec<Ast> {
        parse_args(&tokens(s).unwrap()).unwrap()
    }

    #[test]
    fn precedence_casts_and_tables() {
        let a = parse("\"x\", 1 + 2 * 3, (unsigned long)REC->a & 0xff, f({1, \"a\"}, {2, \"b\"})");
        assert_eq!(a.len(), 4);
        let Ast::Binary(BinOp::Add, _, r) = &a[1] else {
            panic!("{:?}", a[1])
        };
        assert!(matches!(**r, Ast::Binary(BinOp::Mul, ..)));
        let Ast::Binary(BinOp::BitAnd, l, _) = &a[2] else {
            panic!("{:?}", a[2])
        };
        assert!(matches!(&**l, Ast::Cast(t, _) if t.base == Base::Int(IntTy::ULONG)));
        let Ast::Call(name, args) = &a[3] else {
            panic!()
        };
        assert_eq!(name, "f");
        assert!(matches!(&args[0], Ast::Init(v) if v.len() == 2));
        // `(REC->x)` is not a cast; `(foo_t)REC->x` is.
        assert!(matches!(
            parse("(REC->x) - 1")[0],
            Ast::Binary(BinOp::Sub, ..)
        ));
        assert!(matches!(&parse("(foo_t)REC->x")[0], Ast::Cast(t, _) if t.base == Base::Other));
    }

    #[test]
    fn min_max_blocks() {
        let a = parse("({ int __UNIQUE_ID_x_1 = (REC->n); int __UNIQUE_ID_y_2 = (128); ((__UNIQUE_ID_x_1) < (__UNIQUE_ID_y_2) ? (__UNIQUE_ID_x_1) : (__UNIQUE_ID_y_2)); })");
        let Ast::Block(d, _) = &a[0] else {
            panic!("{a:?}")
        };
        assert_eq!(d.len(), 2);
        assert_eq!(d[1].name, "__UNIQUE_ID_y_2");
        let a = parse("({ typeof(REC->a) _x = (REC->a); _x; })");
        assert!(matches!(&a[0], Ast::Block(d, _) if d[0].ty.is_none()));
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        for bad in ["a +", "(1", "f(1,", "x++", "sizeof x", "a ? b", "1 2"] {
            assert!(parse_args(&tokens(bad).unwrap()).is_err(), "{bad}");
        }
        let deep = "(".repeat(500) + "1" + &")".repeat(500);
        assert!(parse_args(&tokens(&deep).unwrap()).is_err());
    }
}
