#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# End to end in the real libvirt lab: `tapflow agent --ipfix` feeding
# nfdump's nfcapd (UDP) and an IPFIX file, next to `tapflow flows` over
# the same window.
#
# Every guest runs its scripted traffic once. Then:
# - nfdump shows each guest's flows with its address: the UDP exchange
#   (5 datagrams each way, 128 IP bytes each) and the HTTP and ping flows
#   of the NAT guests with the packet counts `flows` counted, each way;
#   the NAT guests' flows carry the uplink's address and the port
#   conntrack chose (src4_xlt_ip/src_xlt_port out, dst4_xlt_* back);
# - the file, read by ipfixDump: every guest's domain name and UUID (virsh)
#   and tap, the interfaces' options ("VM alpha (52:54:00:…)"), the
#   exporter's host name;
# - each scripted flow's layer2OctetDeltaCount summed over its records
#   equals the flow's bytes in `flows`, each way.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"
. "$HERE/lab-env.sh"

tf_lab_begin e2e-ipfix
tf_need_tools "IPFIX export" nfcapd nfdump ipfixDump conntrack curl jq

labns() { ip netns exec "$TF_LAB_NS" "$@"; }
UPLINK=$(ip -n "$TF_LAB_NS" -j route show default | jq -r '.[0].dev // empty')
UPLINK_IP=$(ip -n "$TF_LAB_NS" -4 -j addr show dev "$UPLINK" | jq -r '.[0].addr_info[0].local // empty')

tf --json list >"$TMP/list.json" 2>"$TMP/list.err"
declare -A TAP
for vm in $TF_LAB_VMS; do
	TAP[$vm]=$(jq -r --arg vm "$vm" 'select(.vm == $vm) | .ifname' "$TMP/list.json")
done

P=$((23000 + $$ % 10000)) PP=$((23001 + $$ % 10000))
mkdir -p "$TMP/nfcapd"
ip netns exec "$TF_LAB_NS" nfcapd -b 127.0.0.1 -p $P -w "$TMP/nfcapd" -t 3600 </dev/null \
	>"$TMP/nfcapd.log" 2>&1 &
NFCAPD=$!
tf_on_exit "kill $NFCAPD 2>/dev/null"
"${TF[@]}" agent -i 0.5 --prometheus 127.0.0.1:$PP --ipfix udp://127.0.0.1:$P \
	--ipfix file:"$TMP/lab.ipfix" >"$TMP/agent.out" 2>"$TMP/agent.err" &
AGENT=$!
tf_on_exit "kill $AGENT 2>/dev/null"
"${TF[@]}" --json flows -i 1 >"$TMP/flows.json" 2>"$TMP/flows.err" &
FLOWS=$!
tf_on_exit "kill $FLOWS 2>/dev/null"
up() { labns curl -sf http://127.0.0.1:$PP/metrics | grep -q '^tapflow_interfaces_attached [1-9]'; }
for _ in $(seq 100); do up && break; sleep 0.1; done
tf_wait_record "$TMP/flows.json" flow
if up; then tf_ok "agent and flows attached"; else tf_fail "agent and flows attached" "$(cat "$TMP/agent.err")"; fi

"$TF_LAB_SH" release $TF_LAB_VMS
"$TF_LAB_SH" wait-done $TF_LAB_VMS 180 >/dev/null
tf_eq "guest scripts done" 0 $?
labns conntrack -L -f ipv4 >"$TMP/ct.txt" 2>/dev/null
sleep 1
# The end of the run: every flow's last records (flowEndReason: forced end).
kill -TERM $AGENT
wait $AGENT
tf_eq "agent exits 0 on SIGTERM" 0 $?
kill -INT $FLOWS
wait $FLOWS
tf_eq "flows exits 0 on SIGINT" 0 $?
sleep 0.5
kill $NFCAPD
wait $NFCAPD 2>/dev/null
tf_check "the agent said what it sent" grep -q "ipfix udp://127.0.0.1:$P: [0-9]* records sent" "$TMP/agent.err"

nfdump -R "$TMP/nfcapd" -o json >"$TMP/nfdump.json" 2>"$TMP/nfdump.err"
tf_check "nfdump reads what nfcapd got" jq -e 'length > 0' "$TMP/nfdump.json"
# nf FILTER FIELDS: FIELDS of the nfdump records FILTER picks, summed per field when numeric.
nfsum() { jq -r "[.[] | select($1)] | \"\(map(.in_packets) | add // 0) \(map(.in_bytes) | add // 0)\"" "$TMP/nfdump.json"; }
nfone() { jq -r "[.[] | select($1)] | map($2) | unique | join(\";\")" "$TMP/nfdump.json"; }
# flow_rec TAP FILTER: the final `flows` record of TAP that matches.
flow_rec() {
	jq -c --arg t "$1" "select(.type == \"flow\" and .final and .aggregate == null and .ifname == \$t) | select($2)" \
		"$TMP/flows.json"
}
# ct_port PROTO SRC SPORT|ID: the port (ICMP: identifier) conntrack translated SRC's flow to.
ct_port() {
	awk -v p="$1" -v s="$2" -v k="$3" '$1 == p {
		split("", v); split("", n)
		for (i = 2; i <= NF; i++) if (split($i, kv, "=") == 2) { n[kv[1]]++; v[kv[1] n[kv[1]]] = kv[2] }
		if (v["src1"] != s) next
		if (p == "icmp") { if (v["id1"] == k) print v["id2"] } else if (v["sport1"] == k) print v["dport2"]
	}' "$TMP/ct.txt" | head -n1
}

