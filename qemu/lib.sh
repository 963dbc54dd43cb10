# Common settings for tether's build and VM scripts. Sourced, not run.
# shellcheck shell=bash
set -euo pipefail

TETHER_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${TETHER_CACHE:-/var/cache/tether}"
MIRROR="${TETHER_MIRROR:-http://deb.debian.org/debian}"
JOBS="${JOBS:-$(nproc)}"

# The host needs no Rust: cargo and rustc run in the toolchain chroot (qemu/cargo.sh).
# A directory first in PATH holds stand-ins for the host's Rust tools that fail with a
# message, so that nothing uses a host cargo (rustup's, or Debian's in /usr/bin) by accident
# and a missing step shows here as on a fresh Debian machine; PATH keeps everything else.
NO_HOST_RUST="${TMPDIR:-/tmp}/tether-no-host-rust"
no_host_rust() {
	local t
	mkdir -p "$NO_HOST_RUST"
	for t in cargo rustc rustup rustdoc rustfmt cargo-clippy clippy-driver; do
		[ -x "$NO_HOST_RUST/$t" ] && continue
		printf '#!/bin/sh\necho "tether: the host'"'"'s %s is not used: cargo and rustc run in the toolchain chroot (qemu/cargo.sh)" >&2\nexit 127\n' \
			"$t" >"$NO_HOST_RUST/$t.tmp" && chmod 755 "$NO_HOST_RUST/$t.tmp" && mv "$NO_HOST_RUST/$t.tmp" "$NO_HOST_RUST/$t"
	done
	case ":$PATH:" in
	":$NO_HOST_RUST:"*) ;;
	*) PATH="$NO_HOST_RUST:$PATH" ;;
	esac
}
no_host_rust
export PATH
unset CARGO_HOME CARGO_TARGET_DIR RUSTUP_HOME RUSTUP_TOOLCHAIN RUSTC RUSTFLAGS

log() { printf '[tether %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

# key FILE... : short content hash of the given files (cache key of an artifact).
key() { cat "$@" | sha256sum | cut -c1-12; }

# Ensure host packages are present (Debian bookworm host, as root).
host_pkgs() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	log "installing host packages: ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null ||
		{ apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }
}

# Toolchain chroot (Debian trixie): key is its package list. qemu/toolchain-extra.pkgs
# (cargo, ...) is a layer installed into it with its own stamp, so adding a package there
# does not change CHROOT_KEY (which keys the kernel build).
CHROOT_KEY="$(key "$TETHER_ROOT/qemu/toolchain.pkgs")"
CHROOT="$CACHE/chroot-$CHROOT_KEY"
EXTRA_KEY="$(key "$TETHER_ROOT/qemu/toolchain-extra.pkgs")"
EXTRA_STAMP="$CHROOT/.extra-$EXTRA_KEY"

