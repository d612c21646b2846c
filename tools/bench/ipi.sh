#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# ipi.sh: the function-call interrupts (/proc/interrupts, CAL) that an idle
# `tapflow flows` sends other CPUs, per CPU, for two builds side by side.
#
# Before it reads its maps, each poll of tapflow empties the per-CPU caches
# of the NAT join and of the drop tracer by running their flush programs
# on CPUs (BPF_PROG_TEST_RUN with BPF_F_TEST_RUN_ON_CPU): on any CPU but
# the caller's, an IPI. On a hypervisor whose vCPU cores are pinned or
# isolated that is an interrupt into a guest. This counts them: the
# topology of nat.sh (VM namespace -> bridge port vport -> br0 ->
# MASQUERADE -> uplink up0 -> "internet"), no traffic, and
# `tapflow flows --iface vport --bridge br0 --uplink up0` (the join and
# the drop tracer on) pinned to --tf-cpu, so that every other CPU gets
# what its polls send; for each state, the CAL count of every CPU over
# -t seconds after tapflow attached. States, in this order each round:
# off (nothing attached: what the rest of the machine sends), old (OLD's
# tapflow), new (this tree's). Other work on the machine sends CALs too
# (BPF test runs on a CPU, membarrier, ...), so next to CAL, ipi_count
# counts the function calls that tapflow's process itself queued for each
# CPU in the same interval (tp_btf/ipi_send_cpu): the part of CAL that is
# tapflow's, whatever else runs.
#
#   tools/bench/ipi.sh --old PATH [-t SEC] [-r ROUNDS] [--tf-cpu C]
#                      [--attach auto|tcx|clsact]
#
# PATH: another build's .output/tapflow (e.g. main's HEAD built in a
# copy: git archive HEAD | tar -x -C DIR && make -C DIR). Defaults: -t 60,
# -r 1, --tf-cpu 0.
# Needs root, jq, iproute2, iptables, a built .output/tapflow (make) and
# .output/bench/ipi_count (make -C tools/bench).
# Everything it creates (namespaces, processes) is removed on exit.
set -uo pipefail

PROG=ipi.sh
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$HERE/lib.sh"
NEW_BIN=${TAPFLOW:-$ROOT/.output/tapflow}
IPI_COUNT=${IPI_COUNT:-$ROOT/.output/bench/ipi_count}
TAPFLOW=$NEW_BIN
OLD_BIN=
SECS=60
ROUNDS=1
TF_CPU=0

own_opt() {
	case $1 in
	--old) OLD_BIN=${2:-}; return 2 ;;
	--tf-cpu) TF_CPU=${2:-}; return 2 ;;
	*) return 0 ;;
	esac
}
parse_opts "$@"
check_common_opts
[ -n "$OLD_BIN" ] && [ -x "$OLD_BIN" ] || die "--old needs another build's tapflow"
[[ $TF_CPU =~ ^[0-9]+$ ]] && [ "$TF_CPU" -lt "$(nproc)" ] || die "--tf-cpu needs a CPU"
need_tools jq ip iptables taskset
[ -x "$IPI_COUNT" ] || die "$IPI_COUNT not built (run make -C tools/bench)"

bench_init tfi
NS_VM=$ID-vm NS_RT=$ID-rt NS_NET=$ID-net
VM_NET=198.18.1.0/24 GW_IP=198.18.1.1 VM_IP=198.18.1.2
UP_IP=198.19.1.1 NET_IP=198.19.1.2
TF_NS=$NS_RT
NCPU=$(nproc)

setup() { nat_router_up; }

# The CAL count of each CPU, space-separated.
cal() {
	awk -v n="$NCPU" '$1 == "CAL:" { s = $2; for (i = 3; i <= n + 1; i++) s = s " " $i; print s }' \
		/proc/interrupts
}

# "a b c" - "x y z", element by element.
diff_counts() {
	local -a a b
	read -r -a a <<<"$1"
	read -r -a b <<<"$2"
	local i out=()
	for ((i = 0; i < ${#a[@]}; i++)); do out+=($((a[i] - b[i]))); done
	echo "${out[*]}"
}

# "a b c" + "x y z" (the first may be empty: none yet).
add_counts() {
	local -a a b
	read -r -a a <<<"$1"
	read -r -a b <<<"$2"
	local i out=()
	for ((i = 0; i < ${#b[@]}; i++)); do out+=($((${a[i]:-0} + b[i]))); done
	echo "${out[*]}"
}

# One state: its CAL per CPU over SECS into CAL_OF[state] (summed over rounds).
declare -A CAL_OF SENT_OF
measure() {
	local state=$1 c0 c1 d wrapper
	if [ "$state" != off ]; then
		wrapper=$WORK/tapflow-$state
		printf '#!/bin/sh\nexec taskset -c %s %q "$@"\n' "$TF_CPU" \
			"$([ "$state" = old ] && echo "$OLD_BIN" || echo "$NEW_BIN")" >"$wrapper"
		chmod +x "$wrapper"
		TAPFLOW=$wrapper
		tf_start flows vport --bridge br0 --uplink up0
		# A few datagrams through the join first, so that its cache has
		# been used (and emptied again before the count starts).
		ip netns exec "$NS_VM" bash -c "for i in 1 2 3 4 5; do echo x >/dev/udp/$NET_IP/7; done" ||
			die "cannot send through the NAT"
		sleep 2
	fi
	c0=$(cal)
	if [ "$state" != off ]; then
		"$IPI_COUNT" "$TF_PID" "$SECS" >"$WORK/ipi.$state" || die "ipi_count failed"
	else
		sleep "$SECS"
	fi
	c1=$(cal)
	d=$(diff_counts "$c1" "$c0")
	CAL_OF[$state]=$(add_counts "${CAL_OF[$state]:-}" "$d")
	if [ "$state" != off ]; then
		tf_stop
		SENT_OF[$state]=$(add_counts "${SENT_OF[$state]:-}" "$(cat "$WORK/ipi.$state")")
		log "round $r $state: CAL per CPU over ${SECS} s: $d; tapflow's: $(cat "$WORK/ipi.$state")"
	else
		log "round $r $state: CAL per CPU over ${SECS} s: $d"
	fi
}

setup
for ((r = 1; r <= ROUNDS; r++)); do
	for s in off old new; do measure "$s"; done
done

printf '\nCAL (function-call interrupts) per CPU, idle `tapflow flows` (join + drops) pinned to CPU %s,\n' "$TF_CPU"
printf '%s round(s) of %s s each; old: %s\n' "$ROUNDS" "$SECS" "$OLD_BIN"
printf '%-6s' state
for ((i = 0; i < NCPU; i++)); do printf '%10s' "CPU$i"; done
printf '\n'
for s in off old new; do
	printf '%-6s' "$s"
	for v in ${CAL_OF[$s]}; do printf '%10s' "$v"; done
	printf '\n'
done
printf '\nof which tapflow queued (tp_btf/ipi_send_cpu, its process only):\n'
for s in old new; do
	printf '%-6s' "$s"
	for v in ${SENT_OF[$s]}; do printf '%10s' "$v"; done
	printf '\n'
done
