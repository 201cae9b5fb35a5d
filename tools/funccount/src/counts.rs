//! Counts: turning the kernel's numbers into the rows of a summary, and
//! printing summaries as perf-tools' funccount does (`%-30s %8s`,
//! ascending by count, `-t N` keeps the last N).

use std::collections::{HashMap, HashSet};

/// One summary's rows: ascending by count, then by name; no zero counts.
pub fn sorted_rows(counts: HashMap<String, u64>) -> Vec<(String, u64)> {
    let mut rows: Vec<(String, u64)> = counts.into_iter().filter(|(_, n)| *n > 0).collect();
    rows.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    rows
}

/// The rows `-t N` keeps: the N largest, still ascending.
pub fn top(rows: &[(String, u64)], n: Option<usize>) -> &[(String, u64)] {
    match n {
        Some(n) if n < rows.len() => &rows[rows.len() - n..],
        _ => rows,
    }
}

/// The text of one summary: a blank line, the date with `-T`, the header
/// and the rows.
pub fn render(rows: &[(String, u64)], date: Option<&str>) -> String {
    let mut s = String::from("\n");
    if let Some(d) = date {
        s.push_str(d);
        s.push('\n');
    }
    s.push_str(&format!("{:<30} {:>8}\n", "FUNC", "COUNT"));
    for (name, n) in rows {
        s.push_str(&format!("{name:<30} {n:>8}\n"));
    }
    s
}

/// Turns a counter that only grows (the profiler's, `kprobe_profile`'s)
/// into counts per interval.
#[derive(Debug, Default)]
pub struct Cumulative {
    prev: HashMap<String, u64>,
}

impl Cumulative {
    /// What each name gained since the last call. A counter that went
    /// down was reset (someone restarted it): its whole value counts.
    pub fn delta(&mut self, now: HashMap<String, u64>) -> HashMap<String, u64> {
        let mut out = HashMap::with_capacity(now.len());
        for (k, v) in &now {
            let before = self.prev.get(k).copied().unwrap_or(0);
            let d = if *v >= before { v - before } else { *v };
            if d > 0 {
                out.insert(k.clone(), d);
            }
        }
        self.prev = now;
        out
    }
}

/// Parses `kprobe_profile` (or `uprobe_profile`-like) text: the event name
/// and the hit count of each line. Never panics.
pub fn parse_kprobe_profile(text: &str) -> HashMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let name = w.next()?;
            let hits = w.next()?.parse().ok()?;
            // A group/name form on some kernels: keep the event name.
            let name = name.rsplit('/').next().unwrap_or(name);
            Some((name.to_string(), hits))
        })
        .collect()
}

/// Kernel function addresses by name, for the function tracer's `ip`
/// fields: built from `/proc/kallsyms` for the functions counted only.
#[derive(Debug, Default)]
pub struct AddrNames {
    /// (address, index into `names`), sorted.
    addrs: Vec<(u64, u32)>,
    names: Vec<String>,
}

/// How far past a function's start the recorded `ip` can be: the call to
/// the tracer comes after an `endbr64` (x86 IBT) or a few NOPs (arm64).
pub const MAX_IP_OFFSET: u64 = 64;

impl AddrNames {
    /// The text symbols of `kallsyms` (its text) whose name is in `wanted`.
    pub fn parse(kallsyms: &str, wanted: &HashSet<&str>) -> AddrNames {
        let mut index: HashMap<&str, u32> = HashMap::new();
        let mut t = AddrNames::default();
        for line in kallsyms.lines() {
            let mut w = line.split_ascii_whitespace();
            let (Some(a), Some(ty), Some(name)) = (w.next(), w.next(), w.next()) else {
                continue;
            };
            if !matches!(ty, "t" | "T" | "w" | "W") || !wanted.contains(name) {
                continue;
            }
            let Ok(addr) = u64::from_str_radix(a, 16) else {
                continue;
            };
            if addr == 0 {
                continue;
            }
            let i = *index.entry(name).or_insert_with(|| {
                t.names.push(name.to_string());
                (t.names.len() - 1) as u32
            });
            t.addrs.push((addr, i));
        }
        t.addrs.sort_unstable();
        t
    }

