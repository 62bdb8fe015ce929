"""Registry tests: versions and aliases as git tags in real clones of a real bare origin."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import git, init_git_repo

from gitartifacts import manifest as manifestmod
from gitartifacts.aliases import Registry, check_digest, parse_message
from gitartifacts.errors import (
    ArtifactNotFoundError,
    ConflictError,
    GitError,
    InvalidNameError,
    ManifestError,
    TagRaceError,
)
from gitartifacts.gitrepo import GitRepo
from gitartifacts.manifest import Entry, Manifest

NAME = "raw"


def make_manifest(files: dict[str, bytes], name: str = NAME, description: str = "") -> Manifest:
    entries = [Entry(p, hashlib.sha256(b).hexdigest(), len(b)) for p, b in files.items()]
    return Manifest(name=name, path="data", description=description, entries=tuple(entries))


def commit_manifest(root: Path, manifest: Manifest, message: str = "data") -> str:
    """Commit the manifest file as `gart add` would leave it; returns the commit sha."""
    path = root / ".gart" / "artifacts" / f"{manifest.name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(manifestmod.dumps(manifest), encoding="utf-8")
    git(root, "add", "--", str(path.relative_to(root)))
    git(root, "commit", "-q", "-m", message)
    return git(root, "rev-parse", "HEAD").strip()


def remote_tags(origin: Path) -> dict[str, str]:
    """{tag: ref sha} as origin itself holds them."""
    out = git(origin, "for-each-ref", "--format=%(refname:strip=2) %(objectname)", "refs/tags")
    return dict(line.split(" ") for line in out.splitlines())


def local_tags(root: Path) -> dict[str, str]:
    return remote_tags(root)


def tag_message(root: Path, tag: str) -> dict[str, str]:
    assert git(root, "cat-file", "-t", f"refs/tags/{tag}").strip() == "tag"  # annotated
    return parse_message(git(root, "for-each-ref", "--format=%(contents)", f"refs/tags/{tag}"))


def add_hook(root: Path, name: str, script: str) -> None:
    """Install an executable git hook in a clone (or, for a bare repository, in it)."""
    hooks = root / "hooks" if (root / "HEAD").exists() else root / ".git" / "hooks"
    hook = hooks / name
    hook.parent.mkdir(parents=True, exist_ok=True)
    hook.write_text("#!/bin/sh\nunset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE\n" + script)
    hook.chmod(hook.stat().st_mode | stat.S_IXUSR)


class World:
    """A bare origin and clones of it, each with a Registry; closed at teardown."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.origin = tmp_path / "origin.git"
        git(tmp_path, "init", "-q", "--bare", "-b", "main", str(self.origin))
        seed = init_git_repo(tmp_path / "seed")
        (seed / "README").write_text("hello\n")
        git(seed, "add", "README")
        git(seed, "commit", "-q", "-m", "init")
        git(seed, "push", "-q", str(self.origin), "main")
        self.repos: list[GitRepo] = []

    def clone(self, name: str) -> tuple[Path, Registry]:
        root = self.tmp / name
        git(self.tmp, "clone", "-q", self.origin.as_uri(), str(root))
        return root, self.registry(root)

    def registry(self, root: Path, remote: str | None = "origin") -> Registry:
        repo = GitRepo(root)
        self.repos.append(repo)
        return Registry(repo, remote=remote)

    def close(self) -> None:
        for repo in self.repos:
            repo.close()


@pytest.fixture
def world(tmp_path: Path, git_env: None) -> Iterator[World]:
    w = World(tmp_path)
    yield w
    w.close()


M0 = make_manifest({"a.bin": b"zero"})
M1 = make_manifest({"a.bin": b"one", "b.bin": b"two"})
M2 = make_manifest({"a.bin": b"three"})


def publish_three(root: Path, reg: Registry) -> list[str]:
    commits = []
    for i, m in enumerate((M0, M1, M2)):
        commits.append(commit_manifest(root, m, f"v{i}"))
        version, created = reg.publish(NAME, m, commits[-1])
        assert (version.label, created) == (f"v{i}", True)
    return commits


# -- publish ------------------------------------------------------------------------------


