"""A machine as firmware + variable store + disk: which boot chain firmware finds on the
disk (:mod:`.discover`), whether firmware, shim and GRUB let each stage run
(:mod:`.trust`), what the firmware build is (:mod:`.firmware_id`), and the verdict with the
W^X replay (:mod:`.vm`). Sits above :mod:`fwtools.uefi` and :mod:`fwtools.fleet`."""
