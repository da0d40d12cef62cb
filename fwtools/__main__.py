"""``python -m fwtools`` runs pe-inspect."""

from fwtools.cli.pe_inspect import main

main()
