#!/bin/bash
# Client VM (CID 3) role of tests/torture.sh: crash torture. tether_client.ko was loaded by
# qemu/guest-init.sh (CLIENT_PARAMS: server_cid=4 servers=4,5). Iteration 0 is a control:
# tethered, no kill. For iteration i = 1, 2, ...:
# runs tests/build/torture i untethered in /tmp/ref/i (the crash-free reference: its stdout
# and manifest go to /out/ref-i.out, ref-i.manifest), then the same tethered (a marked
# bash runs it on /torture/i, i.e. on the server's data disk) while it asks the host to
# kill the server VM at random points: once connected, wait 0.2-3 s, write /out/kill-N; the
# host SIGKILLs the running server's QEMU and boots a replacement (CID 4, or CID 5 = "server
# B" for a failover) on the same disk, then writes /out/booted-N ("n= name= cid=
# failover= up="). The client must notice (state leaves connected), reconnect and replay;
# the tethered run must exit 0 and print exactly the reference stdout. Iterations go on
# until TORTURE_KILLS (20) kill points have happened. The host then compares the server's
# final tree with the reference manifests. Results in /out/results.
# Env: TORTURE_KILLS (20), TORTURE_ROUNDS (torture's default), TORTURE_RUN_S (300: limit
# of one tethered run, not counting the outages of its kills), TORTURE_RANDOM (the kill schedule's seed; default: from the clock).
. /tether/tests/vm/lib.sh
set -u
D=/sys/kernel/debug/tether_client
T=/tether/tests/build/torture
BASHM=/tmp/bash-marked
KILLS=${TORTURE_KILLS:-20}
ROUNDS=${TORTURE_ROUNDS:-}
RUN_S=${TORTURE_RUN_S:-300}
RECONNECT_S=${TORTURE_RECONNECT_S:-120}
c() { key $D/state "$1"; }
connected() { [ "$(c state)" = connected ]; }
now_s() { date +%s; }
# A module without the servers= parameter only ever reconnects to server_cid (4): after a
# failover to CID 5 it cannot, until the next kill brings CID 4 back.
has_servers=0
[ -e /sys/module/tether_client/parameters/servers ] && has_servers=1
seed=${TORTURE_RANDOM:-$(($(date +%s%N) % 32768))}
RANDOM=$seed
echo "# kill schedule seed TORTURE_RANDOM=$seed, kills=$KILLS, servers= parameter: $has_servers"

check "tether_client loaded" grep -q '^tether_client ' /proc/modules
check "client connects within 60 s" wait_until 60 connected
cp /bin/bash $BASHM && setfattr -n trusted.tether.loader -v 1 $BASHM
check "loader flag set on the marked bash" getfattr -n trusted.tether.loader $BASHM
mkdir -p /tmp/ref
rep0=$(c replays) div0=$(c divergences)

kills=0 fails_in_row=0 i=0 skip_wait=0
# same I : the tethered run of iteration I printed the reference's stdout
same() { cmp -s /out/ref-$1.out /out/teth-$1.out; }
# reference I : the crash-free run of iteration I, untethered on the client's tmpfs: its
# stdout and manifest in /out
reference() {
	local rc=0
	timeout 120 $T $1 /tmp/ref/$1 $ROUNDS >/out/ref-$1.out 2>/out/ref-$1.err || rc=$?
	if [ $rc != 0 ]; then
		nok "iteration $1: the crash-free reference run exits 0 (exit $rc: $(head -c 300 /out/ref-$1.err))"
		return 1
	fi
	$T --manifest /tmp/ref/$1 >/out/ref-$1.manifest.tmp && mv /out/ref-$1.manifest.tmp /out/ref-$1.manifest
	rm -rf /tmp/ref/$1
}

# Iteration 0, the control: tethered without a kill (and its time: the cost of one run).
reference 0 || exit 1
start=$(now_ms)
rc=0
timeout "$RUN_S" $BASHM -c "exec $T 0 /torture/0 $ROUNDS" >/out/teth-0.out 2>/out/teth-0.err || rc=$?
echo $rc >/out/teth-0.rc
echo 0 >>/out/iterations
sed 's/^/#   stderr: /' /out/teth-0.err
check "iteration 0 (control, no kill): tethered run exits 0 with the untethered run's stdout (exit $rc, $(( ($(now_ms) - start) / 1000 )) s)" \
	eval '[ $rc = 0 ] && same 0'
