#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# End to end in the real libvirt lab: `tapflow drops` (the kfree_skb tracer)
# against drops that the test provokes in the lab's namespace and the
# kernel's own counters of them. Reason names and numbers come from the
# running kernel's BTF (enum skb_drop_reason), locations are checked against
# /proc/kallsyms.
#
# Window 0, no drop rules, every guest's scripted traffic: no drop of any
# VM's packet (in `drops`, `stats`, the summary); host drops are printed.
# Window 1, an iptables rule first in the lab's FORWARD chain drops the TCP
# SYNs of one NAT guest (alpha) to the HTTP server (its `syn` script: a few
# connection attempts from one source port); the other guests run all their
# scripts: `drops` shows alpha, its flow, NETFILTER_DROP, a netfilter
# location, and the rule's packet and byte counters, which equal the SYNs
# alpha says it sent; nobody else has a drop; the drops table has alpha's
# row; `drops --events` printed one event per drop; `stats` and `flows`
# show the same count in their drops field (alpha's tap, alpha's flow).
# Window 2, three more reasons at once, each count equal to what the guest
# sent and to the kernel's own counter:
# - IP_INNOROUTES: a `throw` route in the lab namespace for the lab's
#   reserved unrouted subnet (lab.sh env: TF_LAB_NOROUTE_NET), alpha pings
#   an address in it (`noroute` script); IpExt InNoRoutes;
# - IP_INHDR: delta pings the internet host with TTL 1 (`ttl` script): the
#   host's forwarding drops them (time exceeded); Ip InHdrErrors;
# - TC_INGRESS: a classic-BPF cls_bpf filter in direct-action mode returns
#   TC_ACT_SHOT on beta's tap ingress (a clsact qdisc), beta pings; the
#   clsact qdisc's drop and byte counters;
# and a reply dropped before de-NAT: a rule in the raw table's PREROUTING
# drops every second UDP echo coming back to the uplink's address for
# alpha's `udp` script: NETFILTER_DROP on the uplink, attributed to alpha's
# flow by the NAT join (rx), the rule's counters, the echoes alpha missed;
# `stats` counts those as the host's (it attributes by device and MAC only).
# gamma runs all its scripts and has no drop. A second `drops` instance
# with the raw_tp fallback (TAPFLOW_DROPS_HOOK=raw_tp) reports the same.
# Every rule, route, filter and qdisc the test adds is removed again (also
# when it fails on the way).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"
. "$HERE/lab-env.sh"

tf_lab_begin e2e-drops
tf_need_tools "drop checks" iptables tc bpftool

labns() { ip netns exec "$TF_LAB_NS" "$@"; }

NATVMS=() OTHERVMS=()
for vm in $TF_LAB_VMS; do
	v=TF_LAB_${vm^^}_MODE
	if [ "${!v}" = nat ]; then NATVMS+=("$vm"); else OTHERVMS+=("$vm"); fi
