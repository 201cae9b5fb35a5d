//! Output shared by the tools: buffered stdout that ends quietly when the
//! reader goes away (`| head`), aligned tables, log2 histograms and JSON
//! lines.

use crate::Flow;
use std::io::{self, BufWriter, Stdout, Write};

/// Buffered standard output. A closed pipe is not an error: it marks the
/// output closed, and callers stop (exit status 0, as ripgrep does).
pub struct Output {
    w: BufWriter<Stdout>,
    closed: bool,
    error: Option<io::Error>,
}

impl Default for Output {
    fn default() -> Self {
        Output::new()
    }
}

impl Output {
    /// Standard output with a 64 KiB buffer.
    pub fn new() -> Output {
        Output {
            w: BufWriter::with_capacity(64 * 1024, io::stdout()),
            closed: false,
            error: None,
        }
    }

    fn note(&mut self, r: io::Result<()>) -> Flow {
        match r {
            Ok(()) => Flow::Continue,
            Err(e) => {
                if e.kind() != io::ErrorKind::BrokenPipe {
                    self.error.get_or_insert(e);
                }
                self.closed = true;
                crate::app::signals::request_stop();
                Flow::Stop
            }
        }
    }

    /// Writes a line (a newline is added).
    pub fn line(&mut self, s: &str) -> Flow {
        if self.closed {
            return Flow::Stop;
        }
        let r = self
            .w
            .write_all(s.as_bytes())
            .and_then(|_| self.w.write_all(b"\n"));
        self.note(r)
    }

    /// Writes text as it is.
    pub fn text(&mut self, s: &str) -> Flow {
        if self.closed {
            return Flow::Stop;
        }
        let r = self.w.write_all(s.as_bytes());
        self.note(r)
    }

    /// Writes one JSON value as a line.
    pub fn json(&mut self, v: &serde_json::Value) -> Flow {
        if self.closed {
            return Flow::Stop;
        }
        let r = serde_json::to_writer(&mut self.w, v)
            .map_err(io::Error::from)
            .and_then(|_| self.w.write_all(b"\n"));
        self.note(r)
    }

    /// Marks where a CPU lost events: `CPU:N [LOST n EVENTS]` as the
    /// kernel's own text has it, or `{"cpu":N,"lost":n}` in JSON (`null`
    /// when the kernel did not count them).
    pub fn lost_marker(&mut self, cpu: u32, count: Option<u64>, json: bool) -> Flow {
        if json {
            return self.json(&serde_json::json!({"cpu": cpu, "lost": count}));
        }
        match count {
            Some(n) => self.line(&format!("CPU:{cpu} [LOST {n} EVENTS]")),
            None => self.line(&format!("CPU:{cpu} [LOST EVENTS]")),
        }
    }

    /// Flushes what is buffered.
    pub fn flush(&mut self) -> Flow {
        if self.closed {
            return Flow::Stop;
        }
        let r = self.w.flush();
        self.note(r)
    }

    /// Flushes at the end of a run: a write error other than a closed pipe
    /// is the run's error (exit 1).
    pub fn finish(&mut self) -> crate::Result<()> {
        self.flush();
        match self.take_error() {
            Some(e) => Err(crate::Error::new(
                crate::ErrorKind::Io,
                format!("writing output: {e}"),
            )),
            None => Ok(()),
        }
    }

    /// Whether the reader went away.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Whether the reader of a pipe on standard output went away, asked
    /// without writing (for a tool that may print nothing for a long time
    /// after its header: `| head -1` must still end it). Marks the output
    /// closed.
    pub fn reader_gone(&mut self) -> bool {
        let mut p = libc::pollfd {
            fd: 1,
            events: 0,
            revents: 0,
        };
        // SAFETY: one valid pollfd, no wait.
        let n = unsafe { libc::poll(&mut p, 1, 0) };
        if n == 1 && p.revents & libc::POLLERR != 0 {
            self.closed = true;
        }
        self.closed
    }

    /// A write error other than a closed pipe, if one happened.
    pub fn take_error(&mut self) -> Option<io::Error> {
        self.error.take()
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        if !self.closed {
            let _ = self.w.flush();
        }
    }
}

/// The local time as `date` prints it (`Tue Jul 15 10:00:01 UTC 2025`).
pub fn date_now() -> String {
    local_time("%a %b %e %H:%M:%S %Z %Y")
}

/// Prints `lines` to stdout, one a line, until the reader goes away.
pub fn print_lines(lines: impl IntoIterator<Item = String>) -> crate::Result<()> {
    let mut out = Output::new();
    for l in lines {
        if out.line(&l) == Flow::Stop {
            break;
        }
    }
    out.finish()
}

