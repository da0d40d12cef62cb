#!/bin/bash
# Build W^X-enforcing DEBUG OVMF (x86-64, 4M flash, Secure Boot + SMM) from Debian's edk2
# 2025.02 source package, for the firmware lab (tests/e2e/lab/run-lab.py). Not run by CI.
#
# Variants (edk2's PcdDxeNxMemoryProtectionPolicy, one bit per EFI memory type):
#   strict      0xC000000000007FD5  every data type NX, EfiLoaderData included
#   compat      0xC000000000007FD1  the same minus EfiLoaderData (bit 2), which old loaders
#                                   (grub without the NX patches) execute from
#   strict-img  strict + PcdImageProtectionPolicy=0x3 (per-section permissions for images
#               loaded from disk too, as ArmVirtQemu/AAVMF has by default; OVMF has 0x2)
# Everything else is Debian's OVMF_CODE_4M.secboot.strictnx.fd recipe (debian/rules:
# OVMF_4M_SECBOOT_STRICTNX_FLAGS, i.e. the EFI_MEMORY_ATTRIBUTE protocol stays installed),
# built as DEBUG. The DEBUG log goes to QEMU's debug console (I/O port 0x402), not the serial
# port, so the serial console stays what the CI tests classify; run-lab.py saves it with
# `-debugcon file:debug.log -global isa-debugcon.iobase=0x402`. Set LAB_DEBUG_ON_SERIAL=1
# to put it on the serial port instead (edk2's -DDEBUG_ON_SERIAL_PORT; note the .dsc tests
# it with !ifdef, so any value turns it on).
#
# Results: $LAB_CACHE/<variant>/OVMF_CODE_4M.fd and OVMF_VARS_4M.fd (blank store), plus
# build-info.txt (flags, the PCD value DxeCore was really built with). A variant whose
# OVMF_CODE_4M.fd exists is not rebuilt (LAB_FORCE=1 rebuilds).
#
# Usage: sudo tests/e2e/lab/build-ovmf.sh [strict] [compat]      (default: both)
# Environment: LAB_CACHE (default /var/cache/fwtools-lab), LAB_JOBS (default nproc).
set -euo pipefail

LAB_CACHE=${LAB_CACHE:-/var/cache/fwtools-lab}
LAB_JOBS=${LAB_JOBS:-$(nproc)}
SRC=$LAB_CACHE/src
TREE=$SRC/edk2
SUITE=trixie
VARIANTS=("$@")
[ ${#VARIANTS[@]} -gt 0 ] || VARIANTS=(strict compat strict-img)

log() { printf '[build-ovmf %(%H:%M:%S)T] %s\n' -1 "$*"; }

nx_policy() {
    case $1 in
        strict|strict-img) echo 0xC000000000007FD5 ;;
        compat) echo 0xC000000000007FD1 ;;
        *) echo "unknown variant $1 (strict, compat, strict-img)" >&2; exit 2 ;;
    esac
}
# PcdImageProtectionPolicy: OVMF keeps MdeModulePkg's 0x2 (only images from firmware
# volumes get per-section permissions); ArmVirtQemu (AAVMF) uses 0x3, which also covers
# images loaded from disk (shim, grub, the kernel's stub) that have 4 KiB section alignment.
image_policy() {
    case $1 in
        strict-img) echo 0x3 ;;
        *) echo "" ;;
    esac
}
for v in "${VARIANTS[@]}"; do nx_policy "$v" >/dev/null; done

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# -- build dependencies: a minimal set, not `apt-get build-dep edk2` (which pulls in cross
# compilers for five architectures).
need_pkgs=()
for tool_pkg in gcc:build-essential make:build-essential nasm:nasm iasl:acpica-tools \
        python3:python3 python:python-is-python3 xz:xz-utils patch:patch; do
    command -v "${tool_pkg%%:*}" >/dev/null || need_pkgs+=("${tool_pkg#*:}")