# kill_point : ask the host to kill the server, follow the client through the outage.
kill_point() {
	local n=$((kills + 1)) t0 t1 b name cid fo up pbv was
	pbv=$(c peer_boot_verifier)
	was=$(c state)
	t0=$(now_ms) kp_t0=$t0
	touch /out/kill-$n
	kills=$n
	if ! wait_until 30 eval '! connected'; then
		nok "kill $n: the client notices the crash within 30 s (state=$(c state))"
		return 1
	fi
	t1=$(now_ms)
	if ! wait_until 300 test -e /out/booted-$n; then
		nok "kill $n: the host boots a replacement server within 300 s"
		return 1
	fi
	b=$(cat /out/booted-$n)
	name=$(sed -n 's/.*name=\([^ ]*\).*/\1/p' <<<"$b") cid=$(sed -n 's/.*cid=\([0-9]*\).*/\1/p' <<<"$b")
	fo=$(sed -n 's/.*failover=\([01]\).*/\1/p' <<<"$b") up=$(sed -n 's/.*up=\([01]\).*/\1/p' <<<"$b")
	if [ "$up" != 1 ]; then
		nok "kill $n: replacement $name (cid $cid) comes up"
		return 1
	fi
	if [ "$fo" = 1 ] && [ $has_servers = 0 ]; then
		skip "kill $n: failover to $name (cid $cid): client reconnects and replays" \
			"tether_client has no servers= parameter: it waits for cid 4 (the next kill brings it back)"
		skip_wait=1
		return 0
	fi
	if wait_until "$RECONNECT_S" eval 'connected && [ "$(c peer_boot_verifier)" != "$pbv" ]'; then
		if [ "$was" = connected ]; then was="noticed in $((t1 - t0)) ms"; else was="while $was"; fi
		ok "kill $n: $([ "$fo" = 1 ] && echo failover || echo reboot) to $name (cid $cid): $was, reconnected $(( ($(now_ms) - t1) / 1000 )) s later"
	else
		nok "kill $n: $([ "$fo" = 1 ] && echo failover || echo reboot) to $name (cid $cid): client reconnects within $RECONNECT_S s (state=$(c state))"
		return 1
	fi
}

while [ $kills -lt $KILLS ] && [ $fails_in_row -lt 3 ]; do
	i=$((i + 1))
	# The crash-free reference, untethered, on the client's tmpfs.
	reference $i || break
	# The same, tethered, with kill points.
	k0=$kills
	start=$(now_s) deadline=$(($(now_s) + RUN_S)) out_s=0
	$BASHM -c "exec $T $i /torture/$i $ROUNDS" >/out/teth-$i.out 2>/out/teth-$i.err &
	p=$!
	while [ $kills -lt $KILLS ] && ! gone $p && [ "$(now_s)" -lt $deadline ]; do
		if [ $skip_wait = 1 ]; then
			skip_wait=0
		else
			if ! wait_until "$RECONNECT_S" connected; then
				echo "# iteration $i: not connected after $RECONNECT_S s (state=$(c state)): a kill to get a server back"
			else
				ms=$((200 + RANDOM % 2801))
				sleep "$((ms / 1000)).$(printf %03d $((ms % 1000)))"
				gone $p && break
			fi
		fi
		if kill_point; then fails_in_row=0; else fails_in_row=$((fails_in_row + 1)); fi
		# the run's deadline moves by the outage (kill request to reconnection)
		out_s=$((out_s + ($(now_ms) - kp_t0) / 1000))
		deadline=$((deadline + ($(now_ms) - kp_t0) / 1000))
		[ $fails_in_row -lt 3 ] || break
	done
	left=$((deadline - $(now_s)))
	rc=0
	reap $p $((left > 10 ? left : 10)) >&2 || rc=$?
	echo $rc >/out/teth-$i.rc
	echo "# iteration $i: $((kills - k0)) kills, exit $rc, $(($(now_s) - start)) s ($out_s s of them in outages)"
	sed 's/^/#   stderr: /' /out/teth-$i.err
	if [ $rc = 0 ] && same $i; then
		ok "iteration $i: tethered run exits 0 with the crash-free run's stdout ($((kills - k0)) kills during it)"
	else
		nok "iteration $i: tethered run exits 0 with the crash-free run's stdout ($((kills - k0)) kills during it; exit $rc; $(head -c 400 /out/teth-$i.err | tr '\n' ' ')$(same $i || echo '; stdout differs'))"
		diff /out/ref-$i.out /out/teth-$i.out >&2
	fi
	echo $i >>/out/iterations
done
check "$KILLS kill points done ($kills)" test "$kills" = "$KILLS"
check "connected at the end" wait_until "$RECONNECT_S" connected
echo "# replays=$(($(c replays) - rep0)) divergences=$(($(c divergences) - div0))"
check "no replay divergences ($(($(c divergences) - div0)))" test "$(c divergences)" = "$div0"
# Every tethered process has exited (or was reaped above): none may be left in the module.
check "no tethered task left ($(key $D/tasks tethered) in $D/tasks)" test "$(key $D/tasks tethered)" = 0
grep -E '^(state|connects|disconnects|replays|divergences|flushed_up_to|verifier_changes)=' $D/state
touch /out/client-done
