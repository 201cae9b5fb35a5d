//! TLS libraries' read and write functions, as `sslsniff` traces them: which
//! functions of OpenSSL, GnuTLS and NSS carry the plaintext, where their
//! libraries are, the probes that catch each call (an entry probe that
//! records the buffer pointer and a return probe, paired per thread by
//! [`crate::probes::pair`]), and bcc's way of showing what they carried.
//!
//! The bytes are read from the process with process_vm_readv(2) when the
//! return event is read, shortly after the call returned: the buffer may
//! have been reused by then, and a process that has exited cannot be read
//! (shown as such, never as empty data).
//!
//! Parsing and formatting are pure and never panic (see the tests).

use crate::lifecycle::dynevent::{ProbeDef, ProbeKind};
use crate::probes::pair::{self, PairPlan};
use crate::sym::elf::{ElfFile, Resolved};
use crate::sym::target::{resolve_target, Target};
use crate::{Error, Result};
use std::collections::HashSet;
use std::fmt::Write;
use std::path::PathBuf;

/// A TLS library family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lib {
    /// OpenSSL's libssl.
    OpenSsl,
    /// GnuTLS.
    GnuTls,
    /// NSS, whose I/O goes through NSPR's libnspr4.
    Nss,
}

/// Which way the data went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Plaintext the program received.
    Read,
    /// Plaintext the program sent.
    Write,
    /// A completed handshake (no data).
    Handshake,
}

impl Dir {
    /// bcc's FUNC column.
    pub fn label(self) -> &'static str {
        match self {
            Dir::Read => "READ/RECV",
            Dir::Write => "WRITE/SEND",
            Dir::Handshake => "HANDSHAKE",
        }
    }
}

/// Where a call says how many bytes it moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LenFrom {
    /// The return value, an int (negative or 0: nothing moved).
    RetInt,
    /// The return value, an ssize_t.
    RetLong,
    /// `*arg4` (a size_t), when the call returned 1 (`SSL_read_ex`).
    OutArg4,
}

/// One traced function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hook {
    /// Its symbol.
    pub func: &'static str,
    /// Which way.
    pub dir: Dir,
    /// Its length.
    pub len: LenFrom,
}

const fn hook(func: &'static str, dir: Dir, len: LenFrom) -> Hook {
    Hook { func, dir, len }
}

const OPENSSL: &[Hook] = &[
    hook("SSL_read", Dir::Read, LenFrom::RetInt),
    hook("SSL_write", Dir::Write, LenFrom::RetInt),
    hook("SSL_read_ex", Dir::Read, LenFrom::OutArg4),
    hook("SSL_write_ex", Dir::Write, LenFrom::OutArg4),
];
const OPENSSL_HANDSHAKE: Hook = hook("SSL_do_handshake", Dir::Handshake, LenFrom::RetInt);
const GNUTLS: &[Hook] = &[
    hook("gnutls_record_recv", Dir::Read, LenFrom::RetLong),
    hook("gnutls_record_send", Dir::Write, LenFrom::RetLong),
];
const NSS: &[Hook] = &[
    hook("PR_Read", Dir::Read, LenFrom::RetInt),
    hook("PR_Write", Dir::Write, LenFrom::RetInt),
    hook("PR_Recv", Dir::Read, LenFrom::RetInt),
    hook("PR_Send", Dir::Write, LenFrom::RetInt),
];

impl Lib {
    /// Every family.
    pub const ALL: [Lib; 3] = [Lib::OpenSsl, Lib::GnuTls, Lib::Nss];

