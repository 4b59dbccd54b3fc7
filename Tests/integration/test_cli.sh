#!/usr/bin/env bash
# The `p11proxy` command, built by `make cli` as build/bin/p11proxy, against fixture
# config dirs written here over the mock modules (build/mock, Tests/Mock) and a SoftHSM2 token:
#   1. --help on the command and each subcommand;
#   2. list: modules in p11proxy's order with the file each came from, slots numbered as the
#      module numbers them (compared with pkcs11-tool -L through libp11proxy.so), tokens, and
#      every skipped module with its reason (missing library, not a module, disabled, p11proxy
#      itself, C_Initialize failure, malformed file); --program for enable-in;
#   3. check: exit status (0 / 1 / 64), FILE:LINE messages, the same lines the module prints on
#      pkcs11-tool's standard error, critical modules, warnings and --strict, --config-dir vs
#      P11PROXY_CONFIG_DIR;
#   4. trace: text and JSON traces of pkcs11-tool -L through the module in --output (mode 0600,
#      emptied first), the command's exit status passed through, PINs redacted unless --secrets.
#
#   bash Tests/integration/test_cli.sh       # CLI_BIN defaults to build/bin/p11proxy, PROXY_SO to build/lib/libp11proxy.so
#   KEEP=1 bash Tests/integration/test_cli.sh  # keep the work dir
# Prints ok / not ok lines and ends with "N passed, N failed"; exits non-zero on failure.
# shellcheck disable=SC2317 # cleanup is called by trap
set -uo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_tools make cc jq pkcs11-tool softhsm2-util || exit 1

