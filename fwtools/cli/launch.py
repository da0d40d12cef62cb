"""The console scripts (pyproject.toml ``[project.scripts]``): each command in a process of its own.

A command's process ends with the command, so two things the cyclic garbage collector
does in it are wasted work:

- while the command's modules load, it scans the tens of thousands of objects that
  imports create (classes, functions, tables), none of them garbage;
- at exit, the interpreter's last collection traverses all of them again before the
  process ends anyway.

So collection is paused while the modules load; then everything loaded so far is frozen
(``gc.freeze``: kept out of every later collection) and collection resumes for the
command's work, where batch commands do create garbage. At exit whatever is left is frozen
too. Objects are still freed by reference counting as usual. For the single-file
commands this is 3-6 ms of a start-up of a few tens (benchmarks/README.md).

click looks its own strings up with ``gettext`` (a path type's name, the help option's text,
at every start). gettext's first lookup imports ``locale`` and each one searches the
interpreter's locale directory for a catalogue of the default domain, about 1 ms in all.
Neither fwtools nor click ships a catalogue, so the console scripts give click its strings
as they are.

Callers that import a command's ``main`` directly (tests, ``python -m``) get the
interpreter's defaults for both.
"""

from __future__ import annotations

import gc
import sys
from functools import partial


def _as_written(message: str) -> str:
    return message


def _untranslated_click() -> None:
    import gettext

    import click  # noqa: F401 (its modules bind gettext.gettext as _ when imported)

    for name, module in list(sys.modules.items()):
        if name.partition(".")[0] == "click" and getattr(module, "_", None) is gettext.gettext:
            module._ = _as_written  # type: ignore[attr-defined]


def _launch(module: str) -> None:
    gc.disable()
    try:
        _untranslated_click()
        main = __import__(module, fromlist=["main"]).main
        gc.freeze()
        gc.enable()
        main()
    finally:
        gc.freeze()


# The console scripts, by name (pyproject.toml [project.scripts]).
pe_inspect = partial(_launch, "fwtools.cli.pe_inspect")
fw_vars = partial(_launch, "fwtools.cli.fw_vars")
fw_sigdb = partial(_launch, "fwtools.cli.fw_sigdb")
fw_check = partial(_launch, "fwtools.cli.fw_check")
byebyebios = partial(_launch, "fwtools.cli.byebyebios")
fw_pcr = partial(_launch, "fwtools.cli.fw_pcr")
