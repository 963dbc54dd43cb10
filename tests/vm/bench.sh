#!/bin/bash
# Client VM role of tests/bench.sh: userspace vsock baseline against vsock_bench on the
# server VM (BENCH_PORT), then module-to-module through tether_client's debugfs bench file.
# One result line per figure in /out/bench.txt ("user ..." / "module ...").
. /tether/tests/vm/lib.sh
set -u
D=/sys/kernel/debug/tether_client
# The stable view (sysfs); debugfs ($D) keeps the live log and the bench.
SYS=/sys/kernel/tether_client
U=$TB/vsock_bench
PINGS=${BENCH_PINGS:-10000} BULK=${BENCH_BULK:-67108864}
: >/out/bench.txt
wait_until 30 timeout 5 $U ping "$SERVER_CID" "$BENCH_PORT" 1 64 >/dev/null
for what in "ping $PINGS 64" "bulk $BULK 65536"; do
	set -- $what
	r=$(timeout 600 $U "$1" "$SERVER_CID" "$BENCH_PORT" "$2" "$3") && echo "user $r" | tee -a /out/bench.txt
done
if [ -e $D/bench ] && wait_until 30 eval '[ "$(key $SYS/state state)" = connected ]'; then
	for what in "ping $PINGS 64" "bulk $BULK 65536"; do
		echo "$what" >$D/bench && r=$(timeout 600 cat $D/bench) && echo "module $r" | tee -a /out/bench.txt
	done
fi
touch /out/client-done
