"""The registry of loader operations and conditions (fwtools/uefi/registry.py, filled by
fwtools/uefi/operations.py): what a model's step may name, and what loading a model accepts
and refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from fwtools._base.record import replace
from fwtools.errors import UsageError
from fwtools.uefi.firmware import STOP_CODES
from fwtools.uefi.loaders import Step, load_model, loaders_dir, shipped_models
from fwtools.uefi.operations import CONDITIONS, OPERATIONS, PARAMETERS, Runner
from fwtools.uefi.profile import load_firmware
from fwtools.uefi.replay import replay_files

TESTDATA = Path(__file__).resolve().parents[2] / "testdata"


def write(tmp_path: Path, steps: str) -> Path:
    p = tmp_path / "model.toml"
    p.write_text('family = "efi-app"\n' + steps, encoding="utf-8")
    return p


def test_every_step_kind_the_shipped_models_use_is_registered_once() -> None:
    used = {s.op for m in shipped_models() for s in (*m.steps, *m.loader_steps)}
    assert used <= OPERATIONS.keys()
    # and nothing is registered that no model can reach (a dead handler)
    assert OPERATIONS.keys() - used <= {"dxe_assign", "clear", "claim", "free", "execute"}


def test_every_operation_and_condition_is_documented() -> None:
    for op in OPERATIONS.values():
        assert op.doc, op.name
        assert op.required.isdisjoint(op.optional), op.name
        assert (op.required | op.optional) <= PARAMETERS.keys(), op.name
    for cond in CONDITIONS.values():
        assert cond.doc, cond.name


def test_every_refusal_of_a_shipped_model_names_a_stop_code() -> None:
    refusals = [s for m in shipped_models() for s in (*m.steps, *m.loader_steps)
                if s.op == "refuse"]
    assert refusals
    for step in refusals:
        assert step.args.get("code") in STOP_CODES, step.args["reason"]


# ---- accepted ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CONDITIONS))
def test_every_condition_is_accepted_and_negated(tmp_path: Path, name: str) -> None:
    m = load_model(write(tmp_path, f'[[steps]]\nop = "run"\nwhen = ["{name}", "!{name}"]\n'))
    assert m.steps[0].when == (name, f"!{name}")


_MINIMAL = {
    "run": "", "allocate": 'name = "b"\ntype = "LoaderCode"\nsize = "next.image"\n',
    "claim": 'name = "b"\nsize = 4096\n', "write": 'range = "self"\n',
    "execute": 'range = "next"\n', "place": 'into = "b"\n',
    "read": 'into = "b"\nfrom = "protected_mode"\n', "relocate": 'into = "b"\n',
    "remap_image": 'range = "self"\n',
    "attrs": 'range = "b"\ngrant = "rw"\nrevoke = "x"\n',
    "section_attrs": 'into = "b"\nstyle = "shim-15.8"\n',
    "set": 'range = "next"\nattributes = "RO"\n', "clear": 'range = "b"\nattributes = "XP"\n',
    "dxe_assign": 'range = "b"\nattributes = "RO|XP"\n', "load_image": "", "shim_load": "",
    "start": "", "free": 'range = "b"\n', "exit_boot_services": "",
    "refuse": 'reason = "no"\ncode = "unsigned"\n', "done": "",
}


def test_the_minimal_table_covers_the_registry() -> None:
    assert set(_MINIMAL) == set(OPERATIONS)


@pytest.mark.parametrize("op", sorted(_MINIMAL))
def test_every_operation_with_its_required_arguments_loads(tmp_path: Path, op: str) -> None:
    m = load_model(write(tmp_path, f'[[steps]]\nop = "{op}"\n{_MINIMAL[op]}'))
    assert m.steps[0].op == op
    assert set(m.steps[0].args) == OPERATIONS[op].required | (
        set(m.steps[0].args) & OPERATIONS[op].optional)


@pytest.mark.parametrize("op", sorted(op for op, spec in OPERATIONS.items() if spec.required))
def test_a_missing_required_argument_is_refused(tmp_path: Path, op: str) -> None:
    body = "\n".join(line for line in _MINIMAL[op].splitlines()
                     if line.split(" = ")[0] != sorted(OPERATIONS[op].required)[0])
    with pytest.raises(UsageError, match=rf"model\.toml: steps\[0\]: op {op} needs"):
        load_model(write(tmp_path, f'[[steps]]\nop = "{op}"\n{body}\n'))


# ---- refused, naming the file and the step -----------------------------------------------


@pytest.mark.parametrize(
    ("step", "words"),
    [
        ('op = "set"\nrange = "next"\nattributes = "RO"\nregion = "stack"', "region must be one"),
        ('op = "section_attrs"\ninto = "b"\nstyle = "shim-99"', "style must be one of"),
        ('op = "set"\nrange = "b"\nattributes = "NX"', "unknown memory attribute 'NX'"),
        ('op = "clear"\nrange = "b"\nattributes = 4', "attributes must be a string"),
        ('op = "refuse"\nreason = "no"\ncode = "because"', "code must be one of"),
        ('op = "refuse"\nreason = ""', "reason must be a non-empty string"),
        ('op = "allocate"\nname = "b"\ntype = "LoaderCode"\nsize = "next.kernel"',
         "size must be a byte count"),
        ('op = "allocate"\nname = "b"\ntype = "LoaderCode"\nsize = -1', "size must be"),
        ('op = "allocate"\nname = "b"\ntype = "LoaderCode"\nsize = 1\nalign = 0',
         "align must be"),
        ('op = "allocate"\nname = "b"\ntype = "LoaderCode"\nsize = 1\npool = "yes"',
         "pool must be true or false"),
        ('op = "load_image"\nsource = "disk"', "source must be one of fv, unknown"),
        ('op = "attrs"\nrange = "b"\ngrant = "rwz"\nrevoke = ""', "grant must be permission"),
        ('op = "attrs"\nrange = "b"\ngrant = "r"\nrevoke = "w"\nunaligned = "maybe"',
         "unaligned must be one of"),
        ('op = "place"\ninto = "b"\nrelocate = 1', "relocate must be true or false"),
        ('op = "run"\nwhen = ["map", "next.sunny"]', "not 'next.sunny'"),
        ('op = "run"\nwhen = ["!"]', "not '!'"),
        ('op = "run"\nwhen = ["!!map"]', "not '!!map'"),
        ('op = "run"\nwhen = "map"', "when must list conditions"),
        ('op = "teleport"', "unknown op 'teleport'"),
    ],
)
def test_bad_steps_are_usage_errors_naming_file_and_step(tmp_path: Path, step: str,
                                                         words: str) -> None:
    path = write(tmp_path, f'[[steps]]\nop = "run"\n[[loader_steps]]\n{step}\n')
    with pytest.raises(UsageError) as e:
        load_model(path)
    text = str(e.value)
    assert f"{path}: loader_steps[0]" in text
    assert words in text


def test_the_runner_dispatches_through_the_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """The replay runs a step through its registry entry: replacing the entry changes what
    runs (there is no second dispatch table or if-chain beside it)."""
    app = TESTDATA / "sample" / "hello-nx.signed.efi"
    assert replay_files([app], firmware="ovmf").verdict == "boots"
    seen: list[str] = []
    original = OPERATIONS["run"]

    def spy(runner: Runner, step: Step) -> None:
        seen.append(runner.stage_name(runner.index))
        original.handler(runner, step)

    monkeypatch.setitem(OPERATIONS, "run", replace(original, handler=spy))
    replay_files([app], firmware=load_firmware("ovmf"))
    assert seen == ["app"]


def test_shipped_model_files_all_pass_the_registry() -> None:
    for p in sorted(Path(loaders_dir()).glob("*.toml")):
        load_model(p)


def test_registering_twice_or_with_undeclared_parameters_fails() -> None:
    from fwtools.uefi.registry import condition, operation

    with pytest.raises(ValueError, match="operation run"):
        operation("run")(lambda r, s: None)
    with pytest.raises(ValueError, match="undeclared parameters \\['colour'\\]"):
        operation("paint", required=("colour",))(lambda r, s: None)
    assert "paint" not in OPERATIONS
    with pytest.raises(ValueError, match="condition map"):
        condition("map")(lambda r: True)
