//! One event printer for every tool that prints events one per line
//! (tpoint, kprobe, uprobe, ...): the tools supply only their formatting
//! ([`Events`]); the printer does what they all must do alike:
//!
//! - the line's head as the kernel's `trace` prints it (`comm-pid [cpu]
//!   flags secs: `, the flags column from the record's common fields) or
//!   the JSON object's common members;
//! - the stack record that follows an event (`-s`), kernel or user,
//!   symbolized;
//! - `-M N`: the run ends after the Nth event, once the round that holds
//!   its stack is read; later events and their stacks are skipped;
//! - this process's own events left out, where the kernel does not do it;
//! - lost events marked where they happened;
//! - the output flushed at the end of each round of reads, and a closed
//!   output ending the run.

use crate::app::flame::{self, FlameFiles, FlameOpts, Palette};
use crate::app::opts::{EventOpts, Recording};
use crate::app::output::Output;
use crate::app::status::TracingLine;
use crate::app::stream::{replay, stream, Sink, StreamOpts, Summary};
use crate::buffer::format::{EventFormat, Field};
use crate::buffer::printfmt::{self, Kernel, KernelStrings};
use crate::buffer::reader::Event;
use crate::buffer::tracedat::read::TraceDat;
use crate::kernel::proc::{CommCache, Task};
use crate::lifecycle::instance::Instance;
use crate::probes::tool::{AddrStyle, ProbeEvents, ProbeOut};
use crate::sym::kallsyms::KernelSyms;
use crate::sym::symbolize::{Frame, UserSymbols};
use crate::{Flow, Result};
use std::fmt::Write;
use std::time::Duration;

/// What a tool tells the [`EventPrinter`] about its events.
pub trait Events {
    /// Which of the tool's events the id is (an index of the tool's), or
    /// `None` for any other event.
    fn which(&self, id: u16) -> Option<usize>;

    /// The event's name in the text line.
    fn name(&self, which: usize) -> &str;

    /// The event's name in JSON (`"event"`); the text name by default.
    fn json_name(&self, which: usize) -> String {
        self.name(which).to_string()
    }

    /// Appends what follows `name:` in the text line (starting with a
    /// space).
    fn text(&mut self, which: usize, ev: &Event, syms: &mut Symbols, line: &mut String);

    /// Appends what follows the line's head (`... TIMESTAMP: `): by
    /// default `name:` and [`Events::text`]. Tools whose events the kernel
    /// prints without `name:` (system calls) write it all here.
    fn line(&mut self, which: usize, ev: &Event, syms: &mut Symbols, line: &mut String) {
        line.push_str(self.name(which));
        line.push(':');
        self.text(which, ev, syms, line);
    }

    /// Adds the tool's members to the event's JSON object.
    fn json(
        &mut self,
        which: usize,
        ev: &Event,
        syms: &mut Symbols,
        obj: &mut serde_json::Map<String, serde_json::Value>,
    );

    /// In collecting mode ([`PrinterOpts::collect`]): counts the event
    /// instead of printing it.
    fn collect(&mut self, _which: usize, _ev: &Event, _comm: &str) {}

    /// Whether the event is taken by the tool and not shown (an entry
    /// recorded for pairing with its return).
    fn consume(&mut self, _which: usize, _ev: &Event) -> bool {
        false
    }

    /// Events were lost (state kept across events cannot be trusted).
    fn lost(&mut self) {}
}

/// The symbol tables events and stacks are printed with.
#[derive(Default)]
pub struct Symbols {
    /// Kernel symbols (kallsyms), loaded when first needed.
    pub kernel: KernelSyms,
    /// User symbols, per process.
    pub user: UserSymbols,
    /// Kernel strings known by address (`printk_formats`).
    pub strings: KernelStrings,
}

impl Symbols {
    /// What an event's text looks up outside its record.
    pub fn lookups(&mut self) -> printfmt::Lookups<'_> {
        printfmt::Lookups {
            syms: &mut self.kernel,
            strings: &mut self.strings,
        }
    }
}

/// Which stacks follow the events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StackKind {
    /// `ftrace:kernel_stack` records (the `stacktrace` option).
    Kernel,
    /// `ftrace:user_stack` records (the `userstacktrace` option).
    User,
}

