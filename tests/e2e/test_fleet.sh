#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# A fleet on existing engines: two agents, one real Prometheus scraping both
# with the shipped config (contrib/prometheus: scrape, relabel, recording
# rules, remote write), one real VictoriaMetrics (single node) that gets
# everything by remote write, and the shipped Grafana dashboard's queries.
#
#   tflab (the lab: libvirt, VMs)   agent A on 10.201.1.2 --.
#   hv2 (no libvirt, --iface tfh2)  agent B on 10.201.2.2 --+-- mon: prometheus -> victoria-metrics
#   hv2 tfh2 ==== tfp2 in hv2p (traffic)                    |   (10.201.1.1, 10.201.2.1)
#
#   - VictoriaMetrics answers both hosts' series: each lab VM's totals over
#     the scripted traffic == its `virsh domifstat` deltas; the second
#     host's interface == the kernel's own counters, exactly.
#   - The recording rules' series arrive too (remote write of rule output).
#   - Every query of contrib/grafana/tapflow.json returns data.
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
. "$HERE/../lib.sh"
. "$HERE/lab-env.sh"

tf_lab_begin e2e-fleet
tf_need_tools e2e-fleet prometheus victoria-metrics curl jq
APORT=$((22000 + TF_ID % 10000)) PPORT=$((32000 + TF_ID % 10000)) VPORT=$((42000 + TF_ID % 10000))
tf_netns MON mon && tf_netns HV2 hv2 && tf_netns HV2P hv2p ||
	{ tf_fail "namespaces" "cannot create them"; tf_finish; }
lab() { ip netns exec "$TF_LAB_NS" "$@"; }
mon() { ip netns exec "$MON" "$@"; }
now() { date +%s.%N; }
wait_for() { local i; for ((i = 0; i < ${2:-100}; i++)); do eval "$1" && return 0; sleep 0.3; done; return 1; }

# The monitoring namespace reaches each host's agent over a /30 of its own.
ip link add tfm$TF_ID netns "$MON" type veth peer name tfml$TF_ID netns "$TF_LAB_NS" &&
	tf_on_exit "ip -n $MON link del tfm$TF_ID" &&
	ip -n "$MON" addr add 10.201.1.1/30 dev tfm$TF_ID && ip -n "$MON" link set tfm$TF_ID up &&
	ip -n "$TF_LAB_NS" addr add 10.201.1.2/30 dev tfml$TF_ID && ip -n "$TF_LAB_NS" link set tfml$TF_ID up &&
ip link add tfn$TF_ID netns "$MON" type veth peer name tfnh netns "$HV2" &&
	ip -n "$MON" addr add 10.201.2.1/30 dev tfn$TF_ID && ip -n "$MON" link set tfn$TF_ID up &&
	ip -n "$HV2" addr add 10.201.2.2/30 dev tfnh && ip -n "$HV2" link set tfnh up &&
ip link add tfh2 netns "$HV2" address 02:82:00:00:00:01 type veth peer name tfp2 netns "$HV2P" \
	address 02:82:00:00:00:02 &&
	ip -n "$HV2" addr add 10.82.0.1/24 dev tfh2 && ip -n "$HV2P" addr add 10.82.0.2/24 dev tfp2 &&
	ip -n "$HV2" neigh add 10.82.0.2 lladdr 02:82:00:00:00:02 dev tfh2 nud permanent &&
	ip -n "$HV2P" neigh add 10.82.0.1 lladdr 02:82:00:00:00:01 dev tfp2 nud permanent &&
	ip -n "$HV2" link set tfh2 up && ip -n "$HV2P" link set tfp2 up ||
	{ tf_fail "links" "cannot create them"; tf_finish; }
for ns in $HV2 $HV2P; do
	ip netns exec $ns sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
done
# The second host drops what its peer sends to port 9: a drop for the dashboard.
ip netns exec "$HV2" iptables -A INPUT -p udp --dport 9 -j DROP
ip netns exec "$HV2P" iptables -A INPUT -p udp -j DROP

