//! Reading trace.dat files: ours, and `trace-cmd record`'s of version 6
//! and 7 (uncompressed, or with zstd or zlib sections).
//!
//! [`TraceDat::open`] parses everything but the trace data: the page and
//! event formats, kallsyms, cmdlines, options and where each CPU's data
//! lies. [`TraceDat::events`] then hands out the records of all CPUs
//! merged by time stamp, with the lost-event marks of the sub-buffers, as
//! [`Item`]s: the same items the live reader gives, so a tool's sink
//! cannot tell a file from a run.
//!
//! Nothing in a file is trusted: every size is checked against what is
//! left of the file (or of its section) before anything is allocated,
//! and a bad or truncated file is an error naming the section and the
//! offset, never a panic.

use super::{option, MAGIC, TRAILER_MAGIC};
use crate::base::error::{Error, Result};
use crate::base::Flow;
use crate::buffer::format::EventFormat;
use crate::buffer::reader::{Event, Item};
use crate::buffer::ringbuf::{Lost, Page, PageLayout};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The most one decompressed block (a section, or a chunk of trace data)
/// may claim: trace-cmd's largest are kallsyms, a few tens of MB.
const MAX_BLOCK: usize = 256 << 20;

/// Where one CPU's trace data lies in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuData {
    /// The CPU.
    pub cpu: u32,
    /// Offset of its data in the file.
    pub offset: u64,
    /// Size of its data in the file (compressed size where compressed).
    pub size: u64,
}

/// The compression of a version 7 file's sections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// zstd frames.
    Zstd,
    /// zlib streams.
    Zlib,
}

/// A parsed trace.dat file.
#[derive(Debug)]
pub struct TraceDat {
    file: File,
    path: PathBuf,
    /// The file version (6 or 7).
    pub version: u32,
    /// Whether the recording machine was big-endian.
    pub big_endian: bool,
    /// The size of a `long` in the recording machine's user space.
    pub long_size: u8,
    /// The size of one sub-buffer (page) of trace data.
    pub page_size: usize,
    /// The compression of sections, for version 7 files that have one.
    pub codec: Option<Codec>,
    /// `events/header_page` of the recording kernel.
    pub header_page: String,
    /// The sub-buffer layout from it.
    pub layout: PageLayout,
    /// The `ftrace` system's formats (function, funcgraph_entry, ...).
    pub ftrace_formats: Vec<String>,
    /// The other formats: (system, format text).
    pub event_formats: Vec<(String, String)>,
    /// `/proc/kallsyms` of the recording machine (may be empty).
    pub kallsyms: String,
    /// `printk_formats`.
    pub printk: String,
    /// Task names by PID.
    pub cmdlines: HashMap<i32, String>,
    /// Threads' processes, where the file has them (ours).
    pub tgids: HashMap<i32, u32>,
    /// Each CPU's data.
    pub cpus: Vec<CpuData>,
    /// The trace clock (`mono`, `local`, ...), where the file says.
    pub clock: Option<String>,
    /// The UNAME option.
    pub uname: Option<String>,
    /// The VERSION option (the program that wrote the file).
    pub writer: Option<String>,
    /// The DATE option: microseconds to add to time stamps for the time of
    /// day.
    pub date_offset_us: Option<i64>,
    /// The CPUSTAT options: each CPU's `stats` at the end of the recording.
    pub cpustats: Vec<String>,
    cpu_compressed: bool,
}

/// A bad file: what, where.
fn bad(section: &str, offset: u64, msg: impl std::fmt::Display) -> Error {
    Error::usage(format!("{section} at offset {offset}: {msg}"))
}

/// A source of the file's bytes: the file itself or a decompressed
/// section, with the offset in the file for error messages.
trait Src {
    fn take(&mut self, n: usize, what: &str) -> Result<Vec<u8>>;
    fn offset(&self) -> u64;
    fn left(&self) -> u64;
    fn big_endian(&self) -> bool;
    fn section(&self) -> &str;

