#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# tapflow capture: sampled frames to pcapng, on a router built of
# test namespaces, with scripted traffic of known frames and tshark as the
# reference reader:
#
#   $NSV "VM" eth0 10.210.0.2 ---- vport --+ br0 10.210.0.1    $NSR, the "host":
#                                                             ip_forward (routed)
#                                            up0 10.211.0.1 ====== eth0 10.211.0.2 $NSI
#                                                                  ("internet": UDP echo
#                                                                   on 7 and 8, drops 9)
#
# tapflow runs in $NSR with --no-libvirt --iface vport --iface br0 --uplink
# up0: vport stands for a VM's tap. Routed, not NATed, so that a flow has
# the same addresses and ports on every interface (--flow is matched on each
# interface's own frames). Static neighbours, no IPv6, no STP, MTU 9000:
# the only frames are the scripted ones, so every count is exact. A frame of
# a UDP payload of P bytes is 42 + P bytes; payloads carry a sequence
# number and the sender's CLOCK_REALTIME (tests/netns/tfcap.py).
#
# Directions (epb_flags): --iface and uplink interfaces in their own view,
# TC ingress = inbound: on vport and br0 the VM's frames are inbound, the
# frames for it outbound; on up0 the other way round. What needs libvirt (a
# VM's tap in the VM's view, "VM x (mac)" and bridge descriptions, --vm) is
# not covered here.
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/topo.sh"
TFCAP="$TOPO_DIR/tfcap.py"
TFNAT="$TOPO_DIR/tfnat.py"
NAME="netns capture"

netns_test_begin "$NAME" cap jq python3 iptables tshark unshare

IP_V=10.210.0.2 IP_GW=10.210.0.1 IP_UP=10.211.0.1 IP_IN=10.211.0.2
MAC_BR=02:30:00:00:00:01 MAC_V=02:30:00:00:00:02 MAC_UP=02:31:00:00:00:01 MAC_IN=02:31:00:00:00:02

topo_cap() {
	tf_netns NSR rt && tf_netns NSV vm && tf_netns NSI in || return 1
	for ns in $NSR $NSV $NSI; do quiet_netns $ns || return 1; done
	ip -n $NSR link add br0 address $MAC_BR mtu 9000 type bridge stp_state 0 mcast_snooping 0 &&
	ip -n $NSR link add vport mtu 9000 type veth peer name eth0 netns $NSV address $MAC_V \
		mtu 9000 &&
	ip -n $NSR link add up0 address $MAC_UP mtu 9000 type veth peer name eth0 netns $NSI \
		address $MAC_IN mtu 9000 || return 1
	ip -n $NSR link set vport master br0 up && ip -n $NSR link set br0 up &&
	ip -n $NSR link set up0 up && ip -n $NSR addr add $IP_GW/24 dev br0 &&
	ip -n $NSR addr add $IP_UP/24 dev up0 || return 1
	ip -n $NSV link set eth0 up && ip -n $NSV addr add $IP_V/24 dev eth0 &&
	ip -n $NSV route add default via $IP_GW || return 1
	ip -n $NSI link set eth0 up && ip -n $NSI addr add $IP_IN/24 dev eth0 &&
	ip -n $NSI route add 10.210.0.0/24 via $IP_UP || return 1
	ip -n $NSV neigh add $IP_GW lladdr $MAC_BR dev eth0 nud permanent &&
	ip -n $NSR neigh add $IP_V lladdr $MAC_V dev br0 nud permanent &&
	ip -n $NSR neigh add $IP_IN lladdr $MAC_IN dev up0 nud permanent &&
	ip -n $NSI neigh add $IP_UP lladdr $MAC_UP dev eth0 nud permanent &&
	bridge -n $NSR fdb add $MAC_V dev vport master static || return 1
	nsq $NSR sysctl -qw net.ipv4.ip_forward=1 &&
	# Port 9 is the sink of one-way traffic: dropped without an ICMP error.
	nsq $NSI iptables -A INPUT -p udp --dport 9 -j DROP
}
topo_cap || { tf_fail "topology" "cannot build the router topology"; tf_finish; }
tf_ok "topology: VM namespace on a bridge port, routing host, internet namespace"

log=$OUT/echo.log
ip netns exec $NSI python3 "$TFNAT" udp-echo 4 7 8 >"$log" 2>&1 </dev/null &
tf_on_exit "kill_job $!"
wait_for 5 grep -q '^ready' "$log" || { tf_fail "UDP echo server" "$(cat "$log")"; tf_finish; }

TRACE=(--no-libvirt --iface vport --iface br0 --uplink up0)
DEVS=(vport br0 up0)

# cap_start NAME ARGS...: tapflow ARGS in $NSR, output in $OUT/NAME.{out,err}, pid in TF_PID.
cap_start() {
	local name=$1; shift
	"$TAPFLOW" --netns "$NSR" "${TRACE[@]}" "$@" >"$OUT/$name.out" 2>"$OUT/$name.err" &
	TF_PID=$!
	tf_on_exit "kill_job $TF_PID"
}
# cap_wait PID NAME: all 6 hooks of tapflow PID are in place (generous: a
# loaded machine, several ASan instances starting at once).
cap_wait() {
	local end=$((SECONDS + 30))
	until [ "$(grep -c '^+ ' /run/tapflow/hooks.$1 2>/dev/null)" == 6 ]; do
		if ! kill -0 "$1" 2>/dev/null || [ $SECONDS -ge $end ]; then
			tf_diag "$2: not attached: $(head -c 300 "$OUT/$2.err" 2>/dev/null)"
			return 1
		fi
		sleep 0.05
	done
}

