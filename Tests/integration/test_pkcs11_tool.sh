#!/usr/bin/env bash
# SoftHSM2 through p11proxy with OpenSC's pkcs11-tool, each result compared with the same
# pkcs11-tool command against SoftHSM2 loaded directly. Every section uses a fresh token.
#
#   Tests/integration/test_pkcs11_tool.sh             # uses build/lib/libp11proxy.so
#   PROXY_SO=/path/to/libp11proxy.so Tests/integration/test_pkcs11_tool.sh
#   KEEP=1 ...                                         # keep the temp dir for inspection
#
# PROXY_SO=$SOFTHSM_SO runs the same commands against SoftHSM2 twice: a self-test of this
# script; checks that only make sense for a proxy are then skipped.
# SC2317: helpers such as p11_proxy are called through run/check_run, which shellcheck
# cannot see.
# shellcheck disable=SC2317
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_tools pkcs11-tool softhsm2-util openssl timeout
require_softhsm_and_proxy
PROXY_IS_SOFTHSM=false
if [[ $(readlink -f "$PROXY_SO") == "$(readlink -f "$SOFTHSM_SO")" ]]; then
    PROXY_IS_SOFTHSM=true
fi

make_work_dir it

PIN=1234
note "proxy:   $PROXY_SO" "softhsm: $SOFTHSM_SO" "work:    $WORK"

# A hung module call (a deadlock in the proxy, say) must fail a check, not stall CI.
CALL_TIMEOUT=${CALL_TIMEOUT:-60}
p11_proxy() { timeout "$CALL_TIMEOUT" pkcs11-tool --module "$PROXY_SO" "$@"; }
p11_direct() { timeout "$CALL_TIMEOUT" pkcs11-tool --module "$SOFTHSM_SO" "$@"; }

# new_store NAME LABEL...: a fresh SoftHSM2 store with one token per LABEL, and a proxy
# config dir that loads SoftHSM2; exports SOFTHSM2_CONF and P11PROXY_CONFIG_DIR for both.
new_store() {
    local name=$1 label
    shift
    STORE=$WORK/$name
    for label in "$@"; do
        make_softhsm_token "$STORE" "$label"
    done
    make_proxy_config "$STORE/proxy" "$SOFTHSM_SO"
}

# Slot ids are the proxy's own numbering (a proxy chooses them; p11-kit's does too), so
# listings are compared with them taken out. Everything else must come through unchanged,
# including the slot description, which holds SoftHSM2's own slot id.
strip_slot_ids() {
    sed -E 's/^(Slot [0-9]+) \(0x[0-9a-fA-F]+\)/\1/; s/(present token) \(0x[0-9a-fA-F]+\)/\1/'
}

# pkcs11-tool -O prints one block per object; the order is C_FindObjects' order, which
# PKCS#11 leaves open, so objects are compared as a sorted set of one-line blocks.
object_set() {
    awk '/^[^ \t]/ { if (b != "") print b; b = $0; next }
         { b = b " |" $0 }
         END { if (b != "") print b }' "$1" | sort
}

count_lines() { grep -c -- "$1" "$2" || true; }

