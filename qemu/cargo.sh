#!/bin/bash
# cargo in the toolchain chroot (Debian trixie's cargo and rustc 1.85; the host needs no
# Rust): qemu/cargo.sh DIR CARGO-ARGS...   runs `cargo CARGO-ARGS...` in DIR (relative to
# the tree, e.g. rust or tests/xcheck). Its registry is $CACHE/cargo-home.
. "$(dirname "$0")/lib.sh"
[ $# -ge 1 ] || die "usage: $0 DIR CARGO-ARGS..."
[ -d "$TETHER_ROOT/$1" ] || die "$1: no such directory in $TETHER_ROOT"
chroot_cargo "$@"
