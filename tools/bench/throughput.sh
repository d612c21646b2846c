#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# throughput.sh: what tapflow costs the traffic it counts.
#
# Two namespaces, A and B, each hang on a veth whose other end is a port of
# a bridge in a third namespace BR: A -> veth -> bridge -> veth -> B, the path
# of a VM's frames through its tap and bridge. iperf3 measures TCP throughput
# both ways and the packet rate of minimum-size UDP frames, with tapflow
# attached to the bridge and both bridge ports and without ("off"): `stats`
# (the counters-only programs) and `flows` (the flow programs), each a state
# of its own (--cmd). Both iperf3 ends share CPU 0, so the figures measure the
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
#                             [--cmd stats,flows] [--affinity C,S]
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

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TAPFLOW=${TAPFLOW:-$ROOT/.output/tapflow}
PROG_COST=${PROG_COST:-$ROOT/.output/bench/prog_cost}
FLOWGEN=${FLOWGEN:-$ROOT/.output/bench/flowgen}

# Many short rounds rather than a few long ones: on a small VM the figures
# wander by +-10% over tens of seconds, and only close pairs cancel that.
SECS=3
ROUNDS=6
# 18 bytes of UDP payload + 8 UDP + 20 IPv4 + 14 Ethernet = 60 bytes, the
# 64-byte minimum Ethernet frame once the NIC adds its 4-byte FCS.
UDP_LEN=18
ATTACH=auto
# Both iperf3 ends on CPU 0 (iperf3 -A client,server): the whole path, both
# sockets and the veth/bridge softirq work then share one core, and the
# figures measure its CPU cost per bit or packet, which is what tapflow adds
# to. With the ends on two CPUs the cross-CPU wakeups of this small VM made
# TCP swing between 8 and 19 Gbit/s from one second to the next. The other
# CPU stays free for tapflow's userspace and the rest of the system.
# --affinity '' leaves placement to the scheduler.
AFFINITY=0,0
INSITU=1
JSON=0
# tapflow commands measured against "off", each its own state.
CMDS=stats,flows
# Flow scale: FLOWS distinct flows, PASSES frames each per block; the full
# map case uses a map of MAX_FLOWS entries (4 x smaller: most packets find
# it full), in SCALE_ROUNDS ABBA rounds; the fit case a map of FIT entries.
SCALE=1
SCALE_FLOWS=100000
SCALE_MAX_FLOWS=25000
SCALE_PASSES=3
SCALE_ROUNDS=2
# A round during which the CPUs without iperf3 were busier than this (%) was
# disturbed by other work: it is run again, at most MAX_REDO times in all.
BUSY_MAX=20
MAX_REDO=3

usage() {
	sed -n '/^#   tools/,/^#$/p' "$0" | sed 's/^# \{0,1\}//'
}

while [ $# -gt 0 ]; do
	case $1 in
	-t) SECS=${2:-}; shift ;;
	--affinity) AFFINITY=${2:-}; shift ;;
	-r) ROUNDS=${2:-}; shift ;;
	--udp-len) UDP_LEN=${2:-}; shift ;;
	--attach) ATTACH=${2:-}; shift ;;
	--no-insitu) INSITU=0 ;;
	--cmd) CMDS=${2:-}; shift ;;
	--no-scale) SCALE=0 ;;
	--scale-flows) SCALE_FLOWS=${2:-}; shift ;;
	--scale-max-flows) SCALE_MAX_FLOWS=${2:-}; shift ;;
	--scale-passes) SCALE_PASSES=${2:-}; shift ;;
	--scale-rounds) SCALE_ROUNDS=${2:-}; shift ;;
	--busy-max) BUSY_MAX=${2:-}; shift ;;
	--max-redo) MAX_REDO=${2:-}; shift ;;
	--json) JSON=1 ;;
	-h|--help) usage; exit 0 ;;
	*) echo "throughput.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
	esac
	shift
done
[[ $SECS =~ ^[1-9][0-9]*$ ]] || { echo "throughput.sh: -t needs whole seconds" >&2; exit 2; }
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "throughput.sh: -r needs a count" >&2; exit 2; }
[[ $BUSY_MAX =~ ^[0-9]+$ ]] || { echo "throughput.sh: --busy-max needs a percentage" >&2; exit 2; }
[[ $MAX_REDO =~ ^[0-9]+$ ]] || { echo "throughput.sh: --max-redo needs a count" >&2; exit 2; }
[[ $UDP_LEN =~ ^[0-9]+$ ]] && [ "$UDP_LEN" -ge 16 ] ||
	{ echo "throughput.sh: --udp-len needs at least 16 (iperf3's header)" >&2; exit 2; }
