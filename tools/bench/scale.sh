#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# scale.sh: tapflow with many interfaces and a big flow table.
#
#   attach   512 veth pairs in a namespace of their own; `tapflow -v --json
#            flows -i 0.01 --max-flows 1000000 --iface ...` on 1 and on all
#            512 of them, TCX and clsact: attaching and detaching as tapflow
#            times them (its -v lines "start: ..." and "detached ..."), the
#            time from exec to the first record (loading, attaching, one
#            poll and report) and from SIGTERM to exit (the final poll and
#            report, detaching, closing), median of R rounds. After each
#            run no clsact qdisc is left on any of them.
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

# timed_run NS ARGS...: tapflow ARGS in NS; prints "first_s exit_s rc load_s
# attach_s detach_s": exec to the first record on stdout, SIGTERM to exit,
# the exit status, and from its -v lines on stderr ($WORK/tapflow.err) the
# loading, attaching and detaching times (-1: no such line).
timed_run() {
	local ns=$1
	shift
	python3 - "$ns" "$TAPFLOW" "$WORK/tapflow.err" "$@" <<'EOF'
import os, re, signal, subprocess, sys, time
ns, tapflow, err, args = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
t0 = time.monotonic()
p = subprocess.Popen(["ip", "netns", "exec", ns, tapflow] + args,
                     stdout=subprocess.PIPE, stderr=open(err, "w"))
line = p.stdout.readline()
t1 = time.monotonic()
p.send_signal(signal.SIGTERM)
p.stdout.read()
rc = p.wait()
t2 = time.monotonic()
times = {"load": -1, "attach": -1, "detach": -1}
for l in open(err):
    m = re.search(r"start: ([\d.]+) s to load, .* ([\d.]+) s to attach", l)
    if m:
        times["load"], times["attach"] = float(m.group(1)), float(m.group(2))
    m = re.search(r"detached from \d+ interfaces in ([\d.]+) s", l)
    if m:
        times["detach"] = float(m.group(1))
print("%.4f %.4f %d %.4f %.4f %.4f" % (t1 - t0 if line else -1, t2 - t1, rc, times["load"],
                                       times["attach"], times["detach"]))
EOF
}

# clsact qdiscs left in the namespace (TCX links die with their process).
hooks_left() {
	ip -n "$1" qdisc show 2>/dev/null | grep -c clsact
}

attach_part() {
	local ns=${ID}n i mode n r first exit rc load attach detach args left=0
	local firsts exits loads attaches detaches
	local results=()

	need_tools ip python3
	ns_add "$ns"
	log "creating $NIF veth pairs in $ns"
	veth_pairs "$ns" "$NIF" sa sb
	for mode in tcx clsact; do
		for n in 1 "$NIF"; do
			args=(-v --no-libvirt --json flows -i 0.01 --max-flows "$FLOWS" --attach "$mode")
			for ((i = 0; i < n; i++)); do args+=(--iface "sa$i"); done
			firsts=()
			exits=()
			loads=()
			attaches=()
			detaches=()
			for ((r = 0; r < ROUNDS; r++)); do
				read -r first exit rc load attach detach < <(timed_run "$ns" "${args[@]}")
				if [ "$rc" != 0 ] || [ "$first" = "-1" ] || [ "$attach" = "-1" ] ||
					[ "$detach" = "-1" ]; then
					die "tapflow --attach $mode on $n interfaces failed (exit $rc):" \
						"$(head -3 "$WORK/tapflow.err")"
				fi
				left=$(hooks_left "$ns")
				[ "$left" = 0 ] || die "$left hooks left after tapflow --attach $mode"
				firsts+=("$first")
				exits+=("$exit")
				loads+=("$load")
				attaches+=("$attach")
				detaches+=("$detach")
				log "$mode, $n interface(s): load $load s, attach $attach s," \
					"first record after $first s; detach $detach s, exit $exit s after SIGTERM"
			done
			results+=("$(jq -n --arg mode "$mode" --argjson n "$n" \
				--argjson f "$(jarr "${firsts[@]}")" --argjson e "$(jarr "${exits[@]}")" \
				--argjson l "$(jarr "${loads[@]}")" --argjson a "$(jarr "${attaches[@]}")" \
				--argjson d "$(jarr "${detaches[@]}")" \
				'def med: sort | .[length / 2 | floor];
				{mode: $mode, interfaces: $n, first_s: $f, exit_s: $e, load_s: $l,
				 attach_s: $a, detach_s: $d, first_median_s: ($f | med),
				 exit_median_s: ($e | med), load_median_s: ($l | med),
				 attach_median_s: ($a | med), detach_median_s: ($d | med)}')")
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
		"| attach mode | interfaces | load, s | attach, s | first record, s | detach, s | " +
		"exit after SIGTERM, s |",
		"|---|---:|---:|---:|---:|---:|---:|",
		(.attach[] | "| \(.mode) | \(.interfaces) | \(.load_median_s | f2) | " +
			"\(.attach_median_s | f2) | \(.first_median_s | f2) | \(.detach_median_s | f2) | " +
			"\(.exit_median_s | f2) |"),
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
