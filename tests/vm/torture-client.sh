#!/bin/bash
# Client VM (CID 3) role of tests/torture.sh: crash torture. tether_client.ko was loaded by
# qemu/guest-init.sh (CLIENT_PARAMS: server_cid=4 servers=4,5). Iteration 0 is a control:
# tethered, no kill. For iteration i = 1, 2, ...:
# runs tests/build/torture i untethered in /tmp/ref/i (the crash-free reference: its stdout
# and manifest go to /out/ref-i.out, ref-i.manifest), then the same tethered (a marked
# bash runs it on /torture/i, i.e. on the server's data disk) while it asks the host to
# kill the server VM at random points: once connected, wait 0.2-3 s, write /out/kill-N; the
# host SIGKILLs the running server's QEMU and boots a replacement (CID 4, or CID 5 = "server
# B" for a failover) on the same disk, then writes /out/booted-N ("n= name= cid=
# failover= up="). The client must notice (state leaves connected), reconnect and replay;
# the tethered run must exit 0 and print exactly the reference stdout. Iterations go on
# until TORTURE_KILLS (20) kill points have happened. The host then compares the server's
# final tree with the reference manifests. Results in /out/results.
# Env: TORTURE_KILLS (20), TORTURE_ROUNDS (torture's default), TORTURE_RUN_S (300: limit
# of one tethered run, not counting the outages of its kills), TORTURE_RANDOM (the kill schedule's seed; default: from the clock).
. /tether/tests/vm/lib.sh
set -u
D=/sys/kernel/debug/tether_client
# The stable view (sysfs); debugfs ($D) keeps the live log and the bench.
SYS=/sys/kernel/tether_client
# The workload runs from /usr/bin, a local prefix: a tethered exec of anything outside the
# local prefixes runs the server's file (remote exec), and /tether is not on the export.
cp /tether/tests/build/torture /usr/bin/tether-torture
T=/usr/bin/tether-torture
BASHM=/tmp/bash-marked
KILLS=${TORTURE_KILLS:-20}
ROUNDS=${TORTURE_ROUNDS:-}
RUN_S=${TORTURE_RUN_S:-300}
RECONNECT_S=${TORTURE_RECONNECT_S:-120}
c() { key $SYS/state "$1"; }
connected() { [ "$(c state)" = connected ]; }
now_s() { date +%s; }
# A module without the servers= parameter only ever reconnects to server_cid (4): after a
# failover to CID 5 it cannot, until the next kill brings CID 4 back.
has_servers=0
[ -e /sys/module/tether_client/parameters/servers ] && has_servers=1
seed=${TORTURE_RANDOM:-$(($(date +%s%N) % 32768))}
RANDOM=$seed
echo "# kill schedule seed TORTURE_RANDOM=$seed, kills=$KILLS, servers= parameter: $has_servers"

check "tether_client loaded" grep -q '^tether_client ' /proc/modules
check "client connects within 60 s" wait_until 60 connected
cp /bin/bash $BASHM && setfattr -n trusted.tether.loader -v 1 $BASHM
check "loader flag set on the marked bash" getfattr -n trusted.tether.loader $BASHM
mkdir -p /tmp/ref
rep0=$(c replays) div0=$(c divergences)

kills=0 fails_in_row=0 i=0 skip_wait=0
# same I : the tethered run of iteration I printed the reference's stdout
same() { cmp -s /out/ref-$1.out /out/teth-$1.out; }
# reference I : the crash-free run of iteration I, untethered on the client's tmpfs: its
# stdout and manifest in /out
reference() {
	local rc=0
	timeout 120 $T $1 /tmp/ref/$1 $ROUNDS >/out/ref-$1.out 2>/out/ref-$1.err || rc=$?
	if [ $rc != 0 ]; then
		nok "iteration $1: the crash-free reference run exits 0 (exit $rc: $(head -c 300 /out/ref-$1.err))"
		return 1
	fi
	$T --manifest /tmp/ref/$1 >/out/ref-$1.manifest.tmp && mv /out/ref-$1.manifest.tmp /out/ref-$1.manifest
	rm -rf /tmp/ref/$1
}

