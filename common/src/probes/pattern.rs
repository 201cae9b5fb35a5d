//! The patterns of the counting tools (funccount, stackcount): what to
//! count or trace, as typed on the command line.
//!
//! - `vfs_*`, `k:vfs_*` or `p:vfs_*`: kernel functions, matched against
//!   `available_filter_functions`.
//! - `t:SYSTEM:EVENT`: tracepoints (`t:syscalls:sys_enter_*`, `t:block:*`).
//! - `u:TARGET:FUNC`: user functions of a program or library
//!   (`u:libc:malloc`, `u:/usr/bin/bash:read*`).
//!
//! Names are globs (`*`, `?`, `[...]`) or, with `-r`, regular expressions
//! matched anywhere in the name (anchor them with `^` and `$`).

pub use crate::base::pattern::Matcher;
use crate::{Error, Result};

/// One pattern of the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spec {
    /// Kernel functions.
    Kernel {
        /// The name pattern.
        pattern: String,
    },
    /// Tracepoints.
    Tracepoint {
        /// The system pattern (`syscalls`, `*`).
        system: String,
        /// The event pattern.
        event: String,
    },
    /// User functions.
    User {
        /// The program or library, as uprobe takes it (`libc`, `bash`,
        /// `/path/to/file`).
        target: String,
        /// The function pattern.
        func: String,
    },
}

impl Spec {
    /// The pattern as the user wrote it (for messages).
    pub fn text(&self) -> String {
        match self {
            Spec::Kernel { pattern } => pattern.clone(),
            Spec::Tracepoint { system, event } => format!("t:{system}:{event}"),
            Spec::User { target, func } => format!("u:{target}:{func}"),
        }
    }
}

fn check_chars(what: &str, s: &str) -> Result<()> {
    if s.is_empty() {
        return Err(Error::usage(format!("the {what} is empty")));
    }
    if let Some(c) = s.chars().find(|c| c.is_control() || c.is_whitespace()) {
        return Err(Error::usage(format!(
            "the {what} '{}' contains {c:?}: names have no spaces or control characters",
            s.escape_debug()
        )));
    }
    Ok(())
}

/// Parses one pattern.
pub fn parse(text: &str) -> Result<Spec> {
    check_chars("pattern", text)?;
    let (prefix, rest) = match text.split_once(':') {
        Some((p, r)) => (Some(p), r),
        None => (None, text),
    };
    match prefix {
        None => Ok(Spec::Kernel {
            pattern: text.to_string(),
        }),
        Some("k" | "p" | "kprobe") => {
            check_chars("function pattern", rest)?;
            if rest.contains(':') {
                return Err(Error::usage(format!(
                    "'{text}': kernel module prefixes (MOD:FUNC) are not supported; give the function pattern alone"
                )));
            }
            Ok(Spec::Kernel {
                pattern: rest.to_string(),
            })
        }
        Some("t" | "tracepoint") => {
            let (system, event) = rest.split_once(':').ok_or_else(|| {
                Error::usage(format!(
                    "'{text}' is not a tracepoint pattern: give t:SYSTEM:EVENT, e.g. t:syscalls:sys_enter_read or t:block:*"
                ))
            })?;
            check_chars("tracepoint system", system)?;
            check_chars("tracepoint event", event)?;
            if event.contains(':') {
                return Err(Error::usage(format!(
                    "'{text}' has too many ':' for t:SYSTEM:EVENT"
                )));
            }
            Ok(Spec::Tracepoint {
                system: system.to_string(),
                event: event.to_string(),
            })
        }
        Some("u" | "uprobe") => {
            // The target may be a path with ':' in it: the function is
            // after the last ':'.
            let (target, func) = rest.rsplit_once(':').ok_or_else(|| {
                Error::usage(format!(
                    "'{text}' is not a user function pattern: give u:TARGET:FUNC, e.g. u:libc:malloc or u:/usr/bin/bash:read*"
                ))
            })?;
            check_chars("program or library", target)?;
            check_chars("user function pattern", func)?;
            Ok(Spec::User {
                target: target.to_string(),
                func: func.to_string(),
            })
        }
        Some(p) => Err(Error::usage(format!(
            "'{text}': unknown prefix '{p}:'; write kernel functions as they are (vfs_*), tracepoints as t:{p}:{rest}, user functions as u:{p}:{rest}"
        ))),
    }
}

/// Parses one pattern as bcc's stackcount and trace take it: as
/// [`parse`], and `LIB:FUNC` or `/path:FUNC` (an unknown prefix) is a user
/// function, as `u:LIB:FUNC`.
pub fn parse_lib_func(text: &str) -> Result<Spec> {
    match text.split_once(':') {
        Some((p, _))
            if !matches!(
                p,
                "k" | "p" | "kprobe" | "t" | "tracepoint" | "u" | "uprobe"
            ) =>
        {
            parse(&format!("u:{text}"))
        }
        _ => parse(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_each_kind() {
        assert_eq!(
            parse("vfs_*").unwrap(),
            Spec::Kernel {
                pattern: "vfs_*".into()
            }
        );
        assert_eq!(
            parse("k:tcp_*").unwrap(),
            Spec::Kernel {
                pattern: "tcp_*".into()
            }
        );
        assert_eq!(
            parse("p:ksys_read").unwrap(),
            Spec::Kernel {
                pattern: "ksys_read".into()
            }
        );
        assert_eq!(
            parse("t:syscalls:sys_enter_*").unwrap(),
            Spec::Tracepoint {
                system: "syscalls".into(),
                event: "sys_enter_*".into()
            }
        );
        assert_eq!(
            parse("u:libc:malloc").unwrap(),
            Spec::User {
                target: "libc".into(),
                func: "malloc".into()
            }
        );
        assert_eq!(
            parse("u:/opt/a:b/lib.so:f*").unwrap(),
            Spec::User {
                target: "/opt/a:b/lib.so".into(),
                func: "f*".into()
            }
        );
        assert_eq!(parse("t:sched:*").unwrap().text(), "t:sched:*");
        assert_eq!(
            parse_lib_func("/tmp/prog:path_*").unwrap(),
            Spec::User {
                target: "/tmp/prog".into(),
                func: "path_*".into()
            }
        );
        assert_eq!(
            parse_lib_func("libc:malloc").unwrap().text(),
            "u:libc:malloc"
        );
        assert_eq!(parse_lib_func("t:block:x").unwrap().text(), "t:block:x");
        assert_eq!(parse_lib_func("vfs_read").unwrap().text(), "vfs_read");
    }

    #[test]
    fn refuses_bad_patterns() {
        for bad in [
            "", "x:y", "t:sched", "t::x", "t:a:b:c", "u:libc", "u::f", "u:libc:", "a b", "vfs\n",
            "k:", "k:ext4:x",
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad:?}");
        }
        assert!(parse("x:y").unwrap_err().message().contains("t:x:y"));
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,40}", r in proptest::bool::ANY) {
            let _ = parse(&s);
            if let Ok(m) = Matcher::new(&s, r) { let _ = m.matches("vfs_read"); }
        }
    }
}
