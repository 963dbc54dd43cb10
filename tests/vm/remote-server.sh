#!/bin/bash
# Server VM (CID 4) role of tests/remote.sh (remote system calls). Mounts the run's fresh
# data disk at /srv (the export root) and fills it with the files the client's tests look
# for, loads tether_server.ko, runs tests/fsops/fsops locally (the reference transcript,
# /shared/fsops-local.txt), writes /shared/server-up, then runs the client's requests
# (/shared/cmd/NAME.sh -> NAME.out, NAME.rc) until the client writes /shared/client-done.
# Finally: shadows gone, rmmod tether_server, kmemleak. Results in /out/results.
. /tether/tests/vm/lib.sh
. /tether/tests/vm/remote-lib.sh
set -u
D=/sys/kernel/debug/tether_server
FSOPS=/tether/tests/fsops/fsops
SHADOW=/tether/userspace-tools/tether-shadow
[ -e /sys/kernel/debug/kmemleak ] && { echo scan >/sys/kernel/debug/kmemleak; echo clear >/sys/kernel/debug/kmemleak; }

mkdir -p /srv $CMD
check "data disk mounts at /srv (the export root)" mount -t ext4 /dev/vdb /srv
# Marker files: the same name holds a different word in the export root, in the server's
# real root and (written by the client) in the client's root, so a leak shows which root
# a path escaped to.
mkdir -p /srv/etc /srv/local /srv/tethered /srv/data /srv/tmp
chmod 1777 /srv/tmp /srv/tethered
echo tether-server-export >/srv/etc/hostname
echo export-root >/srv/etc/tether-where
echo server-real-root >/etc/tether-where
echo 'root:x:0:0:tether-export-root:/root:/bin/sh' >/srv/etc/passwd
echo 'root:x:0:' >/srv/etc/group
ln -s /etc/tether-where /srv/esc-abs                    # absolute symlink out of the root
ln -s /etc/passwd /srv/esc-passwd
ln -s ../../../../../etc/tether-where /srv/data/esc-rel  # relative .. chain in a symlink
ln -s /../../etc /srv/esc-dir                            # symlink to a directory above /
mkfifo -m 666 /srv/fifo
# Magic links: /proc/<pid>/root leads to a process's root, the server's real one for any
# process outside the shadow's chroot (the server's /proc is not in the export).
ln -s /proc/self/root/etc/tether-where /srv/ml-self
ln -s /proc/1/root/etc/tether-where /srv/ml-init
ln -s ../../proc/1/root/etc/tether-where /srv/data/ml-rel
ln -s /proc/self/root/etc/hostname /srv/ml-hostname
ln -s /proc/1/cwd/etc/tether-where /srv/ml-cwd
echo root-only >/srv/etc/root-only && chmod 644 /srv/etc/root-only  # identity tests
mkdir -m 770 /srv/grp && chown 0:50 /srv/grp
sync

# resume_ms: long enough that the session the client leaves behind at its end is still
# waiting when this script unloads the module.
check "insmod tether_server (root=/srv, squash_root=0, resume_ms=300000)" insmod /tether/server_comm/tether_server.ko \
	allowed_cids=${CLIENT_CID:-3} shadow_path=$SHADOW root=/srv squash_root=0 resume_ms=300000
check "fsops runs locally in /srv/local/t" eval "timeout 60 $FSOPS /srv/local/t >/shared/fsops-local.txt 2>&1"
touch /shared/server-up

serve_requests "${SERVE_SECONDS:-600}" /shared/client-done
check "client finished its sequence" test -e /shared/client/client-done

# The client unloaded its module (goodbye): its session and shadows are gone; left are the
# two sessions the client's last test abandoned, waiting for a resume, one with a shadow.
left() {
	[ "$(key $D/state sessions)" = 2 ] && [ "$(key $D/state detached)" = 2 ] &&
		[ "$(key $D/state shadows)" = 1 ]
}
check "after the client unloaded: only the 2 abandoned sessions (detached, 1 shadow) are left" \
	wait_until 30 left
cat $D/state >/out/state 2>/dev/null
grep -E '^(sessions|detached|shadows)=|^session ' /out/state
# A shadow holds the module (its open /dev/tether_shadow): end its session first.
sid=$(sed -n 's/^session id=\([0-9]*\) .* shadows=1 .*/\1/p' /out/state)
check "end_session $sid (the one with a shadow) on request" eval "echo end_session $sid >$D/control"
check "its shadow exits, the other session stays" wait_until 10 eval \
	'! pgrep -x tether-shadow >/dev/null && [ "$(key $D/state shadows)" = 0 ] && [ "$(key $D/state sessions)" = 1 ]'
pgrep -ax tether-shadow
check "rmmod tether_server with a session kept for resumption" rmmod tether_server
pgrep -ax tether-shadow
check "no pid namespace keeper left after rmmod" wait_until 10 eval '! pgrep -x tether-keeper >/dev/null'
pgrep -ax tether-keeper
check "server debugfs gone after rmmod" test ! -e $D
check "kmemleak: no leaks on the server" kmemleak_clean
umount /srv
