#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# End to end in the real libvirt lab, what a skeptical operator tries:
#  - `list` tells a tap traced by a running tapflow (attached) from one that
#    still carries the clsact filters of a tapflow that was SIGKILLed
#    (orphaned), also when the dead tapflow's pid belongs to another process
#    by now; the next run removes the orphans;
#  - a VM destroyed between the inventory and the attach (gdb holds tapflow
#    in that window) is skipped with one warning naming it, the run goes on;
#  - `list > /dev/full`: one line, exit 1;
#  - `list` under valgrind: no error, no leak (the libvirt inventory).
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"
. "$HERE/lab-env.sh"

tf_lab_begin e2e-robustness
field() { jq -r --arg vm "$2" "select(.vm == \$vm) | .$1" "$3"; }
TAP_ALPHA=$(tf_lab_tap alpha)

# tc_filters DEV: tapflow's clsact filters on DEV in the lab namespace.
tc_filters() {
	local d
	for d in ingress egress; do
		ip netns exec "$TF_LAB_NS" tc filter show dev "$1" $d 2>/dev/null
	done | grep -c ' tf_'
}

# --- attached, orphaned, pid reused ---------------------------------------------
"${TF[@]}" --vm alpha --attach clsact --json stats >"$TMP/live.json" 2>"$TMP/live.err" &
LIVE=$!
tf_on_exit "kill -9 $LIVE; rm -f /run/tapflow/hooks.$LIVE"
tf_wait_record "$TMP/live.json" stats
tf --json list >"$TMP/l1.json" 2>"$TMP/l1.err"
tf_eq "live run: alpha attached, not orphaned" "true false" \
	"$(field attached alpha "$TMP/l1.json") $(field orphaned alpha "$TMP/l1.json")"
tf_eq "live run: other VMs not attached" "" \
	"$(jq -r 'select(.vm != "alpha" and .attached) | .vm' "$TMP/l1.json")"
tf list --vm alpha >"$TMP/l1.txt" 2>/dev/null
tf_check "live run: table says yes" grep -qE "^alpha +$TAP_ALPHA .* yes " "$TMP/l1.txt"

kill -9 $LIVE
wait $LIVE 2>/dev/null
tf_eq "SIGKILL: alpha's clsact filters still run" 2 "$(tc_filters "$TAP_ALPHA")"
tf --json list >"$TMP/l2.json" 2>"$TMP/l2.err"
tf_eq "after SIGKILL: alpha attached and orphaned" "true true" \
	"$(field attached alpha "$TMP/l2.json") $(field orphaned alpha "$TMP/l2.json")"
tf_check "after SIGKILL: one warning names the tap and the dead pid" \
	grep -q "^tapflow: warning: $TAP_ALPHA (VM alpha) still has the clsact filters of tapflow pid $LIVE" \
	"$TMP/l2.err"
tf list --vm alpha >"$TMP/l2.txt" 2>/dev/null
tf_check "after SIGKILL: table says orphaned" grep -qE "^alpha +$TAP_ALPHA .* orphaned " "$TMP/l2.txt"

# The dead tapflow's pid now belongs to a live process of ours.
sleep 300 &
REUSED=$!
tf_on_exit "kill $REUSED"
mv /run/tapflow/hooks.$LIVE /run/tapflow/hooks.$REUSED
tf_on_exit "rm -f /run/tapflow/hooks.$REUSED"
tf --json list >"$TMP/l3.json" 2>/dev/null
tf_eq "pid reused: still orphaned, not attached by a live tapflow" "true true" \
	"$(field attached alpha "$TMP/l3.json") $(field orphaned alpha "$TMP/l3.json")"
tf --vm alpha --json stats -d 0.5 >"$TMP/clean.json" 2>"$TMP/clean.err"
tf_eq "next run: exit 0" 0 $?
tf_eq "next run: the orphaned filters are gone" 0 "$(tc_filters "$TAP_ALPHA")"
tf_check "next run: the dead run's state file is gone" test ! -e /run/tapflow/hooks.$REUSED
tf --json list >"$TMP/l4.json" 2>/dev/null
tf_eq "then: alpha not attached, not orphaned" "false false" \
	"$(field attached alpha "$TMP/l4.json") $(field orphaned alpha "$TMP/l4.json")"

