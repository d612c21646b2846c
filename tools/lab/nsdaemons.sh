#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Start the lab's virtlogd and libvirtd (with a second argument "libvirtd":
# libvirtd alone, as a restart does). lab.sh runs this as
#   ip netns exec tflab unshare -m --propagation private nsdaemons.sh STATE
# so both daemons (and the qemu, dnsmasq they spawn) live in the lab's network
# namespace and in a private mount namespace of their own, where libvirt's
# fixed directories are bind mounts of directories under STATE. libvirt has
# no setting for most of them (/run/libvirt for virtlogd's socket and the
# drivers' state, /var/lib/libvirt, /etc/libvirt for qemu.conf and the
# persistent XML); this way the lab shares nothing with a libvirtd of the
# host, and everything it wrote is readable from the host under STATE.
set -euo pipefail
S=$1
ONLY=${2:-}

# Debian's libvirt resolves its compiled-in qemu user "libvirt-qemu" even
# when qemu.conf says root; that user comes with libvirt-daemon-system, which
# the lab does not install. Give this mount namespace alone a passwd/group
# that have it, rather than adding a user to the host.
if ! getent passwd libvirt-qemu >/dev/null; then
	{ cat /etc/passwd
	  echo "libvirt-qemu:x:64055:64055:tapflow lab:/var/lib/libvirt:/usr/sbin/nologin"
	} >"$S/passwd"
	mount --bind "$S/passwd" /etc/passwd
fi
if ! getent group libvirt-qemu >/dev/null; then
	{ cat /etc/group; echo "libvirt-qemu:x:64055:"; } >"$S/group"
	mount --bind "$S/group" /etc/group
fi

mount --bind "$S/etc" /etc/libvirt
mount --bind "$S/run" /run/libvirt
mount --bind "$S/lib" /var/lib/libvirt
mount --bind "$S/log" /var/log/libvirt
mount --bind "$S/cache" /var/cache/libvirt

# -d forks into the background once the daemon is set up; -p records the pid
# that lab.sh down kills (never anything by name).
[ "$ONLY" = libvirtd ] || virtlogd -d -p "$S/pid/virtlogd.pid" -f "$S/etc/virtlogd.conf"
libvirtd -d -p "$S/pid/libvirtd.pid" -f "$S/etc/libvirtd.conf"
