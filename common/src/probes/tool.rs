//! What `kprobe` and `uprobe` do alike around their probes, beyond the
//! definition's shape ([`crate::probes::spec`]): gather the definitions of a
//! command line (`DEFINITION [FILTER]` and each `-e`), create the probes,
//! show their formats (`-v`), say what is traced, and format an event's
//! addresses and arguments (the printer of `app` does the rest).
//!
//! What differs stays in the tools: kernel or user symbols, modules or
//! files, how a PID is followed. Plain functions; the tools pass in what is
//! theirs.

use crate::buffer::format::{EventFormat, Field};
use crate::buffer::printfmt::{EventText, Kernel, Lookups};
use crate::buffer::reader::Event;
use crate::kernel::tracefs::Tracefs;
use crate::lifecycle::dynevent::{ProbeDef, ProbeGroup};
use crate::probes::args::ArgStyles;
use crate::probes::pair::{Pairs, ProcessMemory};
use crate::probes::spec::{Definition, Kind, Location};
use crate::sym::kallsyms::KernelSyms;
use crate::{Error, Result};

/// The definitions of a command line, each with its filter: the positional
/// one (with the positional FILTER, or its own `if FILTER`) and every `-e`.
/// `none` is the message when there is none.
pub fn definitions<L: Location>(
    tool: &str,
    definition: Option<&str>,
    filter: Option<&str>,
    probes: &[String],
    none: &str,
) -> Result<Vec<(Definition<L>, Option<String>)>> {
    let mut out = Vec::new();
    if let Some(text) = definition {
        let d = L::parse_definition(text)?;
        if let Some(f) = filter {
            if L::looks_like_definition(f) {
                return Err(Error::usage(format!(
                    "'{f}' looks like a second probe definition, but the second argument is the FILTER; give several probes with -e, e.g. {tool} -e '{text}' -e '{f}'"
                )));
            }
            if d.filter.is_some() {
                return Err(Error::usage(
                    "the definition already ends with `if FILTER`; give the filter once",
                ));
            }
        }
        let filter = filter.map(str::to_string).or(d.filter.clone());
        out.push((d, filter));
    } else if filter.is_some() {
        return Err(Error::usage("a FILTER needs a definition before it"));
    }
    for text in probes {
        let d = L::parse_definition(text)?;
        let f = d.filter.clone();
        out.push((d, f));
    }
    if out.is_empty() {
        return Err(Error::usage(none));
    }
    Ok(out)
}

/// The name and kernel line of each probe created, in order.
pub type Created = Vec<(String, String)>;

/// Creates the probes in a new group of this run's, once what killed runs
/// left is swept: the group (which removes them when it drops; declare it
/// before the instance that enables them, so that the instance goes
/// first) and the name and line of each. With `view` (`-v`), prints each
/// probe's line and the event format the kernel made of it instead,
/// removes them, and returns `None`.
pub fn create_all<'a>(
    tfs: &Tracefs,
    probes: impl IntoIterator<Item = &'a ProbeDef>,
    view: bool,
) -> Result<Option<(ProbeGroup, Created)>> {
    crate::lifecycle::sweep::sweep_dead(tfs);
    let mut group = ProbeGroup::new(tfs);
    let created = create(&mut group, probes)?;
    if view {
        print!("{}", formats(tfs, &group, &created)?);
        return Ok(None);
    }
    Ok(Some((group, created)))
}

/// Creates the probes in the group; the name and line of each.
pub fn create<'a>(
    group: &mut ProbeGroup,
    probes: impl IntoIterator<Item = &'a ProbeDef>,
) -> Result<Vec<(String, String)>> {
    let mut created = Vec::new();
    for p in probes {
        let made = group.add(p)?;
        created.push((made.name.clone(), made.line.clone()));
    }
    Ok(created)
}

