# SPDX-License-Identifier: GPL-2.0
# lib.sh: what the bench scripts (throughput.sh, nat.sh, drops.sh,
# capture.sh, scale.sh, agent.sh, ipfix.sh, ipi.sh) share. Sourced, not
# run; the script sets PROG (its name, for messages) first.
#
#   - bench_init: the work directory, and traps that remove everything the
#     run created -- processes by pid (SIGTERM, then SIGKILL), namespaces,
#     the work directory -- on exit, failure and Ctrl-C/SIGTERM;
#   - namespaces, the iperf3 server, iperf3 runs: TCP bit/s, UDP packets/s;
#   - tapflow started in a namespace (returns once attached) and stopped,
#     with its CPU time and memory;
#   - in-situ BPF run-time statistics of a running tapflow (prog_cost --watch);
#   - the "other CPUs busy" watch, and ABBA rounds that run a disturbed
#     round again;
#   - jq definitions (median, per-round ratios) and the summary rows.
#
# Variables read when a function runs (set by the script): SECS, AFFINITY,
# UDP_LEN, PORT, IPERF_NS and IPERF_DST (the iperf3 client's namespace and
# the server's address), TF_NS (tapflow's namespace), TAPFLOW, ATTACH,
# PROG_COST, STATES, BUSY_MAX, MAX_REDO, RESULT (the rows).
# Results go to variables the scripts read (BPS, PPS, TF_LAST_*, ...):
# shellcheck shell=bash disable=SC2034

log() { echo "# $*" >&2; }
die() { echo "$PROG: $*" >&2; exit 1; }

# ---- options both scripts take, and their defaults ----

# Many short rounds rather than a few long ones: on a small VM the figures
# wander by +-10% over tens of seconds, and only close pairs cancel that.
SECS=3
# 18 bytes of UDP payload + 8 UDP + 20 IPv4 + 14 Ethernet = 60 bytes, the
# 64-byte minimum Ethernet frame once the NIC adds its 4-byte FCS.
UDP_LEN=18
ATTACH=auto
# Both iperf3 ends on CPU 0 (iperf3 -A client,server): the whole path, both
# sockets and the veth/bridge softirq work then share one core, and the
# figures measure its CPU cost per bit or packet, which is what tapflow adds
# to. With the ends on two CPUs the cross-CPU wakeups of this small VM made
# TCP swing between 8 and 19 Gbit/s from one second to the next. The other
# CPU stays free for tapflow's userspace and the rest of the system.
# --affinity '' leaves placement to the scheduler.
AFFINITY=0,0
JSON=0
# A round during which the CPUs without iperf3 were busier than this (%) was
# disturbed by other work: it is run again, at most MAX_REDO times in all.
BUSY_MAX=20
MAX_REDO=3

usage() {
	sed -n '/^#   tools/,/^#$/p' "$0" | sed 's/^# \{0,1\}//'
}

# common_opt "$@": if $1 is an option both scripts take (-t, -r, --udp-len,
# --affinity, --attach, --busy-max, --max-redo, --json, -h), take it;
# returns how many words it took (0: not one of them).
common_opt() {
	case $1 in
	-t) SECS=${2:-} ;;
	-r) ROUNDS=${2:-} ;;
	--udp-len) UDP_LEN=${2:-} ;;
	--affinity) AFFINITY=${2:-} ;;
	--attach) ATTACH=${2:-} ;;
	--busy-max) BUSY_MAX=${2:-} ;;
	--max-redo) MAX_REDO=${2:-} ;;
	--json) JSON=1; return 1 ;;
	-h|--help) usage; exit 0 ;;
	*) return 0 ;;
	esac
	return 2
}

