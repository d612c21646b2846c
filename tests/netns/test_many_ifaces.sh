#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# tapflow flows over many interfaces at once: 64 veth pairs, scripted
# frames of known count and size both ways on each, and every interface's
# final flow records must be exactly its own flows, in the JSON records
# and in the table. The flows of all the interfaces have the same
# addresses and ports (only the interface tells them apart) and different
# counts and sizes, so that a flow reported on the wrong interface, twice,
# or not at all changes what is compared.
#
#   TF_MANY_IFACES=N tests/netns/test_many_ifaces.sh    (default 64)
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/topo.sh"
N=${TF_MANY_IFACES:-64}

netns_test_begin "netns many interfaces" many jq python3

tf_netns NSH many-h && tf_netns NSP many-p ||
	{ tf_fail "namespaces" "cannot create them"; tf_finish; }
# Nothing but the scripted frames: no IPv6 autoconf or DAD on the veths.
for ns in "$NSH" "$NSP"; do
	ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
		net.ipv6.conf.default.disable_ipv6=1 >/dev/null
done
for ((i = 0; i < N; i++)); do
	echo "link add va$i type veth peer name vb$i netns $NSP"
	echo "link set va$i up"
done >"$OUT/links"
for ((i = 0; i < N; i++)); do echo "link set vb$i up"; done >"$OUT/peer-links"
ip -n "$NSH" -batch "$OUT/links" && ip -n "$NSP" -batch "$OUT/peer-links"
tf_eq "$N veth pairs" 0 $?

# The traffic of interface i: flows f = 0 .. i % 3, each UDP between
# 10.66.0.2:4000+f (behind the interface) and 10.66.0.1:9; frames of 60 + i
# bytes, 1 + (i + 2f) % 5 of them received by va<i>, (3i + f) % 4 sent.
cat >"$OUT/many.py" <<'EOF'
import socket, sys
sys.path.insert(0, sys.argv[1])
from tfframes import frame

mode, n = sys.argv[2], int(sys.argv[3])
for i in range(n):
    size = 60 + i
    for f in range(i % 3 + 1):
        rx, tx = 1 + (i + 2 * f) % 5, (3 * i + f) % 4
        if mode == "expect":
            print("va%d %d %d %d %d %d" % (i, 4000 + f, rx, rx * size, tx, tx * size))
            continue
        # "in": written into vb<i>, received by va<i>; "out": sent by va<i>.
        dev, count = ("vb%d" % i, rx) if mode == "in" else ("va%d" % i, tx)
        args = (["10.66.0.2", "%d" % (4000 + f), "10.66.0.1", "9"] if mode == "in" else
                ["10.66.0.1", "9", "10.66.0.2", "%d" % (4000 + f)])
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        s.bind((dev, 0))
        for seq in range(count):
            s.send(frame("02:66:00:00:00:02", "02:66:00:00:00:01", size, "udp4", args, seq))
        s.close()
EOF
python3 "$OUT/many.py" "$TOPO_DIR" expect "$N" | sort >"$OUT/expected"

IFACES=()
for ((i = 0; i < N; i++)); do IFACES+=(--iface "va$i"); done
tf_start many "${IFACES[@]}" --no-drops --json flows -i 0.5
MANY=$TF_PID
# The table at the same time (the 20 biggest flows of each interface).
tf_start many_table "${IFACES[@]}" --no-drops flows -i 0.5
TABLE=$TF_PID
wait_attached $MANY "$N" 30 || tf_diag "not attached: $(head -5 "$OUT/many.err")"
wait_attached $TABLE "$N" 30 || tf_diag "not attached: $(head -5 "$OUT/many_table.err")"
ip netns exec "$NSP" python3 "$OUT/many.py" "$TOPO_DIR" in "$N" &&
	ip netns exec "$NSH" python3 "$OUT/many.py" "$TOPO_DIR" out "$N"
tf_eq "frames sent on $N interfaces" 0 $?
sleep 0.3
tf_stop $MANY INT
tf_eq "JSON: exit code" 0 "$RC"
tf_stop $TABLE INT
tf_eq "table: exit code" 0 "$RC"

# Every final flow record (not the aggregates), in the form of expected.
jq -r 'select(.type == "flow" and .final and .aggregate == null) |
	"\(.ifname) \([.local_port, .remote_port] | max) \(.rx_packets) \(.rx_bytes) \(.tx_packets) \(.tx_bytes)"' \
	"$OUT/many.out" | sort >"$OUT/got"
if cmp -s "$OUT/expected" "$OUT/got"; then
	tf_ok "JSON: every interface's flows exactly ($(wc -l <"$OUT/got") flows)"
else
	tf_fail "JSON: every interface's flows exactly" \
		"$(diff "$OUT/expected" "$OUT/got" | head -10 | tr '\n' ';')"
fi
tf_eq "JSON: every interface has its aggregates" "$N" \
	"$(jq -r 'select(.type == "flow" and .final and .aggregate == "overflow") | .ifname' \
		"$OUT/many.out" | sort -u | wc -l)"
tf_eq "JSON: nothing in any aggregate" 0 \
	"$(jq -s '[.[] | select(.type == "flow" and .final and .aggregate != null) |
		.rx_packets + .tx_packets] | add' "$OUT/many.out")"
# The table's final report: each interface's UDP flows, one line each.
awk '/^final report/ { f = 1; next } f && $1 == "-" && $3 == "udp" { n[$2]++ }
	END { for (i in n) print i, n[i] }' "$OUT/many_table.out" | sort >"$OUT/got_table"
awk '{ n[$1]++ } END { for (i in n) print i, n[i] }' "$OUT/expected" | sort >"$OUT/expected_table"
if cmp -s "$OUT/expected_table" "$OUT/got_table"; then
	tf_ok "table: every interface's flows, one line each"
else
	tf_fail "table: every interface's flows, one line each" \
		"$(diff "$OUT/expected_table" "$OUT/got_table" | head -10 | tr '\n' ';')"
fi
tf_eq "nothing on stderr" "" "$(cat "$OUT/many.err" "$OUT/many_table.err")"
tf_finish
