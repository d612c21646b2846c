#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The agent's systemd unit, started for real: a systemd booted in a
# container (systemd-nspawn: the host's /usr, a network namespace and a
# bpffs of the test's own) starts the installed unit with its sandbox as it
# is, ExecStart replaced by probes. Inside, tapflow must attach and count
# (TCX, clsact, flows, the drop tracer), pin into the pin directory, write
# /run/tapflow, read kernel addresses and reach a socket under /run/libvirt,
# with exactly its four capabilities; and it must not write anywhere else,
# read /proc/kcore or /proc/kmsg, open a packet socket or a namespace.
# Then, where tapflow's agent has --pin, the agent itself under the unit:
# ready (Type=notify), scraped, reloaded, stopped and started again without
# losing a packet, and unpinned.
set -uo pipefail
source "$(dirname "$0")/../lib.sh"

NAME="unit sandbox"
tf_need_root "$NAME"
tf_need_tools "$NAME" systemd-nspawn nsenter socat bpftool python3 make tc jq

REPO=$(cd "$(dirname "$0")/../.." && pwd)
TMP=$(mktemp -d "/tmp/tft$TF_ID-unit.XXXXXX")
tf_on_exit "rm -rf $TMP"
tf_netns NS unit || { tf_fail "$NAME: namespace" "cannot create it"; tf_finish; }

if ! make -s -C "$REPO" install DESTDIR="$TMP/root" >"$TMP/install.log" 2>&1; then
	tf_fail "make install" "$(tail -5 "$TMP/install.log")"
	tf_finish
fi
UNIT=$TMP/root/usr/local/lib/systemd/system/tapflow-agent.service

# A bpffs of the test's own as the container's /sys/fs/bpf: the unit's
# mkdir and the probes' pins never touch the host's.
mkdir -p "$TMP/bpffs" "$TMP/libvirt" "$TMP/probe" "$TMP/dropin" "$TMP/etc"
mount -t bpf bpf "$TMP/bpffs" || { tf_fail "$NAME: bpffs" "cannot mount one"; tf_finish; }
tf_on_exit "umount -l $TMP/bpffs"
# Something listening where libvirt's socket is.
socat UNIX-LISTEN:"$TMP/libvirt/libvirt-sock-ro",fork SYSTEM:'echo libvirt' &
tf_on_exit "kill $!"

cat >"$TMP/dropin/probe.conf" <<'EOF'
[Service]
Type=oneshot
Restart=no
ExecStart=
ExecStart=/opt/tapflow-probe/probe.sh
EOF
cat >"$TMP/probe/probe.sh" <<'EOF'
#!/bin/bash
# Runs as the unit's main process, in its sandbox: TAP lines to the journal.
T=/opt/tapflow/sbin/tapflow
out=$(mktemp)
fails=0
yes_() { local n=$1; shift; if "$@" >"$out" 2>&1; then echo "ok - sandbox allows: $n"
	else echo "not ok - sandbox allows: $n"; echo "# $(tail -3 "$out" | tr '\n' ' ')"; fails=1; fi; }
no_() { local n=$1; shift; if "$@" >"$out" 2>&1; then echo "not ok - sandbox denies: $n"; fails=1
	else echo "ok - sandbox denies: $n"; fi; }
# No awk: the container's /etc, where Debian links it, is empty.
while read -r key caps; do [ "$key" = CapEff: ] && break; done </proc/self/status
if [ "$caps" = 000000c400001000 ]; then echo "ok - only CAP_BPF CAP_PERFMON CAP_NET_ADMIN CAP_SYSLOG"
else echo "not ok - only CAP_BPF CAP_PERFMON CAP_NET_ADMIN CAP_SYSLOG"; echo "# CapEff $caps"; fails=1; fi
yes_ "stats attaches and counts (TCX)" $T --no-libvirt stats --iface lo -d 1
yes_ "stats with clsact, recorded in /run/tapflow" $T --no-libvirt stats --iface lo -d 1 --attach clsact
yes_ "flows" $T --no-libvirt flows --iface lo -d 1
yes_ "the drop tracer" sh -c "$T --json --no-libvirt stats --iface lo -d 1 | grep -q '\"drops_hook\":\"tp_btf/kfree_skb\"\\|\"drops_hook\":\"raw_tp/kfree_skb\"'"
yes_ "pinning in /sys/fs/bpf/tapflow" bpftool map create /sys/fs/bpf/tapflow/probe type array key 4 value 4 entries 1 name tfprobe
yes_ "unpinning there" rm /sys/fs/bpf/tapflow/probe
yes_ "writing /run/tapflow" sh -c 'touch /run/tapflow/probe && rm /run/tapflow/probe'
yes_ "kernel addresses in /proc/kallsyms" python3 -c 'import sys; sys.exit(sum(1 for l in open("/proc/kallsyms") if not l.startswith("0000000000000000")) < 1000)'
yes_ "connecting to /run/libvirt/libvirt-sock-ro" python3 -c 'import socket; s = socket.socket(socket.AF_UNIX); s.connect("/run/libvirt/libvirt-sock-ro"); assert s.recv(16).startswith(b"libvirt")'
yes_ "a TCP listener (/metrics)" python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()'
no_ "pinning elsewhere in bpffs" bpftool map create /sys/fs/bpf/tfprobe type array key 4 value 4 entries 1 name tfprobe2
no_ "writing /etc" touch /etc/tfprobe
no_ "writing /var" touch /var/lib/tfprobe
no_ "writing a sysfs attribute" sh -c 'cat /sys/class/net/lo/tx_queue_len > /sys/class/net/lo/tx_queue_len'
no_ "writing /proc/sys" sh -c 'cat /proc/sys/net/ipv4/ip_forward > /proc/sys/net/ipv4/ip_forward'
no_ "reading /proc/kcore" head -c1 /proc/kcore
no_ "reading /proc/kmsg" head -c1 /proc/kmsg
no_ "a packet socket" python3 -c 'import socket; socket.socket(socket.AF_PACKET, socket.SOCK_RAW)'
no_ "a new network namespace" unshare -n true
rm -f "$out"
exit $fails
EOF
chmod 0755 "$TMP/probe/probe.sh"
printf 'prometheus = 127.0.0.1:9560\nflow-metrics = 2\n' >"$TMP/etc/agent.conf"

