//! Counting in the kernel: one hist trigger on each event, keyed on the
//! kernel stack (`common_stacktrace` from Linux 6.5, `stacktrace` before),
//! and on the task (`common_pid.execname`) where its name is shown. Nothing
//! goes through the trace buffer; the tables are read at each interval and
//! at the end, and what they gained since the last reading is counted.
//!
//! The kernel keeps the innermost 16 frames of a stack in a hist key and
//! prints each as `%pS` does (`func+0x5/0x20 [module]`): without `-v` the
//! function name is kept, as the buffer path shows it.

use ftrace_common::app::stacks::{StackCounter, StackKey, StackOpts};
use ftrace_common::lifecycle::hist::{self, HistSpec, HistTrigger};
use ftrace_common::lifecycle::instance::Instance;
use ftrace_common::Result;
use std::collections::HashMap;

/// Entries in each table (the kernel's maximum is 131072).
const TABLE_SIZE: u32 = 16384;

/// The stack key's name on a kernel of this release (`6.1.0-57-amd64`).
pub fn stack_key(release: &str) -> &'static str {
    let mut n = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>().unwrap_or(0));
    if (n.next().unwrap_or(0), n.next().unwrap_or(0)) >= (6, 5) {
        "common_stacktrace"
    } else {
        "stacktrace"
    }
}

/// The triggers and what they had counted at the last reading.
pub struct KernelStacks {
    trigs: Vec<HistTrigger>,
    key: &'static str,
    opts: StackOpts,
    last: HashMap<StackKey, u64>,
    /// Hits the kernel could not count: its tables were full.
    pub dropped: u64,
}

impl KernelStacks {
    /// Adds a trigger on each of `events` of `inst`.
    pub fn arm(inst: &Instance, events: &[(String, String)], opts: &StackOpts) -> Result<Self> {
        let key = stack_key(&ftrace_common::kernel::config::release());
        let mut keys = Vec::new();
        if opts.comm || opts.per_process {
            keys.push("common_pid.execname");
        }
        keys.push(key);
        let mut trigs = Vec::new();
        for (sys, ev) in events {
            let spec = HistSpec::new(&keys).size(TABLE_SIZE);
            trigs.push(HistTrigger::add(inst, sys, ev, spec, false)?);
        }
        Ok(KernelStacks {
            trigs,
            key,
            opts: opts.clone(),
            last: HashMap::new(),
            dropped: 0,
        })
    }

    /// Reads every table and adds to `counter` what each stack gained
    /// since the last reading.
    pub fn collect(&mut self, counter: &mut StackCounter) -> Result<()> {
        let mut now: HashMap<StackKey, u64> = HashMap::new();
        let mut dropped = 0;
        for t in &self.trigs {
            let h = t.read()?;
            dropped += h.dropped.unwrap_or(0);
            for e in &h.entries {
                let Some(k) = to_key(e, self.key, &self.opts) else {
                    continue;
                };
                *now.entry(k).or_default() += e.hitcount();
            }
        }
        for (k, n) in &now {
            let gained = n.saturating_sub(self.last.get(k).copied().unwrap_or(0));
            if gained > 0 {
                counter.add(k.clone(), gained);
            }
        }
        self.last = now;
        self.dropped = dropped;
        Ok(())
    }
}

/// A table entry as the buffer path would show its stack.
fn to_key(e: &hist::HistEntry, key: &str, opts: &StackOpts) -> Option<StackKey> {
    let frames = &e.key(key)?.raw;
    let kernel = frames
        .lines()
        .map(|f| frame(f, opts.addresses))
        .filter(|f| !f.is_empty())
        .collect();
    let task = e.key("common_pid");
    Some(StackKey {
        comm: task
            .filter(|_| opts.comm || opts.per_process)
            .and_then(|t| t.label.clone()),
        pid: task
            .filter(|_| opts.per_process)
            .and_then(|t| t.value)
            .map(|p| p as u32),
        kernel,
        user: Vec::new(),
    })
}

/// `func+0x5/0x20 [mod]` as shown: `func`, or as printed with `-v`.
fn frame(text: &str, addresses: bool) -> String {
    let text = text.trim();
    if addresses {
        return text.to_string();
    }
    let end = text.find(['+', ' ']).unwrap_or(text.len());
    text[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stack_key_was_renamed_in_6_5() {
        for (release, key) in [
            ("6.1.0-57-amd64", "stacktrace"),
            ("6.4.16", "stacktrace"),
            ("6.5.0", "common_stacktrace"),
            ("6.12.95+deb12-amd64", "common_stacktrace"),
            ("5.10.0-33-amd64", "stacktrace"),
            ("", "stacktrace"),
        ] {
            assert_eq!(stack_key(release), key, "{release}");
        }
    }

    #[test]
    fn entries_become_the_buffer_paths_stacks() {
        let text = "\
{ common_pid: ftt-workload    [       412], stacktrace:
         __do_sys_getppid+0x5/0x20
         ext4_read+0x1/0x140 [ext4]
} hitcount:        300
";
        let h = hist::parse(text);
        let opts = StackOpts {
            kernel: true,
            comm: true,
            ..StackOpts::default()
        };
        let k = to_key(&h.entries[0], "stacktrace", &opts).unwrap();
        assert_eq!(k.kernel, ["__do_sys_getppid", "ext4_read"]);
        assert_eq!(k.comm.as_deref(), Some("ftt-workload"));
        assert_eq!(k.pid, None);
        let opts = StackOpts {
            per_process: true,
            addresses: true,
            ..opts
        };
        let k = to_key(&h.entries[0], "stacktrace", &opts).unwrap();
        assert_eq!(k.pid, Some(412));
        assert_eq!(k.kernel[1], "ext4_read+0x1/0x140 [ext4]");
        assert!(to_key(&h.entries[0], "common_stacktrace", &opts).is_none());
    }
}
