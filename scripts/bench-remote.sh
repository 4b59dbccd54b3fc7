#!/usr/bin/env bash
# scripts/bench-remote.sh: remote modules' per-call cost (a benchmark that prints numbers; it
# checks nothing). One `p11-kit server` over a SoftHSM2 token with an EC key, in a temporary
# directory; build/bench/bench times C_GetSessionInfo, C_DigestInit+C_Digest and ECDSA
# C_SignInit+C_Sign through p11proxy (`remote: unix:path=...`) and through p11-kit-client.so on
# the same server, with 1 and 2 threads (each thread its own session, all on one connection;
# the server serves a connection's requests one at a time, in order, and both clients keep a
# second thread's request in flight meanwhile), and with 2 threads each on a connection of its
# own (two module files naming the same socket by two spellings of its path: the server runs a
# module instance per connection, so each thread gets its own), and prints one table.
#   bash scripts/bench-remote.sh            # TIME_MS (300), REPS (5); writes build/bench/remote.md
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
# shellcheck source=../Tests/integration/lib.sh
source Tests/integration/lib.sh
BUILD=${BUILD_DIR:-build}
BENCH=$BUILD/bench/bench
make -s -f Tests/C/tests.mk BUILD_DIR="$REPO/$BUILD" bench-programs >/dev/null
CLIENT_SO=$(pkg-config --variable=p11_module_path p11-kit-1)/p11-kit-client.so
WORK=$(mktemp -d "${TMPDIR:-/tmp}/p11proxy-bench-remote.XXXXXX")
SERVER=
trap '[[ -n $SERVER ]] && kill $SERVER 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
make_softhsm_token "$WORK/hsm" bench 12345678 1234 >/dev/null
pkcs11-tool --module "$SOFTHSM_SO" --login --pin 1234 --keypairgen --key-type EC:prime256v1 --label ec >/dev/null 2>&1
p11-kit server -f -n "$WORK/sock" --provider "$SOFTHSM_SO" "pkcs11:" >"$WORK/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 50); do [[ -S $WORK/sock ]] && break; sleep 0.1; done
mkdir -p "$WORK/conf/modules"
printf 'remote: unix:path=%s/sock\n' "$WORK" >"$WORK/conf/modules/hsm.module"
CALLS=get_session_info,digest,sign_ecdsa
ARGS=(--threads 1,2 --time-ms "${TIME_MS:-300}" --reps "${REPS:-5}" --calls "$CALLS")
mkdir -p "$WORK/conf2/modules"
cp "$WORK/conf/modules/hsm.module" "$WORK/conf2/modules/"
printf 'remote: unix:path=%s//sock\n' "$WORK" >"$WORK/conf2/modules/hsm2.module"
read -r LOAD_BEFORE _ </proc/loadavg
# Interleaved rounds, so that a slower stretch of the machine falls on every target alike.
for round in 1 2 3; do
    P11PROXY_CONFIG_DIR=$WORK/conf "$BENCH" "$PROXY_SO" "${ARGS[@]}" >>"$WORK/proxy.out"
    P11_KIT_SERVER_ADDRESS=unix:path=$WORK/sock "$BENCH" "$CLIENT_SO" "${ARGS[@]}" >>"$WORK/client.out"
    P11PROXY_CONFIG_DIR=$WORK/conf2 "$BENCH" "$PROXY_SO" "${ARGS[@]/#1,2/2}" --slot-per-thread >>"$WORK/split.out"
done
# The median over the rounds of a call's ns per call.
value() {
    sed -n "s/^result call=$2 threads=$3 ns_per_call=\([0-9.]*\).*/\1/p" "$1" | sort -g |
        awk '{ v[NR] = $1 } END { if (NR) print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
{
    echo "| call | threads | p11proxy us | p11-kit-client.so us | p11proxy / p11-kit-client | p11proxy, a connection per thread us |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: |"
    for call in ${CALLS//,/ }; do
        for threads in 1 2; do
            ours=$(value "$WORK/proxy.out" "$call" "$threads")
            theirs=$(value "$WORK/client.out" "$call" "$threads")
            split=$( [[ $threads == 2 ]] && value "$WORK/split.out" "$call" 2 || echo "")
            awk -v c="$call" -v t="$threads" -v a="$ours" -v b="$theirs" -v s="$split" \
                'BEGIN { printf "| %s | %d | %.1f | %.1f | %.2f | %s |\n", c, t, a / 1000, b / 1000, a / b,
                         s == "" ? "" : sprintf("%.1f", s / 1000) }'
        done
    done
    echo
    echo "Median of 3 interleaved rounds; ns per call = wall time / all threads' calls. $(nproc) CPUs, load before: $LOAD_BEFORE."
} | tee "$BUILD/bench/remote.md"
