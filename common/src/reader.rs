//! Reading an instance's binary per-CPU buffers (`trace_pipe_raw`).
//!
//! [`Reader`] opens `per_cpu/cpuN/trace_pipe_raw` of an [`Instance`] for
//! every CPU, non-blocking. [`stream`] is the read loop every tool uses: it
//! reads whole sub-buffers from each CPU until none has data, hands each
//! record to a [`Sink`], waits with `poll()` for at most [`POLL_INTERVAL`]
//! (so a stop signal is noticed quickly), and at the end turns tracing off
//! and drains what is left. Lost events are reported to the sink as they are
//! seen (sub-buffer flags) and counted at the end from `per_cpu/cpuN/stats`:
//! never silently.
//!
//! In ordered mode events of all CPUs are merged by time stamp. An event is
//! held back until every CPU has been read past its time (the instance uses
//! the `mono` clock, so "now" is known), then emitted in order.

use crate::error::{Error, IoContext, Result};
use crate::instance::Instance;
use crate::ringbuf::{lost_from_stats, Lost, Page, PageLayout};
use crate::signals;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant};

/// The longest the read loop sleeps before it looks at the stop flag again.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// How far behind "now" the ordered merge stays, so that an event reserved
/// just before a read but committed just after it is still merged in order.
const ORDER_SLACK_NS: u64 = 5_000_000;

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

/// What a sink wants after an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Go on.
    Continue,
    /// Stop reading now (enough events, or the output was closed).
    Stop,
}

/// Receives what [`stream`] reads.
pub trait Sink {
    /// One event.
    fn event(&mut self, ev: &Event) -> Flow;
    /// Events were lost on `cpu` before the next ones (`None`: how many is
    /// unknown).
    fn lost(&mut self, _cpu: u32, _count: Option<u64>) -> Flow {
        Flow::Continue
    }
    /// Called after each round of reads: a good time to flush output.
    fn round_end(&mut self) -> Flow {
        Flow::Continue
    }
    /// Called about every `tick` set in [`StreamOpts`] (interval output).
    fn tick(&mut self) -> Flow {
        Flow::Continue
    }
}

/// `-M N` for a [`Sink`] whose events may each be followed by a stack
/// event: the run ends after the Nth event shown, once the round that holds
/// its stack is read; later events of that round, and their stacks, are
/// skipped.
#[derive(Debug, Default)]
pub struct MaxEvents {
    left: Option<u64>,
    past: bool,
}

impl MaxEvents {
    /// At most `max` events (`None`: no limit).
    pub fn new(max: Option<u64>) -> MaxEvents {
        MaxEvents {
            left: max,
            past: false,
        }
    }

    /// At an event: whether it comes after the last one (then so does the
    /// stack that may follow it).
    pub fn past(&mut self) -> bool {
        self.past = self.left == Some(0);
        self.past
    }

    /// Whether the stack event now read follows an event past the limit.
    pub fn skip_stack(&self) -> bool {
        self.past
    }

    /// After an event was shown: the end, if it was the last and no stack
    /// follows it.
    pub fn shown(&mut self, stack_follows: bool) -> Flow {
        if let Some(n) = &mut self.left {
            *n = n.saturating_sub(1);
            if *n == 0 && !stack_follows {
                return Flow::Stop;
            }
        }
        Flow::Continue
    }

    /// At a round's end (`flushed`: how its flush went): the end once the
    /// last event was shown.
    pub fn round_end(&self, flushed: Flow) -> Flow {
        if self.left == Some(0) {
            Flow::Stop
        } else {
            flushed
        }
    }
}

struct CpuBuf {
    cpu: u32,
    file: File,
    /// Lost events of this CPU reported so far.
    reported_lost: u64,
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
}

/// The per-CPU buffers of one instance, open for reading.
pub struct Reader<'i> {
    inst: &'i Instance,
    layout: PageLayout,
    cpus: Vec<CpuBuf>,
    page: Vec<u8>,
    ordered_clock: bool,
    /// The earliest last time stamp of the CPUs that the last drain left
    /// with data (the page cap): events after it are not read yet.
    behind: Option<u64>,
    /// What has been read so far.
    pub stats: ReadStats,
}