# --- 1. slots ----------------------------------------------------------------------------
section_slots() {
    note "slots: two tokens in one SoftHSM2 store (SoftHSM2 adds a third, free slot)"
    new_store slots alpha beta
    run direct-L p11_direct -L
    check_run "proxy -L exits 0" proxy-L p11_proxy -L
    check_contains "proxy -L shows token alpha" "token label        : alpha" "$RUN_OUT"
    check_contains "proxy -L shows token beta" "token label        : beta" "$RUN_OUT"
    check_eq "proxy -L shows as many slots as SoftHSM2 directly" \
        "$(count_lines '^Slot ' "$RUN_DIR/direct-L.out")" "$(count_lines '^Slot ' "$RUN_DIR/proxy-L.out")"
    check_eq "proxy -L shows the uninitialised slot like SoftHSM2 directly" \
        "$(count_lines 'token state:   uninitialized' "$RUN_DIR/direct-L.out")" \
        "$(count_lines 'token state:   uninitialized' "$RUN_DIR/proxy-L.out")"
    check_eq "proxy -L matches SoftHSM2 -L apart from slot ids" \
        "$(strip_slot_ids <"$RUN_DIR/direct-L.out")" "$(strip_slot_ids <"$RUN_DIR/proxy-L.out")"

    run direct-T p11_direct -T
    check_run "proxy -T (slots with tokens) exits 0" proxy-T p11_proxy -T
    check_eq "proxy -T matches SoftHSM2 -T apart from slot ids" \
        "$(strip_slot_ids <"$RUN_DIR/direct-T.out")" "$(strip_slot_ids <"$RUN_DIR/proxy-T.out")"

    run direct-M p11_direct --token-label beta -M
    check_run "proxy -M on token beta exits 0" proxy-M p11_proxy --token-label beta -M
    check_eq "proxy -M lists the same mechanisms as SoftHSM2" \
        "$(cat "$RUN_DIR/direct-M.out")" "$(cat "$RUN_DIR/proxy-M.out")"

    check_run "proxy -I exits 0" proxy-I p11_proxy -I
    check_contains "proxy -I reports a Cryptoki version" "Cryptoki version" "$RUN_OUT"

    # The second token sits behind a later proxy slot: login and listing must reach it.
    check_run "proxy: log in to token beta (second slot) and list objects" proxy-beta-O \
        p11_proxy --token-label beta --login --pin "$PIN" -O
    run proxy-bad-pin p11_proxy --token-label beta --login --pin 9999 -O
    check_contains "proxy: wrong PIN is refused with CKR_PIN_INCORRECT" "CKR_PIN_INCORRECT" \
        "$(cat "$RUN_DIR/proxy-bad-pin.err")"
}

# --- 2. key generation and object listing ------------------------------------------------
section_keys() {
    note "keys: key pairs generated through the proxy"
    new_store keys keys
    local tok=(--token-label keys --login --pin "$PIN")
    check_run "proxy: generate EC P-256 key pair k1" keygen-ec \
        p11_proxy "${tok[@]}" --keypairgen --key-type EC:prime256v1 --label k1 --id 01
    check_run "proxy: generate RSA 2048 key pair r1" keygen-rsa \
        p11_proxy "${tok[@]}" --keypairgen --key-type rsa:2048 --label r1 --id 02

    run direct-O p11_direct "${tok[@]}" -O
    check_run "proxy -O exits 0" proxy-O p11_proxy "${tok[@]}" -O
    check_eq "proxy -O lists k1 (private + public)" 2 "$(count_lines 'label:      k1$' "$RUN_DIR/proxy-O.out")"
    check_eq "proxy -O lists r1 (private + public)" 2 "$(count_lines 'label:      r1$' "$RUN_DIR/proxy-O.out")"
    check_eq "proxy -O lists the same objects as SoftHSM2 directly" \
        "$(object_set "$RUN_DIR/direct-O.out")" "$(object_set "$RUN_DIR/proxy-O.out")"

    # Without login only public objects are visible (PKCS#11 CKA_PRIVATE): the proxy must
    # not leak the logged-in state of an earlier process or session.
    run direct-O-public p11_direct --token-label keys -O
    check_run "proxy -O without login exits 0" proxy-O-public p11_proxy --token-label keys -O
    check_eq "proxy -O without login lists the same (public) objects as SoftHSM2" \
        "$(object_set "$RUN_DIR/direct-O-public.out")" "$(object_set "$RUN_DIR/proxy-O-public.out")"
}

