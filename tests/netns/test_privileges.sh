#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Least privilege (README, Privileges). Every tracing command runs under
# setpriv with exactly the capabilities the README names -- as uid 0 with
# nothing else in its bounding set, and as uid 65534 with them as ambient
# capabilities -- and counts the packets the test sends between two
# namespaces of its own. Without any one of them it exits 1 with one line
# naming it, having attached nothing and left no state file. What only
# degrades says so in one warning line and still exits 0: stats without
# CAP_PERFMON (no drops), drops without CAP_SYSLOG (locations as
# addresses), clsact for a uid that does not own /run/tapflow (no state
# file for the next start to clean up after a kill).
# `list` for a user who may not open libvirt's socket: one line naming it
# (a socket of the test's own; no libvirtd needed).
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/topo.sh"

netns_test_begin "netns privileges" priv jq python3 setpriv script iptables tshark

#   $NSA: tfpa0 10.79.0.1 (tapflow traces it) ======= $NSB: tfpb0 10.79.0.2
IF=tfpa0 IP_A=10.79.0.1 IP_B=10.79.0.2
MAC_A=02:79:00:00:00:01 MAC_B=02:79:00:00:00:02
PINGS=3 UDP_DROPS=4
NOBODY=65534

setup() {
	tf_netns NSA pa && tf_netns NSB pb || return 1
	quiet_netns "$NSA" && quiet_netns "$NSB" || return 1
	ip -n "$NSA" link add $IF address $MAC_A type veth peer name tfpb0 netns "$NSB" \
		address $MAC_B || return 1
	ip -n "$NSA" addr add $IP_A/24 dev $IF && ip -n "$NSB" addr add $IP_B/24 dev tfpb0 &&
	ip -n "$NSA" link set $IF up && ip -n "$NSB" link set tfpb0 up || return 1
	# Static neighbours: the only frames are the ones the test sends.
	ip -n "$NSA" neigh add $IP_B lladdr $MAC_B dev $IF nud permanent &&
	ip -n "$NSB" neigh add $IP_A lladdr $MAC_A dev tfpb0 nud permanent || return 1
	# The drops to count: UDP to the discard port, dropped by a rule.
	nsq "$NSA" iptables -A INPUT -p udp --dport 9 -j DROP
}
setup || { tf_fail "namespaces" "cannot create them"; tf_finish; }
tf_ok "namespaces: $NSA and $NSB joined by a veth"

# privs MODE CAPS: setpriv's options for exactly CAPS (comma-separated
# names, "" for none): uid 0 with a bounding set of CAPS ("root"), or
# uid $NOBODY with CAPS ambient ("user").
privs() {
	local plus=""
	[ -n "$2" ] && plus=",+${2//,/,+}"
	if [ "$1" == root ]; then
		echo "--inh-caps=-all --bounding-set=-all$plus"
	else
		echo "--reuid=$NOBODY --regid=$NOBODY --clear-groups --inh-caps=-all$plus" \
			"--ambient-caps=-all$plus"
	fi
}

# The warnings a run may give, by cause.
W_STATE="^tapflow: warning: cannot keep state in /run/tapflow \(.*\): if this run is killed"
W_DROPS="^tapflow: warning: drops are not counted: the drop tracer needs CAP_PERFMON"
W_KSYMS="^tapflow: warning: drop locations are shown as addresses: .*CAP_SYSLOG"
# state_warning MODE: STATE=(W_STATE) if a clsact run of MODE's uid cannot
# keep its state file: the state directory is not that uid's own (nor can
# it create it). Else STATE=(). (TCX runs lose nothing without it.)
state_warning() {
	local uid=0 owner
	[ "$1" == user ] && uid=$NOBODY
	owner=$(stat -c %u /run/tapflow 2>/dev/null || echo none)
	STATE=()
	[ "$owner" == $uid ] || { [ "$owner" == none ] && [ $uid -eq 0 ]; } ||
		STATE=("$W_STATE")
}
# Does /proc/kallsyms hide addresses from a process without CAP_SYSLOG?
kptr=$(cat /proc/sys/kernel/kptr_restrict)
paranoid=$(cat /proc/sys/kernel/perf_event_paranoid)
KSYMS_NEED_SYSLOG=0
[ "$kptr" -eq 1 ] || { [ "$kptr" -eq 0 ] && [ "$paranoid" -ge 2 ]; } && KSYMS_NEED_SYSLOG=1

