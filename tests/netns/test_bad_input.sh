#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Bad input and a hostile environment: one clear line on stderr starting
# "tapflow: ", the documented exit code (2 usage, 1 runtime), nothing on
# stdout, and nothing attached. Every case runs inside a namespace of the
# test's own (ip netns exec) with a veth in it, so that even a tapflow that
# wrongly went ahead could only attach there -- where the test looks.
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/topo.sh"

tf_need_root "bad input"
for tool in jq python3 tc setpriv unshare; do
	command -v $tool >/dev/null || { tf_skip "bad input" "needs $tool"; exit 0; }
done

OUT=$(mktemp -d "/tmp/tft$TF_ID-bad.XXXXXX")
tf_on_exit "rm -rf $OUT"
tf_netns NS bad || { tf_fail "namespace" "cannot create it"; tf_finish; }
quiet_netns "$NS"
ip -n "$NS" link add tfbad0 type veth peer name tfbad1 &&
	ip -n "$NS" link set tfbad0 up && ip -n "$NS" link set tfbad1 up ||
	{ tf_fail "veth" "cannot create it"; tf_finish; }
T=$TAPFLOW

# bad NAME RC PATTERN CMD...: run CMD (in the background, to know its pid:
# ip netns exec, setpriv, unshare and sh -c exec in place, so $! is
# tapflow's pid) and check exit code RC, stderr = one "tapflow: " line
# matching the extended regex PATTERN (case-insensitive), empty stdout, and
# no hook and no state file left.
bad() {
	local name=$1 want=$2 pat=$3 rc n first left d
	shift 3
	"$@" >"$OUT/out" 2>"$OUT/err" </dev/null &
	local pid=$!
	tf_on_exit "kill_job $pid"
	# Bad input is refused at once: a run still going after 30 s (-d nan
	# once ran forever) is killed, and fails on its exit code.
	(sleep 30; kill -9 $pid) 2>/dev/null &
	local watchdog=$!
	wait $pid
	rc=$?
	kill $watchdog 2>/dev/null
	wait $watchdog 2>/dev/null
	tf_eq "$name: exit code" "$want" "$rc"
	n=$(wc -l <"$OUT/err")
	first=$(head -n1 "$OUT/err")
	if [ "$n" -eq 1 ] && [[ $first == "tapflow: "* ]]; then
		tf_ok "$name: one 'tapflow: ' line on stderr"
	else
		tf_fail "$name: one 'tapflow: ' line on stderr" \
			"$n lines: $(head -c 600 "$OUT/err" | tr '\n' '|')"
	fi
	if grep -qiE -- "$pat" "$OUT/err"; then tf_ok "$name: message says /$pat/"
	else tf_fail "$name: message says /$pat/" "got: $first"; fi
	tf_eq "$name: nothing on stdout" "" "$(head -c 300 "$OUT/out")"
	left=""
	for d in lo tfbad0 tfbad1; do
		left+=$(hooks_of "$NS" $d)
		[ "$(n_tcx "$NS" $d)" -eq 0 ] || left+=" TCX on $d"
		has_clsact "$NS" $d && left+=" clsact qdisc on $d"
	done
	[ -e /run/tapflow/hooks.$pid ] && left+=" /run/tapflow/hooks.$pid"
	tf_eq "$name: nothing attached, no state file" "" "$left"
}

# In the test namespace.
inns() { ip netns exec "$NS" "$@"; }
TRACE=(--no-libvirt --iface tfbad0)

# --- usage errors: exit 2 -----------------------------------------------------
bad "unknown command" 2 "unknown command 'frobnicate'" inns "$T" frobnicate
bad "unknown option" 2 "unrecognized|unknown|invalid" inns "$T" --frobnicate stats
for d in abc 0 -3 1x ""; do
	bad "bad -d '$d'" 2 "invalid duration '$d'" inns "$T" "${TRACE[@]}" stats -d "$d"
done
bad "bad -i" 2 "invalid interval 'fast'" inns "$T" "${TRACE[@]}" stats -i fast
# strtod takes these; none is a duration a run can keep (NaN compares false
# with every bound, and below 10 ms a report costs more than it says).
for d in nan NaN inf -inf 1e-9 0x0p0 1e99; do
	bad "bad -d '$d'" 2 "invalid duration '$d'" inns "$T" "${TRACE[@]}" stats -d "$d"
done
for i in nan inf 1e-9; do
	bad "bad -i '$i'" 2 "invalid interval '$i'" inns "$T" "${TRACE[@]}" stats -i "$i"
done
bad "bad --idle-timeout nan" 2 "invalid --idle-timeout 'nan'" \
	inns "$T" "${TRACE[@]}" flows --idle-timeout nan
bad "bad --active-timeout inf" 2 "invalid --active-timeout 'inf'" \
	inns "$T" "${TRACE[@]}" flows --active-timeout inf
# An option that takes one value, given twice: which one was meant is not
# for tapflow to guess.
bad "--attach twice" 2 "--attach given 2 times" \
	inns "$T" "${TRACE[@]}" --attach tcx --attach clsact stats -d 1
bad "-w twice" 2 "-w/--write given 2 times" \
	inns "$T" "${TRACE[@]}" capture -w /dev/null -w /dev/null -d 1
