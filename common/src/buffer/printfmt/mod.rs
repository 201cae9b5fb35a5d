//! An event's text as the kernel itself prints it in `trace`, from the
//! binary record: the event's `print fmt` (the C of its `TP_printk`)
//! compiled once, then run on each record.
//!
//! ```text
//! print fmt: "prev_comm=%s prev_pid=%d ... prev_state=%s%s ==> ...", REC->prev_comm, ...
//!            __print_flags(REC->prev_state & ..., "|", { 0x01, "S" }, ...) : "R", ...
//!        ->  prev_comm=ls prev_pid=4021 prev_prio=120 prev_state=D ==> next_comm=swapper/1 ...
//! ```
//!
//! [`EventText::new`] reads the format (lexer, parser, compiler: the
//! submodules), checking C's types once: what it cannot print exactly as
//! the kernel does (a helper it does not know, an enum the format does not
//! define, `%pd` of kernel memory) makes the event fall back to
//! `name=value` ([`EventText::fallback`] says why). [`EventText::write`]
//! then evaluates one record: loads, C's integer arithmetic, the kernel's
//! helpers (`__print_flags`, `__print_symbolic`, `__print_hex`,
//! `__print_array`, `__get_bitmask`, ...) and its vsnprintf (every length
//! modifier, `%pS` from kallsyms, `%pI4`, `%pI6c`, `%pISpc`, `%pM`, `%pU`,
//! `%*ph`, `%*pb`).
//!
//! System-call events are not printed from their format by the kernel but
//! by its own code (`sys_openat(dfd: ffffff9c, ...)`, `sys_openat -> 0x3`),
//! and so here, in the shape of the running kernel's version. Plain `%p`
//! prints the pointer's value (as the kernel does with its `hash-ptr`
//! option off); strings from records are printed as they are, except
//! control characters and bytes that are not UTF-8, written `\n`, `\xNN`
//! so that one event stays one line.
//!
//! Nothing here panics on a format's text or a record's bytes: a load
//! outside the record reads as zero and is reported by `write`.

mod compile;
mod eval;
mod lex;
mod parse;
mod pointers;
mod printf;
mod types;

#[cfg(test)]
mod tests;

use crate::buffer::format::{EventFormat, Field, FieldKind};
use crate::sym::kallsyms::KernelSyms;
use std::collections::HashMap;
use std::sync::OnceLock;

/// What the renderer needs to know of the running kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kernel {
    /// The release's major and minor numbers (6, 12).
    pub version: (u32, u32),
    /// CONFIG_HZ, where the kernel's config says (for
    /// `jiffies_to_msecs()`).
    pub hz: Option<u64>,
}

impl Kernel {
    /// The running kernel (read once).
    pub fn this() -> Kernel {
        static THIS: OnceLock<Kernel> = OnceLock::new();
        *THIS.get_or_init(|| {
            let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
            let release = release.trim();
            let hz = std::fs::read_to_string(format!("/boot/config-{release}"))
                .ok()
                .and_then(|c| {
                    c.lines()
                        .find_map(|l| l.strip_prefix("CONFIG_HZ=")?.trim().parse().ok())
                });
            Kernel {
                version: Kernel::parse_release(release),
                hz,
            }
        })
    }

    /// The kernel a trace.dat file was recorded on, from its UNAME option
    /// (`Linux HOST RELEASE MACHINE`, as trace-cmd writes it); its HZ is
    /// not known.
    pub fn from_uname(uname: &str) -> Kernel {
        Kernel {
            version: Kernel::parse_release(uname.split_whitespace().nth(2).unwrap_or("")),
            hz: None,
        }
    }

    /// `6.12.95+deb12-amd64` -> (6, 12); unreadable parts are 0.
    pub fn parse_release(release: &str) -> (u32, u32) {
        let mut it = release
            .split(|c: char| !c.is_ascii_digit())
            .map(|n| n.parse().unwrap_or(0));
        (it.next().unwrap_or(0), it.next().unwrap_or(0))
    }

    /// Kernels from 6.13 record NEED_RESCHED_LAZY in bit 0x02 of
    /// `common_flags` (before, that bit meant "irqs-off not supported").
    fn lazy_resched(self) -> bool {
        self.version >= (6, 13)
    }

    /// Kernels from 5.13 print the migrate-disable depth as a fifth
    /// irq-info column, in the high nibble of `common_preempt_count`;
    /// before, the whole byte is the preempt depth.
    pub fn migrate_column(self) -> bool {
        self.version >= (5, 13)
    }

    /// Kernels from 6.18 print system-call arguments below 10 in decimal,
    /// the others with `0x`; before, all in hex without it.
    fn syscall_0x(self) -> bool {
        self.version >= (6, 18)
    }
}

