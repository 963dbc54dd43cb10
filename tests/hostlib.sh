# Host-side helpers for tests/vmtest.sh, tests/bench.sh and qemu/demo.sh (sourced).
# shellcheck shell=bash
. "$(dirname "${BASH_SOURCE[0]}")/../qemu/lib.sh"

SERVER_CID=4 CLIENT_CID=3 PORT=7777 HB=500
SERVER_PARAMS="port=$PORT allowed_cids=3,5 heartbeat_ms=$HB max_frame=1048576 split=3584 shadow_path=/tether/userspace-tools/tether-shadow root=/srv"
COMMON_ENV=(
	SERVER_CID=$SERVER_CID TETHER_SERVER_CID=$SERVER_CID PORT=$PORT TETHER_PORT=$PORT
	HEARTBEAT_MS=$HB TETHER_HEARTBEAT_MS=$HB TETHER_SPLIT=3584
	CYCLES="${CYCLES:-100}" CYCLE_BUDGET_S="${CYCLE_BUDGET_S:-1800}"
	"SERVER_PARAMS='$SERVER_PARAMS'"
	"CLIENT_PARAMS='server_cid=$SERVER_CID port=$PORT heartbeat_ms=$HB split=3584 reconnect_max_ms=2000'"
)
KMODS=(server_comm/tether_server.ko client_proxy/tether_client.ko)
# The VMs' network, when a suite sets TETHER_NET=1 before start_run (tests/remote.sh,
# tests/torture.sh): a point-to-point IPv4 link between the server VMs and the client VM
# (qemu/run-vm.sh VM_NET: UDP datagrams on 127.0.0.1, on a port pair of the run, NET_PORTS).
# Every server VM (whatever its CID, and each replacement of a killed one) is
# NET_SERVER_IP on port NET_PORTS[0], the client NET_CLIENT_IP on NET_PORTS[1], so a
# restarted server is reachable at the same address. Each VM's env (boot) then has NET_IP
# (its own address: qemu/guest-init.sh brings the interface up with it before insmod),
# NET_SERVER_IP and NET_CLIENT_IP.
# With TETHER_NET=hub (tests/many.sh over TCP) every VM of the run is on one segment instead
# (VM_NET mcast:NET_HUB: a multicast group on the host's loopback, one per run): the
# servers NET_SERVER_IP, each client net_ip CID.
NET_SERVER_IP=10.0.0.1 NET_CLIENT_IP=10.0.0.2 NET_PORTS=() NET_HUB=
# net_ip CID : a client's address on the hub.
net_ip() { echo "10.0.0.$((10 + $1))"; }
PIDS=()
HOST_T0=$(date +%s)
declare -A VMPID

# prepare : build whatever is missing (toolchain, kernel, image, modules, test programs, relay).
prepare() {
	"$TETHER_ROOT/qemu/toolchain.sh"
	build_kernel
	"$TETHER_ROOT/qemu/image.sh"
	"$TETHER_ROOT/qemu/vsock-relay.sh" --install
	if grep -q '^modules:' "$TETHER_ROOT/Makefile" 2>/dev/null; then
		make -C "$TETHER_ROOT" modules >"$CACHE/modules.log" 2>&1 || die "make modules failed, see $CACHE/modules.log"
	fi
	"$TETHER_ROOT/tests/build.sh"
	log "built: toolchain, kernel, image, relay, modules, test programs (+$(hms $(($(date +%s) - HOST_T0))))"
}

# net_ports : NET_PORTS, two UDP ports for this run's link: the pair at 20000 + 2 * ($$ % 6000)
# (under the kernel's ephemeral range; another script's run gets another pair), or the next
# pair on which nothing on the host is bound (/proc/net/udp, udp6).
net_ports() {
	local p=$((20000 + 2 * ($$ % 6000))) n
	for ((n = 0; n < 6000; n++)); do
		udp_bound $p || udp_bound $((p + 1)) || { NET_PORTS=("$p" "$((p + 1))"); return 0; }
		p=$((p + 2))
		[ $p -lt 32000 ] || p=20000
	done
	die "no free UDP port pair for the VMs' network"
}
# udp_bound PORT : whether a UDP socket on the host uses PORT.
udp_bound() { grep -q ":$(printf %04X "$1") " /proc/net/udp /proc/net/udp6 2>/dev/null; }

cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}