    /// The counted function an `ip` belongs to.
    pub fn lookup(&self, ip: u64) -> Option<&str> {
        let i = self.addrs.partition_point(|(a, _)| *a <= ip);
        let (a, n) = *self.addrs.get(i.checked_sub(1)?)?;
        (ip - a <= MAX_IP_OFFSET).then(|| self.names[n as usize].as_str())
    }
}

/// Counts by address, for the function tracer's events: millions a
/// second, a few hundred distinct addresses. The last address hit is
/// checked first (calls come in runs), then a multiplicative-hash table.
#[derive(Debug)]
pub struct IpCounts {
    last: u64,
    last_slot: usize,
    /// (address, count); address 0 marks a free slot.
    table: Vec<(u64, u64)>,
    used: usize,
    /// Counts of address 0 (never a function, but never lose an event).
    zero: u64,
}

impl Default for IpCounts {
    fn default() -> Self {
        IpCounts {
            last: 0,
            last_slot: 0,
            table: vec![(0, 0); 1024],
            used: 0,
            zero: 0,
        }
    }
}

impl IpCounts {
    fn slot(&self, ip: u64) -> usize {
        let mask = self.table.len() - 1;
        let mut i = (ip.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40) as usize & mask;
        while self.table[i].0 != ip && self.table[i].0 != 0 {
            i = (i + 1) & mask;
        }
        i
    }

    fn grow(&mut self) {
        let size = self.table.len() * 2;
        let old = std::mem::replace(&mut self.table, vec![(0, 0); size]);
        for (ip, n) in old.into_iter().filter(|e| e.0 != 0) {
            let i = self.slot(ip);
            self.table[i] = (ip, n);
        }
        self.last = 0;
    }

    /// Counts one event at `ip`.
    #[inline]
    pub fn add(&mut self, ip: u64) {
        if ip == self.last && ip != 0 {
            self.table[self.last_slot].1 += 1;
            return;
        }
        if ip == 0 {
            self.zero += 1;
            return;
        }
        let mut i = self.slot(ip);
        if self.table[i].0 == 0 {
            if (self.used + 1) * 2 > self.table.len() {
                self.grow();
                i = self.slot(ip);
            }
            self.table[i].0 = ip;
            self.used += 1;
        }
        self.table[i].1 += 1;
        self.last = ip;
        self.last_slot = i;
    }

    /// Whether nothing was counted since the last [`IpCounts::take`].
    pub fn is_empty(&self) -> bool {
        self.zero == 0 && self.table.iter().all(|e| e.1 == 0)
    }

