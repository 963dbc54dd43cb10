#!/bin/bash
# Client VM role of qemu/demo.sh: show the handshake; start a tethered shell with a working
# directory and an open file on the server; kill the server VM, show the client noticing,
# boot the server again; the client replays the shell's state and the shell carries on.
. /tether/tests/vm/lib.sh
D=/sys/kernel/debug/tether_client
# The stable view (sysfs); debugfs ($D) keeps the live log and the bench.
SYS=/sys/kernel/tether_client
c() { key $SYS/state "$1"; }
connected() { [ "$(c state)" = connected ]; }
say() { printf '\n== %s\n' "$*"; }

say "client VM (cid $CID): tether_client loaded, waiting for the handshake"
wait_until 30 connected
cat $SYS/state
say "the server VM's view: /sys/kernel/tether_server/state"
wait_until 10 grep -q "^session .*peer=$CID " /shared/server-state
cat /shared/server-state

say "a tethered shell: cwd /demo and fd 3 (append) open on the server, then it waits"
cp /bin/bash /tmp/bash-marked && setfattr -n trusted.tether.loader -v 1 /tmp/bash-marked
mkfifo /dev/tether-gate
read -r -d '' S <<'EOF'
mkdir -p /demo && cd /demo
echo "line 1, written before the crash" >journal.txt && exec 3>>journal.txt
sync journal.txt . /
echo "line 1b, written just before the crash, never synced: only the client keeps it" >&3
echo "pid $$: cwd $(/bin/pwd) on the server, fd 3 open on journal.txt; waiting"
echo ready >/dev/tether-ready
read -r go </dev/tether-gate
echo "line 2, written after the server came back" >&3
echo "pid $$ carries on: cwd $(/bin/pwd), journal.txt:"
cat journal.txt
EOF
/tmp/bash-marked -c "$S" 2>&1 | sed 's/^/  tethered| /' &
shell=$!
wait_until 60 test -e /dev/tether-ready
say "the client's syscall log (tetherctl log): open state, and the write the server has not flushed"
cat $D/log

old=$(c peer_boot_verifier)
say "asking the host to kill the server VM (SIGKILL to its QEMU)"
touch /out/kill-server
wait_until 30 eval '! connected'
wait_until 5 eval '[ "$(c last_down_detect_ms)" -gt 0 ]'
say "client noticed: state=$(c state), detected in $(c last_down_detect_ms) ms (heartbeat $HEARTBEAT_MS ms)"
say "asking the host to boot the server VM again"
touch /out/server-down
wait_until 180 eval 'connected && [ "$(c peer_boot_verifier)" != "$old" ]'
say "reconnected: peer_boot_verifier $old -> $(c peer_boot_verifier); replayed the log:"
grep -E '^(state|session|connects|replays|divergences|redone_writes|redone_bytes)=' $SYS/state
dmesg | grep -E 'tether_client: (replay|connected|writing)' | tail -n 4
say "the tethered shell goes on with the same cwd and fd (line 1b survived the crash)"
echo go >/dev/tether-gate
wait $shell
rm -f /dev/tether-gate /dev/tether-ready
touch /out/client-done
