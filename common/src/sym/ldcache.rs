//! `/etc/ld.so.cache`: the dynamic linker's index of library sonames to paths.
//!
//! Written by `ldconfig`, read by `ld.so`; we read it to find `libssl.so.3`
//! when the user says `libssl`, without running `ldconfig -p`.
//!
//! Two layouts exist. The current one starts with `glibc-ld.so.cache1.1`
//! (a 48-byte header, then 24-byte entries; string offsets count from the
//! start of that header). Caches from before glibc 2.32 begin with the old
//! `ld.so-1.7.0` format (16-byte header, 12-byte entries, strings after the
//! entries) and carry the new format after it, aligned to 8 bytes; when the
//! new part is there it is the one to read.
//!
//! The cache is in the machine's byte order. Parsing never panics: every
//! offset is checked, and a damaged cache yields an error, not a crash.

use std::path::Path;

use crate::base::error::{Error, Result};

const OLD_MAGIC: &[u8] = b"ld.so-1.7.0";
const NEW_MAGIC: &[u8] = b"glibc-ld.so.cache1.";
const NEW_HEADER: usize = 48;
const NEW_ENTRY: usize = 24;
const OLD_HEADER: usize = 16;
const OLD_ENTRY: usize = 12;

/// One library in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdCacheEntry {
    /// The soname (`libssl.so.3`).
    pub soname: String,
    /// Where it is (`/usr/lib/x86_64-linux-gnu/libssl.so.3`).
    pub path: String,
    /// ldconfig's flags: the low byte is the type (3 = ELF libc6), the
    /// next the ABI (0x0300 x86-64, 0x0800 x32, 0x0a00 AArch64, 0 for the
    /// 32-bit base ABIs).
    pub flags: i32,
    /// Hardware-capability bits; nonzero for `glibc-hwcaps/` variants.
    pub hwcap: u64,
}

/// The parsed cache, entries in file order (the dynamic linker's
/// preference order).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LdCache {
    /// All entries.
    pub entries: Vec<LdCacheEntry>,
}

