#!/bin/bash
# Run the libFuzzer harnesses built by `make fuzz-build`:
#   tests/fuzz/run.sh fuzz BUILD SECONDS [NAME...]  fuzz each harness for SECONDS
#   tests/fuzz/run.sh replay BUILD                  run every kept input once
# Harness BUILD/fuzz_NAME reads tests/fuzz/corpus_NAME/ (seeds),
# tests/fuzz/crashes_NAME/ (inputs that once failed: regressions) and, when
# it exists, tests/golden/NAME/ (the golden parser inputs), with the
# dictionary tests/fuzz/NAME.dict (gre.dict for the worker harnesses). Fuzzing
# writes new inputs and crashes under BUILD/ only, never into the
# repository. Prints one line per harness: executions and result.
set -u
cd "$(dirname "$0")/../.."

mode=${1:?usage: run.sh fuzz|replay BUILD [SECONDS]}
build=${2:?usage: run.sh fuzz|replay BUILD [SECONDS]}
seconds=${3:-60}
shift 3 2> /dev/null || shift $#
only=" $* "
failed=0

# libconfig leaks scanner state on some syntax errors; see libconfig.supp.
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/fuzz/libconfig.supp}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# The kept inputs of harness NAME, one per line (READMEs are not inputs).
inputs() {
	for dir in "tests/fuzz/corpus_$1" "tests/fuzz/crashes_$1" "tests/golden/$1"; do
		[ -d "$dir" ] && find "$dir" -type f ! -name README ! -name '*.err' ! -name '*.out'
	done | sort
}

# The worker harnesses read packets too: they share gre.dict.
dict_of() {
	case "$1" in
	worker|merged|tun|tun_gso) echo gre ;;
	*) echo "$1" ;;
	esac
}

seed_dirs() {
	for dir in "tests/fuzz/corpus_$1" "tests/fuzz/crashes_$1" "tests/golden/$1"; do
		[ -d "$dir" ] && echo "$dir"
	done
}

replay() {	# harness name
	local n log="$build/replay_$2.log"

	n=$(inputs "$2" | wc -l)
	if [ "$n" -eq 0 ]; then
		echo "SKIP $(basename "$1"): no inputs"
		return 0
	fi
	# Given files, libFuzzer runs each once and fuzzes nothing.
	if inputs "$2" | xargs -d '\n' "$1" > "$log" 2>&1; then
		echo "PASS $(basename "$1"): $n inputs replayed"
		return 0
	fi
	echo "FAIL $(basename "$1") (log: $log)"
	tail -n 40 "$log"
	return 1
}

fuzz() {	# harness name
	local scratch="$build/corpus/$2" crashes="$build/crashes/$2/" log="$build/fuzz_$2.log"
	local dict=() execs dfile

	mkdir -p "$scratch" "$crashes"
	dfile="tests/fuzz/$(dict_of "$2").dict"
	[ -f "$dfile" ] && dict=(-dict="$dfile")
	# The first directory receives the new inputs: the scratch one.
	"$1" -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$crashes" \
		"${dict[@]}" "$scratch" $(seed_dirs "$2") > "$log" 2>&1
	local rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	if [ "$rc" -eq 0 ]; then
		echo "$(basename "$1"): ${execs:-?} executions in ${seconds}s, clean" \
			"($(grep -o 'cov: [0-9]*' "$log" | tail -n 1))"
		return 0
	fi
	echo "$(basename "$1"): FAILED after ${execs:-?} executions (log: $log, input in $crashes)"
	grep -m 1 -A 5 'ERROR\|runtime error\|==ERROR' "$log"
	return 1
}

for bin in "$build"/fuzz_*; do
	[ -x "$bin" ] || continue
	name=$(basename "$bin")
	name=${name#fuzz_}
	[ "$only" = "  " ] || [[ "$only" == *" $name "* ]] || continue
	case "$mode" in
	fuzz) fuzz "$bin" "$name" || failed=$((failed + 1)) ;;
	replay) replay "$bin" "$name" || failed=$((failed + 1)) ;;
	*) echo "run.sh: unknown mode $mode" >&2; exit 2 ;;
	esac
done
[ "$failed" -eq 0 ]
