# SPDX-License-Identifier: GPL-2.0
# ipfix.jq: the table of an ipfix.sh result, for ipfix.sh itself and for
# run.sh's summary (jq -L tools/bench 'include "ipfix"; ipfix_table').

# Fixed decimals (jq has no printf); "?" for a figure that could not be had.
def ipfix_f($d):
	if . == null then "?"
	elif . < 0 then "-" + (-. | ipfix_f($d))
	elif $d == 0 then round | tostring
	else (. * pow(10; $d) | round) as $n | pow(10; $d) as $p |
		"\(($n / $p) | floor).\(($n % $p) | tostring | ("0" * ($d - length)) + .)"
	end;
def ipfix_sf($d): if . == null or . < 0 then ipfix_f($d) else "+" + ipfix_f($d) end;

def ipfix_table:
	. as $a | ["softflowd", "tapflow"] as $cols |
	# One row: the "nothing" cell, then each contender's, or why it is missing.
	def row($what; $off; f):
		"| \($what) | \($off) | " + ($cols | map(. as $c | $a.contenders[$c] as $x |
			if $x then ($x | f)
			elif $c == "tapflow" and $a.tapflow_skipped then $a.tapflow_skipped
			else "" end) | join(" | ")) + " |";
	def tput($x; $k): "\($x[$k].on_median / 1e9 | ipfix_f(2)) (\($x[$k].ratio | ipfix_f(3)))";
	def range($x): "\($x.ratio_min | ipfix_f(3))–\($x.ratio_max | ipfix_f(3))";
	"IPFIX export next to softflowd (`ipfix.sh`): veth → bridge → veth as above; each exporter " +
	"sends to an nfcapd of its own on the bridge namespace\u0027s loopback, both pinned to CPUs " +
	"\($a.exporter_cpus), the traffic on CPUs \($a.iperf3_affinity); flows: \($a.flow_rate) " +
	"distinct UDP flows a second (one 64 B frame each) for \($a.flow_seconds) s, then " +
	"\($a.drain_s) s for them to be exported:",
	"",
	"| IPFIX export | nothing | softflowd | tapflow agent |",
	"|---|---:|---:|---:|",
	row("TCP A→B: Gbit/s (ratio to nothing)"; $a.off.tcp_ab_bps / 1e9 | ipfix_f(2); tput(.; "tcp_ab")),
	row("TCP B→A: Gbit/s (ratio to nothing)"; $a.off.tcp_ba_bps / 1e9 | ipfix_f(2); tput(.; "tcp_ba")),
	row("bulk TCP: CPU-s per GB (traffic\u0027s processes + exporter)";
		$a.off.cpu_s_per_gb | ipfix_f(3);
		.cpu_s_per_gb | ipfix_f(3)),
	row("bulk TCP: added CPU-s per GB over nothing"; ""; .added_cpu_s_per_gb | ipfix_sf(3)),
	row("bulk TCP: exporter process alone: CPU-s per GB"; ""; .exporter_cpu_s_per_gb | ipfix_f(4)),
	row("bulk TCP: collector (not above): CPU-s per GB"; ""; .collector_cpu_s_per_gb | ipfix_f(4)),
	row("short flows: records exported / received per s"; "\($a.off.flows_sent /
		$a.flow_seconds | ipfix_f(0)) flows/s offered";
		"\(.flows.exported_per_s | ipfix_f(0)) / \(.flows.received_per_s | ipfix_f(0))"),
	row("short flows: records received per flow offered (flows covered)"; "";
		"\(.flows.records_per_flow | ipfix_f(3)) (\(.flows.flows_covered * 100 | ipfix_f(2)) %)"),
	row("short flows: added CPU per record: µs (per flow offered)"; "";
		"\(.flows.added_cpu_us_per_record | ipfix_f(2)) (\(.flows.added_cpu_us_per_flow | ipfix_f(2)))"),
	row("short flows: exporter process alone: µs per record"; "";
		.flows.exporter_cpu_us_per_record | ipfix_f(2)),
	row("short flows: collector (not above): µs per record"; "";
		.flows.collector_cpu_us_per_record | ipfix_f(2)),
	row("exporter RSS: KiB at the end of a block (peak)"; "";
		"\(.exporter.rss_kib) (\(.exporter.hwm_kib))"),
	"",
	"Median of \($a.rounds) ABBA rounds; per block the exporter and its collector start afresh, " +
	"TCP runs \($a.seconds) s each way (iperf3 ends on CPUs \($a.iperf3_affinity)), then the flows. " +
	"CPU of a window: the run time of the processes that carry the traffic (iperf3\u0027s ends, " +
	"flowgen\u0027s sender and receiver, ksoftirqd of CPU " +
	($a.iperf3_affinity | split(",") | unique | join(",")) + "), which the kernel charges " +
	"with the softirq work of the path, the BPF " +
	"programs and AF_PACKET\u0027s copies" + (if $a.irq_time_accounting then " (this kernel " +
	"accounts irq time apart: plus the irq and softirq jiffies of that CPU)" else "" end) +
	", plus the exporter\u0027s run time; " +
	"\"added\" = the median of the per-round differences to the same window with nothing " +
	"exporting; per record: of the flows\u0027 records the collector wrote. The busy time of all " +
	"CPUs less the collector\u0027s, which other work on the machine blurs, adds " +
	($cols | map(. as $c | $a.contenders[$c] // empty |
		"\($c) \(.added_all_cpu_s_per_gb | ipfix_sf(3)) CPU-s per GB, " +
		"\(.flows.added_all_cpu_us_per_record | ipfix_f(2)) µs per record") | join("; ")) +
	". Ratios: medians of the " +
	"per-round ratios (" + ($cols | map(. as $c | $a.contenders[$c] // empty |
		"\($c): A→B \(range(.tcp_ab)), B→A \(range(.tcp_ba))") | join("; ")) + "). " +
	"Both end a flow after \($a.idle_timeout_s) s idle and export a longer one every " +
	"\($a.active_timeout_s) s. softflowd watches \($a.states.softflowd | capture("-i (?<i>[^ ]+)").i) " +
	"(every forwarded frame once: one record per flow); tapflow the bridge and both ports " +
	"(a frame crosses two: one record per port). Records counted by the exporter " +
	"(softflowd\u0027s statistics, tapflow_ipfix_records_total) include the few of iperf3\u0027s " +
	"flows; exporter losses " + ($cols | map(. as $c | $a.contenders[$c] // empty |
		"\($c) \(.flows.exporter_lost)") | join(", ")) + " (softflowd: libpcap\u0027s drops); " +
	"collector sequence errors " + ($cols | map(. as $c | $a.contenders[$c] // empty |
		"\($c) \(.flows.sequence_errors)") | join(", ")) + ". " +
	"softflowd reads a TPACKET_V3 ring whose blocks reach it only when full, so each window " +
	"ends with \($a.push_frames) frames of a flow of their own (not counted), in every state.";