# --- 3. ECDSA ----------------------------------------------------------------------------
section_ecdsa() {
    note "ecdsa: sign through the proxy, verify through the proxy, SoftHSM2 and OpenSSL"
    new_store ecdsa ecdsa
    local tok=(--token-label ecdsa) d=$STORE
    run keygen p11_proxy "${tok[@]}" --login --pin "$PIN" --keypairgen --key-type EC:prime256v1 --label k1 --id 01
    printf 'data signed through p11proxy\n' >"$d/data.txt"
    printf 'some other data\n' >"$d/other.txt"
    # SoftHSM2 2.6 has only raw CKM_ECDSA (no ECDSA-SHA256), so the hash is made here.
    openssl dgst -sha256 -binary "$d/data.txt" >"$d/data.sha256"
    openssl dgst -sha256 -binary "$d/other.txt" >"$d/other.sha256"

    # --id, not --label: pkcs11-tool 0.23 fails ECDSA signing by --label on SoftHSM2
    # (C_SignUpdate: CKR_OPERATION_NOT_INITIALIZED) even when loaded directly.
    check_run "proxy: ECDSA sign" sign p11_proxy "${tok[@]}" --login --pin "$PIN" \
        --sign --mechanism ECDSA --id 01 -i "$d/data.sha256" -o "$d/sig.der" --signature-format openssl
    # pkcs11-tool --verify exits 0 for a bad signature too, so its message is checked.
    run verify-proxy p11_proxy "${tok[@]}" --verify --mechanism ECDSA --id 01 \
        -i "$d/data.sha256" --signature-file "$d/sig.der" --signature-format openssl
    check_contains "proxy: ECDSA verify accepts the signature" "Signature is valid" "$RUN_OUT"
    run verify-direct p11_direct "${tok[@]}" --verify --mechanism ECDSA --id 01 \
        -i "$d/data.sha256" --signature-file "$d/sig.der" --signature-format openssl
    check_contains "SoftHSM2 directly accepts the proxy's signature" "Signature is valid" "$RUN_OUT"
    run verify-proxy-other p11_proxy "${tok[@]}" --verify --mechanism ECDSA --id 01 \
        -i "$d/other.sha256" --signature-file "$d/sig.der" --signature-format openssl
    check_contains "proxy: ECDSA verify rejects the signature for other data" "Invalid signature" "$RUN_OUT"

    check_run "proxy: export EC public key" read-pub p11_proxy "${tok[@]}" \
        --read-object --type pubkey --id 01 -o "$d/ec.pub.der"
    run read-pub-direct p11_direct "${tok[@]}" --read-object --type pubkey --id 01 -o "$d/ec.pub.direct.der"
    check_files_equal "proxy exports the same public key as SoftHSM2" "$d/ec.pub.der" "$d/ec.pub.direct.der"
    run openssl-verify openssl_verify_sha256 "$d/ec.pub.der" "$d/sig.der" "$d/data.txt"
    check_contains "openssl verifies the proxy's ECDSA signature" "Verified OK" "$RUN_OUT"
}

# openssl_verify_sha256 PUBKEY_DER SIGNATURE DATA
openssl_verify_sha256() {
    openssl pkey -pubin -inform DER -in "$1" -out "$1.pem" &&
        openssl dgst -sha256 -verify "$1.pem" -signature "$2" "$3"
}

# --- 4. RSA ------------------------------------------------------------------------------
section_rsa() {
    note "rsa: OpenSSL encrypts with the exported public key, the proxy decrypts"
    new_store rsa rsa
    local tok=(--token-label rsa) d=$STORE
    check_run "proxy: generate RSA 2048 key pair" keygen p11_proxy "${tok[@]}" --login --pin "$PIN" \
        --keypairgen --key-type rsa:2048 --label r1 --id 02
    check_run "proxy: export RSA public key" read-pub p11_proxy "${tok[@]}" \
        --read-object --type pubkey --id 02 -o "$d/rsa.pub.der"
    printf 'secret for RSA-PKCS\n' >"$d/plain.txt"
    check_run "openssl: RSA-PKCS encrypt with the exported key" encrypt openssl_rsa_encrypt \
        "$d/rsa.pub.der" "$d/plain.txt" "$d/cipher.bin"
    check_run "proxy: RSA-PKCS decrypt" decrypt p11_proxy "${tok[@]}" --login --pin "$PIN" \
        --decrypt --mechanism RSA-PKCS --id 02 -i "$d/cipher.bin" -o "$d/decrypted.txt"
    check_files_equal "proxy decrypts to the original plaintext" "$d/plain.txt" "$d/decrypted.txt"

    check_run "proxy: SHA256-RSA-PKCS sign" sign p11_proxy "${tok[@]}" --login --pin "$PIN" \
        --sign --mechanism SHA256-RSA-PKCS --id 02 -i "$d/plain.txt" -o "$d/rsa.sig"
    run openssl-verify openssl_verify_sha256 "$d/rsa.pub.der" "$d/rsa.sig" "$d/plain.txt"
    check_contains "openssl verifies the proxy's RSA signature" "Verified OK" "$RUN_OUT"
}

