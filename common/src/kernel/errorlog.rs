//! The kernel's `error_log`: why it refused a probe line or a filter.
//!
//! Each entry looks like
//! ```text
//! [  123.456789] trace_uprobe: error: Invalid fetch argument
//!   Command: p:g/e /bin/true:0x1 +0(%zz)
//!                                ^
//! ```
//! The log is shared by everyone; we pick the newest entry whose command is
//! the one we wrote, and show it verbatim.

/// Splits the text of an `error_log` into its entries (each one starts with
/// a `[` timestamp line; the lines after it belong to it).
pub fn entries(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        if line.starts_with('[') || out.is_empty() {
            out.push(line.to_string());
        } else if let Some(last) = out.last_mut() {
            last.push('\n');
            last.push_str(line);
        }
    }
    out.retain(|e| !e.trim().is_empty());
    out
}

/// The newest entry whose `Command:` line contains `command` (the kernel may
/// show only part of a long command), else the newest entry at all when
/// `fallback_newest`, else `None`.
pub fn find(text: &str, command: &str, fallback_newest: bool) -> Option<String> {
    let all = entries(text);
    let cmd = command.trim();
    let hit = all.iter().rev().find(|e| {
        e.lines().any(|l| {
            l.trim_start()
                .strip_prefix("Command:")
                .map(|c| {
                    let c = c.trim();
                    !c.is_empty() && (cmd.contains(c) || c.contains(cmd))
                })
                .unwrap_or(false)
        })
    });
    match hit {
        Some(e) => Some(e.clone()),
        None if fallback_newest => all.last().cloned(),
        None => None,
    }
}

/// The entry with its timestamp removed and every line indented, ready to
/// follow an error message.
pub fn indent(entry: &str) -> String {
    let mut out = String::new();
    for (i, line) in entry.lines().enumerate() {
        let line = if i == 0 {
            match line.find("] ") {
                Some(p) if line.starts_with('[') => &line[p + 2..],
                _ => line,
            }
        } else {
            line
        };
        out.push_str("    ");
        out.push_str(line);
        out.push('\n');
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
[   10.000001] trace_kprobe: error: Invalid fetch argument
  Command: p:other/x do_sys_open +0(%zz)
                                 ^
[   11.000002] trace_uprobe: error: Invalid fetch argument
  Command: p:ftrace_tools_1_2_3/e /bin/true:0x10 +0(%zz):string
                                                 ^
";

    #[test]
    fn finds_our_entry_not_someone_elses() {
        assert_eq!(entries(LOG).len(), 2);
        let e = find(
            LOG,
            "p:ftrace_tools_1_2_3/e /bin/true:0x10 +0(%zz):string",
            false,
        )
        .unwrap();
        assert!(e.contains("trace_uprobe"));
        let e = find(LOG, "p:other/x do_sys_open +0(%zz)", false).unwrap();
        assert!(e.contains("trace_kprobe"));
        assert_eq!(find(LOG, "p:nothing/here", false), None);
        assert!(find(LOG, "p:nothing/here", true)
            .unwrap()
            .contains("11.000002"));
        assert_eq!(find("", "x", true), None);
        let shown = indent(&find(LOG, "/bin/true", false).unwrap());
        assert!(
            shown.starts_with("    trace_uprobe: error: Invalid fetch argument"),
            "{shown}"
        );
    }
}
