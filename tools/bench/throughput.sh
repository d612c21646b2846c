#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# throughput.sh: what tapflow costs the traffic it counts.
#
# Two namespaces, A and B, each hang on a veth whose other end is a port of
# a bridge in a third namespace BR: A -> veth -> bridge -> veth -> B, the path
# of a VM's frames through its tap and bridge. iperf3 measures TCP throughput
# both ways and the packet rate of minimum-size UDP frames, with tapflow
# attached to the bridge and both bridge ports and without ("off"): `stats`
# (the counters-only programs), `flows` (the flow programs) and `tcp` (`flows
# --tcp`: the flow programs with the TCP analysis), each a state of its own
# (--cmd). Both iperf3 ends share CPU 0, so the figures measure the
# CPU cost of the path. States alternate in ABBA order (off stats flows,
# flows stats off, ...) so a drift of the machine hits all alike; each figure
# is the median of the rounds, each ratio the median of the per-round on/off
# ratios. A round during which other work kept the free CPUs busy is run
# again. During the "on" blocks tapflow's own CPU time and memory are read
# from /proc. A last, separate "on" interval per command measures the
# programs' ns per run in situ with the kernel's BPF run-time statistics
# (prog_cost --watch), which cost time themselves and so never overlap the
# throughput rounds. Then the flow scale part (with `flows` in --cmd):
# flowgen offers many distinct flows (100 000 by default) from A to B,
# once into a flow map that holds them all (memory, tapflow's RSS) and in
# ABBA rounds into one of a quarter of their number (--scale-max-flows:
# packet rate and TCP throughput vs off with the map full), and checks that
# tapflow accounts for every packet that crossed the port.
#
#   tools/bench/throughput.sh [-t SEC] [-r ROUNDS] [--udp-len BYTES]
#                             [--cmd stats,flows,tcp] [--affinity C,S]
#                             [--attach auto|tcx|clsact] [--busy-max PCT]
#                             [--max-redo N] [--no-insitu] [--no-scale]
#                             [--scale-flows N] [--scale-max-flows M]
#                             [--scale-passes K] [--scale-rounds R] [--json]
#
# Needs root, iperf3, jq, iproute2, bpftool and a built .output/tapflow
# (make) and .output/bench/{prog_cost,flowgen} (make -C tools/bench).
# Everything it creates (namespaces, processes) is removed on exit, also on
# failure or Ctrl-C.
set -uo pipefail

PROG=throughput.sh
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$HERE/lib.sh"
ROOT=$(cd "$HERE/../.." && pwd)
TAPFLOW=${TAPFLOW:-$ROOT/.output/tapflow}
PROG_COST=${PROG_COST:-$ROOT/.output/bench/prog_cost}
FLOWGEN=${FLOWGEN:-$ROOT/.output/bench/flowgen}

# Defaults of -t, --udp-len, --attach, --affinity, --busy-max, --max-redo:
# lib.sh (3 s, 64-byte frames, both iperf3 ends on CPU 0, ...).
ROUNDS=8
INSITU=1
# tapflow commands measured against "off", each its own state.
CMDS=stats,flows,tcp
# Flow scale: FLOWS distinct flows, PASSES frames each per block; the full
# map case uses a map of MAX_FLOWS entries (4 x smaller: most packets find
# it full), in SCALE_ROUNDS ABBA rounds; the fit case a map of FIT entries.
SCALE=1
SCALE_FLOWS=100000
SCALE_MAX_FLOWS=25000
SCALE_PASSES=3
SCALE_ROUNDS=8

