#!/bin/bash
# Boot one test VM (TCG by default) with QEMU from the toolchain chroot and wait until it
# powers off. Background it with & to run several; kill it (TERM) or kill -9 the PID in
# VMDIR/qemu.pid (a crash) to stop the VM.
#   run-vm.sh ROLE CID VMDIR VHOST_SOCK [DISK...]
# VMDIR (under $CACHE) is the guest's /out: run-vm.sh writes VMDIR/env (ROLE, CID and the
# lines of $VM_ENV), the guest writes ready, dmesg.log, results... ; console.log is the
# serial console. Each DISK is a persistent raw drive (/dev/vdb, /dev/vdc, ...).
# VMDIR's parent is shared with every VM of the run as /shared.
# Env: VM_MEM (512M), VM_TIMEOUT (seconds, 900), VM_ENV, TETHER_ACCEL (tcg | kvm),
# VM_NET (LOCALPORT:REMOTEPORT: a virtio-net NIC, MAC 52:54:00:00:00:<CID in hex>, whose
# frames go as UDP datagrams from 127.0.0.1:LOCALPORT to 127.0.0.1:REMOTEPORT, where the
# peer VM listens with the two ports swapped: a point-to-point link that either side can
# leave and rejoin by restarting its QEMU; tests/hostlib.sh TETHER_NET),
# VM_ROOT (FILE under $CACHE: boot from this persistent qcow2 root disk instead of the image
# with snapshot=on; created, when absent, as an overlay on the image, qemu-img create -f
# qcow2 -F raw -b IMAGE, so what the guest writes to / is there at its next boot),
# VM_INIT (the kernel's init=, default /sbin/tether-init, the image's test init that runs
# qemu/guest-init.sh; /lib/systemd/systemd boots systemd, whose guest must then write
# /out/ready and power off by itself: tests/install.sh's second boot). QEMU runs with
# -no-reboot: a guest's reboot ends it, and booting the same VM_ROOT again is the reboot.
. "$(dirname "$0")/lib.sh"

[ $# -ge 4 ] || die "usage: $0 ROLE CID VMDIR VHOST_SOCK [DISK...]"
role=$1 cid=$2 vmdir=$(realpath -m "$3") sock=$(realpath -m "$4")
shift 4
mem=${VM_MEM:-512M}
kernel="$CACHE/$KBUILD_DIR/bzImage"
[ -e "$kernel" ] || die "no kernel: run qemu/kernel.sh"
[ -e "$IMAGE" ] || die "no guest image: run qemu/image.sh"

# Host path under $CACHE -> the same file inside the chroot.
cpath() {
	case $1 in
	"$CACHE"/*) echo "/cache/${1#"$CACHE"/}" ;;
	*) die "$1 is not under $CACHE (the chroot cannot see it)" ;;
	esac
}

mkdir -p "$vmdir"
rm -f "$vmdir"/{ready,qemu.pid,boot_ms,console.log}
{ echo "ROLE=$role"; echo "CID=$cid"; echo "${VM_ENV:-}"; } >"$vmdir/env"

if [ "${TETHER_ACCEL:-tcg}" = kvm ]; then accel=(-accel kvm -cpu host); else accel=(-accel tcg,thread=multi -cpu max); fi
if [ -n "${VM_ROOT:-}" ]; then
	root=$(realpath -m "$VM_ROOT")
	[ -e "$root" ] || in_chroot qemu-img create -q -f qcow2 -F raw -b "$(cpath "$IMAGE")" "$(cpath "$root")" ||
		die "cannot create the root disk $root (an overlay on $IMAGE)"
	drives=(-drive "file=$(cpath "$root"),format=qcow2,if=virtio,cache=writeback")
else
	drives=(-drive "file=$(cpath "$IMAGE"),format=raw,if=virtio,snapshot=on")
fi
for d in "$@"; do drives+=(-drive "file=$(cpath "$(realpath "$d")"),format=raw,if=virtio,cache=writeback"); done
cv=$(cpath "$vmdir")
net=()
if [ -n "${VM_NET:-}" ]; then
	if [[ $VM_NET =~ ^([0-9]+):([0-9]+)$ ]]; then
		# A point-to-point link: this VM's UDP port and its peer's, on the host's loopback.
		dgram="local.type=inet,local.host=127.0.0.1,local.port=${BASH_REMATCH[1]},remote.type=inet,remote.host=127.0.0.1,remote.port=${BASH_REMATCH[2]}"
	elif [[ $VM_NET =~ ^mcast:([0-9.]+):([0-9]+)$ ]]; then
		# A hub: every VM on this multicast group and port gets every frame, over the
		# host's loopback (local.host: the interface; QEMU wants a local.port, unused).
		dgram="remote.type=inet,remote.host=${BASH_REMATCH[1]},remote.port=${BASH_REMATCH[2]},local.type=inet,local.host=127.0.0.1,local.port=${BASH_REMATCH[2]}"
	else
		die "VM_NET=$VM_NET: expected LOCALPORT:REMOTEPORT or mcast:GROUP:PORT"
	fi
	net=(-netdev "dgram,id=net0,$dgram" -device "virtio-net-pci,netdev=net0,mac=52:54:00:00:00:$(printf %02x "$cid")")
fi

start=$(date +%s%N)
in_chroot timeout -s KILL "${VM_TIMEOUT:-900}" qemu-system-x86_64 -name "tether-$role-$cid" \
	"${accel[@]}" -smp 1 -m "$mem" \
	-object memory-backend-memfd,id=mem,size="$mem",share=on -numa node,memdev=mem \
	-nodefaults -serial "file:$cv/console.log" -monitor none -display none -no-reboot \
	-kernel "$(cpath "$kernel")" \
	-append "console=ttyS0 quiet panic=-1 root=/dev/vda rootfstype=ext4 rw init=${VM_INIT:-/sbin/tether-init}" \
	"${drives[@]}" \
	-virtfs local,path=/work,mount_tag=tether,security_model=none,readonly=on \
	-virtfs "local,path=$cv,mount_tag=out,security_model=none" \
	-virtfs "local,path=$(dirname "$cv"),mount_tag=shared,security_model=none" \
	-chardev socket,id=vsock,path="$(cpath "$sock")" -device vhost-user-vsock-pci,chardev=vsock \
	"${net[@]}" \
	-pidfile "$cv/qemu.pid" &
qemu=$!
trap '[ -s "$vmdir/qemu.pid" ] && kill -9 "$(cat "$vmdir/qemu.pid")" 2>/dev/null; wait $qemu; exit 143' TERM INT

while [ ! -e "$vmdir/ready" ] && kill -0 $qemu 2>/dev/null; do sleep 0.05; done
if [ -e "$vmdir/ready" ]; then
	ms=$((($(date +%s%N) - start) / 1000000))
	echo $ms >"$vmdir/boot_ms"
	log "$role (cid $cid): boot-to-ready $((ms / 1000)).$(printf %03d $((ms % 1000))) s"
fi
rc=0
wait $qemu || rc=$?
[ -e "$vmdir/ready" ] || log "$role (cid $cid): QEMU exited ($rc) before the guest was ready; see $vmdir/console.log"
exit $rc
