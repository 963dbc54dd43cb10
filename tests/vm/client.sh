#!/bin/bash
# Client VM (CID 3) test sequence; tether_client.ko was loaded by qemu/guest-init.sh.
# Talks to the host through files in /out (kill-server -> host kills the server VM,
# server-down -> host boots it again, client-done), reads the server's state
# from /shared/server-state (copied there by the server VM).
. /tether/tests/vm/lib.sh
set -u
KO=/tether/client_proxy/tether_client.ko
SKO=/tether/server_comm/tether_server.ko
D=/sys/kernel/debug/tether_client
# The stable view (sysfs); debugfs ($D) keeps the live log and the bench.
SYS=/sys/kernel/tether_client
S=/shared/server-state
HB=${HEARTBEAT_MS:-500}
CLIENT_KEYS=(state server_cid session boot_verifier peer_boot_verifier connects disconnects frames_in
	frames_out bytes_in bytes_out heartbeats_sent heartbeat_misses last_down_detect_ms replays
	divergences resumed flushed_up_to flushed_verifier flushed verifier_changes bad_flushed servers
	restarts last_resume_us last_redo_us retained_writes retained_bytes retained_total redone_writes
	redone_bytes)
SERVER_KEYS=(port boot_verifier sessions accepted rejected bad_frames frames_in frames_out bytes_in
	bytes_out heartbeat_misses flush_ms resume_ms resumed expired cache_hits dup_pending syncs
	sync_errors flushed_sent last_flush_us detached)

c() { key $SYS/state "$1"; }
s() { key $S "$1"; }
connected() { [ "$(c state)" = connected ]; }
loaded() { grep -q '^tether_client ' /proc/modules; }
unloaded() { ! loaded && [ ! -e $D ] && [ ! -e /sys/kernel/tether_client ]; }
# Our own stale kmemleak reports (boot-time false positives) are not the modules' fault.
[ -e /sys/kernel/debug/kmemleak ] && { echo scan >/sys/kernel/debug/kmemleak; echo clear >/sys/kernel/debug/kmemleak; }

# --- parameters -----------------------------------------------------------------------
check "modinfo: tether_client parameters all described" params_described $KO \
	server_cid port heartbeat_ms split reconnect_max_ms servers retain log_file log_persist_ms
check "modinfo: tether_server parameters all described" params_described $SKO \
	port tcp_port allowed_cids heartbeat_ms max_frame split flush_ms flush_dirty_kb resume_ms reply_cache reply_cache_kb

# --- load, handshake, debugfs ---------------------------------------------------------
check "client module loaded by insmod" loaded
check "client connects within 30 s" wait_until 30 connected
check "client state parses (sysfs)" state_parses $SYS/state "${CLIENT_KEYS[@]}"
check "client state: server_cid=$SERVER_CID" test "$(c server_cid)" = "$SERVER_CID"
check "client state: own boot_verifier non-zero" test "$(( $(c boot_verifier) ))" != 0
check "client state: peer_boot_verifier non-zero" test "$(( $(c peer_boot_verifier) ))" != 0
# (A VM stalled for 3 heartbeats by a loaded host drops and remakes the connection.)
check "client state: connected once per drop (connects=$(c connects), disconnects=$(c disconnects))" \
	test "$(c connects)" = $(($(c disconnects) + 1))
# --- sysfs: the stable view that tetherctl reads, without debugfs ------------------------
check "sysfs: $SYS holds state, calls, tasks (mode 400) and tether (200)" eval \
	'[ "$(stat -c %a $SYS/state $SYS/calls $SYS/tasks $SYS/tether | tr "\n" " ")" = "400 400 400 200 " ]'
check "sysfs state: a user other than root gets EACCES" eval \
	'! o=$(setpriv --reuid 1000 --regid 1000 --clear-groups cat $SYS/state 2>&1) && [[ $o == *"Permission denied"* ]]'