# links PID TYPE: the BPF links of TYPE (tcx, raw_tracepoint) process PID holds.
links() {
	local fd n=0
	for fd in /proc/"$1"/fd/*; do
		[ "$(readlink "$fd" 2>/dev/null)" == anon_inode:bpf_link ] || continue
		grep -q "^link_type:[[:space:]]*$2\$" "/proc/$1/fdinfo/${fd##*/}" 2>/dev/null &&
			n=$((n + 1))
	done
	echo $n
}

# attached PID ATTACH DROPS: PID's hooks are on $IF (and, if DROPS, its drop tracer).
attached() {
	if [ "$2" == clsact ]; then
		[ "$(hooks_of "$NSA" $IF | grep -c '^clsact ')" -eq 2 ] || return 1
	else
		[ "$(links "$1" tcx)" -eq 2 ] || return 1
	fi
	[ "$3" -eq 0 ] || [ "$(links "$1" raw_tracepoint)" -ge 1 ]
}

# dropped N: $NSA's DROP rule has dropped N packets.
dropped() {
	[ "$(nsq "$NSA" iptables -L INPUT -v -x -n | awk '$3 == "DROP" { print $1 }')" == "$1" ]
}

# traffic DROPS: DROPS UDP datagrams to the discard port, which $NSA's rule
# drops (waited for: by then they are freed), then $PINGS echo round trips
# from $NSB.
traffic() {
	if [ "$1" -gt 0 ]; then
		nsq "$NSA" iptables -Z INPUT
		nsq "$NSB" python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range($1):
    s.sendto(b'tapflow', ('$IP_A', 9))"
		wait_for 10 dropped "$1" || return 1
	fi
	ping_from "$NSB" $IP_A $PINGS 56
}

# check_clean NAME PID: nothing of PID's is left: no TCX program or clsact
# qdisc on $IF (tapflow attaches to --iface only), no state file.
check_clean() {
	local left=""
	[ "$(n_tcx "$NSA" $IF)" -eq 0 ] || left+=" TCX on $IF"
	tc -n "$NSA" qdisc show dev $IF | grep -q clsact && left+=" clsact qdisc on $IF"
	[ -e "/run/tapflow/hooks.$2" ] && left+=" /run/tapflow/hooks.$2"
	tf_eq "$1: nothing attached, no state file" "" "$left"
}

# check_stderr NAME FILE REGEX...: every line of FILE is one of the expected
# warnings, and each expected one is there once.
check_stderr() {
	local name=$1 file=$2 line re ok unexpected="" missing=""
	shift 2
	while IFS= read -r line; do
		ok=0
		for re in "$@"; do [[ $line =~ $re ]] && ok=1; done
		[ $ok -eq 1 ] || unexpected+="$line|"
	done <"$file"
	for re in "$@"; do
		[ "$(grep -cE -- "$re" "$file")" -eq 1 ] || missing+="/$re/ "
	done
	if [ -z "$unexpected$missing" ]; then
		tf_ok "$name: stderr: ${*:-nothing}"
	else
		tf_fail "$name: stderr" "unexpected: ${unexpected:0:500} missing: $missing"
	fi
}

# run NAME MODE CAPS ATTACH DROPS TRACER CMD...: tapflow --no-libvirt
# --iface $IF CMD in $NSA with exactly CAPS; once it is attached (TRACER 1:
# with its drop tracer), the traffic (DROPS dropped datagrams); then SIGINT.
# Its exit code in RC, its pid in PID, its output in $OUT/NAME.{out,err}.
run() {
	local name=$1 mode=$2 caps=$3 attach=$4 drops=$5 tracer=$6
	shift 6
	# shellcheck disable=SC2046 # privs' words are options
	ip netns exec "$NSA" setpriv $(privs "$mode" "$caps") "$TAPFLOW" --attach "$attach" \
		--no-libvirt --iface $IF "$@" >"$OUT/$name.out" 2>"$OUT/$name.err" </dev/null &
	PID=$!
	tf_on_exit "kill_job $PID"
	finish_run "$name" "$attach" "$drops" "$tracer"
}

