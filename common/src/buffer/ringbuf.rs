//! Parsing the sub-buffers (pages) that `trace_pipe_raw` hands out.
//!
//! Layout (see `events/header_page` and `events/header_event`):
//! a sub-buffer starts with a u64 time stamp and a `commit` word whose low
//! 27 bits are the number of data bytes and whose bits 31 and 30 say events
//! were lost before it (and that their count follows the data). Records
//! follow, each with a 32-bit header `type_len:5, time_delta:27`:
//!
//! | type_len | record |
//! |---|---|
//! | 0 | data; next u32 = length including itself |
//! | 1..=28 | data of `4 * type_len` bytes |
//! | 29 | padding (delta 0: end of data; else skip `u32` bytes) |
//! | 30 | time extend: `ts += (u32 << 27) + delta` |
//! | 31 | absolute time stamp |
//!
//! The parser is pure and total: any bytes give records or a
//! [`PageError`], never a panic.

use crate::base::error::{Error, Result};
use crate::buffer::format::parse_field_line;

const TS_SHIFT: u32 = 27;
const MISSED_EVENTS: u64 = 1 << 31;
const MISSED_STORED: u64 = 1 << 30;
const COMMIT_MASK: u64 = (1 << 27) - 1;

const TYPE_PADDING: u32 = 29;
const TYPE_TIME_EXTEND: u32 = 30;
const TYPE_TIME_STAMP: u32 = 31;

/// Where the fields of a sub-buffer header are (from `events/header_page`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLayout {
    /// Offset of the u64 time stamp.
    pub ts_offset: usize,
    /// Offset of the commit word.
    pub commit_offset: usize,
    /// Size of the commit word (8 on 64-bit kernels, 4 on 32-bit).
    pub commit_size: usize,
    /// Offset of the data area.
    pub data_offset: usize,
    /// Size of the data area.
    pub data_size: usize,
    /// Whether the kernel is big-endian.
    pub big_endian: bool,
}

impl PageLayout {
    /// The layout of a 64-bit little-endian kernel with 4 KiB sub-buffers.
    pub const DEFAULT_64: PageLayout = PageLayout {
        ts_offset: 0,
        commit_offset: 8,
        commit_size: 8,
        data_offset: 16,
        data_size: 4080,
        big_endian: false,
    };

    /// Parses the text of `events/header_page`.
    pub fn parse(header_page: &str) -> Result<PageLayout> {
        let mut l = PageLayout {
            big_endian: cfg!(target_endian = "big"),
            ..PageLayout::DEFAULT_64
        };
        let mut seen = 0;
        for line in header_page.lines() {
            let Some(f) = parse_field_line(line) else {
                continue;
            };
            match f.name.as_str() {
                "timestamp" => {
                    l.ts_offset = f.offset;
                    seen |= 1;
                }
                "commit" => {
                    l.commit_offset = f.offset;
                    l.commit_size = f.size;
                    seen |= 2;
                }
                "data" => {
                    l.data_offset = f.offset;
                    l.data_size = f.size;
                    seen |= 4;
                }
                _ => {}
            }
        }
        if seen != 7 || !matches!(l.commit_size, 4 | 8) || l.data_size == 0 {
            return Err(Error::unsupported(
                "cannot understand events/header_page (need timestamp, commit and data fields)",
            ));
        }
        Ok(l)
    }

    /// The number of bytes one read of `trace_pipe_raw` returns at most.
    pub fn subbuf_size(&self) -> usize {
        self.data_offset + self.data_size
    }

    fn u32_at(&self, b: &[u8], off: usize) -> Option<u32> {
        let s: [u8; 4] = b.get(off..off.checked_add(4)?)?.try_into().ok()?;
        Some(if self.big_endian {
            u32::from_be_bytes(s)
        } else {
            u32::from_le_bytes(s)
        })
    }