    /// The TYPE of `--extra-lib TYPE:PATH`.
    pub fn name(self) -> &'static str {
        match self {
            Lib::OpenSsl => "openssl",
            Lib::GnuTls => "gnutls",
            Lib::Nss => "nss",
        }
    }

    /// The library looked up on the system (as uprobe's TARGET).
    pub fn library(self) -> &'static str {
        match self {
            Lib::OpenSsl => "libssl",
            Lib::GnuTls => "libgnutls",
            Lib::Nss => "libnspr4",
        }
    }

    /// A TYPE as given.
    pub fn parse(s: &str) -> Option<Lib> {
        Lib::ALL.into_iter().find(|l| l.name() == s)
    }

    /// The functions traced, with the handshake's where asked.
    pub fn hooks(self, handshake: bool) -> Vec<Hook> {
        let mut v = match self {
            Lib::OpenSsl => OPENSSL.to_vec(),
            Lib::GnuTls => GNUTLS.to_vec(),
            Lib::Nss => NSS.to_vec(),
        };
        if handshake && self == Lib::OpenSsl {
            v.push(OPENSSL_HANDSHAKE);
        }
        v
    }
}

/// `--extra-lib TYPE:PATH`.
pub fn parse_extra(s: &str) -> std::result::Result<(Lib, String), String> {
    let bad = || {
        format!("'{s}' is not TYPE:PATH with TYPE openssl, gnutls or nss (e.g. openssl:/opt/app/lib/libssl.so.3)")
    };
    let (t, p) = s.split_once(':').ok_or_else(bad)?;
    let lib = Lib::parse(t).ok_or_else(bad)?;
    if p.is_empty() {
        return Err(bad());
    }
    Ok((lib, p.to_string()))
}

/// A library file found, with the functions it has.
#[derive(Debug)]
pub struct Found {
    /// Its family.
    pub lib: Lib,
    /// The file.
    pub target: Target,
    /// Each traced function it defines, resolved.
    pub hooks: Vec<(Hook, Resolved)>,
    /// Traced functions it lacks (an older version).
    pub missing: Vec<&'static str>,
}

/// What [`find`] found, and what it says about the rest.
#[derive(Debug, Default)]
pub struct Search {
    /// The files to probe.
    pub found: Vec<Found>,
    /// One line each: a library not installed, a function missing.
    pub notes: Vec<String>,
    /// What was looked for, for the error when nothing is found.
    pub searched: Vec<String>,
}

/// Finds the libraries of `libs` on this machine (as uprobe finds
/// `libssl`; with `pid`, the file that process maps first), the
/// `extra` files given, and, with `pid`, any other file the process maps
/// that defines a family's first function (a bundled or static copy).
pub fn find(libs: &[Lib], extra: &[(Lib, String)], pid: Option<u32>, handshake: bool) -> Search {
    let mut s = Search::default();
    let mut seen: HashSet<PathBuf> = HashSet::new();
    let add = |s: &mut Search, seen: &mut HashSet<PathBuf>, lib: Lib, target: Target| {
        if !seen.insert(target.path.clone()) {
            return;
        }
        match open(lib, target, handshake) {
            Ok(f) if f.hooks.is_empty() => s.notes.push(format!(
                "{} defines none of {}: skipped",
                f.target.display_path.display(),
                names(lib, handshake)
            )),
            Ok(f) => {
                if !f.missing.is_empty() {
                    s.notes.push(format!(
                        "{} has no {}: not traced there",
                        f.target.display_path.display(),
                        f.missing.join(", ")
                    ));
                }
                s.found.push(f);
            }
            Err(e) => s.notes.push(e.message().to_string()),
        }
    };
    for &(lib, ref path) in extra {
        s.searched.push(format!("{}:{path}", lib.name()));
        match resolve_target(path, pid) {
            Ok(t) => add(&mut s, &mut seen, lib, t),
            Err(e) => s.notes.push(e.message().to_string()),
        }
    }
    for &lib in libs {
        s.searched
            .push(format!("{} ({})", lib.library(), lib.name()));
        // Without a process: every installed version.
        let every = match pid {
            None => crate::sym::target::Resolver::system().libraries(lib.library()),
            Some(_) => Vec::new(),
        };
        if !every.is_empty() {
            for t in every {
                add(&mut s, &mut seen, lib, t);
            }
            continue;
        }
        match resolve_target(lib.library(), pid) {
            Ok(t) => add(&mut s, &mut seen, lib, t),
            Err(e) => s.notes.push(format!(
                "{} ({}): {} Skipped.",
                lib.library(),
                lib.name(),
                e.message()
            )),
        }
    }
    if let Some(pid) = pid {
        s.searched.push(format!("the files process {pid} maps"));
        let maps = crate::sym::maps::read_maps(std::path::Path::new("/proc"), Some(pid));
        let mut files: Vec<String> = maps
            .unwrap_or_default()
            .into_iter()
            .filter(|m| m.executable && m.is_file())
            .filter_map(|m| m.path)
            .collect();
        files.dedup();
        for f in files {
            let Ok(t) = resolve_target(&f, Some(pid)) else {
                continue;
            };
            if seen.contains(&t.path) {
                continue;
            }
            let Ok(elf) = ElfFile::open(&t.path) else {
                continue;
            };
            for &lib in libs {
                let first = lib.hooks(false)[0].func;
                if elf.resolve(first, false).is_ok() {
                    add(&mut s, &mut seen, lib, t.clone());
                    break;
                }
            }
        }
    }
    s
}

