#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# A live session without libvirt: `stats --iface 'tfl*'` follows the
# interfaces the pattern names as they appear and go, while it runs.
#
#   $NSH: tflN (veth) ---- $NSP: tfpN, 10.79.N.1 -- 10.79.N.2, no IPv6
#
#   1. Nothing matches at the start: the run waits for its interfaces.
#   2. tfl1 appears: traced within a second (the note), counted from its
#      first packet: its totals are the kernel's own counters.
#   3. tfl1 is deleted: its hooks and map places are given back, its totals
#      stay (gone, gone_at), the run goes on; tfl2 is unaffected.
#   4. tfl1 comes back (a new ifindex): the same target carries on
#      (restarts 1), its totals are both lifetimes'.
#   5. 200 more lifetimes of tfl1: open fds, BPF links, counter slots and
#      RSS stay where they were after the first 20; exit 0, nothing left.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/topo.sh"
# RSS is measured: the plain build (AddressSanitizer's quarantine holds what is freed).
TAPFLOW=${TAPFLOW_PLAIN:-$(cd "$(dirname "$0")/../.." && pwd)/.output/tapflow}

netns_test_begin "live" live jq bpftool
tf_netns NSH host && tf_netns NSP peer || { tf_fail "setup" "cannot create namespaces"; tf_finish; }
for ns in $NSH $NSP; do
	nsq $ns sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
done

