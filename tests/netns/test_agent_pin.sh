#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# tapflow agent --pin DIR: the programs go on counting while no agent runs,
# and the next agent with DIR takes over without a packet missed or counted
# twice. Without libvirt: --iface 'tfl*' on veths, scripted UDP both ways.
#
#   $NSH: tflN (veth, 10.83.N.1) ---- $NSP: tfpN (10.83.N.2); no IPv6,
#   static neighbours: the only frames are the test's.
#
#   1. a1 traces tfl1 and tfl2 with --pin, traffic flows; SIGKILL.
#   2. No agent: the pinned links are there (bpftool) and count; tfl2 is
#      deleted.
#   3. a2 takes over: tfl2 reported gone and its links unpinned; tfl1's
#      series is the kernel's counters since a1 attached, exactly. tfl2
#      comes back: a restart, with the totals of its first life.
#   4. SIGTERM with --pin: exit 0, the hooks stay and count; a3 goes on.
#   5. tfl1 deleted and created again under a3 (a restart); a3 killed; a4
#      goes on from the restart's base (the pinned target records).
#   6. A pin set with another stamp: replaced with one line, counts start again.
#   7. --unpin: every link detached, DIR empty; bad --unpin uses.
#   8. clsact: the filters outlive a SIGKILL by themselves, are not removed
#      as stale, and are replaced in place by the next agent (auto).
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/topo.sh"

netns_test_begin "agent --pin" pin jq bpftool curl python3 tc
tf_netns NSH host && tf_netns NSP peer || { tf_fail "setup" "cannot create namespaces"; tf_finish; }
quiet_netns $NSH && quiet_netns $NSP || { tf_fail "setup" "cannot silence IPv6"; tf_finish; }
PIN=/sys/fs/bpf/tft$TF_ID-pin
PORT=19560
# Registered after the namespaces: runs before they go (clsact filters are found by ifindex).
tf_on_exit "rm -rf $PIN"
tf_on_exit "$TAPFLOW --netns $NSH agent --unpin $PIN"

# pair N: tflN in $NSH, tfpN in $NSP, addressed, up, static neighbours.
pair() {
	ip -n $NSH link add tfl$1 address 02:83:00:00:0$1:01 type veth peer name tfp$1 \
		netns $NSP address 02:83:00:00:0$1:02 &&
	ip -n $NSH addr add 10.83.$1.1/24 dev tfl$1 && ip -n $NSP addr add 10.83.$1.2/24 dev tfp$1 &&
	ip -n $NSH neigh add 10.83.$1.2 lladdr 02:83:00:00:0$1:02 dev tfl$1 nud permanent &&
	ip -n $NSP neigh add 10.83.$1.1 lladdr 02:83:00:00:0$1:01 dev tfp$1 nud permanent &&
	ip -n $NSH link set tfl$1 up && ip -n $NSP link set tfp$1 up
}

# UDP both ways at a steady rate, each end on port 9 (bound: no ICMP
# unreachable), until its stop file exists; "sent N" at the end.
cat >"$OUT/udp.py" <<'EOF'
import os, socket, sys, time
dst, stop, gap = sys.argv[1], sys.argv[2], float(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 9))
s.setblocking(False)
print("ready", flush=True)
n = 0
while not os.path.exists(stop):
    s.sendto(b"x" * 200, (dst, 9))
    n += 1
    try:
        while True:
            s.recv(4096)
    except BlockingIOError:
        pass
    time.sleep(gap)
print("sent", n, flush=True)
EOF
# traffic_start TAG N: tflN <-> tfpN, a datagram each way every 2 ms.
traffic_start() {
	rm -f "$OUT/stop$1"
	bg_start UDP_H "$OUT/udp$1h.log" ip netns exec $NSH python3 "$OUT/udp.py" 10.83.$2.2 "$OUT/stop$1" 0.002 &&
	bg_start UDP_P "$OUT/udp$1p.log" ip netns exec $NSP python3 "$OUT/udp.py" 10.83.$2.1 "$OUT/stop$1" 0.002
}
# traffic_stop TAG: both ends stopped, their last frames through.
traffic_stop() {
	touch "$OUT/stop$1"
	wait_for 5 grep -q '^sent' "$OUT/udp$1h.log" && wait_for 5 grep -q '^sent' "$OUT/udp$1p.log" ||
		tf_diag "traffic $1 did not stop"
	sleep 0.3
}

