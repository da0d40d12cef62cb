#!/bin/bash
# Make qemu:///system answer for tests/e2e/test_libvirt_fleet.py. Where an init system runs
# libvirt (systemd's socket activation on a Debian host) it already does and nothing is
# started. In a CI container (no systemd as PID 1) it starts Debian's daemons directly, as
# root, in the background: virtlogd (QEMU's stdout/stderr go through it: qemu.conf
# stdio_handler = "logd" by default) and libvirtd (Debian 12's libvirt 9.0 ships the
# monolithic daemon; its QEMU driver serves qemu:///system). The daemons stay up for later
# test sessions; a flock keeps parallel pytest workers from starting them twice.
# Exit status: 0 libvirt answers; 1 it does not (the daemons' complaints on stderr); 3 it does
# not answer and this user may not start it (not root).
set -euo pipefail
uri=qemu:///system
lock=/run/fwtools-e2e-libvirt.lock

answers() { LC_ALL=C virsh -c "$uri" version >/dev/null 2>&1; }

command -v virsh >/dev/null || { echo "libvirt.sh: virsh missing (apt-get install libvirt-clients)" >&2; exit 1; }
answers && exit 0
if [[ $EUID -ne 0 ]]; then
    echo "libvirt.sh: $uri does not answer and only root can start libvirtd" >&2
    exit 3
fi
exec 9>"$lock"
flock -w 60 9
answers && exit 0

alive() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }
log=/var/log/libvirt/fwtools-e2e-daemons.log
mkdir -p /var/log/libvirt
if ! alive /run/virtlogd.pid; then
    virtlogd --daemon --pid-file /run/virtlogd.pid >>"$log" 2>&1
fi
if ! alive /run/libvirtd.pid; then
    libvirtd --daemon --pid-file /run/libvirtd.pid >>"$log" 2>&1
fi
for _ in $(seq 60); do
    answers && exit 0
    sleep 0.5
done
echo "libvirt.sh: $uri does not answer 30 s after starting libvirtd; $log says:" >&2
tail -n 20 "$log" >&2
LC_ALL=C virsh -c "$uri" version >&2 || true
exit 1
