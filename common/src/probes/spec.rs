//! The shape that `kprobe` and `uprobe` definitions share, in perf-tools'
//! form: `{p|r}:[NAME ]LOCATION [ARGS] [if FILTER]`.
//!
//! - `p:` probes an entry (or an instruction), `r:` a return;
//! - if the first word is followed by a second word that does not look like
//!   a fetch argument, the first word is the event NAME; otherwise there is
//!   no NAME and the first word is the LOCATION;
//! - ARGS are the kernel's fetch arguments, passed on as given, and
//!   `$argN` (see [`crate::probes::argn`]), checked here;
//! - our addition: a standalone word `if` after the first word starts a
//!   filter, so that each of several `-e` definitions can carry its own. A
//!   word `if` can never be a fetch argument, so nothing valid changes
//!   meaning.
//!
//! [`split`] cuts a definition into these parts; what a LOCATION is, and how
//! words are told apart, is each tool's [`Grammar`]. Pure; never panics.

use crate::{Error, Result};

/// Entry or return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `p:` the function's entry (or an instruction in it).
    Entry,
    /// `r:` the function's return.
    Return,
}

impl Kind {
    /// `p` or `r`.
    pub fn letter(self) -> char {
        match self {
            Kind::Entry => 'p',
            Kind::Return => 'r',
        }
    }
}

/// What differs between the tools' definitions.
pub struct Grammar {
    /// `kprobe` or `uprobe`, for messages.
    pub tool: &'static str,
    /// The whole form, for messages (`{p|r}:[NAME ]FUNC ...`).
    pub form: &'static str,
    /// One valid definition, for messages (`p:do_sys_open`).
    pub example: &'static str,
    /// What LOCATION is called in messages (`function`, `TARGET:SYMBOL`).
    pub location: &'static str,
    /// Splits text into words, each with its byte offset.
    pub words: fn(&str) -> Vec<(usize, &str)>,
    /// Whether a word is a fetch argument rather than a LOCATION.
    pub looks_like_arg: fn(&str) -> bool,
}

/// A definition cut into its parts; LOCATION not yet parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parts<'a> {
    /// Entry or return.
    pub kind: Kind,
    /// The event name the user gave, checked to be a valid one.
    pub name: Option<&'a str>,
    /// LOCATION as given.
    pub location: &'a str,
    /// Fetch arguments, as given.
    pub args: Vec<String>,
    /// The filter after `if`, if any.
    pub filter: Option<String>,
}

/// A parsed definition; `L` is the tool's location (a kernel function, a
/// file and symbol).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition<L> {
    /// Entry or return.
    pub kind: Kind,
    /// The event name the user gave, if any.
    pub name: Option<String>,
    /// Where.
    pub location: L,
    /// Fetch arguments, as given.
    pub args: Vec<String>,
    /// The filter after `if`, if any.
    pub filter: Option<String>,
}

impl Parts<'_> {
    /// The definition, with its location parsed.
    pub fn with<L>(self, location: L) -> Definition<L> {
        Definition {
            kind: self.kind,
            name: self.name.map(str::to_string),
            location,
            args: self.args,
            filter: self.filter,
        }
    }
}

/// A tool's location: how its whole definition parses.
pub trait Location: Sized {
    /// Parses one definition.
    fn parse_definition(text: &str) -> Result<Definition<Self>>;

    /// Whether a positional FILTER is rather a second definition.
    fn looks_like_definition(text: &str) -> bool {
        Self::parse_definition(text).is_ok()
    }
}

/// Cuts a definition into kind, name, location, arguments and filter.
pub fn split<'a>(def: &'a str, g: &Grammar) -> Result<Parts<'a>> {
    let (form, what) = (g.form, g.location);
    if let Some(c) = def.chars().find(|c| c.is_control() && *c != '\t') {
        return Err(Error::usage(format!(
            "the probe definition '{}' contains a control character ({c:?}): a probe must be one line",
            def.escape_debug()
        )));
    }
    let def = def.trim();
    let (kind, rest) = if let Some(r) = def.strip_prefix("p:") {
        (Kind::Entry, r)
    } else if let Some(r) = def.strip_prefix("r:") {
        (Kind::Return, r)
    } else {
        return Err(Error::usage(format!(
            "'{def}' is not a {} definition: it starts with p: (entry) or r: (return), as in {form}, e.g. {}",
            g.tool, g.example
        )));
    };
    if rest.starts_with(char::is_whitespace) {
        return Err(Error::usage(format!(
            "'{def}': nothing may follow {}: but a name or the {what} ({form})",
            kind.letter()
        )));
    }
    let all = (g.words)(rest);
    // A standalone `if` after the first word starts the filter.
    let (ws, filter) = match all.iter().skip(1).position(|(_, w)| *w == "if") {
        Some(p) => {
            let (off, _) = all[p + 1];
            let f = rest[off + 2..].trim();
            if f.is_empty() {
                return Err(Error::usage(format!("'{def}': no filter after 'if'")));
            }
            (&all[..p + 1], Some(f.to_string()))
        }
        None => (&all[..], None),
    };
    let Some(&(_, first)) = ws.first() else {
        return Err(Error::usage(format!("'{def}': no {what} given ({form})")));
    };
    let (name, location, args) = match ws.get(1) {
        Some(&(_, second)) if !(g.looks_like_arg)(second) => (Some(first), second, &ws[2..]),
        _ => (None, first, &ws[1..]),
    };
    if let Some(n) = name {
        if n.contains('/') {
            return Err(Error::usage(format!(
                "event name '{n}': {} puts its events in a group of its own; give a plain NAME",
                g.tool
            )));
        }
        crate::lifecycle::dynevent::check_event_name(n)?;
    }
    let args: Vec<String> = args.iter().map(|(_, w)| w.to_string()).collect();
    crate::probes::argn::check(&args)?;
    Ok(Parts {
        kind,
        name,
        location,
        args,
        filter,
    })
}

