//! Demangling of C++ (Itanium ABI) and Rust (legacy and v0) symbol names.
//!
//! Listing shows one readable form per symbol; matching a name the user typed
//! accepts several: the full form, and a short form without the Rust hash
//! (`mycrate::module::func`) or without the C++ parameter list
//! (`ns::Class::method`).

/// The demangled forms of one symbol name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Demangled {
    /// The form shown in listings: Rust without its hash, C++ with its
    /// parameter list (`ns::Class::method(int) const`).
    pub display: String,
    /// The forms a user may type to mean this symbol (whitespace is ignored
    /// when comparing).
    pub forms: Vec<String>,
    /// Which language's mangling this was.
    pub language: Language,
}

/// The language a mangled name comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    /// Itanium C++ ABI (`_Z...`).
    Cpp,
    /// Rust, legacy (`_ZN...17h<hash>E`) or v0 (`_R...`).
    Rust,
}

/// Demangles `name`, or returns `None` when it is not a mangled C++ or Rust
/// name (plain C names, garbage). Never panics.
pub fn demangle(name: &str) -> Option<Demangled> {
    if !(name.starts_with("_Z") || name.starts_with("__Z") || name.starts_with("_R")) {
        return None;
    }
    if let Some(d) = demangle_rust(name) {
        return Some(d);
    }
    demangle_cpp(name)
}

fn demangle_rust(name: &str) -> Option<Demangled> {
    let sym = rustc_demangle::try_demangle(name).ok()?;
    let full = format!("{sym}");
    let short = format!("{sym:#}");
    // A C++ name without parameters (`_ZN2ns3varE`) also parses as legacy
    // Rust; only a hash or the v0 prefix makes it really Rust. Either way
    // the text is the same `ns::var`, so fall through to C++ for the rest.
    let is_rust = name.starts_with("_R") || full != short;
    if !is_rust {
        return None;
    }
    let mut forms = vec![full];
    if forms[0] != short {
        forms.push(short.clone());
    }
    Some(Demangled {
        display: short,
        forms,
        language: Language::Rust,
    })
}

fn demangle_cpp(name: &str) -> Option<Demangled> {
    // cpp_demangle has been fuzzed, but a panic here would take a whole
    // listing down over one odd name; treat one as "not mangled".
    let name = name.to_string();
    std::panic::catch_unwind(move || {
        let parse = cpp_demangle::ParseOptions::default().recursion_limit(256);
        let sym = cpp_demangle::Symbol::new_with_options(name.as_bytes(), &parse).ok()?;
        let opts = cpp_demangle::DemangleOptions::new()
            .no_return_type()
            .recursion_limit(256);
        let full = sym.demangle(&opts).ok()?;
        let short = sym.demangle(&opts.no_params()).ok()?;
        let mut forms = vec![full.clone()];
        if short != full {
            forms.push(short);
        }
        Some(Demangled {
            display: full,
            forms,
            language: Language::Cpp,
        })
    })
    .ok()
    .flatten()
}

/// Compares a user's query with a demangled form, ignoring whitespace
/// (`ns::f(int,char)` equals `ns::f(int, char)`).
pub(crate) fn same_ignoring_space(a: &str, b: &str) -> bool {
    let mut x = a.chars().filter(|c| !c.is_whitespace());
    let mut y = b.chars().filter(|c| !c.is_whitespace());
    loop {
        match (x.next(), y.next()) {
            (None, None) => return true,
            (Some(p), Some(q)) if p == q => {}
            _ => return false,
        }
    }
}

/// The last plain identifier of a query (`method` in `ns::Class::method(int)`),
/// which appears verbatim in the mangled name; `None` when the query ends in
/// something that mangling rewrites (operators, closures, non-ASCII).
pub(crate) fn last_identifier(query: &str) -> Option<String> {
    // Keep what is outside template arguments, up to the parameter list.
    let mut outer = String::new();
    let mut depth = 0usize;
    for c in query.chars() {
        match c {
            '<' => depth += 1,
            '>' => depth = depth.saturating_sub(1),
            '(' if depth == 0 => break,
            _ if depth == 0 => outer.push(c),
            _ => {}
        }
    }
    let last = outer.rsplit("::").next().unwrap_or("").trim();
    if last.is_empty()
        || last.starts_with("operator")
        || !last.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return None;
    }
    Some(last.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpp_names() {
        let d = demangle("_ZN2ns5Class6methodEi").unwrap();
        assert_eq!(d.language, Language::Cpp);
        assert_eq!(d.display, "ns::Class::method(int)");
        assert_eq!(d.forms, vec!["ns::Class::method(int)", "ns::Class::method"]);
        let d = demangle("_ZNK2ns5Class3getEv").unwrap();
        assert_eq!(d.display, "ns::Class::get() const");
        assert!(d.forms.contains(&"ns::Class::get".to_string()));
        // A variable-like name with no parameters parses as both languages.
        let d = demangle("_ZN2ns3varE").unwrap();
        assert_eq!(d.display, "ns::var");
    }

    #[test]
    fn rust_names() {
        let d = demangle("_ZN4core3fmt5write17h0123456789abcdefE").unwrap();
        assert_eq!(d.language, Language::Rust);
        assert_eq!(d.display, "core::fmt::write");
        assert_eq!(d.forms[0], "core::fmt::write::h0123456789abcdef");
        let d = demangle("_RNvCs1234_7mycrate4main").unwrap();
        assert_eq!(d.language, Language::Rust);
        assert_eq!(d.display, "mycrate::main");
    }

    #[test]
    fn plain_and_garbage_names() {
        assert_eq!(demangle("malloc"), None);
        assert_eq!(demangle("_Z"), None);
        assert_eq!(demangle("_ZZZZZZZZ"), None);
        assert_eq!(demangle("_R"), None);
        for s in ["_ZN", "_Z1", "_ZNSt", "_RNv", "_Z3fooIiEvT_S0_S0_S0_S0_"] {
            let _ = demangle(s);
        }
    }

    #[test]
    fn query_helpers() {
        assert!(same_ignoring_space("ns::f(int,char)", "ns::f(int, char)"));
        assert!(!same_ignoring_space("ns::f", "ns::g"));
        let id = |q: &str| last_identifier(q);
        assert_eq!(id("ns::Class::method(int)").as_deref(), Some("method"));
        assert_eq!(id("a::b<T>::c").as_deref(), Some("c"));
        assert_eq!(id("a::f<std::vector<int>>(int)").as_deref(), Some("f"));
        assert_eq!(id("my::func").as_deref(), Some("func"));
        assert_eq!(last_identifier("ns::operator+"), None);
        assert_eq!(last_identifier("f::{{closure}}"), None);
    }
}
