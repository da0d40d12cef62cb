"""Many variable stores at once: audit (:mod:`.audit`), where stores come from (:mod:`.sources`:
files, directories, libvirt domains), and the worker pool that runs them (:mod:`.workers`).

Facts about Microsoft's Secure Boot objects (certificates, signed KEK updates, the published
dbx) are in :mod:`.known`.
"""