    fn num(&mut self, n: usize, what: &str) -> Result<u64> {
        let b = self.take(n, what)?;
        let mut v = 0u64;
        if self.big_endian() {
            for x in &b {
                v = (v << 8) | u64::from(*x);
            }
        } else {
            for x in b.iter().rev() {
                v = (v << 8) | u64::from(*x);
            }
        }
        Ok(v)
    }
    fn u16(&mut self, what: &str) -> Result<u16> {
        Ok(self.num(2, what)? as u16)
    }
    fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(self.num(4, what)? as u32)
    }
    fn u64(&mut self, what: &str) -> Result<u64> {
        self.num(8, what)
    }
    /// `n` bytes whose size the file gave: checked against what is left.
    fn sized(&mut self, n: u64, what: &str) -> Result<Vec<u8>> {
        if n > self.left() {
            return Err(bad(
                self.section(),
                self.offset(),
                format!(
                    "{what} claims {n} bytes, but only {} are left (a truncated or damaged file)",
                    self.left()
                ),
            ));
        }
        self.take(n as usize, what)
    }
    fn text(&mut self, n: u64, what: &str) -> Result<String> {
        let b = self.sized(n, what)?;
        Ok(String::from_utf8_lossy(&b).into_owned())
    }
    fn cstr(&mut self, what: &str) -> Result<String> {
        let mut out = Vec::new();
        loop {
            let b = self.take(1, what)?;
            if b[0] == 0 {
                return Ok(String::from_utf8_lossy(&out).into_owned());
            }
            if out.len() > 4096 {
                return Err(bad(
                    self.section(),
                    self.offset(),
                    format!("{what}: no end"),
                ));
            }
            out.push(b[0]);
        }
    }
}

/// The file, read sequentially from an offset.
struct FileSrc<'f> {
    r: std::io::BufReader<&'f File>,
    pos: u64,
    len: u64,
    be: bool,
    section: String,
}

impl<'f> FileSrc<'f> {
    fn at(file: &'f File, pos: u64, len: u64, be: bool, section: &str) -> Result<FileSrc<'f>> {
        let mut r = std::io::BufReader::with_capacity(1 << 16, file);
        r.seek(SeekFrom::Start(pos))
            .map_err(|e| bad(section, pos, e))?;
        Ok(FileSrc {
            r,
            pos,
            len,
            be,
            section: section.to_string(),
        })
    }
}

impl Src for FileSrc<'_> {
    fn take(&mut self, n: usize, what: &str) -> Result<Vec<u8>> {
        if n as u64 > self.len.saturating_sub(self.pos) {
            return Err(bad(
                &self.section,
                self.pos,
                format!("the file ends before {what} (a truncated file)"),
            ));
        }
        let mut b = vec![0u8; n];
        self.r
            .read_exact(&mut b)
            .map_err(|e| bad(&self.section, self.pos, format!("{what}: {e}")))?;
        self.pos += n as u64;
        Ok(b)
    }
    fn offset(&self) -> u64 {
        self.pos
    }
    fn left(&self) -> u64 {
        self.len.saturating_sub(self.pos)
    }
    fn big_endian(&self) -> bool {
        self.be
    }
    fn section(&self) -> &str {
        &self.section
    }
}

/// A section's bytes in memory (decompressed).
struct MemSrc {
    data: Vec<u8>,
    pos: usize,
    base: u64,
    be: bool,
    section: String,
}

impl Src for MemSrc {
    fn take(&mut self, n: usize, what: &str) -> Result<Vec<u8>> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.data.len());
        let Some(end) = end else {
            return Err(bad(
                &self.section,
                self.base,
                format!("the section ends before {what}"),
            ));
        };
        let b = self.data[self.pos..end].to_vec();
        self.pos = end;
        Ok(b)
    }
    fn offset(&self) -> u64 {
        self.base
    }
    fn left(&self) -> u64 {
        (self.data.len() - self.pos) as u64
    }
    fn big_endian(&self) -> bool {
        self.be
    }
    fn section(&self) -> &str {
        &self.section
    }
}

/// Decompresses one block whose uncompressed size the file gives.
fn decompress(codec: Codec, input: &[u8], size: usize, section: &str, at: u64) -> Result<Vec<u8>> {
    if size > MAX_BLOCK {
        return Err(bad(
            section,
            at,
            format!("a compressed block claims {size} bytes"),
        ));
    }
    // The decoders are meant never to panic on bad input; if one did, the
    // file is bad, not the program.
    let r = std::panic::catch_unwind(|| match codec {
        Codec::Zstd => {
            let mut out = vec![0u8; size];
            let mut d = ruzstd::decoding::FrameDecoder::new();
            d.decode_all(input, &mut out)
                .map(|n| {
                    out.truncate(n);
                    out
                })
                .map_err(|e| e.to_string())
        }
        Codec::Zlib => miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(input, size)
            .map_err(|e| format!("{e:?}")),
    });
    match r {
        Ok(Ok(out)) if out.len() == size => Ok(out),
        Ok(Ok(out)) => Err(bad(
            section,
            at,
            format!(
                "decompressed to {} bytes, not the {size} the file says",
                out.len()
            ),
        )),
        Ok(Err(e)) => Err(bad(section, at, format!("cannot decompress: {e}"))),
        Err(_) => Err(bad(section, at, "cannot decompress (the decoder failed)")),
    }
}