/// The irq-info column of the kernel's trace lines (`d.h2.`), from a
/// record's `common_flags` and `common_preempt_count`: irqs off (`d`;
/// `D` with bottom halves off too, `b` for these alone), need-resched (`N`,
/// `n`, `p`, `L`, `l`, `B`, `b`), hard/soft irq or NMI (`h`, `s`, `H`, `z`,
/// `Z`), preempt depth, migrate-disable depth (5.13 and later), as
/// trace_print_lat_fmt() prints them.
pub fn irq_info(flags: u8, preempt: u8, kernel: Kernel) -> String {
    const IRQS_OFF: u8 = 0x01;
    const BIT1: u8 = 0x02;
    const NEED_RESCHED: u8 = 0x04;
    const HARDIRQ: u8 = 0x08;
    const SOFTIRQ: u8 = 0x10;
    const PREEMPT_RESCHED: u8 = 0x20;
    const NMI: u8 = 0x40;
    const BH_OFF: u8 = 0x80;
    let lazy = kernel.lazy_resched() && flags & BIT1 != 0;
    let irqs = match (flags & IRQS_OFF != 0, flags & BH_OFF != 0) {
        (true, true) => b'D',
        (true, false) => b'd',
        (false, true) => b'b',
        _ if !kernel.lazy_resched() && flags & BIT1 != 0 => b'X',
        _ => b'.',
    };
    let resched = match (
        flags & NEED_RESCHED != 0,
        lazy,
        flags & PREEMPT_RESCHED != 0,
    ) {
        (true, true, true) => b'B',
        (true, false, true) => b'N',
        (false, true, true) => b'L',
        (true, true, false) => b'b',
        (true, false, false) => b'n',
        (false, false, true) => b'p',
        (false, true, false) => b'l',
        (false, false, false) => b'.',
    };
    let (nmi, hard, soft) = (flags & NMI != 0, flags & HARDIRQ != 0, flags & SOFTIRQ != 0);
    let irq = match (nmi, hard, soft) {
        (true, true, _) => b'Z',
        (true, false, _) => b'z',
        (false, true, true) => b'H',
        (false, true, false) => b'h',
        (false, false, true) => b's',
        _ => b'.',
    };
    let hex = |n: u8| {
        if n == 0 {
            b'.'
        } else {
            b"0123456789abcdef"[n as usize]
        }
    };
    let mut out: String = [irqs, resched, irq].iter().map(|&b| b as char).collect();
    if kernel.migrate_column() {
        out.push(hex(preempt & 0xf) as char);
        out.push(hex(preempt >> 4) as char);
    } else if preempt == 0 {
        out.push('.');
    } else {
        out.push_str(&format!("{preempt:x}"));
    }
    out
}

/// Kernel strings known by their address (`tracepoint_string()`, what a
/// `const char *` field points to), from tracefs's `printk_formats`, read
/// when first needed.
#[derive(Debug, Default)]
pub struct KernelStrings {
    path: Option<std::path::PathBuf>,
    table: Option<HashMap<u64, Box<str>>>,
}

impl KernelStrings {
    /// Strings read from this `printk_formats` file when first needed.
    pub fn from_file(path: std::path::PathBuf) -> KernelStrings {
        KernelStrings {
            path: Some(path),
            table: None,
        }
    }

    /// Strings from the text of a `printk_formats` file.
    pub fn parse(text: &str) -> KernelStrings {
        let mut table = HashMap::new();
        for line in text.lines() {
            let Some((addr, s)) = line.split_once(" : ") else {
                continue;
            };
            let Ok(addr) = u64::from_str_radix(addr.trim().trim_start_matches("0x"), 16) else {
                continue;
            };
            let s = s.trim().trim_start_matches('"');
            let s = s.strip_suffix('"').unwrap_or(s);
            let mut out = String::new();
            let mut chars = s.chars();
            while let Some(c) = chars.next() {
                if c != '\\' {
                    out.push(c);
                    continue;
                }
                match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some('r') => out.push('\r'),
                    Some('a') => out.push('\x07'),
                    Some('b') => out.push('\x08'),
                    Some('f') => out.push('\x0c'),
                    Some('v') => out.push('\x0b'),
                    Some(o) => out.push(o),
                    None => out.push('\\'),
                }
            }
            table.insert(addr, out.into_boxed_str());
        }
        KernelStrings {
            path: None,
            table: Some(table),
        }
    }

    /// The string at `addr`, if the kernel lists it.
    pub fn get(&mut self, addr: u64) -> Option<&str> {
        if self.table.is_none() {
            // Without a file named, tracefs where it is usually mounted.
            let text = match &self.path {
                Some(p) => std::fs::read_to_string(p).ok(),
                None => ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
                    .iter()
                    .find_map(|d| std::fs::read_to_string(format!("{d}/printk_formats")).ok()),
            }
            .unwrap_or_default();
            self.table = KernelStrings::parse(&text).table;
        }
        self.table.as_ref()?.get(&addr).map(|s| &**s)
    }
}

