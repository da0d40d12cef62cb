#!/bin/bash
# Build upstream GRUB (no distribution patches) as a standalone removable-media loader for
# the firmware lab (tests/e2e/lab/matrix.py GRUB_CHAINS; .ci/run runs this,
# tests/e2e/test_lab.py boots the result). Two pinned versions, chosen by LAB_GRUB:
#   2.12 (the default): x64 and aa64;
#   2.06: x64 only.
#
# The source: the orig tarball of a Debian grub2 source package, which is the GNU release
# tarball unchanged (its SHA-256 is checked below): trixie's for 2.12 (grub-2.12.tar.xz),
# bookworm's for 2.06 (grub-2.06.tar.xz). Debian's debian/patches are NOT applied. Fix-ups:
#   2.12: grub-core/extra_deps.lst is added, which the 2.12 release tarball lacks although
#     grub-core/Makefile.am's syminfo.lst rule needs it (the build stops without it); it gets
#     the content it has in GRUB's git at the grub-2.12 tag ("depends bli part_gpt").
#   2.06: none to the source; configure gets --disable-werror like 2.12 (gcc 12 warns where
#     gcc 10 did not: Debian 12 carries gcc12_build_*.patch for those warnings only).
#
# What is built, per target (x64: --target=x86_64; aa64: --target=aarch64-linux-gnu with
# Debian's cross compiler): configure --with-platform=efi, only grub-mkimage (the one host
# tool needed) and grub-core (kernel and modules); no fonts, themes, NLS, man pages or other
# utilities. Then grub-mkimage -O x86_64-efi / arm64-efi makes BOOTX64.EFI / BOOTAA64.EFI with
#   - the modules the lab's grub.cfg needs (tests/e2e/chains.py grub_cfg: echo, if/linux/boot)
#     plus the disk and file-system modules for the lab's ESP (GPT, FAT) and `search`;
#   - prefix /EFI/BOOT and an embedded config that finds the ESP holding
#     /EFI/BOOT/grub.cfg (search.file) and sets root and prefix there: normal mode then reads
#     the lab's /EFI/BOOT/grub.cfg, which loads /vmlinuz with `linux` and runs `boot`;
#   - an .sbat section with upstream's grub row only, no vendor row: "grub,4,Free Software
#     Foundation,grub,2.12,..." for 2.12 and "grub,1,Free Software Foundation,grub,2.06,..."
#     for 2.06 (the component generations of those releases in shim's SBAT.md; 2.06 is the
#     release that introduced grub-mkimage --sbat). The row's version is what identifies the
#     binary to fwtools (fwtools/uefi/loaders.py identify) and selects
#     policies/loaders/grub-2.12.toml or grub-2.06.toml. It is also what shim checks: shim
#     16.1's automatic SbatLevel has grub,5, so shim refuses this GRUB (the lab's
#     shim-upstream-grub212 case shows it).
#
# The cache key: results go to $LAB_CACHE/grub-<version>-<settings hash>/<target>/
# (BOOTX64.EFI, build-info.txt); the hash covers the source version and checksum, the
# configure flags, gcc's and the cross gcc's versions, the module list, the prefix, the
# embedded config, the SBAT rows and the targets. `--print-dir` prints the directory
# (matrix.py asks the script, with LAB_GRUB set). A target already built there is not rebuilt
# (LAB_FORCE=1 rebuilds); builds of other keys of the same version are removed. The unpacked
# sources and the object trees stay in $LAB_CACHE/grub-src.
#
# Usage: sudo [LAB_GRUB=2.06] tests/e2e/lab/build-grub.sh [x64] [aa64]  (default: all targets)
#        [LAB_GRUB=2.06] tests/e2e/lab/build-grub.sh --print-dir
# Environment: LAB_GRUB (2.12 or 2.06, default 2.12), LAB_CACHE (default
# /var/cache/fwtools-lab), LAB_JOBS (default nproc).
set -euo pipefail

# The Debian grub2 source packages, pinned; only their orig tarballs are used. If the archive
# drops a version, bump it (the orig tarball stays the GNU release) and re-record
# tests/e2e/lab/results.json.
GRUB_UPSTREAM=${LAB_GRUB:-2.12}
case $GRUB_UPSTREAM in
    2.12)
        GRUB_DEB_VERSION=2.12-9+deb13u4
        # sha256 of the GNU release https://ftp.gnu.org/gnu/grub/grub-2.12.tar.xz
        ORIG_SHA256=f3c97391f7c4eaa677a78e090c7e97e6dc47b16f655f04683ebd37bef7fe0faa
        SUITE=trixie
        SRC_LIST=fwtools-lab-src.sources  # the one build-ovmf.sh writes too
        ALL_TARGETS=(x64 aa64)
        SBAT_GEN=4
        ;;
    2.06)
        GRUB_DEB_VERSION=2.06-13+deb12u2
        # sha256 of the GNU release https://ftp.gnu.org/gnu/grub/grub-2.06.tar.xz
        ORIG_SHA256=b79ea44af91b93d17cd3fe80bdae6ed43770678a9a5ae192ccea803ebb657ee1
        SUITE=bookworm
        SRC_LIST=fwtools-lab-src-bookworm.sources
        ALL_TARGETS=(x64)
        SBAT_GEN=1
        ;;
    *) echo "build-grub.sh: LAB_GRUB=$GRUB_UPSTREAM: 2.12 or 2.06" >&2; exit 2 ;;
