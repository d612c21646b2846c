#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# tapflow agent without libvirt, scraped over HTTP as Prometheus would.
#
#   $NSH: tfl1, tfl2 (veth) ---- $NSP: tfp1, tfp2; 10.81.N.1 -> 10.81.N.2
#   No IPv6, static neighbours, the peer drops the UDP: the only frames are
#   the test's own, so every count is exact.
#
#   1. Exposition: promtool check metrics finds nothing; gzip on request;
#      404/405 elsewhere.
#   2. Interface series == the kernel's own counters of tfl1 (deltas).
#   3. Flow series, --flow-metrics 2: the two biggest flows of the interval,
#      the rest in "other"; series + other == the interface, every
#      interval; a flow that becomes big gets a series from its gain.
#   4. No counter goes down between scrapes.
#   5. SIGHUP: a changed config applies (tfl2 traced, flow series 1), a
#      broken one is refused and the old one stays.
#   6. A port in use, a bad --prometheus: one line, exit 1 / 2.
#   7. SIGTERM: exit 0, no hook left.
#   8. An agent holding more than FD_SETSIZE descriptors (one on a few
#      hundred interfaces does: two TCX links each) answers scrapes, also
#      while another connection is open; started under a soft open files
#      limit below what it needs, it takes the hard one.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/topo.sh"

netns_test_begin "agent" agent jq bpftool curl promtool
tf_netns NSH host && tf_netns NSP peer || { tf_fail "setup" "cannot create namespaces"; tf_finish; }
for ns in $NSH $NSP; do
	nsq $ns sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
done
for n in 1 2; do
	ip -n $NSH link add tfl$n address 02:81:00:00:0$n:01 type veth peer name tfp$n netns $NSP \
		address 02:81:00:00:0$n:02 &&
	ip -n $NSH addr add 10.81.$n.1/24 dev tfl$n && ip -n $NSP addr add 10.81.$n.2/24 dev tfp$n &&
	ip -n $NSH neigh add 10.81.$n.2 lladdr 02:81:00:00:0$n:02 dev tfl$n nud permanent &&
	ip -n $NSH link set tfl$n up && ip -n $NSP link set tfp$n up ||
		{ tf_fail "setup" "cannot create tfl$n"; tf_finish; }
done
nsq $NSP iptables -A INPUT -p udp -j DROP
PORT=$((20000 + TF_ID % 20000))
URL=http://127.0.0.1:$PORT/metrics
scrape() { nsq $NSH curl -sf "$@" "$URL"; }
# metric FILE NAME LABEL-MATCH: the value of the one series of NAME whose labels contain it.
metric() { grep -E "^$2\{[^}]*$3" "$1" | awk '{ print $2 }' | head -n1; }
# udp N DPORT [IF]: N datagrams of 200 bytes from 10.81.IF.1 to 10.81.IF.2:DPORT.
udp() {
	nsq $NSH python3 -c "
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(int(sys.argv[1])):
    s.sendto(b'x' * 200, ('10.81.' + sys.argv[3] + '.2', int(sys.argv[2])))" "$1" "$2" "${3:-1}"
}
wait_for() { local i; for i in $(seq 50); do "$@" && return 0; sleep 0.1; done; return 1; }

cat >"$OUT/agent.conf" <<CONF
# the test's agent
iface = tfl1
flow-metrics = 2
prometheus = 127.0.0.1:$PORT
CONF
K0=$(kstats $NSH tfl1)
"$TAPFLOW" --netns "$NSH" agent --no-libvirt --config "$OUT/agent.conf" \
	>"$OUT/agent.out" 2>"$OUT/agent.err" &
AGENT=$!
tf_on_exit "kill_job $AGENT"
if wait_for scrape -o /dev/null; then
	tf_ok "the agent serves $URL"
else
	tf_fail "the agent serves $URL" "$(cat "$OUT/agent.err")"
	tf_finish