TC="env TETHER_DEBUGFS=/nonexistent /tether/userspace-tools/tetherctl"
o=$($TC status 2>&1)
check "tetherctl status without debugfs: connected to server CID $SERVER_CID" eval 'grep -q "connected to server CID $SERVER_CID" <<<"$o" || { echo "$o"; false; }'
$TC run -- /bin/bash -c 'exec 3</; sleep 4' &
tpid=$!
check "tetherctl run without debugfs: the task is tethered (tetherctl tasks lists it)" \
	wait_until 10 eval '$TC tasks | grep -qE "^$tpid +bash|^$tpid +sleep"'
check "server state lists the task's shadow (shadow session=N rpid=$tpid pid=P, P > 0)" \
	wait_until 10 grep -qE "^shadow session=[0-9]+ rpid=$tpid pid=[1-9]" $S
wait $tpid
check "server state parses" wait_until 10 state_parses $S "${SERVER_KEYS[@]}"
check "server sees a session from cid $CID" wait_until 10 grep -q "^session id=[0-9]* peer=$CID " $S
check "server sessions >= 1" test "$(s sessions)" -ge 1
check "server boot_verifier = client's peer_boot_verifier" test "$(s boot_verifier)" = "$(c peer_boot_verifier)"
hb0=$(c heartbeats_sent) in0=$(c frames_in)
sleep "$(printf %d.%03d $((HB * 5 / 1000)) $((HB * 5 % 1000)))"
check "heartbeats flow: >= 3 sent in 5 intervals, answered" \
	test "$(c heartbeats_sent)" -ge $((hb0 + 3)) -a "$(c frames_in)" -gt "$in0" -a "$(c state)" = connected

# --- module-to-module quick bench (correctness, not speed) -------------------------------
bench() { echo "$1" >$D/bench && cat $D/bench; }
out=$(bench "ping 200 64") || true
echo "$out"
check "module bench ping 200 64" eval '[[ $out =~ ^ping\ count=200\ size=64\ min_ns=[1-9][0-9]*\ p50_ns=[1-9][0-9]*\ p99_ns=[1-9][0-9]*$ ]]'
out=$(bench "bulk 4194304 65536") || true
echo "$out"
check "module bench bulk 4 MiB in 64 KiB messages verified" eval '[[ $out =~ ^bulk\ bytes=4194304\ msg=65536\ .*verified=1$ ]]'

# --- unload / reload --------------------------------------------------------------------
bv0=$(c boot_verifier) pbv0=$(c peer_boot_verifier)
t=$(now_ms)
check "rmmod tether_client" rmmod tether_client
echo "rmmod took $(($(now_ms) - t)) ms"
check "debugfs, sysfs and module gone after rmmod" unloaded
check "server drops the session after rmmod" wait_until 10 eval '! grep -q "^session id=[0-9]* peer=$CID " $S'
check "insmod tether_client again" insmod $KO $CLIENT_PARAMS
check "reconnects after reload" wait_until 30 connected
check "new own boot_verifier, same peer_boot_verifier" test "$(c boot_verifier)" != "$bv0" -a "$(c peer_boot_verifier)" = "$pbv0"

# --- protocol selftests against the server ----------------------------------------------
bad0=$(s bad_frames)
selftest $TB/server_proto 600
nbad=$(grep -cE '^(ok|not ok) [0-9]+ bad_input\.' /out/server_proto.tap)
check "server bad_frames grew by the $nbad bad-input cases" \
	wait_until 10 eval '[ "$(s bad_frames)" = $((bad0 + nbad)) ]'
echo "server bad_frames: before $bad0, now $(s bad_frames)"
# Bad-input drops (a silent peer is dropped too, but is not a bad frame).
drops() { grep "tether_server: dropping connection from cid $CID: " /shared/server0/dmesg.log | grep -vc "silent for"; }
check "server logged one 'dropping connection' line per bad connection" \
	wait_until 10 eval '[ "$(drops)" = "$(s bad_frames)" ]'
grep "tether_server: dropping connection" /shared/server0/dmesg.log | head -n 20
check "client still connected after the selftests" connected

