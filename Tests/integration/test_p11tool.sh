#!/usr/bin/env bash
# SoftHSM2 through p11proxy with GnuTLS's p11tool and certtool: a second real client, which
# walks tokens and objects its own way (PKCS#11 URIs, attribute probing), compared with the
# same commands against SoftHSM2 loaded directly. Same variables as test_pkcs11_tool.sh.

# SC2317: helpers such as p11tool_proxy are called through run/check_run, which shellcheck
# cannot see.
# shellcheck disable=SC2317
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_tools p11tool certtool softhsm2-util openssl timeout
require_softhsm_and_proxy
make_work_dir gnutls
note "proxy:   $PROXY_SO" "softhsm: $SOFTHSM_SO" "work:    $WORK"

# p11tool and certtool read PINs from these instead of prompting.
export GNUTLS_PIN=1234 GNUTLS_SO_PIN=12345678

make_softhsm_token "$WORK/store" gnutls
make_proxy_config "$WORK/store/proxy" "$SOFTHSM_SO"
TOKEN="pkcs11:token=gnutls"

# A hung module call (a deadlock in the proxy, say) must fail a check, not stall CI.
CALL_TIMEOUT=${CALL_TIMEOUT:-60}
p11tool_proxy() { timeout "$CALL_TIMEOUT" p11tool --provider "$PROXY_SO" "$@"; }
p11tool_direct() { timeout "$CALL_TIMEOUT" p11tool --provider "$SOFTHSM_SO" "$@"; }

# p11tool numbers objects ("Object 3:") in C_FindObjects order, which PKCS#11 leaves
# open: compare the objects as a sorted set of one-line blocks without those numbers.
object_set() {
    awk '/^Object [0-9]+:/ { if (b != "") print b; b = ""; next }
         NF { b = b " |" $0 }
         END { if (b != "") print b }' "$1" | sort
}

run direct-tokens p11tool_direct --list-tokens
check_run "proxy: p11tool --list-tokens exits 0" proxy-tokens p11tool_proxy --list-tokens
check_contains "proxy: p11tool finds the token by its URI" "token=gnutls" "$RUN_OUT"
check_eq "proxy: p11tool --list-tokens matches SoftHSM2's" \
    "$(cat "$RUN_DIR/direct-tokens.out")" "$(cat "$RUN_DIR/proxy-tokens.out")"

run direct-mechs p11tool_direct --list-mechanisms "$TOKEN"
check_run "proxy: p11tool --list-mechanisms exits 0" proxy-mechs p11tool_proxy --list-mechanisms "$TOKEN"
check_eq "proxy: p11tool lists the same mechanisms as SoftHSM2" \
    "$(cat "$RUN_DIR/direct-mechs.out")" "$(cat "$RUN_DIR/proxy-mechs.out")"

check_run "proxy: p11tool generates an ECDSA P-256 key g1" gen-ec \
    p11tool_proxy --login --generate-privkey ECDSA --curve secp256r1 --label g1 \
    --outfile "$WORK/g1.pub.pem" "$TOKEN"
check_run "proxy: p11tool generates an RSA 2048 key g2" gen-rsa \
    p11tool_proxy --login --generate-privkey RSA --bits 2048 --label g2 \
    --outfile "$WORK/g2.pub.pem" "$TOKEN"

# --test-sign signs with the token, then verifies with the key's parameters and with the
# token's public key object: C_Sign plus attribute reads, all through the proxy.
check_run "proxy: p11tool --test-sign with g1 (ECDSA)" sign-ec \
    p11tool_proxy --login --test-sign "$TOKEN;object=g1"
check_run "proxy: p11tool --test-sign with g2 (RSA)" sign-rsa \
    p11tool_proxy --login --test-sign "$TOKEN;object=g2"

run direct-all p11tool_direct --login --list-all "$TOKEN"
check_run "proxy: p11tool --list-all exits 0" proxy-all p11tool_proxy --login --list-all "$TOKEN"
check_contains "proxy: p11tool --list-all shows key g1" "object=g1;type=private" "$RUN_OUT"
check_contains "proxy: p11tool --list-all shows key g2" "object=g2;type=private" "$RUN_OUT"
check_eq "proxy: p11tool --list-all shows the same objects as SoftHSM2" \
    "$(object_set "$RUN_DIR/direct-all.out")" "$(object_set "$RUN_DIR/proxy-all.out")"

