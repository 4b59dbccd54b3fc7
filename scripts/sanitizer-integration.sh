#!/usr/bin/env bash
# scripts/sanitizer-integration.sh asan|tsan: the SoftHSM2 pkcs11-tool integration test
# (Tests/integration/test_pkcs11_tool.sh) with the sanitizer build of p11proxy
# (build/lib-asan, build/lib-tsan: `make asan-build` / `make tsan-build`).
#
# pkcs11-tool, OpenSSL and SoftHSM2 are not instrumented, so the sanitizer runtime comes in by
# LD_PRELOAD, and only into the pkcs11-tool processes that load the sanitizer proxy: a
# `pkcs11-tool` wrapper first on PATH adds it (bash, softhsm2-util, openssl and the direct
# SoftHSM2 runs stay as they are). Every report goes to a file (log_path); the run fails on any
# sanitizer error, on any leak of p11proxy's, or if no pkcs11-tool ran under the sanitizer.
#   asan: AddressSanitizer with LeakSanitizer on. Third-party reports (OpenSSL, SoftHSM2, a
#         pkcs11-tool bug) are suppressed in scripts/sanitizer-suppressions/{asan,lsan}.txt. A
#         leak left over is p11proxy's, and fails, when its allocation stack has a frame in
#         libp11proxy.so (Swift runtime functions included); the rest (pkcs11-tool's own) are only counted.
#   tsan: ThreadSanitizer checks p11proxy's own memory accesses, ordered by everyone's pthread
#         calls (pkcs11-tool --test-threads runs several threads); accesses inside the
#         uninstrumented programs and SoftHSM2 are not seen.
# Last line: "N passed, N failed" (the test's checks plus this script's two).
set -uo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

kind=${1:-asan}
swift_bin=$(dirname "$(readlink -f "$(command -v swiftc)")")
swift_runtime_dir=$swift_bin/../lib/swift/linux
runtime_dir="$("$swift_bin/clang" -print-resource-dir)/lib/linux"
library_path="$swift_runtime_dir:$runtime_dir"
case $kind in
asan)
    name=AddressSanitizer options_var=ASAN_OPTIONS
    options="detect_leaks=1:suppressions=$REPO/scripts/sanitizer-suppressions/asan.txt"
    # Leaks do not change pkcs11-tool's exit status (the test checks it); they are judged below.
    extra_env="LSAN_OPTIONS=exitcode=0:print_suppressions=0:suppressions=$REPO/scripts/sanitizer-suppressions/lsan.txt"
    ;;
tsan)
    name=ThreadSanitizer options_var=TSAN_OPTIONS
    options="halt_on_error=0"
    extra_env=""
    ;;
*)
    echo "usage: $0 asan|tsan" >&2
    exit 2
    ;;
esac
proxy_var=${kind^^}_PROXY_SO # ASAN_PROXY_SO / TSAN_PROXY_SO, exported by the Makefile
proxy=${!proxy_var:-build/lib-$kind/libp11proxy.so}
runtime=$runtime_dir/libclang_rt.$kind-x86_64.so
preload=$runtime
# The toolchain's TSan runtime intercepts libdispatch, whose symbols it then needs loaded.
[[ $kind == tsan ]] && preload="$runtime $swift_runtime_dir/libdispatch.so $swift_runtime_dir/libBlocksRuntime.so"
[[ $proxy == /* ]] || proxy=$REPO/$proxy
if [[ ! -f $proxy || ! -f $runtime ]]; then
    echo "not ok 1 - $name proxy ($proxy) and runtime ($runtime) exist (make ${kind}-build)"
    echo "0 passed, 1 failed"
    exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/p11proxy-$kind.XXXXXX")
trap '[[ -n ${KEEP:-} ]] && echo "# kept $work" || rm -rf "$work"' EXIT
mkdir -p "$work/bin" "$work/reports"
real_tool=$(command -v pkcs11-tool)
cat >"$work/bin/pkcs11-tool" <<EOF
#!/bin/sh
# pkcs11-tool, with the $name runtime preloaded when it loads the $name build of p11proxy.
for arg in "\$@"; do
    case \$arg in
    "$proxy" | "--module=$proxy")
        echo run >>"$work/runs"
        exec env LD_PRELOAD="$preload" LD_LIBRARY_PATH="$library_path" $extra_env \\
            $options_var="$options:log_path=$work/reports/$kind" "$real_tool" "\$@"
        ;;
    esac
done
exec "$real_tool" "\$@"
EOF
chmod +x "$work/bin/pkcs11-tool"

echo "# $name: $proxy, runtime $runtime preloaded into pkcs11-tool"
PATH="$work/bin:$PATH" PROXY_SO="$proxy" bash Tests/integration/test_pkcs11_tool.sh | tee "$work/test.out"
status=${PIPESTATUS[0]}

line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$work/test.out" | tail -1)
passed=$(sed -E 's/^([0-9]+) passed.*/\1/' <<<"${line:-0 passed, 1 failed}")
failed=$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"${line:-0 passed, 1 failed}")
[[ -n $line ]] || echo "not ok - the integration test printed no closing line (exit $status)"

runs=$(cat "$work/runs" 2>/dev/null | wc -l)
if ((runs > 0)); then
    echo "ok - $runs pkcs11-tool runs loaded the proxy under $name"
    passed=$((passed + 1))
else
    echo "not ok - pkcs11-tool ran under $name (no run loaded $proxy)"
    failed=$((failed + 1))
fi
# Per report file: errors (any is a failure), leaks with a p11proxy frame, other leaks.
judge() {
    awk '
        function leak_done() { if (ours) mine++; else theirs++; in_leak = 0 }
        /ERROR: AddressSanitizer|WARNING: ThreadSanitizer/ { errors++ }
        /^(Direct|Indirect) leak of/ { if (in_leak) leak_done(); in_leak = 1; ours = 0; next }
        in_leak && /^ *#[0-9]+ / { if ($0 ~ /libp11proxy|libswift|\/Sources\/P11Proxy/) ours = 1; next }
        in_leak && /^ *$/ { leak_done() }
        END {
            if (in_leak) leak_done()
            if (errors + mine + theirs == 0) errors = 1 # a report of a kind not known here
            print errors + 0, mine + 0, theirs + 0
        }' "$1"
}
errors=0 ours=0 theirs=0 bad=()
for report in "$work"/reports/*; do
    [[ -e $report ]] || continue
    read -r e m t < <(judge "$report")
    errors=$((errors + e)) ours=$((ours + m)) theirs=$((theirs + t))
    ((e + m > 0)) && bad+=("$report")
done
if ((errors + ours == 0)); then
    echo "ok - no $name error and no leak of p11proxy's ($theirs leaks of the programs' own not counted)"
    passed=$((passed + 1))
else
    echo "not ok - no $name error and no leak of p11proxy's ($errors errors, $ours leaks of p11proxy's)"
    for report in "${bad[@]:0:3}"; do
        echo "# --- $report"
        head -n 60 "$report" | sed 's/^/#   /'
    done
    failed=$((failed + 1))
fi
echo "$passed passed, $failed failed"
((failed == 0 && status == 0))
