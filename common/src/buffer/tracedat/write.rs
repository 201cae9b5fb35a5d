//! Writing a run into a trace.dat file (version 6, see the module above).
//!
//! A [`Recorder`] takes the sub-buffers the kernel hands out, whole and
//! unchanged, and appends each to a spool of its CPU (an unnamed file in
//! the output's directory): the format wants each CPU's data in one piece,
//! and the header before it holds what is known only at the end (the
//! cmdlines of the tasks seen, the per-CPU statistics). [`Recorder::finish`]
//! then writes the header and moves the spools in behind it with
//! `copy_file_range` (in the kernel, or a reflink on file systems that
//! share blocks).
//!
//! While it copies a page the recorder walks its record headers (not the
//! events' fields): it counts the events and notes each new task ID, whose
//! name it takes from /proc at once, while the task most likely still
//! lives (the kernel's `saved_cmdlines` keeps only a few hundred).

use super::read::clock_of;
use super::{option, prints_symbols, MAGIC, TRAILER_MAGIC};
use crate::base::error::{IoContext, Result};
use crate::buffer::reader::Reader;
use crate::buffer::ringbuf::{Page, PageLayout};
use crate::kernel::tracefs::read_text;
use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// What a recording needs from tracefs at its end.
#[derive(Debug, Clone)]
pub struct Meta {
    /// The tracefs root (header_page, printk_formats, saved_cmdlines).
    pub tracefs: PathBuf,
    /// The directory of the buffer recorded (the run's instance, or the
    /// top level): its `set_event`, `trace_clock`, per-CPU `stats`, events.
    pub buffer: PathBuf,
    /// Include `/proc/kallsyms`: the events hold kernel addresses
    /// (functions, stacks). It is also included when a recorded event's
    /// format prints symbols, or when the buffer records stacks.
    pub kallsyms: bool,
    /// The program that writes, for the VERSION option (`tpoint 0.1.0`).
    pub writer: String,
}

/// What [`Recorder::finish`] wrote.
#[derive(Debug, Clone, Default)]
pub struct Written {
    /// The file.
    pub path: PathBuf,
    /// Events recorded.
    pub events: u64,
    /// Sub-buffers recorded.
    pub pages: u64,
    /// The file's size.
    pub bytes: u64,
}

struct Spool {
    cpu: u32,
    w: BufWriter<File>,
    size: u64,
}

/// Collects a run's sub-buffers for a trace.dat file (see the module).
pub struct Recorder {
    path: PathBuf,
    out: File,
    layout: PageLayout,
    spools: Vec<Spool>,
    /// Events recorded so far.
    pub events: u64,
    /// Sub-buffers recorded so far.
    pub pages: u64,
    comms: HashMap<i32, Option<String>>,
    last_pid: i32,
}

/// An unnamed file in `dir` (O_TMPFILE), else a named one removed at once.
fn spool_file(dir: &Path, path: &Path, cpu: u32) -> Result<File> {
    let r = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_TMPFILE | libc::O_CLOEXEC)
        .mode(0o600)
        .open(dir);
    if let Ok(f) = r {
        return Ok(f);
    }
    let name = format!(
        ".{}.cpu{cpu}.{}",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    );
    let p = dir.join(name);
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&p)
        .ctx("create a spool file", &p)?;
    let _ = std::fs::remove_file(&p);
    Ok(f)
}

