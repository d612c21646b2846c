#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# run.sh: the whole benchmark in one run (about two and a half minutes):
# prog_cost (ns per packet of tapflow's programs under BPF_PROG_TEST_RUN,
# next to an empty program) and throughput.sh (iperf3 across veth + bridge,
# tapflow attached vs not), then a summary block for the README.
#
#   tools/bench/run.sh [--json] [throughput.sh options...]
#
# Build first: make && make -C tools/bench (or `make bench`, which runs this).
# The summary and the raw JSON are also kept in .output/bench/last.{md,json}.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PROG_COST=${PROG_COST:-$ROOT/.output/bench/prog_cost}
OUT=$ROOT/.output/bench
# prog_cost on the CPU the iperf3 runs use too.
COST_CPU=${COST_CPU:-0}

JSON=0
TP_ARGS=()
for a in "$@"; do
	case $a in
	--json) JSON=1 ;;
	-h|--help) sed -n '/^#   tools/,/^#$/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) TP_ARGS+=("$a") ;;
	esac
done

die() { echo "run.sh: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "needs root"
[ -x "$PROG_COST" ] || die "$PROG_COST not built (make -C tools/bench)"
command -v jq >/dev/null || die "jq not found"
mkdir -p "$OUT"

# Children run in the background so that a signal reaches this shell at
# once; it is passed on to the running child, which cleans up after itself.
CHILD=
on_signal() {
	[ -n "$CHILD" ] && kill -TERM "$CHILD" 2>/dev/null && wait "$CHILD" 2>/dev/null
	exit "$1"
}
trap 'on_signal 130' INT
trap 'on_signal 143' TERM

# run_child FILE CMD...: CMD's stdout into FILE; its stderr shows as it comes.
run_child() {
	local file=$1 rc
	shift
	"$@" >"$file" &
	CHILD=$!
	wait "$CHILD"
	rc=$?
	CHILD=
	return $rc
}

started=$(date -u '+%Y-%m-%d %H:%M UTC')
# Other work on the machine shows in the figures: say so, and record it.
read -r load1 _ </proc/loadavg
if awk -v l="$load1" 'BEGIN { exit !(l > 0.5) }'; then
	echo "# warning: load average $load1 before the start: the figures will be noisy" >&2
fi
t0=$SECONDS
echo "# prog_cost: BPF_PROG_TEST_RUN, CPU $COST_CPU" >&2
run_child "$OUT/prog_cost.json" "$PROG_COST" --cpu "$COST_CPU" --json ||
	die "prog_cost failed"
echo "# throughput.sh ${TP_ARGS[*]}" >&2
run_child "$OUT/throughput.json" "$HERE/throughput.sh" --json "${TP_ARGS[@]}" ||
	die "throughput.sh failed"

cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "no commit")
[ -n "$(git -C "$ROOT" status --porcelain 2>/dev/null)" ] && rev="$rev + local changes"
jq -n --arg date "$started" --arg kernel "$(uname -r)" --arg cpu "${cpu_model:-?}" \
	--argjson ncpu "$(nproc)" --arg rev "$rev" --argjson elapsed "$((SECONDS - t0))" \
	--argjson loadavg "$load1" \
	--slurpfile pc "$OUT/prog_cost.json" --slurpfile tp "$OUT/throughput.json" \
	'{type: "bench", date: $date, kernel: $kernel, cpu: $cpu, cpus: $ncpu, tapflow: $rev,
	  loadavg: $loadavg,
	  elapsed_s: $elapsed, prog_cost: $pc[0], throughput: $tp[0]}' >"$OUT/last.json" ||
	die "cannot combine the results"

# The README block: one markdown table, off = without tapflow (for the
# test-run rows: the empty program), on = with it.
jq -r '
	def f($d): . * pow(10; $d) | round / pow(10; $d) | tostring;
	def row($m; $off; $on; $r): "| \($m) | \($off) | \($on) | \($r) |";
	.prog_cost as $pc | .throughput as $tp |
	"tapflow bench, \(.date): kernel \(.kernel), \(.cpu) (\(.cpus) CPUs), tapflow \(.tapflow), " +
	"attach \($tp.attach_mode), load average \(.loadavg) at start, \(.elapsed_s) s",
	"",
	"| measurement | off | on | ratio on/off |",
	"|---|---:|---:|---:|",
	($pc.results | map(select(.prog != "empty")) | .[] |
		. as $x | ($pc.results[] | select(.frame == $x.frame and .prog == "empty")) as $e |
		row("\($x.prog), \($x.frame) B frame: ns/packet, BPF_PROG_TEST_RUN (off = empty program)";
		    "\($e.median_ns | f(0)) (min \($e.min_ns | f(0)))";
		    "\($x.median_ns | f(0)) (min \($x.min_ns | f(0)))";
		    "\($x.ratio | f(2)) (+\($x.delta_ns | f(0)) ns)")),
	row("TCP A→B via veth+bridge: Gbit/s"; $tp.tcp_a_to_b.off_median / 1e9 | f(2);
	    $tp.tcp_a_to_b.on_median / 1e9 | f(2); $tp.tcp_a_to_b.ratio | f(3)),
	row("TCP B→A via veth+bridge: Gbit/s"; $tp.tcp_b_to_a.off_median / 1e9 | f(2);
	    $tp.tcp_b_to_a.on_median / 1e9 | f(2); $tp.tcp_b_to_a.ratio | f(3)),
	row("UDP \($tp.udp_frame_bytes) B frames via veth+bridge: kpps"; $tp.udp_pps.off_median / 1e3 | f(1);
	    $tp.udp_pps.on_median / 1e3 | f(1); $tp.udp_pps.ratio | f(3)),
	"",
	"Test runs: median and min of \($pc.rounds) rounds of \($pc.repeat) runs on CPU \($pc.cpu); " +
	"ratio and difference of the medians. " +
	"Throughput: median of \($tp.rounds) ABBA rounds of \($tp.seconds) s, iperf3 ends on CPUs " +
	"\($tp.iperf3_affinity // "unpinned"); ratio = median of the per-round on/off ratios " +
	"(range: TCP A→B \($tp.tcp_a_to_b.ratio_min | f(3))–\($tp.tcp_a_to_b.ratio_max | f(3)), " +
	"B→A \($tp.tcp_b_to_a.ratio_min | f(3))–\($tp.tcp_b_to_a.ratio_max | f(3)), " +
	"UDP \($tp.udp_pps.ratio_min | f(3))–\($tp.udp_pps.ratio_max | f(3))).",
	"tapflow itself: \($tp.tapflow.cpu_ms | f(0)) ms CPU in \($tp.tapflow.wall_s | f(0)) s attached " +
	"(\($tp.tapflow.cpu_percent_of_one_core | f(3)) % of a core), max RSS \($tp.tapflow.max_rss_kib) KiB." +
	(if $tp.insitu then " In situ, UDP run with BPF run-time stats on: " +
		($tp.insitu | map("\(.name) \(.ns_per_run | f(0)) ns/run") | join(", ")) + "."
	 else "" end)
' "$OUT/last.json" >"$OUT/last.md" || die "cannot format the summary"

if [ "$JSON" -eq 1 ]; then
	cat "$OUT/last.json"
else
	echo
	cat "$OUT/last.md"
fi
