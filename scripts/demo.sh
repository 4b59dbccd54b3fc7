#!/usr/bin/env bash
# `make demo`: a narrated walk-through of pkcs11-tool using a SoftHSM2 token through
# p11proxy. Everything lives in a temp dir (its own SOFTHSM2_CONF and P11PROXY_CONFIG_DIR);
# no system config is read for the token or written at all. KEEP=1 keeps the temp dir.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../Tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../Tests/integration/lib.sh"

LABEL=p11proxy-demo
SO_PIN=12345678
PIN=1234

die() {
    echo "demo failed: $*" >&2
    exit 1
}

require_tools pkcs11-tool softhsm2-util openssl timeout || exit 1
[[ -n $SOFTHSM_SO ]] || die "SoftHSM2 module not found (apt-get install softhsm2)"
[[ -f $PROXY_SO ]] || die "$PROXY_SO not found: build it first (make)"

DEMO=$(mktemp -d "${TMPDIR:-/tmp}/p11proxy-demo.XXXXXX")
cleanup() {
    if [[ ${KEEP:-0} == 1 ]]; then
        echo "(kept $DEMO)"
    else
        rm -rf "$DEMO"
    fi
}
trap cleanup EXIT

# Commands are printed with the temp dir and the repo shortened, so they read like ones
# a person would type.
shown() {
    local text
    text=$(printf ' %q' "$@")
    # shellcheck disable=SC2016 # a literal $DEMO is the point
    text=${text//"$DEMO"/'$DEMO'}
    text=${text//"$REPO/"/}
    echo "  \$${text}"
}

# step TITLE: a heading for the next part of the walk-through.
step() {
    echo
    echo "==> $*"
}

# show_run CMD...: print the command, run it, print its output indented; stop on failure.
show_run() {
    local out rc=0
    shown "$@"
    # timeout: a hung module call should end the demo with an error, not hang it.
    out=$(timeout 60 "$@" 2>&1) || rc=$?
    if [[ -n $out ]]; then
        echo "    ${out//$'\n'/$'\n'    }"
    fi
    ((rc == 0)) || die "exit code $rc from: $*"
    SHOWN_OUT=$out
}

step "Create a SoftHSM2 token store in $DEMO (its own softhsm2.conf)"
make_softhsm_token "$DEMO/softhsm" "$LABEL" "$SO_PIN" "$PIN" ||
    die "could not create the SoftHSM2 token"
echo "  \$ export SOFTHSM2_CONF=\$DEMO/softhsm/softhsm2.conf"
sed 's/^/    /' "$SOFTHSM2_CONF"
shown softhsm2-util --init-token --free --label "$LABEL" --so-pin "$SO_PIN" --pin "$PIN"
echo "    (token '$LABEL' initialised; SO PIN $SO_PIN, user PIN $PIN)"

step "Write a p11proxy config dir that loads SoftHSM2"
make_proxy_config "$DEMO/proxy" "$SOFTHSM_SO"
echo "  \$ export P11PROXY_CONFIG_DIR=\$DEMO/proxy"
for module_file in "$P11PROXY_CONFIG_DIR"/modules/*.module; do
    echo "  \$DEMO/proxy/modules/$(basename "$module_file"):"
    sed 's/^/    /' "$module_file"
done

step "List slots through the proxy (SoftHSM2 always adds one free, uninitialised slot)"
show_run pkcs11-tool --module "$PROXY_SO" --list-slots

step "Log in and generate an EC P-256 key pair"
show_run pkcs11-tool --module "$PROXY_SO" --token-label "$LABEL" --login --pin "$PIN" \
    --keypairgen --key-type EC:prime256v1 --label demo-key --id 01

step "Sign some data (SoftHSM2 signs a SHA-256 digest with plain CKM_ECDSA)"
printf 'Hello from p11proxy\n' >"$DEMO/data.txt"
show_run openssl dgst -sha256 -binary -out "$DEMO/data.sha256" "$DEMO/data.txt"
show_run pkcs11-tool --module "$PROXY_SO" --token-label "$LABEL" --login --pin "$PIN" --sign --mechanism ECDSA --id 01 \
    --input-file "$DEMO/data.sha256" --output-file "$DEMO/data.sig" --signature-format openssl

step "Verify the signature through the proxy"
show_run pkcs11-tool --module "$PROXY_SO" --token-label "$LABEL" --verify --mechanism ECDSA --id 01 \
    --input-file "$DEMO/data.sha256" --signature-file "$DEMO/data.sig" --signature-format openssl
# pkcs11-tool exits 0 for a bad signature as well; its message is what tells.
grep -q 'Signature is valid' <<<"$SHOWN_OUT" || die "the signature did not verify"

step "Cross-check with OpenSSL, using the public key read through the proxy"
show_run pkcs11-tool --module "$PROXY_SO" --token-label "$LABEL" --read-object --type pubkey --id 01 \
    --output-file "$DEMO/demo-key.der"
show_run openssl pkey -pubin -inform DER -in "$DEMO/demo-key.der" -out "$DEMO/demo-key.pem"
show_run openssl dgst -sha256 -verify "$DEMO/demo-key.pem" -signature "$DEMO/data.sig" "$DEMO/data.txt"

step "List the objects on the token"
show_run pkcs11-tool --module "$PROXY_SO" --token-label "$LABEL" --login --pin "$PIN" --list-objects

P11PROXY_BIN=${CLI_BIN:-${BUILD_DIR:-build}/bin/p11proxy}
if [[ -x $P11PROXY_BIN ]]; then
    step "Ask the p11proxy command what the module loads, and check the configuration"
    show_run "$P11PROXY_BIN" list
    show_run "$P11PROXY_BIN" check

    step "Trace one pkcs11-tool run (p11-kit's log-calls layout; the PIN is redacted)"
    show_run "$P11PROXY_BIN" trace --output "$DEMO/trace.txt" -- \
        pkcs11-tool --module "$PROXY_SO" --token-label "$LABEL" --login --pin "$PIN" --list-objects --type privkey
    echo "  \$ grep -A3 '^C_Login' \$DEMO/trace.txt"
    grep -A3 '^C_Login' "$DEMO/trace.txt" | sed 's/^/    /'
fi

step "Done: pkcs11-tool used SoftHSM2 only through $(basename "$PROXY_SO")"
