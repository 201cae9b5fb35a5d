//! Kernel state, read and written as files: finding or mounting tracefs,
//! what the running kernel can do (and the option behind each feature, its
//! config and lockdown mode), what each tool needs of it,
//! the `error_log`, traceable functions and their filter files, tasks in
//! `/proc`, the system call tables and signal names. Nothing here creates an object
//! that must be undone; see [`crate::lifecycle`] for that.

pub mod block;
pub mod caps;
pub mod config;
pub mod errorlog;
pub mod functions;
pub mod lockdown;
pub mod needs;
pub mod proc;
pub mod signame;
pub mod syscalls;
pub mod tcp;
pub mod tracefs;
