#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# agent.sh: what `tapflow agent` costs with 512 interfaces of 10 flow series.
#
#   N veth pairs (default 512): the ends ta<i> in a namespace of their own,
#   addressed in /30s of 198.18.128.0/17, the far ends tp<i> in another
#   namespace that drops UDP (nothing answers). `tapflow agent --no-libvirt
#   --iface 'ta*' --flow-metrics 10 --idle-timeout 3600 --prometheus
#   127.0.0.1:9560` in the first; 12 UDP flows from each ta<i> (a datagram
#   to each of 12 ports of its far end) give every interface 10 flow series
#   and "other": the exposition must hold N x 11 x 2 (directions) series of
#   each flow family, and the script checks that it does.
#   scrape   GET /metrics with curl, plain and gzip in turn (R of each):
#            time_total, median and p90; the exposition's size.
#   rss      the agent's VmRSS every 20 scrapes, up to 200.
#   idle     the agent's CPU time (utime + stime, /proc/PID/stat) over S
#            seconds without traffic, scraped every 15 s (Prometheus'
#            default scrape interval).
#   traffic  the same under iperf3 UDP at a fixed packet rate through K pairs.
#   stats    an idle `tapflow stats` on the same interfaces over S seconds,
#            for the ratio agent / stats.
#   Then scrape, rss, idle and stats once more with the agent on ta0 alone.
#
#   tools/bench/agent.sh [--json] [-n IFACES] [-r SCRAPES] [--rss-scrapes N]
#                        [--seconds S] [--scrape-interval S] [--traffic-pairs K]
#                        [--pps P] [--skip-one]
#   tools/bench/agent.sh --table FILE    the table of a --json result again
#
# Needs root, iperf3, curl, jq, iptables and python3. Builds nothing: make first.
# shellcheck disable=SC2317 # functions called by traps
set -uo pipefail

PROG=agent.sh
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TAPFLOW=${TAPFLOW:-$ROOT/.output/tapflow}
# shellcheck source=tools/bench/lib.sh
. "$HERE/lib.sh"

NIF=512
FLOWS=12
FLOW_METRICS=10
ROUNDS=20
RSS_SCRAPES=200
SECS=60
EVERY=15
PAIRS=4
PPS=2500
ONE=1
TABLE=
# The agent listens in the run's own namespace: no other service can hold the port.
PORT=9560
# iperf3's datagrams: payload bytes (+ 8 UDP + 20 IPv4 + 14 Ethernet on the wire).
PAYLOAD=1000
IPERF_PORT=5201
while [ $# -gt 0 ]; do
	case $1 in
	--json) JSON=1 ;;
	-n) NIF=${2:-}; shift ;;
	-r) ROUNDS=${2:-}; shift ;;
	--rss-scrapes) RSS_SCRAPES=${2:-}; shift ;;
	--seconds) SECS=${2:-}; shift ;;
	--scrape-interval) EVERY=${2:-}; shift ;;
	--traffic-pairs) PAIRS=${2:-}; shift ;;
	--pps) PPS=${2:-}; shift ;;
	--skip-one) ONE=0 ;;
	--table) TABLE=${2:-}; shift ;;
	-h|--help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
	shift
done

# The table of a result (agent.jq, which run.sh's summary uses too).
table() {
	jq -r -L "$HERE" 'include "agent"; agent_table' "$1"
}
if [ -n "$TABLE" ]; then
	table "$TABLE" || die "no agent.sh result in $TABLE"
	exit 0
fi

bad() { echo "$PROG: $*" >&2; exit 2; }
for v in "$NIF" "$ROUNDS" "$RSS_SCRAPES" "$SECS" "$EVERY" "$PAIRS" "$PPS"; do
	[[ $v =~ ^[1-9][0-9]*$ ]] || bad "-n, -r, --rss-scrapes, --seconds, --scrape-interval," \
		"--traffic-pairs and --pps take positive integers"
done
# 64 /30s in each /24 of 198.18.128.0/17.
[ "$NIF" -le 8192 ] || bad "-n: at most 8192 interfaces"
[ "$PAIRS" -le "$NIF" ] || bad "--traffic-pairs: at most -n"
[ "$EVERY" -le "$SECS" ] || bad "--scrape-interval: at most --seconds"
# RSS is read every 20 scrapes.
[ "$RSS_SCRAPES" -ge 20 ] || bad "--rss-scrapes: at least 20"
need_tools ip jq curl iperf3 iptables python3
bench_init tfa
NS_H=${ID}-h
NS_P=${ID}-p
URL=http://127.0.0.1:$PORT/metrics
TF_NS=$NS_H

