//! ELF files: function symbols, and the file offsets that uprobes need.
//!
//! A uprobe is placed at a *file offset* (`p:/lib/libc.so.6:0x9f1c0`), while
//! symbols and disassemblers speak of *virtual addresses* in the file's own
//! address space. The two differ by the placement of the `PT_LOAD` segment
//! holding the code: `offset = vaddr - p_vaddr + p_offset`. This is right for
//! position-independent executables, classic non-PIE executables (based at
//! 0x400000) and shared objects alike.
//!
//! Symbols come from `.symtab` (all functions, when not stripped) and
//! `.dynsym` (the exported ones, always present in a dynamically linked
//! file), merged; and, for a stripped file whose debug symbols are installed
//! under `/usr/lib/debug/.build-id/`, from that debug file's `.symtab`.
//! Versioned names (`memcpy@@GLIBC_2.14`, `memcpy@GLIBC_2.2.5`) are split
//! into a base name and a version, and a bare name picks the default (`@@`)
//! version as the dynamic linker does.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use object::elf;
use object::read::elf::{FileHeader, ProgramHeader, SectionHeader, Sym};
use object::{Endianness, ReadRef};

use super::demangle::{self, Demangled};
use super::reader::FileReader;
use super::suggest;
use crate::base::error::{Error, Result};
use crate::base::glob::Glob;

/// What kind of code a symbol names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SymbolKind {
    /// A function (`STT_FUNC`).
    Function,
    /// A GNU indirect function (`STT_GNU_IFUNC`): the address is a resolver
    /// that picks the real implementation once, at load time.
    Ifunc,
    /// A label without a type (`STT_NOTYPE`), as assembly code often has.
    Other,
}

/// How far a symbol is visible.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Binding {
    /// Exported (`STB_GLOBAL`, `STB_GNU_UNIQUE`).
    Global,
    /// Exported, may be overridden (`STB_WEAK`).
    Weak,
    /// Private to the file (`static` functions): only in `.symtab`.
    Local,
}

/// Which table a symbol was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SymbolTable {
    /// `.symtab` of the file itself.
    Symtab,
    /// `.dynsym`, the dynamic symbol table.
    Dynsym,
    /// `.symtab` of a separate debug file found by build ID.
    Debug,
}

/// A code symbol of an ELF file.
#[derive(Debug)]
pub struct Symbol {
    /// The name without any version (`memcpy`), still mangled for C++/Rust.
    pub name: String,
    /// The symbol version (`GLIBC_2.14`), if the symbol has one. Shared
    /// among the symbols of one version.
    pub version: Option<Arc<str>>,
    /// Whether this is the version a plain reference binds to: true for
    /// `name@@VERSION` and for unversioned symbols.
    pub default_version: bool,
    /// The address in the file's own address space (as `objdump` shows it).
    pub vaddr: u64,
    /// Size in bytes; 0 when unknown.
    pub size: u64,
    /// Function, IFUNC or untyped label.
    pub kind: SymbolKind,
    /// Global, weak or local.
    pub binding: Binding,
    /// Where the symbol was found.
    pub table: SymbolTable,
    demangled: OnceLock<Option<Demangled>>,
}

impl Symbol {
    fn new(name: String, vaddr: u64, size: u64, kind: SymbolKind) -> Symbol {
        Symbol {
            name,
            version: None,
            default_version: true,
            vaddr,
            size,
            kind,
            binding: Binding::Global,
            table: SymbolTable::Symtab,
            demangled: OnceLock::new(),
        }
    }

    /// The demangled name (C++ with parameters, Rust without its hash), or
    /// `None` for plain C names. Computed on first use.
    pub fn demangled(&self) -> Option<&str> {
        self.demangled_forms().map(|d| d.display.as_str())
    }

    fn demangled_forms(&self) -> Option<&Demangled> {
        self.demangled
            .get_or_init(|| demangle::demangle(&self.name))
            .as_ref()
    }

    /// The name to show a person: demangled if mangled, and with
    /// `@VERSION` when this is not the default version.
    pub fn display_name(&self) -> String {
        let base = self.demangled().unwrap_or(&self.name);
        match (&self.version, self.default_version) {
            (Some(v), false) => format!("{base}@{v}"),
            _ => base.to_string(),
        }
    }

    /// The raw name with its version as the ELF tools print it
    /// (`memcpy@@GLIBC_2.14`, `memcpy@GLIBC_2.2.5`, `malloc`).
    pub fn versioned_name(&self) -> String {
        match (&self.version, self.default_version) {
            (Some(v), true) => format!("{}@@{v}", self.name),
            (Some(v), false) => format!("{}@{v}", self.name),
            (None, _) => self.name.clone(),
        }
    }

    fn is_code(&self) -> bool {
        matches!(self.kind, SymbolKind::Function | SymbolKind::Ifunc)
    }

    /// Preference among aliases at one address: functions before labels,
    /// global before weak before local, default versions, fewer leading
    /// underscores, shorter names.
    fn rank(&self) -> impl Ord {
        (
            !self.is_code(),
            self.binding,
            !self.default_version,
            self.name.bytes().take_while(|&b| b == b'_').count(),
            self.name.len(),
        )
    }
}

