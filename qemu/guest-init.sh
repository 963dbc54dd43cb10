#!/bin/bash
# PID 1 of a test VM, exec'd by the image's /sbin/tether-init once /tether (the repo,
# read-only) and /out (this VM's run directory) are mounted. Sources /out/env (ROLE, CID,
# ... written by qemu/run-vm.sh), mounts a server's data disk at /srv and loads the role's
# module, writes /out/ready, runs the role's script (ROLE_SCRIPT, default tests/vm/$ROLE.sh)
# with its output in /out/role.log, then powers off. With NET_IP in /out/env (tests/hostlib.sh
# TETHER_NET), the VM's network interface (qemu/run-vm.sh VM_NET) gets NET_IP/24 first.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t tmpfs -o mode=1777 tmpfs /tmp
# cgroup v2, as systemd mounts it: a server's sessions get cgroups of their own there.
[ -d /sys/fs/cgroup ] && mount -t cgroup2 cgroup2 /sys/fs/cgroup
ln -sfn /proc/self/fd /dev/fd
mkdir -p /shared && mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 shared /shared
# Stream the kernel log to the host, so it survives a killed VM.
dmesg -w >/out/dmesg.log 2>&1 &
dmesg_pid=$!
set -a
. /out/env
set +a
busybox hostname "tether-$ROLE-$CID"
mkdir -p /var/lib/tether   # the client's persisted log (log_file= default)
# The run's shared key (tests/hostlib.sh start_run), where both modules read it (key_file=).
if [ -e /shared/tether.key ]; then
	mkdir -p /etc/tether && install -m 600 /shared/tether.key /etc/tether/key
fi
cd /tmp
# The VM-to-VM link: the first interface with a device behind it (the virtio NIC), up with
# NET_IP/24, before the module is loaded.
if [ -n "${NET_IP:-}" ]; then
	netif=
	for d in /sys/class/net/*; do
		[ -e "$d/device" ] && { netif=${d##*/}; break; }
	done
	if [ -z "$netif" ]; then
		echo "NET_IP=$NET_IP: no network interface (qemu/run-vm.sh without VM_NET?)" >&2
	elif ! { ip link set lo up && ip addr add "$NET_IP/24" dev "$netif" && ip link set "$netif" up; }; then
		echo "cannot bring $netif up with $NET_IP/24" >&2
	fi
fi

case $ROLE in
server) mod=/tether/server_comm/tether_server.ko params=${SERVER_PARAMS:-} ;;
client) mod=/tether/client_proxy/tether_client.ko params=${CLIENT_PARAMS:-} ;;
*) mod= ;;
esac
if [ -n "$mod" ] && [ "${LOAD_MODULE:-1}" = 1 ]; then
	# A server's export root (root=/srv) must be in place before the module serves shadows.
	if [ "$ROLE" = server ] && [ -b /dev/vdb ]; then
		mkdir -p /srv && mount -t ext4 /dev/vdb /srv || echo "cannot mount the data disk at /srv" >&2
	fi
	# shellcheck disable=SC2086
	insmod "$mod" $params >/out/insmod.log 2>&1 || echo "insmod $mod $params failed: $(cat /out/insmod.log)" >&2
fi
touch /out/ready
script=${ROLE_SCRIPT:-/tether/tests/vm/$ROLE.sh}
bash "$script" >/out/role.log 2>&1
echo $? >/out/exit

sleep 0.5            # let dmesg -w write the last lines
kill $dmesg_pid
sync
echo o >/proc/sysrq-trigger
sleep 60
