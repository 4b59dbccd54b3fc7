#!/usr/bin/env bash
# `make fuzz`: a reader under libFuzzer for a fixed number of inputs from a fixed seed, starting
# from a committed corpus: by default the configuration reader (build/fuzz/config-fuzz, built by
# the Makefile from Tests/Fuzz/ConfigFuzz.swift + Sources/P11ProxyConfig with
# -sanitize=fuzzer,address, corpus Tests/Fuzz/corpus/config); with NAME trace-stats the trace
# statistics reader (build/fuzz/trace-stats-fuzz, Tests/Fuzz/TraceStatsFuzz.swift, corpus
# Tests/Fuzz/corpus/trace). Any crash, invariant trap, ASan report, leak or input slower than the
# timeout fails it; the input is kept as build/fuzz/crash-* (trace-stats: build/fuzz/trace-stats-crash-*;
# or leak-*, timeout-*) and replays with `FUZZER FILE`.
#   bash Tests/Fuzz/run.sh [FUZZER [CORPUS NAME]]   # P11PROXY_FUZZ_RUNS (12000), P11PROXY_FUZZ_SEED (20261122)
# Prints libFuzzer's last status line (cov: edges, ft: features) and "N passed, N failed".
set -uo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
BUILD=${BUILD_DIR:-build}
FUZZER=${1:-$BUILD/fuzz/config-fuzz}
CORPUS=${2:-Tests/Fuzz/corpus/config}
NAME=${3:-config}
RUNS=${P11PROXY_FUZZ_RUNS:-12000}
SEED=${P11PROXY_FUZZ_SEED:-20261122}
if [[ $NAME == config ]]; then
    WORK=$BUILD/fuzz/work PREFIX=$BUILD/fuzz/ WHAT="config reader"
    # Beyond the seeds' 353 bytes; the x/h/g file kinds stand in for huge files.
    MAX_LEN=4096
else
    WORK=$BUILD/fuzz/work-$NAME PREFIX=$BUILD/fuzz/$NAME- WHAT="$NAME reader"
    # Room for the golden traces (4.4 KB) and more records after them.
    MAX_LEN=16384
fi
LOG=$BUILD/fuzz/$NAME-fuzz.log

if [[ ! -x $FUZZER ]]; then
    echo "not ok 1 - $FUZZER is not built (make fuzz builds it)"
    echo "0 passed, 1 failed"
    exit 1
fi
# libFuzzer adds the inputs it finds to the first directory: a fresh one each run, so the
# committed corpus (read-only, second) never changes and every run starts from the same inputs.
rm -rf "$WORK" && mkdir -p "$WORK"
rm -f "$PREFIX"crash-* "$PREFIX"leak-* "$PREFIX"timeout-* "$PREFIX"oom-*

# A trap ends in libFuzzer's crash report; Swift's own backtracer would only add noise (and
# trips ASan when it reads the stack).
export SWIFT_BACKTRACE=enable=no
start=$(date +%s)
# -timeout: one input taking 10 s is a hang (the slowest seed takes milliseconds).
timeout -k 10 900 "$FUZZER" -runs="$RUNS" -seed="$SEED" -timeout=10 -max_len="$MAX_LEN" -rss_limit_mb=2048 \
    -detect_leaks=1 -print_final_stats=1 -artifact_prefix="$PREFIX" \
    "$WORK" "$CORPUS" >"$LOG" 2>&1
status=$?
elapsed=$(($(date +%s) - start))

done_line=$(grep -E "^#[0-9]+[[:space:]]+DONE" "$LOG" | tail -1)
ran=$(grep -oE "^Done [0-9]+ runs" "$LOG" | grep -oE "[0-9]+")
artifacts=$(ls "$PREFIX"crash-* "$PREFIX"leak-* "$PREFIX"timeout-* "$PREFIX"oom-* 2>/dev/null)
echo "# seed corpus: $(ls "$CORPUS" | wc -l) files; log: $LOG"
echo "# ${done_line:-no DONE line}"
if [[ $status -eq 0 && ${ran:-0} -eq $RUNS && -z $artifacts ]]; then
    echo "ok 1 - $WHAT: $RUNS inputs (seed $SEED) in ${elapsed}s, no crash, hang, leak or broken invariant"
    echo "1 passed, 0 failed"
    exit 0
fi
echo "not ok 1 - $WHAT fuzzing stopped (exit $status, ${ran:-0} of $RUNS inputs)"
grep -E "invariant violated|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|SUMMARY|Test unit written|deadly signal|timeout" "$LOG" \
    | head -20 | sed 's/^/#   /'
[[ -n $artifacts ]] && echo "#   replay: $FUZZER $artifacts"
echo "0 passed, 1 failed"
exit 1