impl Recorder {
    /// Creates (truncates) `path` at once, so that a path that cannot be
    /// written fails before tracing starts, and a spool per CPU beside it.
    pub fn create(path: &Path, cpus: &[u32], layout: PageLayout) -> Result<Recorder> {
        let out = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(path)
            .ctx("create", path)?;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut spools = Vec::new();
        for &cpu in cpus {
            spools.push(Spool {
                cpu,
                w: BufWriter::with_capacity(1 << 20, spool_file(&dir, path, cpu)?),
                size: 0,
            });
        }
        Ok(Recorder {
            path: path.to_path_buf(),
            out,
            layout,
            spools,
            events: 0,
            pages: 0,
            comms: HashMap::new(),
            last_pid: -1,
        })
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Adds one sub-buffer of `cpu` as the kernel handed it out.
    pub fn add_page(&mut self, cpu: u32, page: &[u8]) -> Result<()> {
        let size = self.layout.subbuf_size();
        let Some(spool) = self.spools.iter_mut().find(|s| s.cpu == cpu) else {
            return Ok(());
        };
        let n = page.len().min(size);
        spool.w.write_all(&page[..n]).ctx("write", &self.path)?;
        if n < size {
            // A short read: keep every page whole, as readers expect.
            spool
                .w
                .write_all(&vec![0u8; size - n])
                .ctx("write", &self.path)?;
        }
        spool.size += size as u64;
        self.pages += 1;
        if let Ok(p) = Page::parse(self.layout, &page[..n]) {
            for r in p {
                self.events += 1;
                let pid = r
                    .data
                    .get(4..8)
                    .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                    .unwrap_or(0);
                if pid != self.last_pid {
                    self.last_pid = pid;
                    if pid > 0 && !self.comms.contains_key(&pid) {
                        self.comms
                            .insert(pid, crate::kernel::proc::comm(pid as u32));
                    }
                }
            }
        }
        Ok(())
    }

    /// Moves every sub-buffer the reader has now into the spools; returns
    /// how many.
    pub fn pump(&mut self, reader: &mut Reader) -> Result<u64> {
        let mut err = None;
        let n = reader.drain_pages(&mut |cpu, page| {
            if err.is_none() {
                if let Err(e) = self.add_page(cpu, page) {
                    err = Some(e);
                }
            }
        })?;
        match err {
            Some(e) => Err(e),
            None => Ok(n),
        }
    }

    /// Writes the file: the header from tracefs (see [`Meta`]), then each
    /// CPU's data. Call it before the buffer's instance is removed.
    pub fn finish(mut self, meta: &Meta) -> Result<Written> {
        for s in &mut self.spools {
            s.w.flush().ctx("write", &self.path)?;
        }
        let ps = self.layout.subbuf_size() as u64;
        let ncpus = self.spools.iter().map(|s| s.cpu + 1).max().unwrap_or(1);
        let mut h = header(meta, &self.comms, ps as u32, ncpus)?;
        // The CPU table: offsets follow the header, the clock text and the
        // padding to a page.
        let clock = format!(
            "[{}]",
            clock_of(&read_text(&meta.buffer.join("trace_clock")).unwrap_or_default())
                .unwrap_or_else(|| "local".into())
        );
        let table_end = h.len() as u64 + 16 * u64::from(ncpus) + 8 + clock.len() as u64;
        let mut at = table_end.div_ceil(ps) * ps;
        let mut places = BTreeMap::new();
        for cpu in 0..ncpus {
            let size = self
                .spools
                .iter()
                .find(|s| s.cpu == cpu)
                .map(|s| s.size)
                .unwrap_or(0);
            h.extend_from_slice(&(if size > 0 { at } else { 0 }).to_ne_bytes());
            h.extend_from_slice(&size.to_ne_bytes());
            if size > 0 {
                places.insert(cpu, at);
                at = (at + size).div_ceil(ps) * ps;
            }
        }
        h.extend_from_slice(&(clock.len() as u64).to_ne_bytes());
        h.extend_from_slice(clock.as_bytes());
        h.resize(table_end.div_ceil(ps) as usize * ps as usize, 0);
        self.out.set_len(0).ctx("write", &self.path)?;
        self.out.write_all(&h).ctx("write", &self.path)?;
        for s in &mut self.spools {
            let Some(&off) = places.get(&s.cpu) else {
                continue;
            };
            let f = s.w.get_mut();
            copy_into(f, s.size, &mut self.out, off).ctx("write", &self.path)?;
        }
        let end = at.max(h.len() as u64);
        self.out.set_len(end).ctx("write", &self.path)?;
        let trailer = tgid_trailer(&meta.tracefs, &self.comms);
        if !trailer.is_empty() {
            self.out
                .seek(SeekFrom::Start(end))
                .ctx("write", &self.path)?;
            self.out.write_all(&trailer).ctx("write", &self.path)?;
            self.out
                .write_all(&(trailer.len() as u64).to_ne_bytes())
                .ctx("write", &self.path)?;
            self.out
                .write_all(&TRAILER_MAGIC)
                .ctx("write", &self.path)?;
        }
        self.out.sync_data().ctx("write", &self.path)?;
        let bytes = self
            .out
            .metadata()
            .map(|m| m.len())
            .ctx("write", &self.path)?;
        Ok(Written {
            path: self.path.clone(),
            events: self.events,
            pages: self.pages,
            bytes,
        })
    }
}

/// Copies `size` bytes of `from` (from its start) to `to` at `off`: in the
/// kernel where it can (copy_file_range), else through a buffer.
fn copy_into(from: &mut File, size: u64, to: &mut File, off: u64) -> std::io::Result<()> {
    let mut in_off: libc::loff_t = 0;
    let mut out_off: libc::loff_t = off as libc::loff_t;
    let mut left = size;
    while left > 0 {
        let chunk = left.min(1 << 30) as usize;
        // SAFETY: both descriptors are open files; the offsets are ours.
        let n = unsafe {
            libc::copy_file_range(
                from.as_raw_fd(),
                &mut in_off,
                to.as_raw_fd(),
                &mut out_off,
                chunk,
                0,
            )
        };
        if n > 0 {
            left -= n as u64;
            continue;
        }
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the spool file is shorter than written",
            ));
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        // No copy_file_range between these files (cross-device on old
        // kernels, some file systems): copy the rest ourselves.
        use std::io::Read;
        from.seek(SeekFrom::Start(in_off as u64))?;
        to.seek(SeekFrom::Start(out_off as u64))?;
        let copied = std::io::copy(&mut Read::by_ref(from).take(left), to)?;
        if copied != left {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the spool file is shorter than written",
            ));
        }
        return Ok(());
    }
    Ok(())
}