# openssl_rsa_encrypt PUBKEY_DER IN OUT
openssl_rsa_encrypt() {
    openssl pkey -pubin -inform DER -in "$1" -out "$1.pem" &&
        openssl pkeyutl -encrypt -pubin -inkey "$1.pem" -pkeyopt rsa_padding_mode:pkcs1 -in "$2" -out "$3"
}

# --- 5. certificates ---------------------------------------------------------------------
section_cert() {
    note "cert: a self-signed certificate written through the proxy"
    new_store cert cert
    local tok=(--token-label cert) d=$STORE
    check_run "openssl: make a self-signed certificate" req openssl req -x509 -newkey ec \
        -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$d/cert.key" \
        -subj /CN=p11proxy-integration -days 1 -outform DER -out "$d/cert.der"
    check_run "proxy: write certificate c1" write p11_proxy "${tok[@]}" --login --pin "$PIN" \
        --write-object "$d/cert.der" --type cert --label c1 --id 03
    check_run "proxy: list certificates" proxy-O p11_proxy "${tok[@]}" -O --type cert
    check_contains "proxy lists certificate c1" "label:      c1" "$RUN_OUT"
    check_contains "proxy lists the certificate's subject" "CN=p11proxy-integration" "$RUN_OUT"
    run direct-O p11_direct "${tok[@]}" -O --type cert
    check_eq "proxy lists the same certificates as SoftHSM2" \
        "$(object_set "$RUN_DIR/direct-O.out")" "$(object_set "$RUN_DIR/proxy-O.out")"
    check_run "proxy: read the certificate back" read p11_proxy "${tok[@]}" \
        --read-object --type cert --id 03 -o "$d/cert.back.der"
    check_files_equal "the certificate read back is the one written" "$d/cert.der" "$d/cert.back.der"
}

# --- 5b. symmetric keys: pkcs11-tool --encrypt / --decrypt --------------------------------
# An AES key with a known value is imported through the proxy, so OpenSSL can compute the
# ciphertext the token must produce; a generated (never extractable) key round-trips.
section_symmetric() {
    note "aes: import and generate AES-256 keys, encrypt and decrypt through the proxy"
    new_store aes aes
    local tok=(--token-label aes --login --pin "$PIN") d=$STORE
    local key=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
    local iv=0f0e0d0c0b0a09080706050403020100
    # shellcheck disable=SC2059,SC2001 # the format is the key as \xHH escapes
    printf "$(sed 's/../\\x&/g' <<<"$key")" >"$d/aes.key"
    head -c 100 /dev/urandom >"$d/plain.bin"
    check_run "proxy: import AES-256 key s1" write p11_proxy "${tok[@]}" --write-object "$d/aes.key" \
        --type secrkey --key-type AES:32 --label s1 --id 06 --usage-decrypt
    check_run "proxy: AES-CBC-PAD encrypt with s1" encrypt p11_proxy "${tok[@]}" --encrypt \
        --mechanism AES-CBC-PAD --iv "$iv" --id 06 -i "$d/plain.bin" -o "$d/proxy.enc"
    run encrypt-direct p11_direct "${tok[@]}" --encrypt --mechanism AES-CBC-PAD --iv "$iv" --id 06 \
        -i "$d/plain.bin" -o "$d/direct.enc"
    check_files_equal "proxy: the ciphertext is SoftHSM2's" "$d/direct.enc" "$d/proxy.enc"
    run openssl-enc openssl enc -aes-256-cbc -K "$key" -iv "$iv" -in "$d/plain.bin" -out "$d/openssl.enc"
    check_files_equal "proxy: the ciphertext is OpenSSL's for the same key and IV" "$d/openssl.enc" "$d/proxy.enc"
    check_run "proxy: AES-CBC-PAD decrypt OpenSSL's ciphertext with s1" decrypt p11_proxy "${tok[@]}" \
        --decrypt --mechanism AES-CBC-PAD --iv "$iv" --id 06 -i "$d/openssl.enc" -o "$d/proxy.dec"
    check_files_equal "proxy: decrypts to the plaintext" "$d/plain.bin" "$d/proxy.dec"

    check_run "proxy: generate AES-256 key a1" keygen p11_proxy "${tok[@]}" --keygen --key-type AES:32 \
        --label a1 --id 07
    run encrypt-a1 p11_proxy "${tok[@]}" --encrypt --mechanism AES-CBC-PAD --iv "$iv" --id 07 \
        -i "$d/plain.bin" -o "$d/a1.enc"
    run decrypt-a1-direct p11_direct "${tok[@]}" --decrypt --mechanism AES-CBC-PAD --iv "$iv" --id 07 \
        -i "$d/a1.enc" -o "$d/a1.dec"
    check_files_equal "SoftHSM2 directly decrypts what the proxy encrypted with a1" "$d/plain.bin" "$d/a1.dec"
}

