//! Dynamic events (kprobes, kretprobes, uprobes, uretprobes) in our own group.
//!
//! The kernel keeps dynamic events global, in `kprobe_events` and
//! `uprobe_events`: they are the only top-level files we ever write, and only
//! by appending a line that creates (`p:`/`r:`) or removes (`-:`) an event of
//! our own group `ftrace_tools_<pid>_<start>_<pidns>`. Every line is built
//! here from validated parts, so no user input can add a second command,
//! delete someone else's probe or comment out the rest of a line.
//!
//! [`ProbeGroup`] removes its events on drop. The kernel refuses to remove an
//! event that is enabled anywhere, so drop the [`crate::lifecycle::instance::Instance`]
//! that enabled them first (declare the group before the instance).

use crate::base::error::{Error, ErrorKind, Result};
use crate::kernel::errorlog;
use crate::kernel::tracefs::{self, Tracefs};
use crate::lifecycle::owner::Owner;
use std::time::Duration;

/// Where a probe goes and when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeKind {
    /// Kernel function entry (`p:` in `kprobe_events`).
    Kprobe,
    /// Kernel function return (`r:` in `kprobe_events`).
    Kretprobe,
    /// User function entry (`p:` in `uprobe_events`).
    Uprobe,
    /// User function return (`r:` in `uprobe_events`).
    Uretprobe,
}

impl ProbeKind {
    /// The tracefs file that holds this kind of probe.
    pub fn file(self) -> &'static str {
        match self {
            ProbeKind::Kprobe | ProbeKind::Kretprobe => "kprobe_events",
            ProbeKind::Uprobe | ProbeKind::Uretprobe => "uprobe_events",
        }
    }

    /// Whether it fires on return.
    pub fn is_return(self) -> bool {
        matches!(self, ProbeKind::Kretprobe | ProbeKind::Uretprobe)
    }

    fn letter(self) -> char {
        if self.is_return() {
            'r'
        } else {
            'p'
        }
    }
}

/// The instances a kernel return probe of ours has (`rN:`, Linux 4.12 and
/// later): as many tasks can be inside its function at once before a return
/// is missed. Each costs the kernel about 64 bytes (64 KiB a probe).
pub const KRETPROBE_MAXACTIVE: u32 = 1024;

/// The environment variable that sets another number of instances (1 to
/// the kernel's limit, 4096).
pub const MAXACTIVE_ENV: &str = "FTRACE_TOOLS_KRETPROBE_MAXACTIVE";

/// The instances each kernel return probe gets: [`MAXACTIVE_ENV`] if set,
/// else [`KRETPROBE_MAXACTIVE`].
pub fn kretprobe_maxactive() -> Result<u32> {
    let Some(v) = std::env::var_os(MAXACTIVE_ENV) else {
        return Ok(KRETPROBE_MAXACTIVE);
    };
    v.to_str()
        .and_then(|v| v.trim().parse::<u32>().ok())
        .filter(|n| (1..=4096).contains(n))
        .ok_or_else(|| {
            Error::usage(format!(
                "{MAXACTIVE_ENV}={}: not a number from 1 to 4096 (the kernel's limit)",
                v.to_string_lossy()
            ))
        })
}

/// Missed returns of kernel return probes, from `kprobe_profile` text
/// (`NAME HITS MISSED` a line; the name with its group on some kernels):
/// for each (group, name) asked, its count when the line is surely its
/// own: a bare name must be listed once only (another group's probe of
/// the same name makes it ambiguous, and it is left out). Never panics.
pub fn missed_in_profile(text: &str, probes: &[(&str, &str)]) -> Vec<(String, u64)> {
    let rows: Vec<(&str, u64)> = text
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let name = w.next()?;
            let _hits = w.next()?;
            Some((name, w.next()?.parse().ok()?))
        })
        .collect();
    let mut out = Vec::new();
    for (group, name) in probes {
        let full = format!("{group}/{name}");
        let exact: Vec<u64> = rows
            .iter()
            .filter(|(n, _)| *n == full)
            .map(|r| r.1)
            .collect();
        let bare: Vec<u64> = rows
            .iter()
            .filter(|(n, _)| n == name)
            .map(|r| r.1)
            .collect();
        let missed = match (exact.as_slice(), bare.as_slice()) {
            ([m], _) | ([], [m]) => *m,
            _ => continue,
        };
        out.push((name.to_string(), missed));
    }
    out
}

