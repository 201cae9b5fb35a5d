//! Finding the file that a uprobe TARGET names.
//!
//! `uprobe p:TARGET:SYMBOL` accepts, as perf-tools did:
//! - a path (anything containing `/`): `/bin/bash`, `./a.out`;
//! - a program on `PATH`: `bash`;
//! - a library: `libc`, `libssl`, `libc.so.6`. The name is matched against
//!   sonames in `/etc/ld.so.cache` (`libssl` is the part of `libssl.so.3`
//!   before the first dot), then against the files in the usual library
//!   directories. Of several matching files (64-bit, lib32, libx32 builds of
//!   one library) the one of this machine's ELF class and architecture wins.
//!
//! With a PID, the file that process really maps (`/proc/PID/maps`) comes
//! first, reached through `/proc/PID/root/` so that a process in a container
//! (another mount namespace) is probed in its own file, not in the host's
//! file of the same name. The kernel resolves the path written into
//! `uprobe_events` in the writer's mount namespace, so [`Target::path`] is
//! the one to write there.

use std::collections::HashSet;
use std::ffi::OsString;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::elf::{self, ArchMatch, ElfHeader};
use super::ldcache::LdCache;
use super::maps::{self, MapEntry};
use super::suggest;
use crate::base::error::{Error, Result};

/// A resolved probe target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The path to open, and to write into `uprobe_events`. It is the plain
    /// path when this process sees the same file there, and goes through
    /// `/proc/PID/root/...` (or `/proc/PID/map_files/...` for a deleted
    /// file) when the traced process sees another file under that name.
    pub path: PathBuf,
    /// The path as the user, or the traced process, knows it: for messages.
    pub display_path: PathBuf,
    /// The file's ELF identity.
    pub header: ElfHeader,
    /// With a PID: whether that process maps this file now. `Some(false)`
    /// means the probe fires only if the process loads the file later.
    pub mapped: Option<bool>,
}

/// Resolves a TARGET (see the module documentation) on this machine.
pub fn resolve_target(spec: &str, pid: Option<u32>) -> Result<Target> {
    Resolver::system().resolve(spec, pid)
}

/// Where target resolution looks: the file system root, `/proc`, `PATH`,
/// the ld.so cache and the library directories. [`Resolver::system`] is this
/// machine; tests point it at a directory tree of their own.
#[derive(Debug, Clone)]
pub struct Resolver {
    root: PathBuf,
    proc_root: PathBuf,
    path_var: Option<OsString>,
    lib_dirs: Vec<PathBuf>,
}

/// The Debian-style multiarch directory name of this architecture.
fn multiarch() -> &'static str {
    if cfg!(target_arch = "x86_64") {
        "x86_64-linux-gnu"
    } else if cfg!(target_arch = "aarch64") {
        "aarch64-linux-gnu"
    } else if cfg!(target_arch = "x86") {
        "i386-linux-gnu"
    } else if cfg!(target_arch = "arm") {
        "arm-linux-gnueabihf"
    } else if cfg!(target_arch = "riscv64") {
        "riscv64-linux-gnu"
    } else if cfg!(all(target_arch = "powerpc64", target_endian = "little")) {
        "powerpc64le-linux-gnu"
    } else if cfg!(target_arch = "s390x") {
        "s390x-linux-gnu"
    } else if cfg!(target_arch = "loongarch64") {
        "loongarch64-linux-gnu"
    } else {
        "unknown-linux-gnu"
    }
}

impl Resolver {
    /// This machine: root `/`, `/proc`, the `PATH` of this process.
    pub fn system() -> Resolver {
        Resolver::with_root("/", "/proc", std::env::var_os("PATH"))
    }

    /// A resolver over another root directory (a test tree, a container's
    /// `/proc/PID/root`), with its own `/proc` and `PATH`.
    pub fn with_root(
        root: impl Into<PathBuf>,
        proc_root: impl Into<PathBuf>,
        path_var: Option<OsString>,
    ) -> Resolver {
        let ma = multiarch();
        let lib_dirs = [
            format!("/lib/{ma}"),
            format!("/usr/lib/{ma}"),
            "/lib64".to_string(),
            "/usr/lib64".to_string(),
            "/lib".to_string(),
            "/usr/lib".to_string(),
            format!("/usr/local/lib/{ma}"),
            "/usr/local/lib".to_string(),
        ]
        .into_iter()
        .map(PathBuf::from)
        .collect();
        Resolver {
            root: root.into(),
            proc_root: proc_root.into(),
            path_var,
            lib_dirs,
        }
    }