# --- 5c. an imported RSA key: sign, verify, OAEP, PSS --------------------------------------
# OpenSSL makes the key, so a PKCS#1 v1.5 signature through the proxy must equal OpenSSL's
# own, byte for byte.
section_import() {
    note "import: an OpenSSL RSA key written through the proxy, then sign, verify and decrypt"
    new_store import import
    local tok=(--token-label import --login --pin "$PIN") d=$STORE
    run genkey openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$d/k.pem"
    openssl pkey -in "$d/k.pem" -outform DER -out "$d/k.der"
    openssl pkey -in "$d/k.pem" -pubout -out "$d/pub.pem"
    openssl pkey -in "$d/k.pem" -pubout -outform DER -out "$d/pub.der"
    check_run "proxy: write RSA private key i1" write-priv p11_proxy "${tok[@]}" --write-object "$d/k.der" \
        --type privkey --label i1 --id 09 --usage-sign --usage-decrypt
    check_run "proxy: write RSA public key i1" write-pub p11_proxy "${tok[@]}" --write-object "$d/pub.der" \
        --type pubkey --label i1 --id 09 --usage-sign --usage-decrypt
    printf 'signed with an imported key\n' >"$d/data.txt"
    check_run "proxy: SHA256-RSA-PKCS sign with i1" sign p11_proxy "${tok[@]}" --sign \
        --mechanism SHA256-RSA-PKCS --id 09 -i "$d/data.txt" -o "$d/proxy.sig"
    openssl dgst -sha256 -sign "$d/k.pem" -out "$d/openssl.sig" "$d/data.txt"
    check_files_equal "proxy: the signature is OpenSSL's own, byte for byte" "$d/openssl.sig" "$d/proxy.sig"
    run verify p11_proxy "${tok[@]}" --verify --mechanism SHA256-RSA-PKCS --id 09 -i "$d/data.txt" \
        --signature-file "$d/openssl.sig"
    check_contains "proxy: pkcs11-tool --verify accepts OpenSSL's signature" "Signature is valid" "$RUN_OUT"
    printf 'other\n' >"$d/other.txt"
    run verify-other p11_proxy "${tok[@]}" --verify --mechanism SHA256-RSA-PKCS --id 09 -i "$d/other.txt" \
        --signature-file "$d/openssl.sig"
    check_contains "proxy: pkcs11-tool --verify rejects it for other data" "Invalid signature" "$RUN_OUT"

    check_run "proxy: SHA256-RSA-PKCS-PSS sign with i1" sign-pss p11_proxy "${tok[@]}" --sign \
        --mechanism SHA256-RSA-PKCS-PSS --id 09 -i "$d/data.txt" -o "$d/proxy.pss"
    run verify-pss openssl dgst -sha256 -verify "$d/pub.pem" -sigopt rsa_padding_mode:pss \
        -sigopt rsa_pss_saltlen:-1 -signature "$d/proxy.pss" "$d/data.txt"
    check_contains "openssl verifies the proxy's RSA-PSS signature" "Verified OK" "$RUN_OUT"

    # SoftHSM2 2.6 decrypts OAEP with SHA-1 only.
    run oaep openssl pkeyutl -encrypt -pubin -inkey "$d/pub.pem" -pkeyopt rsa_padding_mode:oaep \
        -in "$d/data.txt" -out "$d/oaep.bin"
    check_run "proxy: RSA-PKCS-OAEP decrypt with i1" decrypt-oaep p11_proxy "${tok[@]}" --decrypt \
        --mechanism RSA-PKCS-OAEP --hash-algorithm SHA-1 --mgf MGF1-SHA1 --id 09 -i "$d/oaep.bin" -o "$d/oaep.dec"
    check_files_equal "proxy: OAEP decrypts to the plaintext" "$d/data.txt" "$d/oaep.dec"
}

