//! The histograms kept in the kernel: per function, the kernel
//! documentation's latency recipe ([`LatencyTriggers`]): the entry
//! probe's trigger saves the time stamp per thread, the return probe's
//! computes the latency and fires a synthetic event with it, and a hist
//! trigger on that event keeps a `.log2` histogram. Nothing goes through
//! the trace buffer.
//!
//! The buckets and units are those of
//! `ftrace_common::lifecycle::latency::log2_recipe`: the difference of the
//! two time stamps in the unit, as the buffer path computes it, plus one.
//! Constants and division in expressions need Linux 5.16.

use ftrace_common::app::output::Log2Hist;
use ftrace_common::lifecycle::instance::Instance;
use ftrace_common::lifecycle::latency::{log2_recipe, Endpoint, LatencyTriggers, Recipe};
use ftrace_common::Result;

pub use ftrace_common::lifecycle::latency::takes_constants;

/// The triggers of one function: entry `names.0`, return `names.1` in
/// `system`.
pub fn recipe(i: usize, div: u64) -> Recipe {
    log2_recipe(format!("fl{i}"), div)
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
    hist.add_kernel_log2(text, "lat");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipes_are_named_per_function() {
        let r = recipe(2, 1000);
        assert_eq!(r.latency, "common_timestamp/1000-$ftt_ts0+1");
        assert_eq!(r.what, "fl2");
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
