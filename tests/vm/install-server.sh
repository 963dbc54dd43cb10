#!/bin/bash
# Server VM (CID 4) role of tests/install.sh, run once per boot of the same persistent root
# disk (qemu/run-vm.sh VM_ROOT); INSTALL_BOOT (from /out/env) says which:
#   1 (init=/sbin/tether-init, qemu/guest-init.sh): installs what `make install DESTDIR=`
#     staged in /shared/stage, configures /etc/tether (key, exports, server.conf), puts
#     the data disk in /etc/fstab at /srv (the export root), enables tether-server.service
#     with systemctl (offline) and the test-only tether-test.service
#     (tests/vm/tether-test.service, which runs this script again in boot 2), then the VM
#     powers off.
#   2 (systemd as PID 1, run by tether-test.service through tests/vm/systemd-boot.sh):
#     checks that the boot is clean and that tether-server.service came up by itself (the
#     module from /lib/modules/KVER/extra with the parameters of /etc/tether), serves the
#     client's tethered program, `systemctl reload` applies a changed exports file, and
#     `systemctl stop` unloads the module.
# Results in /out/results; files in /shared/boot2-* pace the two VMs in boot 2.
. /tether/tests/vm/lib.sh
set -u
UNIT=tether-server.service
KVER=$(cat /shared/kver)

boot1() {
	check "install: the staged files copy into / (make install DESTDIR=)" \
		eval 'tar -C /shared/stage -cf - . | tar -C / -xf - --keep-directory-symlink --no-overwrite-dir'
	check "depmod -a $KVER finds the modules in /lib/modules/$KVER/extra" eval \
		"depmod -a $KVER && grep -q '^extra/tether_server.ko:' /lib/modules/$KVER/modules.dep"
	check "the installed tetherctl is on PATH (/usr/sbin)" eval '[ "$(command -v tetherctl)" = /usr/sbin/tetherctl ]'
	install -m 600 /shared/key /etc/tether/key

	check "/etc/fstab: the data disk (LABEL=tetherdata) mounts at /srv" eval \
		'mkdir -p /srv && echo "LABEL=tetherdata /srv ext4 defaults 0 2" >>/etc/fstab && mount /srv'
	mkdir -p /srv/etc /srv/tmp && chmod 1777 /srv/tmp
	echo tether-install-export >/srv/etc/hostname
	umount /srv
	# An OPTIONS parameter that changes nothing the test depends on, to see it applied.
	sed -i 's/^OPTIONS=.*/OPTIONS="flush_ms=1500"/' /etc/tether/server.conf
	cat >>/etc/tether/exports <<-'EXPORTS'
		3 /srv root_squash   # the client VM
	EXPORTS
	check "tetherctl exportfs -c accepts /etc/tether/exports" tetherctl exportfs -c
	check "systemctl enable $UNIT (offline)" systemctl enable $UNIT
	check "systemctl is-enabled $UNIT (offline): enabled" eval '[ "$(systemctl is-enabled $UNIT)" = enabled ]'
	check "the next boot's set-up: machine id, hostname, TCG timeouts, tether-test.service enabled" \
		systemd_boot_setup server
}

boot2() {
	local o st=/sys/kernel/tether_server/state
	check_systemd_boot
	check "/srv is the data disk, mounted from /etc/fstab (srv.mount)" eval \
		'systemctl is-active -q srv.mount && [ "$(findmnt -n -o LABEL /srv)" = tetherdata ]'
	check "tether_server came from /lib/modules/$KVER/extra (modprobe)" eval \
		'[ "$(modinfo -n tether_server)" = /lib/modules/$KVER/extra/tether_server.ko ] && grep -q "^tether_server " /proc/modules'
	check "its shadow_path is the installed tether-shadow" \
		grep -qx /usr/libexec/tether/tether-shadow /sys/module/tether_server/parameters/shadow_path
	check "its export root and clients are /etc/tether/exports'" eval \
		'[ "$(cat /sys/module/tether_server/parameters/root)" = /srv ] && [ "$(cat /sys/module/tether_server/parameters/allowed_cids)" = 3 ]'
	check "the module's export table (/sys/kernel/tether_server/exports): CID 3 at /srv" \
		grep -qE '^3 /srv ' /sys/kernel/tether_server/exports
	# The Rust parameters are not in /sys/module: the module's state file shows them.
	check "its flush_ms is server.conf's OPTIONS (1500), it authenticates with /etc/tether/key (sysfs state)" \
		eval '[ "$(key $st flush_ms)" = 1500 ] && [ "$(key $st auth)" = 1 ]'
	o=$(tetherctl status 2>&1)
	echo "$o"
	check "tetherctl status (server) shows the listening module" eval 'grep -q "listening:       port" <<<"$o"'

	check "the client's service connected and its tethered program ran" wait_until 300 test -e /shared/boot2-client-connected
	o=$(tetherctl status 2>&1)
	echo "$o"
	check "tetherctl status (server) shows the client's connected session" eval \
		'grep -qE "session [0-9]+: +client CID 3, connected" <<<"$o"'
	# docs/DESIGN.md "Session cgroups": outside systemd's units, at the hierarchy's root.
	check "the session's cgroup is /sys/fs/cgroup/tether/session-N in systemd's hierarchy" \
		eval 'ls -d /sys/fs/cgroup/tether/session-*'

	echo "5 /srv root_squash   # added for systemctl reload" >>/etc/tether/exports
	check "systemctl reload $UNIT (tetherctl exportfs -r) adds an exports line to the table" eval \
		'systemctl reload $UNIT && grep -qE "^5 /srv " /sys/kernel/tether_server/exports'
	sed -i '/^5 /d' /etc/tether/exports
	check "systemctl reload $UNIT removes it again, CID 3's entry stays" eval \
		'systemctl reload $UNIT && ! grep -qE "^5 " /sys/kernel/tether_server/exports && grep -qE "^3 /srv " /sys/kernel/tether_server/exports'
	check "$UNIT is still active after the reloads" systemctl is-active -q $UNIT
	cat /sys/kernel/tether_server/exports
	touch /shared/boot2-server-checked

	check "the client stopped its service" wait_until 240 test -e /shared/boot2-client-done
	check_systemd_stop tether_server
}

case ${INSTALL_BOOT:-1} in
1) boot1 ;;
2) boot2 ;;
*) nok "INSTALL_BOOT=$INSTALL_BOOT: 1 or 2" ;;
esac
