//! Lines in the shape of the kernel's function_graph text (the
//! `trace_functions_graph.c` output users know), and graphs as JSON.
//!
//! ```text
//!  1)               |  do_sys_openat2() {
//!  1)   1.266 us    |    getname();
//!  1) + 12.345 us   |  }
//! ```
//!
//! Columns: optional absolute time (`-t`), the CPU, optional task
//! (`-P`, the kernel's 14-character centred `comm-pid`), the duration with
//! the kernel's overhead marks (`+` over 10 us, `!` 100 us, `#` 1 ms,
//! `*` 10 ms, `@` 100 ms, `$` 1 s), then the call indented two spaces per
//! level. When a CPU's lines switch from one task to another, the kernel's
//! `------` banner names both.

use crate::graph::emit::Line;
use crate::graph::fast::FastMap;
use crate::graph::tree::{End, FuncId, Out, Site};
use std::fmt::Write;

/// Which columns and comments to print.
#[derive(Debug, Clone, Copy, Default)]
pub struct Columns {
    /// Absolute time stamps (`-t`).
    pub abs_time: bool,
    /// Task names and PIDs (`-P`).
    pub proc: bool,
    /// Durations (off with `-D`).
    pub duration: bool,
    /// `} /* func */` on closing lines (`-T`).
    pub tail: bool,
}

/// The header lines (`-H`), as the kernel prints them.
pub fn header(c: Columns) -> [String; 2] {
    let mut a = String::from("#");
    let mut b = String::from("#");
    if c.abs_time {
        a.push_str("     TIME       ");
        b.push_str("      |         ");
    }
    a.push_str(" CPU");
    b.push_str(" |  ");
    if c.proc {
        a.push_str("  TASK/PID       ");
        b.push_str("   |    |        ");
    }
    if c.duration {
        a.push_str("  DURATION   ");
        b.push_str("   |   |      ");
    }
    a.push_str("               FUNCTION CALLS");
    b.push_str("               |   |   |   |");
    [a, b]
}

/// The kernel's overhead mark for a duration in ns.
pub fn mark(ns: u64) -> char {
    const MARKS: [(u64, char); 6] = [
        (1_000_000_000, '$'),
        (100_000_000, '@'),
        (10_000_000, '*'),
        (1_000_000, '#'),
        (100_000, '!'),
        (10_000, '+'),
    ];
    MARKS
        .iter()
        .find(|(v, _)| ns > *v)
        .map(|(_, c)| *c)
        .unwrap_or(' ')
}

/// A duration as the kernel prints it: microseconds with up to three
/// decimals, at most 7 digits before `us`, padded to the column
/// (`0.512 us   `, `57769.66 us `).
pub fn duration(ns: u64, out: &mut String) {
    let us = ns / 1000;
    let rem = ns % 1000;
    let start = out.len();
    let _ = write!(out, "{us}");
    let mut len = out.len() - start;
    if len < 7 {
        // The kernel prints "%03lu" into a buffer of min(5, 8 - len) bytes.
        let keep = (7 - len).min(3);
        let digits = [
            b'0' + (rem / 100) as u8,
            b'0' + (rem / 10 % 10) as u8,
            b'0' + (rem % 10) as u8,
        ];
        out.push('.');
        for d in &digits[..keep] {
            out.push(*d as char);
        }
        len += keep + 1;
    }
    out.push_str(" us ");
    for _ in len..8 {
        out.push(' ');
    }
}

/// The kernel's `comm-pid` column: the name cut to 7 characters, centred
/// in 14.
pub fn proc_column(comm: &str, pid: i32, out: &mut String) {
    let comm: String = comm.chars().take(7).collect();
    let pid = pid.to_string();
    let len = comm.chars().count() + pid.len() + 1;
    let spaces = 14usize.saturating_sub(len);
    for _ in 0..spaces / 2 {
        out.push(' ');
    }
    let _ = write!(out, "{comm}-{pid}");
    for _ in 0..spaces - spaces / 2 {
        out.push(' ');
    }
}

/// A return value as the kernel's funcgraph-retval prints it: errors
/// (-4095..-1) in decimal, anything else in hex.
pub fn retval_text(v: u64) -> String {
    let s = v as i64;
    if (-4095..0).contains(&s) {
        s.to_string()
    } else {
        format!("{v:#x}")
    }
}

/// ` N) `: the CPU right-aligned in `width` digits.
fn cpu_column(cpu: u32, width: usize, out: &mut String) {
    let mut digits = [0u8; 10];
    let mut n = cpu;
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.push(' ');
    for _ in (digits.len() - i)..width {
        out.push(' ');
    }
    for d in &digits[i..] {
        out.push(*d as char);
    }
    out.push_str(") ");
}

