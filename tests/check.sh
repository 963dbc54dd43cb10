#!/bin/bash
# make check: host unit tests (each passing cargo test counts), the bounded protocol fuzz,
# clippy, the kernel modules' build, the C/Rust wire cross-check, tetherctl's tests (each
# counts), make install into a DESTDIR, a dkms build, then the VM integration tests (tests/vmtest.sh: link,
# handshake, crash, load cycles; tests/remote.sh: remote system calls, over vsock and TCP;
# tests/torture.sh: crash torture, 20 server kills and 12 fault points over vsock, then 10
# kills over TCP; tests/many.sh: four clients of one server through a server kill, over
# vsock, then over TCP).
# Builds whatever is missing. Last line: "N passed, N failed, N skipped"; exit 1 on failure.
# No host Rust is used (cargo runs in the toolchain chroot). CHECK_VM=0: host-side steps only.
. "$(dirname "$0")/../qemu/lib.sh"
set +e

host_pkgs coreutils util-linux e2fsprogs debootstrap gawk make sed grep kmod
# The host needs no Rust: every cargo and rustc here is the toolchain chroot's (trixie's,
# through qemu/cargo.sh); qemu/lib.sh put stand-ins for the host's first in PATH, so that a
# step that would use one fails here as on a fresh Debian machine.
if [ "$(command -v cargo)" != "$NO_HOST_RUST/cargo" ] || [ "$(command -v rustc)" != "$NO_HOST_RUST/rustc" ]; then
	echo "not ok - the host's cargo and rustc are hidden ($(command -v cargo rustc | tr '\n' ' '))"
	echo "0 passed, 1 failed, 0 skipped"
	exit 1
fi
LOGS="$CACHE/check-logs"
T0=$(date +%s)
mkdir -p "$LOGS"
pass=0 fail=0 skip=0
res() { # ok|"not ok" DESC
	case $1 in ok) pass=$((pass + 1)) ;; *) fail=$((fail + 1)) ;; esac
	echo "$1 - $2"
}
# done_in WHAT T : "WHAT (12s, 4m05s in all)" on stderr: since T, and since the start
done_in() { log "$1 ($(hms $(($(date +%s) - $2))), $(hms $(($(date +%s) - T0))) in all)"; }
# step DESC LOG CMD... : one result from CMD's exit status, output in $LOGS/LOG
step() {
	local desc=$1 logf="$LOGS/$2" t
	shift 2
	t=$(date +%s)
	if "$@" >"$logf" 2>&1; then res ok "$desc"; else res "not ok" "$desc (see $logf)"; tail -n 15 "$logf"; fi
	done_in "finished: $desc" "$t"
}
CARGO="$TETHER_ROOT/qemu/cargo.sh"

# A host cargo in a directory PATH needs (Debian's cargo package: /usr/bin/cargo) is hidden
# too, and that directory's other programs stay usable.
host_rust_hidden() {
	local d t rc
	d=$(mktemp -d) || return 1
	printf '#!/bin/sh\ntouch "%s/used"\n' "$d" >"$d/cargo" && chmod 755 "$d/cargo" || return 1
	for t in bash dirname nproc mkdir chmod mv sha256sum cat cut; do ln -s "$(command -v $t)" "$d/$t"; done
	PATH="$d" TMPDIR="$d" "$d/bash" -c '. "$0/qemu/lib.sh"; sha256sum </dev/null >/dev/null && ! cargo --version 2>/dev/null' "$TETHER_ROOT" &&
		[ ! -e "$d/used" ]
	rc=$?
	rm -rf "$d"
	return $rc
}
step "a host cargo in a directory PATH needs (/usr/bin) is hidden, the directory's programs stay" host-rust.log host_rust_hidden

cd "$TETHER_ROOT" || exit 1
# The toolchain chroot (with its cargo layer) first: cargo runs in it.
t=$(date +%s)
"$TETHER_ROOT/qemu/toolchain.sh" >&2 || { res "not ok" "toolchain chroot (qemu/toolchain.sh)"; echo "$pass passed, $fail failed, $skip skipped"; exit 1; }
done_in "finished: toolchain chroot" "$t"
t=$(date +%s)
timeout 1200 "$CARGO" rust test >"$LOGS/cargo-test.log" 2>&1
rc=$?
n_ok=$(grep -cE '^test .* \.\.\. ok$' "$LOGS/cargo-test.log")
n_bad=$(grep -cE '^test .* \.\.\. FAILED$' "$LOGS/cargo-test.log")
n_ign=$(grep -cE '^test .* \.\.\. ignored' "$LOGS/cargo-test.log")
pass=$((pass + n_ok)) fail=$((fail + n_bad)) skip=$((skip + n_ign))
echo "# cargo test: $n_ok passed, $n_bad failed, $n_ign ignored"
grep -E '^test .* \.\.\. FAILED$' "$LOGS/cargo-test.log"
[ $rc = 0 ] || [ "$n_bad" != 0 ] || res "not ok" "cargo test ran (exit $rc, see $LOGS/cargo-test.log)"
done_in "finished: cargo test" "$t"
step "protocol fuzz, 1000000 iterations" fuzz.log timeout 1800 "$CARGO" rust run --release --bin tether-proto-fuzz -- 1000000
step "cargo clippy --all-targets -D warnings" clippy.log timeout 1200 "$CARGO" rust clippy --all-targets -- -D warnings
# The modules built with clippy (CLIPPY=1): any warning fails the step.
modules_clippy() {
	local out rc
	out=$(make modules CLIPPY=1 2>&1)
	rc=$?
	printf '%s\n' "$out"
	[ $rc = 0 ] && ! grep -qE '^(warning|error)' <<<"$out"
}
step "kernel modules build with clippy, no warning (make modules CLIPPY=1)" modules.log modules_clippy
xcheck() { # the selftests' C wire encoder against rust/ (tether-proto): same bytes
	"$TETHER_ROOT/tests/build.sh" &&
		"$CARGO" tests/xcheck run -q --target-dir /cache/xcheck-target >"$LOGS/xcheck-rust.txt" &&
		in_chroot /work/tests/build/wire_xcheck >"$LOGS/xcheck-c.txt" &&
		diff "$LOGS/xcheck-rust.txt" "$LOGS/xcheck-c.txt"
}
step "wire format: C test encoder = Rust tether-proto" xcheck.log xcheck

