#!/bin/bash
# Guest-to-guest vsock relay: one vhost-device-vsock process serving every given CID in
# one sibling group, so the guests can reach each other over AF_VSOCK.
#   vsock-relay.sh --install          install vhost-device-vsock 0.3.0 into $CACHE/cargo
#   vsock-relay.sh DIR CID...         serve (foreground; kill it to stop): QEMU connects to
#                                     DIR/vhost-CID.sock, the host reaches guest CID through
#                                     DIR/vsock-CID.sock ("CONNECT <port>\n")
. "$(dirname "$0")/lib.sh"

RELAY_VERSION=0.3.0
RELAY="$CACHE/cargo/bin/vhost-device-vsock"

install_relay() {
	[ -x "$RELAY" ] && "$RELAY" --version | grep -q " $RELAY_VERSION\$" && return 0
	PATH="$PATH:$HOME/.cargo/bin"
	command -v cargo >/dev/null || die "cargo needed to install vhost-device-vsock"
	log "installing vhost-device-vsock $RELAY_VERSION (about 1 min)"
	cargo install vhost-device-vsock --locked --version "$RELAY_VERSION" --root "$CACHE/cargo" \
		>"$CACHE/relay-install.log" 2>&1 || die "cargo install failed, see $CACHE/relay-install.log"
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