# --- 6. pkcs11-tool --test ---------------------------------------------------------------
# compare_runs DESC A B: same exit code, same stdout, same stderr apart from slot ids.
compare_runs() {
    local desc=$1 a=$RUN_DIR/$2 b=$RUN_DIR/$3
    check_eq "$desc: same exit code" "$(cat "$a.rc")" "$(cat "$b.rc")"
    check_eq "$desc: same stdout" "$(cat "$a.out")" "$(cat "$b.out")"
    check_eq "$desc: same stderr" "$(strip_slot_ids <"$a.err")" "$(strip_slot_ids <"$b.err")"
}

# run_rc NAME CMD...: `run`, keeping the exit code in NAME.rc for compare_runs.
run_rc() {
    run "$@"
    echo "$RUN_RC" >"$RUN_DIR/$1.rc"
}

section_selftest() {
    note "test: pkcs11-tool --test through the proxy and directly"
    new_store selftest selftest
    local tok=(--token-label selftest --login --pin "$PIN")
    run keygen p11_direct "${tok[@]}" --keypairgen --key-type EC:prime256v1 --label k1 --id 01

    run_rc test-ec-direct p11_direct "${tok[@]}" --test
    run_rc test-ec-proxy p11_proxy "${tok[@]}" --test
    check_eq "proxy --test exits 0 with an EC key" 0 "$(cat "$RUN_DIR/test-ec-proxy.rc")"
    check_eq "proxy --test ends with SoftHSM2's summary line" \
        "$(tail -n 1 "$RUN_DIR/test-ec-direct.out")" "$(tail -n 1 "$RUN_DIR/test-ec-proxy.out")"
    compare_runs "--test with an EC key" test-ec-direct test-ec-proxy

    # With an RSA key --test also tries RSA-PKCS-OAEP with a label, which SoftHSM2 2.6.1
    # refuses (C_DecryptInit: CKR_ARGUMENTS_BAD) and pkcs11-tool then aborts with exit 1.
    # The proxy must hand back that same error, not hide or change it.
    run keygen-rsa p11_direct "${tok[@]}" --keypairgen --key-type rsa:2048 --label r1 --id 02
    run_rc test-rsa-direct p11_direct "${tok[@]}" --test
    run_rc test-rsa-proxy p11_proxy "${tok[@]}" --test
    note "direct --test with an RSA key exits $(cat "$RUN_DIR/test-rsa-direct.rc"): $(grep -m1 'error' "$RUN_DIR/test-rsa-direct.err" || echo 'no error')"
    compare_runs "--test with an RSA key" test-rsa-direct test-rsa-proxy
}

