#!/bin/bash
# Client VM role of tests/bench-all.sh (make bench's one-run table). Once the server is up:
# mounts its NFS export (NFSv4.2, hard, actimeo=0) at /mnt/nfs, loads tether_client over
# vsock, and runs BENCH_REPS repetitions of every peer in turn:
#   local  : opbench and bench-work.sh on the server's /srv (a request the server runs)
#   nfs    : the same on /mnt/nfs
#   rawv   : userspace vsock ping 64 B and 4 KiB, blast BENCH_BULK bytes (no per-byte work),
#            module-to-module ping 64 B (debugfs bench)
#   tv     : opbench and bench-work.sh tethered over vsock (marked copies; paths under the
#            server's export root)
#   rawt   : the raw figures over TCP (vsock_bench with TETHER_TCP_SERVER; the module's ping
#            after it was reloaded with servers=tcp:SERVER)
#   tt     : tethered over TCP
#   stv    : where the time of one call goes, tethered over vsock (after tv): opbench with
#            OPBENCH_STAGES=pread64 and =create (BENCH_STAGE_N calls of one kind between two
#            stops); both modules' calls files (/sys/kernel/tether_{client,server}/calls) read
#            at each stop, their differences per call (stage_figures)
# Each peer's figures of repetition R go to /shared/data/PEER-R.txt ("name value" lines);
# the raw streams are verified once at the start (bulk with a checksum, both transports).
# Touching RUN/stop-reps on the host ends the run after the current repetition.
set -u
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
. /tether/tests/vm/lib.sh
D=/sys/kernel/debug/tether_client   # the bench; the state is in sysfs
SYS=/sys/kernel/tether_client
KO=/tether/client_proxy/tether_client.ko
OPB=/tether/tests/build/opbench
VB=/tether/tests/build/vsock_bench
WORK=/tether/tests/vm/bench-work.sh
REPS=${BENCH_REPS:-3} N=${BENCH_N:-200} MIB=${BENCH_MIB:-1024} RANDOPS=${BENCH_RANDOPS:-2000}
DIRENTS=${BENCH_DIRENTS:-1000} GITFILES=${BENCH_GIT_FILES:-1000} COMMITS=${BENCH_COMMITS:-200}
PINGS=${BENCH_PINGS:-2000} BULK=${BENCH_BULK:-268435456} STAGEN=${BENCH_STAGE_N:-500}
OUT=/shared/data
mkdir -p $OUT
say() { echo "$(date +%T) $*"; }
wait_until 300 test -e /shared/server-up || { say "error: server not up"; exit 1; }

# srvreq NAME SCRIPT : run SCRIPT on the server, wait for it (no limit: the VM's).
srvreq() {
	printf '%s\n' "$2" >/shared/req/$1.tmp && mv /shared/req/$1.tmp /shared/req/$1.sh
	while [ ! -e /shared/req/$1.rc ]; do sleep 0.2; done
	cat /shared/req/$1.out
	return "$(cat /shared/req/$1.rc)"
}
connected() { wait_until 60 grep -qx state=connected $SYS/state; }
load() { # PARAMS... : (re)load the client module, until connected
	grep -q '^tether_client ' /proc/modules && rmmod tether_client
	insmod $KO "$@" && connected || say "error: insmod tether_client $* did not connect"
}

mkdir -p /mnt/nfs
wait_until 60 mount -t nfs4 -o vers=4.2,hard,actimeo=0 "$NET_SERVER_IP":/ /mnt/nfs ||
	say "error: NFS mount failed"
grep ' /mnt/nfs ' /proc/mounts
mkdir -p /var/lib/tether
load server_cid=4
cp /bin/bash /tmp/bash-m && setfattr -n trusted.tether.loader -v 1 /tmp/bash-m
cp $OPB /tmp/opbench-m && setfattr -n trusted.tether.loader -v 1 /tmp/opbench-m

