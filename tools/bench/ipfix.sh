#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# ipfix.sh: what IPFIX export costs, side by side with softflowd doing the
# same job in the same rounds.
#
# The topology of capture.sh: namespaces A and B hang on veths whose other
# ends, pa and pb, are ports of bridge br0 in namespace BR: the path of a
# VM's frames through its tap and bridge. Three states in ABBA rounds (off
# softflowd tapflow / tapflow softflowd off):
#   off        nothing exporting;
#   softflowd  softflowd -i br0 -v 10 -n 127.0.0.1:4739 -T full, every
#              timeout 2 s but maxlife 5 s, expiry checked every second;
#   tapflow    tapflow agent --no-libvirt --iface br0 --iface pa --iface pb
#              --ipfix udp://127.0.0.1:4740 --idle-timeout 2
#              --active-timeout 5 --prometheus 127.0.0.1:9561 (the
#              interfaces the other scripts trace); left out, saying so, if
#              this tapflow has no --ipfix.
# Each exporter sends to an nfcapd of its own on BR's loopback; both are
# started afresh for each block, the exporter and its collector pinned to
# the CPUs the traffic does not use. Per block:
#   bulk   iperf3 TCP A->B and B->A, -t seconds each, both ends on CPU 0:
#          throughput, and CPU-seconds per GB received;
#   flows  flowgen sends --flow-rate distinct UDP flows a second (one 64-byte
#          frame each) from A to B for --flow-seconds, then 4000 frames of one
#          other flow (see "push" below), then the block waits --drain
#          seconds for the flows to end and be exported: the records the
#          exporter counts as sent, the records the collector wrote (nfdump
#          on its files), the flows they cover, CPU per record.
# CPU of a window: the run time of the processes that carry the traffic
# (the iperf3 client, from its own getrusage, and server; flowgen's senders,
# from their own clock, and receiver; ksoftirqd of the traffic's CPUs),
# where the kernel charges the softirq work of the path (the bridge, the BPF
# programs, AF_PACKET's copies), plus the exporter's run time; the
# collector's run time apart; the busy time of all CPUs (/proc/stat) less
# the collector's as a cross-check. Against off: medians of the per-round
# differences and ratios. A round during which other work kept the other
# CPUs busy (beyond the exporter and the collector) is run again.
#
#   tools/bench/ipfix.sh [-t SEC] [-r ROUNDS] [--flow-rate N] [--flow-seconds S]
#                        [--drain S] [--softflowd-iface IF] [--affinity C,S]
#                        [--attach auto|tcx|clsact] [--busy-max PCT]
#                        [--max-redo N] [--json]
#   tools/bench/ipfix.sh --table FILE     the table of a --json result again
#
# Needs root, iperf3, jq, iproute2, curl, taskset, softflowd (softflowctl),
# nfcapd and nfdump (Debian's nfdump), a built .output/tapflow (make) and
# .output/bench/flowgen (make -C tools/bench). Everything it creates
# (namespaces, processes, the collectors' files) is removed on exit, also on
# failure or Ctrl-C.
set -uo pipefail

PROG=ipfix.sh
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$HERE/lib.sh"
TAPFLOW=${TAPFLOW:-$ROOT/.output/tapflow}
FLOWGEN=${FLOWGEN:-$ROOT/.output/bench/flowgen}

# Defaults of -t, --affinity, --attach, --busy-max, --max-redo: lib.sh.
# 3 rounds of about 50 s: the whole script stays under 3 minutes.
ROUNDS=3
FLOW_RATE=5000
FLOW_SECS=5
DRAIN=4
SF_IFACE=br0
TABLE=
# Both exporters end a flow after 2 s without packets and export a long one
# every 5 s, so that the short flows are exported within the window.
IDLE=2
ACTIVE=5

own_opt() {
	case $1 in
	--flow-rate) FLOW_RATE=${2:-} ;;
	--flow-seconds) FLOW_SECS=${2:-} ;;
	--drain) DRAIN=${2:-} ;;
	--softflowd-iface) SF_IFACE=${2:-} ;;
	--table) TABLE=${2:-} ;;
	*) return 0 ;;
	esac
	return 2
}
parse_opts "$@"

# The table of a result (ipfix.jq, which run.sh's summary uses too).
table() {
	jq -r -L "$HERE" 'include "ipfix"; ipfix_table' "$1"
}
if [ -n "$TABLE" ]; then
	table "$TABLE" || die "no ipfix.sh result in $TABLE"
	exit 0
