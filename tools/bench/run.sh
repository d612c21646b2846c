#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# run.sh: the whole benchmark in one run:
# prog_cost (ns per packet of tapflow's programs under BPF_PROG_TEST_RUN,
# next to an empty program), flow_cost (the flow map variants: contention,
# inserts, full map, memory, userspace reads) and throughput.sh (iperf3
# across veth + bridge with nothing, `tapflow stats` and `tapflow flows`
# attached, then flowgen's 100 000 flows: flow map memory, tapflow's RSS,
# a map 4 x too small, the accounting check) and nat.sh (NATed traffic
# from a VM behind a bridge to an "internet": throughput with nothing,
# `tapflow flows --no-nat` and `tapflow flows` attached, and the flow
# path's ns per forwarded packet with the NAT join on and off), drops.sh
# (64-byte UDP floods dropped in FORWARD, from a traced VM port and from
# an untraced interface: packet rate with nothing, `tapflow stats
# --no-drops` and `tapflow stats` attached, and tf_kfree_skb's ns per run
# in situ) and capture.sh (iperf3 across veth + bridge with nothing,
# `tapflow capture --sample 100 --snaplen 128` and `tcpdump -i br0 -s 128`:
# throughput, the capturing process's CPU time, frames written) and
# scale.sh (512 interfaces: attach, first report and exit times, TCX and
# clsact; one poll and report of 1 000 000 flows on 1 and 512 interfaces,
# with the index by interface and without) and agent.sh (`tapflow agent`
# on 512 interfaces of 10 flow series each, and on 1: scrape time,
# exposition size, RSS over 200 scrapes, CPU idle and under traffic next
# to an idle `tapflow stats`) and ipfix.sh (iperf3 and many short UDP flows
# across veth + bridge with nothing, softflowd and `tapflow agent --ipfix`
# exporting IPFIX to a local nfcapd: CPU per GB and per record, records
# received, RSS), then a summary block for the README. About
# twenty minutes, scale.sh's seven, agent.sh's eight and ipfix.sh's three.
#
#   tools/bench/run.sh [--json] [--skip-nat] [--skip-drops] [--skip-capture]
#                      [--skip-scale] [--skip-agent] [--skip-ipfix]
#                      [throughput.sh options...]
#   tools/bench/run.sh --report     the summary of the last run again
#
# NAT_OPTS="..." passes options to nat.sh (e.g. NAT_OPTS="-r 6"),
# DROPS_OPTS="..." to drops.sh, CAPTURE_OPTS="..." to capture.sh,
# SCALE_OPTS="..." to scale.sh, AGENT_OPTS="..." to agent.sh, IPFIX_OPTS="..."
# to ipfix.sh.
# Build first: make && make -C tools/bench (or make -C tools/bench run).
# The summary and the raw JSON are kept in .output/bench/last.{md,json}.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PROG_COST=${PROG_COST:-$ROOT/.output/bench/prog_cost}
FLOW_COST=${FLOW_COST:-$ROOT/.output/bench/flow_cost}
OUT=$ROOT/.output/bench
# prog_cost is pinned (unpinned, migrations between rounds spread its figures
# by 20 %), to the last CPU: iperf3 runs on CPU 0, which here also takes four
# times the timer interrupts.
COST_CPU=${COST_CPU:-$(($(nproc) - 1))}

JSON=0
REPORT_ONLY=0
NAT=1
DROPS=1
CAPTURE=1
SCALE=1
AGENT=1
IPFIX=1
TP_ARGS=()
# shellcheck disable=SC2206 # options, split as the shell would
NAT_ARGS=(${NAT_OPTS:-})
# shellcheck disable=SC2206
DROPS_ARGS=(${DROPS_OPTS:-})
# shellcheck disable=SC2206
CAPTURE_ARGS=(${CAPTURE_OPTS:-})
# shellcheck disable=SC2206
SCALE_ARGS=(${SCALE_OPTS:-})
# shellcheck disable=SC2206
AGENT_ARGS=(${AGENT_OPTS:-})
# shellcheck disable=SC2206
IPFIX_ARGS=(${IPFIX_OPTS:-})
for a in "$@"; do
	case $a in
	--json) JSON=1 ;;
	--report) REPORT_ONLY=1 ;;
	--skip-nat) NAT=0 ;;
	--skip-drops) DROPS=0 ;;
	--skip-capture) CAPTURE=0 ;;
	--skip-scale) SCALE=0 ;;
	--skip-agent) AGENT=0 ;;
	--skip-ipfix) IPFIX=0 ;;
	-h|--help) sed -n '/^#   tools/,/^#$/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) TP_ARGS+=("$a") ;;
	esac
done

die() { echo "run.sh: $*" >&2; exit 1; }
command -v jq >/dev/null || die "jq not found"