# VM-side traffic.
vm_echo() { ip netns exec $NSV python3 "$TFCAP" echo $IP_V "$1" $IP_IN "$2" "$3"; }
vm_blast() { ip netns exec $NSV python3 "$TFCAP" blast $IP_V "$1" $IP_IN 9 "$2" "$3" ${4:-}; }
# traffic NAME EXPECTED CMD...: a scripted exchange; its last line must be EXPECTED.
traffic() {
	local name=$1 want=$2 got
	shift 2
	got=$("$@" | tail -n1)
	tf_eq "traffic: $name" "$want" "$got"
}

# tsv NAME FILE: tshark reads FILE whole (exit 0, nothing on stderr but its
# "running as root" notice); its fields, tab-separated, in $OUT/NAME.tsv:
#  1 interface name, 2 description, 3 direction, 4 frame.len, 5 frame.cap_len,
#  6 time, 7 ip.proto, 8 ip.src, 9 ip.dst, 10-11 udp ports, 12-13 tcp ports
TSF=(-e frame.interface_name -e frame.interface_description -e frame.packet_flags_direction
	-e frame.len -e frame.cap_len -e frame.time_epoch -e ip.proto -e ip.src -e ip.dst
	-e udp.srcport -e udp.dstport -e tcp.srcport -e tcp.dstport)
tsv() {
	local rc
	tshark -n -r "$2" -T fields -E separator=/t -E occurrence=f "${TSF[@]}" \
		>"$OUT/$1.tsv" 2>"$OUT/$1.tsh"
	rc=$?
	sed -i '/^Running as user "root"/d' "$OUT/$1.tsh"
	if [ $rc -eq 0 ] && [ ! -s "$OUT/$1.tsh" ]; then
		tf_ok "$1: tshark reads the file ($(wc -l <"$OUT/$1.tsv") frames)"
	else
		tf_fail "$1: tshark reads the file" "exit $rc: $(head -c 400 "$OUT/$1.tsh")"
	fi
}

