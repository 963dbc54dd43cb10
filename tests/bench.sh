#!/bin/bash
# make bench: guest-to-guest figures of one run, userspace vsock vs module-to-module.
# 64 B ping-pong (>= 10000 round trips: min/p50/p99) and bulk 64 MiB in 64 KiB messages
# (every send split into <= 3584 B writes). Prints a table; ratios are module / userspace.
. "$(dirname "$0")/hostlib.sh"

BENCH_PORT=9000
prepare >&2
start_run bench
boot server0 server $SERVER_CID BOOT_INDEX=0 BENCH_PORT=$BENCH_PORT
wait_file 180 "$RUN/server0/ready" "${VMPID[server0]}" || die "server VM did not boot"
boot client client $CLIENT_CID BENCH_PORT=$BENCH_PORT ROLE_SCRIPT=/tether/tests/vm/bench.sh
wait_vm client 1200
touch "$RUN/server0/stop"
wait_vm server0 60
f="$RUN/client/bench.txt"
[ -s "$f" ] || die "no bench results, see $RUN/client/role.log"

# val WHO KIND FIELD : a field of a result line
val() { sed -n "s/^$1 $2 .*\b$3=\([0-9]*\).*/\1/p" "$f" | head -n1; }
row() { # LABEL KIND FIELD SCALE UNIT
	local u m ratio
	u=$(val user "$2" "$3") m=$(val module "$2" "$3")
	ratio=$( [ -n "$u" ] && [ -n "$m" ] && [ "$u" != 0 ] && awk -v m="$m" -v u="$u" 'BEGIN{printf "%.2f", m/u}' || echo -)
	printf '| %-34s | %12s | %12s | %6s |\n' "$1" \
		"$( [ -n "$u" ] && awk -v x="$u" -v s="$4" 'BEGIN{printf "%.1f", x/s}' || echo -)" \
		"$( [ -n "$m" ] && awk -v x="$m" -v s="$4" 'BEGIN{printf "%.1f", x/s}' || echo -)" "$ratio"
}
echo "guest-to-guest over vhost-device-vsock (TCG, one run; ratio = module / userspace)"
printf '| %-34s | %12s | %12s | %6s |\n' figure userspace module ratio
printf '|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..36})" "$(printf -- '-%.0s' {1..14})" "$(printf -- '-%.0s' {1..14})" "$(printf -- '-%.0s' {1..8})"
row "ping 64 B min RTT (us)" ping min_ns 1000
row "ping 64 B p50 RTT (us)" ping p50_ns 1000
row "ping 64 B p99 RTT (us)" ping p99_ns 1000
# MB/s from bytes and ns (the mb_per_s field is a whole number)
mbps() { awk -v b="$(val "$1" bulk bytes)" -v n="$(val "$1" bulk ns)" 'BEGIN{if (n > 0) printf "%.2f", b * 1000 / n}'; }
u=$(mbps user) m=$(mbps module)
printf '| %-34s | %12s | %12s | %6s |\n' "bulk 64 MiB, 64 KiB msgs (MB/s)" "${u:--}" "${m:--}" \
	"$( [ -n "$u" ] && [ -n "$m" ] && awk -v m="$m" -v u="$u" 'BEGIN{printf "%.2f", m/u}' || echo -)"
grep -q '^user bulk .*verified=1' "$f" || log "warning: userspace bulk not verified"
grep -q '^module bulk .*verified=1' "$f" || log "warning: module bulk missing or not verified"
echo "(raw: $f; boot-to-ready ms: server $(boot_ms server0), client $(boot_ms client))"
