#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# End to end in the real libvirt lab: the NAT join of `tapflow flows`.
#
# Window 1, every guest's scripted traffic, with `flows` and `flows --no-nat`
# attached at the same time:
# - the NAT guests' (alpha, delta) HTTP, UDP and ping flows leave as the
#   uplink's address (read from the lab namespace) with the port or ICMP
#   identifier that conntrack shows for that connection, on the uplink (the
#   default route's interface); the uplink counted exactly what the tap
#   counted, each way, and nothing was lost; both guests send UDP from the
#   same source port to the same server, so MASQUERADE gives them different
#   ports, and each flow shows its own;
# - after each tap's flow rows one `fwd` record sums its forwarded flows;
# - beta (isolated) and gamma (bridged) are not forwarded: nat and uplink null;
# - --no-nat: no nat, no uplink counters, no fwd records, the same flows.
# Windows 2 and 3, a scripted loss: an iptables rule in the lab's FORWARD
# chain drops every second UDP datagram alpha sends to the echo server (then
# every second echo for delta); that flow, its fwd record and its table row
# show exactly the rule's packet counter as lost in forwarding that way (tx,
# then rx), the other guest's flow loses nothing. The rule is removed again.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"
. "$HERE/lab-env.sh"

tf_lab_begin e2e-nat
tf_need_tools "NAT join checks" conntrack iptables

labns() { ip netns exec "$TF_LAB_NS" "$@"; }

# The uplink is the lab namespace's default-route interface; NAT leaves as
# its address.
UPLINK=$(ip -n "$TF_LAB_NS" -j route show default | jq -r '.[0].dev // empty')
UPLINK_IP=$(ip -n "$TF_LAB_NS" -4 -j addr show dev "$UPLINK" | jq -r '.[0].addr_info[0].local // empty')
tf_check "lab: default route via an interface with an IPv4 address ($UPLINK $UPLINK_IP)" \
	test -n "$UPLINK" -a -n "$UPLINK_IP"
INET=$TF_LAB_INET_IP

NATVMS=() OTHERVMS=()
for vm in $TF_LAB_VMS; do
	v=TF_LAB_${vm^^}_MODE
	if [ "${!v}" = nat ]; then NATVMS+=("$vm"); else OTHERVMS+=("$vm"); fi
