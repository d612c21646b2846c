# SPDX-License-Identifier: GPL-2.0
# Helpers for the shell tests (source it). Each test prints TAP lines and
# cleans up what it created, also on failure (EXIT trap).

TAPFLOW=${TAPFLOW:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.output/tapflow-asan}
TF_FAILED=0
# Unique per test run, so parallel or leftover runs never collide.
TF_ID=${TF_ID:-$$}
TF_CLEANUPS=()

tf_ok()   { echo "ok - $1"; }
tf_fail() { echo "not ok - $1"; shift; [ $# -gt 0 ] && echo "# $*"; TF_FAILED=1; }
tf_skip() { echo "ok - $1 # SKIP $2"; }
tf_diag() { echo "# $*"; }

# tf_check NAME COND_CMD...: ok if the command succeeds.
tf_check() {
	local name=$1; shift
	if "$@"; then tf_ok "$name"; else tf_fail "$name" "failed: $*"; fi
}

# tf_eq NAME EXPECTED ACTUAL
tf_eq() {
	if [ "$2" == "$3" ]; then tf_ok "$1"
	else tf_fail "$1" "expected '$2', got '$3'"; fi
}

# tf_within NAME EXPECTED ACTUAL ABS_TOL
tf_within() {
	local d=$(( $3 - $2 )); d=${d#-}
	if [ "$d" -le "$4" ]; then tf_ok "$1 ($3 vs $2)"
	else tf_fail "$1" "expected $2 +- $4, got $3"; fi
}

# Register a cleanup command; run in reverse order at exit.
tf_on_exit() { TF_CLEANUPS+=("$*"); }
tf_cleanup() {
	local i
	for ((i = ${#TF_CLEANUPS[@]} - 1; i >= 0; i--)); do
		eval "${TF_CLEANUPS[$i]}" >/dev/null 2>&1 || true
	done
	TF_CLEANUPS=()
}
trap 'tf_cleanup' EXIT
trap 'exit 130' INT TERM

tf_need_root() {
	if [ "$(id -u)" -ne 0 ]; then tf_skip "$1" "needs root"; exit 0; fi
}

# tf_need_tools NAME TOOL...: skip (exit 0) unless every TOOL is on PATH.
tf_need_tools() {
	local name=$1 tool
	shift
	for tool in "$@"; do
		command -v "$tool" >/dev/null || { tf_skip "$name" "needs $tool"; exit 0; }
	done
}

# tf_netns VAR NAME: create namespace tft<id>-NAME, removed at exit, and
# store its name in VAR (not via $(...): the cleanup must be registered in
# this shell, not in a subshell).
tf_netns() {
	local ns="tft$TF_ID-$2"
	ip netns add "$ns" || return 1
	tf_on_exit "ip netns del $ns"
	ip -n "$ns" link set lo up
	printf -v "$1" '%s' "$ns"
}

tf_finish() { exit $TF_FAILED; }
