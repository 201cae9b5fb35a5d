//! The time between two events, kept by the kernel: the recipe of the
//! kernel's documentation (the wakeup-latency example of
//! `histogram.rst`), as guards.
//!
//! - the start event's hist trigger saves a time stamp (and any field the
//!   result needs) in variables, per key (`keys=pid:ftt_ts0=...`);
//! - the end event's trigger, keyed on the matching field, computes the
//!   latency from the saved stamp and fires a synthetic event with it
//!   (`onmatch(sys.start).trace(<synthetic>,$ftt_lat,...)`);
//! - a hist trigger on the synthetic event keeps the histogram.
//!
//! All three live in our instance (the events need not be enabled), with
//! `clock=mono` so that the instance keeps its clock. A variable is read
//! once: an end without a new start fires nothing. The start's and the
//! end's tables hold one entry per key ever seen (2048 by default): keys
//! beyond that are dropped, and [`LatencyTriggers::dropped`] says how
//! many.
//!
//! Dropping [`LatencyTriggers`] removes them in the order the kernel needs:
//! the synthetic event's histogram, the end trigger (it uses the start's
//! variables and fires the synthetic event), the start trigger, then the
//! synthetic event. The instance must outlive it (declare it before).

use crate::base::error::Result;
use crate::lifecycle::hist::HistTrigger;
use crate::lifecycle::instance::Instance;
use crate::lifecycle::synth::{SynthEvent, SynthField};

/// One of the two events.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Its system (`sched`, or our probe group).
    pub system: String,
    /// Its name.
    pub event: String,
    /// The fields that key it (their values must match between the two).
    pub keys: Vec<String>,
    /// The trigger's filter.
    pub filter: Option<String>,
}

/// What the triggers compute.
#[derive(Debug, Clone)]
pub struct Recipe {
    /// Short name for the synthetic event (`lat`, `fl`).
    pub what: String,
    /// Variables of the start trigger, `(name, expression)`: the time
    /// stamp (`("ftt_ts0", "common_timestamp.usecs")`) and saved fields.
    pub start_vars: Vec<(String, String)>,
    /// The latency expression of the end trigger, using the start's
    /// variables (`common_timestamp.usecs-$ftt_ts0`).
    pub latency: String,
    /// The synthetic event's fields; the first is the latency.
    pub fields: Vec<SynthField>,
    /// What the end trigger passes for the fields after the latency: end
    /// event fields (`next_pid`) or start variables (`$ftt_s_prio`).
    pub params: Vec<String>,
    /// The histogram of the synthetic event: attributes and filter.
    pub hist: (String, Option<String>),
}

/// The latency name of the end trigger's variable.
const LAT_VAR: &str = "ftt_lat";

/// The three triggers and the synthetic event of a latency histogram.
#[derive(Debug)]
pub struct LatencyTriggers {
    /// On the synthetic event: the histogram.
    pub hist: HistTrigger,
    end: HistTrigger,
    start: HistTrigger,
    synth: SynthEvent,
}

impl LatencyTriggers {
    /// Creates the synthetic event and the triggers in `inst`; the
    /// histogram is created paused when `paused` (counting starts with
    /// `hist.cont()`). A refusal carries the kernel's `error_log` entry,
    /// and what was made is removed.
    pub fn arm(
        inst: &Instance,
        start: &Endpoint,
        end: &Endpoint,
        r: &Recipe,
        paused: bool,
    ) -> Result<LatencyTriggers> {
        let synth = SynthEvent::create(inst.tracefs(), &r.what, &r.fields)?;
        let vars: Vec<String> = r
            .start_vars
            .iter()
            .map(|(n, e)| format!("{n}={e}"))
            .collect();
        let start_t = HistTrigger::add_text(
            inst,
            &start.system,
            &start.event,
            &format!(
                "keys={}:{}:clock=mono",
                start.keys.join(","),
                vars.join(",")
            ),
            start.filter.as_deref(),
            false,
        )?;
        let mut params = vec![format!("${LAT_VAR}")];
        params.extend(r.params.iter().cloned());
        let end_t = HistTrigger::add_text(
            inst,
            &end.system,
            &end.event,
            &format!(
                "keys={}:{LAT_VAR}={}:onmatch({}.{}).trace({},{}):clock=mono",
                end.keys.join(","),
                r.latency,
                start.system,
                start.event,
                synth.name(),
                params.join(",")
            ),
            end.filter.as_deref(),
            false,
        )?;
        let hist_t = HistTrigger::add_text(
            inst,
            "synthetic",
            synth.name(),
            &r.hist.0,
            r.hist.1.as_deref(),
            paused,
        )?;
        Ok(LatencyTriggers {
            hist: hist_t,
            end: end_t,
            start: start_t,
            synth,
        })
    }

