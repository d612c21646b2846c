#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# tapflow stats on a VM-host topology without VMs (tests/netns/topo.sh): a
# bridge, a tap with a scripted "VM" behind it, a veth to a peer namespace.
# Scripted traffic of known frame counts and sizes; tapflow's final records
# must give exact packets, bytes and segs per interface and direction, agree
# with the kernel's own link counters, and leave nothing attached -- after
# -d, SIGINT, SIGTERM and SIGKILL (TCX and clsact), next to other TC users
# and a second tapflow, and when a traced interface vanishes mid-run.
#
# Directions: these are --iface interfaces, so rx = TC ingress = what the
# interface received (for the tap: what the VM sent), tx = TC egress.
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/topo.sh"

topo_test_begin "netns counters" counters jq python3 tc bridge iptables

# check_final NAME FILE IFNAME "rxp rxb txp txb rxs txs"
check_final() { tf_eq "$1: $3 rx/tx packets, bytes, segs" "$4" "$(final_of "$2" "$3")"; }

# no_stderr NAME FILE: tapflow (under ASan) said nothing on stderr.
no_stderr() {
	if [ -s "$2" ]; then tf_fail "$1: nothing on stderr" "$(head -5 "$2")"
	else tf_ok "$1: nothing on stderr"; fi
}

# The exact traffic of the main run, and what each hook must count.
#   VM -> peer UDP: 10 x 42 (runt), 10 x 60, 10 x 1514, 5 x 9014 (jumbo)
#     = 35 frames, 61230 bytes: tap ingress, veth egress
#   peer -> VM ICMP echo, 5 x 98 each way: veth ingress, tap egress (request);
#     tap ingress, veth egress (reply)
#   peer -> bridge ICMP echo, 3 x 1042 each way: veth ingress, bridge
#     ingress (request); bridge egress, veth egress (reply)
main_traffic() {
	vm_send 10 42 && vm_send 10 60 && vm_send 10 1514 && vm_send 5 9014 &&
		ping_from "$NSP" $IP_VM 5 56 && ping_from "$NSP" $IP_BR 3 1000
}
EXP_TAP="40 61720 5 490 40 5"
EXP_VH="8 3616 43 64846 8 43"
EXP_BR="3 3126 3 3126 3 3"

# --- 1. stats -d: exact counts, the kernel agrees, nothing left -------------
t0=$SECONDS
k0_tap="0 0 0 0" k0_vh="0 0 0 0" k0_br="0 0 0 0" k0_vp="0 0 0 0" vm=""
# An older tapflow made the state directory 0755: tightened on the way.
[ -d /run/tapflow ] && chmod 0755 /run/tapflow
tf_start main "${IFACES[@]}" --json stats -d 4
if ! wait_attached $TF_PID 3; then
	tf_fail "main: tapflow attached to 3 interfaces" "$(cat "$OUT/main.err")"
else
	tf_ok "main: tapflow attached to 3 interfaces"
	tf_eq "main: state directory 0700 root, its record 0600 root" "700 root 600 root" \
		"$(stat -c '%a %U' /run/tapflow) $(stat -c '%a %U' /run/tapflow/hooks.$TF_PID)"
	k0_tap=$(kstats "$NSH" $TAP) k0_vh=$(kstats "$NSH" $VH) k0_br=$(kstats "$NSH" $BR)
	k0_vp=$(kstats "$NSP" $VP)
	tf_check "main: scripted traffic went through" main_traffic
	vm=$(vm_stats)
	tf_check "main: traffic done while tapflow still runs" kill -0 $TF_PID
fi
wait $TF_PID
tf_eq "main: exit code" 0 $?
k1_tap=$(kstats "$NSH" $TAP) k1_vh=$(kstats "$NSH" $VH) k1_br=$(kstats "$NSH" $BR)
k1_vp=$(kstats "$NSP" $VP)
no_stderr main "$OUT/main.err"
check_final main "$OUT/main.out" $TAP "$EXP_TAP"
check_final main "$OUT/main.out" $VH "$EXP_VH"
check_final main "$OUT/main.out" $BR "$EXP_BR"
tf_eq "main: one final record per interface, summary last" "3 summary" \
	"$(jq -s '[.[] | select(.type == "stats" and .final)] | length' "$OUT/main.out") $(tail -n1 "$OUT/main.out" | jq -r .type)"