/// Renders rows as columns aligned with spaces (tabwriter). The first row is
/// usually the header.
pub fn table(rows: &[Vec<String>]) -> String {
    let mut tw = tabwriter::TabWriter::new(Vec::new()).padding(2);
    for r in rows {
        let _ = writeln!(tw, "{}", r.join("\t"));
    }
    let bytes = tw.into_inner().unwrap_or_default();
    String::from_utf8_lossy(&bytes)
        .lines()
        .map(|l| l.trim_end().to_string() + "\n")
        .collect()
}

/// A power-of-two histogram: bucket `i` holds values in `[2^(i-1), 2^i)`
/// (bucket 0 holds 0).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Log2Hist {
    buckets: Vec<u64>,
    total: u64,
}

impl Log2Hist {
    /// An empty histogram.
    pub fn new() -> Log2Hist {
        Log2Hist::default()
    }

    /// The bucket index of a value.
    pub fn bucket(v: u64) -> usize {
        (64 - v.leading_zeros()) as usize
    }

    /// Adds one value.
    pub fn add(&mut self, v: u64) {
        let b = Self::bucket(v);
        if self.buckets.len() <= b {
            self.buckets.resize(b + 1, 0);
        }
        self.buckets[b] += 1;
        self.total += 1;
    }

    /// Adds `count` values to bucket `b` (a histogram kept elsewhere,
    /// by the kernel, in the same buckets).
    pub fn add_count(&mut self, b: usize, count: u64) {
        let b = b.min(64);
        if self.buckets.len() <= b {
            self.buckets.resize(b + 1, 0);
        }
        self.buckets[b] += count;
        self.total += count;
    }

    /// Adds the counts of a kernel histogram's text (a `hist` file) whose
    /// key `key` is `.log2` of the value plus one (see
    /// [`crate::lifecycle::latency::log2_recipe`]): the same buckets.
    pub fn add_kernel_log2(&mut self, text: &str, key: &str) {
        for e in crate::lifecycle::hist::parse(text).entries {
            if let Some(k) = e.key(key).and_then(|k| k.log2()) {
                self.add_count(k as usize, e.hitcount());
            }
        }
    }

    /// The count of every bucket, from bucket 0 to the last non-empty one.
    pub fn counts(&self) -> &[u64] {
        let end = self
            .buckets
            .iter()
            .rposition(|&c| c > 0)
            .map_or(0, |i| i + 1);
        &self.buckets[..end]
    }

    /// The number of values added.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// `(low, high, count)` per bucket, from the first non-empty one to the
    /// last.
    pub fn rows(&self) -> Vec<(u64, u64, u64)> {
        let first = self.buckets.iter().position(|&c| c > 0);
        let Some(first) = first else {
            return Vec::new();
        };
        let last = self.buckets.iter().rposition(|&c| c > 0).unwrap_or(first);
        (first..=last)
            .map(|i| {
                let (lo, hi) = if i == 0 {
                    (0, 0)
                } else {
                    (
                        1u64 << (i - 1),
                        (1u64 << (i - 1)).saturating_mul(2).saturating_sub(1),
                    )
                };
                (lo, hi, self.buckets[i])
            })
            .collect()
    }

    /// Renders the histogram with a bar per bucket, as bcc's tools do:
    /// ```text
    ///      usecs               : count     distribution
    ///          2 -> 3          : 5        |*****                 |
    /// ```
    pub fn render(&self, unit: &str) -> String {
        let rows = self.rows();
        let max = rows.iter().map(|r| r.2).max().unwrap_or(0);
        let width = 40usize;
        // Columns as wide as the largest bound (at least 10, as bcc's), the
        // header's colon above the rows' colons.
        let w = rows
            .iter()
            .map(|r| r.1.to_string().len())
            .max()
            .unwrap_or(0)
            .max(10);
        let mut out = format!(
            "{unit:>w$}{:pad$}: count     distribution\n",
            "",
            pad = w + 4
        );
        for (lo, hi, c) in rows {
            let stars = if max == 0 {
                0
            } else {
                (c as u128 * width as u128).div_ceil(max as u128) as usize
            };
            let stars = if c == 0 { 0 } else { stars.max(1) };
            out.push_str(&format!(
                "{lo:>w$} -> {hi:<w$}: {c:<9} |{:<width$}|\n",
                "*".repeat(stars),
                width = width
            ));
        }
        out
    }

    /// The histogram as JSON: `[{"low":..,"high":..,"count":..}, ...]`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Array(
            self.rows()
                .into_iter()
                .map(|(lo, hi, c)| serde_json::json!({"low": lo, "high": hi, "count": c}))
                .collect(),
        )
    }
}

