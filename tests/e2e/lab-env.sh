# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash disable=SC2034
# The real libvirt lab for the e2e tests (source it after tests/lib.sh).
#
#   . "$(dirname "$0")/../lib.sh"; . "$(dirname "$0")/lab-env.sh"
#   tf_lab_up "my test" || tf_finish   # skip (or fail) when the lab cannot run
#   before=$(tf_lab_ifstat alpha); tf_lab_run alpha ping; after=...
#
# One lab serves the whole suite: tf_lab_up reuses a healthy lab and only a
# test that had to bring the lab up itself takes it down at exit. So the
# suite brings it up once when run.sh calls "tests/e2e/lab-suite.sh begin"
# before the e2e tests and "... end" after them; a test run alone brings it
# up and down by itself. TF_LAB_KEEP=1 keeps a lab a test started (to look
# at it, or to run tests one by one against the same lab).

TF_LAB_SH=${TF_LAB_SH:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/tools/lab/lab.sh}
TF_LAB_STARTED=0

# tf_lab_up NAME: make sure the lab is up and load its names and addresses
# (TF_LAB_URI, TF_LAB_NS, TF_LAB_VMS, TF_LAB_ALPHA_IP, ...: see
# "tools/lab/lab.sh env") and report NAME ok. Returns 1 after reporting NAME
# as skipped (this machine cannot run the lab: "needs root", "missing: ...")
# or as failed (up failed, its output follows as diagnostics): the caller
# then ends with tf_finish.
tf_lab_up() {
	local name=${1:-lab up} why log
	if [ "$(id -u)" -ne 0 ]; then
		tf_skip "$name" "needs root"
		return 1
	fi
	if ! why=$("$TF_LAB_SH" check 2>&1); then
		tf_skip "$name" "$why"
		return 1
	fi
	if "$TF_LAB_SH" status >/dev/null 2>&1; then
		tf_diag "reusing the lab that is up"
	else
		log=$(mktemp)
		TF_LAB_STARTED=1
		[ "${TF_LAB_KEEP:-0}" = 1 ] || tf_on_exit "'$TF_LAB_SH' down"
		if ! "$TF_LAB_SH" up >"$log" 2>&1; then
			tf_fail "$name" "tools/lab/lab.sh up failed:"
			sed 's/^/# /' "$log"
			rm -f "$log"
			return 1
		fi
		sed -n 's/^lab: \(up in .*\)/# lab \1/p' "$log"
		rm -f "$log"
	fi
	eval "$("$TF_LAB_SH" env)"
	tf_ok "$name"
}

tf_lab_virsh() { virsh -q -c "$TF_LAB_URI" "$@"; }

# tf_lab_blank_xml NAME NETWORK MAC [UUID]: the XML of a domain that boots
# nothing (no disk, no kernel, no option ROM: SeaBIOS finds nothing to boot
# and sends nothing), with one NIC on the libvirt network NETWORK; its tap
# is up within a second under TCG.
tf_lab_blank_xml() {
	cat <<-EOF
	<domain type='qemu'>
	  <name>$1</name>${4:+<uuid>$4</uuid>}
	  <memory unit='MiB'>32</memory>
	  <vcpu>1</vcpu>
	  <os><type arch='x86_64' machine='pc'>hvm</type></os>
	  <devices>
	    <emulator>/usr/bin/qemu-system-x86_64</emulator>
	    <interface type='network'>
	      <source network='$2'/>
	      <mac address='$3'/>
	      <model type='virtio'/>
	      <rom enabled='no'/>
	    </interface>
	    <controller type='usb' model='none'/>
	    <memballoon model='none'/>
	  </devices>
	</domain>
	EOF
}

# tf_lab_tap VM: the VM's (first) tap in the lab namespace.
tf_lab_tap() { tf_lab_virsh domiflist "$1" | awk 'NR == 1 { print $1 }'; }

# tf_lab_ifstat VM: "rx_packets rx_bytes tx_packets tx_bytes" of the VM's tap
# as virsh domifstat reports them (the VM's point of view).
tf_lab_ifstat() {
	tf_lab_virsh domifstat "$1" "$(tf_lab_tap "$1")" |
		awk '{ v[$2] = $3 } END { print v["rx_packets"], v["rx_bytes"], v["tx_packets"], v["tx_bytes"] }'
}