# finish_run NAME ATTACH DROPS TRACER: wait for $PID to attach, send the
# traffic, stop it; its exit code in RC.
finish_run() {
	if wait_for 30 attached "$PID" "$2" "$4"; then
		traffic "$3" || tf_diag "$1: the traffic did not go through"
	else
		tf_diag "$1: not attached: $(head -c 300 "$OUT/$1.err")"
	fi
	kill -INT "$PID" 2>/dev/null
	wait "$PID"
	RC=$?
}

# final NAME JQ: one value from NAME's JSON output.
final() { jq -r "$2" "$OUT/$1.out" 2>/dev/null | tail -n1; }

TRACE=bpf,perfmon,net_admin
for mode in root user; do
	# stats: CAP_BPF and CAP_NET_ADMIN; CAP_PERFMON counts drops.
	n="$mode stats"
	run "$n" $mode bpf,net_admin,perfmon tcx $UDP_DROPS 1 --json stats
	tf_eq "$n: exit code" 0 "$RC"
	tf_eq "$n: rx/tx packets of $IF" "$((PINGS + UDP_DROPS)) $PINGS" \
		"$(final "$n" "select(.type == \"stats\" and .final) | \"\(.rx_packets) \(.tx_packets)\"")"
	tf_eq "$n: drops of $IF" $UDP_DROPS "$(final "$n" 'select(.type == "stats" and .final) | .drops')"
	check_stderr "$n" "$OUT/$n.err"
	check_clean "$n" "$PID"

	n="$mode stats nodrops"
	run "$n" $mode bpf,net_admin tcx 0 0 --json stats
	tf_eq "$n: exit code" 0 "$RC"
	tf_eq "$n: rx/tx packets of $IF" "$PINGS $PINGS" \
		"$(final "$n" "select(.type == \"stats\" and .final) | \"\(.rx_packets) \(.tx_packets)\"")"
	tf_eq "$n: drops not counted (null)" null \
		"$(final "$n" 'select(.type == "summary") | .drops_hook')"
	check_stderr "$n" "$OUT/$n.err" "$W_DROPS"
	check_clean "$n" "$PID"

	# flows: the flow programs need CAP_PERFMON too.
	n="$mode flows"
	run "$n" $mode $TRACE tcx 0 1 --json flows
	tf_eq "$n: exit code" 0 "$RC"
	tf_eq "$n: the ICMP flow's rx/tx packets" "$PINGS $PINGS" \
		"$(final "$n" "select(.type == \"flow\" and .final and .proto == \"icmp\") |
			\"\(.rx_packets) \(.tx_packets)\"")"
	check_stderr "$n" "$OUT/$n.err"
	check_clean "$n" "$PID"

	# drops: with CAP_SYSLOG, locations are kernel symbols.
	n="$mode drops"
	run "$n" $mode $TRACE,syslog tcx $UDP_DROPS 1 --json drops
	tf_eq "$n: exit code" 0 "$RC"
	tf_eq "$n: the dropped datagrams" "NETFILTER_DROP $UDP_DROPS" \
		"$(final "$n" 'select(.type == "drop" and .final and .proto == "udp") |
			"\(.reason) \(.count)"')"
	loc=$(final "$n" 'select(.type == "drop" and .final and .proto == "udp") | .location')
	if [ "$kptr" -ge 2 ]; then
		tf_skip "$n: location is a symbol" "kernel.kptr_restrict=$kptr hides kallsyms"
	else
		tf_check "$n: location is a symbol ($loc)" eval "[[ '$loc' =~ ^[a-z_].*\+0x ]]"
	fi
	check_stderr "$n" "$OUT/$n.err"
	check_clean "$n" "$PID"

	# capture: the sampling programs need CAP_PERFMON too; pcapng on stdout.
	n="$mode capture"
	run "$n" $mode $TRACE tcx 0 0 capture -w -
	tf_eq "$n: exit code" 0 "$RC"
	tf_eq "$n: frames captured" $((2 * PINGS)) \
		"$(tshark -r "$OUT/$n.out" -T fields -e frame.number 2>/dev/null | wc -l)"
	# With the pcapng on stdout, the report goes to stderr.
	check_stderr "$n" "$OUT/$n.err" "^- +$IF +iface " "^capture: $((2 * PINGS)) frames written"
	check_clean "$n" "$PID"

	# top, in a terminal (script); its pid from the shell that execs it.
	n="$mode top"
	cat >"$OUT/top.sh" <<-EOF
		#!/bin/sh
		echo \$\$ >"$OUT/top.pid"
		export TERM=xterm
		exec setpriv $(privs $mode $TRACE) "$TAPFLOW" --no-libvirt --iface $IF top \
			2>"$OUT/$n.err"
	EOF
	chmod +x "$OUT/top.sh"
	rm -f "$OUT/top.pid"
	ip netns exec "$NSA" script -qefc "$OUT/top.sh" "$OUT/$n.out" </dev/null >/dev/null 2>&1 &
	SCRIPT_PID=$!
	tf_on_exit "kill_job $SCRIPT_PID"
	if wait_for 10 test -s "$OUT/top.pid"; then
		PID=$(cat "$OUT/top.pid")
		tf_on_exit "grep -qa tapflow /proc/$PID/cmdline && kill -9 $PID"
		wait_for 30 attached "$PID" tcx 1 && traffic 0
		kill -INT "$PID"
	fi
	wait $SCRIPT_PID
	tf_eq "$n: exit code" 0 $?
	tf_check "$n: the summary counts flows" \
		grep -qE "^flows: [1-9][0-9]* seen" "$OUT/$n.out"
	check_stderr "$n" "$OUT/$n.err"
	check_clean "$n" "$PID"
