#!/bin/bash
# Run every test against one or more build directories:
#   tests/run.sh build [build-asan build-fuzz build-tsan ...]
# Unit tests (CUnit, among them the golden tests of the config and sites
# parsers), then the end-to-end suite (pytest, real daemons in network
# namespaces) when the directory holds the daemons. A directory of fuzz
# harnesses (build-fuzz) instead replays every corpus and crash input
# through them. Ends with one line "N passed, N failed".
set -u
cd "$(dirname "$0")/.."

passed=0
failed=0
failures=()

record() {	# name rc
	if [ "$2" -eq 0 ]; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		failures+=("$1")
	fi
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=86}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:exitcode=87}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/lsan.supp}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:exitcode=88:second_deadlock_stack=1}
TSAN_OPTIONS+=":suppressions=$PWD/tests/tsan.supp"	# always: liburcu's internals

for build in "$@"; do
	if compgen -G "$build/fuzz_*" > /dev/null; then
		echo "=== fuzz regressions ($build)"
		tests/fuzz/run.sh replay "$build"
		record "$build/fuzz" $?
		continue
	fi

	echo "=== unit tests ($build)"
	for t in "$build"/tests/test_*; do
		[ -x "$t" ] || continue
		if "$t" > "$build/tests/$(basename "$t").log" 2>&1; then
			echo "PASS $(basename "$t")"
			record "$build/$(basename "$t")" 0
		else
			echo "FAIL $(basename "$t") (log: $build/tests/$(basename "$t").log)"
			tail -n 40 "$build/tests/$(basename "$t").log"
			record "$build/$(basename "$t")" 1
		fi
	done

	if [ -x "$build/gatewayd" ] && [ -d tests/e2e ] && ls tests/e2e/test_*.py > /dev/null 2>&1; then
		echo "=== end-to-end tests ($build)"
		GREPOP_BUILD="$PWD/$build" /usr/bin/python3 -m pytest -q -p no:cacheprovider \
			${E2E_ARGS:-} tests/e2e
		record "$build/e2e" $?
	fi
done

for f in "${failures[@]}"; do
	echo "failed: $f"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