/// Names for functions and tasks.
pub trait Names {
    /// A function's name as the kernel prints it (`name` or `name [module]`).
    fn func(&self, f: FuncId) -> &str;
    /// A task's name.
    fn comm(&mut self, pid: i32) -> String;
}

/// Formats lines.
pub struct Text {
    cols: Columns,
    cpu_width: usize,
    last_pid: FastMap<u32, i32>,
}

impl Text {
    /// A formatter for a machine with `ncpus` CPUs.
    pub fn new(cols: Columns, ncpus: usize) -> Text {
        let cpu_width = ncpus.saturating_sub(1).to_string().len();
        Text {
            cols,
            cpu_width,
            last_pid: FastMap::default(),
        }
    }

    fn prologue(&mut self, at: &Site, names: &mut dyn Names, out: &mut String) {
        let pid = at.task.pid;
        if let Some(prev) = self.last_pid.insert(at.cpu, pid) {
            if prev != pid {
                out.push_str(" ------------------------------------------\n");
                cpu_column(at.cpu, self.cpu_width, out);
                proc_column(&names.comm(prev), prev, out);
                out.push_str(" => ");
                proc_column(&names.comm(pid), pid, out);
                out.push_str("\n ------------------------------------------\n\n");
            }
        }
        if self.cols.abs_time {
            let _ = write!(
                out,
                "{:5}.{:06} |  ",
                at.ts / 1_000_000_000,
                (at.ts % 1_000_000_000) / 1000
            );
        }
        cpu_column(at.cpu, self.cpu_width, out);
        if self.cols.proc {
            proc_column(&names.comm(pid), pid, out);
            out.push_str(" | ");
        }
    }

    fn dur_column(&self, dur: Option<u64>, out: &mut String) {
        if !self.cols.duration {
            return;
        }
        match dur {
            Some(d) => {
                out.push(mark(d));
                out.push(' ');
                duration(d, out);
                out.push_str("|  ");
            }
            None => out.push_str("              |  "),
        }
    }

    fn indent(depth: u32, out: &mut String) {
        const SPACES: &str = "                                                                ";
        let mut n = depth as usize * 2;
        while n > 0 {
            let k = n.min(SPACES.len());
            out.push_str(&SPACES[..k]);
            n -= k;
        }
    }

    /// Appends the text of one line (with a banner before it when its CPU
    /// changed task), without the final newline.
    pub fn format(&mut self, l: &Line, names: &mut dyn Names, out: &mut String) {
        match *l {
            Line::Enter { at, depth, func } => {
                self.prologue(&at, names, out);
                self.dur_column(None, out);
                Self::indent(depth, out);
                let _ = write!(out, "{}() {{", names.func(func));
            }
            Line::Leaf {
                at,
                depth,
                func,
                dur,
                end,
                retval,
                overrun,
            } => {
                self.prologue(&at, names, out);
                self.dur_column(dur, out);
                Self::indent(depth, out);
                let _ = write!(out, "{}();", names.func(func));
                if let Some(v) = retval {
                    let _ = write!(out, " /* = {} */", retval_text(v));
                }
                if end == End::ExitLost {
                    out.push_str(" /* exit lost: no duration */");
                }
                if overrun > 0 {
                    let _ = write!(out, " (Overruns: {overrun})");
                }
            }
            Line::Close {
                at,
                depth,
                func,
                dur,
                end,
                retval,
                overrun,
            } => {
                self.prologue(&at, names, out);
                self.dur_column(dur, out);
                Self::indent(depth, out);
                let name = names.func(func);
                match (end, retval) {
                    (End::ExitLost, _) => {
                        let _ = write!(out, "}} /* {name}: exit lost, no duration */");
                    }
                    (End::EntryLost, _) => {
                        let _ = write!(out, "}} /* {name}: entry lost */");
                    }
                    (_, Some(v)) => {
                        let _ = write!(out, "}} /* {name} = {} */", retval_text(v));
                    }
                    _ if self.cols.tail => {
                        let _ = write!(out, "}} /* {name} */");
                    }
                    _ => out.push('}'),
                }
                if overrun > 0 {
                    let _ = write!(out, " (Overruns: {overrun})");
                }
            }
            Line::Gap { at, depth } => {
                self.prologue(&at, names, out);
                self.dur_column(None, out);
                Self::indent(depth, out);
                out.push_str("/* events lost: calls may be missing here */");
            }
            Line::Dropped { at, count } => {
                self.prologue(&at, names, out);
                self.dur_column(None, out);
                Self::indent(1, out);
                let _ = write!(
                    out,
                    "/* {count} more calls and returns not held: the graph was too large */"
                );
            }
            Line::Lost { cpu, count } => match count {
                Some(n) => {
                    let _ = write!(out, "CPU:{cpu} [LOST {n} EVENTS]");
                }
                None => {
                    let _ = write!(out, "CPU:{cpu} [LOST EVENTS]");
                }
            },
        }
    }
}