# --- 7. threads --------------------------------------------------------------------------
# pkcs11-tool (OpenSC 0.23) --test-threads ARG starts one thread per option before main's
# C_Initialize; ARG is two-letter commands: IN C_Initialize(NULL), IL C_Initialize with
# CKF_OS_LOCKING_OK, GI C_GetInfo, SL C_GetSlotList, Tn C_GetTokenInfo of slot index n,
# Pn pause n seconds. Thread results do not reach the exit code: pkcs11-tool prints
# "test_threads all threads have ended with CKR_OK" (or "some errors") on stderr.
# It waits 30 s for threads still running when main is done, so main is kept busy for
# 2 s by a sign command whose input arrives late.
#
# --use-locking everywhere: C_Initialize(NULL) tells the module the application will not
# call in from several threads at once (PKCS#11 2.40, CK_C_INITIALIZE_ARGS), and SoftHSM2
# does crash when that promise is broken.
threads_sign() {
    local module=$1 data=$2
    shift 2
    { sleep 2; cat "$data"; } | timeout 100 pkcs11-tool --module "$module" --use-locking "$@" \
        --login --pin "$PIN" --sign --mechanism ECDSA --id 01 -i /dev/stdin -o /dev/null
}

# check_threads DESC NAME: the run NAME exited 0 and every thread ended with CKR_OK.
check_threads() {
    local desc=$1 name=$2
    if ((RUN_RC == 0)) && grep -q 'all threads have ended with CKR_OK' "$RUN_DIR/$name.err"; then
        pass "$desc"
    else
        fail "$desc" "exit code $RUN_RC" "$(grep -E 'returned|returning|threads|Aborting|error' "$RUN_DIR/$name.err" | tail -n 12)"
    fi
}

section_threads() {
    note "threads: pkcs11-tool --test-threads, after main's C_Initialize and racing it"
    new_store threads threads
    local d=$STORE
    run keygen p11_direct --token-label threads --login --pin "$PIN" \
        --keypairgen --key-type EC:prime256v1 --label k1 --id 01
    printf 'signed while other threads call in\n' | openssl dgst -sha256 -binary >"$d/data.sha256"
    # Threads start 1 s in, while main holds a logged-in session and waits for its input.
    local paused=(--test-threads P1INGISLT0T1 --test-threads P1ILGISLT0T1 --test-threads P1GISLT0GISLT1)
    run threads-direct threads_sign "$SOFTHSM_SO" "$d/data.sha256" --token-label threads "${paused[@]}"
    check_threads "direct: --use-locking ${paused[*]}" threads-direct
    run threads-proxy threads_sign "$PROXY_SO" "$d/data.sha256" --token-label threads "${paused[@]}"
    check_threads "proxy: --use-locking ${paused[*]}" threads-proxy

    # Threads calling C_Initialize at the same time as main: SoftHSM2 2.6.1 itself crashes
    # here (many modules do not lock C_Initialize), so there is nothing direct to compare.
    # The proxy is the one place that can make this safe: hold its lock across the whole
    # first initialisation, so the module is initialised once and every other caller
    # returns only when it is ready. Stricter than p11-kit 0.24: its proxy fails this
    # (later C_GetSlotList returns CKR_CRYPTOKI_NOT_INITIALIZED, sometimes a crash).
    local racing=(--test-threads INGISLT0 --test-threads ILGISLT0 --test-threads ILGISL)
    local i
    for i in 1 2 3; do
        if $PROXY_IS_SOFTHSM; then
            skip "proxy: threads racing main's C_Initialize (run $i)" "SoftHSM2 itself crashes here"
            continue
        fi
        run "threads-race-$i" threads_sign "$PROXY_SO" "$d/data.sha256" --token-label threads "${racing[@]}"
        check_threads "proxy: --use-locking ${racing[*]} (run $i)" "threads-race-$i"
    done
}

