//! Block devices and block I/O requests, as the `block:` tracepoints show
//! them.
//!
//! - Device numbers: the tracepoints record the kernel's internal `dev_t`
//!   (`major << 20 | minor`), printed `MAJ,MIN` as the kernel does.
//! - [`DevTable`]: the block devices of this machine from
//!   `/sys/class/block` (names, numbers, partitions with their first sector
//!   and size), so that `-d vda`, `-d 254,0` and `-d vda1` all work. Request
//!   events name the whole disk with absolute sectors; a partition is that
//!   disk plus a sector range. Bio events may name the partition: map them
//!   with [`DevTable::disk_of`].
//! - `rwbs`: the type letters (`R` read, `W` write, `D` discard, `E` secure
//!   erase, `F` flush or FUA, `N` none, `A` readahead, `S` sync, `M`
//!   metadata, `U` atomic) and glob patterns over them.
//! - [`Tracker`]: pairs the start, issue and completion of each request.
//!   The kernel gives no request id in these events, so requests are keyed
//!   by (device, sector), as perf-tools did, but with what perf-tools
//!   lacked: merges move or remove keys, partial completions advance them,
//!   two requests on one key are told apart by time and direction, a
//!   completion without a start is counted (never printed with an invented
//!   latency), entries that lost events may have orphaned are discarded,
//!   and the table is bounded in age and size.

use crate::base::glob::{self, Glob};
use crate::{Error, Result};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

/// Bits of the minor number in the kernel's internal `dev_t`.
pub const MINORBITS: u32 = 20;

/// The kernel-internal device number of `major,minor`.
pub fn mkdev(major: u32, minor: u32) -> u32 {
    (major << MINORBITS) | (minor & ((1 << MINORBITS) - 1))
}

/// The major number of a kernel-internal `dev_t`.
pub fn major(dev: u32) -> u32 {
    dev >> MINORBITS
}

/// The minor number of a kernel-internal `dev_t`.
pub fn minor(dev: u32) -> u32 {
    dev & ((1 << MINORBITS) - 1)
}

/// `MAJ,MIN`, the way the kernel and perf-tools print a device.
pub fn dev_text(dev: u32) -> String {
    format!("{},{}", major(dev), minor(dev))
}

/// One block device (a disk or a partition).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockDev {
    /// Its name (`vda`, `sda1`, `nvme0n1p2`).
    pub name: String,
    /// Its device number (kernel-internal `dev_t`).
    pub dev: u32,
    /// The whole disk's device number (the same as `dev` for a disk).
    pub disk: u32,
    /// Its first sector on the disk (0 for a disk).
    pub start: u64,
    /// Its size in 512-byte sectors (0 when unknown).
    pub sectors: u64,
    /// Whether the disk has a request queue (`mq/`), so that the request
    /// tracepoints fire for it; `None` when unknown. Device-mapper, md and
    /// zram devices have none: their I/O shows on the disks beneath them.
    pub request_based: Option<bool>,
}

impl BlockDev {
    /// Whether this is a partition.
    pub fn is_partition(&self) -> bool {
        self.dev != self.disk
    }
}

/// The block devices of the machine.
#[derive(Debug, Clone, Default)]
pub struct DevTable {
    devs: Vec<BlockDev>,
}

/// Parses `MAJ:MIN` or `MAJ,MIN` into a kernel-internal `dev_t`.
pub fn parse_dev_number(s: &str) -> Option<u32> {
    let (a, b) = s.trim().split_once([':', ','])?;
    let maj: u32 = a.trim().parse().ok()?;
    let min: u32 = b.trim().parse().ok()?;
    if maj >= (1 << (32 - MINORBITS)) || min >= (1 << MINORBITS) {
        return None;
    }
    Some(mkdev(maj, min))
}

fn read_trim(p: &Path) -> Option<String> {
    fs::read_to_string(p).ok().map(|s| s.trim().to_string())
}

impl DevTable {
    /// The devices of this machine, from `/sys/class/block`, or from
    /// `/proc/partitions` when sysfs is not there.
    pub fn load() -> DevTable {
        let t = DevTable::from_sysfs(Path::new("/sys/class/block"));
        if !t.devs.is_empty() {
            return t;
        }
        DevTable::from_proc_partitions(&fs::read_to_string("/proc/partitions").unwrap_or_default())
    }

    /// Reads a `/sys/class/block`-shaped directory: one entry per device
    /// with a `dev` file; partitions have a `partition` file and `start`,
    /// and live inside their disk's directory.
    pub fn from_sysfs(class_dir: &Path) -> DevTable {
        let mut devs = Vec::new();
        let Ok(rd) = fs::read_dir(class_dir) else {
            return DevTable::default();
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let dir = e.path();
            let Some(dev) = read_trim(&dir.join("dev")).and_then(|s| parse_dev_number(&s)) else {
                continue;
            };
            let sectors = read_trim(&dir.join("size"))
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let (disk, start, disk_dir) = if dir.join("partition").exists() {
                let real = fs::canonicalize(&dir).unwrap_or(dir.clone());
                let parent = real.parent().map(Path::to_path_buf);
                let disk = parent
                    .as_ref()
                    .and_then(|p| read_trim(&p.join("dev")))
                    .and_then(|s| parse_dev_number(&s))
                    .unwrap_or(dev);
                let start = read_trim(&dir.join("start"))
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                (disk, start, parent.unwrap_or(dir.clone()))
            } else {
                (dev, 0, dir.clone())
            };
            let request_based = if disk_dir.join("queue").exists() {
                Some(disk_dir.join("mq").exists())
            } else {
                None
            };
            devs.push(BlockDev {
                name,
                dev,
                disk,
                start,
                sectors,
                request_based,
            });
        }
        devs.sort_by(|a, b| a.dev.cmp(&b.dev).then(a.name.cmp(&b.name)));
        DevTable { devs }
    }