fi
grep -q "^tapflow: agent .*: tracing 1 interfaces, metrics on http://127.0.0.1:$PORT/metrics" \
	"$OUT/agent.err" && tf_ok "one line says what it traces and where" ||
	tf_fail "one line says what it traces and where" "$(cat "$OUT/agent.err")"

# ---- 0. capabilities: only what following the host takes --------------------
capeff=$(awk '/^CapEff/ { print $2 }' /proc/$AGENT/status)
capbnd=$(awk '/^CapBnd/ { print $2 }' /proc/$AGENT/status)
# CAP_NET_ADMIN (12) and CAP_BPF (39).
tf_eq "attached: effective capabilities CAP_NET_ADMIN and CAP_BPF only" 0000008000001000 "$capeff"
tf_eq "attached: the bounding set as small" 0000008000001000 "$capbnd"
tf_eq "attached: no_new_privs" 1 "$(awk '/^NoNewPrivs/ { print $2 }' /proc/$AGENT/status)"

# ---- 1. the exposition ------------------------------------------------------
scrape >"$OUT/m0.txt"
if promtool check metrics <"$OUT/m0.txt" >"$OUT/promtool.txt" 2>&1 && [ ! -s "$OUT/promtool.txt" ]; then
	tf_ok "promtool check metrics: nothing to say"
else
	tf_fail "promtool check metrics: nothing to say" "$(head -5 "$OUT/promtool.txt")"
fi
hdr=$(nsq $NSH curl -s -D - -o "$OUT/gz.bin" -H 'Accept-Encoding: gzip' "$URL")
if grep -qi '^content-encoding: gzip' <<<"$hdr" && gunzip -c "$OUT/gz.bin" | grep -q '^tapflow_up 1$'; then
	tf_ok "gzip when the scraper accepts it"
else
	tf_fail "gzip when the scraper accepts it" "$hdr"
fi
grep -qi '^content-type: text/plain; version=0.0.4' <<<"$hdr" && tf_ok "content type 0.0.4" ||
	tf_fail "content type 0.0.4" "$hdr"
tf_eq "404 elsewhere" 404 "$(nsq $NSH curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$PORT/nope)"
tf_eq "405 for POST" 405 "$(nsq $NSH curl -s -o /dev/null -w '%{http_code}' -X POST "$URL")"

# The programs' run time, where the kernel keeps it (a machine-wide switch: put back after).
stats_was=$(sysctl -n kernel.bpf_stats_enabled)
tf_on_exit "sysctl -qw kernel.bpf_stats_enabled=$stats_was"
sysctl -qw kernel.bpf_stats_enabled=1
udp 1 7000
# Sent by the host: tfl1's TC egress.
runs=$(scrape | awk '/^tapflow_bpf_runs_total\{program="tf_tap_egress"\}/ { print $2 }')
tf_check "bpf_stats_enabled: tf_tap_egress's runs are counted (${runs:-none})" test "${runs:-0}" -ge 1
sysctl -qw kernel.bpf_stats_enabled=0
tf_eq "bpf_stats_enabled 0: no run time series" 0 "$(scrape | grep -c '^tapflow_bpf_run')"
sysctl -qw kernel.bpf_stats_enabled="$stats_was"

# ---- 2. interface counters == the kernel's -----------------------------------
udp 50 7001; udp 30 7002; udp 10 7003
scrape >"$OUT/m1.txt"
read -r rxp rxb txp txb <<<"$(kdelta "$K0" "$(kstats $NSH tfl1)")"
tf_eq "tx packets == kernel" "$txp" "$(metric "$OUT/m1.txt" tapflow_interface_transmit_packets_total 'interface="tfl1"')"
tf_eq "tx bytes == kernel" "$txb" "$(metric "$OUT/m1.txt" tapflow_interface_transmit_bytes_total 'interface="tfl1"')"
tf_eq "rx packets == kernel" "$rxp" "$(metric "$OUT/m1.txt" tapflow_interface_receive_packets_total 'interface="tfl1"')"
tf_eq "the scripted traffic only" 91 "$txp"
tf_eq "role iface" 1 "$(grep -c '^tapflow_interface_transmit_packets_total{.*interface="tfl1".*role="iface"' "$OUT/m1.txt")"

