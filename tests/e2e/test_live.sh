#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# One `flows --json` run (and a `stats --json` run beside it, for the
# per-VM records: gone, restarts) follows the lab while it changes:
#   - delta is destroyed (its totals stay, gone) and started again (the same
#     VM: restarts 1, totals of both lifetimes);
#   - a NIC is hot-plugged into gamma and unplugged again;
#   - libvirtd is restarted (the inventory is stale meanwhile, counting goes
#     on; then it is read again);
#   - a network of the test's own is destroyed and started again with a
#     blank VM on it (its bridge is traced again);
#   - a VM of the test's own (defined, booting nothing) is started, destroyed
#     and started again while `capture --vm` of it, started before it ran,
#     writes an interface block for each of its taps; then it starts and
#     stops 30 more times: the run's fds, BPF links and RSS stay where they
#     were;
#   - alpha's scripted traffic runs through all of it.
# It restarts libvirtd and a guest of the lab: tests/run.sh runs it after
# the other e2e tests, which need the lab as it came up.
# Each VM's totals equal the sum of `virsh domifstat` deltas over its
# lifetimes inside the run (within 0.5 % or 5 packets), in stats and in the
# sum of its final flow records; exit code 0; no hook left.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"
. "$HERE/lab-env.sh"

tf_lab_begin e2e-live
ERR=$TMP/flows.err OUT=$TMP/stats.json FLOWS=$TMP/flows.json
HOTMAC=52:54:00:7f:00:3f BLANK=tfe2e-live NET=tfe2e-live NETBR=tflivebr0

# notes PATTERN [N]: the run's stderr has N (default 1) lines matching PATTERN.
notes() { [ "$(grep -cE "$1" "$ERR")" -ge "${2:-1}" ]; }
# wait_note NAME PATTERN [N]: check that within 20 s.
wait_note() {
	local i
	for ((i = 0; i < 200; i++)); do
		notes "$2" "${3:-1}" && { tf_ok "$1"; return 0; }
		sleep 0.1
	done
	tf_fail "$1" "no line matching '$2' on stderr:"
	sed 's/^/# /' "$ERR"
	return 1
}
# final VM [MAC]: the final stats record of VM's NIC (MAC: its first), "rx_packets rx_bytes tx_packets tx_bytes restarts gone".
final() {
	jq -r --arg vm "$1" --arg mac "${2:-}" 'select(.type == "stats" and .final and .vm == $vm and
		($mac == "" or .mac == $mac)) | "\(.rx_packets) \(.rx_bytes) \(.tx_packets) \(.tx_bytes) \(.restarts) \(.gone)"' "$OUT" | head -n1
}
# flowsum VM TAP: the sum of the final flow records of VM's NIC on TAP, "rx_packets rx_bytes tx_packets tx_bytes".
flowsum() {
	jq -rs --arg vm "$1" --arg tap "$2" '[.[] | select(.type == "flow" and .final and .vm == $vm and
		.ifname == $tap)] |
		"\(map(.rx_packets) | add // 0) \(map(.rx_bytes) | add // 0) \(map(.tx_packets) | add // 0) \(map(.tx_bytes) | add // 0)"' "$FLOWS"
}
# ifstat_of VM DEV: domifstat of one of VM's taps, "rx_packets rx_bytes tx_packets tx_bytes".
ifstat_of() {
	tf_lab_virsh domifstat "$1" "$2" |
		awk '{ v[$2] = $3 } END { print v["rx_packets"], v["rx_bytes"], v["tx_packets"], v["tx_bytes"] }'
}
# add A B: field-wise sum of two 4-field lines.
add() {
	local -a a b
	read -ra a <<<"$1"; read -ra b <<<"$2"
	echo $((a[0] + b[0])) $((a[1] + b[1])) $((a[2] + b[2])) $((a[3] + b[3]))
}
cat >"$TMP/net.xml" <<EOF
<network>
  <name>$NET</name>
  <bridge name='$NETBR' stp='off' delay='0'/>
  <ip address='192.168.177.1' netmask='255.255.255.0'/>
</network>
EOF
tf_lab_blank_xml $BLANK $NET 52:54:00:7f:00:f2 >"$TMP/blank.xml"
tf_on_exit "virsh -q -c '$TF_LAB_URI' destroy $BLANK"
tf_on_exit "virsh -q -c '$TF_LAB_URI' net-destroy $NET"
tf_on_exit "virsh -q -c '$TF_LAB_URI' start delta"
tf_on_exit "virsh -q -c '$TF_LAB_URI' detach-interface gamma network --mac $HOTMAC --live"
tf_lab_virsh net-create "$TMP/net.xml" >/dev/null || tf_fail "setup" "cannot create network $NET"