/// `-v`: each created probe's line and the event format the kernel made of
/// it, as text to print.
pub fn formats(tfs: &Tracefs, group: &ProbeGroup, created: &[(String, String)]) -> Result<String> {
    let mut s = String::new();
    for (i, (name, line)) in created.iter().enumerate() {
        let text = tfs.read(format!("events/{}/{name}/format", group.group()))?;
        if i > 0 {
            s.push('\n');
        }
        s.push_str(&format!("# {line}\n{text}"));
    }
    Ok(s)
}

/// `NAME (p:NAME LOCATION ARGS)`, a probe as the tracing line names it.
pub fn describe(kind: Kind, name: &str, probe: &ProbeDef) -> String {
    let mut s = format!("{name} ({}:{name} {}", kind.letter(), probe.location);
    for a in &probe.args {
        s.push(' ');
        s.push_str(a);
    }
    s.push(')');
    s
}

/// `NAME (r:NAME LOCATION ARGS, paired with ENTRY)`: a return probe whose
/// `$argN` come from an entry probe of the run, with the arguments as the
/// user gave them (the kernel's are in `-v`).
pub fn describe_paired(name: &str, probe: &ProbeDef, user_args: &[String], entry: &str) -> String {
    let shown = ProbeDef {
        args: user_args.to_vec(),
        ..probe.clone()
    };
    let mut s = describe(Kind::Return, name, &shown);
    s.pop();
    s.push_str(&format!(", paired with the entry probe {entry})"));
    s
}

/// `kprobe A (...)` or `kprobes A (...), B (...)`: what the tracing line
/// names.
pub fn tracing_what(tool: &str, described: &[String]) -> String {
    format!(
        "{tool}{} {}",
        if described.len() > 1 { "s" } else { "" },
        described.join(", ")
    )
}

/// Where the addresses of an event are: `__probe_ip` for entries,
/// `__probe_func` and `__probe_ret_ip` for returns.
pub enum Addrs {
    /// An entry probe: where it fired.
    Entry(Field),
    /// A return probe: the function and where it returned to.
    Return {
        /// `__probe_func`.
        func: Field,
        /// `__probe_ret_ip`.
        ret: Field,
    },
}

/// One created probe, as a printer needs it.
pub struct ProbeOut {
    /// The event id.
    pub id: u16,
    /// The event name.
    pub name: String,
    /// Its addresses.
    pub addrs: Addrs,
    /// Its arguments.
    pub args: Vec<Field>,
    /// The arguments' text, compiled from the event's `print fmt` as the
    /// kernel prints it.
    pub text: EventText,
    /// How the kernel prints each argument: for JSON, and for the text of
    /// an event whose `print fmt` the renderer cannot evaluate.
    pub styles: ArgStyles,
}

impl ProbeOut {
    /// The probe `name` of this kind, through its event format.
    pub fn new(name: String, kind: Kind, fmt: &EventFormat) -> Result<ProbeOut> {
        let addrs = match kind {
            Kind::Entry => Addrs::Entry(fmt.require("__probe_ip")?.clone()),
            Kind::Return => Addrs::Return {
                func: fmt.require("__probe_func")?.clone(),
                ret: fmt.require("__probe_ret_ip")?.clone(),
            },
        };
        let args = fmt
            .fields
            .iter()
            .filter(|f| !f.name.starts_with("__probe_"))
            .cloned()
            .collect();
        Ok(ProbeOut {
            id: fmt.id,
            name,
            addrs,
            args,
            text: EventText::probe_args(fmt, Kernel::this()),
            styles: ArgStyles::parse(&fmt.print_fmt),
        })
    }

    /// The probe of a kprobe or uprobe event format, its kind told by its
    /// address fields (for events read from a file); `None` for other
    /// events.
    pub fn from_format(fmt: &EventFormat) -> Option<ProbeOut> {
        let kind = if fmt.field("__probe_ip").is_some() {
            Kind::Entry
        } else if fmt.field("__probe_func").is_some() && fmt.field("__probe_ret_ip").is_some() {
            Kind::Return
        } else {
            return None;
        };
        ProbeOut::new(fmt.name.clone(), kind, fmt).ok()
    }

