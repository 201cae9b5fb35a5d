//! iosnoop's command line: its options, help and examples.

use clap::Parser;
use ftrace_common::app::cli;
use ftrace_common::app::opts::{BufferOpt, JsonOpt, ReadOpt, WriteOpt};
use std::time::Duration;

pub const AFTER_HELP: &str = "\
Events used: on Linux 6.5 and later block:block_io_start (recorded in the
submitting process) and block:block_io_done; on older kernels
block:block_getrq (also in the submitter) and block:block_rq_complete. On
every kernel block:block_rq_issue gives the time the device got the I/O,
and block:block_bio_frontmerge and block:block_rq_merge are followed where
the kernel has them.

Examples:
  iosnoop                    # watch block I/O live
  iosnoop 5                  # trace for 5 seconds
  iosnoop -Q                 # include queueing time in LATms
  iosnoop --queue-column     # queueing time in a QUEms column
  iosnoop -ts                # start and end timestamps
  iosnoop -i '*R*'           # reads only
  iosnoop -d vda             # one disk (or 254,0, sda1)
  iosnoop -p 91              # I/O submitted by PID 91
  iosnoop -n postgres        # by processes named *postgres*
  iosnoop -m 10              # I/O slower than 10 ms
  iosnoop --hist -D          # latency histogram per disk
  iosnoop --hist --interval 1  # a histogram every second
  iosnoop --json 10          # JSON lines for 10 seconds
  iosnoop -w io.dat 10       # record 10 seconds into a trace.dat file
  iosnoop --read io.dat      # pair and show them later, here or elsewhere";

pub const LONG_ABOUT: &str = "\
Trace block device I/O, one line per I/O with its latency, in perf-tools' columns. \
Events are decoded by field name from ftrace's binary buffers in a private instance. \
Lost events are always reported, and an I/O whose start or completion was lost is \
counted, never shown with an invented latency.

