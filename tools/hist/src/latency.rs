//! `hist --latency START END [SPEC]`: the time from START to the END that
//! matches it on a field, aggregated by SPEC.
//!
//! The result is a synthetic event `lat` with, after the latency, the
//! matched fields (named as in START; `common_pid` as `pid`) and every
//! other field SPEC names, taken from END, else from START. In the kernel
//! it is exactly that: variables, `onmatch()` and a synthetic event
//! (common::lifecycle::latency). From the buffer, the same steps are made
//! on the records, with the kernel's rules: a start saves its time stamp
//! (and START fields) per key, the next end of that key reads them once;
//! the start's and the end's tables keep every key they have seen, 2048
//! at most; the latency is `common_timestamp.usecs` (each stamp rounded
//! to microseconds, then subtracted) or nanoseconds with `--nsecs`.

use crate::cli::Args;
use crate::engine::{ns2usecs, Engine};
use crate::spec::{self, SpecText};
use crate::tables::{print_tables, KernelTable, Tables};
use ftrace_common::buffer::format::{EventFormat, Field, FieldKind};
use ftrace_common::buffer::reader::Event;
use ftrace_common::kernel::caps::Feature;
use ftrace_common::kernel::proc::CommCache;
use ftrace_common::kernel::tracefs::Tracefs;
use ftrace_common::lifecycle::latency::{Endpoint, LatencyTriggers, Recipe};
use ftrace_common::lifecycle::synth::SynthField;
use ftrace_common::probes::event::{self, EventArg};
use ftrace_common::{Error, Result};
use std::collections::{HashMap, HashSet};

const DEFAULT_SPEC: &str = "keys=lat.log2:sort=lat";
/// The kernel's tables of keys (the start's and the end's triggers).
const KEYS_TABLE: usize = 2048;
/// The event id of the synthetic records made in user space.
const SYNTH_ID: u16 = 0xffff;

/// Where a field of the latency event comes from.
#[derive(Debug, Clone)]
struct LatField {
    /// Its name in the latency event.
    name: String,
    /// The field it is read from.
    field: Field,
    /// From the start (else the end).
    from_start: bool,
    /// The end's field with the same value, for matched fields.
    end_field: Option<Field>,
}

/// The types `synthetic_events` takes (`synth_field_size()`).
const SYNTH_TYPES: &[&str] = &[
    "s64",
    "u64",
    "s32",
    "u32",
    "s16",
    "u16",
    "s8",
    "u8",
    "char",
    "unsigned char",
    "int",
    "unsigned int",
    "long",
    "unsigned long",
    "bool",
    "pid_t",
    "gfp_t",
];

impl LatField {
    /// The field whose value the end trigger passes: the end's own for
    /// matched fields.
    fn passed(&self) -> &Field {
        self.end_field.as_ref().unwrap_or(&self.field)
    }

    /// The synthetic event's type. The kernel checks a parameter against
    /// it by name, else by size and signedness, and a field passed as a
    /// parameter counts as unsigned: so the passed field's own C type
    /// where the synthetic event takes it, else an unsigned type of its
    /// width; a fixed string as `char[N]`.
    fn synth_type(&self) -> Result<String> {
        let f = self.passed();
        match f.kind {
            FieldKind::Scalar if matches!(f.size, 1 | 2 | 4 | 8) => {
                let t = f.ctype.trim();
                Ok(if SYNTH_TYPES.contains(&t) {
                    t.to_string()
                } else {
                    format!("u{}", f.size * 8)
                })
            }
            FieldKind::Array { elem: 1, count } if f.is_string() => Ok(format!("char[{count}]")),
            _ => Err(Error::usage(format!(
                "{} ({}) cannot be a field of the latency event: numbers and fixed strings only",
                f.name, f.ctype
            ))),
        }
    }

    /// Its size in the latency event.
    fn size(&self) -> usize {
        self.passed().size
    }