    /// The synthetic event's name.
    pub fn synth_name(&self) -> &str {
        self.synth.name()
    }

    /// Hits the start's and the end's tables dropped (a key they had no
    /// room for): matches that could not be made.
    pub fn dropped(&self) -> Result<u64> {
        let d = |t: &HistTrigger| -> Result<u64> { Ok(t.read()?.dropped.unwrap_or(0)) };
        Ok(d(&self.start)? + d(&self.end)?)
    }
}

/// Whether the kernel of this release (`6.1.0-57-amd64`) takes constants
/// and division in hist expressions (Linux 5.16), which
/// [`log2_recipe`] needs.
pub fn takes_constants(release: &str) -> bool {
    let mut n = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>().unwrap_or(0));
    (n.next().unwrap_or(0), n.next().unwrap_or(0)) >= (5, 16)
}

/// The time stamp in a unit (ns divided by `div`), as hist triggers write
/// it (`.usecs` rounds, and cannot be added to a constant: "Timestamp
/// units in expression don't match").
pub fn stamp(div: u64) -> String {
    match div {
        1 => "common_timestamp".to_string(),
        d => format!("common_timestamp/{d}"),
    }
}

/// A latency kept as a log2 histogram of `lat` in a unit (ns divided by
/// `div`): the difference of the two time stamps in the unit, plus one.
/// The kernel's `.log2` puts `v` in `ilog2(roundup_pow_of_two(v))`, so its
/// bucket `k` is `(2^(k-1), 2^k]`, where bcc's (and `Log2Hist`'s) is
/// `[2^(k-1), 2^k)`: the kernel bucket of `v + 1` is bcc's bucket of `v`.
pub fn log2_recipe(what: impl Into<String>, div: u64) -> Recipe {
    let ts = stamp(div);
    Recipe {
        what: what.into(),
        start_vars: vec![("ftt_ts0".to_string(), ts.clone())],
        latency: format!("{ts}-$ftt_ts0+1"),
        fields: vec![SynthField::new("u64", "lat")],
        params: Vec::new(),
        hist: ("keys=lat.log2:sort=lat".to_string(), None),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_end_trigger_reads_as_the_kernel_documentation_writes_it() {
        // The shape only; the kernel itself is exercised by the tools'
        // tests in the guests.
        let body = format!(
            "keys={}:{}={}:onmatch({}.{}).trace({},{}):clock=mono",
            "next_pid",
            super::LAT_VAR,
            "common_timestamp.usecs-$ftt_ts0",
            "sched",
            "sched_waking",
            "ftrace_tools_1_2_3_lat",
            "$ftt_lat,next_pid"
        );
        assert_eq!(
            crate::lifecycle::hist::command(&body, Some("next_comm == \"x\""), None),
            "hist:keys=next_pid:ftt_lat=common_timestamp.usecs-$ftt_ts0:onmatch(sched.sched_waking).trace(ftrace_tools_1_2_3_lat,$ftt_lat,next_pid):clock=mono if next_comm == \"x\""
        );
    }

    #[test]
    fn log2_recipes_and_releases() {
        for v in [0u64, 1, 2, 3, 4, 5, 7, 8, 1000, 1023, 1024, 1 << 40] {
            // ilog2(roundup_pow_of_two(v + 1)), as the kernel computes it,
            // is bcc's bucket of v: the number of bits of v.
            let k = (v + 1).next_power_of_two().trailing_zeros();
            assert_eq!(k, 64 - v.leading_zeros(), "{v}");
        }
        let r = super::log2_recipe("fl2", 1000);
        assert_eq!(r.latency, "common_timestamp/1000-$ftt_ts0+1");
        assert_eq!(r.what, "fl2");
        assert_eq!(super::stamp(1_000_000), "common_timestamp/1000000");
        for (release, yes) in [
            ("6.1.0-57-amd64", true),
            ("6.12.95+deb12-amd64", true),
            ("5.16.0", true),
            ("5.15.0-91-generic", false),
            ("4.19.0-26-amd64", false),
            ("", false),
        ] {
            assert_eq!(super::takes_constants(release), yes, "{release}");
        }
    }
}
