//! Tests against real ELF files: small programs compiled here with `cc` from
//! `testdata/elf/`, and this machine's libc, bash and libssl.
//!
//! The ground truth for every file offset comes from the running program
//! itself: it takes the address of a function and finds it in its own
//! `/proc/self/maps` (see `testdata/elf/report.h`), with no ELF parsing at
//! all. An offset that matches is where the kernel would place the uprobe
//! for that function in that process.

use std::collections::HashMap;
use std::ffi::CString;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use super::elf::{ElfFile, SymbolKind};
use super::ldcache;
use super::maps;
use super::symbolize::UserSymbols;
use super::target::{resolve_target, Resolver};
use crate::base::error::ErrorKind;
use crate::base::glob::Glob;

const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/elf");

/// Compiles with `compiler` into `out`; `None` (after printing why) when
/// there is no compiler on this machine.
fn build(compiler: &str, out: &Path, args: &[&str]) -> Option<PathBuf> {
    let res = Command::new(compiler)
        .arg("-I")
        .arg(TESTDATA)
        .arg("-o")
        .arg(out)
        .args(args)
        .current_dir(TESTDATA)
        .output();
    match res {
        Err(e) => {
            eprintln!("skipping: cannot run {compiler}: {e}");
            None
        }
        Ok(o) if !o.status.success() => panic!(
            "{compiler} {args:?} failed:\n{}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Ok(_) => Some(out.to_path_buf()),
    }
}

/// Function name to (file offset, runtime address), as a fixture saw them.
type Truth = HashMap<String, (u64, u64)>;

/// Parses the `NAME\t0xOFFSET\t0xADDR` lines that the fixtures print.
fn truth(text: &str) -> Truth {
    let mut m = HashMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 3, "fixture could not locate a symbol: {line}");
        let hex = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap();
        m.insert(f[0].to_string(), (hex(f[1]), hex(f[2])));
    }
    m
}

