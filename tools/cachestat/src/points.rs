//! Where cachestat counts, chosen from what the running kernel has: the
//! 5.15-5.18 folio changes renamed or removed the functions perf-tools'
//! cachestat counted (mark_page_accessed, add_to_page_cache_lru,
//! account_page_dirtied), so each role has a list, tried in order.
//! Tracepoints go first (nothing to insert, and they cover every caller);
//! only page accesses have no tracepoint and need a kprobe.

use ftrace_common::kernel::tracefs::Tracefs;
use ftrace_common::lifecycle::dynevent::{ProbeDef, ProbeGroup, ProbeKind};
use ftrace_common::{Error, ErrorKind, Result};

/// What a counting point counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A page (folio) of the cache was accessed.
    Access,
    /// A page was added to the cache: read from disk, or newly written.
    Add,
    /// A page of the cache was dirtied.
    Dirty,
    /// A buffer (block device metadata) was dirtied: also an access.
    BufferDirty,
}

pub const ROLES: [Role; 4] = [Role::Access, Role::Add, Role::Dirty, Role::BufferDirty];

impl Role {
    /// The name in -D's columns and in JSON.
    pub fn key(self) -> &'static str {
        match self {
            Role::Access => "accessed",
            Role::Add => "added",
            Role::Dirty => "dirtied",
            Role::BufferDirty => "buffers_dirtied",
        }
    }

    /// Where it can be counted, best first.
    fn candidates(self) -> &'static [Point] {
        use Point::{Kprobe as K, Tracepoint as T};
        match self {
            Role::Access => &[K("folio_mark_accessed"), K("mark_page_accessed")],
            Role::Add => &[
                T("filemap", "mm_filemap_add_to_page_cache"),
                K("filemap_add_folio"),
                K("add_to_page_cache_lru"),
            ],
            Role::Dirty => &[
                T("writeback", "writeback_dirty_folio"),
                T("writeback", "writeback_dirty_page"),
                K("folio_account_dirtied"),
                K("account_page_dirtied"),
            ],
            Role::BufferDirty => &[T("block", "block_dirty_buffer"), K("mark_buffer_dirty")],
        }
    }
}

/// A tracepoint (system, event) or a kernel function for a kprobe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    Tracepoint(&'static str, &'static str),
    Kprobe(&'static str),
}

impl std::fmt::Display for Point {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Point::Tracepoint(s, e) => write!(f, "{s}:{e}"),
            Point::Kprobe(func) => write!(f, "{func}()"),
        }
    }
}

/// One role's point, armed: the event to enable and count.
#[derive(Debug, Clone)]
pub struct Armed {
    pub role: Role,
    pub point: Point,
    pub system: String,
    pub event: String,
    pub id: u16,
}

/// Chooses and creates a point for every role. A kprobe the kernel
/// refuses (no such function) makes the next candidate be tried. Exit 2
/// naming what is missing when a role has none; page accesses without
/// kprobes are refused before anything is written.
pub fn arm(tfs: &Tracefs, probes: &mut ProbeGroup, kprobes: bool) -> Result<Vec<Armed>> {
    if !kprobes {
        return Err(Error::unsupported(
            "this kernel has no kprobe events (CONFIG_KPROBE_EVENTS): no tracepoint marks a page cache access, so hits cannot be counted (misses and dirtied pages alone would make every access look like a hit or nothing); cachestat needs a kprobe on folio_mark_accessed or mark_page_accessed",
        ));
    }
    let mut out = Vec::new();
    for role in ROLES {
        let mut tried = Vec::new();
        let mut found = None;
        for &point in role.candidates() {
            match point {
                Point::Tracepoint(sys, ev) => {
                    if tfs.exists(format!("events/{sys}/{ev}/id")) {
                        found = Some((point, sys.to_string(), ev.to_string()));
                        break;
                    }
                    tried.push(format!("{point} (no such tracepoint)"));
                }
                Point::Kprobe(func) if kprobes => {
                    let def = ProbeDef {
                        kind: ProbeKind::Kprobe,
                        name: format!("cs{}_{}", std::process::id(), role.key()),
                        location: func.to_string(),
                        args: Vec::new(),
                    };
                    match probes.add(&def) {
                        Ok(p) => {
                            found = Some((point, p.group.clone(), p.name.clone()));
                            break;
                        }
                        Err(e) if e.kind() == ErrorKind::Rejected => {
                            let why = e.message().lines().next().unwrap_or("").to_string();
                            tried.push(format!("{point} ({why})"));
                        }
                        Err(e) => return Err(e),
                    }
                }
                Point::Kprobe(_) => tried.push(format!("{point} (no kprobes)")),
            }
        }
        let Some((point, system, event)) = found else {
            return Err(Error::unsupported(format!(
                "no way to count pages {} on this kernel: {}",
                role.key(),
                tried.join("; ")
            )));
        };
        let id = tfs.event_id(&system, &event)?;
        out.push(Armed {
            role,
            point,
            system,
            event,
            id,
        });
    }
    Ok(out)
}
