#!/usr/bin/env bash
# `make install` / `make uninstall`, and p11-kit with p11proxy installed.
#
# 1. DESTDIR installs into temp dirs (PREFIX=/usr/local and PREFIX=/usr): the exact file
#    list, the .module written, and an uninstall that leaves the DESTDIR empty.
# 2. As root, a real install into the system's dirs with PROXY_CONFIG_DIR naming a fixture
#    config dir (SoftHSM2 with a private token, plus a module file naming p11proxy itself):
#    `p11-kit list-modules` shows p11proxy with the token, p11-kit-proxy.so does not load it
#    (`disable-in: p11-kit-proxy`), nothing is printed on standard error. A trap uninstalls;
#    afterwards the system dirs must hold exactly what they held before.
# 3. As nobody (p11-kit 0.24 reads no user configuration for root), with only user
#    configuration: the installed library registered with `x-init-reserved: config-dir=DIR`
#    and no disable-in, so pkcs11-tool through p11-kit-proxy.so reaches the token through
#    p11proxy; a blank `x-init-reserved:` loads too.
#
#   Tests/integration/test_install.sh    # PROXY_SO, KEEP=1; INSTALL_TEST_SYSTEM=no skips 2 and 3
# shellcheck disable=SC2317 # helpers called through run/check_run
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_tools make pkg-config p11-kit pkcs11-tool softhsm2-util p11tool setpriv timeout
require_softhsm_and_proxy
P11KIT_PROXY=$(pkg-config --variable=proxy_module p11-kit-1)

make_work_dir install
chmod 755 "$WORK" # user nobody reads its files in section 3
PIN=1234
CALL_TIMEOUT=${CALL_TIMEOUT:-60}
START=$SECONDS
note "proxy: $PROXY_SO" "work:  $WORK"

# The Makefile's CLI_BIN (the `p11proxy` command, when the Makefile builds one).
CLI_BIN=$(make -s --no-print-directory -C "$REPO" -f Makefile -f - print-CLI_BIN <<<$'print-%:\n\t@echo $($*)' 2>/dev/null || true)
# make_install ARGS...: the repo's make with the module (and command) taken as built:
# -o keeps make from rebuilding them while other work changes the sources.
make_install() {
    local old=(-o "$PROXY_SO")
    if [[ -n $CLI_BIN ]]; then old+=(-o "$CLI_BIN"); fi
    make -s --no-print-directory -C "$REPO" "${old[@]}" PROXY_SO="$PROXY_SO" "$@"
}

p11kit_var() { pkg-config --variable="$1" p11-kit-1; }
P11KIT_MODULE_DIR=$(p11kit_var p11_module_path)
# What the README promises: PREFIX=/usr -> pkg-config's dirs; another PREFIX -> the library
# under PREFIX (p11_module_path with prefix=PREFIX), the .module in sysconfdir/pkcs11/modules.
expected_files() { # PREFIX
    local prefix=$1 module_dir conf_dir
    module_dir=$(pkg-config --define-variable=prefix="$prefix" --variable=p11_module_path p11-kit-1)
    if [[ $prefix == /usr ]]; then conf_dir=$(p11kit_var p11_module_configs); else conf_dir=$(p11kit_var sysconfdir)/pkcs11/modules; fi
    {
        echo "$module_dir/libp11proxy.so"
        echo "$conf_dir/p11proxy.module"
        echo "$prefix/share/p11proxy/install-manifest"
        echo "$prefix/share/man/man5/p11proxy.module.5"
        if [[ -n $CLI_BIN ]]; then
            echo "$prefix/bin/p11proxy"
            echo "$prefix/share/man/man1/p11proxy.1"
            echo "$prefix/share/bash-completion/completions/p11proxy"
            # Debian's zsh looks in vendor-completions under /usr, site-functions elsewhere.
            if [[ $prefix == /usr ]]; then echo "$prefix/share/zsh/vendor-completions/_p11proxy"
            else echo "$prefix/share/zsh/site-functions/_p11proxy"; fi
            echo "$prefix/share/fish/vendor_completions.d/p11proxy.fish"
        fi
    } | sort
}
files_under() { (cd "$1" && find . -type f -printf '/%P\n' | sort); }

# module_section FILE NAME: one module's block of `p11-kit list-modules` output.
module_section() {
    awk -v name="$2" '/^[^ ]/ { on = ($1 == name ":") } on' "$1"
}

