#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# tapflow agent in the real libvirt lab, scraped every second by a real
# Prometheus (Debian's, started here with its own config and data dir, on
# a private port inside the lab's namespace).
#
#   - The agent runs with --pin and is SIGKILLed in the middle of the
#     scripted traffic, which ends while no agent runs; then it is started
#     again with the same --pin: every VM's
#     increase of bytes and packets over the whole traffic, asked of
#     Prometheus in PromQL (x @ end - x @ start, summed by domain), still
#     equals its `virsh domifstat` deltas (0.5 % / 5 packets): no gap, no
#     double count. increase() itself agrees within its extrapolation to
#     the window's edges.
#   - A VM started during the run appears (traced 1); destroyed, it is
#     traced 0 and its series stop growing.
#   - promtool check metrics on what Prometheus scraped; the agent's own
#     up/health series; SIGTERM: exit 0, no hook left.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"
. "$HERE/lab-env.sh"

tf_lab_begin e2e-agent
tf_need_tools e2e-agent prometheus promtool curl jq
APORT=$((21000 + TF_ID % 10000)) PPORT=$((31000 + TF_ID % 10000))
BLANK=tfagent-blank$TF_ID BLANKMAC=52:54:00:7f:00:f5
lab() { ip netns exec "$TF_LAB_NS" "$@"; }

# pq TIME QUERY: Prometheus' answer at TIME, one "domain<TAB>value" line per series.
pq() {
	lab curl -sf "http://127.0.0.1:$PPORT/api/v1/query" --data-urlencode "query=$2" \
		--data-urlencode "time=$1" |
		jq -r '.data.result[] | "\(.metric.domain // "")\t\(.value[1])"'
}
# vm_of LINES VM: the value of VM in pq's lines.
vm_of() { awk -F'\t' -v d="$2" '$1 == d { print $2 }' <<<"$1"; }
now() { date +%s.%N; }
# last_scrape T: when Prometheus last scraped the agent successfully at or before T.
last_scrape() { pq "$1" 'timestamp(tapflow_up == 1)' | cut -f2; }
# scraped_after T: wait (20 s at most) until a scrape of the agent after T succeeded:
# a snapshot of domifstat then has a sample on its side (under load, scrapes can fail).
scraped_after() {
	local i
	for ((i = 0; i < 100; i++)); do
		awk -v t="$(last_scrape "$(now)")" -v a="$1" 'BEGIN { exit !(t > a) }' && return 0
		sleep 0.2
	done
	return 1
}
wait_for() { local i; for ((i = 0; i < ${2:-100}; i++)); do eval "$1" && return 0; sleep 0.2; done; return 1; }

PIN=/sys/fs/bpf/tft$TF_ID-agent
tf_on_exit "rmdir $PIN"
tf_on_exit "'$TAPFLOW' --netns $TF_LAB_NS agent --unpin $PIN"
"${TF[@]}" agent --pin $PIN --prometheus 127.0.0.1:$APORT >"$TMP/agent.out" 2>"$TMP/agent.err" &
AGENT=$!
tf_on_exit "kill -9 $AGENT"
cat >"$TMP/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: tapflow
    static_configs:
      - targets: ['127.0.0.1:$APORT']
EOF
lab prometheus --config.file="$TMP/prometheus.yml" --storage.tsdb.path="$TMP/prom" \
	--web.listen-address=127.0.0.1:$PPORT --log.level=warn >"$TMP/prom.log" 2>&1 &
PROM=$!
tf_on_exit "kill -9 $PROM"
if wait_for '[ "$(pq "$(now)" tapflow_up | cut -f2)" = 1 ]' 150; then
	tf_ok "Prometheus scrapes the agent (tapflow_up 1)"
else
	tf_fail "Prometheus scrapes the agent (tapflow_up 1)" "$(tail -n3 "$TMP/agent.err" "$TMP/prom.log")"
	tf_finish
fi

# ---- the scripted traffic, through Prometheus -------------------------------
declare -A B E
for vm in $TF_LAB_VMS; do B[$vm]=$(tf_lab_ifstat "$vm"); done
scraped_after "$(now)" || tf_diag "no scrape after the snapshot within 20 s"
T0=$(now)
"$TF_LAB_SH" release $TF_LAB_VMS
# Mid-traffic the agent dies without a word; the rest of the traffic flows
# while no agent runs, counted by the pinned programs alone.
sleep 0.5
kill -9 $AGENT
wait $AGENT 2>/dev/null
"$TF_LAB_SH" wait-done $TF_LAB_VMS 180 >"$TMP/done.txt"
tf_eq "guest scripts done (no agent running)" 0 $?
"${TF[@]}" agent --pin $PIN --prometheus 127.0.0.1:$APORT >"$TMP/agent2.out" 2>"$TMP/agent2.err" &
AGENT=$!
tf_on_exit "kill -9 $AGENT"
took_over() {
	grep -Eq "^tapflow: agent .*: tracing [0-9]+ interfaces \([1-9][0-9]* carried on from the pins in $PIN\)" \
		"$TMP/agent2.err"
}
wait_for took_over && tf_ok "the second agent took over the pins" ||
	tf_fail "the second agent took over the pins" "$(cat "$TMP/agent.err" "$TMP/agent2.err")"
sleep 1
for vm in $TF_LAB_VMS; do E[$vm]=$(tf_lab_ifstat "$vm"); done
scraped_after "$(now)" || tf_diag "no scrape after the snapshot within 20 s"
T1=$(now)
# From the last scrape before the traffic: increase() needs a sample on either side of it.
W=$(awk -v a="$(last_scrape "$T0")" -v b="$T1" 'BEGIN { printf "%d", b - a + 1 }')
declare -A GOT INC
for m in receive_packets receive_bytes transmit_packets transmit_bytes; do
	sel="tapflow_interface_${m}_total{role=\"tap\"}"
	GOT[$m]=$(pq "$T1" "sum by (domain) ($sel @ $T1 - $sel @ $T0)")
	INC[$m]=$(pq "$T1" "sum by (domain) (increase(${sel}[${W}s]))")
