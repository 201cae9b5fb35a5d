//! ftrace-tools - every tool of ftrace-tools in one binary.
//!
//! USAGE: ftrace-tools TOOL [ARGS...]
//!        TOOL [ARGS...]            (through a link named TOOL, busybox-style)
//!        ftrace-tools --list | --install-links DIR | --completions SHELL DIR
//!
//! One file to copy onto a box: the tool is chosen by the name the binary
//! was started under (a symbolic link named `funccount`) or, under any
//! other name, by its first argument. Each tool is the same code as its
//! own binary (each tool crate is a library with one `main`), so its
//! options, output and exit statuses are the same.

use clap::Parser;
use ftrace_common::app::{cli, output};
use ftrace_common::{Error, Result};
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// One tool: its name and its library's `main` and command line.
struct Tool {
    name: &'static str,
    main: fn() -> ExitCode,
    command: fn() -> clap::Command,
}

macro_rules! tools {
    ($($name:literal => $krate:ident),* $(,)?) => {
        const TOOLS: &[Tool] = &[
            $(Tool { name: $name, main: $krate::main, command: $krate::command },)*
        ];
    };
}

tools! {
    "bitesize" => bitesize,
    "cachestat" => cachestat,
    "execsnoop" => execsnoop,
    "ftrace-status" => ftrace_status,
    "funccount" => funccount,
    "funcgraph" => funcgraph,
    "funclatency" => funclatency,
    "funcslower" => funcslower,
    "functrace" => functrace,
    "hist" => hist,
    "iolatency" => iolatency,
    "iosnoop" => iosnoop,
    "killsnoop" => killsnoop,
    "kprobe" => kprobe,
    "offcputime" => offcputime,
    "opensnoop" => opensnoop,
    "reset-ftrace" => reset_ftrace,
    "sslsniff" => sslsniff,
    "stackcount" => stackcount,
    "syscount" => syscount,
    "tcpretrans" => tcpretrans,
    "tpoint" => tpoint,
    "uprobe" => uprobe,
}

const EXAMPLES: &str = "\
Examples:
  ftrace-tools --list                  # the tools, with what each does
  ftrace-tools funccount 'vfs_*'       # run funccount
  ftrace-tools --install-links /usr/local/sbin
                                       # links funccount, iosnoop, ... to this binary
  funccount 'vfs_*'                    # then run a tool by its own name
  ftrace-tools --completions bash /etc/bash_completion.d";

const LONG_ABOUT: &str = "\
Every tool of ftrace-tools in one binary, to copy onto a box as one file. The tool is \
chosen by the name the binary was started under (a symbolic link named after the tool, \
as busybox does; --install-links makes them) or, under any other name, by the first \
argument. A tool run either way is the same as its own binary: same options, output \
and exit statuses.";

/// Every ftrace-tools tool in one binary.
#[derive(Debug, Parser)]
#[command(
    name = "ftrace-tools",
    version,
    about = "Every ftrace-tools tool in one binary",
    long_about = LONG_ABOUT,
    after_help = EXAMPLES
)]
struct Args {
    /// List the tools, one per line, with what each does.
    #[arg(short = 'l', long)]
    list: bool,
    /// Make a symbolic link named after each tool in DIR (made if missing),
    /// pointing at this binary: by file name when DIR is the binary's own
    /// directory, by absolute path otherwise. Links that already point here
    /// are kept; any other file of a tool's name stops it before it changes
    /// anything.
    #[arg(long, value_name = "DIR")]
    install_links: Option<PathBuf>,
    /// Write the completions of every tool (and of ftrace-tools) for SHELL
    /// (bash, zsh, fish, elvish, powershell) into DIR (made if missing), one
    /// file per tool: for bash named as the tool, as bash-completion loads
    /// them (/usr/share/bash-completion/completions); _TOOL for zsh;
    /// TOOL.fish for fish.
    #[arg(long, num_args = 2, value_names = ["SHELL", "DIR"])]
    completions: Option<Vec<String>>,
    /// The tool to run (see --list), followed by its own options and
    /// arguments.
    #[arg(value_name = "TOOL", value_parser = tool_names(), hide_possible_values = true)]
    tool: Option<String>,
    /// The tool's options and arguments.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ARGS"
    )]
    args: Vec<OsString>,
}

fn main() -> ExitCode {
    let argv: Vec<OsString> = std::env::args_os().collect();
    // Started through a link named after a tool.
    let me = argv
        .first()
        .and_then(|a| Path::new(a).file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("");
    if let Some(t) = find(me) {
        return (t.main)();
    }
    // `ftrace-tools TOOL ARGS`: the tool parses `TOOL ARGS`.
    if let Some(t) = argv.get(1).and_then(|a| a.to_str()).and_then(find) {
        cli::set_args(argv[1..].to_vec());
        return (t.main)();
    }
    cli::main("ftrace-tools", multi)
}

/// The tools' names, for clap: completions offer them, and a wrong one is
/// refused with the nearest.
fn tool_names() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(TOOLS.iter().map(|t| t.name))
}

