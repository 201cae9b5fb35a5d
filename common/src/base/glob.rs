//! Shell-style patterns (`vfs_*`, `block:block_rq_?ssue`, `[a-c]*`) as used
//! by perf-tools for function and tracepoint names.

use crate::base::error::{Error, Result};

/// A compiled glob.
#[derive(Debug, Clone)]
pub struct Glob {
    re: regex::Regex,
    text: String,
}

/// Whether a string has glob metacharacters.
pub fn is_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

impl Glob {
    /// Compiles a glob: `*` any run, `?` one character, `[...]` a class
    /// (`[!...]` negated). Everything else is literal.
    pub fn new(pattern: &str) -> Result<Glob> {
        let mut re = String::from("^");
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '*' => re.push_str(".*"),
                '?' => re.push('.'),
                '[' => {
                    let mut class = String::from("[");
                    if chars.peek() == Some(&'!') || chars.peek() == Some(&'^') {
                        chars.next();
                        class.push('^');
                    }
                    let mut closed = false;
                    let mut first = true;
                    for k in chars.by_ref() {
                        if k == ']' && !first {
                            closed = true;
                            break;
                        }
                        first = false;
                        if k == '\\' || k == '[' || k == '&' || k == '~' || k == '^' {
                            class.push('\\');
                        }
                        class.push(k);
                    }
                    if !closed {
                        return Err(Error::usage(format!(
                            "the pattern '{pattern}' has a '[' without its ']'"
                        )));
                    }
                    class.push(']');
                    re.push_str(&class);
                }
                c => re.push_str(&regex::escape(&c.to_string())),
            }
        }
        re.push('$');
        let re = regex::Regex::new(&re)
            .map_err(|e| Error::usage(format!("bad pattern '{pattern}': {e}")))?;
        Ok(Glob {
            re,
            text: pattern.to_string(),
        })
    }

    /// Whether `s` matches the whole pattern.
    pub fn matches(&self, s: &str) -> bool {
        self.re.is_match(s)
    }

    /// The pattern as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// Names from `candidates` close to `wanted` (for "did you mean"): same
/// prefix or a small edit distance, best first, at most `max`.
pub fn suggestions<'a>(
    wanted: &str,
    candidates: impl IntoIterator<Item = &'a str>,
    max: usize,
) -> Vec<String> {
    let w = wanted.to_lowercase();
    let mut scored: Vec<(usize, &str)> = candidates
        .into_iter()
        .filter_map(|c| {
            let lc = c.to_lowercase();
            let d = edit_distance(&w, &lc);
            let limit = (w.len() / 3).max(2);
            if d <= limit {
                Some((d, c))
            } else if w.len() >= 4 && (lc.starts_with(&w) || lc.contains(&w)) {
                Some((limit + 1 + lc.len().saturating_sub(w.len()), c))
            } else {
                None
            }
        })
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    scored
        .into_iter()
        .take(max)
        .map(|(_, c)| c.to_string())
        .collect()
}

/// `; did you mean a, b?` naming the candidates close to `wanted` (at most
/// `max`, see [`suggestions`]), or nothing when none is: the end of an
/// error message about a name that does not exist.
pub fn did_you_mean<'a>(
    wanted: &str,
    candidates: impl IntoIterator<Item = &'a str>,
    max: usize,
) -> String {
    hint(&suggestions(wanted, candidates, max))
}

/// `; did you mean a, b?` for names found another way (empty: nothing).
pub fn hint(near: &[String]) -> String {
    if near.is_empty() {
        String::new()
    } else {
        format!("; did you mean {}?", near.join(", "))
    }
}

/// Levenshtein distance (bytes), bounded work for long strings.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a = a.as_bytes();
    let b = b.as_bytes();
    if a.len() > 256 || b.len() > 256 {
        return usize::MAX / 2;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// A process name to match (`-n`): perf-tools matched the name anywhere in
/// COMM; a glob matches the whole name.
pub enum NameMatch {
    /// A plain name: found anywhere in COMM.
    Contains(String),
    /// A glob: matches the whole COMM.
    Glob(Glob),
}

impl NameMatch {
    /// `-n NAME`; an empty NAME is refused.
    pub fn new(s: &str) -> Result<NameMatch> {
        if s.is_empty() {
            return Err(Error::usage("the process name (-n) is empty"));
        }
        if is_glob(s) {
            Ok(NameMatch::Glob(Glob::new(s)?))
        } else {
            Ok(NameMatch::Contains(s.to_string()))
        }
    }

    /// Whether a task named `comm` matches.
    pub fn matches(&self, comm: &str) -> bool {
        match self {
            NameMatch::Contains(s) => comm.contains(s.as_str()),
            NameMatch::Glob(g) => g.matches(comm),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_like_perf_tools() {
        let n = NameMatch::new("dd").unwrap();
        assert!(n.matches("dd") && n.matches("xddy") && !n.matches("d"));
        let g = NameMatch::new("post*").unwrap();
        assert!(g.matches("postgres") && !g.matches("xpostgres"));
        assert!(NameMatch::new("").is_err());
    }
    use proptest::prelude::*;

    #[test]
    fn globs_match_like_a_shell() {
        let g = Glob::new("vfs_*").unwrap();
        assert!(g.matches("vfs_read") && g.matches("vfs_") && !g.matches("xvfs_read"));
        assert!(Glob::new("block:block_rq_?ssue")
            .unwrap()
            .matches("block:block_rq_issue"));
        assert!(Glob::new("[a-c]x").unwrap().matches("bx"));
        assert!(!Glob::new("[!a-c]x").unwrap().matches("bx"));
        assert!(
            Glob::new("a.b").unwrap().matches("a.b") && !Glob::new("a.b").unwrap().matches("axb")
        );
        assert!(Glob::new("[abc").is_err());
        assert!(is_glob("a*") && !is_glob("vfs_read"));
    }

    #[test]
    fn suggestions_find_near_misses() {
        let names = ["vfs_read", "vfs_write", "do_sys_open", "ksys_read"];
        assert_eq!(suggestions("vfs_raed", names, 3)[0], "vfs_read");
        assert_eq!(suggestions("do_sys_opn", names, 3), vec!["do_sys_open"]);
        assert!(suggestions("zzzzzz", names, 3).is_empty());
    }

    proptest! {
        #[test]
        fn any_pattern_compiles_or_errors(p in "\\PC{0,30}", s in "\\PC{0,30}") {
            if let Ok(g) = Glob::new(&p) { let _ = g.matches(&s); }
        }
    }
}
