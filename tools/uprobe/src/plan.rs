//! From the command line to probes ready to be created: the definitions
//! (positional and `-e`); resolving each to a file and an offset in it is
//! shared with the other tools that probe user functions
//! (`ftrace_common::probes::uprobe::plan`).

use crate::cli::Args;
use crate::spec::Definition;
use ftrace_common::probes::tool as probetool;
pub use ftrace_common::probes::uprobe::{plan, Planned};
use ftrace_common::Result;

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