tf_eq "main: summary (mode, interfaces, vanished, map_full)" "tcx 3 0 0" \
	"$(tail -n1 "$OUT/main.out" | jq -r '"\(.attach_mode) \(.interfaces) \(.vanished) \(.map_full)"')"
tf_eq "main: records carry vm null, role iface, attached" "null iface true" \
	"$(jq -r --arg i $TAP 'select(.type == "stats" and .final and .ifname == $i) |
		"\(.vm) \(.role) \(.attached)"' "$OUT/main.out")"
# The VM saw exactly the 5 echo requests, sent 40 frames, and nothing else
# was on the wire (no ARP, no IPv6): the namespaces are quiet.
tf_eq "main: the VM received and sent exactly the scripted frames" "5 490 40 61720 5 0" "$vm"
# The kernel's own counters over tapflow's run (the namespaces are quiet, so
# the snapshots after attach and after exit bracket the same frames).
# tap: rx = written by the VM (tun counts the frame), tx = read by the VM.
tf_eq "main: tap agrees with ip -s link (rx/tx packets, bytes)" "$(kdelta "$k0_tap" "$k1_tap")" \
	"$(final_of "$OUT/main.out" $TAP | cut -d' ' -f1-4)"
tf_eq "main: veth agrees with ip -s link" "$(kdelta "$k0_vh" "$k1_vh")" \
	"$(final_of "$OUT/main.out" $VH | cut -d' ' -f1-4)"
read -r vrp vrb vtp vtb _ < <(final_of "$OUT/main.out" $VH)
tf_eq "main: veth tx = peer's rx, veth rx = peer's tx" "$(kdelta "$k0_vp" "$k1_vp")" \
	"$vtp $vtb $vrp $vrb"
# The bridge counts its rx after the Ethernet header is pulled (14 bytes
# less per frame than skb->len at TC ingress); tx is comparable as is.
read -r brp brb btp btb _ < <(final_of "$OUT/main.out" $BR)
tf_eq "main: bridge agrees with ip -s link (rx bytes less 14 per frame)" \
	"$(kdelta "$k0_br" "$k1_br")" "$brp $((brb - 14 * brp)) $btp $btb"
assert_clean "main: nothing left after -d" "$NSH" $TF_PID $TAP $BR $VH
tf_diag "main run: $((SECONDS - t0)) s"

# --- 2./3. Every terminating signal: final report, exit 0, nothing left -----
# SIGINT run through ip netns exec (the other runs use --netns). Beyond
# SIGINT/SIGTERM, the signals that would kill by default: a dropped ssh
# session (HUP), Ctrl-\ (QUIT), supervisors' and users' own. These run with
# clsact, whose filters would outlive a process that died by default.
for sig in INT TERM HUP QUIT USR1 USR2 ALRM PWR RTMIN+1; do
	mode=()
	case $sig in INT|TERM) ;; *) mode=(--attach clsact) ;; esac
	if [ $sig == INT ]; then
		ip netns exec "$NSH" "$TAPFLOW" --no-libvirt "${IFACES[@]}" --json stats \
			>"$OUT/sig$sig.out" 2>"$OUT/sig$sig.err" &
		TF_PID=$!
		tf_on_exit "kill_job $TF_PID"
	else
		tf_start sig$sig "${IFACES[@]}" "${mode[@]}" --json stats
	fi
	wait_attached $TF_PID 3 || tf_diag "SIG$sig: not attached: $(cat "$OUT/sig$sig.err")"
	vm_send 7 100 && ping_from "$NSP" $IP_BR 2 56 || tf_diag "SIG$sig: traffic failed"
	tf_stop $TF_PID $sig
	tf_eq "SIG$sig: exit code" 0 "$RC"
	no_stderr "SIG$sig" "$OUT/sig$sig.err"
	check_final "SIG$sig" "$OUT/sig$sig.out" $TAP "7 700 0 0 7 0"
	check_final "SIG$sig" "$OUT/sig$sig.out" $VH "2 196 9 896 2 9"
	check_final "SIG$sig" "$OUT/sig$sig.out" $BR "2 196 2 196 2 2"
	tf_eq "SIG$sig: summary is the last record" summary \
		"$(tail -n1 "$OUT/sig$sig.out" | jq -r .type)"
	assert_clean "SIG$sig: nothing left" "$NSH" $TF_PID $TAP $BR $VH
