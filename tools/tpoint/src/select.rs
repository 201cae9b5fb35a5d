//! The TRACEPOINT argument: one `SYSTEM:EVENT` (perf-tools' form), a glob
//! (`'sched:*'`), or a comma-separated list of both
//! (`'sched:*,timer:hrtimer_*'`), resolved against the kernel's
//! `available_events`.

use ftrace_common::base::glob::{self, Glob};
use ftrace_common::{Error, Result};

/// The tracepoints TRACEPOINT names, as (system, event), in the order
/// given, each once.
pub fn select(spec: &str, available: &str) -> Result<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = Vec::new();
    for item in spec.split(',').map(str::trim) {
        let (sys, name) = split(item)?;
        let full = format!("{sys}:{name}");
        let found: Vec<&str> = if glob::is_glob(&full) {
            let g = Glob::new(&full)?;
            let m: Vec<&str> = available.lines().filter(|l| g.matches(l)).collect();
            if m.is_empty() {
                return Err(Error::usage(format!(
                    "no tracepoint matches '{item}' (tpoint -l lists them)"
                )));
            }
            m
        } else if available.lines().any(|l| l == full) {
            vec![full.as_str()]
        } else {
            let hint = glob::did_you_mean(&full, available.lines(), 3);
            return Err(Error::usage(format!(
                "no tracepoint {full} on this kernel{hint} (tpoint -l lists them)"
            )));
        };
        for f in found {
            if let Some((s, n)) = f.split_once(':') {
                if !out.iter().any(|(a, b)| a == s && b == n) {
                    out.push((s.to_string(), n.to_string()));
                }
            }
        }
    }
    Ok(out)
}

/// `SYSTEM:EVENT` (or `SYSTEM/EVENT`), each part a name or a glob.
fn split(tp: &str) -> Result<(&str, &str)> {
    let (sys, name) = tp
        .split_once(':')
        .or_else(|| tp.split_once('/'))
        .ok_or_else(|| {
            Error::usage(format!(
                "'{tp}' is not a tracepoint: give SYSTEM:EVENT, e.g. syscalls:sys_enter_openat, or a glob such as 'sched:*' (see tpoint -l)"
            ))
        })?;
    let ok = |s: &str| {
        !s.is_empty()
            && s.chars().all(|c| {
                c.is_ascii_alphanumeric() || matches!(c, '_' | '*' | '?' | '[' | ']' | '!' | '-')
            })
    };
    if !ok(sys) || !ok(name) {
        return Err(Error::usage(format!("'{tp}' is not a tracepoint name")));
    }
    Ok((sys, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    const AVAIL: &str = "sched:sched_switch\nsched:sched_wakeup\ntimer:hrtimer_start\ntimer:hrtimer_cancel\ntimer:timer_start\nsyscalls:sys_enter_read\nblock:block_rq_issue\n";

    fn names(v: &[(String, String)]) -> Vec<String> {
        v.iter().map(|(s, n)| format!("{s}:{n}")).collect()
    }

    #[test]
    fn single_globs_and_lists() {
        let v = select("syscalls:sys_enter_read", AVAIL).unwrap();
        assert_eq!(names(&v), ["syscalls:sys_enter_read"]);
        let v = select("block/block_rq_issue", AVAIL).unwrap();
        assert_eq!(names(&v), ["block:block_rq_issue"]);
        let v = select("sched:*, timer:hrtimer_*,sched:sched_switch", AVAIL).unwrap();
        assert_eq!(
            names(&v),
            [
                "sched:sched_switch",
                "sched:sched_wakeup",
                "timer:hrtimer_start",
                "timer:hrtimer_cancel"
            ]
        );
        for (bad, why) in [
            ("nocolon", "is not a tracepoint"),
            (":x", "is not a tracepoint name"),
            ("x:", "is not a tracepoint name"),
            ("a:b c", "is not a tracepoint name"),
            ("a:b\n-:x", "is not a tracepoint name"),
            ("../x:y", "is not a tracepoint name"),
            ("sched:nosuch_*", "no tracepoint matches"),
            ("sched:sched_swich", "did you mean sched:sched_switch"),
        ] {
            let e = select(bad, AVAIL).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad}");
            assert!(e.to_string().contains(why), "{bad}: {e}");
        }
    }
}