# in_chroot CMD... : run CMD inside the toolchain chroot, with /proc /sys /dev
# mounted in a private mount namespace (nothing to clean up afterwards).
# (exec "${CHROOT_ARGV[@]}" CMD... does the same in place of the calling shell.)
in_chroot() {
	[ -e "$CHROOT/.done" ] || die "toolchain chroot missing: run qemu/toolchain.sh"
	"${CHROOT_ARGV[@]}" "$@"
}
CHROOT_ARGV=(unshare --mount --propagation private -- /bin/sh -c '
		c=$1; shift
		mount -t proc proc "$c/proc"
		mount --rbind /sys "$c/sys"
		mount --rbind /dev "$c/dev"
		mkdir -p "$c/work" "$c/cache"
		mount --bind "$0" "$c/work"
		mount --bind "$TETHER_CACHE_DIR" "$c/cache"
		exec chroot "$c" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
			LANG=C.UTF-8 TERM=dumb "$@"' "$TETHER_ROOT" "$CHROOT")
export TETHER_CACHE_DIR="$CACHE"

# chroot_cargo DIR CARGO-ARGS... : cargo (Debian trixie's, from toolchain-extra.pkgs) in the
# toolchain chroot, in /work/DIR, with its registry under the cache. The host needs no Rust.
chroot_cargo() {
	[ -e "$EXTRA_STAMP" ] || "$TETHER_ROOT/qemu/toolchain.sh"
	local dir=$1
	shift
	cargo_env
	in_chroot env "${CARGO_ENV[@]}" /bin/sh -c 'cd "/work/$0" && exec cargo "$@"' "$dir" "$@"
}
# cargo_env : CARGO_ENV, the environment of cargo in the chroot. crates.io is reached
# through the host's network set-up: its CA bundle (a machine behind a TLS-inspecting
# proxy trusts that proxy's CA there, not in the chroot's ca-certificates), copied into the
# cache, and its proxy variables.
cargo_env() {
	local v
	CARGO_ENV=(CARGO_HOME=/cache/cargo-home CARGO_TERM_COLOR=never)
	if [ -s /etc/ssl/certs/ca-certificates.crt ]; then
		cmp -s /etc/ssl/certs/ca-certificates.crt "$CACHE/host-ca-certificates.crt" ||
			cp /etc/ssl/certs/ca-certificates.crt "$CACHE/host-ca-certificates.crt"
		CARGO_ENV+=(CARGO_HTTP_CAINFO=/cache/host-ca-certificates.crt)
	fi
	for v in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
		[ -z "${!v:-}" ] || CARGO_ENV+=("$v=${!v}")
	done
}

# --- progress on long steps ---------------------------------------------------------------
# Durations (and object counts) of the last run of each step: $CACHE/progress/LABEL holds
# "COUNT SECONDS". A cold cache uses these figures (the debug kernel measured on 2 cores,
# 2026-12: 2599 Kbuild steps in 19m28s; the release one estimated; the relay: 69 crates
# compiled in 5m41s while VM tests ran).
declare -A PROGRESS_DEFAULT=(
	[kernel-debug]="2600 1170" [kernel-release]="2500 1100" [relay]="69 340"
)
# hms SECONDS : 1h02m03s / 4m05s / 6s
hms() {
	local s=$1
	if [ "$s" -ge 3600 ]; then printf '%dh%02dm%02ds' $((s / 3600)) $((s % 3600 / 60)) $((s % 60))
	elif [ "$s" -ge 60 ]; then printf '%dm%02ds' $((s / 60)) $((s % 60))
	else printf '%ds' "$s"; fi
}
# _progress_stage LOG : what a debootstrap, apt-get or cargo log says it is doing now.
_progress_stage() {
	grep -E '^I: (Retrieving|Extracting|Installing|Unpacking|Configuring|Base system)|^(Hit|Get|Ign):[0-9]|^(Unpacking|Setting up|Processing triggers) |^ *(Updating|Downloading|Downloaded|Compiling|Finished|Installing|Installed) ' \
		"$1" 2>/dev/null | tail -n 1 | sed -E \
		-e 's/^I: Retrieving (InRelease|Packages|Release).*/fetching the package index/' \
		-e 's/^I: Retrieving .*/downloading packages/' -e 's/^I: Extracting .*/extracting packages/' \
		-e 's/^I: (Installing|Unpacking) .*/unpacking packages/' -e 's/^I: Configuring .*/configuring packages/' \
		-e 's/^I: Base system.*/base system installed/' \
		-e 's/^(Hit|Get|Ign):[0-9]+ .*(InRelease|Packages|Translation).*/updating the package index/' \
		-e 's/^Get:.*/downloading packages/' -e 's/^Unpacking .*/unpacking packages/' \
		-e 's/^Setting up .*/configuring packages/' -e 's/^Processing triggers .*/processing triggers/' \
		-e 's/^ *Updating .*/updating the crates.io index/' -e 's/^ *Download(ing|ed) .*/downloading crates/' \
		-e 's/^ *Compiling .*/compiling crates/' -e 's/^ *(Finished|Installing|Installed) .*/linking/'
}
# _progress_watch LABEL LOG MODE T0 : the watcher with_progress runs in the background.
# MODE stages: a line whenever the stage changes, and every 60 s. MODE count:REGEX: the
# number of LOG lines matching REGEX against the last run's, as a percentage, elapsed time
# and time left (a line per 5 % or every 60 s).
_progress_watch() {
	local label=$1 logf=$2 mode=$3 t0=$4 last_n last_s stage prev= printed=$4 now n pct=-5 p left
	set +e +o pipefail
	read -r last_n last_s < <(cat "$CACHE/progress/$label" 2>/dev/null || echo "${PROGRESS_DEFAULT[$label]:-0 0}")
	[[ ${last_n:-} =~ ^[0-9]+$ ]] || last_n=0
	[[ ${last_s:-} =~ ^[0-9]+$ ]] || last_s=0
	[ "$last_s" -gt 0 ] || last_s=
	while sleep 2; do
		now=$(date +%s)
		[ -e "$logf" ] && [ "$(stat -c %Y "$logf")" -ge "$t0" ] || continue
		case $mode in
		count:*)
			n=$(grep -cE "${mode#count:}" "$logf" 2>/dev/null)
			if [ "$last_n" -le 0 ]; then
				[ $((now - printed)) -ge 60 ] || continue
				printed=$now
				log "$label: $n steps done, $(hms $((now - t0))) elapsed (no earlier run to compare with)"
				continue
			fi
			p=$((n * 100 / last_n))
			[ $p -le 99 ] || p=99
			if [ $((p / 5)) -gt $((pct / 5)) ] || [ $((now - printed)) -ge 60 ]; then
				pct=$p printed=$now
				# The rate so far once 5 % are done; before that the last run's duration.
				if [ "$n" -gt $((last_n / 20)) ]; then left=$(((now - t0) * (last_n - n) / n))
				else left=$((last_s - (now - t0))); fi
				[ $left -ge 0 ] || left=0
				log "$label: $p% ($n of about $last_n steps), $(hms $((now - t0))) elapsed, about $(hms "$left") left"
			fi
			;;
		*)
			stage=$(_progress_stage "$logf")
			[ -n "$stage" ] || continue
			if [ "$stage" != "$prev" ] || [ $((now - printed)) -ge 60 ]; then
				log "$label: $stage ($(hms $((now - t0))) elapsed${last_s:+, last run took $(hms "$last_s")})"
				prev=$stage printed=$now
			fi
			;;
		esac
	done
}
# with_progress LABEL LOG MODE CMD... : run CMD with its output in LOG while printing progress
# on stderr (see _progress_watch); records the duration (and count) for the next run.
with_progress() {
	local label=$1 logf=$2 mode=$3 t0 rc=0
	shift 3
	t0=$(date +%s)
	progress_start "$label" "$logf" "$mode" "$t0"
	"$@" >"$logf" 2>&1 || rc=$?
	progress_end "$label" "$logf" "$mode" "$t0" $rc
	return $rc
}
# progress_start LABEL LOG MODE T0 / progress_end LABEL LOG MODE T0 RC : the same around a
# command that writes LOG itself (qemu/kernel.sh).
progress_start() {
	_progress_watch "$@" &
	_PROGRESS_PID=$!
}
progress_end() {
	local label=$1 logf=$2 mode=$3 t0=$4 rc=$5 n=0 d
	kill "$_PROGRESS_PID" 2>/dev/null || true
	wait "$_PROGRESS_PID" 2>/dev/null || true
	d=$(($(date +%s) - t0))
	[ "$rc" = 0 ] || { log "$label: failed after $(hms $d)"; return 0; }
	case $mode in count:*) n=$(grep -cE "${mode#count:}" "$logf" 2>/dev/null || true) ;; esac
	mkdir -p "$CACHE/progress"
	echo "${n:-0} $d" >"$CACHE/progress/$label"
	log "$label: done in $(hms $d)"
}

