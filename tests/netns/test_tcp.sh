#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# tapflow flows --tcp: passive TCP analysis on a VM's interface, checked
# against tshark's analysis of the same frames (tcpdump on that interface).
#
#   $NSV "VM" eth0 10.78.0.1 ==== p1 --+
#        delay line: 2 ms in           |  br0, $NSH: the host, tapflow --iface p1 --tcp
#   $NSR "remote" eth0 10.78.0.2 == r1 +
#        delay line: 10 ms in
#
# The delays are on each end's way in (iptables NFQUEUE held by tftcp.py:
# this kernel has neither netem nor fq; on the way out the held packets
# would count against the sender's TCP small queues and throttle it). So at
# p1: outside RTT (the VM's segment to the remote's ACK) >= 10 ms, inside
# RTT (a segment to the VM to its ACK) >= 2 ms. Losses: every 20th packet
# from the remote (not SYN, FIN, RST) is dropped in br0 (before p1: p1 sees
# holes, then the retransmissions), every 20th the VM sends is dropped in
# the remote's INPUT (after p1: p1 sees both copies). Scripted flows, each
# on its ports:
#   A 40001 -> 5001  download (VM client), losses
#   B 40002 -> 5002  upload, losses
#   Z 40003 -> 5003  remote to a VM server that reads nothing for 2 s (zero window)
#   N 40004 -> 5004  echo both ways without timestamps, SACK, window scaling; losses
#   M 40005 -> 5005  download started before tapflow (no handshake seen); losses
#   R 40006 -> 5006  refused (RST)
#   S 40007 -> 5007  SYNs dropped: the client gives up after 3.5 s, 3 SYNs
#   Y 40008 -> 5008  the first SYN dropped (after p1), the second answered
# Asserted per flow, tapflow's final record against tshark (tftcp.py
# analyze): retransmissions and zero windows per direction (exact), SYNs
# unanswered and resets (exact, and as scripted), handshake time (10 % or
# 0.2 ms), and the RTTs: at least the delays, and the avg (without the
# max) between tshark's median ack_rtt and its mean under Karn's rule (10 %
# or 0.2 ms). Not closer: tapflow takes about one sample per RTT, tshark
# one per ACK, and a mean moves with the few slow ones that one has and
# the other has not.
# For --iface p1, rx = received by p1 = what the VM sent. TF_KEEP=DIR keeps
# the capture, tshark's and tapflow's output there.
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/topo.sh"
TFTCP="$TOPO_DIR/tftcp.py"
NAME="netns tcp"

netns_test_begin "$NAME" tcp jq python3 iptables tshark tcpdump ss curl promtool taskset
[ -n "${TF_KEEP:-}" ] && tf_on_exit "rm -rf $TF_KEEP; cp -r $OUT $TF_KEEP"

IP_V=10.78.0.1 IP_R=10.78.0.2
MAC_V=02:78:00:00:00:01 MAC_R=02:78:00:00:00:02
D_OUT=10 D_IN=2

