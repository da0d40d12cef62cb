"""The import graph keeps docs/design.md's layering (checked here, not by review).

Layers, bottom to top: errors < _base < formats < crypto < paging < uefi < fleet < machine <
policy < report < cli. A module imports only from its own layer or below, wherever the import
statement is: module level, inside a function (lazy imports), or under ``if TYPE_CHECKING`` (a
lower layer that names an upper layer's types is still coupled to it). Only ``report/text*``
imports rich; only ``cli/`` imports click.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Final

import pytest

REPO_ROOT: Final = Path(__file__).resolve().parents[1]
PKG_DIR: Final = REPO_ROOT / "fwtools"

LAYERS: Final = {
    "errors": 0,
    "_base": 1,
    "formats": 2,
    "crypto": 3,
    "paging": 4,
    "uefi": 5,
    "fleet": 6,
    "machine": 7,
    "policy": 8,
    "report": 9,
    "cli": 10,
    "__main__": 10,  # `python -m fwtools` is a command like the console scripts
}
CLI_LAYER: Final = LAYERS["cli"]


@dataclass(frozen=True)
class Import:
    importer: str  # dotted module name
    path: Path
    lineno: int
    target: str  # dotted module name, resolved (relative imports made absolute)
    type_only: bool  # under `if TYPE_CHECKING:`
    module_level: bool  # executed when the importer is imported

    def where(self) -> str:
        kind = " (TYPE_CHECKING)" if self.type_only else ""
        return f"{self.path.relative_to(REPO_ROOT)}:{self.lineno}: {self.target}{kind}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def module_exists(dotted: str) -> bool:
    p = REPO_ROOT.joinpath(*dotted.split("."))
    return p.with_suffix(".py").is_file() or (p / "__init__.py").is_file()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _Collector(ast.NodeVisitor):
    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = module_name(path)
        # The package that relative imports start from.
        self.package = self.name if is_package(path) else self.name.rpartition(".")[0]
        self.found: list[Import] = []
        self.third_party: list[tuple[str, int]] = []
        self._type_only = 0
        self._in_function = 0

    def _add(self, target: str, lineno: int) -> None:
        self.found.append(
            Import(self.name, self.path, lineno, target, self._type_only > 0,
                   self._in_function == 0 and self._type_only == 0)
        )

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            self._type_only += 1
            for child in node.body:
                self.visit(child)
            self._type_only -= 1
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def _visit_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self._in_function += 1
        self.generic_visit(node)
        self._in_function -= 1

    visit_FunctionDef = _visit_function
    visit_AsyncFunctionDef = _visit_function

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name == "fwtools" or alias.name.startswith("fwtools."):
                self._add(alias.name, node.lineno)
            else:
                self.third_party.append((alias.name, node.lineno))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base_parts = self.package.split(".")
            if node.level > 1:
                base_parts = base_parts[: -(node.level - 1)]
            base = ".".join(base_parts)
            module = f"{base}.{node.module}" if node.module else base
        else:
            module = node.module or ""
        if not (module == "fwtools" or module.startswith("fwtools.")):
            self.third_party.append((module, node.lineno))
            return
        # `from pkg import name` imports the submodule pkg.name when there is one, and
        # otherwise only pkg itself.
        for alias in node.names:
            sub = f"{module}.{alias.name}"
            self._add(sub if module_exists(sub) else module, node.lineno)


@dataclass(frozen=True)
class ModuleInfo:
    name: str
    path: Path
    imports: tuple[Import, ...]
    third_party: tuple[tuple[str, int], ...]


@cache
def modules() -> tuple[ModuleInfo, ...]:
    out = []
    for path in sorted(PKG_DIR.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        c = _Collector(path)
        c.visit(tree)
        out.append(ModuleInfo(c.name, path, tuple(c.found), tuple(c.third_party)))
    return tuple(out)


def layer_of(dotted: str) -> int | None:
    """The layer of a module; None for the root package and for subpackages missing from
    LAYERS (test_every_subpackage_has_a_layer reports those).
    """
    parts = dotted.split(".")
    assert parts[0] == "fwtools", dotted
    if len(parts) == 1:
        return None
    return LAYERS.get(parts[1])


def test_collector_sees_the_package() -> None:
    names = {m.name for m in modules()}
    # Guards against a collector bug (wrong root, wrong glob) turning every test vacuous.
    assert {"fwtools", "fwtools.errors"} <= names
    assert sum(len(m.imports) for m in modules()) > 0


def test_every_subpackage_has_a_layer() -> None:
    unknown = sorted(
        {m.name.split(".")[1] for m in modules() if "." in m.name} - set(LAYERS)
    )
    assert not unknown, (
        f"fwtools/{unknown} not in the layer list: add it to docs/design.md and LAYERS here"
    )


def test_imports_only_go_down() -> None:
    violations = []
    for m in modules():
        if m.name == "fwtools":
            continue  # checked separately: it must not import anything from the package
        own = layer_of(m.name)
        if own is None:
            continue
        for imp in m.imports:
            target = layer_of(imp.target)
            if target is None:
                continue  # the root package (e.g. __version__): see the next test
            if target > own:
                violations.append(
                    f"{imp.where()}  [{m.name.split('.')[1]}({own}) imports "
                    f"{imp.target.split('.')[1]}({target})]"
                )
    assert not violations, "imports that go up a layer:\n" + "\n".join(violations)


def test_root_package_imports_nothing_at_load() -> None:
    # Every `import fwtools.x` runs fwtools/__init__.py first; if it imported a layer, every
    # module would silently depend on that layer.
    root = next(m for m in modules() if m.name == "fwtools")
    loaded = [imp.where() for imp in root.imports if imp.module_level]
    assert not loaded, f"fwtools/__init__.py imports at load time: {loaded}"


def test_nothing_imports_main() -> None:
    bad = [imp.where() for m in modules() for imp in m.imports
           if imp.target == "fwtools.__main__"]
    assert not bad


def import_graph(imports: list[Import] | None = None) -> dict[str, set[str]]:
    """Module -> the package modules it imports, wherever the import statement is: module
    level, inside a function (lazy) or under ``if TYPE_CHECKING``."""
    every = imports if imports is not None else [i for m in modules() for i in m.imports]
    graph: dict[str, set[str]] = {}
    for imp in every:
        graph.setdefault(imp.importer, set())
        graph.setdefault(imp.target, set())
        if imp.target != imp.importer:
            graph[imp.importer].add(imp.target)
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles of ``graph``: each strongly connected component of more than one
    module, sorted (Tarjan's algorithm, iterative so a deep package cannot overflow)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
    return sorted(out)


def _describe(cycle: list[str]) -> str:
    members = set(cycle)
    edges = dict.fromkeys(imp.where() for m in modules() if m.name in members
                          for imp in m.imports if imp.target in members and imp.target != m.name)
    return " <-> ".join(cycle) + "".join(f"\n    {e}" for e in edges)


def test_no_import_cycles() -> None:
    # Every import counts, not only the module-level ones that can deadlock a partial
    # import: a lazy or TYPE_CHECKING back-reference still ties two modules into one unit
    # that can only be understood, tested and moved together. A same-layer back-reference
    # is resolved by moving what both need into a third module below them.
    cycles = import_cycles(import_graph())
    assert not cycles, "import cycles:\n" + "\n".join(_describe(c) for c in cycles)


def _third_party_users(package: str) -> list[tuple[ModuleInfo, int]]:
    return [
        (m, lineno)
        for m in modules()
        for name, lineno in m.third_party
        if name == package or name.startswith(package + ".")
    ]


def _is_text_renderer(path: Path) -> bool:
    rel = path.relative_to(PKG_DIR).parts
    return rel[0] == "report" and (rel[1].startswith("text") if len(rel) > 1 else False)


def test_only_text_renderer_imports_rich() -> None:
    bad = [
        f"{m.path.relative_to(REPO_ROOT)}:{lineno}"
        for m, lineno in _third_party_users("rich")
        if not _is_text_renderer(m.path)
    ]
    assert not bad, f"rich imported outside fwtools/report/text*: {bad}"


def test_only_cli_imports_click() -> None:
    bad = [
        f"{m.path.relative_to(REPO_ROOT)}:{lineno}"
        for m, lineno in _third_party_users("click")
        if m.path.relative_to(PKG_DIR).parts[0] != "cli"
    ]
    assert not bad, f"click imported outside fwtools/cli/: {bad}"


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [("fwtools.formats.efi.siglist", ("click", "rich"))],
)
def test_library_module_loads_without_ui(module: str, forbidden: tuple[str, ...]) -> None:
    # In a fresh interpreter, so modules other tests imported cannot hide a leak.
    code = (
        f"import sys, {module}\n"
        f"print(' '.join(sorted({{m.split('.')[0] for m in sys.modules}} & {set(forbidden)!r})))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=REPO_ROOT
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "", f"importing {module} loads {proc.stdout.strip()}"


# --- the checker itself ----------------------------------------------------------------


def _collect(source: str, rel: str) -> list[Import]:
    path = REPO_ROOT / rel
    c = _Collector(path)
    c.visit(ast.parse(source))
    return c.found


def test_cycle_check_sees_lazy_and_type_checking_imports() -> None:
    # The two circles fwtools/policy/ had: chain_rule imported engine's Result lazily while
    # engine imported chain_rule lazily; checks named pe_facts' PeFacts under TYPE_CHECKING
    # while pe_facts ran pe_rules (lazily), which imports checks.
    chain_rule = _collect(
        "def chain_results():\n"
        "    from fwtools.policy.engine import Result\n",
        "fwtools/policy/chain_rule.py",
    )
    engine = _collect(
        "def add_chain_results():\n"
        "    from fwtools.policy.chain_rule import chain_results\n",
        "fwtools/policy/engine.py",
    )
    assert import_cycles(import_graph(chain_rule + engine)) == [
        ["fwtools.policy.chain_rule", "fwtools.policy.engine"]
    ]
    checks = _collect(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from fwtools.policy.pe_facts import PeFacts\n",
        "fwtools/policy/checks.py",
    )
    pe_facts = _collect(
        "def collect_facts():\n"
        "    from fwtools.policy.pe_rules import evaluate\n",
        "fwtools/policy/pe_facts.py",
    )
    pe_rules = _collect("from fwtools.policy import checks\n", "fwtools/policy/pe_rules.py")
    assert import_cycles(import_graph(checks + pe_facts + pe_rules)) == [
        ["fwtools.policy.checks", "fwtools.policy.pe_facts", "fwtools.policy.pe_rules"]
    ]
    # A chain without a way back is no circle.
    assert import_cycles(import_graph(checks + pe_rules)) == []


def test_collector_resolves_relative_and_lazy_imports() -> None:
    found = _collect(
        "from typing import TYPE_CHECKING\n"
        "from . import siglist\n"
        "from ..pe import layout\n"
        "from ...errors import FwError\n"
        "if TYPE_CHECKING:\n"
        "    from fwtools.policy.findings import Finding\n"
        "def f():\n"
        "    import fwtools.crypto\n",
        "fwtools/formats/efi/x.py",
    )
    got = {(i.target, i.type_only, i.module_level) for i in found}
    assert got == {
        ("fwtools.formats.efi.siglist", False, True),
        ("fwtools.formats.pe.layout", False, True),
        ("fwtools.errors", False, True),
        ("fwtools.policy.findings", True, False),
        ("fwtools.crypto", False, False),
    }


def test_architecture_doc_names_every_layer_in_order() -> None:
    """docs/architecture.md's table lists the layers bottom to top, as LAYERS does, and every
    package of fwtools/ appears in its row (the picture cannot drift from the code)."""
    doc = (REPO_ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    rows = [line for line in doc.splitlines() if line.startswith("| `fwtools/")]
    named = [row.split("`")[1].removeprefix("fwtools/").rstrip("/").removesuffix(".py")
             for row in rows]
    expected = sorted((k for k in LAYERS if k != "__main__"), key=lambda k: LAYERS[k])
    assert named == expected
    formats_row = rows[named.index("formats")]
    packages = sorted(p.name for p in (PKG_DIR / "formats").iterdir()
                      if (p / "__init__.py").is_file())
    missing = [p for p in packages if f"`{p}/`" not in formats_row]
    assert not missing, f"formats/ packages not in docs/architecture.md: {missing}"
    # every module the table names by file exists in that layer
    import re

    stale = []
    for layer, row in zip(named, rows, strict=True):
        for module in re.findall(r"`(\w+)\.py`", row):
            if not list((PKG_DIR / layer).rglob(f"{module}.py")) and layer != "errors":
                stale.append(f"{layer}/{module}.py")
    assert not stale, f"docs/architecture.md names modules that do not exist: {stale}"
