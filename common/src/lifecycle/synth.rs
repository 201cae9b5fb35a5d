//! Synthetic events (`synthetic_events`, CONFIG_SYNTH_EVENTS, Linux 4.17):
//! events that hist triggers make up, such as a latency computed from two
//! other events' time stamps with `onmatch(...).trace(...)`.
//!
//! The kernel keeps them global, in `synthetic_events`, without a group
//! of their own, so ours carry the owner in the name
//! (`ftrace_tools_<pid>_<start>_<pidns>_<what>`, see
//! [`crate::lifecycle::owner`]): the sweep of killed runs recognises them.
//!
//! [`SynthEvent`] removes its event on drop. The kernel refuses (EBUSY)
//! while a trigger still uses it: drop the triggers that fire or count it
//! first (declare them after the event). Its event files exist in every
//! instance, ours included (`events/synthetic/<name>`).

use crate::base::error::{Error, ErrorKind, Result};
use crate::kernel::errorlog;
use crate::kernel::tracefs::{self, Tracefs};
use crate::lifecycle::dynevent::remove_listed;
use crate::lifecycle::owner::Owner;

/// The file that defines synthetic events.
pub const FILE: &str = "synthetic_events";

/// One field of a synthetic event: a C type the kernel knows (`u64`,
/// `pid_t`, `char[16]`...) and a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthField {
    /// The type (`u64`, `s32`, `pid_t`, `char[16]`).
    pub ctype: String,
    /// The field name.
    pub name: String,
}

impl SynthField {
    /// A field of type `ctype` named `name`.
    pub fn new(ctype: impl Into<String>, name: impl Into<String>) -> SynthField {
        SynthField {
            ctype: ctype.into(),
            name: name.into(),
        }
    }

    /// `TYPE NAME` as `synthetic_events` takes it (`char comm[16]` for an
    /// array type `char[16]`).
    fn decl(&self) -> String {
        match self.ctype.split_once('[') {
            Some((t, n)) => format!("{t} {}[{n}", self.name),
            None => format!("{} {}", self.ctype, self.name),
        }
    }
}

fn is_ident(s: &str) -> bool {
    !s.is_empty()
        && s.len() < 64
        && s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_type(s: &str) -> bool {
    let base = s.split_once('[').map_or(s, |(b, _)| b);
    let dims = s.split_once('[').map(|(_, d)| d);
    let base_ok = !base.is_empty()
        && base
            .split(' ')
            .all(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    let dims_ok = match dims {
        None => true,
        Some(d) => d
            .strip_suffix(']')
            .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit())),
    };
    base_ok && dims_ok
}

/// The line that creates event `name` with `fields`, after validation.
pub fn definition(name: &str, fields: &[SynthField]) -> Result<String> {
    if !is_ident(name) {
        return Err(Error::usage(format!(
            "'{name}' cannot be a synthetic event name"
        )));
    }
    if fields.is_empty() {
        return Err(Error::usage("a synthetic event needs a field"));
    }
    let mut decls = Vec::new();
    for f in fields {
        if !is_ident(&f.name) || !is_type(&f.ctype) {
            return Err(Error::usage(format!(
                "'{} {}' cannot be a field of a synthetic event",
                f.ctype, f.name
            )));
        }
        decls.push(f.decl());
    }
    Ok(format!("{name} {}", decls.join("; ")))
}

/// The names of the synthetic events listed in `synthetic_events`
/// (`name<TAB>fields` per line).
pub fn list(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(|n| n.rsplit('/').next().unwrap_or(n).to_string())
        .filter(|n| !n.is_empty() && !n.starts_with('#'))
        .collect()
}

/// A synthetic event of this run; removed on drop.
#[derive(Debug)]
pub struct SynthEvent {
    tfs: Tracefs,
    name: String,
    fields: Vec<SynthField>,
    removed: bool,
}