fi

check_common_opts
for v in "$FLOW_RATE" "$FLOW_SECS" "$DRAIN"; do
	[[ $v =~ ^[1-9][0-9]*$ ]] ||
		{ echo "$PROG: --flow-rate, --flow-seconds and --drain take positive integers" >&2; exit 2; }
done
[[ $SF_IFACE =~ ^(br0|pa|pb)$ ]] ||
	{ echo "$PROG: --softflowd-iface: br0, pa or pb" >&2; exit 2; }
need_tools iperf3 jq ip curl taskset softflowd softflowctl nfcapd nfdump
[ -x "$FLOWGEN" ] || die "$FLOWGEN not built (run make -C tools/bench)"

# The exporters and collectors run on the CPUs the traffic leaves free, so
# that the traffic's CPUs show the path's cost and the processes their own.
[ -n "$AFFINITY" ] || die "needs the traffic pinned (--affinity C,S)"
TRAFFIC_CPUS=$AFFINITY
OTHER_CPUS=$(awk -v skip="$AFFINITY" 'BEGIN { n = split(skip, a, ","); for (i = 1; i <= n; i++) s[a[i]] = 1 }
	/^cpu[0-9]/ { c = substr($1, 4); if (!(c in s)) l = l (l == "" ? "" : ",") c }
	END { print l }' /proc/stat)
[ -n "$OTHER_CPUS" ] || die "needs a CPU that the traffic (--affinity $AFFINITY) does not use"
HZ=$(getconf CLK_TCK)
# The CPU figures are the run time of the processes that carry the traffic,
# precise and blind to other work: without CONFIG_IRQ_TIME_ACCOUNTING the
# kernel charges softirq time (the bridge path, the BPF programs, AF_PACKET's
# copies) to the task it runs in. With it, softirq and irq time are apart,
# and the traffic CPUs' irq and softirq jiffies are added instead.
IRQ_ACCT=0
{ zcat /proc/config.gz 2>/dev/null || cat "/boot/config-$(uname -r)" 2>/dev/null; } |
	grep -q '^CONFIG_IRQ_TIME_ACCOUNTING=y' && IRQ_ACCT=1
KSOFTIRQD=()
for c in $(tr , '\n' <<<"$TRAFFIC_CPUS" | sort -u); do
	p=$(pgrep -x "ksoftirqd/$c") || die "no ksoftirqd/$c"
	KSOFTIRQD+=("$p")
done

# The tapflow contender needs an agent that exports IPFIX.
TF_SKIPPED=
if ! "$TAPFLOW" agent --help 2>&1 | grep -q -- --ipfix; then
	TF_SKIPPED="skipped: this tapflow has no --ipfix"
	echo "$PROG: tapflow $TF_SKIPPED" >&2
fi

# Everything it creates is removed at exit (lib.sh: bench_init, cleanup).
bench_init tfx
NS_A=$ID-a NS_B=$ID-b NS_BR=$ID-br
# RFC 2544 benchmarking range, inside our namespaces only (capture.sh has
# 198.18.4.0/24); flowgen's flows from .16, its push from .15.
IP_A=198.18.5.1 IP_B=198.18.5.2
GEN_SRC=198.18.5.16 PUSH_SRC=198.18.5.15 GEN_PORT=9
PORT=5201
IPERF_NS=$NS_A IPERF_DST=$IP_B
TRACED=br0,pa,pb
# The collectors and the agent's /metrics, on BR's loopback.
SF_PORT=4739 TF_PORT=4740 PROM_PORT=9561
# softflowd reads through libpcap's TPACKET_V3 ring, whose blocks (256 KiB,
# ~1800 frames of 64 bytes) reach it only once full: the last flows of a
# window would wait for traffic that does not come. PUSH_FRAMES of one
# flow of their own fill the block; the records of that flow are not
# counted. Every state sends them, so the windows carry the same work.
PUSH_FRAMES=4000
# softflowd's flow table, far above the flows alive at once (rate x ~3 s);
# tapflow's default map (65 536) holds rate x ~3 s x 2 ports up to 10 000
# flows a second, and is made bigger only beyond.
SF_MAX_FLOWS=262144
TF_MAX_FLOWS=()
[ $((FLOW_RATE * 8)) -gt 65536 ] && TF_MAX_FLOWS=(--max-flows $((FLOW_RATE * 8)))
# The collectors' socket buffer: softflowd sends its expired flows in bursts
# of hundreds of datagrams, which the default buffer drops.
COL_RCVBUF=4194304

STATES=(off softflowd)
[ -z "$TF_SKIPPED" ] && STATES+=(tapflow)

# ---- topology (as capture.sh's), flowgen's neighbours and receiver ----

setup() {
	bridge_pair_up
	pin_neighbours
	wait_ports_up "$NS_BR" 2
	iperf_server "$NS_B" "$IP_B"
	GEN_CPU_S=${AFFINITY%,*} GEN_CPU_R=${AFFINITY#*,}
	# flowgen's datagrams end in a socket: no ICMP back, no flows of it.
	bg ip netns exec "$NS_B" "$FLOWGEN" recv "$IP_B" "$GEN_PORT" --cpu "$GEN_CPU_R" \
		>"$WORK/recv.json" 2>"$WORK/recv.err"
	RECV_PID=$BG_PID
	for _ in $(seq 50); do
		grep -q receiving "$WORK/recv.err" && return 0
		kill -0 "$RECV_PID" 2>/dev/null || die "flowgen recv failed: $(cat "$WORK/recv.err")"
		sleep 0.1
	done
	die "flowgen recv did not start"
}

# ---- CPU ----

# "user system irq softirq all-busy" jiffies of the traffic's CPUs, and
# the busy time (user, nice, system, irq, softirq; not steal) of all CPUs.
cpu_jiffies() {
	awk -v cpus="$TRAFFIC_CPUS" '
		BEGIN { n = split(cpus, a, ","); for (i = 1; i <= n; i++) s["cpu" a[i]] = 1 }
		/^cpu[0-9]/ {
			all += $2 + $3 + $4 + $7 + $8
			if ($1 in s) { u += $2 + $3; sys += $4; irq += $7; si += $8 }
		}
		END { print u + 0, sys + 0, irq + 0, si + 0, all + 0 }' /proc/stat
}

# Run time so far (ns) of what carries the traffic between windows' clients:
# the iperf3 server, flowgen's receiver and the traffic CPUs' ksoftirqd.
traffic_ns() {
	local p sum=0
	for p in "$SERVER_PID" "$RECV_PID" "${KSOFTIRQD[@]}"; do
		sum=$((sum + $(cpu_ns "$p")))
	done
	echo "$sum"
}

# Run time of a process so far (ns), 0 for none.
pcpu() {
	if [ -n "$1" ]; then cpu_ns "$1"; else echo 0; fi
}

# win_begin, win_end CLIENT_NS: one measurement window, whose client (the
# iperf3 client, flowgen's senders) ran CLIENT_NS; WIN (JSON): its wall
# time, the jiffies of cpu_jiffies, the run time of the traffic's
# processes (traffic_ns and the client), of the exporter and of the
# collector, and the window's CPU-seconds: the traffic's and the
# exporter's (cpu_s), all CPUs' less the collector's (all_cpu_s). With
# IRQ_ACCT (softirq time not charged to tasks) the traffic CPUs' irq and
# softirq jiffies are added to cpu_s.
win_begin() {
	W0_E=$(pcpu "$EXP_PID")
	W0_C=$(pcpu "$COL_PID")
	W0_P=$(traffic_ns)
	W0_J=$(cpu_jiffies)
	W0_T=$(date +%s%N)
}
win_end() {
	local t1 j1 e1 c1 p1
	t1=$(date +%s%N)
	j1=$(cpu_jiffies)
	p1=$(traffic_ns)
	e1=$(pcpu "$EXP_PID")
	c1=$(pcpu "$COL_PID")
	WIN=$(jq -nc --argjson w $((t1 - W0_T)) --argjson e $((e1 - W0_E)) --argjson c $((c1 - W0_C)) \
		--argjson p $((p1 - W0_P)) --argjson client "$1" --argjson irq_acct "$IRQ_ACCT" \
		--argjson j0 "[${W0_J// /,}]" --argjson j1 "[${j1// /,}]" --argjson hz "$HZ" '
		[range(5)] | map($j1[.] - $j0[.]) as $d |
		{wall_ns: $w, user_j: $d[0], system_j: $d[1], irq_j: $d[2], softirq_j: $d[3],
		 all_busy_j: $d[4], hz: $hz, client_ns: $client, traffic_ns: ($p + $client),
		 exporter_ns: $e, collector_ns: $c,
		 cpu_s: (($p + $client + $e) / 1e9 + (if $irq_acct == 1 then ($d[2] + $d[3]) / $hz
			else 0 end)),
		 all_cpu_s: ($d[4] / $hz - $c / 1e9)}')
}

# The busy share (%) of the other CPUs since other_cpu_jiffies said J0,
# less NS nanoseconds of the exporter and collector: other work.
other_busy_since() {
	awk -v a="$1" -v b="$(other_cpu_jiffies)" -v own="$2" -v hz="$HZ" 'BEGIN {
		split(a, x); split(b, y); t = y[2] - x[2]
		u = y[1] - x[1] - own * hz / 1e9; if (u < 0) u = 0
		printf "%.1f", (t > 0 ? 100 * u / t : 0) }'
}

# ---- exporters and collectors ----

N_BLK=0
EXP_PID=
COL_PID=
# collector_start PORT: an nfcapd on BR's loopback, writing into a new
# directory COL_DIR; returns once it listens.
collector_start() {
	local port=$1 i
	COL_DIR=$WORK/nf.$N_BLK
	mkdir "$COL_DIR" || die "cannot create $COL_DIR"
	bg ip netns exec "$NS_BR" taskset -c "$OTHER_CPUS" nfcapd -w "$COL_DIR" -b 127.0.0.1 \
		-p "$port" -B "$COL_RCVBUF" >"$COL_DIR.log" 2>&1
	COL_PID=$BG_PID
	for i in $(seq 100); do
		ip netns exec "$NS_BR" ss -Hlun "sport = :$port" 2>/dev/null | grep -q . && return 0
		kill -0 "$COL_PID" 2>/dev/null || die "nfcapd failed: $(tail -c 300 "$COL_DIR.log")"
		sleep 0.1
	done
	die "nfcapd does not listen on 127.0.0.1:$port"
}

# collector_stop: nfcapd writes its file on SIGTERM. COL_STATS (JSON): the
# records of flowgen's flows in its files (push excluded), the distinct
# flows they cover, all records, and what nfcapd says it took in.
collector_stop() {
	local rc recs flows total seqerr
	kill -TERM "$COL_PID"
	bg_wait "$COL_PID"
	rc=$?
	[ $rc -eq 0 ] || die "nfcapd exited $rc: $(tail -c 300 "$COL_DIR.log")"
	COL_PID=
	# csv: ts,te,td,sa,da,sp,dp,pr,...
	read -r recs flows < <(nfdump -R "$COL_DIR" -q -o csv \
		"proto udp and dst port $GEN_PORT and not src ip $PUSH_SRC" 2>/dev/null |
		awk -F, 'NF > 8 { n++; k = $4 ":" $6; if (!(k in s)) { s[k] = 1; d++ } }
			END { print n + 0, d + 0 }')
	total=$(nfdump -R "$COL_DIR" -I 2>/dev/null | awk '/^Flows:/ { print $2 }')
	seqerr=$(sed -n 's/.*Sequence Errors: \([0-9]*\).*/\1/p' "$COL_DIR.log" | tail -1)
	COL_STATS=$(jq -nc --argjson r "${recs:-0}" --argjson f "${flows:-0}" \
		--argjson t "${total:-0}" --argjson s "${seqerr:-null}" \
		'{records: $r, flows: $f, records_all: $t, sequence_errors: $s}')
	rm -rf "$COL_DIR" "$COL_DIR.log"
}

SF_CTL=
# exporter_start STATE: softflowd or the tapflow agent in BR, exporting to
# the collector on PORT; returns once it captures (softflowd: its control
# socket answers; tapflow: /metrics says the three interfaces are attached).
exporter_start() {
	local st=$1 i log=$WORK/$1.$N_BLK
	if [ "$st" = softflowd ]; then
		SF_CTL=$WORK/sf.$N_BLK.ctl
		bg ip netns exec "$NS_BR" taskset -c "$OTHER_CPUS" softflowd -d -i "$SF_IFACE" \
			-v 10 -n "127.0.0.1:$SF_PORT" -T full -m "$SF_MAX_FLOWS" \
			-t tcp="$IDLE" -t tcp.rst="$IDLE" -t tcp.fin="$IDLE" -t udp="$IDLE" \
			-t icmp="$IDLE" -t general="$IDLE" -t maxlife="$ACTIVE" -t expint=1 \
			-p "$WORK/sf.$N_BLK.pid" -c "$SF_CTL" >"$log.out" 2>&1
		EXP_PID=$BG_PID
		for i in $(seq 100); do
			softflowctl -c "$SF_CTL" statistics >/dev/null 2>&1 && return 0
			kill -0 "$EXP_PID" 2>/dev/null || die "softflowd failed: $(tail -c 300 "$log.out")"
			sleep 0.1
		done
		die "softflowd did not start in 10 s"
	fi
	local args=() list
	IFS=, read -r -a list <<<"$TRACED"
	for i in "${list[@]}"; do args+=(--iface "$i"); done
	bg taskset -c "$OTHER_CPUS" "$TAPFLOW" --netns "$NS_BR" agent --no-libvirt "${args[@]}" \
		--attach "$ATTACH" --ipfix "udp://127.0.0.1:$TF_PORT" --idle-timeout "$IDLE" \
		--active-timeout "$ACTIVE" "${TF_MAX_FLOWS[@]}" --prometheus "127.0.0.1:$PROM_PORT" \
		>"$log.out" 2>"$log.err"
	EXP_PID=$BG_PID
	for i in $(seq 150); do
		kill -0 "$EXP_PID" 2>/dev/null ||
			die "tapflow agent exited at start: $(head -c 400 "$log.err")"
		scrape 2>/dev/null && grep -q "^tapflow_interfaces_attached 3\$" "$WORK/metrics" &&
			return 0
		sleep 0.1
	done
	die "tapflow agent was not attached after 15 s"
}

# /metrics of the agent into $WORK/metrics.
scrape() {
	ip netns exec "$NS_BR" curl -sf -m 5 -o "$WORK/metrics" "http://127.0.0.1:$PROM_PORT/metrics"
}

# exporter_counts STATE: COUNTS, "records lost" as the exporter counts them
# (softflowd: "Flows exported: N (R records)", lost: libpcap's drops;
# tapflow: tapflow_ipfix_records_total and tapflow_ipfix_records_lost_total,
# summed over destinations); "0 0" for off.
exporter_counts() {
	COUNTS="0 0"
	case $1 in
	softflowd)
		softflowctl -c "$SF_CTL" statistics >"$WORK/sf.stats" 2>&1 ||
			die "softflowctl statistics failed: $(head -c 300 "$WORK/sf.stats")"
		COUNTS=$(awk '/^Flows exported:/ { r = $4; sub(/^\(/, "", r) }
			/^Packets dropped by libpcap:/ { l = $NF }
			END { print r + 0, l + 0 }' "$WORK/sf.stats") ;;
	tapflow)
		scrape || die "GET /metrics of the agent failed"
		COUNTS=$(awk '$1 ~ /^tapflow_ipfix_records_total([{]|$)/ { r += $NF }
			$1 ~ /^tapflow_ipfix_records_lost_total([{]|$)/ { l += $NF }
			END { print r + 0, l + 0 }' "$WORK/metrics") ;;
	esac
}

# exporter_stop STATE: EXP_RSS (JSON: end and peak, KiB), then stop it.
exporter_stop() {
	local st=$1 rc log=$WORK/$1.$N_BLK
	EXP_RSS=$(awk '/^VmHWM:/ { h = $2 } /^VmRSS:/ { r = $2 }
		END { printf "{\"rss_kib\":%d,\"hwm_kib\":%d}", r, h }' "/proc/$EXP_PID/status")
	kill -TERM "$EXP_PID"
	bg_wait "$EXP_PID"
	rc=$?
	EXP_PID=
	if [ "$st" = softflowd ]; then
		# softflowd 1.1.0 dies of SIGTERM (143) rather than exiting 0.
		[ $rc -eq 0 ] || [ $rc -eq 143 ] || die "softflowd exited $rc: $(tail -c 300 "$log.out")"
	else
		[ $rc -eq 0 ] || die "tapflow agent exited $rc: $(tail -c 400 "$log.err")"
	fi
}

# ---- one block ----

N_GEN=0
# flows_window: flowgen's flows, the push, the drain; GEN and PUSH (JSON):
# flowgen's results.
flows_window() {
	local n=$((++N_GEN)) nflows=$((FLOW_RATE * FLOW_SECS))
	# A frame every 1/rate s in batches of a millisecond's frames.
	bg ip netns exec "$NS_A" "$FLOWGEN" send eth0 "$MAC_B" "$GEN_SRC" "$IP_B" "$GEN_PORT" \
		"$nflows" 1 --pps "$FLOW_RATE" --batch $(((FLOW_RATE + 999) / 1000)) \
		--seconds $((FLOW_SECS + 2)) --cpu "$GEN_CPU_S" >"$WORK/gen.$n.json" 2>"$WORK/gen.$n.err"
	bg_wait "$BG_PID" || die "flowgen send failed: $(cat "$WORK/gen.$n.err")"
	bg ip netns exec "$NS_A" "$FLOWGEN" send eth0 "$MAC_B" "$PUSH_SRC" "$IP_B" "$GEN_PORT" \
		1 "$PUSH_FRAMES" --cpu "$GEN_CPU_S" >"$WORK/push.$n.json" 2>"$WORK/push.$n.err"
	bg_wait "$BG_PID" || die "flowgen send (push) failed: $(cat "$WORK/push.$n.err")"
	bg sleep "$DRAIN"
	bg_wait "$BG_PID"
	GEN=$(cat "$WORK/gen.$n.json") PUSH=$(cat "$WORK/push.$n.json")
}

# The iperf3 client's run time (ns) in IPERF_OUT's test, from its own
# getrusage (cpu_utilization_percent over the test's seconds): the process
# is gone by now.
iperf_client_ns() {
	jq '.end.cpu_utilization_percent.host_total / 100 * .end.sum_sent.seconds * 1e9 | round' \
		"$IPERF_OUT"
}

declare -A BLOCK
block() {
	local st=$1 r=$2 j0 own0 ab ba wab wba wfl c0 c1 own1 line port=$SF_PORT
	N_BLK=$((N_BLK + 1))
	EXP_PID='' COL_PID=''
	if [ "$st" != off ]; then
		[ "$st" = tapflow ] && port=$TF_PORT
		collector_start "$port"
		exporter_start "$st"
	fi
	j0=$(other_cpu_jiffies)
	own0=$(($(pcpu "$EXP_PID") + $(pcpu "$COL_PID")))

	win_begin
	tcp_bps
	win_end "$(iperf_client_ns)"
	ab=$(jq -c --argjson bps "$BPS" '{bps: $bps, bytes: .end.sum_received.bytes}' "$IPERF_OUT")
	wab=$WIN
	win_begin
	tcp_bps -R
	win_end "$(iperf_client_ns)"
	ba=$(jq -c --argjson bps "$BPS" '{bps: $bps, bytes: .end.sum_received.bytes}' "$IPERF_OUT")
	wba=$WIN

	exporter_counts "$st"
	c0=$COUNTS
	win_begin
	flows_window
	win_end "$(jq -n --argjson g "$GEN" --argjson p "$PUSH" '($g.cpu_s + $p.cpu_s) * 1e9 | round')"
	wfl=$WIN
	exporter_counts "$st"
	c1=$COUNTS

	own1=$(($(pcpu "$EXP_PID") + $(pcpu "$COL_PID")))
	BLOCK_BUSY[$st]=$(other_busy_since "$j0" $((own1 - own0)))
	EXP_RSS=null COL_STATS=null
	if [ "$st" != off ]; then
		collector_stop
		exporter_stop "$st"
	fi
	BLOCK[$st]=$(jq -nc --arg st "$st" --argjson r "$r" --argjson ab "$ab" --argjson ba "$ba" \
		--argjson wab "$wab" --argjson wba "$wba" --argjson wfl "$wfl" --argjson gen "$GEN" \
		--argjson c0 "[${c0// /,}]" --argjson c1 "[${c1// /,}]" --argjson col "$COL_STATS" \
		--argjson rss "$EXP_RSS" --argjson busy "${BLOCK_BUSY[$st]}" '
		{state: $st, round: $r,
		 tcp_ab: ($ab + {win: $wab}), tcp_ba: ($ba + {win: $wba}),
		 flows: {gen: $gen, win: $wfl,
			 exported_records: ($c1[0] - $c0[0]), exporter_lost: ($c1[1] - $c0[1]),
			 collector: $col},
		 exporter: $rss, other_cpus_busy_percent: $busy}')
	line=$(jq -r '"round \(.round) \(.state | . + " " * (10 - length))" +
		"  TCP \(.tcp_ab.bps / 1e9 * 100 | round / 100)/\(.tcp_ba.bps / 1e9 * 100 | round / 100) Gbit/s" +
		" \((.tcp_ab.win.cpu_s + .tcp_ba.win.cpu_s) / ((.tcp_ab.bytes + .tcp_ba.bytes) / 1e9) * 1000 | round / 1000) CPU-s/GB" +
		"; flows \(.flows.gen.sent) sent, \(.flows.win.cpu_s * 1000 | round / 1000) CPU-s" +
		(if .flows.collector then
			", \(.flows.exported_records) records exported, \(.flows.collector.records) received" +
			" (\(.flows.collector.flows) flows), exporter \(.exporter.rss_kib) KiB"
		 else "" end)' <<<"${BLOCK[$st]}")
	log "$line; other CPUs ${BLOCK_BUSY[$st]}% busy"
}

KEPT=
keep_block() {
	KEPT+="${BLOCK[$1]}"$'\n'
}

main() {
	local r t0=$SECONDS blocks
	setup
	log "topology: $NS_A --veth-- [$NS_BR: pa, br0, pb] --veth-- $NS_B; states: ${STATES[*]}" \
		"(softflowd -i $SF_IFACE; tapflow agent --iface ${TRACED//,/ --iface }); $ROUNDS rounds:" \
		"TCP both ways ${SECS} s, $FLOW_RATE flows/s for $FLOW_SECS s + $DRAIN s;" \
		"exporters and collectors on CPUs $OTHER_CPUS"
	[ -n "$TF_SKIPPED" ] && log "tapflow: $TF_SKIPPED"
	for ((r = 1; r <= ROUNDS; r++)); do
		abba_round "$r"
	done
	blocks=$(printf '%s' "$KEPT" | jq -sc .) || die "cannot collect the blocks"

	RESULT=$(jq -n --argjson blocks "$blocks" --argjson secs "$SECS" --argjson rounds "$ROUNDS" \
		--arg affinity "$AFFINITY" --arg others "$OTHER_CPUS" --arg kernel "$(uname -r)" \
		--argjson rate "$FLOW_RATE" --argjson fsecs "$FLOW_SECS" --argjson drain "$DRAIN" \
		--argjson idle "$IDLE" --argjson active "$ACTIVE" --argjson push "$PUSH_FRAMES" \
		--arg sf_iface "$SF_IFACE" --arg traced "$TRACED" --arg skipped "$TF_SKIPPED" \
		--arg sf_ver "$(softflowd -h 2>&1 | sed -n 's/.*softflowd version \([^ ]*\).*/\1/p' | head -1)" \
		--arg nf_ver "$(nfcapd -V 2>&1 | head -1)" --argjson rcvbuf "$COL_RCVBUF" \
		--argjson busy "$(busy_json)" --argjson elapsed "$((SECONDS - t0))" \
		--arg order "$(IFS=,; echo "${STATES[*]}")" --argjson irq_acct "$IRQ_ACCT" "$JQ_FIG"'
		def gb($b): ($b.tcp_ab.bytes + $b.tcp_ba.bytes) / 1e9;
		def tcp_s($b; f): ($b.tcp_ab.win | f) + ($b.tcp_ba.win | f);
		def per_gb($b; f): tcp_s($b; f) / gb($b);
		def recs($b): $b.flows.collector.records;
		def perrec($x; $n): if $n > 0 then $x / $n else null end;
		def med: map(select(. != null)) | if length > 0 then median else null end;
		($blocks | map(select(.state == "off")) | sort_by(.round)) as $off |
		($blocks | map(.state) | unique | map(select(. != "off"))) as $contenders |
		{type: "ipfix", kernel: $kernel, seconds: $secs, rounds: $rounds,
		 order: "ABBA (\($order) / reversed / ...)",
		 iperf3_affinity: $affinity, exporter_cpus: $others,
		 flow_rate: $rate, flow_seconds: $fsecs, drain_s: $drain, push_frames: $push,
		 idle_timeout_s: $idle, active_timeout_s: $active,
		 irq_time_accounting: ($irq_acct == 1),
		 collector: {program: $nf_ver, rcvbuf_bytes: $rcvbuf},
		 tapflow_skipped: (if $skipped == "" then null else $skipped end),
		 states: ({off: "nothing exporting",
			   softflowd: ("softflowd \($sf_ver) -i \($sf_iface) -v 10 -n 127.0.0.1:PORT -T full " +
				"-m 262144 -t {tcp,tcp.rst,tcp.fin,udp,icmp,general}=\($idle) -t maxlife=\($active) " +
				"-t expint=1")} +
			  (if $skipped == "" then
				{tapflow: ("tapflow agent --no-libvirt " +
					([$traced | split(",")[] | "--iface \(.)"] | join(" ")) +
					" --ipfix udp://127.0.0.1:PORT2 --idle-timeout \($idle) " +
					"--active-timeout \($active) --prometheus 127.0.0.1:PORT3")}
			   else {} end)),
		 off: {tcp_ab_bps: ($off | map(.tcp_ab.bps) | median),
		       tcp_ba_bps: ($off | map(.tcp_ba.bps) | median),
		       cpu_s_per_gb: ($off | map(per_gb(.; .cpu_s)) | median),
		       flows_cpu_s: ($off | map(.flows.win.cpu_s) | median),
		       flows_sent: ($off | map(.flows.gen.sent) | median)},
		 contenders: ($contenders | map(. as $c |
			($blocks | map(select(.state == $c)) | sort_by(.round)) as $on |
			# Rounds pair up by index: both lists are sorted by round.
			[range($on | length)] as $i |
			{key: $c, value: {
			 tcp_ab: fig($off | map(.tcp_ab.bps); $on | map(.tcp_ab.bps); "bit/s"),
			 tcp_ba: fig($off | map(.tcp_ba.bps); $on | map(.tcp_ba.bps); "bit/s"),
			 cpu_s_per_gb: ($on | map(per_gb(.; .cpu_s)) | median),
			 added_cpu_s_per_gb: ($i | map(per_gb($on[.]; .cpu_s) - per_gb($off[.]; .cpu_s)) | median),
			 added_all_cpu_s_per_gb: ($i | map(per_gb($on[.]; .all_cpu_s) -
				per_gb($off[.]; .all_cpu_s)) | median),
			 exporter_cpu_s_per_gb: ($on | map(per_gb(.; .exporter_ns / 1e9)) | median),
			 collector_cpu_s_per_gb: ($on | map(per_gb(.; .collector_ns / 1e9)) | median),
			 flows: {
			   sent: ($on | map(.flows.gen.sent) | median),
			   seconds: ($on | map(.flows.gen.seconds) | median),
			   exported_records: ($on | map(.flows.exported_records) | median),
			   exporter_lost: ($on | map(.flows.exporter_lost) | add),
			   received_records: ($on | map(recs(.)) | median),
			   received_flows: ($on | map(.flows.collector.flows) | median),
			   records_per_flow: ($on | map(perrec(recs(.); .flows.gen.sent)) | med),
			   flows_covered: ($on | map(perrec(.flows.collector.flows; .flows.gen.sent)) | med),
			   exported_per_s: ($on | map(.flows.exported_records / .flows.gen.seconds) | median),
			   received_per_s: ($on | map(recs(.) / .flows.gen.seconds) | median),
			   sequence_errors: ($on | map(.flows.collector.sequence_errors // 0) | add),
			   added_cpu_s: ($i | map($on[.].flows.win.cpu_s - $off[.].flows.win.cpu_s) | median),
			   added_cpu_us_per_record: ($i | map(perrec(($on[.].flows.win.cpu_s -
				$off[.].flows.win.cpu_s) * 1e6; recs($on[.]))) | med),
			   added_cpu_us_per_flow: ($i | map(perrec(($on[.].flows.win.cpu_s -
				$off[.].flows.win.cpu_s) * 1e6; $on[.].flows.gen.sent)) | med),
			   added_all_cpu_us_per_record: ($i | map(perrec(($on[.].flows.win.all_cpu_s -
				$off[.].flows.win.all_cpu_s) * 1e6; recs($on[.]))) | med),
			   exporter_cpu_us_per_record: ($on | map(perrec(.flows.win.exporter_ns / 1e3;
				recs(.))) | med),
			   collector_cpu_us_per_record: ($on | map(perrec(.flows.win.collector_ns / 1e3;
				recs(.))) | med)},
			 exporter: {rss_kib: ($on | map(.exporter.rss_kib) | max),
				    hwm_kib: ($on | map(.exporter.hwm_kib) | max)}}}) | from_entries),
		 blocks: $blocks}
		+ $busy + {elapsed_s: $elapsed}') || die "cannot build the result"

	if [ "$JSON" -eq 1 ]; then
		echo "$RESULT"
		return
	fi
	echo "$RESULT" >"$WORK/result.json"
	table "$WORK/result.json"
}

main