bad "-d twice" 2 "-d/--duration given 2 times" inns "$T" "${TRACE[@]}" stats -d 1 -d 2
bad "-c twice" 2 "-c/--connect given 2 times" inns "$T" -c test:///default -c x list
bad "--netns ''" 2 "invalid --netns ''" "$T" --netns '' "${TRACE[@]}" stats -d 1
bad "--netns with a slash" 2 "invalid --netns '../x'" "$T" --netns ../x "${TRACE[@]}" stats -d 1
bad "-c ''" 2 "invalid libvirt URI ''" inns "$T" -c '' list
bad "--iface ''" 2 "invalid --iface ''" inns "$T" --no-libvirt --iface '' stats -d 1
bad "-i given to capture" 2 "'capture' takes no -i/--interval" \
	inns "$T" "${TRACE[@]}" capture -w /dev/null -i 1
bad "bad --attach" 2 "invalid --attach 'xdp'" inns "$T" "${TRACE[@]}" --attach xdp stats
bad "--vm with --no-libvirt" 2 "--vm.*--no-libvirt" \
	inns "$T" "${TRACE[@]}" --vm somevm stats -d 1
bad "extra argument" 2 "unexpected argument 'extra'" inns "$T" "${TRACE[@]}" stats extra
bad "--no-libvirt without --iface" 2 "--no-libvirt needs.*--iface" \
	inns "$T" --no-libvirt stats -d 1
bad "--bridge and --iface name one interface" 2 "interface tfbad0 is given two roles" \
	inns "$T" "${TRACE[@]}" --bridge tfbad0 stats -d 1
bad "--bridge and --uplink name one interface" 2 "interface tfbad1 is given two roles" \
	inns "$T" "${TRACE[@]}" --uplink tfbad1 --bridge tfbad1 stats -d 1
bad "--bridge given to list" 2 "'list' takes no .*--bridge" inns "$T" --bridge tfbad0 list

# No command at all: the usage text (more than one line is fine there).
inns "$T" --no-libvirt --iface tfbad0 >"$OUT/out" 2>"$OUT/err" </dev/null
tf_eq "no command: exit code" 2 $?
tf_check "no command: the usage on stderr" grep -q '^Usage: tapflow' "$OUT/err"

# --- runtime errors: exit 1 ---------------------------------------------------
bad "unknown --iface" 1 "interface tfnope0 not found" \
	inns "$T" --no-libvirt --iface tfbad0 --iface tfnope0 stats -d 1
bad "unknown --bridge" 1 "interface tfnope1 not found" \
	inns "$T" --no-libvirt --iface tfbad0 --bridge tfnope1 stats -d 1
bad "unknown --netns" 1 "network namespace 'tfnope$TF_ID' not found" \
	"$T" --netns tfnope$TF_ID "${TRACE[@]}" stats -d 1
bad "unreachable libvirt" 1 "libvirt at qemu\+unix.*: no daemon listens on /nonexistent" \
	inns "$T" -c 'qemu+unix:///system?socket=/nonexistent' stats -d 1
tf_skip "unknown VM" "needs a running libvirt; covered by tests/e2e"

# Not root: nobody, no capabilities at all (tests/netns/test_privileges.sh
# takes each one away in turn).
bad "not root" 1 "needs CAP_BPF and CAP_NET_ADMIN; missing CAP_BPF and CAP_NET_ADMIN \(" \
	inns setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
	"$T" "${TRACE[@]}" stats -d 1
# Root without CAP_BPF/CAP_SYS_ADMIN (CAP_NET_ADMIN alone is not enough).
bad "root without CAP_BPF" 1 "missing CAP_BPF \(run as root" \
	inns setpriv --inh-caps=-all --bounding-set=-all,+net_admin \
	"$T" "${TRACE[@]}" stats -d 1

# Kernel without BTF: an empty /sys/kernel/btf in a mount namespace.
bad "no kernel BTF" 1 "BTF" \
	inns unshare -m sh -c "mount -t tmpfs tfnobtf /sys/kernel/btf && exec $T ${TRACE[*]} stats -d 1"

# Unusable kernel BTF (garbage): the load fails -- one line by default, the
# libbpf detail only with -v.
GARBAGE="mount -t tmpfs tfbadbtf /sys/kernel/btf && echo garbage >/sys/kernel/btf/vmlinux"
bad "garbage kernel BTF" 1 "cannot load BPF programs" \
	inns unshare -m sh -c "$GARBAGE && exec $T ${TRACE[*]} stats -d 1"
inns unshare -m sh -c "$GARBAGE && exec $T -v ${TRACE[*]} stats -d 1" >"$OUT/out" 2>"$OUT/err"
tf_eq "garbage kernel BTF -v: exit code" 1 $?
n=$(wc -l <"$OUT/err")
tf_check "garbage kernel BTF -v: more detail than without -v ($n lines, libbpf's)" \
	eval "[ $n -gt 1 ] && grep -q '^libbpf: ' $OUT/err"
tf_check "garbage kernel BTF -v: still ends with tapflow's line" \
	eval "tail -n1 $OUT/err | grep -q '^tapflow: cannot load BPF programs'"

tf_finish
