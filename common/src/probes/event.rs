//! The events hist and funclatency work on: tracepoints (`SYSTEM:EVENT`) and probes made
//! for the run (`k:`/`kr:` kernel functions, `u:`/`ur:` user functions,
//! with the kprobe and uprobe definitions those tools take after `p:` or
//! `r:`). An event may end with `if FILTER` (the start and end of
//! `--latency`).

use crate::kernel::tracefs::Tracefs;
use crate::lifecycle::dynevent::{ProbeDef, ProbeGroup};
use crate::probes::argn::KernelArgs;
use crate::probes::kfuncs::Functions;
use crate::probes::{kprobe, tool as probetool, uprobe};
use crate::{Error, Result};

/// What an EVENT argument names.
#[derive(Debug, Clone)]
pub enum Kind {
    /// A tracepoint.
    Tracepoint {
        /// Its system.
        system: String,
        /// Its name.
        event: String,
    },
    /// A kprobe or kretprobe.
    Kprobe(kprobe::Definition),
    /// A uprobe or uretprobe.
    Uprobe(uprobe::Definition),
}

/// An EVENT argument.
#[derive(Debug, Clone)]
pub struct EventArg {
    /// As typed, for messages and the Tracing line.
    pub text: String,
    /// What it names.
    pub kind: Kind,
    /// Its `if FILTER`.
    pub filter: Option<String>,
}

/// Parses an EVENT argument.
pub fn parse(text: &str) -> Result<EventArg> {
    let t = text.trim();
    let probe = |prefix: &str, letter: char| {
        t.strip_prefix(prefix)
            .map(|rest| format!("{letter}:{}", rest.trim_start()))
    };
    let (kind, filter) = if let Some(d) = probe("k:", 'p').or_else(|| probe("kr:", 'r')) {
        let d = kprobe::parse(&d).map_err(|e| rename(e, text))?;
        let f = d.filter.clone();
        (Kind::Kprobe(d), f)
    } else if let Some(d) = probe("u:", 'p').or_else(|| probe("ur:", 'r')) {
        let d = uprobe::parse(&d).map_err(|e| rename(e, text))?;
        let f = d.filter.clone();
        (Kind::Uprobe(d), f)
    } else {
        let (tp, filter) = match t.find(" if ") {
            Some(p) => (t[..p].trim(), Some(t[p + 4..].trim().to_string())),
            None => (t, None),
        };
        let (system, event) = tp
            .split_once(':')
            .or_else(|| tp.split_once('/'))
            .filter(|(s, e)| ident(s) && ident(e))
            .ok_or_else(|| {
                Error::usage(format!(
                    "'{text}' is not an event: give SYSTEM:EVENT (a tracepoint, see tpoint -l), \
                     k:FUNC or kr:FUNC (a kernel function), u:TARGET:SYMBOL or ur:TARGET:SYMBOL \
                     (a user function)"
                ))
            })?;
        let kind = Kind::Tracepoint {
            system: system.to_string(),
            event: event.to_string(),
        };
        (kind, filter.filter(|f| !f.is_empty()))
    };
    if let Some(f) = &filter {
        crate::lifecycle::instance::check_one_line("filter", f)?;
    }
    Ok(EventArg {
        text: t.to_string(),
        kind,
        filter,
    })
}

