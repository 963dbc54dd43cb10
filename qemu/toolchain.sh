#!/bin/bash
# Build the pinned build environment: a Debian trixie chroot holding clang/lld 19,
# rustc + rust-src, bindgen, QEMU and linux-source-7.3 (trixie-backports).
# Cached in $TETHER_CACHE/chroot-<hash of toolchain.pkgs>; rebuilt when absent. Then the
# layer of qemu/toolchain-extra.pkgs (cargo, ...), stamped by that file's hash inside the
# chroot ($CHROOT/.extra-<hash>): a change there installs packages into the existing chroot
# and leaves the chroot's and the kernel's keys alone.
. "$(dirname "$0")/lib.sh"

pkgs() { grep -v -e '^#' -e '^backports:' "$1" | tr '\n' ' '; }
PKGS="$(pkgs "$TETHER_ROOT/qemu/toolchain.pkgs")"
BPO_PKGS="$(sed -n 's/^backports://p' "$TETHER_ROOT/qemu/toolchain.pkgs")"
EXTRA_PKGS="$(pkgs "$TETHER_ROOT/qemu/toolchain-extra.pkgs")"

# extra_layer : install toolchain-extra.pkgs into the chroot once per version of that list.
extra_layer() {
	[ -e "$EXTRA_STAMP" ] && return 0
	mkdir -p "$CACHE"
	exec 9>"$CHROOT.extra.lock"
	flock 9
	[ -e "$EXTRA_STAMP" ] && return 0
	log "installing the extra toolchain layer: $EXTRA_PKGS"
	with_progress toolchain-extra "$CACHE/toolchain-extra.log" stages in_chroot sh -c \
		"apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $EXTRA_PKGS &&
		apt-get clean" || die "extra package install failed, see $CACHE/toolchain-extra.log"
	rm -f "$CHROOT"/.extra-*
	touch "$EXTRA_STAMP"
}

if [ -e "$CHROOT/.done" ]; then
	extra_layer
	exit 0
fi
host_pkgs debootstrap
mkdir -p "$CACHE"
# A debootstrap that was killed may leave its /proc and /sys mounted in the tree.
grep -o " $CHROOT.tmp/[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l || true
rm -rf "$CHROOT.tmp"
log "debootstrap trixie -> $CHROOT (about 1 min)"
with_progress debootstrap "$CACHE/debootstrap.log" stages \
	debootstrap --variant=minbase trixie "$CHROOT.tmp" "$MIRROR" ||
	die "debootstrap failed, see $CACHE/debootstrap.log"
echo "deb $MIRROR trixie-backports main" >"$CHROOT.tmp/etc/apt/sources.list.d/backports.list"
mv "$CHROOT.tmp" "$CHROOT"
log "installing toolchain packages (about 1-2 min)"
touch "$CHROOT/.done"   # in_chroot needs it; removed again on failure
trap 'rm -f "$CHROOT/.done"' ERR
with_progress toolchain "$CACHE/toolchain.log" stages in_chroot sh -c \
	"apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $PKGS &&
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends -t trixie-backports $BPO_PKGS &&
	apt-get clean" || { rm -f "$CHROOT/.done"; die "package install failed, see $CACHE/toolchain.log"; }
trap - ERR
extra_layer
log "toolchain ready: $CHROOT"
