#!/usr/bin/env bash
# scripts/bench.sh: the benchmark. Times PKCS#11 calls on the fast mock module
# (build/mock/libmock-fast.so) directly, through p11proxy, through p11proxy with tracing,
# and through p11-kit-proxy.so loading only that module; prints one table of ratios and
# writes it to build/bench/results.md. A benchmark prints numbers: it exits 0 whether or
# not the goals are met, non-zero only when something failed to run.
#
#   scripts/bench.sh                          # everything (~1-2 minutes on 2 cores)
#   BENCH_THREADS="1 2 4 8 16" scripts/bench.sh    # the same, scaling table for these thread
#                                             # counts (make bench THREADS="1 2 4 8 16")
#   scripts/bench.sh --callgrind CALL [--iterations N] [--traced]
#                                             # instructions per call, direct vs p11proxy
#
# Knobs (environment): BENCH_TIME_MS (100, per timed loop), BENCH_REPS (9 loops, median
# of: on this VM both vCPUs are sometimes taken away for tens of ms, see cpu_share below), BENCH_ROUNDS (3 processes per target, interleaved, median of their medians: one
# process of p11proxy can differ from the next by a third while the direct module does not),
# BENCH_TRACE_TIME_MS (50, traced loops), BENCH_PAIRED_TIME_MS (20) and BENCH_PAIRED_REPS (25):
# the proxies' loops, each paired with the mock's own (bench --baseline), BENCH_LOAD_RUNS (40 runs, each timing pkcs11-tool -L and the
# in-process load for every target back to back), BENCH_USER (nobody: who runs the programs when we are root, see p11-kit below),
# BUILD_DIR (build), PROXY_SO (build/lib/libp11proxy.so), BENCH_THREADS ("1 2": thread counts
# of the timed runs; 1 is always added), BENCH_CHECK_CALLS (20000 per thread: the traced run
# whose file is checked for whole and missing records).
#
# p11-kit reads no user configuration for root, and the system configuration must not be
# touched. So every program here runs as BENCH_USER (setpriv) with HOME and
# XDG_CONFIG_HOME pointing at a temporary directory holding pkcs11/pkcs11.conf
# ("user-config: only") and pkcs11/modules/fast.module; all targets run the same way, so
# that the wrapper costs the same for each. The binaries are copied into that directory
# (the checkout may not be readable by that user). That p11-kit loaded exactly the fast
# module is checked (one slot, token label mock-fast-1) and printed.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD_DIR=${BUILD_DIR:-build}
PROXY_SO=${PROXY_SO:-build/lib/libp11proxy.so}
TIME_MS=${BENCH_TIME_MS:-100}
REPS=${BENCH_REPS:-9}
ROUNDS=${BENCH_ROUNDS:-3}
TRACE_TIME_MS=${BENCH_TRACE_TIME_MS:-50}
PAIRED_TIME_MS=${BENCH_PAIRED_TIME_MS:-20}
PAIRED_REPS=${BENCH_PAIRED_REPS:-25}
LOAD_RUNS=${BENCH_LOAD_RUNS:-40}
read -r -a THREAD_COUNTS <<<"${BENCH_THREADS:-1 2}"
[[ " ${THREAD_COUNTS[*]} " == *" 1 "* ]] || THREAD_COUNTS=(1 "${THREAD_COUNTS[@]}")
for t in "${THREAD_COUNTS[@]}"; do [[ $t =~ ^[1-9][0-9]*$ ]] && ((t <= 64)) || { echo "bench.sh: BENCH_THREADS: $t is not 1-64" >&2; exit 2; }; done
THREAD_ARG=$(IFS=,; echo "${THREAD_COUNTS[*]}")
MAX_THREADS=$(printf '%s\n' "${THREAD_COUNTS[@]}" | sort -n | tail -n1)
CHECK_CALLS=${BENCH_CHECK_CALLS:-20000}
BENCH_USER=${BENCH_USER:-nobody}
OUT_DIR=$BUILD_DIR/bench
CALLS=(get_info get_session_info get_attribute_value find_objects digest open_close)
declare -A LABEL=(
    [get_info]="C_GetInfo"
    [get_session_info]="C_GetSessionInfo"
    [get_attribute_value]="C_GetAttributeValue (1 attr)"
    [find_objects]="C_FindObjectsInit + C_FindObjects + C_FindObjectsFinal"
    [digest]="C_DigestInit + C_Digest"
    [open_close]="C_OpenSession + C_CloseSession"
)
declare -A SHORT=([get_info]=GetInfo [get_session_info]=GetSessionInfo [get_attribute_value]=GetAttributeValue
    [find_objects]="Find*" [digest]="Digest*" [open_close]="Open+Close")
# Calls that take only a session handle: the 2-thread scaling goal applies to these.
declare -A SESSION_ROUTED=([get_session_info]=1 [get_attribute_value]=1 [find_objects]=1 [digest]=1)
# PKCS#11 calls per iteration of each row (the tracing goal is per call).
declare -A CALLS_PER_ROW=([get_info]=1 [get_session_info]=1 [get_attribute_value]=1 [find_objects]=3 [digest]=2 [open_close]=2)