done
if [ ${#NATVMS[@]} -lt 2 ]; then
	tf_skip "NAT join checks" "needs two VMs on the NAT network (TF_LAB_VMS='$TF_LAB_VMS')"
	tf_finish
fi

tf --json list >"$TMP/list.json" 2>"$TMP/list.err"
tf_eq "list exits 0" 0 $?
declare -A TAP
for vm in $TF_LAB_VMS; do
	TAP[$vm]=$(jq -r --arg vm "$vm" 'select(.vm == $vm) | .ifname' "$TMP/list.json")
done

# ---------------------------------------------------------------- helpers

# rec FILE TAP FILTER: the final flow records (not aggregates) of TAP that
# match FILTER, one compact JSON object per line.
rec() {
	jq -c --arg t "$2" "select(.type == \"flow\" and .final and .aggregate == null and
		.ifname == \$t) | select($3)" "$1"
}
# fields REC JQ_STRING
fields() { jq -r "$2" <<<"$1"; }
TAPCNT='"\(.tx_packets) \(.tx_bytes) \(.rx_packets) \(.rx_bytes)"'
UPCNT='"\(.uplink_tx_packets) \(.uplink_tx_bytes) \(.uplink_rx_packets) \(.uplink_rx_bytes)"'
NATF='"\(.nat.ip) \(.nat.port) \(.nat.ifname) \(.nat.zone) \(.uplink)"'
LOST='"\(.fwd_lost_tx) \(.fwd_lost_rx)"'

# ct_reply FILE PROTO SRC DST SPORT|ID: from a `conntrack -L` listing, the
# entry whose original tuple is SRC -> DST with that source port (ICMP: echo
# request with that identifier): "REPLY_DST REPLY_DPORT|REPLY_ID ZONE", i.e.
# the address and port (identifier) the reply comes back to: the translation.
ct_reply() {
	awk -v p="$2" -v s="$3" -v d="$4" -v k="$5" '
	$1 == p {
		split("", n); split("", v)
		for (i = 2; i <= NF; i++)
			if (split($i, kv, "=") == 2) { n[kv[1]]++; v[kv[1] n[kv[1]]] = kv[2] }
		if (v["src1"] != s || v["dst1"] != d) next
		if (p == "icmp") {
			if (v["type1"] != 8 || v["id1"] != k) next
			port = v["id2"]
		} else {
			if (v["sport1"] != k) next
			port = v["dport2"]
		}
		print v["dst2"], port, (v["zone1"] == "" ? 0 : v["zone1"])
	}' "$1"
}

# one NAME RECS: RECS is exactly one record.
one() {
	local c
	c=$(grep -c . <<<"$2")
	[ "$c" -eq 1 ] && return 0
	tf_fail "$1: exactly one flow record" "found $c"
	return 1
}

# check_nat NAME REC CT_FILE PROTO VM_IP DST KEY: the flow's nat is the
# uplink's address with the port/identifier conntrack shows for it.
check_nat() {
	local name=$1 r=$2 ct ct_ip ct_port ct_zone
	ct=$(ct_reply "$3" "$4" "$5" "$6" "$7")
	if [ -z "$ct" ] || [ "$(grep -c . <<<"$ct")" -ne 1 ]; then
		tf_fail "$name: conntrack entry $4 $5 -> $6 ($7)" "found: '${ct}'"
		return
	fi
	read -r ct_ip ct_port ct_zone <<<"$ct"
	tf_eq "$name: conntrack translated it to the uplink's address" "$UPLINK_IP" "$ct_ip"
	tf_eq "$name: nat = $UPLINK_IP port $ct_port (conntrack), $UPLINK, zone $ct_zone; uplink $UPLINK" \
		"$UPLINK_IP $ct_port $UPLINK $ct_zone $UPLINK" "$(fields "$r" "$NATF")"
}

# check_up NAME REC: the uplink counted what the tap counted; nothing lost.
check_up() {
	tf_eq "$1: uplink counters = tap counters ($(fields "$2" "$TAPCNT"))" \
		"$(fields "$2" "$TAPCNT")" "$(fields "$2" "$UPCNT")"
	tf_eq "$1: fwd_lost_tx, fwd_lost_rx" "0 0" "$(fields "$2" "$LOST")"
}

# fwd_rec FILE TAP: the tap's final fwd record.
fwd_rec() {
	jq -c --arg t "$2" 'select(.type == "fwd" and .final and .ifname == $t)' "$1"
}

# fwd_order FILE: every tap's flow rows are followed by exactly one fwd record
# of that tap (in every report); prints the violations.
fwd_order() {
	jq -r 'select(.type == "flow" or .type == "fwd") | "\(.type) \(.ifname)"' "$1" | awk '
	$1 == "flow" {
		if (cur != "" && $2 != cur) print "flows of " $2 " after flows of " cur " without its fwd"
		cur = $2
	}
	$1 == "fwd" {
		if ($2 != cur) print "fwd of " $2 " not after its flow rows (" cur ")"
		cur = ""
	}
	END { if (cur != "") print "flows of " cur " not followed by a fwd record" }'
}

# ------------------------------------------------------------------ window 1
# Two instances over the same window (started directly: $! is tapflow).
"${TF[@]}" --json flows -i 1 >"$TMP/nat.json" 2>"$TMP/nat.err" &
pid_nat=$!
tf_on_exit "kill $pid_nat"
"${TF[@]}" --json flows --no-nat -i 1 >"$TMP/nonat.json" 2>"$TMP/nonat.err" &
pid_nonat=$!
tf_on_exit "kill $pid_nonat"
tf_wait_record "$TMP/nat.json" flow && tf_wait_record "$TMP/nonat.json" flow
tf_eq "flows and flows --no-nat attached" 0 $?

"$TF_LAB_SH" release $TF_LAB_VMS
"$TF_LAB_SH" wait-done $TF_LAB_VMS 180 >"$TMP/done1.txt"
tf_eq "guest scripts done" 0 $?
# The NAT decisions, while the entries exist (UDP and ICMP entries time out
# 30 s after their last packet, TCP stays in TIME_WAIT for 120 s).
labns conntrack -L -f ipv4 >"$TMP/ct1.txt" 2>"$TMP/ct1.err"
tf_eq "conntrack -L in $TF_LAB_NS" 0 $?
sed 's/^/# /' "$TMP/done1.txt"
sleep 1
kill -INT $pid_nat $pid_nonat
wait $pid_nat
tf_eq "flows exits 0 on SIGINT" 0 $?
wait $pid_nonat
tf_eq "flows --no-nat exits 0 on SIGINT" 0 $?
tf_eq "flows: nothing on stderr" "" "$(head -c 300 "$TMP/nat.err")"
tf_eq "flows --no-nat: nothing on stderr" "" "$(head -c 300 "$TMP/nonat.err")"
F=$TMP/nat.json

declare -A UDP_PORT ICMP_PORT
for vm in "${NATVMS[@]}"; do
	u=${vm^^} tap=${TAP[$vm]}
	ipv=TF_LAB_${u}_IP pingv=TF_LAB_${u}_PING httpv=TF_LAB_${u}_HTTP udpv=TF_LAB_${u}_UDP
	ip=${!ipv} ping=${!pingv} http=${!httpv} udp=${!udpv}

	if [ -n "$http" ]; then
		r=$(rec "$F" "$tap" ".proto == \"tcp\" and .remote_ip == \"$http\" and .remote_port == 80")
		if one "$vm: http" "$r"; then
			sport=$(fields "$r" .local_port)
			tf_diag "$vm http: $(fields "$r" "\"\(.local_ip):\(.local_port) -> \(.remote_ip):80 \" + $TAPCNT + \" nat \(.nat | tojson)\"")"
			check_nat "$vm: http" "$r" "$TMP/ct1.txt" tcp "$ip" "$http" "$sport"
			check_up "$vm: http" "$r"
		fi
	fi
	if [ -n "$udp" ]; then
		r=$(rec "$F" "$tap" ".proto == \"udp\" and .local_ip == \"$ip\" and .local_port == $TF_LAB_UDP_SPORT and
			.remote_ip == \"${udp%:*}\" and .remote_port == ${udp#*:}")
		if one "$vm: udp" "$r"; then
			tf_diag "$vm udp: nat $(fields "$r" '.nat | tojson')"
			tf_eq "$vm: udp: 5 x 142 B each way on the tap" "5 710 5 710" "$(fields "$r" "$TAPCNT")"
			tf_eq "$vm: udp: 5 x 142 B each way on the uplink" "5 710 5 710" "$(fields "$r" "$UPCNT")"
			check_nat "$vm: udp" "$r" "$TMP/ct1.txt" udp "$ip" "${udp%:*}" "$TF_LAB_UDP_SPORT"
			check_up "$vm: udp" "$r"
			UDP_PORT[$vm]=$(fields "$r" '.nat.port')
		fi
	fi
	# The ping goes outside if its target is routed through the uplink.
	if [ "$(ip -n "$TF_LAB_NS" -j route get "$ping" | jq -r '.[0].dev')" = "$UPLINK" ]; then
		r=$(rec "$F" "$tap" ".proto == \"icmp\" and .icmp_type == 8 and .remote_ip == \"$ping\"")
		if one "$vm: ping" "$r"; then
			tf_diag "$vm ping: id $(fields "$r" .icmp_id) nat $(fields "$r" '.nat | tojson')"
			tf_eq "$vm: ping: 10 x 98 B each way on the tap" "10 980 10 980" "$(fields "$r" "$TAPCNT")"
			check_nat "$vm: ping" "$r" "$TMP/ct1.txt" icmp "$ip" "$ping" "$(fields "$r" .icmp_id)"
			check_up "$vm: ping" "$r"
			ICMP_PORT[$vm]=$(fields "$r" '.nat.port')
		fi
	else
		tf_diag "$vm: ping target $ping is not behind $UPLINK"
	fi

	# fwd: the sums of the tap's forwarded flows; every flow to the
	# outside is one of them.
	w=$(fwd_rec "$F" "$tap")
	if one "$vm: fwd" "$w"; then
		tf_diag "$vm fwd: $w"
		tf_eq "$vm: fwd record names the VM" "$vm" "$(fields "$w" .vm)"
		tf_eq "$vm: fwd: flows = the tap's flows to $INET, nothing lost" \
			"$(rec "$F" "$tap" ".remote_ip == \"$INET\"" | grep -c .) 0 0" \
			"$(fields "$w" "\"\(.flows) \" + $LOST")"
		tf_eq "$vm: fwd: uplink counters = the sums of its flows' uplink counters" \
			"$(rec "$F" "$tap" '.uplink != null' | jq -rs '
				"\(map(.uplink_tx_packets) | add) \(map(.uplink_tx_bytes) | add) \(map(.uplink_rx_packets) | add) \(map(.uplink_rx_bytes) | add)"')" \
			"$(fields "$w" "$UPCNT")"
	fi
