"""The project's floors (crypto libraries, federated core, attacks, application), checked on the source.

Every ``import`` of the four packages is read with :mod:`ast` (module level, under
``TYPE_CHECKING`` and inside functions alike) and resolved to the project module it names, so a
regression fails here before anyone trips over it at run time:

(a) ``secagg/`` and ``rangeproof/`` import neither torch nor ``fl`` nor ``attacks``;
(b) ``fl/aggregation/base.py`` (the stage contract) imports nothing above the crypto libraries,
    and no module imports one on a higher floor (see ``FLOORS``);
(c) there is no import cycle among the project's modules;
(d) no function imports a project module (a lazy import that dodges a cycle); a function may
    import a third-party module only when ``LAZY_ALLOWED`` says why.
"""
from __future__ import annotations

import ast
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("secagg", "rangeproof", "fl", "attacks")

#: floor of each module, by its longest listed prefix; an unlisted module of ``fl`` is the
#: application (floor 4), which may import everything below it
FLOORS = {
    "secagg": 1, "rangeproof": 1,                            # crypto libraries
    "fl.aggregation": 2, "fl.data": 2, "fl.model": 2,        # federated core: the pipeline and every
    "fl.training": 2, "fl.hooks": 2, "fl.settings": 2,       # stage, data, model, training, hooks
    "attacks": 3,                                            # adversaries
    "fl": 4,                                                 # config assembly, experiment, CLI, ...
}

#: third-party imports a function may make, with the reason (an optional extra, or a heavy import
#: that a fast path should not pay for); a project module is never imported inside a function
LAZY_ALLOWED = {
    ("secagg.params", "scipy"): "slow to import; only the SecAgg+ graph sizing needs it",
    ("fl.sweep.summary", "scipy"): "slow to import; only a multi-seed statistic needs it",
    ("fl.aggregation.privacy", "dp_accounting"): "heavy; only when accounting is asked for",
    ("fl.data.tff_h5", "h5py"): "only the TFF HDF5 loader needs it",
    ("fl.sweep.runner", "ray"): "optional extra sabre[ray]: only --engine ray needs it",
}


@dataclasses.dataclass(frozen=True)
class Import:
    module: str       # the importing module
    line: int
    where: str        # "module", "type_checking" or "function"
    target: str       # the project module named, or the top-level name of a third-party one
    project: bool


def _module_files() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


MODULES = _module_files()


def _extension_modules() -> set[str]:
    """Compiled modules (a ``.c`` source beside the package's ``.py`` files, built by setup.py):
    project modules that import no project code."""
    return {".".join(path.relative_to(ROOT).with_suffix("").parts)
            for package in PACKAGES for path in (ROOT / package).rglob("*.c")}


EXTENSIONS = _extension_modules()


def _project_module(name: str) -> str:
    """The longest prefix of ``name`` that is a project module."""
    parts = name.split(".")
    while parts and ".".join(parts) not in MODULES and ".".join(parts) not in EXTENSIONS:
        parts.pop()
    return ".".join(parts)


def _targets(module: str, is_package: bool, node: ast.Import | ast.ImportFrom) -> list[tuple[str, bool]]:
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        if node.level:
            base = module.split(".") if is_package else module.split(".")[:-1]
            base = base[: len(base) - (node.level - 1)]
            prefix = ".".join(base + ([node.module] if node.module else []))
        else:
            prefix = node.module or ""
        # `from pkg import sub` names the submodule; `from pkg import name` the package
        names = [f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in MODULES or f"{prefix}.{a.name}" in EXTENSIONS
                 else prefix for a in node.names]
    out = []
    for name in names:
        if name.split(".")[0] in PACKAGES:
            out.append((_project_module(name), True))
        else:
            out.append((name.split(".")[0], False))
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports() -> list[Import]:
    found: list[Import] = []
    for module, path in sorted(MODULES.items()):
        is_package = path.name == "__init__.py"

        def walk(nodes, where):
            for node in nodes:
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    for target, project in _targets(module, is_package, node):
                        found.append(Import(module, node.lineno, where, target, project))
                elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                    walk(ast.iter_child_nodes(node), "function")
                elif isinstance(node, ast.If) and _is_type_checking(node.test) and where == "module":
                    walk(node.body, "type_checking")
                    walk(node.orelse, where)
                else:
                    walk(ast.iter_child_nodes(node), where)

        walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)).body, "module")
    return found