/// A probe to create: kind, event name, location and fetch arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeDef {
    /// Entry or return, kernel or user.
    pub kind: ProbeKind,
    /// The event name (unique names are made from it).
    pub name: String,
    /// `FUNC[+OFFS]`, `MOD:FUNC` or `0xADDR` for kprobes; `PATH:0xOFFSET`
    /// for uprobes.
    pub location: String,
    /// Fetch arguments, each `[NAME=]FETCHARG[:TYPE]`.
    pub args: Vec<String>,
}

/// Checks that `name` can be an event name: a C identifier of at most 63
/// bytes.
pub fn check_event_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() < 64
        && name
            .chars()
            .next()
            .map(|c| c.is_ascii_alphabetic() || c == '_')
            .unwrap_or(false)
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::usage(format!(
            "'{name}' cannot be an event name: use letters, digits and _ (not first a digit), at most 63"
        )))
    }
}

/// Checks one word of a probe line (location or argument): it must not be
/// able to end the line, start another command or a comment.
pub fn check_word(what: &str, word: &str) -> Result<()> {
    if word.is_empty() {
        return Err(Error::usage(format!("the probe's {what} is empty")));
    }
    if let Some(c) = word.chars().find(|c| c.is_control()) {
        return Err(Error::usage(format!(
            "the probe's {what} '{}' contains a control character ({c:?}): a probe must be one line",
            word.escape_debug()
        )));
    }
    if let Some(c) = word.chars().find(|c| c.is_whitespace()) {
        return Err(Error::usage(format!(
            "the probe's {what} '{word}' contains whitespace ({c:?}), which probe definitions cannot hold"
        )));
    }
    for bad in [';', '#'] {
        if word.contains(bad) {
            return Err(Error::usage(format!(
                "the probe's {what} '{word}' contains '{bad}', which is not allowed in a probe definition"
            )));
        }
    }
    Ok(())
}

impl ProbeDef {
    /// The line that creates this probe in `group`, after validation.
    pub fn line(&self, group: &str) -> Result<String> {
        check_event_name(&self.name)?;
        check_event_name(group)?;
        check_word("location", &self.location)?;
        if self.location.starts_with('-') {
            return Err(Error::usage(format!(
                "the probe location '{}' cannot start with '-'",
                self.location
            )));
        }
        // A kernel return probe takes one of its instances for each task
        // inside the function, and misses the returns (counted only in
        // kprobe_profile) while all are taken. The kernel's default,
        // max(10, 2 x CPUs), runs out as soon as that many tasks block in
        // the function (threads waiting in read(), say): ask for more.
        let head = match self.kind {
            ProbeKind::Kretprobe => format!("r{}", kretprobe_maxactive()?),
            k => k.letter().to_string(),
        };
        let mut line = format!("{head}:{group}/{} {}", self.name, self.location);
        for a in &self.args {
            check_word("argument", a)?;
            line.push(' ');
            line.push_str(a);
        }
        Ok(line)
    }
}

/// An event created in our group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// Its kind.
    pub kind: ProbeKind,
    /// The group (ours).
    pub group: String,
    /// The event name within the group.
    pub name: String,
    /// The line that created it.
    pub line: String,
}

/// The dynamic events of this run; removed on drop.
#[derive(Debug)]
pub struct ProbeGroup {
    tfs: Tracefs,
    group: String,
    probes: Vec<Probe>,
}

/// The `group/name` of every event listed in a dynamic-event file, with the
/// line's kind letter (`p`, `r`, ...).
pub fn list_events(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some(head) = line.split_whitespace().next() else {
            continue;
        };
        let Some((_, ev)) = head.split_once(':') else {
            continue;
        };
        if let Some((g, n)) = ev.split_once('/') {
            out.push((g.to_string(), n.to_string()));
        }
    }
    out
}

impl ProbeGroup {
    /// A new, empty group named for the calling process.
    pub fn new(tfs: &Tracefs) -> ProbeGroup {
        ProbeGroup {
            tfs: tfs.clone(),
            group: Owner::current().group_name(),
            probes: Vec::new(),
        }
    }

