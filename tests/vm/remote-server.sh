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
# The stable view (sysfs); debugfs ($D) keeps the test controls.
SYS=/sys/kernel/tether_server
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

# Loading is refused without an export root, with one that holds kernel file systems or
# other mounts, and without a usable key file (tests/vm/remote-client.sh: the attacks).
KO=/tether/server_comm/tether_server.ko
refused_load() { # DMESG-PATTERN PARAMS... : insmod fails, dmesg explains
	local pat=$1
	shift
	! insmod $KO allowed_cids=3 shadow_path=$SHADOW "$@" && wait_until 5 grep -q "$pat" /out/dmesg.log
}
check "insmod refuses a missing root= (dmesg: required)" refused_load "root= is required"
check "insmod refuses root=/ (procfs, sysfs, devtmpfs mounted under it)" \
	refused_load "export root / has another file system mounted under it" root=/
check "insmod refuses root=/proc (a kernel file system)" \
	refused_load "export root /proc is on a kernel or pseudo file system" root=/proc
check "insmod refuses root=/dev (devtmpfs)" \
	refused_load "export root /dev is on a kernel or pseudo file system" root=/dev
check "insmod refuses a missing key file" \
	refused_load "key file /etc/tether/none missing" root=/srv key_file=/etc/tether/none
install -m 644 /etc/tether/key /tmp/key-644
check "insmod refuses a key file readable by others" \
	refused_load "key file /tmp/key-644 readable or writable by others" root=/srv key_file=/tmp/key-644
printf 'short\n' >/tmp/key-short && chmod 600 /tmp/key-short
check "insmod refuses a key shorter than 16 bytes" \
	refused_load "key file /tmp/key-short not a regular file, or its key is not 16..=256 bytes" root=/srv key_file=/tmp/key-short
check "insmod with no_auth=1 and no key file loads (and warns)" eval \
	'insmod $KO allowed_cids=3 shadow_path=$SHADOW root=/srv key_file=/etc/tether/none no_auth=1 &&
	wait_until 5 grep -q "no_auth=1: connections are NOT authenticated" /out/dmesg.log &&
	grep -qx auth=0 $SYS/state && rmmod tether_server'
check "insmod refuses tcp_port= with no_auth=1 (a TCP port needs the key)" \
	refused_load "tcp_port= needs the shared key" root=/srv key_file=/etc/tether/none no_auth=1 tcp_port=7777
grep -q '^tether_server ' /proc/modules && rmmod tether_server

# resume_ms: long enough that the session the client leaves behind at its end is still
# waiting when this script unloads the module. no_root_squash (squash_root=0) is this
# suite's insecure case: the fsops transcript compares a tethered root's calls (chown,
# mknod, devices refused) with root's on the server, and the confinement tests write as
# root. Its identity and hostile-client parts switch root squash on (remote-client.sh);
# vmtest, the demo and the torture run with the defaults.
check "insmod tether_server, no_root_squash (root=/srv, squash_root=0, resume_ms=300000)" insmod /tether/server_comm/tether_server.ko \
	allowed_cids=${CLIENT_CID:-3} shadow_path=$SHADOW root=/srv squash_root=0 resume_ms=300000 \
	${NET_SERVER_IP:+tcp_port=7777}
check "fsops runs locally in /srv/local/t" eval "timeout 60 $FSOPS /srv/local/t >/shared/fsops-local.txt 2>&1"
check "server state: auth=1 insecure=0" eval 'grep -qx auth=1 $SYS/state && grep -qx insecure=0 $SYS/state'
# Export entries: a root with a mount under it, or on another file system, is refused.
mkdir -p /srv/mnt /tmp/other && mount -t tmpfs tmpfs /srv/mnt
check "exports: an entry whose root has a mount under it is refused (EBUSY)" eval \
	'! echo "5 /srv root_squash" >$SYS/exports && wait_until 5 grep -q "export root /srv has another file system mounted under it" /out/dmesg.log'
umount /srv/mnt
check "exports: an entry on another file system than root= is refused (EXDEV)" eval \
	'! echo "5 /tmp/other" >$SYS/exports && wait_until 5 grep -q "export root /tmp/other is not on the file system of root=" /out/dmesg.log'
check "exports: an entry for cid 5 under /srv is taken, shown, removed" eval \
	'echo "5 /srv/data all_squash uids=100-200" >$SYS/exports && grep -qx "5 /srv/data all_squash uids=100-200 gids=0-4294967294" $SYS/exports &&
	echo "del 5" >$SYS/exports && ! grep -q "^5 " $SYS/exports'
check "exports: a bad line is refused (EINVAL)" eval '! echo "3 srv bogus" >$SYS/exports'
# The TCP client (remote-client.sh "tcp:"): the secure defaults, by address.
if [ -n "${NET_CLIENT_IP:-}" ]; then
	check "tcp: listening on TCP port 7777 too (state tcp_port=7777)" eval \
		'grep -qx tcp_port=7777 $SYS/state && grep -q "listening on TCP port 7777 too" /out/dmesg.log'
	check "exports: an entry for the TCP client $NET_CLIENT_IP is taken and shown" eval \
		'echo "$NET_CLIENT_IP /srv root_squash uids=1000-1999 gids=1000-1999" >$SYS/exports &&
		grep -qx "$NET_CLIENT_IP /srv root_squash uids=1000-1999 gids=1000-1999" $SYS/exports'
	check "exports: bad addresses are refused (EINVAL)" eval \
		'! echo "10.0.0 /srv" >$SYS/exports && ! echo "10.0.0.256 /srv" >$SYS/exports && ! echo "del 1.2.3" >$SYS/exports'
fi
touch /shared/server-up

serve_requests "${SERVE_SECONDS:-600}" /shared/client-done
check "client finished its sequence" test -e /shared/client/client-done

# The client unloaded its module (goodbye): its session and shadows are gone; left are the
# two sessions the client's last test abandoned, waiting for a resume, one with a shadow.
left() {
	[ "$(key $SYS/state sessions)" = 2 ] && [ "$(key $SYS/state detached)" = 2 ] &&
		[ "$(key $SYS/state shadows)" = 1 ]
}
check "after the client unloaded: only the 2 abandoned sessions (detached, 1 shadow) are left" \
	wait_until 30 left
cat $SYS/state >/out/state 2>/dev/null
grep -E '^(sessions|detached|shadows)=|^session ' /out/state
# A shadow holds the module (its open /dev/tether_shadow): end its session first.
sid=$(sed -n 's/^session id=\([0-9]*\) .* shadows=1 .*/\1/p' /out/state)
check "end_session $sid (the one with a shadow) on request" eval "echo end_session $sid >$D/control"
check "its shadow exits, the other session stays" wait_until 10 eval \
	'! pgrep -x tether-shadow >/dev/null && [ "$(key $SYS/state shadows)" = 0 ] && [ "$(key $SYS/state sessions)" = 1 ]'
pgrep -ax tether-shadow
check "rmmod tether_server with a session kept for resumption" rmmod tether_server
pgrep -ax tether-shadow
check "no pid namespace keeper, session helper or session cgroup left after rmmod" wait_until 15 eval \
	'! pgrep -x tether-keeper >/dev/null && ! pgrep -x tether-session >/dev/null && ! ls -d /sys/fs/cgroup/tether/session-* 2>/dev/null'
pgrep -ax 'tether-(keeper|session)'
ls -d /sys/fs/cgroup/tether/session-* 2>/dev/null
check "server debugfs gone after rmmod" test ! -e $D
check "kmemleak: no leaks on the server" kmemleak_clean
umount /srv