def test_publish_assigns_v0_then_v1_as_annotated_tags_on_origin(world: World) -> None:
    root, reg = world.clone("a")
    c0 = commit_manifest(root, M0)
    v0, created = reg.publish(NAME, M0, c0)
    assert (v0.label, created, v0.commit, v0.digest) == ("v0", True, c0, M0.digest)
    c1 = commit_manifest(root, M1)
    v1, created = reg.publish(NAME, M1, c1)
    assert (v1.label, created, v1.commit) == ("v1", True, c1)
    assert (v1.size, v1.count) == (M1.size, M1.count)

    on_origin = remote_tags(world.origin)
    assert set(on_origin) == {"raw@v0", "raw@v1"}
    assert on_origin == {t: s for t, s in local_tags(root).items() if t.startswith("raw@")}
    fields = tag_message(world.origin, "raw@v1")
    assert fields["version"] == "v1" and fields["digest"] == M1.digest
    assert fields["size"] == str(M1.size) and fields["count"] == "2"
    assert fields["author"] == "Test User <test@example.com>"
    assert git(world.origin, "rev-parse", "raw@v1^{commit}").strip() == c1


def test_identical_digest_maps_to_the_existing_version_without_a_new_tag(world: World) -> None:
    root, reg = world.clone("a")
    c0 = commit_manifest(root, M0)
    reg.publish(NAME, M0, c0)
    before = remote_tags(world.origin)
    # Same files, different description and commit: the digest (file list) is unchanged.
    same = make_manifest({"a.bin": b"zero"}, description="re-described")
    c1 = commit_manifest(root, same)
    version, created = reg.publish(NAME, same, c1)
    assert (version.label, created, version.commit) == ("v0", False, c0)
    assert remote_tags(world.origin) == before
    assert [t for t in local_tags(root) if t.startswith("raw@")] == ["raw@v0"]


def test_versions_latest_and_aliases(world: World) -> None:
    root, reg = world.clone("a")
    commits = publish_three(root, reg)
    versions = reg.versions(NAME)
    reg.set_alias(NAME, versions[1], "production")
    reg.set_alias(NAME, versions[2], "best")

    versions = reg.versions(NAME)
    assert [v.label for v in versions] == ["v0", "v1", "v2"]
    assert [v.commit for v in versions] == commits
    assert [v.digest for v in versions] == [M0.digest, M1.digest, M2.digest]
    assert [v.aliases for v in versions] == [[], ["production"], ["latest", "best"]]
    fields = tag_message(world.origin, "raw@production")
    assert fields["alias"] == "production"
    assert fields["version"] == "v1" and fields["digest"] == M1.digest
    assert git(world.origin, "rev-parse", "raw@production^{commit}").strip() == commits[1]


def test_resolve_version_latest_alias_and_unknown(world: World) -> None:
    root, reg = world.clone("a")
    with pytest.raises(ArtifactNotFoundError, match="no published versions"):
        reg.resolve(NAME, "latest")
    commits = publish_three(root, reg)
    reg.set_alias(NAME, reg.versions(NAME)[0], "production")

    r = reg.resolve(NAME, "v1")
    assert r is not None and r.commit == commits[1] and r.version and r.version.label == "v1"
    r = reg.resolve(NAME, "latest")
    assert r is not None and r.commit == commits[2] and r.version and r.version.label == "v2"
    r = reg.resolve(NAME, "production")
    assert r is not None and r.commit == commits[0] and r.version and r.version.label == "v0"
    assert reg.resolve(NAME, "staging") is None
    assert reg.resolve(NAME, "v7") is None
    assert reg.known_refs_hint(NAME) == "known: v0, v1, v2, latest, production"


def test_alias_moves_and_deletes_on_origin(world: World) -> None:
    root, reg = world.clone("a")
    publish_three(root, reg)
    v0, v1, _v2 = reg.versions(NAME)
    assert reg.set_alias(NAME, v0, "production") is None
    first = remote_tags(world.origin)["raw@production"]
    assert reg.set_alias(NAME, v1, "production") == "v0"
    moved = remote_tags(world.origin)["raw@production"]
    assert moved != first and tag_message(world.origin, "raw@production")["version"] == "v1"
    assert reg.set_alias(NAME, v1, "production") == "v1"  # already there: nothing rewritten
    assert remote_tags(world.origin)["raw@production"] == moved

    assert reg.delete_alias(NAME, "production") == "v1"
    assert "raw@production" not in remote_tags(world.origin)
    assert "raw@production" not in local_tags(root)
    with pytest.raises(ArtifactNotFoundError) as info:
        reg.delete_alias(NAME, "production")
    assert "v0, v1, v2" in (info.value.hint or "")


