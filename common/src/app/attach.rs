//! Probes on what a pattern matched ([`crate::probes::matching`]): one
//! kprobe per kernel function (funccount, stackcount).

use crate::app::signals;
use crate::lifecycle::dynevent::{ProbeDef, ProbeGroup, ProbeKind};
use crate::{Error, ErrorKind, Result};

/// Creates a kprobe for each name: (event name, function). A name the
/// kernel refuses (the kprobe blacklist, a function it cannot place) is an
/// error with `strict`; otherwise it is left out with a warning. `tag`
/// starts the event names (with our PID, so runs never collide).
pub fn add_kprobes(
    tool: &str,
    tag: &str,
    probes: &mut ProbeGroup,
    names: &[String],
    strict: bool,
) -> Result<Vec<(String, String)>> {
    let mut made = Vec::new();
    let mut refused: Vec<String> = Vec::new();
    let mut first_refusal = None;
    for (i, name) in names.iter().enumerate() {
        signals::check()?;
        let def = ProbeDef {
            kind: ProbeKind::Kprobe,
            name: format!("{tag}{}_{i}", std::process::id()),
            location: name.clone(),
            args: Vec::new(),
        };
        match probes.add(&def) {
            Ok(p) => made.push((p.name.clone(), name.clone())),
            Err(e) if e.kind() == ErrorKind::Rejected && !strict => {
                refused.push(name.clone());
                first_refusal.get_or_insert(e);
            }
            Err(e) => return Err(e),
        }
    }
    if made.is_empty() {
        return Err(first_refusal.unwrap_or_else(|| Error::rejected("no kprobe was accepted")));
    }
    if !refused.is_empty() {
        eprintln!(
            "{tool}: the kernel refused kprobes on {} of the functions, which are not counted: {}{}",
            refused.len(),
            refused.iter().take(5).cloned().collect::<Vec<_>>().join(", "),
            if refused.len() > 5 { ", ..." } else { "" }
        );
    }
    Ok(made)
}