    /// ` NAME=VALUE` for each argument, as the kernel prints them.
    pub fn write_args(&self, line: &mut String, data: &[u8], look: Lookups) {
        if self.text.fallback().is_none() {
            self.text.write(data, look, line);
            return;
        }
        for f in &self.args {
            line.push(' ');
            self.styles.write(f, data, line);
        }
    }

    /// The arguments as a JSON object.
    pub fn args_json(&self, data: &[u8]) -> serde_json::Value {
        let mut args = serde_json::Map::new();
        for f in &self.args {
            args.insert(f.name.clone(), self.styles.json(f, data));
        }
        serde_json::Value::Object(args)
    }
}

/// How a probe event's addresses print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrStyle {
    /// In hex, as the kernel prints uprobe events: `(0x55d0c1a3b2f0)`.
    Hex,
    /// As the kernel's `%pS` prints kernel addresses:
    /// `(do_sys_openat2+0x0/0x170)`.
    Kernel,
}

/// The probes of a run, as the event printer shows them: the text after
/// `NAME:` is `(ADDR)` for an entry, `(RET <- FUNC)` for a return, then
/// each argument as the kernel prints it.
pub struct ProbeEvents {
    /// The probes, in the order they were given.
    pub probes: Vec<ProbeOut>,
    by_id: std::collections::HashMap<u16, usize>,
    style: AddrStyle,
    /// Return probes paired with entry probes (`$argN` at a return).
    pub pairs: Pairs,
}

impl ProbeEvents {
    /// The created probes, their addresses printed in `style`.
    pub fn new(probes: Vec<ProbeOut>, style: AddrStyle) -> ProbeEvents {
        ProbeEvents {
            by_id: probes.iter().enumerate().map(|(i, p)| (p.id, i)).collect(),
            probes,
            style,
            pairs: Pairs::default(),
        }
    }

    /// One line for stderr at the end when pairing missed something, else
    /// `None`.
    pub fn pair_note(&self) -> Option<String> {
        let p = &self.pairs;
        let (u, d, w) = (p.unpaired, p.dropped, p.waiting());
        if u + d == 0 {
            return None;
        }
        Some(format!(
            "$argN at a return: {u} return(s) not shown for want of their entry (begun before tracing, or lost), {d} entr(ies) dropped (lost events, threads gone); {w} call(s) had not returned"
        ))
    }

    /// The index of the probe whose event id this is.
    pub fn index(&self, id: u16) -> Option<usize> {
        self.by_id.get(&id).copied()
    }

    fn addr(&self, ksyms: &mut KernelSyms, a: u64, with_offset: bool) -> String {
        match self.style {
            AddrStyle::Hex => format!("0x{a:x}"),
            AddrStyle::Kernel if with_offset => ksyms.get(a, true).to_string(),
            AddrStyle::Kernel => ksyms.get(a, false).to_string(),
        }
    }

    /// ` (ADDR) ARG=VALUE...` of probe `i`'s event.
    pub fn write_text(&mut self, i: usize, ev: &Event, look: Lookups, line: &mut String) {
        let data = ev.data;
        let p = &self.probes[i];
        let ksyms = &mut *look.syms;
        line.push_str(" (");
        match &p.addrs {
            Addrs::Entry(ip) => line.push_str(&self.addr(ksyms, ip.u64(data).unwrap_or(0), true)),
            Addrs::Return { func, ret } => {
                line.push_str(&self.addr(ksyms, ret.u64(data).unwrap_or(0), true));
                line.push_str(" <- ");
                line.push_str(&self.addr(ksyms, func.u64(data).unwrap_or(0), false));
            }
        }
        line.push(')');
        if self.pairs.is_paired(i) {
            self.pairs
                .write(i, ev.pid, data, &mut ProcessMemory, line, None);
        } else {
            p.write_args(line, data, look);
        }
    }

