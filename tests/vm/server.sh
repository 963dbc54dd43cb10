#!/bin/bash
# Server VM (CID 4) role: tether_server.ko was loaded by qemu/guest-init.sh. Mounts the
# persistent data disk at /srv, publishes its state (sysfs) to /shared/server-state until
# the host writes /out/stop, then unloads the module and scans for leaks.
. /tether/tests/vm/lib.sh
set -u
D=/sys/kernel/debug/tether_server
# The stable view (sysfs); debugfs ($D) keeps the test controls.
SYS=/sys/kernel/tether_server
BOOT_INDEX=${BOOT_INDEX:-0}

# NO_WRITEBACK=1: written data stays in the page cache until something syncs it.
[ "${NO_WRITEBACK:-0}" = 1 ] && echo 0 >/proc/sys/vm/dirty_writeback_centisecs
# The data disk survives a killed VM: boot N finds the N markers of earlier boots.
mkdir -p /srv
if check "data disk mounted at /srv (by qemu/guest-init.sh, before the module)" mountpoint -q /srv; then
	n=$(cat /srv/boots.log 2>/dev/null | wc -l)
	check "data disk holds the $BOOT_INDEX earlier boot markers" test "$n" = "$BOOT_INDEX"
	echo "boot $BOOT_INDEX" >>/srv/boots.log && sync /srv/boots.log
fi
# Root squash (the default): the client's root is nobody here. The trees its tethered
# processes write (tests/vm/client.sh, demo-client.sh) are nobody's; uid 1000 has its own.
if [ "$BOOT_INDEX" = 0 ]; then
	check "root squash is on (squash_root=Y)" grep -qx Y /sys/module/tether_server/parameters/squash_root
	mkdir -p /srv/replay/u1000 /srv/demo && chown 65534:65534 /srv/replay /srv/demo &&
		chown 1000:1000 /srv/replay/u1000 && sync /srv
fi
check "module loaded" grep -q '^tether_server ' /proc/modules
check "sysfs: $SYS holds state, calls (mode 400) and exports (600)" eval \
	'[ "$(stat -c %a $SYS/state $SYS/calls $SYS/exports | tr "\n" " ")" = "400 400 600 " ]'
check "sysfs state parses" state_parses $SYS/state port sessions shadows accepted
check "sysfs exports: an entry written is listed, then deleted" eval \
	'echo "9 /srv all_squash uids=1000-1999" >$SYS/exports && grep -qx "9 /srv all_squash uids=1000-1999 gids=0-4294967294" $SYS/exports &&
	echo "del 9" >$SYS/exports && ! grep -q "^9 " $SYS/exports'
check "sysfs exports: a bad line is refused (EINVAL), the table unchanged" eval \
	'before=$(cat $SYS/exports); ! o=$(echo "9 relative/root" 2>&1 >$SYS/exports) && [[ $o == *"Invalid argument"* ]] && [ "$(cat $SYS/exports)" = "$before" ]'
[ -e /sys/kernel/debug/kmemleak ] && { echo scan >/sys/kernel/debug/kmemleak; echo clear >/sys/kernel/debug/kmemleak; }
[ "${BENCH_PORT:-}" ] && { $TB/vsock_bench server "$BENCH_PORT" & }

while [ ! -e /out/stop ]; do
	state=$(<$SYS/state) && printf '%s\n' "$state" >/shared/server-state.tmp && mv /shared/server-state.tmp /shared/server-state
	for g in /sys/fs/cgroup/tether/session-*; do
		[ -d "$g" ] && echo "${g##*/} memory.max=$(cat $g/memory.max) pids=$(cat $g/pids.current)"
	done >/shared/server-cgroups.tmp 2>/dev/null && mv /shared/server-cgroups.tmp /shared/server-cgroups
	sleep 0.5
done

cp $SYS/state /out/state
sleep 0.5   # dmesg -w catches up
drops=$(grep 'tether_server: dropping connection from cid' /out/dmesg.log | grep -vc 'silent for')
check "one dmesg line per dropped connection ($drops, bad_frames=$(key $SYS/state bad_frames))" \
	test "$drops" = "$(key $SYS/state bad_frames)"
check "rmmod tether_server" rmmod tether_server
check "debugfs and sysfs directories gone after rmmod" test ! -e $D -a ! -e $SYS
check "kmemleak: no leaks on the server" kmemleak_clean
umount /srv
