#!/bin/bash
# make bench, part 2: a tethered process's file-system figures against the same calls run
# locally on the server (its own ext4 export root) and the raw link (module ping-pong), in
# one run of the same two VMs; plus what the loaded client module costs untethered tasks.
# Prints a table with ratios. Figures: tests/bench/fsbench.c. Then the size of the client's
# syscall log (debugfs and its persisted copy) after 1000, 10000, ... LOG_N (100000) preads
# round-robin on 10 open remote files (tests/fsops/logsize.c): it must not grow with N.
. "$(dirname "$0")/hostlib.sh"

MIB=${BENCH_MIB:-64}
LOG_N=${LOG_N:-100000}
prepare >&2
in_chroot gcc -O2 -Wall -Wextra -o /work/tests/bench/fsbench /work/tests/bench/fsbench.c >&2 ||
	die "building fsbench failed"
in_chroot sh -c 'mkdir -p /work/tests/build &&
	gcc -O2 -Wall -Wextra -Werror -o /work/tests/build/logsize /work/tests/fsops/logsize.c' >&2 ||
	die "building logsize failed"
start_run bench-remote
cat >"$RUN/server.sh" <<'SH'
mount /dev/vdb /srv && mkdir -p /srv/bench
insmod /tether/server_comm/tether_server.ko allowed_cids=3 shadow_path=/tether/userspace-tools/tether-shadow root=/srv squash_root=0
/tether/tests/bench/fsbench /srv/bench $MIB >/out/server-local.txt 2>&1
touch /shared/server-up
while [ ! -e /shared/client-done ]; do sleep 0.2; done
SH
cat >"$RUN/client.sh" <<'SH'
while [ ! -e /shared/server-up ]; do sleep 0.2; done
/tether/tests/bench/fsbench /tmp $MIB >/out/client-nomodule.txt 2>&1
mkdir -p /var/lib/tether
insmod /tether/client_proxy/tether_client.ko server_cid=4
for i in $(seq 100); do grep -q state=connected /sys/kernel/tether_client/state && break; sleep 0.1; done
/tether/tests/bench/fsbench /tmp $MIB >/out/client-untethered.txt 2>&1
cp /tether/tests/bench/fsbench /tmp/fsbench && setfattr -n trusted.tether.loader -v 1 /tmp/fsbench
/tmp/fsbench /bench $MIB >/out/client-tethered.txt 2>&1
cp /tether/tests/build/logsize /tmp/logsize && setfattr -n trusted.tether.loader -v 1 /tmp/logsize
/tmp/logsize /bench/logsize $LOG_N /proc/self/root/var/lib/tether/client.log >/out/logsize.txt 2>&1
echo "exit $?" >>/out/logsize.txt
echo "ping 4000 64" >/sys/kernel/debug/tether_client/bench && cat /sys/kernel/debug/tether_client/bench >/out/module-ping.txt
touch /shared/client-done
rmmod tether_client
SH
VMS=(server client)
boot server server $SERVER_CID ROLE_SCRIPT=/shared/server.sh LOAD_MODULE=0 MIB=$MIB
boot client client $CLIENT_CID ROLE_SCRIPT=/shared/client.sh LOAD_MODULE=0 MIB=$MIB LOG_N=$LOG_N
wait_vm client 1200
touch "$RUN/client-done"
wait_vm server 60

# fig FILE NAME : a figure of an fsbench transcript
fig() { sed -n "s/^$2 \([0-9.]*\) .*/\1/p" "$RUN/$1" | head -n1; }
ping_p50=$(sed -n 's/.*p50_ns=\([0-9]*\).*/\1/p' "$RUN/client/module-ping.txt")
[ -n "$ping_p50" ] || die "no module ping figure, see $RUN/client/role.log"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "-"; else printf "%.2f", a / b }'; }
row() { printf '| %-30s | %12s | %12s | %s\n' "$@"; }
echo "tethered file-system calls vs the raw link and the server's own disk (TCG, one run)"
row figure tethered "server local" "tethered / raw link RTT"
for f in pread64_64B_p50 fstat_p50; do
	t=$(fig client/client-tethered.txt $f) l=$(fig server/server-local.txt $f)
	row "$f (ns)" "$t" "$l" "$(ratio "$t" "$ping_p50") (raw link p50 $ping_p50 ns)"
done
for f in seq_write seq_read; do
	row "$f $MIB MiB (MB/s)" "$(fig client/client-tethered.txt $f)" "$(fig server/server-local.txt $f)" ""
done
echo
echo "cost of the loaded client module for untethered tasks (ns per call)"
row call "no module" "module loaded" "ratio"
for f in getppid read_devnull pread64_64B_p50 fstat_p50; do
	n=$(fig client/client-nomodule.txt $f) m=$(fig client/client-untethered.txt $f)
	row "$f" "$n" "$m" "$(ratio "$m" "$n")"
done
echo
echo "syscall log size after N preads round-robin on 10 open remote files (bytes)"
row2() { printf '| %-10s | %14s | %15s | %18s | %s\n' "$@"; }
row2 preads "debugfs log" "persisted file" "persisted after ms" "pread (us)"
sed -n 's/^preads=\([0-9]*\) .* debugfs_bytes=\([0-9-]*\) persisted_bytes=\([0-9-]*\) caught_up_ms=\([0-9-]*\) us_per_call=\([0-9.]*\)$/\1 \2 \3 \4 \5/p' \
	"$RUN/client/logsize.txt" | while read -r n b p ms us; do row2 "$n" "$b" "$p" "$ms" "$us"; done
grep -v '^preads=' "$RUN/client/logsize.txt" | sed 's/^/# logsize: /'
echo "(raw: $RUN/{server,client}/*.txt)"