done

# Two guests, same source port, same server: MASQUERADE remaps one of them.
a=${NATVMS[0]} d=${NATVMS[1]}
if [ -n "${UDP_PORT[$a]:-}" ] && [ -n "${UDP_PORT[$d]:-}" ]; then
	tf_check "udp: $a and $d leave $UPLINK_IP with different ports (${UDP_PORT[$a]}, ${UDP_PORT[$d]})" \
		test "${UDP_PORT[$a]}" != "${UDP_PORT[$d]}"
fi
if [ -n "${ICMP_PORT[$a]:-}" ] && [ -n "${ICMP_PORT[$d]:-}" ]; then
	tf_check "ping: $a and $d leave $UPLINK_IP with different identifiers (${ICMP_PORT[$a]}, ${ICMP_PORT[$d]})" \
		test "${ICMP_PORT[$a]}" != "${ICMP_PORT[$d]}"
fi

# Not forwarded through the uplink: isolated and bridged guests.
for vm in "${OTHERVMS[@]}"; do
	tap=${TAP[$vm]}
	n=$(rec "$F" "$tap" true | grep -c .)
	tf_check "$vm: has flows ($n)" test "$n" -gt 0
	tf_eq "$vm: every flow has nat null, uplink null, no uplink counters or loss" "" \
		"$(rec "$F" "$tap" '[.nat, .uplink, .uplink_tx_packets, .uplink_tx_bytes, .uplink_rx_packets,
			.uplink_rx_bytes, .fwd_lost_tx, .fwd_lost_rx] | any(. != null)')"
	tf_eq "$vm: fwd record: no forwarded flow" "0 0 0 0 0 0 0" \
		"$(fwd_rec "$F" "$tap" | jq -r "\"\(.flows) \" + $UPCNT + \" \" + $LOST")"
