//! The `%p` extensions the kernel's formats use, printed as lib/vsprintf.c
//! prints them: symbols (`%pS`, `%ps`, `%pB`), addresses (`%pI4`, `%pI6c`,
//! `%pISpc`), `%pM`, `%pU`, `%*ph`, `%*pb[l]`, and plain `%p`/`%px`.

use super::printf::{self, number, Spec, SMALL, SPECIAL, ZEROPAD};
use crate::sym::kallsyms::KernelSyms;
use std::fmt::Write;

/// A `%p` extension, read once when the format is compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ext {
    /// `%p`, `%px`: the value, in hex, 16 digits (the kernel prints `%p`
    /// hashed unless its `hash-ptr` option is off; the raw value is what
    /// the record holds).
    Raw,
    /// `%pS` (offset and size), `%ps` (name only), `%pB` (a return
    /// address: the call's symbol).
    Symbol { offset: bool, backtrace: bool },
    /// `%pI4`/`%pi4` and their byte-order letters.
    Ip4 { zeros: bool, order: u8 },
    /// `%pI6`, `%pi6`, `%pI6c`.
    Ip6 { colons: bool, compressed: bool },
    /// `%pIS`/`%piS` with `p`, `c`, `f`, `s` and byte-order letters.
    Sockaddr {
        colons: bool,
        port: bool,
        compressed: bool,
        flow: bool,
        scope: bool,
        order: u8,
    },
    /// `%pM`, `%pMF`, `%pMR`, `%pm`, `%pmR`.
    Mac { sep: Option<char>, reversed: bool },
    /// `%pU` and `b`, `B`, `l`, `L`.
    Uuid { upper: bool, le: bool },
    /// `%*ph` and `C`, `D`, `N`.
    Hex { sep: Option<char> },
    /// `%*pb`, `%*pbl`.
    Bitmap { list: bool },
}

/// Whether the value printed is the pointer itself (else the bytes it
/// points to).
impl Ext {
    pub fn takes_value(&self) -> bool {
        matches!(self, Ext::Raw | Ext::Symbol { .. })
    }

    /// Reads the letters after `%p`; `None` for what cannot be printed
    /// without the kernel's memory (`%pd`, `%pg`, `%pK`, ...).
    pub fn parse(ext: &str) -> Option<Ext> {
        let b = ext.as_bytes();
        let at = |i: usize| b.get(i).copied().unwrap_or(0);
        Some(match at(0) {
            0 | b'x' => Ext::Raw,
            b'S' | b's' => Ext::Symbol {
                offset: at(0) == b'S',
                backtrace: false,
            },
            b'B' => Ext::Symbol {
                offset: true,
                backtrace: true,
            },
            b'I' | b'i' => {
                let colons = at(0) == b'I';
                match at(1) {
                    b'4' => Ext::Ip4 {
                        zeros: !colons,
                        order: at(2),
                    },
                    b'6' => Ext::Ip6 {
                        colons,
                        compressed: colons && at(2) == b'c',
                    },
                    b'S' => {
                        let rest = &b[2..];
                        let has = |c: u8| rest.contains(&c);
                        Ext::Sockaddr {
                            colons,
                            port: has(b'p'),
                            compressed: has(b'c'),
                            flow: has(b'f'),
                            scope: has(b's'),
                            order: rest
                                .iter()
                                .copied()
                                .rfind(|c| matches!(c, b'h' | b'l' | b'n' | b'b'))
                                .unwrap_or(0),
                        }
                    }
                    _ => return None,
                }
            }
            b'M' | b'm' => Ext::Mac {
                sep: match (at(0), at(1)) {
                    (b'm', _) => None,
                    (_, b'F') => Some('-'),
                    _ => Some(':'),
                },
                reversed: at(1) == b'R',
            },
            b'U' => Ext::Uuid {
                upper: matches!(at(1), b'B' | b'L'),
                le: matches!(at(1), b'l' | b'L'),
            },
            b'h' => Ext::Hex {
                sep: match at(1) {
                    b'C' => Some(':'),
                    b'D' => Some('-'),
                    b'N' => None,
                    _ => Some(' '),
                },
            },
            b'b' => Ext::Bitmap {
                list: at(1) == b'l',
            },
            _ => return None,
        })
    }
}

