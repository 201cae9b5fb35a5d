//! Counting: per task and per system call number, with latency sums and
//! log2 histograms, and the rows of a summary.

use crate::tasks::Tasks;
use ftrace_common::app::output::Log2Hist;
use ftrace_common::kernel::syscalls::{self, Table};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Numbers below this are counted in a vector; any other (a program may
/// pass anything) in a map.
const DIRECT: i64 = 1024;

/// A cheap hasher for task IDs and syscall numbers (keys we trust to be
/// spread well enough; no HashDoS concern for a local tool).
#[derive(Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_i32(&mut self, v: i32) {
        self.0 = (v as u32 as u64 ^ self.0).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    fn write_i64(&mut self, v: i64) {
        self.0 = (v as u64 ^ self.0).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// A map keyed by task ID or number, with [`IdHasher`].
pub type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// A count and the summed latency of the counted calls.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// Calls.
    pub count: u64,
    /// Their summed latency in ns (with latency measurement only).
    pub total_ns: u64,
}

impl Stat {
    fn add(&mut self, n: u64, ns: u64) {
        self.count += n;
        self.total_ns += ns;
    }
}

/// Stats per system call number.
#[derive(Debug, Default, Clone)]
struct PerNr {
    direct: Vec<Stat>,
    other: IdMap<i64, Stat>,
}

impl PerNr {
    #[inline]
    fn get(&mut self, nr: i64) -> &mut Stat {
        if (0..DIRECT).contains(&nr) {
            let i = nr as usize;
            if self.direct.len() <= i {
                self.direct.resize(i + 1, Stat::default());
            }
            &mut self.direct[i]
        } else {
            self.other.entry(nr).or_default()
        }
    }

    fn iter(&self) -> impl Iterator<Item = (i64, Stat)> + '_ {
        self.direct
            .iter()
            .enumerate()
            .map(|(i, s)| (i as i64, *s))
            .chain(self.other.iter().map(|(n, s)| (*n, *s)))
            .filter(|(_, s)| s.count > 0)
    }
}

#[derive(Debug, Default, Clone)]
struct TaskAgg {
    total: Stat,
    per_nr: PerNr,
}

/// What is counted: per task and/or per number, and which numbers get a
/// latency histogram.
#[derive(Debug)]
pub struct Agg {
    by_task: bool,
    by_nr: bool,
    tasks: IdMap<i32, TaskAgg>,
    all: TaskAgg,
    hists: Vec<(i64, Log2Hist)>,
    hist_div: u64,
}

impl Agg {
    /// `by_task`: keep counts per task; `by_nr`: per system call number;
    /// `hists`: numbers that get a latency histogram, in units of
    /// `hist_div` ns (1000: us).
    pub fn new(by_task: bool, by_nr: bool, hists: &[i64], hist_div: u64) -> Agg {
        Agg {
            by_task,
            by_nr,
            tasks: IdMap::default(),
            all: TaskAgg::default(),
            hists: hists.iter().map(|&n| (n, Log2Hist::new())).collect(),
            hist_div: hist_div.max(1),
        }
    }

    /// Counts `n` calls of `nr` by `tid` that took `ns` in all (0 when
    /// latency is not measured).
    #[inline]
    pub fn add(&mut self, tid: i32, nr: i64, n: u64, ns: u64) {
        let t = if self.by_task {
            self.tasks.entry(tid).or_default()
        } else {
            &mut self.all
        };
        t.total.add(n, ns);
        if self.by_nr {
            t.per_nr.get(nr).add(n, ns);
        }
    }

    /// Counts one call with its latency, into the histograms too.
    #[inline]
    pub fn add_latency(&mut self, tid: i32, nr: i64, ns: u64) {
        self.add(tid, nr, 1, ns);
        if !self.hists.is_empty() {
            let div = self.hist_div;
            for (n, h) in &mut self.hists {
                if *n == nr {
                    h.add(ns / div);
                }
            }
        }
    }