# The raw streams, verified once (a checksum on both ends; not timed in the tables).
wait_until 30 timeout 5 $VB ping "$SERVER_CID" 9000 1 64 >/dev/null
{
	echo "vsock $($VB bulk "$SERVER_CID" 9000 16777216 65536)"
	echo "tcp $(TETHER_TCP_SERVER=$NET_SERVER_IP TETHER_SPLIT=1048576 $VB bulk 0 9000 16777216 65536)"
} >$OUT/verify.txt 2>&1
cat $OUT/verify.txt

# raw TRANSPORT FILE : userspace figures over vsock or TCP, then the module's ping.
raw() {
	local env=() r
	[ "$1" = tcp ] && env=(TETHER_TCP_SERVER=$NET_SERVER_IP TETHER_SPLIT=1048576)
	{
		r=$(env "${env[@]}" $VB ping "$SERVER_CID" 9000 "$PINGS" 64)
		echo "ping64_p50_us $(awk -v x="$(val p50_ns "$r")" 'BEGIN{printf "%.1f", x/1000}')"
		echo "ping64_p99_us $(awk -v x="$(val p99_ns "$r")" 'BEGIN{printf "%.1f", x/1000}')"
		r=$(env "${env[@]}" $VB ping "$SERVER_CID" 9000 "$PINGS" 4096)
		echo "ping4k_p50_us $(awk -v x="$(val p50_ns "$r")" 'BEGIN{printf "%.1f", x/1000}')"
		echo "ping4k_p99_us $(awk -v x="$(val p99_ns "$r")" 'BEGIN{printf "%.1f", x/1000}')"
		r=$(env "${env[@]}" $VB blast "$SERVER_CID" 9000 "$BULK" 65536)
		echo "blast_MBps $(awk -v b="$(val bytes "$r")" -v n="$(val ns "$r")" 'BEGIN{printf "%.1f", b*1000/n}')"
		echo "ping $PINGS 64" >$D/bench && r=$(cat $D/bench)
		echo "modping64_p50_us $(awk -v x="$(val p50_ns "$r")" 'BEGIN{printf "%.1f", x/1000}')"
		echo "modping64_p99_us $(awk -v x="$(val p99_ns "$r")" 'BEGIN{printf "%.1f", x/1000}')"
	} >"$2" 2>&1
}
val() { sed -n "s/.*\b$1=\([0-9]*\).*/\1/p" <<<"$2"; }
# peer NAME REP OPDIR WORKDIR TAR RUNNER... : opbench and bench-work.sh by RUNNER
tethered() { # OPDIR WORKDIR TAR FILE
	/tmp/opbench-m "$1" "$N" "$MIB" "$RANDOPS" "$DIRENTS" >"$4" 2>&1
	/tmp/bash-m -c "set -- $2 $3 $GITFILES $COMMITS; $(cat $WORK)" >>"$4" 2>&1
}

