#!/bin/bash
# Boot Debian's OVMF with a software TPM (swtpm) under QEMU and capture, from inside the
# guest, the firmware's TCG event log (/sys/kernel/security/tpm0/binary_bios_measurements)
# and every PCR of every bank the TPM reports (/sys/class/tpm/tpm0/pcr-<bank>/N), read at
# the same moment. The recipe is docs/reference/measured-boot.md section 8.
#
#   bash testdata/tcg/capture.sh CASE OUTDIR
#
# CASE is
#   kernel   OVMF_CODE_4M.fd + OVMF_VARS_4M.fd (Secure Boot off), QEMU -kernel vmlinuz
#   shim-sb  OVMF_CODE_4M.secboot.fd + OVMF_VARS_4M.ms.fd (Secure Boot on), a GPT disk whose
#            ESP holds shim -> grub -> vmlinuz + initrd (Debian 12 signed binaries)
# OUTDIR receives eventlog.bin, pcrs.json ({"sha256": {"0": "hex", ...}, ...}), serial.log
# and the initrd. Exit status 3: the PCRs were read but Linux had no event log to print
# (pcrs.json is written, eventlog.bin is not). Needs qemu-system-x86 ovmf swtpm busybox-static gdisk dosfstools mtools
# and the Debian corpus (tests/corpus/fetch.sh) for shim, grub and the kernel.
# SUITE=bookworm (default: the installed /usr/share/OVMF, Debian 12's) or SUITE=trixie (the
# corpus' Debian 13 OVMF, shim, grub and kernel). VARS=FILE boots shim-sb with a copy of FILE
# instead of OVMF_VARS_4M.ms.fd (e.g. a store after fw-vars update); KEEP_DISK=1 leaves the
# boot disk (sparse) in OUTDIR/disk.img, so that fw-pcr predict --disk can read its GPT.
#   initrd   only writes OUTDIR/initrd.img (to build a boot disk or a UKI around it)
#   disk     boots DISK=FILE (a boot disk made by the caller, e.g. systemd-boot + a UKI whose
#            .initrd is OUTDIR/initrd.img of the initrd case) with CODE (default
#            OVMF_CODE_4M.secboot.fd, SMM) and a copy of VARS (default OVMF_VARS_4M.ms.fd)
# ARCH=arm64 boots the same cases on Debian's AAVMF (qemu-efi-aarch64 from the corpus) with
# qemu-system-aarch64 -machine virt and a tpm-tis-device, Debian's arm64 shim, GRUB and
# kernel, and the arm64 busybox-static of the corpus; CODE defaults to AAVMF_CODE.secboot.fd
# (Debian 12: AAVMF_CODE.fd, built with Secure Boot), VARS to AAVMF_VARS.ms.fd.
set -euo pipefail
case_name="$1"
out="$(mkdir -p "$2" && cd "$2" && pwd)"
suite="${SUITE:-bookworm}"
arch="${ARCH:-amd64}"
root="${FWTOOLS_CORPUS:-/var/cache/fwtools-corpus}/root"
corpus="$root/$suite/$arch"
kernel="$(ls "$corpus"/linux-image-*/boot/vmlinuz-* | head -n1)"
if [ "$arch" = arm64 ]; then
    shim="$corpus/shim-signed/usr/lib/shim/shimaa64.efi.signed"
    grub="$corpus/grub-efi-arm64-signed/usr/lib/grub/arm64-efi-signed/grubaa64.efi.signed"
    removable=BOOTAA64.EFI; second=grubaa64.efi; console=ttyAMA0
    busybox="$root/bookworm/arm64/busybox-static/bin/busybox"
    ovmf="$root/$suite/all/qemu-efi-aarch64/usr/share/AAVMF"
    code_default="$ovmf/AAVMF_CODE.secboot.fd"
    [ -e "$code_default" ] || code_default="$ovmf/AAVMF_CODE.fd"
    vars_default="$ovmf/AAVMF_VARS.ms.fd"
else
    shim="$corpus/shim-signed/usr/lib/shim/shimx64.efi.signed"
    grub="$corpus/grub-efi-amd64-signed/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed"
    removable=BOOTX64.EFI; second=grubx64.efi; console=ttyS0
    busybox=/bin/busybox
    ovmf=/usr/share/OVMF
    [ "$suite" = bookworm ] || ovmf="$corpus/ovmf/usr/share/OVMF"
    code_default="$ovmf/OVMF_CODE_4M.secboot.fd"
    vars_default="$ovmf/OVMF_VARS_4M.ms.fd"