    /// The task IDs counted (with `by_task`).
    pub fn tids(&self) -> impl Iterator<Item = i32> + '_ {
        self.tasks.keys().copied()
    }

    /// Forgets all counts (interval summaries).
    pub fn reset(&mut self) {
        self.tasks.clear();
        self.all = TaskAgg::default();
        for (_, h) in &mut self.hists {
            *h = Log2Hist::new();
        }
    }

    /// The histograms, by number.
    pub fn hists(&self) -> &[(i64, Log2Hist)] {
        &self.hists
    }

    /// Rows grouped as `by` says; tasks whose process `keep` refuses are
    /// left out (`-p`: only that process's threads). Sorted ascending by
    /// the sort value, ties by label.
    pub fn rows(
        &self,
        by: By,
        tasks: &mut Tasks,
        names: &Names,
        keep: &dyn Fn(i32) -> bool,
        sort_by_time: bool,
    ) -> Vec<Row> {
        let mut groups: HashMap<GroupKey, Stat> = HashMap::new();
        let mut add = |k: GroupKey, s: Stat| {
            groups.entry(k).or_default().add(s.count, s.total_ns);
        };
        if !self.by_task {
            if by == By::Syscall {
                for (nr, s) in self.all.per_nr.iter() {
                    add((None, None, Some(nr)), s);
                }
            }
        } else {
            let mut tids: Vec<&i32> = self.tasks.keys().collect();
            tids.sort();
            for tid in tids {
                let t = &self.tasks[tid];
                if t.total.count == 0 {
                    continue;
                }
                let (tgid, comm) = tasks.resolve(*tid);
                if !keep(tgid) {
                    continue;
                }
                match by {
                    By::Syscall => {
                        for (nr, s) in t.per_nr.iter() {
                            add((None, None, Some(nr)), s);
                        }
                    }
                    By::Comm => add((None, Some(comm), None), t.total),
                    By::Pid => add((Some(tgid), Some(comm), None), t.total),
                    By::PidSyscall => {
                        for (nr, s) in t.per_nr.iter() {
                            add((Some(tgid), Some(comm.clone()), Some(nr)), s);
                        }
                    }
                }
            }
        }
        let mut rows: Vec<Row> = groups
            .into_iter()
            .map(|((pid, comm, nr), stat)| Row {
                pid,
                comm,
                syscall: nr.map(|n| names.display(n)),
                nr,
                stat,
            })
            .collect();
        rows.sort_by(|a, b| {
            let ka = if sort_by_time {
                a.stat.total_ns
            } else {
                a.stat.count
            };
            let kb = if sort_by_time {
                b.stat.total_ns
            } else {
                b.stat.count
            };
            ka.cmp(&kb)
                .then_with(|| a.label().cmp(&b.label()))
                .then_with(|| a.pid.cmp(&b.pid))
        });
        rows
    }
}

/// (PID, COMM, syscall number) of a row, as far as the grouping uses them.
type GroupKey = (Option<i32>, Option<String>, Option<i64>);

/// How rows are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    /// `SYSCALL COUNT` (`-c`).
    Syscall,
    /// `COMM COUNT` (the default).
    Comm,
    /// `PID COMM COUNT` (`-v`).
    Pid,
    /// `PID COMM SYSCALL COUNT` (`-cv`).
    PidSyscall,
}

/// One line of a summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The process ID (`-v`).
    pub pid: Option<i32>,
    /// The task's name.
    pub comm: Option<String>,
    /// The system call's name (`[unknown: N]` if unknown).
    pub syscall: Option<String>,
    /// Its number.
    pub nr: Option<i64>,
    /// The counts.
    pub stat: Stat,
}

impl Row {
    fn label(&self) -> String {
        format!(
            "{}{}",
            self.comm.as_deref().unwrap_or(""),
            self.syscall.as_deref().unwrap_or("")
        )
    }
}

/// Names for numbers: the table, then names the kernel told us (a hist
/// trigger's `.syscall` keys) for numbers the table lacks.
#[derive(Debug, Clone)]
pub struct Names {
    /// The checked-in table.
    pub table: Table,
    kernel: HashMap<i64, String>,
}