done

# --- 4. SIGKILL with TCX: the links die with the process -------------------
tf_start kill_tcx "${IFACES[@]}" --attach tcx --json stats
wait_attached $TF_PID 3
tf_eq "SIGKILL tcx: the probe sees tapflow's 6 TCX hooks" 6 \
	"$(for d in $TAP $BR $VH; do hooks_of "$NSH" $d; done | grep -c '^tcx ')"
tf_stop $TF_PID KILL
tf_eq "SIGKILL tcx: killed" 137 "$RC"
left=$(for d in $TAP $BR $VH; do hooks_of "$NSH" $d; n_tcx "$NSH" $d | grep -v '^0$'; done)
tf_eq "SIGKILL tcx: no TCX program left on any interface" "" "$left"
KILLED_TCX=$TF_PID
tf_on_exit "rm -f /run/tapflow/hooks.$KILLED_TCX"

# --- 4b. SIGKILL with TCX in a namespace that is then deleted -----------------
# Its TCX links died with it, its namespace is gone: its state file is of
# no use to anyone, and no start in that namespace can ever clean it, so
# the next start anywhere should.
tf_netns NSK k
ip -n "$NSK" link add tfk0 type veth peer name tfk1
"$TAPFLOW" --netns "$NSK" --no-libvirt --iface tfk0 --attach tcx --json stats \
	>"$OUT/kill_ns.out" 2>"$OUT/kill_ns.err" &
KILLED_NS=$!
tf_on_exit "kill_job $KILLED_NS"
tf_on_exit "rm -f /run/tapflow/hooks.$KILLED_NS"
wait_attached $KILLED_NS 1 || tf_diag "4b: not attached: $(cat "$OUT/kill_ns.err")"
tf_stop $KILLED_NS KILL
ip netns del "$NSK"

# --- 5. SIGKILL with clsact: filters stay, the next start removes them ------
# tc filters of our own on the veth must survive the cleanup: u32 + mirred
# (this kernel has no matchall/gact), ingress mirrored to tfmi0, egress to
# tfme0, so that those ports' tx counters tell what each filter saw. (u32
# filters of one clsact qdisc share their hash tables: both show up in the
# ingress and in the egress dump, hence the mirror ports.) Pref 10: before
# anything that picks its priority automatically (49152 and down).
ip -n "$NSH" link add tfmi0 type veth peer name tfmi1 &&
	ip -n "$NSH" link add tfme0 type veth peer name tfme1 &&
	for d in tfmi0 tfmi1 tfme0 tfme1; do ip -n "$NSH" link set $d up || false; done &&
	tc -n "$NSH" qdisc add dev $VH clsact &&
	tc -n "$NSH" filter add dev $VH ingress pref 10 protocol all u32 match u32 0 0 \
		action mirred egress mirror dev tfmi0 &&
	tc -n "$NSH" filter add dev $VH egress pref 10 protocol all u32 match u32 0 0 \
		action mirred egress mirror dev tfme0 ||
	tf_fail "own tc filters on $VH" "cannot add them"
tf_on_exit "ip -n $NSH link del tfmi0"
tf_on_exit "ip -n $NSH link del tfme0"
tf_on_exit "tc -n $NSH qdisc del dev $VH clsact"
# own_filters: our u32 filters and their mirred actions, "pref handle dev ...".
own_filters() {
	tc -n "$NSH" -j filter show dev $VH ingress |
		jq -r '[.[] | select(.kind == "u32" and .options.actions) |
			"\(.pref) \(.options.fh) \(.options.actions[0].to_dev)"] | unique | join(" ")'
}
OWN=$(own_filters)
tf_eq "own filters on $VH: ingress and egress" "10 800::800 tfmi0 10 801::800 tfme0" "$OWN"
tf_start kill_cls "${IFACES[@]}" --attach clsact --json stats
wait_attached $TF_PID 3
tf_stop $TF_PID KILL
tf_eq "SIGKILL clsact: killed" 137 "$RC"
tf_eq "SIGKILL clsact: tapflow's 6 filters are still there (cls_bpf outlives its loader)" 6 \
	"$(for d in $TAP $BR $VH; do hooks_of "$NSH" $d; done | grep -c '^clsact ')"
