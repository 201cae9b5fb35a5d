//! Hist triggers: counting in the kernel (CONFIG_HIST_TRIGGERS).
//!
//! A hist trigger on an event (`events/SYS/EV/trigger` of our instance)
//! aggregates hits by keys in a kernel hash table; its `hist` file prints
//! the table. Nothing goes through the ring buffer, so counting costs the
//! kernel a hash update per event and user space nothing until it reads.
//!
//! Facts that shape this module (kernel `trace_events_hist.c`,
//! `trace_events_trigger.c`, checked on 6.1 and 6.12):
//! - A trigger on an event that is not enabled puts the event in "soft"
//!   mode: the trigger fires, nothing is written to the buffer.
//! - Triggers fire even while the instance's `tracing_on` is 0, so a
//!   counting window is made with the trigger's own `pause`/`cont`; a
//!   [`HistTrigger`] can be created paused.
//! - The instance's `set_event_pid`/`set_event_notrace_pid` apply (the
//!   record is not even reserved for an ignored task); the event's filter
//!   does not: a trigger has its own (`if ...`).
//! - An existing trigger is addressed (pause, cont, clear, removal with a
//!   leading `!`) by repeating its keys, values, sort keys and filter.
//! - The table has a fixed size (`size=`, default 2048, at most 2^17);
//!   hits that find it full are counted as `Dropped` in the totals.
//!
//! [`HistTrigger`] is a guard: dropping it removes the trigger (write
//! `!hist:...`). Drop it before the [`Instance`] (declare it after).

use crate::base::error::{Error, Result};
use crate::kernel::errorlog;
use crate::kernel::tracefs;
use crate::lifecycle::instance::{check_one_line, Instance};
use std::path::PathBuf;

/// What a hist trigger aggregates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistSpec {
    /// Key fields, with modifiers (`id.syscall`, `common_pid`).
    pub keys: Vec<String>,
    /// Summed values besides `hitcount` (field names).
    pub vals: Vec<String>,
    /// Table size (entries); `None` for the kernel's default (2048).
    pub size: Option<u32>,
    /// A filter in the event filter syntax (`ret < 0`).
    pub filter: Option<String>,
}

impl HistSpec {
    /// A spec counting hits by these keys.
    pub fn new(keys: &[&str]) -> HistSpec {
        HistSpec {
            keys: keys.iter().map(|s| s.to_string()).collect(),
            vals: Vec::new(),
            size: None,
            filter: None,
        }
    }

    /// Sets the table size.
    pub fn size(mut self, entries: u32) -> HistSpec {
        self.size = Some(entries);
        self
    }

    /// Sets the filter.
    pub fn filter(mut self, filter: impl Into<String>) -> HistSpec {
        self.filter = Some(filter.into());
        self
    }

    /// The attributes after `hist:` (`keys=...:vals=...:size=N`).
    pub fn body(&self) -> String {
        let mut s = format!("keys={}", self.keys.join(","));
        let mut vals = vec!["hitcount".to_string()];
        vals.extend(self.vals.iter().cloned());
        s.push_str(&format!(":vals={}", vals.join(",")));
        if let Some(n) = self.size {
            s.push_str(&format!(":size={n}"));
        }
        s
    }

    /// The trigger command, with an optional `pause`/`cont`/`clear`.
    pub fn command(&self, action: Option<&str>) -> String {
        command(&self.body(), self.filter.as_deref(), action)
    }

    fn check(&self) -> Result<()> {
        let ok = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        };
        for k in self.keys.iter().chain(self.vals.iter()) {
            if !ok(k) {
                return Err(Error::usage(format!("'{k}' is not a hist field")));
            }
        }
        if self.keys.is_empty() {
            return Err(Error::usage("a hist trigger needs at least one key"));
        }
        Ok(())
    }
}

/// `hist:BODY[:ACTION][ if FILTER]`: a trigger command as the kernel
/// takes it (and as it must be repeated to address the trigger).
pub fn command(body: &str, filter: Option<&str>, action: Option<&str>) -> String {
    let mut s = format!("hist:{body}");
    if let Some(a) = action {
        s.push(':');
        s.push_str(a);
    }
    if let Some(f) = filter {
        s.push_str(" if ");
        s.push_str(f);
    }
    s
}

/// Refuses a trigger body or filter that could end the command early,
/// start a second one or remove someone else's (a leading `!`).
fn check_text(body: &str, filter: Option<&str>) -> Result<()> {
    check_one_line("hist trigger", body)?;
    if body.trim().is_empty() {
        return Err(Error::usage("the hist trigger is empty"));
    }
    if body.trim_start().starts_with('!') {
        return Err(Error::usage("a hist trigger cannot start with '!'"));
    }
    if let Some(f) = filter {
        check_one_line("hist filter", f)?;
    }
    Ok(())
}