run direct-pub p11tool_direct --export-pubkey "$TOKEN;object=g1" --outfile "$WORK/g1.direct.pem"
check_run "proxy: p11tool exports g1's public key" proxy-pub \
    p11tool_proxy --export-pubkey "$TOKEN;object=g1" --outfile "$WORK/g1.proxy.pem"
check_files_equal "the exported key is SoftHSM2's" "$WORK/g1.direct.pem" "$WORK/g1.proxy.pem"

# certtool signs a self-signed certificate with the token's key through the proxy; OpenSSL
# then checks the signature, so nothing in the chain trusts the proxy's own word.
printf 'cn = "p11proxy gnutls"\nexpiration_days = 1\nsigning_key\n' >"$WORK/cert.tmpl"
check_run "proxy: certtool self-signs a certificate with g1" certtool \
    timeout "$CALL_TIMEOUT" certtool --provider "$PROXY_SO" --generate-self-signed \
    --load-privkey "$TOKEN;object=g1;type=private" --load-pubkey "$TOKEN;object=g1;type=public" \
    --template "$WORK/cert.tmpl" --outfile "$WORK/g1.cert.pem"
run openssl-verify openssl verify -CAfile "$WORK/g1.cert.pem" "$WORK/g1.cert.pem"
check_contains "openssl verifies the certificate signed through the proxy" ": OK" "$RUN_OUT"

# The same with the RSA key: certtool picks RSA-PKCS with a SHA-256 DigestInfo.
check_run "proxy: certtool self-signs a certificate with g2 (RSA)" certtool-rsa \
    timeout "$CALL_TIMEOUT" certtool --provider "$PROXY_SO" --generate-self-signed \
    --load-privkey "$TOKEN;object=g2;type=private" --load-pubkey "$TOKEN;object=g2;type=public" \
    --template "$WORK/cert.tmpl" --outfile "$WORK/g2.cert.pem"
run openssl-verify-rsa openssl verify -CAfile "$WORK/g2.cert.pem" "$WORK/g2.cert.pem"
check_contains "openssl verifies the RSA certificate signed through the proxy" ": OK" "$RUN_OUT"

# The certificate goes onto the token through the proxy and comes back unchanged.
check_run "proxy: p11tool --write puts g1's certificate on the token" write-cert \
    p11tool_proxy --login --write --load-certificate "$WORK/g1.cert.pem" --label g1 "$TOKEN"
run direct-certs p11tool_direct --list-all-certs "$TOKEN"
check_run "proxy: p11tool --list-all-certs exits 0" proxy-certs p11tool_proxy --list-all-certs "$TOKEN"
check_contains "proxy: p11tool lists the certificate written" "object=g1;type=cert" "$RUN_OUT"
check_eq "proxy: p11tool --list-all-certs matches SoftHSM2's" \
    "$(object_set "$RUN_DIR/direct-certs.out")" "$(object_set "$RUN_DIR/proxy-certs.out")"
check_run "proxy: p11tool --export the certificate" export-cert \
    p11tool_proxy --export "$TOKEN;object=g1;type=cert" --outfile "$WORK/g1.back.pem"
check_eq "the certificate read back is the one written" \
    "$(openssl x509 -in "$WORK/g1.cert.pem" -outform DER | od -An -tx1)" \
    "$(openssl x509 -in "$WORK/g1.back.pem" -outform DER | od -An -tx1)"

check_run "proxy: p11tool --generate-random 32" random p11tool_proxy --generate-random 32 "$TOKEN"
check_eq "proxy: 32 random bytes come back" 32 "$(wc -c <"$RUN_DIR/random.out")"

# --delete through the proxy; SoftHSM2 directly must no longer find the object.
check_run "proxy: p11tool --delete the certificate" delete \
    p11tool_proxy --login --batch --delete "$TOKEN;object=g1;type=cert"
run direct-certs-after p11tool_direct --list-all-certs "$TOKEN"
check_not_contains "SoftHSM2 directly no longer lists the deleted certificate" "object=g1;type=cert" "$RUN_OUT"

finish
