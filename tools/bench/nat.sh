#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# nat.sh: what the NAT join of `tapflow flows` costs the NATed traffic.
#
# A VM behind a bridge, NATed to an "internet", as on a libvirt NAT
# network: namespace VM hangs on a veth whose other end, vport, is a port
# of bridge br0 in namespace RT; RT routes between br0 and the uplink veth
# up0, with MASQUERADE out of up0; the uplink's other end is in namespace
# NET, where the iperf3 server runs. tapflow runs in RT as on a libvirt
# host: --iface vport (the VM's port: the flow programs, as on a tap),
# --bridge br0 (the counters-only programs, as on a libvirt network's
# bridge), --uplink up0.
#
# Three states in ABBA rounds (off no_nat nat / nat no_nat off): nothing
# attached; `flows --no-nat` (up0 counted by the counters-only programs);
# `flows` (the join: tf_uplink_ingress/egress on up0). Both iperf3 ends
# share CPU 0, as in throughput.sh; per block TCP VM->internet, TCP
# internet->VM (-R) and the packet rate of 64-byte UDP frames VM->internet
# (--udp-down: internet->VM too). Ratios are medians of the per-round
# ratios: flows/off (what NATed traffic loses to tapflow) and
# flows/--no-nat (what the join adds). A round during which other work
# kept the free CPUs busy is run again.
#
# Then, in intervals of their own (the kernel's BPF run-time statistics
# cost time themselves, so they never overlap the rounds above), the per-
# packet cost: join off and on in ABBA order (--insitu-rounds pairs), each
# with 64-byte UDP frames VM->internet and internet->VM under prog_cost
# --watch (statistics on): run_time_ns and run_cnt of every tapflow
# program. The flow path per forwarded packet is the sum of run_time_ns of
# tapflow's TC programs (vport, br0, up0) divided by the packets that
# crossed the VM's port in the interval (vport's kernel counters, rx + tx);
# the ratio is join on / join off, the median of the per-round ratios.
# tapflow's other programs (the drop tracer, which runs on dropped skbs
# anywhere on the host) are shown apart.
#
# Last, UDP flows/off measured closer (rounds seconds apart swing by
# +-10-30 %): with nothing else attached, flow_toggle switches the TC
# programs of `tapflow flows` (set up as tapflow sets them up) every
# --switch-period-ms (250) for --switch-seconds (40; 0: none) of one
# iperf3 UDP run and logs the packets leaving up0 every 10 ms; each period
# with them on is compared with the off periods around it.
#
#   tools/bench/nat.sh [-t SEC] [-r ROUNDS] [--udp-len BYTES] [--udp-down]
#                      [--affinity C,S] [--attach auto|tcx|clsact]
#                      [--busy-max PCT] [--max-redo N] [--insitu-rounds N]
#                      [--no-insitu] [--no-bridge] [--only FIG,...]
#                      [--switch-seconds S] [--switch-period-ms P] [--json]
#
# --only takes some of tcp_up, tcp_down, udp_up, udp_down (e.g. more
# rounds of the noisiest figure, to pool with a full run's).
#
# Needs root, iperf3, jq, iproute2, iptables and a built .output/tapflow
# (make) and .output/bench/{prog_cost,flow_toggle} (make -C tools/bench). Everything it
# creates (namespaces, and with them their links, addresses and NAT rule;
# processes) is removed on exit, also on failure or Ctrl-C.
set -uo pipefail

PROG=nat.sh
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$HERE/lib.sh"
TAPFLOW=${TAPFLOW:-$ROOT/.output/tapflow}
PROG_COST=${PROG_COST:-$ROOT/.output/bench/prog_cost}
FLOW_TOGGLE=${FLOW_TOGGLE:-$ROOT/.output/bench/flow_toggle}

