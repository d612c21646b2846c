#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# How a run ends when its report cannot be written: a reader that goes away
# (`tapflow ... | head`) ends the run quietly with exit 0, a full disk with
# one line and exit 1; either way the final report is attempted, the hooks
# are detached and the state file removed, within an interval. Every run
# uses clsact, whose filters would outlive a tapflow left running or killed.
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/topo.sh"

netns_test_begin "netns output errors" outerr jq python3 tc timeout
# tapflow traces tfo0 in $NS; tfo1, its peer, is in $NSQ.
tf_netns NS out && tf_netns NSQ outq || { tf_fail "namespaces" "cannot create them"; tf_finish; }
quiet_netns "$NS" && quiet_netns "$NSQ"
ip -n "$NS" link add tfo0 type veth peer name tfo1 netns "$NSQ" &&
	ip -n "$NS" link set tfo0 up && ip -n "$NSQ" link set tfo1 up &&
	ip -n "$NS" addr add 10.213.0.1/24 dev tfo0 && ip -n "$NSQ" addr add 10.213.0.2/24 dev tfo1 ||
	{ tf_fail "veth" "cannot create it"; tf_finish; }
TRACE=(--netns "$NS" --no-libvirt --iface tfo0 --attach clsact)

# left_behind PID: what tapflow PID left attached or recorded.
left_behind() {
	local d left=""
	left+=$(hooks_of "$NS" tfo0 | sed "s/^/tfo0: /")
	has_clsact "$NS" tfo0 && left+=" tfo0: clsact qdisc"
	[ -e "/run/tapflow/hooks.$1" ] && left+=" /run/tapflow/hooks.$1"
	echo "$left"
}

# run_into NAME SINK CMD...: run tapflow CMD with stdout into SINK, a shell
# redirection target or "| READER"; 20 s at most (a run that never ends is
# the bug). Sets RC (tapflow's exit code) and PID.
run_into() {
	local name=$1 sink=$2
	shift 2
	# sh -c execs tapflow in place: the pid written is tapflow's.
	timeout -s KILL 20 sh -c "echo \$\$ >$OUT/$name.pid; exec \"\$@\" $sink" sh \
		"$TAPFLOW" "${TRACE[@]}" "$@" 2>"$OUT/$name.err"
	RC=${PIPESTATUS[0]}
	PID=$(cat "$OUT/$name.pid")
}

# dropper_start: drops on the traced veth, so that `drops` has something to
# report: UDP to a port nobody listens on (NO_SOCKET), 10 a second, until
# kill_job $DROPPER or the end.
dropper_start() {
	ip netns exec "$NSQ" python3 -c '
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
while True:
    s.sendto(b"x" * 32, ("10.213.0.1", 9))
    time.sleep(0.1)
' &
	DROPPER=$!
	tf_on_exit "kill_job $DROPPER"
}
dropper_start

# --- a reader that goes away: EPIPE ends the run, exit 0, nothing left -------
for cmd in stats flows drops; do
	name="$cmd | head -2"
	t0=$(date +%s%N)
	timeout -s KILL 20 sh -c 'echo $$ >"$1"; shift; exec "$@"' sh "$OUT/pipe.pid" \
		"$TAPFLOW" "${TRACE[@]}" --json "$cmd" -i 0.2 2>"$OUT/pipe.err" |
		head -n 2 >"$OUT/pipe.out"
	RC=${PIPESTATUS[0]}
	ms=$((($(date +%s%N) - t0) / 1000000))
	tf_eq "$name: tapflow ends, exit 0 (in $ms ms)" 0 "$RC"
	tf_eq "$name: the reader got its 2 records" 2 "$(jq -s length "$OUT/pipe.out")"
	tf_eq "$name: nothing on stderr" "" "$(head -c 300 "$OUT/pipe.err")"
	tf_eq "$name: nothing left attached, no state file" "" \
		"$(left_behind "$(cat "$OUT/pipe.pid")")"
done

# drops --events: the events are the live output, written as they come.
name="drops --events | head -1"
timeout -s KILL 20 sh -c 'echo $$ >"$1"; shift; exec "$@"' sh "$OUT/ev.pid" \
	"$TAPFLOW" "${TRACE[@]}" --json drops --events -i 0.5 2>"$OUT/ev.err" |
	head -n 1 >"$OUT/ev.out"
RC=${PIPESTATUS[0]}
tf_eq "$name: tapflow ends, exit 0" 0 "$RC"
tf_eq "$name: the reader got a drop event" drop_event "$(jq -r .type "$OUT/ev.out")"
tf_eq "$name: nothing left attached, no state file" "" "$(left_behind "$(cat "$OUT/ev.pid")")"

# A reader that goes away while there is nothing to write: told by poll(),
# the run ends at the next interval all the same.
name="flows -i 0.2, reader gone before any write"
kill_job $DROPPER
timeout -s KILL 20 sh -c 'echo $$ >"$1"; shift; exec "$@"' sh "$OUT/gone.pid" \
	"$TAPFLOW" "${TRACE[@]}" --json drops -i 0.2 2>"$OUT/gone.err" | sleep 1
RC=${PIPESTATUS[0]}
tf_eq "$name: exit 0" 0 "$RC"
tf_eq "$name: nothing on stderr" "" "$(head -c 300 "$OUT/gone.err")"
tf_eq "$name: nothing left attached, no state file" "" "$(left_behind "$(cat "$OUT/gone.pid")")"
dropper_start

# --- a full disk: one line, exit 1, nothing left -------------------------------
for cmd in stats flows drops; do
	name="$cmd > /dev/full"
	run_into full ">/dev/full" --json "$cmd" -i 0.2
	tf_eq "$name: exit 1" 1 "$RC"
	tf_eq "$name: one line naming the error" \
		"tapflow: cannot write the report to stdout: No space left on device" \
		"$(cat "$OUT/full.err")"
	tf_eq "$name: nothing left attached, no state file" "" "$(left_behind "$PID")"
done
run_into table ">/dev/full" stats -d 0.5
tf_eq "stats -d (table) > /dev/full: exit 1" 1 "$RC"
tf_check "stats -d (table) > /dev/full: says so" \
	grep -q "^tapflow: cannot write the report to stdout: No space left" "$OUT/table.err"
tf_eq "stats -d (table) > /dev/full: nothing left" "" "$(left_behind "$PID")"

"$TAPFLOW" --help >/dev/full 2>"$OUT/help.err"
tf_eq "--help > /dev/full: exit 1" 1 $?
tf_check "--help > /dev/full: says so" grep -q "^tapflow: cannot write to stdout" "$OUT/help.err"
"$TAPFLOW" --version >/dev/full 2>"$OUT/version.err"
tf_eq "--version > /dev/full: exit 1" 1 $?

# No stdout at all: said before anything is attached.
run_into closed ">&-" --json stats -d 0.3
tf_eq "stdout closed: exit 1" 1 "$RC"
tf_eq "stdout closed: one line" "tapflow: stdout is closed: there is nowhere to write the report" \
	"$(cat "$OUT/closed.err")"
tf_eq "stdout closed: nothing left" "" "$(left_behind "$PID")"

tf_finish