fn names(lib: Lib, handshake: bool) -> String {
    let v: Vec<&str> = lib.hooks(handshake).iter().map(|h| h.func).collect();
    v.join(", ")
}

/// Resolves each of the family's functions in the file.
fn open(lib: Lib, target: Target, handshake: bool) -> Result<Found> {
    let elf = ElfFile::open(&target.path)?.with_name(&target.display_path);
    let mut hooks = Vec::new();
    let mut missing = Vec::new();
    for h in lib.hooks(handshake) {
        match elf.resolve(h.func, false) {
            Ok(at) => hooks.push((h, at)),
            Err(_) => missing.push(h.func),
        }
    }
    Ok(Found {
        lib,
        target,
        hooks,
        missing,
    })
}

/// The probes of one traced function in one file.
#[derive(Debug, Clone)]
pub struct TlsProbe {
    /// The function.
    pub hook: Hook,
    /// Its family.
    pub lib: Lib,
    /// The file, as the user knows it.
    pub file: PathBuf,
    /// The entry probe: records the buffer (and `*arg4`'s address).
    pub entry: ProbeDef,
    /// The return probe: `ret=$retval:s64`.
    pub ret: ProbeDef,
    /// How the two pair.
    pub plan: PairPlan,
}

/// The return probe's field holding the return value.
pub const RET_FIELD: &str = "ret";
/// The return probe's field holding the stack pointer at the return (`_ex`
/// forms).
pub const SP_FIELD: &str = "ftt_sp";
/// The return probe's field holding the caller's frame at the return.
pub const FRAME_FIELD: &str = "ftt_frame";
const FRAME_WORDS: usize = 64;

/// `*ptr` from the caller's frame copied at the return (`sp` its address),
/// if `ptr` points into it.
pub fn from_frame(frame: &[u8], sp: u64, ptr: u64) -> Option<u64> {
    let off = usize::try_from(ptr.checked_sub(sp)?).ok()?;
    let b = frame.get(off..off.checked_add(8)?)?;
    Some(u64::from_ne_bytes(b.try_into().ok()?))
}

/// The event of all entries.
pub const ENTRY_EVENT: &str = "tls_entry";

impl Hook {
    /// The return event of this hook's kind: the functions of one kind
    /// share it (and every entry shares [`ENTRY_EVENT`]), so that the run
    /// has a handful of events however many functions and libraries it
    /// traces: the kernel synchronizes once per uprobe event when it
    /// disables it, tens of milliseconds each.
    pub fn event(&self) -> &'static str {
        match (self.dir, self.len) {
            (Dir::Handshake, _) => "tls_handshake",
            (Dir::Read, LenFrom::RetInt) => "tls_read",
            (Dir::Write, LenFrom::RetInt) => "tls_write",
            (Dir::Read, LenFrom::RetLong) => "tls_read_long",
            (Dir::Write, LenFrom::RetLong) => "tls_write_long",
            (Dir::Read, LenFrom::OutArg4) => "tls_read_ex",
            (Dir::Write, LenFrom::OutArg4) => "tls_write_ex",
        }
    }
}

