#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# tapflow drops on a NAT router built of test namespaces, with
# scripted drops of known causes and exact counts:
#
#   $NSV1 "VM 1" eth0 10.210.0.2 ---- p1 --+
#                                          br0 10.210.0.1   $NSR, the "host":
#   $NSV2 "VM 2" eth0 10.210.0.3 ---- p2 --+                ip_forward, MASQUERADE
#                                          up0 10.211.0.1 ====== eth0 10.211.0.2 $NSI
#                                                                 ("internet": UDP echo)
#   $NSX  xa 10.215.0.1 (p1's ifindex), xb 10.216.0.1 (up0's) ==== ya, yb $NSY
#
# tapflow runs in $NSR with --no-libvirt --iface p1 --iface p2 --uplink up0:
# p1/p2 stand for the VMs' taps. The drops, each checked against what the
# kernel itself counted (iptables rule counters, the qdisc's drop counter)
# and, for the reason, against the names in the running kernel's BTF:
#   - a FORWARD DROP rule on VM 1's flow (NETFILTER_DROP, in netfilter);
#   - TTL 1 through the router (IP_INHDR, in ip_forward);
#   - a destination behind a `throw` route: no route (IP_INNOROUTES, ip_error);
#   - another tc program on p2 dropping what VM 2 sends (TC_INGRESS) and
#     replies on their way to it (TC_EGRESS);
#   - a qdisc that is always full (pfifo limit 0) on p1 (QDISC_DROP);
#   - replies dropped on the uplink side: in FORWARD (after de-NAT) and in
#     raw PREROUTING (before conntrack: the NAT join gives them to the VM);
# then a run without drop rules (no false positives, --no-drops, the
# tracer's program), drops that are no VM's (the host aggregate) and drops
# in another namespace on interfaces with the traced ones' ifindexes (not
# counted), and --events with and without the rate limit.
#
# Static neighbours and FDB entries, IPv6 off: the only packets are the
# scripted ones. A "nth" statistic rule drops the same packets every run.
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/topo.sh"
TFNAT="$TOPO_DIR/tfnat.py"
TFDROPS="$TOPO_DIR/tfdrops.py"
NAME="netns drops"

netns_test_begin "$NAME" drops jq python3 iptables bpftool tc
# The reason names of the running kernel: "NAME value" per line.
REASONS=$(bpftool btf dump file /sys/kernel/btf/vmlinux format raw 2>/dev/null |
	sed -nE "s/^[[:space:]]*'SKB_DROP_REASON_([A-Z0-9_]+)' val=([0-9]+)$/\1 \2/p")
if ! grep -q '^NETFILTER_DROP ' <<<"$REASONS"; then
	tf_skip "$NAME" "the kernel's BTF has no enum skb_drop_reason (Linux 5.17+)"
	exit 0
fi

IP_V1=10.210.0.2 IP_V2=10.210.0.3 IP_GW=10.210.0.1 IP_UP=10.211.0.1 IP_IN=10.211.0.2
NET_NOROUTE=10.213.0.0/24 IP_NOROUTE=10.213.0.5	# VM 1's packets: no route
NET_HOSTNR=10.214.0.0/24 IP_HOSTNR=10.214.0.1	# the internet's: no route either
IP_XA=10.215.0.1 IP_YA=10.215.0.2 IP_XB=10.216.0.1 IP_YB=10.216.0.2
MAC_BR=02:30:00:00:00:01 MAC_V1=02:30:00:00:00:02 MAC_V2=02:30:00:00:00:03
MAC_UP=02:31:00:00:00:01 MAC_IN=02:31:00:00:00:02
MAC_XA=02:35:00:00:00:01 MAC_XB=02:36:00:00:00:01

topo_drops() {
	tf_netns NSR rt && tf_netns NSV1 v1 && tf_netns NSV2 v2 && tf_netns NSI in &&
	tf_netns NSX x && tf_netns NSY y || return 1
	for ns in $NSR $NSV1 $NSV2 $NSI $NSX $NSY; do quiet_netns $ns || return 1; done
	ip -n $NSR link add br0 address $MAC_BR type bridge stp_state 0 mcast_snooping 0 &&
	ip -n $NSR link add p1 type veth peer name eth0 netns $NSV1 address $MAC_V1 &&
	ip -n $NSR link add p2 type veth peer name eth0 netns $NSV2 address $MAC_V2 &&
	ip -n $NSR link add up0 address $MAC_UP type veth peer name eth0 netns $NSI \
		address $MAC_IN || return 1
	ip -n $NSR link set p1 master br0 up && ip -n $NSR link set p2 master br0 up &&
	ip -n $NSR link set br0 up && ip -n $NSR link set up0 up &&
	ip -n $NSR addr add $IP_GW/24 dev br0 && ip -n $NSR addr add $IP_UP/24 dev up0 || return 1
	ip -n $NSV1 link set eth0 up && ip -n $NSV1 addr add $IP_V1/24 dev eth0 &&
	ip -n $NSV1 route add default via $IP_GW || return 1
	ip -n $NSV2 link set eth0 up && ip -n $NSV2 addr add $IP_V2/24 dev eth0 &&
	ip -n $NSV2 route add default via $IP_GW || return 1
	# The internet routes the VMs' subnet (packets to VM 1 not NATed) and
	# the "no route" subnet back to the router.
	ip -n $NSI link set eth0 up && ip -n $NSI addr add $IP_IN/24 dev eth0 &&
	ip -n $NSI route add 10.210.0.0/24 via $IP_UP &&
	ip -n $NSI route add $NET_HOSTNR via $IP_UP || return 1
	ip -n $NSV1 neigh add $IP_GW lladdr $MAC_BR dev eth0 nud permanent &&
	ip -n $NSV2 neigh add $IP_GW lladdr $MAC_BR dev eth0 nud permanent &&
	ip -n $NSR neigh add $IP_V1 lladdr $MAC_V1 dev br0 nud permanent &&
	ip -n $NSR neigh add $IP_V2 lladdr $MAC_V2 dev br0 nud permanent &&
	ip -n $NSR neigh add $IP_IN lladdr $MAC_IN dev up0 nud permanent &&
	ip -n $NSI neigh add $IP_UP lladdr $MAC_UP dev eth0 nud permanent || return 1
	bridge -n $NSR fdb add $MAC_V1 dev p1 master static &&
	bridge -n $NSR fdb add $MAC_V2 dev p2 master static || return 1
	nsq $NSR sysctl -qw net.ipv4.ip_forward=1 &&
	nsq $NSR iptables -t nat -A POSTROUTING -s 10.210.0.0/24 -o up0 -j MASQUERADE || return 1
	# No route: a `throw` route ends the lookup without a match.
	ip -n $NSR route add throw $NET_NOROUTE && ip -n $NSR route add throw $NET_HOSTNR || return 1

	# Another namespace whose interfaces have the ifindexes of p1 and up0.
	P1_IDX=$(ip -n $NSR -j link show p1 | jq '.[0].ifindex')
	UP_IDX=$(ip -n $NSR -j link show up0 | jq '.[0].ifindex')
	ip -n $NSX link add xa index "$P1_IDX" address $MAC_XA type veth peer name ya netns $NSY &&
	ip -n $NSX link add xb index "$UP_IDX" address $MAC_XB type veth peer name yb netns $NSY &&
	ip -n $NSX link set xa up && ip -n $NSX link set xb up &&
	ip -n $NSX addr add $IP_XA/24 dev xa && ip -n $NSX addr add $IP_XB/24 dev xb &&
	ip -n $NSY link set ya up && ip -n $NSY link set yb up &&
	ip -n $NSY addr add $IP_YA/24 dev ya && ip -n $NSY addr add $IP_YB/24 dev yb &&
	ip -n $NSY neigh add $IP_XA lladdr $MAC_XA dev ya nud permanent &&
	ip -n $NSY neigh add $IP_XB lladdr $MAC_XB dev yb nud permanent &&
	nsq $NSX iptables -A INPUT -p udp --dport 9 -j DROP
}
topo_drops || { tf_fail "topology" "cannot build the test topology"; tf_finish; }
tf_ok "topology: two VM namespaces on a bridge, MASQUERADE router, internet, and two more namespaces"

