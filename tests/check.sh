#!/bin/bash
# make check: host unit tests (each passing cargo test counts), the bounded protocol fuzz,
# clippy, the kernel modules' build, then the VM integration tests (tests/vmtest.sh: link,
# handshake, crash, load cycles; tests/remote.sh: remote system calls; tests/torture.sh:
# crash torture, 20 server kills).
# Builds whatever is missing. Last line: "N passed, N failed, N skipped"; exit 1 on failure.
. "$(dirname "$0")/../qemu/lib.sh"
set +e

host_pkgs coreutils util-linux e2fsprogs debootstrap gawk make sed grep
export PATH="$PATH:$HOME/.cargo/bin"
command -v cargo >/dev/null || host_pkgs cargo rustc
LOGS="$CACHE/check-logs"
mkdir -p "$LOGS"
pass=0 fail=0 skip=0
res() { # ok|"not ok" DESC
	case $1 in ok) pass=$((pass + 1)) ;; *) fail=$((fail + 1)) ;; esac
	echo "$1 - $2"
}
# step DESC LOG CMD... : one result from CMD's exit status, output in $LOGS/LOG
step() {
	local desc=$1 logf="$LOGS/$2"
	shift 2
	if "$@" >"$logf" 2>&1; then res ok "$desc"; else res "not ok" "$desc (see $logf)"; tail -n 15 "$logf"; fi
}

cd "$TETHER_ROOT/rust" || exit 1
timeout 1200 cargo test >"$LOGS/cargo-test.log" 2>&1
rc=$?
n_ok=$(grep -cE '^test .* \.\.\. ok$' "$LOGS/cargo-test.log")
n_bad=$(grep -cE '^test .* \.\.\. FAILED$' "$LOGS/cargo-test.log")
n_ign=$(grep -cE '^test .* \.\.\. ignored' "$LOGS/cargo-test.log")
pass=$((pass + n_ok)) fail=$((fail + n_bad)) skip=$((skip + n_ign))
echo "# cargo test: $n_ok passed, $n_bad failed, $n_ign ignored"
grep -E '^test .* \.\.\. FAILED$' "$LOGS/cargo-test.log"
[ $rc = 0 ] || [ "$n_bad" != 0 ] || res "not ok" "cargo test ran (exit $rc, see $LOGS/cargo-test.log)"
step "protocol fuzz, 1000000 iterations" fuzz.log timeout 1800 cargo run --release --bin tether-proto-fuzz -- 1000000
step "cargo clippy --all-targets -D warnings" clippy.log timeout 1200 cargo clippy --all-targets -- -D warnings
cd "$TETHER_ROOT" || exit 1
step "kernel modules build (make modules)" modules.log make modules
xcheck() { # the selftests' C wire encoder against rust/ (tether-proto): same bytes
	"$TETHER_ROOT/tests/build.sh" &&
		cargo run -q --manifest-path "$TETHER_ROOT/tests/xcheck/Cargo.toml" \
			--target-dir "$CACHE/xcheck-target" >"$LOGS/xcheck-rust.txt" &&
		in_chroot /work/tests/build/wire_xcheck >"$LOGS/xcheck-c.txt" &&
		diff "$LOGS/xcheck-rust.txt" "$LOGS/xcheck-c.txt"
}
step "wire format: C test encoder = Rust tether-proto" xcheck.log xcheck

# vm_suite NAME TIMEOUT : run tests/NAME.sh (KTAP) and add its totals.
vm_suite() {
	timeout "$2" "$TETHER_ROOT/tests/$1.sh" 2>"$LOGS/$1.stderr" | tee "$LOGS/$1.ktap"
	totals=$(sed -n 's/^# totals: pass=\([0-9]*\) fail=\([0-9]*\) skip=\([0-9]*\)$/\1 \2 \3/p' "$LOGS/$1.ktap")
	if [ -n "$totals" ]; then
		read -r p f s <<<"$totals"
		pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + s))
	else
		res "not ok" "$1.sh completed (see $LOGS/$1.stderr)"
		tail -n 15 "$LOGS/$1.stderr"
	fi
}
vm_suite vmtest 3600
vm_suite remote 1200
vm_suite torture 3300
echo "$pass passed, $fail failed, $skip skipped"
[ $fail = 0 ]