    fn uint_at(&self, b: &[u8], off: usize, size: usize) -> Option<u64> {
        match size {
            4 => self.u32_at(b, off).map(u64::from),
            8 => {
                let s: [u8; 8] = b.get(off..off.checked_add(8)?)?.try_into().ok()?;
                Some(if self.big_endian {
                    u64::from_be_bytes(s)
                } else {
                    u64::from_le_bytes(s)
                })
            }
            _ => None,
        }
    }
}

/// Events lost before a sub-buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lost {
    /// None were lost.
    None,
    /// This many were lost.
    Count(u64),
    /// Some were lost; the kernel did not say how many.
    Unknown,
}

/// What is wrong with a sub-buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageError {
    /// Shorter than its header.
    Truncated,
    /// A record runs past the committed data.
    BadRecord {
        /// Offset of the record in the data area.
        at: usize,
    },
}

/// One data record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// Time stamp in the instance's trace clock (ns for `mono`).
    pub ts: u64,
    /// The event payload (common header first); may carry padding at the end.
    pub data: &'a [u8],
}

/// A parsed sub-buffer: its header, and an iterator over its records.
#[derive(Debug, Clone)]
pub struct Page<'a> {
    layout: PageLayout,
    /// Time stamp of the sub-buffer.
    pub ts_base: u64,
    /// Events lost before it.
    pub lost: Lost,
    data: &'a [u8],
    pos: usize,
    ts: u64,
    error: Option<PageError>,
}

impl<'a> Page<'a> {
    /// Parses the header of a sub-buffer as read from `trace_pipe_raw`.
    pub fn parse(layout: PageLayout, buf: &'a [u8]) -> std::result::Result<Page<'a>, PageError> {
        let ts_base = layout
            .uint_at(buf, layout.ts_offset, 8)
            .ok_or(PageError::Truncated)?;
        let commit = layout
            .uint_at(buf, layout.commit_offset, layout.commit_size)
            .ok_or(PageError::Truncated)?;
        let size = (commit & COMMIT_MASK) as usize;
        let start = layout.data_offset;
        let avail = buf.len().saturating_sub(start).min(layout.data_size);
        if buf.len() < start {
            return Err(PageError::Truncated);
        }
        let size_ok = size.min(avail);
        let data = &buf[start..start + size_ok];
        let lost = if commit & MISSED_EVENTS != 0 {
            if commit & MISSED_STORED != 0 {
                match layout.uint_at(buf, start + size, layout.commit_size) {
                    Some(n) => Lost::Count(n),
                    None => Lost::Unknown,
                }
            } else {
                Lost::Unknown
            }
        } else {
            Lost::None
        };
        let error = (size > avail).then_some(PageError::Truncated);
        Ok(Page {
            layout,
            ts_base,
            lost,
            data,
            pos: 0,
            ts: ts_base,
            error,
        })
    }

    /// The number of committed data bytes.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the sub-buffer holds no data.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Whether the sub-buffer is (nearly) full: a reader that only ever gets
    /// small pages is reading faster than it needs to.
    pub fn is_full(&self) -> bool {
        self.data.len() + 64 >= self.layout.data_size
    }

    /// The first problem met while iterating, if any.
    pub fn error(&self) -> Option<&PageError> {
        self.error.as_ref()
    }

    fn bad(&mut self) -> Option<Record<'a>> {
        if self.error.is_none() {
            self.error = Some(PageError::BadRecord { at: self.pos });
        }
        self.pos = self.data.len();
        None
    }
}

impl<'a> Iterator for Page<'a> {
    type Item = Record<'a>;