impl SynthEvent {
    /// Creates `<our group>_<what>` with `fields`. A definition the kernel
    /// refuses gives an error with its `error_log` entry.
    pub fn create(tfs: &Tracefs, what: &str, fields: &[SynthField]) -> Result<SynthEvent> {
        crate::kernel::caps::require(tfs, crate::kernel::caps::Feature::SyntheticEvents)?;
        let name = Owner::current().synth_name(what);
        let line = definition(&name, fields)?;
        if let Err(e) = tracefs::write_raw(&tfs.path(FILE), &line, true) {
            let mut msg = format!("the kernel rejected the synthetic event ({e}):\n    {line}");
            let log = tfs.read("error_log").unwrap_or_default();
            if let Some(entry) = errorlog::find(&log, &line, false) {
                msg.push('\n');
                msg.push_str(&errorlog::indent(&entry));
            }
            return Err(Error::rejected(msg));
        }
        Ok(SynthEvent {
            tfs: tfs.clone(),
            name,
            fields: fields.to_vec(),
            removed: false,
        })
    }

    /// Its name (in the `synthetic` system).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its fields, as created.
    pub fn fields(&self) -> &[SynthField] {
        &self.fields
    }

    /// Removes the event; [`Drop`] calls this and reports a failure on
    /// stderr instead.
    pub fn remove(&mut self) -> Result<()> {
        if self.removed {
            return Ok(());
        }
        remove(&self.tfs, &self.name)?;
        self.removed = true;
        Ok(())
    }
}

impl Drop for SynthEvent {
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            eprintln!("warning: {e}; `reset-ftrace` removes it once this process has exited");
        }
    }
}

/// Removes synthetic event `name` if it is listed, retrying while the
/// kernel says EBUSY (a trigger that uses it is still being removed).
pub fn remove(tfs: &Tracefs, name: &str) -> Result<()> {
    let listed = |tfs: &Tracefs| {
        tfs.read(FILE)
            .map(|t| list(&t).iter().any(|n| n == name))
            .unwrap_or(false)
    };
    match remove_listed(tfs, FILE, &format!("!{name}"), 10, listed) {
        Ok(true) => Ok(()),
        Ok(false) => Err(Error::new(
            ErrorKind::Busy,
            format!("cannot remove the synthetic event {name}: a trigger still uses it (EBUSY)"),
        )),
        Err(e) => {
            Err(Error::io("remove the synthetic event", &tfs.path(FILE), e)
                .context(name.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn definitions_and_listing() {
        let f = [
            SynthField::new("u64", "lat"),
            SynthField::new("pid_t", "pid"),
            SynthField::new("char[16]", "comm"),
            SynthField::new("unsigned long", "func"),
        ];
        assert_eq!(
            definition("ftrace_tools_1_2_3_lat", &f).unwrap(),
            "ftrace_tools_1_2_3_lat u64 lat; pid_t pid; char comm[16]; unsigned long func"
        );
        for bad in [
            vec![SynthField::new("u64", "a;b")],
            vec![SynthField::new("u64\n!x", "a")],
            vec![SynthField::new("char[x]", "a")],
            vec![SynthField::new("", "a")],
            vec![],
        ] {
            assert!(definition("n", &bad).is_err(), "{bad:?}");
        }
        assert!(definition("a b", &f).is_err());
        assert_eq!(
            list("ftt_c\tu64 lat; char[16] comm\nwakeup_latency\tu64 lat\n"),
            ["ftt_c", "wakeup_latency"]
        );
        assert_eq!(list("s:synthetic/x\tu64 lat\n"), ["x"]);
    }

    proptest! {
        #[test]
        fn a_valid_definition_is_one_line(
            name in "\\PC{0,20}", t in "\\PC{0,12}", n in "\\PC{0,12}",
        ) {
            if let Ok(l) = definition(&name, &[SynthField::new(t, n)]) {
                prop_assert!(!l.contains(['\n', '!', '#']));
            }
            let _ = list(&name);
        }
    }
}
