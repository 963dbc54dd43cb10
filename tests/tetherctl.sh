#!/bin/bash
# Host tests of userspace-tools/tetherctl against a fake sysfs, debugfs and /etc/tether
# (TETHER_DEBUGFS, TETHER_SYSFS, TETHER_ETC): every command's --help, the man page covers
# every command, clear messages and exit status on errors, status for people, exportfs's
# parsing and its module options. The VM suites use it against the real modules. TAP-style
# lines ("ok - ", "not ok - "); exit 1 on failure.
set -u
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
T="$ROOT/userspace-tools/tetherctl"
MAN="$ROOT/packaging/tetherctl.8"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
fail=0
ok() { echo "ok - $*"; }
nok() { echo "not ok - $*"; fail=1; }
check() { local d=$1; shift; if "$@" >"$W/out" 2>&1; then ok "$d"; else nok "$d"; sed 's/^/#   /' "$W/out" | head -n 20; fi; }
# run_tc ENV... -- ARGS... : tetherctl with a fake system; sets out, err, rc
run_tc() {
	local envs=()
	while [ "$1" != -- ]; do envs+=("$1"); shift; done
	shift
	out=$(env TETHER_DEBUGFS="$W/debug" TETHER_SYSFS="$W/sys" TETHER_ETC="$W/etc" "${envs[@]}" "$T" "$@" 2>"$W/err")
	rc=$?
	err=$(cat "$W/err")
}
has() { grep -qF -- "$2" <<<"$1" || { echo "missing: $2"; echo "in: $1"; return 1; }; }

# --- help and the man page --------------------------------------------------------------
CMDS="status tasks log calls run mark unmark marked exportfs start stop bench"
for c in $CMDS; do
	run_tc -- "$c" --help
	check "tetherctl $c --help: exit 0, a Usage line naming the command" \
		eval '[ $rc = 0 ] && [[ $(head -n1 <<<"$out") == "Usage: tetherctl $c"* || $out == *"tetherctl $c "* ]]'
	check "tetherctl help $c = tetherctl $c --help" eval '[ "$("$T" help "$c")" = "$out" ]'
	check "tetherctl --help lists $c" eval '"$T" --help | grep -qE "^  $c( |$)"'
	check "man page tetherctl(8) describes $c" grep -qE "^\\.(B|TP|SS).*\\b$c\\b|^\\\\fB$c\\\\fR" "$MAN"
done
if command -v groff >/dev/null; then
	check "man page renders without groff warnings" eval '[ -z "$(groff -man -Tutf8 -ww -z "$MAN" 2>&1)" ]'
else
	ok "man page renders without groff warnings # SKIP no groff on this machine"
fi
run_tc -- frobnicate
check "unknown command: exit 2, says so" eval '[ $rc = 2 ] && has "$err" "tetherctl: no command '\''frobnicate'\''"'
run_tc -- status --bogus
check "unknown option: exit 2, names it" eval '[ $rc = 2 ] && has "$err" "unknown argument '\''--bogus'\''"'

# --- no module loaded ---------------------------------------------------------------------
mkdir -p "$W/sys/module" "$W/debug" "$W/etc"
run_tc -- status
check "status, nothing loaded: exit 1, says no module is loaded" eval '[ $rc = 1 ] && has "$err" "no tether module is loaded"'
run_tc -- tasks
check "tasks, client not loaded: exit 1, says so" eval '[ $rc = 1 ] && has "$err" "tether_client is not loaded"'
run_tc -- log
check "log, no module, no persisted log: exit 1, names the file" eval '[ $rc = 1 ] && has "$err" "/var/lib/tether/client.log does not exist" || has "$err" "client.log"'
printf 'tether-client-log v1 generation=7 calls=3 processes=1 open_files=0\nprocess rpid=10 calls=3 cwd=/\nend\n' >"$W/client.log"
run_tc -- log --file "$W/client.log"
check "log --file: header, generation, the log" eval '[ $rc = 0 ] && has "$out" "== persisted syscall log $W/client.log" && has "$out" "== generation=7" && has "$out" "process rpid=10"'
printf 'garbage\n' >"$W/bad.log"
run_tc -- log --file "$W/bad.log"
check "log --file of a non-log: exit 1, says it is not a tether log" eval '[ $rc = 1 ] && has "$err" "is not a tether client log"'

