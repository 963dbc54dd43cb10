#!/bin/bash
# Crash torture, KTAP on stdout (same shape as tests/remote.sh). Boots the relay, a server
# VM (srv0, CID 4, fresh data disk = export root /srv, role tests/vm/torture-server.sh) and
# the client VM (CID 3, tests/vm/torture-client.sh). The client runs tests/build/torture
# (tests/fsops/torture.c) iterations tethered, each after an untethered crash-free
# reference run, and asks for server kills at random points (/out/kill-N). Here, on each:
# SIGKILL the running server VM's QEMU and boot a replacement on the same disk (srv1,
# srv2, ...; CID 4, or CID 5 = "server B", an HA failover, on every 4th kill and at least
# once, never on the last), then /out/booted-N. When the client is done: stop the last
# server (it unmounts the disk), dump /torture from the disk image with debugfs (no
# mount), and compare each iteration's tree with the reference manifest. Every VM's
# dmesg must be free of warnings. Last line "# totals: pass=P fail=F skip=S"; exit 1 on
# any failure.
# Fault points (server_comm/faults.rs): before the random kills the client runs fault cases
# that each arm a named crash point on the running server (/out/arm-K: debugfs control
# lines; here copied to the server's /out/arm once, its role script writes them and
# answers /out/armed, copied back as armed-K) or on the next server it asks for
# (/out/bootarm-N next to kill-N: that server loads with crash_at=POINT,CALL,N, armed
# before any client can reach it). A server that reset itself at its fault point is
# "killed" like the others (kill-N, /out/fault-N says which fault: never a failover);
# TORTURE_KILLS counts only the random kills.
# Env: TORTURE_KILLS (20) random kill points; TORTURE_ROUNDS (torture's default, 40) rounds per
# iteration; TORTURE_RANDOM (the client's kill schedule seed); TORTURE_FAULTS (the fault
# cases to run, default all: tests/vm/torture-client.sh); TORTURE_NOBUILD=1 skips the
# build step; VM_TIMEOUT / RUN_TIMEOUT (seconds; default from TORTURE_KILLS); TETHER_NET=0
# boots the VMs without their IPv4 link (tests/hostlib.sh: every server VM, srvN of CID 4
# or 5, is 10.0.0.1 on the same UDP ports, the client 10.0.0.2); TORTURE_TCP=1 runs the
# client over TCP on that link (servers=tcp:10.0.0.1: a failover server B has the same
# address; the servers listen on tcp_port=7777 with an export entry for the client's
# address, torture-server.sh) instead of vsock (servers=4,5).
. "$(dirname "$0")/hostlib.sh"

KILLS=${TORTURE_KILLS:-20}
t0=$(date +%s)
[ "${TORTURE_NOBUILD:-0}" = 1 ] || prepare >&2
for f in "${KMODS[@]}" userspace-tools/tether-shadow tests/build/torture; do
	[ -e "$TETHER_ROOT/$f" ] || die "$f not built"
done
host_pkgs e2fsprogs
t_build=$(($(date +%s) - t0))
export VM_TIMEOUT=${VM_TIMEOUT:-$((600 + (KILLS + 8) * 90))}
TETHER_NET=${TETHER_NET:-1}
TCP=${TORTURE_TCP:-0}
[ "$TCP" = 0 ] || [ "$TETHER_NET" = 1 ] || die "TORTURE_TCP=1 needs the VMs' network (TETHER_NET=1)"
if [ "$TCP" = 1 ]; then
	SERVER_PARAMS+=" tcp_port=$PORT" servers=tcp:$NET_SERVER_IP:$PORT name=torture-tcp
else
	servers=4,5 name=torture
fi
RUN_TIMEOUT=${RUN_TIMEOUT:-$((VM_TIMEOUT + 300))} start_run $name
log "run directory: $RUN"
set +e   # (qemu/lib.sh sets -e; from here on every failure is a test result)

