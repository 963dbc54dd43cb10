#!/bin/bash
# make install / make uninstall / make install-dkms (run from the top of the tree, after
# make modules):
#   packaging/install.sh install     the built modules into /lib/modules/KVER/extra (KVER:
#                                    the kernel they were built for, from their vermagic;
#                                    KVER=... to override), tether-shadow into
#                                    /usr/libexec/tether, tetherctl into /usr/sbin, the man
#                                    page, /etc/modprobe.d/tether.conf, the systemd units,
#                                    and the /etc/tether examples (never over existing files)
#   packaging/install.sh uninstall   removes them again (not /etc/tether)
#   packaging/install.sh dkms        the module sources into /usr/src/tether-VERSION with
#                                    dkms.conf, then dkms add/build/install if dkms exists
# DESTDIR=DIR installs under DIR (packaging, tests); then no depmod/systemctl is run.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DESTDIR=${DESTDIR:-}
PREFIX=${PREFIX:-/usr}
VERSION=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' "$ROOT/dkms.conf")
UNITDIR=${UNITDIR:-/usr/lib/systemd/system}
MODS=(client_proxy/tether_client.ko server_comm/tether_server.ko)

log() { echo "install: $*"; }
die() { echo "install: error: $*" >&2; exit 1; }
# kver : the kernel release the built modules are for
kver() {
	[ -n "${KVER:-}" ] && { echo "$KVER"; return; }
	local vm
	command -v modinfo >/dev/null || die "modinfo not found (package kmod); or give KVER="
	vm=$(modinfo -F vermagic "$ROOT/${MODS[0]}") || die "cannot read the vermagic of ${MODS[0]}"
	echo "${vm%% *}"
}
inst() { # MODE SRC DST : install one file, creating its directory
	install -D -m "$1" "$2" "$DESTDIR$3"
	echo "  $DESTDIR$3"
}

do_install() {
	local m k f
	for m in "${MODS[@]}" userspace-tools/tether-shadow; do
		[ -e "$ROOT/$m" ] || die "$m is not built: run make modules first"
	done
	k=$(kver)
	log "modules for kernel $k"
	for m in "${MODS[@]}"; do inst 0644 "$ROOT/$m" "/lib/modules/$k/extra/${m##*/}"; done
	inst 0755 "$ROOT/userspace-tools/tether-shadow" "$PREFIX/libexec/tether/tether-shadow"
	inst 0755 "$ROOT/userspace-tools/tetherctl" "$PREFIX/sbin/tetherctl"
	inst 0644 "$ROOT/packaging/tetherctl.8" "$PREFIX/share/man/man8/tetherctl.8"
	inst 0644 "$ROOT/packaging/modprobe.d/tether.conf" /etc/modprobe.d/tether.conf
	for f in tether-server.service tether-client.service; do
		inst 0644 "$ROOT/packaging/systemd/$f" "$UNITDIR/$f"
	done
	install -d -m 0755 "$DESTDIR/etc/tether"
	for f in exports server.conf client.conf tethered; do
		if [ -e "$DESTDIR/etc/tether/$f" ]; then echo "  $DESTDIR/etc/tether/$f (kept)"
		else inst 0644 "$ROOT/packaging/etc/$f" "/etc/tether/$f"; fi
	done
	install -d -m 0700 "$DESTDIR/var/lib/tether"
	if [ -z "$DESTDIR" ]; then
		if [ -d "/lib/modules/$k/kernel" ] || [ -e "/lib/modules/$k/modules.dep" ]; then depmod -a "$k"; fi
		if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
		log "done: configure /etc/tether, then systemctl enable --now tether-server (or tether-client)"
	fi
}

do_uninstall() {
	local k f
	k=$(KVER=${KVER:-} kver 2>/dev/null || uname -r)
	for f in "/lib/modules/$k/extra/tether_client.ko" "/lib/modules/$k/extra/tether_server.ko" \
		"$PREFIX/libexec/tether/tether-shadow" "$PREFIX/sbin/tetherctl" "$PREFIX/share/man/man8/tetherctl.8" \
		/etc/modprobe.d/tether.conf "$UNITDIR/tether-server.service" "$UNITDIR/tether-client.service"; do
		[ -e "$DESTDIR$f" ] && rm -f "$DESTDIR$f" && echo "  removed $DESTDIR$f"
	done
	rmdir "$DESTDIR$PREFIX/libexec/tether" 2>/dev/null || true
	if [ -z "$DESTDIR" ] && [ -e "/lib/modules/$k/modules.dep" ]; then depmod -a "$k"; fi
	log "kept /etc/tether and /var/lib/tether"
}

# The module sources DKMS builds: Kbuild, the two module directories, the shared Rust and C.
do_dkms() {
	local src="$DESTDIR/usr/src/tether-$VERSION"
	rm -rf "$src"
	mkdir -p "$src"
	(cd "$ROOT" && git ls-files -z Kbuild dkms.conf packaging/dkms-make.sh client_proxy server_comm rust/src rust/kernel 2>/dev/null ||
		find Kbuild dkms.conf packaging/dkms-make.sh client_proxy server_comm rust/src rust/kernel -type f -print0) |
		(cd "$ROOT" && xargs -0 cp --parents -t "$src")
	log "sources in $src"
	if [ -z "$DESTDIR" ] && command -v dkms >/dev/null; then
		dkms add -m tether -v "$VERSION" || true
		dkms build -m tether -v "$VERSION" && dkms install -m tether -v "$VERSION"
	elif [ -z "$DESTDIR" ]; then
		log "dkms is not installed (apt-get install dkms); then: dkms install -m tether -v $VERSION"
	fi
}

case ${1:-} in
install) do_install ;;
uninstall) do_uninstall ;;
dkms) do_dkms ;;
*) die "usage: $0 install|uninstall|dkms" ;;
esac