# --- 8. fork -----------------------------------------------------------------------------
# pkcs11-tool --test-fork forks after C_Initialize; the child calls C_Initialize again and
# must get CKR_OK (PKCS#11 2.40 base, 5.5.1 "Applications and processes": the child is a
# new application and needs its own C_Initialize). SoftHSM2 does that only with
# library.reset_on_fork = true; by default it answers CKR_CRYPTOKI_ALREADY_INITIALIZED and
# pkcs11-tool exits 1.
section_fork() {
    note "fork: pkcs11-tool --test-fork"
    mkdir -p "$WORK/fork/tokens"
    cat >"$WORK/fork/softhsm2.conf" <<EOF
directories.tokendir = $WORK/fork/tokens
objectstore.backend = file
log.level = ERROR
library.reset_on_fork = true
EOF
    new_store fork fork
    local tok=(--token-label fork --login --pin "$PIN")
    run keygen p11_direct "${tok[@]}" --keypairgen --key-type EC:prime256v1 --label k1 --id 01

    # -O after the fork: the parent must still work once the child has re-initialised.
    check_run "direct: --test-fork then -O (reset_on_fork = true)" fork-direct \
        p11_direct "${tok[@]}" --test-fork -O
    check_run "proxy: --test-fork then -O (reset_on_fork = true)" fork-proxy \
        p11_proxy "${tok[@]}" --test-fork -O
    check_contains "proxy: the forked child called C_Initialize" \
        "Calling C_Initialize in forked child process" "$RUN_OUT"
    check_eq "proxy: the parent lists the same objects after the fork" \
        "$(object_set <(grep -v '^\*\*\*' "$RUN_DIR/fork-direct.out"))" \
        "$(object_set <(grep -v '^\*\*\*' "$RUN_DIR/fork-proxy.out"))"

    # With SoftHSM2's default (no reset on fork) the direct run fails. Whether a proxy should
    # pass the module's CKR_CRYPTOKI_ALREADY_INITIALIZED on or absorb it is a design choice,
    # so this is reported, not checked.
    new_store fork-default fork-default
    run_rc fork-default-direct p11_direct --token-label fork-default --test-fork
    run_rc fork-default-proxy p11_proxy --token-label fork-default --test-fork
    note "reset_on_fork = false: direct exits $(cat "$RUN_DIR/fork-default-direct.rc"), proxy exits $(cat "$RUN_DIR/fork-default-proxy.rc")" \
        "  proxy stderr: $(tr '\n' ' ' <"$RUN_DIR/fork-default-proxy.err")"
}

# --- 9. several modules ------------------------------------------------------------------
section_two_modules() {
    note "modules: SoftHSM2 and p11-kit-trust behind one proxy"
    local trust
    trust=$(find /usr/lib/x86_64-linux-gnu/pkcs11 /usr/lib/pkcs11 -name p11-kit-trust.so 2>/dev/null | head -n 1 || true)
    if [[ -z $trust ]] || $PROXY_IS_SOFTHSM; then
        skip "proxy -L shows the slots of both modules" "p11-kit-trust.so missing or PROXY_SO is SoftHSM2"
        return
    fi
    new_store multi multi
    make_proxy_config "$STORE/proxy" "$SOFTHSM_SO" "$trust"
    run direct-L p11_direct -L
    run trust-L pkcs11-tool --module "$trust" -L
    check_run "proxy -L with two modules exits 0" proxy-L p11_proxy -L
    check_contains "proxy -L shows the SoftHSM2 token" "token label        : multi" "$RUN_OUT"
    check_contains "proxy -L shows the p11-kit-trust token" "token label        : System Trust" "$RUN_OUT"
    check_eq "proxy -L shows every slot of both modules" \
        "$(($(count_lines '^Slot ' "$RUN_DIR/direct-L.out") + $(count_lines '^Slot ' "$RUN_DIR/trust-L.out")))" \
        "$(count_lines '^Slot ' "$RUN_DIR/proxy-L.out")"
    check_run "proxy: log in to SoftHSM2 next to p11-kit-trust" proxy-O \
        p11_proxy --token-label multi --login --pin "$PIN" -O
}

START=$SECONDS
section_slots
section_keys
section_ecdsa
section_rsa
section_cert
section_symmetric
section_import
section_selftest
section_threads
section_fork
section_two_modules
note "took $((SECONDS - START)) s"
finish