    /// `p` (absolute, as seen inside the root) as a path we can open.
    fn under_root(&self, p: &Path) -> PathBuf {
        match p.strip_prefix("/") {
            Ok(rel) => self.root.join(rel),
            Err(_) => self.root.join(p),
        }
    }

    /// Resolves TARGET, preferring what process `pid` maps.
    pub fn resolve(&self, spec: &str, pid: Option<u32>) -> Result<Target> {
        if spec.is_empty() {
            return Err(Error::usage(
                "no target given: name a program (bash), a library (libc) or a path.",
            ));
        }
        if spec.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Error::usage(format!(
                "target '{}' contains spaces or control characters, which uprobe_events cannot take; use a symlink without them.",
                spec.escape_default()
            )));
        }
        match pid {
            Some(pid) => self.resolve_in_process(spec, pid),
            None => {
                let found = self.find(spec)?;
                self.finish(&self.under_root(&found), &found, None)
            }
        }
    }

    /// Finds TARGET without a process: a path as the root sees it.
    fn find(&self, spec: &str) -> Result<PathBuf> {
        if spec.contains('/') {
            let p = Path::new(spec);
            if p.is_absolute() {
                return Ok(p.to_path_buf());
            }
            return std::path::absolute(p).map_err(|e| Error::io("cannot resolve", p, e));
        }
        if let Some(p) = self.find_on_path(spec) {
            return Ok(p);
        }
        if let Some(p) = self.find_library(spec)? {
            return Ok(p);
        }
        Err(self.unknown_target(spec))
    }

    fn find_on_path(&self, name: &str) -> Option<PathBuf> {
        let var = self.path_var.as_ref()?;
        for dir in std::env::split_paths(var) {
            if !dir.is_absolute() {
                continue;
            }
            let cand = dir.join(name);
            let Ok(md) = std::fs::metadata(self.under_root(&cand)) else {
                continue;
            };
            if md.is_file() && md.permissions().mode() & 0o111 != 0 {
                return Some(cand);
            }
        }
        None
    }

    /// The cache entries whose soname passes `keep`. A damaged cache is not
    /// fatal: the directories are still scanned.
    fn load_cache(&self, keep: impl Fn(&str) -> bool) -> Option<LdCache> {
        LdCache::load_matching(&self.under_root(Path::new("/etc/ld.so.cache")), keep)
            .ok()
            .flatten()
    }

    /// Finds a library by name: ld.so cache first, then the directories.
    fn find_library(&self, spec: &str) -> Result<Option<PathBuf>> {
        let (mut cached, mut scanned) = self.library_candidates(spec);
        if let Some(p) = self.pick(spec, &mut cached)? {
            return Ok(Some(p));
        }
        self.pick(spec, &mut scanned)
    }

    /// The files that may be library `spec`: the ld.so cache's, then the
    /// directories'.
    fn library_candidates(&self, spec: &str) -> (Vec<Candidate>, Vec<Candidate>) {
        let mut cands: Vec<Candidate> = Vec::new();
        if let Some(cache) = self.load_cache(|soname| lib_matches(soname, spec)) {
            let mut entries: Vec<_> = cache.entries.iter().collect();
            // Plain entries before glibc-hwcaps variants; stable, so cache
            // order (the dynamic linker's preference) is kept otherwise.
            entries.sort_by_key(|e| e.hwcap != 0);
            for e in entries {
                cands.push(Candidate::new(PathBuf::from(&e.path), e.soname.clone()));
            }
        }
        let mut scanned: Vec<Candidate> = Vec::new();
        for dir in &self.lib_dirs {
            let Ok(rd) = std::fs::read_dir(self.under_root(dir)) else {
                continue;
            };
            let mut names: Vec<(bool, String)> = rd
                .filter_map(|e| e.ok())
                .filter_map(|e| {
                    let name = e.file_name().into_string().ok()?;
                    lib_matches(&name, spec).then(|| {
                        let link = e.file_type().map(|t| t.is_symlink()).unwrap_or(false);
                        (link, name)
                    })
                })
                .collect();
            names.sort();
            for (_, name) in names {
                scanned.push(Candidate::new(dir.join(&name), name));
            }
        }
        (cands, scanned)
    }

    /// Every installed version of library `spec` built for this machine,
    /// one per file (`libssl` finds both `libssl.so.1.1` and
    /// `libssl.so.3` where both are installed, where [`Resolver::resolve`]
    /// asks which one): for a tool that traces each. Empty when none is.
    pub fn libraries(&self, spec: &str) -> Vec<Target> {
        let (cached, scanned) = self.library_candidates(spec);
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for mut c in cached.into_iter().chain(scanned) {
            let p = self.under_root(&c.path);
            let Ok(md) = std::fs::metadata(&p) else {
                continue;
            };
            c.header = ElfHeader::read(&p).ok().flatten();
            let native = c
                .header
                .is_some_and(|h| h.arch_match() == ArchMatch::Native);
            if md.is_file() && native && seen.insert((md.dev(), md.ino())) {
                if let Ok(t) = self.finish(&p, &c.path, None) {
                    out.push(t);
                }
            }
        }
        out
    }

    /// Chooses among candidate files for a library name: ELF files only,
    /// this machine's architecture first, one per distinct file.
    fn pick(&self, spec: &str, cands: &mut [Candidate]) -> Result<Option<PathBuf>> {
        for c in cands.iter_mut() {
            let p = self.under_root(&c.path);
            if let Ok(md) = std::fs::metadata(&p) {
                if md.is_file() {
                    c.id = Some((md.dev(), md.ino()));
                    c.header = ElfHeader::read(&p).ok().flatten();
                }
            }
        }
        // An exact file name or soname beats stem matches (`libfoo.so.1`
        // given: not `libfoo.so.2`); a linker script of that name does not.
        if cands.iter().any(|c| c.name == spec && c.header.is_some()) {
            for c in cands.iter_mut().filter(|c| c.name != spec) {
                c.header = None;
            }
        }
        for want in [ArchMatch::Native, ArchMatch::Compat] {
            let mut seen = HashSet::new();
            let mut chosen: Vec<&Candidate> = Vec::new();
            for c in cands.iter() {
                let (Some(h), Some(id)) = (c.header, c.id) else {
                    continue;
                };
                if h.arch_match() == want && seen.insert(id) {
                    chosen.push(c);
                }
            }
            let mut sonames: Vec<&str> = chosen.iter().map(|c| c.name.as_str()).collect();
            sonames.sort_unstable();
            sonames.dedup();
            if sonames.len() > 1 {
                let list: Vec<String> = chosen
                    .iter()
                    .map(|c| format!("{} ({})", c.name, c.path.display()))
                    .collect();
                return Err(Error::usage(format!(
                    "'{spec}' matches several libraries: {}. Name one of them exactly (e.g. {}), or give a path.",
                    list.join(", "),
                    chosen[0].name
                )));
            }
            if let Some(c) = chosen.first() {
                return Ok(Some(c.path.clone()));
            }
        }
        if let Some(c) = cands.iter().find(|c| c.header.is_some()) {
            let h = c.header.unwrap_or(ElfHeader {
                class64: false,
                little_endian: true,
                machine: 0,
                file_type: 0,
            });
            return Err(Error::usage(format!(
                "'{spec}' matches only {}, which is built for {}, not for this machine ({}).",
                c.path.display(),
                h.arch_name(),
                elf::machine_name(elf::NATIVE_MACHINE, elf::NATIVE_CLASS64)
            )));
        }
        Ok(None)
    }

    fn unknown_target(&self, spec: &str) -> Error {
        let mut names: Vec<String> = Vec::new();
        let cache = self.load_cache(|_| true);
        if let Some(c) = &cache {
            for e in &c.entries {
                names.push(stem(&e.soname).to_string());
                names.push(e.soname.clone());
            }
        }
        for dir in &self.lib_dirs {
            if let Ok(rd) = std::fs::read_dir(self.under_root(dir)) {
                for e in rd.flatten() {
                    if let Ok(n) = e.file_name().into_string() {
                        if n.contains(".so") {
                            names.push(stem(&n).to_string());
                        }
                    }
                }
            }
        }
        if let Some(var) = &self.path_var {
            for dir in std::env::split_paths(var) {
                if let Ok(rd) = std::fs::read_dir(self.under_root(&dir)) {
                    names.extend(
                        rd.flatten()
                            .filter_map(|e| e.file_name().into_string().ok()),
                    );
                }
            }
        }
        names.sort();
        names.dedup();
        let close = suggest::suggest(spec, names.iter().map(String::as_str), 5);
        let cache_note = if cache.is_some() {
            "PATH, the ld.so cache and the library directories"
        } else {
            "PATH and the library directories (this system has no /etc/ld.so.cache)"
        };
        Error::usage(format!(
            "no program or library named '{spec}' (looked in {cache_note}).{} Give a full path if it is installed elsewhere.",
            suggest::did_you_mean(&close)
        ))
    }

    fn resolve_in_process(&self, spec: &str, pid: u32) -> Result<Target> {
        let maps = maps::read_maps(&self.proc_root, Some(pid))?;
        let pid_root = self.proc_root.join(pid.to_string()).join("root");
        let files: Vec<&MapEntry> = maps.iter().filter(|m| m.is_file()).collect();
        if spec.contains('/') {
            let shown = if Path::new(spec).is_absolute() {
                PathBuf::from(spec)
            } else {
                std::path::absolute(spec)
                    .map_err(|e| Error::io("cannot resolve", Path::new(spec), e))?
            };
            let via_root = join_root(&pid_root, &shown);
            let id = std::fs::metadata(&via_root)
                .ok()
                .map(|m| (maps::dev_parts(m.dev()), m.ino()));
            let mapped = files.iter().any(|m| {
                m.path.as_deref() == Some(shown.to_string_lossy().as_ref())
                    || id == Some(((m.dev_major, m.dev_minor), m.inode))
            });
            let path = self.prefer_plain(&via_root, &shown);
            return self.finish(&path, &shown, Some(mapped));
        }
        // Files the process maps whose name matches, one per inode.
        let mut seen = HashSet::new();
        let mut hits: Vec<&MapEntry> = Vec::new();
        for m in &files {
            let p = m.path.as_deref().unwrap_or("");
            let base = p.rsplit('/').next().unwrap_or(p);
            if (base == spec || lib_matches(base, spec))
                && seen.insert((m.dev_major, m.dev_minor, m.inode))
            {
                hits.push(m);
            }
        }
        if hits.iter().any(|m| {
            m.path
                .as_deref()
                .is_some_and(|p| p.ends_with(&format!("/{spec}")))
        }) {
            hits.retain(|m| {
                m.path
                    .as_deref()
                    .is_some_and(|p| p.ends_with(&format!("/{spec}")))
            });
        }
        match hits.len() {
            0 => {
                // Not loaded (yet): look in the process's own file system.
                let inner = Resolver {
                    root: pid_root.clone(),
                    ..self.clone()
                };
                let found = inner
                    .find(spec)
                    .map_err(|e| e.context(format!("process {pid} does not map '{spec}', and")))?;
                let path = self.prefer_plain(&join_root(&pid_root, &found), &found);
                self.finish(&path, &found, Some(false))
            }
            1 => {
                let m = hits[0];
                let shown = PathBuf::from(m.path.clone().unwrap_or_default());
                if m.deleted {
                    // The file was replaced (an upgrade) after the process
                    // mapped it; only map_files still reaches the old inode.
                    let path = self
                        .proc_root
                        .join(pid.to_string())
                        .join("map_files")
                        .join(format!("{:x}-{:x}", m.start, m.end));
                    let display = PathBuf::from(format!("{} (deleted)", shown.display()));
                    return self.finish(&path, &display, Some(true));
                }
                let path = self.prefer_plain(&join_root(&pid_root, &shown), &shown);
                self.finish(&path, &shown, Some(true))
            }
            _ => {
                let list: Vec<String> = hits
                    .iter()
                    .map(|m| m.path.clone().unwrap_or_default())
                    .collect();
                Err(Error::usage(format!(
                    "'{spec}' matches several files that process {pid} maps: {}. Give the full path of one.",
                    list.join(", ")
                )))
            }
        }
    }

    /// The plain path if it names the same file as the `/proc/PID/root`
    /// one (the usual case: same mount namespace), so `uprobe_events` shows
    /// a familiar path.
    fn prefer_plain(&self, via_root: &Path, plain: &Path) -> PathBuf {
        let here = self.under_root(plain);
        match (std::fs::metadata(via_root), std::fs::metadata(&here)) {
            (Ok(a), Ok(b)) if a.dev() == b.dev() && a.ino() == b.ino() => here,
            _ => via_root.to_path_buf(),
        }
    }

    /// Checks that `path` is an ELF file this machine can run.
    fn finish(&self, path: &Path, shown: &Path, mapped: Option<bool>) -> Result<Target> {
        let md = std::fs::metadata(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::usage(format!("{} does not exist.", shown.display()))
            } else {
                Error::io("cannot open", shown, e)
            }
        })?;
        if md.is_dir() {
            return Err(Error::usage(format!(
                "{} is a directory, not a program or library.",
                shown.display()
            )));
        }
        if !md.is_file() {
            return Err(Error::usage(format!(
                "{} is not a regular file (a device, socket or pipe?), so it has no code to probe.",
                shown.display()
            )));
        }
        let header = match ElfHeader::read(path)? {
            Some(h) => h,
            None => return Err(not_elf(path, shown)),
        };
        match header.file_type {
            2 | 3 => {}
            1 => {
                return Err(Error::usage(format!(
                    "{} is an object file (.o), not a linked program or library; probe the program it is linked into.",
                    shown.display()
                )))
            }
            4 => {
                return Err(Error::usage(format!(
                    "{} is a core dump, not a program or library.",
                    shown.display()
                )))
            }
            t => {
                return Err(Error::usage(format!(
                    "{} is an ELF file of unknown type {t}, not a program or library.",
                    shown.display()
                )))
            }
        }
        if header.arch_match() == ArchMatch::Foreign {
            return Err(Error::usage(format!(
                "{} is built for {}, but this machine runs {}: no process here can run it.",
                shown.display(),
                header.arch_name(),
                elf::machine_name(elf::NATIVE_MACHINE, elf::NATIVE_CLASS64)
            )));
        }
        if path
            .to_string_lossy()
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(Error::usage(format!(
                "the path {} contains spaces or control characters, which uprobe_events cannot take; use a symlink without them.",
                path.display()
            )));
        }
        Ok(Target {
            path: path.to_path_buf(),
            display_path: shown.to_path_buf(),
            header,
            mapped,
        })
    }
}

