#!/bin/sh
# Tests/C/run.sh: builds (through Tests/C/tests.mk) and runs the C test programs against a
# built proxy, and sums their checks.
#   Tests/C/run.sh [--tsan] [PROXY_SO [DIR [TEST_DIR]]]
# DIR is either the mock directory (holding libmock-a.so, e.g. build/mock) or the build
# directory (build: then build/mock + build/tests, or build/mock-tsan + build/tests-tsan
# with --tsan). Defaults: build/lib/libp11proxy.so and build. Each program gets
# PROXY_SO and the mock directory; its stdout/stderr are kept in TEST_DIR/logs/.
# Prints one line per program, then exactly "N passed, N failed" over all "ok" /
# "not ok" lines. A program that crashes, times out (P11TEST_PROGRAM_TIMEOUT seconds,
# default 900) or exits non-zero without a "not ok" line counts as one more failure.
# P11TEST_PROGRAMS="test_routing ..." runs only those; P11TEST_NO_BUILD=1 skips the make
# step. Exit status: 0 only if nothing failed.
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

tsan=
if [ "${1:-}" = "--tsan" ]; then
    tsan=-tsan
    shift
fi
proxy=${1:-build/lib/libp11proxy.so}
dir=${2:-build}
if [ -e "$dir/libmock-a.so" ]; then
    mocks=$dir
    build=$(dirname "$mocks")
    case $mocks in
    *-tsan) tsan=-tsan ;;
    esac
else
    build=$dir
    mocks=$build/mock$tsan
fi
tests=${3:-$build/tests$tsan}
programs=${P11TEST_PROGRAMS:-"test_mock_direct test_routing test_faults test_managed stress_managed
    test_caller_input test_module_hang test_fork_calls test_load_cycles test_trace_secrets
    test_trace_overreport test_trace_no_threads test_shared_modules test_remote_faults test_remote_proxy test_v32
    test_token_filter"}
timeout_s=${P11TEST_PROGRAM_TIMEOUT:-900}

if [ -z "${P11TEST_NO_BUILD:-}" ]; then
    target=c-tests
    [ -n "$tsan" ] && target=c-tests-tsan
    case $build in
    /*) abs_build=$build ;;
    *) abs_build=$PWD/$build ;;
    esac
    if ! make -s -C "$root" -f Tests/C/tests.mk BUILD_DIR="$abs_build" "$target" >/dev/null; then
        echo "could not build the C tests (make -f Tests/C/tests.mk $target)"
        echo "0 passed, 1 failed"
        exit 1
    fi
fi

logs=$tests/logs
mkdir -p "$logs"
[ -e "$proxy" ] || echo "warning: proxy $proxy does not exist; the programs will report it"

total_pass=0
total_fail=0
bad_programs=0

signal_name() {
    kill -l "$1" 2>/dev/null || echo "?"
}

for name in $programs; do
    bin=$tests/$name
    out=$logs/$name.out
    err=$logs/$name.err
    if [ ! -x "$bin" ]; then
        echo "MISSING $name ($bin not built)"
        total_fail=$((total_fail + 1))
        bad_programs=$((bad_programs + 1))
        continue
    fi
    timeout -k 10 "$timeout_s" "$bin" "$proxy" "$mocks" >"$out" 2>"$err"
    status=$?
    pass=$(grep -c '^ok ' "$out")
    fail=$(grep -c '^not ok ' "$out")
    how=""
    if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
        how="timed out after ${timeout_s}s"
    elif [ "$status" -gt 128 ]; then
        sig=$((status - 128))
        how="killed by signal $sig (SIG$(signal_name "$sig"))"
    elif [ "$status" -ne 0 ] && [ "$fail" -eq 0 ]; then
        how="exit status $status without a failed check"
        grep -q 'ThreadSanitizer\|AddressSanitizer\|LeakSanitizer' "$err" && how="$how (sanitizer reports in $err)"
    fi
    if [ -n "$how" ] && [ "$fail" -eq 0 ]; then
        fail=1
    fi
    total_pass=$((total_pass + pass))
    total_fail=$((total_fail + fail))
    if [ "$fail" -eq 0 ] && [ -z "$how" ]; then
        echo "PASS $name ($pass checks)"
    else
        bad_programs=$((bad_programs + 1))
        echo "FAIL $name ($pass passed, $fail failed${how:+; $how})"
        grep '^not ok ' "$out" | sed 's/^/    /' | head -40
        if grep -q 'ThreadSanitizer\|AddressSanitizer\|runtime error' "$err"; then
            echo "    --- sanitizer output (first lines of $err):"
            grep -m 20 -A 3 'WARNING: ThreadSanitizer\|ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error' "$err" |
                sed 's/^/    /'
        elif [ -n "$how" ]; then
            echo "    --- last lines of $out / $err:"
            tail -n 5 "$out" | sed 's/^/    /'
            tail -n 10 "$err" | sed 's/^/    /'
        fi
    fi
done

echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ] && [ "$bad_programs" -eq 0 ]
