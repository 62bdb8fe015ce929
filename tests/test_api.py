"""The Python API: Repo.init/add/save/status/checkout/diff and W&B-style Artifact builders."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import git, init_git_repo, read_tree, run_gart

import gitartifacts
from gitartifacts import api
from gitartifacts.api import Artifact, Repo
from gitartifacts.errors import (
    ArtifactNotFoundError,
    ConflictError,
    GartError,
    InvalidNameError,
    InvalidPathError,
    NotARepositoryError,
    UsageError,
)
from gitartifacts.manifest import loads


def staged(root: Path) -> set[str]:
    return set(git(root, "diff", "--cached", "--name-only").split())


def untracked(root: Path) -> set[str]:
    return set(git(root, "ls-files", "--others", "--exclude-standard").split())


def test_package_exports_the_api() -> None:
    assert gitartifacts.Repo is api.Repo
    assert gitartifacts.Artifact is api.Artifact


def test_init_creates_and_stages_the_gart_dir(tmp_path: Path, git_env: None) -> None:
    root = init_git_repo(tmp_path / "r")
    repo, created = Repo.init(root)
    assert created and repo.root == root
    assert {".gart/config.yaml", ".gart/.gitignore"} <= staged(root)
    before = (root / ".gart" / "config.yaml").read_bytes()
    _again, created_again = Repo.init(root)
    assert not created_again
    assert (root / ".gart" / "config.yaml").read_bytes() == before


def test_init_outside_git_is_refused(tmp_path: Path, git_env: None) -> None:
    with pytest.raises(NotARepositoryError):
        Repo.init(tmp_path)
    assert list(tmp_path.iterdir()) == [tmp_path / "home"]


def test_repo_without_gart_init_is_refused(tmp_path: Path, git_env: None) -> None:
    root = init_git_repo(tmp_path / "r")
    with pytest.raises(NotARepositoryError) as info:
        Repo(root)
    assert "gart init" in info.value.hint


def test_repo_found_from_a_subdirectory(repo: Path) -> None:
    (repo / "deep" / "er").mkdir(parents=True)
    assert Repo(repo / "deep" / "er").root == repo


def test_add_status_checkout_diff(
    repo: Path, make_dataset: Callable[..., dict[str, bytes]]
) -> None:
    original = make_dataset(repo / "data", files=12, seed=1)
    r = Repo(repo)
    added = r.add([repo / "data"], name="raw", type="dataset", description="d", metadata={"k": 1})
    assert added.changed and added.hashed == 12
    m = added.manifest
    assert (m.name, m.type, m.path, m.count) == ("raw", "dataset", "data", 12)
    assert m.size == sum(map(len, original.values()))
    assert loads(added.manifest_path.read_bytes()) == m
    assert ".gart/artifacts/raw.yaml" in staged(repo)

    [status] = r.status()
    assert (status.name, status.state) == ("raw", "clean")

    (repo / "data" / "d0" / "f0000.bin").write_bytes(b"changed")
    (repo / "data" / "d1" / "f0001.bin").unlink()
    (repo / "data" / "new.bin").write_bytes(b"new")
    [status] = r.status(["raw"])
    c = status.comparison
    assert status.state == "modified"
    assert (c.added, c.changed, c.removed) == (["new.bin"], ["d0/f0000.bin"], ["d1/f0001.bin"])

    diff = r.diff("raw")
    assert [e.path for e in diff.added] == ["new.bin"]
    assert [a.path for a, _b in diff.changed] == ["d0/f0000.bin"]
    assert [e.path for e in diff.removed] == ["d1/f0001.bin"]

    with pytest.raises(ConflictError):
        r.checkout("raw")
    assert (repo / "data" / "d0" / "f0000.bin").read_bytes() == b"changed"
    r.checkout("raw", force=True)  # new.bin is not the artifact's: --force leaves it alone
    assert read_tree(repo / "data") == dict(original, **{"new.bin": b"new"})
    (repo / "data" / "new.bin").unlink()
    assert r.status()[0].state == "clean"


def test_second_add_is_unchanged_and_writes_nothing(repo: Path,
                                                    make_dataset: Callable[..., object]) -> None:
    make_dataset(repo / "data", files=5)
    r = Repo(repo)
    first = r.add([repo / "data"], name="raw")
    stat_before = os.stat(first.manifest_path)
    again = r.add([repo / "data"], name="raw")
    assert not again.changed and again.hashed == 0 and again.stored == 0
    assert os.stat(first.manifest_path).st_mtime_ns == stat_before.st_mtime_ns
    assert again.manifest.digest == first.manifest.digest


def test_add_keeps_fields_unless_given(repo: Path) -> None:
    (repo / "data").mkdir()
    (repo / "data" / "f").write_bytes(b"1")
    r = Repo(repo)
    r.add([repo / "data"], name="raw", type="model", description="first", metadata={"a": 1})
    (repo / "data" / "f").write_bytes(b"2")
    m = r.add([repo / "data"], name="raw").manifest
    assert (m.type, m.description, m.metadata) == ("model", "first", {"a": 1})


def test_default_name_from_the_path(repo: Path) -> None:
    (repo / "Raw Images_2024").mkdir()
    (repo / "Raw Images_2024" / "f").write_bytes(b"x")
    assert Repo(repo).add([repo / "Raw Images_2024"]).manifest.name == "raw-images_2024"


def test_add_refusals_write_nothing(repo: Path, tmp_path: Path) -> None:
    (repo / "data").mkdir()
    (repo / "data" / "f").write_bytes(b"x")
    (tmp_path / "outside").mkdir()
    r = Repo(repo)
    before = sorted(p.as_posix() for p in (repo / ".gart").rglob("*"))
    with pytest.raises(InvalidPathError, match="outside the repository"):
        r.add([tmp_path / "outside"], name="x")
    with pytest.raises(InvalidPathError, match="inside .git"):
        r.add([repo / ".git"], name="x")
    with pytest.raises(InvalidPathError, match="inside .gart"):
        r.add([repo / ".gart" / "artifacts"], name="x")
    with pytest.raises(InvalidPathError, match="does not exist"):
        r.add([repo / "nope"], name="x")
    with pytest.raises(InvalidNameError):
        r.add([repo / "data"], name="Bad Name")
    with pytest.raises(UsageError, match="--name"):
        r.add([repo / "data", repo / ".gart" / ".." / "data"])
    assert sorted(p.as_posix() for p in (repo / ".gart").rglob("*")) == before


def test_overlapping_artifacts_are_refused(repo: Path) -> None:
    (repo / "data" / "sub").mkdir(parents=True)
    (repo / "data" / "sub" / "f").write_bytes(b"x")
    r = Repo(repo)
    r.add([repo / "data"], name="whole")
    with pytest.raises(UsageError, match="overlaps artifact 'whole'"):
        r.add([repo / "data" / "sub"], name="part")


def test_data_tracked_by_git_is_refused(repo: Path) -> None:
    (repo / "data").mkdir()
    (repo / "data" / "f").write_bytes(b"x")
    git(repo, "add", "data/f")
    with pytest.raises(UsageError, match="tracked by git") as info:
        Repo(repo).add([repo / "data"], name="raw")
    assert "git rm -r --cached" in info.value.hint


def test_unknown_artifact_names_the_known_ones(repo: Path) -> None:
    (repo / "data").mkdir()
    (repo / "data" / "f").write_bytes(b"x")
    r = Repo(repo)
    r.add([repo / "data"], name="raw")
    with pytest.raises(ArtifactNotFoundError) as info:
        r.status(["nope"])
    assert "raw" in info.value.hint


# ---- W&B-style builders ---------------------------------------------------------------


def test_artifact_builder_and_save(repo: Path, tmp_path: Path) -> None:
    src = tmp_path / "outside-src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "a.txt").write_bytes(b"A")
    (src / "model.pt").write_bytes(os.urandom(2000))
    art = Artifact("resnet", type="model", description="weights", metadata={"epochs": 3})
    art.add_file(src / "model.pt")
    art.add_file(src / "model.pt", name="copies/best.pt")
    art.add_dir(src / "sub", name="extra")
    r = Repo(repo)
    saved = r.save(art)
    m = saved.manifest
    assert [e.path for e in m.entries] == ["copies/best.pt", "extra/a.txt", "model.pt"]
    assert (m.type, m.metadata, m.path) == ("model", {"epochs": 3}, "artifacts/resnet")
    assert ".gart/artifacts/resnet.yaml" in staged(repo)
    assert not r.save(art).changed
    r.checkout("resnet")
    assert (repo / "artifacts" / "resnet" / "copies" / "best.pt").read_bytes() == (
        src / "model.pt").read_bytes()


def test_save_in_place_keeps_the_data_out_of_git(repo: Path) -> None:
    (repo / "results").mkdir()
    (repo / "results" / "scores.json").write_bytes(b"{}")
    art = Artifact("scores", type="eval")
    art.add_dir(repo / "results")
    saved = Repo(repo).save(art)
    assert saved.manifest.path == "results"
    assert "results/scores.json" not in untracked(repo), "git would offer to commit the bytes"


def test_artifact_builder_refusals(tmp_path: Path) -> None:
    with pytest.raises(InvalidNameError):
        Artifact("Not Valid")
    with pytest.raises(InvalidNameError):
        Artifact("ok", type="Bad Type")
    art = Artifact("ok")
    with pytest.raises(InvalidPathError):
        art.add_file(tmp_path / "missing")
    with pytest.raises(InvalidPathError):
        art.add_dir(tmp_path / "missing")
    (tmp_path / "f").write_bytes(b"x")
    for bad in ["../escape", "/abs", ".git/config", "a//b"]:
        with pytest.raises(InvalidPathError):
            art.add_file(tmp_path / "f", name=bad)


def test_saving_an_empty_artifact_is_a_usage_error(repo: Path) -> None:
    with pytest.raises(UsageError):
        Repo(repo).save(Artifact("empty"))


def test_diff_between_commits(repo: Path) -> None:
    (repo / "data").mkdir()
    (repo / "data" / "keep").write_bytes(b"k")
    (repo / "data" / "edit").write_bytes(b"1")
    (repo / "data" / "drop").write_bytes(b"d")
    r = Repo(repo)
    r.add([repo / "data"], name="raw")
    git(repo, "commit", "-q", "-m", "v1")
    (repo / "data" / "edit").write_bytes(b"2")
    (repo / "data" / "drop").unlink()
    (repo / "data" / "add").write_bytes(b"a")
    r.add([repo / "data"], name="raw")
    git(repo, "commit", "-q", "-m", "v2")
    d = r.diff("raw", "HEAD~1")
    assert ([e.path for e in d.added], [a.path for a, _ in d.changed],
            [e.path for e in d.removed]) == (["add"], ["edit"], ["drop"])
    assert r.diff("raw", "HEAD~1", "HEAD~1").empty
    back = r.diff("raw", "HEAD", "HEAD~1")
    assert [e.path for e in back.added] == ["drop"]


def test_checkout_of_an_older_commit(repo: Path) -> None:
    (repo / "data").mkdir()
    (repo / "data" / "f").write_bytes(b"old")
    r = Repo(repo)
    r.add([repo / "data"], name="raw")
    git(repo, "commit", "-q", "-m", "v1")
    (repo / "data" / "f").write_bytes(b"new")
    r.add([repo / "data"], name="raw")
    r.checkout("raw@HEAD")  # committed version; the new bytes are in the cache, so no conflict
    assert (repo / "data" / "f").read_bytes() == b"old"


def test_user_errors_are_gart_errors_with_hints(repo: Path) -> None:
    r = Repo(repo)
    with pytest.raises(GartError) as info:
        r.checkout("nope")
    assert info.value.hint


def test_long_lived_repo_sees_objects_packed_by_another_process(
        repo: Path, tmp_path: Path) -> None:
    """The documented API flow keeps one Repo open while `gart add` runs beside it."""

    storage = tmp_path / "storage"
    api_repo = Repo(repo)
    api_repo.remote_add("storage", str(storage), default=True)
    (repo / "first").mkdir()
    (repo / "first" / "a.txt").write_text("a")
    api_repo.add([repo / "first"], name="first")
    assert api_repo.status(["first"])[0].state == "clean"  # the packed set is now loaded
    (repo / "second").mkdir()
    (repo / "second" / "b.txt").write_text("b")
    done = run_gart(repo, "add", "second")
    assert done.rc == 0, done.err
    assert api_repo.status(["second"])[0].state == "clean"
    api_repo.push(["second"], publish=False)  # "missing from the local cache" before the fix
    assert Repo(repo).remote_store().missing({api_repo.load_manifest("second").entries[0].oid}) \
        == set()
