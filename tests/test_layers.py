"""Each module imports only from rows below it; `gart status` stays clear of heavy imports."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import gitartifacts

PACKAGE = Path(gitartifacts.__file__).resolve().parent

# DESIGN.md §6: a module may import gitartifacts modules from strictly lower rows only.
ROWS: dict[str, float] = {
    "errors": 0, "fsutil": 0,
    "retry": 0.5,
    "safeyaml": 1,
    "config": 2,
    "paths": 3, "hashing": 3,
    "manifest": 4, "lineage": 4,
    "backenderrors": 4.5,  # every backend's exceptions -> gart errors, below objects and remote
    "objects": 5, "gitrepo": 5, "progress": 5, "lineageview": 5,
    "remote": 6, "transfer": 6, "aliases": 6, "workspace": 6,
    "api": 7,
    "runs": 7.2,  # row 7: run records are built on the Repo API
    "runner": 7.4, "pipeline": 7.6,  # `gart run` executes; stages repeat runs
    "wandb_api": 7.6,  # the W&B-shaped Python API over runs
    "__init__": 7.8,  # row 7, and it may re-export the API (api, run) lazily
    "cli": 8,
    "__main__": 8.5,  # row 8: the `python -m gitartifacts` entry point, necessarily above cli
}
HEAVY = ("s3fs", "botocore", "aiobotocore", "dulwich", "git", "fsspec")


def package_modules() -> list[str]:
    return sorted(p.stem for p in PACKAGE.glob("*.py"))


def imported_modules(module: str) -> set[str]:
    """gitartifacts modules imported anywhere in `module` (also inside functions)."""
    return imports_in((PACKAGE / f"{module}.py").read_text(encoding="utf-8")) - {module}


def imports_in(source: str) -> set[str]:
    tree = ast.parse(source)
    names = set(package_modules())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "gitartifacts":
                    found.add(parts[1] if len(parts) > 1 else "__init__")
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module == "__future__":
                continue
            if node.level:
                base = ["gitartifacts", *(node.module or "").split(".")]
                base = [b for b in base if b]
            elif node.module is not None and node.module.split(".")[0] == "gitartifacts":
                base = node.module.split(".")
            else:
                continue
            if len(base) > 1:
                found.add(base[1])
                continue
            for alias in node.names:  # from gitartifacts import x: a module or a re-export
                found.add(alias.name if alias.name in names else "__init__")
    return found


def test_every_module_has_a_row() -> None:
    unknown = [m for m in package_modules() if m not in ROWS]
    assert unknown == [], f"give these modules a row in ROWS (DESIGN.md §6): {unknown}"


def test_imports_only_go_down() -> None:
    violations = []
    for module in package_modules():
        if module not in ROWS:
            continue  # reported by test_every_module_has_a_row
        for target in sorted(imported_modules(module)):
            if target not in ROWS or ROWS[target] >= ROWS[module]:
                violations.append(
                    f"{module} (row {ROWS[module]}) imports {target} "
                    f"(row {ROWS.get(target, '?')})"
                )
    assert violations == []


def test_the_import_parser_sees_every_form() -> None:
    # The checker itself must not be blind to any way of importing a module.
    forms = {
        "import gitartifacts.cli": {"cli"},
        "import gitartifacts": {"__init__"},
        "from gitartifacts import api, Repo": {"api", "__init__"},
        "from gitartifacts.objects import ObjectStore": {"objects"},
        "from . import workspace": {"workspace"},
        "from .manifest import loads": {"manifest"},
        "def f():\n    from gitartifacts import remote": {"remote"},
        "if TYPE_CHECKING:\n    from gitartifacts.api import Repo": {"api"},
        "from __future__ import annotations\nimport os, yaml\nfrom git import Repo": set(),
    }
    for source, expected in forms.items():
        assert imports_in(source) == expected, source


def test_status_does_not_import_heavy_dependencies(repo: Path) -> None:
    (repo / "data").mkdir()
    (repo / "data" / "f.bin").write_bytes(os.urandom(100))
    add = subprocess.run([sys.executable, "-m", "gitartifacts", "add", "data"], cwd=repo,
                         capture_output=True, text=True, check=False, timeout=60)
    assert add.returncode == 0, add.stderr
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "gitartifacts", "status"],
                          cwd=repo, capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "clean" in done.stdout
    imported = {
        line.rsplit("|", 1)[1].strip()
        for line in done.stderr.splitlines() if line.startswith("import time:") and "|" in line
    }
    assert "gitartifacts.cli" in imported and "gitartifacts.manifest" in imported
    # The manifest and config parses are cached by content hash: no YAML parser on this path.
    assert "yaml" not in imported
    heavy = sorted(m for m in imported if m.split(".")[0] in HEAVY)
    assert heavy == [], f"`gart status` imports {heavy}"
