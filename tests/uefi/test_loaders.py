"""fwtools.uefi.loaders: loader models (policies/loaders/) and identifying corpus binaries.

Identification clues are docs/reference/wx-model.md §6.2; the Debian facts (which grub, which shim)
are
/tmp/research/findings.md Q3/Q4.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from corpus import Corpus

from fwtools.errors import UsageError
from fwtools.uefi.image import load_stage
from fwtools.uefi.loaders import (
    CONDITIONS,
    FAMILIES,
    OPERATIONS,
    LoaderModel,
    identify,
    load_model,
    loaders_dir,
    model_by_name,
    select_model,
    shipped_models,
)

SHIPPED = sorted(p.stem for p in Path(loaders_dir()).glob("*.toml"))


@pytest.fixture(scope="module")
def models() -> list[LoaderModel]:
    return shipped_models()


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_model_loads(name: str) -> None:
    m = model_by_name(name)
    assert m.name == name
    assert m.family in FAMILIES
    assert m.sources, "every model cites where its behaviour comes from"
    assert m.steps
    for step in (*m.steps, *m.loader_steps):
        assert step.op in OPERATIONS
        assert all(c.lstrip("!") in CONDITIONS for c in step.when)
    # a model ends by handing over: starting the next stage or the kernel taking control
    assert {s.op for s in m.steps} & {"start", "done"}


def test_only_shim_models_have_loader_steps(models: list[LoaderModel]) -> None:
    for m in models:
        if m.loader_steps:
            assert m.family == "shim", m.name


def test_model_by_name_unknown() -> None:
    with pytest.raises(UsageError, match=r"unknown loader model 'nope'.*shim-16.1"):
        model_by_name("nope")


# ---- validation ------------------------------------------------------------------------


def write(tmp_path: Path, body: str, header: str = 'family = "efi-app"\n') -> Path:
    p = tmp_path / "m.toml"
    p.write_text(header + body, encoding="utf-8")
    return p


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('[[steps]]\nop = "jump"\n', "unknown op 'jump'"),
        ("[[steps]]\nnote = 'x'\n", "unknown op None"),
        ('[[steps]]\nop = "allocate"\nname = "a"\ntype = "LoaderData"\n', "op allocate needs size"),
        ('[[steps]]\nop = "write"\n', "op write needs range"),
        ('[[steps]]\nop = "run"\nrange = "self"\n', "op run does not take range"),
        ('[[steps]]\nop = "start"\nentry = 1\nsize = 2\n', "op start does not take size"),
        ('[[steps]]\nop = "run"\nwhen = ["sunny"]\n', "when must list conditions"),
        ('[[steps]]\nop = "run"\nwhen = "map"\n', "when must list conditions"),
        ('[[steps]]\nop = "run"\nnote = 3\n', "note must be a string"),
        ('[[loader_steps]]\nop = "nope"\n', "loader_steps\\[0\\]: unknown op"),
        ('steps = 3\n', "steps must be an array of tables"),
        ('colour = 1\n', "unknown key 'colour'"),
        ('[match]\nmin_version = "new"\n', "match.min_version must be a version string"),
        ('[match]\nvendors = "grub.debian"\n', "match.vendors must be a list of strings"),
        ('[match]\nmin_section_alignment = "4k"\n', "must be an integer"),
        ('[match]\nnx_compat = 1\n', "match.nx_compat must be true or false"),
        ('[match]\nshape = 1\n', "unknown match key 'shape'"),
        ('priority = "high"\n', "priority must be an integer"),
        ('[[steps]]\nop = "start"\nentry = "handvoer"\n', "entry must be \"handover\""),
        ('sources = "x"\n', "sources must be a list of strings"),
    ],
)
def test_validation_errors(tmp_path: Path, body: str, message: str) -> None:
    path = write(tmp_path, body)
    with pytest.raises(UsageError, match=message) as e:
        load_model(path)
    assert "m.toml" in str(e.value)


BAD_TYPES = [
    ('[[steps]]\nop = "allocate"\nname = "a"\ntype = "LoaderStuff"\nsize = 1\n',
     "unknown memory type 'LoaderStuff'"),
    ('[[steps]]\nop = "allocate"\nname = "a"\ntype = 99\nsize = 1\n',
     "memory type 99 is not a UEFI memory type"),
]


@pytest.mark.parametrize(("body", "message"), BAD_TYPES)
def test_bad_memory_type(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        load_model(write(tmp_path, body))


@pytest.mark.parametrize(("body", "message"), BAD_TYPES)
def test_bad_memory_type_names_the_file(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(UsageError, match=r"m\.toml: steps\[0\]"):
        load_model(write(tmp_path, body))


def test_double_negation_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="when must list conditions"):
        load_model(write(tmp_path, '[[steps]]\nop = "run"\nwhen = ["!!map"]\n'))


def test_step_index_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, '[[steps]]\nop = "run"\n[[steps]]\nop = "bogus"\n')
    with pytest.raises(UsageError, match=r"steps\[1\]: unknown op 'bogus'"):
        load_model(path)


def test_bad_family(tmp_path: Path) -> None:
    path = write(tmp_path, '[[steps]]\nop = "run"\n', header='family = "bios"\n')
    with pytest.raises(UsageError, match="family must be one of"):
        load_model(path)


def test_valid_model_file(tmp_path: Path) -> None:
    path = write(tmp_path, (
        'name = "mine"\npriority = 3\n[match]\nmin_version = "1.2"\narch = "x64"\n'
        '[[steps]]\nop = "allocate"\nname = "buf"\ntype = "EfiLoaderCode"\nsize = 4096\n'
        'when = ["!map", "x64"]\nnote = "n"\n[[steps]]\nop = "start"\n'))
    m = load_model(path)
    assert (m.name, m.priority, m.match.min_version, m.match.arch) == ("mine", 3, (1, 2), "x64")
    step = m.steps[0]
    assert step.args == {"name": "buf", "type": "EfiLoaderCode", "size": 4096}
    assert step.when == ("!map", "x64")
    assert step.note == "n"
    assert model_by_name(str(path)) == m


# ---- identify() on the corpus -------------------------------------------------------


@pytest.mark.parametrize("suite", ["bookworm", "trixie"])
@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_identify_shim(corpus: Corpus, suite: str, arch: str) -> None:
    ident = identify(load_stage(corpus.shim(suite, arch)))
    # shim's version.c.in string in .data.ident (docs/reference/wx-model.md §6.2); Debian ships 16.1
    assert (ident.family, ident.version, ident.version_text) == ("shim", (16, 1), "16.1")
    assert ident.clue == ".data.ident $Version: 16.1 $"


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_identify_grub(corpus: Corpus, arch: str) -> None:
    old = load_stage(corpus.grub("bookworm", arch))
    new = load_stage(corpus.grub("trixie", arch))
    o, n = identify(old), identify(new)
    assert (o.family, o.version) == ("grub", (2, 6))
    assert (n.family, n.version) == ("grub", (2, 12))
    # .sbat vendor rows (docs/reference/wx-model.md §6.2); trixie's signed image carries
    # grub.peimage
    # (findings.md Q3: debian/build-efi-images:36-39 aborts without it)
    assert "grub.debian" in old.vendors() and "grub.peimage" not in old.vendors()
    assert {"grub.debian", "grub.peimage"} <= set(new.vendors())
    assert "grub.peimage" in n.clue


@pytest.mark.parametrize(("suite", "arch", "kind", "version"), [
    ("bookworm", "amd64", "bzimage", (6, 1, 0)),
    ("trixie", "amd64", "bzimage", (6, 12, 117)),
    ("bookworm", "arm64", "arm64-image", (6, 1, 0)),
    ("trixie", "arm64", "arm64-image", (6, 12, 117)),
])
def test_identify_kernel(corpus: Corpus, suite: str, arch: str, kind: str,
                         version: tuple[int, ...]) -> None:
    img = load_stage(corpus.kernel(suite, arch))
    ident = identify(img)
    assert ident.family == "linux"
    assert ident.version == version
    assert img.kernel is not None and img.kernel.kind == kind
    assert kind in ident.clue
    if kind == "bzimage":
        assert img.kernel.handover_64  # the 64-bit EFI handover entry linuxefi jumps to


@pytest.mark.parametrize("suite", ["bookworm", "trixie"])
def test_identify_systemd_boot(corpus: Corpus, suite: str) -> None:
    img = load_stage(corpus.systemd_boot(suite))
    ident = identify(img)
    assert img.systemd  # .sdmagic
    assert ident.family == "systemd-boot"
    # bookworm's 252 names its .sbat row "systemd", trixie's 257 "systemd-boot"
    assert ident.version_text == ("252" if suite == "bookworm" else "257")


def test_identify_trixie_systemd_stub(corpus: Corpus) -> None:
    ident = identify(load_stage(corpus.systemd_boot("trixie", "linuxx64.efi.stub")))
    assert (ident.family, ident.version_text) == ("systemd-stub", "257")


def test_systemd_version_parses(corpus: Corpus) -> None:
    assert identify(load_stage(corpus.systemd_boot("trixie"))).version == (257,)


def test_identify_plain_efi_app(corpus: Corpus) -> None:
    hello = corpus.file("trixie", "amd64", "efitools", "usr/lib/efitools/*/HelloWorld.efi")
    ident = identify(load_stage(hello))
    assert (ident.family, ident.version) == ("efi-app", None)


def test_identify_every_corpus_binary(corpus: Corpus) -> None:
    """Every PE image in the corpus gets a family and a model (nothing raises)."""
    models = shipped_models()
    seen = set()
    for b in corpus.efi_binaries():
        img = load_stage(b.path)
        model, ident = select_model(img, "x64" if b.arch == "amd64" else "aa64", models)
        assert ident.family in FAMILIES, b.id
        assert model.family in (ident.family, "efi-app"), b.id
        seen.add(ident.family)
    assert {"shim", "grub", "linux", "systemd-boot", "efi-app"} <= seen


# ---- select_model ---------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_select_model_debian_chains(corpus: Corpus, models: list[LoaderModel],
                                    arch: str) -> None:
    a = "x64" if arch == "amd64" else "aa64"
    picks = {}
    for suite in ("bookworm", "trixie"):
        shim, grub, kernel = (load_stage(p) for p in corpus.boot_chain(suite, arch))
        picks[suite] = [select_model(i, a, models)[0].name for i in (shim, grub, kernel)]
    # shim 16.1 in both suites; grub.debian 2.06 / grub.peimage 2.12 (findings.md Q3)
    assert picks["bookworm"][:2] == ["shim-16.1", "grub-debian-2.06"]
    assert picks["trixie"][:2] == ["shim-16.1", "grub-debian-2.12"]
    if arch == "arm64":
        assert picks["bookworm"][2] == picks["trixie"][2] == "linux-arm64-image"


def test_select_model_bookworm_x86_kernel_is_the_backport(corpus: Corpus,
                                                          models: list[LoaderModel]) -> None:
    img = load_stage(corpus.kernel("bookworm", "amd64"))
    # 6.1 with the NX series backported: SectionAlignment 0x1000 (docs/reference/wx-model.md §6.2
    # layout clue)
    assert img.section_alignment == 0x1000
    assert select_model(img, "x64", models)[0].name == "linux-x86-stub-backport"


def test_select_model_fallbacks(corpus: Corpus, models: list[LoaderModel]) -> None:
    # fbx64.efi carries shim's .sbat rows but no .data.ident version: no versioned shim
    # model matches, so the generic application model is used
    fb = load_stage(corpus.file("trixie", "amd64", "shim-unsigned", "usr/lib/shim/fbx64.efi"))
    model, ident = select_model(fb, "x64", models)
    assert ident.family == "shim" and ident.version is None
    assert model.name == "efi-app"


def test_select_model_respects_arch_match(tmp_path: Path, corpus: Corpus) -> None:
    img = load_stage(corpus.shim("trixie", "amd64"))
    p = tmp_path / "shim-arm-only.toml"
    p.write_text('family = "shim"\npriority = 99\n[match]\narch = "aa64"\n'
                 '[[steps]]\nop = "start"\n', encoding="utf-8")
    models = [*shipped_models(), load_model(p)]
    assert select_model(img, "x64", models)[0].name == "shim-16.1"
    assert select_model(img, "aa64", models)[0].name == "shim-arm-only"


def test_identify_bookworm_systemd_stub(corpus: Corpus) -> None:
    ident = identify(load_stage(corpus.systemd_boot("bookworm", "linuxx64.efi.stub")))
    assert ident.family == "systemd-stub"


def test_select_model_trixie_x86_kernel_is_the_mainline_stub(
        corpus: Corpus, models: list[LoaderModel]) -> None:
    img = load_stage(corpus.kernel("trixie", "amd64"))
    assert select_model(img, "x64", models)[0].name == "linux-x86-stub"