# start_run NAME : a fresh run directory $RUN with the server's data disk, and the relay.
start_run() {
	RUN="$CACHE/runs/$1-$(date +%Y%m%d-%H%M%S)"
	mkdir -p "$RUN"
	# The shared secret of this run's modules (qemu/guest-init.sh installs it as
	# /etc/tether/key in every VM): 32 random bytes as hex.
	(umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$RUN/tether.key")
	truncate -s 256M "$RUN/server-data.img"
	mkfs.ext4 -q -F -L tetherdata "$RUN/server-data.img"
	if [ "${TETHER_NET:-0}" = 1 ]; then
		net_ports
		echo "server $NET_SERVER_IP udp 127.0.0.1:${NET_PORTS[0]}, client $NET_CLIENT_IP udp 127.0.0.1:${NET_PORTS[1]}" >"$RUN/net"
	elif [ "${TETHER_NET:-0}" = hub ]; then
		net_ports
		NET_HUB=230.0.$(($$ / 256 % 256)).$(($$ % 256)):${NET_PORTS[0]}
		echo "hub: multicast $NET_HUB on 127.0.0.1; server $NET_SERVER_IP, client CID at 10.0.0.(10 + CID)" >"$RUN/net"
	fi
	trap cleanup EXIT
	trap 'exit 143' TERM INT HUP
	# The relay serves RELAY_CIDS (default: client 3, server 4, failover server 5).
	local cids=(${RELAY_CIDS:-3 4 5})
	timeout -s KILL "${RUN_TIMEOUT:-1800}" "$TETHER_ROOT/qemu/vsock-relay.sh" "$RUN" "${cids[@]}" >"$RUN/relay.log" 2>&1 &
	PIDS+=($!)
	wait_file 20 "$RUN/vhost-${cids[-1]}.sock" $! || die "relay did not start, see $RUN/relay.log"
	watch_results "$1" &
	PIDS+=($!)
}

# watch_results NAME : (background) progress on stderr while the VMs run: one line per group
# of results a VM reports (those that arrive together, or 30 s' worth), with the elapsed
# time since the script started; each failure also gets a line of its own.
watch_results() {
	set +e +o pipefail
	local name=$1 f vm n r now new nok nbad nskip lastd
	declare -A reported=() seen=() first=()
	while sleep 2; do
		now=$(date +%s)
		for f in "$RUN"/*/results; do
			[ -e "$f" ] || continue
			vm=${f%/results}
			vm=${vm##*/}
			n=$(wc -l <"$f")
			r=${reported[$vm]:-0}
			[ "$n" -gt "$r" ] || continue
			[ -n "${first[$vm]:-}" ] || first[$vm]=$now
			# Report once the VM has added nothing for one poll, or after 30 s of results.
			if [ "$n" != "${seen[$vm]:-}" ] && [ $((now - first[$vm])) -lt 30 ]; then
				seen[$vm]=$n
				continue
			fi
			new=$(sed -n "$((r + 1)),${n}p" "$f")
			nok=$(grep -c '^ok - ' <<<"$new") nbad=$(grep -c '^not ok - ' <<<"$new")
			nskip=$(grep -c '^ok - .*# SKIP' <<<"$new")
			lastd=$(grep -E '^(not )?ok - ' <<<"$new" | tail -n 1)
			grep '^not ok - ' <<<"$new" | while IFS= read -r line; do
				log "$name +$(hms $((now - HOST_T0))): $vm: $line"
			done
			[ $((nok + nbad)) -gt 0 ] &&
				log "$name +$(hms $((now - HOST_T0))): $vm: $((nok + nbad)) more results ($((nok - nskip)) ok, $nbad not ok, $nskip skipped), $(grep -cE '^(not )?ok - ' "$f") so far; last: ${lastd:0:100}"
			reported[$vm]=$n seen[$vm]=$n
			unset "first[$vm]"
		done
	done
}

# boot NAME ROLE CID [KEY=VALUE...] : boot a VM in the background, its /out is $RUN/NAME.
# With TETHER_NET=1, a server or the client is on the VMs' network (see NET_PORTS).
boot() {
	local name=$1 role=$2 cid=$3 disks=() vmnet=
	shift 3
	[ "$role" = server ] && disks=("$RUN/server-data.img")
	if [ "${TETHER_NET:-0}" = 1 ]; then
		[ ${#NET_PORTS[@]} = 2 ] || die "TETHER_NET=1 is set after start_run"
		case $role in
		server) vmnet=${NET_PORTS[0]}:${NET_PORTS[1]} && set -- NET_IP=$NET_SERVER_IP "$@" ;;
		client) vmnet=${NET_PORTS[1]}:${NET_PORTS[0]} && set -- NET_IP=$NET_CLIENT_IP "$@" ;;
		esac
		set -- NET_SERVER_IP=$NET_SERVER_IP NET_CLIENT_IP=$NET_CLIENT_IP "$@"
	elif [ "${TETHER_NET:-0}" = hub ]; then
		[ -n "$NET_HUB" ] || die "TETHER_NET=hub is set after start_run"
		vmnet=mcast:$NET_HUB
		case $role in
		server) set -- NET_IP=$NET_SERVER_IP "$@" ;;
		client) set -- NET_IP="$(net_ip "$cid")" "$@" ;;
		esac
		set -- NET_SERVER_IP=$NET_SERVER_IP "$@"
	fi
	VM_NET=$vmnet VM_ENV="$(printf '%s\n' "${COMMON_ENV[@]}" "$@")" VM_TIMEOUT="${VM_TIMEOUT:-3000}" timeout "${VM_TIMEOUT:-3000}" \
		"$TETHER_ROOT/qemu/run-vm.sh" "$role" "$cid" "$RUN/$name" "$RUN/vhost-$cid.sock" "${disks[@]}" \
		>"$RUN/$name.log" 2>&1 &
	VMPID[$name]=$!
	PIDS+=($!)
}

