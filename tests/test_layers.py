"""Each module imports only from rows below it; `gart status` stays clear of heavy imports."""

from __future__ import annotations

import ast
import os
from pathlib import Path

from conftest import run_gart

import gitartifacts

PACKAGE = Path(gitartifacts.__file__).resolve().parent

# DESIGN.md §6: a module may import gitartifacts modules from strictly lower rows only.
ROWS: dict[str, float] = {
    "errors": 0, "fsutil": 0,
    "retry": 0.5,
    "safeyaml": 1,
    "config": 2,
    "testhooks": 2.5,  # crash/pause hooks for the integrity suites (env via config)
    "paths": 3, "hashing": 3, "ignore": 3,
    "manifest": 4, "runrecord": 4, "lineage": 4.5,
    "mergedriver": 4.5,  # git's merge=gart driver: manifests merged entry by entry
    "packformat": 4.8,  # pack and index formats: pure checks over bytes
    "backends": 4.85,  # a local directory or an fsspec filesystem under ObjectStore
    "packtable": 4.87,  # a store's index table: its packs and where each object lies
    "gitcli": 4.9,  # the git binary; below gitrepo, whose GitRepo inherits its commands
    "backenderrors": 4.5,  # every backend's exceptions -> gart errors, below objects and remote
    "objects": 5, "gitrepo": 5, "progress": 5, "lineageview": 5,
    "gitplumbing": 5,  # over gitcli: hook paths, git config, pushed commit ranges
    "storeops": 5.5,  # survey, sweep, repack, store locks (gc / fsck --remote)
    "chunking": 5.2,  # large files as content-defined chunks
    "placer": 5.5,  # safe file placement over the store
    "gitmeta": 5.5,  # path-list commits and refs/gart/ records, over gitcli's runner
    "remote": 6, "transfer": 6, "aliases": 6, "workspace": 6,
    "references": 6.1,  # sources of external references: list, check, fetch (over remote)
    "checkout": 6.2,  # plans against the scanned working tree, places with placer
    "repocore": 6.5,  # one repository's state; the rooms below build on it
    "tracking": 6.6, "remoteconfig": 6.6, "versioning": 6.6,
    "sync": 6.7,  # push/fetch/pull need the three rooms above
    "integrity": 6.75,  # gc, fsck --remote, and the locks around add/pull/push
    "gates": 6.75,  # status --exit-code, push --dry-run, verify, conflict resolution
    "usage": 6.7,  # `gart du`: sizes per version
    "foreign": 6.8,  # another repository's artifacts, no clone
    "drafts": 6.8,  # incremental versions: a base manifest plus and minus entries
    "parts": 6.85,  # distributed versions: per-job parts on origin, one finish publishes
    "api": 7,
    "hooks": 7.1,  # install-hooks and what each git hook does
    "runs": 7.2,  # row 7: run records are built on the Repo API
    "runner": 7.4, "pipeline": 7.6,  # `gart run` executes; stages repeat runs
    "wandb_artifact": 7.3,  # W&B's Artifact of a logged/used version: files, download, edits
    "wandb_public": 7.45,  # W&B's public Api: artifact(), artifacts(), projects
    "wandb_run": 7.5,  # W&B's init() and Run: use_artifact records, log_artifact publishes
    "wandb_api": 7.6,  # the W&B-shaped Python API: one import for all of the above
    "__init__": 7.8,  # row 7, and it may re-export the API (api, run) lazily
    "clibase": 8,  # the click group, shared options, the error table, output helpers
    "cli_work": 8.1, "cli_remote": 8.1, "cli_versions": 8.1, "cli_runs": 8.1,
    "cli_integrity": 8.1, "cli_git": 8.1,  # commands by subject, each over clibase
    "cli_drafts": 8.2,  # rm/rebase/upsert/finish/parts share cli_work's draft output
    "cli": 8.5,  # registers every command module; main()
    "__main__": 8.7,  # the `python -m gitartifacts` entry point, necessarily above cli
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
    add = run_gart(repo, "add", "data")
    assert add.rc == 0, add.err
    done = run_gart(repo, "status", python_args=["-X", "importtime"])
    assert done.rc == 0, done.err
    assert "clean" in done.out
    imported = {
        line.rsplit("|", 1)[1].strip()
        for line in done.err.splitlines() if line.startswith("import time:") and "|" in line
    }
    assert "gitartifacts.cli" in imported and "gitartifacts.manifest" in imported
    # The manifest and config parses are cached by content hash: no YAML parser on this path.
    assert "yaml" not in imported
    heavy = sorted(m for m in imported if m.split(".")[0] in HEAVY)
    assert heavy == [], f"`gart status` imports {heavy}"
