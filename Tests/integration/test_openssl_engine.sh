#!/usr/bin/env bash
# OpenSSL through libp11's pkcs11 engine (libengine-pkcs11-openssl) with MODULE_PATH set to
# libp11proxy.so in an openssl.cnf: sign with keys on a SoftHSM2 token, load their public
# keys, decrypt, make a certificate. Every command also runs with MODULE_PATH set to SoftHSM2
# itself on the same token: the results must match (RSA PKCS#1 v1.5 signatures byte for byte).
#
#   Tests/integration/test_openssl_engine.sh    # PROXY_SO, KEEP=1 as in test_pkcs11_tool.sh
# shellcheck disable=SC2317 # helpers called through run/check_run
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_tools openssl pkcs11-tool softhsm2-util timeout
require_softhsm_and_proxy
ENGINE_SO=$(openssl version -e | sed -E 's/^ENGINESDIR: "(.*)"$/\1/')/pkcs11.so
if [[ ! -f $ENGINE_SO ]]; then
    echo "error: no pkcs11 engine at $ENGINE_SO (apt-get install libengine-pkcs11-openssl)" >&2
    exit 1
fi
make_work_dir engine
PIN=1234
CALL_TIMEOUT=${CALL_TIMEOUT:-60}
START=$SECONDS
note "proxy:   $PROXY_SO" "softhsm: $SOFTHSM_SO" "engine:  $ENGINE_SO" "work:    $WORK"

make_softhsm_token "$WORK/store" engine
make_proxy_config "$WORK/store/proxy" "$SOFTHSM_SO"
TOKEN="pkcs11:token=engine"

# engine_conf NAME MODULE [PIN]: an openssl.cnf that loads the pkcs11 engine with MODULE.
engine_conf() {
    cat >"$WORK/$1.cnf" <<EOF
openssl_conf = openssl_init
[openssl_init]
engines = engine_section
[engine_section]
pkcs11 = pkcs11_section
[pkcs11_section]
engine_id = pkcs11
dynamic_path = $ENGINE_SO
MODULE_PATH = $2
PIN = ${3:-$PIN}
init = 0
EOF
}
engine_conf proxy "$PROXY_SO"
engine_conf direct "$SOFTHSM_SO"
engine_conf proxy-bad-pin "$PROXY_SO" 9999
engine_conf direct-bad-pin "$SOFTHSM_SO" 9999

# ossl CONF ARGS...: openssl with the engine configured by CONF.cnf.
ossl() {
    local conf=$1
    shift
    OPENSSL_CONF=$WORK/$conf.cnf timeout "$CALL_TIMEOUT" openssl "$@"
}
# both NAME ARGS...: the same openssl command directly (run NAME.direct, config direct.cnf)
# and through the proxy (NAME.proxy, proxy.cnf); @ in an argument becomes direct or proxy.
# CONF_SUFFIX=-bad-pin picks the configs with a wrong PIN.
both() {
    local name=$1 side args arg
    shift
    for side in direct proxy; do
        args=()
        for arg in "$@"; do args+=("${arg//@/$side}"); done
        run "$name.$side" ossl "$side${CONF_SUFFIX:-}" "${args[@]}"
        echo "$RUN_RC" >"$RUN_DIR/$name.$side.rc"
    done
}
# check_both DESC NAME: the proxy run exited 0, and so did the direct run.
check_both() {
    local rc_proxy rc_direct
    rc_proxy=$(cat "$RUN_DIR/$2.proxy.rc") rc_direct=$(cat "$RUN_DIR/$2.direct.rc")
    if [[ $rc_proxy == 0 && $rc_direct == 0 ]]; then
        pass "$1"
    else
        fail "$1" "exit codes: proxy $rc_proxy, direct $rc_direct" "proxy stderr:" \
            "$(tail -n 6 "$RUN_DIR/$2.proxy.err")" "direct stderr:" "$(tail -n 6 "$RUN_DIR/$2.direct.err")"
    fi
}

p11_direct() { timeout "$CALL_TIMEOUT" pkcs11-tool --module "$SOFTHSM_SO" --token-label engine "$@"; }
run keygen-rsa p11_direct --login --pin "$PIN" --keypairgen --key-type rsa:2048 --label r1 --id 01
run keygen-ec p11_direct --login --pin "$PIN" --keypairgen --key-type EC:prime256v1 --label e1 --id 02
printf 'signed by OpenSSL with a key behind p11proxy\n' >"$WORK/data.txt"
printf 'some other data\n' >"$WORK/other.txt"
cd "$WORK"

both engine engine -t pkcs11
check_both "the pkcs11 engine loads with MODULE_PATH=libp11proxy.so" engine
check_contains "the engine reports itself available through the proxy" "[ available ]" "$(cat "$RUN_DIR/engine.proxy.out")"