# pair N: tflN in $NSH, tfpN in $NSP, addressed and up.
pair() {
	ip -n $NSH link add tfl$1 type veth peer name tfp$1 netns $NSP &&
	ip -n $NSH addr add 10.79.$1.1/24 dev tfl$1 && ip -n $NSP addr add 10.79.$1.2/24 dev tfp$1 &&
	ip -n $NSH link set tfl$1 up && ip -n $NSP link set tfp$1 up
}
# kcount N: tflN's counters as tapflow reports them, "rx_packets rx_bytes tx_packets tx_bytes".
kcount() { kstats $NSH tfl$1; }
# traced N: tapflow has noted tflN traced (K times: its lifetimes so far).
traced() { [ "$(grep -c "^tapflow: tracing tfl$1 " "$OUT/live.err")" -ge "${2:-1}" ]; }
# last RECORD-FILTER: the last stats record of tfl$1 (a jq expression on it).
last() { jq -c --arg i "tfl$1" 'select(.type == "stats" and .ifname == $i)' "$OUT/live.out" | tail -n1 | jq -r "$2"; }
# resources: tapflow's open fds, BPF link fds, RSS (KiB).
resources() {
	local fds links
	fds=$(ls /proc/$TF_PID/fd | wc -l)
	links=$(grep -l '^link_id:' /proc/$TF_PID/fdinfo/* 2>/dev/null | wc -l)
	echo "$fds $links $(awk '/^VmRSS/ { print $2 }' /proc/$TF_PID/status)"
}
# slots: interfaces with a place in tapflow's counter maps (slot owners + if_spill entries).
slots() {
	local id owners=0 spill=0
	for id in $(awk '/^map_id:/ { print $2 }' /proc/$TF_PID/fdinfo/* 2>/dev/null | sort -u); do
		case $(bpftool -j map show id $id | jq -r .name) in
		tapflow_.bss) owners=$(bpftool -j map dump id $id |
			jq '[.. | objects | select(has("tf_if_owner")) | .tf_if_owner[] | select(. != 0)] | length') ;;
		if_spill) spill=$(bpftool -j map dump id $id | jq length) ;;
		esac
	done
	echo $((owners + spill))
}

# --- 1. nothing to trace yet ---------------------------------------------------
pair 2 || { tf_fail "setup" "cannot create tfl2"; tf_finish; }
tf_start live --iface 'tfl*' --no-drops --json -i 0.5 stats
wait_for 10 grep -q '"ifname":"tfl2"' "$OUT/live.out" ||
	tf_fail "start" "tfl2 was not traced: $(cat "$OUT/live.err")"
ip -n $NSH link del tfl2 && pair 2
tf_check "tfl2 deleted and created again before any traffic: traced again" wait_for 5 traced 2
tf_check "running" kill -0 $TF_PID

# --- 2. tfl1 appears -----------------------------------------------------------------
T0=$(date +%s%N)
pair 1 || tf_fail "setup" "cannot create tfl1"
wait_for 10 traced 1
T1=$(date +%s%N)
tf_diag "tfl1 traced $(( (T1 - T0) / 1000000 )) ms after it was created (target: within 1 s)"
tf_check "tfl1: traced within 5 s of its creation" test $((T1 - T0)) -le 5000000000
ping_from $NSP 10.79.1.1 10 56 || tf_diag "ping 1 failed"
ping_from $NSP 10.79.2.1 3 56 || tf_diag "ping 2 failed"
sleep 1.2
K1=$(kcount 1)
tf_eq "tfl1: every packet since its creation counted (the kernel's counters)" "$K1" \
	"$(last 1 '"\(.rx_packets) \(.rx_bytes) \(.tx_packets) \(.tx_bytes)"')"

# --- 3. tfl1 goes ----------------------------------------------------------------------
ip -n $NSH link del tfl1
tf_check "tfl1 deleted: noted gone" wait_for 5 grep -q "^tapflow: interface tfl1 is gone" "$OUT/live.err"
sleep 1.2
tf_eq "tfl1 gone: its totals stay, gone with a time" "$K1 true true" \
	"$(last 1 '"\(.rx_packets) \(.rx_bytes) \(.tx_packets) \(.tx_bytes) \(.gone) \(.gone_at != null)"')"
tf_check "the run goes on" kill -0 $TF_PID

# --- 4. tfl1 comes back ----------------------------------------------------------------
pair 1 && wait_for 10 traced 1 2 || tf_fail "tfl1 back" "not traced again"
ping_from $NSP 10.79.1.1 4 100 || tf_diag "ping 3 failed"
sleep 1.2
read -r a b c d <<<"$K1"
read -r e f g h <<<"$(kcount 1)"
tf_eq "tfl1 back: one target, restarts 1, both lifetimes' totals" "$((a + e)) $((b + f)) $((c + g)) $((d + h)) 1 false" \
	"$(last 1 '"\(.rx_packets) \(.rx_bytes) \(.tx_packets) \(.tx_bytes) \(.restarts) \(.gone)"')"
tf_eq "tfl1: one record per report" 1 \
	"$(jq -s --arg ts "$(last 1 .ts)" 'map(select(.type == "stats" and .ifname == "tfl1" and .ts == $ts)) | length' "$OUT/live.out")"

# --- 5. 200 lifetimes ------------------------------------------------------------------
cycle() {
	ip -n $NSH link del tfl1 2>/dev/null
	pair 1 && wait_for 10 traced 1 $1
}
N=2
for i in $(seq 1 20); do N=$((N + 1)); cycle $N || break; done
R0=$(resources) S0=$(slots)
for i in $(seq 1 200); do N=$((N + 1)); cycle $N || { tf_diag "cycle $i: not traced"; break; }; done
sleep 1
R1=$(resources) S1=$(slots)
read -r fd0 ln0 rss0 <<<"$R0"
read -r fd1 ln1 rss1 <<<"$R1"
tf_diag "after 20 lifetimes: $fd0 fds, $ln0 BPF links, RSS $rss0 KiB, $S0 counter places;" \
	"after 200 more: $fd1 fds, $ln1 BPF links, RSS $rss1 KiB, $S1 counter places"
tf_eq "200 lifetimes: traced every time (restarts)" $((N - 1)) "$(last 1 .restarts)"
tf_eq "200 lifetimes: open fds, BPF links and counter places where they were" "$fd0 $ln0 $S0" "$fd1 $ln1 $S1"
tf_check "200 lifetimes: RSS within 256 KiB of where it was ($rss0 -> $rss1 KiB)" \
	test $((rss1 - rss0)) -le 256
tf_stop $TF_PID INT
tf_eq "exit code" 0 "$RC"
assert_clean "nothing left" "$NSH" $TF_PID tfl1 tfl2
tf_finish
