//! What `kprobe` and `uprobe` do alike around their probes, beyond the
//! definition's shape ([`crate::probespec`]): gather the definitions of a
//! command line (`DEFINITION [FILTER]` and each `-e`), create the probes,
//! show their formats (`-v`), say what is traced, and print an event and
//! its stack in ftrace's text shape or as JSON.
//!
//! What differs stays in the tools: kernel or user symbols, modules or
//! files, how a PID is followed. Plain functions; the tools pass in what is
//! theirs.

use crate::dynevent::{ProbeDef, ProbeGroup};
use crate::format::{EventFormat, Field};
use crate::output::Output;
use crate::probeargs::ArgStyles;
use crate::probespec::Kind;
use crate::reader::{Event, Flow};
use crate::tracefs::Tracefs;
use crate::{Error, ErrorKind, Result};
use std::fmt::Write;
use std::time::{Duration, Instant};

/// Phase timings on stderr when FTRACE_TOOLS_TIMING is set (benchmarks).
pub struct Timing {
    on: bool,
    start: Instant,
}

impl Timing {
    /// Starts the clock.
    pub fn new() -> Timing {
        Timing {
            on: std::env::var_os("FTRACE_TOOLS_TIMING").is_some(),
            start: Instant::now(),
        }
    }

    /// `timing: WHAT at N ms`, if asked for.
    pub fn mark(&self, what: &str) {
        if self.on {
            eprintln!(
                "timing: {what} at {:.3} ms",
                self.start.elapsed().as_secs_f64() * 1e3
            );
        }
    }
}

impl Default for Timing {
    fn default() -> Timing {
        Timing::new()
    }
}

/// A tool's parsed definition, as [`definitions`] needs it.
pub trait Definition: Sized {
    /// Parses one definition.
    fn parse(text: &str) -> Result<Self>;
    /// The filter after `if`, if any.
    fn filter(&self) -> Option<&str>;
    /// Whether a positional FILTER is rather a second definition.
    fn looks_like_definition(text: &str) -> bool {
        Self::parse(text).is_ok()
    }
}

/// The definitions of a command line, each with its filter: the positional
/// one (with the positional FILTER, or its own `if FILTER`) and every `-e`.
/// `none` is the message when there is none.
pub fn definitions<D: Definition>(
    tool: &str,
    definition: Option<&str>,
    filter: Option<&str>,
    probes: &[String],
    none: &str,
) -> Result<Vec<(D, Option<String>)>> {
    let mut out = Vec::new();
    if let Some(text) = definition {
        let d = D::parse(text)?;
        if let Some(f) = filter {
            if D::looks_like_definition(f) {
                return Err(Error::usage(format!(
                    "'{f}' looks like a second probe definition, but the second argument is the FILTER; give several probes with -e, e.g. {tool} -e '{text}' -e '{f}'"
                )));
            }
            if d.filter().is_some() {
                return Err(Error::usage(
                    "the definition already ends with `if FILTER`; give the filter once",
                ));
            }
        }
        let filter = filter.or(d.filter()).map(str::to_string);
        out.push((d, filter));
    } else if filter.is_some() {
        return Err(Error::usage("a FILTER needs a definition before it"));
    }
    for text in probes {
        let d = D::parse(text)?;
        let f = d.filter().map(str::to_string);
        out.push((d, f));
    }
    if out.is_empty() {
        return Err(Error::usage(none));
    }
    Ok(out)
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
/// it.
pub fn show_formats(tfs: &Tracefs, group: &ProbeGroup, created: &[(String, String)]) -> Result<()> {
    let mut out = Output::new();
    for (i, (name, line)) in created.iter().enumerate() {
        let text = tfs.read(format!("events/{}/{name}/format", group.group()))?;
        if i > 0 {
            out.line("");
        }
        out.line(&format!("# {line}"));
        if out.text(&text) == Flow::Stop {
            break;
        }
    }
    out.flush();
    Ok(())
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

/// `Tracing TOOLs A (...), B (...)SCOPE. Ctrl-C to end.`
pub fn tracing_line(tool: &str, what: &[String], scope: &str) -> String {
    format!(
        "Tracing {tool}{} {}{scope}. Ctrl-C to end.",
        if what.len() > 1 { "s" } else { "" },
        what.join(", "),
    )
}

/// ` for PID N` or ` for TID N`, for the tracing line.
pub fn for_task(pid: Option<u32>, tid: Option<u32>) -> Option<String> {
    match (pid, tid) {
        (Some(p), _) => Some(format!(" for PID {p}")),
        (_, Some(t)) => Some(format!(" for TID {t}")),
        _ => None,
    }
}

/// ` for N s`, for the tracing line.
pub fn for_duration(d: Option<Duration>) -> Option<String> {
    d.map(|d| format!(" for {} s", d.as_secs_f64()))
}

/// `-H`: the column headers of ftrace's text shape.
pub fn headers(out: &mut Output) {
    out.line("#            TASK-PID     CPU#   TIMESTAMP  FUNCTION");
    out.line("#               | |         |       |         |");
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
    /// How the kernel prints the arguments.
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
            styles: ArgStyles::parse(&fmt.print_fmt),
        })
    }

    /// `COMM-PID [CPU] SECS.USECS: NAME: `, as ftrace's text starts a line.
    pub fn write_head(&self, line: &mut String, ev: &Event, comm: &str) {
        let _ = write!(
            line,
            "{comm:>16}-{:<7} [{:03}] {}.{:06}: {}: ",
            ev.pid,
            ev.cpu,
            ev.ts / 1_000_000_000,
            (ev.ts % 1_000_000_000) / 1000,
            self.name
        );
    }

    /// ` NAME=VALUE` for each argument.
    pub fn write_args(&self, line: &mut String, data: &[u8]) {
        for f in &self.args {
            line.push(' ');
            self.styles.write(f, data, line);
        }
    }

    /// The event as JSON, with the addresses as the tool names them
    /// (`ip`, or `func` and `ret`).
    pub fn json(&self, ev: &Event, comm: &str, addrs: Vec<(&str, String)>) -> serde_json::Value {
        let mut args = serde_json::Map::new();
        for f in &self.args {
            args.insert(f.name.clone(), self.styles.json(f, ev.data));
        }
        let mut v = serde_json::json!({
            "ts": ev.ts, "cpu": ev.cpu, "pid": ev.pid, "comm": comm,
            "event": self.name,
        });
        for (k, a) in addrs {
            v[k] = a.into();
        }
        v["args"] = serde_json::Value::Object(args);
        v
    }
}