done

tf_eq "one fwd record per tap per report (as many as overflow rows)" \
	"$(jq -r 'select(.type == "flow" and .aggregate == "overflow") | .ifname' "$F" | sort | uniq -c)" \
	"$(jq -r 'select(.type == "fwd") | .ifname' "$F" | sort | uniq -c)"
tf_eq "every tap's flow rows are followed by its fwd record" "" "$(fwd_order "$F")"
tf_eq "summary: nat_join, uplink_flows = the fwd records' flows" \
	"true $(jq -rs '[.[] | select(.type == "fwd" and .final) | .flows] | add' "$F")" \
	"$(jq -r 'select(.type == "summary") | "\(.nat_join) \(.uplink_flows)"' "$F")"
tf_eq "records: flow, fwd, summary" "flow fwd summary" \
	"$(jq -r .type "$F" | sort -u | tr '\n' ' ' | sed 's/ $//')"

# --no-nat: the same flows, without the join.
N=$TMP/nonat.json
tf_eq "--no-nat: no fwd records" 0 "$(jq -r 'select(.type == "fwd")' "$N" | grep -c .)"
tf_eq "--no-nat: every flow has nat, uplink, uplink counters and loss null" "" \
	"$(jq -c 'select(.type == "flow") | select([.nat, .uplink, .uplink_tx_packets, .uplink_tx_bytes,
		.uplink_rx_packets, .uplink_rx_bytes, .fwd_lost_tx, .fwd_lost_rx] | any(. != null)) |
		"\(.ifname) \(.proto) \(.local_ip)"' "$N")"