/// `pointer_string()`: hex, zero-padded to 16 digits unless a width is
/// given.
pub(crate) fn raw(out: &mut String, v: u64, mut spec: Spec) {
    spec.base = 16;
    spec.flags |= SMALL;
    if spec.width == -1 {
        spec.width = 16;
        spec.flags |= ZEROPAD;
    }
    number(out, v, spec);
}

/// `%pS`, `%ps`, `%pB`: `func+0x1a/0x170 [module]`, `func [module]`, or
/// `0xffffffff81234567` where no symbol is known.
pub(crate) fn symbol(
    out: &mut String,
    addr: u64,
    offset: bool,
    backtrace: bool,
    syms: &mut KernelSyms,
    spec: Spec,
) {
    let start = out.len();
    if backtrace {
        // sprint_backtrace(): the symbol of the call before the return
        // address, the offset counted back up by one.
        let a = addr.wrapping_sub(1);
        let table = syms.table();
        match table.lookup(a) {
            Some(l) => {
                let _ = write!(out, "{}+{:#x}", l.function, l.offset + 1);
                if let Some(size) = table.function_size(a) {
                    let _ = write!(out, "/{size:#x}");
                }
                if let Some(m) = l.module {
                    let _ = write!(out, " [{m}]");
                }
            }
            None => {
                let _ = write!(out, "{addr:#x}");
            }
        }
    } else if offset {
        out.push_str(syms.get(addr, true));
    } else {
        out.push_str(syms.get_no_offset(addr));
    }
    let n = out.len() - start;
    let s = out.split_off(start);
    printf::text(out, &s, Spec { ..spec });
    let _ = n;
}

/// The extensions that print the bytes a pointer points to.
pub(crate) fn data(out: &mut String, ext: &Ext, b: &[u8], spec: Spec) {
    match *ext {
        Ext::Ip4 { zeros, order } => {
            let Some(a) = b.get(..4) else { return };
            let start = out.len();
            ip4(out, [a[0], a[1], a[2], a[3]], zeros, order);
            let n = out.len() - start;
            widen_from(out, start, n, spec);
        }
        Ext::Ip6 { colons, compressed } => {
            let Some(a) = b.get(..16) else { return };
            let start = out.len();
            ip6(out, a, colons, compressed);
            let n = out.len() - start;
            widen_from(out, start, n, spec);
        }
        Ext::Sockaddr { .. } => sockaddr(out, ext, b, spec),
        Ext::Mac { sep, reversed } => {
            let Some(a) = b.get(..6) else { return };
            let start = out.len();
            for i in 0..6 {
                let x = if reversed { a[5 - i] } else { a[i] };
                let _ = write!(out, "{x:02x}");
                if let (Some(c), true) = (sep, i != 5) {
                    out.push(c);
                }
            }
            let n = out.len() - start;
            widen_from(out, start, n, spec);
        }
        Ext::Uuid { upper, le } => {
            let Some(a) = b.get(..16) else { return };
            // The byte order of each group: guid_index for `l`/`L`.
            const UUID: [usize; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
            const GUID: [usize; 16] = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15];
            let index = if le { GUID } else { UUID };
            let start = out.len();
            for (i, &k) in index.iter().enumerate() {
                if upper {
                    let _ = write!(out, "{:02X}", a[k]);
                } else {
                    let _ = write!(out, "{:02x}", a[k]);
                }
                if matches!(i, 3 | 5 | 7 | 9) {
                    out.push('-');
                }
            }
            let n = out.len() - start;
            widen_from(out, start, n, spec);
        }
        Ext::Hex { sep } => {
            // hex_string(): the width is the length, at most 64 bytes; a
            // width of 0 prints nothing, none prints one byte.
            if spec.width == 0 {
                return;
            }
            let len = if spec.width > 0 {
                (spec.width as usize).min(64)
            } else {
                1
            };
            for (i, x) in b.iter().take(len).enumerate() {
                let _ = write!(out, "{x:02x}");
                if let (Some(c), true) = (sep, i + 1 != len) {
                    out.push(c);
                }
            }
        }
        Ext::Bitmap { list } => bitmap(out, b, spec.width.max(0) as usize, list),
        Ext::Raw | Ext::Symbol { .. } => {}
    }
}

