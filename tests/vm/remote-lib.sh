# Helpers for the remote-syscall role scripts (tests/vm/remote-*.sh, demo-remote-*.sh),
# sourced after tests/vm/lib.sh. The client asks the server VM to run commands through
# files in /shared/cmd (the run directory, shared by both VMs): srv on the client,
# serve_requests on the server.
# shellcheck shell=bash
CMD=/shared/cmd
BASHM=${BASHM:-/tmp/bash-marked}

# srv SECONDS SCRIPT : run SCRIPT (bash, tests/vm/lib.sh sourced) on the server VM; prints
# its output, returns its exit status (124 when the server did not answer in time).
# (Callers use $(srv ...), a subshell: the request counter lives in a file.)
srv() {
	local n b
	n=$(($(cat /tmp/srv.n 2>/dev/null || echo 0) + 1))
	echo $n >/tmp/srv.n
	b=$CMD/c$n
	# The server gives the request as long as this side waits for it.
	echo "$1" >"$b.t"
	printf '%s\n' "$2" >"$b.tmp" && mv "$b.tmp" "$b.sh"
	wait_until "$1" test -e "$b.rc" || { echo "server did not answer request c$n in $1 s"; return 124; }
	cat "$b.out"
	return "$(cat "$b.rc")"
}
# tb SCRIPT : run SCRIPT in a tethered bash (the marked copy), 30 s at most; prints its
# stdout and stderr.
tb() {
	local f p rc=0
	f=$(mktemp)
	$BASHM -c "$1" >"$f" 2>&1 &
	p=$!
	reap $p "${TB_TIMEOUT:-30}" >"$f.reap" || rc=$?
	cat "$f" "$f.reap"
	rm -f "$f" "$f.reap"
	return $rc
}
# serve_requests SECONDS STOPFILE : (server) run the client's requests, one at a time, each
# for as long as the client waits for it (NAME.t, else 60 s), until STOPFILE exists or
# SECONDS have passed.
serve_requests() {
	local end=$(($(date +%s) + $1)) f b rc t
	mkdir -p "$CMD"
	while [ ! -e "$2" ] && [ "$(date +%s)" -lt $end ]; do
		for f in "$CMD"/*.sh; do
			[ -e "$f" ] || continue
			b=${f%.sh}
			[ -e "$b.rc" ] && continue
			echo "# request $(basename "$b")" >&2
			rc=0 t=$(cat "$b.t" 2>/dev/null || echo 60)
			timeout "$t" bash -c '. /tether/tests/vm/lib.sh; . "$1"' request "$f" >"$b.out" 2>&1 || rc=$?
			echo $rc >"$b.rc.tmp" && mv "$b.rc.tmp" "$b.rc"
		done
		sleep 0.1
	done
}
