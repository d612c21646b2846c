#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# tapflow top in a real terminal (tmux, on a server socket of the test's
# own) on the topology of tests/netns/topo.sh, with --no-libvirt --iface:
# what it shows (headers, the interfaces, the flow rows), that the sort and
# filter keys change it, that q quits, and that the terminal is restored
# (canonical mode and echo back on, the alternate screen left) after q, a
# SIGTERM, and two SIGTERMs in a row; and that it fits its terminal: at
# widths from 250 down to 40 columns the columns give way in their priority
# order (NAT and DROPS only where there is room), no line wraps, and a
# resize (SIGWINCH) redraws at the new width.
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/topo.sh"
TFFRAMES="$TOPO_DIR/tfframes.py"

topo_test_begin "netns top" top jq python3 tmux

SOCK=tft$TF_ID
tm() { tmux -L "$SOCK" "$@"; }
tf_on_exit "tmux -L $SOCK kill-server"

# The pane runs top, then reports its exit code and the terminal's modes,
# then stays (so that the test can look at the screen after top is gone).
# top's pid is written by the sh that execs it.
cat >"$OUT/run.sh" <<EOF
#!/bin/bash
sh -c 'echo \$\$ > $OUT/top.pid; exec "\$0" "\$@"' "$TAPFLOW" --netns "$NSH" --no-libvirt \\
	--iface $TAP --iface $VH "\$@" top 2>"$OUT/top.err"
echo "rc=\$?"
echo "modes: \$(stty -a | tr ' ;' '\n\n' | grep -xE -- '-?(icanon|echo|isig)' | tr '\n' ' ')"
echo END
exec sleep 600
EOF
chmod +x "$OUT/run.sh"

screen() { tm capture-pane -p -t top; }
# wait_screen SEC REGEX: until the screen shows REGEX (extended).
wait_screen() { wait_for "$1" sh -c "tmux -L $SOCK capture-pane -p -t top | grep -qE -- '$2'"; }
# line_of REGEX: the screen line number of the first match (0 if none).
line_of() { screen | grep -nE -- "$1" | head -1 | cut -d: -f1 | grep . || echo 0; }

