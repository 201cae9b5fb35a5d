//! Finding (or mounting) tracefs, and reading and writing its files.
//!
//! Tracefs is found in `/proc/self/mountinfo`. On a fresh machine it is often
//! not mounted at all (`/sys/kernel/tracing` is an empty directory), so we
//! mount it there, falling back to `<debugfs>/tracing`. Tracefs stays mounted
//! afterwards, as with perf and trace-cmd: unmounting it could break another
//! user's run. `FTRACE_TOOLS_TRACEFS` points the suite elsewhere (tests).
//!
//! All writes go through [`Tracefs::write`] (truncating, for settings in our
//! own instance) or [`Tracefs::append`] (for the global dynamic-event files,
//! where truncating would delete everybody's probes).

use crate::base::error::{Error, ErrorKind, IoContext, Result};
use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The environment variable that overrides where tracefs is.
pub const TRACEFS_ENV: &str = "FTRACE_TOOLS_TRACEFS";

/// Where the suite mounts tracefs when it is not mounted.
pub const DEFAULT_MOUNT: &str = "/sys/kernel/tracing";
const DEBUGFS_MOUNT: &str = "/sys/kernel/debug";

/// A handle on the tracefs mount. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Tracefs {
    root: PathBuf,
}

/// One mount from `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// The file-system type (`tracefs`, `debugfs`, ...).
    pub fstype: String,
}

/// Parses the text of `/proc/self/mountinfo`.
///
/// Each line is `id parent maj:min root mountpoint options [optional...] -
/// fstype source superoptions`; the mount point has spaces and other bytes
/// escaped as octal (`\040`).
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    let mut mounts = Vec::new();
    for line in text.lines() {
        let mut parts = line.split(' ');
        let mount_point = match parts.nth(4) {
            Some(p) => unescape_octal(p),
            None => continue,
        };
        // Skip optional fields up to the "-" separator.
        let mut rest = parts.skip_while(|p| *p != "-");
        if rest.next().is_none() {
            continue;
        }
        if let Some(fstype) = rest.next() {
            mounts.push(Mount {
                mount_point: PathBuf::from(mount_point),
                fstype: fstype.to_string(),
            });
        }
    }
    mounts
}

fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            let oct = &b[i + 1..i + 4];
            if oct.iter().all(|c| (b'0'..=b'7').contains(c)) {
                let v = (oct[0] - b'0') as u32 * 64
                    + (oct[1] - b'0') as u32 * 8
                    + (oct[2] - b'0') as u32;
                if v <= 255 {
                    out.push(v as u8);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether the process runs with an effective UID of 0.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn find_mounted(mounts: &[Mount]) -> Option<PathBuf> {
    let tracefs: Vec<&Mount> = mounts.iter().filter(|m| m.fstype == "tracefs").collect();
    tracefs
        .iter()
        .find(|m| m.mount_point == Path::new(DEFAULT_MOUNT))
        .or_else(|| tracefs.first())
        .map(|m| m.mount_point.clone())
}

fn mount_fs(fstype: &str, target: &Path) -> io::Result<()> {
    let src = CString::new("nodev").expect("no NUL");
    let fs = CString::new(fstype).expect("no NUL");
    let tgt = CString::new(target.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: all pointers are valid NUL-terminated strings for the call.
    let rc = unsafe { libc::mount(src.as_ptr(), tgt.as_ptr(), fs.as_ptr(), 0, std::ptr::null()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

impl Tracefs {
    /// Uses tracefs at `root` without any checks (tests, and the
    /// `FTRACE_TOOLS_TRACEFS` override).
    pub fn at(root: impl Into<PathBuf>) -> Tracefs {
        Tracefs { root: root.into() }
    }

    /// Finds tracefs, mounting it if needed. Needs root.
    pub fn open() -> Result<Tracefs> {
        let (found, mounts) = Tracefs::look()?;
        if let Some(tfs) = found {
            return Ok(tfs);
        }
        // Not mounted: mount it where the kernel documents it.
        let default = Path::new(DEFAULT_MOUNT);
        let first_err = match mount_fs("tracefs", default) {
            Ok(()) => {
                return Ok(Tracefs {
                    root: default.into(),
                })
            }
            Err(e) => e,
        };
        // Older layouts: tracefs under debugfs (accessing it automounts).
        let debugfs = match mounts.iter().find(|m| m.fstype == "debugfs") {
            Some(m) => Some(m.mount_point.clone()),
            None => mount_fs("debugfs", Path::new(DEBUGFS_MOUNT))
                .ok()
                .map(|_| PathBuf::from(DEBUGFS_MOUNT)),
        };
        if let Some(d) = debugfs {
            let root = d.join("tracing");
            if root.join("events").is_dir() {
                return Ok(Tracefs { root });
            }
        }
        Err(Error::unsupported(format!(
            "cannot find or mount tracefs: mount -t tracefs nodev {DEFAULT_MOUNT} failed ({first_err}); \
             does this kernel have CONFIG_FTRACE and CONFIG_TRACING?"
        )))
    }

    /// Finds tracefs where it is mounted, without mounting it: `None` when
    /// it is not mounted. Needs root, as [`Tracefs::open`].
    pub fn find() -> Result<Option<Tracefs>> {
        Ok(Tracefs::look()?.0)
    }

    /// The override, else the mounted tracefs, with the mounts read.
    fn look() -> Result<(Option<Tracefs>, Vec<Mount>)> {
        if let Some(p) = std::env::var_os(TRACEFS_ENV) {
            let root = PathBuf::from(p);
            if !root.join("events").is_dir() {
                return Err(Error::usage(format!(
                    "{TRACEFS_ENV}={} is not a tracefs directory (it has no events/)",
                    root.display()
                )));
            }
            return Ok((Some(Tracefs { root }), Vec::new()));
        }
        if !is_root() {
            return Err(Error::new(
                ErrorKind::Permission,
                "tracing needs root: tracefs can only be changed by root (try sudo)",
            ));
        }
        let info = fs::read_to_string("/proc/self/mountinfo")
            .ctx("read", Path::new("/proc/self/mountinfo"))?;
        let mounts = parse_mountinfo(&info);
        Ok((find_mounted(&mounts).map(|root| Tracefs { root }), mounts))
    }

    /// The directory tracefs is mounted on.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The absolute path of a tracefs file.
    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.root.join(rel)
    }

    /// Whether a tracefs file or directory exists.
    pub fn exists(&self, rel: impl AsRef<Path>) -> bool {
        self.path(rel).exists()
    }

    /// Reads a whole tracefs file as text.
    pub fn read(&self, rel: impl AsRef<Path>) -> Result<String> {
        read_text(&self.path(rel))
    }

    /// An event's id (`events/SYSTEM/EVENT/id`): the `common_type` of its
    /// records in the binary buffer.
    pub fn event_id(&self, system: &str, event: &str) -> Result<u16> {
        self.read(format!("events/{system}/{event}/id"))?
            .trim()
            .parse()
            .map_err(|_| Error::new(ErrorKind::Io, format!("bad id of {system}:{event}")))
    }

    /// Writes `value` to a settings file, truncating it (for files of our
    /// own instance; never use this on a global dynamic-event file).
    pub fn write(&self, rel: impl AsRef<Path>, value: &str) -> Result<()> {
        write_file(&self.path(rel), value, false)
    }

    /// Appends `value` to a file without truncating it (for `uprobe_events`,
    /// `kprobe_events` and `dynamic_events`, which are global).
    pub fn append(&self, rel: impl AsRef<Path>, value: &str) -> Result<()> {
        write_file(&self.path(rel), value, true)
    }
}

/// Reads a whole file as (lossy) text, with the path in any error.
///
/// Reads in large chunks: some tracefs files (`events/header_page`) answer
/// only the first read correctly, so a small first read (as
/// `read_to_end` makes for files that report size 0) would truncate them.
pub fn read_text(path: &Path) -> Result<String> {
    let mut f = File::open(path).ctx("open", path)?;
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match f.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io("read", path, e)),
        }
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Writes `value` to `path` in one `write()` call, as tracefs requires.
pub fn write_file(path: &Path, value: &str, append: bool) -> Result<()> {
    write_raw(path, value, append).map_err(|e| {
        let kind = match e.raw_os_error() {
            Some(libc::EBUSY) => ErrorKind::Busy,
            Some(libc::EACCES) | Some(libc::EPERM) => ErrorKind::Permission,
            _ => ErrorKind::Io,
        };
        Error::new(
            kind,
            format!("writing '{}' to {}: {e}", value.trim_end(), path.display()),
        )
    })
}

/// Like [`write_file`] but returns the raw `io::Error`, for callers that
/// react to particular errno values (EBUSY, EINVAL, ENOENT).
pub fn write_raw(path: &Path, value: &str, append: bool) -> io::Result<()> {
    let mut opts = OpenOptions::new();
    opts.write(true);
    if append {
        opts.append(true);
    } else {
        opts.truncate(true);
    }
    opts.custom_flags(libc::O_CLOEXEC);
    let mut f = opts.open(path)?;
    let n = f.write(value.as_bytes())?;
    if n != value.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            format!("short write ({n} of {} bytes)", value.len()),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_finds_tracefs_and_unescapes() {
        let text = "\
22 1 0:21 / /proc rw,nosuid - proc proc rw
40 25 0:12 / /sys/kernel/tracing rw,nosuid,nodev,noexec shared:18 - tracefs tracefs rw
41 25 0:13 / /mnt/my\\040dir rw - tracefs nodev rw
bad line
";
        let m = parse_mountinfo(text);
        assert_eq!(m.len(), 3);
        assert_eq!(m[1].fstype, "tracefs");
        assert_eq!(m[2].mount_point, PathBuf::from("/mnt/my dir"));
        assert_eq!(find_mounted(&m), Some(PathBuf::from("/sys/kernel/tracing")));
        assert_eq!(find_mounted(&m[2..]), Some(PathBuf::from("/mnt/my dir")));
        assert_eq!(find_mounted(&m[..1]), None);
    }

    #[test]
    fn unescape_keeps_odd_backslashes() {
        assert_eq!(unescape_octal("a\\b"), "a\\b");
        assert_eq!(unescape_octal("a\\04"), "a\\04");
        assert_eq!(unescape_octal("\\011x"), "\tx");
    }

    #[test]
    fn append_does_not_truncate_and_write_does() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        fs::write(&p, "one\n").unwrap();
        write_file(&p, "two\n", true).unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "one\ntwo\n");
        write_file(&p, "three\n", false).unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "three\n");
        let e = write_file(&dir.path().join("no/such"), "x", false).unwrap_err();
        assert!(e.message().contains("writing 'x' to"), "{}", e);
    }
}
