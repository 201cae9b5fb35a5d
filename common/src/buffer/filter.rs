//! The kernel's event filter syntax, evaluated on records in user space.
//!
//! Where the kernel cannot apply a filter itself (a hist trigger the
//! kernel lacks, computed from the buffer instead), the same text must
//! mean the same thing here. The syntax is the one of the kernel's
//! `events.rst`:
//!
//! - a predicate is `FIELD OP VALUE`: numeric fields take `==`, `!=`,
//!   `<`, `<=`, `>`, `>=` and `&` (true when some bit is set) with a
//!   number (decimal, `0x` hex, `0` octal, `-` only for signed fields);
//!   string fields take `==`, `!=` and `~` (a glob: `*`, `?`, `[...]`)
//!   with a quoted string;
//! - predicates combine with `&&`, `||`, `!` and parentheses;
//! - besides the event's own and common fields, `cpu` (or `CPU`) is the
//!   CPU that recorded the event and `comm` (or `COMM`) the name of the
//!   task that did.
//!
//! As in the kernel, a number is compared as the field's own C type (the
//! value is cut to the field's size), and strings that are not quoted are
//! refused. What the kernel refuses is refused here with the kernel's
//! words and the position of the offending part ([`FilterError`]).
//!
//! Parsing and evaluation are pure and never panic (property tests).

use crate::base::glob::Glob;
use crate::buffer::format::{EventFormat, Field, FieldKind};

/// Why a filter was refused: the kernel's words, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    /// What is wrong (`Field not found`).
    pub message: String,
    /// The byte offset in the filter text of the offending part.
    pub pos: usize,
}

impl FilterError {
    fn new(message: &str, pos: usize) -> FilterError {
        FilterError {
            message: message.to_string(),
            pos,
        }
    }

    /// The message with the text and a caret under the offending part, in
    /// the shape of the kernel's `error_log`:
    /// ```text
    /// error: Field not found
    ///   Command: nosuch == 1
    ///            ^
    /// ```
    pub fn render(&self, text: &str) -> String {
        let col = text
            .get(..self.pos.min(text.len()))
            .map_or(0, |s| s.chars().count());
        format!(
            "error: {}\n  Command: {text}\n{}^",
            self.message,
            " ".repeat(11 + col)
        )
    }
}

impl std::fmt::Display for FilterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (at offset {})", self.message, self.pos)
    }
}

/// What a record offers a filter besides its payload.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// The payload, common fields first.
    pub data: &'a [u8],
    /// The CPU that recorded it.
    pub cpu: u32,
    /// The name of the task that recorded it (only read by filters that
    /// use `comm`: see [`Filter::needs_comm`]).
    pub comm: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Band,
    Glob,
}

#[derive(Debug, Clone)]
enum Target {
    Field(Field),
    Cpu,
    Comm,
}

#[derive(Debug, Clone)]
enum Operand {
    /// The constant as the field's type, in 64 bits (sign-extended for
    /// signed fields).
    Num(u64),
    Str(String),
    Glob(Glob),
}

#[derive(Debug, Clone)]
struct Pred {
    target: Target,
    op: Op,
    operand: Operand,
}

#[derive(Debug, Clone)]
enum Node {
    Pred(Pred),
    Not(Box<Node>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
}

/// A parsed filter, bound to one event's format.
#[derive(Debug, Clone)]
pub struct Filter {
    root: Node,
    needs_comm: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    LParen,
    RParen,
    AndAnd,
    OrOr,
    Not,
    Op(Op),
    BadOp,
    Ident(String),
    Num(String),
    Str(String),
}

fn tokenize(text: &str) -> Result<Vec<(usize, Tok)>, FilterError> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let two = |s: &str| text.get(i..i + 2) == Some(s);
        let tok = if c == b'(' {
            i += 1;
            Tok::LParen
        } else if c == b')' {
            i += 1;
            Tok::RParen
        } else if two("&&") {
            i += 2;
            Tok::AndAnd
        } else if two("||") {
            i += 2;
            Tok::OrOr
        } else if two("==") {
            i += 2;
            Tok::Op(Op::Eq)
        } else if two("!=") {
            i += 2;
            Tok::Op(Op::Ne)
        } else if two("<=") {
            i += 2;
            Tok::Op(Op::Le)
        } else if two(">=") {
            i += 2;
            Tok::Op(Op::Ge)
        } else if c == b'<' {
            i += 1;
            Tok::Op(Op::Lt)
        } else if c == b'>' {
            i += 1;
            Tok::Op(Op::Gt)
        } else if c == b'&' {
            i += 1;
            Tok::Op(Op::Band)
        } else if c == b'~' {
            i += 1;
            Tok::Op(Op::Glob)
        } else if c == b'!' {
            i += 1;
            Tok::Not
        } else if c == b'=' || c == b'|' {
            i += 1;
            Tok::BadOp
        } else if c == b'"' || c == b'\'' {
            let end = text[i + 1..]
                .find(c as char)
                .ok_or_else(|| FilterError::new("Missing matching quote", start))?;
            let s = text[i + 1..i + 1 + end].to_string();
            i += end + 2;
            Tok::Str(s)
        } else if c.is_ascii_digit() || c == b'-' || c == b'+' {
            i += 1;
            while i < b.len() && b[i].is_ascii_alphanumeric() {
                i += 1;
            }
            Tok::Num(text[start..i].to_string())
        } else if c.is_ascii_alphabetic() || c == b'_' {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'.') {
                i += 1;
            }
            Tok::Ident(text[start..i].to_string())
        } else {
            // Anything else (a bare word's odd characters): the kernel
            // reads it as an operand it cannot make sense of.
            let ch_len = text[i..].chars().next().map_or(1, char::len_utf8);
            i += ch_len;
            Tok::BadOp
        };
        out.push((start, tok));
    }
    Ok(out)
}

