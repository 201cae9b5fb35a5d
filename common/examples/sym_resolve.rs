//! Resolves uprobe targets the way `uprobe` does, and times it.
//!
//! ```text
//! cargo run --release -p ftrace-common --example sym_resolve -- libc:malloc [-p PID] [-l GLOB]
//! ```
//! prints `p:PATH:0xOFFSET` and, on stderr, how long each step took. Used
//! for the start-up figures (resolving must fit in the 5 ms budget).

use std::time::Instant;

use ftrace_common::base::glob::Glob;
use ftrace_common::sym::elf::ElfFile;
use ftrace_common::sym::target::resolve_target;

fn main() {
    let start = Instant::now();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut pid = None;
    let mut list = None;
    let mut spec = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-p" => pid = it.next().and_then(|p| p.parse().ok()),
            "-l" => list = Some(it.next().cloned().unwrap_or_else(|| "*".into())),
            _ => spec = Some(a.clone()),
        }
    }
    let Some(spec) = spec else {
        eprintln!("usage: sym_resolve TARGET[:SYMBOL] [-p PID] [-l GLOB]");
        std::process::exit(2);
    };
    let (target, symbol) = spec.split_once(':').unwrap_or((spec.as_str(), ""));
    let result = (|| -> ftrace_common::Result<()> {
        let t = resolve_target(target, pid)?;
        let t_target = start.elapsed();
        let elf = ElfFile::open(&t.path)?.with_name(&t.display_path);
        let t_open = start.elapsed();
        if let Some(g) = list {
            let g = Glob::new(&g)?;
            for f in elf.functions(Some(&g)) {
                println!("{}", f.display_name());
            }
            return Ok(());
        }
        let r = elf.resolve(symbol, false)?;
        let t_resolve = start.elapsed();
        println!("p:{}:{:#x}", t.path.display(), r.offset);
        eprintln!(
            "target {:?}, open {:?}, resolve {:?} (from main)",
            t_target, t_open, t_resolve
        );
        Ok(())
    })();
    if let Err(e) = result {
        eprintln!("sym_resolve: {e}");
        std::process::exit(e.exit_code());
    }
}