/// The probes of every function found: each entry a location of
/// [`ENTRY_EVENT`] (recording `$arg2` and `$arg4`, the same for all), each
/// return a location of its kind's event ([`Hook::event`]).
pub fn plan(found: &[Found]) -> Result<Vec<TlsProbe>> {
    let mut out = Vec::new();
    for f in found {
        for (h, at) in &f.hooks {
            let args = [
                "buf=$arg2".to_string(),
                "out=$arg4".to_string(),
                format!("{RET_FIELD}=$retval:s64"),
            ];
            let plan = pair::plan_return(&args, false, &pair::uprobe_loc)?
                .ok_or_else(|| Error::usage("no $argN in a TLS probe"))?;
            let location = format!("{}:{:#x}", f.target.path.display(), at.offset);
            let entry = ProbeDef {
                kind: ProbeKind::Uprobe,
                name: ENTRY_EVENT.to_string(),
                location: location.clone(),
                args: plan.entry_args.clone(),
            };
            let mut ret = ProbeDef {
                kind: ProbeKind::Uretprobe,
                name: h.event().to_string(),
                location,
                args: plan.ret_args.clone(),
            };
            if h.len == LenFrom::OutArg4 {
                // The caller's frame as it is at the return: `*arg4` (a
                // local of the caller, as a rule) is copied by the kernel
                // right then; a read from user space later would find the
                // frame reused.
                ret.args.push(format!("{SP_FIELD}=%sp"));
                ret.args
                    .push(format!("{FRAME_FIELD}=+0(%sp):u64[{FRAME_WORDS}]"));
            }
            entry.line("ftrace_tools_check")?;
            ret.line("ftrace_tools_check")?;
            out.push(TlsProbe {
                hook: *h,
                lib: f.lib,
                file: f.target.display_path.clone(),
                entry,
                ret,
                plan,
            });
        }
    }
    Ok(out)
}

/// How many bytes a call moved, from its return value and, for the `_ex`
/// forms, the size_t it wrote (`out`, read after the return): `None` when
/// it moved nothing (an error, or 0).
pub fn moved(len: LenFrom, ret: i64, out: impl FnOnce() -> Option<u64>) -> Option<u64> {
    match len {
        LenFrom::RetInt => {
            let r = ret as i32;
            (r > 0).then_some(r as u64)
        }
        LenFrom::RetLong => (ret > 0).then_some(ret as u64),
        LenFrom::OutArg4 => {
            if ret as i32 != 1 {
                return None;
            }
            out().filter(|&n| n > 0)
        }
    }
}

/// The bytes of a call as read from the process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    /// What was read (at most the buffer size asked for).
    Bytes(Vec<u8>),
    /// The process had exited.
    Gone,
    /// The address was not mapped (any more).
    Fault,
    /// A handshake: no data.
    Nothing,
}

/// Reads `len` bytes (at most `max`) of thread `tid` (of `process`) at
/// `addr`.
pub fn read(tid: i32, process: Option<u32>, addr: u64, len: u64, max: usize) -> Data {
    let n = len.min(max as u64) as usize;
    let mut buf = vec![0u8; n];
    match read_task(tid, process, addr, &mut buf) {
        Ok(got) => {
            buf.truncate(got);
            Data::Bytes(buf)
        }
        Err(e) if e == libc::ESRCH => Data::Gone,
        Err(_) => Data::Fault,
    }
}

/// bcc's header: `FUNC TIME(s) COMM PID LEN`, with `-x` `UID TID`, with
/// `-l` `LAT(ms)`.
pub fn header(extra: bool, latency: bool) -> String {
    let mut s = format!(
        "{:<12} {:<18} {:<16} {:<7} {:<7}",
        "FUNC", "TIME(s)", "COMM", "PID", "LEN"
    );
    if extra {
        let _ = write!(s, " {:<7} {:<7}", "UID", "TID");
    }
    if latency {
        let _ = write!(s, " {:<7}", "LAT(ms)");
    }
    s.trim_end().to_string()
}