/// How an [`EventPrinter`] prints.
#[derive(Default)]
pub struct PrinterOpts {
    /// JSON lines instead of text.
    pub json: bool,
    /// `-M N`.
    pub max_events: Option<u64>,
    /// Leave this process's own events out (where no kernel filter does).
    pub skip_own: bool,
    /// Collect ([`Events::collect`]) instead of printing; losses are then
    /// reported once at the end, not marked.
    pub collect: bool,
    /// The format of the stack records that follow events, and their kind.
    pub stacks: Option<(EventFormat, StackKind)>,
    /// `sched:sched_process_exec`, enabled to rename tasks (see
    /// [`follow_execs`]).
    pub execs: Option<Execs>,
    /// The line's head as the kernel's `trace` prints it, with its flags
    /// column ([`line_head`]; tpoint); without it, `comm-pid [cpu] secs:`
    /// (the probe tools, whose text is their own).
    pub irq_info: bool,
    /// `--folded`/`--svg` with `-s`: the stacks are also counted, and the
    /// files written at the end of the run (the tool's name for the title).
    pub flame: Option<(&'static str, FlameFiles)>,
}

/// With `on` (`-s`), turns on the stack records of `kind` in the instance
/// (the `stacktrace` or `userstacktrace` option), for
/// [`PrinterOpts::stacks`].
pub fn enable_stacks(
    inst: &mut Instance,
    on: bool,
    kind: StackKind,
) -> Result<Option<(EventFormat, StackKind)>> {
    if !on {
        return Ok(None);
    }
    let (option, event) = match kind {
        StackKind::Kernel => ("stacktrace", "kernel_stack"),
        StackKind::User => ("userstacktrace", "user_stack"),
    };
    inst.set_option(option, true)?;
    Ok(Some((inst.event_format("ftrace", event)?, kind)))
}

/// `sched:sched_process_exec` in the run's instance: its id and `filename`.
pub struct Execs {
    id: u16,
    filename: Field,
}

/// Enables `sched:sched_process_exec` in the instance, where the kernel has
/// it: task names come from /proc or the kernel's saved_cmdlines when a
/// PID is first seen, and a process that forked (under its parent's name)
/// and then exec'd would keep its parent's name. Its exec event renames
/// it, in time order with the tool's events. Rare (one per exec), and
/// limited by `-p`/`-L` like the tool's events.
pub fn follow_execs(inst: &mut Instance) -> Option<Execs> {
    let fmt = inst.event_format("sched", "sched_process_exec").ok()?;
    let filename = fmt.field("filename")?.clone();
    inst.enable_event("sched", "sched_process_exec").ok()?;
    Some(Execs {
        id: fmt.id,
        filename,
    })
}

impl Execs {
    /// If `ev` is an exec, names its task as the kernel does from now on
    /// and says so.
    pub fn rename(&self, ev: &Event, comms: &mut CommCache) -> bool {
        if ev.id != self.id {
            return false;
        }
        if let Some(f) = self.filename.str(ev.data) {
            comms.set(ev.pid, &comm_after_exec(&f));
        }
        true
    }
}

/// The name the kernel gives a task that execs `filename`: its last
/// component, cut to 15 bytes (TASK_COMM_LEN - 1).
pub fn comm_after_exec(filename: &str) -> String {
    let base = filename.rsplit('/').next().unwrap_or(filename);
    let mut end = base.len().min(15);
    while !base.is_char_boundary(end) {
        end -= 1;
    }
    base[..end].to_string()
}

/// A run of an [`EventPrinter`], once set up.
pub struct Run {
    /// The line said when recording starts.
    pub line: TracingLine,
    /// Print column headers (`-H`).
    pub headers: bool,
    /// The run's length (`-d`).
    pub duration: Option<Duration>,
    /// The task it is limited to (`-p`/`-L`): the run ends when it exits.
    pub task: Option<Task>,
    /// `-w FILE`: record instead of printing (see [`crate::app::opts::WriteOpt`]).
    pub recording: Option<Recording>,
}

impl EventOpts {
    /// The tracing line for `what`, with this run's task and duration.
    pub fn tracing_line(&self, what: impl Into<String>) -> TracingLine {
        TracingLine::new(what)
            .task(self.task.task())
            .duration(self.duration.duration)
    }

    /// With `--read`: refuses the options that set up tracing.
    pub fn refuse_when_reading(&self) -> Result<()> {
        if self.task.task().is_some()
            || self.duration.duration.is_some()
            || self.buffer.buffer_kb.is_some()
        {
            return Err(crate::Error::usage(
                "-p, -L, -d and -b set up tracing: not with --read",
            ));
        }
        Ok(())
    }