done
if [ ${#NATVMS[@]} -lt 2 ] || [ ${#OTHERVMS[@]} -lt 1 ]; then
	tf_skip "drop checks" "needs two VMs on the NAT network and one other (TF_LAB_VMS='$TF_LAB_VMS')"
	tf_finish
fi
A=${NATVMS[0]} D=${NATVMS[1]} B=${OTHERVMS[0]}
CONTROLS=("${NATVMS[@]:2}" "${OTHERVMS[@]:1}")

tf --json list >"$TMP/list.json" 2>"$TMP/list.err"
tf_eq "list exits 0" 0 $?
declare -A TAP
for vm in $TF_LAB_VMS; do
	TAP[$vm]=$(jq -r --arg vm "$vm" 'select(.vm == $vm) | .ifname' "$TMP/list.json")
done
# labvar VM FIELD: TF_LAB_<VM>_<FIELD>
labvar() { local v="TF_LAB_${1^^}_$2"; echo "${!v}"; }

# The running kernel's drop reasons: name (without SKB_DROP_REASON_) -> value.
declare -A RCODE
while read -r n v; do
	RCODE[$n]=$v
done < <(bpftool btf dump file /sys/kernel/btf/vmlinux format raw 2>/dev/null | awk '
	/^\[[0-9]+\] / { inb = ($2 == "ENUM" || $2 == "ENUM64") && $3 == "'"'"'skb_drop_reason'"'"'" }
	inb && /^[[:space:]]+'"'"'SKB_DROP_REASON_/ {
		n = $1; gsub("'"'"'", "", n); sub(/^SKB_DROP_REASON_/, "", n)
		v = $2; sub(/^val=/, "", v); print n, v
	}')
tf_check "the kernel's BTF has enum skb_drop_reason (${#RCODE[@]} names)" test ${#RCODE[@]} -gt 0
# have_reason NAME: the kernel names this reason, else the check is skipped.
have_reason() {
	[ -n "${RCODE[$1]:-}" ] && return 0
	tf_skip "$2" "this kernel has no SKB_DROP_REASON_$1"
	return 1
}

# Kernel text symbols, to check that a location names a real function.
awk '$2 ~ /^[tTwW]$/ { print $3 }' /proc/kallsyms | sort -u >"$TMP/ksyms"
tf_check "/proc/kallsyms lists text symbols" test -s "$TMP/ksyms"
# in_kallsyms LOCATION: "func+0xoff" with func a kernel text symbol.
in_kallsyms() {
	[[ $1 =~ ^([^+]+)\+0x[0-9a-f]+$ ]] && grep -qxF "${BASH_REMATCH[1]}" "$TMP/ksyms"
}

# ---------------------------------------------------------------- helpers

# The tapflow instances of the current window: pids and names.
PIDS=() NAMES=()
# start NAME [VAR=VALUE]... ARGS...: tapflow ARGS in the background (env
# execs it: $! is tapflow), output in $TMP/NAME.out.
start() {
	local name=$1 env=()
	shift
	while [[ ${1:-} =~ ^[A-Z_]+= ]]; do env+=("$1"); shift; done
	env "${env[@]}" "${TF[@]}" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
	PIDS+=($!) NAMES+=("$name")
	tf_on_exit "kill $!"
}
# attached: every instance has attached (15 s at most each). The drop
# tracer is attached last, after the TC hooks, and `drops --json` prints
# nothing before the first drop: wait for the tracer's link among the
# process's file descriptors (a tp_btf link is a raw_tracepoint link).
attached() {
	local pid i
	for pid in "${PIDS[@]}"; do
		for ((i = 0; i < 150; i++)); do
			grep -qsE '^link_type:[[:space:]]*(raw_tracepoint|tracing)' /proc/"$pid"/fdinfo/* &&
				break
			sleep 0.1
		done
		grep -qsE '^link_type:[[:space:]]*(raw_tracepoint|tracing)' /proc/"$pid"/fdinfo/* ||
			return 1
	done
}
# stop TAG: SIGINT every instance; each exits 0 with nothing on stderr.
# Their "kill PID" cleanups go: the pids are free again.
stop() {
	local i rc c keep=()
	kill -INT "${PIDS[@]}" 2>/dev/null
	for i in "${!PIDS[@]}"; do
		wait "${PIDS[$i]}"
		rc=$?
		tf_eq "$1: ${NAMES[$i]} exits 0 on SIGINT" 0 $rc
		tf_eq "$1: ${NAMES[$i]}: nothing on stderr" "" "$(head -c 300 "$TMP/${NAMES[$i]}.err")"
	done
	for c in "${TF_CLEANUPS[@]}"; do
		[[ " ${PIDS[*]} " == *" ${c#kill } "* && $c == kill\ * ]] || keep+=("$c")
	done
	TF_CLEANUPS=("${keep[@]}")
	PIDS=() NAMES=()
}
# drops FILE FILTER: the final drop records matching FILTER, one per line.
drops() {
	jq -c "select(.type == \"drop\" and .final) | select($2)" "$1"
}
# vmdrops FILE VM: every drop record (any report) of VM.
vmdrops() {
	jq -c --arg vm "$2" 'select(.type == "drop" and .vm == $vm)' "$1"
}
fields() { jq -r "$2" <<<"$1"; }
# host_diag FILE: print the host aggregates (drops of packets of no VM).
host_diag() {
	local h
	h=$(jq -r 'select(.type == "drop" and .final and .aggregate == "host") |
		"host drops: \(.reason) \(.count) pkts \(.bytes) B"' "$1")
	tf_diag "${h:-host drops: none}"
}
# done_field FILE VM KEY: "A B" of KEY=A/B in VM's done line.
done_field() {
	sed -n "s/^done vm=$2 .* $3=\([0-9]*\)\/\([0-9]*\).*/\1 \2/p" "$1"
}
# snmp NAME: a counter of the lab namespace, "Ip:InHdrErrors" or "IpExt:InNoRoutes".
snmp() {
	labns cat /proc/net/snmp /proc/net/netstat | awk -v want="$1" '
		{ p = $1; sub(/:$/, "", p) }
		seen[p] { for (i = 2; i <= NF; i++) if (p ":" name[p, i] == want) print $i; next }
		{ seen[p] = 1; for (i = 2; i <= NF; i++) name[p, i] = $i }'
}
# clsact_counts DEV: "drops bytes" of DEV's clsact qdisc.
clsact_counts() {
	labns tc -s -j qdisc show dev "$1" |
		jq -r '.[] | select(.kind == "clsact") | "\(.drops) \(.bytes)"'
}
# table_rows FILE: the rows of the final table of a `drops` table run.
table_rows() {
	sed -n '/^final report/,/^$/p' "$1" | sed '1,2d; /^$/d'
}
# check_drop TAG REC VM REASON DEV HOW DIR PROTO LOCAL REMOTE: one VM drop record.
check_drop() {
	local tag=$1 r=$2 vm=$3 reason=$4 dev=$5 want
	want="$vm ${TAP[$vm]} null $reason ${RCODE[$reason]} $dev $6 $7 4 $8 $9 ${10} true"
	tf_eq "$tag: vm, ifname, aggregate, reason, reason_code (BTF), dev, attributed_by, direction, family, proto, local, remote, flow_known" \
		"$want" "$(fields "$r" '"\(.vm) \(.ifname) \(.aggregate) \(.reason) \(.reason_code) \(.dev) \(.attributed_by) \(.direction) \(.family) \(.proto) \(.local_ip):\(.local_port) \(.remote_ip):\(.remote_port) \(.flow_known)"' |
			sed 's/:null//g')"
	tf_check "$tag: location $(fields "$r" .location) is a kernel function (kallsyms)" \
		in_kallsyms "$(fields "$r" .location)"
	tf_check "$tag: first_seen and last_seen set" \
		test "$(fields "$r" '.first_seen != null and .last_seen != null and .first_seen <= .last_seen')" = true
}
# one TAG RECS: RECS is exactly one record.
one() {
	local c
	c=$(grep -c . <<<"$2")
	[ "$c" -eq 1 ] && return 0
	tf_fail "$1: exactly one drop record" "found $c: $2"
	return 1
}
# old_guests FILE: the guests did not know a script (a lab started before
# tools/lab/guest/init had it).
old_guests() {
	if grep -q 'error=unknown-script' "$1"; then
		tf_fail "the guests know the drop scripts" \
			"the lab's guests are older than tools/lab/guest/init: tools/lab/lab.sh down, then up"
		tf_finish
	fi
}

# -------------------------------------------------- window 0: no false positives
start w0 --json drops -i 1
start w0-stats --json stats -i 1
attached
tf_eq "window 0: drops and stats attached" 0 $?
"$TF_LAB_SH" release $TF_LAB_VMS
"$TF_LAB_SH" wait-done $TF_LAB_VMS 180 >"$TMP/done0.txt"
tf_eq "window 0: guest scripts done" 0 $?
sed 's/^/# /' "$TMP/done0.txt"
sleep 1
stop "window 0"
host_diag "$TMP/w0.out"
tf_eq "window 0: no drop of a VM's packet (any report)" "" \
	"$(jq -c 'select(.type == "drop" and .vm != null) | "\(.vm) \(.reason) \(.count)"' "$TMP/w0.out")"
tf_eq "window 0: summary: drops 0, the tracer was on" "0 true" \
	"$(jq -r 'select(.type == "summary") | "\(.drops) \(.drops_hook != null)"' "$TMP/w0.out")"
tf_eq "window 0: stats: every tap's drops 0" "" \
	"$(jq -r 'select(.type == "stats" and .final and .role == "tap" and .drops != 0) | "\(.vm) \(.drops)"' \
		"$TMP/w0-stats.out")"

# -------------------------------------------------- window 1: NETFILTER_DROP
if have_reason NETFILTER_DROP "window 1: NETFILTER_DROP"; then
	http=$(labvar "$A" HTTP) aip=$(labvar "$A" IP) abr=$(labvar "$A" BRIDGE)
	tag=tapflow-e2e-drops-$TF_ID
	rule=(-s "$aip" -d "$http" -p tcp --dport 80 --syn -m comment --comment "$tag" -j DROP)
	tf_on_exit "ip netns exec $TF_LAB_NS iptables -D FORWARD ${rule[*]}"
	labns iptables -I FORWARD 1 "${rule[@]}"
	tf_eq "window 1: rule dropping $A's SYNs to $http:80 inserted first in FORWARD of $TF_LAB_NS" 0 $?

	start w1 --json drops -i 1
	start w1-table drops -i 1
	start w1-events --json drops --events -i 1
	start w1-stats --json stats -i 1
	start w1-flows --json flows -i 1
	attached
	tf_eq "window 1: drops (JSON, table, --events), stats and flows attached" 0 $?
	others=()
	for vm in $TF_LAB_VMS; do [ "$vm" = "$A" ] || others+=("$vm"); done
	"$TF_LAB_SH" release -s syn "$A"
	"$TF_LAB_SH" release "${others[@]}"
	"$TF_LAB_SH" wait-done $TF_LAB_VMS 180 >"$TMP/done1.txt"
	tf_eq "window 1: guest scripts done" 0 $?
	sed 's/^/# /' "$TMP/done1.txt"
	sleep 1
	stop "window 1"
	old_guests "$TMP/done1.txt"

	tf_diag "$(labns iptables -L FORWARD -v -x -n | grep -F "/* $tag */")"
	read -r rpkts rbytes < <(labns iptables -L FORWARD -v -x -n |
		awk -v c="/* $tag */" 'index($0, c) { print $1, $2 }')
	labns iptables -D FORWARD "${rule[@]}"
	tf_eq "window 1: drop rule removed" 0 "$(labns iptables -S FORWARD | grep -cF "$tag")"
	read -r syns answered < <(done_field "$TMP/done1.txt" "$A" syn)
	tf_check "window 1: the rule dropped $A's SYNs (${rpkts:-none})" test "${rpkts:-0}" -gt 0
	tf_eq "window 1: $A sent as many SYNs as the rule dropped, none answered" \
		"${rpkts:-0} 0" "${syns:-none} ${answered:-none}"

	r=$(drops "$TMP/w1.out" ".vm == \"$A\"")
	if one "window 1: $A" "$r"; then
		tf_diag "$A: $r"
		check_drop "window 1: $A" "$r" "$A" NETFILTER_DROP "$abr" flow tx tcp \
			"$aip:$TF_LAB_SYN_SPORT" "$http:80"
		tf_eq "window 1: $A: count, bytes = the rule's packet and byte counters" \
			"${rpkts:-0} ${rbytes:-0}" "$(fields "$r" '"\(.count) \(.bytes)"')"
		loc=$(fields "$r" .location)
		tf_check "window 1: $A: location $loc is netfilter's (nf_hook_slow, nft_do_chain or ipt_do_table)" \
			grep -qE '^(nf_hook_slow|nft_do_chain|ipt_do_table)\+0x[0-9a-f]+$' <<<"$loc"
	fi
	for vm in "${others[@]}"; do
		tf_eq "window 1: $vm: no drop record (any report)" "" "$(vmdrops "$TMP/w1.out" "$vm")"
	done
	host_diag "$TMP/w1.out"
	tf_eq "window 1: summary: drops = the rule's counter" "${rpkts:-0}" \
		"$(jq -r 'select(.type == "summary") | .drops' "$TMP/w1.out")"

	# The table: alpha's row, nobody else's.
	table_rows "$TMP/w1-table.out" >"$TMP/w1.rows"
	sed 's/^/# /' "$TMP/w1.rows"
	tf_eq "window 1: table: $A's row" \
		"$A ${TAP[$A]} $abr NETFILTER_DROP ${loc:-?} ${rpkts:-0} tx tcp $aip:$TF_LAB_SYN_SPORT -> $http:80" \
		"$(awk -v vm="$A" '$1 == vm' "$TMP/w1.rows" | tr -s ' ')"
	tf_eq "window 1: table: no other VM's row" "" \
		"$(awk -v vm="$A" '$1 != vm && $1 != "(host)"' "$TMP/w1.rows")"

	# --events: one event per drop (far below the default rate limit).
	tf_eq "window 1: --events: one drop_event of $A per dropped SYN: reason, local, remote" \
		"$(for ((i = 0; i < ${rpkts:-0}; i++)); do
			echo "NETFILTER_DROP $aip:$TF_LAB_SYN_SPORT $http:80"; done)" \
		"$(jq -r --arg vm "$A" 'select(.type == "drop_event" and .vm == $vm) |
			"\(.reason) \(.local_ip):\(.local_port) \(.remote_ip):\(.remote_port)"' \
			"$TMP/w1-events.out")"
	tf_eq "window 1: --events: no other VM's event" "" \
		"$(jq -r --arg vm "$A" 'select(.type == "drop_event" and .vm != null and .vm != $vm) | .vm' \
			"$TMP/w1-events.out")"
	tf_eq "window 1: --events: the final records have $A's count" "${rpkts:-0}" \
		"$(drops "$TMP/w1-events.out" ".vm == \"$A\"" | jq -r .count)"

	# stats: the drops of each tap; flows: of each flow.
	tf_eq "window 1: stats: drops of every tap ($A: the rule's counter)" \
		"$(for vm in $TF_LAB_VMS; do
			[ "$vm" = "$A" ] && echo "$vm ${rpkts:-0}" || echo "$vm 0"; done | sort)" \
		"$(jq -r 'select(.type == "stats" and .final and .role == "tap") | "\(.vm) \(.drops)"' \
			"$TMP/w1-stats.out" | sort)"
	f=$(jq -c --arg t "${TAP[$A]}" 'select(.type == "flow" and .final and .aggregate == null and
		.ifname == $t and .proto == "tcp" and .local_port == '"$TF_LAB_SYN_SPORT"' and
		.remote_ip == "'"$http"'" and .remote_port == 80)' "$TMP/w1-flows.out")
	if [ "$(grep -c . <<<"$f")" -eq 1 ]; then
		tf_eq "window 1: flows: $A's SYN flow: drops = tx_packets = the rule's counter, rx 0" \
			"${rpkts:-0} ${rpkts:-0} 0" "$(fields "$f" '"\(.drops) \(.tx_packets) \(.rx_packets)"')"
	else
		tf_fail "window 1: flows: $A's SYN flow: exactly one record" "found: $f"
	fi
	tf_eq "window 1: flows: every other final flow has drops 0" "" \
		"$(jq -c --arg t "${TAP[$A]}" 'select(.type == "flow" and .final and .aggregate == null and
			.drops != 0 and (.ifname != $t or .local_port != '"$TF_LAB_SYN_SPORT"')) |
			"\(.vm) \(.ifname) \(.aggregate) \(.proto) \(.remote_ip):\(.remote_port) \(.drops)"' \
			"$TMP/w1-flows.out")"
