#!/usr/bin/env bash
# Token filters over two SoftHSM2 tokens ("alpha" and "beta", one store, so SoftHSM2 also shows
# its empty third slot): pkcs11-tool and p11tool through p11proxy see only what `x-only-tokens`
# / `x-hide-tokens` / P11PROXY_ONLY_TOKENS let through, with slot IDs numbered densely;
# `p11proxy list` shows the filter, marks the hidden slots and numbers the rest as
# pkcs11-tool sees them; `p11proxy check` reports a malformed URI with its file and line, in the
# words the module prints, and exits 1, and the module then shows none of that module's tokens.
#
#   bash Tests/integration/test_token_filter.sh          # PROXY_SO, CLI_BIN default to build/
#   KEEP=1 bash Tests/integration/test_token_filter.sh   # keep the work dir
# Prints ok / not ok lines and ends with "N passed, N failed"; exits non-zero on failure.
set -uo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_tools softhsm2-util pkcs11-tool p11tool || exit 1
require_softhsm_and_proxy

BUILD=${BUILD_DIR:-build}
[[ $BUILD == /* ]] || BUILD=$REPO/$BUILD
CLI=${CLI_BIN:-$BUILD/bin/p11proxy}
[[ $CLI == /* ]] || CLI=$REPO/$CLI

unset P11PROXY_MODULE P11PROXY_CONFIG_DIR P11PROXY_ONLY_TOKENS
make_work_dir token-filter
note "proxy: $PROXY_SO" "command: $CLI" "work: $WORK"

for label in alpha beta; do
    make_softhsm_token "$WORK/softhsm" "$label" || { fail "a SoftHSM2 token labelled $label"; finish; }
done
CONF=$WORK/config
mkdir -p "$CONF/modules"
MODULE_FILE=$CONF/modules/softhsm2.module

# write_filter LINE...: softhsm2.module is `module:` then the given lines; no pkcs11.conf.
write_filter() {
    { echo "module: $SOFTHSM_SO"; printf '%s\n' "$@"; } >"$MODULE_FILE"
    rm -f "$CONF/pkcs11.conf"
}

# tokens_of OUTPUT: pkcs11-tool -L's "(0xID) label" pairs, one per line.
tokens_of() {
    awk '/^Slot [0-9]+ \(0x/ { id = $3 } /token label/ { sub(/^ *token label *: /, ""); print id " " $0 }' <<<"$1"
}

pkcs11_tool() { pkcs11-tool --module "$PROXY_SO" "$@"; }
export P11PROXY_CONFIG_DIR=$CONF

# --- x-only-tokens in the .module file ------------------------------------------------------
write_filter "x-only-tokens: pkcs11:token=beta"
check_run "pkcs11-tool -L through an x-only-tokens filter" only pkcs11_tool -L
check_eq "only beta is listed, as slot 1" "(0x1): beta" "$(tokens_of "$RUN_OUT")"
check_eq "one slot in all" 1 "$(grep -c '^Slot ' <<<"$RUN_OUT")"
check_run "pkcs11-tool generates an EC key on beta" keygen pkcs11_tool --token-label beta --login --pin 1234 \
    --keypairgen --key-type EC:prime256v1 --label k-beta
run keygen-alpha pkcs11_tool --token-label alpha --login --pin 1234 --keypairgen --key-type EC:prime256v1 --label k-alpha
check "pkcs11-tool cannot reach alpha (exit non-zero)" test "$RUN_RC" -ne 0
check_run "p11tool --list-tokens through the filter" p11tool-only p11tool --provider "$PROXY_SO" --list-tokens
check_contains "p11tool lists beta" "token=beta" "$RUN_OUT"
check_not_contains "p11tool does not list alpha" "token=alpha" "$RUN_OUT"
check_eq "p11tool lists one token" 1 "$(grep -c 'URL: ' <<<"$RUN_OUT")"
check_run "p11tool --list-all on beta" p11tool-objects p11tool --provider "$PROXY_SO" --list-all --login \
    --set-pin 1234 'pkcs11:token=beta'
check_contains "p11tool finds the key made through the filter" "k-beta" "$RUN_OUT"

check_run "p11proxy list with the filter" list-only "$CLI" list
LIST=$RUN_OUT
check_contains "list shows the module's filter and where it is set" \
    "    token-filter: only pkcs11:token=beta ($MODULE_FILE:2)" "$LIST"
check_eq "list marks the two hidden slots" 2 "$(grep -c '^    hidden slot: ' <<<"$LIST")"
check_contains "list numbers beta's slot as pkcs11-tool does" "    slot 1: " "$LIST"
check_eq "list shows one token under a slot number" "beta" \
    "$(awk '/^    slot [0-9]+:/ { s = 1 } /^    hidden slot:/ { s = 0 } s && /^        token: / { print $2 }' <<<"$LIST")"

# --- x-hide-tokens in pkcs11.conf, and the environment over it -------------------------------
write_filter
echo "x-hide-tokens: pkcs11:token=beta" >"$CONF/pkcs11.conf"
check_run "pkcs11-tool -L through x-hide-tokens in pkcs11.conf" hide pkcs11_tool -L
TOKENS=$(tokens_of "$RUN_OUT")
check_contains "alpha is listed as slot 1" "(0x1): alpha" "$TOKENS"
check_not_contains "beta is hidden" "beta" "$TOKENS"
check_eq "alpha and the empty token's slot remain, numbered 1 and 2" "Slot 0 (0x1): Slot 1 (0x2):" \
    "$(grep -o '^Slot [0-9]* (0x[0-9a-f]*):' <<<"$RUN_OUT" | tr '\n' ' ' | sed 's/ $//')"
check_run "pkcs11-tool -L with P11PROXY_ONLY_TOKENS over the configured filter" env-only \
    env P11PROXY_ONLY_TOKENS='pkcs11:token=beta pkcs11:token=nothing' pkcs11-tool --module "$PROXY_SO" -L
check_eq "P11PROXY_ONLY_TOKENS: only beta, as slot 1" "(0x1): beta" "$(tokens_of "$RUN_OUT")"
run p11tool-env env P11PROXY_ONLY_TOKENS='pkcs11:token=alpha' p11tool --provider "$PROXY_SO" --list-tokens
check_eq "P11PROXY_ONLY_TOKENS: p11tool lists alpha only" "alpha" \
    "$(sed -n 's/^.*URL: .*;token=\([^;]*\)$/\1/p' <<<"$RUN_OUT")"

# --- a malformed URI ----------------------------------------------------------------------------
write_filter "x-hide-tokens: pkcs11:token=alpha" "x-only-tokens: pkcs11:token=beta pkcs11:tokn=alpha"
WANT="$MODULE_FILE:3: x-only-tokens: URI 2 'pkcs11:tokn=alpha': offset 7: unknown path attribute 'tokn'"
run check-bad "$CLI" check
check_eq "check exits 1 over a malformed URI" 1 "$RUN_RC"
check_contains "check names the file, the line and the URI" "$WANT" "$RUN_OUT"
check_contains "check says what the module does about it" \
    "every token of module 'softhsm2' is hidden until it is fixed" "$RUN_OUT"
check_contains "check counts it" "1 token filter URI(s) that do not parse" "$RUN_OUT"
run tool-bad pkcs11_tool -L
# pkcs11-tool -L exits 1 when there is no slot to list; C_Initialize itself succeeds.
check_contains "the module starts anyway, and shows none of the module's slots" "No slots." \
    "$(cat "$RUN_DIR/tool-bad.out" "$RUN_DIR/tool-bad.err")"
check_not_contains "no C_Initialize error" "C_Initialize" "$(cat "$RUN_DIR/tool-bad.err")"
check_eq "check prints what the module prints" \
    "$(grep '^p11proxy: ' "$RUN_DIR/tool-bad.err" | sed 's/^p11proxy: //')" \
    "$(grep -v '^check:' "$RUN_DIR/check-bad.out")"
run list-bad "$CLI" list
check_contains "list shows the filter as hiding everything" \
    "token-filter: hide every token ($MODULE_FILE:3 has a URI that does not parse)" "$RUN_OUT"
check_eq "list marks every slot hidden" 3 "$(grep -c '^    hidden slot: ' <<<"$RUN_OUT")"

write_filter "x-only-tokens: pkcs11:token=beta"
run check-good "$CLI" check
check_eq "check over a good filter exits 0" 0 "$RUN_RC"

finish