    /// The JSON members of probe `i`'s event: `ip` (or `func` and `ret`)
    /// and `args`.
    pub fn write_json(
        &mut self,
        i: usize,
        ev: &Event,
        ksyms: &mut KernelSyms,
        obj: &mut serde_json::Map<String, serde_json::Value>,
    ) {
        let data = ev.data;
        let p = &self.probes[i];
        let short = |ksyms: &mut KernelSyms, a: u64| match self.style {
            AddrStyle::Hex => format!("0x{a:x}"),
            AddrStyle::Kernel => ksyms.short(a),
        };
        match &p.addrs {
            Addrs::Entry(ip) => {
                obj.insert("ip".into(), short(ksyms, ip.u64(data).unwrap_or(0)).into());
            }
            Addrs::Return { func, ret } => {
                let f = self.addr(ksyms, func.u64(data).unwrap_or(0), false);
                obj.insert("func".into(), f.into());
                obj.insert(
                    "ret".into(),
                    short(ksyms, ret.u64(data).unwrap_or(0)).into(),
                );
            }
        }
        if self.pairs.is_paired(i) {
            let mut ignored = String::new();
            self.pairs
                .write(i, ev.pid, data, &mut ProcessMemory, &mut ignored, Some(obj));
        } else {
            obj.insert("args".into(), p.args_json(data));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A location is the definition's text, `if` starting the filter.
    #[derive(Debug)]
    struct Loc(String);

    impl Location for Loc {
        fn parse_definition(text: &str) -> Result<Definition<Loc>> {
            let Some(t) = text.strip_prefix("p:") else {
                return Err(Error::usage("not p:"));
            };
            let (loc, filter) = match t.split_once(" if ") {
                Some((d, f)) => (d, Some(f.to_string())),
                None => (t, None),
            };
            Ok(Definition {
                kind: Kind::Entry,
                name: None,
                location: Loc(loc.to_string()),
                args: Vec::new(),
                filter,
            })
        }
    }

    fn defs(
        def: Option<&str>,
        filter: Option<&str>,
        e: &[&str],
    ) -> Result<Vec<(Definition<Loc>, Option<String>)>> {
        let e: Vec<String> = e.iter().map(|s| s.to_string()).collect();
        definitions("t", def, filter, &e, "none given")
    }

    #[test]
    fn definitions_and_their_filters() {
        let d = defs(Some("p:a"), Some("x > 1"), &["p:b if y", "p:c"]).unwrap();
        let got: Vec<(&str, Option<&str>)> = d
            .iter()
            .map(|(d, f)| (d.location.0.as_str(), f.as_deref()))
            .collect();
        assert_eq!(got, [("a", Some("x > 1")), ("b", Some("y")), ("c", None)]);
        let d = defs(Some("p:a if z"), None, &[]).unwrap();
        assert_eq!(d[0].1.as_deref(), Some("z"));
        for (def, filter, why) in [
            (Some("p:a"), Some("p:b"), "e.g. t -e 'p:a' -e 'p:b'"),
            (Some("p:a if z"), Some("x"), "give the filter once"),
            (None, Some("x"), "a FILTER needs a definition"),
            (None, None, "none given"),
            (Some("q:a"), None, "not p:"),
        ] {
            let e = defs(def, filter, &[]).unwrap_err();
            assert_eq!(e.exit_code(), 2);
            assert!(e.to_string().contains(why), "{e}");
        }
    }

    #[test]
    fn tracing_lines() {
        let p = ProbeDef {
            kind: crate::lifecycle::dynevent::ProbeKind::Kretprobe,
            name: "f".into(),
            location: "f".into(),
            args: vec!["$retval".into()],
        };
        let one = describe(Kind::Return, "f", &p);
        assert_eq!(one, "f (r:f f $retval)");
        assert_eq!(
            tracing_what("kprobe", std::slice::from_ref(&one)),
            "kprobe f (r:f f $retval)"
        );
        assert_eq!(
            describe_paired("f", &p, &["n=$arg3".into()], "f_entry"),
            "f (r:f f n=$arg3, paired with the entry probe f_entry)"
        );
        assert_eq!(
            tracing_what("uprobe", &[one.clone(), one]),
            "uprobes f (r:f f $retval), f (r:f f $retval)"
        );
    }
}
