//! reset-ftrace - remove ftrace-tools state left behind by killed runs.
//!
//! USAGE: reset-ftrace [-fhnq] [--features]
//!
//! Every ftrace-tools run keeps its tracing in a private instance
//! (`instances/ftrace-tools-...`) and its probes in its own group
//! (`ftrace_tools_...`), named after the owning process. A run killed with
//! SIGKILL cannot clean up; the next run of any tool, or this one, removes
//! what it left. Nothing that is not ours, and nothing of a live run (unless
//! -f), is touched. Unlike perf-tools' reset-ftrace, this never resets the
//! global tracer, buffer or filters: they belong to whoever set them, except
//! where a killed run of ours changed them (funcgraph at the top level,
//! funccount's profiler) and they still hold what it wrote: those settings
//! are put back, from the record the run left.

use clap::Parser;
use ftrace_common::app::cli;
use ftrace_common::kernel::tracefs::Tracefs;
use ftrace_common::kernel::{caps, needs};
use ftrace_common::lifecycle::owner::Liveness;
use ftrace_common::lifecycle::sweep::{sweep, Outcome, Scope};
use ftrace_common::lifecycle::toplevel;
use ftrace_common::{Error, Result};
use std::process::ExitCode;

const EXAMPLES: &str = "\
Examples:
  reset-ftrace              # remove what killed ftrace-tools runs left
  reset-ftrace -n           # only show what would be removed
  reset-ftrace -f           # also stop and remove state of running tools
  reset-ftrace --features   # what this kernel's tracing can do";

/// Remove ftrace-tools state left behind by killed runs.
#[derive(Debug, Parser)]
#[command(
    name = "reset-ftrace",
    version,
    about = "Remove ftrace-tools state left behind by killed runs",
    long_about = "Remove the tracing instances and probe events that ftrace-tools runs \
left behind when they were killed (SIGKILL), and put back the top-level settings that a \
killed run had changed (funcgraph where function_graph runs only at the top level, \
funccount's function profiler), where they still hold what that run wrote. Only state \
named by ftrace-tools whose owning process is gone is removed; with -f also that of \
running tools. Other users' instances, probes and global tracing settings are never \
touched.\n\nRequirements: root, tracefs (mounted if needed).",
    after_help = EXAMPLES
)]
struct Args {
    /// Also remove state of ftrace-tools runs that are still running.
    #[arg(short = 'f', long = "force")]
    force: bool,
    /// Dry run: list what would be removed, remove nothing.
    #[arg(short = 'n', long = "dry-run")]
    dry_run: bool,
    /// Quiet: print nothing but errors.
    #[arg(short = 'q', long = "quiet")]
    quiet: bool,
    /// Print what this kernel's tracing can do, and exit.
    #[arg(long = "features")]
    features: bool,
}

ftrace_common::cli_tests!(Args);

pub fn main() -> ExitCode {
    cli::main("reset-ftrace", reset)
}

ftrace_common::tool_command!(Args);

fn reset(args: Args) -> Result<()> {
    let tfs = Tracefs::open()?;
    needs::RESET_FTRACE.require(&tfs)?;
    if args.features {
        print!("{}", caps::report(&tfs));
        return Ok(());
    }
    let scope = if args.force {
        Scope::AllOurs
    } else {
        Scope::Dead
    };
    let items = sweep(&tfs, scope, args.dry_run)?;
    let restored = if args.dry_run {
        None
    } else {
        toplevel::recover_stale(&tfs)
    };
    if let (Some(r), false) = (&restored, args.quiet) {
        println!("{r}");
    }
    let mut failed = 0;
    for it in &items {
        let owner = match it.liveness {
            Liveness::Alive => format!("owner {} running", it.owner.pid),
            Liveness::Dead => format!("owner {} gone", it.owner.pid),
            Liveness::Foreign => "owner in another PID namespace".to_string(),
        };
        let line = match &it.outcome {
            Outcome::Removed => format!("removed {} ({owner})", it.what),
            Outcome::WouldRemove => format!("would remove {} ({owner})", it.what),
            Outcome::Kept => format!("kept {} ({owner})", it.what),
            Outcome::Failed(why) => {
                failed += 1;
                eprintln!("reset-ftrace: cannot remove {}: {why}", it.what);
                continue;
            }
        };
        if !args.quiet {
            println!("{line}");
        }
    }
    if !args.quiet && items.is_empty() && restored.is_none() {
        println!("nothing of ftrace-tools in {}", tfs.root().display());
    }
    if failed > 0 {
        return Err(Error::new(
            ftrace_common::ErrorKind::Busy,
            format!("{failed} item(s) could not be removed"),
        ));
    }
    Ok(())
}
