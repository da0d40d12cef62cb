#!/bin/bash
# Build shim 16.1 (shimx64.efi, shimaa64.efi) from Debian 13's shim source package WITH the
# NX_COMPAT flag, for the firmware lab's NX-shim cases (tests/e2e/lab/matrix.py NXSHIM_CHAINS;
# .ci/run runs this, tests/e2e/test_lab.py boots the result).
#
# Why: shim 16.1 turns on MokPolicy NX by itself (pe-relocate.c set_shim_nx_policy) only when
# shim's own image is NX_COMPAT, and then refuses every later image without NX_COMPAT
# (read_header: "Policy requires NX, but image does not support NX"). Debian's shim is not
# NX_COMPAT: post-process-pe clears the flag unless it is given -n (post-process-pe.c:
# set_nx_compat = false by default), and debian/rules passes POST_PROCESS_PE_FLAGS=-N on top.
# So no Debian shim exercises the policy. This build is Debian's recipe (debian/rules
# COMMON_OPTIONS, its patches, its SBAT data and dbx list) with two changes:
#   POST_PROCESS_PE_FLAGS=-n   (instead of -N): post-process-pe sets NX_COMPAT
#   VENDOR_CERT_FILE=testdata/sample/test-ca.der  (instead of debian/debian-uefi-ca.der):
#                              the built shim is not Debian's, so it must not claim Debian's
#                              trust; Debian-signed grub and kernels are trusted through
#                              MokList when Secure Boot is on (matrix.py nxshim_store)
# Only the shim binary is built (`make shim<arch>.efi`), not MokManager and fallback. The
# toolchain is the build machine's (Debian 12's gcc and binutils in CI), not trixie's; aa64 is
# cross-compiled with gcc-aarch64-linux-gnu (CC and CROSS_COMPILE=aarch64-linux-gnu-; Debian
# builds it natively with CC=gcc).
#
# Output: $LAB_CACHE/shim-<Debian version>-<settings hash>/
#   debian-uefi-ca.der             Debian's CA from the source package (what MokList gets)
#   <arch>/shim<arch>.efi          unsigned (Secure Boot off); arch x64 and aa64
#   <arch>/shim<arch>.signed.efi   signed with testdata/sample/keys/test-db.key (sbsign), for
#                                  Secure Boot on with testdata/sample/test-db.der in db
#   <arch>/build-info.txt          written last: the build counts as done when it exists
# The hash covers the source version, gcc's, the cross gcc's and ld's versions, the make
# options, the vendor certificate and the signing key; `--print-dir` prints the directory.
# Builds of other keys are removed after a build; LAB_FORCE=1 rebuilds.
#
# Usage: sudo tests/e2e/lab/build-shim.sh [x64] [aa64]   (default: both)
#        tests/e2e/lab/build-shim.sh --print-dir
# Environment: LAB_CACHE (default /var/cache/fwtools-lab), LAB_JOBS (default nproc).
set -euo pipefail

# Debian 13's shim, pinned (the loader model cites 16.1). If the archive drops this version,
# bump it here (and re-record tests/e2e/lab/results.json).
SHIM_VERSION=16.1-2~deb13u1
SUITE=trixie
ALL_ARCHES=(x64 aa64)
AARCH64_PREFIX=aarch64-linux-gnu-
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
VENDOR_CERT=$REPO/testdata/sample/test-ca.der
SIGN_KEY=$REPO/testdata/sample/keys/test-db.key
SIGN_CERT=$REPO/testdata/sample/test-db.pem

upstream=${SHIM_VERSION%-*}
# debian/rules COMMON_OPTIONS (COMMIT_ID and SBAT_AUTOMATIC_DATE as there), with
# POST_PROCESS_PE_FLAGS=-n for -N and the test vendor certificate (VENDOR_CERT_FILE is added
# below: its path is not part of the key, its contents are); CROSS_COMPILE and CC per arch.
OPTIONS=(
    RELEASE="$upstream" COMMIT_ID=afc49558b34548644c1cd0ad1b6526a9470182ed MAKELEVEL=0
    ENABLE_HTTPBOOT=true VENDOR_DBX_FILE=dbx.esl EFIDIR=debian
    SBAT_AUTOMATIC_DATE=2025021800 POST_PROCESS_PE_FLAGS=-n
)
arch_options() {
    case $1 in
        x64) echo CROSS_COMPILE=x86_64-linux-gnu- CC=gcc ;;
        aa64) echo "CROSS_COMPILE=$AARCH64_PREFIX CC=${AARCH64_PREFIX}gcc" ;;
        *) echo "unknown arch $1 (${ALL_ARCHES[*]})" >&2; exit 2 ;;
    esac
}

LAB_CACHE=${LAB_CACHE:-/var/cache/fwtools-lab}
LAB_JOBS=${LAB_JOBS:-$(nproc)}
SRC=$LAB_CACHE/src

settings() {
    echo "shim $SHIM_VERSION ${ALL_ARCHES[*]}"
    echo "gcc $(gcc -dumpfullversion 2>/dev/null || echo none)"
    echo "${AARCH64_PREFIX}gcc $("${AARCH64_PREFIX}gcc" -dumpfullversion 2>/dev/null || echo none)"
    echo "ld $(ld --version 2>/dev/null | head -n1 || echo none)"
    echo "options ${OPTIONS[*]}"
    local a
    for a in "${ALL_ARCHES[@]}"; do echo "$a $(arch_options "$a")"; done
    echo "vendor cert $(sha256sum < "$VENDOR_CERT" | cut -c1-64)"
    echo "signing key $(sha256sum < "$SIGN_KEY" | cut -c1-64) $(sha256sum < "$SIGN_CERT" | cut -c1-64)"
}
KEY=shim-$SHIM_VERSION-$(settings | sha256sum | cut -c1-12)
DEST=$LAB_CACHE/$KEY