/// A hist trigger on an event of our instance; removed on drop.
#[derive(Debug)]
pub struct HistTrigger {
    trigger: PathBuf,
    hist: PathBuf,
    error_log: PathBuf,
    body: String,
    filter: Option<String>,
    what: String,
    removed: bool,
}

impl HistTrigger {
    /// Adds a hist trigger to `system:event` in `inst`; `paused` creates it
    /// paused (counting starts with [`HistTrigger::cont`]). A trigger the
    /// kernel refuses gives an error with its `error_log` entry.
    pub fn add(
        inst: &Instance,
        system: &str,
        event: &str,
        spec: HistSpec,
        paused: bool,
    ) -> Result<HistTrigger> {
        spec.check()?;
        HistTrigger::add_text(
            inst,
            system,
            event,
            &spec.body(),
            spec.filter.as_deref(),
            paused,
        )
    }

    /// Adds the trigger `hist:BODY[ if FILTER]` as written (variables,
    /// `onmatch()` actions, any modifier the kernel knows); like
    /// [`HistTrigger::add`] otherwise.
    pub fn add_text(
        inst: &Instance,
        system: &str,
        event: &str,
        body: &str,
        filter: Option<&str>,
        paused: bool,
    ) -> Result<HistTrigger> {
        check_text(body, filter)?;
        crate::kernel::caps::require(inst.tracefs(), crate::kernel::caps::Feature::HistTriggers)?;
        let dir = inst.path(format!("events/{system}/{event}"));
        if !dir.join("trigger").exists() {
            return Err(Error::usage(format!(
                "no event {system}:{event} with triggers on this kernel"
            )));
        }
        let mut t = HistTrigger {
            trigger: dir.join("trigger"),
            hist: dir.join("hist"),
            error_log: inst.path("error_log"),
            body: body.to_string(),
            filter: filter.map(str::to_string),
            what: format!("{system}:{event}"),
            // Nothing is added yet: nothing to remove if this fails.
            removed: true,
        };
        let cmd = t.command(paused.then_some("pause"));
        if let Err(e) = tracefs::write_raw(&t.trigger, &cmd, true) {
            let mut msg = format!(
                "the kernel rejected the hist trigger '{cmd}' on {}: {e}",
                t.what
            );
            let log = tracefs::read_text(&t.error_log).unwrap_or_default();
            if let Some(entry) = errorlog::find(&log, &cmd, false) {
                msg.push('\n');
                msg.push_str(&errorlog::indent(&entry));
            }
            return Err(Error::rejected(msg));
        }
        t.removed = false;
        Ok(t)
    }

    /// The command that addresses this trigger, with an optional action.
    pub fn command(&self, action: Option<&str>) -> String {
        command(&self.body, self.filter.as_deref(), action)
    }

    /// `SYSTEM:EVENT` of the trigger.
    pub fn event(&self) -> &str {
        &self.what
    }

    fn act(&self, action: &str) -> Result<()> {
        tracefs::write_file(&self.trigger, &self.command(Some(action)), true)
    }

    /// Stops counting (the table is kept).
    pub fn pause(&self) -> Result<()> {
        self.act("pause")
    }

    /// Starts or resumes counting.
    pub fn cont(&self) -> Result<()> {
        self.act("cont")
    }

    /// Empties the table (entries, hits and drops).
    pub fn clear(&self) -> Result<()> {
        self.act("clear")
    }

    /// The text of the `hist` file, as the kernel prints it.
    pub fn read_text(&self) -> Result<String> {
        tracefs::read_text(&self.hist)
    }

    /// Reads and parses the table.
    pub fn read(&self) -> Result<Hist> {
        Ok(parse(&self.read_text()?))
    }

    /// Removes the trigger; [`Drop`] calls this and reports a failure on
    /// stderr instead.
    pub fn remove(&mut self) -> Result<()> {
        if self.removed {
            return Ok(());
        }
        let cmd = format!("!{}", self.command(None));
        match tracefs::write_raw(&self.trigger, &cmd, true) {
            Ok(()) => {}
            // Already gone (the instance went first, or someone removed it).
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => {
                return Err(Error::new(
                    crate::ErrorKind::Io,
                    format!("cannot remove the hist trigger on {}: {e}", self.what),
                ))
            }
        }
        self.removed = true;
        Ok(())
    }
}

