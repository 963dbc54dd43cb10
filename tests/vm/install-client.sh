#!/bin/bash
# Client VM (CID 3) role of tests/install.sh: installs what `make install DESTDIR=` staged
# in /shared/stage, configures /etc/tether (client.conf, tethered), starts the client the
# way tether-client.service does (its ExecStart, read from the installed unit: the image
# has no systemd), runs the configured program tethered (it sees the server's export), and
# stops the service with the unit's ExecStop. Results in /out/results.
. /tether/tests/vm/lib.sh
set -u
UNIT=/usr/lib/systemd/system/tether-client.service
unit_cmd() { sed -n "s/^$1=//p" $UNIT | head -n 1; }
APP=/usr/local/bin/tapp

check "install: the staged files copy into / (make install DESTDIR=)" \
	eval 'tar -C /shared/stage -cf - . | tar -C / -xf - --keep-directory-symlink --no-overwrite-dir'
KVER=$(cat /shared/kver)
check "depmod -a $KVER finds the modules in /lib/modules/$KVER/extra" eval \
	"depmod -a $KVER && grep -q '^extra/tether_client.ko:' /lib/modules/$KVER/modules.dep"
cp /shared/key /etc/tether/key && chmod 600 /etc/tether/key
mkdir -p /usr/local/bin && cp /bin/bash $APP
echo "SERVER_CID=${SERVER_CID:-4}" >>/etc/tether/client.conf
echo "$APP" >>/etc/tether/tethered
check "the server VM is up (tether-server.service started)" wait_until 240 test -e /shared/server-up
start=$(unit_cmd ExecStart)
check "tether-client.service ExecStart ($start) loads the module" eval "$start"
check "tether_client came from /lib/modules/$KVER/extra (modprobe)" eval \
	'[ "$(modinfo -n tether_client)" = /lib/modules/$KVER/extra/tether_client.ko ] && grep -q "^tether_client " /proc/modules'
check "the program in /etc/tether/tethered is marked" tetherctl marked $APP
check "tetherctl status: connected to the server within 30 s" wait_until 30 eval \
	'tetherctl status 2>/dev/null | grep -q "connected to server CID ${SERVER_CID:-4}"'
tetherctl status
o=$(timeout 60 $APP -c 'read -r h </etc/hostname; echo "$h"' 2>&1)
echo "tethered: $o"
check "the marked program runs tethered: its /etc/hostname is the server export's" \
	eval '[ "$o" = tether-install-export ]'
check "local: this VM's own /etc/hostname is not the export's" eval '[ "$(cat /etc/hostname 2>/dev/null)" != tether-install-export ]'
touch /shared/client-connected
check "the server saw the session" wait_until 60 test -e /shared/server-checked
stop=$(unit_cmd ExecStop)
check "tether-client.service ExecStop ($stop) unloads the module" eval "$stop && ! grep -q '^tether_client ' /proc/modules"
touch /shared/client-done /out/client-done
