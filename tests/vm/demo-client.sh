#!/bin/bash
# Client VM role of qemu/demo.sh: show the handshake, the server crash and the reconnect.
. /tether/tests/vm/lib.sh
D=/sys/kernel/debug/tether_client
c() { key $D/state "$1"; }
connected() { [ "$(c state)" = connected ]; }
say() { printf '\n== %s\n' "$*"; }

say "client VM (cid $CID): tether_client loaded, waiting for the handshake"
wait_until 30 connected
cat $D/state
say "the server VM's view: /sys/kernel/debug/tether_server/state"
wait_until 10 grep -q "^session .*cid=$CID " /shared/server-state
cat /shared/server-state
old=$(c peer_boot_verifier)
say "asking the host to kill the server VM (SIGKILL to its QEMU)"
touch /out/kill-server
wait_until 30 eval '! connected'
wait_until 5 eval '[ "$(c last_down_detect_ms)" -gt 0 ]'
say "client noticed: state=$(c state), detected in $(c last_down_detect_ms) ms (heartbeat $HEARTBEAT_MS ms)"
cat $D/state
say "asking the host to boot the server VM again"
touch /out/server-down
wait_until 180 eval 'connected && [ "$(c peer_boot_verifier)" != "$old" ]'
say "reconnected: peer_boot_verifier $old -> $(c peer_boot_verifier)"
cat $D/state
touch /out/client-done