# --- client loaded, no state directory (an older module) ------------------------------------
mkdir -p "$W/sys/module/tether_client/parameters"
echo 4,5 >"$W/sys/module/tether_client/parameters/servers"
echo /var/lib/tether/client.log >"$W/sys/module/tether_client/parameters/log_file"
run_tc -- status
check "status without the state files: module parameters, and what needs root" \
	eval '[ $rc = 0 ] && has "$out" "tether client" && has "$out" "servers=4,5" && has "$out" "details need root"'
run_tc -- tasks
check "tasks without the state directory: exit 1, names it" eval '[ $rc = 1 ] && has "$err" "$W/sys/kernel/tether_client is missing"'

# --- client loaded: its sysfs state, no debugfs ---------------------------------------------
mkdir -p "$W/sys/kernel/tether_client"
cat >"$W/sys/kernel/tether_client/state" <<'EOF'
state=connected
server_cid=4
servers=4,5
port=7777
session=12
boot_verifier=0x00000000000000aa
peer_boot_verifier=0x00000000000000bb
heartbeat_ms=500
split=3584
connects=2
disconnects=1
replays=1
divergences=0
redo_errors=0
restarts=0
last_resume_us=52000
last_redo_us=1200000
retained_writes=3
retained_bytes=12288
retained_total=40
redone_writes=5
redone_bytes=8388608
heartbeats_sent=100
heartbeat_misses=3
last_down_detect_ms=1500
resumed=1
flushed_up_to=99
flushed_verifier=0x00000000000000bb
flushed=9
verifier_changes=1
bad_flushed=0
frames_in=10
frames_out=20
bytes_in=1000
bytes_out=2000
EOF
printf 'tethered=1\n%s\n' $$ >"$W/sys/kernel/tether_client/tasks"
printf 'call count total_us avg_us max_us\nopenat 10 5000 500 900\nrenameat 3 30000 10000 20000\nfirst_call 2 900 450 500\nstage_send 15 100 6 9\n' >"$W/sys/kernel/tether_client/calls"
run_tc -- status
check "status (client): connection, session, verifiers, tethered processes, retained, last outage" \
	eval '[ $rc = 0 ] && has "$out" "connected to server CID 4 port 7777 (servers: 4,5)" && has "$out" "session:         12 (resumed)" &&
	has "$out" "own 0x00000000000000aa, server 0x00000000000000bb" && has "$out" "1 processes" && has "$out" "    $$ " &&
	has "$out" "12.0 KiB in 3 writes" && has "$out" "detected in 1500 ms; resume took 52.0 ms, rewriting retained data 1.200 s" &&
	has "$out" "0 remote calls/s now, 15 since load; 0 frames/s sent now"'
run_tc -- status --raw
check "status --raw: the state file as it is" eval '[ $rc = 0 ] && has "$out" "== tether_client" && has "$out" "retained_bytes=12288"'
run_tc -- tasks
check "tasks: count, then pid and command" eval '[ $rc = 0 ] && has "$out" "tethered=1" && has "$out" "$$ "'
run_tc -- bench ping x 64
check "bench with a non-number: exit 2" eval '[ $rc = 2 ]'
if [ "$(id -u)" = 0 ]; then
	run_tc -- bench ping 10 64
	check "bench without debugfs: exit 1, says to mount it" eval '[ $rc = 1 ] && has "$err" "mount -t debugfs"'
	run_tc -- log
	check "live log without debugfs: exit 1, says to mount it" eval '[ $rc = 1 ] && has "$err" "mount -t debugfs"'
fi
run_tc -- calls
order=$(grep -oE '^(renameat|openat)' <<<"$out" | tr '\n' ' ')
check "calls: the client's table, sorted by total time (renameat first)" \
	eval '[ $rc = 0 ] && has "$out" "tether_client: submit to reply" && [ "$order" = "renameat openat " ]'