done
[ -e /usr/include/uuid/uuid.h ] || need_pkgs+=(uuid-dev)
if [ ${#need_pkgs[@]} -gt 0 ]; then
    log "installing ${need_pkgs[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "${need_pkgs[@]}"
fi

# -- the source: Debian's edk2 from trixie. A deb-src entry for the configured mirror is
# added when none covers trixie.
if [ ! -e "$TREE/.fwtools-patched" ]; then
    if ! apt-cache showsrc edk2 2>/dev/null | grep -q '^Version: 2025\.02'; then
        log "adding a deb-src entry for $SUITE"
        as_root tee /etc/apt/sources.list.d/fwtools-lab-src.sources >/dev/null <<EOF
# tests/e2e/lab/build-ovmf.sh: Debian source packages for the firmware lab.
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: $SUITE
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
        as_root apt-get update -q
    fi
    mkdir -p "$SRC"
    cd "$SRC"
    # --download-only plus a manual unpack: some mirrors (this one) answer 404 for the .dsc
    # while serving the tarballs, and dpkg-source needs the .dsc. apt-get fails then but
    # leaves the tarballs, which is all we need.
    if ! ls edk2_2025.02.orig.tar.* edk2_2025.02-*.debian.tar.* >/dev/null 2>&1; then
        log "downloading the edk2/$SUITE source"
        apt-get source --download-only -q "edk2/$SUITE" || true
    fi
    orig=$(ls edk2_2025.02.orig.tar.* | head -n1)
    deb=$(ls edk2_2025.02-*.debian.tar.* | sort -V | tail -n1)
    log "unpacking $orig + $deb"
    rm -rf "$TREE"
    mkdir -p "$TREE"
    tar -xf "$orig" -C "$TREE" --strip-components=1
    tar -xf "$deb" -C "$TREE"
    cd "$TREE"
    while read -r p; do
        case $p in ''|'#'*) continue ;; esac
        patch -p1 --forward --quiet < "debian/patches/$p"
    done < debian/patches/series
    echo "$deb" > .fwtools-patched
fi
cd "$TREE"

# -- BaseTools, once for every variant.
if [ ! -e .fwtools-basetools ]; then
    log "building BaseTools"
    (set +u; . ./edksetup.sh >/dev/null; nice -n 10 make -C BaseTools -j"$LAB_JOBS")
    touch .fwtools-basetools
fi

# Debian's COMMON_FLAGS + OVMF_4M_SECBOOT_STRICTNX_FLAGS (debian/rules), minus the
# vendor/version/date PCDs (their L"..." quoting does not survive a bash array; nothing
# needs them).
FLAGS=(
    -DCC_MEASUREMENT_ENABLE=TRUE -DNETWORK_HTTP_BOOT_ENABLE=TRUE -DNETWORK_IP6_ENABLE=TRUE
    -DNETWORK_TLS_ENABLE -DTPM2_ENABLE=TRUE -DFD_SIZE_4MB
    -DBUILD_SHELL=FALSE -DSECURE_BOOT_ENABLE=TRUE -DSMM_REQUIRE=TRUE
)
[ -z "${LAB_DEBUG_ON_SERIAL:-}" ] || FLAGS+=(-DDEBUG_ON_SERIAL_PORT=TRUE)
OUT=Build/OvmfX64/DEBUG_GCC5

for variant in "${VARIANTS[@]}"; do
    dest=$LAB_CACHE/$variant
    if [ -e "$dest/OVMF_CODE_4M.fd" ] && [ -z "${LAB_FORCE:-}" ]; then
        log "$variant: $dest/OVMF_CODE_4M.fd exists, skipping"
        continue
    fi
    policy=$(nx_policy "$variant")
    pcds=(--pcd "gEfiMdeModulePkgTokenSpaceGuid.PcdDxeNxMemoryProtectionPolicy=$policy")
    img=$(image_policy "$variant")
    [ -z "$img" ] || pcds+=(--pcd "gEfiMdeModulePkgTokenSpaceGuid.PcdImageProtectionPolicy=$img")
    log "$variant: building (${pcds[*]})"
    # The same Build/ directory for both: edk2 regenerates AutoGen for the changed PCD and
    # rebuilds only what uses it, so the second variant takes a fraction of the first.
    (set +u; . ./edksetup.sh >/dev/null
     nice -n 10 build -a X64 -t GCC5 -b DEBUG -n "$LAB_JOBS" -p OvmfPkg/OvmfPkgX64.dsc \
        "${FLAGS[@]}" "${pcds[@]}")
    # What DxeMain was really built with (a typo'd PCD name would be silently ignored).
    autogen=$(find "$OUT/X64/MdeModulePkg/Core/Dxe/DxeMain" -name AutoGen.h | head -n1)
    got=$(grep -o '_PCD_VALUE_PcdDxeNxMemoryProtectionPolicy  *[0-9A-Fa-fxULul]*' "$autogen" \
          | awk '{print $2}')
    # Compared as integers in Python: bash's printf %d saturates at 2^63-1.
    if ! python3 -c 'import sys; sys.exit(int(sys.argv[1].rstrip("ULul"), 0) != int(sys.argv[2], 0))' \
            "$got" "$policy"; then
        echo "$variant: DxeMain's AutoGen.h has PcdDxeNxMemoryProtectionPolicy=$got, not $policy" >&2
        exit 1
    fi
    mkdir -p "$dest"
    cp "$OUT/FV/OVMF_CODE.fd" "$dest/OVMF_CODE_4M.fd.tmp"
    cp "$OUT/FV/OVMF_VARS.fd" "$dest/OVMF_VARS_4M.fd"
    {
        echo "variant: $variant"
        echo "source: edk2 $(cat .fwtools-patched)"
        echo "built: $(date -u +%FT%TZ)"
        echo "flags: -b DEBUG -t GCC5 ${FLAGS[*]}"
        echo "pcds: ${pcds[*]}"
        echo "PcdDxeNxMemoryProtectionPolicy: $policy (AutoGen: $got)"
        grep -h -o '_PCD_VALUE_Pcd\(ImageProtectionPolicy\|SetNxForStack\|HeapGuardPropertyMask\)  *[0-9A-Fa-fxULul]*' \
            "$autogen" | sed 's/^_PCD_VALUE_/AutoGen /' || true
        echo "debug log: ${LAB_DEBUG_ON_SERIAL:+serial port}${LAB_DEBUG_ON_SERIAL:-debugcon I/O port 0x402}"
    } > "$dest/build-info.txt"
    mv "$dest/OVMF_CODE_4M.fd.tmp" "$dest/OVMF_CODE_4M.fd"
    log "$variant: done -> $dest"
    cat "$dest/build-info.txt"
done