# ---- 3. flow series ---------------------------------------------------------
# flowsum FILE FIELD DIR: the sum of tfl1's flow series of FIELD (bytes, packets) and direction.
flowsum() { grep -E "^tapflow_flow_$2_total\{.*interface=\"tfl1\".*direction=\"$3\"" "$1" | awk '{ s += $2 } END { print s + 0 }'; }
flow() { metric "$1" tapflow_flow_packets_total "interface=\"tfl1\",proto=\"$2\",local=\"10.81.1.1\",remote=\"10.81.1.2\",remote_port=\"$3\",nat=\"\",direction=\"transmit\""; }
tf_eq "flow 7001: its 50 packets" 50 "$(flow "$OUT/m1.txt" udp 7001)"
tf_eq "flow 7002: its 30 packets" 30 "$(flow "$OUT/m1.txt" udp 7002)"
tf_eq "flow 7003 has no series (top 2)" "" "$(flow "$OUT/m1.txt" udp 7003)"
tf_eq "other: the rest, 10 + 1 packets" 11 "$(metric "$OUT/m1.txt" tapflow_flow_packets_total 'interface="tfl1",proto="other".*direction="transmit"')"
tf_eq "flow series add up to the interface (bytes)" "$txb" "$(flowsum "$OUT/m1.txt" bytes transmit)"
udp 100 7003
scrape >"$OUT/m2.txt"
read -r rxp rxb txp txb <<<"$(kdelta "$K0" "$(kstats $NSH tfl1)")"
tf_eq "7003, the interval's biggest, starts from its gain" 100 "$(flow "$OUT/m2.txt" udp 7003)"
tf_eq "two flow series at most" 2 "$(grep -E '^tapflow_flow_packets_total\{.*interface="tfl1".*direction="transmit"' "$OUT/m2.txt" | grep -vc 'proto="other"')"
tf_eq "flow series add up to the interface, next interval (packets)" "$txp" "$(flowsum "$OUT/m2.txt" packets transmit)"
tf_eq "... (bytes)" "$txb" "$(flowsum "$OUT/m2.txt" bytes transmit)"

# ---- 4. counters only grow --------------------------------------------------
down=$(join <(grep '_total{' "$OUT/m1.txt" | sort) <(grep '_total{' "$OUT/m2.txt" | sort) |
	awk '$3 < $2 { print }' | grep -v '^process_' | head -3)
tf_eq "no counter went down between scrapes" "" "$down"

# ---- 5. SIGHUP ---------------------------------------------------------------
cat >"$OUT/agent.conf" <<CONF
iface = tfl*
flow-metrics = 1
prometheus = 127.0.0.1:$PORT
CONF
kill -HUP $AGENT
traced2() { scrape | grep -q '^tapflow_interface_traced{.*interface="tfl2".*} 1$'; }
wait_for traced2 && tf_ok "SIGHUP: tfl2 traced after the reload" ||
	tf_fail "SIGHUP: tfl2 traced after the reload" "$(tail -3 "$OUT/agent.err")"