# wait_file SECONDS FILE [PID] : until FILE exists; fails on timeout or when PID has exited.
wait_file() {
	local end=$(($(date +%s) + $1))
	until [ -e "$2" ]; do
		[ "$(date +%s)" -lt $end ] || return 1
		[ -z "${3:-}" ] || kill -0 "$3" 2>/dev/null || { [ -e "$2" ]; return; }
		sleep 0.1
	done
}

# wait_vm NAME SECONDS : until the VM powered off (then killed).
wait_vm() {
	local pid=${VMPID[$1]} end=$(($(date +%s) + $2))
	while kill -0 "$pid" 2>/dev/null && [ "$(date +%s)" -lt $end ]; do sleep 0.2; done
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# crash_vm NAME : SIGKILL the VM's QEMU (a power cut); harmless when it already exited (a
# server that reset itself at a fault point: QEMU runs with -no-reboot).
crash_vm() {
	kill -9 "$(cat "$RUN/$1/qemu.pid" 2>/dev/null)" 2>/dev/null
	wait "${VMPID[$1]}" 2>/dev/null || true
}

boot_ms() { cat "$RUN/$1/boot_ms" 2>/dev/null || echo '-'; }

# drive_client SECONDS : while the client VM runs, SIGKILL the server VM when the client
# writes /out/kill-server and boot it again (same data disk) on /out/server-down. Sets
# SERVER (the server VM now running) and appends booted VMs to VMS.
drive_client() {
	local end=$(($(date +%s) + $1))
	SERVER=server0
	while kill -0 "${VMPID[client]}" 2>/dev/null && [ "$(date +%s)" -lt $end ]; do
		if [ -e "$RUN/client/kill-server" ] && [ ! -e "$RUN/server0.killed" ]; then
			log "killing the server VM (SIGKILL to QEMU)"
			crash_vm server0
			touch "$RUN/server0.killed"
		fi
		if [ -e "$RUN/client/server-down" ] && [ $SERVER = server0 ]; then
			log "booting the server VM again (same data disk)"
			SERVER=server1
			VMS+=(server1)
			boot server1 server $SERVER_CID BOOT_INDEX=1
		fi
		sleep 0.2
	done
}

# KTAP of a run: ktap_gather collects, for every VM in VMS, its boot, its role script's exit
# (a VM killed on purpose, RUN/NAME.killed, is a skip), a clean dmesg and the VM's own
# results, plus whether the client finished (RUN/DONE_VM/client-done; DONE_VM defaults to
# client); ktap_print prints them as KTAP and sets pass/fail/skip.
results=()
add() { results+=("$1 - $2"); }
ktap_gather() {
	local vm d bad line
	for vm in "${VMS[@]}"; do
		d="$RUN/$vm"
		if [ -e "$d/ready" ]; then add ok "$vm: boots (boot-to-ready $(boot_ms "$vm") ms)"; else add "not ok" "$vm: boots"; fi
		if [ -e "$RUN/$vm.killed" ]; then
			add ok "$vm: role script finished # SKIP killed on purpose"
		elif [ "$(cat "$d/exit" 2>/dev/null)" = 0 ]; then add ok "$vm: role script finished"
		else add "not ok" "$vm: role script finished (exit $(cat "$d/exit" 2>/dev/null || echo none))"; fi
		bad=$(cat "$d/dmesg.log" "$d/console.log" 2>/dev/null | grep -E 'WARNING:|BUG:|Oops|KASAN|kernel BUG|Call Trace' | head -n 3 || true)
		if [ -z "$bad" ]; then add ok "$vm: no warnings in dmesg"; else add "not ok" "$vm: no warnings in dmesg: ${bad//$'\n'/ | }"; fi
		while IFS= read -r line; do
			case $line in
			"ok - "*) add ok "$vm: ${line#ok - }" ;;
			"not ok - "*) add "not ok" "$vm: ${line#not ok - }" ;;
			esac
		done < <(cat "$d/results" 2>/dev/null)
	done
	if [ -e "$RUN/${DONE_VM:-client}/client-done" ]; then add ok "${DONE_VM:-client}: test sequence completed"
	else add "not ok" "${DONE_VM:-client}: test sequence completed"; fi
}
ktap_print() {
	local r i=0
	pass=0 fail=0 skip=0
	echo "KTAP version 1"
	echo "1..${#results[@]}"
	for r in "${results[@]}"; do
		i=$((i + 1))
		echo "${r%% - *} $i ${r#* - }"
		case $r in
		"not ok"*) fail=$((fail + 1)) ;;
		*"# SKIP"*) skip=$((skip + 1)) ;;
		*) pass=$((pass + 1)) ;;
		esac
	done
	log "${RUN##*/}: $pass passed, $fail failed, $skip skipped in $(hms $(($(date +%s) - HOST_T0)))"
}