bg_start ECHO "$OUT/echo.log" ip netns exec $NSI python3 "$TFNAT" udp-echo 4 7000 7001 7002 7003 7004 ||
	{ tf_fail "UDP echo server" "did not start"; tf_finish; }

# traffic NAME EXPECTED NS tfnat.py/tfdrops.py ARGS...: a scripted exchange and what it printed.
traffic() {
	local name=$1 want=$2 ns=$3 tool=$TFNAT
	shift 3
	[ "$1" == send ] || [ "$1" == spray ] || [ "$1" == icmp ] && tool=$TFDROPS
	tf_eq "traffic: $name" "$want" "$(ip netns exec "$ns" python3 "$tool" "$@")"
}

# tfr_start NAME [ENV=VAL] ARGS...: tapflow in the router namespace, in
# the background; output in $OUT/NAME.{out,err}, pid in TF_PID.
tfr_start() {
	local name=$1; shift
	local -a env=()
	while [[ $1 == *=* ]]; do env+=("$1"); shift; done
	env "${env[@]}" "$TAPFLOW" --netns "$NSR" --no-libvirt --iface p1 --iface p2 --uplink up0 \
		"$@" >"$OUT/$name.out" 2>"$OUT/$name.err" &
	TF_PID=$!
	tf_on_exit "kill_job $TF_PID"
}