fn widen_from(out: &mut String, start: usize, n: usize, spec: Spec) {
    // string_nocheck() of a buffer the extension filled: the precision
    // cuts it, the width pads it.
    let s = out.split_off(start);
    let _ = n;
    printf::text(out, &s, spec);
}

fn ip4(out: &mut String, a: [u8; 4], zeros: bool, order: u8) {
    // `h` and `l` are host and little-endian order (x86 is little-endian).
    let bytes = if matches!(order, b'h' | b'l') {
        [a[3], a[2], a[1], a[0]]
    } else {
        a
    };
    for (i, x) in bytes.iter().enumerate() {
        if zeros {
            let _ = write!(out, "{x:03}");
        } else {
            let _ = write!(out, "{x}");
        }
        if i < 3 {
            out.push('.');
        }
    }
}

fn ip6(out: &mut String, a: &[u8], colons: bool, compressed: bool) {
    if compressed {
        return ip6_compressed(out, a);
    }
    for i in 0..8 {
        let _ = write!(out, "{:02x}{:02x}", a[2 * i], a[2 * i + 1]);
        if colons && i != 7 {
            out.push(':');
        }
    }
}

/// `ip6_compressed_string()`: the longest run of zero words (of two or
/// more) as `::`, IPv4-mapped and ISATAP addresses with a dotted tail.
fn ip6_compressed(out: &mut String, a: &[u8]) {
    let word = |i: usize| u16::from_be_bytes([a[2 * i], a[2 * i + 1]]);
    let v4mapped = a[..10].iter().all(|&x| x == 0) && a[10] == 0xff && a[11] == 0xff;
    let isatap = (u32::from_be_bytes([a[8], a[9], a[10], a[11]]) | 0x0200_0000) == 0x0200_5efe;
    let use_v4 = v4mapped || isatap;
    let range = if use_v4 { 6 } else { 8 };
    let mut zerolength = [0u8; 8];
    for (i, z) in zerolength.iter_mut().enumerate().take(range) {
        *z = (i..range).take_while(|&j| word(j) == 0).count() as u8;
    }
    let mut longest = 1;
    let mut colonpos: i32 = -1;
    for (i, &z) in zerolength.iter().enumerate().take(range) {
        if z > longest {
            longest = z;
            colonpos = i as i32;
        }
    }
    if longest == 1 {
        colonpos = -1;
    }
    let mut needcolon = false;
    let mut i = 0;
    while i < range {
        if i as i32 == colonpos {
            if needcolon || i == 0 {
                out.push(':');
            }
            out.push(':');
            needcolon = false;
            i += longest as usize;
            continue;
        }
        if needcolon {
            out.push(':');
        }
        let _ = write!(out, "{:x}", word(i));
        needcolon = true;
        i += 1;
    }
    if use_v4 {
        if needcolon {
            out.push(':');
        }
        ip4(out, [a[12], a[13], a[14], a[15]], false, 0);
    }
}

