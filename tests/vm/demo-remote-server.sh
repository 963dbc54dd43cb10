#!/bin/bash
# Server VM role of qemu/demo-remote.sh: the data disk becomes the export root /srv with a
# few files (/srv/etc/hostname = tether-server, a home directory, a small source tree),
# tether_server.ko is loaded with root=/srv, then the client's requests (show what is on
# the server's disk) are run until the client is done.
. /tether/tests/vm/lib.sh
. /tether/tests/vm/remote-lib.sh
set -u
mkdir -p /srv "$CMD"
mount -t ext4 /dev/vdb /srv || { echo "cannot mount the data disk"; exit 1; }
mkdir -p /srv/etc /srv/tmp /srv/home/demo /srv/src/tether-demo/lib
chmod 1777 /srv/tmp
echo tether-server >/srv/etc/hostname
printf 'root:x:0:0:root:/root:/bin/sh\ndemo:x:1000:1000:demo:/home/demo:/bin/sh\n' >/srv/etc/passwd
printf 'root:x:0:\ndemo:x:1000:\n' >/srv/etc/group
echo "This home directory lives on the server's data disk." >/srv/home/demo/README
cat >/srv/src/tether-demo/main.c <<'EOF'
#include <stdio.h>
#include "lib/util.h"

int main(void)
{
	printf("%s\n", greeting());
	return 0;
}
EOF
cat >/srv/src/tether-demo/lib/util.h <<'EOF'
const char *greeting(void);
EOF
cat >/srv/src/tether-demo/lib/util.c <<'EOF'
#include "util.h"

const char *greeting(void)
{
	return "hello from a tethered build tree";
}
EOF
printf 'demo: main.c lib/util.c\n\tcc -o $@ main.c lib/util.c\n' >/srv/src/tether-demo/Makefile
chown -R 1000:1000 /srv/home/demo
sync
# The secure defaults: root squash, an explicit export root, the run's key (/etc/tether/key).
insmod /tether/server_comm/tether_server.ko allowed_cids=3 \
	shadow_path=/tether/userspace-tools/tether-shadow root=/srv ||
	{ echo "insmod tether_server failed"; exit 1; }
touch /shared/server-up
serve_requests 400 /shared/client-done
sleep 1
rmmod tether_server
umount /srv
