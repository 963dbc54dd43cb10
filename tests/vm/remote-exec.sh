#!/bin/bash
# remote-exec.sh DIR: programs and #! scripts run from DIR (created; its parent must exist),
# printing only what must come out the same wherever DIR lives: tests/vm/remote-client.sh
# runs it untethered on the client's /tmp and tethered on the server's export (remote exec,
# client_proxy/syscalls/exec.rs), and compares.
set -u
D=$1
rm -rf "$D" && mkdir -p "$D/bin" && cd "$D" || exit 1
cp /usr/bin/printf bin/myprintf && cp /usr/bin/env bin/myenv && cp /usr/bin/sleep bin/mysleep || exit 1
printf '#!/bin/sh\necho "script $0 $# $1"\n' >s.sh && chmod 755 s.sh
printf '#!%s/bin/myenv sh\necho "via env: $0 $1"\n' "$D" >e.sh && chmod 755 e.sh
printf '#!/bin/sh\necho never\n' >noexec.sh && chmod 644 noexec.sh
mkdir dir.d
echo "abs: $("$D/bin/myprintf" '%s-%s' a b)"
echo "rel: $(cd bin && ./myprintf '%s' rel)"
echo "path: $(PATH=$D/bin:$PATH myprintf '%s' path)"
echo "script: $(./s.sh one two)"
echo "env-script: $(./e.sh x)"
./noexec.sh 2>/dev/null; echo "noexec: $?"
./missing 2>/dev/null; echo "missing: $?"
./dir.d 2>/dev/null; echo "dir: $?"
bin/mysleep 2 & p=$!
for _ in $(seq 100); do [ "$(cat /proc/$p/comm)" = mysleep ] && break; sleep 0.1; done
echo "comm: $(cat /proc/$p/comm)"
wait $p; echo "sleep: $?"