impl TraceDat {
    /// Opens and parses `path`; errors name the file, the section and the
    /// offset of what is wrong.
    pub fn open(path: &Path) -> Result<TraceDat> {
        let file = File::open(path).map_err(|e| Error::io("open", path, e))?;
        TraceDat::parse(file, path).map_err(|e| {
            if e.kind() == crate::ErrorKind::Usage {
                Error::usage(format!(
                    "{} is not a trace.dat file we can read: {}",
                    path.display(),
                    e.message()
                ))
            } else {
                e
            }
        })
    }

    fn parse(file: File, path: &Path) -> Result<TraceDat> {
        let len = file
            .metadata()
            .map_err(|e| Error::io("read", path, e))?
            .len();
        let mut t = TraceDat {
            file,
            path: path.to_path_buf(),
            version: 0,
            big_endian: false,
            long_size: 8,
            page_size: 4096,
            codec: None,
            header_page: String::new(),
            layout: PageLayout::DEFAULT_64,
            ftrace_formats: Vec::new(),
            event_formats: Vec::new(),
            kallsyms: String::new(),
            printk: String::new(),
            cmdlines: HashMap::new(),
            tgids: HashMap::new(),
            cpus: Vec::new(),
            clock: None,
            uname: None,
            writer: None,
            date_offset_us: None,
            cpustats: Vec::new(),
            cpu_compressed: false,
        };
        let file = t.file.try_clone().map_err(|e| Error::io("read", path, e))?;
        let mut s = FileSrc::at(&file, 0, len, false, "the initial header")?;
        if s.take(10, "the magic")? != MAGIC {
            return Err(bad("the initial header", 0, "no trace.dat magic"));
        }
        let v = s.cstr("the version")?;
        t.version = v
            .parse()
            .map_err(|_| bad("the initial header", 10, format!("version '{v}'")))?;
        if !(6..=7).contains(&t.version) {
            return Err(Error::unsupported(format!(
                "{}: trace.dat version {} (versions 6 and 7 are read)",
                path.display(),
                t.version
            )));
        }
        t.big_endian = s.take(1, "the endianness")?[0] != 0;
        s.be = t.big_endian;
        if t.big_endian != cfg!(target_endian = "big") {
            return Err(Error::unsupported(format!(
                "{} was recorded on a machine of the other byte order: read it on one like it",
                path.display()
            )));
        }
        t.long_size = s.take(1, "the long size")?[0];
        let at = s.offset();
        t.page_size = s.u32("the page size")? as usize;
        if !(64..=(1 << 24)).contains(&t.page_size) {
            return Err(bad(
                "the initial header",
                at,
                format!("page size {}", t.page_size),
            ));
        }
        if t.version == 6 {
            t.parse_v6(&mut s, &file, len)?;
        } else {
            t.parse_v7(&mut s, &file, len)?;
        }
        t.read_trailer(&file, len);
        Ok(t)
    }

    fn parse_headers(&mut self, s: &mut dyn Src) -> Result<()> {
        let at = s.offset();
        if s.take(12, "header_page")? != b"header_page\0" {
            return Err(bad(s.section(), at, "no header_page"));
        }
        let n = s.u64("the header_page size")?;
        self.header_page = s.text(n, "header_page")?;
        let at = s.offset();
        if s.take(13, "header_event")? != b"header_event\0" {
            return Err(bad(s.section(), at, "no header_event"));
        }
        let n = s.u64("the header_event size")?;
        s.sized(n, "header_event")?;
        let mut layout = PageLayout::parse(&self.header_page)
            .map_err(|e| bad("header_page", at, e.message().to_string()))?;
        layout.big_endian = self.big_endian;
        self.layout = layout;
        Ok(())
    }

    fn parse_ftrace(&mut self, s: &mut dyn Src) -> Result<()> {
        let n = s.u32("the number of ftrace formats")?;
        for _ in 0..n {
            let size = s.u64("a format's size")?;
            self.ftrace_formats.push(s.text(size, "an ftrace format")?);
        }
        Ok(())
    }