"${TF[@]}" agent --prometheus 10.201.1.2:$APORT >"$TMP/a.out" 2>"$TMP/a.err" &
AGENT_A=$!
tf_on_exit "kill -9 $AGENT_A"
K0=$(ip -n "$HV2" -s -j link show dev tfh2 | jq -r '.[0].stats64 | "\(.rx.packets) \(.rx.bytes) \(.tx.packets) \(.tx.bytes)"')
"$TAPFLOW" --netns "$HV2" agent --no-libvirt --iface tfh2 --prometheus 10.201.2.2:$APORT \
	>"$TMP/b.out" 2>"$TMP/b.err" &
AGENT_B=$!
tf_on_exit "kill -9 $AGENT_B"

# The shipped configs, pointed at this test's agents and VictoriaMetrics, every second.
cp "$ROOT/contrib/prometheus/tapflow.rules.yml" "$TMP/"
sed -e "s/hv01.example.net:9560/10.201.1.2:$APORT/; s/hv02.example.net:9560/10.201.2.2:$APORT/" \
	-e "s#http://victoria:8428#http://127.0.0.1:$VPORT#" \
	-e "s/\(scrape_interval\|evaluation_interval\): 15s/\1: 1s/; s/scrape_timeout: 10s/scrape_timeout: 1s/" \
	"$ROOT/contrib/prometheus/prometheus.yml" >"$TMP/prometheus.yml"
grep -q "10.201.2.2:$APORT" "$TMP/prometheus.yml" && grep -q "127.0.0.1:$VPORT" "$TMP/prometheus.yml" ||
	tf_fail "the shipped prometheus.yml takes the test's targets" "$(cat "$TMP/prometheus.yml")"
# Queries see samples a second old (the default hides the last 30 s).
mon victoria-metrics -httpListenAddr=127.0.0.1:$VPORT -storageDataPath="$TMP/vm" \
	-search.latencyOffset=1s -loggerLevel=ERROR >"$TMP/vm.log" 2>&1 &
VM=$!
tf_on_exit "kill -9 $VM"
mon prometheus --config.file="$TMP/prometheus.yml" --storage.tsdb.path="$TMP/prom" \
	--web.listen-address=127.0.0.1:$PPORT --log.level=warn >"$TMP/prom.log" 2>&1 &
PROM=$!
tf_on_exit "kill -9 $PROM"

# vq TIME QUERY: VictoriaMetrics' answer, one "instance<TAB>domain<TAB>value" line per series.
vq() {
	mon curl -sf "http://127.0.0.1:$VPORT/api/v1/query" --data-urlencode "query=$2" \
		--data-urlencode "time=$1" |
		jq -r '.data.result[] | "\(.metric.instance // "")\t\(.metric.domain // "")\t\(.value[1])"'
}
# of LINES INSTANCE DOMAIN: the value of that series.
of() { awk -F'\t' -v i="$2" -v d="$3" '$1 == i && $2 == d { print $3 }' <<<"$1"; }
both_up() { [ "$(vq "$(now)" 'sum(tapflow_up)' | cut -f3)" = 2 ]; }
if wait_for both_up 150; then
	tf_ok "VictoriaMetrics has both agents (remote write from Prometheus)"
else
	tf_fail "VictoriaMetrics has both agents" "$(tail -n3 "$TMP/a.err" "$TMP/b.err" "$TMP/prom.log" "$TMP/vm.log")"
	tf_finish
fi

# ---- the traffic, on both hosts --------------------------------------------
declare -A B E
for vm in $TF_LAB_VMS; do B[$vm]=$(tf_lab_ifstat "$vm"); done
sleep 2.5
T0=$(now)
"$TF_LAB_SH" release $TF_LAB_VMS
ip netns exec "$HV2" python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(300): s.sendto(b'x' * 500, ('10.82.0.2', 7000 + i % 12))"
ip netns exec "$HV2P" python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(40): s.sendto(b'y' * 100, ('10.82.0.1', 9))"
"$TF_LAB_SH" wait-done $TF_LAB_VMS 180 >"$TMP/done.txt"
tf_eq "guest scripts done" 0 $?
sleep 1
for vm in $TF_LAB_VMS; do E[$vm]=$(tf_lab_ifstat "$vm"); done
K1=$(ip -n "$HV2" -s -j link show dev tfh2 | jq -r '.[0].stats64 | "\(.rx.packets) \(.rx.bytes) \(.tx.packets) \(.tx.bytes)"')
sleep 2.5
T1=$(now)
# Remote write batches: wait until VictoriaMetrics has a sample from after T1.
synced() { [ -n "$(vq "$(now)" "tapflow_up and timestamp(tapflow_up) > $T1")" ]; }
wait_for synced 100 || tf_fail "VictoriaMetrics caught up" "$(tail -n3 "$TMP/prom.log")"

