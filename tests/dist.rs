//! Checks the release that `tests/dist` builds into `target/dist/`: the
//! multi-call binary needs nothing newer than glibc 2.17 and is about the
//! size of one tool, the tarball holds every file, and the .deb installs
//! (into a scratch root), gives `man funccount`, `funccount --help` and
//! bash completion, and removes cleanly.
mod support;

use object::read::elf::{ElfFile64, FileHeader};
use object::Endianness;
use std::path::{Path, PathBuf};
use std::process::Command;

const GLIBC: (u32, u32) = (2, 17);

fn dist_dir() -> Option<PathBuf> {
    if std::env::var_os("FTRACE_TOOLS_IN_VM").is_some() {
        support::skip("the release is checked on the host, not in each kernel");
        return None;
    }
    let dir = support::bin_dir().parent()?.join("dist");
    if dir.join("single").is_dir() {
        Some(dir)
    } else {
        support::skip(&format!(
            "no release in {} (tests/dist builds it; tests/run --dist runs both)",
            dir.display()
        ));
        None
    }
}

fn one_file(dir: &Path, suffix: &str) -> PathBuf {
    let found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "want one *{suffix} in {}: {found:?}",
        dir.display()
    );
    found[0].clone()
}

fn sh(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The glibc versions an ELF file's dynamic symbols require (its
/// `.gnu.version_r` entries for libc.so.6), as (major, minor).
fn glibc_versions(data: &[u8]) -> Vec<(u32, u32)> {
    let elf = ElfFile64::<Endianness>::parse(data).expect("an ELF file");
    let endian = elf.endian();
    let sections = elf.elf_header().sections(endian, data).unwrap();
    let (mut needs, link) = sections
        .gnu_verneed(endian, data)
        .unwrap()
        .expect("a dynamically linked binary has version needs");
    let strings = sections.strings(endian, data, link).unwrap();
    let mut out = Vec::new();
    while let Some((need, mut auxes)) = needs.next().unwrap() {
        let file = String::from_utf8_lossy(need.file(endian, strings).unwrap()).into_owned();
        while let Some(aux) = auxes.next().unwrap() {
            let name = String::from_utf8_lossy(aux.name(endian, strings).unwrap()).into_owned();
            let Some(v) = name.strip_prefix("GLIBC_") else {
                continue;
            };
            let mut it = v.split('.').map(|x| x.parse::<u32>().unwrap_or(u32::MAX));
            let ver = (it.next().unwrap_or(0), it.next().unwrap_or(0));
            assert!(
                file.starts_with("libc.so") || file.starts_with("ld-linux") || ver <= GLIBC,
                "{file} {name}"
            );
            out.push(ver);
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Unpacks the tarball into a scratch directory; returns it and the
/// release's top directory in it.
fn unpack(dist: &Path) -> (tempfile::TempDir, PathBuf) {
    let tar = one_file(dist, ".tar.gz");
    let tmp = tempfile::tempdir().unwrap();
    sh(Command::new("tar")
        .arg("-xzf")
        .arg(&tar)
        .arg("-C")
        .arg(tmp.path()));
    let name = tar
        .file_name()
        .unwrap()
        .to_string_lossy()
        .replace(".tar.gz", "");
    let top = tmp.path().join(name);
    (tmp, top)
}

#[test]
fn the_binary_needs_nothing_newer_than_glibc_2_17() {
    let Some(dist) = dist_dir() else { return };
    let (_tmp, top) = unpack(&dist);
    let data = std::fs::read(top.join("bin/ftrace-tools")).unwrap();
    let vers = glibc_versions(&data);
    eprintln!("ftrace-tools needs GLIBC_{vers:?}");
    assert!(vers.contains(&(2, 2)) || vers.contains(&(2, 3)), "{vers:?}");
    let newest = *vers.last().unwrap();
    assert!(newest <= GLIBC, "needs GLIBC_{}.{}", newest.0, newest.1);
    // The oracle's own check: the host's debug build needs a newer glibc.
    let host = std::fs::read(support::bin("tpoint")).unwrap();
    assert!(*glibc_versions(&host).last().unwrap() > GLIBC);
    // And it runs.
    let out = sh(Command::new(top.join("bin/ftrace-tools")).arg("--list"));
    assert_eq!(out.lines().count(), support::tool_names().len(), "{out}");
}

#[test]
fn the_multi_call_binary_is_at_most_a_third_bigger_than_the_largest_tool() {
    let Some(dist) = dist_dir() else { return };
    let (_tmp, top) = unpack(&dist);
    let multi = std::fs::metadata(top.join("bin/ftrace-tools"))
        .unwrap()
        .len();
    let mut singles: Vec<(u64, String)> = support::tool_names()
        .into_iter()
        .map(|t| {
            (
                std::fs::metadata(dist.join("single").join(&t))
                    .unwrap()
                    .len(),
                t,
            )
        })
        .collect();
    singles.sort();
    let (largest, name) = singles.last().unwrap().clone();
    let all: u64 = singles.iter().map(|s| s.0).sum();
    eprintln!(
        "ftrace-tools {multi} bytes; largest single tool {name} {largest} bytes ({:.2}x); all {} single tools {all} bytes",
        multi as f64 / largest as f64,
        singles.len()
    );
    assert!(multi * 10 <= largest * 13, "{multi} > 1.3 x {largest}");
}

#[test]
fn the_tarball_holds_the_binary_links_pages_completions_and_examples() {
    let Some(dist) = dist_dir() else { return };
    let (_tmp, top) = unpack(&dist);
    let mut missing = Vec::new();
    for t in support::tool_names() {
        let link = top.join("bin").join(&t);
        match std::fs::read_link(&link) {
            Ok(to) if to == Path::new("ftrace-tools") => {}
            other => missing.push(format!("bin/{t}: {other:?}")),
        }
        for f in [
            format!("share/man/man8/{t}.8"),
            format!("share/bash-completion/completions/{t}"),
            format!("share/zsh/site-functions/_{t}"),
            format!("share/fish/vendor_completions.d/{t}.fish"),
            format!("share/doc/ftrace-tools/examples/{t}_example.txt"),
        ] {
            if !top.join(&f).is_file() {
                missing.push(f);
            }
        }
    }
    assert!(missing.is_empty(), "{missing:#?}");
    // The man pages are the repository's.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    assert_eq!(
        std::fs::read(top.join("share/man/man8/funccount.8")).unwrap(),
        std::fs::read(root.join("man/man8/funccount.8")).unwrap()
    );
    // A link runs its tool: the same help as the tool's own binary.
    let via_link = sh(Command::new(top.join("bin/iosnoop")).arg("--help"));
    let own = sh(Command::new(support::bin("iosnoop")).arg("--help"));
    assert_eq!(via_link, own);
}

#[test]
fn the_deb_installs_gives_man_help_and_completion_and_removes() {
    let Some(dist) = dist_dir() else { return };
    if !support::has_command("dpkg") || !support::has_command("man") {
        support::skip("needs dpkg and man (man-db)");
        return;
    }
    let deb = one_file(&dist, "_amd64.deb");
    let info = sh(Command::new("dpkg-deb").arg("-f").arg(&deb));
    assert!(info.contains("Package: ftrace-tools\n"), "{info}");
    assert!(info.contains("Depends: libc6 (>= 2.17)"), "{info}");

    // A scratch root with an empty dpkg database.
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    std::fs::create_dir_all(r.join("var/lib/dpkg/info")).unwrap();
    std::fs::create_dir_all(r.join("var/lib/dpkg/updates")).unwrap();
    std::fs::write(r.join("var/lib/dpkg/status"), "").unwrap();
    let dpkg = |args: &[&str]| {
        let mut c = Command::new("dpkg");
        c.arg(format!("--root={}", r.display()))
            .args(["--force-not-root", "--force-depends", "--log=/dev/null"])
            .args(args);
        c
    };
    sh(&mut dpkg(&["-i", deb.to_str().unwrap()]));
    let status = sh(&mut dpkg(&["-s", "ftrace-tools"]));
    assert!(status.contains("Status: install ok installed"), "{status}");

    // man funccount, from the installed pages.
    let page = sh(Command::new("man")
        .env("MANPATH", r.join("usr/share/man"))
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .env("LC_ALL", "C.UTF-8")
        .arg("funccount"));
    assert!(page.contains("NAME"), "{page}");
    assert!(page.contains("funccount - "), "{page}");
    assert!(page.contains("--duration"), "{page}");

    // funccount --help, through the installed link, as the tool's own.
    let sbin = r.join("usr/sbin");
    assert_eq!(
        std::fs::read_link(sbin.join("funccount")).unwrap(),
        Path::new("ftrace-tools")
    );
    let help = sh(Command::new(sbin.join("funccount")).arg("--help"));
    assert_eq!(
        help,
        sh(Command::new(support::bin("funccount")).arg("--help"))
    );

    // bash completion: the installed script completes funccount's options.
    let comp = r.join("usr/share/bash-completion/completions/funccount");
    let script = format!(
        ". '{}'\n\
         complete -p funccount\n\
         COMP_WORDS=(funccount --dur); COMP_CWORD=1\n\
         COMP_LINE='funccount --dur'; COMP_POINT=${{#COMP_LINE}}\n\
         _funccount funccount --dur funccount\n\
         printf 'reply %s\\n' \"${{COMPREPLY[@]}}\"\n",
        comp.display()
    );
    let out = sh(Command::new("bash").arg("--norc").arg("-c").arg(&script));
    assert!(out.contains("-F _funccount funccount\n"), "{out}");
    assert!(out.contains("reply --duration"), "{out}");
    // And ftrace-tools completes the tools' names.
    let comp = r.join("usr/share/bash-completion/completions/ftrace-tools");
    let script = format!(
        ". '{}'\n\
         COMP_WORDS=(ftrace-tools func); COMP_CWORD=1\n\
         COMP_LINE='ftrace-tools func'; COMP_POINT=${{#COMP_LINE}}\n\
         _ftrace__tools ftrace-tools func ftrace-tools\n\
         printf 'reply %s\\n' \"${{COMPREPLY[@]}}\"\n",
        comp.display()
    );
    let out = sh(Command::new("bash").arg("--norc").arg("-c").arg(&script));
    let mut replies: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("reply "))
        .collect();
    replies.sort();
    assert_eq!(
        replies,
        [
            "funccount",
            "funcgraph",
            "funclatency",
            "funcslower",
            "functrace"
        ],
        "{out}"
    );

    // Removed, nothing of it is left.
    sh(&mut dpkg(&["-r", "ftrace-tools"]));
    for f in [
        "usr/sbin/ftrace-tools",
        "usr/sbin/funccount",
        "usr/share/man/man8/funccount.8.gz",
    ] {
        assert!(!r.join(f).exists(), "{f} is still there");
    }
}