# tally TSV: "IFACE DIR PROTO SRC:PORT>DST:PORT COUNT" lines, sorted.
tally() {
	awk -F'\t' '{
		d = $3 == "0x00000001" ? "in" : $3 == "0x00000002" ? "out" : "dir" $3
		p = $7 == 17 ? "udp" : $7 == 6 ? "tcp" : $7 == 1 ? "icmp" : "proto" $7
		print $1, d, p, $8 ":" $10 $12 ">" $9 ":" $11 $13 }' "$1" |
		LC_ALL=C sort | uniq -c | awk '{ print $2, $3, $4, $5, $1 }' | LC_ALL=C sort
}
# want_flow FLOW N ONE_WAY: what each interface should see of FLOW
# ("udp 10.210.0.2:40000>10.211.0.2:7", the VM's frames), N frames each way
# (the answers reversed), unless ONE_WAY.
want_flow() {
	local p=${1%% *} f=${1#* } back
	back="${f#*>}>${f%%>*}"
	printf '%s\n' "vport in $p $f $2" "br0 in $p $f $2" "up0 out $p $f $2"
	[ -n "${3:-}" ] ||
		printf '%s\n' "vport out $p $back $2" "br0 out $p $back $2" "up0 in $p $back $2"
}
sorted() { LC_ALL=C sort; }
# kill_tapflow PID: SIGKILL PID if it is (still) a tapflow process.
kill_tapflow() { [ -n "$1" ] && grep -q '^tapflow' "/proc/$1/comm" 2>/dev/null && kill -9 "$1"; }
# count_of TSV IFACE: frames of IFACE.
count_of() { awk -F'\t' -v i="$2" '$1 == i' "$1" | wc -l; }

# pcap FILE: tfcap.py's strict parse of FILE (JSON) in FILE.json; ok/error.
pcap() {
	python3 "$TFCAP" pcapng "$1" >"$1.json"
	jq -r 'if .ok then "ok" else "error: \(.error)" end' "$1.json"
}
# pj FILE EXPR: jq EXPR on the parse of FILE.
pj() { jq -r "$2" "$1.json"; }

# report_line FILE IFNAME: "packets sampled lost" of the human report.
report_line() {
	awk -v i="$2" '$2 == i && $5 == "packets," { print $4, $6, $8 }' "$1"
}
# cap_rec FILE IFNAME: "vm role ifid packets samples lost" of the JSON record.
cap_rec() {
	jq -r --arg i "$2" 'select(.type == "capture" and .ifname == $i) |
		"\(.vm) \(.role) \(.ifid) \(.packets) \(.samples) \(.lost)"' "$1"
}
# cap_stop PID: SIGINT tapflow PID unless it has exited; its exit code in RC.
cap_stop() {
	kill -0 "$1" 2>/dev/null && kill -INT "$1"
	wait "$1" 2>/dev/null
	RC=$?
}
no_stderr() {
	if [ -s "$2" ]; then tf_fail "$1: nothing on stderr" "$(head -c 400 "$2")"
	else tf_ok "$1: nothing on stderr"; fi
}

# =============================================================================
# 1. Everything, whole frames: counts, names, directions, lengths, times
# =============================================================================
# A concurrent `tapflow stats` and the kernel's link counters over the same
# window say what each interface carried.
cap_start main capture -w "$OUT/main.pcapng"
MAIN=$TF_PID
cap_start main_stats --json stats
STATS=$TF_PID
cap_wait $MAIN main
cap_wait $STATS main_stats
declare -A K0
for d in "${DEVS[@]}"; do K0[$d]=$(kstats $NSR $d); done

# Exchange A: 40000 <-> 7, every payload size class: tiny frames of every
# length mod 4 (EPB padding), around 1500, jumbo (9014 B frames).
SIZES_A=16,17,18,19,20,21,22,23,64,100,555,1000,1458,1472,1473,2000,4001,6000,8000,8970,8971,8972
N_A=$(echo $SIZES_A | tr ',' '\n' | wc -l)
vm_echo 40000 7 $SIZES_A >"$OUT/main_x.log"
tf_eq "traffic: exchange A, $N_A echoes" "$N_A/$N_A" "$(tail -n1 "$OUT/main_x.log")"
# One UDP GSO skb of 4 x 4000 B (16042 B: more than the 9216 B snaplen).
ip netns exec $NSV python3 "$TFCAP" gso $IP_V 40099 $IP_IN 9 4 4000
# 50 one-way frames of 142 B.
traffic "50 frames to the sink" 50 vm_blast 40001 50 100

declare -A KD
for d in "${DEVS[@]}"; do
	read -r rxp _ txp _ < <(kdelta "${K0[$d]}" "$(kstats $NSR $d)")
	KD[$d]=$((rxp + txp))
done
tf_stop $MAIN INT
tf_eq "main: exit code" 0 "$RC"
tf_stop $STATS INT
tf_eq "main: stats exit code" 0 "$RC"
no_stderr "main" "$OUT/main.err"
F=$OUT/main.pcapng
tsv main "$F"
tf_eq "main: strict parse of the file" ok "$(pcap "$F")"

# --- the section and the interfaces ---
tf_eq "main: SHB: pcapng 1.0, application 'tapflow capture', section length unknown (-1)" \
	"1.0 tapflow capture -1" "$(pj "$F" '.shb | "\(.version) \(.userappl) \(.section_len)"')"
tf_check "main: SHB comment says 1-in-1 sampling, snaplen 9216 ($(pj "$F" .shb.comment))" \
	eval "pj '$F' .shb.comment | grep -q '1-in-1 .*snaplen 9216'"
tf_eq "main: one IDB per interface, in some order" "br0 up0 vport" \
	"$(pj "$F" '[.ifaces[].name] | sort | join(" ")')"
tf_eq "main: IDBs: Ethernet, snaplen 9216, ns timestamps (if_tsresol 9), sampling comment" \
	"1 9216 9 true" "$(pj "$F" '[.ifaces[] | "\(.linktype) \(.snaplen) \(.tsresol) \(.comment |
		test("1-in-1 .*snaplen 9216"))"] | unique | join(",")')"
tf_eq "main: interface names and descriptions (tshark)" \
	"br0=interface br0|up0=uplink up0 (NAT/routed traffic of the VMs)|vport=interface vport" \
	"$(cut -f1,2 "$OUT/main.tsv" | tr '\t' '=' | LC_ALL=C sort -u | paste -sd'|')"

# --- every frame, its interface and direction ---
WANT=$( { want_flow "udp $IP_V:40000>$IP_IN:7" $N_A
	want_flow "udp $IP_V:40099>$IP_IN:9" 1 one-way
	want_flow "udp $IP_V:40001>$IP_IN:9" 50 one-way; } | sorted)
tf_eq "main: frames per interface, direction and flow = the scripted ones" \
	"$(echo "$WANT" | paste -sd'|')" "$(tally "$OUT/main.tsv" | paste -sd'|')"
TOTAL=$((2 * N_A + 1 + 50))
for d in "${DEVS[@]}"; do
	id=$(pj "$F" "[.ifaces[].name] | index(\"$d\")")
	tf_eq "main $d: frames in the file = report packets = sampled = ISB ifrecv; lost = ISB ifdrop = 0" \
		"$TOTAL $TOTAL $TOTAL 0 | $TOTAL 0" \
		"$(count_of "$OUT/main.tsv" $d) $(report_line "$OUT/main.out" $d) | $(
		   pj "$F" ".ifaces[$id].isbs | map(\"\(.ifrecv) \(.ifdrop)\") | join(\",\")")"
	tf_eq "main $d: = the concurrent stats run's packets (rx + tx)" "$TOTAL" \
		"$(jq -r --arg i $d 'select(.type == "stats" and .final and .ifname == $i) |
			.rx_packets + .tx_packets' "$OUT/main_stats.out")"
	tf_eq "main $d: = the kernel's link counters (rx + tx)" "$TOTAL" "${KD[$d]}"
	tf_eq "main $d: frame timestamps inside the ISB's [starttime, endtime]" "true" \
		"$(pj "$F" "[.epbs[] | select(.[0] == $id) | .[1]] as \$t | .ifaces[$id].isbs[0] |
			(\$t | min) >= .start and (\$t | max) <= .end and .start < .end")"
done
tf_eq "main: summary line" "capture: $((3 * TOTAL)) frames written, $((3 * TOTAL)) sampled, 0 lost (ring buffer full)" \
	"$(grep '^capture: ' "$OUT/main.out")"

# --- lengths: whole frames, up to the 9216 B snaplen ---
want_len() {
	local d
	for d in "vport in" "br0 in" "up0 out" "vport out" "br0 out" "up0 in"; do
		echo $SIZES_A | tr ',' '\n' | awk -v d="$d" '{ print d, 42 + $1, 42 + $1 }'
	done | sorted
}
tf_eq "main: exchange A: frame.len = cap_len = 42 + payload, every frame both ways" \
	"$(want_len | md5sum)" "$(awk -F'\t' '$10 == 40000 || $11 == 40000 {
		print $1, ($3 == "0x00000001" ? "in" : "out"), $4, $5 }' "$OUT/main.tsv" | sorted | md5sum)"