# Iteration 0, the control: tethered without a kill (and its time: the cost of one run).
reference 0 || exit 1
start=$(now_ms)
rc=0
timeout "$RUN_S" $BASHM -c "exec $T 0 /torture/0 $ROUNDS" >/out/teth-0.out 2>/out/teth-0.err || rc=$?
echo $rc >/out/teth-0.rc
echo 0 >>/out/iterations
sed 's/^/#   stderr: /' /out/teth-0.err
check "iteration 0 (control, no kill): tethered run exits 0 with the untethered run's stdout (exit $rc, $(( ($(now_ms) - start) / 1000 )) s)" \
	eval '[ $rc = 0 ] && same 0'
# kill_point [FAULT [CRASH_AT]] : ask the host to kill the server, follow the client through
# the outage. FAULT: the server already reset itself at that fault point (the host only
# boots the next one, never a failover). CRASH_AT (POINT,CALL,N): the next server loads
# with that fault point armed and must reset there before the client is connected again.
kill_point() {
	local fault=${1:-} crash_at=${2:-} n=$((kills + 1)) t0 t1 b name cid fo up pbv was what
	what="kill $n"
	pbv=$(c peer_boot_verifier)
	was=$(c state)
	t0=$(now_ms) kp_t0=$t0
	if [ -n "$fault" ]; then
		what="fault kill $n ($fault)"
		echo "$fault" >/out/fault-$n
		fkills=$((fkills + 1))
	fi
	[ -z "$crash_at" ] || echo "$crash_at" >/out/bootarm-$n
	touch /out/kill-$n
	kills=$n
	if ! wait_until 30 eval '! connected'; then
		nok "$what: the client notices the crash within 30 s (state=$(c state))"
		return 1
	fi
	t1=$(now_ms)
	if ! wait_until 300 test -e /out/booted-$n; then
		nok "$what: the host boots a replacement server within 300 s"
		return 1
	fi
	b=$(cat /out/booted-$n)
	name=$(sed -n 's/.*name=\([^ ]*\).*/\1/p' <<<"$b") cid=$(sed -n 's/.*cid=\([0-9]*\).*/\1/p' <<<"$b")
	fo=$(sed -n 's/.*failover=\([01]\).*/\1/p' <<<"$b") up=$(sed -n 's/.*up=\([01]\).*/\1/p' <<<"$b")
	SRV=$name
	if [ "$up" != 1 ]; then
		nok "$what: replacement $name (cid $cid) comes up"
		return 1
	fi
	if [ -n "$crash_at" ]; then
		if wait_crash "$RECONNECT_S"; then
			ok "$what: $name (cid $cid), loaded with crash_at=$crash_at, resets there before the client is back: $(crash_line)"
			return 0
		fi
		nok "$what: $name (cid $cid), loaded with crash_at=$crash_at, resets there within $RECONNECT_S s (state=$(c state))"
		return 1
	fi
	if [ "$fo" = 1 ] && [ $has_servers = 0 ]; then
		skip "kill $n: failover to $name (cid $cid): client reconnects and replays" \
			"tether_client has no servers= parameter: it waits for cid 4 (the next kill brings it back)"
		skip_wait=1
		return 0
	fi
	if wait_until "$RECONNECT_S" eval 'connected && [ "$(c peer_boot_verifier)" != "$pbv" ]'; then
		if [ "$was" = connected ]; then was="noticed in $((t1 - t0)) ms"; else was="while $was"; fi
		ok "$what: $([ "$fo" = 1 ] && echo failover || echo reboot) to $name (cid $cid): $was, reconnected $(( ($(now_ms) - t1) / 1000 )) s later"
	else
		nok "$what: $([ "$fo" = 1 ] && echo failover || echo reboot) to $name (cid $cid): client reconnects within $RECONNECT_S s (state=$(c state))"
		return 1
	fi
}

