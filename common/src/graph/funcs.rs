//! Function addresses from the records, numbered and named once each
//! (from `/proc/kallsyms`), with what the graph needs to know about them.

use crate::graph::fast::FastMap;
use crate::graph::tree::{Flags, FuncFlags, FuncId};
use crate::sym::kallsyms::KernelSymbols;
use std::collections::HashSet;

/// The functions seen so far.
pub struct Funcs {
    syms: KernelSymbols,
    ids: FastMap<u64, FuncId>,
    names: Vec<String>,
    flags: Vec<FuncFlags>,
    roots: HashSet<String>,
    /// Every function is a root (a file read with no function given).
    every_root: bool,
    excluded: HashSet<String>,
}

impl Funcs {
    /// A table over `syms`; `roots` and `excluded` are plain function
    /// names (as in `available_filter_functions`).
    pub fn new(syms: KernelSymbols, roots: HashSet<String>, excluded: HashSet<String>) -> Funcs {
        Funcs {
            syms,
            ids: FastMap::default(),
            names: Vec::new(),
            flags: Vec::new(),
            roots,
            every_root: false,
            excluded,
        }
    }

    /// Every function a root: each call at the outermost level of a
    /// task's records starts a graph.
    pub fn every_root(mut self) -> Funcs {
        self.every_root = true;
        self
    }

    /// The number of the function at `addr`.
    pub fn id(&mut self, addr: u64) -> FuncId {
        if let Some(&id) = self.ids.get(&addr) {
            return id;
        }
        let (name, shown) = match self.syms.lookup(addr) {
            Some(l) => (
                l.function.to_string(),
                match l.module {
                    Some(m) => format!("{} [{m}]", l.function),
                    None => l.function.to_string(),
                },
            ),
            None => (String::new(), format!("{addr:#x}")),
        };
        let flags = FuncFlags {
            root: self.every_root || self.roots.contains(&name),
            excluded: self.excluded.contains(&name),
        };
        let id = self.names.len() as FuncId;
        self.names.push(shown);
        self.flags.push(flags);
        self.ids.insert(addr, id);
        id
    }

    /// The name of a function as the kernel prints it.
    pub fn name(&self, id: FuncId) -> &str {
        self.names
            .get(id as usize)
            .map(String::as_str)
            .unwrap_or("?")
    }
}

impl Flags for Funcs {
    fn flags(&self, f: FuncId) -> FuncFlags {
        self.flags.get(f as usize).copied().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_get_names_and_flags() {
        let syms = KernelSymbols::parse(
            "ffffffff81000000 T do_sys_openat2\nffffffff81000100 t getname\nffffffffc0000000 t ovl_permission\t[overlay]\n",
        );
        let mut f = Funcs::new(
            syms,
            ["do_sys_openat2".to_string()].into(),
            ["getname".to_string()].into(),
        );
        let a = f.id(0xffffffff81000004);
        let b = f.id(0xffffffff81000100);
        let c = f.id(0xffffffffc0000000);
        let d = f.id(0x10);
        assert_eq!(f.id(0xffffffff81000004), a);
        assert_eq!(f.name(a), "do_sys_openat2");
        assert!(f.flags(a).root && !f.flags(a).excluded);
        assert!(f.flags(b).excluded);
        assert_eq!(f.name(c), "ovl_permission [overlay]");
        assert_eq!(f.name(d), "0x10");
        assert_eq!(f.flags(d), FuncFlags::default());
        let mut all = Funcs::new(
            KernelSymbols::parse("ffffffff81000100 t getname\n"),
            HashSet::new(),
            ["getname".to_string()].into(),
        )
        .every_root();
        let g = all.id(0xffffffff81000100);
        let h = all.id(0x10);
        assert!(all.flags(g).root && all.flags(g).excluded);
        assert!(all.flags(h).root);
    }
}