topo_tcp() {
	tf_netns NSH h && tf_netns NSV v && tf_netns NSR r || return 1
	for ns in $NSH $NSV $NSR; do quiet_netns $ns || return 1; done
	ip -n $NSH link add br0 type bridge stp_state 0 mcast_snooping 0 &&
	ip -n $NSH link add p1 type veth peer name eth0 netns $NSV address $MAC_V &&
	ip -n $NSH link add r1 type veth peer name eth0 netns $NSR address $MAC_R &&
	ip -n $NSH link set p1 master br0 up && ip -n $NSH link set r1 master br0 up &&
	ip -n $NSH link set br0 up || return 1
	bridge -n $NSH fdb add $MAC_V dev p1 master static &&
	bridge -n $NSH fdb add $MAC_R dev r1 master static || return 1
	ip -n $NSV addr add $IP_V/24 dev eth0 && ip -n $NSV link set eth0 up &&
	ip -n $NSR addr add $IP_R/24 dev eth0 && ip -n $NSR link set eth0 up || return 1
	# quickack: no delayed ACKs (nor ACKs waiting for the echo's data), so
	# an RTT is the path's and not how long an end kept its ACK: tshark
	# times an ACK from the newest segment it covers, tapflow from the
	# oldest, like the sender's own TCP.
	ip -n $NSV route replace 10.78.0.0/24 dev eth0 quickack 1 &&
	ip -n $NSR route replace 10.78.0.0/24 dev eth0 quickack 1 &&
	ip -n $NSV neigh add $IP_R lladdr $MAC_R dev eth0 nud permanent &&
	ip -n $NSR neigh add $IP_V lladdr $MAC_V dev eth0 nud permanent || return 1
	# The delay lines: every TCP packet in, before anything else sees it.
	# --queue-bypass: without a delay line the packets pass (and the RTT
	# checks say why).
	local ns
	for ns in $NSV $NSR; do
		nsq $ns iptables -t raw -A PREROUTING -p tcp -j NFQUEUE --queue-num 0 \
			--queue-bypass || return 1
	done
}
topo_tcp || { tf_fail "topology" "cannot build the test topology"; tf_finish; }
# The losses before p1 are in br0's FORWARD: bridged frames through iptables.
if ! nsq $NSH sysctl -qw net.bridge.bridge-nf-call-iptables=1 2>/dev/null; then
	tf_skip "$NAME" "no br_netfilter (net.bridge.bridge-nf-call-iptables)"
	tf_finish
fi
tf_ok "topology: VM and remote namespaces on a bridge"
# Every process that sends (the ends, and the delay lines that let their
# packets go on) runs on one CPU: a direction's segments then pass p1 one
# after the other. Sent from two CPUs at once, two segments can pass
# tapflow's hook and tcpdump's, a few instructions apart, in opposite
# orders, and each observer would rightly count what it saw.
PIN_CPU=(taskset -c 0)
bg_start DELAY_V "$OUT/delay_v.log" ip netns exec $NSV "${PIN_CPU[@]}" python3 "$TFTCP" delay $D_IN &&
bg_start DELAY_R "$OUT/delay_r.log" ip netns exec $NSR "${PIN_CPU[@]}" python3 "$TFTCP" delay $D_OUT ||
	{ tf_fail "delay lines" "did not start"; tf_finish; }

bg_stop() { kill "$1" 2>/dev/null; wait "$1" 2>/dev/null; }
jq_true() { jq -e "$@" >/dev/null; }
# established PORT: the VM has an established connection from or to PORT.
established() { [ -n "$(ip netns exec $NSV ss -Htn state established "( sport = :$1 or dport = :$1 )")" ]; }
# server NS PORT MODE ARGS...: a tftcp.py server in the background.
server() {
	local ns=$1 port=$2
	shift 2
	bg_start SERVER_PID "$OUT/server_$port.log" ip netns exec $ns "${PIN_CPU[@]}" python3 "$TFTCP" server $port "$@" ||
		{ tf_fail "server on $port" "did not start"; tf_finish; }
}
# client NS SPORT DST DPORT MODE ARGS...: a tftcp.py client; its output in $OUT/client_SPORT.log.
client() {
	local ns=$1 sport=$2
	shift 2
	ip netns exec $ns "${PIN_CPU[@]}" python3 "$TFTCP" client $([ $ns == $NSV ] && echo $IP_V || echo $IP_R) \
		$sport "$@" >"$OUT/client_$sport.log" 2>&1
}
client_says() { tf_eq "traffic: $1" "$2" "$(cat "$OUT/client_$3.log")"; }

server $NSR 5001 source 4000000
server $NSR 5002 sink
server $NSV 5003 stall 2
server $NSR 5004 echo
server $NSR 5005 stream "$OUT/pause_m" "$OUT/stop_m"
server $NSR 5008 sink

