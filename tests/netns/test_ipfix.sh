#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# tapflow agent --ipfix, read by real collectors: nfdump's nfcapd and
# pmacct's nfacctd (UDP), a TCP listener whose stream libfixbuf's ipfixDump
# decodes, an IPFIX file (ipfixDump), and tshark's decoder (cflow).
#
#   $NSV "VM" eth0 10.220.0.2 ---- p1 -- br0 10.220.0.1   $NSR, the "host":
#                                          ip_forward, MASQUERADE out of up0
#                                        up0 10.221.0.1 ====== eth0 10.221.0.2 $NSI
#                                                               ("internet": UDP echo)
#
# The agent runs in $NSR with --no-libvirt --iface p1 --uplink up0 (p1
# stands for a VM's tap) and exports to every collector at once. Scripted
# traffic, so every count is exact:
#   - UDP 40000 -> 7001, 20 datagrams of 100 bytes, echoed: NATed to
#     10.221.0.1 (src4_xlt_ip in nfdump);
#   - UDP 40001 -> 7002, 7 datagrams dropped in FORWARD: 7 dropped packets
#     in the flow's record (forwardingStatus dropped);
#   - 3 ICMP echo round trips.
# Flows end after the idle timeout (2 s) and their records go out then.
#   1. nfdump: addresses, ports, packets, IP bytes, NAT address and port.
#   2. nfacctd: the same flows, the same packets.
#   3. ipfixDump of the file: the element names, the interfaces' and the
#      exporter's options records, the drop reasons, the drops per flow.
#   4. Sums: each direction's layer2OctetDeltaCount == the agent's own
#      interface series == the kernel's counters of p1.
#   5. tshark decodes every export datagram, nothing malformed.
#   6. TCP: the same records; the collector goes away, records wait, it
#      comes back and gets them (templates first: ipfixDump reads the new
#      stream alone); a queue too small for them counts the rest lost.
#   7. --pin: an agent's records end at its stop; the next agent with the
#      same pins exports only what came after (nothing counted twice).
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/topo.sh"
TFNAT="$TOPO_DIR/tfnat.py"
NAME="netns ipfix"

netns_test_begin "$NAME" ipfix jq python3 iptables curl nfcapd nfdump nfacctd ipfixDump \
	tshark tcpdump socat

IP_V=10.220.0.2 IP_GW=10.220.0.1 IP_UP=10.221.0.1 IP_IN=10.221.0.2
MAC_BR=02:40:00:00:00:01 MAC_V=02:40:00:00:00:02 MAC_UP=02:41:00:00:00:01 MAC_IN=02:41:00:00:00:02

topo_ipfix() {
	tf_netns NSR rt && tf_netns NSV v && tf_netns NSI in || return 1
	for ns in $NSR $NSV $NSI; do quiet_netns $ns || return 1; done
	ip -n $NSR link add br0 address $MAC_BR type bridge stp_state 0 mcast_snooping 0 &&
	ip -n $NSR link add p1 type veth peer name eth0 netns $NSV address $MAC_V &&
	ip -n $NSR link add up0 address $MAC_UP type veth peer name eth0 netns $NSI \
		address $MAC_IN || return 1
	ip -n $NSR link set p1 master br0 up && ip -n $NSR link set br0 up &&
	ip -n $NSR link set up0 up && ip -n $NSR link set lo up &&
	ip -n $NSR addr add $IP_GW/24 dev br0 && ip -n $NSR addr add $IP_UP/24 dev up0 || return 1
	ip -n $NSV link set eth0 up && ip -n $NSV addr add $IP_V/24 dev eth0 &&
	ip -n $NSV route add default via $IP_GW || return 1
	ip -n $NSI link set eth0 up && ip -n $NSI addr add $IP_IN/24 dev eth0 || return 1
	ip -n $NSV neigh add $IP_GW lladdr $MAC_BR dev eth0 nud permanent &&
	ip -n $NSR neigh add $IP_V lladdr $MAC_V dev br0 nud permanent &&
	ip -n $NSR neigh add $IP_IN lladdr $MAC_IN dev up0 nud permanent &&
	ip -n $NSI neigh add $IP_UP lladdr $MAC_UP dev eth0 nud permanent || return 1
	bridge -n $NSR fdb add $MAC_V dev p1 master static || return 1
	nsq $NSR sysctl -qw net.ipv4.ip_forward=1 &&
	nsq $NSR iptables -t nat -A POSTROUTING -s 10.220.0.0/24 -o up0 -j MASQUERADE &&
	nsq $NSR iptables -A FORWARD -p udp --dport 7002 -j DROP
}
topo_ipfix || { tf_fail "topology" "cannot build the test topology"; tf_finish; }
tf_ok "topology: a VM namespace on a bridge, MASQUERADE router, internet"

