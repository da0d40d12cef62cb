#!/bin/bash
# Fetch the real-world corpus: the Debian packages named in packages.txt, downloaded with
# apt-get download and unpacked with dpkg-deb -x into $FWTOOLS_CORPUS (default
# /var/cache/fwtools-corpus), outside the repository.
#
# Layout (tests/corpus/corpus.py relies on it):
#   debs/<suite>/<arch>/<package>_<version>_<debarch>.deb   the downloaded packages
#   root/<suite>/<arch>/<package>/...                       each package unpacked
#   stamps/<suite>/<arch>/<package>                         sha256 of the .deb unpacked there
#   manifest.tsv   suite, arch, package, version, sha256, deb path, requested name
#                  (the requested name differs from the package for "meta" lines)
#
# Idempotent: a package whose .deb is already cached at the version the archive serves is not
# downloaded again, and is not unpacked again if its stamp matches. Package trees that are no
# longer in the manifest (e.g. the previous kernel ABI) are removed so tests never see two.
# Needs root (apt sources, dpkg architecture) and network access to the Debian archive.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${FWTOOLS_CORPUS:-/var/cache/fwtools-corpus}"
mkdir -p "$cache/debs" "$cache/root" "$cache/stamps"

# Two fetches at once (a developer and CI on one box) would unpack over each other.
exec 9>"$cache/.lock"
if ! flock -w 1800 9; then
    echo "fetch.sh: another fetch holds $cache/.lock" >&2
    exit 1
fi

die() { echo "fetch.sh: $*" >&2; exit 1; }

# The archive is occasionally slow or resets connections; retry instead of failing CI.
retry() {
    local n
    for n in 1 2 3 4; do
        if "$@"; then return 0; fi
        echo "fetch.sh: attempt $n failed: $*" >&2
        sleep $((n * 5))
    done
    return 1
}

# A trixie source pinned low, so nothing installed on this machine moves to trixie.
# Priority 1, not 100: at 100 apt still "upgrades" a package whose installed version came
# from a source that is gone (e.g. a backport) to the trixie one, dragging in trixie's libc.
# apt-get download pkg/trixie and apt-cache show pkg/trixie ignore the pin.
if ! grep -rqs 'trixie' /etc/apt/sources.list.d/ /etc/apt/sources.list; then
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
Pin-Priority: 1
PIN
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    dpkg --add-architecture arm64
fi
retry apt-get update -q >/dev/null || die "apt-get update failed"

# Docker-style images set Dir::Cache::pkgcache "" (docker-clean), so every apt-cache call
# rebuilds the package cache from the lists (~2 s with trixie + arm64). A private cache for
# this run makes the ~60 calls below instant.
aptcache="$(mktemp -d)"
trap 'rm -rf "$aptcache"' EXIT
apt_cache() {
    apt-cache -o "Dir::Cache::pkgcache=$aptcache/pkgcache.bin" \
        -o "Dir::Cache::srcpkgcache=$aptcache/srcpkgcache.bin" "$@"
}

resolve_meta() {  # suite arch name -> the versioned package the meta package depends on
    local suite=$1 arch=$2 name=$3
    apt_cache show "$name:$arch/$suite" 2>/dev/null \
        | awk -F': ' '!n && /^Depends:/ {print $2; n = 1}' | tr ',' '\n' \
        | sed -e 's/^ *//' -e 's/ .*//' -e 's/:.*//' | grep -m1 '^linux-image-' || true
}

field() {  # spec field -> the field of the candidate apt-cache shows first
    # awk reads to the end (no early exit): under pipefail a SIGPIPE'd apt-cache would abort.
    apt_cache show "$1" 2>/dev/null | awk -F': ' -v f="$2" '!n && $1 == f {print $2; n = 1}'
}

manifest="$cache/manifest.tsv.new"
: > "$manifest"
declare -A keep=()
while read -r suite arch requested kind; do
    [[ -z "$suite" || "$suite" == \#* ]] && continue
    name="$requested"
    if [[ "${kind:-}" == meta ]]; then
        name="$(resolve_meta "$suite" "$arch" "$requested")"
        [[ -n "$name" ]] || die "$suite/$arch: cannot resolve meta package $requested"
    fi
    spec="$name:$arch/$suite"
    [[ "$arch" == all ]] && spec="$name/$suite"
    version="$(field "$spec" Version)"
    debarch="$(field "$spec" Architecture)"
    [[ -n "$version" && -n "$debarch" ]] || die "$spec: not in the apt lists (packages.txt typo?)"

    dir="$cache/debs/$suite/$arch"
    mkdir -p "$dir"
    # apt-get download drops privileges to _apt, which must be able to write here.
    chown _apt "$dir" 2>/dev/null || true
    deb="$dir/${name}_${version//:/%3a}_${debarch}.deb"
    if [[ ! -s "$deb" ]]; then
        rm -f "$dir/${name}_"*.deb
        (cd "$dir" && retry apt-get download -q "$spec" >/dev/null) || die "$spec: download failed"
        [[ -s "$deb" ]] || die "$spec: apt-get download did not produce $deb"
    fi
    sha="$(sha256sum "$deb" | cut -d' ' -f1)"

    dest="$cache/root/$suite/$arch/$name"
    stamp="$cache/stamps/$suite/$arch/$name"
    if [[ ! -d "$dest" || "$(cat "$stamp" 2>/dev/null)" != "$sha" ]]; then
        # Unpack beside the target and rename, so an interrupted run never leaves a
        # half-unpacked tree that looks complete.
        rm -rf "$dest.tmp" "$stamp"
        mkdir -p "$dest.tmp" "$(dirname "$stamp")"
        dpkg-deb -x "$deb" "$dest.tmp"
        rm -rf "$dest"
        mv "$dest.tmp" "$dest"
        echo "$sha" > "$stamp"
    fi
    keep["$suite/$arch/$name"]=1
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$suite" "$arch" "$name" "$version" "$sha" \
        "${deb#"$cache/"}" "$requested" >> "$manifest"
    echo "corpus: $suite $arch $name $version"
done < "$here/packages.txt"

# Drop package trees that this run did not produce (superseded kernels, removed lines).
for d in "$cache"/root/*/*/*; do
    [[ -d "$d" ]] || continue
    rel="${d#"$cache/root/"}"
    if [[ -z "${keep[$rel]:-}" ]]; then
        echo "corpus: removing stale $rel"
        rm -rf "$d" "$cache/stamps/$rel"
    fi
done

mv "$manifest" "$cache/manifest.tsv"
echo "corpus ready in $cache ($(wc -l < "$cache/manifest.tsv") packages)"
