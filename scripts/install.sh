#!/usr/bin/env bash
# `make install` / `make uninstall`: puts libp11proxy.so in p11-kit's module
# directory and p11proxy.module where p11-kit reads module files, so `p11-kit list-modules`
# shows p11proxy; the `p11proxy` command goes to BINDIR when one was built, with its man page
# and shell completions, and p11proxy.module(5) to MANDIR.
#
#   scripts/install.sh install | install-strip | uninstall | files
#
# Everything comes from the environment (the Makefile sets it, see its "Install" block):
#   DESTDIR           staging root, prefixed to every path written (never to the contents)
#   PREFIX            recorded in the manifest's location only
#   MODULE_DIR        where libp11proxy.so goes
#   MODULE_CONF_DIR   where p11proxy.module goes
#   P11KIT_MODULE_DIR p11-kit's own module directory: a library there is named by its bare
#                     file name in the .module file (as conf/p11proxy.module ships), any
#                     other directory by its absolute path
#   BINDIR, CLI_BIN   the `p11proxy` command and where it goes (CLI_BIN empty: none)
#   PROXY_SO          the module to install
#   PROXY_CONFIG_DIR  non-empty: the .module gets `x-init-reserved: config-dir=DIR`
#   MANDIR, MAN_BUILD_DIR  p11proxy.1 (with the command) and p11proxy.module.5, built in
#                     MAN_BUILD_DIR, go to MANDIR/man1 and MANDIR/man5
#   BASH_COMPLETION_DIR, ZSH_COMPLETION_DIR, FISH_COMPLETION_DIR, COMPLETIONS_BUILD_DIR
#                     the command's completions, built in COMPLETIONS_BUILD_DIR, installed as
#                     p11proxy, _p11proxy and p11proxy.fish
#   (CLI_BIN, MAN_BUILD_DIR or COMPLETIONS_BUILD_DIR empty: those files are not installed)
#
# Install records what it wrote and which directories it had to create in
# $DESTDIR$PREFIX/share/p11proxy/install-manifest; uninstall removes exactly those files,
# then those directories if they are empty, then the manifest. Without a manifest (installed
# by something else) uninstall removes the files install would write and no directory.
set -euo pipefail

action=${1:?usage: install.sh install|install-strip|uninstall|files}
: "${PREFIX:?}" "${MODULE_DIR:?}" "${MODULE_CONF_DIR:?}" "${P11KIT_MODULE_DIR:?}" "${PROXY_SO:?}"
DESTDIR=${DESTDIR:-}
BINDIR=${BINDIR:-$PREFIX/bin}
CLI_BIN=${CLI_BIN:-}
PROXY_CONFIG_DIR=${PROXY_CONFIG_DIR:-}
MANDIR=${MANDIR:-$PREFIX/share/man}
MAN_BUILD_DIR=${MAN_BUILD_DIR:-}
COMPLETIONS_BUILD_DIR=${COMPLETIONS_BUILD_DIR:-}
BASH_COMPLETION_DIR=${BASH_COMPLETION_DIR:-$PREFIX/share/bash-completion/completions}
ZSH_COMPLETION_DIR=${ZSH_COMPLETION_DIR:-$PREFIX/share/zsh/site-functions}
FISH_COMPLETION_DIR=${FISH_COMPLETION_DIR:-$PREFIX/share/fish/vendor_completions.d}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

MANIFEST_DIR=$PREFIX/share/p11proxy
MANIFEST=$MANIFEST_DIR/install-manifest

# The files install writes, without DESTDIR.
installed_files() {
    echo "$MODULE_DIR/libp11proxy.so"
    echo "$MODULE_CONF_DIR/p11proxy.module"
    if [[ -n $CLI_BIN ]]; then echo "$BINDIR/p11proxy"; fi
    if [[ -n $MAN_BUILD_DIR ]]; then
        echo "$MANDIR/man5/p11proxy.module.5"
        if [[ -n $CLI_BIN ]]; then echo "$MANDIR/man1/p11proxy.1"; fi
    fi
    if [[ -n $CLI_BIN && -n $COMPLETIONS_BUILD_DIR ]]; then
        echo "$BASH_COMPLETION_DIR/p11proxy"
        echo "$ZSH_COMPLETION_DIR/_p11proxy"
        echo "$FISH_COMPLETION_DIR/p11proxy.fish"
    fi
}

# install_data SOURCE TARGET: mode 0644, TARGET's directories made (and recorded) first.
install_data() {
    make_dir "$(dirname "$2")"
    install -m 0644 "$1" "$DESTDIR$2"
}

# The shipped conf/p11proxy.module, with the library's path when it is not in p11-kit's
# module directory (p11-kit resolves a bare name only there) and the config dir if asked.
module_file() {
    local library=libp11proxy.so
    if [[ $(realpath -m "$MODULE_DIR") != $(realpath -m "$P11KIT_MODULE_DIR") ]]; then
        library=$MODULE_DIR/libp11proxy.so
    fi
    sed -e "s|^module:.*|module: $library|" "$REPO/conf/p11proxy.module"
    if [[ -n $PROXY_CONFIG_DIR ]]; then
        printf '\n# Written by make install (PROXY_CONFIG_DIR).\nx-init-reserved: config-dir=%s\n' "$PROXY_CONFIG_DIR"
    fi
}