fn join_root(root: &Path, p: &Path) -> PathBuf {
    root.join(p.strip_prefix("/").unwrap_or(p))
}

/// Why a non-ELF file cannot be probed, with a hint from its first bytes.
fn not_elf(path: &Path, shown: &Path) -> Error {
    let head = std::fs::read(path)
        .map(|b| b.into_iter().take(64).collect::<Vec<u8>>())
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&head);
    let hint = if let Some(rest) = text.strip_prefix("#!") {
        let interp = rest.split_whitespace().next().unwrap_or("its interpreter");
        format!(" It is a script; probe its interpreter ({interp}) instead.")
    } else if text.contains("GNU ld script")
        || text.starts_with("/*")
        || text.starts_with("INPUT")
        || text.starts_with("GROUP")
    {
        " It is a linker script (as installed by -dev packages); name the versioned library instead (e.g. libc.so.6).".to_string()
    } else if head.starts_with(b"!<arch>") {
        " It is a static archive (.a); probe the program it is linked into.".to_string()
    } else {
        String::new()
    };
    Error::usage(format!(
        "{} is not an ELF file, so it has no functions to probe.{hint}",
        shown.display()
    ))
}

/// The part of a file name before the first dot (`libssl` of `libssl.so.3`).
fn stem(name: &str) -> &str {
    name.split('.').next().unwrap_or(name)
}

