#!/usr/bin/env bash
# NSS (libnss3-tools) with p11proxy: `modutil -add` it to a fresh NSS database, `certutil -U`
# lists the SoftHSM2 token, and certutil generates a key on the token and signs a certificate
# with it. A second database with SoftHSM2 added directly gets the same commands; both must
# see the same slots, tokens, keys and certificates.
#
#   Tests/integration/test_nss.sh    # PROXY_SO, KEEP=1 as in test_pkcs11_tool.sh
# shellcheck disable=SC2317 # helpers called through run/check_run
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_tools modutil certutil pkcs11-tool softhsm2-util openssl timeout
require_softhsm_and_proxy
make_work_dir nss
CALL_TIMEOUT=${CALL_TIMEOUT:-60}
START=$SECONDS
note "proxy:   $PROXY_SO" "softhsm: $SOFTHSM_SO" "work:    $WORK"

make_softhsm_token "$WORK/store" nss
make_proxy_config "$WORK/store/proxy" "$SOFTHSM_SO"
printf '1234\n' >"$WORK/pin.txt"
head -c 64 /dev/urandom >"$WORK/noise.bin"

# NSS databases: proxy (p11proxy added) and direct (SoftHSM2 added).
nss() { timeout "$CALL_TIMEOUT" "$@"; }
for side in proxy direct; do
    mkdir -p "$WORK/$side"
    nss certutil -N -d "sql:$WORK/$side" --empty-password
done

check_run "modutil -add p11proxy to a fresh NSS database" add-proxy \
    nss modutil -add p11proxy -libfile "$PROXY_SO" -dbdir "sql:$WORK/proxy" -force
check_contains "modutil reports the module added" 'Module "p11proxy" added to database.' "$RUN_OUT"
run add-direct nss modutil -add softhsm -libfile "$SOFTHSM_SO" -dbdir "sql:$WORK/direct" -force

# modutil -list: the added module's own section, without its name and library lines.
module_section() {
    awk -v name="$2" '$0 ~ "^ *[0-9]+\\. " name "$" { on = 1; next }
        on && /^ *[0-9]+\. / { on = 0 } on && /^-+$/ { on = 0 }
        on && !/library name:|   uri: pkcs11:library-/ { print }' "$1"
}
check_run "modutil -list with p11proxy exits 0" list-proxy nss modutil -list -dbdir "sql:$WORK/proxy"
check_contains "modutil -list shows p11proxy loaded" "status: loaded" "$(module_section "$RUN_DIR/list-proxy.out" p11proxy)"
check_contains "modutil -list shows the token under p11proxy" "token: nss" "$(module_section "$RUN_DIR/list-proxy.out" p11proxy)"
run list-direct nss modutil -list -dbdir "sql:$WORK/direct"
check_eq "modutil -list shows p11proxy's slots as SoftHSM2's own" \
    "$(module_section "$RUN_DIR/list-direct.out" softhsm)" "$(module_section "$RUN_DIR/list-proxy.out" p11proxy)"

check_run "certutil -U with p11proxy exits 0" tokens-proxy nss certutil -U -d "sql:$WORK/proxy"
check_contains "certutil -U lists the SoftHSM2 token through p11proxy" "token: nss" "$RUN_OUT"
check_contains "certutil -U shows the token's URI" "uri: pkcs11:token=nss;manufacturer=SoftHSM%20project" "$RUN_OUT"
run tokens-direct nss certutil -U -d "sql:$WORK/direct"
check_eq "certutil -U shows the same slots and tokens as with SoftHSM2 directly" \
    "$(cat "$RUN_DIR/tokens-direct.out")" "$(cat "$RUN_DIR/tokens-proxy.out")"

# certutil makes an EC P-256 key pair on the token and self-signs a certificate with it
# (C_GenerateKeyPair, C_Sign, C_CreateObject through the proxy).
check_run "certutil -S: key pair and self-signed certificate on the token through p11proxy" cert-proxy \
    nss certutil -S -d "sql:$WORK/proxy" -h nss -f "$WORK/pin.txt" -z "$WORK/noise.bin" \
    -k ec -q nistp256 -s "CN=p11proxy nss" -n proxy-cert -x -t CT,, -v 1