# --- crash: the host kills the server VM, then boots it again -----------------------------
# A tethered process with a cwd and two open files on the server (made durable first) waits
# on a local FIFO across the crash; after the reboot the client replays its state and the
# process carries on with the same fds and cwd. A second process starts its first remote
# call while the server is down: the call waits and completes after the replay. Its fd 5 is
# open on a file it unlinked: replay cannot reopen that by path (a divergence), so reads on
# fd 5 fail with EIO. Before the crash it also writes data the server has not flushed (its
# flusher is slowed to 10 min and the kernel's periodic writeback is off on the server VM,
# tests/vm/server.sh): a new file, an append and an overwrite in place, all retained by the
# client and written again by the replay.
BASHM=/tmp/bash-marked
cp /bin/bash $BASHM && setfattr -n trusted.tether.loader -v 1 $BASHM
mkfifo /dev/tether-gate /dev/tether-gate0
read -r -d '' P <<'EOF'
mkdir -p /replay && cd /replay || exit 1
printf 'durable-line\n' >data && printf 'rel-file\n' >rel && : >appended && : >locks
exec 3<data 4>>appended
printf 'unlinked\n' >gone && exec 5<gone && rm gone
# A server FIFO open for reading alone (a writer of its own lets the open return): replay
# must reopen it without waiting for a writer nobody on the new server holds.
mkfifo pipe && exec 9<>pipe 8<pipe 9>&- || exit 1
sync data rel appended . / || exit 1
# (Root squash: this root is nobody on the server; server.sh gave u1000 to uid 1000.)
[ "$(stat -c %u u1000)" = 1000 ] || exit 1
# An fd that gains O_APPEND by F_SETFL (in a child sharing it) appends after the replay too.
exec 10<>setfl && printf 'setfl-first\n' >&10 &&
	python3 -c 'import fcntl, os; fcntl.fcntl(10, fcntl.F_SETFL, os.O_APPEND)' || exit 1
# Opens that create are committed on the server: open first, then write
# (after the uid 1000 process below has created its file).
exec 6<>unsynced 7<>data
echo created >/dev/tether-created
read -r g </dev/tether-gate0
seq -f 'unflushed-%05g' 1 3000 >&6 && echo unflushed-append >&4 &&
	printf X | dd bs=1 seek=3 conv=notrunc status=none >&7 || exit 1
echo ready >/dev/tether-ready
read -r g </dev/tether-gate
read -r d <&3; echo "fd3=$d"
read -r x <&5; echo "fd5-rc=$?"
read -r -t 5 x <&8; echo "fifo-rc=$?"
read -r r <rel; echo "rel=$r"
echo after-crash >&4; echo "append-rc=$?"
echo setfl-after >&10; echo "setfl=$(tr '\n' ' ' <setfl)"
echo "appended=$(tr '\n' ' ' <appended)"
echo "unsynced=$(sha256sum <unsynced | cut -c1-16)"
echo "cwd=$(/bin/pwd)"
EOF
$BASHM -c "$P" >/tmp/replay.out 2>&1 &
rp=$!
wait_until 60 test -e /dev/tether-created
# A non-root process writes a file it created read-only (umask 0222: mode 0444, like git's
# objects), through the fd the create gave it, and the data is not flushed: the replay must
# reopen the file and write the data again as that user (shadow call REOPEN).
mkfifo -m 666 /dev/tether-ro-gate
read -r -d '' RO <<'EOF'
cd /replay/u1000 || exit 1
umask 0222 && exec 3>ro-file && umask 022 && seq -f 'ro-%05g' 1 2000 >&3 || exit 1
echo ready
read -r g </dev/tether-ro-gate
seq -f 'ro-after-%05g' 1 10 >&3; echo "ro-rc=$?"
echo "ro-sum=$(sha256sum <ro-file | cut -c1-16) ro-mode=$(stat -c %a ro-file)"
EOF
setpriv --reuid=1000 --regid=1000 --clear-groups $BASHM -c "$RO" >/tmp/ro.out 2>&1 &
rop=$!
check "replay: a uid 1000 process writes a file it created with mode 0444 (unflushed)" \
	wait_until 60 grep -qx ready /tmp/ro.out