declare -A B
for vm in $TF_LAB_VMS; do B[$vm]=$(tf_lab_ifstat "$vm"); done
"${TF[@]}" --json -i 1 flows >"$FLOWS" 2>"$ERR" &
RUN=$!
tf_on_exit "kill -9 $RUN"
# The plain build: its RSS is measured below (AddressSanitizer's quarantine holds what is freed).
PLAIN=${TAPFLOW_PLAIN:-$(cd "$HERE/../.." && pwd)/.output/tapflow}
"$PLAIN" "${TF[@]:1}" --json -i 1 stats >"$OUT" 2>"$TMP/stats.err" &
STATS=$!
tf_on_exit "kill -9 $STATS"
tf_wait_record "$FLOWS" flow && tf_wait_record "$OUT" stats ||
	tf_fail "tapflow started" "$(cat "$ERR" "$TMP/stats.err")"
for vm in $TF_LAB_VMS; do B[$vm]=$(tf_lab_ifstat "$vm"); done	# after the attach
"$TF_LAB_SH" release -s all alpha && "$TF_LAB_SH" release -s ping beta gamma ||
	tf_fail "traffic" "not released"

# --- delta destroyed, then started again ----------------------------------------------
tf_lab_run delta ping >/dev/null || tf_diag "delta's pings did not finish"
# The guest says "ready" on its control port at each boot: the tests after this one need it up.
readies() { grep -ac '^ready ' "$TF_LAB_STATE/vm/delta.ctl.log"; }
READY0=$(readies)
DTAP=$(tf_lab_tap delta)
D1=$(tf_lab_delta "${B[delta]}" "$(tf_lab_ifstat delta)")
tf_diag "delta's first lifetime: $D1 (domifstat)"
tf_lab_virsh destroy delta >/dev/null
wait_note "delta destroyed: noted gone" "^tapflow: VM delta: $DTAP is gone"
tf_lab_virsh start delta >/dev/null || tf_fail "delta started again" "virsh start failed"
wait_note "delta started again: traced, back in the run" "^tapflow: VM delta: tracing .*back in the run"

# --- a NIC hot-plugged into gamma, then unplugged -----------------------------------------
# gamma alone is on a bridge of the host (no uplink to trace) until its NAT NIC comes.
"${TF[@]}" --vm gamma --json -i 1 stats >"$TMP/gamma.json" 2>"$TMP/gamma.err" &
GAMMA=$!
tf_on_exit "kill -9 $GAMMA"
tf_wait_record "$TMP/gamma.json" stats || tf_fail "stats --vm gamma started" "$(cat "$TMP/gamma.err")"
tf_lab_virsh attach-interface gamma network "$TF_LAB_ALPHA_NET" --model virtio --mac $HOTMAC \
	--live >/dev/null || tf_fail "hot-plug" "virsh attach-interface failed"
wait_note "hot-plugged NIC traced" "^tapflow: VM gamma: tracing .* \(NIC $HOTMAC\)"
for ((i = 0; i < 100; i++)); do grep -q "^tapflow: tracing uplink0 (uplink)" "$TMP/gamma.err" && break; sleep 0.1; done
tf_check "stats --vm gamma: its new NAT NIC brings the uplink in" \
	grep -q "^tapflow: tracing uplink0 (uplink)" "$TMP/gamma.err"
HTAP=$(tf_lab_virsh domiflist gamma | awk -v m=$HOTMAC '$5 == m { print $1 }')
sleep 1.5
H1=$(ifstat_of gamma "$HTAP")
tf_lab_virsh detach-interface gamma network --mac $HOTMAC --live >/dev/null ||
	tf_fail "unplug" "virsh detach-interface failed"
wait_note "unplugged NIC gone" "^tapflow: VM gamma: $HTAP is gone"

# --- libvirtd restarted ---------------------------------------------------------------------
"$TF_LAB_SH" restart-libvirtd || tf_fail "libvirtd restarted" "lab.sh restart-libvirtd failed"
tf_check "libvirtd restarted: tapflow still runs" kill -0 $RUN
# Told only if a read of the inventory found libvirtd down; if it was: back again.
if notes "inventory is stale"; then
	wait_note "libvirtd back: inventory read again" "libvirt is reachable again"
fi

# --- a network destroyed and started again ---------------------------------------------------
tf_lab_virsh create "$TMP/blank.xml" >/dev/null || tf_fail "blank VM" "virsh create failed"
wait_note "blank VM on $NET: traced with its bridge" "^tapflow: tracing $NETBR \(bridge\)"
tf_lab_virsh destroy $BLANK >/dev/null
tf_lab_virsh net-destroy $NET >/dev/null
wait_note "$NET destroyed: its bridge gone" "^tapflow: interface $NETBR is gone"
tf_lab_virsh net-create "$TMP/net.xml" >/dev/null && tf_lab_virsh create "$TMP/blank.xml" >/dev/null ||
	tf_fail "$NET again" "net-create or create failed"
