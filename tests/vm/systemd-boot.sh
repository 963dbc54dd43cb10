#!/bin/bash
# The counterpart of qemu/guest-init.sh in a systemd boot (qemu/run-vm.sh
# VM_INIT=/lib/systemd/systemd, tests/install.sh's second boot): run by
# tether-test.service once /tether, /out and /shared are mounted. Streams the kernel log to
# /out/dmesg.log (from the start of this boot: dmesg -w prints the buffer first), sources
# /out/env, writes /out/ready, runs ROLE_SCRIPT with its output in /out/role.log and its
# exit status in /out/exit, saves this boot's journal as /out/journal.log, then powers off
# with systemctl (which stops the units, tether's included, on the way down).
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
dmesg -w >/out/dmesg.log 2>&1 &
dmesg_pid=$!
set -a
. /out/env
set +a
cd /tmp
touch /out/ready
bash "$ROLE_SCRIPT" >/out/role.log 2>&1
echo $? >/out/exit
journalctl -b --no-pager -o short-monotonic >/out/journal.log 2>&1
sleep 0.5            # let dmesg -w write the last lines
kill $dmesg_pid
sync
systemctl --no-block poweroff