# metrics: the agent's /metrics (empty if it does not answer).
metrics() { ip netns exec $NSH curl -sf --max-time 10 "http://127.0.0.1:$PORT/metrics"; }
# mcount IF: the agent's series of IF, "rx_packets rx_bytes tx_packets tx_bytes restarts".
mcount() {
	metrics | awk -v l="interface=\"$1\"" '
		index($0, l) && /^tapflow_interface_/ { split($1, n, "{"); v[n[1]] = $2 }
		END {
			p = "tapflow_interface_"
			print v[p "receive_packets_total"] + 0, v[p "receive_bytes_total"] + 0,
			      v[p "transmit_packets_total"] + 0, v[p "transmit_bytes_total"] + 0,
			      v[p "restarts_total"] + 0
		}'
}
# fsum IF: the sums of IF's flow series (others included), "rx_packets rx_bytes tx_packets tx_bytes".
fsum() {
	metrics | awk -v l="interface=\"$1\"" '
		index($0, l) && /^tapflow_flow_(packets|bytes)_total\{/ {
			k = ($1 ~ /^tapflow_flow_packets/ ? "p" : "b") ($0 ~ /direction="receive"/ ? "r" : "t")
			v[k] += $2
		}
		END { print v["pr"] + 0, v["br"] + 0, v["pt"] + 0, v["bt"] + 0 }'
}
# filters IF: tfl's clsact filters, "DIR handle prio prog-id" each.
filters() {
	local d
	for d in ingress egress; do
		tc -n $NSH -j filter show dev "$1" $d |
			jq -r --arg d $d '.[] | select(.options.prog.id) | "\($d) \(.options.handle) \(.pref) \(.options.prog.id)"'
	done | tr '\n' ' '
}
# ksum A B: field-wise sum of two kstats lines.
ksum() {
	local -a a=($1) b=($2)
	echo "$((a[0] + b[0])) $((a[1] + b[1])) $((a[2] + b[2])) $((a[3] + b[3]))"
}
# agent NAME ARGS...: `tapflow agent` on 'tfl*' with --pin, up and answering.
agent() {
	local name=$1
	shift
	tf_start "$name" agent --iface 'tfl*' --pin "$PIN" --prometheus 127.0.0.1:$PORT -i 0.5 "$@"
	tf_on_exit "rm -f /run/tapflow/hooks.$TF_PID"
	wait_for 60 grep -q '^tapflow: agent .*: tracing' "$OUT/$name.err" && wait_for 10 metrics >/dev/null ||
		{ tf_diag "$name: $(cat "$OUT/$name.err")"; return 1; }
}
# links: the pinned link files, sorted.
links() { ls "$PIN/links" 2>/dev/null | sort | tr '\n' ' '; }
# link_ids: "file:id:prog_id" of every pinned link, as bpftool shows them.
link_ids() {
	local f
	for f in $(ls "$PIN/links" 2>/dev/null | sort); do
		bpftool -j link show pinned "$PIN/links/$f" | jq -r --arg f "$f" '"\($f):\(.id):\(.prog_id)"'
	done | tr '\n' ' '
}
# links_exist ID...: how many of these link ids the kernel still has.
links_exist() {
	local id n=0
	for id in "$@"; do bpftool link show id "$id" >/dev/null 2>&1 && n=$((n + 1)); done
	echo $n
}
# ids_of LINK_IDS: the ids of a link_ids list.
ids_of() { tr ' ' '\n' <<<"$1" | awk -F: 'NF == 3 { print $2 }' | tr '\n' ' '; }

pair 1 && pair 2 || { tf_fail "setup" "cannot create the veths"; tf_finish; }

# --- 1. a1 ----------------------------------------------------------------------------
agent a1 || { tf_fail "a1: started" "$(cat "$OUT/a1.err")"; tf_finish; }
I1=$(ip -n $NSH -j link show tfl1 | jq '.[0].ifindex') I2=$(ip -n $NSH -j link show tfl2 | jq '.[0].ifindex')
tf_eq "a1: TCX links of tfl1 and tfl2 pinned" \
	"tfl1-$I1-egress tfl1-$I1-ingress tfl2-$I2-egress tfl2-$I2-ingress " "$(links)"
K1_0=$(kstats $NSH tfl1) K2_0=$(kstats $NSH tfl2)
traffic_start 1 1 || tf_fail "traffic 1" "did not start"
ping_from $NSP 10.83.2.1 3 56 || tf_diag "ping tfl2 failed"
sleep 1
read -r p _ <<<"$(mcount tfl1)"
tf_check "a1: counts tfl1 ($p packets received)" test "${p:-0}" -gt 0
tf_stop $TF_PID KILL
tf_eq "a1: SIGKILLed" 137 "$RC"

# --- 2. no agent ----------------------------------------------------------------------
IDS=$(link_ids)
tf_diag "pinned links while no agent runs: $IDS"
tf_eq "down: bpftool shows the 4 pinned links, each with its program" 4 \
	"$(tr ' ' '\n' <<<"$IDS" | awk -F: 'NF == 3 && $2 > 0 && $3 > 0' | wc -l)"
tf_eq "down: tfl1 still has tapflow's TCX programs" "tcx ingress tf_tap_ingress tcx egress tf_tap_egress" \
	"$(hooks_of $NSH tfl1 | tr '\n' ' ' | sed 's/ $//')"
sleep 1.5
IDS2=$(ids_of "$(tr ' ' '\n' <<<"$IDS" | grep '^tfl2-')")
K2_1=$(kstats $NSH tfl2)
ip -n $NSH link del tfl2

# --- 3. a2 takes over -----------------------------------------------------------------------
agent a2 || tf_fail "a2: started" "$(cat "$OUT/a2.err")"
tf_check "a2: says what it carried on" grep -q "tracing 1 interfaces (1 carried on from the pins in $PIN)" "$OUT/a2.err"
tf_eq "a2: tfl2, deleted while no agent ran, said in one line" 1 \
	"$(grep -c "^tapflow: pins in $PIN: tfl2 (ifindex $I2) went while no agent ran: its hooks are removed, its totals kept$" "$OUT/a2.err")"
tf_eq "a2: tfl2's links unpinned and gone" "tfl1-$I1-egress tfl1-$I1-ingress  0" "$(links) $(links_exist $IDS2)"
sleep 1
traffic_stop 1
K1_1=$(kstats $NSH tfl1)
read -r a b c d r <<<"$(mcount tfl1)"
tf_diag "tfl1 over a1, the downtime and a2: kernel $(kdelta "$K1_0" "$K1_1"), agent $a $b $c $d"
tf_eq "a2: tfl1 = the kernel's counters since a1 attached: nothing missed while down, nothing twice" \
	"$(kdelta "$K1_0" "$K1_1") 0" "$a $b $c $d $r"
# tfl2 comes back: a restart, its first life's totals its base.
pair 2 || tf_fail "setup" "cannot create tfl2 again"
tf_check "a2: tfl2 back: traced as a restart" wait_for 10 grep -q "^tapflow: tracing tfl2 (iface), back in the run" "$OUT/a2.err"
ping_from $NSP 10.83.2.1 4 100 || tf_diag "ping tfl2 failed"
sleep 0.3
T2=$(ksum "$(kdelta "$K2_0" "$K2_1")" "$(kstats $NSH tfl2)")
tf_eq "a2: tfl2 = its first life (under a1 and no agent) + this one, restarts 1" "$T2 1" "$(mcount tfl2)"

# --- 4. SIGTERM with --pin --------------------------------------------------------------
tf_stop $TF_PID TERM
tf_eq "a2: SIGTERM: exit 0" 0 "$RC"
tf_check "a2: SIGTERM: says the hooks count on" grep -q "^tapflow: agent stopping: signal; the hooks pinned in $PIN count on" "$OUT/a2.err"
I2=$(ip -n $NSH -j link show tfl2 | jq '.[0].ifindex')
tf_eq "after SIGTERM: the links stay pinned" "tfl1-$I1-egress tfl1-$I1-ingress tfl2-$I2-egress tfl2-$I2-ingress " "$(links)"
tf_eq "after SIGTERM: tfl1 still has tapflow's TCX programs" 2 "$(hooks_of $NSH tfl1 | grep -c '^tcx ')"
traffic_start 2 1 || tf_fail "traffic 2" "did not start"
sleep 1
traffic_stop 2
agent a3 || tf_fail "a3: started" "$(cat "$OUT/a3.err")"
K1_2=$(kstats $NSH tfl1)
tf_eq "a3: tfl1 goes on over a SIGTERM too" "$(kdelta "$K1_0" "$K1_2") 0" "$(mcount tfl1)"
T2=$(ksum "$(kdelta "$K2_0" "$K2_1")" "$(kstats $NSH tfl2)")
tf_eq "a3: tfl2 goes on, restarts 1" "$T2 1" "$(mcount tfl2)"
# The flow series start again at a3's first render: the UDP flow's counts in
# the kernel map are the earlier agents', and already shown by them.
ping_from $NSP 10.83.1.1 3 56 || tf_diag "ping tfl1 failed"
sleep 0.3
tf_eq "a3: tfl1's flow series count from a3's first render: the 3 pings only" \
	"$(kdelta "$K1_2" "$(kstats $NSH tfl1)")" "$(fsum tfl1)"
K1_2=$(kstats $NSH tfl1)

# --- 5. a restart under a3, carried across a SIGKILL ----------------------------------------
V1=$(kdelta "$K1_0" "$K1_2")
ip -n $NSH link del tfl1 && pair 1 || tf_fail "setup" "cannot create tfl1 again"
tf_check "a3: tfl1 deleted and created again: a restart" wait_for 10 grep -q "^tapflow: tracing tfl1 (iface), back in the run" "$OUT/a3.err"
ping_from $NSP 10.83.1.1 4 100 || tf_diag "ping tfl1 failed"
sleep 0.3
tf_eq "a3: tfl1 = both lives, restarts 1" "$(ksum "$V1" "$(kstats $NSH tfl1)") 1" "$(mcount tfl1)"
tf_stop $TF_PID KILL
ping_from $NSP 10.83.1.1 3 200 || tf_diag "ping tfl1 failed"
agent a4 || tf_fail "a4: started" "$(cat "$OUT/a4.err")"
tf_eq "a4: tfl1 after a SIGKILL: both lives (its base from the pins) and the downtime, restarts 1" \
	"$(ksum "$V1" "$(kstats $NSH tfl1)") 1" "$(mcount tfl1)"

# --- 6. another stamp -----------------------------------------------------------------------
tf_stop $TF_PID TERM
OLD=$(ids_of "$(link_ids)")
# The meta as another tapflow would have left it: magic, version, layout, netns inode.
META=$(python3 -c '
import struct, sys
v = struct.pack("<16s32sQQ", b"tapflow-pins 1", b"0.0.1-test", 1, int(sys.argv[1]))
print(" ".join("%02x" % b for b in v))' "$(stat -L -c %i /run/netns/$NSH)")
bpftool map update pinned "$PIN/meta" key hex 00 00 00 00 value hex $META ||
	tf_fail "setup" "cannot write the meta"
agent a5 || tf_fail "a5: started" "$(cat "$OUT/a5.err")"
K1_5=$(kstats $NSH tfl1)
tf_eq "a5: a set of another stamp: replaced, in one line" \
	"tapflow: pins in $PIN are from tapflow 0.0.1-test (another layout): replaced; counts start again" \
	"$(grep "^tapflow: pins in" "$OUT/a5.err")"
tf_eq "a5: the other set's links detached and gone" 0 "$(links_exist $OLD)"
ping_from $NSP 10.83.1.1 2 56 || tf_diag "ping tfl1 failed"
sleep 0.3
tf_eq "a5: counts start again" "$(kdelta "$K1_5" "$(kstats $NSH tfl1)") 0" "$(mcount tfl1)"

# pinned_maps DIR: the BPF maps pinned in DIR: the object's, and the set's meta and targets.
pinned_maps() {
	local f n=0
	for f in "$1"/maps/* "$1"/meta "$1"/targets; do
		bpftool map show pinned "$f" >/dev/null 2>&1 && n=$((n + 1))
	done
	echo $n
}

# --- 7. --unpin ------------------------------------------------------------------------------
tf_stop $TF_PID TERM
tf_eq "a5: SIGTERM: exit 0" 0 "$RC"
OLD=$(ids_of "$(link_ids)")
NMAPS=$(pinned_maps "$PIN")
out=$("$TAPFLOW" --netns $NSH agent --unpin "$PIN" 2>&1)
tf_eq "--unpin: exit 0" 0 "$?"
tf_eq "--unpin: one line" \
	"tapflow: unpinned $PIN: the hooks of 2 interfaces detached (4 TCX links, 0 clsact filters), $NMAPS maps removed" "$out"
tf_eq "--unpin: DIR empty" "" "$(ls -A "$PIN")"
tf_eq "--unpin: none of the links left (bpftool)" "0" "$(links_exist $OLD)"
tf_eq "--unpin: no tapflow program on tfl1, tfl2" "" "$(hooks_of $NSH tfl1; hooks_of $NSH tfl2)"
"$TAPFLOW" agent --unpin "$PIN-none" 2>"$OUT/unpin.err"
tf_eq "--unpin of a directory that does not exist: exit 1, one line" "1 1" "$? $(wc -l <"$OUT/unpin.err")"
"$TAPFLOW" agent --unpin "$PIN" --pin "$PIN" 2>/dev/null
tf_eq "--pin with --unpin: usage error" 2 "$?"
"$TAPFLOW" agent --no-libvirt --iface tfl1 --pin /tmp 2>"$OUT/nobpffs.err"
tf_eq "--pin off bpffs: exit 1, one line" "1 1" "$? $(wc -l <"$OUT/nobpffs.err")"

# --- 8. clsact -------------------------------------------------------------------------------
agent a6 --attach clsact || tf_fail "a6: started" "$(cat "$OUT/a6.err")"
K1_6=$(kstats $NSH tfl1)
traffic_start 3 1 || tf_fail "traffic 3" "did not start"
sleep 1
tf_stop $TF_PID KILL
tf_eq "a6 killed: its clsact filters on tfl1 stay" "clsact ingress tf_tap_ingress clsact egress tf_tap_egress" \
	"$(hooks_of $NSH tfl1 | tr '\n' ' ' | sed 's/ $//')"
F6=$(filters tfl1)
sleep 1
agent a7 || tf_fail "a7: started" "$(cat "$OUT/a7.err")"
F7=$(filters tfl1)
tf_diag "tfl1's filters (dir handle prio prog) under a6: $F6; under a7: $F7"
tf_eq "a7: the filters replaced in place (same handle and priority), not added to" \
	"$(awk '{ for (i = 1; i <= NF; i += 4) printf "%s %s %s ", $i, $(i + 1), $(i + 2) }' <<<"$F6")" \
	"$(awk '{ for (i = 1; i <= NF; i += 4) printf "%s %s %s ", $i, $(i + 1), $(i + 2) }' <<<"$F7")"
tf_check "a7: with a7's programs" test "$F6" != "$F7"
sleep 1
traffic_stop 3
tf_eq "a7: tfl1 = the kernel's counters since a6 attached (clsact, SIGKILL)" \
	"$(kdelta "$K1_6" "$(kstats $NSH tfl1)") 0" "$(mcount tfl1)"
tf_stop $TF_PID TERM
tf_eq "a7: SIGTERM: exit 0, the filters stay" "0 2" "$RC $(hooks_of $NSH tfl1 | grep -c '^clsact ')"
NMAPS=$(pinned_maps "$PIN")
out=$("$TAPFLOW" --netns $NSH agent --unpin "$PIN" 2>&1)
tf_eq "--unpin: the clsact filters removed" \
	"tapflow: unpinned $PIN: the hooks of 2 interfaces detached (0 TCX links, 4 clsact filters), $NMAPS maps removed" "$out"
tf_eq "--unpin: no filter, no clsact qdisc tapflow made" "" \
	"$(hooks_of $NSH tfl1; hooks_of $NSH tfl2; has_clsact $NSH tfl1 && echo qdisc)"
tf_finish
