//! Kernel symbols from `/proc/kallsyms`, for kernel stack traces.
//!
//! The table has no sizes: an address belongs to the nearest text symbol at
//! or below it, within [`MAX_FUNCTION_SIZE`]. Names live in one string arena
//! (the table has ~200 000 entries), sorted by address for binary search.

use std::path::Path;

use crate::base::error::{Error, ErrorKind, Result};

/// Farther than this past a symbol, an address is not taken to be in it.
pub const MAX_FUNCTION_SIZE: u64 = 1 << 20;

#[derive(Debug, Clone, Copy)]
struct Entry {
    addr: u64,
    name_start: u32,
    name_len: u32,
    /// Index into `modules` plus one; 0 for the core kernel.
    module: u32,
}

/// The kernel's text symbols, sorted by address.
#[derive(Debug, Default)]
pub struct KernelSymbols {
    entries: Vec<Entry>,
    names: String,
    modules: Vec<String>,
}

/// Where a kernel address is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelLocation<'a> {
    /// The function.
    pub function: &'a str,
    /// Bytes into it.
    pub offset: u64,
    /// The module (`ext4`), or `None` for the core kernel.
    pub module: Option<&'a str>,
}

impl std::fmt::Display for KernelLocation<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}+{:#x}", self.function, self.offset)?;
        if let Some(m) = self.module {
            write!(f, " [{m}]")?;
        }
        Ok(())
    }
}

impl KernelSymbols {
    /// Reads `/proc/kallsyms`. Fails when the addresses are hidden (they
    /// read as zero unless root: `kernel.kptr_restrict`).
    pub fn load() -> Result<KernelSymbols> {
        KernelSymbols::load_from(Path::new("/proc/kallsyms"))
    }

    /// Reads a kallsyms-format file.
    pub fn load_from(path: &Path) -> Result<KernelSymbols> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("cannot read", path, e))?;
        let syms = KernelSymbols::parse(&text);
        if syms.entries.is_empty() {
            return Err(Error::new(
                ErrorKind::Permission,
                format!(
                    "kernel symbol addresses in {} are hidden (they read as zero); run as root, or lower kernel.kptr_restrict, to symbolize kernel stacks.",
                    path.display()
                ),
            ));
        }
        Ok(syms)
    }

    /// Parses kallsyms text (`ffffffff81000000 T _stext`, with
    /// `\t[module]` after module symbols). Keeps text symbols with nonzero
    /// addresses; ignores malformed lines.
    pub fn parse(text: &str) -> KernelSymbols {
        let mut s = KernelSymbols::default();
        let mut last_module: Option<(String, u32)> = None;
        for line in text.lines() {
            let mut it = line.split_ascii_whitespace();
            let (Some(addr), Some(ty), Some(name)) = (it.next(), it.next(), it.next()) else {
                continue;
            };
            if !matches!(ty, "t" | "T" | "w" | "W") {
                continue;
            }
            let Ok(addr) = u64::from_str_radix(addr, 16) else {
                continue;
            };
            if addr == 0 {
                continue;
            }
            let module = match it.next() {
                Some(m) if m.starts_with('[') && m.ends_with(']') && m.len() > 2 => {
                    let m = &m[1..m.len() - 1];
                    match &last_module {
                        Some((name, idx)) if name == m => *idx,
                        _ => {
                            let idx = match s.modules.iter().position(|x| x == m) {
                                Some(i) => i as u32 + 1,
                                None => {
                                    s.modules.push(m.to_string());
                                    s.modules.len() as u32
                                }
                            };
                            last_module = Some((m.to_string(), idx));
                            idx
                        }
                    }
                }
                _ => 0,
            };
            let (Ok(name_start), Ok(name_len)) =
                (u32::try_from(s.names.len()), u32::try_from(name.len()))
            else {
                break;
            };
            s.names.push_str(name);
            s.entries.push(Entry {
                addr,
                name_start,
                name_len,
                module,
            });
        }
        s.entries.sort_by_key(|e| e.addr);
        s
    }

    /// The symbols' names, in address order (a module's without it).
    pub fn names(&self) -> impl Iterator<Item = &str> + '_ {
        self.entries.iter().filter_map(|e| {
            self.names
                .get(e.name_start as usize..(e.name_start + e.name_len) as usize)
        })
    }

    /// Number of symbols.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The function containing `addr`, if any.
    pub fn lookup(&self, addr: u64) -> Option<KernelLocation<'_>> {
        let i = self.entries.partition_point(|e| e.addr <= addr);
        let e = self.entries.get(i.checked_sub(1)?)?;
        let offset = addr - e.addr;
        if offset >= MAX_FUNCTION_SIZE {
            return None;
        }
        let name = self
            .names
            .get(e.name_start as usize..(e.name_start + e.name_len) as usize)?;
        let module = match e.module {
            0 => None,
            m => self.modules.get(m as usize - 1).map(String::as_str),
        };
        Some(KernelLocation {
            function: name,
            offset,
            module,
        })
    }

    /// Every name of the function containing `addr`: the symbols that
    /// start at its address (the compiler may give one function several
    /// names, and the kernel's lists may use any of them).
    pub fn aliases(&self, addr: u64) -> Vec<&str> {
        let i = self.entries.partition_point(|e| e.addr <= addr);
        let Some(start) = i.checked_sub(1).and_then(|j| self.entries.get(j)) else {
            return Vec::new();
        };
        let first = self.entries.partition_point(|e| e.addr < start.addr);
        self.entries[first..i]
            .iter()
            .filter_map(|e| {
                self.names
                    .get(e.name_start as usize..(e.name_start + e.name_len) as usize)
            })
            .collect()
    }

    /// The size of the function that contains `addr`, as the kernel's own
    /// `%pS` shows it (`func+0x1a/0x170`): the distance from the function's
    /// start to the next symbol at a higher address. `None` when `addr` is
    /// in no known function, or in the last one.
    pub fn function_size(&self, addr: u64) -> Option<u64> {
        self.lookup(addr)?;
        let i = self.entries.partition_point(|e| e.addr <= addr);
        let start = self.entries.get(i.checked_sub(1)?)?.addr;
        let next = self.entries.get(i)?.addr;
        Some(next - start)
    }

    /// `func+0x1a`, `func+0x1a [module]`, or `0xffffffff...` if unknown.
    pub fn symbolize(&self, addr: u64) -> String {
        match self.lookup(addr) {
            Some(l) => l.to_string(),
            None => format!("{addr:#x}"),
        }
    }
}

