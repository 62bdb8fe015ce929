"""Tests of gitartifacts.gitrepo against the real git binary and real bare `origin` repositories."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import conftest
import pytest

from gitartifacts.errors import (
    ArtifactNotFoundError,
    GitError,
    InvalidNameError,
    InvalidPathError,
    NotARepositoryError,
    TagRaceError,
    UsageError,
)
from gitartifacts.gitrepo import (
    GitRepo,
    RevisionNotFoundError,
    fetch_ref_shallow,
    find_root,
    list_remote_tags,
)

PROJECT = Path(__file__).resolve().parents[1]
MANIFEST = ".gart/artifacts/team/raw-images.yaml"


def git(cwd: Path, *args: str) -> str:
    return conftest.git(cwd, *args).strip()


def commit(repo: Path, files: dict[str, str], message: str) -> str:
    for rel, text in files.items():
        path = repo / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git(repo, "add", "--", *files)
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def clone(origin: Path, dest: Path, *extra: str) -> GitRepo:
    git(origin.parent, "clone", "-q", *extra, origin.as_uri(), str(dest))
    return GitRepo(dest)


@pytest.fixture(autouse=True)
def isolated_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the user's global git config out and give every commit a known identity."""
    conftest.isolate_git(monkeypatch, tmp_path / "home")


@pytest.fixture
def work(tmp_path: Path) -> tuple[GitRepo, list[str]]:
    """A working repository with two commits of one manifest, not yet connected to a remote."""
    root = tmp_path / "work"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    first = commit(root, {MANIFEST: "digest: one\n", "README": "hi\n"}, "first")
    second = commit(root, {MANIFEST: "digest: two\n", "data/new.txt": "new\n"}, "second")
    repo = GitRepo(root)
    yield repo, [first, second]
    repo.close()


@pytest.fixture
def origin(tmp_path: Path, work: tuple[GitRepo, list[str]]) -> Path:
    """A bare `origin` that the work repository has pushed main to."""
    bare = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    repo, _ = work
    git(repo.root, "remote", "add", "origin", bare.as_uri())
    git(repo.root, "push", "-q", "origin", "main")
    return bare


# ---- find_root ---------------------------------------------------------------------------


