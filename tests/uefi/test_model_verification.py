"""How sure each stage is: which loader models a real-firmware case in CI exercises (each
model's ``verified_by`` in policies/loaders/*.toml, the one place that says so), whether a
stage's model was identified, given, or a fallback, and the generated table in
docs/boot-chain.md."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
from corpus import Corpus

from fwtools.errors import UsageError
from fwtools.uefi.image import load_stage
from fwtools.uefi.loaders import choose_model, load_model, shipped_models
from fwtools.uefi.model_table import BEGIN, END, model_table, replace_table
from fwtools.uefi.profile import load_firmware
from fwtools.uefi.replay import replay

ROOT = Path(__file__).resolve().parents[2]
_ID = re.compile(r"^(tests/e2e/[\w/]+\.py)::(\w+)\[([\w.-]+)\]$")


@cache
def _tree(path: str) -> ast.Module:
    return ast.parse((ROOT / path).read_text(encoding="utf-8"))


def _assigned_list(tree: ast.Module, name: str) -> list[ast.expr]:
    for node in tree.body:
        targets = [node.target] if isinstance(node, ast.AnnAssign) else \
            node.targets if isinstance(node, ast.Assign) else []
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            value = node.value
            assert isinstance(value, ast.List), name
            return list(value.elts)
    raise AssertionError(f"no list {name}")


def parametrized_cases(path: str, function: str) -> dict[str, ast.expr]:
    """The ids a test function is parametrized with, each with its case expression: read
    from the ``ids=[... for c in CASES]`` of its ``pytest.mark.parametrize`` and the list it
    iterates (a ``Case("id", ...)`` call or an ``("id", ...)`` tuple per case)."""
    tree = _tree(path)
    func = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function),
                None)
    assert func is not None, f"{path} has no test {function}"
    for deco in func.decorator_list:
        if not isinstance(deco, ast.Call):
            continue
        ids = next((k.value for k in deco.keywords if k.arg == "ids"), None)
        if isinstance(ids, ast.ListComp) and isinstance(ids.generators[0].iter, ast.Name):
            out = {}
            for case in _assigned_list(tree, ids.generators[0].iter.id):
                first = case.args[0] if isinstance(case, ast.Call) else \
                    case.elts[0] if isinstance(case, ast.Tuple) else None
                assert isinstance(first, ast.Constant) and isinstance(first.value, str)
                out[first.value] = case
            return out
    raise AssertionError(f"{path}::{function} is not parametrized by a case list")


VERIFIED = [(m.name, t) for m in shipped_models() for t in m.verified_by]


def test_the_debian_chains_models_are_verified() -> None:
    """The models the Debian 12 and 13 chains run on both architectures (issue 15)."""
    verified = {m.name for m in shipped_models() if m.verified}
    assert {"shim-16.1", "grub-debian-2.06", "grub-debian-2.12", "linux-x86-stub",
            "linux-x86-stub-backport", "linux-arm64-image", "systemd-stub"} <= verified
    # and nothing without a real case: the older upstream GRUB, Fedora, older shim and zboot
    # models (upstream GRUB 2.12 and 2.06 have one: tests/e2e/lab/build-grub.sh)
    assert {"grub-2.12", "grub-2.06"} <= verified
    assert not verified & {"grub-2.02", "grub-rh-nx", "shim-15.6",
                           "linux-arm64-zboot", "linux-x86-legacy", "efi-app"}


# The firmware lab's boots are parametrized by tests/e2e/lab/matrix.py's CASES (built from the
# variants, not a list of literals): their ids are looked up there.
LAB_TEST = ("tests/e2e/test_lab.py", "test_lab_boot")


@pytest.mark.parametrize(("model", "test_id"), VERIFIED, ids=[f"{m}:{t.split('::')[-1]}"
                                                               for m, t in VERIFIED])
def test_every_verified_by_names_an_existing_e2e_case(model: str, test_id: str) -> None:
    m = _ID.match(test_id)
    assert m, f"{model}: {test_id!r} is not tests/e2e/FILE.py::TEST[ID]"
    path, function, case = m.groups()
    assert (ROOT / path).is_file(), test_id
    if (path, function) == LAB_TEST:
        from e2e.lab.matrix import CASE_BY_ID

        assert case in CASE_BY_ID, f"{model}: no lab case {test_id}"
        return
    assert case in parametrized_cases(path, function), f"{model}: no case {test_id}"


_BOOT_CHAIN_CASES = [(m, t) for m, t in VERIFIED if "::test_boot_chain[" in t]


@pytest.mark.parametrize(("model", "test_id"), _BOOT_CHAIN_CASES,
                         ids=[f"{m}:{t.split('::')[-1]}" for m, t in _BOOT_CHAIN_CASES])
def test_a_verifying_boot_chain_case_runs_the_model(corpus: Corpus, model: str,
                                                    test_id: str) -> None:
    """The case's chain, replayed on the case's profile, reaches a stage that runs the
    model (a stage after the one that faults is not exercised)."""
    m = _ID.match(test_id)
    assert m
    path, function, case_id = m.groups()
    case = parametrized_cases(path, function)[case_id]
    assert isinstance(case, ast.Call)
    arch, suite, _fw_suite, _code, _vars, secure_boot, profile = (
        ast.literal_eval(a) for a in case.args[1:8])
    grub_signed = all(ast.literal_eval(k.value) for k in case.keywords
                      if k.arg == "grub_signed")
    paths = list(corpus.boot_chain(suite, {"x64": "amd64", "aa64": "arm64"}[arch]))
    if not grub_signed:
        paths[1] = corpus.grub(suite, {"x64": "amd64", "aa64": "arm64"}[arch], signed=False)
    r = replay([load_stage(p) for p in paths], load_firmware(profile), arch=arch,
               secure_boot=secure_boot)
    reached = len(r.stages) if r.stop is None else r.stop.stage_index
    assert model in [s.model for s in r.stages[:reached]], (test_id, r.reason)


_LAB_CASES = [(m, t) for m, t in VERIFIED if "::test_lab_boot[" in t]


@pytest.mark.parametrize(("model", "test_id"), _LAB_CASES,
                         ids=[f"{m}:{t.split('::')[-1]}" for m, t in _LAB_CASES])
def test_a_verifying_lab_case_runs_the_model(corpus: Corpus, model: str, test_id: str) -> None:
    """As for test_boot_chain: the lab case's replay reaches a stage that runs the model."""
    from corpus.params import unavailable
    from e2e.lab.matrix import CASE_BY_ID, nxshim_missing, replay_case

    m = _ID.match(test_id)
    assert m
    case = CASE_BY_ID[m.group(3)]
    why = nxshim_missing(case)
    if why:
        unavailable(why)
    r = replay_case(case, corpus)
    reached = len(r.stages) if r.stop is None else r.stop.stage_index
    assert model in [s.model for s in r.stages[:reached]], (test_id, r.reason)