# --- 1. DESTDIR --------------------------------------------------------------------------
section_destdir() {
    note "DESTDIR installs"
    local dest=$WORK/dest-local
    check_run "make install DESTDIR=... (PREFIX=/usr/local) exits 0" destdir-install \
        make_install install DESTDIR="$dest"
    check_eq "DESTDIR install (PREFIX=/usr/local) writes exactly the expected files" \
        "$(expected_files /usr/local)" "$(files_under "$dest")"
    local module_file
    module_file=$dest$(p11kit_var sysconfdir)/pkcs11/modules/p11proxy.module
    check_eq "the .module names the library by its absolute path outside p11-kit's module dir" \
        "module: $(pkg-config --define-variable=prefix=/usr/local --variable=p11_module_path p11-kit-1)/libp11proxy.so" \
        "$(grep '^module:' "$module_file" || true)"
    check_eq "the .module keeps disable-in: p11-kit-proxy" "disable-in: p11-kit-proxy" \
        "$(grep '^disable-in:' "$module_file" || true)"
    check_eq "no x-init-reserved without PROXY_CONFIG_DIR" "" "$(grep '^x-init-reserved:' "$module_file" || true)"
    check_files_equal "the installed library is the built one" "$PROXY_SO" \
        "$dest$(pkg-config --define-variable=prefix=/usr/local --variable=p11_module_path p11-kit-1)/libp11proxy.so"
    check_run "a second make install over the first exits 0" destdir-reinstall make_install install DESTDIR="$dest"
    check_run "make uninstall DESTDIR=... exits 0" destdir-uninstall make_install uninstall DESTDIR="$dest"
    check_eq "uninstall leaves the DESTDIR empty" "" "$(cd "$dest" && find . -mindepth 1)"

    dest=$WORK/dest-usr
    check_run "make install-strip DESTDIR=... PREFIX=/usr PROXY_CONFIG_DIR=/etc/p11proxy exits 0" destdir-usr \
        make_install install-strip DESTDIR="$dest" PREFIX=/usr PROXY_CONFIG_DIR=/etc/p11proxy
    check_eq "PREFIX=/usr installs into pkg-config's p11_module_path and p11_module_configs" \
        "$(expected_files /usr)" "$(files_under "$dest")"
    module_file=$dest$(p11kit_var p11_module_configs)/p11proxy.module
    check_eq "in p11-kit's module dir the .module names the library by file name" "module: libp11proxy.so" \
        "$(grep '^module:' "$module_file" || true)"
    check_eq "PROXY_CONFIG_DIR becomes x-init-reserved: config-dir=DIR" "x-init-reserved: config-dir=/etc/p11proxy" \
        "$(grep '^x-init-reserved:' "$module_file" || true)"
    local so=$dest$P11KIT_MODULE_DIR/libp11proxy.so
    check "install-strip leaves a smaller library" test "$(stat -c %s "$so")" -lt "$(stat -c %s "$PROXY_SO")"
    check_eq "the stripped library still exports the three PKCS#11 entry points" \
        "C_GetFunctionList C_GetInterface C_GetInterfaceList" \
        "$(nm -D --defined-only "$so" | awk '{ print $3 }' | sort | xargs)"
    check_eq "the library is installed mode 0644, the .module 0644" "644 644" \
        "$(stat -c %a "$so") $(stat -c %a "$module_file")"
    run destdir-usr-uninstall make_install uninstall DESTDIR="$dest" PREFIX=/usr
    check_eq "uninstall (PREFIX=/usr) leaves the DESTDIR empty" "" "$(cd "$dest" && find . -mindepth 1)"
}

# --- 2. the system's dirs, as root -------------------------------------------------------
SYSTEM_MODULE_DIR=$(pkg-config --define-variable=prefix=/usr/local --variable=p11_module_path p11-kit-1)
SYSTEM_CONF_DIR=$(p11kit_var sysconfdir)/pkcs11/modules
PREFIX_BIN=/usr/local/bin
INSTALLED_SO=$SYSTEM_MODULE_DIR/libp11proxy.so
INSTALLED_MODULE=$SYSTEM_CONF_DIR/p11proxy.module
INSTALLED=no
SNAPSHOT_BEFORE=
# Every directory install may touch, listed with types and modes: compared before and after.
snapshot() {
    local dir
    for dir in "$(p11kit_var sysconfdir)/pkcs11" /usr/local "$P11KIT_MODULE_DIR" "$(p11kit_var p11_module_configs)"; do
        if [[ -e $dir ]]; then find "$dir" -xdev -printf '%y %m %p\n'; fi
    done | sort
}
cleanup() {
    if [[ $INSTALLED == yes ]]; then
        make_install uninstall >/dev/null 2>&1 || echo "warning: make uninstall failed: remove $INSTALLED_SO and $INSTALLED_MODULE" >&2
    fi
    remove_work_dir
}
trap cleanup EXIT