    /// Reads `/proc/partitions` (`major minor #blocks name`). It does not
    /// say which disk a partition belongs to: each device counts as a disk.
    pub fn from_proc_partitions(text: &str) -> DevTable {
        let mut devs = Vec::new();
        for line in text.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() != 4 {
                continue;
            }
            let (Ok(maj), Ok(min), Ok(kb)) = (
                f[0].parse::<u32>(),
                f[1].parse::<u32>(),
                f[2].parse::<u64>(),
            ) else {
                continue;
            };
            if maj >= (1 << (32 - MINORBITS)) || min >= (1 << MINORBITS) {
                continue;
            }
            let dev = mkdev(maj, min);
            devs.push(BlockDev {
                name: f[3].to_string(),
                dev,
                disk: dev,
                start: 0,
                sectors: kb.saturating_mul(2),
                request_based: None,
            });
        }
        DevTable { devs }
    }

    /// Builds a table from a list (tests).
    #[cfg(test)]
    pub fn from_devs(devs: Vec<BlockDev>) -> DevTable {
        DevTable { devs }
    }

    /// Every device.
    pub fn devs(&self) -> &[BlockDev] {
        &self.devs
    }

    /// The device with this number.
    pub fn get(&self, dev: u32) -> Option<&BlockDev> {
        self.devs.iter().find(|d| d.dev == dev)
    }

    /// The device with this name.
    pub fn by_name(&self, name: &str) -> Option<&BlockDev> {
        self.devs.iter().find(|d| d.name == name)
    }

    /// The whole disk a device number belongs to (itself when unknown).
    #[cfg(test)]
    pub fn disk_of(&self, dev: u32) -> u32 {
        self.get(dev).map(|d| d.disk).unwrap_or(dev)
    }

    /// The name of a device number, if known.
    pub fn name_of(&self, dev: u32) -> Option<&str> {
        self.get(dev).map(|d| d.name.as_str())
    }

    /// The partitions of a disk.
    pub fn partitions_of(&self, disk: u32) -> impl Iterator<Item = &BlockDev> {
        self.devs
            .iter()
            .filter(move |d| d.disk == disk && d.is_partition())
    }

    /// Resolves a user's device: `MAJ,MIN`, `MAJ:MIN`, a name (`vda`,
    /// `sda1`) or a path (`/dev/sda1`, `/dev/mapper/x`). Unknown devices
    /// are a usage error with near names suggested.
    pub fn select(&self, spec: &str) -> Result<DevSel> {
        let s = spec.trim();
        if s.is_empty() || s.chars().any(|c| c.is_control()) {
            return Err(Error::usage(format!(
                "'{}' is not a device",
                spec.escape_debug()
            )));
        }
        let known = || {
            let list: Vec<String> = self
                .devs
                .iter()
                .filter(|d| !d.name.starts_with("loop") && !d.name.starts_with("ram"))
                .take(12)
                .map(|d| format!("{} ({})", d.name, dev_text(d.dev)))
                .collect();
            if list.is_empty() {
                String::new()
            } else {
                format!("; devices here: {}", list.join(", "))
            }
        };
        let dev = if s.starts_with(|c: char| c.is_ascii_digit()) && s.contains([',', ':']) {
            let dev = parse_dev_number(s).ok_or_else(|| {
                Error::usage(format!(
                    "'{s}' is not a device number: give MAJ,MIN (e.g. 254,0)"
                ))
            })?;
            match self.get(dev) {
                Some(d) => d,
                None => {
                    return Err(Error::usage(format!(
                        "no block device {}{}",
                        dev_text(dev),
                        known()
                    )))
                }
            }
        } else {
            let name = if s.starts_with('/') {
                let real = fs::canonicalize(s)
                    .map_err(|e| Error::usage(format!("no block device {s}: {e}{}", known())))?;
                real.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            } else {
                s.to_string()
            };
            match self.by_name(&name) {
                Some(d) => d,
                None => {
                    let near =
                        glob::suggestions(&name, self.devs.iter().map(|d| d.name.as_str()), 3);
                    let hint = if near.is_empty() {
                        known()
                    } else {
                        glob::hint(&near)
                    };
                    return Err(Error::usage(format!(
                        "no block device named '{}'{hint}",
                        name.escape_debug()
                    )));
                }
            }
        };
        let range = if dev.is_partition() && dev.sectors > 0 {
            Some((dev.start, dev.start.saturating_add(dev.sectors)))
        } else {
            None
        };
        Ok(DevSel {
            disk: dev.disk,
            range,
            dev: dev.dev,
            label: dev.name.clone(),
            request_based: self.get(dev.disk).and_then(|d| d.request_based),
        })
    }
}

