//! Reading a trace buffer's binary per-CPU files (`trace_pipe_raw`).
//!
//! [`Reader`] opens `per_cpu/cpuN/trace_pipe_raw` of a buffer directory (an
//! instance's, see `Instance::reader`) for every CPU, non-blocking, and
//! hands out whole sub-buffers' records ([`Reader::drain`]). Lost events are
//! reported as they are seen (sub-buffer flags) and counted from
//! `per_cpu/cpuN/stats`: never silently. The read loop that tools run over
//! it is `app::stream`.

use crate::base::error::{Error, IoContext, Result};
use crate::base::Flow;
use crate::buffer::ringbuf::{lost_from_stats, read_events_from_stats, Lost, Page, PageLayout};
use crate::kernel::tracefs;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::marker::PhantomData;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The longest the read loop sleeps before it looks at the stop flag again.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// One event record.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    /// The CPU whose buffer held it.
    pub cpu: u32,
    /// Its time stamp (ns of `CLOCK_MONOTONIC` with the `mono` clock).
    pub ts: u64,
    /// The event id (`common_type`).
    pub id: u16,
    /// The task (thread) ID that recorded it (`common_pid`).
    pub pid: i32,
    /// The whole payload, common fields first.
    pub data: &'a [u8],
}

impl<'a> Event<'a> {
    /// Decodes the common header of a record; `None` if it is too short.
    pub fn from_record(cpu: u32, ts: u64, data: &'a [u8]) -> Option<Event<'a>> {
        let id = u16::from_ne_bytes(data.get(0..2)?.try_into().ok()?);
        let pid = i32::from_ne_bytes(data.get(4..8)?.try_into().ok()?);
        Some(Event {
            cpu,
            ts,
            id,
            pid,
            data,
        })
    }
}

/// What [`Reader::drain`] hands out.
#[derive(Debug, Clone, Copy)]
pub enum Item<'a> {
    /// An event.
    Event(Event<'a>),
    /// Events were lost on a CPU (`None`: how many is unknown).
    Lost(u32, Option<u64>),
}

struct CpuBuf {
    cpu: u32,
    file: File,
    /// Lost events of this CPU reported so far.
    reported_lost: u64,
    /// The kernel's `read events` of this CPU when the reader opened it.
    read_at_open: Option<u64>,
    /// Data records of this CPU found in the sub-buffers read.
    decoded: u64,
}

/// Counters kept while reading.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReadStats {
    /// Sub-buffers read.
    pub pages: u64,
    /// Data records read.
    pub events: u64,
    /// Events the sub-buffer flags said were lost (where they said how many).
    pub flagged_lost: u64,
    /// Sub-buffers flagged with an unknown number of lost events.
    pub unknown_lost: u64,
    /// Sub-buffers that could not be fully parsed.
    pub bad_pages: u64,
    /// Events the kernel says it handed to this reader (`read events` in
    /// `per_cpu/cpuN/stats`) that the reader did not find in the
    /// sub-buffers: lost on our side. Set by [`Reader::check_accounting`].
    pub unaccounted: u64,
}

/// The per-CPU buffers of one instance, open for reading. The lifetime
/// ties it to what owns the buffer: it must be closed before the instance
/// can be removed.
pub struct Reader<'i> {
    dir: PathBuf,
    owner: PhantomData<&'i ()>,
    layout: PageLayout,
    cpus: Vec<CpuBuf>,
    page: Vec<u8>,
    ordered_clock: bool,
    /// The earliest last time stamp of the CPUs that the last drain left
    /// with data (the page cap): events after it are not read yet.
    behind: Option<u64>,
    /// Whether sub-buffers were handed out whole ([`Reader::drain_pages`]):
    /// their records are not counted here.
    pages_only: bool,
    /// What has been read so far.
    pub stats: ReadStats,
}

