#!/bin/bash
# Remote system call tests, KTAP on stdout (same shape as tests/vmtest.sh). Builds the
# modules, tether-shadow and the test programs (tests/fsops/fsops, tests/build/{iouring,
# dirmode,bypass,remotemix,rmap,threads,sigs,runas,logsize}), boots the relay, a server VM (CID 4, fresh data
# disk = export root /srv, role tests/vm/remote-server.sh) and a client VM (CID 3,
# tests/vm/remote-client.sh), which
# talk through files in the run directory (/shared in both). Every VM's dmesg must be
# free of warnings. The last line is "# totals: pass=P fail=F skip=S"; exit 1 on failure.
# The VMs are also on an IPv4 link (tests/hostlib.sh TETHER_NET): the server 10.0.0.1 (env
# NET_SERVER_IP), the client 10.0.0.2 (NET_CLIENT_IP).
# Env: REMOTE_NOBUILD=1 skips the build step (programs already built); TETHER_NET=0 boots
# the VMs without the network.
. "$(dirname "$0")/hostlib.sh"

t0=$(date +%s)
if [ "${REMOTE_NOBUILD:-0}" != 1 ]; then
	prepare >&2
	in_chroot /bin/sh -ec '
		cd /work/tests
		gcc -O2 -Wall -o fsops/fsops fsops/fsops.c
		mkdir -p build
		gcc -O2 -Wall -Wextra -Werror -o build/iouring fsops/iouring.c
		gcc -O2 -Wall -Wextra -Werror -o build/dirmode fsops/dirmode.c
		gcc -O2 -Wall -Wextra -Werror -o build/bypass fsops/bypass.c
		gcc -O2 -Wall -Wextra -Werror -o build/remotemix fsops/remotemix.c
		gcc -O2 -Wall -Wextra -Werror -o build/rmap fsops/rmap.c
		gcc -O2 -Wall -Wextra -Werror -pthread -o build/threads fsops/threads.c
		gcc -O2 -Wall -Wextra -Werror -o build/sigs fsops/sigs.c
		gcc -O2 -Wall -Wextra -Werror -o build/runas fsops/runas.c
		gcc -O2 -Wall -Wextra -Werror -o build/logsize fsops/logsize.c
	' >&2 || die "building tests/fsops failed"
fi
for f in "${KMODS[@]}" userspace-tools/tether-shadow tests/fsops/fsops tests/build/iouring tests/build/dirmode \
	tests/build/bypass tests/build/remotemix tests/build/rmap tests/build/threads tests/build/sigs tests/build/runas tests/build/logsize tests/build/hostile tests/build/fuzz_server; do
	[ -e "$TETHER_ROOT/$f" ] || die "$f not built"
done
t_build=$(($(date +%s) - t0))
# The suite takes about 15 minutes of client time under TCG (the real programs tethered
# about 4 of them), plus the fuzzer's run; the limits leave room for a slow machine.
FUZZ_SECONDS=${FUZZ_SECONDS:-30}
TETHER_NET=${TETHER_NET:-1}
RUN_TIMEOUT=${RUN_TIMEOUT:-$((1800 + FUZZ_SECONDS))} start_run remote
mkdir -p "$RUN/cmd"
log "run directory: $RUN"
VMS=(server client)
export VM_TIMEOUT=${VM_TIMEOUT:-$((1700 + FUZZ_SECONDS))}
boot server server $SERVER_CID ROLE_SCRIPT=/tether/tests/vm/remote-server.sh LOAD_MODULE=0 \
	SERVE_SECONDS=$((1500 + FUZZ_SECONDS))
boot client client $CLIENT_CID ROLE_SCRIPT=/tether/tests/vm/remote-client.sh LOAD_MODULE=0 \
	FUZZ_SECONDS="$FUZZ_SECONDS"
wait_vm client "$VM_TIMEOUT"
# The server finishes once /shared/client-done exists (the client writes it at its end).
touch "$RUN/client-done"
wait_vm server 60

# --- KTAP ---------------------------------------------------------------------------------
ktap_gather
ktap_print
for f in "$RUN"/client/*.diff; do
	[ -e "$f" ] || continue
	echo "# $(basename "$f" .diff): local (---) vs tethered (+++) transcript:"
	head -n 60 "$f" | sed 's/^/#   /'
done
echo "# boot-to-ready ms:$(for vm in "${VMS[@]}"; do printf ' %s=%s' "$vm" "$(boot_ms "$vm")"; done)"
echo "# remote took $(($(date +%s) - t0)) s (build $t_build s); logs in $RUN (role.log, dmesg.log per VM)"
echo "# totals: pass=$pass fail=$fail skip=$skip"
[ $fail = 0 ]
