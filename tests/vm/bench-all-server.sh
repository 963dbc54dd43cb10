#!/bin/bash
# Server VM role of tests/bench-all.sh (make bench's one-run table). Mounts the run's data
# disk at /srv, puts the source tree tar in /srv/b, loads tether_server (vsock for client
# CID 3, TCP on 7777 with an export entry for the client's address, no root squash), starts
# the kernel NFS server exporting /srv (NFSv4 only, delegations off: leases disabled before
# nfsd starts; grace and lease 10 s), serves vsock_bench (vsock and TCP, port 9000) and
# then runs the client's requests (/shared/req/NAME.sh -> NAME.rc, output in NAME.out; no
# time limit but the VM's) until /shared/client-done. Progress lines on stdout.
set -u
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
SYS=/sys/kernel/tether_server   # its exports file (sysfs since the modules' file tables)
mkdir -p /srv /shared/req /shared/data
mount -t ext4 /dev/vdb /srv || echo "error: cannot mount the data disk"
mkdir -p /srv/b && chmod 1777 /srv/b
# The source tree of the tar/diff figures (BENCH_SRC: directories of this VM).
# shellcheck disable=SC2086
tar --exclude=target --exclude='*.o' --exclude='*.ko' --exclude='*.cmd' --exclude=__pycache__ \
	-cf /srv/b/src.tar ${BENCH_SRC:-/usr/lib/python3.13} 2>/dev/null
echo "source tree: $(tar -tf /srv/b/src.tar | wc -l) entries, $(du -k /srv/b/src.tar | cut -f1) KiB"
sync

insmod /tether/server_comm/tether_server.ko allowed_cids=3 shadow_path=/tether/userspace-tools/tether-shadow \
	root=/srv squash_root=0 tcp_port=7777 || echo "error: insmod tether_server failed"
echo "$NET_CLIENT_IP /srv no_root_squash" >$SYS/exports || echo "error: export entry for $NET_CLIENT_IP refused"

# NFSv4.2 as in /work/shared/notes/nfs-peer.md, v4 only (no rpcbind).
echo 0 >/proc/sys/fs/leases-enable
mount -t nfsd nfsd /proc/fs/nfsd
echo 10 >/proc/fs/nfsd/nfsv4gracetime
echo 10 >/proc/fs/nfsd/nfsv4leasetime
mkdir -p /var/lib/nfs/nfsdcld /var/lib/nfs/v4recovery
# nfsdcld talks to nfsd through rpc_pipefs (without it nfsd logs "Unable to initialize
# client recovery tracking" and runs the whole grace period).
mkdir -p /var/lib/nfs/rpc_pipefs
grep -q ' /var/lib/nfs/rpc_pipefs ' /proc/mounts || mount -t rpc_pipefs sunrpc /var/lib/nfs/rpc_pipefs ||
	echo "note: rpc_pipefs not mounted"
nfsdcld -s /var/lib/nfs/nfsdcld || echo "error: nfsdcld"
echo '/srv 10.0.0.0/24(rw,sync,no_root_squash,no_subtree_check,fsid=0)' >/etc/exports
exportfs -ra || echo "error: exportfs"
rpc.mountd -N 2 -N 3 || echo "error: rpc.mountd"
rpc.nfsd -N 3 4 || echo "error: rpc.nfsd"
cat /proc/fs/nfsd/versions
# nfsd may still not reach nfsdcld (release kernel, 2026-12-07: "Unable to initialize client
# recovery tracking! (-110)" with rpc_pipefs mounted and nfsdcld running): then it runs the
# whole grace period, in which opens wait. Wait it out here, so that no timed NFS figure
# falls into it (the client mounts only after server-up).
pgrep -a nfsdcld >/dev/null || echo "note: nfsdcld is not running"
if dmesg | grep -q 'Unable to initialize client recovery tracking'; then
	echo "note: nfsd runs its grace period; waiting $(cat /proc/fs/nfsd/nfsv4gracetime) s"
	sleep $(($(cat /proc/fs/nfsd/nfsv4gracetime) + 1))
fi

/tether/tests/build/vsock_bench server 9000 &
touch /shared/server-up
echo "server up"

while [ ! -e /shared/client-done ]; do
	for f in /shared/req/*.sh; do
		[ -e "$f" ] || continue
		b=${f%.sh}
		[ -e "$b.rc" ] && continue
		echo "request $(basename "$b") $(date +%T)"
		bash "$f" >"$b.out" 2>&1
		echo $? >"$b.rc.tmp" && mv "$b.rc.tmp" "$b.rc"
	done
	sleep 0.1
done
kill %1 2>/dev/null
rpc.nfsd 0
exportfs -ua
rmmod tether_server
echo "server done"