tf_check "SIGKILL clsact: its state file stays for the next start" \
	test -e /run/tapflow/hooks.$TF_PID
# Its pid now belongs to another, live process (pids are reused): the state
# file must not pass for a live tapflow's. A sleep of ours stands for it.
sleep 300 &
KILLED_CLS=$!
tf_on_exit "kill_job $KILLED_CLS"
mv /run/tapflow/hooks.$TF_PID /run/tapflow/hooks.$KILLED_CLS
tf_on_exit "rm -f /run/tapflow/hooks.$KILLED_CLS"
# The next start in this namespace (TCX, on one interface only) cleans them all.
tf_start restart --iface $TAP --json stats -d 0.5
wait $TF_PID
tf_eq "restart: exit code" 0 $?
no_stderr restart "$OUT/restart.err"
left=$(for d in $TAP $BR $VH; do hooks_of "$NSH" $d | sed "s/^/$d /"; done)
tf_eq "restart: the killed instance's clsact filters are gone" "" "$left"
tf_eq "restart: our own filters on $VH survive" "$OWN" "$(own_filters)"
tf_check "restart: stale state files of the killed instances removed" \
	test ! -e /run/tapflow/hooks.$KILLED_CLS -a ! -e /run/tapflow/hooks.$KILLED_TCX
tf_check "restart: stale state file of the TCX instance killed in a deleted namespace removed" \
	test ! -e /run/tapflow/hooks.$KILLED_NS
# The killed instance had created the clsact qdiscs of the tap and the
# bridge; a clean exit removes such a qdisc once it is empty, the stale
# cleanup should too (the veth's qdisc is ours and must stay).
tf_check "restart: the killed instance's empty clsact qdiscs on $TAP, $BR removed" \
	eval "! has_clsact $NSH $TAP && ! has_clsact $NSH $BR"
tc -n "$NSH" qdisc del dev $TAP clsact 2>/dev/null
tc -n "$NSH" qdisc del dev $BR clsact 2>/dev/null
tf_check "restart: our clsact qdisc on $VH stays" has_clsact "$NSH" $VH

# --- 6. Coexistence with our own filters, TCX and clsact -------------------
# Our filters must see exactly what they would see without tapflow (their
# mirror ports' tx), and tapflow must still count every frame: in clsact
# mode our pref-10 filters run first and end the classification (mirred's
# verdict is "pipe"), so tapflow must sit before them.
mirred_pkts() {
	tc -n "$NSH" -s -j filter show dev $VH ingress |
		jq --arg d "$1" '[.[] | .options.actions[]? | select(.kind == "mirred" and
			.to_dev == $d)] | unique_by(.index) | map(.stats.packets) | add'
}
for mode in tcx clsact; do
	m0_in=$(mirred_pkts tfmi0) m0_out=$(mirred_pkts tfme0)
	km0_in=$(kstats "$NSH" tfmi0) km0_out=$(kstats "$NSH" tfme0)
	tf_start coex_$mode "${IFACES[@]}" --attach $mode --json stats
	wait_attached $TF_PID 3
	# veth: rx 2 echo requests (2 x 98), tx 4 x 200 UDP + 2 replies.
	vm_send 4 200 && ping_from "$NSP" $IP_VM 2 56 || tf_diag "coex $mode: traffic failed"
	tf_stop $TF_PID INT
	tf_eq "coex $mode: exit code" 0 "$RC"
	no_stderr "coex $mode" "$OUT/coex_$mode.err"
	check_final "coex $mode" "$OUT/coex_$mode.out" $TAP "6 996 2 196 6 2"
	check_final "coex $mode" "$OUT/coex_$mode.out" $VH "2 196 6 996 2 6"
	tf_eq "coex $mode: our filters' actions ran for every frame (in, out)" "2 6" \
		"$(($(mirred_pkts tfmi0) - m0_in)) $(($(mirred_pkts tfme0) - m0_out))"
	tf_eq "coex $mode: our mirror ports sent every frame (in, out)" "0 0 2 196 0 0 6 996" \
		"$(kdelta "$km0_in" "$(kstats "$NSH" tfmi0)") $(kdelta "$km0_out" "$(kstats "$NSH" tfme0)")"
	tf_eq "coex $mode: our filters are still there" "$OWN" "$(own_filters)"
	assert_clean "coex $mode: nothing of tapflow left" "$NSH" $TF_PID $TAP $BR $VH
	tf_check "coex $mode: our clsact qdisc stays, none left on $TAP, $BR" \
		eval "has_clsact $NSH $VH && ! has_clsact $NSH $TAP && ! has_clsact $NSH $BR"
