#!/usr/bin/env python3
"""Generates the system call tables x86_64.rs and aarch64.rs from a kernel
source tree.

    common/src/syscalls/gen.py KERNEL_SRC [OUT_DIR]

KERNEL_SRC is an unpacked kernel source tree, e.g. Debian's linux-source-6.12:
    apt-get download linux-source-6.12 && dpkg -x linux-source-6.12_*.deb x
    tar -xJf x/usr/src/linux-source-6.12.tar.xz
(only Makefile, arch/x86/entry/syscalls/syscall_64.tbl,
include/uapi/asm-generic/unistd.h and, where the kernel has it,
scripts/syscall.tbl are read). OUT_DIR defaults to this script's directory.

x86_64: syscall_64.tbl, ABIs "common" and "64" (not x32).
aarch64: the generic table include/uapi/asm-generic/unistd.h as arm64 uses
it (64-bit, with arm64's __ARCH_WANT_* set), expanded by the C preprocessor
(cpp). Where the tree also has scripts/syscall.tbl (Linux 6.11 and later:
arm64 builds its table from it), the result is checked against that table
with arm64's ABIs and the script fails on any difference.
"""

import os
import re
import subprocess
import sys
import tempfile

ARM64_WANTS = [
    "__ARCH_WANT_RENAMEAT",
    "__ARCH_WANT_NEW_STAT",
    "__ARCH_WANT_SET_GET_RLIMIT",
    "__ARCH_WANT_TIME32_SYSCALLS",
    "__ARCH_WANT_SYS_CLONE3",
    "__ARCH_WANT_MEMFD_SECRET",
]
# arm64's ABIs in scripts/syscall.tbl (arch/arm64/kernel/Makefile.syscalls,
# plus the defaults common and 64).
ARM64_TBL_ABIS = {"common", "64", "renameat", "rlimit", "memfd_secret"}


def die(msg):
    sys.stderr.write("gen.py: %s\n" % msg)
    sys.exit(1)


def kernel_version(src):
    v = {}
    with open(os.path.join(src, "Makefile")) as f:
        for line in f:
            m = re.match(r"^(VERSION|PATCHLEVEL|SUBLEVEL)\s*=\s*(\d+)", line)
            if m:
                v[m.group(1)] = m.group(2)
            if len(v) == 3:
                break
    if len(v) != 3:
        die("no kernel version in %s/Makefile" % src)
    return "%s.%s.%s" % (v["VERSION"], v["PATCHLEVEL"], v["SUBLEVEL"])


def parse_tbl(path, abis):
    """(nr, name, entry) of a syscall .tbl file for the given ABIs."""
    out = []
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            if len(parts) < 3 or parts[1] not in abis:
                continue
            entry = parts[3] if len(parts) > 3 else ""
            out.append((int(parts[0]), parts[2], entry))
    return sorted(out)


def x86_64(src):
    return parse_tbl(os.path.join(src, "arch/x86/entry/syscalls/syscall_64.tbl"), {"common", "64"})