# nspawn's own seccomp filter refuses bpf(2) in containers, which systemd
# as the host's PID 1 does not: allowed, so that only the unit's filter
# decides.
systemd-nspawn -q -D / --volatile=yes --register=no --keep-unit --machine="tft$TF_ID-unit" \
	--capability=all --system-call-filter='bpf perf_event_open' \
	--network-namespace-path="/run/netns/$NS" \
	--bind="$TMP/bpffs:/sys/fs/bpf" --bind="$TMP/libvirt:/run/libvirt" \
	--bind-ro="$TMP/root/usr/local:/opt/tapflow" --bind-ro="$TMP/probe:/opt/tapflow-probe" \
	--bind-ro="$UNIT:/etc/systemd/system/tapflow-agent.service" \
	--bind-ro="$TMP/dropin:/etc/systemd/system/tapflow-agent.service.d" \
	--bind-ro="$TMP/etc:/etc/tapflow" \
	-b systemd.unit=sysinit.target systemd.firstboot=off \
	>"$TMP/nspawn.log" 2>&1 </dev/null &
NSPAWN=$!
LEADER=
# SIGTERM powers the container off; SIGKILL if its init is still there
# after 10 s.
stop_container() {
	kill $NSPAWN
	for _ in $(seq 50); do
		[ -n "$LEADER" ] && [ -d "/proc/$LEADER" ] || break
		sleep 0.2
	done
	kill -9 $NSPAWN
	wait $NSPAWN
}
tf_on_exit stop_container

# Its init, once its manager answers ("offline": not yet) and has booted:
# a unit started while sysinit.target's jobs still run shares the journal
# with the boot.
state=
for _ in $(seq 150); do
	LEADER=$(pgrep -P $NSPAWN | head -1)
	[ -n "$LEADER" ] &&
		state=$(timeout 5 nsenter -t "$LEADER" -a systemctl is-system-running 2>/dev/null)
	[ -n "$state" ] && [ "$state" != offline ] && break
	state=
	kill -0 $NSPAWN 2>/dev/null || break
	sleep 0.2
done
[ -n "$state" ] &&
	state=$(timeout 60 nsenter -t "$LEADER" -a systemctl is-system-running --wait 2>/dev/null)
if [ -z "$state" ]; then
	tf_fail "$NAME: a systemd boots in the container" "$(tail -5 "$TMP/nspawn.log")"
	tf_finish
fi
tf_ok "$NAME: a systemd boots in the container ($state)"
in_ct() { timeout 120 nsenter -t "$LEADER" -a "$@"; }

# Only the unit's own dependencies are skipped (network-online.target and
# such have nothing to do here), not its ExecStartPre nor its sandbox.
in_ct systemctl start --job-mode=ignore-dependencies tapflow-agent >/dev/null 2>&1
in_ct journalctl -u tapflow-agent -o cat --no-pager >"$TMP/journal" 2>&1
grep -E '^(ok|not ok) - |^# ' "$TMP/journal"
grep -q '^not ok - ' "$TMP/journal" && TF_FAILED=1
probes=$(grep -cE '^(ok|not ok) - ' "$TMP/journal")
if [ "$probes" -eq 20 ]; then
	tf_ok "$NAME: the unit started, every probe ran in its sandbox"
else
	tf_fail "$NAME: the unit started, every probe ran in its sandbox" \
		"$probes of 20 probes; $(grep -v -E '^(ok|not ok) - |^# ' "$TMP/journal" | tail -5 | tr '\n' ' ')"
fi
tf_check "$NAME: the pin directory was made" test -d "$TMP/bpffs/tapflow"

# ---- the agent itself ----------------------------------------------------------