# stage_figures OP REP : opbench OPBENCH_STAGES=OP (pread64 or create) tethered in /b/st-REP,
# stopped before and after its STAGEN calls; at each stop both modules' calls files go to
# $OUT/calls-REP-OP-{before,after}-{client,server}.txt. Appends to $OUT/stv-REP.txt, as
# st_OP_NAME means in us per call over the window (the differences of the two readings):
#   client_us (the call's whole time on the client, submit to reply), send_us, wait_us,
#   wake_us (the client's stages), queue_us, reply_us (the server's), syscall_us (the call
#   on the server: the shadow's pick-up to its reply), calls (the call's count on the
#   client), window (every call's count in the window: stage_send), p50_us / p99_us (opbench).
stage_figures() {
	local op=$1 r=$2 pid when pre=$OUT/calls-$2-$1 call
	OPBENCH_STAGES=$op /tmp/opbench-m /b/st-$r "$STAGEN" >$OUT/st-$r-$op.txt 2>&1 &
	pid=$!
	for when in before after; do
		# stopped (T) at raise(SIGSTOP); gone: it failed
		while [ "$(awk '{ print $3 }' /proc/$pid/stat 2>/dev/null)" != T ]; do
			kill -0 $pid 2>/dev/null || { say "error: opbench $op ended before its stop"; return 1; }
			sleep 0.1
		done
		cat $SYS/calls >$pre-$when-client.txt
		srvreq calls-$r-$op-$when "cat /sys/kernel/tether_server/calls" >$pre-$when-server.txt
		kill -CONT $pid
	done
	wait $pid || say "error: opbench $op failed"
	case $op in pread64) call=pread64 ;; create) call=openat ;; esac
	{
		# per call: the mean over the window (differences of COUNT and TOTAL_US)
		awk -v op="$op" -v call="$call" '
			FNR == 1 { f++ } $1 == "call" { next }
			{ c[f, $1] = $2; t[f, $1] = $3 }
			function d(k, w) { return c[w + 1, k] - c[w, k] }
			function m(k, w) { n = d(k, w); return n > 0 ? (t[w + 1, k] - t[w, k]) / n : "" }
			function out(name, v) { if (v != "") printf "st_%s_%s %.1f\n", op, name, v }
			END {
				# files: 1 client before, 2 client after, 3 server before, 4 server after
				out("client_us", m(call, 1)); out("send_us", m("stage_send", 1))
				out("wait_us", m("stage_wait", 1)); out("wake_us", m("stage_wake", 1))
				out("queue_us", m("stage_queue", 3)); out("syscall_us", m(call, 3))
				out("reply_us", m("stage_reply", 3))
				printf "st_%s_calls %d\nst_%s_window %d\nst_%s_srvcalls %d\n", op, d(call, 1),
					op, d("stage_send", 1), op, d(call, 3)
			}' $pre-before-client.txt $pre-after-client.txt $pre-before-server.txt $pre-after-server.txt
		sed -n "s/^\(pread64\|create_open\)_\(p[0-9]*_us\) /st_${op}_\2 /p" $OUT/st-$r-$op.txt
	} >>$OUT/stv-$r.txt
}

# (/shared/stop-reps, touched on the host: no further repetition after the current one)
for ((r = 1; r <= REPS; r++)); do
	[ ! -e /shared/stop-reps ] || { say "stop-reps: ending after $((r - 1)) repetitions"; break; }
	say "repetition $r of $REPS: local"
	srvreq local-$r "$OPB /srv/b/local-$r $N $MIB $RANDOPS $DIRENTS >$OUT/local-$r.txt 2>&1
		bash $WORK /srv/b/localw-$r /srv/b/src.tar $GITFILES $COMMITS >>$OUT/local-$r.txt 2>&1
		rm -rf /srv/b/local-$r /srv/b/localw-$r; sync"
	say "repetition $r: nfs"
	$OPB /mnt/nfs/b/nfs-$r "$N" "$MIB" "$RANDOPS" "$DIRENTS" >$OUT/nfs-$r.txt 2>&1
	bash $WORK /mnt/nfs/b/nfsw-$r /mnt/nfs/b/src.tar "$GITFILES" "$COMMITS" >>$OUT/nfs-$r.txt 2>&1
	rm -rf /mnt/nfs/b/nfs-$r /mnt/nfs/b/nfsw-$r
	say "repetition $r: raw vsock"
	raw vsock $OUT/rawv-$r.txt
	say "repetition $r: tether vsock"
	tethered /b/tv-$r /b/tvw-$r /b/src.tar $OUT/tv-$r.txt
	srvreq clean-tv-$r "rm -rf /srv/b/tv-$r /srv/b/tvw-$r; sync"
	say "repetition $r: where the time of one call goes (tether vsock)"
	stage_figures pread64 $r && stage_figures create $r
	srvreq clean-st-$r "rm -rf /srv/b/st-$r; sync"
	say "repetition $r: raw tcp"
	load servers=tcp:$NET_SERVER_IP
	raw tcp $OUT/rawt-$r.txt
	say "repetition $r: tether tcp"
	tethered /b/tt-$r /b/ttw-$r /b/src.tar $OUT/tt-$r.txt
	srvreq clean-tt-$r "rm -rf /srv/b/tt-$r /srv/b/ttw-$r; sync"
	load server_cid=4
done
say "done"
rmmod tether_client
umount /mnt/nfs
touch /shared/client-done