impl Drop for HistTrigger {
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            eprintln!("warning: {e}; removing the instance removes it too");
        }
    }
}

/// The command that removes a trigger listed in a `trigger` file
/// (`hist:keys=...:sort=ret.log2:size=2048 if ret > 0 [active]`): `!`,
/// the line without its state, and sort keys without the modifiers the
/// kernel prints but does not take back (only `.descending` and
/// `.ascending` are sort modifiers). `None` for lines that are not hist
/// triggers.
pub fn removal_command(listed: &str) -> Option<String> {
    let line = listed.trim();
    if !line.starts_with("hist:") {
        return None;
    }
    let line = line
        .strip_suffix("[active]")
        .or_else(|| line.strip_suffix("[paused]"))
        .unwrap_or(line)
        .trim_end();
    let (body, filter) = match line.find(" if ") {
        Some(p) => (&line[..p], Some(&line[p..])),
        None => (line, None),
    };
    let parts: Vec<String> = body
        .split(':')
        .map(|a| match a.strip_prefix("sort=") {
            Some(keys) => {
                let keys: Vec<String> = keys
                    .split(',')
                    .map(|k| {
                        let mut it = k.split('.');
                        let name = it.next().unwrap_or("");
                        match it.next_back() {
                            Some(m @ ("descending" | "ascending")) => format!("{name}.{m}"),
                            _ => name.to_string(),
                        }
                    })
                    .collect();
                format!("sort={}", keys.join(","))
            }
            None => a.to_string(),
        })
        .collect();
    Some(format!("!{}{}", parts.join(":"), filter.unwrap_or("")))
}

/// One key of a table entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistKey {
    /// The field name as printed (`id`, `common_pid`).
    pub name: String,
    /// The number: the key itself, or the one in brackets for keys printed
    /// with a label (`.syscall`, `.execname`); `None` if not decimal.
    pub value: Option<u64>,
    /// The label of `.syscall` (`sys_read`) or `.execname` (the comm).
    pub label: Option<String>,
    /// The text after `name:`, trimmed, as printed (`~ 2^10`, `1f`).
    pub raw: String,
}

impl HistKey {
    /// The exponent of a `.log2` key (`~ 2^10` gives 10).
    pub fn log2(&self) -> Option<u32> {
        self.raw.strip_prefix("~ 2^")?.trim().parse().ok()
    }
}

/// One entry of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistEntry {
    /// The keys, in the order of the spec.
    pub keys: Vec<HistKey>,
    /// `hitcount` and the other values.
    pub values: Vec<(String, u64)>,
    /// Every value as printed (hex ones too: `ret`, `4c5`).
    pub raw_values: Vec<(String, String)>,
}

impl HistEntry {
    /// A key by name.
    pub fn key(&self, name: &str) -> Option<&HistKey> {
        self.keys.iter().find(|k| k.name == name)
    }

    /// A value by name.
    pub fn value(&self, name: &str) -> Option<u64> {
        self.values.iter().find(|v| v.0 == name).map(|v| v.1)
    }

    /// The hit count.
    pub fn hitcount(&self) -> u64 {
        self.value("hitcount").unwrap_or(0)
    }
}

/// A parsed `hist` file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hist {
    /// The entries.
    pub entries: Vec<HistEntry>,
    /// `Totals: Hits`.
    pub hits: Option<u64>,
    /// `Totals: Dropped`: hits not counted because the table was full.
    pub dropped: Option<u64>,
    /// `# trigger info:` the trigger as the kernel prints it.
    pub info: Option<String>,
}

/// Parses the text of a `hist` file. Lines it does not understand are
/// skipped; it never panics.
pub fn parse(text: &str) -> Hist {
    let mut h = Hist::default();
    // A stack key spans lines: `{ stacktrace:`, a frame a line, then
    // `} hitcount: N`.
    let mut open: Option<(&str, Vec<&str>)> = None;
    for line in text.lines() {
        let t = line.trim();
        if let Some((_, frames)) = open.as_mut() {
            if !t.is_empty() && !t.starts_with('}') {
                frames.push(t);
                continue;
            }
            // The entry ends here; cut short (a blank line), it is dropped.
            let (head, frames) = open.take().expect("checked");
            if t.starts_with('}') {
                if let Some(e) = parse_stack_entry(head, &frames, t) {
                    h.entries.push(e);
                }
                continue;
            }
        }
        if let Some(v) = t.strip_prefix("# trigger info:") {
            h.info = Some(v.trim().to_string());
        } else if let Some(v) = t.strip_prefix("Hits:") {
            h.hits = v.trim().parse().ok();
        } else if let Some(v) = t.strip_prefix("Dropped:") {
            h.dropped = v.trim().parse().ok();
        } else if t.starts_with('{') {
            if !t.contains('}') && t.ends_with(':') {
                open = Some((t, Vec::new()));
            } else if let Some(e) = parse_entry(t) {
                h.entries.push(e);
            }
        }
    }
    h
}