/// A loadable segment (`PT_LOAD`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Virtual address of the segment's start.
    pub vaddr: u64,
    /// Size in memory.
    pub memsz: u64,
    /// File offset of the segment's start.
    pub offset: u64,
    /// Size in the file (the rest of `memsz` is zero-filled, like `.bss`).
    pub filesz: u64,
    /// Whether the segment is executable (`PF_X`).
    pub executable: bool,
}

impl Segment {
    fn file_vaddr_range(&self) -> std::ops::Range<u64> {
        self.vaddr..self.vaddr.saturating_add(self.filesz.min(self.memsz))
    }
}

/// The identity of an ELF file, from its first 64 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElfHeader {
    /// 64-bit (`ELFCLASS64`) or 32-bit.
    pub class64: bool,
    /// Little-endian data.
    pub little_endian: bool,
    /// `e_machine` (62 = x86-64, 3 = i386, 183 = AArch64...).
    pub machine: u16,
    /// `e_type`: 1 relocatable, 2 executable, 3 shared object or PIE, 4 core.
    pub file_type: u16,
}

/// How an ELF file's architecture relates to this machine's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchMatch {
    /// Same class and machine as this program.
    Native,
    /// Runs here in a compatibility mode the kernel can probe (i386 or x32
    /// on x86-64, 32-bit ARM on AArch64).
    Compat,
    /// Cannot run on this machine.
    Foreign,
}

/// `e_machine` of the architecture this program was built for.
pub(crate) const NATIVE_MACHINE: u16 = if cfg!(target_arch = "x86_64") {
    elf::EM_X86_64
} else if cfg!(target_arch = "x86") {
    elf::EM_386
} else if cfg!(target_arch = "aarch64") {
    elf::EM_AARCH64
} else if cfg!(target_arch = "arm") {
    elf::EM_ARM
} else if cfg!(target_arch = "riscv64") || cfg!(target_arch = "riscv32") {
    elf::EM_RISCV
} else if cfg!(target_arch = "powerpc64") {
    elf::EM_PPC64
} else if cfg!(target_arch = "powerpc") {
    elf::EM_PPC
} else if cfg!(target_arch = "s390x") {
    elf::EM_S390
} else if cfg!(target_arch = "loongarch64") {
    elf::EM_LOONGARCH
} else if cfg!(target_arch = "mips") || cfg!(target_arch = "mips64") {
    elf::EM_MIPS
} else {
    elf::EM_NONE
};

pub(crate) const NATIVE_CLASS64: bool = cfg!(target_pointer_width = "64");

impl ElfHeader {
    /// Reads the identity of an ELF file from its first bytes; `None` if
    /// they are not an ELF header.
    pub fn parse(bytes: &[u8]) -> Option<ElfHeader> {
        if bytes.len() < 20 || &bytes[..4] != b"\x7fELF" {
            return None;
        }
        let class64 = match bytes[4] {
            1 => false,
            2 => true,
            _ => return None,
        };
        let little_endian = match bytes[5] {
            1 => true,
            2 => false,
            _ => return None,
        };
        let u16_at = |i: usize| {
            let b = [bytes[i], bytes[i + 1]];
            if little_endian {
                u16::from_le_bytes(b)
            } else {
                u16::from_be_bytes(b)
            }
        };
        Some(ElfHeader {
            class64,
            little_endian,
            file_type: u16_at(16),
            machine: u16_at(18),
        })
    }

    /// Reads the header of the file at `path`. `Ok(None)` when the file is
    /// not ELF (a script, a linker script, data).
    pub fn read(path: &Path) -> Result<Option<ElfHeader>> {
        use std::io::Read;
        let mut f = File::open(path).map_err(|e| Error::io("cannot open", path, e))?;
        let mut buf = [0u8; 64];
        let mut n = 0;
        while n < buf.len() {
            match f.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io("cannot read", path, e)),
            }
        }
        Ok(ElfHeader::parse(&buf[..n]))
    }

    /// Whether this file can run (and so be probed) on this machine.
    pub fn arch_match(&self) -> ArchMatch {
        if self.machine == NATIVE_MACHINE && self.class64 == NATIVE_CLASS64 {
            return ArchMatch::Native;
        }
        let compat = match NATIVE_MACHINE {
            elf::EM_X86_64 => {
                self.machine == elf::EM_386 || (self.machine == elf::EM_X86_64 && !self.class64)
            }
            elf::EM_AARCH64 => self.machine == elf::EM_ARM,
            elf::EM_PPC64 => self.machine == elf::EM_PPC,
            elf::EM_S390 => !self.class64 && self.machine == elf::EM_S390,
            _ => false,
        };
        if compat {
            ArchMatch::Compat
        } else {
            ArchMatch::Foreign
        }
    }

    /// A short name of the architecture, for messages (`x86-64`, `i386`).
    pub fn arch_name(&self) -> String {
        machine_name(self.machine, self.class64)
    }
}

/// A short name of an ELF machine, for messages.
pub(crate) fn machine_name(machine: u16, class64: bool) -> String {
    let name = match (machine, class64) {
        (elf::EM_X86_64, true) => "x86-64",
        (elf::EM_X86_64, false) => "x32",
        (elf::EM_386, _) => "i386",
        (elf::EM_AARCH64, _) => "AArch64",
        (elf::EM_ARM, _) => "32-bit ARM",
        (elf::EM_RISCV, true) => "RISC-V 64",
        (elf::EM_RISCV, false) => "RISC-V 32",
        (elf::EM_PPC64, _) => "PowerPC64",
        (elf::EM_PPC, _) => "PowerPC",
        (elf::EM_S390, true) => "s390x",
        (elf::EM_S390, false) => "s390",
        (elf::EM_MIPS, _) => "MIPS",
        (elf::EM_LOONGARCH, _) => "LoongArch",
        (elf::EM_SPARCV9, _) => "SPARC64",
        _ => return format!("machine {machine}"),
    };
    name.to_string()
}