for vm in $TF_LAB_VMS; do
	u=${vm^^} tap=${TAP[$vm]}
	ipv=TF_LAB_${u}_IP modev=TF_LAB_${u}_MODE udpv=TF_LAB_${u}_UDP httpv=TF_LAB_${u}_HTTP pingv=TF_LAB_${u}_PING
	ip=${!ipv} mode=${!modev} udp=${!udpv} http=${!httpv} ping=${!pingv}
	tf_check "$vm: nfdump has flows from $ip" jq -e --arg ip "$ip" 'any(.[]; .src4_addr == $ip)' "$TMP/nfdump.json"
	if [ -n "$udp" ]; then
		srv=${udp%:*} port=${udp#*:}
		tf_eq "$vm: UDP $ip:$TF_LAB_UDP_SPORT -> $udp: 5 packets, 640 IP bytes" "5 640" \
			"$(nfsum ".src4_addr == \"$ip\" and .src_port == $TF_LAB_UDP_SPORT and .dst_port == $port")"
		tf_eq "$vm: UDP back: 5 packets, 640 IP bytes" "5 640" \
			"$(nfsum ".dst4_addr == \"$ip\" and .dst_port == $TF_LAB_UDP_SPORT and .src_port == $port")"
		if [ "$mode" = nat ]; then
			cp=$(ct_port udp "$ip" "$TF_LAB_UDP_SPORT")
			tf_eq "$vm: UDP out: NAT to $UPLINK_IP port $cp (conntrack)" "$UPLINK_IP $cp" \
				"$(nfone ".src4_addr == \"$ip\" and .src_port == $TF_LAB_UDP_SPORT and .dst_port == $port" '"\(.src4_xlt_ip) \(.src_xlt_port)"')"
			tf_eq "$vm: UDP back: NAT, the uplink's side" "$UPLINK_IP $cp" \
				"$(nfone ".dst4_addr == \"$ip\" and .dst_port == $TF_LAB_UDP_SPORT" '"\(.dst4_xlt_ip) \(.dst_xlt_port)"')"
		fi
	fi
	if [ -n "$http" ]; then
		r=$(flow_rec "$tap" ".proto == \"tcp\" and .remote_ip == \"$http\" and .remote_port == 80")
		sport=$(jq -r .local_port <<<"$r" | head -n1)
		tf_eq "$vm: HTTP: packets each way as flows counted them" \
			"$(jq -r '"\(.tx_packets) \(.rx_packets)"' <<<"$r")" \
			"$(nfsum ".src4_addr == \"$ip\" and .src_port == $sport and .dst_port == 80" | cut -d' ' -f1) $(nfsum ".dst4_addr == \"$ip\" and .dst_port == $sport and .src_port == 80" | cut -d' ' -f1)"
		if [ "$mode" = nat ]; then
			tf_eq "$vm: HTTP out: NAT port as conntrack's" "$UPLINK_IP $(ct_port tcp "$ip" "$sport")" \
				"$(nfone ".src4_addr == \"$ip\" and .src_port == $sport and .dst_port == 80" '"\(.src4_xlt_ip) \(.src_xlt_port)"')"
		fi
	fi
	if [ -n "$ping" ]; then
		r=$(flow_rec "$tap" ".proto == \"icmp\" and .remote_ip == \"$ping\"")
		tf_eq "$vm: ping $ping: packets each way as flows counted them" \
			"$(jq -rs '"\(map(.tx_packets) | add) \(map(.rx_packets) | add)"' <<<"$r")" \
			"$(nfsum ".proto == 1 and .src4_addr == \"$ip\" and .dst4_addr == \"$ping\"" | cut -d' ' -f1) $(nfsum ".proto == 1 and .dst4_addr == \"$ip\" and .src4_addr == \"$ping\"" | cut -d' ' -f1)"
	fi
