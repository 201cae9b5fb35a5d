//! Who owns a piece of kernel state: the names we give our instances and
//! dynamic-event groups, and whether their owner is still alive.
//!
//! Every name carries the owner's PID, the owner's start time (in clock ticks
//! since boot, field 22 of `/proc/PID/stat`) and the inode of its PID
//! namespace. A later run can then tell a dead owner from a live one even when
//! the PID has been reused, and leaves alone state made from another PID
//! namespace (a container), whose PIDs it cannot judge.
//!
//! - instances: `ftrace-tools-<tool>-<pid>-<start>-<pidns>`
//! - dynamic-event groups: `ftrace_tools_<pid>_<start>_<pidns>`
//! - synthetic events (which have no group of their own):
//!   `ftrace_tools_<pid>_<start>_<pidns>_<what>`

use std::fs;

/// The prefix of every instance name of ours.
pub const INSTANCE_PREFIX: &str = "ftrace-tools-";
/// The prefix of every dynamic-event group of ours.
pub const GROUP_PREFIX: &str = "ftrace_tools_";

/// The identity of a process that owns tracefs state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Owner {
    /// Its PID, as seen from its own PID namespace.
    pub pid: u32,
    /// Its start time in clock ticks since boot.
    pub start: u64,
    /// The inode number of its PID namespace.
    pub pidns: u64,
}

/// What we know about the owner of some state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// The owner is running.
    Alive,
    /// The owner is gone (or its PID now belongs to another process).
    Dead,
    /// The owner lives in another PID namespace: we cannot tell.
    Foreign,
}

/// The start time (field 22) of a process from `/proc/PID/stat`.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_start(&stat)
}

/// Parses the start time out of a `/proc/PID/stat` line; the command name
/// in parentheses may hold spaces and parentheses, so fields are counted from
/// the last `)`.
pub fn parse_stat_start(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    // After ")" come fields 3.. ; start time is field 22, i.e. the 20th here.
    after.split_whitespace().nth(19)?.parse().ok()
}

fn pidns_inode(pid: &str) -> Option<u64> {
    let link = fs::read_link(format!("/proc/{pid}/ns/pid")).ok()?;
    let s = link.to_str()?;
    s.strip_prefix("pid:[")?.strip_suffix(']')?.parse().ok()
}

impl Owner {
    /// The calling process.
    pub fn current() -> Owner {
        let pid = std::process::id();
        Owner {
            pid,
            start: start_time(pid).unwrap_or(0),
            pidns: pidns_inode("self").unwrap_or(0),
        }
    }

    /// Whether the owner is alive, judged from the caller's PID namespace.
    pub fn liveness(&self) -> Liveness {
        let ours = pidns_inode("self").unwrap_or(0);
        if self.pidns != ours {
            return Liveness::Foreign;
        }
        match start_time(self.pid) {
            Some(t) if t == self.start => Liveness::Alive,
            _ => Liveness::Dead,
        }
    }

    /// The name of this owner's instance for `tool`.
    pub fn instance_name(&self, tool: &str) -> String {
        format!(
            "{INSTANCE_PREFIX}{tool}-{}-{}-{}",
            self.pid, self.start, self.pidns
        )
    }

    /// The name of this owner's dynamic-event group.
    pub fn group_name(&self) -> String {
        format!("{GROUP_PREFIX}{}_{}_{}", self.pid, self.start, self.pidns)
    }

    /// The name of this owner's synthetic event `what` (a short
    /// identifier): its group name, `_`, `what`.
    pub fn synth_name(&self, what: &str) -> String {
        format!("{}_{what}", self.group_name())
    }