fn run(path: &Path, args: &[&str]) -> String {
    let o = Command::new(path).args(args).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

fn offset(elf: &ElfFile, spec: &str) -> u64 {
    match elf.resolve(spec, false) {
        Ok(r) => r.offset,
        Err(e) => panic!("resolving {spec}: {e}"),
    }
}

fn usage_error(elf: &ElfFile, spec: &str) -> String {
    let e = elf.resolve(spec, false).expect_err(spec);
    assert_eq!(e.kind(), ErrorKind::Usage, "{e}");
    e.to_string()
}

#[test]
fn executables_pie_nonpie_and_stripped() {
    let dir = tempfile::tempdir().unwrap();
    let variants: [(&str, &[&str]); 3] = [
        ("pie", &["-O0", "-fPIE", "-pie"]),
        ("nopie", &["-O0", "-fno-pie", "-no-pie"]),
        ("stripped", &["-O0", "-fPIE", "-pie", "-s", "-rdynamic"]),
    ];
    for (name, flags) in variants {
        let mut args = flags.to_vec();
        args.push("prog.c");
        let Some(exe) = build("cc", &dir.path().join(name), &args) else {
            return;
        };
        let t = truth(&run(&exe, &[]));
        let elf = ElfFile::open(&exe).unwrap();
        for func in ["ft_alpha", "ft_beta", "main"] {
            assert_eq!(offset(&elf, func), t[func].0, "{name}: {func}");
            let (sym, off) = elf.offset_to_symbol(t[func].0).unwrap();
            assert_eq!((sym.name.as_str(), off), (func, 0), "{name}");
            assert_eq!(elf.offset_to_symbol(t[func].0 + 2).unwrap().1, 2);
        }
        let alpha = elf.resolve("ft_alpha", false).unwrap();
        assert_eq!(alpha.symbol.as_deref(), Some("ft_alpha"));
        // +OFFSET, in hex and decimal.
        assert_eq!(offset(&elf, "ft_alpha+0x4"), t["ft_alpha"].0 + 4);
        assert_eq!(offset(&elf, "ft_alpha+4"), t["ft_alpha"].0 + 4);
        // A raw address is an address in the file, as objdump shows it.
        let raw = elf.resolve(&format!("{:#x}", alpha.vaddr), false).unwrap();
        assert_eq!(raw.offset, t["ft_alpha"].0, "{name}");
        assert_eq!(raw.symbol.as_deref(), Some("ft_alpha"));
        let err = usage_error(&elf, "ft_alpha+0x100000");
        assert!(err.contains("past the end"), "{err}");
        if name == "stripped" {
            assert!(!elf.has_full_symbols());
            let err = usage_error(&elf, "ft_local");
            assert!(err.contains("stripped"), "{err}");
        } else {
            assert!(elf.has_full_symbols());
            assert_eq!(offset(&elf, "ft_local"), t["ft_local"].0, "{name}");
        }
        if name == "nopie" {
            // Non-PIE: addresses and offsets really differ (0x401136 vs
            // 0x1136), so the conversion is exercised.
            assert_ne!(alpha.vaddr, alpha.offset);
            assert_eq!(elf.header().file_type, 2);
            // A data address is refused, an address no segment loads too.
            let data = elf
                .segments()
                .iter()
                .find(|s| !s.executable && s.filesz > 0)
                .unwrap();
            let err = usage_error(&elf, &format!("{:#x}", data.vaddr));
            assert!(err.contains("not executable"), "{err}");
            let err = usage_error(&elf, "0x10");
            assert!(err.contains("no segment"), "{err}");
            assert_eq!(elf.resolve("0x10", true).unwrap().offset, 0x10);
        }
    }
}

/// Builds the fixture library: `-Ttext-segment` moves it off address 0 so
/// that vaddr and file offset differ in its code segment too.
fn build_lib(dir: &Path, name: &str, extra: &[&str]) -> Option<PathBuf> {
    let mut args = vec![
        "-shared",
        "-fPIC",
        "-O1",
        "-Wl,--version-script=lib.map",
        "-Wl,-Ttext-segment=0x200000",
        "lib.c",
    ];
    args.extend_from_slice(extra);
    build("cc", &dir.join(name), &args)
}

const LIB_SYMS: &[&str] = &[
    "ft_lib_func",
    "ft_ver",
    "ft_ver@V1",
    "ft_ver@V2",
    "ft_ifunc_fast",
    "ft_ifunc_slow",
    "ft_ifunc_resolver",
    "ft_ifunc",
];

#[test]
fn shared_library_versions_and_ifunc() {
    let dir = tempfile::tempdir().unwrap();
    let Some(loader) = build("cc", &dir.path().join("loader"), &["loader.c", "-ldl"]) else {
        return;
    };
    for (name, extra) in [("libft.so", &[][..]), ("libft-stripped.so", &["-s"][..])] {
        let lib = build_lib(dir.path(), name, extra).unwrap();
        let mut args = vec![lib.to_str().unwrap()];
        args.extend_from_slice(LIB_SYMS);
        let t = truth(&run(&loader, &args));
        let elf = ElfFile::open(&lib).unwrap();
        assert_eq!(elf.has_full_symbols(), name == "libft.so");

        let r = elf.resolve("ft_lib_func", false).unwrap();
        assert_eq!(r.offset, t["ft_lib_func"].0, "{name}");
        assert_ne!(r.vaddr, r.offset, "the test library is placed at 0x200000");

        // Versions: bare name = default (@@V2); explicit versions both ways.
        assert_eq!(offset(&elf, "ft_ver"), t["ft_ver"].0, "{name}");
        assert_eq!(t["ft_ver"].0, t["ft_ver@V2"].0);
        assert_ne!(t["ft_ver@V1"].0, t["ft_ver@V2"].0);
        assert_eq!(offset(&elf, "ft_ver@V1"), t["ft_ver@V1"].0, "{name}");
        assert_eq!(offset(&elf, "ft_ver@@V2"), t["ft_ver@V2"].0, "{name}");
        assert_eq!(offset(&elf, "ft_ver@V2"), t["ft_ver@V2"].0, "{name}");
        let err = usage_error(&elf, "ft_ver@V3");
        assert!(
            err.contains("ft_ver@@V2") && err.contains("ft_ver@V1"),
            "{err}"
        );
        let listed: Vec<String> = elf
            .functions(Some(&Glob::new("ft_ver*").unwrap()))
            .iter()
            .map(|s| s.display_name())
            .collect();
        assert!(listed.contains(&"ft_ver".to_string()), "{listed:?}");
        assert!(listed.contains(&"ft_ver@V1".to_string()), "{listed:?}");

        // IFUNC: refused with the implementations named; -F probes the
        // resolver, which is what the symbol's address really is.
        let sym = elf.symbols().find(|s| s.name == "ft_ifunc").unwrap();
        assert_eq!(sym.kind, SymbolKind::Ifunc);
        let err = usage_error(&elf, "ft_ifunc");
        assert!(err.contains("IFUNC"), "{err}");
        assert!(err.contains("ft_ifunc_fast, ft_ifunc_slow"), "{err}");
        assert!(!err.contains("resolves to"), "not loaded here yet: {err}");
        let forced = elf.resolve("ft_ifunc", true).unwrap();
        assert_eq!(forced.offset, t["ft_ifunc_resolver"].0);
        // The dynamic linker really binds ft_ifunc to ft_ifunc_fast.
        assert_eq!(t["ft_ifunc"].0, t["ft_ifunc_fast"].0);
        assert_eq!(offset(&elf, "ft_ifunc_fast"), t["ft_ifunc_fast"].0);

        // Once this process has the library loaded, the message says which
        // implementation the dynamic linker chose here.
        let c = CString::new(lib.to_str().unwrap()).unwrap();
        // SAFETY: loading our own test library, which has no constructors.
        let h = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW) };
        assert!(!h.is_null());
        let err = usage_error(&elf, "ft_ifunc");
        // SAFETY: the handle from dlopen above.
        unsafe { libc::dlclose(h) };
        assert!(err.contains("resolves to ft_ifunc_fast"), "{err}");
    }
}