# --- list > /dev/full -------------------------------------------------------------
tf list >/dev/full 2>"$TMP/full.err"
tf_eq "list > /dev/full: exit 1" 1 $?
tf_eq "list > /dev/full: one line" \
	"tapflow: cannot write the list to stdout: No space left on device" "$(cat "$TMP/full.err")"

# --- list under valgrind: the libvirt inventory's memory ----------------------------
PLAIN=${TAPFLOW_PLAIN:-$(cd "$HERE/../.." && pwd)/.output/tapflow}
if command -v valgrind >/dev/null && [ -x "$PLAIN" ]; then
	valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,possible \
		--suppressions="$HERE/../valgrind.supp" --log-file="$TMP/list.vg" \
		"$PLAIN" --netns "$TF_LAB_NS" -c "$TF_LAB_URI" --json list >"$TMP/vg.json" 2>/dev/null
	tf_eq "list under valgrind: exit 0" 0 $?
	tf_eq "list under valgrind: no error, no leak" "" \
		"$(grep -v 'WARNING: unhandled eBPF command' "$TMP/list.vg" | head -c 1500)"
	tf_eq "list under valgrind: every VM listed" "$(wc -w <<<"$TF_LAB_VMS")" \
		"$(jq -s length "$TMP/vg.json")"
else
	tf_skip "list under valgrind" "needs valgrind and the plain build"
fi

# --- a VM destroyed between the inventory and the attach ----------------------------
# A domain that boots nothing (tf_lab_blank_xml) has its tap within a second.
if ! command -v gdb >/dev/null; then
	tf_skip "VM gone before attach" "needs gdb"
	tf_finish
fi
BLANK=tfe2e-blank
tf_lab_blank_xml $BLANK "$TF_LAB_ALPHA_NET" 52:54:00:7f:00:f1 >"$TMP/blank.xml"
tf_on_exit "virsh -q -c '$TF_LAB_URI' destroy $BLANK"

# gone_before NAME FUNCTION: start the blank VM, run tapflow under gdb
# stopped at FUNCTION, destroy the VM there, let tapflow go on.
gone_before() {
	local name=$1 fn=$2 tap out=$TMP/$2
	tf_lab_virsh create "$TMP/blank.xml" >/dev/null ||
		{ tf_fail "$name: blank VM started" "virsh create failed"; return; }
	tap=$(tf_lab_tap $BLANK)
	# LeakSanitizer cannot run under ptrace; the rest of ASan can.
	gdb -q -batch -ex 'set pagination off' -ex "break $fn" \
		-ex 'set environment ASAN_OPTIONS=detect_leaks=0' \
		-ex "set args $(printf '%q ' "${TF[@]:1}" --json stats -d 1) >$out.json 2>$out.err" \
		-ex run -ex "shell virsh -q -c '$TF_LAB_URI' destroy $BLANK >/dev/null" \
		-ex continue -ex 'printf "exit code %d\n", $_exitcode' \
		"${TF[0]}" >"$out.gdb" 2>&1
	tf_check "$name: tapflow exit 0" grep -q '^exit code 0$' "$out.gdb"
	tf_eq "$name: one line on stderr, naming the VM and its tap" \
		"tapflow: warning: VM $BLANK stopped before tapflow could attach to its tap $tap; not traced" \
		"$(cat "$out.err")"
	tf_eq "$name: the other VMs are reported" "$(echo $TF_LAB_VMS | tr ' ' '\n' | sort | tr '\n' ' ')" \
		"$(jq -r 'select(.type == "stats" and .final and .vm != null) | .vm' "$out.json" |
			sort | tr '\n' ' ')"
	tf_lab_no_hook_left "$out.json"
}
gone_before "gone before the targets" tf_collector_open
gone_before "gone before the attach" tf_collector_attach
tf_finish
