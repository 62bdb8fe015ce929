"""Tags are claims to check: rewritten versions, bogus aliases, deleted aliases, shallow clones.

Real `gart` processes, a real bare origin and several clones of it (docs/security.md rule 4).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest
from conftest import GartResult, build_dataset, git, read_tree

from gitartifacts.aliases import parse_message
from gitartifacts.api import Repo

NAME = "raw"


class Project(NamedTuple):
    root: Path
    origin: Path
    tmp: Path


def run(cwd: Path, *args: str | os.PathLike[str]) -> GartResult:
    """The real `gart` command in `cwd`."""
    done = subprocess.run(
        [sys.executable, "-m", "gitartifacts", *map(str, args)], cwd=cwd,
        capture_output=True, text=True, timeout=120, check=False,
    )
    return GartResult(done.returncode, done.stdout, done.stderr)


def one_error(result: GartResult) -> str:
    """The single `gart: error:` line of a failed command (no traceback, exit 1)."""
    assert result.rc == 1, (result.rc, result.err)
    assert "Traceback" not in result.err, result.err
    lines = [line for line in result.err.splitlines() if line.startswith("gart: error:")]
    assert len(lines) == 1, result.err
    return lines[0]


def tags_on(repo: Path) -> dict[str, str]:
    out = git(repo, "for-each-ref", "--format=%(refname:strip=2) %(objectname)", "refs/tags")
    return dict(line.split(" ") for line in out.splitlines())


def commit_of(repo: Path, rev: str) -> str:
    return git(repo, "rev-parse", f"{rev}^{{commit}}").strip()


def add_and_commit(root: Path, seed: int) -> tuple[str, str]:
    """`gart add` a data set and commit it; returns (manifest digest, commit)."""
    shutil.rmtree(root / "data", ignore_errors=True)
    build_dataset(root / "data", files=4, seed=seed, max_size=2048, dirs=2)
    added = run(root, "add", "data", "--name", NAME)
    assert added.rc == 0, added.err
    git(root, "commit", "-q", "-m", f"data {seed}")
    fields = parse_message(git(root, "show", "HEAD:.gart/artifacts/raw.yaml"))
    return fields["digest"], commit_of(root, "HEAD")


def publish(root: Path, seed: int) -> str:
    """Add, commit and `gart push` (publishes a version); returns the commit."""
    _digest, commit = add_and_commit(root, seed)
    pushed = run(root, "push")
    assert pushed.rc == 0 and "raw: published" in pushed.err, pushed.err
    return commit


def clone(project: Project, dest: str, *extra: str) -> Path:
    root = project.tmp / dest
    git(project.tmp, "clone", "-q", *extra, project.origin.as_uri(), str(root))
    return root


@pytest.fixture
def project(repo: Path, tmp_path: Path) -> Project:
    """The conftest repo with a README, a bare `origin` and a local-directory gart remote."""
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    git(repo, "remote", "add", "origin", str(origin))
    api = Repo(repo)
    api.remote_add("storage", str(tmp_path / "store"), default=True)
    api.git.close()
    (repo / "README").write_text("first\n")
    git(repo, "add", "README")
    git(repo, "commit", "-q", "-m", "gart init")
    git(repo, "push", "-q", "-u", "origin", "main")
    return Project(repo, origin, tmp_path)


# -- 1. a version never changes -------------------------------------------------------------


def test_version_tag_rewritten_on_origin_is_refused_and_never_overwrites(
        project: Project) -> None:
    root, origin = project.root, project.origin
    v0_commit = publish(root, seed=0)
    git(root, "push", "-q", "origin", "main")
    v0_digest = parse_message(git(root, "for-each-ref", "--format=%(contents)",
                                  "refs/tags/raw@v0"))["digest"]
    other = clone(project, "other")
    outside = project.tmp / "outside"
    outside.mkdir()
    assert run(outside, "versions", NAME, "--repo", origin.as_uri()).rc == 0  # cached there
    before = tags_on(other)["raw@v0"]

    # Someone with push rights re-points v0 at other content and force-pushes the tag.
    evil_digest, evil = add_and_commit(root, seed=1)
    forged = f"gart-version: 1\nname: raw\nversion: v0\ndigest: {evil_digest}\nsize: 1\ncount: 1\n"
    git(root, "tag", "-f", "-a", "raw@v0", "-m", forged, evil)
    git(root, "push", "-q", "--force", "origin", "refs/tags/raw@v0", "HEAD:main")

    for args in (("versions", NAME), ("pull", "raw@v0", "--to", "out"),
                 ("pull", "raw@latest", "--to", "out")):
        line = one_error(run(other, *args))
        assert "raw@v0" in line and "rewritten" in line, line
        assert v0_commit[:12] in line and evil[:12] in line, line  # old and new commit
        assert v0_digest in line, line
        assert tags_on(other)["raw@v0"] == before  # the local tag was not overwritten
        assert not (other / "out").exists()
    foreign = run(outside, "versions", NAME, "--repo", origin.as_uri())
    assert "rewritten" in one_error(foreign)


# -- 2. an alias counts only if it names a published version ----------------------------------


def test_alias_to_a_missing_version_or_an_unpublished_commit_is_refused(
        project: Project) -> None:
    root, origin = project.root, project.origin
    v0_commit = publish(root, seed=0)
    # New content whose bytes reach the store (`gart push` of an uncommitted manifest uploads
    # without publishing), then committed but never published.
    shutil.rmtree(root / "data")
    build_dataset(root / "data", files=4, seed=5, max_size=2048, dirs=2)
    assert run(root, "add", "data", "--name", NAME).rc == 0
    assert run(root, "push").rc == 0
    git(root, "commit", "-q", "-m", "unpublished")
    unpublished = commit_of(root, "HEAD")
    digest = parse_message(git(root, "show", "HEAD:.gart/artifacts/raw.yaml"))["digest"]

    def alias_msg(alias: str, version: str, dig: str) -> str:
        return f"gart-alias: 1\nname: raw\nalias: {alias}\nversion: {version}\ndigest: {dig}\n"

    git(root, "tag", "-a", "raw@nightly", "-m", alias_msg("nightly", "v7", digest), unpublished)
    git(root, "tag", "-a", "raw@best", "-m", alias_msg("best", "v7", digest), v0_commit)
    git(root, "tag", "raw@staging", unpublished)  # lightweight: claims nothing
    git(root, "push", "-q", "origin", "HEAD:main", "refs/tags/raw@nightly", "refs/tags/raw@best",
        "refs/tags/raw@staging")

    other = clone(project, "other")
    for alias, claim in (("nightly", "v7"), ("best", "v7"), ("staging", unpublished[:12])):
        line = one_error(run(other, "pull", f"raw@{alias}", "--to", "out"))
        assert f"raw@{alias}" in line and claim in line and "not a published" in line, line
        assert not (other / "out").exists()
    listed = run(other, "versions", NAME, "--json")
    assert listed.rc == 0, listed.err
    assert [(r["version"], r["aliases"]) for r in json.loads(listed.out)] == [("v0", ["latest"])]
    # A bogus alias can still be re-pointed at a real version.
    moved = run(other, "alias", "raw@v0", "nightly")
    assert moved.rc == 0, moved.err
    assert commit_of(origin, "raw@nightly") == v0_commit
    assert run(other, "pull", "raw@nightly", "--to", "out").rc == 0


# -- 3. deleting an alias on origin reaches every clone ----------------------------------------


def test_alias_deleted_on_origin_is_deleted_in_other_clones(project: Project) -> None:
    root, origin = project.root, project.origin
    v0 = publish(root, seed=0)
    publish(root, seed=1)
    assert run(root, "alias", "raw@v0", "production").rc == 0
    git(root, "push", "-q", "origin", "main")
    bob, carol, dave = (clone(project, who) for who in ("bob", "carol", "dave"))
    git(carol, "tag", "-a", "raw@v9", "-m", "local only", "HEAD")  # a local version tag
    assert "raw@production" in tags_on(bob) and "raw@production" in tags_on(carol)

    deleted = run(root, "alias", "--delete", NAME, "production")
    assert deleted.rc == 0, deleted.err
    assert "raw@production" not in tags_on(origin)

    line = one_error(run(carol, "pull", "raw@production", "--to", "out"))
    assert "production" in line
    assert "raw@production" not in tags_on(carol)  # the deletion reached this clone
    assert "raw@v9" in tags_on(carol)  # versions are never deleted by a sync
    listed = run(carol, "versions", NAME, "--json")
    assert listed.rc == 0 and "production" not in listed.out, listed.err

    # Bob still had the alias at v0: re-creating it there must really reach origin again.
    again = run(bob, "alias", "raw@v0", "production")
    assert again.rc == 0, again.err
    assert commit_of(origin, "raw@production") == v0

    # Origin unreachable: nothing is deleted on a guess.
    git(dave, "remote", "set-url", "origin", (project.tmp / "nowhere").as_uri())
    git(root, "push", "-q", "--delete", "origin", "refs/tags/raw@production")
    assert run(dave, "versions", NAME).rc == 1
    assert "raw@production" in tags_on(dave)


# -- 4. fetching tags never reshapes a shallow clone's history --------------------------------


def test_tag_fetches_keep_a_shallow_clones_history_intact(project: Project) -> None:
    root = project.root
    publish(root, seed=0)
    git(root, "push", "-q", "origin", "main")
    ci = clone(project, "ci", "--depth", "1")
    shallow = (ci / ".git" / "shallow").read_text()

    publish(ci, seed=1)  # v1 on a commit of the shallow clone, main not pushed yet
    for args in (("alias", "raw@v1", "candidate"), ("versions", NAME),
                 ("push", "--alias", "best"), ("pull", "raw@v0", "--to", "v0")):
        result = run(ci, *args)
        assert result.rc == 0, (args, result.err)
        assert (ci / ".git" / "shallow").read_text() == shallow, args

    # Meanwhile main moved on origin; the shallow clone rebases its commit onto it.
    (root / "README").write_text("second\n")
    git(root, "commit", "-q", "-am", "readme")
    git(root, "push", "-q", "origin", "main")
    git(ci, "pull", "-q", "--rebase", "origin", "main")
    assert (ci / "README").read_text() == "second\n"
    assert git(ci, "rev-list", "--count", "HEAD").strip() == "3"
    assert read_tree(ci / "v0")  # and the pulled v0 is in place


def test_a_version_published_on_top_of_a_shallow_clone_does_not_cut_its_history(
        project: Project) -> None:
    root = project.root
    publish(root, seed=0)
    git(root, "push", "-q", "origin", "main")
    ci = clone(project, "ci", "--depth", "1", "--no-tags")
    shallow = (ci / ".git" / "shallow").read_text()
    publish(root, seed=1)  # v1 on a child of the shallow clone's commit, absent there
    git(root, "push", "-q", "origin", "main")

    listed = run(ci, "versions", NAME, "--json")
    assert listed.rc == 0, listed.err
    assert [r["version"] for r in json.loads(listed.out)] == ["v1", "v0"]
    assert (ci / ".git" / "shallow").read_text() == shallow  # v1's commit is no boundary
    (ci / "notes").write_text("ci\n")
    git(ci, "add", "notes")
    git(ci, "commit", "-q", "-m", "notes")
    git(ci, "pull", "-q", "--rebase", "origin", "main")
    assert git(ci, "rev-list", "--count", "HEAD").strip() == "3"  # v0, v1, notes