# ---- M starts before tapflow -----------------------------------------------------
# It pauses while tapflow and tcpdump start, so that both see it from the
# same packet on (what one saw alone would be counted by one alone, such
# as a tail loss probe's spurious retransmission).
client $NSV 40005 $IP_R 5005 recv &
M_PID=$!
tf_on_exit "kill_job $M_PID"
wait_for 5 established 40005 && sleep 0.5 || { tf_fail "M" "no connection"; tf_finish; }
touch "$OUT/pause_m"
# acked: nothing of M in flight.
acked() { [ -z "$(ip netns exec $NSR ss -Htn state established '( sport = :5005 )' | awk '$2 != 0')" ]; }
wait_for 5 acked && sleep 0.2 || tf_diag "M: still unacknowledged data"

ip netns exec $NSH "$TAPFLOW" --no-libvirt --iface p1 --tcp --json flows -i 1 \
	>"$OUT/tf.out" 2>"$OUT/tf.err" &
TF_PID=$!
tf_on_exit "kill_job $TF_PID"
# attached: tapflow's two hooks on p1 are in place, or it is gone.
attached() {
	kill -0 $TF_PID 2>/dev/null || return 0
	[ "$(grep -c '^+ ' /run/tapflow/hooks.$TF_PID 2>/dev/null)" == 2 ]
}
if wait_for 30 attached && kill -0 $TF_PID 2>/dev/null; then
	TF_RUNS=1
	tf_ok "tapflow --tcp attaches to p1"
else
	TF_RUNS=0
	tf_fail "tapflow --tcp attaches to p1" "$(head -c 400 "$OUT/tf.err")"
fi
# The agent on the same interface, as a second reader of the same packets:
# its per-interface counters must add up to the flows' figures.
APORT=$((22000 + TF_ID % 10000))
ip netns exec $NSH "$TAPFLOW" --no-libvirt --iface p1 --tcp agent \
	--prometheus 127.0.0.1:$APORT >"$OUT/agent.out" 2>"$OUT/agent.err" &
AG_PID=$!
tf_on_exit "kill_job $AG_PID"
agent_up() { ip netns exec $NSH curl -sf "http://127.0.0.1:$APORT/metrics" >/dev/null; }
wait_for 30 agent_up || tf_fail "agent --tcp serves /metrics" "$(head -c 400 "$OUT/agent.err")"
bg_start PCAP "$OUT/tcpdump.log" ip netns exec $NSH tcpdump -n -i p1 -s 128 --immediate-mode -U \
	-w "$OUT/p1.pcap" tcp || { tf_fail "tcpdump" "did not start"; tf_finish; }

# Losses from now on (data and ACKs, no SYN, FIN or RST), then M goes on.
nsq $NSH iptables -A FORWARD -s $IP_R -p tcp -m multiport --sports 5001,5004,5005 \
	--tcp-flags SYN,FIN,RST NONE -m statistic --mode nth --every 20 --packet 19 -j DROP &&
nsq $NSR iptables -A INPUT -p tcp -m multiport --dports 5002,5004 \
	--tcp-flags SYN,FIN,RST NONE -m statistic --mode nth --every 20 --packet 19 -j DROP &&
nsq $NSR iptables -A INPUT -p tcp --dport 5007 --syn -j DROP &&
nsq $NSR iptables -A INPUT -p tcp --dport 5008 --syn -m statistic --mode nth --every 2 \
	--packet 0 -j DROP ||
	{ tf_fail "iptables" "cannot add the loss rules"; tf_finish; }
rm "$OUT/pause_m"

# ---- the scripted flows ------------------------------------------------------------
# SYNs at 0, 1 and 3 s: the classic exponential backoff (6.7+ retries
# the first ones every second, if tcp_syn_linear_timeouts says so).
nsq $NSV sysctl -qw net.ipv4.tcp_syn_linear_timeouts=0 2>/dev/null
client $NSV 40007 $IP_R 5007 connect 3.5 &
S_PID=$!
tf_on_exit "kill_job $S_PID"
client $NSV 40008 $IP_R 5008 send 100000 &
Y_PID=$!
tf_on_exit "kill_job $Y_PID"