# Options of throughput.sh's own (the others: lib.sh, common_opt).
own_opt() {
	case $1 in
	--no-insitu) INSITU=0 ;;
	--no-scale) SCALE=0 ;;
	--cmd) CMDS=${2:-}; return 2 ;;
	--scale-flows) SCALE_FLOWS=${2:-}; return 2 ;;
	--scale-max-flows) SCALE_MAX_FLOWS=${2:-}; return 2 ;;
	--scale-passes) SCALE_PASSES=${2:-}; return 2 ;;
	--scale-rounds) SCALE_ROUNDS=${2:-}; return 2 ;;
	*) return 0 ;;
	esac
	return 1
}
parse_opts "$@"
check_common_opts
IFS=, read -r -a CMD_LIST <<<"$CMDS"
[ ${#CMD_LIST[@]} -ge 1 ] || { echo "throughput.sh: --cmd needs stats, flows and/or tcp" >&2; exit 2; }
for c in "${CMD_LIST[@]}"; do
	case $c in stats|flows|tcp) ;; *) echo "throughput.sh: --cmd: stats, flows or tcp, not '$c'" >&2; exit 2 ;; esac
done
[[ " ${CMD_LIST[*]} " == *" flows "* ]] || SCALE=0
for v in SCALE_FLOWS SCALE_MAX_FLOWS SCALE_PASSES SCALE_ROUNDS; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "throughput.sh: --${v,,} needs a count" >&2; exit 2; }
done
# The map that holds every flow: the next power of two with room to spare.
SCALE_FIT=65536
while [ "$SCALE_FIT" -lt $((SCALE_FLOWS + SCALE_FLOWS / 4)) ]; do SCALE_FIT=$((SCALE_FIT * 2)); done

need_tools iperf3 jq ip bpftool
if [ "$INSITU" -eq 1 ] && [ ! -x "$PROG_COST" ]; then
	die "$PROG_COST not built (run make -C tools/bench, or pass --no-insitu)"
fi
if [ "$SCALE" -eq 1 ] && [ ! -x "$FLOWGEN" ]; then
	die "$FLOWGEN not built (run make -C tools/bench, or pass --no-scale)"
fi

# Everything it creates is removed at exit (lib.sh: bench_init, cleanup).
bench_init tfb
NS_A=$ID-a NS_B=$ID-b NS_BR=$ID-br
IP_A=198.18.0.1 IP_B=198.18.0.2	# RFC 2544 benchmarking range, inside our namespaces only
PORT=5201
GEN_PORT=9		# flowgen's flows go to B's discard port
GEN_SRC=198.18.0.16	# and come from 198.18.0.16, .17, ... (64 512 ports each)
# iperf3 runs from A to B; tapflow runs in BR.
IPERF_NS=$NS_A IPERF_DST=$IP_B TF_NS=$NS_BR

# ---- topology ----

setup() {
	local ns
	for ns in "$NS_A" "$NS_B" "$NS_BR"; do ns_add "$ns"; done
	ip -n "$NS_BR" link add br0 type bridge || die "cannot create the bridge"
	ip -n "$NS_A" link add eth0 type veth peer name pa netns "$NS_BR" || die "veth a"
	ip -n "$NS_B" link add eth0 type veth peer name pb netns "$NS_BR" || die "veth b"
	ip -n "$NS_BR" link set pa master br0 && ip -n "$NS_BR" link set pb master br0 ||
		die "cannot enslave the veths"
	ip -n "$NS_BR" link set br0 up && ip -n "$NS_BR" link set pa up &&
		ip -n "$NS_BR" link set pb up || die "cannot bring the bridge up"
	ip -n "$NS_A" addr add "$IP_A/24" dev eth0 && ip -n "$NS_A" link set eth0 up &&
		ip -n "$NS_B" addr add "$IP_B/24" dev eth0 && ip -n "$NS_B" link set eth0 up ||
		die "cannot address the veths"
	wait_ports_up "$NS_BR" 2
	iperf_server "$NS_B" "$IP_B"
}

# ---- measurements ----

