//! iolatency's command line: its options, help and examples.

use clap::Parser;
use ftrace_common::app::cli::parse_secs;
use ftrace_common::app::opts::{BufferOpt, InOpt, JsonOpt};
use std::time::Duration;

const EXAMPLES: &str = "\
Examples:
  iolatency                  # a histogram every second, until Ctrl-C
  iolatency 5 2              # every 5 seconds, twice
  iolatency -Q               # include the time queued before issue
  iolatency -T 1             # the time of day before each histogram
  iolatency -d vda           # one disk (or 254,0, a partition: sda1)
  iolatency -i '*R*'         # reads only ('*W*': writes, '*S*': synchronous)
  iolatency -j 1 10          # a JSON line per second, for 10 seconds
  iolatency --in buffer      # pair the I/O in iolatency, not the kernel";

const LONG_ABOUT: &str = "\
Summarize block device I/O latency as a histogram in milliseconds, as perf-tools' \
iolatency does: rows of power-of-two ranges (>=(ms) .. <(ms)), the I/O count in each and a \
bar. Latency is from when the device got the I/O (block:block_rq_issue) to its completion, \
or with -Q from when it was queued. Each latency is the difference of the two times in whole \
milliseconds.

Where the kernel has hist triggers and synthetic events (Linux 5.16 or later for the \
arithmetic), it pairs and counts the I/O itself: the issue's trigger saves a time stamp per \
(disk, sector), the completion's trigger fires a synthetic event with the latency, a hist \
trigger counts it in log2 buckets; nothing goes through the trace buffer. Elsewhere, or with \
--in buffer, the block events are recorded in a private instance and iolatency pairs them \
from the binary trace buffer as iosnoop does (merges, requeues and partial completions \
followed; an I/O whose start was lost or not seen is not counted). The Tracing line says \
which.

-Q in the kernel uses block:block_io_start (Linux 6.5 and later), recorded when the request \
is made for its process; older kernels pair -Q from the buffer. In the kernel, the tables of \
in-flight I/O keep one entry per (disk, sector) ever seen (16384): when one fills, \
iolatency makes them anew, and the I/O that found no room is reported.

Requirements: root, tracefs (mounted if needed) with instances (Linux 4.4 or later), block \
tracepoints (CONFIG_BLOCK, CONFIG_TRACEPOINTS). In the kernel: CONFIG_HIST_TRIGGERS and \
CONFIG_SYNTH_EVENTS.

Overhead: in the kernel, two hash updates per I/O; from the buffer, three to five events per \
I/O read by iolatency.";

/// Summarize block I/O latency as a histogram in milliseconds.
#[derive(Debug, Parser)]
#[command(
    name = "iolatency",
    version,
    about = "Summarize block I/O latency as a histogram in milliseconds",
    long_about = LONG_ABOUT,
    after_help = EXAMPLES
)]
pub struct Args {
    /// Include the time queued: measure from when the I/O was queued (its
    /// request made), not from when it was issued to the device.
    #[arg(short = 'Q', long = "queued")]
    pub queued: bool,
    /// Print the time of day (HH:MM:SS) before each histogram.
    #[arg(short = 'T', long = "timestamp")]
    pub timestamp: bool,
    /// Count this device only: MAJ,MIN (e.g. 254,0) or a name (vda, sda1,
    /// nvme0n1, /dev/sda1). A partition selects its disk's I/O within it.
    #[arg(short = 'd', long = "device", value_name = "DEVICE")]
    pub device: Option<String>,
    /// Count only I/O whose type (rwbs) matches this glob, e.g. '*R*' for
    /// reads, '*W*' for writes, '*S*' for synchronous I/O.
    #[arg(short = 'i', long = "iotype", value_name = "PATTERN")]
    pub iotype: Option<String>,
    #[command(flatten)]
    pub json: JsonOpt,
    #[command(flatten)]
    pub place: InOpt,
    #[command(flatten)]
    pub buffer: BufferOpt,
    /// Print (and start anew) the histogram every SECS seconds.
    #[arg(value_name = "INTERVAL", default_value = "1", value_parser = parse_secs)]
    pub interval: Duration,
    /// End after this many histograms (default: until Ctrl-C).
    #[arg(value_name = "COUNT", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
}

ftrace_common::cli_tests!(Args);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perf_tools_command_lines_parse() {
        let a = Args::try_parse_from(["iolatency", "-QT", "-d", "202,1", "-i", "*R*", "5", "2"])
            .unwrap();
        assert!(a.queued && a.timestamp);
        assert_eq!(a.device.as_deref(), Some("202,1"));
        assert_eq!(a.interval, Duration::from_secs(5));
        assert_eq!(a.count, Some(2));
        let a = Args::try_parse_from(["iolatency"]).unwrap();
        assert_eq!(a.interval, Duration::from_secs(1));
        assert!(Args::try_parse_from(["iolatency", "1", "0"]).is_err());
        assert!(Args::try_parse_from(["iolatency", "x"]).is_err());
    }
}
