//! What syscount decides from its options before touching the kernel, and
//! how it arms the counting in its instance: a hist trigger, or the
//! raw_syscalls events read from the buffer.

use crate::agg::By;
use crate::child;
use crate::cli::{Args, CountIn};
use crate::count::{Decoder, ErrFilter};
use crate::hist::{HistSpec, HistTrigger};
use crate::syscalls::{self, errno, Table};
use ftrace_common::app::output::Output;
use ftrace_common::kernel::tracefs::Tracefs;
use ftrace_common::lifecycle::instance::Instance;
use ftrace_common::{Error, Flow, Result};

/// Everything decided from the options before touching the kernel.
pub struct Plan {
    pub by: By,
    pub latency: bool,
    pub err: ErrFilter,
    pub hist_nrs: Vec<(i64, String)>,
    pub unit_ns: u64,
    pub table: Table,
    pub command: Option<(std::path::PathBuf, Vec<String>)>,
}

pub fn plan(args: &Args) -> Result<Plan> {
    let table = Table::native().unwrap_or_else(|| Table::empty(std::env::consts::ARCH));
    let latency = args.latency || !args.hist.is_empty();
    if args.milliseconds && !latency {
        return Err(Error::usage("-m/--milliseconds needs -L or --hist"));
    }
    let errno = args
        .errno
        .as_deref()
        .map(errno::parse)
        .transpose()
        .map_err(Error::usage)?;
    let err = ErrFilter {
        failed: args.failures || errno.is_some(),
        errno,
    };
    let mut hist_nrs = Vec::new();
    for name in &args.hist {
        let name = name.trim();
        let nr = match name.parse::<i64>() {
            Ok(n) => n,
            Err(_) => match table.number(name) {
                Some(n) => n as i64,
                None => {
                    let near = table.suggestions(name);
                    return Err(Error::usage(format!(
                        "no system call '{name}' in the {} table{} (syscount -l lists them)",
                        table.arch,
                        ftrace_common::base::glob::hint(&near)
                    )));
                }
            },
        };
        if !hist_nrs.iter().any(|(n, _)| *n == nr) {
            hist_nrs.push((nr, table.display(nr).into_owned()));
        }
    }
    let by = match (args.syscalls, args.verbose) {
        (true, false) => By::Syscall,
        (true, true) => By::PidSyscall,
        (false, false) => By::Comm,
        (false, true) => By::Pid,
    };
    if args.write.write.is_some() && args.count_in == CountIn::Kernel {
        return Err(Error::usage(
            "--count-in kernel records nothing to write: -w reads the trace buffer",
        ));
    }
    if latency && args.count_in == CountIn::Kernel {
        return Err(Error::usage(
            "--count-in kernel cannot measure latency (-L, --hist): it needs the trace buffer",
        ));
    }
    let command = match args.command.first() {
        Some(prog) => Some((child::resolve(prog)?, args.command.clone())),
        None => None,
    };
    Ok(Plan {
        by,
        latency,
        err,
        hist_nrs,
        unit_ns: if args.milliseconds { 1_000_000 } else { 1_000 },
        table,
        command,
    })
}