esac
ORIG=grub2_$GRUB_UPSTREAM.orig.tar.xz
AARCH64_PREFIX=aarch64-linux-gnu-
CONFIGURE_FLAGS=(
    --with-platform=efi --disable-werror --disable-nls --disable-grub-mkfont
    --disable-grub-themes --disable-grub-mount --disable-device-mapper --disable-liblzma
    --disable-libzfs
    AWK=gawk  # grub-core/genmoddep.awk uses asorti, which mawk (Debian's default awk) lacks
)
# beyond what grub-mkimage adds by dependency (moddep.lst)
MODULES=(normal linux boot echo test configfile search search_fs_file part_gpt part_msdos fat)
PREFIX=/EFI/BOOT
EMBEDDED_CFG='search.file /EFI/BOOT/grub.cfg root
set prefix=($root)/EFI/BOOT
'
SBAT_CSV="sbat,1,SBAT Version,sbat,1,https://github.com/rhboot/shim/blob/main/SBAT.md
grub,$SBAT_GEN,Free Software Foundation,grub,$GRUB_UPSTREAM,https://www.gnu.org/software/grub/
"

# per target: configure's --target (aa64: the cross compiler's triplet, so configure finds
# aarch64-linux-gnu-gcc as TARGET_CC; grub-mkimage stays a host tool), the grub-mkimage
# format, the removable-media file name
cpu_of() {
    case " ${ALL_TARGETS[*]} " in
        *" $1 "*) ;;
        *) echo "unknown target $1 for GRUB $GRUB_UPSTREAM (${ALL_TARGETS[*]})" >&2; exit 2 ;;
    esac
    case $1 in
        x64) echo x86_64 ;;
        aa64) echo "${AARCH64_PREFIX%-}" ;;
    esac
}
format_of() { case $1 in x64) echo x86_64-efi ;; aa64) echo arm64-efi ;; esac; }
file_of() { case $1 in x64) echo BOOTX64.EFI ;; aa64) echo BOOTAA64.EFI ;; esac; }

LAB_CACHE=${LAB_CACHE:-/var/cache/fwtools-lab}
LAB_JOBS=${LAB_JOBS:-$(nproc)}
SRC=$LAB_CACHE/grub-src
TREE=$SRC/grub-$GRUB_UPSTREAM

settings() {
    echo "grub $GRUB_UPSTREAM from Debian $SUITE grub2 $GRUB_DEB_VERSION orig $ORIG_SHA256, no patches"
    echo "gcc $(gcc -dumpfullversion 2>/dev/null || echo none)"
    echo "${AARCH64_PREFIX}gcc $("${AARCH64_PREFIX}gcc" -dumpfullversion 2>/dev/null || echo none)"
    echo "configure ${CONFIGURE_FLAGS[*]}"
    echo "modules ${MODULES[*]}"
    echo "prefix $PREFIX"
    printf 'config %s\n' "$EMBEDDED_CFG"
    printf 'sbat %s\n' "$SBAT_CSV"
    local t
    for t in "${ALL_TARGETS[@]}"; do echo "target $t $(format_of "$t") $(file_of "$t")"; done
}
KEY=grub-$GRUB_UPSTREAM-$(settings | sha256sum | cut -c1-12)
DEST=$LAB_CACHE/$KEY

if [ "${1:-}" = --print-dir ]; then
    echo "$DEST"
    exit 0
fi
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=("${ALL_TARGETS[@]}")
for t in "${TARGETS[@]}"; do cpu_of "$t" >/dev/null; done

LAB_LOG_NAME=build-grub
# shellcheck source=tests/e2e/lab/common.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/common.sh"