callgrind_call=""
callgrind_iterations=20000
callgrind_traced=no
while [ $# -gt 0 ]; do
    case $1 in
    --callgrind) callgrind_call=${2:?--callgrind needs a call: ${CALLS[*]}}; shift 2 ;;
    --iterations) callgrind_iterations=${2:?}; shift 2 ;;
    --traced) callgrind_traced=yes; shift ;;
    -h | --help) sed -n '2,23p' "$0"; exit 0 ;;
    *) echo "bench.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

say() { printf '==> %s\n' "$*" >&2; }
fail() { printf 'bench.sh: %s\n' "$*" >&2; exit 1; }

# ---- Build ------------------------------------------------------------------------------
[ -f "$PROXY_SO" ] || { say "no $PROXY_SO: make build"; make build; }
make -s -f Tests/C/tests.mk BUILD_DIR="$BUILD_DIR" mock-modules bench-programs >&2
MOCK_FAST=$BUILD_DIR/mock/libmock-fast.so
BENCH_BIN=$BUILD_DIR/bench/bench
newest_source=$(find Sources include Package.swift -newer "$PROXY_SO" -type f 2>/dev/null | head -n1)
[ -z "$newest_source" ] || say "warning: $newest_source is newer than $PROXY_SO (run make build)"
mkdir -p "$OUT_DIR"

# ---- Callgrind mode: instructions per call ---------------------------------------------
# bench toggles collection around its timed loops only (valgrind/callgrind.h), so with
# --collect-atstart=no the total Ir is exactly iterations x one call's path.
if [ -n "$callgrind_call" ]; then
    command -v valgrind >/dev/null || {
        say "installing valgrind"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null
    }
    total_ir() { awk '/^(summary|totals):/ { print $2; exit }' "$1"; }
    run_callgrind() { # NAME MODULE [env...]
        local name=$1 module=$2 out=$OUT_DIR/callgrind.$1.out
        shift 2
        env "$@" valgrind --tool=callgrind --collect-atstart=no --callgrind-out-file="$out" \
            "$BENCH_BIN" "$module" --calls "$callgrind_call" --threads 1 --reps 1 \
            --iterations "$callgrind_iterations" >"$OUT_DIR/callgrind.$name.txt" 2>"$OUT_DIR/callgrind.$name.err" ||
            { cat "$OUT_DIR/callgrind.$name.err" >&2; fail "callgrind run '$name' failed"; }
        grep -q "^result call=$callgrind_call " "$OUT_DIR/callgrind.$name.txt" ||
            fail "unknown call '$callgrind_call' (one of: ${CALLS[*]})"
        total_ir "$out"
    }
    say "callgrind: $callgrind_call x $callgrind_iterations"
    direct_ir=$(run_callgrind direct "$MOCK_FAST")
    proxy_ir=$(run_callgrind proxy "$PROXY_SO" P11PROXY_MODULE="$ROOT/$MOCK_FAST")
    per() { awk -v ir="$1" -v n="$callgrind_iterations" 'BEGIN { printf "%.1f", ir / n }'; }
    printf '%-10s %12s  %s\n' target "Ir/call" "callgrind file"
    printf '%-10s %12s  %s\n' direct "$(per "$direct_ir")" "$OUT_DIR/callgrind.direct.out"
    printf '%-10s %12s  %s\n' p11proxy "$(per "$proxy_ir")" "$OUT_DIR/callgrind.proxy.out"
    printf '%-10s %12s\n' overhead "$(per $((proxy_ir - direct_ir)))"
    if [ "$callgrind_traced" = yes ]; then
        traced_ir=$(run_callgrind traced "$PROXY_SO" P11PROXY_MODULE="$ROOT/$MOCK_FAST" \
            P11PROXY_LOG_CALLS=yes P11PROXY_LOG_FILE="$OUT_DIR/callgrind.trace.log")
        # Collection is per thread: the trace flusher thread's writing is not counted.
        printf '%-10s %12s  %s (+%s over p11proxy, calling thread only)\n' traced "$(per "$traced_ir")" \
            "$OUT_DIR/callgrind.traced.out" "$(per $((traced_ir - proxy_ir)))"
        rm -f "$OUT_DIR/callgrind.trace.log"
    fi
    demangle() { if command -v swift-demangle >/dev/null; then swift-demangle --simplified; else cat; fi; }
    for name in proxy $([ "$callgrind_traced" = yes ] && echo traced); do
        echo
        echo "$name, self cost by function over the $callgrind_iterations calls" \
            "(callgrind_annotate --inclusive=yes $OUT_DIR/callgrind.$name.out for inclusive):"
        callgrind_annotate --auto=no "$OUT_DIR/callgrind.$name.out" 2>/dev/null |
            sed -n '/file:function/,$p' | sed -n '3,22p' | demangle
    done
    exit 0
fi

# ---- Everything the runs need, in one directory BENCH_USER can read ----------------------
P11KIT_PROXY=$(pkg-config --variable=proxy_module p11-kit-1 2>/dev/null || true)
[ -n "$P11KIT_PROXY" ] && [ -f "$P11KIT_PROXY" ] ||
    fail "p11-kit-proxy.so not found (pkg-config --variable=proxy_module p11-kit-1; apt-get install p11-kit-modules libp11-kit-dev)"