def test_reserved_alias_names_are_refused(world: World) -> None:
    root, reg = world.clone("a")
    publish_three(root, reg)
    v0 = reg.versions(NAME)[0]
    for bad in ("latest", "v3", "v0"):
        with pytest.raises(InvalidNameError):
            reg.set_alias(NAME, v0, bad)
    assert set(remote_tags(world.origin)) == {"raw@v0", "raw@v1", "raw@v2"}
    assert reg.versions(NAME)[1].digest == M1.digest  # v1 was not overwritten by an alias


def test_protected_alias_moves_only_with_force(world: World) -> None:
    root, reg = world.clone("a")
    publish_three(root, reg)
    v0, v1, _v2 = reg.versions(NAME)
    reg.set_alias(NAME, v0, "production", protected=True)  # creating it is allowed
    with pytest.raises(ConflictError) as info:
        reg.set_alias(NAME, v1, "production", protected=True)
    assert "--force" in (info.value.hint or "")
    assert tag_message(world.origin, "raw@production")["version"] == "v0"
    with pytest.raises(ConflictError):
        reg.delete_alias(NAME, "production", protected=True)
    assert reg.set_alias(NAME, v1, "production", protected=True, force=True) == "v0"
    assert tag_message(world.origin, "raw@production")["version"] == "v1"


def test_tag_whose_digest_disagrees_with_its_manifest_is_refused(world: World) -> None:
    root, reg = world.clone("a")
    commits = publish_three(root, reg)
    # A hand-made tag claiming M0's digest on the commit that holds M2.
    forged = f"gart-version: 1\nname: raw\nversion: v5\ndigest: {M0.digest}\nsize: 4\ncount: 1\n"
    git(root, "tag", "-a", "raw@v5", "-m", forged, commits[2])
    resolved = reg.resolve(NAME, "v5")
    assert resolved is not None and resolved.commit == commits[2]
    at_commit = manifestmod.loads(git(root, "show", f"{commits[2]}:.gart/artifacts/raw.yaml"))
    with pytest.raises(ManifestError, match="tampered"):
        check_digest(resolved, at_commit)
    honest = reg.resolve(NAME, "v2")
    assert honest is not None
    check_digest(honest, at_commit)  # the real tag on the same commit passes


def test_without_origin_tags_stay_local(tmp_path: Path, git_env: None) -> None:
    root = init_git_repo(tmp_path / "solo")
    repo = GitRepo(root)
    try:
        reg = Registry(repo)
        assert reg.remote is None
        reg.sync(NAME)  # nothing to fetch from: a no-op, not an error
        c0 = commit_manifest(root, M0)
        version, created = reg.publish(NAME, M0, c0)
        assert (version.label, created) == ("v0", True)
        reg.set_alias(NAME, version, "production")
        assert set(local_tags(root)) == {"raw@v0", "raw@production"}
        assert reg.resolve(NAME, "production") is not None
    finally:
        repo.close()


def test_other_artifacts_tags_are_not_mixed_in(world: World) -> None:
    root, reg = world.clone("a")
    c0 = commit_manifest(root, M0)
    reg.publish(NAME, M0, c0)
    for other in ("raw-images", "team/raw"):
        m = make_manifest({"x.bin": other.encode()}, name=other)
        reg.publish(other, m, commit_manifest(root, m))
    assert [v.label for v in reg.versions(NAME)] == ["v0"]
    assert [v.label for v in reg.versions("team/raw")] == ["v0"]
    assert reg.versions("raw-images")[0].digest != M0.digest