# The shadow's commit rules on the host (tests/selftests/shadow_commit.c, built above by
# tests/build.sh): each of its KTAP results counts.
t=$(date +%s)
in_chroot /work/tests/build/shadow_commit >"$LOGS/shadow_commit.log" 2>&1
n_ok=$(grep -cE '^ok [0-9]+ ' "$LOGS/shadow_commit.log") n_bad=$(grep -cE '^not ok [0-9]+ ' "$LOGS/shadow_commit.log")
pass=$((pass + n_ok)) fail=$((fail + n_bad))
echo "# shadow commit rules (tests/selftests/shadow_commit.c): $n_ok passed, $n_bad failed"
grep -E '^not ok [0-9]+ ' "$LOGS/shadow_commit.log"
[ "$((n_ok + n_bad))" -gt 0 ] || res "not ok" "tests/selftests/shadow_commit.c ran (see $LOGS/shadow_commit.log)"
done_in "finished: shadow commit rules" "$t"

# tetherctl against a fake debugfs/sysfs/etc, in the chroot (groff, attr, kmod are there):
# each of its results counts.
t=$(date +%s)
in_chroot /work/tests/tetherctl.sh >"$LOGS/tetherctl.log" 2>&1
n_ok=$(grep -cE '^ok - ' "$LOGS/tetherctl.log") n_bad=$(grep -cE '^not ok - ' "$LOGS/tetherctl.log")
n_skip=$(grep -cE '^ok - .*# SKIP' "$LOGS/tetherctl.log")
pass=$((pass + n_ok - n_skip)) fail=$((fail + n_bad)) skip=$((skip + n_skip))
echo "# tetherctl (tests/tetherctl.sh): $((n_ok - n_skip)) passed, $n_bad failed, $n_skip skipped"
grep -A8 -E '^not ok - ' "$LOGS/tetherctl.log" | head -n 40
[ "$((n_ok + n_bad))" -gt 0 ] || res "not ok" "tests/tetherctl.sh ran (see $LOGS/tetherctl.log)"
done_in "finished: tetherctl tests" "$t"