# kfree_progs PID: the programs of the kfree_skb tracepoint links that
# process PID holds, "link_id prog_id" per line (from /proc/PID/fdinfo).
kfree_progs() {
	local f
	for f in /proc/"$1"/fdinfo/*; do
		grep -qx 'tp_name:[[:space:]]*kfree_skb' "$f" 2>/dev/null || continue
		awk '$1 == "link_id:" { l = $2 } $1 == "prog_id:" { p = $2 } END { print l, p }' "$f"
	done
}
# all_prog_ids PID: every BPF program PID holds, as a program fd or through a link.
all_prog_ids() {
	local f
	for f in /proc/"$1"/fdinfo/*; do
		awk '$1 == "prog_id:" { print $2 }' "$f" 2>/dev/null
	done | sort -u
}
# is WANT CMD...: CMD prints WANT (for wait_for, which runs CMD again each time).
is() { [ "$("${@:2}")" == "$1" ]; }
has_kfree() { [ -n "$(kfree_progs "$1")" ]; }
# ready NAME PID: tapflow PID has attached its 3 interfaces and its drop tracer.
ready() {
	wait_attached "$2" 3 && wait_for 10 has_kfree "$2" ||
		tf_diag "$1: not attached: $(cat "$OUT/$1.err")"
}
# bg_stop PID: end a helper process of bg_start.
bg_stop() { kill "$1" 2>/dev/null; wait "$1" 2>/dev/null; }

no_stderr() {
	if [ -s "$2" ]; then tf_fail "$1: nothing on stderr" "$(head -5 "$2")"
	else tf_ok "$1: nothing on stderr"; fi
}

# ipt NS TABLE CHAIN MATCH: "packets bytes" of the rule whose line has MATCH.
ipt() {
	ip netns exec "$1" iptables -t "$2" -L "$3" -v -x -n |
		awk -v m="$4" 'index($0, m) { print $1, $2 }'
}
ipt_packets() { ipt "$@" | cut -d' ' -f1; }

# The endpoints of a record, in either view: "a:port b:port" sorted.
ENDS='([("\(.local_ip):\(.local_port)"), ("\(.remote_ip):\(.remote_port)")] | sort | join(" "))'
ends() { printf '%s\n' "$1:$2" "$3:$4" | sort | tr '\n' ' ' | sed 's/ $//'; }

# drop FILE COND EXPR: EXPR of the final drop record(s) matching COND.
drop() {
	jq -r "select(.type == \"drop\" and .final) | select($2) | $3" "$1"
}
# row FILE IFNAME REASON DEV: the final drop record of IFNAME for REASON at
# DEV, as "count attributed_by proto family | endpoints".
row() {
	drop "$1" ".ifname == \"$2\" and .reason == \"$3\" and .dev == \"$4\"" \
		'"\(.count) \(.attributed_by) \(.proto) \(.family) | "'" + $ENDS"
}
# reason_value NAME: the value of SKB_DROP_REASON_NAME in the kernel's BTF ("" if none).
reason_value() { awk -v n="$1" '$1 == n { print $2 }' <<<"$REASONS"; }
# check_reason NAME FILE COND: the record(s) matching COND say the kernel's
# name and number of reason NAME.
check_reason() {
	local want
	want=$(reason_value "$1")
	if [ -z "$want" ]; then
		tf_skip "reason $1" "this kernel has no SKB_DROP_REASON_$1"
		return
	fi
	tf_eq "reason $1 (value $want in the kernel's BTF): name and reason_code" "$1 $want" \
		"$(drop "$2" "$3 and .reason == \"$1\"" '"\(.reason) \(.reason_code)"')"
}
# check_location NAME LOCATION SYMBOL...: LOCATION is inside one of SYMBOL (kallsyms).
check_location() {
	local name=$1 loc=$2 out
	shift 2
	out=$(python3 "$TFDROPS" ksym "$loc" "$@")
	if [ $? -eq 0 ]; then tf_ok "$name: location $loc is in ${out#ok }"
	else tf_fail "$name: location in $*" "$loc: $out"; fi
}

# =============================================================================
# 1. Every cause of drop, one run: drops (JSON, the table, the raw_tp
#    fallback), flows and stats at the same time
# =============================================================================
# VM 1's UDP to port 7001 is dropped in FORWARD (VM 2's passes); every 3rd
# reply from port 7003 (to VM 2) is dropped in FORWARD, after de-NAT; every
# 2nd reply from port 7002 (to VM 1) in raw PREROUTING, before conntrack,
# with the outside (SNATed) destination.
nsq $NSR iptables -A FORWARD -i br0 -s $IP_V1 -p udp --dport 7001 -j DROP &&
nsq $NSR iptables -A FORWARD -i up0 -o br0 -p udp --sport 7003 \
	-m statistic --mode nth --every 3 --packet 2 -j DROP &&
nsq $NSR iptables -t raw -A PREROUTING -i up0 -p udp --sport 7002 \
	-m statistic --mode nth --every 2 --packet 1 -j DROP ||
	tf_fail "iptables rules" "cannot add the drop rules"

tfr_start main --json drops -i 1
MAIN=$TF_PID
tfr_start table drops -i 1
TABLE=$TF_PID
tfr_start raw TAPFLOW_DROPS_HOOK=raw_tp --json drops -i 1
RAW=$TF_PID
tfr_start flows --json flows -i 1
FLOWS=$TF_PID
tfr_start stats --json stats -i 1
STATS=$TF_PID
for x in main:$MAIN table:$TABLE raw:$RAW flows:$FLOWS stats:$STATS; do
	ready "${x%%:*}" "${x#*:}"
done

# (a) FORWARD DROP on VM 1's flow: 7 datagrams, none comes back; VM 2's 5 pass.
traffic "VM 1 UDP 40000 -> 7001, 7 dropped in FORWARD" 0/7 \
	$NSV1 udp $IP_V1 40000 $IP_IN 7001 7 100 0
traffic "VM 2 UDP 40000 -> 7001, 5 echoes (not dropped)" 5/5 \
	$NSV2 udp $IP_V2 40000 $IP_IN 7001 5 100
# (b) TTL 1: expires in the router's forwarding.
traffic "VM 1 UDP 40001 -> 7000 with TTL 1, 4" "sent 4 failed 0" \
	$NSV1 send $IP_V1 40001 $IP_IN 7000 4 100 1
# (c) No route (the throw route).
traffic "VM 1 UDP 40002 -> $IP_NOROUTE:9 (no route), 5" "sent 5 failed 0" \
	$NSV1 send $IP_V1 40002 $IP_NOROUTE 9 5 100
# (d) Another tc program on p2: drops VM 2's UDP to port 7010 as it
#     arrives (p2's ingress) and the replies from port 7004 as they leave
#     to VM 2 (p2's egress). Attached after tapflow's programs: tapflow
#     sees the packets, the other program drops them.
bg_start DROP_IN "$OUT/tc-in.log" ip netns exec $NSR python3 "$TFDROPS" tc-drop p2 ingress dport 7010 &&
bg_start DROP_EG "$OUT/tc-eg.log" ip netns exec $NSR python3 "$TFDROPS" tc-drop p2 egress sport 7004 ||
	tf_fail "tc programs" "cannot attach the dropping programs to p2"
tf_diag "p2's TCX programs: $(ip netns exec $NSR python3 "$TFNET" tcx p2 | awk '{ print $1 ":" $3 }' | tr '\n' ' ')"
traffic "VM 2 UDP 40010 -> 7010, 6 (dropped by tc on p2's ingress)" "sent 6 failed 0" \
	$NSV2 send $IP_V2 40010 $IP_IN 7010 6 100
traffic "VM 2 UDP 40011 -> 7004, 6 (echoes dropped by tc on p2's egress)" 0/6 \
	$NSV2 udp $IP_V2 40011 $IP_IN 7004 6 100 0
# (e) A full qdisc: pfifo with room for no packet on p1, which the internet
#     sends 4 routed datagrams to VM 1 through.
qdisc_drops() { tc -n $NSR -s -j qdisc show dev p1 | jq '[.[] | select(.kind == "pfifo") | .drops] | add // 0'; }
tc -n $NSR qdisc replace dev p1 root pfifo limit 0 || tf_fail "qdisc" "cannot add pfifo limit 0 to p1"
traffic "internet UDP 5000 -> VM 1:7777 (routed), 4 (p1's qdisc is full)" "sent 4 failed 0" \
	$NSI send $IP_IN 5000 $IP_V1 7777 4 100
wait_for 5 is 4 qdisc_drops
QDISC=$(qdisc_drops)
tc -n $NSR qdisc del dev p1 root
# (f) Replies dropped on the uplink side.
traffic "VM 2 UDP 40002 -> 7003, every 3rd echo dropped in FORWARD" 6/9 \
	$NSV2 udp $IP_V2 40002 $IP_IN 7003 9 100 6
traffic "VM 1 UDP 40005 -> 7002, every 2nd echo dropped in raw PREROUTING" 4/8 \
	$NSV1 udp $IP_V1 40005 $IP_IN 7002 8 100 4
wait_for 5 is 3 ipt_packets $NSR filter FORWARD 'spt:7003'
wait_for 5 is 4 ipt_packets $NSR raw PREROUTING 'spt:7002'
FWD=$(ipt $NSR filter FORWARD 'dpt:7001')
FWD_REPLY=$(ipt $NSR filter FORWARD 'spt:7003')
RAW_REPLY=$(ipt $NSR raw PREROUTING 'spt:7002')
tf_diag "kernel: FORWARD dpt:7001 $FWD, FORWARD spt:7003 $FWD_REPLY," \
	"raw PREROUTING spt:7002 $RAW_REPLY (packets bytes), p1's pfifo dropped $QDISC"
tf_eq "setup: the kernel dropped 7, 3 and 4 packets by rule, 4 in the qdisc" "7 3 4 4" \
	"${FWD%% *} ${FWD_REPLY%% *} ${RAW_REPLY%% *} $QDISC"

for x in main:$MAIN table:$TABLE raw:$RAW flows:$FLOWS stats:$STATS; do
	tf_stop "${x#*:}" INT
	tf_eq "${x%%:*}: exit code" 0 "$RC"
	no_stderr "${x%%:*}" "$OUT/${x%%:*}.err"
done
bg_stop "$DROP_IN"; bg_stop "$DROP_EG"
M=$OUT/main.out

# --- (a) the FORWARD DROP rule ---
tf_eq "FORWARD: p1's NETFILTER_DROP at br0: count = the rule's counter, by its flow" \
	"${FWD% *} flow udp 4 | $(ends $IP_IN 7001 $IP_V1 40000)" "$(row $M p1 NETFILTER_DROP br0)"
tf_eq "FORWARD: bytes = the rule's byte counter (skb->len there: the IP packet)" "${FWD#* }" \
	"$(drop $M '.ifname == "p1" and .reason == "NETFILTER_DROP" and .dev == "br0"' .bytes)"
check_reason NETFILTER_DROP $M '.ifname == "p1" and .dev == "br0"'
check_location "FORWARD" "$(drop $M '.ifname == "p1" and .dev == "br0" and .reason == "NETFILTER_DROP"' .location)" \
	nf_hook_slow nft_do_chain ipt_do_table
tf_eq "FORWARD: dropped on br0, came in on br0 (the bridge passed it up), flow known" "br0 br0 true null" \
	"$(drop $M '.ifname == "p1" and .reason == "NETFILTER_DROP" and .dev == "br0"' \
		'"\(.dev) \(.in_dev) \(.flow_known) \(.vm)"')"
tf_eq "FORWARD: VM 2's packets to 7001 passed: no drop of p2's at br0" "" \
	"$(drop $M '.ifname == "p2" and .dev == "br0"' .reason)"
# An --iface interface's records are in its own view (rx = received: what
# the VM sent), as its flow record in flows says; compare the two.
tf_eq "FORWARD: the drop's direction and endpoints are those of its flow record, p1's own view (tapflow bug: drop records of --iface interfaces are in the VM's view, tx, while their flow records and design.md's --iface rule use the interface's own: rx)" \
	"$(jq -r --arg v $IP_V1 'select(.type == "flow" and .final and .ifname == "p1" and
		.remote_ip == $v and .remote_port == 40000 and .local_port == 7001) |
		"\(if .rx_packets > 0 then "rx" else "tx" end) \(.local_ip):\(.local_port) \(.remote_ip):\(.remote_port)"' \
		$OUT/flows.out)" \
	"$(drop $M '.ifname == "p1" and .reason == "NETFILTER_DROP" and .dev == "br0"' \
		'"\(.direction) \(.local_ip):\(.local_port) \(.remote_ip):\(.remote_port)"')"

# --- (b) TTL, (c) no route ---
tf_eq "TTL 1: p1's IP_INHDR at br0, 4, by its flow" \
	"4 flow udp 4 | $(ends $IP_IN 7000 $IP_V1 40001)" "$(row $M p1 IP_INHDR br0)"
check_reason IP_INHDR $M '.ifname == "p1" and .dev == "br0"'
check_location "TTL 1" "$(drop $M '.ifname == "p1" and .reason == "IP_INHDR"' .location)" ip_forward
tf_eq "no route: p1's IP_INNOROUTES at br0, 5, by its flow" \
	"5 flow udp 4 | $(ends $IP_NOROUTE 9 $IP_V1 40002)" "$(row $M p1 IP_INNOROUTES br0)"
check_reason IP_INNOROUTES $M '.ifname == "p1" and .dev == "br0"'
check_location "no route" "$(drop $M '.ifname == "p1" and .reason == "IP_INNOROUTES"' .location)" ip_error

# --- (d) another tc program ---
tf_eq "tc ingress: p2's TC_INGRESS at p2, 6, by its flow" \
	"6 flow udp 4 | $(ends $IP_IN 7010 $IP_V2 40010)" "$(row $M p2 TC_INGRESS p2)"
check_reason TC_INGRESS $M '.ifname == "p2" and .dev == "p2"'
tf_eq "tc egress: p2's TC_EGRESS at p2, 6, by its flow" \
	"6 flow udp 4 | $(ends $IP_IN 7004 $IP_V2 40011)" "$(row $M p2 TC_EGRESS p2)"
check_reason TC_EGRESS $M '.ifname == "p2" and .dev == "p2"'

# --- (e) the full qdisc ---
tf_eq "full qdisc: p1's QDISC_DROP at p1: count = the qdisc's drops, by its flow" \
	"$QDISC flow udp 4 | $(ends $IP_IN 5000 $IP_V1 7777)" "$(row $M p1 QDISC_DROP p1)"
check_reason QDISC_DROP $M '.ifname == "p1" and .dev == "p1"'

# --- (f) replies dropped on the uplink side ---
# FORWARD runs after de-NAT: the reply has VM 2's own address, its flow.
tf_eq "reply in FORWARD: p2's NETFILTER_DROP at up0: count and bytes = the rule's counters, VM 2's flow" \
	"${FWD_REPLY% *} ${FWD_REPLY#* } udp 4 | $(ends $IP_IN 7003 $IP_V2 40002)" \
	"$(drop $M '.ifname == "p2" and .reason == "NETFILTER_DROP" and .dev == "up0"' \
		'"\(.count) \(.bytes) \(.proto) \(.family) | "'" + $ENDS")"
tf_check "reply in FORWARD: attributed by the flow or the NAT join" \
	grep -qxE 'flow|nat' <<<"$(drop $M '.ifname == "p2" and .dev == "up0"' .attributed_by)"
# raw PREROUTING: before conntrack, the reply still goes to the uplink's
# address and NAT port: only the NAT join knows it is VM 1's.
tf_eq "reply in raw PREROUTING (before de-NAT): p1's NETFILTER_DROP at up0: count and bytes = the rule's counters, by the NAT join, VM 1's flow" \
	"${RAW_REPLY% *} ${RAW_REPLY#* } nat udp 4 | $(ends $IP_IN 7002 $IP_V1 40005)" \
	"$(drop $M '.ifname == "p1" and .reason == "NETFILTER_DROP" and .dev == "up0"' \
		'"\(.count) \(.bytes) \(.attributed_by) \(.proto) \(.family) | "'" + $ENDS")"

# Bytes are skb->len where the packet was dropped: the IP packet (128 B:
# 100 B of payload) in the IP layer, the frame (142 B) where the Ethernet
# header is still pushed (TC egress, qdisc). Never anything else.
tf_eq "bytes: every record's bytes = count x 128 or count x 142" "" \
	"$(drop $M '.bytes != .count * 128 and .bytes != .count * 142' '"\(.ifname) \(.reason) \(.count) \(.bytes)"')"

# --- per interface, the summary ---
tf_eq "p1: 7 + 4 + 5 + $QDISC + 4 drops in 5 records, p2: 6 + 6 + 3 in 3, no host record" \
	"p1 $((20 + QDISC)) 5 p2 15 3 host 0 0" \
	"$(jq -rs '[.[] | select(.type == "drop" and .final)] as $d | ["p1", "p2"] |
		map(. as $i | [$d[] | select(.ifname == $i)] | "\($i) \(map(.count) | add) \(length)") +
		[[$d[] | select(.aggregate == "host")] | "host \(map(.count) | add // 0) \(length)"] |
		join(" ")' $M)"
tf_eq "summary: drops, host_drops, nothing lost" "tp_btf/kfree_skb $((35 + QDISC)) 0 0 0 0" \
	"$(tail -n1 $M | jq -r '"\(.drops_hook) \(.drops) \(.host_drops) \(.drop_map_full) \(.drop_events_lost) \(.drop_harvest_races)"')"
tf_eq "every record has the VM fields null (--iface), a location and the final flag" "" \
	"$(drop $M '.vm != null or .aggregate != null or (.location | test("^[A-Za-z_.0-9]+\\+0x[0-9a-f]+$") | not)' .ifname)"

# --- the raw_tp fallback: the same records ---
DROPROW='"\(.ifname) \(.reason) \(.reason_code) \(.location) \(.dev) \(.in_dev) \(.count) \(.bytes) \(.attributed_by) " + '"$ENDS"
tf_eq "raw_tp fallback: summary says raw_tp/kfree_skb, same totals" \
	"raw_tp/kfree_skb $(tail -n1 $M | jq -r '"\(.drops) \(.host_drops)"')" \
	"$(tail -n1 $OUT/raw.out | jq -r '"\(.drops_hook) \(.drops) \(.host_drops)"')"
tf_eq "raw_tp fallback: the same drop records as tp_btf" \
	"$(drop $M true "$DROPROW" | sort)" "$(drop $OUT/raw.out true "$DROPROW" | sort)"

# --- flows: the per-flow drops, the same counts ---
# Per interface and flow (endpoints): the drops of drops' records, and
# flows' drops field for each flow with a drop.
tf_eq "flows: each flow's drops = the drops records of that flow" \
	"$(jq -rs '[.[] | select(.type == "drop" and .final and .flow_known)] |
		group_by([.ifname, '"$ENDS"']) |
		map("\(.[0].ifname) \(.[0] | '"$ENDS"') \(map(.count) | add)") | .[]' $M | sort)" \
	"$(jq -r 'select(.type == "flow" and .final and .aggregate == null and .drops > 0) |
		"\(.ifname) \('"$ENDS"') \(.drops)"' $OUT/flows.out | sort)"
tf_eq "flows: the FORWARD-dropped flow of p1 has drops = the rule's counter" "${FWD%% *}" \
	"$(jq -r --arg v $IP_V1 'select(.type == "flow" and .final and .ifname == "p1" and
		.remote_ip == $v and .remote_port == 40000 and .local_port == 7001) | .drops' $OUT/flows.out)"
tf_eq "flows: aggregate rows' drops are null, no flow of up0" "" \
	"$(jq -r 'select(.type == "flow" and ((.aggregate != null and .drops != null) or .ifname == "up0")) | .ifname' \
		$OUT/flows.out | head -1)"

# --- stats: per interface ---
# stats has no flow table: for an --iface interface it counts the drops of
# the device rule (dropped on it, or came in on it); for the uplink, the
# drops on the device (README). The drops at br0 and the FORWARD reply at
# up0 are the flows'/drops' only.
stats_drops() { jq -r --arg i "$2" 'select(.type == "stats" and .final and .ifname == $i) | .drops' "$1"; }
tf_eq "stats: p1's drops = its drops on p1 itself (the full qdisc)" \
	"$(drop $M '.ifname == "p1" and (.dev == "p1" or .in_dev == "p1")' .count | awk '{ s += $1 } END { print s + 0 }')" \
	"$(stats_drops $OUT/stats.out p1)"
tf_eq "stats: p2's drops = its drops on p2 itself (tc ingress and egress)" \
	"$(drop $M '.ifname == "p2" and (.dev == "p2" or .in_dev == "p2")' .count | awk '{ s += $1 } END { print s + 0 }')" \
	"$(stats_drops $OUT/stats.out p2)"
tf_eq "stats: up0's drops = the drops on up0 (both reply rules)" \
	"$((${FWD_REPLY%% *} + ${RAW_REPLY%% *}))" "$(stats_drops $OUT/stats.out up0)"

# --- the table ---
T=$OUT/table.out
tf_check "table: header" grep -qE '^VM +IFACE +DROPPED AT +REASON +LOCATION +COUNT +LAST DROPPED PACKET$' $T
tf_check "table: p1's FORWARD row: reason, location, count ${FWD%% *}" grep -qE \
	"^- +p1 +br0 +NETFILTER_DROP +(nf_hook_slow|nft_do_chain|ipt_do_table)\+0x[0-9a-f]+ +${FWD%% *}  " \
	<(sed -n '/^final report/,$p' $T)
tf_check "table: the summary line" grep -qx \
	"drops: $((35 + QDISC)) of VMs' packets, 0 of the host's (tp_btf/kfree_skb)" $T

# =============================================================================
# 2. --events=2: a burst of drops, rate-limited
# =============================================================================
tfr_start rate --json drops --events=2
RATE=$TF_PID
ready rate $RATE
BEFORE=$(ipt_packets $NSR filter FORWARD 'dpt:7001')
traffic "VM 1 UDP 40030 -> 7001, a burst of 40 dropped in FORWARD" "sent 40 failed 0" \
	$NSV1 send $IP_V1 40030 $IP_IN 7001 40 100
wait_for 5 is $((BEFORE + 40)) ipt_packets $NSR filter FORWARD 'dpt:7001'
tf_stop $RATE INT
tf_eq "rate: exit code" 0 "$RC"
no_stderr rate "$OUT/rate.err"
read -r R_DROPS R_SUPP R_LOST < <(tail -n1 $OUT/rate.out | jq -r '"\(.drops) \(.drop_events_suppressed) \(.drop_events_lost)"')
R_EVENTS=$(jq -r 'select(.type == "drop_event")' $OUT/rate.out | jq -s length)
tf_diag "rate: $R_DROPS drops, $R_EVENTS events, $R_SUPP suppressed, $R_LOST lost"
tf_eq "rate: drops = the rule's counter increase" 40 "$R_DROPS"
tf_eq "rate: events + suppressed = drops, none lost" "40 0" "$((R_EVENTS + R_SUPP)) $R_LOST"
tf_check "rate: some events delivered ($R_EVENTS), some suppressed ($R_SUPP)" \
	test "$R_EVENTS" -ge 1 -a "$R_SUPP" -ge 1
out=$(python3 "$TFDROPS" rate $OUT/rate.out 2)
tf_check "rate: at most 2 events per second window ($out)" test "${out%% *}" == ok
tf_eq "rate: every event is p1's NETFILTER_DROP of the flow, as the drop record (tapflow bug: events are attributed with the flow table of the last poll, so the drops of a flow newer than it are no VM's: ifname null on --iface interfaces)" "p1 NETFILTER_DROP $(ends $IP_V1 40030 $IP_IN 7001)" \
	"$(jq -r 'select(.type == "drop_event") | "\(.ifname) \(.reason) " + '"$ENDS" $OUT/rate.out | sort -u)"

# =============================================================================
# 3. No drop rule in the way: no drop at all; --no-drops; the tracer's program
# =============================================================================
tfr_start quiet --json drops
QUIET=$TF_PID
tfr_start nodrops_flows --json flows --no-drops
NDF=$TF_PID
tfr_start nodrops_stats --json stats --no-drops
NDS=$TF_PID
ready quiet $QUIET
wait_attached $NDF 3 && wait_attached $NDS 3 || tf_diag "--no-drops: not attached"
traffic "quiet: VM 1 UDP 40100 -> 7000, 10 echoes" 10/10 $NSV1 udp $IP_V1 40100 $IP_IN 7000 10 100
traffic "quiet: VM 2 ping id 4242, 5" 5/5 $NSV2 ping $IP_IN 5 56 4242
traffic "quiet: VM 1 ping the router, 3" 3/3 $NSV1 ping $IP_GW 3 56 4243
# The drop tracer's program and link, by process (bpftool lists no pids here).
read -r Q_LINK Q_PROG < <(kfree_progs $QUIET)
tf_eq "quiet: tapflow holds a kfree_skb link whose program is tf_kfree_skb (bpftool link/prog)" \
	"raw_tracepoint kfree_skb $Q_PROG tf_kfree_skb" \
	"$(bpftool -j link show id "${Q_LINK:-0}" 2>/dev/null | jq -r '"\(.type) \(.tp_name) \(.prog_id)"') $(
	  bpftool -j prog show id "${Q_PROG:-0}" 2>/dev/null | jq -r .name)"
# Every tf_kfree_skb program loaded now, and whether a --no-drops run holds one.
KFREE=$(bpftool -j prog show | jq -r '.[] | select(.name | startswith("tf_kfree_skb")) | .id' | sort -u)
tf_check "quiet: bpftool prog lists the tracer's program" grep -qx "$Q_PROG" <<<"$KFREE"
for x in flows:$NDF stats:$NDS; do
	tf_eq "--no-drops ${x%%:*}: no kfree_skb link, none of its programs is a tf_kfree_skb" "0 " \
		"$(kfree_progs ${x#*:} | grep -c .) $(comm -12 <(all_prog_ids ${x#*:}) <(echo "$KFREE") | tr '\n' ' ')"
done
tf_check "--no-drops: its tap programs are attached (it runs)" \
	test "$(all_prog_ids $NDF | grep -c .)" -ge 4
for x in quiet:$QUIET nodrops_flows:$NDF nodrops_stats:$NDS; do
	tf_stop "${x#*:}" INT
	tf_eq "${x%%:*}: exit code" 0 "$RC"
	no_stderr "${x%%:*}" "$OUT/${x%%:*}.err"
done
tf_eq "quiet: no drop record, summary: 0 VM drops, 0 host drops" "0 | 0 0 0" \
	"$(jq -r 'select(.type == "drop")' $OUT/quiet.out | jq -s length) | $(
	  tail -n1 $OUT/quiet.out | jq -r '"\(.drops) \(.host_drops) \(.drop_map_full)"')"
tf_eq "quiet: the traffic was there (flows --no-drops: 10 echoes of VM 1's UDP)" "10 10" \
	"$(jq -r --arg v $IP_V1 'select(.type == "flow" and .final and .ifname == "p1" and
		.remote_ip == $v and .remote_port == 40100) | "\(.rx_packets) \(.tx_packets)"' $OUT/nodrops_flows.out)"
tf_eq "--no-drops flows: every drops field null, no DROPS in the summary" "0 null null" \
	"$(jq -r 'select(.type == "flow" and .drops != null)' $OUT/nodrops_flows.out | jq -s length) $(
	  tail -n1 $OUT/nodrops_flows.out | jq -r '"\(.drops_hook) \(.drops)"')"
tf_eq "--no-drops stats: drops null for every interface" "p1 null p2 null up0 null" \
	"$(jq -r 'select(.type == "stats" and .final) | "\(.ifname) \(.drops)"' $OUT/nodrops_stats.out |
		sort | tr '\n' ' ' | sed 's/ $//')"

# =============================================================================
# 4. No VM's drops: the host aggregate; drops in another namespace with the
#    traced ifindexes; --events under the rate
# =============================================================================
# The router's own UDP to port 9999 is dropped on its way out; VM 2's
# echo replies before conntrack (before de-NAT).
nsq $NSR iptables -t mangle -A POSTROUTING -o up0 -p udp --dport 9999 -j DROP &&
nsq $NSR iptables -t raw -A PREROUTING -i up0 -p icmp --icmp-type echo-reply -j DROP ||
	tf_fail "iptables rules" "cannot add the mangle and raw rules"
tf_eq "setup: xa has p1's ifindex, xb up0's" "$P1_IDX $UP_IDX" \
	"$(ip -n $NSX -j link show xa | jq '.[0].ifindex') $(ip -n $NSX -j link show xb | jq '.[0].ifindex')"
tfr_start host --json drops --events
HOST=$TF_PID
tfr_start host_flows --json flows
HOSTF=$TF_PID
ready host $HOST
ready host_flows $HOSTF
# The internet sends into the router's throw route; the router's own
# packets to port 9999 are dropped on their way out of up0 (each send fails
# with EPERM: the packet was made and dropped).
traffic "internet UDP 5002 -> $IP_HOSTNR:9 (no route), 6" "sent 6 failed 0" \
	$NSI send $IP_IN 5002 $IP_HOSTNR 9 6 100
traffic "router UDP 5003 -> 9999 (mangle POSTROUTING drop), 4" "sent 4 failed 4" \
	$NSR send $IP_UP 5003 $IP_IN 9999 4 100
# And VM 1's UDP in FORWARD (the rule of part 1), VM 2's echo replies.
traffic "VM 1 UDP 40200 -> 7001, 3 dropped in FORWARD" "sent 3 failed 0" \
	$NSV1 send $IP_V1 40200 $IP_IN 7001 3 100
traffic "VM 2 ICMP echo id 4660, 3 (replies dropped in raw PREROUTING)" "sent 3" \
	$NSV2 icmp $IP_IN 3 56 4660
# In $NSX, 5 + 5 packets dropped on xa and xb (INPUT DROP).
traffic "other namespace: to xa (p1's ifindex), 5" "sent 5 failed 0" $NSY send $IP_YA 5004 $IP_XA 9 5 100
traffic "other namespace: to xb (up0's ifindex), 5" "sent 5 failed 0" $NSY send $IP_YB 5005 $IP_XB 9 5 100
wait_for 5 is 10 ipt_packets $NSX filter INPUT 'dpt:9'
wait_for 5 is 3 ipt_packets $NSR raw PREROUTING 'icmptype 0'
tf_eq "setup: the other namespace dropped 10 packets, the router 4 in mangle POSTROUTING, 3 in raw" \
	"10 4 3" "$(ipt_packets $NSX filter INPUT 'dpt:9') $(ipt_packets $NSR mangle POSTROUTING 'dpt:9999'
	) $(ipt_packets $NSR raw PREROUTING 'icmptype 0')"
for x in host:$HOST host_flows:$HOSTF; do
	tf_stop "${x#*:}" INT
	tf_eq "${x%%:*}: exit code" 0 "$RC"
	no_stderr "${x%%:*}" "$OUT/${x%%:*}.err"
done
H=$OUT/host.out
HOSTROW='"\(.vm) \(.ifname) \(.reason) \(.count) \(.location) \(.dev) \(.attributed_by) \(.direction) \(.local_ip) \(.remote_ip) \(.flow_known)"'
tf_eq "host aggregate: one row per reason, no VM, no place, no flow" \
	"host null null IP_INNOROUTES 6 null null null null null null null
host null null NETFILTER_DROP 4 null null null null null null null" \
	"$(drop $H '.ifname == null' '"\(.aggregate) " + '"$HOSTROW" | sort)"
tf_eq "host: VM 1's 3 drops are its own, not the host's" \
	"p1 NETFILTER_DROP 3 flow | $(ends $IP_V1 40200 $IP_IN 7001)" \
	"$(drop $H '.ifname == "p1"' '"\(.ifname) \(.reason) \(.count) \(.attributed_by) | " + '"$ENDS")"
check_reason IP_INNOROUTES $H '.aggregate == "host"'
tf_eq "ICMP echo replies before de-NAT: p2's NETFILTER_DROP at up0, by the NAT join, VM 2's echo flow" \
	"3 nat icmp 4 | $(ends $IP_IN null $IP_V2 null)" "$(row $H p2 NETFILTER_DROP up0)"
tf_eq "ICMP: the drop record's flow is VM 2's echo flow in flows (id 4660), which has the 3 drops" \
	"icmp 8 4660 3" \
	"$(jq -r --arg v $IP_V2 'select(.type == "flow" and .final and .ifname == "p2" and
		.proto == "icmp" and .remote_ip == $v) | "\(.proto) \(.icmp_type) \(.icmp_id) \(.drops)"' \
		$OUT/host_flows.out)"
tf_eq "host: summary: 6 VM drops, 10 host drops (none of the other namespace's)" "6 10 0" \
	"$(tail -n1 $H | jq -r '"\(.drops) \(.host_drops) \(.drop_events_suppressed)"')"
tf_eq "host: flows: only the VMs' flows have drops, the host's are on none" \
	"p1 3 $(ends $IP_V1 40200 $IP_IN 7001)
p2 3 $(ends $IP_V2 null $IP_IN null)" \
	"$(jq -r 'select(.type == "flow" and .final and (.drops // 0) > 0) |
		"\(.ifname) \(.drops) " + '"$ENDS" $OUT/host_flows.out | sort)"
tf_eq "events (under the rate): one drop_event per drop (VM 1's at br0, the host's at up0)" \
	"3 NETFILTER_DROP br0 udp
3 NETFILTER_DROP up0 icmp
4 NETFILTER_DROP up0 udp
6 IP_INNOROUTES up0 udp" \
	"$(jq -r 'select(.type == "drop_event") | "\(.reason) \(.dev) \(.proto)"' $H |
		sort | uniq -c | sed 's/^ *//' | sort)"
tf_eq "events: the host's have no VM" "10 null null" \
	"$(jq -r 'select(.type == "drop_event" and .dev == "up0" and .proto == "udp") | "\(.vm) \(.ifname)"' $H |
		sort | uniq -c | sed 's/^ *//')"
