"""Imports point down the floors: features never import the loader, the engine, the public API or
the CLI, and every module imports on its own in a fresh interpreter (no import cycle breaks an entry point)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
FEATURES = ("dedupe", "privacy", "segments", "emails", "identity")
#: the floors above the features
ABOVE = ("crmtool.rulefile", "crmtool.api", "crmtool.engine", "crmtool.cli")

#: feature module -> how many imports of a floor above it are tolerated, until they are moved out
KNOWN: Counter[tuple[str, str]] = Counter()

#: imports every crmtool module given on the command line, each with no crmtool module loaded
#: before it (third-party libraries stay loaded: they cannot take part in a crmtool import cycle)
FRESH_IMPORTS = """
import importlib, json, sys, traceback
root, failed = sys.argv[1], {}
for name in sys.argv[2:]:
    for loaded in [m for m in sys.modules if m == root or m.startswith(root + ".")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception:
        failed[name] = traceback.format_exc(limit=-3)
print(json.dumps(failed))
"""


def _module_name(path: Path, src: Path) -> str:
    parts = path.relative_to(src).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(tree: ast.Module, module: str, is_package: bool) -> list[tuple[str, ...]]:
    """The modules each import statement of ``tree`` names (anywhere: top level, TYPE_CHECKING,
    functions), and each ``import_module("...")`` / ``__import__("...")`` call: one tuple per statement."""
    found: list[tuple[str, ...]] = []
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name,) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([base] if base else [])])
            found.append((base, *(f"{base}.{a.name}" for a in node.names)))
        elif isinstance(node, ast.Call) and isinstance(node.func, (ast.Name, ast.Attribute)) \
                and getattr(node.func, "id", getattr(node.func, "attr", "")) in ("import_module", "__import__") \
                and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            found.append((node.args[0].value,))
    return found


def _upward_imports(src: Path, features: tuple[str, ...]) -> Counter[tuple[str, str]]:
    """(feature file, floor above) -> how many import statements of the file name that floor."""
    counts: Counter[tuple[str, str]] = Counter()
    for feature in features:
        for path in sorted((src / "crmtool" / feature).rglob("*.py")):
            module = _module_name(path, src)
            for names in _imported(ast.parse(path.read_text(encoding="utf-8")), module, path.name == "__init__.py"):
                for above in ABOVE:
                    if any(name == above or name.startswith(above + ".") for name in names):
                        counts[(path.relative_to(src).as_posix(), above)] += 1
    return counts


def _fresh_import_failures(src: Path, root: str) -> dict[str, str]:
    """Each module of package ``root`` under ``src`` imported in one fresh interpreter, none loaded
    before it; the ones that fail, with the end of their traceback."""
    modules = sorted(_module_name(p, src) for p in (src / root).rglob("*.py") if p.name != "__main__.py")
    proc = subprocess.run([sys.executable, "-c", FRESH_IMPORTS, root, *modules], capture_output=True, text=True,
                          timeout=600, check=False, cwd=src)
    assert proc.returncode == 0, proc.stderr
    failed: dict[str, str] = json.loads(proc.stdout.splitlines()[-1])
    return failed


def test_no_feature_imports_a_floor_above_it() -> None:
    found = _upward_imports(SRC, FEATURES)
    unknown = {k: v for k, v in found.items() if v > KNOWN[k]}
    assert unknown == {}, "features import the loader, engine, API or CLI (import the model crmtool.ruleset instead)"
    assert set(found) == set(KNOWN), "a known exception is gone: remove it from KNOWN"


def test_the_floor_check_sees_every_way_of_importing_up(tmp_path: Path) -> None:
    feature = tmp_path / "crmtool" / "dedupe"
    feature.mkdir(parents=True)
    (feature / "__init__.py").write_text("", encoding="utf-8")
    (feature / "a.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from crmtool.rulefile import RuleSet\n"
        "def f():\n    from crmtool import api\n    import crmtool.cli.common\n"
        "    return importlib.import_module('crmtool.engine')\n", encoding="utf-8")
    (feature / "b.py").write_text("from ..rulefile import load_rules\nfrom . import schema\n", encoding="utf-8")
    assert _upward_imports(tmp_path, ("dedupe",)) == Counter({
        ("crmtool/dedupe/a.py", "crmtool.rulefile"): 1, ("crmtool/dedupe/a.py", "crmtool.api"): 1,
        ("crmtool/dedupe/a.py", "crmtool.cli"): 1, ("crmtool/dedupe/a.py", "crmtool.engine"): 1,
        ("crmtool/dedupe/b.py", "crmtool.rulefile"): 1})


def test_every_module_imports_alone_in_a_fresh_interpreter() -> None:
    assert _fresh_import_failures(SRC, "crmtool") == {}


def test_the_fresh_import_check_catches_an_import_cycle(tmp_path: Path) -> None:
    package = tmp_path / "cyclic"
    package.mkdir()
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "a.py").write_text("from cyclic.b import B\nA = 1\n", encoding="utf-8")
    (package / "b.py").write_text("from cyclic.a import A\nB = 2\n", encoding="utf-8")
    (package / "c.py").write_text("C = 3\n", encoding="utf-8")
    failed = _fresh_import_failures(tmp_path, "cyclic")
    assert set(failed) == {"cyclic.a", "cyclic.b"}
    assert "partially initialized module" in failed["cyclic.a"]
