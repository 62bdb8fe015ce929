"""Hole 1: what git carries under .gart/tmp, .gart/cache or in config can never steer gart's
writes — forged parse caches are never read, symlinked private directories are refused, a
committed cache.dir cannot lead out of the repository, and tracked private files are reported."""

from __future__ import annotations

import hashlib
import marshal
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import GartResult, build_dataset, git, ok, read_tree

from gitartifacts import config as configmod

Gart = Callable[..., GartResult]


def refused(result: GartResult, *words: str) -> None:
    assert result.rc == 1, (result.rc, result.out, result.err)
    assert "Traceback" not in result.err
    assert len(result.err.strip().splitlines()) <= 2, result.err  # message + hint
    for word in words:
        assert word in result.err


def attacker_repo(tmp_path: Path, gart: Gart) -> tuple[Path, Path, dict[str, bytes]]:
    """A repository that published `evil` (path data/) to a local remote; returns
    (attacker root, origin, files)."""
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    root = tmp_path / "attacker"
    git(tmp_path, "init", "-q", "-b", "main", str(root))
    ok(gart("init", cwd=root))
    ok(gart("remote", "add", "storage", str(tmp_path / "storage"), "--default", cwd=root))
    files = build_dataset(root / "data", files=3, seed=5)
    ok(gart("add", "data", "--name", "evil", cwd=root))
    git(root, "remote", "add", "origin", str(origin))
    git(root, "commit", "-q", "-m", "evil")
    ok(gart("push", cwd=root))
    return root, origin, files


def test_a_committed_parse_cache_cannot_redirect_a_pull(
    tmp_path: Path, gart: Gart, git_env: None
) -> None:
    root, origin, files = attacker_repo(tmp_path, gart)
    text = (root / ".gart" / "artifacts" / "evil.yaml").read_bytes()
    key = hashlib.sha256(text).hexdigest()
    # What round 1 trusted: a marshal of the parsed fields keyed by the manifest's sha256,
    # here with the artifact's path turned into ../outside (the strict parser refuses it).
    from gitartifacts import manifest as manifestmod

    parsed = manifestmod.loads(text, "evil.yaml")
    forged = marshal.dumps((
        manifestmod._PARSE_CACHE_VERSION, parsed.name, parsed.type, parsed.description,
        parsed.metadata, "../outside", parsed.include, parsed.exclude,
        [tuple(e) for e in parsed.entries], parsed.digest,
    ))
    for where in (".gart/tmp/parsed-manifests", ".gart/tmp/parsed-manifests/" + key[:2]):
        target = root / where / key
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(forged)
        git(root, "add", "-f", str(target.relative_to(root)))
    git(root, "commit", "-q", "-m", "cache")
    git(root, "push", "-q", "origin", "HEAD:main")

    victim = tmp_path / "work" / "victim"
    git(tmp_path, "clone", "-q", str(origin), str(victim))
    ok(gart("pull", "evil@v0", cwd=victim))
    assert not (tmp_path / "work" / "outside").exists()
    assert read_tree(victim / "data") == files
    status = ok(gart("status", cwd=victim))
    assert "git tracks 2 file(s) under .gart/tmp" in status.err
    fsck = gart("fsck", cwd=victim)
    assert fsck.rc == 1 and "parsed-manifests" in fsck.out and "git rm --cached" in fsck.out


@pytest.mark.parametrize("private", ["tmp", "cache", "artifacts"])
def test_a_committed_symlink_for_a_private_directory_is_refused(
    tmp_path: Path, gart: Gart, git_env: None, private: str
) -> None:
    root, origin, _files = attacker_repo(tmp_path, gart)
    outside = tmp_path / "outside"
    outside.mkdir()
    link = root / ".gart" / private
    if link.exists():
        git(root, "rm", "-rq", "--cached", "--ignore-unmatch", f".gart/{private}")
        import shutil

        shutil.rmtree(link)
    link.symlink_to(outside)
    git(root, "add", "-f", f".gart/{private}")
    git(root, "commit", "-q", "-m", "link")
    git(root, "push", "-q", "origin", "HEAD:main")

    victim = tmp_path / "victim"
    git(tmp_path, "clone", "-q", str(origin), str(victim))
    for args in (["status"], ["pull", "evil@v0"], ["add", "data", "--name", "evil"]):
        refused(gart(*args, cwd=victim), f".gart/{private}", "symlink")
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize("where", ["/var/tmp/gart-evil", "~/evil", "../evil", "data/../../evil",
                                   "inlink/cache"])
def test_a_committed_cache_dir_outside_the_repository_is_refused(
    repo: Path, gart: Gart, tmp_path: Path, where: str
) -> None:
    (tmp_path / "elsewhere").mkdir()
    (repo / "inlink").symlink_to(tmp_path / "elsewhere")
    config = repo / ".gart" / "config.yaml"
    config.write_text(config.read_text() + f"cache: {{dir: '{where}'}}\n")
    build_dataset(repo / "data", files=2)
    refused(gart("add", "data"), "cache.dir", "config.local.yaml")
    assert list((tmp_path / "elsewhere").iterdir()) == []
    assert not Path("/var/tmp/gart-evil").exists()


def test_cache_dir_inside_the_repository_or_local_is_accepted(
    repo: Path, gart: Gart, tmp_path: Path
) -> None:
    config = repo / ".gart" / "config.yaml"
    config.write_text(config.read_text() + "cache: {dir: shared-cache}\n")
    build_dataset(repo / "data", files=2)
    ok(gart("add", "data"))
    assert (repo / "shared-cache" / "packs").is_dir()
    local = repo / ".gart" / "config.local.yaml"
    local.write_text(f"cache: {{dir: '{tmp_path / 'mine'}'}}\n")
    ok(gart("add", "data", "--name", "data"))
    assert configmod.load_config(repo).cache_path == tmp_path / "mine"


def test_private_caches_live_under_a_name_only_this_machine_knows(repo: Path, gart: Gart) -> None:
    build_dataset(repo / "data", files=2)
    ok(gart("add", "data"))
    tmp = repo / ".gart" / "tmp"
    names = os.listdir(tmp)  # (this test process and the gart command may differ in HOME)
    assert names and all(n.startswith("local-") and len(n) == 30 for n in names)
    assert any((tmp / n / "parsed-manifests").is_dir() for n in names)
    secret = configmod.user_cache_dir() / configmod.SECRET_FILE
    assert secret.stat().st_mode & 0o077 == 0 and secret.stat().st_size == 32
