# Shared by the firmware lab's build scripts (build-ovmf.sh, build-grub.sh, build-shim.sh):
# sourced after the script sets LAB_LOG_NAME. Bash only.

log() { printf '[%s %(%H:%M:%S)T] %s\n' "$LAB_LOG_NAME" -1 "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# pending DEST NAME...: the NAMEs (one a line) whose build, DEST/NAME with its build-info.txt,
# is not cached yet, or all of them under LAB_FORCE; the cached ones are logged as skipped.
pending() {
    local dest=$1 name
    shift
    for name in "$@"; do
        if [ -e "$dest/$name/build-info.txt" ] && [ -z "${LAB_FORCE:-}" ]; then
            log "$name: $dest/$name exists, skipping" >&2
        else
            echo "$name"
        fi
    done
}

# install_missing TOOL:PACKAGE...: apt-get install the packages of the tools not on PATH (a
# minimal set, not `apt-get build-dep`; .ci/run installs them with its other packages).
install_missing() {
    local tool_pkg need=()
    for tool_pkg in "$@"; do
        command -v "${tool_pkg%%:*}" >/dev/null || need+=("${tool_pkg#*:}")
    done
    [ ${#need[@]} -gt 0 ] || return 0
    log "installing ${need[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "${need[@]}"
}

# fetch_source PACKAGE VERSION SUITE LIST: download PACKAGE=VERSION's source files into the
# current directory, first adding a deb-src entry for SUITE (/etc/apt/sources.list.d/LIST)
# when no configured source offers the version. --download-only plus a manual unpack by the
# caller: some mirrors answer 404 for the .dsc while serving the tarballs, and dpkg-source
# needs the .dsc; apt-get fails then but leaves the tarballs, which is all the lab needs. The
# caller checks that the files it needs arrived.
fetch_source() {
    local pkg=$1 version=$2 suite=$3 list=$4
    if ! apt-cache showsrc "$pkg" 2>/dev/null | grep -qx "Version: $version"; then
        log "adding a deb-src entry for $suite"
        as_root tee "/etc/apt/sources.list.d/$list" >/dev/null <<EOF
# tests/e2e/lab/common.sh: Debian source packages for the firmware lab ($suite).
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: $suite
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
        # the builds may run side by side (.ci/run lab_build)
        as_root flock /run/fwtools-lab-apt.lock apt-get update -q
    fi
    log "downloading the $pkg $version source"
    apt-get source --download-only -q "$pkg=$version" || true
}

# remove_stale PREFIX DEST: builds of other keys ($LAB_CACHE/PREFIX-*) than DEST are stale:
# nothing asks for them any more.
remove_stale() {
    local old
    for old in "$LAB_CACHE/$1"-*; do
        [ "$old" = "$2" ] || [ ! -d "$old" ] || { log "removing stale $old"; rm -rf "$old"; }
    done
}

# fetch_debian_source PACKAGE VERSION SUITE LIST ORIG DEB: ORIG and DEB (the orig and debian
# tarballs) into the current directory, fetched unless both are here; fails naming them when
# the archive no longer has the version.
fetch_debian_source() {
    local pkg=$1 version=$2 suite=$3 list=$4 orig=$5 deb=$6
    { [ -s "$orig" ] && [ -s "$deb" ]; } && return 0
    fetch_source "$pkg" "$version" "$suite" "$list"
    { [ -s "$orig" ] && [ -s "$deb" ]; } && return 0
    echo "$LAB_LOG_NAME.sh: could not fetch $orig and $deb (is $pkg $version still in the" \
         "archive? bump its version in $LAB_LOG_NAME.sh)" >&2
    exit 1
}

# unpack_debian ORIG DEB TREE: a fresh TREE (nothing left of an earlier unpack) from a Debian
# source package's tarballs, with its debian/patches applied in series order.
unpack_debian() {
    local orig=$1 deb=$2 tree=$3 p
    log "unpacking $orig + $deb"
    rm -rf "$tree"
    mkdir -p "$tree"
    tar -xf "$orig" -C "$tree" --strip-components=1
    tar -xf "$deb" -C "$tree"
    while read -r p; do
        case $p in ''|'#'*) continue ;; esac
        patch -d "$tree" -p1 --forward --quiet < "$tree/debian/patches/$p"
    done < "$tree/debian/patches/series"
}
