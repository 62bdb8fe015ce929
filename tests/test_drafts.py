"""Incremental versions (issue 11): `gart add --incremental`, `gart rm`, W&B's new_draft.

Every test runs on real parts: a bare `origin`, a local-directory default remote, fresh
clones made with `git clone` (only manifests and tags: nothing pulled), the real `gart`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import (
    GartResult,
    Project,
    World,
    build_dataset,
    git,
    one_error,
    read_tree,
    run_gart,
)

import gitartifacts as wandb
from gitartifacts.api import Repo
from gitartifacts.drafts import BaseMovedError, MissingPathError


def ok(result: GartResult) -> GartResult:
    assert result.rc == 0, f"exit {result.rc}\nstdout: {result.out}\nstderr: {result.err}"
    return result


def entries(root: Path, name: str) -> dict[str, str]:
    """path -> oid of the working-tree manifest."""
    text = (root / ".gart" / "artifacts" / f"{name}.yaml").read_text()
    files = yaml.safe_load(text)["files"] or ""
    return {line.split(" ", 2)[2]: line.split(" ", 2)[0] for line in files.splitlines()}


def origin_tags(origin: Path, name: str) -> set[str]:
    out = git(origin, "for-each-ref", "--format=%(refname:short)", f"refs/tags/{name}@*")
    return set(out.split())


def storage_objects(storage: Path) -> set[str]:
    return {p.name for p in storage.rglob("*") if p.is_file()}


@pytest.fixture
def images(project: Project) -> Project:
    """`images` v0 (20 files in images/) published to origin and the local remote; the
    branch pushed, so a `git clone` of origin sees the manifest and the tag."""
    build_dataset(project.root / "images", files=20, seed=1, max_size=512, dirs=4)
    ok(run_gart(project.root, "add", "images", "--name", "images"))
    git(project.root, "add", "-A")
    git(project.root, "commit", "-q", "-m", "images")
    ok(run_gart(project.root, "push"))
    git(project.root, "push", "-q", "origin", "HEAD:main")
    return project


def fresh_clone(project: Project, where: str) -> Path:
    dest = project.tmp / where
    git(project.tmp, "clone", "-q", str(project.origin), str(dest))
    return dest


def test_incremental_add_and_rm_in_a_fresh_clone_touch_no_old_byte(images: Project) -> None:
    clone = fresh_clone(images, "clone")
    before = storage_objects(images.storage)
    batch = images.tmp / "batch-17"
    new = build_dataset(batch, files=5, seed=99, max_size=300, dirs=0)
    done = ok(run_gart(clone, "add", str(batch), "--name", "images", "--incremental",
                       "--prefix", "dogs/", "--publish", "--json"))
    report = json.loads(done.out)
    assert (report["added"], report["removed"], report["base"], report["version"]) == (
        5, 0, "v0", "v1")
    assert report["hashed"] == 5  # only the new files were read
    # Nothing old was downloaded into this clone's cache, nor placed in its working tree.
    cache_objects = {p.name for p in (clone / ".gart" / "cache").rglob("*") if p.is_file()}
    assert len([n for n in cache_objects if n.endswith(".pack")]) == 1
    assert not (clone / "images").exists()
    # The remote got one new pack (+ index) holding the 5 new files, nothing else.
    added = storage_objects(images.storage) - before
    assert len(added) == 2 and {Path(n).suffix for n in added} == {".pack", ".idx"}
    assert "images@v1" in origin_tags(images.origin, "images")
    # Only gart's manifest was committed.
    assert git(clone, "show", "--name-only", "--format=", "HEAD").split() == [
        ".gart/artifacts/images.yaml"]
    # rm: a file and a whole prefix; then publish.
    listing = entries(clone, "images")
    gone = sorted(p for p in listing if p.startswith("d1/")) + ["d0/f0000.bin"]
    done = ok(run_gart(clone, "rm", "images", "d0/f0000.bin", "d1/", "--publish", "--json"))
    assert json.loads(done.out)["removed"] == len(gone)
    assert json.loads(done.out)["version"] == "v2"
    # Anyone pulls exactly v1 ± the changes, bytes verified.
    pulled = images.tmp / "pulled"
    ok(run_gart(images.root, "pull", "images@v2", "--to", str(pulled)))
    expected = {p: b for p, b in read_tree(images.root / "images").items() if p not in gone}
    expected.update({f"dogs/{p}": b for p, b in new.items()})
    assert read_tree(pulled) == expected


def test_rm_of_a_path_not_in_the_artifact_names_it_and_changes_nothing(
        images: Project) -> None:
    manifest = images.root / ".gart" / "artifacts" / "images.yaml"
    text = manifest.read_text()
    line = one_error(run_gart(images.root, "rm", "images", "d0/", "nope.txt", "ghost/"))
    assert "nope.txt" in line and "ghost/" in line and "d0/" not in line.split(":", 2)[2]
    assert manifest.read_text() == text
    with pytest.raises(MissingPathError, match="nope.txt"):
        Repo(images.root).remove_paths("images", ["nope.txt"])
    assert isinstance(MissingPathError("x"), FileNotFoundError)  # what W&B raises


def test_a_draft_whose_base_moved_is_refused_then_rebased_or_published_anyway(
        images: Project) -> None:
    alice = fresh_clone(images, "alice")
    bob = fresh_clone(images, "bob")
    carol = fresh_clone(images, "carol")
    extra = images.tmp / "extra"
    build_dataset(extra, files=2, seed=7, dirs=0)
    # Alice drafts (rm), commits; Bob publishes v1 first.
    ok(run_gart(alice, "rm", "images", "d2/"))
    git(alice, "commit", "-q", "-m", "drop d2")
    ok(run_gart(carol, "rm", "images", "d3/"))
    git(carol, "commit", "-q", "-m", "drop d3")
    ok(run_gart(bob, "add", str(extra), "--name", "images", "--incremental", "--publish"))
    assert origin_tags(images.origin, "images") == {"images@v0", "images@v1"}
    # Alice's push is refused, with both ways out spelled out; nothing published.
    result = run_gart(alice, "push")
    line = one_error(result)
    assert "images@v1 was published since" in line
    assert "gart rebase images" in result.err and "--publish-anyway" in result.err
    assert origin_tags(images.origin, "images") == {"images@v0", "images@v1"}
    # Rebase: Bob's additions kept, Alice's removal re-applied.
    ok(run_gart(alice, "rebase", "images"))
    listing = entries(alice, "images")
    assert "f0000.bin" in listing and "f0001.bin" in listing  # Bob's files (no prefix)
    assert not any(p.startswith("d2/") for p in listing)
    git(alice, "commit", "-q", "-am", "rebased")
    ok(run_gart(alice, "push"))
    assert "images@v2" in origin_tags(images.origin, "images")
    # Carol publishes anyway: v0's content minus d3/ (Bob's and Alice's changes absent).
    one_error(run_gart(carol, "push"))
    ok(run_gart(carol, "push", "images", "--publish-anyway"))
    assert "images@v3" in origin_tags(images.origin, "images")
    v3 = Repo(carol).resolve("images@v3")
    paths = {e.path for e in v3.entries}
    assert not any(p.startswith("d3/") for p in paths) and any(p.startswith("d2/") for p in paths)
    assert "f0000.bin" not in paths


# -- W&B: new_draft / remove / log_artifact --------------------------------------------


@pytest.fixture
def world(published: World, monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.chdir(published.root)
    git(published.root, "add", ".gart/config.yaml")
    git(published.root, "commit", "-q", "-m", "config", "--allow-empty")
    return published


def test_wandb_new_draft_adds_and_removes_without_old_bytes(world: World) -> None:
    (world.root / "cat-9001.jpg").write_bytes(b"a new cat")
    batch = world.root.parent / "batch"
    build_dataset(batch, files=3, seed=5, max_size=100, dirs=0)
    storage_before = storage_objects(world.storage)
    with wandb.init(job_type="append") as run:
        base = run.use_artifact("raw:latest")
        draft = base.new_draft()
        assert draft.is_draft()
        draft.add_file("cat-9001.jpg", name="cats/cat-9001.jpg")
        draft.add_dir(str(batch), name="dogs")
        draft.remove("d0/")
        with pytest.raises(FileNotFoundError, match="nope"):
            draft.remove("nope/")
        logged = run.log_artifact(draft)
    assert logged.version == "v1"
    paths = {e.path for e in logged.manifest.entries}
    assert "cats/cat-9001.jpg" in paths and not any(p.startswith("d0/") for p in paths)
    assert {p for p in paths if p.startswith("dogs/")} == {f"dogs/f000{i}.bin" for i in range(3)}
    kept = {p for p in world.raw if p.startswith("d1/")}
    assert {p for p in paths if p.startswith("d1/")} == kept
    assert len(storage_objects(world.storage) - storage_before) == 2  # one pack + its index
    committed = set(git(world.root, "show", "--name-only", "--format=", "HEAD~1").split())
    assert ".gart/artifacts/raw.yaml" in committed


def test_wandb_draft_with_a_moved_base_is_refused_then_rebased(world: World) -> None:
    (world.root / "one.txt").write_text("one")
    (world.root / "two.txt").write_text("two")
    with wandb.init(job_type="append") as run:
        first = run.use_artifact("raw:latest").new_draft()
        second = run.use_artifact("raw:latest").new_draft()
        third = run.use_artifact("raw:latest").new_draft()
        first.add_file("one.txt")
        second.add_file("two.txt")
        third.remove("d1/")
        assert run.log_artifact(first).version == "v1"
        with pytest.raises(BaseMovedError, match="raw@v1 was published since") as caught:
            run.log_artifact(second)
        assert "draft.rebase()" in caught.value.hint
        assert "publish_anyway()" in caught.value.hint
        assert Repo(world.root).versions("raw")[-1].label == "v1"
        rebased = run.log_artifact(second.rebase())
        assert rebased.version == "v2"
        assert {"one.txt", "two.txt"} <= {e.path for e in rebased.manifest.entries}
        anyway = run.log_artifact(third.publish_anyway())
    assert anyway.version == "v3"
    paths = {e.path for e in anyway.manifest.entries}
    assert "one.txt" not in paths and not any(p.startswith("d1/") for p in paths)