command -v pkcs11-tool >/dev/null || fail "pkcs11-tool not found (apt-get install opensc)"

WORK=$(mktemp -d /tmp/p11proxy-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
chmod 755 "$WORK"
cp "$BENCH_BIN" "$WORK/bench"
cp "$MOCK_FAST" "$WORK/libmock-fast.so"
# The same mock under another name: bench --baseline loads it as a second, separate instance
# beside a proxy and times it back to back with the proxy (paired overhead, see bench.c).
cp "$MOCK_FAST" "$WORK/libmock-fast-direct.so"
cp "$PROXY_SO" "$WORK/libp11proxy.so"
# p11-kit's user configuration: only the fast module. p11-kit also honours log-calls in a
# .module file, so a second home differs by that one line.
for home in p11kit p11kit-log; do
    mkdir -p "$WORK/$home/.config/pkcs11/modules"
    printf 'user-config: only\n' >"$WORK/$home/.config/pkcs11/pkcs11.conf"
    printf 'module: %s/libmock-fast.so\n' "$WORK" >"$WORK/$home/.config/pkcs11/modules/fast.module"
done
printf 'log-calls: yes\n' >>"$WORK/p11kit-log/.config/pkcs11/modules/fast.module"
: >"$WORK/trace.log"
: >"$WORK/trace-check.log"
: >"$WORK/p11kit-log.txt"

RUN_AS=()
if [ "$(id -u)" = 0 ]; then
    group=$(id -gn "$BENCH_USER")
    chown -R "$BENCH_USER:$group" "$WORK"
    RUN_AS=(setpriv --reuid="$BENCH_USER" --regid="$group" --clear-groups)
fi
# A clean environment per target; only what that target needs is set.
BASE_ENV=(env -i PATH=/usr/bin:/bin LANG=C HOME="$WORK/p11kit" XDG_CONFIG_HOME="$WORK/p11kit/.config")
declare -A TARGET_MODULE=(
    [direct]="$WORK/libmock-fast.so"
    [p11proxy]="$WORK/libp11proxy.so"
    [p11proxy_paired]="$WORK/libp11proxy.so"
    [traced]="$WORK/libp11proxy.so"
    [p11kit]="$P11KIT_PROXY"
    [p11kit_paired]="$P11KIT_PROXY"
    [p11kit_log]="$P11KIT_PROXY"
)
target_env() { # TARGET -> the env command line for it
    case $1 in
    direct | p11kit | p11kit_paired) printf '%s\0' "${BASE_ENV[@]}" ;;
    p11proxy | p11proxy_paired) printf '%s\0' "${BASE_ENV[@]}" P11PROXY_MODULE="$WORK/libmock-fast.so" ;;
    traced) printf '%s\0' "${BASE_ENV[@]}" P11PROXY_MODULE="$WORK/libmock-fast.so" \
        P11PROXY_LOG_CALLS=yes P11PROXY_LOG_FILE="$WORK/trace.log" ;;
    traced_check) printf '%s\0' "${BASE_ENV[@]}" P11PROXY_MODULE="$WORK/libmock-fast.so" \
        P11PROXY_LOG_CALLS=yes P11PROXY_LOG_FILE="$WORK/trace-check.log" ;;
    p11kit_log) printf '%s\0' env -i PATH=/usr/bin:/bin LANG=C HOME="$WORK/p11kit-log" \
        XDG_CONFIG_HOME="$WORK/p11kit-log/.config" ;;
    esac
}
run_target() { # TARGET PROGRAM ARGS... (stdout: the program's; stderr: the program's)
    local target=$1
    shift
    local -a envv
    mapfile -d '' envv < <(target_env "$target")
    "${RUN_AS[@]}" "${envv[@]}" "$@"
}

# ---- Timed runs ------------------------------------------------------------------------
read -r load1 _ </proc/loadavg
busy=$(awk -v l="$load1" 'BEGIN { print (l > 0.5) ? "yes" : "no" }')
[ "$busy" = no ] || say "warning: load average $load1 before starting (other work, or a run just before): numbers may be noisy"

