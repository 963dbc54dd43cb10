#!/bin/bash
# make demo: boot the server VM (CID 4) and the client VM (CID 3), show the client
# connected and a tethered shell with state on the server, kill the server VM, show the
# client noticing, boot the server again, and show the client replaying its log and the
# shell carrying on (tests/vm/demo-client.sh).
. "$(dirname "$0")/../tests/hostlib.sh"

prepare
start_run demo
log "run directory: $RUN"
VMS=(server0)
# The first server keeps written data in its page cache (no flusher round, no periodic
# writeback): what the shell wrote last is lost with it unless the client writes it again.
boot server0 server $SERVER_CID BOOT_INDEX=0 NO_WRITEBACK=1 \
	"SERVER_PARAMS='$SERVER_PARAMS flush_ms=600000 flush_dirty_kb=0'"
wait_file 180 "$RUN/server0/ready" "${VMPID[server0]}" || die "server VM did not boot, see $RUN/server0/console.log"
VMS+=(client)
boot client client $CLIENT_CID ROLE_SCRIPT=/tether/tests/vm/demo-client.sh
wait_file 180 "$RUN/client/ready" "${VMPID[client]}" || die "client VM did not boot, see $RUN/client/console.log"
wait_file 5 "$RUN/client/boot_ms" || true
log "boot-to-ready: server $(boot_ms server0) ms, client $(boot_ms client) ms"
tail -n +1 -F --pid="${VMPID[client]}" "$RUN/client/role.log" 2>/dev/null &
PIDS+=($!)
drive_client 600
touch "$RUN/$SERVER/stop"
wait_vm "$SERVER" 60
[ -e "$RUN/client/client-done" ] || die "demo did not complete, see $RUN/client/role.log"
log "demo done (server reboot: boot-to-ready $(boot_ms server1) ms)"