FLOWSIG='select(.type == "flow" and .final) | "\(.ifname) \(.aggregate) \(.proto) \(.local_ip):\(.local_port) \(.remote_ip):\(.remote_port) \(.icmp_id) \(.tx_packets) \(.tx_bytes) \(.rx_packets) \(.rx_bytes) \(.tx_segs) \(.rx_segs)"'
jq -r "$FLOWSIG" "$F" | sort >"$TMP/sig.nat"
jq -r "$FLOWSIG" "$N" | sort >"$TMP/sig.nonat"
tf_check "--no-nat: $(grep -c . "$TMP/sig.nat") final flow rows, the same with and without the join" \
	cmp -s "$TMP/sig.nat" "$TMP/sig.nonat"
tf_eq "--no-nat: summary: nat_join false, uplink_flows 0" "false 0" \
	"$(jq -r 'select(.type == "summary") | "\(.nat_join) \(.uplink_flows)"' "$N")"
SUMSIG='select(.type == "summary") | "\(.vms) \(.rx_packets) \(.rx_bytes) \(.tx_packets) \(.tx_bytes) \(.map_full) \(.parse_errors)"'
tf_eq "--no-nat: the same summary totals" "$(jq -r "$SUMSIG" "$F")" "$(jq -r "$SUMSIG" "$N")"

