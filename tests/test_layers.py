"""The helpers package in layers (helpers/README.md): the import contracts hold, an import inside a
function only defers a heavy library, and no module or function outgrows a reader.

core < data < (augment | inpaint) < classify < book < rehearsal < the CLI: import-linter checks the
contract of pyproject.toml. The other two rules are checked here on the source, without importing it.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "helpers"
# Libraries worth deferring: each takes from a large part of a second (torch: about 2 s) to import.
# seaborn and torchvision are here because they import matplotlib and torch at their top.
HEAVY = {"torch", "torchvision", "timm", "diffusers", "transformers", "pyiqa", "pytorch_fid", "sklearn",
         "scipy", "matplotlib", "seaborn", "cv2", "skimage", "open_clip", "huggingface_hub", "gdown"}
MAX_MODULE_LINES = 420
MAX_FUNCTION_LINES = 55
# Published layer layouts, written out as their authors did (a list of layers, no logic):
# (module, Class.function) -> why it may be longer.
LONG_FUNCTIONS = {
    ("helpers.inpaint.deepfill", "GeneratorTF.__init__"): "DeepFill v2's generator, layer by layer as networks_tf.py",
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _resolve(importer: str, node: ast.ImportFrom | ast.Import) -> list[str]:
    """The helpers modules an import statement of ``importer`` loads (a ``from P import name`` of a
    submodule loads that submodule), each with the packages above it."""
    if isinstance(node, ast.Import):
        targets = [a.name for a in node.names]
    else:
        if node.level:
            base = importer if _is_package(importer) else importer.rpartition(".")[0]
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            base = ".".join(filter(None, [base, node.module]))
        else:
            base = node.module or ""
        targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
    loaded = []
    for target in targets:
        parts = target.split(".")
        loaded += [".".join(parts[:i]) for i in range(1, len(parts) + 1) if ".".join(parts[:i]) in MODULES]
    return list(dict.fromkeys(loaded))


def _top_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Imports that run when the module is imported: not those in functions or under TYPE_CHECKING."""
    found, todo = [], list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        todo += list(ast.iter_child_nodes(node))
    return found


@cache
def _tree(name: str) -> ast.Module:
    return ast.parse(MODULES[name].read_text(encoding="utf-8"))


def _external(node: ast.Import | ast.ImportFrom) -> set[str]:
    if isinstance(node, ast.Import):
        return {a.name.split(".")[0] for a in node.names}
    return {node.module.split(".")[0]} if node.level == 0 and node.module else set()


def heavy_modules() -> dict[str, str]:
    """helpers module -> the heavy library it loads at its top, directly or through the helpers
    modules it imports at its top (modules that load none are left out)."""
    direct = {name: sorted(lib for node in _top_level_imports(_tree(name)) for lib in _external(node) & HEAVY)
              for name in MODULES}
    edges = {name: [t for node in _top_level_imports(_tree(name)) for t in _resolve(name, node) if t != name]
             for name in MODULES}
    heavy = {name: f"{libs[0]} (directly)" for name, libs in direct.items() if libs}
    changed = True
    while changed:  # to a fixed point: cycles are allowed in the walk
        changed = False
        for name in MODULES:
            if name not in heavy:
                through = next((t for t in edges[name] if t in heavy), None)
                if through:
                    heavy[name], changed = f"{heavy[through].split(' ')[0]} (through {through})", True
    return heavy


def _function_imports(name: str):
    """(function, line, helpers modules loaded) of each import inside a function of ``name``."""
    for fn in ast.walk(_tree(name)):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(fn):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    targets = [t for t in _resolve(name, node) if t.startswith("helpers")]
                    if targets:
                        yield fn.name, node.lineno, targets


def _owner_packages(importer: str) -> set[str]:
    parts = importer.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts) + (1 if _is_package(importer) else 0))}


def deferred_light_imports() -> list[str]:
    """Imports of a helpers module inside a function although it loads nothing heavy."""
    heavy, bad = heavy_modules(), []
    for name in MODULES:
        for function, line, targets in _function_imports(name):
            new = [t for t in targets if t not in _owner_packages(name) and t != name]
            if new and not any(t in heavy for t in new):
                bad.append(f"{MODULES[name].relative_to(REPO)}:{line} in {function}(): "
                           f"import of {new[-1]} inside a function, which loads nothing heavy: import it at the top")
    return bad