# as_root CMD...: as root with an empty home (p11-kit 0.24 reads no user configuration for
# root anyway, but p11proxy's own user-config rule must not find the real one either).
as_root() {
    env HOME="$WORK/root-home" XDG_CONFIG_HOME="$WORK/root-home/.config" SOFTHSM2_CONF="$WORK/store/softhsm2.conf" \
        timeout "$CALL_TIMEOUT" "$@"
}

section_system() {
    note "system install (PREFIX=/usr/local) with PROXY_CONFIG_DIR"
    if [[ ${INSTALL_TEST_SYSTEM:-yes} == no ]]; then
        skip "system install" "INSTALL_TEST_SYSTEM=no"
        return 1
    fi
    if (($(id -u) != 0)); then
        skip "system install" "not root"
        return 1
    fi
    if [[ -e $INSTALLED_SO || -e $INSTALLED_MODULE || (-n $CLI_BIN && -e $PREFIX_BIN/p11proxy) ]]; then
        skip "system install" "p11proxy is already installed here ($INSTALLED_MODULE): make uninstall first"
        return 1
    fi
    mkdir -p "$WORK/root-home"
    make_softhsm_token "$WORK/store" installed
    # The fixture p11proxy reads: SoftHSM2, and a module file naming the installed p11proxy
    # through a symlink, which p11proxy must recognise as itself and leave out.
    mkdir -p "$WORK/config/modules"
    printf 'module: %s\ncritical: yes\n' "$SOFTHSM_SO" >"$WORK/config/modules/softhsm2.module"
    ln -s "$INSTALLED_SO" "$WORK/self-link.so"
    printf 'module: %s\n' "$WORK/self-link.so" >"$WORK/config/modules/itself.module"

    SNAPSHOT_BEFORE=$(snapshot)
    run kitproxy-before as_root pkcs11-tool --module "$P11KIT_PROXY" -L
    run list-before as_root p11-kit list-modules

    INSTALLED=yes
    check_run "make install PROXY_CONFIG_DIR=<fixture> into the system's dirs exits 0" install \
        make_install install PROXY_CONFIG_DIR="$WORK/config"
    check "libp11proxy.so is in $SYSTEM_MODULE_DIR" test -f "$INSTALLED_SO"
    check "p11proxy.module is in $SYSTEM_CONF_DIR" test -f "$INSTALLED_MODULE"

    check_run "p11-kit list-modules exits 0 with p11proxy installed" list as_root p11-kit list-modules
    module_section "$RUN_DIR/list.out" p11proxy >"$WORK/p11proxy.section"
    module_section "$RUN_DIR/list.out" softhsm2 >"$WORK/softhsm2.section"
    check_contains "p11-kit list-modules shows p11proxy from its installed path" "p11proxy: $INSTALLED_SO" "$(cat "$WORK/p11proxy.section")"
    check_contains "p11-kit list-modules shows the token under p11proxy (x-init-reserved config-dir)" \
        "token: installed" "$(cat "$WORK/p11proxy.section")"
    check_contains "p11-kit list-modules shows p11proxy's own library description" \
        "library-description: p11proxy PKCS#11 proxy module" "$(cat "$WORK/p11proxy.section")"
    # Each token block is the same through p11proxy as in p11-kit's own softhsm2 module: no
    # slot missing and none doubled (p11proxy skipped the module file naming itself).
    check_eq "p11proxy lists SoftHSM2's tokens exactly as p11-kit's softhsm2 module does" \
        "$(sed -n '/^    token:/,$p' "$WORK/softhsm2.section")" "$(sed -n '/^    token:/,$p' "$WORK/p11proxy.section")"
    check_eq "p11-kit list-modules prints nothing on standard error" "" "$(cat "$RUN_DIR/list.err")"

    # p11-kit-proxy.so: the shipped `disable-in: p11-kit-proxy` keeps p11proxy out of it.
    check_run "pkcs11-tool through p11-kit-proxy.so exits 0" kitproxy as_root pkcs11-tool --module "$P11KIT_PROXY" -L
    check_eq "p11-kit-proxy.so shows the same slots as before the install (p11proxy not loaded)" \
        "$(cat "$RUN_DIR/kitproxy-before.out")" "$(cat "$RUN_DIR/kitproxy.out")"
    check_eq "p11-kit-proxy.so shows the token once" 1 "$(grep -c 'token label        : installed' "$RUN_DIR/kitproxy.out" || true)"

    # The installed library, loaded directly: pReserved is NULL, so it reads p11-kit's
    # configuration, in which its own installed .module names it.
    check_run "pkcs11-tool --module <installed libp11proxy.so> -L exits 0" direct-installed \
        as_root pkcs11-tool --module "$INSTALLED_SO" -L
    check_eq "the installed p11proxy shows the token once (it never loads itself)" 1 \
        "$(grep -c 'token label        : installed' "$RUN_DIR/direct-installed.out" || true)"
    check_eq "the installed p11proxy prints nothing on standard error" "" "$(cat "$RUN_DIR/direct-installed.err")"

    if [[ -n $CLI_BIN ]]; then
        check_run "the installed p11proxy command runs: $PREFIX_BIN/p11proxy list" cli-list as_root "$PREFIX_BIN/p11proxy" list
        check_contains "p11proxy list shows the SoftHSM2 token" "token: installed" "$RUN_OUT"
        # Debian's /usr/local/man is a link to share/man, which man may name instead.
        check_eq "man finds the installed p11proxy(1) under PREFIX" /usr/local/share/man/man1/p11proxy.1 \
            "$(readlink -f "$(as_root man -w p11proxy 2>&1)")"
    fi

    # GnuTLS loads every module p11-kit lists: with p11proxy presenting SoftHSM2 too, a
    # token shows twice (README: use config-dir, or disable-in for such programs).
    run p11tool as_root p11tool --list-tokens
    note "p11tool --list-tokens (GnuTLS through p11-kit) lists token 'installed' $(grep -c 'token=installed' "$RUN_DIR/p11tool.out" || true) times"
    return 0
}

