//! Texts the unit tests share: the kernel's format of sys_exit_read, and
//! the seed's hist of it as the kernel prints it.

/// `events/syscalls/sys_exit_read/format`, with two fields more (`comm`,
/// `args`) for string and array keys.
pub const SYS_EXIT_READ: &str = "name: sys_exit_read
ID: 700
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;
\tfield:long ret;\toffset:16;\tsize:8;\tsigned:1;
\tfield:char comm[16];\toffset:24;\tsize:16;\tsigned:0;
\tfield:unsigned long args[6];\toffset:40;\tsize:48;\tsigned:0;

print fmt: \"0x%lx\", REC->ret
";

/// The seed's hist, as the kernel prints it, of 305 reads of 4096 bytes by
/// PID 148 and 3 of 1276 by PID 150 (and one failed read, filtered out).
pub const SEED_HIST: &str = "# event histogram
#
# trigger info: hist:keys=common_pid.execname:vals=hitcount,ret:sort=ret:size=2048 if ret >= 0 [active]
#

{ common_pid: cat             [       150] } hitcount:          3  ret:       3828
{ common_pid: ftt-workload    [       148] } hitcount:        305  ret:    1249280

Totals:
    Hits: 308
    Entries: 2
    Dropped: 0
";
