#!/bin/bash
# Build W^X-enforcing DEBUG OVMF (x86-64, 4M flash, Secure Boot + SMM) from Debian's edk2
# 2025.02 source package, for the firmware lab (tests/e2e/lab/matrix.py; .ci/run runs this,
# tests/e2e/test_lab.py boots the results).
#
# Variants (edk2's PcdDxeNxMemoryProtectionPolicy, one bit per EFI memory type):
#   strict      0xC000000000007FD5  every data type NX, EfiLoaderData included
#   compat      0xC000000000007FD1  the same minus EfiLoaderData (bit 2), which old loaders
#                                   (grub without the NX patches) execute from
#   strict-img  strict + PcdImageProtectionPolicy=0x3 (per-section permissions for images
#               loaded from disk too, as ArmVirtQemu/AAVMF has by default; OVMF has 0x2)
#   aa64-strict AAVMF (ArmVirtPkg/ArmVirtQemu.dsc, AARCH64) as DEBUG with Debian's
#               AAVMF_SECBOOT_STRICTNX_FLAGS and ArmVirtQemu's own defaults (NX policy
#               0xC000000000007FD5, image protection 0x3): Debian's AAVMF_CODE.secboot.strictnx.fd
#               but DEBUG, so an exception dump has ESR and FAR. Cross-compiled with
#               gcc-aarch64-linux-gnu (GCC5_AARCH64_PREFIX=aarch64-linux-gnu-, as debian/rules).
# "strict without the memory attribute protocol" is not a build: matrix.py boots the strict
# build with -fw_cfg name=opt/org.tianocore/UninstallMemAttrProtocol,string=y, which Debian's
# patch OvmfPkg-X64-add-opt-org.tianocore-UninstallMemAttrPr.patch reads in
# OvmfPkg/Library/PlatformBootManagerLib/BdsPlatform.c (PlatformBootManagerAfterConsole).
# Everything else is Debian's OVMF_CODE_4M.secboot.strictnx.fd recipe (debian/rules:
# OVMF_4M_SECBOOT_STRICTNX_FLAGS, i.e. the EFI_MEMORY_ATTRIBUTE protocol stays installed),
# built as DEBUG. The DEBUG log goes to QEMU's debug console (I/O port 0x402), not the serial
# port, so the serial console stays what the tests classify; matrix.py saves it with
# `-debugcon file:debug.log -global isa-debugcon.iobase=0x402`. Set LAB_DEBUG_ON_SERIAL=1
# to put it on the serial port instead (edk2's -DDEBUG_ON_SERIAL_PORT; note the .dsc tests
# it with !ifdef, so any value turns it on).
#
# The cache key: results go to $LAB_CACHE/edk2-<Debian version>-<settings hash>/<variant>/
# (OVMF_CODE_4M.fd, the blank OVMF_VARS_4M.fd, build-info.txt). The hash covers everything
# that decides the bytes: the source version, platform, arch, build type, toolchain and its
# gcc version, the flags, every variant's PCDs and the debug-log port. Change any of them
# and the directory changes, so a stale build is never used; `--print-dir` prints it
# (test_lab.py asks this script rather than knowing the key). A variant already in the
# directory is not rebuilt (LAB_FORCE=1 rebuilds); builds of other keys are removed. The
# source and the edk2 Build/ tree stay in $LAB_CACHE/src, so a new key is an incremental
# build. The variants share that Build/ tree and build one after another: the first build
# already keeps both cores busy, and edk2 rebuilds only what a changed PCD touches.
#
# Usage: sudo tests/e2e/lab/build-ovmf.sh [strict] [compat] [strict-img] [aa64-strict]
#        (default: all)
#        tests/e2e/lab/build-ovmf.sh --print-dir
# Environment: LAB_CACHE (default /var/cache/fwtools-lab), LAB_JOBS (default nproc).
set -euo pipefail