    /// The group name.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// The probes created so far.
    pub fn probes(&self) -> &[Probe] {
        &self.probes
    }

    /// Creates a probe. Its name is `def.name`, or `def.name_N` if this run
    /// already has one of that name. A line the kernel refuses gives an
    /// error showing the line and the kernel's `error_log` entry.
    pub fn add(&mut self, def: &ProbeDef) -> Result<&Probe> {
        let file = def.kind.file();
        if !self.tfs.exists(file) {
            let f = match def.kind {
                ProbeKind::Kprobe | ProbeKind::Kretprobe => {
                    crate::kernel::caps::Feature::KprobeEvents
                }
                _ => crate::kernel::caps::Feature::UprobeEvents,
            };
            crate::kernel::caps::require(&self.tfs, f)?;
        }
        let mut def = def.clone();
        let base = def.name.clone();
        let mut n = 1;
        while self.probes.iter().any(|p| p.name == def.name) {
            def.name = format!("{base}_{n}");
            n += 1;
        }
        let line = def.line(&self.group)?;
        if let Err(e) = tracefs::write_raw(&self.tfs.path(file), &line, true) {
            let mut msg = format!("the kernel rejected the probe ({e}):\n    {line}");
            let log = self.tfs.read("error_log").unwrap_or_default();
            if let Some(entry) = errorlog::find(&log, &line, false) {
                msg.push('\n');
                msg.push_str(&errorlog::indent(&entry));
            }
            let kind = match e.raw_os_error() {
                Some(libc::ENOENT) | Some(libc::EINVAL) | Some(libc::E2BIG) => ErrorKind::Rejected,
                Some(libc::EEXIST) => ErrorKind::Rejected,
                // A kprobe offset that is not an instruction boundary, a
                // symbol the kernel cannot place.
                Some(libc::EILSEQ) | Some(libc::EADDRNOTAVAIL) => ErrorKind::Rejected,
                Some(libc::EPERM) | Some(libc::EACCES) => ErrorKind::Permission,
                _ => ErrorKind::Io,
            };
            return Err(Error::new(kind, msg));
        }
        self.probes.push(Probe {
            kind: def.kind,
            group: self.group.clone(),
            name: def.name.clone(),
            line,
        });
        Ok(self.probes.last().expect("just pushed"))
    }

    /// Adds another location to the event `name` made by [`ProbeGroup::add`]
    /// (the kernel's multi-probe events, Linux 5.7 and later): `def`'s
    /// arguments must be the event's, to the letter. One event for many
    /// locations is enabled and disabled at the cost of one: a uprobe's
    /// disable waits for the kernel to synchronize, once per event.
    /// Removing the event removes every location.
    pub fn append(&mut self, name: &str, def: &ProbeDef) -> Result<()> {
        if !self.probes.iter().any(|p| p.name == name) {
            return Err(Error::usage(format!(
                "no event {name} to add a location to"
            )));
        }
        let def = ProbeDef {
            name: name.to_string(),
            ..def.clone()
        };
        let line = def.line(&self.group)?;
        tracefs::write_raw(&self.tfs.path(def.kind.file()), &line, true).map_err(|e| {
            let mut msg = format!("the kernel rejected the probe ({e}):\n    {line}");
            let log = self.tfs.read("error_log").unwrap_or_default();
            if let Some(entry) = errorlog::find(&log, &line, false) {
                msg.push('\n');
                msg.push_str(&errorlog::indent(&entry));
            }
            Error::new(ErrorKind::Rejected, msg)
        })
    }

    /// The returns the kernel missed of each kernel return probe of this
    /// run that missed any (counted in `kprobe_profile` until the probe is
    /// removed): (the probe's location, count). A probe whose count cannot
    /// be told from another run's of the same name is left out.
    pub fn missed_returns(&self) -> Vec<(String, u64)> {
        let rets: Vec<&Probe> = self
            .probes
            .iter()
            .filter(|p| p.kind == ProbeKind::Kretprobe)
            .collect();
        if rets.is_empty() {
            return Vec::new();
        }
        let Ok(text) = self.tfs.read("kprobe_profile") else {
            return Vec::new();
        };
        let asked: Vec<(&str, &str)> = rets
            .iter()
            .map(|p| (p.group.as_str(), p.name.as_str()))
            .collect();
        missed_in_profile(&text, &asked)
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .filter_map(|(name, n)| {
                let p = rets.iter().find(|p| p.name == name)?;
                // `r1024:group/name LOCATION ...`: the location.
                let loc = p.line.split_whitespace().nth(1).unwrap_or(&p.name);
                Some((loc.to_string(), n))
            })
            .collect()
    }

