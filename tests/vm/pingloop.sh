#!/bin/bash
# Debug role: ping the server's vsock_bench every 0.5 s for PINGLOOP_S seconds.
. /tether/tests/vm/lib.sh
$TB/vsock_bench server 9001 &
end=$(($(date +%s) + ${PINGLOOP_S:-120}))
while [ "$(date +%s)" -lt $end ]; do
	echo "$(date +%T) $(timeout 3 $TB/vsock_bench ping "$SERVER_CID" "$BENCH_PORT" 1 64 2>&1)"
	sleep 0.5
done
