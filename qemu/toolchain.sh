#!/bin/bash
# Build the pinned build environment: a Debian trixie chroot holding clang/lld 19,
# rustc + rust-src, bindgen, QEMU and linux-source-7.3 (trixie-backports).
# Cached in $TETHER_CACHE/chroot-<hash of this file>; rebuilt when absent.
. "$(dirname "$0")/lib.sh"

PKGS="$(grep -v -e '^#' -e '^backports:' "$TETHER_ROOT/qemu/toolchain.pkgs" | tr '\n' ' ')"
BPO_PKGS="$(sed -n 's/^backports://p' "$TETHER_ROOT/qemu/toolchain.pkgs")"

[ -e "$CHROOT/.done" ] && exit 0
host_pkgs debootstrap
mkdir -p "$CACHE"
# A debootstrap that was killed may leave its /proc and /sys mounted in the tree.
grep -o " $CHROOT.tmp/[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l || true
rm -rf "$CHROOT.tmp"
log "debootstrap trixie -> $CHROOT (about 1 min)"
debootstrap --variant=minbase trixie "$CHROOT.tmp" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 ||
	die "debootstrap failed, see $CACHE/debootstrap.log"
echo "deb $MIRROR trixie-backports main" >"$CHROOT.tmp/etc/apt/sources.list.d/backports.list"
mv "$CHROOT.tmp" "$CHROOT"
log "installing toolchain packages (about 1-2 min)"
touch "$CHROOT/.done"   # in_chroot needs it; removed again on failure
trap 'rm -f "$CHROOT/.done"' ERR
in_chroot sh -c "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $PKGS &&
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends -t trixie-backports $BPO_PKGS &&
	apt-get clean" >"$CACHE/toolchain.log" 2>&1 || { rm -f "$CHROOT/.done"; die "package install failed, see $CACHE/toolchain.log"; }
log "toolchain ready: $CHROOT"