udp 5 7004
scrape >"$OUT/m3.txt"
tf_eq "SIGHUP: flow-metrics 1 applies" 1 "$(grep -E '^tapflow_flow_packets_total\{.*interface="tfl1".*direction="transmit"' "$OUT/m3.txt" | grep -vc 'proto="other"')"
read -r rxp rxb txp txb <<<"$(kdelta "$K0" "$(kstats $NSH tfl1)")"
tf_eq "SIGHUP: no count lost on tfl1" "$txp" "$(metric "$OUT/m3.txt" tapflow_interface_transmit_packets_total 'interface="tfl1"')"
tf_eq "SIGHUP: the reload counted" 1 "$(grep '^tapflow_config_reloads_total ' "$OUT/m3.txt" | awk '{print $2}')"
# An address the new listener cannot take: the old one stays, the rest applies.
printf 'iface = tfl*\nflow-metrics = 1\nprometheus = 127.0.0.1:0\n' >"$OUT/agent.conf"
kill -HUP $AGENT
wait_for grep -q "config: invalid --prometheus '127.0.0.1:0'.*; metrics stay on 127.0.0.1:$PORT" "$OUT/agent.err" &&
	tf_ok "SIGHUP: a listen address that fails keeps the old one" ||
	tf_fail "SIGHUP: a listen address that fails keeps the old one" "$(tail -3 "$OUT/agent.err")"
printf 'iface = tfl*\nflow-metrics = 1\nprometheus = 127.0.0.1:%s\n' $PORT >"$OUT/agent.conf"
kill -HUP $AGENT
wait_for eval '[ "$(scrape | grep "^tapflow_config_reloads_total " | cut -d" " -f2)" = 3 ]' &&
	tf_ok "SIGHUP: and the next reload still works" ||
	tf_fail "SIGHUP: and the next reload still works" "$(tail -3 "$OUT/agent.err")"
