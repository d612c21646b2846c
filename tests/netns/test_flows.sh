#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# tapflow flows on the VM-host topology of tests/netns/topo.sh (bridge, tap
# with a scripted "VM", veth to a peer). Scripted traffic of known frames:
# exact packets and bytes per flow and direction (UDP both ways, ICMP echo,
# IPv6, VLAN, ARP, another EtherType, a truncated frame, a TCP transfer),
# the flow map full (--max-flows 2), idle expiry, and for every interface:
# the sum of its flow records (flows + aggregates) equals its stats, taken
# by a stats instance running at the same time.
#
# These are --iface interfaces: flows are in the interface's own view, as
# its stats are: rx = received by the interface (for the tap: what the VM
# sent), local = this side, remote = the side behind the interface (for
# the tap: the VM).
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/topo.sh"
TFFRAMES="$TOPO_DIR/tfframes.py"

topo_test_begin "netns flows" flows jq python3 tc bridge iptables socat

no_stderr() {
	if [ -s "$2" ]; then tf_fail "$1: nothing on stderr" "$(head -5 "$2")"
	else tf_ok "$1: nothing on stderr"; fi
}

# frames COUNT SIZE KIND ARGS...: the peer sends frames to the VM's MAC.
frames() {
	ip netns exec "$NSP" python3 "$TFFRAMES" $VP $MAC_PEER $MAC_VM "$@"
}

# flow FILE IFNAME JQ_COND: the final flow record(s) of IFNAME matching
# JQ_COND, as "tx_packets tx_bytes rx_packets rx_bytes".
flow() {
	jq -r --arg i "$2" "select(.type == \"flow\" and .final and .ifname == \$i) |
		select($3) | \"\(.tx_packets) \(.tx_bytes) \(.rx_packets) \(.rx_bytes)\"" "$1"
}

# flow_sum FILE IFNAME: the sum of IFNAME's final flow records, flows and
# aggregates, as "rx_packets rx_bytes tx_packets tx_bytes rx_segs tx_segs"
# (the order of final_of).
flow_sum() {
	jq -rs --arg i "$2" '[.[] | select(.type == "flow" and .final and .ifname == $i)] |
		"\(map(.rx_packets) | add) \(map(.rx_bytes) | add) \(map(.tx_packets) | add) \(map(.tx_bytes) | add) \(map(.rx_segs) | add) \(map(.tx_segs) | add)"' "$1"
}

summary() { tail -n1 "$1" | jq -r "$2"; }
jq_true() { jq -e "$@" >/dev/null; }

# --- 1. Known traffic, exact per flow; sums equal a concurrent stats ----------
tf_start main "${IFACES[@]}" --json flows
MAIN=$TF_PID
tf_start main_stats "${IFACES[@]}" --json stats
STATS=$TF_PID
wait_attached $MAIN 3 && wait_attached $STATS 3 ||
	tf_diag "main: not attached: $(cat "$OUT/main.err" "$OUT/main_stats.err")"
# Both ways of one UDP flow: the VM sends 10 x 100 to the peer's discard
# port (40000 -> 9), the peer answers 4 x 300 on the same ports.
vm_send 10 100 || tf_diag "vm_send failed"
frames 4 300 udp4 $IP_PEER 9 $IP_VM 40000
# ICMP echo, peer -> VM: 5 requests and 5 replies of 98 bytes.
ping_from "$NSP" $IP_VM 5 56 || tf_diag "ping failed"
# IPv6/UDP, VLAN 42 UDP, ARP, another EtherType, a truncated IPv4 header.
frames 3 200 udp6 fd77::2 5000 fd77:0:0:0:0:0:0:1 6000
frames 2 150 vlan 42 $IP_PEER 7000 $IP_VM 7001
frames 1 60 arp $IP_PEER $IP_VM
frames 2 80 ether 88b5
frames 1 40 trunc $IP_PEER $IP_VM
# TCP, peer -> bridge address: 1 MB through the veth and the bridge.
ip netns exec "$NSH" socat -u TCP4-LISTEN:5001,bind=$IP_BR,reuseaddr OPEN:/dev/null &
SRV=$!
tf_on_exit "kill_job $SRV"
wait_for 5 sh -c "ip netns exec $NSH ss -Hltn 'sport = :5001' | grep -q 5001"
head -c 1000000 /dev/zero | nsq "$NSP" socat -b 65536 -u STDIN TCP4:$IP_BR:5001
wait $SRV
tf_eq "main: TCP transfer done" 0 $?
sleep 0.3	# the last ACKs
tf_stop $MAIN INT
tf_eq "main: flows exit code" 0 "$RC"
tf_stop $STATS INT
tf_eq "main: stats exit code" 0 "$RC"
no_stderr "main flows" "$OUT/main.err"
no_stderr "main stats" "$OUT/main_stats.err"
F=$OUT/main.out
tf_eq "main: summary is the last record" summary "$(summary $F .type)"
tf_eq "main: every record is a flow or the summary" "" \
	"$(jq -r 'select(.type != "flow" and .type != "summary") | .type' $F | head -3)"

