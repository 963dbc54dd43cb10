#!/bin/bash
# Client VM role of qemu/demo-remote.sh: marks a copy of bash with trusted.tether.loader and
# runs a scripted session in it, printing every command before its output. Lines marked
# "client#" run untethered on the client, "tethered$" in the marked bash on the client
# (file system on the server), "server#" on the server VM (asked through /shared/cmd).
. /tether/tests/vm/lib.sh
. /tether/tests/vm/remote-lib.sh
set -u
D=/sys/kernel/debug/tether_client
# The stable view (sysfs); debugfs ($D) keeps the live log and the bench.
SYS=/sys/kernel/tether_client

say() { printf '\n=== %s\n' "$*"; }
# local_cmd CMD : run CMD untethered on the client.
local_cmd() { printf 'client# %s\n' "$1"; timeout 30 bash -c "$1" 2>&1; }
# server_cmd CMD : run CMD on the server VM.
server_cmd() { printf 'server# %s\n' "$1"; srv 30 "$1" 2>&1; }
# tethered LINE... : one tethered bash of user demo (uid 1000) runs the lines in order,
# echoing each one first (so cd and variables carry over from line to line).
tethered() {
	printf '%s\n' "$@" | timeout -k 5 60 setpriv --reuid=1000 --regid=1000 --clear-groups $BASHM -c '
		while IFS= read -r line; do
			printf "tethered\$ %s\n" "$line"
			eval "$line"
		done' 2>&1
}

say "client VM (cid $CID): waiting for the server VM (cid 4) to load tether_server.ko"
wait_until 150 test -e /shared/server-up || { echo "server not up"; exit 1; }
local_cmd "insmod /tether/client_proxy/tether_client.ko server_cid=4"
wait_until 30 grep -qx state=connected $SYS/state || { echo "not connected"; cat $SYS/state; exit 1; }
local_cmd "grep -E '^(state|server_cid|session)=' $SYS/state"

say "untethered, this is the client's own file system"
local_cmd "cat /proc/sys/kernel/hostname; cat /etc/hostname; ls /"

say "mark a copy of bash: exec of a file carrying trusted.tether.loader tethers the process"
local_cmd "cp /bin/bash $BASHM && setfattr -n trusted.tether.loader -v 1 $BASHM && getfattr -d -m trusted $BASHM"

say "a tethered bash session of user demo (uid 1000): its file system is the server's export root (/srv there)"
tethered 'echo "this shell is pid $$, uid $(id -u)"' \
	'cat /proc/sys/kernel/hostname   # /proc stays local: the client kernel' \
	'cat /etc/hostname               # the server: /srv/etc/hostname' \
	'ls /' \
	'cd /home/demo && pwd && cat README' \
	'echo "written on the client by tethered pid $$ at $(date -u +%T)" > from-client.txt' \
	'ls -l; cat from-client.txt'

say "the file the client wrote is on the server's disk"
server_cmd "ls -l /srv/home/demo; cat /srv/home/demo/from-client.txt; sha256sum /srv/home/demo/from-client.txt"

say "a tar/gzip round trip of a small source tree, run tethered"
tethered 'cd /src && find tether-demo | sort' \
	'tar -czf /home/demo/tether-demo.tar.gz tether-demo && ls -l /home/demo/tether-demo.tar.gz' \
	'tar -tzvf /home/demo/tether-demo.tar.gz' \
	'mkdir -p /home/demo/unpacked && tar -xzf /home/demo/tether-demo.tar.gz -C /home/demo/unpacked; echo "tar -x exit status $?"' \
	'diff -r /src/tether-demo /home/demo/unpacked/tether-demo && echo "round trip: identical trees"' \
	'sha256sum tether-demo/main.c /home/demo/unpacked/tether-demo/main.c'

say "the same files, seen on the server"
server_cmd "cd /srv/home/demo && gzip -t tether-demo.tar.gz && echo 'gzip -t: ok' && ls -lR unpacked && sha256sum /srv/src/tether-demo/main.c unpacked/tether-demo/main.c"

say "the session is over: no tethered task left, the modules unload"
wait_until 10 grep -qx tethered=0 $SYS/tasks
local_cmd "cat $SYS/tasks"
local_cmd "rmmod tether_client && echo 'tether_client unloaded'"
touch /shared/client-done /out/client-done
