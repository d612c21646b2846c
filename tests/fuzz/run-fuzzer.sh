#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# One libFuzzer harness, TAP on stdout: each regression case of
# tests/fuzz/corpus/NAME/ once ("ok - NAME: CASE"), then fuzzing for
# TF_FUZZ_SECONDS (default 35) from that corpus. A crash is "not ok" with
# the path of its input (.output/fuzz/artifacts/NAME/): once fixed, commit
# it to the corpus as a regression case. What fuzzing adds to the corpus
# goes to .output/fuzz/corpus/NAME/, never into the source tree.
#
#   tests/fuzz/run-fuzzer.sh fuzz_domxml
set -uo pipefail
shopt -s nullglob
cd "$(dirname "$0")/../.."

name=${1:?usage: run-fuzzer.sh NAME}
bin=.output/fuzz/$name
seeds=tests/fuzz/corpus/$name
work=.output/fuzz/corpus/$name
art=.output/fuzz/artifacts/$name
dict=tests/fuzz/${name#fuzz_}.dict
secs=${TF_FUZZ_SECONDS:-35}
# Generous: the machine is shared, and a slow input is a finding only when
# it is really stuck.
opts=(-timeout=30 -rss_limit_mb=2048)
[ -f "$dict" ] && opts+=(-dict="$dict")

skip_reason() {
	local probe=.output/fuzz/probe-$$

	if ! command -v "${CLANG:-clang}" >/dev/null; then
		echo "no ${CLANG:-clang}"
	elif ! printf 'int LLVMFuzzerTestOneInput(const char *d, long n) { return 0; }' |
		"${CLANG:-clang}" -fsanitize=fuzzer -x c - -o "$probe" 2>/dev/null; then
		echo "clang cannot link -fsanitize=fuzzer (no libFuzzer runtime:" \
		     "tools/deps.sh installs libclang-rt-dev)"
	else
		echo "$bin not built (make fuzz)"
	fi
	rm -f "$probe"
}

if [ ! -x "$bin" ]; then
	mkdir -p .output/fuzz
	echo "ok - $name # SKIP $(skip_reason)"
	exit 0
fi
mkdir -p "$work" "$art"
log=$(mktemp .output/fuzz/$name.XXXXXX.log)
trap 'rm -f "$log"' EXIT

# What a failure said, as TAP comments: the check or sanitizer, the top frames.
show_failure() {
	failed=1
	grep -E 'check failed|ERROR:|SUMMARY:|^ *#[0-9]+ ' "$1" | head -n 12 |
		sed 's/ (BuildId: [0-9a-f]*)//; s/^/# /'
}
failed=0

# Every case in one process (starting one costs more than the cases); it
# stops at a failing case, so go on from the case after it.
cases=("$seeds"/*)
i=0
while [ "$i" -lt "${#cases[@]}" ]; do
	"$bin" "${opts[@]}" "${cases[@]:$i}" >"$log" 2>&1
	rc=$?
	while read -r f; do
		echo "ok - $name: $(basename "$f")"
		i=$((i + 1))
	done < <(sed -n 's/^Executed \(.*\) in [0-9]* ms$/\1/p' "$log")
	[ "$rc" -eq 0 ] && continue
	if [ "$i" -lt "${#cases[@]}" ]; then
		echo "not ok - $name: $(basename "${cases[$i]}")"
	else
		echo "not ok - $name: regression cases exited $rc (a leak?)"
	fi
	show_failure "$log"
	i=$((i + 1))
done

"$bin" "${opts[@]}" -max_total_time="$secs" -print_final_stats=1 \
	-artifact_prefix="$art/" "$work" "$seeds" >"$log" 2>&1
rc=$?
final_stat() { sed -n "s/^stat::$1: *//p" "$log"; }
if [ "$rc" -eq 0 ]; then
	done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1)
	echo "# $name: $(final_stat number_of_executed_units) runs," \
	     "$(final_stat average_exec_per_sec) exec/s, $(final_stat new_units_added)" \
	     "new inputs; ${done_line#*DONE   }"
	echo "ok - $name: fuzzing ${secs} s"
else
	artifact=$(sed -n 's/.*Test unit written to //p' "$log" | tail -n 1)
	echo "not ok - $name: fuzzing found a failure: ${artifact:-no input saved (exit $rc)}"
	show_failure "$log"
fi
exit "$failed"