    /// The counts so far, by address, and starts again from zero (the
    /// addresses stay in the table).
    pub fn take(&mut self) -> Vec<(u64, u64)> {
        let mut v: Vec<(u64, u64)> = self
            .table
            .iter_mut()
            .filter(|e| e.1 > 0)
            .map(|e| (e.0, std::mem::take(&mut e.1)))
            .collect();
        if self.zero > 0 {
            v.push((0, std::mem::take(&mut self.zero)));
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn map(v: &[(&str, u64)]) -> HashMap<String, u64> {
        v.iter().map(|(k, n)| (k.to_string(), *n)).collect()
    }

    #[test]
    fn rows_sort_ascending_and_top_keeps_the_largest() {
        let rows = sorted_rows(map(&[("b", 5), ("a", 5), ("c", 1), ("z", 0), ("d", 9)]));
        assert_eq!(
            rows,
            vec![
                ("c".to_string(), 1),
                ("a".to_string(), 5),
                ("b".to_string(), 5),
                ("d".to_string(), 9)
            ]
        );
        assert_eq!(top(&rows, Some(2)).len(), 2);
        assert_eq!(top(&rows, Some(2))[1].0, "d");
        assert_eq!(top(&rows, Some(10)).len(), 4);
        assert_eq!(top(&rows, None).len(), 4);
    }

    #[test]
    fn renders_like_perf_tools() {
        let text = render(&[("vfs_read".into(), 1000)], None);
        assert_eq!(
            text,
            "\nFUNC                              COUNT\nvfs_read                           1000\n"
        );
        let text = render(&[], Some("Tue Jul 15 10:00:01 UTC 2025"));
        assert!(text.starts_with("\nTue Jul 15"), "{text}");
        assert!(!ftrace_common::app::output::date_now().is_empty());
    }

    #[test]
    fn cumulative_counters_become_deltas() {
        let mut c = Cumulative::default();
        assert_eq!(c.delta(map(&[("a", 3)])), map(&[("a", 3)]));
        assert_eq!(
            c.delta(map(&[("a", 5), ("b", 1)])),
            map(&[("a", 2), ("b", 1)])
        );
        assert_eq!(c.delta(map(&[("a", 5), ("b", 1)])), map(&[]));
        // Reset underneath us.
        assert_eq!(c.delta(map(&[("a", 1)])), map(&[("a", 1)]));
    }

    #[test]
    fn kprobe_profile_lines() {
        let t = "  fc12_0                                                   1012               0\n  rz  0 0\n  grp/ev 7 1\nbad\n";
        let m = parse_kprobe_profile(t);
        assert_eq!(m["fc12_0"], 1012);
        assert_eq!(m["rz"], 0);
        assert_eq!(m["ev"], 7);
        assert_eq!(m.len(), 3);
    }

    #[test]
    fn addresses_map_to_the_counted_functions() {
        let ks = "ffffffff81150d00 T vfs_read\nffffffff81150e00 T vfs_readv\nffffffff811511aa T ksys_read\nffffffffc0001000 t vfs_read\t[mod]\n0000000000000000 T hidden\nffffffff81000000 D vfs_read\n";
        let wanted: HashSet<&str> = ["vfs_read", "ksys_read", "hidden"].into_iter().collect();
        let a = AddrNames::parse(ks, &wanted);
        assert_eq!(a.lookup(0xffffffff81150d04), Some("vfs_read"));
        assert_eq!(a.lookup(0xffffffff81150d00), Some("vfs_read"));
        assert_eq!(a.lookup(0xffffffffc0001004), Some("vfs_read"));
        assert_eq!(a.lookup(0xffffffff811511aa), Some("ksys_read"));
        // vfs_readv is not counted: an ip in it is far from vfs_read.
        assert_eq!(a.lookup(0xffffffff81150e04), None);
        assert_eq!(a.lookup(1), None);
        assert_eq!(
            AddrNames::parse("", &wanted).lookup(0xffffffff81150d00),
            None
        );
    }

    #[test]
    fn ip_counts_are_exact_and_grow() {
        let mut c = IpCounts::default();
        let mut want: HashMap<u64, u64> = HashMap::new();
        let mut x = 12345u64;
        for i in 0..200_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // 3000 distinct addresses (the table grows), runs of repeats,
            // and address 0.
            let ip = if i % 7 == 0 {
                0
            } else {
                0xffff_ffff_8100_0000 + (x % 3000) * 16
            };
            for _ in 0..(i % 3) {
                c.add(ip);
                *want.entry(ip).or_insert(0) += 1;
            }
        }
        let got: HashMap<u64, u64> = c.take().into_iter().collect();
        assert_eq!(got, want);
        assert!(c.is_empty());
        assert!(c.take().is_empty());
        c.add(7);
        assert_eq!(c.take(), vec![(7, 1)]);
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in "\\PC{0,300}", ip in proptest::num::u64::ANY) {
            let _ = parse_kprobe_profile(&s);
            let wanted: HashSet<&str> = s.split_whitespace().collect();
            let _ = AddrNames::parse(&s, &wanted).lookup(ip);
        }
    }
}
