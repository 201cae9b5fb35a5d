//! A private ftrace instance per run: `instances/ftrace-tools-<tool>-...`.
//!
//! Everything a tool traces is set up inside its own instance (buffer size,
//! clock, events, filters, PID lists, options), so runs never disturb each
//! other or anyone else's tracing, and no lock is needed. Dropping the
//! [`Instance`] stops it, disables what it enabled and removes it.
//!
//! The instance starts with tracing off; call [`Instance::start`] once it is
//! configured.

use crate::base::error::{Error, ErrorKind, IoContext, Result};
use crate::buffer::format::EventFormat;
use crate::buffer::reader::Reader;
use crate::kernel::errorlog;
use crate::kernel::proc::Task;
use crate::kernel::tracefs::{self, Tracefs};
use crate::lifecycle::owner::Owner;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The trace clock every instance uses: `mono` matches `CLOCK_MONOTONIC`, so
/// events from different CPUs merge, and compare with user-space times.
pub const CLOCK: &str = "mono";

/// The default per-CPU buffer size: large enough that a plain reader keeps up
/// with millions of events per second, bounded in total on big machines.
pub fn default_buffer_kb(ncpus: usize) -> u32 {
    let per_cpu = 65536 / ncpus.max(1) as u32;
    per_cpu.clamp(1024, 8192)
}

/// Choices for [`Instance::create_with`]. The default is what
/// [`Instance::create`] does.
///
/// Two of the usual set-up steps cost the kernel an RCU grace period or
/// more (tens of milliseconds on a busy machine): resizing the buffers, and
/// a PID list (`set_event_notrace_pid`), whose removal at the end waits for
/// the scheduler hooks it installed. A tool whose events cannot come fast
/// enough to need more than the kernel's default buffer, or that cannot
/// trace itself (or filters itself out by other means), may skip them.
#[derive(Debug, Clone, Default)]
pub struct InstanceOptions {
    /// Per-CPU buffer in KiB; `None`: [`default_buffer_kb`], or the
    /// kernel's default with `kernel_buffer`.
    pub buffer_kb: Option<u32>,
    /// Keep the kernel's default buffer size when `buffer_kb` is `None`
    /// (about 1.4 MB per CPU): no resize.
    pub kernel_buffer: bool,
    /// Do not put this process in `set_event_notrace_pid`.
    pub trace_self: bool,
    /// Keep the kernel's default trace clock (`local`) instead of [`CLOCK`]:
    /// setting a clock resets the buffers (an RCU wait). For tools that
    /// never merge CPUs by time stamp nor compare them with user space
    /// (counting only).
    pub keep_clock: bool,
}

/// A running tool's private instance.
#[derive(Debug)]
pub struct Instance {
    tfs: Tracefs,
    name: String,
    dir: PathBuf,
    enabled: Vec<String>,
    filtered: Vec<String>,
    removed: bool,
    /// A handle on the top-level buffer ([`Instance::top_level`]).
    top: bool,
}

impl Instance {
    /// A handle on the top level's buffer, for a tool that has taken the
    /// top level (where the kernel cannot do what it needs in an instance)
    /// and restores its settings itself: the reader and event calls work
    /// on it as on an instance; dropping it disables the events it enabled
    /// and clears the filters it set, and changes nothing else.
    pub fn top_level(tfs: &Tracefs) -> Instance {
        Instance {
            tfs: tfs.clone(),
            name: "(top level)".into(),
            dir: tfs.root().to_path_buf(),
            enabled: Vec::new(),
            filtered: Vec::new(),
            removed: false,
            top: true,
        }
    }

    /// Creates `instances/ftrace-tools-<tool>-<owner>` with tracing off,
    /// the `mono` clock and `buffer_kb` KiB per CPU (default: see
    /// [`default_buffer_kb`]).
    pub fn create(tfs: &Tracefs, tool: &str, buffer_kb: Option<u32>) -> Result<Instance> {
        Instance::create_with(
            tfs,
            tool,
            &InstanceOptions {
                buffer_kb,
                ..InstanceOptions::default()
            },
        )
    }