impl<'i> Reader<'i> {
    /// Opens every CPU's `trace_pipe_raw` of the buffer in `dir` (an
    /// instance's directory, or the top level), with the `header_page` text
    /// of this kernel. `ordered_clock` names the clock that makes time
    /// stamps comparable across CPUs and with `CLOCK_MONOTONIC`.
    pub fn open(
        dir: &Path,
        header_page: &str,
        cpus: &[u32],
        ordered_clock: &str,
    ) -> Result<Reader<'i>> {
        let layout = PageLayout::parse(header_page)?;
        let mut bufs = Vec::new();
        for &cpu in cpus {
            let p = dir.join(format!("per_cpu/cpu{cpu}/trace_pipe_raw"));
            let file = OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
                .open(&p)
                .ctx("open", &p)?;
            let stats = dir.join(format!("per_cpu/cpu{cpu}/stats"));
            let read_at_open = tracefs::read_text(&stats)
                .ok()
                .and_then(|s| read_events_from_stats(&s));
            bufs.push(CpuBuf {
                cpu,
                file,
                reported_lost: 0,
                read_at_open,
                decoded: 0,
            });
        }
        if bufs.is_empty() {
            return Err(Error::unsupported(format!(
                "the trace buffer {} has no per-CPU buffers",
                dir.display()
            )));
        }
        let ordered_clock = tracefs::read_text(&dir.join("trace_clock"))
            .map(|c| c.contains(&format!("[{ordered_clock}]")))
            .unwrap_or(false);
        Ok(Reader {
            dir: dir.to_path_buf(),
            owner: PhantomData,
            page: vec![0u8; layout.subbuf_size()],
            layout,
            cpus: bufs,
            ordered_clock,
            behind: None,
            pages_only: false,
            stats: ReadStats::default(),
        })
    }

    /// The sub-buffer layout of this kernel.
    pub fn layout(&self) -> PageLayout {
        self.layout
    }

    /// Reads one sub-buffer of CPU index `i`; `Ok(false)` when it is empty.
    fn read_page(&mut self, i: usize) -> Result<Option<usize>> {
        let cb = &mut self.cpus[i];
        match cb.file.read(&mut self.page) {
            Ok(0) => Ok(None),
            Ok(n) => Ok(Some(n)),
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => Ok(None),
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => Ok(None),
            Err(e) => Err(Error::io(
                "read",
                &self
                    .dir
                    .join(format!("per_cpu/cpu{}/trace_pipe_raw", cb.cpu)),
                e,
            )),
        }
    }

    /// Reads every CPU until it is empty (or 256 sub-buffers each), passing
    /// events and lost-event flags to `f`. Returns the number of records
    /// read, and [`Flow::Stop`] if `f` asked to stop.
    pub fn drain(&mut self, f: &mut dyn FnMut(Item) -> Flow) -> Result<(u64, Flow)> {
        let mut n = 0u64;
        for i in 0..self.cpus.len() {
            // Bound the pages per CPU per round so that one busy CPU cannot
            // starve the others (or the stop flag).
            let mut drained = false;
            let mut last_ts = None;
            for _ in 0..256 {
                let Some(len) = self.read_page(i)? else {
                    drained = true;
                    break;
                };
                let cpu = self.cpus[i].cpu;
                self.stats.pages += 1;
                let Ok(lost) = Page::parse(self.layout, &self.page[..len]).map(|p| p.lost) else {
                    self.stats.bad_pages += 1;
                    continue;
                };
                if let Some(count) = self.note_lost(i, lost) {
                    if f(Item::Lost(cpu, count)) == Flow::Stop {
                        return Ok((n, Flow::Stop));
                    }
                }
                let Ok(mut page) = Page::parse(self.layout, &self.page[..len]) else {
                    continue;
                };
                while let Some(rec) = page.next() {
                    last_ts = Some(rec.ts);
                    self.cpus[i].decoded += 1;
                    let Some(ev) = Event::from_record(cpu, rec.ts, rec.data) else {
                        self.stats.bad_pages += 1;
                        continue;
                    };
                    n += 1;
                    self.stats.events += 1;
                    if f(Item::Event(ev)) == Flow::Stop {
                        // The kernel counts the rest of the sub-buffer as
                        // read: so do we (nobody will ask for it).
                        self.cpus[i].decoded += page.count() as u64;
                        return Ok((n, Flow::Stop));
                    }
                }
                if page.error().is_some() {
                    self.stats.bad_pages += 1;
                }
            }
            // This CPU still has older events than the others may have read
            // past: the ordered merge must not release beyond its last one.
            if let (false, Some(t)) = (drained, last_ts) {
                self.behind = Some(self.behind.map_or(t, |b| b.min(t)));
            }
        }
        Ok((n, Flow::Continue))
    }

    /// Counts the events a sub-buffer of CPU index `i` says were lost
    /// before it: `None` if none were, `Some(None)` if some were and
    /// nobody can tell how many.
    fn note_lost(&mut self, i: usize, lost: Lost) -> Option<Option<u64>> {
        match lost {
            Lost::None => None,
            Lost::Count(c) => {
                self.stats.flagged_lost += c;
                self.cpus[i].reported_lost += c;
                Some(Some(c))
            }
            Lost::Unknown => {
                // A full sub-buffer has no room for the count: take it
                // from the kernel's per-CPU stats instead.
                self.stats.unknown_lost += 1;
                let total = lost_from_stats(&self.stats_text(self.cpus[i].cpu));
                let cb = &mut self.cpus[i];
                let count = total.checked_sub(cb.reported_lost).filter(|d| *d > 0);
                cb.reported_lost = cb.reported_lost.max(total);
                if let Some(d) = count {
                    self.stats.flagged_lost += d;
                }
                Some(count)
            }
        }
    }

    /// Like [`Reader::drain`], for a recorder: hands each whole sub-buffer,
    /// as the kernel gave it, to `f` with its CPU, without looking at the
    /// events (lost-event flags are counted as `drain` counts them).
    /// Returns the number of sub-buffers.
    pub fn drain_pages(&mut self, f: &mut dyn FnMut(u32, &[u8])) -> Result<u64> {
        self.pages_only = true;
        let mut n = 0u64;
        for i in 0..self.cpus.len() {
            for _ in 0..256 {
                let Some(len) = self.read_page(i)? else {
                    break;
                };
                n += 1;
                self.stats.pages += 1;
                match Page::parse(self.layout, &self.page[..len]) {
                    Ok(p) => {
                        let lost = p.lost;
                        self.note_lost(i, lost);
                    }
                    Err(_) => self.stats.bad_pages += 1,
                }
                f(self.cpus[i].cpu, &self.page[..len]);
            }
        }
        Ok(n)
    }

    /// Waits until some CPU has data, or `timeout` passes, or a signal.
    pub fn wait(&self, timeout: Duration) {
        let mut fds: Vec<libc::pollfd> = self
            .cpus
            .iter()
            .map(|c| libc::pollfd {
                fd: c.file.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: fds is a valid array of pollfd for the duration of the call.
        unsafe {
            libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms);
        }
    }

    /// Lost events per CPU from `per_cpu/cpuN/stats` (overwritten, commit
    /// overruns and dropped).
    pub fn lost_per_cpu(&self) -> Vec<(u32, u64)> {
        self.cpus
            .iter()
            .map(|c| (c.cpu, lost_from_stats(&self.stats_text(c.cpu))))
            .collect()
    }

    /// Compares, per CPU, the events the kernel says it handed to readers
    /// since this reader opened (`read events` in `per_cpu/cpuN/stats`)
    /// with the data records this reader found in the sub-buffers it got:
    /// any shortfall was lost on our side (a sub-buffer misread or
    /// skipped), and is returned per CPU and added up in
    /// [`ReadStats::unaccounted`]. Call it after the last [`Reader::drain`];
    /// it says nothing after [`Reader::drain_pages`] (whole sub-buffers are
    /// handed on undecoded) or where the kernel has no such count.
    pub fn check_accounting(&mut self) -> Vec<(u32, u64)> {
        let mut out = Vec::new();
        if self.pages_only {
            return out;
        }
        for c in &self.cpus {
            let Some(at_open) = c.read_at_open else {
                continue;
            };
            let Some(now) = read_events_from_stats(&self.stats_text(c.cpu)) else {
                continue;
            };
            let missing = now.saturating_sub(at_open).saturating_sub(c.decoded);
            if missing > 0 {
                out.push((c.cpu, missing));
            }
        }
        self.stats.unaccounted = out.iter().map(|(_, n)| n).sum();
        out
    }

    fn stats_text(&self, cpu: u32) -> String {
        tracefs::read_text(&self.dir.join(format!("per_cpu/cpu{cpu}/stats"))).unwrap_or_default()
    }

    /// Whether time stamps of all CPUs compare (the ordered clock is set).
    pub fn ordered_clock(&self) -> bool {
        self.ordered_clock
    }

    /// The earliest time stamp past which some CPU still holds unread
    /// events after the last [`Reader::drain`] (which reads at most 256
    /// sub-buffers per CPU): an ordered merge must not release beyond it.
    pub fn take_behind(&mut self) -> Option<u64> {
        self.behind.take()
    }

    /// Turns recording off in the buffer's directory; what is recorded
    /// stays readable.
    pub fn stop_recording(&self) -> Result<()> {
        tracefs::write_file(&self.dir.join("tracing_on"), "0", false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::ringbuf::build::PageBuilder;

    const HEADER_PAGE: &str = "\tfield: u64 timestamp;\toffset:0;\tsize:8;\tsigned:0;
\tfield: local_t commit;\toffset:8;\tsize:8;\tsigned:1;
\tfield: char data;\toffset:16;\tsize:4080;\tsigned:0;
";

    fn event(pid: i32) -> Vec<u8> {
        let mut p = vec![0u8; 16];
        p[0..2].copy_from_slice(&7u16.to_ne_bytes());
        p[4..8].copy_from_slice(&pid.to_ne_bytes());
        p
    }

    /// A buffer directory whose cpu0 "trace_pipe_raw" is a plain file of
    /// `pages`, with the kernel's `read events` at `read_before`.
    fn fake_buffer(pages: &[Vec<u8>], read_before: u64) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let cpu = dir.path().join("per_cpu/cpu0");
        std::fs::create_dir_all(&cpu).unwrap();
        std::fs::write(cpu.join("trace_pipe_raw"), pages.concat()).unwrap();
        set_read_events(dir.path(), read_before);
        std::fs::write(dir.path().join("trace_clock"), "local [mono]\n").unwrap();
        dir
    }

    fn set_read_events(dir: &Path, n: u64) {
        std::fs::write(
            dir.join("per_cpu/cpu0/stats"),
            format!(
                "entries: 0\noverrun: 0\ncommit overrun: 0\ndropped events: 0\nread events: {n}\n"
            ),
        )
        .unwrap();
    }

    fn pages() -> Vec<Vec<u8>> {
        vec![
            PageBuilder::new(1)
                .event(1, &event(10))
                .padding(8)
                .event(1, &event(11))
                .finish(Lost::None),
            PageBuilder::new(2)
                .extend(1, 1)
                .event(1, &event(12))
                .finish(Lost::None),
        ]
    }

    #[test]
    fn every_event_the_kernel_handed_out_is_accounted_for() {
        let dir = fake_buffer(&pages(), 5);
        let mut r = Reader::open(dir.path(), HEADER_PAGE, &[0], "mono").unwrap();
        let mut pids = Vec::new();
        r.drain(&mut |it| {
            if let Item::Event(e) = it {
                pids.push(e.pid);
            }
            Flow::Continue
        })
        .unwrap();
        assert_eq!(pids, [10, 11, 12]);
        // The kernel counted the three (after five read before we opened).
        set_read_events(dir.path(), 8);
        assert!(r.check_accounting().is_empty());
        assert_eq!(r.stats.unaccounted, 0);
        // Had it handed out four, one was lost on our side: say so.
        set_read_events(dir.path(), 9);
        assert_eq!(r.check_accounting(), [(0, 1)]);
        assert_eq!(r.stats.unaccounted, 1);
    }

    #[test]
    fn a_sink_that_stops_mid_page_is_not_a_loss() {
        let dir = fake_buffer(&pages(), 0);
        let mut r = Reader::open(dir.path(), HEADER_PAGE, &[0], "mono").unwrap();
        let (n, flow) = r.drain(&mut |_| Flow::Stop).unwrap();
        assert_eq!((n, flow), (1, Flow::Stop));
        // The kernel handed out the whole first page (two events).
        set_read_events(dir.path(), 2);
        assert!(r.check_accounting().is_empty());
    }

    #[test]
    fn no_count_no_claim() {
        let dir = fake_buffer(&pages(), 0);
        std::fs::write(dir.path().join("per_cpu/cpu0/stats"), "entries: 0\n").unwrap();
        let mut r = Reader::open(dir.path(), HEADER_PAGE, &[0], "mono").unwrap();
        r.drain(&mut |_| Flow::Continue).unwrap();
        assert!(r.check_accounting().is_empty());
        // Whole pages handed on: nothing to compare.
        let dir = fake_buffer(&pages(), 0);
        let mut r = Reader::open(dir.path(), HEADER_PAGE, &[0], "mono").unwrap();
        r.drain_pages(&mut |_, _| {}).unwrap();
        set_read_events(dir.path(), 3);
        assert!(r.check_accounting().is_empty());
    }
}
