#!/usr/bin/env bash
# The shape of libp11proxy.so itself: exactly the three PKCS#11 symbols exported, no Swift
# runtime needed (Embedded Swift), only libc and libm loaded with it, NODELETE set, and under
# 4 MB stripped (1.5 MB before remote modules and URIs, 3.0 MB with them; the same sources
# with the Swift runtime linked in statically made 7.1 MB in the module's first release).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PROXY_SO="${PROXY_SO:-$REPO/build/lib/libp11proxy.so}"
passed=0 failed=0 n=0
check() { # check DESCRIPTION COMMAND...
    local what="$1"; shift
    n=$((n + 1))
    if "$@"; then echo "ok $n - $what"; passed=$((passed + 1)); else echo "not ok $n - $what"; failed=$((failed + 1)); fi
}

exports="$(nm -D --defined-only "$PROXY_SO" | awk '{print $3}' | sort | tr '\n' ' ')"
check "exports exactly C_GetFunctionList C_GetInterface C_GetInterfaceList (got: $exports)" \
    test "$exports" = "C_GetFunctionList C_GetInterface C_GetInterfaceList "
check "needs no Swift runtime library" bash -c "! ldd '$PROXY_SO' | grep -q libswift"
needed="$(readelf -d "$PROXY_SO" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort | tr '\n' ' ')"
check "needs exactly libc and libm (got: $needed)" test "$needed" = "libc.so.6 libm.so.6 "
check "is Embedded Swift: no Swift runtime metadata sections (swift5_*) to register and relocate" \
    bash -c "! readelf -SW '$PROXY_SO' | grep -q ' swift5_'"
check "needs no libstdc++ (no C++ start-up for a C host)" \
    bash -c "! readelf -d '$PROXY_SO' | grep NEEDED | grep -q 'libstdc++'"
check "needs no libgcc_s (one library fewer to load)" \
    bash -c "! readelf -d '$PROXY_SO' | grep NEEDED | grep -q 'libgcc_s'"
check "has no RUNPATH/RPATH (no search of the library's own directory for libm)" \
    bash -c "! readelf -d '$PROXY_SO' | grep -qE 'RUNPATH|RPATH'"
check "relative relocations packed as DT_RELR" bash -c "readelf -d '$PROXY_SO' | grep -q '(RELR)'"
check "is marked NODELETE (stays loaded after dlclose)" bash -c "readelf -d '$PROXY_SO' | grep -qE 'Flags:.* NODELETE'"
check "binds every symbol at load (-z now: full RELRO)" bash -c "readelf -d '$PROXY_SO' | grep -q 'BIND_NOW'"
stripped="$(mktemp)"
strip -o "$stripped" "$PROXY_SO"
size=$(stat -c %s "$stripped")
rm -f "$stripped"
echo "# stripped size: $size bytes"
check "stripped size $size is under 4 MB" test "$size" -lt 4000000

# A C program with no Swift toolchain on its library path can load it.
check "dlopen from a plain C program, without LD_LIBRARY_PATH" \
    env -u LD_LIBRARY_PATH python3 -c "import ctypes,sys; l=ctypes.CDLL(sys.argv[1]); l.C_GetFunctionList" "$PROXY_SO"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
