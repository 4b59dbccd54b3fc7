# shellcheck shell=bash
# Helpers sourced by the integration tests and scripts/demo.sh: private SoftHSM2 token
# stores, p11proxy config dirs, and checks that end in "N passed, N failed".
#
# Nothing here reads or writes system configuration: every token store gets its own
# softhsm2.conf (SOFTHSM2_CONF) and every proxy its own config dir (P11PROXY_CONFIG_DIR).

INTEGRATION_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=${REPO:-$(cd "$INTEGRATION_DIR/../.." && pwd)}
PROXY_SO=${PROXY_SO:-$REPO/build/lib/libp11proxy.so}
# The Makefile exports a path relative to the repo; pkcs11-tool gets an absolute one so
# a script may change directory.
if [[ $PROXY_SO != /* ]]; then
    PROXY_SO=$PWD/$PROXY_SO
fi

# Debian installs the module under the multiarch dir and links it from /usr/lib/softhsm.
find_softhsm_so() {
    local candidate
    for candidate in /usr/lib/softhsm/libsofthsm2.so \
        /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so; do
        if [[ -f $candidate ]]; then
            printf '%s\n' "$candidate"
            return 0
        fi
    done
    return 1
}
SOFTHSM_SO=${SOFTHSM_SO:-$(find_softhsm_so || true)}

# require_tools TOOL...: stop early with a clear message rather than fail checks one by one.
require_tools() {
    local tool missing=()
    for tool in "$@"; do
        command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
    done
    if ((${#missing[@]})); then
        echo "error: missing tools: ${missing[*]} (Debian: apt-get install softhsm2 opensc p11-kit gnutls-bin openssl)" >&2
        return 1
    fi
}

# require_softhsm_and_proxy: SoftHSM2 found (else exit 1) and PROXY_SO built (else one
# failed check and the summary line).
require_softhsm_and_proxy() {
    if [[ -z $SOFTHSM_SO ]]; then
        echo "error: SoftHSM2 module not found (apt-get install softhsm2)" >&2
        exit 1
    fi
    if [[ ! -f $PROXY_SO ]]; then
        fail "proxy module exists" "$PROXY_SO not found: build it first (make)"
        finish
    fi
}

# build_c_programs TARGET...: builds Tests/C/tests.mk targets (mock modules, C test programs)
# into BUILD (default build); on failure one failed check and the summary line.
build_c_programs() {
    local build=${BUILD:-${BUILD_DIR:-build}}
    [[ $build == /* ]] || build=$REPO/$build
    if ! make -s -C "$REPO" -f Tests/C/tests.mk BUILD_DIR="$build" "$@" >"$RUN_DIR/make.log" 2>&1; then
        fail "build $* (make -f Tests/C/tests.mk $*)" "$(tail -n 20 "$RUN_DIR/make.log")"
        finish
    fi
}

# make_work_dir NAME: WORK=a new temp dir p11proxy-NAME.XXXXXX with RUN_DIR=$WORK/runs (for
# `run`), removed at exit unless KEEP=1. A script with more to undo sets its own EXIT trap
# and calls remove_work_dir from it.
make_work_dir() {
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/p11proxy-$1.XXXXXX")
    RUN_DIR=$WORK/runs
    mkdir -p "$RUN_DIR"
    trap remove_work_dir EXIT
}
remove_work_dir() {
    if [[ ${KEEP:-0} == 1 ]]; then
        echo "# kept $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}

# make_softhsm_token DIR LABEL [SO_PIN] [USER_PIN]
# Initialises a token labelled LABEL in the SoftHSM2 store DIR/tokens and exports
# SOFTHSM2_CONF=DIR/softhsm2.conf. Calling it again with the same DIR adds another token
# to the same store (SoftHSM2 then shows one more slot). An existing DIR/softhsm2.conf is
# kept, so a caller may write its own first (e.g. with library.reset_on_fork).
make_softhsm_token() {
    local dir=$1 label=$2 so_pin=${3:-12345678} user_pin=${4:-1234} out
    mkdir -p "$dir/tokens"
    dir=$(cd "$dir" && pwd)
    if [[ ! -f $dir/softhsm2.conf ]]; then
        cat >"$dir/softhsm2.conf" <<EOF
directories.tokendir = $dir/tokens
objectstore.backend = file
log.level = ERROR
EOF
    fi
    export SOFTHSM2_CONF=$dir/softhsm2.conf
    if ! out=$(softhsm2-util --init-token --free --label "$label" \
        --so-pin "$so_pin" --pin "$user_pin" 2>&1); then
        printf '%s\n' "$out" >&2
        echo "error: softhsm2-util could not initialise token '$label' in $dir" >&2
        return 1
    fi
}

# make_proxy_config DIR MODULE_PATH...
# Writes DIR/modules/<name>.module for each module (name from the file name, without
# "lib" and ".so") and exports P11PROXY_CONFIG_DIR=DIR. No DIR/pkcs11.conf is written:
# it is optional and the defaults are what the tests want.
make_proxy_config() {
    local dir=$1 module name
    shift
    mkdir -p "$dir/modules"
    dir=$(cd "$dir" && pwd)
    for module in "$@"; do
        name=$(basename "$module")
        name=${name%.so}
        name=${name#lib}
        # critical: a module that fails to load must fail C_Initialize, so a broken
        # setup shows up as an error here instead of as a silently missing slot.
        cat >"$dir/modules/$name.module" <<EOF
module: $module
critical: yes
EOF
    done
    export P11PROXY_CONFIG_DIR=$dir
}

# --- checks ------------------------------------------------------------------------------
# TAP-like lines ("ok N - desc", "not ok N - desc", "# detail"), then `finish` prints
# "N passed, N failed" (", N skipped" only when something was skipped) as the last line.

CHECKS_RUN=0
CHECKS_PASSED=0
CHECKS_FAILED=0
CHECKS_SKIPPED=0

pass() {
    CHECKS_RUN=$((CHECKS_RUN + 1))
    CHECKS_PASSED=$((CHECKS_PASSED + 1))
    echo "ok $CHECKS_RUN - $1"
}

# fail DESC [DETAIL...]: each DETAIL line is printed as a "# " comment under the result.
fail() {
    local desc=$1
    shift
    CHECKS_RUN=$((CHECKS_RUN + 1))
    CHECKS_FAILED=$((CHECKS_FAILED + 1))
    echo "not ok $CHECKS_RUN - $desc"
    if (($#)); then
        printf '%s\n' "$@" | sed 's/^/#   /'
    fi
}

skip() {
    CHECKS_RUN=$((CHECKS_RUN + 1))
    CHECKS_SKIPPED=$((CHECKS_SKIPPED + 1))
    echo "ok $CHECKS_RUN - $1 # SKIP ${2:-}"
}

note() {
    printf '%s\n' "$@" | sed 's/^/# /'
}

# check DESC CMD...: passes when CMD exits 0.
check() {
    local desc=$1
    shift
    if "$@"; then
        pass "$desc"
    else
        fail "$desc" "command failed: $*"
    fi
}

# check_eq DESC EXPECTED ACTUAL: string equality, with a diff on failure.
check_eq() {
    if [[ $2 == "$3" ]]; then
        pass "$1"
    else
        fail "$1" "expected vs actual:" "$(diff <(printf '%s\n' "$2") <(printf '%s\n' "$3") || true)"
    fi
}

# check_contains DESC NEEDLE HAYSTACK: fixed-string search.
check_contains() {
    if grep -qF -- "$2" <<<"$3"; then
        pass "$1"
    else
        fail "$1" "missing: $2" "in:" "$(head -n 20 <<<"$3")"
    fi
}

# check_not_contains DESC NEEDLE HAYSTACK: fixed-string search that must find nothing.
check_not_contains() {
    if grep -qF -- "$2" <<<"$3"; then
        fail "$1" "unexpected: $2" "in:" "$(grep -F -- "$2" <<<"$3" | head -n 5)"
    else
        pass "$1"
    fi
}

# check_files_equal DESC FILE_A FILE_B: byte equality.
check_files_equal() {
    if cmp -s "$2" "$3"; then
        pass "$1"
    else
        fail "$1" "$2 and $3 differ"
    fi
}

# run NAME CMD...: runs CMD with stdout in $RUN_DIR/NAME.out and stderr in NAME.err,
# never stopping the script; the exit code is left in RUN_RC, the output in RUN_OUT.
RUN_RC=0
# shellcheck disable=SC2034 # read by the scripts that source this file
RUN_OUT=
run() {
    local name=$1
    shift
    : "${RUN_DIR:?RUN_DIR must be set before run}"
    RUN_RC=0
    "$@" >"$RUN_DIR/$name.out" 2>"$RUN_DIR/$name.err" || RUN_RC=$?
    # shellcheck disable=SC2034 # read by the scripts that source this file
    RUN_OUT=$(cat "$RUN_DIR/$name.out")
}

# check_run DESC NAME CMD...: `run`, then pass when CMD exited 0; on failure the tail of
# its stdout and stderr is shown.
check_run() {
    local desc=$1 name=$2
    shift 2
    run "$name" "$@"
    if ((RUN_RC == 0)); then
        pass "$desc"
    else
        fail "$desc" "exit code $RUN_RC: $*" "stdout:" "$(tail -n 8 "$RUN_DIR/$name.out")" \
            "stderr:" "$(tail -n 8 "$RUN_DIR/$name.err")"
    fi
}

# finish: prints the summary line and exits, non-zero when a check failed or none ran.
finish() {
    if ((CHECKS_RUN == 0)); then
        fail "at least one check ran"
    fi
    if ((CHECKS_SKIPPED)); then
        echo "$CHECKS_PASSED passed, $CHECKS_FAILED failed, $CHECKS_SKIPPED skipped"
    else
        echo "$CHECKS_PASSED passed, $CHECKS_FAILED failed"
    fi
    if ((CHECKS_FAILED)); then
        exit 1
    fi
    exit 0
}
