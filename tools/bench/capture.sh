#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# capture.sh: what sampled capture (`tapflow capture --sample 100`) costs
# the traffic it samples, side by side with tcpdump on the bridge.
#
# The topology of throughput.sh: namespaces A and B hang on veths whose
# other ends, pa and pb, are ports of bridge br0 in namespace BR: the path
# of a VM's frames through its tap and bridge. Three states in ABBA rounds
# (off capture tcpdump / tcpdump capture off):
#   off      nothing capturing;
#   capture  tapflow --iface br0 --iface pa --iface pb capture -w FILE
#            --sample 100 --snaplen 128 (the interfaces a libvirt host's
#            `tapflow capture` takes: the VMs' taps and their bridge);
#   tcpdump  tcpdump -i br0 -s 128 -w FILE (-Z root: writes as root): on the
#            bridge, in promiscuous mode, it sees every frame the bridge
#            forwards, and writes them all.
# Per block iperf3 TCP A->B, TCP B->A and the packet rate of 64-byte UDP
# frames A->B (--no-udp: TCP only), both iperf3 ends on CPU 0; ratios
# capture/off and tcpdump/off are medians of the per-round ratios. Per
# block the capturing process's CPU time while the traffic ran (its
# threads' scheduler run time; the BPF programs and AF_PACKET's copies run
# in softirq, on the iperf3 CPU, and show in the throughput instead), the
# frames it wrote (capinfos) and what it says it saw and lost. A round
# during which other work kept the free CPUs busy is run again.
#
#   tools/bench/capture.sh [-t SEC] [-r ROUNDS] [--udp-len BYTES] [--no-udp]
#                          [--sample N] [--snaplen B] [--affinity C,S]
#                          [--attach auto|tcx|clsact] [--busy-max PCT]
#                          [--max-redo N] [--json]
#
# Needs root, iperf3, jq, iproute2, tcpdump, capinfos (tshark's package)
# and a built .output/tapflow (make). Everything it creates (namespaces,
# processes, the capture files) is removed on exit, also on failure or
# Ctrl-C.
set -uo pipefail

PROG=capture.sh
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$HERE/lib.sh"
TAPFLOW=${TAPFLOW:-$ROOT/.output/tapflow}

# Defaults of -t, --udp-len, --attach, --affinity, --busy-max, --max-redo:
# lib.sh. 6 rounds, as throughput.sh: single rounds swing by +-15 % here.
ROUNDS=6
UDP=1
SAMPLE=100
SNAPLEN=128

own_opt() {
	case $1 in
	--no-udp) UDP=0 ;;
	--sample) SAMPLE=${2:-}; return 2 ;;
	--snaplen) SNAPLEN=${2:-}; return 2 ;;
	*) return 0 ;;
	esac
	return 1
}
parse_opts "$@"
check_common_opts
[[ $SAMPLE =~ ^[1-9][0-9]*$ ]] || { echo "$PROG: --sample needs a count" >&2; exit 2; }
[[ $SNAPLEN =~ ^[1-9][0-9]*$ ]] || { echo "$PROG: --snaplen needs bytes" >&2; exit 2; }

need_tools iperf3 jq ip tcpdump capinfos

# Everything it creates is removed at exit (lib.sh: bench_init, cleanup).
bench_init tfc
NS_A=$ID-a NS_B=$ID-b NS_BR=$ID-br
# RFC 2544 benchmarking range, inside our namespaces only (throughput.sh
# has 198.18.0.0/24, nat.sh 198.18.1.0/24, drops.sh 198.18.2-3.0/24).
IP_A=198.18.4.1 IP_B=198.18.4.2
PORT=5201
IPERF_NS=$NS_A IPERF_DST=$IP_B TF_NS=$NS_BR
TRACED=br0,pa,pb

STATES=(off capture tcpdump)
declare -A STATE_NAME=([off]="off" [capture]="tapflow capture" [tcpdump]="tcpdump")
FIGS=(tcp_ab tcp_ba)
[ "$UDP" -eq 1 ] && FIGS+=(udp)

# ---- topology (as throughput.sh's) ----

setup() {
	bridge_pair_up
	wait_ports_up "$NS_BR" 2
	iperf_server "$NS_B" "$IP_B"
}

# ---- the capturing processes ----