case $ATTACH in auto|tcx|clsact) ;; *) echo "throughput.sh: bad --attach" >&2; exit 2 ;; esac
IFS=, read -r -a CMD_LIST <<<"$CMDS"
[ ${#CMD_LIST[@]} -ge 1 ] || { echo "throughput.sh: --cmd needs stats and/or flows" >&2; exit 2; }
for c in "${CMD_LIST[@]}"; do
	case $c in stats|flows) ;; *) echo "throughput.sh: --cmd: stats or flows, not '$c'" >&2; exit 2 ;; esac
done
[[ " ${CMD_LIST[*]} " == *" flows "* ]] || SCALE=0
for v in SCALE_FLOWS SCALE_MAX_FLOWS SCALE_PASSES SCALE_ROUNDS; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "throughput.sh: --${v,,} needs a count" >&2; exit 2; }
done
# The map that holds every flow: the next power of two with room to spare.
SCALE_FIT=65536
while [ "$SCALE_FIT" -lt $((SCALE_FLOWS + SCALE_FLOWS / 4)) ]; do SCALE_FIT=$((SCALE_FIT * 2)); done

log() { echo "# $*" >&2; }
die() { echo "throughput.sh: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces, BPF)"
for tool in iperf3 jq ip bpftool; do
	command -v "$tool" >/dev/null || die "$tool not found (tools/deps.sh installs it)"
done
[ -x "$TAPFLOW" ] || die "$TAPFLOW not built (run make)"
if [ "$INSITU" -eq 1 ] && [ ! -x "$PROG_COST" ]; then
	die "$PROG_COST not built (run make -C tools/bench, or pass --no-insitu)"
fi
if [ "$SCALE" -eq 1 ] && [ ! -x "$FLOWGEN" ]; then
	die "$FLOWGEN not built (run make -C tools/bench, or pass --no-scale)"
fi

# ---- cleanup: only what this run created, by name and by pid ----

ID=tfb$$
NS_A=$ID-a NS_B=$ID-b NS_BR=$ID-br
IP_A=198.18.0.1 IP_B=198.18.0.2	# RFC 2544 benchmarking range, inside our namespaces only
PORT=5201
GEN_PORT=9		# flowgen's flows go to B's discard port
GEN_SRC=198.18.0.16	# and come from 198.18.0.16, .17, ... (64 512 ports each)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tapflow-bench.XXXXXX") || die "mktemp failed"
PIDS=()
NSS=()

forget_pid() {
	local p keep=()
	for p in "${PIDS[@]}"; do [ "$p" != "$1" ] && keep+=("$p"); done
	PIDS=("${keep[@]}")
}

cleanup() {
	local p i
	trap - EXIT INT TERM
	# SIGTERM first: tapflow detaches on it, iperf3 ends cleanly.
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for i in 1 2 3 4 5 6 7 8 9 10; do
		local alive=0
		for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
		[ $alive -eq 0 ] && break
		sleep 0.2
	done
	for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	for ((i = ${#NSS[@]} - 1; i >= 0; i--)); do ip netns del "${NSS[$i]}" 2>/dev/null; done
	if [ "${KEEP_LOGS:-0}" = 1 ]; then
		echo "# logs kept in $WORK" >&2
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Start "$@" in the background, remember its pid in BG_PID.
bg() {
	"$@" &
	BG_PID=$!
	PIDS+=("$BG_PID")
}

# Wait for a background pid; a trapped signal interrupts the wait at once.
bg_wait() {
	local rc
	wait "$1"
	rc=$?
	forget_pid "$1"
	return $rc
}

# ---- topology ----

setup() {
	local ns
	for ns in "$NS_A" "$NS_B" "$NS_BR"; do
		[ -e "/run/netns/$ns" ] && die "namespace $ns exists already"
		ip netns add "$ns" || die "cannot create namespace $ns"
		NSS+=("$ns")
		ip -n "$ns" link set lo up
		# No IPv6 autoconf or DAD chatter inside a measurement.
		ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
			net.ipv6.conf.default.disable_ipv6=1 >/dev/null 2>&1 || true
	done
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
	# STP is off: ports forward as soon as they are up. Wait for that.
	local i
	for i in $(seq 50); do
		[ "$(ip -n "$NS_BR" -j link show type bridge_slave 2>/dev/null |
			jq '[.[] | select(.operstate == "UP")] | length')" = 2 ] && break
		sleep 0.1
	done
	bg ip netns exec "$NS_B" iperf3 -s -B "$IP_B" -p "$PORT" >"$WORK/server.log" 2>&1
	SERVER_PID=$BG_PID
	for i in $(seq 50); do
		ip netns exec "$NS_B" ss -Hltn "sport = :$PORT" 2>/dev/null | grep -q . && return 0
		kill -0 "$SERVER_PID" 2>/dev/null || die "iperf3 server died"
		sleep 0.1
	done
	die "iperf3 server does not listen"
}

# ---- measurements ----

N_IPERF=0
# iperf_json ARGS...: run an iperf3 client in A; its JSON is in IPERF_OUT.
iperf_json() {
	local out="$WORK/iperf.$((++N_IPERF)).json" rc
	bg ip netns exec "$NS_A" iperf3 -c "$IP_B" -p "$PORT" -t "$SECS" -J \
		${AFFINITY:+-A "$AFFINITY"} "$@" \
		>"$out" 2>"$out.err"
	bg_wait "$BG_PID"
	rc=$?
	if [ $rc -ne 0 ] || ! jq -e '.error == null and .end != null' "$out" >/dev/null 2>&1; then
		# Interrupted along with us (Ctrl-C reaches the whole group): no error.
		[ $rc -gt 128 ] || grep -q interrupt "$out" 2>/dev/null && exit 130
		die "iperf3 -c $IP_B $* failed (exit $rc):" \
			"$(jq -r '.error // empty' "$out" 2>/dev/null) $(head -c 300 "$out.err")"
	fi
	IPERF_OUT=$out
}

# TCP bit/s on the receiving side into BPS; A->B, or B->A with -R.
# (No $(...) around measurements: a signal must reach this shell at once.)
tcp_bps() {
	iperf_json "$@"
	BPS=$(jq -e '.end.sum_received.bits_per_second' "$IPERF_OUT") ||
		die "no sum_received in $IPERF_OUT"
}

# UDP A->B at full speed: packets/s delivered to B's socket (PPS), sent by
# A (SENT_PPS), and the loss in between (LOSS, %).
udp_pps() {
	local v
	# A big socket buffer: B's scheduling hiccups are not the path's losses.
	iperf_json -u -l "$UDP_LEN" -b 0 -w 4M
	v=$(jq -er '.end.sum_received as $r | .end.sum_sent as $s |
		"\(($r.packets - $r.lost_packets) / $r.seconds) \($s.packets / $s.seconds)" +
		" \($r.lost_percent)"' "$IPERF_OUT") || die "no UDP sums in $IPERF_OUT"
	read -r PPS SENT_PPS LOSS <<<"$v"
}

# CPU time of a process so far, in ns: scheduler run time of all its threads,
# or utime+stime from /proc/PID/stat where schedstat is missing.
cpu_ns() {
	local pid=$1 t sum=0 f
	for f in /proc/"$pid"/task/*/schedstat; do
		[ -r "$f" ] || { sum=; break; }
		read -r t _ <"$f" && sum=$((sum + t))
	done
	if [ -z "$sum" ]; then
		local ticks
		ticks=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
		sum=$((ticks * 1000000000 / $(getconf CLK_TCK)))
	fi
	echo "$sum"
}

N_TF=0
TF_PID=
# tapflow on the bridge and both bridge ports, in NS_BR; returns once attached.
tf_start() {
	local i
	TF_OUT=$WORK/tapflow.$((++N_TF)).out
	bg "$TAPFLOW" --netns "$NS_BR" --no-libvirt --iface br0 --iface pa --iface pb \
		--attach "$ATTACH" --json stats >"$TF_OUT" 2>"$TF_OUT.err"
	TF_PID=$BG_PID
	# The first record comes one interval after the hooks are attached.
	for i in $(seq 100); do
		grep -q '"type":"stats"' "$TF_OUT" 2>/dev/null && break
		if ! kill -0 "$TF_PID" 2>/dev/null; then
			bg_wait "$TF_PID"
			die "tapflow exited $? at start: $(head -c 400 "$TF_OUT.err")"
		fi
		sleep 0.1
	done
	grep -q '"type":"stats"' "$TF_OUT" || die "tapflow printed no record in 10 s"
	TF_CPU0=$(cpu_ns "$TF_PID")
	TF_T0=$(date +%s%N)
}

TF_CPU_NS=0 TF_WALL_NS=0 TF_HWM_KIB=0 TF_RSS_KIB=0 TF_MODE=
# Stop tapflow, add its CPU time and wall time of the block, check its counts.
tf_stop() {
	local cpu1 t1 hwm rss rc
	cpu1=$(cpu_ns "$TF_PID")
	t1=$(date +%s%N)
	# Peak (VmHWM: loading the programs, libbpf parses the kernel's BTF)
	# and resident at the end of the block (VmRSS: the steady state).
	read -r hwm rss < <(awk '/^VmHWM:/ { h = $2 } /^VmRSS:/ { r = $2 }
		END { print h + 0, r + 0 }' "/proc/$TF_PID/status")
	TF_CPU_NS=$((TF_CPU_NS + cpu1 - TF_CPU0))
	TF_WALL_NS=$((TF_WALL_NS + t1 - TF_T0))
	[ "${hwm:-0}" -gt "$TF_HWM_KIB" ] && TF_HWM_KIB=$hwm
	[ "${rss:-0}" -gt "$TF_RSS_KIB" ] && TF_RSS_KIB=$rss
	kill -INT "$TF_PID"
	bg_wait "$TF_PID"
	rc=$?
	[ $rc -eq 0 ] || die "tapflow exited $rc: $(head -c 400 "$TF_OUT.err")"
	# The hooks must really have counted the traffic, and lost nothing.
	jq -se '
		([.[] | select(.type == "stats" and .final and (.ifname == "pa" or .ifname == "pb"))
		  | .rx_packets + .tx_packets] | length == 2 and min > 1000) and
		([.[] | select(.type == "summary")][0].map_full == 0)' "$TF_OUT" >/dev/null ||
		die "tapflow did not count the traffic on pa/pb (see $TF_OUT)"
	TF_MODE=$(jq -rs '[.[] | select(.type == "summary")][0].attach_mode' "$TF_OUT")
}

# "busy total" jiffies of the CPUs the iperf3 ends do not use (all CPUs if
# unpinned). The bench leaves them nearly idle, so their load is other work
# on the machine, which takes memory bandwidth, caches and host time from
# the figures: a warning sign, not a correction.
other_cpu_jiffies() {
	awk -v skip="${AFFINITY}" '
		BEGIN { n = split(skip, a, ","); for (i = 1; i <= n; i++) s["cpu" a[i]] = 1 }
		/^cpu[0-9]/ && !($1 in s) {
			busy += $2 + $3 + $4 + $7 + $8 + $9
			total += $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9
		}
		END { print busy + 0, total + 0 }' /proc/stat
}

declare -a OTHER_BUSY DISCARDED
declare -a TCP_AB_OFF TCP_AB_ON TCP_BA_OFF TCP_BA_ON UDP_OFF UDP_ON UDP_SENT_OFF UDP_SENT_ON

# One block: the three measurements in one state, into BLOCK[state].
declare -A BLOCK
block() {
	local state=$1 r=$2 ab ba j0 j1 busy
	j0=$(other_cpu_jiffies)
	if [ "$state" = on ]; then tf_start; fi
	tcp_bps
	ab=$BPS
	tcp_bps -R
	ba=$BPS
	udp_pps
	j1=$(other_cpu_jiffies)
	busy=$(awk -v a="$j0" -v b="$j1" 'BEGIN { split(a, x); split(b, y)
		t = y[2] - x[2]; printf "%.1f", (t > 0 ? 100 * (y[1] - x[1]) / t : 0) }')
	if [ "$state" = on ]; then tf_stop; fi
	# Kept by round(): state -> "ab ba pps sent busy".
	BLOCK[$state]="$ab $ba $PPS $SENT_PPS $busy"
	log "$(printf 'round %d %-3s  TCP A->B %6.2f Gbit/s  B->A %6.2f Gbit/s  UDP %d B frames: %4.0f kpps delivered (%.0f sent, %.1f%% lost); other CPUs %s%% busy' \
		"$r" "$state" "$(jq -n "$ab / 1e9")" "$(jq -n "$ba / 1e9")" $((UDP_LEN + 46)) \
		"$(jq -n "$PPS / 1000")" "$(jq -n "$SENT_PPS / 1000")" "$LOSS" "$busy")"
}

# In situ: ns per run of the attached programs, over one UDP interval.
insitu() {
	local wout=$WORK/insitu.json i
	tf_start
	bg "$PROG_COST" --watch "$TF_PID" --json >"$wout" 2>"$wout.err"
	local wpid=$BG_PID
	for i in $(seq 50); do
		grep -q watching "$wout.err" && break
		kill -0 "$wpid" 2>/dev/null || die "prog_cost --watch failed: $(cat "$wout.err")"
		sleep 0.1
	done
	grep -q watching "$wout.err" || die "prog_cost --watch did not start"
	udp_pps
	kill -INT "$wpid"
	bg_wait "$wpid" || die "prog_cost --watch failed: $(cat "$wout.err")"
	# Not part of the CPU/RSS figures: restore them around this block.
	local cpu=$TF_CPU_NS wall=$TF_WALL_NS
	tf_stop
	TF_CPU_NS=$cpu TF_WALL_NS=$wall
	INSITU_JSON=$(jq -c '.progs | map(select(.name == "tf_ingress" or .name == "tf_egress"))' "$wout")
	log "in situ (BPF stats on): $(jq -r 'map("\(.name) \(.ns_per_run) ns/run x \(.run_cnt)") | join(", ")' <<<"$INSITU_JSON")"
}

jarr() { printf '%s\n' "$@" | jq -sc .; }

# One round: both states, in ABBA order; kept unless other work disturbed it
# (see other_cpu_jiffies), then it is run again, at most MAX_REDO times per bench.
REDONE=0
round() {
	local r=$1 st ab ba pps sent busy worst=0
	while :; do
		if [ $((r % 2)) -eq 1 ]; then block off "$r"; block on "$r"
		else block on "$r"; block off "$r"; fi
		for st in off on; do
			read -r _ _ _ _ busy <<<"${BLOCK[$st]}"
			worst=$(awk -v a="$worst" -v b="$busy" 'BEGIN { print (b > a ? b : a) }')
		done
		if awk -v w="$worst" -v m="$BUSY_MAX" 'BEGIN { exit !(w > m) }' &&
		   [ "$REDONE" -lt "$MAX_REDO" ]; then
			REDONE=$((REDONE + 1))
			DISCARDED+=("$r:$worst")
			log "round $r discarded: the other CPUs were $worst% busy (> $BUSY_MAX%); again"
			worst=0
			continue
		fi
		break
	done
	for st in off on; do
		read -r ab ba pps sent busy <<<"${BLOCK[$st]}"
		OTHER_BUSY+=("$busy")
		if [ "$st" = on ]; then
			TCP_AB_ON+=("$ab") TCP_BA_ON+=("$ba") UDP_ON+=("$pps") UDP_SENT_ON+=("$sent")
		else
			TCP_AB_OFF+=("$ab") TCP_BA_OFF+=("$ba") UDP_OFF+=("$pps") UDP_SENT_OFF+=("$sent")
		fi
	done
}

main() {
	local r t0=$SECONDS
	setup
	log "topology: $NS_A --veth-- [$NS_BR: pa, br0, pb] --veth-- $NS_B; $ROUNDS rounds of ${SECS} s per figure"
	for ((r = 1; r <= ROUNDS; r++)); do
		round "$r"
	done
	INSITU_JSON=null
	[ "$INSITU" -eq 1 ] && insitu

	RESULT=$(jq -n \
		--argjson secs "$SECS" --argjson rounds "$ROUNDS" --argjson udp_len "$UDP_LEN" \
		--arg affinity "$AFFINITY" \
		--arg mode "$TF_MODE" --arg kernel "$(uname -r)" \
		--argjson ab_off "$(jarr "${TCP_AB_OFF[@]}")" --argjson ab_on "$(jarr "${TCP_AB_ON[@]}")" \
		--argjson ba_off "$(jarr "${TCP_BA_OFF[@]}")" --argjson ba_on "$(jarr "${TCP_BA_ON[@]}")" \
		--argjson udp_off "$(jarr "${UDP_OFF[@]}")" --argjson udp_on "$(jarr "${UDP_ON[@]}")" \
		--argjson sent_off "$(jarr "${UDP_SENT_OFF[@]}")" \
		--argjson sent_on "$(jarr "${UDP_SENT_ON[@]}")" \
		--argjson cpu_ns "$TF_CPU_NS" --argjson wall_ns "$TF_WALL_NS" \
		--argjson hwm "$TF_HWM_KIB" --argjson rss "$TF_RSS_KIB" \
		--argjson insitu "$INSITU_JSON" \
		--argjson busy "$(jarr "${OTHER_BUSY[@]}")" --argjson busy_max "$BUSY_MAX" \
		--argjson discarded "$(printf '%s\n' "${DISCARDED[@]}" |
			jq -Rsc 'split("\n") | map(select(length > 0) | split(":") |
				{round: (.[0] | tonumber), other_cpus_busy_percent: (.[1] | tonumber)})')" \
		--argjson elapsed "$((SECONDS - t0))" '
		def median: sort | if length % 2 == 1 then .[length / 2 | floor]
			else (.[length / 2 - 1] + .[length / 2]) / 2 end;
		# ratio: median over the rounds of on/off of the same round (the two
		# blocks run back to back), which cancels slow drift of the machine.
		def fig($off; $on; $unit):
			([range($off | length)] | map($on[.] / $off[.])) as $pairs |
			{unit: $unit, off: $off, on: $on,
			 off_median: ($off | median), on_median: ($on | median),
			 ratio: ($pairs | median), ratios: $pairs,
			 ratio_min: ($pairs | min), ratio_max: ($pairs | max),
			 ratio_of_medians: (($on | median) / ($off | median))};
		{type: "throughput", kernel: $kernel, seconds: $secs, rounds: $rounds,
		 order: "ABBA (off,on / on,off / ...)", attach_mode: $mode,
		 iperf3_affinity: (if $affinity == "" then null else $affinity end),
		 udp_payload_bytes: $udp_len, udp_frame_bytes: ($udp_len + 42 + 4),
		 tcp_a_to_b: fig($ab_off; $ab_on; "bit/s"),
		 tcp_b_to_a: fig($ba_off; $ba_on; "bit/s"),
		 udp_pps: (fig($udp_off; $udp_on; "packets/s delivered") +
			{sent_off_median: ($sent_off | median), sent_on_median: ($sent_on | median)}),
		 tapflow: {cpu_ms: ($cpu_ns / 1e6), wall_s: ($wall_ns / 1e9),
			   cpu_percent_of_one_core: (100 * $cpu_ns / $wall_ns),
			   max_rss_kib: $hwm, end_rss_kib: $rss},
		 insitu: $insitu,
		 other_cpus_busy_percent: {per_block: $busy, median: ($busy | median),
					   max: ($busy | max), redo_above: $busy_max},
		 discarded_rounds: $discarded,
		 elapsed_s: $elapsed}') || die "cannot build the result"

	if [ "$JSON" -eq 1 ]; then
		echo "$RESULT"
		return
	fi
	q() { jq -r "$1" <<<"$RESULT"; }
	echo "throughput: veth -> bridge -> veth, tapflow on br0+pa+pb ($(q .attach_mode)) vs off,"
	echo "iperf3 client,server on CPUs ${AFFINITY:-(unpinned)}"
	echo "median of $ROUNDS rounds of $SECS s each, ABBA order; ratio = median of per-round on/off"
	printf '%-26s %10s %10s %7s  %s\n' measurement off on ratio "(rounds: min-max)"
	row() {	# LABEL KEY SCALE FORMAT
		printf "%-26s $4 $4 %7.3f  (%.3f-%.3f)\n" "$1" \
			"$(q ".$2.off_median / $3")" "$(q ".$2.on_median / $3")" \
			"$(q ".$2.ratio")" "$(q ".$2.ratio_min")" "$(q ".$2.ratio_max")"
	}
	row "TCP A->B (Gbit/s)" tcp_a_to_b 1e9 %10.2f
	row "TCP B->A (Gbit/s)" tcp_b_to_a 1e9 %10.2f
	row "UDP $(q .udp_frame_bytes) B frames (kpps)" udp_pps 1e3 %10.1f
	printf 'tapflow: %.0f ms CPU in %.0f s attached (%.2f%% of a core), RSS max %d KiB, %d KiB at the end\n' \
		"$(q .tapflow.cpu_ms)" "$(q .tapflow.wall_s)" \
		"$(q .tapflow.cpu_percent_of_one_core)" "$(q .tapflow.max_rss_kib)" \
		"$(q .tapflow.end_rss_kib)"
	printf 'other CPUs (not running iperf3) busy during the blocks: median %s%%, max %s%%; %s round(s) discarded and run again\n' \
		"$(q .other_cpus_busy_percent.median)" "$(q .other_cpus_busy_percent.max)" \
		"$(q '.discarded_rounds | length')"
	if [ "$INSITU_JSON" != null ]; then
		echo "in situ, BPF run-time stats on: $(q '.insitu | map("\(.name) \(.ns_per_run) ns/run") | join(", ")')"
	fi
}

main
