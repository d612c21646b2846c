#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Bring the lab up once for the whole e2e suite (tests/run.sh calls it):
#
#   tests/e2e/lab-suite.sh begin   # up, unless a lab is already up
#   ... every tests/e2e/test_*.sh (they reuse the lab: tf_lab_up) ...
#   tests/e2e/lab-suite.sh end     # down, only if begin brought it up
#
# "end" checks that down left nothing and says so in TAP; it exits 1 if
# something was left. A lab that was up before "begin" (a developer's, or
# TF_LAB_KEEP=1) is left alone. Nothing happens on a machine that cannot run
# the lab: the tests report their own skips.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
LAB=$HERE/../../tools/lab/lab.sh
STATE=${TF_LAB_STATE:-/run/tapflow-lab}
MARK=$STATE.suite

case ${1:-} in
begin)
	[ "$(id -u)" -eq 0 ] || exit 0
	"$LAB" check >/dev/null 2>&1 || exit 0
	"$LAB" status >/dev/null 2>&1 && exit 0
	t0=$SECONDS
	if "$LAB" up >/dev/null 2>"$STATE.up.log"; then
		touch "$MARK"
		echo "# e2e: lab up in $((SECONDS - t0)) s"
		rm -f "$STATE.up.log"
	else
		# The tests will try again and report the failure themselves.
		echo "# e2e: lab up failed:"
		sed 's/^/#   /' "$STATE.up.log"
		rm -f "$STATE.up.log"
	fi
	;;
end)
	[ -e "$MARK" ] || exit 0
	rm -f "$MARK"
	if [ "${TF_LAB_KEEP:-0}" = 1 ]; then
		echo "# e2e: lab kept up (TF_LAB_KEEP=1): tools/lab/lab.sh down"
		exit 0
	fi
	if out=$("$LAB" down 2>&1); then
		echo "ok - e2e lab down leaves nothing"
	else
		echo "not ok - e2e lab down leaves nothing"
		sed 's/^/# /' <<<"$out"
		exit 1
	fi
	;;
*)
	echo "usage: lab-suite.sh begin|end" >&2
	exit 2
	;;
esac