run_tc -- calls extra
check "calls with an argument: exit 2" eval '[ $rc = 2 ]'
cp "$W/sys/kernel/tether_client/state" "$W/state.vsock"
sed -i 's/^server_cid=.*/server_cid=0/; s/^servers=.*/servers=tcp:10.0.0.1:7777/' "$W/sys/kernel/tether_client/state"
echo server=tcp:10.0.0.1:7777 >>"$W/sys/kernel/tether_client/state"
run_tc -- status
check "status (client over TCP): the server's address and port" \
	eval '[ $rc = 0 ] && has "$out" "  connection:      connected to server 10.0.0.1 port 7777 (TCP) (servers: tcp:10.0.0.1:7777)"'
mv "$W/state.vsock" "$W/sys/kernel/tether_client/state"

# --- server ---------------------------------------------------------------------------------
mkdir -p "$W/sys/module/tether_server/parameters" "$W/sys/kernel/tether_server"
echo 3,5 >"$W/sys/module/tether_server/parameters/allowed_cids"
echo /srv >"$W/sys/module/tether_server/parameters/root"
echo Y >"$W/sys/module/tether_server/parameters/squash_root"
cat >"$W/sys/kernel/tether_server/state" <<'EOF'
port=7777
boot_verifier=0x00000000000000bb
heartbeat_ms=500
max_frame=1048576
split=3584
flush_ms=1000
resume_ms=30000
resumed=1
expired=0
cache_hits=4
dup_pending=0
syncs=17
sync_errors=0
flushed_sent=17
last_flush_us=1234
sessions=1
detached=0
shadows=2
accepted=3
rejected=1
bad_frames=0
heartbeat_misses=0
frames_in=1
frames_out=2
bytes_in=3
bytes_out=4
session id=12 peer=3 connected=1 resumes=1 shadows=2 keeper=321 answered=88 acked=80 pending=0 cached=5 frames_in=1 frames_out=2 bytes_in=3 bytes_out=4
shadow session=12 rpid=700 pid=4321 threads=1 queued=0 in_flight=1 dead=0
shadow session=12 rpid=701 pid=0 threads=0 queued=2 in_flight=0 dead=0
EOF
run_tc -- status
check "status (server): sessions per client with shadows, flush state" \
	eval '[ $rc = 0 ] && has "$out" "tether server" && has "$out" "export root /srv, clients 3,5" &&
	has "$out" "session 12:      client CID 3, connected, 2 shadows" &&
	has "$out" "    shadow of client pid 700: pid 4321, 2 threads, 0 queued, 1 in flight" &&
	has "$out" "    shadow of client pid 701: not started, 1 threads, 2 queued, 0 in flight" && has "$out" "every 1000 ms; 17 syncs, 0 failed, 17 acks sent, the last sync took 1234 µs"'

# --- exportfs -------------------------------------------------------------------------------
cat >"$W/etc/exports" <<'EOF'
# CID  root  squash  ids
3 /srv root_squash
5 /srv            # the failover client
EOF
run_tc -- exportfs -c
check "exportfs -c: normalised lines with the defaults" \
	eval '[ $rc = 0 ] && [ "$out" = "3 /srv root_squash uids=any gids=any
5 /srv root_squash uids=any gids=any" ]'
run_tc -- exportfs -o
check "exportfs -o: the module options" eval '[ $rc = 0 ] && [ "$out" = "allowed_cids=3,5 root=/srv squash_root=1" ]'
run_tc -- exportfs -r -v
check "exportfs -r: the loaded server matches, nothing to change" eval '[ $rc = 0 ] && has "$out" "exported: 3 /srv"'
printf '3 /srv no_root_squash\n5 /srv no_root_squash\n' >"$W/etc/exports"
run_tc -- exportfs -r -v
check "exportfs -r: a changed squash mode is applied at run time" \
	eval '[ $rc = 0 ] && [ "$(cat "$W/sys/module/tether_server/parameters/squash_root")" = 0 ] || { echo "rc=$rc $err"; false; }'