tf_eq "main: the GSO skb: frame.len 16042 (skb->len), cap_len 9216, on each interface" \
	"9216 16042 9216 16042 9216 16042" \
	"$(awk -F'\t' '$10 == 40099 { print $5, $4 }' "$OUT/main.tsv" | paste -sd' ')"
tf_eq "main: every frame but the GSO skb whole (cap_len = frame.len)" "" \
	"$(awk -F'\t' '$10 != 40099 && $4 != $5' "$OUT/main.tsv" | head -3)"

# --- wall-clock timestamps ---
# Each exchange's frames crossed the host after the sender read CLOCK_REALTIME
# (T0, in the payload) and before it had read the echo (T1): whatever the
# load, the six frames of an exchange (request and echo on three interfaces)
# lie in [T0, T1].
# tapflow converts bpf_ktime_get_ns (CLOCK_MONOTONIC) with an offset that is
# good to well under a microsecond; 1 ms is the tolerance. Nothing bounds how
# fast the host is: a slow exchange only widens its window.
read -r n out before after width < <(python3 "$TFCAP" times "$F" "$OUT/main_x.log" 40000)
tf_diag "timestamps: $n frames; most before T0: ${before} ns, most after T1: ${after} ns (0: none); median T1 - T0: ${width} ns"
tf_eq "main: every exchange-A frame's timestamp in [T0 - 1 ms, T1 + 1 ms] of its exchange" \
	"$((6 * N_A)) 0" "$n $out"
[ "$out" == 0 ] || python3 "$TFCAP" times "$F" "$OUT/main_x.log" 40000 | tail -n +2 | sed 's/^/# /'
tf_eq "main: tshark's frame.time_epoch = the EPB timestamp (ns resolution, first 3 frames)" \
	"$(pj "$F" '.epbs[:3] | map(.[1]) | join(" ")')" \
	"$(head -3 "$OUT/main.tsv" | cut -f6 | paste -sd' ')"

tf_diag "(${SECONDS} s)"
# =============================================================================
# 2. --snaplen 64 (JSON report), -w - into tshark, and --flow: six
#    concurrent instances over the same traffic
# =============================================================================
cap_start snap --json capture --snaplen 64 -w "$OUT/snap.pcapng"
SNAP=$TF_PID
mkfifo "$OUT/pipe.fifo"
tshark -n -r - -T fields -E separator=/t -E occurrence=f "${TSF[@]}" \
	<"$OUT/pipe.fifo" >"$OUT/pipe.tsv" 2>"$OUT/pipe.tsh" &
PIPE_TSH=$!
tf_on_exit "kill_job $PIPE_TSH"
"$TAPFLOW" --netns "$NSR" "${TRACE[@]}" capture -w - >"$OUT/pipe.fifo" 2>"$OUT/pipe.err" &
PIPE=$!
tf_on_exit "kill_job $PIPE"
# f1 names the flow the other way round (the internet side first).
declare -A FLOW=(
	[f1]="udp $IP_IN:7 $IP_V:40000"
	[f2]="icmp"
	[f3]="tcp *:80"
	[f4]="udp $IP_IN:7"
)
declare -A FPID
for f in "${!FLOW[@]}"; do
	cap_start $f capture --flow "${FLOW[$f]}" -w "$OUT/$f.pcapng"
	FPID[$f]=$TF_PID
done
for f in snap pipe "${!FLOW[@]}"; do
	case $f in snap) p=$SNAP ;; pipe) p=$PIPE ;; *) p=${FPID[$f]} ;; esac
	cap_wait $p $f
done

SIZES_S=16,17,18,19,20,21,22,23,24,100,1400,8000
N_S=$(echo $SIZES_S | tr ',' '\n' | wc -l)
traffic "A: 40000 <-> 7, $N_S echoes" "$N_S/$N_S" vm_echo 40000 7 $SIZES_S
traffic "B: 40001 <-> 7, 4 echoes" 4/4 vm_echo 40001 7 100,100,100,100
traffic "C: 40000 <-> 8, 3 echoes" 3/3 vm_echo 40000 8 100,100,100
traffic "D: 40000 -> 9, 20 frames" 20 vm_blast 40000 20 100
traffic "ICMP: 3 pings" 3/3 ip netns exec $NSV python3 "$TFNET" ping $IP_IN 3 56
# TCP: a SYN to a closed port, answered by a RST.
traffic "TCP: SYN to port 80, RST back" refused ip netns exec $NSV python3 -c "
import socket; s = socket.socket(); s.bind(('$IP_V', 40500))
try: s.connect(('$IP_IN', 80)); print('connected')
except ConnectionRefusedError: print('refused')"

declare -A FRC
for f in snap "${!FLOW[@]}"; do
	case $f in snap) p=$SNAP ;; *) p=${FPID[$f]} ;; esac
	cap_stop $p
	FRC[$f]=$RC
done
tf_eq "snap: exit code" 0 "${FRC[snap]}"
tf_stop $PIPE INT
tf_eq "pipe: exit code" 0 "$RC"
wait $PIPE_TSH
rc=$?
tf_eq "pipe: tshark -r - exit code" 0 "$rc"
sed -i '/^Running as user "root"/d' "$OUT/pipe.tsh"
tf_eq "pipe: tshark -r - said nothing on stderr" "" "$(head -c 300 "$OUT/pipe.tsh")"

ICMP_A=$(want_flow "icmp $IP_V:>$IP_IN:" 3)
TCP_A=$(printf '%s\n' "vport in tcp $IP_V:40500>$IP_IN:80 1" "br0 in tcp $IP_V:40500>$IP_IN:80 1" \
	"up0 out tcp $IP_V:40500>$IP_IN:80 1" "vport out tcp $IP_IN:80>$IP_V:40500 1" \
	"br0 out tcp $IP_IN:80>$IP_V:40500 1" "up0 in tcp $IP_IN:80>$IP_V:40500 1")
