#!/usr/bin/env bash
# Remote modules (`remote:` over p11-kit's RPC) against Debian's own p11-kit binaries, each
# started here in a temporary directory over a SoftHSM2 token:
#   1. p11proxy -> `p11-kit server --provider libsofthsm2.so` on a unix socket, beside a local
#      mock module: slots merged; login, RSA and EC keys, RSA-PKCS/PSS/ECDSA signatures, OAEP
#      and AES-CBC, digest, random, `pkcs11-tool --test`, compared with p11-kit-client.so on the
#      same server (and with OpenSSL);
#   2. p11proxy -> `|p11-kit remote libsofthsm2.so` (a spawned command on a socketpair);
#   3. `p11-kit server --provider libp11proxy.so` exporting several local modules through one
#      socket, used by p11-kit-client.so and by p11proxy itself;
#   4. faults: no server (skipped, naming the address; critical fails C_Initialize), a server
#      gone (a new process lists nothing from it, without hanging), `p11proxy list`/`check`.
# Threads, callers, a blocking wait, a server killed mid-use and restarted, fork and the reaping
# of spawned commands within one process: Tests/C/test_remote_proxy.c.
#   Tests/integration/test_remote.sh      # PROXY_SO, CLI_BIN, BUILD_DIR, KEEP=1
set -uo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_tools p11-kit softhsm2-util pkcs11-tool openssl timeout || exit 1
unset P11PROXY_MODULE P11PROXY_CONFIG_DIR P11PROXY_LOG_CALLS P11PROXY_LOG_FILE P11PROXY_LOG_FORMAT P11PROXY_LOG_SECRETS \
    P11_KIT_SERVER_ADDRESS
