# SPDX-License-Identifier: GPL-2.0
# Shared by the netns tests (source it after tests/lib.sh): a quiet
# VM-host topology without VMs, and probes of what is attached where.
#
#   namespace $NSH ("host")                       namespace $NSP ("peer")
#     tfbr0 (bridge, 10.77.0.254) ---- tfvh0 ======= tfvp0 (10.77.0.2)
#       |
#     tftap0 (tap) -- tfnet.py vm: the "VM" 52:54:00:77:00:01, 10.77.0.1
#
# The VM process holds the tap open (so it has carrier), writes the frames
# it is told to through the FIFO $VM_CTL and answers ICMP echo requests.
# No IPv6, no STP, static neighbours and FDB entries: the only frames on
# the wire are the ones a test sends. MTU 9000 everywhere, for jumbo frames.

TOPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TFNET="$TOPO_DIR/tfnet.py"

TAP=tftap0 BR=tfbr0 VH=tfvh0 VP=tfvp0
MAC_VM=52:54:00:77:00:01 MAC_TAP=fe:54:00:77:00:01
MAC_BR=02:77:00:00:00:fe MAC_VH=02:77:00:00:01:01 MAC_PEER=02:77:00:00:00:02
IP_VM=10.77.0.1 IP_PEER=10.77.0.2 IP_BR=10.77.0.254

# kill_job PID: SIGKILL a background job of this shell, if it still is one
# (a job already waited for is gone from the table: its pid may be reused).
kill_job() { jobs -p | grep -qx "$1" && kill -9 "$1"; }

# Run in a namespace.
nsq() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

quiet_netns() {
	nsq "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
		net.ipv6.conf.default.disable_ipv6=1 || return 1
}

# topo_up SUFFIX: create the namespaces (names in NSH/NSP), links, the VM.
topo_up() {
	tf_netns NSH "h$1" || return 1
	tf_netns NSP "p$1" || return 1
	quiet_netns "$NSH" && quiet_netns "$NSP" || return 1
	ip -n "$NSH" link add $BR address $MAC_BR mtu 9000 type bridge stp_state 0 \
		mcast_snooping 0 || return 1
	ip -n "$NSH" tuntap add dev $TAP mode tap || return 1
	ip -n "$NSH" link set $TAP address $MAC_TAP mtu 9000 master $BR up || return 1
	ip -n "$NSH" link add $VH address $MAC_VH mtu 9000 type veth peer name $VP \
		netns "$NSP" address $MAC_PEER mtu 9000 || return 1
	ip -n "$NSH" link set $VH master $BR up || return 1
	ip -n "$NSH" link set $BR up || return 1
	ip -n "$NSH" addr add $IP_BR/24 dev $BR || return 1
	ip -n "$NSP" link set $VP up || return 1
	ip -n "$NSP" addr add $IP_PEER/24 dev $VP || return 1
	ip -n "$NSP" neigh add $IP_VM lladdr $MAC_VM dev $VP nud permanent || return 1
	ip -n "$NSP" neigh add $IP_BR lladdr $MAC_BR dev $VP nud permanent || return 1
	ip -n "$NSH" neigh add $IP_PEER lladdr $MAC_PEER dev $BR nud permanent || return 1
	ip -n "$NSH" neigh add $IP_VM lladdr $MAC_VM dev $BR nud permanent || return 1
	bridge -n "$NSH" fdb add $MAC_VM dev $TAP master static || return 1
	bridge -n "$NSH" fdb add $MAC_PEER dev $VH master static || return 1
	# The VM's UDP frames go to the discard port: drop them without an
	# ICMP port unreachable, which would be traffic of its own.
	nsq "$NSP" iptables -A INPUT -p udp --dport 9 -j DROP || return 1
	vm_start
}

