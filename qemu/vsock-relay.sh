#!/bin/bash
# Guest-to-guest vsock relay: one vhost-device-vsock process serving every given CID in
# one sibling group, so the guests can reach each other over AF_VSOCK.
#   vsock-relay.sh --install          build vhost-device-vsock 0.3.0 + vsock-relay.patch
#                                     with Debian trixie's cargo in the toolchain chroot,
#                                     into $CACHE/relay
#   vsock-relay.sh DIR CID...         serve (foreground, in the toolchain chroot, in place of
#                                     this shell: kill its pid to stop it): QEMU connects to
#                                     DIR/vhost-CID.sock, the host reaches guest CID through
#                                     DIR/vsock-CID.sock ("CONNECT <port>\n"); DIR must be
#                                     under $CACHE
# The host needs no Rust: trixie's rustc 1.85 is new enough for the crate's locked
# dependencies (the newest rust-version among them is 1.74). The binary runs in the chroot,
# next to its glibc (trixie's 2.41; it needs GLIBC_2.34, so it would run on a bookworm host
# too, but nothing relies on that).
. "$(dirname "$0")/lib.sh"

RELAY_VERSION=0.3.0
PATCH="$TETHER_ROOT/qemu/vsock-relay.patch"
RELAY_DIR="$CACHE/relay"
RELAY_CHROOT=/cache/relay/bin/vhost-device-vsock
STAMP="$RELAY_DIR/.vhost-device-vsock-$RELAY_VERSION-$(key "$PATCH")"

# vhost-device-vsock 0.3.0 from crates.io plus vsock-relay.patch (a sibling VM that boots
# again after a crash must not kill its device's event loop). cargo fetch gets the source;
# cargo install --locked builds it with the crate's own Cargo.lock.
install_relay() {
	[ -x "$RELAY_DIR/bin/vhost-device-vsock" ] && [ -e "$STAMP" ] && return 0
	"$TETHER_ROOT/qemu/toolchain.sh"
	mkdir -p "$RELAY_DIR"
	exec 8>"$RELAY_DIR.lock"
	flock 8
	[ -x "$RELAY_DIR/bin/vhost-device-vsock" ] && [ -e "$STAMP" ] && return 0
	log "building vhost-device-vsock $RELAY_VERSION + vsock-relay.patch in the toolchain chroot (3-6 min)"
	rm -rf "$CACHE/relay-build"
	cargo_env
	with_progress relay "$CACHE/relay-install.log" 'count:^ *Compiling ' in_chroot env "${CARGO_ENV[@]}" /bin/sh -exc '
		v=$1 b=/cache/relay-build
		cargo --version; rustc --version
		mkdir -p $b/fetch/src && touch $b/fetch/src/lib.rs
		printf "[package]\nname = \"relay-src\"\nversion = \"0.0.0\"\nedition = \"2021\"\n[dependencies]\nvhost-device-vsock = \"=%s\"\n" \
			"$v" >$b/fetch/Cargo.toml
		cargo fetch --manifest-path $b/fetch/Cargo.toml
		cp -r $CARGO_HOME/registry/src/*/vhost-device-vsock-$v $b/src
		patch -d $b/src -p1 </work/qemu/vsock-relay.patch
		cargo install --locked --force --path $b/src --root /cache/relay.new
		rm -rf /cache/relay-build' sh "$RELAY_VERSION" ||
		die "vhost-device-vsock build failed, see $CACHE/relay-install.log"
	rm -f "$RELAY_DIR"/.vhost-device-vsock-* "$RELAY_DIR/bin/vhost-device-vsock"
	mkdir -p "$RELAY_DIR/bin"
	mv "$CACHE/relay.new/bin/vhost-device-vsock" "$RELAY_DIR/bin/"
	rm -rf "$CACHE/relay.new"
	touch "$STAMP"
}

install_relay
[ "${1:-}" = --install ] && exit 0
[ $# -ge 2 ] || die "usage: $0 DIR CID... | --install"
dir=$(realpath -m "$1")
shift
case $dir in
"$CACHE"/*) cdir="/cache/${dir#"$CACHE"/}" ;;
*) die "$dir is not under $CACHE (the relay runs in the toolchain chroot)" ;;
esac
mkdir -p "$dir"
args=()
for cid in "$@"; do
	rm -f "$dir/vhost-$cid.sock" "$dir/vsock-$cid.sock"
	args+=(--vm "guest-cid=$cid,socket=$cdir/vhost-$cid.sock,uds-path=$cdir/vsock-$cid.sock,groups=tether")
done
exec "${CHROOT_ARGV[@]}" "$RELAY_CHROOT" "${args[@]}"