# make install into a DESTDIR: every file where it belongs, with its mode; the units' and
# tetherctl's paths exist; a second install keeps edited /etc/tether files; uninstall.
install_test() {
	local d="$CACHE/check-install" k f bad=0
	rm -rf "$d"
	make -C "$TETHER_ROOT" install DESTDIR="$d" || return 1
	k=$(modinfo -F vermagic "$TETHER_ROOT/client_proxy/tether_client.ko" | cut -d' ' -f1)
	for f in "0644 /lib/modules/$k/extra/tether_client.ko" "0644 /lib/modules/$k/extra/tether_server.ko" \
		"0755 /usr/libexec/tether/tether-shadow" "0755 /usr/sbin/tetherctl" "0644 /usr/share/man/man8/tetherctl.8" \
		"0644 /etc/modprobe.d/tether.conf" "0644 /usr/lib/systemd/system/tether-server.service" \
		"0644 /usr/lib/systemd/system/tether-client.service" "0644 /etc/tether/exports" \
		"0644 /etc/tether/server.conf" "0644 /etc/tether/client.conf" "0644 /etc/tether/tethered" \
		"0700 /var/lib/tether"; do
		[ "$(stat -c %04a "$d${f#* }" 2>/dev/null)" = "${f%% *}" ] || { echo "missing or wrong mode: $d${f#* } (want ${f%% *})"; bad=1; }
	done
	cmp -s "$d/lib/modules/$k/extra/tether_server.ko" "$TETHER_ROOT/server_comm/tether_server.ko" || { echo "installed tether_server.ko differs"; bad=1; }
	"$d/usr/sbin/tetherctl" --help | grep -q '^Usage: tetherctl' || { echo "installed tetherctl --help"; bad=1; }
	for f in $(sed -n 's/^Exec[A-Za-z]*=-\{0,1\}\([^ ]*\).*/\1/p' "$d"/usr/lib/systemd/system/tether-*.service); do
		[ -x "$d$f" ] || { echo "a unit runs $f, not installed"; bad=1; }
	done
	grep -q 'shadow_path=/usr/libexec/tether/tether-shadow' "$d/etc/modprobe.d/tether.conf" || { echo "modprobe.d: shadow_path"; bad=1; }
	echo "3 /srv" >>"$d/etc/tether/exports"
	make -C "$TETHER_ROOT" install DESTDIR="$d" >/dev/null || return 1
	grep -qx '3 /srv' "$d/etc/tether/exports" || { echo "a second install replaced the edited /etc/tether/exports"; bad=1; }
	TETHER_ETC="$d/etc/tether" "$d/usr/sbin/tetherctl" exportfs -o | grep -qx 'allowed_cids=3 root=/srv squash_root=1' ||
		{ echo "tetherctl exportfs -o of the installed example plus a line"; bad=1; }
	make -C "$TETHER_ROOT" uninstall DESTDIR="$d" KVER="$k" || return 1
	for f in "/lib/modules/$k/extra/tether_client.ko" /usr/sbin/tetherctl /usr/libexec/tether/tether-shadow \
		/usr/lib/systemd/system/tether-server.service; do
		[ ! -e "$d$f" ] || { echo "uninstall left $d$f"; bad=1; }
	done
	[ -e "$d/etc/tether/exports" ] || { echo "uninstall removed /etc/tether"; bad=1; }
	return $bad
}
step "make install DESTDIR=: files, modes, paths; uninstall" install.log install_test

# The DKMS path: the sources make install-dkms copies to /usr/src/tether-VERSION, built by
# dkms (trixie's, in the chroot) against the kernel tree, in a DKMS tree under the cache.
dkms_test() {
	local d="$CACHE/check-dkms" v k
	v=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' "$TETHER_ROOT/dkms.conf")
	k=$(cat "$CACHE/$KBUILD_DIR/build/include/config/kernel.release") || return 1
	rm -rf "$d"
	DESTDIR="$d" "$TETHER_ROOT/packaging/install.sh" dkms || return 1
	[ -e "$d/usr/src/tether-$v/dkms.conf" ] || { echo "no dkms.conf in the sources"; return 1; }
	mkdir -p "$d/var/lib/dkms"
	in_chroot dkms build -m tether -v "$v" -k "$k" --kernelsourcedir "$KDIR_CHROOT" \
		--sourcetree /cache/check-dkms/usr/src --dkmstree /cache/check-dkms/var/lib/dkms || {
		cat "$d"/var/lib/dkms/tether/"$v"/build/make.log 2>/dev/null | tail -n 30
		return 1
	}
	ls -l "$d"/var/lib/dkms/tether/"$v"/"$k"/x86_64/module/tether_{client,server}.ko* || return 1
}
step "DKMS: dkms build of the make install-dkms sources against the kernel tree" dkms.log dkms_test

# vm_suite NAME TIMEOUT [LOG] : run tests/NAME.sh (KTAP) and add its totals; its output in
# $LOGS/LOG.ktap and .stderr (LOG: NAME).
# Its stderr (build steps, boots, one line per group of results with the elapsed time) goes
# to the terminal too.
vm_suite() {
	local t name=${3:-$1}
	t=$(date +%s)
	# stdout (KTAP) through fd 3 to the .ktap tee, stderr through its own tee: both pipelines
	# have ended, all lines written, before the totals are counted.
	{ timeout "$2" "$TETHER_ROOT/tests/$1.sh" 2>&1 1>&3 | tee "$LOGS/$name.stderr" >&2; } 3>&1 | tee "$LOGS/$name.ktap"
	totals=$(sed -n 's/^# totals: pass=\([0-9]*\) fail=\([0-9]*\) skip=\([0-9]*\)$/\1 \2 \3/p' "$LOGS/$name.ktap")
	if [ -n "$totals" ]; then
		read -r p f s <<<"$totals"
		pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + s))
	else
		res "not ok" "$name: $1.sh completed (see $LOGS/$name.stderr)"
		tail -n 15 "$LOGS/$name.stderr"
	fi
	done_in "finished: $name ($1.sh)" "$t"
}
if [ "${CHECK_VM:-1}" = 1 ]; then
	vm_suite vmtest 3600
	vm_suite remote 2100
	vm_suite torture 3300
	TORTURE_TCP=1 TORTURE_KILLS=10 TORTURE_FAULTS= TORTURE_NOBUILD=1 vm_suite torture 1800 torture-tcp
	MANY_NOBUILD=1 vm_suite many 1800
	MANY_TCP=1 MANY_NOBUILD=1 vm_suite many 1800 many-tcp
else
	echo "# CHECK_VM=0: the VM suites were not run"
fi
echo "$pass passed, $fail failed, $skip skipped"
[ $fail = 0 ]