def test_find_root_walks_up_from_a_subdirectory(
    work: tuple[GitRepo, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, _ = work
    sub = repo.root / "data" / "deep"
    sub.mkdir(parents=True)
    assert find_root(sub) == repo.root.resolve()
    monkeypatch.chdir(sub)
    assert find_root() == repo.root.resolve()


def test_find_root_accepts_a_dot_git_file_of_a_worktree(
    work: tuple[GitRepo, list[str]], tmp_path: Path
) -> None:
    repo, _ = work
    wt = tmp_path / "wt"
    git(repo.root, "worktree", "add", "-q", str(wt))
    (wt / "sub").mkdir()
    assert (wt / ".git").is_file()
    assert find_root(wt / "sub") == wt.resolve()
    git(repo.root, "tag", "shared@v0")
    with GitRepo(wt) as in_worktree:
        assert "shared@v0" in in_worktree.list_tags()
        assert in_worktree.read_file("HEAD", MANIFEST) == b"digest: two\n"


def test_find_root_outside_a_repository_names_the_path_and_the_fix(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(NotARepositoryError) as info:
        find_root(plain)
    assert str(plain) in str(info.value)
    assert "git init" in info.value.hint
    with pytest.raises(NotARepositoryError):
        GitRepo(plain).list_tags()


# ---- reads -------------------------------------------------------------------------------


def test_read_file_at_head_and_at_the_parent_commit(work: tuple[GitRepo, list[str]]) -> None:
    repo, (first, _) = work
    assert repo.read_file("HEAD", MANIFEST) == b"digest: two\n"
    assert repo.read_file("HEAD~1", MANIFEST) == b"digest: one\n"
    assert repo.read_file(first, MANIFEST) == b"digest: one\n"
    assert repo.read_file("HEAD~1", "data/new.txt") is None  # added later
    assert repo.read_file("HEAD", "missing.yaml") is None
    assert repo.read_file("HEAD", ".gart/artifacts") is None  # a directory is not a file
    assert repo.read_file("HEAD", "README/x") is None
    with pytest.raises(InvalidPathError):
        repo.read_file("HEAD", "../etc/passwd")


def test_resolve_rev_understands_the_usual_forms(work: tuple[GitRepo, list[str]]) -> None:
    repo, (first, second) = work
    git(repo.root, "tag", "-a", "-m", "v0", "team/raw-images@v0", first)
    git(repo.root, "tag", "light", second)
    assert repo.resolve_rev("HEAD") == second
    assert repo.resolve_rev("@") == second
    assert repo.resolve_rev("HEAD~1") == first
    assert repo.resolve_rev("HEAD^") == first
    assert repo.resolve_rev("main~1") == first
    assert repo.resolve_rev("refs/heads/main") == second
    assert repo.resolve_rev("team/raw-images@v0") == first  # annotated: peeled to the commit
    assert repo.resolve_rev("team/raw-images@v0^{}") == first
    assert repo.resolve_rev("light") == second
    assert repo.resolve_rev(first) == first
    assert repo.resolve_rev(first[:8]) == first
    assert repo.head_commit() == second


def test_resolve_rev_unknown_names_raise_a_not_found_with_a_hint(
    work: tuple[GitRepo, list[str]],
) -> None:
    repo, _ = work
    with pytest.raises(RevisionNotFoundError) as info:
        repo.resolve_rev("raw-images@v9")
    assert isinstance(info.value, ArtifactNotFoundError) and isinstance(info.value, GitError)
    assert "raw-images@v9" in str(info.value) and info.value.hint
    with pytest.raises(RevisionNotFoundError):
        repo.resolve_rev("HEAD~5")
    with pytest.raises(UsageError):
        repo.resolve_rev("HEAD:README")


def test_empty_repository_has_no_head_commit(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q", "empty")
    with GitRepo(tmp_path / "empty") as repo:
        assert repo.head_commit() is None
        assert repo.list_tags() == {}
        with pytest.raises(RevisionNotFoundError, match="HEAD"):
            repo.resolve_rev("HEAD")


def test_is_dirty_tracks_tracked_changes_only(work: tuple[GitRepo, list[str]]) -> None:
    repo, _ = work
    assert repo.is_dirty() is False
    (repo.root / "untracked.txt").write_text("x")
    assert repo.is_dirty() is False
    (repo.root / "README").write_text("changed\n")
    assert repo.is_dirty() is True
    git(repo.root, "add", "README")
    assert repo.is_dirty() is True


def test_user_prefers_git_env_then_repo_config(
    work: tuple[GitRepo, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, _ = work
    assert repo.user() == "Test User <test@example.com>"
    for var in ("GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL"):
        monkeypatch.delenv(var)
    git(repo.root, "config", "user.name", "Grace Hopper")
    git(repo.root, "config", "user.email", "grace@example.com")
    assert repo.user() == "Grace Hopper <grace@example.com>"


def test_stage_adds_files_to_the_index_and_reports_git_errors(
    work: tuple[GitRepo, list[str]],
) -> None:
    repo, _ = work
    (repo.root / ".gart" / "runs").mkdir(parents=True)
    (repo.root / ".gart" / "runs" / "r1.yaml").write_text("run: 1\n")
    repo.stage([".gart/runs/r1.yaml"])
    assert git(repo.root, "diff", "--cached", "--name-only") == ".gart/runs/r1.yaml"
    with pytest.raises(GitError, match="did not match") as info:
        repo.stage(["no/such/file"])
    assert info.value.hint


# ---- tags: listing -----------------------------------------------------------------------


def test_list_tags_reports_messages_taggers_and_peeled_commits(
    work: tuple[GitRepo, list[str]],
) -> None:
    repo, (first, second) = work
    git(repo.root, "tag", "-a", "-m", "digest: sha256:aa\nsize: 3", "team/raw-images@v0", first)
    git(repo.root, "tag", "-a", "-m", "prod", "team/raw-images@production", second)
    git(repo.root, "tag", "-a", "-m", "other", "raw-images@v0", second)
    git(repo.root, "tag", "light", first)
    git(repo.root, "pack-refs", "--all")  # some tags packed ...
    git(repo.root, "tag", "-a", "-m", "loose", "team/raw-images@v1", second)  # ... some loose

    tags = repo.list_tags()
    assert set(tags) == {
        "team/raw-images@v0",
        "team/raw-images@v1",
        "team/raw-images@production",
        "raw-images@v0",
        "light",
    }
    v0 = tags["team/raw-images@v0"]
    assert v0.message == "digest: sha256:aa\nsize: 3"
    assert v0.commit == first
    assert v0.ref_sha == git(repo.root, "rev-parse", "refs/tags/team/raw-images@v0")
    assert v0.ref_sha != first  # annotated: the ref holds the tag object
    assert v0.tagger == "Test User <test@example.com>"
    assert v0.time == int(
        git(
            repo.root, "for-each-ref", "--format=%(taggerdate:unix)", "refs/tags/team/raw-images@v0"
        )
    )
    assert tags["team/raw-images@v1"].message == "loose"
    light = tags["light"]
    assert (light.ref_sha, light.commit, light.message, light.tagger) == (first, first, "", "")
    assert light.time == int(git(repo.root, "log", "-1", "--format=%ct", first))

    assert set(repo.list_tags("team/raw-images@")) == {
        "team/raw-images@v0",
        "team/raw-images@v1",
        "team/raw-images@production",
    }
    assert set(repo.list_tags("raw-images@")) == {"raw-images@v0"}  # not the namespaced one


def test_a_bare_repository_supports_reads(work: tuple[GitRepo, list[str]], origin: Path) -> None:
    repo, (first, second) = work
    git(repo.root, "tag", "-a", "-m", "v0", "team/raw-images@v0", first)
    git(repo.root, "push", "-q", "origin", "refs/tags/team/raw-images@v0")
    with GitRepo(origin) as bare:
        assert bare.list_tags()["team/raw-images@v0"].commit == first
        assert bare.resolve_rev("main") == second
        assert bare.read_file("team/raw-images@v0", MANIFEST) == b"digest: one\n"


def test_list_tags_with_2000_tags(tmp_path: Path, work: tuple[GitRepo, list[str]]) -> None:
    repo, (first, second) = work
    stream = bytearray()
    for i in range(2000):
        msg = f"digest: sha256:{i:064x}\n".encode()
        stream += (
            f"tag team/ds{i % 10}@v{i}\nfrom {first if i % 2 else second}\n"
            f"tagger Ada <ada@example.com> {1700000000 + i} +0000\ndata {len(msg)}\n"
        ).encode()
        stream += msg + b"\n"
    subprocess.run(
        ["git", "fast-import", "--quiet"], cwd=repo.root, input=bytes(stream), check=True
    )
    git(repo.root, "pack-refs", "--all")
    git(repo.root, "tag", "-f", "-a", "-m", "re-tagged loose", "team/ds3@v3", first)

    start = time.perf_counter()
    tags = repo.list_tags()
    elapsed = time.perf_counter() - start
    print(f"list_tags: {len(tags)} tags in {elapsed * 1000:.1f} ms")

    assert len(tags) == 2000
    assert tags["team/ds7@v1997"].message == f"digest: sha256:{1997:064x}"
    assert tags["team/ds7@v1997"].commit == first
    assert tags["team/ds8@v1998"].commit == second
    assert tags["team/ds8@v1998"].time == 1700001998
    assert tags["team/ds3@v3"].message == "re-tagged loose"  # the loose ref wins over packed
    assert len(repo.list_tags("team/ds3@")) == 200


# ---- tags: local compare-and-swap --------------------------------------------------------


def test_create_tag_writes_an_annotated_tag_git_understands(
    work: tuple[GitRepo, list[str]],
) -> None:
    repo, (first, _) = work
    sha = repo.create_tag("team/raw-images@v0", first, "digest: sha256:aa", None)
    assert git(repo.root, "cat-file", "-t", sha) == "tag"
    assert git(repo.root, "rev-parse", "team/raw-images@v0^{commit}") == first
    assert git(repo.root, "tag", "-l", "--format=%(contents)", "team/raw-images@v0") == (
        "digest: sha256:aa"
    )
    assert git(repo.root, "tag", "-l", "--format=%(taggername) %(taggeremail)", "team/*") == (
        "Test User <test@example.com>"
    )
    git(repo.root, "fsck", "--strict")
    info = repo.list_tags()["team/raw-images@v0"]
    assert (info.ref_sha, info.commit, info.message) == (sha, first, "digest: sha256:aa")


def test_create_tag_is_a_compare_and_swap(work: tuple[GitRepo, list[str]]) -> None:
    repo, (first, second) = work
    v0 = repo.create_tag("raw-images@production", first, "first", None)

    with pytest.raises(TagRaceError) as info:
        repo.create_tag("raw-images@production", second, "again", None)
    assert "raw-images@production" in str(info.value) and v0 in str(info.value)

    moved = repo.create_tag("raw-images@production", second, "move", v0)
    assert repo.resolve_rev("raw-images@production") == second

    with pytest.raises(TagRaceError) as info:
        repo.create_tag("raw-images@production", first, "stale", v0)
    assert moved in str(info.value)
    assert repo.resolve_rev("raw-images@production") == second  # not overwritten

    with pytest.raises(TagRaceError):
        repo.delete_tag("raw-images@production", v0)
    repo.delete_tag("raw-images@production", moved)
    assert "raw-images@production" not in repo.list_tags()
    with pytest.raises(TagRaceError, match="no longer exists"):
        repo.create_tag("raw-images@production", first, "gone", moved)


def test_create_tag_refuses_bad_names_and_non_commits(work: tuple[GitRepo, list[str]]) -> None:
    repo, (first, _) = work
    for bad in ("a..b", "x@{1}", "sp ace", "", "-lead", "end.lock"):
        with pytest.raises(InvalidNameError):
            repo.create_tag(bad, first, "m", None)
    tree = git(repo.root, "rev-parse", "HEAD^{tree}")
    with pytest.raises(UsageError, match="not a commit"):
        repo.create_tag("tree@v0", tree, "m", None)
    with pytest.raises(RevisionNotFoundError):
        repo.create_tag("ghost@v0", "0" * 40, "m", None)


CREATE_SCRIPT = """
import sys, time
from pathlib import Path
from gitartifacts.errors import TagRaceError
from gitartifacts.gitrepo import GitRepo
root, tag, commit, expected, go = sys.argv[1:6]
repo = GitRepo(Path(root))
repo.list_tags()  # warm up: imports and pack files out of the way before the start signal
print("ready", flush=True)
while not Path(go).exists():
    time.sleep(0.001)
try:
    repo.create_tag(tag, commit, "by " + str(sys.argv[6]), expected or None)
except TagRaceError as exc:
    print("lost", exc, flush=True)
    sys.exit(3)
print("won", flush=True)
"""

PUSH_SCRIPT = """
import sys, time
from pathlib import Path
from gitartifacts.errors import TagRaceError
from gitartifacts.gitrepo import GitRepo
root, tag, new, expected, go = sys.argv[1:6]
repo = GitRepo(Path(root))
import git  # noqa: warm up the import before the start signal
print("ready", flush=True)
while not Path(go).exists():
    time.sleep(0.001)
try:
    repo.push_tags({tag: (expected or None, new)})
except TagRaceError as exc:
    print("lost", exc, flush=True)
    sys.exit(3)
print("won", flush=True)
"""


def race(tmp_path: Path, script: str, argvs: list[list[str]]) -> list[tuple[int, str]]:
    """Start one python process per argv, release them at once, return (exit code, output)."""
    go = tmp_path / f"go-{time.monotonic_ns()}"
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, *argv[:4], str(go), *argv[4:]],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        for argv in argvs
    ]
    for proc in procs:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
    go.touch()
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=60)
        results.append((proc.returncode, out))
    return results


def assert_one_winner(results: list[tuple[int, str]]) -> None:
    codes = sorted(code for code, _ in results)
    assert codes == [0] + [3] * (len(results) - 1), results
    for code, out in results:
        if code == 3:
            assert out.startswith("lost tag ") or out.startswith("lost push"), out


def test_concurrent_processes_creating_or_moving_a_local_tag_have_one_winner(
    tmp_path: Path, work: tuple[GitRepo, list[str]]
) -> None:
    repo, (first, second) = work
    root = str(repo.root)
    results = race(
        tmp_path, CREATE_SCRIPT, [[root, "team/x@v7", first, "", str(i)] for i in range(4)]
    )
    assert_one_winner(results)
    winner = repo.list_tags()["team/x@v7"]
    assert winner.message.startswith("by ")

    results = race(
        tmp_path,
        CREATE_SCRIPT,
        [[root, "team/x@v7", second, winner.ref_sha, str(i)] for i in range(4)],
    )
    assert_one_winner(results)
    assert repo.list_tags()["team/x@v7"].commit == second


# ---- tags: remote ------------------------------------------------------------------------


def test_push_tags_publishes_and_moves_tags_on_origin(
    work: tuple[GitRepo, list[str]], origin: Path
) -> None:
    repo, (first, second) = work
    assert repo.has_remote() and not repo.has_remote("upstream")
    v0 = repo.create_tag("team/raw-images@v0", first, "v0", None)
    prod = repo.create_tag("team/raw-images@production", first, "prod", None)
    repo.push_tags({"team/raw-images@v0": (None, v0), "team/raw-images@production": (None, prod)})
    assert repo.remote_tags() == {"team/raw-images@v0": v0, "team/raw-images@production": prod}

    moved = repo.create_tag("team/raw-images@production", second, "prod", prod)
    repo.push_tags({"team/raw-images@production": (prod, moved)})
    assert git(origin, "rev-parse", "team/raw-images@production^{commit}") == second

    repo.push_tags({"team/raw-images@production": (moved, None)})
    assert repo.remote_tags("team/*") == {"team/raw-images@v0": v0}


def test_remote_tags_match_the_pattern_exactly(
    work: tuple[GitRepo, list[str]], origin: Path
) -> None:
    repo, (first, _) = work
    for name in ("raw-images@v0", "team/raw-images@v0", "raw-images-old@v0"):
        git(repo.root, "tag", "-a", "-m", name, name, first)
    git(repo.root, "push", "-q", "origin", "--tags")
    assert set(repo.remote_tags("raw-images@*")) == {"raw-images@v0"}
    assert set(repo.remote_tags("team/*")) == {"team/raw-images@v0"}
    assert set(list_remote_tags(origin.as_uri(), "*@v0")) == {
        "raw-images@v0",
        "team/raw-images@v0",
        "raw-images-old@v0",
    }
    with pytest.raises(UsageError):
        repo.remote_tags("raw-images@v[0-9]")


def test_a_second_clone_loses_the_race_with_a_clear_message(
    tmp_path: Path, work: tuple[GitRepo, list[str]], origin: Path
) -> None:
    a, (first, second) = work
    with clone(origin, tmp_path / "b") as b:
        v7_a = a.create_tag("raw-images@v7", first, "from a", None)
        v7_b = b.create_tag("raw-images@v7", second, "from b", None)
        a.push_tags({"raw-images@v7": (None, v7_a)})
        with pytest.raises(TagRaceError) as info:
            b.push_tags({"raw-images@v7": (None, v7_b)})
        assert "raw-images@v7" in str(info.value) and v7_a in str(info.value)
        assert "rejected" in str(info.value) and "fetch" in info.value.hint
        assert a.remote_tags() == {"raw-images@v7": v7_a}  # never silently overwritten

        # An alias both clones believe is at `base`: the second mover loses.
        base = a.create_tag("raw-images@best", first, "best", None)
        a.push_tags({"raw-images@best": (None, base)})
        b.fetch_tags("raw-images@*")
        new_a = a.create_tag("raw-images@best", second, "a", base)
        new_b = b.create_tag("raw-images@best", second, "b", base)
        a.push_tags({"raw-images@best": (base, new_a)})
        with pytest.raises(TagRaceError, match=new_a):
            b.push_tags({"raw-images@best": (base, new_b)})

        # --atomic: when one tag of a batch conflicts, none of the batch lands.
        v8 = b.create_tag("raw-images@v8", second, "v8", None)
        with pytest.raises(TagRaceError):
            b.push_tags({"raw-images@v8": (None, v8), "raw-images@best": (base, new_b)})
        assert "raw-images@v8" not in b.remote_tags()


def test_concurrent_pushes_of_the_same_tag_have_exactly_one_winner(
    tmp_path: Path, work: tuple[GitRepo, list[str]], origin: Path
) -> None:
    a, (first, second) = work
    clones = [a] + [clone(origin, tmp_path / f"c{i}") for i in range(2)]
    new = [c.create_tag("team/m@v3", first, f"from {i}", None) for i, c in enumerate(clones)]
    results = race(
        tmp_path,
        PUSH_SCRIPT,
        [[str(c.root), "team/m@v3", sha, ""] for c, sha in zip(clones, new, strict=True)],
    )
    assert_one_winner(results)
    winner = a.remote_tags()["team/m@v3"]
    assert winner == new[[code for code, _ in results].index(0)]

    # Every clone moves the alias from the same expected old value: one wins.
    for c in clones:
        c.fetch_tags("team/m@*")
    moves = [c.create_tag("team/m@v3", second, f"move {i}", winner) for i, c in enumerate(clones)]
    results = race(
        tmp_path,
        PUSH_SCRIPT,
        [[str(c.root), "team/m@v3", sha, winner] for c, sha in zip(clones, moves, strict=True)],
    )
    assert_one_winner(results)
    assert a.remote_tags()["team/m@v3"] == moves[[code for code, _ in results].index(0)]
    for c in clones[1:]:
        c.close()


def test_push_rejected_by_a_hook_is_a_git_error_not_a_race(
    work: tuple[GitRepo, list[str]], origin: Path
) -> None:
    repo, (first, _) = work
    hook = origin / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'tags are frozen today' >&2\nexit 1\n")
    hook.chmod(0o755)
    sha = repo.create_tag("raw-images@v0", first, "v0", None)
    with pytest.raises(GitError) as info:
        repo.push_tags({"raw-images@v0": (None, sha)})
    assert not isinstance(info.value, TagRaceError)
    assert "push to origin was rejected" in str(info.value)
    assert "tags are frozen today" in str(info.value)  # the hook's own words reach the user
    assert "raw-images@v0" not in repo.remote_tags()
    assert info.value.hint


def test_push_to_a_missing_remote_is_a_git_error(work: tuple[GitRepo, list[str]]) -> None:
    repo, (first, _) = work
    sha = repo.create_tag("raw-images@v0", first, "v0", None)
    with pytest.raises(GitError, match="push to origin failed") as info:
        repo.push_tags({"raw-images@v0": (None, sha)})
    assert "git remote -v" in info.value.hint


def test_fetch_tags_into_a_shallow_clone_and_follow_a_moved_alias(
    tmp_path: Path, work: tuple[GitRepo, list[str]], origin: Path
) -> None:
    a, (first, second) = work
    v0 = a.create_tag("team/raw-images@v0", first, "v0", None)
    prod = a.create_tag("team/raw-images@production", first, "prod", None)
    other = a.create_tag("other@v0", first, "other", None)
    a.push_tags(
        {"team/raw-images@v0": (None, v0), "team/raw-images@production": (None, prod)}
        | {"other@v0": (None, other)}
    )

    with clone(origin, tmp_path / "ci", "--depth", "1", "--no-tags") as ci:
        assert ci.is_shallow() and ci.list_tags() == {}
        with pytest.raises(RevisionNotFoundError, match="shallow") as info:
            ci.resolve_rev("HEAD~1")
        assert "--deepen" in info.value.hint
        ci.fetch_tags("team/raw-images@*", depth=1)
        tags = ci.list_tags()
        assert set(tags) == {"team/raw-images@v0", "team/raw-images@production"}
        assert tags["team/raw-images@production"].message == "prod"
        assert ci.read_file("team/raw-images@production", MANIFEST) == b"digest: one\n"
        assert git(ci.root, "rev-parse", "--is-shallow-repository") == "true"
        assert git(ci.root, "rev-list", "--count", "--all") == "2"  # no history pulled in

        moved = a.create_tag("team/raw-images@production", second, "prod", prod)
        a.push_tags({"team/raw-images@production": (prod, moved)})
        ci.fetch_tags("team/raw-images@*", depth=1)
        assert ci.list_tags()["team/raw-images@production"].commit == second
        assert ci.read_file("team/raw-images@production", MANIFEST) == b"digest: two\n"

        with pytest.raises(RevisionNotFoundError, match="does not exist on origin"):
            ci.fetch_tags("team/raw-images@v9")
        with pytest.raises(UsageError):
            ci.fetch_tags("a*b*")


def test_fetch_ref_shallow_reads_another_repository_without_cloning(
    tmp_path: Path, work: tuple[GitRepo, list[str]], origin: Path
) -> None:
    a, (first, second) = work
    v0 = a.create_tag("team/raw-images@v0", first, "v0", None)
    a.push_tags({"team/raw-images@v0": (None, v0)})
    cache = tmp_path / "cache" / "other-repo.git"

    other = fetch_ref_shallow(origin.as_uri(), "team/raw-images@v0", cache)
    assert other.read_file("team/raw-images@v0", MANIFEST) == b"digest: one\n"
    assert other.list_tags()["team/raw-images@v0"].message == "v0"
    assert not (cache / "README").exists()  # bare: nothing checked out
    assert git(cache, "rev-list", "--count", "--all") == "1"  # one commit, not the history
    other.close()

    # Again into the same cache, by branch and by sha.
    other = fetch_ref_shallow(str(origin), "main", cache)
    assert other.read_file("main", MANIFEST) == b"digest: two\n"
    other.close()
    other = fetch_ref_shallow(origin.as_uri(), second, cache)
    assert other.read_file(second, "data/new.txt") == b"new\n"
    other.close()

    with pytest.raises(RevisionNotFoundError, match="neither a tag nor a branch"):
        fetch_ref_shallow(origin.as_uri(), "team/raw-images@v9", cache)
    assert list_remote_tags(origin.as_uri(), "team/*") == {"team/raw-images@v0": v0}
    with pytest.raises(GitError):
        list_remote_tags((tmp_path / "nowhere").as_uri(), "*")


def test_importing_the_module_does_not_load_dulwich_or_gitpython() -> None:
    code = (
        "import sys, gitartifacts.gitrepo\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dulwich', 'git')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(PROJECT)},
    )
    assert out.stdout.strip() == "[]"
