//! cachestat - page cache hits, misses and dirtied pages per interval.
//!
//! USAGE: cachestat [-DhjtT] [-p PID] [-L TID] [-d secs] [interval [count]]
//!
//! perf-tools' cachestat counted mark_page_accessed, mark_buffer_dirty,
//! add_to_page_cache_lru and account_page_dirtied with the function
//! profiler; the folio changes of 5.15-5.18 renamed or removed three of
//! them, and it printed nonsense. This one picks each counting point from
//! what the running kernel has (points.rs; the Tracing line names them):
//! a kprobe for page accesses (no tracepoint marks them), tracepoints for
//! the rest where they exist. Every point is an event in a private
//! instance, counted by id from the binary buffer; -p/-L limit them to a
//! task in the kernel (set_event_pid). Columns and formula: stats.rs.
//!
//! REQUIREMENTS: root, tracefs, instances, kprobe events. Without kprobes
//! cachestat says so and exits 2.
//!
//! OVERHEAD: one event per page access, addition or dirtying: on a machine
//! reading from the cache at a GB/s, about 250 000 events a second.

mod points;
mod stats;

use clap::Parser;
use ftrace_common::app::cli::{self as app_cli, parse_secs};
use ftrace_common::app::opts::{BufferOpt, DurationOpt, JsonOpt, TaskOpts};
use ftrace_common::app::output::{local_time, Output};
use ftrace_common::app::signals;
use ftrace_common::app::status::{self, TracingLine};
use ftrace_common::app::stream::{self, End, Sink, StreamOpts};
use ftrace_common::buffer::reader::Event;
use ftrace_common::kernel::caps::{self, Feature, Support};
use ftrace_common::kernel::needs;
use ftrace_common::kernel::tracefs::Tracefs;
use ftrace_common::lifecycle::dynevent::ProbeGroup;
use ftrace_common::lifecycle::instance::{Instance, InstanceOptions};
use ftrace_common::lifecycle::sweep;
use ftrace_common::{Error, Flow, Result};
use points::{Role, ROLES};
use stats::Counts;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// A last, partial interval shorter than this with nothing counted is not
/// printed (the run ended right after a line).
const PARTIAL_MIN: Duration = Duration::from_millis(50);

const EXAMPLES: &str = "\
Examples:
  cachestat                 # a line every second, until Ctrl-C
  cachestat 5               # every 5 seconds
  cachestat 1 10            # 10 one-second lines, then end
  cachestat -t              # a TIME column (also -T)
  cachestat -D              # also what each counting point counted
  cachestat -p 1234         # the page cache use of PID 1234 only
  cachestat -d 10 10        # one line for 10 seconds
  cachestat -j 1 5          # JSON lines";

const LONG_ABOUT: &str = "\
Page cache hits, misses and dirtied pages per interval, with the Buffers and Cached \
sizes of /proc/meminfo, in the columns of perf-tools' cachestat. The counting points \
are chosen from what the running kernel has (the Tracing line names them): page \
accesses with a kprobe on folio_mark_accessed (or mark_page_accessed before Linux \
5.16); pages added to the cache with the filemap:mm_filemap_add_to_page_cache \
tracepoint (else filemap_add_folio or add_to_page_cache_lru); dirtied pages with \
writeback:writeback_dirty_folio or writeback_dirty_page (else folio_account_dirtied \
or account_page_dirtied); dirtied buffers with block:block_dirty_buffer (else \
mark_buffer_dirty). Each is an event in a private instance, counted from the binary \
trace buffer; lost events are reported.";

const LONG_HELP: &str = "\
Columns (perf-tools' names; bcc's formula, per interval):
  HITS        accesses that found the page in the cache: ACCESSED - BUF_DIRTIED -
              MISSES
  MISSES      pages read into the cache: ADDED - DIRTIED (a page written anew is
              added and dirtied, not missed); at most the accesses
  DIRTIES     pages of the cache dirtied (written)
  RATIO       HITS / (HITS + MISSES), in percent
  BUFFERS_MB  Buffers of /proc/meminfo, at the end of the interval
  CACHED_MB   Cached of /proc/meminfo, at the end of the interval
-D adds the counts of each point: ACCESSED, ADDED, DIRTIED, BUF_DIRTIED.
--json: one line per interval: {\"interval\":N,\"hits\":..,\"misses\":..,
\"dirties\":..,\"ratio\":..,\"buffers_mb\":..,\"cached_mb\":..,\"counts\":{\"accessed\":..,
\"added\":..,\"dirtied\":..,\"buffers_dirtied\":..},\"lost\":N} (\"time\" with -t or -T).

What it needs of the kernel: tracefs with instances, and kprobe events
(CONFIG_KPROBE_EVENTS): no tracepoint marks a page access, so without kprobes
cachestat cannot count hits, says so and exits 2. Readahead can add pages
before they are read: in such an interval misses are capped at the accesses.
Pages added or dirtied by the kernel's own threads (writeback, readahead
workers) are counted system-wide but not with -p or -L.";