#[test]
fn cxx_names_given_demangled() {
    let dir = tempfile::tempdir().unwrap();
    let Some(exe) = build("c++", &dir.path().join("cxx"), &["-O0", "cxx.cc"]) else {
        return;
    };
    let t = truth(&run(&exe, &[]));
    let elf = ElfFile::open(&exe).unwrap();
    assert_eq!(offset(&elf, "ns::Widget::make"), t["ns::Widget::make"].0);
    assert_eq!(
        offset(&elf, "ns::Widget::make(int)"),
        t["ns::Widget::make"].0
    );
    assert_eq!(offset(&elf, "ns::over(int)"), t["ns::over(int)"].0);
    assert_eq!(offset(&elf, "ns::over(double)"), t["ns::over(double)"].0);
    assert_eq!(offset(&elf, "ns::unique_fn"), t["ns::unique_fn"].0);
    assert_eq!(
        offset(&elf, "ns::unique_fn(int,char)"),
        t["ns::unique_fn"].0
    );
    assert_eq!(offset(&elf, "_ZN2ns9unique_fnEic"), t["ns::unique_fn"].0);
    let err = usage_error(&elf, "ns::over");
    assert!(
        err.contains("ns::over(int) at") && err.contains("ns::over(double) at"),
        "{err}"
    );
    let err = usage_error(&elf, "ns::unique_fm");
    assert!(err.contains("Did you mean: ns::unique_fn"), "{err}");
    let listed: Vec<String> = elf
        .functions(Some(&Glob::new("ns::*").unwrap()))
        .iter()
        .map(|s| s.display_name())
        .collect();
    assert_eq!(
        listed,
        [
            "ns::Widget::make(int)",
            "ns::over(double)",
            "ns::over(int)",
            "ns::unique_fn(int, char)"
        ]
    );
    // Symbolization shows the demangled name.
    let (sym, off) = elf.offset_to_symbol(t["ns::over(int)"].0 + 1).unwrap();
    assert_eq!((sym.display_name().as_str(), off), ("ns::over(int)", 1));
}

/// A Rust function of this test binary, looked up by its demangled path.
#[inline(never)]
fn rust_probe_target(x: u64) -> u64 {
    x.wrapping_mul(31).rotate_left(7) ^ 0x5a5a
}

/// The file offset of `addr` in this process, from `/proc/self/maps`.
fn own_file_offset(addr: u64) -> (maps::MapEntry, u64) {
    let m = maps::read_maps(Path::new("/proc"), None).unwrap();
    let e = m
        .into_iter()
        .find(|e| e.start <= addr && addr < e.end)
        .expect("address is mapped");
    let off = e.file_offset(addr);
    (e, off)
}

#[test]
fn rust_names_given_demangled() {
    assert_ne!(std::hint::black_box(rust_probe_target)(3), 0);
    let (_, truth) = own_file_offset(rust_probe_target as fn(u64) -> u64 as usize as u64);
    let elf = ElfFile::open(Path::new("/proc/self/exe")).unwrap();
    let started = Instant::now();
    let r = elf
        .resolve("ftrace_common::sym::tests::rust_probe_target", false)
        .unwrap();
    eprintln!(
        "demangled lookup among {} symbols: {:?}",
        elf.symbols().count(),
        started.elapsed()
    );
    assert_eq!(r.offset, truth);
    assert_eq!(
        r.symbol.as_deref(),
        Some("ftrace_common::sym::tests::rust_probe_target")
    );
    let listed = elf.functions(Some(&Glob::new("*::sym::tests::rust_probe_*").unwrap()));
    assert_eq!(listed.len(), 1);
    assert!(listed[0].name.starts_with("_ZN") || listed[0].name.starts_with("_R"));
}