done

# Degraded: drops without CAP_SYSLOG shows locations as addresses.
n="user drops nosyslog"
run "$n" user $TRACE tcx $UDP_DROPS 1 --json drops
tf_eq "$n: exit code" 0 "$RC"
loc=$(final "$n" 'select(.type == "drop" and .final and .proto == "udp") | .location')
if [ $KSYMS_NEED_SYSLOG -eq 1 ]; then
	tf_check "$n: location is an address ($loc)" eval "[[ '$loc' =~ ^0x[0-9a-f]+$ ]]"
	check_stderr "$n" "$OUT/$n.err" "$W_KSYMS"
else
	tf_skip "$n: location is an address" "kallsyms shows addresses to everyone here"
fi
check_clean "$n" "$PID"

# Degraded: clsact as a user who cannot record its hooks (so a later start
# could not remove them after a SIGKILL): said, and removed at exit, qdisc
# included.
n="user clsact"
run "$n" user $TRACE clsact 0 1 --json flows
tf_eq "$n: exit code" 0 "$RC"
tf_eq "$n: the ICMP flow's rx/tx packets" "$PINGS $PINGS" \
	"$(final "$n" "select(.type == \"flow\" and .final and .proto == \"icmp\") |
		\"\(.rx_packets) \(.tx_packets)\"")"
state_warning user
check_stderr "$n" "$OUT/$n.err" "${STATE[@]}"
check_clean "$n" "$PID"

# --netns: setns() needs CAP_SYS_ADMIN (tapflow started outside $NSA).
for mode in root user; do
	n="$mode stats --netns"
	# shellcheck disable=SC2046
	setpriv $(privs $mode bpf,net_admin,sys_admin) "$TAPFLOW" --netns "$NSA" --no-libvirt \
		--iface $IF --no-drops --json stats >"$OUT/$n.out" 2>"$OUT/$n.err" </dev/null &
	PID=$!
	tf_on_exit "kill_job $PID"
	finish_run "$n" tcx 0 0
	tf_eq "$n: exit code" 0 "$RC"
	tf_eq "$n: rx/tx packets of $IF" "$PINGS $PINGS" \
		"$(final "$n" "select(.type == \"stats\" and .final) | \"\(.rx_packets) \(.tx_packets)\"")"
	check_stderr "$n" "$OUT/$n.err"
	check_clean "$n" "$PID"
done