/// A number as the kernel's `kstrtoll`/`kstrtoull` with base 0 read it.
fn parse_number(s: &str, signed: bool) -> Option<u64> {
    let (neg, digits) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if neg && !signed {
        return None;
    }
    let (radix, body) = if let Some(h) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        (16, h)
    } else if digits.len() > 1 && digits.starts_with('0') {
        (8, &digits[1..])
    } else {
        (10, digits)
    };
    if body.is_empty() {
        return None;
    }
    let mag = u64::from_str_radix(body, radix).ok()?;
    if signed {
        let v = if neg {
            if mag > 1u64 << 63 {
                return None;
            }
            (mag as i64).wrapping_neg()
        } else {
            i64::try_from(mag).ok()?
        };
        Some(v as u64)
    } else {
        Some(mag)
    }
}

/// Cuts a constant to a field of `size` bytes, sign-extending signed
/// ones: how the kernel's `(type)val` compares.
fn as_field_type(v: u64, size: usize, signed: bool) -> u64 {
    match (size, signed) {
        (1, false) => v as u8 as u64,
        (2, false) => v as u16 as u64,
        (4, false) => v as u32 as u64,
        (1, true) => v as u8 as i8 as i64 as u64,
        (2, true) => v as u16 as i16 as i64 as u64,
        (4, true) => v as u32 as i32 as i64 as u64,
        _ => v,
    }
}