/// Where a probe goes: the answer of [`ElfFile::resolve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The file offset to write into `uprobe_events`.
    pub offset: u64,
    /// The same place as a virtual address in the file.
    pub vaddr: u64,
    /// The symbol it is in, as the user would recognise it (demangled), if
    /// any.
    pub symbol: Option<String>,
    /// Bytes from the start of that symbol (the `+0x10` of `func+0x10`).
    pub symbol_offset: u64,
}

/// A parsed ELF file: its header, loadable segments and code symbols.
///
/// The file's bytes are not kept: everything needed is copied out while
/// parsing, which reads only the headers and symbol tables. A debug file is
/// read only when its symbols are needed (a name not exported, a listing,
/// symbolization), not to resolve an exported function: libc's has 10 000
/// symbols, which would cost more than the whole start-up budget.
#[derive(Debug)]
pub struct ElfFile {
    name: PathBuf,
    header: ElfHeader,
    segments: Vec<Segment>,
    /// Symbols of the file itself.
    own: Vec<Symbol>,
    has_symtab: bool,
    build_id: Option<Vec<u8>>,
    debug_root: Option<PathBuf>,
    /// (dev major, dev minor, inode) of the file opened, to recognise it in
    /// `/proc/*/maps`.
    file_id: Option<(u32, u32, u64)>,
    full: OnceLock<FullTable>,
}

/// Debug-file symbols and the address index over all symbols, built on
/// first use.
#[derive(Debug, Default)]
struct FullTable {
    /// Symbols from the debug file that the file itself lacks.
    extra: Vec<Symbol>,
    debug_file: Option<PathBuf>,
    /// Indices into `own` followed by `extra`, sorted by address, then
    /// preference.
    by_addr: Vec<u32>,
}

/// Where separate debug files live, by build ID.
const DEBUG_ROOT: &str = "/usr/lib/debug/.build-id";

impl ElfFile {
    /// Opens and parses the ELF file at `path`; for a stripped file, also
    /// reads the `.symtab` of its debug file if one is installed.
    pub fn open(path: &Path) -> Result<ElfFile> {
        ElfFile::open_with_debug_root(path, Some(Path::new(DEBUG_ROOT)))
    }

    /// Like [`ElfFile::open`], looking for debug files under `debug_root`
    /// (a `.build-id` directory), or nowhere.
    pub fn open_with_debug_root(path: &Path, debug_root: Option<&Path>) -> Result<ElfFile> {
        let file = File::open(path).map_err(|e| Error::io("cannot open", path, e))?;
        let md = file
            .metadata()
            .map_err(|e| Error::io("cannot stat", path, e))?;
        if md.is_dir() {
            return Err(Error::usage(format!(
                "{} is a directory, not a program or library.",
                path.display()
            )));
        }
        let reader = FileReader::new(file, md.len());
        let mut elf = parse_any(&reader, path, |o, s| reader.preload(o, s))?;
        let (major, minor) = super::maps::dev_parts(md.dev());
        elf.file_id = Some((major, minor, md.ino()));
        elf.debug_root = debug_root.map(Path::to_path_buf);
        Ok(elf)
    }

    /// Parses an ELF image held in memory (tests, fuzzing).
    pub fn parse(bytes: Vec<u8>) -> Result<ElfFile> {
        parse_any(bytes.as_slice(), Path::new("<memory>"), |_, _| {})
    }

    /// Sets the name used in messages (the path as the user or the traced
    /// process knows it, rather than a `/proc/PID/root/...` path).
    pub fn with_name(mut self, name: impl Into<PathBuf>) -> ElfFile {
        self.name = name.into();
        self
    }

    /// The name used in messages.
    pub fn name(&self) -> &Path {
        &self.name
    }

    /// The ELF header's identity fields.
    pub fn header(&self) -> ElfHeader {
        self.header
    }

