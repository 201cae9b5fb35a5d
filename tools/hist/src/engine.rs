//! A hist trigger computed in user space, from the records of the trace
//! buffer, and printed byte for byte as the kernel prints its `hist` file.
//!
//! It follows `trace_events_hist.c` and `tracing_map.c`:
//! - a key is the field's value as a 64-bit number (signed fields
//!   sign-extended), a string up to the field's size (255 bytes for
//!   dynamic strings), the time stamp (in µs rounded, `ns2usecs`, when any
//!   `common_timestamp` of the hist has `.usecs`) or the CPU;
//! - `.log2` keys are `ilog2(roundup_pow_of_two(v))`, `.buckets=N` keys
//!   `v / N * N`; values are summed as 64-bit numbers, wrapping;
//! - the table holds `size` entries: a hit of a new key when it is full is
//!   dropped (`Dropped`), every other hit counts (`Hits`); `.execname`
//!   shows the name of the task that made the entry;
//! - entries are sorted by the sort keys, keys compared as the field's C
//!   type, sums as unsigned numbers. Where the kernel leaves the order of
//!   equal entries to its hash table, ties here go by key, ascending.

use crate::spec::{Compiled, Item, Modifier, SortBy, Source, STR_MAX};
use ftrace_common::buffer::filter::Record;
use ftrace_common::buffer::format::FieldKind;
use ftrace_common::buffer::reader::Event;
use ftrace_common::kernel::proc::CommCache;
use ftrace_common::kernel::syscalls::Table;
use ftrace_common::sym::kallsyms::KernelSyms;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt::Write;

/// One part of a key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum KeyPart {
    Num(u64),
    Str(Vec<u8>),
}

#[derive(Debug, Clone, Default)]
struct Elt {
    hitcount: u64,
    sums: [u64; 2],
    comm: String,
}

/// The table of a hist computed in user space.
pub struct Engine {
    c: Compiled,
    table: HashMap<Vec<KeyPart>, Elt>,
    key: Vec<KeyPart>,
    hits: u64,
    drops: u64,
    comms: CommCache,
    ksyms: KernelSyms,
    syscalls: Table,
}

/// `ilog2(roundup_pow_of_two(v))`: the power of two at or above `v`; 0
/// for 0. Above 2^63 (negative numbers of signed fields) the kernel's C
/// is undefined and kernels differ (6.1 gives 64, 6.12 gives 0): here it
/// is 64.
pub fn kernel_log2(v: u64) -> u64 {
    if v <= 1 {
        return 0;
    }
    (64 - (v - 1).leading_zeros()) as u64
}

/// `ns2usecs`: nanoseconds to microseconds, rounded.
pub fn ns2usecs(ns: u64) -> u64 {
    ns.wrapping_add(500) / 1000
}

/// A field's raw value as the kernel's `hist_field_<type>` reads it: the
/// C type's value widened to 64 bits.
fn field_value(item: &Item, ev: &Event, usecs: bool) -> u64 {
    match &item.source {
        Source::Field(f) => match f.u64(ev.data) {
            Some(v) if f.signed => sign_extend(v, f.size),
            Some(v) => v,
            None => 0,
        },
        Source::Timestamp if usecs => ns2usecs(ev.ts),
        Source::Timestamp => ev.ts,
        Source::Cpu => ev.cpu as u64,
    }
}

fn sign_extend(v: u64, size: usize) -> u64 {
    match size {
        1 => v as u8 as i8 as i64 as u64,
        2 => v as u16 as i16 as i64 as u64,
        4 => v as u32 as i32 as i64 as u64,
        _ => v,
    }
}

/// A string key as the kernel keeps it: up to the field's size (static
/// strings) or 255 bytes, cut at the first NUL.
fn string_key(item: &Item, ev: &Event) -> Vec<u8> {
    let Source::Field(f) = &item.source else {
        return Vec::new();
    };
    let Some(b) = f.bytes(ev.data) else {
        return Vec::new();
    };
    let max = match f.kind {
        FieldKind::Array { .. } => f.size.next_multiple_of(8).saturating_sub(1),
        _ => STR_MAX - 1,
    };
    let b = &b[..b.len().min(max)];
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    b[..end].to_vec()
}