wait_note "$NET started again: its bridge traced again" "^tapflow: tracing $NETBR \(bridge\), back in the run"
tf_lab_virsh destroy $BLANK >/dev/null
tf_lab_virsh net-destroy $NET >/dev/null

# --- a VM of the test's own: started, destroyed, started again; then 30 more times ---------
# resources PID: open fds, BPF link fds, RSS (KiB).
resources() {
	echo "$(ls /proc/$1/fd | wc -l) $(grep -l '^link_id:' /proc/$1/fdinfo/* 2>/dev/null | wc -l)" \
		"$(awk '/^VmRSS/ { print $2 }' /proc/$1/status)"
}
# frames TAP N: N 100-byte broadcast frames delivered to the VM on TAP (written to the tap).
frames() {
	ip netns exec "$TF_LAB_NS" python3 -c '
import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[1], 0))
for _ in range(int(sys.argv[2])):
    s.send(b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01" + b"\x88\xb5" + bytes(86))
' "$1" "$2"
}
CYC=tfe2e-cycle CYCUUID=8d1f7a52-6c2e-4a47-9d7e-5f0e7c2b1a90 CYCMAC=52:54:00:7f:00:f2
tf_on_exit "virsh -q -c '$TF_LAB_URI' undefine $CYC"
tf_on_exit "virsh -q -c '$TF_LAB_URI' destroy $CYC"
tf_lab_blank_xml $CYC "$TF_LAB_ALPHA_NET" $CYCMAC $CYCUUID >"$TMP/cycle.xml"
wait_for_lines() {
	local i
	for ((i = 0; i < 200; i++)); do notes "$1" "$2" && return 0; sleep 0.05; done
	return 1
}
# cycle N: the test VM's Nth start is traced, its destroy noted.
cycle() {
	tf_lab_virsh start $CYC >/dev/null &&
	wait_for_lines "^tapflow: VM $CYC: tracing" "$1" &&
	tf_lab_virsh destroy $CYC >/dev/null &&
	wait_for_lines "^tapflow: VM $CYC: .* is gone" "$1"
}
# cyc_record: the test VM's last stats record, "rx_packets rx_bytes tx_packets tx_bytes restarts gone".
cyc_record() {
	jq -r --arg u $CYCUUID 'select(.type == "stats" and .uuid == $u) |
		"\(.rx_packets) \(.rx_bytes) \(.tx_packets) \(.tx_bytes) \(.restarts) \(.gone)"' "$OUT" | tail -n1
}
tf_lab_virsh define "$TMP/cycle.xml" >/dev/null || tf_fail "$CYC defined" "virsh define failed"
# capture --vm of a VM that is not running yet: it waits, and writes an
# interface block for each of the VM's taps as it starts.
"${TF[@]}" capture --vm $CYC -w "$TMP/cyc.pcapng" >"$TMP/cap.out" 2>"$TMP/cap.err" &
CAP=$!
tf_on_exit "kill -9 $CAP"
for ((i = 0; i < 100; i++)); do grep -q "VM $CYC is not running" "$TMP/cap.err" && break; sleep 0.1; done
tf_eq "capture --vm $CYC (not running): waits for it" \
	"tapflow: VM $CYC is not running: traced when it starts" "$(cat "$TMP/cap.err")"
for n in 1 2; do
	T0=$(date +%s%N)
	tf_lab_virsh start $CYC >/dev/null || tf_fail "$CYC started" "virsh start failed"
	wait_note "$CYC start $n: traced" "^tapflow: VM $CYC: tracing" $n
	tf_diag "$CYC start $n: traced $(( ($(date +%s%N) - T0) / 1000000 )) ms after virsh start returned"
	CTAP=$(tf_lab_tap $CYC)
	frames "$CTAP" $((5 + n)) || tf_fail "frames to $CYC" "cannot write to $CTAP"
	sleep 0.5
	tf_lab_virsh destroy $CYC >/dev/null
	wait_note "$CYC stop $n: gone" "^tapflow: VM $CYC: vnet[0-9]+ is gone" $n
done
sleep 1.5
read -r a b c d R G <<<"$(cyc_record)"
# (qemu reads nothing from the tap of a guest without a driver: domifstat stays 0 there)
tf_eq "$CYC: one record, restarts 1, gone, the frames of both lifetimes" "$((6 + 7)) 1 true" "$a $R $G"
kill -INT $CAP
wait $CAP
tf_eq "capture: exit code 0" 0 $?
tf_eq "capture: one interface block per start of $CYC, named by its tap" \
	"2 VM $CYC ($CYCMAC)" \
	"$(python3 "$(dirname "$TF_LAB_TFNET")/tfcap.py" pcapng "$TMP/cyc.pcapng" |
		jq -r '[.ifaces[] | select(.name | startswith("vnet"))] | "\(length) \(.[0].desc)"')"