    /// The `PT_LOAD` segments.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// All code symbols (functions, IFUNCs, untyped labels): the file's
    /// own in table order, then those only its debug file has.
    pub fn symbols(&self) -> impl Iterator<Item = &Symbol> + '_ {
        self.own.iter().chain(self.full().extra.iter())
    }

    /// Whether the file has its full `.symtab` (is not stripped), or one was
    /// found in a debug file.
    pub fn has_full_symbols(&self) -> bool {
        self.has_symtab || self.full().debug_file.is_some()
    }

    /// The GNU build ID, if the file has one.
    pub fn build_id(&self) -> Option<&[u8]> {
        self.build_id.as_deref()
    }

    /// The separate debug file whose symbols were merged in, if any.
    pub fn debug_file(&self) -> Option<&Path> {
        self.full().debug_file.as_deref()
    }

    pub(crate) fn file_id(&self) -> Option<(u32, u32, u64)> {
        self.file_id
    }

    fn full(&self) -> &FullTable {
        self.full.get_or_init(|| {
            let mut t = FullTable::default();
            if !self.has_symtab {
                if let (Some(root), Some(id)) = (&self.debug_root, &self.build_id) {
                    self.load_debug_file(root, id, &mut t);
                }
            }
            let n = self.own.len() + t.extra.len();
            let mut by_addr: Vec<u32> = (0..n as u32).collect();
            let get = |i: u32| symbol_at(&self.own, &t.extra, i);
            by_addr.sort_by(|&a, &b| {
                let (x, y) = (get(a), get(b));
                x.vaddr.cmp(&y.vaddr).then_with(|| x.rank().cmp(&y.rank()))
            });
            t.by_addr = by_addr;
            t
        })
    }

    fn sym(&self, i: u32) -> &Symbol {
        symbol_at(&self.own, &self.full().extra, i)
    }

    fn load_debug_file(&self, root: &Path, id: &[u8], t: &mut FullTable) {
        if id.len() < 2 {
            return;
        }
        let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
        let path = root.join(&hex[..2]).join(format!("{}.debug", &hex[2..]));
        let Ok(file) = File::open(&path) else { return };
        let Ok(md) = file.metadata() else { return };
        let reader = FileReader::new(file, md.len());
        let Ok(dbg) = parse_any(&reader, &path, |o, s| reader.preload(o, s)) else {
            return;
        };
        if dbg.build_id.as_deref() != Some(id) || !dbg.has_symtab {
            return;
        }
        let seen: HashSet<(&str, u64)> = self
            .own
            .iter()
            .map(|s| (s.name.as_str(), s.vaddr))
            .collect();
        let mut extra = Vec::new();
        for mut s in dbg.own {
            if !seen.contains(&(s.name.as_str(), s.vaddr)) {
                s.table = SymbolTable::Debug;
                extra.push(s);
            }
        }
        t.extra = extra;
        t.debug_file = Some(path);
    }

    /// The functions (and IFUNCs) of the file for listing: sorted by their
    /// display name, one entry per distinct (name, version), filtered by a
    /// glob matched against the demangled and the raw name.
    pub fn functions(&self, glob: Option<&Glob>) -> Vec<&Symbol> {
        let mut out: Vec<(String, &Symbol)> = Vec::new();
        let mut seen = HashSet::new();
        for s in self.symbols() {
            if !s.is_code() {
                continue;
            }
            if !seen.insert((s.name.as_str(), s.version.as_deref(), s.vaddr)) {
                continue;
            }
            let display = s.display_name();
            if let Some(g) = glob {
                if !g.matches(&display)
                    && !g.matches(&s.name)
                    && !s
                        .demangled_forms()
                        .is_some_and(|d| d.forms.iter().any(|f| g.matches(f)))
                {
                    continue;
                }
            }
            out.push((display, s));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.vaddr.cmp(&b.1.vaddr)));
        out.into_iter().map(|(_, s)| s).collect()
    }

    /// The functions whose name `m` matches (the display name or the raw
    /// one), as (name, file offset), sorted by name: the targets of one
    /// uprobe each. One per address: aliases (malloc, __libc_malloc) share
    /// one, shown by the plainest name. IFUNC resolvers are left out (the
    /// function that runs is another).
    pub fn matching_functions(&self, m: &crate::base::pattern::Matcher) -> Vec<(String, u64)> {
        let mut by_addr: HashMap<u64, String> = HashMap::new();
        for sym in self.functions(None) {
            let shown = sym.display_name();
            if sym.kind == SymbolKind::Ifunc || !(m.matches(&shown) || m.matches(&sym.name)) {
                continue;
            }
            let better = |old: &String| {
                let score = |n: &str| (n.bytes().take_while(|&b| b == b'_').count(), n.len());
                score(&shown) < score(old)
            };
            match by_addr.get(&sym.vaddr) {
                Some(old) if !better(old) => {}
                _ => {
                    by_addr.insert(sym.vaddr, shown);
                }
            }
        }
        let mut v: Vec<(u64, String)> = by_addr.into_iter().collect();
        v.sort_by(|a, b| a.1.cmp(&b.1));
        v.into_iter()
            .filter_map(|(vaddr, shown)| Some((shown, self.vaddr_to_offset(vaddr)?)))
            .collect()
    }

    /// The file offset of a virtual address, if a `PT_LOAD` segment maps it
    /// from the file (not `.bss`).
    pub fn vaddr_to_offset(&self, vaddr: u64) -> Option<u64> {
        self.segment_of(vaddr).map(|s| vaddr - s.vaddr + s.offset)
    }

    /// The virtual address that a file offset is loaded at, preferring
    /// executable segments.
    pub fn offset_to_vaddr(&self, file_off: u64) -> Option<u64> {
        let hit =
            |s: &&Segment| file_off >= s.offset && file_off - s.offset < s.filesz.min(s.memsz);
        self.segments
            .iter()
            .filter(|s| s.executable)
            .find(hit)
            .or_else(|| self.segments.iter().find(hit))
            .map(|s| file_off - s.offset + s.vaddr)
    }

    fn segment_of(&self, vaddr: u64) -> Option<&Segment> {
        let hit = |s: &&Segment| s.file_vaddr_range().contains(&vaddr);
        self.segments
            .iter()
            .filter(|s| s.executable)
            .find(hit)
            .or_else(|| self.segments.iter().find(hit))
    }

    /// The symbol containing the code at a file offset, and the offset
    /// into that symbol. A symbol of unknown size (0) covers the bytes up to
    /// the next symbol.
    pub fn offset_to_symbol(&self, file_off: u64) -> Option<(&Symbol, u64)> {
        self.vaddr_to_symbol(self.offset_to_vaddr(file_off)?)
    }

    /// The symbol containing a virtual address, and the offset into it.
    pub fn vaddr_to_symbol(&self, vaddr: u64) -> Option<(&Symbol, u64)> {
        let by_addr = &self.full().by_addr;
        let idx = by_addr.partition_point(|&i| self.sym(i).vaddr <= vaddr);
        if idx == 0 {
            return None;
        }
        // Candidates: every symbol at the greatest address <= vaddr, the best
        // ranked first; then, for nested symbols, earlier ones that span it.
        let top = self.sym(by_addr[idx - 1]).vaddr;
        let first = by_addr[..idx].partition_point(|&i| self.sym(i).vaddr < top);
        for &i in &by_addr[first..idx] {
            let s = self.sym(i);
            if s.size > 0 && vaddr - s.vaddr < s.size {
                return Some((s, vaddr - s.vaddr));
            }
        }
        // A sized symbol starting lower that still spans the address.
        for &i in by_addr[..first].iter().rev().take(64) {
            let s = self.sym(i);
            if s.size > 0 && vaddr - s.vaddr < s.size {
                return Some((s, vaddr - s.vaddr));
            }
        }
        // Size unknown: take the nearest label if it is in the same segment.
        let s = self.sym(by_addr[first]);
        let seg = self.segment_of(vaddr).map(|x| x.vaddr);
        if by_addr[first..idx].iter().all(|&i| self.sym(i).size == 0)
            && seg.is_some()
            && self.segment_of(s.vaddr).map(|x| x.vaddr) == seg
        {
            return Some((s, vaddr - s.vaddr));
        }
        None
    }

    /// Resolves a probe location: `name`, `name@VERSION`, `name@@VERSION`,
    /// a demangled C++/Rust name (`ns::Class::method`,
    /// `ns::f(int)`, `mycrate::module::func`), any of these with `+OFFSET`
    /// (`+0x10` or `+16`), or a raw address `0xADDR` in the file's address
    /// space.
    ///
    /// Refuses, unless `force`: IFUNC symbols (the probe would hit the
    /// resolver), offsets past the end of the symbol, and addresses outside
    /// the executable segments. With `force`, an address that no segment maps
    /// is taken as a file offset as it is, as perf-tools did.
    pub fn resolve(&self, spec: &str, force: bool) -> Result<Resolved> {
        let spec = spec.trim();
        if spec.is_empty() {
            return Err(Error::usage(format!(
                "no symbol or address given for {}.",
                self.name.display()
            )));
        }
        if let Some(hex) = spec.strip_prefix("0x").or_else(|| spec.strip_prefix("0X")) {
            let vaddr = u64::from_str_radix(hex, 16).map_err(|_| {
                Error::usage(format!("'{spec}' is not a valid hexadecimal address."))
            })?;
            return self.resolve_address(vaddr, force);
        }
        if spec.as_bytes()[0].is_ascii_digit() {
            return Err(Error::usage(format!(
                "'{spec}' is not a symbol name; write addresses in hexadecimal with 0x (as objdump shows them), e.g. 0x{spec}."
            )));
        }
        let (sym, off) = match self.find_symbol(spec)? {
            Some(s) => (s, 0),
            None => match split_offset(spec) {
                Some((base, off)) => match self.find_symbol(base)? {
                    Some(s) => (s, off),
                    None => return Err(self.unknown_symbol(base)),
                },
                None => return Err(self.unknown_symbol(spec)),
            },
        };
        let shown = sym.display_name();
        if sym.kind == SymbolKind::Ifunc && !force {
            return Err(super::ifunc::explain(self, sym));
        }
        if off > 0 && sym.size > 0 && off >= sym.size && !force {
            return Err(Error::usage(format!(
                "offset +{off:#x} is past the end of {shown} in {} (it is {:#x} bytes long); use -F to probe there anyway.",
                self.name.display(),
                sym.size
            )));
        }
        let vaddr = sym.vaddr.wrapping_add(off);
        let offset = self.code_offset(vaddr, force).map_err(|why| {
            Error::usage(format!(
                "{shown}{} in {} is at {vaddr:#x}, {why}",
                if off > 0 {
                    format!("+{off:#x}")
                } else {
                    String::new()
                },
                self.name.display()
            ))
        })?;
        Ok(Resolved {
            offset,
            vaddr,
            symbol: Some(shown),
            symbol_offset: off,
        })
    }

    fn resolve_address(&self, vaddr: u64, force: bool) -> Result<Resolved> {
        let offset = match self.code_offset(vaddr, force) {
            Ok(o) => o,
            Err(_) if force => vaddr,
            Err(why) => {
                return Err(Error::usage(format!(
                    "address {vaddr:#x} in {}: {why}",
                    self.name.display()
                )))
            }
        };
        let (symbol, symbol_offset) = match self.vaddr_to_symbol(vaddr) {
            Some((s, o)) => (Some(s.display_name()), o),
            None => (None, 0),
        };
        Ok(Resolved {
            offset,
            vaddr,
            symbol,
            symbol_offset,
        })
    }

    /// The file offset for code at `vaddr`, or why it is not code (a
    /// sentence fragment that completes "... is at 0x..., ").
    fn code_offset(&self, vaddr: u64, force: bool) -> std::result::Result<u64, String> {
        let code: Vec<String> = self
            .segments
            .iter()
            .filter(|s| s.executable)
            .map(|s| {
                let r = s.file_vaddr_range();
                format!("{:#x}-{:#x}", r.start, r.end)
            })
            .collect();
        let code = if code.is_empty() {
            "the file has no executable segment".to_string()
        } else {
            format!("its code is at {}", code.join(", "))
        };
        match self.segment_of(vaddr) {
            Some(s) if s.executable || force => Ok(vaddr - s.vaddr + s.offset),
            Some(_) => Err(format!(
                "which is in a segment that is not executable ({code}); a probe there would never fire. Use -F to place it anyway."
            )),
            None => Err(format!(
                "which no segment of the file loads ({code}); is it a runtime address or a file offset rather than an address in the file? Use -F to use it as a file offset as it is."
            )),
        }
    }

    /// Looks a name up: raw name (with optional `@VERSION`), then demangled
    /// forms. `Ok(None)` when nothing matches; an error when several
    /// different functions do.
    fn find_symbol(&self, query: &str) -> Result<Option<&Symbol>> {
        let (base, version, want_default) = split_version(query);
        let wanted = |s: &&Symbol| {
            s.name == base
                && match version {
                    Some(v) => {
                        s.version.as_deref() == Some(v) && (!want_default || s.default_version)
                    }
                    None => true,
                }
        };
        // The file's own symbols first: an exported function is found
        // without reading a debug file.
        let mut raw: Vec<&Symbol> = self.own.iter().filter(wanted).collect();
        if raw.is_empty() {
            raw = self.symbols().filter(wanted).collect();
        }
        if !raw.is_empty() {
            return self.choose(query, raw, version.is_some()).map(Some);
        }
        if version.is_some() {
            if let Some(other) = self.symbols().find(|s| s.name == base) {
                let versions: Vec<String> = self
                    .symbols()
                    .filter(|s| s.name == other.name)
                    .map(|s| s.versioned_name())
                    .collect();
                return Err(Error::usage(format!(
                    "{} has no '{query}'; its versions are: {}.",
                    self.name.display(),
                    versions.join(", ")
                )));
            }
            return Ok(None);
        }
        let needle = demangle::last_identifier(query);
        let mut found: Vec<&Symbol> = self
            .symbols()
            .filter(|s| match &needle {
                Some(n) => s.name.contains(n.as_str()),
                None => true,
            })
            .filter(|s| {
                s.demangled_forms().is_some_and(|d| {
                    d.forms
                        .iter()
                        .any(|f| demangle::same_ignoring_space(f, query))
                })
            })
            .collect();
        // Compiler clones (`.constprop.0`, `.cold`) are not entry points a
        // user means; keep them only when nothing else matched.
        if found.iter().any(|s| !s.name.contains('.')) {
            found.retain(|s| !s.name.contains('.'));
        }
        if found.is_empty() {
            return Ok(None);
        }
        self.choose(query, found, false).map(Some)
    }

    /// Picks one symbol among several with the name the user gave, or
    /// explains the ambiguity.
    fn choose<'a>(
        &self,
        query: &str,
        mut cands: Vec<&'a Symbol>,
        explicit_version: bool,
    ) -> Result<&'a Symbol> {
        let distinct = |c: &[&Symbol]| {
            let mut a: Vec<u64> = c.iter().map(|s| s.vaddr).collect();
            a.sort_unstable();
            a.dedup();
            a.len()
        };
        if !explicit_version && distinct(&cands) > 1 && cands.iter().any(|s| s.default_version) {
            cands.retain(|s| s.default_version);
        }
        if distinct(&cands) > 1 && cands.iter().any(|s| s.binding != Binding::Local) {
            cands.retain(|s| s.binding != Binding::Local);
        }
        if distinct(&cands) > 1 {
            cands.sort_by_key(|s| s.vaddr);
            let mut list: Vec<String> = Vec::new();
            for s in &cands {
                let item = format!(
                    "{} at {:#x}{}",
                    s.display_name(),
                    s.vaddr,
                    if s.binding == Binding::Local {
                        " (static)"
                    } else {
                        ""
                    }
                );
                if !list.contains(&item) {
                    list.push(item);
                }
            }
            return Err(Error::usage(format!(
                "'{query}' matches {} different functions in {}: {}. Name one exactly (with its parameter list or @VERSION), or give its address (0x...).",
                list.len(),
                self.name.display(),
                list.join("; ")
            )));
        }
        cands.sort_by_key(|s| s.rank());
        Ok(cands[0])
    }

    fn unknown_symbol(&self, query: &str) -> Error {
        let mut names: Vec<String> = Vec::new();
        for s in self.symbols() {
            if s.is_code() {
                names.push(s.name.clone());
                if let Some(d) = s.demangled_forms() {
                    names.extend(d.forms.iter().cloned());
                }
            }
        }
        let close = suggest::suggest(query, names.iter().map(String::as_str), 5);
        let stripped = if self.has_full_symbols() {
            String::new()
        } else {
            " The file is stripped (it has only its exported symbols in .dynsym), so static functions have no names here.".to_string()
        };
        Error::usage(format!(
            "no function named '{query}' in {} ({} code symbols searched).{}{stripped} List its functions with -l.",
            self.name.display(),
            self.symbols().filter(|s| s.is_code()).count(),
            suggest::did_you_mean(&close)
        ))
    }
}

