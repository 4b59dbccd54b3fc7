#!/usr/bin/env bash
# p11proxy inside OpenSSL ASYNC jobs over SoftHSM2, and its stack depth per call:
# makes a SoftHSM2 token "async" (user PIN 1234) in a temporary store and a config dir for it,
# then runs build/tests/test_async_jobs (Tests/C/test_async_jobs.c, linked with libcrypto),
# which prints the stack figures as "# ..." lines.
#   bash Tests/integration/test_openssl_async.sh       # last line "N passed, N failed"
set -uo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_tools make cc softhsm2-util timeout || exit 1
unset P11PROXY_MODULE P11PROXY_CONFIG_DIR P11PROXY_LOG_CALLS P11PROXY_LOG_FILE P11PROXY_LOG_FORMAT P11PROXY_LOG_SECRETS

BUILD=${BUILD_DIR:-build}
[[ $BUILD == /* ]] || BUILD=$REPO/$BUILD
make_work_dir openssl-async
require_softhsm_and_proxy
build_c_programs async-tests  # needs libssl-dev
make_softhsm_token "$WORK/hsm" async 12345678 1234 || { fail "SoftHSM2 token"; finish; }
make_proxy_config "$WORK/conf" "$SOFTHSM_SO"

# The program's checks are this suite's checks: its "ok"/"not ok" lines are counted, and a
# crash (a job stack overrun hits a guard page), hang or non-zero exit is one more failure.
P11TEST_TIMEOUT=120 timeout -k 10 600 "$BUILD/tests/test_async_jobs" "$PROXY_SO" "$BUILD/mock" \
    >"$WORK/program.out" 2>"$WORK/program.err"
status=$?
cat "$WORK/program.out"
CHECKS_PASSED=$(grep -c '^ok ' "$WORK/program.out")
CHECKS_FAILED=$(grep -c '^not ok ' "$WORK/program.out")
CHECKS_RUN=$((CHECKS_PASSED + CHECKS_FAILED))
if [[ $status -ne 0 && $CHECKS_FAILED -eq 0 ]]; then
    fail "test_async_jobs ended cleanly" "exit status $status" "stderr:" "$(tail -n 20 "$WORK/program.err")"
elif [[ $status -eq 0 ]]; then
    pass "test_async_jobs ended cleanly"
fi
if grep -v '^p11proxy: ' "$WORK/program.err" | grep -q .; then
    note "stderr:" "$(head -n 20 "$WORK/program.err")"
fi
finish