# make_dir DIR: mkdir -p, recording every directory it creates (outermost first) as "d DIR".
created=()
make_dir() {
    local dir=$1 missing=()
    while [[ $dir != / && ! -d $DESTDIR$dir ]]; do
        missing=("$dir" "${missing[@]}")
        dir=$(dirname "$dir")
    done
    for dir in "${missing[@]}"; do
        mkdir -m 0755 "$DESTDIR$dir"
        created+=("$dir")
    done
}

do_install() {
    local strip=$1 previous=() file
    [[ -f $PROXY_SO ]] || { echo "install.sh: $PROXY_SO not built (make build)" >&2; exit 1; }
    for file in "$CLI_BIN" "${MAN_BUILD_DIR:+$MAN_BUILD_DIR/p11proxy.module.5}" \
        "${CLI_BIN:+${MAN_BUILD_DIR:+$MAN_BUILD_DIR/p11proxy.1}}" \
        "${CLI_BIN:+${COMPLETIONS_BUILD_DIR:+$COMPLETIONS_BUILD_DIR/p11proxy.bash}}"; do
        if [[ -n $file && ! -f $file ]]; then
            echo "install.sh: $file not built (make build man completions)" >&2
            exit 1
        fi
    done
    # Directories an earlier install created stay recorded, so reinstalling is harmless.
    if [[ -f $DESTDIR$MANIFEST ]]; then
        mapfile -t previous < <(grep '^d ' "$DESTDIR$MANIFEST" || true)
    fi

    # The staging root itself belongs to the packager, not to the manifest.
    if [[ -n $DESTDIR ]]; then mkdir -p "$DESTDIR"; fi
    make_dir "$MODULE_DIR"
    install -m 0644 "$PROXY_SO" "$DESTDIR$MODULE_DIR/libp11proxy.so"
    if [[ $strip == yes ]]; then strip --strip-unneeded --remove-section=.comment "$DESTDIR$MODULE_DIR/libp11proxy.so"; fi
    make_dir "$MODULE_CONF_DIR"
    module_file >"$DESTDIR$MODULE_CONF_DIR/p11proxy.module.tmp"
    chmod 0644 "$DESTDIR$MODULE_CONF_DIR/p11proxy.module.tmp"
    mv -f "$DESTDIR$MODULE_CONF_DIR/p11proxy.module.tmp" "$DESTDIR$MODULE_CONF_DIR/p11proxy.module"
    if [[ -n $CLI_BIN ]]; then
        make_dir "$BINDIR"
        install -m 0755 "$CLI_BIN" "$DESTDIR$BINDIR/p11proxy"
        if [[ $strip == yes ]]; then strip --strip-unneeded --remove-section=.comment "$DESTDIR$BINDIR/p11proxy"; fi
    fi
    if [[ -n $MAN_BUILD_DIR ]]; then
        install_data "$MAN_BUILD_DIR/p11proxy.module.5" "$MANDIR/man5/p11proxy.module.5"
        if [[ -n $CLI_BIN ]]; then install_data "$MAN_BUILD_DIR/p11proxy.1" "$MANDIR/man1/p11proxy.1"; fi
    fi
    if [[ -n $CLI_BIN && -n $COMPLETIONS_BUILD_DIR ]]; then
        install_data "$COMPLETIONS_BUILD_DIR/p11proxy.bash" "$BASH_COMPLETION_DIR/p11proxy"
        install_data "$COMPLETIONS_BUILD_DIR/_p11proxy" "$ZSH_COMPLETION_DIR/_p11proxy"
        install_data "$COMPLETIONS_BUILD_DIR/p11proxy.fish" "$FISH_COMPLETION_DIR/p11proxy.fish"
    fi
    make_dir "$MANIFEST_DIR"
    {
        echo "# p11proxy make install: f = file written, d = directory created (uninstall removes these)"
        installed_files | sed 's/^/f /'
        printf '%s\n' "${previous[@]}"
        for file in "${created[@]}"; do echo "d $file"; done
    } | awk 'NF && !seen[$0]++' >"$DESTDIR$MANIFEST"
    chmod 0644 "$DESTDIR$MANIFEST"
    installed_files | sed "s|^|installed $DESTDIR|"
}

do_uninstall() {
    local kind path dirs=()
    if [[ ! -f $DESTDIR$MANIFEST ]]; then
        echo "install.sh: no $DESTDIR$MANIFEST: removing the files install writes, no directories" >&2
        while read -r path; do
            rm -f "$DESTDIR$path"
        done < <(installed_files)
        return
    fi
    while read -r kind path; do
        case $kind in
        f) rm -f "$DESTDIR$path" && echo "removed $DESTDIR$path" ;;
        d) dirs=("$path" "${dirs[@]}") ;;
        esac
    done <"$DESTDIR$MANIFEST"
    rm -f "$DESTDIR$MANIFEST"
    # Innermost first (reverse creation order); a directory something else filled stays.
    for path in "${dirs[@]}"; do
        if [[ -d $DESTDIR$path ]]; then rmdir --ignore-fail-on-non-empty "$DESTDIR$path"; fi
    done
}

case $action in
install) do_install no ;;
install-strip) do_install yes ;;
uninstall) do_uninstall ;;
files) installed_files ;;
*) echo "install.sh: unknown action $action" >&2; exit 2 ;;
esac
