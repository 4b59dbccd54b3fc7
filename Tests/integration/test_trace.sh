#!/usr/bin/env bash
# The call tracer (log-calls) end to end, as a user switches it on:
#   1. golden traces, one small pair (text + JSON) per family of calls, made by
#      build/tests/trace_calls over the mock module mock-a;
#   2. redaction: PINs, imported key bytes, plaintext and random bytes stay out of a trace
#      unless x-log-secrets (config key or P11PROXY_LOG_SECRETS), over the mock and SoftHSM2;
#   3. concurrency: 8 threads tracing into one file (build/tests/trace_concurrency), every
#      record whole and counted exactly;
#   4. spy mode (P11PROXY_MODULE) and `log-calls: yes` in one .module file with pkcs11-tool
#      over SoftHSM2; x-log-file (mode 0600) and P11PROXY_LOG_FORMAT=json;
#   5. the file-buffering rules (trace_calls flush).
#
#   bash Tests/integration/test_trace.sh                  # PROXY_SO defaults to build/lib/libp11proxy.so
#   UPDATE_GOLDEN=1 bash Tests/integration/test_trace.sh  # rewrite Tests/golden/trace/* (then review the diff!)
#   KEEP=1 ...                                            # keep the work dir (traces, logs)
#
# Golden files are compared after normalising what changes from run to run: timestamps,
# durations, thread ids and pointer values (normalise_text / normalise_json below).
# Prints ok / not ok lines and ends with "N passed, N failed"; exits non-zero on failure.
# SC2317: cleanup, jq_true and the python helpers are called indirectly (trap, check).
# shellcheck disable=SC2317
set -uo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_tools make cc python3 jq pkcs11-tool softhsm2-util timeout || exit 1

