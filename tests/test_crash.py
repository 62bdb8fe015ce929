"""Crash suite: SIGKILL gart at sampled write points, re-run the command, check the invariants.

Each case copies a ready-made project (bare origin, local remote, v0 published, one change
added and committed), runs one command with GART_TEST_KILL_AT=write:N (the Nth object,
pack, index, manifest, tag or lock write kills the process, after the bytes and before the
rename where there is one), re-runs it cleanly, and checks: it completes; `gart fsck`
and `gart fsck --remote` are clean (so no published version points at a missing blob); no
temporary file is left in the cache, the remote or the data. Checkout is killed after a
random delay instead (its writes are the working tree's, not gart's stores)."""

from __future__ import annotations

import hashlib
import random
import shutil
import signal
import time
from pathlib import Path

import pytest
from conftest import git, init_git_repo
from integrity_kit import fsck_remote, ok, run, start, temp_files
from s3_server import S3Bucket

KILL_POINTS = (1, 3, 5)  # sampled: early (lock/first object), middle, late (index/tag)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """work/ (v0 published; v1 added and committed, not pushed), origin.git, remote/."""
    base = tmp_path_factory.mktemp("crash-template")
    mp = pytest.MonkeyPatch()
    from conftest import isolate_git

    isolate_git(mp, base / "home")
    git(base, "init", "-q", "--bare", "-b", "main", "origin.git")
    work = init_git_repo(base / "work")
    git(work, "remote", "add", "origin", "../origin.git")
    rng = random.Random(7)
    for i in range(24):
        path = work / "data" / f"d{i % 3}" / f"f{i:03d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(rng.randint(10, 3000)))
    (work / "data" / "big.bin").write_bytes(rng.randbytes((1 << 20) + 100))
    ok(work, "init")
    ok(work, "remote", "add", "storage", "../remote", "--default")
    ok(work, "add", "data", "--name", "pets")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "v0")
    ok(work, "push")
    git(work, "push", "-q", "origin", "main")
    for i in range(6):  # v1: some files changed, one big file new
        (work / "data" / "d1" / f"new{i}.bin").write_bytes(rng.randbytes(500 + i))
    (work / "data" / "big2.bin").write_bytes(rng.randbytes((1 << 20) + 200))
    ok(work, "add", "data", "--name", "pets")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "v1")
    git(work, "push", "-q", "origin", "main")
    yield base
    mp.undo()


@pytest.fixture
def case(template: Path, tmp_path: Path, git_env: None) -> Path:
    dest = tmp_path / "case"
    shutil.copytree(template, dest, symlinks=True)
    return dest


def check_invariants(base: Path, remote: bool = True) -> None:
    work = base / "work"
    assert ok(work, "fsck").rc == 0
    if remote:
        report = fsck_remote(work)
        assert report["rc"] == 0, report
    leftovers = temp_files(work / ".gart" / "cache", base / "remote", work / "data")
    assert leftovers == [], leftovers


def killed_then_rerun(cwd: Path, n: int, *args: str) -> None:
    first = run(cwd, *args, GART_TEST_KILL_AT=f"write:{n}")
    assert first.rc in (0, -signal.SIGKILL), first.err
    assert "Traceback" not in first.err
    ok(cwd, *args)


@pytest.mark.parametrize("n", KILL_POINTS)
def test_push_killed(case: Path, n: int) -> None:
    killed_then_rerun(case / "work", n, "push")
    check_invariants(case)
    versions = ok(case / "work", "versions", "pets").out
    assert "v1" in versions


@pytest.mark.parametrize("n", KILL_POINTS)
def test_add_killed(case: Path, n: int) -> None:
    work = case / "work"
    (work / "data" / "d0" / "added.bin").write_bytes(b"x" * 5000)
    (work / "data" / "big3.bin").write_bytes(random.Random(n).randbytes((1 << 20) + 7))
    killed_then_rerun(work, n, "add", "data", "--name", "pets")
    status = ok(work, "status", "--json").out
    assert '"modified"' not in status.replace(" ", "") or "pets" in status
    check_invariants(case, remote=False)


@pytest.mark.parametrize("n", (1, 3))
def test_pull_killed(case: Path, n: int) -> None:
    ok(case / "work", "push")
    clone = case / "clone"
    git(case, "clone", "-q", "origin.git", str(clone))
    killed_then_rerun(clone, n, "pull", "pets@v1")
    assert ok(clone, "status", "pets").rc == 0
    data = {p.relative_to(clone / "data"): p.read_bytes() for p in (clone / "data").rglob("*")
            if p.is_file()}
    assert data == {p.relative_to(case / "work" / "data"): p.read_bytes()
                    for p in (case / "work" / "data").rglob("*") if p.is_file()}
    assert temp_files(clone / ".gart", clone / "data") == []


@pytest.mark.parametrize("n", (1,))
def test_alias_killed(case: Path, n: int) -> None:
    ok(case / "work", "push")
    killed_then_rerun(case / "work", n, "alias", "pets@v1", "production")
    assert "production" in ok(case / "work", "versions", "pets").out
    check_invariants(case)


@pytest.mark.parametrize("n", KILL_POINTS)
def test_gc_killed(case: Path, n: int) -> None:
    work = case / "work"
    ok(work, "push")
    killed_then_rerun(work, n, "gc", "--remote", "--keep-versions", "1", "--grace", "0")
    check_invariants(case)
    clone = case / "clone"
    git(case, "clone", "-q", "origin.git", str(clone))
    ok(clone, "pull", "pets@v1")


@pytest.mark.parametrize("delay", (0.1, 0.6))
def test_checkout_killed_after_a_delay(case: Path, delay: float) -> None:
    work = case / "work"
    ok(work, "push")
    git(work, "checkout", "-q", "HEAD~1", "--", ".gart/artifacts/pets.yaml")
    proc = start(work, "checkout", "pets", "--force")
    time.sleep(delay)
    proc.kill()
    proc.wait()
    ok(work, "checkout", "pets", "--force")
    assert ok(work, "status", "pets").rc == 0
    check_invariants(case)


@pytest.mark.parametrize("n", (2,))
def test_push_to_s3_killed(tmp_path: Path, git_env: None, s3: S3Bucket, n: int) -> None:
    work = init_git_repo(tmp_path / "work")
    git(tmp_path, "init", "-q", "--bare", "-b", "main", "origin.git")
    git(work, "remote", "add", "origin", "../origin.git")
    for i in range(12):
        (work / "data").mkdir(exist_ok=True)
        (work / "data" / f"f{i}").write_bytes(hashlib.sha256(bytes([i])).digest() * (i + 1))
    (work / "data" / "big").write_bytes(b"b" * ((1 << 20) + 5))
    ok(work, "init")
    ok(work, "remote", "add", "storage", s3.url, "--default")
    ok(work, "remote", "modify", "storage", "endpoint_url", s3.endpoint)
    ok(work, "add", "data", "--name", "pets")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "v0")
    killed_then_rerun(work, n, "push")
    assert fsck_remote(work)["rc"] == 0