def test_the_doc_table_is_generated_from_the_models() -> None:
    doc = (ROOT / "docs" / "boot-chain.md").read_text(encoding="utf-8")
    assert BEGIN in doc and END in doc
    assert replace_table(doc, model_table(shipped_models())) == doc, \
        "run: python -m fwtools.uefi.model_table --write docs/boot-chain.md"


def test_the_doc_table_lists_every_model_once() -> None:
    table = model_table(shipped_models())
    names = [row.split("|")[1].strip() for row in table.splitlines()[2:]]
    assert sorted(names) == sorted(m.name for m in shipped_models())


@pytest.mark.parametrize(("extra", "error"), [
    ("verified = true\n", "verified = true needs verified_by"),
    ('verified_by = ["tests/e2e/test_boot_chains.py::test_boot_chain[x]"]\n', "needs it"),
    ('verified = true\nverified_by = ["a real boot"]\n', "must list e2e test ids"),
    ('verified = "yes"\n', "verified must be true or false"),
])
def test_verified_needs_the_cases(tmp_path: Path, extra: str, error: str) -> None:
    p = tmp_path / "m.toml"
    p.write_text('family = "efi-app"\n' + extra, encoding="utf-8")
    with pytest.raises(UsageError, match=re.escape(error)):
        load_model(p)


