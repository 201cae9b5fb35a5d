//! The read loop every tool runs: [`stream`] reads whole sub-buffers from
//! each CPU until none has data, hands each record to a [`Sink`], waits
//! with `poll()` for at most [`POLL_INTERVAL`] (so a stop signal is noticed
//! quickly), and at the end turns recording off and drains what is left.
//! Lost events go to the sink as they are seen and are counted at the end
//! from the kernel's per-CPU stats: never silently.
//!
//! In ordered mode events of all CPUs are merged by time stamp. An event is
//! held back until every CPU has been read past its time (the instance uses
//! the `mono` clock, so "now" is known), then emitted in order.

use crate::app::signals;
use crate::buffer::reader::{Event, Item, ReadStats, Reader, POLL_INTERVAL};
use crate::buffer::tracedat::read::TraceDat;
use crate::buffer::tracedat::write::Recorder;
use crate::kernel::proc::Task;
use crate::{Flow, Result};
use std::time::{Duration, Instant};

/// How long events recorded before a stop signal are still shown.
const FINAL_SHOW: std::time::Duration = std::time::Duration::from_millis(400);

/// How far behind "now" the ordered merge stays, so that an event reserved
/// just before a read but committed just after it is still merged in order.
const ORDER_SLACK_NS: u64 = 5_000_000;

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

/// How [`stream`] runs.
#[derive(Default)]
pub struct StreamOpts<'a> {
    /// Stop after this long (perf-tools' `-d`).
    pub duration: Option<Duration>,
    /// Merge CPUs by time stamp (for tools that print events).
    pub ordered: bool,
    /// Call [`Sink::tick`] this often (interval summaries).
    pub tick: Option<Duration>,
    /// End when this task has exited (`-p`/`-L`): nothing more can come
    /// from it.
    pub task: Option<Task>,
    /// Also stop when this says so (e.g. a traced command exited).
    pub stop_when: Option<&'a mut dyn FnMut() -> bool>,
    /// Record the sub-buffers into a trace.dat file instead of handing
    /// events to the sink (`--write`): the sink is not called at all.
    pub recorder: Option<&'a mut Recorder>,
}

/// Why a [`stream`] ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum End {
    /// A stop signal, or a closed output.
    #[default]
    Signal,
    /// The duration passed.
    Duration,
    /// The sink asked to stop (enough events, or its output closed).
    Sink,
    /// The task of [`StreamOpts::task`] exited.
    TaskExited(Task),
    /// [`StreamOpts::stop_when`] said so.
    Asked,
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
    /// Why it ended.
    pub ended: End,
    /// Events recorded before a stop signal that were not shown: the run
    /// ended within a moment of the signal.
    pub unshown: u64,
}

impl Summary {
    /// Whether the sink stopped the stream (not a signal or the duration):
    /// what was left in the buffers was not read.
    pub fn stopped_by_sink(&self) -> bool {
        self.ended == End::Sink
    }