# Pair i's addresses: ta<i> (.1 of its /30) and tp<i> (.2).
host_ip() { echo "198.18.$((128 + $1 / 64)).$((4 * ($1 % 64) + 1))"; }
peer_ip() { echo "198.18.$((128 + $1 / 64)).$((4 * ($1 % 64) + 2))"; }

# ---- topology ----

# The pairs, their addresses, and static neighbours both ways: no ARP on
# the traced interfaces, whose only frames are then the bench's own.
topology() {
	local i
	ns_add "$NS_H"
	ns_add "$NS_P"
	log "creating $NIF veth pairs between $NS_H and $NS_P"
	veth_pairs "$NS_H" "$NIF" ta tp "$NS_P"
	for ((i = 0; i < NIF; i++)); do
		echo "addr add $(host_ip $i)/30 dev ta$i"
	done >"$WORK/addr.h"
	for ((i = 0; i < NIF; i++)); do
		echo "addr add $(peer_ip $i)/30 dev tp$i"
	done >"$WORK/addr.p"
	ip -n "$NS_H" -batch "$WORK/addr.h" && ip -n "$NS_P" -batch "$WORK/addr.p" ||
		die "cannot address the pairs"
	# "ifname mac" of one side as the other side's neighbour entries.
	neigh_batch() {	# NS PREFIX OTHER-PREFIX IP-FUNCTION
		ip -n "$1" -j link show | jq -r --arg p "$2" '.[] |
			select(.ifname | test("^" + $p + "[0-9]+$")) |
			"\(.ifname | ltrimstr($p)) \(.address)"' |
		while read -r i mac; do
			echo "neigh replace $($4 "$i") lladdr $mac dev $3$i nud permanent"
		done
	}
	neigh_batch "$NS_P" tp ta peer_ip >"$WORK/neigh.h"
	neigh_batch "$NS_H" ta tp host_ip >"$WORK/neigh.p"
	[ "$(wc -l <"$WORK/neigh.h")" -eq "$NIF" ] && [ "$(wc -l <"$WORK/neigh.p")" -eq "$NIF" ] &&
		ip -n "$NS_H" -batch "$WORK/neigh.h" && ip -n "$NS_P" -batch "$WORK/neigh.p" ||
		die "cannot set the neighbours"
	# The flows' datagrams end here; only iperf3's get through.
	ip netns exec "$NS_P" iptables -A INPUT -p udp --dport "$IPERF_PORT" -j ACCEPT &&
		ip netns exec "$NS_P" iptables -A INPUT -p udp -j DROP ||
		die "cannot set the DROP rule in $NS_P"
}