/// Bytes of a name as text (names are ASCII in practice; anything else is
/// shown with replacement characters rather than refused).
fn text(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => s.to_owned(),
        Err(_) => String::from_utf8_lossy(b).into_owned(),
    }
}

fn symbol_at<'a>(own: &'a [Symbol], extra: &'a [Symbol], i: u32) -> &'a Symbol {
    let i = i as usize;
    if i < own.len() {
        &own[i]
    } else {
        &extra[i - own.len()]
    }
}

/// Splits `name@@V` / `name@V` into (name, version, wants the default).
fn split_version(query: &str) -> (&str, Option<&str>, bool) {
    match query.find('@') {
        Some(i) if i > 0 => {
            let rest = &query[i + 1..];
            match rest.strip_prefix('@') {
                Some(v) => (&query[..i], Some(v), true),
                None => (&query[..i], Some(rest), false),
            }
        }
        _ => (query, None, false),
    }
}

/// Splits `name+0x10` / `name+16` at the last `+`.
fn split_offset(spec: &str) -> Option<(&str, u64)> {
    let (base, off) = spec.rsplit_once('+')?;
    let base = base.trim_end();
    let off = off.trim();
    if base.is_empty() {
        return None;
    }
    let v = match off.strip_prefix("0x").or_else(|| off.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok()?,
        None => off.parse().ok()?,
    };
    Some((base, v))
}