    fn next(&mut self) -> Option<Record<'a>> {
        let l = self.layout;
        loop {
            if self.pos >= self.data.len() {
                return None;
            }
            let Some(w) = l.u32_at(self.data, self.pos) else {
                return self.bad();
            };
            let (type_len, delta) = if l.big_endian {
                (w >> 27, w & ((1 << 27) - 1))
            } else {
                (w & 0x1f, w >> 5)
            };
            let delta = u64::from(delta);
            match type_len {
                TYPE_PADDING => {
                    if delta == 0 {
                        // The rest of the sub-buffer is empty.
                        self.pos = self.data.len();
                        return None;
                    }
                    let Some(len) = l.u32_at(self.data, self.pos + 4) else {
                        return self.bad();
                    };
                    let next = self.pos.checked_add(4 + len as usize);
                    match next {
                        Some(n) if n > self.pos + 4 && n <= self.data.len() => self.pos = n,
                        _ => return self.bad(),
                    }
                }
                TYPE_TIME_EXTEND => {
                    let Some(x) = l.u32_at(self.data, self.pos + 4) else {
                        return self.bad();
                    };
                    self.ts = self.ts.wrapping_add((u64::from(x) << TS_SHIFT) + delta);
                    self.pos += 8;
                }
                TYPE_TIME_STAMP => {
                    let Some(x) = l.u32_at(self.data, self.pos + 4) else {
                        return self.bad();
                    };
                    let abs = (u64::from(x) << TS_SHIFT) | delta;
                    // Absolute stamps hold 59 bits; keep the top 5 of the
                    // current time.
                    self.ts = (self.ts & !((1u64 << 59) - 1)) | abs;
                    self.pos += 8;
                }
                0 => {
                    let Some(len) = l.u32_at(self.data, self.pos + 4) else {
                        return self.bad();
                    };
                    let len = len as usize;
                    let start = self.pos + 8;
                    let end = self.pos.checked_add(4).and_then(|p| p.checked_add(len));
                    match end {
                        Some(end) if len >= 4 && end <= self.data.len() => {
                            self.ts = self.ts.wrapping_add(delta);
                            self.pos = end;
                            return Some(Record {
                                ts: self.ts,
                                data: &self.data[start..end],
                            });
                        }
                        _ => return self.bad(),
                    }
                }
                n => {
                    let len = 4 * n as usize;
                    let start = self.pos + 4;
                    let end = start + len;
                    if end > self.data.len() {
                        return self.bad();
                    }
                    self.ts = self.ts.wrapping_add(delta);
                    self.pos = end;
                    return Some(Record {
                        ts: self.ts,
                        data: &self.data[start..end],
                    });
                }
            }
        }
    }
}

/// Parses the text of `per_cpu/cpuN/stats` into the counts of lost events:
/// `overrun` (overwritten), `commit overrun` and `dropped events`.
pub fn lost_from_stats(stats: &str) -> u64 {
    let mut lost = 0u64;
    for line in stats.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        if matches!(k.trim(), "overrun" | "commit overrun" | "dropped events") {
            lost = lost.saturating_add(v.trim().parse::<u64>().unwrap_or(0));
        }
    }
    lost
}

/// Parses the `read events` line of `per_cpu/cpuN/stats`: how many events
/// the kernel has handed to readers of that CPU's buffer (`None` if the
/// line is missing, as on kernels before 3.x).
pub fn read_events_from_stats(stats: &str) -> Option<u64> {
    stats.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        (k.trim() == "read events")
            .then(|| v.trim().parse::<u64>().ok())
            .flatten()
    })
}

/// Builds sub-buffers by hand, for tests of this module and of its users.
#[doc(hidden)]
pub mod build {
    use super::*;

    /// A sub-buffer under construction (64-bit little-endian layout).
    pub struct PageBuilder {
        buf: Vec<u8>,
        layout: PageLayout,
    }

    impl PageBuilder {
        /// An empty sub-buffer with time stamp `ts`.
        pub fn new(ts: u64) -> PageBuilder {
            let layout = PageLayout::DEFAULT_64;
            let mut buf = vec![0u8; layout.data_offset];
            buf[0..8].copy_from_slice(&ts.to_le_bytes());
            PageBuilder { buf, layout }
        }

        fn hdr(&mut self, type_len: u32, delta: u32) {
            self.buf
                .extend_from_slice(&((delta << 5) | type_len).to_le_bytes());
        }