/// One call, as shown.
#[derive(Debug, Clone)]
pub struct Call {
    /// Which way.
    pub dir: Dir,
    /// Seconds since the first call shown.
    pub time: f64,
    /// The thread's name.
    pub comm: String,
    /// The process.
    pub pid: u32,
    /// The thread.
    pub tid: u32,
    /// The thread's real UID, if it could be read.
    pub uid: Option<u32>,
    /// Bytes the call moved (a handshake: its return value).
    pub len: u64,
    /// Entry to return, in ns.
    pub lat_ns: Option<u64>,
    /// The bytes.
    pub data: Data,
}

/// How calls are shown.
#[derive(Debug, Clone, Copy, Default)]
pub struct Show {
    /// `-x`: UID and TID.
    pub extra: bool,
    /// `-l`: LAT(ms).
    pub latency: bool,
    /// `--hexdump`.
    pub hexdump: bool,
}

/// A call in bcc's form: the line, then the data between `----- DATA
/// -----` and `----- END DATA -----` (with how many bytes were not shown),
/// then an empty line. A handshake is the line alone.
pub fn text(c: &Call, show: Show) -> String {
    let mut s = format!(
        "{:<12} {:<18.9} {:<16} {:<7} {:<6}",
        c.dir.label(),
        c.time,
        c.comm,
        c.pid,
        c.len
    );
    if show.extra {
        let uid = c.uid.map_or("?".to_string(), |u| u.to_string());
        let _ = write!(s, " {uid:<7} {:<7}", c.tid);
    }
    if show.latency {
        let lat = c
            .lat_ns
            .map_or("N/A".to_string(), |n| format!("{:.3}", n as f64 / 1e6));
        let _ = write!(s, " {lat:<7}");
    }
    let mut s = s.trim_end().to_string();
    let end = match &c.data {
        Data::Nothing => return s,
        Data::Bytes(b) => {
            s.push_str("\n----- DATA -----\n");
            if show.hexdump {
                hexdump(b, &mut s);
            } else {
                escape(b, &mut s);
            }
            let lost = c.len.saturating_sub(b.len() as u64);
            if lost > 0 {
                format!("----- END DATA (TRUNCATED, {lost} bytes lost) -----")
            } else {
                "----- END DATA -----".to_string()
            }
        }
        Data::Gone => {
            s.push_str("\n----- DATA -----\n");
            format!("----- END DATA (UNREADABLE: the process exited before its memory was read, {} bytes lost) -----", c.len)
        }
        Data::Fault => {
            s.push_str("\n----- DATA -----\n");
            format!(
                "----- END DATA (UNREADABLE: the buffer is no longer mapped, {} bytes lost) -----",
                c.len
            )
        }
    };
    if !s.ends_with('\n') {
        s.push('\n');
    }
    s.push_str(&end);
    s.push('\n');
    s
}

/// A call as a JSON object: `data` when the bytes are UTF-8 text (and not
/// `--hexdump`), else `data_hex`; `lost`: bytes not shown; `read`: `ok`,
/// `gone` or `fault`.
pub fn json(c: &Call, show: Show) -> serde_json::Value {
    let mut v = serde_json::json!({
        "func": c.dir.label(),
        "time": c.time,
        "comm": c.comm,
        "pid": c.pid,
        "tid": c.tid,
        "uid": c.uid,
        "len": c.len,
    });
    if show.latency {
        v["lat_ms"] = c.lat_ns.map(|n| n as f64 / 1e6).into();
    }
    match &c.data {
        Data::Bytes(b) => {
            match std::str::from_utf8(b) {
                Ok(t) if !show.hexdump => v["data"] = t.into(),
                _ => {
                    let mut h = String::new();
                    for x in b {
                        let _ = write!(h, "{x:02x}");
                    }
                    v["data_hex"] = h.into();
                }
            }
            v["lost"] = c.len.saturating_sub(b.len() as u64).into();
            v["read"] = "ok".into();
        }
        Data::Gone | Data::Fault => {
            v["lost"] = c.len.into();
            v["read"] = if c.data == Data::Gone {
                "gone"
            } else {
                "fault"
            }
            .into();
        }
        Data::Nothing => {}
    }
    v
}

