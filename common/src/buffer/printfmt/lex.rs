//! Tokens of a `print fmt` line: the C the kernel's `TP_printk` arguments
//! become once stringified (`REC->field`, casts, string literals, the
//! helpers' `{ mask, "name" }` tables).

use super::types::IntTy;

/// One token.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// An identifier or keyword.
    Ident(String),
    /// An integer constant, with the type C gives it.
    Num(u64, IntTy),
    /// A character constant (`'c'`): an `int`.
    Char(i64),
    /// A string literal, escapes resolved.
    Str(Vec<u8>),
    /// An operator or punctuator.
    Punct(&'static str),
}

/// Longest first, so that `<<` is not read as two `<`.
const PUNCTS: &[&str] = &[
    "->", "<<", ">>", "<=", ">=", "==", "!=", "&&", "||", "++", "--", "(", ")", "[", "]", "{", "}",
    ",", ";", "?", ":", ".", "+", "-", "*", "/", "%", "&", "|", "^", "!", "~", "<", ">", "=",
];

/// Splits `text` into tokens; `Err` names what could not be read.
pub(crate) fn tokens(text: &str) -> Result<Vec<Tok>, String> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push(Tok::Ident(text[start..i].to_string()));
        } else if c.is_ascii_digit() {
            let (v, ty, n) = number(&b[i..])?;
            out.push(Tok::Num(v, ty));
            i += n;
        } else if c == b'"' {
            let (s, n) = quoted(&b[i..], b'"')?;
            out.push(Tok::Str(s));
            i += n;
        } else if c == b'\'' {
            let (s, n) = quoted(&b[i..], b'\'')?;
            // A multi-character constant is implementation-defined; the
            // formats use single characters.
            let &[ch] = s.as_slice() else {
                return Err(format!(
                    "character constant '{}'",
                    String::from_utf8_lossy(&s)
                ));
            };
            // `char` is signed on x86: '\xff' is -1.
            out.push(Tok::Char(ch as i8 as i64));
            i += n;
        } else {
            let rest = &text[i..];
            let Some(p) = PUNCTS.iter().find(|p| rest.starts_with(**p)) else {
                return Err(format!("unexpected character '{}'", c as char));
            };
            out.push(Tok::Punct(p));
            i += p.len();
        }
    }
    Ok(out)
}

/// An integer constant at the start of `b`: its value, C type and length.
fn number(b: &[u8]) -> Result<(u64, IntTy, usize), String> {
    let (radix, mut i) = match b {
        [b'0', b'x' | b'X', ..] => (16, 2),
        [b'0', b'b' | b'B', ..] => (2, 2),
        [b'0', ..] => (8, 1),
        _ => (10, 0),
    };
    let start = i;
    let mut v: u64 = 0;
    let mut overflow = false;
    while let Some(d) = b.get(i).and_then(|&c| (c as char).to_digit(radix)) {
        let (m, o1) = v.overflowing_mul(radix as u64);
        let (a, o2) = m.overflowing_add(d as u64);
        overflow |= o1 || o2;
        v = a;
        i += 1;
    }
    if i == start && radix != 8 {
        return Err("a number without digits".into());
    }
    if b.get(i).is_some_and(|c| c.is_ascii_digit() || *c == b'.') {
        return Err("a floating-point or malformed number".into());
    }
    let mut unsigned = false;
    let mut longs = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b'u' | b'U' if !unsigned => unsigned = true,
            b'l' | b'L' if longs < 2 => longs += 1,
            _ => break,
        }
        i += 1;
    }
    if b.get(i)
        .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
    {
        return Err("a number with an unknown suffix".into());
    }
    if overflow {
        return Err("a number too large for 64 bits".into());
    }
    Ok((v, literal_type(v, radix == 10, unsigned, longs), i))
}

/// The type C11 6.4.4.1 gives a constant, on LP64 (`long` is 64 bits).
fn literal_type(v: u64, decimal: bool, unsigned: bool, longs: u8) -> IntTy {
    let fits_int = v <= i32::MAX as u64;
    let fits_uint = v <= u32::MAX as u64;
    let fits_long = v <= i64::MAX as u64;
    if unsigned {
        if longs == 0 && fits_uint {
            IntTy::UINT
        } else {
            IntTy::ULONG
        }
    } else if longs == 0 && fits_int {
        IntTy::INT
    } else if longs == 0 && !decimal && fits_uint {
        IntTy::UINT
    } else if fits_long {
        IntTy::LONG
    } else {
        // Decimal constants too big for long have no type in C11; GCC
        // makes them unsigned long, as hex ones are.
        IntTy::ULONG
    }
}

/// A quoted literal at the start of `b` (which starts with `q`): its bytes
/// and length.
fn quoted(b: &[u8], q: u8) -> Result<(Vec<u8>, usize), String> {
    let mut out = Vec::new();
    let mut i = 1;
    loop {
        let Some(&c) = b.get(i) else {
            return Err("an unterminated literal".into());
        };
        i += 1;
        if c == q {
            return Ok((out, i));
        }
        if c != b'\\' {
            out.push(c);
            continue;
        }
        let Some(&e) = b.get(i) else {
            return Err("an unterminated literal".into());
        };
        i += 1;
        let byte = match e {
            b'n' => b'\n',
            b't' => b'\t',
            b'r' => b'\r',
            b'a' => 7,
            b'b' => 8,
            b'f' => 12,
            b'v' => 11,
            b'e' => 27,
            b'x' => {
                let mut v: u32 = 0;
                let mut n = 0;
                while let Some(d) = b.get(i).and_then(|&c| (c as char).to_digit(16)) {
                    v = v.wrapping_mul(16).wrapping_add(d);
                    i += 1;
                    n += 1;
                }
                if n == 0 {
                    return Err("\\x without digits".into());
                }
                v as u8
            }
            b'0'..=b'7' => {
                let mut v = (e - b'0') as u32;
                let mut n = 1;
                while n < 3 {
                    match b.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            v = v * 8 + (d - b'0') as u32;
                            i += 1;
                            n += 1;
                        }
                        _ => break,
                    }
                }
                v as u8
            }
            other => other,
        };
        out.push(byte);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_of_a_format() {
        let t = tokens(r#""a=%d\n" , REC->a >> 2, 'x', 0x10UL, 1U<<20, 017"#).unwrap();
        assert_eq!(t[0], Tok::Str(b"a=%d\n".to_vec()));
        assert_eq!(t[2], Tok::Ident("REC".into()));
        assert_eq!(t[3], Tok::Punct("->"));
        assert_eq!(t[5], Tok::Punct(">>"));
        assert_eq!(t[8], Tok::Char(b'x' as i64));
        assert_eq!(t[10], Tok::Num(16, IntTy::ULONG));
        assert_eq!(t[12], Tok::Num(1, IntTy::UINT));
        assert_eq!(t[13], Tok::Punct("<<"));
        assert_eq!(t[16], Tok::Num(15, IntTy::INT));
        assert_eq!(
            tokens("0xffffffff 4294967295 -1UL").unwrap()[..2],
            [
                Tok::Num(0xffffffff, IntTy::UINT),
                Tok::Num(4294967295, IntTy::LONG)
            ]
        );
        assert!(tokens("1.5").is_err());
        assert!(tokens("\"open").is_err());
        assert!(tokens("@").is_err());
        assert_eq!(
            tokens(r#""\x41\101\"""#).unwrap(),
            [Tok::Str(b"AA\"".to_vec())]
        );
    }
}