# Defaults of -t, --udp-len, --attach, --affinity, --busy-max, --max-redo:
# lib.sh, as throughput.sh (3 s, 64-byte frames, both iperf3 ends on CPU 0,
# ...). As many rounds as throughput.sh (single rounds swing by +-15 % on
# a 2-vCPU VM), three states each; 6 in-situ pairs, as the programs that
# do not change between the states (the taps') move by +-10 % per pair.
ROUNDS=8
UDP_DOWN=0
INSITU=1
INSITU_ROUNDS=6
BRIDGE=1
ONLY=
SWITCH_SECS=40
SWITCH_MS=250

# Options of nat.sh's own (the others: lib.sh, common_opt).
own_opt() {
	case $1 in
	--udp-down) UDP_DOWN=1 ;;
	--no-insitu) INSITU=0 ;;
	--no-bridge) BRIDGE=0 ;;
	--insitu-rounds) INSITU_ROUNDS=${2:-}; return 2 ;;
	--only) ONLY=${2:-}; return 2 ;;
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

need_tools iperf3 jq ip iptables
[ "$SWITCH_SECS" -eq 0 ] || [ -x "$FLOW_TOGGLE" ] ||
	die "$FLOW_TOGGLE not built (run make -C tools/bench, or pass --switch-seconds 0)"
if [ "$INSITU" -eq 1 ] && [ ! -x "$PROG_COST" ]; then
	die "$PROG_COST not built (run make -C tools/bench, or pass --no-insitu)"
fi

# Everything it creates is removed at exit (lib.sh: bench_init, cleanup).
bench_init tfn
NS_VM=$ID-vm NS_RT=$ID-rt NS_NET=$ID-net
# RFC 2544 benchmarking range, inside our namespaces only: the VM's network
# behind the bridge, and the uplink's ("internet") network. NET has no route
# to the VM's network: its replies reach the VM only through the NAT.
VM_NET=198.18.1.0/24 GW_IP=198.18.1.1 VM_IP=198.18.1.2
UP_IP=198.19.1.1 NET_IP=198.19.1.2
PORT=5201
# iperf3's client is the VM, its server on the internet; tapflow runs in RT.
IPERF_NS=$NS_VM IPERF_DST=$NET_IP TF_NS=$NS_RT
# tapflow's --iface interface: the VM's port (flows, as a tap); with
# BRIDGE, --bridge br0 (counters only, as a libvirt network's bridge).
TRACED=vport
BRIDGE_OPTS=()
[ "$BRIDGE" -eq 1 ] && BRIDGE_OPTS=(--bridge br0)
TF_ARGS="--iface $TRACED ${BRIDGE_OPTS[*]} --uplink up0"

STATES=(off no_nat nat)
declare -A STATE_NAME=([off]="off" [no_nat]="flows --no-nat" [nat]="flows")
FIGS=(tcp_up tcp_down udp_up)
[ "$UDP_DOWN" -eq 1 ] && FIGS+=(udp_down)
# --only: some of the figures (pooling rounds of the noisiest one).
if [ -n "$ONLY" ]; then
	IFS=, read -r -a FIGS <<<"$ONLY"
	for k in "${FIGS[@]}"; do
		case $k in
		tcp_up | tcp_down | udp_up | udp_down) ;;
		*) echo "$PROG: --only: $k is none of tcp_up, tcp_down, udp_up, udp_down" >&2; exit 2 ;;
		esac
	done
fi

# ---- topology ----

setup() {
	nat_router_up
	iperf_server "$NS_NET" "$NET_IP"
}

# ---- measurements ----

# tapflow flows in STATE (no_nat: --no-nat; nat: the join).
tf_start_state() {
	local opts=("${BRIDGE_OPTS[@]}" --uplink up0)
	[ "$1" = no_nat ] && opts+=(--no-nat)
	tf_start flows "$TRACED" "${opts[@]}"
}