FA=$(want_flow "udp $IP_V:40000>$IP_IN:7" $N_S)
FB=$(want_flow "udp $IP_V:40001>$IP_IN:7" 4)
WANT2=$( { echo "$FA"; echo "$FB"; want_flow "udp $IP_V:40000>$IP_IN:8" 3
	want_flow "udp $IP_V:40000>$IP_IN:9" 20 one-way; echo "$ICMP_A"; echo "$TCP_A"; } | sorted)
TOTAL2=$((2 * N_S + 8 + 6 + 20 + 6 + 2))

# --- -w - | tshark -r - ---
tf_eq "pipe: every frame, its interface, direction and flow, through the pipe" \
	"$(echo "$WANT2" | paste -sd'|')" "$(tally "$OUT/pipe.tsv" | paste -sd'|')"
tf_eq "pipe: the report went to stderr" "capture: $((3 * TOTAL2)) frames written, $((3 * TOTAL2)) sampled, 0 lost (ring buffer full)" \
	"$(grep '^capture: ' "$OUT/pipe.err")"
tf_eq "pipe: nothing else on stderr" "" "$(grep -v '^capture: \| packets, ' "$OUT/pipe.err" | head -3)"

# --- --snaplen 64 ---
S=$OUT/snap.pcapng
tsv snap "$S"
tf_eq "snap: strict parse of the file" ok "$(pcap "$S")"
tf_eq "snap: IDBs: snaplen 64, the comments say so" "64 true true" \
	"$(pj "$S" '[.ifaces[] | "\(.snaplen) \(.comment | test("snaplen 64"))"] | unique |
		join(",")') $(pj "$S" '.shb.comment | test("snaplen 64")')"
tf_eq "snap: the same frames as the whole-frame run" "$(tally "$OUT/pipe.tsv" | md5sum)" \
	"$(tally "$OUT/snap.tsv" | md5sum)"
tf_eq "snap: every frame: cap_len = min(frame.len, 64)" "" \
	"$(awk -F'\t' '$5 != ($4 < 64 ? $4 : 64)' "$OUT/snap.tsv" | head -3)"
tf_eq "snap: frame.len = the real size (exchange A: 42 + payload, both ways, each interface)" \
	"$(for d in "vport in" "br0 in" "up0 out" "vport out" "br0 out" "up0 in"; do
		echo $SIZES_S | tr ',' '\n' | awk -v d="$d" '{ print d, 42 + $1 }'; done | sorted | md5sum)" \
	"$(awk -F'\t' '$8 == "'$IP_V'" && $10 == 40000 && $11 == 7 || $9 == "'$IP_V'" && $10 == 7 && $11 == 40000 {
		print $1, ($3 == "0x00000001" ? "in" : "out"), $4 }' "$OUT/snap.tsv" | sorted | md5sum)"
tf_eq "snap: UDP frames shorter than the snaplen are whole (58-63 B: 6 sizes, 6 each)" 36 \
	"$(awk -F'\t' '$7 == 17 && $4 < 64 && $4 == $5' "$OUT/snap.tsv" | wc -l)"
no_stderr "snap" "$OUT/snap.err"
tf_eq "snap: stdout is JSON lines only" "" "$(jq -c . "$OUT/snap.out" 2>&1 >/dev/null | head -2)"
for d in "${DEVS[@]}"; do
	id=$(pj "$S" "[.ifaces[].name] | index(\"$d\")")
	role=iface; [ $d == up0 ] && role=uplink
	tf_eq "snap $d: capture record: vm null, role, ifid = its IDB, packets = samples = frames, lost 0" \
		"null $role $id $TOTAL2 $TOTAL2 0" "$(cap_rec "$OUT/snap.out" $d)"
done
tf_eq "snap: a summary record last" summary "$(tail -n1 "$OUT/snap.out" | jq -r .type)"

# --- --flow ---
declare -A FWANT=(
	[f1]="$FA" [f2]="$ICMP_A" [f3]="$TCP_A" [f4]="$FA
$FB"
)
for f in "${!FLOW[@]}"; do
	if [ "${FRC[$f]}" != 0 ]; then
		tf_fail "$f: --flow '${FLOW[$f]}': exit code 0 (tapflow bug: with --flow the BPF object does not load)" \
			"exit ${FRC[$f]}: $(head -c 300 "$OUT/$f.err")"
		continue
	fi
	tf_ok "$f: --flow '${FLOW[$f]}': exit code 0"
	tsv $f "$OUT/$f.pcapng"
	tf_eq "$f: strict parse of the file" ok "$(pcap "$OUT/$f.pcapng")"
	tf_eq "$f: the SHB comment names the flow" true \
		"$(pj "$OUT/$f.pcapng" "(.shb.comment // \"\") | endswith(\", flow ${FLOW[$f]}\")")"
	no_stderr "$f" "$OUT/$f.err"
	tf_eq "$f: --flow '${FLOW[$f]}' keeps that flow's frames, both ways, and nothing else" \
		"$(echo "${FWANT[$f]}" | sorted | paste -sd'|')" "$(tally "$OUT/$f.tsv" | paste -sd'|')"
	for d in "${DEVS[@]}"; do
		n=$(count_of "$OUT/$f.tsv" $d)
		tf_eq "$f $d: report: packets = all frames, sampled = frames in the file, lost 0" \
			"$TOTAL2 $n 0" "$(report_line "$OUT/$f.out" $d)"
	done
done

tf_diag "(${SECONDS} s)"
# =============================================================================
# 3. --sample 10 over 10000 frames
# =============================================================================
# Each interface keeps every frame independently with p = 1/10: its count is
# Binomial(10000, 0.1), mean 1000, sigma 30. Bounds of mean +- 5 sigma
# ([850, 1150]) are exceeded by a correct sampler with probability ~6e-7 per
# interface (normal approximation, good at n p = 1000), so the test does not
# flake; a sampler that keeps all, none, 1 in 100, 1 in 5, one hook only or
# a rate 15 % off falls outside. (Telling 1 in 9 from 1 in 10 would take
# ~70 000 frames.) Not a timing assertion: the count does not depend on speed.
N_SMP=10000
cap_start sample --json capture --sample 10 -w "$OUT/sample.pcapng"
SAMPLE=$TF_PID
cap_wait $SAMPLE sample
traffic "$N_SMP frames to the sink" $N_SMP vm_blast 40002 $N_SMP 22 10000
tf_stop $SAMPLE INT
tf_eq "sample: exit code" 0 "$RC"
no_stderr "sample" "$OUT/sample.err"
P=$OUT/sample.pcapng
tsv sample "$P"
tf_eq "sample: strict parse of the file" ok "$(pcap "$P")"
tf_eq "sample: the SHB and IDB comments say 1-in-10" "true true" \
	"$(pj "$P" '(.shb.comment | test("1-in-10 ")), ([.ifaces[].comment | test("1-in-10 ")] | all)' |
		paste -sd' ')"