/// An entry whose last key is a stack: `head` is `{ [KEYS, ]NAME:`, the
/// frames follow (kept in the key's `raw`, a line each), `tail` is
/// `} hitcount: N ...`.
fn parse_stack_entry(head: &str, frames: &[&str], tail: &str) -> Option<HistEntry> {
    let mut keys = parse_keys(head.get(1..)?.trim())?;
    keys.last_mut()?.raw = frames.join("\n");
    let (values, raw_values) = parse_values(tail.get(1..)?);
    Some(HistEntry {
        keys,
        values,
        raw_values,
    })
}

fn parse_entry(line: &str) -> Option<HistEntry> {
    // `{ k1: v1, k2: v2 } hitcount: N name: M`; a label may hold anything
    // but a key section ends with the last `}` before ` hitcount:`.
    let vals_at = line.find("} hitcount:")?;
    let keys = parse_keys(line.get(1..vals_at)?.trim())?;
    let (values, raw_values) = parse_values(line.get(vals_at + 1..)?);
    Some(HistEntry {
        keys,
        values,
        raw_values,
    })
}

/// `k1: v1, k2: sys_read [  0]`: the keys.
fn parse_keys(keys_text: &str) -> Option<Vec<HistKey>> {
    let mut keys = Vec::new();
    for part in split_keys(keys_text) {
        let (name, rest) = part.split_once(':')?;
        let rest = rest.trim();
        let (value, label) = match (rest.rfind('['), rest.ends_with(']')) {
            (Some(open), true) => {
                let num = rest.get(open + 1..rest.len() - 1)?.trim();
                let label = rest.get(..open)?.trim();
                (num.parse().ok(), Some(label.to_string()))
            }
            _ => (rest.parse().ok(), None),
        };
        keys.push(HistKey {
            name: name.trim().to_string(),
            value,
            label,
            raw: rest.to_string(),
        });
    }
    Some(keys)
}

/// An entry's values: as numbers, and as printed.
type Values = (Vec<(String, u64)>, Vec<(String, String)>);

/// `hitcount: N name: M`: the values, as numbers and as printed.
fn parse_values(vals_text: &str) -> Values {
    let mut values = Vec::new();
    let mut raw_values = Vec::new();
    let mut words = vals_text.split_whitespace();
    while let Some(w) = words.next() {
        let Some(name) = w.strip_suffix(':') else {
            continue;
        };
        if let Some(v) = words.next() {
            if let Ok(n) = v.parse() {
                values.push((name.to_string(), n));
            }
            raw_values.push((name.to_string(), v.to_string()));
        }
    }
    (values, raw_values)
}