# missing NAME MODE CAPS CAP NS ARGS...: tapflow ARGS with CAPS, which lack
# CAP (in namespace NS, "" for this one): exit 1 with one line naming CAP,
# nothing on stdout, nothing attached.
missing() {
	local name=$1 mode=$2 caps=$3 cap=$4 ns=$5 first
	local -a in_ns=()
	shift 5
	[ -n "$ns" ] && in_ns=(ip netns exec "$ns")
	# ip netns exec and setpriv exec in place: $! is tapflow.
	# shellcheck disable=SC2046
	"${in_ns[@]}" setpriv $(privs "$mode" "$caps") "$TAPFLOW" "$@" \
		>"$OUT/m.out" 2>"$OUT/m.err" </dev/null &
	PID=$!
	tf_on_exit "kill_job $PID"
	wait $PID
	tf_eq "$name: exit code" 1 $?
	first=$(head -n1 "$OUT/m.err")
	if [ "$(wc -l <"$OUT/m.err")" -eq 1 ] &&
	   [[ $first =~ ^tapflow:\ .*needs\ .*\;\ missing\ $cap\ \(run\ as\ root ]]; then
		tf_ok "$name: one line naming $cap"
	else
		tf_fail "$name: one line naming $cap" "got: $(head -c 400 "$OUT/m.err" | tr '\n' '|')"
	fi
	tf_eq "$name: nothing on stdout" "" "$(head -c 200 "$OUT/m.out")"
	check_clean "$name" "$PID"
}

declare -A NEEDS=([stats]="bpf net_admin" [flows]="bpf perfmon net_admin"
	[drops]="bpf perfmon net_admin" [capture]="bpf perfmon net_admin"
	[top]="bpf perfmon net_admin")
declare -A ARGS=([stats]="stats" [flows]="flows" [drops]="drops" [capture]="capture -w -"
	[top]="top")
for mode in root user; do
	for cmd in stats flows drops capture top; do
		for cap in ${NEEDS[$cmd]}; do
			rest=$(echo "${NEEDS[$cmd]}" | tr ' ' '\n' | grep -vx "$cap" | paste -sd,)
			# shellcheck disable=SC2086 # ARGS are words
			missing "$mode $cmd without CAP_${cap^^}" $mode "$rest" "CAP_${cap^^}" "$NSA" \
				--no-libvirt --iface $IF ${ARGS[$cmd]} -d 5
		done
	done
	missing "$mode stats --netns without CAP_SYS_ADMIN" $mode bpf,net_admin CAP_SYS_ADMIN "" \
		--netns "$NSA" --no-libvirt --iface $IF stats -d 5
done

# list, for a user who may not open libvirt's socket: a socket of the
# test's own (root's, mode 0600), no libvirtd. Which socket, and what to do.
SOCK=$OUT/libvirt-sock
python3 -c "import socket, sys; s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])" "$SOCK"
chmod 0600 "$SOCK" && chmod 0755 "$OUT"
setpriv --reuid=$NOBODY --regid=$NOBODY --clear-groups --inh-caps=-all "$TAPFLOW" \
	-c "qemu+unix:///system?socket=$SOCK" list >"$OUT/list.out" 2>"$OUT/list.err" </dev/null
tf_eq "list, socket not for this user: exit code" 1 $?
DENIED="^tapflow: cannot connect to libvirt at .*: permission denied on its socket $SOCK; run as root"
tf_check "list, socket not for this user: one line naming the socket" eval \
	"[ \$(wc -l <'$OUT/list.err') -eq 1 ] && grep -qE '$DENIED' '$OUT/list.err'"
tf_check "list, socket not for this user: not libvirt's own words" \
	eval "! grep -q 'Failed to connect socket' '$OUT/list.err'"
setpriv --reuid=$NOBODY --regid=$NOBODY --clear-groups --inh-caps=-all "$TAPFLOW" -v \
	-c "qemu+unix:///system?socket=$SOCK" list >"$OUT/list.out" 2>"$OUT/list.err" </dev/null
tf_check "list -v: libvirt's own words as well" grep -q 'Failed to connect socket' "$OUT/list.err"
# A socket this user may open, but whose daemon is gone (no one listens).
chmod 0777 "$SOCK"
setpriv --reuid=$NOBODY --regid=$NOBODY --clear-groups --inh-caps=-all "$TAPFLOW" \
	-c "qemu+unix:///system?socket=$SOCK" list >"$OUT/list.out" 2>"$OUT/list.err" </dev/null
tf_eq "list, no daemon: exit code" 1 $?
tf_check "list, no daemon: one line naming the socket" eval \
	"[ \$(wc -l <'$OUT/list.err') -eq 1 ] && grep -q 'no daemon listens on $SOCK (' '$OUT/list.err'"
tf_skip "list, the daemon refuses the user (polkit)" "needs a libvirtd; not started here"

tf_finish
