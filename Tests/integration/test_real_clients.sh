#!/usr/bin/env bash
# What real clients do that p11proxy must not break, over SoftHSM2:
#   1. Tests/C/test_shared_modules.c with SoftHSM2: the application holds its own logged-in
#      session while p11proxy comes and goes; two copies of libp11proxy.so in one process;
#      spy mode's C_GetInfo and slot IDs are SoftHSM2's own; slot IDs from an earlier process
#      work before any C_GetSlotList.
#   2. Java's keytool through SunPKCS11 (Debian's OpenJDK) with `slot=` (the ID pkcs11-tool -L
#      shows through p11proxy) and with `slotListIndex=`, listing the token's key and
#      certificate exactly as keytool lists them on SoftHSM2 directly.
#   3. PyKCS11's own test suite (its pinned PyPI sdist's test/ folder, `make pykcs11-tests`)
#      through p11proxy in spy mode, with the same counts as directly over SoftHSM2.
#   Tests/integration/test_real_clients.sh     # PROXY_SO, BUILD_DIR, KEEP=1
set -uo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_tools make cc softhsm2-util pkcs11-tool openssl keytool timeout || exit 1
unset P11PROXY_MODULE P11PROXY_CONFIG_DIR P11PROXY_LOG_CALLS P11PROXY_LOG_FILE P11PROXY_LOG_FORMAT P11PROXY_LOG_SECRETS

BUILD=${BUILD_DIR:-build}
[[ $BUILD == /* ]] || BUILD=$REPO/$BUILD
make_work_dir real-clients
require_softhsm_and_proxy
build_c_programs c-tests

# --- 1. the C scenarios over SoftHSM2 ----------------------------------------------------
make_softhsm_token "$WORK/shared" shared 12345678 1234 || { fail "SoftHSM2 token"; finish; }
P11TEST_SOFTHSM_SO=$SOFTHSM_SO P11TEST_TIMEOUT=120 timeout -k 10 600 \
    "$BUILD/tests/test_shared_modules" "$PROXY_SO" "$BUILD/mock" >"$WORK/shared.out" 2>"$WORK/shared.err"
status=$?
# Its checks are this suite's checks.
while IFS= read -r line; do
    case $line in
    "ok "*) pass "${line#* - }" ;;
    "not ok "*) fail "${line#* - }" ;;
    esac
done <"$WORK/shared.out"
if ((status != 0)) && ! grep -q '^not ok' "$WORK/shared.out"; then
    fail "test_shared_modules over SoftHSM2 ended cleanly" "exit $status" "$(tail -n 20 "$WORK/shared.err")"
fi
unset SOFTHSM2_CONF

# --- 2. Java's keytool through SunPKCS11 --------------------------------------------------
make_softhsm_token "$WORK/java" java 12345678 1234 || { fail "SoftHSM2 token"; finish; }
make_proxy_config "$WORK/java/conf" "$SOFTHSM_SO"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$WORK/key.pem" -out "$WORK/cert.pem" \
    -subj /CN=p11proxy-java -days 2 2>/dev/null
openssl pkey -in "$WORK/key.pem" -outform DER -out "$WORK/key.der"
openssl x509 -in "$WORK/cert.pem" -outform DER -out "$WORK/cert.der"
for object in "key.der privkey" "cert.der cert"; do
    set -- $object
    check_run "write the $2 into the token" "write-$2" pkcs11-tool --module "$SOFTHSM_SO" --login --pin 1234 \
        --write-object "$WORK/$1" --type "$2" --id 01 --label javakey
done
fingerprint=$(openssl x509 -in "$WORK/cert.pem" -noout -fingerprint -sha256 | sed 's/.*=//')

# slot_id_of MODULE LABEL: the slot ID pkcs11-tool -L shows for the token labelled LABEL (decimal).
slot_id_of() {
    local hex
    hex=$(pkcs11-tool --module "$1" -L 2>/dev/null | awk -v label="$2" '
        /^Slot [0-9]+ \(0x[0-9a-f]+\)/ { id = $3; gsub(/[():]/, "", id) }
        /token label/ { sub(/^[^:]*: */, ""); if ($0 == label) { print id; exit } }')
    [[ -n $hex ]] && echo $((hex))
}
proxy_slot=$(slot_id_of "$PROXY_SO" java)
direct_slot=$(slot_id_of "$SOFTHSM_SO" java)
note "pkcs11-tool -L: slot $proxy_slot through p11proxy, $direct_slot on SoftHSM2"
check_eq "pkcs11-tool -L through p11proxy numbers the token 1 (the first slot of the first module)" "1" "$proxy_slot"

