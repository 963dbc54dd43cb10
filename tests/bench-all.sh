#!/bin/bash
# make bench, part 1: one run, every peer. Boots the server VM (data disk at /srv,
# tether_server with vsock and TCP listeners, the kernel NFS server exporting /srv with
# delegations off) and the client VM once, on vsock and the VMs' IPv4 link (TETHER_NET=1),
# and measures in BENCH_REPS repetitions (tests/vm/bench-all-client.sh):
#   local        the calls on the server's own /srv (ext4 on its data disk)
#   raw vsock    userspace ping-pong and bulk over vsock (no per-byte work when timed), and
#                the module-to-module ping (debugfs bench)
#   raw TCP      the same over TCP on the VMs' link (the module reloaded with servers=tcp:)
#   NFS          NFSv4.2 from the client VM (vers=4.2,hard,actimeo=0) on the same link
#   tether vsock a tethered process on the client working on the server's export
#   tether TCP   the same over TCP
# Figures: real programs (tests/vm/bench-work.sh), p50/p99 of single calls, sequential and
# random I/O (tests/bench/opbench.c), and where the time of one tethered call goes over
# vsock (a pread64 and a creating openat: the modules' per-call and per-stage figures,
# /sys/kernel/tether_{client,server}/calls, over a window of only that call). Every cell is the median of the repetitions with
# [min-max]; ratios are of medians, literal quotients (for rates < 1 means tether is slower).
# Env: BENCH_REPS (3), BENCH_N (200 timed calls per op), BENCH_MIB (1024; sequential file),
# BENCH_RANDOPS (2000), BENCH_DIRENTS (1000), BENCH_GIT_FILES (1000), BENCH_COMMITS (200),
# BENCH_PINGS (2000), BENCH_BULK (256 MiB), BENCH_SRC (directories of the server VM that
# make the source tree; default /usr/lib/python3.13), BENCH_STAGE_N (500 calls of each kind
# for the breakdown), BENCH_DISK (data disk, 6G), BENCH_NOBUILD=1 (skip prepare);
# BENCH_TABLES=RUNDIR only prints the tables of that earlier run, with its sizes, kernel and
# date (RUNDIR/sizes). Raw transcripts: $RUN/data/PEER-REP.txt.
. "$(dirname "$0")/hostlib.sh"

SIZEVARS=(BENCH_REPS BENCH_N BENCH_MIB BENCH_RANDOPS BENCH_DIRENTS BENCH_GIT_FILES BENCH_COMMITS
	BENCH_PINGS BENCH_BULK BENCH_SRC BENCH_STAGE_N)
t0=$(date +%s)
if [ -n "${BENCH_TABLES:-}" ]; then
	RUN=$BENCH_TABLES
	elapsed=$(cat "$RUN/elapsed" 2>/dev/null || echo 0)
	# The run's sizes, kernel and date (RUN/sizes, written when it ran), not this shell's.
	if [ -e "$RUN/sizes" ]; then
		unset "${SIZEVARS[@]}"
		. "$RUN/sizes"
	else
		echo "(no $RUN/sizes: the sizes below are this shell's, not necessarily the run's)"
	fi
	REPS=${BENCH_REPS:-3}
else
REPS=${BENCH_REPS:-3}
[ "${BENCH_NOBUILD:-0}" = 1 ] || prepare >&2
in_chroot sh -c 'mkdir -p /work/tests/build &&
	gcc -O2 -Wall -Wextra -Werror -o /work/tests/build/opbench /work/tests/bench/opbench.c' >&2 ||
	die "building opbench failed"
for f in "${KMODS[@]}" userspace-tools/tether-shadow tests/build/vsock_bench tests/build/opbench; do
	[ -e "$TETHER_ROOT/$f" ] || die "$f not built"
