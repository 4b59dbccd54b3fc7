#!/usr/bin/env bash
# `make test`: every suite in turn, each one's own output shown, then one closing line
# "N passed, N failed" summing the individual checks of all suites. Exits non-zero if any
# check failed or any suite could not run.
set -uo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
export PROXY_SO="${PROXY_SO:-$REPO/build/lib/libp11proxy.so}"
export BUILD_DIR="${BUILD_DIR:-build}"
LOG_DIR="$BUILD_DIR/test-logs"
mkdir -p "$LOG_DIR"

total_passed=0 total_failed=0 broken=()

# UPDATE_GOLDEN rewrites golden files instead of comparing with them: every golden check would
# pass. It is for a person reviewing a diff, never for a test run.
if [ -n "${UPDATE_GOLDEN:-}" ]; then
    echo "UPDATE_GOLDEN is set: golden checks would rewrite their files instead of comparing; unset it to test"
    echo "0 passed, 1 failed"
    exit 1
fi

# run_suite NAME COMMAND...: runs it, shows its output, adds the counts from its closing
# "N passed, N failed" line (a suite that prints none, or exits non-zero, counts as broken).
run_suite() {
    local name="$1"; shift
    local log="$LOG_DIR/$name.log"
    echo "==> $name: $*"
    "$@" 2>&1 | tee "$log"
    local status=${PIPESTATUS[0]}
    local line
    line="$(grep -E '^[#[:alnum:]_ -]*:? ?[0-9]+ passed, [0-9]+ failed' "$log" | tail -1)"
    if [ -n "$line" ]; then
        local p f
        p="$(sed -E 's/^(.*[^0-9])?([0-9]+) passed.*/\2/' <<<"$line")"
        f="$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")"
        total_passed=$((total_passed + p))
        total_failed=$((total_failed + f))
    fi
    if [ "$status" -ne 0 ] || [ -z "$line" ]; then broken+=("$name (exit $status)"); fi
}

# swift test prints its own summary; turn it into the common closing line.
swift_unit_tests() {
    local log="$LOG_DIR/swift-test.raw"
    swift test 2>&1 | tee "$log" | grep -E '✘|error:|Test run with|Executed' 
    local status=${PIPESTATUS[0]}
    local summary total issues
    summary="$(grep -E 'Test run with [0-9]+ tests?' "$log" | tail -1)"
    total="$(sed -E 's/.*Test run with ([0-9]+) tests?.*/\1/' <<<"$summary")"
    # One line per failed test ("✘ Test NAME() failed after ..."), not per recorded issue.
    issues="$(grep -cE '^✘ Test [^ ]+\(.*\) failed' "$log")"
    [ -n "$total" ] || total=0
    echo "swift test: $((total - issues)) passed, $issues failed"
    return "$status"
}

generated_sources() {
    if swift run p11proxy-generate --check "$REPO"; then echo "1 passed, 0 failed"; else echo "0 passed, 1 failed"; return 1; fi
}

run_suite generated generated_sources
# The documentation against the sources: keys, variables, subcommands, README, links.
run_suite docs bash Tests/integration/test_docs.sh
run_suite swift-unit swift_unit_tests
run_suite module-file bash Tests/integration/test_module_file.sh
run_suite c-tests bash Tests/C/run.sh "$PROXY_SO" "$BUILD_DIR"
run_suite pkcs11-tool bash Tests/integration/test_pkcs11_tool.sh
run_suite p11tool bash Tests/integration/test_p11tool.sh
run_suite openssl-engine bash Tests/integration/test_openssl_engine.sh
run_suite nss bash Tests/integration/test_nss.sh
run_suite python-pkcs11 bash Tests/integration/test_python_pkcs11.sh
# A module the application also uses, two copies of p11proxy, spy mode, slot IDs before
# C_GetSlotList; Java's keytool through SunPKCS11; PyKCS11's own test suite (`make pykcs11-tests`).
run_suite real-clients bash Tests/integration/test_real_clients.sh
# Remote modules against Debian's p11-kit server / p11-kit remote / p11-kit-client.so.
run_suite remote bash Tests/integration/test_remote.sh
# ... and over ssh, to Debian's OpenSSH server on loopback started by the test.
run_suite remote-ssh bash Tests/integration/test_remote_ssh.sh
run_suite install bash Tests/integration/test_install.sh
# `make deb`'s package: lintian, man pages, then installed with dpkg, used, removed and purged.
run_suite deb bash Tests/integration/test_deb.sh
run_suite trace bash Tests/integration/test_trace.sh
run_suite cli bash Tests/integration/test_cli.sh
# `p11proxy list`'s token URIs against p11tool's, over SoftHSM2.
run_suite token-uri bash Tests/integration/test_token_uri.sh
# Token filters over two SoftHSM2 tokens: pkcs11-tool, p11tool, `p11proxy list` and `check`.
run_suite token-filter bash Tests/integration/test_token_filter.sh
# `p11proxy stats` and `trace --summary`: golden tables, warnings, bounded memory, SoftHSM2 runs.
run_suite stats bash Tests/integration/test_stats.sh
# The config reader, the pkcs11: URI parser, the trace statistics reader and the RPC reply
# decoder under libFuzzer, a fixed number of inputs each (`make fuzz-build`; Tests/Fuzz/README.md).
run_suite fuzz-config bash Tests/Fuzz/run.sh config
run_suite fuzz-uri bash Tests/Fuzz/run.sh uri
run_suite fuzz-trace bash Tests/Fuzz/run.sh trace
run_suite fuzz-rpc bash Tests/Fuzz/run.sh rpc
run_suite broken-config bash Tests/integration/test_broken_config.sh
# OpenSSL ASYNC jobs over SoftHSM2, and p11proxy's stack depth per call against the job stack.
run_suite openssl-async bash Tests/integration/test_openssl_async.sh
# The C tests again with the proxy, the mocks and the programs built with ThreadSanitizer
# (`make tsan-build`); a TSan report makes its program fail.
run_suite c-tests-tsan env LD_LIBRARY_PATH="${TSAN_LIBRARY_PATH:-}" P11TEST_NO_BUILD=1 \
    bash Tests/C/run.sh "${TSAN_PROXY_SO:-build/lib-tsan/libp11proxy.so}" "$BUILD_DIR/mock-tsan" "$BUILD_DIR/tests-tsan"
# And with AddressSanitizer (`make asan-build`): an ASan or LeakSanitizer report fails.
run_suite c-tests-asan env LD_LIBRARY_PATH="${ASAN_LIBRARY_PATH:-}" P11TEST_NO_BUILD=1 \
    bash Tests/C/run.sh "${ASAN_PROXY_SO:-build/lib-asan/libp11proxy.so}" "$BUILD_DIR/mock-asan" "$BUILD_DIR/tests-asan"
# SoftHSM2 through pkcs11-tool with the ASan and the TSan proxy, the sanitizer runtime preloaded
# into pkcs11-tool; any report of p11proxy's fails.
run_suite pkcs11-tool-asan bash scripts/sanitizer-integration.sh asan
run_suite pkcs11-tool-tsan bash scripts/sanitizer-integration.sh tsan

echo
if [ "${#broken[@]}" -gt 0 ]; then
    echo "suites that did not finish cleanly: ${broken[*]}"
fi
echo "$total_passed passed, $total_failed failed"
[ "$total_failed" -eq 0 ] && [ "${#broken[@]}" -eq 0 ]