N_CAP=0
# cap_start STATE: the capture of STATE into CAP_FILE, returning once it
# captures; CAP_PID, and its CPU time and the time then.
cap_start() {
	local i
	CAP_FILE=$WORK/$1.$((++N_CAP)).pcap
	if [ "$1" = capture ]; then
		CAP_FILE+=ng
		tf_start capture "$TRACED" -w "$CAP_FILE" --sample "$SAMPLE" --snaplen "$SNAPLEN"
		CAP_PID=$TF_PID
		return 0
	fi
	CAP_ERR=$WORK/tcpdump.$N_CAP.err
	# -Z root: Debian's tcpdump otherwise writes as user tcpdump, which
	# cannot write into the bench's private directory.
	bg ip netns exec "$NS_BR" tcpdump -i br0 -s "$SNAPLEN" -w "$CAP_FILE" -Z root \
		>/dev/null 2>"$CAP_ERR"
	CAP_PID=$BG_PID
	for i in $(seq 100); do
		grep -q 'listening on' "$CAP_ERR" && break
		kill -0 "$CAP_PID" 2>/dev/null || die "tcpdump failed: $(head -c 300 "$CAP_ERR")"
		sleep 0.1
	done
	grep -q 'listening on' "$CAP_ERR" || die "tcpdump did not start in 10 s"
	TD_CPU0=$(cpu_ns "$CAP_PID")
	TD_T0=$(date +%s%N)
}

# cap_stop STATE: stop it; CAP_RESULT: its CPU time and wall time while
# the traffic ran, the frames in its file, what it says it saw and lost.
cap_stop() {
	local st=$1 cpu wall frames bytes seen
	if [ "$st" = capture ]; then
		tf_stop
		cpu=$TF_LAST_CPU_NS wall=$TF_LAST_WALL_NS
		# Per interface: frames it carried, sampled (in the file) and lost.
		seen=$(jq -sc '[.[] | select(.type == "capture")] |
			{packets: (map(.packets) | add), sampled: (map(.samples) | add),
			 lost: (map(.lost) | add),
			 per_iface: map({key: .ifname, value: {packets, samples, lost}}) | from_entries}' \
			"$TF_OUT") || die "no capture report from tapflow (see $TF_OUT)"
	else
		local c1 t1
		c1=$(cpu_ns "$CAP_PID")
		t1=$(date +%s%N)
		cpu=$((c1 - TD_CPU0)) wall=$((t1 - TD_T0))
		kill -INT "$CAP_PID"
		bg_wait "$CAP_PID" || die "tcpdump exited $?: $(head -c 300 "$CAP_ERR")"
		# "N packets captured", "N packets received by filter", "N packets dropped by kernel"
		seen=$(awk '/packets captured/ { c = $1 } /received by filter/ { r = $1 }
			/dropped by kernel/ { d = $1 }
			END { printf "{\"captured\":%d,\"received_by_filter\":%d,\"dropped_by_kernel\":%d}", c, r, d }' \
			"$CAP_ERR")
	fi
	frames=$(capinfos -T -r -c "$CAP_FILE" 2>/dev/null | awk -F'\t' '{ print $2 }')
	[[ $frames =~ ^[0-9]+$ ]] || die "capinfos cannot read $CAP_FILE"
	bytes=$(stat -c %s "$CAP_FILE")
	rm -f "$CAP_FILE"
	CAP_RESULT=$(jq -nc --argjson cpu "$cpu" --argjson wall "$wall" --argjson frames "$frames" \
		--argjson bytes "$bytes" --argjson seen "$seen" '
		{cpu_ns: $cpu, wall_ns: $wall, frames_written: $frames, file_bytes: $bytes, seen: $seen}')
}

# ---- measurements ----

# One figure into VAL: TCP bit/s either way, or UDP packets/s delivered.
measure_fig() {
	case $1 in
	tcp_ab) tcp_bps; VAL=$BPS ;;
	tcp_ba) tcp_bps -R; VAL=$BPS ;;
	udp) udp_pps; VAL=$PPS ;;
	esac
}

# One block: the figures in one state, into BLOCK[state] (and CAPS[state]:
# the capturing process's figures, JSON).
declare -A BLOCK CAPS
block() {
	local state=$1 r=$2 j0 k vals=() line rx0 tx0 rx1 tx1
	[ "$state" != off ] && cap_start "$state"
	# The other CPUs while the traffic runs (not tapflow loading its programs).
	j0=$(other_cpu_jiffies)
	read -r rx0 tx0 _ < <(link_counts "$NS_BR" pa)
	line=$(printf 'round %d %-15s' "$r" "${STATE_NAME[$state]}")
	for k in "${FIGS[@]}"; do
		measure_fig "$k"
		vals+=("$VAL")
		case $k in
		tcp_*) line+=$(printf '  %s %6.2f Gbit/s' "$k" "$(jq -n "$VAL / 1e9")") ;;
		udp) line+=$(printf '  udp %4.0f kpps (%.1f%% lost)' "$(jq -n "$VAL / 1e3")" "$LOSS") ;;
		esac
	done
	read -r rx1 tx1 _ < <(link_counts "$NS_BR" pa)
	BLOCK_BUSY[$state]=$(busy_since "$j0")
	BLOCK[$state]="${vals[*]}"
	CAPS[$state]=null
	if [ "$state" != off ]; then
		cap_stop "$state"
		# Every frame between A and B crosses pa once: the frames (skbs)
		# the bridge forwarded while the traffic ran.
		CAPS[$state]=$(jq -c --argjson n $((rx1 - rx0 + tx1 - tx0)) '. + {bridge_frames: $n}' \
			<<<"$CAP_RESULT")
		line+=$(jq -r '"; \(.cpu_ns / 1e6 | round) ms CPU (\(100 * .cpu_ns / .wall_ns * 100 | round / 100)%" +
			" of a core), \(.frames_written) frames written of \(.bridge_frames) forwarded" +
			(if .seen.lost != null then ", \(.seen.lost) lost"
			 else ", \(.seen.dropped_by_kernel) dropped by kernel" end)' <<<"${CAPS[$state]}")
	fi
	log "$line; other CPUs ${BLOCK_BUSY[$state]}% busy"
}

