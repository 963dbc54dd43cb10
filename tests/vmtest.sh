#!/bin/bash
# VM integration tests (vmtest style), KTAP on stdout. Boots the relay, the server VM
# (CID 4, persistent data disk) and the client VM (CID 3), which runs tests/vm/client.sh:
# modules, handshake, debugfs, protocol selftests, then a crash of the server VM (killed
# here on the client's request, then booted again), 100 load/unload cycles, kmemleak. Every
# VM's dmesg (streamed to the host, so a killed VM's too) must be free of warnings.
# The last line is "# totals: pass=P fail=F skip=S"; exit status 1 on any failure.
# CYCLES (100) load/unload cycles, within CYCLE_BUDGET_S (1800) seconds: under TCG with
# the debug kernel one insmod of tether_client takes ~10 s (ftrace hook registration).
. "$(dirname "$0")/hostlib.sh"

t0=$(date +%s)
prepare >&2
for m in "${KMODS[@]}"; do [ -e "$TETHER_ROOT/$m" ] || die "$m not built"; done
start_run vmtest
log "run directory: $RUN"
VMS=(server0)
boot server0 server $SERVER_CID BOOT_INDEX=0
wait_file 180 "$RUN/server0/ready" "${VMPID[server0]}" || log "server0 did not get ready"
VMS+=(client)
boot client client $CLIENT_CID
drive_client 2700
wait_vm client 10
touch "$RUN/$SERVER/stop"
wait_vm $SERVER 120

# --- KTAP ---------------------------------------------------------------------------------
results=()
add() { results+=("$1 - $2"); }
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
[ -e "$RUN/client/client-done" ] && add ok "client: test sequence completed" || add "not ok" "client: test sequence completed"

echo "KTAP version 1"
echo "1..${#results[@]}"
pass=0 fail=0 skip=0 i=0
for r in "${results[@]}"; do
	i=$((i + 1))
	echo "${r%% - *} $i ${r#* - }"
	case $r in
	"not ok"*) fail=$((fail + 1)) ;;
	*"# SKIP"*) skip=$((skip + 1)) ;;
	*) pass=$((pass + 1)) ;;
	esac
done
echo "# boot-to-ready ms:$(for vm in "${VMS[@]}"; do printf ' %s=%s' "$vm" "$(boot_ms "$vm")"; done)"
echo "# vmtest took $(($(date +%s) - t0)) s; logs in $RUN"
echo "# totals: pass=$pass fail=$fail skip=$skip"
[ $fail = 0 ]
