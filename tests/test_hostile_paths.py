"""Hostile paths × every place gart writes (issue 13's hostile-input suite).

A collaborator commits a hand-written manifest — its digest, size and count correct, so only
the path rules stand in the way — and publishes it. Each trick in the artifact's own path or in
an entry path, pulled, checked out, pulled `--to` a directory or pulled `--repo` from another
repository, must be refused with one line, exit 1, and nothing written outside the target."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from conftest import Project, git, run_gart

DATA = b"pwned\n"
OID = hashlib.sha256(DATA).hexdigest()

ENTRY_TRICKS = ["../escape", "../../escape", "a/../../escape", "/tmp/escape", "./a",
                "a//b", ".git/hooks/post-checkout", "sub/.git/config", "a/\x01b",
                "a\\..\\..\\escape", ".", "a/.", "a/.."]
PATH_TRICKS = ["..", "../outside", "/tmp", ".git", ".gart", "sub/../..", "./data"]
PLACES = ["pull", "checkout", "pull-to", "pull-repo"]


def craft(name: str, path: str, entry: str) -> str:
    line = f"{OID} {len(DATA)} {entry}"
    digest = hashlib.sha256(f"{line}\n".encode()).hexdigest()
    return (f'gart: 1\nname: {name}\ntype: dataset\ndescription: ""\nmetadata: {{}}\n'
            f'path: {path!r}\ninclude: ["."]\nexclude: []\ndigest: sha256:{digest}\n'
            f"size: {len(DATA)}\ncount: 1\nfiles: |\n  {line}\n")


def snapshot(root: Path) -> set[str]:
    """Every path under root (git's own objects aside): what a refused command may not add."""
    out = set()
    for directory, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in ("objects", "logs")]
        out.update(os.path.join(directory, f) for f in files)
    return out


@pytest.fixture
def hostile(project: Project) -> Project:
    """The project with a real `evil` artifact published, whose bytes are on the remote."""
    (project.root / "stage").mkdir()
    (project.root / "stage" / "x.bin").write_bytes(DATA)
    assert run_gart(project.root, "add", "stage", "--name", "evil").rc == 0
    git(project.root, "commit", "-qm", "evil")
    assert run_gart(project.root, "push").rc == 0
    git(project.root, "push", "-q", "origin", "HEAD:main")
    return project


# "root": an artifact at the repository root reaching into gart's own directory.
TRICKS = ([("entry", t) for t in ENTRY_TRICKS] + [("path", t) for t in PATH_TRICKS]
          + [("root", ".gart/config.yaml"), ("root", ".gart/cache/x")])
# Sampled, to keep the suite short: each trick in two of the four places, rotating, so every
# place meets every kind of trick.
CASES = [(field, trick, PLACES[(i + k) % len(PLACES)])
         for i, (field, trick) in enumerate(TRICKS) for k in (0, 2)]


@pytest.mark.parametrize(("field", "trick", "place"), CASES)
def test_a_hostile_path_is_refused_wherever_it_would_be_written(
    hostile: Project, place: str, field: str, trick: str
) -> None:
    root = hostile.root
    manifest = root / ".gart" / "artifacts" / "evil.yaml"
    entry, path = {"entry": (trick, "stage"), "path": ("x.bin", trick),
                   "root": (trick, ".")}[field]
    manifest.write_text(craft("evil", path, entry))
    git(root, "commit", "-qam", "hostile")  # a published commit, as a collaborator would
    git(root, "push", "-q", "origin", "HEAD:main")
    if place == "pull-repo":
        # Another repository's published version: tag it, push the tag, pull by URL.
        git(root, "tag", "-a", "evil@v9", "-m", "evil", "HEAD")
        git(root, "push", "-q", "origin", "evil@v9")
    outside = hostile.tmp
    before = snapshot(outside)
    work = outside / "victim"
    work.mkdir(exist_ok=True)
    if place == "pull":
        result = run_gart(root, "pull", "evil@HEAD", "--force")
    elif place == "checkout":
        result = run_gart(root, "checkout", "evil", "--force")
    elif place == "pull-to":
        result = run_gart(root, "pull", "evil@HEAD", "--to", str(work / "out"))
    else:
        result = run_gart(work, "pull", "evil@v9", "--repo", hostile.origin.as_uri(),
                          "--to", "out")
    assert result.rc == 1, (result.rc, result.err)
    assert "Traceback" not in result.err
    assert len([ln for ln in result.err.splitlines() if ln.startswith("gart: error:")]) == 1
    added = {p for p in snapshot(outside) - before
             if "/.gart/" not in p and "/gitartifacts/" not in p and "/.git/" not in p}
    assert added <= {str(work)}, sorted(added)[:5]  # nothing placed anywhere
    assert not (outside / "escape").exists() and not Path("/tmp/escape").exists()
