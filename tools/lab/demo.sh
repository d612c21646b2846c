#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# What `make demo` runs once tapflow is built: bring the lab up, keep the
# guests' scripted traffic going in the background (so that the numbers
# move), show tapflow's live per-VM stats for 30 s, then say how to go on.
#
#   tools/lab/demo.sh           (DEMO_SECONDS=N to watch longer)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LAB=$ROOT/tools/lab/lab.sh
TAPFLOW=${TAPFLOW:-$ROOT/.output/tapflow}
SECONDS_TO_RUN=${DEMO_SECONDS:-30}

die() { echo "demo: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "run as root (the lab runs libvirtd in network namespaces)"
[ -x "$TAPFLOW" ] || die "$TAPFLOW is not built: run make"

"$LAB" up
eval "$("$LAB" env)"

# Release every guest's script (ping, 1 MiB HTTP download, UDP echo), wait
# for it, pause, again. Each step runs in the background and is waited for,
# so that the TERM at exit ends the loop at once, children included.
traffic_loop() {
	# Reap the killed children too: nobody else would (PID 1 may not).
	trap 'kill $(jobs -p) 2>/dev/null; wait; exit 0' TERM
	while :; do
		"$LAB" release $TF_LAB_VMS >/dev/null 2>&1 &
		wait $! || exit 0
		"$LAB" wait-done $TF_LAB_VMS 120 >/dev/null 2>&1 &
		wait $! || true
		sleep 2 &
		wait $!
	done
}
traffic_loop &
loop=$!
stop_loop() {
	kill "$loop" 2>/dev/null || true
	wait "$loop" 2>/dev/null || true
}
trap stop_loop EXIT

uri_cmd='"$(tools/lab/lab.sh uri)"'
echo
echo "== tapflow --netns $TF_LAB_NS -c $uri_cmd stats -d $SECONDS_TO_RUN"
echo "   (the guests' traffic runs in a loop; Ctrl-C stops early)"
echo
rc=0
"$TAPFLOW" --netns "$TF_LAB_NS" -c "$TF_LAB_URI" stats -d "$SECONDS_TO_RUN" || rc=$?
stop_loop

cat <<EOF

The lab is still up (guests: $TF_LAB_VMS). Go on with:
  .output/tapflow --netns $TF_LAB_NS -c $uri_cmd list
  .output/tapflow --netns $TF_LAB_NS -c $uri_cmd stats -i 1         (Ctrl-C to stop)
  tools/lab/lab.sh release alpha; tools/lab/lab.sh wait-done alpha   (one scripted run)
  virsh -c $uri_cmd domifstat alpha \$(virsh -q -c $uri_cmd domiflist alpha | awk '{print \$1}')
  tools/lab/lab.sh status
When done, remove everything the lab started:
  tools/lab/lab.sh down
EOF
exit "$rc"