/// Page cache hits, misses and dirtied pages per interval.
#[derive(Debug, Parser)]
#[command(
    name = "cachestat",
    version,
    about = "Page cache hits, misses and dirtied pages per interval",
    long_about = LONG_ABOUT,
    after_help = EXAMPLES,
    after_long_help = format!("{LONG_HELP}\n\n{EXAMPLES}")
)]
struct Args {
    /// Also print what each counting point counted (perf-tools' debug).
    #[arg(short = 'D', long = "debug")]
    debug: bool,
    /// A TIME column (HH:MM:SS), as perf-tools' -t.
    #[arg(short = 't', long = "timestamps")]
    timestamps: bool,
    /// The same TIME column, as bcc's -T.
    #[arg(short = 'T', long = "time")]
    time: bool,
    #[command(flatten)]
    task: TaskOpts,
    #[command(flatten)]
    duration: DurationOpt,
    #[command(flatten)]
    json: JsonOpt,
    #[command(flatten)]
    buffer: BufferOpt,
    /// Seconds between lines (default 1).
    #[arg(value_name = "INTERVAL", value_parser = parse_secs)]
    interval: Option<Duration>,
    /// Lines to print, then end (default: until Ctrl-C).
    #[arg(value_name = "COUNT", value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,
}

ftrace_common::cli_tests!(Args);

pub fn main() -> ExitCode {
    app_cli::main("cachestat", cachestat)
}

ftrace_common::tool_command!(Args);

fn cachestat(args: Args) -> Result<()> {
    let interval = args.interval.unwrap_or(Duration::from_secs(1));
    if interval.is_zero() {
        return Err(Error::usage("the interval must be more than 0 seconds"));
    }
    // Checks: the task, and kprobes (named for cachestat's need).
    let tfs = Tracefs::open()?;
    let task = args.task.task();
    if let Some(t) = task {
        t.require_exists()?;
    }
    let kprobes = matches!(caps::check(&tfs, Feature::KprobeEvents), Support::Yes);
    if kprobes {
        needs::CACHESTAT.require(&tfs)?;
    }
    sweep::sweep_dead(&tfs);
    // Setup: the points, then the instance that counts them (dropped
    // first: events off before the probes go).
    let mut probes = ProbeGroup::new(&tfs);
    let armed = points::arm(&tfs, &mut probes, kprobes)?;
    let opts = InstanceOptions {
        buffer_kb: args.buffer.buffer_kb,
        kernel_buffer: false,
        trace_self: false,
        keep_clock: true,
    };
    let mut inst = Instance::create_with(&tfs, "cachestat", &opts)?;
    for a in &armed {
        signals::check()?;
        inst.enable_event(&a.system, &a.event)?;
    }
    if let Some(t) = task {
        inst.follow(t, false)?;
    }
    let mut reader = inst.reader()?;
    signals::check()?;
    inst.start()?;
    tracing_line(&args, &armed, interval).print();
    let mut sink = Counter {
        ids: armed.iter().map(|a| (a.id, a.role)).collect(),
        now: Counts::default(),
        lost: 0,
        lost_unknown: false,
        left: args.count,
        seq: 0,
        last: Instant::now(),
        printer: Printer::new(&args),
    };
    sink.printer.header();
    let summary = stream::run(
        Some(&mut reader),
        &mut sink,
        StreamOpts {
            duration: args.duration.duration,
            tick: Some(interval),
            task,
            ..StreamOpts::default()
        },
    )?;
    drop(reader);
    let _ = inst.stop();
    // The part of an interval before the end (-d, -p's exit, Ctrl-C),
    // unless it is empty and a tick just printed.
    let partial = sink.now != Counts::default() || sink.last.elapsed() >= PARTIAL_MIN;
    if summary.ended != End::Sink && !sink.printer.out.is_closed() && partial {
        sink.tick();
    }
    status::finish(
        "cachestat",
        &mut sink.printer.out,
        &summary,
        " (the counts above miss them)",
    )?;
    drop(inst);
    drop(probes);
    Ok(())
}

/// `Tracing page cache (accessed: folio_mark_accessed(), added:
/// filemap:mm_filemap_add_to_page_cache, ...). Output every 1 second.`
fn tracing_line(args: &Args, armed: &[points::Armed], interval: Duration) -> TracingLine {
    let how: Vec<String> = armed
        .iter()
        .map(|a| format!("{}: {}", a.role.key(), a.point))
        .collect();
    let secs = interval.as_secs_f64();
    TracingLine::new("page cache")
        .task(args.task.task())
        .duration(args.duration.duration)
        .how(how.join(", "))
        .note(format!(
            "Output every {secs} second{}.",
            if secs == 1.0 { "" } else { "s" }
        ))
}