# The hooks must really have counted the traffic on pa and pb, and lost
# nothing (flows: no full flow map, no parse error either).
tf_check_counted() {
	if [ "$TF_CMD" = stats ]; then
		jq -se '
			([.[] | select(.type == "stats" and .final and (.ifname == "pa" or .ifname == "pb"))
			  | .rx_packets + .tx_packets] | length == 2 and min > 1000) and
			([.[] | select(.type == "summary")][0].map_full == 0)' "$TF_OUT" >/dev/null
	else
		jq -se '
			([.[] | select(.type == "flow" and .final and (.ifname == "pa" or .ifname == "pb"))]
			  | group_by(.ifname) | map(map(.rx_packets + .tx_packets) | add)
			  | length == 2 and min > 1000) and
			([.[] | select(.type == "summary")][0]
			  | .map_full == 0 and .if_map_full == 0 and .parse_errors == 0)' "$TF_OUT" >/dev/null
	fi || die "tapflow $TF_CMD did not count the traffic on pa/pb (see $TF_OUT)"
}

# The kernel's view of the running tapflow's flow map: bpftool's entry of
# the map named "flows" among the maps tapflow holds open, and the raw size
# of its keys and values.
flow_map_info() {
	local ids=() f id
	for f in /proc/"$TF_PID"/fdinfo/*; do
		id=$(awk '/^map_id:/ { print $2 }' "$f" 2>/dev/null)
		[ -n "$id" ] && ids+=("$id")
	done
	bpftool -j map show | jq -ce --argjson ids "$(jarr "${ids[@]}")" '
		[.[] | select(.name == "flows" and (.id as $i | $ids | index($i) != null))][0]
		| {id, type, max_entries, bytes_key, bytes_value, bytes_memlock,
		   raw_bytes: (.max_entries * (.bytes_key + .bytes_value)),
		   memlock_per_entry: (.bytes_memlock / .max_entries)}'
}

# Per state (off, stats, flows): the kept rounds' figures, space-separated.
declare -A R_AB R_BA R_UDP R_SENT
STATES=(off "${CMD_LIST[@]}")
FLOW_MAP=null

# tapflow in state STATE on IFACES: the tcp state is `flows --tcp`.
tf_start_state() {
	if [ "$1" = tcp ]; then
		tf_start flows "$2" --tcp
	else
		tf_start "$1" "$2"
	fi
}

# One block: the three measurements in one state, into BLOCK[state].
declare -A BLOCK
block() {
	local state=$1 r=$2 ab ba j0 busy
	j0=$(other_cpu_jiffies)
	if [ "$state" != off ]; then
		tf_start_state "$state" br0,pa,pb
		# The flow map at default settings, as the kernel accounts it.
		if [ "$state" = flows ] && [ "$FLOW_MAP" = null ]; then
			FLOW_MAP=$(flow_map_info) || die "cannot find tapflow's flows map with bpftool"
		fi
	fi
	tcp_bps
	ab=$BPS
	tcp_bps -R
	ba=$BPS
	udp_pps
	busy=$(busy_since "$j0")
	if [ "$state" != off ]; then
		tf_stop
		tf_check_counted
	fi
	# Kept by keep_block(): state -> "ab ba pps sent cpu_ns wall_ns hwm rss".
	BLOCK[$state]="$ab $ba $PPS $SENT_PPS"
	BLOCK_BUSY[$state]=$busy
	[ "$state" != off ] && BLOCK[$state]+=" $TF_LAST_CPU_NS $TF_LAST_WALL_NS $TF_LAST_HWM_KIB $TF_LAST_RSS_KIB"
	log "$(printf 'round %d %-5s  TCP A->B %6.2f Gbit/s  B->A %6.2f Gbit/s  UDP %d B frames: %4.0f kpps delivered (%.0f sent, %.1f%% lost); other CPUs %s%% busy' \
		"$r" "$state" "$(jq -n "$ab / 1e9")" "$(jq -n "$ba / 1e9")" $((UDP_LEN + 46)) \
		"$(jq -n "$PPS / 1000")" "$(jq -n "$SENT_PPS / 1000")" "$LOSS" "$busy")"
}

# In situ: ns per run of the attached programs of CMD over one UDP
# interval (INSITU_BY), or with TRAFFIC tcp over one TCP stream
# (INSITU_TCP_BY: what the TCP analysis adds is seen on TCP only, flows
# and tcp measured alike).
declare -A INSITU_BY INSITU_TCP_BY
insitu() {
	local cmd=$1 traffic=${2:-udp} wout=$WORK/insitu.$1.${2:-udp}.json
	tf_start_state "$cmd" br0,pa,pb
	watch_start "$TF_PID" "$wout"
	if [ "$traffic" = tcp ]; then tcp_bps; else udp_pps; fi
	watch_stop
	# Not part of the CPU/RSS figures: tf_account is not called.
	tf_stop
	local fig
	fig=$(jq -c '.progs | map(select(.run_cnt > 0 and
		(.name == "tf_ingress" or .name == "tf_egress" or
		 .name == "tf_tap_ingress" or .name == "tf_tap_egress")))' "$wout")
	if [ "$traffic" = tcp ]; then INSITU_TCP_BY[$cmd]=$fig; else INSITU_BY[$cmd]=$fig; fi
	log "in situ, $cmd, $traffic (BPF stats on): $(jq -r 'map("\(.name) \(.ns_per_run) ns/run x \(.run_cnt)") | join(", ")' <<<"$fig")"
}

# The figures of a kept block (abba_round, lib.sh: rounds run in ABBA
# order, off stats flows / flows stats off, and a round disturbed by other
# work is run again).
keep_block() {
	local st=$1 ab ba pps sent cpu wall hwm rss
	read -r ab ba pps sent cpu wall hwm rss <<<"${BLOCK[$st]}"
	R_AB[$st]+=" $ab" R_BA[$st]+=" $ba" R_UDP[$st]+=" $pps" R_SENT[$st]+=" $sent"
	if [ "$st" != off ]; then
		TF_LAST_CPU_NS=$cpu TF_LAST_WALL_NS=$wall TF_LAST_HWM_KIB=$hwm TF_LAST_RSS_KIB=$rss
		tf_account "$st"
	fi
}

# ---- flow scale: many distinct flows (flowgen) ----

scale_setup() {
	# The generator's sources are 198.18.0.16, ...
	pin_neighbours
	GEN_CPU_S='' GEN_CPU_R=''
	if [ -n "$AFFINITY" ]; then
		GEN_CPU_S="--cpu ${AFFINITY%,*}" GEN_CPU_R="--cpu ${AFFINITY#*,}"
	fi
}

N_GEN=0
# gen_block STATE MAX_FLOWS TCP: flowgen's FLOWS x PASSES frames A -> B (and
# with TCP=1 then TCP A -> B), with `tapflow flows` on pa (a map of MAX_FLOWS
# entries) when STATE is on. Result (JSON) in GEN_RESULT.
gen_block() {
	local state=$1 maxf=$2 tcp=$3 n=$((++N_GEN)) j0 busy rpid map=null acct=null
	local p0rx p0tx p1rx p1tx a0tx a0drop a1tx a1drop gen recv tcp_bps=null tf=null
	j0=$(other_cpu_jiffies)
	read -r p0rx p0tx _ < <(link_counts "$NS_BR" pa)
	if [ "$state" = on ]; then
		tf_start flows pa --max-flows "$maxf" --top 10
		map=$(flow_map_info) || die "cannot find tapflow's flows map with bpftool"
	fi
	read -r _ a0tx a0drop < <(link_counts "$NS_A" eth0)
	# shellcheck disable=SC2086 # GEN_CPU_*: option and value, or nothing
	bg ip netns exec "$NS_B" "$FLOWGEN" recv "$IP_B" "$GEN_PORT" $GEN_CPU_R \
		>"$WORK/recv.$n.json" 2>"$WORK/recv.$n.err"
	rpid=$BG_PID
	for _ in $(seq 50); do
		grep -q receiving "$WORK/recv.$n.err" && break
		kill -0 "$rpid" 2>/dev/null || die "flowgen recv failed: $(cat "$WORK/recv.$n.err")"
		sleep 0.1
	done
	# shellcheck disable=SC2086
	bg ip netns exec "$NS_A" "$FLOWGEN" send eth0 "$MAC_B" "$GEN_SRC" "$IP_B" "$GEN_PORT" \
		"$SCALE_FLOWS" "$SCALE_PASSES" $GEN_CPU_S >"$WORK/send.$n.json" 2>"$WORK/send.$n.err"
	bg_wait "$BG_PID" || die "flowgen send failed: $(cat "$WORK/send.$n.err")"
	read -r _ a1tx a1drop < <(link_counts "$NS_A" eth0)
	kill -INT "$rpid"
	bg_wait "$rpid" || die "flowgen recv failed: $(cat "$WORK/recv.$n.err")"
	gen=$(cat "$WORK/send.$n.json") recv=$(jq '.received' "$WORK/recv.$n.json") ||
		die "no flowgen results"
	if [ "$tcp" = 1 ]; then
		tcp_bps
		tcp_bps=$BPS
	elif [ "$state" = on ]; then
		# At least one poll of the whole map after the last frame: the
		# resident memory is then that of all the flows in tapflow's table.
		sleep 2.2
	fi
	busy=$(busy_since "$j0")
	if [ "$state" = on ]; then
		tf_stop
		tf=$(jq -nc --argjson cpu "$TF_LAST_CPU_NS" --argjson wall "$TF_LAST_WALL_NS" \
			--argjson hwm "$TF_LAST_HWM_KIB" --argjson rss "$TF_LAST_RSS_KIB" \
			'{cpu_ms: ($cpu / 1e6), wall_s: ($wall / 1e9),
			  cpu_percent_of_one_core: (100 * $cpu / $wall), max_rss_kib: $hwm, end_rss_kib: $rss}')
	fi
	read -r p1rx p1tx _ < <(link_counts "$NS_BR" pa)
	if [ "$state" = on ]; then
		# Every packet that crossed pa while tapflow was attached (nothing
		# else runs meanwhile: no ARP, no IPv6) must be in pa's rows of the
		# final report: flows, overflow, unparsed, others (--top), expired.
		acct=$(jq -sc --argjson rx $((p1rx - p0rx)) --argjson tx $((p1tx - p0tx)) '
			[.[] | select(.type == "flow" and .final and .ifname == "pa")] as $rows |
			[.[] | select(.type == "summary")][0] as $s |
			def psum: map(.rx_packets + .tx_packets) | add // 0;
			{iface_rx_packets: $rx, iface_tx_packets: $tx,
			 tapflow_rx_packets: ($rows | map(.rx_packets) | add // 0),
			 tapflow_tx_packets: ($rows | map(.tx_packets) | add // 0),
			 rows: ($rows | group_by(.aggregate // "flow") |
				map({key: (.[0].aggregate // "flow"),
				     value: {packets: psum, flows: (map(.flows // 1) | add)}}) |
				from_entries),
			 map_full: $s.map_full, if_map_full: $s.if_map_full,
			 parse_errors: $s.parse_errors, expire_races: $s.expire_races,
			 max_flows: $s.max_flows, flows_seen: $s.flows_seen,
			 flows_expired: $s.flows_expired} |
			.exact = (.tapflow_rx_packets == .iface_rx_packets and
				  .tapflow_tx_packets == .iface_tx_packets and .if_map_full == 0)' \
			"$TF_OUT") || die "cannot read tapflow's final report ($TF_OUT)"
	fi
	GEN_RESULT=$(jq -nc --arg state "$state" --argjson gen "$gen" --argjson recv "$recv" \
		--argjson a_tx $((a1tx - a0tx)) --argjson a_drop $((a1drop - a0drop)) \
		--argjson tcp "$tcp_bps" --argjson map "$map" --argjson acct "$acct" \
		--argjson tf "$tf" --argjson busy "$busy" --argjson maxf "$maxf" '
		{state: $state, max_flows: (if $state == "on" then $maxf else null end),
		 flows: $gen.flows, passes: $gen.passes, sent: $gen.sent, seconds: $gen.seconds,
		 sent_pps: $gen.pps, received: $recv, delivered_pps: ($recv / $gen.seconds),
		 lost_percent: (100 * ($gen.sent - $recv) / $gen.sent),
		 a_eth0_tx_packets: $a_tx, a_eth0_tx_dropped: $a_drop,
		 generator_exact: ($a_tx == $gen.sent and $a_drop == 0),
		 tcp_a_to_b_bps: $tcp, flow_map: $map, accounting: $acct, tapflow: $tf,
		 other_cpus_busy_percent: $busy}')
	log "$(jq -r '"scale \(.state)\(if .max_flows then " (map \(.max_flows))" else "" end): " +
		"\(.flows) flows x \(.passes): \(.sent) frames in \(.seconds * 1000 | round) ms, " +
		"\(.delivered_pps / 1000 | round) kpps delivered (\(.sent_pps / 1000 | round) sent)" +
		(if .tcp_a_to_b_bps then ", TCP A->B \(.tcp_a_to_b_bps / 1e7 | round / 100) Gbit/s" else "" end) +
		(if .accounting then "; tapflow pa: rx \(.accounting.tapflow_rx_packets)/\(.accounting.iface_rx_packets)" +
			" tx \(.accounting.tapflow_tx_packets)/\(.accounting.iface_tx_packets), overflow " +
			"\(.accounting.rows.overflow.packets // 0), flows seen \(.accounting.flows_seen), " +
			"RSS \(.tapflow.end_rss_kib) KiB, exact: \(.accounting.exact)" else "" end) +
		"; other CPUs \(.other_cpus_busy_percent)% busy"' <<<"$GEN_RESULT")"
}

SCALE_JSON=null
scale() {
	local r fit fit_off blocks=() st
	scale_setup
	log "flow scale: $SCALE_FLOWS flows x $SCALE_PASSES, map of $SCALE_FIT (all fit), then" \
		"$SCALE_ROUNDS ABBA rounds with a map of $SCALE_MAX_FLOWS vs off"
	# First without tapflow (it also warms up: the bridge learns, the slabs
	# settle), then into a map that holds every flow: one pair, inserts.
	gen_block off 0 0
	fit_off=$GEN_RESULT
	gen_block on "$SCALE_FIT" 0
	fit=$GEN_RESULT
	for ((r = 1; r <= SCALE_ROUNDS; r++)); do
		for st in $([ $((r % 2)) -eq 1 ] && echo off on || echo on off); do
			gen_block "$st" "$SCALE_MAX_FLOWS" 1
			blocks+=("$GEN_RESULT")
		done
	done
	SCALE_JSON=$(printf '%s\n' "${blocks[@]}" | jq -sc --argjson fit "$fit" --argjson fit_off "$fit_off" \
		--argjson maxf "$SCALE_MAX_FLOWS" --argjson flows "$SCALE_FLOWS" "$JQ_MEDIAN"'
		# Blocks come in pairs of one round (off,on / on,off).
		[range(0; length; 2) as $i | .[$i:$i + 2] |
		 {off: map(select(.state == "off"))[0], on: map(select(.state == "on"))[0]}] as $rounds |
		def fig(f): ($rounds | map((.on | f) / (.off | f))) as $r |
			{off_median: ($rounds | map(.off | f) | median),
			 on_median: ($rounds | map(.on | f) | median),
			 ratio: ($r | median), ratios: $r, ratio_min: ($r | min), ratio_max: ($r | max)};
		{flows: $flows, fit_off: $fit_off, fit: $fit,
		 full: {max_flows: $maxf, times_map: ($flows / $maxf), blocks: .,
			delivered_pps: fig(.delivered_pps), sent_pps: fig(.sent_pps),
			tcp_a_to_b: fig(.tcp_a_to_b_bps),
			accounting_exact: (map(select(.state == "on") | .accounting.exact) | all),
			generator_exact: (map(.generator_exact) | all)}}') ||
		die "cannot build the flow scale result"
}

main() {
	local r t0=$SECONDS c
	setup
	log "topology: $NS_A --veth-- [$NS_BR: pa, br0, pb] --veth-- $NS_B; states: ${STATES[*]};" \
		"$ROUNDS rounds of ${SECS} s per figure"
	for ((r = 1; r <= ROUNDS; r++)); do
		abba_round "$r"
	done
	if [ "$INSITU" -eq 1 ]; then
		for c in "${CMD_LIST[@]}"; do insitu "$c"; done
		if [[ " ${CMD_LIST[*]} " == *" tcp "* ]]; then
			for c in "${CMD_LIST[@]}"; do [ "$c" = stats ] || insitu "$c" tcp; done
		fi
	fi
	[ "$SCALE" -eq 1 ] && scale

	local by_cmd='{}'
	for c in "${CMD_LIST[@]}"; do
		# shellcheck disable=SC2086 # word lists of numbers
		by_cmd=$(jq -c --arg c "$c" \
			--argjson ab_off "$(jarr ${R_AB[off]})" --argjson ab_on "$(jarr ${R_AB[$c]})" \
			--argjson ba_off "$(jarr ${R_BA[off]})" --argjson ba_on "$(jarr ${R_BA[$c]})" \
			--argjson udp_off "$(jarr ${R_UDP[off]})" --argjson udp_on "$(jarr ${R_UDP[$c]})" \
			--argjson sent_off "$(jarr ${R_SENT[off]})" --argjson sent_on "$(jarr ${R_SENT[$c]})" \
			--argjson cpu_ns "${TF_CPU_NS[$c]}" --argjson wall_ns "${TF_WALL_NS[$c]}" \
			--argjson hwm "${TF_HWM_KIB[$c]}" --argjson rss "${TF_RSS_KIB[$c]}" \
			--argjson insitu "${INSITU_BY[$c]:-null}" \
			--argjson insitu_tcp "${INSITU_TCP_BY[$c]:-null}" "$JQ_FIG"'
			. + {($c): {
			 tcp_a_to_b: fig($ab_off; $ab_on; "bit/s"),
			 tcp_b_to_a: fig($ba_off; $ba_on; "bit/s"),
			 udp_pps: (fig($udp_off; $udp_on; "packets/s delivered") +
				{sent_off_median: ($sent_off | median), sent_on_median: ($sent_on | median)}),
			 tapflow: {cpu_ms: ($cpu_ns / 1e6), wall_s: ($wall_ns / 1e9),
				   cpu_percent_of_one_core: (100 * $cpu_ns / $wall_ns),
				   max_rss_kib: $hwm, end_rss_kib: $rss},
			 insitu: $insitu, insitu_tcp: $insitu_tcp}}' <<<"$by_cmd") || die "cannot build the result of $c"
	done

	RESULT=$(jq -n \
		--argjson secs "$SECS" --argjson rounds "$ROUNDS" --argjson udp_len "$UDP_LEN" \
		--arg affinity "$AFFINITY" --argjson cmds "$(printf '%s\n' "${CMD_LIST[@]}" | jq -Rsc 'split("\n") | map(select(length > 0))')" \
		--arg mode "$TF_MODE" --arg kernel "$(uname -r)" \
		--argjson by_cmd "$by_cmd" --argjson flow_map "$FLOW_MAP" --argjson scale "$SCALE_JSON" \
		--argjson busy "$(busy_json)" --argjson elapsed "$((SECONDS - t0))" '
		{type: "throughput", kernel: $kernel, seconds: $secs, rounds: $rounds,
		 order: "ABBA (off,\($cmds | join(",")) / reversed / ...)", attach_mode: $mode,
		 iperf3_affinity: (if $affinity == "" then null else $affinity end),
		 udp_payload_bytes: $udp_len, udp_frame_bytes: ($udp_len + 42 + 4),
		 cmds: $cmds, by_cmd: $by_cmd}
		# The first command at the top level, as before there were several.
		+ ($by_cmd[$cmds[0]] | {tcp_a_to_b, tcp_b_to_a, udp_pps, tapflow, insitu})
		+ {flow_map: $flow_map, scale: $scale} + $busy + {elapsed_s: $elapsed}') ||
		die "cannot build the result"

	if [ "$JSON" -eq 1 ]; then
		echo "$RESULT"
		return
	fi
	echo "throughput: veth -> bridge -> veth, tapflow on br0+pa+pb ($(q .attach_mode)) vs off,"
	echo "iperf3 client,server on CPUs ${AFFINITY:-(unpinned)}"
	echo "median of $ROUNDS rounds of $SECS s each, ABBA order; ratio = median of per-round on/off"
	printf '%-32s %10s %10s %7s  %s\n' measurement off on ratio "(rounds: min-max)"
	for c in "${CMD_LIST[@]}"; do
		row "$c: TCP A->B (Gbit/s)" "by_cmd.$c.tcp_a_to_b" 1e9 %10.2f
		row "$c: TCP B->A (Gbit/s)" "by_cmd.$c.tcp_b_to_a" 1e9 %10.2f
		row "$c: UDP $(q .udp_frame_bytes) B frames (kpps)" "by_cmd.$c.udp_pps" 1e3 %10.1f
		printf '%s: tapflow %.0f ms CPU in %.0f s attached (%.2f%% of a core), RSS max %d KiB, %d KiB at the end\n' \
			"$c" "$(q ".by_cmd.$c.tapflow.cpu_ms")" "$(q ".by_cmd.$c.tapflow.wall_s")" \
			"$(q ".by_cmd.$c.tapflow.cpu_percent_of_one_core")" "$(q ".by_cmd.$c.tapflow.max_rss_kib")" \
			"$(q ".by_cmd.$c.tapflow.end_rss_kib")"
		if [ "$(q ".by_cmd.$c.insitu")" != null ]; then
			echo "$c: in situ, BPF run-time stats on: $(q ".by_cmd.$c.insitu | map(\"\(.name) \(.ns_per_run) ns/run\") | join(\", \")")"
		fi
		if [ "$(q ".by_cmd.$c.insitu_tcp")" != null ]; then
			echo "$c: in situ over a TCP stream: $(q ".by_cmd.$c.insitu_tcp | map(\"\(.name) \(.ns_per_run) ns/run\") | join(\", \")")"
		fi
	done
	if [ "$FLOW_MAP" != null ]; then
		q '.flow_map | "flow map (default): \(.max_entries) entries of \(.bytes_key) + \(.bytes_value) B = \(.raw_bytes) B; memlock \(.bytes_memlock) B"'
	fi
	if [ "$SCALE_JSON" != null ]; then
		row "flows x4: UDP flowgen (kpps)" scale.full.delivered_pps 1e3 %10.1f
		row "flows x4: TCP A->B (Gbit/s)" scale.full.tcp_a_to_b 1e9 %10.2f
		q '.scale | "flow scale: \(.flows) flows into a map of \(.fit.max_flows): RSS \(.fit.tapflow.end_rss_kib) KiB, exact: \(.fit.accounting.exact); into \(.full.max_flows): exact: \(.full.accounting_exact)"'
	fi
	printf 'other CPUs (not running iperf3) busy during the blocks: median %s%%, max %s%%; %s round(s) discarded and run again\n' \
		"$(q .other_cpus_busy_percent.median)" "$(q .other_cpus_busy_percent.max)" \
		"$(q '.discarded_rounds | length')"
}

main
