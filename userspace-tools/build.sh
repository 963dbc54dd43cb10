#!/bin/bash
# Build the userspace tools in the toolchain chroot: tether-shadow (static, so that it runs
# inside any export root).
. "$(dirname "$0")/../qemu/lib.sh"
"$TETHER_ROOT/qemu/toolchain.sh"
in_chroot sh -c 'cd /work/userspace-tools &&
	gcc -O2 -Wall -Wextra -Werror -static -o tether-shadow tether-shadow.c'
