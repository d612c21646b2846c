#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Delivered is not dropped: packets of a VM that a socket of the host
# received, or that the host stack got a copy of and did not need, are
# freed with a drop reason by the kernel, yet nothing was lost. tapflow
# must never count them as the VM's drops (in drops, flows or stats), and
# must count them apart in the summary (drops_delivered_raw,
# drops_socket_copies, drops_not_for_host). On topo.sh's topology:
#
#   $NSH ("host"): tfbr0 10.77.0.254, tftap0 (the "VM" 10.77.0.1), tfvh0 --- $NSP peer 10.77.0.2
#
#   1. Sockets: the host pings the VM with raw sockets (busybox ping, as
#      root; a python raw socket) and a ping socket; a raw UDP socket
#      receives the VM's UDP to a port no UDP socket has; a packet socket
#      without a ring whose buffer is full on the tap (its copies of the
#      peer's frames to the VM are freed).
#   2. The bridge promiscuous (tcpdump on it without -p): the host stack's
#      copies of the VM's unicast to the peer, broadcast UDP and ICMP echo,
#      multicast UDP of a group nobody joined.
#   3. tcpdump on the tap and on the bridge with a tiny buffer, stopped, so
#      that their rings overflow under a burst.
#   4. Controls, while tcpdump (promiscuous), a packet socket without a
#      ring (holding clones of every frame) and a raw ICMP socket run on
#      the bridge: UDP to a closed port (NO_SOCKET; once the packet socket
#      holds its copies: received by it), an INPUT and a FORWARD DROP rule,
#      a full queue on the tap (the host's TCP SYNs and raw pings): each
#      counted, equal to the kernel's own counters.
#   5. IPv6: the VM's ICMPv6 echo replies to the host, first with a raw
#      ICMPv6 socket open (delivered), then without (NO_SOCKET drops).
# Each part runs drops, flows and stats at once: they must agree.
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/topo.sh"
TFDELIVER="$TOPO_DIR/tfdeliver.py"
TFDROPS="$TOPO_DIR/tfdrops.py"
NAME="netns delivered"

topo_test_begin "$NAME" delivered jq python3 iptables tc tcpdump busybox bpftool
REASONS=$(bpftool btf dump file /sys/kernel/btf/vmlinux format raw 2>/dev/null |
	grep -o "'SKB_DROP_REASON_[A-Z0-9_]*'")
if ! grep -q "'SKB_DROP_REASON_NO_SOCKET'" <<<"$REASONS"; then
	tf_skip "$NAME" "the kernel's BTF has no enum skb_drop_reason (Linux 5.17+)"
	exit 0
fi
MAC_BCAST=ff:ff:ff:ff:ff:ff IP_BCAST=10.77.0.255
MAC_MCAST=01:00:5e:01:01:01 IP_MCAST=239.1.1.1

# bg_stop PID: SIGTERM a helper, wait for it (it prints what it saw).
bg_stop() { kill -TERM "$1" 2>/dev/null; wait "$1" 2>/dev/null; }