bg_start ECHO "$OUT/echo.log" ip netns exec $NSI python3 "$TFNAT" udp-echo 4 7001 ||
	{ tf_fail "UDP echo server" "did not start"; tf_finish; }
bg_stop() { kill "$1" 2>/dev/null; wait "$1" 2>/dev/null; }
is() { [ "$("${@:2}")" == "$1" ]; }

BASE=$((21000 + TF_ID % 20000))
P_NFCAPD=$BASE P_NFACCTD=$((BASE + 1)) P_TCP=$((BASE + 2)) P_PROM=$((BASE + 3))
P_TCP2=$((BASE + 4)) P_PROM2=$((BASE + 5))
URL=http://127.0.0.1:$P_PROM/metrics
scrape() { nsq $NSR curl -sf "${2:-$URL}" >"$1"; }
metric() { grep -E "^$2\{[^}]*$3" "$1" | awk '{ print $2 }' | head -n1; }
# records FILE: the flow records ipfixDump finds in an IPFIX file or stream.
records() { ipfixDump -d -i "$1" 2>/dev/null | grep -c 'flowEndReason'; }

# ---- collectors ----------------------------------------------------------------
mkdir -p "$OUT/nfcapd" "$OUT/nfacctd"
ip netns exec $NSR nfcapd -b 127.0.0.1 -p $P_NFCAPD -w "$OUT/nfcapd" -t 3600 \
	</dev/null >"$OUT/nfcapd.log" 2>&1 &
NFCAPD=$!
tf_on_exit "kill_job $NFCAPD"
wait_for 5 sh -c "ip netns exec $NSR ss -Hlun | grep -q ':$P_NFCAPD '" ||
	{ tf_fail "nfcapd listens" "$(cat "$OUT/nfcapd.log")"; tf_finish; }
cat >"$OUT/nfacctd.conf" <<CONF
nfacctd_ip: 127.0.0.1
nfacctd_port: $P_NFACCTD
plugins: print
aggregate: src_host, dst_host, src_port, dst_port, proto
print_output: csv
print_output_file: $OUT/nfacctd/flows.csv
print_output_file_append: true
print_refresh_time: 1
CONF
ip netns exec $NSR nfacctd -f "$OUT/nfacctd.conf" </dev/null >"$OUT/nfacctd.log" 2>&1 &
NFACCTD=$!
# nfacctd's SIGTERM handler signals more than its own processes: SIGKILL, plugin first.
nfacctd_stop() { pkill -9 -P "$NFACCTD" 2>/dev/null; kill_job "$NFACCTD"; wait "$NFACCTD" 2>/dev/null; }
tf_on_exit "nfacctd_stop"
wait_for 5 sh -c "ip netns exec $NSR ss -Hlun | grep -q ':$P_NFACCTD '" ||
	{ tf_fail "nfacctd listens" "$(cat "$OUT/nfacctd.log")"; tf_finish; }
# tcp_listen VAR PORT FILE: a TCP collector's socket (a process per connection),
# the stream kept for ipfixDump; tcp_stop PID: it and its connections go.
tcp_listen() {
	ip netns exec $NSR socat -u TCP-LISTEN:"$2",bind=127.0.0.1,reuseaddr,fork \
		OPEN:"$3",creat,append </dev/null >>"$OUT/socat.log" 2>&1 &
	printf -v "$1" '%s' $!
	tf_on_exit "tcp_stop ${!1}"
	wait_for 5 sh -c "ip netns exec $NSR ss -Hltn | grep -q '127.0.0.1:$2 '"
}
tcp_stop() { pkill -P "$1" 2>/dev/null; kill "$1" 2>/dev/null; wait "$1" 2>/dev/null; }
tcp_listen SOCAT $P_TCP "$OUT/tcp1.ipfix" || { tf_fail "TCP listener" "did not start"; tf_finish; }
bg_start PCAP "$OUT/tcpdump.log" ip netns exec $NSR tcpdump -i lo -w "$OUT/export.pcap" \
	-U udp port $P_NFCAPD || { tf_fail "tcpdump" "did not start"; tf_finish; }