/// Sets up the counting in the instance: a hist trigger (created paused)
/// or the raw_syscalls events, and the task events where tasks are named.
pub fn arm(
    inst: &mut Instance,
    plan: &Plan,
    in_kernel: bool,
    need_tasks: bool,
    count_at_enter: bool,
) -> Result<(Decoder, Option<HistTrigger>)> {
    let enter_fmt = inst.event_format("raw_syscalls", "sys_enter")?;
    let exit_fmt = inst.event_format("raw_syscalls", "sys_exit")?;
    let mut dec = Decoder::new(&enter_fmt, &exit_fmt)?;

    let mut trigger = None;
    if in_kernel {
        let mut keys = Vec::new();
        if need_tasks {
            keys.push("common_pid");
        }
        if plan.by == By::Syscall || plan.by == By::PidSyscall {
            keys.push("id.syscall");
        }
        let size = match keys.len() {
            2 => 16384,
            _ if need_tasks => 8192,
            _ => 2048,
        };
        let mut spec = HistSpec::new(&keys).size(size);
        if let Some(f) = plan.err.kernel_filter() {
            spec = spec.filter(f);
        }
        let event = if count_at_enter {
            "sys_enter"
        } else {
            "sys_exit"
        };
        trigger = Some(HistTrigger::add(inst, "raw_syscalls", event, spec, true)?);
    } else {
        if count_at_enter || plan.latency {
            inst.enable_event("raw_syscalls", "sys_enter")?;
            dec.want_enter = true;
        }
        if !count_at_enter {
            if let Some(f) = plan.err.kernel_filter() {
                inst.set_filter("raw_syscalls", "sys_exit", &f)?;
            }
            inst.enable_event("raw_syscalls", "sys_exit")?;
            dec.want_exit = true;
        }
    }
    if need_tasks {
        dec.meta(inst)?;
    }
    Ok((dec, trigger))
}

/// The per-CPU buffer when counting from the buffer: a getppid loop makes
/// about 300 MB/s of raw_syscalls records on one CPU, so 32 MiB is 0.1 s
/// for the reader to be late by (a busy machine's scheduler can be), with
/// at most 256 MiB in all.
pub fn default_buffer_kb(ncpus: usize) -> u32 {
    (262_144 / ncpus.max(1) as u32).clamp(1024, 32_768)
}

pub fn list(table: &Table) -> Result<()> {
    let mut out = Output::new();
    out.line(&format!("{:>4} SYSCALL", "NR"));
    for (nr, name, _) in table.entries() {
        if out.line(&format!("{nr:>4} {name}")) == Flow::Stop {
            return Ok(());
        }
    }
    // What the running kernel has beyond the table, where we can see it.
    if let Ok(tfs) = Tracefs::open() {
        let check = syscalls::cross_check(table, &syscalls::kernel_syscall_events(&tfs));
        for name in &check.kernel_only {
            out.line(&format!(
                "{:>4} {name} (this kernel has it; the {} table from Linux {} has no number for it)",
                "?", table.arch, table.kernel
            ));
        }
    }
    out.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn error_filters() {
        let f = ErrFilter {
            failed: true,
            errno: None,
        };
        assert!(f.keeps(3, -9) && f.keeps(3, -4095));
        assert!(!f.keeps(3, 0) && !f.keeps(3, -4096) && !f.keeps(3, 3) && !f.keeps(-1, -4));
        assert_eq!(
            f.kernel_filter().unwrap(),
            "ret < 0 && ret >= -4095 && id != -1"
        );
        let e = ErrFilter {
            failed: true,
            errno: Some(9),
        };
        assert!(e.keeps(3, -9) && !e.keeps(3, -2) && !e.keeps(-1, -9));
        assert_eq!(e.kernel_filter().unwrap(), "ret == -9 && id != -1");
        assert!(
            ErrFilter::default().keeps(-1, 5) && ErrFilter::default().kernel_filter().is_none()
        );
    }

    #[test]
    fn plan_refuses_bad_input_with_exit_2() {
        let bad = [
            vec!["syscount", "-e", "EBDF"],
            vec!["syscount", "-m"],
            vec!["syscount", "--hist", "nosuchcall"],
            vec!["syscount", "no-such-command-xyz"],
            vec!["syscount", "-L", "--count-in", "kernel"],
        ];
        for argv in bad {
            let a = Args::try_parse_from(&argv).unwrap();
            let e = plan(&a)
                .err()
                .unwrap_or_else(|| panic!("{argv:?} accepted"));
            assert_eq!(e.exit_code(), 2, "{argv:?}: {e}");
        }
        let a = Args::try_parse_from(["syscount", "-e", "EBDF"]).unwrap();
        let msg = plan(&a).err().unwrap().to_string();
        assert!(msg.contains("EBADF"), "{msg}");
    }
}
