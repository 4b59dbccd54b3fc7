#!/usr/bin/env bash
# `make fuzz`: one libFuzzer target (built by the Makefile into build/fuzz/NAME-fuzz with
# -sanitize=fuzzer,address) for a fixed number of inputs from a fixed seed, starting from the
# committed corpus Tests/Fuzz/corpus/NAME. NAME is
#   config  the configuration reader (ConfigFuzz.swift + Sources/P11ProxyConfig)
#   uri     the pkcs11: URI parser and formatter (URIFuzz.swift + Sources/P11ProxyConfig)
#   trace   the trace statistics reader (TraceStatsFuzz.swift + Sources/P11ProxyTraceStats)
#   rpc     the RPC reply decoder (RPCReplyFuzz.swift + Sources/P11ProxyRPC)
# Any crash, invariant trap, ASan report, leak or input slower than the timeout fails it; the
# input is kept as build/fuzz/NAME-crash-* (or -leak-*, -timeout-*) and replays with
# `build/fuzz/NAME-fuzz FILE`.
#   bash Tests/Fuzz/run.sh NAME [FUZZER]   # P11PROXY_FUZZ_RUNS (config 12000, uri 100000, trace
#                                          # 12000, rpc 300000), P11PROXY_FUZZ_SEED (20261122)
# Prints libFuzzer's last status line (cov: edges, ft: features) and "N passed, N failed".
set -uo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
BUILD=${BUILD_DIR:-build}
NAME=${1:-config}
# A config input is a whole file tree read twice; a URI or RPC reply takes microseconds.
# -max_len: beyond every seed (the config ones are at most 353 bytes, and its x/h/g file kinds
# stand in for huge files; the golden traces are 4.4 KB, with room for records after them).
case $NAME in
    config) WHAT="config reader" DEFAULT_RUNS=12000 MAX_LEN=4096 ;;
    uri) WHAT="pkcs11: URI parser" DEFAULT_RUNS=100000 MAX_LEN=4096 ;;
    trace) WHAT="trace statistics reader" DEFAULT_RUNS=12000 MAX_LEN=16384 ;;
    rpc) WHAT="RPC reply decoder" DEFAULT_RUNS=300000 MAX_LEN=4096 ;;
    *) echo "not ok 1 - unknown fuzzer '$NAME' (config, uri, trace or rpc)"; echo "0 passed, 1 failed"; exit 1 ;;
esac
FUZZER=${2:-$BUILD/fuzz/$NAME-fuzz}
RUNS=${P11PROXY_FUZZ_RUNS:-$DEFAULT_RUNS}
SEED=${P11PROXY_FUZZ_SEED:-20261122}
CORPUS=Tests/Fuzz/corpus/$NAME
WORK=$BUILD/fuzz/work-$NAME
LOG=$BUILD/fuzz/$NAME-fuzz.log
ARTIFACTS=$BUILD/fuzz/$NAME-

if [[ ! -x $FUZZER ]]; then
    echo "not ok 1 - $FUZZER is not built (make fuzz-build builds it)"
    echo "0 passed, 1 failed"
    exit 1
fi
# libFuzzer adds the inputs it finds to the first directory: a fresh one each run, so the
# committed corpus (read-only, second) never changes and every run starts from the same inputs.
rm -rf "$WORK" && mkdir -p "$WORK"
rm -f "$ARTIFACTS"crash-* "$ARTIFACTS"leak-* "$ARTIFACTS"timeout-* "$ARTIFACTS"oom-*

# A trap ends in libFuzzer's crash report; Swift's own backtracer would only add noise (and
# trips ASan when it reads the stack).
export SWIFT_BACKTRACE=enable=no
start=$(date +%s)
# -timeout: one input taking 10 s is a hang (the slowest seed takes milliseconds).
timeout -k 10 900 "$FUZZER" -runs="$RUNS" -seed="$SEED" -timeout=10 -max_len=$MAX_LEN -rss_limit_mb=2048 \
    -detect_leaks=1 -print_final_stats=1 -artifact_prefix="$ARTIFACTS" \
    "$WORK" "$CORPUS" >"$LOG" 2>&1
status=$?
elapsed=$(($(date +%s) - start))

done_line=$(grep -E "^#[0-9]+[[:space:]]+DONE" "$LOG" | tail -1)
ran=$(grep -oE "^Done [0-9]+ runs" "$LOG" | grep -oE "[0-9]+")
artifacts=$(ls "$ARTIFACTS"crash-* "$ARTIFACTS"leak-* "$ARTIFACTS"timeout-* "$ARTIFACTS"oom-* 2>/dev/null)
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
