#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# End to end in the real libvirt lab: `tapflow list` shows every VM with the
# right tap, MAC, network, bridge and mode; the bridge-FDB check passes, and
# catches a VM MAC spoofed from another bridge port and a tap whose MAC is
# not the fe:.. form. Also --vm selection and an unknown VM.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"
. "$HERE/lab-env.sh"

tf_lab_begin e2e-list
field() { jq -r --arg vm "$2" "select(.vm == \$vm) | .$1" "$3"; }

tf --json list >"$TMP/list.json" 2>"$TMP/err"
tf_eq "list --json exits 0" 0 $?
tf_eq "list prints nothing on stderr" "" "$(cat "$TMP/err")"

for vm in $TF_LAB_VMS; do
	u=${vm^^}
	mac=TF_LAB_${u}_MAC net=TF_LAB_${u}_NET br=TF_LAB_${u}_BRIDGE mode=TF_LAB_${u}_MODE
	tap=$(field ifname "$vm" "$TMP/list.json")
	tf_eq "$vm: one record" 1 "$(jq -r --arg vm "$vm" 'select(.vm == $vm) | .vm' "$TMP/list.json" | wc -l)"
	tf_eq "$vm: tap = virsh domiflist" "$(tf_lab_virsh domiflist "$vm" | awk 'NF { print $1 }')" "$tap"
	tf_eq "$vm: ifindex = the tap's in the lab namespace" \
		"$(ip -n "$TF_LAB_NS" -j link show dev "$tap" | jq -r '.[0].ifindex')" \
		"$(field ifindex "$vm" "$TMP/list.json")"
	tf_eq "$vm: mac" "${!mac}" "$(field mac "$vm" "$TMP/list.json")"
	tf_eq "$vm: network" "${!net:-null}" "$(field network "$vm" "$TMP/list.json")"
	tf_eq "$vm: bridge" "${!br}" "$(field bridge "$vm" "$TMP/list.json")"
	tf_eq "$vm: bridge = the tap's master" \
		"$(ip -n "$TF_LAB_NS" -j link show dev "$tap" | jq -r '.[0].master')" \
		"$(field bridge "$vm" "$TMP/list.json")"
	tf_eq "$vm: mode" "${!mode}" "$(field mode "$vm" "$TMP/list.json")"
	tf_eq "$vm: uuid = virsh domuuid" "$(tf_lab_virsh domuuid "$vm")" "$(field uuid "$vm" "$TMP/list.json")"
	tf_eq "$vm: tap MAC is the fe: form" true "$(field tap_mac_ok "$vm" "$TMP/list.json")"
	# The guests pinged at boot and the lab pins nothing in the FDB: the
	# bridge really learned each VM MAC on its tap.
	tf_eq "$vm: FDB learned on its own tap" ok "$(field fdb "$vm" "$TMP/list.json")"
	tf_eq "$vm: not attached (no tapflow running)" false "$(field attached "$vm" "$TMP/list.json")"
done

tf list >"$TMP/list.txt" 2>&1
tf_eq "table list exits 0" 0 $?
tf_eq "table: header + one row per VM" $(( $(wc -w <<<"$TF_LAB_VMS") + 1 )) "$(wc -l <"$TMP/list.txt")"
sed 's/^/# /' "$TMP/list.txt"

# Spoofing: a host on the public bridge's LAN sends one frame with gamma's
# MAC as source; br0 now learns it on the LAN port, not on gamma's tap.
vm=gamma
gmac=$TF_LAB_GAMMA_MAC
gtap=$(field ifname $vm "$TMP/list.json")
lan_if=$(ip -n "$TF_LAN_NS" -j link show | jq -r '[.[] | select(.link_type == "ether" and .ifname != "lo")][0].ifname')
ip netns exec "$TF_LAN_NS" python3 - "$lan_if" "$gmac" <<'PY'
import socket, sys
ifname, mac = sys.argv[1], bytes.fromhex(sys.argv[2].replace(":", ""))
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((ifname, 0))
# Broadcast, ethertype 0x88b5 (IEEE local experimental): nobody answers it.
s.send(b"\xff" * 6 + mac + b"\x88\xb5" + b"tapflow-spoof-test".ljust(46, b"\0"))
PY
port=$(ip -n "$TF_LAB_NS" -j link show | jq -r --arg br "$TF_LAB_GAMMA_BRIDGE" --arg tap "$gtap" \
	'[.[] | select(.master == $br and .ifname != $tap)][0].ifname')
tf --json list >"$TMP/spoof.json" 2>/dev/null
tf_eq "spoofed: gamma's FDB state" other_port "$(field fdb $vm "$TMP/spoof.json")"
tf_eq "spoofed: learned on the LAN port" "$port" "$(field fdb_port $vm "$TMP/spoof.json")"
tf_eq "spoofed: other VMs still ok" "" \
	"$(jq -r 'select(.vm != "gamma" and .fdb != "ok") | .vm' "$TMP/spoof.json")"
tf list >"$TMP/spoof.txt" 2>&1
tf_check "spoofed: table warns about gamma" \
	grep -q "warning: gamma: MAC $gmac is learned on bridge port $port" "$TMP/spoof.txt"

# gamma speaks again: the bridge moves its MAC back to the tap.
"$TF_LAB_SH" release -s ping gamma && "$TF_LAB_SH" wait-done gamma 60 >/dev/null
tf --json list >"$TMP/back.json" 2>/dev/null
tf_eq "after gamma sends: FDB ok again" ok "$(field fdb $vm "$TMP/back.json")"

# A tap whose MAC is not the fe: form of the VM's MAC.
orig=$(ip -n "$TF_LAB_NS" -j link show dev "$gtap" | jq -r '.[0].address')
tf_on_exit "ip -n $TF_LAB_NS link set dev $gtap address $orig"
ip -n "$TF_LAB_NS" link set dev "$gtap" address 02:00:00:00:00:99
tf --json list >"$TMP/tapmac.json" 2>/dev/null
tf_eq "tap MAC changed: tap_mac_ok false" false "$(field tap_mac_ok $vm "$TMP/tapmac.json")"
tf list 2>&1 | grep -q "warning: gamma: tap $gtap does not carry the fe:.. form"
tf_eq "tap MAC changed: table warns" 0 $?
ip -n "$TF_LAB_NS" link set dev "$gtap" address "$orig"

# --vm selects; an unknown VM is one clear line and exit 1.
tf_eq "--vm alpha lists only alpha" alpha \
	"$(tf --json list --vm alpha | jq -r .vm | sort -u | tr '\n' ' ' | sed 's/ $//')"
tf_eq "--vm by UUID" alpha \
	"$(tf --json list --vm "$(tf_lab_virsh domuuid alpha)" | jq -r .vm | sort -u)"
tf stats --vm no-such-vm -d 1 >"$TMP/out" 2>"$TMP/err"
tf_eq "unknown VM: exit 1" 1 $?
tf_eq "unknown VM: one line on stderr" 1 "$(wc -l <"$TMP/err")"
tf_check "unknown VM: names it" grep -q "^tapflow: no running VM named 'no-such-vm'" "$TMP/err"
tf_eq "unknown VM: nothing on stdout" "" "$(cat "$TMP/out")"
tf_finish
