#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# tapflow's userspace under valgrind (memcheck), once per tracing command,
# and once through interfaces that come and go during the run,
# on the VM-host topology of tests/netns/topo.sh with scripted traffic:
# zero errors and zero definite or possible leaks, with only the documented
# false positives of tests/valgrind.supp suppressed. The plain build runs
# here (valgrind and AddressSanitizer do not mix); everything else runs the
# ASan/UBSan one.
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/topo.sh"

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PLAIN=${TAPFLOW_PLAIN:-$ROOT/.output/tapflow}
SUPP=$ROOT/tests/valgrind.supp

topo_test_begin "netns valgrind" vg jq python3 valgrind
[ -x "$PLAIN" ] || { tf_fail "plain build" "$PLAIN missing (make)"; tf_finish; }

# vg NAME ARGS...: tapflow ARGS under valgrind in $NSH, in the background;
# its pid (valgrind runs tapflow in place) in VG_PID.
vg() {
	local name=$1
	shift
	valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,possible \
		--suppressions="$SUPP" --log-file="$OUT/$name.vg" \
		"$PLAIN" --netns "$NSH" --no-libvirt "$@" >"$OUT/$name.out" 2>"$OUT/$name.err" &
	VG_PID=$!
	tf_on_exit "kill_job $VG_PID"
}

# vg_check NAME EXPECTED_RC: exit code, valgrind said nothing (with -q it
# only prints errors and leaks; its notes on bpf commands it does not know
# are not errors).
vg_check() {
	local name=$1 rc
	wait "$VG_PID"
	rc=$?
	tf_eq "$name: exit code" "$2" "$rc"
	local said
	said=$(grep -v 'WARNING: unhandled eBPF command' "$OUT/$name.vg")
	if [ -z "$said" ]; then tf_ok "$name: valgrind: no error, no leak"
	else tf_fail "$name: valgrind: no error, no leak" "$(head -c 1500 <<<"$said")"; fi
}

# The VM's UDP and echo replies, and 2 echo requests to the bridge that an
# iptables rule drops (the ping's failure is the point).
traffic() {
	vm_send 20 200 && ping_from "$NSP" $IP_VM 3 56
	ping_from "$NSP" $IP_BR 2 100 >/dev/null 2>&1
}

# flows: the flow table, expiry, drops (an iptables rule drops the peer's
# echo requests to the bridge), table and JSON reports every interval.
ip netns exec "$NSH" iptables -I INPUT -p icmp -s $IP_PEER -d $IP_BR -j DROP
tf_on_exit "ip netns exec $NSH iptables -D INPUT -p icmp -s $IP_PEER -d $IP_BR -j DROP"
vg flows "${IFACES[@]}" --json flows -i 0.5 --idle-timeout 1
# The first report comes once everything is attached, the drop tracer too.
wait_for 90 grep -q '"type":"flow"' "$OUT/flows.out" || tf_diag "flows: no report"
traffic
# Seen idle for the idle timeout by a poll: expired.
sleep 2
kill -TERM "$VG_PID"
vg_check flows 0
tf_eq "flows: the VM's 20 UDP frames, expired, in the tap's final report" "20 true" \
	"$(jq -r --arg t $TAP 'select(.type == "flow" and .final and .ifname == $t and
		.proto == "udp") | "\(.rx_packets) \(.expired)"' "$OUT/flows.out")"
tf_eq "flows: the 2 dropped echo requests are counted" 2 \
	"$(jq -r 'select(.type == "summary") | .drops' "$OUT/flows.out")"
ip netns exec "$NSH" iptables -D INPUT -p icmp -s $IP_PEER -d $IP_BR -j DROP

# drops --events, tables, clsact, ended by SIGINT.
vg drops "${IFACES[@]}" --attach clsact drops --events -i 0.5
wait_for 60 test -e "/run/tapflow/hooks.$VG_PID"
traffic
kill -INT "$VG_PID"
vg_check drops 0

# capture to a file, ended by -d.
vg capture "${IFACES[@]}" capture -w "$OUT/cap.pcapng" --sample 2 -d 3
traffic
vg_check capture 0
tf_check "capture: frames written" test -s "$OUT/cap.pcapng"

# A live session: interfaces matching a pattern come, go and come back
# (targets attached, released and revived at run time).
vg live -v --iface 'tfvg*' --json flows -i 0.3
# -v: its "start: ..." line says it is attached (to nothing yet) and watching.
wait_for 90 grep -q '^tapflow: start: ' "$OUT/live.err" || tf_diag "live: did not start"
for i in 1 2 3; do
	ip -n "$NSH" link add tfvg0 type veth peer name tfvg1 && ip -n "$NSH" link set tfvg0 up &&
		ip -n "$NSH" link set tfvg1 up
	wait_for 30 sh -c "[ \$(grep -c '^tapflow: tracing tfvg1 ' '$OUT/live.err') -ge $i ]"
	ip -n "$NSH" link del tfvg0
	wait_for 30 sh -c "[ \$(grep -c '^tapflow: interface tfvg1 is gone' '$OUT/live.err') -ge $i ]"
done
kill -INT "$VG_PID"
vg_check live 0
tf_eq "live: tfvg0 and tfvg1 traced 3 times each" "3 3" \
	"$(grep -c '^tapflow: tracing tfvg0 ' "$OUT/live.err") $(grep -c '^tapflow: tracing tfvg1 ' "$OUT/live.err")"

# A runtime error: an early way out frees what it took.
vg runtime --iface nope0 stats -d 1
vg_check runtime 1

tf_finish