    /// Total lost events: the kernel's count, or what the sub-buffer flags
    /// said if that is larger, and what the kernel handed out that the
    /// reader did not find.
    pub fn lost(&self) -> u64 {
        let stats: u64 = self.lost_per_cpu.iter().map(|(_, n)| n).sum();
        stats.max(self.read.flagged_lost) + self.read.unaccounted
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
        let per = if per.is_empty() {
            String::new()
        } else {
            format!(" ({})", per.join(", "))
        };
        let unaccounted = self.read.unaccounted;
        if unaccounted > 0 && unaccounted == lost {
            return Some(format!(
                "LOST {lost} events: the kernel handed them out but the reader did not find them \
                 in the sub-buffers it read (a bug: please report it)"
            ));
        }
        let extra = if unaccounted > 0 {
            format!("; {unaccounted} of them handed out by the kernel but not found by the reader")
        } else {
            String::new()
        };
        Some(format!(
            "LOST {lost} events{per}: the reader fell behind; use a larger --buffer-kb or a filter{extra}"
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

/// Now, in ns of `CLOCK_MONOTONIC` (the clock of the instances' events).
pub fn now_mono_ns() -> u64 {
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

/// The read loop: reads until a stop signal, the duration, the task's end,
/// `stop_when` or the sink says stop; then stops recording, drains the rest
/// (unless the sink stopped) and returns what was seen.
pub fn stream(reader: &mut Reader, sink: &mut dyn Sink, opts: StreamOpts) -> Result<Summary> {
    run(Some(reader), sink, opts)
}

/// [`stream`] for a tool that may have no buffer to read (its counts are
/// kept by the kernel): the same loop, ticks and ends, without reading.
pub fn run(
    mut reader: Option<&mut Reader>,
    sink: &mut dyn Sink,
    mut opts: StreamOpts,
) -> Result<Summary> {
    let start = Instant::now();
    let deadline = opts.duration.map(|d| start + d);
    let mut next_tick = opts.tick.map(|t| start + t);
    let ordered = opts.ordered;
    let mut merge = Merge::default();
    let mut summary = Summary::default();
    let mut stopped = false;

    loop {
        let round_start = now_mono_ns();
        if let (Some(r), Some(rec)) = (reader.as_deref_mut(), opts.recorder.as_deref_mut()) {
            rec.pump(r)?;
        } else if let Some(r) = reader.as_deref_mut() {
            let (_, flow) =
                r.drain(&mut |item| handle(item, ordered, &mut merge, &mut summary.events, sink))?;
            if flow == Flow::Stop {
                stopped = true;
                summary.ended = End::Sink;
                break;
            }
            if ordered {
                let mut upto = if r.ordered_clock() {
                    round_start.saturating_sub(ORDER_SLACK_NS)
                } else {
                    u64::MAX
                };
                if let Some(b) = r.take_behind() {
                    upto = upto.min(b.saturating_sub(1));
                }
                if merge.release(upto, sink, &mut summary.events) == Flow::Stop {
                    stopped = true;
                    summary.ended = End::Sink;
                    break;
                }
            }
        }
        let recording = opts.recorder.is_some();
        if !recording && sink.round_end() == Flow::Stop {
            stopped = true;
            summary.ended = End::Sink;
            break;
        }
        let now = Instant::now();
        if let (Some(t), Some(every), false) = (next_tick, opts.tick, recording) {
            if now >= t {
                next_tick = Some(t + every);
                // The last interval ends with the run: the sink's final
                // summary prints it, after the buffers are drained.
                let last = deadline.is_some_and(|d| t + every / 2 >= d);
                if !last {
                    if ordered {
                        let _ = merge.release(u64::MAX, sink, &mut summary.events);
                    }
                    if sink.tick() == Flow::Stop {
                        stopped = true;
                        summary.ended = End::Sink;
                        break;
                    }
                }
            }
        }
        if signals::stop_requested() {
            break;
        }
        if let Some(d) = deadline {
            if now >= d {
                summary.ended = End::Duration;
                break;
            }
        }
        if let Some(t) = opts.task {
            if !t.alive() {
                summary.ended = End::TaskExited(t);
                break;
            }
        }
        if let Some(f) = opts.stop_when.as_mut() {
            if f() {
                summary.ended = End::Asked;
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
        match reader.as_deref() {
            Some(r) if !wait.is_zero() => r.wait(wait),
            _ => std::thread::sleep(wait),
        }
    }
    let Some(reader) = reader else {
        return Ok(summary);
    };

    // Stop recording, then take everything that is left. After a stop
    // signal, for a moment at most: the run must end within a second of
    // the signal; what is left after that is counted and said, not shown.
    reader.stop_recording()?;
    if let Some(rec) = opts.recorder {
        // Everything recorded goes in the file, however long it takes.
        while rec.pump(reader)? > 0 {}
        summary.events = rec.events;
        summary.lost_per_cpu = reader.lost_per_cpu();
        summary.read = reader.stats;
        return Ok(summary);
    }
    if !stopped {
        let show_until = (summary.ended == End::Signal).then(|| Instant::now() + FINAL_SHOW);
        loop {
            let (n, flow) = if show_until.is_some_and(|t| Instant::now() >= t) {
                let unshown = &mut summary.unshown;
                reader.drain(&mut |item| match item {
                    Item::Event(_) => {
                        *unshown += 1;
                        Flow::Continue
                    }
                    Item::Lost(..) => Flow::Continue,
                })?
            } else {
                reader.drain(&mut |item| {
                    handle(item, ordered, &mut merge, &mut summary.events, sink)
                })?
            };
            if flow == Flow::Stop {
                summary.ended = End::Sink;
                break;
            }
            if n == 0 {
                break;
            }
        }
        if ordered && !summary.stopped_by_sink() {
            let _ = merge.release(u64::MAX, sink, &mut summary.events);
        }
        let _ = sink.round_end();
    }
    reader.check_accounting();
    summary.lost_per_cpu = reader.lost_per_cpu();
    summary.read = reader.stats;
    Ok(summary)
}

/// The read loop over a trace.dat file (`--read`): every event of the file
/// to the sink in time order, lost-event marks where the sub-buffers have
/// them, [`Sink::round_end`] every few thousand events, and
/// [`Sink::tick`] each time the events' time stamps pass another `tick`
/// (interval summaries follow the recording's time, not the reader's).
pub fn replay(file: &TraceDat, sink: &mut dyn Sink, tick: Option<Duration>) -> Result<Summary> {
    let mut summary = Summary {
        ended: End::Asked,
        ..Summary::default()
    };
    let every = tick.map(|t| t.as_nanos().max(1) as u64);
    let mut next_tick: Option<u64> = None;
    let mut in_round = 0u32;
    let mut flagged = 0u64;
    let mut unknown = 0u64;
    let mut events = 0u64;
    let (_, flow) = file.events(&mut |item| {
        let f = match item {
            Item::Lost(cpu, c) => {
                match c {
                    Some(n) => flagged += n,
                    None => unknown += 1,
                }
                sink.lost(cpu, c)
            }
            Item::Event(ev) => {
                if let Some(every) = every {
                    let due = next_tick.get_or_insert(ev.ts.saturating_add(every));
                    while ev.ts >= *due {
                        *due = due.saturating_add(every);
                        if sink.tick() == Flow::Stop {
                            return Flow::Stop;
                        }
                    }
                }
                events += 1;
                sink.event(&ev)
            }
        };
        if f == Flow::Stop {
            return Flow::Stop;
        }
        in_round += 1;
        if in_round >= 4096 {
            in_round = 0;
            if signals::stop_requested() {
                return Flow::Stop;
            }
            return sink.round_end();
        }
        Flow::Continue
    })?;
    summary.events = events;
    if flow == Flow::Stop {
        summary.ended = if signals::stop_requested() {
            End::Signal
        } else {
            End::Sink
        };
    }
    let _ = sink.round_end();
    summary.lost_per_cpu = file.lost_per_cpu();
    summary.read.events = events;
    summary.read.flagged_lost = flagged;
    summary.read.unknown_lost = unknown;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_warning_names_the_kind_of_loss() {
        let mut s = Summary::default();
        assert_eq!(s.lost_warning(), None);
        s.lost_per_cpu = vec![(0, 0), (1, 5)];
        let w = s.lost_warning().unwrap();
        assert!(
            w.starts_with("LOST 5 events (cpu1: 5): the reader fell behind"),
            "{w}"
        );
        s.read.unaccounted = 2;
        assert_eq!(s.lost(), 7);
        let w = s.lost_warning().unwrap();
        assert!(
            w.contains("LOST 7 events") && w.contains("2 of them handed out"),
            "{w}"
        );
        s.lost_per_cpu.clear();
        let w = s.lost_warning().unwrap();
        assert!(
            w.starts_with("LOST 2 events: the kernel handed them out"),
            "{w}"
        );
    }
}
