#!/bin/bash
# make bench, part 3: crash recovery figures (issue 5), in one run of the same VMs.
#  - retention cost: a tethered process's pwrite of 4 KiB (whose data the client retains
#    until the server flushes it) and pread of 64 B, p50, with retention on and off
#    (the client's runtime parameter `retain`), over ROUNDS rounds of CALLS calls, on
#    first in odd rounds and off first in even ones; the cost is the median of the rounds'
#    on/off ratios (each round's pair ran back to back), with their range;
#  - outage: a tethered process writes MIB MiB that the server does not flush (flusher
#    slowed, periodic writeback off), then keeps writing 4 KiB pieces while the host kills
#    the server VM's QEMU and boots it again; figures: down detection, the server's boot to
#    ready, the client's resume (connect to calls going out: handshake, replay, and writing
#    the retained data again), that rewrite alone, against the raw link's bulk rate, and the
#    longest call the application saw. The application then checks every byte it wrote.
. "$(dirname "$0")/hostlib.sh"

MIB=${BENCH_CRASH_MIB:-8} ROUNDS=${BENCH_ROUNDS:-9} CALLS=${BENCH_CALLS:-1000}
prepare >&2
in_chroot gcc -O2 -Wall -Wextra -Werror -o /work/tests/bench/crashbench /work/tests/bench/crashbench.c >&2 ||
	die "building crashbench failed"
start_run bench-crash
cat >"$RUN/client.sh" <<'SH'
. /tether/tests/vm/lib.sh
D=/sys/kernel/debug/tether_client P=/sys/module/tether_client/parameters/retain
# The stable view (sysfs); debugfs ($D) keeps the live log and the bench.
SYS=/sys/kernel/tether_client
c() { key $SYS/state "$1"; }
insmod /tether/client_proxy/tether_client.ko server_cid=4 reconnect_max_ms=50
wait_until 120 eval '[ "$(c state)" = connected ]' || { echo "not connected"; exit 1; }
cp /tether/tests/bench/crashbench /tmp/cb && setfattr -n trusted.tether.loader -v 1 /tmp/cb
echo "bulk 16777216 65536" >$D/bench && cat $D/bench >/out/bulk.txt
for r in $(seq "$ROUNDS"); do
	order="1 0"
	[ $((r % 2)) = 1 ] || order="0 1"
	for on in $order; do
		echo $on >$P
		/tmp/cb lat /cb-lat "$CALLS" | sed "s/^/round=$r retain=$on /" >>/out/lat.txt
	done
done
echo 1 >$P
# /dev stays local for tethered tasks: the two files are how this script and the app talk.
/tmp/cb outage /cb-outage "$MIB" /dev/cb-ready /dev/cb-resumed >/out/outage-app.txt 2>&1 &
app=$!
wait_until 300 test -e /dev/cb-ready || exit 1
echo "retained_bytes_before $(c retained_bytes)" >/out/outage.txt
touch /out/kill-server
wait_until 30 eval '[ "$(c state)" != connected ]'
restarts=$(c restarts)
touch /out/server-down
wait_until 300 eval '[ "$(c state)" = connected ] && [ "$(c restarts)" -gt "$restarts" ]'
touch /dev/cb-resumed
wait $app
echo "app_exit $?" >>/out/outage.txt
for k in last_down_detect_ms last_resume_us last_redo_us redone_bytes restarts; do
	echo "$k $(c $k)" >>/out/outage.txt
done
touch /out/client-done
SH
VMS=(server0 client)
# The benchmark's tethered root writes its files in the export root: no_root_squash.
boot server0 server $SERVER_CID BOOT_INDEX=0 NO_WRITEBACK=1 \
	"SERVER_PARAMS='$SERVER_PARAMS flush_ms=600000 flush_dirty_kb=0 squash_root=0'"
wait_file 180 "$RUN/server0/ready" "${VMPID[server0]}" || die "server0 did not get ready"
boot client client $CLIENT_CID ROLE_SCRIPT=/shared/client.sh LOAD_MODULE=0 MIB=$MIB ROUNDS=$ROUNDS CALLS=$CALLS
drive_client 1800
wait_vm client 10
touch "$RUN/$SERVER/stop"
wait_vm "$SERVER" 60
[ -e "$RUN/client/client-done" ] || die "the client did not finish, see $RUN/client/role.log"

# median KEY RETAIN : the median over the rounds of a latency figure
median() { sed -n "s/^round=[0-9]* retain=$2 $1 //p" "$RUN/client/lat.txt" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
# paired KEY : the median of the rounds' on/off ratios of a latency figure, and their range
paired() {
	awk -v k="$1" '$3 == k { split($1, r, "="); split($2, o, "="); v[r[2], o[2]] = $4; n[r[2]] = 1 }
		END { for (i in n) if (v[i, 0] > 0) x[++m] = v[i, 1] / v[i, 0]
		      for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (x[j] < x[i]) { t = x[i]; x[i] = x[j]; x[j] = t }
		      if (m) printf "%.3f (rounds %.2f-%.2f)", x[int((m + 1) / 2)], x[1], x[m]; else print "-" }' \
		"$RUN/client/lat.txt"
}
fig() { sed -n "s/^$1 //p" "$RUN/client/outage.txt" | head -n1; }
row() { printf '| %-44s | %14s | %s\n' "$@"; }
echo "crash recovery figures (TCG, release kernel, one run)"
row "retention cost ($ROUNDS rounds of $CALLS calls)" "ns (median p50)" "on / off: median of the rounds' ratios"
for f in pwrite4k_p50 pread64_p50; do
	row "$f retain on / off" "$(median $f 1) / $(median $f 0)" "$(paired $f)"
done
bulk=$(sed -n 's/.*mb_per_s=\([0-9.]*\).*/\1/p' "$RUN/client/bulk.txt")
redo_us=$(fig last_redo_us) resume_us=$(fig last_resume_us) bytes=$(fig redone_bytes)
row "retained before the crash (bytes)" "$(fig retained_bytes_before)" ""
row "down detected after (ms)" "$(fig last_down_detect_ms)" "3 heartbeats of $HB ms"
row "server VM boot to ready (ms)" "$(boot_ms server1)" "TCG boot, not tether's"
row "client resume: connect to calls out (ms)" "$(awk -v u="$resume_us" 'BEGIN { printf "%.1f", u / 1000 }')" \
	"without the rewrite: $(awk -v a="$resume_us" -v b="$redo_us" 'BEGIN { printf "%.1f ms (target <= 200)", (a - b) / 1000 }')"
row "  of which rewriting retained data (ms)" "$(awk -v u="$redo_us" 'BEGIN { printf "%.1f", u / 1000 }')" \
	"$bytes bytes: $(awk -v b="$bytes" -v u="$redo_us" 'BEGIN { if (u > 0) printf "%.1f", b / u; else print "-" }') MB/s, raw link bulk $bulk MB/s"
row "longest application call across it (ms)" "$(sed -n 's/^outage_ms //p' "$RUN/client/outage-app.txt")" \
	"detection + reboot + resume"
row "bytes the application checked after it" "$(sed -n 's/^checked_bytes //p' "$RUN/client/outage-app.txt")" \
	"app exit $(fig app_exit)"
echo "(raw: $RUN/client/{lat,outage,outage-app,bulk}.txt)"
[ "$(fig app_exit)" = 0 ]
