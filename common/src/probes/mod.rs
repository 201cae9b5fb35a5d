//! kprobe and uprobe definitions as users write them (perf-tools'
//! `p:`/`r:` syntax), the kernel's fetch-argument styles, and what the
//! probe tools do alike around their probes.

pub mod args;
pub mod spec;
pub mod tool;