# ---- model_basis ---------------------------------------------------------------------------


def test_stages_of_the_debian_chain_are_identified_and_verified(corpus: Corpus) -> None:
    r = replay([load_stage(p) for p in corpus.boot_chain("trixie", "amd64")],
               load_firmware("debian13-ovmf"))
    assert [(s.model_basis, s.model_verified, s.unidentified) for s in r.stages] == \
        [("identified", True, ())] * 3


def test_an_unknown_application_is_a_fallback_with_its_facts(corpus: Corpus) -> None:
    hello = load_stage(corpus.file("trixie", "amd64", "efitools",
                                   "usr/lib/efitools/*/HelloWorld.efi"))
    choice = choose_model(hello, "x64", shipped_models())
    assert (choice.model.name, choice.basis) == ("efi-app", "fallback")
    assert any("bzImage" in f for f in choice.unidentified)
    r = replay([hello], load_firmware("ovmf"))
    (stage,) = r.stages
    assert (stage.model, stage.model_basis, stage.model_verified) == ("efi-app", "fallback",
                                                                      False)
    assert stage.unidentified == choice.unidentified


def test_a_known_family_without_a_matching_model_is_a_fallback(corpus: Corpus) -> None:
    # fbx64.efi: shim's .sbat rows, no .data.ident version -> no versioned shim model
    fb = load_stage(corpus.file("trixie", "amd64", "shim-unsigned", "usr/lib/shim/fbx64.efi"))
    choice = choose_model(fb, "x64", shipped_models())
    assert (choice.model.name, choice.basis) == ("efi-app", "fallback")
    assert choice.unidentified[0].startswith("shim (no version)")
    assert any("shim-16.1" in f for f in choice.unidentified)


def test_a_model_given_by_the_caller_is_an_override(corpus: Corpus) -> None:
    r = replay([load_stage(p) for p in corpus.boot_chain("trixie", "amd64")],
               load_firmware("ovmf"), models={2: "linux-x86-legacy"})
    assert [s.model_basis for s in r.stages] == ["identified", "identified", "override"]
    assert r.stages[2].model_verified is False


def test_fw_check_reports_basis_verification_and_the_protocol_used(corpus: Corpus) -> None:
    hello = corpus.file("trixie", "amd64", "efitools", "usr/lib/efitools/*/HelloWorld.efi")
    # the profile asks for the protocol, but edk2 202211 on x64 has none: the replay ran
    # without it, and the report must say so (not the profile's "yes")
    args = ["boot-chain", "--firmware", "ovmf", "--edk2-release", "202211",
            "--memory-attribute-protocol", "yes", str(hello)]
    cmd = [sys.executable, "-c", "from fwtools.cli.fw_check import main; main()"]
    res = subprocess.run([*cmd, *args, "--json"], capture_output=True, text=True, cwd=ROOT)
    doc = json.loads(res.stdout)
    (stage,) = doc["stages"]
    assert (stage["model"], stage["model_basis"], stage["model_verified"]) == (
        "efi-app", "fallback", False)
    assert stage["model_unidentified"]
    assert doc["firmware"]["memory_attribute_protocol"] is True  # the profile's setting
    assert doc["memory_attribute_protocol"] == {"at_boot": False, "at_end": False}
    text = subprocess.run([*cmd, *args], capture_output=True, text=True, cwd=ROOT).stdout
    assert "not identified: the generic efi-app model stands in" in text
    assert "[unverified]" in text
    assert "memory attribute protocol no (not in edk2 202211 on x64)" in text
