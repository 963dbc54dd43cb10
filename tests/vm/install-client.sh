#!/bin/bash
# Client VM (CID 3) role of tests/install.sh, run once per boot of the same persistent root
# disk (qemu/run-vm.sh VM_ROOT); INSTALL_BOOT (from /out/env) says which:
#   1 (init=/sbin/tether-init, qemu/guest-init.sh): installs what `make install DESTDIR=`
#     staged in /shared/stage, configures /etc/tether (key, client.conf, tethered: a copy
#     of bash), enables tether-client.service with systemctl (offline) and the test-only
#     tether-test.service (tests/vm/tether-test.service, which runs this script again in
#     boot 2), then the VM powers off.
#   2 (systemd as PID 1, run by tether-test.service through tests/vm/systemd-boot.sh):
#     checks that the boot is clean and that tether-client.service came up by itself (the
#     module from /lib/modules/KVER/extra with the parameters of /etc/tether, the program
#     of /etc/tether/tethered marked), that it connects to the server VM booting beside it,
#     that the marked program runs tethered and sees the server's export, then that
#     `systemctl stop` unloads the module.
# Results in /out/results; files in /shared/boot2-* pace the two VMs in boot 2.
. /tether/tests/vm/lib.sh
set -u
UNIT=tether-client.service
APP=/usr/local/bin/tapp
KVER=$(cat /shared/kver)

boot1() {
	check "install: the staged files copy into / (make install DESTDIR=)" \
		eval 'tar -C /shared/stage -cf - . | tar -C / -xf - --keep-directory-symlink --no-overwrite-dir'
	check "depmod -a $KVER finds the modules in /lib/modules/$KVER/extra" eval \
		"depmod -a $KVER && grep -q '^extra/tether_client.ko:' /lib/modules/$KVER/modules.dep"
	install -m 600 /shared/key /etc/tether/key
	mkdir -p /usr/local/bin && cp /bin/bash $APP
	echo "SERVER_CID=${SERVER_CID:-4}" >>/etc/tether/client.conf
	# An OPTIONS parameter that changes nothing the test depends on (a smaller largest
	# vsock send than the default 3584), to see it applied.
	sed -i 's/^OPTIONS=.*/OPTIONS="split=2048"/' /etc/tether/client.conf
	echo "$APP" >>/etc/tether/tethered
	check "systemctl enable $UNIT (offline)" systemctl enable $UNIT
	check "systemctl is-enabled $UNIT (offline): enabled" eval '[ "$(systemctl is-enabled $UNIT)" = enabled ]'
	check "the next boot's set-up: machine id, hostname, TCG timeouts, tether-test.service enabled" \
		systemd_boot_setup client
}

boot2() {
	local o p=/sys/module/tether_client/parameters st=/sys/kernel/tether_client/state
	check_systemd_boot
	check "tether_client came from /lib/modules/$KVER/extra (modprobe)" eval \
		'[ "$(modinfo -n tether_client)" = /lib/modules/$KVER/extra/tether_client.ko ] && grep -q "^tether_client " /proc/modules'
	# The Rust parameters are not in /sys/module: the module's state file shows them.
	check "its server_cid is client.conf's SERVER_CID (${SERVER_CID:-4}; sysfs state)" \
		eval '[ "$(key $st server_cid)" = ${SERVER_CID:-4} ]'
	check "its split is client.conf's OPTIONS (split=2048; sysfs state)" eval '[ "$(key $st split)" = 2048 ]'
	check "its log_file is /etc/modprobe.d/tether.conf's (in StateDirectory /var/lib/tether, 0700)" eval \
		'grep -qx /var/lib/tether/client.log $p/log_file && [ "$(stat -c %a /var/lib/tether)" = 700 ]'
	check "the program in /etc/tether/tethered is marked" tetherctl marked $APP
	check "tetherctl status: connected to the server within 120 s" wait_until 120 eval \
		'tetherctl status 2>/dev/null | grep -q "connected to server CID ${SERVER_CID:-4}"'
	tetherctl status
	o=$(timeout 60 $APP -c 'read -r h </etc/hostname; echo "$h"' 2>&1)
	echo "tethered: $o"
	check "the marked program runs tethered: its /etc/hostname is the server export's" \
		eval '[ "$o" = tether-install-export ]'
	check "local: this VM's own /etc/hostname is its own (tether-client-$CID)" \
		eval '[ "$(cat /etc/hostname)" = tether-client-$CID ] && [ "$(cat /proc/sys/kernel/hostname)" = tether-client-$CID ]'
	touch /shared/boot2-client-connected

	check "the server saw the session and reloaded its exports" wait_until 240 test -e /shared/boot2-server-checked
	check_systemd_stop tether_client
	touch /shared/boot2-client-done /out/client-done
}

case ${INSTALL_BOOT:-1} in
1) boot1 ;;
2) boot2 ;;
*) nok "INSTALL_BOOT=$INSTALL_BOOT: 1 or 2" ;;
esac