# ---- bad destinations: one line, before anything is attached ----------------------
"$TAPFLOW" --netns "$NSR" agent --no-libvirt --iface p1 --ipfix udpx://127.0.0.1:9 \
	>"$OUT/bad1.out" 2>"$OUT/bad1.err"
tf_eq "--ipfix udpx://...: usage error, exit 2, one line" "2 1" "$? $(grep -c . "$OUT/bad1.err")"
"$TAPFLOW" --netns "$NSR" agent --no-libvirt --iface p1 --prometheus 127.0.0.1:$P_PROM \
	--ipfix udp://no-such-host.invalid:9 >"$OUT/bad2.out" 2>"$OUT/bad2.err"
tf_eq "--ipfix udp://no-such-host.invalid:9: exit 1, one line" "1 1" "$? $(grep -c . "$OUT/bad2.err")"
tf_eq "... and nothing attached" "" "$(hooks_of $NSR p1)"

# ---- the agent -------------------------------------------------------------------
K0=$(kstats $NSR p1)
"$TAPFLOW" --netns "$NSR" agent --no-libvirt --iface p1 --uplink up0 -i 0.2 --idle-timeout 2 \
	--prometheus 127.0.0.1:$P_PROM --ipfix udp://127.0.0.1:$P_NFCAPD \
	--ipfix udp://127.0.0.1:$P_NFACCTD --ipfix tcp://127.0.0.1:$P_TCP \
	--ipfix file:"$OUT/agent.ipfix" >"$OUT/agent.out" 2>"$OUT/agent.err" &
AGENT=$!
tf_on_exit "kill_job $AGENT"
if wait_for 10 scrape "$OUT/m0.txt" && wait_attached $AGENT 2; then
	tf_ok "the agent runs with four IPFIX destinations"
else
	tf_fail "the agent runs with four IPFIX destinations" "$(cat "$OUT/agent.err")"
	tf_finish
fi

tf_eq "traffic: UDP 40000 -> 7001, 20 echoed" 20/20 \
	"$(nsq $NSV python3 "$TFNAT" udp $IP_V 40000 $IP_IN 7001 20 100)"
tf_eq "traffic: UDP 40001 -> 7002, 7 dropped in FORWARD" 0/7 \
	"$(nsq $NSV python3 "$TFNAT" udp $IP_V 40001 $IP_IN 7002 7 100 0)"
tf_eq "traffic: 3 echo round trips" 3/3 "$(nsq $NSV python3 "$TFNAT" ping $IP_IN 3 56 77)"
# Ended after 2 s idle: 5 records (two per flow; the dropped one has nothing back),
# in the file as soon as they are made.
if wait_for 15 is 5 records "$OUT/agent.ipfix"; then
	tf_ok "the flows ended: 5 records in the file"
else
	tf_fail "the flows ended: 5 records in the file" "$(records "$OUT/agent.ipfix") records"
fi
sleep 1.5	# nfacctd's print refresh
scrape "$OUT/m1.txt"
K1=$(kstats $NSR p1)
kill -TERM $AGENT
wait $AGENT
tf_eq "SIGTERM: exit 0" 0 $?
bg_stop $NFCAPD
nfacctd_stop
bg_stop $PCAP

# ---- 1. nfdump ----------------------------------------------------------------------
nfdump -R "$OUT/nfcapd" -o json >"$OUT/nfdump.json" 2>"$OUT/nfdump.err"
# nf SELECT FIELDS: one line of FIELDS of the records jq SELECT picks.
nf() { jq -r "[.[] | select($1)] | map($2) | join(\";\")" "$OUT/nfdump.json"; }
tf_eq "nfdump: UDP 7001 out: addresses, ports, packets, IP bytes" \
	"$IP_V 40000 $IP_IN 7001 17 20 2560" \
	"$(nf '.dst_port == 7001' '"\(.src4_addr) \(.src_port) \(.dst4_addr) \(.dst_port) \(.proto) \(.in_packets) \(.in_bytes)"')"
tf_eq "nfdump: UDP 7001 out: NAT to the uplink's address, the same port" \
	"$IP_UP 40000" "$(nf '.dst_port == 7001' '"\(.src4_xlt_ip) \(.src_xlt_port)"')"
tf_eq "nfdump: UDP 7001 back: addresses, ports, packets, IP bytes" \
	"$IP_IN 7001 $IP_V 40000 17 20 2560" \
	"$(nf '.src_port == 7001' '"\(.src4_addr) \(.src_port) \(.dst4_addr) \(.dst_port) \(.proto) \(.in_packets) \(.in_bytes)"')"
