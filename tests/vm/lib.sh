# Helpers for the in-VM test scripts (sourced). Results go to /out/results, one line each:
# "ok - DESC", "not ok - DESC" or "ok - DESC # SKIP why"; tests/vmtest.sh numbers them.
# shellcheck shell=bash
RESULTS=/out/results
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
TB=/tether/tests/build

ok() { echo "ok - $*" | tee -a $RESULTS; }
nok() { echo "not ok - $*" | tee -a $RESULTS; }
skip() { echo "ok - $1 # SKIP $2" | tee -a $RESULTS; }
# check DESC CMD... : one result from CMD's exit status (CMD's output goes to the log).
check() {
	local desc=$1
	shift
	echo "# check: $desc" >&2
	if "$@"; then ok "$desc"; else nok "$desc"; fi
}
# wait_until SECONDS CMD... : poll CMD every 20 ms until it succeeds; fails after SECONDS.
wait_until() {
	local end=$(($(date +%s%N) + $1 * 1000000000))
	shift
	until "$@"; do
		[ "$(date +%s%N)" -lt $end ] || return 1
		sleep 0.02
	done
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# key FILE KEY : value of KEY= in a state file (empty when absent).
key() { sed -n "s/^$2=//p" "$1" 2>/dev/null | head -n1; }

# state_parses FILE KEY... : every line is key=value (number, 0x-hex or word) or a
# server list (vsock:4:7777,tcp:10.0.0.1:7777) or a "session id=N peer=P k=v..." line (P: a
# CID or an IPv4 address) or a "shadow session=N rpid=N pid=N k=v..." line, and every KEY
# is present exactly once.
state_parses() {
	local f=$1 line k bad=0 text
	shift
	text=$(cat "$f" 2>/dev/null)   # sysfs and debugfs files have size 0: read them
	[ -n "$text" ] || { echo "$f: empty or missing"; return 1; }
	while IFS= read -r line; do
		[[ $line =~ ^[a-z_]+=(0x[0-9a-f]+|[0-9]+(,[0-9]+)*|[a-z_]+)$ ]] && continue
		[[ $line =~ ^servers?=(vsock|tcp):[0-9.]+:[0-9]+(,(vsock|tcp):[0-9.]+:[0-9]+)*$ ]] && continue
		[[ $line =~ ^session\ id=[0-9]+\ peer=[0-9.]+(\ [a-z_]+=[0-9]+)*$ ]] && continue
		[[ $line =~ ^shadow\ session=[0-9]+\ rpid=[0-9]+\ pid=[0-9]+(\ [a-z_]+=[0-9]+)*$ ]] && continue
		echo "$f: bad line: $line"
		bad=1
	done <<<"$text"
	for k in "$@"; do
		[ "$(grep -c "^$k=" <<<"$text")" = 1 ] || { echo "$f: key $k missing or repeated"; bad=1; }
	done
	return $bad
}

# params_described KO NAME... : modinfo lists (at least) these parameters, and every
# parameter it lists has a description.
params_described() {
	local ko=$1 name desc bad=0 types
	shift
	types=$(modinfo -F parmtype "$ko" | cut -d: -f1)
	for name in "$@"; do
		grep -qx "$name" <<<"$types" || { echo "$ko: no parameter $name"; bad=1; }
	done
	while IFS=: read -r name desc; do
		desc=${desc%(*)}
		[ -n "${desc// /}" ] || { echo "$ko: parameter $name has no description"; bad=1; }
	done < <(modinfo -F parm "$ko")
	[ "$(modinfo -F parm "$ko" | wc -l)" = "$(wc -l <<<"$types")" ] || { echo "$ko: parm and parmtype lists differ"; bad=1; }
	return $bad
}

# kmemleak_clean : two scans, then no unreferenced object may be reported.
kmemleak_clean() {
	local k=/sys/kernel/debug/kmemleak
	[ -e $k ] || { echo "no $k"; return 1; }
	echo scan >$k && sleep 1 && echo scan >$k
	cat $k >/tmp/kmemleak.txt
	[ -s /tmp/kmemleak.txt ] || return 0
	cp /tmp/kmemleak.txt "/out/kmemleak-$(date +%s).txt"
	head -n 30 /tmp/kmemleak.txt
	return 1
}

# selftest BIN [TIMEOUT] : run a kselftest binary, one result per test case plus one
# for the whole run (exit status, and as many results as the plan announced).
selftest() {
	local bin=$1 name rc=0 plan got
	name=$(basename "$bin")
	timeout "${2:-600}" "$bin" >"/out/$name.tap" 2>&1 || rc=$?
	plan=$(sed -n 's/^1\.\.\([0-9]*\)$/\1/p' "/out/$name.tap" | head -n1)
	sed -nE 's/^(ok|not ok) [0-9]+ (.*)$/\1 - '"$name"': \2/p' "/out/$name.tap" | tee -a $RESULTS
	got=$(grep -cE '^(ok|not ok) [0-9]+ ' "/out/$name.tap")
	if [ $rc = 0 ] && [ -n "$plan" ] && [ "$got" = "$plan" ]; then ok "$name: complete run ($got cases)"
	else nok "$name: complete run (exit $rc, $got of ${plan:-?} cases)"; fi
}
# gone PID : process PID has exited (or is a zombie waiting for us).
gone() { local st; st=$(ps -o stat= -p "$1" 2>/dev/null); [ -z "$st" ] || [[ $st == Z* ]]; }
# reap PID SECONDS : wait for background process PID for SECONDS, then TERM, then KILL;
# returns its exit status, or 125 (and leaves it) when it does not die: the role script
# must never hang on a process stuck in the kernel.
reap() {
	local p=$1 rc=0
	if ! wait_until "$2" gone "$p"; then
		echo "pid $p still running after $2 s: SIGTERM"
		kill -TERM "$p" 2>/dev/null
		if ! wait_until 5 gone "$p"; then
			echo "pid $p ignores SIGTERM: SIGKILL; kernel stack:"
			cat /proc/"$p"/stack 2>/dev/null
			kill -KILL "$p" 2>/dev/null
			wait_until 5 gone "$p" || { echo "pid $p survives SIGKILL (state $(ps -o stat= -p "$p"))"; return 125; }
		fi
	fi
	wait "$p" || rc=$?
	return $rc
}

# systemd_boot_setup ROLE : what tests/install.sh's first boot (tests/vm/install-*.sh)
# prepares besides tether for the systemd boot that follows: a machine id and hostname
# (tether-ROLE-CID; an installed machine has both, without an id systemd would run its first
# boot), longer systemd timeouts (TCG with the debug kernel, next to a busy host, can take
# minutes to coldplug udev: past the default 90 s a device job fails, /srv's fstab mount
# with it, and the boot ends in emergency mode), and the test-only tether-test.service
# (tests/vm/tether-test.service), enabled.
systemd_boot_setup() {
	systemd-machine-id-setup
	echo "tether-$1-$CID" >/etc/hostname
	mkdir -p /etc/systemd/system.conf.d
	printf '[Manager]\nDefaultDeviceTimeoutSec=15min\nDefaultTimeoutStartSec=15min\n' \
		>/etc/systemd/system.conf.d/tether-test-tcg.conf
	install -m 644 /tether/tests/vm/tether-test.service /etc/systemd/system/ &&
		systemctl enable tether-test.service
}

# unit_is UNIT PROPERTY VALUE : systemctl show's PROPERTY of UNIT is VALUE.
unit_is() { [ "$(systemctl show -P "$2" "$1")" = "$3" ]; }
# check_systemd_boot : the checks of tests/install.sh's second boot that both roles share:
# a clean boot with systemd as PID 1 that started the enabled $UNIT by itself.
check_systemd_boot() {
	local o
	o=$(systemctl is-system-running --wait 2>&1)
	echo "is-system-running: $o"
	[ "$o" = running ] || systemctl --failed --no-pager
	check "systemd: the boot finished with no failed unit (is-system-running: $o)" [ "$o" = running ]
	check "systemd is PID 1" eval '[ "$(cat /proc/1/comm)" = systemd ]'
	check "systemctl is-enabled $UNIT: enabled" eval '[ "$(systemctl is-enabled $UNIT)" = enabled ]'
	check "$UNIT came up at boot (is-active: active, ExecStart exited 0)" eval \
		'systemctl is-active -q $UNIT && unit_is $UNIT ExecMainStatus 0'
	systemctl status --no-pager $UNIT
}
# check_systemd_stop MODULE : systemctl stop $UNIT unloads MODULE and leaves the unit
# inactive, not failed; then the unit's journal of this boot.
check_systemd_stop() {
	check "systemctl stop $UNIT unloads the module" eval \
		"systemctl stop $UNIT && ! grep -q '^$1 ' /proc/modules"
	check "$UNIT is inactive, not failed" eval '[ "$(systemctl is-active $UNIT)" = inactive ]'
	journalctl -b -u $UNIT --no-pager
}