mapfile -t todo < <(pending "$DEST" "${TARGETS[@]}")
[ ${#todo[@]} -gt 0 ] || exit 0
started=$SECONDS

# -- build dependencies (.ci/run installs them with its other packages)
tools=(gcc:build-essential make:build-essential bison:bison flex:flex gawk:gawk xz:xz-utils
       python3:python3)
case " ${todo[*]} " in *" aa64 "*) tools+=("${AARCH64_PREFIX}gcc:gcc-aarch64-linux-gnu") ;; esac
install_missing "${tools[@]}"

# -- the source: the orig tarball only (apt-get source --download-only, as build-ovmf.sh; a
# mirror that answers 404 for the .dsc or the debian tarball still serves it)
if [ "$(cat "$TREE/.fwtools-unpacked" 2>/dev/null)" != "$ORIG_SHA256" ]; then
    mkdir -p "$SRC"
    cd "$SRC"
    if ! echo "$ORIG_SHA256  $ORIG" | sha256sum -c --status 2>/dev/null; then
        fetch_source grub2 "$GRUB_DEB_VERSION" "$SUITE" "$SRC_LIST"
        if ! echo "$ORIG_SHA256  $ORIG" | sha256sum -c --status; then
            echo "build-grub.sh: could not fetch $ORIG with SHA-256 $ORIG_SHA256 (is grub2" \
                 "$GRUB_DEB_VERSION still in the archive? bump GRUB_DEB_VERSION)" >&2
            exit 1
        fi
    fi
    log "unpacking $ORIG (no debian/patches)"
    rm -rf "$TREE" "$SRC"/build-"$GRUB_UPSTREAM"-*
    tar -xf "$ORIG" -C "$SRC"
    # missing from the 2.12 release tarball; GRUB's git has it (tag grub-2.12)
    [ "$GRUB_UPSTREAM" != 2.12 ] || [ -e "$TREE/grub-core/extra_deps.lst" ] || echo "depends bli part_gpt" > "$TREE/grub-core/extra_deps.lst"
    echo "$ORIG_SHA256" > "$TREE/.fwtools-unpacked"
fi

build_target() {
    local t=$1 cpu fmt obj dest cfg sbat
    cpu=$(cpu_of "$t")
    fmt=$(format_of "$t")
    obj=$SRC/build-$GRUB_UPSTREAM-$fmt
    # a configure line that changed means a fresh object tree
    if [ "$(cat "$obj/.fwtools-configured" 2>/dev/null)" != "$cpu ${CONFIGURE_FLAGS[*]}" ]; then
        log "$t: configure --target=$cpu ${CONFIGURE_FLAGS[*]}"
        rm -rf "$obj"
        mkdir -p "$obj"
        (cd "$obj" && "$TREE/configure" -q --target="$cpu" "${CONFIGURE_FLAGS[@]}")
        echo "$cpu ${CONFIGURE_FLAGS[*]}" > "$obj/.fwtools-configured"
    fi
    log "$t: make grub-mkimage and grub-core"
    # grub-mkimage links gnulib's libgnu.a, which only the SUBDIRS recursion would build
    nice -n 10 make -C "$obj/grub-core/lib/gnulib" -j"$LAB_JOBS" -s
    nice -n 10 make -C "$obj" -j"$LAB_JOBS" -s grub-mkimage
    nice -n 10 make -C "$obj/grub-core" -j"$LAB_JOBS" -s
    dest=$DEST/$t
    mkdir -p "$dest"
    cfg=$dest/embedded.cfg
    sbat=$dest/sbat.csv
    printf '%s' "$EMBEDDED_CFG" > "$cfg"
    printf '%s' "$SBAT_CSV" > "$sbat"
    "$obj/grub-mkimage" -d "$obj/grub-core" -O "$fmt" -o "$dest/$(file_of "$t").tmp" \
        -p "$PREFIX" -c "$cfg" --sbat "$sbat" "${MODULES[@]}"
    {
        echo "target: $t ($fmt)"
        echo "source: grub $GRUB_UPSTREAM, orig tarball of Debian $SUITE grub2 $GRUB_DEB_VERSION (sha256 $ORIG_SHA256), debian/patches not applied"
        echo "key: $KEY"
        echo "built: $(date -u +%FT%TZ)"
        echo "configure: --target=$cpu ${CONFIGURE_FLAGS[*]}"
        echo "gcc: $(gcc -dumpfullversion)"
        [ "$t" != aa64 ] || echo "${AARCH64_PREFIX}gcc: $("${AARCH64_PREFIX}gcc" -dumpfullversion)"
        echo "grub-mkimage: -O $fmt -p $PREFIX -c embedded.cfg --sbat sbat.csv ${MODULES[*]}"
        echo "sha256: $(sha256sum < "$dest/$(file_of "$t").tmp" | cut -d' ' -f1)"
    } > "$dest/build-info.txt.tmp"
    # build-info.txt last: a target counts as built when it exists
    mv "$dest/$(file_of "$t").tmp" "$dest/$(file_of "$t")"
    mv "$dest/build-info.txt.tmp" "$dest/build-info.txt"
    log "$t: done -> $dest/$(file_of "$t")"
    cat "$dest/build-info.txt"
}

for t in "${todo[@]}"; do build_target "$t"; done
settings > "$DEST/settings.txt"

remove_stale "grub-$GRUB_UPSTREAM" "$DEST"  # this version's other keys only
log "built ${todo[*]} in $((SECONDS - started)) s"