/// bcc's `--hexdump`: the bytes in hex, 32 digits (16 bytes) a line (an
/// empty line for none).
pub fn hexdump(b: &[u8], out: &mut String) {
    if b.is_empty() {
        out.push('\n');
    }
    for chunk in b.chunks(16) {
        for x in chunk {
            let _ = write!(out, "{x:02x}");
        }
        out.push('\n');
    }
}

/// The bytes as text, binary safe: printable characters (UTF-8 too), tab
/// and newline as they are, `\r` for a carriage return, `\\` for a
/// backslash, every other byte as `\xNN`; then a newline, always (so
/// that the lines up to the end marker, joined by newlines, are the data).
pub fn escape(b: &[u8], out: &mut String) {
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\r' => out.push_str("\\r"),
                '\n' | '\t' => out.push(c),
                c if c.is_control() => {
                    let mut buf = [0u8; 4];
                    for x in c.encode_utf8(&mut buf).bytes() {
                        let _ = write!(out, "\\x{x:02x}");
                    }
                }
                c => out.push(c),
            }
        }
        for x in chunk.invalid() {
            let _ = write!(out, "\\x{x:02x}");
        }
    }
    out.push('\n');
}

/// The real UID and the process of each thread, kept from the moment it is
/// seen: a thread that has exited by the time its return event is read
/// still has its process, whose memory can be read. Threads made while
/// tracing are learnt from `task:task_newtask` (the creator's process for
/// `CLONE_THREAD`, else the new task's own), the others from /proc.
#[derive(Default)]
pub struct Tasks {
    known: std::collections::HashMap<i32, Option<(u32, u32)>>,
    /// `task:task_newtask`: its id, `pid` and `clone_flags` fields.
    pub newtask: Option<(
        u16,
        crate::buffer::format::Field,
        crate::buffer::format::Field,
    )>,
}

impl Tasks {
    /// (real UID, process) of thread `tid`, if known or readable now.
    pub fn get(&mut self, tid: i32) -> Option<(u32, u32)> {
        *self
            .known
            .entry(tid)
            .or_insert_with(|| task_ids(tid as u32))
    }

    /// Takes a `task_newtask` event (true), or says it is not one.
    pub fn take(&mut self, ev: &crate::buffer::reader::Event) -> bool {
        let Some((id, pid, flags)) = &self.newtask else {
            return false;
        };
        if ev.id != *id {
            return false;
        }
        let (Some(child), Some(flags)) = (pid.i64(ev.data), flags.u64(ev.data)) else {
            return true;
        };
        if let Some((uid, tgid)) = self.get(ev.pid) {
            let process = if flags & libc::CLONE_THREAD as u64 != 0 {
                tgid
            } else {
                child as u32
            };
            self.known.insert(child as i32, Some((uid, process)));
        }
        true
    }
}

/// Reads thread `tid`'s memory, or, once the thread has gone, its
/// process's.
pub fn read_task(
    tid: i32,
    process: Option<u32>,
    addr: u64,
    buf: &mut [u8],
) -> std::result::Result<usize, i32> {
    match crate::kernel::proc::read_user(tid as u32, addr, buf) {
        Err(e) if e == libc::ESRCH => match process {
            Some(p) if p != tid as u32 => crate::kernel::proc::read_user(p, addr, buf),
            _ => Err(e),
        },
        r => r,
    }
}

