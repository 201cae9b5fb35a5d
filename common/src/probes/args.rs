//! Printing the fetch arguments of a probe event (kprobe, kretprobe,
//! uprobe, uretprobe) the way the kernel's own text output does.
//!
//! The `format` file of a probe event gives each argument's C type, but not
//! whether the kernel prints it in hex (the default `x64` type and `x32`,
//! ...) or in decimal (`u32`, `s64`): only the `print fmt` line says so
//! (`arg1=0x%Lx b=%u d=\"%s\" f={%u,%u,%u}`). [`ArgStyles::parse`] reads
//! that line; [`ArgStyles::write`] prints a field accordingly and
//! [`ArgStyles::json`] gives it as a JSON value.
//!
//! Every tool that prints probe events shares this (first written for
//! `uprobe`).

use crate::buffer::format::{Field, FieldKind, Value};
use std::collections::HashMap;
use std::fmt::Write;

/// How one argument is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `0x1f`.
    Hex,
    /// `-3`.
    Signed,
    /// `31`.
    Unsigned,
    /// `"text"`.
    Str,
    /// `'c'`.
    Char,
}

/// The print style of each argument of one event, from its `print fmt`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArgStyles {
    styles: HashMap<String, (Style, bool)>, // (element style, is an array)
}

/// The first C string literal of a `print fmt` line, unescaped.
fn format_string(print_fmt: &str) -> Option<String> {
    let start = print_fmt.find('"')?;
    let mut out = String::new();
    let mut chars = print_fmt[start + 1..].chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

fn style_of(conv: &str) -> Option<Style> {
    // conv is what follows '%': optional length modifiers, then a letter.
    let letter = conv
        .trim_start_matches(['l', 'L', 'h', 'z', 'j', 't'])
        .chars()
        .next()?;
    Some(match letter {
        'x' | 'X' | 'p' => Style::Hex,
        'd' | 'i' => Style::Signed,
        'u' => Style::Unsigned,
        's' => Style::Str,
        'c' => Style::Char,
        _ => return None,
    })
}

impl ArgStyles {
    /// Reads the styles from a `print fmt` line. Never fails: an argument
    /// it cannot read is printed by its type instead.
    pub fn parse(print_fmt: &str) -> ArgStyles {
        let mut styles = HashMap::new();
        let Some(fmt) = format_string(print_fmt) else {
            return ArgStyles { styles };
        };
        for tok in fmt.split(' ') {
            let Some((name, spec)) = tok.split_once('=') else {
                continue;
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                continue;
            }
            let (array, spec) = match spec.strip_prefix('{') {
                Some(s) => (true, s),
                None => (false, spec),
            };
            let Some(pct) = spec.find('%') else { continue };
            if let Some(st) = style_of(&spec[pct + 1..]) {
                styles.insert(name.to_string(), (st, array));
            }
        }
        ArgStyles { styles }
    }

    /// The style of an argument, if the print format named it.
    pub fn style(&self, name: &str) -> Option<Style> {
        self.styles.get(name).map(|s| s.0)
    }

    /// Writes `name=value` for an argument field.
    pub fn write(&self, f: &Field, data: &[u8], out: &mut String) {
        out.push_str(&f.name);
        out.push('=');
        self.write_value(f, data, out);
    }

    /// Writes the value of an argument field alone, as [`ArgStyles::write`]
    /// shows it after `name=`.
    pub fn write_value(&self, f: &Field, data: &[u8], out: &mut String) {
        let Some(&(style, array)) = self.styles.get(&f.name) else {
            let mut s = String::new();
            f.write_text(data, &mut s);
            out.push_str(s.get(f.name.len() + 1..).unwrap_or(""));
            return;
        };
        if array {
            let elem = elem_size(f);
            let Some(bytes) = f.bytes(data) else {
                out.push_str("{}");
                return;
            };
            out.push('{');
            for (i, chunk) in bytes.chunks_exact(elem).enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let v = uint(chunk);
                write_scalar(style, v, elem, out);
            }
            out.push('}');
            return;
        }
        match style {
            Style::Str if f.is_string() => match f.bytes(data) {
                // The kernel records a string it could not read (a fault)
                // with length 0 (an empty one still has its NUL) and
                // prints it as (fault).
                Some([]) if is_dynamic(f) => out.push_str("(fault)"),
                Some(b) => write_quoted_bytes(b, out),
                None => out.push_str("(fault)"),
            },
            Style::Str => match f.value(data) {
                Some(Value::Str(s)) => write_quoted(&s, out),
                Some(v) => {
                    let _ = write!(out, "{v}");
                }
                None => out.push_str("(fault)"),
            },
            _ => match f.u64(data) {
                Some(v) => write_scalar(style, v, f.size, out),
                None => out.push_str("(fault)"),
            },
        }
    }

    /// The argument as a JSON value: numbers as numbers, text as text,
    /// arrays as arrays.
    pub fn json(&self, f: &Field, data: &[u8]) -> serde_json::Value {
        use serde_json::json;
        let style = self.styles.get(&f.name).copied();
        if let Some((st, true)) = style {
            let elem = elem_size(f);
            let Some(bytes) = f.bytes(data) else {
                return serde_json::Value::Null;
            };
            return bytes
                .chunks_exact(elem)
                .map(|c| scalar_json(st, uint(c), elem))
                .collect();
        }
        if is_dynamic(f) && f.bytes(data).is_some_and(|b| b.is_empty()) {
            // A fault (see `write_value`).
            return serde_json::Value::Null;
        }
        match (style.map(|s| s.0), f.value(data)) {
            (_, Some(Value::Str(s))) => json!(s),
            (Some(st), Some(v)) if v.as_u64().is_some() => {
                scalar_json(st, v.as_u64().unwrap_or(0), f.size)
            }
            (_, Some(Value::Int(i))) => json!(i),
            (_, Some(Value::Uint(u))) => json!(u),
            (_, Some(Value::Array(a))) => json!(a),
            (_, Some(v)) => json!(v.to_string()),
            (_, None) => serde_json::Value::Null,
        }
    }
}

