#!/bin/bash
# Many clients on one server, KTAP on stdout (same shape as tests/torture.sh). Boots the
# relay, a server VM (srv0, CID 4, fresh data disk, role tests/vm/many-server.sh: one export
# root per client, /srv/cCID, root squashed) and MANY_CLIENTS client VMs (CIDs 3, 6, 7, ...;
# role tests/vm/many-client.sh), all tethered at once. Each client runs crash-torture
# iterations (tests/fsops/torture.c) tethered, each compared with its untethered
# crash-free run. Once every client is inside a tethered run (RUN/NAME/running), the server
# VM is SIGKILLed and a replacement boots on the same disk (srv1; /shared/server-booted):
# every client must recover on its own, see only its own export and identities, and finish
# with trees equal to its crash-free runs. Heartbeats are 2 s here: five TCG VMs share two
# cores. Every VM's dmesg must be free of warnings. Last line "# totals: pass=P fail=F
# skip=S"; exit 1 on any failure.
# Env: MANY_CLIENTS (4), MANY_NOBUILD=1 skips the build step, MANY_ROUNDS (torture rounds
# per iteration, 12), MANY_TCP=1: the clients reach the server over TCP instead of vsock,
# every VM on one IPv4 segment (TETHER_NET=hub, tests/hostlib.sh: the server 10.0.0.1 on
# tcp_port 7777, client CID at 10.0.0.(10 + CID), an export entry for each address).
. "$(dirname "$0")/hostlib.sh"

N=${MANY_CLIENTS:-4}
[ "$N" -ge 1 ] && [ "$N" -le 6 ] || die "MANY_CLIENTS=$N is outside 1..6"
t0=$(date +%s)
[ "${MANY_NOBUILD:-0}" = 1 ] || prepare >&2
for f in "${KMODS[@]}" userspace-tools/tether-shadow tests/build/torture; do
	[ -e "$TETHER_ROOT/$f" ] || die "$f not built"
done
t_build=$(($(date +%s) - t0))
# Client VM names and CIDs: "client" is CID 3 (ktap_gather's client), then client6, ...
CIDS=(3) NAMES=(client)
for ((i = 1; i < N; i++)); do CIDS+=($((5 + i))) NAMES+=("client$((5 + i))"); done
HB_MANY=2000
SERVER_PARAMS="port=$PORT heartbeat_ms=$HB_MANY max_frame=1048576 split=3584 shadow_path=/tether/userspace-tools/tether-shadow root=/srv"
# Each client's address for its export entry (CID:ADDR), and how it reaches the server.
PEERS= REACH="server_cid=$SERVER_CID port=$PORT" name=many
if [ "${MANY_TCP:-0}" = 1 ]; then
	TETHER_NET=hub SERVER_PARAMS+=" tcp_port=$PORT" REACH="servers=tcp:$NET_SERVER_IP:$PORT" name=many-tcp
	for c in "${CIDS[@]}"; do PEERS+="$c:$(net_ip "$c") "; done
else
	for c in "${CIDS[@]}"; do PEERS+="$c:$c "; done
fi
export VM_TIMEOUT=${VM_TIMEOUT:-1500}
RELAY_CIDS="${CIDS[*]} 4" RUN_TIMEOUT=$((VM_TIMEOUT + 300)) start_run $name
log "run directory: $RUN; clients: ${NAMES[*]} (CIDs ${CIDS[*]})"
set +e

VMS=(srv0)
boot srv0 server $SERVER_CID BOOT_INDEX=0 ROLE_SCRIPT=/tether/tests/vm/many-server.sh \
	"SERVER_PARAMS='$SERVER_PARAMS'" "MANY_PEERS='$PEERS'"
wait_file 240 "$RUN/srv0/serving" "${VMPID[srv0]}" || log "srv0 did not get ready"
for ((i = 0; i < N; i++)); do
	VMS+=("${NAMES[$i]}")
	boot "${NAMES[$i]}" client "${CIDS[$i]}" ROLE_SCRIPT=/tether/tests/vm/many-client.sh \
		"CLIENT_PARAMS='$REACH heartbeat_ms=$HB_MANY split=3584 reconnect_max_ms=2000'" \
		MANY_ROUNDS="${MANY_ROUNDS:-12}"
done

# --- the kill: once every client is inside a tethered run -------------------------------
all() { local n; for n in "${NAMES[@]}"; do [ -e "$RUN/$n/$1" ] || return 1; done; }
alive() { local n; for n in "${NAMES[@]}"; do kill -0 "${VMPID[$n]}" 2>/dev/null && return 0; done; return 1; }
end=$(($(date +%s) + VM_TIMEOUT))
killed=0
while alive && [ "$(date +%s)" -lt $end ]; do
	if [ $killed = 0 ] && all running; then
		sleep 3
		log "every client is in a tethered run: SIGKILL srv0"
		crash_vm srv0
		touch "$RUN/srv0.killed"
		killed=1
		VMS+=(srv1)
		boot srv1 server $SERVER_CID BOOT_INDEX=1 ROLE_SCRIPT=/tether/tests/vm/many-server.sh \
			"SERVER_PARAMS='$SERVER_PARAMS'" "MANY_PEERS='$PEERS'"
		if wait_file 240 "$RUN/srv1/serving" "${VMPID[srv1]}"; then
			date +%s%3N >"$RUN/server-booted.tmp" && mv "$RUN/server-booted.tmp" "$RUN/server-booted"
			log "srv1 serves"
		else
			log "srv1 did not get ready"
		fi
	fi
	sleep 0.5
done
for n in "${NAMES[@]}"; do wait_vm "$n" 10; done
SRV=srv0
[ $killed = 1 ] && SRV=srv1
touch "$RUN/$SRV/stop"
wait_vm "$SRV" 120

# --- KTAP ---------------------------------------------------------------------------------
[ $killed = 1 ] && add ok "host: every client was in a tethered run when the server was killed" ||
	add "not ok" "host: every client was in a tethered run when the server was killed (running: $(ls "$RUN"/*/running 2>/dev/null | wc -l) of $N)"
for n in "${NAMES[@]:1}"; do
	if [ -e "$RUN/$n/client-done" ]; then add ok "$n: test sequence completed"
	else add "not ok" "$n: test sequence completed"; fi
done
ktap_gather
ktap_print
for n in "${NAMES[@]}"; do
	grep -h '^# ' "$RUN/$n/role.log" 2>/dev/null | head -n 20 | sed "s/^# /# $n: /"
done
echo "# boot-to-ready ms:$(for vm in "${VMS[@]}"; do printf ' %s=%s' "$vm" "$(boot_ms "$vm")"; done)"
echo "# many took $(($(date +%s) - t0)) s (build $t_build s); logs in $RUN (role.log, dmesg.log per VM)"
echo "# totals: pass=$pass fail=$fail skip=$skip"
[ $fail = 0 ]