impl Engine {
    /// An empty table for a compiled SPEC; task names come from
    /// `saved_cmdlines` (or `/proc`) through `comms`.
    pub fn new(c: Compiled, comms: CommCache) -> Engine {
        Engine {
            c,
            table: HashMap::new(),
            key: Vec::new(),
            hits: 0,
            drops: 0,
            comms,
            ksyms: KernelSyms::on_demand(),
            syscalls: Table::native().unwrap_or_else(|| Table::empty(std::env::consts::ARCH)),
        }
    }

    /// Counts one record, as the kernel's trigger does.
    pub fn feed(&mut self, ev: &Event) {
        if let Some(f) = &self.c.filter {
            let comm = if f.needs_comm() {
                self.comms.get(ev.pid).to_string()
            } else {
                String::new()
            };
            let rec = Record {
                data: ev.data,
                cpu: ev.cpu,
                comm: &comm,
            };
            if !f.matches(&rec) {
                return;
            }
        }
        let usecs = self.c.usecs;
        self.key.clear();
        for k in &self.c.keys {
            let part = if k.is_string() {
                KeyPart::Str(string_key(k, ev))
            } else {
                let v = field_value(k, ev, usecs);
                KeyPart::Num(match k.modifier {
                    Modifier::Log2 => kernel_log2(v),
                    Modifier::Buckets(n) => v / n * n,
                    _ => v,
                })
            };
            self.key.push(part);
        }
        let mut sums = [0u64; 2];
        for (i, v) in self.c.vals.iter().enumerate() {
            sums[i] = field_value(v, ev, usecs);
        }
        let elt = match self.table.get_mut(&self.key) {
            Some(e) => e,
            None => {
                if self.table.len() >= 1usize << self.c.bits {
                    self.drops += 1;
                    return;
                }
                let comm = if self.c.keys.iter().any(|k| k.modifier == Modifier::Execname) {
                    if ev.pid == 0 {
                        "<idle>".to_string()
                    } else {
                        self.comms.get(ev.pid).to_string()
                    }
                } else {
                    String::new()
                };
                self.table.entry(self.key.clone()).or_insert(Elt {
                    comm,
                    ..Elt::default()
                })
            }
        };
        self.hits += 1;
        elt.hitcount += 1;
        for (s, v) in elt.sums.iter_mut().zip(sums) {
            *s = s.wrapping_add(v);
        }
    }

    /// Empties the table, as `:clear` does.
    pub fn clear(&mut self) {
        self.table.clear();
        self.hits = 0;
        self.drops = 0;
    }

    fn cmp_key(item: &Item, a: &KeyPart, b: &KeyPart) -> Ordering {
        match (a, b) {
            (KeyPart::Str(x), KeyPart::Str(y)) => x.cmp(y),
            (KeyPart::Num(x), KeyPart::Num(y)) => {
                let (size, signed) = item.cmp_type();
                let cut = |v: u64| match size {
                    1 => v & 0xff,
                    2 => v & 0xffff,
                    4 => v & 0xffff_ffff,
                    _ => v,
                };
                let (x, y) = (cut(*x), cut(*y));
                if signed {
                    (sign_extend(x, size) as i64).cmp(&(sign_extend(y, size) as i64))
                } else {
                    x.cmp(&y)
                }
            }
            (KeyPart::Num(_), KeyPart::Str(_)) => Ordering::Less,
            (KeyPart::Str(_), KeyPart::Num(_)) => Ordering::Greater,
        }
    }

