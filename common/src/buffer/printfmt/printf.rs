//! The kernel's `vsnprintf` (lib/vsprintf.c): how a format string is read
//! into conversions, and how numbers and strings are written. It differs
//! from C's printf: `%#x` of 0 is `0x0`, `%.0d` of 0 is `0`, `%p` takes
//! extensions (`%pS`, `%pI4`, ...) and eats every letter and digit after
//! them, an unknown conversion ends the output.

use std::fmt::Write;

pub(crate) const ZEROPAD: u8 = 1;
pub(crate) const SIGN: u8 = 2;
pub(crate) const PLUS: u8 = 4;
pub(crate) const SPACE: u8 = 8;
pub(crate) const LEFT: u8 = 16;
pub(crate) const SMALL: u8 = 32;
pub(crate) const SPECIAL: u8 = 64;

/// Widths and precisions are capped here: the kernel's line buffer is a
/// page or two, and a width read from a record must not make us allocate
/// gigabytes.
pub(crate) const MAX_WIDTH: i32 = 8192;

/// A conversion's flags, width and precision (`-1`: none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Spec {
    pub flags: u8,
    pub width: i32,
    pub precision: i32,
    pub base: u8,
}

impl Spec {
    pub const STR: Spec = Spec {
        flags: 0,
        width: -1,
        precision: -1,
        base: 10,
    };
    pub const DEC: Spec = Spec::STR;
    /// `0x%lx`, as the helpers print what no name matched.
    pub const HEX_0X: Spec = Spec {
        flags: SMALL | SPECIAL,
        width: -1,
        precision: -1,
        base: 16,
    };
}

/// What a conversion prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Conv {
    /// An integer read as `bits` wide (sign-extended with `SIGN`).
    Int {
        bits: u8,
    },
    Char,
    Str,
    /// `%p` and the letters after it.
    Ptr(String),
}

/// A piece of a format string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    Lit(String),
    /// A conversion; `star_width`/`star_prec` take an `int` argument each
    /// before the value.
    Conv {
        spec: Spec,
        conv: Conv,
        star_width: bool,
        star_prec: bool,
    },
    /// An unknown conversion: the kernel stops printing here.
    Stop,
}

/// Reads a format string the way `format_decode` does.
pub(crate) fn decode(fmt: &[u8]) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut lit = Vec::new();
    let mut i = 0;
    let flush = |lit: &mut Vec<u8>, out: &mut Vec<Piece>| {
        if !lit.is_empty() {
            out.push(Piece::Lit(String::from_utf8_lossy(lit).into_owned()));
            lit.clear();
        }
    };
    while i < fmt.len() {
        if fmt[i] != b'%' {
            lit.push(fmt[i]);
            i += 1;
            continue;
        }
        i += 1;
        let mut spec = Spec::STR;
        while let Some(&c) = fmt.get(i) {
            spec.flags |= match c {
                b'-' => LEFT,
                b'+' => PLUS,
                b' ' => SPACE,
                b'#' => SPECIAL,
                b'0' => ZEROPAD,
                _ => break,
            };
            i += 1;
        }
        let mut star_width = false;
        if fmt.get(i) == Some(&b'*') {
            star_width = true;
            i += 1;
        } else if fmt.get(i).is_some_and(u8::is_ascii_digit) {
            spec.width = atoi(fmt, &mut i);
        }
        let mut star_prec = false;
        if fmt.get(i) == Some(&b'.') {
            i += 1;
            if fmt.get(i) == Some(&b'*') {
                star_prec = true;
                i += 1;
            } else if fmt.get(i).is_some_and(u8::is_ascii_digit) {
                spec.precision = atoi(fmt, &mut i).max(0);
            }
        }
        let mut qual = 0u8;
        if let Some(&c) = fmt.get(i) {
            if matches!(c, b'h' | b'l' | b'L' | b'z' | b't') {
                qual = c;
                i += 1;
                if fmt.get(i) == Some(&c) && (c == b'l' || c == b'h') {
                    qual = if c == b'l' { b'L' } else { b'H' };
                    i += 1;
                }
            }
        }
        let Some(&c) = fmt.get(i) else {
            // A lone '%' at the end: nothing is printed for it.
            break;
        };
        i += 1;
        let conv = match c {
            b'c' => Conv::Char,
            b's' => Conv::Str,
            b'p' => {
                let start = i;
                while fmt.get(i).is_some_and(u8::is_ascii_alphanumeric) {
                    i += 1;
                }
                Conv::Ptr(String::from_utf8_lossy(&fmt[start..i]).into_owned())
            }
            b'%' => {
                lit.push(b'%');
                continue;
            }
            b'o' | b'x' | b'X' | b'd' | b'i' | b'u' => {
                match c {
                    b'o' => spec.base = 8,
                    b'x' => {
                        spec.flags |= SMALL;
                        spec.base = 16
                    }
                    b'X' => spec.base = 16,
                    b'd' | b'i' => spec.flags |= SIGN,
                    _ => {}
                }
                let bits = match qual {
                    b'L' | b'l' | b'z' | b't' => 64,
                    b'H' => 8,
                    b'h' => 16,
                    _ => 32,
                };
                Conv::Int { bits }
            }
            _ => {
                flush(&mut lit, &mut out);
                out.push(Piece::Stop);
                return out;
            }
        };
        flush(&mut lit, &mut out);
        out.push(Piece::Conv {
            spec,
            conv,
            star_width,
            star_prec,
        });
    }
    flush(&mut lit, &mut out);
    out
}