done

# ---- the file: names, and layer-2 bytes as `flows` counted them ------------------
ipfixDump --hexdump=16 -i "$TMP/lab.ipfix" >"$TMP/dump.txt" 2>&1
# ipfix_has IE VALUE: an element of that value in the file (ipfixDump's "IE : (len: N) VALUE").
ipfix_has() { grep -qiE "\b$1 : (\(len: [0-9]+\) )?$2\$" "$TMP/dump.txt"; }
tf_check "ipfixDump: the exporter is this host" ipfix_has observationDomainName "$(labns hostname)"
for vm in $TF_LAB_VMS; do
	u=${vm^^} macv=TF_LAB_${vm^^}_MAC
	uuid=$(tf_lab_virsh domuuid "$vm" | tr -d '-')
	tf_check "$vm: its records name the domain" ipfix_has virtualStationName "$vm"
	tf_check "$vm: its records carry its UUID" ipfix_has virtualStationUUID "0x$uuid"
	tf_check "$vm: its records name its tap ${TAP[$vm]}" \
		ipfix_has virtualStationInterfaceName "${TAP[$vm]}"
	tf_check "$vm: the interfaces' options describe its tap" \
		ipfix_has interfaceDescription "VM $vm \\(${!macv}\\)"
done

# One line per flow record of the file: "src sport dst dport proto l2bytes".
awk '/^--- / { if (l2 != "") print src, sp, dst, dp, pr, l2; src = sp = dst = dp = pr = l2 = "" }
	/\(8\) *sourceIPv4Address :/ { src = $NF } /\(12\) *destinationIPv4Address :/ { dst = $NF }
	/\(7\) *sourceTransportPort :/ { sp = $NF } /\(11\) *destinationTransportPort :/ { dp = $NF }
	/\(4\) *protocolIdentifier :/ { pr = $NF } /\(352\) *layer2OctetDeltaCount :/ { l2 = $NF }
	END { if (l2 != "") print src, sp, dst, dp, pr, l2 }' "$TMP/dump.txt" >"$TMP/l2.txt"
# l2 SRC SPORT DST DPORT: layer2OctetDeltaCount summed over that direction's records.
l2() { awk -v s="$1" -v sp="$2" -v d="$3" -v dp="$4" \
	'$1 == s && $2 == sp && $3 == d && $4 == dp { n += $6 } END { print n + 0 }' "$TMP/l2.txt"; }
for vm in $TF_LAB_VMS; do
	u=${vm^^} tap=${TAP[$vm]}
	ipv=TF_LAB_${u}_IP udpv=TF_LAB_${u}_UDP httpv=TF_LAB_${u}_HTTP
	ip=${!ipv} udp=${!udpv} http=${!httpv}
	if [ -n "$udp" ]; then
		r=$(flow_rec "$tap" ".proto == \"udp\" and .local_port == $TF_LAB_UDP_SPORT and .remote_port == ${udp#*:}")
		tf_eq "$vm: UDP: layer2OctetDeltaCount each way == flows' bytes" \
			"$(jq -r '"\(.tx_bytes) \(.rx_bytes)"' <<<"$r")" \
			"$(l2 "$ip" $TF_LAB_UDP_SPORT "${udp%:*}" "${udp#*:}") $(l2 "${udp%:*}" "${udp#*:}" "$ip" $TF_LAB_UDP_SPORT)"
	fi
	if [ -n "$http" ]; then
		r=$(flow_rec "$tap" ".proto == \"tcp\" and .remote_ip == \"$http\" and .remote_port == 80")
		sport=$(jq -r .local_port <<<"$r" | head -n1)
		tf_eq "$vm: HTTP: layer2OctetDeltaCount each way == flows' bytes" \
			"$(jq -r '"\(.tx_bytes) \(.rx_bytes)"' <<<"$r")" \
			"$(l2 "$ip" "$sport" "$http" 80) $(l2 "$http" 80 "$ip" "$sport")"
	fi
done

tf_lab_no_hook_left "$TMP/flows.json"
tf_finish
