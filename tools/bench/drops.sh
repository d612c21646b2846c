#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# drops.sh: what tapflow's drop tracer (tf_kfree_skb, tp_btf/kfree_skb)
# costs a flood of packets that the host drops.
#
# A router namespace RT as on a libvirt NAT host: a VM namespace hangs on
# a veth whose other end, vport, is a port of bridge br0; RT routes between
# br0 and the uplink veth up0 (ip_forward), whose other end is the
# "internet" namespace NET. A second client namespace, OTHER, hangs on a
# veth oport of RT that tapflow does not trace. iptables in RT drops, in
# FORWARD, UDP to NET's discard port: from br0 (the VM's flood: skbs of
# interfaces tapflow traces) and from oport (the other flood: skbs of an
# interface it does not trace, which the tracer leaves at its first test).
#
# Each flood is flowgen's 64-byte UDP frames through an AF_PACKET socket on
# the client's eth0, one flow, for -t seconds, pinned to the first CPU of
# --affinity: the frame crosses the veth, (the bridge,) routing and
# FORWARD, where it is dropped, all on the sender's CPU; the figure is the
# sender's own count of frames per second, next to the DROP rule's counter.
#
# Three states in ABBA rounds (off nodrops drops / drops nodrops off):
# nothing attached; `tapflow stats --no-drops` and `tapflow stats` (the drop
# tracer on), both with --iface vport --iface br0 --uplink up0. Ratios are
# medians of the per-round ratios: stats/`stats --no-drops` (the drop tracer
# alone: its target is >= 0.95) and stats/off. A round during which other
# work kept the free CPUs busy is run again. tapflow's count of the VM's
# drops is checked against the DROP rule's.
#
# Then, in intervals of their own (the kernel's BPF run-time statistics
# cost time themselves), `tapflow stats` under prog_cost --watch during
# each flood: run_time_ns / run_cnt of tf_kfree_skb for the drops of the
# untraced interface and of the traced ones.
#
# Last, the same ratio measured closer: the flood's rate swings by +-15 %
# within seconds here, so blocks seconds apart need many rounds to resolve
# a 5 % difference. Under `tapflow stats --no-drops` (the TC programs of
# both states), drop_toggle attaches and detaches tapflow's drop tracer,
# set up as tapflow sets it up for the same interfaces, every
# --switch-period-ms (100) for --switch-seconds (40; 0: none), while the
# VM's flood reports its progress every 10 ms (flowgen --trace); each
# period the tracer was on is compared with the two off periods around it.
#
#   tools/bench/drops.sh [-t SEC] [-r ROUNDS] [--affinity C,S]
#                        [--attach auto|tcx|clsact] [--busy-max PCT]
#                        [--max-redo N] [--insitu-rounds N] [--no-insitu]
#                        [--switch-seconds S] [--switch-period-ms P]
#                        [--json]
#
# Needs root, jq, iproute2, iptables and a built .output/tapflow (make) and
# .output/bench/{flowgen,prog_cost,drop_toggle} (make -C tools/bench). Everything it
# creates (namespaces, and with them their links, addresses and iptables
# rules; processes) is removed on exit, also on failure or Ctrl-C.
set -uo pipefail

PROG=drops.sh
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$HERE/lib.sh"
TAPFLOW=${TAPFLOW:-$ROOT/.output/tapflow}
PROG_COST=${PROG_COST:-$ROOT/.output/bench/prog_cost}
FLOWGEN=${FLOWGEN:-$ROOT/.output/bench/flowgen}
DROP_TOGGLE=${DROP_TOGGLE:-$ROOT/.output/bench/drop_toggle}

# Defaults of --attach, --affinity (the flood's sender on its first CPU),
# --busy-max, --max-redo: lib.sh. Floods of 2 s (-t; some 600 000 frames
# each). 8 rounds: single rounds swing by +-10 % on a 2-vCPU VM, and the
# ratio's target is 5 % from 1; the median of 8 moves a few %.
SECS=2
ROUNDS=8
INSITU=1
INSITU_ROUNDS=3
SWITCH_SECS=40
SWITCH_MS=100