/// Whether a field's data is elsewhere in the record (`__data_loc`,
/// `__rel_loc`): strings of probes.
fn is_dynamic(f: &Field) -> bool {
    matches!(f.kind, FieldKind::DataLoc | FieldKind::RelLoc)
}

/// Element size of an array argument, from its type (`u8`, `x16`, `s32`).
fn elem_size(f: &Field) -> usize {
    let bits: Option<usize> = f
        .ctype
        .trim()
        .get(1..)
        .and_then(|b| b.parse().ok())
        .filter(|b| matches!(b, 8 | 16 | 32 | 64));
    match (bits, f.kind) {
        (Some(b), _) => b / 8,
        (None, FieldKind::Array { elem, .. }) => elem.max(1),
        _ => 1,
    }
}

fn uint(b: &[u8]) -> u64 {
    match b.len() {
        1 => b[0] as u64,
        2 => u16::from_ne_bytes([b[0], b[1]]) as u64,
        4 => u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as u64,
        8 => u64::from_ne_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
        _ => 0,
    }
}

fn signed(v: u64, size: usize) -> i64 {
    match size {
        1 => v as u8 as i8 as i64,
        2 => v as u16 as i16 as i64,
        4 => v as u32 as i32 as i64,
        _ => v as i64,
    }
}

fn write_scalar(style: Style, v: u64, size: usize, out: &mut String) {
    let _ = match style {
        Style::Hex => write!(out, "0x{v:x}"),
        Style::Signed => write!(out, "{}", signed(v, size)),
        Style::Char => match char::from_u32(v as u32).filter(|c| !c.is_control()) {
            Some(c) => write!(out, "'{c}'"),
            None => write!(out, "'\\x{:02x}'", v as u8),
        },
        Style::Unsigned | Style::Str => write!(out, "{v}"),
    };
}

fn scalar_json(style: Style, v: u64, size: usize) -> serde_json::Value {
    match style {
        Style::Signed => serde_json::json!(signed(v, size)),
        _ => serde_json::json!(v),
    }
}

/// `"text"` with quotes, backslashes and control characters escaped, so a
/// line of output stays one line whatever the traced program passed.
pub fn write_quoted(s: &str, out: &mut String) {
    out.push('"');
    escape_into(s, out);
    out.push('"');
}