fn ident(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A probe definition's error, naming the EVENT as typed.
fn rename(e: Error, text: &str) -> Error {
    Error::new(e.kind(), format!("{text}: {}", e.message()))
}

/// The probe an EVENT needs, checked (the kernel function exists, the
/// user symbol resolves, in `pid`'s files with -p); `None` for a
/// tracepoint, which must exist.
pub fn plan(tfs: &Tracefs, ev: &EventArg, pid: Option<u32>) -> Result<Option<ProbeDef>> {
    match &ev.kind {
        Kind::Tracepoint { system, event } => {
            if !tfs.exists(format!("events/{system}/{event}/format")) {
                let all = tfs.read("available_events").unwrap_or_default();
                let hint =
                    crate::base::glob::did_you_mean(&format!("{system}:{event}"), all.lines(), 3);
                return Err(Error::usage(format!(
                    "no tracepoint {system}:{event} on this kernel{hint} (tpoint -l lists them)"
                )));
            }
            Ok(None)
        }
        Kind::Kprobe(d) => {
            crate::kernel::caps::require(tfs, crate::kernel::caps::Feature::KprobeEvents)?;
            let funcs = Functions::load(tfs.read("available_filter_functions").ok());
            funcs.check(&d.location, false)?;
            let name = d.name.clone().unwrap_or_else(|| kprobe::default_name(d));
            let mut p = kprobe::probe(d, name);
            p.args = kprobe::kernel_args(d, &p.args, KernelArgs::read(tfs))?;
            Ok(Some(p))
        }
        Kind::Uprobe(d) => {
            crate::kernel::caps::require(tfs, crate::kernel::caps::Feature::UprobeEvents)?;
            let planned = uprobe::plan(vec![(d.clone(), None)], pid, false)?;
            if planned.iter().any(|p| p.pair.is_some()) {
                return Err(Error::usage(format!(
                    "{}: $argN at a return of a user function is paired with its entry by uprobe only; here, use u: for the arguments",
                    ev.text
                )));
            }
            Ok(planned.into_iter().next().map(|p| p.probe))
        }
    }
}

/// The probes of a run, and the `(system, event)` of each EVENT.
pub type Created = (Option<ProbeGroup>, Vec<(String, String)>);

/// Creates the probes of a run (in one group of ours, once killed runs'
/// state is swept) and returns the group and the `(system, event)` of
/// every EVENT, in order.
pub fn create(tfs: &Tracefs, evs: &[&EventArg], probes: &[Option<ProbeDef>]) -> Result<Created> {
    let defs: Vec<&ProbeDef> = probes.iter().flatten().collect();
    let (group, created) = if defs.is_empty() {
        crate::lifecycle::sweep::sweep_dead(tfs);
        (None, Vec::new())
    } else {
        match probetool::create_all(tfs, defs, false)? {
            Some((g, c)) => (Some(g), c),
            None => (None, Vec::new()),
        }
    };
    let mut made = created.into_iter();
    let mut out = Vec::new();
    for (ev, p) in evs.iter().zip(probes) {
        match (&ev.kind, p) {
            (Kind::Tracepoint { system, event }, _) => out.push((system.clone(), event.clone())),
            (_, Some(_)) => {
                let (name, _) = made
                    .next()
                    .ok_or_else(|| Error::usage("a probe was not created"))?;
                let g = group
                    .as_ref()
                    .map(|g| g.group().to_string())
                    .unwrap_or_default();
                out.push((g, name));
            }
            (_, None) => return Err(Error::usage(format!("{}: no probe", ev.text))),
        }
    }
    Ok((group, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracepoints_and_probes() {
        let e = parse("syscalls:sys_exit_read").unwrap();
        assert!(
            matches!(e.kind, Kind::Tracepoint { ref system, ref event } if system == "syscalls" && event == "sys_exit_read")
        );
        let e = parse("sched/sched_switch if next_pid == 1").unwrap();
        assert_eq!(e.filter.as_deref(), Some("next_pid == 1"));
        let e = parse("k:vfs_read count=%dx:u64").unwrap();
        match &e.kind {
            Kind::Kprobe(d) => assert_eq!(d.args, ["count=%dx:u64"]),
            k => panic!("{k:?}"),
        }
        let e = parse("kr:vfs_read ret=$retval:s64 if ret < 0").unwrap();
        assert_eq!(e.filter.as_deref(), Some("ret < 0"));
        let e = parse("u:libc:malloc size=%di:u64").unwrap();
        match &e.kind {
            Kind::Uprobe(d) => assert_eq!(d.location.symbol, "malloc"),
            k => panic!("{k:?}"),
        }
        assert!(matches!(
            parse("ur:libc:malloc").unwrap().kind,
            Kind::Uprobe(_)
        ));
        for bad in [
            "nocolon",
            "a:b:c",
            "k:",
            "u:libc",
            "x y:z",
            "k:vfs_read\n-:x",
            "a:b if x\ny",
        ] {
            assert_eq!(parse(bad).unwrap_err().exit_code(), 2, "{bad}");
        }
    }
}