    /// With `-w FILE`: refuses `-M` and `-j`, which shape what is printed.
    pub fn refuse_when_writing(&self) -> Result<()> {
        if self.max.max_events.is_some() || self.json.json {
            return Err(crate::Error::usage(
                "-M and -j shape what is printed; with -w nothing is (end with -d or Ctrl-C)",
            ));
        }
        Ok(())
    }

    /// The run these options ask for, once set up.
    pub fn run(&self, line: TracingLine) -> Run {
        Run {
            line,
            headers: self.headers.headers,
            duration: self.duration.duration,
            task: self.task.task(),
            recording: None,
        }
    }
}

/// The [`Sink`] of every event-printing tool.
pub struct EventPrinter<T: Events> {
    /// Where lines go.
    pub out: Output,
    /// The tool's part.
    pub events: T,
    /// Task names.
    pub comms: CommCache,
    /// Symbol tables.
    pub syms: Symbols,
    opts: PrinterOpts,
    max: MaxEvents,
    own: Option<i32>,
    after_other: bool,
    line: String,
    kernel: Kernel,
    folds: std::collections::HashMap<Vec<String>, u64>,
}

impl FlameOpts {
    /// The files for [`PrinterOpts::flame`]: only with `-s` (`stacks`).
    pub fn for_stacks(
        &self,
        tool: &'static str,
        stacks: bool,
    ) -> Result<Option<(&'static str, FlameFiles)>> {
        if !self.any() {
            return Ok(None);
        }
        if !stacks {
            return Err(crate::Error::usage(
                "--folded and --svg draw the stacks: give -s too",
            ));
        }
        Ok(Some((tool, self.create()?)))
    }
}

/// A stack frame as a flame graph shows it: the function, without its
/// offset (`vfs_read+0x1a/0x170` and `main+0x12 (/bin/x)` are `vfs_read`
/// and `main`); an address stays as it is.
fn frame_name(f: &str) -> String {
    if f.starts_with("0x") {
        return f.to_string();
    }
    f.split('+').next().unwrap_or(f).trim().to_string()
}

impl<T: Events> EventPrinter<T> {
    /// A printer of `events` to stdout; task names come from `comms`.
    pub fn new(events: T, comms: CommCache, opts: PrinterOpts) -> EventPrinter<T> {
        EventPrinter {
            out: Output::new(),
            events,
            comms,
            syms: Symbols::default(),
            max: MaxEvents::new(opts.max_events),
            own: opts.skip_own.then(|| std::process::id() as i32),
            opts,
            after_other: false,
            line: String::new(),
            kernel: Kernel::this(),
            folds: std::collections::HashMap::new(),
        }
    }

    /// With [`PrinterOpts::flame`], writes the files of the stacks seen.
    pub fn write_flame(&mut self) -> Result<()> {
        let Some((tool, files)) = self.opts.flame.take() else {
            return Ok(());
        };
        let mut v: Vec<(&Vec<String>, &u64)> = self.folds.iter().collect();
        v.sort_by(|a, b| a.1.cmp(b.1).then_with(|| a.0.cmp(b.0)));
        let lines: Vec<String> = v
            .into_iter()
            .map(|(k, n)| flame::folded_line(k, *n))
            .collect();
        files.write(tool, "events", Palette::Hot, &lines)
    }

    /// Column headers of ftrace's text shape (not in JSON).
    pub fn headers(&mut self) {
        if self.opts.json {
            return;
        }
        if self.opts.irq_info {
            headers(&mut self.out, self.kernel);
        } else {
            self.out
                .line("#            TASK-PID     CPU#   TIMESTAMP  FUNCTION");
            self.out
                .line("#               | |         |       |         |");
        }
    }

    /// Starts recording in `inst`, prints the tracing line (and the
    /// headers, if asked), and streams until the run ends. The caller
    /// finishes ([`crate::app::status::finish`]), after printing what it
    /// collected.
    ///
    /// With a recording ([`Run::recording`]) the events go to its file
    /// instead, written before this returns.
    pub fn trace(&mut self, inst: &Instance, mut run: Run) -> Result<Summary> {
        let mut reader = inst.reader()?;
        inst.start()?;
        run.line.print();
        if run.headers && run.recording.is_none() {
            self.headers();
        }
        let ordered = !self.opts.collect;
        let summary = stream(
            &mut reader,
            self,
            StreamOpts {
                duration: run.duration,
                ordered,
                task: run.task,
                recorder: run.recording.as_mut().map(|r| &mut r.recorder),
                ..StreamOpts::default()
            },
        )?;
        drop(reader);
        if let Some(r) = run.recording {
            r.finish(inst)?;
        }
        self.write_flame()?;
        Ok(summary)
    }