    /// Whether the kernel reads it as signed (`synth_field_signed()`).
    fn signed(&self) -> bool {
        let t = self.synth_type().unwrap_or_default();
        !t.starts_with('u') && t != "gfp_t" && !t.starts_with("char[")
    }
}

/// The latency run, decided from the options.
struct Plan {
    start: EventArg,
    end: EventArg,
    spec: SpecText,
    on: Vec<(String, String)>,
}

fn options(args: &Args) -> Result<Plan> {
    let end = args.spec.as_deref().ok_or_else(|| {
        Error::usage("--latency takes START END [SPEC]: e.g. hist --latency raw_syscalls:sys_enter raw_syscalls:sys_exit")
    })?;
    let spec_text = args.latency_spec.as_deref().unwrap_or(DEFAULT_SPEC);
    let spec = spec::split(spec_text)
        .map_err(|e| Error::usage(format!("bad SPEC '{spec_text}': {}", e.message)))?;
    let on = if args.on.is_empty() {
        vec![("common_pid".to_string(), "common_pid".to_string())]
    } else {
        args.on
            .iter()
            .map(|o| match o.split_once('=') {
                Some((a, b)) => (a.trim().to_string(), b.trim().to_string()),
                None => (o.trim().to_string(), o.trim().to_string()),
            })
            .collect()
    };
    Ok(Plan {
        start: event::parse(&args.event)?,
        end: event::parse(end)?,
        spec,
        on,
    })
}

