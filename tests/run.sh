#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Run every test and end with "N passed, N failed".
#
# Every test speaks TAP on stdout: "ok - NAME", "not ok - NAME",
# "ok - NAME # SKIP reason". cmocka binaries are switched to TAP output.
# A test program that exits non-zero without a "not ok" line counts as one
# failure, so a crash is never lost.
#
#   tests/run.sh [unit|bpf|fuzz|netns|e2e ...]   (default: all suites)
#
# fuzz: every regression case of each libFuzzer harness, then each one
# fuzzing for TF_FUZZ_SECONDS (default 35: 4 harnesses in under 3 minutes).
set -uo pipefail
cd "$(dirname "$0")/.."

suites=("$@")
[ ${#suites[@]} -eq 0 ] && suites=(unit bpf fuzz netns e2e)

export CMOCKA_MESSAGE_OUTPUT=TAP
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export TAPFLOW=${TAPFLOW:-$PWD/.output/tapflow-asan}

passed=0 failed=0 skipped=0
failures=()
log_dir=.output/test-logs
mkdir -p "$log_dir"

run_one() {
	local suite=$1 prog=$2 name out rc p f s
	shift 2
	name=$(basename "$prog")${1:+-$1}
	out="$log_dir/$suite-$name.log"
	printf '== %s/%s\n' "$suite" "$name"
	local t0=$SECONDS
	"$prog" "$@" >"$out" 2>&1 </dev/null
	rc=$?
	# Show the TAP lines (and what a failure said) as they came.
	grep -E '^(not ok|ok)|^# ' "$out" | sed 's/^/   /'
	# cmocka 1.1 prints skips as "not ok N # SKIP": a skip, not a failure.
	p=$(grep -E '^ok\b' "$out" | grep -cv '# SKIP' | tr -d ' ')
	s=$(grep -cE '^(not )?ok\b.*# SKIP' "$out" | tr -d ' ')
	f=$(grep -E '^not ok\b' "$out" | grep -cv '# SKIP' | tr -d ' ')
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
		echo "   not ok - $name exited $rc without reporting a failure"
	fi
	if [ "$f" -gt 0 ]; then
		failures+=("$suite/$name (log: $out)")
		tail -n 30 "$out" | sed 's/^/   | /'
	fi
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
	printf '   (%ss)\n' $((SECONDS - t0))
}

for suite in "${suites[@]}"; do
	case $suite in
	unit|bpf)
		# cmocka binaries, and shell tests of what is no C (packaging).
		for t in .output/tests/$suite/test_* tests/$suite/test_*.sh; do
			[ -x "$t" ] && run_one "$suite" "$t"
		done ;;
	fuzz)
		for h in tests/fuzz/fuzz_*.c; do
			run_one "$suite" tests/fuzz/run-fuzzer.sh "$(basename "$h" .c)"
		done ;;
	netns)
		for t in tests/$suite/test_*.sh; do
			[ -x "$t" ] && run_one "$suite" "$t"
		done ;;
	e2e)
		# One real libvirt lab for the whole suite: up once, down at the
		# end (also on Ctrl-C), and "down leaves nothing" is a test too.
		trap 'tests/e2e/lab-suite.sh end >/dev/null 2>&1; exit 130' INT TERM
		tests/e2e/lab-suite.sh begin
		# test_live.sh last: it restarts libvirtd and a guest, and the
		# others measure the lab as it came up.
		for t in $(ls tests/$suite/test_*.sh | grep -v '/test_live\.sh$') tests/$suite/test_live.sh; do
			[ -x "$t" ] && run_one "$suite" "$t"
		done
		run_one "$suite" tests/e2e/lab-suite.sh end
		trap - INT TERM ;;
	*) echo "run.sh: unknown suite '$suite'" >&2; exit 2 ;;
	esac
done

if [ ${#failures[@]} -gt 0 ]; then
	echo "failed:"
	printf '  %s\n' "${failures[@]}"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