/// Kernel symbols as event lines print them, loaded when first needed (or
/// in a thread started early, since reading and sorting kallsyms takes
/// tens of milliseconds, seconds in a slow VM) and cached per address: a
/// probe's address repeats on every event.
pub struct KernelSyms {
    loading: Option<std::thread::JoinHandle<KernelSymbols>>,
    table: Option<KernelSymbols>,
    /// Text per address and style (0: `%ps`, 1: `%pS`, 2: `%ps` with the
    /// module).
    cache: std::collections::HashMap<(u64, u8), String>,
}

impl Default for KernelSyms {
    fn default() -> KernelSyms {
        KernelSyms::on_demand()
    }
}

impl KernelSyms {
    /// Loads `/proc/kallsyms` at the first lookup.
    pub fn on_demand() -> KernelSyms {
        KernelSyms {
            loading: None,
            table: None,
            cache: std::collections::HashMap::new(),
        }
    }

    /// Over a table already loaded (a trace.dat file's kallsyms).
    pub fn from_table(table: KernelSymbols) -> KernelSyms {
        KernelSyms {
            table: Some(table),
            ..KernelSyms::on_demand()
        }
    }

    /// Starts loading `/proc/kallsyms` in a thread now.
    pub fn in_background() -> KernelSyms {
        KernelSyms {
            loading: Some(std::thread::spawn(|| {
                KernelSymbols::load().unwrap_or_else(|_| KernelSymbols::parse(""))
            })),
            ..KernelSyms::on_demand()
        }
    }

    /// The table (waiting for the loading thread, or loading it now).
    pub fn table(&mut self) -> &KernelSymbols {
        if let Some(h) = self.loading.take() {
            if let Ok(k) = h.join() {
                self.table = Some(k);
            }
        }
        self.table.get_or_insert_with(|| {
            KernelSymbols::load().unwrap_or_else(|_| KernelSymbols::parse(""))
        })
    }

    /// The address as the kernel's `%pS` prints it (`func+0x1a/0x170
    /// [mod]`), or `%ps` without `with_offset` (`func`); `0x...` if unknown.
    pub fn get(&mut self, addr: u64, with_offset: bool) -> &str {
        self.cached(addr, with_offset as u8)
    }

    /// The address as the kernel's `%ps` prints it in an event's text:
    /// `func [mod]` (the module kept, unlike [`KernelSyms::get`]'s).
    pub fn get_no_offset(&mut self, addr: u64) -> &str {
        self.cached(addr, 2)
    }

    fn cached(&mut self, addr: u64, style: u8) -> &str {
        if self.cache.len() > 100_000 {
            self.cache.clear();
        }
        self.table();
        let k = self.table.as_ref().expect("loaded above");
        self.cache.entry((addr, style)).or_insert_with(|| {
            let Some(l) = k.lookup(addr) else {
                return format!("0x{addr:x}");
            };
            let mut s = l.function.to_string();
            if style == 1 {
                s.push_str(&format!("+{:#x}", l.offset));
                if let Some(size) = k.function_size(addr) {
                    s.push_str(&format!("/{size:#x}"));
                }
            }
            if let (Some(m), 1 | 2) = (l.module, style) {
                s.push_str(&format!(" [{m}]"));
            }
            s
        })
    }