/// The real UID and the process (thread group) of thread `tid`, from
/// `/proc/TID/status`.
pub fn task_ids(tid: u32) -> Option<(u32, u32)> {
    let text = std::fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u32>().ok())
    };
    Some((field("Uid:")?, field("Tgid:")?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn call(data: Data, len: u64) -> Call {
        Call {
            dir: Dir::Read,
            time: 0.5,
            comm: "curl".into(),
            pid: 12915,
            tid: 12916,
            uid: Some(1000),
            len,
            lat_ns: Some(1_234_567),
            data,
        }
    }

    #[test]
    fn bcc_lines_and_markers() {
        assert_eq!(
            header(false, false),
            "FUNC         TIME(s)            COMM             PID     LEN"
        );
        assert_eq!(
            header(true, true),
            "FUNC         TIME(s)            COMM             PID     LEN     UID     TID     LAT(ms)"
        );
        let c = call(Data::Bytes(b"GET / HTTP/1.1\r\n\r\n".to_vec()), 18);
        assert_eq!(
            text(&c, Show::default()),
            "READ/RECV    0.500000000        curl             12915   18\n----- DATA -----\nGET / HTTP/1.1\\r\n\\r\n\n----- END DATA -----\n"
        );
        let c = call(Data::Bytes(b"ab\0\xff\\".to_vec()), 100);
        let t = text(
            &c,
            Show {
                extra: true,
                latency: true,
                hexdump: false,
            },
        );
        assert_eq!(
            t,
            "READ/RECV    0.500000000        curl             12915   100    1000    12916   1.235\n----- DATA -----\nab\\x00\\xff\\\\\n----- END DATA (TRUNCATED, 95 bytes lost) -----\n"
        );
        let t = text(
            &call(Data::Bytes((0u8..20).collect()), 20),
            Show {
                hexdump: true,
                ..Show::default()
            },
        );
        assert!(t.ends_with("\n----- DATA -----\n000102030405060708090a0b0c0d0e0f\n10111213\n----- END DATA -----\n"), "{t}");
        let t = text(&call(Data::Gone, 7), Show::default());
        assert!(t.contains("process exited before its memory was read, 7 bytes lost"));
        let mut h = call(Data::Nothing, 1);
        h.dir = Dir::Handshake;
        assert_eq!(
            text(&h, Show::default()),
            "HANDSHAKE    0.500000000        curl             12915   1"
        );
        let j = json(&call(Data::Bytes(b"a\0b".to_vec()), 5), Show::default());
        assert_eq!(
            (j["data"].as_str(), j["lost"].as_u64()),
            (Some("a\0b"), Some(2))
        );
        let j = json(&call(Data::Bytes(vec![0xff, 1]), 2), Show::default());
        assert_eq!(j["data_hex"], "ff01");
    }

    #[test]
    fn utf8_is_kept_and_controls_escaped() {
        let mut s = String::new();
        escape("é\u{7}x\t".as_bytes(), &mut s);
        assert_eq!(s, "é\\x07x\t\n");
    }

    #[test]
    fn out_values_come_from_the_frame() {
        let mut f = vec![0u8; 32];
        f[8..16].copy_from_slice(&77u64.to_ne_bytes());
        assert_eq!(from_frame(&f, 0x1000, 0x1008), Some(77));
        assert_eq!(from_frame(&f, 0x1000, 0x1020), None);
        assert_eq!(from_frame(&f, 0x1000, 0xff8), None);
        assert_eq!(from_frame(&f, 0x1000, u64::MAX), None);
    }

    #[test]
    fn lengths() {
        assert_eq!(moved(LenFrom::RetInt, 5, || None), Some(5));
        assert_eq!(moved(LenFrom::RetInt, 0xffff_ffff, || None), None);
        assert_eq!(moved(LenFrom::RetLong, -1, || None), None);
        assert_eq!(moved(LenFrom::OutArg4, 1, || Some(9)), Some(9));
        assert_eq!(moved(LenFrom::OutArg4, 0, || Some(9)), None);
    }

    #[test]
    fn extra_libs() {
        assert_eq!(
            parse_extra("openssl:/x/libssl.so"),
            Ok((Lib::OpenSsl, "/x/libssl.so".to_string()))
        );
        for bad in ["", "ssl:/x", "nss:", "gnutls"] {
            assert!(parse_extra(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn never_panics(b in proptest::collection::vec(any::<u8>(), 0..64), len in any::<u64>(), s in "[a-z:/]{0,12}") {
            let mut out = String::new();
            escape(&b, &mut out);
            hexdump(&b, &mut out);
            let _ = text(&call(Data::Bytes(b.clone()), len), Show { extra: true, latency: true, hexdump: false });
            let _ = parse_extra(&s);
        }
    }
}