check_run "certutil -S: the same directly" cert-direct \
    nss certutil -S -d "sql:$WORK/direct" -h nss -f "$WORK/pin.txt" -z "$WORK/noise.bin" \
    -k ec -q nistp256 -s "CN=direct nss" -n direct-cert -x -t CT,, -v 1

for side in proxy direct; do
    run "certs-$side" nss certutil -L -d "sql:$WORK/$side" -h nss -f "$WORK/pin.txt"
    run "keys-$side" nss certutil -K -d "sql:$WORK/$side" -h nss -f "$WORK/pin.txt"
done
check_contains "certutil -L lists the certificate made through p11proxy" "nss:proxy-cert" "$(cat "$RUN_DIR/certs-proxy.out")"
check_contains "certutil -L through p11proxy lists the one made directly" "nss:direct-cert" "$(cat "$RUN_DIR/certs-proxy.out")"
# Trust flags live in each NSS database, so only the nicknames are compared.
check_eq "certutil -L lists the same certificates on the token either way" \
    "$(awk '/^nss:/ { print $1 }' "$RUN_DIR/certs-direct.out" | sort)" \
    "$(awk '/^nss:/ { print $1 }' "$RUN_DIR/certs-proxy.out" | sort)"
check_eq "certutil -K lists the same two keys either way" \
    "$(grep -E '^<' "$RUN_DIR/keys-direct.out" | sed 's/^< *[0-9]*>//' | sort)" \
    "$(grep -E '^<' "$RUN_DIR/keys-proxy.out" | sed 's/^< *[0-9]*>//' | sort)"
check_eq "certutil -K through p11proxy shows two EC keys" 2 "$(grep -cE '^< *[0-9]+> ec ' "$RUN_DIR/keys-proxy.out" || true)"

# OpenSSL checks the signature NSS made on the token through the proxy.
run export nss certutil -L -d "sql:$WORK/proxy" -h nss -f "$WORK/pin.txt" -n nss:proxy-cert -a
printf '%s\n' "$RUN_OUT" >"$WORK/proxy-cert.pem"
run openssl-verify openssl verify -CAfile "$WORK/proxy-cert.pem" "$WORK/proxy-cert.pem"
check_contains "openssl verifies the certificate NSS signed through p11proxy" ": OK" "$RUN_OUT"
run direct-O env SOFTHSM2_CONF="$SOFTHSM2_CONF" pkcs11-tool --module "$SOFTHSM_SO" --token-label nss -O --type cert
check_contains "SoftHSM2 directly holds the certificate NSS wrote through p11proxy" "p11proxy nss" "$RUN_OUT"

# A wrong PIN is refused through the proxy as directly.
printf '9999\n' >"$WORK/bad-pin.txt"
run bad-pin-proxy nss certutil -K -d "sql:$WORK/proxy" -h nss -f "$WORK/bad-pin.txt"
rc_proxy=$RUN_RC
run bad-pin-direct nss certutil -K -d "sql:$WORK/direct" -h nss -f "$WORK/bad-pin.txt"
check "certutil -K with a wrong PIN fails through p11proxy" test "$rc_proxy" -ne 0
check_eq "certutil -K with a wrong PIN: same message as directly" \
    "$(cat "$RUN_DIR/bad-pin-direct.err")" "$(cat "$RUN_DIR/bad-pin-proxy.err")"

check_run "modutil -delete p11proxy" delete nss modutil -delete p11proxy -dbdir "sql:$WORK/proxy" -force
run list-after nss modutil -list -dbdir "sql:$WORK/proxy"
check_not_contains "p11proxy is gone from modutil -list" p11proxy "$RUN_OUT"

note "took $((SECONDS - START)) s"
finish