    /// `--read FILE`: prints the file's events as [`EventPrinter::trace`]
    /// prints a run's, with the file's names and kernel symbols.
    pub fn replay(&mut self, file: &TraceDat, headers: bool) -> Result<Summary> {
        self.comms = CommCache::offline(file.cmdlines.clone());
        self.syms.kernel =
            KernelSyms::from_table(crate::sym::kallsyms::KernelSymbols::parse(&file.kallsyms));
        self.syms.strings = KernelStrings::parse(&file.printk);
        if let Some(u) = &file.uname {
            self.kernel = Kernel::from_uname(u);
        }
        if self.opts.stacks.is_none() {
            self.opts.stacks = file
                .format("ftrace", "kernel_stack")
                .map(|f| (f, StackKind::Kernel));
        }
        self.own = None;
        if headers {
            self.headers();
        }
        replay(file, self, None)
    }

    fn stack(&mut self, ev: &Event) -> Flow {
        let Some((fmt, kind)) = &self.opts.stacks else {
            return Flow::Continue;
        };
        if self.after_other || self.max.skip_stack() || self.opts.collect {
            return Flow::Continue;
        }
        let (key, frames): (&str, Vec<String>) = match kind {
            StackKind::Kernel => (
                "kernel_stack",
                crate::buffer::stack::kernel_stack(fmt, ev.data)
                    .into_iter()
                    .map(|a| self.syms.kernel.short(a))
                    .collect(),
            ),
            StackKind::User => {
                let (tgid, addrs) = crate::buffer::stack::user_stack(fmt, ev.data);
                let tgid = if tgid == 0 { ev.pid as u32 } else { tgid };
                ("user_stack", user_frames(&mut self.syms.user, tgid, &addrs))
            }
        };
        if self.opts.flame.is_some() {
            let mut key = vec![self.comms.get(ev.pid).to_string()];
            key.extend(frames.iter().rev().map(|f| frame_name(f)));
            *self.folds.entry(key).or_insert(0) += 1;
        }
        if self.opts.json {
            let mut v = serde_json::json!({ "ts": ev.ts, "cpu": ev.cpu, "pid": ev.pid });
            v[key] = frames.into();
            return self.out.json(&v);
        }
        for f in frames {
            if self.out.line(&format!(" => {f}")) == Flow::Stop {
                return Flow::Stop;
            }
        }
        Flow::Continue
    }

    fn print(&mut self, which: usize, ev: &Event) -> Flow {
        let comm = self.comms.get(ev.pid);
        if self.opts.json {
            let mut obj = serde_json::Map::new();
            obj.insert("ts".into(), ev.ts.into());
            obj.insert("cpu".into(), ev.cpu.into());
            obj.insert("pid".into(), ev.pid.into());
            obj.insert("comm".into(), comm.into());
            obj.insert("event".into(), self.events.json_name(which).into());
            self.events.json(which, ev, &mut self.syms, &mut obj);
            return self.out.json(&serde_json::Value::Object(obj));
        }
        self.line.clear();
        if self.opts.irq_info {
            line_head(&mut self.line, comm, ev, self.kernel);
        } else {
            let _ = write!(
                self.line,
                "{comm:>16}-{:<7} [{:03}] {}.{:06}: ",
                ev.pid,
                ev.cpu,
                ev.ts / 1_000_000_000,
                (ev.ts % 1_000_000_000) / 1000,
            );
        }
        self.events.line(which, ev, &mut self.syms, &mut self.line);
        self.out.line(&self.line)
    }
}

impl<T: Events> Sink for EventPrinter<T> {
    fn event(&mut self, ev: &Event) -> Flow {
        if Some(ev.pid) == self.own {
            return Flow::Continue;
        }
        let Some(which) = self.events.which(ev.id) else {
            if self.opts.stacks.as_ref().map(|(f, _)| f.id) == Some(ev.id) {
                return self.stack(ev);
            }
            if self
                .opts
                .execs
                .as_ref()
                .is_some_and(|x| x.rename(ev, &mut self.comms))
            {
                // With -s, a stack follows the exec event too.
                self.after_other = true;
            }
            return Flow::Continue;
        };
        if self.events.consume(which, ev) {
            // Its stack (-s) is not shown either.
            self.after_other = true;
            return Flow::Continue;
        }
        self.after_other = false;
        if self.max.past() {
            return Flow::Continue;
        }
        if self.opts.collect {
            let comm = self.comms.get(ev.pid);
            self.events.collect(which, ev, comm);
        } else if self.print(which, ev) == Flow::Stop {
            return Flow::Stop;
        }
        self.max
            .shown(self.opts.stacks.is_some() && !self.opts.collect)
    }