fn find(name: &str) -> Option<&'static Tool> {
    TOOLS.iter().find(|t| t.name == name)
}

fn multi(args: Args) -> Result<()> {
    if args.list {
        return output::print_lines(TOOLS.iter().map(|t| {
            let cmd = (t.command)();
            let about = cmd.get_about().map(|a| a.to_string()).unwrap_or_default();
            format!("{:<14} {about}", t.name)
        }));
    }
    if let Some(dir) = &args.install_links {
        return install_links(dir);
    }
    if let Some(v) = &args.completions {
        return completions(&v[0], Path::new(&v[1]));
    }
    // A tool named was run in main(); clap refuses names of no tool.
    Err(Error::usage(
        "name a tool to run (ftrace-tools --list lists them; --help says more)",
    ))
}

fn install_links(dir: &Path) -> Result<()> {
    let exe = std::env::current_exe()
        .and_then(fs::canonicalize)
        .map_err(|e| Error::io("find", Path::new("/proc/self/exe"), e))?;
    fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
    let dir = fs::canonicalize(dir).map_err(|e| Error::io("resolve", dir, e))?;
    let target = if exe.parent() == Some(dir.as_path()) {
        PathBuf::from(exe.file_name().unwrap_or_default())
    } else {
        exe.clone()
    };
    // Check every name first: nothing is made unless all can be.
    let mut todo = Vec::new();
    for t in TOOLS {
        let link = dir.join(t.name);
        match fs::symlink_metadata(&link) {
            Err(_) => todo.push(link),
            Ok(m)
                if m.file_type().is_symlink()
                    && fs::canonicalize(&link).ok() == Some(exe.clone()) => {}
            Ok(_) => {
                return Err(Error::usage(format!(
                    "{} exists and is not a link to {}: remove it or choose another directory",
                    link.display(),
                    exe.display()
                )))
            }
        }
    }
    for link in &todo {
        std::os::unix::fs::symlink(&target, link).map_err(|e| Error::io("link", link, e))?;
    }
    output::print_lines([format!(
        "{} links to {} in {} ({} were there already)",
        todo.len(),
        target.display(),
        dir.display(),
        TOOLS.len() - todo.len()
    )])
}

fn completions(shell: &str, dir: &Path) -> Result<()> {
    let shell: clap_complete::Shell = shell.parse().map_err(|_| {
        Error::usage(format!(
            "no completions for shell '{shell}' (bash, zsh, fish, elvish, powershell)"
        ))
    })?;
    fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
    let mut cmds: Vec<clap::Command> = TOOLS.iter().map(|t| (t.command)()).collect();
    cmds.push(<Args as clap::CommandFactory>::command());
    for mut cmd in cmds {
        let name = cmd.get_name().to_string();
        let path = clap_complete::generate_to(shell, &mut cmd, &name, dir)
            .map_err(|e| Error::io("write completions into", dir, e))?;
        // bash-completion loads a command's completions from a file of its name.
        if shell == clap_complete::Shell::Bash {
            let named = dir.join(&name);
            fs::rename(&path, &named).map_err(|e| Error::io("rename", &path, e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_crate_is_in_the_table_and_named_as_its_command() {
        let tools_dir = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let mut dirs: Vec<String> = fs::read_dir(tools_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "ftrace-tools")
            .collect();
        dirs.sort();
        let names: Vec<&str> = TOOLS.iter().map(|t| t.name).collect();
        assert_eq!(names, dirs);
        for t in TOOLS {
            assert_eq!((t.command)().get_name(), t.name);
        }
    }

    #[test]
    fn options_parse() {
        let a = Args::try_parse_from(["ftrace-tools", "--completions", "bash", "/tmp/x"]).unwrap();
        assert_eq!(a.completions.unwrap(), ["bash", "/tmp/x"]);
        let a = Args::try_parse_from(["ftrace-tools", "iosnoop", "-d", "1"]).unwrap();
        assert_eq!(a.tool.as_deref(), Some("iosnoop"));
        assert_eq!(a.args, ["-d", "1"]);
        let e = Args::try_parse_from(["ftrace-tools", "iosnoopy"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::InvalidValue);
    }

    #[test]
    fn man_page_is_fresh() {
        let cmd = <Args as clap::CommandFactory>::command();
        cli::check_man_page(cmd, env!("CARGO_MANIFEST_DIR")).unwrap();
    }
}