    /// Like [`Instance::create`], with the choices of [`InstanceOptions`].
    pub fn create_with(tfs: &Tracefs, tool: &str, opts: &InstanceOptions) -> Result<Instance> {
        let buffer_kb = opts.buffer_kb;
        crate::kernel::caps::require(tfs, crate::kernel::caps::Feature::Instances)?;
        // A process may hold several instances at once (a tool that needs
        // two, tests running in threads): the second and later get a
        // sequence number in the tool part of the name.
        static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tool = if seq == 0 {
            tool.to_string()
        } else {
            format!("{tool}-{seq}")
        };
        let name = Owner::current().instance_name(&tool);
        let dir = tfs.path("instances").join(&name);
        fs::create_dir(&dir).map_err(|e| Error::io("create the tracing instance", &dir, e))?;
        let inst = Instance {
            tfs: tfs.clone(),
            name,
            dir,
            enabled: Vec::new(),
            filtered: Vec::new(),
            removed: false,
            top: false,
        };
        inst.write("tracing_on", "0")?;
        let kb = match buffer_kb {
            Some(0) => return Err(Error::usage("the buffer size must be at least 1 KiB")),
            Some(kb) => Some(kb),
            None if opts.kernel_buffer => None,
            None => Some(default_buffer_kb(inst.cpus().len())),
        };
        if let Some(kb) = kb {
            inst.write("buffer_size_kb", &kb.to_string()).map_err(|e| {
                e.context(format!(
                    "cannot get a {kb} KiB per-CPU trace buffer (try a smaller -b)"
                ))
            })?;
        }
        if !opts.keep_clock
            && inst
                .read("trace_clock")
                .map(|c| c.contains(CLOCK))
                .unwrap_or(false)
        {
            inst.write("trace_clock", CLOCK)?;
        }
        // Never trace ourselves: our own reads of /proc and tracefs would
        // otherwise feed back into what we trace.
        if !opts.trace_self && inst.exists("set_event_notrace_pid") {
            inst.write("set_event_notrace_pid", &std::process::id().to_string())?;
        }
        // Wake a waiting reader well before a buffer can fill up.
        if inst.exists("buffer_percent") {
            inst.write("buffer_percent", "25")?;
        }
        Ok(inst)
    }

    /// The instance's name (`ftrace-tools-...`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The instance's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The tracefs this instance lives in.
    pub fn tracefs(&self) -> &Tracefs {
        &self.tfs
    }