    fn parse_events(&mut self, s: &mut dyn Src) -> Result<()> {
        let systems = s.u32("the number of systems")?;
        for _ in 0..systems {
            let sys = s.cstr("a system name")?;
            let n = s.u32("the number of events")?;
            for _ in 0..n {
                let size = s.u64("a format's size")?;
                let text = s.text(size, "an event format")?;
                self.event_formats.push((sys.clone(), text));
            }
        }
        Ok(())
    }

    fn parse_kallsyms(&mut self, s: &mut dyn Src) -> Result<()> {
        let n = s.u32("the kallsyms size")?;
        self.kallsyms = s.text(u64::from(n), "kallsyms")?;
        Ok(())
    }

    fn parse_printk(&mut self, s: &mut dyn Src) -> Result<()> {
        let n = s.u32("the printk size")?;
        self.printk = s.text(u64::from(n), "printk formats")?;
        Ok(())
    }

    fn parse_cmdlines(&mut self, s: &mut dyn Src) -> Result<()> {
        let n = s.u64("the cmdlines size")?;
        let text = s.text(n, "cmdlines")?;
        for line in text.lines() {
            let line = line.trim_end_matches('\0');
            if let Some((p, c)) = line.trim_start().split_once(' ') {
                if let Ok(p) = p.parse() {
                    self.cmdlines.insert(p, c.to_string());
                }
            }
        }
        Ok(())
    }

    fn parse_v6(&mut self, s: &mut FileSrc, file: &File, len: u64) -> Result<()> {
        s.section = "header_page".into();
        self.parse_headers(s)?;
        s.section = "the ftrace formats".into();
        self.parse_ftrace(s)?;
        s.section = "the event formats".into();
        self.parse_events(s)?;
        s.section = "kallsyms".into();
        self.parse_kallsyms(s)?;
        s.section = "printk formats".into();
        self.parse_printk(s)?;
        s.section = "cmdlines".into();
        self.parse_cmdlines(s)?;
        s.section = "the CPU count".into();
        let mut ncpus = s.u32("the CPU count")?;
        s.section = "options".into();
        let at = s.offset();
        let mut kind = s.take(10, "options or flyrecord")?;
        let mut buffers = Vec::new();
        let mut has_clock = false;
        if kind.starts_with(b"options") {
            loop {
                let id = s.u16("an option id")?;
                if id == option::DONE {
                    break;
                }
                let size = s.u32("an option size")?;
                let data = s.sized(u64::from(size), "an option")?;
                match id {
                    option::CPUCOUNT if data.len() >= 4 => {
                        ncpus = self.u32_of(&data[..4]);
                    }
                    option::BUFFER if data.len() >= 9 => {
                        let off = self.u64_of(&data[..8]);
                        let name = cstring(&data[8..]);
                        buffers.push((name, off));
                    }
                    option::TRACECLOCK => has_clock = true,
                    _ => self.option(id, &data),
                }
            }
            let at2 = s.offset();
            kind = s.take(10, "flyrecord")?;
            if !kind.starts_with(b"flyrecord") {
                return Err(self.not_flyrecord(&kind, at2));
            }
        } else if !kind.starts_with(b"flyrecord") {
            return Err(self.not_flyrecord(&kind, at));
        }
        if ncpus > 4096 {
            return Err(bad("the CPU count", at, format!("{ncpus} CPUs")));
        }
        s.section = "flyrecord".into();
        self.cpus = flyrecord_table(s, ncpus, len)?;
        if has_clock {
            let n = s.u64("the trace clock size")?;
            let c = s.text(n, "the trace clock")?;
            self.clock = clock_of(&c).or(self.clock.take());
        }
        // A file recorded from instances only (trace-cmd record -B) has
        // its data in their buffers.
        if self.cpus.iter().all(|c| c.size == 0) {
            for (name, off) in buffers {
                let section = format!("the buffer of instance '{name}'");
                let mut b = FileSrc::at(file, off, len, self.big_endian, &section)?;
                if !b.take(10, "flyrecord")?.starts_with(b"flyrecord") {
                    continue;
                }
                let cpus = flyrecord_table(&mut b, ncpus, len)?;
                if cpus.iter().any(|c| c.size > 0) {
                    self.cpus = cpus;
                    break;
                }
            }
        }
        Ok(())
    }

    fn not_flyrecord(&self, kind: &[u8], at: u64) -> Error {
        if kind.starts_with(b"latency") {
            Error::unsupported(format!(
                "{} holds a latency tracer's text, not events (nothing to read)",
                self.path.display()
            ))
        } else {
            bad("options", at, "neither options nor flyrecord data follow")
        }
    }