VMS=() nsrv=0 failovers=0 kills=0 faults=0 narm=0 arming=
# The servers run with the secure defaults (tests/hostlib.sh): root squash (the client's root
# is nobody there, torture-server.sh gives it /srv/torture) and root=/srv.
# boot_server CID [CRASH_AT] : the next server VM (srvN) on the shared data disk, with fault
# point CRASH_AT (POINT,CALL,N) armed at load; sets SERVER, SCID.
boot_server() {
	SERVER=srv$nsrv SCID=$1
	VMS+=("$SERVER")
	boot "$SERVER" server "$SCID" BOOT_INDEX=$nsrv ROLE_SCRIPT=/tether/tests/vm/torture-server.sh \
		"SERVER_PARAMS='$SERVER_PARAMS${2:+ crash_at=$2}'" TORTURE_TCP=$TCP
	nsrv=$((nsrv + 1))
}
boot_server $SERVER_CID
wait_file 240 "$RUN/$SERVER/serving" "${VMPID[$SERVER]}" || log "$SERVER did not get ready"
VMS+=(client)
boot client client $CLIENT_CID ROLE_SCRIPT=/tether/tests/vm/torture-client.sh \
	"CLIENT_PARAMS='server_cid=$SERVER_CID servers=$servers port=$PORT heartbeat_ms=$HB split=3584 reconnect_max_ms=2000'" \
	TORTURE_KILLS="$KILLS" TORTURE_ROUNDS="${TORTURE_ROUNDS:-}" ${TORTURE_RANDOM:+TORTURE_RANDOM=$TORTURE_RANDOM} \
	${TORTURE_FAULTS+"TORTURE_FAULTS='$TORTURE_FAULTS'"}

# --- the kill driver ------------------------------------------------------------------
end=$(($(date +%s) + VM_TIMEOUT))
while kill -0 "${VMPID[client]}" 2>/dev/null && [ "$(date +%s)" -lt $end ]; do
	# The client's arm requests: to the running server, once; its answer back.
	if [ -z "$arming" ] && [ -e "$RUN/client/arm-$((narm + 1))" ]; then
		narm=$((narm + 1)) arming=$SERVER
		log "arm $narm: $SERVER: $(tr '\n' ';' <"$RUN/client/arm-$narm")"
		cp "$RUN/client/arm-$narm" "$RUN/$SERVER/arm.tmp" && mv "$RUN/$SERVER/arm.tmp" "$RUN/$SERVER/arm"
	fi
	if [ -n "$arming" ] && [ -e "$RUN/$arming/armed" ]; then
		mv "$RUN/$arming/armed" "$RUN/client/armed-$narm"
		arming=
	fi
	if [ -e "$RUN/client/kill-$((kills + 1))" ]; then
		kills=$((kills + 1))
		fo=0 fault=$(cat "$RUN/client/fault-$kills" 2>/dev/null) crash_at=$(cat "$RUN/client/bootarm-$kills" 2>/dev/null)
		rk=$((kills - faults))
		if [ -n "$fault" ]; then
			faults=$((faults + 1))
		elif [ $rk -lt "$KILLS" ] && { [ $((rk % 4)) = 0 ] || { [ $rk = $((KILLS - 1)) ] && [ $failovers = 0 ]; }; }; then
			fo=1 failovers=$((failovers + 1))
		fi
		if [ -n "$fault" ]; then
			log "kill $kills: fault $faults ($fault): $SERVER (cid $SCID): $(grep -a -o 'crash point .*' "$RUN/$SERVER/console.log" 2>/dev/null | tr -d '\r' | head -n 1 || echo 'no crash point reached')"
		else
			log "kill $kills: SIGKILL $SERVER (cid $SCID)"
		fi
		crash_vm "$SERVER"
		touch "$RUN/$SERVER.killed"
		arming=
		if [ $fo = 1 ]; then boot_server 5 "$crash_at"; else boot_server $SERVER_CID "$crash_at"; fi
		up=0
		wait_file 240 "$RUN/$SERVER/serving" "${VMPID[$SERVER]}" && up=1
		# A server armed at load may reach its fault point (the client's replay comes in
		# at once) before its role script says it serves: it served.
		[ $up = 1 ] || [ -z "$crash_at" ] || ! grep -aq 'crash point .* reached' "$RUN/$SERVER/console.log" || up=1
		log "kill $kills: $SERVER (cid $SCID, failover=$fo${crash_at:+, crash_at=$crash_at}) up=$up"
		echo "n=$kills name=$SERVER cid=$SCID failover=$fo up=$up" >"$RUN/client/booted-$kills.tmp"
		mv "$RUN/client/booted-$kills.tmp" "$RUN/client/booted-$kills"
	fi
	sleep 0.2