/// What [`EventText::write`] looks up outside the record.
pub struct Lookups<'a> {
    /// Kernel symbols, for `%pS` and the like.
    pub syms: &'a mut KernelSyms,
    /// Kernel strings, for `%s` of a pointer into the kernel.
    pub strings: &'a mut KernelStrings,
}

#[derive(Debug, Clone)]
enum Kind {
    Fmt(compile::Program),
    SysEnter {
        name: String,
        args: Vec<SysArg>,
        hex_0x: bool,
    },
    SysExit {
        name: String,
        nr: Field,
        ret: Field,
    },
    Fields(Vec<Field>),
}

#[derive(Debug, Clone)]
struct SysArg {
    name: String,
    field: Field,
    /// `__NAME_val`: the user string the kernel copied with the event.
    user: Option<Field>,
}

/// One event's text, compiled from its format (see the module's doc).
#[derive(Debug, Clone)]
pub struct EventText {
    name: String,
    kind: Kind,
    fallback: Option<String>,
}

impl EventText {
    /// Compiles the text of event `system:fmt.name` on this kernel. Never
    /// fails: an event whose format cannot be printed as the kernel does
    /// prints `name=value` for each field, and [`EventText::fallback`]
    /// says why.
    pub fn new(system: &str, fmt: &EventFormat, kernel: Kernel) -> EventText {
        let env = compile::Env {
            hz: kernel.hz,
            probe: false,
        };
        let kind = if system == "syscalls" {
            syscall(fmt, kernel)
        } else {
            program(fmt, env).map(Kind::Fmt)
        };
        EventText::finish(fmt, kind)
    }

    /// Compiles the arguments of a kprobe's or uprobe's event: its format
    /// without the `(%lx)` or `(%lx <- %lx)` of its addresses, which the
    /// probe tools print themselves. A string the kernel could not read
    /// prints `(fault)`, as in the kernel's own text.
    pub fn probe_args(fmt: &EventFormat, kernel: Kernel) -> EventText {
        let env = compile::Env {
            hz: kernel.hz,
            probe: true,
        };
        let kind = program(fmt, env).and_then(|mut p| {
            strip_probe_addresses(&mut p)?;
            Ok(Kind::Fmt(p))
        });
        EventText::finish(fmt, kind)
    }

    fn finish(fmt: &EventFormat, kind: Result<Kind, String>) -> EventText {
        match kind {
            Ok(kind) => EventText {
                name: fmt.name.clone(),
                kind,
                fallback: None,
            },
            Err(why) => EventText {
                name: fmt.name.clone(),
                kind: Kind::Fields(fmt.fields.clone()),
                fallback: Some(why),
            },
        }
    }

    /// The event's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Why this event prints `name=value` instead of the kernel's text
    /// (`None`: it prints the kernel's).
    pub fn fallback(&self) -> Option<&str> {
        self.fallback.as_deref()
    }

    /// Whether writing needs kernel symbols (load them early).
    pub fn uses_symbols(&self) -> bool {
        matches!(&self.kind, Kind::Fmt(p) if p.symbols)
    }

    /// Appends what the kernel prints after a line's time stamp:
    /// `name: text`, or a system call's `sys_NAME(...)`. Returns the
    /// number of loads that fell outside the record (0 for a record the
    /// kernel wrote).
    pub fn write_event(&self, data: &[u8], look: Lookups, out: &mut String) -> u32 {
        match &self.kind {
            Kind::SysEnter { .. } | Kind::SysExit { .. } => self.write(data, look, out),
            _ => {
                out.push_str(&self.name);
                out.push_str(": ");
                self.write(data, look, out)
            }
        }
    }

    /// Appends the event's text alone (what follows `name: `; for system
    /// calls, their whole line). Returns as [`EventText::write_event`].
    pub fn write(&self, data: &[u8], look: Lookups, out: &mut String) -> u32 {
        match &self.kind {
            Kind::Fmt(p) => {
                let mut r = eval::Rec {
                    syms: Some(look.syms),
                    strings: Some(look.strings),
                    ..eval::Rec::new(data)
                };
                eval::run(p, &mut r, out);
                r.faults
            }
            Kind::SysEnter { name, args, hex_0x } => sys_enter(name, args, *hex_0x, data, out),
            Kind::SysExit { name, nr, ret } => {
                // The kernel prints nothing for a number it has no
                // metadata for; we cannot tell, and print the name.
                let _ = nr;
                let Some(v) = ret.u64(data) else { return 1 };
                out.push_str(name);
                out.push_str(" -> ");
                printf::number(out, v, printf::Spec::HEX_0X);
                0
            }
            Kind::Fields(fields) => {
                for (i, f) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    f.write_text(data, out);
                }
                0
            }
        }
    }
}