# --- fault points (server_comm/faults.rs): deterministic crashes -----------------------
# Each case: SETUP runs tethered in $FX/ID (a marked bash, W=the case's directory on the
# server's disk; it ends with a committed call, so nothing of it is retained), then the
# running server is armed (arm: debugfs control lines through the host), RUN runs in a
# tethered background process (stdin: a local input file), the server resets at its fault
# point, the client asks for the kill/boot cycle (kill_point FAULT: the QEMU already
# exited). Then RUN must exit as it does untethered, print the same, and the tree must equal
# the untethered crash-free reference (SETUP and RUN in $FR/ID on the client's tmpfs): the
# torture's manifest (path, type, mode, size, SHA-256) of both.
FX=/torture/faults FR=/tmp/fref SRV=srv0 fkills=0 narm=0 fpid=
FAULTS=${TORTURE_FAULTS-a bf cd e g h s m t n l f}
# crash_line : the crash point line of the running server's console ($SRV), if any.
crash_line() { grep -a -o 'crash point .* reached' /shared/$SRV/console.log 2>/dev/null | head -n 1; }
# wait_crash SECONDS : until the running server reset itself at its fault point.
wait_crash() { wait_until "$1" eval '[ -n "$(crash_line)" ]'; }
# arm LINE... : the host writes each LINE into the running server's debugfs control; waits
# for the answer (armf: one of the lines makes the server reset at once: no answer comes).
arm() {
	narm=$((narm + 1))
	printf '%s\n' "$@" >/out/arm-$narm.tmp && mv /out/arm-$narm.tmp /out/arm-$narm
	if wait_until 30 test -e /out/armed-$narm && ! grep -q ': failed$' /out/armed-$narm; then
		echo "# arm $narm on $SRV: $(tr '\n' ';' </out/armed-$narm)"
		return 0
	fi
	nok "arm $narm on $SRV: $* ($(tr '\n' ';' </out/armed-$narm 2>/dev/null || echo 'no answer in 30 s'))"
	return 1
}
armf() {
	narm=$((narm + 1))
	printf '%s\n' "$@" >/out/arm-$narm.tmp && mv /out/arm-$narm.tmp /out/arm-$narm
}
# fref ID SETUP RUN [INPUT] : the case's untethered crash-free reference.
fref() {
	local rc=0
	rm -rf "${FR:?}/$1"
	W=$FR/$1 bash -c "$2" || echo "# fault $1: reference SETUP exits $?"
	W=$FR/$1 bash -c "$3" <"${4:-/dev/null}" >/out/fault-$1.ref.out 2>&1 || rc=$?
	echo "exit=$rc" >>/out/fault-$1.ref.out
	$T --manifest $FR/$1 >/out/fault-$1.ref.manifest 2>&1
}
# fsetup ID SETUP : SETUP tethered in $FX/ID.
fsetup() {
	W=$FX/$1 $BASHM -c "$2" && return 0
	nok "fault $1: SETUP runs tethered (exit $?)"
	return 1
}
# frun ID RUN [INPUT] : RUN tethered in the background ($fpid).
frun() {
	W=$FX/$1 $BASHM -c "$2" <"${3:-/dev/null}" >/out/fault-$1.out 2>&1 &
	fpid=$!
}
# fcrash ID WHAT [CRASH_AT] : the running server resets at its fault point WHAT within 60 s;
# the kill/boot cycle follows (CRASH_AT: armed in the next server, see kill_point).
fcrash() {
	if ! wait_crash 60; then
		nok "fault $1: $SRV resets at $2 within 60 s (state=$(c state))"
		# Not armed any more for the cases and iterations that follow.
		arm "crash_at off" "hold_flush off"
		return 1
	fi
	echo "# fault $1: $SRV: $(crash_line)"
	kill_point "$1 $2" "${3:-}"
}
# fcheck ID DESC : RUN's exit and output, and the tree, against the reference.
fcheck() {
	local rc=0
	reap "$fpid" 120 >&2 || rc=$?
	echo "exit=$rc" >>/out/fault-$1.out
	# The tree is read tethered: not without a server (it would wait for one).
	if ! wait_until "$RECONNECT_S" connected; then
		nok "fault $1: $2: connected again to compare the tree (state=$(c state))"
		return 1
	fi
	$BASHM -c "exec $T --manifest $FX/$1" >/out/fault-$1.manifest 2>&1
	if cmp -s /out/fault-$1.ref.out /out/fault-$1.out && cmp -s /out/fault-$1.ref.manifest /out/fault-$1.manifest; then
		ok "fault $1: $2: the app's exit and output, and the tree ($(wc -l </out/fault-$1.manifest) entries), equal the crash-free run"
	else
		nok "fault $1: $2: the app's exit and output, and the tree, equal the crash-free run (app: $(tr '\n' ' ' </out/fault-$1.out | head -c 200); reference: $(tr '\n' ' ' </out/fault-$1.ref.out | head -c 200))"
		echo "# fault $1: reference (-) vs tethered (+):"
		diff /out/fault-$1.ref.out /out/fault-$1.out | sed "s/^/# fault $1:   /"
		diff /out/fault-$1.ref.manifest /out/fault-$1.manifest | sed "s/^/# fault $1:   /"
	fi
}
# The cases. Inputs are local files (stdin), so the tethered shells need no pipes.
seq 1 100000 | head -c 40960 >/tmp/fin-b   # 10 blocks of 4096
seq 7 100000 | head -c 16384 >/tmp/fin-c   # 4 blocks
printf 'P-retained-writetmp-new-data....' >/tmp/fin-a
# a. rename over a file with retained writes: P and tmp both written (unflushed: hold_flush),
# then mv -f tmp P (coreutils: renameat2 NOREPLACE fails EEXIST, then renameat): crash
# before the renameat's reply (after its commit). P must be tmp's content.
FA_SETUP='mkdir -p "$W" && cd "$W" && printf OLD-P-0123456789 >P && printf old-tmp-content! >tmp && touch "$W"'
FA_RUN='cd "$W" && dd of=P bs=16 count=1 conv=notrunc,nocreat status=none && dd of=tmp bs=16 count=1 conv=notrunc,nocreat status=none && mv -f tmp P; echo "mv=$?"'
# b+f. a write in flight: dd of 10 blocks at block 12 of a 16-block file, crash before the
# reply of its 4th pwrite64; the replacement server loads with in_replay armed: the replay
# of dd's open file is cut, and runs again on the third server; dd goes on with its fd.
FB_SETUP='mkdir -p "$W" && dd if=/dev/zero of="$W/f" bs=4096 count=16 status=none && touch "$W"'
FB_RUN='dd of="$W/f" bs=4096 seek=12 conv=notrunc,nocreat status=none; echo "dd=$?"'
# c+d. unflushed writes (hold_flush), crash in_flush (the sync succeeded, no SERVER_FLUSHED
# went out); the replacement loads with in_redo armed: the redo of those writes is cut at
# its first pwrite64, and runs again on the third server.
FC_SETUP='mkdir -p "$W" && dd if=/dev/zero of="$W/g" bs=4096 count=8 status=none && touch "$W"'
FC_RUN='dd of="$W/g" bs=4096 seek=2 conv=notrunc,nocreat status=none; echo "dd=$?"'
# e. unlink, then mkdir, each crashed before its reply (after its commit): run again after
# the reboot, its ENOENT/EEXIST is the call's own doing (rpc.rs rerun): the app sees 0.
FE_SETUP='mkdir -p "$W" && printf x >"$W/x" && touch "$W"'
FE_RUN1='cd "$W" && unlink x; echo "unlink=$?"'
FE_RUN2='cd "$W" && mkdir d; echo "mkdir=$?"'
FE_BOTH="$FE_RUN1; $FE_RUN2"
# g. unflushed writes to a new file (hold_flush), a second name for it, its first name
# removed, crash after the unlink's reply: the file lives on under the second name, so the
# unlink's commit synced the whole export (REPLY_SYNCED_ALL) and the client dropped what it
# retained: the data must be on disk.
# h. the same with a rename of the new file, crash after the rename's reply: the commit
# synced the moved file; the client dropped what it retained for both names.
seq 1 2000 >/tmp/fin-g
FG_SETUP='mkdir -p "$W" && touch "$W"'
FG_RUN='cd "$W" && cat >P && ln P Q && rm P; echo "rm=$?"'
FH_RUN='cd "$W" && cat >A && mv A B; echo "mv=$?"'
# s. a program nobody here wrote: Debian's sqlite3 inserts 2000 rows in one transaction
# (rollback journal: the journal written and synced, then the database pages, synced, then
# the journal deleted), with its writes unflushed (hold_flush); crash before the reply of its
# 20th pwrite64 (within the transaction's writes). sqlite3 goes on after the replay; the
# database (bytes: page for page) and its answers equal the crash-free run's.
FS_SETUP='mkdir -p "$W" && cd "$W" && sqlite3 db "create table t(x integer primary key, y text); insert into t values(0, '"'zero'"');" && touch "$W"'
FS_RUN='cd "$W" && sqlite3 db "with recursive c(i) as (select 1 union all select i + 1 from c where i < 2000) insert into t select i, printf('"'%0200d'"', i) from c;"; echo "insert=$?"; sqlite3 db "pragma integrity_check; select count(*), sum(x), sum(length(y)) from t;"; ls'
# m. stores through a shared writable mapping (Debian's python3, mmap): 16 pages, then
# msync, whose write-back (one pwrite64, client_proxy/syscalls/shmap.rs) crashes before its
# reply with the data unflushed (hold_flush); after the replay the msync returns, more
# stores follow and reach the file at munmap. The file equals the crash-free run's.
FM_SETUP='mkdir -p "$W" && dd if=/dev/zero of="$W/m" bs=4096 count=16 status=none && touch "$W"'
FM_RUN='cd "$W" && python3 -c "
import mmap
with open(\"m\", \"r+b\") as f, mmap.mmap(f.fileno(), 0) as m:
    for i in range(16):
        m[i * 4096:i * 4096 + 8] = b\"page%04d\" % i
    m.flush()
    m[100:106] = b\"second\"
"; echo "mmap=$?"'
# t. four threads of one process (Debian's python3) each write a file of 50 pages, their
# calls running at once on four shadow threads (CLIENT_THREAD_CALL), unflushed; crash
# before the reply of the 30th pwrite64. The replay sends every thread's call in flight
# again: the new server's shadow starts the threads again. The files equal the crash-free
# run's.
FT_SETUP='mkdir -p "$W" && touch "$W"'
FT_RUN='cd "$W" && python3 -c "
import threading
def w(i):
    with open(\"t%d\" % i, \"wb\") as f:
        for j in range(50):
            f.write(bytes([65 + i]) * 4096)
ts = [threading.Thread(target=w, args=(i,)) for i in range(4)]
for t in ts:
    t.start()
for t in ts:
    t.join()
"; echo "threads=$?"'
# n. unflushed writes (hold_flush) of 256 KiB to a new file; the server's disk is then
# filled (torture-server.sh's "fill": a preallocated file of root's, synced, that leaves
# nothing for the squashed client even once the unflushed data's reservation is gone), and
# the server crashes before the reply of the app's next call. The redo on the rebooted
# server fails (ENOSPC): the app (Debian's python3) gets ENOSPC from its fsync, as from NFS
# after a failed write-back, and 0 from its close (the error is reported once).
FN_SETUP='mkdir -p "$W" && touch "$W"'
FN_RUN='cd "$W" && python3 -c "
import errno, os, time
def res(f):
    try:
        f()
        return \"0\"
    except OSError as e:
        return errno.errorcode[e.errno]
fd = os.open(\"f\", os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
print(\"write=%d\" % os.write(fd, b\"n\" * 262144), flush=True)
while not os.path.exists(\"full\"):
    time.sleep(0.2)
os.pread(fd, 1, 0)
print(\"fsync=\" + res(lambda: os.fsync(fd)), flush=True)
print(\"close=\" + res(lambda: os.close(fd)), flush=True)
"'
# l. locks across a crash: Debian's python3 (A) takes a flock on L and, through a second
# fd, a record lock on its first 100 bytes (lockf), then waits; the server crashes before
# the reply of its next call (pread64). The replay takes both again: another tethered
# process (Debian's flock(1), then python3's lockf without waiting) cannot take them
# before the crash, nor after it, and can once A let them go.
FL_SETUP='mkdir -p "$W" && printf 0123456789 >"$W/L" && touch "$W"'
FL_RUN='cd "$W" && python3 -c "
import fcntl, os, time
def wait(name):
    while not os.path.exists(name):
        time.sleep(0.2)
fd = os.open(\"L\", os.O_RDWR)
fcntl.flock(fd, fcntl.LOCK_EX)
fd2 = os.open(\"L\", os.O_RDWR)
fcntl.lockf(fd2, fcntl.LOCK_EX, 100, 0)
print(\"locked\", flush=True)
wait(\"go\")
os.pread(fd, 1, 0)
print(\"replayed\", flush=True)
wait(\"release\")
"; echo "a=$?"'
FL_TRY='cd "$W" && flock -n L true; echo -n "flock=$? "; python3 -c "
import fcntl, os
fd = os.open(\"L\", os.O_RDWR)
try:
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 100, 0)
    print(\"lockf=0\")
except OSError as e:
    print(\"lockf=%d\" % e.errno)
"'
# f. forks during an outage: a tethered bash forks 3000 subshells that exit at once while
# the server is killed and a replacement boots (a plain kill, no crash point). Each fork
# and exit is an event for the server; a process that forked and exited before either
# was sent leaves nothing in the queue (rpc.rs queue), so none is dropped (more than the
# queue's 4096 slots would be), and the shell goes on after the reboot.
FF_RUN='mkdir -p "$W" && cd "$W" && : >/dev/shm/f-started &&
while [ ! -e /dev/shm/f-go ]; do sleep 0.1; done &&
for i in $(seq 3000); do ( : ); done && echo forks-done >done && cat done'
# ftry ID K : FL_TRY tethered in the case's directory, its answer in /out/fault-ID.tryK.
ftry() { W=$FX/$1 $BASHM -c "$FL_TRY" >/out/fault-$1.try$2 2>&1; }
mkdir -p $FR
for fc in $FAULTS; do
	wait_until "$RECONNECT_S" connected || { nok "fault $fc: connected before the case (state=$(c state))"; break; }
	case $fc in
	a)
		fref a "$FA_SETUP" "$FA_RUN" /tmp/fin-a
		fsetup a "$FA_SETUP" && arm "hold_flush on" "crash_at before_reply renameat 1" || continue
		frun a "$FA_RUN" /tmp/fin-a
		fcrash a "before_reply renameat"
		fcheck a "rename over a file with retained writes, crash before the rename's reply"
		;;
	bf)
		fref bf "$FB_SETUP" "$FB_RUN" /tmp/fin-b
		fsetup bf "$FB_SETUP" && arm "hold_flush on" "crash_at before_reply pwrite64 4" || continue
		frun bf "$FB_RUN" /tmp/fin-b
		fcrash bf "before_reply pwrite64" in_replay,any,1 && fcrash bf in_replay
		fcheck bf "a write in flight (crash before its reply), then a replay of its open file cut (in_replay)"
		;;
	cd)
		fref cd "$FC_SETUP" "$FC_RUN" /tmp/fin-c
		fsetup cd "$FC_SETUP" && arm "hold_flush on" || continue
		frun cd "$FC_RUN" /tmp/fin-c
		reap "$fpid" 60 >&2
		armf "crash_at in_flush any 1" "hold_flush off"
		fcrash cd in_flush in_redo,pwrite64,1 && fcrash cd in_redo
		sleep 0 &
		fpid=$!
		fcheck cd "unflushed writes, crash in the flush (in_flush), then in their redo (in_redo)"
		;;
	e)
		fref e "$FE_SETUP" "$FE_BOTH"
		fsetup e "$FE_SETUP" && arm "crash_at before_reply unlink 1" || continue
		frun e "$FE_RUN1"
		fcrash e "before_reply unlink"
		reap "$fpid" 120 >&2
		mv /out/fault-e.out /out/fault-e.out1
		arm "crash_at before_reply mkdir 1" || continue
		frun e "$FE_RUN2"
		fcrash e "before_reply mkdir"
		reap "$fpid" 120 >&2
		cat /out/fault-e.out1 /out/fault-e.out >/out/fault-e.out2 && mv /out/fault-e.out2 /out/fault-e.out
		sleep 0 &
		fpid=$!
		fcheck e "unlink and mkdir crashed before their replies: run again, the app sees 0"
		;;
	g)
		fref g "$FG_SETUP" "$FG_RUN" /tmp/fin-g
		fsetup g "$FG_SETUP" && arm "hold_flush on" "crash_at after_reply unlinkat 1" || continue
		frun g "$FG_RUN" /tmp/fin-g
		fcrash g "after_reply unlinkat"
		fcheck g "unflushed writes, a hard link, the first name removed, crash after the unlink's reply"
		;;
	h)
		fref h "$FG_SETUP" "$FH_RUN" /tmp/fin-g
		fsetup h "$FG_SETUP" && arm "hold_flush on" "crash_at after_reply renameat2 1" || continue
		frun h "$FH_RUN" /tmp/fin-g
		fcrash h "after_reply renameat2"
		fcheck h "unflushed writes, the file renamed, crash after the rename's reply"
		;;
	s)
		fref s "$FS_SETUP" "$FS_RUN"
		fsetup s "$FS_SETUP" && arm "hold_flush on" "crash_at before_reply pwrite64 20" || continue
		frun s "$FS_RUN"
		fcrash s "before_reply pwrite64"
		fcheck s "sqlite3 inserts 2000 rows in a transaction, crash before its 20th write's reply"
		;;
	m)
		fref m "$FM_SETUP" "$FM_RUN"
		fsetup m "$FM_SETUP" && arm "hold_flush on" "crash_at before_reply pwrite64 1" || continue
		frun m "$FM_RUN"
		fcrash m "before_reply pwrite64"
		fcheck m "stores through a shared mapping, crash before the reply of msync's write-back"
		;;
	t)
		fref t "$FT_SETUP" "$FT_RUN"
		fsetup t "$FT_SETUP" && arm "hold_flush on" "crash_at before_reply pwrite64 30" || continue
		frun t "$FT_RUN"
		fcrash t "before_reply pwrite64"
		fcheck t "four threads write files at once, crash before the 30th write's reply"
		;;
	n)
		# No crash-free reference: the app must see the error, and nothing else.
		d0=$(c divergences) e0=$(c redo_errors)
		fsetup n "$FN_SETUP" && arm "hold_flush on" "crash_at before_reply pread64 1" || continue
		frun n "$FN_RUN"
		# No answer to wait for: the app sees the filled disk's "full" and makes the call
		# that resets the server at once.
		wait_until 60 test -s /out/fault-n.out && armf "fill /srv$FX/n" || continue
		fcrash n "before_reply pread64"
		reap "$fpid" 120 >&2
		out=$(tr '\n' ' ' </out/fault-n.out)
		check "fault n: the redo of unflushed writes meets a full disk: the app's fsync fails with ENOSPC, once; its close returns 0 ($out)" \
			test "$out" = "write=262144 fsync=ENOSPC close=0 "
		dd=$(($(c divergences) - d0)) de=$(($(c redo_errors) - e0))
		check "fault n: each write the redo could not make again (2 pieces of 128 KiB) is a divergence and a redo error ($dd, $de)" \
			test "$dd $de" = "2 2"
		# The disk's space back for what follows (the directory is the client's).
		check "fault n: the filler removed" $BASHM -c "rm -f $FX/n/fill $FX/n/full"
		div0=$(c divergences)
		;;
	l)
		fsetup l "$FL_SETUP" || continue
		frun l "$FL_RUN"
		wait_until 60 grep -q locked /out/fault-l.out || { nok "fault l: the app took its locks ($(cat /out/fault-l.out))"; continue; }
		ftry l 0
		arm "crash_at before_reply pread64 1" && W=$FX/l $BASHM -c 'touch "$W/go"' || continue
		fcrash l "before_reply pread64"
		wait_until 120 grep -q replayed /out/fault-l.out
		ftry l 1
		W=$FX/l $BASHM -c 'touch "$W/release"'
		reap "$fpid" 120 >&2
		ftry l 2
		check "fault l: another process cannot take the app's flock and record lock before the crash ($(cat /out/fault-l.try0))" \
			test "$(cat /out/fault-l.try0)" = "flock=1 lockf=11"
		check "fault l: nor after the replay took them again ($(cat /out/fault-l.try1))" \
			test "$(cat /out/fault-l.try1)" = "flock=1 lockf=11"
		check "fault l: and can once the app let them go ($(cat /out/fault-l.try2)); the app exits 0 ($(tr '\n' ' ' </out/fault-l.out))" \
			eval '[ "$(cat /out/fault-l.try2)" = "flock=0 lockf=0" ] && grep -qx a=0 /out/fault-l.out'
		;;
	f)
		# No crash point: the server is killed while the loop runs.
		q0=$(dmesg | grep -c "cannot queue")
		mkdir -p /dev/shm && rm -f /dev/shm/f-started /dev/shm/f-go
		W=$FX/f $BASHM -c "$FF_RUN" >/out/fault-f.out 2>&1 &
		fpid=$!
		wait_until 60 test -e /dev/shm/f-started || { nok "fault f: the tethered shell started"; continue; }
		touch /dev/shm/f-go
		kill_point "f forks"
		rc=0
		reap "$fpid" 300 >&2 || rc=$?
		q1=$(dmesg | grep -c "cannot queue")
		check "fault f: 3000 processes forked and gone while the server was away: the shell goes on after the reboot (exit $rc: $(tr '\n' ' ' </out/fault-f.out)), no fork or exit event was dropped ($((q1 - q0)) 'cannot queue')" \
			eval '[ $rc = 0 ] && grep -qx forks-done /out/fault-f.out && [ "$q1" = "$q0" ]'
		;;
	*) nok "fault case $fc: no such case (a bf cd e g h s m t n l f)" ;;
	esac
done

while [ $((kills - fkills)) -lt $KILLS ] && [ $fails_in_row -lt 3 ]; do
	i=$((i + 1))
	# The crash-free reference, untethered, on the client's tmpfs.
	reference $i || break
	# The same, tethered, with kill points.
	k0=$kills
	start=$(now_s) deadline=$(($(now_s) + RUN_S)) out_s=0
	$BASHM -c "exec $T $i /torture/$i $ROUNDS" >/out/teth-$i.out 2>/out/teth-$i.err &
	p=$!
	while [ $((kills - fkills)) -lt $KILLS ] && ! gone $p && [ "$(now_s)" -lt $deadline ]; do
		if [ $skip_wait = 1 ]; then
			skip_wait=0
		else
			if ! wait_until "$RECONNECT_S" connected; then
				echo "# iteration $i: not connected after $RECONNECT_S s (state=$(c state)): a kill to get a server back"
			else
				ms=$((200 + RANDOM % 2801))
				sleep "$((ms / 1000)).$(printf %03d $((ms % 1000)))"
				gone $p && break
			fi
		fi
		if kill_point; then fails_in_row=0; else fails_in_row=$((fails_in_row + 1)); fi
		# the run's deadline moves by the outage (kill request to reconnection)
		out_s=$((out_s + ($(now_ms) - kp_t0) / 1000))
		deadline=$((deadline + ($(now_ms) - kp_t0) / 1000))
		[ $fails_in_row -lt 3 ] || break
	done
	left=$((deadline - $(now_s)))
	rc=0
	reap $p $((left > 10 ? left : 10)) >&2 || rc=$?
	echo $rc >/out/teth-$i.rc
	echo "# iteration $i: $((kills - k0)) kills, exit $rc, $(($(now_s) - start)) s ($out_s s of them in outages)"
	sed 's/^/#   stderr: /' /out/teth-$i.err
	if [ $rc = 0 ] && same $i; then
		ok "iteration $i: tethered run exits 0 with the crash-free run's stdout ($((kills - k0)) kills during it)"
	else
		nok "iteration $i: tethered run exits 0 with the crash-free run's stdout ($((kills - k0)) kills during it; exit $rc; $(head -c 400 /out/teth-$i.err | tr '\n' ' ')$(same $i || echo '; stdout differs'))"
		diff /out/ref-$i.out /out/teth-$i.out >&2
	fi
	echo $i >>/out/iterations
	# A run that fails before any kill would make this loop spin: it counts as a failure.
	if [ $rc != 0 ] && [ $kills = $k0 ]; then fails_in_row=$((fails_in_row + 1)); fi
done
check "$KILLS random kill points done ($((kills - fkills)); $fkills fault kills)" test "$((kills - fkills))" = "$KILLS"
check "connected at the end" wait_until "$RECONNECT_S" connected
echo "# replays=$(($(c replays) - rep0)) divergences=$(($(c divergences) - div0))"
check "no replay divergences ($(($(c divergences) - div0)))" test "$(c divergences)" = "$div0"
# Every tethered process has exited (or was reaped above): none may be left in the module.
check "no tethered task left ($(key $SYS/tasks tethered) in $SYS/tasks)" test "$(key $SYS/tasks tethered)" = 0
grep -E '^(state|connects|disconnects|replays|divergences|flushed_up_to|verifier_changes)=' $SYS/state
touch /out/client-done
