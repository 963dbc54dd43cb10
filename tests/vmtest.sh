#!/bin/bash
# VM integration tests (vmtest style), KTAP on stdout. Boots the relay, the server VM
# (CID 4, persistent data disk) and the client VM (CID 3), which runs tests/vm/client.sh:
# modules, handshake, debugfs, protocol selftests, then a crash of the server VM (killed
# here on the client's request, then booted again), 100 load/unload cycles, kmemleak. Every
# VM's dmesg (streamed to the host, so a killed VM's too) must be free of warnings.
# The last line is "# totals: pass=P fail=F skip=S"; exit status 1 on any failure.
# CYCLES (100) load/unload cycles, within CYCLE_BUDGET_S (1800) seconds: under TCG with
# the debug kernel one insmod of tether_client takes a few seconds (ftrace hook registration).
. "$(dirname "$0")/hostlib.sh"

t0=$(date +%s)
prepare >&2
for m in "${KMODS[@]}"; do [ -e "$TETHER_ROOT/$m" ] || die "$m not built"; done
start_run vmtest
log "run directory: $RUN"
VMS=(server0)
# The first server keeps written data in its page cache (no flusher round for 10 min, no
# periodic writeback): the crash test's unflushed writes are lost with it unless replayed.
# Its sessions' cgroups have a memory limit (64 MiB).
boot server0 server $SERVER_CID BOOT_INDEX=0 NO_WRITEBACK=1 \
	"SERVER_PARAMS='$SERVER_PARAMS flush_ms=600000 flush_dirty_kb=0 session_memory_mb=64'"
wait_file 180 "$RUN/server0/ready" "${VMPID[server0]}" || log "server0 did not get ready"
VMS+=(client)
boot client client $CLIENT_CID
drive_client 2700
wait_vm client 10
touch "$RUN/$SERVER/stop"
wait_vm $SERVER 120

# --- KTAP ---------------------------------------------------------------------------------
ktap_gather
ktap_print
echo "# boot-to-ready ms:$(for vm in "${VMS[@]}"; do printf ' %s=%s' "$vm" "$(boot_ms "$vm")"; done)"
echo "# vmtest took $(($(date +%s) - t0)) s; logs in $RUN"
echo "# totals: pass=$pass fail=$fail skip=$skip"
[ $fail = 0 ]