/// The stack recorded after an event: ` => FRAME` lines, or one JSON object
/// with the frames under `key` (`kernel_stack`, `user_stack`).
pub fn print_stack(
    out: &mut Output,
    json: bool,
    ev: &Event,
    key: &str,
    frames: Vec<String>,
) -> Flow {
    if json {
        let mut v = serde_json::json!({ "ts": ev.ts, "cpu": ev.cpu, "pid": ev.pid });
        v[key] = frames.into();
        return out.json(&v);
    }
    for f in frames {
        if out.line(&format!(" => {f}")) == Flow::Stop {
            return Flow::Stop;
        }
    }
    Flow::Continue
}

/// Flushes the output at the end; a write error (not a closed pipe) is the
/// run's error.
pub fn finish(out: &mut Output) -> Result<()> {
    out.flush();
    if let Some(e) = out.take_error() {
        return Err(Error::new(ErrorKind::Io, format!("writing output: {e}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A definition is its text, `if` starting the filter.
    #[derive(Debug)]
    struct Def(String, Option<String>);

    impl Definition for Def {
        fn parse(text: &str) -> Result<Def> {
            let Some(t) = text.strip_prefix("p:") else {
                return Err(Error::usage("not p:"));
            };
            Ok(match t.split_once(" if ") {
                Some((d, f)) => Def(d.to_string(), Some(f.to_string())),
                None => Def(t.to_string(), None),
            })
        }

        fn filter(&self) -> Option<&str> {
            self.1.as_deref()
        }
    }

    fn defs(
        def: Option<&str>,
        filter: Option<&str>,
        e: &[&str],
    ) -> Result<Vec<(Def, Option<String>)>> {
        let e: Vec<String> = e.iter().map(|s| s.to_string()).collect();
        definitions("t", def, filter, &e, "none given")
    }

    #[test]
    fn definitions_and_their_filters() {
        let d = defs(Some("p:a"), Some("x > 1"), &["p:b if y", "p:c"]).unwrap();
        let got: Vec<(&str, Option<&str>)> = d
            .iter()
            .map(|(d, f)| (d.0.as_str(), f.as_deref()))
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
            kind: crate::dynevent::ProbeKind::Kretprobe,
            name: "f".into(),
            location: "f".into(),
            args: vec!["$retval".into()],
        };
        let one = describe(Kind::Return, "f", &p);
        assert_eq!(one, "f (r:f f $retval)");
        assert_eq!(
            tracing_line(
                "kprobe",
                std::slice::from_ref(&one),
                &for_task(Some(3), None).unwrap_or_default()
            ),
            "Tracing kprobe f (r:f f $retval) for PID 3. Ctrl-C to end."
        );
        assert_eq!(
            tracing_line("uprobe", &[one.clone(), one], ""),
            "Tracing uprobes f (r:f f $retval), f (r:f f $retval). Ctrl-C to end."
        );
        assert_eq!(for_task(None, Some(4)).as_deref(), Some(" for TID 4"));
        assert_eq!(
            for_duration(Some(Duration::from_millis(1500))).as_deref(),
            Some(" for 1.5 s")
        );
    }
}