/// Splits at whitespace, returning each word with its byte offset.
pub fn words(s: &str) -> Vec<(usize, &str)> {
    grouped_words(s, false)
}

/// Splits at whitespace outside parentheses and angle brackets, so that a
/// demangled C++ name such as `ns::f(int, char)` or
/// `std::vector<int, std::allocator<int> >::push_back(int const&)` is one
/// word. Returns each word with its byte offset.
pub fn words_keeping_groups(s: &str) -> Vec<(usize, &str)> {
    grouped_words(s, true)
}

fn grouped_words(s: &str, groups: bool) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        if c.is_whitespace() && depth == 0 {
            if let Some(st) = start.take() {
                out.push((st, &s[st..i]));
            }
            continue;
        }
        if start.is_none() {
            start = Some(i);
        }
        match c {
            '(' | '<' if groups => depth += 1,
            ')' | '>' if groups => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    if let Some(st) = start {
        out.push((st, &s[st..]));
    }
    out
}

/// Turns text into part of an event name: letters, digits and single `_`.
pub fn sanitize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let c = if c.is_ascii_alphanumeric() { c } else { '_' };
        if c == '_' && (out.is_empty() || out.ends_with('_')) {
            continue;
        }
        out.push(c);
    }
    while out.ends_with('_') {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn plain_arg(w: &str) -> bool {
        w.contains(['=', '%', '$']) || w.starts_with(['+', '-'])
    }

    const G: Grammar = Grammar {
        tool: "test",
        form: "{p|r}:[NAME ]LOC [ARGS]",
        example: "p:loc",
        location: "LOC",
        words,
        looks_like_arg: plain_arg,
    };

    #[test]
    fn the_parts() {
        let p = split("p:loc", &G).unwrap();
        assert_eq!(
            p,
            Parts {
                kind: Kind::Entry,
                name: None,
                location: "loc",
                args: vec![],
                filter: None
            }
        );
        let p = split("  r:n loc %di x=$retval if x > 1 ", &G).unwrap();
        assert_eq!(p.kind, Kind::Return);
        assert_eq!((p.name, p.location), (Some("n"), "loc"));
        assert_eq!(p.args, ["%di", "x=$retval"]);
        assert_eq!(p.filter.as_deref(), Some("x > 1"));
        // The first word is never the start of a filter: a name `if`.
        let p = split("p:if loc", &G).unwrap();
        assert_eq!((p.name, p.location), (Some("if"), "loc"));
    }

    #[test]
    fn refusals_name_the_problem() {
        for (def, why) in [
            ("x:loc", "is not a test definition"),
            ("p: loc", "nothing may follow p: but a name or the LOC"),
            ("p:", "no LOC given"),
            ("p:loc if", "no filter after 'if'"),
            ("p:loc if  ", "no filter after 'if'"),
            ("p:g/n loc", "puts its events in a group of its own"),
            ("p:my-name loc", "my-name"),
            ("p:loc\n-:x", "control character"),
        ] {
            let e = split(def, &G).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{def}");
            assert!(e.to_string().contains(why), "{def}: {e}");
        }
    }

    #[test]
    fn words_and_groups() {
        assert_eq!(words(" a  b\tc"), [(1, "a"), (4, "b"), (6, "c")]);
        assert_eq!(
            words_keeping_groups("p:f(int, char) %di"),
            [(0, "p:f(int, char)"), (15, "%di")]
        );
        // Unbalanced closers do not underflow.
        assert_eq!(words_keeping_groups(") a"), [(0, ")"), (2, "a")]);
    }

    #[test]
    fn sanitized_names() {
        assert_eq!(
            sanitize("/usr/bin/bash:readline+0x4"),
            "usr_bin_bash_readline_0x4"
        );
        assert_eq!(sanitize("__"), "");
    }

    proptest! {
        #[test]
        fn never_panics_and_parts_are_one_line(s in "\\PC{0,60}", keep in any::<bool>()) {
            let g = Grammar { words: if keep { words_keeping_groups } else { words }, ..G };
            if let Ok(p) = split(&s, &g) {
                prop_assert!(!p.location.is_empty());
                prop_assert!(!p.location.contains(['\n', '\r']));
                for a in &p.args {
                    prop_assert!(!a.is_empty() && !a.contains('\n'));
                }
            }
        }
    }
}