/// Like [`write_quoted`] for bytes read from a traced program (up to the
/// first NUL): bytes that are not UTF-8 show as `\xNN`, not as U+FFFD, so
/// binary data stays recognisable.
pub fn write_quoted_bytes(b: &[u8], out: &mut String) {
    let b = &b[..b.iter().position(|&c| c == 0).unwrap_or(b.len())];
    out.push('"');
    for chunk in b.utf8_chunks() {
        escape_into(chunk.valid(), out);
        for x in chunk.invalid() {
            let _ = write!(out, "\\x{x:02x}");
        }
    }
    out.push('"');
}

fn escape_into(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::format::EventFormat;
    use proptest::prelude::*;

    /// The format of `p:g/e /bin/true:0x1000 a=%di:s64 b=%si:u32 c=%dx:x16
    /// d=+0(%si):ustring e=%cx:b4@2/32 f=+0(%di):u8[3] g=$stack0 i=$comm
    /// j=%ax:s32`, read from the 6.18 host kernel.
    const FMT: &str = "name: e\nID: 2326\nformat:\n\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n\tfield:unsigned long __probe_ip;\toffset:8;\tsize:8;\tsigned:0;\n\tfield:s64 a;\toffset:16;\tsize:8;\tsigned:1;\n\tfield:u32 b;\toffset:24;\tsize:4;\tsigned:0;\n\tfield:u16 c;\toffset:28;\tsize:2;\tsigned:0;\n\tfield:__data_loc char[] d;\toffset:30;\tsize:4;\tsigned:1;\n\tfield:u32 e;\toffset:34;\tsize:4;\tsigned:0;\n\tfield:u8 f[];\toffset:38;\tsize:3;\tsigned:0;\n\tfield:u64 g;\toffset:41;\tsize:8;\tsigned:0;\n\tfield:__data_loc char[] i;\toffset:49;\tsize:4;\tsigned:1;\n\tfield:s32 j;\toffset:53;\tsize:4;\tsigned:1;\n\nprint fmt: \"(%lx) a=%Ld b=%u c=0x%x d=\\\"%s\\\" e=%u f={%u,%u,%u} g=0x%Lx i=\\\"%s\\\" j=%d\", REC->__probe_ip, REC->a, REC->b, REC->c, __get_str(d), REC->e, REC->f[0], REC->f[1], REC->f[2], REC->g, __get_str(i), REC->j\n";

    fn record() -> Vec<u8> {
        let mut d = vec![0u8; 57];
        d[8..16].copy_from_slice(&0x401000u64.to_ne_bytes());
        d[16..24].copy_from_slice(&(-5i64).to_ne_bytes());
        d[24..28].copy_from_slice(&7u32.to_ne_bytes());
        d[28..30].copy_from_slice(&0xbeefu16.to_ne_bytes());
        d[34..38].copy_from_slice(&9u32.to_ne_bytes());
        d[38..41].copy_from_slice(&[1, 2, 3]);
        d[41..49].copy_from_slice(&0x10u64.to_ne_bytes());
        d[53..57].copy_from_slice(&(-2i32).to_ne_bytes());
        // Strings at the end: "hi\n" for d, "sh" for i.
        let off = d.len() as u32;
        d.extend_from_slice(b"hi\n\0");
        d[30..34].copy_from_slice(&(off | (4 << 16)).to_ne_bytes());
        let off = d.len() as u32;
        d.extend_from_slice(b"sh\0");
        d[49..53].copy_from_slice(&(off | (3 << 16)).to_ne_bytes());
        d
    }

    #[test]
    fn prints_like_the_kernel() {
        let fmt = EventFormat::parse(FMT).unwrap();
        let st = ArgStyles::parse(&fmt.print_fmt);
        let data = record();
        let mut line = String::new();
        for f in fmt.fields.iter().filter(|f| !f.name.starts_with("__probe")) {
            line.push(' ');
            st.write(f, &data, &mut line);
        }
        assert_eq!(
            line,
            " a=-5 b=7 c=0xbeef d=\"hi\\n\" e=9 f={1,2,3} g=0x10 i=\"sh\" j=-2"
        );
        let j: Vec<_> = fmt
            .fields
            .iter()
            .filter(|f| !f.name.starts_with("__probe"))
            .map(|f| st.json(f, &data))
            .collect();
        assert_eq!(
            serde_json::Value::Array(j).to_string(),
            r#"[-5,7,48879,"hi\n",9,[1,2,3],16,"sh",-2]"#
        );
    }

    /// `p:tg/e1 do_sys_openat2 f=+0(%si):string mode=%cx:u16`, as the
    /// Debian 6.1 kernel writes its format.
    const KPROBE_61: &str = "name: e1\nID: 1493\nformat:\n\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n\tfield:unsigned long __probe_ip;\toffset:8;\tsize:8;\tsigned:0;\n\tfield:__data_loc char[] f;\toffset:16;\tsize:4;\tsigned:1;\n\tfield:u16 mode;\toffset:20;\tsize:2;\tsigned:0;\n\nprint fmt: \"(%lx) f=\\\"%s\\\" mode=%u\", REC->__probe_ip, __get_str(f), REC->mode\n";

    #[test]
    fn kprobe_string_and_u16_as_on_6_1() {
        let fmt = EventFormat::parse(KPROBE_61).unwrap();
        let st = ArgStyles::parse(&fmt.print_fmt);
        assert_eq!(st.style("f"), Some(Style::Str));
        assert_eq!(st.style("mode"), Some(Style::Unsigned));
        let mut d = vec![0u8; 24];
        d[20..22].copy_from_slice(&33345u16.to_ne_bytes());
        d[16..20].copy_from_slice(&(24u32 | (10 << 16)).to_ne_bytes());
        d.extend_from_slice(b"/dev/null\0");
        let mut line = String::new();
        for f in fmt.fields.iter().filter(|f| !f.name.starts_with("__probe")) {
            line.push(' ');
            st.write(f, &d, &mut line);
        }
        assert_eq!(line, " f=\"/dev/null\" mode=33345");
        let mut v = String::new();
        st.write_value(fmt.field("f").unwrap(), &d, &mut v);
        assert_eq!(v, "\"/dev/null\"");
        // A string the kernel could not read has length 0.
        let mut faulted = d.clone();
        faulted[16..20].copy_from_slice(&24u32.to_ne_bytes());
        let mut v = String::new();
        st.write_value(fmt.field("f").unwrap(), &faulted, &mut v);
        assert_eq!(v, "(fault)");
        assert_eq!(
            st.json(fmt.field("f").unwrap(), &faulted),
            serde_json::Value::Null
        );
        // An empty one still has its NUL.
        faulted[16..20].copy_from_slice(&(24u32 | (1 << 16)).to_ne_bytes());
        faulted[24] = 0;
        let mut v = String::new();
        st.write_value(fmt.field("f").unwrap(), &faulted, &mut v);
        assert_eq!(v, "\"\"");
        // A field the print format does not name keeps the generic form.
        let mut v = String::new();
        ArgStyles::default().write_value(fmt.field("mode").unwrap(), &d, &mut v);
        assert_eq!(v, "33345");
    }

    #[test]
    fn strings_that_are_not_utf8_show_their_bytes() {
        let mut s = String::new();
        write_quoted_bytes(b"ok\xff\x10\xc3\xa9\"\0rest", &mut s);
        assert_eq!(s, "\"ok\\xff\\x10\u{e9}\\\"\"");
    }

    #[test]
    fn default_args_are_hex() {
        let st = ArgStyles::parse(
            r#""(%lx <- %lx) arg1=0x%Lx file=0x%Lx", REC->__probe_func, REC->__probe_ret_ip, REC->arg1"#,
        );
        assert_eq!(st.style("arg1"), Some(Style::Hex));
        assert_eq!(st.style("file"), Some(Style::Hex));
        assert_eq!(st.style("__probe_func"), None);
    }

    proptest! {
        #[test]
        fn never_panics(pf in "\\PC{0,80}", data in proptest::collection::vec(any::<u8>(), 0..80)) {
            let st = ArgStyles::parse(&pf);
            if let Ok(fmt) = EventFormat::parse(FMT) {
                let mut s = String::new();
                for f in &fmt.fields {
                    st.write(f, &data, &mut s);
                    let _ = st.json(f, &data);
                }
                let real = ArgStyles::parse(&fmt.print_fmt);
                for f in &fmt.fields {
                    real.write(f, &data, &mut s);
                    let _ = real.json(f, &data);
                }
            }
        }
    }
}
