"""Code health the next maintainer relies on: no import cycles among pairforge modules, no dead code
(vulture), one definition of the helpers that used to exist in several copies."""
from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pairforge.registry import (
    DEGRADERS,
    DIFFUSION_FAMILIES,
    FILTERS,
    REALWORLD_TYPES,
    SOURCES,
)

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "pairforge"

def _modules() -> dict[str, Path]:
    mods = {}
    for p in SRC.rglob("*.py"):
        parts = list(p.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = p
    return mods


def import_graph() -> dict[str, set[str]]:
    """module -> pairforge modules it imports, at any level (function-level imports count: a cycle
    hidden in a function is still a cycle)."""
    mods = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        edges: set[str] = set()
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                edges |= {a.name for a in node.names if a.name in mods}
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package[: len(package) - (node.level - 1)]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                for a in node.names:
                    sub = f"{mod}.{a.name}"
                    if sub in mods:
                        edges.add(sub)
                    elif mod in mods:
                        edges.add(mod)
        edges.discard(name)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[set[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = set()
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.add(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(comp)
    return out


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]


def test_no_import_cycles_among_pairforge_modules():
    found = cycles(import_graph())
    assert not found, f"import cycles: {[sorted(c) for c in found]}"


def _registered_names() -> set[str]:
    names = set()
    for reg in (SOURCES, FILTERS, DEGRADERS, REALWORLD_TYPES, DIFFUSION_FAMILIES):
        for e in reg.entries():
            names |= {path.rpartition(":")[2] for path in e.impls.values()}
    return names


#: names used by frameworks, not by pairforge code: module __getattr__, yaml's Dumper hook
FRAMEWORK_NAMES = {"__getattr__", "ignore_aliases"}


@pytest.mark.skipif(shutil.which("vulture") is None and not (Path(sys.executable).parent / "vulture").exists(),
                    reason="vulture is in the test extra")
def test_no_dead_functions_classes_or_imports():
    """vulture over the package (tests count as users of the library's API). Functions, methods,
    classes and imports only: pydantic fields, torch module attributes and dataclass fields are read
    by their frameworks, which vulture cannot see."""
    ignore = sorted(_registered_names() | FRAMEWORK_NAMES)
    cmd = [sys.executable, "-m", "vulture", str(SRC), str(ROOT / "tests"), "--min-confidence", "60",
           "--ignore-names", ",".join(ignore),
           "--ignore-decorators", "@*.command,@*.callback,@field_validator,@model_validator,@*.register,@*.fixture"]
    out = subprocess.run(cmd, capture_output=True, text=True).stdout
    kinds = ("unused function", "unused method", "unused class", "unused import")
    dead = [ln for ln in out.splitlines() if ln.startswith(str(SRC)) and any(k in ln for k in kinds)
            and "'forward'" not in ln]
    assert not dead, "dead code:\n" + "\n".join(dead)


def _definitions(name: str) -> list[str]:
    hits = []
    for p in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name == name and node.col_offset == 0:
                hits.append(str(p.relative_to(SRC)))
    return hits


def test_one_resolve_device():
    assert _definitions("resolve_device") == ["devices.py"]


def test_code_cites_only_what_exists():
    """Docstrings point at docs/ and modules that are in the repository (there is no DESIGN.md here)."""
    import re

    bad = []
    for p in SRC.rglob("*.py"):
        text = p.read_text()
        if "DESIGN.md" in text:
            bad.append(f"{p.relative_to(SRC)}: DESIGN.md")
        for mod in re.findall(r"`(pairforge(?:\.[a-z_0-9]+)+)`", text):
            if mod not in _modules() and mod.rpartition(".")[0] not in _modules():
                bad.append(f"{p.relative_to(SRC)}: {mod}")
        for doc in re.findall(r"(docs/[\w./-]+\.md)", text):
            if not (ROOT / doc).exists():
                bad.append(f"{p.relative_to(SRC)}: {doc}")
    assert not bad, bad


def test_one_check_image():
    """The sample check of the sanity filter; the synthesis output check and the real-world input
    check have names of their own (check_generation, require_rgb8)."""
    assert _definitions("check_image") == ["filters/sanity.py"]