lo=$(awk -v n=$N_SMP 'BEGIN { printf "%d", n * 0.1 - 5 * sqrt(n * 0.09) + 0.999 }')
hi=$(awk -v n=$N_SMP 'BEGIN { printf "%d", n * 0.1 + 5 * sqrt(n * 0.09) }')
sum=0
for d in "${DEVS[@]}"; do
	id=$(pj "$P" "[.ifaces[].name] | index(\"$d\")")
	n=$(count_of "$OUT/sample.tsv" $d)
	sum=$((sum + n))
	tf_check "sample $d: $n of $N_SMP frames kept, in [$lo, $hi] (mean +- 5 sigma)" \
		test "$n" -ge "$lo" -a "$n" -le "$hi"
	tf_eq "sample $d: record: packets $N_SMP, samples = frames in the file, lost 0; ISB ifrecv, ifdrop" \
		"$N_SMP $n 0 | $N_SMP 0" "$(cap_rec "$OUT/sample.out" $d | cut -d' ' -f4-) | $(
		   pj "$P" ".ifaces[$id].isbs[0] | \"\(.ifrecv) \(.ifdrop)\"")"
	tf_eq "sample $d: every kept frame is a distinct one of the $N_SMP sent" "$n" \
		"$(pj "$P" "[.epbs[] | select(.[0] == $id and .[6] == 40002 and .[5] < $N_SMP) | .[5]] |
			unique | length")"
done
lo3=$(awk -v n=$((3 * N_SMP)) 'BEGIN { printf "%d", n * 0.1 - 5 * sqrt(n * 0.09) + 0.999 }')
hi3=$(awk -v n=$((3 * N_SMP)) 'BEGIN { printf "%d", n * 0.1 + 5 * sqrt(n * 0.09) }')
tf_check "sample: $sum of $((3 * N_SMP)) kept on the three, in [$lo3, $hi3]" \
	test "$sum" -ge "$lo3" -a "$sum" -le "$hi3"
tf_diag "sample: frames kept on both vport and up0: $(pj "$P" '
	([.ifaces[].name] | index("vport")) as $a | ([.ifaces[].name] | index("up0")) as $b |
	[.epbs[] | select(.[0] == $a) | .[5]] as $x | [.epbs[] | select(.[0] == $b) | .[5]] as $y |
	($x - ($x - $y)) | length') (independent sampling: about $((N_SMP / 100)))"

tf_diag "(${SECONDS} s)"
# =============================================================================
# 4. The ring buffer overflows: --buffer 4 (4 KiB) and nobody reading it
# =============================================================================
# tapflow is stopped (SIGSTOP) while 300 frames of 1442 B cross the three
# interfaces: 4 KiB hold two of them, every other sample is lost. Every
# frame is either in the file or counted lost, per interface.
N_OV=300
cap_start ovf capture --buffer 4 -w "$OUT/ovf.pcapng"
OVF=$TF_PID
cap_wait $OVF ovf
kill -STOP $OVF
wait_for 5 sh -c "awk '{ print \$3 }' /proc/$OVF/stat | grep -q T"
traffic "$N_OV frames of 1442 B, tapflow stopped" $N_OV vm_blast 40003 $N_OV 1400 5000
kill -CONT $OVF
sleep 0.3
tf_stop $OVF INT
tf_eq "ovf: exit code" 0 "$RC"
no_stderr "ovf" "$OUT/ovf.err"
O=$OUT/ovf.pcapng
tsv ovf "$O"
tf_eq "ovf: strict parse of the file" ok "$(pcap "$O")"
lost=0 kept=0
for d in "${DEVS[@]}"; do
	id=$(pj "$O" "[.ifaces[].name] | index(\"$d\")")
	read -r p s l < <(report_line "$OUT/ovf.out" $d)
	n=$(count_of "$OUT/ovf.tsv" $d)
	lost=$((lost + ${l:-0})) kept=$((kept + n))
	tf_eq "ovf $d: packets $N_OV = sampled + lost; sampled = frames in the file" \
		"$N_OV $N_OV $n" "$p $((s + l)) $s"
	tf_eq "ovf $d: ISB ifdrop = lost, ifrecv = packets" "$l $N_OV" \
		"$(pj "$O" ".ifaces[$id].isbs[0] | \"\(.ifdrop) \(.ifrecv)\"")"