/// The file offset at which this process's dynamic linker has `sym` of
/// the library mapped from `path`.
fn dl_truth(path: &str, sym: &str, version: Option<&str>) -> u64 {
    let p = CString::new(path).unwrap();
    let s = CString::new(sym).unwrap();
    // SAFETY: RTLD_NOLOAD does not load anything; the handle is closed.
    let addr = unsafe {
        let h = libc::dlopen(p.as_ptr(), libc::RTLD_LAZY | libc::RTLD_NOLOAD);
        assert!(!h.is_null(), "{path} is not loaded in this process");
        let a = match version {
            Some(v) => {
                let v = CString::new(v).unwrap();
                libc::dlvsym(h, s.as_ptr(), v.as_ptr())
            }
            None => libc::dlsym(h, s.as_ptr()),
        };
        libc::dlclose(h);
        a as u64
    };
    assert_ne!(addr, 0, "{sym}");
    own_file_offset(addr).1
}

/// This process's libc as mapped: (path, inode).
fn own_libc() -> (String, u64) {
    let m = maps::read_maps(Path::new("/proc"), None).unwrap();
    let e = m
        .iter()
        .find(|e| e.path.as_deref().is_some_and(|p| p.contains("/libc.so.6")))
        .expect("libc is mapped");
    (e.path.clone().unwrap(), e.inode)
}

#[test]
fn system_libc() {
    use std::os::unix::fs::MetadataExt;
    let (libc_path, ino) = own_libc();
    let started = Instant::now();
    let target = resolve_target("libc", None).unwrap();
    let elf = ElfFile::open(&target.path).unwrap();
    let malloc = elf.resolve("malloc", false).unwrap();
    eprintln!("libc:malloc resolved in {:?}", started.elapsed());
    assert_eq!(std::fs::metadata(&target.path).unwrap().ino(), ino);
    assert!(target.header.class64 == cfg!(target_pointer_width = "64"));
    assert_eq!(malloc.offset, dl_truth(&libc_path, "malloc", None));
    assert_eq!(offset(&elf, "sleep"), dl_truth(&libc_path, "sleep", None));
    // By soname too.
    assert_eq!(resolve_target("libc.so.6", None).unwrap().path, target.path);

    // strlen is an IFUNC: refused, and the implementation glibc picked for
    // this CPU is named or at least located.
    let err = usage_error(&elf, "strlen");
    assert!(err.contains("IFUNC"), "{err}");
    let chosen = dl_truth(&libc_path, "strlen", None);
    let names_it = err.contains("__strlen_");
    let locates_it = err.contains(&format!("file offset {chosen:#x}"));
    assert!(names_it || locates_it, "{err}");
    eprintln!("strlen: {err}");
    // Without debug symbols (a fresh machine without libc6-dbg), the chosen
    // implementation is still located for the user.
    let bare = ElfFile::open_with_debug_root(&target.path, None).unwrap();
    let err = usage_error(&bare, "strlen");
    eprintln!("strlen without debug symbols: {err}");
    if !bare.has_full_symbols() {
        assert!(err.contains(&format!("file offset {chosen:#x}")), "{err}");
        assert!(err.contains("stripped"), "{err}");
    }
    // memcpy has an old non-IFUNC version and a default IFUNC one.
    if elf
        .symbols()
        .any(|s| s.versioned_name() == "memcpy@GLIBC_2.2.5")
    {
        assert_eq!(
            offset(&elf, "memcpy@GLIBC_2.2.5"),
            dl_truth(&libc_path, "memcpy", Some("GLIBC_2.2.5"))
        );
        let err = usage_error(&elf, "memcpy");
        assert!(err.contains("IFUNC"), "{err}");
    }
    let err = usage_error(&elf, "mallocc");
    assert!(err.contains("Did you mean: malloc"), "{err}");
}