IMPORTS = _imports()


def _floor(module: str) -> int:
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        floor = FLOORS.get(".".join(parts[:n]))
        if floor is not None:
            return floor
    raise AssertionError(f"{module}: not in any floor")


def _where(i: Import) -> str:
    return f"{MODULES[i.module].relative_to(ROOT)}:{i.line}: {i.module} imports {i.target}"


def test_the_parser_sees_the_imports():
    """The checks below are only as good as the parse: known imports must be found."""
    seen = {(i.module, i.target, i.where) for i in IMPORTS}
    assert ("fl.aggregation.secure_sum", "secagg.driver", "module") in seen
    assert ("fl.aggregation.mean", "fl.aggregation.base", "module") in seen       # relative
    assert ("fl.hooks", "fl.training", "type_checking") in seen
    assert ("fl.sweep.runner", "ray", "function") in seen
    assert len(MODULES) > 100 and len(IMPORTS) > 500


def test_crypto_libraries_import_neither_torch_nor_fl_nor_attacks():
    bad = sorted({_where(i) for i in IMPORTS if i.module.split(".")[0] in ("secagg", "rangeproof")
                  and i.target.split(".")[0] in ("torch", "fl", "attacks")})
    assert not bad, "the crypto libraries must stand alone:\n" + "\n".join(bad)


def test_the_stage_contract_imports_nothing_above_the_crypto_libraries():
    bad = sorted({_where(i) for i in IMPORTS if i.module == "fl.aggregation.base" and i.project
                  and _floor(i.target) > 1})
    assert not bad, "\n".join(bad)


def test_no_module_imports_a_higher_floor():
    bad = sorted({f"{_where(i)} (floor {_floor(i.module)} -> {_floor(i.target)})" for i in IMPORTS
                  if i.project and _floor(i.target) > _floor(i.module)})
    assert not bad, "a lower floor imports a higher one:\n" + "\n".join(bad)


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(edges[w]))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    component = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        component.append(w)
                        if w == v:
                            break
                    if len(component) > 1:
                        out.append(sorted(component))
    return out


def _edges() -> dict[str, set[str]]:
    """Module -> the project modules its imports run. Importing ``a.b.c`` also runs the packages
    ``a`` and ``a.b``, except those the importer sits in (they are running already: a package
    importing its own submodules is no cycle)."""
    edges: dict[str, set[str]] = {m: set() for m in [*MODULES, *EXTENSIONS]}
    for i in IMPORTS:
        if not i.project or i.target == i.module:
            continue
        own = {".".join(i.module.split(".")[:n]) for n in range(1, i.module.count(".") + 1)}
        parts = i.target.split(".")
        edges[i.module].add(i.target)
        edges[i.module].update(p for p in (".".join(parts[:n]) for n in range(1, len(parts))) if p not in own)
    return edges


def test_the_cycle_finder_finds_cycles():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle():
    cycles = _cycles(_edges())
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_no_function_imports_a_project_module():
    bad = sorted({_where(i) for i in IMPORTS if i.where == "function" and i.project})
    assert not bad, ("a lazy import of a project module (move the code to the floor it belongs to, "
                     "or pass the dependency in):\n" + "\n".join(bad))


def test_third_party_lazy_imports_say_why():
    lazy = {(i.module, i.target) for i in IMPORTS if i.where == "function" and not i.project}
    unexplained = sorted(lazy - set(LAZY_ALLOWED))
    assert not unexplained, "import these at module level, or add them to LAZY_ALLOWED with a reason: " + \
        ", ".join(f"{m} -> {t}" for m, t in unexplained)
    stale = sorted(set(LAZY_ALLOWED) - lazy)
    assert not stale, f"LAZY_ALLOWED names lazy imports that no longer exist: {stale}"


@pytest.mark.parametrize("package", ["secagg", "rangeproof"])
def test_crypto_library_imports_without_torch_or_fl(package):
    """The same rule at run time: importing the library (every module of it) loads no torch and no fl."""
    modules = sorted(m for m in MODULES if m.split(".")[0] == package and not m.endswith("__main__"))
    code = ("import sys\n" + "".join(f"import {m}\n" for m in modules)
            + "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'fl', 'attacks'))\n"
            + "print(bad)\nsys.exit(1 if bad else 0)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