def test_other_clone_sees_versions_and_moved_aliases_after_sync(world: World) -> None:
    a, reg_a = world.clone("a")
    publish_three(a, reg_a)
    v0, v1, _v2 = reg_a.versions(NAME)
    reg_a.set_alias(NAME, v0, "production")
    b, reg_b = world.clone("b")
    git(b, "tag", "-d", *[t for t in local_tags(b)])  # as a clone made with --no-tags
    reg_b.sync(NAME)
    assert [(v.label, v.aliases) for v in reg_b.versions(NAME)] == [
        ("v0", ["production"]), ("v1", []), ("v2", ["latest"])]
    reg_a.set_alias(NAME, v1, "production")
    reg_b.sync(NAME)  # the moved alias tag is force-updated
    r = reg_b.resolve(NAME, "production")
    assert r is not None and r.version is not None and r.version.label == "v1"


# -- races decided by origin (a hook makes another writer win between our fetch and push) --


def test_publish_race_lost_on_origin_takes_the_next_number(world: World) -> None:
    a, _ = world.clone("a")
    b, reg_b = world.clone("b")
    # Writer A tags its own content as v0 locally; B's pre-push hook pushes that tag to origin
    # once, i.e. after B fetched (origin had no v0) and before B's own push lands.
    reg_a_local = world.registry(a, remote=None)
    ca = commit_manifest(a, M0)
    reg_a_local.publish(NAME, M0, ca)
    mark = world.tmp / "a-pushed"
    add_hook(b, "pre-push", f'[ -e "{mark}" ] || {{ touch "{mark}"; '
             f'git -C "{a}" push -q --no-verify origin refs/tags/raw@v0; }}\n')
    cb = commit_manifest(b, M1)
    retries: list[int] = []
    version, created = reg_b.publish(NAME, M1, cb, on_retry=lambda: retries.append(1))
    assert (version.label, created) == ("v1", True)
    assert retries == [1]
    assert tag_message(world.origin, "raw@v0")["digest"] == M0.digest  # A's v0 survived
    assert tag_message(world.origin, "raw@v1")["digest"] == M1.digest
    assert [(v.label, v.commit) for v in reg_b.versions(NAME)] == [("v0", ca), ("v1", cb)]


def test_alias_race_lost_on_origin_names_the_winner(world: World,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    a, reg_a = world.clone("a")
    publish_three(a, reg_a)
    v0, v1, v2 = reg_a.versions(NAME)
    reg_a.set_alias(NAME, v0, "production")
    b, reg_b = world.clone("b")
    # Alice moves production to v2 in her clone; Bob's pre-push hook lets her push land first.
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Alice")
    world.registry(a, remote=None).set_alias(NAME, v2, "production")
    alice_tag = local_tags(a)["raw@production"]
    mark = world.tmp / "alice-pushed"
    add_hook(b, "pre-push", f'[ -e "{mark}" ] || {{ touch "{mark}"; git -C "{a}" push -q '
             f'--no-verify --force origin refs/tags/raw@production; }}\n')
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Bob")
    with pytest.raises(TagRaceError) as info:
        reg_b.set_alias(NAME, v1, "production")
    assert "v2" in info.value.message and "Alice" in info.value.message
    assert remote_tags(world.origin)["raw@production"] == alice_tag
    assert local_tags(b)["raw@production"] == alice_tag  # Bob's clone now shows the winner


def test_publish_interrupted_by_a_failed_tag_push_is_completed_next_time(world: World) -> None:
    root, reg = world.clone("a")
    c0 = commit_manifest(root, M0)
    add_hook(world.origin, "pre-receive", "echo 'tags are frozen today' >&2\nexit 1\n")
    with pytest.raises(GitError):
        reg.publish(NAME, M0, c0)
    assert remote_tags(world.origin) == {}
    os.remove(world.origin / "hooks" / "pre-receive")
    version, _created = reg.publish(NAME, M0, c0)
    assert version.label == "v0"
    assert set(remote_tags(world.origin)) == {"raw@v0"}  # published means: origin has it


def test_alias_interrupted_by_a_failed_tag_push_is_completed_next_time(world: World) -> None:
    root, reg = world.clone("a")
    publish_three(root, reg)
    v1 = reg.versions(NAME)[1]
    add_hook(world.origin, "pre-receive", "echo 'tags are frozen today' >&2\nexit 1\n")
    with pytest.raises(GitError):
        reg.set_alias(NAME, v1, "production")
    os.remove(world.origin / "hooks" / "pre-receive")
    reg.set_alias(NAME, v1, "production")
    assert tag_message(world.origin, "raw@production")["version"] == "v1"