    fn u32_of(&self, b: &[u8]) -> u32 {
        let a: [u8; 4] = b.try_into().unwrap_or([0; 4]);
        if self.big_endian {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        }
    }

    fn u64_of(&self, b: &[u8]) -> u64 {
        let a: [u8; 8] = b.try_into().unwrap_or([0; 8]);
        if self.big_endian {
            u64::from_be_bytes(a)
        } else {
            u64::from_le_bytes(a)
        }
    }

    /// The options both versions read the same way.
    fn option(&mut self, id: u16, data: &[u8]) {
        match id {
            option::DATE => {
                let t = cstring(data);
                let t = t.trim();
                let (neg, t) = match t.strip_prefix('-') {
                    Some(r) => (true, r),
                    None => (false, t),
                };
                let v = match t.strip_prefix("0x") {
                    Some(h) => i64::from_str_radix(h, 16).ok(),
                    None => t.parse().ok(),
                };
                self.date_offset_us = v.map(|v| if neg { -v } else { v });
            }
            option::CPUSTAT => self.cpustats.push(cstring(data)),
            option::TRACECLOCK => {
                if let Some(c) = clock_of(&cstring(data)) {
                    self.clock = Some(c);
                }
            }
            option::UNAME => self.uname = Some(cstring(data)),
            option::VERSION => self.writer = Some(cstring(data)),
            _ => {}
        }
    }

    fn parse_v7(&mut self, s: &mut FileSrc, file: &File, len: u64) -> Result<()> {
        let name = s.cstr("the compression name")?;
        let _version = s.cstr("the compression version")?;
        self.codec = match name.as_str() {
            "none" | "" => None,
            "zstd" => Some(Codec::Zstd),
            "zlib" => Some(Codec::Zlib),
            other => {
                return Err(Error::unsupported(format!(
                    "{}: sections compressed with '{other}' (zstd and zlib are read)",
                    self.path.display()
                )))
            }
        };
        let mut next = s.u64("the offset of the options")?;
        let mut sections: HashMap<u16, u64> = HashMap::new();
        let mut buffers: Vec<(String, u64, Vec<CpuData>)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        while next != 0 {
            if !seen.insert(next) || seen.len() > 1024 {
                return Err(bad("options", next, "the options sections loop"));
            }
            let mut o = self.section(file, len, next, "options")?;
            next = 0;
            loop {
                let id = o.u16("an option id")?;
                let size = o.u32("an option size")?;
                let data = o.sized(u64::from(size), "an option")?;
                match id {
                    option::DONE => {
                        if data.len() >= 8 {
                            next = self.u64_of(&data[..8]);
                        }
                        break;
                    }
                    option::HEADER_INFO
                    | option::FTRACE_EVENTS
                    | option::EVENT_FORMATS
                    | option::KALLSYMS
                    | option::PRINTK
                    | option::CMDLINES
                        if data.len() >= 8 =>
                    {
                        sections.insert(id, self.u64_of(&data[..8]));
                    }
                    option::BUFFER => {
                        let at = o.offset();
                        buffers.push(self.buffer_option(&data).ok_or_else(|| {
                            bad("options", at, "a BUFFER option that does not parse")
                        })?);
                    }
                    _ => self.option(id, &data),
                }
            }
        }
        let need = |id: u16, what: &str| {
            sections
                .get(&id)
                .copied()
                .ok_or_else(|| bad("options", 0, format!("no {what} section")))
        };
        let mut sec = self.section(file, len, need(option::HEADER_INFO, "headers")?, "headers")?;
        self.parse_headers(&mut sec)?;
        if let Some(&off) = sections.get(&option::FTRACE_EVENTS) {
            let mut sec = self.section(file, len, off, "the ftrace formats")?;
            self.parse_ftrace(&mut sec)?;
        }
        if let Some(&off) = sections.get(&option::EVENT_FORMATS) {
            let mut sec = self.section(file, len, off, "the event formats")?;
            self.parse_events(&mut sec)?;
        }
        if let Some(&off) = sections.get(&option::KALLSYMS) {
            let mut sec = self.section(file, len, off, "kallsyms")?;
            self.parse_kallsyms(&mut sec)?;
        }
        if let Some(&off) = sections.get(&option::PRINTK) {
            let mut sec = self.section(file, len, off, "printk formats")?;
            self.parse_printk(&mut sec)?;
        }
        if let Some(&off) = sections.get(&option::CMDLINES) {
            let mut sec = self.section(file, len, off, "cmdlines")?;
            self.parse_cmdlines(&mut sec)?;
        }
        // The top buffer, else the first instance's with data.
        buffers.sort_by_key(|b| !b.0.is_empty());
        let Some((_, off, cpus)) = buffers.into_iter().find(|b| b.2.iter().any(|c| c.size > 0))
        else {
            return Ok(());
        };
        let mut h = FileSrc::at(file, off, len, self.big_endian, "the trace data")?;
        let (_, flags) = section_header(&mut h)?;
        self.cpu_compressed = flags & 1 != 0;
        if self.cpu_compressed && self.codec.is_none() {
            return Err(bad(
                "the trace data",
                off,
                "compressed, with no compression named",
            ));
        }
        for c in &cpus {
            if c.offset.checked_add(c.size).is_none_or(|e| e > len) {
                return Err(bad(
                    "the trace data",
                    c.offset,
                    format!(
                        "CPU {} claims {} bytes at offset {}, past the end of the file ({len} bytes): a truncated file",
                        c.cpu, c.size, c.offset
                    ),
                ));
            }
        }
        self.cpus = cpus;
        Ok(())
    }

