#!/usr/bin/env bash
# python-pkcs11 (PyPI, in the virtualenv `make python-venv` creates) through p11proxy: list
# tokens and mechanisms, log in, generate RSA, EC and AES keys, sign, verify, encrypt and
# decrypt (Tests/integration/python_pkcs11_client.py). The same script runs against SoftHSM2
# directly on a fresh token of the same label; everything it prints must be the same, and
# OpenSSL checks the signatures made through the proxy.
#
#   Tests/integration/test_python_pkcs11.sh    # PYTHON_VENV (build/venv), PROXY_SO, KEEP=1
# shellcheck disable=SC2317 # helpers called through run/check_run
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_tools softhsm2-util pkcs11-tool openssl timeout
require_softhsm_and_proxy
PYTHON_VENV=${PYTHON_VENV:-$REPO/${BUILD_DIR:-build}/venv}
PYTHON=$PYTHON_VENV/bin/python
if [[ ! -x $PYTHON ]]; then
    echo "error: no virtualenv at $PYTHON_VENV: run make python-venv" >&2
    exit 1
fi
make_work_dir python
mkdir -p "$WORK/direct.out" "$WORK/proxy.out"
PIN=1234
CALL_TIMEOUT=${CALL_TIMEOUT:-120}
CLIENT=$INTEGRATION_DIR/python_pkcs11_client.py
START=$SECONDS
note "proxy:   $PROXY_SO" "softhsm: $SOFTHSM_SO" "python:  $("$PYTHON" -c 'import pkcs11, importlib.metadata as m; print("python-pkcs11", m.version("python-pkcs11"))')"

# client STORE MODULE OUT: the script against MODULE with SOFTHSM2_CONF of STORE.
client() {
    SOFTHSM2_CONF=$1/softhsm2.conf P11PROXY_CONFIG_DIR=$1/proxy \
        timeout "$CALL_TIMEOUT" "$PYTHON" "$CLIENT" "$2" python "$PIN" "$3"
}

make_softhsm_token "$WORK/direct" python
make_softhsm_token "$WORK/proxy" python
make_proxy_config "$WORK/proxy/proxy" "$SOFTHSM_SO"
unset SOFTHSM2_CONF P11PROXY_CONFIG_DIR

check_run "direct: python-pkcs11 against SoftHSM2 exits 0" direct client "$WORK/direct" "$SOFTHSM_SO" "$WORK/direct.out"
check_run "proxy: python-pkcs11 through p11proxy exits 0" proxy client "$WORK/proxy" "$PROXY_SO" "$WORK/proxy.out"
note "$(grep '^library' "$RUN_DIR/direct.out" | sed 's/^/direct /')" "$(grep '^library' "$RUN_DIR/proxy.out" | sed 's/^/proxy  /')"
for line in "token labels: ,python" "rsa verify on the token: True" "rsa verify rejects other data: True" \
    "rsa decrypts its own ciphertext: True" "ecdsa verify on the token: True" "aes round trip: True" \
    "objects without login: PUBLIC_KEY:py-ec,PUBLIC_KEY:py-rsa" "wrong pin: PinIncorrect"; do
    check_contains "proxy: ${line%%:*}" "$line" "$(cat "$RUN_DIR/proxy.out")"
done
check_contains "proxy: C_GetInfo is p11proxy's own" "library: p11proxy" "$(cat "$RUN_DIR/proxy.out")"
check_eq "proxy: python-pkcs11 sees what it sees against SoftHSM2 directly" \
    "$(grep -v '^library' "$RUN_DIR/direct.out")" "$(grep -v '^library' "$RUN_DIR/proxy.out")"

# OpenSSL checks what was signed through the proxy with the public keys read through it.
out=$WORK/proxy.out
run rsa-pem openssl rsa -RSAPublicKey_in -inform DER -in "$out/rsa.pub.der" -pubout -out "$out/rsa.pub.pem"
run rsa-verify openssl dgst -sha256 -verify "$out/rsa.pub.pem" -signature "$out/rsa.sig" "$out/data.txt"
check_contains "openssl verifies the RSA signature made through the proxy" "Verified OK" "$RUN_OUT"
run ec-pem openssl pkey -pubin -inform DER -in "$out/ec.pub.der" -out "$out/ec.pub.pem"
run ec-verify openssl dgst -sha256 -verify "$out/ec.pub.pem" -signature "$out/ec.sig.der" "$out/data.txt"
check_contains "openssl verifies the ECDSA signature made through the proxy" "Verified OK" "$RUN_OUT"
printf 'other data\n' >"$WORK/other.txt"
run ec-verify-other openssl dgst -sha256 -verify "$out/ec.pub.pem" -signature "$out/ec.sig.der" "$WORK/other.txt"
check_contains "openssl rejects that signature for other data" "Verification failure" "$RUN_OUT"

# The keys python-pkcs11 stored through the proxy are on the token for SoftHSM2 itself.
run direct-O env SOFTHSM2_CONF="$WORK/proxy/softhsm2.conf" \
    pkcs11-tool --module "$SOFTHSM_SO" --token-label python --login --pin "$PIN" -O
check_eq "SoftHSM2 directly lists the four keys stored through the proxy" 4 \
    "$(grep -cE 'label: +py-(rsa|ec)$' "$RUN_DIR/direct-O.out" || true)"

note "took $((SECONDS - START)) s"
finish
