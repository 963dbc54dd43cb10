#!/bin/bash
# make check: host unit tests (each passing cargo test counts), the bounded protocol fuzz,
# clippy, the kernel modules' build, then the VM integration tests (tests/vmtest.sh: link,
# handshake, crash, load cycles; tests/remote.sh: remote system calls; tests/torture.sh:
# crash torture, 20 server kills).
# Builds whatever is missing. Last line: "N passed, N failed, N skipped"; exit 1 on failure.
. "$(dirname "$0")/../qemu/lib.sh"
set +e

host_pkgs coreutils util-linux e2fsprogs debootstrap gawk make sed grep
# The host needs no Rust: every cargo and rustc here is the toolchain chroot's (trixie's,
# through qemu/cargo.sh); qemu/lib.sh has dropped PATH's directories that hold a host cargo
# or rustc, so that a step that would use one fails here as on a fresh Debian machine.
if command -v cargo >/dev/null || command -v rustc >/dev/null; then
	echo "# error: a host cargo/rustc is still on PATH ($(command -v cargo rustc | tr '\n' ' '))" >&2
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
step "kernel modules build (make modules)" modules.log make modules
xcheck() { # the selftests' C wire encoder against rust/ (tether-proto): same bytes
	"$TETHER_ROOT/tests/build.sh" &&
		"$CARGO" tests/xcheck run -q --target-dir /cache/xcheck-target >"$LOGS/xcheck-rust.txt" &&
		in_chroot /work/tests/build/wire_xcheck >"$LOGS/xcheck-c.txt" &&
		diff "$LOGS/xcheck-rust.txt" "$LOGS/xcheck-c.txt"
}
step "wire format: C test encoder = Rust tether-proto" xcheck.log xcheck

# vm_suite NAME TIMEOUT : run tests/NAME.sh (KTAP) and add its totals.
# Its stderr (build steps, boots, one line per group of results with the elapsed time) goes
# to the terminal too.
vm_suite() {
	local t
	t=$(date +%s)
	timeout "$2" "$TETHER_ROOT/tests/$1.sh" 2> >(tee "$LOGS/$1.stderr" >&2) | tee "$LOGS/$1.ktap"
	totals=$(sed -n 's/^# totals: pass=\([0-9]*\) fail=\([0-9]*\) skip=\([0-9]*\)$/\1 \2 \3/p' "$LOGS/$1.ktap")
	if [ -n "$totals" ]; then
		read -r p f s <<<"$totals"
		pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + s))
	else
		res "not ok" "$1.sh completed (see $LOGS/$1.stderr)"
		tail -n 15 "$LOGS/$1.stderr"
	fi
	done_in "finished: $1.sh" "$t"
}
vm_suite vmtest 3600
vm_suite remote 1200
vm_suite torture 3300
echo "$pass passed, $fail failed, $skip skipped"
[ $fail = 0 ]