BIN=$TMP/root/usr/local/sbin/tapflow
# metric NAME [TEXT]: the value of the first series of NAME whose line has
# TEXT, scraped in the namespace; empty if there is none.
metric() {
	ip netns exec "$NS" python3 - "$1" "${2:-}" <<'EOF' 2>/dev/null
import sys, urllib.request
name, text = sys.argv[1], sys.argv[2]
page = urllib.request.urlopen("http://127.0.0.1:9560/metrics", timeout=5).read().decode()
for line in page.splitlines():
    if line.split("{")[0].split(" ")[0] == name and text in line:
        print(int(float(line.rsplit(" ", 1)[1])))
        break
EOF
}
lo_rx() { metric tapflow_interface_receive_packets_total 'interface="lo"'; }
# 20 UDP datagrams through lo.
udp_burst() {
	ip netns exec "$NS" python3 -c 'import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(20): s.sendto(b"x", ("127.0.0.1", 9))'
}
# until_eq WANT CMD...: CMD's output, once it is WANT or after 5 s.
until_eq() {
	local want=$1 got _
	shift
	for _ in $(seq 25); do
		got=$("$@")
		[ "$got" = "$want" ] && break
		sleep 0.2
	done
	echo "$got"
}
# The ids of the BPF links pinned in the pin directory (its hooks); this
# bpftool's net show does not list TCX links.
pinned_links() {
	local f
	find "$TMP/bpffs/tapflow" -type f | while read -r f; do
		bpftool -j link show pinned "$f" 2>/dev/null | jq -r '.id // empty'
	done
}
# How many of these link ids still exist.
links_alive() {
	local id n=0
	for id in "$@"; do
		bpftool link show id "$id" >/dev/null 2>&1 && n=$((n + 1))
	done
	echo $n
}
unpin() { ip netns exec "$NS" "$BIN" agent --unpin "$TMP/bpffs/tapflow" >"$TMP/unpin.out" 2>&1; }

# Not a pipe into grep -q: tapflow would see it close (pipefail).
if ! grep -q -- '--pin DIR' <<<"$("$BIN" --help 2>/dev/null)"; then
	tf_skip "agent under the unit" "this tapflow's agent has no --pin"
else
	# The unit's own command line, with the binary where the container has
	# it; no libvirt there: lo instead.
	rm -f "$TMP/dropin/probe.conf"
	cat >"$TMP/dropin/agent.conf" <<'EOF'
[Service]
ExecStart=
ExecStart=/opt/tapflow/sbin/tapflow agent --pin /sys/fs/bpf/tapflow --config /etc/tapflow/agent.conf --no-libvirt --iface lo
EOF
	in_ct systemctl daemon-reload
	in_ct systemctl start --job-mode=ignore-dependencies tapflow-agent >/dev/null 2>&1
	tf_eq "agent: active once it said READY=1 (Type=notify)" active \
		"$(in_ct systemctl is-active tapflow-agent)"
	tf_eq "agent: scraped in its sandbox" 1 "$(metric tapflow_up)"
	tf_eq "agent: the drop tracer up in its sandbox" 1 "$(metric tapflow_drop_tracer_up)"
	links=$(pinned_links)
	tf_check "agent: pinned its hooks" test -n "$links"
	in_ct systemctl reload tapflow-agent
	tf_eq "agent: systemctl reload re-reads the config" 1 \
		"$(until_eq 1 metric tapflow_config_reloads_total)"
	tf_eq "agent: still active after the reload" active "$(in_ct systemctl is-active tapflow-agent)"
	a=$(lo_rx)
	in_ct systemctl stop tapflow-agent
	tf_eq "agent: systemctl stop is a clean exit" success \
		"$(in_ct systemctl show -P Result tapflow-agent)"
	# shellcheck disable=SC2086
	tf_eq "agent: its hooks stay while it is stopped" "$(wc -w <<<"$links")" "$(links_alive $links)"
	udp_burst
	in_ct systemctl start --job-mode=ignore-dependencies tapflow-agent >/dev/null 2>&1
	b=$(lo_rx)
	tf_check "agent: counted while stopped, counts carried over (lo rx ${a:-?} -> ${b:-?})" \
		test "${b:-0}" -ge $((${a:-0} + 20)) -a "${a:-0}" -gt 0
	in_ct systemctl stop tapflow-agent
	if unpin; then tf_ok "agent --unpin"; else tf_fail "agent --unpin" "$(cat "$TMP/unpin.out")"; fi
	tf_eq "agent --unpin: nothing left pinned" "" "$(ls -A "$TMP/bpffs/tapflow")"
	# shellcheck disable=SC2086
	tf_eq "agent --unpin: its hooks detached" 0 "$(links_alive $links)"
	if [ "$TF_FAILED" = 1 ]; then
		in_ct journalctl -u tapflow-agent -o cat --no-pager | tail -15 | sed 's/^/# /'
	fi
fi
tf_eq "$NAME: no clsact filter left on lo" "" \
	"$(ip netns exec "$NS" tc filter show dev lo ingress; ip netns exec "$NS" tc filter show dev lo egress)"

tf_finish