# The source: Debian 13's edk2, pinned (the firmware profiles cite its files). If the archive
# drops this version, bump it here (and re-record tests/e2e/lab/results.json).
EDK2_VERSION=2025.02-8+deb13u1
SUITE=trixie
BUILD_TYPE=DEBUG
TOOLCHAIN=GCC5
AARCH64_PREFIX=aarch64-linux-gnu-
ALL_VARIANTS=(strict compat strict-img aa64-strict)
# Debian's COMMON_FLAGS + OVMF_4M_SECBOOT_STRICTNX_FLAGS (debian/rules), minus the
# vendor/version/date PCDs (their L"..." quoting does not survive a bash array; nothing
# needs them).
FLAGS=(
    -DCC_MEASUREMENT_ENABLE=TRUE -DNETWORK_HTTP_BOOT_ENABLE=TRUE -DNETWORK_IP6_ENABLE=TRUE
    -DNETWORK_TLS_ENABLE -DTPM2_ENABLE=TRUE -DFD_SIZE_4MB
    -DBUILD_SHELL=FALSE -DSECURE_BOOT_ENABLE=TRUE -DSMM_REQUIRE=TRUE
)
[ -z "${LAB_DEBUG_ON_SERIAL:-}" ] || FLAGS+=(-DDEBUG_ON_SERIAL_PORT=TRUE)
# Debian's AAVMF_COMMON_FLAGS + AAVMF_SECBOOT_STRICTNX_FLAGS, minus the same PCDs. ArmVirtQemu
# logs DEBUG output to the PL011 serial port: there is no second port.
AA64_FLAGS=(
    -DCC_MEASUREMENT_ENABLE=TRUE -DNETWORK_HTTP_BOOT_ENABLE=TRUE -DNETWORK_IP6_ENABLE=TRUE
    -DNETWORK_TLS_ENABLE -DTPM2_ENABLE=TRUE -DTPM2_CONFIG_ENABLE=TRUE
    -DCAVIUM_ERRATUM_27456=TRUE -DBUILD_SHELL=FALSE -DSECURE_BOOT_ENABLE=TRUE
)

# per variant: edk2 arch, platform, build directory, flags (by name), the files to keep
arch_of() { case $1 in aa64-*) echo AARCH64 ;; *) echo X64 ;; esac; }
platform_of() {
    case $1 in aa64-*) echo ArmVirtPkg/ArmVirtQemu.dsc ;; *) echo OvmfPkg/OvmfPkgX64.dsc ;; esac
}
out_of() {
    case $1 in
        aa64-*) echo "Build/ArmVirtQemu-AARCH64/${BUILD_TYPE}_$TOOLCHAIN" ;;
        *) echo "Build/OvmfX64/${BUILD_TYPE}_$TOOLCHAIN" ;;
    esac
}
flags_of() { case $1 in aa64-*) echo "${AA64_FLAGS[*]}" ;; *) echo "${FLAGS[*]}" ;; esac; }

nx_policy() {
    case $1 in
        strict|strict-img|aa64-strict) echo 0xC000000000007FD5 ;;
        compat) echo 0xC000000000007FD1 ;;
        *) echo "unknown variant $1 (${ALL_VARIANTS[*]})" >&2; exit 2 ;;
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
pcd_args() {
    local img
    case $1 in aa64-*) return 0 ;; esac  # ArmVirtQemu's defaults are the strict values
    echo "--pcd gEfiMdeModulePkgTokenSpaceGuid.PcdDxeNxMemoryProtectionPolicy=$(nx_policy "$1")"
    img=$(image_policy "$1")
    [ -z "$img" ] || echo "--pcd gEfiMdeModulePkgTokenSpaceGuid.PcdImageProtectionPolicy=$img"
}

LAB_CACHE=${LAB_CACHE:-/var/cache/fwtools-lab}
LAB_JOBS=${LAB_JOBS:-$(nproc)}
SRC=$LAB_CACHE/src
TREE=$SRC/edk2

settings() {
    echo "edk2 $EDK2_VERSION $BUILD_TYPE $TOOLCHAIN"
    echo "gcc $(gcc -dumpfullversion 2>/dev/null || echo none)"
    echo "${AARCH64_PREFIX}gcc $("${AARCH64_PREFIX}gcc" -dumpfullversion 2>/dev/null || echo none)"
    echo "SOURCE_DATE_EPOCH: the date of debian/changelog's last entry"
    local v
    for v in "${ALL_VARIANTS[@]}"; do
        echo "variant $v $(arch_of "$v") $(platform_of "$v") $(flags_of "$v")" $(pcd_args "$v")
    done
}
KEY=edk2-$EDK2_VERSION-$(settings | sha256sum | cut -c1-12)
DEST=$LAB_CACHE/$KEY

if [ "${1:-}" = --print-dir ]; then
    echo "$DEST"
    exit 0