tf_eq "nfdump: UDP 7001 back: NAT, the uplink's side" "$IP_UP 40000" \
	"$(nf '.src_port == 7001' '"\(.dst4_xlt_ip) \(.dst_xlt_port)"')"
tf_eq "nfdump: UDP 7002: 7 packets out, none back, no NAT (it never left)" \
	"7 null" "$(nf '.dst_port == 7002 or .src_port == 7002' '"\(.in_packets) \(.src4_xlt_ip)"')"
tf_eq "nfdump: ICMP: 3 packets each way" "1 3;1 3" \
	"$(nf '.proto == 1' '"\(.proto) \(.in_packets)"')"
tf_eq "nfdump: 5 records in all" 5 "$(jq length "$OUT/nfdump.json")"

# ---- 2. nfacctd --------------------------------------------------------------------------
# csv: SRC_IP,DST_IP,SRC_PORT,DST_PORT,PROTOCOL,PACKETS,BYTES
nfa() { awk -F, -v s="$1" -v d="$2" '$1 == s && $4 == d { p += $6 } END { print p + 0 }' \
	"$OUT/nfacctd/flows.csv"; }
tf_eq "nfacctd: UDP 7001 out and back, 20 packets each" "20 20" \
	"$(nfa $IP_V 7001) $(awk -F, -v s=$IP_IN '$1 == s && $3 == 7001 { p += $6 } END { print p + 0 }' "$OUT/nfacctd/flows.csv")"
tf_eq "nfacctd: UDP 7002, 7 packets" 7 "$(nfa $IP_V 7002)"

# ---- 3. ipfixDump of the file --------------------------------------------------------------
ipfixDump -i "$OUT/agent.ipfix" >"$OUT/dump.txt" 2>&1
for ie in sourceIPv4Address destinationIPv4Address sourceTransportPort destinationTransportPort \
	protocolIdentifier octetDeltaCount layer2OctetDeltaCount packetDeltaCount \
	flowStartMilliseconds flowEndMilliseconds flowDirection flowEndReason forwardingStatus \
	droppedPacketDeltaCount droppedOctetDeltaCount virtualStationInterfaceName \
	ingressInterface egressInterface postNATSourceIPv4Address postNAPTSourceTransportPort \
	interfaceName interfaceDescription observationDomainName exportingProcessId \
	samplingPacketInterval; do
	grep -q "\b$ie\b" "$OUT/dump.txt" || missing+=" $ie"
done
tf_eq "ipfixDump: every element by its IANA name" "" "${missing:-}"
# dump_rec MATCH FIELD: FIELD's value in the data record that has MATCH (ipfixDump's layout).
tf_check "ipfixDump: the interfaces' options: p1 and up0 named" \
	grep -q 'interfaceName : (len: 3) up0$' "$OUT/dump.txt"
tf_check "ipfixDump: ... and described" \
	grep -q 'interfaceDescription : (len: [0-9]*) uplink up0$' "$OUT/dump.txt"
tf_check "ipfixDump: the exporter: its process id" grep -qE "exportingProcessId.*\b$AGENT\b" "$OUT/dump.txt"
tf_check "ipfixDump: the exporter: this host's name" \
	grep -q "observationDomainName : (len: [0-9]*) $(nsq $NSR hostname)\$" "$OUT/dump.txt"
tf_check "ipfixDump: the drop reasons by name" grep -q 'NETFILTER_DROP' "$OUT/dump.txt"
# The dropped flow's record: 7 packets, 7 dropped, forwardingStatus 128.
awk '/^--- data record/ { if (r ~ /destinationTransportPort : 7002\n/) print r; r = "" }
	{ r = r $0 "\n" } END { if (r ~ /destinationTransportPort : 7002\n/) print r }' \
	"$OUT/dump.txt" >"$OUT/drop_rec.txt"
tf_eq "ipfixDump: the dropped flow: 7 packets, 7 dropped, forwarding status dropped" "7 7 128" \
	"$(awk '/packetDeltaCount/ && !/dropped/ { p = $NF } /droppedPacketDeltaCount/ { d = $NF } /forwardingStatus/ { f = $NF } END { print p, d, f }' "$OUT/drop_rec.txt")"