    /// `func+0x1a` (stack frames, JSON).
    pub fn short(&mut self, addr: u64) -> String {
        self.table().symbolize(addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_are_the_names_at_one_address() {
        let k = KernelSymbols::parse(
            "ffffffff81000000 T a\nffffffff81000100 T __x64_sys_getppid\nffffffff81000100 t __do_sys_getppid\nffffffff81000200 T b\n",
        );
        let mut got = k.aliases(0xffffffff81000104);
        got.sort();
        assert_eq!(got, ["__do_sys_getppid", "__x64_sys_getppid"]);
        assert_eq!(k.aliases(0xffffffff81000004), ["a"]);
        assert!(k.aliases(0x10).is_empty());
    }

    #[test]
    fn cached_lookups_print_like_the_kernel() {
        let mut k = KernelSyms::on_demand();
        k.table = Some(KernelSymbols::parse(SAMPLE));
        assert_eq!(
            k.get(0xffffffff81001010, true),
            "do_one_initcall+0x10/0x1000"
        );
        assert_eq!(k.get(0xffffffff81001010, false), "do_one_initcall");
        assert_eq!(k.get_no_offset(0xffffffffc0a00210), "ext4_read [ext4]");
        assert_eq!(k.get(0xffffffffc0a00210, false), "ext4_read");
        assert_eq!(
            k.get(0xffffffffc0a00210, true),
            "ext4_read+0x10/0xffe00 [ext4]"
        );
        assert_eq!(k.get(0x10, true), "0x10");
        assert_eq!(k.short(0xffffffff81001010), "do_one_initcall+0x10");
    }

    const SAMPLE: &str = "\
ffffffff81000000 T _stext
ffffffff81001000 t do_one_initcall
ffffffff81000500 T startup_64_late
ffffffff82000000 D some_data
ffffffff81002000 W weak_func
0000000000000000 A fixed_percpu_data
ffffffffc0a00000 t ext4_fill_super\t[ext4]
ffffffffc0a00200 T ext4_read\t[ext4]
ffffffffc0b00000 t xfs_init\t[xfs]
bad line
";

    #[test]
    fn lookups() {
        let k = KernelSymbols::parse(SAMPLE);
        assert_eq!(k.len(), 7);
        assert_eq!(k.names().count(), 7);
        assert_eq!(k.names().next(), Some("_stext"));
        assert!(k.names().any(|n| n == "ext4_read"));
        assert_eq!(k.symbolize(0xffffffff81000000), "_stext+0x0");
        assert_eq!(k.symbolize(0xffffffff81000510), "startup_64_late+0x10");
        assert_eq!(k.symbolize(0xffffffff81001abc), "do_one_initcall+0xabc");
        assert_eq!(k.symbolize(0xffffffff81002001), "weak_func+0x1");
        assert_eq!(k.symbolize(0xffffffffc0a00210), "ext4_read+0x10 [ext4]");
        assert_eq!(k.symbolize(0xffffffffc0b00004), "xfs_init+0x4 [xfs]");
        assert_eq!(k.symbolize(0x1000), "0x1000");
        assert_eq!(
            k.symbolize(0xffffffffc0b00000 + MAX_FUNCTION_SIZE),
            "0xffffffffc0c00000"
        );
    }

    #[test]
    fn function_sizes_come_from_the_next_symbol() {
        let k = KernelSymbols::parse(SAMPLE);
        assert_eq!(k.function_size(0xffffffff81000000), Some(0x500));
        assert_eq!(k.function_size(0xffffffff81000510), Some(0xb00));
        assert_eq!(k.function_size(0xffffffffc0a00210), Some(0xffe00));
        assert_eq!(k.function_size(0xffffffffc0b00004), None);
        assert_eq!(k.function_size(0x1000), None);
    }

    #[test]
    fn hidden_addresses() {
        let k = KernelSymbols::parse("0000000000000000 T _stext\n0000000000000000 t foo\n");
        assert!(k.is_empty());
    }

    #[test]
    fn this_kernel() {
        let started = std::time::Instant::now();
        match KernelSymbols::load() {
            Ok(k) => {
                eprintln!(
                    "{} kernel symbols loaded in {:?}",
                    k.len(),
                    started.elapsed()
                );
                let text = std::fs::read_to_string("/proc/kallsyms").unwrap();
                let line = text
                    .lines()
                    .find(|l| l.ends_with(" T vfs_read") || l.ends_with(" T schedule"))
                    .expect("vfs_read or schedule in kallsyms");
                let addr = u64::from_str_radix(line.split(' ').next().unwrap(), 16).unwrap();
                let name = line.rsplit(' ').next().unwrap();
                assert_eq!(k.symbolize(addr + 3), format!("{name}+0x3"));
            }
            Err(e) => eprintln!("skipping: {e}"),
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in "([0-9a-f]{1,16} [tTwWdD] [a-z_]{0,8}(\t\\[[a-z]{0,4}\\]?)?\n){0,20}", addr in proptest::num::u64::ANY) {
            let k = KernelSymbols::parse(&text);
            let _ = k.symbolize(addr);
            let _ = k.function_size(addr);
        }
    }
}