fn atoi(fmt: &[u8], i: &mut usize) -> i32 {
    let mut v: i32 = 0;
    while let Some(d) = fmt.get(*i).filter(|c| c.is_ascii_digit()) {
        v = v.saturating_mul(10).saturating_add((d - b'0') as i32);
        *i += 1;
    }
    v.min(MAX_WIDTH)
}

/// A `*` width argument: negative means left-justified.
pub(crate) fn star_width(spec: &mut Spec, v: i64) {
    let v = v.clamp(-(MAX_WIDTH as i64), MAX_WIDTH as i64) as i32;
    if v < 0 {
        spec.width = -v;
        spec.flags |= LEFT;
    } else {
        spec.width = v;
    }
}

/// A `*` precision argument: negative means none... as the kernel reads
/// it, 0.
pub(crate) fn star_prec(spec: &mut Spec, v: i64) {
    spec.precision = v.clamp(0, MAX_WIDTH as i64) as i32;
}

/// An integer argument as the conversion reads it from the va_list:
/// truncated to its width, sign-extended for `%d`.
pub(crate) fn int_arg(v: u64, bits: u8, spec: &Spec) -> u64 {
    let signed = spec.flags & SIGN != 0;
    match (bits, signed) {
        (8, true) => v as i8 as i64 as u64,
        (8, false) => v as u8 as u64,
        (16, true) => v as i16 as i64 as u64,
        (16, false) => v as u16 as u64,
        (32, true) => v as i32 as i64 as u64,
        (32, false) => v as u32 as u64,
        _ => v,
    }
}

const DIGITS: &[u8; 16] = b"0123456789ABCDEF";