    fn lost(&mut self, cpu: u32, count: Option<u64>) -> Flow {
        self.events.lost();
        if self.opts.collect {
            return Flow::Continue;
        }
        self.out.lost_marker(cpu, count, self.opts.json)
    }

    fn round_end(&mut self) -> Flow {
        self.max.round_end(self.out.flush())
    }
}

impl Events for ProbeEvents {
    fn which(&self, id: u16) -> Option<usize> {
        self.index(id)
    }

    fn name(&self, which: usize) -> &str {
        &self.probes[which].name
    }

    fn text(&mut self, which: usize, ev: &Event, syms: &mut Symbols, line: &mut String) {
        self.write_text(which, ev, syms.lookups(), line);
    }

    fn json(
        &mut self,
        which: usize,
        ev: &Event,
        syms: &mut Symbols,
        obj: &mut serde_json::Map<String, serde_json::Value>,
    ) {
        self.write_json(which, ev, &mut syms.kernel, obj);
    }

    fn consume(&mut self, which: usize, ev: &Event) -> bool {
        self.pairs.take(which, ev.pid, ev.data)
    }

    fn lost(&mut self) {
        self.pairs.lost();
    }
}

/// `--read FILE` of the probe tools: the kprobe and uprobe events of a
/// file (written with -w, or by `trace-cmd record`), printed as a run
/// prints them, with the file's symbols and task names.
pub fn read_probes(tool: &str, ev: &EventOpts, file: &TraceDat, style: AddrStyle) -> Result<()> {
    ev.refuse_when_reading()?;
    let mut formats = file.formats();
    formats.sort_by_key(|(_, f)| f.id);
    let probes: Vec<ProbeOut> = formats
        .iter()
        .filter_map(|(_, f)| ProbeOut::from_format(f))
        .collect();
    if probes.is_empty() {
        return Err(crate::Error::usage(format!(
            "{} holds no kprobe or uprobe events (tpoint --read shows any event)",
            file.path().display()
        )));
    }
    let opts = PrinterOpts {
        json: ev.json.json,
        max_events: ev.max.max_events,
        ..PrinterOpts::default()
    };
    let mut printer =
        EventPrinter::new(ProbeEvents::new(probes, style), CommCache::default(), opts);
    let summary = printer.replay(file, ev.headers.headers)?;
    crate::app::status::finish(tool, &mut printer.out, &summary, "")
}

/// User stack frames as `func+0xoff (file)`, or `0xaddr [unknown]`. Maps
/// read too early (before an exec, or before the libraries were loaded)
/// are read again once when no frame falls in any file.
pub fn user_frames(users: &mut UserSymbols, tgid: u32, addrs: &[u64]) -> Vec<String> {
    let mut frames: Vec<Frame> = addrs.iter().map(|&a| users.lookup(tgid, a)).collect();
    if !frames.is_empty() && frames.iter().all(|f| f.object.is_none()) {
        users.forget(tgid);
        frames = addrs.iter().map(|&a| users.lookup(tgid, a)).collect();
    }
    frames
        .iter()
        .map(|f| match (&f.function, &f.object) {
            (Some(func), Some(obj)) => format!("{func}+{:#x} ({obj})", f.offset),
            (None, None) => format!("{:#x} [unknown]", f.addr),
            _ => f.to_string(),
        })
        .collect()
}

/// The head of an event's line as the kernel's `trace` prints it (with
/// its default `irq-info` option): `comm-pid [cpu] flags secs.usecs: `.
pub fn line_head(line: &mut String, comm: &str, ev: &Event, kernel: Kernel) {
    let flags = ev.data.get(2).copied().unwrap_or(0);
    let preempt = ev.data.get(3).copied().unwrap_or(0);
    let info = printfmt::irq_info(flags, preempt, kernel);
    // Microseconds rounded to the nearest, as the kernel's ns2usecs().
    let us = ev.ts.saturating_add(500) / 1000;
    let _ = write!(
        line,
        "{comm:>16}-{:<7} [{:03}] {} {:5}.{:06}: ",
        ev.pid,
        ev.cpu,
        info,
        us / 1_000_000,
        us % 1_000_000,
    );
}

/// `-H`: the column headers of the kernel's `trace`, flags column
/// explained, as `kernel` prints them (a fifth column, migrate-disable, and
/// BH-disabled from 5.13).
pub fn headers(out: &mut Output, kernel: Kernel) {
    let lines: &[&str] = if kernel.migrate_column() {
        &[
            "#                                _-----=> irqs-off/BH-disabled",
            "#                               / _----=> need-resched",
            "#                              | / _---=> hardirq/softirq",
            "#                              || / _--=> preempt-depth",
            "#                              ||| / _-=> migrate-disable",
            "#                              |||| /     delay",
            "#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION",
            "#              | |         |   |||||     |         |",
        ]
    } else {
        &[
            "#                                _-----=> irqs-off",
            "#                               / _----=> need-resched",
            "#                              | / _---=> hardirq/softirq",
            "#                              || / _--=> preempt-depth",
            "#                              ||| /     delay",
            "#           TASK-PID     CPU#  ||||   TIMESTAMP  FUNCTION",
            "#              | |         |   ||||      |         |",
        ]
    };
    for l in lines {
        out.line(l);
    }
}

/// `-M N` for a [`Sink`] whose events may each be followed by a stack
/// event: the run ends after the Nth event shown, once the round that holds
/// its stack is read; later events of that round, and their stacks, are
/// skipped.
#[derive(Debug, Default)]
pub struct MaxEvents {
    left: Option<u64>,
    past: bool,
}

impl MaxEvents {
    /// At most `max` events (`None`: no limit).
    pub fn new(max: Option<u64>) -> MaxEvents {
        MaxEvents {
            left: max,
            past: false,
        }
    }