    /// A BUFFER option of version 7: offset, name, clock, page size (from
    /// trace-cmd 3.1 on; earlier files lack it), CPUs.
    fn buffer_option(&mut self, data: &[u8]) -> Option<(String, u64, Vec<CpuData>)> {
        let off = self.u64_of(data.get(..8)?);
        let name = cstring(data.get(8..)?);
        let mut p = 8 + name.len() + 1;
        let clock = cstring(data.get(p..)?);
        p += clock.len() + 1;
        if name.is_empty() && !clock.is_empty() && self.clock.is_none() {
            self.clock = Some(clock);
        }
        let parse = |p: usize| -> Option<Vec<CpuData>> {
            let n = self.u32_of(data.get(p..p + 4)?) as usize;
            if data.len() != p + 4 + n * 20 {
                return None;
            }
            let mut v = Vec::with_capacity(n);
            for i in 0..n {
                let q = p + 4 + i * 20;
                v.push(CpuData {
                    cpu: self.u32_of(&data[q..q + 4]),
                    offset: self.u64_of(&data[q + 4..q + 12]),
                    size: self.u64_of(&data[q + 12..q + 20]),
                });
            }
            Some(v)
        };
        let cpus = parse(p + 4).or_else(|| parse(p))?;
        Some((name, off, cpus))
    }

    /// A version 7 section at `off`: its header, then its data,
    /// decompressed if it is compressed.
    fn section(&self, file: &File, len: u64, off: u64, what: &str) -> Result<MemSrc> {
        let mut s = FileSrc::at(file, off, len, self.big_endian, what)?;
        let (size, flags) = section_header(&mut s)?;
        let base = s.offset();
        let data = if flags & 1 != 0 {
            let Some(codec) = self.codec else {
                return Err(bad(what, off, "compressed, with no compression named"));
            };
            let csize = s.u32("the compressed size")?;
            let usize_ = s.u32("the uncompressed size")? as usize;
            let input = s.sized(u64::from(csize), "compressed data")?;
            decompress(codec, &input, usize_, what, base)?
        } else {
            s.sized(size, what)?
        };
        Ok(MemSrc {
            data,
            pos: 0,
            base,
            be: self.big_endian,
            section: what.to_string(),
        })
    }