done
wait_vm client 10
touch "$RUN/$SERVER/stop"
wait_vm "$SERVER" 120

# --- the server's final tree, from the disk image ------------------------------------
IMG=$RUN/server-data.img
img_state=$(dumpe2fs -h "$IMG" 2>/dev/null | sed -n 's/^Filesystem state: *//p')
img_feat=$(dumpe2fs -h "$IMG" 2>/dev/null | sed -n 's/^Filesystem features: *//p')
if [ "$img_state" = clean ] && [[ $img_feat != *needs_recovery* ]]; then
	add ok "server data disk unmounted cleanly by the last server ($SERVER)"
else
	add "not ok" "server data disk unmounted cleanly by the last server ($SERVER): state '$img_state'${img_feat:+, features $img_feat}"
	# Not clean: replay its journal on a copy, so debugfs sees what a mount would.
	cp --sparse=always "$IMG" "$RUN/server-data-fsck.img"
	IMG=$RUN/server-data-fsck.img
	e2fsck -fy "$IMG" >"$RUN/e2fsck-fix.log" 2>&1
fi
if e2fsck -fn "$IMG" >"$RUN/e2fsck.log" 2>&1; then add ok "server data disk: e2fsck -fn finds no errors"
else add "not ok" "server data disk: e2fsck -fn finds no errors (see $RUN/e2fsck.log): $(grep -v '^Pass\|^e2fsck\|^tetherdata' "$RUN/e2fsck.log" | head -n 3 | tr '\n' ' ')"; fi
rm -rf "$RUN/final"
mkdir -p "$RUN/final"
debugfs -R "rdump /torture $RUN/final" "$IMG" >"$RUN/rdump.log" 2>&1
mkdir -p "$RUN/final/torture"
mapfile -t iters < <(sort -n -u "$RUN/client/iterations" 2>/dev/null)
# The manifests of the dumped trees, by tests/build/torture in the toolchain chroot.
in_chroot /bin/sh -c 'for i in "$@"; do d=/cache/'"${RUN#"$CACHE"/}"'/final/torture/$i
	if [ -d "$d" ]; then /work/tests/build/torture --manifest "$d"; else echo "(missing: $d)"; fi >"$d.manifest" 2>&1
	done' sh "${iters[@]}" >"$RUN/manifest.log" 2>&1 ||
	log "computing the manifests failed, see $RUN/manifest.log"