done
TETHER_NET=1
RUN_TIMEOUT=${RUN_TIMEOUT:-14400} start_run bench-all
# A data disk big enough for BENCH_MIB files of four peers one after the other.
truncate -s "${BENCH_DISK:-6G}" "$RUN/server-data.img"
mkfs.ext4 -q -F -L tetherdata "$RUN/server-data.img"
mkdir -p "$RUN/req" "$RUN/data"
log "bench-all: run directory $RUN, $REPS repetitions"
benv=()
for v in "${SIZEVARS[@]}"; do
	[ -n "${!v:-}" ] && benv+=("$v=${!v}")
done
# What BENCH_TABLES=RUN prints the tables with: the sizes set (the rest are the defaults),
# the kernel and the date of the run.
{
	for v in "${benv[@]}"; do printf '%s=%q\n' "${v%%=*}" "${v#*=}"; done
	printf 'KVARIANT=%q\nRUN_DATE=%q\n' "$KVARIANT" "$(date -u +%Y-%m-%d)"
} >"$RUN/sizes"
export VM_TIMEOUT=${VM_TIMEOUT:-14000}
VMS=(server client)
boot server server $SERVER_CID ROLE_SCRIPT=/tether/tests/vm/bench-all-server.sh LOAD_MODULE=0 "${benv[@]}"
wait_file 300 "$RUN/server/ready" "${VMPID[server]}" || die "server VM did not boot"
boot client client $CLIENT_CID ROLE_SCRIPT=/tether/tests/vm/bench-all-client.sh LOAD_MODULE=0 "${benv[@]}"
# progress: the client's lines as they come
tail -n +1 -F "$RUN/client/role.log" 2>/dev/null | sed -u 's/^/[client] /' >&2 &
tailpid=$!
wait_vm client "$VM_TIMEOUT"
kill $tailpid 2>/dev/null
touch "$RUN/client-done"
wait_vm server 120
elapsed=$(($(date +%s) - t0))
echo "$elapsed" >"$RUN/elapsed"
fi

# --- tables --------------------------------------------------------------------------------
# spread PEER NAME : "median min max" of NAME over PEER's repetitions (empty when none)
spread() {
	cat "$RUN"/data/"$1"-*.txt 2>/dev/null | awk -v k="$2" '$1 == k && $2 ~ /^[0-9.]+$/ { print $2 }' |
		sort -g | awk '{ v[NR] = $1 } END { if (NR) printf "%s %s %s\n", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2), v[1], v[NR] }'
}
# fmt "MED MIN MAX" : a cell, "med [min-max]"
fmt() {
	[ -n "$1" ] || { echo -; return; }
	awk -v s="$1" 'function f(x) { return x >= 100 ? sprintf("%.0f", x) : x >= 10 ? sprintf("%.1f", x) : sprintf("%.2f", x) }
		BEGIN { split(s, a, " "); if (a[2] == a[3]) print f(a[1]); else printf "%s [%s-%s]\n", f(a[1]), f(a[2]), f(a[3]) }'
}
med() { echo "${1%% *}"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "-"; else printf "%.2f", a / b }'; }
hdr() {
	printf '\n### %s\n\n' "$1"
	echo "| figure | local | raw vsock | raw TCP | NFS | tether vsock | tether TCP | tv ÷ raw v | tt ÷ raw t | tv ÷ NFS | tt ÷ NFS |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|"
}
# row LABEL NAME [RAWNAME|-] [RAWXFORM] : a row; RAWXFORM "inv" turns a round trip in us into
# round trips per second (the raw column of an IOPS row)
row() {
	local l n v t tv tt rv rt
	l=$(spread local "$2") n=$(spread nfs "$2") tv=$(spread tv "$2") tt=$(spread tt "$2")
	rv= rt=
	if [ -n "${3:-}" ] && [ "$3" != - ]; then
		rv=$(spread rawv "$3") rt=$(spread rawt "$3")
		if [ "${4:-}" = inv ]; then
			rv=$(awk -v s="$rv" 'BEGIN { split(s, a, " "); if (a[1] > 0) printf "%.1f %.1f %.1f\n", 1e6 / a[1], 1e6 / a[3], 1e6 / a[2] }')
			rt=$(awk -v s="$rt" 'BEGIN { split(s, a, " "); if (a[1] > 0) printf "%.1f %.1f %.1f\n", 1e6 / a[1], 1e6 / a[3], 1e6 / a[2] }')
		fi
	fi
	printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$1" "$(fmt "$l")" "$(fmt "$rv")" "$(fmt "$rt")" \
		"$(fmt "$n")" "$(fmt "$tv")" "$(fmt "$tt")" "$(ratio "$(med "$tv")" "$(med "$rv")")" \
		"$(ratio "$(med "$tt")" "$(med "$rt")")" "$(ratio "$(med "$tv")" "$(med "$n")")" "$(ratio "$(med "$tt")" "$(med "$n")")"
}