#[test]
fn system_bash_and_libssl() {
    match resolve_target("bash", None) {
        Ok(t) => {
            let elf = ElfFile::open(&t.path).unwrap();
            let r = elf.resolve("readline", false).unwrap();
            assert_eq!(r.symbol.as_deref(), Some("readline"));
            assert_eq!(elf.offset_to_symbol(r.offset).unwrap().0.name, "readline");
        }
        Err(e) => eprintln!("skipping bash: {e}"),
    }
    match resolve_target("libssl", None) {
        Ok(t) => {
            let name = t.path.file_name().unwrap().to_string_lossy().into_owned();
            assert!(name.starts_with("libssl.so."), "{name}");
            let elf = ElfFile::open(&t.path).unwrap();
            let w = elf.resolve("SSL_write", false).unwrap();
            let r = elf.resolve("SSL_read", false).unwrap();
            assert_ne!(w.offset, r.offset);
        }
        Err(e) => eprintln!("skipping: libssl is not installed here ({e})"),
    }
}

#[test]
fn bad_targets() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let e = resolve_target("libdefinitelynotthere", None).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Usage);
    assert!(
        e.to_string()
            .starts_with("no program or library named 'libdefinitelynotthere'"),
        "{e}"
    );
    let e = resolve_target("libcc", None).unwrap_err();
    assert!(e.to_string().contains("Did you mean: "), "{e}");

    let e = resolve_target(d.to_str().unwrap(), None).unwrap_err();
    assert!(e.to_string().contains("is a directory"), "{e}");
    let text = d.join("notes.txt");
    std::fs::write(&text, "hello\n").unwrap();
    let e = resolve_target(text.to_str().unwrap(), None).unwrap_err();
    assert!(e.to_string().contains("is not an ELF file"), "{e}");
    let script = d.join("script");
    std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
    let e = resolve_target(script.to_str().unwrap(), None).unwrap_err();
    assert!(
        e.to_string().contains("probe its interpreter (/bin/sh)"),
        "{e}"
    );
    let ld = d.join("libfake.so");
    std::fs::write(&ld, "/* GNU ld script */\nGROUP ( libfake.so.1 )\n").unwrap();
    let e = resolve_target(ld.to_str().unwrap(), None).unwrap_err();
    assert!(e.to_string().contains("linker script"), "{e}");
    let e = resolve_target(d.join("missing").to_str().unwrap(), None).unwrap_err();
    assert!(e.to_string().contains("does not exist"), "{e}");
    let e = resolve_target("bad name", None).unwrap_err();
    assert!(e.to_string().contains("spaces"), "{e}");
    let arm = d.join("arm.bin");
    std::fs::write(&arm, fake_elf(true, 183, 3)).unwrap();
    let e = resolve_target(arm.to_str().unwrap(), None).unwrap_err();
    if cfg!(target_arch = "x86_64") {
        assert!(e.to_string().contains("built for AArch64"), "{e}");
    }
    let obj = d.join("x.o");
    std::fs::write(&obj, fake_elf(true, super::elf::NATIVE_MACHINE, 1)).unwrap();
    let e = resolve_target(obj.to_str().unwrap(), None).unwrap_err();
    assert!(e.to_string().contains("object file"), "{e}");
    let e = ElfFile::open(&text).unwrap_err();
    assert!(e.to_string().contains("is not an ELF file"), "{e}");
    let e = ElfFile::open(d).unwrap_err();
    assert!(e.to_string().contains("is a directory"), "{e}");
}

/// A 64-byte ELF header of the given class, machine and type, nothing else.
fn fake_elf(class64: bool, machine: u16, file_type: u16) -> Vec<u8> {
    let mut h = vec![0u8; 64];
    h[..4].copy_from_slice(b"\x7fELF");
    h[4] = if class64 { 2 } else { 1 };
    h[5] = 1;
    h[6] = 1;
    h[16..18].copy_from_slice(&file_type.to_le_bytes());
    h[18..20].copy_from_slice(&machine.to_le_bytes());
    h
}