def _functions(tree: ast.AST, prefix: str = ""):
    """(qualified name, node) of every function, methods as ``Class.name``."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield prefix + node.name, node
            yield from _functions(node, f"{prefix}{node.name}.")
        elif isinstance(node, ast.ClassDef):
            yield from _functions(node, f"{prefix}{node.name}.")
        else:
            yield from _functions(node, prefix)


def oversized() -> list[str]:
    bad = []
    for name, path in MODULES.items():
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_MODULE_LINES:
            bad.append(f"{path.relative_to(REPO)}: {lines} lines (at most {MAX_MODULE_LINES}): split it by job")
        for qualname, fn in _functions(_tree(name)):
            length = fn.end_lineno - fn.lineno + 1
            if length > MAX_FUNCTION_LINES and (name, qualname) not in LONG_FUNCTIONS:
                bad.append(f"{path.relative_to(REPO)}:{fn.lineno} {qualname}(): {length} lines "
                           f"(at most {MAX_FUNCTION_LINES})")
    return bad


def test_import_contracts_hold():
    lint = Path(sys.executable).parent / "lint-imports"
    lint = str(lint) if lint.exists() else shutil.which("lint-imports")
    assert lint, "lint-imports is missing: pip install -e '.[dev]' installs import-linter"
    out = subprocess.run([lint, "--no-cache"], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "0 broken" in out.stdout


def test_make_test_checks_the_contracts_before_the_tests():
    out = subprocess.run(["make", "-n", "unit"], cwd=REPO, capture_output=True, text=True)
    lines = out.stdout.splitlines()
    lint = next(i for i, line in enumerate(lines) if line.strip().endswith("/bin/lint-imports"))
    assert any("-m pytest tests" in line for line in lines[lint + 1:]), out.stdout


def _tree_lines(text: str) -> list[str]:
    """The lines under ``helpers/`` of the first code block that draws the package."""
    block = text.split("\nhelpers/\n", 1)[1].split("```", 1)[0]
    return [line.rstrip() for line in block.splitlines() if line.startswith("  ")]


def test_the_package_tree_is_documented_once_per_subpackage():
    """helpers/README.md and the page *Running the book* show the same tree, one line per subpackage."""
    readme = _tree_lines((PACKAGE / "README.md").read_text(encoding="utf-8"))
    page = _tree_lines((REPO / "book" / "running.md").read_text(encoding="utf-8"))
    assert readme == page
    listed = {line.split()[0].rstrip("/") for line in readme}
    subpackages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert listed == subpackages | {"__main__.py"}


def test_an_import_inside_a_function_defers_a_heavy_library():
    assert deferred_light_imports() == []


def test_no_module_or_function_outgrows_a_reader():
    assert oversized() == []


def test_the_allowed_long_functions_exist():
    """An entry of :data:`LONG_FUNCTIONS` whose function is gone (or renamed) goes too."""
    for module, qualname in LONG_FUNCTIONS:
        assert module in MODULES and qualname in dict(_functions(_tree(module))), (module, qualname)


# ------------------------------------------------------ the checks themselves catch what they should

def _fake_package(tmp_path: Path, monkeypatch, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    modules = {_module_name(p): p for p in sorted((tmp_path / "helpers").rglob("*.py"))}
    monkeypatch.setattr(sys.modules[__name__], "MODULES", modules)
    _tree.cache_clear()


def test_the_checks_catch_a_light_deferred_import_and_a_long_function(tmp_path, monkeypatch):
    long_body = "".join(f"    x{i} = {i}\n" for i in range(MAX_FUNCTION_LINES))
    _fake_package(tmp_path, monkeypatch, {
        "helpers/__init__.py": "",
        "helpers/low/__init__.py": "",
        "helpers/low/light.py": "import json\n",
        "helpers/low/plots.py": "import matplotlib.pyplot as plt\n",
        "helpers/low/through.py": "from . import plots\n",
        "helpers/high/__init__.py": "",
        "helpers/high/page.py": ("def a():\n    from ..low import light\n\n"
                                 "def b():\n    from ..low.through import plots\n\n"
                                 "def c():\n    from ..low import plots\n\n"
                                 "def d():\n    import torch\n\n"
                                 f"def long():\n{long_body}"),
        "helpers/high/net.py": "class Net:\n    def build(self):\n" + long_body.replace("    ", "        "),
    })
    try:
        heavy = heavy_modules()
        assert set(heavy) == {"helpers.low.plots", "helpers.low.through"}
        assert heavy["helpers.low.through"] == "matplotlib (through helpers.low.plots)"
        bad = deferred_light_imports()
        assert len(bad) == 1 and "page.py:2 in a()" in bad[0] and "helpers.low.light" in bad[0]
        too_long = sorted(oversized())
        assert len(too_long) == 2 and "net.py:2 Net.build()" in too_long[0] and "page.py:13 long()" in too_long[1]
        monkeypatch.setitem(LONG_FUNCTIONS, ("helpers.high.net", "Net.build"), "a published layout")
        assert len(oversized()) == 1
    finally:
        _tree.cache_clear()


@pytest.mark.parametrize("importer, statement, expected", [
    ("helpers.book.chapter", "from ..core import paper", ["helpers", "helpers.core", "helpers.core.paper"]),
    ("helpers.book.chapter", "from .figures import Cell", ["helpers", "helpers.book", "helpers.book.figures"]),
    ("helpers.book", "from .chapter import setup", ["helpers", "helpers.book", "helpers.book.chapter"]),
    ("helpers.__main__", "from .core.profiles import get_profile",
     ["helpers", "helpers.core", "helpers.core.profiles"]),
])
def test_imports_resolve_to_the_modules_they_load(importer, statement, expected):
    assert _resolve(importer, ast.parse(statement).body[0]) == expected
