#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# scale.sh: tapflow with many interfaces and a big flow table.
#
#   attach   512 veth pairs in a namespace of their own; `tapflow --json flows
#            -i 0.01 --max-flows 1000000 --iface ...` on 1 and on all 512 of
#            them, TCX and clsact: the time from exec to the first record
#            (loading, attaching, one poll and report) and from SIGTERM to
#            exit (the final poll and report, detaching, closing), median of
#            R rounds; 512 minus 1 is what the other 511 interfaces cost.
#            After each run no clsact qdisc is left on any of them.
#   report   report_cost: one poll and one report of 1 000 000 flows on 1
#            and on 512 interfaces, with the index by interface and with
#            every interface walking the whole table (the code before it).
#
#   tools/bench/scale.sh [--json] [-n IFACES] [--flows N] [-r ROUNDS]
#                        [--skip-attach] [--skip-report]
#
# Needs root (namespaces, BPF) for the attach part; the report part needs
# neither. Builds nothing: make && make -C tools/bench first.
# shellcheck disable=SC2317 # functions called by traps
set -uo pipefail

PROG=scale.sh
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TAPFLOW=${TAPFLOW:-$ROOT/.output/tapflow}
REPORT_COST=${REPORT_COST:-$ROOT/.output/bench/report_cost}
# shellcheck source=tools/bench/lib.sh
. "$HERE/lib.sh"

NIF=512
FLOWS=1000000
ROUNDS=3
ATTACH_PART=1
REPORT_PART=1
while [ $# -gt 0 ]; do
	case $1 in
	--json) JSON=1 ;;
	-n) NIF=${2:-}; shift ;;
	--flows) FLOWS=${2:-}; shift ;;
	-r) ROUNDS=${2:-}; shift ;;
	--skip-attach) ATTACH_PART=0 ;;
	--skip-report) REPORT_PART=0 ;;
	-h|--help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
	shift
done
[[ "$NIF" =~ ^[1-9][0-9]*$ && "$FLOWS" =~ ^[1-9][0-9]*$ && "$ROUNDS" =~ ^[1-9][0-9]*$ ]] ||
	die "-n, --flows and -r take positive integers"
command -v jq >/dev/null || die "jq not found"
command -v python3 >/dev/null || die "python3 not found"
[ -x "$REPORT_COST" ] || die "$REPORT_COST not built (make -C tools/bench)"

bench_init tfsc