# RSA: PKCS#1 v1.5 signatures are deterministic, so the proxy's must equal SoftHSM2's.
both pub-rsa pkey -engine pkcs11 -pubin -inform engine -in "$TOKEN;object=r1;type=public" -out r1.@.pem
check_both "the engine loads RSA public key r1 through the proxy" pub-rsa
check_files_equal "the proxy gives the engine the same RSA public key" r1.direct.pem r1.proxy.pem
both sign-rsa dgst -engine pkcs11 -keyform engine -sign "$TOKEN;object=r1;type=private" -sha256 -out r1.@.sig data.txt
check_both "openssl dgst -sign with RSA key r1 on the token" sign-rsa
check_files_equal "the RSA signature through the proxy is SoftHSM2's, byte for byte" r1.direct.sig r1.proxy.sig
run verify-rsa openssl dgst -sha256 -verify r1.proxy.pem -signature r1.proxy.sig data.txt
check_contains "openssl verifies the RSA signature with the public key" "Verified OK" "$RUN_OUT"
run verify-rsa-other openssl dgst -sha256 -verify r1.proxy.pem -signature r1.proxy.sig other.txt
check_contains "openssl rejects it for other data" "Verification failure" "$RUN_OUT"

# RSA-PSS through pkeyutl: CKM_RSA_PKCS_PSS with its parameters (randomised, so verified only).
openssl dgst -sha256 -binary data.txt >data.sha256
both sign-pss pkeyutl -engine pkcs11 -keyform engine -inkey "$TOKEN;object=r1;type=private" -sign \
    -pkeyopt rsa_padding_mode:pss -pkeyopt digest:sha256 -pkeyopt rsa_pss_saltlen:32 -in data.sha256 -out r1.@.pss
check_both "openssl pkeyutl -sign with RSA-PSS on the token" sign-pss
run verify-pss openssl pkeyutl -verify -pubin -inkey r1.proxy.pem -pkeyopt rsa_padding_mode:pss \
    -pkeyopt digest:sha256 -pkeyopt rsa_pss_saltlen:32 -in data.sha256 -sigfile r1.proxy.pss
check_contains "openssl verifies the RSA-PSS signature made through the proxy" "Signature Verified Successfully" "$RUN_OUT"

# RSA decryption on the token: OpenSSL encrypts with the public key.
printf 'secret for the engine\n' >plain.txt
openssl pkeyutl -encrypt -pubin -inkey r1.proxy.pem -in plain.txt -out cipher.bin
both decrypt pkeyutl -engine pkcs11 -keyform engine -inkey "$TOKEN;object=r1;type=private" -decrypt \
    -in cipher.bin -out plain.@.txt
check_both "openssl pkeyutl -decrypt with RSA key r1 on the token" decrypt
check_files_equal "the token decrypts to the plaintext through the proxy" plain.txt plain.proxy.txt

# ECDSA P-256.
both pub-ec pkey -engine pkcs11 -pubin -inform engine -in "$TOKEN;object=e1;type=public" -out e1.@.pem
check_both "the engine loads EC public key e1 through the proxy" pub-ec
check_files_equal "the proxy gives the engine the same EC public key" e1.direct.pem e1.proxy.pem
both sign-ec dgst -engine pkcs11 -keyform engine -sign "$TOKEN;object=e1;type=private" -sha256 -out e1.@.sig data.txt
check_both "openssl dgst -sign with EC key e1 on the token" sign-ec
run verify-ec openssl dgst -sha256 -verify e1.proxy.pem -signature e1.proxy.sig data.txt
check_contains "openssl verifies the ECDSA signature made through the proxy" "Verified OK" "$RUN_OUT"

# A self-signed certificate signed on the token, checked by OpenSSL alone.
both req req -new -x509 -engine pkcs11 -keyform engine -key "$TOKEN;object=e1;type=private" \
    -subj /CN=p11proxy-engine -days 1 -out cert.@.pem
check_both "openssl req -x509 signs a certificate with e1 on the token" req
run verify-cert openssl verify -CAfile cert.proxy.pem cert.proxy.pem
check_contains "openssl verifies the certificate signed through the proxy" "cert.proxy.pem: OK" "$RUN_OUT"
run cert-key openssl x509 -in cert.proxy.pem -noout -pubkey
check_eq "the certificate carries e1's public key" "$(cat e1.proxy.pem)" "$RUN_OUT"

# A wrong PIN fails the same way through the proxy as directly.
CONF_SUFFIX=-bad-pin both bad-pin dgst -engine pkcs11 -keyform engine -sign "$TOKEN;object=r1;type=private" \
    -sha256 -out bad.@.sig data.txt
rc_proxy=$(cat "$RUN_DIR/bad-pin.proxy.rc") rc_direct=$(cat "$RUN_DIR/bad-pin.direct.rc")
check "a wrong PIN fails the signature through the proxy" test "$rc_proxy" -ne 0
check_eq "a wrong PIN fails through the proxy as it does directly" "$rc_direct" "$rc_proxy"
# (libp11 0.4.12 then crashes at exit, directly too: exit 139 on both sides.)
check_contains "the engine reports the module's CKR_PIN_INCORRECT through the proxy" "PIN incorrect" \
    "$(cat "$RUN_DIR/bad-pin.proxy.err")"

note "took $((SECONDS - START)) s"
finish
