"""Fault and concurrency suites: a fault-injecting remote (tests/faultfs.py) under push, fsck
and gc; a full disk (RLIMIT_FSIZE in the child); two gart processes in one repository."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import GartResult, git
from integrity_kit import child_env, finish, fsck_remote, ok, run, start, temp_files
from test_cli_remote import Project, make_project


@pytest.fixture
def project(tmp_path: Path, git_env: None) -> Project:
    return make_project(tmp_path, small=10, large=1)


def faulty_default(project: Project, **options: str) -> Path:
    """The default remote `storage` is faulty:// over a local directory."""
    path = project.tmp / "remote"
    ok(project.work, "remote", "add", "storage", f"faulty://{path}", "--default")
    project.commit_config()
    for key, value in options.items():
        ok(project.work, "remote", "modify", "storage", key, value, "--local")
    return path


def faults_off(project: Project) -> None:
    ok(project.work, "remote", "modify", "storage", "fault_method", "--unset", "--local")


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file() and not p.name.startswith(".")}


@pytest.mark.parametrize("method", ["put_file", "pipe_file"])
def test_a_transient_fault_ends_like_a_clean_run(project: Project, method: str) -> None:
    remote = faulty_default(project, fault_method=method, fault_count="1")
    assert "published v0" in ok(project.work, "push").err
    faults_off(project)
    assert fsck_remote(project.work)["rc"] == 0
    clean = project.tmp / "clean"
    ok(project.work, "remote", "add", "clean", clean)
    ok(project.work, "push", "-r", "clean", "--no-publish")
    assert {k for k in tree(remote) if not k.startswith("locks/")} == set(tree(clean))
    assert temp_files(remote) == []


def test_permanent_faults_exit_1_and_change_nothing(project: Project) -> None:
    remote = faulty_default(project)
    ok(project.work, "push")
    git(project.work, "push", "-q", "origin", "main")
    before = tree(remote)
    ok(project.work, "remote", "modify", "storage", "fault_method", "pipe_file", "--local")
    ok(project.work, "remote", "modify", "storage", "fault_count", "0", "--local")
    refused = run(project.work, "gc", "--remote", "--grace", "0")  # cannot write its lock
    assert refused.rc == 1 and "Traceback" not in refused.err
    assert tree(remote) == before
    # Corrupt reads: fsck reports them and changes nothing; pull never places them.
    ok(project.work, "remote", "modify", "storage", "fault_method", "cat_file", "--local")
    ok(project.work, "remote", "modify", "storage", "fault_mode", "corrupt", "--local")
    ok(project.work, "remote", "modify", "storage", "fault_path", ".pack", "--local")
    ok(project.work, "remote", "modify", "storage", "fault_count", "0", "--local")
    report = fsck_remote(project.work, "--sample", "100%")  # one span: one byte flipped
    assert report["rc"] == 1 and "corrupt" in "\n".join(report["remote"]["problems"])
    assert tree(remote) == before
    clone = project.clone()
    ok(clone, "remote", "modify", "storage", "fault_method", "get_file", "--local")
    ok(clone, "remote", "modify", "storage", "fault_mode", "corrupt", "--local")
    ok(clone, "remote", "modify", "storage", "fault_count", "0", "--local")
    pulled = run(clone, "pull", "pets@v0")
    assert pulled.rc == 1 and "corrupt" in pulled.err and "Traceback" not in pulled.err
    assert not (clone / "data" / "big0.bin").exists()
    assert ok(clone, "fsck").rc == 0


def run_limited(cwd: Path, limit: int, *args: str) -> GartResult:
    """`gart ARGS` in a child that may not write any file past `limit` bytes (a full disk)."""

    def cap() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a signal
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    done = subprocess.run([sys.executable, "-m", "gitartifacts", *args], cwd=cwd,
                          env=child_env(), capture_output=True, text=True, timeout=120,
                          preexec_fn=cap, check=False)
    return GartResult(done.returncode, done.stdout, done.stderr)


@pytest.mark.parametrize("command", ["pull", "add"])
def test_a_full_disk_is_a_clean_error_with_nothing_truncated(project: Project,
                                                            command: str) -> None:
    faulty_default(project)
    ok(project.work, "push")
    git(project.work, "push", "-q", "origin", "main")
    clone = project.clone()
    if command == "pull":
        result = run_limited(clone, 600_000, "pull", "pets@v0")
        data = clone / "data"
    else:
        data = clone / "fresh"
        data.mkdir()
        (data / "big.bin").write_bytes(os.urandom(900_000))
        result = run_limited(clone, 600_000, "add", "fresh", "--name", "fresh")
    assert result.rc == 1 and "Traceback" not in result.err, result.err
    assert len(result.err.strip().splitlines()) <= 2  # one line, plus its hint
    if command == "pull":
        assert not (data / "big0.bin").exists()  # never a truncated file under its name
    assert ok(clone, "fsck").rc == 0
    ok(clone, *(["pull", "pets@v0"] if command == "pull" else ["add", "fresh", "--name",
                                                                "fresh"]))
    assert temp_files(clone / ".gart", data) == []


# -- concurrency ------------------------------------------------------------------------------


def test_two_adds_and_a_gc_at_once_corrupt_nothing(project: Project) -> None:
    faulty_default(project)
    for name in ("one", "two"):
        d = project.work / name
        d.mkdir()
        for i in range(30):
            (d / f"f{i}.bin").write_bytes(os.urandom(2000) + name.encode())
        (d / "shared.bin").write_bytes(b"same in both" * 100)
    procs = [start(project.work, "add", name, "--name", name) for name in ("one", "two")]
    procs.append(start(project.work, "gc", "--grace", "0"))
    results = [finish(p) for p in procs]
    assert all(r.rc == 0 for r in results), [r.err for r in results]
    status = json.loads(ok(project.work, "status", "--json").out)
    assert all(not s.get("missing_from_cache") for s in status), status
    assert ok(project.work, "fsck").rc == 0
    ok(project.work, "gc", "--grace", "0")  # working-tree manifests keep their objects
    for name in ("one", "two"):
        target = project.tmp / f"out-{name}"
        ok(project.work, "checkout", name, "--to", target)
        assert tree(target) == tree(project.work / name)


def test_pull_beside_a_gc_of_the_cache(project: Project) -> None:
    faulty_default(project)
    ok(project.work, "push")
    (project.work / "data" / "v1.bin").write_bytes(b"v1" * 1000)
    ok(project.work, "add", "data", "--name", "pets")
    git(project.work, "add", "-A")
    git(project.work, "commit", "-q", "-m", "v1")
    ok(project.work, "push")
    git(project.work, "push", "-q", "origin", "main")
    clone = project.clone()
    ok(clone, "pull", "pets@v0", "--to", project.tmp / "old")
    gc = start(clone, "gc", "--keep-versions", "1", "--grace", "0")
    pull = start(clone, "pull", "pets@v1")
    assert finish(gc).rc == 0 and finish(pull).rc == 0
    assert tree(clone / "data") == tree(project.work / "data")
    assert ok(clone, "fsck").rc == 0