/// A root directory with an ld.so.cache and library directories, to test
/// name matching and the choice among 64-bit and lib32 builds.
#[test]
fn library_lookup_in_a_tree() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let ma = format!("usr/lib/{}-linux-gnu", std::env::consts::ARCH);
    for d in [ma.as_str(), "usr/lib32", "usr/local/lib", "etc", "bin"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    let Some(real) = build_lib(&root.join(&ma), "libfoo.so.1", &[]) else {
        return;
    };
    std::fs::write(root.join("usr/lib32/libfoo.so.1"), fake_elf(false, 3, 3)).unwrap();
    std::fs::copy(&real, root.join(&ma).join("libbar.so.1")).unwrap();
    std::fs::copy(&real, root.join(&ma).join("libbar.so.2")).unwrap();
    std::fs::write(root.join(&ma).join("libfoo.so"), "/* GNU ld script */\n").unwrap();
    std::fs::write(
        root.join("usr/local/lib/libarm.so.1"),
        fake_elf(true, 183, 3),
    )
    .unwrap();
    let in64 = format!("/{ma}/libfoo.so.1");
    let lib32 = "/usr/lib32/libfoo.so.1";
    let resolver = Resolver::with_root(root, "/proc", None);

    // No cache: the directories are scanned; lib32 is skipped for 64-bit.
    let t = resolver.resolve("libfoo", None).unwrap();
    assert_eq!(t.display_path, PathBuf::from(&in64));
    assert_eq!(t.path, root.join(in64.trim_start_matches('/')));
    let e = resolver.resolve("libbar", None).unwrap_err();
    assert!(
        e.to_string().contains("libbar.so.1") && e.to_string().contains("libbar.so.2"),
        "{e}"
    );
    // Each version, for a tool that traces all.
    let all: Vec<PathBuf> = resolver
        .libraries("libbar")
        .into_iter()
        .map(|t| t.display_path)
        .collect();
    assert_eq!(
        all,
        [
            PathBuf::from(format!("/{ma}/libbar.so.1")),
            PathBuf::from(format!("/{ma}/libbar.so.2"))
        ]
    );
    assert_eq!(resolver.libraries("libfoo").len(), 1);
    assert!(resolver.libraries("libnone").is_empty());
    assert_eq!(
        resolver.resolve("libbar.so.2", None).unwrap().display_path,
        PathBuf::from(format!("/{ma}/libbar.so.2"))
    );
    let e = resolver.resolve("libfo", None).unwrap_err();
    assert!(e.to_string().contains("Did you mean: libfoo"), "{e}");
    assert!(e.to_string().contains("has no /etc/ld.so.cache"), "{e}");
    if cfg!(target_arch = "x86_64") {
        let e = resolver.resolve("libarm", None).unwrap_err();
        assert!(e.to_string().contains("built for AArch64"), "{e}");
    }

    // With a cache listing lib32 first, the native one still wins; the
    // cache is what finds a library outside the usual directories.
    std::fs::create_dir_all(root.join("opt/x")).unwrap();
    std::fs::copy(&real, root.join("opt/x/libopt.so.7")).unwrap();
    let cache = ldcache::build::new_format(&[
        ("libfoo.so.1", lib32, 0x3),
        ("libfoo.so.1", &in64, 0x303),
        ("libopt.so.7", "/opt/x/libopt.so.7", 0x303),
    ]);
    std::fs::write(root.join("etc/ld.so.cache"), &cache).unwrap();
    assert_eq!(
        resolver.resolve("libfoo", None).unwrap().display_path,
        PathBuf::from(&in64)
    );
    assert_eq!(
        resolver.resolve("libopt", None).unwrap().display_path,
        PathBuf::from("/opt/x/libopt.so.7")
    );
    // A program on PATH comes before a library.
    std::fs::copy(&real, root.join("bin/libopt")).unwrap();
    let with_path = Resolver::with_root(root, "/proc", Some("/bin".into()));
    assert_eq!(
        with_path.resolve("libopt", None).unwrap().display_path,
        PathBuf::from("/bin/libopt")
    );
    // A damaged cache is ignored, the directories still searched.
    std::fs::write(root.join("etc/ld.so.cache"), &cache[..30]).unwrap();
    assert_eq!(
        resolver.resolve("libfoo", None).unwrap().display_path,
        PathBuf::from(&in64)
    );
}

/// Starts the fixture program in waiting mode; returns it and its truth.
fn start_waiting(
    exe: &Path,
    pre: Option<Box<dyn FnMut() -> std::io::Result<()> + Send + Sync>>,
) -> std::io::Result<(std::process::Child, Truth)> {
    let mut cmd = Command::new(exe);
    cmd.arg("wait").stdin(Stdio::piped()).stdout(Stdio::piped());
    if let Some(f) = pre {
        // SAFETY: the closure only makes system calls (see its callers).
        unsafe { cmd.pre_exec(f) };
    }
    let mut child = cmd.spawn()?;
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut text = String::new();
    for _ in 0..4 {
        out.read_line(&mut text).unwrap();
    }
    Ok((child, truth(&text)))
}

fn stop(mut child: std::process::Child) {
    drop(child.stdin.take());
    let _ = child.wait();
}

