# tether: top-level Makefile. The modules are built by the kernel's Kbuild (see ./Kbuild),
# inside a pinned Debian trixie chroot; everything slow is cached in $(TETHER_CACHE).
KVARIANT ?= debug
export KVARIANT

.PHONY: all modules tools clippy rustfmt rustfmtcheck toolchain kernel image check torture bench demo clean \
	install uninstall install-dkms check-install fuzz

all: modules

toolchain:
	qemu/toolchain.sh
# qemu/kernel.sh with progress (its bytes key the kernel cache; the progress is in lib.sh).
kernel:
	bash -c '. qemu/lib.sh && build_kernel'
image:
	qemu/image.sh
# The modules and tether-shadow, the program the server module starts for each client process.
modules: tools
	qemu/modules.sh
tools:
	userspace-tools/build.sh
clippy:
	CLIPPY=1 qemu/modules.sh
rustfmt:
	qemu/modules.sh rustfmt
	qemu/cargo.sh rust fmt
rustfmtcheck:
	qemu/modules.sh rustfmtcheck
	qemu/cargo.sh rust fmt --check
check:
	tests/check.sh
# Crash torture: 100 server kills over vsock, then 50 over TCP (make check runs 20 and 10).
torture:
	TORTURE_KILLS=100 tests/torture.sh
	TORTURE_TCP=1 TORTURE_KILLS=50 TORTURE_FAULTS= TORTURE_NOBUILD=1 tests/torture.sh
# Fuzzing: the protocol decoder on the host (10^7 inputs, about a minute), then the
# structure-aware fuzzer against the server module in the VMs for 10 minutes, within the
# remote suite (make check runs 30 s of it).
fuzz:
	qemu/cargo.sh rust run --release --bin tether-proto-fuzz -- 10000000
	FUZZ_SECONDS=600 tests/remote.sh
# Benchmarks run on the release kernel (no lockdep/kmemleak): first the one-run table of every
# peer (local, raw vsock/TCP, NFSv4.2, tether over vsock and TCP), then the older parts.
bench:
	KVARIANT=release tests/bench-all.sh
	KVARIANT=release tests/bench.sh
	KVARIANT=release tests/bench-remote.sh
	KVARIANT=release tests/bench-crash.sh
	KVARIANT=release tests/bench-programs.sh
# A tethered shell running against the server, then a server crash the client rides out.
demo:
	qemu/demo-remote.sh
	qemu/demo.sh
clean:
	qemu/modules.sh clean
	qemu/cargo.sh rust clean
# Install on this machine (or under DESTDIR=): the modules into /lib/modules/KVER/extra (KVER:
# the kernel they were built for), tether-shadow into /usr/libexec/tether, tetherctl into
# /usr/sbin, tetherctl(8), /etc/modprobe.d/tether.conf, the systemd units, /etc/tether examples.
install: modules
	packaging/install.sh install
uninstall:
	packaging/install.sh uninstall
# The module sources for DKMS (/usr/src/tether-VERSION), then dkms add/build/install.
install-dkms:
	packaging/install.sh dkms
# make install tested in two VMs that boot systemd: install and enable, reboot, the units come
# up by themselves, a tethered program, reload, stop (tests/install.sh).
check-install:
	tests/install.sh