# The tap, in its own view: rx = what the VM sent, local = the peer's side.
tf_eq "tap: UDP 40000<->9, both ways (tx 4 x 300, rx 10 x 100)" "4 1200 10 1000" \
	"$(flow $F $TAP '.proto == "udp" and .family == 4 and .vlan == null')"
tf_eq "tap: UDP flow's addresses and ports" "10.77.0.2 9 10.77.0.1 40000" \
	"$(jq -r --arg i $TAP 'select(.type == "flow" and .final and .ifname == $i and
		.proto == "udp" and .family == 4 and .vlan == null) |
		"\(.local_ip) \(.local_port) \(.remote_ip) \(.remote_port)"' $F)"
tf_eq "tap: ICMP echo, 5 x 98 each way, one flow" "5 490 5 490" \
	"$(flow $F $TAP '.proto == "icmp"')"
tf_eq "tap: ICMP keyed by type 8/0 and an id, no ports" "8 0 true null null" \
	"$(jq -r --arg i $TAP 'select(.type == "flow" and .final and .ifname == $i and
		.proto == "icmp") | "\(.icmp_type) \(.icmp_code) \(.icmp_id >= 0) \(.local_port) \(.remote_port)"' $F)"
tf_eq "tap: IPv6 UDP 3 x 200, addresses compressed" "3 600 0 0 fd77::2 5000 fd77::1 6000" \
	"$(jq -r --arg i $TAP 'select(.type == "flow" and .final and .ifname == $i and
		.family == 6 and .proto == "udp") |
		"\(.tx_packets) \(.tx_bytes) \(.rx_packets) \(.rx_bytes) \(.local_ip) \(.local_port) \(.remote_ip) \(.remote_port)"' $F)"
# The tag may be offloaded on the way (then skb->len has 4 bytes less).
read -r vp vb _ < <(flow $F $TAP '.vlan == 42')
tf_check "tap: VLAN 42 flow, 2 frames of 150 (or 146 untagged) bytes" \
	test "${vp:-0}" -eq 2 -a \( "${vb:-0}" -eq 300 -o "${vb:-0}" -eq 292 \)
tf_eq "tap: ARP keyed by its addresses" "1 60 0 0 10.77.0.2 10.77.0.1 null" \
	"$(jq -r --arg i $TAP 'select(.type == "flow" and .final and .ifname == $i and
		.proto == "arp") | "\(.tx_packets) \(.tx_bytes) \(.rx_packets) \(.rx_bytes) \(.local_ip) \(.remote_ip) \(.family)"' $F)"
tf_eq "tap: EtherType 0x88b5 flow" "2 160 0 0" "$(flow $F $TAP '.proto == "ethertype 0x88b5"')"
tf_eq "tap: the truncated frame is in the unparsed aggregate" "1 40 0 0" \
	"$(flow $F $TAP '.aggregate == "unparsed"')"
tf_eq "tap: overflow aggregate empty" "0 0 0 0" "$(flow $F $TAP '.aggregate == "overflow"')"
tf_eq "tap: no other flow on the tap" 8 \
	"$(jq -r --arg i $TAP 'select(.type == "flow" and .final and .ifname == $i)' $F | jq -s length)"
tf_eq "tap: flow records carry vm null and nat null" "null null" \
	"$(jq -r --arg i $TAP 'select(.type == "flow" and .final and .ifname == $i and .proto == "icmp") |
		"\(.vm) \(.nat)"' $F)"
