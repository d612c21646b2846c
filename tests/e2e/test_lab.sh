#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The lab itself (tools/lab/lab.sh), before anything trusts it: every guest
# runs, each guest NIC is a tap on the expected bridge in the lab namespace,
# the guests' scripted traffic gives exact packet and byte counts in
# `virsh domifstat` (and nothing else moves them), a second `up` changes
# nothing, and `down` leaves nothing behind.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"
. "$HERE/lab-env.sh"

tf_lab_up "lab up" || tf_finish

# ------------------------------------------------------------ up is idempotent
libvirtd_pid=$(cat "$TF_LAB_STATE/pid/libvirtd.pid")
qemu_pids=$(cat "$TF_LAB_STATE"/run/qemu/*.pid | sort | tr '\n' ' ')
t0=$SECONDS
"$TF_LAB_SH" up >/dev/null 2>&1
tf_eq "second up exits 0" 0 $?
tf_check "second up is quick ($((SECONDS - t0)) s)" test $((SECONDS - t0)) -lt 15
tf_eq "second up keeps libvirtd" "$libvirtd_pid" "$(cat "$TF_LAB_STATE/pid/libvirtd.pid")"
tf_eq "second up keeps the guests" "$qemu_pids" \
	"$(cat "$TF_LAB_STATE"/run/qemu/*.pid | sort | tr '\n' ' ')"

# ------------------------------------------------- guests, taps and bridges
for vm in $TF_LAB_VMS; do
	u=${vm^^}
	brv=TF_LAB_${u}_BRIDGE macv=TF_LAB_${u}_MAC ipv=TF_LAB_${u}_IP
	tf_eq "$vm is running" running "$(tf_lab_virsh domstate "$vm" 2>&1)"
	tap=$(tf_lab_tap "$vm")
	link=$(ip -n "$TF_LAB_NS" -o link show dev "$tap" 2>/dev/null)
	tf_check "$vm: tap '$tap' is in $TF_LAB_NS" test -n "$link"
	tf_eq "$vm: tap $tap is on bridge ${!brv}" "${!brv}" \
		"$(sed -n 's/.* master \([^ ]*\) .*/\1/p' <<<"$link")"
	# libvirt gives the tap the guest's MAC with fe: as the first byte.
	tf_eq "$vm: tap MAC is fe:${!macv#*:}" "fe:${!macv#*:}" \
		"$(sed -n 's/.* link\/ether \([^ ]*\) .*/\1/p' <<<"$link")"
	tf_check "$vm: booted and got ${!ipv}" \
		grep -q "^ready vm=$vm ip=${!ipv} " "$TF_LAB_STATE/vm/$vm.ready"
done

# -------------------------------------------------------- exact packet counts
# check_run VM SCRIPT "DONE_PATTERN" RX_P RX_B TX_P TX_B: one scripted run
# moves the guest's domifstat counters by exactly these amounts.
check_run() {
	local vm=$1 script=$2 pat=$3 want=$4 before after done_line
	before=$(tf_lab_ifstat "$vm")
	done_line=$(tf_lab_run "$vm" "$script" 120)
	after=$(tf_lab_ifstat "$vm")
	tf_check "$vm $script: run says '$pat' ($done_line)" grep -q -- "$pat" <<<"$done_line"
	tf_eq "$vm $script: domifstat delta rx_packets rx_bytes tx_packets tx_bytes" \
		"$want" "$(tf_lab_delta "$before" "$after")"
}

# ping -c 10 -s 56: 10 echo requests out, 10 replies in, 98-byte frames
# (14 Ethernet + 20 IP + 8 ICMP + 56); no ARP (the lab pins neighbours).
check_run alpha ping "ping=10/10" "10 980 10 980"
# 5 UDP datagrams of 100 bytes to the echo server: 142-byte frames.
check_run alpha udp "udp=5/5" "5 710 5 710"
# The HTTP download: TCP segment counts depend on GSO, the payload does not.
before=$(tf_lab_ifstat alpha)
done_line=$(tf_lab_run alpha http 120)
after=$(tf_lab_ifstat alpha)
tf_check "alpha http: 1 MiB downloaded ($done_line)" grep -q "http=1048576" <<<"$done_line"
read -r _ rxb txp _ <<<"$(tf_lab_delta "$before" "$after")"
tf_check "alpha http: at least 1 MiB delivered to the guest ($rxb bytes)" test "$rxb" -ge 1048576
tf_check "alpha http: the guest sent its request and ACKs ($txp packets)" test "$txp" -gt 2

# Every guest pings at once: each still sees exactly its own 10 + 10 (no
# flooding, no broadcast from another guest reaches it).
declare -A B
for vm in $TF_LAB_VMS; do B[$vm]=$(tf_lab_ifstat "$vm"); done
"$TF_LAB_SH" release -s ping $TF_LAB_VMS
done_lines=$("$TF_LAB_SH" wait-done $TF_LAB_VMS 120)
tf_eq "all guests' ping runs finish" 0 $?
for vm in $TF_LAB_VMS; do
	tf_check "$vm ping (concurrent): 10/10" grep -q "^done vm=$vm .*ping=10/10" <<<"$done_lines"
	tf_eq "$vm ping (concurrent): domifstat delta" "10 980 10 980" \
		"$(tf_lab_delta "${B[$vm]}" "$(tf_lab_ifstat "$vm")")"
done

# Quiet guests: with no run released, no counter moves.
for vm in $TF_LAB_VMS; do B[$vm]=$(tf_lab_ifstat "$vm"); done
sleep 15
for vm in $TF_LAB_VMS; do
	tf_eq "$vm: quiet for 15 s" "0 0 0 0" "$(tf_lab_delta "${B[$vm]}" "$(tf_lab_ifstat "$vm")")"
done

# ------------------------------------------------------- down leaves nothing
if [ "$TF_LAB_STARTED" = 1 ] && [ "${TF_LAB_KEEP:-0}" != 1 ]; then
	pids=$(tf_lab_pids)
	t0=$SECONDS
	"$TF_LAB_SH" down >/dev/null 2>&1
	tf_eq "down exits 0 ($((SECONDS - t0)) s)" 0 $?
	for ns in "$TF_LAB_NS" "$TF_LAN_NS" "$TF_INET_NS"; do
		tf_check "down: no netns $ns" test -z "$(ip netns list | awk -v n="$ns" '$1 == n')"
	done
	alive=""
	for pid in $pids; do
		[ -d "/proc/$pid" ] && [ "$(awk '{ print $3 }' "/proc/$pid/stat")" != Z ] &&
			alive+=" $pid($(tr '\0' ' ' <"/proc/$pid/cmdline" | cut -c1-40))"
	done
	tf_eq "down: none of the lab's $(wc -w <<<"$pids") processes is left" "" "$alive"
	tf_check "down: no state dir $TF_LAB_STATE" test ! -e "$TF_LAB_STATE"
	tf_check "down: libvirtd gone (virsh fails)" \
		bash -c "! virsh -c '$TF_LAB_URI' list >/dev/null 2>&1"
	"$TF_LAB_SH" down >/dev/null 2>&1
	tf_eq "down again (nothing there) exits 0" 0 $?
else
	tf_skip "down leaves nothing" \
		"the lab was up before this test (shared): whoever started it takes it down"
fi
tf_finish
