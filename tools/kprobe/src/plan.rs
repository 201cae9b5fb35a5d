//! From the command line to probes ready to be created: the definitions
//! (positional and `-e`), their names, kernel lines and `--hist` fields,
//! and the aggregate state of each probe.

use crate::agg::{ByKey, HistOf, ProbeAgg};
use crate::cli::Args;
use crate::spec::{self, Definition, Kind};
use ftrace_common::app::output::Log2Hist;
use ftrace_common::buffer::format::{EventFormat, FieldKind};
use ftrace_common::lifecycle::dynevent::ProbeDef;
use ftrace_common::probes::pair::PairPlan;
use ftrace_common::probes::tool as probetool;
use ftrace_common::{Error, Result};

/// A probe checked and ready to be created.
#[derive(Debug)]
pub struct Planned {
    pub def: Definition,
    pub probe: ProbeDef,
    pub filter: Option<String>,
    /// The argument field `--hist` reads in this probe, if it has it, and
    /// whether its values are to be read as signed.
    pub hist_field: Option<(String, bool)>,
    /// For a return probe with `$argN` the kernel cannot give: the entry
    /// probe that records the arguments, and how the two pair.
    pub pair: Option<(ProbeDef, PairPlan)>,
}

/// The definitions given: the positional one (with the positional filter)
/// and every -e.
pub fn definitions(args: &Args) -> Result<Vec<(Definition, Option<String>)>> {
    let out = probetool::definitions(
        "kprobe",
        args.definition.as_deref(),
        args.probe.filter.as_deref(),
        &args.probe.probes,
        "no probe given: e.g. kprobe p:do_sys_open (see kprobe -h)",
    )?;
    // Refused now rather than after the probes exist.
    for (_, f) in &out {
        if let Some(f) = f {
            ftrace_common::lifecycle::instance::check_one_line("filter", f)?;
        }
    }
    Ok(out)
}

/// Names, kernel lines and the `--hist` field of each definition; nothing
/// is written yet.
pub fn plan(defs: Vec<(Definition, Option<String>)>, hist: Option<&str>) -> Result<Vec<Planned>> {
    let names: Vec<String> = defs
        .iter()
        .map(|(d, _)| d.name.clone().unwrap_or_else(|| spec::default_name(d)))
        .collect();
    let mut out = Vec::new();
    for (i, (def, filter)) in defs.into_iter().enumerate() {
        let mut name = names[i].clone();
        // perf-tools names p: and r: probes of a function alike; in one run
        // the return probe says what it is.
        if def.name.is_none()
            && def.kind == Kind::Return
            && names.iter().enumerate().any(|(j, n)| j != i && *n == name)
        {
            name.push_str("_ret");
        }
        let mut args = def.args.clone();
        let mut hist_field = None;
        if let Some(h) = hist {
            let fields = spec::arg_field_names(&args);
            if h == "$retval" {
                if def.kind == Kind::Return {
                    match args.iter().position(|a| spec::arg_fetch(a) == "$retval") {
                        Some(k) => {
                            // Untyped, the kernel records it as x64: read
                            // it as signed, since errors are negative.
                            let typed = args[k].rsplit_once(':').is_some();
                            hist_field = Some((fields[k].clone(), !typed));
                        }
                        None => {
                            if fields.iter().any(|f| f == "retval") {
                                return Err(Error::usage(format!(
                                    "probe {name}: an argument is already named retval; give $retval its own name and use --hist NAME"
                                )));
                            }
                            args.push("retval=$retval:s64".to_string());
                            hist_field = Some(("retval".to_string(), false));
                        }
                    }
                }
            } else if fields.iter().any(|f| f == h) {
                hist_field = Some((h.to_string(), false));
            }
        }
        let probe = ProbeDef {
            args,
            ..spec::probe(&def, name)
        };
        // Refuse a line that could not be written before touching tracefs.
        probe.line("ftrace_tools_check")?;
        out.push(Planned {
            def,
            probe,
            filter,
            hist_field,
            pair: None,
        });
    }
    if let Some(h) = hist {
        if out.iter().all(|p| p.hist_field.is_none()) {
            return Err(Error::usage(if h == "$retval" {
                "--hist '$retval' needs a return probe (r:FUNC)".to_string()
            } else {
                format!("--hist {h}: no probe has an argument named {h} (name one with {h}=FETCHARG, e.g. '{h}=%di')")
            }));
        }
    }
    Ok(out)
}

