"""Security of the working-tree side: symlinked parents, unverified cache bytes, temp files
left by killed runs, lying sizes, deletions outside the artifact, and a wiped cache.

Every test drives a real git repository and, where it can, the real `gart` command."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import GartResult, World, git, read_tree

from gitartifacts.objects import loose_key

Gart = Callable[..., GartResult]
Dataset = Callable[..., dict[str, bytes]]
BIG = (1 << 20) + 17  # above the pack threshold: a loose object


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def refused(result: GartResult, *words: str) -> str:
    """A user error: exit 1, one line (plus an optional hint line), no traceback."""
    assert result.rc == 1, (result.rc, result.out, result.err)
    assert "Traceback" not in result.err, result.err
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert 1 <= len(lines) <= 2, result.err
    for word in words:
        assert word in result.err, (word, result.err)
    return result.err


def ok(result: GartResult) -> GartResult:
    assert result.rc == 0, (result.rc, result.out, result.err)
    return result


def set_link_types(root: Path, kinds: list[str]) -> None:
    config = root / ".gart" / "config.yaml"
    config.write_text(config.read_text() + f"cache:\n  type: [{', '.join(kinds)}]\n")


def add_remote(repo: Path, gart: Gart) -> Path:
    storage = repo.parent / "storage"
    ok(gart("remote", "add", "storage", str(storage), "--default"))
    return storage


def cache_object(repo: Path, data: bytes) -> Path:
    return repo / ".gart" / "cache" / loose_key(sha(data))


def temp_files(root: Path) -> list[str]:
    return sorted(p.name for p in root.rglob(".tmp-*"))


# ---- 1. writes through a symlinked parent ---------------------------------------------


def _artifact_behind_a_committed_symlink(repo: Path, gart: Gart, tmp_path: Path) -> Path:
    """Artifact `inner` at ilink/sub, then ilink replaced by a committed symlink outside."""
    add_remote(repo, gart)
    (repo / "ilink" / "sub").mkdir(parents=True)
    (repo / "ilink" / "sub" / "a.txt").write_bytes(b"payload")
    (repo / "ilink" / "sub" / "deep").mkdir()
    (repo / "ilink" / "sub" / "deep" / "b.bin").write_bytes(os.urandom(BIG))
    ok(gart("add", "ilink/sub", "--name", "inner"))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "inner")
    ok(gart("push"))
    for path in sorted((repo / "ilink").rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    (repo / "ilink").rmdir()
    outside = tmp_path / "outside-dir"
    outside.mkdir()
    os.symlink(outside, repo / "ilink")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "a symlink")
    return outside


@pytest.mark.parametrize("command", ["checkout", "pull"])
def test_symlinked_parent_of_the_artifact_path_is_refused(
    repo: Path, gart: Gart, tmp_path: Path, snapshot: Callable, command: str  # type: ignore[type-arg]
) -> None:
    outside = _artifact_behind_a_committed_symlink(repo, gart, tmp_path)
    before = snapshot(repo)
    for force in ((), ("--force",)):
        refused(gart(command, "inner", *force), "ilink", "symlink")
        assert list(outside.iterdir()) == [], "written through the symlink"
        assert snapshot(repo) == before


@pytest.mark.parametrize("command", ["checkout", "pull"])
def test_symlinked_directory_under_the_target_root_is_refused(
    published: World, gart: Gart, tmp_path: Path, command: str
) -> None:
    repo = published.root
    outside = tmp_path / "outside-dir"
    outside.mkdir()
    victim = next(p for p in sorted(published.raw) if "/" in p)
    folder = victim.split("/")[0]
    for path in (repo / "raw" / folder).iterdir():
        path.unlink()
    (repo / "raw" / folder).rmdir()
    os.symlink(outside, repo / "raw" / folder)
    refused(gart(command, "raw", "--force"), f"raw/{folder}", "symlink")
    assert list(outside.iterdir()) == []
    # --to a fresh directory with a symlinked sub-directory in it: refused as well
    target = tmp_path / "export"
    target.mkdir()
    os.symlink(outside, target / folder)
    refused(gart(command, "raw", "--to", target, "--force"), folder, "symlink")
    assert list(outside.iterdir()) == []


def test_placer_creates_no_directory_through_a_symlink(tmp_path: Path) -> None:
    from gitartifacts.errors import InvalidPathError
    from gitartifacts.manifest import Entry
    from gitartifacts.objects import ObjectStore
    from gitartifacts.workspace import Placer

    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, root / "link")
    placer = Placer(root, ObjectStore.local(tmp_path / "cache"), ["copy"])
    with pytest.raises(InvalidPathError, match="link"):
        placer.put_bytes(Entry("link/new/dir/f", sha(b"x"), 1), b"x")
    assert list(outside.iterdir()) == []


# ---- 2. unverified cache bytes ---------------------------------------------------------


@pytest.mark.parametrize("kinds", [["hardlink", "copy"], ["symlink", "copy"], ["copy"],
                                   ["reflink", "copy"]])
def test_an_edited_cache_object_is_never_placed(
    repo: Path, gart: Gart, kinds: list[str]
) -> None:
    set_link_types(repo, kinds)
    big = os.urandom(BIG)
    (repo / "data").mkdir()
    (repo / "data" / "big.bin").write_bytes(big)
    (repo / "data" / "small.txt").write_bytes(b"small")
    ok(gart("add", "data"))
    obj = cache_object(repo, big)
    obj.chmod(0o644)
    with open(obj, "r+b") as handle:  # an in-place edit: same inode, same size
        handle.write(b"\x00\x01\x02")
    (repo / "data" / "big.bin").unlink()
    err = refused(gart("checkout", "data"), "corrupt", "gart pull", "big.bin")
    assert sha(big) in err or sha(big)[:12] in err
    assert not (repo / "data" / "big.bin").exists()
    assert not obj.exists(), "the corrupt object stays in the cache"
    assert temp_files(repo / "data") == []
    assert (repo / "data" / "small.txt").read_bytes() == b"small"


def test_a_committed_cache_object_with_wrong_bytes_is_never_linked(
    repo: Path, gart: Gart, tmp_path: Path
) -> None:
    big = os.urandom(BIG)
    (repo / "data").mkdir()
    (repo / "data" / "big.bin").write_bytes(big)
    ok(gart("add", "data"))
    obj = cache_object(repo, big)
    obj.chmod(0o644)
    obj.write_bytes(b"evil" * 100)
    set_link_types(repo, ["hardlink", "copy"])
    git(repo, "add", "-A")
    git(repo, "add", "-f", str(obj.relative_to(repo)))
    git(repo, "commit", "-q", "-m", "a forged cache object")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    assert cache_object(clone, big).exists()
    err = refused(gart("checkout", "data", cwd=clone), "corrupt", "gart pull")
    assert "big.bin" in err
    assert not (clone / "data" / "big.bin").exists()
    assert not cache_object(clone, big).exists()


# ---- 3. temp files left by killed or failed runs ---------------------------------------


def test_a_temp_file_left_by_a_killed_pull_is_ignored_and_cleaned(
    published: World, gart: Gart
) -> None:
    repo = published.root
    victim = sorted(published.raw)[0]
    folder = (repo / "raw" / victim).parent
    planted = folder / f".tmp-{2**22 + 7}-{os.urandom(6).hex()}"
    planted.write_bytes(b"half a file")
    (repo / "raw" / victim).unlink()
    status = ok(gart("status")).out
    assert ".tmp-" not in status
    ok(gart("pull", "raw"))
    assert not planted.exists()
    assert read_tree(repo / "raw") == published.raw
    planted.write_bytes(b"again")
    assert "clean" in ok(gart("status")).out
    ok(gart("add", "raw"))
    assert ".tmp-" not in (repo / ".gart" / "artifacts" / "raw.yaml").read_text()
    ok(gart("checkout", "raw"))
    assert not planted.exists()


def test_a_checkout_killed_midway_converges_on_rerun(
    repo: Path, gart: Gart, make_dataset: Dataset
) -> None:
    data = make_dataset(repo / "data", files=3000, max_size=64, dirs=30)
    ok(gart("add", "data"))
    for path in sorted((repo / "data").rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    child = subprocess.Popen([sys.executable, "-m", "gitartifacts", "checkout", "data"],
                             cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and child.poll() is None:
        if (repo / "data").exists() and sum(1 for _ in (repo / "data").rglob("*")) > 200:
            break
        time.sleep(0.005)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL, "the checkout finished before the kill"
    assert len(read_tree(repo / "data")) < len(data)
    # a kill leaves (at worst) a temp file where it was writing: plant one to be sure
    (repo / "data" / "d0").mkdir(parents=True, exist_ok=True)
    (repo / "data" / "d0" / f".tmp-{child.pid}-{os.urandom(6).hex()}").write_bytes(b"x")
    ok(gart("checkout", "data"))
    assert temp_files(repo / "data") == []
    assert read_tree(repo / "data") == data
    assert "clean" in ok(gart("status")).out


def test_an_over_long_file_name_leaves_no_temp_file(repo: Path, gart: Gart) -> None:
    from gitartifacts.api import Repo
    from gitartifacts.manifest import Entry

    (repo / "data").mkdir()
    (repo / "data" / "a.txt").write_bytes(b"alpha")
    ok(gart("add", "data"))
    api = Repo(repo)
    manifest = api.load_manifest("data")
    long_name = "n" * 300
    api.write_manifest(replace(manifest, entries=(
        *manifest.entries, Entry(f"sub/{long_name}", sha(b"alpha"), 5))))
    (repo / "data" / "a.txt").unlink()
    refused(gart("checkout", "data"), "too long")
    assert temp_files(repo / "data") == [] if (repo / "data").exists() else True
    assert "clean" not in gart("status").out


# ---- 4. lying sizes --------------------------------------------------------------------


@pytest.mark.parametrize("claimed", [100, 0])
@pytest.mark.parametrize("big", [False, True])
def test_a_manifest_size_that_lies_is_refused(
    repo: Path, gart: Gart, claimed: int, big: bool
) -> None:
    from gitartifacts.api import Repo

    payload = os.urandom(BIG) if big else b"sixsix"
    (repo / "data").mkdir()
    (repo / "data" / "f.bin").write_bytes(payload)
    ok(gart("add", "data"))
    api = Repo(repo)
    manifest = api.load_manifest("data")
    [entry] = manifest.entries
    api.write_manifest(replace(manifest, entries=(entry._replace(size=claimed),)))
    assert "clean" not in ok(gart("status")).out
    (repo / "data" / "f.bin").unlink()
    refused(gart("checkout", "data"), "f.bin", "size")
    assert not (repo / "data" / "f.bin").exists()
    assert "clean" not in gart("status").out


# ---- 5. deleting files that are not the artifact's -------------------------------------


def test_checkout_to_the_repository_root_is_refused(
    published: World, gart: Gart, snapshot: Callable  # type: ignore[type-arg]
) -> None:
    repo = published.root
    (repo / "NOTES.md").write_text("mine")
    (repo / "src").mkdir()
    (repo / "src" / "main.py").write_text("print(1)")
    before = snapshot(repo)
    for args in (("--to", "."), ("--to", str(repo)), ("--to", ".", "--force")):
        refused(gart("checkout", "raw", *args), "repository")
        refused(gart("pull", "raw", *args), "repository")
    assert snapshot(repo) == before
    assert (repo / ".gitignore").exists() and (repo / "NOTES.md").read_text() == "mine"
    (repo / "src" / ".git").mkdir()  # a nested repository is not a target either
    refused(gart("checkout", "raw", "--to", "src", "--force"), ".git")
    assert (repo / "src" / "main.py").exists()


def test_force_never_deletes_a_file_that_is_not_the_artifacts(
    published: World, gart: Gart
) -> None:
    repo = published.root
    (repo / "raw" / "NOTES.md").write_text("my notes")
    (repo / "raw" / "new" / "main.py").parent.mkdir()
    (repo / "raw" / "new" / "main.py").write_text("print(1)")
    victim = sorted(published.raw)[0]
    (repo / "raw" / victim).write_bytes(b"edited")
    result = gart("checkout", "raw")
    err = refused(result, victim)
    assert "NOTES.md" not in err and "main.py" not in err, "unrelated files called changed"
    ok(gart("checkout", "raw", "--force"))
    assert (repo / "raw" / "NOTES.md").read_text() == "my notes"
    assert (repo / "raw" / "new" / "main.py").read_text() == "print(1)"
    assert (repo / "raw" / victim).read_bytes() == published.raw[victim]


# ---- 6. a wiped cache ------------------------------------------------------------------


def test_pull_after_the_cache_was_wiped_does_not_call_unchanged_files_changed(
    repo: Path, gart: Gart
) -> None:
    import shutil

    add_remote(repo, gart)
    (repo / "raw").mkdir()
    v0 = {"a.bin": os.urandom(BIG), "b.bin": os.urandom(BIG), "c.txt": b"small"}
    for rel, data in v0.items():
        (repo / "raw" / rel).write_bytes(data)
    ok(gart("add", "raw"))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "raw v0")
    ok(gart("push"))
    v1 = dict(v0, **{"a.bin": os.urandom(BIG), "b.bin": os.urandom(BIG)})
    for rel in ("a.bin", "b.bin"):
        (repo / "raw" / rel).write_bytes(v1[rel])
    ok(gart("add", "raw"))
    git(repo, "commit", "-q", "-am", "raw v1")
    ok(gart("push"))
    ok(gart("checkout", "raw@v0"))
    assert read_tree(repo / "raw") == v0
    shutil.rmtree(repo / ".gart" / "cache")
    ok(gart("pull", "raw@v1"))
    assert read_tree(repo / "raw") == v1
    # an edited file whose bytes are nowhere else is still protected
    shutil.rmtree(repo / ".gart" / "cache")
    (repo / "raw" / "a.bin").write_bytes(b"unsaved work")
    refused(gart("pull", "raw@v0"), "a.bin")
    assert (repo / "raw" / "a.bin").read_bytes() == b"unsaved work"