# A new address: served there from now on, the old one closed, no count lost.
PORT2=$((PORT + 1))
printf 'iface = tfl*\nflow-metrics = 1\nprometheus = 127.0.0.1:%s\n' $PORT2 >"$OUT/agent.conf"
kill -HUP $AGENT
moved() { nsq $NSH curl -sf -o /dev/null http://127.0.0.1:$PORT2/metrics; }
wait_for moved && tf_ok "SIGHUP: metrics move to the new address" ||
	tf_fail "SIGHUP: metrics move to the new address" "$(tail -3 "$OUT/agent.err")"
tf_eq "SIGHUP: the old address is closed" 7 "$(nsq $NSH curl -s -o /dev/null "$URL"; echo $?)"
PORT=$PORT2 URL=http://127.0.0.1:$PORT2/metrics
udp 3 7004
read -r rxp rxb txp txb <<<"$(kdelta "$K0" "$(kstats $NSH tfl1)")"
tf_eq "SIGHUP: the new listener's numbers carry on" "$txp" "$(scrape | awk '/^tapflow_interface_transmit_packets_total\{.*interface="tfl1"/ { print $2 }')"
tf_check "SIGHUP: scrapes counted across listeners" test "$(scrape | awk '/^tapflow_scrapes_total / { print $2 }')" -gt 10
echo "flow-metrics = many" >"$OUT/agent.conf"
kill -HUP $AGENT
wait_for grep -q "config not reloaded: .*agent.conf:1: flow-metrics 'many'" "$OUT/agent.err" &&
	tf_ok "a broken config is refused, in one line" ||
	tf_fail "a broken config is refused, in one line" "$(tail -3 "$OUT/agent.err")"
scrape >"$OUT/m4.txt"
tf_eq "... and the running one stays (tfl2 still traced)" 1 "$(metric "$OUT/m4.txt" tapflow_interface_traced 'interface="tfl2"')"
tf_eq "... counted as a reload error" 1 "$(grep '^tapflow_config_reload_errors_total ' "$OUT/m4.txt" | awk '{print $2}')"

# ---- 6. bad starts ---------------------------------------------------------
"$TAPFLOW" --netns "$NSH" agent --no-libvirt --iface tfl1 --prometheus 127.0.0.1:$PORT \
	>/dev/null 2>"$OUT/busy.err"
rc=$?
tf_eq "port in use: exit 1" 1 "$rc"
tf_eq "port in use: one line" 1 "$(wc -l <"$OUT/busy.err")"
grep -q "cannot listen on 127.0.0.1:$PORT for Prometheus" "$OUT/busy.err" &&
	tf_ok "port in use: says so" || tf_fail "port in use: says so" "$(cat "$OUT/busy.err")"
"$TAPFLOW" agent --no-libvirt --iface tfl1 --prometheus localhost >/dev/null 2>"$OUT/bad.err"
tf_eq "--prometheus without a port: exit 2" 2 "$?"

# ---- 7. SIGTERM ------------------------------------------------------------
tcx_progs() { nsq $NSH python3 "$TFNET" tcx tfl1 2>/dev/null | grep -c ' tf_'; }
tf_check "attached: tapflow's TCX programs on tfl1 ($(tcx_progs))" test "$(tcx_progs)" -ge 1
tf_stop $AGENT TERM
tf_eq "SIGTERM: exit 0" 0 "$RC"
tf_eq "SIGTERM: no TCX program left on tfl1" 0 "$(tcx_progs)"
grep -q "^tapflow: agent stopping: signal" "$OUT/agent.err" && tf_ok "SIGTERM: said in one line" ||
	tf_fail "SIGTERM: said in one line" "$(tail -3 "$OUT/agent.err")"

# ---- 8. more descriptors than FD_SETSIZE -------------------------------------
# Inherited ones stand for the links of ~550 interfaces: every connection
# the agent accepts is then numbered above 1024, which select() cannot watch.
# The soft limit leaves the agent fewer than its own few dozen, as the usual
# 1024 does on ~500 interfaces.
cat >"$OUT/manyfds.py" <<'PY'
import os, resource, sys
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if hard != resource.RLIM_INFINITY and hard < 2048:
    sys.exit(77)
resource.setrlimit(resource.RLIMIT_NOFILE, (1120, hard))
for _ in range(1100):
    os.set_inheritable(os.open("/dev/null", os.O_RDONLY), True)
os.execv(sys.argv[1], sys.argv[1:])
PY
python3 "$OUT/manyfds.py" "$TAPFLOW" --netns "$NSH" agent --no-libvirt --iface tfl1 \
	--prometheus 127.0.0.1:$PORT >"$OUT/fds.out" 2>"$OUT/fds.err" &
FDS=$!
tf_on_exit "kill_job $FDS"
if ! wait_for scrape -o /dev/null; then
	wait $FDS 2>/dev/null
	if [ $? = 77 ]; then
		tf_skip "over FD_SETSIZE descriptors" "hard RLIMIT_NOFILE below 2048"
	else
		tf_fail "over FD_SETSIZE descriptors: scraped" "$(tail -3 "$OUT/fds.err")"
	fi
else
	tf_eq "over FD_SETSIZE descriptors: the agent holds them" 1 \
		"$(($(ls /proc/$FDS/fd | wc -l) > 1100))"
	tf_eq "soft open files limit raised to the hard one" \
		"$(awk '/^Max open files/ { print $5 }' /proc/$FDS/limits)" \
		"$(awk '/^Max open files/ { print $4 }' /proc/$FDS/limits)"
	# An idle connection held open, as a keep-alive scraper's is between scrapes.
	ip netns exec $NSH python3 -c 'import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
open(sys.argv[2], "w").write("connected")
time.sleep(30)' $PORT "$OUT/hold" &
	HOLD=$!
	tf_on_exit "kill_job $HOLD"
	wait_for test -s "$OUT/hold" || tf_diag "the idle connection is not open"
	codes=$(for i in 1 2 3 4 5; do
		nsq $NSH curl -s -o /dev/null -w '%{http_code} ' "$URL"; done)
	tf_eq "over FD_SETSIZE descriptors, another connection open: 5 scrapes answered" \
		"200 200 200 200 200 " "$codes"
	kill $HOLD
	wait $HOLD 2>/dev/null
	tf_stop $FDS TERM
	tf_eq "over FD_SETSIZE descriptors: SIGTERM, exit 0" 0 "$RC"
fi
tf_finish
