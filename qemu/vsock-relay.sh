#!/bin/bash
# Guest-to-guest vsock relay: one vhost-device-vsock process serving every given CID in
# one sibling group, so the guests can reach each other over AF_VSOCK.
#   vsock-relay.sh --install          build vhost-device-vsock 0.3.0 + vsock-relay.patch
#                                     into $CACHE/cargo
#   vsock-relay.sh DIR CID...         serve (foreground; kill it to stop): QEMU connects to
#                                     DIR/vhost-CID.sock, the host reaches guest CID through
#                                     DIR/vsock-CID.sock ("CONNECT <port>\n")
. "$(dirname "$0")/lib.sh"

RELAY_VERSION=0.3.0
RELAY="$CACHE/cargo/bin/vhost-device-vsock"
PATCH="$TETHER_ROOT/qemu/vsock-relay.patch"
STAMP="$CACHE/cargo/.vhost-device-vsock-$RELAY_VERSION-$(key "$PATCH")"

# vhost-device-vsock 0.3.0 from crates.io plus vsock-relay.patch (a sibling VM that boots
# again after a crash must not kill its device's event loop). cargo fetch gets the source.
install_relay() {
	[ -x "$RELAY" ] && [ -e "$STAMP" ] && return 0
	host_pkgs patch
	PATH="$PATH:$HOME/.cargo/bin"
	command -v cargo >/dev/null || die "cargo needed to build vhost-device-vsock"
	local b="$CACHE/relay-build"
	log "building vhost-device-vsock $RELAY_VERSION + vsock-relay.patch (about 2 min)"
	rm -rf "$b" && mkdir -p "$b/fetch/src" && touch "$b/fetch/src/lib.rs"
	printf '[package]\nname = "relay-src"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\nvhost-device-vsock = "=%s"\n' \
		"$RELAY_VERSION" >"$b/fetch/Cargo.toml"
	{
		CARGO_HOME="$b/home" cargo fetch --manifest-path "$b/fetch/Cargo.toml" &&
			cp -r "$b"/home/registry/src/*/"vhost-device-vsock-$RELAY_VERSION" "$b/src" &&
			patch -d "$b/src" -p1 <"$PATCH" &&
			CARGO_HOME="$b/home" cargo install --locked --force --path "$b/src" --root "$CACHE/cargo"
	} >"$CACHE/relay-install.log" 2>&1 || die "vhost-device-vsock build failed, see $CACHE/relay-install.log"
	rm -f "$CACHE"/cargo/.vhost-device-vsock-*
	touch "$STAMP"
	rm -rf "$b"
}

install_relay
[ "${1:-}" = --install ] && exit 0
[ $# -ge 2 ] || die "usage: $0 DIR CID... | --install"
dir=$1
shift
mkdir -p "$dir"
args=()
for cid in "$@"; do
	rm -f "$dir/vhost-$cid.sock" "$dir/vsock-$cid.sock"
	args+=(--vm "guest-cid=$cid,socket=$dir/vhost-$cid.sock,uds-path=$dir/vsock-$cid.sock,groups=tether")
done
exec "$RELAY" "${args[@]}"