# Children run in the background so that a signal reaches this shell at
# once; it is passed on to the running child, which cleans up after itself.
CHILD=
on_signal() {
	[ -n "$CHILD" ] && kill -TERM "$CHILD" 2>/dev/null && wait "$CHILD" 2>/dev/null
	exit "$1"
}

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

# Both parts, combined into $OUT/last.json.
measure() {
	local started load1 t0 cpu_model rev

	[ "$(id -u)" -eq 0 ] || die "needs root"
	[ -x "$PROG_COST" ] || die "$PROG_COST not built (make -C tools/bench)"
	[ -x "$FLOW_COST" ] || die "$FLOW_COST not built (make -C tools/bench)"
	mkdir -p "$OUT" || die "cannot create $OUT"
	trap 'on_signal 130' INT
	trap 'on_signal 143' TERM

	started=$(date -u '+%Y-%m-%d %H:%M UTC')
	# Recorded with the figures; throughput.sh watches the free CPUs itself.
	read -r load1 _ </proc/loadavg
	t0=$SECONDS
	echo "# prog_cost: BPF_PROG_TEST_RUN, CPU $COST_CPU" >&2
	run_child "$OUT/prog_cost.json" "$PROG_COST" --cpu "$COST_CPU" --json ||
		die "prog_cost failed"
	echo "# flow_cost: flow map variants" >&2
	run_child "$OUT/flow_cost.json" "$FLOW_COST" --json || die "flow_cost failed"
	echo "# throughput.sh ${TP_ARGS[*]}" >&2
	run_child "$OUT/throughput.json" "$HERE/throughput.sh" --json "${TP_ARGS[@]}" ||
		die "throughput.sh failed"
	if [ "$NAT" -eq 1 ]; then
		echo "# nat.sh ${NAT_ARGS[*]}" >&2
		run_child "$OUT/nat.json" "$HERE/nat.sh" --json "${NAT_ARGS[@]}" || die "nat.sh failed"
	else
		echo null >"$OUT/nat.json"
	fi
	if [ "$DROPS" -eq 1 ]; then
		echo "# drops.sh ${DROPS_ARGS[*]}" >&2
		run_child "$OUT/drops.json" "$HERE/drops.sh" --json "${DROPS_ARGS[@]}" ||
			die "drops.sh failed"
	else
		echo null >"$OUT/drops.json"
	fi
	if [ "$CAPTURE" -eq 1 ]; then
		echo "# capture.sh ${CAPTURE_ARGS[*]}" >&2
		run_child "$OUT/capture.json" "$HERE/capture.sh" --json "${CAPTURE_ARGS[@]}" ||
			die "capture.sh failed"
	else
		echo null >"$OUT/capture.json"
	fi
	if [ "$SCALE" -eq 1 ]; then
		echo "# scale.sh ${SCALE_ARGS[*]}" >&2
		run_child "$OUT/scale.json" "$HERE/scale.sh" --json "${SCALE_ARGS[@]}" ||
			die "scale.sh failed"
	else
		echo null >"$OUT/scale.json"
	fi
	if [ "$AGENT" -eq 1 ]; then
		echo "# agent.sh ${AGENT_ARGS[*]}" >&2
		run_child "$OUT/agent.json" "$HERE/agent.sh" --json "${AGENT_ARGS[@]}" ||
			die "agent.sh failed"
	else
		echo null >"$OUT/agent.json"
	fi
	if [ "$IPFIX" -eq 1 ]; then
		echo "# ipfix.sh ${IPFIX_ARGS[*]}" >&2
		run_child "$OUT/ipfix.json" "$HERE/ipfix.sh" --json "${IPFIX_ARGS[@]}" ||
			die "ipfix.sh failed"
	else
		echo null >"$OUT/ipfix.json"
	fi

	cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
	rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "no commit")
	[ -n "$(git -C "$ROOT" status --porcelain 2>/dev/null)" ] && rev="$rev + local changes"
	jq -n --arg date "$started" --arg kernel "$(uname -r)" --arg cpu "${cpu_model:-?}" \
		--argjson ncpu "$(nproc)" --arg rev "$rev" --argjson loadavg "$load1" \
		--argjson elapsed "$((SECONDS - t0))" \
		--slurpfile pc "$OUT/prog_cost.json" --slurpfile tp "$OUT/throughput.json" \
		--slurpfile fc "$OUT/flow_cost.json" --slurpfile nat "$OUT/nat.json" \
		--slurpfile drops "$OUT/drops.json" --slurpfile capture "$OUT/capture.json" \
		--slurpfile scale "$OUT/scale.json" --slurpfile agent "$OUT/agent.json" \
		--slurpfile ipfix "$OUT/ipfix.json" \
		'{type: "bench", date: $date, kernel: $kernel, cpu: $cpu, cpus: $ncpu,
		  tapflow: $rev, loadavg: $loadavg, elapsed_s: $elapsed,
		  prog_cost: $pc[0], flow_cost: $fc[0], throughput: $tp[0], nat: $nat[0],
		  drops: $drops[0], capture: $capture[0], scale: $scale[0], agent: $agent[0],
		  ipfix: $ipfix[0]}' \
		>"$OUT/last.json" ||
		die "cannot combine the results"
}