# parse_opts "$@": the command line. The script's own options are taken by
# `own_opt "$@"`, which returns how many words it took (0: not its own).
# An option without its value ends the loop; check_common_opts and the
# script's own checks catch that.
parse_opts() {
	local n
	while [ $# -gt 0 ]; do
		common_opt "$@"
		n=$?
		if [ $n -eq 0 ]; then
			own_opt "$@"
			n=$?
		fi
		if [ $n -eq 0 ]; then
			echo "$PROG: unknown option '$1'" >&2
			usage >&2
			exit 2
		fi
		shift "$n" || break
	done
}

# The common options, after parsing.
check_common_opts() {
	[[ $SECS =~ ^[1-9][0-9]*$ ]] || { echo "$PROG: -t needs whole seconds" >&2; exit 2; }
	[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "$PROG: -r needs a count" >&2; exit 2; }
	[[ $BUSY_MAX =~ ^[0-9]+$ ]] || { echo "$PROG: --busy-max needs a percentage" >&2; exit 2; }
	[[ $MAX_REDO =~ ^[0-9]+$ ]] || { echo "$PROG: --max-redo needs a count" >&2; exit 2; }
	[[ $UDP_LEN =~ ^[0-9]+$ ]] && [ "$UDP_LEN" -ge 16 ] ||
		{ echo "$PROG: --udp-len needs at least 16 (iperf3's header)" >&2; exit 2; }
	case $ATTACH in auto|tcx|clsact) ;; *) echo "$PROG: bad --attach" >&2; exit 2 ;; esac
}

# need_tools TOOL...: root, the tools, a built tapflow.
need_tools() {
	local tool
	[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces, BPF)"
	for tool in "$@"; do
		command -v "$tool" >/dev/null || die "$tool not found (tools/deps.sh installs it)"
	done
	[ -x "$TAPFLOW" ] || die "$TAPFLOW not built (run make)"
}

# ---- cleanup: only what this run created, by name and by pid ----

