#!/usr/bin/env bash
# `p11proxy stats` and `p11proxy trace --summary`, with the command built by
# `make cli` (build/bin/p11proxy):
#   1. the golden traces of Tests/golden/stats (tables computed by hand, README.md there) in
#      both formats, grouped and not, several files, standard input; the damaged ones with their
#      warnings (FILE:LINE) and the tables of what could be counted;
#   2. JSON output and --histogram; a missing file, no file;
#   3. a 200 MB trace on standard input read in bounded memory (peak RSS), every call counted;
#   4. trace --summary around pkcs11-tool over SoftHSM2 through libp11proxy.so: the summary's
#      calls per function are the full trace's (text and JSON), printed after the command's own
#      output; the temporary trace removed; exit status and signals passed through.
#
#   bash Tests/integration/test_stats.sh       # CLI_BIN defaults to build/bin/p11proxy, PROXY_SO to build/lib/libp11proxy.so
#   KEEP=1 bash Tests/integration/test_stats.sh  # keep the work dir
# Prints ok / not ok lines and ends with "N passed, N failed"; exits non-zero on failure.
set -uo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_tools jq pkcs11-tool softhsm2-util python3 || exit 1

BUILD=${BUILD_DIR:-build}
[[ $BUILD == /* ]] || BUILD=$REPO/$BUILD
CLI=${CLI_BIN:-$BUILD/bin/p11proxy}
[[ $CLI == /* ]] || CLI=$REPO/$CLI
GOLDEN=Tests/golden/stats
cd "$REPO" || exit 1

unset P11PROXY_MODULE P11PROXY_CONFIG_DIR P11PROXY_LOG_CALLS P11PROXY_LOG_FILE \
    P11PROXY_LOG_FORMAT P11PROXY_LOG_SECRETS

make_work_dir stats
note "command: $CLI" "proxy: $PROXY_SO" "work: $WORK"
if [[ ! -x $CLI ]]; then
    fail "the command is built" "$CLI missing: run make cli"
    finish
fi

# --- 1. golden tables ------------------------------------------------------------------------

for trace in calls.txt calls.jsonl; do
    run "golden-$trace" "$CLI" stats "$GOLDEN/$trace"
    check_eq "stats $trace: exit 0" 0 "$RUN_RC"
    check_files_equal "stats $trace: the table computed by hand ($GOLDEN/calls.table)" "$RUN_DIR/golden-$trace.out" "$GOLDEN/calls.table"
    check_eq "stats $trace: no warnings" "" "$(cat "$RUN_DIR/golden-$trace.err")"
    run "module-$trace" "$CLI" stats --by module "$GOLDEN/$trace"
    check_files_equal "stats --by module $trace: one table per module ($GOLDEN/calls-by-module.table)" \
        "$RUN_DIR/module-$trace.out" "$GOLDEN/calls-by-module.table"
done

run stdin "$CLI" stats - <"$GOLDEN/calls.jsonl"
check_files_equal "stats - reads standard input" "$RUN_DIR/stdin.out" "$GOLDEN/calls.table"

# Both files: every count doubles (the same calls twice); the span stays 3 s; 2 x 2.011252329 s
# of calls is 4.022504658 s, shown as 4.023s.
run both "$CLI" stats "$GOLDEN/calls.txt" "$GOLDEN/calls.jsonl"
check_eq "stats over two files adds them up" \
    "40 calls, 8 errors, 4.023s in calls, wall-clock span 3.000s from 2026-11-22T01:56:34.000000Z" "$(tail -1 <<<"$RUN_OUT")"
check_contains "C_Sign twice over" "C_Sign                  20       4  492.000us   24.600us  14.000us  120.000us  120.000us  120.000us" "$RUN_OUT"

for trace in damaged.txt damaged.jsonl; do
    run "damaged-$trace" "$CLI" stats "$GOLDEN/$trace"
    check_eq "stats $trace: exit 0 despite warnings" 0 "$RUN_RC"
    check_files_equal "stats $trace: warnings with file and line ($GOLDEN/$trace.warnings)" \
        "$RUN_DIR/damaged-$trace.err" "$GOLDEN/$trace.warnings"
    check_files_equal "stats $trace: what could be counted ($GOLDEN/$trace.table)" "$RUN_DIR/damaged-$trace.out" "$GOLDEN/$trace.table"
done

# --- 2. JSON, histogram, errors --------------------------------------------------------------

run json "$CLI" stats --format json "$GOLDEN/calls.txt"
check "JSON output: one object, totals 20 calls, 4 errors, span 3 s" \
    jq -e '.calls == 20 and .errors == 4 and .records == 20 and .span_us == 3000000 and .warnings == 0' "$RUN_DIR/json.out"
check "JSON output: C_Sign's numbers in microseconds" jq -e '.groups[0].functions[] | select(.function == "C_Sign")
    | .calls == 10 and .errors == 2 and .total_us == 246 and .mean_us == 24.6 and .p50_us == 14 and .p95_us == 120
      and .p99_us == 120 and .max_us == 120 and .errors_by_return_value == {"CKR_DEVICE_ERROR": 1, "CKR_KEY_HANDLE_INVALID": 1}' "$RUN_DIR/json.out"
run json-thread "$CLI" stats --format json --by thread "$GOLDEN/calls.jsonl"
check_eq "JSON --by thread: one group per thread, by total time" "300:1 100:9 200:10" \
    "$(jq -r '[.groups[] | "\(.key):\(.total.calls)"] | join(" ")' "$RUN_DIR/json-thread.out")"
run json-caller "$CLI" stats --format json --by caller "$GOLDEN/calls.txt"
check_eq "JSON --by caller: caller 2 (mock-a) then caller 1" "2:11 1:9" \
    "$(jq -r '[.groups[] | "\(.key):\(.total.calls)"] | join(" ")' "$RUN_DIR/json-caller.out")"

run histogram "$CLI" stats --histogram "$GOLDEN/calls.txt"
check_contains "--histogram: a chart per function" "C_Sign: 10 calls" "$RUN_OUT"
check_contains "--histogram: C_Sign's 120 us call in its 1-2-5 row" "  100us .. 200us |#####                                   | 1" "$RUN_OUT"
check_contains "--histogram: the rest in 10-20 us" "    10us .. 20us |########################################| 9" "$RUN_OUT"

run missing "$CLI" stats "$WORK/no-such-trace" "$GOLDEN/calls.txt"
check_eq "a file that cannot be read: exit 1" 1 "$RUN_RC"
check_contains "and says why" "p11proxy stats: cannot open $WORK/no-such-trace: No such file or directory" "$(cat "$RUN_DIR/missing.err")"
check_eq "the other files are still summarised" "$(tail -1 "$GOLDEN/calls.table")" "$(tail -1 <<<"$RUN_OUT")"
run no-file "$CLI" stats
check_eq "stats without FILE is a usage error (64)" 64 "$RUN_RC"

# --- 3. bounded memory -----------------------------------------------------------------------

# 200 MB of the golden text trace (20 counted calls per copy) on standard input: every call is
# counted, and the peak resident memory is that of reading a few MB.
copies=$((200000000 / $(stat -c %s "$GOLDEN/calls.txt")))
peak_rss() { # peak_rss COPIES: stats over COPIES copies on standard input; prints "KB calls"
    python3 -c 'import sys; data = open(sys.argv[1], "rb").read(); out = sys.stdout.buffer
for _ in range(int(sys.argv[2])): out.write(data)' "$GOLDEN/calls.txt" "$1" |
        /usr/bin/time -f %M -o "$WORK/rss" "$CLI" stats - >"$WORK/large.out" 2>"$WORK/large.err"
    echo "$(cat "$WORK/rss") $(tail -1 "$WORK/large.out" | grep -oE '^[0-9]+')"
}
read -r small_kb small_calls < <(peak_rss 1000)
read -r large_kb large_calls < <(peak_rss "$copies")
note "peak RSS: $small_kb KB for 1000 copies (3 MB), $large_kb KB for $copies copies (200 MB)"
check_eq "200 MB on standard input: every call counted" "$((copies * 20))" "$large_calls"
check_eq "(and 3 MB)" 20000 "$small_calls"
check "200 MB read in the memory of 3 MB (peak RSS within 8 MB of it)" test $((large_kb - small_kb)) -lt 8192
check_eq "no warnings over 200 MB of whole records" "" "$(cat "$WORK/large.err")"

# --- 4. trace --summary over pkcs11-tool and SoftHSM2 -----------------------------------------

require_softhsm_and_proxy
make_softhsm_token "$WORK/softhsm" stats-token || exit 1
TOOL=(pkcs11-tool --module "$PROXY_SO" --login --pin 1234 --token-label stats-token)
run keygen "$CLI" trace --module "$SOFTHSM_SO" -o "$WORK/keygen.txt" -- "${TOOL[@]}" --keypairgen --key-type EC:prime256v1 --label k1
check_eq "a traced key generation through the module" 0 "$RUN_RC"
# CKM_ECDSA signs a hash: 32 bytes.
printf '%032d' 19 >"$WORK/digest"

# summary_counts FILE: "C_X N" per table row of a summary (on standard error), sorted.
summary_counts() {
    sed -n '/^function /,/^total /p' "$1" | sed '1d;$d' | awk '{print $1, $2}' | sort
}
for format in text json; do
    full=$WORK/full.$format
    run "summary-$format" "$CLI" trace --summary --format "$format" -o "$full" --module "$SOFTHSM_SO" -- \
        "${TOOL[@]}" -O --sign --mechanism ECDSA --label k1 -i "$WORK/digest" -o "$WORK/sig.$format"
    check_eq "trace --summary --format $format: pkcs11-tool's exit status 0" 0 "$RUN_RC"
    if [[ $format == json ]]; then
        expected=$(jq -r 'select(.phase != "waiting") | .function' "$full" | sort | uniq -c | awk '{print $2, $1}' | sort)
    else
        expected=$(grep -E '^C_[A-Za-z]+ = ' "$full" | cut -d' ' -f1 | sort | uniq -c | awk '{print $2, $1}' | sort)
    fi
    check_eq "trace --summary --format $format: calls per function as in the full trace" \
        "$expected" "$(summary_counts "$RUN_DIR/summary-$format.err")"
    check_contains "trace --summary --format $format: C_Sign counted" "C_Sign 1" "$(summary_counts "$RUN_DIR/summary-$format.err")"
    check_contains "trace --summary --format $format: says where the full trace is" "(trace in $full)" "$(cat "$RUN_DIR/summary-$format.err")"
    check_eq "trace --summary --format $format: the full trace reads without a warning" "" \
        "$("$CLI" stats "$full" 2>&1 >/dev/null)"
done
check_contains "the object listing is pkcs11-tool's own output" "Private Key Object; EC" "$(cat "$RUN_DIR/summary-text.out")"

# No --output: a temporary trace in TMPDIR, removed afterwards; the summary still printed, after
# everything the command wrote (standard output and error in one stream here).
mkdir -p "$WORK/tmp"
TMPDIR=$WORK/tmp "$CLI" trace --summary --module "$SOFTHSM_SO" -- "${TOOL[@]}" -O >"$RUN_DIR/merged.out" 2>&1
check_eq "trace --summary without --output exits 0" 0 "$?"
check_eq "its temporary trace is removed" "" "$(ls -A "$WORK/tmp")"
summary_line=$(grep -n '^p11proxy trace: summary of pkcs11-tool' "$RUN_DIR/merged.out" | cut -d: -f1)
tool_line=$(grep -n 'Private Key Object; EC' "$RUN_DIR/merged.out" | tail -1 | cut -d: -f1)
check "the summary comes after the command's own output" test "${summary_line:-0}" -gt "${tool_line:-999999}"
check_contains "and ends with the totals line" "errors," "$(tail -1 "$RUN_DIR/merged.out")"

run exit3 "$CLI" trace --summary -- sh -c 'echo out; exit 3'
check_eq "trace --summary passes exit status 3 through" 3 "$RUN_RC"
check_contains "and summarises a command that made no PKCS#11 call" "0 calls, 0 errors, 0ns in calls" "$(cat "$RUN_DIR/exit3.err")"
run signalled "$CLI" trace --summary -- sh -c 'kill -TERM $$'
check_eq "a command killed by SIGTERM: p11proxy ends by SIGTERM too (143)" 143 "$RUN_RC"
check_contains "after printing the summary" "0 calls, 0 errors" "$(cat "$RUN_DIR/signalled.err")"
run summary-missing env TMPDIR="$WORK/tmp" "$CLI" trace --summary -- "$WORK/no-such-command"
check_eq "trace --summary: a missing command exits 127" 127 "$RUN_RC"
check_eq "and leaves no temporary trace" "" "$(ls -A "$WORK/tmp")"

finish