# Start the VM process behind $TAP (also after a test deleted it).
vm_start() {
	VM_CTL=$(mktemp -u "/tmp/tft$TF_ID-vmctl.XXXXXX")
	VM_LOG=$(mktemp "/tmp/tft$TF_ID-vmlog.XXXXXX")
	mkfifo "$VM_CTL" || return 1
	tf_on_exit "rm -f $VM_CTL $VM_LOG"
	VM_N=0
	# ip netns exec execs python3 in place: $! is the VM process.
	ip netns exec "$NSH" python3 "$TFNET" vm $TAP $MAC_VM $IP_VM "$VM_CTL" "$VM_LOG" \
		</dev/null >>"$VM_LOG" 2>&1 &
	VM_PID=$!
	tf_on_exit "kill_job $VM_PID"
	wait_for 5 grep -q '^ready' "$VM_LOG" || { tf_diag "VM did not start: $(cat "$VM_LOG")"; return 1; }
	# Carrier on, port forwarding: the tap is usable.
	wait_for 5 sh -c "ip -n $NSH -j link show $TAP | jq -e '.[0].operstate == \"UP\"' >/dev/null"
}

# vm_cmd CMD...: run a VM command, print its answer line, fail if none in 10 s.
# The id is unique also when called in a subshell ($(vm_stats)).
vm_cmd() {
	local id
	VM_N=$((VM_N + 1))
	id="$BASHPID.$VM_N.$(date +%s%N)"
	echo "$id $*" >"$VM_CTL"
	wait_for 10 grep -q "^done $id " "$VM_LOG" || return 1
	grep "^done $id " "$VM_LOG"
}

# vm_send N SIZE: the VM sends N UDP frames of SIZE bytes to the peer.
vm_send() { vm_cmd send "$1" "$2" $MAC_PEER $IP_PEER >/dev/null; }

# vm_stats: "rx_frames rx_bytes tx_frames tx_bytes echo_replies unexpected".
vm_stats() { vm_cmd stats | cut -d' ' -f4-; }

# ping_from NS DST COUNT PAYLOAD: COUNT echo round trips (each 42+PAYLOAD bytes).
ping_from() {
	local out
	out=$(ip netns exec "$1" python3 "$TFNET" ping "$2" "$3" "$4")
	[ "$out" == "$3/$3" ] || { tf_diag "ping $2 from $1: $out"; return 1; }
}

# wait_for SEC CMD...: poll CMD every 50 ms until it succeeds or SEC passed.
wait_for() {
	local end=$((SECONDS + $1)); shift
	until "$@" 2>/dev/null; do
		[ $SECONDS -ge $end ] && return 1
		sleep 0.05
	done
}

# bg_start VAR LOG CMD...: a helper process until the end (or kill_job), its
# pid in VAR; waits until LOG says "ready" (the tf*.py helpers) or
# "listening on" (tcpdump).
bg_start() {
	local var=$1 log=$2 pid
	shift 2
	"$@" </dev/null >"$log" 2>&1 &
	pid=$!
	tf_on_exit "kill_job $pid"
	printf -v "$var" '%s' "$pid"
	wait_for 5 grep -qE '^ready|listening on' "$log" || { tf_diag "$*: $(cat "$log")"; return 1; }
}

# kstats NS DEV: the kernel's own counters, "rx_packets rx_bytes tx_packets tx_bytes".
kstats() {
	ip -n "$1" -s -j link show dev "$2" |
		jq -r '.[0].stats64 | "\(.rx.packets) \(.rx.bytes) \(.tx.packets) \(.tx.bytes)"'
}

# kdelta BEFORE AFTER: field-wise difference of two kstats lines.
kdelta() {
	local -a b=($1) a=($2)
	echo "$((a[0] - b[0])) $((a[1] - b[1])) $((a[2] - b[2])) $((a[3] - b[3]))"
}

# final_of FILE IFNAME: tapflow's final stats record for IFNAME,
# "rx_packets rx_bytes tx_packets tx_bytes rx_segs tx_segs".
final_of() {
	jq -r --arg i "$2" 'select(.type == "stats" and .final and .ifname == $i) |
		"\(.rx_packets) \(.rx_bytes) \(.tx_packets) \(.tx_bytes) \(.rx_segs) \(.tx_segs)"' "$1"
}