/// A selected device: a disk, or a partition (its disk and sector range).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevSel {
    /// The disk whose requests to keep.
    pub disk: u32,
    /// For a partition: its sectors on the disk, `[start, end)`.
    pub range: Option<(u64, u64)>,
    /// The device as selected (the partition's own number for one).
    pub dev: u32,
    /// Its name.
    pub label: String,
    /// Whether the disk has a request queue (see [`BlockDev`]).
    pub request_based: Option<bool>,
}

impl DevSel {
    /// Whether a request on `disk` starting at `sector` belongs to it.
    pub fn matches(&self, disk: u32, sector: u64) -> bool {
        disk == self.disk
            && self
                .range
                .map(|(s, e)| sector >= s && sector < e)
                .unwrap_or(true)
    }
}

/// Letters that appear in `rwbs` on some kernel (`B`: barrier, 2.6 only).
pub const RWBS_LETTERS: &str = "RWDEFNASMUB";

/// The data direction of a request, from its `rwbs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dir {
    /// `R`.
    Read,
    /// `W`.
    Write,
    /// `D` (discard, secure erase).
    Discard,
    /// Anything else: flushes (`F`), `N`.
    Other,
}

/// The direction of an `rwbs` string. `R`, `W` and `D` only ever stand
/// for the operation, so the first of them decides; flags like a leading
/// `F` (preflush), which the flush machinery may clear on the way, do not.
pub fn rwbs_dir(rwbs: &[u8]) -> Dir {
    for &c in rwbs {
        match c {
            b'R' => return Dir::Read,
            b'W' => return Dir::Write,
            b'D' => return Dir::Discard,
            0 => break,
            _ => {}
        }
    }
    Dir::Other
}

/// Compiles an I/O type pattern (`'*R*'`, `W`, `'?S'`): a glob over the
/// whole `rwbs`. Anything but `rwbs` letters and glob syntax is refused,
/// so that a typo does not silently match nothing.
pub fn type_pattern(p: &str) -> Result<Glob> {
    if p.is_empty() {
        return Err(Error::usage(
            "the I/O type pattern is empty (e.g. '*R*' for reads, '*W*' for writes)",
        ));
    }
    if let Some(c) = p
        .chars()
        .find(|c| !(RWBS_LETTERS.contains(*c) || "*?[]!^-".contains(*c)))
    {
        return Err(Error::usage(format!(
            "bad I/O type pattern '{}': '{}' is not a type letter; types are made of R (read), \
W (write), D (discard), E (erase), F (flush/FUA), N (none), A (readahead), S (sync), M (metadata), \
U (atomic); e.g. '*R*' for all reads",
            p.escape_debug(),
            c.escape_debug()
        )));
    }
    Glob::new(p)
}

/// A short string kept inline (comm, rwbs): no allocation per request.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Tag<const N: usize> {
    buf: [u8; N],
    len: u8,
}

impl<const N: usize> Tag<N> {
    /// From bytes, up to the first NUL, cut to `N` bytes.
    pub fn new(bytes: &[u8]) -> Self {
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        let len = end.min(N).min(255);
        let mut buf = [0u8; N];
        buf[..len].copy_from_slice(&bytes[..len]);
        Tag {
            buf,
            len: len as u8,
        }
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len as usize]
    }

    /// As text (invalid UTF-8 replaced).
    pub fn as_str(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(self.as_bytes())
    }
}

impl<const N: usize> Default for Tag<N> {
    fn default() -> Self {
        Tag {
            buf: [0; N],
            len: 0,
        }
    }
}

impl<const N: usize> std::fmt::Debug for Tag<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

/// The fields of one request event, decoded by name by the caller.
#[derive(Debug, Clone, Copy)]
pub struct RqEvent<'a> {
    /// Time stamp (ns).
    pub ts: u64,
    /// The whole disk's device number (map bio events with
    /// [`DevTable::disk_of`]).
    pub dev: u32,
    /// The first sector.
    pub sector: u64,
    /// Sectors (for a completion: sectors completed by this event).
    pub nr_sector: u64,
    /// Bytes, where the event has the field.
    pub bytes: Option<u64>,
    /// The type letters.
    pub rwbs: &'a [u8],
    /// The task that recorded the event (`common_pid`).
    pub tid: i32,
    /// The task's name as the event recorded it (empty if it has none).
    pub comm: &'a [u8],
}

/// A request the tracker knows about.
#[derive(Debug, Clone)]
pub struct Req {
    /// Its disk.
    pub dev: u32,
    /// Its first sector as shown (moves back on front merges).
    pub block: u64,
    /// Where its unfinished part starts (its key; advances on partial
    /// completions).
    cur: u64,
    /// Sectors not yet completed from `cur`.
    remaining: u64,
    /// Its size in sectors (as issued, or as started plus merges).
    pub nr_sector: u64,
    /// Its size in bytes.
    pub bytes: u64,
    /// Type letters (as issued, else as started).
    pub rwbs: Tag<10>,
    /// The thread that submitted it (or that issued it, if its start was
    /// not seen).
    pub tid: i32,
    /// That thread's name.
    pub comm: Tag<16>,
    /// When it was started (queued), if seen.
    pub t_start: Option<u64>,
    /// When it was (last) issued to the device, if seen.
    pub t_issue: Option<u64>,
    /// Times it was issued again (requeued).
    pub requeues: u32,
    dir: Dir,
    created: u64,
}

