#!/bin/bash
# Server VM role of tests/torture.sh (CID 4, or 5 as "server B" after a failover; one VM
# boot per name srv0, srv1, ...). qemu/guest-init.sh mounted the shared data disk at /srv
# (the export root) and loaded tether_server.ko with SERVER_PARAMS. Publishes /out/serving,
# then the module's state (/out/server-state) until the host writes /out/stop, or
# the host SIGKILLs this VM (a crash), or the module resets it at an armed fault point
# (/out/arm: control lines from the client, see tests/torture.sh). On stop: rmmod, then unmount /srv cleanly, so the
# host can read the disk image with debugfs. Results in /out/results.
. /tether/tests/vm/lib.sh
set -u
D=/sys/kernel/debug/tether_server
# The stable view (sysfs); debugfs ($D) keeps the test controls.
SYS=/sys/kernel/tether_server

check "data disk mounted at /srv (by qemu/guest-init.sh, before the module)" mountpoint -q /srv
check "tether_server loaded" grep -q '^tether_server ' /proc/modules
check "state exists (sysfs)" test -r $SYS/state
# Over TCP (TORTURE_TCP=1) the client needs an export entry for its address: the secure
# defaults, like allowed_cids= gives its CID. Until it is there the client is refused and
# tries again.
if [ "${TORTURE_TCP:-0}" = 1 ]; then
	check "export entry for the TCP client $NET_CLIENT_IP (root_squash)" \
		eval 'echo "$NET_CLIENT_IP /srv root_squash" >$SYS/exports && grep -q "^$NET_CLIENT_IP /srv root_squash " $SYS/exports'
fi
echo "boot ${BOOT_INDEX:-?} cid $CID" >>/srv/boots.log && sync /srv/boots.log
# Root squash (the default): the client's root is nobody here; the torture's tree is its.
if [ "${BOOT_INDEX:-0}" = 0 ]; then
	check "root squash is on (squash_root=Y)" grep -qx Y /sys/module/tether_server/parameters/squash_root
	mkdir -p /srv/torture && chown 65534:65534 /srv/torture && sync /srv
fi
# The fault points' control syntax (server_comm/faults.rs), once, before any client.
ctl() { (printf '%s\n' "$1" >$D/control) 2>/dev/null; }
if [ "${BOOT_INDEX:-0}" = 0 ]; then
	check "state: crash_at=off, hold_flush=0" \
		eval '[ "$(key $SYS/state crash_at)" = off ] && [ "$(key $SYS/state hold_flush)" = 0 ]'
	check "control refuses crash_at with an unknown point or call, in_flush with a call, N=0, extra words" \
		eval '! ctl "crash_at nowhere any" && ! ctl "crash_at before_reply nosuchcall" && ! ctl "crash_at in_flush renameat" && ! ctl "crash_at on_receive any 0" && ! ctl "crash_at on_receive any 1 2" && ! ctl "hold_flush maybe"'
	check "crash_at arms (after_exec is before_reply) and shows in state, crash_at off disarms; hold_flush on/off" \
		eval 'ctl "crash_at after_exec renameat 3" && [ "$(key $SYS/state crash_at)" = "before_reply,renameat,3" ] && ctl "crash_at off" && [ "$(key $SYS/state crash_at)" = off ] && ctl "hold_flush on" && [ "$(key $SYS/state hold_flush)" = 1 ] && ctl "hold_flush off" && [ "$(key $SYS/state hold_flush)" = 0 ]'
fi
touch /out/serving

# fill DIR : preallocates DIR/fill (root's, synced) with every block an unprivileged user
# could get on /srv, and 1 MiB more from root's reserve (so that the blocks unflushed data
# holds in the page cache now are not free for it after a crash either); then DIR/full.
fill() {
	local avail
	avail=$(df -B1 --output=avail /srv | tail -n 1) &&
		fallocate -l $((avail + 1048576)) "$1/fill" && sync "$1/fill" &&
		touch "$1/full" && sync "$1"
}

while [ ! -e /out/stop ]; do
	# The client's arm request (tests/torture.sh): debugfs control lines (crash_at ...,
	# hold_flush ...), or "fill DIR" (above), each done once; /out/armed answers
	# "LINE: ok|failed" per line.
	if [ -e /out/arm ]; then
		while IFS= read -r line; do
			[ -n "$line" ] || continue
			case $line in
			"fill "*) fill "${line#fill }" >&2 && r=ok || r=failed ;;
			*) if (printf '%s\n' "$line" >$D/control) 2>/dev/null; then r=ok; else r=failed; fi ;;
			esac
			echo "$line: $r"
			echo "arm: $line: $r" >&2
		done </out/arm >/out/armed.tmp
		rm -f /out/arm
		grep -E '^(crash_at|hold_flush)=' $SYS/state >>/out/armed.tmp
		mv /out/armed.tmp /out/armed
	fi
	state=$(<$SYS/state) && printf '%s\n' "$state" >/out/server-state.tmp && mv /out/server-state.tmp /out/server-state
	sleep 0.5
done

cp $SYS/state /out/state 2>/dev/null
grep -E '^(sessions|shadows|resumed|syncs|sync_errors)=' /out/state
# Every tethered process has exited: no shadow may be left.
check "no shadow left at the end" wait_until 30 eval '! pgrep -x tether-shadow >/dev/null'
pgrep -ax tether-shadow
check "rmmod tether_server" rmmod tether_server
sync
check "umount /srv (the data disk is clean for the host)" umount /srv
