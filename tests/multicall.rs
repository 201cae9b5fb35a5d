//! Black-box tests of the multi-call binary `ftrace-tools`: it runs every
//! tool, chosen by its first argument or by the name of a link to it, the
//! same as the tool's own binary.
mod support;

use std::process::Command;
use support::{Finished, ToolRun, Workload};

fn output(cmd: &mut Command) -> (i32, String, String) {
    let o = cmd.output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn list_names_every_tool() {
    let (code, out, err) = output(Command::new(support::bin("ftrace-tools")).arg("--list"));
    assert_eq!(code, 0, "{err}");
    let names: Vec<String> = out
        .lines()
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect();
    assert_eq!(names, support::tool_names());
}

#[test]
fn every_tool_has_its_own_help_as_an_argument_and_through_a_link() {
    let multi = support::bin("ftrace-tools");
    let dir = tempfile::tempdir().unwrap();
    let links = dir.path().join("sbin");
    let (code, out, err) = output(Command::new(&multi).arg("--install-links").arg(&links));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with(&format!("{} links to ", support::tool_names().len())),
        "{out}"
    );
    for t in support::tool_names() {
        let own = output(Command::new(support::bin(&t)).arg("--help"));
        assert_eq!(own.0, 0, "{t}: {}", own.2);
        let arg = output(Command::new(&multi).arg(&t).arg("--help"));
        assert_eq!(arg, own, "ftrace-tools {t} --help");
        let link = output(Command::new(links.join(&t)).arg("--help"));
        assert_eq!(link, own, "{t} (a link) --help");
        // A bad option: the tool's own message and exit status 2.
        let bad = output(Command::new(&multi).arg(&t).arg("--no-such-option"));
        assert_eq!(
            bad,
            output(Command::new(support::bin(&t)).arg("--no-such-option"))
        );
        assert_eq!(bad.0, 2, "{t}");
    }
    // Again: the links are there already and are kept.
    let (code, out, _) = output(Command::new(&multi).arg("--install-links").arg(&links));
    assert_eq!(code, 0);
    assert!(out.starts_with("0 links to "), "{out}");
}

#[test]
fn install_links_changes_nothing_when_a_name_is_taken() {
    let multi = support::bin("ftrace-tools");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("iosnoop"), "#!/bin/sh\n").unwrap();
    let (code, _, err) = output(Command::new(&multi).arg("--install-links").arg(dir.path()));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("iosnoop exists and is not a link"), "{err}");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(left.len(), 1, "only the file that was there");
}

#[test]
fn an_unknown_tool_or_none_is_a_usage_error() {
    let multi = support::bin("ftrace-tools");
    let (code, _, err) = output(Command::new(&multi).arg("iosnoopy"));
    assert_eq!(code, 2);
    assert!(err.contains("'iosnoopy'"), "{err}");
    assert!(err.contains("a similar value exists: 'iosnoop'"), "{err}");
    let (code, _, err) = output(&mut Command::new(&multi));
    assert_eq!(code, 2);
    assert!(err.contains("name a tool"), "{err}");
    let (code, _, err) = output(Command::new(&multi).args(["--completions", "tcsh", "/tmp"]));
    assert_eq!(code, 2);
    assert!(err.contains("'tcsh'"), "{err}");
}

/// Traces `n` getppid calls with tpoint started as `cmd` (the multi-call
/// binary, one way or the other).
fn tpoint_getppid(cmd: &mut Command, n: u64) -> (Finished, u64) {
    let mut w = Workload::waiting(&["getppid", &n.to_string()]);
    cmd.args(["-p", &w.pid().to_string(), "syscalls:sys_enter_getppid"]);
    let mut t = ToolRun::start_cmd(cmd);
    t.wait_ready();
    w.go();
    let made = w.wait();
    (t.stop(), made)
}

#[test]
fn traces_exactly_as_an_argument_and_through_a_link() {
    require_tracing!(SyscallTracepoints, Instances);
    let multi = support::bin("ftrace-tools");
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(&multi, dir.path().join("tpoint")).unwrap();
    let n = 2000;
    for mut cmd in [
        {
            let mut c = Command::new(&multi);
            c.arg("tpoint");
            c
        },
        Command::new(dir.path().join("tpoint")),
    ] {
        let (f, made) = tpoint_getppid(&mut cmd, n);
        assert_eq!(made, n);
        assert_eq!(f.code(), 0, "{}", f.stderr);
        assert_eq!(f.count(": sys_getppid()"), n as usize, "{}", f.stderr);
        assert!(!f.stderr.contains("LOST"), "{}", f.stderr);
        support::assert_nothing_left(f.pid);
    }
}
