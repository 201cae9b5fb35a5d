//! kprobe's command line: its options, help and examples.

use clap::Parser;
use ftrace_common::app::opts::{EventOpts, KernelStacksOpt, ProbeOpts, ReadOpt, WriteOpt};

pub const EXAMPLES: &str = "\
Examples:
  kprobe p:do_sys_open                   # trace open() entries (do_sys_open)
  kprobe r:do_sys_open                   # trace their returns
  kprobe 'r:do_sys_open $retval'         # returns, with the return value
  kprobe 'r:myopen do_sys_open $retval'  # the same, event named myopen
  kprobe 'p:myopen do_sys_open mode=%cx:u16'
                                         # an argument from a register
  kprobe 'p:myopen do_sys_open filename=+0(%si):string'
                                         # the file name (x86_64 ABI: 2nd arg)
  kprobe 'p:do_sys_open file=+0(%si):string' 'file ~ \"*stat\"'
                                         # only names ending in stat
  kprobe 'p:do_sys_openat2 f=+0($arg2):string'
                                         # the same by argument number
  kprobe 'r:vfs_read count=$arg3:u64 ret=$retval:s64'
                                         # size asked and size read
  kprobe -s 'p:myprobe tcp_retransmit_skb'
                                         # TCP retransmits, with kernel stacks
  kprobe -p 1182 -d 10 p:vfs_read        # one process, 10 seconds
  kprobe p:ext4:ext4_file_open           # a function of a module
  kprobe -e 'p:vfs_read' -e 'r:vfs_read ret=$retval:s64 if ret < 0'
                                         # two probes, the second filtered
  kprobe -C -d 5 -e p:vfs_read -e p:vfs_write
                                         # count calls for 5 seconds
  kprobe -C --by f 'p:do_sys_openat2 f=+0(%si):string'
                                         # count opens per file name
  kprobe --hist '$retval' r:vfs_read     # histogram of read() sizes
  kprobe -v 'p:do_sys_open +0(%si):string'
                                         # show the event format and exit
  kprobe --json -M 10 p:do_sys_openat2   # 10 events as JSON lines
  kprobe -w open.dat -d 10 'p:do_sys_open +0(%si):string'
                                         # record into a trace.dat file
  kprobe --read open.dat                 # print it (here or elsewhere)";

/// Trace kernel function calls and returns (kprobes).
#[derive(Debug, Parser)]
#[command(
    name = "kprobe",
    version,
    about = "Trace kernel function calls and returns with kprobes",
    long_about = "Trace kernel function calls and returns with kprobes, printing one \
line per event from ftrace's binary buffers in a private instance, or counting them. \
A definition is {p|r}:[NAME ]FUNC[+OFFSET]|MODULE:FUNC|0xADDR [ARGS], as in perf-tools: \
p: probes the entry (or an instruction at +OFFSET), r: the return; if the first word is \
followed by a word that is not a fetch argument, the first word is the event NAME \
(default: the function's name). ARGS are the kernel's fetch arguments, passed on as \
given: %di, +0(%si):string, $retval, mode=%cx:u16 (see the kernel's kprobetrace.rst). \
$argN is the function's N-th argument (from $arg1; at most $arg64), alone, in fetches \
(+0($arg2):string) and named (f=+0($arg2):string): at an entry, the kernel's own $argN \
where its tracefs README lists $arg<N> (4.20 or later), else the calling convention's \
registers ($arg1..$arg6: %di %si %dx %cx %r8 %r9 on x86-64, $arg1..$arg8: %x0..%x7 on \
arm64; arguments on the stack are refused there); in a return probe (r:) the value at \
entry: the kernel's own where it has $arg<N> in return probes (6.10 or later), else \
kprobe arms an entry probe of its own and pairs each return with its entry per thread \
(recursion included; a return whose entry was not seen is not shown, and misses are \
counted on stderr at the end); there only $argN[:TYPE] itself, since kernel memory cannot \
be read from user space at the return, not with -C, --hist or -w, and a filter can name \
only the arguments that do not use $argN. $argN at +OFFSET \
or out of range is refused with exit status 2 before anything is created. \
The function is checked against available_filter_functions (or /proc/kallsyms) before \
anything is created; -F skips the check. The FILTER uses the kernel's event filter \
syntax on the argument names (e.g. 'file ~ \"*stat\"'). Several probes: give each with \
-e; a definition given with -e may end with `if FILTER`. A string argument the kernel \
could not read (its page was not in memory) prints as (fault), as in the kernel's own \
output; beware that the kernel's == and ~ filters let such events through. Lost events \
are always reported. -p PID keeps the events of that process, all its threads and the \
processes it starts while kprobe runs (unlike perf-tools, which kept the one PID).\n\n\
Requirements: root, kprobe events (CONFIG_KPROBE_EVENTS, Linux 3.5 or later; in an \
instance, 4.4 or later), tracefs (mounted if needed); -s needs CONFIG_STACKTRACE. On a \
kernel without kprobe events kprobe says so in one line and exits with status 2.\n\n\
Overhead: every call of a probed function pays for the probe, in every process, whatever \
-p or the filter keep: an ftrace call-site hook (well under a microsecond) for a probe \
on a function's entry, a breakpoint trap (a few microseconds) for one at an offset or a \
return probe, plus copying the arguments. Printing each event costs far more than \
recording it. For a function called thousands of times a second, filter, count (-C, \
--hist) or limit the run (-d, -M).",
    after_help = EXAMPLES
)]
pub struct Args {
    /// Force: skip the check that the function is in
    /// available_filter_functions (and that an offset is inside it).
    #[arg(short = 'F', long = "force")]
    pub force: bool,
    #[command(flatten)]
    pub ev: EventOpts,
    #[command(flatten)]
    pub stacks: KernelStacksOpt,
    /// Count the events of each probe instead of printing them; the counts
    /// are printed at the end.
    #[arg(short = 'C', long = "count", conflicts_with_all = ["hist", "stacks"])]
    pub count: bool,
    /// With -C: count per value of ARG (a probe argument's name), comm or
    /// pid.
    #[arg(long = "by", value_name = "ARG", requires = "count")]
    pub by: Option<String>,
    /// Print a log2 histogram of ARG (a probe argument's name, or $retval
    /// for return probes) instead of the events.
    #[arg(long = "hist", value_name = "ARG", conflicts_with = "stacks")]
    pub hist: Option<String>,
    /// The probe: {p|r}:[NAME ]FUNC[+OFFSET]|MODULE:FUNC|0xADDR [ARGS].
    #[arg(value_name = "DEFINITION")]
    pub definition: Option<String>,
    #[command(flatten)]
    pub probe: ProbeOpts,
    #[command(flatten)]
    pub write: WriteOpt,
    #[command(flatten)]
    pub read: ReadOpt,
}

ftrace_common::cli_tests!(Args);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_that_do_not_go_together() {
        for bad in [
            &["-C", "--hist", "x", "p:f"][..],
            &["--by", "comm", "p:f"][..],
            &["-s", "-C", "p:f"][..],
            &["-s", "--hist", "x", "p:f"][..],
            &["-p", "1", "-L", "1", "p:f"][..],
        ] {
            assert!(
                Args::try_parse_from(std::iter::once("kprobe").chain(bad.iter().copied())).is_err(),
                "{bad:?}"
            );
        }
    }
}
