//! offcputime's command line.

use ftrace_common::app::cli::{parse_pid, parse_secs};
use ftrace_common::app::flame::FlameOpts;
use ftrace_common::app::opts::{BufferOpt, DurationOpt, JsonOpt};
use std::time::Duration;

const EXAMPLES: &str = "\
Examples:
  offcputime                   # all threads, kernel and user stacks, until Ctrl-C
  offcputime 5                 # 5 seconds (also: -d 5)
  offcputime -p 185 -d 10      # process 185 only (all its threads)
  offcputime -t 188            # thread 188 only
  offcputime -u -K             # user threads, kernel stacks only
  offcputime -k                # kernel threads only
  offcputime -m 1000 -p 185    # only blocks of 1 ms or more
  offcputime --state 2         # uninterruptible sleep (D) only
  offcputime -U -p 185 -f > out.folded  # folded, for flame graphs
  offcputime --svg offcpu.svg -p 185 -d 10   # an off-CPU flame graph";

const LONG_ABOUT: &str = "\
Sum the time threads spend blocked (off-CPU), by the stack they blocked in, as bcc's \
offcputime does. Each sched:sched_switch event in a private instance records the \
stack of the thread switched out (the instance's stacktrace and userstacktrace \
options); the time runs until a later sched_switch switches that thread back in. \
Times are in microseconds and include the time a woken thread waited for a CPU. The \
stacks are printed as bcc prints them, the most time last, each ending with \
`-  comm (tid)` and the total; or folded (-f), as JSON (-j), or drawn as an off-CPU \
flame graph (--svg). Blocks still going on when the run ends are not counted. Lost \
events are always reported.

The times are right only where the kernel fires sched_switch at every context switch. \
Some kernels skip it for some switches (seen most when an idle CPU picks up a woken \
thread); nothing in the kernel counts those, but a thread switched out twice with no \
switch in between shows one: that block is left out, and the end of the run says how \
many were.

With -p or -t the kernel records only the switches of that process's or thread's \
threads (set_event_pid, which for sched_switch keeps an event when either thread is \
in the set); without them every context switch of the machine is recorded. The idle \
tasks and offcputime itself are never counted.

Kernel frames come from kallsyms. User frames come from the process's ELF files, \
read through its maps when it is first seen. User stacks: the kernel walks them by \
frame pointers from the registers at kernel entry, and keeps at most 8 frames. The \
caller of a leaf function (one that sets up no frame, such as libc's syscall \
wrappers) is often missing, and code built without frame pointers (most \
distributions' libraries; -fomit-frame-pointer) gives one or two frames, or wrong \
ones, past the first. Build what you trace with -fno-omit-frame-pointer for whole \
stacks.

--state N keeps blocks that began in state N: 0 is running (preempted or yielded), \
otherwise a mask of the kernel's task states as sched_switch reports them (1 S \
interruptible sleep, 2 D uninterruptible, 4 T stopped, 128 I idle kernel thread).

Requirements: root, tracefs with instances, the sched:sched_switch tracepoint; kernel \
stacks need options/stacktrace, user stacks CONFIG_USER_STACKTRACE_SUPPORT.

Overhead: every context switch of the traced threads (of the machine, without -p or \
-t) writes an event and one or two stack records that offcputime reads, merges in time \
order and looks up. Context switches are frequent, tens of thousands a second on a \
busy machine: -p, -t and -U or -K keep the cost down.";

/// Sum the time threads spend blocked, by stack.
#[derive(Debug, clap::Parser)]
#[command(
    name = "offcputime",
    version,
    about = "Sum the time threads spend blocked (off-CPU), by stack",
    long_about = LONG_ABOUT,
    after_help = EXAMPLES
)]
pub struct Args {
    /// Trace this process only (all its threads, also those it starts
    /// while traced). The run ends when it exits.
    #[arg(short = 'p', long = "pid", value_name = "PID", value_parser = parse_pid, conflicts_with = "tid")]
    pub pid: Option<u32>,
    /// Trace this thread only. The run ends when it exits.
    #[arg(short = 't', long = "tid", value_name = "TID", value_parser = parse_pid, short_alias = 'L')]
    pub tid: Option<u32>,
    /// User threads only (no kernel threads).
    #[arg(
        short = 'u',
        long = "user-threads-only",
        conflicts_with = "kernel_threads"
    )]
    pub user_threads: bool,
    /// Kernel threads only (no user threads).
    #[arg(short = 'k', long = "kernel-threads-only")]
    pub kernel_threads: bool,
    /// User stacks only (no kernel frames).
    #[arg(
        short = 'U',
        long = "user-stacks-only",
        conflicts_with = "kernel_stacks"
    )]
    pub user_stacks: bool,
    /// Kernel stacks only (no user frames).
    #[arg(short = 'K', long = "kernel-stacks-only")]
    pub kernel_stacks: bool,
    /// Count only blocks of at least US microseconds.
    #[arg(short = 'm', long = "min-block-time", value_name = "US")]
    pub min_us: Option<u64>,
    /// Count only blocks of at most US microseconds.
    #[arg(short = 'M', long = "max-block-time", value_name = "US")]
    pub max_us: Option<u64>,
    /// Count only blocks that began in this task state: 0 running
    /// (preempted), else a mask (1 S, 2 D, 4 T, ...).
    #[arg(long = "state", value_name = "N")]
    pub state: Option<u64>,
    /// Print the stacks folded (one a line, the thread's name first, then
    /// the user and the kernel frames, outermost first, joined by ';', then
    /// the microseconds), for flame graphs.
    #[arg(short = 'f', long = "folded-output")]
    pub folded_out: bool,
    /// A line `--` between kernel and user frames (`-` when folded).
    #[arg(long = "delimited")]
    pub delimited: bool,
    /// Print the totals every SECS seconds, and start them anew.
    #[arg(short = 'i', long = "interval", value_name = "SECS", value_parser = parse_secs)]
    pub interval: Option<Duration>,
    #[command(flatten)]
    pub json: JsonOpt,
    #[command(flatten)]
    pub flame: FlameOpts,
    #[command(flatten)]
    pub duration: DurationOpt,
    #[command(flatten)]
    pub buffer: BufferOpt,
    /// Trace for this many seconds, then print (as -d).
    #[arg(value_name = "DURATION", value_parser = parse_secs, conflicts_with = "duration")]
    pub secs: Option<Duration>,
}

impl Args {
    /// How long the run lasts: -d or the positional DURATION.
    pub fn duration(&self) -> Option<Duration> {
        self.duration.duration.or(self.secs)
    }
}

ftrace_common::cli_tests!(Args);

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn bcc_forms_parse() {
        let a = Args::try_parse_from(["offcputime", "-U", "-p", "12", "5"]).unwrap();
        assert_eq!(a.duration(), Some(Duration::from_secs(5)));
        assert_eq!(a.pid, Some(12));
        let a = Args::try_parse_from(["offcputime", "-L", "7", "-m", "100"]).unwrap();
        assert_eq!((a.tid, a.min_us), (Some(7), Some(100)));
        for bad in [
            &["offcputime", "-d", "2", "3"][..],
            &["offcputime", "-U", "-K"],
            &["offcputime", "-u", "-k"],
            &["offcputime", "-p", "1", "-t", "2"],
            &["offcputime", "-m", "x"],
        ] {
            assert!(Args::try_parse_from(bad).is_err(), "{bad:?}");
        }
    }
}