done
tc -n "$NSH" qdisc del dev $VH clsact
ip -n "$NSH" link del tfmi0
ip -n "$NSH" link del tfme0

# --- 7. Two tapflow instances at once ---------------------------------------
# A starts first, B second; both count everything; A exits, B goes on.
for mode in tcx clsact; do
	tf_start two_a_$mode "${IFACES[@]}" --attach $mode --json stats
	A=$TF_PID
	wait_attached $A 3
	tf_start two_b_$mode "${IFACES[@]}" --attach $mode --json stats
	B=$TF_PID
	wait_attached $B 3
	tf_eq "two $mode: 12 hooks, 2 per interface and direction" 12 \
		"$(for d in $TAP $BR $VH; do hooks_of "$NSH" $d; done | wc -l)"
	# Phase 1, seen by both: tap rx 3 x 300 + 1 x 98, tx 1 x 98.
	vm_send 3 300 && ping_from "$NSP" $IP_VM 1 56 || tf_diag "two $mode: traffic 1 failed"
	tf_stop $A INT
	tf_eq "two $mode: A exit code" 0 "$RC"
	no_stderr "two $mode A" "$OUT/two_a_$mode.err"
	tf_eq "two $mode: A's hooks gone, B's 6 still there" 6 \
		"$(for d in $TAP $BR $VH; do hooks_of "$NSH" $d; done | wc -l)"
	tf_check "two $mode: A's state file gone" test ! -e /run/tapflow/hooks.$A
	# Phase 2, B only: tap rx 5 x 500 + 2 x 98, tx 2 x 98.
	vm_send 5 500 && ping_from "$NSP" $IP_VM 2 56 || tf_diag "two $mode: traffic 2 failed"
	tf_stop $B INT
	tf_eq "two $mode: B exit code" 0 "$RC"
	no_stderr "two $mode B" "$OUT/two_b_$mode.err"
	check_final "two $mode A" "$OUT/two_a_$mode.out" $TAP "4 998 1 98 4 1"
	check_final "two $mode A" "$OUT/two_a_$mode.out" $VH "1 98 4 998 1 4"
	check_final "two $mode B" "$OUT/two_b_$mode.out" $TAP "11 3694 3 294 11 3"
	check_final "two $mode B" "$OUT/two_b_$mode.out" $VH "3 294 11 3694 3 11"
	check_final "two $mode B" "$OUT/two_b_$mode.out" $BR "0 0 0 0 0 0"
	assert_clean "two $mode: nothing left after both" "$NSH" $B $TAP $BR $VH
	# A created the clsact qdiscs, but left while B still had filters there.
	tf_check "two $mode: no clsact qdisc left behind" \
		eval "! has_clsact $NSH $TAP && ! has_clsact $NSH $BR && ! has_clsact $NSH $VH"
	for d in $TAP $BR $VH; do tc -n "$NSH" qdisc del dev $d clsact 2>/dev/null; done
done

# --- 8. GSO: a TCP bulk transfer, segs and the kernel's counters -------------
# peer -> bridge address over TCP: the veth passes TSO skbs up, so tapflow
# must count skbs as packets (like the kernel) and their segments as segs.
ip netns exec "$NSH" socat -u TCP4-LISTEN:5001,bind=$IP_BR,reuseaddr OPEN:/dev/null &
SRV=$!
tf_on_exit "kill_job $SRV"
wait_for 5 sh -c "ip netns exec $NSH ss -Hltn 'sport = :5001' | grep -q 5001"
tf_start gso --iface $VH --iface $BR --json stats
wait_attached $TF_PID 2
k0_vh=$(kstats "$NSH" $VH) k0_br=$(kstats "$NSH" $BR)
# Large writes, so that TCP builds GSO skbs.
head -c 4000000 /dev/zero | nsq "$NSP" socat -b 262144 -u STDIN TCP4:$IP_BR:5001
wait $SRV
tf_eq "gso: transfer done" 0 $?
sleep 0.3	# the last ACKs
tf_stop $TF_PID INT
tf_eq "gso: exit code" 0 "$RC"
no_stderr gso "$OUT/gso.err"
k1_vh=$(kstats "$NSH" $VH) k1_br=$(kstats "$NSH" $BR)
tf_eq "gso: veth agrees with ip -s link" "$(kdelta "$k0_vh" "$k1_vh")" \
	"$(final_of "$OUT/gso.out" $VH | cut -d' ' -f1-4)"