/// The local time now, formatted by strftime(3) (`%H:%M:%S`, as bcc's
/// `-T`; `%a %b %e %H:%M:%S %Z %Y`, as date(1)); empty if it cannot be
/// had. `fmt` must not hold a NUL.
pub fn local_time(fmt: &str) -> String {
    // SAFETY: time() with a null pointer only returns the time.
    local_time_at(unsafe { libc::time(std::ptr::null_mut()) } as i64, fmt)
}

/// The local time of `epoch_secs` (seconds since 1970), formatted by
/// strftime(3) as [`local_time`] formats now.
pub fn local_time_at(epoch_secs: i64, fmt: &str) -> String {
    let Ok(fmt) = std::ffi::CString::new(fmt) else {
        return String::new();
    };
    // SAFETY: localtime_r and strftime write only into the buffers given;
    // a zeroed tm is a valid value to overwrite.
    unsafe {
        let t = epoch_secs as libc::time_t;
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() {
            return String::new();
        }
        let mut buf = [0u8; 128];
        let n = libc::strftime(buf.as_mut_ptr().cast(), buf.len(), fmt.as_ptr(), &tm);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }
}

/// Formats a time stamp in ns as seconds with microseconds, as ftrace does.
pub fn ts_secs(ns: u64) -> String {
    format!("{}.{:06}", ns / 1_000_000_000, (ns % 1_000_000_000) / 1000)
}

/// The first column of the snoops: the local clock (`TIME`, HH:MM:SS, as
/// bcc prints it) or, with `-t`, seconds of `CLOCK_MONOTONIC` (`TIMEs`, as
/// perf-tools prints it).
#[derive(Debug, Clone, Copy)]
pub struct TimeColumn {
    /// `TIMEs` instead of the clock.
    pub seconds: bool,
}

impl TimeColumn {
    /// The column's header, padded to its width.
    pub fn header(&self) -> String {
        if self.seconds {
            format!("{:<14}", "TIMEs")
        } else {
            format!("{:<8}", "TIME")
        }
    }

    /// An event's cell, padded to the column's width.
    pub fn cell(&self, ts: u64) -> String {
        if self.seconds {
            format!("{:<14}", ts_secs(ts))
        } else {
            local_time_at(epoch_secs_of_mono(ts), "%H:%M:%S")
        }
    }
}

/// Seconds since 1970 of a `CLOCK_MONOTONIC` time stamp in ns (the clock
/// of our instances), by the two clocks' offset now.
pub fn epoch_secs_of_mono(ns: u64) -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes only to the timespec given.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    let mono_now = ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128;
    let real_now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0);
    ((real_now - (mono_now - ns as i128)) / 1_000_000_000) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log2_buckets_and_rendering() {
        let mut h = Log2Hist::new();
        for v in [0, 1, 2, 3, 4, 7, 8, 1000] {
            h.add(v);
        }
        assert_eq!(h.total(), 8);
        assert_eq!(Log2Hist::bucket(0), 0);
        assert_eq!(Log2Hist::bucket(1), 1);
        assert_eq!(Log2Hist::bucket(3), 2);
        assert_eq!(Log2Hist::bucket(1000), 10);
        let rows = h.rows();
        assert_eq!(rows[0], (0, 0, 1));
        assert_eq!(rows[1], (1, 1, 1));
        assert_eq!(rows[2], (2, 3, 2));
        assert_eq!(rows[3], (4, 7, 2));
        assert_eq!(rows.last(), Some(&(512, 1023, 1)));
        let text = h.render("usecs");
        assert!(text.contains("2 -> 3"), "{text}");
        assert_eq!(text.lines().count(), 1 + rows.len());
        assert!(text.lines().nth(3).unwrap().contains(&"*".repeat(40)));
        let colon = |l: &str| l.find(':');
        assert_eq!(
            colon(text.lines().next().unwrap()),
            colon(text.lines().nth(1).unwrap())
        );
        assert_eq!(h.to_json()[2]["count"], 2);
        assert!(Log2Hist::new().rows().is_empty());
        let mut big = Log2Hist::new();
        big.add(u64::MAX);
        assert_eq!(big.rows()[0].0, 1 << 63);
    }

    #[test]
    fn tables_align_and_times_print_like_ftrace() {
        let t = table(&[
            vec!["COMM".into(), "COUNT".into()],
            vec!["bash".into(), "12".into()],
        ]);
        assert_eq!(t, "COMM  COUNT\nbash  12\n");
        assert_eq!(ts_secs(1_234_567_891_234), "1234.567891");
        let t = local_time("%H:%M:%S");
        assert_eq!(t.len(), 8, "{t}");
        assert_eq!(t.as_bytes()[2], b':');
    }
}
