#!/usr/bin/env bash
# Damaged configuration on a real file system, read by the built proxy inside pkcs11-tool
# running as `nobody` (root reads mode-000 files anyway): an unreadable .module, a directory,
# a dangling symlink and a FIFO where files should be, a 2 MB file, a NUL byte, invalid UTF-8,
# an overlong line, a line without ':', duplicate keys; then an unreadable pkcs11.conf and an
# unlistable modules directory. Every problem must be reported once on stderr as
# "p11proxy: FILE[:LINE]: ...", the damaged modules skipped, the sound ones (mock modules)
# still listed, and nothing may hang (a FIFO opened for reading would block forever).
# The reader's own unit tests (Tests/P11ProxyConfigTests/BrokenFilesTests.swift) and the
# fuzzer (Tests/Fuzz) cover the same cases without a module; this shows them end to end.
#   bash Tests/integration/test_broken_config.sh      # "N passed, N failed"
set -uo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_tools make cc pkcs11-tool setpriv timeout mkfifo || exit 1
unset P11PROXY_MODULE P11PROXY_CONFIG_DIR P11PROXY_LOG_CALLS P11PROXY_LOG_FILE

BUILD=${BUILD_DIR:-build}
[[ $BUILD == /* ]] || BUILD=$REPO/$BUILD
MOCKS=$BUILD/mock

make_work_dir broken-config
# nobody must reach the config dir; the proxy and mocks under the repo are world-readable.
chmod 755 "$WORK"
require_softhsm_and_proxy
build_c_programs mock-modules
if ! id nobody >/dev/null 2>&1; then
    skip "damaged configuration as nobody" "no user nobody"
    finish
fi
NOBODY_GROUP=$(id -gn nobody)

# list_as_nobody NAME CONFIG_DIR: pkcs11-tool -L through the proxy as nobody, at most 60 s.
list_as_nobody() {
    run "$1" env P11PROXY_CONFIG_DIR="$2" P11_KIT_NO_USER_CONFIG=1 timeout -k 5 60 \
        setpriv --reuid=nobody --regid="$NOBODY_GROUP" --clear-groups \
        pkcs11-tool --module "$PROXY_SO" -L
}

# expect_message DESC ERR_FILE TEXT: TEXT appears on exactly one line of ERR_FILE.
expect_message() {
    local count
    count=$(grep -cF -- "$3" "$2")
    if [[ $count == 1 ]]; then
        pass "$1"
    else
        fail "$1" "expected once, found $count times: $3" "stderr:" "$(head -n 30 "$2")"
    fi
}

# --- 1. damaged module files ----------------------------------------------------------------
CONF=$WORK/damaged
M=$CONF/modules
mkdir -p "$M"
printf 'module: %s/libmock-a.so\n' "$MOCKS" >"$M/good.module"
printf 'module: libsecret.so\ncritical: yes\n' >"$M/secret.module"
chmod 000 "$M/secret.module"
mkdir "$M/dir.module"
ln -s "$WORK/nowhere.module" "$M/gone.module"
mkfifo "$M/fifo.module"
{ printf 'module: libhuge.so\n'; head -c 2000000 /dev/zero | tr '\0' '#'; } >"$M/huge.module"
printf 'module: libnul.so\nx-note: a\0b\n' >"$M/nul.module"
printf 'module: %s/libmock-b.so\nx-vendor: M\374ller\n' "$MOCKS" >"$M/latin1.module"
{ printf 'module: liblong.so\n# comment\nx-long: '; head -c 70000 /dev/zero | tr '\0' a; printf '\n'; } >"$M/long.module"
printf 'module: libwords.so\n\njust some words\n' >"$M/nocolon.module"
printf 'module: %s/libmock-c.so\npriority: 1\npriority: 2\n' "$MOCKS" >"$M/dup.module"
ln -s "$WORK/nowhere.conf" "$CONF/pkcs11.conf"

list_as_nobody damaged "$CONF"
ERR=$RUN_DIR/damaged.err
check_eq "damaged modules: pkcs11-tool -L as nobody exits 0 (no hang: FIFO and 2 MB file not waited on)" 0 "$RUN_RC"
check_eq "damaged modules: the sound modules' slots are listed (mock-c by priority, mock-a x2, mock-b)" \
    "mock-c-7 mock-a-1 mock-a-5 mock-b-1" \
    "$(grep -oE 'token label +: [^ ]+' "$RUN_DIR/damaged.out" | awk '{print $NF}' | tr '\n' ' ' | sed 's/ $//')"
expect_message "unreadable .module (mode 000): file, reason" "$ERR" "p11proxy: $M/secret.module: cannot be read: permission denied"
expect_message "unreadable .module: its module skipped, even critical" "$ERR" "p11proxy: $M/secret.module: module 'secret' skipped"
expect_message "directory where a .module should be" "$ERR" "p11proxy: $M/dir.module: is a directory, not a module config; ignored"
expect_message "dangling symlink .module" "$ERR" "p11proxy: $M/gone.module: is a symbolic link to a file that does not exist"
expect_message "dangling symlink pkcs11.conf" "$ERR" "p11proxy: $CONF/pkcs11.conf: is a symbolic link to a file that does not exist; ignored"
expect_message "FIFO .module: not opened" "$ERR" "p11proxy: $M/fifo.module: is not a regular file (a FIFO, socket or device); not read"
expect_message "2 MB .module: not read" "$ERR" \
    "p11proxy: $M/huge.module: file is $(stat -c %s "$M/huge.module") bytes, more than the 1048576-byte limit; not read"
expect_message "NUL byte: file and line" "$ERR" "p11proxy: $M/nul.module:2: line contains a NUL byte"
expect_message "NUL byte: module skipped at that line" "$ERR" "p11proxy: $M/nul.module:2: module 'nul' skipped"
expect_message "invalid UTF-8: file and line, module still loads" "$ERR" "p11proxy: $M/latin1.module:2: 'x-vendor' has bytes that are not valid UTF-8"
expect_message "overlong line: file and line" "$ERR" "p11proxy: $M/long.module:3: line is 70008 bytes long, more than the 65536-byte limit"
expect_message "missing colon: file and line (blank line counted)" "$ERR" "p11proxy: $M/nocolon.module:3: expected 'key: value' but found no ':' in 'just some words'"
expect_message "duplicate key: file and line of both" "$ERR" "p11proxy: $M/dup.module:3: duplicate key 'priority' (also set on line 2); the value on line 3 is used"
for name in gone fifo huge long nocolon; do
    expect_message "$name.module: its module skipped" "$ERR" "module '$name' skipped"
done
check_eq "damaged modules: every message is a p11proxy one naming a file of the config dir" "" \
    "$(grep -v "^p11proxy: $CONF/" "$ERR")"
# 11 problems + 7 skipped modules (secret, gone, fifo, huge, nul, long, nocolon).
check_eq "damaged modules: 18 messages, none repeated" "18 18" \
    "$(wc -l <"$ERR") $(sort -u "$ERR" | wc -l)"

# --- 2. unreadable pkcs11.conf, unlistable modules directory ----------------------------------
CONF=$WORK/closed
mkdir -p "$CONF/modules"
printf 'log-calls: yes\n' >"$CONF/pkcs11.conf"
printf 'module: %s/libmock-a.so\n' "$MOCKS" >"$CONF/modules/good.module"
chmod 000 "$CONF/pkcs11.conf" "$CONF/modules"

list_as_nobody closed "$CONF"
ERR=$RUN_DIR/closed.err
# pkcs11-tool exits 1 when there is no slot to list.
check_eq "closed config: pkcs11-tool -L as nobody finds no slot (the one module is in the unlistable directory)" \
    "1 No slots." "$RUN_RC $(grep -x 'No slots.' "$RUN_DIR/closed.err")"
expect_message "unreadable pkcs11.conf: reported, ignored" "$ERR" "p11proxy: $CONF/pkcs11.conf: cannot be read: permission denied; ignored"
expect_message "unlistable modules directory: reported" "$ERR" "p11proxy: $CONF/modules: module config directory cannot be listed: permission denied"
check_eq "closed config: nothing traced (log-calls: yes was not readable)" "" "$(grep -E '^C_' "$ERR")"

# Root reads the same files: the difference shows the test really exercised permissions.
chmod 755 "$CONF/modules" && chmod 644 "$CONF/pkcs11.conf"
list_as_nobody opened "$CONF"
check_contains "same config made readable: the module loads" "mock-a-1" "$(cat "$RUN_DIR/opened.out")"

finish