status=0
bench_target() { # TARGET ROUND EXTRA-ARGS... -> $OUT_DIR/raw.TARGET.ROUND.txt
    local target=$1 round=$2 raw=$OUT_DIR/raw.$1.$2.txt err=$OUT_DIR/raw.$1.$2.err
    shift 2
    say "bench: $target (round $round of $ROUNDS)"
    if [ "$target" = p11kit_log ]; then
        # p11-kit's log-calls writes to standard error: into a file that bench truncates
        # between repetitions; bench's own messages, if any, are at its end.
        run_target "$target" timeout 300 "$WORK/bench" "${TARGET_MODULE[$target]}" "$@" \
            --truncate "$WORK/p11kit-log.txt" >"$raw" 2>>"$WORK/p11kit-log.txt" ||
            tail -n 5 "$WORK/p11kit-log.txt" >"$err"
    else
        run_target "$target" timeout 300 "$WORK/bench" "${TARGET_MODULE[$target]}" "$@" \
            >"$raw" 2>"$err" || true
    fi
    if ! grep -q '^result ' "$raw"; then
        say "bench failed for $target:"
        cat "$err" >&2 2>/dev/null || true
        status=1
    fi
}
rm -f "$OUT_DIR"/raw.*
# Rounds interleave the targets, so that a slow spell of the machine hits all of them.
for ((round = 1; round <= ROUNDS; round++)); do
    bench_target direct "$round" --threads "$THREAD_ARG" --time-ms "$TIME_MS" --reps "$REPS"
    bench_target p11proxy "$round" --threads "$THREAD_ARG" --time-ms "$TIME_MS" --reps "$REPS"
    bench_target p11kit "$round" --threads "$THREAD_ARG" --time-ms "$TIME_MS" --reps "$REPS"
    # Overhead, paired (one thread; 2-thread loops this short would mostly time thread start-up).
    bench_target p11proxy_paired "$round" --threads 1 --time-ms "$PAIRED_TIME_MS" --reps "$PAIRED_REPS" --baseline "$WORK/libmock-fast-direct.so"
    bench_target p11kit_paired "$round" --threads 1 --time-ms "$PAIRED_TIME_MS" --reps "$PAIRED_REPS" --baseline "$WORK/libmock-fast-direct.so"
    bench_target traced "$round" --threads "$THREAD_ARG" --time-ms "$TRACE_TIME_MS" --reps "$REPS" --truncate "$WORK/trace.log"
    bench_target p11kit_log "$round" --threads 1 --time-ms "$TRACE_TIME_MS" --reps "$REPS"
done
p11kit_log_bytes=$(stat -c %s "$WORK/p11kit-log.txt")

# ---- Traced records whole and none lost, and what threads cost --------------------------
# One traced run of C_GetSessionInfo with the most threads into a fresh file, not truncated:
# every record must be whole (its header, its IN/OUT lines and their indented continuations,
# its own footer, nothing of another record in between) and there must be one per call: the
# warm-up's (up to 1000) and CHECK_CALLS per thread. Then bench --thread-memory (with no timed
# loops before it, whose exited threads' memory malloc would reuse) on the mock directly,
# through p11proxy and through p11proxy traced: what p11proxy's per-thread caches cost.
say "traced records: $MAX_THREADS threads x $CHECK_CALLS C_GetSessionInfo into one file, checked"
: >"$WORK/trace-check.log"
check_iterations=$((CHECK_CALLS * MAX_THREADS))
run_target traced_check "$WORK/bench" "${TARGET_MODULE[traced]}" --calls get_session_info --threads "$MAX_THREADS" \
    --iterations "$check_iterations" --reps 1 >"$OUT_DIR/raw.check.txt" 2>"$OUT_DIR/raw.check.err" ||
    { say "the traced check run failed"; cat "$OUT_DIR/raw.check.err" >&2; status=1; }
declare -A MEMORY_ALIVE MEMORY_EXITED
for target in direct p11proxy traced; do
    if run_target "$target" "$WORK/bench" "${TARGET_MODULE[$target]}" --calls none --threads "$MAX_THREADS" \
        --thread-memory >"$OUT_DIR/raw.memory.$target.txt" 2>"$OUT_DIR/raw.memory.$target.err"; then
        read -r MEMORY_ALIVE[$target] MEMORY_EXITED[$target] < <(awk '$1 == "thread_memory" {
            for (i = 2; i <= NF; i++) { split($i, p, "="); kv[p[1]] = p[2] }
            printf "%.1f %.1f\n", kv["alive_kb"] / kv["threads"], kv["exited_kb"] / kv["threads"] }' "$OUT_DIR/raw.memory.$target.txt")
    else
        say "bench --thread-memory failed for $target"
        cat "$OUT_DIR/raw.memory.$target.err" >&2
        status=1
    fi