# send_flows N: from each of ta0 .. ta<N-1>, a datagram to each of FLOWS
# ports of its far end; bigger for higher ports, so that the 10 biggest (and
# the 2 in "other") are the same on every interface.
send_flows() {
	ip netns exec "$NS_H" python3 - "$1" "$FLOWS" <<'EOF' || die "cannot send the flows"
import socket, sys
n, flows = int(sys.argv[1]), int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(n):
    ip = "198.18.%d.%d" % (128 + i // 64, 4 * (i % 64) + 2)
    for k in range(flows):
        s.sendto(b"x" * (100 + 10 * k), (ip, 40001 + k))
EOF
}

# ---- the agent, scrapes ----

# The process's CPU time so far in clock ticks (utime + stime of all its
# threads, /proc/PID/stat): what process_cpu_seconds_total shows.
proc_ticks() {
	local line
	read -r line <"/proc/$1/stat" || die "process $1 is gone"
	# The fields after the command name, which ends with the last ')'.
	# shellcheck disable=SC2086
	set -- ${line##*) }
	echo $((${12} + ${13}))
}
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }

# nap SECONDS: a sleep that a trapped signal interrupts at once.
nap() {
	bg sleep "$1"
	bg_wait "$BG_PID"
}

N_SCRAPES=0
# scrape plain|gzip: one GET /metrics in the agent's namespace, gzip with
# Accept-Encoding: gzip (the body kept compressed, as sent); the body in
# $WORK/body.MODE, curl's time_total (s) in SCRAPE_S, the body's bytes (as
# they came over the connection) in SCRAPE_BYTES.
scrape() {
	local hdr=() code
	[ "$1" = gzip ] && hdr=(-H 'Accept-Encoding: gzip')
	bg ip netns exec "$NS_H" curl -s -m 30 "${hdr[@]}" -o "$WORK/body.$1" \
		-w '%{time_total} %{size_download} %{http_code}\n' "$URL" >"$WORK/curl.out"
	bg_wait "$BG_PID" || die "GET $URL failed"
	read -r SCRAPE_S SCRAPE_BYTES code <"$WORK/curl.out"
	[ "$code" = 200 ] || die "GET $URL: HTTP $code"
	N_SCRAPES=$((N_SCRAPES + 1))
}

# series FILE FAMILY: the samples of a family in an exposition.
series() { grep -c "^$2{" "$1"; }

AGENT_PID=
# agent_start IFACE N: the agent on IFACE (a name or pattern) in NS_H;
# returns once a scrape says that its N interfaces are attached.
agent_start() {
	local i
	bg "$TAPFLOW" --netns "$NS_H" agent --no-libvirt --iface "$1" \
		--flow-metrics "$FLOW_METRICS" --idle-timeout 3600 --prometheus "127.0.0.1:$PORT" \
		>"$WORK/agent.$2.out" 2>"$WORK/agent.$2.err"
	AGENT_PID=$BG_PID
	N_SCRAPES=0
	for i in $(seq 300); do
		kill -0 "$AGENT_PID" 2>/dev/null ||
			die "tapflow agent exited at start: $(head -c 400 "$WORK/agent.$2.err")"
		bg ip netns exec "$NS_H" curl -sf -m 10 -o "$WORK/body.plain" "$URL"
		if bg_wait "$BG_PID"; then
			N_SCRAPES=$((N_SCRAPES + 1))
			grep -q "^tapflow_interfaces_attached $2\$" "$WORK/body.plain" && return 0
		fi
		nap 0.1
	done
	die "tapflow agent did not attach to $2 interfaces in 30 s"
}

agent_stop() {
	local rc
	kill -TERM "$AGENT_PID"
	bg_wait "$AGENT_PID"
	rc=$?
	[ $rc -eq 0 ] || die "tapflow agent exited $rc: $(tail -c 400 "$WORK/agent.$1.err")"
}

# cpu_window PID SCRAPE: PID's CPU time over SECS seconds, scraped every
# EVERY s if SCRAPE is 1 (the last scrape ends the window); as JSON in
# WINDOW: ticks (utime + stime), sched_ns (scheduler run time of its
# threads, finer), wall_ns, scrapes.
cpu_window() {
	local pid=$1 do_scrape=$2 t0 k0 s0 t1 k1 s1 n=0 at now
	t0=$(date +%s%N)
	k0=$(proc_ticks "$pid")
	s0=$(cpu_ns "$pid")
	for ((at = EVERY; at <= SECS; at += EVERY)); do
		now=$(date +%s%N)
		[ $((t0 + at * 1000000000)) -gt "$now" ] &&
			nap "$(awk -v d=$((t0 + at * 1000000000 - now)) 'BEGIN { printf "%.3f", d / 1e9 }')"
		if [ "$do_scrape" = 1 ]; then
			scrape plain
			n=$((n + 1))
		fi
	done
	t1=$(date +%s%N)
	k1=$(proc_ticks "$pid")
	s1=$(cpu_ns "$pid")
	WINDOW=$(jq -nc --argjson k $((k1 - k0)) --argjson s $((s1 - s0)) --argjson w $((t1 - t0)) \
		--argjson n "$n" --argjson tck "$(getconf CLK_TCK)" \
		'{ticks: $k, clk_tck: $tck, sched_ns: $s, wall_ns: $w, scrapes: $n,
		  cpu_ms_per_s: ($k / $tck * 1e3 / ($w / 1e9)),
		  sched_ms_per_s: ($s / 1e6 / ($w / 1e9))}')
}

# tx_packets K: the packets ta0 .. ta<K-1> sent, in all.
tx_packets() {
	ip -n "$NS_H" -s -j link show | jq --argjson k "$1" \
		'[.[] | select(.ifname | test("^ta[0-9]+$")) | select(.ifname[2:] | tonumber < $k) |
		  .stats64.tx.packets] | add'
}

