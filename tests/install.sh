#!/bin/bash
# make check-install: `make install` tested in the VMs, KTAP on stdout (same shape as
# tests/remote.sh). Stages `make install DESTDIR=$RUN/stage` on the host, boots a server VM
# (CID 4, data disk = export root /srv, tests/vm/install-server.sh) and a client VM (CID 3,
# tests/vm/install-client.sh) that copy the staged tree into their root, configure
# /etc/tether and run the systemd units' ExecStart/ExecStop commands (the test image boots
# a shell, not systemd: what systemd itself does is not tested here). A tethered program
# configured in /etc/tether/tethered must see the server's export. Every VM's dmesg must be
# free of warnings. Last line "# totals: ...".
. "$(dirname "$0")/hostlib.sh"

t0=$(date +%s)
prepare >&2
start_run install
log "run directory: $RUN"
make -C "$TETHER_ROOT" install DESTDIR="$RUN/stage" >"$RUN/make-install.log" 2>&1 ||
	die "make install DESTDIR=$RUN/stage failed, see $RUN/make-install.log"
modinfo -F vermagic "$TETHER_ROOT/client_proxy/tether_client.ko" | cut -d' ' -f1 >"$RUN/kver"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$RUN/key"
VMS=(server client)
export VM_TIMEOUT=${VM_TIMEOUT:-600}
boot server server $SERVER_CID ROLE_SCRIPT=/tether/tests/vm/install-server.sh LOAD_MODULE=0
boot client client $CLIENT_CID ROLE_SCRIPT=/tether/tests/vm/install-client.sh LOAD_MODULE=0
wait_vm client "$VM_TIMEOUT"
touch "$RUN/client-done"
wait_vm server 120

ktap_gather
ktap_print
echo "# boot-to-ready ms:$(for vm in "${VMS[@]}"; do printf ' %s=%s' "$vm" "$(boot_ms "$vm")"; done)"
echo "# install took $(($(date +%s) - t0)) s; logs in $RUN (role.log, dmesg.log per VM)"
echo "# totals: pass=$pass fail=$fail skip=$skip"
[ $fail = 0 ]