fi

# ------------------------- window 2: IP_INNOROUTES, IP_INHDR, TC_INGRESS, NAT reply
dping=$(labvar "$D" PING) dbr=$(labvar "$D" BRIDGE)
aip=$(labvar "$A" IP) abr=$(labvar "$A" BRIDGE) audp=$(labvar "$A" UDP)
bping=$(labvar "$B" PING) btap=${TAP[$B]}
NR=$TF_LAB_NOROUTE_NET
UPLINK=$(ip -n "$TF_LAB_NS" -j route show default | jq -r '.[0].dev // empty')
UPLINK_IP=$(ip -n "$TF_LAB_NS" -4 -j addr show dev "$UPLINK" | jq -r '.[0].addr_info[0].local // empty')

# No route: a throw route ends the lookup as "network unreachable".
tf_eq "window 2: no route of the lab's for $NR yet" "" "$(labns ip route show exact "$NR")"
tf_on_exit "ip netns exec $TF_LAB_NS ip route del throw $NR"
labns ip route add throw "$NR"
tf_eq "window 2: throw route for $NR in $TF_LAB_NS" 0 $?
# TC: classic BPF "ret #2" (TC_ACT_SHOT) as a direct-action cls_bpf filter
# (cls_matchall and act_gact need not be built). A clsact qdisc of our own,
# unless the tap has one (then only our filter is removed).
own_clsact=0
if labns tc qdisc show dev "$btap" | grep -q '^qdisc clsact'; then
	tf_diag "$btap already has a clsact qdisc: adding a filter only"