# The veth sees the VM's UDP leave towards the peer (tx) and the TCP transfer.
tf_eq "veth: the VM's UDP leaves the veth (tx 10 x 100), local = the VM" \
	"10 1000 4 1200 10.77.0.1 40000" \
	"$(jq -r --arg i $VH 'select(.type == "flow" and .final and .ifname == $i and
		.proto == "udp" and .family == 4 and .vlan == null) |
		"\(.tx_packets) \(.tx_bytes) \(.rx_packets) \(.rx_bytes) \(.local_ip) \(.local_port)"' $F)"
read -r tcp_txp tcp_txb tcp_rxp tcp_rxb < <(flow $F $VH '.proto == "tcp"')
tf_check "veth: TCP flow received >= 1 MB payload ($tcp_rxb bytes in $tcp_rxp skbs)" \
	test "${tcp_rxb:-0}" -ge 1000000 -a "${tcp_txp:-0}" -gt 0
tf_eq "veth: TCP flow's ports and flags (SYN, FIN, ACK seen)" "5001 true" \
	"$(jq -r --arg i $VH 'select(.type == "flow" and .final and .ifname == $i and .proto == "tcp") |
		"\(.local_port) \(.tcp_flags | test("S") and test("F") and test("A"))"' $F)"
read -r brtp brtb brrp brrb < <(flow $F $BR '.proto == "tcp"')
tf_check "bridge: the same TCP flow, received by the host ($brrb bytes)" \
	test "${brrb:-0}" -ge 1000000
# Every interface: the sum of its flow records = its stats (concurrent run).
for dev in $TAP $VH $BR; do
	tf_eq "$dev: sum of flow records = stats (rx/tx packets, bytes, segs)" \
		"$(final_of "$OUT/main_stats.out" $dev)" "$(flow_sum $F $dev)"
done
tf_eq "main: summary map_full 0, parse_errors 2 (tap and veth), flows seen" "0 2 true" \
	"$(summary $F '"\(.map_full) \(.parse_errors) \(.flows_seen >= 10)"')"
tf_eq "main: the VM got the peer's frames and the echo requests" \
	"$((4 + 5 + 3 + 2 + 1 + 2 + 1))" "$(vm_stats | cut -d' ' -f1)"
assert_clean "main: nothing left" "$NSH" $MAIN $TAP $BR $VH
assert_clean "main stats: nothing left" "$NSH" $STATS $TAP $BR $VH

# --- 2. The flow map full: --max-flows 2 ---------------------------------------
# The VM sends to 5 addresses (2 x 100 each) that nobody answers: 2 flows get
# entries, the other 3 flows' 6 frames go to the tap's overflow aggregate.
tf_start full --iface $TAP --max-flows 2 --json flows
FULL=$TF_PID
tf_start full_stats --iface $TAP --json stats
wait_attached $FULL 1 && wait_attached $TF_PID 1
for i in 3 4 5 6 7; do
	vm_cmd send 2 100 $MAC_PEER 10.77.0.$i >/dev/null || tf_diag "send to .$i failed"
done
tf_stop $FULL INT
tf_eq "full: exit code" 0 "$RC"
tf_stop $TF_PID INT
no_stderr full "$OUT/full.err"
tf_eq "full: 2 flows kept, 2 x 100 each" "2 2 200 2 200" \
	"$(jq -rs --arg i $TAP '[.[] | select(.type == "flow" and .final and .ifname == $i and
		.aggregate == null)] | "\(length) \(.[0].rx_packets) \(.[0].rx_bytes) \(.[1].rx_packets) \(.[1].rx_bytes)"' \
		"$OUT/full.out")"
tf_eq "full: the other 6 frames in the overflow aggregate" "0 0 6 600" \
	"$(flow "$OUT/full.out" $TAP '.aggregate == "overflow"')"
tf_eq "full: summary map_full 6, max_flows 2" "6 2" \
	"$(summary "$OUT/full.out" '"\(.map_full) \(.max_flows)"')"
tf_eq "full: sum of flow records = stats" "$(final_of "$OUT/full_stats.out" $TAP)" \
	"$(flow_sum "$OUT/full.out" $TAP)"