# bench_init PREFIX: ID (PREFIX + pid: the namespaces' prefix), WORK, traps.
bench_init() {
	ID=$1$$
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/tapflow-bench.XXXXXX") || die "mktemp failed"
	PIDS=()
	NSS=()
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

forget_pid() {
	local p keep=()
	for p in "${PIDS[@]}"; do [ "$p" != "$1" ] && keep+=("$p"); done
	PIDS=("${keep[@]}")
}

cleanup() {
	local p i
	trap - EXIT INT TERM
	# SIGTERM first: tapflow detaches on it, iperf3 ends cleanly.
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for i in 1 2 3 4 5 6 7 8 9 10; do
		local alive=0
		for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
		[ $alive -eq 0 ] && break
		sleep 0.2
	done
	for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	for ((i = ${#NSS[@]} - 1; i >= 0; i--)); do ip netns del "${NSS[$i]}" 2>/dev/null; done
	if [ "${KEEP_LOGS:-0}" = 1 ]; then
		echo "# logs kept in $WORK" >&2
	else
		rm -rf "$WORK"
	fi
}

# Start "$@" in the background, remember its pid in BG_PID.
bg() {
	"$@" &
	BG_PID=$!
	PIDS+=("$BG_PID")
}

# Wait for a background pid; a trapped signal interrupts the wait at once.
bg_wait() {
	local rc
	wait "$1"
	rc=$?
	forget_pid "$1"
	return $rc
}

# ---- topology ----

# ns_add NAME: a namespace of this run (removed by cleanup), loopback up,
# no IPv6 (no autoconf or DAD chatter inside a measurement).
ns_add() {
	[ -e "/run/netns/$1" ] && die "namespace $1 exists already"
	ip netns add "$1" || die "cannot create namespace $1"
	NSS+=("$1")
	ip -n "$1" link set lo up
	ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
		net.ipv6.conf.default.disable_ipv6=1 >/dev/null 2>&1 || true
}

# wait_ports_up NS N: STP is off, so bridge ports forward as soon as they
# are up; wait (5 s at most) until N ports of NS are.
wait_ports_up() {
	local i
	for i in $(seq 50); do
		[ "$(ip -n "$1" -j link show type bridge_slave 2>/dev/null |
			jq '[.[] | select(.operstate == "UP")] | length')" = "$2" ] && return 0
		sleep 0.1
	done
}

# bridge_pair_up: the path of a VM's frames through its tap and bridge —
# namespaces $NS_A and $NS_B on veths whose other ends, pa and pb, are
# ports of bridge br0 in $NS_BR; eth0 addressed $IP_A/24 and $IP_B/24.
bridge_pair_up() {
	local ns
	for ns in "$NS_A" "$NS_B" "$NS_BR"; do ns_add "$ns"; done
	ip -n "$NS_BR" link add br0 type bridge &&
		ip -n "$NS_A" link add eth0 type veth peer name pa netns "$NS_BR" &&
		ip -n "$NS_B" link add eth0 type veth peer name pb netns "$NS_BR" ||
		die "cannot create the bridge and veths"
	ip -n "$NS_BR" link set pa master br0 && ip -n "$NS_BR" link set pb master br0 &&
		ip -n "$NS_BR" link set br0 up && ip -n "$NS_BR" link set pa up &&
		ip -n "$NS_BR" link set pb up || die "cannot bring the bridge up"
	ip -n "$NS_A" addr add "$IP_A/24" dev eth0 && ip -n "$NS_A" link set eth0 up &&
		ip -n "$NS_B" addr add "$IP_B/24" dev eth0 && ip -n "$NS_B" link set eth0 up ||
		die "cannot address the veths"
}

# pin_neighbours: no ARP in a measurement: $NS_A and $NS_B know each
# other's eth0 for good (MAC_B: B's MAC), and B takes flowgen's sources as
# on-link (no reverse path check) and never answers them.
pin_neighbours() {
	local mac_a
	MAC_B=$(ip -n "$NS_B" -j link show eth0 | jq -r '.[0].address')
	mac_a=$(ip -n "$NS_A" -j link show eth0 | jq -r '.[0].address')
	ip -n "$NS_A" neigh replace "$IP_B" lladdr "$MAC_B" dev eth0 nud permanent &&
		ip -n "$NS_B" neigh replace "$IP_A" lladdr "$mac_a" dev eth0 nud permanent ||
		die "cannot set the neighbours"
	ip netns exec "$NS_B" sysctl -qw net.ipv4.conf.all.rp_filter=0 \
		net.ipv4.conf.eth0.rp_filter=0 >/dev/null 2>&1 || true
}

# veth_pairs NS N A B [PEER_NS]: N veth pairs A0/B0 ... A<N-1>/B<N-1> in NS,
# up, without addresses; the B ends in PEER_NS if given. One `ip -batch` per
# namespace: hundreds of pairs one `ip` process each would take longer than
# what is measured on them.
veth_pairs() {
	local ns=$1 n=$2 a=$3 b=$4 peer=${5:-} i
	for ((i = 0; i < n; i++)); do
		echo "link add $a$i type veth peer name $b$i${peer:+ netns $peer}"
		echo "link set $a$i up"
		[ -n "$peer" ] || echo "link set $b$i up"
	done >"$WORK/links.$ns"
	ip -n "$ns" -batch "$WORK/links.$ns" || die "cannot create the veth pairs in $ns"
	[ -n "$peer" ] || return 0
	for ((i = 0; i < n; i++)); do
		echo "link set $b$i up"
	done >"$WORK/links.$peer"
	ip -n "$peer" -batch "$WORK/links.$peer" || die "cannot set the veth ends in $peer up"
}

# nat_router_up: the libvirt NAT network's path, in the namespaces and
# addresses the caller set (NS_VM, NS_RT, NS_NET; VM_NET, GW_IP, VM_IP,
# UP_IP, NET_IP): a "VM" namespace on bridge br0's port vport of the router
# $NS_RT, which forwards and MASQUERADEs out of its uplink up0 to $NS_NET.
nat_router_up() {
	local ns
	for ns in "$NS_VM" "$NS_RT" "$NS_NET"; do ns_add "$ns"; done
	ip -n "$NS_RT" link add br0 type bridge &&
		ip -n "$NS_VM" link add eth0 type veth peer name vport netns "$NS_RT" &&
		ip -n "$NS_RT" link add up0 type veth peer name eth0 netns "$NS_NET" ||
		die "cannot create the bridge and veths"
	ip -n "$NS_RT" link set vport master br0 &&
		ip -n "$NS_RT" addr add "$GW_IP/24" dev br0 &&
		ip -n "$NS_RT" addr add "$UP_IP/24" dev up0 &&
		ip -n "$NS_RT" link set br0 up && ip -n "$NS_RT" link set vport up &&
		ip -n "$NS_RT" link set up0 up || die "cannot set up the router"
	ip -n "$NS_VM" addr add "$VM_IP/24" dev eth0 && ip -n "$NS_VM" link set eth0 up &&
		ip -n "$NS_VM" route add default via "$GW_IP" &&
		ip -n "$NS_NET" addr add "$NET_IP/24" dev eth0 && ip -n "$NS_NET" link set eth0 up ||
		die "cannot address the VM and the internet"
	# What libvirt's NAT network does: forward, and MASQUERADE what leaves
	# the uplink from the VMs' network.
	ip netns exec "$NS_RT" sysctl -qw net.ipv4.ip_forward=1 >/dev/null &&
		ip netns exec "$NS_RT" iptables -t nat -A POSTROUTING -s "$VM_NET" -o up0 \
			-j MASQUERADE || die "cannot set up forwarding and NAT in $NS_RT"
	wait_ports_up "$NS_RT" 1
}

# iperf_server NS IP: an iperf3 server on IP:PORT in NS; returns once it listens.
iperf_server() {
	local i
	bg ip netns exec "$1" iperf3 -s -B "$2" -p "$PORT" >"$WORK/server.log" 2>&1
	SERVER_PID=$BG_PID
	for i in $(seq 50); do
		ip netns exec "$1" ss -Hltn "sport = :$PORT" 2>/dev/null | grep -q . && return 0
		kill -0 "$SERVER_PID" 2>/dev/null || die "iperf3 server died"
		sleep 0.1
	done
	die "iperf3 server does not listen"
}

# ---- measurements ----

N_IPERF=0
# iperf_json ARGS...: an iperf3 client in IPERF_NS to IPERF_DST; its JSON
# is in IPERF_OUT.
iperf_json() {
	local out="$WORK/iperf.$((++N_IPERF)).json" rc
	bg ip netns exec "$IPERF_NS" iperf3 -c "$IPERF_DST" -p "$PORT" -t "$SECS" -J \
		${AFFINITY:+-A "$AFFINITY"} "$@" \
		>"$out" 2>"$out.err"
	bg_wait "$BG_PID"
	rc=$?
	if [ $rc -ne 0 ] || ! jq -e '.error == null and .end != null' "$out" >/dev/null 2>&1; then
		# Interrupted along with us (Ctrl-C reaches the whole group): no error.
		[ $rc -gt 128 ] || grep -q interrupt "$out" 2>/dev/null && exit 130
		die "iperf3 -c $IPERF_DST $* failed (exit $rc):" \
			"$(jq -r '.error // empty' "$out" 2>/dev/null) $(head -c 300 "$out.err")"
	fi
	IPERF_OUT=$out
}

# TCP bit/s on the receiving side into BPS; client to server, or back with -R.
# (No $(...) around measurements: a signal must reach this shell at once.)
tcp_bps() {
	iperf_json "$@"
	BPS=$(jq -e '.end.sum_received.bits_per_second' "$IPERF_OUT") ||
		die "no sum_received in $IPERF_OUT"
}

# UDP at full speed, client to server (or back with -R): packets/s delivered
# to the receiver's socket (PPS), sent (SENT_PPS), and the loss in between
# (LOSS, %).
# shellcheck disable=SC2120 # optional arguments (-R)
udp_pps() {
	local v
	# A big socket buffer: the receiver's scheduling hiccups are not the path's losses.
	iperf_json -u -l "$UDP_LEN" -b 0 -w 4M "$@"
	v=$(jq -er '.end.sum_received as $r | .end.sum_sent as $s |
		"\(($r.packets - $r.lost_packets) / $r.seconds) \($s.packets / $s.seconds)" +
		" \($r.lost_percent)"' "$IPERF_OUT") || die "no UDP sums in $IPERF_OUT"
	read -r PPS SENT_PPS LOSS <<<"$v"
}

# CPU time of a process so far, in ns: scheduler run time of all its threads,
# or utime+stime from /proc/PID/stat where schedstat is missing.
cpu_ns() {
	local pid=$1 t sum=0 f
	for f in /proc/"$pid"/task/*/schedstat; do
		[ -r "$f" ] || { sum=; break; }
		read -r t _ <"$f" && sum=$((sum + t))
	done
	if [ -z "$sum" ]; then
		local ticks
		ticks=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
		sum=$((ticks * 1000000000 / $(getconf CLK_TCK)))
	fi
	echo "$sum"
}

# Packet counters of an interface: "rx_packets tx_packets tx_dropped".
link_counts() {	# NS IFACE
	ip -n "$1" -s -j link show "$2" |
		jq -r '.[0].stats64 | "\(.rx.packets) \(.tx.packets) \(.tx.dropped)"'
}

N_TF=0
TF_PID=
TF_CMD=
# tf_start CMD IFACES [OPTIONS...]: tapflow CMD in TF_NS on the interfaces
# (comma-separated), with OPTIONS after the command; returns once attached.
tf_start() {
	local cmd=$1 ifaces=$2 i rec list args=() ready
	shift 2
	IFS=, read -r -a list <<<"$ifaces"
	for i in "${list[@]}"; do args+=(--iface "$i"); done
	TF_CMD=$cmd
	TF_OUT=$WORK/tapflow.$((++N_TF)).out
	bg "$TAPFLOW" --netns "$TF_NS" --no-libvirt "${args[@]}" \
		--attach "$ATTACH" --json "$cmd" "$@" >"$TF_OUT" 2>"$TF_OUT.err"
	TF_PID=$BG_PID
	# The first record comes one interval after the hooks are attached
	# (flows: every report has each interface's overflow/unparsed rows).
	# capture prints nothing before its final report, but writes the
	# pcapng headers once the hooks are attached: its -w file is then not
	# empty.
	rec='"type":"stats"'
	[ "$cmd" = flows ] && rec='"type":"flow"'
	ready=(grep -q "$rec" "$TF_OUT")
	if [ "$cmd" = capture ]; then
		while [ $# -gt 0 ] && [ "$1" != -w ]; do shift; done
		[ $# -ge 2 ] || die "tf_start capture needs -w FILE"
		ready=(test -s "$2")
	fi
	for i in $(seq 100); do
		"${ready[@]}" 2>/dev/null && break
		if ! kill -0 "$TF_PID" 2>/dev/null; then
			bg_wait "$TF_PID"
			die "tapflow exited $? at start: $(head -c 400 "$TF_OUT.err")"
		fi
		sleep 0.1
	done
	"${ready[@]}" 2>/dev/null || die "tapflow $cmd was not attached after 10 s"
	TF_CPU0=$(cpu_ns "$TF_PID")
	TF_T0=$(date +%s%N)
}

TF_MODE=
# Stop tapflow; its CPU time and wall time since attach, peak and end RSS
# into TF_LAST_{CPU_NS,WALL_NS,HWM_KIB,RSS_KIB}.
tf_stop() {
	local cpu1 t1 hwm rss rc
	cpu1=$(cpu_ns "$TF_PID")
	t1=$(date +%s%N)
	# Peak (VmHWM: loading the programs, libbpf parses the kernel's BTF)
	# and resident at the end of the block (VmRSS: the steady state).
	read -r hwm rss < <(awk '/^VmHWM:/ { h = $2 } /^VmRSS:/ { r = $2 }
		END { print h + 0, r + 0 }' "/proc/$TF_PID/status")
	TF_LAST_CPU_NS=$((cpu1 - TF_CPU0)) TF_LAST_WALL_NS=$((t1 - TF_T0))
	TF_LAST_HWM_KIB=${hwm:-0} TF_LAST_RSS_KIB=${rss:-0}
	kill -INT "$TF_PID"
	bg_wait "$TF_PID"
	rc=$?
	[ $rc -eq 0 ] || die "tapflow exited $rc: $(head -c 400 "$TF_OUT.err")"
	TF_MODE=$(jq -rs '[.[] | select(.type == "summary")][0].attach_mode' "$TF_OUT")
}

# Per state: tapflow's CPU time, wall time, peak and end RSS of the kept blocks.
declare -A TF_CPU_NS TF_WALL_NS TF_HWM_KIB TF_RSS_KIB
tf_account() {
	local c=$1
	TF_CPU_NS[$c]=$((${TF_CPU_NS[$c]:-0} + TF_LAST_CPU_NS))
	TF_WALL_NS[$c]=$((${TF_WALL_NS[$c]:-0} + TF_LAST_WALL_NS))
	[ "$TF_LAST_HWM_KIB" -gt "${TF_HWM_KIB[$c]:-0}" ] && TF_HWM_KIB[$c]=$TF_LAST_HWM_KIB
	[ "$TF_LAST_RSS_KIB" -gt "${TF_RSS_KIB[$c]:-0}" ] && TF_RSS_KIB[$c]=$TF_LAST_RSS_KIB
	return 0
}

# In situ: watch_start PID FILE runs prog_cost --watch PID (the kernel's BPF
# run-time statistics on, through a BPF_ENABLE_STATS fd that the kernel
# drops when prog_cost exits, even on SIGKILL; kernel.bpf_stats_enabled is
# not written) and returns once its first snapshot is taken; watch_stop
# ends the interval: run_time_ns and run_cnt of every program PID holds,
# as JSON in FILE.
watch_start() {
	local i
	WATCH_OUT=$2
	bg "$PROG_COST" --watch "$1" --json >"$WATCH_OUT" 2>"$WATCH_OUT.err"
	WATCH_PID=$BG_PID
	for i in $(seq 50); do
		grep -q watching "$WATCH_OUT.err" && return 0
		kill -0 "$WATCH_PID" 2>/dev/null || die "prog_cost --watch failed: $(cat "$WATCH_OUT.err")"
		sleep 0.1
	done
	die "prog_cost --watch did not start"
}
watch_stop() {
	kill -INT "$WATCH_PID"
	bg_wait "$WATCH_PID" || die "prog_cost --watch failed: $(cat "$WATCH_OUT.err")"
}

jarr() { printf '%s\n' "$@" | jq -sc .; }

# "busy total" jiffies of the CPUs the iperf3 ends do not use (all CPUs if
# unpinned). The bench leaves them nearly idle, so their load is other work
# on the machine, which takes memory bandwidth, caches and host time from
# the figures: a warning sign, not a correction.
other_cpu_jiffies() {
	awk -v skip="${AFFINITY}" '
		BEGIN { n = split(skip, a, ","); for (i = 1; i <= n; i++) s["cpu" a[i]] = 1 }
		/^cpu[0-9]/ && !($1 in s) {
			busy += $2 + $3 + $4 + $7 + $8 + $9
			total += $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9
		}
		END { print busy + 0, total + 0 }' /proc/stat
}
busy_since() {
	awk -v a="$1" -v b="$(other_cpu_jiffies)" 'BEGIN { split(a, x); split(b, y)
		t = y[2] - x[2]; printf "%.1f", (t > 0 ? 100 * (y[1] - x[1]) / t : 0) }'
}

# One round: every state of STATES by `block STATE ROUND`, in ABBA order (as
# listed in odd rounds, reversed in even ones). block leaves the busy share
# of the other CPUs during it in BLOCK_BUSY[STATE]. A round with a block
# above BUSY_MAX % was disturbed by other work: it is discarded (DISCARDED:
# "round:busy") and run again, at most MAX_REDO times per run. Then
# `keep_block STATE` takes each state's figures, and OTHER_BUSY the busy shares.
declare -A BLOCK_BUSY
declare -a OTHER_BUSY=() DISCARDED=()
REDONE=0
abba_round() {
	local r=$1 st order=() i worst
	if [ $((r % 2)) -eq 1 ]; then order=("${STATES[@]}")
	else for ((i = ${#STATES[@]} - 1; i >= 0; i--)); do order+=("${STATES[$i]}"); done
	fi
	while :; do
		worst=0
		for st in "${order[@]}"; do block "$st" "$r"; done
		for st in "${STATES[@]}"; do
			worst=$(awk -v a="$worst" -v b="${BLOCK_BUSY[$st]}" 'BEGIN { print (b > a ? b : a) }')
		done
		if awk -v w="$worst" -v m="$BUSY_MAX" 'BEGIN { exit !(w > m) }' &&
		   [ "$REDONE" -lt "$MAX_REDO" ]; then
			REDONE=$((REDONE + 1))
			DISCARDED+=("$r:$worst")
			log "round $r discarded: the other CPUs were $worst% busy (> $BUSY_MAX%); again"
			continue
		fi
		break
	done
	for st in "${STATES[@]}"; do
		OTHER_BUSY+=("${BLOCK_BUSY[$st]}")
		keep_block "$st"
	done
}

# The JSON of the other-CPU watch, for the result.
busy_json() {
	jq -n --argjson busy "$(jarr "${OTHER_BUSY[@]}")" --argjson busy_max "$BUSY_MAX" \
		--argjson discarded "$(printf '%s\n' "${DISCARDED[@]}" |
			jq -Rsc 'split("\n") | map(select(length > 0) | split(":") |
				{round: (.[0] | tonumber), other_cpus_busy_percent: (.[1] | tonumber)})')" "
		$JQ_MEDIAN"'
		{other_cpus_busy_percent: {per_block: $busy, median: ($busy | median),
					   max: ($busy | max), redo_above: $busy_max},
		 discarded_rounds: $discarded}'
}

# ---- jq and the summary ----

JQ_MEDIAN='def median: sort | if length % 2 == 1 then .[length / 2 | floor]
	else (.[length / 2 - 1] + .[length / 2]) / 2 end;'
# fig($off; $on; $unit): the per-round figures of two states (arrays, round
# by round) and their ratio: the median over the rounds of on/off of the
# same round (the blocks run back to back, which cancels slow drift of the
# machine), its range, and the medians of each state.
JQ_FIG=$JQ_MEDIAN'
def fig($off; $on; $unit):
	([range($off | length)] | map($on[.] / $off[.])) as $pairs |
	{unit: $unit, off: $off, on: $on,
	 off_median: ($off | median), on_median: ($on | median),
	 ratio: ($pairs | median), ratios: $pairs,
	 ratio_min: ($pairs | min), ratio_max: ($pairs | max),
	 ratio_of_medians: (($on | median) / ($off | median))};'

q() { jq -r "$1" <<<"$RESULT"; }
# row LABEL PATH SCALE FORMAT: a fig() of RESULT as "off on ratio (range)".
row() {
	printf "%-32s $4 $4 %7.3f  (%.3f-%.3f)\n" "$1" \
		"$(q ".$2.off_median / $3")" "$(q ".$2.on_median / $3")" \
		"$(q ".$2.ratio")" "$(q ".$2.ratio_min")" "$(q ".$2.ratio_max")"
}

# switched($r): a switching measurement's figures from its ratios (an
# array, switched_ratios): their median (the figure), mean, range, count.
JQ_SWITCHED=$JQ_MEDIAN'
def switched($r): {on_periods: ($r | length),
	ratio: (if ($r | length) > 0 then ($r | median) else null end),
	ratio_mean: (if ($r | length) > 0 then ($r | add / length) else null end),
	ratio_min: ($r | min), ratio_max: ($r | max), ratios: $r};'

# switched_ratios SWITCHES TRACE: the ratios of a switching measurement
# (drops.sh, nat.sh), as a JSON array. SWITCHES: "switch <ns> on|off" lines
# (other lines ignored), each when a state took effect; TRACE: "<ns>
# <count so far>" lines of the traffic, every 10 ms or so (same clock). A
# period's rate: the count's progress from 20 ms after its switch (the
# switch's own work: attaching patches call sites, IPIs) to the next
# switch, if samples cover at least half of it and the count moved; an
# "on" period's ratio: its rate over the mean of the "off" periods before
# and after it.
switched_ratios() {
	awk -v skip=20000000 '
		FNR == NR { if ($1 == "switch") { st[n] = $2; on[n] = ($3 == "on"); n++ } next }
		{ t[m] = $1; c[m] = $2; m++ }
		END {
			st[n] = t[m - 1] + 1
			j = 0
			for (i = 0; i < n; i++) {
				while (j < m && t[j] < st[i] + skip) j++
				a = j
				while (j < m && t[j] <= st[i + 1]) j++
				b = j - 1
				ok[i] = (b > a && t[b] - t[a] >= (st[i + 1] - st[i]) / 2)
				if (ok[i]) rate[i] = (c[b] - c[a]) * 1e9 / (t[b] - t[a])
				ok[i] = ok[i] && rate[i] > 0	# before or after the traffic
			}
			for (i = 1; i < n - 1; i++)
				if (on[i] && ok[i] && ok[i - 1] && ok[i + 1] && !on[i - 1] && !on[i + 1])
					printf "%s%.5f", (k++ ? "," : "["), rate[i] / ((rate[i - 1] + rate[i + 1]) / 2)
			print (k ? "]" : "[]")
		}' "$1" "$2"
}