# cmp_tree I : compare iteration I's server tree with the reference; sets nf nb lost differ extra
cmp_tree() {
	local ref=$RUN/client/ref-$1.manifest got=$RUN/final/torture/$1.manifest
	nf=$(awk '$2 == "f"' "$ref" 2>/dev/null | wc -l)
	nb=$(awk '$2 == "f" { b += $4 } END { print b + 0 }' "$ref" 2>/dev/null)
	# by path: only in the reference (lost), in both but different, only on the server (extra)
	local LC_ALL=C
	lost=$(join -v1 <(sort -k1,1 "$ref") <(sort -k1,1 "$got") | wc -l)
	extra=$(join -v2 <(sort -k1,1 "$ref") <(sort -k1,1 "$got") | wc -l)
	differ=$(join <(sort -k1,1 "$ref") <(sort -k1,1 "$got") |
		awk '$2 != $6 || $3 != $7 || $4 != $8 || $5 != $9' | wc -l)
	diff -u "$ref" "$got" >"$RUN/final/iteration-$1.diff" 2>&1
}
# t_*: all iterations; s_*: those whose tethered run exited 0 (a difference there is silent:
# the application saw nothing wrong); n_failed: tethered runs that did not exit 0.
t_lost=0 t_differ=0 t_extra=0 t_bytes=0 t_files=0 s_lost=0 s_differ=0 s_extra=0 s_bad=0 n_failed=0 bad_iters=()
for i in "${iters[@]}"; do
	cmp_tree "$i"
	t_lost=$((t_lost + lost)) t_differ=$((t_differ + differ)) t_extra=$((t_extra + extra))
	t_bytes=$((t_bytes + nb)) t_files=$((t_files + nf))
	rc=$(cat "$RUN/client/teth-$i.rc" 2>/dev/null || echo none)
	if [ "$rc" = 0 ]; then
		s_lost=$((s_lost + lost)) s_differ=$((s_differ + differ)) s_extra=$((s_extra + extra))
		why="the tethered run exited 0"
	else
		n_failed=$((n_failed + 1))
		why="the tethered run exited $rc"
	fi
	if [ -s "$RUN/client/ref-$i.manifest" ] && cmp -s "$RUN/client/ref-$i.manifest" "$RUN/final/torture/$i.manifest"; then
		add ok "iteration $i: server files equal the crash-free run: $nf files, $nb bytes"
	else
		add "not ok" "iteration $i: server files equal the crash-free run: $nf files, $nb bytes ($lost lost, $differ differ, $extra extra entries; $why)"
		bad_iters+=("$i")
		[ "$rc" = 0 ] && s_bad=$((s_bad + 1))
	fi
done
[ ${#iters[@]} -gt 0 ] || add "not ok" "at least one torture iteration ran"
if [ $((kills - faults)) = "$KILLS" ]; then add ok "host: $KILLS random kill points ($failovers failovers), $faults fault kills"
else add "not ok" "host: $KILLS random kill points ($((kills - faults)) done, $failovers failovers), $faults fault kills"; fi

# --- KTAP ---------------------------------------------------------------------------------
ktap_gather
ktap_print
# The first differences of (at most 8) bad iterations: the server's side (+, extra or
# changed entries) first, then the reference's (-, lost or changed).
for i in "${bad_iters[@]:0:8}"; do
	echo "# iteration $i: reference (-) vs server (+) manifest (PATH TYPE MODE SIZE SHA256), first lines:"
	{ grep '^+[^+]' "$RUN/final/iteration-$i.diff" | head -n 6; grep '^-[^-]' "$RUN/final/iteration-$i.diff" | head -n 6; } |
		sed 's/^/#   /'
done
grep -h '^# iteration [0-9]*: [0-9]* kills' "$RUN/client/role.log" 2>/dev/null | head -n 200
grep -h '^#   stderr: ' "$RUN/client/role.log" 2>/dev/null | head -n 40 | sed 's/^#   stderr: /# tethered stderr: /'
grep -h '^# fault ' "$RUN/client/role.log" 2>/dev/null | head -n 40
echo "# torture: $((kills - faults)) random kill points ($failovers failovers), $faults fault kills, ${#iters[@]} iterations ($n_failed tethered runs failed), $t_files files / $t_bytes bytes compared"
echo "# torture: server trees: $t_lost lost, $t_differ differ, $t_extra extra entries (lost or duplicated)"
echo "# torture: of these, in runs that exited 0 (silent): $s_lost lost, $s_differ differ, $s_extra extra entries, in $s_bad iterations"
echo "# boot-to-ready ms:$(for vm in "${VMS[@]}"; do printf ' %s=%s' "$vm" "$(boot_ms "$vm")"; done)"
echo "# torture took $(($(date +%s) - t0)) s (build $t_build s); logs in $RUN (role.log, dmesg.log per VM; final/ = the server's tree)"
echo "# totals: pass=$pass fail=$fail skip=$skip"
[ $fail = 0 ]