fn program(fmt: &EventFormat, env: compile::Env) -> Result<compile::Program, String> {
    if fmt.print_fmt.is_empty() {
        return Err("the format has no print fmt".into());
    }
    let toks = lex::tokens(&fmt.print_fmt)?;
    let args = parse::parse_args(&toks)?;
    compile::compile(fmt, &args, env)
}

/// Drops `(%lx)` / `(%lx <- %lx)` and what follows up to the `)` from a
/// probe's program.
fn strip_probe_addresses(p: &mut compile::Program) -> Result<(), String> {
    use compile::Step;
    let mut convs = 0;
    for i in 0..p.steps.len() {
        match &p.steps[i] {
            Step::Conv { .. } => convs += 1,
            Step::Lit(s) if convs > 0 && s.contains(')') => {
                let rest = s.split_once(')').map(|(_, r)| r).unwrap_or("");
                let rest: Box<str> = rest.into();
                p.steps.drain(..i);
                p.steps[0] = Step::Lit(rest);
                return Ok(());
            }
            _ => {}
        }
    }
    Err("a probe's print fmt without its (%lx) address".into())
}

/// A system call's event, printed as the kernel's trace_syscalls.c does.
fn syscall(fmt: &EventFormat, kernel: Kernel) -> Result<Kind, String> {
    let nr = fmt
        .require("__syscall_nr")
        .map_err(|e| e.to_string())?
        .clone();
    if let Some(call) = fmt.name.strip_prefix("sys_exit_") {
        let ret = fmt.require("ret").map_err(|e| e.to_string())?.clone();
        return Ok(Kind::SysExit {
            name: format!("sys_{call}"),
            nr,
            ret,
        });
    }
    let Some(call) = fmt.name.strip_prefix("sys_enter_") else {
        return Err(format!("{}: not a system call's event", fmt.name));
    };
    let mut args = Vec::new();
    for f in fmt.fields.iter().filter(|f| f.name != "__syscall_nr") {
        if matches!(f.kind, FieldKind::DataLoc | FieldKind::RelLoc) {
            // The user data of an argument: `__NAME_val`, a string where
            // the format prints one with __get_str().
            let Some(arg) = f
                .name
                .strip_prefix("__")
                .and_then(|n| n.strip_suffix("_val"))
            else {
                return Err(format!(
                    "a system call's field {} the kernel does not print",
                    f.name
                ));
            };
            if !fmt.print_fmt.contains(&format!("__get_str({})", f.name)) {
                return Err(format!("{}: user data that is not a string", f.name));
            }
            let Some(a) = args.iter_mut().find(|a: &&mut SysArg| a.name == arg) else {
                return Err(format!("{} without its argument", f.name));
            };
            a.user = Some(f.clone());
            continue;
        }
        if f.size != 8 || f.kind != FieldKind::Scalar {
            return Err(format!(
                "a system call's argument {} of {} bytes",
                f.name, f.size
            ));
        }
        args.push(SysArg {
            name: f.name.clone(),
            field: f.clone(),
            user: None,
        });
    }
    Ok(Kind::SysEnter {
        name: format!("sys_{call}"),
        args,
        hex_0x: kernel.syscall_0x(),
    })
}

fn sys_enter(name: &str, args: &[SysArg], hex_0x: bool, data: &[u8], out: &mut String) -> u32 {
    let mut faults = 0;
    out.push_str(name);
    out.push('(');
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&a.name);
        out.push_str(": ");
        let v = a.field.u64(data).unwrap_or_else(|| {
            faults += 1;
            0
        });
        if !hex_0x {
            printf::number(
                out,
                v,
                printf::Spec {
                    flags: printf::SMALL,
                    base: 16,
                    ..printf::Spec::DEC
                },
            );
        } else if v < 10 {
            printf::number(out, v, printf::Spec::DEC);
        } else {
            printf::number(out, v, printf::Spec::HEX_0X);
        }
        if let Some(u) = &a.user {
            // ` "%.*s"` with the length recorded (the kernel has already
            // replaced what is not printable by '.').
            out.push_str(" \"");
            match u.bytes(data) {
                Some(b) => printf::data_string(out, b, printf::Spec::STR),
                None => faults += 1,
            }
            out.push('"');
        }
    }
    out.push(')');
    faults
}