def aarch64(src):
    header = os.path.join(src, "include/uapi/asm-generic/unistd.h")
    text = open(header).read()
    names = sorted(set(re.findall(r"#define\s+__NR_(\w+)", text)))
    with tempfile.TemporaryDirectory() as tmp:
        c = os.path.join(tmp, "t.c")
        with open(c, "w") as f:
            f.write("#define __BITS_PER_LONG 64\n")
            for w in ARM64_WANTS:
                f.write("#define %s\n" % w)
            # The header maps its other macros (__SC_3264, __SC_COMP, ...)
            # onto __SYSCALL, choosing the 64-bit native entry.
            f.write("#define __SYSCALL(nr, entry) @@SC nr entry\n")
            f.write('#include "%s"\n' % header)
            for n in names:
                f.write("@@NR %s __NR_%s\n" % (n, n))
        # The header includes <asm/bitsperlong.h>: __BITS_PER_LONG is set above.
        os.makedirs(os.path.join(tmp, "asm"))
        open(os.path.join(tmp, "asm/bitsperlong.h"), "w").close()
        cpp = subprocess.run(["cpp", "-P", "-undef", "-nostdinc", "-I", tmp, c],
                             capture_output=True, text=True)
        if cpp.returncode != 0:
            die("cpp failed:\n" + cpp.stderr)

    def number(expr):
        expr = expr.strip()
        if not re.fullmatch(r"[0-9+() ]+", expr):
            return None
        return eval(expr)  # digits, + and parentheses only

    entries = {}
    nr_of = {}
    for line in cpp.stdout.splitlines():
        line = line.strip()
        if line.startswith("@@SC "):
            m = re.fullmatch(r"@@SC (.+) (\w+)", line)
            if not m:
                die("cannot read %r" % line)
            nr = number(m.group(1))
            if nr is None:
                die("cannot evaluate %r" % line)
            entries[nr] = m.group(2)
        elif line.startswith("@@NR "):
            _, name, expr = line.split(" ", 2)
            nr = number(expr)
            if nr is not None and name not in ("syscalls", "arch_specific_syscall"):
                nr_of[name] = nr
    out = []
    by_nr = {}
    for name, nr in nr_of.items():
        if nr in by_nr:
            die("two names for %d: %s and %s" % (nr, by_nr[nr], name))
        by_nr[nr] = name
    for nr, name in sorted(by_nr.items()):
        if nr not in entries:
            die("no entry point for %s (%d)" % (name, nr))
        out.append((nr, name, entries[nr]))
    for nr in entries:
        if nr not in by_nr:
            die("no name for syscall %d (%s)" % (nr, entries[nr]))
    tbl = os.path.join(src, "scripts/syscall.tbl")
    if os.path.exists(tbl):
        other = parse_tbl(tbl, ARM64_TBL_ABIS)
        if other != out:
            a, b = set(out), set(other)
            die("unistd.h and scripts/syscall.tbl disagree:\n only in unistd.h: %s\n only in syscall.tbl: %s"
                % (sorted(a - b), sorted(b - a)))
    return out


def write(path, arch, version, source, rows):
    with open(path, "w") as f:
        f.write("//! %s system call numbers, names and entry points.\n" % arch)
        f.write("//!\n")
        f.write("//! Generated by `gen.py` from Linux %s (Debian's linux-source package),\n" % version)
        f.write("//! %s.\n//! Do not edit: run gen.py again.\n\n" % source)
        f.write("/// The kernel version the table was generated from.\n")
        f.write('pub const KERNEL: &str = "%s";\n\n' % version)
        f.write("/// `(number, name, entry point)`, ascending by number. The entry point is\n")
        f.write("/// the kernel function (`sys_newfstat` for `fstat`); empty where the\n")
        f.write("/// number is reserved but not implemented.\n")
        f.write("pub static TABLE: &[(u32, &str, &str)] = &[\n")
        for nr, name, entry in rows:
            f.write('    (%d, "%s", "%s"),\n' % (nr, name, entry))
        f.write("];\n")


def main():
    if len(sys.argv) not in (2, 3):
        die("usage: gen.py KERNEL_SRC [OUT_DIR]")
    src = sys.argv[1]
    out = sys.argv[2] if len(sys.argv) == 3 else os.path.dirname(os.path.abspath(__file__))
    version = kernel_version(src)
    write(os.path.join(out, "x86_64.rs"), "x86_64", version,
          "arch/x86/entry/syscalls/syscall_64.tbl (ABIs common and 64)", x86_64(src))
    write(os.path.join(out, "aarch64.rs"), "aarch64", version,
          "include/uapi/asm-generic/unistd.h as arm64 uses it (64-bit, with arm64's\n"
          "//! __ARCH_WANT_* macros), checked against scripts/syscall.tbl where present", aarch64(src))


if __name__ == "__main__":
    main()