declare -A V0 V1
for m in receive_packets receive_bytes transmit_packets transmit_bytes; do
	q="sum by (instance, domain) (tapflow_interface_${m}_total{role=~\"tap|iface\"})"
	V0[$m]=$(vq "$T0" "$q")
	V1[$m]=$(vq "$T1" "$q")
done
# delta INSTANCE DOMAIN: the 4 counters' increase between T0 and T1, domifstat's order.
delta() {
	local m out=""
	for m in receive_packets receive_bytes transmit_packets transmit_bytes; do
		out+="$(( $(of "${V1[$m]}" "$1" "$2") - $(of "${V0[$m]}" "$1" "$2") )) "
	done
	echo "${out% }"
}
for vm in $TF_LAB_VMS; do
	tf_lab_agree "host 1, $vm: VictoriaMetrics = domifstat delta" \
		"$(tf_lab_delta "${B[$vm]}" "${E[$vm]}")" "$(delta 10.201.1.2 "$vm")"
done
tf_eq "host 2, tfh2: VictoriaMetrics = the kernel's counters, exactly" \
	"$(tf_lab_delta "$K0" "$K1")" "$(delta 10.201.2.2 "")"
tf_eq "host 2: the scripted traffic (300 sent, 40 received)" "40 300" \
	"$(tf_lab_delta "$K0" "$K1" | awk '{ print $1, $3 }')"

# ---- recording rules and the dashboard ------------------------------------------
tf_check "recording rules reach VictoriaMetrics (instance_domain:tapflow_receive_bits:rate1m)" \
	test -n "$(vq "$(now)" 'instance_domain:tapflow_receive_bits:rate1m{domain="alpha"}')"
# A VM's own drop, for the panels of drops per VM: alpha's pings dropped in forwarding.
lab iptables -I FORWARD 1 -s "$TF_LAB_ALPHA_IP" -p icmp -j DROP
tf_on_exit "ip netns exec $TF_LAB_NS iptables -D FORWARD -s $TF_LAB_ALPHA_IP -p icmp -j DROP"
"$TF_LAB_SH" release -s ping alpha && "$TF_LAB_SH" wait-done alpha 60 >/dev/null
lab iptables -D FORWARD -s "$TF_LAB_ALPHA_IP" -p icmp -j DROP
dropped() { [ -n "$(vq "$(now)" 'tapflow_drops_total{domain="alpha"} > 0')" ]; }
wait_for dropped 100 && tf_ok "alpha's dropped pings reach VictoriaMetrics" ||
	tf_fail "alpha's dropped pings reach VictoriaMetrics" "$(vq "$(now)" 'tapflow_drops_total')"
sleep 3	# rate() over 1m wants two samples of the drop counters
n=0
while IFS=$'\t' read -r title expr; do
	n=$((n + 1))
	res=$(mon curl -sf "http://127.0.0.1:$VPORT/api/v1/query" --data-urlencode "query=$expr")
	if [ "$(jq -r '.status' <<<"$res")" = success ] && [ "$(jq '.data.result | length' <<<"$res")" -gt 0 ]; then
		tf_ok "dashboard: '$title' returns data"
	else
		tf_fail "dashboard: '$title' returns data" "$expr -> ${res:0:300}"
	fi
done < <("$ROOT/tools/dashboard-queries.sh" --expand "$ROOT/contrib/grafana/tapflow.json")
tf_check "the dashboard has queries ($n)" test "$n" -ge 10

kill -TERM $AGENT_A $AGENT_B
wait $AGENT_A; ra=$?
wait $AGENT_B; rb=$?
tf_eq "both agents exit 0 on SIGTERM" "0 0" "$ra $rb"
tf_finish
