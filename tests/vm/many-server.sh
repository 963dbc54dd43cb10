#!/bin/bash
# Server VM role of tests/many.sh (CID 4; srv0, then srv1 after the kill, on the same data
# disk). qemu/guest-init.sh mounted the disk at /srv and loaded tether_server.ko with
# SERVER_PARAMS (no allowed_cids=: only export entries admit). Gives each client of
# MANY_PEERS (CID:ADDR: its CID, or over TCP its IPv4 address) its own export root
# /srv/cCID (owned by nobody: root is squashed, the default) and an entry for ADDR,
# publishes /out/serving, then the module's state until the host writes
# /out/stop (or kills this VM). On stop: no shadow left, rmmod, unmount. Results in
# /out/results.
. /tether/tests/vm/lib.sh
set -u
D=/sys/kernel/debug/tether_server
# The stable view (sysfs); debugfs ($D) keeps the test controls.
SYS=/sys/kernel/tether_server

check "data disk mounted at /srv, tether_server loaded" eval 'mountpoint -q /srv && grep -q "^tether_server " /proc/modules'
for pe in $MANY_PEERS; do
	c=${pe%%:*} a=${pe#*:}
	mkdir -p /srv/c$c && chown 65534:65534 /srv/c$c
	check "export entry for cid $c ($a): /srv/c$c, root_squash" \
		eval 'echo "$a /srv/c$c root_squash" >$SYS/exports && grep -qx "$a /srv/c$c root_squash uids=0-4294967294 gids=0-4294967294" $SYS/exports'
done
sync /srv
touch /out/serving

while [ ! -e /out/stop ]; do
	state=$(<$SYS/state) && printf '%s\n' "$state" >/out/server-state.tmp && mv /out/server-state.tmp /out/server-state
	sleep 1
done
cp $SYS/state /out/state 2>/dev/null
grep -E '^(sessions|shadows|resumed|accepted)=|^session ' /out/state
check "no shadow left at the end" wait_until 60 eval '! pgrep -x tether-shadow >/dev/null'
check "rmmod tether_server" rmmod tether_server
sync
check "umount /srv (the data disk is clean)" umount /srv
