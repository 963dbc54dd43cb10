#!/bin/bash
# Client VM role of tests/many.sh (CID 3, 6, 7, ...: one of several clients of one server).
# qemu/guest-init.sh loaded tether_client.ko (CLIENT_PARAMS). Marks a bash, checks that its
# export is its own (/whoami, nothing of the other clients), then runs crash-torture
# iterations (tests/fsops/torture.c): each untethered first on the client's tmpfs (the
# crash-free reference), then tethered in /t/I on the server, its stdout and its tree (the
# torture's manifest, read back through tether) equal to the reference's. Iteration 1
# writes /out/running: the host kills the server once every client has; iterations go on
# until the replacement serves (/shared/server-booted) and one more has run after it.
# Results in /out/results.
. /tether/tests/vm/lib.sh
set -u
D=/sys/kernel/debug/tether_client
# The stable view (sysfs); debugfs ($D) keeps the live log and the bench.
SYS=/sys/kernel/tether_client
c() { key $SYS/state "$1"; }
connected() { [ "$(c state)" = connected ]; }
cp /tether/tests/build/torture /usr/bin/tether-torture
T=/usr/bin/tether-torture
BASHM=/tmp/bash-marked
ROUNDS=${MANY_ROUNDS:-12}
me="cid $CID"

check "$me: tether_client loaded, connected within 180 s" wait_until 180 connected
cp /bin/bash $BASHM && setfattr -n trusted.tether.loader -v 1 $BASHM
# Its export root is its own: the marker it writes at / is the only one there.
o=$(timeout 60 $BASHM -c "echo $CID >/whoami && cat /whoami && ls -A /" 2>&1)
check "$me: its export root holds its own marker only ($(echo $o))" eval '[ "$o" = "$CID"$'"'"'\n'"'"'whoami ]'
o=$(timeout 60 $BASHM -c 'stat -c %u:%g /whoami; id -u' 2>&1)
check "$me: root is squashed on the server (its file is $(head -n1 <<<"$o"))" eval '[ "$(head -n1 <<<"$o")" = 65534:65534 ]'

check "$me: its workload directory /t" timeout 60 $BASHM -c 'mkdir -p /t'
rep0=$(c replays) pbv0=$(c peer_boot_verifier) i=0 booted_at= after=0
while [ $i -lt 30 ]; do
	i=$((i + 1))
	rm -rf /tmp/ref && mkdir -p /tmp/ref
	timeout 300 $T $i /tmp/ref/$i $ROUNDS >/out/ref-$i.out 2>/out/ref-$i.err ||
		{ nok "$me: iteration $i: the crash-free run exits 0"; break; }
	$T --manifest /tmp/ref/$i >/out/ref-$i.manifest
	[ -e /shared/server-booted ] && after=1
	[ $i = 1 ] && touch /out/running
	t0=$(now_ms) rc=0
	timeout 900 $BASHM -c "exec $T $i /t/$i $ROUNDS" >/out/teth-$i.out 2>/out/teth-$i.err || rc=$?
	sed 's/^/#   stderr: /' /out/teth-$i.err | head -n 5
	check "$me: iteration $i: tethered run exits 0 with the crash-free run's stdout (exit $rc, $(( ($(now_ms) - t0) / 1000 )) s)" \
		eval '[ $rc = 0 ] && cmp -s /out/ref-$i.out /out/teth-$i.out'
	timeout 300 $BASHM -c "exec $T --manifest /t/$i" >/out/teth-$i.manifest 2>&1
	check "$me: iteration $i: its tree on the server equals the crash-free run's ($(wc -l </out/ref-$i.manifest) entries)" \
		cmp -s /out/ref-$i.manifest /out/teth-$i.manifest
	if [ -z "$booted_at" ] && [ -e /shared/server-booted ]; then
		booted_at=$(cat /shared/server-booted)
	fi
	[ $after = 1 ] && break
done
check "$me: the server was replaced while it ran (iteration $i)" test -n "$booted_at"
check "$me: it replayed its state on the new server (replays $rep0 -> $(c replays), verifier changed)" \
	eval '[ "$(c replays)" -gt "$rep0" ] && [ "$(c peer_boot_verifier)" != "$pbv0" ]'
echo "# $me: $(grep -c 'connected to server' /out/dmesg.log) connections; last: $(grep 'connected to server' /out/dmesg.log | tail -n1)"
o=$(timeout 60 $BASHM -c 'cat /whoami; ls -A /' 2>&1)
check "$me: after the crash its export is still its own ($(echo $o))" eval '[ "$(head -n1 <<<"$o")" = "$CID" ] && [ "$(grep -c . <<<"$o")" = 3 ]'
check "$me: no tethered task left" wait_until 30 eval '[ "$(key $SYS/tasks tethered)" = 0 ]'
check "$me: rmmod tether_client" rmmod tether_client
touch /out/client-done