# ---- 4. the same numbers ---------------------------------------------------------------------
# Frame bytes by direction from the file: flowDirection 1 (from the VM) and 0.
l2_sum() {
	ipfixDump -d -i "$OUT/agent.ipfix" 2>/dev/null | awk -v want="$1" '
		/^--- data record/ { if (dir == want) s += l2; dir = ""; l2 = 0 }
		/layer2OctetDeltaCount/ { l2 = $NF }
		/flowDirection/ { dir = $NF }
		END { if (dir == want) s += l2; print s + 0 }'
}
read -r krxp krxb ktxp ktxb <<<"$(kdelta "$K0" "$K1")"
# --iface p1: flowDirection in p1's own view, 0 received (what the VM sent), 1 transmitted.
tf_eq "sums: received by p1, IPFIX layer2 bytes == the agent's series == the kernel's" \
	"$krxb $krxb" "$(l2_sum 0) $(metric "$OUT/m1.txt" tapflow_interface_receive_bytes_total 'interface="p1"')"
tf_eq "sums: transmitted by p1, IPFIX layer2 bytes == the agent's series == the kernel's" \
	"$ktxb $ktxb" "$(l2_sum 1) $(metric "$OUT/m1.txt" tapflow_interface_transmit_bytes_total 'interface="p1"')"
tf_eq "metrics: records sent to each destination, none lost" "5 5 5 5 0" \
	"$(for d in udp://127.0.0.1:$P_NFCAPD udp://127.0.0.1:$P_NFACCTD tcp://127.0.0.1:$P_TCP file:$OUT/agent.ipfix; do
		metric "$OUT/m1.txt" tapflow_ipfix_records_total "destination=\"$d\""
	done | tr '\n' ' ')$(grep -E '^tapflow_ipfix_records_lost_total' "$OUT/m1.txt" | awk '{ s += $2 } END { print s + 0 }')"

# ---- 5. tshark ------------------------------------------------------------------------------------
tshark -r "$OUT/export.pcap" -d udp.port==$P_NFCAPD,cflow -T fields -e frame.number \
	-e _ws.malformed -e _ws.expert.severity -e cflow.version >"$OUT/tshark.txt" 2>/dev/null
tf_check "tshark: every export datagram decodes as IPFIX (version 10)" \
	awk -F'\t' 'NF < 2 || $4 != 10 { bad = 1 } END { exit bad || NR == 0 }' "$OUT/tshark.txt"
tf_eq "tshark: nothing malformed" 0 \
	"$(tshark -r "$OUT/export.pcap" -d udp.port==$P_NFCAPD,cflow -Y '_ws.malformed || _ws.expert.severity >= "error"' 2>/dev/null | wc -l)"
tf_eq "tshark: the 5 flow records" 5 \
	"$(tshark -r "$OUT/export.pcap" -d udp.port==$P_NFCAPD,cflow -T fields -e cflow.packets 2>/dev/null | tr ',' '\n' | grep -c .)"

# ---- 6. TCP ---------------------------------------------------------------------------------------
tf_eq "TCP: the collector got the same 5 records" 5 "$(records "$OUT/tcp1.ipfix")"

# agent NAME PROMPORT ARGS...: another agent of the same interfaces; pid in AG.
agent() {
	local name=$1 port=$2
	shift 2
	"$TAPFLOW" --netns "$NSR" agent --no-libvirt --iface p1 --uplink up0 -i 0.2 \
		--idle-timeout 1 --prometheus 127.0.0.1:$port "$@" \
		>"$OUT/$name.out" 2>"$OUT/$name.err" &
	AG=$!
	tf_on_exit "kill_job $AG"
	wait_for 10 scrape "$OUT/$name-m0.txt" http://127.0.0.1:$port/metrics &&
		wait_attached $AG 2 || { tf_fail "$name" "$(cat "$OUT/$name.err")"; tf_finish; }
}
# flows3: 3 UDP flows, echoed: 6 records once they end.
flows3() {
	local p
	for p in 0 1 2; do
		nsq $NSV python3 "$TFNAT" udp $IP_V $((40010 + p)) $IP_IN 7001 $((4 + p)) 100 >/dev/null
	done
}
up_of() { scrape "$OUT/up.txt" "$1" && metric "$OUT/up.txt" tapflow_ipfix_up "destination=\"$2\""; }

# The collector goes away, traffic ends three flows, it comes back.
agent agent2 $P_PROM2 --ipfix tcp://127.0.0.1:$P_TCP --ipfix file:"$OUT/agent2.ipfix"
AGENT2=$AG URL2=http://127.0.0.1:$P_PROM2/metrics
wait_for 5 is 1 up_of "$URL2" tcp://127.0.0.1:$P_TCP || tf_diag "not connected: $(cat "$OUT/agent2.err")"
tcp_stop $SOCAT
if wait_for 5 is 0 up_of "$URL2" tcp://127.0.0.1:$P_TCP; then
	tf_ok "TCP: the collector is gone: tapflow_ipfix_up 0"
