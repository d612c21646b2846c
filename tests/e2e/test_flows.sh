#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# End to end in the real libvirt lab: `tapflow flows` shows every guest's
# scripted traffic as flows in the VM's point of view (ping: ICMP echo 10 x
# 98 B each way; udp: 5 x 142 B each way from port 40000 to port 7; http:
# one TCP connection to port 80 with >= 1 MiB delivered), with the VM's
# name and address, and for every VM the sum of its flow records (flows and
# aggregates) equals its stats from a `tapflow stats` run over the same
# window; nothing is lost (map_full, parse_errors 0) and nothing is left.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"
. "$HERE/lab-env.sh"

tf_lab_begin e2e-flows

"${TF[@]}" --json list >"$TMP/list.json" 2>"$TMP/list.err"
tf_eq "list exits 0" 0 $?
declare -A TAP
for vm in $TF_LAB_VMS; do
	TAP[$vm]=$(jq -r --arg vm "$vm" 'select(.vm == $vm) | .ifname' "$TMP/list.json")
done

# flows and stats at the same time (started directly: $! is tapflow).
"${TF[@]}" --json flows -i 1 >"$TMP/flows.json" 2>"$TMP/flows.err" &
pid_flows=$!
tf_on_exit "kill $pid_flows"
"${TF[@]}" --json stats -i 1 >"$TMP/stats.json" 2>"$TMP/stats.err" &
pid_stats=$!
tf_on_exit "kill $pid_stats"
# flows reports flow records of every VM tap each interval (overflow and
# unparsed at least), stats its stats records: both have attached.
tf_wait_record "$TMP/flows.json" flow && tf_wait_record "$TMP/stats.json" stats
tf_eq "both instances attached" 0 $?

"$TF_LAB_SH" release $TF_LAB_VMS
"$TF_LAB_SH" wait-done $TF_LAB_VMS 180 >"$TMP/done.txt"
tf_eq "guest scripts done" 0 $?
sed 's/^/# /' "$TMP/done.txt"
sleep 1
kill -INT $pid_flows $pid_stats
wait $pid_flows
tf_eq "flows exits 0 on SIGINT" 0 $?
wait $pid_stats
tf_eq "stats exits 0 on SIGINT" 0 $?
tf_eq "flows: nothing on stderr" "" "$(head -c 300 "$TMP/flows.err")"
F=$TMP/flows.json

# final FILTER: the VM's final flow records matching FILTER, as
# "tx_packets tx_bytes rx_packets rx_bytes".
final() {
	jq -r --arg t "$1" "select(.type == \"flow\" and .final and .ifname == \$t) | select($2) |
		\"\(.tx_packets) \(.tx_bytes) \(.rx_packets) \(.rx_bytes)\"" "$F"
}

for vm in $TF_LAB_VMS; do
	u=${vm^^}
	tap=${TAP[$vm]}
	ipv=TF_LAB_${u}_IP pingv=TF_LAB_${u}_PING httpv=TF_LAB_${u}_HTTP udpv=TF_LAB_${u}_UDP
	ip=${!ipv} ping=${!pingv} http=${!httpv} udp=${!udpv}
	tf_eq "$vm: flow records name the VM and its tap" "$vm" \
		"$(jq -r --arg t "$tap" 'select(.type == "flow" and .final and .ifname == $t) | .vm' "$F" | sort -u)"
	tf_eq "$vm: ping: one ICMP echo flow $ip -> $ping, 10 x 98 B each way" "10 980 10 980" \
		"$(final "$tap" ".proto == \"icmp\" and .icmp_type == 8 and .local_ip == \"$ip\" and .remote_ip == \"$ping\"")"
	if [ -n "$udp" ]; then
		tf_eq "$vm: udp: $ip:$TF_LAB_UDP_SPORT -> $udp, 5 x 142 B each way" "5 710 5 710" \
			"$(final "$tap" ".proto == \"udp\" and .local_ip == \"$ip\" and .local_port == $TF_LAB_UDP_SPORT and .remote_ip == \"${udp%:*}\" and .remote_port == ${udp#*:}")"
	fi
	if [ -n "$http" ]; then
		read -r _ _ _ rxb < <(final "$tap" ".proto == \"tcp\" and .remote_ip == \"$http\" and .remote_port == 80")
		tf_check "$vm: http: TCP flow to $http:80 delivered >= 1 MiB (${rxb:-none})" \
			test "${rxb:-0}" -ge 1048576
		tf_eq "$vm: http: SYN and FIN seen" true \
			"$(jq -r --arg t "$tap" 'select(.type == "flow" and .final and .ifname == $t and
				.proto == "tcp" and .remote_port == 80) | .tcp_flags | test("S") and test("F")' "$F")"
	fi
	tf_eq "$vm: sum of flow records = its stats (rx/tx packets, bytes, segs)" \
		"$(jq -r --arg t "$tap" 'select(.type == "stats" and .final and .ifname == $t) |
			"\(.rx_packets) \(.rx_bytes) \(.tx_packets) \(.tx_bytes) \(.rx_segs) \(.tx_segs)"' "$TMP/stats.json")" \
		"$(jq -rs --arg t "$tap" '[.[] | select(.type == "flow" and .final and .ifname == $t)] |
			"\(map(.rx_packets) | add) \(map(.rx_bytes) | add) \(map(.tx_packets) | add) \(map(.tx_bytes) | add) \(map(.rx_segs) | add) \(map(.tx_segs) | add)"' "$F")"
	tf_eq "$vm: no overflow, unparsed or unaccounted bytes" 0 \
		"$(jq -rs --arg t "$tap" '[.[] | select(.type == "flow" and .final and .ifname == $t and
			.aggregate != null and .aggregate != "others") | .rx_bytes + .tx_bytes] | add' "$F")"
done
# Bridges and the uplink have no flows of their own (counters only).
tf_eq "flow records only for VM taps" "" \
	"$(jq -r 'select(.type == "flow" and .vm == null) | .ifname' "$F" | sort -u)"
tf_eq "summary: map_full 0, parse_errors 0, vms" "0 0 $(wc -w <<<"$TF_LAB_VMS")" \
	"$(jq -r 'select(.type == "summary") | "\(.map_full) \(.parse_errors) \(.vms)"' "$F")"
tf_lab_no_hook_left "$TMP/stats.json"
tf_finish