fi
work="$(mktemp -d)"
# On any exit the console so far is kept (a boot that timed out says why in it).
trap '[ -z "${swtpm_pid:-}" ] || kill "$swtpm_pid" 2>/dev/null || true
      [ ! -e "$work/serial.log" ] || tr -d "\r" <"$work/serial.log" >"$out/serial.log"
      rm -rf "$work"' EXIT
cd "$work"

# The initramfs: a static busybox whose init prints every PCR bank and the log as hex
# between markers on the serial console, then powers off.
mkdir -p ir/bin ir/proc ir/sys ir/dev
cp "$busybox" ir/bin/busybox
cat >ir/init <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc p /proc; mount -t sysfs s /sys; mount -t securityfs s /sys/kernel/security
i=0; while [ ! -e /sys/class/tpm/tpm0 ] && [ $i -lt 20 ]; do sleep 1; i=$((i+1)); done
# No TPM driver (Debian's arm64 kernel has no tpm_tis): the host reads the PCRs instead.
[ -e /sys/class/tpm/tpm0 ] || { echo @@NOTPM; sleep 3600; }
echo @@PCRS
for d in /sys/class/tpm/tpm0/pcr-*; do
  b=${d##*/pcr-}; for n in $(seq 0 23); do echo "@P $b $n $(cat $d/$n)"; done
done
echo @@LOG
od -An -v -tx1 /sys/kernel/security/tpm0/binary_bios_measurements | tr -d ' \n' | fold -w128 | sed 's/^/@L /'
echo; echo @@END
poweroff -f
INIT
chmod +x ir/init
(cd ir && find . | /bin/busybox cpio -o -H newc 2>/dev/null | gzip -9) >initrd.img
cp initrd.img "$out/initrd.img"
[ "$case_name" != initrd ] || { echo "initrd in $out/initrd.img"; exit 0; }

mkdir tpm
# Without --terminate: when the guest cannot read its TPM, QEMU is killed (no shutdown
# command reaches swtpm) and the PCRs are read from swtpm's volatile state (read_pcrs).
swtpm socket --tpm2 --tpmstate dir=tpm --ctrl type=unixio,path=tpm/sock &
swtpm_pid=$!
while [ ! -S tpm/sock ]; do sleep 0.1; done
tpm_args=(-chardev socket,id=chrtpm,path=tpm/sock -tpmdev emulator,id=tpm0,chardev=chrtpm
          -device "$([ "$arch" = arm64 ] && echo tpm-tis-device || echo tpm-tis),tpmdev=tpm0")
common=(-accel tcg -m 1024 -nographic -no-reboot -net none -nodefaults -serial stdio)

read_pcrs() {  # swtpm's PCRs after the guest: store its volatile state, resume it in a new
    # swtpm on TCP and read every bank with tpm2_pcrread, as "@P bank n value" lines
    swtpm_ioctl --unix tpm/sock -v
    swtpm_ioctl --unix tpm/sock -s
    wait "$swtpm_pid" || true
    local port
    port="$(python3 -c 'import random; print(random.randrange(20000, 60000, 2))')"
    swtpm socket --tpm2 --tpmstate dir=tpm --flags not-need-init \
        --server type=tcp,port="$port",bindaddr=127.0.0.1 \
        --ctrl type=tcp,port=$((port + 1)),bindaddr=127.0.0.1 &
    swtpm_pid=$!
    local i=0
    until TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=$port" tpm2_pcrread \
            "sha1:all+sha256:all+sha384:all+sha512:all" >pcrread.txt 2>/dev/null; do
        i=$((i + 1)); [ $i -lt 50 ] || { echo "tpm2_pcrread failed" >&2; return 1; }
        sleep 0.2
    done
    kill "$swtpm_pid"; wait "$swtpm_pid" 2>/dev/null || true; swtpm_pid=
    awk '/^  [a-z0-9]+:$/ {bank = substr($1, 1, length($1) - 1); next}
         /^ +[0-9]+ *: *0x/ {sub(/:/, " "); print "@P", bank, $1, substr($NF, 3)}' \
        pcrread.txt >>serial.log
}

boot_disk() {  # Debian's Secure Boot OVMF (SMM) / AAVMF or CODE, vars.fd, the disk $1
    local machine=(qemu-system-x86_64 -machine q35,smm=on
                   -global driver=cfi.pflash01,property=secure,value=on)
    [ "$arch" != arm64 ] || machine=(qemu-system-aarch64 -machine virt -cpu max)
    "${machine[@]}" "${common[@]}" \
        -drive if=pflash,format=raw,unit=0,readonly=on,file="${CODE:-$code_default}" \
        -drive if=pflash,format=raw,unit=1,file=vars.fd "${tpm_args[@]}" \
        -drive file="$1",format=raw,if=virtio,snapshot=on \
        >serial.log </dev/null &
    local qemu_pid=$! status=0 deadline=$((SECONDS + ${BOOT_TIMEOUT:-600}))
    while kill -0 "$qemu_pid" 2>/dev/null; do
        if grep -q '^@@NOTPM' serial.log || [ $SECONDS -ge $deadline ]; then
            kill -9 "$qemu_pid"; wait "$qemu_pid" 2>/dev/null || true
            [ $SECONDS -lt $deadline ] || { echo "boot timed out" >&2; return 124; }
            read_pcrs
            return
        fi
        sleep 0.5
    done
    wait "$qemu_pid" || status=$?
    return $status
}

case "$case_name" in
kernel)
    cp $ovmf/OVMF_VARS_4M.fd vars.fd
    timeout 600 qemu-system-x86_64 -machine q35 "${common[@]}" \
        -drive if=pflash,format=raw,unit=0,readonly=on,file=$ovmf/OVMF_CODE_4M.fd \
        -drive if=pflash,format=raw,unit=1,file=vars.fd "${tpm_args[@]}" \
        -kernel "$kernel" -initrd initrd.img -append "console=ttyS0 panic=-1 loglevel=1" \
        >serial.log </dev/null
    ;;
