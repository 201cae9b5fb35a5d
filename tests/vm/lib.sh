# Shared by tests/vm/prepare, run-in-guest and test-guests. Sourced, not run.
# shellcheck shell=bash

VM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${FTRACE_TOOLS_VM_CACHE:-/var/cache/ftrace-tools-vm}
KERNEL_TAGS=(6.1 bpo prof 5.10)
# What prepare and test-guests (and so CI) take when given no kernel, in the
# order test-guests starts them (the longest runs first; it boots up to three
# at once).
DEFAULT_TAGS=(6.1 bpo 5.10 prof)

# The guest kernels' ready-to-boot files live in $CACHE/kernels/<tag>/:
#   vmlinux   the uncompressed ELF kernel, booted through its PVH entry point
#   initrd    busybox + the modules we need + stage 1 of the guest init
#   release   `uname -r` of that kernel
#   package   where it came from (Debian package and version, or source + config hash)
#   config    the kernel's .config
kernel_dir() { echo "$CACHE/kernels/$1"; }

vm_log() { echo "[vm] $*" >&2; }
vm_die() { echo "[vm] error: $*" >&2; exit 1; }

valid_tag() {
    local t
    for t in "${KERNEL_TAGS[@]}"; do [ "$t" = "$1" ] && return 0; done
    return 1
}