/// Parses any ELF class, or explains why the bytes are not a usable ELF.
fn parse_any<'d, R: ReadRef<'d>>(
    data: R,
    path: &Path,
    preload: impl Fn(u64, u64),
) -> Result<ElfFile> {
    let ident = data.read_bytes_at(0, 16).ok();
    let bad = |why: &str| {
        Error::usage(format!(
            "{} is not a valid ELF file: {why}.",
            path.display()
        ))
    };
    let header = ident
        .and_then(|b| {
            let mut full = [0u8; 20];
            let n = b.len().min(16);
            full[..n].copy_from_slice(&b[..n]);
            if let Ok(more) = data.read_bytes_at(16, 4) {
                full[16..20].copy_from_slice(more);
            }
            ElfHeader::parse(&full)
        })
        .ok_or_else(|| {
            Error::usage(format!(
                "{} is not an ELF file (not a program or shared library).",
                path.display()
            ))
        })?;
    let parsed = if header.class64 {
        parse_class::<elf::FileHeader64<Endianness>, R>(data, header, path, &preload)
    } else {
        parse_class::<elf::FileHeader32<Endianness>, R>(data, header, path, &preload)
    };
    parsed.map_err(bad)
}

fn parse_class<'d, Elf: FileHeader<Endian = Endianness>, R: ReadRef<'d>>(
    data: R,
    header: ElfHeader,
    path: &Path,
    preload: &impl Fn(u64, u64),
) -> std::result::Result<ElfFile, &'static str> {
    let fh = Elf::parse(data).map_err(|_| "its ELF header is malformed")?;
    let endian = fh.endian().map_err(|_| "its byte order is unknown")?;
    let mut segments = Vec::new();
    if let Ok(phdrs) = fh.program_headers(endian, data) {
        for ph in phdrs {
            if ph.p_type(endian) == elf::PT_LOAD {
                segments.push(Segment {
                    vaddr: ph.p_vaddr(endian).into(),
                    memsz: ph.p_memsz(endian).into(),
                    offset: ph.p_offset(endian).into(),
                    filesz: ph.p_filesz(endian).into(),
                    executable: ph.p_flags(endian) & elf::PF_X != 0,
                });
            }
        }
    }
    // Read string tables whole before the symbol tables ask for names one
    // by one.
    if let Ok(shdrs) = fh.section_headers(endian, data) {
        for sh in shdrs {
            if sh.sh_type(endian) == elf::SHT_STRTAB {
                preload(sh.sh_offset(endian).into(), sh.sh_size(endian).into());
            }
        }
    }
    let sections = fh
        .sections(endian, data)
        .map_err(|_| "its section headers are malformed")?;
    let mut symbols: Vec<Symbol> = Vec::new();
    let mut has_symtab = false;
    // Exported symbols of `.symtab`, by (name, address), to merge their
    // `.dynsym` twins into; borrowed names, as this runs for every symbol.
    let mut seen: HashMap<(&[u8], u64), usize> = HashMap::new();
    for (ty, table_kind) in [
        (elf::SHT_SYMTAB, SymbolTable::Symtab),
        (elf::SHT_DYNSYM, SymbolTable::Dynsym),
    ] {
        let Ok(table) = sections.symbols(endian, data, ty) else {
            continue;
        };
        if table.is_empty() {
            continue;
        }
        if ty == elf::SHT_SYMTAB {
            has_symtab = true;
        }
        let mut version_names: Vec<Option<Arc<str>>> = Vec::new();
        let versions = if ty == elf::SHT_DYNSYM {
            sections.versions(endian, data).ok().flatten()
        } else {
            None
        };
        for (index, sym) in table.enumerate() {
            let kind = match sym.st_type() {
                elf::STT_FUNC => SymbolKind::Function,
                elf::STT_GNU_IFUNC => SymbolKind::Ifunc,
                elf::STT_NOTYPE => SymbolKind::Other,
                _ => continue,
            };
            let shndx = sym.st_shndx(endian);
            if shndx == elf::SHN_UNDEF || (kind == SymbolKind::Other && shndx == elf::SHN_ABS) {
                continue;
            }
            let vaddr: u64 = sym.st_value(endian).into();
            if kind == SymbolKind::Other && vaddr == 0 {
                continue;
            }
            let Ok(raw) = table.symbol_name(endian, sym) else {
                continue;
            };
            if raw.is_empty() {
                continue;
            }
            let (base, mut version, mut default_version) = match raw.iter().position(|&b| b == b'@')
            {
                Some(i) if i > 0 => {
                    let v = &raw[i + 1..];
                    match v.strip_prefix(b"@") {
                        Some(v) => (&raw[..i], Some(Arc::from(text(v))), true),
                        None => (&raw[..i], Some(Arc::from(text(v))), false),
                    }
                }
                _ => (raw, None, true),
            };
            if let Some(vt) = &versions {
                let vi = vt.version_index(endian, object::SymbolIndex(index.0));
                if let Ok(Some(v)) = vt.version(vi) {
                    // One string per version, not per symbol (libc: 3000
                    // symbols, 40 versions).
                    let slot = vi.index() as usize;
                    if version_names.len() <= slot {
                        version_names.resize(slot + 1, None);
                    }
                    let name = version_names[slot]
                        .get_or_insert_with(|| Arc::from(text(v.name())))
                        .clone();
                    version = Some(name);
                    default_version = !vi.is_hidden();
                }
            }
            let binding = match sym.st_bind() {
                elf::STB_LOCAL => Binding::Local,
                elf::STB_WEAK => Binding::Weak,
                _ => Binding::Global,
            };
            // The static linker writes exported symbols into both tables;
            // keep one, with the version information of `.dynsym`.
            if let Some(&i) = seen.get(&(base, vaddr)) {
                let s: &mut Symbol = &mut symbols[i];
                if s.version.is_none() || s.version == version {
                    if s.version.is_none() {
                        s.version = version;
                        s.default_version = default_version;
                    }
                    continue;
                }
            }
            let mut s = Symbol::new(text(base), vaddr, sym.st_size(endian).into(), kind);
            s.version = version;
            s.default_version = default_version;
            s.binding = binding;
            s.table = table_kind;
            if ty == elf::SHT_SYMTAB && binding != Binding::Local {
                seen.insert((base, vaddr), symbols.len());
            }
            symbols.push(s);
        }
    }
    let mut build_id = None;
    for section in sections.iter() {
        if let Ok(Some(mut notes)) = section.notes(endian, data) {
            while let Ok(Some(note)) = notes.next() {
                if note.name() == elf::ELF_NOTE_GNU && note.n_type(endian) == elf::NT_GNU_BUILD_ID {
                    build_id = Some(note.desc().to_vec());
                }
            }
        }
        if build_id.is_some() {
            break;
        }
    }
    Ok(ElfFile {
        name: path.to_path_buf(),
        header,
        segments,
        own: symbols,
        has_symtab,
        build_id,
        debug_root: None,
        file_id: None,
        full: OnceLock::new(),
    })
}

