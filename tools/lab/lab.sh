#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The tapflow lab: a real libvirtd with real TCG guests, all inside network
# namespaces of the lab's own. See tools/lab/README.md for the interface.
#
#   lab.sh up                  start everything (idempotent), wait for the guests
#   lab.sh down                remove everything the lab started (idempotent)
#   lab.sh status              what is up
#   lab.sh uri                 the libvirt URI of the lab's libvirtd
#   lab.sh env                 the lab's names and addresses as shell variables
#   lab.sh release [-s SCRIPT] VM...   start the guests' scripted traffic
#   lab.sh wait-done VM... [TIMEOUT]   wait until those runs are done
#   lab.sh restart-libvirtd    stop libvirtd and start it again (the guests run on)
set -euo pipefail
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB_NS=${TF_LAB_NS:-tflab}
LAN_NS=${TF_LAN_NS:-tflan}
INET_NS=${TF_INET_NS:-tfinet}
STATE=${TF_LAB_STATE:-/run/tapflow-lab}
read -ra VMS <<<"${TF_LAB_VMS:-alpha beta gamma delta}"
UP_TIMEOUT=${TF_LAB_TIMEOUT:-300}
VM_MEM_MIB=192

# Labs that are up (one file per lab) and the host directories they created.
REG=/run/tapflow-labs
SOCK=$STATE/sock/libvirt-sock
URI="qemu+unix:///system?socket=$SOCK"

# Addresses (private test subnets, used only inside the lab's namespaces).
UPLINK_LAB=10.99.0.1     # uplink0 in tflab, default route of tflab
INET_IP=10.99.0.2        # wan0 in tfinet: the "internet" host
LAN_IP=10.77.0.1         # lan0 in tflan: the host on br0's LAN
NAT_GW=192.168.122.1     # virbr0, libvirt network "default"
ISO_GW=192.168.150.1     # virbr1, libvirt network "isolated"
# Every guest's UDP script uses this source port: alpha and delta both send
# 192.168.122.x:40000 -> 10.99.0.2:7, so the NAT must remap one of them.
UDP_SPORT=40000
# The guests' "syn" script connects from this port (one flow for all attempts).
SYN_SPORT=40001
# An address of the lab's own test range that nothing has, answers or routes
# anywhere (tflab's default route takes it to tfinet, which has no route for
# it): the guests' "noroute" script pings it; tests put their own unreachable
# routes for NOROUTE_NET in tflab.
NOROUTE_NET=10.99.9.0/24
NOROUTE_IP=10.99.9.1

# vm_def NAME: the guest's NIC, address and scripted traffic targets.
vm_def() {
	V_NET="" V_BR="" V_HTTP="" V_UDP=""
	case $1 in
	alpha) V_MAC=52:54:00:7f:00:10 V_NET=default V_BR=virbr0 V_MODE=nat
	       V_IP=192.168.122.10 V_PING=$INET_IP V_HTTP=$INET_IP V_UDP=$INET_IP:7 ;;
	beta)  V_MAC=52:54:00:7f:00:20 V_NET=isolated V_BR=virbr1 V_MODE=isolated
	       V_IP=192.168.150.20 V_PING=$ISO_GW ;;
	gamma) V_MAC=52:54:00:7f:00:30 V_BR=br0 V_MODE=bridge
	       V_IP=10.77.0.30 V_PING=$LAN_IP V_HTTP=$LAN_IP V_UDP=$LAN_IP:7 ;;
	delta) V_MAC=52:54:00:7f:00:40 V_NET=default V_BR=virbr0 V_MODE=nat
	       V_IP=192.168.122.40 V_PING=$INET_IP V_HTTP=$INET_IP V_UDP=$INET_IP:7 ;;
	*) die "unknown VM '$1' (known: alpha beta gamma delta)" ;;
	esac
}

die()  { echo "lab.sh: $*" >&2; exit 1; }
info() { echo "lab: $*" >&2; }
need_root() { [ "$(id -u)" -eq 0 ] || die "must run as root"; }
# Serialize up/down (the e2e tests may race): lock this script file itself.
# Every process started under the lock gets "9<&-": a daemon that inherited
# fd 9 would hold the lock for its whole life.
lock() {
	exec 9<"$HERE/lab.sh"
	flock -w 900 9 || die "another lab.sh up/down has held the lock for 15 min"
}