    /// The path of a file of this instance.
    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.dir.join(rel)
    }

    /// Whether a file of this instance exists.
    pub fn exists(&self, rel: impl AsRef<Path>) -> bool {
        self.path(rel).exists()
    }

    /// Reads a file of this instance.
    pub fn read(&self, rel: impl AsRef<Path>) -> Result<String> {
        tracefs::read_text(&self.path(rel))
    }

    /// Writes (truncating) a file of this instance.
    pub fn write(&self, rel: impl AsRef<Path>, value: &str) -> Result<()> {
        tracefs::write_file(&self.path(rel), value, false)
    }

    /// The CPUs with a buffer in this instance, ascending.
    pub fn cpus(&self) -> Vec<u32> {
        let mut cpus: Vec<u32> = fs::read_dir(self.path("per_cpu"))
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter_map(|e| e.file_name().to_str()?.strip_prefix("cpu")?.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        cpus.sort_unstable();
        cpus
    }

    /// The format of an event, e.g. `("syscalls", "sys_enter_read")`.
    pub fn event_format(&self, system: &str, event: &str) -> Result<EventFormat> {
        let rel = format!("events/{system}/{event}/format");
        let path = self.path(&rel);
        if !path.exists() {
            return Err(Error::usage(format!(
                "no tracepoint {system}:{event} on this kernel (see `tpoint -l`)"
            )));
        }
        let text = tracefs::read_text(&path)?;
        EventFormat::parse(&text).map_err(|e| e.context(format!("parsing {}", path.display())))
    }

    /// Sets a filter on an event in this instance. A filter the kernel
    /// refuses gives an error with its `error_log` entry.
    pub fn set_filter(&mut self, system: &str, event: &str, filter: &str) -> Result<()> {
        check_one_line("filter", filter)?;
        let rel = format!("events/{system}/{event}/filter");
        let path = self.path(&rel);
        match tracefs::write_raw(&path, filter, false) {
            Ok(()) => {
                self.filtered.push(rel);
                Ok(())
            }
            Err(e) => {
                let mut msg =
                    format!("the kernel rejected the filter '{filter}' on {system}:{event}: {e}");
                let log = self.read("error_log").unwrap_or_default();
                if let Some(entry) = errorlog::find(&log, filter, false) {
                    msg.push('\n');
                    msg.push_str(&errorlog::indent(&entry));
                } else if let Ok(state) = tracefs::read_text(&path) {
                    // Older kernels explain filter errors in the filter file.
                    let state = state.trim();
                    if !state.is_empty() && state != "none" {
                        msg.push('\n');
                        msg.push_str(&errorlog::indent(state));
                    }
                }
                Err(Error::rejected(msg))
            }
        }
    }

    /// Enables an event in this instance; it is disabled again on drop.
    pub fn enable_event(&mut self, system: &str, event: &str) -> Result<()> {
        let rel = format!("events/{system}/{event}/enable");
        if !self.exists(&rel) {
            return Err(Error::usage(format!(
                "no tracepoint {system}:{event} on this kernel (see `tpoint -l`)"
            )));
        }
        self.write(&rel, "1")?;
        self.enabled.push(rel);
        Ok(())
    }

    /// Disables an event this instance enabled.
    pub fn disable_event(&mut self, system: &str, event: &str) -> Result<()> {
        let rel = format!("events/{system}/{event}/enable");
        self.write(&rel, "0")?;
        self.enabled.retain(|r| *r != rel);
        Ok(())
    }

    /// Sets an option of this instance (`options/NAME`).
    pub fn set_option(&mut self, option: &str, on: bool) -> Result<()> {
        let rel = format!("options/{option}");
        if !self.exists(&rel) {
            return Err(Error::unsupported(format!(
                "this kernel has no trace option '{option}'"
            )));
        }
        self.write(&rel, if on { "1" } else { "0" })
    }

    /// Traces events only of these thread IDs (`set_event_pid`); with
    /// `follow` also their future children and threads (`event-fork`).
    pub fn set_event_pids(&mut self, tids: &[u32], follow: bool) -> Result<()> {
        if follow {
            self.set_option("event-fork", true)?;
        }
        let list: Vec<String> = tids.iter().map(|t| t.to_string()).collect();
        tracefs::write_file(&self.path("set_event_pid"), &list.join(" "), false)
    }

    /// Adds thread IDs to `set_event_pid` without dropping those there.
    pub fn add_event_pids(&mut self, tids: &[u32]) -> Result<()> {
        let list: Vec<String> = tids.iter().map(|t| t.to_string()).collect();
        tracefs::write_file(&self.path("set_event_pid"), &list.join(" "), true)
    }

    /// Limits this instance to a task: its events (`set_event_pid`) and,
    /// with `functions`, the function tracers (`set_ftrace_pid`). A process
    /// is followed into the threads and processes it starts
    /// (`event-fork`, `function-fork`); its thread list is read twice, so
    /// that threads started while the first was written are in too.
    pub fn follow(&mut self, task: Task, functions: bool) -> Result<()> {
        let follow = matches!(task, Task::Process(_));
        self.set_event_pids(&task.threads()?, follow)?;
        if follow {
            self.add_event_pids(&task.threads().unwrap_or_default())?;
        }
        if functions {
            self.set_function_pids(task)?;
        }
        Ok(())
    }

    /// Limits the function tracers of this instance to a task
    /// (`set_ftrace_pid`; a process with `function-fork`).
    pub fn set_function_pids(&mut self, task: Task) -> Result<()> {
        let list = |t: &[u32]| {
            t.iter()
                .map(|t| t.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        };
        if matches!(task, Task::Process(_)) {
            self.set_option("function-fork", true)?;
        }
        let path = self.path("set_ftrace_pid");
        tracefs::write_file(&path, &list(&task.threads()?), false)?;
        if matches!(task, Task::Process(_)) {
            tracefs::write_file(&path, &list(&task.threads().unwrap_or_default()), true)?;
        }
        Ok(())
    }

    /// Keeps this process out of the function tracers of this instance
    /// (`set_ftrace_notrace_pid`, where the kernel has it): its own reads
    /// of the buffer would be traced and make more to read.
    pub fn exclude_self_from_functions(&mut self) -> Result<()> {
        if self.exists("set_ftrace_notrace_pid") {
            self.write("set_ftrace_notrace_pid", &std::process::id().to_string())?;
        }
        Ok(())
    }

    /// Whether the kernel can run `tracer` in this instance (it is in the
    /// instance's `available_tracers`).
    pub fn has_tracer(&self, tracer: &str) -> bool {
        self.read("available_tracers")
            .map(|t| t.split_whitespace().any(|t| t == tracer))
            .unwrap_or(false)
    }

    /// Sets this instance's tracer (`current_tracer`), if the kernel can
    /// run it here; removing the instance ends it.
    pub fn set_tracer(&mut self, tracer: &str) -> Result<()> {
        if !self.has_tracer(tracer) {
            let tracers = self.read("available_tracers").unwrap_or_default();
            return Err(Error::unsupported(format!(
                "this kernel cannot run the {tracer} tracer in an instance (its available_tracers: {})",
                tracers.trim()
            )));
        }
        self.write("current_tracer", tracer)
    }

    /// Opens this instance's per-CPU buffers for reading. The reader
    /// borrows the instance: it is closed before the instance goes.
    pub fn reader(&self) -> Result<Reader<'_>> {
        let hp = self.tfs.read("events/header_page")?;
        Reader::open(&self.dir, &hp, &self.cpus(), CLOCK)
    }

    /// Turns recording on.
    pub fn start(&self) -> Result<()> {
        self.write("tracing_on", "1")
    }

    /// Turns recording off (what is in the buffers stays readable).
    pub fn stop(&self) -> Result<()> {
        self.write("tracing_on", "0")
    }

    /// Undoes everything and removes the instance; [`Drop`] calls this and
    /// reports a failure on stderr instead.
    pub fn remove(&mut self) -> Result<()> {
        if self.removed {
            return Ok(());
        }
        if self.top {
            for rel in std::mem::take(&mut self.enabled).iter().rev() {
                let _ = self.write(rel, "0");
            }
            for rel in std::mem::take(&mut self.filtered) {
                let _ = self.write(&rel, "0");
            }
            self.removed = true;
            return Ok(());
        }
        let _ = self.write("tracing_on", "0");
        // Removing the directory disables every event of the instance and
        // frees its filters and PID lists at once, after one wait for the
        // tracepoint users; disabling each event first would cost a wait
        // per event. Only if the kernel refuses (a reader still closing)
        // is each change undone by hand before trying again.
        match fs::remove_dir(&self.dir) {
            Ok(()) => {
                self.enabled.clear();
                self.filtered.clear();
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(_) => {
                for rel in std::mem::take(&mut self.enabled).iter().rev() {
                    let _ = self.write(rel, "0");
                }
                for rel in std::mem::take(&mut self.filtered) {
                    let _ = self.write(&rel, "0");
                }
                remove_instance_dir(&self.dir)?;
            }
        }
        self.removed = true;
        Ok(())
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            eprintln!("warning: {e}; `reset-ftrace` removes it once this process has exited");
        }
    }
}

