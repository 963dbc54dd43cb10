# Common settings for tether's build and VM scripts. Sourced, not run.
# shellcheck shell=bash
set -euo pipefail

TETHER_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${TETHER_CACHE:-/var/cache/tether}"
MIRROR="${TETHER_MIRROR:-http://deb.debian.org/debian}"
JOBS="${JOBS:-$(nproc)}"

log() { printf '[tether %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

# key FILE... : short content hash of the given files (cache key of an artifact).
key() { cat "$@" | sha256sum | cut -c1-12; }

# Ensure host packages are present (Debian bookworm host, as root).
host_pkgs() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	log "installing host packages: ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null ||
		{ apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }
}

# Toolchain chroot (Debian trixie): key is its package list.
CHROOT_KEY="$(key "$TETHER_ROOT/qemu/toolchain.pkgs")"
CHROOT="$CACHE/chroot-$CHROOT_KEY"

# in_chroot CMD... : run CMD inside the toolchain chroot, with /proc /sys /dev
# mounted in a private mount namespace (nothing to clean up afterwards).
in_chroot() {
	[ -e "$CHROOT/.done" ] || die "toolchain chroot missing: run qemu/toolchain.sh"
	unshare --mount --propagation private -- /bin/sh -c '
		c=$1; shift
		mount -t proc proc "$c/proc"
		mount --rbind /sys "$c/sys"
		mount --rbind /dev "$c/dev"
		mkdir -p "$c/work" "$c/cache"
		mount --bind "$0" "$c/work"
		mount --bind "$TETHER_CACHE_DIR" "$c/cache"
		exec chroot "$c" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
			LANG=C.UTF-8 TERM=dumb "$@"' "$TETHER_ROOT" "$CHROOT" "$@"
}
export TETHER_CACHE_DIR="$CACHE"

# Kernel tree and build (inside the chroot: /cache/...). Key: config fragments + kernel.sh.
KVARIANT="${KVARIANT:-debug}"
KERNEL_KEY="$(key "$TETHER_ROOT/qemu/kernel.sh" "$TETHER_ROOT/qemu/kernel.config" \
	"$TETHER_ROOT/qemu/kernel-$KVARIANT.config")-$CHROOT_KEY"
KBUILD_DIR="kernel-$KVARIANT-$KERNEL_KEY"          # under $CACHE
KDIR_CHROOT="/cache/$KBUILD_DIR/build"               # as seen in the chroot
KMAKE_VARS=(LLVM=-19)

# Guest root image: key is image.sh.
IMAGE_KEY="$(key "$TETHER_ROOT/qemu/image.sh")"
IMAGE="$CACHE/rootfs-$IMAGE_KEY.img"
