//! What every tool's `main` shares: running with signals installed and
//! errors turned into one line and an exit status, the options every tool
//! has, and man pages generated from the clap definition.

use crate::base::error::{Error, Result};
use std::ffi::OsString;
use std::process::ExitCode;
use std::sync::OnceLock;
use std::time::Duration;

static ARGS: OnceLock<Vec<OsString>> = OnceLock::new();

/// Sets the command line a tool parses instead of the process's own: the
/// multi-call binary runs `ftrace-tools TOOL ARGS` as `TOOL ARGS`. Only the
/// first call counts.
pub fn set_args(args: Vec<OsString>) {
    let _ = ARGS.set(args);
}

/// The tool's command line, its name first: the one [`set_args`] set, or
/// the process's own.
pub fn args() -> Vec<OsString> {
    match ARGS.get() {
        Some(a) => a.clone(),
        None => std::env::args_os().collect(),
    }
}

/// Runs a tool's body. Installs the stop-signal handlers first (before any
/// kernel state can change), prints an error as `tool: message`, and turns
/// a panic into exit status 1 after it has unwound through every guard.
pub fn run(tool: &str, body: impl FnOnce() -> Result<()>) -> ExitCode {
    crate::base::tool::set_name(tool);
    if let Err(e) = crate::app::signals::install() {
        eprintln!("{tool}: cannot install signal handlers: {e}");
        return ExitCode::from(1);
    }
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) if e.is_interrupted() => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("{tool}: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
        Err(_) => {
            eprintln!(
                "{tool}: internal error (a bug): the panic above; tracing state was cleaned up"
            );
            ExitCode::from(1)
        }
    }
}

/// The whole `main` of a tool: parses its options (clap's message and exit
/// status 2 for bad ones, 0 for `--help`) and runs its body (see [`run`]).
pub fn main<A: clap::Parser>(tool: &str, body: impl FnOnce(A) -> Result<()>) -> ExitCode {
    match parse_or_exit::<A>() {
        Ok(args) => run(tool, || body(args)),
        Err(code) => code,
    }
}

/// Turns a clap parse error into exit status 2 (0 for `--help`/`--version`),
/// printing clap's own message.
///
/// Installs the stop-signal handlers first: from the start of `main` a
/// stop signal is noticed (Rust's runtime ignores SIGPIPE until then; the
/// other stop signals would kill the process before any state exists).
pub fn parse_or_exit<T: clap::Parser>() -> std::result::Result<T, ExitCode> {
    if let Err(e) = crate::app::signals::install() {
        eprintln!("cannot install signal handlers: {e}");
        return Err(ExitCode::from(1));
    }
    match T::try_parse_from(args()) {
        Ok(v) => Ok(v),
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            Err(ExitCode::from(code))
        }
    }
}

/// Parses a number of seconds (`5`, `0.5`) into a duration.
pub fn parse_secs(s: &str) -> std::result::Result<Duration, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("'{s}' is not a number of seconds"))?;
    if !(v > 0.0 && v.is_finite() && v < 1e9) {
        return Err(format!("'{s}' must be a positive number of seconds"));
    }
    Ok(Duration::from_secs_f64(v))
}

/// Renders the man(8) page of a tool from its clap definition.
pub fn man_page(cmd: clap::Command) -> Vec<u8> {
    let mut buf = Vec::new();
    let man = clap_mangen::Man::new(cmd)
        .section("8")
        .manual("ftrace-tools");
    man.render(&mut buf)
        .expect("rendering to memory cannot fail");
    buf
}

/// For a test: checks that `man/man8/<name>.8` (relative to the workspace
/// root, found from `manifest_dir`) matches the clap definition; with
/// `FTRACE_TOOLS_UPDATE_MAN=1` writes it instead.
pub fn check_man_page(cmd: clap::Command, manifest_dir: &str) -> std::result::Result<(), String> {
    let name = cmd.get_name().to_string();
    let root = std::path::Path::new(manifest_dir)
        .ancestors()
        .find(|p| p.join("man/man8").is_dir())
        .ok_or("no man/man8 directory above the crate")?
        .to_path_buf();
    let path = root.join(format!("man/man8/{name}.8"));
    let fresh = man_page(cmd);
    if std::env::var_os("FTRACE_TOOLS_UPDATE_MAN").is_some() {
        std::fs::write(&path, &fresh).map_err(|e| e.to_string())?;
        return Ok(());
    }
    let old = std::fs::read(&path).unwrap_or_default();
    if old != fresh {
        return Err(format!(
            "{} is stale: regenerate it with FTRACE_TOOLS_UPDATE_MAN=1 cargo test -p {name}",
            path.display()
        ));
    }
    Ok(())
}