# ------------------------------------------------------- windows 2 and 3: loss
# loss_window DIR LOSSY CONTROL: an iptables rule, first in the lab's FORWARD
# chain, drops every second UDP datagram of LOSSY's echo exchange in one
# direction: DIR tx, what LOSSY sends (FORWARD is before the NAT in
# POSTROUTING: they entered the host and never left it); DIR rx, the echoes
# (FORWARD is after the reverse NAT in PREROUTING: they arrived on the uplink
# and were never delivered). LOSSY and CONTROL run their udp script; a JSON
# and a table instance of `flows` watch. LOSSY's flow, fwd record and table
# row show the rule's packet counter as lost that way; CONTROL loses nothing.
# The rule is removed again (also at exit, if the test fails on the way).
loss_window() {
	local dir=$1 lossy=$2 control=$3 u udp ip srv port tag match dropped sent got left
	local r frame txp txb lost exp_tap exp_up exp_up_tx exp_up_rx flows_line i v cudp
	local -a rule match
	u=${lossy^^}
	v=TF_LAB_${u}_UDP; udp=${!v}
	v=TF_LAB_${u}_IP; ip=${!v}
	srv=${udp%:*} port=${udp#*:}
	tag=tapflow-e2e-nat-$TF_ID-$dir
	if [ "$dir" = tx ]; then
		match=(-s "$ip" -d "$srv" -p udp --dport "$port")
	else
		match=(-s "$srv" -d "$ip" -p udp --sport "$port")
	fi
	rule=("${match[@]}" -m statistic --mode nth --every 2 --packet 0
	      -m comment --comment "$tag" -j DROP)
	tf_on_exit "ip netns exec $TF_LAB_NS iptables -D FORWARD ${rule[*]}"
	labns iptables -I FORWARD 1 "${rule[@]}"
	tf_eq "$dir loss: drop rule for $lossy inserted first in FORWARD of $TF_LAB_NS" 0 $?

	"${TF[@]}" --json flows -i 1 >"$TMP/loss-$dir.json" 2>"$TMP/loss-$dir.err" &
	local pid_json=$!
	tf_on_exit "kill $pid_json"
	"${TF[@]}" flows --vm "$lossy" --vm "$control" -i 1 >"$TMP/loss-$dir.txt" \
		2>"$TMP/loss-$dir-txt.err" &
	local pid_txt=$!
	tf_on_exit "kill $pid_txt"
	# The table instance has attached once it printed its first table.
	for ((i = 0; i < 100; i++)); do
		grep -q '^VM ' "$TMP/loss-$dir.txt" 2>/dev/null && break
		sleep 0.1
	done
	tf_wait_record "$TMP/loss-$dir.json" flow && grep -q '^VM ' "$TMP/loss-$dir.txt"
	tf_eq "$dir loss: flows (JSON) and flows (table) attached" 0 $?
	"$TF_LAB_SH" release -s udp "$lossy" "$control"
	"$TF_LAB_SH" wait-done "$lossy" "$control" 120 >"$TMP/done-$dir.txt"
	tf_eq "$dir loss: udp scripts done" 0 $?
	sed 's/^/# /' "$TMP/done-$dir.txt"
	sleep 1
	kill -INT $pid_json $pid_txt
	wait $pid_json
	tf_eq "$dir loss: flows exits 0 on SIGINT" 0 $?
	wait $pid_txt
	tf_eq "$dir loss: flows (table) exits 0 on SIGINT" 0 $?
	tf_eq "$dir loss: flows: nothing on stderr" "" "$(head -c 300 "$TMP/loss-$dir.err")"
	tf_eq "$dir loss: flows (table): nothing on stderr" "" \
		"$(head -c 300 "$TMP/loss-$dir-txt.err")"

	tf_diag "$(labns iptables -L FORWARD -v -x -n | grep -F "/* $tag */")"
	dropped=$(labns iptables -L FORWARD -v -x -n |
		awk -v c="/* $tag */" 'index($0, c) { print $1 }')
	dropped=${dropped:-0}
	tf_check "$dir loss: the rule dropped some of $lossy's datagrams ($dropped)" \
		test "$dropped" -gt 0
	labns iptables -D FORWARD "${rule[@]}"
	tf_eq "$dir loss: drop rule removed" 0 "$(labns iptables -S FORWARD | grep -cF "$tag")"
	read -r sent got < <(sed -n "s/^done vm=$lossy .* udp=\([0-9]*\)\/\([0-9]*\).*/\1 \2/p" \
		"$TMP/done-$dir.txt")
	sent=${sent:-0} left=$((${sent:-0} - dropped))
	tf_eq "$dir loss: $lossy got an echo for every datagram not dropped (sent $sent)" \
		"$left" "${got:-}"

	r=$(rec "$TMP/loss-$dir.json" "${TAP[$lossy]}" ".proto == \"udp\" and
		.local_port == $TF_LAB_UDP_SPORT and .remote_ip == \"$srv\" and .remote_port == $port")
	if one "$dir loss: $lossy udp" "$r"; then
		tf_diag "$lossy lossy udp: $(fields "$r" "$TAPCNT + \" uplink \" + $UPCNT +
			\" lost \" + $LOST + \" nat \(.nat | tojson)\"")"
		read -r txp txb _ <<<"$(fields "$r" "$TAPCNT")"
		frame=$((txb / (txp > 0 ? txp : 1)))
		# tx: the guest sent them all, the uplink saw what was left
		# each way; rx: the uplink saw them all, the guest got what
		# was left.
		exp_tap="$sent $((sent * frame)) $left $((left * frame))"
		if [ "$dir" = tx ]; then
			exp_up="$left $((left * frame)) $left $((left * frame))" lost="$dropped 0"
		else
			exp_up="$sent $((sent * frame)) $sent $((sent * frame))" lost="0 $dropped"
		fi
		tf_eq "$dir loss: $lossy udp: tap counters ($frame B frames)" "$exp_tap" \
			"$(fields "$r" "$TAPCNT")"
		tf_eq "$dir loss: $lossy udp: uplink counters" "$exp_up" "$(fields "$r" "$UPCNT")"
		tf_eq "$dir loss: $lossy udp: fwd_lost_tx fwd_lost_rx = the rule's counter that way" \
			"$lost" "$(fields "$r" "$LOST")"
		tf_eq "$dir loss: $lossy udp: nat as in window 1" \
			"$UPLINK_IP ${UDP_PORT[$lossy]:-} $UPLINK" \
			"$(fields "$r" '"\(.nat.ip) \(.nat.port) \(.nat.ifname)"')"
		tf_eq "$dir loss: $lossy fwd record: 1 flow, its uplink counters and loss" \
			"1 $exp_up $lost" \
			"$(fwd_rec "$TMP/loss-$dir.json" "${TAP[$lossy]}" |
				jq -r "\"\(.flows) \" + $UPCNT + \" \" + $LOST")"

		# The table: the row's NAT and FWD LOST columns, and the
		# "forwarded through the uplink:" line.
		sed -n '/^final report/,$p' "$TMP/loss-$dir.txt" >"$TMP/loss-$dir.final"
		sed 's/^/# /' "$TMP/loss-$dir.final"
		tf_eq "$dir loss: table: $lossy's udp row: NAT, FWD LOST" \
			"$UPLINK_IP:${UDP_PORT[$lossy]:-} ${lost/ //}" \
			"$(awk -v l="$ip:$TF_LAB_UDP_SPORT" -v r="$udp" '$3 == "udp" && $4 == l &&
				$5 == r { print $(NF - 1), $NF }' "$TMP/loss-$dir.final")"
		read -r exp_up_tx _ exp_up_rx _ <<<"$exp_up"
		flows_line="  $lossy ${TAP[$lossy]}: 1 flow, uplink tx $exp_up_tx pkts rx $exp_up_rx pkts,"
		flows_line+=" lost in forwarding tx ${lost% *} rx ${lost#* }"
		tf_check "$dir loss: table: '$flows_line'" grep -qxF "$flows_line" "$TMP/loss-$dir.final"
	fi

	v=TF_LAB_${control^^}_UDP; cudp=${!v}
	r=$(rec "$TMP/loss-$dir.json" "${TAP[$control]}" ".proto == \"udp\" and
		.local_port == $TF_LAB_UDP_SPORT and .remote_ip == \"${cudp%:*}\" and
		.remote_port == ${cudp#*:}")
	if one "$dir loss: $control udp next to the lossy one" "$r"; then
		tf_eq "$dir loss: $control udp: 5 x 142 B each way on the tap and the uplink, nothing lost" \
			"5 710 5 710 5 710 5 710 0 0" \
			"$(fields "$r" "$TAPCNT + \" \" + $UPCNT + \" \" + $LOST")"
	fi
	tf_eq "$dir loss: $control fwd record: 1 flow, nothing lost" "1 0 0" \
		"$(fwd_rec "$TMP/loss-$dir.json" "${TAP[$control]}" | jq -r "\"\(.flows) \" + $LOST")"
}

loss_window tx "$a" "$d"
loss_window rx "$d" "$a"

# No hook left on the taps and the uplink (what tf_lab_no_hook_left reads).
for dev in "$UPLINK" "${TAP[@]}"; do
	echo "{\"type\":\"stats\",\"final\":true,\"ifname\":\"$dev\"}"
done >"$TMP/devs.json"
tf_lab_no_hook_left "$TMP/devs.json"
tf_finish
