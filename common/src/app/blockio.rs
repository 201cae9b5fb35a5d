//! Block I/O from the buffer, for the tools that pair or count it (iosnoop,
//! iolatency, bitesize): which `block:` events this kernel has and what each
//! means ([`Plan`]), their decoding by field name ([`Dec`]), the device
//! table reloaded when a new disk shows up ([`Devs`]), and the kernel filter
//! for one device ([`dev_filter`]). The pairing itself is
//! [`crate::kernel::block::Tracker`].

use crate::buffer::format::{EventFormat, Field};
use crate::buffer::reader::Event;
use crate::kernel::block::{DevSel, DevTable, RqEvent};
use crate::{Error, Result};
use std::collections::{HashMap, HashSet};

/// What an event means to the tracker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The request was created for its process (queueing starts).
    Start,
    /// The device got the request.
    Issue,
    /// The request completed (maybe partly).
    Done,
    /// A bio merged at the front of a request.
    FrontMerge,
    /// Two requests merged.
    RqMerge,
}

/// The block events of one kernel generation.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Event name, its role, whether it is required.
    pub events: Vec<(&'static str, Role, bool)>,
    /// Whether completions may be partial (`block_rq_complete`).
    pub partial_completions: bool,
    /// The start and done events, for messages.
    pub label: &'static str,
}

impl Plan {
    /// The plan for the block events `has` says exist (this kernel's, or a
    /// file's): on 6.5 and later `block_io_start`/`block_io_done`, else
    /// (or with `legacy`) `block_getrq`/`block_rq_complete`; with
    /// `block_rq_issue` and the merge events where there.
    pub fn with(has: &dyn Fn(&str) -> bool, legacy: bool) -> Result<Plan> {
        let (mut events, partial, label) =
            if !legacy && has("block_io_start") && has("block_io_done") {
                (
                    vec![
                        ("block_io_start", Role::Start, true),
                        ("block_rq_issue", Role::Issue, true),
                        ("block_io_done", Role::Done, true),
                    ],
                    false,
                    "block_io_start/block_io_done",
                )
            } else {
                (
                    vec![
                        ("block_getrq", Role::Start, true),
                        ("block_rq_issue", Role::Issue, true),
                        ("block_rq_complete", Role::Done, true),
                    ],
                    true,
                    "block_getrq/block_rq_complete",
                )
            };
        events.push(("block_bio_frontmerge", Role::FrontMerge, false));
        events.push(("block_rq_merge", Role::RqMerge, false));
        for (e, _, required) in &events {
            if *required && !has(e) {
                return Err(Error::unsupported(format!(
                    "this kernel has no block:{e} tracepoint (CONFIG_BLOCK, CONFIG_TRACEPOINTS)"
                )));
            }
        }
        events.retain(|(e, _, _)| has(e));
        Ok(Plan {
            events,
            partial_completions: partial,
            label,
        })
    }
}

/// Field decoding of one block event, by name.
pub struct Dec {
    /// The event's id.
    pub id: u16,
    /// What it means.
    pub role: Role,
    dev: Field,
    sector: Field,
    nr_sector: Field,
    bytes: Option<Field>,
    rwbs: Field,
    comm: Option<Field>,
}

impl Dec {
    /// The decoder of an event of this format.
    pub fn new(fmt: &EventFormat, role: Role) -> Result<Dec> {
        Ok(Dec {
            id: fmt.id,
            role,
            dev: fmt.require("dev")?.clone(),
            sector: fmt.require("sector")?.clone(),
            nr_sector: fmt.require("nr_sector")?.clone(),
            bytes: fmt.field("bytes").cloned(),
            rwbs: fmt.require("rwbs")?.clone(),
            comm: fmt.field("comm").cloned(),
        })
    }

    /// The event's request fields (its device mapped to the whole disk);
    /// `None` if the record is too short.
    pub fn decode<'a>(&self, ev: &Event<'a>, devs: &mut Devs) -> Option<RqEvent<'a>> {
        let d = ev.data;
        let dev = self.dev.u64(d)? as u32;
        Some(RqEvent {
            ts: ev.ts,
            dev: devs.disk_of(dev),
            sector: self.sector.u64(d)?,
            nr_sector: self.nr_sector.u64(d)?,
            bytes: self.bytes.as_ref().and_then(|f| f.u64(d)),
            rwbs: self.rwbs.bytes(d)?,
            tid: ev.pid,
            comm: self.comm.as_ref().and_then(|f| f.bytes(d)).unwrap_or(b""),
        })
    }
}

/// The device table, reloaded once when an unknown device shows up.
pub struct Devs {
    table: DevTable,
    disk: HashMap<u32, u32>,
    tried: HashSet<u32>,
    /// Devices of another machine (--read): this one's table is not theirs.
    pub offline: bool,
}

impl Devs {
    /// Over this table.
    pub fn new(table: DevTable) -> Devs {
        let disk = table.devs().iter().map(|d| (d.dev, d.disk)).collect();
        Devs {
            table,
            disk,
            tried: HashSet::new(),
            offline: false,
        }
    }

    /// The whole disk of a device (itself if unknown).
    pub fn disk_of(&mut self, dev: u32) -> u32 {
        if let Some(&d) = self.disk.get(&dev) {
            return d;
        }
        if !self.offline && self.tried.insert(dev) {
            *self = Devs {
                tried: std::mem::take(&mut self.tried),
                ..Devs::new(DevTable::load())
            };
            if let Some(&d) = self.disk.get(&dev) {
                return d;
            }
        }
        dev
    }

    /// The name of the partition holding `sector` of `disk`, else the
    /// disk's name.
    pub fn name(&self, disk: u32, sector: u64) -> Option<&str> {
        self.table
            .partitions_of(disk)
            .find(|p| sector >= p.start && sector < p.start.saturating_add(p.sectors))
            .map(|p| p.name.as_str())
            .or_else(|| self.table.name_of(disk))
    }
}

/// The kernel filter for one device on event `ev` of role `role`: the
/// disk, and for bio events (which may name a partition) its partitions
/// too.
pub fn dev_filter(sel: &DevSel, table: &DevTable, role: Role, ev: &str) -> String {
    let mut devs = vec![sel.disk];
    if matches!(role, Role::FrontMerge) || ev == "block_getrq" {
        devs.extend(table.partitions_of(sel.disk).map(|p| p.dev));
    }
    let f: Vec<String> = devs.iter().map(|d| format!("dev == {d}")).collect();
    f.join(" || ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_follow_the_kernel_generation() {
        let new = |e: &str| e != "block_getrq";
        let p = Plan::with(&new, false).unwrap();
        assert_eq!(p.label, "block_io_start/block_io_done");
        assert!(!p.partial_completions);
        let old = |e: &str| !e.starts_with("block_io_") && e != "block_rq_merge";
        let p = Plan::with(&old, false).unwrap();
        assert!(p.partial_completions);
        assert!(p.events.iter().all(|(e, _, _)| *e != "block_rq_merge"));
        assert!(Plan::with(&|e: &str| e != "block_rq_issue", false).is_err());
    }
}