# traffic_start: iperf3 UDP at PPS datagrams/s from ta<j> to tp<j>, j < PAIRS,
# for longer than a window; traffic_stop ends it.
IPERF_PIDS=()
traffic_start() {
	local j i up
	IPERF_PIDS=()
	for ((j = 0; j < PAIRS; j++)); do
		bg ip netns exec "$NS_P" iperf3 -s -1 -B "$(peer_ip $j)" -p "$IPERF_PORT" \
			>"$WORK/iperf3-s.$j.log" 2>&1
		IPERF_PIDS+=("$BG_PID")
	done
	for i in $(seq 50); do
		up=$(ip netns exec "$NS_P" ss -Hltn "sport = :$IPERF_PORT" | wc -l)
		[ "$up" -eq "$PAIRS" ] && break
		nap 0.1
	done
	[ "$up" -eq "$PAIRS" ] || die "iperf3 servers do not listen"
	for ((j = 0; j < PAIRS; j++)); do
		bg ip netns exec "$NS_H" iperf3 -c "$(peer_ip $j)" -p "$IPERF_PORT" -u \
			-l "$PAYLOAD" -b $((PPS * PAYLOAD * 8)) -t $((SECS + 30)) \
			>"$WORK/iperf3-c.$j.log" 2>&1
		IPERF_PIDS+=("$BG_PID")
	done
}
traffic_stop() {
	local p
	for p in "${IPERF_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${IPERF_PIDS[@]}"; do bg_wait "$p"; done
	IPERF_PIDS=()
}

# ---- one run: the agent on N interfaces ----