/// Splits `a: 1, b: sys_read [  0]` at the commas that start a new
/// `name:`.
fn split_keys(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b',' {
            let rest = &s[i + 1..];
            let next = rest.trim_start();
            let ident_len = next
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(next.len());
            if ident_len > 0 && next[ident_len..].starts_with(':') {
                out.push(s[start..i].trim());
                start = i + 1;
            }
        }
        i += 1;
    }
    let last = s[start..].trim();
    if !last.is_empty() {
        out.push(last);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
# event histogram
#
# trigger info: hist:keys=common_pid,id.syscall:vals=hitcount:sort=hitcount:size=2048 [active]
#

{ common_pid:       1234, id: sys_read                      [  0] } hitcount:          5
{ common_pid:         77, id: unknown_syscall               [999] } hitcount:         12
{ common_pid:         77, id: sys_getppid                   [110] } hitcount:    1000000

Totals:
    Hits: 1000017
    Entries: 3
    Dropped: 0
";

    #[test]
    fn a_stack_key_spans_lines() {
        // As 6.1 prints `keys=common_pid.execname,stacktrace`.
        let text = "\
# trigger info: hist:keys=common_pid.execname,stacktrace:vals=hitcount:sort=hitcount:size=8192 [active]
#

{ common_pid: ftt-workload    [       412], stacktrace:
         __do_sys_getppid+0x5/0x20
         do_syscall_64+0x3b/0x90
         entry_SYSCALL_64_after_hwframe+0x63/0xcd
} hitcount:        300
{ stacktrace:
         ext4_file_read_iter+0x1/0x140 [ext4]
} hitcount:          7
{ common_pid: cut             [1], stacktrace:

Totals:
    Hits: 307
";
        let h = parse(text);
        assert_eq!(h.entries.len(), 2, "{:?}", h.entries);
        let e = &h.entries[0];
        assert_eq!(e.hitcount(), 300);
        let pid = e.key("common_pid").unwrap();
        assert_eq!(
            (pid.value, pid.label.as_deref()),
            (Some(412), Some("ftt-workload"))
        );
        let frames: Vec<&str> = e.key("stacktrace").unwrap().raw.lines().collect();
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[0], "__do_sys_getppid+0x5/0x20");
        let one = &h.entries[1].key("stacktrace").unwrap().raw;
        assert_eq!(one, "ext4_file_read_iter+0x1/0x140 [ext4]");
        assert_eq!(h.entries[1].hitcount(), 7);
        assert_eq!(h.hits, Some(307));
    }

    #[test]
    fn parses_keys_labels_and_totals() {
        let h = parse(SAMPLE);
        assert_eq!(h.entries.len(), 3);
        assert_eq!(h.hits, Some(1_000_017));
        assert_eq!(h.dropped, Some(0));
        let e = &h.entries[2];
        assert_eq!(e.key("common_pid").unwrap().value, Some(77));
        let id = e.key("id").unwrap();
        assert_eq!(id.value, Some(110));
        assert_eq!(id.label.as_deref(), Some("sys_getppid"));
        assert_eq!(e.hitcount(), 1_000_000);
        assert_eq!(
            h.entries[1].key("id").unwrap().label.as_deref(),
            Some("unknown_syscall")
        );
    }

    #[test]
    fn parses_plain_keys_extra_values_and_execname_labels() {
        let h = parse(
            "{ id:          3 } hitcount:         10  bytes:        400\n\
             { common_pid: ba, sh {x}      [      4321] } hitcount:          2\n",
        );
        assert_eq!(h.entries[0].key("id").unwrap().value, Some(3));
        assert_eq!(h.entries[0].value("bytes"), Some(400));
        let k = h.entries[1].key("common_pid").unwrap();
        assert_eq!(k.value, Some(4321));
        assert_eq!(k.label.as_deref(), Some("ba, sh {x}"));
        assert_eq!(h.hits, None);
    }

    #[test]
    fn listed_triggers_give_their_removal_commands() {
        assert_eq!(
            removal_command(
                "hist:keys=comm,lat.log2:vals=hitcount:sort=comm,lat.log2:size=2048 [active]"
            )
            .unwrap(),
            "!hist:keys=comm,lat.log2:vals=hitcount:sort=comm,lat:size=2048"
        );
        assert_eq!(
            removal_command("hist:keys=ret:vals=hitcount:sort=hitcount.descending,ret.buckets=10:size=2048 if ret >= 0 [paused]").unwrap(),
            "!hist:keys=ret:vals=hitcount:sort=hitcount.descending,ret:size=2048 if ret >= 0"
        );
        assert_eq!(removal_command("# Available triggers:"), None);
        assert_eq!(removal_command("traceon"), None);
    }

    #[test]
    fn commands_repeat_the_spec() {
        let s = HistSpec::new(&["id.syscall"]).size(4096).filter("ret < 0");
        assert_eq!(
            s.command(Some("pause")),
            "hist:keys=id.syscall:vals=hitcount:size=4096:pause if ret < 0"
        );
        assert_eq!(
            s.command(None),
            "hist:keys=id.syscall:vals=hitcount:size=4096 if ret < 0"
        );
        assert!(s.check().is_ok());
        assert!(HistSpec::new(&["a b"]).check().is_err());
        assert!(HistSpec::new(&[]).check().is_err());
        assert!(check_text("keys=id", Some("a\n!x")).is_err());
        assert!(check_text("keys=id\n!hist:keys=x", None).is_err());
        assert!(check_text("!keys=id", None).is_err());
        assert!(check_text("keys=id:ts0=common_timestamp", Some("id > 0")).is_ok());
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC*") {
            let _ = parse(&s);
            let _ = removal_command(&s);
        }

        #[test]
        fn parse_never_panics_on_entry_like_lines(
            a in "[{}\\[\\]:, a-z0-9_]{0,60}",
            b in "[{}\\[\\]:, a-z0-9_]{0,40}",
        ) {
            let _ = parse(&format!("{{ {a} }} hitcount: {b}\n{{{a}"));
        }
    }
}
