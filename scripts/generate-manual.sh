#!/usr/bin/env bash
# Writes p11proxy(1) from the command's own argument definitions: swift-argument-parser's
# generate-manual plugin (which runs the built command with --experimental-dump-help), then
# a few mechanical fixes so that `mandoc -Tlint` and groff print no warnings.
#
#   scripts/generate-manual.sh OUTPUT      (the Makefile's `man` target)
#
# SWIFT_BUILD_FLAGS must be the flags the command was built with (the Makefile passes them):
# the plugin builds the package before it runs, and other flags would rebuild it all.
# The page's date is the last commit's (SOURCE_DATE_EPOCH if set), so it is reproducible.
set -euo pipefail

output=${1:?usage: generate-manual.sh OUTPUT}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
read -r -a build_flags <<<"${SWIFT_BUILD_FLAGS:--c release}"

if [[ -z ${SOURCE_DATE_EPOCH:-} ]]; then
    SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || date +%s)
fi
date=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%d)

log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! swift package "${build_flags[@]}" plugin generate-manual --date "$date" >"$log" 2>&1; then
    cat "$log" >&2
    exit 1
fi
# "Generated manual in 'file:///.../outputs/P11ProxyCLI/'": where this SwiftPM puts it.
dir=$(sed -n "s|^Generated manual in 'file://\(.*\)'$|\1|p" "$log" | tail -1)
page=${dir%/}/p11proxy.1
[[ -f $page ]] || { cat "$log" >&2; echo "generate-manual.sh: no $page" >&2; exit 1; }

# The generator writes each help text as it is: several sentences on one line (mdoc wants
# each sentence on its own line: "new sentence, new line"), blank lines between paragraphs
# (groff: "Empty input line"), and an empty paragraph where an option's values would be
# listed (mandoc: "Pp before It"). Break text lines after a sentence's end, turn blank lines
# into .Pp, drop a .Pp that a list item or another .Pp follows; then name the other pages.
mkdir -p "$(dirname "$output")"
awk '
    function flush() { if (held) print ".Pp"; held = 0 }
    /^$/ || /^\.Pp$/ { held = 1; next }
    /^\.(It|El|Sh)( |$)/ { held = 0 }
    { flush(); print }
    END {
        print ".Sh SEE ALSO"
        print ".Xr p11proxy.module 5 ,"
        print ".Xr pkcs11.conf 5 ,"
        print ".Xr p11-kit 8"
    }
' "$page" | sed -E "/^[^.']/ s/([.?!]) +([A-Z])/\1\n\2/g" >"$output.tmp"
mv -f "$output.tmp" "$output"