impl Names {
    /// Names from a table alone.
    pub fn new(table: Table) -> Names {
        Names {
            table,
            kernel: HashMap::new(),
        }
    }

    /// Records the kernel's entry-point name for a number (`sys_newfstat`);
    /// returns a warning if the table says otherwise.
    pub fn learn(&mut self, nr: i64, kernel_entry: &str) -> Option<String> {
        if kernel_entry.is_empty() || kernel_entry == "unknown_syscall" {
            return None;
        }
        match self.table.entry(nr) {
            Some(e) if e == kernel_entry => None,
            Some(e) => Some(format!(
                "the {} syscall table (Linux {}) says {nr} is {} ({e}) but this kernel calls it {kernel_entry}",
                self.table.arch,
                self.table.kernel,
                self.table.display(nr)
            )),
            None if self.table.name(nr).is_none() => {
                let bare = kernel_entry.strip_prefix("sys_").unwrap_or(kernel_entry);
                self.kernel.insert(nr, bare.to_string());
                None
            }
            None => None,
        }
    }

    /// The name to print.
    pub fn display(&self, nr: i64) -> String {
        match self.table.name(nr) {
            Some(n) => n.to_string(),
            None => match self.kernel.get(&nr) {
                Some(n) => n.clone(),
                None => syscalls::unknown(nr),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Names {
        Names::new(Table::for_arch("x86_64").unwrap())
    }

    #[test]
    fn counts_by_number_without_tasks() {
        let mut a = Agg::new(false, true, &[], 1000);
        for _ in 0..5 {
            a.add(1, 110, 1, 0);
        }
        a.add(2, 3, 1, 0);
        a.add(2, -1, 1, 0);
        a.add(2, 1 << 40, 2, 0);
        let mut t = Tasks::new(None);
        let rows = a.rows(By::Syscall, &mut t, &names(), &|_| true, false);
        let got: Vec<(String, u64)> = rows
            .iter()
            .map(|r| (r.syscall.clone().unwrap(), r.stat.count))
            .collect();
        assert_eq!(
            got,
            vec![
                ("[unknown: -1]".to_string(), 1),
                ("close".to_string(), 1),
                (format!("[unknown: {}]", 1u64 << 40), 2),
                ("getppid".to_string(), 5),
            ]
        );
        a.reset();
        assert!(a
            .rows(By::Syscall, &mut t, &names(), &|_| true, false)
            .is_empty());
    }

    #[test]
    fn latency_sums_histograms_and_sorting_by_time() {
        let mut a = Agg::new(false, true, &[35], 1000);
        a.add_latency(1, 35, 10_000_000);
        a.add_latency(1, 35, 10_000_000);
        for _ in 0..10 {
            a.add_latency(1, 0, 1_000);
        }
        let mut t = Tasks::new(None);
        let by_count = a.rows(By::Syscall, &mut t, &names(), &|_| true, false);
        assert_eq!(by_count.last().unwrap().syscall.as_deref(), Some("read"));
        let by_time = a.rows(By::Syscall, &mut t, &names(), &|_| true, true);
        let last = by_time.last().unwrap();
        assert_eq!(last.syscall.as_deref(), Some("nanosleep"));
        assert_eq!(
            last.stat,
            Stat {
                count: 2,
                total_ns: 20_000_000
            }
        );
        assert_eq!(a.hists()[0].1.total(), 2);
        assert_eq!(a.hists()[0].1.rows()[0].0, 8192);
    }

    #[test]
    fn names_from_the_kernel_fill_gaps_and_conflicts_warn() {
        let mut n = names();
        assert_eq!(n.learn(110, "sys_getppid"), None);
        assert!(n.learn(110, "sys_getpid").unwrap().contains("getppid"));
        assert_eq!(n.learn(999, "sys_brand_new"), None);
        assert_eq!(n.display(999), "brand_new");
        assert_eq!(n.learn(998, "unknown_syscall"), None);
        assert_eq!(n.display(998), "[unknown: 998]");
    }
}
