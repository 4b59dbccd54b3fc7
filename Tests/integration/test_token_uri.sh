#!/usr/bin/env bash
# Token URIs: `p11proxy list` (build/bin/p11proxy, `make cli`) prints a `uri:` line under each
# token, and for every initialised SoftHSM2 token it must be the very string GnuTLS's
# `p11tool --list-tokens` prints as its URL (attribute order, blank fields, percent-encoding of
# spaces, reserved and non-ASCII characters). Labels chosen to need every kind of encoding.
#
#   bash Tests/integration/test_token_uri.sh   # CLI_BIN defaults to build/bin/p11proxy
#   KEEP=1 bash Tests/integration/test_token_uri.sh  # keep the work dir
# Prints ok / not ok lines and ends with "N passed, N failed"; exits non-zero on failure.
set -uo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_tools softhsm2-util p11tool || exit 1

BUILD=${BUILD_DIR:-build}
[[ $BUILD == /* ]] || BUILD=$REPO/$BUILD
CLI=${CLI_BIN:-$BUILD/bin/p11proxy}
[[ $CLI == /* ]] || CLI=$REPO/$CLI

unset P11PROXY_MODULE P11PROXY_CONFIG_DIR
make_work_dir token-uri
note "command: $CLI" "work: $WORK"

if [[ ! -x $CLI ]]; then
    fail "the command is built" "$CLI missing: run make cli"
    finish
fi
# SoftHSM2 cuts labels at 32 bytes; the second and third together hold every reserved character.
LABELS=("My token 1" 'a;b/c?d%e&f=g"h#i,j:k@l[m]n<o>p' '\q+r~s!t$u(v)w*x' "é ünï")
for label in "${LABELS[@]}"; do
    if [[ -z $SOFTHSM_SO ]] || ! make_softhsm_token "$WORK/softhsm" "$label"; then
        fail "a SoftHSM2 token labelled '$label'"
        finish
    fi
done
mkdir -p "$WORK/config/modules"
echo "module: $SOFTHSM_SO" >"$WORK/config/modules/softhsm2.module"

check_run "p11tool --list-tokens over SoftHSM2 runs" p11tool p11tool --provider "$SOFTHSM_SO" --list-tokens
P11TOOL_URIS=$(sed -n 's/^[[:space:]]*URL: //p' <<<"$RUN_OUT" | sort)
check_eq "p11tool lists the ${#LABELS[@]} initialised tokens" "${#LABELS[@]}" "$(grep -c . <<<"$P11TOOL_URIS")"

check_run "p11proxy list over SoftHSM2 runs" list "$CLI" list --config-dir "$WORK/config"
LIST=$RUN_OUT
# SoftHSM2's last slot holds an uninitialised token with a blank label, which p11tool leaves
# out; its URI is "token=" at the end.
LIST_URIS=$(sed -n 's/^            uri: //p' <<<"$LIST" | grep -v ';token=$' | sort)
check_eq "list prints a uri line under every token" \
    "$(grep -c '^        token: ' <<<"$LIST")" "$(grep -c '^            uri: ' <<<"$LIST")"
check_eq "list's token URIs are the ones p11tool prints" "$P11TOOL_URIS" "$LIST_URIS"
check "model, manufacturer, serial, token in that order; spaces are %20" grep -qE \
    '^ +uri: pkcs11:model=SoftHSM%20v2;manufacturer=SoftHSM%20project;serial=[0-9a-f]+;token=My%20token%201$' \
    "$RUN_DIR/list.out"
check_contains "reserved characters are percent-encoded, in upper-case hex" \
    "token=a%3Bb%2Fc%3Fd%25e%26f%3Dg%22h%23i%2Cj%3Ak%40l%5Bm%5Dn%3Co%3Ep" "$LIST"
check_contains "non-ASCII labels are encoded as UTF-8 bytes" "token=%C3%A9%20%C3%BCn%C3%AF" "$LIST"

finish