else
	own_clsact=1
	tf_on_exit "ip netns exec $TF_LAB_NS tc qdisc del dev $btap clsact"
	labns tc qdisc add dev "$btap" clsact
	tf_eq "window 2: clsact qdisc on $B's tap $btap" 0 $?
fi
tf_on_exit "ip netns exec $TF_LAB_NS tc filter del dev $btap ingress pref 7"
labns tc filter add dev "$btap" ingress pref 7 bpf da bytecode '1,6 0 0 2'
tf_eq "window 2: drop filter on $btap ingress" 0 $?
# A reply dropped before de-NAT: the raw table's PREROUTING (before
# conntrack) drops every second UDP echo that comes back to the uplink's
# address; only $A runs its udp script in this window.
tag2=tapflow-e2e-drops-$TF_ID-nat
rule2=(-i "$UPLINK" -s "${audp%:*}" -d "$UPLINK_IP" -p udp --sport "${audp#*:}"
       -m statistic --mode nth --every 2 --packet 0 -m comment --comment "$tag2" -j DROP)
tf_on_exit "ip netns exec $TF_LAB_NS iptables -t raw -D PREROUTING ${rule2[*]}"
labns iptables -t raw -I PREROUTING 1 "${rule2[@]}"
tf_eq "window 2: raw PREROUTING rule dropping every second echo to $UPLINK_IP" 0 $?

