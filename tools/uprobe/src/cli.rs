//! uprobe's command line: its options, help and examples.

use clap::Parser;
use ftrace_common::app::opts::{EventOpts, ProbeOpts, ReadOpt, UserStacksOpt, WriteOpt};

pub const EXAMPLES: &str = "\
Examples:
  uprobe p:bash:readline                 # trace readline() calls in bash
  uprobe 'r:bash:readline +0($retval):string'
                                         # commands typed in every bash
  uprobe 'p:libssl:SSL_write +0(%si):string'
                                         # what is sent through OpenSSL
  uprobe 'p:libssl:SSL_write buf=+0($arg2):string len=$arg3:s32'
                                         # the same by argument number
  uprobe 'r:libssl:SSL_read len=$retval:s32 buf=+0($arg2):bytes[$retval]'
                                         # what SSL_read() returned, exact bytes
  uprobe -e 'p:libssl:SSL_write +0(%si):string' -e 'r:libssl:SSL_read'
                                         # two probes in one run
  uprobe 'p:libc:sleep %di'              # sleep() with its argument
  uprobe p:libc:0xbf130                  # an address, as objdump shows it
  uprobe -p 1182 p:libc:fopen            # one process (even in a container)
  uprobe 'r:libc:fopen file=$retval' 'file == 0'
                                         # failed fopen()s
  uprobe -e 'r:libc:fopen file=$retval if file == 0' -e p:libc:fclose
                                         # several probes, each its filter
  uprobe -s p:libc:abort                 # with symbolized user stacks
  uprobe -v 'p:libc:open +0(%di):string' # show the event format and exit
  uprobe -l libssl 'SSL_*'               # list functions of a library
  uprobe --json -d 5 p:bash:readline     # JSON lines for 5 seconds
  uprobe -w ssl.dat -d 60 'p:libssl:SSL_write +0(%si):string'
                                         # record a minute into a trace.dat file
  uprobe --read ssl.dat                  # print it (here or elsewhere)";

pub const LONG_ABOUT: &str = "\
Trace user-space function calls and returns with uprobes, printing one line per event, \
decoded from ftrace's binary buffers in a private instance. Lost events are always \
reported.

A definition is {p|r}:[NAME ]TARGET:SYMBOL[+OFFSET]|0xADDR [ARGS], as in perf-tools. \
p: probes the entry, r: the return. If the first word is followed by a word that is not \
a fetch argument, the first word is the event NAME (default: p_TARGET_SYMBOL, or \
r_...). TARGET is a path, a program on PATH, or a library name matched against the \
ld.so cache and the library directories (libc, libssl); with -p, the file that process \
maps, reached through /proc/PID/root (a process in a container). SYMBOL is a function \
(name@VERSION for another version than the default; C++ and Rust names also \
demangled, as -l lists them), name+OFFSET, or an address as objdump shows it. IFUNCs \
(strlen, memcpy) are refused with the implementations to probe instead. ARGS are the \
kernel's fetch arguments, passed on as given: %di, +0(%si):string, $retval, \
file=$retval, +8($stack):u32, +0(%si):u8[16]; a bad one is refused with the kernel's \
error_log text. $argN is the function's N-th integer or pointer argument (from $arg1; at \
most $arg64), alone, in fetches (+0($arg2):string) and named (buf=+0($arg2):string). \
Uprobe events have no $argN of their own, so uprobe puts in the place the calling \
convention gives the argument at the function's first instruction: on x86-64 $arg1..$arg6 \
are %di %si %dx %cx %r8 %r9 and $arg7, $arg8... are +8(%sp), +16(%sp)... (above the \
return address); on arm64 $arg1..$arg8 are %x0..%x7 and $arg9, $arg10... are +0(%sp), \
+8(%sp).... Floating-point arguments and structures passed by value are elsewhere. In a \
return probe (r:), $argN is the value at entry: uprobe arms an entry probe of its own \
beside the return probe and pairs each return with its entry per thread (recursion \
included); a return whose entry was not seen (the call began before tracing, or events \
were lost) is not shown, and such misses are counted on stderr at the end. There a fetch \
on $argN is $argN[:TYPE] or +OFF(...) around it, TYPE u8..u64, s8..s64, x8..x64, string \
(up to the NUL, at most 4096 bytes) or bytes[LEN]: exactly LEN bytes (at most 8192), LEN \
a number, $retval or $argM, e.g. buf=+0($arg2):bytes[$retval] for what a read-like \
function filled; bytes are printed quoted as the kernel prints strings, every byte that is \
not printable ASCII (a NUL too) as \\xNN. That memory is read with process_vm_readv(2) \
when uprobe reads the return event, a few milliseconds AFTER the function returned: the \
process may have reused or freed the buffer by then, and a process that has exited shows \
(gone), unreadable memory (fault). -w is refused for such probes (pairing and reading \
happen while tracing). A filter on such a probe can name only the arguments that do not \
use $argN. $argN at +OFFSET (the registers hold other things there) or out of range is \
refused with exit status 2 before anything is created. FILTER uses the kernel's event filter syntax on the argument names \
(e.g. 'file == 0'). Several probes: give each with -e; a definition given with -e may \
end with `if FILTER`.

Fields: the task name and thread ID (COMM-TID), the CPU, a time stamp in seconds \
(CLOCK_MONOTONIC), the event name, then for an entry probe (ADDR), the address where \
it fired, and for a return probe (RET <- FUNC), the return address and the function; \
then each argument as NAME=VALUE, in hex unless a type says otherwise (u32, s64, \
string...), strings quoted with \\n, \\\" and bytes that are not text as \\xNN. With -s, \
user stack frames follow, as func+0xoff (file), at most 8 (the kernel walks frame \
pointers).

Requirements: root, tracefs (mounted if needed), instances, uprobe events \
(CONFIG_UPROBE_EVENTS, Linux 3.5 or later; in an instance, 4.4 or later); -s needs \
CONFIG_STACKTRACE and a kernel with the userstacktrace option. Probes are created in a group of this run's own and removed \
at the end, also on SIGINT, SIGTERM, SIGHUP, SIGQUIT or a closed pipe; what a \
SIGKILLed run left is removed by the next run, or by reset-ftrace.

Overhead: each hit is a breakpoint trap handled by the kernel: several microseconds per \
call (a return probe costs about half again as much), paid by every process that runs \
the probed code, whether -p, -L or a filter keep the event or not: probing malloc() of \
libc slows down every process. Probe rarely called functions, or for a short time \
(-d). uprobe itself keeps up with a probed function called in a tight loop.";

/// Trace user-space function calls and returns (uprobes).
#[derive(Debug, Parser)]
#[command(
    name = "uprobe",
    version,
    about = "Trace user-space function calls and returns with uprobes",
    long_about = LONG_ABOUT,
    after_help = EXAMPLES
)]
pub struct Args {
    /// Force: probe IFUNC resolvers, offsets past a function's end, and
    /// addresses outside the executable segments.
    #[arg(short = 'F', long = "force")]
    pub force: bool,
    #[command(flatten)]
    pub ev: EventOpts,
    #[command(flatten)]
    pub stacks: UserStacksOpt,
    /// List the functions of TARGET (matching an optional glob, given as
    /// the next argument) and exit.
    #[arg(short = 'l', long = "list", value_name = "TARGET")]
    pub list: Option<String>,
    /// The probe: {p|r}:[NAME ]TARGET:SYMBOL[+OFFSET]|0xADDR [ARGS];
    /// with -l, an optional glob of function names.
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
