"""The firmware lab: W^X-enforcing DEBUG OVMF built from Debian's edk2 source (build-ovmf.sh),
the matrix booted on it (matrix.py) and the recorded results (calibration.py, results.json)."""