# The README block: one markdown table, off = without tapflow (for the
# test-run rows: the empty program), on = with it.
summary() {
	jq -r -L "$HERE" 'include "agent"; include "ipfix";
	# Fixed decimals (jq has no printf), and an explicit sign.
	def f($d):
		if . < 0 then "-" + (-. | f($d))
		elif $d == 0 then round | tostring
		else (. * pow(10; $d) | round) as $n | pow(10; $d) as $p |
			"\(($n / $p) | floor).\(($n % $p) | tostring | ("0" * ($d - length)) + .)"
		end;
	def sf($d): if . < 0 then f($d) else "+" + f($d) end;
	def row($m; $off; $on; $r): "| \($m) | \($off) | \($on) | \($r) |";
	def tput($m; $x; $scale; $d):
		row($m; $x.off_median / $scale | f($d); $x.on_median / $scale | f($d); $x.ratio | f(3));
	def range($x): "\($x.ratio_min | f(3))–\($x.ratio_max | f(3))";

	.prog_cost as $pc | .throughput as $tp |
	"tapflow bench, \(.date): kernel \(.kernel), \(.cpu) (\(.cpus) CPUs), " +
	"tapflow \(.tapflow), attach \($tp.attach_mode), load average \(.loadavg) at start, " +
	"\(.elapsed_s) s",
	"",
	"| measurement | off | on | ratio on/off |",
	"|---|---:|---:|---:|",
	($pc.results[] | select(.prog != "empty") | . as $x |
		($pc.results[] | select(.frame == $x.frame and .prog == "empty")) as $e |
		row("\($x.prog), \($x.frame) B frame: ns/packet, BPF_PROG_TEST_RUN (off = empty program)";
		    "\($e.median_ns | f(0)) (min \($e.min_ns | f(0)))";
		    "\($x.median_ns | f(0)) (min \($x.min_ns | f(0)))";
		    "\($x.ratio | f(2)) (\($x.delta_ns | sf(0)) ns; mins: \($x.ratio_min | f(2)), " +
		    "\($x.delta_min_ns | sf(0)) ns)")),
	(($tp.cmds // ["stats"])[] as $c | ($tp.by_cmd[$c] // $tp) as $x |
		tput("TCP A→B via veth+bridge, `\($c)` on: Gbit/s"; $x.tcp_a_to_b; 1e9; 2),
		tput("TCP B→A via veth+bridge, `\($c)` on: Gbit/s"; $x.tcp_b_to_a; 1e9; 2),
		tput("UDP \($tp.udp_frame_bytes) B frames via veth+bridge, `\($c)` on: kpps";
		     $x.udp_pps; 1e3; 1)),
	"",
	"Test runs: median and min of \($pc.rounds) rounds of \($pc.repeat) runs on CPU \($pc.cpu); " +
	"ratio and difference of the medians, and of the mins. " +
	"Throughput: median of \($tp.rounds) ABBA rounds of \($tp.seconds) s, iperf3 ends on CPUs " +
	"\($tp.iperf3_affinity // "unpinned"); ratio = median of the per-round on/off ratios " +
	"(range: " + ([($tp.cmds // ["stats"])[] as $c | ($tp.by_cmd[$c] // $tp) as $x |
		"`\($c)`: TCP A→B \(range($x.tcp_a_to_b)), B→A \(range($x.tcp_b_to_a)), " +
		"UDP \(range($x.udp_pps))"] | join("; ")) + ").",
	(($tp.cmds // ["stats"])[] as $c | ($tp.by_cmd[$c] // $tp) as $x |
	"tapflow \($c) itself: \($x.tapflow.cpu_ms | f(0)) ms CPU in \($x.tapflow.wall_s | f(0)) s " +
	"attached (\($x.tapflow.cpu_percent_of_one_core | f(3)) % of a core), " +
	"RSS \($x.tapflow.max_rss_kib) KiB at most (loading), " +
	"\($x.tapflow.end_rss_kib // "?") KiB at the end of a block." +
	(if $x.insitu then " In situ, UDP run with BPF run-time stats on: " +
		($x.insitu | map("\(.name) \(.ns_per_run | f(0)) ns/run") | join(", ")) + "."
	 else "" end)),
	(if $tp.scale then $tp.scale as $s | $s.full as $u | $s.fit as $fit |
		($u.blocks | map(select(.state == "on"))) as $on |
		def mb: . / 1e6 | f(2);
		def acc($b): $b.accounting as $a |
			"rx \($a.tapflow_rx_packets) = \($a.iface_rx_packets), " +
			"tx \($a.tapflow_tx_packets) = \($a.iface_tx_packets) (" +
			($a.rows | to_entries | map("\(.key) \(.value.packets) pkts" +
				(if .key == "flow" or .key == "others" or .key == "expired"
				 then " in \(.value.flows) flows" else "" end)) | join(", ")) +
			"; flows seen \($a.flows_seen), map_full \($a.map_full), " +
			"parse_errors \($a.parse_errors)): " +
			(if $a.exact then "exact" else "**NOT EXACT**" end);
		"",
		"Flows at scale: flowgen sends \($s.flows) distinct UDP flows × \($fit.passes) frames of " +
		"64 B from A to B (`tapflow flows --iface pa --top 10`, pa = the bridge port of A: the " +
		"flows are its flows), iperf3 TCP A→B for \($tp.seconds) s after them in the 4× blocks:",
		"",
		"| flows | off | on | ratio on/off |",
		"|---|---:|---:|---:|",
		"| flow map at default settings, 65 536 flows (`bpftool map show`) | | " +
			"\($tp.flow_map.bytes_key) + \($tp.flow_map.bytes_value) B × " +
			"\($tp.flow_map.max_entries) = \($tp.flow_map.raw_bytes | mb) MB; memlock " +
			"\($tp.flow_map.bytes_memlock | mb) MB (\($tp.flow_map.memlock_per_entry | f(0)) B/flow) | |",
		"| map of \($fit.max_flows): memlock (bpftool) | | \($fit.flow_map.bytes_memlock | mb) MB | |",
		"| tapflow RSS, \($s.flows) flows in a map of \($fit.max_flows) (end; peak) | | " +
			"\($fit.tapflow.end_rss_kib) KiB; \($fit.tapflow.max_rss_kib) KiB (" +
			"\(($fit.tapflow.end_rss_kib - ($tp.by_cmd.flows.tapflow.end_rss_kib // 0)) * 1024 /
			   $s.flows | f(0)) B/flow over the \($tp.by_cmd.flows.tapflow.end_rss_kib // "?") KiB " +
			"of `flows` with a few flows) | |",
		"| tapflow RSS, \($s.flows) flows into a map of \($u.max_flows) (end) | | " +
			"\($on | map(.tapflow.end_rss_kib) | max) KiB | |",
		"| 64 B frames, \($s.flows) flows, map of \($fit.max_flows) (all fit; inserts; one pair): kpps | " +
			"\($s.fit_off.delivered_pps / 1e3 | f(1)) | \($fit.delivered_pps / 1e3 | f(1)) | " +
			"\($fit.delivered_pps / $s.fit_off.delivered_pps | f(3)) |",
		"| 64 B frames, \($s.flows) flows, map of \($u.max_flows) (\($u.times_map | f(0))× too small): kpps | " +
			"\($u.delivered_pps.off_median / 1e3 | f(1)) | \($u.delivered_pps.on_median / 1e3 | f(1)) | " +
			"\($u.delivered_pps.ratio | f(3)) (\(range($u.delivered_pps))) |",
		"| TCP A→B, map of \($u.max_flows) full: Gbit/s | " +
			"\($u.tcp_a_to_b.off_median / 1e9 | f(2)) | \($u.tcp_a_to_b.on_median / 1e9 | f(2)) | " +
			"\($u.tcp_a_to_b.ratio | f(3)) (\(range($u.tcp_a_to_b))) |",
		"",
		"Accounting, the final report of tapflow on pa (flows + aggregates) = the kernel counters of pa: " +
		"map of \($fit.max_flows): " + acc($fit) + "; map of \($u.max_flows): " +
		($on | map(acc(.)) | join("; ")) + ". frames flowgen sent = tx counter of eth0 in A, no drops: " +
		(if $u.generator_exact and $fit.generator_exact then "yes" else "**no**" end) + "."
	 else empty end),
	(if .nat then .nat as $n |
		def nrow($m; $x; $scale; $d):
			"| \($m) | \($x.nat_vs_off.off_median / $scale | f($d)) | " +
			"\($x.nat_vs_no_nat.off_median / $scale | f($d)) | " +
			"\($x.nat_vs_off.on_median / $scale | f($d)) | \($x.nat_vs_off.ratio | f(3)) | " +
			"\($x.nat_vs_no_nat.ratio | f(3)) |";
		def way($k): {up: "VM→internet", down: "internet→VM", both: "both ways"}[$k];
		def progs($p): $p | map(select(.ns_per_packet >= 1) |
			"\(.name) \(.ns_per_run | f(0)) ns × \(.runs_per_packet | f(2))") | join(", ");
		"",
		"NAT join (`nat.sh`): a VM namespace → bridge port vport → br0 → routing, MASQUERADE → " +
		"uplink up0 → an \"internet\" namespace; tapflow `\($n.topology.tapflow)` in the " +
		"router namespace, with the join (`flows`) and without (`flows --no-nat`), against " +
		"nothing attached (off):",
		"",
		"| NAT traffic | off | `flows --no-nat` | `flows` | ratio flows/off | ratio flows/`--no-nat` |",
		"|---|---:|---:|---:|---:|---:|",
		($n.figures | to_entries[] | .key as $k | (.key | startswith("tcp")) as $tcp |
			nrow({tcp_up: "TCP VM→internet: Gbit/s", tcp_down: "TCP internet→VM: Gbit/s",
			      udp_up: "UDP \($n.udp_frame_bytes) B VM→internet: kpps",
			      udp_down: "UDP \($n.udp_frame_bytes) B internet→VM: kpps"}[$k];
			     .value; (if $tcp then 1e9 else 1e3 end); (if $tcp then 2 else 1 end))),
		(if $n.insitu then $n.insitu.per_packet | to_entries[] |
			"| flow path per forwarded packet, \(way(.key)), BPF stats on: ns | | " +
			"\(.value.no_nat_ns | f(1)) | \(.value.nat_ns | f(1)) | | " +
			"\(.value.ratio | f(3)) (\(.value.added_ns | sf(1)) ns) |"
		 else empty end),
		(if $n.switching then
			"| UDP VM→internet, the TC programs of `flows` switched on and off every " +
			"\($n.switching.period_ms) ms (\($n.switching.on_periods) on periods) | | | | " +
			"\($n.switching.ratio | f(3)) | |"
		 else empty end),
		"",
		"Throughput: median of \($n.rounds) ABBA rounds of \($n.seconds) s (off, `--no-nat`, " +
		"`flows` / reversed), iperf3 client in the VM, server in the internet, both on CPUs " +
		"\($n.iperf3_affinity // "unpinned"); ratio = median of the per-round ratios (flows/off " +
		"range: " + ($n.figures | to_entries | map("\(.key) \(range(.value.nat_vs_off))") |
			join(", ")) + "). " +
		"Join check: every TCP/UDP flow of vport joined to its uplink flow (translated to " +
		"\($n.topology.uplink)), forwarding loss seen by tapflow tx \($n.fwd_lost.tx), " +
		"rx \($n.fwd_lost.rx). tapflow `flows`: \($n.tapflow.nat.cpu_percent_of_one_core | f(3)) % " +
		"of a core, RSS \($n.tapflow.nat.end_rss_kib) KiB at the end of a block." +
		(if $n.insitu then $n.insitu as $i |
			" Per packet: intervals of their own with the BPF run-time statistics on, " +
			"\($i.rounds) ABBA round(s) of `--no-nat`/`flows`, \($n.udp_frame_bytes) B UDP frames " +
			"for \($n.seconds) s each way; the flow path = the sum of run_time_ns of tapflow\u0027s TC " +
			"programs / the packets across the VM\u0027s port (its kernel counters, rx + tx); " +
			"tapflow\u0027s other programs (the drop tracer) apart: " +
			"\($i.per_packet.both.other_progs_no_nat_ns // 0 | f(1)) / " +
			"\($i.per_packet.both.other_progs_nat_ns // 0 | f(1)) ns per packet; ratio = median of " +
			"the per-round ratios (" + ($i.per_packet | to_entries |
				map("\(way(.key)) \(range(.value))") | join(", ")) + "), target ≤ " +
			"\($i.target_ratio_max). Programs, ns per run × runs per forwarded packet: " +
			([["no_nat", "up"], ["nat", "up"], ["no_nat", "down"], ["nat", "down"]] |
				map("`\(if .[0] == "nat" then "flows" else "--no-nat" end)` " +
				    "\(way(.[1])): " + progs($i.programs[.[0]][.[1]])) | join("; ")) + "."
		 else "" end) +
		(if $n.switching then $n.switching as $w |
			" Switched: with nothing else attached, flow_toggle attached and detached the TC " +
			"programs of `flows` (set up as tapflow sets them up) every \($w.period_ms) ms for " +
			"\($w.seconds) s of one iperf3 UDP run, counting the packets leaving up0 every 10 ms; " +
			"ratio = median over the on periods of each one\u0027s rate over the mean of the off " +
			"periods on either side (mean \($w.ratio_mean | f(3)), range \($w.ratio_min | f(3))–" +
			"\($w.ratio_max | f(3)))."
		 else "" end)
	 else empty end),
	(if .drops then .drops as $d |
		def drow($m; $x):
			"| \($m) | \($x.drops_vs_off.off_median / 1e3 | f(1)) | " +
			"\($x.drops_vs_nodrops.off_median / 1e3 | f(1)) | " +
			"\($x.drops_vs_off.on_median / 1e3 | f(1)) | \($x.drops_vs_off.ratio | f(3)) | " +
			"\($x.drops_vs_nodrops.ratio | f(3)) |";
		"",
		"Drop tracer (`drops.sh`): 64 B UDP floods dropped by iptables in FORWARD in a router " +
		"namespace, from a VM namespace through its bridge port vport and br0 (traced) and from " +
		"another namespace through oport (not traced); tapflow `\($d.topology.tapflow)` " +
		"`stats --no-drops` and `stats` (drop tracer on) against nothing attached (off):",
		"",
		"| drop flood | off | `stats --no-drops` | `stats` | ratio stats/off | ratio stats/`--no-drops` |",
		"|---|---:|---:|---:|---:|---:|",
		drow("VM\u0027s flood, traced interfaces: kpps sent"; $d.figures.vm),
		drow("other flood, untraced interface: kpps sent"; $d.figures.other),
		(if $d.insitu then
			"| `tf_kfree_skb` per run, drops of the untraced interface, BPF stats on: ns | | | " +
			"\($d.insitu.other.ns_per_run | f(1)) | | |",
			"| `tf_kfree_skb` per run, drops of the traced interfaces, BPF stats on: ns | | | " +
			"\($d.insitu.vm.ns_per_run | f(1)) | | |"
		 else empty end),
		(if $d.switching then
			"| VM\u0027s flood, the tracer switched on and off every \($d.switching.period_ms) ms " +
			"(\($d.switching.on_periods) on periods) | | | | | \($d.switching.ratio | f(3)) |"
		 else empty end),
		"",
		"Floods: \($d.sender.program), on CPU \($d.sender.cpu // "any"), \($d.seconds) s each; " +
		"the figure is the sender\u0027s frames per second (the DROP rules counted " +
		"\($d.figures.vm.dropped_of_sent | f(4)) and \($d.figures.other.dropped_of_sent | f(4)) of " +
		"them); median of \($d.rounds) ABBA rounds; ratio = median of the per-round ratios " +
		"(stats/`--no-drops` range: VM \(range($d.figures.vm.drops_vs_nodrops)), other " +
		"\(range($d.figures.other.drops_vs_nodrops))), target ≥ \($d.target_ratio_min) for the " +
		"VM\u0027s flood. Tracer check: `stats` counted \($d.tracer_check.counted_by_tapflow) of the " +
		"VM floods\u0027 \($d.tracer_check.vm_flood_drops_by_rule) drops (\($d.tracer_check.missing) " +
		"missing). tapflow itself during the floods: `stats` \($d.tapflow.drops.cpu_percent_of_one_core | f(3)) % " +
		"of a core, `stats --no-drops` \($d.tapflow.nodrops.cpu_percent_of_one_core | f(3)) %." +
		(if $d.insitu then $d.insitu as $i |
			" In situ: \($i.rounds) round(s) of both floods under `stats` with the BPF run-time " +
			"statistics on; `tf_kfree_skb` runs on every drop of the host (the floods were " +
			"\($i.other.flood_share_of_runs * 100 | f(1)) % and \($i.vm.flood_share_of_runs * 100 | f(1)) % " +
			"of its runs); per frame of the VM\u0027s flood tapflow\u0027s TC programs (`tf_ingress` " +
			"on vport and br0, there with and without the tracer) took " +
			"\($i.vm.tc_ns_per_flood_packet | f(1)) ns besides."
		 else "" end) +
		(if $d.switching then $d.switching as $w |
			" Switched: under `stats --no-drops`, drop_toggle attached and detached tapflow\u0027s " +
			"drop tracer (set up as tapflow sets it up) every \($w.period_ms) ms for \($w.seconds) s " +
			"of the VM\u0027s flood, which logged its progress every 10 ms; ratio = median over the " +
			"on periods of each one\u0027s rate over the mean of the off periods on either side " +
			"(mean \($w.ratio_mean | f(3)), range \($w.ratio_min | f(3))–\($w.ratio_max | f(3))); " +
			"the tracer counted \($w.drops_counted_by_tracer) of the flood\u0027s " +
			"\($w.dropped_by_rule) drops while on."
		 else "" end)
	 else empty end),
	(if .capture then .capture as $c |
		def crow($m; $x; $scale; $d):
			"| \($m) | \($x.capture_vs_off.off_median / $scale | f($d)) | " +
			"\($x.capture_vs_off.on_median / $scale | f($d)) | " +
			"\($x.tcpdump_vs_off.on_median / $scale | f($d)) | " +
			"\($x.capture_vs_off.ratio | f(3)) | \($x.tcpdump_vs_off.ratio | f(3)) |";
		def blocks($x): $x.blocks | length;
		"",
		"Capture (`capture.sh`): iperf3 across veth + bridge as above, with nothing capturing (off), " +
		"`\($c.states.capture)` and `\($c.states.tcpdump)`:",
		"",
		"| capture | off | `tapflow capture` | tcpdump | ratio capture/off | ratio tcpdump/off |",
		"|---|---:|---:|---:|---:|---:|",
		crow("TCP A→B: Gbit/s"; $c.figures.tcp_ab; 1e9; 2),
		crow("TCP B→A: Gbit/s"; $c.figures.tcp_ba; 1e9; 2),
		(if $c.figures.udp then
			crow("UDP \($c.udp_frame_bytes) B A→B: kpps"; $c.figures.udp; 1e3; 1) else empty end),
		"| capturing process CPU while the traffic ran: ms per block (% of a core) | | " +
			"\($c.capturing.capture.cpu_ms_per_block_median | f(0)) " +
			"(\($c.capturing.capture.cpu_percent_of_one_core | f(2)) %) | " +
			"\($c.capturing.tcpdump.cpu_ms_per_block_median | f(0)) " +
			"(\($c.capturing.tcpdump.cpu_percent_of_one_core | f(2)) %) | | |",
		"| frames written per block (of the frames forwarded) | | " +
			"\($c.capturing.capture.frames_written / blocks($c.capturing.capture) | f(0)) " +
			"(\($c.capturing.capture.written_per_forwarded * 100 | f(2)) %) | " +
			"\($c.capturing.tcpdump.frames_written / blocks($c.capturing.tcpdump) | f(0)) " +
			"(\($c.capturing.tcpdump.written_per_forwarded * 100 | f(2)) %) | | |",
		"| CPU per frame written: µs | | " +
			"\($c.capturing.capture.cpu_us_per_frame_written // 0 | f(2)) | " +
			"\($c.capturing.tcpdump.cpu_us_per_frame_written // 0 | f(2)) | | |",
		"",
		"Capture: median of \($c.rounds) ABBA rounds of \($c.seconds) s per figure, iperf3 ends on " +
		"CPUs \($c.iperf3_affinity // "unpinned"); ratio = median of the per-round ratios (capture/off " +
		"range: " + ($c.figures | to_entries | map("\(.key) \(range(.value.capture_vs_off))") |
			join(", ")) + "; tcpdump/off: " + ($c.figures | to_entries |
			map("\(.key) \(range(.value.tcpdump_vs_off))") | join(", ")) + "), target capture/off ≥ " +
		"\($c.target_ratio_min). Both with a snaplen of \($c.snaplen) B. tapflow samples 1 in " +
		"\($c.sample) per interface, and each forwarded frame crosses two ports (pa, pb); tcpdump " +
		"on the bridge (promiscuous) sees and writes every forwarded frame. CPU: the process\u0027s " +
		"threads only (scheduler run time from attach to the end of the traffic); the BPF " +
		"programs and AF_PACKET\u0027s copies run in softirq on the iperf3 CPU and show in the " +
		"throughput. tapflow: sampled \($c.capturing.capture.sampled), lost " +
		"\($c.capturing.capture.lost) (ring buffer full), the file holds every sample: " +
		"\($c.capturing.capture.written_equals_sampled); tcpdump: \($c.capturing.tcpdump.received_by_filter) " +
		"received by the filter, \($c.capturing.tcpdump.captured) captured (the rest: its last ring " +
		"block, unread at SIGINT), \($c.capturing.tcpdump.dropped_by_kernel) dropped by the kernel."
	 else empty end),
	(if .scale then .scale as $s |
		"",
		"Scale (`scale.sh`): \($s.interfaces) veth pairs in a namespace; `tapflow -v --json flows " +
		"-i 0.01 --max-flows \($s.flows) --iface ...` on 1 and on all of them, median of " +
		"\($s.rounds) runs: loading, attaching (with the drop tracer\u0027s start) and detaching " +
		"as tapflow times them (-v), exec to the first record and SIGTERM to exit; no clsact " +
		"qdisc left after any run:",
		"",
		(if $s.attach then
			"| attach mode | interfaces | load, s | attach, s | first record, s | detach, s | " +
			"exit after SIGTERM, s |",
			"|---|---:|---:|---:|---:|---:|---:|",
			($s.attach[] | "| \(.mode) | \(.interfaces) | \(.load_median_s | f(2)) | " +
				"\(.attach_median_s | f(2)) | \(.first_median_s | f(2)) | " +
				"\(.detach_median_s | f(2)) | \(.exit_median_s | f(2)) |"),
			""
		 else empty end),
		(if $s.report then $s.report as $r |
			"One poll and one report of \($r.flows) flows (report_cost: tapflow\u0027s flow table " +
			"and reports on a fake map, medians of \($r.rounds) rounds; walk: every interface " +
			"walks the whole table, as before the index, \($r.walk_rounds) round):",
			"",
			"| \($r.flows) flows | poll, ms | `flows` table, ms | `--json`, ms | top rows, ms | " +
			"table, walk, ms | `--json`, walk, ms | top rows, walk, ms |",
			"|---|---:|---:|---:|---:|---:|---:|---:|",
			($r.results[] |
				"| \(.interfaces) interface(s) | \(.poll_ms | f(0)) | \(.table_ms | f(0)) | " +
				"\(.json_ms | f(0)) | \(.top_ms | f(0)) | \(.table_walk_ms | f(0)) | " +
				"\(.json_walk_ms | f(0)) | \(.top_walk_ms | f(0)) |"),
			($r.results as $x | "| ratio \($x[-1].interfaces)/\($x[0].interfaces) | " +
				"\($x[-1].poll_ms / $x[0].poll_ms | f(2)) | " +
				"\($x[-1].table_ms / $x[0].table_ms | f(2)) | " +
				"\($x[-1].json_ms / $x[0].json_ms | f(2)) | \($x[-1].top_ms / $x[0].top_ms | f(2)) | " +
				"\($x[-1].table_walk_ms / $x[0].table_walk_ms | f(2)) | " +
				"\($x[-1].json_walk_ms / $x[0].json_walk_ms | f(2)) | " +
				"\($x[-1].top_walk_ms / $x[0].top_walk_ms | f(2)) |")
		 else empty end)
	 else empty end),
	(if .agent then "", (.agent | agent_table) else empty end),
	(if .ipfix then "", (.ipfix | ipfix_table) else empty end),
	(if .flow_cost then .flow_cost as $fc |
		($fc.variants | map({(.map): .}) | add) as $v |
		def fr($l; $k; $d): "| \($l) | \($v.hash[$k] | f($d)) | " +
			"\($v.percpu_hash[$k] | f($d)) |";
		"",
		"Flow map variants (flow_cost: tf_tap_ingress, \($fc.frame) B frames, " +
		"\($fc.entries) entries, \($fc.threads) threads, \($fc.possible_cpus) possible CPUs; " +
		"medians of \($fc.rounds) rounds of \($fc.repeat) runs):",
		"",
		"| flow map | hash (tapflow) | per-CPU hash |",
		"|---|---:|---:|",
		fr("hit, 1 CPU: ns/packet"; "hit_1cpu_ns"; 0),
		fr("hit, all CPUs on one flow: ns/packet"; "hit_all_cpus_same_flow_ns"; 0),
		fr("hit, all CPUs, a flow each: ns/packet"; "hit_all_cpus_own_flow_ns"; 0),
		"| new flow, single runs: ns (hit, same frames) | " +
			"\($v.hash.insert_ns | f(0)) (\($v.hash.insert_baseline_ns | f(0))) | " +
			"\($v.percpu_hash.insert_ns | f(0)) " +
			"(\($v.percpu_hash.insert_baseline_ns | f(0))) |",
		fr("map full, new flow: ns/packet"; "full_ns"; 0),
		"| memory (memlock): MB | \($v.hash.memlock_bytes / 1e6 | f(1)) | " +
			"\($v.percpu_hash.memlock_bytes / 1e6 | f(1)) |",
		fr("userspace batch read of the full map: ms"; "read_batch_ms"; 1),
		"| bytes read: MB | \($v.hash.read_bytes / 1e6 | f(1)) | " +
			"\($v.percpu_hash.read_bytes / 1e6 | f(1)) |",
		fr("userspace batch delete of it all: ms"; "delete_batch_ms"; 1),
		""
	 else empty end),
	([{n: "throughput.sh", x: $tp}] + (if .nat then [{n: "nat.sh", x: .nat}] else [] end) +
	 (if .drops then [{n: "drops.sh", x: .drops}] else [] end) +
	 (if .capture then [{n: "capture.sh", x: .capture}] else [] end) +
	 (if .ipfix then [{n: "ipfix.sh", x: .ipfix}] else [] end)) as $w |
	"Other work: the CPUs the measured traffic did not run on (iperf3, flowgen) were busy during the kept blocks: " +
	($w | map(.x.other_cpus_busy_percent as $b |
		"\(.n) \($b.median | f(0)) % (max \($b.max | f(0)) %), " +
		"\(.x.discarded_rounds | length) round(s) above \($b.redo_above) % discarded and run again")
	 | join("; ")) + "." +
	(if $w | any(.x.other_cpus_busy_percent | .max > .redo_above) then
		" **Other load ran meanwhile: these figures are not reliable.**" else "" end)
	' "$OUT/last.json"
}

if [ "$REPORT_ONLY" -eq 0 ]; then
	measure
fi
[ -r "$OUT/last.json" ] || die "no results in $OUT/last.json: run without --report first"
summary >"$OUT/last.md.tmp" && mv "$OUT/last.md.tmp" "$OUT/last.md" ||
	die "cannot format the summary"
if jq -e '[.throughput, .nat // empty, .drops // empty, .capture // empty, .ipfix // empty] |
	any(.other_cpus_busy_percent | .max > .redo_above)' \
	"$OUT/last.json" >/dev/null; then
	echo "# warning: other load ran during the measurement (see 'Other work');" \
		"run again on a quiet machine" >&2
fi
if [ "$JSON" -eq 1 ]; then
	cat "$OUT/last.json"
else
	echo
	cat "$OUT/last.md"
fi