shim-sb)
    cp "${VARS:-$vars_default}" vars.fd
    cat >grub.cfg <<CFG
set timeout=0
linux /vmlinuz console=$console panic=-1 loglevel=1
initrd /initrd.img
boot
CFG
    # A 64 MiB GPT disk with fixed GUIDs (PCR 5 measures the GPT) and one FAT ESP.
    truncate -s 64M disk.img
    sgdisk -U 11111111-2222-3333-4444-555555555555 \
        -n 1:2048:0 -t 1:ef00 -u 1:66666666-7777-8888-9999-aaaaaaaaaaaa -c 1:ESP disk.img >/dev/null
    truncate -s $(( (131072 - 2048 - 33) * 512 )) esp.img
    mkfs.vfat -F 32 -i 12345678 -n ESP esp.img >/dev/null
    mmd -i esp.img ::/EFI ::/EFI/BOOT ::/EFI/debian
    mcopy -i esp.img "$shim" ::/EFI/BOOT/$removable
    mcopy -i esp.img "$grub" ::/EFI/BOOT/$second
    mcopy -i esp.img grub.cfg ::/EFI/debian/grub.cfg
    mcopy -i esp.img "$kernel" ::/vmlinuz
    mcopy -i esp.img initrd.img ::/initrd.img
    dd if=esp.img of=disk.img bs=512 seek=2048 conv=notrunc status=none
    boot_disk "$PWD/disk.img"
    [ -z "${KEEP_DISK:-}" ] || cp --sparse=always disk.img "$out/disk.img"
    ;;
disk)
    cp "${VARS:-$vars_default}" vars.fd
    boot_disk "$DISK"
    ;;
*) echo "unknown case $case_name" >&2; exit 2 ;;
esac

tr -d '\r' <serial.log >"$out/serial.log"
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
banks: dict[str, dict[str, str]] = {}
hexlog = []
for line in open(f"{out}/serial.log", errors="replace"):
    if line.startswith("@P "):
        _, bank, n, value = line.split()
        banks.setdefault(bank, {})[n] = value.lower()
    elif line.startswith("@L "):
        # The last chunk has no newline of its own: "@L <hex>@@END".
        hexlog.append(line[3:].split("@@")[0].strip())
if not banks:
    sys.exit("no PCRs on the serial console")
json.dump(banks, open(f"{out}/pcrs.json", "w"), indent=1, sort_keys=True)
if not hexlog:  # Linux got no log from the firmware (e.g. not booted through its EFI stub)
    sys.exit(3)
open(f"{out}/eventlog.bin", "wb").write(bytes.fromhex("".join(hexlog)))
PY
echo "captured $case_name into $out"
