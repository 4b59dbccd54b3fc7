#!/usr/bin/env bash
# `make deb`: turns the tree `make install-strip PREFIX=/usr DESTDIR=ROOT` wrote into a Debian
# binary package with dpkg's own tools (dpkg-shlibdeps, dpkg-gencontrol, dpkg-deb), so the
# package holds exactly what `make install` installs, in Debian's form.
#
#   scripts/build-deb.sh DEB_DIR
#
# DEB_DIR is laid out as dpkg's tools expect a source tree: DEB_DIR/debian/control and
# changelog (written here), ROOT = DEB_DIR/debian/p11proxy; the package is DEB_DIR/NAME.deb.
#
# The version is the module's own (libraryVersion in Sources/P11Proxy/Entry/Info.swift, what
# C_GetInfo and `p11-kit list-modules` report), as a native package: p11proxy is packaged by
# its own repository. Dates come from SOURCE_DATE_EPOCH, else from the last commit, so two
# builds of one commit give the same package.
set -euo pipefail

deb_dir=$(cd "${1:?usage: build-deb.sh DEB_DIR}" && pwd)
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
package=p11proxy
root=$deb_dir/debian/$package
[[ -d $root/usr ]] || { echo "build-deb.sh: $root/usr missing: make install-strip PREFIX=/usr DESTDIR=$root first" >&2; exit 1; }

version=$(sed -n 's/.*libraryVersion = CK_VERSION(major: \([0-9]*\), minor: \([0-9]*\)).*/\1.\2/p' \
    "$REPO/Sources/P11Proxy/Entry/Info.swift")
[[ $version =~ ^[0-9]+\.[0-9]+$ ]] || { echo "build-deb.sh: no libraryVersion in Info.swift" >&2; exit 1; }
if [[ -z ${SOURCE_DATE_EPOCH:-} ]]; then
    SOURCE_DATE_EPOCH=$(git -C "$REPO" log -1 --format=%ct 2>/dev/null || date +%s)
fi
export SOURCE_DATE_EPOCH
commit=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)

# dpkg tracks the package's files itself; install.sh's manifest is for `make uninstall`.
rm -f "$root/usr/share/p11proxy/install-manifest"
rmdir "$root/usr/share/p11proxy"

# Debian policy 12.3: man pages compressed with gzip -9n (no name or time stamp inside).
find "$root/usr/share/man" -type f -name '*.[1-9]' -exec gzip -9n {} +

work=$deb_dir
cp "$REPO/packaging/debian/control" "$work/debian/control"
maintainer=$(sed -n 's/^Maintainer: //p' "$work/debian/control")
{
    echo "$package ($version) unstable; urgency=medium"
    echo
    echo "  * Built from p11proxy's repository at commit $commit."
    echo
    echo " -- $maintainer  $(date -u -R -d "@$SOURCE_DATE_EPOCH")"
} >"$work/debian/changelog"

doc=$root/usr/share/doc/$package
install -d -m 0755 "$doc" "$root/usr/share/lintian/overrides"
install -m 0644 "$REPO/packaging/debian/copyright" "$doc/copyright"
# A native package's changelog is changelog.gz (policy 12.7).
gzip -9n -c "$work/debian/changelog" >"$doc/changelog.gz"
chmod 0644 "$doc/changelog.gz"
install -m 0644 "$REPO/packaging/debian/lintian-overrides" "$root/usr/share/lintian/overrides/$package"

# Depends from the libraries the module and the command link (the module: libc and libm; the
# command, whose Swift runtime is static: also libstdc++ and libgcc_s).
# dpkg-shlibdeps finds the package's root by its DEBIAN directory.
install -d -m 0755 "$root/DEBIAN"
(cd "$work" && dpkg-shlibdeps -Tdebian/substvars \
    "debian/$package/usr/bin/p11proxy" "debian/$package"/usr/lib/*/pkcs11/libp11proxy.so)
(cd "$work" && dpkg-gencontrol -p"$package" -v"$version" -Tdebian/substvars -P"$root")

# md5sums of every file (what debsums and lintian check), in dpkg's layout.
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z |
    xargs -0 md5sum) >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/md5sums"

# Same modes whatever the umask, and the time stamps of the commit (reproducible builds).
find "$root" -type d -exec chmod 0755 {} +
find "$root" -exec touch --no-dereference -d "@$SOURCE_DATE_EPOCH" {} +

arch=$(dpkg --print-architecture)
output=$deb_dir/${package}_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$output" >/dev/null
echo "built $output"
