# SPDX-License-Identifier: GPL-2.0
# agent.jq: the table of an agent.sh result, for agent.sh itself and for
# run.sh's summary (jq -L tools/bench 'include "agent"; agent_table').

# Fixed decimals (jq has no printf).
def agent_f($d):
	if . == null then "?"
	elif . < 0 then "-" + (-. | agent_f($d))
	elif $d == 0 then round | tostring
	else (. * pow(10; $d) | round) as $n | pow(10; $d) as $p |
		"\(($n / $p) | floor).\(($n % $p) | tostring | ("0" * ($d - length)) + .)"
	end;

def agent_table:
	. as $a | .runs[0] as $m |
	(.runs | map(select(.interfaces == 1)) | .[0]) as $o |
	def row($what; f): "| \($what) | " + (if $o then ($o | f) else "" end) + " | " +
		($m | f) + " |";
	def ratio(f): if $o and $m != $o and ($o | f) > 0 then ($m | f) / ($o | f) | agent_f(2)
		else "" end;
	def rrow($what; f; g): row($what; f) + " \(ratio(g)) |";
	def ms($x): "\($x.median_ms | agent_f(1)) (\($x.p90_ms | agent_f(1)))";
	def cpu($w): "\($w.sched_ms_per_s | agent_f(2)) (\($w.sched_ms_per_s / 10 | agent_f(3)) %)";
	def series: "\(.series.last.bytes) + \(.series.last.packets) (\(.series.expected) each" +
		(if .series.ok then "" else "; **NOT AS EXPECTED**: first scrape \(.series.first.bytes) " +
			"+ \(.series.first.packets)" end) + ")";
	"Agent (`agent.sh`): `\($a.agent)` on \($m.interfaces) veth pairs" +
	(if $o then " and on 1" else "" end) + ", \($a.flows_per_interface) UDP flows from each " +
	"(10 flow series and other per interface, both directions); curl scrapes, plain and gzip " +
	"in turn, \($a.rounds) of each; CPU: the run time of the process\u0027s threads " +
	"(/proc/PID/task/*/schedstat) over \($a.seconds) s, scraped every " +
	"\($a.scrape_interval_s) s; attach \($a.attach_mode):",
	"",
	"| agent, `--flow-metrics \($a.flow_metrics)` | 1 interface | \($m.interfaces) interfaces | " +
		"ratio \($m.interfaces)/1 |",
	"|---|---:|---:|---:|",
	rrow("flow series: `tapflow_flow_bytes_total` + `_packets_total` (expected)"; series;
		.series.last.bytes),
	rrow("samples in the exposition"; "\(.samples)"; .samples),
	rrow("scrape, plain: ms, median (p90)"; ms(.scrape.plain); .scrape.plain.median_ms),
	rrow("scrape, gzip: ms, median (p90)"; ms(.scrape.gzip); .scrape.gzip.median_ms),
	rrow("CPU time of a plain scrape, back to back: ms"; .scrape.plain.cpu_ms_per_scrape |
		agent_f(1); .scrape.plain.cpu_ms_per_scrape),
	rrow("exposition, plain / gzip: KiB"; "\(.scrape.plain.bytes / 1024 | agent_f(0)) / " +
		"\(.scrape.gzip.bytes / 1024 | agent_f(0))"; .scrape.plain.bytes),
	rrow("RSS after \($m.rss_kib.first_at) scrapes / after \($m.rss_kib.last_at): KiB";
		"\(.rss_kib.first) / \(.rss_kib.last)"; .rss_kib.last),
	rrow("CPU idle, scraped every \($a.scrape_interval_s) s: ms per s (% of a core)";
		cpu(.idle); .idle.sched_ms_per_s),
	(if $m.traffic then $m.traffic as $t |
		"| CPU under traffic, \($t.pps / 1e3 | agent_f(1)) kpps (iperf3 UDP, \($t.pairs) pairs), " +
		"scraped every \($a.scrape_interval_s) s: ms per s (% of a core) | | \(cpu($t)) | |"
	 else empty end),
	rrow("idle `tapflow stats` on the same interfaces: ms per s (% of a core)";
		cpu(.stats_idle); .stats_idle.sched_ms_per_s),
	row("CPU idle, agent / `tapflow stats`"; if .stats_idle.sched_ms_per_s > 0 then
		.idle.sched_ms_per_s / .stats_idle.sched_ms_per_s | agent_f(2) else "?" end) + " |",
	"",
	"Scrape time: curl\u0027s time_total in the agent\u0027s namespace, each scrape a poll of " +
	"the kernel maps and a render of every series (min–max plain: " +
	([$a.runs[] | "\(.interfaces): \(.scrape.plain.min_ms | agent_f(1))–" +
		"\(.scrape.plain.max_ms | agent_f(1)) ms"] | join(", ")) + "). RSS every 20 scrapes " +
	"(KiB): " + ([$a.runs[] | "\(.interfaces): " + (.rss_kib.by_scrapes | map(.[1] | tostring) |
		join(" "))] | join("; ")) + "; peak " + ([$a.runs[] | "\(.rss_kib.hwm)"] | join(", ")) +
	" KiB. CPU as utime + stime (/proc/PID/stat, what process_cpu_seconds_total shows: the " +
	"same run time, in ticks of 1/\($m.idle.clk_tck) s): idle " +
	([$a.runs[] | "\(.interfaces): \(.idle.cpu_ms_per_s | agent_f(2))"] | join(", ")) +
	" ms per s" +
	(if $m.traffic then ", under traffic \($m.traffic.cpu_ms_per_s | agent_f(2))" else "" end) +
	", `stats` " + ([$a.runs[] | "\(.interfaces): \(.stats_idle.cpu_ms_per_s | agent_f(2))"] |
		join(", ")) + ". Scrapes served stale: " +
	([$a.runs[] | "\(.scrapes_stale)"] | join(", ")) + ".";