# N: the options are chosen at the handshake, by each end's sysctls; once
# the connection is up, the next ones get them back.
opts() {
	local ns
	for ns in $NSV $NSR; do
		nsq $ns sysctl -qw net.ipv4.tcp_timestamps=$1 net.ipv4.tcp_sack=$1 \
			net.ipv4.tcp_window_scaling=$1 || return 1
	done
}
opts 0 || { tf_fail "sysctl" "cannot turn TCP options off"; tf_finish; }
client $NSV 40004 $IP_R 5004 echo 1000000 &
N_PID=$!
tf_on_exit "kill_job $N_PID"
wait_for 15 established 40004 || tf_diag "N: no connection within 15 s"
opts 1
client $NSV 40006 $IP_R 5006 connect 2
client_says "R refused" refused 40006
client $NSV 40001 $IP_R 5001 recv
client_says "A download" "received 4000000" 40001
client $NSV 40002 $IP_R 5002 send 4000000
client_says "B upload" "sent 4000000" 40002
client $NSR 40003 $IP_V 5003 send 300000
client_says "Z to a stalled reader" "sent 300000" 40003
wait $N_PID
client_says "N echo without options" "echoed 1000000" 40004
wait $S_PID
client_says "S unanswered" timeout 40007
wait $Y_PID
client_says "Y answered at the second SYN" "sent 100000" 40008
touch "$OUT/stop_m"
wait $M_PID
tf_check "traffic: M download" grep -q '^received [1-9]' "$OUT/client_40005.log"

# Every connection closed (only TIME-WAIT left): no retransmitted FIN
# after the capture.
quiet() {
	local ns
	for ns in $NSV $NSR; do
		[ -z "$(ip netns exec $ns ss -Htan state connected exclude time-wait)" ] || return 1
	done
}
wait_for 5 quiet || tf_diag "connections left: $(ip netns exec $NSV ss -tan; ip netns exec $NSR ss -tan)"
sleep 0.1
bg_stop $PCAP
# Its ring is read as packets come (--immediate-mode): none is left behind.
tf_check "tcpdump: every packet captured, none dropped" awk '/packets captured/ { c = $1 }
	/received by filter/ { r = $1 } /dropped by kernel/ { d = $1 }
	END { exit !(c > 0 && c == r && d == 0) }' "$OUT/tcpdump.log"
ip netns exec $NSH curl -sf "http://127.0.0.1:$APORT/metrics" >"$OUT/metrics.txt"
if promtool check metrics <"$OUT/metrics.txt" >"$OUT/promtool.txt" 2>&1 && [ ! -s "$OUT/promtool.txt" ]; then
	tf_ok "agent --tcp: promtool check metrics finds nothing"
else
	tf_fail "agent --tcp: promtool check metrics finds nothing" "$(head -5 "$OUT/promtool.txt")"
fi
tf_stop $AG_PID TERM
tf_eq "agent --tcp: exit 0 (SIGTERM)" 0 $RC
if [ $TF_RUNS == 1 ]; then
	tf_stop $TF_PID TERM
	tf_eq "tapflow: exit 0 (SIGTERM)" 0 $RC
	assert_clean "tapflow: nothing left on p1" $NSH $TF_PID p1
fi

# ---- tshark ---------------------------------------------------------------------------
python3 "$TFTCP" analyze "$OUT/p1.pcap" >"$OUT/tshark.json" 2>"$OUT/tshark.err" ||
	{ tf_fail "tshark analysis" "$(head -c 400 "$OUT/tshark.err")"; tf_finish; }

# ts VPORT RPORT JQ: tshark's figures of a flow, JQ over $vm, the frames
# from the VM (p1 received them: rx; their ACKs time the inside RTT), and
# $rem, those from the remote.
ts() {
	jq -r --arg v "$IP_V:$1>$IP_R:$2" --arg r "$IP_R:$2>$IP_V:$1" \
		".[\$v] as \$vm | .[\$r] as \$rem | $3" "$OUT/tshark.json"
}
FLOWS=("A 40001 5001" "B 40002 5002" "Z 5003 40003" "N 40004 5004" "M 40005 5005"
	"R 40006 5006" "S 40007 5007" "Y 40008 5008")