# keytool_list NAME LIBRARY SLOT_LINE: keytool -list through SunPKCS11; the entries it shows.
keytool_list() {
    cat >"$WORK/$1.cfg" <<CFG
name = $1
library = $2
$3
CFG
    run "keytool-$1" timeout 120 keytool -list -keystore NONE -storetype PKCS11 \
        -providerClass sun.security.pkcs11.SunPKCS11 -providerArg "$WORK/$1.cfg" -storepass 1234
    grep -E 'Entry|fingerprint|contains' "$RUN_DIR/keytool-$1.out"
}
direct_entries=$(keytool_list direct "$SOFTHSM_SO" "slot = $direct_slot")
check_contains "keytool on SoftHSM2 directly lists the certificate" "$fingerprint" "$direct_entries"
for line in "slot = $proxy_slot" "slotListIndex = 0"; do
    entries=$(keytool_list "proxy${line%% *}" "$PROXY_SO" "$line")
    check_eq "keytool through p11proxy with '$line' lists what it lists directly" "$direct_entries" "$entries"
done
# The same command with a slot ID nobody has must fail, or the checks above prove nothing.
keytool_list nosuchslot "$PROXY_SO" "slot = 999" >/dev/null
check_eq "keytool through p11proxy with a slot ID that does not exist fails" "1" "$((RUN_RC != 0))"

# --- 3. PyKCS11's own test suite, in spy mode --------------------------------------------
PYKCS11_TESTS=${PYKCS11_TESTS:-$BUILD/pykcs11/test}
PYTHON=${PYTHON_VENV:-$BUILD/venv}/bin/python
if [[ ! -d $PYKCS11_TESTS || ! -x $PYTHON ]]; then
    fail "PyKCS11's test suite is unpacked" "$PYKCS11_TESTS or $PYTHON missing: run make pykcs11-tests"
    finish
fi
# pykcs11_suite NAME LIBRARY [VAR=VALUE...]: the suite on a fresh token (its tests change the
# token: new PINs, re-initialisation), in a copy of its folder; prints unittest's counts.
pykcs11_suite() {
    local name=$1 library=$2
    shift 2
    rm -rf "${WORK:?}/py-$name"
    make_softhsm_token "$WORK/py-$name" "A token" 123456 1234 >/dev/null || return 1
    cp -r "$PYKCS11_TESTS" "$WORK/py-$name/test"
    (cd "$WORK/py-$name" && env "$@" PYKCS11LIB="$library" timeout 600 "$PYTHON" -m unittest discover -s test \
        >"$WORK/py-$name.log" 2>&1)
    local ran result
    ran=$(grep -E '^Ran [0-9]+ tests?' "$WORK/py-$name.log" | awk '{print $2}')
    result=$(grep -E '^(OK|FAILED)' "$WORK/py-$name.log" | tail -1)
    printf 'ran %s: %s\n' "${ran:-?}" "${result:-no result}"
}
direct=$(pykcs11_suite direct "$SOFTHSM_SO")
proxy=$(pykcs11_suite spy "$PROXY_SO" P11PROXY_MODULE="$SOFTHSM_SO")
note "PyKCS11 suite directly: $direct" "through p11proxy (spy mode): $proxy"
check_contains "PyKCS11's suite passes directly over SoftHSM2" ": OK" "$direct"
check_eq "PyKCS11's suite through p11proxy has the same counts as directly" "$direct" "$proxy"
if [[ $direct != "$proxy" ]]; then
    note "$(grep -E '^(FAIL|ERROR):' "$WORK/py-spy.log" | head -n 20)"
fi
unset SOFTHSM2_CONF P11PROXY_CONFIG_DIR
finish
