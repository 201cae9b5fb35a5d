//! `/proc/PID/maps`: which file backs which address range of a process.

use std::path::Path;

use crate::base::error::{Error, IoContext, Result};

/// One line of `/proc/PID/maps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapEntry {
    /// First address of the mapping.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
    /// Whether the mapping is executable (`x` in the permissions).
    pub executable: bool,
    /// File offset that `start` maps.
    pub offset: u64,
    /// Device major number of the backing file.
    pub dev_major: u32,
    /// Device minor number of the backing file.
    pub dev_minor: u32,
    /// Inode of the backing file; 0 for anonymous mappings.
    pub inode: u64,
    /// The path as the process sees it (`/usr/lib/x86_64-linux-gnu/libc.so.6`),
    /// or a pseudo-name (`[heap]`, `[vdso]`), without any ` (deleted)` suffix.
    pub path: Option<String>,
    /// The file was deleted or replaced since it was mapped (an upgrade).
    pub deleted: bool,
}

impl MapEntry {
    /// Whether a real file backs this mapping (not `[heap]`, not anonymous).
    pub fn is_file(&self) -> bool {
        self.inode != 0 && self.path.as_deref().is_some_and(|p| p.starts_with('/'))
    }

    /// The file offset that `addr` (inside this mapping) corresponds to.
    pub fn file_offset(&self, addr: u64) -> u64 {
        addr.wrapping_sub(self.start).wrapping_add(self.offset)
    }
}

/// Parses the text of a maps file; malformed lines are skipped.
pub fn parse_maps(text: &str) -> Vec<MapEntry> {
    text.lines().filter_map(parse_line).collect()
}

/// Reads and parses `/proc/PID/maps` (`pid` = None for `/proc/self`).
pub fn read_maps(proc_root: &Path, pid: Option<u32>) -> Result<Vec<MapEntry>> {
    let dir = match pid {
        Some(p) => proc_root.join(p.to_string()),
        None => proc_root.join("self"),
    };
    let path = dir.join("maps");
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(parse_maps(&text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::usage(format!(
            "no process with PID {} is running ({} does not exist).",
            pid.map(|p| p.to_string()).unwrap_or_else(|| "self".into()),
            path.display()
        ))),
        Err(e) => Err(e).ctx("cannot read", &path),
    }
}

fn parse_line(line: &str) -> Option<MapEntry> {
    let mut rest = line;
    let mut field = || -> Option<&str> {
        let r = rest.trim_start_matches(' ');
        let end = r.find(' ').unwrap_or(r.len());
        let (f, tail) = r.split_at(end);
        rest = tail;
        (!f.is_empty()).then_some(f)
    };
    let range = field()?;
    let perms = field()?;
    let offset = field()?;
    let dev = field()?;
    let inode = field()?;
    let (start, end) = range.split_once('-')?;
    let (major, minor) = dev.split_once(':')?;
    let path = rest.trim_start_matches(' ');
    let (path, deleted) = match path.strip_suffix(" (deleted)") {
        Some(p) => (p, true),
        None => (path, false),
    };
    Some(MapEntry {
        start: u64::from_str_radix(start, 16).ok()?,
        end: u64::from_str_radix(end, 16).ok()?,
        executable: perms.as_bytes().get(2) == Some(&b'x'),
        offset: u64::from_str_radix(offset, 16).ok()?,
        dev_major: u32::from_str_radix(major, 16).ok()?,
        dev_minor: u32::from_str_radix(minor, 16).ok()?,
        inode: inode.parse().ok()?,
        path: (!path.is_empty()).then(|| path.to_string()),
        deleted,
    })
}

/// Splits a `dev_t` from `stat` into the (major, minor) pair that maps shows.
pub(crate) fn dev_parts(dev: u64) -> (u32, u32) {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    (major as u32, minor as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
55d5c4a00000-55d5c4a2e000 r--p 00000000 fd:01 1234567                    /usr/bin/bash
55d5c4a2e000-55d5c4b0b000 r-xp 0002e000 fd:01 1234567                    /usr/bin/bash
7f1c2a400000-7f1c2a428000 r-xp 00028000 103:02 42  /opt/my lib/libx.so.1 (deleted)
55d5c6000000-55d5c6100000 rw-p 00000000 00:00 0                          [heap]
7ffd1a000000-7ffd1a002000 r-xp 00000000 00:00 0                          [vdso]
7f0000000000-7f0000001000 rw-p 00000000 00:00 0 
garbage line
";

    #[test]
    fn parses_lines() {
        let m = parse_maps(SAMPLE);
        assert_eq!(m.len(), 6);
        assert_eq!(m[1].start, 0x55d5c4a2e000);
        assert!(m[1].executable && !m[0].executable);
        assert_eq!(m[1].offset, 0x2e000);
        assert_eq!(
            (m[1].dev_major, m[1].dev_minor, m[1].inode),
            (0xfd, 1, 1234567)
        );
        assert_eq!(m[1].file_offset(0x55d5c4a2e010), 0x2e010);
        assert_eq!(m[2].path.as_deref(), Some("/opt/my lib/libx.so.1"));
        assert!(m[2].deleted && m[2].is_file());
        assert_eq!(m[2].dev_major, 0x103);
        assert!(!m[3].is_file() && !m[4].is_file());
        assert_eq!(m[5].path, None);
    }

    #[test]
    fn dev_numbers_match_stat() {
        use std::os::unix::fs::MetadataExt;
        let maps = read_maps(Path::new("/proc"), None).unwrap();
        let exe = maps.iter().find(|m| m.is_file()).unwrap();
        let md = std::fs::metadata(exe.path.as_ref().unwrap()).unwrap();
        assert_eq!(md.ino(), exe.inode);
        assert_eq!(dev_parts(md.dev()), (exe.dev_major, exe.dev_minor));
    }
}
