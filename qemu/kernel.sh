#!/bin/bash
# Build the guest kernel (tinyconfig + kernel.config + kernel-$KVARIANT.config) inside the
# toolchain chroot. Output: $TETHER_CACHE/kernel-<variant>-<key>/{build,bzImage}; the build
# tree doubles as KDIR for the out-of-tree modules.
. "$(dirname "$0")/lib.sh"

OUT="$CACHE/$KBUILD_DIR"
[ -e "$OUT/.done" ] && exit 0
"$TETHER_ROOT/qemu/toolchain.sh"
mkdir -p "$OUT"
log "building kernel ($KVARIANT) in $OUT (5-15 min under -j$JOBS)"
in_chroot /bin/bash -euo pipefail -c '
	out=$1 variant=$2 jobs=$3
	src=/cache/linux-src-7.3
	if [ ! -e $src/.done ]; then
		rm -rf $src && mkdir -p $src
		tar -C $src --strip-components=1 -xf /usr/src/linux-source-7.3.tar.xz
		touch $src/.done
	fi
	mk() { make -C $src O=$out/build LLVM=-19 "$@"; }
	mkdir -p $out/build
	mk tinyconfig >/dev/null
	$src/scripts/kconfig/merge_config.sh -m -O $out/build $out/build/.config \
		/work/qemu/kernel.config /work/qemu/kernel-$variant.config >/dev/null
	mk olddefconfig >/dev/null
	# Every option the fragments ask for must have survived olddefconfig.
	bad=0
	for f in /work/qemu/kernel.config /work/qemu/kernel-$variant.config; do
		while read -r line; do
			case "$line" in
			CONFIG_*=*) grep -qx "$line" $out/build/.config || { echo "config: $line dropped"; bad=1; } ;;
			"# CONFIG_"*" is not set") sym=${line#\# }; sym=${sym%% *}
				! grep -q "^$sym=" $out/build/.config || { echo "config: $sym set"; bad=1; } ;;
			esac
		done < $f
	done
	[ $bad = 0 ]
	mk -j$jobs bzImage modules
	cp $out/build/arch/x86/boot/bzImage $out/bzImage
' _ "/cache/$KBUILD_DIR" "$KVARIANT" "$JOBS" >"$OUT/build.log" 2>&1 || die "kernel build failed, see $OUT/build.log"
touch "$OUT/.done"
log "kernel ready: $OUT/bzImage"