fn sockaddr(out: &mut String, ext: &Ext, b: &[u8], spec: Spec) {
    let Ext::Sockaddr {
        colons,
        port,
        compressed,
        flow,
        scope,
        order,
    } = *ext
    else {
        return;
    };
    let Some(fam) = b.get(..2).map(|f| u16::from_ne_bytes([f[0], f[1]])) else {
        return;
    };
    let be16 = |o: usize| b.get(o..o + 2).map(|x| u16::from_be_bytes([x[0], x[1]]));
    let mut s = String::new();
    match fam {
        2 => {
            let (Some(a), Some(p)) = (b.get(4..8), be16(2)) else {
                return;
            };
            ip4(&mut s, [a[0], a[1], a[2], a[3]], !colons, order);
            if port {
                s.push(':');
                number(&mut s, p as u64, spec_dec(spec));
            }
        }
        10 => {
            let (Some(a), Some(p)) = (b.get(8..24), be16(2)) else {
                return;
            };
            let bracket = port || scope || flow;
            if bracket {
                s.push('[');
            }
            ip6(&mut s, a, colons, colons && compressed);
            if bracket {
                s.push(']');
            }
            if port {
                s.push(':');
                number(&mut s, p as u64, spec_dec(spec));
            }
            if flow {
                let f = b
                    .get(4..8)
                    .map(|x| u32::from_be_bytes([x[0], x[1], x[2], x[3]]) & 0x0fff_ffff)
                    .unwrap_or(0);
                s.push('/');
                number(&mut s, f as u64, spec_dec(spec));
            }
            if scope {
                let sc = b
                    .get(24..28)
                    .map(|x| u32::from_ne_bytes([x[0], x[1], x[2], x[3]]))
                    .unwrap_or(0);
                s.push('%');
                number(&mut s, sc as u64, spec_dec(spec));
            }
        }
        _ => {
            // error_string(): at most 16 characters unless a precision.
            let mut e = spec;
            if e.precision == -1 {
                e.precision = 16;
            }
            printf::text(out, "(einval)", e);
            return;
        }
    }
    printf::text(out, &s, spec);
}

/// The port and scope numbers are printed with the conversion's own spec
/// (its flags and width), in decimal: number() with spec as it came.
fn spec_dec(spec: Spec) -> Spec {
    Spec {
        base: 10,
        flags: spec.flags & !(SPECIAL | SMALL),
        ..spec
    }
}

