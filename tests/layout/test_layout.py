"""The house rules that a reader of the folder listing relies on, checked on the source itself.

* no import cycles between gridflux's modules (lazy, function-level imports included: a cycle
  there is still two modules that cannot be understood one without the other);
* no private name (``_x``) crosses a module boundary: neither imported from another gridflux
  module nor reached as an attribute of one.
The layer contract itself (which package may import which) is import-linter's, in pyproject.toml.
"""

from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path

import grimp
import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[2] / "gridflux"


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out.append((".".join(parts), path))
    return out


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append(
                        (child, iter(sorted(graph.find_modules_directly_imported_by(child))))
                    )
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycles():
    graph = grimp.build_graph("gridflux")
    # a package's __init__ re-exporting its own modules is not a cycle of meaning
    for module in list(graph.modules):
        for imported in graph.find_modules_directly_imported_by(module):
            if module.startswith(imported + "."):
                graph.remove_import(importer=module, imported=imported)
    assert _cycles(graph) == []


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _private_uses(module: str, path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    module_aliases: set[str] = set()
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([source] if source else []))
            if not source.startswith("gridflux") or source == module:
                continue
            for alias in node.names:
                if _private(alias.name):
                    found.append(f"{path.name}:{node.lineno} imports {source}.{alias.name}")
                elif _is_module(f"{source}.{alias.name}"):
                    module_aliases.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("gridflux") and alias.asname:
                    module_aliases.add(alias.asname)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in module_aliases
            and _private(node.attr)
        ):
            found.append(f"{path.name}:{node.lineno} uses {node.value.id}.{node.attr}")
    return found


@pytest.mark.parametrize(("module", "path"), _modules(), ids=[m for m, _ in _modules()])
def test_no_private_names_across_modules(module, path):
    assert _private_uses(module, path) == []


# --- one month type: gridflux.fields.timeaxis.Month ------------------------------------------

MONTH_HOME = "gridflux.fields.timeaxis"
#: ``YYYY-MM`` written by hand: f-strings ``{y:04d}-{m:02d}``, %-formats, strftime patterns
#: (a full date, ``YYYY-MM-DD``, is not a month)
_HAND_LABEL = re.compile(r":0?4d?\}-\{[^{}]*:0?2d?\}(?!-)|%0?4d-%0?2d(?!-)|%Y-%m(?!-%d)")
#: a month key ``12 * year + month - 1`` computed by hand (``Month.key``, ``keys_from_dates``)
_HAND_KEY = re.compile(r"\b12\s*\*\s*\(?[\w.\[\]]*year\b|\byear\w*\s*\*\s*12\b")


def _named_month(name: str) -> bool:
    return "month" in name.lower()


def _month_spellings(path: Path) -> list[str]:
    """Where a module spells a month its own way: a month type or alias of its own (a class or a
    module-level name with ``month`` in it bound to a type), a month annotated as a bare
    ``tuple[int, int]``, a ``YYYY-MM`` label formatted by hand, or a month key
    ``12 * year + month - 1`` computed by hand."""
    text = path.read_text()
    tree = ast.parse(text, filename=str(path))
    found = []
    for node in tree.body:  # module-level aliases: Month = tuple[int, int], type YM = ...
        value, names = None, []
        if isinstance(node, ast.Assign):
            value, names = node.value, [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            value, names = node.value, [node.target.id]
        elif isinstance(node, getattr(ast, "TypeAlias", ())) and isinstance(node.name, ast.Name):
            value, names = node.value, [node.name.id]
        if isinstance(value, (ast.Subscript, ast.Name, ast.Attribute, ast.BinOp)):
            src = ast.get_source_segment(text, value) or ""
            if any(_named_month(n) for n in names) and "tuple" in src.lower():
                found.append(f"{path.name}:{node.lineno} defines a month alias {names[0]}")
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and _named_month(node.name):
            bases = [ast.get_source_segment(text, b) or "" for b in node.bases]
            if any("NamedTuple" in b or "tuple" in b for b in bases) or not bases:
                found.append(f"{path.name}:{node.lineno} defines a month class {node.name}")
        annotated: list[tuple[str, ast.expr | None]] = []
        if isinstance(node, ast.AnnAssign):
            target = node.target
            name = target.id if isinstance(target, ast.Name) else getattr(target, "attr", "")
            annotated.append((name, node.annotation))
        elif isinstance(node, ast.arg):
            annotated.append((node.arg, node.annotation))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            annotated.append((node.name, node.returns))
        for name, ann in annotated:
            src = (ast.get_source_segment(text, ann) or "") if ann is not None else ""
            if _named_month(name) and "tuple[int, int]" in src.replace("Tuple", "tuple"):
                found.append(f"{path.name}:{node.lineno} types {name} as a bare {src}")
    for lineno, line in enumerate(text.splitlines(), 1):
        if _HAND_LABEL.search(line):
            found.append(f"{path.name}:{lineno} formats YYYY-MM by hand: {line.strip()}")
        if _HAND_KEY.search(line.split("#")[0]):
            found.append(f"{path.name}:{lineno} computes a month key by hand: {line.strip()}")
    return found


@pytest.mark.parametrize(("module", "path"), _modules(), ids=[m for m, _ in _modules()])
def test_months_have_one_type(module, path):
    """A month is ``timeaxis.Month`` and is labelled by ``Month.label``: no module but timeaxis
    defines a month type or alias, annotates months as bare pairs, or formats ``YYYY-MM``."""
    if module == MONTH_HOME:
        pytest.skip("the month's home")
    assert _month_spellings(path) == []


def test_month_spellings_are_caught(tmp_path):
    """The check above finds each way a module could spell a month its own way."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from typing import NamedTuple\n"
        "Month = tuple[int, int]\n"
        "class YearMonth(NamedTuple):\n    year: int\n    month: int\n"
        "def f(first_month: tuple[int, int]) -> str:\n"
        "    y, m = first_month\n"
        "    return f'{y:04d}-{m:02d}'\n"
        "LABEL = '%04d-%02d'\n"
        "PATTERN = '%Y-%m'\n"
        "key = 12 * d.year + d.month - 1\n"
        "other = dates[0].year * 12 + dates[0].month\n"
    )
    found = _month_spellings(bad)
    assert [f.split()[0] for f in found] == [
        "bad.py:2",
        "bad.py:3",
        "bad.py:6",
        "bad.py:8",
        "bad.py:9",
        "bad.py:10",
        "bad.py:11",
        "bad.py:12",
    ], found
    assert _month_spellings(PACKAGE_DIR / "fields" / "timeaxis.py") != []  # the home is seen