    fn sorted(&self) -> Vec<(&Vec<KeyPart>, &Elt)> {
        let mut v: Vec<(&Vec<KeyPart>, &Elt)> = self.table.iter().collect();
        let keys = &self.c.keys;
        let by_key = |a: &[KeyPart], b: &[KeyPart]| {
            keys.iter()
                .zip(a.iter().zip(b))
                .map(|(k, (x, y))| Engine::cmp_key(k, x, y))
                .find(|o| o.is_ne())
                .unwrap_or(Ordering::Equal)
        };
        v.sort_by(|(ka, ea), (kb, eb)| {
            for (by, desc) in &self.c.sort {
                let o = match by {
                    SortBy::Hitcount => ea.hitcount.cmp(&eb.hitcount),
                    SortBy::Val(i) => ea.sums[*i].cmp(&eb.sums[*i]),
                    SortBy::Key(i) => Engine::cmp_key(&keys[*i], &ka[*i], &kb[*i]),
                };
                let o = if *desc { o.reverse() } else { o };
                if o.is_ne() {
                    return o;
                }
            }
            by_key(ka, kb)
        });
        v
    }

    fn print_key(&mut self, out: &mut String, item: &Item, part: &KeyPart, elt: &Elt) {
        let name = &item.name;
        let v = match part {
            KeyPart::Num(v) => *v,
            KeyPart::Str(s) => {
                let _ = write!(out, "{name}: {:<50}", String::from_utf8_lossy(s));
                return;
            }
        };
        let _ = match item.modifier {
            Modifier::Hex => write!(out, "{name}: {v:x}"),
            Modifier::Sym => write!(out, "{name}: [{v:x}] {:<45}", self.ksyms.get(v, false)),
            Modifier::SymOffset => {
                write!(out, "{name}: [{v:x}] {:<55}", self.ksyms.get(v, true))
            }
            Modifier::Execname => write!(out, "{name}: {:<16}[{v:>10}]", elt.comm),
            Modifier::Syscall => {
                let n = i64::try_from(v).ok().and_then(|n| self.syscalls.entry(n));
                write!(
                    out,
                    "{name}: {:<30}[{v:>3}]",
                    n.unwrap_or("unknown_syscall")
                )
            }
            Modifier::Log2 => write!(out, "{name}: ~ 2^{v:<2}"),
            Modifier::Buckets(n) => {
                write!(out, "{name}: ~ {v}-{}", v.wrapping_add(n).wrapping_sub(1))
            }
            Modifier::Plain | Modifier::Usecs => write!(out, "{name}: {v:>10}"),
        };
    }