else
	tf_fail "TCP: the collector is gone: tapflow_ipfix_up 0" "$(cat "$OUT/up.txt" | grep ipfix)"
fi
flows3
wait_for 15 is 6 records "$OUT/agent2.ipfix" || tf_diag "file: $(records "$OUT/agent2.ipfix") records"
tcp_listen SOCAT $P_TCP "$OUT/tcp2.ipfix"
if wait_for 40 is 6 records "$OUT/tcp2.ipfix"; then
	tf_ok "TCP: back, the collector gets the 6 records that waited"
else
	tf_fail "TCP: back, the collector gets the 6 records that waited" \
		"$(records "$OUT/tcp2.ipfix") records; $(cat "$OUT/agent2.err")"
fi
pkts() { ipfixDump -d -i "$1" 2>/dev/null | awk '/packetDeltaCount/ && !/dropped/ { print $NF }' | sort -n | tr '\n' ' '; }
tf_eq "TCP: the new stream starts with its templates (ipfixDump reads it alone)" \
	"4 4 5 5 6 6 " "$(pkts "$OUT/tcp2.ipfix")"
tf_check "TCP: the loss of the collector and its return are said" \
	grep -q "tcp://127.0.0.1:$P_TCP.*connected again" "$OUT/agent2.err"
scrape "$OUT/n1.txt" "$URL2"
tf_eq "TCP: nothing lost within the queue" 0 \
	"$(metric "$OUT/n1.txt" tapflow_ipfix_records_lost_total "destination=\"tcp://127.0.0.1:$P_TCP\"")"
kill -TERM $AGENT2
wait $AGENT2
tf_eq "SIGTERM: exit 0" 0 $?

# A queue of 2, and no collector until the records are made: 4 of 6 lost.
agent agent3 $P_PROM2 --ipfix tcp://127.0.0.1:$P_TCP2 --ipfix-queue 2 --ipfix file:"$OUT/agent3.ipfix"
AGENT3=$AG
flows3
wait_for 15 is 6 records "$OUT/agent3.ipfix" || tf_diag "file: $(records "$OUT/agent3.ipfix") records"
tcp_listen SOCAT2 $P_TCP2 "$OUT/tcp3.ipfix"
wait_for 40 is 2 records "$OUT/tcp3.ipfix"
tf_eq "TCP, a queue of 2: the collector gets 2 records" 2 "$(records "$OUT/tcp3.ipfix")"
scrape "$OUT/q1.txt" "$URL2"
tf_eq "TCP, a queue of 2: the other 4 counted lost" 4 \
	"$(metric "$OUT/q1.txt" tapflow_ipfix_records_lost_total "destination=\"tcp://127.0.0.1:$P_TCP2\"")"
tf_check "TCP: the loss is said in the log" grep -q "tcp://127.0.0.1:$P_TCP2.*lost" "$OUT/agent3.err"
kill -TERM $AGENT3
wait $AGENT3
tf_eq "SIGTERM: exit 0" 0 $?

# ---- 7. --pin: what one agent exported, the next does not export again --------------------
PIN=/sys/fs/bpf/tft$TF_ID-ipfix
tf_on_exit "rm -rf $PIN"
tf_on_exit "$TAPFLOW --netns $NSR agent --unpin $PIN"
agent pin1 $P_PROM2 --pin "$PIN" --ipfix file:"$OUT/pin1.ipfix"
nsq $NSV python3 "$TFNAT" udp $IP_V 40020 $IP_IN 7001 10 100 >/dev/null
kill -TERM $AG
wait $AG
agent pin2 $P_PROM2 --pin "$PIN" --ipfix file:"$OUT/pin2.ipfix"
nsq $NSV python3 "$TFNAT" udp $IP_V 40020 $IP_IN 7001 5 100 >/dev/null
kill -TERM $AG
wait $AG
tf_eq "--pin: the first agent's records end at its stop: 10 each way" "10 10 " "$(pkts "$OUT/pin1.ipfix")"
tf_eq "--pin: the next agent's hold only what came after: 5 each way" "5 5 " "$(pkts "$OUT/pin2.ipfix")"

tf_finish
