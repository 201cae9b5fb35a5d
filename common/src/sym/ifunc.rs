//! Explaining GNU indirect functions (IFUNCs) to someone who tried to probe one.
//!
//! `strlen`, `memcpy` and friends in glibc are IFUNCs: the symbol's address
//! is a *resolver* that the dynamic linker calls once per process to choose
//! an implementation for the CPU (`__strlen_avx2`, `__strlen_evex`, ...).
//! A probe on the symbol traces the resolver: perf-tools' `uprobe p:libc:strlen`
//! saw 2 events for 100 000 calls. We refuse it and say what to probe:
//!
//! 1. If this process has the same file loaded (libc always is), ask the
//!    dynamic linker (`dlsym`) which implementation it chose: it runs the
//!    same resolver on the same CPU as the traced programs will.
//! 2. Otherwise name the implementations in the file by prefix, ranked by
//!    the CPU features in `/proc/cpuinfo`.
//!
//! `gettimeofday`, `time` and `clock_gettime` are IFUNCs too, whose
//! resolver picks the kernel's vDSO where there is one: code with no file
//! behind it, which uprobes cannot reach. That is said plainly.

use super::elf::{ElfFile, Symbol, SymbolKind};
use super::maps;
use crate::base::error::Error;

/// The implementation this process's dynamic linker chose for an IFUNC.
struct Chosen {
    vaddr: u64,
    offset: u64,
    name: Option<String>,
}

/// What the dynamic linker of this process bound an IFUNC to.
enum Here {
    /// Code in the same file.
    File(Chosen),
    /// A function of the kernel's vDSO (its name, if `dladdr` knows it).
    Vdso(Option<String>),
}

pub(crate) fn explain(file: &ElfFile, sym: &Symbol) -> Error {
    let shown = sym.display_name();
    let mut msg = format!(
        "{shown} in {} is an IFUNC (GNU indirect function): its address holds a resolver that the dynamic linker runs once per process to pick an implementation for the CPU, so a probe there would fire once at start-up, not on every call.",
        file.name().display()
    );
    let impls = implementations(file, sym);
    let chosen = chosen_here(file, sym);
    match &chosen {
        Some(Here::File(Chosen {
            name: Some(n),
            vaddr,
            ..
        })) => msg.push_str(&format!(
            " On this machine {shown} resolves to {n} (at {vaddr:#x}): probe {n} instead."
        )),
        Some(Here::File(Chosen { vaddr, offset, .. })) => msg.push_str(&format!(
            " On this machine {shown} resolves to code at {vaddr:#x} (file offset {offset:#x}) that has no symbol in this file: probe the address {vaddr:#x} instead."
        )),
        Some(Here::Vdso(n)) => {
            let n = n.as_deref().map(|n| format!(" ({n})")).unwrap_or_default();
            msg.push_str(&format!(
                " On this machine {shown} resolves to the kernel's vDSO{n}, code the kernel maps into every process with no file behind it: uprobes cannot trace it, and its calls make no system call. Probe the functions that call {shown} instead."
            ));
        }
        None => {}
    }
    if !impls.is_empty() {
        let names: Vec<String> = impls.iter().map(|s| s.display_name()).collect();
        let which = if matches!(chosen, Some(Here::Vdso(_))) {
            "Implementations in this file (used only without a vDSO)"
        } else {
            "Implementations in this file"
        };
        msg.push_str(&format!(" {which}: {}.", names.join(", ")));
        if chosen.is_none() {
            if let Some(best) = likely_for_cpu(&impls, &cpu_flags()) {
                msg.push_str(&format!(
                    " Judging by this CPU's features (/proc/cpuinfo), it likely uses {best}."
                ));
            }
        }
    } else if !file.has_full_symbols() {
        msg.push_str(&format!(
            " The implementations (usually local functions named like __{}_avx2 or __{}_sse2) have no symbols here because the file is stripped; install its debug symbols (the -dbg or -dbgsym package) to see their names.",
            sym.name, sym.name
        ));
    }
    msg.push_str(" Use -F to probe the resolver anyway.");
    Error::usage(msg)
}

/// Functions in the same file named like implementations of `sym`
/// (`__strlen_avx2`, `strlen_sse2`), the resolver itself excluded.
fn implementations<'a>(file: &'a ElfFile, sym: &Symbol) -> Vec<&'a Symbol> {
    let base = sym.name.trim_start_matches('_');
    if base.is_empty() {
        return Vec::new();
    }
    let mut out: Vec<&Symbol> = file
        .symbols()
        .filter(|s| s.kind == SymbolKind::Function && s.vaddr != sym.vaddr)
        .filter(|s| {
            s.name
                .trim_start_matches('_')
                .strip_prefix(base)
                .is_some_and(|rest| rest.starts_with('_') && rest.len() > 1)
        })
        .filter(|s| !s.name.contains("resolver") && !s.name.contains('.'))
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out.dedup_by(|a, b| a.name == b.name);
    out
}

