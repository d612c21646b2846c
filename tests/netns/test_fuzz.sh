#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Fuzzed frames through the real topology of tests/netns/topo.sh: the "VM"
# writes tens of thousands of seeded random and mutated frames into its
# tap (tfframes.py fuzz_frames: every kind of header, cut, bent and
# garbage, 0 bytes to jumbo), which the tap, the bridge and the veth carry
# as far as the kernel lets them. tapflow flows (a small flow map, so that
# it overflows) and tapflow stats run on all three at once. Checked:
# - per interface, the sum of the final flow records (flows and their
#   aggregates) equals the stats totals, each way, packets, bytes, segs;
#   no `unaccounted` aggregate; the tap received exactly what the VM wrote
#   (as TC ingress sees it: tfframes.tc_ingress_len);
# - the summary's parse_errors and map_full are the unparsed and overflow
#   aggregates;
# - both exit 0, say nothing on stderr and leave no hook.
# The seed is printed; TF_FUZZ_SEED=N writes the same frames again,
# TF_FUZZ_NETNS_FRAMES sets how many (default 60000).
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/topo.sh"

topo_test_begin "netns fuzz" fuzz jq python3 tc bridge iptables

SEED=${TF_FUZZ_SEED:-$(( (RANDOM << 30) ^ (RANDOM << 15) ^ RANDOM ))}
N=${TF_FUZZ_NETNS_FRAMES:-60000}
MAXLEN=9014	# MTU 9000 and the Ethernet header: jumbo frames
tf_diag "seed $SEED"
tf_diag "TF_FUZZ_SEED=$SEED TF_FUZZ_NETNS_FRAMES=$N reproduce this run"

no_stderr() {
	if [ -s "$2" ]; then tf_fail "$1: nothing on stderr" "$(head -5 "$2")"
	else tf_ok "$1: nothing on stderr"; fi
}

# flow_sum FILE IFNAME: the sum of IFNAME's final flow records, flows and
# aggregates, as "rx_packets rx_bytes tx_packets tx_bytes rx_segs tx_segs".
flow_sum() {
	jq -rs --arg i "$2" '[.[] | select(.type == "flow" and .final and .ifname == $i)] |
		"\(map(.rx_packets) | add) \(map(.rx_bytes) | add) \(map(.tx_packets) | add) \(map(.tx_bytes) | add) \(map(.rx_segs) | add) \(map(.tx_segs) | add)"' "$1"
}

# aggr_packets FILE KIND: packets of every final KIND aggregate, both ways.
aggr_packets() {
	jq -rs --arg k "$2" '[.[] | select(.type == "flow" and .final and .aggregate == $k) |
		.rx_packets + .tx_packets] | add // 0' "$1"
}

tf_start fuzz "${IFACES[@]}" --json --max-flows 2048 flows
FZ=$TF_PID
tf_start fuzz_stats "${IFACES[@]}" --json stats
STATS=$TF_PID
# Both on all three before the first frame, or the totals cannot agree
# (the ASan build, on a busy machine, can take a while to load).
if ! wait_attached $FZ 3 60 || ! wait_attached $STATS 3 60; then
	tf_fail "flows and stats attached" "$(cat "$OUT/fuzz.err" "$OUT/fuzz_stats.err")"
	tf_finish
fi

# The frames, and what the tap took of them (it refuses writes under an
# Ethernet header); a generous wait, for a busy machine.
t0=$SECONDS
id="fuzz.$BASHPID.$(date +%s%N)"
echo "$id fuzz $SEED $N $MAXLEN" >"$VM_CTL"
if wait_for 300 grep -q "^done $id " "$VM_LOG"; then
	read -r _ _ _ WRITTEN WBYTES REFUSED TC TC_BYTES < <(grep "^done $id " "$VM_LOG")
else
	WRITTEN=0 WBYTES=0 REFUSED=0 TC=0 TC_BYTES=0
fi
tf_eq "the VM wrote every frame (taken + refused)" "$N" "$((WRITTEN + REFUSED))"
tf_diag "$WRITTEN frames ($WBYTES bytes) into the tap, $REFUSED refused, $((SECONDS - t0)) s"
# What the frames set off (ARP replies, ICMP errors, floods) is immediate.
sleep 1
tf_stop $FZ INT
tf_eq "flows: exit code" 0 "$RC"
tf_stop $STATS INT
tf_eq "stats: exit code" 0 "$RC"
no_stderr flows "$OUT/fuzz.err"
no_stderr stats "$OUT/fuzz_stats.err"
tf_eq "flows: the summary is the last record" summary "$(tail -n1 "$OUT/fuzz.out" | jq -r .type)"
# The final report alone: the interval records before it are many.
F=$OUT/fuzz.final
grep -F '"final":true' "$OUT/fuzz.out" >"$F"
tail -n1 "$OUT/fuzz.out" >>"$F"

# The tap in its own view: rx = what it received from the VM, as TC sees
# it (an outer VLAN tag moved out of the data, too short a tagged frame
# dropped before: tfframes.tc_ingress_len).
read -r tap_rxp tap_rxb _ < <(final_of "$OUT/fuzz_stats.out" $TAP)
tf_eq "tap: received exactly what the VM wrote, as TC sees it (packets bytes)" \
	"$TC $TC_BYTES" "$tap_rxp $tap_rxb"
for dev in $TAP $BR $VH; do
	tf_eq "$dev: flow records + overflow + unparsed = stats (rx/tx packets, bytes, segs)" \
		"$(final_of "$OUT/fuzz_stats.out" $dev)" "$(flow_sum "$F" $dev)"
done
tf_eq "no unaccounted aggregate" 0 "$(aggr_packets "$F" unaccounted)"
tf_eq "no unaccounted record at all" "" \
	"$(jq -r 'select(.aggregate == "unaccounted") | .ifname' "$F" | head -3)"
OVERFLOW=$(aggr_packets "$F" overflow)
UNPARSED=$(aggr_packets "$F" unparsed)
tf_diag "flows $(jq -r 'select(.type == "flow" and .final and .aggregate == null) | .ifname' "$F" |
	wc -l), overflow $OVERFLOW, unparsed $UNPARSED packets"
tf_check "the fuzz filled the flow map (overflow) and was partly unparseable" \
	test "$OVERFLOW" -gt 0 -a "$UNPARSED" -gt 0
tf_eq "summary: map_full = overflow, parse_errors = unparsed" "$OVERFLOW $UNPARSED" \
	"$(tail -n1 "$F" | jq -r '"\(.map_full) \(.parse_errors)"')"
assert_clean "flows: nothing left" "$NSH" $FZ $TAP $BR $VH
assert_clean "stats: nothing left" "$NSH" $STATS $TAP $BR $VH
tf_finish
