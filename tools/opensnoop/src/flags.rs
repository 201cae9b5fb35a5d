//! open(2) flags by name, as this architecture numbers them.

/// The flags, access mode first (`O_RDONLY` is 0: shown when no access
/// bit is set).
const FLAGS: &[(&str, i32)] = &[
    ("O_WRONLY", libc::O_WRONLY),
    ("O_RDWR", libc::O_RDWR),
    ("O_CREAT", libc::O_CREAT),
    ("O_EXCL", libc::O_EXCL),
    ("O_NOCTTY", libc::O_NOCTTY),
    ("O_TRUNC", libc::O_TRUNC),
    ("O_APPEND", libc::O_APPEND),
    ("O_NONBLOCK", libc::O_NONBLOCK),
    ("O_DSYNC", libc::O_DSYNC),
    ("O_ASYNC", libc::O_ASYNC),
    ("O_DIRECT", libc::O_DIRECT),
    ("O_LARGEFILE", libc::O_LARGEFILE),
    ("O_DIRECTORY", libc::O_DIRECTORY),
    ("O_NOFOLLOW", libc::O_NOFOLLOW),
    ("O_NOATIME", libc::O_NOATIME),
    ("O_CLOEXEC", libc::O_CLOEXEC),
    ("O_PATH", libc::O_PATH),
];

/// A flag given by the user (`O_WRONLY`, `wronly`, `O_SYNC`, `O_TMPFILE`)
/// as the bits it must have set; `None` if it is no flag.
pub fn parse(text: &str) -> Option<i32> {
    let up = text.trim().to_ascii_uppercase();
    let name = if up.starts_with("O_") {
        up
    } else {
        format!("O_{up}")
    };
    match name.as_str() {
        "O_RDONLY" => Some(0),
        "O_SYNC" => Some(libc::O_SYNC),
        "O_TMPFILE" => Some(libc::O_TMPFILE),
        n => FLAGS.iter().find(|(f, _)| *f == n).map(|(_, v)| *v),
    }
}

/// Whether `flags` has what a `-f FLAG` asks for: the access mode for
/// O_RDONLY, O_WRONLY and O_RDWR, every bit of the others.
pub fn has(flags: i64, want: i32) -> bool {
    let f = flags as i32;
    let mode = libc::O_ACCMODE;
    if want == 0 || want == libc::O_WRONLY || want == libc::O_RDWR {
        return f & mode == want;
    }
    f & want == want
}

/// `O_WRONLY|O_CREAT|O_TRUNC`, and any bits without a name in hex.
pub fn names(flags: i64) -> String {
    let mut f = flags as i32;
    let mut out = Vec::new();
    if f & libc::O_ACCMODE == 0 {
        out.push("O_RDONLY".to_string());
    }
    for (n, v) in FLAGS {
        if *v != 0 && f & v == *v {
            out.push((*n).to_string());
            f &= !v;
        }
    }
    if f != 0 {
        out.push(format!("0x{f:x}"));
    }
    out.join("|")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_filters() {
        let f = (libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC) as i64;
        assert_eq!(names(f), "O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC");
        assert_eq!(names(0), "O_RDONLY");
        assert!(has(f, parse("wronly").unwrap()));
        assert!(has(f, parse("O_CREAT").unwrap()));
        assert!(!has(f, parse("O_RDWR").unwrap()));
        assert!(!has(f, parse("O_RDONLY").unwrap()));
        assert!(has(0, parse("O_RDONLY").unwrap()));
        assert_eq!(parse("O_NOPE"), None);
        assert_eq!(names(1 << 30), "O_RDONLY|0x40000000");
    }
}