if [ "${1:-}" = --print-dir ]; then
    echo "$DEST"
    exit 0
fi

LAB_LOG_NAME=build-shim
# shellcheck source=tests/e2e/lab/common.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/common.sh"

ARCHES=("$@")
[ ${#ARCHES[@]} -gt 0 ] || ARCHES=("${ALL_ARCHES[@]}")
for a in "${ARCHES[@]}"; do arch_options "$a" >/dev/null; done
mapfile -t todo < <(pending "$DEST" "${ARCHES[@]}")
[ ${#todo[@]} -gt 0 ] || exit 0
started=$SECONDS

# -- build dependencies: what `make shim<arch>.efi` and debian/rules' helpers run (shim brings
# its own gnu-efi and OpenSSL; efisiglist comes with pesign). .ci/run installs them.
tools=(gcc:build-essential make:build-essential dos2unix:dos2unix xxd:xxd openssl:openssl
       efisiglist:pesign sbsign:sbsigntool bzip2:bzip2 xz:xz-utils patch:patch python3:python3)
case " ${todo[*]} " in *" aa64 "*) tools+=("${AARCH64_PREFIX}gcc:gcc-aarch64-linux-gnu") ;; esac
install_missing "${tools[@]}"

# -- the source: download-only plus a manual unpack (as build-ovmf.sh: some mirrors answer
# 404 for the .dsc while serving the tarballs).
orig=shim_$upstream.orig.tar.bz2
deb=shim_$SHIM_VERSION.debian.tar.xz
mkdir -p "$SRC"
cd "$SRC"
fetch_debian_source shim "$SHIM_VERSION" "$SUITE" fwtools-lab-src.sources "$orig" "$deb"

# DllCharacteristics of a PE32+ image: the PE header at e_lfanew, + 24 (the optional header)
# + 70
dll_characteristics() {
    python3 -c 'import struct, sys
d = open(sys.argv[1], "rb").read()
pe = struct.unpack_from("<I", d, 0x3C)[0]
print(hex(struct.unpack_from("<H", d, pe + 24 + 70)[0]))' "$1"
}

# One arch, from a fresh tree in $SRC/shim-<arch> (a tree built with other options must not
# leak objects into this one; unpacking takes seconds). Called plainly, so set -e holds.
build_arch() {
    local arch=$1 tree=$SRC/shim-$1 out=$DEST/$1 efi=shim$1.efi dllchar
    local -a aopts
    read -r -a aopts <<< "$(arch_options "$arch")"
    unpack_debian "$SRC/$orig" "$SRC/$deb" "$tree"
    cd "$tree"
    # debian/rules' generated inputs: the dbx list and the vendor SBAT data
    ./debian/generate_dbx_list "$arch" debian/debian-dbx.hashes dbx.esl > /dev/null
    sed -e "s/@DEB_VERSION@/$SHIM_VERSION/g" -e "s/@UPSTREAM_VERSION@/$upstream/g" \
        < debian/sbat.debian.csv.in > data/sbat.debian.csv
    cp "$VENDOR_CERT" vendor-cert.der

    log "$arch: building $efi (${OPTIONS[*]} ${aopts[*]})"
    if ! nice -n 10 make -j"$LAB_JOBS" INSTALL=install "${OPTIONS[@]}" "${aopts[@]}" \
            VENDOR_CERT_FILE=vendor-cert.der "$efi" > "$SRC/build-shim-$arch.log" 2>&1; then
        tail -n 60 "$SRC/build-shim-$arch.log" >&2
        echo "build-shim.sh: the $arch build failed (whole log: $SRC/build-shim-$arch.log)" >&2
        return 1
    fi
    dllchar=$(dll_characteristics "$efi")
    if (( (dllchar & 0x100) == 0 )); then
        echo "build-shim.sh: $efi has DllCharacteristics $dllchar, no NX_COMPAT" >&2
        return 1
    fi

    mkdir -p "$out"
    cp "$efi" "$out/$efi"
    sbsign --key "$SIGN_KEY" --cert "$SIGN_CERT" --output "$out/shim$arch.signed.efi" \
        "$efi" 2>/dev/null
    cp debian/debian-uefi-ca.der "$DEST/debian-uefi-ca.der"
    {
        echo "source: shim $SHIM_VERSION (Debian $SUITE)"
        echo "key: $KEY"
        echo "built: $(date -u +%FT%TZ)"
        echo "make: ${OPTIONS[*]} ${aopts[*]} VENDOR_CERT_FILE=testdata/sample/test-ca.der $efi"
        echo "gcc: $("${aopts[1]#CC=}" -dumpfullversion)"
        echo "ld: $("${aopts[0]#CROSS_COMPILE=}ld" --version | head -n1)"
        echo "DllCharacteristics: $dllchar"
        echo "signed: testdata/sample/keys/test-db.key (shim$arch.signed.efi)"
        echo "sha256: $(sha256sum < "$out/$efi" | cut -c1-64) $efi"
    } > "$out/build-info.txt.tmp"
    mv "$out/build-info.txt.tmp" "$out/build-info.txt"
    log "$arch: done -> $out"
    cat "$out/build-info.txt"
}
for a in "${todo[@]}"; do build_arch "$a"; done
settings > "$DEST/settings.txt"

remove_stale shim "$DEST"
log "built ${todo[*]} in $((SECONDS - started)) s"