fn put_sized8(h: &mut Vec<u8>, data: &[u8]) {
    h.extend_from_slice(&(data.len() as u64).to_ne_bytes());
    h.extend_from_slice(data);
}

fn put_sized4(h: &mut Vec<u8>, data: &[u8]) {
    h.extend_from_slice(&(data.len() as u32).to_ne_bytes());
    h.extend_from_slice(data);
}

fn put_option(h: &mut Vec<u8>, id: u16, data: &[u8]) {
    h.extend_from_slice(&id.to_ne_bytes());
    h.extend_from_slice(&(data.len() as u32).to_ne_bytes());
    h.extend_from_slice(data);
}

fn cstr(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// The formats of `dir/events/SYS/*/format` (or of the events listed).
fn read_format(buffer: &Path, root: &Path, sys: &str, ev: &str) -> Option<String> {
    let rel = format!("events/{sys}/{ev}/format");
    read_text(&buffer.join(&rel))
        .or_else(|_| read_text(&root.join(&rel)))
        .ok()
}

/// The header, from the magic to the CPU count and the options, with
/// `flyrecord`: everything before the CPU table.
fn header(
    meta: &Meta,
    comms: &HashMap<i32, Option<String>>,
    ps: u32,
    ncpus: u32,
) -> Result<Vec<u8>> {
    let root = &meta.tracefs;
    let mut h = Vec::with_capacity(1 << 16);
    h.extend_from_slice(&MAGIC);
    h.extend_from_slice(b"6\0");
    h.push(u8::from(cfg!(target_endian = "big")));
    h.push(std::mem::size_of::<libc::c_long>() as u8);
    h.extend_from_slice(&ps.to_ne_bytes());
    h.extend_from_slice(b"header_page\0");
    put_sized8(
        &mut h,
        read_text(&root.join("events/header_page"))?.as_bytes(),
    );
    h.extend_from_slice(b"header_event\0");
    put_sized8(
        &mut h,
        read_text(&root.join("events/header_event"))?.as_bytes(),
    );

    // Every ftrace format, as trace-cmd stores them.
    let mut ftrace = Vec::new();
    if let Ok(rd) = std::fs::read_dir(root.join("events/ftrace")) {
        let mut names: Vec<String> = rd
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for n in names {
            if let Some(f) = read_format(&meta.buffer, root, "ftrace", &n) {
                ftrace.push(f);
            }
        }
    }
    h.extend_from_slice(&(ftrace.len() as u32).to_ne_bytes());
    for f in &ftrace {
        put_sized8(&mut h, f.as_bytes());
    }

    // The events enabled in the buffer, by system.
    let mut systems: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let set_event = read_text(&meta.buffer.join("set_event")).unwrap_or_default();
    let mut symbols = meta.kallsyms;
    for line in set_event.lines() {
        let Some((sys, ev)) = line.trim().split_once(':') else {
            continue;
        };
        if sys == "ftrace" {
            continue;
        }
        if let Some(f) = read_format(&meta.buffer, root, sys, ev) {
            symbols |= f
                .lines()
                .find_map(|l| l.trim().strip_prefix("print fmt:"))
                .is_some_and(prints_symbols);
            systems.entry(sys.to_string()).or_default().push(f);
        }
    }
    h.extend_from_slice(&(systems.len() as u32).to_ne_bytes());
    for (sys, formats) in &systems {
        h.extend_from_slice(&cstr(sys));
        h.extend_from_slice(&(formats.len() as u32).to_ne_bytes());
        for f in formats {
            put_sized8(&mut h, f.as_bytes());
        }
    }

    // Stacks are addresses too.
    symbols |= ["options/stacktrace", "options/sym-addr"].iter().any(|o| {
        read_text(&meta.buffer.join(o))
            .map(|v| v.trim() == "1")
            .unwrap_or(false)
    });
    let kallsyms = if symbols {
        std::fs::read("/proc/kallsyms").unwrap_or_default()
    } else {
        Vec::new()
    };
    put_sized4(&mut h, &kallsyms);
    let printk = std::fs::read(root.join("printk_formats")).unwrap_or_default();
    put_sized4(&mut h, &printk);

    // Names: ours (from /proc when first seen), then the kernel's.
    let mut names: BTreeMap<i32, String> = BTreeMap::new();
    for line in read_text(&root.join("saved_cmdlines"))
        .unwrap_or_default()
        .lines()
    {
        if let Some((p, c)) = line.split_once(' ') {
            if let Ok(p) = p.parse::<i32>() {
                if comms.contains_key(&p) {
                    names.insert(p, c.to_string());
                }
            }
        }
    }
    for (p, c) in comms {
        if let Some(c) = c {
            names.insert(*p, c.clone());
        }
    }
    let mut text = String::new();
    for (p, c) in &names {
        text.push_str(&format!("{p} {c}\n"));
    }
    put_sized8(&mut h, text.as_bytes());

    h.extend_from_slice(&ncpus.to_ne_bytes());
    h.extend_from_slice(b"options  \0");
    let clock_text = read_text(&meta.buffer.join("trace_clock")).unwrap_or_default();
    if clock_of(&clock_text).as_deref() == Some("mono") {
        let off_us = (now(libc::CLOCK_REALTIME) - now(libc::CLOCK_MONOTONIC)) / 1000;
        put_option(&mut h, option::DATE, &cstr(&format!("0x{off_us:x}")));
    }
    put_option(&mut h, option::UNAME, &cstr(&uname()));
    put_option(&mut h, option::VERSION, &cstr(&meta.writer));
    put_option(&mut h, option::TRACECLOCK, &cstr(&clock_text));
    for cpu in 0..ncpus {
        if let Ok(stats) = read_text(&meta.buffer.join(format!("per_cpu/cpu{cpu}/stats"))) {
            put_option(
                &mut h,
                option::CPUSTAT,
                &cstr(&format!("CPU: {cpu}\n{stats}")),
            );
        }
    }
    h.extend_from_slice(&option::DONE.to_ne_bytes());
    h.extend_from_slice(b"flyrecord\0");
    Ok(h)
}

/// `TID TGID` lines for the tasks seen, from the kernel's `saved_tgids`
/// (filled where the buffer has `record-tgid` on), else /proc.
fn tgid_trailer(root: &Path, comms: &HashMap<i32, Option<String>>) -> Vec<u8> {
    let mut map: BTreeMap<i32, u32> = BTreeMap::new();
    for line in read_text(&root.join("saved_tgids"))
        .unwrap_or_default()
        .lines()
    {
        if let Some((a, b)) = line.split_once(' ') {
            if let (Ok(t), Ok(g)) = (a.parse::<i32>(), b.parse::<u32>()) {
                if g > 0 && comms.contains_key(&t) {
                    map.insert(t, g);
                }
            }
        }
    }
    for &t in comms.keys() {
        if let std::collections::btree_map::Entry::Vacant(e) = map.entry(t) {
            if let Some(g) = crate::kernel::proc::tgid(t as u32) {
                e.insert(g);
            }
        }
    }
    let mut s = String::new();
    for (t, g) in map {
        s.push_str(&format!("{t} {g}\n"));
    }
    s.into_bytes()
}

fn now(clock: libc::clockid_t) -> i64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: t is a valid timespec to write to.
    unsafe { libc::clock_gettime(clock, &mut t) };
    t.tv_sec * 1_000_000_000 + t.tv_nsec
}

/// `Linux HOST RELEASE MACHINE`, as trace-cmd writes it.
fn uname() -> String {
    // SAFETY: utsname is plain data; uname fills it.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: u is valid for writing.
    if unsafe { libc::uname(&mut u) } != 0 {
        return String::new();
    }
    let f = |a: &[libc::c_char]| {
        let b: Vec<u8> = a
            .iter()
            .take_while(|c| **c != 0)
            .map(|c| *c as u8)
            .collect();
        String::from_utf8_lossy(&b).into_owned()
    };
    format!(
        "{} {} {} {}",
        f(&u.sysname),
        f(&u.nodename),
        f(&u.release),
        f(&u.machine)
    )
}