    /// Parses the owner out of one of our synthetic event names.
    pub fn from_synth_name(name: &str) -> Option<Owner> {
        let rest = name.strip_prefix(GROUP_PREFIX)?;
        let mut it = rest.splitn(4, '_');
        let pid = u32::try_from(parse_num(it.next()?)?).ok()?;
        let start = parse_num(it.next()?)?;
        let pidns = parse_num(it.next()?)?;
        let what = it.next()?;
        if what.is_empty() || !what.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return None;
        }
        Some(Owner { pid, start, pidns })
    }

    /// Parses the owner out of one of our instance names; `None` for any
    /// name that is not exactly of our form (then it is not ours to touch).
    pub fn from_instance_name(name: &str) -> Option<(String, Owner)> {
        let rest = name.strip_prefix(INSTANCE_PREFIX)?;
        let mut it = rest.rsplitn(4, '-');
        let pidns = parse_num(it.next()?)?;
        let start = parse_num(it.next()?)?;
        let pid = parse_num(it.next()?)?;
        let tool = it.next()?;
        if tool.is_empty()
            || !tool
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return None;
        }
        let pid = u32::try_from(pid).ok()?;
        Some((tool.to_string(), Owner { pid, start, pidns }))
    }

    /// Parses the owner out of one of our group names.
    pub fn from_group_name(name: &str) -> Option<Owner> {
        let rest = name.strip_prefix(GROUP_PREFIX)?;
        let mut it = rest.split('_');
        let pid = u32::try_from(parse_num(it.next()?)?).ok()?;
        let start = parse_num(it.next()?)?;
        let pidns = parse_num(it.next()?)?;
        if it.next().is_some() {
            return None;
        }
        Some(Owner { pid, start, pidns })
    }
}

fn parse_num(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn stat_start_time_survives_odd_command_names() {
        let stat =
            "1234 (a) b (c)) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 200";
        assert_eq!(parse_stat_start(stat), Some(98765));
        assert_eq!(parse_stat_start("garbage"), None);
    }

    #[test]
    fn current_process_is_alive_and_names_round_trip() {
        let me = Owner::current();
        assert!(me.start > 0);
        assert_eq!(me.liveness(), Liveness::Alive);
        let inst = me.instance_name("reset-ftrace");
        assert_eq!(
            Owner::from_instance_name(&inst),
            Some(("reset-ftrace".to_string(), me))
        );
        assert_eq!(Owner::from_group_name(&me.group_name()), Some(me));
        assert_eq!(Owner::from_synth_name(&me.synth_name("lat")), Some(me));
        assert_eq!(Owner::from_synth_name(&me.synth_name("a_b1")), Some(me));
        assert_eq!(Owner::from_group_name(&me.synth_name("lat")), None);
        let reused = Owner {
            start: me.start + 1,
            ..me
        };
        assert_eq!(reused.liveness(), Liveness::Dead);
        let foreign = Owner {
            pidns: me.pidns + 1,
            ..me
        };
        assert_eq!(foreign.liveness(), Liveness::Foreign);
    }

    #[test]
    fn names_not_of_our_form_are_not_ours() {
        for n in [
            "ftrace-tools",
            "ftrace-tools-x-1-2",
            "ftrace-tools--1-2-3",
            "ftrace-tools-X-1-2-3",
            "ftrace-tools-t-01-2-3",
            "other-t-1-2-3",
            "ftrace-tools-t-1-2-3-",
        ] {
            assert_eq!(Owner::from_instance_name(n), None, "{n}");
        }
        for g in [
            "ftrace_tools_1_2",
            "ftrace_tools_1_2_3_4",
            "kprobes",
            "ftrace_tools_a_2_3",
        ] {
            assert_eq!(Owner::from_group_name(g), None, "{g}");
        }
        for n in [
            "ftrace_tools_1_2_3",
            "ftrace_tools_1_2_3_",
            "ftrace_tools_1_2_x_lat",
            "ftrace_tools_1_2_3_l-t",
            "wakeup_latency",
        ] {
            assert_eq!(Owner::from_synth_name(n), None, "{n}");
        }
    }

    proptest! {
        #[test]
        fn name_parsers_never_panic(s in ".*") {
            let _ = Owner::from_instance_name(&s);
            let _ = Owner::from_group_name(&s);
            let _ = Owner::from_synth_name(&s);
            let _ = parse_stat_start(&s);
        }
    }
}
