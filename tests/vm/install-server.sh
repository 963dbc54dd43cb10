#!/bin/bash
# Server VM (CID 4) role of tests/install.sh: installs what `make install DESTDIR=` staged
# in /shared/stage, configures /etc/tether, starts the server the way tether-server.service
# does (its ExecStart, read from the installed unit: the image has no systemd), checks the
# module came from /lib/modules/KVER/extra with the installed shadow, serves the client,
# then stops it with the unit's ExecStop. Results in /out/results.
. /tether/tests/vm/lib.sh
set -u
UNIT=/usr/lib/systemd/system/tether-server.service
# unit_cmd KEY : the unit's KEY= command line (ExecStart, ExecStop, ExecReload)
unit_cmd() { sed -n "s/^$1=//p" $UNIT | head -n 1; }

check "install: the staged files copy into / (make install DESTDIR=)" \
	eval 'tar -C /shared/stage -cf - . | tar -C / -xf - --keep-directory-symlink --no-overwrite-dir'
KVER=$(cat /shared/kver)
check "depmod -a $KVER finds the modules in /lib/modules/$KVER/extra" eval \
	"depmod -a $KVER && grep -q '^extra/tether_server.ko:' /lib/modules/$KVER/modules.dep"
check "the installed tetherctl is on PATH (/usr/sbin)" eval '[ "$(command -v tetherctl)" = /usr/sbin/tetherctl ]'
cp /shared/key /etc/tether/key && chmod 600 /etc/tether/key

mkdir -p /srv
check "data disk mounts at /srv (the export root)" mount -t ext4 /dev/vdb /srv
mkdir -p /srv/etc /srv/tmp && chmod 1777 /srv/tmp
echo tether-install-export >/srv/etc/hostname
cat >>/etc/tether/exports <<'EXPORTS'
3 /srv root_squash   # the client VM
EXPORTS
check "tetherctl exportfs -c accepts /etc/tether/exports" tetherctl exportfs -c
start=$(unit_cmd ExecStart)
check "tether-server.service ExecStart ($start) loads the module" eval "$start"
check "tether_server came from /lib/modules/$KVER/extra (modprobe)" eval \
	'[ "$(modinfo -n tether_server)" = /lib/modules/$KVER/extra/tether_server.ko ] && grep -q "^tether_server " /proc/modules'
check "its shadow_path is the installed tether-shadow" \
	grep -qx /usr/libexec/tether/tether-shadow /sys/module/tether_server/parameters/shadow_path
check "its export root and clients are /etc/tether/exports'" eval \
	'[ "$(cat /sys/module/tether_server/parameters/root)" = /srv ] && [ "$(cat /sys/module/tether_server/parameters/allowed_cids)" = 3 ]'
check "tetherctl exportfs -r (systemctl reload) applies the same table" tetherctl exportfs -r
o=$(tetherctl status 2>&1)
echo "$o"
check "tetherctl status (server) shows the listening module" eval 'grep -q "listening:       port" <<<"$o"'
touch /shared/server-up

check "the client connected and ran its tethered shell" wait_until 240 test -e /shared/client-connected
o=$(tetherctl status 2>&1)
echo "$o"
check "tetherctl status (server) shows the client's connected session" eval \
	'grep -qE "session [0-9]+: +client CID 3, connected" <<<"$o"'
touch /shared/server-checked
check "the client stopped its service" wait_until 240 test -e /shared/client-done
stop=$(unit_cmd ExecStop)
check "tether-server.service ExecStop ($stop) unloads the module" eval \
	"wait_until 30 eval '$stop' && ! grep -q '^tether_server ' /proc/modules"
umount /srv