# start_top [WIDTH [ARGS...]]: a fresh tmux session (WIDTH columns, default
# 200) running top with tapflow's ARGS (and the variables in TOP_ENV); TOP_PID
# once it has attached to TOP_HOOKS interfaces (default 2).
start_top() {
	local width=${1:-200}
	shift $(($# > 0))
	rm -f "$OUT/top.pid"
	tm kill-session -t top 2>/dev/null
	tm new-session -d -s top -x "$width" -y 50 "${TOP_ENV:-} $OUT/run.sh $*"
	wait_for 10 test -s "$OUT/top.pid" || return 1
	TOP_PID=$(cat "$OUT/top.pid")
	tf_on_exit "kill -9 $TOP_PID; rm -f /run/tapflow/hooks.$TOP_PID"
	wait_attached "$TOP_PID" "${TOP_HOOKS:-2}" && wait_screen 10 'tapflow top'
}

# restored NAME RC_REGEX: top is gone, its exit code matches, the terminal
# is back in canonical mode with echo and signals, off the alternate screen.
restored() {
	local name=$1 modes
	wait_screen 10 '^END' || { tf_fail "$name: top exited" "screen: $(screen | head -5)"; return; }
	tf_check "$name: exit code ($(screen | grep -o '^rc=[0-9]*'))" \
		eval "screen | grep -qxE 'rc=($2)'"
	modes=$(screen | sed -n 's/^modes: //p' | xargs -n1 | sort | xargs)
	tf_eq "$name: terminal restored (canonical mode, echo, signals)" "echo icanon isig" "$modes"
	tf_check "$name: the alternate screen is left (top's screen is gone)" \
		eval "! screen | grep -q 'tapflow top'"
}

# --- 1. What top shows, and its keys --------------------------------------------
start_top || tf_diag "top did not start: $(cat "$OUT/top.err") $(screen | head -5)"
tf_check "screen: title with sort and filter" wait_screen 5 'tapflow top .* sort: bytes +filter: all'
tf_check "screen: interface table header" wait_screen 5 '^VM +IFACE +ROLE +RX RATE +TX RATE +RX BYTES'
tf_check "screen: the tap and the veth" eval "screen | grep -qE '^- +$TAP +iface' && screen | grep -qE '^- +$VH +iface'"
tf_check "screen: flow table header" \
	wait_screen 5 '^VM +IFACE +PROTO +LOCAL +REMOTE +TX RATE +RX RATE +TX BYTES +RX BYTES +TX PKTS'
# Two flows: A = many small frames (the VM's 40 x 60 to the peer's port 9),
# B = few big ones (the peer's 3 x 1400 to the VM's port 7001).
# By bytes B (4200) leads, by packets A (40).
vm_send 40 60 || tf_diag "vm_send failed"
ip netns exec "$NSP" python3 "$TFFRAMES" $VP $MAC_PEER $MAC_VM 3 1400 udp4 $IP_PEER 7000 $IP_VM 7001
A="^- +$TAP +udp +10\.77\.0\.2:9 +10\.77\.0\.1:40000 "
B="^- +$TAP +udp +10\.77\.0\.2:7000 +10\.77\.0\.1:7001 "
R='[0-9.]+ [kMGT]?bit/s'
tf_check "screen: flow A on the tap (40 x 60 bytes)" \
	wait_screen 5 "$A +$R +$R +0 B +2\.34 KiB +0 +40( |\$)"
tf_check "screen: flow B on the tap (3 x 1400 bytes)" \
	wait_screen 5 "$B +$R +$R +4\.10 KiB +0 B +3 +0( |\$)"
tf_check "sort bytes: B above A" test "$(line_of "$B")" -lt "$(line_of "$A")"
tm send-keys -t top p
tf_check "key p: title says sort: packets" wait_screen 5 'sort: packets'
tf_check "sort packets: A above B" test "$(line_of "$A")" -lt "$(line_of "$B")"
tm send-keys -t top b
tf_check "key b: sort: bytes again, B above A" \
	eval "wait_screen 5 'sort: bytes' && test \$(line_of '$B') -lt \$(line_of '$A')"
tm send-keys -t top r
tf_check "key r: title says sort: rate" wait_screen 5 'sort: rate'
tm send-keys -t top v
tf_check "key v: filter on the first interface" wait_screen 5 "filter: $TAP "
tf_check "filter $TAP: no row of $VH" eval "! screen | grep -qE '^- +$VH '"
tm send-keys -t top v
tf_check "key v again: the next one" wait_screen 5 "filter: $VH "
tf_check "filter $VH: no row of $TAP" eval "! screen | grep -qE '^- +$TAP '"
tm send-keys -t top v
tf_check "key v again: back to all" wait_screen 5 "filter: all "
tm send-keys -t top / ; tm send-keys -t top -l "$TAP" ; tm send-keys -t top Enter
tf_check "key / $TAP Enter: filter on it" wait_screen 5 "filter: $TAP "
tm send-keys -t top / ; tm send-keys -t top -l nosuch ; tm send-keys -t top Enter
tf_check "key / nosuch: says so, keeps the filter" \
	eval "wait_screen 5 'no traced VM or interface named .nosuch.' && screen | grep -q 'filter: $TAP '"
tm send-keys -t top q
restored "q" 0
tf_check "q: the summary is printed after the screen is restored" \
	eval "screen | grep -q '^summary: 0 VMs, 2 interfaces'"
tf_eq "q: nothing on stderr" "" "$(head -c 300 "$OUT/top.err")"
assert_clean "q: nothing left" "$NSH" "$TOP_PID" $TAP $VH

# --- 2. SIGTERM ----------------------------------------------------------------------
start_top || tf_diag "top did not start: $(cat "$OUT/top.err")"
kill -TERM "$TOP_PID"
restored "SIGTERM" 0
assert_clean "SIGTERM: nothing left" "$NSH" "$TOP_PID" $TAP $VH

# --- 3. Two SIGTERMs: out at once, the terminal restored all the same ---------------
start_top || tf_diag "top did not start: $(cat "$OUT/top.err")"
# Stop it first so that both signals are pending, then let it run.
kill -STOP "$TOP_PID" && kill -TERM "$TOP_PID" && kill -CONT "$TOP_PID"
sleep 0.05
kill -TERM "$TOP_PID" 2>/dev/null
restored "two SIGTERMs" "0|143"
tf_eq "two SIGTERMs: no TCX hook left (links die with the process)" "" \
	"$(for d in $TAP $VH; do hooks_of "$NSH" $d; done)"

# --- 4. Widths: columns give way by priority, nothing wraps, resizes redraw -----------
# An uplink (a veth of its own) turns the NAT join on: NAT is a column then
# ("-" for flows that are not forwarded). DROPS is one where the kernel has
# the drop tracer. COLUMNS and LINES say 300x100: top goes by the tty's size
# all the same. The flows must not end (idle) while the test resizes.
ip -n "$NSH" link add tfup0 type veth peer name tfup1 && ip -n "$NSH" link set tfup0 up ||
	tf_diag "cannot add an uplink"
TOP_ENV="COLUMNS=300 LINES=100" TOP_HOOKS=3 start_top 250 --uplink tfup0 --idle-timeout 600 ||
	tf_diag "top did not start: $(cat "$OUT/top.err")"
vm_send 40 60 || tf_diag "vm_send failed"
ip netns exec "$NSP" python3 "$TFFRAMES" $VP $MAC_PEER $MAC_VM 3 1400 udp4 $IP_PEER 7000 $IP_VM 7001
tf_check "widths: both flows of both interfaces on the screen" \
	wait_for 5 sh -c "test \$(tmux -L $SOCK capture-pane -p -t top | grep -cE '^- +($TAP|$VH) +udp') -eq 4"
ROWS=$(screen | grep -c '^- ')
# Where the kernel has no drop tracer there is no DROPS column at any width.
DROPS_ON=$(screen | grep -qE '^VM .* DROPS$' && echo 1)
# The flow table's columns at each width, as the priority order has it.
declare -A HEADS=(
	[250]="VM IFACE PROTO LOCAL NAT REMOTE TX RATE RX RATE TX BYTES RX BYTES TX PKTS RX PKTS DROPS"
	[160]="VM IFACE PROTO LOCAL NAT REMOTE TX RATE RX RATE TX BYTES RX BYTES TX PKTS RX PKTS DROPS"
	[120]="VM IFACE PROTO LOCAL NAT REMOTE TX RATE RX RATE TX BYTES RX BYTES TX PKTS RX PKTS DROPS"
	[100]="VM IFACE PROTO LOCAL NAT REMOTE TX RATE RX RATE TX BYTES RX BYTES DROPS"
	[80]="VM IFACE PROTO LOCAL REMOTE TX RATE RX RATE TX BYTES"
	[60]="VM LOCAL REMOTE TX RATE RX RATE"
	[40]="VM REMOTE TX RATE"
)
# The flow table's head (the second table's).
flow_head() { screen | grep '^VM ' | sed -n 2p; }
# The lines of the pane (trailing blanks kept) wider than $1 columns.
wider() { tm capture-pane -p -N -t top | python3 -c '
import sys
w = int(sys.argv[1])
print(sum(len(l) > w for l in sys.stdin.buffer.read().decode("utf-8", "replace").split("\n")))' "$1"; }
# A line carried over from one too long would start with none of these.
odd_lines() { screen | grep -vE '^$|^ tapflow top|^VM |^- |^b/p/r: '; }
NAT_AT=""
# Narrower step by step, then wide again: each a resize, a SIGWINCH.
for w in 250 160 120 100 80 60 40 160; do
	heads=${HEADS[$w]}
	[ -n "$DROPS_ON" ] || heads=${heads% DROPS}
	tm resize-window -t top -x $w -y 50
	wait_for 5 sh -c "tmux -L $SOCK capture-pane -p -t top | grep '^VM ' | sed -n 2p |
		tr -s ' ' | grep -qxF -- '$heads'"
	tf_eq "width $w: the flow columns" "$heads" "$(flow_head | tr -s ' ')"
	tf_eq "width $w: no line wider, none carried over, every row there" "0||$ROWS" \
		"$(wider $w)|$(odd_lines | head -3)|$(screen | grep -c '^- ')"
	flow_head | grep -qE ' NAT ' && NAT_AT+="$w "
done
tf_eq "NAT shows from 100 columns on" "250 160 120 100 160 " "$NAT_AT"
tm resize-window -t top -x 40 -y 50
tf_check "40 columns: the key help is cut, with a marker" \
	wait_for 5 sh -c "tmux -L $SOCK capture-pane -p -t top | grep -qE '^b/p/r: .*(…|~)\$'"
tm send-keys -t top q
restored "widths: q" 0
assert_clean "widths: nothing left" "$NSH" "$TOP_PID" $TAP $VH tfup0

# --- 5. No terminal: one line, exit 1, nothing attached ------------------------------
"$TAPFLOW" --netns "$NSH" --no-libvirt --iface $TAP top </dev/null >"$OUT/nt.out" 2>"$OUT/nt.err"
tf_eq "no terminal: exit 1, one line" "1 1" "$? $(wc -l <"$OUT/nt.err")"
tf_check "no terminal: says it needs one" grep -q 'needs a terminal' "$OUT/nt.err"
tf_finish