# attached PID: tapflow PID holds its 3 interfaces' 6 TCX links and its drop
# tracer's link (read from its own fds: nothing another process can change).
attached() {
	[ "$(cat /proc/"$1"/fdinfo/* 2>/dev/null | grep -c '^link_type:[[:space:]]*tcx$')" -eq 6 ] &&
		grep -qsx 'tp_name:[[:space:]]*kfree_skb' /proc/"$1"/fdinfo/*
}

# run_start RUN: drops, flows and stats (JSON), drops through the raw_tp
# fallback and the drops table, on the three interfaces, until run_stop;
# output in $OUT/RUN-{drops,flows,stats,rawtp,table}.out.
run_start() {
	local what pid
	RUN_PIDS=()
	for what in drops flows stats; do
		tf_start "$1-$what" "${IFACES[@]}" --json $what -i 1
		RUN_PIDS+=("$what:$TF_PID")
	done
	TAPFLOW_DROPS_HOOK=raw_tp tf_start "$1-rawtp" "${IFACES[@]}" --json drops -i 1
	RUN_PIDS+=("rawtp:$TF_PID")
	tf_start "$1-table" "${IFACES[@]}" drops
	RUN_PIDS+=("table:$TF_PID")
	# Five loads at once on a busy machine: give them time, every one counts.
	for what in "${RUN_PIDS[@]}"; do
		pid=${what#*:}
		wait_for 60 attached "$pid" ||
			tf_fail "$1-${what%%:*}: attached" "$(cat "$OUT/$1-${what%%:*}.err")"
	done
}

# run_stop RUN: stop them; the raw_tp fallback must have said what tp_btf said.
run_stop() {
	local what
	for what in "${RUN_PIDS[@]}"; do
		tf_stop "${what#*:}" INT
		tf_eq "$1-${what%%:*}: exit code" 0 "$RC"
		if [ -s "$OUT/$1-${what%%:*}.err" ]; then
			tf_fail "$1-${what%%:*}: nothing on stderr" "$(head -5 "$OUT/$1-${what%%:*}.err")"
		fi
	done
	tf_eq "$1: raw_tp fallback: the same summary and drop records as tp_btf" \
		"raw_tp/kfree_skb $(kept "$1") $(records "$1-drops")" \
		"$(tail -n1 "$OUT/$1-rawtp.out" | jq -r .drops_hook) $(kept "$1" rawtp) $(records "$1-rawtp")"
}

# kept RUN [WHAT]: the summary of RUN's drops (or WHAT) instance,
# "drops host_drops | delivered raw copies not_for_host".
kept() {
	tail -n1 "$OUT/$1-${2:-drops}.out" | jq -r '"\(.drops) \(.host_drops) | \(.drops_delivered) \(.drops_delivered_raw) \(.drops_socket_copies) \(.drops_not_for_host)"'
}
# records NAME: the final drop records of $OUT/NAME.out, one line.
records() {
	jq -r 'select(.type == "drop" and .final) | "\(.ifname):\(.reason):\(.dev):\(.count)"' "$OUT/$1.out" |
		sort | tr '\n' ' '
}

# no_drops RUN: drops, flows and stats all say no packet was dropped.
no_drops() {
	tf_eq "$1: drops: no drop record" "" \
		"$(jq -r 'select(.type == "drop") | "\(.ifname) \(.reason) \(.location) \(.count)"' "$OUT/$1-drops.out" | sort -u)"
	tf_eq "$1: flows: no flow with drops, summary drops 0 host_drops 0" "0 | 0 0" \
		"$(jq -r 'select(.type == "flow" and (.drops // 0) > 0)' "$OUT/$1-flows.out" | jq -s length) | $(
		  tail -n1 "$OUT/$1-flows.out" | jq -r '"\(.drops) \(.host_drops)"')"
	tf_eq "$1: stats: every interface 0 drops" "$TAP 0 $BR 0 $VH 0" \
		"$(jq -r 'select(.type == "stats" and .final) | "\(.ifname) \(.drops)"' "$OUT/$1-stats.out" |
			sort -k1,1 | awk -v t=$TAP -v b=$BR -v v=$VH '{ d[$1] = $2 } END { print t, d[t], b, d[b], v, d[v] }')"
}

# snmp NS PROTO FIELD: a counter of /proc/net/snmp in NS (Udp NoPorts ...).
snmp() {
	ip netns exec "$1" awk -v p="$2:" -v f="$3" '$1 == p && !h { for (i = 2; i <= NF; i++) c[$i] = i; h = 1; next }
		$1 == p && h { print $c[f]; exit }' /proc/net/snmp
}
# ge N CMD...: CMD prints a number >= N (for wait_for).
ge() { local n; n=$("${@:2}") && [ "$n" -ge "$1" ]; }
# vm_rx: the frames the VM received.
vm_rx() { vm_stats | cut -d' ' -f1; }
# otherhost NS DEV: the frames DEV's stack dropped as not addressed to the host.
otherhost() { ip -n "$1" -s -s -j link show "$2" | jq '.[0].stats64.rx.otherhost // 0'; }
# tcpdump_drops LOG: "N packets dropped by kernel" of a tcpdump that ended.
tcpdump_drops() { awk '/packets dropped by kernel/ { print $1 }' "$1"; }

# =============================================================================
# 1. Sockets: raw sockets, a ping socket, a packet socket without room
# =============================================================================
# Ping sockets for root only, for the ping socket below (busybox ping as
# root opens a raw socket all the same: the raw count below checks it).
nsq $NSH sysctl -qw net.ipv4.ping_group_range="0 0" || tf_fail "setup" "ping_group_range"
run_start sock
NOPORTS0=$(snmp $NSH Udp NoPorts)
out=$(ip netns exec $NSH busybox ping -c 5 -i 0.2 -W 2 $IP_VM 2>&1)
tf_check "traffic: busybox ping (raw socket): 5 replies" grep -q '5 packets received' <<<"$out"
tf_eq "traffic: python raw socket ping: 3 replies" 3/3 \
	"$(ip netns exec $NSH python3 "$TFNET" ping $IP_VM 3 56)"
tf_eq "traffic: ping socket: 4 replies" 4/4 \
	"$(ip netns exec $NSH python3 "$TFDELIVER" pingsock $IP_VM 4 56)"
bg_start RAWUDP "$OUT/rawudp.log" ip netns exec $NSH python3 "$TFDELIVER" rawsock 4 17 ||
	tf_fail "raw UDP socket" "did not start"
vm_cmd send 4 100 $MAC_BR $IP_BR >/dev/null
wait_for 5 grep -qx 'received 4' "$OUT/rawudp.log"
bg_stop $RAWUDP
tf_eq "traffic: the raw UDP socket received the VM's 4 datagrams" "received 4" "$(tail -n1 "$OUT/rawudp.log")"
tf_eq "kernel: UDP counted them as NoPorts (no UDP socket), 4" 4 $(($(snmp $NSH Udp NoPorts) - NOPORTS0))
# A packet socket on the tap with the smallest buffer: the peer's frames
# to the VM leave through the tap, and the socket's clone of each is freed
# when it has no room.
bg_start AFP "$OUT/afp-full.log" ip netns exec $NSH python3 "$TFDELIVER" afp $TAP 1 ||
	tf_fail "packet socket" "did not start"
VM0=$(vm_rx)
tf_eq "traffic: peer UDP to the VM, 20" "sent 20 failed 0" \
	"$(ip netns exec $NSP python3 "$TFDROPS" send $IP_PEER 5000 $IP_VM 9 20 200)"
wait_for 5 ge $((VM0 + 20)) vm_rx
bg_stop $AFP
read -r _ AFP_PACKETS _ AFP_DROPS < <(tail -n1 "$OUT/afp-full.log")
tf_diag "packet socket on $TAP: given $AFP_PACKETS frames, no room for $AFP_DROPS"
tf_check "setup: the packet socket had no room for some of the frames ($AFP_DROPS)" \
	test "${AFP_DROPS:-0}" -ge 1
tf_eq "traffic: the VM received the peer's 20 frames all the same" 20 $(($(vm_rx) - VM0))
run_stop sock
no_drops sock
tf_eq "sock: summary: delivered 5 + 3 + 4 to raw sockets, the packet socket's $AFP_DROPS copies" \
	"0 0 | $((12 + AFP_DROPS)) 12 $AFP_DROPS 0" "$(kept sock)"
tf_eq "sock: flows and stats have the same summary" "$(kept sock) | $(kept sock)" \
	"$(tail -n1 "$OUT/sock-flows.out" | jq -r '"\(.drops) \(.host_drops) | \(.drops_delivered) \(.drops_delivered_raw) \(.drops_socket_copies) \(.drops_not_for_host)"') | $(
	  tail -n1 "$OUT/sock-stats.out" | jq -r '"\(.drops) \(.host_drops) | \(.drops_delivered) \(.drops_delivered_raw) \(.drops_socket_copies) \(.drops_not_for_host)"')"
tf_check "sock: table: no drop rows" grep -qx '(no drops)' "$OUT/sock-table.out"
tf_check "sock: table: the summary says what was delivered" grep -qx \
	"not drops: $((12 + AFP_DROPS)) frees of delivered packets (12 received by raw sockets, $AFP_DROPS sockets' own copies, 0 host copies of frames not for it)" \
	"$OUT/sock-table.out"

# =============================================================================
# 2. The bridge promiscuous: the host stack's copies of frames not for it
# =============================================================================
run_start flood
OH0=$(otherhost $NSH $BR) IGN0=$(snmp $NSH Udp IgnoredMulti) ICMP0=$(snmp $NSH Icmp InMsgs)
brmcast() { ip -n $NSH -s -j link show $BR | jq '.[0].stats64.rx.multicast'; }
MC0=$(brmcast)
bg_start TD "$OUT/flood-tcpdump.log" ip netns exec $NSH tcpdump -i $BR -n -w /dev/null ||
	tf_fail "tcpdump" "did not start"
tf_check "setup: tcpdump made $BR promiscuous" \
	sh -c "ip -n $NSH -d -j link show $BR | jq -e '.[0].promiscuity >= 1' >/dev/null"
vm_cmd send 5 100 $MAC_PEER $IP_PEER >/dev/null		# unicast to the peer
vm_cmd send 3 100 $MAC_BCAST $IP_BCAST >/dev/null	# broadcast UDP, port 9: no listener
vm_cmd send 2 100 $MAC_MCAST $IP_MCAST >/dev/null	# a group nobody joined
for f in $(python3 "$TFDELIVER" icmp-frame request $MAC_VM $MAC_BCAST $IP_VM $IP_BCAST 77 2 56); do
	vm_cmd frame 1 "$f" >/dev/null			# echo to broadcast: ignored
done
# Each discarded where the kernel counts it: wait for all four counts.
wait_for 5 ge $((OH0 + 5)) otherhost $NSH $BR && wait_for 5 ge $((IGN0 + 3)) snmp $NSH Udp IgnoredMulti &&
wait_for 5 ge $((MC0 + 2)) brmcast && wait_for 5 ge $((ICMP0 + 2)) snmp $NSH Icmp InMsgs ||
	tf_diag "flood: the kernel did not count every frame"
bg_stop $TD
run_stop flood
tf_eq "kernel: $BR dropped 5 frames as for another host, UDP ignored 3 broadcasts" "5 3" \
	"$(($(otherhost $NSH $BR) - OH0)) $(($(snmp $NSH Udp IgnoredMulti) - IGN0))"
no_drops flood
tf_eq "flood: summary: 5 + 3 + 2 + 2 host copies not for it, nothing else" \
	"0 0 | 12 0 0 12" "$(kept flood)"
tf_eq "flood: the VM's flows are all there (they were delivered): 4 flows, 12 frames sent" "4 12" \
	"$(jq -rs '[.[] | select(.type == "flow" and .final and .ifname == "'$TAP'" and .aggregate == null)] |
		"\(length) \(map(.rx_packets) | add)"' "$OUT/flood-flows.out")"

# =============================================================================
# 3. tcpdump on the tap and the bridge, stopped, with a tiny buffer
# =============================================================================
run_start ring
bg_start TDT "$OUT/ring-tap.log" ip netns exec $NSH tcpdump -i $TAP -p -B 1 -n -w /dev/null &&
bg_start TDB "$OUT/ring-br.log" ip netns exec $NSH tcpdump -i $BR -p -B 1 -n -w /dev/null ||
	tf_fail "tcpdump" "did not start"
kill -STOP $TDT $TDB
VM0=$(vm_rx)
tf_eq "traffic: peer UDP to the VM, 300 x 1000 B" "sent 300 failed 0" \
	"$(ip netns exec $NSP python3 "$TFDROPS" send $IP_PEER 5001 $IP_VM 9 300 1000)"
vm_cmd send 300 1042 $MAC_PEER $IP_PEER >/dev/null
out=$(ip netns exec $NSH busybox ping -c 20 -i 0.01 -W 2 $IP_VM 2>&1)
tf_check "traffic: busybox ping through the stopped tcpdumps: 20 replies" grep -q '20 packets received' <<<"$out"
kill -CONT $TDT $TDB
bg_stop $TDT
bg_stop $TDB
RING_DROPS=$(( $(tcpdump_drops "$OUT/ring-tap.log") + $(tcpdump_drops "$OUT/ring-br.log") ))
tf_diag "tcpdump: dropped by kernel: $(tcpdump_drops "$OUT/ring-tap.log") on $TAP, $(tcpdump_drops "$OUT/ring-br.log") on $BR"
tf_check "setup: the tcpdumps' rings overflowed ($RING_DROPS frames)" test "$RING_DROPS" -ge 1
tf_eq "traffic: the VM received all 300 + 20 frames" 320 $(($(vm_rx) - VM0))
run_stop ring
no_drops ring
RING_COPIES=$(tail -n1 "$OUT/ring-drops.out" | jq .drops_socket_copies)
[[ $RING_COPIES =~ ^[0-9]+$ ]] || RING_COPIES=-1	# not reported: fail below, go on
tf_diag "ring: tapflow counted $RING_COPIES of the tcpdumps' copies freed with a drop reason"
tf_eq "ring: summary: the 20 replies delivered to busybox's raw socket, the tcpdumps' copies, nothing for the host" \
	"0 0 | $((20 + RING_COPIES)) 20 $RING_COPIES 0" "$(kept ring)"
tf_check "ring: the tcpdumps' own copies ($RING_COPIES) are at most what they lost ($RING_DROPS)" \
	test "$RING_COPIES" -ge 0 -a "$RING_COPIES" -le "$RING_DROPS"

# =============================================================================
# 4. Controls: genuine drops still count, whatever listens
# =============================================================================
# The VM's UDP to the host: port 9, 100 B frames, no UDP or raw UDP socket
# (NO_SOCKET); 242 B frames dropped in INPUT; to 10.78.0.5, routed to a
# second link to the peer and dropped in FORWARD. Then a queue that takes nothing
# on the tap: the host's raw pings and TCP SYNs (retransmitted: each a
# clone of what the TCP socket keeps) to the VM are dropped there.
ip -n $NSH link add tfr0 type veth peer name tfr1 netns $NSP && ip -n $NSH link set tfr0 up &&
ip -n $NSP link set tfr1 up && ip -n $NSH addr add 10.78.0.1/24 dev tfr0 &&
ip -n $NSP addr add 10.78.0.5/24 dev tfr1 && nsq $NSH sysctl -qw net.ipv4.ip_forward=1 &&
nsq $NSH iptables -A INPUT -i $BR -p udp -m length --length 228 -j DROP &&
nsq $NSH iptables -A FORWARD -d 10.78.0.5 -j DROP || tf_fail "setup" "cannot add the drop rules"
run_start ctl
bg_start TDC "$OUT/ctl-tcpdump.log" ip netns exec $NSH tcpdump -i $BR -n -w /dev/null &&
bg_start RAWC "$OUT/ctl-raw.log" ip netns exec $NSH python3 "$TFDELIVER" rawsock 4 1 ||
	tf_fail "listeners" "did not start"
NOPORTS0=$(snmp $NSH Udp NoPorts)
vm_cmd send 4 100 $MAC_BR $IP_BR >/dev/null
# A packet socket without a ring keeps a clone of every frame it takes:
# of a packet the host has no socket for, the one copy that was received
# (drops_delivered_raw), as a raw socket's would be. The rest of these
# drops must count all the same.
bg_start AFPC "$OUT/ctl-afp.log" ip netns exec $NSH python3 "$TFDELIVER" afp $BR 0 ||
	tf_fail "listeners" "the packet socket did not start"
vm_cmd send 2 100 $MAC_BR $IP_BR >/dev/null
vm_cmd send 3 242 $MAC_BR $IP_BR >/dev/null
vm_cmd send 5 100 $MAC_BR 10.78.0.5 >/dev/null
wait_for 5 sh -c "[ \$(ip netns exec $NSH iptables -L FORWARD -v -x -n | awk '/10.78.0.5/ { print \$1 }') = 5 ]"
tc -n $NSH qdisc replace dev $TAP root pfifo limit 0 || tf_fail "setup" "cannot add pfifo limit 0"
ip netns exec $NSH busybox ping -c 2 -i 0.2 -W 1 $IP_VM >/dev/null 2>&1
ip netns exec $NSH timeout 2.5 bash -c "exec 3<>/dev/tcp/$IP_VM/80" 2>/dev/null
QDISC=$(tc -n $NSH -s -j qdisc show dev $TAP | jq '[.[] | select(.kind == "pfifo") | .drops] | add // 0')
tc -n $NSH qdisc del dev $TAP root
bg_stop $TDC; bg_stop $AFPC; bg_stop $RAWC
run_stop ctl
NOPORTS=$(($(snmp $NSH Udp NoPorts) - NOPORTS0))
IN_RULE=$(ip netns exec $NSH iptables -L INPUT -v -x -n | awk '/length 228/ { print $1 }')
FWD_RULE=$(ip netns exec $NSH iptables -L FORWARD -v -x -n | awk '/10.78.0.5/ { print $1 }')
tf_diag "kernel: NoPorts $NOPORTS, INPUT rule $IN_RULE, FORWARD rule $FWD_RULE, $TAP's queue dropped $QDISC;" \
	"the packet socket: $(tail -n1 "$OUT/ctl-afp.log")"
tf_eq "setup: the kernel dropped 6 (no port), 3 (INPUT), 5 (FORWARD)" "6 3 5" "$NOPORTS $IN_RULE $FWD_RULE"
NOPORTS=$((NOPORTS - 2))	# the 2 the packet socket received
tf_check "setup: the queue dropped the 2 pings and at least 2 SYNs ($QDISC)" test "$QDISC" -ge 4
C=$OUT/ctl-drops.out
creason() { jq -r --arg r "$1" --arg d "$2" 'select(.type == "drop" and .final and .ifname == "'$TAP'" and
	.reason == $r and .dev == $d) | .count' "$C" | awk '{ s += $1 } END { print s + 0 }'; }
tf_eq "ctl: drops: NO_SOCKET = NoPorts, NETFILTER_DROP = both rules, QDISC_DROP = the queue's" \
	"$NOPORTS $((IN_RULE + FWD_RULE)) $QDISC" \
	"$(creason NO_SOCKET $BR) $(creason NETFILTER_DROP $BR) $(creason QDISC_DROP $TAP)"
tf_eq "ctl: summary: all of them the VM's; delivered: the 2 the packet socket took" \
	"$((NOPORTS + IN_RULE + FWD_RULE + QDISC)) 0 | 2 2 0 0" "$(kept ctl)"
tf_eq "ctl: flows: the flows' drops add up to the same" "$((NOPORTS + IN_RULE + FWD_RULE + QDISC))" \
	"$(jq -rs '[.[] | select(.type == "flow" and .final and .ifname == "'$TAP'") | .drops // 0] | add' "$OUT/ctl-flows.out")"
tf_eq "ctl: flows: UDP to the host $((NOPORTS + IN_RULE)), to 10.78.0.5 $FWD_RULE" \
	"$((NOPORTS + IN_RULE)) $FWD_RULE" \
	"$(jq -r 'select(.type == "flow" and .final and .ifname == "'$TAP'" and .proto == "udp") |
		"\(.local_ip) \(.drops)"' "$OUT/ctl-flows.out" | sort | awk '{ printf "%s%s", (NR > 1 ? " " : ""), $2 }')"
tf_eq "ctl: stats: the tap's drops are those on it (the queue), the bridge's those on it" \
	"$TAP $QDISC $BR $((NOPORTS + IN_RULE + FWD_RULE))" \
	"$(jq -r 'select(.type == "stats" and .final and (.ifname == "'$TAP'" or .ifname == "'$BR'")) |
		"\(.ifname) \(.drops)"' "$OUT/ctl-stats.out" | sort -r | tr '\n' ' ' | sed 's/ $//')"

# =============================================================================
# 5. IPv6: a raw ICMPv6 socket receives echo replies (rawv6_rcv), then none does
# =============================================================================
IP6_BR=fd00:77::fe IP6_VM=fd00:77::1
nsq $NSH sysctl -qw net.ipv6.conf.$BR.addr_gen_mode=1 net.ipv6.conf.$BR.accept_ra=0 \
	net.ipv6.conf.$BR.accept_dad=0 net.ipv6.conf.$BR.disable_ipv6=0 &&
ip -n $NSH addr add $IP6_BR/64 dev $BR nodad || tf_fail "setup" "cannot give $BR an IPv6 address"
snmp6() { ip netns exec $NSH awk -v f="$1" '$1 == f { print $2 }' /proc/net/snmp6; }
run_start v6
REPLIES0=$(snmp6 Icmp6InEchoReplies)
bg_start RAW6 "$OUT/raw6.log" ip netns exec $NSH python3 "$TFDELIVER" rawsock 6 58 ||
	tf_fail "raw ICMPv6 socket" "did not start"
for f in $(python3 "$TFDELIVER" icmp-frame reply $MAC_VM $MAC_BR $IP6_VM $IP6_BR 99 3 56); do
	vm_cmd frame 1 "$f" >/dev/null
done
wait_for 5 grep -qx 'received 3' "$OUT/raw6.log"
bg_stop $RAW6
tf_eq "traffic: the raw ICMPv6 socket received the VM's 3 echo replies" "received 3" \
	"$(tail -n1 "$OUT/raw6.log")"
for f in $(python3 "$TFDELIVER" icmp-frame reply $MAC_VM $MAC_BR $IP6_VM $IP6_BR 99 2 56); do
	vm_cmd frame 1 "$f" >/dev/null
done
wait_for 5 ge $((REPLIES0 + 5)) snmp6 Icmp6InEchoReplies
run_stop v6
tf_eq "kernel: 5 ICMPv6 echo replies in" 5 $(($(snmp6 Icmp6InEchoReplies) - REPLIES0))
tf_eq "v6: drops: the 2 replies nobody took, NO_SOCKET at ping_rcv, by the VM's flow" \
	"2 NO_SOCKET $BR icmpv6 flow" \
	"$(jq -r 'select(.type == "drop" and .final) | "\(.count) \(.reason) \(.dev) \(.proto) \(.attributed_by)"' \
		"$OUT/v6-drops.out")"
tf_check "v6: drops: at ping_rcv" grep -q '"location":"ping_rcv+0x' "$OUT/v6-drops.out"
tf_eq "v6: summary: 2 drops, the 3 the raw socket took delivered" "2 0 | 3 3 0 0" "$(kept v6)"
tf_eq "v6: flows: the echo flow has the 2 drops" "icmpv6 2" \
	"$(jq -r 'select(.type == "flow" and .final and .ifname == "'$TAP'" and .family == 6) |
		"\(.proto) \(.drops)"' "$OUT/v6-flows.out")"
tf_eq "v6: stats: the bridge's 2" "2" \
	"$(jq -r 'select(.type == "stats" and .final and .ifname == "'$BR'") | .drops' "$OUT/v6-stats.out")"

tf_finish
