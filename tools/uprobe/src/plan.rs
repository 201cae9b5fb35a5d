//! From the command line to probes ready to be created: the definitions
//! (positional and `-e`), each resolved to a file and an offset in it.

use crate::cli::Args;
use crate::spec::{self, Definition, Kind};
use ftrace_common::lifecycle::dynevent::{ProbeDef, ProbeKind};
use ftrace_common::probes::tool as probetool;
use ftrace_common::sym::elf::{ElfFile, Resolved};
use ftrace_common::sym::target::{resolve_target, Target};
use ftrace_common::{Error, Result};
use std::collections::HashMap;
use std::path::PathBuf;

/// A probe resolved to a file offset, ready to be created.
pub struct Planned {
    pub def: Definition,
    pub target: Target,
    pub at: Resolved,
    pub probe: ProbeDef,
    pub filter: Option<String>,
}

/// The definitions given: the positional one (with the positional filter)
/// and every -e.
pub fn definitions(args: &Args) -> Result<Vec<(Definition, Option<String>)>> {
    probetool::definitions(
        "uprobe",
        args.definition.as_deref(),
        args.probe.filter.as_deref(),
        &args.probe.probes,
        "no probe given: e.g. uprobe p:bash:readline (see uprobe -h; uprobe -l TARGET lists functions)",
    )
}

/// Resolves each definition to a file and offset. Files are parsed once
/// even when several probes are in the same one.
pub fn plan(
    defs: Vec<(Definition, Option<String>)>,
    pid: Option<u32>,
    force: bool,
) -> Result<Vec<Planned>> {
    let mut files: HashMap<PathBuf, ElfFile> = HashMap::new();
    let mut out = Vec::new();
    for (def, filter) in defs {
        let target = resolve_target(&def.location.target, pid).map_err(|e| {
            let missing = def.location.target.contains('/') && !std::path::Path::new(&def.location.target).exists();
            if pid.is_none() && missing {
                // Perhaps a file only a container (another mount namespace)
                // sees.
                Error::new(
                    e.kind(),
                    format!(
                        "{} If it is a file of a process in a container, add -p PID: the path is then looked up as that process sees it.",
                        e.message()
                    ),
                )
            } else {
                e
            }
        })?;
        if !files.contains_key(&target.path) {
            let elf = ElfFile::open(&target.path)?.with_name(&target.display_path);
            files.insert(target.path.clone(), elf);
        }
        let at = files[&target.path].resolve(&def.location.symbol, force)?;
        let name = def.name.clone().unwrap_or_else(|| spec::default_name(&def));
        let probe = ProbeDef {
            kind: match def.kind {
                Kind::Entry => ProbeKind::Uprobe,
                Kind::Return => ProbeKind::Uretprobe,
            },
            name,
            location: format!("{}:{:#x}", target.path.display(), at.offset),
            args: def.args.clone(),
        };
        // Refuse a line that could not be written before touching tracefs.
        probe.line("ftrace_tools_check")?;
        out.push(Planned {
            def,
            target,
            at,
            probe,
            filter,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(v: &[&str]) -> Args {
        Args::try_parse_from(std::iter::once("uprobe").chain(v.iter().copied())).unwrap()
    }

    #[test]
    fn definitions_positional_and_repeated() {
        let d = definitions(&args(&["r:libc:fopen file=$retval", "file == 0"])).unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].1.as_deref(), Some("file == 0"));
        let d = definitions(&args(&[
            "-e",
            "p:libssl:SSL_write +0(%si):string",
            "-e",
            "r:libssl:SSL_read if arg1 > 0",
        ]))
        .unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d[1].1.as_deref(), Some("arg1 > 0"));
        let d = definitions(&args(&[
            "-e",
            "p:libc:free",
            "p:libc:malloc",
            "common_pid == 1",
        ]))
        .unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].1.as_deref(), Some("common_pid == 1"));
        assert_eq!(d[1].1, None);
        // A second definition where the filter goes is explained.
        let e = definitions(&args(&["p:libc:malloc", "p:libc:free"])).unwrap_err();
        assert!(e.to_string().contains("-e"), "{e}");
        assert!(definitions(&args(&[])).is_err());
        assert!(definitions(&args(&["p:libc:malloc if arg1 > 1", "arg1 > 2"])).is_err());
    }
}