#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    /// A function symbol for unit tests of code that ranks symbols.
    pub(crate) fn function(name: &str, vaddr: u64) -> Symbol {
        Symbol::new(name.to_string(), vaddr, 16, SymbolKind::Function)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_and_offset_syntax() {
        assert_eq!(split_version("foo@@V2"), ("foo", Some("V2"), true));
        assert_eq!(split_version("foo@V1"), ("foo", Some("V1"), false));
        assert_eq!(split_version("foo"), ("foo", None, false));
        assert_eq!(split_version("@x"), ("@x", None, false));
        assert_eq!(split_offset("foo+0x10"), Some(("foo", 16)));
        assert_eq!(split_offset("foo+16"), Some(("foo", 16)));
        assert_eq!(split_offset("ns::operator+"), None);
        assert_eq!(split_offset("+5"), None);
    }

    #[test]
    fn header_identity() {
        let mut h = [0u8; 20];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = 2;
        h[5] = 1;
        h[16] = 3;
        h[18] = 62;
        let eh = ElfHeader::parse(&h).unwrap();
        assert_eq!((eh.class64, eh.machine, eh.file_type), (true, 62, 3));
        assert_eq!(eh.arch_name(), "x86-64");
        #[cfg(target_arch = "x86_64")]
        {
            assert_eq!(eh.arch_match(), ArchMatch::Native);
            h[4] = 1;
            h[18] = 3;
            assert_eq!(
                ElfHeader::parse(&h).unwrap().arch_match(),
                ArchMatch::Compat
            );
            h[18] = 183;
            assert_eq!(
                ElfHeader::parse(&h).unwrap().arch_match(),
                ArchMatch::Foreign
            );
        }
        assert_eq!(ElfHeader::parse(b"#!/bin/sh\n"), None);
        assert_eq!(ElfHeader::parse(b"\x7fELF"), None);
    }
}
