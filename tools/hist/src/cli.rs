//! hist's command line: its options, help and examples.

use clap::Parser;
use ftrace_common::app::opts::{BufferOpt, DurationOpt, InOpt, JsonOpt, SummaryOpts, TaskOpts};

pub const EXAMPLES: &str = "\
Examples:
  hist syscalls:sys_exit_read 'hist:key=common_pid.execname:values=ret:sort=ret if ret >= 0'
                                   # who reads most, and how much
  hist -d 5 raw_syscalls:sys_enter 'keys=id.syscall:sort=hitcount.descending'
                                   # system calls, most frequent first
  hist -p 1234 syscalls:sys_exit_read 'keys=ret.log2'
                                   # read sizes of one process, as powers of 2
  hist block:block_rq_issue 'keys=bytes.buckets=4096:sort=bytes'
                                   # I/O sizes in 4 KiB steps
  hist 'k:vfs_read count=%dx:u64' 'keys=count.log2'
                                   # a kernel function's argument
  hist 'u:libc:malloc size=%di:u64' 'keys=common_pid.execname,size.log2'
                                   # malloc() sizes per program
  hist -i 1 --table sched:sched_switch 'keys=prev_comm:sort=hitcount.descending'
                                   # a table every second
  hist --latency raw_syscalls:sys_enter raw_syscalls:sys_exit 'keys=id.syscall,lat.log2'
                                   # per-syscall latency (us)
  hist --latency sched:sched_waking sched:sched_switch --on pid=next_pid \\
       'keys=pid,prio,lat:sort=pid,lat'
                                   # the kernel docs' wakeup latency
  hist --in buffer -j -d 2 syscalls:sys_exit_read 'keys=common_pid'
                                   # from the buffer, as JSON";

pub const LONG_ABOUT: &str = "\
Aggregate an event the way the kernel's hist triggers do (CONFIG_HIST_TRIGGERS): count \
hits and sum values per key, and print the table in the kernel's own `hist` text. \
Where the kernel has hist triggers, the table is kept by the kernel in a private \
instance (the event needs not be enabled: nothing goes through the trace buffer); where \
it has none, hist reads the events from the binary trace buffer and computes the same \
table in user space, printed the same way. The Tracing line says which; --in forces \
one.