done
tf_check "ovf: samples were lost ($lost)" test "$lost" -gt 0
tf_check "ovf: at most what 4 KiB hold was kept ($kept frames of 1442 B)" test "$kept" -le 2
tf_eq "ovf: the summary line says so" \
	"capture: $kept frames written, $kept sampled, $lost lost (ring buffer full)" \
	"$(grep '^capture: ' "$OUT/ovf.out")"

# --- 4b. -d 1 and no traffic: the run ends by itself, a file without frames ---
cap_start empty capture -d 1 -w "$OUT/empty.pcapng"
EMPTY=$TF_PID
wait_for 30 sh -c "! kill -0 $EMPTY" ||
	{ tf_fail "empty: -d 1 ends the run" "still running after 30 s"; kill -INT $EMPTY; }
cap_stop $EMPTY
tf_eq "empty: exit code" 0 "$RC"
no_stderr "empty" "$OUT/empty.err"
tsv empty "$OUT/empty.pcapng"
tf_eq "empty: strict parse of the file" ok "$(pcap "$OUT/empty.pcapng")"
tf_eq "empty: 3 IDBs, no EPB, one ISB each: ifrecv 0, ifdrop 0" "3 | 0 1 0 0" \
	"$(pj "$OUT/empty.pcapng" '"\(.ifaces | length) | \([.ifaces[] |
		"\(.epbs) \(.isbs | length) \(.isbs[0].ifrecv) \(.isbs[0].ifdrop)"] | unique | join(","))"')"
tf_eq "empty: the summary line" "capture: 0 frames written, 0 sampled, 0 lost (ring buffer full)" \
	"$(grep '^capture: ' "$OUT/empty.out")"

tf_diag "(${SECONDS} s)"
# =============================================================================
# 5. SIGKILL mid-capture: the file ends at a block boundary
# =============================================================================
ip netns exec $NSV python3 "$TFCAP" blast $IP_V 40004 $IP_IN 9 0 100 1000 >/dev/null 2>&1 &
BLAST=$!
tf_on_exit "kill_job $BLAST"
cap_start kill capture -w "$OUT/kill.pcapng"
KILL=$TF_PID
tf_on_exit "rm -f /run/tapflow/hooks.$KILL"
cap_wait $KILL kill
wait_for 10 sh -c "[ \$(stat -c %s $OUT/kill.pcapng) -gt 20000 ]" ||
	tf_diag "kill: the file did not grow: $(cat "$OUT/kill.err")"
tf_stop $KILL KILL
tf_eq "kill: killed" 137 "$RC"
kill_job $BLAST
tsv kill "$OUT/kill.pcapng"
tf_eq "kill: strict parse of the file (whole blocks only)" ok "$(pcap "$OUT/kill.pcapng")"
tf_check "kill: frames were written before the kill ($(pj "$OUT/kill.pcapng" '.epbs | length'))" \
	test "$(pj "$OUT/kill.pcapng" '.epbs | length')" -gt 50
tf_eq "kill: no TCX program left" "0 0 0" \
	"$(for d in "${DEVS[@]}"; do n_tcx $NSR $d; done | paste -sd' ')"

tf_diag "(${SECONDS} s)"
# =============================================================================
# 6. Disk full: a 64 KiB tmpfs (in a mount namespace of its own)
# =============================================================================
# tapflow stops at the first failed write, cuts the partial block off, says
# so in one line and exits 1; the file holds whole blocks only. The shell in
# the mount namespace copies the file out before the namespace goes.
mkdir "$OUT/full"
unshare -m --propagation private sh -c '
	mount -t tmpfs -o size=64k tftfull "$1" || exit 99
	"$2" --netns "$3" --no-libvirt --iface vport --iface br0 --uplink up0 \
		capture -w "$1/full.pcapng" >"$4/full.out" 2>"$4/full.err" &
	echo $! >"$4/full.pid"
	wait $!
	rc=$?
	cp "$1/full.pcapng" "$4/full.pcapng"
	exit $rc' sh "$OUT/full" "$TAPFLOW" "$NSR" "$OUT" </dev/null &
FULL=$!
tf_on_exit "kill_job $FULL"
wait_for 10 test -s "$OUT/full.pid"
FULL_TF=$(cat "$OUT/full.pid" 2>/dev/null)
# Not a job of this shell: killed at exit only if it still is that tapflow.
tf_on_exit "kill_tapflow $FULL_TF"
cap_wait "$FULL_TF" full
traffic "200 frames of 1442 B" 200 vm_blast 40005 200 1400 5000
# tapflow ends by itself at the write error; if it does not, stop it.
wait_for 15 sh -c "! kill -0 $FULL_TF" ||
	{ tf_fail "full: tapflow stops at the write error" "still running 15 s later"; kill -INT "$FULL_TF"; }
wait $FULL
RC=$?
tf_eq "full: exit code" 1 "$RC"
tf_eq "full: one line on stderr" 1 "$(wc -l <"$OUT/full.err")"
tf_check "full: it says what happened ($(head -n1 "$OUT/full.err"))" \
	grep -q '^tapflow: cannot write .*full.pcapng: No space left on device' "$OUT/full.err"
tsv full "$OUT/full.pcapng"
tf_eq "full: strict parse of the file (whole blocks only)" ok "$(pcap "$OUT/full.pcapng")"
n=$(pj "$OUT/full.pcapng" '.epbs | length')
tf_check "full: the file filled the tmpfs ($(stat -c %s "$OUT/full.pcapng") B, $n frames)" \
	test "$n" -gt 10 -a "$(stat -c %s "$OUT/full.pcapng")" -le 65536