for f in "${FLOWS[@]}"; do
	read -r n vp rp <<<"$f"
	ts $vp $rp '["vm", $vm], ["rem", $rem] | .[1] as $d |
		"from \(.[0]): frames \($d.frames) retrans \($d.retrans) (retr \($d.retransmission) " +
		"fast \($d.fast_retransmission) spur \($d.spurious_retransmission) " +
		"ooo \($d.out_of_order); keepalive \($d.keep_alive)) zero_window \($d.zero_window) " +
		"syn \($d.syn) synack \($d.synack) rst \($d.rst) handshake_ms \($d.handshake_ms) " +
		"ack_rtt n \($d.ack_rtt.n) median \($d.ack_rtt.median) mean \($d.ack_rtt.mean) " +
		"karn n \($d.ack_rtt_karn.n) mean \($d.ack_rtt_karn.mean)"' |
		sed "s/^/# tshark $n /"
done
# The scenario happened: the oracle sees what was scripted.
tf_eq "tshark: retransmissions of the losses (A, B, N both ways, M)" "true true true true true" \
	"$(ts 40001 5001 '$rem.retrans > 0') $(ts 40002 5002 '$vm.retrans > 0') \
$(ts 40004 5004 '$vm.retrans > 0, $rem.retrans > 0' | xargs) $(ts 40005 5005 '$rem.retrans > 0')"
tf_eq "tshark: the stalled reader advertised a zero window" true "$(ts 5003 40003 '$vm.zero_window > 0')"
tf_eq "tshark: SYNs, unanswered, RSTs back: R 1 1 1, S 3 3 0 (nothing back), Y 2 1 0" \
	"1 1 1 3 3 0 2 1 0" "$(for p in 6 7 8; do
		ts 4000$p 500$p '"\($vm.syn) \($vm.syn_unanswered) \($rem.rst)"'; done | xargs)"
tf_eq "tshark: frames with timestamps, SACK_PERM, window scale: A some, N none" "true 0 0 0" \
	"$(ts 40001 5001 '$vm.timestamps > 0 and $vm.sack_perm > 0 and $vm.wscale > 0')\
 $(ts 40004 5004 '"\($vm.timestamps + $rem.timestamps) \($vm.sack_perm + $rem.sack_perm)
	\($vm.wscale + $rem.wscale)"' | xargs)"
# The delay lines: their RTTs, a little more (the delay line's own latency, ACKs).
tf_check "tshark: outside RTT (B) median in [$D_OUT, $D_OUT + 2] ms" \
	jq_true -n --argjson m "$(ts 40002 5002 '$rem.ack_rtt.median')" "\$m >= $D_OUT and \$m <= $D_OUT + 2"
tf_check "tshark: inside RTT (A) median in [$D_IN, $D_IN + 2] ms" \
	jq_true -n --argjson m "$(ts 40001 5001 '$vm.ack_rtt.median')" "\$m >= $D_IN and \$m <= $D_IN + 2"

[ $TF_RUNS == 1 ] || tf_finish