/// Whether a library file or soname answers to the name the user typed:
/// exactly, as a prefix up to a dot (`libc.so` → `libc.so.6`), or by stem
/// (`libssl` → `libssl.so.3`, but not `libssl3.so`).
fn lib_matches(name: &str, spec: &str) -> bool {
    if name == spec {
        return true;
    }
    if !name.contains(".so") {
        return false;
    }
    if spec.contains('.') {
        return name.starts_with(spec) && name[spec.len()..].starts_with('.');
    }
    stem(name) == spec
}

#[derive(Debug)]
struct Candidate {
    path: PathBuf,
    name: String,
    header: Option<ElfHeader>,
    id: Option<(u64, u64)>,
}

impl Candidate {
    fn new(path: PathBuf, name: String) -> Candidate {
        Candidate {
            path,
            name,
            header: None,
            id: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_names() {
        assert!(lib_matches("libc.so.6", "libc"));
        assert!(lib_matches("libc.so.6", "libc.so.6"));
        assert!(lib_matches("libc.so.6", "libc.so"));
        assert!(lib_matches("libssl.so.3", "libssl"));
        assert!(!lib_matches("libssl3.so", "libssl"));
        assert!(!lib_matches("libc.so.6", "lib"));
        assert!(!lib_matches("libcrypt.so.1", "libc"));
        assert!(!lib_matches("libssl.a", "libssl"));
        assert!(!lib_matches("libc.so.6", "libc.so.6.1"));
        assert_eq!(stem("ld-linux-x86-64.so.2"), "ld-linux-x86-64");
    }
}
