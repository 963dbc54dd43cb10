#!/bin/bash
# Build the guest root image: a Debian trixie minbase userland (bash, coreutils, attr,
# util-linux, e2fsprogs, kmod, procps; git, sqlite3 and python3 for the real-program
# tests; systemd-sysv, udev and dbus for tests/install.sh's systemd boot; nfs-kernel-server
# and nfs-common for make bench's NFSv4.2 peer, started by hand there, masked so that a
# systemd boot never starts them) on ext4, booted read-write with QEMU snapshot=on so every
# boot starts clean (or from a persistent overlay, qemu/run-vm.sh VM_ROOT). The test VMs
# boot init=/sbin/tether-init, which mounts the repo (9p tag "tether", read-only) and the
# VM's run directory (9p tag "out") and hands over to qemu/guest-init.sh: systemd is
# installed but not run, unless run-vm.sh's VM_INIT asks for /lib/systemd/systemd
# (tests/install.sh's second boot). No recommended packages, no docs.
. "$(dirname "$0")/lib.sh"

# (INCLUDE is part of this file, so a change here changes IMAGE_KEY, qemu/lib.sh.)
INCLUDE=attr,e2fsprogs,util-linux,kmod,procps,iproute2,busybox-static,git,sqlite3,python3,systemd-sysv,udev,dbus,nfs-kernel-server,nfs-common
[ -e "$IMAGE" ] && exit 0
host_pkgs debootstrap e2fsprogs
mkdir -p "$CACHE"
root="$CACHE/rootfs.tmp"
# A debootstrap that was killed may leave its /proc and /sys mounted in the tree.
grep -o " $root/[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l || true
rm -rf "$root"
log "debootstrap guest userland (about 1 min)"
with_progress image-debootstrap "$CACHE/image.log" stages \
	debootstrap --variant=minbase --include=$INCLUDE trixie "$root" "$MIRROR" ||
	die "debootstrap failed, see $CACHE/image.log"
# NFS must never start on its own: tests/bench-all.sh starts nfsd by hand. Mask its units
# (a /dev/null link works whether or not systemd is in the image) and drop its SysV links.
mkdir -p "$root/etc/systemd/system"
for u in nfs-server nfs-kernel-server nfs-mountd nfsdcld nfs-idmapd nfs-blkmap nfs-utils \
	rpc-statd rpc-statd-notify rpc-gssd rpc-svcgssd rpcbind auth-rpcgss-module fsidd; do
	ln -sfn /dev/null "$root/etc/systemd/system/$u.service"
done
for u in rpcbind.socket nfs-client.target nfs-server.target proc-fs-nfsd.mount var-lib-nfs-rpc_pipefs.mount; do
	ln -sfn /dev/null "$root/etc/systemd/system/$u"
done
rm -f "$root"/etc/rc[0-6S].d/[SK][0-9][0-9]{nfs-common,nfs-kernel-server,rpcbind}
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/{doc,man,locale}
mkdir -p "$root/tether" "$root/out"
cat >"$root/sbin/tether-init" <<'INIT'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t debugfs debugfs /sys/kernel/debug
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,ro tether /tether
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 out /out
exec /bin/bash /tether/qemu/guest-init.sh
INIT
chmod 755 "$root/sbin/tether-init"
rm -f "$IMAGE.tmp"
log "image: mkfs.ext4 -d ($(du -sm "$root" | cut -f1) MB of files)"
mkfs.ext4 -q -L tetherroot -d "$root" "$IMAGE.tmp" 1G || die "mkfs.ext4 -d failed"
mv "$IMAGE.tmp" "$IMAGE"
rm -rf "$root"
log "guest image ready: $IMAGE"