# tapflow must have counted the VM's TCP and UDP flows on vport and lost
# nothing; with the join on, every one of them joined to its uplink flow
# (translated to up0's address, uplink packets counted), with it off none.
tf_check_counted() {
	jq -se --argjson join "$([ "$1" = nat ] && echo true || echo false)" --arg up "$UP_IP" '
		[.[] | select(.type == "flow" and .final and .ifname == "vport" and
			      .aggregate == null and (.proto == "tcp" or .proto == "udp"))] as $f |
		($f | map(.rx_packets + .tx_packets) | add // 0) > 1000 and
		(if $join then
			($f | all(.nat.ifname == "up0" and .nat.ip == $up)) and
			($f | map(.uplink_rx_packets + .uplink_tx_packets) | add) > 1000
		 else ($f | all(.nat == null)) end) and
		([.[] | select(.type == "summary")][0]
		 | .map_full == 0 and .if_map_full == 0 and .parse_errors == 0)' "$TF_OUT" >/dev/null ||
		die "tapflow ${STATE_NAME[$1]} did not count (or join) the VM's flows on vport (see $TF_OUT)"
}

# The join's forwarding-loss counters of vport in the last run: "tx rx".
fwd_lost() {
	jq -rs '[.[] | select(.type == "fwd" and .final and .ifname == "vport")][0]
		| "\(.fwd_lost_tx // 0) \(.fwd_lost_rx // 0)"' "$TF_OUT"
}

# One figure into VAL: TCP bit/s or UDP packets/s delivered, up
# (VM->internet) or down (internet->VM: -R, the NAT's reply direction).
measure_fig() {
	case $1 in
	tcp_up) tcp_bps; VAL=$BPS ;;
	tcp_down) tcp_bps -R; VAL=$BPS ;;
	udp_up) udp_pps; VAL=$PPS ;;
	udp_down) udp_pps -R; VAL=$PPS ;;
	esac
}

# One block: the figures in one state, into BLOCK[state].
declare -A BLOCK
FWD_LOST_TX=0 FWD_LOST_RX=0
block() {
	local state=$1 r=$2 j0 k vals=() line lt lr
	j0=$(other_cpu_jiffies)
	[ "$state" != off ] && tf_start_state "$state"
	line=$(printf 'round %d %-14s' "$r" "${STATE_NAME[$state]}")
	for k in "${FIGS[@]}"; do
		measure_fig "$k"
		vals+=("$VAL")
		case $k in
		tcp_*) line+=$(printf '  %s %6.2f Gbit/s' "$k" "$(jq -n "$VAL / 1e9")") ;;
		udp_*) line+=$(printf '  %s %4.0f kpps (%.1f%% lost)' "$k" "$(jq -n "$VAL / 1e3")" "$LOSS") ;;
		esac
	done
	BLOCK_BUSY[$state]=$(busy_since "$j0")
	if [ "$state" != off ]; then
		tf_stop
		tf_check_counted "$state"
		vals+=("$TF_LAST_CPU_NS" "$TF_LAST_WALL_NS" "$TF_LAST_HWM_KIB" "$TF_LAST_RSS_KIB")
	fi
	if [ "$state" = nat ]; then
		read -r lt lr < <(fwd_lost)
		vals+=("$lt" "$lr")
		line+="; fwd_lost tx $lt rx $lr"
	fi
	# Kept by keep_block(): state -> "figures... [cpu wall hwm rss [lost_tx lost_rx]]".
	BLOCK[$state]="${vals[*]}"
	log "$line; other CPUs ${BLOCK_BUSY[$state]}% busy"
}

# Per state and figure ("state:fig"): the kept rounds' figures, space-separated.
declare -A R
keep_block() {
	local st=$1 v i=0 k
	read -r -a v <<<"${BLOCK[$st]}"
	for k in "${FIGS[@]}"; do R[$st:$k]+=" ${v[$((i++))]}"; done
	[ "$st" = off ] && return 0
	TF_LAST_CPU_NS=${v[i]} TF_LAST_WALL_NS=${v[i + 1]}
	TF_LAST_HWM_KIB=${v[i + 2]} TF_LAST_RSS_KIB=${v[i + 3]}
	tf_account "$st"
	if [ "$st" = nat ]; then
		FWD_LOST_TX=$((FWD_LOST_TX + v[i + 4])) FWD_LOST_RX=$((FWD_LOST_RX + v[i + 5]))
	fi
}