section_uninstall() {
    check_run "make uninstall exits 0" uninstall make_install uninstall
    INSTALLED=no
    check "libp11proxy.so is gone" test ! -e "$INSTALLED_SO"
    check "p11proxy.module is gone" test ! -e "$INSTALLED_MODULE"
    check "the p11proxy command is gone" test ! -e "$PREFIX_BIN/p11proxy"
    check_eq "after uninstall the system's dirs hold exactly what they held before" "$1" "$(snapshot)"
    run list-after as_root p11-kit list-modules
    check_eq "p11-kit list-modules after uninstall is as before" \
        "$(cat "$RUN_DIR/list-before.out")" "$(cat "$RUN_DIR/list-after.out")"
}

# --- 3. as nobody, user configuration only -----------------------------------------------
NOBODY_HOME=$WORK/nobody
as_nobody() {
    setpriv --reuid=nobody --regid=nogroup --clear-groups \
        env HOME="$NOBODY_HOME" XDG_CONFIG_HOME="$NOBODY_HOME/.config" SOFTHSM2_CONF="$NOBODY_HOME/store/softhsm2.conf" \
        timeout "$CALL_TIMEOUT" "$@"
}
# user_module LINES...: the user's only module file, p11proxy.module, with these lines.
user_module() {
    printf '%s\n' "$@" >"$NOBODY_HOME/.config/pkcs11/modules/p11proxy.module"
}

