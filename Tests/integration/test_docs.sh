#!/usr/bin/env bash
# The documentation against the sources, with no build: every configuration key of
# Sources/P11ProxyConfig/ConfigKey.swift in docs/configuration.md's keys table and back, every
# P11PROXY_* variable read in Sources/ in its environment table and back, every subcommand of
# the p11proxy command in docs/command.md and back, README.md's length and its two commands,
# and every relative link in README.md and docs/*.md.
set -uo pipefail
# shellcheck source=Tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
DOCS=${DOCS_DIR:-$REPO/docs}
README=${README_FILE:-$REPO/README.md}

# table_rows FILE HEADING: the table rows ("| ...") of the section under "## HEADING".
table_rows() {
    awk -v h="## $2" '
        $0 == h { on = 1; next }
        on && /^#/ { exit }
        on && /^\|/ { print }' "$1"
}

# compare DESC DOC_LABEL SOURCE_LABEL DOCUMENTED EXISTING: both lists (one item a line) must
# hold the same items.
compare() {
    local missing extra
    missing=$(comm -13 <(sort -u <<<"$4") <(sort -u <<<"$5") | sed '/^$/d')
    extra=$(comm -23 <(sort -u <<<"$4") <(sort -u <<<"$5") | sed '/^$/d')
    if [[ -z $missing ]]; then
        pass "$1: every one of $3 is in $2"
    else
        fail "$1: every one of $3 is in $2" "undocumented: $(tr '\n' ' ' <<<"$missing")"
    fi
    if [[ -z $extra ]]; then
        pass "$1: every one in $2 exists in $3"
    else
        fail "$1: every one in $2 exists in $3" "documented but not in the sources: $(tr '\n' ' ' <<<"$extra")"
    fi
}

# --- configuration keys -----------------------------------------------------------------
key_source=$REPO/Sources/P11ProxyConfig/ConfigKey.swift
source_keys=$(sed -n 's/.*static let [A-Za-z_][A-Za-z0-9_]* = "\([^"]*\)".*/\1/p' "$key_source")
# First cell of each row: the `key:` names in backquotes (a row may name two).
doc_keys=$(table_rows "$DOCS/configuration.md" Keys | awk -F'|' 'NR > 2 { print $2 }' |
    grep -oE '`[a-z][a-z0-9-]*:`' | tr -d '`:')
if [[ -z $source_keys ]]; then
    fail "configuration keys read from ConfigKey.swift" "no 'static let NAME = \"key\"' in $key_source"
elif [[ -z $doc_keys ]]; then
    fail "configuration keys table found in docs/configuration.md" "no rows under '## Keys'"
else
    compare "configuration keys" "docs/configuration.md's keys table" "ConfigKey.swift" "$doc_keys" "$source_keys"
fi

# --- environment variables --------------------------------------------------------------
# String literals that are a whole variable name (the bare prefix "P11PROXY_" is not one).
source_vars=$(grep -rhoE '"P11PROXY_[A-Z_]*[A-Z]"' "$REPO/Sources" | tr -d '"')
doc_vars=$(table_rows "$DOCS/configuration.md" "Environment variables" | awk -F'|' 'NR > 2 { print $2 }' |
    grep -oE 'P11PROXY_[A-Z_]*[A-Z]')
if [[ -z $source_vars || -z $doc_vars ]]; then
    fail "environment variables found" "in Sources: $(wc -w <<<"$source_vars"), in the table: $(wc -w <<<"$doc_vars")"
else
    compare "P11PROXY_* variables" "docs/configuration.md's environment table" "Sources/" "$doc_vars" "$source_vars"
fi

# --- subcommands ------------------------------------------------------------------------
source_cmds=$(grep -rhoE 'commandName: *"[^"]+"' "$REPO/Sources/P11ProxyCLI" | sed -E 's/.*"(.*)"/\1/' |
    grep -vx p11proxy)
doc_cmds=$(sed -nE 's/^## `?p11proxy ([a-z][a-z0-9-]*)`?.*/\1/p' "$DOCS/command.md")
if [[ -z $source_cmds || -z $doc_cmds ]]; then
    fail "subcommands found" "in Sources/P11ProxyCLI: $(wc -w <<<"$source_cmds"), '## p11proxy NAME' headings: $(wc -w <<<"$doc_cmds")"
else
    compare "subcommands" "docs/command.md's '## p11proxy NAME' headings" "Sources/P11ProxyCLI" "$doc_cmds" "$source_cmds"
fi

# --- README -----------------------------------------------------------------------------
lines=$(wc -l <"$README")
if ((lines <= 210)); then
    pass "README.md has at most 210 lines ($lines)"
else
    fail "README.md has at most 210 lines" "it has $lines: move the rest to docs/"
fi
check_contains "README.md names make demo" "make demo" "$(cat "$README")"
check_contains "README.md names make test" "make test" "$(cat "$README")"

# --- links ------------------------------------------------------------------------------
# Markdown links [text](target): those without a scheme or a leading # must name an existing
# file or folder, relative to the linking file (an #anchor after it is not checked).
broken=()
for file in "$README" "$DOCS"/*.md; do
    while IFS= read -r target; do
        target=${target%%#*}
        [[ -z $target || $target =~ ^[a-z]+: ]] && continue
        [[ -e $(dirname "$file")/$target ]] || broken+=("${file#"$REPO"/}: $target")
    done < <(grep -oE '\]\([^) ]+\)' "$file" | sed -E 's/^\]\((.*)\)$/\1/')
done
if ((${#broken[@]} == 0)); then
    pass "every relative link in README.md and docs/*.md names an existing file"
else
    fail "every relative link in README.md and docs/*.md names an existing file" "${broken[@]}"
fi

finish