#[test]
fn a_process_maps_and_stacks() {
    let dir = tempfile::tempdir().unwrap();
    let Some(exe) = build("cc", &dir.path().join("ftwait"), &["-O0", "prog.c"]) else {
        return;
    };
    let (child, t) = start_waiting(&exe, None).unwrap();
    let pid = child.id();
    let check = || {
        let target = resolve_target("libc", Some(pid)).unwrap();
        assert_eq!(target.mapped, Some(true));
        assert!(
            !target.path.starts_with("/proc"),
            "same namespace: plain path {target:?}"
        );
        let target = resolve_target("ftwait", Some(pid)).unwrap();
        assert_eq!(target.display_path, exe);
        let elf = ElfFile::open(&target.path).unwrap();
        assert_eq!(offset(&elf, "ft_beta"), t["ft_beta"].0);
        let e = resolve_target("libnotmapped", Some(pid)).unwrap_err();
        assert!(
            e.to_string()
                .contains(&format!("process {pid} does not map")),
            "{e}"
        );

        let mut syms = UserSymbols::new();
        let (_, beta_addr) = t["ft_beta"];
        assert_eq!(syms.symbolize(pid, beta_addr + 3), "ft_beta+0x3");
        assert_eq!(syms.symbolize(pid, t["ft_local"].1), "ft_local+0x0");
        assert_eq!(syms.symbolize(pid, 8), "[unknown]");
        let e = resolve_target("libc", Some(999_999_999)).unwrap_err();
        assert!(
            e.to_string().contains("no process with PID 999999999"),
            "{e}"
        );
    };
    let res = std::panic::catch_unwind(check);
    stop(child);
    res.unwrap();
}

/// A process in its own mount namespace sees, at a path, another file than
/// we do (as in a container). `-p PID` must probe the process's file.
#[test]
fn a_process_in_another_mount_namespace() {
    let dir = tempfile::tempdir().unwrap();
    let hidden = dir.path().join("hidden");
    let visible = dir.path().join("visible");
    std::fs::create_dir_all(&hidden).unwrap();
    std::fs::create_dir_all(&visible).unwrap();
    let Some(_) = build("cc", &hidden.join("ftns"), &["-O0", "prog.c"]) else {
        return;
    };
    // Our view of visible/ftns: a different ELF without ft_alpha.
    build_lib(&visible, "ftns", &[]).unwrap();
    let src = CString::new(hidden.to_str().unwrap()).unwrap();
    let dst = CString::new(visible.to_str().unwrap()).unwrap();
    let pre = move || {
        // SAFETY: plain system calls on pointers to C strings that live in
        // this closure; nothing allocates between fork and exec.
        unsafe {
            if libc::unshare(libc::CLONE_NEWNS) != 0
                || libc::mount(
                    std::ptr::null(),
                    c"/".as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                ) != 0
                || libc::mount(
                    src.as_ptr(),
                    dst.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND,
                    std::ptr::null(),
                ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    };
    let exe = visible.join("ftns");
    let (child, t) = match start_waiting(&exe, Some(Box::new(pre))) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("skipping: cannot make a mount namespace here ({e}); needs root");
            return;
        }
    };
    let pid = child.id();
    let check = || {
        for spec in [exe.to_str().unwrap(), "ftns"] {
            let target = resolve_target(spec, Some(pid)).unwrap();
            assert_eq!(target.display_path, exe);
            assert_eq!(target.mapped, Some(true));
            assert!(
                target.path.starts_with(format!("/proc/{pid}/root/")),
                "must go through the process's root: {target:?}"
            );
            let elf = ElfFile::open(&target.path).unwrap();
            assert_eq!(offset(&elf, "ft_alpha"), t["ft_alpha"].0);
        }
        // Without the PID we see our own file, which has no ft_alpha.
        let ours = resolve_target(exe.to_str().unwrap(), None).unwrap();
        assert!(ElfFile::open(&ours.path)
            .unwrap()
            .resolve("ft_alpha", false)
            .is_err());
        let mut syms = UserSymbols::new();
        assert_eq!(syms.symbolize(pid, t["ft_alpha"].1 + 1), "ft_alpha+0x1");
    };
    let res = std::panic::catch_unwind(check);
    stop(child);
    res.unwrap();
}

/// Distributions strip after linking, keeping the build ID; `cc -s`
/// changes the bytes and so the computed ID, hence a fixed one.
const BUILD_ID: &str = "-Wl,--build-id=0x5eed0f7ace5eed0f7ace5eed0f7ace5eed0f7ace";

