//! What a tool says on stderr around its output: the one "Tracing ..." line
//! once everything is armed, and the one finish path at the end (flush the
//! output, report lost events and why the run ended). Also phase timings
//! for the benchmarks.

use crate::app::output::Output;
use crate::app::stream::{End, Summary};
use crate::kernel::proc::Task;
use crate::Result;
use std::time::{Duration, Instant};

/// The line every tool prints (stderr) when it is armed:
/// `Tracing WHAT[ SCOPE][ for PID N][ for S seconds][ (HOW)]. [NOTES ]Ctrl-C to end.`
#[derive(Debug, Clone)]
pub struct TracingLine {
    what: String,
    scope: String,
    task: Option<Task>,
    duration: Option<Duration>,
    how: Vec<String>,
    notes: Vec<String>,
    ctrl_c: bool,
}

impl TracingLine {
    /// What is traced: `sched:sched_switch`, `"vfs_*"`, `block I/O`.
    pub fn new(what: impl Into<String>) -> TracingLine {
        TracingLine {
            what: what.into(),
            scope: String::new(),
            task: None,
            duration: None,
            how: Vec::new(),
            notes: Vec::new(),
            ctrl_c: true,
        }
    }

    /// Words that narrow what is traced, after it: ` on vda`,
    /// ` while running: make`.
    pub fn scope(mut self, s: impl Into<String>) -> TracingLine {
        self.scope.push_str(&s.into());
        self
    }

    /// The task the run is limited to (`-p`/`-L`).
    pub fn task(mut self, task: Option<Task>) -> TracingLine {
        self.task = task;
        self
    }

    /// The run's length (`-d`).
    pub fn duration(mut self, d: Option<Duration>) -> TracingLine {
        self.duration = d;
        self
    }

    /// How it is traced, in parentheses: `method: tracer`,
    /// `counted in the kernel`.
    pub fn how(mut self, s: impl Into<String>) -> TracingLine {
        self.how.push(s.into());
        self
    }

    /// A sentence before `Ctrl-C to end.`: `Top 3 only.`
    pub fn note(mut self, s: impl Into<String>) -> TracingLine {
        self.notes.push(s.into());
        self
    }

    /// No `Ctrl-C to end.`: the run ends by itself (a command it runs).
    pub fn no_ctrl_c(mut self) -> TracingLine {
        self.ctrl_c = false;
        self
    }

    /// Prints the line on stderr.
    pub fn print(&self) {
        eprintln!("{self}");
    }
}

impl std::fmt::Display for TracingLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tracing {}{}", self.what, self.scope)?;
        if let Some(t) = self.task {
            write!(f, " for {}", t.label())?;
        }
        if let Some(d) = self.duration {
            let s = d.as_secs_f64();
            write!(f, " for {s} second{}", if s == 1.0 { "" } else { "s" })?;
        }
        if !self.how.is_empty() {
            write!(f, " ({})", self.how.join("; "))?;
        }
        f.write_str(".")?;
        for n in &self.notes {
            write!(f, " {n}")?;
        }
        if self.ctrl_c {
            f.write_str(" Ctrl-C to end.")?;
        }
        Ok(())
    }
}

/// The end of every run: flushes the output (a write error other than a
/// closed pipe is the run's error), says when the traced task exited, and
/// warns of lost events on stderr. `lost_note` is added to the warning
/// where the output does not mark losses itself (`(the counts above miss
/// them)`).
pub fn finish(tool: &str, out: &mut Output, summary: &Summary, lost_note: &str) -> Result<()> {
    out.finish()?;
    report(tool, summary, lost_note);
    Ok(())
}

/// What [`finish`] says on stderr, for a tool that flushes its output
/// itself: the task that exited, lost events, events left unshown at a
/// stop signal.
pub fn report(tool: &str, summary: &Summary, lost_note: &str) {
    if let End::TaskExited(t) = summary.ended {
        eprintln!("{tool}: {}", t.exited());
    }
    if let Some(w) = summary.lost_warning() {
        eprintln!("{tool}: {w}{lost_note}");
    }
    if summary.unshown > 0 {
        eprintln!(
            "{tool}: {} events recorded before the stop were not shown (the run ends at once on a stop signal){lost_note}",
            summary.unshown
        );
    }
}

/// Phase timings on stderr when `FTRACE_TOOLS_TIMING` is set (benchmarks).
pub struct Timing {
    on: bool,
    start: Instant,
}

impl Timing {
    /// Starts the clock.
    pub fn new() -> Timing {
        Timing {
            on: std::env::var_os("FTRACE_TOOLS_TIMING").is_some(),
            start: Instant::now(),
        }
    }

    /// `timing: WHAT at N ms`, if asked for.
    pub fn mark(&self, what: &str) {
        if self.on {
            eprintln!(
                "timing: {what} at {:.3} ms",
                self.start.elapsed().as_secs_f64() * 1e3
            );
        }
    }
}

impl Default for Timing {
    fn default() -> Timing {
        Timing::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracing_lines_have_one_shape() {
        assert_eq!(
            TracingLine::new("sched:sched_switch").to_string(),
            "Tracing sched:sched_switch. Ctrl-C to end."
        );
        assert_eq!(
            TracingLine::new("\"vfs_*\"")
                .task(Some(Task::Process(7)))
                .duration(Some(Duration::from_secs(2)))
                .how("2 functions")
                .how("method: tracer")
                .note("Top 3 only.")
                .to_string(),
            "Tracing \"vfs_*\" for PID 7 for 2 seconds (2 functions; method: tracer). Top 3 only. Ctrl-C to end."
        );
        assert_eq!(
            TracingLine::new("system calls")
                .scope(" while running: ls")
                .duration(Some(Duration::from_secs(1)))
                .no_ctrl_c()
                .to_string(),
            "Tracing system calls while running: ls for 1 second."
        );
        assert_eq!(
            TracingLine::new("x")
                .task(Some(Task::Thread(3)))
                .duration(Some(Duration::from_millis(500)))
                .to_string(),
            "Tracing x for TID 3 for 0.5 seconds. Ctrl-C to end."
        );
    }
}