# tf_lab_delta BEFORE AFTER: field-wise AFTER - BEFORE of two tf_lab_ifstat lines.
tf_lab_delta() {
	local -a b a
	read -ra b <<<"$1"
	read -ra a <<<"$2"
	echo $((a[0] - b[0])) $((a[1] - b[1])) $((a[2] - b[2])) $((a[3] - b[3]))
}

# tf_lab_run VM [SCRIPT] [TIMEOUT]: run the guest's scripted traffic once
# (ping|http|udp|all) and print its "done ..." line; returns when the run's
# last packet has passed.
tf_lab_run() {
	"$TF_LAB_SH" release -s "${2:-all}" "$1" && "$TF_LAB_SH" wait-done "$1" "${3:-120}"
}

# tf_lab_agree NAME WANT GOT: GOT's 4 counters within 0.5 % or 5 packets (bytes: 0.5 % or 5 x 1514) of WANT's.
tf_lab_agree() {
	local name=$1 k slack min d
	local -a w g
	read -ra w <<<"$2"; read -ra g <<<"$3"
	for k in 0 1 2 3; do
		slack=$(( w[k] / 200 )) min=$(( k % 2 ? 5 * 1514 : 5 ))
		[ $slack -lt $min ] && slack=$min
		d=$(( g[k] - w[k] ))
		if [ ${d#-} -gt $slack ]; then
			tf_fail "$name" "domifstat $2, tapflow $3"
			return
		fi
	done
	tf_ok "$name ($3 vs $2)"
}

# tf_lab_pids: every pid the lab recorded (daemons, servers, qemu, dnsmasq).
# (libvirt's pid files end without a newline: read them one by one.)
tf_lab_pids() {
	local f
	for f in "$TF_LAB_STATE"/pid/*.pid "$TF_LAB_STATE"/pid/*.ready \
		 "$TF_LAB_STATE"/run/qemu/*.pid "$TF_LAB_STATE"/run/network/*.pid; do
		[ -s "$f" ] && echo "$(tr -dc '0-9' <"$f")"
	done | sort -u
}

# tf_lab_begin NAME: what every tapflow e2e test starts with: root, the lab
# up (else NAME is reported skipped or failed and the test ends), a scratch
# dir $TMP removed at exit, and TF: tapflow run against the lab (tf ARGS...).
tf_lab_begin() {
	tf_need_root "$1"
	tf_lab_up "$1" || tf_finish
	TMP=$(mktemp -d)
	tf_on_exit "rm -rf $TMP"
	TF=("$TAPFLOW" --netns "$TF_LAB_NS" -c "$TF_LAB_URI")
}
tf() { "${TF[@]}" "$@"; }

# tf_wait_record FILE TYPE: wait (10 s at most) until a tapflow run in the
# background wrote its first TYPE record into FILE: it has attached.
tf_wait_record() {
	local i
	for ((i = 0; i < 100; i++)); do
		grep -q "\"type\":\"$2\"" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# tf_lab_no_hook_left STATS_JSON: for every device in the final stats
# records, no tapflow clsact filter and no tapflow TCX program is left.
# Checked per device, not machine-wide, so that another tapflow elsewhere
# on the machine does not matter.
tf_lab_no_hook_left() {
	local dev left
	for dev in $(jq -r 'select(.type == "stats" and .final) | .ifname' "$1" | sort -u); do
		left=$( (for d in ingress egress; do
			ip netns exec "$TF_LAB_NS" tc filter show dev "$dev" $d 2>/dev/null
		done; ip netns exec "$TF_LAB_NS" python3 "$TF_LAB_TFNET" tcx "$dev" 2>/dev/null) |
			grep -c ' tf_')
		tf_eq "no tapflow hook left on $dev" 0 "$left"
	done
}
TF_LAB_TFNET=$(cd "$(dirname "${BASH_SOURCE[0]}")/../netns" && pwd)/tfnet.py