/// The words of a SPEC that may name fields.
fn words(spec: &SpecText) -> Vec<String> {
    let text = format!("{} {}", spec.body, spec.filter.as_deref().unwrap_or(""));
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// The fields of the latency event after `lat`: the matched ones, then
/// the others the SPEC names.
fn fields(plan: &Plan, sfmt: &EventFormat, efmt: &EventFormat) -> Result<Vec<LatField>> {
    let mut out: Vec<LatField> = Vec::new();
    for (s, e) in &plan.on {
        let sf = sfmt.field(s).ok_or_else(|| {
            Error::usage(format!("--on {s}: {} has no field {s}", plan.start.text))
        })?;
        let ef = efmt.field(e).ok_or_else(|| {
            Error::usage(format!("--on {s}={e}: {} has no field {e}", plan.end.text))
        })?;
        let name = if s == "common_pid" { "pid" } else { s.as_str() };
        out.push(LatField {
            name: name.to_string(),
            field: sf.clone(),
            from_start: true,
            end_field: Some(ef.clone()),
        });
    }
    for w in words(&plan.spec) {
        if w == "lat" || w.starts_with("common_") || out.iter().any(|f| f.name == w) {
            continue;
        }
        let (field, from_start) = match (efmt.field(&w), sfmt.field(&w)) {
            (Some(f), _) => (f.clone(), false),
            (None, Some(f)) => (f.clone(), true),
            (None, None) => continue,
        };
        out.push(LatField {
            name: w,
            field,
            from_start,
            end_field: None,
        });
    }
    for f in &out {
        f.synth_type()?;
    }
    Ok(out)
}

/// Runs `hist --latency`.
pub fn run(tfs: &Tracefs, args: &Args) -> Result<()> {
    let plan = options(args)?;
    let in_kernel = crate::checks(tfs, args, Feature::SyntheticEvents)?;
    let pid = args.task.task().map(|t| t.process());
    let probes = [
        event::plan(tfs, &plan.start, pid)?,
        event::plan(tfs, &plan.end, pid)?,
    ];
    let (_group, names) = event::create(tfs, &[&plan.start, &plan.end], &probes)?;
    let mut inst = crate::instance(tfs, args, in_kernel)?;
    let ((ss, sn), (es, en)) = (&names[0], &names[1]);
    let sfmt = inst.event_format(ss, sn)?;
    let efmt = inst.event_format(es, en)?;
    let lat = fields(&plan, &sfmt, &efmt)?;
    let what = format!("latency {} -> {}", plan.start.text, plan.end.text);
    let on: Vec<String> = plan
        .on
        .iter()
        .map(|(s, e)| {
            if s == e {
                s.clone()
            } else {
                format!("{s}={e}")
            }
        })
        .collect();
    let line = crate::tracing_line(
        args,
        &format!(
            "the latency from {} to {} on {}",
            plan.start.text,
            plan.end.text,
            on.join(",")
        ),
        in_kernel,
    );
    if in_kernel {
        let start = Endpoint {
            system: ss.clone(),
            event: sn.clone(),
            keys: plan.on.iter().map(|(s, _)| s.clone()).collect(),
            filter: plan.start.filter.clone(),
        };
        let end = Endpoint {
            system: es.clone(),
            event: en.clone(),
            keys: plan.on.iter().map(|(_, e)| e.clone()).collect(),
            filter: plan.end.filter.clone(),
        };
        let trig = LatencyTriggers::arm(
            &inst,
            &start,
            &end,
            &recipe(&plan, &lat, args.nsecs)?,
            false,
        )?;
        let mut table = KernelTable {
            trigger: &trig.hist,
            lost_matches: Some(&trig),
        };
        print_tables(&inst, args, &mut table, &what, line, false)
    } else {
        let synth = synth_format(&lat)?;
        let compiled = spec::compile(&plan.spec, &synth)
            .map_err(|e| crate::spec_error(&e, &plan.spec, &what))?;
        for (ev, (sys, name)) in [(&plan.start, (ss, sn)), (&plan.end, (es, en))] {
            if let Some(f) = &ev.filter {
                inst.set_filter(sys, name, f)?;
            }
            inst.enable_event(sys, name)?;
        }
        let mut table = Matcher {
            engine: Engine::new(compiled, CommCache::new(Some(tfs.path("saved_cmdlines")))),
            start_id: sfmt.id,
            end_id: efmt.id,
            fields: lat,
            nsecs: args.nsecs,
            starts: HashMap::new(),
            ends: HashSet::new(),
            lost_matches: 0,
            rec: Vec::new(),
        };
        print_tables(&inst, args, &mut table, &what, line, true)
    }
}

/// The kernel's side: variables of the start, the latency and the
/// parameters of the end, the synthetic event's fields.
fn recipe(plan: &Plan, lat: &[LatField], nsecs: bool) -> Result<Recipe> {
    let ts = if nsecs {
        "common_timestamp"
    } else {
        "common_timestamp.usecs"
    };
    let mut start_vars = vec![("ftt_ts0".to_string(), ts.to_string())];
    let mut fields = vec![SynthField::new("u64", "lat")];
    let mut params = Vec::new();
    for f in lat {
        fields.push(SynthField::new(f.synth_type()?, &f.name));
        match (&f.end_field, f.from_start) {
            (Some(e), _) => params.push(e.name.clone()),
            (None, false) => params.push(f.field.name.clone()),
            (None, true) => {
                let var = format!("ftt_s_{}", f.name);
                start_vars.push((var.clone(), f.field.name.clone()));
                params.push(format!("${var}"));
            }
        }
    }
    Ok(Recipe {
        what: "lat".to_string(),
        start_vars,
        latency: format!("{ts}-$ftt_ts0"),
        fields,
        params,
        hist: (plan.spec.body.clone(), plan.spec.filter.clone()),
    })
}

/// The format of the latency event made in user space: the common
/// fields, `lat`, then each field in an 8-byte slot.
fn synth_format(lat: &[LatField]) -> Result<EventFormat> {
    let mut text = format!(
        "name: lat\nID: {SYNTH_ID}\nformat:\n\
         \tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
         \tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n\
         \tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n\
         \tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n\
         \tfield:u64 lat;\toffset:8;\tsize:8;\tsigned:0;\n"
    );
    let mut off = 16;
    for f in lat {
        let t = f.synth_type()?;
        let size = f.size();
        let decl = match t.strip_prefix("char[") {
            Some(n) => format!("char {}[{n}", f.name),
            None => format!("{t} {}", f.name),
        };
        text.push_str(&format!(
            "\tfield:{decl};\toffset:{off};\tsize:{size};\tsigned:{};\n",
            u8::from(f.signed())
        ));
        off += size.next_multiple_of(8);
    }
    text.push_str("\nprint fmt: \"lat=%llu\", REC->lat\n");
    EventFormat::parse(&text)
}

/// One key of the start's or the end's table: each matched field's value
/// as the kernel keys it (numbers widened to 64 bits, strings as text).
fn key_of(fields: &[&Field], data: &[u8]) -> Vec<u8> {
    let mut k = Vec::new();
    for f in fields {
        if f.is_string() {
            k.extend_from_slice(f.str(data).unwrap_or_default().as_bytes());
            k.push(0);
        } else {
            let v = if f.signed {
                f.i64(data).unwrap_or(0) as u64
            } else {
                f.u64(data).unwrap_or(0)
            };
            k.extend_from_slice(&v.to_ne_bytes());
        }
    }
    k
}

/// A start's saved time stamp and fields (the kernel's variables, read
/// once).
struct Saved {
    ts: u64,
    fields: Vec<Value>,
}

/// A field's value: a number widened to 64 bits as the kernel reads it,
/// or a string's bytes.
#[derive(Debug, Clone)]
enum Value {
    Num(u64),
    Bytes(Vec<u8>),
}

fn value(f: &Field, data: &[u8]) -> Value {
    if f.is_string() {
        Value::Bytes(f.bytes(data).map(<[u8]>::to_vec).unwrap_or_default())
    } else if f.signed {
        Value::Num(f.i64(data).unwrap_or(0) as u64)
    } else {
        Value::Num(f.u64(data).unwrap_or(0))
    }
}

/// Starts and ends paired from the buffer into latency records, which
/// the engine aggregates by SPEC.
struct Matcher {
    engine: Engine,
    start_id: u16,
    end_id: u16,
    fields: Vec<LatField>,
    nsecs: bool,
    starts: HashMap<Vec<u8>, Option<Saved>>,
    ends: HashSet<Vec<u8>>,
    lost_matches: u64,
    rec: Vec<u8>,
}

impl Matcher {
    fn stamp(&self, ts: u64) -> u64 {
        if self.nsecs {
            ts
        } else {
            ns2usecs(ts)
        }
    }

    fn start(&mut self, ev: &Event) {
        let keys: Vec<&Field> = self
            .fields
            .iter()
            .filter(|f| f.end_field.is_some())
            .map(|f| &f.field)
            .collect();
        let key = key_of(&keys, ev.data);
        if !self.starts.contains_key(&key) && self.starts.len() >= KEYS_TABLE {
            self.lost_matches += 1;
            return;
        }
        let saved = Saved {
            ts: self.stamp(ev.ts),
            fields: self
                .fields
                .iter()
                .map(|f| {
                    if f.from_start {
                        value(&f.field, ev.data)
                    } else {
                        Value::Num(0)
                    }
                })
                .collect(),
        };
        self.starts.insert(key, Some(saved));
    }

    fn end(&mut self, ev: &Event) {
        let keys: Vec<&Field> = self
            .fields
            .iter()
            .filter_map(|f| f.end_field.as_ref())
            .collect();
        let key = key_of(&keys, ev.data);
        let Some(saved) = self.starts.get_mut(&key).and_then(Option::take) else {
            return;
        };
        if !self.ends.contains(&key) {
            if self.ends.len() >= KEYS_TABLE {
                self.lost_matches += 1;
                return;
            }
            self.ends.insert(key);
        }
        let lat = self.stamp(ev.ts).wrapping_sub(saved.ts);
        let mut rec = std::mem::take(&mut self.rec);
        rec.clear();
        rec.extend_from_slice(&SYNTH_ID.to_ne_bytes());
        rec.extend_from_slice(&[0, 0]);
        rec.extend_from_slice(&ev.pid.to_ne_bytes());
        rec.extend_from_slice(&lat.to_ne_bytes());
        for (f, saved) in self.fields.iter().zip(saved.fields) {
            let v = match (&f.end_field, f.from_start) {
                (Some(e), _) => value(e, ev.data),
                (None, false) => value(&f.field, ev.data),
                (None, true) => saved,
            };
            let size = f.size();
            let at = rec.len();
            rec.resize(at + size.next_multiple_of(8), 0);
            match v {
                Value::Num(n) => rec[at..at + size].copy_from_slice(&n.to_ne_bytes()[..size]),
                Value::Bytes(b) => {
                    let n = b.len().min(size);
                    rec[at..at + n].copy_from_slice(&b[..n]);
                }
            }
        }
        let synth = Event {
            cpu: ev.cpu,
            ts: ev.ts,
            id: SYNTH_ID,
            pid: ev.pid,
            data: &rec,
        };
        self.engine.feed(&synth);
        self.rec = rec;
    }
}

impl Tables for Matcher {
    fn feed(&mut self, ev: &Event) {
        // The kernel runs the start's trigger first when one event is both.
        if ev.id == self.start_id {
            self.start(ev);
        }
        if ev.id == self.end_id {
            self.end(ev);
        }
    }
    fn lost(&mut self) {
        // A lost event may have been an end: a saved start would be paired
        // with a later end and give a latency that never happened.
        for s in self.starts.values_mut() {
            *s = None;
        }
    }
    fn text(&mut self) -> Result<String> {
        Ok(self.engine.render())
    }
    fn clear(&mut self) -> Result<()> {
        self.engine.clear();
        Ok(())
    }
    fn lost_matches(&mut self) -> Result<u64> {
        Ok(self.lost_matches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SWITCH: &str = "name: sched_switch\nID: 300\nformat:\n\
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n\
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n\
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n\
\tfield:char prev_comm[16];\toffset:8;\tsize:16;\tsigned:0;\n\
\tfield:pid_t next_pid;\toffset:24;\tsize:4;\tsigned:1;\n\
\tfield:int next_prio;\toffset:28;\tsize:4;\tsigned:1;\n\n\
print fmt: \"x\"\n";
    const WAKING: &str = "name: sched_waking\nID: 301\nformat:\n\
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n\
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n\
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n\
\tfield:char comm[16];\toffset:8;\tsize:16;\tsigned:0;\n\
\tfield:pid_t pid;\toffset:24;\tsize:4;\tsigned:1;\n\
\tfield:int prio;\toffset:28;\tsize:4;\tsigned:1;\n\n\
print fmt: \"x\"\n";

    fn plan(spec: &str, on: &[(&str, &str)]) -> Plan {
        Plan {
            start: event::parse("sched:sched_waking").unwrap(),
            end: event::parse("sched:sched_switch").unwrap(),
            spec: spec::split(spec).unwrap(),
            on: on
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        }
    }

    fn rec(id: u16, pid: i32, comm: &str, xpid: i32, prio: i32) -> Vec<u8> {
        let mut d = vec![0u8; 32];
        d[0..2].copy_from_slice(&id.to_ne_bytes());
        d[4..8].copy_from_slice(&pid.to_ne_bytes());
        d[8..8 + comm.len()].copy_from_slice(comm.as_bytes());
        d[24..28].copy_from_slice(&xpid.to_ne_bytes());
        d[28..32].copy_from_slice(&prio.to_ne_bytes());
        d
    }

    #[test]
    fn the_kernel_docs_wakeup_latency_in_user_space() {
        let (s, e) = (
            EventFormat::parse(WAKING).unwrap(),
            EventFormat::parse(SWITCH).unwrap(),
        );
        let p = plan("keys=pid,prio,lat:sort=pid,lat", &[("pid", "next_pid")]);
        let lat = fields(&p, &s, &e).unwrap();
        let names: Vec<&str> = lat.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["pid", "prio"]);
        assert!(lat[1].from_start);
        let r = recipe(&p, &lat, false).unwrap();
        assert_eq!(r.params, ["next_pid", "$ftt_s_prio"]);
        assert_eq!(
            r.start_vars[1],
            ("ftt_s_prio".to_string(), "prio".to_string())
        );
        assert_eq!(r.latency, "common_timestamp.usecs-$ftt_ts0");
        let synth = synth_format(&lat).unwrap();
        let c = spec::compile(&p.spec, &synth).unwrap();
        let mut m = Matcher {
            engine: Engine::new(c, CommCache::new(None)),
            start_id: 301,
            end_id: 300,
            fields: lat,
            nsecs: false,
            starts: HashMap::new(),
            ends: HashSet::new(),
            lost_matches: 0,
            rec: Vec::new(),
        };
        let ev = |d: &[u8], ts: u64| {
            let id = u16::from_ne_bytes([d[0], d[1]]);
            (id, ts, d.to_vec())
        };
        let evs = [
            ev(&rec(301, 1, "a", 77, 120), 1_000_000),
            // An end of another task: no start for it.
            ev(&rec(300, 5, "x", 78, 120), 1_100_000),
            ev(&rec(300, 5, "x", 77, 120), 1_250_400),
            // A second end without a new start: the variable was read.
            ev(&rec(300, 5, "x", 77, 120), 1_300_000),
            ev(&rec(301, 1, "a", 77, 100), 2_000_000),
            ev(&rec(301, 1, "a", 77, 100), 2_000_300),
            ev(&rec(300, 5, "x", 77, 100), 2_010_000),
        ];
        for (id, ts, d) in &evs {
            m.feed(&Event {
                cpu: 0,
                ts: *ts,
                id: *id,
                pid: 5,
                data: d,
            });
        }
        let t = m.text().unwrap();
        assert!(t.contains("# trigger info: hist:keys=pid,prio,lat:vals=hitcount:sort=pid,lat:size=2048 [active]"), "{t}");
        assert!(t.contains("{ pid:         77, prio:        100, lat:         10 } hitcount:          1\n{ pid:         77, prio:        120, lat:        250 } hitcount:          1\n"), "{t}");
        assert!(t.contains("Hits: 2\n"), "{t}");
    }

    #[test]
    fn per_syscall_latency_carries_the_end_events_id() {
        let fmt = |name: &str, id: u16, f: &str| {
            EventFormat::parse(&format!(
                "name: {name}\nID: {id}\nformat:\n\
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n\
\tfield:long id;\toffset:8;\tsize:8;\tsigned:1;\n\
\tfield:{f};\toffset:16;\tsize:8;\tsigned:1;\n\nprint fmt: \"x\"\n"
            ))
            .unwrap()
        };
        let s = fmt("sys_enter", 1, "unsigned long args[6]");
        let e = fmt("sys_exit", 2, "long ret");
        let mut p = plan("keys=id.syscall,lat.log2", &[("common_pid", "common_pid")]);
        p.start = event::parse("raw_syscalls:sys_enter").unwrap();
        let lat = fields(&p, &s, &e).unwrap();
        assert_eq!(
            lat.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(),
            ["pid", "id"]
        );
        assert!(!lat[1].from_start);
        let r = recipe(&p, &lat, true).unwrap();
        assert_eq!(r.params, ["common_pid", "id"]);
        assert_eq!(r.latency, "common_timestamp-$ftt_ts0");
        assert_eq!(
            r.fields
                .iter()
                .map(|f| f.ctype.as_str())
                .collect::<Vec<_>>(),
            ["u64", "int", "long"]
        );
        let bad = plan("keys=lat", &[("nosuch", "next_pid")]);
        assert!(fields(
            &bad,
            &EventFormat::parse(WAKING).unwrap(),
            &EventFormat::parse(SWITCH).unwrap()
        )
        .is_err());
    }
}
