#!/bin/bash
# make check-install: `make install` tested in VMs that boot systemd, KTAP on stdout (same
# shape as tests/remote.sh). Stages `make install DESTDIR=$RUN/stage` on the host, then
# boots a server VM (CID 4, data disk = export root) and a client VM (CID 3) twice each,
# from persistent root disks ($RUN/{server,client}-root.qcow2: overlays on the guest image,
# qemu/run-vm.sh VM_ROOT):
#   boot 1 (init=/sbin/tether-init, the test init): tests/vm/install-{server,client}.sh
#     copy the staged tree into /, configure /etc/tether (key, exports, client.conf,
#     tethered), put the data disk in the server's /etc/fstab at /srv, `systemctl enable`
#     the tether unit and the test-only tests/vm/tether-test.service, give systemd TCG-sized
#     timeouts (tests/vm/lib.sh systemd_boot_setup), and power off;
#   boot 2 (VM_INIT=/lib/systemd/systemd, the reboot): systemd starts tether-server.service
#     and tether-client.service by itself; tether-test.service then runs the same role
#     scripts' second phase (tests/vm/systemd-boot.sh): a clean boot (is-system-running),
#     the units active and enabled, the modules from /lib/modules/KVER/extra with the
#     parameters of /etc/tether, the client connected and the program in
#     /etc/tether/tethered marked, running tethered against the server's export, `tetherctl
#     status` on both sides, `systemctl reload tether-server` (tetherctl exportfs -r),
#     `systemctl stop` unloading both modules; then systemctl poweroff.
# Each boot has its own run directory (boot1-server, boot1-client, boot2-server,
# boot2-client: results, role.log, dmesg.log, console.log; boot 2 adds journal.log), and
# every one's dmesg must be free of warnings. One line per boot with its elapsed time;
# last line "# totals: ...".
. "$(dirname "$0")/hostlib.sh"

t0=$(date +%s)
prepare >&2
start_run install
log "run directory: $RUN"
make -C "$TETHER_ROOT" install DESTDIR="$RUN/stage" >"$RUN/make-install.log" 2>&1 ||
	die "make install DESTDIR=$RUN/stage failed, see $RUN/make-install.log"
modinfo -F vermagic "$TETHER_ROOT/client_proxy/tether_client.ko" | cut -d' ' -f1 >"$RUN/kver"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$RUN/key"
VMS=(boot1-server boot1-client boot2-server boot2-client)
export VM_TIMEOUT=${VM_TIMEOUT:-600}
SCRIPT=/tether/tests/vm/install
BOOT_LINES=()

# booted N WHAT : both VMs of boot N are off: a line with the boot's elapsed time.
booted() {
	local line
	line="boot $1 ($2): $(hms $(($(date +%s) - tb))), boot-to-ready server $(boot_ms "boot$1-server") ms, client $(boot_ms "boot$1-client") ms"
	log "$line"
	BOOT_LINES+=("$line")
}
# ready_or_kill NAME SECONDS : until NAME wrote its ready file; else SIGKILL it (a guest
# stuck in its boot, e.g. systemd's emergency shell on the console).
ready_or_kill() {
	wait_file "$2" "$RUN/$1/ready" "${VMPID[$1]}" && return 0
	log "$1: not ready after $2 s, killed; see $RUN/$1/console.log"
	crash_vm "$1"
}

tb=$(date +%s)
log "boot 1: install, configure, systemctl enable (init=/sbin/tether-init)"
VM_ROOT=$RUN/server-root.qcow2 boot boot1-server server $SERVER_CID ROLE_SCRIPT=$SCRIPT-server.sh LOAD_MODULE=0 INSTALL_BOOT=1
VM_ROOT=$RUN/client-root.qcow2 boot boot1-client client $CLIENT_CID ROLE_SCRIPT=$SCRIPT-client.sh LOAD_MODULE=0 INSTALL_BOOT=1
wait_vm boot1-server "$VM_TIMEOUT"
wait_vm boot1-client "$VM_TIMEOUT"
booted 1 "init=/sbin/tether-init: install, configure, enable"

tb=$(date +%s)
log "boot 2: the same root disks with systemd as PID 1 (the reboot)"
# systemd under TCG with the debug kernel: about 4 min to multi-user.target on an idle host,
# more next to a build; a guest stuck in its boot is killed after 10 min.
export VM_INIT=/lib/systemd/systemd VM_TIMEOUT=$((VM_TIMEOUT + 600))
VM_ROOT=$RUN/server-root.qcow2 boot boot2-server server $SERVER_CID ROLE_SCRIPT=$SCRIPT-server.sh INSTALL_BOOT=2
VM_ROOT=$RUN/client-root.qcow2 boot boot2-client client $CLIENT_CID ROLE_SCRIPT=$SCRIPT-client.sh INSTALL_BOOT=2
ready_or_kill boot2-server 600
ready_or_kill boot2-client 600
wait_vm boot2-client "$VM_TIMEOUT"
wait_vm boot2-server 300
booted 2 "systemd: the units at boot, tethered program, reload, stop"

DONE_VM=boot2-client ktap_gather
ktap_print
printf '# %s\n' "${BOOT_LINES[@]}"
echo "# install took $(($(date +%s) - t0)) s; logs in $RUN (role.log, dmesg.log per boot; journal.log in boot 2)"
echo "# totals: pass=$pass fail=$fail skip=$skip"
[ $fail = 0 ]