tf_eq "full: the report counts the frames in the file" \
	"capture: $n frames written" "$(grep -o '^capture: [0-9]* frames written' "$OUT/full.out")"

tf_diag "(${SECONDS} s)"
# =============================================================================
# 7. The reader goes away (tshark -c 5): the capture ends, exit 0
# =============================================================================
ip netns exec $NSV python3 "$TFCAP" blast $IP_V 40006 $IP_IN 9 0 100 200 >/dev/null 2>&1 &
BLAST=$!
tf_on_exit "kill_job $BLAST"
mkfifo "$OUT/epipe.fifo"
tshark -n -r - -c 5 -T fields -e frame.interface_name <"$OUT/epipe.fifo" >"$OUT/epipe.tsv" \
	2>/dev/null &
EP_TSH=$!
tf_on_exit "kill_job $EP_TSH"
"$TAPFLOW" --netns "$NSR" "${TRACE[@]}" capture -w - >"$OUT/epipe.fifo" 2>"$OUT/epipe.err" &
EPIPE=$!
tf_on_exit "kill_job $EPIPE"
wait $EP_TSH
rc=$?
tf_eq "epipe: tshark -c 5 read 5 frames" "0 5" "$rc $(wc -l <"$OUT/epipe.tsv")"
wait_for 15 sh -c "! kill -0 $EPIPE" ||
	{ tf_fail "epipe: tapflow ends when the pipe closes" "still running 15 s later"; kill -INT $EPIPE; }
wait $EPIPE
rc=$?
tf_eq "epipe: exit code" 0 "$rc"
kill_job $BLAST
tf_eq "epipe: no error line, the report on stderr" "" \
	"$(grep -v '^capture: \| packets, ' "$OUT/epipe.err" | head -3)"
tf_eq "epipe: no TCX program left" "0 0 0" \
	"$(for d in "${DEVS[@]}"; do n_tcx $NSR $d; done | paste -sd' ')"

tf_diag "(${SECONDS} s)"
# =============================================================================
# 8. Bad input: exit 2 (usage) or 1 (runtime), one "tapflow: " line
# =============================================================================
# bad NAME RC PATTERN ARGS...: tapflow ARGS in $NSR; nothing on stdout,
# $OUT/bad.pcapng not created.
bad() {
	local name=$1 want=$2 pat=$3 rc left=""
	shift 3
	rm -f "$OUT/bad.pcapng"
	"$TAPFLOW" --netns "$NSR" "$@" >"$OUT/bad.out" 2>"$OUT/bad.err" </dev/null &
	local pid=$!
	tf_on_exit "kill_job $pid"
	wait $pid
	rc=$?
	[ -e "$OUT/bad.pcapng" ] && left+=" $OUT/bad.pcapng created"
	[ -s "$OUT/bad.out" ] && left+=" stdout: $(head -c 200 "$OUT/bad.out")"
	if [ "$rc" == "$want" ] && [ "$(wc -l <"$OUT/bad.err")" -eq 1 ] &&
	   grep -qE "^tapflow: .*($pat)" "$OUT/bad.err" && [ -z "$left" ]; then
		tf_ok "bad: $name: exit $want, one line ($(cat "$OUT/bad.err"))"
	else
		tf_fail "bad: $name: exit $want, one line /$pat/, nothing else" \
			"exit $rc, stderr: $(head -c 400 "$OUT/bad.err" | tr '\n' '|')$left"
	fi
}
W=(-w "$OUT/bad.pcapng")
bad "capture without -w" 2 "needs -w" "${TRACE[@]}" capture
bad "-w given to stats" 2 "takes no -w" "${TRACE[@]}" stats -w "$OUT/bad.pcapng"
for v in 0 99999 ""; do
	bad "--snaplen '$v'" 2 "invalid --snaplen" "${TRACE[@]}" capture "${W[@]}" --snaplen "$v"
done
for v in 0 x; do
	bad "--sample '$v'" 2 "invalid --sample" "${TRACE[@]}" capture "${W[@]}" --sample "$v"
done
bad "--buffer 0" 2 "invalid --buffer" "${TRACE[@]}" capture "${W[@]}" --buffer 0
# (The spec parser has unit tests of its own: tests/unit/test_capture.c.)
for spec in "" "foo" "udp 10.0.0.1:65536" "udp 10.0.0.300" "udp 10.0.0.1 fd00::1" \
	"icmp fd00::1" "udp 1.1.1.1 2.2.2.2 3.3.3.3" "udp [fd00::1"; do
	bad "--flow '$spec'" 2 "invalid --flow" "${TRACE[@]}" capture "${W[@]}" --flow "$spec"
done
bad "-w into a missing directory" 1 "cannot write" "${TRACE[@]}" capture \
	-w "$OUT/nodir/x.pcapng"
bad "-w to a directory" 1 "cannot write" "${TRACE[@]}" capture -w "$OUT"
# An error before the capture starts must not clobber an existing file
# (tcpdump opens the interface before the file).
printf 'precious' >"$OUT/old.pcapng"
bad "unknown --iface" 1 "not found" --no-libvirt --iface tfnope0 capture -w "$OUT/old.pcapng"
tf_eq "bad: nothing attached" "0 0 0" "$(for d in "${DEVS[@]}"; do n_tcx $NSR $d; done | paste -sd' ')"
tf_eq "bad: unknown --iface: an existing file is left alone (tapflow bug: opened with O_TRUNC before the interfaces are checked)" \
	precious "$(cat "$OUT/old.pcapng")"

tf_finish