        /// A data record of `payload` (padded to 4 bytes) after `delta` ns.
        pub fn event(mut self, delta: u32, payload: &[u8]) -> Self {
            let mut p = payload.to_vec();
            while !p.len().is_multiple_of(4) {
                p.push(0);
            }
            if !p.is_empty() && p.len() <= 28 * 4 {
                self.hdr((p.len() / 4) as u32, delta);
            } else {
                self.hdr(0, delta);
                self.buf
                    .extend_from_slice(&((p.len() + 4) as u32).to_le_bytes());
            }
            self.buf.extend_from_slice(&p);
            self
        }

        /// A data record in the long form (type_len 0) whatever its size.
        pub fn long_event(mut self, delta: u32, payload: &[u8]) -> Self {
            let mut p = payload.to_vec();
            while !p.len().is_multiple_of(4) {
                p.push(0);
            }
            self.hdr(0, delta);
            self.buf
                .extend_from_slice(&((p.len() + 4) as u32).to_le_bytes());
            self.buf.extend_from_slice(&p);
            self
        }

        /// A time extend of `(x << 27) + delta`.
        pub fn extend(mut self, delta: u32, x: u32) -> Self {
            self.hdr(TYPE_TIME_EXTEND, delta);
            self.buf.extend_from_slice(&x.to_le_bytes());
            self
        }

        /// An absolute time stamp.
        pub fn absolute(mut self, ts: u64) -> Self {
            self.hdr(TYPE_TIME_STAMP, (ts & ((1 << 27) - 1)) as u32);
            self.buf
                .extend_from_slice(&((ts >> 27) as u32).to_le_bytes());
            self
        }

        /// A discarded record with `len` bytes of old payload to skip (its
        /// length word counts itself, as the kernel's does).
        pub fn padding(mut self, len: u32) -> Self {
            self.hdr(TYPE_PADDING, 1);
            self.buf.extend_from_slice(&(len + 4).to_le_bytes());
            self.buf.extend(std::iter::repeat_n(0xee, len as usize));
            self
        }

        /// Finishes: sets the commit word (with lost-event flags) and pads to
        /// the full sub-buffer size.
        pub fn finish(self, lost: Lost) -> Vec<u8> {
            let PageBuilder { mut buf, layout } = self;
            let size = (buf.len() - layout.data_offset) as u64;
            let mut commit = size;
            match lost {
                Lost::None => {}
                Lost::Unknown => commit |= MISSED_EVENTS,
                Lost::Count(n) => {
                    commit |= MISSED_EVENTS | MISSED_STORED;
                    buf.extend_from_slice(&n.to_le_bytes());
                }
            }
            buf[8..16].copy_from_slice(&commit.to_le_bytes());
            buf.resize(layout.subbuf_size(), 0);
            buf
        }
    }
}

#[cfg(test)]
mod tests {
    use super::build::PageBuilder;
    use super::*;
    use proptest::prelude::*;

    const HEADER_PAGE: &str = "\tfield: u64 timestamp;\toffset:0;\tsize:8;\tsigned:0;
\tfield: local_t commit;\toffset:8;\tsize:8;\tsigned:1;
\tfield: int overwrite;\toffset:8;\tsize:1;\tsigned:1;
\tfield: char data;\toffset:16;\tsize:4080;\tsigned:0;
";

    #[test]
    fn header_page_of_this_kernel_family() {
        let l = PageLayout::parse(HEADER_PAGE).unwrap();
        assert_eq!(l.subbuf_size(), 4096);
        assert_eq!((l.commit_offset, l.commit_size, l.data_offset), (8, 8, 16));
        assert!(PageLayout::parse("nonsense").is_err());
    }

