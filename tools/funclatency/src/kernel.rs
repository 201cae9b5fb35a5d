//! The histograms kept in the kernel: per function, the kernel
//! documentation's latency recipe ([`LatencyTriggers`]): the entry
//! probe's trigger saves the time stamp per thread, the return probe's
//! computes the latency and fires a synthetic event with it, and a hist
//! trigger on that event keeps a `.log2` histogram. Nothing goes through
//! the trace buffer.
//!
//! The kernel's `.log2` puts `v` in `ilog2(roundup_pow_of_two(v))`, so its
//! bucket `k` is `(2^(k-1), 2^k]`, where bcc's (and [`Log2Hist`]'s) is
//! `[2^(k-1), 2^k)`: the latency passed is `v + 1`, whose kernel bucket is
//! bcc's bucket of `v`. Units: `common_timestamp` (ns), or divided by
//! 1000 or 10^6 (`.usecs` rounds, and cannot be added to the constant:
//! "Timestamp units in expression don't match"): the difference of the two
//! time stamps in the unit, as the buffer path computes it. Constants and
//! division in expressions need Linux 5.16.

use ftrace_common::app::output::Log2Hist;
use ftrace_common::lifecycle::instance::Instance;
use ftrace_common::lifecycle::latency::{Endpoint, LatencyTriggers, Recipe};
use ftrace_common::lifecycle::synth::SynthField;
use ftrace_common::Result;

/// Whether the kernel of this release (`6.1.0-57-amd64`) takes constants
/// and division in hist expressions (Linux 5.16): the recipe needs them.
pub fn takes_constants(release: &str) -> bool {
    let mut n = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>().unwrap_or(0));
    (n.next().unwrap_or(0), n.next().unwrap_or(0)) >= (5, 16)
}

/// The time stamp in the unit (ns divided by `div`), as hist triggers
/// write it.
pub fn stamp(div: u64) -> String {
    match div {
        1 => "common_timestamp".to_string(),
        d => format!("common_timestamp/{d}"),
    }
}

/// The triggers of one function: entry `names.0`, return `names.1` in
/// `system`.
pub fn recipe(i: usize, div: u64) -> Recipe {
    let ts = stamp(div);
    Recipe {
        what: format!("fl{i}"),
        start_vars: vec![("ftt_ts0".to_string(), ts.clone())],
        latency: format!("{ts}-$ftt_ts0+1"),
        fields: vec![SynthField::new("u64", "lat")],
        params: Vec::new(),
        hist: ("keys=lat.log2:sort=lat".to_string(), None),
    }
}

/// Arms the triggers of every function (entry and return events in
/// pairs, in `names`).
pub fn arm(
    inst: &Instance,
    system: &str,
    names: &[String],
    div: u64,
) -> Result<Vec<LatencyTriggers>> {
    let end = |name: &String| Endpoint {
        system: system.to_string(),
        event: name.clone(),
        keys: vec!["common_pid".to_string()],
        filter: None,
    };
    names
        .chunks(2)
        .enumerate()
        .map(|(i, pair)| {
            LatencyTriggers::arm(inst, &end(&pair[0]), &end(&pair[1]), &recipe(i, div), false)
        })
        .collect()
}

/// Adds a kernel histogram's text to `hist`.
pub fn add_text(hist: &mut Log2Hist, text: &str) {
    for e in ftrace_common::lifecycle::hist::parse(text).entries {
        if let Some(k) = e.key("lat").and_then(|k| k.log2()) {
            hist.add_count(k as usize, e.hitcount());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernels_log2_of_v_plus_1_is_bccs_bucket_of_v() {
        // ilog2(roundup_pow_of_two(v + 1)), as the kernel computes it.
        for v in [0u64, 1, 2, 3, 4, 5, 7, 8, 1000, 1023, 1024, 1 << 40] {
            let k = (v + 1).next_power_of_two().trailing_zeros() as usize;
            assert_eq!(k, Log2Hist::bucket(v), "{v}");
        }
        let r = recipe(2, 1000);
        assert_eq!(r.latency, "common_timestamp/1000-$ftt_ts0+1");
        assert_eq!(r.what, "fl2");
        assert_eq!(stamp(1_000_000), "common_timestamp/1000000");
        for (release, yes) in [
            ("6.1.0-57-amd64", true),
            ("6.12.95+deb12-amd64", true),
            ("5.16.0", true),
            ("5.15.0-91-generic", false),
            ("4.19.0-26-amd64", false),
            ("", false),
        ] {
            assert_eq!(takes_constants(release), yes, "{release}");
        }
    }

    #[test]
    fn a_kernel_histogram_becomes_bccs() {
        let text = "\
# event histogram
#
# trigger info: hist:keys=lat.log2:vals=hitcount:sort=lat.log2:size=2048 [active]
#

{ lat: ~ 2^0  } hitcount:          3
{ lat: ~ 2^11 } hitcount:         28
{ lat: ~ 2^12 } hitcount:          2

Totals:
    Hits: 33
    Entries: 3
    Dropped: 0
";
        let mut h = Log2Hist::new();
        add_text(&mut h, text);
        assert_eq!(h.total(), 33);
        assert_eq!(h.rows()[0], (0, 0, 3));
        assert_eq!(h.rows().last(), Some(&(2048, 4095, 2)));
    }
}