/// Asks this process's dynamic linker which implementation it bound `sym`
/// to, when this process has the same file (same device and inode) mapped.
fn chosen_here(file: &ElfFile, sym: &Symbol) -> Option<Here> {
    let (major, minor, ino) = file.file_id()?;
    let own = maps::read_maps(std::path::Path::new("/proc"), None).ok()?;
    let mapped = own
        .iter()
        .find(|m| m.inode == ino && m.dev_major == major && m.dev_minor == minor && !m.deleted)?;
    let path = std::ffi::CString::new(mapped.path.clone()?).ok()?;
    let name = std::ffi::CString::new(sym.name.as_str()).ok()?;
    // SAFETY: RTLD_NOLOAD only looks the object up (it runs no constructors
    // and maps nothing); the handle is closed again below. dlsym on an IFUNC
    // returns the resolved implementation's address.
    let addr = unsafe {
        let handle = libc::dlopen(path.as_ptr(), libc::RTLD_LAZY | libc::RTLD_NOLOAD);
        if handle.is_null() {
            return None;
        }
        let p = match (&sym.version, sym.default_version) {
            (Some(v), false) => {
                let ver = std::ffi::CString::new(v.as_bytes()).ok();
                match ver {
                    Some(ver) => libc::dlvsym(handle, name.as_ptr(), ver.as_ptr()),
                    None => std::ptr::null_mut(),
                }
            }
            _ => libc::dlsym(handle, name.as_ptr()),
        };
        libc::dlclose(handle);
        p as u64
    };
    if addr == 0 {
        return None;
    }
    let m = own.iter().find(|m| m.start <= addr && addr < m.end)?;
    if m.path.as_deref() == Some("[vdso]") {
        return Some(Here::Vdso(symbol_name_at(addr)));
    }
    if m.inode != ino || m.dev_major != major || m.dev_minor != minor {
        return None;
    }
    let offset = m.file_offset(addr);
    let vaddr = file.offset_to_vaddr(offset)?;
    if vaddr == sym.vaddr {
        return None;
    }
    let name = file
        .vaddr_to_symbol(vaddr)
        .filter(|(_, off)| *off == 0)
        .map(|(s, _)| s.display_name());
    Some(Here::File(Chosen {
        vaddr,
        offset,
        name,
    }))
}

/// The dynamic symbol at exactly `addr` in this process, as `dladdr` knows it.
fn symbol_name_at(addr: u64) -> Option<String> {
    // SAFETY: dladdr only reads the dynamic linker's tables and fills `info`;
    // dli_sname, when set, points at a NUL-terminated string of a loaded
    // object, copied out at once.
    unsafe {
        let mut info: libc::Dl_info = std::mem::zeroed();
        if libc::dladdr(addr as *const libc::c_void, &mut info) == 0
            || info.dli_sname.is_null()
            || info.dli_saddr as u64 != addr
        {
            return None;
        }
        Some(
            std::ffi::CStr::from_ptr(info.dli_sname)
                .to_string_lossy()
                .into_owned(),
        )
    }
}

/// The CPU flags of the first processor in `/proc/cpuinfo`.
fn cpu_flags() -> Vec<String> {
    let text = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with("flags") || l.starts_with("Features"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, f)| f.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

/// The implementation glibc's selection logic would most likely pick, by
/// the instruction-set suffix of its name and the CPU's flags.
fn likely_for_cpu(impls: &[&Symbol], flags: &[String]) -> Option<String> {
    let has = |f: &str| flags.iter().any(|x| x == f);
    // Best first; each with the flags it needs.
    let tiers: [(&str, &[&str]); 9] = [
        ("evex512", &["avx512f", "avx512bw", "avx512vl", "bmi2"]),
        ("avx512", &["avx512f", "avx512bw", "avx512vl"]),
        ("evex", &["avx512vl", "avx512bw", "bmi2"]),
        ("avx2", &["avx2", "bmi2"]),
        ("avx", &["avx"]),
        ("sse4_2", &["sse4_2"]),
        ("sse42", &["sse4_2"]),
        ("ssse3", &["ssse3"]),
        ("sse2", &["sse2"]),
    ];
    if flags.is_empty() {
        return None;
    }
    for (suffix, needs) in tiers {
        if !needs.iter().all(|f| has(f)) {
            continue;
        }
        let pick = impls
            .iter()
            .filter(|s| {
                let n = &s.name;
                n.ends_with(&format!("_{suffix}")) || n.contains(&format!("_{suffix}_"))
            })
            // Prefer the plain variant over _rtm / _unaligned ones.
            .min_by_key(|s| (s.name.contains("rtm"), s.name.len()));
        if let Some(s) = pick {
            return Some(s.display_name());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_tiers() {
        let flags = |s: &str| s.split(' ').map(str::to_string).collect::<Vec<_>>();
        let mk = |n: &str| super::super::elf::tests_support::function(n, 0x1000);
        let a = mk("__strlen_avx2");
        let b = mk("__strlen_avx2_rtm");
        let c = mk("__strlen_evex");
        let d = mk("__strlen_sse2");
        let all = [&a, &b, &c, &d];
        assert_eq!(
            likely_for_cpu(&all, &flags("sse2 avx2 bmi2 avx512vl avx512bw")).as_deref(),
            Some("__strlen_evex")
        );
        assert_eq!(
            likely_for_cpu(&all, &flags("sse2 avx2 bmi2")).as_deref(),
            Some("__strlen_avx2")
        );
        assert_eq!(
            likely_for_cpu(&all, &flags("sse2 ssse3")).as_deref(),
            Some("__strlen_sse2")
        );
        assert_eq!(likely_for_cpu(&all, &[]), None);
    }
}