# timed_run NS ARGS...: tapflow ARGS in NS; prints "first_s exit_s rc":
# exec to the first record on stdout, SIGTERM to exit, the exit status.
timed_run() {
	local ns=$1
	shift
	python3 - "$ns" "$TAPFLOW" "$@" <<'EOF'
import os, signal, subprocess, sys, time
ns, tapflow, args = sys.argv[1], sys.argv[2], sys.argv[3:]
t0 = time.monotonic()
p = subprocess.Popen(["ip", "netns", "exec", ns, tapflow] + args,
                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
line = p.stdout.readline()
t1 = time.monotonic()
p.send_signal(signal.SIGTERM)
p.stdout.read()
rc = p.wait()
t2 = time.monotonic()
print("%.4f %.4f %d" % (t1 - t0 if line else -1, t2 - t1, rc))
EOF
}

# clsact qdiscs left in the namespace (TCX links die with their process).
hooks_left() {
	ip -n "$1" qdisc show 2>/dev/null | grep -c clsact
}

attach_part() {
	local ns=${ID}n i mode n r first exit rc args firsts exits left=0
	local results=()

	need_tools ip python3
	ns_add "$ns"
	log "creating $NIF veth pairs in $ns"
	for ((i = 0; i < NIF; i++)); do
		echo "link add sa$i type veth peer name sb$i"
		echo "link set sa$i up"
		echo "link set sb$i up"
	done >"$WORK/links"
	ip -n "$ns" -batch "$WORK/links" || die "cannot create the veth pairs"
	for mode in tcx clsact; do
		for n in 1 "$NIF"; do
			args=(--no-libvirt --json flows -i 0.01 --max-flows "$FLOWS" --attach "$mode")
			for ((i = 0; i < n; i++)); do args+=(--iface "sa$i"); done
			firsts=()
			exits=()
			for ((r = 0; r < ROUNDS; r++)); do
				read -r first exit rc < <(timed_run "$ns" "${args[@]}")
				[ "$rc" = 0 ] && [ "$first" != "-1" ] ||
					die "tapflow --attach $mode on $n interfaces failed (exit $rc)"
				left=$(hooks_left "$ns")
				[ "$left" = 0 ] || die "$left hooks left after tapflow --attach $mode"
				firsts+=("$first")
				exits+=("$exit")
				log "$mode, $n interface(s): first record after $first s, exit $exit s after SIGTERM"
			done
			results+=("$(jq -n --arg mode "$mode" --argjson n "$n" \
				--argjson f "$(jarr "${firsts[@]}")" --argjson e "$(jarr "${exits[@]}")" \
				'{mode: $mode, interfaces: $n, first_s: $f, exit_s: $e,
				  first_median_s: ($f | sort | .[length / 2 | floor]),
				  exit_median_s: ($e | sort | .[length / 2 | floor])}')")
		done
	done
	jarr "${results[@]}" >"$WORK/attach.json"
}

report_part() {
	log "report_cost: $FLOWS flows on 1 and $NIF interfaces"
	"$REPORT_COST" --json --flows "$FLOWS" --ifaces "1,$NIF" --rounds "$ROUNDS" \
		--walk-rounds 1 >"$WORK/report.json" || die "report_cost failed"
}

echo null >"$WORK/attach.json"
echo null >"$WORK/report.json"
[ "$ATTACH_PART" = 1 ] && attach_part
[ "$REPORT_PART" = 1 ] && report_part
RESULT=$(jq -n --argjson nif "$NIF" --argjson flows "$FLOWS" --argjson rounds "$ROUNDS" \
	--slurpfile a "$WORK/attach.json" --slurpfile r "$WORK/report.json" \
	'{interfaces: $nif, flows: $flows, rounds: $rounds, attach: $a[0], report: $r[0]}')

if [ "$JSON" = 1 ]; then
	echo "$RESULT"
	exit 0
fi
jq -r '
	def f2: . * 100 | round / 100 | tostring;
	def f1: . * 10 | round / 10 | tostring;
	(if .attach then .interfaces as $n |
		"| attach mode | 1 interface: first record, s | \($n): first record, s | " +
		"\($n) − 1 | 1: exit after SIGTERM, s | \($n): exit, s | \($n) − 1 |",
		"|---|---:|---:|---:|---:|---:|---:|",
		(.attach | group_by(.mode)[] | (.[] | select(.interfaces == 1)) as $one |
			(.[] | select(.interfaces != 1)) as $many |
			"| \($one.mode) | \($one.first_median_s | f2) | \($many.first_median_s | f2) | " +
			"\($many.first_median_s - $one.first_median_s | f2) | " +
			"\($one.exit_median_s | f2) | \($many.exit_median_s | f2) | " +
			"\($many.exit_median_s - $one.exit_median_s | f2) |"),
		""
	 else empty end),
	(if .report then .flows as $fl |
		"| \($fl) flows | poll, ms | table, ms | json, ms | top rows, ms | " +
		"table, walk, ms | json, walk, ms | top rows, walk, ms |",
		"|---|---:|---:|---:|---:|---:|---:|---:|",
		(.report.results[] |
			"| \(.interfaces) interface(s) | \(.poll_ms | f1) | \(.table_ms | f1) | " +
			"\(.json_ms | f1) | \(.top_ms | f1) | \(.table_walk_ms | f1) | " +
			"\(.json_walk_ms | f1) | \(.top_walk_ms | f1) |"),
		(.report.results as $r | "| ratio \($r[-1].interfaces)/\($r[0].interfaces) | " +
			"\($r[-1].poll_ms / $r[0].poll_ms | f2) | " +
			"\($r[-1].table_ms / $r[0].table_ms | f2) | \($r[-1].json_ms / $r[0].json_ms | f2) | " +
			"\($r[-1].top_ms / $r[0].top_ms | f2) | " +
			"\($r[-1].table_walk_ms / $r[0].table_walk_ms | f2) | " +
			"\($r[-1].json_walk_ms / $r[0].json_walk_ms | f2) | " +
			"\($r[-1].top_walk_ms / $r[0].top_walk_ms | f2) |")
	 else empty end)
' <<<"$RESULT"