/// `bitmap_string()` (32-bit chunks in hex, most significant first, comma
/// separated, zero-padded) or `bitmap_list_string()` (`0-3,8`), over
/// `nr_bits` bits of the little-endian longs in `b`.
fn bitmap(out: &mut String, b: &[u8], nr_bits: usize, list: bool) {
    let nr_bits = nr_bits.min(b.len() * 8);
    let bit = |i: usize| b.get(i / 8).is_some_and(|x| x & (1 << (i % 8)) != 0);
    if list {
        let mut first = true;
        let mut i = 0;
        while i < nr_bits {
            if !bit(i) {
                i += 1;
                continue;
            }
            let lo = i;
            while i + 1 < nr_bits && bit(i + 1) {
                i += 1;
            }
            if !first {
                out.push(',');
            }
            first = false;
            let _ = write!(out, "{lo}");
            if i > lo {
                let _ = write!(out, "-{i}");
            }
            i += 1;
        }
        return;
    }
    let mut chunksz = nr_bits % 32;
    if chunksz == 0 {
        chunksz = 32;
    }
    let mut i = (nr_bits.div_ceil(32) * 32) as isize - 32;
    let mut first = true;
    while i >= 0 {
        let mut val: u32 = 0;
        for k in 0..chunksz {
            if bit(i as usize + k) {
                val |= 1 << k;
            }
        }
        if !first {
            out.push(',');
        }
        first = false;
        let digits = chunksz.div_ceil(4);
        let _ = write!(out, "{val:0digits$x}");
        chunksz = 32;
        i -= 32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(ext: &str, b: &[u8]) -> String {
        let mut s = String::new();
        data(&mut s, &Ext::parse(ext).unwrap(), b, Spec::STR);
        s
    }

    #[test]
    fn addresses() {
        assert_eq!(d("I4", &[127, 0, 0, 1]), "127.0.0.1");
        assert_eq!(d("i4", &[10, 0, 0, 1]), "010.000.000.001");
        let mut v6 = [0u8; 16];
        v6[15] = 1;
        assert_eq!(d("I6c", &v6), "::1");
        assert_eq!(d("I6", &v6), "0000:0000:0000:0000:0000:0000:0000:0001");
        assert_eq!(d("i6", &v6), "00000000000000000000000000000001");
        let mapped = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1];
        assert_eq!(d("I6c", &mapped), "::ffff:127.0.0.1");
        let doc = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1];
        assert_eq!(d("I6c", &doc), "2001:db8::1:0:0:1");
        assert_eq!(d("I6c", &[0u8; 16]), "::");
        // sockaddr_in: family 2, port 8080, 127.0.0.1.
        let mut sin = [0u8; 16];
        sin[..2].copy_from_slice(&2u16.to_ne_bytes());
        sin[2..4].copy_from_slice(&8080u16.to_be_bytes());
        sin[4..8].copy_from_slice(&[127, 0, 0, 1]);
        assert_eq!(d("ISpc", &sin), "127.0.0.1:8080");
        let mut sin6 = [0u8; 28];
        sin6[..2].copy_from_slice(&10u16.to_ne_bytes());
        sin6[2..4].copy_from_slice(&443u16.to_be_bytes());
        sin6[23] = 1;
        assert_eq!(d("ISpc", &sin6), "[::1]:443");
        assert_eq!(d("ISpc", &[0u8; 16]), "(einval)");
        assert_eq!(d("M", &[0, 1, 2, 0xa, 0xb, 0xc]), "00:01:02:0a:0b:0c");
        assert_eq!(d("MR", &[0, 1, 2, 0xa, 0xb, 0xc]), "0c:0b:0a:02:01:00");
        assert_eq!(d("m", &[0, 1, 2, 0xa, 0xb, 0xc]), "0001020a0b0c");
        let u: Vec<u8> = (0..16).collect();
        assert_eq!(d("U", &u), "00010203-0405-0607-0809-0a0b0c0d0e0f");
        assert_eq!(d("Ul", &u), "03020100-0504-0706-0809-0a0b0c0d0e0f");
        assert_eq!(d("UB", &[0xab; 16]), "ABABABAB-ABAB-ABAB-ABAB-ABABABABABAB");
        // Too short a buffer prints nothing rather than reading past it.
        assert_eq!(d("I6c", &[1, 2]), "");
    }

    #[test]
    fn hex_and_bitmaps() {
        let mut s = String::new();
        data(
            &mut s,
            &Ext::parse("h").unwrap(),
            &[1, 0xab, 3],
            Spec {
                width: 3,
                ..Spec::STR
            },
        );
        assert_eq!(s, "01 ab 03");
        let mut s = String::new();
        data(
            &mut s,
            &Ext::parse("hN").unwrap(),
            &[1, 0xab, 3],
            Spec {
                width: 2,
                ..Spec::STR
            },
        );
        assert_eq!(s, "01ab");
        let mut s = String::new();
        bitmap(&mut s, &[0x0f, 0x01, 0, 0, 0, 0, 0, 0x80], 64, false);
        assert_eq!(s, "80000000,0000010f");
        let mut s = String::new();
        bitmap(&mut s, &[0x0f, 0x01], 12, false);
        assert_eq!(s, "10f");
        let mut s = String::new();
        bitmap(&mut s, &[0x0f, 0x05], 16, true);
        assert_eq!(s, "0-3,8,10");
        let mut s = String::new();
        raw(&mut s, 0xffff8881, Spec::STR);
        assert_eq!(s, "00000000ffff8881");
    }
}