done
for vm in $TF_LAB_VMS; do
	got="$(vm_of "${GOT[receive_packets]}" $vm) $(vm_of "${GOT[receive_bytes]}" $vm)"
	got+=" $(vm_of "${GOT[transmit_packets]}" $vm) $(vm_of "${GOT[transmit_bytes]}" $vm)"
	want=$(tf_lab_delta "${B[$vm]}" "${E[$vm]}")
	tf_lab_agree "$vm: Prometheus increase across a SIGKILL = domifstat delta" "$want" "$got"
	# increase() extrapolates to the window's edges, and over the agent's
	# missing scrapes: up to a quarter over a window this short. It can also
	# come out under: a sample is stamped when its scrape starts and read
	# when the agent answers, so under load the sample before the traffic
	# can already hold its first packets (a tenth, seen: 915 of 980 bytes).
	read -r _ wrxb _ <<<"$want"
	inc=$(vm_of "${INC[receive_bytes]}" $vm)
	if awk -v w="$wrxb" -v g="${inc:-0}" 'BEGIN { exit !(g >= w * 0.85 && g <= w * 1.25 + 1000) }'; then
		tf_ok "$vm: increase() within its extrapolation ($inc vs $wrxb)"
	else
		tf_fail "$vm: increase() within its extrapolation" "increase $inc, domifstat $wrxb"
	fi
done
rxb=$(vm_of "${GOT[receive_bytes]}" alpha)
tf_check "alpha: the HTTP download went through (${rxb:-0} bytes)" awk -v b="${rxb:-0}" 'BEGIN { exit !(b >= 1048576) }'

# ---- a VM started during the run, then destroyed ------------------------------
tf_lab_blank_xml $BLANK "$TF_LAB_ALPHA_NET" $BLANKMAC >"$TMP/blank.xml"
tf_on_exit "virsh -q -c '$TF_LAB_URI' destroy $BLANK"
tf_lab_virsh create "$TMP/blank.xml" >/dev/null || tf_fail "blank VM" "virsh create failed"
traced() { [ "$(vm_of "$(pq "$(now)" "tapflow_interface_traced{domain=\"$BLANK\"}")" $BLANK)" = "$1" ]; }
wait_for "traced 1" && tf_ok "a VM started during the run appears in Prometheus" ||
	tf_fail "a VM started during the run appears in Prometheus" "$(tail -n3 "$TMP/agent2.err")"
# It boots nothing and sends nothing: 20 frames to its MAC, flooded to its tap by the bridge.
lab python3 -c "
import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[1], 0))
dst = bytes.fromhex(sys.argv[2].replace(':', ''))
for _ in range(20):
    s.send(dst + bytes.fromhex('027f0000aa01') + b'\x88\xb5' + b'tapflow-e2e'.ljust(46, b'.'))
" "$TF_LAB_ALPHA_BRIDGE" $BLANKMAC
sel="tapflow_interface_receive_packets_total{domain=\"$BLANK\"}"
got20() { [ "$(vm_of "$(pq "$(now)" "$sel")" $BLANK)" = 20 ]; }
wait_for got20 && tf_ok "the started VM's frames counted (20 received)" ||
	tf_fail "the started VM's frames counted (20 received)" "$(pq "$(now)" "$sel")"
tf_lab_virsh destroy $BLANK >/dev/null
wait_for "traced 0" && tf_ok "destroyed: traced 0" ||
	tf_fail "destroyed: traced 0" "$(tail -n3 "$TMP/agent2.err")"
a=$(vm_of "$(pq "$(now)" "$sel")" $BLANK)
sleep 3
b=$(vm_of "$(pq "$(now)" "$sel")" $BLANK)
tf_check "destroyed: its series is still there and stopped growing ($a, $b)" test "$a" = 20 -a "$b" = 20

# ---- what Prometheus scraped, and the end -----------------------------------
lab curl -sf http://127.0.0.1:$APORT/metrics >"$TMP/metrics.txt"
promtool check metrics <"$TMP/metrics.txt" >"$TMP/promtool.txt" 2>&1
tf_eq "promtool check metrics: nothing to say" "0 0" "$? $(wc -c <"$TMP/promtool.txt")"
tf_eq "every VM NIC has its series" "$(wc -w <<<"$TF_LAB_VMS")" \
	"$(grep '^tapflow_interface_receive_bytes_total{.*role="tap"' "$TMP/metrics.txt" | grep -vc "$BLANK")"
tf_eq "the uplink is there" 1 "$(grep -c "^tapflow_interface_receive_bytes_total{.*interface=\"$TF_LAB_UPLINK\".*role=\"uplink\"" "$TMP/metrics.txt")"
kill -TERM $AGENT
wait $AGENT
tf_eq "SIGTERM: exit 0" 0 $?
"$TAPFLOW" --netns "$TF_LAB_NS" agent --unpin $PIN >"$TMP/unpin.out" 2>&1
tf_eq "--unpin: exit 0" 0 $?
for vm in $TF_LAB_VMS; do
	tap=$(tf_lab_tap "$vm")
	left=$( (lab tc filter show dev "$tap" ingress; lab tc filter show dev "$tap" egress
		lab python3 "$TF_LAB_TFNET" tcx "$tap") 2>/dev/null | grep -c ' tf_')
	tf_eq "no hook left on $tap" 0 "$left"
done
tf_finish