fi
VARIANTS=("$@")
[ ${#VARIANTS[@]} -gt 0 ] || VARIANTS=("${ALL_VARIANTS[@]}")
for v in "${VARIANTS[@]}"; do nx_policy "$v" >/dev/null; done

LAB_LOG_NAME=build-ovmf
# shellcheck source=tests/e2e/lab/common.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/common.sh"

mapfile -t todo < <(pending "$DEST" "${VARIANTS[@]}")
[ ${#todo[@]} -gt 0 ] || exit 0
started=$SECONDS

# -- build dependencies: a minimal set, not `apt-get build-dep edk2` (which pulls in cross
# compilers for five architectures). .ci/run installs them with its other packages.
tools=(gcc:build-essential make:build-essential nasm:nasm iasl:acpica-tools python3:python3
       xz:xz-utils patch:patch)
[ -e /usr/include/uuid/uuid.h ] || tools+=(uuid-dev:uuid-dev)  # no tool: a header
case " ${todo[*]} " in *" aa64-"*) tools+=("${AARCH64_PREFIX}gcc:gcc-aarch64-linux-gnu") ;; esac
install_missing "${tools[@]}"

# -- the source. A deb-src entry for trixie is added when no configured source offers the
# version.
if [ "$(cat "$TREE/.fwtools-patched" 2>/dev/null)" != "$EDK2_VERSION" ]; then
    mkdir -p "$SRC"
    cd "$SRC"
    orig=edk2_${EDK2_VERSION%-*}.orig.tar.xz
    deb=edk2_$EDK2_VERSION.debian.tar.xz
    fetch_debian_source edk2 "$EDK2_VERSION" "$SUITE" fwtools-lab-src.sources "$orig" "$deb"
    unpack_debian "$orig" "$deb" "$TREE"
    echo "$EDK2_VERSION" > "$TREE/.fwtools-patched"
fi
cd "$TREE"

# Reproducible bytes: ArmVirtQemu's SEC (ArmPlatformPkg/Sec/Sec.c), PrePi and SmbiosMiscDxe
# (ArmPkg/Universal/Smbios/SmbiosMiscDxe/Type00) compile in __DATE__/__TIME__, which GCC takes
# from SOURCE_DATE_EPOCH when it is set. dpkg-buildpackage sets it to the date of the
# changelog's last entry for Debian's own build; so do we, so that a lab build's digest
# identifies it (fwtools/machine/firmware_id.py LAB_BUILDS).
SOURCE_DATE_EPOCH=$(date -d "$(sed -n 's/^ -- .*>  //p' debian/changelog | head -n1)" +%s)
export SOURCE_DATE_EPOCH

# -- BaseTools, once for every variant. (edksetup.sh reads "$@": it is sourced with none.)
if [ ! -e .fwtools-basetools ]; then
    log "building BaseTools"
    (set +u; set --; . ./edksetup.sh >/dev/null; nice -n 10 make -C BaseTools -j"$LAB_JOBS")
    touch .fwtools-basetools
fi
export GCC5_AARCH64_PREFIX=$AARCH64_PREFIX
# edk2's GCC5 AARCH64 LTO links against this stub library, which Debian assembles from the
# shipped source (debian/rules: BaseTools/Bin/GccLto/liblto-aarch64.a)
if [ ! -e BaseTools/Bin/GccLto/liblto-aarch64.a ] && command -v "${AARCH64_PREFIX}gcc" >/dev/null; then
    "${AARCH64_PREFIX}gcc" -c -fpic BaseTools/Bin/GccLto/liblto-aarch64.s \
        -o BaseTools/Bin/GccLto/liblto-aarch64.a
fi

# One variant, into $DEST/<variant>/. Called plainly (never in an || list), so set -e holds
# inside it.
build_variant() {
    local variant=$1 policy pcds vflags arch platform out autogen got dest code stamp
    policy=$(nx_policy "$variant")
    read -r -a pcds <<< "$(pcd_args "$variant" | tr '\n' ' ')"
    read -r -a vflags <<< "$(flags_of "$variant")"
    arch=$(arch_of "$variant")
    platform=$(platform_of "$variant")
    out=$(out_of "$variant")
    log "$variant: building $platform $arch (${pcds[*]})"
    # make does not see a changed SOURCE_DATE_EPOCH: a Build/ tree compiled with another
    # date (or before the date was set) starts again from nothing.
    stamp=${out%/*}/.fwtools-source-date-epoch
    if [ -d "${out%/*}" ] && [ "$(cat "$stamp" 2>/dev/null)" != "$SOURCE_DATE_EPOCH" ]; then
        log "$variant: ${out%/*} was built with another SOURCE_DATE_EPOCH, removing it"
        rm -rf "${out%/*}"
    fi
    mkdir -p "${out%/*}"
    echo "$SOURCE_DATE_EPOCH" > "$stamp"
    # The same Build/ directory for all: edk2 regenerates AutoGen for the changed PCD and
    # rebuilds only what uses it, so a further variant takes a fraction of the first.
    (set +u; set --; . ./edksetup.sh >/dev/null
     nice -n 10 build -a "$arch" -t "$TOOLCHAIN" -b "$BUILD_TYPE" -n "$LAB_JOBS" \
        -p "$platform" "${vflags[@]}" "${pcds[@]}")
    # What DxeMain was really built with (a typo'd PCD name would be silently ignored).
    autogen=$(find "$out/$arch/MdeModulePkg/Core/Dxe/DxeMain" -name AutoGen.h | head -n1)
    got=$(grep -o '_PCD_VALUE_PcdDxeNxMemoryProtectionPolicy  *[0-9A-Fa-fxULul]*' "$autogen" \
          | awk '{print $2}')
    # Compared as integers in Python: bash's printf %d saturates at 2^63-1.
    if ! python3 -c 'import sys; sys.exit(int(sys.argv[1].rstrip("ULul"), 0) != int(sys.argv[2], 0))' \
            "$got" "$policy"; then
        echo "$variant: DxeMain's AutoGen.h has PcdDxeNxMemoryProtectionPolicy=$got, not $policy" >&2
        return 1  # set -e: the caller stops
    fi
    dest=$DEST/$variant
    mkdir -p "$dest"
    case $variant in
        aa64-*) code=AAVMF_CODE.fd; cp "$out/FV/QEMU_VARS.fd" "$dest/AAVMF_VARS.fd"
                cp "$out/FV/QEMU_EFI.fd" "$dest/$code.tmp" ;;
        *) code=OVMF_CODE_4M.fd; cp "$out/FV/OVMF_VARS.fd" "$dest/OVMF_VARS_4M.fd"
           cp "$out/FV/OVMF_CODE.fd" "$dest/$code.tmp" ;;
    esac
    {
        echo "variant: $variant"
        echo "source: edk2 $EDK2_VERSION (Debian $SUITE)"
        echo "key: $KEY"
        echo "built: $(date -u +%FT%TZ)"
        echo "flags: -p $platform -a $arch -b $BUILD_TYPE -t $TOOLCHAIN ${vflags[*]}"
        echo "gcc: $(gcc -dumpfullversion)"
        echo "pcds: ${pcds[*]}"
        echo "PcdDxeNxMemoryProtectionPolicy: $policy (AutoGen: $got)"
        grep -h -o '_PCD_VALUE_Pcd\(ImageProtectionPolicy\|SetNxForStack\|HeapGuardPropertyMask\)  *[0-9A-Fa-fxULul]*' \
            "$autogen" | sed 's/^_PCD_VALUE_/AutoGen /' || true
        case $variant in
            aa64-*) echo "debug log: serial port (PL011)" ;;
            *) echo "debug log: ${LAB_DEBUG_ON_SERIAL:+serial port}${LAB_DEBUG_ON_SERIAL:-debugcon I/O port 0x402}" ;;
        esac
    } > "$dest/build-info.txt.tmp"
    # build-info.txt last: a variant counts as built when it exists
    mv "$dest/$code.tmp" "$dest/$code"
    mv "$dest/build-info.txt.tmp" "$dest/build-info.txt"
    log "$variant: done -> $dest"
    cat "$dest/build-info.txt"
}

# The x64 variants share one Build/ tree and build one after another (edk2 rebuilds only
# what a changed PCD touches). The aa64 build has its own Build/ tree and, through CONF_PATH,
# its own Conf/ state (.AutoGenIdFile.txt, .cache), so it runs beside them: each build has
# long single-threaded stretches (AutoGen, LTO links, GenFv) that the other fills.
x64_todo=()
aa64_todo=()
for v in "${todo[@]}"; do
    case $v in aa64-*) aa64_todo+=("$v") ;; *) x64_todo+=("$v") ;; esac
done
aa64_pid=
aa64_log=$SRC/build-aa64.log
if [ ${#aa64_todo[@]} -gt 0 ]; then
    mkdir -p "$TREE/Conf-aa64"
    log "building ${aa64_todo[*]} in the background (log: $aa64_log)"
    (
        export CONF_PATH=$TREE/Conf-aa64
        for v in "${aa64_todo[@]}"; do build_variant "$v"; done
    ) > "$aa64_log" 2>&1 &
    aa64_pid=$!
    # set -e ends the script when an x64 build fails: take the background build with it
    trap 'kill "$aa64_pid" 2>/dev/null || true' EXIT
fi
for v in "${x64_todo[@]}"; do build_variant "$v"; done
if [ -n "$aa64_pid" ]; then
    if ! wait "$aa64_pid"; then
        tail -n 60 "$aa64_log" >&2
        echo "build-ovmf.sh: the aa64 build failed (whole log: $aa64_log)" >&2
        exit 1
    fi
    grep -h '^\[build-ovmf' "$aa64_log" || true
    for v in "${aa64_todo[@]}"; do cat "$DEST/$v/build-info.txt"; done
fi
settings > "$DEST/settings.txt"

remove_stale edk2 "$DEST"
log "built ${todo[*]} in $((SECONDS - started)) s"