# One in-situ interval: STATE, ROUND, DIR (up: VM->internet, down: -R),
# 64-byte UDP frames with the BPF run-time statistics on; the programs'
# run_time_ns/run_cnt and the packets that crossed vport, into INTERVALS.
declare -a INTERVALS=()
insitu_interval() {
	local st=$1 r=$2 dir=$3 out=$WORK/insitu.$1.$2.$3.json rx0 tx0 rx1 tx1 j0 busy
	j0=$(other_cpu_jiffies)
	read -r rx0 tx0 _ < <(link_counts "$NS_RT" vport)
	watch_start "$TF_PID" "$out"
	if [ "$dir" = up ]; then udp_pps; else udp_pps -R; fi
	watch_stop
	read -r rx1 tx1 _ < <(link_counts "$NS_RT" vport)
	jq -e '.progs | all(has("prog_type"))' "$out" >/dev/null ||
		die "$PROG_COST reports no program types: rebuild it (make -C tools/bench)"
	busy=$(busy_since "$j0")
	# The kernel keeps 15 characters of a program's name.
	INTERVALS+=("$(jq -c --arg st "$st" --argjson r "$r" --arg dir "$dir" \
		--argjson rx $((rx1 - rx0)) --argjson tx $((tx1 - tx0)) --argjson pps "$PPS" \
		--argjson busy "$busy" '
		{state: $st, round: $r, dir: $dir, seconds,
		 vport_rx_packets: $rx, vport_tx_packets: $tx, packets: ($rx + $tx),
		 delivered_pps: $pps, other_cpus_busy_percent: $busy,
		 progs: (.progs | map(select(.run_cnt > 0) | {id, prog_type, run_cnt, run_time_ns,
			ns_per_run, name: (.name | if . == "tf_uplink_ingre" then "tf_uplink_ingress"
				elif . == "tf_uplink_egres" then "tf_uplink_egress" else . end)}))}
		# The flow path: the TC programs. Others (the drop tracer) run on
		# dropped skbs anywhere on the host: apart.
		| .run_time_ns = (.progs | map(select(.prog_type == "sched_cls") | .run_time_ns) | add // 0)
		| .other_run_time_ns = (.progs | map(select(.prog_type != "sched_cls") | .run_time_ns)
					| add // 0)
		| .ns_per_packet = (.run_time_ns / .packets)' "$out")") ||
		die "cannot read prog_cost's report ($out)"
	log "$(jq -r '"in situ, round \(.round) \(.state) \(.dir): \(.packets) packets across vport, " +
		"\(.ns_per_packet * 10 | round / 10) ns/packet in TC programs (" +
		(.progs | map("\(.name)\(if .prog_type != "sched_cls" then " (\(.prog_type))" else "" end)" +
			" \(.ns_per_run | round) ns x \(.run_cnt)") | join(", ")) +
		"); other CPUs \(.other_cpus_busy_percent)% busy"' <<<"${INTERVALS[-1]}")"
}

insitu() {
	local r st
	log "in situ: $INSITU_ROUNDS ABBA round(s) of join off/on, UDP VM->internet and" \
		"internet->VM for $SECS s each, BPF run-time statistics on"
	for ((r = 1; r <= INSITU_ROUNDS; r++)); do
		for st in $([ $((r % 2)) -eq 1 ] && echo no_nat nat || echo nat no_nat); do
			tf_start_state "$st"
			insitu_interval "$st" "$r" up
			insitu_interval "$st" "$r" down
			# Not part of the CPU/RSS figures: tf_account is not called.
			tf_stop
			tf_check_counted "$st"
		done
	done
}

# The in-situ intervals summed up (JSON; null without them).
insitu_json() {
	[ ${#INTERVALS[@]} -eq 0 ] && { echo null; return; }
	printf '%s\n' "${INTERVALS[@]}" | jq -sc --argjson rounds "$INSITU_ROUNDS" "$JQ_MEDIAN"'
		. as $iv |
		def dirs($d): if $d == "both" then ["up", "down"] else [$d] end;
		def sel($st; $r; $d): $iv | map(select(.state == $st and
			($r == null or .round == $r) and (.dir | IN(dirs($d)[]))));
		# ns of the TC programs (f: .run_time_ns), or of the others
		# (f: .other_run_time_ns), per packet that crossed vport.
		def per_packet($st; $r; $d; f): sel($st; $r; $d) |
			(map(f) | add) / (map(.packets) | add);
		def cmp($d): [range(1; $rounds + 1)] |
			map({off: per_packet("no_nat"; .; $d; .run_time_ns),
			     on: per_packet("nat"; .; $d; .run_time_ns),
			     other_off: per_packet("no_nat"; .; $d; .other_run_time_ns),
			     other_on: per_packet("nat"; .; $d; .other_run_time_ns)}) as $x |
			($x | map(.on / .off)) as $ratios |
			{no_nat_ns: ($x | map(.off) | median), nat_ns: ($x | map(.on) | median),
			 other_progs_no_nat_ns: ($x | map(.other_off) | median),
			 other_progs_nat_ns: ($x | map(.other_on) | median),
			 no_nat_ns_rounds: ($x | map(.off)), nat_ns_rounds: ($x | map(.on)),
			 ratio: ($ratios | median), ratios: $ratios,
			 ratio_min: ($ratios | min), ratio_max: ($ratios | max),
			 added_ns: ($x | map(.on - .off) | median)};
		# Per program over all rounds: ns per run, runs and ns per packet.
		def progs($st; $d): sel($st; null; $d) as $s | ($s | map(.packets) | add) as $pk |
			[$s[].progs[]] | group_by(.name) | map({name: .[0].name, prog_type: .[0].prog_type,
				ns_per_run: ((map(.run_time_ns) | add) / (map(.run_cnt) | add)),
				runs_per_packet: ((map(.run_cnt) | add) / $pk),
				ns_per_packet: ((map(.run_time_ns) | add) / $pk)})
			| sort_by(-.ns_per_packet);
		{rounds: $rounds, traffic: "UDP, 64-byte frames, up (VM->internet) and down (internet->VM), one interval each",
		 packets: "skbs across the VM port vport (its kernel counters, rx + tx) during the interval",
		 flow_path: "the TC programs (prog_type sched_cls); the others (the drop tracer) apart",
		 target_ratio_max: 1.15,
		 per_packet: {up: cmp("up"), down: cmp("down"), both: cmp("both")},
		 programs: {no_nat: {up: progs("no_nat"; "up"), down: progs("no_nat"; "down"),
				     both: progs("no_nat"; "both")},
			    nat: {up: progs("nat"; "up"), down: progs("nat"; "down"),
				  both: progs("nat"; "both")}},
		 intervals: $iv}'
}

# Switching: iperf3 UDP VM->internet for SWITCH_SECS, nothing else
# attached, while flow_toggle switches the TC programs of `tapflow flows`
# (as this bench gives them: TF_ARGS) every SWITCH_MS
# and logs the packets leaving up0 every 10 ms; into SWITCHING (JSON). The
# ratios: switched_ratios (lib.sh): flows/off, each on period against the
# off periods around it.
SWITCHING=null
switching() {
	local sw=$WORK/switch.out trace=$WORK/switch.trace ratios tpid
	local SECS=$SWITCH_SECS
	log "switching: the TC programs of tapflow flows on and off every $SWITCH_MS ms for" \
		"$SWITCH_SECS s of iperf3 UDP VM->internet"
	bg ip netns exec "$NS_RT" "$FLOW_TOGGLE" --tap "$TRACED" "${BRIDGE_OPTS[@]}" --uplink up0 \
		--period-ms "$SWITCH_MS" --seconds $((SWITCH_SECS + 2)) >"$sw" 2>"$sw.err"
	tpid=$BG_PID
	sleep 0.3
	udp_pps
	bg_wait "$tpid" || die "flow_toggle failed: $(head -c 300 "$sw.err")"
	awk '$1 == "count" { print $2, $3 }' "$sw" >"$trace"
	ratios=$(switched_ratios "$sw" "$trace") || die "cannot read the switching traces"
	SWITCHING=$(jq -nc --argjson r "$ratios" --argjson ms "$SWITCH_MS" --argjson s "$SWITCH_SECS" \
		--argjson tg "$(tail -n1 "$sw")" --argjson pps "$PPS" --argjson loss "$LOSS" "$JQ_SWITCHED"'
		{seconds: $s, period_ms: $ms,
		 state: "nothing else attached; flow_toggle switching the TC programs of tapflow flows",
		 counted: "packets leaving up0 (its tx_packets), every 10 ms"}
		+ switched($r) +
		{iperf3_pps: $pps, iperf3_lost_percent: $loss, toggle: $tg}') ||
		die "cannot build the switching result"
	jq -e '.on_periods >= 3' <<<"$SWITCHING" >/dev/null ||
		die "switching: too few periods measured (see $sw)"
	log "$(jq -r '"switching: \(.on_periods) on periods, flows/off \(.ratio * 1000 | round / 1000) " +
		"(mean \(.ratio_mean * 1000 | round / 1000), \(.ratio_min * 1000 | round / 1000)-\(.ratio_max * 1000 | round / 1000))"' \
		<<<"$SWITCHING")"
}

main() {
	local r t0=$SECONDS stats0 stats1 k figs='{}' tf='{}' st
	stats0=$(sysctl -n kernel.bpf_stats_enabled 2>/dev/null || echo null)
	setup
	log "topology: $NS_VM --veth-- [$NS_RT: vport, br0 (MASQUERADE), up0] --veth-- $NS_NET;" \
		"tapflow $TF_ARGS; states: ${STATES[*]};" \
		"$ROUNDS rounds of ${SECS} s per figure"
	for ((r = 1; r <= ROUNDS; r++)); do
		abba_round "$r"
	done
	[ "$INSITU" -eq 1 ] && insitu
	[ "$SWITCH_SECS" -gt 0 ] && switching
	stats1=$(sysctl -n kernel.bpf_stats_enabled 2>/dev/null || echo null)

	for k in "${FIGS[@]}"; do
		# shellcheck disable=SC2086 # word lists of numbers
		figs=$(jq -c --arg k "$k" --argjson off "$(jarr ${R[off:$k]})" \
			--argjson no_nat "$(jarr ${R[no_nat:$k]})" --argjson nat "$(jarr ${R[nat:$k]})" \
			"$JQ_FIG"'
			($k | if startswith("tcp") then "bit/s" else "packets/s delivered" end) as $u |
			. + {($k): {unit: $u, off: $off, no_nat: $no_nat, nat: $nat,
				    nat_vs_off: fig($off; $nat; $u), nat_vs_no_nat: fig($no_nat; $nat; $u),
				    no_nat_vs_off: fig($off; $no_nat; $u)}}' <<<"$figs") ||
			die "cannot build the result of $k"
	done
	for st in no_nat nat; do
		tf=$(jq -c --arg st "$st" --argjson cpu "${TF_CPU_NS[$st]}" --argjson wall "${TF_WALL_NS[$st]}" \
			--argjson hwm "${TF_HWM_KIB[$st]}" --argjson rss "${TF_RSS_KIB[$st]}" '
			. + {($st): {cpu_ms: ($cpu / 1e6), wall_s: ($wall / 1e9),
				     cpu_percent_of_one_core: (100 * $cpu / $wall),
				     max_rss_kib: $hwm, end_rss_kib: $rss}}' <<<"$tf")
	done

	RESULT=$(jq -n \
		--argjson secs "$SECS" --argjson rounds "$ROUNDS" --argjson udp_len "$UDP_LEN" \
		--arg affinity "$AFFINITY" --arg mode "$TF_MODE" --arg kernel "$(uname -r)" \
		--arg tfargs "$TF_ARGS" --argjson figs "$figs" --argjson tf "$tf" \
		--argjson lost_tx "$FWD_LOST_TX" --argjson lost_rx "$FWD_LOST_RX" \
		--argjson insitu "$(insitu_json)" --argjson switching "$SWITCHING" \
		--argjson busy "$(busy_json)" \
		--argjson s0 "$stats0" --argjson s1 "$stats1" \
		--arg vm "$VM_IP" --arg gw "$GW_IP" --arg up "$UP_IP" --arg net "$NET_IP" \
		--argjson elapsed "$((SECONDS - t0))" '
		{type: "nat", kernel: $kernel, seconds: $secs, rounds: $rounds,
		 order: "ABBA (off,no_nat,nat / nat,no_nat,off / ...)", attach_mode: $mode,
		 iperf3_affinity: (if $affinity == "" then null else $affinity end),
		 udp_payload_bytes: $udp_len, udp_frame_bytes: ($udp_len + 42 + 4),
		 topology: {vm: $vm, bridge: $gw, uplink: $up, internet: $net,
			    tapflow: $tfargs},
		 states: {off: "nothing attached", no_nat: "tapflow flows --no-nat",
			  nat: "tapflow flows (NAT join)"},
		 target_ratio_min: 0.95,
		 figures: $figs, tapflow: $tf,
		 fwd_lost: {tx: $lost_tx, rx: $lost_rx},
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
	local k label scale fmt
	echo "nat: VM --veth-- vport [br0, MASQUERADE, up0] --veth-- internet; tapflow" \
		"$(q .topology.tapflow) ($(q .attach_mode))"
	echo "iperf3 client (VM), server (internet) on CPUs ${AFFINITY:-(unpinned)};" \
		"median of $ROUNDS ABBA rounds of $SECS s; ratio = median of per-round ratios"
	printf '%-30s %9s %9s %9s %9s %14s  %s\n' measurement off --no-nat flows flows/off \
		flows/--no-nat "(rounds: flows/off min-max)"
	for k in "${FIGS[@]}"; do
		case $k in
		tcp_up) label="TCP VM->internet (Gbit/s)" ;;
		tcp_down) label="TCP internet->VM (Gbit/s)" ;;
		udp_up) label="UDP $(q .udp_frame_bytes) B VM->internet (kpps)" ;;
		udp_down) label="UDP $(q .udp_frame_bytes) B internet->VM (kpps)" ;;
		esac
		scale=1e9 fmt=%9.2f
		[[ $k == udp_* ]] && scale=1e3 fmt=%9.1f
		printf "%-30s $fmt $fmt $fmt %9.3f %14.3f  (%.3f-%.3f)\n" "$label" \
			"$(q ".figures.$k.nat_vs_off.off_median / $scale")" \
			"$(q ".figures.$k.nat_vs_no_nat.off_median / $scale")" \
			"$(q ".figures.$k.nat_vs_off.on_median / $scale")" \
			"$(q ".figures.$k.nat_vs_off.ratio")" "$(q ".figures.$k.nat_vs_no_nat.ratio")" \
			"$(q ".figures.$k.nat_vs_off.ratio_min")" "$(q ".figures.$k.nat_vs_off.ratio_max")"
	done
	echo "target: flows/off >= $(q .target_ratio_min)"
	q '.tapflow | to_entries | map("\(if .key == "nat" then "flows" else "flows --no-nat" end): " +
		"tapflow \(.value.cpu_ms | round) ms CPU in \(.value.wall_s | round) s " +
		"(\(.value.cpu_percent_of_one_core * 100 | round / 100)% of a core), " +
		"RSS max \(.value.max_rss_kib) KiB, \(.value.end_rss_kib) KiB at the end") | .[]'
	q '"join: forwarding loss seen by tapflow over the kept flows blocks: tx \(.fwd_lost.tx), rx \(.fwd_lost.rx) packets"'
	if [ "$(q .insitu)" != null ]; then
		echo "per forwarded packet, in situ (BPF run-time statistics on, UDP $(q .udp_frame_bytes) B" \
			"frames, $(q .insitu.rounds) ABBA round(s)):"
		echo "the flow path = tapflow's TC programs; ns = their run_time_ns / packets across vport (rx + tx)"
		printf '%-30s %9s %9s %9s %9s  %s\n' "" --no-nat flows ratio "+ns" "(rounds: min-max)"
		for k in up down both; do
			case $k in
			up) label="VM->internet: ns/packet" ;;
			down) label="internet->VM: ns/packet" ;;
			both) label="both ways: ns/packet" ;;
			esac
			printf '%-30s %9.1f %9.1f %9.3f %+9.1f  (%.3f-%.3f)\n' "$label" \
				"$(q ".insitu.per_packet.$k.no_nat_ns")" "$(q ".insitu.per_packet.$k.nat_ns")" \
				"$(q ".insitu.per_packet.$k.ratio")" "$(q ".insitu.per_packet.$k.added_ns")" \
				"$(q ".insitu.per_packet.$k.ratio_min")" "$(q ".insitu.per_packet.$k.ratio_max")"
		done
		echo "target: ratio <= $(q .insitu.target_ratio_max)"
		q '.insitu.per_packet.both | "not in the flow path: tapflow'"'"'s other programs (the drop tracer)" +
			" \(.other_progs_no_nat_ns * 10 | round / 10) ns/packet with --no-nat," +
			" \(.other_progs_nat_ns * 10 | round / 10) with flows"'
		echo "programs: ns per run x runs per forwarded packet (those adding at least 1 ns/packet):"
		q '.insitu.programs | to_entries[] | .key as $st | .value | to_entries[] |
			select(.key != "both") |
			"  \(if $st == "nat" then "flows   " else "--no-nat" end) " +
			"\(if .key == "up" then "VM->internet" else "internet->VM" end): " +
			(.value | map(select(.ns_per_packet >= 1) |
				"\(.name) \(.ns_per_run | round) ns x \(.runs_per_packet * 100 | round / 100)" +
				(if .prog_type != "sched_cls" then " (\(.prog_type): not in the flow path)"
				 else "" end)) | join(", "))'
	fi
	if [ "$(q .switching)" != null ]; then
		q '.switching | "switching the TC programs of tapflow flows every \(.period_ms) ms for \(.seconds) s " +
			"of iperf3 UDP VM->internet: flows/off \(.ratio * 1000 | round / 1000) (median of \(.on_periods) " +
			"on periods, each against the off periods around it; mean \(.ratio_mean * 1000 | round / 1000), " +
			"range \(.ratio_min * 1000 | round / 1000)-\(.ratio_max * 1000 | round / 1000))"'
	fi
	printf 'other CPUs (not running iperf3) busy during the blocks: median %s%%, max %s%%; %s round(s) discarded and run again\n' \
		"$(q .other_cpus_busy_percent.median)" "$(q .other_cpus_busy_percent.max)" \
		"$(q '.discarded_rounds | length')"
	printf 'kernel.bpf_stats_enabled: %s before, %s after (never written: prog_cost holds a BPF_ENABLE_STATS fd)\n' \
		"$(q .bpf_stats_enabled_sysctl.before)" "$(q .bpf_stats_enabled_sysctl.after)"
}

main