/// Counts events by id; a line every interval.
struct Counter {
    ids: Vec<(u16, Role)>,
    now: Counts,
    lost: u64,
    lost_unknown: bool,
    left: Option<u64>,
    seq: u64,
    /// When the last line was printed.
    last: Instant,
    printer: Printer,
}

impl Sink for Counter {
    fn event(&mut self, ev: &Event) -> Flow {
        if let Some((_, role)) = self.ids.iter().find(|(id, _)| *id == ev.id) {
            self.now.add(*role);
        }
        Flow::Continue
    }

    fn lost(&mut self, _cpu: u32, count: Option<u64>) -> Flow {
        match count {
            Some(n) => self.lost += n,
            None => self.lost_unknown = true,
        }
        Flow::Continue
    }

    fn tick(&mut self) -> Flow {
        self.seq += 1;
        self.last = Instant::now();
        let counts = std::mem::take(&mut self.now);
        let lost = std::mem::take(&mut self.lost);
        if lost > 0 || std::mem::take(&mut self.lost_unknown) {
            eprintln!(
                "cachestat: LOST {} events in the interval below: its counts are low; use a larger -b/--buffer-kb",
                if lost > 0 { lost.to_string() } else { "some".into() }
            );
        }
        if self.printer.line(self.seq, &counts, lost) == Flow::Stop {
            return Flow::Stop;
        }
        match &mut self.left {
            Some(n) if *n <= 1 => Flow::Stop,
            Some(n) => {
                *n -= 1;
                Flow::Continue
            }
            None => Flow::Continue,
        }
    }
}

/// perf-tools' table (`%8s %8s %8s %8s %12s %10s`) or JSON lines.
struct Printer {
    out: Output,
    json: bool,
    time: bool,
    debug: bool,
}

impl Printer {
    fn new(args: &Args) -> Printer {
        Printer {
            out: Output::new(),
            json: args.json.json,
            time: args.timestamps || args.time,
            debug: args.debug,
        }
    }

    fn header(&mut self) {
        if self.json {
            return;
        }
        let mut s = String::new();
        if self.time {
            s.push_str(&format!("{:<8} ", "TIME"));
        }
        s.push_str(&format!(
            "{:>8} {:>8} {:>8} {:>8} {:>12} {:>10}",
            "HITS", "MISSES", "DIRTIES", "RATIO", "BUFFERS_MB", "CACHED_MB"
        ));
        if self.debug {
            s.push_str(&format!(
                " {:>9} {:>9} {:>9} {:>11}",
                "ACCESSED", "ADDED", "DIRTIED", "BUF_DIRTIED"
            ));
        }
        self.out.line(&s);
        self.out.flush();
    }

    fn line(&mut self, seq: u64, c: &Counts, lost: u64) -> Flow {
        let st = stats::compute(c);
        let mem = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let (buffers, cached) = stats::meminfo_mb(&mem);
        let time = self.time.then(|| local_time("%H:%M:%S"));
        let flow = if self.json {
            let mut v = serde_json::json!({
                "interval": seq,
                "hits": st.hits,
                "misses": st.misses,
                "dirties": st.dirties,
                "ratio": (st.ratio * 100.0).round() / 100.0,
                "buffers_mb": buffers,
                "cached_mb": cached,
                "counts": ROLES.iter().map(|r| (r.key().to_string(), c.get(*r).into()))
                    .collect::<serde_json::Map<String, serde_json::Value>>(),
                "lost": lost,
            });
            if let Some(t) = time {
                v["time"] = t.into();
            }
            self.out.json(&v)
        } else {
            let mb = |v: Option<u64>| v.map(|n| n.to_string()).unwrap_or_else(|| "-".into());
            let mut s = String::new();
            if let Some(t) = time {
                s.push_str(&format!("{t:<8} "));
            }
            s.push_str(&format!(
                "{:>8} {:>8} {:>8} {:>7.1}% {:>12} {:>10}",
                st.hits,
                st.misses,
                st.dirties,
                st.ratio,
                mb(buffers),
                mb(cached)
            ));
            if self.debug {
                s.push_str(&format!(
                    " {:>9} {:>9} {:>9} {:>11}",
                    c.get(Role::Access),
                    c.get(Role::Add),
                    c.get(Role::Dirty),
                    c.get(Role::BufferDirty)
                ));
            }
            self.out.line(&s)
        };
        if flow == Flow::Stop {
            return Flow::Stop;
        }
        self.out.flush()
    }
}