echo go >/dev/tether-gate0
check "replay: tethered process ready (cwd and two files open on the server, synced)" \
	wait_until 60 test -e /dev/tether-ready
# The server's sessions run in cgroups of their own, with session_memory_mb=64 (vmtest.sh).
check "session cgroup on the server: memory.max 64 MiB (session_memory_mb=64), the session's shadows in it" \
	wait_until 10 grep -Eq '^session-[0-9]+ memory.max=67108864 pids=[1-9]' /shared/server-cgroups
cat /shared/server-cgroups
# Record locks name their holder's pid: a tethered process and its child, both on the
# server since before the crash, must see each other's (client) pids before and after it:
# the replay gives every shadow its client process's pid again (tests/fsops/lockpid.c).
cp /tether/tests/build/lockpid /tmp/lockpid && setfattr -n trusted.tether.loader -v 1 /tmp/lockpid
mkfifo /dev/lockpid-gate
/tmp/lockpid /replay/locks /dev/lockpid-ready /dev/lockpid-gate >/tmp/lockpid.out 2>&1 &
lp=$!
check "pids: a tethered process and its forked child see each other's pids in server record locks" \
	eval 'wait_until 60 test -e /dev/lockpid-ready && [ "$(grep -c "^before: .* is right$" /tmp/lockpid.out)" = 2 ]'
rep0=$(c replays) div0=$(c divergences) redone0=$(c redone_writes)
check "replay: the unflushed writes are retained by the client ($(c retained_writes) writes, $(c retained_bytes) bytes)" \
	test "$(c retained_bytes)" -ge $((48018 + 18000))
pbv=$(c peer_boot_verifier) disc=$(c disconnects) conn=$(c connects)
touch /out/kill-server
check "client notices the server crash (state leaves connected) within 30 s" wait_until 30 eval '! connected'
$BASHM -c 'read -r r </replay/rel; echo "outage-read=$r rc=$?"' >/tmp/outage.out 2>&1 &
op=$!
wait_until 5 eval '[ "$(c last_down_detect_ms)" -gt 0 ]' || true
det=$(c last_down_detect_ms)
echo "last_down_detect_ms=$det (heartbeat ${HB} ms)"
check "down detected in ${det} ms <= 3 heartbeats + 1 slack ($((HB * 4)) ms)" test "${det:-99999}" -le $((HB * 4))
check "disconnects counted" test "$(c disconnects)" = $((disc + 1))
touch /out/server-down
check "reconnects to the rebooted server within 180 s" wait_until 180 connected
check "new peer_boot_verifier after the server reboot" test "$(c peer_boot_verifier)" != "$pbv" -a "$(( $(c peer_boot_verifier) ))" != 0
check "connects counted" test "$(c connects)" = $((conn + 1))
check "replay: one replay ran with one divergence (the unlinked open file)" \
	test "$(c replays) $(c divergences)" = "$((rep0 + 1)) $((div0 + 1))"
check "replay: the retained writes were written again ($(($(c redone_writes) - redone0)) writes)" \
	test "$(c redone_writes)" -ge $((redone0 + 3))
check "replay: dmesg says so" grep -q "writing [0-9]* retained writes ([0-9]* bytes) again" /out/dmesg.log
check "replay: dmesg names the file replay could not reopen" \
	grep -q "replay diverged: process [0-9]*: reopen /replay/gone failed (-2)" /out/dmesg.log
rc=0
reap $op 60 >&2 || rc=$?
out=$(cat /tmp/outage.out)
echo "$out"
check "replay: a remote call made during the outage completes after it (exit $rc)" \
	eval '[ $rc = 0 ] && grep -qx "outage-read=rel-file rc=0" <<<"$out"'
echo go >/dev/lockpid-gate
rc=0
reap $lp 60 >&2 || rc=$?
cat /tmp/lockpid.out
check "pids: after the replay the two processes' shadows have their pids again (exit $rc)" \
	eval '[ $rc = 0 ] && [ "$(grep -c "^after: .* is right$" /tmp/lockpid.out)" = 2 ]'