tf_eq "events: not counted as suppressed or lost" "0 0" \
	"$(tail -n1 $H | jq -r '"\(.drop_events_suppressed) \(.drop_events_lost)"')"

# =============================================================================
# 5. First and last seen: kept in kernel ticks (CONFIG_HZ) from a precise
#    clock reading, so last_seen - first_seen is the time between the
#    drops to the tick
# =============================================================================
nsq $NSR iptables -A FORWARD -i br0 -s $IP_V2 -p udp --dport 7005 -j DROP ||
	tf_fail "iptables rules" "cannot add the 7005 rule"
tfr_start seen --json drops -i 1
SEEN=$TF_PID
ready seen $SEEN
T0=$(date +%s.%N)
traffic "seen: VM 2 UDP 40030 -> 7005, 1 dropped" "sent 1 failed 0" $NSV2 send $IP_V2 40030 $IP_IN 7005 1 100
# Under one poll apart (-i 1): the second drop is counted into the same kernel entry.
sleep 0.6
traffic "seen: again 0.6 s later, 1 dropped" "sent 1 failed 0" $NSV2 send $IP_V2 40030 $IP_IN 7005 1 100
T1=$(date +%s.%N)
wait_for 5 is 2 ipt_packets $NSR filter FORWARD 'dpt:7005'
tf_stop $SEEN INT
tf_eq "seen: exit code" 0 "$RC"
no_stderr seen "$OUT/seen.err"
# first_seen inside the sends' window; last - first >= the 0.6 s slept (a
# tick's rounding allowed) and within the window.
tf_eq "seen: one record of 2 drops, first_seen in the sends' window, last - first in [0.59 s, the window]" \
	"2 true true" \
	"$(jq -rs --argjson t0 "$T0" --argjson t1 "$T1" '
		def t: sub("\\.[0-9]+Z$"; "Z") as $s | (capture("\\.(?<f>[0-9]+)Z$").f // "0") as $f |
			($s | fromdateiso8601) + ("0." + $f | tonumber);
		[.[] | select(.type == "drop" and .final and .ifname == "p2" and .reason == "NETFILTER_DROP" and (.local_port == 40030 or .remote_port == 40030))] |
		"\(map(.count) | add) \(.[0].first_seen | t | . >= $t0 - 0.002 and . <= $t1) \(
		  (.[0].last_seen | t) - (.[0].first_seen | t) | . >= 0.59 and . <= $t1 - $t0 + 0.002)"' \
		"$OUT/seen.out")"

