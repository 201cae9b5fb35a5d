//! The kernel's function profiler (CONFIG_FUNCTION_PROFILER): per-CPU hit
//! counters in the kernel, read from `trace_stat/function<CPU>`.
//!
//! The profiler is global: one switch (`function_profile_enabled`) and the
//! top-level `set_ftrace_filter` (which it shares with the top-level
//! function and function_graph tracers). funccount takes it through
//! `lifecycle::toplevel` (the one lock of the top level, and the record of
//! what to put back, which a later run restores if this one is killed),
//! only when nobody else seems to use the top level (`toplevel::users`:
//! anything else means someone, perf-tools' funccount, trace-cmd or a
//! person, uses or is setting it up; funccount then counts in its own
//! instance instead). [`Profiler`] puts both back on drop (signals unwind
//! to it): the profiler off first, then the filter emptied.
//!
//! Counts start when the profiler is enabled (the kernel zeroes them then)
//! and cover every task, funccount's own reads of `trace_stat` included.
//! Where the kernel has function_graph, the profiler runs on it: enabling
//! fails with EBUSY while a function_graph tracer runs, and counting
//! stops for tasks while their return stack is full (deeper than 50).

use ftrace_common::kernel::functions::{self, TraceableFunction};
use ftrace_common::kernel::tracefs::{self, Tracefs};
use ftrace_common::lifecycle::toplevel::{Kind, Refusal, TopLevel};
use ftrace_common::{Error, ErrorKind, Result};
use std::collections::HashMap;

/// Parses a `trace_stat/function<N>` file: `(function, hits)` for each
/// row. Header lines and anything else without a number in the second
/// column are skipped; never panics.
pub fn parse_stat(text: &str) -> Vec<(String, u64)> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let name = w.next()?;
            let hits = w.next()?.parse().ok()?;
            Some((name.to_string(), hits))
        })
        .collect()
}

/// Sums the per-CPU profiles by function name.
pub fn read_counts(tfs: &Tracefs) -> Result<HashMap<String, u64>> {
    let dir = tfs.path("trace_stat");
    let rd = std::fs::read_dir(&dir).map_err(|e| Error::io("list", &dir, e))?;
    let mut out: HashMap<String, u64> = HashMap::new();
    for e in rd.flatten() {
        let name = e.file_name();
        if !name.to_string_lossy().starts_with("function") {
            continue;
        }
        for (f, n) in parse_stat(&tracefs::read_text(&e.path())?) {
            *out.entry(f).or_insert(0) += n;
        }
    }
    Ok(out)
}

/// `trace_stat/function*` prints names in 30 columns, cut there
/// (`%-30.30s`).
pub const STAT_NAME_WIDTH: usize = 30;

/// The full name of a function as `trace_stat` shows it, from the names
/// counted: a name cut at 30 characters is completed when one counted
/// name starts with it; when several do, it is shown as `cut*` (their
/// calls are added up there).
pub fn full_name(shown: &str, counted: &[String]) -> String {
    if shown.len() < STAT_NAME_WIDTH {
        return shown.to_string();
    }
    let mut full = counted.iter().filter(|n| n.starts_with(shown));
    match (full.next(), full.next()) {
        (Some(one), None) => one.clone(),
        (Some(_), Some(_)) => format!("{shown}*"),
        (None, _) => shown.to_string(),
    }
}

/// Why the profiler cannot be used now (funccount then uses its
/// instance).
pub type Unavailable = String;

/// The profiler, taken by this run. Dropping it turns the profiler off and
/// empties the top-level filter (both were so before).
pub struct Profiler {
    tfs: Tracefs,
    top: TopLevel,
    /// What recovery of a killed run did while taking the top level.
    pub recovered: Option<String>,
}

impl Profiler {
    /// Takes the profiler if the kernel has it and nobody uses the top
    /// level.
    pub fn acquire(tfs: &Tracefs) -> std::result::Result<Profiler, Unavailable> {
        if !tfs.exists("function_profile_enabled") {
            return Err("this kernel has no function profiler (CONFIG_FUNCTION_PROFILER)".into());
        }
        let mut top = match TopLevel::take(tfs, "funccount", false) {
            Ok(Ok(t)) => t,
            Ok(Err(Refusal::Held(holder))) => {
                return Err(format!(
                    "the function profiler is taken: {holder} is using it"
                ))
            }
            Ok(Err(Refusal::InUse(why))) => return Err(why.join("; ")),
            Err(e) => return Err(e.to_string()),
        };
        let recovered = top.recovered.take();
        Ok(Profiler {
            tfs: tfs.clone(),
            top,
            recovered,
        })
    }

    /// Writes the top-level filter and turns the profiler on. An error of
    /// kind `Busy` means the kernel refused to start it (function_graph in
    /// use): the caller may count another way. `stop` is asked between
    /// writes (signals).
    pub fn start(&mut self, funcs: &[&TraceableFunction], stop: &dyn Fn() -> bool) -> Result<()> {
        self.top.change(
            "set_ftrace_filter",
            Kind::Functions,
            String::new(),
            |path| functions::write_filter(path, funcs, stop),
        )?;
        if stop() {
            return Err(Error::interrupted());
        }
        self.top.change(
            "function_profile_enabled",
            Kind::Plain,
            "1".into(),
            |path| match tracefs::write_raw(path, "1", false) {
                Ok(()) => Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => Err(Error::new(
                    ErrorKind::Busy,
                    "the kernel refused to start the function profiler (EBUSY: a function_graph tracer is running)",
                )),
                Err(e) => Err(Error::io("enable the function profiler", path, e)),
            },
        )
    }

    /// The counts so far (since the start), by function name.
    pub fn counts(&self) -> Result<HashMap<String, u64>> {
        read_counts(&self.tfs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_trace_stat_with_and_without_times() {
        let graph = "  Function                               Hit    Time            Avg             s^2\n  --------                               ---    ----            ---             ---\n  vfs_read                              1011    3445.905 us     3.408 us        2264.691 us \n  read_zero                             1000    563.757 us      0.563 us        1.023 us    \n";
        assert_eq!(
            parse_stat(graph),
            vec![
                ("vfs_read".to_string(), 1011),
                ("read_zero".to_string(), 1000)
            ]
        );
        let plain = "  Function                               Hit\n  --------                               ---\n  ksys_read                                5\n";
        assert_eq!(parse_stat(plain), vec![("ksys_read".to_string(), 5)]);
        assert!(parse_stat("").is_empty());
    }

    #[test]
    fn names_cut_at_30_columns_are_completed() {
        let counted: Vec<String> = [
            "ext4_convert_unwritten_io_end_vec",
            "ext4_map_query_blocks.constprop.0",
            "ext4_mb_scan_groups_linear.constprop.0",
            "ext4_mb_scan_groups_linear.constprop.1",
            "vfs_read",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            full_name("ext4_convert_unwritten_io_end_", &counted),
            "ext4_convert_unwritten_io_end_vec"
        );
        assert_eq!(
            full_name("ext4_mb_scan_groups_linear.con", &counted),
            "ext4_mb_scan_groups_linear.con*"
        );
        assert_eq!(full_name("vfs_read", &counted), "vfs_read");
        assert_eq!(
            full_name("something_else_of_thirty_chars", &counted),
            "something_else_of_thirty_chars"
        );
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in "\\PC{0,200}") {
            let _ = parse_stat(&s);
        }
    }
}