impl<'i> Reader<'i> {
    /// Opens every CPU's `trace_pipe_raw` of `inst`.
    pub fn open(inst: &'i Instance) -> Result<Reader<'i>> {
        let hp = inst.tracefs().read("events/header_page")?;
        let layout = PageLayout::parse(&hp)?;
        let mut cpus = Vec::new();
        for cpu in inst.cpus() {
            let p = inst.path(format!("per_cpu/cpu{cpu}/trace_pipe_raw"));
            let file = OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
                .open(&p)
                .ctx("open", &p)?;
            cpus.push(CpuBuf {
                cpu,
                file,
                reported_lost: 0,
            });
        }
        if cpus.is_empty() {
            return Err(Error::unsupported(format!(
                "the instance {} has no per-CPU buffers",
                inst.name()
            )));
        }
        let ordered_clock = inst
            .read("trace_clock")
            .map(|c| c.contains(&format!("[{}]", crate::instance::CLOCK)))
            .unwrap_or(false);
        Ok(Reader {
            inst,
            page: vec![0u8; layout.subbuf_size()],
            layout,
            cpus,
            ordered_clock,
            behind: None,
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
                    .inst
                    .path(format!("per_cpu/cpu{}/trace_pipe_raw", cb.cpu)),
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
                let Ok(mut page) = Page::parse(self.layout, &self.page[..len]) else {
                    self.stats.bad_pages += 1;
                    continue;
                };
                match page.lost {
                    Lost::None => {}
                    Lost::Count(c) => {
                        self.stats.flagged_lost += c;
                        self.cpus[i].reported_lost += c;
                        if f(Item::Lost(cpu, Some(c))) == Flow::Stop {
                            return Ok((n, Flow::Stop));
                        }
                    }
                    Lost::Unknown => {
                        // A full sub-buffer has no room for the count: take
                        // it from the kernel's per-CPU stats instead.
                        self.stats.unknown_lost += 1;
                        let total = lost_from_stats(
                            &self
                                .inst
                                .read(format!("per_cpu/cpu{cpu}/stats"))
                                .unwrap_or_default(),
                        );
                        let cb = &mut self.cpus[i];
                        let count = total.checked_sub(cb.reported_lost).filter(|d| *d > 0);
                        cb.reported_lost = cb.reported_lost.max(total);
                        if let Some(d) = count {
                            self.stats.flagged_lost += d;
                        }
                        if f(Item::Lost(cpu, count)) == Flow::Stop {
                            return Ok((n, Flow::Stop));
                        }
                    }
                }
                for rec in page.by_ref() {
                    last_ts = Some(rec.ts);
                    let Some(ev) = Event::from_record(cpu, rec.ts, rec.data) else {
                        continue;
                    };
                    n += 1;
                    self.stats.events += 1;
                    if f(Item::Event(ev)) == Flow::Stop {
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
            .map(|c| {
                let s = self
                    .inst
                    .read(format!("per_cpu/cpu{}/stats", c.cpu))
                    .unwrap_or_default();
                (c.cpu, lost_from_stats(&s))
            })
            .collect()
    }
}

/// How [`stream`] runs.
#[derive(Default)]
pub struct StreamOpts<'a> {
    /// Stop after this long (perf-tools' `-d`).
    pub duration: Option<Duration>,
    /// Merge CPUs by time stamp (for tools that print events).
    pub ordered: bool,
    /// Call [`Sink::tick`] this often (interval summaries).
    pub tick: Option<Duration>,
    /// Also stop when this says so (e.g. a traced command exited).
    pub stop_when: Option<&'a mut dyn FnMut() -> bool>,
}

/// What a finished [`stream`] saw.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Events handed to the sink.
    pub events: u64,
    /// Lost events per CPU, from the kernel's stats at the end.
    pub lost_per_cpu: Vec<(u32, u64)>,
    /// The reader's counters.
    pub read: ReadStats,
    /// Whether the sink stopped the stream (not a signal or the duration).
    pub stopped_by_sink: bool,
}

impl Summary {
    /// Total lost events: the kernel's count, or what the sub-buffer flags
    /// said if that is larger.
    pub fn lost(&self) -> u64 {
        let stats: u64 = self.lost_per_cpu.iter().map(|(_, n)| n).sum();
        stats.max(self.read.flagged_lost)
    }

    /// A one-line warning about lost events, or `None` when none were lost.
    pub fn lost_warning(&self) -> Option<String> {
        let lost = self.lost();
        if lost == 0 && self.read.unknown_lost == 0 {
            return None;
        }
        let per: Vec<String> = self
            .lost_per_cpu
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(c, n)| format!("cpu{c}: {n}"))
            .collect();
        Some(format!(
            "LOST {lost} events{}: the reader fell behind; use a larger --buffer-kb or a filter",
            if per.is_empty() {
                String::new()
            } else {
                format!(" ({})", per.join(", "))
            }
        ))
    }
}

/// Events held back for the ordered merge: their bytes in one arena, and
/// an index sorted by time stamp when released. No allocation per event.
#[derive(Default)]
struct Merge {
    arena: Vec<u8>,
    idx: Vec<(u64, u32, u32, u32)>, // ts, cpu, offset, length
    spare_arena: Vec<u8>,
    spare_idx: Vec<(u64, u32, u32, u32)>,
}

impl Merge {
    fn push(&mut self, ev: &Event) {
        let off = self.arena.len() as u32;
        self.arena.extend_from_slice(ev.data);
        self.idx.push((ev.ts, ev.cpu, off, ev.data.len() as u32));
    }

    /// Emits, in time order, every held event stamped at or before `upto`.
    fn release(&mut self, upto: u64, sink: &mut dyn Sink, count: &mut u64) -> Flow {
        if self.idx.is_empty() {
            return Flow::Continue;
        }
        // Each CPU's events are already in order: a stable sort merges the
        // runs cheaply and keeps equal stamps in reading order.
        self.idx.sort_by_key(|e| e.0);
        let n = self.idx.partition_point(|e| e.0 <= upto);
        let mut flow = Flow::Continue;
        for &(ts, cpu, off, len) in &self.idx[..n] {
            let data = &self.arena[off as usize..(off + len) as usize];
            if let Some(ev) = Event::from_record(cpu, ts, data) {
                *count += 1;
                if sink.event(&ev) == Flow::Stop {
                    flow = Flow::Stop;
                    break;
                }
            }
        }
        // Keep the rest, compacted.
        self.spare_arena.clear();
        self.spare_idx.clear();
        for &(ts, cpu, off, len) in &self.idx[n..] {
            let new_off = self.spare_arena.len() as u32;
            self.spare_arena
                .extend_from_slice(&self.arena[off as usize..(off + len) as usize]);
            self.spare_idx.push((ts, cpu, new_off, len));
        }
        std::mem::swap(&mut self.arena, &mut self.spare_arena);
        std::mem::swap(&mut self.idx, &mut self.spare_idx);
        flow
    }
}

fn now_mono_ns() -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: t is a valid timespec to write to.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

fn handle(
    item: Item,
    ordered: bool,
    merge: &mut Merge,
    count: &mut u64,
    sink: &mut dyn Sink,
) -> Flow {
    match item {
        // Lost markers go straight to the sink, also in ordered mode.
        Item::Lost(cpu, c) => sink.lost(cpu, c),
        Item::Event(ev) if ordered => {
            merge.push(&ev);
            Flow::Continue
        }
        Item::Event(ev) => {
            *count += 1;
            sink.event(&ev)
        }
    }
}

/// The read loop: reads until a stop signal, the duration, `stop_when` or
/// the sink says stop; then stops tracing, drains the rest (unless the sink
/// stopped) and returns what was seen.
pub fn stream(reader: &mut Reader, sink: &mut dyn Sink, mut opts: StreamOpts) -> Result<Summary> {
    let start = Instant::now();
    let deadline = opts.duration.map(|d| start + d);
    let mut next_tick = opts.tick.map(|t| start + t);
    let ordered = opts.ordered;
    let mut merge = Merge::default();
    let mut summary = Summary::default();
    let mut stopped = false;

    loop {
        let round_start = now_mono_ns();
        let (_, flow) = reader
            .drain(&mut |item| handle(item, ordered, &mut merge, &mut summary.events, sink))?;
        if flow == Flow::Stop {
            stopped = true;
            summary.stopped_by_sink = true;
            break;
        }
        if ordered {
            let mut upto = if reader.ordered_clock {
                round_start.saturating_sub(ORDER_SLACK_NS)
            } else {
                u64::MAX
            };
            if let Some(b) = reader.behind.take() {
                upto = upto.min(b.saturating_sub(1));
            }
            if merge.release(upto, sink, &mut summary.events) == Flow::Stop {
                stopped = true;
                summary.stopped_by_sink = true;
                break;
            }
        }
        if sink.round_end() == Flow::Stop {
            stopped = true;
            summary.stopped_by_sink = true;
            break;
        }
        let now = Instant::now();
        if let (Some(t), Some(every)) = (next_tick, opts.tick) {
            if now >= t {
                if ordered {
                    let _ = merge.release(u64::MAX, sink, &mut summary.events);
                }
                if sink.tick() == Flow::Stop {
                    stopped = true;
                    summary.stopped_by_sink = true;
                    break;
                }
                next_tick = Some(t + every);
            }
        }
        if signals::stop_requested() {
            break;
        }
        if let Some(d) = deadline {
            if now >= d {
                break;
            }
        }
        if let Some(f) = opts.stop_when.as_mut() {
            if f() {
                break;
            }
        }
        let mut wait = POLL_INTERVAL;
        if let Some(d) = deadline {
            wait = wait.min(d.saturating_duration_since(now));
        }
        if let Some(t) = next_tick {
            wait = wait.min(t.saturating_duration_since(now));
        }
        if !wait.is_zero() {
            reader.wait(wait);
        }
    }

    // Stop recording, then take everything that is left.
    reader.inst.stop()?;
    if !stopped {
        loop {
            let (n, flow) = reader
                .drain(&mut |item| handle(item, ordered, &mut merge, &mut summary.events, sink))?;
            if flow == Flow::Stop {
                summary.stopped_by_sink = true;
                break;
            }
            if n == 0 {
                break;
            }
        }
        if ordered && !summary.stopped_by_sink {
            let _ = merge.release(u64::MAX, sink, &mut summary.events);
        }
        let _ = sink.round_end();
    }
    summary.lost_per_cpu = reader.lost_per_cpu();
    summary.read = reader.stats;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_events_waits_for_the_last_stack_and_skips_what_follows() {
        // Two events with stacks: the second one's stack is still shown,
        // a third event and its stack are not, and the round ends the run.
        let mut m = MaxEvents::new(Some(2));
        assert!(!m.past());
        assert_eq!(m.shown(true), Flow::Continue);
        assert!(!m.skip_stack());
        assert_eq!(m.round_end(Flow::Continue), Flow::Continue);
        assert!(!m.past());
        assert_eq!(m.shown(true), Flow::Continue);
        assert!(!m.skip_stack());
        assert!(m.past());
        assert!(m.skip_stack());
        assert_eq!(m.round_end(Flow::Continue), Flow::Stop);
        // Without stacks the last event ends the run at once.
        let mut m = MaxEvents::new(Some(1));
        assert!(!m.past());
        assert_eq!(m.shown(false), Flow::Stop);
        // No limit: never the end, and a flush's Stop passes through.
        let mut m = MaxEvents::new(None);
        for _ in 0..3 {
            assert!(!m.past());
            assert_eq!(m.shown(false), Flow::Continue);
        }
        assert_eq!(m.round_end(Flow::Stop), Flow::Stop);
        assert_eq!(m.round_end(Flow::Continue), Flow::Continue);
    }
}