/// A finished request.
#[derive(Debug, Clone)]
pub struct Done {
    /// The request.
    pub req: Req,
    /// When it completed.
    pub t_done: u64,
}

impl Done {
    /// Time on the device: issue to completion.
    pub fn device_ns(&self) -> Option<u64> {
        let i = self.req.t_issue?;
        self.t_done.checked_sub(i)
    }

    /// Time from start (queue) to completion; issue to completion if the
    /// start was not seen.
    pub fn total_ns(&self) -> Option<u64> {
        let s = self.req.t_start.or(self.req.t_issue)?;
        self.t_done.checked_sub(s)
    }

    /// Time in the queue: start to issue.
    pub fn queue_ns(&self) -> Option<u64> {
        let (s, i) = (self.req.t_start?, self.req.t_issue?);
        i.checked_sub(s)
    }

    /// When it began: started, else issued.
    pub fn t_begin(&self) -> u64 {
        self.req.t_start.or(self.req.t_issue).unwrap_or(self.t_done)
    }
}

/// What the tracker counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrackerStats {
    /// Requests started (start events).
    pub started: u64,
    /// Requests first seen at issue (their start was not seen: started
    /// before tracing, or by a path without a start event, like flushes).
    pub issue_only: u64,
    /// Requests completed and handed out.
    pub completed: u64,
    /// Completions with no known request: begun before tracing, or their
    /// start was lost. Never printed.
    pub unmatched: u64,
    /// Requests dropped because events were lost while they were in flight
    /// (their completion could belong to another request).
    pub discarded_lost: u64,
    /// Requests dropped after [`Tracker::max_age_ns`] without completion.
    pub stale: u64,
    /// Requests dropped because the table was full.
    pub overflow: u64,
    /// Merges followed (front merges, request merges).
    pub merges: u64,
    /// Re-issues of a request (requeues).
    pub requeues: u64,
    /// Partial completions followed.
    pub partial: u64,
    /// Lost-event reports.
    pub loss_reports: u64,
}

type Key = (u32, u64, u64); // disk, current sector, sequence

/// Pairs request starts, issues and completions (see the module docs).
#[derive(Debug)]
pub struct Tracker {
    pending: BTreeMap<Key, Req>,
    seq: u64,
    loss_barrier: u64,
    /// Requests pending longer than this are dropped by [`Tracker::expire`].
    pub max_age_ns: u64,
    /// At most this many requests are kept.
    pub max_pending: usize,
    /// Counters.
    pub stats: TrackerStats,
}

impl Default for Tracker {
    fn default() -> Self {
        Tracker::new()
    }
}

/// How far back [`Tracker::complete`] looks for a request that covers a
/// completion's sector (a partially completed request).
const CONTAIN_SCAN: usize = 8;

impl Tracker {
    /// An empty tracker: requests older than 10 minutes or beyond 1 M are
    /// dropped.
    pub fn new() -> Tracker {
        Tracker {
            pending: BTreeMap::new(),
            seq: 0,
            loss_barrier: 0,
            max_age_ns: 600 * 1_000_000_000,
            max_pending: 1 << 20,
            stats: TrackerStats::default(),
        }
    }

    /// Requests in flight.
    #[cfg(test)]
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// The newest request at (dev, sector) of direction `dir`, created at
    /// or before `ts`, for which `ok` holds.
    fn find_exact(
        &self,
        dev: u32,
        sector: u64,
        dir: Dir,
        ts: u64,
        ok: impl Fn(&Req) -> bool,
    ) -> Option<Key> {
        self.pending
            .range((dev, sector, 0)..=(dev, sector, u64::MAX))
            .rev()
            .find(|(_, r)| r.dir == dir && r.created <= ts && ok(r))
            .map(|(k, _)| *k)
    }

    fn insert(&mut self, r: Req) {
        let k = (r.dev, r.cur, self.next_seq());
        self.pending.insert(k, r);
        if self.pending.len() > self.max_pending {
            self.shrink();
        }
    }

    fn rekey(&mut self, k: Key, f: impl FnOnce(&mut Req)) {
        if let Some(mut r) = self.pending.remove(&k) {
            f(&mut r);
            self.pending.insert((r.dev, r.cur, k.2), r);
        }
    }

    /// Drops the oldest eighth of the table.
    fn shrink(&mut self) {
        let mut ages: Vec<u64> = self.pending.values().map(|r| r.created).collect();
        let n = (ages.len() / 8).max(1);
        let (_, cut, _) = ages.select_nth_unstable(n - 1);
        let cut = *cut;
        let before = self.pending.len();
        self.pending.retain(|_, r| r.created > cut);
        self.stats.overflow += (before - self.pending.len()) as u64;
    }

    fn new_req(ev: &RqEvent, started: bool) -> Req {
        Req {
            dev: ev.dev,
            block: ev.sector,
            cur: ev.sector,
            remaining: ev.nr_sector,
            nr_sector: ev.nr_sector,
            bytes: ev.bytes.unwrap_or(ev.nr_sector.saturating_mul(512)),
            rwbs: Tag::new(ev.rwbs),
            tid: ev.tid,
            comm: Tag::new(ev.comm),
            t_start: started.then_some(ev.ts),
            t_issue: (!started).then_some(ev.ts),
            requeues: 0,
            dir: rwbs_dir(ev.rwbs),
            created: ev.ts,
        }
    }