BUILD=${BUILD_DIR:-build}
[[ $BUILD == /* ]] || BUILD=$REPO/$BUILD
CLI=${CLI_BIN:-$BUILD/bin/p11proxy}
[[ $CLI == /* ]] || CLI=$REPO/$CLI
CLIENT_SO=$(pkg-config --variable=p11_module_path p11-kit-1)/p11-kit-client.so

SERVERS=()
cleanup() {
    local pid
    for pid in "${SERVERS[@]}"; do kill "$pid" 2>/dev/null; done
    wait 2>/dev/null
    remove_work_dir
}
make_work_dir remote
trap cleanup EXIT
require_softhsm_and_proxy
build_c_programs mock-modules
[[ -f $CLIENT_SO ]] || { fail "p11-kit-client.so is installed" "$CLIENT_SO missing (p11-kit-modules)"; finish; }
PIN=1234

# start_server SOCKET PROVIDER [VAR=VALUE...]: `p11-kit server` in the foreground of a background
# job, its environment as given; waits for the socket.
start_server() {
    local socket=$1 provider=$2
    shift 2
    env "$@" p11-kit server -f -n "$socket" --provider "$provider" "pkcs11:" >"$WORK/server-$(basename "$socket").log" 2>&1 &
    SERVERS+=($!)
    LAST_SERVER=$!
    for _ in $(seq 50); do [[ -S $socket ]] && return 0; sleep 0.1; done
    fail "p11-kit server on $socket started" "$(cat "$WORK/server-$(basename "$socket").log")"
    finish
}

make_softhsm_token "$WORK/hsm" remote-token 12345678 "$PIN" || { fail "SoftHSM2 token"; finish; }
HSM_CONF=$SOFTHSM2_CONF
unset SOFTHSM2_CONF
start_server "$WORK/hsm.sock" "$SOFTHSM_SO" SOFTHSM2_CONF="$HSM_CONF"
SERVER_ADDRESS=unix:path=$WORK/hsm.sock

CONF=$WORK/conf
mkdir -p "$CONF/modules"
printf 'remote: %s\n' "$SERVER_ADDRESS" >"$CONF/modules/hsm.module"
printf 'module: %s\n' "$BUILD/mock/libmock-b.so" >"$CONF/modules/mock.module"

# --- 1. through the socket, beside a local module -----------------------------------------
proxy() { P11PROXY_CONFIG_DIR=$CONF timeout 120 pkcs11-tool --module "$PROXY_SO" "$@"; }
client() { P11_KIT_SERVER_ADDRESS=$SERVER_ADDRESS timeout 120 pkcs11-tool --module "$CLIENT_SO" "$@"; }
labels() { "$@" -L 2>/dev/null | sed -n 's/^  token label *: //p' | tr '\n' ' '; }

check_eq "slots merged: the remote token and the local mock's" "remote-token mock-b-1 " "$(labels proxy)"
check_eq "p11-kit-client.so on the same server lists the same remote token" "remote-token " "$(labels client)"
T=(--token-label remote-token --login --pin "$PIN")
check_run "RSA key pair generated through p11proxy" rsa-gen proxy "${T[@]}" --keypairgen --key-type rsa:2048 --id 01 --label rsa
check_run "EC key pair generated through p11proxy" ec-gen proxy "${T[@]}" --keypairgen --key-type EC:prime256v1 --id 02 --label ec
head -c 1000 /dev/urandom >"$WORK/data"
check_run "RSA-PKCS signature through p11proxy" sign-proxy proxy "${T[@]}" --sign -m SHA256-RSA-PKCS --id 01 -i "$WORK/data" -o "$WORK/sig.proxy"
check_run "RSA-PKCS signature through p11-kit-client.so" sign-client client "${T[@]}" --sign -m SHA256-RSA-PKCS --id 01 -i "$WORK/data" -o "$WORK/sig.client"
check_files_equal "RSA-PKCS signatures are the same bytes" "$WORK/sig.proxy" "$WORK/sig.client"
check_run "public key exported through p11proxy" pub proxy --token-label remote-token --read-object --type pubkey --id 01 -o "$WORK/rsa.der"
openssl pkey -pubin -inform DER -in "$WORK/rsa.der" -out "$WORK/rsa.pem" 2>/dev/null
check_run "OpenSSL verifies the RSA-PKCS signature" verify-rsa openssl dgst -sha256 -verify "$WORK/rsa.pem" -signature "$WORK/sig.proxy" "$WORK/data"
check_run "RSA-PSS signature through p11proxy" pss proxy "${T[@]}" --sign -m SHA256-RSA-PKCS-PSS --id 01 -i "$WORK/data" -o "$WORK/pss.sig"
check_run "OpenSSL verifies the PSS signature" verify-pss openssl dgst -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:-1 \
    -verify "$WORK/rsa.pem" -signature "$WORK/pss.sig" "$WORK/data"
openssl dgst -sha256 -binary "$WORK/data" >"$WORK/data.sha256"
check_run "ECDSA signature through p11proxy" ecdsa proxy "${T[@]}" --sign -m ECDSA --id 02 -i "$WORK/data.sha256" -o "$WORK/ec.sig"
check_run "p11-kit-client.so verifies it" ecdsa-verify client "${T[@]}" --verify -m ECDSA --id 02 -i "$WORK/data.sha256" --signature-file "$WORK/ec.sig"
# p11-kit 0.24.1's server refuses the hash-and-sign ECDSA mechanisms (not in its list of
# parameterless ones): p11proxy answers what p11-kit's own client answers.
run ecdsa-sha256-proxy proxy "${T[@]}" --sign -m ECDSA-SHA256 --id 02 -i "$WORK/data" -o "$WORK/ec2.sig"
run ecdsa-sha256-client client "${T[@]}" --sign -m ECDSA-SHA256 --id 02 -i "$WORK/data" -o "$WORK/ec3.sig"
check_eq "ECDSA-SHA256: the same answer as p11-kit-client.so (0.24.1's server refuses it)" \
    "$(grep -o 'rv = [A-Z_]*' "$RUN_DIR/ecdsa-sha256-client.err")" "$(grep -o 'rv = [A-Z_]*' "$RUN_DIR/ecdsa-sha256-proxy.err")"
head -c 100 /dev/urandom >"$WORK/secret"
openssl pkeyutl -encrypt -pubin -inkey "$WORK/rsa.pem" -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha1 \
    -in "$WORK/secret" -out "$WORK/secret.oaep"
check_run "RSA-OAEP decryption through p11proxy" oaep proxy "${T[@]}" --decrypt -m RSA-PKCS-OAEP --hash-algorithm SHA-1 --id 01 \
    -i "$WORK/secret.oaep" -o "$WORK/secret.out"
check_files_equal "... gives back what OpenSSL encrypted" "$WORK/secret" "$WORK/secret.out"
check_run "AES key generated through p11proxy" aes-gen proxy "${T[@]}" --keygen --key-type AES:32 --id 03 --label aes
IV=000102030405060708090a0b0c0d0e0f
head -c 64 /dev/urandom >"$WORK/plain"
check_run "AES-CBC encryption through p11proxy" cbc-proxy proxy "${T[@]}" --encrypt -m AES-CBC --iv "$IV" --id 03 -i "$WORK/plain" -o "$WORK/cbc.proxy"
# p11-kit 0.24.1's client refuses mechanisms with parameters it has no encoder for (AES-CBC's
# IV); p11proxy sends the IV's bytes, which 0.24.1's server hands to its module: compared with
# SoftHSM2 directly on the same token.
check_run "AES-CBC encryption on SoftHSM2 directly" cbc-direct env SOFTHSM2_CONF="$HSM_CONF" timeout 60 pkcs11-tool --module "$SOFTHSM_SO" \
    "${T[@]}" --encrypt -m AES-CBC --iv "$IV" --id 03 -i "$WORK/plain" -o "$WORK/cbc.direct"
check_files_equal "AES-CBC ciphertexts through p11proxy and directly are the same bytes" "$WORK/cbc.proxy" "$WORK/cbc.direct"
check_run "AES-CBC decryption through p11proxy" cbc-dec proxy "${T[@]}" --decrypt -m AES-CBC --iv "$IV" --id 03 -i "$WORK/cbc.proxy" -o "$WORK/plain.out"
check_files_equal "... gives back the plaintext" "$WORK/plain" "$WORK/plain.out"
check_run "SHA256 digest through p11proxy" digest proxy --token-label remote-token --hash -m SHA256 -i "$WORK/data" -o "$WORK/digest"
check_eq "... equals sha256sum's" "$(sha256sum <"$WORK/data" | cut -c1-64)" "$(od -An -tx1 "$WORK/digest" | tr -d ' \n')"
check_run "random bytes through p11proxy" random proxy --token-label remote-token --generate-random 64 -o "$WORK/random"
check_eq "... 64 of them" 64 "$(stat -c %s "$WORK/random")"
run test-proxy proxy "${T[@]}" --test
run test-direct env SOFTHSM2_CONF="$HSM_CONF" timeout 120 pkcs11-tool --module "$SOFTHSM_SO" "${T[@]}" --test
check_eq "pkcs11-tool --test through p11proxy: the same errors as on SoftHSM2 directly (its OAEP-SHA256 refusal)" \
    "$(grep -E 'ERR|error' "$RUN_DIR/test-direct.err")" "$(grep -E 'ERR|error' "$RUN_DIR/test-proxy.err")"
# Which key pkcs11-tool tests with which mechanisms follows the order each process's SoftHSM2
# read its token files, so only what must pass in any order is compared.
check_contains "... digests work through p11proxy" "all 4 digest functions seem to work" "$(cat "$RUN_DIR/test-proxy.out")"
check_contains "... random works through p11proxy" "seems to be OK" "$(cat "$RUN_DIR/test-proxy.out")"
check_contains "... an RSA decryption passes through p11proxy" "RSA-PKCS: OK" "$(cat "$RUN_DIR/test-proxy.out")"
run objects proxy "${T[@]}" --list-objects
check_eq "objects and attributes: the three keys' labels" "aes ec ec rsa rsa" \
    "$(sed -n 's/^ *label: *//p' "$RUN_DIR/objects.out" | sort | tr '\n' ' ' | sed 's/ $//')"

# --- 2. a spawned `p11-kit remote` -----------------------------------------------------
SPAWN=$WORK/spawn
mkdir -p "$SPAWN/modules"
printf 'remote: |p11-kit remote %s\n' "$SOFTHSM_SO" >"$SPAWN/modules/hsm.module"
check_eq "|p11-kit remote: the token is listed" "remote-token " \
    "$(SOFTHSM2_CONF=$HSM_CONF P11PROXY_CONFIG_DIR=$SPAWN timeout 60 pkcs11-tool --module "$PROXY_SO" -L 2>/dev/null | sed -n 's/^  token label *: //p' | head -1 | tr '\n' ' ')"
check_run "|p11-kit remote: ECDSA signature" spawn-sign env SOFTHSM2_CONF="$HSM_CONF" P11PROXY_CONFIG_DIR="$SPAWN" \
    timeout 60 pkcs11-tool --module "$PROXY_SO" "${T[@]}" --sign -m ECDSA --id 02 -i "$WORK/data.sha256" -o "$WORK/spawn.sig"
check_run "... which p11-kit-client.so verifies" spawn-verify client "${T[@]}" --verify -m ECDSA --id 02 -i "$WORK/data.sha256" --signature-file "$WORK/spawn.sig"
# `p11-kit remote` execs p11-kit-remote with argv[0] "remote"; ours have this test's SOFTHSM2_CONF,
# as have the processes serving our servers' connections, which are left out by their parent.
spawned_remotes() {
    local pid
    for pid in $(pgrep -x p11-kit-remote); do
        [[ " ${SERVERS[*]} " == *" $(ps -o ppid= -p "$pid" | tr -d ' ') "* ]] && continue
        tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qxF "SOFTHSM2_CONF=$HSM_CONF" && echo "$pid"
    done
}
check_eq "|p11-kit remote: no p11-kit remote left running" "" "$(spawned_remotes)"

# --- 3. p11proxy exported through `p11-kit server` ---------------------------------------
EXPORT=$WORK/export
mkdir -p "$EXPORT/modules"
printf 'module: %s\n' "$BUILD/mock/libmock-a.so" >"$EXPORT/modules/mock-a.module"
printf 'module: %s\n' "$BUILD/mock/libmock-c.so" >"$EXPORT/modules/mock-c.module"
start_server "$WORK/export.sock" "$PROXY_SO" P11PROXY_CONFIG_DIR="$EXPORT"
EXPORT_ADDRESS=unix:path=$WORK/export.sock
check_eq "p11-kit-client.so sees every local module behind p11proxy through one socket" "mock-a-1 mock-a-5 mock-c-7 " \
    "$(labels env P11_KIT_SERVER_ADDRESS="$EXPORT_ADDRESS" timeout 60 pkcs11-tool --module "$CLIENT_SO")"
BACK=$WORK/back
mkdir -p "$BACK/modules"
printf 'remote: %s\n' "$EXPORT_ADDRESS" >"$BACK/modules/exported.module"
check_eq "p11proxy itself reaches them through the socket" "mock-a-1 mock-a-5 mock-c-7 " \
    "$(labels env P11PROXY_CONFIG_DIR="$BACK" timeout 60 pkcs11-tool --module "$PROXY_SO")"
check_run "... and logs in to one" export-login env P11PROXY_CONFIG_DIR="$BACK" timeout 60 pkcs11-tool --module "$PROXY_SO" \
    --token-label mock-c-7 --login --pin 1234 --list-objects

# --- 4. faults and the command -----------------------------------------------------------
run list "$CLI" list --config-dir "$CONF"
check_contains "list shows the address and the protocol version" \
    "    remote: $SERVER_ADDRESS (p11-kit RPC protocol version 0)" "$RUN_OUT"
check_contains "list shows the server's library" "library-description: PKCS#11 Kit Proxy Module" "$RUN_OUT"
NONE=$WORK/none
mkdir -p "$NONE/modules"
printf 'remote: unix:path=%s/nobody.sock\n' "$WORK" >"$NONE/modules/gone.module"
printf 'module: %s\n' "$BUILD/mock/libmock-b.so" >"$NONE/modules/mock.module"
run none env P11PROXY_CONFIG_DIR="$NONE" timeout 60 pkcs11-tool --module "$PROXY_SO" -L
check_eq "no server: the other module is still listed" "mock-b-1" "$(sed -n 's/^  token label *: //p' "$RUN_DIR/none.out")"
check_contains "no server: the message names the address" "module 'gone' (unix:path=$WORK/nobody.sock): C_Initialize failed: CKR_DEVICE_REMOVED" \
    "$(cat "$RUN_DIR/none.err")"
run check-none "$CLI" check --config-dir "$NONE"
check_eq "check fails for a module that cannot be reached" 1 "$RUN_RC"
check_contains "check prints the module's message" "unix:path=$WORK/nobody.sock" "$RUN_OUT"
printf 'critical: yes\n' >>"$NONE/modules/gone.module"
run none-critical env P11PROXY_CONFIG_DIR="$NONE" timeout 60 pkcs11-tool --module "$PROXY_SO" -L
check_eq "no server for a critical module: C_Initialize fails" 1 "$((RUN_RC != 0))"

# The server is gone: its tokens are not listed, nothing hangs.
kill "$LAST_SERVER" 2>/dev/null
wait "$LAST_SERVER" 2>/dev/null
run after-death env P11PROXY_CONFIG_DIR="$BACK" timeout 60 pkcs11-tool --module "$PROXY_SO" -L
check_eq "a server that is gone: no tokens listed from it, and no hang" "0" "$(grep -c 'token label' "$RUN_DIR/after-death.out")"
finish
