//! The option families the tools share, each defined once with one help
//! text per meaning. A tool flattens the families it has into its clap
//! `Args` (`#[command(flatten)] task: TaskOpts`), so that a letter means the
//! same, and says the same, in every tool that has it. Where perf-tools gave
//! a letter another meaning in one tool (iosnoop's `-d` device, `-s` start
//! times), that tool defines its own option instead: see
//! `docs/option-letters.md`.

use crate::app::cli::{parse_pid, parse_secs};
use crate::app::status::TracingLine;
use crate::buffer::tracedat::read::TraceDat;
use crate::buffer::tracedat::write::{Meta, Recorder};
use crate::kernel::proc::Task;
use crate::lifecycle::instance::Instance;
use crate::Result;
use std::path::PathBuf;
use std::time::Duration;

/// `-p PID` and `-L TID`: the task a run is limited to.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TaskOpts {
    /// Trace this process only: all its threads, and the threads and
    /// processes it starts while traced. The run ends when it exits.
    #[arg(short = 'p', long = "pid", value_name = "PID", value_parser = parse_pid, conflicts_with = "tid")]
    pub pid: Option<u32>,
    /// Trace this thread only. The run ends when it exits.
    #[arg(short = 'L', long = "tid", value_name = "TID", value_parser = parse_pid)]
    pub tid: Option<u32>,
}

impl TaskOpts {
    /// The task given, if any.
    pub fn task(&self) -> Option<Task> {
        Task::from_ids(self.pid, self.tid)
    }
}

/// `-d SECS`: how long a run lasts.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DurationOpt {
    /// Trace for SECS seconds, then end (printing any summary).
    #[arg(short = 'd', long = "duration", value_name = "SECS", value_parser = parse_secs)]
    pub duration: Option<Duration>,
}

/// `-b KB`: the size of the run's trace buffers.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct BufferOpt {
    /// Per-CPU trace buffer of this run, in KiB. The default suits the
    /// tool's usual event rate; give more if events are reported lost.
    #[arg(short = 'b', long = "buffer-kb", value_name = "KB", value_parser = clap::value_parser!(u32).range(1..))]
    pub buffer_kb: Option<u32>,
}

/// `-j`: JSON instead of text.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct JsonOpt {
    /// Print JSON lines instead of text.
    #[arg(short = 'j', long = "json")]
    pub json: bool,
}

/// Where a tool computes what the kernel can compute itself (hist
/// triggers, synthetic events).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Place {
    /// In the kernel where it has hist triggers, else from the buffer.
    #[default]
    Auto,
    /// In the kernel (hist triggers).
    Kernel,
    /// In user space, from the trace buffer.
    Buffer,
}

/// `--in WHERE`: the kernel or the trace buffer.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct InOpt {
    /// Where to compute: in the kernel (hist triggers), or in user space
    /// from the trace buffer; the same numbers either way. The Tracing
    /// line says which.
    #[arg(long = "in", value_enum, default_value_t = Place::Auto, value_name = "WHERE")]
    pub place: Place,
}

impl InOpt {
    /// Whether to compute in the kernel: `has` says whether it can (asked
    /// only for auto); `require` explains why it cannot (for kernel).
    pub fn in_kernel(
        &self,
        has: impl FnOnce() -> bool,
        require: impl FnOnce() -> Result<()>,
    ) -> Result<bool> {
        Ok(match self.place {
            Place::Buffer => false,
            Place::Auto => has(),
            Place::Kernel => {
                require()?;
                true
            }
        })
    }
}

/// `-H`: column headers.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct HeadersOpt {
    /// Print column headers.
    #[arg(short = 'H', long = "headers")]
    pub headers: bool,
}

/// `-s` for tools whose events are the kernel's, and the stacks' flame
/// graph.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct KernelStacksOpt {
    /// Print the kernel stack after each event.
    #[arg(short = 's', long = "stacks")]
    pub stacks: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub flame: crate::app::flame::FlameOpts,
}

/// `-s` for tools whose events are user code's, and the stacks' flame
/// graph.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct UserStacksOpt {
    /// Print the user stack after each event, symbolized.
    #[arg(short = 's', long = "stacks")]
    pub stacks: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub flame: crate::app::flame::FlameOpts,
}

/// `-M N`: the number of events to print.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct MaxEventsOpt {
    /// Stop after N events.
    #[arg(short = 'M', long = "max-events", value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_events: Option<u64>,
}

/// What every tool that prints events one per line takes: `-H`, `-d`,
/// `-p`/`-L`, `-M`, `-j` and `-b`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct EventOpts {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub headers: HeadersOpt,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub duration: DurationOpt,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub task: TaskOpts,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub max: MaxEventsOpt,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub json: JsonOpt,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub buffer: BufferOpt,
}

/// `-i SECS` and `-t NUM`: the summaries of the counting tools.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SummaryOpts {
    /// Print a summary every SECS seconds (counts start again each time).
    #[arg(short = 'i', long = "interval", value_name = "SECS", value_parser = parse_secs)]
    pub interval: Option<Duration>,
    /// Show only the top NUM rows.
    #[arg(short = 't', long = "top", value_name = "NUM", value_parser = parse_top)]
    pub top: Option<usize>,
}