done
warmup=$((check_iterations < 1000 ? check_iterations : 1000))
expected_records=$((warmup + check_iterations / MAX_THREADS * MAX_THREADS))
read -r whole_records broken_records < <(awk '
    /^C_[A-Za-z]+ \[/ { if (open) broken++; open = 1; name = $1; next }
    /^[ \t]/ { if (!open) broken++; next }
    /^C_[A-Za-z]+ = / { if (!open || $1 != name) broken++; else if (name == "C_GetSessionInfo") whole++; open = 0; next }
    { broken++ }
    END { if (open) broken++; print whole + 0, broken + 0 }' "$WORK/trace-check.log")
records_ok=0
[ "$whole_records" = "$expected_records" ] && [ "$broken_records" = 0 ] && records_ok=1

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print ""; else if (NR % 2) printf "%.3f", v[(NR + 1) / 2]; else printf "%.3f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# per_round TARGET CALL THREADS [KEY] -> each round's KEY (ns_per_call: aggregate ns per call), one a line
per_round() {
    local f
    for f in "$OUT_DIR"/raw."$1".*.txt; do
        [ -s "$f" ] || continue
        awk -v c="$2" -v t="$3" -v k="${4:-ns_per_call}" '$1 == "result" {
            delete kv; for (i = 2; i <= NF; i++) { split($i, p, "="); kv[p[1]] = p[2] }
            if (kv["call"] == c && kv["threads"] == t && k in kv) { print kv[k]; exit } }' "$f"
    done
}
result() { per_round "$@" | median; } # TARGET CALL THREADS [KEY] -> median over rounds, or empty
spread() { per_round "$@" | sort -n | awk 'NR == 1 { lo = $1 } { hi = $1 } END { if (NR) printf "%.1f-%.1f", lo, hi }'; }
field() { # TARGET RECORD KEY -> value of KEY in the first RECORD line of round 1
    awk -v r="$2" -v k="$3" '$1 == r { for (i = 2; i <= NF; i++) { split($i, p, "=");
        if (p[1] == k) { v = substr($i, length(k) + 2); gsub(/"/, "", v); print v; exit } } }' \
        "$OUT_DIR/raw.$1.1.txt" 2>/dev/null
}

# p11-kit must have loaded exactly the fast module.
for target in p11kit p11kit_paired p11kit_log; do
    count=$(field "$target" slots count)
    label=$(field "$target" slots label)
    if [ -n "$count" ]; then
        say "$target: p11-kit shows $count slot(s), first token '$label'"
        if [ "$count" != 1 ] || [ "$label" != mock-fast-1 ]; then
            say "p11-kit did not load only the fast module: its numbers are not comparable"
            status=1
            rm -f "$OUT_DIR"/raw."$target".*.txt
        fi
    fi
done
# p11-kit's log-calls really logged (else the column would measure nothing).
if [ -n "$(per_round p11kit_log get_session_info 1)" ] && [ "$p11kit_log_bytes" -eq 0 ]; then
    say "p11-kit log-calls wrote nothing: column dropped"
    rm -f "$OUT_DIR"/raw.p11kit_log.*.txt
fi

# ---- Loading: pkcs11-tool -L and in-process load, RSS ----------------------------------
# Interleaved: each run times the three targets back to back (the first one rotating), so the
# VM's drift over seconds falls on all three alike; the loading goal is judged on the median of
# the per-run differences p11proxy - p11-kit, as the call overhead is.
declare -A LOAD_MS INPROC_MS RSS_KB DIRTY_KB LOAD_TIMES INPROC_TIMES
LOAD_TARGETS=()
say "loading: pkcs11-tool -L x $LOAD_RUNS and bench --calls none x $LOAD_RUNS per target, interleaved"
for target in direct p11proxy p11kit; do
    run_target "$target" pkcs11-tool --module "${TARGET_MODULE[$target]}" -L >"$OUT_DIR/pkcs11-tool.$target.txt" 2>&1 ||
        { say "pkcs11-tool -L failed for $target"; cat "$OUT_DIR/pkcs11-tool.$target.txt" >&2; status=1; continue; }
    LOAD_TARGETS+=("$target")
done
LOAD_DIFFS=()
for ((i = 0; i < LOAD_RUNS; i++)); do
    count=${#LOAD_TARGETS[@]}
    declare -A this_run=()
    for ((j = 0; j < count; j++)); do
        target=${LOAD_TARGETS[$(((i + j) % count))]}
        module=${TARGET_MODULE[$target]}
        start=$EPOCHREALTIME
        run_target "$target" pkcs11-tool --module "$module" -L >/dev/null 2>&1 || true
        end=$EPOCHREALTIME
        this_run[$target]=$(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.3f", (e - s) * 1000 }')
        LOAD_TIMES[$target]+="${this_run[$target]} "
        # In-process: dlopen + C_GetInterface/C_GetFunctionList + C_Initialize, one session.
        run_target "$target" "$WORK/bench" "$module" --calls none --threads 1 >"$OUT_DIR/load.$target.txt" 2>&1 || true
        INPROC_TIMES[$target]+="$(awk '$1 == "load" { s = 0; for (i = 2; i <= NF; i++) { split($i, p, "="); s += p[2] } printf "%.3f", s }' \
            "$OUT_DIR/load.$target.txt") "
    done
    if [ -n "${this_run[p11proxy]:-}" ] && [ -n "${this_run[p11kit]:-}" ]; then
        LOAD_DIFFS+=("$(awk -v a="${this_run[p11proxy]}" -v b="${this_run[p11kit]}" 'BEGIN { printf "%.3f", a - b }')")
    fi
    unset this_run
done
for target in "${LOAD_TARGETS[@]}"; do
    LOAD_MS[$target]=$(tr ' ' '\n' <<<"${LOAD_TIMES[$target]}" | grep . | median | xargs printf '%.2f')
    INPROC_MS[$target]=$(tr ' ' '\n' <<<"${INPROC_TIMES[$target]}" | grep . | median | xargs printf '%.2f')
    for key in delta_kb dirty_delta_kb; do
        value=$(awk -v k="$key" '$1 == "rss" { for (i = 2; i <= NF; i++) { split($i, p, "="); if (p[1] == k) print p[2] } }' \
            "$OUT_DIR/load.$target.txt")
        if [ "$key" = delta_kb ]; then RSS_KB[$target]=$value; else DIRTY_KB[$target]=$value; fi
    done
done
LOAD_DIFF_MS=""
LOAD_DIFF_RANGE=""
if ((${#LOAD_DIFFS[@]} > 0)); then
    LOAD_DIFF_MS=$(printf '%s\n' "${LOAD_DIFFS[@]}" | median | xargs printf '%.2f')
    LOAD_DIFF_RANGE=$(printf '%s\n' "${LOAD_DIFFS[@]}" | sort -n |
        awk '{ v[NR] = $1 } END { printf "%.2f to %.2f", v[int((NR + 3) / 4)], v[int((3 * NR + 3) / 4)] }')
fi

stripped_size() { # FILE -> bytes after strip --strip-all
    local tmp=$WORK/stripped.so
    strip --strip-all -o "$tmp" "$1" && stat -c %s "$tmp" && rm -f "$tmp"
}
SIZE_PROXY=$(stripped_size "$PROXY_SO")
SIZE_P11KIT=$(stripped_size "$(readlink -f "$P11KIT_PROXY")")
SIZE_MOCK=$(stripped_size "$MOCK_FAST")

# ---- The table -------------------------------------------------------------------------
num() { [ -n "$1" ]; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
fmt_ns() { if num "$1"; then calc "%.1f" "$1"; else printf 'n/a'; fi; }
mark() { if [ "$1" = 1 ]; then printf 'met'; else printf '**not met**'; fi; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { print (a <= b) ? 1 : 0 }'; }
scale() { if num "$1" && num "$2"; then calc "%.2f" "$1 / $2"; else printf 'n/a'; fi; } # ns 1T / ns 2T

p11kit_version=$(dpkg-query -W -f '${Version}' p11-kit-modules 2>/dev/null || pkg-config --modversion p11-kit-1)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- Sources include Package.swift 2>/dev/null || commit="$commit+local changes"
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)

{
    echo "## Benchmark: libmock-fast.so direct, through p11proxy, through p11-kit-proxy.so"
    echo
    echo "$(date -u +%Y-%m-%d), p11proxy $commit, p11-kit $p11kit_version, $(nproc) x $cpu;" \
        "load average before the run $load1. \`scripts/bench.sh\` (\`make bench\`); raw output in \`$OUT_DIR/raw.*.txt\`."
    echo "ns per iteration of the row's calls: in each of $ROUNDS processes per target (interleaved), the median of" \
        "$REPS loops of ~${TIME_MS} ms (traced: ~${TRACE_TIME_MS} ms); the table shows the median over the processes."
    echo "Overhead: measured in pairs. The proxies' processes also load a copy of the mock under another name" \
        "(\`bench --baseline\`) and time each ~${PAIRED_TIME_MS} ms proxy loop back to back with the same loop on" \
        "that copy, $PAIRED_REPS pairs, alternating which goes first; overhead is the median of the pairs'" \
        "differences (median over the processes). This VM's speed drifts by up to a third over seconds, which" \
        "separate processes seconds apart would count as overhead. Scaling = calls/s with 2 threads (each its own session) / calls/s with 1."
    echo
    echo "| call | direct ns | p11proxy ns | p11proxy overhead | p11-kit ns | p11-kit overhead | overhead ratio p11proxy/p11-kit (goal <= 0.33) | 2T/1T direct | 2T/1T p11proxy (goal >= 1.7) | 2T/1T p11-kit | traced p11proxy: + ns over p11proxy (goal < 1000 per call) | p11-kit log-calls: + ns over p11-kit |"
    echo "|---|---:|---:|---:|---:|---:|---|---:|---|---:|---|---:|"
    for call in "${CALLS[@]}"; do
        d=$(result direct "$call" 1)
        p=$(result p11proxy "$call" 1)
        k=$(result p11kit "$call" 1)
        tr=$(result traced "$call" 1)
        kl=$(result p11kit_log "$call" 1)
        d2=$(result direct "$call" 2)
        p2=$(result p11proxy "$call" 2)
        k2=$(result p11kit "$call" 2)
        # Overhead: the paired measurement (each proxy loop next to the mock's own, same process).
        po=$(result p11proxy_paired "$call" 1 overhead_ns); ko=$(result p11kit_paired "$call" 1 overhead_ns)
        num "$po" && po=$(calc "%.1f" "$po")
        num "$ko" && ko=$(calc "%.1f" "$ko")
        ratio="n/a"
        if num "$po" && num "$ko"; then
            # Goal: p11proxy's overhead <= 1/3 of p11-kit's (also when p11-kit adds nothing).
            goal_ok=$(awk -v a="$po" -v b="$ko" 'BEGIN { print (a <= b / 3) ? 1 : 0 }')
            # Two decimals, three where two would hide which side of 1/3 it is on.
            ratio=$(awk -v a="$po" -v b="$ko" 'BEGIN { if (b <= 0) { print "p11-kit adds none,"; exit }
                r = a / b; d = r - 1 / 3; printf((d < 0 ? -d : d) < 0.005 ? "%.3f" : "%.2f", r) }')
            ratio="$ratio $(mark "$goal_ok")"
            if [ "$call" = get_session_info ] || [ "$call" = get_attribute_value ]; then
                ratio="$ratio; overhead < 5 ns: $(mark "$(awk -v a="$po" 'BEGIN { print (a < 5) ? 1 : 0 }')")"
            fi
        fi
        sd=$(scale "$d" "$d2"); sp=$(scale "$p" "$p2"); sk=$(scale "$k" "$k2")
        if [ "${SESSION_ROUTED[$call]:-}" = 1 ] && [ "$sp" != n/a ]; then
            sp="$sp $(mark "$(awk -v s="$sp" 'BEGIN { print (s >= 1.7) ? 1 : 0 }')")"
        fi
        traced="n/a"
        if num "$tr" && num "$p"; then
            t_ovh=$(calc "%.0f" "$tr - $p")
            t_per=$(calc "%.0f" "($tr - $p) / ${CALLS_PER_ROW[$call]}")
            traced="$t_ovh"
            [ "${CALLS_PER_ROW[$call]}" -gt 1 ] && traced="$traced ($t_per per call)"
            traced="$traced $(mark "$(awk -v a="$t_per" 'BEGIN { print (a < 1000) ? 1 : 0 }')")"
        fi
        klog="n/a"
        num "$kl" && num "$k" && klog=$(calc "%.0f" "$kl - $k")
        echo "| ${LABEL[$call]} | $(fmt_ns "$d") | $(fmt_ns "$p") | ${po:-n/a} | $(fmt_ns "$k") | ${ko:-n/a} | $ratio | $sd | $sp | $sk | $traced | $klog |"
    done
    echo
    for target in p11proxy direct p11kit; do
        printf '1-thread ns per process (lowest-highest), %s:' "$target"
        for call in "${CALLS[@]}"; do printf ' %s %s' "${SHORT[$call]}" "$(spread "$target" "$call" 1)"; done
        echo "."
    done
    echo
    echo "2T/1T direct is what the machine allows (the fast mock shares nothing between threads," \
        "C_OpenSession + C_CloseSession included); p11-kit serialises its proxy on one process-wide" \
        "lock. The scaling goal of this table applies to the calls that take only a session handle; the" \
        "scaling table below has the others."
    echo "Traced: \`P11PROXY_LOG_CALLS=yes P11PROXY_LOG_FILE=<file>\` (text); p11-kit: \`log-calls: yes\`" \
        "in its .module file, records to standard error redirected to a file. Both files are truncated" \
        "between repetitions, outside the timed loops. Both trace only calls that reach the module" \
        "(each proxy answers C_GetInfo itself; in that row, overhead compares the proxy's own answer with the mock's)."
    echo
    echo "### Scaling: calls per second with T threads / with 1 thread"
    echo
    echo "Each thread its own session; ns per call = wall time / all threads' calls (median over the" \
        "processes); xT = 1-thread ns / T-thread ns. Traced: text to one file. Thread counts:" \
        "\`BENCH_THREADS=\"${THREAD_COUNTS[*]}\"\` (\`make bench THREADS=\"...\"\`) on $(nproc) CPUs." \
        "Goals at 2 threads: open+close through p11proxy >= 1.6x and >= 0.9 of the mock's own ratio;" \
        "traced C_GetSessionInfo >= 1.6x; session calls untraced >= 1.7x (table above)." \
        "Threads on CPU: the threads' CPU time / (threads x wall time), median over the loops" \
        "(then the processes): below 100% the threads waited (a lock, the scheduler) or the" \
        "hypervisor ran something else on their CPUs, which also slows that loop's figure."
    echo
    echo "| call | threads | direct ns | p11proxy ns | traced ns | p11-kit ns | direct xT | p11proxy xT | p11proxy / direct scaling | traced xT | p11-kit xT | threads on CPU: direct, p11proxy, traced |"
    echo "|---|---:|---:|---:|---:|---:|---:|---|---:|---|---:|---|"
    for call in "${CALLS[@]}"; do
        d1=$(result direct "$call" 1); p1=$(result p11proxy "$call" 1); t1=$(result traced "$call" 1); k1=$(result p11kit "$call" 1)
        for t in "${THREAD_COUNTS[@]}"; do
            d=$(result direct "$call" "$t"); p=$(result p11proxy "$call" "$t"); tr=$(result traced "$call" "$t"); k=$(result p11kit "$call" "$t")
            sd=$(scale "$d1" "$d"); sp=$(scale "$p1" "$p"); st=$(scale "$t1" "$tr"); sk=$(scale "$k1" "$k")
            rel=n/a
            [ "$sp" != n/a ] && [ "$sd" != n/a ] && rel=$(calc "%.2f" "$sp / $sd")
            if [ "$t" = 2 ] && [ "$call" = open_close ] && [ "$sp" != n/a ] && [ "$rel" != n/a ]; then
                sp="$sp $(mark "$(awk -v s="$sp" -v r="$rel" 'BEGIN { print (s >= 1.6 && r >= 0.9) ? 1 : 0 }')")"
            fi
            if [ "$t" = 2 ] && [ "$call" = get_session_info ] && [ "$st" != n/a ]; then
                st="$st $(mark "$(awk -v s="$st" 'BEGIN { print (s >= 1.6) ? 1 : 0 }')")"
            fi
            if [ "$t" = 16 ] && { [ "$call" = open_close ] || [ "$call" = get_session_info ]; }; then
                [ "$sp" != n/a ] && [ "$call" = open_close ] && sp="$sp (aim >= 10: $(mark "$(awk -v s="${sp%% *}" 'BEGIN { print (s >= 10) ? 1 : 0 }')"))"
                [ "$st" != n/a ] && [ "$call" = get_session_info ] && st="$st (aim >= 10: $(mark "$(awk -v s="${st%% *}" 'BEGIN { print (s >= 10) ? 1 : 0 }')"))"
            fi
            on_cpu=""
            for target in direct p11proxy traced; do
                share=$(result "$target" "$call" "$t" cpu_share)
                on_cpu+="${on_cpu:+, }$(if num "$share"; then calc "%.0f%%" "$share * 100"; else printf 'n/a'; fi)"
            done
            echo "| ${LABEL[$call]} | $t | $(fmt_ns "$d") | $(fmt_ns "$p") | $(fmt_ns "$tr") | $(fmt_ns "$k") | $sd | $sp | $rel | $st | $sk | $on_cpu |"
        done
    done
    echo
    echo "Traced records, $MAX_THREADS threads into one file ($CHECK_CALLS C_GetSessionInfo each, plus warm-up):" \
        "$whole_records whole C_GetSessionInfo records of $expected_records calls, $broken_records broken lines:" \
        "$(mark "$records_ok")."
    echo
    cache_indices=$(sed -n 's/.*static let cacheCapacity = \([0-9]*\).*/\1/p' Sources/P11Proxy/Routing/SessionIndexPool.swift)
    trace_limit=$(sed -n 's/.*static let threadBufferLimit = \([0-9 *]*\).*/\1/p' Sources/P11Proxy/Tracing/TraceOutput.swift)
    echo "| per-thread memory: $MAX_THREADS threads alive, each after 64 open+close and 64 C_GetSessionInfo | direct | p11proxy | p11proxy traced |"
    echo "|---|---:|---:|---:|"
    echo "| private dirty gained while they live, kB per thread | ${MEMORY_ALIVE[direct]:-n/a} | ${MEMORY_ALIVE[p11proxy]:-n/a} | ${MEMORY_ALIVE[traced]:-n/a} |"
    echo "| still held after they exited, kB per thread | ${MEMORY_EXITED[direct]:-n/a} | ${MEMORY_EXITED[p11proxy]:-n/a} | ${MEMORY_EXITED[traced]:-n/a} |"
    echo
    echo "p11proxy's per-thread caches, by construction: a cache of at most $cache_indices free session" \
        "indices ($(( (cache_indices * 4 + 63) / 64 * 64 + 64 )) bytes in whole cache lines, kept for the next thread after its thread exits, so" \
        "as many as the most threads alive at once); per tracing thread, records not yet written (written" \
        "at $((trace_limit)) bytes, or up to 4 times that while another thread writes the same file, plus its largest record) and the" \
        "scratch its records are built in; both freed when the thread exits. The direct column is the" \
        "threads' own cost (stacks, libc); p11proxy's is the difference."
    echo
    echo "| loading and memory | direct | p11proxy | p11-kit-proxy.so | goal |"
    echo "|---|---:|---:|---:|---|"
    lp=${LOAD_MS[p11proxy]:-}; lk=${LOAD_MS[p11kit]:-}
    load_goal="n/a"
    num "$LOAD_DIFF_MS" && load_goal="p11proxy - p11-kit, median of the runs' differences: $LOAD_DIFF_MS ms (quartiles $LOAD_DIFF_RANGE), <= 0: $(mark "$(le "$LOAD_DIFF_MS" 0)")"
    echo "| \`pkcs11-tool -L\`, median of $LOAD_RUNS interleaved runs, ms | ${LOAD_MS[direct]:-n/a} | ${lp:-n/a} | ${lk:-n/a} | $load_goal |"
    echo "| in process: dlopen + C_GetInterface/C_GetFunctionList + C_Initialize, median of $LOAD_RUNS, ms | ${INPROC_MS[direct]:-n/a} | ${INPROC_MS[p11proxy]:-n/a} | ${INPROC_MS[p11kit]:-n/a} | |"
    echo "| stripped file size, bytes | $SIZE_MOCK (the mock) | $SIZE_PROXY | $SIZE_P11KIT | |"
    echo "| VmRSS gained: dlopen + list + C_Initialize + 1 session, kB | ${RSS_KB[direct]:-n/a} | ${RSS_KB[p11proxy]:-n/a} | ${RSS_KB[p11kit]:-n/a} | |"
    echo "| of which private dirty (the rest: clean pages of the library file, shared and reclaimable), kB | ${DIRTY_KB[direct]:-n/a} | ${DIRTY_KB[p11proxy]:-n/a} | ${DIRTY_KB[p11kit]:-n/a} | |"
    echo
    echo "p11-kit ran as \`$BENCH_USER\` (as root it ignores user configuration) with" \
        "\`XDG_CONFIG_HOME\` holding \`pkcs11/pkcs11.conf\` (\`user-config: only\`) and" \
        "\`pkcs11/modules/fast.module\` (\`module: <abs path>/libmock-fast.so\`); it showed" \
        "$(field p11kit slots count || true) slot(s), token '$(field p11kit slots label || true)'." \
        "Every target ran the same way (same user, wrapper and copies of the binaries)."
} >"$OUT_DIR/results.md"

cat "$OUT_DIR/results.md"
[ "$status" = 0 ] || say "some runs failed (see above); the table shows n/a for them"
exit "$status"
