#!/bin/bash
# make bench, part 4: real programs (tests/vm/real-programs.sh: git, sqlite3, python3) in one
# run of the same two VMs: locally on the server's export disk, locally on the client's
# tmpfs, and tethered from the client onto the server's export. Prints each part's time
# with the ratio tethered / local on the server, then where the tethered run's remote calls
# spent their time (`tetherctl calls` on both sides: the client's submit-to-reply time and
# the shadow's time in the system call, commit included).
. "$(dirname "$0")/hostlib.sh"

prepare >&2
start_run bench-programs
cat >"$RUN/server.sh" <<'SH'
mount /dev/vdb /srv && mkdir -p /srv/local
bash /tether/tests/vm/real-programs.sh /srv/local/real >/out/server-local.txt 2>&1
echo "exit $?" >>/out/server-local.txt
sync
insmod /tether/server_comm/tether_server.ko allowed_cids=3 shadow_path=/tether/userspace-tools/tether-shadow root=/srv squash_root=0
touch /shared/server-up
while [ ! -e /shared/client-done ]; do sleep 0.2; done
/tether/userspace-tools/tetherctl calls >/out/server-calls.txt 2>&1
SH
cat >"$RUN/client.sh" <<'SH'
while [ ! -e /shared/server-up ]; do sleep 0.2; done
bash /tether/tests/vm/real-programs.sh /tmp/real >/out/client-local.txt 2>&1
echo "exit $?" >>/out/client-local.txt
mkdir -p /var/lib/tether
insmod /tether/client_proxy/tether_client.ko server_cid=4
for i in $(seq 300); do grep -q state=connected /sys/kernel/tether_client/state && break; sleep 0.1; done
cp /bin/bash /tmp/bash-m && setfattr -n trusted.tether.loader -v 1 /tmp/bash-m
/tmp/bash-m -c "set -- /real; $(cat /tether/tests/vm/real-programs.sh)" >/out/client-tethered.txt 2>&1
echo "exit $?" >>/out/client-tethered.txt
/tether/userspace-tools/tetherctl calls >/out/client-calls.txt 2>&1
touch /shared/client-done
rmmod tether_client
SH
VMS=(server client)
boot server server $SERVER_CID ROLE_SCRIPT=/shared/server.sh LOAD_MODULE=0
boot client client $CLIENT_CID ROLE_SCRIPT=/shared/client.sh LOAD_MODULE=0
wait_vm client 1800
touch "$RUN/client-done"
wait_vm server 60

# part FILE NAME : milliseconds of part NAME in a transcript
part() { sed -n "s/^time $2: \([0-9]*\) ms$/\1/p" "$RUN/$1" | head -n1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "-"; else printf "%.1f", a / b }'; }
row() { printf '| %-8s | %14s | %14s | %14s | %s\n' "$@"; }
echo "real programs (tests/vm/real-programs.sh), one run of the same VMs (TCG): ms per part"
row part "server local" "client local" tethered "tethered / server local"
for p in git sqlite3 python3; do
	s=$(part server/server-local.txt $p) c=$(part client/client-local.txt $p) t=$(part client/client-tethered.txt $p)
	row "$p" "$s" "$c" "$t" "$(ratio "$t" "$s")"
done
for f in server/server-local.txt client/client-local.txt client/client-tethered.txt; do
	echo "# $f: $(tail -n 1 "$RUN/$f")"
done
if diff <(grep -v '^time ' "$RUN/server/server-local.txt") <(grep -v '^time ' "$RUN/client/client-tethered.txt") >/dev/null; then
	echo "# the tethered transcript equals the server's local one"
else
	echo "# the tethered transcript differs from the server's local one:"
	diff <(grep -v '^time ' "$RUN/server/server-local.txt") <(grep -v '^time ' "$RUN/client/client-tethered.txt") | sed 's/^/#   /'
fi
echo
echo "where the tethered run's remote calls spent their time (top 15 by total)"
for f in client/client-calls.txt server/server-calls.txt; do
	head -n 17 "$RUN/$f"
	echo
done
echo "(raw: $RUN/{server,client}/*.txt)"
