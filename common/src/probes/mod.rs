//! kprobe and uprobe definitions as users write them (perf-tools'
//! `p:`/`r:` syntax): their shared shape ([`spec`]), each kind's location
//! and planning ([`kprobe`] with the traceable-function check of
//! [`kfuncs`], [`uprobe`] with its resolution to a file offset), the
//! kernel's fetch-argument styles, `$argN` ([`argn`]), and what the probe tools do alike
//! around their probes. kprobe, uprobe, hist and funclatency all use
//! these.

pub mod argn;
pub mod args;
pub mod event;
pub mod kfuncs;
pub mod kprobe;
pub mod matching;
pub mod pair;
pub mod pattern;
pub mod spec;
pub mod tls;
pub mod tool;
pub mod uprobe;