    /// The `hist` file's text, as the kernel would print this table.
    pub fn render(&mut self) -> String {
        let mut out = format!(
            "# event histogram\n#\n# trigger info: {} [active]\n#\n\n",
            self.c.info
        );
        let rows: Vec<(Vec<KeyPart>, Elt)> = self
            .sorted()
            .into_iter()
            .map(|(k, e)| (k.clone(), e.clone()))
            .collect();
        let keys = self.c.keys.clone();
        let vals = self.c.vals.clone();
        for (k, e) in &rows {
            out.push_str("{ ");
            for (i, (item, part)) in keys.iter().zip(k).enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                self.print_key(&mut out, item, part, e);
            }
            let _ = write!(out, " }} hitcount: {:>10}", e.hitcount);
            for (i, v) in vals.iter().enumerate() {
                let _ = if v.modifier == Modifier::Hex {
                    write!(out, "  {}: {:>10x}", v.name, e.sums[i])
                } else {
                    write!(out, "  {}: {:>10}", v.name, e.sums[i])
                };
            }
            out.push('\n');
        }
        let _ = write!(
            out,
            "\nTotals:\n    Hits: {}\n    Entries: {}\n    Dropped: {}\n",
            self.hits,
            rows.len(),
            self.drops
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{compile, split};
    use ftrace_common::buffer::format::EventFormat;

    use crate::testdata::{SEED_HIST, SYS_EXIT_READ as FMT};

    fn engine(spec: &str) -> Engine {
        let fmt = EventFormat::parse(FMT).unwrap();
        let c = compile(&split(spec).unwrap(), &fmt).unwrap();
        let mut comms = CommCache::new(None);
        comms.set(148, "ftt-workload");
        comms.set(150, "cat");
        Engine::new(c, comms)
    }

    fn feed(e: &mut Engine, pid: i32, ret: i64, comm: &str) {
        let mut d = vec![0u8; 40];
        d[4..8].copy_from_slice(&pid.to_ne_bytes());
        d[16..24].copy_from_slice(&ret.to_ne_bytes());
        d[24..24 + comm.len()].copy_from_slice(comm.as_bytes());
        e.feed(&Event {
            cpu: 1,
            ts: 1_000_000,
            id: 700,
            pid,
            data: &d,
        });
    }

    #[test]
    fn the_seeds_hist_as_the_kernel_prints_it() {
        let mut e = engine("hist:key=common_pid.execname:values=ret:sort=ret if ret >= 0");
        for _ in 0..305 {
            feed(&mut e, 148, 4096, "");
        }
        for _ in 0..3 {
            feed(&mut e, 150, 1276, "");
        }
        feed(&mut e, 148, -9, "");
        assert_eq!(e.render(), SEED_HIST);
        e.clear();
        assert!(e
            .render()
            .ends_with("#\n\n\nTotals:\n    Hits: 0\n    Entries: 0\n    Dropped: 0\n"));
    }

    #[test]
    fn modifiers_print_as_the_kernel_does() {
        let mut e = engine("keys=ret.log2:sort=ret");
        for r in [0, 1, 2, 3, 4, 5, 4096, 4097] {
            feed(&mut e, 1, r, "");
        }
        let t = e.render();
        assert!(t.contains("\n{ ret: ~ 2^0  } hitcount:          2\n{ ret: ~ 2^1  } hitcount:          1\n{ ret: ~ 2^2  } hitcount:          2\n{ ret: ~ 2^3  } hitcount:          1\n{ ret: ~ 2^12 } hitcount:          1\n{ ret: ~ 2^13 } hitcount:          1\n"), "{t}");
        let mut e = engine("keys=common_pid.hex,ret.buckets=1000:vals=ret.hex,hitcount:size=128");
        feed(&mut e, 0xce, 1221, "");
        assert!(e.render().contains(
            "{ common_pid: ce, ret: ~ 1000-1999 } hitcount:          1  ret:        4c5\n"
        ));
        let mut e = engine("keys=comm,ret:sort=comm");
        feed(&mut e, 1, 1, "sleep");
        feed(&mut e, 1, -1, "cat");
        let t = e.render();
        let cat = format!(
            "{{ comm: {:<50}, ret: 18446744073709551615 }} hitcount:          1\n",
            "cat"
        );
        assert!(t.contains(&cat), "{t}");
        assert!(t.find("cat").unwrap() < t.find("sleep").unwrap());
        let mut e = engine("keys=__syscall_nr.syscall");
        feed(&mut e, 1, 1, "");
        assert!(e
            .render()
            .contains("{ __syscall_nr: sys_read                      [  0] }"));
    }

    #[test]
    fn a_full_table_drops_new_keys_and_counts_old_ones() {
        let mut e = engine("keys=ret:size=128");
        for r in 0..200 {
            feed(&mut e, 1, r, "");
        }
        feed(&mut e, 1, 5, "");
        let t = e.render();
        assert!(
            t.ends_with("Totals:\n    Hits: 129\n    Entries: 128\n    Dropped: 72\n"),
            "{t}"
        );
    }

    #[test]
    fn log2_as_the_kernel_rounds() {
        assert_eq!(
            [0u64, 1, 2, 3, 4, 5, 8, 9, u64::MAX].map(kernel_log2),
            [0, 0, 1, 2, 2, 3, 3, 4, 64]
        );
        assert_eq!(ns2usecs(1499), 1);
        assert_eq!(ns2usecs(1500), 2);
    }
}