read -r brp brb btp btb _ < <(final_of "$OUT/gso.out" $BR)
tf_eq "gso: bridge agrees with ip -s link (rx bytes less 14 per frame)" \
	"$(kdelta "$k0_br" "$k1_br")" "$brp $((brb - 14 * brp)) $btp $btb"
read -r vrp vrb _ _ vrs _ < <(final_of "$OUT/gso.out" $VH)
tf_diag "gso: veth rx $vrp skbs, $vrs segs, $vrb bytes"
# 4 MB of payload is more than 4000000 / 8948 (MSS at MTU 9000) segments.
tf_check "gso: segs count the segments of GSO skbs (segs > packets, segs >= 448)" \
	test "${vrs:-0}" -gt "${vrp:-0}" -a "${vrs:-0}" -ge 448
assert_clean "gso: nothing left" "$NSH" $TF_PID $BR $VH

# --- 9. An interface vanishes mid-run ---------------------------------------
for mode in tcx clsact; do
	tf_start gone_$mode "${IFACES[@]}" --attach $mode --json stats
	wait_attached $TF_PID 3
	vm_send 2 100 || tf_diag "gone $mode: traffic 1 failed"
	ip -n "$NSH" link del $VH
	sleep 1.2	# at least one report interval with the veth gone
	# Tap and bridge still count: host -> VM echo (bridge tx, tap tx; the
	# replies tap rx, bridge rx), VM -> nowhere UDP (tap rx only).
	vm_send 3 200 && ping_from "$NSH" $IP_VM 2 56 || tf_diag "gone $mode: traffic 2 failed"
	tf_stop $TF_PID INT
	tf_eq "gone $mode: exit code 0 (the run goes on without it)" 0 "$RC"
	tf_eq "gone $mode: one line on stderr, naming $VH" \
		"1 1" "$(wc -l <"$OUT/gone_$mode.err") $(grep -c "^tapflow: interface $VH is gone" "$OUT/gone_$mode.err")"
	check_final "gone $mode" "$OUT/gone_$mode.out" $TAP "7 996 2 196 7 2"
	check_final "gone $mode" "$OUT/gone_$mode.out" $BR "2 196 2 196 2 2"
	check_final "gone $mode" "$OUT/gone_$mode.out" $VH "0 0 2 200 0 2"
	tf_eq "gone $mode: the veth's final record says gone, summary vanished 1" "true 1" \
		"$(jq -r --arg i $VH 'select(.type == "stats" and .final and .ifname == $i) | .gone' \
			"$OUT/gone_$mode.out") $(tail -n1 "$OUT/gone_$mode.out" | jq -r .vanished)"
	assert_clean "gone $mode: nothing left on the remaining interfaces" "$NSH" $TF_PID $TAP $BR
	tf_check "gone $mode: no clsact qdisc left" \
		eval "! has_clsact $NSH $TAP && ! has_clsact $NSH $BR"
	# The veth again, for the next round.
	if [ $mode == tcx ]; then
		ip -n "$NSH" link add $VH address $MAC_VH mtu 9000 type veth peer name $VP \
			netns "$NSP" address $MAC_PEER mtu 9000 &&
			ip -n "$NSH" link set $VH master $BR up && ip -n "$NSP" link set $VP up &&
			ip -n "$NSP" addr add $IP_PEER/24 dev $VP &&
			ip -n "$NSP" neigh add $IP_VM lladdr $MAC_VM dev $VP nud permanent &&
			ip -n "$NSP" neigh add $IP_BR lladdr $MAC_BR dev $VP nud permanent &&
			bridge -n "$NSH" fdb add $MAC_PEER dev $VH master static ||
			tf_fail "gone: recreate $VH"
	fi
done

tf_eq "the VM never got a frame it did not expect" 0 "$(vm_stats | cut -d' ' -f6)"
tf_finish
