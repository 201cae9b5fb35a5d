//! ftrace-common: the shared engine of ftrace-tools.
//!
//! Layers, each using only those below it (a test checks the imports):
//!
//! ```text
//!   app        the tool frame: CLI, option families, signals, output, streaming
//!    |
//!   probes     kprobe/uprobe definitions, fetch arguments
//!    |
//!   lifecycle  what a run creates and undoes: instance, probes, triggers, top level;
//!              who is tracing (survey)
//!    |
//!   buffer     formats, sub-buffers, the per-CPU reader, stacks
//!    |
//!   kernel     tracefs files, features, config, lockdown, each tool's needs,
//!              error_log, functions, /proc, syscalls
//!    |
//!   sym        symbols: ELF, kallsyms, ld.so.cache, maps
//!    |
//!   base       errors, globs, Flow
//! ```
//!
//! A tool is `tools/<name>/src/lib.rs` (its `main`; `src/main.rs` calls it): options, checks, setup, stream,
//! summary, each a function over these layers (see `docs/adding-a-tool.md`).
#![deny(missing_docs)]

pub mod app;
pub mod base;
pub mod buffer;
pub mod graph;
pub mod kernel;
pub mod lifecycle;
pub mod probes;
pub mod sym;

pub use base::error::{Error, ErrorKind, Result};
pub use base::Flow;

#[cfg(test)]
mod layers {
    /// The layers, lowest first: a module may use its own layer and those
    /// before it.
    const ORDER: [&str; 9] = [
        "base",
        "sym",
        "kernel",
        "buffer",
        "lifecycle",
        "probes",
        "app",
        "graph",
        "lib",
    ];

    fn rank(layer: &str) -> usize {
        ORDER
            .iter()
            .position(|l| *l == layer)
            .unwrap_or_else(|| panic!("no layer {layer}: add it to ORDER"))
    }

    fn files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                files(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }

    #[test]
    fn imports_go_down_the_layers_only() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut all = Vec::new();
        files(&src, &mut all);
        let mut wrong = Vec::new();
        for f in all {
            let rel = f.strip_prefix(&src).unwrap();
            let layer = match rel.components().count() {
                1 => "lib",
                _ => rel
                    .components()
                    .next()
                    .unwrap()
                    .as_os_str()
                    .to_str()
                    .unwrap(),
            };
            let text = std::fs::read_to_string(&f).unwrap();
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                for (i, _) in code.match_indices("crate::") {
                    let before = code[..i].chars().next_back();
                    if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                        continue;
                    }
                    let used: String = code[i + 7..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    // Crate-root items (Error, Result, Flow) are base's.
                    let used =
                        if used.is_empty() || used.starts_with(|c: char| c.is_ascii_uppercase()) {
                            "base".to_string()
                        } else {
                            used
                        };
                    if rank(&used) > rank(layer) {
                        wrong.push(format!("{}:{}: {layer} uses {used}", rel.display(), n + 1));
                    }
                }
            }
        }
        assert!(
            wrong.is_empty(),
            "imports against the layers:\n{}",
            wrong.join("\n")
        );
    }
}