# Per state and figure ("state:fig"): the kept rounds' figures; per state
# the capturing process's figures of the kept blocks (JSON lines).
declare -A R KEPT_CAPS
keep_block() {
	local st=$1 v i=0 k
	read -r -a v <<<"${BLOCK[$st]}"
	for k in "${FIGS[@]}"; do R[$st:$k]+=" ${v[$((i++))]}"; done
	[ "$st" != off ] && KEPT_CAPS[$st]+="${CAPS[$st]}"$'\n'
	return 0
}

main() {
	local r t0=$SECONDS k figs='{}' caps='{}' st
	setup
	log "topology: $NS_A --veth-- [$NS_BR: pa, br0, pb] --veth-- $NS_B; states: ${STATES[*]}" \
		"(tapflow --iface ${TRACED//,/ --iface } capture --sample $SAMPLE --snaplen $SNAPLEN;" \
		"tcpdump -i br0 -s $SNAPLEN); $ROUNDS rounds of ${SECS} s per figure"
	for ((r = 1; r <= ROUNDS; r++)); do
		abba_round "$r"
	done

	for k in "${FIGS[@]}"; do
		# shellcheck disable=SC2086 # word lists of numbers
		figs=$(jq -c --arg k "$k" --argjson off "$(jarr ${R[off:$k]})" \
			--argjson capture "$(jarr ${R[capture:$k]})" --argjson tcpdump "$(jarr ${R[tcpdump:$k]})" \
			"$JQ_FIG"'
			($k | if startswith("tcp") then "bit/s" else "packets/s delivered" end) as $u |
			. + {($k): {unit: $u, off: $off, capture: $capture, tcpdump: $tcpdump,
				    capture_vs_off: fig($off; $capture; $u),
				    tcpdump_vs_off: fig($off; $tcpdump; $u),
				    capture_vs_tcpdump: fig($tcpdump; $capture; $u)}}' <<<"$figs") ||
			die "cannot build the result of $k"
	done
	for st in capture tcpdump; do
		caps=$(printf '%s' "${KEPT_CAPS[$st]}" | jq -sc --arg st "$st" --argjson caps "$caps" "$JQ_MEDIAN"'
			. as $b | def sum(f): map(f) | add;
			$caps + {($st): ({blocks: $b,
				cpu_ms: (sum(.cpu_ns) / 1e6), wall_s: (sum(.wall_ns) / 1e9),
				cpu_percent_of_one_core: (100 * sum(.cpu_ns) / sum(.wall_ns)),
				cpu_ms_per_block_median: (map(.cpu_ns / 1e6) | median),
				frames_written: sum(.frames_written), bridge_frames: sum(.bridge_frames),
				written_per_forwarded: (sum(.frames_written) / sum(.bridge_frames)),
				file_bytes: sum(.file_bytes),
				cpu_us_per_frame_written: (if sum(.frames_written) > 0
					then sum(.cpu_ns) / sum(.frames_written) / 1e3 else null end)}
				+ (if $st == "capture" then
					{sampled: sum(.seen.sampled), lost: sum(.seen.lost),
					 sampled_packets: sum(.seen.packets),
					 written_equals_sampled: all(.frames_written == .seen.sampled)}
				   else
					{captured: sum(.seen.captured), received_by_filter: sum(.seen.received_by_filter),
					 dropped_by_kernel: sum(.seen.dropped_by_kernel),
					 written_equals_captured: all(.frames_written == .seen.captured)}
				   end))}') || die "cannot build the result of $st"
	done

	RESULT=$(jq -n \
		--argjson secs "$SECS" --argjson rounds "$ROUNDS" --argjson udp_len "$UDP_LEN" \
		--arg affinity "$AFFINITY" --arg mode "$TF_MODE" --arg kernel "$(uname -r)" \
		--arg traced "$TRACED" --argjson sample "$SAMPLE" --argjson snaplen "$SNAPLEN" \
		--arg tcpdump "$(tcpdump --version 2>&1 | head -1)" \
		--argjson figs "$figs" --argjson caps "$caps" --argjson busy "$(busy_json)" \
		--arg a "$IP_A" --arg b "$IP_B" --argjson elapsed "$((SECONDS - t0))" '
		{type: "capture", kernel: $kernel, seconds: $secs, rounds: $rounds,
		 order: "ABBA (off,capture,tcpdump / tcpdump,capture,off / ...)", attach_mode: $mode,
		 iperf3_affinity: (if $affinity == "" then null else $affinity end),
		 udp_payload_bytes: $udp_len, udp_frame_bytes: ($udp_len + 42 + 4),
		 sample: $sample, snaplen: $snaplen, tcpdump_version: $tcpdump,
		 topology: {a: $a, b: $b, bridge: "br0", ports: ["pa", "pb"]},
		 states: {off: "nothing capturing",
			  capture: ("tapflow " + ([$traced | split(",")[] | "--iface \(.)"] | join(" ")) +
				    " capture -w FILE --sample \($sample) --snaplen \($snaplen)"),
			  tcpdump: "tcpdump -i br0 -s \($snaplen) -w FILE -Z root"},
		 target_ratio_min: 0.90,
		 figures: $figs, capturing: $caps}
		+ $busy + {elapsed_s: $elapsed}') || die "cannot build the result"

	if [ "$JSON" -eq 1 ]; then
		echo "$RESULT"
		return
	fi
	summary
}

# The human summary of RESULT.
summary() {
	local k label scale fmt st
	echo "capture: veth -> bridge -> veth; $(q .states.capture) ($(q .attach_mode)) vs $(q .states.tcpdump)"
	echo "iperf3 client,server on CPUs ${AFFINITY:-(unpinned)}; median of $ROUNDS ABBA rounds of $SECS s;" \
		"ratio = median of per-round ratios"
	printf '%-26s %9s %9s %9s %11s %11s  %s\n' measurement off capture tcpdump capture/off \
		tcpdump/off "(rounds: capture/off; tcpdump/off)"
	for k in "${FIGS[@]}"; do
		case $k in
		tcp_ab) label="TCP A->B (Gbit/s)" ;;
		tcp_ba) label="TCP B->A (Gbit/s)" ;;
		udp) label="UDP $(q .udp_frame_bytes) B A->B (kpps)" ;;
		esac
		scale=1e9 fmt=%9.2f
		[ "$k" = udp ] && scale=1e3 fmt=%9.1f
		printf "%-26s $fmt $fmt $fmt %11.3f %11.3f  (%.3f-%.3f; %.3f-%.3f)\n" "$label" \
			"$(q ".figures.$k.capture_vs_off.off_median / $scale")" \
			"$(q ".figures.$k.capture_vs_off.on_median / $scale")" \
			"$(q ".figures.$k.tcpdump_vs_off.on_median / $scale")" \
			"$(q ".figures.$k.capture_vs_off.ratio")" "$(q ".figures.$k.tcpdump_vs_off.ratio")" \
			"$(q ".figures.$k.capture_vs_off.ratio_min")" "$(q ".figures.$k.capture_vs_off.ratio_max")" \
			"$(q ".figures.$k.tcpdump_vs_off.ratio_min")" "$(q ".figures.$k.tcpdump_vs_off.ratio_max")"
	done
	echo "target: capture/off >= $(q .target_ratio_min)"
	for st in capture tcpdump; do
		q '.capturing.'"$st"' | "'"$st"': \(.cpu_ms | round) ms CPU in \(.wall_s * 10 | round / 10) s of traffic " +
			"(\(.cpu_percent_of_one_core * 100 | round / 100)% of a core; median \(.cpu_ms_per_block_median | round) ms per block), " +
			"\(.frames_written) frames written of \(.bridge_frames) forwarded " +
			"(\(.written_per_forwarded * 10000 | round / 100)%), \(.file_bytes / 1e6 * 10 | round / 10) MB" +
			(if .lost != null then "; sampled \(.sampled), lost \(.lost)" +
				(if .written_equals_sampled then "" else " (file != sampled!)" end)
			 else "; captured \(.captured), dropped by kernel \(.dropped_by_kernel)" +
				(if .written_equals_captured then "" else " (file != captured!)" end) end)'
	done
	printf 'other CPUs (not running iperf3) busy during the blocks: median %s%%, max %s%%; %s round(s) discarded and run again\n' \
		"$(q .other_cpus_busy_percent.median)" "$(q .other_cpus_busy_percent.max)" \
		"$(q '.discarded_rounds | length')"
}

main