tf_eq "capture: the frames of both lifetimes" $((6 + 7)) \
	"$(python3 "$(dirname "$TF_LAB_TFNET")/tfcap.py" pcapng "$TMP/cyc.pcapng" | jq '.epbs | length')"

CYCLES=${TF_LIVE_CYCLES:-30}
for n in 3 4 5; do cycle $n || break; done
R0=$(resources $STATS)
for ((n = 6; n < CYCLES + 6; n++)); do cycle $n || { tf_diag "cycle $n failed"; break; }; done
sleep 1.5
R1=$(resources $STATS)
read -r fd0 ln0 rss0 <<<"$R0"
read -r fd1 ln1 rss1 <<<"$R1"
tf_diag "stats after 5 lifetimes of $CYC: $fd0 fds, $ln0 BPF links, RSS $rss0 KiB;" \
	"after $CYCLES more: $fd1 fds, $ln1 BPF links, RSS $rss1 KiB"
tf_eq "$CYCLES more lifetimes of a VM: one record, restarts $((CYCLES + 4))" "1 $((CYCLES + 4))" \
	"$(jq -s -r --arg u $CYCUUID '[.[] | select(.type == "stats" and .uuid == $u)] | last as $l |
		"\([.[] | select(.ts == $l.ts)] | length) \($l.restarts)"' "$OUT")"
tf_eq "$CYCLES more lifetimes of a VM: stats' open fds and BPF links where they were" "$fd0 $ln0" "$fd1 $ln1"
tf_check "$CYCLES more lifetimes of a VM: stats' RSS within 512 KiB ($rss0 -> $rss1 KiB)" \
	test $((rss1 - rss0)) -le 512

# --- the end ------------------------------------------------------------------------------------
for ((i = 0; i < 1800 && $(readies) <= READY0; i++)); do sleep 0.1; done
tf_check "delta booted again (its guest is ready)" test "$(readies)" -gt "$READY0"
"$TF_LAB_SH" wait-done alpha beta gamma 180 >/dev/null || tf_diag "the guests' traffic did not finish"
sleep 1
declare -A E
for vm in $TF_LAB_VMS; do E[$vm]=$(tf_lab_ifstat "$vm"); done
kill -INT $RUN $STATS $GAMMA
wait $GAMMA
GRC=$?
tf_eq "stats --vm gamma: exit code 0, the uplink in its final report" "0 uplink" \
	"$GRC $(jq -r 'select(.type == "stats" and .final and .ifname == "uplink0") | .role' "$TMP/gamma.json")"
wait $RUN
tf_eq "flows: exit code 0" 0 $?
wait $STATS
tf_eq "stats: exit code 0" 0 $?
for vm in alpha beta gamma; do
	mac=$(tf_lab_virsh domiflist $vm | awk 'NR == 1 { print $5 }')
	tf_lab_agree "$vm: totals = domifstat delta" "$(tf_lab_delta "${B[$vm]}" "${E[$vm]}")" \
		"$(final $vm $mac | cut -d' ' -f1-4)"
	tf_eq "$vm: its flow records add up to its totals" "$(final $vm $mac | cut -d' ' -f1-4)" \
		"$(flowsum $vm "$(tf_lab_tap $vm)")"
done
read -r _ _ _ _ R G <<<"$(final delta)"
tf_eq "delta: one record, restarts 1, not gone" "1 false" "$R $G"
tf_lab_agree "delta: totals = domifstat deltas of both lifetimes" "$(add "$D1" "${E[delta]}")" \
	"$(final delta | cut -d' ' -f1-4)"
tf_eq "delta: its flow records of both lifetimes add up to its totals" \
	"$(final delta | cut -d' ' -f1-4)" "$(flowsum delta "$(tf_lab_tap delta)")"
read -r _ _ _ _ R G <<<"$(final gamma $HOTMAC)"
tf_eq "gamma's hot-plugged NIC: gone at the end" "0 true" "$R $G"
tf_lab_agree "gamma's hot-plugged NIC: totals = its domifstat before the unplug" "$H1" \
	"$(final gamma $HOTMAC | cut -d' ' -f1-4)"
tf_lab_no_hook_left "$OUT"
tf_eq "flows: nothing on stderr but the run's notes" "" \
	"$(grep -v '^tapflow: \(VM .*: tracing\|VM .* is gone\|tracing \|interface .* is gone\|warning: the VM inventory is stale\|libvirt is reachable again\)' "$ERR")"
tf_finish