# ---- tapflow against tshark ---------------------------------------------------------------
# rec VPORT RPORT: tapflow's final record of the flow.
rec() {
	jq -c --argjson v $1 --argjson r $2 'select(.type == "flow" and .final and .proto == "tcp" and
		((.local_port == $v and .remote_port == $r) or (.local_port == $r and .remote_port == $v)))' \
		"$OUT/tf.out" | head -n1
}
# between A LO HI: LO and HI numbers, A within [LO, HI] give or take 10 % or 0.2.
between() { awk -v a="$1" -v lo="$2" -v hi="$3" 'function tol(x) { return x * 0.1 > 0.2 ? x * 0.1 : 0.2 }
	BEGIN { exit !(a ~ /^[0-9.]+$/ && lo ~ /^[0-9.]+$/ && hi ~ /^[0-9.]+$/ &&
		a >= lo - tol(lo) && a <= hi + tol(hi)) }'; }
near() { between "$1" "$2" "$2"; }

# check NAME VPORT RPORT SYN_UNANSWERED RESETS RTT_SIDES...: tapflow's
# record of a flow against tshark's figures and the script.
check() {
	local n=$1 vp=$2 rp=$3 syn_un=$4 rst=$5 r side
	local t_rtx t_ttx t_zrx t_ztx t_syn t_rst t_hs t_in t_out t_kin t_kout t_orx t_otx
	local f_rtx f_ttx f_zrx f_ztx f_syn f_rst f_hs f_in f_out
	shift 5
	r=$(rec $vp $rp)
	if [ -z "$r" ]; then
		tf_fail "$n: tapflow has a final record" "no flow $vp <-> $rp in $OUT/tf.out"
		return
	fi
	tf_diag "tapflow $n: $r"
	# rx = the VM's frames; the remote's ACKs time the outside RTT, the VM's the inside.
	read -r t_rtx t_ttx t_zrx t_ztx t_syn t_rst t_hs t_in t_out t_kin t_kout t_orx t_otx \
		<<<"$(ts $vp $rp '"\(
		$vm.retrans) \($rem.retrans) \($vm.zero_window) \($rem.zero_window)
		\($vm.syn_unanswered + $rem.syn_unanswered) \($vm.rst + $rem.rst)
		\($vm.handshake_ms // $rem.handshake_ms) \($vm.ack_rtt.median) \($rem.ack_rtt.median)
		\($vm.ack_rtt_karn.mean) \($rem.ack_rtt_karn.mean)
		\($vm.out_of_order) \($rem.out_of_order)"' | xargs)"
	# The RTT avg without its max: an end that stalls (this machine's
	# scheduling) makes a spike that both see, but that weighs on the avg of
	# tapflow's few samples more than on tshark's many.
	read -r f_rtx f_ttx f_zrx f_ztx f_syn f_rst f_hs f_in f_out <<<"$(jq -r '
		def typ: if . == null then null elif .samples > 1 then
			(.avg * .samples - .max) / (.samples - 1) * 1000 | round / 1000 else .avg end;
		"\(.retrans_rx) \(.retrans_tx) \(.zero_win_rx) \(.zero_win_tx) \(.syn_unanswered)
		\(.resets) \(.handshake_ms) \(.rtt_in_ms | typ) \(.rtt_out_ms | typ)"' <<<"$r" | xargs)"
	# Exact, but for tshark's out-of-order frames: a segment is one when a
	# later one passed first, and tapflow's hook and tcpdump's, a few
	# instructions apart, can see two segments sent from two CPUs at once
	# (a retransmission timer's and a sender's) in opposite orders. Either
	# way the difference is said.
	if [ "$t_rtx $t_ttx" != "$f_rtx $f_ttx" ]; then
		tf_diag "$n: retransmissions rx tx: tapflow $f_rtx $f_ttx, tshark $t_rtx $t_ttx" \
			"(out-of-order $t_orx $t_otx)"
	fi
	tf_check "$n: retransmissions rx tx == tshark's (to its out-of-order frames)" \
		awk -v a="$f_rtx" -v b="$t_rtx" -v o="$t_orx" -v c="$f_ttx" -v d="$t_ttx" -v p="$t_otx" \
		'function abs(x) { return x < 0 ? -x : x }
		 BEGIN { exit !(abs(a - b) <= o && abs(c - d) <= p) }'
	tf_eq "$n: zero windows rx tx == tshark's" "$t_zrx $t_ztx" "$f_zrx $f_ztx"
	tf_eq "$n: SYNs unanswered, resets == scripted == tshark's" "$syn_un $rst $syn_un $rst" \
		"$f_syn $f_rst $t_syn $t_rst"
	if [ "$t_hs" == null ] || [ "$f_hs" == null ]; then
		tf_eq "$n: handshake seen by neither or both" "$t_hs" "$f_hs"
	else
		tf_check "$n: handshake $f_hs ms ~ tshark's $t_hs ms" near "$f_hs" "$t_hs"
	fi
	# No RTT sample can be shorter than the delay on its way.
	tf_check "$n: RTT minima >= the delays ($D_OUT out, $D_IN in)" jq_true \
		"(.rtt_out_ms == null or .rtt_out_ms.min >= $D_OUT) and
		(.rtt_in_ms == null or .rtt_in_ms.min >= $D_IN)" <<<"$r"
	for side in "$@"; do
		if [ $side == in ]; then
			tf_check "$n: RTT inside avg (but max) $f_in ms ~ tshark's median $t_in, Karn mean $t_kin ms" \
				between "$f_in" "$t_in" "$t_kin"
		else
			tf_check "$n: RTT outside avg (but max) $f_out ms ~ tshark's median $t_out, Karn mean $t_kout ms" \
				between "$f_out" "$t_out" "$t_kout"
		fi
	done
}
check A 40001 5001 0 0 in
check B 40002 5002 0 0 out
check Z 5003 40003 0 0
check N 40004 5004 0 0 in out
check M 40005 5005 0 0 in
check R 40006 5006 1 1
check S 40007 5007 3 0
check Y 40008 5008 1 0 out
tf_eq "M: no handshake seen" null "$(rec 40005 5005 | jq -r .handshake_ms)"
# Interval records are over their interval, the final one over the run.
tf_check "M: interval records have RTTs, their samples add up to at most the final's" \
	jq_true -s '[.[] | select(.type == "flow" and .proto == "tcp" and
		(.local_port == 5005 or .remote_port == 5005))] |
		([.[] | select(.final | not) | .rtt_in_ms.samples // 0]) as $i |
		($i | map(select(. > 0)) | length >= 2) and
		($i | add) <= ([.[] | select(.final)][0].rtt_in_ms.samples)' "$OUT/tf.out"

# metric NAME LABELS: the agent's value of the series (p1's).
metric() {
	awk -v n="$1" -v l="$2" 'index($0, n "{") == 1 && index($0, l) && index($0, "interface=\"p1\"") {
		print $NF }' "$OUT/metrics.txt"
}
# fsum JQ: the sum of JQ over the final flow records of TCP.
fsum() { jq -s "[.[] | select(.type == \"flow\" and .final and .proto == \"tcp\") | $1 // 0] | add" "$OUT/tf.out"; }
# The interface's own view (p1 is an --iface): transmit = what p1 sent to the VM.
tf_eq "agent --tcp: retransmits transmit/receive == the flows' retrans_tx/rx" \
	"$(fsum .retrans_tx) $(fsum .retrans_rx)" \
	"$(metric tapflow_tcp_retransmits_total 'direction="transmit"') $(metric tapflow_tcp_retransmits_total 'direction="receive"')"
tf_eq "agent --tcp: zero windows transmit/receive == the flows' zero_win_tx/rx" \
	"$(fsum .zero_win_tx) $(fsum .zero_win_rx)" \
	"$(metric tapflow_tcp_zero_windows_total 'direction="transmit"') $(metric tapflow_tcp_zero_windows_total 'direction="receive"')"
tf_eq "agent --tcp: resets == the flows' resets" "$(fsum .resets)" \
	"$(( $(metric tapflow_tcp_resets_total 'direction="transmit"') + $(metric tapflow_tcp_resets_total 'direction="receive"') ))"
# R refused, S unanswered, Y answered only at its second SYN: all opened from the VM side.
tf_eq "agent --tcp: connect failures: 3 opened from the VM side (R, S, Y), 0 towards it" "3 0" \
	"$(metric tapflow_tcp_connect_failures_total 'direction="receive"') $(metric tapflow_tcp_connect_failures_total 'direction="transmit"')"
tf_eq "agent --tcp: RTT histogram counts outside/inside == the flows' samples" \
	"$(fsum .rtt_out_ms.samples) $(fsum .rtt_in_ms.samples)" \
	"$(metric tapflow_tcp_rtt_seconds_count 'side="outside"') $(metric tapflow_tcp_rtt_seconds_count 'side="inside"')"
tf_eq "agent --tcp: the +Inf bucket is the count" \
	"$(metric tapflow_tcp_rtt_seconds_count 'side="inside"')" \
	"$(metric tapflow_tcp_rtt_seconds_bucket 'side="inside",le="+Inf"')"

tf_finish
