#!/bin/bash
# Build both modules out of tree with the kernel's own Kbuild, inside the toolchain chroot:
#   qemu/modules.sh [make targets...]   e.g. `clean`; CLIPPY=1 for a clippy build
#   qemu/modules.sh rustfmt | rustfmtcheck   format / check the modules' Rust sources
. "$(dirname "$0")/lib.sh"

build_kernel   # qemu/kernel.sh, with progress
SOURCES="$(cd "$TETHER_ROOT" && find client_proxy server_comm rust/kernel -name '*.rs' | sort | tr '\n' ' ')"
case "${1:-}" in
rustfmt | rustfmtcheck)
	check=; [ "$1" = rustfmtcheck ] && check=--check
	# shellcheck disable=SC2086
	in_chroot sh -c "cd /work && rustfmt --edition 2021 --config-path /cache/linux-src-7.3/.rustfmt.toml $check $SOURCES"
	exit
	;;
esac
in_chroot make -C "$KDIR_CHROOT" M=/work "${KMAKE_VARS[@]}" ${CLIPPY:+CLIPPY=1} "$@"