    #[test]
    fn every_record_type() {
        let page = PageBuilder::new(1000)
            .event(5, &[1, 0, 0, 0, 7, 0, 0, 0]) // ts 1005
            .padding(12)
            .extend(3, 1) // ts += (1<<27) + 3
            .long_event(2, &[2; 8]) // ts += 2
            .absolute(5_000_000_000)
            .event(10, &[3; 200]) // long form by size
            .finish(Lost::None);
        let p = Page::parse(PageLayout::DEFAULT_64, &page).unwrap();
        assert_eq!(p.ts_base, 1000);
        assert_eq!(p.lost, Lost::None);
        let recs: Vec<Record> = p.clone().collect();
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[0].ts, 1005);
        assert_eq!(recs[0].data, &[1, 0, 0, 0, 7, 0, 0, 0]);
        assert_eq!(recs[1].ts, 1005 + (1 << 27) + 3 + 2);
        assert_eq!(recs[1].data, &[2; 8]);
        assert_eq!(recs[2].ts, 5_000_000_010);
        assert_eq!(recs[2].data.len(), 200);
        let mut p2 = p;
        p2.by_ref().for_each(drop);
        assert_eq!(p2.error(), None);
    }

    #[test]
    fn lost_event_flags() {
        let count = PageBuilder::new(0)
            .event(1, &[0; 8])
            .finish(Lost::Count(42));
        assert_eq!(
            Page::parse(PageLayout::DEFAULT_64, &count).unwrap().lost,
            Lost::Count(42)
        );
        let unknown = PageBuilder::new(0).event(1, &[0; 8]).finish(Lost::Unknown);
        let p = Page::parse(PageLayout::DEFAULT_64, &unknown).unwrap();
        assert_eq!(p.lost, Lost::Unknown);
        assert_eq!(p.count(), 1);
    }

    #[test]
    fn padding_with_zero_delta_ends_the_page() {
        let mut page = PageBuilder::new(0).event(1, &[0; 8]).finish(Lost::None);
        // Append a "rest is empty" padding header and a bogus record after it
        // inside the committed size.
        let size = u64::from_le_bytes(page[8..16].try_into().unwrap()) as usize;
        page[16 + size..16 + size + 4].copy_from_slice(&TYPE_PADDING.to_le_bytes());
        page[16 + size + 4..16 + size + 8].copy_from_slice(&0xffff_ffffu32.to_le_bytes());
        page[8..16].copy_from_slice(&((size + 8) as u64).to_le_bytes());
        let p = Page::parse(PageLayout::DEFAULT_64, &page).unwrap();
        assert_eq!(p.count(), 1);
    }

    #[test]
    fn corrupt_records_stop_with_an_error() {
        let mut page = PageBuilder::new(0)
            .event(1, &[0; 8])
            .event(1, &[0; 8])
            .finish(Lost::None);
        // Make the second record claim a long length past the data.
        page[16 + 12..16 + 16].copy_from_slice(&0u32.to_le_bytes());
        page[16 + 16..16 + 20].copy_from_slice(&9999u32.to_le_bytes());
        let mut p = Page::parse(PageLayout::DEFAULT_64, &page).unwrap();
        assert_eq!(p.by_ref().count(), 1);
        assert!(matches!(p.error(), Some(PageError::BadRecord { .. })));
        assert_eq!(
            Page::parse(PageLayout::DEFAULT_64, &[0u8; 10]).err(),
            Some(PageError::Truncated)
        );
    }

    #[test]
    fn stats_sum_every_kind_of_loss() {
        let s = "entries: 5\noverrun: 10\ncommit overrun: 1\nbytes: 9\noldest event ts: 1.0\nnow ts: 2.0\ndropped events: 2\nread events: 7\n";
        assert_eq!(lost_from_stats(s), 13);
        assert_eq!(lost_from_stats(""), 0);
        assert_eq!(read_events_from_stats(s), Some(7));
        assert_eq!(read_events_from_stats("entries: 5\n"), None);
        assert_eq!(read_events_from_stats("read events: x\n"), None);
    }

    proptest! {
        #[test]
        fn pages_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4200)) {
            if let Ok(p) = Page::parse(PageLayout::DEFAULT_64, &bytes) {
                for r in p { prop_assert!(r.data.len() <= 4080); }
            }
        }

        #[test]
        fn mutated_real_pages_never_panic(flip in proptest::collection::vec((0usize..4096, any::<u8>()), 1..16)) {
            let mut page = PageBuilder::new(77)
                .event(5, &[1; 8]).extend(1, 2).long_event(2, &[2; 40]).padding(8).absolute(1 << 40).event(1, &[3; 16])
                .finish(Lost::Count(3));
            for (i, v) in flip { page[i] = v; }
            if let Ok(p) = Page::parse(PageLayout::DEFAULT_64, &page) {
                let _ = p.count();
            }
        }
    }
}

