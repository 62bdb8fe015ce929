"""`gart install-hooks`: pre-push uploads (or blocks), post-checkout/post-merge check out,
existing hooks chained and restored, core.hooksPath respected. Real git, real bare origin."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import GartResult, git

Gart = Callable[..., GartResult]

USER_HOOK = """#!/bin/sh
# the user's own hook: records its arguments and stdin
echo "args: $*" >> "{log}"
cat >> "{log}"
exit ${{USER_HOOK_EXIT:-0}}
"""


def git_rc(cwd: Path, *args: str, env: dict[str, str] | None = None
           ) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False,
                          env={**os.environ, **(env or {})})


@pytest.fixture
def world(repo: Path, gart: Gart) -> tuple[Path, Path, Path]:
    """repo with a local storage remote (default) and a bare origin; returns (repo, origin,
    storage)."""
    origin = repo.parent / "origin.git"
    storage = repo.parent / "storage"
    git(repo.parent, "init", "-q", "--bare", "-b", "main", str(origin))
    git(repo, "remote", "add", "origin", str(origin))
    assert gart("remote", "add", "storage", str(storage), "--default").rc == 0
    git(repo, "commit", "-q", "-am", "init")
    git(repo, "push", "-q", "origin", "main")
    return repo, origin, storage


def add_data(repo: Path, gart: Gart, name: str, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = repo / name / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    done = gart("add", name)
    assert done.rc == 0, done.err
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", f"data {name}")


def stored(storage: Path) -> set[str]:
    return {p.name for p in storage.rglob("*") if p.is_file()} if storage.exists() else set()


def test_pre_push_uploads_changed_artifacts(world: tuple[Path, Path, Path], gart: Gart) -> None:
    repo, origin, storage = world
    assert gart("install-hooks").rc == 0
    git(repo, "commit", "-q", "-m", "attributes")
    add_data(repo, gart, "data", {"a.bin": b"a" * 10, "b.bin": b"b" * 20})
    assert gart("verify", "data@HEAD").rc == 1  # nothing uploaded yet
    done = git_rc(repo, "push", "origin", "main")
    assert done.returncode == 0, done.stderr
    assert "uploaded 2 object(s) of data" in done.stderr
    assert gart("verify", "data@HEAD").rc == 0
    assert gart("status", "--exit-code", "data").rc == 0  # the hook recorded the push
    # gart push publishes and pushes its tag: the hook skips gart's own tags.
    done = gart("push")
    assert done.rc == 0, done.err
    assert "data@v0" in git(origin, "tag")


def test_pre_push_blocks_when_bytes_cannot_be_uploaded(world: tuple[Path, Path, Path],
                                                     gart: Gart) -> None:
    repo, origin, storage = world
    assert gart("install-hooks").rc == 0
    git(repo, "commit", "-q", "-m", "attributes")
    add_data(repo, gart, "data", {"a.bin": b"lost bytes"})
    shutil.rmtree(repo / ".gart" / "cache")  # the only copy is gone
    before = git(origin, "rev-parse", "main")
    done = git_rc(repo, "push", "origin", "main")
    assert done.returncode != 0
    assert "data:a.bin" in done.stderr and "push was stopped" in done.stderr
    assert "Traceback" not in done.stderr
    assert git(origin, "rev-parse", "main") == before
    assert git_rc(repo, "push", "--no-verify", "origin", "main").returncode == 0


def test_existing_hook_chained_and_restored(world: tuple[Path, Path, Path], gart: Gart) -> None:
    repo, origin, storage = world
    log = repo.parent / "user-hook.log"
    hook = repo / ".git" / "hooks" / "pre-push"
    original = USER_HOOK.format(log=log)
    hook.write_text(original)
    hook.chmod(0o755)
    done = gart("install-hooks", "--json")
    assert done.rc == 0, done.err
    assert (repo / ".git" / "hooks" / "pre-push.pre-gart").read_text() == original
    git(repo, "commit", "-q", "-m", "attributes")
    add_data(repo, gart, "data", {"a.bin": b"chained"})
    done = git_rc(repo, "push", "origin", "main")
    assert done.returncode == 0, done.stderr
    text = log.read_text()
    assert "args: origin" in text and "refs/heads/main" in text  # args and stdin both seen
    assert "uploaded 1 object(s)" in done.stderr
    # A failing user hook stops the push before gart uploads anything.
    add_data(repo, gart, "more", {"m.bin": b"more"})
    done = git_rc(repo, "push", "origin", "main", env={"USER_HOOK_EXIT": "3"})
    assert done.returncode != 0 and "uploaded" not in done.stderr
    assert gart("install-hooks").rc == 0  # again: idempotent, the chain kept
    assert (repo / ".git" / "hooks" / "pre-push.pre-gart").read_text() == original
    done = gart("install-hooks", "--uninstall")
    assert done.rc == 0, done.err
    assert hook.read_text() == original
    assert not (repo / ".git" / "hooks" / "pre-push.pre-gart").exists()
    assert not (repo / ".git" / "hooks" / "post-merge").exists()
    assert git_rc(repo, "config", "merge.gart.driver").returncode != 0
    assert not (repo / ".gitattributes").exists()


def test_core_hooks_path_respected(world: tuple[Path, Path, Path], gart: Gart) -> None:
    repo, _origin, _storage = world
    git(repo, "config", "core.hooksPath", "githooks")
    done = gart("install-hooks")
    assert done.rc == 0, done.err
    assert (repo / "githooks" / "pre-push").exists()
    assert not (repo / ".git" / "hooks" / "pre-push").exists()
    git(repo, "commit", "-q", "-m", "attributes")
    add_data(repo, gart, "data", {"a.bin": b"via hooksPath"})
    done = git_rc(repo, "push", "origin", "main")
    assert done.returncode == 0 and "uploaded 1 object(s)" in done.stderr


def test_autocheckout_on_branch_switch_and_merge(world: tuple[Path, Path, Path],
                                                 gart: Gart) -> None:
    repo, _origin, _storage = world
    assert gart("install-hooks").rc == 0
    add_data(repo, gart, "data", {"a.bin": b"main a"})
    git(repo, "checkout", "-q", "-b", "feature")
    add_data(repo, gart, "data", {"a.bin": b"feature a"})
    done = git_rc(repo, "checkout", "main")  # autocheckout off: the files stay
    assert done.returncode == 0
    assert (repo / "data" / "a.bin").read_bytes() == b"feature a"
    assert gart("checkout", "data", "--force").rc == 0
    # A personal preference: the local file, which does not change with the branch.
    (repo / ".gart" / "config.local.yaml").write_text("core:\n  autocheckout: true\n")
    done = git_rc(repo, "checkout", "feature")
    assert done.returncode == 0, done.stderr
    assert (repo / "data" / "a.bin").read_bytes() == b"feature a"
    done = git_rc(repo, "checkout", "main")
    assert (repo / "data" / "a.bin").read_bytes() == b"main a"
    assert "data: 1 written" in done.stderr
    # A change of yours is never overwritten: the hook reports it and exits 1.
    (repo / "data" / "a.bin").write_bytes(b"my edit, not cached")
    done = git_rc(repo, "checkout", "feature")
    assert done.returncode != 0 and "data" in done.stderr
    assert (repo / "data" / "a.bin").read_bytes() == b"my edit, not cached"
    assert git_rc(repo, "checkout", "-q", "main").returncode == 1  # the edit is still there
    assert gart("checkout", "data", "--force").rc == 0
    done = git_rc(repo, "merge", "--no-edit", "feature")  # post-merge
    assert done.returncode == 0, done.stderr
    assert (repo / "data" / "a.bin").read_bytes() == b"feature a"