/// `number()` of lib/vsprintf.c.
pub(crate) fn number(out: &mut String, mut num: u64, spec: Spec) {
    let mut flags = spec.flags;
    let base = spec.base.max(2) as u64;
    let need_pfx = flags & SPECIAL != 0 && base != 10;
    let is_zero = num == 0;
    let mut width = spec.width;
    let mut precision = spec.precision;
    let locase = if flags & SMALL != 0 { 0x20 } else { 0 };
    if flags & LEFT != 0 {
        flags &= !ZEROPAD;
    }
    let mut sign = None;
    if flags & SIGN != 0 {
        if (num as i64) < 0 {
            sign = Some('-');
            num = (num as i64).wrapping_neg() as u64;
            width -= 1;
        } else if flags & PLUS != 0 {
            sign = Some('+');
            width -= 1;
        } else if flags & SPACE != 0 {
            sign = Some(' ');
            width -= 1;
        }
    }
    if need_pfx {
        if base == 16 {
            width -= 2;
        } else if !is_zero {
            width -= 1;
        }
    }
    let mut tmp = [0u8; 24];
    let mut i = 0;
    loop {
        tmp[i] = DIGITS[(num % base) as usize] | locase;
        i += 1;
        num /= base;
        if num == 0 {
            break;
        }
    }
    let digits = i as i32;
    if digits > precision {
        precision = digits;
    }
    width -= precision;
    if flags & (ZEROPAD | LEFT) == 0 {
        pad(out, ' ', width);
        width = 0;
    }
    if let Some(s) = sign {
        out.push(s);
    }
    if need_pfx {
        if base == 16 || !is_zero {
            out.push('0');
        }
        if base == 16 {
            out.push((b'X' | locase) as char);
        }
    }
    if flags & LEFT == 0 {
        pad(out, if flags & ZEROPAD != 0 { '0' } else { ' ' }, width);
        width = 0;
    }
    pad(out, '0', precision - digits);
    for &d in tmp[..i].iter().rev() {
        out.push(d as char);
    }
    pad(out, ' ', width);
}

fn pad(out: &mut String, c: char, n: i32) {
    for _ in 0..n.max(0) {
        out.push(c);
    }
}

/// `widen_string()`: pads what was written since `start` (`n` characters
/// as the kernel counts them) to the width.
pub(crate) fn widen(out: &mut String, start: usize, n: usize, spec: Spec) {
    let n = n.min(i32::MAX as usize) as i32;
    if n >= spec.width {
        return;
    }
    let spaces = (spec.width - n) as usize;
    if spec.flags & LEFT != 0 {
        out.extend(std::iter::repeat_n(' ', spaces));
    } else if start <= out.len() && out.is_char_boundary(start) {
        out.insert_str(start, &" ".repeat(spaces));
    }
}

/// `string_nocheck()` over bytes that come from the kernel's own text
/// (literals, symbol names, helpers' output): up to the precision, then
/// widened.
pub(crate) fn text(out: &mut String, s: &str, spec: Spec) {
    let start = out.len();
    let s = match usize::try_from(spec.precision) {
        Ok(p) if p < s.len() => {
            let mut end = p;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            &s[..end]
        }
        _ => s,
    };
    out.push_str(s);
    widen(out, start, s.len(), spec);
}

/// `string()` over bytes from a record (up to the first NUL and the
/// precision): bytes that would break the line or the terminal (control
/// characters, bytes that are not UTF-8) are written as `\n`, `\t`, `\r`
/// or `\xNN`; everything else as the kernel prints it. Widths count the
/// bytes, as the kernel does.
pub(crate) fn data_string(out: &mut String, b: &[u8], spec: Spec) {
    let start = out.len();
    let mut b = &b[..b.iter().position(|&c| c == 0).unwrap_or(b.len())];
    if let Ok(p) = usize::try_from(spec.precision) {
        b = &b[..p.min(b.len())];
    }
    escape_bytes(out, b);
    widen(out, start, b.len(), spec);
}

/// Writes bytes as text, escaping what would break a line of output.
pub(crate) fn escape_bytes(out: &mut String, b: &[u8]) {
    for chunk in b.utf8_chunks() {
        let valid = chunk.valid();
        if valid.bytes().all(|c| c >= 0x20 && c != 0x7f) {
            out.push_str(valid);
        } else {
            for c in valid.chars() {
                match c {
                    '\n' => out.push_str("\\n"),
                    '\t' => out.push_str("\\t"),
                    '\r' => out.push_str("\\r"),
                    c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                        let _ = write!(out, "\\x{:02x}", c as u32);
                    }
                    c => out.push(c),
                }
            }
        }
        for x in chunk.invalid() {
            let _ = write!(out, "\\x{x:02x}");
        }
    }
}