EVENT is a tracepoint (SYSTEM:EVENT), or a probe made for the run: k:FUNC [ARGS] \
(kprobe on a kernel function's entry), kr:FUNC [ARGS] (its return, $retval), \
u:TARGET:SYMBOL [ARGS] and ur:TARGET:SYMBOL [ARGS] (uprobes; TARGET as uprobe takes \
it: a path, a program, a library such as libc). ARGS are the kernel's fetch arguments, \
named for use as keys: 'k:vfs_read count=%dx:u64'.

SPEC is a hist trigger in the kernel's syntax: keys=FIELD[.MOD],... (at most 3), \
vals=FIELD,... (sums besides hitcount, at most 2), sort=FIELD[.descending],... (at most \
2), size=ENTRIES (128 to 131072, default 2048), then `if FILTER` in the event filter \
syntax. Modifiers: .hex .sym .sym-offset .execname (common_pid) .syscall .log2 \
.buckets=N .usecs (common_timestamp). Besides the event's fields: common_pid, \
common_timestamp, common_cpu. A SPEC the kernel refuses is refused, pointing at the \
offending part (with the kernel's error_log line where the kernel parsed it). Variables, \
expressions and actions work only where the kernel computes the table.

With --latency START END [SPEC], hist measures the time from START to the next END \
that matches it on a field (--on; common_pid by default): a synthetic event with the \
latency `lat` (microseconds; --nsecs for nanoseconds), the matched fields and any other \
field SPEC names (from END, else from START), aggregated by SPEC (default \
keys=lat.log2:sort=lat). START and END may end with `if FILTER`. In the kernel this is \
the documentation's recipe: variables, onmatch() and a synthetic event.

Losses are always reported: hits the kernel's table had no room for (Dropped), and \
events the trace buffer lost.

Requirements: root, tracefs, instances. In the kernel: hist triggers (Linux 4.7, \
CONFIG_HIST_TRIGGERS); --latency also synthetic events, variables, onmatch() and \
common_timestamp (Linux 4.17, CONFIG_SYNTH_EVENTS). Probes: CONFIG_KPROBE_EVENTS or \
CONFIG_UPROBE_EVENTS.

Overhead: in the kernel, a hash table update per event (well under a microsecond) and \
nothing in user space until the table is read. From the buffer, each event is also \
recorded (about 0.1 to 0.3 us) and read by hist: at a million events a second, a \
fraction of a CPU.";

/// Hist triggers on any event, in the kernel or from the trace buffer.
#[derive(Debug, Parser)]
#[command(
    name = "hist",
    version,
    about = "Hist triggers on any event: in the kernel where it has them, from the trace buffer where not",
    long_about = LONG_ABOUT,
    after_help = EXAMPLES
)]
pub struct Args {
    #[command(flatten)]
    pub duration: DurationOpt,
    #[command(flatten)]
    pub summary: SummaryOpts,
    #[command(flatten)]
    pub task: TaskOpts,
    #[command(flatten)]
    pub json: JsonOpt,
    #[command(flatten)]
    pub buffer: BufferOpt,
    /// Print a table (one row per entry, in the hist's order) instead of
    /// the kernel's hist text.
    #[arg(long = "table", conflicts_with = "json")]
    pub table: bool,
    #[command(flatten)]
    pub place: InOpt,
    /// The time from EVENT (the start) to the event given as SPEC (the
    /// end); the SPEC comes third.
    #[arg(long = "latency")]
    pub latency: bool,
    /// With --latency: the fields that match an end to its start,
    /// START_FIELD[=END_FIELD] (repeatable, or comma-separated).
    #[arg(
        long = "on",
        value_name = "FIELD[=FIELD]",
        value_delimiter = ',',
        requires = "latency"
    )]
    pub on: Vec<String>,
    /// With --latency: the latency in nanoseconds instead of microseconds.
    #[arg(long = "nsecs", requires = "latency")]
    pub nsecs: bool,
    /// The event: SYSTEM:EVENT, k:FUNC, kr:FUNC, u:TARGET:SYMBOL or
    /// ur:TARGET:SYMBOL (with fetch arguments); with --latency, the start.
    #[arg(value_name = "EVENT")]
    pub event: String,
    /// The hist SPEC (keys=...); with --latency, the end event.
    #[arg(value_name = "SPEC")]
    pub spec: Option<String>,
    /// With --latency: the SPEC of the latency (default
    /// keys=lat.log2:sort=lat).
    #[arg(value_name = "LATENCY_SPEC")]
    pub latency_spec: Option<String>,
}

ftrace_common::cli_tests!(Args);

#[cfg(test)]
mod tests {
    use super::*;
    use ftrace_common::app::opts::Place;

    fn parse(v: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("hist").chain(v.iter().copied()))
    }

    #[test]
    fn the_forms() {
        let a = parse(&["syscalls:sys_exit_read", "keys=ret"]).unwrap();
        assert_eq!(
            (a.event.as_str(), a.spec.as_deref()),
            ("syscalls:sys_exit_read", Some("keys=ret"))
        );
        let a = parse(&["--latency", "a:b", "c:d", "--on", "pid=next_pid,prio"]).unwrap();
        assert!(a.latency);
        assert_eq!(a.on, ["pid=next_pid", "prio"]);
        assert_eq!(a.place.place, Place::Auto);
        for bad in [
            &["--on", "pid", "a:b", "keys=x"][..],
            &["--nsecs", "a:b", "keys=x"],
            &["--table", "-j", "a:b", "keys=x"],
            &["--in", "elsewhere", "a:b", "keys=x"],
            &[],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