# measure IFACE N: everything for the agent on IFACE (N interfaces), as JSON in
# $WORK/run.N.json.
measure() {
	local iface=$1 n=$2 r mode plain=() gzip=() plain_b=() gzip_b=() rss=()
	local expect bytes0 packets0 bytes1 packets1 lines unzipped idle traffic=null stats
	local p0 p1 t0 t1 stale c0 k per_scrape

	log "agent on $n interface(s): starting"
	agent_start "$iface" "$n"
	send_flows "$n"
	# The first scrape after the flows: the interval that gives them series.
	scrape plain
	expect=$((n * (FLOW_METRICS + 1) * 2))
	bytes0=$(series "$WORK/body.plain" tapflow_flow_bytes_total)
	packets0=$(series "$WORK/body.plain" tapflow_flow_packets_total)
	log "flow series: $bytes0 bytes, $packets0 packets (expected $expect each)"

	# Plain and gzip in turn, so that drift of the machine falls on both.
	for ((r = 0; r < ROUNDS; r++)); do
		for mode in plain gzip; do
			scrape "$mode"
			if [ "$mode" = plain ]; then
				plain+=("$SCRAPE_S")
				plain_b+=("$SCRAPE_BYTES")
			else
				gzip+=("$SCRAPE_S")
				gzip_b+=("$SCRAPE_BYTES")
			fi
			[ $((N_SCRAPES % 20)) -eq 0 ] && rss+=("[$N_SCRAPES,$(rss_kib "$AGENT_PID")]")
		done
	done
	bytes1=$(series "$WORK/body.plain" tapflow_flow_bytes_total)
	packets1=$(series "$WORK/body.plain" tapflow_flow_packets_total)
	lines=$(grep -vc '^#' "$WORK/body.plain")
	unzipped=$(gzip -dc "$WORK/body.gzip" | wc -c)
	log "scrapes: plain median $(printf '%s\n' "${plain[@]}" | sort -n |
		awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }') s, $lines samples," \
		"${plain_b[-1]} B plain, ${gzip_b[-1]} B gzip"
	# Then up to RSS_SCRAPES, RSS every 20: a render that leaks shows here.
	# Back to back, they also give the CPU time of a scrape (the polls
	# between scrapes, one a second, are in it too).
	c0=$(cpu_ns "$AGENT_PID")
	k=$N_SCRAPES
	while [ "$N_SCRAPES" -lt "$RSS_SCRAPES" ]; do
		scrape plain
		[ $((N_SCRAPES % 20)) -eq 0 ] && rss+=("[$N_SCRAPES,$(rss_kib "$AGENT_PID")]")
	done
	per_scrape=$(awk -v c=$(($(cpu_ns "$AGENT_PID") - c0)) -v n=$((N_SCRAPES - k)) \
		'BEGIN { printf "%.3f", (n > 0 ? c / n / 1e6 : 0) }')
	log "RSS (KiB) by scrapes: ${rss[*]}; CPU per plain scrape $per_scrape ms"

	log "idle, scraped every $EVERY s, $SECS s"
	cpu_window "$AGENT_PID" 1
	idle=$WINDOW
	log "idle: $(jq -r '.cpu_ms_per_s * 100 | round / 100' <<<"$idle") ms CPU per s"

	if [ "$n" -gt 1 ]; then
		log "traffic: $PAIRS pairs of $PPS datagrams/s, scraped every $EVERY s, $SECS s"
		traffic_start
		nap 2
		p0=$(tx_packets "$PAIRS")
		t0=$(date +%s%N)
		cpu_window "$AGENT_PID" 1
		p1=$(tx_packets "$PAIRS")
		t1=$(date +%s%N)
		traffic_stop
		traffic=$(jq -c --argjson p $((p1 - p0)) --argjson w $((t1 - t0)) \
			--argjson pairs "$PAIRS" --argjson pps "$PPS" --argjson len "$PAYLOAD" \
			'. + {pairs: $pairs, pps_asked: ($pairs * $pps), payload_bytes: $len,
			      packets: $p, pps: ($p / ($w / 1e9))}' <<<"$WINDOW")
		log "traffic: $(jq -r '"\(.pps | round) packets/s, \(.cpu_ms_per_s * 100 | round / 100) ms CPU per s"' \
			<<<"$traffic")"
	fi
	scrape plain
	stale=$(awk '/^tapflow_scrapes_stale_total / { print $2 }' "$WORK/body.plain")
	jq -n --argjson n "$n" --argjson expect "$expect" \
		--argjson b0 "$bytes0" --argjson p0 "$packets0" --argjson b1 "$bytes1" \
		--argjson p1 "$packets1" --argjson lines "$lines" \
		--argjson plain "$(jarr "${plain[@]}")" --argjson gzip "$(jarr "${gzip[@]}")" \
		--argjson plain_b "$(jarr "${plain_b[@]}")" --argjson gzip_b "$(jarr "${gzip_b[@]}")" \
		--argjson unzipped "$unzipped" --argjson rss "$(jarr "${rss[@]}")" \
		--argjson hwm "$(hwm_kib "$AGENT_PID")" --argjson idle "$idle" \
		--argjson traffic "$traffic" --argjson stale "${stale:-null}" \
		--argjson per_scrape "$per_scrape" "$JQ_MEDIAN"'
		def p90: sort | .[(length * 0.9 | ceil) - 1];
		def times($t): {times_s: $t, median_ms: ($t | median * 1e3),
				p90_ms: ($t | p90 * 1e3), min_ms: ($t | min * 1e3),
				max_ms: ($t | max * 1e3)};
		{interfaces: $n,
		 series: {expected: $expect, first: {bytes: $b0, packets: $p0},
			  last: {bytes: $b1, packets: $p1},
			  ok: ([$b0, $p0, $b1, $p1] | all(. == $expect))},
		 samples: $lines,
		 scrape: {plain: (times($plain) + {bytes: ($plain_b | max),
						  cpu_ms_per_scrape: $per_scrape}),
			  gzip: (times($gzip) + {bytes: ($gzip_b | max),
						 unzipped_bytes: $unzipped})},
		 rss_kib: {by_scrapes: $rss, hwm: $hwm,
			   first: $rss[0][1], last: $rss[-1][1],
			   first_at: $rss[0][0], last_at: $rss[-1][0]},
		 scrapes_stale: $stale, idle: $idle, traffic: $traffic}' >"$WORK/run.$n.json" ||
		die "cannot write the results"
	agent_stop "$n"

	log "tapflow stats on $n interface(s), idle, $SECS s"
	tf_start stats "$iface"
	cpu_window "$TF_PID" 0
	stats=$WINDOW
	tf_stop
	log "stats idle: $(jq -r '.cpu_ms_per_s * 100 | round / 100' <<<"$stats") ms CPU per s"
	jq --argjson s "$stats" '.stats_idle = $s' "$WORK/run.$n.json" >"$WORK/run.$n.json.tmp" &&
		mv "$WORK/run.$n.json.tmp" "$WORK/run.$n.json" || die "cannot write the results"
}

topology
measure 'ta*' "$NIF"
[ "$ONE" = 1 ] && measure ta0 1
RESULT=$(jq -s --argjson nif "$NIF" --argjson flows "$FLOWS" --argjson fm "$FLOW_METRICS" \
	--argjson rounds "$ROUNDS" --argjson rss "$RSS_SCRAPES" --argjson secs "$SECS" \
	--argjson every "$EVERY" --arg mode "$TF_MODE" \
	'{interfaces: $nif, flows_per_interface: $flows, flow_metrics: $fm, rounds: $rounds,
	  rss_scrapes: $rss, seconds: $secs, scrape_interval_s: $every, attach_mode: $mode,
	  agent: ("tapflow agent --no-libvirt --iface \u0027ta*\u0027 --flow-metrics \($fm) " +
		  "--idle-timeout 3600 --prometheus 127.0.0.1:PORT"),
	  runs: (sort_by(.interfaces) | reverse)}' "$WORK"/run.*.json) ||
	die "cannot combine the results"

if [ "$JSON" = 1 ]; then
	echo "$RESULT"
	exit 0
fi
echo "$RESULT" >"$WORK/result.json"
table "$WORK/result.json"