struct Parser<'a> {
    toks: Vec<(usize, Tok)>,
    at: usize,
    end: usize,
    fmt: &'a EventFormat,
    needs_comm: bool,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at).map(|t| &t.1)
    }

    fn pos(&self) -> usize {
        self.toks.get(self.at).map_or(self.end, |t| t.0)
    }

    fn next(&mut self) -> Option<(usize, Tok)> {
        let t = self.toks.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn or(&mut self, depth: usize) -> Result<Node, FilterError> {
        let mut left = self.and(depth)?;
        while self.peek() == Some(&Tok::OrOr) {
            self.at += 1;
            if self.peek().is_none() {
                // The kernel ignores a dangling operator at the end.
                break;
            }
            let right = self.and(depth)?;
            left = Node::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self, depth: usize) -> Result<Node, FilterError> {
        let mut left = self.unary(depth)?;
        while self.peek() == Some(&Tok::AndAnd) {
            self.at += 1;
            if self.peek().is_none() {
                break;
            }
            let right = self.unary(depth)?;
            left = Node::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self, depth: usize) -> Result<Node, FilterError> {
        if depth > 64 {
            return Err(FilterError::new(
                "Too many terms in predicate expression",
                self.pos(),
            ));
        }
        match self.peek() {
            Some(Tok::Not) => {
                self.at += 1;
                Ok(Node::Not(Box::new(self.unary(depth + 1)?)))
            }
            Some(Tok::LParen) => {
                let open = self.pos();
                self.at += 1;
                let inner = self.or(depth + 1)?;
                match self.next() {
                    Some((_, Tok::RParen)) => Ok(inner),
                    _ => Err(FilterError::new("Too many '('", open)),
                }
            }
            Some(Tok::Ident(_)) => self.pred(),
            Some(Tok::RParen) => Err(FilterError::new("Too few '('", self.pos())),
            _ => Err(FilterError::new(
                "Meaningless filter expression",
                self.pos(),
            )),
        }
    }

    fn target(&mut self, name: &str) -> Option<Target> {
        if let Some(f) = self.fmt.field(name) {
            return Some(Target::Field(f.clone()));
        }
        match name {
            "cpu" | "CPU" => Some(Target::Cpu),
            "comm" | "COMM" => {
                self.needs_comm = true;
                Some(Target::Comm)
            }
            _ => None,
        }
    }

    fn pred(&mut self) -> Result<Node, FilterError> {
        let Some((fpos, Tok::Ident(name))) = self.next() else {
            return Err(FilterError::new(
                "Meaningless filter expression",
                self.pos(),
            ));
        };
        let target = self
            .target(&name)
            .ok_or_else(|| FilterError::new("Field not found", fpos))?;
        let op = match self.next() {
            Some((_, Tok::Op(op))) => op,
            Some((p, _)) => return Err(FilterError::new("Invalid operator", p)),
            None => return Err(FilterError::new("Invalid operator", self.end)),
        };
        let (vpos, value) = match self.next() {
            Some((p, t @ (Tok::Num(_) | Tok::Str(_)))) => (p, t),
            Some((p, _)) => {
                return Err(FilterError::new(
                    "Invalid value (did you forget quotes)?",
                    p,
                ))
            }
            None => {
                return Err(FilterError::new(
                    "Invalid value (did you forget quotes)?",
                    self.end,
                ))
            }
        };
        let is_string = match &target {
            Target::Field(f) => f.is_string(),
            Target::Comm => true,
            Target::Cpu => false,
        };
        let operand = if is_string {
            let Tok::Str(s) = value else {
                return Err(FilterError::new("Expecting string field", vpos));
            };
            match op {
                Op::Eq | Op::Ne => Operand::Str(s),
                Op::Glob => Operand::Glob(
                    Glob::new(&s).map_err(|_| FilterError::new("Invalid regex", vpos))?,
                ),
                _ => return Err(FilterError::new("Illegal operation for field type", vpos)),
            }
        } else {
            let (size, signed) = match &target {
                Target::Field(f) => {
                    if f.kind != FieldKind::Scalar || !matches!(f.size, 1 | 2 | 4 | 8) {
                        return Err(FilterError::new("Illegal operation for field type", fpos));
                    }
                    (f.size, f.signed)
                }
                _ => (4, false),
            };
            let Tok::Num(n) = value else {
                return Err(FilterError::new("Expecting numeric field", vpos));
            };
            if op == Op::Glob {
                return Err(FilterError::new("Illegal operation for field type", vpos));
            }
            let v = parse_number(&n, signed)
                .ok_or_else(|| FilterError::new("Illegal integer value", vpos))?;
            Operand::Num(as_field_type(v, size, signed))
        };
        Ok(Node::Pred(Pred {
            target,
            op,
            operand,
        }))
    }
}

impl Filter {
    /// Parses `text` for events of `fmt`.
    pub fn parse(text: &str, fmt: &EventFormat) -> Result<Filter, FilterError> {
        let toks = tokenize(text)?;
        if toks.is_empty() {
            return Err(FilterError::new("No filter found", 0));
        }
        let mut p = Parser {
            toks,
            at: 0,
            end: text.len(),
            fmt,
            needs_comm: false,
        };
        let root = p.or(0)?;
        if let Some((pos, t)) = p.toks.get(p.at) {
            let msg = if *t == Tok::RParen {
                "Too few '('"
            } else {
                "Too many terms in predicate expression"
            };
            return Err(FilterError::new(msg, *pos));
        }
        Ok(Filter {
            root,
            needs_comm: p.needs_comm,
        })
    }

    /// Whether the filter reads the task name (`comm`): only then must
    /// [`Record::comm`] be looked up.
    pub fn needs_comm(&self) -> bool {
        self.needs_comm
    }

    /// Whether a record passes.
    pub fn matches(&self, rec: &Record) -> bool {
        eval(&self.root, rec)
    }
}

fn eval(n: &Node, rec: &Record) -> bool {
    match n {
        Node::Pred(p) => pred(p, rec),
        Node::Not(a) => !eval(a, rec),
        Node::And(a, b) => eval(a, rec) && eval(b, rec),
        Node::Or(a, b) => eval(a, rec) || eval(b, rec),
    }
}

fn pred(p: &Pred, rec: &Record) -> bool {
    match &p.operand {
        Operand::Num(c) => {
            let (v, signed) = match &p.target {
                Target::Field(f) => match f.u64(rec.data) {
                    Some(raw) => (as_field_type(raw, f.size, f.signed), f.signed),
                    None => return false,
                },
                Target::Cpu => (rec.cpu as u64, false),
                Target::Comm => return false,
            };
            let ord = if signed {
                (v as i64).cmp(&(*c as i64))
            } else {
                v.cmp(c)
            };
            match p.op {
                Op::Eq => ord.is_eq(),
                Op::Ne => ord.is_ne(),
                Op::Lt => ord.is_lt(),
                Op::Le => ord.is_le(),
                Op::Gt => ord.is_gt(),
                Op::Ge => ord.is_ge(),
                Op::Band => v & c != 0,
                Op::Glob => false,
            }
        }
        Operand::Str(s) => {
            let same = with_str(&p.target, rec, |v| v == s);
            match p.op {
                Op::Eq => same == Some(true),
                Op::Ne => same == Some(false),
                _ => false,
            }
        }
        Operand::Glob(g) => with_str(&p.target, rec, |v| g.matches(v)) == Some(true),
    }
}

fn with_str(t: &Target, rec: &Record, f: impl FnOnce(&str) -> bool) -> Option<bool> {
    match t {
        Target::Field(fd) => fd.str(rec.data).map(|s| f(&s)),
        Target::Comm => Some(f(rec.comm)),
        Target::Cpu => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const FMT: &str = "name: sys_exit_read
ID: 700
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;
\tfield:long ret;\toffset:16;\tsize:8;\tsigned:1;
\tfield:char name[8];\toffset:24;\tsize:8;\tsigned:0;
\tfield:__data_loc char[] path;\toffset:32;\tsize:4;\tsigned:0;
\tfield:unsigned char flag;\toffset:36;\tsize:1;\tsigned:0;

print fmt: \"0x%lx\", REC->ret
";

    fn fmt() -> EventFormat {
        EventFormat::parse(FMT).unwrap()
    }

    fn rec(pid: i32, ret: i64, name: &str, path: &str, flag: u8) -> Vec<u8> {
        let mut d = vec![0u8; 48];
        d[4..8].copy_from_slice(&pid.to_ne_bytes());
        d[16..24].copy_from_slice(&ret.to_ne_bytes());
        let n = name.as_bytes();
        d[24..24 + n.len().min(8)].copy_from_slice(&n[..n.len().min(8)]);
        let p = path.as_bytes();
        let loc = ((p.len() as u32) << 16) | 40;
        d[32..36].copy_from_slice(&loc.to_ne_bytes());
        d.truncate(40);
        d.extend_from_slice(p);
        d[36] = flag;
        d
    }

    fn check(filter: &str, data: &[u8], cpu: u32, comm: &str) -> bool {
        let f = Filter::parse(filter, &fmt()).unwrap_or_else(|e| panic!("{filter}: {e}"));
        f.matches(&Record { data, cpu, comm })
    }

    #[test]
    fn numbers_strings_globs_and_logic() {
        let r = rec(42, 4096, "cat", "/etc/passwd", 0x5);
        for (f, want) in [
            ("ret >= 0", true),
            ("ret == 4096", true),
            ("ret == 0x1000", true),
            ("ret == 010000", true),
            ("ret != 4096", false),
            ("ret < 0", false),
            ("ret > -1", true),
            ("common_pid == 42 && ret > 4095", true),
            ("common_pid == 41 || ret <= 4096", true),
            ("!(common_pid == 42)", false),
            ("! common_pid == 41", true),
            ("flag & 4", true),
            ("flag & 2", false),
            ("name == \"cat\"", true),
            ("name != 'cat'", false),
            ("name ~ \"c*\"", true),
            ("path ~ \"*passwd\"", true),
            ("path ~ \"/etc/*\" && !(path ~ \"*shadow\")", true),
            ("path == \"/etc/passwd\"", true),
            ("comm == \"bash\"", true),
            ("COMM ~ \"ba?h\"", true),
            ("cpu == 3 && CPU < 4", true),
            ("(ret == 1 || ret == 4096) && (cpu == 3)", true),
            ("ret==4096&&common_pid!=3", true),
            // A dangling operator at the end is ignored, as the kernel does.
            ("ret == 4096 &&", true),
            // Cut to the field's type, as the kernel compares: 256 is 0 as
            // an unsigned char.
            ("flag == 261", true),
        ] {
            assert_eq!(check(f, &r, 3, "bash"), want, "{f}");
        }
        let neg = rec(-1, -9, "", "", 0);
        assert!(check("ret == -9 && common_pid == -1", &neg, 0, ""));
        assert!(check("ret < 0", &neg, 0, ""));
        assert!(Filter::parse("comm ~ \"x\"", &fmt()).unwrap().needs_comm());
        assert!(!Filter::parse("ret > 1", &fmt()).unwrap().needs_comm());
    }

    #[test]
    fn refusals_have_the_kernels_words_and_a_position() {
        for (f, msg, pos) in [
            ("nosuch == 1", "Field not found", 0),
            ("ret ~ \"a\"", "Expecting numeric field", 6),
            ("ret >", "Invalid value (did you forget quotes)?", 5),
            ("(ret > 1", "Too many '('", 0),
            ("ret > 1)", "Too few '('", 7),
            ("ret == \"x\"", "Expecting numeric field", 7),
            ("common_pid ~ 5", "Illegal operation for field type", 13),
            ("ret == 0x", "Illegal integer value", 7),
            ("ret = 1", "Invalid operator", 4),
            ("comm == bash", "Invalid value (did you forget quotes)?", 8),
            ("comm < \"a\"", "Illegal operation for field type", 7),
            ("name == 3", "Expecting string field", 8),
            ("!ret", "Invalid operator", 4),
            ("ret", "Invalid operator", 3),
            (
                "ret == 1 || || ret == 2",
                "Meaningless filter expression",
                12,
            ),
            ("ret < 18446744073709551616", "Illegal integer value", 6),
            ("ret == \"a", "Missing matching quote", 7),
            (
                "ret == 1 ret == 2",
                "Too many terms in predicate expression",
                9,
            ),
            ("flag == -1", "Illegal integer value", 8),
            ("", "No filter found", 0),
            ("  ", "No filter found", 0),
        ] {
            let e = Filter::parse(f, &fmt()).unwrap_err();
            assert_eq!((e.message.as_str(), e.pos), (msg, pos), "{f}");
        }
        let e = Filter::parse("ret > 1 && nosuch == 2", &fmt()).unwrap_err();
        assert_eq!(
            e.render("ret > 1 && nosuch == 2"),
            "error: Field not found\n  Command: ret > 1 && nosuch == 2\n                      ^"
        );
    }

    #[test]
    fn numbers_as_the_kernel_reads_them() {
        assert_eq!(parse_number("10", false), Some(10));
        assert_eq!(parse_number("0x1f", false), Some(31));
        assert_eq!(parse_number("017", false), Some(15));
        assert_eq!(parse_number("-1", true), Some(u64::MAX));
        assert_eq!(parse_number("-1", false), None);
        assert_eq!(parse_number("-9223372036854775808", true), Some(1 << 63));
        assert_eq!(parse_number("9223372036854775808", true), None);
        assert_eq!(parse_number("18446744073709551615", false), Some(u64::MAX));
        assert_eq!(parse_number("08", false), None);
        assert_eq!(parse_number("1a", false), None);
        assert_eq!(as_field_type(u64::MAX, 4, true), u64::MAX);
        assert_eq!(as_field_type(u64::MAX, 4, false), 0xffff_ffff);
    }

    proptest! {
        #[test]
        fn parsing_and_matching_never_panic(
            text in "\\PC{0,60}",
            data in proptest::collection::vec(any::<u8>(), 0..64),
            cpu in any::<u32>(),
        ) {
            if let Ok(f) = Filter::parse(&text, &fmt()) {
                let _ = f.matches(&Record { data: &data, cpu, comm: "x" });
            } else if let Err(e) = Filter::parse(&text, &fmt()) {
                let _ = e.render(&text);
            }
        }

        #[test]
        fn filters_made_of_the_grammar_never_panic(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just("ret"), Just("name"), Just("path"), Just("comm"), Just("cpu"),
                    Just("flag"), Just("=="), Just("!="), Just("<"), Just("&"), Just("~"),
                    Just("&&"), Just("||"), Just("!"), Just("("), Just(")"), Just("-1"),
                    Just("0x10"), Just("\"a*\""), Just("'b'"), Just("7"),
                ],
                0..16,
            ),
            data in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let text = parts.join(" ");
            if let Ok(f) = Filter::parse(&text, &fmt()) {
                let _ = f.matches(&Record { data: &data, cpu: 1, comm: "bash" });
            }
        }
    }
}
