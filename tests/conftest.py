"""Shared pytest fixtures for the gitartifacts test suite."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import pytest

# ---------------------------------------------------------------------------------------
# Core — isolated git identity, a temp git repo with `gart init` done, the real `gart`
# command as a subprocess, a seeded random data-set builder and a tree snapshot for
# "nothing was written" checks. Fixtures: git_env, repo, gart, make_dataset, snapshot.
# ---------------------------------------------------------------------------------------


class GartResult(NamedTuple):
    """What one run of the `gart` command did."""

    rc: int
    out: str
    err: str


def git(cwd: Path, *args: str) -> str:
    """Run git in `cwd`, fail the test on a non-zero exit, return stdout."""
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"git {' '.join(args)} failed: {done.stderr}"
    return done.stdout


def init_git_repo(root: Path) -> Path:
    """`git init` with a repo-local identity (the global git config is never touched)."""
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Test User")
    git(root, "config", "user.email", "test@example.com")
    return root


def isolate_git(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """Keep the user's git config and gart settings out; give every commit a known author."""
    home.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for kind in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{kind}_NAME", "Test User")
        monkeypatch.setenv(f"GIT_{kind}_EMAIL", "test@example.com")
    for name in list(os.environ):
        if name.startswith("GART_"):
            monkeypatch.delenv(name)


@pytest.fixture
def git_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """isolate_git for one test."""
    isolate_git(monkeypatch, tmp_path / "home")


@pytest.fixture
def repo(tmp_path: Path, git_env: None) -> Path:
    """A fresh git repository (branch main) with gart initialised; returns its root."""
    from gitartifacts.api import Repo

    root = init_git_repo(tmp_path / "repo")
    Repo.init(root)
    return root


GART = (sys.executable, "-m", "gitartifacts")  # the real command, from this interpreter