# done_lines VM N: VM's done lines after its first N.
done_lines() {
	grep -a '^done ' "$TF_LAB_STATE/vm/$1.ctl.log" | tail -n +$(($2 + 1)) | tr -d '\r'
}
declare -A NDONE
for vm in $TF_LAB_VMS; do NDONE[$vm]=$(done_lines "$vm" 0 | grep -c .); done
hdr0=$(snmp Ip:InHdrErrors) nort0=$(snmp IpExt:InNoRoutes)
read -r tcd0 tcb0 < <(clsact_counts "$btap")
start w2 --json drops -i 1
start w2-raw TAPFLOW_DROPS_HOOK=raw_tp --json drops -i 1
start w2-table drops -i 1
start w2-stats --json stats -i 1
attached
tf_eq "window 2: drops (JSON; the raw_tp fallback; table) and stats attached" 0 $?
"$TF_LAB_SH" release -s noroute "$A"
"$TF_LAB_SH" release -s udp "$A"
"$TF_LAB_SH" release -s ttl "$D"
"$TF_LAB_SH" release -s ping "$B"
[ ${#CONTROLS[@]} -gt 0 ] && "$TF_LAB_SH" release "${CONTROLS[@]}"
"$TF_LAB_SH" wait-done "$A" "$D" "$B" "${CONTROLS[@]}" 180 >/dev/null
tf_eq "window 2: guest scripts done" 0 $?
for vm in $TF_LAB_VMS; do done_lines "$vm" "${NDONE[$vm]}"; done >"$TMP/done2.txt"
sed 's/^/# /' "$TMP/done2.txt"
sleep 1
stop "window 2"
old_guests "$TMP/done2.txt"
hdr=$(($(snmp Ip:InHdrErrors) - hdr0)) nort=$(($(snmp IpExt:InNoRoutes) - nort0))
read -r tcd tcb < <(clsact_counts "$btap")
tcd=$((tcd - tcd0)) tcb=$((tcb - tcb0))
tf_diag "kernel counters in $TF_LAB_NS: Ip InHdrErrors +$hdr, IpExt InNoRoutes +$nort, $btap clsact dropped +$tcd ($tcb B)"
tf_diag "$(labns iptables -t raw -L PREROUTING -v -x -n | grep -F "/* $tag2 */")"
read -r npkts nbytes < <(labns iptables -t raw -L PREROUTING -v -x -n |
	awk -v c="/* $tag2 */" 'index($0, c) { print $1, $2 }')

labns iptables -t raw -D PREROUTING "${rule2[@]}"
tf_eq "window 2: raw PREROUTING rule removed" 0 "$(labns iptables -t raw -S PREROUTING | grep -cF "$tag2")"
labns tc filter del dev "$btap" ingress pref 7
labns ip route del throw "$NR"
tf_eq "window 2: throw route removed" "" "$(labns ip route show exact "$NR")"
if [ $own_clsact = 0 ]; then
	tf_eq "window 2: drop filter removed" "" "$(labns tc filter show dev "$btap" ingress | grep 'pref 7 ')"
else
	labns tc qdisc del dev "$btap" clsact
	tf_eq "window 2: clsact qdisc removed" 0 "$(labns tc qdisc show dev "$btap" | grep -c clsact)"
fi
host_diag "$TMP/w2.out"
table_rows "$TMP/w2-table.out" >"$TMP/w2.rows"
sed 's/^/# /' "$TMP/w2.rows"

# case2 VM REASON SCRIPT KERNEL_COUNT KERNEL_WHAT DEV REMOTE: VM's drop
# record of REASON: a count equal to the pings its SCRIPT sent (none
# answered) and to the kernel's counter; the table has its row.
declare -A W2REASONS
case2() {
	local vm=$1 reason=$2 script=$3 kc=$4 what=$5 dev=$6 remote=$7 r sent got ip
	have_reason "$reason" "window 2: $vm: $reason" || return 0
	W2REASONS[$vm]+="$reason "
	ip=$(labvar "$vm" IP)
	read -r sent got < <(done_field "$TMP/done2.txt" "$vm" "$script")
	tf_check "window 2: $vm: its $script script sent pings (${sent:-none}), none answered (${got:-none})" \
		test "${sent:-0}" -gt 0 -a "${got:-1}" -eq 0
	r=$(drops "$TMP/w2.out" ".vm == \"$vm\" and .reason == \"$reason\"")
	one "window 2: $vm: $reason" "$r" || return 0
	tf_diag "$vm: $r"
	check_drop "window 2: $vm: $reason" "$r" "$vm" "$reason" "$dev" flow tx icmp "$ip" "$remote"
	tf_eq "window 2: $vm: $reason count = pings sent = $what" \
		"${sent:-none} ${sent:-none}" "$(fields "$r" .count) $kc"
	tf_eq "window 2: $vm: $reason: an echo request (icmp_type, icmp_code; icmp_id set)" "8 0 true" \
		"$(fields "$r" '"\(.icmp_type) \(.icmp_code) \(.icmp_id != null)"')"
	# As `flows` names an ICMP query: "icmp echo id N".
	tf_eq "window 2: table: $vm's $reason row" \
		"$vm ${TAP[$vm]} $dev $reason $(fields "$r" .location) $(fields "$r" .count) tx icmp echo id $(fields "$r" .icmp_id) $ip -> $remote" \
		"$(awk -v vm="$vm" -v re="$reason" '$1 == vm && $4 == re' "$TMP/w2.rows" | tr -s ' ')"
}
case2 "$A" IP_INNOROUTES noroute "$nort" "IpExt InNoRoutes" "$abr" "$TF_LAB_NOROUTE_IP"
case2 "$D" IP_INHDR ttl "$hdr" "Ip InHdrErrors" "$dbr" "$dping"
case2 "$B" TC_INGRESS ping "$tcd" "$btap clsact dropped" "$btap" "$bping"
if [ -n "${RCODE[TC_INGRESS]:-}" ]; then
	tf_eq "window 2: $B: TC_INGRESS bytes = $btap clsact bytes" "$tcb" \
		"$(drops "$TMP/w2.out" ".vm == \"$B\"" | jq -r .bytes)"
fi

# The echoes dropped before de-NAT: on the uplink, addressed to the uplink's
# address, yet the NAT join gives them to $A's udp flow, as received (rx).
read -r usent ugot < <(done_field "$TMP/done2.txt" "$A" udp)
W2REASONS[$A]+="NETFILTER_DROP "
tf_check "window 2: the raw rule dropped some of $A's echoes (${npkts:-none})" test "${npkts:-0}" -gt 0
tf_eq "window 2: $A got an echo for every datagram whose echo was not dropped (sent ${usent:-none})" \
	"$((${usent:-0} - ${npkts:-0}))" "${ugot:-none}"
r=$(drops "$TMP/w2.out" ".vm == \"$A\" and .reason == \"NETFILTER_DROP\"")
if one "window 2: $A: echoes dropped before de-NAT" "$r"; then
	tf_diag "$A: $r"
	check_drop "window 2: $A: echo dropped before de-NAT" "$r" "$A" NETFILTER_DROP "$UPLINK" nat rx udp \
		"$aip:$TF_LAB_UDP_SPORT" "$audp"
	tf_eq "window 2: $A: echoes dropped before de-NAT: count, bytes = the raw rule's counters" \
		"${npkts:-0} ${nbytes:-0}" "$(fields "$r" '"\(.count) \(.bytes)"')"
	tf_eq "window 2: table: $A's NETFILTER_DROP row" \
		"$A ${TAP[$A]} $UPLINK NETFILTER_DROP $(fields "$r" .location) ${npkts:-0} rx udp $aip:$TF_LAB_UDP_SPORT <- $audp" \
		"$(awk -v vm="$A" '$1 == vm && $4 == "NETFILTER_DROP"' "$TMP/w2.rows" | tr -s ' ')"
fi

for vm in "${CONTROLS[@]}"; do
	tf_eq "window 2: $vm: no drop record (any report)" "" "$(vmdrops "$TMP/w2.out" "$vm")"
done
for vm in $TF_LAB_VMS; do
	tf_eq "window 2: $vm: reasons in any report: $(xargs -n1 <<<"${W2REASONS[$vm]:-}" | sort | xargs)" \
		"$(xargs -n1 <<<"${W2REASONS[$vm]:-}" | sort | xargs)" \
		"$(vmdrops "$TMP/w2.out" "$vm" | jq -r .reason | sort -u | xargs)"
done
tf_eq "window 2: table: no other VM's row" "" \
	"$(awk -v a="$A" -v d="$D" -v b="$B" '$1 != "(host)" && $1 != a && $1 != d && $1 != b' \
		"$TMP/w2.rows")"

# The raw_tp fallback saw the same drops, with the same names and places.
DSIG='select(.type == "drop" and .final) | "\(.vm) \(.ifname) \(.aggregate) \(.reason) \(.reason_code) \(.location) \(.dev) \(.in_dev) \(.attributed_by) \(.count) \(.bytes) \(.direction) \(.proto) \(.local_ip):\(.local_port) \(.remote_ip):\(.remote_port)"'
tf_eq "window 2: raw_tp fallback: the same final drop records" \
	"$(jq -r "$DSIG" "$TMP/w2.out" | grep -v ' host ' | sort)" \
	"$(jq -r "$DSIG" "$TMP/w2-raw.out" | grep -v ' host ' | sort)"
tf_eq "window 2: raw_tp fallback: summary drops_hook, drops" \
	"raw_tp/kfree_skb $(jq -r 'select(.type == "summary") | .drops' "$TMP/w2.out")" \
	"$(jq -r 'select(.type == "summary") | "\(.drops_hook) \(.drops)"' "$TMP/w2-raw.out")"

# stats attributes by device and MAC only: the echoes dropped on the uplink
# before de-NAT are the host's there (README), the other drops are the VMs'.
tf_eq "window 2: stats: drops of every tap (without the echoes dropped before de-NAT)" \
	"$(for vm in $TF_LAB_VMS; do
		echo "$vm $(drops "$TMP/w2.out" ".vm == \"$vm\" and .attributed_by != \"nat\"" |
			jq -s 'map(.count) | add // 0')"; done | sort)" \
	"$(jq -r 'select(.type == "stats" and .final and .role == "tap") | "\(.vm) \(.drops)"' \
		"$TMP/w2-stats.out" | sort)"

# No hook left on the taps and the uplink (what tf_lab_no_hook_left reads).
for dev in "${TAP[@]}" "$TF_LAB_UPLINK"; do
	echo "{\"type\":\"stats\",\"final\":true,\"ifname\":\"$dev\"}"
done >"$TMP/devs.json"
tf_lab_no_hook_left "$TMP/devs.json"
tf_finish
