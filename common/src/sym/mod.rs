//! Symbols: from a uprobe TARGET and SYMBOL to a file offset, and from stack
//! addresses back to function names. Pure Rust: no objdump, nm, ldconfig or
//! file.
//!
//! - [`target`]: `bash`, `libc`, `libssl.so.3`, `/path` (and, with a PID,
//!   the file that process maps, through `/proc/PID/root`) to a file.
//! - [`elf`]: that file's functions; `malloc`, `memcpy@GLIBC_2.2.5`,
//!   `ns::Class::method`, `func+0x10` or `0xADDR` to the file offset that
//!   `uprobe_events` takes; IFUNCs explained; listings for `-l`.
//! - [`symbolize`]: kernel and user stack addresses to `func+0xoff`.
//! - [`ldcache`], [`maps`], [`demangle`]: the parsers beneath.
//!
//! ```no_run
//! use ftrace_common::sym::{elf::ElfFile, target::resolve_target};
//! # fn main() -> ftrace_common::Result<()> {
//! let target = resolve_target("libc", None)?;
//! let file = ElfFile::open(&target.path)?.with_name(&target.display_path);
//! let at = file.resolve("malloc", false)?;
//! println!("p:{}:{:#x}", target.path.display(), at.offset);
//! # Ok(()) }
//! ```

pub mod demangle;
pub mod elf;
mod ifunc;
pub mod kallsyms;
pub mod ldcache;
pub mod maps;
mod reader;
mod suggest;
pub mod symbolize;
pub mod target;

#[cfg(test)]
mod tests;