own_opt() {
	case $1 in
	--no-insitu) INSITU=0 ;;
	--insitu-rounds) INSITU_ROUNDS=${2:-}; return 2 ;;
	--switch-seconds) SWITCH_SECS=${2:-}; return 2 ;;
	--switch-period-ms) SWITCH_MS=${2:-}; return 2 ;;
	*) return 0 ;;
	esac
	return 1
}
parse_opts "$@"
check_common_opts
[[ $INSITU_ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "$PROG: --insitu-rounds needs a count" >&2; exit 2; }
[[ $SWITCH_SECS =~ ^[0-9]+$ ]] || { echo "$PROG: --switch-seconds needs seconds" >&2; exit 2; }
[[ $SWITCH_MS =~ ^[1-9][0-9]*$ ]] && [ "$SWITCH_MS" -ge 50 ] ||
	{ echo "$PROG: --switch-period-ms needs at least 50 ms" >&2; exit 2; }
# flowgen's frames are the 64-byte minimum (18 bytes of payload).
[ "$UDP_LEN" = 18 ] || { echo "$PROG: --udp-len: the flood's frames are 64 B (flowgen)" >&2; exit 2; }

need_tools jq ip iptables
[ -x "$FLOWGEN" ] || die "$FLOWGEN not built (run make -C tools/bench)"
[ "$SWITCH_SECS" -eq 0 ] || [ -x "$DROP_TOGGLE" ] ||
	die "$DROP_TOGGLE not built (run make -C tools/bench, or pass --switch-seconds 0)"
if [ "$INSITU" -eq 1 ] && [ ! -x "$PROG_COST" ]; then
	die "$PROG_COST not built (run make -C tools/bench, or pass --no-insitu)"
fi

# Everything it creates is removed at exit (lib.sh: bench_init, cleanup).
bench_init tfd
NS_VM=$ID-vm NS_OT=$ID-ot NS_RT=$ID-rt NS_NET=$ID-net
# RFC 2544 benchmarking range, inside our namespaces only (nat.sh has
# 198.18.1.0/24 and 198.19.1.0/24, throughput.sh 198.18.0.0/24).
GW_IP=198.18.2.1 VM_IP=198.18.2.2	# VM behind br0
OT_GW=198.18.3.1 OT_IP=198.18.3.2	# OTHER behind oport
UP_IP=198.19.2.1 NET_IP=198.19.2.2	# the uplink, and the "internet"
DROP_PORT=9				# UDP to NET's discard port is dropped in FORWARD
TF_NS=$NS_RT
TRACED=vport,br0
GEN_CPU=()
[ -n "$AFFINITY" ] && GEN_CPU=(--cpu "${AFFINITY%%,*}")

STATES=(off nodrops drops)
declare -A STATE_NAME=([off]="off" [nodrops]="stats --no-drops" [drops]="stats")
FLOODS=(vm other)
# Per flood: the sender's namespace, its address, the gateway's MAC (set
# up), and the interface its frames come in on (the DROP rule's -i).
declare -A SRC_NS=([vm]=$NS_VM [other]=$NS_OT) SRC_IP=([vm]=$VM_IP [other]=$OT_IP)
declare -A SRC_IN=([vm]=br0 [other]=oport) GW_MAC

# ---- topology ----

setup() {
	local ns
	for ns in "$NS_VM" "$NS_OT" "$NS_RT" "$NS_NET"; do ns_add "$ns"; done
	ip -n "$NS_RT" link add br0 type bridge &&
		ip -n "$NS_VM" link add eth0 type veth peer name vport netns "$NS_RT" &&
		ip -n "$NS_OT" link add eth0 type veth peer name oport netns "$NS_RT" &&
		ip -n "$NS_RT" link add up0 type veth peer name eth0 netns "$NS_NET" ||
		die "cannot create the bridge and veths"
	ip -n "$NS_RT" link set vport master br0 &&
		ip -n "$NS_RT" addr add "$GW_IP/24" dev br0 &&
		ip -n "$NS_RT" addr add "$OT_GW/24" dev oport &&
		ip -n "$NS_RT" addr add "$UP_IP/24" dev up0 &&
		ip -n "$NS_RT" link set br0 up && ip -n "$NS_RT" link set vport up &&
		ip -n "$NS_RT" link set oport up && ip -n "$NS_RT" link set up0 up ||
		die "cannot set up the router"
	ip -n "$NS_VM" addr add "$VM_IP/24" dev eth0 && ip -n "$NS_VM" link set eth0 up &&
		ip -n "$NS_OT" addr add "$OT_IP/24" dev eth0 && ip -n "$NS_OT" link set eth0 up &&
		ip -n "$NS_NET" addr add "$NET_IP/24" dev eth0 && ip -n "$NS_NET" link set eth0 up ||
		die "cannot address the clients and the internet"
	# Forwarding on; the floods die in FORWARD, one rule per way in, so
	# that each flood has a counter of its own.
	ip netns exec "$NS_RT" sysctl -qw net.ipv4.ip_forward=1 >/dev/null &&
		ip netns exec "$NS_RT" iptables -w -A FORWARD -i br0 -p udp -d "$NET_IP" \
			--dport "$DROP_PORT" -j DROP &&
		ip netns exec "$NS_RT" iptables -w -A FORWARD -i oport -p udp -d "$NET_IP" \
			--dport "$DROP_PORT" -j DROP || die "cannot set up forwarding and the DROP rules"
	# flowgen writes the gateway's MAC into its frames: no ARP, and RT
	# never answers a dropped packet (DROP, not REJECT).
	GW_MAC[vm]=$(ip -n "$NS_RT" -j link show br0 | jq -r '.[0].address')
	GW_MAC[other]=$(ip -n "$NS_RT" -j link show oport | jq -r '.[0].address')
	wait_ports_up "$NS_RT" 1
}

# The DROP rule's packet counter for the frames coming in on IFACE.
rule_count() {
	ip netns exec "$NS_RT" iptables -w -nvx -L FORWARD |
		awk -v i="$1" '$3 == "DROP" && $6 == i { print $1; found = 1 } END { exit !found }' ||
		die "no DROP rule for $1 in $NS_RT"
}

# ---- measurements ----

N_FLOOD=0
# flood SRC: flowgen's 64-byte flood from SRC (vm, other) for SECS s into
# the DROP rule. FLOOD_PPS: frames/s the sender sent; FLOOD_SENT: frames
# it sent; FLOOD_DROPPED: the rule's count meanwhile.
flood() {
	local src=$1 out=$WORK/flood.$((++N_FLOOD)).json d0 d1
	d0=$(rule_count "${SRC_IN[$src]}") || exit 1
	bg ip netns exec "${SRC_NS[$src]}" "$FLOWGEN" send eth0 "${GW_MAC[$src]}" "${SRC_IP[$src]}" \
		"$NET_IP" "$DROP_PORT" 1 0 --seconds "$SECS" "${GEN_CPU[@]}" >"$out" 2>"$out.err"
	bg_wait "$BG_PID" || die "flowgen send failed: $(head -c 300 "$out.err")"
	d1=$(rule_count "${SRC_IN[$src]}") || exit 1
	read -r FLOOD_SENT FLOOD_PPS < <(jq -r '"\(.sent) \(.pps)"' "$out") ||
		die "no flowgen result in $out"
	FLOOD_DROPPED=$((d1 - d0))
}

# tapflow in STATE: stats, with the drop tracer (drops) or without (nodrops).
tf_start_state() {
	local opts=(--uplink up0)
	[ "$1" = nodrops ] && opts+=(--no-drops)
	tf_start stats "$TRACED" "${opts[@]}"
}

# tapflow's drops of the last run (summary: the VMs' and the host's; with
# --no-libvirt all of them are on the traced interfaces), "null" without
# the tracer; it must have counted the VM's frames on vport.
tf_drops_counted() {
	jq -rse --arg st "$1" '
		([.[] | select(.type == "stats" and .final and .ifname == "vport")][0].rx_packets // 0)
			as $rx |
		[.[] | select(.type == "summary")][0] as $s |
		if $rx < 1000 or $s.map_full != 0 then error("not counted")
		elif $st == "nodrops" then (if $s.drops == null then "null" else error("drops on") end)
		elif $s.drops_hook == null then error("no drop tracer")
		else ($s.drops + ($s.host_drops // 0)) end' "$TF_OUT" ||
		die "tapflow ${STATE_NAME[$1]}: vport not counted, or drops not as expected (see $TF_OUT)"
}

# One block: both floods in one state, into BLOCK[state].
declare -A BLOCK
block() {
	local state=$1 r=$2 j0 k vals=() line vm_dropped=0 counted=null
	[ "$state" != off ] && tf_start_state "$state"
	# The other CPUs during the floods only: tapflow loading its programs
	# (a second of CPU, the verifier) would weigh in these short blocks.
	j0=$(other_cpu_jiffies)
	line=$(printf 'round %d %-16s' "$r" "${STATE_NAME[$state]}")
	for k in "${FLOODS[@]}"; do
		flood "$k"
		vals+=("$FLOOD_PPS" "$FLOOD_DROPPED" "$FLOOD_SENT")
		[ "$k" = vm ] && vm_dropped=$FLOOD_DROPPED
		line+=$(printf '  %s %4.0f kpps (dropped/sent %.4f)' "$k" "$(jq -n "$FLOOD_PPS / 1e3")" \
			"$(jq -n "$FLOOD_DROPPED / $FLOOD_SENT")")
	done
	BLOCK_BUSY[$state]=$(busy_since "$j0")
	if [ "$state" != off ]; then
		tf_stop
		counted=$(tf_drops_counted "$state") || exit 1
		vals+=("$TF_LAST_CPU_NS" "$TF_LAST_WALL_NS" "$TF_LAST_HWM_KIB" "$TF_LAST_RSS_KIB" "$counted")
		[ "$state" = drops ] && line+="; tapflow counted $counted of the VM flood's $vm_dropped drops"
	fi
	# Kept by keep_block(): "pps dropped sent (per flood) [cpu wall hwm rss counted]".
	BLOCK[$state]="${vals[*]}"
	log "$line; other CPUs ${BLOCK_BUSY[$state]}% busy"
}

# Per state and flood ("state:flood"): the kept rounds' figures.
declare -A R_PPS R_DROPPED R_SENT
DROPS_COUNTED=0 DROPS_RULE=0
keep_block() {
	local st=$1 v i=0 k
	read -r -a v <<<"${BLOCK[$st]}"
	for k in "${FLOODS[@]}"; do
		R_PPS[$st:$k]+=" ${v[i]}" R_DROPPED[$st:$k]+=" ${v[i + 1]}" R_SENT[$st:$k]+=" ${v[i + 2]}"
		[ "$st" = drops ] && [ "$k" = vm ] && DROPS_RULE=$((DROPS_RULE + v[i + 1]))
		i=$((i + 3))
	done
	[ "$st" = off ] && return 0
	TF_LAST_CPU_NS=${v[i]} TF_LAST_WALL_NS=${v[i + 1]}
	TF_LAST_HWM_KIB=${v[i + 2]} TF_LAST_RSS_KIB=${v[i + 3]}
	tf_account "$st"
	[ "$st" = drops ] && DROPS_COUNTED=$((DROPS_COUNTED + v[i + 4]))
	return 0
}

# In situ: `tapflow stats` (tracer on), one interval per flood under
# prog_cost --watch; tf_kfree_skb's runs and run time against the flood's
# drops (the rule's counter), into INTERVALS.
declare -a INTERVALS=()
insitu() {
	local r k out j0 busy
	log "in situ: $INSITU_ROUNDS round(s) of the floods (${FLOODS[*]}) for $SECS s each under" \
		"tapflow stats, BPF run-time statistics on"
	for ((r = 1; r <= INSITU_ROUNDS; r++)); do
		tf_start_state drops
		for k in $([ $((r % 2)) -eq 1 ] && echo other vm || echo vm other); do
			out=$WORK/insitu.$r.$k.json
			j0=$(other_cpu_jiffies)
			watch_start "$TF_PID" "$out"
			flood "$k"
			watch_stop
			busy=$(busy_since "$j0")
			INTERVALS+=("$(jq -c --arg flood "$k" --argjson r "$r" --argjson dropped "$FLOOD_DROPPED" \
				--argjson sent "$FLOOD_SENT" --argjson pps "$FLOOD_PPS" --argjson busy "$busy" '
				(.progs | map(select(.name == "tf_kfree_skb"))[0]) as $t |
				{flood: $flood, round: $r, seconds, flood_sent: $sent, flood_pps: $pps,
				 flood_dropped: $dropped, other_cpus_busy_percent: $busy,
				 kfree_skb: (if $t then {run_cnt: $t.run_cnt, run_time_ns: $t.run_time_ns,
					ns_per_run: $t.ns_per_run} else null end),
				 tc: (.progs | map(select(.prog_type == "sched_cls" and .run_cnt > 0) |
					{name, run_cnt, run_time_ns, ns_per_run}))}' "$out")") ||
				die "cannot read prog_cost's report ($out)"
			jq -e '.kfree_skb != null' <<<"${INTERVALS[-1]}" >/dev/null ||
				die "no tf_kfree_skb among tapflow's programs (see $out)"
			log "$(jq -r '"in situ, round \(.round), \(.flood) flood: \(.flood_dropped) drops by the rule, " +
				"tf_kfree_skb \(.kfree_skb.run_cnt) runs, \(.kfree_skb.ns_per_run * 10 | round / 10) ns/run" +
				(if (.tc | length) > 0 then "; TC: " + (.tc | map("\(.name) \(.ns_per_run | round) ns x \(.run_cnt)") |
					join(", ")) else "" end) + "; other CPUs \(.other_cpus_busy_percent)% busy"' \
				<<<"${INTERVALS[-1]}")"
		done
		tf_stop
		tf_drops_counted drops >/dev/null
	done
}

# Switching: the VM's flood for SWITCH_SECS under `tapflow stats
# --no-drops`, with drop_toggle switching the tracer every SWITCH_MS; into
# SWITCHING (JSON). The ratios: switched_ratios (lib.sh).
SWITCHING=null
switching() {
	local trace=$WORK/switch.trace sw=$WORK/switch.out d0 d1 ratios
	log "switching: the tracer on and off every $SWITCH_MS ms for $SWITCH_SECS s of the VM's" \
		"flood, under tapflow stats --no-drops"
	tf_start_state nodrops
	d0=$(rule_count br0) || exit 1
	bg ip netns exec "$NS_RT" "$DROP_TOGGLE" vport br0 up0 --period-ms "$SWITCH_MS" \
		--seconds $((SWITCH_SECS + 1)) >"$sw" 2>"$sw.err"
	local tpid=$BG_PID
	sleep 0.3
	bg ip netns exec "$NS_VM" "$FLOWGEN" send eth0 "${GW_MAC[vm]}" "$VM_IP" "$NET_IP" \
		"$DROP_PORT" 1 0 --seconds "$SWITCH_SECS" --trace "$trace" "${GEN_CPU[@]}" \
		>"$WORK/switch.flood.json" 2>"$WORK/switch.flood.err"
	bg_wait "$BG_PID" || die "flowgen send failed: $(head -c 300 "$WORK/switch.flood.err")"
	bg_wait "$tpid" || die "drop_toggle failed: $(head -c 300 "$sw.err")"
	d1=$(rule_count br0) || exit 1
	tf_stop
	tf_drops_counted nodrops >/dev/null
	ratios=$(switched_ratios "$sw" "$trace") || die "cannot read the switching traces"
	SWITCHING=$(jq -nc --argjson r "$ratios" --argjson ms "$SWITCH_MS" --argjson s "$SWITCH_SECS" \
		--argjson dropped "$((d1 - d0))" --argjson tg "$(tail -n1 "$sw")" \
		--slurpfile fl "$WORK/switch.flood.json" "$JQ_SWITCHED"'
		{seconds: $s, period_ms: $ms, state: "tapflow stats --no-drops, drop_toggle switching the tracer"}
		+ switched($r) +
		{flood: $fl[0], dropped_by_rule: $dropped, drops_counted_by_tracer: $tg.drops,
		 tracer_cache: $tg.cache}') ||
		die "cannot build the switching result"
	jq -e '.on_periods >= 3 and .drops_counted_by_tracer > 0' <<<"$SWITCHING" >/dev/null ||
		die "switching: too few periods measured, or the tracer counted nothing (see $sw)"
	log "$(jq -r '"switching: \(.on_periods) on periods, stats/--no-drops \(.ratio * 1000 | round / 1000) " +
		"(mean \(.ratio_mean * 1000 | round / 1000), \(.ratio_min * 1000 | round / 1000)-\(.ratio_max * 1000 | round / 1000)); " +
		"the tracer counted \(.drops_counted_by_tracer) of the flood'"'"'s \(.dropped_by_rule) drops while on"' <<<"$SWITCHING")"
}

# The in-situ intervals summed up per flood (JSON; null without them).
insitu_json() {
	[ ${#INTERVALS[@]} -eq 0 ] && { echo null; return; }
	printf '%s\n' "${INTERVALS[@]}" | jq -sc --argjson rounds "$INSITU_ROUNDS" "$JQ_MEDIAN"'
		. as $iv |
		def sum(f): map(f) | add;
		def per($k): $iv | map(select(.flood == $k)) |
			{ns_per_run: (sum(.kfree_skb.run_time_ns) / sum(.kfree_skb.run_cnt)),
			 ns_per_run_rounds: map(.kfree_skb.ns_per_run),
			 run_cnt: sum(.kfree_skb.run_cnt), flood_drops: sum(.flood_dropped),
			 # The tracer runs on every drop of the host: the flood is most of them.
			 flood_share_of_runs: (sum(.flood_dropped) / sum(.kfree_skb.run_cnt)),
			 kfree_skb_ns_per_flood_packet: (sum(.kfree_skb.run_time_ns) / sum(.flood_dropped)),
			 tc_ns_per_flood_packet: (sum(.tc | map(.run_time_ns) | add // 0) / sum(.flood_dropped))};
		{rounds: $rounds, program: "tf_kfree_skb (tp_btf/kfree_skb)",
		 other: (per("other") + {what: "drops of an interface tapflow does not trace (oport)"}),
		 vm: (per("vm") + {what: "drops of traced interfaces (the VM via vport, br0)"}),
		 intervals: $iv}'
}

main() {
	local r t0=$SECONDS stats0 stats1 k figs='{}' tf='{}' st
	stats0=$(sysctl -n kernel.bpf_stats_enabled 2>/dev/null || echo null)
	setup
	log "topology: $NS_VM --veth-- [$NS_RT: vport, br0 | oport | up0] --veth-- $NS_NET," \
		"$NS_OT --veth-- oport; FORWARD drops UDP to $NET_IP:$DROP_PORT; tapflow" \
		"--iface ${TRACED//,/ --iface } --uplink up0; states: ${STATES[*]};" \
		"$ROUNDS rounds of ${SECS} s per flood"
	for ((r = 1; r <= ROUNDS; r++)); do
		abba_round "$r"
	done
	[ "$INSITU" -eq 1 ] && insitu
	[ "$SWITCH_SECS" -gt 0 ] && switching
	stats1=$(sysctl -n kernel.bpf_stats_enabled 2>/dev/null || echo null)

	for k in "${FLOODS[@]}"; do
		# shellcheck disable=SC2086 # word lists of numbers
		figs=$(jq -c --arg k "$k" --argjson off "$(jarr ${R_PPS[off:$k]})" \
			--argjson nodrops "$(jarr ${R_PPS[nodrops:$k]})" --argjson drops "$(jarr ${R_PPS[drops:$k]})" \
			--argjson dropped "$(jarr ${R_DROPPED[off:$k]} ${R_DROPPED[nodrops:$k]} ${R_DROPPED[drops:$k]})" \
			--argjson sent "$(jarr ${R_SENT[off:$k]} ${R_SENT[nodrops:$k]} ${R_SENT[drops:$k]})" \
			"$JQ_FIG"'
			"frames/s sent (all dropped in FORWARD)" as $u |
			. + {($k): {unit: $u, off: $off, nodrops: $nodrops, drops: $drops,
				    drops_vs_nodrops: fig($nodrops; $drops; $u),
				    drops_vs_off: fig($off; $drops; $u),
				    nodrops_vs_off: fig($off; $nodrops; $u),
				    dropped_of_sent: (($dropped | add) / ($sent | add))}}' <<<"$figs") ||
			die "cannot build the result of the $k flood"
	done
	for st in nodrops drops; do
		tf=$(jq -c --arg st "$st" --argjson cpu "${TF_CPU_NS[$st]}" --argjson wall "${TF_WALL_NS[$st]}" \
			--argjson hwm "${TF_HWM_KIB[$st]}" --argjson rss "${TF_RSS_KIB[$st]}" '
			. + {($st): {cpu_ms: ($cpu / 1e6), wall_s: ($wall / 1e9),
				     cpu_percent_of_one_core: (100 * $cpu / $wall),
				     max_rss_kib: $hwm, end_rss_kib: $rss}}' <<<"$tf")
	done

	RESULT=$(jq -n \
		--argjson secs "$SECS" --argjson rounds "$ROUNDS" \
		--arg affinity "$AFFINITY" --arg mode "$TF_MODE" --arg kernel "$(uname -r)" \
		--arg traced "$TRACED" --argjson figs "$figs" --argjson tf "$tf" \
		--argjson counted "$DROPS_COUNTED" --argjson rule "$DROPS_RULE" \
		--argjson insitu "$(insitu_json)" --argjson switching "$SWITCHING" \
		--argjson busy "$(busy_json)" \
		--argjson s0 "$stats0" --argjson s1 "$stats1" \
		--arg vm "$VM_IP" --arg ot "$OT_IP" --arg net "$NET_IP" --argjson port "$DROP_PORT" \
		--argjson elapsed "$((SECONDS - t0))" '
		{type: "drops", kernel: $kernel, seconds: $secs, rounds: $rounds,
		 order: "ABBA (off,nodrops,drops / drops,nodrops,off / ...)", attach_mode: $mode,
		 sender: {program: "flowgen send (AF_PACKET, qdisc bypass, sendmmsg of 256), one flow",
			  cpu: (if $affinity == "" then null else ($affinity | split(",")[0] | tonumber) end)},
		 frame_bytes: 64,
		 topology: {vm: $vm, other: $ot, internet: $net,
			    dropped: "FORWARD -p udp -d \($net) --dport \($port) -j DROP (-i br0, -i oport)",
			    tapflow: ([$traced | split(",")[] | "--iface \(.)"] + ["--uplink up0"] | join(" "))},
		 states: {off: "nothing attached", nodrops: "tapflow stats --no-drops",
			  drops: "tapflow stats (drop tracer on)"},
		 floods: {vm: "from the VM namespace via vport and br0 (traced): the tracer aggregates each drop",
			  other: "from the other namespace via oport (not traced): the tracer leaves at its first test"},
		 target_ratio_min: 0.95,
		 figures: $figs, tapflow: $tf,
		 tracer_check: {vm_flood_drops_by_rule: $rule, counted_by_tapflow: $counted,
				missing: ($rule - $counted)},
		 insitu: $insitu, switching: $switching,
		 bpf_stats_enabled_sysctl: {before: $s0, after: $s1}}
		+ $busy + {elapsed_s: $elapsed}') || die "cannot build the result"

	if [ "$JSON" -eq 1 ]; then
		echo "$RESULT"
		return
	fi
	summary
}

# The human summary of RESULT.
summary() {
	local k label
	echo "drops: 64 B UDP floods dropped in FORWARD (flowgen on CPU $(q '.sender.cpu // "any"'));" \
		"tapflow $(q .topology.tapflow) ($(q .attach_mode))"
	echo "median of $ROUNDS ABBA rounds of $SECS s; ratio = median of per-round ratios"
	printf '%-30s %9s %9s %9s %9s %9s  %s\n' "flood (kpps sent)" off --no-drops stats \
		stats/off "/--no-drops" "(rounds: stats/--no-drops min-max)"
	for k in "${FLOODS[@]}"; do
		case $k in
		vm) label="VM via vport+br0 (traced)" ;;
		other) label="other via oport (untraced)" ;;
		esac
		printf '%-30s %9.1f %9.1f %9.1f %9.3f %11.3f  (%.3f-%.3f)\n' "$label" \
			"$(q ".figures.$k.drops_vs_off.off_median / 1e3")" \
			"$(q ".figures.$k.drops_vs_nodrops.off_median / 1e3")" \
			"$(q ".figures.$k.drops_vs_off.on_median / 1e3")" \
			"$(q ".figures.$k.drops_vs_off.ratio")" "$(q ".figures.$k.drops_vs_nodrops.ratio")" \
			"$(q ".figures.$k.drops_vs_nodrops.ratio_min")" "$(q ".figures.$k.drops_vs_nodrops.ratio_max")"
	done
	echo "target: stats/--no-drops >= $(q .target_ratio_min) (the VM's flood)"
	q '"dropped by the rule / sent: vm \(.figures.vm.dropped_of_sent * 10000 | round / 10000), other \(.figures.other.dropped_of_sent * 10000 | round / 10000)"'
	q '.tracer_check | "tapflow stats counted \(.counted_by_tapflow) of the VM floods'"'"' \(.vm_flood_drops_by_rule) drops (\(.missing) missing)"'
	q '.tapflow | to_entries | map("\(if .key == "drops" then "stats" else "stats --no-drops" end): " +
		"tapflow \(.value.cpu_ms | round) ms CPU in \(.value.wall_s | round) s " +
		"(\(.value.cpu_percent_of_one_core * 100 | round / 100)% of a core), " +
		"RSS max \(.value.max_rss_kib) KiB, \(.value.end_rss_kib) KiB at the end") | .[]'
	if [ "$(q .insitu)" != null ]; then
		echo "tf_kfree_skb in situ (BPF run-time statistics on, $(q .insitu.rounds) round(s) of $SECS s per flood):"
		q '.insitu | ["other", "vm"][] as $k | .[$k] |
			"  \(if $k == "vm" then "traced (VM)   " else "untraced (other)" end): " +
			"\(.ns_per_run * 10 | round / 10) ns/run over \(.run_cnt) runs " +
			"(rounds \(.ns_per_run_rounds | map(. * 10 | round / 10) | join(", "))); " +
			"the flood'"'"'s drops \(.flood_drops) = \(.flood_share_of_runs * 1000 | round / 10)% of the runs; " +
			"per flood packet: kfree_skb \(.kfree_skb_ns_per_flood_packet * 10 | round / 10) ns, " +
			"TC programs \(.tc_ns_per_flood_packet * 10 | round / 10) ns"'
	fi
	if [ "$(q .switching)" != null ]; then
		q '.switching | "switching the tracer every \(.period_ms) ms for \(.seconds) s of the VM'"'"'s flood: " +
			"stats/--no-drops \(.ratio * 1000 | round / 1000) (median of \(.on_periods) on periods, each against " +
			"the off periods around it; mean \(.ratio_mean * 1000 | round / 1000), range " +
			"\(.ratio_min * 1000 | round / 1000)-\(.ratio_max * 1000 | round / 1000))"'
	fi
	printf 'other CPUs (not running the flood) busy during the blocks: median %s%%, max %s%%; %s round(s) discarded and run again\n' \
		"$(q .other_cpus_busy_percent.median)" "$(q .other_cpus_busy_percent.max)" \
		"$(q '.discarded_rounds | length')"
	printf 'kernel.bpf_stats_enabled: %s before, %s after (never written: prog_cost holds a BPF_ENABLE_STATS fd)\n' \
		"$(q .bpf_stats_enabled_sysctl.before)" "$(q .bpf_stats_enabled_sysctl.after)"
}

main