fn end_name(e: End) -> &'static str {
    match e {
        End::Returned => "returned",
        End::ExitLost => "exit lost",
        End::Unfinished => "running",
        End::EntryLost => "entry lost",
    }
}

/// A held graph as one JSON object: the root call with `pid`, `comm`,
/// and nested `calls`; each call has `func`, `cpu`, `ts` (ns, of its
/// entry), `duration_ns` (null when unknown) and `end`, plus `retval`,
/// `overrun`, `gap` where they apply.
pub fn tree_json(items: &[Out], dropped: u64, names: &mut dyn Names) -> serde_json::Value {
    use serde_json::{json, Map, Value};
    let mut stack: Vec<Map<String, Value>> = Vec::new();
    let mut roots: Vec<Value> = Vec::new();
    let mut task = None;
    fn attach(stack: &mut [Map<String, Value>], roots: &mut Vec<Value>, v: Value) {
        match stack.last_mut() {
            Some(p) => p
                .entry("calls")
                .or_insert_with(|| Value::Array(Vec::new()))
                .as_array_mut()
                .expect("calls array")
                .push(v),
            None => roots.push(v),
        }
    }
    for o in items {
        match *o {
            Out::Enter { at, func, .. } => {
                task.get_or_insert(at.task);
                let mut m = Map::new();
                m.insert("func".into(), json!(names.func(func)));
                m.insert("cpu".into(), json!(at.cpu));
                m.insert("ts".into(), json!(at.ts));
                stack.push(m);
            }
            Out::Exit {
                at,
                func,
                dur,
                end,
                overrun,
                retval,
                ..
            } => {
                task.get_or_insert(at.task);
                let mut m = if end == End::EntryLost {
                    let mut m = Map::new();
                    m.insert("func".into(), json!(names.func(func)));
                    m.insert("cpu".into(), json!(at.cpu));
                    m.insert("ts".into(), Value::Null);
                    m
                } else {
                    stack.pop().unwrap_or_default()
                };
                m.insert("duration_ns".into(), json!(dur));
                m.insert("end".into(), json!(end_name(end)));
                if let Some(v) = retval {
                    m.insert("retval".into(), json!(v as i64));
                }
                if overrun > 0 {
                    m.insert("overrun".into(), json!(overrun));
                }
                attach(&mut stack, &mut roots, Value::Object(m));
            }
            Out::Gap { .. } => {
                attach(
                    &mut stack,
                    &mut roots,
                    json!({"gap": "events lost: calls may be missing here"}),
                );
            }
            Out::Lost { .. } => {}
        }
    }
    // Calls still open (a graph cut short) close here.
    while let Some(mut m) = stack.pop() {
        m.insert("duration_ns".into(), Value::Null);
        m.insert("end".into(), json!("running"));
        attach(&mut stack, &mut roots, Value::Object(m));
    }
    let mut root = match roots.len() {
        1 => roots.pop().expect("one root"),
        _ => json!({"calls": roots}),
    };
    if let (Some(t), Some(obj)) = (task, root.as_object_mut()) {
        obj.insert("pid".into(), json!(t.pid));
        obj.insert("comm".into(), json!(names.comm(t.pid)));
        if dropped > 0 {
            obj.insert("not_held".into(), json!(dropped));
        }
    }
    root
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::tree::TaskKey;

    #[test]
    fn durations_print_like_the_kernel() {
        let d = |ns| {
            let mut s = String::new();
            s.push(mark(ns));
            s.push(' ');
            duration(ns, &mut s);
            s
        };
        assert_eq!(d(512), "  0.512 us    ");
        assert_eq!(d(55_723), "+ 55.723 us   ");
        assert_eq!(d(262_997), "! 262.997 us  ");
        assert_eq!(d(2_245_613), "# 2245.613 us ");
        assert_eq!(d(57_769_660), "* 57769.66 us ");
        assert_eq!(d(123_456_789), "@ 123456.7 us ");
        assert_eq!(d(1_234_567_000), "$ 1234567 us  ");
        assert_eq!(d(12_345_678_000), "$ 12345678 us ");
        assert_eq!(d(10_000), "  10.000 us   ");
        assert_eq!(d(10_001), "+ 10.001 us   ");
    }

    #[test]
    fn headers_match_the_kernel() {
        let c = Columns {
            duration: true,
            ..Columns::default()
        };
        assert_eq!(
            header(c),
            [
                "# CPU  DURATION                  FUNCTION CALLS",
                "# |     |   |                     |   |   |   |"
            ]
        );
        let c = Columns::default();
        assert_eq!(
            header(c),
            [
                "# CPU               FUNCTION CALLS",
                "# |                 |   |   |   |"
            ]
        );
        let c = Columns {
            abs_time: true,
            proc: true,
            duration: true,
            tail: false,
        };
        assert_eq!(
            header(c),
            [
                "#     TIME        CPU  TASK/PID         DURATION                  FUNCTION CALLS",
                "#      |          |     |    |           |   |                     |   |   |   |"
            ]
        );
    }

    struct N;
    impl Names for N {
        fn func(&self, f: FuncId) -> &str {
            ["x", "do_sys_openat2", "getname", "ovl_permission [overlay]"][f as usize]
        }
        fn comm(&mut self, pid: i32) -> String {
            if pid == 154 {
                "ftt-workload".into()
            } else {
                "<idle>".into()
            }
        }
    }

    fn site(pid: i32, cpu: u32, ts: u64) -> Site {
        Site {
            task: TaskKey::new(pid, cpu),
            cpu,
            ts,
        }
    }

    #[test]
    fn lines_match_the_kernel() {
        let all = Columns {
            abs_time: true,
            proc: true,
            duration: true,
            tail: false,
        };
        let mut t = Text::new(all, 2);
        let mut s = String::new();
        t.format(
            &Line::Enter {
                at: site(154, 1, 32_014_649_123),
                depth: 0,
                func: 1,
            },
            &mut N,
            &mut s,
        );
        assert_eq!(
            s,
            "   32.014649 |   1)  ftt-wor-154   |               |  do_sys_openat2() {"
        );
        let cols = Columns {
            duration: true,
            tail: true,
            ..Columns::default()
        };
        let mut t = Text::new(cols, 2);
        let mut s = String::new();
        t.format(
            &Line::Leaf {
                at: site(154, 1, 0),
                depth: 5,
                func: 3,
                dur: Some(1419),
                end: End::Returned,
                retval: None,
                overrun: 0,
            },
            &mut N,
            &mut s,
        );
        assert_eq!(
            s,
            " 1)   1.419 us    |            ovl_permission [overlay]();"
        );
        s.clear();
        t.format(
            &Line::Close {
                at: site(154, 1, 0),
                depth: 1,
                func: 2,
                dur: Some(309_322),
                end: End::Returned,
                retval: None,
                overrun: 0,
            },
            &mut N,
            &mut s,
        );
        assert_eq!(s, " 1) ! 309.322 us  |    } /* getname */");
        // Another task on the same CPU: the kernel's banner first.
        s.clear();
        t.format(
            &Line::Close {
                at: site(0, 1, 0),
                depth: 0,
                func: 1,
                dur: None,
                end: End::ExitLost,
                retval: Some(u64::MAX - 1),
                overrun: 2,
            },
            &mut N,
            &mut s,
        );
        assert_eq!(
            s,
            " ------------------------------------------\n 1)  ftt-wor-154   =>    <idle>-0   \n ------------------------------------------\n\n 1)               |  } /* do_sys_openat2: exit lost, no duration */ (Overruns: 2)"
        );
        assert_eq!(retval_text(u64::MAX - 1), "-2");
        assert_eq!(retval_text(0), "0x0");
        let nodur = Columns::default();
        let mut t = Text::new(nodur, 2);
        s.clear();
        t.format(
            &Line::Enter {
                at: site(154, 1, 0),
                depth: 1,
                func: 2,
            },
            &mut N,
            &mut s,
        );
        assert_eq!(s, " 1)   getname() {");
    }

    #[test]
    fn json_trees_nest() {
        let a = site(154, 1, 10);
        let items = [
            Out::Enter {
                at: a,
                depth: 0,
                func: 1,
            },
            Out::Enter {
                at: a,
                depth: 1,
                func: 2,
            },
            Out::Exit {
                at: a,
                depth: 1,
                func: 2,
                dur: Some(5),
                end: End::Returned,
                overrun: 0,
                retval: None,
            },
            Out::Exit {
                at: a,
                depth: 0,
                func: 1,
                dur: Some(9),
                end: End::Returned,
                overrun: 0,
                retval: Some(3),
            },
        ];
        let v = tree_json(&items, 0, &mut N);
        assert_eq!(v["func"], "do_sys_openat2");
        assert_eq!(v["pid"], 154);
        assert_eq!(v["duration_ns"], 9);
        assert_eq!(v["retval"], 3);
        assert_eq!(v["calls"][0]["func"], "getname");
        assert_eq!(v["calls"][0]["duration_ns"], 5);
    }
}