/// Removes an instance directory, retrying while the kernel says EBUSY (a
/// reader that is closing, an event still being disabled). A directory that
/// is already gone counts as removed.
pub fn remove_instance_dir(dir: &Path) -> Result<()> {
    let mut delay = Duration::from_millis(1);
    for _ in 0..12 {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(100));
            }
            Err(e) => return Err(Error::io("remove the tracing instance", dir, e)),
        }
    }
    Err(Error::new(
        ErrorKind::Busy,
        format!(
            "cannot remove the tracing instance {}: still busy",
            dir.display()
        ),
    ))
}

/// Refuses text that would end a tracefs command early or start another.
pub fn check_one_line(what: &str, text: &str) -> Result<()> {
    if let Some(c) = text.chars().find(|c| c.is_control()) {
        return Err(Error::usage(format!(
            "the {what} contains a control character ({:?}); it must be one line",
            c
        )));
    }
    Ok(())
}

/// Lists the instance names in tracefs.
pub fn list_instances(tfs: &Tracefs) -> Result<Vec<String>> {
    let dir = tfs.path("instances");
    let rd = fs::read_dir(&dir).ctx("list", &dir)?;
    let mut names: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffer_default_is_bounded() {
        assert_eq!(default_buffer_kb(1), 8192);
        assert_eq!(default_buffer_kb(2), 8192);
        assert_eq!(default_buffer_kb(16), 4096);
        assert_eq!(default_buffer_kb(512), 1024);
    }

    #[test]
    fn one_line_check_refuses_newlines() {
        assert!(check_one_line("filter", "a == 1").is_ok());
        let e = check_one_line("filter", "a == 1\n-:x").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("one line"));
    }
}
