#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Build the lab guests' initramfs: busybox-static, the virtio-net modules of
# the Debian kernel that boots the guests, the /init script and tfudp.
#
#   tools/lab/mkinitramfs.sh OUT.cpio.gz KERNEL_VERSION
set -euo pipefail

out=$1 kver=$2
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mkdir -p "$work"/{bin,dev,proc,sys,run,tmp,lib/modules}
cp /bin/busybox "$work/bin/busybox"
for a in $(/bin/busybox --list); do
	[ "$a" = busybox ] || ln -s busybox "$work/bin/$a"
done
# The kernel opens /dev/console before /init runs (devtmpfs comes later).
mknod -m 600 "$work/dev/console" c 5 1

# Which of these are modules depends on the kernel config: ask modprobe for
# the load order of the ones that are (built-in ones print "builtin ...").
: >"$work/lib/modules/order"
modprobe -a -S "$kver" --show-depends virtio_pci virtio_net |
	awk '$1 == "insmod" { print $2 }' | awk '!seen[$0]++' |
	while read -r ko; do
		name=$(basename "$ko")
		case $name in
		*.ko.xz) xz -dc "$ko" >"$work/lib/modules/${name%.xz}"; name=${name%.xz} ;;
		*.ko.zst) zstd -qdc "$ko" >"$work/lib/modules/${name%.zst}"; name=${name%.zst} ;;
		*) cp "$ko" "$work/lib/modules/$name" ;;
		esac
		echo "$name" >>"$work/lib/modules/order"
	done

install -m 755 "$here/guest/init" "$work/init"
install -m 755 "$here/guest/udhcpc.sh" "$work/udhcpc.sh"
# tfudp: exact-size UDP datagrams from a fixed port (see guest/tfudp.c);
# tfsyn: counted TCP connection attempts (guest/tfsyn.c).
if command -v gcc >/dev/null; then
	gcc -static -Os -Wall -o "$work/bin/tfudp" "$here/guest/tfudp.c"
	gcc -static -Os -Wall -o "$work/bin/tfsyn" "$here/guest/tfsyn.c"
else
	echo "mkinitramfs: no gcc, the guests' udp and syn scripts will report 0/0" >&2
fi

(cd "$work" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) | gzip -1 >"$out.tmp"
mv "$out.tmp" "$out"