def run_gart(
    cwd: Path, *args: str | os.PathLike[str], env: Mapping[str, str] | None = None,
    python_args: Sequence[str] = (),
) -> GartResult:
    """The one way tests run the real `gart` command: in `cwd`, `env` added to os.environ."""
    done = subprocess.run(
        [GART[0], *python_args, *GART[1:], *map(str, args)], cwd=cwd,
        env={**os.environ, **env} if env else None, capture_output=True, text=True,
        timeout=120, check=False,
    )
    return GartResult(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def gart(repo: Path) -> Callable[..., GartResult]:
    """Run the real `gart` command (python -m gitartifacts) in `cwd` (default: the repo)."""

    def run(*args: str | os.PathLike[str], cwd: Path | None = None) -> GartResult:
        return run_gart(cwd or repo, *args)

    return run


def ok(result: GartResult) -> GartResult:
    """Assert a gart command succeeded; return its result."""
    assert result.rc == 0, f"exit {result.rc}\nstdout: {result.out}\nstderr: {result.err}"
    return result


def one_error(result: GartResult) -> str:
    """The single `gart: error:` line of a failed command (no traceback, exit 1)."""
    assert result.rc == 1, (result.rc, result.err)
    assert "Traceback" not in result.err, result.err
    lines = [line for line in result.err.splitlines() if line.startswith("gart: error:")]
    assert len(lines) == 1, result.err
    return lines[0]


class Project(NamedTuple):
    """A gart repository (`root`, a README committed and pushed) with a bare `origin` and a
    local-directory default remote `storage`, all under `tmp`."""

    root: Path
    origin: Path
    storage: Path
    tmp: Path


@pytest.fixture
def project(repo: Path, tmp_path: Path) -> Project:
    """The `repo` fixture with a bare `origin` (main pushed) and a default gart remote."""
    from gitartifacts.api import Repo

    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    git(repo, "remote", "add", "origin", str(origin))
    storage = tmp_path / "storage"
    api = Repo(repo)
    api.remote_add("storage", str(storage), default=True)
    api.git.close()
    (repo / "README").write_text("first\n")
    git(repo, "add", "README")
    git(repo, "commit", "-q", "-m", "gart init")
    git(repo, "push", "-q", "-u", "origin", "main")
    return Project(repo, origin, storage, tmp_path)


def build_dataset(
    root: Path, files: int = 10, seed: int = 0, min_size: int = 1, max_size: int = 4096,
    dirs: int = 3,
) -> dict[str, bytes]:
    """Write `files` random files (fixed seed) in `dirs` sub-folders; returns rel -> bytes."""
    rng = random.Random(seed)
    written: dict[str, bytes] = {}
    for i in range(files):
        rel = f"d{i % dirs}/f{i:04d}.bin" if dirs else f"f{i:04d}.bin"
        data = rng.randbytes(rng.randint(min_size, max_size))
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written[rel] = data
    return written


@pytest.fixture
def make_dataset() -> Callable[..., dict[str, bytes]]:
    """The seeded data-set builder: make_dataset(root, files=10, seed=0, ...)."""
    return build_dataset


def read_tree(root: Path) -> dict[str, bytes]:
    """Every regular file under root (relative '/' paths) with its bytes."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()
    }


def tree_snapshot(root: Path) -> tuple[str, dict[str, tuple[int, int, int]]]:
    """`git status --porcelain --ignored` plus (size, mtime, mode) of every file outside .git."""
    status = git(root, "status", "--porcelain", "--ignored", "--untracked-files=all")
    files: dict[str, tuple[int, int, int]] = {}
    for directory, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not (directory == str(root) and d == ".git")]
        for name in dirnames:  # a directory counts by its existence, not its mtime
            files[os.path.relpath(os.path.join(directory, name), root) + "/"] = (0, 0, 0)
        for name in filenames:
            path = os.path.join(directory, name)
            st = os.lstat(path)
            files[os.path.relpath(path, root)] = (st.st_size, st.st_mtime_ns, st.st_mode)
    return status, files


@pytest.fixture
def snapshot() -> Callable[[Path], tuple[str, dict[str, tuple[int, int, int]]]]:
    """snapshot(root): compare before/after to prove a command wrote nothing."""
    return tree_snapshot


# ---------------------------------------------------------------------------------------
# S3 (moto) — a real S3 endpoint on 127.0.0.1 for the remote tests (tests/s3_server.py).
# Fixtures: s3_server (session: one moto server behind a request counter) and s3 (per test:
# moto reset, bucket "gart-test", AWS_* test credentials set with monkeypatch).
# ---------------------------------------------------------------------------------------
from s3_server import s3, s3_server  # noqa: E402, F401, I001

# ---------------------------------------------------------------------------------------
# GCS, Azure and a silent endpoint — gcp-storage-emulator in-process (tests/gcs_server.py),
# azurite as a child process (tests/azure_server.py; skipped with a reason when absent unless
# GART_TEST_REQUIRE_EMULATORS is set), and a socket that accepts and never answers
# (tests/silent_server.py). Fixtures: gcs_server, gcs, azurite, azure, silent_server.
# ---------------------------------------------------------------------------------------
from azure_server import azure, azurite  # noqa: E402, F401, I001
from gcs_server import gcs, gcs_server  # noqa: E402, F401, I001
from silent_server import silent_server  # noqa: E402, F401, I001


# ---------------------------------------------------------------------------------------
# Runs & lineage — a published "world" for tests/test_run.py and tests/test_cli_run.py:
# the `repo` fixture plus a bare git `origin`, a local-directory default remote `storage`,
# raw@v0 (alias production) and labels@v0 committed, pushed and published.
# Fixture: published (-> World).
# ---------------------------------------------------------------------------------------


class World(NamedTuple):
    """A repo whose inputs are published: raw@v0 (=production) in raw/, labels@v0 in labels/."""

    root: Path
    origin: Path
    storage: Path
    raw: dict[str, bytes]
    labels: dict[str, bytes]


def build_published_world(root: Path) -> World:
    """Give the gart repo at `root` an origin and a storage remote; publish raw and labels."""
    from gitartifacts.api import Repo

    origin = root.parent / "origin.git"
    storage = root.parent / "storage"
    git(root.parent, "init", "-q", "--bare", "-b", "main", str(origin))
    git(root, "remote", "add", "origin", str(origin))
    api = Repo(root)
    api.remote_add("storage", str(storage), default=True)
    raw = build_dataset(root / "raw", files=6, seed=11, max_size=2048, dirs=2)
    labels = build_dataset(root / "labels", files=2, seed=12, max_size=256, dirs=0)
    api = Repo(root)  # re-read the config with the new remote
    api.add([root / "raw"], name="raw")
    api.add([root / "labels"], name="labels", type="labels")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "inputs")
    api.push()
    api.set_alias("raw", "v0", "production")
    git(root, "push", "-q", "origin", "HEAD:main")
    return World(root, origin, storage, raw, labels)


@pytest.fixture
def published(repo: Path) -> World:
    """The `repo` fixture with raw@v0 (alias production) and labels@v0 published to origin."""
    return build_published_world(repo)