fn parse_top(s: &str) -> std::result::Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("'{s}' is not a positive number of rows")),
    }
}

/// What the probe tools (kprobe, uprobe) take besides the definition:
/// `-v`, `-e DEFINITION...` and the positional FILTER, which follows the
/// tool's own positional DEFINITION.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ProbeOpts {
    /// Create the probes, show their event formats, remove them and exit.
    #[arg(short = 'v', long = "view")]
    pub view: bool,
    /// A probe definition; repeat for several probes. May end with
    /// `if FILTER`.
    #[arg(short = 'e', long = "probe", value_name = "DEFINITION")]
    pub probes: Vec<String>,
    /// An event filter in the kernel's syntax on the probe's arguments,
    /// e.g. 'arg1 > 0' or 'file ~ "*stat"'.
    #[arg(value_name = "FILTER")]
    pub filter: Option<String>,
}

/// `-w FILE`: record into a trace.dat file instead of showing events.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct WriteOpt {
    /// Record the events into FILE, a trace.dat file (trace-cmd's format,
    /// version 6), instead of showing them: the kernel's sub-buffers are
    /// copied whole, nothing is decoded. Look at it later, on any machine,
    /// with --read FILE, `trace-cmd report FILE` or KernelShark. The file's
    /// own writes are I/O too: keep it off a disk you trace.
    #[arg(short = 'w', long = "write", value_name = "FILE")]
    pub write: Option<PathBuf>,
}

/// A recording in progress (see [`WriteOpt::start`]).
pub struct Recording {
    /// The recorder, for [`crate::app::stream::StreamOpts::recorder`].
    pub recorder: Recorder,
    tool: String,
    kallsyms: bool,
}

impl WriteOpt {
    /// With `-w FILE`: creates FILE now (a path that cannot be written
    /// fails before anything is traced) and a recorder over the
    /// instance's CPUs. `kallsyms`: the events hold kernel addresses.
    pub fn start(&self, tool: &str, inst: &Instance, kallsyms: bool) -> Result<Option<Recording>> {
        let Some(path) = &self.write else {
            return Ok(None);
        };
        let layout =
            crate::buffer::ringbuf::PageLayout::parse(&inst.tracefs().read("events/header_page")?)?;
        Ok(Some(Recording {
            recorder: Recorder::create(path, &inst.cpus(), layout)?,
            tool: tool.to_string(),
            kallsyms,
        }))
    }

    /// The tracing line, saying where events go.
    pub fn line(&self, line: TracingLine) -> TracingLine {
        match &self.write {
            Some(p) => line.how(format!("writing {}", p.display())),
            None => line,
        }
    }
}

impl Recording {
    /// Writes the file (while the instance still exists) and says so.
    pub fn finish(self, inst: &Instance) -> Result<()> {
        let meta = Meta {
            tracefs: inst.tracefs().root().to_path_buf(),
            buffer: inst.dir().to_path_buf(),
            kallsyms: self.kallsyms,
            writer: format!("ftrace-tools {} {}", self.tool, env!("CARGO_PKG_VERSION")),
        };
        let w = self.recorder.finish(&meta)?;
        eprintln!(
            "{}: wrote {} events ({} sub-buffers) to {} ({:.1} MB): see it with {} --read {}, trace-cmd report or KernelShark",
            self.tool,
            w.events,
            w.pages,
            w.path.display(),
            w.bytes as f64 / 1e6,
            self.tool,
            w.path.display()
        );
        Ok(())
    }
}

/// `--read FILE`: events from a trace.dat file instead of this machine.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ReadOpt {
    /// Read the events from FILE instead of tracing: a trace.dat file
    /// written by --write or by `trace-cmd record` (versions 6 and 7,
    /// uncompressed, zstd or zlib), from this machine or another. Needs
    /// neither root nor tracefs; names and symbols come from the file.
    #[arg(long = "read", value_name = "FILE", conflicts_with = "write")]
    pub read: Option<PathBuf>,
}

impl ReadOpt {
    /// The file, opened and parsed, with `--read FILE`.
    pub fn open(&self) -> Result<Option<TraceDat>> {
        self.read.as_deref().map(TraceDat::open).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Args {
        #[command(flatten)]
        task: TaskOpts,
        #[command(flatten)]
        duration: DurationOpt,
        #[command(flatten)]
        buffer: BufferOpt,
        #[command(flatten)]
        max: MaxEventsOpt,
    }

    fn parse(v: &[&str]) -> std::result::Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("t").chain(v.iter().copied()))
    }

    #[test]
    fn families_parse_and_refuse() {
        let a = parse(&["-p", "12", "-d", "1.5", "-b", "64", "-M", "3"]).unwrap();
        assert_eq!(a.task.task(), Some(Task::Process(12)));
        assert_eq!(a.duration.duration, Some(Duration::from_millis(1500)));
        assert_eq!(a.buffer.buffer_kb, Some(64));
        assert_eq!(a.max.max_events, Some(3));
        assert_eq!(
            parse(&["-L", "5"]).unwrap().task.task(),
            Some(Task::Thread(5))
        );
        for bad in [
            &["-p", "1", "-L", "2"][..],
            &["-p", "0"],
            &["-b", "0"],
            &["-M", "0"],
            &["-d", "-1"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
