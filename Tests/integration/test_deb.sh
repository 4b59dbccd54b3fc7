#!/usr/bin/env bash
# The Debian package `make deb` builds (scripts/build-deb.sh), and the man pages and shell
# completions in it.
#
# 1. The package file: its fields (the version is the module's libraryVersion), exactly the
#    expected files, lintian clean apart from packaging/debian/lintian-overrides, both man
#    pages free of mandoc and groff warnings, and a second build of the same commit
#    byte-identical to the first.
# 2. As root, installed for real with dpkg: p11-kit list-modules shows p11proxy with a
#    SoftHSM2 token, the installed `p11proxy list` shows it, `man p11proxy` and
#    `man p11proxy.module` render, and bash, zsh and fish complete `p11proxy li` to `list`
#    from the installed files. Then dpkg --remove and --purge: every path of the package that
#    was not there before is gone, and dpkg knows nothing of it. A trap purges the package
#    whatever fails, so the system is left as it was found.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
START=$SECONDS
CALL_TIMEOUT=${CALL_TIMEOUT:-60}
PACKAGE=p11proxy
BUILD=${BUILD_DIR:-build}
[[ $BUILD == /* ]] || BUILD=$REPO/$BUILD
make_work_dir deb

VERSION=$(sed -n 's/.*libraryVersion = CK_VERSION(major: \([0-9]*\), minor: \([0-9]*\)).*/\1.\2/p' \
    "$REPO/Sources/P11Proxy/Entry/Info.swift")
DEB=${DEB:-$BUILD/deb/${PACKAGE}_${VERSION}_$(dpkg --print-architecture).deb}
if [[ ! -f $DEB ]]; then
    fail "the package is built" "$DEB not found: make deb"
    finish
fi
CLI_BIN=$BUILD/bin/p11proxy
MODULE_DIR=$(pkg-config --variable=p11_module_path p11-kit-1)
MODULE_CONFIGS=$(pkg-config --variable=p11_module_configs p11-kit-1)
INSTALLED_SO=$MODULE_DIR/libp11proxy.so

# The package's paths, files and directories, without the leading "." (dpkg-deb -c).
package_paths() { dpkg-deb --fsys-tarfile "$DEB" | tar -t | sed -e 's|^\./|/|' -e 's|/$||' | grep -v '^\.\?$'; }
package_files() { dpkg-deb --fsys-tarfile "$DEB" | tar -tv | awk '$1 !~ /^d/ { print $NF }' | sed 's|^\./|/|'; }

# --- 1. the package file -----------------------------------------------------------------
section_file() {
    note "the package file: $DEB"
    check_eq "Package: $PACKAGE" "$PACKAGE" "$(dpkg-deb -f "$DEB" Package)"
    check_eq "Version is the module's libraryVersion (Info.swift)" "$VERSION" "$(dpkg-deb -f "$DEB" Version)"
    check_eq "Architecture is dpkg's" "$(dpkg --print-architecture)" "$(dpkg-deb -f "$DEB" Architecture)"
    # dpkg-shlibdeps: the module needs libc (and libm, in libc6); the command, whose Swift
    # runtime is static, also libstdc++ and libgcc_s.
    check_eq "Depends, from dpkg-shlibdeps, names libc6, libgcc-s1 and libstdc++6" "libc6 libgcc-s1 libstdc++6" \
        "$(dpkg-deb -f "$DEB" Depends | tr ',' '\n' | sed 's/ *(.*//; s/^ *//' | sort | xargs)"

    local expected
    expected=$(sort <<EOF
/usr/bin/p11proxy
$INSTALLED_SO
$MODULE_CONFIGS/p11proxy.module
/usr/share/man/man1/p11proxy.1.gz
/usr/share/man/man5/p11proxy.module.5.gz
/usr/share/bash-completion/completions/p11proxy
/usr/share/zsh/vendor-completions/_p11proxy
/usr/share/fish/vendor_completions.d/p11proxy.fish
/usr/share/doc/p11proxy/copyright
/usr/share/doc/p11proxy/changelog.gz
/usr/share/lintian/overrides/p11proxy
EOF
)
    check_eq "the package holds exactly the expected files" "$expected" "$(package_files | sort)"
    check_eq "no conffiles (the .module is a package module file; /etc/pkcs11/modules overrides it)" "" \
        "$(dpkg-deb --ctrl-tarfile "$DEB" | tar -t | grep conffiles || true)"

    mkdir -p "$WORK/unpacked"
    dpkg-deb -x "$DEB" "$WORK/unpacked"
    check_eq "the packaged .module names the library by file name and keeps disable-in: p11-kit-proxy" \
        "module: libp11proxy.so|disable-in: p11-kit-proxy" \
        "$(grep -E '^(module|disable-in):' "$WORK/unpacked$MODULE_CONFIGS/p11proxy.module" | paste -sd '|')"
    check_eq "the packaged command prints the same help as the built one" \
        "$("$CLI_BIN" --help 2>&1)" "$("$WORK/unpacked/usr/bin/p11proxy" --help 2>&1)"

    # Both pages, as installed: mandoc's lint (warnings and worse; its "style" level would
    # also report the cross-references to pages not installed here) and groff's warnings.
    local page name
    for page in man1/p11proxy.1.gz man5/p11proxy.module.5.gz; do
        name=$(basename "$page" .gz)
        run "lint-$name" mandoc -Tlint -W warning "$WORK/unpacked/usr/share/man/$page"
        check_eq "mandoc -Tlint: no warnings in $name" "" "$(cat "$RUN_DIR/lint-$name.out" "$RUN_DIR/lint-$name.err")"
        run "groff-$name" env MANWIDTH=80 man --warnings -l "$WORK/unpacked/usr/share/man/$page"
        check_eq "man --warnings -l $name: exit 0, no warnings" "0:" "$RUN_RC:$(cat "$RUN_DIR/groff-$name.err")"
    done
    check_contains "p11proxy(1) documents trace's --output (from the command's own definitions)" \
        "Write the records to FILE" "$(cat "$RUN_DIR/groff-p11proxy.1.out")"
    check_contains "p11proxy.module(5) documents x-init-reserved" "config-dir=DIR" \
        "$(cat "$RUN_DIR/groff-p11proxy.module.5.out")"

    # Every key the reader knows is in p11proxy.module(5), so a key added to ConfigKey.swift
    # without a line in the page fails here.
    local key missing=()
    for key in $(sed -n 's/.*public static let [A-Za-z]* = "\([^"]*\)".*/\1/p' "$REPO/Sources/P11ProxyConfig/ConfigKey.swift"); do
        [[ $key == trust-policy ]] && continue  # p11-kit's trust module's key; p11proxy only names it
        grep -qF -- "$key" "$REPO/man/p11proxy.module.5" || missing+=("$key")
    done
    check_eq "p11proxy.module(5) names every key of ConfigKey.swift" "" "${missing[*]}"

    run lintian lintian --fail-on error,warning -EvIL +pedantic --show-overrides "$DEB"
    note "lintian (O: overridden, reasons in packaging/debian/lintian-overrides):" \
        "$(grep -vE '^N:' "$RUN_DIR/lintian.out")"
    check_eq "lintian: no errors or warnings" "0:" "$RUN_RC:$(grep -E '^[EW]:' "$RUN_DIR/lintian.out" || true)"
    check_eq "lintian: no tag left unoverridden (info, pedantic and experimental included)" "" \
        "$(grep -E '^[EWIPX]:' "$RUN_DIR/lintian.out" || true)"

    # Reproducible: the same tree and commit give the same bytes (dates from the commit).
    local again=$WORK/again
    mkdir -p "$again"
    # -o: the module and the command as built, even if the sources changed since.
    run rebuild-install make -s -C "$REPO" -o "$PROXY_SO" -o "$CLI_BIN" PROXY_SO="$PROXY_SO" CLI_BIN="$CLI_BIN" \
        install-strip PREFIX=/usr DESTDIR="$again/debian/$PACKAGE"
    run rebuild bash "$REPO/scripts/build-deb.sh" "$again"
    if cmp -s "$DEB" "$again/$(basename "$DEB")"; then
        pass "a second build of this commit is byte-identical"
    else
        fail "a second build of this commit is byte-identical" "$DEB and $again/$(basename "$DEB") differ" \
            "(a package built before the last commit differs by its dates: make deb, then test)" \
            "$(diff <(dpkg-deb -c "$DEB") <(dpkg-deb -c "$again/$(basename "$DEB")") | head -n 6)"
    fi
}

# --- 2. installed with dpkg, as root ------------------------------------------------------
INSTALLED=no
# dpkg_run NAME ARGS...: dpkg, waiting (up to 2 minutes) while another dpkg or apt holds the
# lock; the result as `run` leaves it.
dpkg_run() {
    local name=$1 tries=0
    shift
    while :; do
        run "$name" dpkg "$@"
        if ((RUN_RC == 0)) || ! grep -q 'lock' "$RUN_DIR/$name.err" || ((++tries > 60)); then return; fi
        sleep 2
    done
}
# On any exit, a failed check or a signal included: purge what was installed. A signal may
# come while this script's dpkg still holds the lock, hence dpkg_run's waiting.
cleanup() {
    trap - EXIT INT TERM HUP
    if [[ $INSTALLED == yes ]]; then
        dpkg_run cleanup-purge --purge "$PACKAGE"
        if ((RUN_RC != 0)); then
            echo "warning: dpkg --purge $PACKAGE failed: remove it by hand" >&2
            cat "$RUN_DIR/cleanup-purge.err" >&2
        fi
    fi
    remove_work_dir
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

as_root() {
    env HOME="$WORK/home" XDG_CONFIG_HOME="$WORK/home/.config" SOFTHSM2_CONF="$WORK/store/softhsm2.conf" \
        MANPAGER=cat PAGER=cat MANWIDTH=80 timeout "$CALL_TIMEOUT" "$@"
}
# What each of the package's paths is before the install: compared after the purge.
path_states() {
    local path
    while read -r path; do
        if [[ -e $path || -L $path ]]; then echo "$(stat -c '%F %a' "$path") $path"; else echo "absent $path"; fi
    done < <(package_paths)
}
module_section() {
    awk -v name="$2" '/^[^ ]/ { on = ($1 == name ":") } on' "$1"
}

section_installed() {
    note "installed with dpkg"
    if (($(id -u) != 0)); then
        skip "dpkg install" "not root"
        return
    fi
    if dpkg-query -W -f='${Status}' "$PACKAGE" 2>/dev/null | grep -q installed; then
        skip "dpkg install" "$PACKAGE is installed here already: dpkg --purge $PACKAGE first"
        return
    fi
    local present
    present=$(package_files | while read -r f; do if [[ -e $f ]]; then echo "$f"; fi; done)
    if [[ -n $present ]]; then
        skip "dpkg install" "files of the package exist already (make uninstall?): $(xargs <<<"$present")"
        return
    fi
    require_softhsm_and_proxy
    mkdir -p "$WORK/home"
    make_softhsm_token "$WORK/store" deb-token
    local before
    before=$(path_states)
    run list-before as_root p11-kit list-modules

    INSTALLED=yes
    dpkg_run install --install "$DEB"
    check_eq "dpkg --install exits 0" 0 "$RUN_RC"
    check_eq "dpkg: installed, at the module's version" "install ok installed $VERSION" \
        "$(dpkg-query -W -f='${Status} ${Version}' "$PACKAGE" 2>&1)"
    check_eq "dpkg -L lists the package's files" "$(package_files | sort)" \
        "$(dpkg -L "$PACKAGE" | while read -r p; do [[ -f $p ]] && echo "$p"; done | sort)"

    # p11proxy reads p11-kit's files (no x-init-reserved), where SoftHSM2's package module
    # file is, and leaves out its own .module (itself).
    check_run "p11-kit list-modules exits 0 with the package installed" list as_root p11-kit list-modules
    module_section "$RUN_DIR/list.out" "$PACKAGE" >"$WORK/p11proxy.section"
    check_contains "p11-kit list-modules shows p11proxy (module: libp11proxy.so, in its module directory)" \
        "p11proxy: libp11proxy.so" "$(cat "$WORK/p11proxy.section")"
    check_contains "p11-kit list-modules shows p11proxy's version, the package's" \
        "library-version: $VERSION" "$(cat "$WORK/p11proxy.section")"
    check_contains "p11-kit list-modules shows the SoftHSM2 token under p11proxy" \
        "token: deb-token" "$(cat "$WORK/p11proxy.section")"

    check_run "p11proxy list (the installed command) exits 0" cli-list as_root /usr/bin/p11proxy list
    check_contains "p11proxy list shows the SoftHSM2 token" "token: deb-token" "$RUN_OUT"
    check_contains "p11proxy list leaves out p11proxy's own .module" "$MODULE_CONFIGS/p11proxy.module" \
        "$(sed -n '/^skipped:/,$p' "$RUN_DIR/cli-list.out")"

    check_eq "man -w p11proxy finds the installed page" /usr/share/man/man1/p11proxy.1.gz "$(as_root man -w p11proxy 2>&1)"
    check_run "man p11proxy renders" man1 as_root man p11proxy
    check_contains "man p11proxy shows the subcommands" "stats" "$RUN_OUT"
    check_eq "man p11proxy: no warnings" "" "$(cat "$RUN_DIR/man1.err")"
    check_run "man p11proxy.module renders" man5 as_root man 5 p11proxy.module
    check_contains "man p11proxy.module shows the keys" "x-log-format" "$RUN_OUT"

    # Each shell, from where it looks by default, completes "p11proxy li" to "list".
    run bash-complete as_root bash --norc -c '
        source /usr/share/bash-completion/completions/p11proxy
        COMP_LINE="p11proxy li"; COMP_POINT=${#COMP_LINE}; COMP_WORDS=(p11proxy li); COMP_CWORD=1
        fn=$(complete -p p11proxy | sed -n "s/.* -F \([^ ]*\) .*/\1/p")
        "$fn" p11proxy li p11proxy; printf "%s\n" "${COMPREPLY[@]}"'
    check_eq "bash completes 'p11proxy li' to list" list "$(xargs <<<"$RUN_OUT")"
    run zsh-complete as_root zsh -fc "autoload -Uz compinit && compinit -u -d '$WORK/zcompdump' && print -r -- \${_comps[p11proxy]}"
    check_eq "zsh's compinit finds _p11proxy in its default fpath" _p11proxy "$RUN_OUT"
    # Not --no-config: that also empties fish's completion path. HOME is the test's own.
    run fish-complete as_root fish -c 'complete -C "p11proxy li"'
    check_eq "fish completes 'p11proxy li' to list" list "$(cut -f1 <<<"$RUN_OUT" | xargs)"

    dpkg_run remove --remove "$PACKAGE"
    check_eq "dpkg --remove exits 0" 0 "$RUN_RC"
    present=$(package_files | while read -r f; do if [[ -e $f ]]; then echo "$f"; fi; done)
    check_eq "after --remove none of the package's files is left" "" "$present"
    run list-removed as_root p11-kit list-modules
    check_eq "after --remove p11-kit list-modules is as before" "$(cat "$RUN_DIR/list-before.out")" \
        "$(cat "$RUN_DIR/list-removed.out")"
    dpkg_run purge --purge "$PACKAGE"
    check_eq "dpkg --purge exits 0" 0 "$RUN_RC"
    INSTALLED=no
    check_eq "after --purge dpkg knows nothing of $PACKAGE" "" \
        "$(dpkg-query -W -f='${Status}' "$PACKAGE" 2>/dev/null | grep -v '^unknown ok not-installed$' || true)"
    check_eq "after --purge no dpkg database files of $PACKAGE are left" "" \
        "$(find /var/lib/dpkg/info -name "$PACKAGE.*" -o -name "$PACKAGE:*" | xargs)"
    check_eq "after --purge every path of the package is as it was before the install" "$before" "$(path_states)"
}

section_file
section_installed
note "took $((SECONDS - START)) s"
finish