section_nobody() {
    note "nobody: user config only, p11proxy with its own config dir, through p11-kit-proxy.so"
    if ! id nobody >/dev/null 2>&1; then
        skip "p11-kit as nobody" "no user nobody"
        return
    fi
    mkdir -p "$NOBODY_HOME/.config/pkcs11/modules"
    printf 'user-config: only\n' >"$NOBODY_HOME/.config/pkcs11/pkcs11.conf"
    make_softhsm_token "$NOBODY_HOME/store" nobody-token
    make_proxy_config "$NOBODY_HOME/proxy" "$SOFTHSM_SO"
    unset P11PROXY_CONFIG_DIR
    chown -R nobody:nogroup "$NOBODY_HOME"

    # The recommended file when p11proxy has modules of its own: no disable-in, so p11-kit's
    # proxy shows them (p11-kit itself does not know these modules; nothing is doubled).
    user_module "module: $INSTALLED_SO" "x-init-reserved: config-dir=$NOBODY_HOME/proxy"
    check_run "nobody: p11-kit list-modules exits 0" nobody-list as_nobody p11-kit list-modules
    check_eq "nobody: p11-kit lists p11proxy alone (user-config: only)" "p11proxy: $INSTALLED_SO" \
        "$(grep -E '^[^ ]' "$RUN_DIR/nobody-list.out")"
    check_contains "nobody: p11proxy shows the token of its config dir" "token: nobody-token" "$RUN_OUT"
    check_run "nobody: pkcs11-tool through p11-kit-proxy.so lists slots" nobody-kitproxy \
        as_nobody pkcs11-tool --module "$P11KIT_PROXY" -L
    check_contains "nobody: p11-kit-proxy.so sees the token through p11proxy" "token label        : nobody-token" "$RUN_OUT"
    local d=$NOBODY_HOME
    check_run "nobody: keygen through p11-kit-proxy.so and p11proxy" nobody-keygen \
        as_nobody pkcs11-tool --module "$P11KIT_PROXY" --token-label nobody-token --login --pin "$PIN" \
        --keypairgen --key-type EC:prime256v1 --label k1 --id 01
    printf 'data' | openssl dgst -sha256 -binary >"$WORK/data.sha256"
    chmod 644 "$WORK/data.sha256"
    check_run "nobody: ECDSA sign through p11-kit-proxy.so and p11proxy" nobody-sign \
        as_nobody pkcs11-tool --module "$P11KIT_PROXY" --token-label nobody-token --login --pin "$PIN" \
        --sign --mechanism ECDSA --id 01 -i "$WORK/data.sha256" -o "$d/sig.bin"
    run nobody-verify as_nobody pkcs11-tool --module "$SOFTHSM_SO" --token-label nobody-token \
        --verify --mechanism ECDSA --id 01 -i "$WORK/data.sha256" --signature-file "$d/sig.bin"
    check_contains "nobody: SoftHSM2 directly verifies that signature" "Signature is valid" "$RUN_OUT"

    # With the shipped `disable-in: p11-kit-proxy`, p11-kit-proxy.so leaves p11proxy out.
    user_module "module: $INSTALLED_SO" "x-init-reserved: config-dir=$NOBODY_HOME/proxy" "disable-in: p11-kit-proxy"
    run nobody-kitproxy-disabled as_nobody pkcs11-tool --module "$P11KIT_PROXY" -L
    check_not_contains "nobody: with disable-in: p11-kit-proxy, p11-kit-proxy.so does not load p11proxy" \
        nobody-token "$RUN_OUT"

    # A blank x-init-reserved reaches C_Initialize as "": p11proxy must still load (p11-kit
    # would otherwise drop it without a word). It then reads p11-kit's configuration: the
    # user's, whose only module file names p11proxy itself.
    user_module "module: $INSTALLED_SO" "x-init-reserved:"
    check_run "nobody: blank x-init-reserved: p11-kit list-modules exits 0" nobody-blank as_nobody p11-kit list-modules
    check_contains "nobody: blank x-init-reserved: p11-kit still lists p11proxy" "p11proxy: $INSTALLED_SO" "$RUN_OUT"
    check_contains "nobody: blank x-init-reserved: p11proxy answers C_GetInfo" \
        "library-manufacturer: p11proxy" "$RUN_OUT"

    # An unknown option is refused (CKR_ARGUMENTS_BAD) and p11-kit leaves p11proxy out.
    user_module "module: $INSTALLED_SO" "x-init-reserved: colour=blue"
    run nobody-bad as_nobody p11-kit list-modules
    check_not_contains "nobody: x-init-reserved with an unknown option: p11-kit leaves p11proxy out" \
        "p11proxy: $INSTALLED_SO" "$RUN_OUT"
}

section_destdir
if section_system; then
    section_nobody
    section_uninstall "$SNAPSHOT_BEFORE"
fi
note "took $((SECONDS - START)) s"
finish