# =============================================================================
# 6. The tracer's per-CPU cache: 40 flows whose drops interleave (each takes
#    a cache slot from another again and again), on each CPU in turn. Every
#    drop is counted once: in its flow (flows) and in the VM's record
#    (drops) = the rule's counter; and each poll empties the CPUs' slots,
#    so an interval record has them all while tapflow still runs.
# =============================================================================
nsq $NSR iptables -A FORWARD -i br0 -s $IP_V1 -p udp --dport 7006 -j DROP ||
	tf_fail "iptables rules" "cannot add the 7006 rule"
tfr_start spray --json drops -i 1
SPRAY=$TF_PID
tfr_start sprayflows --json flows -i 1
SPRAYFLOWS=$TF_PID
ready spray $SPRAY
ready sprayflows $SPRAYFLOWS
NCPU=$(nproc)
[ "$NCPU" -gt 2 ] && NCPU=2
for ((cpu = 0; cpu < NCPU; cpu++)); do
	tf_eq "spray: CPU $cpu: VM 1 UDP 20 ports from $((41000 + 20 * cpu)) -> 7006, 5 rounds, all dropped" \
		"sent 100 failed 0" "$(ip netns exec $NSV1 taskset -c $cpu python3 "$TFDROPS" spray \
			$IP_V1 $((41000 + 20 * cpu)) 20 $IP_IN 7006 5 100)"