/// Sub-buffers captured from real kernels (`tests/vm/capture-testdata`):
/// `common/testdata/kernels/<kernel>/raw/`.
#[cfg(test)]
mod captured {
    use super::*;
    use std::collections::HashMap;
    use std::path::{Path, PathBuf};

    fn kernels() -> Vec<PathBuf> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/kernels");
        let mut v: Vec<PathBuf> = std::fs::read_dir(root)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.join("raw").is_dir())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    fn meta(path: &Path) -> HashMap<String, String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    struct Tally {
        events: u64,
        lost_count: u64,
        lost_pages: u64,
    }

    fn tally(kdir: &Path, name: &str, id: u16, pid: i32) -> Tally {
        let layout =
            PageLayout::parse(&std::fs::read_to_string(kdir.join("events/header_page")).unwrap())
                .unwrap();
        let mut t = Tally {
            events: 0,
            lost_count: 0,
            lost_pages: 0,
        };
        for cpu in 0..64 {
            let Ok(bytes) = std::fs::read(kdir.join(format!("raw/{name}-cpu{cpu}.bin"))) else {
                break;
            };
            for chunk in bytes.chunks(layout.subbuf_size()) {
                let mut page = Page::parse(layout, chunk).unwrap();
                match page.lost {
                    Lost::None => {}
                    Lost::Count(n) => {
                        t.lost_pages += 1;
                        t.lost_count += n;
                    }
                    Lost::Unknown => t.lost_pages += 1,
                }
                let mut last = 0;
                for r in page.by_ref() {
                    assert!(r.ts >= last, "time went backwards in {}", kdir.display());
                    last = r.ts;
                    let ty = u16::from_ne_bytes([r.data[0], r.data[1]]);
                    let p = i32::from_ne_bytes(r.data[4..8].try_into().unwrap());
                    if ty == id && p == pid {
                        t.events += 1;
                    }
                }
                assert_eq!(page.error(), None, "{}", kdir.display());
            }
        }
        t
    }

    #[test]
    fn every_captured_getppid_event_is_found() {
        let ks = kernels();
        assert!(!ks.is_empty(), "no captured kernel data");
        for k in ks {
            let m = meta(&k.join("raw/getppid.meta"));
            let id: u16 = m["id"].parse().unwrap();
            let pid: i32 = m["pid"].parse().unwrap();
            let count: u64 = m["count"].parse().unwrap();
            let t = tally(&k, "getppid", id, pid);
            // `count` was taken from the kernel's own text output.
            assert_eq!(t.events, count, "{}", k.display());
            assert_eq!(t.lost_pages, 0, "{}", k.display());
        }
    }

    #[test]
    fn captured_overruns_are_flagged() {
        for k in kernels() {
            let m = meta(&k.join("raw/lost.meta"));
            let id: u16 = m["id"].parse().unwrap();
            let pid: i32 = m["pid"].parse().unwrap();
            let count: u64 = m["count"].parse().unwrap();
            let overrun: u64 = (0..64)
                .filter_map(|c| m.get(&format!("cpu{c}.overrun")))
                .map(|v| v.parse::<u64>().unwrap())
                .sum();
            let t = tally(&k, "lost", id, pid);
            assert_eq!(t.events, count, "{}", k.display());
            assert!(overrun > 0, "{}: the capture did not overrun", k.display());
            assert!(
                t.lost_pages >= 1,
                "{}: no sub-buffer says events were lost",
                k.display()
            );
            assert!(t.lost_count <= overrun, "{}", k.display());
        }
    }
}
