#!/bin/bash
# Build tether's modules against the kernel tree KDIR (DKMS's MAKE, also usable by hand):
#   packaging/dkms-make.sh KDIR [make targets...]
# A Rust kernel is built with clang; the modules must use the same LLVM: LLVM=-N when the
# kernel's clang N is installed as clang-N (Debian), else LLVM=1. The kernel's rustc must
# be the one on PATH (Kbuild checks it).
set -euo pipefail
KDIR=${1:?usage: $0 KDIR [make targets...]}
shift
SRC="$(cd "$(dirname "$0")/.." && pwd)"
cfg="$KDIR/.config"
[ -r "$cfg" ] || { echo "dkms-make: $cfg missing: not a configured kernel tree" >&2; exit 1; }
grep -qx 'CONFIG_RUST=y' "$cfg" || { echo "dkms-make: the kernel in $KDIR has no Rust support (CONFIG_RUST)" >&2; exit 1; }
llvm=
if grep -qx 'CONFIG_CC_IS_CLANG=y' "$cfg"; then
	ver=$(sed -n 's/^CONFIG_CLANG_VERSION=//p' "$cfg")
	major=$((ver / 10000))
	if command -v "clang-$major" >/dev/null; then llvm=-$major
	elif command -v clang >/dev/null; then llvm=1
	else echo "dkms-make: the kernel was built with clang $major; install clang-$major (and lld, llvm)" >&2; exit 1; fi
fi
# dkms adds LLVM=1 for a clang-built kernel: our choice replaces it (Debian has clang-N).
args=()
for a in "$@"; do case $a in LLVM=* | CC=* | LD=*) ;; *) args+=("$a") ;; esac; done
exec make -C "$KDIR" M="$SRC" ${llvm:+LLVM=$llvm} "${args[@]}"