echo "3 /other" >"$W/etc/exports"
run_tc -- exportfs -r
check "exportfs -r: a different root needs a reload, says so, exit 1" eval '[ $rc = 1 ] && has "$err" "reload it"'
printf '3 /srv\n3 /srv\nx /srv\n4 relative\n6 /srv bogus\n7 /srv uids=5-2\n1 /srv\n' >"$W/etc/exports"
run_tc -- exportfs -c
check "exportfs -c: every bad line named with file:line, exit 1" \
	eval '[ $rc = 1 ] && has "$err" "exports:2: CID 3 is listed twice" && has "$err" "exports:3: '\''x'\'' is not a vsock CID or an IPv4 address" &&
	has "$err" "exports:4: export root '\''relative'\'' is not an absolute path" && has "$err" "exports:5: unknown option '\''bogus'\''" &&
	has "$err" "exports:6: bad id range '\''5-2'\''" && has "$err" "exports:7: CID 1 is reserved" && has "$err" "6 error(s)"'
printf '10.0.0.2 /srv uids=1000-1999\n10.0.0.256 /srv\n' >"$W/etc/exports"
run_tc -- exportfs -c
check "exportfs -c: a TCP client by its IPv4 address, a bad address refused" \
	eval '[ $rc = 1 ] && has "$err" "exports:2: '\''10.0.0.256'\'' is not an IPv4 address" && has "$err" "1 error(s)"'
printf '10.0.0.2 /srv uids=1000-1999\n' >"$W/etc/exports"
run_tc -- exportfs -c
check "exportfs -c: the TCP client's line normalised" eval '[ $rc = 0 ] && [ "$out" = "10.0.0.2 /srv root_squash uids=1000-1999 gids=any" ]'
printf '3 /srv uids=1000-1999 gids=1000-1999\n' >"$W/etc/exports"
run_tc -- exportfs -o
check "exportfs -o: id ranges the module cannot enforce are refused, exit 1" eval '[ $rc = 1 ] && has "$err" "cannot restrict the ids"'
# A module with a per-client export table (its exports file): stale clients deleted (a CID
# and an address), every line written (the fake file keeps the last write).
printf '3 /srv root_squash uids=1000-1999 gids=any\n9 /data all_squash\n' >"$W/etc/exports"
printf '* /srv root_squash uids=any gids=any\n5 /srv root_squash uids=any gids=any\n10.0.0.9 /srv root_squash uids=any gids=any\n' >"$W/sys/kernel/tether_server/exports"
cp "$W/sys/kernel/tether_server/exports" "$W/exports.before"
# each write replaces the fake file: keep a log of them through a wrapper
run_tc -- exportfs -r -v
check "exportfs -r with a per-client table: removes CID 5 and 10.0.0.9, writes both lines" \
	eval '[ $rc = 0 ] && has "$out" "unexported: CID 5" && has "$out" "unexported: 10.0.0.9" && has "$out" "exported: 3 /srv root_squash uids=1000-1999 gids=any" && has "$out" "exported: 9 /data all_squash uids=any gids=any" && [ "$(cat "$W/sys/kernel/tether_server/exports")" = "9 /data all_squash uids=any gids=any" ]'
rm -f "$W/sys/kernel/tether_server/exports"
run_tc -- exportfs --file "$W/nope"
check "exportfs --file missing: exit 1, names the file" eval '[ $rc = 1 ] && has "$err" "$W/nope does not exist"'

# --- mark, start ----------------------------------------------------------------------------
run_tc -- mark
check "mark without a file: exit 2" eval '[ $rc = 2 ]'
run_tc -- mark "$W/nonexistent"
check "mark of a missing file: exit 1, names it" eval '[ $rc = 1 ] && has "$err" "$W/nonexistent: no such file"'
run_tc -- start sideways
check "start with neither client nor server: exit 2" eval '[ $rc = 2 ]'
printf 'SERVER_CID=$(touch %s/ran)\n' "$W" >"$W/etc/client.conf"
if [ "$(id -u)" = 0 ]; then
	rm -rf "$W/sys/module/tether_client"
	run_tc -- start client
	check "start client: a configuration line that is not KEY=VALUE is refused, exit 1" eval '[ $rc = 1 ] && has "$err" "not a KEY=VALUE line" && [ ! -e "$W/ran" ]'
fi

[ $fail = 0 ]
