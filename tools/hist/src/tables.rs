//! Where the tables come from (the kernel's trigger, or an engine fed
//! from the buffer), and the read loop that prints them at each interval
//! and at the end, then says what was lost.

use crate::engine::Engine;
use crate::show::{Form, Show};
use crate::Args;
use ftrace_common::app::stream::{self, Sink, StreamOpts};
use ftrace_common::app::{signals, status};
use ftrace_common::buffer::reader::Event;
use ftrace_common::lifecycle::hist::{self as khist, HistTrigger};
use ftrace_common::lifecycle::instance::Instance;
use ftrace_common::{Error, Flow, Result};

/// Where the tables come from.
pub trait Tables {
    /// Whether the kernel keeps them (there is no buffer to read).
    fn in_kernel(&self) -> bool {
        false
    }
    /// One event from the buffer (the user-space path).
    fn feed(&mut self, _ev: &Event) {}
    /// Events were lost from the buffer.
    fn lost(&mut self) {}
    /// The `hist` text now.
    fn text(&mut self) -> Result<String>;
    /// Empties the table (after an interval's print).
    fn clear(&mut self) -> Result<()>;
    /// Starts or ends the kernel's latency tables could not match
    /// (their own tables were full).
    fn lost_matches(&mut self) -> Result<u64> {
        Ok(0)
    }
}

/// A table the kernel keeps.
pub struct KernelTable<'t> {
    /// The trigger whose `hist` is printed.
    pub trigger: &'t HistTrigger,
    /// With --latency, the start and end triggers' drops.
    pub lost_matches: Option<&'t ftrace_common::lifecycle::latency::LatencyTriggers>,
}

impl Tables for KernelTable<'_> {
    fn in_kernel(&self) -> bool {
        true
    }
    fn text(&mut self) -> Result<String> {
        self.trigger.read_text()
    }
    fn clear(&mut self) -> Result<()> {
        self.trigger.clear()
    }
    fn lost_matches(&mut self) -> Result<u64> {
        self.lost_matches.map_or(Ok(0), |l| l.dropped())
    }
}

/// A table computed from the buffer.
pub struct BufferTable {
    /// The table.
    pub engine: Engine,
    /// The event's id.
    pub id: u16,
}

impl Tables for BufferTable {
    fn feed(&mut self, ev: &Event) {
        if ev.id == self.id {
            self.engine.feed(ev);
        }
    }
    fn text(&mut self) -> Result<String> {
        Ok(self.engine.render())
    }
    fn clear(&mut self) -> Result<()> {
        self.engine.clear();
        Ok(())
    }
}

/// What the read loop feeds: the tables, printed at each interval.
struct Printer<'a> {
    tables: &'a mut dyn Tables,
    show: Show,
    dropped: u64,
    error: Option<Error>,
}

impl Printer<'_> {
    fn print(&mut self) -> Result<Flow> {
        let text = self.tables.text()?;
        self.dropped += khist::parse(&text).dropped.unwrap_or(0);
        Ok(self.show.print(&text))
    }
}

impl Sink for Printer<'_> {
    fn event(&mut self, ev: &Event) -> Flow {
        self.tables.feed(ev);
        Flow::Continue
    }

    fn lost(&mut self, _cpu: u32, _count: Option<u64>) -> Flow {
        self.tables.lost();
        Flow::Continue
    }

    fn tick(&mut self) -> Flow {
        let r = self.print().and_then(|f| self.tables.clear().map(|_| f));
        match r {
            Ok(f) => f,
            Err(e) => {
                self.error = Some(e);
                Flow::Stop
            }
        }
    }
}

/// Stream (reading the buffer where the table is computed from it),
/// printing a table at each interval and at the end, then say what was
/// lost.
pub fn print_tables(
    inst: &Instance,
    args: &Args,
    tables: &mut dyn Tables,
    what: &str,
    line: status::TracingLine,
    ordered: bool,
) -> Result<()> {
    let in_kernel = tables.in_kernel();
    let mut reader = if in_kernel {
        None
    } else {
        Some(inst.reader()?)
    };
    signals::check()?;
    inst.start()?;
    line.print();
    let form = if args.json.json {
        Form::Json
    } else if args.table {
        Form::Table
    } else {
        Form::Text
    };
    let computed_in = if in_kernel { "kernel" } else { "buffer" };
    let mut p = Printer {
        tables,
        show: Show::new(form, what, computed_in, args.summary.top),
        dropped: 0,
        error: None,
    };
    let summary = stream::run(
        reader.as_mut(),
        &mut p,
        StreamOpts {
            duration: args.duration.duration,
            ordered,
            tick: args.summary.interval,
            task: args.task.task(),
            ..StreamOpts::default()
        },
    )?;
    if let Some(e) = p.error.take() {
        return Err(e);
    }
    // The kernel's table is read while it counts: it shows `[active]`,
    // as the user-space one does.
    if !summary.stopped_by_sink() {
        p.print()?;
    }
    let lost_matches = p.tables.lost_matches()?;
    status::finish(
        "hist",
        &mut p.show.out,
        &summary,
        " (the table above misses them)",
    )?;
    if p.dropped > 0 {
        eprintln!(
            "hist: {} hits were dropped: the table was full; give a larger size= (at most 131072)",
            p.dropped
        );
    }
    if lost_matches > 0 {
        eprintln!(
            "hist: {lost_matches} starts or ends found no room in the kernel's tables of keys (2048 each) and were not matched"
        );
    }
    Ok(())
}