done
SPRAYED=$((100 * NCPU))
wait_for 5 is $SPRAYED ipt_packets $NSR filter FORWARD 'dpt:7006'
spray_interval() {
	jq -r 'select(.type == "drop" and (.final | not) and .reason == "NETFILTER_DROP" and
		.ifname == "p1" and .local_port == 7006) | .count' "$OUT/spray.out" | tail -n1
}
# Two polls at most after the last drop: the running process has them all.
wait_for 4 is $SPRAYED spray_interval
tf_eq "spray: while tapflow runs, an interval record of p1 has all $SPRAYED drops (each poll empties the per-CPU slots)" \
	"$SPRAYED" "$(spray_interval)"
tf_stop $SPRAY INT
tf_eq "spray: exit code" 0 "$RC"
no_stderr spray "$OUT/spray.err"
tf_stop $SPRAYFLOWS INT
tf_eq "sprayflows: exit code" 0 "$RC"
no_stderr sprayflows "$OUT/sprayflows.err"
tf_eq "spray: the final record of p1's drops to 7006 = the rule's counter, nothing lost" \
	"$(ipt_packets $NSR filter FORWARD 'dpt:7006') 0" \
	"$(jq -rs '([.[] | select(.type == "drop" and .final and .ifname == "p1" and .local_port == 7006) | .count] | add) as $n |
		"\($n) \(.[-1].drop_map_full)"' "$OUT/spray.out")"
tf_eq "spray: flows: each of the $((20 * NCPU)) flows has exactly 5 drops" \
	"$((20 * NCPU)) x 5" \
	"$(jq -rs '[.[] | select(.type == "flow" and .final and .ifname == "p1" and .local_port == 7006 and
		.remote_port >= 41000 and .remote_port < 41040)] | "\(length) x \(map(.drops) | unique | map(tostring) | join(","))"' \
		"$OUT/sprayflows.out")"

tf_finish