    /// A request was created for a submitter (`block_io_start`, or
    /// `block_getrq` on older kernels).
    pub fn start(&mut self, ev: &RqEvent) {
        self.stats.started += 1;
        self.insert(Self::new_req(ev, true));
    }

    /// A request was issued to the device (`block_rq_issue`). Its size and
    /// type are taken from here (they include every merge). A request not
    /// seen before is tracked from here, attributed to the task on CPU.
    pub fn issue(&mut self, ev: &RqEvent) {
        let dir = rwbs_dir(ev.rwbs);
        let k = self
            .find_exact(ev.dev, ev.sector, dir, ev.ts, |r| r.t_issue.is_none())
            .or_else(|| self.find_exact(ev.dev, ev.sector, dir, ev.ts, |_| true));
        match k.and_then(|k| self.pending.get_mut(&k)) {
            Some(r) => {
                if r.t_issue.is_some() {
                    r.requeues += 1;
                    self.stats.requeues += 1;
                }
                r.t_issue = Some(ev.ts);
                r.nr_sector = ev.nr_sector;
                r.remaining = ev.nr_sector;
                r.bytes = ev.bytes.unwrap_or(ev.nr_sector.saturating_mul(512));
                r.rwbs = Tag::new(ev.rwbs);
            }
            None => {
                self.stats.issue_only += 1;
                self.insert(Self::new_req(ev, false));
            }
        }
    }

    /// A bio was merged at the front of a request
    /// (`block_bio_frontmerge`): the request now starts at the bio.
    pub fn front_merge(&mut self, ev: &RqEvent) {
        let dir = rwbs_dir(ev.rwbs);
        let Some(end) = ev.sector.checked_add(ev.nr_sector) else {
            return;
        };
        let Some(k) = self.find_exact(ev.dev, end, dir, ev.ts, |r| r.t_issue.is_none()) else {
            return;
        };
        self.stats.merges += 1;
        let (sector, n) = (ev.sector, ev.nr_sector);
        self.rekey(k, |r| {
            r.cur = sector;
            r.block = sector;
            r.nr_sector = r.nr_sector.saturating_add(n);
            r.remaining = r.remaining.saturating_add(n);
            r.bytes = r.bytes.saturating_add(n.saturating_mul(512));
        });
    }

    /// A request was merged into the one before it and freed
    /// (`block_rq_merge` names the one that goes away).
    pub fn rq_merge(&mut self, ev: &RqEvent) {
        let dir = rwbs_dir(ev.rwbs);
        let gone = self
            .find_exact(ev.dev, ev.sector, dir, ev.ts, |r| r.t_issue.is_none())
            .and_then(|k| self.pending.remove(&k));
        let add = gone.map(|r| r.nr_sector).unwrap_or(ev.nr_sector);
        let prev = self
            .pending
            .range(..(ev.dev, ev.sector, 0))
            .rev()
            .take(CONTAIN_SCAN)
            .take_while(|(k, _)| k.0 == ev.dev)
            .find(|(_, r)| {
                r.dir == dir
                    && r.t_issue.is_none()
                    && r.cur.saturating_add(r.remaining) == ev.sector
            })
            .map(|(k, _)| *k);
        self.stats.merges += 1;
        if let Some(r) = prev.and_then(|k| self.pending.get_mut(&k)) {
            r.nr_sector = r.nr_sector.saturating_add(add);
            r.remaining = r.remaining.saturating_add(add);
            r.bytes = r.bytes.saturating_add(add.saturating_mul(512));
        }
    }

    /// A request completed: `block_io_done` (`partial` false: the whole
    /// request) or `block_rq_complete` (`partial` true: `nr_sector` of it,
    /// maybe not all). Returns the request when it is finished and its
    /// times can be trusted.
    pub fn complete(&mut self, ev: &RqEvent, partial: bool) -> Option<Done> {
        let dir = rwbs_dir(ev.rwbs);
        let issued_before = |r: &Req| !matches!(r.t_issue, Some(i) if i > ev.ts);
        let k = self
            .find_exact(ev.dev, ev.sector, dir, ev.ts, issued_before)
            .or_else(|| {
                // A request whose earlier part completed already, without
                // our seeing it advance.
                self.pending
                    .range(..(ev.dev, ev.sector, 0))
                    .rev()
                    .take(CONTAIN_SCAN)
                    .take_while(|(k, _)| k.0 == ev.dev)
                    .find(|(_, r)| {
                        r.dir == dir
                            && r.created <= ev.ts
                            && issued_before(r)
                            && r.cur < ev.sector
                            && ev.sector < r.cur.saturating_add(r.remaining)
                    })
                    .map(|(k, _)| *k)
            });
        let Some(k) = k else {
            self.stats.unmatched += 1;
            return None;
        };
        if partial && ev.nr_sector > 0 {
            let r = &self.pending[&k];
            let end = r.cur.saturating_add(r.remaining);
            let done_to = ev.sector.saturating_add(ev.nr_sector);
            if done_to < end {
                self.stats.partial += 1;
                self.rekey(k, |r| {
                    r.cur = done_to;
                    r.remaining = end - done_to;
                });
                return None;
            }
        }
        let req = self.pending.remove(&k)?;
        if req.created < self.loss_barrier {
            self.stats.discarded_lost += 1;
            return None;
        }
        self.stats.completed += 1;
        Some(Done { req, t_done: ev.ts })
    }