Fields: COMM and PID: the thread that submitted the I/O (also when a kernel worker \
issued it to the device; writeback is submitted by kernel workers). TYPE: rwbs letters: \
R read, W write, D discard, E secure erase, F flush or FUA, N none, A readahead, S sync, \
M metadata, U atomic. DEV: the disk as MAJ,MIN (the name with --disk-names). BLOCK: the \
first 512-byte sector on the disk. BYTES: the size. QUEms (--queue-column): from \
queueing to issue. LATms: from issue to completion (the device's time), or with -Q from \
queueing. STARTs and ENDs (-s, -t): when LATms starts and ends, in seconds of \
CLOCK_MONOTONIC. JSON lines also have the process ID (pid) besides the thread (tid).

Requirements: root, tracefs (mounted if needed) with instances (Linux 4.4 or later), block \
tracepoints (CONFIG_BLOCK, CONFIG_TRACEPOINTS). -p and --json turn on record-tgid in the private instance, so the \
kernel keeps thread-to-process IDs of threads that have exited (a table of pid_max \
entries, allocated once).

Overhead: three to five events per I/O, each well under a microsecond in the kernel; \
iosnoop's own CPU grows with the I/O rate, mostly for printing a line per I/O (--hist \
prints nothing until the end). It keeps up with well over 100 000 IOPS on one CPU; \
perf-tools' iosnoop documents a ceiling near 10 000 IOPS at one full CPU.";

/// Trace block device I/O and show each I/O with its latency.
#[derive(Debug, Parser)]
#[command(
    name = "iosnoop",
    version,
    about = "Trace block device I/O, one line per I/O with its latency",
    long_about = LONG_ABOUT,
    after_help = AFTER_HELP
)]
pub struct Args {
    /// Measure latency from when the I/O was queued (created for its
    /// process), not from when it was issued to the device.
    #[arg(short = 'Q', long = "queued")]
    pub queued: bool,
    /// Print an STARTs column: when LATms starts (issue, or queueing with
    /// -Q), in seconds of CLOCK_MONOTONIC.
    #[arg(short = 's', long = "start")]
    pub start: bool,
    /// Print an ENDs column: when the I/O completed, in seconds of
    /// CLOCK_MONOTONIC.
    #[arg(short = 't', long = "end")]
    pub end: bool,
    /// Trace this device only: MAJ,MIN (e.g. 254,0) or a name (vda, sda1,
    /// nvme0n1, /dev/sda1). A partition selects its disk's I/O within it.
    #[arg(short = 'd', long = "device", value_name = "DEVICE")]
    pub device: Option<String>,
    /// Show only I/O whose type matches this glob, e.g. '*R*' for reads,
    /// '*W*' for writes, '*S*' for synchronous I/O.
    #[arg(short = 'i', long = "iotype", value_name = "PATTERN")]
    pub iotype: Option<String>,
    /// Show only I/O submitted by this process (any of its threads). The run
    /// ends a second after it exits (its last I/O may still complete).
    #[arg(short = 'p', long = "pid", value_name = "PID", value_parser = cli::parse_pid, conflicts_with = "name")]
    pub pid: Option<u32>,
    /// Show only I/O submitted by processes whose name contains NAME (or
    /// matches it, if NAME is a glob).
    #[arg(short = 'n', long = "name", value_name = "NAME")]
    pub name: Option<String>,
    /// Show only I/O with a latency of at least MS milliseconds.
    #[arg(short = 'm', long = "min-ms", value_name = "MS", value_parser = parse_ms)]
    pub min_ms: Option<f64>,
    /// Add a QUEms column before LATms: the time from queueing to issue.
    #[arg(long = "queue-column")]
    pub queue_column: bool,
    /// Show disk (or partition) names instead of MAJ,MIN in the DEV column.
    #[arg(long = "disk-names")]
    pub disk_names: bool,
    /// Print a log2 histogram of latency (microseconds) instead of one
    /// line per I/O, at the end (or every --interval).
    #[arg(long = "hist", conflicts_with_all = ["start", "end", "queue_column", "disk_names"])]
    pub hist: bool,
    /// With --hist: one histogram per disk.
    #[arg(short = 'D', long = "per-disk", requires = "hist")]
    pub per_disk: bool,
    /// With --hist: print (and reset) the histogram every SECS seconds.
    #[arg(long = "interval", value_name = "SECS", requires = "hist", value_parser = cli::parse_secs)]
    pub interval: Option<Duration>,
    #[command(flatten)]
    pub json: JsonOpt,
    /// Use the events of kernels before 6.5 (block_getrq,
    /// block_rq_complete) even where newer ones exist (for tests).
    #[arg(long = "legacy-events", hide = true)]
    pub legacy_events: bool,
    #[command(flatten)]
    pub buffer: BufferOpt,
    #[command(flatten)]
    pub write: WriteOpt,
    #[command(flatten)]
    pub read: ReadOpt,
    /// Trace for this many seconds, then end (output streams meanwhile).
    #[arg(value_name = "DURATION", value_parser = cli::parse_secs)]
    pub duration: Option<Duration>,
}

ftrace_common::cli_tests!(Args);

pub fn parse_ms(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v >= 0.0 && v.is_finite() => Ok(v),
        _ => Err(format!("'{s}' is not a number of milliseconds")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perf_tools_command_lines_parse() {
        let a = Args::try_parse_from(["iosnoop", "-Qts", "-d", "202,1", "-i", "*R*", "5"]).unwrap();
        assert!(a.queued && a.start && a.end);
        assert_eq!(a.device.as_deref(), Some("202,1"));
        assert_eq!(a.duration, Some(Duration::from_secs(5)));
        let a = Args::try_parse_from(["iosnoop", "-Qp", "91"]).unwrap();
        assert_eq!(a.pid, Some(91));
        assert!(Args::try_parse_from(["iosnoop", "-p", "1", "-n", "x"]).is_err());
        assert!(Args::try_parse_from(["iosnoop", "--per-disk"]).is_err());
        assert!(Args::try_parse_from(["iosnoop", "-m", "-1"]).is_err());
        let a = Args::try_parse_from(["iosnoop", "--hist", "--per-disk", "-m", "0.5"]).unwrap();
        assert_eq!(a.min_ms, Some(0.5));
    }
}