nreps=$(grep -l "^git_commit_s" "$RUN"/data/tt-*.txt 2>/dev/null | wc -l || true)
echo "make bench, one run: $nreps of $REPS repetitions, ${RUN_DATE:-$(date -u +%Y-%m-%d)}, kernel $KVARIANT, TCG, $(nproc) host cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'))"
echo "each cell: median [min-max] of the repetitions; ratios of medians (tv/tt: tether over vsock/TCP)"
echo "sizes: ${BENCH_N:-200} timed calls per op, ${BENCH_MIB:-1024} MiB sequential, ${BENCH_RANDOPS:-2000} random ops, ${BENCH_PINGS:-2000} pings, blast $((${BENCH_BULK:-268435456} / 1048576)) MiB"
src=$(grep -m1 "^source tree" "$RUN/server/role.log" 2>/dev/null || true)
hdr "real programs (s, or commits/s; ${src:-source tree ?}; git: ${BENCH_GIT_FILES:-1000} files; sqlite: ${BENCH_COMMITS:-200} commits)"
row "sqlite3 commits/s, rollback journal" sqlite_journal_cps
row "sqlite3 commits/s, WAL" sqlite_wal_cps
row "tar -cf of the tree (s)" tar_cf_s
row "tar -xf of that tar (s)" tar_x_s
row "diff -r of two trees (s)" diff_r_s
row "git status, $(printf %s "${BENCH_GIT_FILES:-1000}") files (s)" git_status_s
row "git commit -a, 10 edits (s)" git_commit_s
hdr "single calls, p50 / p99 (us); raw: ping-pong 64 B"
for op in pread64:"pread 64 B" fstat:fstat stat:"stat (path)" open_close:"open+close" \
	create_write4k_close:"create+write 4 KiB+close" unlink:unlink rename:rename mkdir_rmdir:"mkdir+rmdir" \
	readdir:"readdir ${BENCH_DIRENTS:-1000} entries"; do
	row "${op#*:} p50" "${op%%:*}_p50_us" ping64_p50_us
	row "${op#*:} p99" "${op%%:*}_p99_us" ping64_p99_us