# hooks_of NS DEV: every tapflow hook on DEV, one per line:
# "tcx ingress tf_ingress", "clsact egress tf_egress", ...
hooks_of() {
	local d
	ip netns exec "$1" python3 "$TFNET" tcx "$2" | awk '$3 ~ /^tf_/ { print "tcx", $1, $3 }'
	for d in ingress egress; do
		tc -n "$1" -j filter show dev "$2" $d 2>/dev/null |
			jq -r --arg d $d '.[]? | select(.kind == "bpf") | .options |
				select((.bpf_name // .prog.name // "") | test("^tf_")) |
				"clsact \($d) \(.prog.name // .bpf_name)"'
	done
}

# n_tcx NS DEV: how many TCX programs (anyone's) are on DEV.
n_tcx() { ip netns exec "$1" python3 "$TFNET" tcx "$2" | wc -l; }

# has_clsact NS DEV: true if DEV has a clsact qdisc.
has_clsact() { tc -n "$1" -j qdisc show dev "$2" | jq -e 'any(.[]; .kind == "clsact")' >/dev/null; }

# wait_attached PID N [SEC]: tapflow PID has recorded N hooks (two "+" records
# each) within SEC seconds (default 10).
wait_attached() {
	wait_for "${3:-10}" sh -c "[ \$(grep -c '^+ ' /run/tapflow/hooks.$1) -eq $((2 * $2)) ]"
}

# assert_clean NAME NS PID DEV...: nothing of tapflow PID is left.
assert_clean() {
	local name=$1 ns=$2 pid=$3 dev left=""
	shift 3
	for dev in "$@"; do
		left+=$(hooks_of "$ns" "$dev" | sed "s/^/$dev: /")
		[ "$(n_tcx "$ns" "$dev")" -eq 0 ] || left+=" $dev: TCX programs: $(ip netns exec "$ns" python3 "$TFNET" tcx "$dev")"
	done
	[ -e "/run/tapflow/hooks.$pid" ] && left+=" /run/tapflow/hooks.$pid"
	if [ -z "$left" ]; then tf_ok "$name"; else tf_fail "$name" "left behind: $left"; fi
}

# netns_test_begin NAME SUFFIX TOOL...: the preamble every namespace test
# shares: root and the tools needed (else skip), a kernel with TCX (else
# skip: tapflow's default mode and its SIGKILL guarantee) and an output
# dir $OUT.
netns_test_begin() {
	local name=$1 suffix=$2
	shift 2
	tf_need_root "$name"
	tf_need_tools "$name" "$@"
	# Query lo of a throwaway namespace: exit code 3 = no TCX (before 6.6).
	ip netns add "tft$TF_ID-probe" && tf_on_exit "ip netns del tft$TF_ID-probe"
	ip netns exec "tft$TF_ID-probe" python3 "$TFNET" tcx lo >/dev/null
	case $? in
	0) ;;
	3) tf_skip "$name" "kernel without TCX (BPF_TCX_INGRESS): needs 6.6+"; exit 0 ;;
	*) tf_fail "TCX probe" "python3 tfnet.py tcx failed"; tf_finish ;;
	esac
	ip netns del "tft$TF_ID-probe"

	OUT=$(mktemp -d "/tmp/tft$TF_ID-$suffix.XXXXXX")
	tf_on_exit "rm -rf $OUT"
}

# topo_test_begin NAME SUFFIX TOOL...: netns_test_begin, then the
# topology (topo_up SUFFIX) and IFACES for --iface.
topo_test_begin() {
	netns_test_begin "$@"
	topo_up "$2" || { tf_fail "topology" "cannot build the test topology"; tf_finish; }
	tf_ok "topology: bridge, tap with a VM process, veth to a peer namespace"
	IFACES=(--iface "$TAP" --iface "$BR" --iface "$VH")
}

# tf_start NAME ARGS...: tapflow in the background, in $NSH through
# --netns; output in $OUT/NAME.{out,err}, pid in TF_PID.
tf_start() {
	local name=$1; shift
	"$TAPFLOW" --netns "$NSH" --no-libvirt "$@" >"$OUT/$name.out" 2>"$OUT/$name.err" &
	TF_PID=$!
	tf_on_exit "kill_job $TF_PID"
}

# tf_stop PID SIG: signal tapflow, wait for it; its exit code in RC.
tf_stop() {
	kill -"$2" "$1"
	wait "$1" 2>/dev/null
	RC=$?
}
