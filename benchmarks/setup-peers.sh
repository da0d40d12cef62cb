#!/bin/bash
# Install the peer tools the benchmarks compare against, each in its own virtual
# environment outside the repository, so their dependencies never mix with fwtools' venv.
#   virt-firmware (Gerd Hoffmann; pe-inspect, virt-fw-vars, ...) from PyPI
#   python-uefivars (uefivars) from PyPI
# The tests use both as oracles, so .ci/run runs this too.
# Usage: bash benchmarks/setup-peers.sh   (idempotent; FWTOOLS_BENCH_DIR overrides the place)
set -euo pipefail

bench="${FWTOOLS_BENCH_DIR:-/var/cache/fwtools-bench}"
venv="$bench/virt-venv"
# Pinned so that results stay comparable from run to run; bump deliberately.
virt_firmware="virt-firmware==${VIRT_FIRMWARE_VERSION:-26.10}"

mkdir -p "$bench"
if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
"$venv/bin/python" -m pip install -q --disable-pip-version-check "$virt_firmware"

# A smoke run, so a broken install fails here rather than as a column of errors later.
"$venv/bin/pe-inspect" --help >/dev/null
echo "virt-firmware $("$venv/bin/python" -c \
    'import importlib.metadata as m; print(m.version("virt-firmware"))') in $venv"

# python-uefivars (awslabs): another reader of edk2 stores and JSON, an oracle for the
# JSON-interchange tests.
uvenv="$bench/uefivars-venv"
if [[ ! -x "$uvenv/bin/python" ]]; then
    python3 -m venv "$uvenv"
fi
"$uvenv/bin/python" -m pip install -q --disable-pip-version-check "uefivars==${UEFIVARS_VERSION:-1.2}"
"$uvenv/bin/uefivars" --help >/dev/null
echo "python-uefivars $("$uvenv/bin/python" -c \
    'import importlib.metadata as m; print(m.version("uefivars"))') in $uvenv"