    /// Our trailer of thread-to-process IDs, if the file ends with one.
    fn read_trailer(&mut self, file: &File, len: u64) {
        let mut tail = [0u8; 24];
        if len < 24 || file.read_exact_at(&mut tail, len - 24).is_err() {
            return;
        }
        if tail[8..] != TRAILER_MAGIC {
            return;
        }
        let n = self.u64_of(&tail[..8]);
        if n > len - 24 || n > MAX_BLOCK as u64 {
            return;
        }
        let mut text = vec![0u8; n as usize];
        if file.read_exact_at(&mut text, len - 24 - n).is_err() {
            return;
        }
        for line in String::from_utf8_lossy(&text).lines() {
            if let Some((a, b)) = line.split_once(' ') {
                if let (Ok(t), Ok(g)) = (a.parse(), b.parse()) {
                    self.tgids.insert(t, g);
                }
            }
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every event format of the file, parsed (the ones that do not parse
    /// are left out), with its system.
    pub fn formats(&self) -> Vec<(String, EventFormat)> {
        let ftrace = self.ftrace_formats.iter().map(|f| ("ftrace", f));
        let other = self.event_formats.iter().map(|(s, f)| (s.as_str(), f));
        ftrace
            .chain(other)
            .filter_map(|(s, f)| EventFormat::parse(f).ok().map(|e| (s.to_string(), e)))
            .collect()
    }

    /// The format of `system:name`, if the file has it.
    pub fn format(&self, system: &str, name: &str) -> Option<EventFormat> {
        self.formats()
            .into_iter()
            .find(|(s, f)| s == system && f.name == name)
            .map(|(_, f)| f)
    }

    /// Lost events per CPU as the CPUSTAT options give them (overrun,
    /// commit overrun, dropped).
    pub fn lost_per_cpu(&self) -> Vec<(u32, u64)> {
        self.cpustats
            .iter()
            .filter_map(|s| {
                let cpu = s
                    .lines()
                    .find_map(|l| l.strip_prefix("CPU:"))
                    .and_then(|c| c.trim().parse().ok())?;
                Some((cpu, crate::buffer::ringbuf::lost_from_stats(s)))
            })
            .collect()
    }

    /// Hands every record of every CPU to `f` in time-stamp order (the
    /// lost-event marks of each sub-buffer before its records). Returns
    /// the number of events, and [`Flow::Stop`] if `f` asked to stop.
    pub fn events(&self, f: &mut dyn FnMut(Item) -> Flow) -> Result<(u64, Flow)> {
        let mut cpus: Vec<CpuCursor> = Vec::new();
        for c in &self.cpus {
            if c.size > 0 {
                cpus.push(CpuCursor::new(self, *c)?);
            }
        }
        let mut heap = BinaryHeap::new();
        for (i, c) in cpus.iter_mut().enumerate() {
            if c.advance(self, f)? == Flow::Stop {
                return Ok((0, Flow::Stop));
            }
            if let Some(ts) = c.head() {
                heap.push(Reverse((ts, i)));
            }
        }
        let mut n = 0u64;
        while let Some(Reverse((_, i))) = heap.pop() {
            let c = &mut cpus[i];
            let (ts, start, end) = c.recs[c.idx];
            c.idx += 1;
            if let Some(ev) = Event::from_record(c.cpu, ts, &c.page[start..end]) {
                n += 1;
                if f(Item::Event(ev)) == Flow::Stop {
                    return Ok((n, Flow::Stop));
                }
            }
            if c.idx >= c.recs.len() && c.advance(self, f)? == Flow::Stop {
                return Ok((n, Flow::Stop));
            }
            if let Some(ts) = c.head() {
                heap.push(Reverse((ts, i)));
            }
        }
        Ok((n, Flow::Continue))
    }

    /// The number of records and lost-event marks in the file, without
    /// decoding anything.
    pub fn count(&self) -> Result<(u64, u64)> {
        let mut lost = 0;
        let (n, _) = self.events(&mut |it| {
            if let Item::Lost(_, c) = it {
                lost += c.unwrap_or(0);
            }
            Flow::Continue
        })?;
        Ok((n, lost))
    }
}

/// A version 7 section header: id, flags, description, size.
fn section_header(s: &mut dyn Src) -> Result<(u64, u16)> {
    let _id = s.u16("the section id")?;
    let flags = s.u16("the section flags")?;
    let _desc = s.u32("the section description")?;
    let size = s.u64("the section size")?;
    Ok((size, flags))
}

fn flyrecord_table(s: &mut dyn Src, ncpus: u32, len: u64) -> Result<Vec<CpuData>> {
    let mut cpus = Vec::new();
    for cpu in 0..ncpus {
        let at = s.offset();
        let offset = s.u64("a CPU's data offset")?;
        let size = s.u64("a CPU's data size")?;
        if size > 0 && offset.checked_add(size).is_none_or(|e| e > len) {
            return Err(bad(
                "flyrecord",
                at,
                format!(
                    "CPU {cpu} claims {size} bytes at offset {offset}, past the end of the file ({len} bytes): a truncated file"
                ),
            ));
        }
        cpus.push(CpuData { cpu, offset, size });
    }
    Ok(cpus)
}

/// The text up to the first NUL.
fn cstring(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// The clock in brackets of a `trace_clock` text (`local [mono] boot`).
pub(super) fn clock_of(text: &str) -> Option<String> {
    let start = text.find('[')? + 1;
    let end = start + text[start..].find(']')?;
    Some(text[start..end].to_string())
}

/// One CPU's data, page by page, with the records of the current page.
struct CpuCursor {
    cpu: u32,
    /// Plain data: the next offset and the end.
    next: u64,
    end: u64,
    /// Compressed data: the chunks left, and the current chunk.
    chunks_left: Option<u32>,
    chunk: Vec<u8>,
    chunk_pos: usize,
    page: Vec<u8>,
    recs: Vec<(u64, usize, usize)>,
    idx: usize,
}

impl CpuCursor {
    fn new(t: &TraceDat, c: CpuData) -> Result<CpuCursor> {
        let mut cur = CpuCursor {
            cpu: c.cpu,
            next: c.offset,
            end: c.offset + c.size,
            chunks_left: None,
            chunk: Vec::new(),
            chunk_pos: 0,
            page: Vec::new(),
            recs: Vec::new(),
            idx: 0,
        };
        if t.cpu_compressed {
            let mut b = [0u8; 4];
            t.file
                .read_exact_at(&mut b, c.offset)
                .map_err(|e| bad("the trace data", c.offset, e))?;
            cur.chunks_left = Some(t.u32_of(&b));
            cur.next += 4;
            // trace-cmd's size leaves the chunk count out.
            cur.end += 4;
        }
        Ok(cur)
    }

    fn head(&self) -> Option<u64> {
        self.recs.get(self.idx).map(|r| r.0)
    }

    /// The next page's bytes into `self.page`; `false` at the end.
    fn next_page(&mut self, t: &TraceDat) -> Result<bool> {
        let ps = t.page_size;
        if self.chunks_left.is_none() {
            if self.next >= self.end {
                return Ok(false);
            }
            let n = ps.min((self.end - self.next) as usize);
            self.page.resize(n, 0);
            t.file
                .read_exact_at(&mut self.page, self.next)
                .map_err(|e| bad("the trace data", self.next, e))?;
            self.next += n as u64;
            return Ok(true);
        }
        while self.chunk_pos >= self.chunk.len() {
            let left = self.chunks_left.unwrap_or(0);
            if left == 0 || self.next >= self.end {
                return Ok(false);
            }
            let mut h = [0u8; 8];
            t.file
                .read_exact_at(&mut h, self.next)
                .map_err(|e| bad("the trace data", self.next, e))?;
            let csize = u64::from(t.u32_of(&h[..4]));
            let usize_ = t.u32_of(&h[4..]) as usize;
            let at = self.next + 8;
            if at + csize > self.end {
                return Err(bad(
                    "the trace data",
                    self.next,
                    format!("a chunk of CPU {} runs past its data", self.cpu),
                ));
            }
            let mut input = vec![0u8; csize as usize];
            t.file
                .read_exact_at(&mut input, at)
                .map_err(|e| bad("the trace data", at, e))?;
            let codec = t.codec.unwrap_or(Codec::Zstd);
            self.chunk = decompress(codec, &input, usize_, "the trace data", at)?;
            self.chunk_pos = 0;
            self.next = at + csize;
            self.chunks_left = Some(left - 1);
        }
        let n = ps.min(self.chunk.len() - self.chunk_pos);
        self.page.clear();
        self.page
            .extend_from_slice(&self.chunk[self.chunk_pos..self.chunk_pos + n]);
        self.chunk_pos += n;
        Ok(true)
    }

    /// Moves to the next page with records, handing its lost-event mark to
    /// `f` on the way.
    fn advance(&mut self, t: &TraceDat, f: &mut dyn FnMut(Item) -> Flow) -> Result<Flow> {
        self.recs.clear();
        self.idx = 0;
        while self.recs.is_empty() {
            if !self.next_page(t)? {
                return Ok(Flow::Continue);
            }
            let Ok(page) = Page::parse(t.layout, &self.page) else {
                continue;
            };
            let lost = match page.lost {
                Lost::None => None,
                Lost::Count(n) => Some(Some(n)),
                Lost::Unknown => Some(None),
            };
            if let Some(l) = lost {
                if f(Item::Lost(self.cpu, l)) == Flow::Stop {
                    return Ok(Flow::Stop);
                }
            }
            let base = self.page.as_ptr() as usize;
            for r in page {
                let start = r.data.as_ptr() as usize - base;
                self.recs.push((r.ts, start, start + r.data.len()));
            }
        }
        Ok(Flow::Continue)
    }
}