# Kernel tree and build (inside the chroot: /cache/...). Key: config fragments + kernel.sh.
KVARIANT="${KVARIANT:-debug}"
KERNEL_KEY="$(key "$TETHER_ROOT/qemu/kernel.sh" "$TETHER_ROOT/qemu/kernel.config" \
	"$TETHER_ROOT/qemu/kernel-$KVARIANT.config")-$CHROOT_KEY"
KBUILD_DIR="kernel-$KVARIANT-$KERNEL_KEY"          # under $CACHE
KDIR_CHROOT="/cache/$KBUILD_DIR/build"               # as seen in the chroot
KMAKE_VARS=(LLVM=-19)

# build_kernel : qemu/kernel.sh (whose bytes are part of KERNEL_KEY: it stays as it is)
# with progress on stderr: the share of the last build's Kbuild steps done so far.
KERNEL_STEPS='^  [A-Z][A-Z0-9_]* '
build_kernel() {
	[ -e "$CACHE/$KBUILD_DIR/.done" ] && return 0
	"$TETHER_ROOT/qemu/toolchain.sh"
	local t0 rc=0
	t0=$(date +%s)
	progress_start "kernel-$KVARIANT" "$CACHE/$KBUILD_DIR/build.log" "count:$KERNEL_STEPS" "$t0"
	"$TETHER_ROOT/qemu/kernel.sh" || rc=$?
	progress_end "kernel-$KVARIANT" "$CACHE/$KBUILD_DIR/build.log" "count:$KERNEL_STEPS" "$t0" $rc
	return $rc
}

# Guest root image: key is image.sh.
IMAGE_KEY="$(key "$TETHER_ROOT/qemu/image.sh")"
IMAGE="$CACHE/rootfs-$IMAGE_KEY.img"
