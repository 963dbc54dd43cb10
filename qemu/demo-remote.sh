#!/bin/bash
# Remote system calls, the demo: boots the server VM (CID 4; its data disk is the export
# root /srv, with /srv/etc/hostname = tether-server, a home directory and a small source
# tree) and the client VM (CID 3), marks bash on the client with trusted.tether.loader and
# runs a scripted tethered session, printing each command before its output:
#   client#   untethered, on the client
#   tethered$ in the marked bash on the client (its file system is the server's /srv)
#   server#   on the server VM
# Role scripts: tests/vm/demo-remote-server.sh, tests/vm/demo-remote-client.sh.
. "$(dirname "$0")/../tests/hostlib.sh"

prepare
RUN_TIMEOUT=600 start_run demo-remote
log "run directory: $RUN"
export VM_TIMEOUT=500
boot server server $SERVER_CID ROLE_SCRIPT=/tether/tests/vm/demo-remote-server.sh LOAD_MODULE=0
boot client client $CLIENT_CID ROLE_SCRIPT=/tether/tests/vm/demo-remote-client.sh LOAD_MODULE=0
log "booting both VMs (about 30 s under TCG)"
wait_file 180 "$RUN/client/ready" "${VMPID[client]}" || die "client VM did not boot, see $RUN/client/console.log"
wait_file 180 "$RUN/server/ready" "${VMPID[server]}" || die "server VM did not boot, see $RUN/server/console.log"
log "boot-to-ready: server $(boot_ms server) ms, client $(boot_ms client) ms"
tail -n +1 -F --pid="${VMPID[client]}" "$RUN/client/role.log" 2>/dev/null &
PIDS+=($!)
wait_vm client 400
touch "$RUN/client-done"
wait_vm server 60
sleep 0.5
echo
if [ -e "$RUN/client/client-done" ]; then log "demo done"; else log "demo did not complete"; fi
log "logs: $RUN/client/role.log (this session), $RUN/server/role.log,"
log "      $RUN/{client,server}/dmesg.log (kernel logs), $RUN/{client,server}/console.log"
log "      requests run on the server: $RUN/cmd/"
[ -e "$RUN/client/client-done" ]