impl LdCache {
    /// Reads the cache at `path`; `Ok(None)` if there is none (some
    /// distributions and containers have no cache).
    pub fn load(path: &Path) -> Result<Option<LdCache>> {
        match std::fs::read(path) {
            Ok(bytes) => LdCache::parse(&bytes)
                .map(Some)
                .map_err(|e| e.context(format!("{}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("cannot read", path, e)),
        }
    }

    /// Parses a cache image in either layout.
    pub fn parse(bytes: &[u8]) -> Result<LdCache> {
        LdCache::parse_matching(bytes, |_| true)
    }

    /// Like [`LdCache::load`], keeping only entries whose soname passes
    /// `keep`: looking one library up then costs no allocation per entry.
    pub fn load_matching(path: &Path, keep: impl Fn(&str) -> bool) -> Result<Option<LdCache>> {
        match std::fs::read(path) {
            Ok(bytes) => LdCache::parse_matching(&bytes, keep)
                .map(Some)
                .map_err(|e| e.context(format!("{}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("cannot read", path, e)),
        }
    }

    /// Like [`LdCache::parse`], keeping only entries whose soname passes
    /// `keep`.
    pub fn parse_matching(bytes: &[u8], keep: impl Fn(&str) -> bool) -> Result<LdCache> {
        let keep = &keep;
        if bytes.starts_with(NEW_MAGIC) {
            return parse_new(bytes, 0, keep);
        }
        if bytes.starts_with(OLD_MAGIC) {
            let nlibs =
                u32_at(bytes, 12).ok_or_else(|| corrupt("the header is truncated"))? as usize;
            let entries_end = nlibs
                .checked_mul(OLD_ENTRY)
                .and_then(|n| n.checked_add(OLD_HEADER))
                .ok_or_else(|| corrupt("the entry count is impossible"))?;
            let new_start = entries_end.checked_add(7).map(|n| n & !7);
            if let Some(start) = new_start {
                if bytes.get(start..).is_some_and(|b| b.starts_with(NEW_MAGIC)) {
                    return parse_new(bytes, start, keep);
                }
            }
            return parse_old(bytes, nlibs, entries_end, keep);
        }
        Err(corrupt(
            "it does not start with a known ld.so.cache signature",
        ))
    }
}

fn corrupt(why: &str) -> Error {
    Error::usage(format!(
        "the dynamic linker's cache is damaged or of an unknown format ({why}); running ldconfig as root rebuilds it"
    ))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    let s = b.get(at..at.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Some(u64::from_ne_bytes(a))
}

/// A NUL-terminated string at `base + off`.
fn str_at(b: &[u8], base: usize, off: u32) -> Option<&str> {
    let start = base.checked_add(off as usize)?;
    let tail = b.get(start..)?;
    let end = tail.iter().position(|&c| c == 0)?;
    // Sonames and paths are ASCII; an entry that is not UTF-8 cannot be
    // what the user typed.
    std::str::from_utf8(&tail[..end]).ok()
}

type Keep<'a> = &'a dyn Fn(&str) -> bool;

fn parse_new(b: &[u8], start: usize, keep: Keep) -> Result<LdCache> {
    let nlibs = u32_at(b, start + 20).ok_or_else(|| corrupt("the header is truncated"))? as usize;
    let first = start + NEW_HEADER;
    let end = nlibs
        .checked_mul(NEW_ENTRY)
        .and_then(|n| n.checked_add(first))
        .filter(|&e| e <= b.len())
        .ok_or_else(|| corrupt("it lists more entries than it holds"))?;
    let mut entries = Vec::new();
    for at in (first..end).step_by(NEW_ENTRY) {
        let (Some(flags), Some(key), Some(value), Some(hwcap)) = (
            u32_at(b, at),
            u32_at(b, at + 4),
            u32_at(b, at + 8),
            u64_at(b, at + 16),
        ) else {
            break;
        };
        // Entries whose strings point outside the file are skipped, not fatal:
        // the rest of the cache is still useful.
        let Some(soname) = str_at(b, start, key).filter(|s| keep(s)) else {
            continue;
        };
        if let Some(path) = str_at(b, start, value) {
            entries.push(LdCacheEntry {
                soname: soname.to_string(),
                path: path.to_string(),
                flags: flags as i32,
                hwcap,
            });
        }
    }
    Ok(LdCache { entries })
}

fn parse_old(b: &[u8], nlibs: usize, strings: usize, keep: Keep) -> Result<LdCache> {
    if strings > b.len() {
        return Err(corrupt("it lists more entries than it holds"));
    }
    let mut entries = Vec::new();
    for i in 0..nlibs {
        let at = OLD_HEADER + i * OLD_ENTRY;
        let (Some(flags), Some(key), Some(value)) =
            (u32_at(b, at), u32_at(b, at + 4), u32_at(b, at + 8))
        else {
            break;
        };
        let Some(soname) = str_at(b, strings, key).filter(|s| keep(s)) else {
            continue;
        };
        if let Some(path) = str_at(b, strings, value) {
            entries.push(LdCacheEntry {
                soname: soname.to_string(),
                path: path.to_string(),
                flags: flags as i32,
                hwcap: 0,
            });
        }
    }
    Ok(LdCache { entries })
}

/// Builds cache images, for tests of the parser and of target resolution.
#[cfg(test)]
pub(crate) mod build {
    /// A new-format cache holding `(soname, path, flags)` entries.
    pub(crate) fn new_format(entries: &[(&str, &str, i32)]) -> Vec<u8> {
        let mut strings = Vec::new();
        let strings_at = super::NEW_HEADER + entries.len() * super::NEW_ENTRY;
        let mut offs = Vec::new();
        for (so, path, _) in entries {
            let k = strings_at + strings.len();
            strings.extend_from_slice(so.as_bytes());
            strings.push(0);
            let v = strings_at + strings.len();
            strings.extend_from_slice(path.as_bytes());
            strings.push(0);
            offs.push((k as u32, v as u32));
        }
        let mut out = Vec::new();
        out.extend_from_slice(b"glibc-ld.so.cache1.1");
        out.extend_from_slice(&(entries.len() as u32).to_ne_bytes());
        out.extend_from_slice(&(strings.len() as u32).to_ne_bytes());
        out.resize(super::NEW_HEADER, 0);
        for ((_, _, flags), (k, v)) in entries.iter().zip(&offs) {
            out.extend_from_slice(&flags.to_ne_bytes());
            out.extend_from_slice(&k.to_ne_bytes());
            out.extend_from_slice(&v.to_ne_bytes());
            out.extend_from_slice(&0u32.to_ne_bytes());
            out.extend_from_slice(&0u64.to_ne_bytes());
        }
        out.extend_from_slice(&strings);
        out
    }

    /// An old-format cache, optionally followed by the new format (as
    /// ldconfig wrote them in compatibility mode).
    pub(crate) fn old_format(entries: &[(&str, &str, i32)], with_new: bool) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(b"ld.so-1.7.0");
        out.push(0);
        out.extend_from_slice(&(entries.len() as u32).to_ne_bytes());
        let strings_at = out.len() + entries.len() * super::OLD_ENTRY;
        let new_part = if with_new {
            let pad = ((strings_at + 7) & !7) - strings_at;
            let mut n = vec![0u8; pad];
            n.extend_from_slice(&new_format(entries));
            n
        } else {
            Vec::new()
        };
        let mut strings = new_part.clone();
        let mut offs = Vec::new();
        for (so, path, _) in entries {
            let k = strings.len();
            strings.extend_from_slice(format!("old-{so}").as_bytes());
            strings.push(0);
            let v = strings.len();
            strings.extend_from_slice(path.as_bytes());
            strings.push(0);
            offs.push((k as u32, v as u32));
        }
        for ((_, _, flags), (k, v)) in entries.iter().zip(&offs) {
            out.extend_from_slice(&flags.to_ne_bytes());
            out.extend_from_slice(&k.to_ne_bytes());
            out.extend_from_slice(&v.to_ne_bytes());
        }
        out.extend_from_slice(&strings);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENTRIES: &[(&str, &str, i32)] = &[
        (
            "libssl.so.3",
            "/usr/lib/x86_64-linux-gnu/libssl.so.3",
            0x303,
        ),
        ("libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6", 0x303),
        ("libc.so.6", "/lib32/libc.so.6", 0x3),
    ];

    #[test]
    fn new_format() {
        let c = LdCache::parse(&build::new_format(ENTRIES)).unwrap();
        assert_eq!(c.entries.len(), 3);
        assert_eq!(c.entries[0].soname, "libssl.so.3");
        assert_eq!(c.entries[2].path, "/lib32/libc.so.6");
        assert_eq!(c.entries[1].flags, 0x303);
    }

    #[test]
    fn old_format_alone_and_with_new() {
        let c = LdCache::parse(&build::old_format(ENTRIES, false)).unwrap();
        assert_eq!(c.entries.len(), 3);
        assert_eq!(c.entries[0].soname, "old-libssl.so.3");
        assert_eq!(c.entries[1].path, "/lib/x86_64-linux-gnu/libc.so.6");
        let c = LdCache::parse(&build::old_format(ENTRIES, true)).unwrap();
        assert_eq!(c.entries[0].soname, "libssl.so.3", "the new part wins");
        assert_eq!(c.entries.len(), 3);
    }

    #[test]
    fn damaged_caches() {
        assert!(LdCache::parse(b"").is_err());
        assert!(LdCache::parse(b"not a cache at all").is_err());
        let mut b = build::new_format(ENTRIES);
        b[20..24].copy_from_slice(&1000u32.to_ne_bytes());
        assert!(LdCache::parse(&b).is_err());
        let b = build::new_format(ENTRIES);
        let c = LdCache::parse(&b[..b.len() - 5]).unwrap();
        assert_eq!(
            c.entries.len(),
            2,
            "the entry whose string is cut is dropped"
        );
    }

    #[test]
    fn this_machines_cache() {
        let Some(c) = LdCache::load(Path::new("/etc/ld.so.cache")).unwrap() else {
            eprintln!("skipping: no /etc/ld.so.cache on this machine");
            return;
        };
        assert!(c.entries.iter().any(|e| e.soname == "libc.so.6"), "{c:?}");
        assert_eq!(
            LdCache::load(Path::new("/nonexistent/ld.so.cache")).unwrap(),
            None
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        #[test]
        fn never_panics_on_garbage(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            let _ = LdCache::parse(&bytes);
        }

        #[test]
        fn never_panics_with_valid_magic(tail in proptest::collection::vec(proptest::num::u8::ANY, 0..600), old in proptest::bool::ANY) {
            let mut b = if old { b"ld.so-1.7.0\0".to_vec() } else { b"glibc-ld.so.cache1.1".to_vec() };
            b.extend_from_slice(&tail);
            let _ = LdCache::parse(&b);
        }

        #[test]
        fn never_panics_on_damaged_real_cache(cut in 0usize..40000, flips in proptest::collection::vec((0usize..40000, 0u8..8), 0..8)) {
            let Ok(real) = std::fs::read("/etc/ld.so.cache") else { return Ok(()); };
            let mut b = real[..cut.min(real.len())].to_vec();
            for (at, bit) in flips {
                if !b.is_empty() {
                    let i = at % b.len();
                    b[i] ^= 1 << bit;
                }
            }
            let _ = LdCache::parse(&b);
        }
    }
}
