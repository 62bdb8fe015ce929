"""The `merge=gart` driver: manifests merged entry by entry by real `git merge` / `git rebase`."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import GartResult, git

from gitartifacts import manifest as manifestmod
from gitartifacts.manifest import Entry, Manifest
from gitartifacts.mergedriver import merge_texts, resolve_conflicted

Gart = Callable[..., GartResult]


def entries(manifest: Manifest) -> dict[str, str]:
    return {e.path: e.oid for e in manifest.entries}


def load(repo: Path, name: str = "data") -> Manifest:
    return manifestmod.loads((repo / f".gart/artifacts/{name}.yaml").read_bytes())


def git_rc(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GIT_EDITOR": "true"}
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False,
                          env=env)


def write(repo: Path, rel: str, data: bytes) -> None:
    path = repo / "data" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


@pytest.fixture
def two_branches(repo: Path, gart: Gart) -> Path:
    """data/{a,b,c} committed on main, gart hooks + driver installed, branch `feature` made."""
    for name in "abc":
        write(repo, name, f"base {name}\n".encode())
    assert gart("add", "data").rc == 0
    done = gart("install-hooks")
    assert done.rc == 0, done.err
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    git(repo, "branch", "feature")
    return repo


def commit_change(repo: Path, gart: Gart, message: str,
                  changes: dict[str, bytes | None]) -> None:
    for rel, data in changes.items():
        if data is None:
            (repo / "data" / rel).unlink()
        else:
            write(repo, rel, data)
    done = gart("add", "data")
    assert done.rc == 0, done.err
    git(repo, "commit", "-q", "-am", message)


def switch(repo: Path, gart: Gart, branch: str) -> None:
    git(repo, "checkout", "-q", branch)
    done = gart("checkout", "data", "--force")
    assert done.rc == 0, done.err


def test_install_registers_driver_and_attributes(two_branches: Path) -> None:
    repo = two_branches
    assert "merge=gart" in (repo / ".gitattributes").read_text()
    assert "gitartifacts merge-driver %O %A %B %P" in git(repo, "config", "merge.gart.driver")
    attr = git(repo, "check-attr", "merge", ".gart/artifacts/data.yaml")
    assert attr.strip().endswith("merge: gart")
    assert git(repo, "check-attr", "merge", ".gart/artifacts/team/x.yaml").strip().endswith("gart")


def test_disjoint_changes_combine_with_recomputed_digest(two_branches: Path, gart: Gart) -> None:
    repo = two_branches
    switch(repo, gart, "feature")
    commit_change(repo, gart, "feature", {"a": b"feature a\n", "d": b"new d\n"})
    feature = load(repo)
    switch(repo, gart, "main")
    commit_change(repo, gart, "main", {"c": b"main c\n", "b": None})
    main = load(repo)
    done = git_rc(repo, "merge", "--no-edit", "feature")
    assert done.returncode == 0, done.stdout + done.stderr
    text = (repo / ".gart/artifacts/data.yaml").read_text()
    merged = manifestmod.loads(text)  # strict: digest, size and count must match
    assert manifestmod.dumps(merged) == text  # canonical
    assert entries(merged) == {"a": entries(feature)["a"], "c": entries(main)["c"],
                               "d": entries(feature)["d"]}
    assert merged.size == sum(len(x) for x in (b"feature a\n", b"main c\n", b"new d\n"))
    assert merged.count == 3
    assert git(repo, "status", "--porcelain", "--", ".gart") == ""
    done = gart("checkout", "data")
    assert done.rc == 0, done.err
    assert (repo / "data/d").read_bytes() == b"new d\n" and not (repo / "data/b").exists()
    assert gart("status", "--exit-code", "data").err.count("not pushed") == 0


def make_conflict(repo: Path, gart: Gart) -> None:
    switch(repo, gart, "feature")
    commit_change(repo, gart, "feature", {"a": b"feature a\n", "d": b"new d\n"})
    switch(repo, gart, "main")
    commit_change(repo, gart, "main", {"a": b"main a\n", "c": b"main c\n"})


def test_same_path_changed_on_both_sides_conflicts_by_path(two_branches: Path,
                                                          gart: Gart) -> None:
    repo = two_branches
    make_conflict(repo, gart)
    done = git_rc(repo, "merge", "--no-edit", "feature")
    assert done.returncode != 0
    assert "files: a" in done.stderr and "gart checkout --ours data" in done.stderr
    assert "files: c" not in done.stderr and "files: d" not in done.stderr
    text = (repo / ".gart/artifacts/data.yaml").read_text()
    assert "<<<<<<< ours" in text and ">>>>>>> theirs" in text
    assert "UU .gart/artifacts/data.yaml" in git(repo, "status", "--porcelain")
    # Every reader refuses the conflicted manifest, naming the ways out.
    status = gart("status")
    assert status.rc == 1 and "unresolved merge conflict" in status.err
    assert "gart checkout --theirs data" in status.err and "Traceback" not in status.err
    # Both sides survive in the file: each resolution keeps everything merged cleanly.
    ours = resolve_conflicted(text, "ours")
    theirs = resolve_conflicted(text, "theirs")
    assert set(entries(ours)) == set(entries(theirs)) == {"a", "b", "c", "d"}
    assert entries(ours)["a"] != entries(theirs)["a"]
    done = gart("checkout", "--theirs", "data")
    assert done.rc == 0, done.err
    assert (repo / "data/a").read_bytes() == b"feature a\n"
    assert (repo / "data/c").read_bytes() == b"main c\n"
    assert (repo / "data/d").read_bytes() == b"new d\n"
    assert git(repo, "diff", "--name-only", "--diff-filter=U") == ""
    assert git_rc(repo, "commit", "--no-edit").returncode == 0
    assert entries(load(repo)) == entries(theirs)
    assert gart("status", "--exit-code", "data").rc in (0, 1)  # manifest readable again


def test_conflict_resolved_by_re_adding(two_branches: Path, gart: Gart) -> None:
    repo = two_branches
    make_conflict(repo, gart)
    assert git_rc(repo, "merge", "--no-edit", "feature").returncode != 0
    write(repo, "a", b"hand-merged a\n")
    write(repo, "d", b"new d\n")
    done = gart("add", "data")
    assert done.rc == 0, done.err
    assert git_rc(repo, "commit", "--no-edit").returncode == 0
    merged = load(repo)
    assert set(entries(merged)) == {"a", "b", "c", "d"}
    assert merged.description == "" and merged.type == "dataset"


def test_rebase_conflict_resolved_with_ours(two_branches: Path, gart: Gart) -> None:
    repo = two_branches
    make_conflict(repo, gart)
    switch(repo, gart, "feature")
    done = git_rc(repo, "rebase", "main")
    assert done.returncode != 0
    assert "files: a" in done.stdout + done.stderr
    # During a rebase, "ours" is the branch being rebased onto (main).
    done = gart("checkout", "--ours", "data", "--force")
    assert done.rc == 0, done.err
    done = git_rc(repo, "rebase", "--continue")
    assert done.returncode == 0, done.stdout + done.stderr
    result = load(repo)
    assert (repo / "data/a").read_bytes() == b"main a\n"
    assert set(entries(result)) == {"a", "b", "c", "d"}


def test_clean_rebase_combines(two_branches: Path, gart: Gart) -> None:
    repo = two_branches
    switch(repo, gart, "feature")
    commit_change(repo, gart, "feature", {"d": b"new d\n"})
    switch(repo, gart, "main")
    commit_change(repo, gart, "main", {"b": None})
    git(repo, "checkout", "-q", "feature")
    done = git_rc(repo, "rebase", "main")
    assert done.returncode == 0, done.stdout + done.stderr
    assert set(entries(load(repo))) == {"a", "c", "d"}


# -- the merge itself, on texts ------------------------------------------------------------


def manifest(**files: str) -> str:
    return manifestmod.dumps(Manifest(
        "m", entries=tuple(Entry(p, oid * 64, 1) for p, oid in files.items())))


def test_field_and_metadata_merge() -> None:
    base = Manifest("m", description="d", metadata={"k": 1, "j": 1})
    ours = Manifest("m", description="ours", metadata={"k": 2, "j": 1})
    theirs = Manifest("m", description="d", metadata={"k": 1, "j": 1, "new": True})
    out = merge_texts(*(manifestmod.dumps(m).encode() for m in (base, ours, theirs)))
    assert out.clean
    merged = manifestmod.loads(out.text)
    assert merged.description == "ours" and merged.metadata == {"k": 2, "j": 1, "new": True}
    clash = Manifest("m", description="theirs", metadata={"k": 3, "j": 1})
    out = merge_texts(*(manifestmod.dumps(m).encode() for m in (base, ours, clash)))
    assert out.conflicts == ["description", "metadata.k"]


def test_modify_delete_and_add_add() -> None:
    base = manifest(a="1", b="2")
    out = merge_texts(base.encode(), manifest(a="3", b="2").encode(), manifest(b="2").encode())
    assert out.conflicts == ["files: a"]
    assert "a" not in entries(resolve_conflicted(out.text, "theirs"))
    out = merge_texts(b"", manifest(x="1").encode(), manifest(x="1", y="2").encode())
    assert out.conflicts == [] and set(entries(manifestmod.loads(out.text))) == {"x", "y"}
    out = merge_texts(b"", manifest(x="1").encode(), manifest(x="2").encode())
    assert out.conflicts == ["files: x"]


def test_references_and_the_storage_format_survive_a_merge() -> None:
    from gitartifacts.manifest import Reference

    a = Entry("a", "1" * 64, 1)
    ref = Reference("ext/x.csv", "s3://bucket/x.csv", 5, None, (("etag", '"e1"'),))
    moved = ref._replace(pin=(("etag", '"e2"'),))
    base = Manifest("m", entries=(a,), references=(ref,))
    ours = Manifest("m", entries=(a, Entry("b", "2" * 64, 2)), references=(ref,), format=2)
    theirs = Manifest("m", entries=(a,), references=(moved,
                      Reference("ext/y.csv", "s3://bucket/y.csv", 7, None, (("etag", '"f"'),))))
    out = merge_texts(*(manifestmod.dumps(m).encode() for m in (base, ours, theirs)))
    assert out.clean, out.conflicts
    merged = manifestmod.loads(out.text)
    assert {e.path for e in merged.entries} == {"a", "b"}
    assert {r.path: r.pins for r in merged.references} == {
        "ext/x.csv": {"etag": '"e2"'}, "ext/y.csv": {"etag": '"f"'}}
    clash = Manifest("m", entries=(a,), references=(ref._replace(pin=(("etag", '"e3"'),)),))
    out = merge_texts(*(manifestmod.dumps(m).encode() for m in (base, theirs, clash)))
    assert out.conflicts == ["refs: ext/x.csv"]
    chunked = Manifest("m", entries=(a,), format=2)
    out = merge_texts(*(manifestmod.dumps(m).encode() for m in (base, chunked, base)))
    assert manifestmod.loads(out.text).format == 2  # a chunked side keeps gart: 2