echo go >/dev/tether-ro-gate
rc=0
reap $rop 60 >&2 || rc=$?
out=$(cat /tmp/ro.out)
echo "$out"
sum=$( (seq -f 'ro-%05g' 1 2000; seq -f 'ro-after-%05g' 1 10) | sha256sum | cut -c1-16)
check "replay: the uid 1000 process's 0444 file was reopened and rewritten: whole, mode kept (exit $rc)" \
	eval '[ $rc = 0 ] && grep -qx ro-rc=0 <<<"$out" && grep -qx "ro-sum=$sum ro-mode=444" <<<"$out"'
echo go >/dev/tether-gate
rc=0
reap $rp 60 >&2 || rc=$?
out=$(cat /tmp/replay.out)
echo "$out"
check "replay: the process exits 0 after the crash (exit $rc)" test $rc = 0
check "replay: fd 3, opened before the crash, reads its file (with the unflushed overwrite)" \
	grep -qx fd3=durXble-line <<<"$out"
check "replay: a relative path resolves in the cwd set before the crash" grep -qx rel=rel-file <<<"$out"
check "replay: fd 4 (O_APPEND, opened before the crash) appends after the unflushed append" \
	eval 'grep -qx append-rc=0 <<<"$out" && grep -qx "appended=unflushed-append after-crash " <<<"$out"'
sum=$(seq -f 'unflushed-%05g' 1 3000 | sha256sum | cut -c1-16)
check "replay: the file written just before the crash is whole (48018 bytes, sha256 $sum...)" \
	grep -qx "unsynced=$sum" <<<"$out"
check "replay: the server-side cwd is the one from before the crash" grep -qx cwd=/replay <<<"$out"
check "replay: an fd that gained O_APPEND by F_SETFL before the crash appends after it" \
	grep -qx "setfl=setfl-first setfl-after " <<<"$out"
check "replay: a FIFO open for reading across the crash is reopened without blocking (its read sees no writer: EOF)" \
	grep -qx fifo-rc=1 <<<"$out"
check "replay: a read on the fd replay could not reopen fails with EIO" \
	eval 'grep -qx fd5-rc=1 <<<"$out" && grep -q "read error: [0-9]*: Input/output error" <<<"$out"'
rm -f /dev/tether-gate /dev/tether-gate0 /dev/tether-created /dev/tether-ready /dev/lockpid-gate \
	/dev/lockpid-ready /dev/tether-ro-gate

# --- $CYCLES (100) load/unload cycles with the server connected ------------------------------
cp $KO /tmp/tc.ko
check "rmmod before the cycles" rmmod tether_client
# Stop early when it is clearly broken or too slow (CYCLE_BUDGET_S): that fails the check.
fails=0 t0=$(now_ms) i=0 budget=$((${CYCLE_BUDGET_S:-1800} * 1000)) n=${CYCLES:-100}
while [ $i -lt $n ] && [ $fails -lt 3 ] && [ $(($(now_ms) - t0)) -lt $budget ]; do
	i=$((i + 1))
	insmod /tmp/tc.ko $CLIENT_PARAMS || { fails=$((fails + 1)); continue; }
	wait_until 20 connected || { echo "cycle $i: not connected: $(c state)"; fails=$((fails + 1)); }
	t=$(now_ms)
	rmmod tether_client || { echo "cycle $i: rmmod failed"; fails=$((fails + 1)); }
	t=$(($(now_ms) - t))
	[ $t -le "${rm_max:-0}" ] || rm_max=$t
done
echo "slowest rmmod: $rm_max ms"
echo "$i cycles in $(($(now_ms) - t0)) ms, $fails failures"
check "$n insmod/connect/rmmod cycles within ${CYCLE_BUDGET_S:-1800} s ($i done, $fails failed)" test $fails = 0 -a $i = $n
check "module gone after the cycles" unloaded
# A hang guard, not a speed target: rmmod waits out an RCU-tasks grace period (seconds under TCG).
check "every rmmod returns within 30 s while connected (slowest: ${rm_max:-?} ms)" test "${rm_max:-99999}" -le 30000
check "kmemleak: no leaks on the client" kmemleak_clean
touch /out/client-done