    /// Removes every probe of this run that is still listed; [`Drop`] calls
    /// this and reports failures on stderr instead.
    pub fn remove_all(&mut self) -> Result<()> {
        let mut first_err = None;
        while let Some(p) = self.probes.pop() {
            if let Err(e) = remove_event(&self.tfs, p.kind.file(), &p.group, &p.name) {
                first_err.get_or_insert(e);
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Drop for ProbeGroup {
    /// Says how many returns the kernel missed (its counts go with the
    /// probes), then removes them.
    fn drop(&mut self) {
        for (what, n) in self.missed_returns() {
            eprintln!(
                "{}: warning: the kernel missed {n} return{} of {what}: more tasks were inside it at once than the probe's {} instances (set {MAXACTIVE_ENV}, up to 4096); those calls are not in the output",
                crate::base::tool::name(),
                if n == 1 { "" } else { "s" },
                kretprobe_maxactive().unwrap_or(KRETPROBE_MAXACTIVE),
            );
        }
        if let Err(e) = self.remove_all() {
            eprintln!("warning: {e}; `reset-ftrace` removes it once this process has exited");
        }
    }
}

/// Removes `group/name` from a dynamic-event file, only if it is listed
/// there, retrying while the kernel says EBUSY (an instance is still
/// disabling it).
pub fn remove_event(tfs: &Tracefs, file: &str, group: &str, name: &str) -> Result<()> {
    let listed = |tfs: &Tracefs| {
        tfs.read(file)
            .map(|t| list_events(&t).iter().any(|(g, n)| g == group && n == name))
            .unwrap_or(false)
    };
    let what = format!("{group}/{name}");
    match remove_listed(tfs, file, &format!("-:{what}"), 12, listed) {
        Ok(true) => Ok(()),
        Ok(false) => Err(Error::new(
            ErrorKind::Busy,
            format!("cannot remove the probe {what}: it is still enabled somewhere (EBUSY)"),
        )),
        Err(e) => Err(Error::io("remove the probe", &tfs.path(file), e).context(what)),
    }
}

/// Writes the removal `line` to `file` while `listed` says the entry is
/// there, up to `tries` times with a growing pause while the kernel says
/// EBUSY: `Ok(true)` once it is gone (or was never there), `Ok(false)` if
/// it stayed busy. The dynamic events and the synthetic events are removed
/// alike.
pub(crate) fn remove_listed(
    tfs: &Tracefs,
    file: &str,
    line: &str,
    tries: u32,
    listed: impl Fn(&Tracefs) -> bool,
) -> std::io::Result<bool> {
    if !listed(tfs) {
        return Ok(true);
    }
    let mut delay = Duration::from_millis(1);
    for _ in 0..tries {
        match tracefs::write_raw(&tfs.path(file), line, true) {
            Ok(()) => return Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(100));
                if !listed(tfs) {
                    return Ok(true);
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn def(loc: &str, args: &[&str]) -> ProbeDef {
        ProbeDef {
            kind: ProbeKind::Uprobe,
            name: "readline".into(),
            location: loc.into(),
            args: args.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn builds_lines_in_our_group() {
        let d = def("/bin/bash:0x8e410", &["+0($retval):string"]);
        assert_eq!(
            d.line("ftrace_tools_1_2_3").unwrap(),
            "p:ftrace_tools_1_2_3/readline /bin/bash:0x8e410 +0($retval):string"
        );
        let mut r = d.clone();
        r.kind = ProbeKind::Kretprobe;
        r.location = "do_sys_open".into();
        r.args = vec!["$retval".into(), "off=-8(%sp)".into()];
        assert_eq!(
            r.line("g").unwrap(),
            "r1024:g/readline do_sys_open $retval off=-8(%sp)"
        );
    }

    #[test]
    fn refuses_injection() {
        let g = "ftrace_tools_1_2_3";
        for (loc, args) in [
            ("/bin/bash:0x1\n-:other/ev", vec![]),
            ("/bin/bash:0x1", vec!["x\n-:kprobes/y"]),
            ("/bin/bash:0x1", vec!["a;b"]),
            ("/bin/bash:0x1", vec!["a#b"]),
            ("-:kprobes/x", vec![]),
            ("/my dir/x:0x1", vec![]),
            ("/bin/bash:0x1", vec![""]),
        ] {
            let e = def(loc, &args).line(g).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{loc:?} {args:?}");
        }
        let mut bad = def("/bin/true:0x1", &[]);
        bad.name = "a/b".into();
        assert!(bad.line(g).is_err());
        bad.name = "1abc".into();
        assert!(bad.line(g).is_err());
        assert!(def("/bin/true:0x1", &[]).line("x y").is_err());
    }

    #[test]
    fn lists_events_of_a_dynamic_event_file() {
        let t = "p:uprobes/p_bash_0x1 /bin/bash:0x0000000000000001\nr:ftrace_tools_1_2_3/x /bin/true:0x10 arg1=$retval\n";
        assert_eq!(
            list_events(t),
            vec![
                ("uprobes".to_string(), "p_bash_0x1".to_string()),
                ("ftrace_tools_1_2_3".to_string(), "x".to_string())
            ]
        );
    }

    #[test]
    fn missed_returns_only_where_the_line_is_surely_ours() {
        let text = "  vfs_read_ret                          200  7\n\
                    \x20 open_ret                              10  3\n\
                    \x20 open_ret                               4  1\n\
                    \x20 g2/close_ret                            5  2\n\
                    \x20 close_ret                               9  4\n\
                    \x20 garbage\n";
        let got = missed_in_profile(
            text,
            &[
                ("g1", "vfs_read_ret"),
                ("g1", "open_ret"),
                ("g2", "close_ret"),
                ("g1", "absent"),
            ],
        );
        assert_eq!(
            got,
            vec![
                ("vfs_read_ret".to_string(), 7),
                ("close_ret".to_string(), 2)
            ]
        );
    }

    #[test]
    fn maxactive_from_the_environment_is_checked() {
        // The variable is read by this test alone.
        std::env::set_var(MAXACTIVE_ENV, "8");
        assert_eq!(kretprobe_maxactive().unwrap(), 8);
        let d = def("vfs_read", &[]);
        let r = ProbeDef {
            kind: ProbeKind::Kretprobe,
            ..d
        };
        assert!(r.line("g").unwrap().starts_with("r8:g/"));
        for bad in ["0", "4097", "x", ""] {
            std::env::set_var(MAXACTIVE_ENV, bad);
            let e = kretprobe_maxactive().unwrap_err().to_string();
            assert!(e.contains(MAXACTIVE_ENV) && e.contains("4096"), "{e}");
        }
        std::env::remove_var(MAXACTIVE_ENV);
        assert_eq!(kretprobe_maxactive().unwrap(), KRETPROBE_MAXACTIVE);
    }

    proptest! {
        #[test]
        fn any_profile_text_parses(text in "\\PC{0,200}", name in "[a-z_]{1,8}") {
            let _ = missed_in_profile(&text, &[("g", name.as_str())]);
        }

        #[test]
        fn a_valid_line_is_exactly_one_command_of_ours(
            name in "[a-zA-Z_][a-zA-Z0-9_]{0,10}",
            loc in "\\PC{1,30}",
            args in proptest::collection::vec("\\PC{0,20}", 0..4),
        ) {
            let d = ProbeDef { kind: ProbeKind::Kprobe, name, location: loc, args };
            if let Ok(line) = d.line("ftrace_tools_1_2_3") {
                prop_assert!(!line.contains('\n') && !line.contains('#') && !line.contains(';'));
                prop_assert!(line.starts_with("p:ftrace_tools_1_2_3/"));
                prop_assert_eq!(line.split(' ').count(), 2 + d.args.len());
            }
        }
    }
}
