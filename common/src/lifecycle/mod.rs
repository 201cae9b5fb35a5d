//! Everything a run creates or changes in the kernel, each a value whose
//! `Drop` undoes it: the private instance, probe groups, hist triggers,
//! the top level when a tool must take it (with its lock and its record of
//! what to put back). Names say who owns them (`ftrace-tools-...`,
//! `ftrace_tools_...`, with PID, start time and PID namespace), so that
//! what a killed run left is swept by the next one, and only ours.

pub mod dynevent;
pub mod instance;
pub mod lock;
pub mod owner;
pub mod survey;
pub mod sweep;
pub mod toplevel;