/// `%c`.
pub(crate) fn char(out: &mut String, c: u8, spec: Spec) {
    let start = out.len();
    escape_bytes(out, &[c]);
    if c == 0 {
        // The kernel writes the NUL itself.
        out.truncate(start);
        out.push_str("\\x00");
    }
    widen(out, start, 1, spec);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Formats one integer with the format `f` (a single conversion).
    fn fmt_int(f: &str, v: i64) -> String {
        let p = decode(f.as_bytes());
        let Piece::Conv {
            spec,
            conv: Conv::Int { bits },
            ..
        } = &p[0]
        else {
            panic!("{p:?}")
        };
        let mut s = String::new();
        number(&mut s, int_arg(v as u64, *bits, spec), *spec);
        s
    }

    #[test]
    fn numbers_as_the_kernel_prints_them() {
        for (f, v, want) in [
            ("%d", -5, "-5"),
            ("%u", -1, "4294967295"),
            ("%lu", -1, "18446744073709551615"),
            ("%x", 255, "ff"),
            ("%X", 255, "FF"),
            ("%#x", 0, "0x0"),
            ("%#x", 255, "0xff"),
            ("%#X", 255, "0XFF"),
            ("%#o", 8, "010"),
            ("%#o", 0, "0"),
            ("%08lx", 0x1b6, "000001b6"),
            ("%#016lx", 0x10, "0x00000000000010"),
            ("%-5d|", 3, "3    |"),
            ("%5d", -3, "   -3"),
            ("%05d", -3, "-0003"),
            ("%+d", 3, "+3"),
            ("% d", 3, " 3"),
            ("%.3d", 7, "007"),
            ("%.0d", 0, "0"),
            ("%hhu", 257, "1"),
            ("%hd", 65535, "-1"),
            ("%lld", -9, "-9"),
            ("%llx", -1, "ffffffffffffffff"),
            ("%zu", 42, "42"),
            ("%Lu", 42, "42"),
            ("%010lu", 42, "0000000042"),
            ("%-1d", 12, "12"),
            ("%3u", 1234, "1234"),
        ] {
            let got = fmt_int(f, v);
            let got = got.trim_end_matches('|');
            let want = want.trim_end_matches('|');
            assert_eq!(got, want, "{f} of {v}");
        }
    }

    #[test]
    fn decoding() {
        let p = decode(b"a=%d%% b=%-8s c=%*ph %pI6c: %.*s %q rest");
        assert_eq!(p[0], Piece::Lit("a=".into()));
        assert!(matches!(
            p[1],
            Piece::Conv {
                conv: Conv::Int { bits: 32 },
                ..
            }
        ));
        assert_eq!(p[2], Piece::Lit("% b=".into()));
        assert!(
            matches!(p[3], Piece::Conv { conv: Conv::Str, spec, .. } if spec.width == 8 && spec.flags & LEFT != 0)
        );
        assert!(
            matches!(&p[5], Piece::Conv { conv: Conv::Ptr(e), star_width: true, .. } if e == "h")
        );
        assert!(matches!(&p[7], Piece::Conv { conv: Conv::Ptr(e), .. } if e == "I6c"));
        assert!(matches!(
            &p[9],
            Piece::Conv {
                conv: Conv::Str,
                star_prec: true,
                ..
            }
        ));
        assert_eq!(p[11], Piece::Stop);
        assert_eq!(p.len(), 12);
        // A huge width is capped.
        assert!(
            matches!(decode(b"%99999999999d")[0], Piece::Conv { spec, .. } if spec.width == MAX_WIDTH)
        );
    }

    #[test]
    fn strings() {
        let mut s = String::new();
        data_string(
            &mut s,
            b"ab\ncd\xff\0ignored",
            Spec {
                width: 12,
                ..Spec::STR
            },
        );
        assert_eq!(s, "      ab\\ncd\\xff");
        let mut s = String::new();
        text(
            &mut s,
            "abcdef",
            Spec {
                precision: 3,
                width: -1,
                ..Spec::STR
            },
        );
        assert_eq!(s, "abc");
        let mut s = String::new();
        text(
            &mut s,
            "ab",
            Spec {
                width: 4,
                flags: LEFT,
                ..Spec::STR
            },
        );
        assert_eq!(s, "ab  ");
        let mut s = String::new();
        char(
            &mut s,
            b'x',
            Spec {
                width: 3,
                ..Spec::STR
            },
        );
        assert_eq!(s, "  x");
    }
}