GOLDEN_DIR=$REPO/Tests/golden/trace
BUILD=${BUILD_DIR:-build}
[[ $BUILD == /* ]] || BUILD=$REPO/$BUILD
MOCKS=$BUILD/mock
TESTS=$BUILD/tests
UPDATE=${UPDATE_GOLDEN:-0}
# A hung call must fail a check, not stall the suite.
CALL_TIMEOUT=${CALL_TIMEOUT:-60}

# Whatever the calling shell has set must not change what is traced.
unset P11PROXY_MODULE P11PROXY_CONFIG_DIR P11PROXY_LOG_CALLS P11PROXY_LOG_FILE \
    P11PROXY_LOG_FORMAT P11PROXY_LOG_SECRETS

WORK=$(mktemp -d "${TMPDIR:-/tmp}/p11proxy-trace.XXXXXX")
cleanup() {
    if [[ ${KEEP:-0} == 1 ]]; then echo "# kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
RUN_DIR=$WORK/runs
mkdir -p "$RUN_DIR"
note "proxy: $PROXY_SO" "build: $BUILD" "work:  $WORK"

if [[ ! -f $PROXY_SO ]]; then
    fail "proxy module exists" "$PROXY_SO not found: build it first (make build)"
    finish
fi
if ! make -s -C "$REPO" -f Tests/C/tests.mk BUILD_DIR="$BUILD" trace-tests >"$RUN_DIR/make.log" 2>&1; then
    fail "build the trace programs (make -f Tests/C/tests.mk trace-tests)" "$(tail -n 20 "$RUN_DIR/make.log")"
    finish
fi

# --- helpers -----------------------------------------------------------------------------

# mock_config DIR MODULE_LINES [PKCS11_CONF_LINES]: DIR/modules/mock-a.module (module: line
# plus MODULE_LINES) and, when given, DIR/pkcs11.conf. Lines are separated by '\n'.
# MOCK (default mock-a) names the mock module.
mock_config() {
    local dir=$1 module_lines=$2 conf_lines=${3:-} mock=${MOCK:-mock-a}
    rm -rf "$dir"
    mkdir -p "$dir/modules"
    printf 'module: %s\n%b' "$MOCKS/lib$mock.so" "$module_lines" >"$dir/modules/$mock.module"
    if [[ -n $conf_lines ]]; then printf '%b' "$conf_lines" >"$dir/pkcs11.conf"; fi
}

# The parts of a record that differ between runs. Text: the header's tid, start time and
# duration; JSON: "time", "thread", "duration_us". Pointers (9+ hex digits) in both.
normalise_text() {
    sed -E '/^C_[A-Za-z]+ \[/{
        s/ tid=[0-9]+ / tid=TID /
        s/ [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z / TIME /
        s/ [0-9]+\.[0-9]{3}us\]$/ DURATION]/
    }
    s/0x[0-9A-Fa-f]{9,16}/0xPTR/g' "$1"
}
normalise_json() {
    sed -E 's/"time":"[^"]*"/"time":"TIME"/
        s/"thread":[0-9]+/"thread":"TID"/
        s/"duration_us":[0-9]+\.[0-9]{3}/"duration_us":"DURATION"/
        s/0x[0-9A-Fa-f]{9,16}/0xPTR/g' "$1"
}

# every_line_is_json FILE: each line on its own one JSON object (jq would also accept an
# object split over two lines, so python parses line by line).
every_line_is_json() {
    python3 -c '
import json, sys
lines = open(sys.argv[1], "rb").read().decode("utf-8").split("\n")
assert lines[-1] == "" and len(lines) > 1, "empty, or no newline at the end"
for n, line in enumerate(lines[:-1], 1):
    assert isinstance(json.loads(line), dict), f"line {n} is not an object"
' "$1"
}

# trace_calls NAME FAMILY ENV...: runs the program with ENV (VAR=value...); result in RUN_RC.
trace_calls() {
    local name=$1 family=$2
    shift 2
    run "$name" env "$@" timeout "$CALL_TIMEOUT" "$TESTS/trace_calls" "$PROXY_SO" "$MOCKS" "$family"
}

# check_program DESC NAME: the last trace_calls/trace_concurrency run passed all its checks.
check_program() {
    local desc=$1 name=$2
    if ((RUN_RC == 0)) && grep -q '^# [0-9]* passed, 0 failed' "$RUN_DIR/$name.out"; then
        pass "$desc"
    else
        fail "$desc" "exit code $RUN_RC" "$(grep '^not ok' "$RUN_DIR/$name.out" | head -n 10)" \
            "stderr: $(tail -n 5 "$RUN_DIR/$name.err")"
    fi
}

# check_golden NAME ACTUAL GOLDEN: compares (or, with UPDATE_GOLDEN=1, rewrites) a golden file.
check_golden() {
    local desc=$1 actual=$2 golden=$3
    if [[ $UPDATE == 1 ]]; then
        mkdir -p "$(dirname "$golden")"
        cp "$actual" "$golden"
        pass "$desc (golden rewritten: ${golden#"$REPO"/})"
    elif [[ ! -f $golden ]]; then
        fail "$desc" "no golden file ${golden#"$REPO"/}; create it with UPDATE_GOLDEN=1"
    elif cmp -s "$actual" "$golden"; then
        pass "$desc"
    else
        fail "$desc" "differs from ${golden#"$REPO"/} (< golden, > now):" \
            "$(diff "$golden" "$actual" | head -n 30)"
    fi
}

# absent DESC FILE NEEDLE...: none of the needles (fixed strings, any case) is in FILE.
absent() {
    local desc=$1 file=$2 needle found=()
    shift 2
    for needle in "$@"; do
        grep -qiF -- "$needle" "$file" && found+=("$needle")
    done
    if ((${#found[@]} == 0)) && [[ -s $file ]]; then
        pass "$desc"
    elif [[ ! -s $file ]]; then
        fail "$desc" "$file is empty: nothing was traced"
    else
        fail "$desc" "found in $file: ${found[*]}" "$(grep -niF -- "${found[0]}" "$file" | head -n 3)"
    fi
}

# present DESC FILE NEEDLE...: every needle (fixed string, any case) is in FILE.
present() {
    local desc=$1 file=$2 needle missing=()
    shift 2
    for needle in "$@"; do
        grep -qiF -- "$needle" "$file" || missing+=("$needle")
    done
    if ((${#missing[@]} == 0)); then
        pass "$desc"
    else
        fail "$desc" "missing from $file: ${missing[*]}"
    fi
}

jq_true() { jq -e "$@" >/dev/null 2>&1; }

hex_of() { printf '%s' "$1" | od -An -tx1 -v | tr -d ' \n' | tr 'a-f' 'A-F'; }

# --- 1. golden traces ----------------------------------------------------------------------
# Text through the .module key and P11PROXY_LOG_FILE; JSON through pkcs11.conf only
# (log-calls, x-log-file, x-log-format), so both ways of switching tracing on are used.

for family in general slot session object crypto v3 v32; do
    MOCK=mock-a
    [[ $family == v32 ]] && MOCK=mock-v32
    text=$WORK/$family.txt
    json=$WORK/$family.jsonl
    mock_config "$WORK/conf-$family-text" 'log-calls: yes\n'
    trace_calls "$family-text" "$family" P11PROXY_CONFIG_DIR="$WORK/conf-$family-text" P11PROXY_LOG_FILE="$text"
    check_program "trace_calls $family (text): every call answered as expected" "$family-text"
    normalise_text "$text" >"$text.norm"
    check_golden "golden $family.txt" "$text.norm" "$GOLDEN_DIR/$family.txt"

    mock_config "$WORK/conf-$family-json" '' "log-calls: yes\nx-log-file: $json\nx-log-format: json\n"
    trace_calls "$family-json" "$family" P11PROXY_CONFIG_DIR="$WORK/conf-$family-json"
    check_program "trace_calls $family (JSON): every call answered as expected" "$family-json"
    check "$family.jsonl: every line is a JSON object" every_line_is_json "$json"
    normalise_json "$json" >"$json.norm"
    check_golden "golden $family.jsonl" "$json.norm" "$GOLDEN_DIR/$family.jsonl"
done
unset MOCK

# The header fields a golden file normalises away are still well-formed.
check "text headers: tid, UTC time with microseconds, duration" \
    grep -qE '^C_Initialize \[mock-a caller=1 tid=[0-9]+ 20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9]\.[0-9]{6}Z [0-9]+\.[0-9]{3}us\]$' \
    "$WORK/general.txt"
check "JSON: time, thread and duration_us have their types" \
    jq_true -s 'all(.[]; (.time | test("^20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\\.[0-9]{6}Z$"))
                      and (.thread | type == "number") and (.caller == 1) and (.module == "mock-a")
                      and ((.duration_us | type == "number") or .phase == "waiting"))' "$WORK/crypto.jsonl"
# C_GetInfo is answered by p11proxy itself: no record, although trace_calls called it.
check "general: C_GetInfo (answered by the proxy) leaves no record" \
    bash -c "! grep -q '^C_GetInfo' '$WORK/general.txt'"

# --- 2. redaction --------------------------------------------------------------------------
# trace_calls secrets: C_SetPIN 1234 -> SECRET_PIN, C_Login SECRET_PIN, a secret key with
# CKA_VALUE 16 x 0x5A, C_Encrypt/C_Decrypt of SECRET_PLAIN, C_GetAttributeValue(CKA_VALUE),
# C_GenerateRandom of 12 bytes (mock-a's counter: 00 01 .. 0B).
SECRET_PIN="Tr4ce-PIN-x9"
SECRET_PLAIN="Attack at dawn, 0xC0FFEE!"
KEY_HEX=5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A
RANDOM_HEX=000102030405060708090A0B
SECRETS_HIDDEN=("$SECRET_PIN" "$(hex_of "$SECRET_PIN")" 1234 "$(hex_of 1234)" "$KEY_HEX" ZZZZZZZZZZZZZZZZ
    "$SECRET_PLAIN" "$(hex_of "$SECRET_PLAIN")" "$RANDOM_HEX")
# With secrets on, the trace shows buffers in hex.
SECRETS_SHOWN=("$(hex_of "$SECRET_PIN")" "$(hex_of 1234)" "$KEY_HEX" "$(hex_of "$SECRET_PLAIN")" "$RANDOM_HEX")
# SetPIN (2), Login, CreateObject, Encrypt, Decrypt, GetAttributeValue, GenerateRandom.
REDACTED_FIELDS=8

redaction_run() { # NAME FORMAT MODULE_LINES CONF_LINES ENV...
    local name=$1 format=$2 module_lines=$3 conf_lines=$4
    shift 4
    mock_config "$WORK/conf-$name" "$module_lines" "$conf_lines"
    trace_calls "$name" secrets P11PROXY_CONFIG_DIR="$WORK/conf-$name" P11PROXY_LOG_FILE="$WORK/$name.trace" \
        P11PROXY_LOG_FORMAT="$format" "$@"
    check_program "trace_calls secrets ($name): every call answered as expected" "$name"
    # Headers hold times and durations, where "1234" may occur by chance.
    if [[ $format == json ]]; then normalise_json "$WORK/$name.trace"; else normalise_text "$WORK/$name.trace"; fi \
        >"$WORK/$name.norm"
}

redaction_run secrets-default-text text 'log-calls: yes\n' ''
absent "default text trace: no PIN, key byte, plaintext or random byte" "$WORK/secrets-default-text.norm" "${SECRETS_HIDDEN[@]}"
check_eq "default text trace: the $REDACTED_FIELDS secret fields are there, as (N) <redacted>" "$REDACTED_FIELDS" \
    "$(grep -cE '\([0-9]+\) <redacted>' "$WORK/secrets-default-text.trace")"
check_contains "default text trace: the imported key's CKA_VALUE is (16) <redacted>" \
    '{ CKA_VALUE = (16) <redacted> }' "$(grep '^  IN: pTemplate' "$WORK/secrets-default-text.trace")"

redaction_run secrets-default-json json '' 'log-calls: yes\n'
absent "default JSON trace: no PIN, key byte, plaintext or random byte" "$WORK/secrets-default-json.norm" "${SECRETS_HIDDEN[@]}"
check_eq "default JSON trace: the $REDACTED_FIELDS secret fields are {\"len\":N,\"redacted\":true}" "$REDACTED_FIELDS" \
    "$(grep -oE '\{"len":[0-9]+,"redacted":true\}' "$WORK/secrets-default-json.trace" | wc -l)"

redaction_run secrets-conf-key text '' 'log-calls: yes\nx-log-secrets: yes\n'
present "x-log-secrets: yes in pkcs11.conf: PINs, key, plaintext and random bytes shown" "$WORK/secrets-conf-key.norm" "${SECRETS_SHOWN[@]}"
check "x-log-secrets: yes in pkcs11.conf: nothing redacted" bash -c "! grep -q redacted '$WORK/secrets-conf-key.trace'"

redaction_run secrets-module-key json 'log-calls: yes\nx-log-secrets: yes\n' ''
present "x-log-secrets: yes in the .module file: PINs, key, plaintext and random bytes shown" "$WORK/secrets-module-key.norm" "${SECRETS_SHOWN[@]}"

redaction_run secrets-env json 'log-calls: yes\n' '' P11PROXY_LOG_SECRETS=yes
present "P11PROXY_LOG_SECRETS=yes: PINs, key, plaintext and random bytes shown" "$WORK/secrets-env.norm" "${SECRETS_SHOWN[@]}"

redaction_run secrets-env-off text 'log-calls: yes\nx-log-secrets: yes\n' '' P11PROXY_LOG_SECRETS=no
absent "P11PROXY_LOG_SECRETS=no overrides x-log-secrets: yes" "$WORK/secrets-env-off.norm" "${SECRETS_HIDDEN[@]}"

# --- 3. concurrency ------------------------------------------------------------------------

# check_concurrent_trace DESC FORMAT TRACE PROGRAM_OUT: parses the whole trace (every JSON
# line, or every text record from its header to its own footer with nothing foreign in
# between) and compares the records per function with what mock-a counted, and per
# session: rounds of each call, all from one thread.
cat >"$WORK/check_concurrent_trace.py" <<'EOF'
import collections, json, re, sys

fmt, trace_path, out_path = sys.argv[1:4]
expect = {}
sessions = rounds = None
for line in open(out_path):
    m = re.match(r"# expect (C_\w+) (\d+)$", line)
    if m:
        expect[m.group(1)] = int(m.group(2))
    m = re.match(r"# sessions (\d+) rounds (\d+)$", line)
    if m:
        sessions, rounds = int(m.group(1)), int(m.group(2))
problems = []
if not expect or sessions is None:
    sys.exit("trace_concurrency printed no expectations")

records = []  # (function, session or None, thread)
data = open(trace_path, "rb").read().decode("utf-8")
lines = data.split("\n")
if lines and lines[-1] == "":
    lines.pop()
else:
    problems.append("the file does not end with a newline")
if fmt == "json":
    for n, line in enumerate(lines, 1):
        try:
            r = json.loads(line)
        except ValueError as e:
            problems.append(f"line {n} is not JSON ({e}): {line[:120]}")
            continue
        missing = {"time", "thread", "module", "caller", "function", "duration_us", "in", "out", "rv", "rv_value"} - set(r)
        if missing:
            problems.append(f"line {n} lacks {sorted(missing)}")
            continue
        records.append((r["function"], r["in"].get("hSession"), r["thread"]))
else:
    header = re.compile(r"^(C_\w+) \[mock-a caller=\d+ tid=(\d+) \S+Z \d+\.\d{3}us\]$")
    field = re.compile(r"^(  IN| OUT): \w+ = ")
    current = None
    for n, line in enumerate(lines, 1):
        if current is None:
            m = header.match(line)
            if not m:
                problems.append(f"line {n}: expected a record header, got: {line[:120]}")
                continue
            current = [m.group(1), None, int(m.group(2))]
        elif line.startswith(current[0] + " = "):
            if not re.match(r"^C_\w+ = CKR_\w+$", line):
                problems.append(f"line {n}: bad footer {line[:120]}")
            records.append(tuple(current))
            current = None
        elif field.match(line) or line.startswith("\t") or line == "      }":
            m = re.match(r"^  IN: hSession = S(\d+)$", line)
            if m:
                current[1] = int(m.group(1))
        else:
            problems.append(f"line {n}: foreign line inside a {current[0]} record: {line[:120]}")
    if current is not None:
        problems.append(f"the last record ({current[0]}) has no footer")

counts = collections.Counter(f for f, _, _ in records)
for function in sorted(set(expect) | set(counts)):
    if counts[function] != expect.get(function, 0):
        problems.append(f"{function}: {counts[function]} records, {expect.get(function, 0)} calls")
per_session = collections.defaultdict(collections.Counter)
threads = collections.defaultdict(set)
for f, s, t in records:
    if f in ("C_DigestInit", "C_Digest", "C_GetSessionInfo"):
        per_session[s][f] += 1
        threads[s].add(t)
if len(per_session) != sessions:
    problems.append(f"{len(per_session)} sessions in the trace, {sessions} expected")
for s, c in sorted(per_session.items(), key=lambda kv: str(kv[0])):
    if any(c[f] != rounds for f in ("C_DigestInit", "C_Digest", "C_GetSessionInfo")):
        problems.append(f"session {s}: {dict(c)}, {rounds} of each expected")
    if len(threads[s]) != 1:
        problems.append(f"session {s}: records from {len(threads[s])} threads, 1 expected")
if len({t for ts in threads.values() for t in ts}) != sessions:
    problems.append("the sessions' records do not come from distinct threads")
if problems:
    print("\n".join(problems[:20]))
    sys.exit(1)
print(f"{len(records)} records, {len(counts)} functions")
EOF
check_concurrent_trace() {
    local desc=$1 format=$2 trace=$3 out=$4 result
    if result=$(python3 "$WORK/check_concurrent_trace.py" "$format" "$trace" "$out" 2>&1); then
        pass "$desc ($result)"
    else
        fail "$desc" "$result"
    fi
}

for format in json text; do
    trace=$WORK/concurrency.$format
    mock_config "$WORK/conf-concurrency-$format" 'log-calls: yes\n'
    run "concurrency-$format" env P11PROXY_CONFIG_DIR="$WORK/conf-concurrency-$format" P11PROXY_LOG_FILE="$trace" \
        P11PROXY_LOG_FORMAT="$format" timeout "$CALL_TIMEOUT" "$TESTS/trace_concurrency" "$PROXY_SO" "$MOCKS"
    check_program "trace_concurrency ($format): 8 threads x ${TRACE_ROUNDS:-500} rounds answered as expected" \
        "concurrency-$format"
    check_concurrent_trace "concurrency ($format): every record whole, records per function = calls mock-a saw" \
        "$format" "$trace" "$RUN_DIR/concurrency-$format.out"
done

# --- 4. pkcs11-tool over SoftHSM2 ----------------------------------------------------------

if [[ -z $SOFTHSM_SO ]]; then
    fail "SoftHSM2 module found" "apt-get install softhsm2"
    finish
fi
HSM_PIN=58213647
HSM_PIN_HEX=$(hex_of "$HSM_PIN")
make_softhsm_token "$WORK/hsm" trace-token 12345678 "$HSM_PIN" || finish
P11=(timeout "$CALL_TIMEOUT" pkcs11-tool --module "$PROXY_SO")

# Spy mode: exactly that module, tracing to stderr; a config dir that would load mock-b
# with tracing into a file must be ignored.
mock_config "$WORK/conf-ignored" '' "log-calls: yes\nx-log-file: $WORK/ignored.trace\n"
printf 'module: %s\n' "$MOCKS/libmock-b.so" >"$WORK/conf-ignored/modules/mock-b.module"
spy=(P11PROXY_MODULE="$SOFTHSM_SO" P11PROXY_LOG_CALLS=yes P11PROXY_CONFIG_DIR="$WORK/conf-ignored")

check_run "spy mode: pkcs11-tool -L through the proxy" spy-list env "${spy[@]}" "${P11[@]}" -L
check_contains "spy mode -L: the SoftHSM2 token is listed" "trace-token" "$RUN_OUT"
for function in C_Initialize C_GetSlotList C_GetTokenInfo C_Finalize; do
    check_contains "spy mode -L: a $function record on stderr" "$function [libsofthsm2 caller=1 tid=" \
        "$(cat "$RUN_DIR/spy-list.err")"
done
check "spy mode: the config dir is not read (no mock-b, no x-log-file)" \
    bash -c "! grep -q 'mock-b' '$RUN_DIR/spy-list.out' '$RUN_DIR/spy-list.err' && [[ ! -e '$WORK/ignored.trace' ]]"

check_run "spy mode: pkcs11-tool --login -O" spy-login env "${spy[@]}" "${P11[@]}" --login --pin "$HSM_PIN" -O
check "spy mode --login: a C_Login record with the PIN as (8) <redacted>, answered CKR_OK" \
    awk '/^C_Login \[libsofthsm2 /{r = 1} r && /^  IN: pPin = \(8\) <redacted>$/{pin = 1}
         r && /^C_Login = CKR_OK$/{ok = pin} /^C_Login = /{r = 0} END {exit !ok}' "$RUN_DIR/spy-login.err"
check_contains "spy mode -O: a C_FindObjectsInit record" "C_FindObjectsInit [libsofthsm2" "$(cat "$RUN_DIR/spy-login.err")"
absent "spy mode --login: the PIN is not on stderr (text or hex)" "$RUN_DIR/spy-login.err" "$HSM_PIN" "$HSM_PIN_HEX"

check_run "tracing is off without log-calls" spy-off env P11PROXY_MODULE="$SOFTHSM_SO" "${P11[@]}" -L
check "tracing off: no record on stderr" bash -c "! grep -q '^C_' '$RUN_DIR/spy-off.err'"

# Redaction over SoftHSM2: a secret key imported with --write-object, then AES-CBC
# encryption and decryption of a distinctive 32-byte plaintext.
printf 'ZZZZZZZZZZZZZZZZ' >"$WORK/key.bin" # 16 x 0x5A
HSM_PLAIN="Secret plaintext: 0v3r-the-m00n!"
printf '%s' "$HSM_PLAIN" >"$WORK/plain.bin"
IV=00112233445566778899AABBCCDDEEFF
for mode in default secrets; do
    env_mode=("${spy[@]}")
    [[ $mode == secrets ]] && env_mode+=(P11PROXY_LOG_SECRETS=yes)
    id=0$([[ $mode == default ]] && echo 1 || echo 2)
    check_run "SoftHSM2 ($mode): import a secret key (--write-object --type secrkey)" "hsm-$mode-write" \
        env "${env_mode[@]}" "${P11[@]}" --login --pin "$HSM_PIN" --write-object "$WORK/key.bin" --type secrkey \
        --key-type AES:16 --label "key-$mode" --id "$id" --usage-decrypt
    check_run "SoftHSM2 ($mode): AES-CBC encrypt" "hsm-$mode-encrypt" \
        env "${env_mode[@]}" "${P11[@]}" --login --pin "$HSM_PIN" --encrypt --id "$id" -m AES-CBC --iv "$IV" \
        --input-file "$WORK/plain.bin" --output-file "$WORK/cipher-$mode.bin"
    check_run "SoftHSM2 ($mode): AES-CBC decrypt" "hsm-$mode-decrypt" \
        env "${env_mode[@]}" "${P11[@]}" --login --pin "$HSM_PIN" --decrypt --id "$id" -m AES-CBC --iv "$IV" \
        --input-file "$WORK/cipher-$mode.bin" --output-file "$WORK/back-$mode.bin"
    check_files_equal "SoftHSM2 ($mode): decryption gives the plaintext back" "$WORK/plain.bin" "$WORK/back-$mode.bin"
    cat "$RUN_DIR/hsm-$mode-"{write,encrypt,decrypt}.err | normalise_text /dev/stdin >"$WORK/hsm-$mode.trace"
    present "SoftHSM2 ($mode): C_Login, C_CreateObject, C_Encrypt*, C_Decrypt records traced" "$WORK/hsm-$mode.trace" \
        "C_Login [libsofthsm2" "C_CreateObject [libsofthsm2" "C_Encrypt" "C_Decrypt [libsofthsm2"
    if [[ $mode == default ]]; then
        absent "SoftHSM2 (default): no PIN, key byte or plaintext in the trace" "$WORK/hsm-$mode.trace" \
            "$HSM_PIN" "$HSM_PIN_HEX" ZZZZZZZZZZZZZZZZ "$KEY_HEX" "$HSM_PLAIN" "$(hex_of "$HSM_PLAIN")" \
            "$(hex_of "${HSM_PLAIN:0:16}")" "$(hex_of "${HSM_PLAIN:16}")"
    else
        present "SoftHSM2 (P11PROXY_LOG_SECRETS=yes): PIN, key bytes and plaintext shown" "$WORK/hsm-$mode.trace" \
            "$HSM_PIN_HEX" "$KEY_HEX" "$(hex_of "$HSM_PLAIN")"
    fi
done

# log-calls: yes in one .module file: only that module is traced (mock-b is loaded too).
mkdir -p "$WORK/conf-two/modules"
printf 'module: %s\nlog-calls: yes\n' "$SOFTHSM_SO" >"$WORK/conf-two/modules/softhsm2.module"
printf 'module: %s\n' "$MOCKS/libmock-b.so" >"$WORK/conf-two/modules/mock-b.module"
check_run ".module log-calls: pkcs11-tool -L over SoftHSM2 and mock-b" two-list \
    env P11PROXY_CONFIG_DIR="$WORK/conf-two" "${P11[@]}" -L
check_contains ".module log-calls: mock-b's token is listed (so mock-b was loaded)" "mock-b-1" "$RUN_OUT"
check_contains ".module log-calls: SoftHSM2's calls are traced" "C_GetTokenInfo [softhsm2 caller=1" \
    "$(cat "$RUN_DIR/two-list.err")"
check ".module log-calls: no record for mock-b, whose file has no log-calls" \
    bash -c "grep '^C_[A-Za-z]* \[' '$RUN_DIR/two-list.err' | grep -qv '^C_[A-Za-z]* \[softhsm2 ' && exit 1 || exit 0"

# x-log-file in pkcs11.conf: the file is made with mode 0600 (under umask 022), records go
# there and not to stderr; P11PROXY_LOG_FORMAT=json makes it JSON lines.
mkdir -p "$WORK/conf-file/modules"
printf 'module: %s\n' "$SOFTHSM_SO" >"$WORK/conf-file/modules/softhsm2.module"
printf 'log-calls: yes\nx-log-file: %s\n' "$WORK/file.trace" >"$WORK/conf-file/pkcs11.conf"
check_run "x-log-file: pkcs11-tool -L" file-list bash -c 'umask 022; exec "$@"' _ \
    env P11PROXY_CONFIG_DIR="$WORK/conf-file" timeout "$CALL_TIMEOUT" pkcs11-tool --module "$PROXY_SO" -L
check_eq "x-log-file: the trace file has mode 0600" 600 "$(stat -c %a "$WORK/file.trace" 2>/dev/null)"
present "x-log-file: records in the file" "$WORK/file.trace" "C_GetSlotList [softhsm2" "C_GetTokenInfo [softhsm2"
check "x-log-file: no record on stderr" bash -c "! grep -q '^C_' '$RUN_DIR/file-list.err'"
# An existing file is appended to (not emptied, its mode kept); a file that cannot be opened is
# named, with the reason, and the records go to stderr instead.
printf 'an earlier line\n' >"$WORK/existing.trace"
chmod 644 "$WORK/existing.trace"
printf 'log-calls: yes\nx-log-file: %s\n' "$WORK/existing.trace" >"$WORK/conf-file/pkcs11.conf"
check_run "x-log-file, existing file: pkcs11-tool -L" file-existing \
    env P11PROXY_CONFIG_DIR="$WORK/conf-file" timeout "$CALL_TIMEOUT" pkcs11-tool --module "$PROXY_SO" -L
check_eq "x-log-file, existing file: its first line is kept" "an earlier line" "$(head -1 "$WORK/existing.trace")"
present "x-log-file, existing file: records appended" "$WORK/existing.trace" "C_GetSlotList [softhsm2"
check_eq "x-log-file, existing file: its mode is kept" 644 "$(stat -c %a "$WORK/existing.trace")"
printf 'log-calls: yes\nx-log-file: %s\n' "$WORK/no-such-dir/x.trace" >"$WORK/conf-file/pkcs11.conf"
check_run "x-log-file in a missing directory: pkcs11-tool -L still works" file-missing \
    env P11PROXY_CONFIG_DIR="$WORK/conf-file" timeout "$CALL_TIMEOUT" pkcs11-tool --module "$PROXY_SO" -L
check_contains "x-log-file in a missing directory: the file and the reason are named" \
    "cannot open trace file $WORK/no-such-dir/x.trace: no such file or directory; tracing to standard error instead" \
    "$(cat "$RUN_DIR/file-missing.err")"
check_contains "x-log-file in a missing directory: the records are on stderr" "C_GetSlotList [softhsm2" \
    "$(cat "$RUN_DIR/file-missing.err")"

printf 'log-calls: yes\nx-log-file: %s\n' "$WORK/file-json.trace" >"$WORK/conf-file/pkcs11.conf"
check_run "P11PROXY_LOG_FORMAT=json: pkcs11-tool --login -O" file-json \
    env P11PROXY_CONFIG_DIR="$WORK/conf-file" P11PROXY_LOG_FORMAT=json "${P11[@]}" --login --pin "$HSM_PIN" -O
check "P11PROXY_LOG_FORMAT=json: every line of the file is a JSON object" every_line_is_json "$WORK/file-json.trace"
check "P11PROXY_LOG_FORMAT=json: C_Login's PIN is {\"len\":8,\"redacted\":true}" \
    jq_true -s 'any(.[]; .function == "C_Login" and .in.pPin == {"len": 8, "redacted": true} and .rv == "CKR_OK")' \
    "$WORK/file-json.trace"
check "P11PROXY_LOG_FORMAT=json: every record is softhsm2's" \
    jq_true -s 'length > 0 and all(.[]; .module == "softhsm2")' "$WORK/file-json.trace"

# --- 5. buffering ---------------------------------------------------------------------------

mock_config "$WORK/conf-flush" 'log-calls: yes\n'
trace_calls flush flush P11PROXY_CONFIG_DIR="$WORK/conf-flush" P11PROXY_LOG_FILE="$WORK/flush.trace"
check_program "trace_calls flush: error return, idle 100 ms, fork, C_Finalize" flush
check_eq "flush: the records buffered at exit are written" 3 \
    "$(grep -c '^C_GetSessionInfo = CKR_OK$' "$WORK/flush.trace")"

finish
