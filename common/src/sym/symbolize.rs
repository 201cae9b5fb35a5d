//! Turning stack addresses into `function+0xoffset`.
//!
//! Kernel addresses go through [`KernelSymbols`] (`/proc/kallsyms`). User
//! addresses of a process go through [`UserSymbols`]: `/proc/PID/maps` says
//! which file and file offset an address is, and the ELF symbol table of
//! that file says which function. Parsed files are cached by device and
//! inode, so a stack through libc costs one parse of libc for all processes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::elf::ElfFile;
pub use super::kallsyms::{KernelLocation, KernelSymbols};
use super::maps::{self, MapEntry};

/// Where a user-space address is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The address looked up.
    pub addr: u64,
    /// The function (demangled), if a symbol covers the address.
    pub function: Option<String>,
    /// Bytes into the function; without a function, the file offset.
    pub offset: u64,
    /// The mapped file (or `[vdso]`, `[heap]`...), as the process sees it.
    pub object: Option<String>,
}

impl std::fmt::Display for Frame {
    /// `func+0x1a`; else `0x7f12... (/usr/lib/libfoo.so+0x1a2b)` with the
    /// file offset, ready for offline symbolization; else `[unknown]`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.function, &self.object) {
            (Some(func), _) => write!(f, "{func}+{:#x}", self.offset),
            (None, Some(obj)) if obj.starts_with('/') => {
                write!(f, "{:#x} ({obj}+{:#x})", self.addr, self.offset)
            }
            (None, Some(obj)) => write!(f, "{:#x} ({obj})", self.addr),
            (None, None) => f.write_str("[unknown]"),
        }
    }
}

/// How often a process's maps may be re-read after a miss (it may have
/// loaded a library since).
const MAPS_REFRESH: Duration = Duration::from_millis(500);

struct ProcessMaps {
    entries: Vec<MapEntry>,
    read_at: Instant,
}

/// Symbolizes user-space addresses of any number of processes, caching
/// their maps and the parsed files they map.
pub struct UserSymbols {
    proc_root: PathBuf,
    processes: HashMap<u32, Option<ProcessMaps>>,
    files: HashMap<(u32, u32, u64), Option<Arc<ElfFile>>>,
}

impl Default for UserSymbols {
    fn default() -> Self {
        UserSymbols::new()
    }
}

impl UserSymbols {
    /// A symbolizer reading this machine's `/proc`.
    pub fn new() -> UserSymbols {
        UserSymbols::with_proc_root("/proc")
    }

    /// A symbolizer reading another `/proc` (tests).
    pub fn with_proc_root(proc_root: impl Into<PathBuf>) -> UserSymbols {
        UserSymbols {
            proc_root: proc_root.into(),
            processes: HashMap::new(),
            files: HashMap::new(),
        }
    }

    /// Forgets a process (it exited, or its PID may be reused).
    pub fn forget(&mut self, pid: u32) {
        self.processes.remove(&pid);
    }

    fn mapping(&mut self, pid: u32, addr: u64) -> Option<MapEntry> {
        let find = |p: &ProcessMaps| {
            p.entries
                .iter()
                .find(|m| m.start <= addr && addr < m.end)
                .cloned()
        };
        if let Some(Some(p)) = self.processes.get(&pid) {
            if let Some(m) = find(p) {
                return Some(m);
            }
            if p.read_at.elapsed() < MAPS_REFRESH {
                return None;
            }
        } else if let Some(None) = self.processes.get(&pid) {
            // The process was gone last time; it stays gone.
            return None;
        }
        let fresh = maps::read_maps(&self.proc_root, Some(pid))
            .ok()
            .map(|entries| ProcessMaps {
                entries,
                read_at: Instant::now(),
            });
        let hit = fresh.as_ref().and_then(find);
        match (fresh, self.processes.get(&pid)) {
            // Exited since its maps were read: keep them, so that its
            // frames still resolve.
            (None, Some(Some(_))) => {}
            (fresh, _) => {
                self.processes.insert(pid, fresh);
            }
        }
        hit
    }

    /// Reads a process's maps now, if they are not known yet: frames of
    /// it then resolve even after it exits.
    pub fn remember(&mut self, pid: u32) {
        if !self.processes.contains_key(&pid) {
            self.mapping(pid, 0);
        }
    }

    fn file(&mut self, pid: u32, m: &MapEntry) -> Option<Arc<ElfFile>> {
        let key = (m.dev_major, m.dev_minor, m.inode);
        if let Some(f) = self.files.get(&key) {
            return f.clone();
        }
        let shown = m.path.clone()?;
        let path = if m.deleted {
            self.proc_root
                .join(pid.to_string())
                .join("map_files")
                .join(format!("{:x}-{:x}", m.start, m.end))
        } else {
            self.proc_root
                .join(pid.to_string())
                .join("root")
                .join(shown.trim_start_matches('/'))
        };
        let parsed = ElfFile::open(&path)
            .ok()
            .or_else(|| {
                // The process has exited since its maps were read: the same
                // file may still be reachable from here under the name it
                // had in the process. Same inode; the device is not compared,
                // as overlayfs shows the lower layer's in the maps and its
                // own to stat.
                if m.deleted {
                    return None;
                }
                ElfFile::open(Path::new(&shown))
                    .ok()
                    .filter(|f| f.file_id().map(|id| id.2) == Some(key.2))
            })
            .map(|f| Arc::new(f.with_name(Path::new(&shown))));
        self.files.insert(key, parsed.clone());
        parsed
    }

    /// Where `addr` is in process `pid`.
    pub fn lookup(&mut self, pid: u32, addr: u64) -> Frame {
        let mut frame = Frame {
            addr,
            function: None,
            offset: 0,
            object: None,
        };
        let Some(m) = self.mapping(pid, addr) else {
            return frame;
        };
        frame.object = m.path.clone();
        if !m.is_file() {
            return frame;
        }
        let file_off = m.file_offset(addr);
        frame.offset = file_off;
        if let Some(elf) = self.file(pid, &m) {
            if let Some((sym, off)) = elf.offset_to_symbol(file_off) {
                frame.function = Some(sym.display_name());
                frame.offset = off;
            }
        }
        frame
    }

    /// `func+0x1a`, or `0xaddr (path+0xfileoff)`, or `[unknown]`.
    pub fn symbolize(&mut self, pid: u32, addr: u64) -> String {
        self.lookup(pid, addr).to_string()
    }
}
