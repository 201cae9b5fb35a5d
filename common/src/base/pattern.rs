//! Name patterns as bcc's tools take them: a shell glob matched against the
//! whole name (`vfs_*`), or with `-r` a regular expression found anywhere
//! in the name (`^vfs_(read|write)$`). funccount and funclatency match
//! kernel functions, tracepoints and user symbols with them.

use crate::base::error::{Error, Result};
use crate::base::glob::{self, Glob};

/// Matches names: a glob (whole name) or a regular expression.
#[derive(Debug, Clone)]
pub enum Matcher {
    /// A shell-style glob; without glob characters, one exact name.
    Glob(Glob),
    /// A regular expression, found anywhere in the name.
    Regex(regex::Regex),
}

impl Matcher {
    /// Compiles `text` as a regex (`regex` true) or a glob.
    pub fn new(text: &str, regex: bool) -> Result<Matcher> {
        if text.is_empty() {
            return Err(Error::usage("an empty pattern matches nothing"));
        }
        if regex {
            regex::RegexBuilder::new(text)
                .size_limit(1 << 20)
                .build()
                .map(Matcher::Regex)
                .map_err(|e| {
                    Error::usage(format!(
                        "'{text}' is not a regular expression: {}",
                        e.to_string().lines().last().unwrap_or("")
                    ))
                })
        } else {
            Glob::new(text).map(Matcher::Glob)
        }
    }

    /// Whether `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        match self {
            Matcher::Glob(g) => g.matches(name),
            Matcher::Regex(r) => r.is_match(name),
        }
    }

    /// Whether this can match more than one name.
    pub fn is_pattern(&self) -> bool {
        match self {
            Matcher::Glob(g) => glob::is_glob(g.as_str()),
            Matcher::Regex(_) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_and_regexes() {
        let g = Matcher::new("vfs_*", false).unwrap();
        assert!(g.matches("vfs_read") && !g.matches("xvfs_read") && g.is_pattern());
        let e = Matcher::new("vfs_read", false).unwrap();
        assert!(e.matches("vfs_read") && !e.matches("vfs_readv") && !e.is_pattern());
        let r = Matcher::new("^vfs_(read|write)$", true).unwrap();
        assert!(r.matches("vfs_write") && !r.matches("vfs_writev") && r.is_pattern());
        assert!(Matcher::new("vfs", true).unwrap().matches("do_vfs_ioctl"));
        assert_eq!(Matcher::new("(", true).unwrap_err().exit_code(), 2);
        assert_eq!(Matcher::new("", false).unwrap_err().exit_code(), 2);
    }
}