BUILD=${BUILD_DIR:-build}
[[ $BUILD == /* ]] || BUILD=$REPO/$BUILD
MOCKS=$BUILD/mock
CLI=${CLI_BIN:-$BUILD/bin/p11proxy}
[[ $CLI == /* ]] || CLI=$REPO/$CLI

# The calling shell's settings must not change what the command reads or traces.
unset P11PROXY_MODULE P11PROXY_CONFIG_DIR P11PROXY_LOG_CALLS P11PROXY_LOG_FILE \
    P11PROXY_LOG_FORMAT P11PROXY_LOG_SECRETS

WORK=$(mktemp -d "${TMPDIR:-/tmp}/p11proxy-cli.XXXXXX")
cleanup() {
    if [[ ${KEEP:-0} == 1 ]]; then echo "# kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
RUN_DIR=$WORK/runs
mkdir -p "$RUN_DIR"
note "command: $CLI" "proxy: $PROXY_SO" "work: $WORK"

if [[ ! -x $CLI || ! -f $PROXY_SO ]]; then
    fail "the command and the module are built" "$CLI or $PROXY_SO missing: run make build"
    finish
fi
if ! make -s -C "$REPO" -f Tests/C/tests.mk BUILD_DIR="$BUILD" mock-modules >"$RUN_DIR/make.log" 2>&1; then
    fail "build the mock modules (make -f Tests/C/tests.mk mock-modules)" "$(tail -n 20 "$RUN_DIR/make.log")"
    finish
fi
if [[ -z $SOFTHSM_SO ]] || ! make_softhsm_token "$WORK/softhsm" cli-token; then
    fail "a SoftHSM2 token for the tests"
    finish
fi

# module_file DIR NAME LINE...: DIR/modules/NAME.module holding the given lines.
module_file() {
    local dir=$1 name=$2
    shift 2
    mkdir -p "$dir/modules"
    printf '%s\n' "$@" >"$dir/modules/$name.module"
}

# A working configuration: mock-a first by priority, then mock-b and softhsm2 by name.
GOOD=$WORK/good
module_file "$GOOD" mock-a "module: $MOCKS/libmock-a.so" "priority: 5"
module_file "$GOOD" mock-b "module: $MOCKS/libmock-b.so"
module_file "$GOOD" softhsm2 "module: $SOFTHSM_SO"

# One module for each reason to skip (none critical), beside one that loads.
BROKEN=$WORK/broken
module_file "$BROKEN" mock-a "module: $MOCKS/libmock-a.so" "log-calls: yes" "x-log-format: xml" \
    "x-log-file: $WORK/broken-trace.txt"
module_file "$BROKEN" gone "# a library that is not there" "module: $WORK/nonexistent/libgone.so"
module_file "$BROKEN" notmod "module: $MOCKS/not-a-module.so"
module_file "$BROKEN" off "module: $MOCKS/libmock-c.so" "disable-in: p11-kit-proxy"
module_file "$BROKEN" itself "module: $PROXY_SO"
module_file "$BROKEN" failinit "module: $MOCKS/libmock-failinit.so"
module_file "$BROKEN" malformed "module: $MOCKS/libmock-b.so" "" "this line has no colon"

# --- 1. help ---------------------------------------------------------------------------------

run help "$CLI" --help
check_eq "p11proxy --help exits 0" 0 "$RUN_RC"
for sub in list check trace; do
    check_contains "p11proxy --help names '$sub'" "$sub" "$RUN_OUT"
done
run help-list "$CLI" list --help
check_contains "list --help documents --config-dir" "--config-dir <DIR>" "$RUN_OUT"
run help-check "$CLI" check --help
check_contains "check --help documents the exit status" "Exit status" "$RUN_OUT"
run help-trace "$CLI" trace --help
check_contains "trace --help documents --format" "--format <format>" "$RUN_OUT"
check_contains "trace --help documents --output" "--output <FILE>" "$RUN_OUT"

# --- 2. list ---------------------------------------------------------------------------------

check_run "list over a working config exits 0" list-good "$CLI" list --config-dir "$GOOD"
LIST=$RUN_OUT
check_eq "list shows the modules in p11proxy's order (priority, then name)" \
    "mock-a: $MOCKS/libmock-a.so
mock-b: $MOCKS/libmock-b.so
softhsm2: $SOFTHSM_SO" "$(grep -E '^[a-z0-9-]+: /' <<<"$LIST" | grep -v '^configuration:')"
check_contains "list names the file mock-a came from" "    file: $GOOD/modules/mock-a.module" "$LIST"
check_contains "list names the file softhsm2 came from" "    file: $GOOD/modules/softhsm2.module" "$LIST"
# SoftHSM2 always offers one more slot, whose token has no label yet.
check_eq "list shows every token, module by module" "[mock-a-1][mock-a-5][mock-b-1][cli-token][]" \
    "$(sed -n 's/^        token: \(.*\)$/[\1]/p' <<<"$LIST" | tr -d '\n')"
check_contains "list shows mock-b's 2.40 interface" "    interface-version: 2.40" "$LIST"
check_contains "list shows a token's flags by name" "CKF_TOKEN_INITIALIZED" "$LIST"
check_eq "list says nothing is skipped" "" "$(grep '^skipped:' <<<"$LIST")"

# Slot numbers and descriptions, as pkcs11-tool sees them through the module ("Slot 0 (0x1): D").
run tool-good env P11PROXY_CONFIG_DIR="$GOOD" pkcs11-tool --module "$PROXY_SO" -L
check_eq "pkcs11-tool -L through the module runs" 0 "$RUN_RC"
check_eq "list numbers slots as the module does (pkcs11-tool -L through it)" \
    "$(sed -nE 's/^Slot [0-9]+ \(0x([0-9a-f]+)\): (.*)$/\1 \2/p' "$RUN_DIR/tool-good.out" |
        while read -r hex rest; do printf '%d %s\n' "0x$hex" "$rest"; done)" \
    "$(sed -nE 's/^    slot ([0-9]+): (.*)$/\1 \2/p' <<<"$LIST")"

run list-broken "$CLI" list --config-dir "$BROKEN"
check_eq "list exits 0 even when modules are skipped" 0 "$RUN_RC"
LIST=$RUN_OUT
check_eq "list loads only mock-a from the broken config" "mock-a: $MOCKS/libmock-a.so" \
    "$(grep -E '^[a-z0-9-]+: /' <<<"$LIST" | grep -v '^configuration:')"
SKIPPED=$(sed -n '/^skipped:/,$p' <<<"$LIST")
check_contains "list: a missing library" "    gone: $WORK/nonexistent/libgone.so: no such file" "$SKIPPED"
check_contains "list: a library that is not a module" \
    "    notmod: $MOCKS/not-a-module.so: not a PKCS#11 module: no C_GetFunctionList or C_GetInterface symbol" "$SKIPPED"
check_contains "list: a disabled module" "    off: disable-in: 'p11-kit-proxy' names 'p11-kit-proxy'" "$SKIPPED"
check_contains "list: p11proxy itself" "    itself: $PROXY_SO is p11proxy itself" "$SKIPPED"
check_contains "list: a module whose C_Initialize fails" "    failinit: C_Initialize failed: CKR_DEVICE_ERROR" "$SKIPPED"
check_contains "list: a malformed module file" \
    "    malformed: $BROKEN/modules/malformed.module:3 is not a 'key: value' line" "$SKIPPED"
check_contains "list shows how mock-a's calls would be traced" \
    "    log-calls: yes (text to $WORK/broken-trace.txt)" "$LIST"
check_contains "list: where the disabled module's reason is" "        file: $BROKEN/modules/off.module:2" "$SKIPPED"
check_contains "list puts configuration problems on standard error" \
    "p11proxy: $BROKEN/modules/malformed.module:3: expected 'key: value'" "$(cat "$RUN_DIR/list-broken.err")"

# A copy of the module under another name is p11proxy too.
cp "$PROXY_SO" "$WORK/libcopy.so"
COPY=$WORK/copy
module_file "$COPY" copy "module: $WORK/libcopy.so"
run list-copy "$CLI" list --config-dir "$COPY"
check_contains "list: a copy of p11proxy is p11proxy itself" "    copy: $WORK/libcopy.so is p11proxy itself" "$RUN_OUT"

ENABLE=$WORK/enable
module_file "$ENABLE" only-tool "module: $MOCKS/libmock-b.so" "enable-in: pkcs11-tool"
run list-enable "$CLI" list --config-dir "$ENABLE"
check_contains "list: enable-in naming another program skips the module" \
    "    only-tool: enable-in: 'pkcs11-tool' does not name this program (p11-kit-proxy)" "$RUN_OUT"
run list-enable-program "$CLI" list --config-dir "$ENABLE" --program pkcs11-tool
check_contains "list --program pkcs11-tool loads it" "only-tool: $MOCKS/libmock-b.so" "$RUN_OUT"

# Spy mode: P11PROXY_MODULE names the one module, as it does for the module.
run list-spy env P11PROXY_MODULE="$MOCKS/libmock-b.so" "$CLI" list
check_contains "list in spy mode shows P11PROXY_MODULE's module" "libmock-b: $MOCKS/libmock-b.so" "$RUN_OUT"
check_contains "list in spy mode says where it came from" "    file: P11PROXY_MODULE" "$RUN_OUT"
# mock-a's slots are 1 and 5: spy mode shows the module's own IDs, as pkcs11-tool -L through it does.
run list-spy-a env P11PROXY_MODULE="$MOCKS/libmock-a.so" "$CLI" list
LIST=$RUN_OUT
run tool-spy-a env P11PROXY_MODULE="$MOCKS/libmock-a.so" pkcs11-tool --module "$PROXY_SO" -L
check_eq "list in spy mode numbers slots as pkcs11-tool -L through the module sees them (1 and 5)" \
    "1 mock-a slot 1
5 mock-a slot 5" "$(sed -nE 's/^    slot ([0-9]+): (.*)$/\1 \2/p' <<<"$LIST")"
check_eq "... which is what pkcs11-tool -L shows" \
    "$(sed -nE 's/^Slot [0-9]+ \(0x([0-9a-f]+)\): (.*)$/\1 \2/p' "$RUN_DIR/tool-spy-a.out" |
        while read -r hex rest; do printf '%d %s\n' "0x$hex" "$rest"; done)" \
    "$(sed -nE 's/^    slot ([0-9]+): (.*)$/\1 \2/p' <<<"$LIST")"

# A module that lists a slot twice (mock-garbage: {1, 1, 3}) before one that does not: the command
# and the module read slot lists through the same code (P11ProxyLoader's ModuleSlotList), so
# `list` numbers the slots exactly as pkcs11-tool -L sees them through the module.
REPEATS=$WORK/repeats
module_file "$REPEATS" a-garbage "module: $MOCKS/libmock-garbage.so"
module_file "$REPEATS" b-mock "module: $MOCKS/libmock-b.so"
run list-repeats "$CLI" list --config-dir "$REPEATS"
LIST=$RUN_OUT
run tool-repeats env P11PROXY_CONFIG_DIR="$REPEATS" pkcs11-tool --module "$PROXY_SO" -L
check_eq "a module listing a slot twice: list and pkcs11-tool -L through the module agree" \
    "$(sed -nE 's/^Slot [0-9]+ \(0x([0-9a-f]+)\): (.*)$/\1 \2/p' "$RUN_DIR/tool-repeats.out" |
        while read -r hex rest; do printf '%d %s\n' "0x$hex" "$rest"; done)" \
    "$(sed -nE 's/^    slot ([0-9]+): (.*)$/\1 \2/p' <<<"$LIST")"
check_eq "... three distinct slots, numbered 1 to 3" "1 2 3" \
    "$(sed -nE 's/^    slot ([0-9]+): .*$/\1/p' <<<"$LIST" | tr '\n' ' ' | sed 's/ $//')"
run check-repeats "$CLI" check --config-dir "$REPEATS"
check_eq "check prints what the module prints about the repeated slot" \
    "$(grep '^p11proxy: ' "$RUN_DIR/tool-repeats.err" | sed 's/^p11proxy: //')" \
    "$(grep -v '^check:' <<<"$RUN_OUT")"

# A module that initialised itself when loaded (mock-preinit): someone else owns its
# initialisation, and both commands say so.
PREINIT=$WORK/preinit
module_file "$PREINIT" preinit "module: $MOCKS/libmock-preinit.so"
run list-preinit "$CLI" list --config-dir "$PREINIT"
check_contains "list: a module initialised elsewhere says so" \
    "    initialized: elsewhere (its C_Initialize answered CKR_CRYPTOKI_ALREADY_INITIALIZED); p11proxy uses it and never finalises it" "$RUN_OUT"
check_contains "list: ... and its token is listed" "        token: mock-preinit-4" "$RUN_OUT"
run check-preinit "$CLI" check --config-dir "$PREINIT"
check_eq "check: a module initialised elsewhere is no problem (exit 0)" 0 "$RUN_RC"
check_contains "check: ... and gets a note" "note: module 'preinit': initialized elsewhere" "$RUN_OUT"
run list-plain "$CLI" list --config-dir "$GOOD"
check_not_contains "list: modules p11proxy initialises itself say nothing of it" "initialized:" "$RUN_OUT"

# --- 3. check --------------------------------------------------------------------------------

run check-good "$CLI" check --config-dir "$GOOD"
check_eq "check over a working config exits 0" 0 "$RUN_RC"
check_eq "check over a working config prints only its summary" \
    "check: 3 module(s) would load, 0 would be skipped, 0 warning(s)" "$RUN_OUT"

run check-broken "$CLI" check --config-dir "$BROKEN"
check_eq "check exits 1 when a module would be skipped" 1 "$RUN_RC"
CHECK=$RUN_OUT
check_contains "check gives the malformed line's file and line" \
    "$BROKEN/modules/malformed.module:3: expected 'key: value' but found no ':' in 'this line has no colon'" "$CHECK"
check_contains "check reports the missing library with its file" \
    "$BROKEN/modules/gone.module: module 'gone' skipped: $WORK/nonexistent/libgone.so: no such file" "$CHECK"
check_contains "check reports the C_Initialize failure in the module's words" \
    "module 'failinit' ($MOCKS/libmock-failinit.so): C_Initialize failed: CKR_DEVICE_ERROR; skipped" "$CHECK"
check_contains "check notes the disabled module without counting it" \
    "note: $BROKEN/modules/off.module:2: module 'off' left out: disable-in: 'p11-kit-proxy' names 'p11-kit-proxy'" "$CHECK"
check_contains "check counts what would load and be skipped" \
    "check: 1 module(s) would load, 4 would be skipped, 2 left out on purpose, 2 warning(s)" "$CHECK"
check_contains "check reports a trace setting the module cannot use" \
    "$BROKEN/modules/mock-a.module:3: x-log-format: 'xml' is not text or json; using text" "$CHECK"
run check-env-trace env P11PROXY_LOG_CALLS=maybe "$CLI" check --config-dir "$GOOD"
check_contains "check reports a P11PROXY_LOG_CALLS value the module ignores" \
    "P11PROXY_LOG_CALLS='maybe' is not yes or no; ignored" "$RUN_OUT"

# The module's own lines: pkcs11-tool over the same config prints them with "p11proxy: ".
run tool-broken env P11PROXY_CONFIG_DIR="$BROKEN" pkcs11-tool --module "$PROXY_SO" -L
check_eq "check prints exactly the lines the module prints, in its order" \
    "$(sed -n 's/^p11proxy: //p' "$RUN_DIR/tool-broken.err")" \
    "$(grep -v '^note: \|^check: ' <<<"$CHECK")"

CRITICAL=$WORK/critical
module_file "$CRITICAL" mock-a "module: $MOCKS/libmock-a.so"
module_file "$CRITICAL" failinit "module: $MOCKS/libmock-failinit.so" "critical: yes"
run check-critical "$CLI" check --config-dir "$CRITICAL"
check_eq "check exits 1 when a critical module's C_Initialize fails" 1 "$RUN_RC"
check_contains "check says the critical module fails C_Initialize" \
    "C_Initialize failed: CKR_DEVICE_ERROR; it is critical, so C_Initialize fails" "$RUN_OUT"
check_contains "check's summary names the critical module" "C_Initialize would fail: critical module(s) 'failinit'" "$RUN_OUT"
run tool-critical env P11PROXY_CONFIG_DIR="$CRITICAL" pkcs11-tool --module "$PROXY_SO" -L
check "and the module's C_Initialize does fail there (pkcs11-tool -L exits non-zero)" test "$RUN_RC" -ne 0

MISSING=$WORK/missing-critical
module_file "$MISSING" gone "module: $WORK/nonexistent/libgone.so" "critical: yes"
run check-missing "$CLI" check --config-dir "$MISSING"
check_eq "check exits 1 for a critical module without its library" 1 "$RUN_RC"
check_contains "check: a critical module that cannot load fails C_Initialize" \
    "module 'gone' is critical; C_Initialize fails" "$RUN_OUT"

WARN=$WORK/warn
module_file "$WARN" mock-a "module: $MOCKS/libmock-a.so" "priority: high"
run check-warn "$CLI" check --config-dir "$WARN"
check_eq "check exits 0 with warnings only" 0 "$RUN_RC"
check_contains "check gives the warning's file and line" \
    "$WARN/modules/mock-a.module:2: priority: 'high' is not a whole number; using 0" "$RUN_OUT"
run check-strict "$CLI" check --strict --config-dir "$WARN"
check_eq "check --strict exits 1 on a warning" 1 "$RUN_RC"

run check-env env P11PROXY_CONFIG_DIR="$BROKEN" "$CLI" check
check_eq "check reads P11PROXY_CONFIG_DIR as the module does" 1 "$RUN_RC"
run check-env-override env P11PROXY_CONFIG_DIR="$BROKEN" "$CLI" check --config-dir "$GOOD"
check_eq "--config-dir wins over P11PROXY_CONFIG_DIR" 0 "$RUN_RC"
run check-usage "$CLI" check --no-such-option
check_eq "check exits 64 on a usage error" 64 "$RUN_RC"

# --- 4. trace --------------------------------------------------------------------------------

TEXT=$WORK/trace.txt
echo "left over from an earlier run" >"$TEXT"
run trace-text env P11PROXY_CONFIG_DIR="$GOOD" "$CLI" trace --output "$TEXT" -- pkcs11-tool --module "$PROXY_SO" -L
check_eq "trace passes pkcs11-tool's exit status 0 through" 0 "$RUN_RC"
check_eq "trace leaves the command's own output alone" "$(cat "$RUN_DIR/tool-good.out")" "$RUN_OUT"
check_contains "the text trace has mock-a's C_GetSlotList" "C_GetSlotList [mock-a caller=" "$(cat "$TEXT")"
check_contains "the text trace has SoftHSM2's C_GetTokenInfo" "C_GetTokenInfo [softhsm2 caller=" "$(cat "$TEXT")"
check_contains "the text trace has return values" "C_GetTokenInfo = CKR_OK" "$(cat "$TEXT")"
check "--output was emptied first" bash -c "! grep -q 'left over' '$TEXT'"
check_eq "the trace file has mode 0600" 600 "$(stat -c %a "$TEXT")"

JSON=$WORK/trace.jsonl
run trace-json env P11PROXY_CONFIG_DIR="$GOOD" "$CLI" trace --format json --output "$JSON" -- pkcs11-tool --module "$PROXY_SO" -L
check_eq "trace --format json exits 0" 0 "$RUN_RC"
check "every JSON trace line is a JSON object" jq -e -s 'length > 0 and all(type == "object")' "$JSON" >/dev/null
check_eq "the JSON trace covers every module" "mock-a mock-b softhsm2" \
    "$(jq -r .module "$JSON" | sort -u | tr '\n' ' ' | sed 's/ $//')"
check "the JSON trace has C_GetTokenInfo = CKR_OK" \
    jq -e -s 'any(.function == "C_GetTokenInfo" and .rv == "CKR_OK")' "$JSON" >/dev/null

# --config-dir sets P11PROXY_CONFIG_DIR for the command; its options (--help too) are its own.
CD=$WORK/trace-config-dir.txt
run trace-config-dir "$CLI" trace --config-dir "$GOOD" -o "$CD" -- pkcs11-tool --module "$PROXY_SO" -L
check_eq "trace --config-dir runs the command" 0 "$RUN_RC"
check_contains "trace --config-dir points the module at that config" "token label        : mock-b-1" "$RUN_OUT"
check_contains "and traces it" "C_GetSlotList [mock-b caller=" "$(cat "$CD")"

# The command's own exit status, whatever it is.
run trace-exit "$CLI" trace -- sh -c 'exit 3'
check_eq "trace passes exit status 3 through" 3 "$RUN_RC"
run tool-bad pkcs11-tool --module "$PROXY_SO" --no-such-option
BAD_RC=$RUN_RC
run trace-bad "$CLI" trace -o "$WORK/bad.txt" -- pkcs11-tool --module "$PROXY_SO" --no-such-option
check_eq "trace passes pkcs11-tool's failure status ($BAD_RC) through" "$BAD_RC" "$RUN_RC"
check "(and that status is a failure)" test "$BAD_RC" -ne 0
run trace-missing "$CLI" trace -- "$WORK/no-such-command"
check_eq "trace exits 127 when the command does not exist" 127 "$RUN_RC"
run trace-empty "$CLI" trace --format json
check_eq "trace without a command is a usage error (64)" 64 "$RUN_RC"
run trace-command-help "$CLI" trace -- pkcs11-tool --help
check_contains "a --help after '--' goes to the command" "Usage: pkcs11-tool" "$RUN_OUT$(cat "$RUN_DIR/trace-command-help.err")"

# Secrets: the PIN of a real login stays out unless --secrets (1234 is 31323334 in hex).
PIN_CONFIG=$WORK/softhsm-only
module_file "$PIN_CONFIG" softhsm2 "module: $SOFTHSM_SO"
REDACTED=$WORK/redacted.txt
run trace-login "$CLI" trace --config-dir "$PIN_CONFIG" -o "$REDACTED" -- \
    pkcs11-tool --module "$PROXY_SO" --login --pin 1234 --token-label cli-token -O
check_eq "a traced login through the module succeeds" 0 "$RUN_RC"
check_contains "the login's PIN is redacted" "IN: pPin = (4) <redacted>" "$(cat "$REDACTED")"
check "and appears nowhere in the trace" bash -c "! grep -q 31323334 '$REDACTED'"
SECRETS=$WORK/secrets.txt
run trace-secrets "$CLI" trace --secrets --config-dir "$PIN_CONFIG" -o "$SECRETS" -- \
    pkcs11-tool --module "$PROXY_SO" --login --pin 1234 --token-label cli-token -O
check_contains "trace --secrets shows the PIN" "IN: pPin = (4) 31323334" "$(cat "$SECRETS")"

finish