    /// Events were lost (on some CPU) before `now`: any request already
    /// begun may have lost its completion, and a later completion on its
    /// key would then be paired with it. Such requests are not handed out.
    pub fn lost(&mut self, now: u64) {
        self.stats.loss_reports += 1;
        self.loss_barrier = self.loss_barrier.max(now);
    }

    /// Drops requests older than [`Tracker::max_age_ns`] at time `now`, and
    /// those begun before a loss once `now` has passed it.
    pub fn expire(&mut self, now: u64) {
        let old = now.saturating_sub(self.max_age_ns);
        let barrier = if now >= self.loss_barrier {
            self.loss_barrier
        } else {
            0
        };
        let (mut stale, mut lost) = (0, 0);
        self.pending.retain(|_, r| {
            if r.created < barrier {
                lost += 1;
                false
            } else if r.created < old {
                stale += 1;
                false
            } else {
                true
            }
        });
        self.stats.stale += stale;
        self.stats.discarded_lost += lost;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const VDA: u32 = 254 << 20;

    fn ev<'a>(
        ts: u64,
        sector: u64,
        nr: u64,
        rwbs: &'a str,
        tid: i32,
        comm: &'a str,
    ) -> RqEvent<'a> {
        RqEvent {
            ts,
            dev: VDA,
            sector,
            nr_sector: nr,
            bytes: Some(nr * 512),
            rwbs: rwbs.as_bytes(),
            tid,
            comm: comm.as_bytes(),
        }
    }

    #[test]
    fn device_numbers() {
        assert_eq!(mkdev(254, 0), 266338304);
        assert_eq!(dev_text(266338304), "254,0");
        assert_eq!(parse_dev_number("254,0"), Some(266338304));
        assert_eq!(parse_dev_number("8:17"), Some(mkdev(8, 17)));
        assert_eq!(parse_dev_number("8"), None);
        assert_eq!(parse_dev_number("4096,0"), None);
        assert_eq!(parse_dev_number("1,1048576"), None);
        assert_eq!(major(mkdev(259, 3)), 259);
        assert_eq!(minor(mkdev(259, 3)), 3);
    }

    fn table() -> DevTable {
        DevTable::from_devs(vec![
            BlockDev {
                name: "vda".into(),
                dev: VDA,
                disk: VDA,
                start: 0,
                sectors: 1000,
                request_based: Some(true),
            },
            BlockDev {
                name: "vda1".into(),
                dev: VDA + 1,
                disk: VDA,
                start: 100,
                sectors: 200,
                request_based: Some(true),
            },
            BlockDev {
                name: "nvme0n1".into(),
                dev: mkdev(259, 0),
                disk: mkdev(259, 0),
                start: 0,
                sectors: 10,
                request_based: Some(true),
            },
        ])
    }

    #[test]
    fn devices_resolve_by_number_name_and_partition() {
        let t = table();
        let d = t.select("vda").unwrap();
        assert_eq!((d.disk, d.range), (VDA, None));
        assert_eq!(t.select("254,0").unwrap(), d);
        assert_eq!(t.select("254:0").unwrap(), d);
        let p = t.select("vda1").unwrap();
        assert_eq!((p.disk, p.range, p.dev), (VDA, Some((100, 300)), VDA + 1));
        assert!(p.matches(VDA, 100) && p.matches(VDA, 299));
        assert!(!p.matches(VDA, 300) && !p.matches(VDA, 99) && !p.matches(VDA + 1, 150));
        assert_eq!(t.select("254,1").unwrap(), p);
        assert_eq!(t.select("nvme0n1").unwrap().disk, mkdev(259, 0));
        assert_eq!(t.disk_of(VDA + 1), VDA);
        assert_eq!(t.disk_of(12345), 12345);
        let e = t.select("vdb").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("did you mean vda"), "{e}");
        let e = t.select("254,9").unwrap_err();
        assert!(e.to_string().contains("no block device 254,9"), "{e}");
        assert!(e.to_string().contains("vda (254,0)"), "{e}");
        for bad in ["", "a\nb", "999999,0", "/nonexistent/dev"] {
            assert_eq!(t.select(bad).unwrap_err().exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn sysfs_tree_with_partitions() {
        let root = tempfile::tempdir().unwrap();
        let disk = root.path().join("devices/vda");
        let part = disk.join("vda1");
        fs::create_dir_all(&part).unwrap();
        fs::create_dir_all(disk.join("queue")).unwrap();
        fs::create_dir_all(disk.join("mq")).unwrap();
        fs::write(disk.join("dev"), "254:0\n").unwrap();
        fs::write(disk.join("size"), "1000\n").unwrap();
        fs::write(part.join("dev"), "254:1\n").unwrap();
        fs::write(part.join("partition"), "1\n").unwrap();
        fs::write(part.join("start"), "2048\n").unwrap();
        fs::write(part.join("size"), "500\n").unwrap();
        let class = root.path().join("class");
        fs::create_dir(&class).unwrap();
        std::os::unix::fs::symlink(&disk, class.join("vda")).unwrap();
        std::os::unix::fs::symlink(&part, class.join("vda1")).unwrap();
        let t = DevTable::from_sysfs(&class);
        assert_eq!(t.devs().len(), 2);
        let p = t.by_name("vda1").unwrap();
        assert_eq!(
            (p.dev, p.disk, p.start, p.sectors),
            (VDA + 1, VDA, 2048, 500)
        );
        assert_eq!(p.request_based, Some(true));
        assert!(t.by_name("vda").unwrap().request_based.unwrap());
        assert_eq!(t.partitions_of(VDA).count(), 1);
        let pp = DevTable::from_proc_partitions(
            "major minor  #blocks  name\n\n 254        0  268435456 vda\n   8   1 100 sda1\nbad line\n",
        );
        assert_eq!(pp.devs().len(), 2);
        assert_eq!(pp.by_name("vda").unwrap().sectors, 536870912);
    }

    #[test]
    fn type_patterns() {
        let g = type_pattern("*R*").unwrap();
        assert!(g.matches("R") && g.matches("RA") && g.matches("RSM") && !g.matches("WS"));
        assert!(type_pattern("W").unwrap().matches("W"));
        assert!(!type_pattern("W").unwrap().matches("WS"));
        assert!(type_pattern("[RW]*").unwrap().matches("WS"));
        assert!(
            type_pattern("*R").unwrap().matches("WR") || !type_pattern("*R").unwrap().matches("RA")
        );
        for bad in ["", "*r*", "read", "x", "W S"] {
            let e = type_pattern(bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad}");
        }
        assert!(type_pattern("[RW").is_err());
        assert_eq!(rwbs_dir(b"FWS"), Dir::Write);
        assert_eq!(rwbs_dir(b"RA"), Dir::Read);
        assert_eq!(rwbs_dir(b"FF"), Dir::Other);
        assert_eq!(rwbs_dir(b"DE"), Dir::Discard);
        assert_eq!(rwbs_dir(b"N"), Dir::Other);
    }

    #[test]
    fn start_issue_done_pairs_and_attributes_to_the_submitter() {
        let mut t = Tracker::new();
        t.start(&ev(100, 8, 8, "W", 42, "dd"));
        t.issue(&ev(110, 8, 8, "W", 7, "kworker/0:1H"));
        let d = t.complete(&ev(200, 8, 0, "W", 0, ""), false).unwrap();
        assert_eq!((d.req.tid, d.req.comm.as_str().as_ref()), (42, "dd"));
        assert_eq!(d.device_ns(), Some(90));
        assert_eq!(d.total_ns(), Some(100));
        assert_eq!(d.queue_ns(), Some(10));
        assert_eq!(d.req.bytes, 4096);
        assert_eq!(t.pending(), 0);
        // Again: nothing left to pair.
        assert!(t.complete(&ev(300, 8, 0, "W", 0, ""), false).is_none());
        assert_eq!(t.stats.unmatched, 1);
    }

    #[test]
    fn completion_without_start_is_counted_not_invented() {
        let mut t = Tracker::new();
        assert!(t.complete(&ev(50, 1000, 8, "R", 0, ""), true).is_none());
        assert_eq!(t.stats.unmatched, 1);
        // A direction mismatch is not a match either.
        t.start(&ev(60, 1000, 8, "W", 1, "a"));
        assert!(t.complete(&ev(70, 1000, 8, "R", 0, ""), true).is_none());
        assert_eq!(t.stats.unmatched, 2);
        // Nor is a request that started after the completion.
        t.start(&ev(90, 2000, 8, "R", 1, "a"));
        assert!(t.complete(&ev(80, 2000, 8, "R", 0, ""), true).is_none());
    }

    #[test]
    fn merges_move_and_grow_requests() {
        let mut t = Tracker::new();
        // Front merge: a bio at 92+8 joins the request at 100.
        t.start(&ev(10, 100, 8, "W", 5, "a"));
        t.front_merge(&ev(11, 92, 8, "W", 6, "b"));
        t.issue(&ev(12, 92, 16, "W", 0, "kworker"));
        let d = t.complete(&ev(20, 92, 16, "W", 0, ""), true).unwrap();
        assert_eq!((d.req.block, d.req.bytes, d.req.tid), (92, 8192, 5));
        // Request merge: the one at 208 is merged into the one at 200.
        t.start(&ev(30, 200, 8, "W", 5, "a"));
        t.start(&ev(31, 208, 8, "W", 6, "b"));
        t.rq_merge(&ev(32, 208, 8, "W", 6, "b"));
        assert_eq!(t.pending(), 1);
        t.issue(&ev(33, 200, 16, "W", 0, "k"));
        let d = t.complete(&ev(40, 200, 16, "W", 0, ""), true).unwrap();
        assert_eq!((d.req.nr_sector, d.req.tid), (16, 5));
        assert_eq!(t.stats.merges, 2);
    }

    #[test]
    fn partial_completions_and_requeues() {
        let mut t = Tracker::new();
        t.start(&ev(10, 500, 16, "R", 9, "cat"));
        t.issue(&ev(11, 500, 16, "R", 0, "k"));
        t.issue(&ev(15, 500, 16, "R", 0, "k")); // requeued, issued again
        assert!(t.complete(&ev(20, 500, 8, "R", 0, ""), true).is_none());
        let d = t.complete(&ev(25, 508, 8, "R", 0, ""), true).unwrap();
        assert_eq!((d.req.block, d.req.bytes, d.req.requeues), (500, 8192, 1));
        assert_eq!(d.device_ns(), Some(10));
        // block_io_done after partial completions names the last part.
        t.start(&ev(30, 600, 16, "R", 9, "cat"));
        t.issue(&ev(31, 600, 16, "R", 0, "k"));
        let d = t.complete(&ev(40, 608, 0, "R", 0, ""), false).unwrap();
        assert_eq!(d.req.block, 600);
        assert_eq!(t.stats.partial, 1);
    }

    #[test]
    fn flushes_are_tracked_from_issue() {
        let mut t = Tracker::new();
        t.issue(&ev(10, 0, 0, "FF", 53, "kworker/0:1H"));
        let d = t.complete(&ev(12, 0, 0, "FF", 0, ""), false).unwrap();
        assert_eq!(d.req.comm.as_str(), "kworker/0:1H");
        assert_eq!(d.req.t_start, None);
        assert_eq!(d.total_ns(), Some(2));
        assert_eq!(t.stats.issue_only, 1);
    }

    #[test]
    fn a_lost_completion_never_yields_an_absurd_latency() {
        let mut t = Tracker::new();
        // Request A at sector 8: its completion is lost.
        t.start(&ev(1_000, 8, 8, "W", 1, "a"));
        t.issue(&ev(1_001, 8, 8, "W", 1, "a"));
        t.lost(5_000);
        // Long after, a new request on the same sector: paired with the new
        // start, never with A.
        t.start(&ev(90_000_000_000, 8, 8, "W", 2, "b"));
        t.issue(&ev(90_000_000_001, 8, 8, "W", 2, "b"));
        let d = t
            .complete(&ev(90_000_000_010, 8, 0, "W", 0, ""), false)
            .unwrap();
        assert_eq!(d.req.tid, 2);
        assert_eq!(d.device_ns(), Some(9));
        // A itself is gone at the next expiry, counted.
        t.expire(90_000_000_020);
        assert_eq!(t.pending(), 0);
        assert_eq!(t.stats.discarded_lost, 1);
        // A request in flight across a loss is not printed.
        t.start(&ev(100_000_000_000, 16, 8, "W", 3, "c"));
        t.lost(100_000_000_005);
        assert!(t
            .complete(&ev(100_000_000_010, 16, 8, "W", 0, ""), false)
            .is_none());
        assert_eq!(t.stats.discarded_lost, 2);
    }

    #[test]
    fn stale_and_overflowing_entries_are_dropped() {
        let mut t = Tracker::new();
        t.max_age_ns = 100;
        t.start(&ev(10, 8, 8, "W", 1, "a"));
        t.start(&ev(150, 16, 8, "W", 1, "a"));
        t.expire(200);
        assert_eq!((t.pending(), t.stats.stale), (1, 1));
        t.max_pending = 16;
        for i in 0..40 {
            t.start(&ev(300 + i, 1000 + i * 8, 8, "W", 1, "a"));
        }
        assert!(t.pending() <= 16);
        assert!(t.stats.overflow > 0);
        // The newest are kept.
        assert!(t
            .complete(&ev(400, 1000 + 39 * 8, 8, "W", 0, ""), true)
            .is_some());
    }

    #[test]
    fn tags_cut_and_stop_at_nul() {
        let t: Tag<4> = Tag::new(b"abcdef");
        assert_eq!(t.as_str(), "abcd");
        let t: Tag<16> = Tag::new(b"dd\0garbage");
        assert_eq!(t.as_bytes(), b"dd");
        assert_eq!(format!("{t:?}"), "\"dd\"");
    }

    proptest! {
        #[test]
        fn tracker_never_panics_nor_goes_back_in_time(
            ops in proptest::collection::vec((0u8..7, 0u64..64, 0u64..24, 0u8..4, 0u64..50), 0..300)
        ) {
            let mut t = Tracker::new();
            t.max_pending = 64;
            let mut ts = 0u64;
            for (op, sector, nr, kind, dt) in ops {
                ts += dt;
                let rwbs = ["W", "R", "FF", "DS"][kind as usize];
                let e = ev(ts, sector * 8, nr, rwbs, 1, "x");
                match op {
                    0 => t.start(&e),
                    1 => t.issue(&e),
                    2 => t.front_merge(&e),
                    3 => t.rq_merge(&e),
                    4 | 5 => {
                        if let Some(d) = t.complete(&e, op == 4) {
                            prop_assert!(d.t_begin() <= d.t_done);
                            prop_assert!(d.total_ns().unwrap() <= ts);
                            if let Some(x) = d.device_ns() { prop_assert!(x <= ts); }
                        }
                    }
                    _ => if dt % 3 == 0 { t.lost(ts) } else { t.expire(ts) },
                }
            }
        }

        #[test]
        fn device_parsing_never_panics(s in "\\PC{0,24}") {
            let _ = parse_dev_number(&s);
            let _ = table().select(&s);
            let _ = type_pattern(&s);
            let _ = DevTable::from_proc_partitions(&s);
        }
    }
}
