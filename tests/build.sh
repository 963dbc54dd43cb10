#!/bin/bash
# Build the in-VM test programs (kselftest-style C tests, vsock bench, the crash-torture
# workload) in the toolchain chroot against trixie's glibc (the guest image's), into
# tests/build/. tests/remote.sh and tests/torture.sh run it (through prepare).
. "$(dirname "$0")/../qemu/lib.sh"

"$TETHER_ROOT/qemu/toolchain.sh"
[ -e "$CACHE/linux-src-7.3/.done" ] || "$TETHER_ROOT/qemu/kernel.sh"   # unpacks the sources
mkdir -p "$TETHER_ROOT/tests/build"
in_chroot /bin/sh -ec '
	cc="gcc -O2 -g -Wall -Wextra -Wno-unused-parameter -Wno-sign-compare -Werror"
	sel=/cache/linux-src-7.3/tools/testing/selftests
	cd /work/tests
	$cc -I$sel -o build/server_proto selftests/server_proto.c
	$cc -I$sel -o build/server_resume selftests/server_resume.c
	$cc -I$sel -o build/fuzz_server selftests/fuzz_server.c
	$cc -I$sel -o build/hostile selftests/hostile.c
	$cc -o build/vsock_bench bench/vsock_bench.c
	$cc -o build/opbench bench/opbench.c
	$cc -o build/wire_xcheck selftests/wire_xcheck.c
	$cc -I$sel -o build/shadow_commit selftests/shadow_commit.c
	gcc -O2 -Wall -Wextra -Werror -o build/torture fsops/torture.c
	gcc -O2 -Wall -Wextra -Werror -o build/lockpid fsops/lockpid.c
'