# --- 3. Idle expiry keeps the totals exact --------------------------------------
# -i 0.5, idle 1 s: one flow sends, goes idle (expires), comes back, expires.
tf_start idle --iface $TAP --idle-timeout 1 -i 0.5 --json flows
IDLE=$TF_PID
tf_start idle_stats --iface $TAP --json stats
wait_attached $IDLE 1 && wait_attached $TF_PID 1
vm_send 3 100
sleep 2.2
vm_send 2 120
sleep 2.2
vm_cmd send 1 64 $MAC_PEER 10.77.0.9 >/dev/null
tf_stop $IDLE TERM
tf_eq "idle: exit code (SIGTERM)" 0 "$RC"
tf_stop $TF_PID TERM
no_stderr idle "$OUT/idle.err"
tf_eq "idle: the flow's totals span its two lives (5 frames, 540 bytes)" "0 0 5 540" \
	"$(flow "$OUT/idle.out" $TAP '.remote_port == 40000 and .local_ip == "10.77.0.2"')"
tf_check "idle: an interval record said expired" \
	jq_true -s 'any(.[]; .type == "flow" and (.final | not) and .expired)' "$OUT/idle.out"
tf_check "idle: summary flows_expired >= 2" \
	test "$(summary "$OUT/idle.out" .flows_expired)" -ge 2
tf_eq "idle: the flow ended at the end, the last one is live" "true false" \
	"$(jq -r --arg i $TAP 'select(.type == "flow" and .final and .ifname == $i and
		.aggregate == null) | .expired' "$OUT/idle.out" | tr '\n' ' ' | sed 's/ $//')"
tf_eq "idle: sum of flow records = stats" "$(final_of "$OUT/idle_stats.out" $TAP)" \
	"$(flow_sum "$OUT/idle.out" $TAP)"

# --- 4. --top: the rest is summed, the totals still add up ------------------------
tf_start topn --iface $TAP --top 1 --json flows -d 3
TOPN=$TF_PID
wait_attached $TOPN 1
vm_send 3 300
vm_cmd send 1 100 $MAC_PEER 10.77.0.8 >/dev/null
vm_cmd send 1 100 $MAC_PEER 10.77.0.9 >/dev/null
wait $TOPN
tf_eq "top 1: exit code after -d" 0 $?
tf_eq "top 1: the biggest flow, then others = 2 flows, 2 x 100" "900 2 2 200" \
	"$(jq -rs --arg i $TAP '[.[] | select(.type == "flow" and .final and .ifname == $i)] |
		"\(map(select(.aggregate == null))[0].rx_bytes) \(map(select(.aggregate == "others"))[0].flows) \(map(select(.aggregate == "others"))[0].rx_packets) \(map(select(.aggregate == "others"))[0].rx_bytes)"' \
		"$OUT/topn.out")"
tf_eq "top 1: one flow record per report" 1 \
	"$(jq -r --arg i $TAP 'select(.type == "flow" and .final and .aggregate == null) | .ifname' \
		"$OUT/topn.out" | wc -l)"

# --- 5. The table output -----------------------------------------------------------
tf_start table --iface $TAP flows -d 2
TABLE=$TF_PID
wait_attached $TABLE 1
vm_send 2 100
ping_from "$NSP" $IP_VM 1 56
wait $TABLE
tf_eq "table: exit code" 0 $?
no_stderr table "$OUT/table.err"
tf_check "table: header and final report" \
	grep -q '^VM  *IFACE  *PROTO  *LOCAL  *REMOTE  *TX PKTS' "$OUT/table.out"
tf_check "table: the UDP flow row" \
	grep -qE "^-  +$TAP  +udp  +10\.77\.0\.2:9  +10\.77\.0\.1:40000 " "$OUT/table.out"
tf_check "table: the ICMP echo row" \
	grep -qE "^-  +$TAP  +icmp echo id [0-9]+  +10\.77\.0\.2  +10\.77\.0\.1 " "$OUT/table.out"
tf_check "table: summary lines" grep -q '^flows: 2 seen' "$OUT/table.out"

# --- 6. Bad options --------------------------------------------------------------------
for args in "flows --top x" "flows --max-flows 0" "flows --idle-timeout 0" \
	"stats --top 3" "stats --max-flows 10" "list --idle-timeout 5"; do
	"$TAPFLOW" --no-libvirt --iface lo $args >"$OUT/bad.out" 2>"$OUT/bad.err"
	rc=$?
	tf_eq "usage: '$args' exits 2 with one line" "2 1" "$rc $(wc -l <"$OUT/bad.err")"
done

tf_eq "the VM never got a frame it did not expect, but the peer's raw ones" \
	$((3 + 2 + 1 + 2 + 1 + 4)) "$(vm_stats | cut -d' ' -f6)"
tf_finish
