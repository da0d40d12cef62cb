#!/bin/bash
# Fetch the real-world corpus: the Debian packages named in packages.txt, downloaded with
# apt-get download and unpacked with dpkg-deb -x into $FWTOOLS_CORPUS (default
# /var/cache/fwtools-corpus), outside the repository. Idempotent: a package whose .deb is
# already in the cache at the version the archive serves is not downloaded again.
# Needs root (apt sources, dpkg architecture) and network access to the Debian archive.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${FWTOOLS_CORPUS:-/var/cache/fwtools-corpus}"
mkdir -p "$cache/debs" "$cache/root"

# A trixie source pinned low, so nothing installed on this machine moves to trixie.
if ! grep -rqs 'trixie' /etc/apt/sources.list.d/; then
    cat > /etc/apt/sources.list.d/fwtools-trixie.sources <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi
cat > /etc/apt/preferences.d/fwtools-trixie <<'PIN'
Package: *
Pin: release n=trixie
Pin-Priority: 100
PIN
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    dpkg --add-architecture arm64
fi
apt-get update -q >/dev/null

resolve_meta() {  # suite arch name -> the versioned package the meta package depends on
    local suite=$1 arch=$2 name=$3
    apt-cache show "$name:$arch/$suite" 2>/dev/null \
        | awk -F': ' '/^Depends:/{print $2; exit}' | tr ',' '\n' \
        | sed -e 's/^ *//' -e 's/ .*//' -e 's/:.*//' | grep -m1 '^linux-image-'
}

manifest="$cache/manifest.tsv.new"
: > "$manifest"
while read -r suite arch name kind; do
    [[ -z "$suite" || "$suite" == \#* ]] && continue
    if [[ "${kind:-}" == meta ]]; then
        name="$(resolve_meta "$suite" "$arch" "$name")"
    fi
    spec="$name:$arch/$suite"
    [[ "$arch" == all ]] && spec="$name/$suite"
        version="$(apt-cache show "$spec" | awk -F': ' '/^Version:/{print $2; exit}')"
    debarch="$(apt-cache show "$spec" | awk -F': ' '/^Architecture:/{print $2; exit}')"
    dir="$cache/debs/$suite/$arch"
    mkdir -p "$dir"
    chown _apt "$dir" 2>/dev/null || true
    want="${name}_${version//:/%3a}_${debarch}.deb"
    deb="$dir/$want"
    if [[ ! -s "$deb" ]]; then
        rm -f "$dir/${name}_"*.deb
        (cd "$dir" && apt-get download -q "$spec" >/dev/null)
    fi
    dest="$cache/root/$suite/$arch/$name"
    rm -rf "$dest"
    mkdir -p "$dest"
    dpkg-deb -x "$deb" "$dest"
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$suite" "$arch" "$name" "$version" \
        "$(sha256sum "$deb" | cut -d' ' -f1)" "${deb#"$cache/"}" >> "$manifest"
    echo "corpus: $suite $arch $name $version"
done < "$here/packages.txt"
mv "$manifest" "$cache/manifest.tsv"
echo "corpus ready in $cache ($(wc -l < "$cache/manifest.tsv") packages)"
