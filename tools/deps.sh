#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Install every Debian package that tapflow's build, tests and lab need.
# Idempotent: does nothing (and needs no network) when all are present.
set -euo pipefail

PKGS=(
	# build
	make gcc libc6-dev clang llvm pkg-config bpftool
	libbpf-dev libelf-dev zlib1g-dev libvirt-dev libxml2-dev libncurses-dev
	# tests
	libcmocka-dev iproute2 iperf3 tmux jq tshark conntrack iptables procps
	bridge-utils python3 socat util-linux valgrind gdb curl
	# fuzz suite: libFuzzer, the runtime of clang -fsanitize=fuzzer (compiler-rt)
	libclang-rt-dev
	# bench: tcpdump, the reference of capture.sh; softflowd, the reference
	# of ipfix.sh (its collector, nfdump's nfcapd, is below with IPFIX)
	tcpdump softflowd
	# agent: its HTTP server and sd_notify; the packaging test checks the unit
	# (systemd-analyze), the man page (groff, man) and the Prometheus rules
	# and Grafana queries (promtool, vmalert) with the tools that read them
	libmicrohttpd-dev libsystemd-dev systemd groff-base man-db
	prometheus victoria-metrics
	# and starts the unit, sandbox and all, under a systemd in a container
	systemd-container
	# IPFIX export: libfixbuf; its tests read the export with ipfixDump,
	# nfdump's nfcapd and pmacct's nfacctd
	libfixbuf-dev libfixbuf-tools nfdump pmacct
	# lab: real libvirtd + qemu (TCG), Debian's kernel for direct boot, busybox initramfs
	libvirt-daemon libvirt-daemon-driver-qemu libvirt-daemon-config-network
	libvirt-clients qemu-system-x86 qemu-utils dnsmasq-base
	linux-image-amd64 busybox-static cpio kmod
)

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps.sh: missing packages (${missing[*]}); run as root" >&2
	exit 1
fi
echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# tshark asks whether non-root users may capture; the default (no) is fine.
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
apt-get update -qq
# policy-rc.d keeps the package scripts from starting libvirtd on the host:
# the lab runs its own libvirtd inside a network namespace.
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