/// The aggregate state of one created probe, its `--by` and `--hist`
/// fields resolved through the event's format.
pub fn make_agg(name: &str, fmt: &EventFormat, p: &Planned, args: &Args) -> Result<ProbeAgg> {
    let mut a = ProbeAgg::new(name.to_string());
    if let Some(by) = &args.by {
        let key = match fmt.field(by) {
            Some(f) if !f.name.starts_with("__probe_") => ByKey::Field(f.clone()),
            _ if by == "comm" => ByKey::Comm,
            _ if by == "pid" => ByKey::Pid,
            _ => {
                return Err(Error::usage(format!(
                    "--by {by}: probe {name} has no argument named {by} (nor is it comm or pid)"
                )))
            }
        };
        a.by = Some((by.clone(), key));
    }
    if let Some((field, force_signed)) = &p.hist_field {
        let f = fmt.require(field)?.clone();
        if !matches!(f.kind, FieldKind::Scalar) {
            return Err(Error::usage(format!(
                "--hist {field}: the argument {field} of probe {name} is not a number ({}); give it a numeric type, e.g. {field}=%di:u64",
                f.ctype
            )));
        }
        let signed = f.signed || *force_signed;
        a.hist = Some(HistOf {
            field: f,
            signed,
            hist: Log2Hist::new(),
            negative: 0,
            min_negative: 0,
        });
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(v: &[&str]) -> Args {
        Args::try_parse_from(std::iter::once("kprobe").chain(v.iter().copied())).unwrap()
    }

    #[test]
    fn definitions_positional_and_repeated() {
        let d = definitions(&args(&[
            "p:do_sys_open file=+0(%si):string",
            "file ~ \"*stat\"",
        ]))
        .unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].1.as_deref(), Some("file ~ \"*stat\""));
        let d = definitions(&args(&[
            "-e",
            "p:vfs_read",
            "-e",
            "r:vfs_read ret=$retval:s64 if ret < 0",
        ]))
        .unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d[1].1.as_deref(), Some("ret < 0"));
        // A second definition where the filter goes is explained.
        let e = definitions(&args(&["p:vfs_read", "p:vfs_write"])).unwrap_err();
        assert!(e.to_string().contains("-e"), "{e}");
        assert!(definitions(&args(&[])).is_err());
        assert!(definitions(&args(&["p:vfs_read if a > 1", "a > 2"])).is_err());
    }

    #[test]
    fn plan_names_and_hist_fields() {
        let p = plan(
            definitions(&args(&["-e", "p:vfs_read", "-e", "r:vfs_read"])).unwrap(),
            None,
        )
        .unwrap();
        assert_eq!(p[0].probe.name, "vfs_read");
        assert_eq!(p[1].probe.name, "vfs_read_ret");
        // --hist $retval adds the argument to return probes that lack it.
        let p = plan(
            definitions(&args(&["-e", "p:vfs_read", "-e", "r:vfs_read"])).unwrap(),
            Some("$retval"),
        )
        .unwrap();
        assert_eq!(p[0].hist_field, None);
        assert_eq!(p[1].probe.args, ["retval=$retval:s64"]);
        assert_eq!(p[1].hist_field, Some(("retval".into(), false)));
        // ... and uses the one that is there, read as signed when untyped.
        let p = plan(
            definitions(&args(&["r:vfs_read $retval"])).unwrap(),
            Some("$retval"),
        )
        .unwrap();
        assert_eq!(p[0].probe.args, ["$retval"]);
        assert_eq!(p[0].hist_field, Some(("arg1".into(), true)));
        let p = plan(
            definitions(&args(&["r:vfs_read n=$retval:u32"])).unwrap(),
            Some("$retval"),
        )
        .unwrap();
        assert_eq!(p[0].hist_field, Some(("n".into(), false)));
        let p = plan(
            definitions(&args(&["p:vfs_read count=%dx:u64"])).unwrap(),
            Some("count"),
        )
        .unwrap();
        assert_eq!(p[0].hist_field, Some(("count".into(), false)));
        for (a, h) in [
            (&["p:vfs_read"][..], "$retval"),
            (&["p:vfs_read count=%dx"][..], "size"),
            (&["r:vfs_read retval=%ax"][..], "$retval"),
        ] {
            let e = plan(definitions(&args(a)).unwrap(), Some(h)).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{a:?} {h}");
        }
        // An injected line is refused before anything is written.
        let e = plan(
            vec![(spec::parse("p:vfs_read").unwrap(), None)]
                .into_iter()
                .map(|(mut d, f)| {
                    d.args.push("x;y".into());
                    (d, f)
                })
                .collect(),
            None,
        )
        .unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }
}