    /// At an event: whether it comes after the last one (then so does the
    /// stack that may follow it).
    pub fn past(&mut self) -> bool {
        self.past = self.left == Some(0);
        self.past
    }

    /// Whether the stack event now read follows an event past the limit.
    pub fn skip_stack(&self) -> bool {
        self.past
    }

    /// After an event was shown: the end, if it was the last and no stack
    /// follows it.
    pub fn shown(&mut self, stack_follows: bool) -> Flow {
        if let Some(n) = &mut self.left {
            *n = n.saturating_sub(1);
            if *n == 0 && !stack_follows {
                return Flow::Stop;
            }
        }
        Flow::Continue
    }

    /// At a round's end (`flushed`: how its flush went): the end once the
    /// last event was shown.
    pub fn round_end(&self, flushed: Flow) -> Flow {
        if self.left == Some(0) {
            Flow::Stop
        } else {
            flushed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_after_exec() {
        assert_eq!(comm_after_exec("/usr/bin/cat"), "cat");
        assert_eq!(comm_after_exec("cat"), "cat");
        assert_eq!(
            comm_after_exec("/x/a-very-long-program-name"),
            "a-very-long-pro"
        );
        assert_eq!(comm_after_exec("/x/ééééééééé"), "ééééééé");
        assert_eq!(comm_after_exec(""), "");
    }

    #[test]
    fn max_events_waits_for_the_last_stack_and_skips_what_follows() {
        // Two events with stacks: the second one's stack is still shown,
        // a third event and its stack are not, and the round ends the run.
        let mut m = MaxEvents::new(Some(2));
        assert!(!m.past());
        assert_eq!(m.shown(true), Flow::Continue);
        assert!(!m.skip_stack());
        assert_eq!(m.round_end(Flow::Continue), Flow::Continue);
        assert!(!m.past());
        assert_eq!(m.shown(true), Flow::Continue);
        assert!(!m.skip_stack());
        assert!(m.past());
        assert!(m.skip_stack());
        assert_eq!(m.round_end(Flow::Continue), Flow::Stop);
        // Without stacks the last event ends the run at once.
        let mut m = MaxEvents::new(Some(1));
        assert!(!m.past());
        assert_eq!(m.shown(false), Flow::Stop);
        // No limit: never the end, and a flush's Stop passes through.
        let mut m = MaxEvents::new(None);
        for _ in 0..3 {
            assert!(!m.past());
            assert_eq!(m.shown(false), Flow::Continue);
        }
        assert_eq!(m.round_end(Flow::Stop), Flow::Stop);
        assert_eq!(m.round_end(Flow::Continue), Flow::Continue);
    }
}