vsh() { virsh -q -c "$URI" "$@"; }
ns_exists() { ip netns list | awk '{print $1}' | grep -qx "$1"; }
# Alive and not a zombie: the daemons' parent is PID 1, which may reap late.
pid_alive() {
	[ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null &&
		[ "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" != Z ]
}
pidof_file() { [ -s "$1" ] && tr -dc '0-9' <"$1" || true; }
daemon_pid() { pidof_file "$STATE/pid/$1.pid"; }

# The newest Debian kernel that has its modules: the guests boot it directly.
find_kernel() {
	local k v
	for k in $(ls /boot/vmlinuz-* 2>/dev/null | sort -V -r); do
		v=${k#/boot/vmlinuz-}
		if [ -d "/lib/modules/$v/kernel" ]; then
			KERNEL=$k KVER=$v
			return 0
		fi
	done
	return 1
}

# Everything up needs; prints what is missing (the e2e tests skip on it).
cmd_check() {
	local missing=() t
	for t in libvirtd virtlogd virsh qemu-system-x86_64 dnsmasq busybox \
		 cpio modprobe python3 iptables ip unshare flock; do
		command -v "$t" >/dev/null || missing+=("$t")
	done
	[ -x /bin/busybox ] || missing+=("busybox-static")
	find_kernel || missing+=("linux-image-amd64 (/boot/vmlinuz-* with /lib/modules)")
	[ -d /usr/lib/x86_64-linux-gnu/libvirt/connection-driver ] &&
		[ ! -e /usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so ] &&
		missing+=("libvirt-daemon-driver-qemu")
	if [ ${#missing[@]} -gt 0 ]; then
		echo "missing: ${missing[*]}"
		return 1
	fi
}

# ---------------------------------------------------------------- namespaces

# A namespace without IPv6: no link-local addresses, DAD or MLD reports that
# would show up on the guests' taps. ip_forward for the NAT in tflab.
mk_ns() {
	ip netns add "$1"
	ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
		net.ipv6.conf.default.disable_ipv6=1 net.ipv4.ip_forward=1
	ip -n "$1" link set lo up
}

setup_netns() {
	mk_ns "$LAB_NS"
	mk_ns "$LAN_NS"
	mk_ns "$INET_NS"

	# The uplink that libvirt's NAT masquerades to.
	ip link add uplink0 netns "$LAB_NS" type veth peer name wan0 netns "$INET_NS"
	ip -n "$LAB_NS" addr add "$UPLINK_LAB/30" dev uplink0
	ip -n "$LAB_NS" link set uplink0 up
	ip -n "$INET_NS" addr add "$INET_IP/30" dev wan0
	ip -n "$INET_NS" link set wan0 up
	# Static neighbours both ways: no ARP on the uplink in the middle of a
	# measured window (tests compare the uplink's frames exactly, between
	# instances attached at slightly different instants).
	ip -n "$LAB_NS" neigh replace "$INET_IP" dev uplink0 nud permanent \
		lladdr "$(ip -n "$INET_NS" -br link show dev wan0 | awk '{print $3}')"
	ip -n "$INET_NS" neigh replace "$UPLINK_LAB" dev wan0 nud permanent \
		lladdr "$(ip -n "$LAB_NS" -br link show dev uplink0 | awk '{print $3}')"
	# tfinet gets no route to the guests' subnets, like a real upstream:
	# only what libvirt's NAT translated to 10.99.0.1 can get an answer.
	ip -n "$LAB_NS" route add default via "$INET_IP"

	# The "public bridge": not a libvirt network, a plain bridge whose
	# uplink is a veth to the LAN namespace. No STP (BPDUs every 2 s would
	# land on the guest's tap), no address in tflab.
	ip -n "$LAB_NS" link add br0 type bridge stp_state 0 forward_delay 0
	ip link add lan-port netns "$LAB_NS" type veth peer name lan0 netns "$LAN_NS"
	ip -n "$LAB_NS" link set lan-port master br0
	ip -n "$LAB_NS" link set lan-port up
	ip -n "$LAB_NS" link set br0 up
	ip -n "$LAN_NS" link set lan0 address 52:54:00:7f:02:01
	ip -n "$LAN_NS" addr add "$LAN_IP/24" dev lan0
	ip -n "$LAN_NS" link set lan0 up
}

# ------------------------------------------------------------------- servers

# start_bg NAME NS CMD...: a background process in NS, logged to STATE/log,
# its pid recorded in STATE/pid/NAME.pid (ip netns exec execs, same pid).
start_bg() {
	local name=$1 ns=$2
	shift 2
	setsid ip netns exec "$ns" "$@" </dev/null >>"$STATE/log/$name.log" 2>&1 9<&- &
	echo $! >"$STATE/pid/$name.pid"
}

wait_file() {
	local f=$1 n=$((${2:-10} * 10))
	while [ ! -e "$f" ] && [ $n -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
	[ -e "$f" ]
}

start_servers() {
	# inet-server.py writes its pid file itself once its sockets are bound.
	start_bg inet-server "$INET_NS" python3 "$HERE/inet-server.py" "$INET_IP" \
		"$STATE/pid/inet-server.ready"
	start_bg lan-server "$LAN_NS" python3 "$HERE/inet-server.py" "$LAN_IP" \
		"$STATE/pid/lan-server.ready"
	# DHCP on the public bridge's LAN, as a home or office router would.
	vm_def gamma
	ip netns exec "$LAN_NS" dnsmasq --conf-file=/dev/null --port=0 \
		--interface=lan0 --bind-interfaces --except-interface=lo \
		--dhcp-range=10.77.0.100,10.77.0.199,255.255.255.0,12h \
		--dhcp-host="$V_MAC,$V_IP" --dhcp-option=option:router,"$LAN_IP" \
		--dhcp-leasefile="$STATE/lib/lan-dnsmasq.leases" \
		--pid-file="$STATE/pid/lan-dnsmasq.pid" \
		--log-facility="$STATE/log/lan-dnsmasq.log" --log-dhcp 9<&- ||
		die "the LAN's dnsmasq did not start (see $STATE/log/lan-dnsmasq.log)"
	wait_file "$STATE/pid/inet-server.ready" 10 ||
		die "inet-server did not start (see $STATE/log/inet-server.log)"
	wait_file "$STATE/pid/lan-server.ready" 10 ||
		die "lan-server did not start (see $STATE/log/lan-server.log)"
}

# ------------------------------------------------------------ libvirt daemons

write_daemon_confs() {
	# Sockets in a directory of the lab's own; no auth on the unix socket
	# (root only: 0700 directory).
	cat >"$STATE/etc/libvirtd.conf" <<-EOF
		unix_sock_dir = "$STATE/sock"
		unix_sock_rw_perms = "0700"
		auth_unix_ro = "none"
		auth_unix_rw = "none"
		log_outputs = "3:file:$STATE/log/libvirtd.log"
	EOF
	cat >"$STATE/etc/virtlogd.conf" <<-EOF
		log_outputs = "3:file:$STATE/log/virtlogd.log"
	EOF
	# qemu runs as root (Debian's libvirt-qemu user comes with
	# libvirt-daemon-system, which the lab does not need), no AppArmor or
	# DAC relabelling, no cgroups (ip netns exec remounts /sys without
	# them) and no private /dev per guest.
	cat >"$STATE/etc/qemu.conf" <<-EOF
		user = "root"
		group = "root"
		dynamic_ownership = 0
		remember_owner = 0
		security_driver = "none"
		cgroup_controllers = [ ]
		namespaces = [ ]
		stdio_handler = "logd"
	EOF
}

start_daemons() {
	local d n
	mkdir -p "$STATE"/{etc,run,lib,log,cache,sock,pid}
	chmod 700 "$STATE/sock"
	write_daemon_confs
	# Mount points for the private bind mounts. Remember the ones created
	# here so that the last lab's down removes them again: a lab with other
	# names (TF_LAB_NS, TF_LAB_STATE) may be using them as well.
	mkdir -p "$REG"
	echo "$STATE" >"$REG/$LAB_NS"
	for d in /etc/libvirt /run/libvirt /var/lib/libvirt /var/log/libvirt /var/cache/libvirt; do
		if [ ! -d "$d" ]; then
			mkdir -p "$d"
			echo "$d" >>"$REG/created-dirs"
		fi
	done
	ip netns exec "$LAB_NS" unshare -m --propagation private \
		"$HERE/nsdaemons.sh" "$STATE" 9<&- ||
		die "libvirt daemons failed to start (see $STATE/log/libvirtd.log)"
	# libvirtd answers only once its drivers are initialized.
	for ((n = 0; n < 300; n++)); do
		vsh version >/dev/null 2>&1 && return 0
		pid_alive "$(daemon_pid libvirtd)" || break
		sleep 0.1
	done
	tail -n 20 "$STATE/log/libvirtd.log" >&2 || true
	die "libvirtd is not answering on $SOCK"
}

# ------------------------------------------------------------------ networks

dhcp_hosts() {
	local vm
	for vm in "${VMS[@]}"; do
		vm_def "$vm"
		[ "$V_NET" = "$1" ] &&
			echo "      <host mac='$V_MAC' name='$vm' ip='$V_IP'/>"
	done
	true
}

# libvirt's standard NAT network "default" (as its default.xml, but STP off:
# an STP bridge sends BPDUs to every guest every 2 s) and an isolated one.
# Guests get fixed addresses by DHCP host entries.
define_networks() {
	cat >"$STATE/net-default.xml" <<-EOF
		<network>
		  <name>default</name>
		  <forward mode='nat'/>
		  <bridge name='virbr0' stp='off' delay='0'/>
		  <mac address='52:54:00:7f:01:01'/>
		  <ip address='$NAT_GW' netmask='255.255.255.0'>
		    <dhcp>
		      <range start='192.168.122.100' end='192.168.122.199'/>
		$(dhcp_hosts default)
		    </dhcp>
		  </ip>
		</network>
	EOF
	cat >"$STATE/net-isolated.xml" <<-EOF
		<network>
		  <name>isolated</name>
		  <bridge name='virbr1' stp='off' delay='0'/>
		  <mac address='52:54:00:7f:01:02'/>
		  <ip address='$ISO_GW' netmask='255.255.255.0'>
		    <dhcp>
		      <range start='192.168.150.100' end='192.168.150.199'/>
		$(dhcp_hosts isolated)
		    </dhcp>
		  </ip>
		</network>
	EOF
	local net
	for net in default isolated; do
		vsh net-define "$STATE/net-$net.xml" >/dev/null
		vsh net-start "$net" >/dev/null
	done
	# Learned FDB entries last a day instead of 5 min: a guest that was
	# quiet for a while stays known on its tap (no flooding of frames for
	# it to the other guests' taps; FDB checks find it learned).
	for net in virbr0 virbr1 br0; do
		ip -n "$LAB_NS" link set dev "$net" type bridge ageing_time 8640000
	done
}

# ------------------------------------------------------------------- domains

build_initramfs() {
	"$HERE/mkinitramfs.sh" "$STATE/initramfs.cpio.gz" "$KVER"
}

domain_xml() {
	local vm=$1 nic cmdline
	vm_def "$vm"
	if [ -n "$V_NET" ]; then
		nic="<interface type='network'><source network='$V_NET'/>"
	else
		nic="<interface type='bridge'><source bridge='$V_BR'/>"
	fi
	# quiet guests: no IPv6 at all, little console output.
	cmdline="console=ttyS0 ipv6.disable=1 quiet loglevel=3 panic=-1 rdinit=/init"
	cmdline+=" mitigations=off nokaslr tf.vm=$vm tf.ping=$V_PING tf.sport=$UDP_SPORT"
	cmdline+=" tf.synsport=$SYN_SPORT tf.noroute=$NOROUTE_IP"
	[ -n "$V_HTTP" ] && cmdline+=" tf.http=$V_HTTP"
	[ -n "$V_UDP" ] && cmdline+=" tf.udp=$V_UDP"
	cat <<-EOF
		<domain type='qemu'>
		  <name>$vm</name>
		  <memory unit='MiB'>$VM_MEM_MIB</memory>
		  <vcpu>1</vcpu>
		  <os>
		    <type arch='x86_64' machine='pc'>hvm</type>
		    <kernel>$KERNEL</kernel>
		    <initrd>$STATE/initramfs.cpio.gz</initrd>
		    <cmdline>$cmdline</cmdline>
		  </os>
		  <features><acpi/></features>
		  <clock offset='utc'/>
		  <on_poweroff>destroy</on_poweroff>
		  <on_crash>destroy</on_crash>
		  <devices>
		    <emulator>/usr/bin/qemu-system-x86_64</emulator>
		    $nic
		      <mac address='$V_MAC'/>
		      <model type='virtio'/>
		      <rom enabled='no'/>
		    </interface>
		    <serial type='file'>
		      <source path='$STATE/vm/$vm.console.log'/>
		      <target port='0'/>
		    </serial>
		    <serial type='unix'>
		      <source mode='bind' path='$STATE/vm/$vm.ctl'/>
		      <target port='1'/>
		      <log file='$STATE/vm/$vm.ctl.log' append='on'/>
		    </serial>
		    <controller type='usb' model='none'/>
		    <memballoon model='none'/>
		  </devices>
		</domain>
	EOF
}

start_domains() {
	local vm
	mkdir -p "$STATE/vm"
	for vm in "${VMS[@]}"; do
		domain_xml "$vm" >"$STATE/vm/$vm.xml"
		vsh define "$STATE/vm/$vm.xml" >/dev/null
		vsh start "$vm" >/dev/null
	done
}

ready_line() { grep -a '^ready ' "$STATE/vm/$1.ctl.log" 2>/dev/null | tail -n 1 || true; }

wait_ready() {
	local t0=$SECONDS vm pending line
	while :; do
		pending=()
		for vm in "${VMS[@]}"; do
			[ -e "$STATE/vm/$vm.ready" ] && continue
			line=$(ready_line "$vm")
			if [ -n "$line" ]; then
				info "$vm ready after $((SECONDS - t0)) s: $line"
				echo "$line" >"$STATE/vm/$vm.ready"
			else
				pending+=("$vm")
			fi
			if grep -aq '^error ' "$STATE/vm/$vm.ctl.log" 2>/dev/null; then
				die "$vm: $(grep -a '^error ' "$STATE/vm/$vm.ctl.log" | tail -n 1)"
			fi
		done
		[ ${#pending[@]} -eq 0 ] && return 0
		if [ $((SECONDS - t0)) -ge "$UP_TIMEOUT" ]; then
			for vm in "${pending[@]}"; do
				info "$vm console (tail):"
				tail -n 15 "$STATE/vm/$vm.console.log" >&2 || true
			done
			die "timeout after $UP_TIMEOUT s waiting for: ${pending[*]}"
		fi
		sleep 1
	done
}

# Pin the host side's neighbour entry of every guest (the guests pin theirs
# at boot): no ARP probe ever falls into a measurement window.
pin_neighbours() {
	local vm
	for vm in "${VMS[@]}"; do
		vm_def "$vm"
		if [ "$V_MODE" = bridge ]; then
			ip -n "$LAN_NS" neigh replace "$V_IP" lladdr "$V_MAC" dev lan0 nud permanent
		else
			ip -n "$LAB_NS" neigh replace "$V_IP" lladdr "$V_MAC" dev "$V_BR" nud permanent
		fi
	done
}

# ------------------------------------------------------------------- health

healthy() {
	[ -e "$STATE/up" ] || return 1
	pid_alive "$(daemon_pid libvirtd)" || return 1
	pid_alive "$(daemon_pid virtlogd)" || return 1
	pid_alive "$(pidof_file "$STATE/pid/inet-server.ready")" || return 1
	pid_alive "$(pidof_file "$STATE/pid/lan-server.ready")" || return 1
	pid_alive "$(pidof_file "$STATE/pid/lan-dnsmasq.pid")" || return 1
	local running vm
	running=$(vsh list --name 2>/dev/null) || return 1
	for vm in "${VMS[@]}"; do
		grep -qx "$vm" <<<"$running" || return 1
		[ -e "$STATE/vm/$vm.ready" ] || return 1
	done
}

tap_of() { vsh domiflist "$1" 2>/dev/null | awk 'NR == 1 { print $1 }'; }

summary() {
	local vm
	echo "tapflow lab is up"
	echo "  libvirt URI : $URI"
	echo "                virsh -c \"\$(tools/lab/lab.sh uri)\" list"
	echo "  namespaces  : $LAB_NS (libvirtd, bridges, taps), $LAN_NS (LAN host $LAN_IP on br0),"
	echo "                $INET_NS (internet host $INET_IP: http :80 /1M, udp echo :7)"
	printf '  %-6s %-9s %-8s %-7s %-7s %-15s %s\n' VM network mode bridge tap IP MAC
	for vm in "${VMS[@]}"; do
		vm_def "$vm"
		printf '  %-6s %-9s %-8s %-7s %-7s %-15s %s\n' "$vm" "${V_NET:--}" "$V_MODE" \
			"$V_BR" "$(tap_of "$vm")" "$V_IP" "$V_MAC"
	done
	echo "  traffic     : tools/lab/lab.sh release alpha && tools/lab/lab.sh wait-done alpha"
	echo "  tear down   : tools/lab/lab.sh down"
}

# ------------------------------------------------------------------ commands

cmd_up() {
	need_root
	lock
	local why
	why=$(cmd_check) || die "cannot start the lab: $why"
	find_kernel
	if healthy; then
		summary
		return 0
	fi
	if [ -e "$STATE" ] || ns_exists "$LAB_NS" || ns_exists "$LAN_NS" || ns_exists "$INET_NS"; then
		info "a partial or broken lab is there: tearing it down first"
		do_down
	fi
	local t0=$SECONDS
	# A command that fails under set -e says which one, and where to look
	# (-E: also inside the functions below).
	set -E
	trap 'echo "lab.sh: up failed (line $LINENO: $BASH_COMMAND); logs in $STATE/log;" \
		"tools/lab/lab.sh up tries again, tools/lab/lab.sh down cleans up" >&2' ERR
	mkdir -p "$STATE"/{etc,run,lib,log,cache,sock,pid,vm}
	info "namespaces $LAB_NS, $LAN_NS, $INET_NS"
	setup_netns
	start_servers
	info "initramfs for kernel $KVER"
	build_initramfs
	info "virtlogd + libvirtd in $LAB_NS"
	start_daemons
	define_networks
	info "booting ${VMS[*]} (TCG)"
	start_domains
	wait_ready
	pin_neighbours
	touch "$STATE/up"
	info "up in $((SECONDS - t0)) s"
	summary
}

# kill_pid PID: TERM, wait up to 5 s, then KILL.
kill_pid() {
	local pid=$1 n
	pid_alive "$pid" || return 0
	kill "$pid" 2>/dev/null || true
	for ((n = 0; n < 50; n++)); do
		pid_alive "$pid" || return 0
		sleep 0.1
	done
	kill -9 "$pid" 2>/dev/null || true
}

do_down() {
	local vm net f pid ns pids=() left=()
	# Ask libvirt first: it removes its bridges, dnsmasq and iptables rules.
	if pid_alive "$(daemon_pid libvirtd)" && vsh version >/dev/null 2>&1; then
		# In parallel: stopping one TCG guest takes libvirt ~2 s.
		for vm in $(vsh list --all --name 2>/dev/null); do
			{ vsh destroy "$vm" >/dev/null 2>&1 || true
			  vsh undefine "$vm" >/dev/null 2>&1 || true; } &
		done
		wait
		for net in $(vsh net-list --all --name 2>/dev/null); do
			vsh net-destroy "$net" >/dev/null 2>&1 || true
			vsh net-undefine "$net" >/dev/null 2>&1 || true
		done
	fi
	# Then every process the lab started, by recorded pid: the daemons,
	# the servers, and whatever libvirt left (qemu, dnsmasq pid files).
	for f in "$STATE"/pid/libvirtd.pid "$STATE"/pid/virtlogd.pid \
		 "$STATE"/run/qemu/*.pid "$STATE"/run/network/*.pid \
		 "$STATE"/pid/*.pid "$STATE"/pid/*.ready; do
		[ -e "$f" ] || continue
		pid=$(pidof_file "$f")
		pids+=("$pid")
		kill_pid "$pid"
	done
	# A process still inside one of the lab's namespaces can only be one
	# that the lab started (or a tool run inside the lab); the namespaces
	# are going away, so end it too, by pid.
	for ns in "$LAB_NS" "$LAN_NS" "$INET_NS"; do
		ns_exists "$ns" || continue
		for pid in $(ip netns pids "$ns" 2>/dev/null); do
			info "ending pid $pid left in $ns: $(tr '\0' ' ' </proc/"$pid"/cmdline 2>/dev/null)"
			pids+=("$pid")
			kill_pid "$pid"
		done
		ip netns del "$ns" 2>/dev/null || true
	done
	rm -rf "$STATE"
	rm -f "$REG/$LAB_NS"
	local others=0
	for f in "$REG"/*; do
		[ -e "$f" ] && [ "${f##*/}" != created-dirs ] && others=1
	done
	if [ -d "$REG" ] && [ $others = 0 ]; then
		if [ -e "$REG/created-dirs" ]; then
			while read -r f; do rmdir "$f" 2>/dev/null || true; done <"$REG/created-dirs"
		fi
		rm -rf "$REG"
	fi
	# Say so if anything survived.
	for ns in "$LAB_NS" "$LAN_NS" "$INET_NS"; do
		ns_exists "$ns" && left+=("netns $ns")
	done
	for pid in "${pids[@]}"; do
		pid_alive "$pid" && left+=("pid $pid")
	done
	[ -e "$STATE" ] && left+=("$STATE")
	if [ ${#left[@]} -gt 0 ]; then
		echo "lab.sh: down left behind: ${left[*]}" >&2
		return 1
	fi
	return 0
}

cmd_down() {
	need_root
	lock
	local t0=$SECONDS
	do_down
	info "down in $((SECONDS - t0)) s"
}

cmd_status() {
	local ns vm d pid
	for ns in "$LAB_NS" "$LAN_NS" "$INET_NS"; do
		if ns_exists "$ns"; then echo "netns $ns: present"; else echo "netns $ns: absent"; fi
	done
	for d in libvirtd virtlogd lan-dnsmasq; do
		pid=$(pidof_file "$STATE/pid/$d.pid")
		if pid_alive "$pid"; then echo "$d: running (pid $pid)"; else echo "$d: not running"; fi
	done
	for d in inet-server lan-server; do
		pid=$(pidof_file "$STATE/pid/$d.ready")
		if pid_alive "$pid"; then echo "$d: running (pid $pid)"; else echo "$d: not running"; fi
	done
	if ! pid_alive "$(daemon_pid libvirtd)"; then
		echo "lab: down"
		return 1
	fi
	echo "uri: $URI"
	vsh net-list --all 2>/dev/null | sed 's/^/net: /'
	for vm in "${VMS[@]}"; do
		vm_def "$vm"
		printf 'vm %-6s %-9s tap %-7s %-15s %s\n' "$vm" \
			"$(vsh domstate "$vm" 2>/dev/null || echo absent)" \
			"$(tap_of "$vm")" "$V_IP" \
			"$(cat "$STATE/vm/$vm.ready" 2>/dev/null || echo 'not ready')"
	done
	if healthy; then echo "lab: up"; else echo "lab: not healthy"; return 1; fi
}

# Shell variables for tests: eval "$(tools/lab/lab.sh env)".
cmd_env() {
	local vm u
	echo "TF_LAB_NS=$LAB_NS"
	echo "TF_LAN_NS=$LAN_NS"
	echo "TF_INET_NS=$INET_NS"
	echo "TF_LAB_STATE=$STATE"
	echo "TF_LAB_URI='$URI'"
	echo "TF_LAB_VMS='${VMS[*]}'"
	echo "TF_LAB_INET_IP=$INET_IP"
	echo "TF_LAB_LAN_IP=$LAN_IP"
	echo "TF_LAB_UPLINK=uplink0"
	echo "TF_LAB_UPLINK_IP=$UPLINK_LAB"
	echo "TF_LAB_UDP_SPORT=$UDP_SPORT"
	echo "TF_LAB_SYN_SPORT=$SYN_SPORT"
	echo "TF_LAB_NOROUTE_NET=$NOROUTE_NET"
	echo "TF_LAB_NOROUTE_IP=$NOROUTE_IP"
	for vm in "${VMS[@]}"; do
		vm_def "$vm"
		u=${vm^^}
		echo "TF_LAB_${u}_IP=$V_IP"
		echo "TF_LAB_${u}_MAC=$V_MAC"
		echo "TF_LAB_${u}_NET=$V_NET"
		echo "TF_LAB_${u}_BRIDGE=$V_BR"
		echo "TF_LAB_${u}_MODE=$V_MODE"
		echo "TF_LAB_${u}_PING=$V_PING"
		echo "TF_LAB_${u}_HTTP=$V_HTTP"
		echo "TF_LAB_${u}_UDP=$V_UDP"
	done
}

done_count() { grep -ac '^done ' "$STATE/vm/$1.ctl.log" 2>/dev/null || true; }

# ctl_write SOCKET LINE: write LINE to a guest's control port. qemu takes a
# serial port's input from the socket only as fast as the guest drains the
# UART's receive FIFO (8 bytes at a time, then byte by byte), and a
# connection that closes drops what qemu has not read yet: a line longer
# than 8 bytes lost its end when the writer closed at once. So close only
# once qemu has read everything (SIOCOUTQ: bytes the peer has not read).
ctl_write() {
	python3 - "$1" "$2" <<-'EOF'
		import fcntl, socket, struct, sys, termios, time
		s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
		s.connect(sys.argv[1])
		s.sendall(sys.argv[2].encode())
		end = time.monotonic() + 30
		while struct.unpack("i", fcntl.ioctl(s, termios.TIOCOUTQ, bytes(4)))[0]:
		    if time.monotonic() > end:
		        sys.exit("qemu did not read the whole line in 30 s")
		    time.sleep(0.01)
		s.close()
	EOF
}

# Send "go SCRIPT" on the guest's control port (its second serial port, a
# unix socket of qemu's): nothing goes over the guest's NIC.
cmd_release() {
	local script=all vm want have
	if [ "${1:-}" = -s ]; then script=${2:-}; shift 2 || true; fi
	case $script in
	ping|http|udp|all|busyhttp|syn|ttl|noroute) ;;
	*) die "unknown script '$script' (ping, http, udp, all, busyhttp, syn, ttl or noroute)" ;;
	esac
	[ $# -gt 0 ] || die "usage: lab.sh release [-s ping|http|udp|all|busyhttp|syn|ttl|noroute] VM..."
	for vm in "$@"; do
		vm_def "$vm"
		[ -S "$STATE/vm/$vm.ctl" ] || die "$vm: no control socket (is the lab up?)"
		have=$(done_count "$vm")
		want=$(cat "$STATE/vm/$vm.want" 2>/dev/null || echo 0)
		[ "$want" -gt "$have" ] || want=$have
		ctl_write "$STATE/vm/$vm.ctl" "go $script"$'\n' ||
			die "$vm: cannot write to $STATE/vm/$vm.ctl"
		# Only now: a "go" that was never sent must not be waited for.
		echo $((want + 1)) >"$STATE/vm/$vm.want"
	done
}

# Wait until every released run of these guests printed "done"; print the
# last done line of each. Exit 1 on timeout.
cmd_wait_done() {
	local timeout=120 vms=() vm t0=$SECONDS want left
	for vm in "$@"; do
		if [[ $vm =~ ^[0-9]+$ ]]; then timeout=$vm; else vms+=("$vm"); fi
	done
	[ ${#vms[@]} -gt 0 ] || die "usage: lab.sh wait-done VM... [TIMEOUT]"
	while :; do
		left=()
		for vm in "${vms[@]}"; do
			want=$(cat "$STATE/vm/$vm.want" 2>/dev/null || echo 0)
			[ "$(done_count "$vm")" -ge "$want" ] || left+=("$vm")
		done
		[ ${#left[@]} -eq 0 ] && break
		[ $((SECONDS - t0)) -lt "$timeout" ] ||
			die "timeout after $timeout s waiting for: ${left[*]}"
		sleep 0.2
	done
	for vm in "${vms[@]}"; do
		grep -a '^done ' "$STATE/vm/$vm.ctl.log" | tail -n 1 | tr -d '\r'
	done
}

# libvirtd stopped (SIGTERM, by its pid file) and started again in a new
# private mount namespace like the first; the guests and networks run on,
# and libvirtd finds them again, as after a package upgrade.
cmd_restart_libvirtd() {
	local pid n
	pid=$(daemon_pid libvirtd)
	pid_alive "$pid" || die "libvirtd is not running"
	kill -TERM "$pid"
	for ((n = 0; n < 300; n++)); do
		pid_alive "$pid" || break
		sleep 0.1
	done
	pid_alive "$pid" && die "libvirtd (pid $pid) did not stop"
	ip netns exec "$LAB_NS" unshare -m --propagation private \
		"$HERE/nsdaemons.sh" "$STATE" libvirtd 9<&- ||
		die "libvirtd failed to start again (see $STATE/log/libvirtd.log)"
	for ((n = 0; n < 300; n++)); do
		vsh version >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	die "libvirtd is not answering on $SOCK after its restart"
}

case ${1:-} in
up) cmd_up ;;
restart-libvirtd) cmd_restart_libvirtd ;;
down) cmd_down ;;
status) cmd_status ;;
uri) echo "$URI" ;;
env) cmd_env ;;
check) cmd_check ;;
release) shift; cmd_release "$@" ;;
wait-done) shift; cmd_wait_done "$@" ;;
*) echo "usage: lab.sh up|down|status|uri|env|check|release [-s SCRIPT] VM...|wait-done VM... [TIMEOUT]|restart-libvirtd" >&2
   exit 2 ;;
esac