#[test]
fn debug_file_by_build_id() {
    // A stripped copy finds the full symbols in a .build-id tree.
    let dir = tempfile::tempdir().unwrap();
    let Some(full) = build("cc", &dir.path().join("full"), &["-O0", BUILD_ID, "prog.c"]) else {
        return;
    };
    let stripped = build(
        "cc",
        &dir.path().join("stripped"),
        &["-O0", BUILD_ID, "-s", "prog.c"],
    )
    .unwrap();
    let a = ElfFile::open_with_debug_root(&full, None).unwrap();
    let b = ElfFile::open_with_debug_root(&stripped, None).unwrap();
    assert_eq!(a.build_id(), b.build_id());
    let id: String = a
        .build_id()
        .unwrap()
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect();
    let root = dir.path().join(".build-id");
    std::fs::create_dir_all(root.join(&id[..2])).unwrap();
    std::fs::copy(
        &full,
        root.join(&id[..2]).join(format!("{}.debug", &id[2..])),
    )
    .unwrap();
    assert!(b.resolve("ft_local", false).is_err());
    let c = ElfFile::open_with_debug_root(&stripped, Some(&root)).unwrap();
    assert!(c.debug_file().is_some() && c.has_full_symbols());
    assert_eq!(offset(&c, "ft_local"), offset(&a, "ft_local"));
}

#[test]
fn timing_of_resolve_libc_malloc() {
    // Not a benchmark (debug build, shared cores): a guard against a
    // resolution path that reads whole files or scans directories.
    let started = Instant::now();
    for _ in 0..10 {
        let t = resolve_target("libc", None).unwrap();
        let elf = ElfFile::open(&t.path).unwrap();
        elf.resolve("malloc", false).unwrap();
    }
    let each = started.elapsed() / 10;
    eprintln!("resolve_target(libc) + open + resolve(malloc): {each:?} each");
    // An emulated guest sharing its cores with two others took 211 ms.
    let bound = if std::env::var_os("FTRACE_TOOLS_IN_VM").is_some() {
        1000
    } else {
        200
    };
    assert!(each.as_millis() < bound, "{each:?}");
}

mod robustness {
    use super::*;
    use proptest::prelude::*;

    /// Exercises everything a parsed file offers.
    fn poke(elf: &ElfFile) {
        let _ = elf.functions(None);
        for spec in ["main", "ft_alpha+0x4", "0x1000", "ns::f", "x@@V"] {
            let _ = elf.resolve(spec, false);
            let _ = elf.resolve(spec, true);
        }
        for off in [0u64, 0x40, 0x1000, 0x1139, u64::MAX] {
            let _ = elf.offset_to_symbol(off);
            let _ = elf.vaddr_to_offset(off);
        }
    }

    fn small_real_file() -> Vec<u8> {
        std::fs::read("/usr/bin/true")
            .or_else(|_| std::fs::read("/bin/true"))
            .unwrap_or_default()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn garbage(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            if let Ok(elf) = ElfFile::parse(bytes) { poke(&elf); }
        }

        #[test]
        fn garbage_after_an_elf_header(class64 in any::<bool>(), tail in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let mut b = fake_elf(class64, 62, 3);
            b.truncate(16);
            b.extend_from_slice(&tail);
            if let Ok(elf) = ElfFile::parse(b) { poke(&elf); }
        }

        #[test]
        fn truncated_real_file(cut in 0usize..200_000) {
            let real = small_real_file();
            prop_assume!(!real.is_empty());
            let b = real[..cut.min(real.len())].to_vec();
            if let Ok(elf) = ElfFile::parse(b) { poke(&elf); }
        }

        #[test]
        fn bit_flipped_real_file(flips in proptest::collection::vec((any::<usize>(), 0u8..8), 1..16)) {
            let mut b = small_real_file();
            prop_assume!(!b.is_empty());
            // Flip bits in the headers and tables more often than in code.
            for (at, bit) in flips {
                let i = if at % 2 == 0 { at % b.len().min(4096) } else { at % b.len() };
                b[i] ^= 1 << bit;
            }
            if let Ok(elf) = ElfFile::parse(b) { poke(&elf); }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// The same through the file reader (pread), on truncated files.
        #[test]
        fn truncated_files_on_disk(cut in 0usize..2_000_000) {
            let (libc_path, _) = own_libc();
            let real = std::fs::read(&libc_path).unwrap();
            let mut f = tempfile::NamedTempFile::new().unwrap();
            f.write_all(&real[..cut.min(real.len())]).unwrap();
            if let Ok(elf) = ElfFile::open(f.path()) { poke(&elf); }
        }
    }
}