done
hdr "throughput (MB/s, IOPS, s); raw: blast 64 KiB sends (MB/s), 4 KiB ping-pongs per second (IOPS)"
row "sequential write ${BENCH_MIB:-1024} MiB + fsync (MB/s)" seq_write_MBps blast_MBps
row "sequential read ${BENCH_MIB:-1024} MiB (MB/s)" seq_read_MBps blast_MBps
row "random 4 KiB read, 1 process (IOPS)" randread_qd1_iops ping4k_p50_us inv
row "random 4 KiB read, 8 processes (IOPS)" randread_8p_iops ping4k_p50_us inv
row "random 4 KiB write, 1 process (IOPS)" randwrite_qd1_iops ping4k_p50_us inv
row "random 4 KiB write, 8 processes (IOPS)" randwrite_8p_iops ping4k_p50_us inv
row "tar -xf of the source tree (s)" tar_xf_s
row "rm -rf of two trees (s)" rm_rf_s
# Where the time of one call goes (tether over vsock; tests/vm/bench-all-client.sh
# stage_figures): the modules' per-call and per-stage means over a window of only that call.
# strow LABEL NAME : a row, pread64 and create (the creating openat), median [min-max]
strow() {
	printf '| %s | %s | %s |\n' "$1" "$(fmt "$(spread stv "st_pread64_$2")")" "$(fmt "$(spread stv "st_create_$2")")"
}
# strest : link + the server's receive and send paths: wait - (queue + syscall + reply), per
# repetition, as a spread; one line for pread64, one for create (empty when none)
strest() {
	local op f
	for op in pread64 create; do
		echo "$(for f in "$RUN"/data/stv-*.txt; do
			[ -e "$f" ] && awk -v o="st_${op}_" '{ v[$1] = $2 }
				END { if ((o "wait_us") in v) printf "%.1f\n", v[o "wait_us"] - v[o "queue_us"] - v[o "syscall_us"] - v[o "reply_us"] }' "$f"
		done | sort -g | awk '{ v[NR] = $1 } END { if (NR) printf "%s %s %s\n", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2), v[1], v[NR] }')"
	done
}
if ls "$RUN"/data/stv-*.txt >/dev/null 2>&1; then
	printf '\n### where the time of one call goes (tether over vsock; us per call, mean over %s calls of one kind)\n\n' "${BENCH_STAGE_N:-500}"
	echo "| stage | pread 64 B | create (openat O_CREAT) |"
	echo "|---|---|---|"
	strow "opbench p50 of the call, tethered (us)" p50_us
	strow "client: the whole call, submit to reply (mean)" client_us
	strow "client: submit to request sent" send_us
	strow "link + server: request sent to reply received" wait_us
	strow "- server: request queued to the shadow's pick-up" queue_us
	strow "- server: the call in the shadow (pick-up to its reply)" syscall_us
	strow "- server: the shadow's reply to the reply frame sent" reply_us
	mapfile -t rest < <(strest)
	printf '| %s | %s | %s |\n' "- the rest: the link both ways, both receive paths" "$(fmt "${rest[0]:-}")" "$(fmt "${rest[1]:-}")"
	strow "client: reply received to the task running" wake_us
	printf '| %s | %s | %s |\n' "local on the server: opbench p50 (us)" "$(fmt "$(spread local pread64_p50_us)")" "-"
	printf '| %s | %s | %s |\n' "raw vsock ping-pong 64 B p50 / module ping p50 (us)" \
		"$(fmt "$(spread rawv ping64_p50_us)") / $(fmt "$(spread rawv modping64_p50_us)")" "same"
	callsof() { echo "$(fmt "$(spread stv "st_$1_calls")") / $(fmt "$(spread stv "st_$1_srvcalls")") / $(fmt "$(spread stv "st_$1_window")")"; }
	printf '| %s | %s | %s |\n' "calls of that kind in the window, client / server / every call (client)" \
		"$(callsof pread64)" "$(callsof create)"
fi
printf '\n### raw link (us, MB/s)\n\n| figure | vsock | TCP |\n|---|---|---|\n'
for f in ping64_p50_us ping64_p99_us ping4k_p50_us ping4k_p99_us blast_MBps modping64_p50_us modping64_p99_us; do
	printf '| %s | %s | %s |\n' "$f" "$(fmt "$(spread rawv $f)")" "$(fmt "$(spread rawt $f)")"
done
echo
sed 's/^/# verified: /' "$RUN/data/verify.txt" 2>/dev/null
{ grep -h '^error\|opbench:' "$RUN"/data/*.txt "$RUN"/client/role.log "$RUN"/server/role.log 2>/dev/null || true; } |
	sort | uniq -c | sed 's/^/# /'
bad=$(cat "$RUN"/*/dmesg.log "$RUN"/*/console.log 2>/dev/null | grep -E 'WARNING:|BUG:|Oops|KASAN|kernel BUG|Call Trace' | head -n 3 || true)
[ -z "$bad" ] || echo "# dmesg: ${bad//$'\n'/ | }"
grep -h 'silent for' "$RUN"/client/dmesg.log 2>/dev/null | sed 's/^/# client dmesg: /' || true
echo "# run took $(hms "$elapsed"); boot-to-ready ms: server $(boot_ms server), client $(boot_ms client); raw: $RUN/data"