/// The options of a tool as `-d/--duration`, `--hist`, `-D/--per-disk`
/// (hidden ones, `--help` and `--version` left out), and the number of
/// its positional arguments.
pub fn option_names(cmd: &clap::Command) -> (Vec<String>, usize) {
    let mut names = Vec::new();
    let mut positional = 0;
    for a in cmd.get_arguments() {
        let id = a.get_id().as_str();
        if a.is_hide_set() || id == "help" || id == "version" {
            continue;
        }
        if a.is_positional() {
            positional += 1;
            continue;
        }
        names.push(match (a.get_short(), a.get_long()) {
            (Some(s), Some(l)) => format!("-{s}/--{l}"),
            (Some(s), None) => format!("-{s}"),
            (None, Some(l)) => format!("--{l}"),
            (None, None) => continue,
        });
    }
    names.sort();
    (names, positional)
}

/// For a test: checks that `docs/option-letters.md` (found above
/// `manifest_dir`) has a section `## NAME` whose table lists exactly the
/// tool's options (letter and long form, as the clap definition has them)
/// and its positional arguments, so that the document cannot drift from
/// the command line.
pub fn check_option_letters(
    cmd: clap::Command,
    manifest_dir: &str,
) -> std::result::Result<(), String> {
    let name = cmd.get_name().to_string();
    let root = std::path::Path::new(manifest_dir)
        .ancestors()
        .find(|p| p.join("docs/option-letters.md").is_file())
        .ok_or("no docs/option-letters.md above the crate")?
        .to_path_buf();
    let doc =
        std::fs::read_to_string(root.join("docs/option-letters.md")).map_err(|e| e.to_string())?;
    let head = format!("## {name}");
    let mut lines = doc.lines().skip_while(|l| l.trim_end() != head);
    if lines.next().is_none() {
        return Err(format!("docs/option-letters.md has no section '{head}'"));
    }
    let tick = |cell: &str, prefix: &str| -> Option<String> {
        let i = cell.find(&format!("`{prefix}"))?;
        let rest = &cell[i + 1..];
        let end = rest.find(['`', ' '])?;
        Some(rest[..end].to_string())
    };
    let mut documented = Vec::new();
    let mut positional = 0;
    for l in lines.take_while(|l| !l.starts_with("## ")) {
        let cells: Vec<&str> = l.split('|').collect();
        if !l.starts_with('|') || cells.len() < 4 || cells[1].trim_start().starts_with("---") {
            continue;
        }
        let (letter, long) = (cells[1], cells[2]);
        if letter.contains("(positional)") {
            positional += 1;
            continue;
        }
        let short = tick(letter, "-").filter(|s| !s.starts_with("--"));
        let long = tick(long, "--");
        documented.push(match (short, long) {
            (Some(s), Some(l)) => format!("{s}/{l}"),
            (Some(s), None) => s,
            (None, Some(l)) => l,
            (None, None) => continue,
        });
    }
    documented.sort();
    let (names, args) = option_names(&cmd);
    if documented != names || positional != args {
        return Err(format!(
            "docs/option-letters.md, section '{head}', lists {documented:?} and {positional} positional; the command line has {names:?} and {args} positional"
        ));
    }
    Ok(())
}

/// The unit tests every tool's command line has: clap's own consistency
/// checks, the committed man page is the one the definition makes, and
/// `docs/option-letters.md` lists exactly its options. Written once, in the
/// module that defines the tool's `Args`: `ftrace_common::cli_tests!(Args);`
#[macro_export]
macro_rules! cli_tests {
    ($args:ty) => {
        #[cfg(test)]
        mod cli_tests {
            use super::*;
            use clap::CommandFactory;

            #[test]
            fn cli_is_consistent() {
                <$args>::command().debug_assert();
            }

            #[test]
            fn man_page_is_fresh() {
                $crate::app::cli::check_man_page(<$args>::command(), env!("CARGO_MANIFEST_DIR"))
                    .unwrap();
            }

            #[test]
            fn option_letters_are_documented() {
                $crate::app::cli::check_option_letters(
                    <$args>::command(),
                    env!("CARGO_MANIFEST_DIR"),
                )
                .unwrap();
            }
        }
    };
}

/// Defines a tool library's `pub fn command() -> clap::Command` (next to its
/// `pub fn main`): the multi-call binary lists the tools and writes their
/// completions from it. `ftrace_common::tool_command!(Args);`
#[macro_export]
macro_rules! tool_command {
    ($args:ty) => {
        /// The tool's command line (its clap definition).
        pub fn command() -> clap::Command {
            <$args as clap::CommandFactory>::command()
        }
    };
}

/// Parses a `-p PID` value: a positive integer naming a live process.
pub fn parse_pid(s: &str) -> std::result::Result<u32, String> {
    match s.parse::<u32>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!("'{s}' is not a PID")),
    }
}

/// An error for options that cannot go together.
pub fn conflict(a: &str, b: &str) -> Error {
    Error::usage(format!("{a} and {b} cannot be used together"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_parse_and_refuse_nonsense() {
        assert_eq!(parse_secs("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_secs("0.25").unwrap(), Duration::from_millis(250));
        for bad in ["0", "-1", "x", "inf", "NaN"] {
            assert!(parse_secs(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_pid("12"), Ok(12));
        assert!(parse_pid("0").is_err());
        assert!(parse_pid("-3").is_err());
    }
}
