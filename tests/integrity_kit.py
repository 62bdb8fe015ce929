"""Shared helpers for the integrity suites (gc, fsck --remote, crash, faults, concurrency).

Everything runs the real `gart` in child processes against a real bare origin and real
local or S3 (moto) remotes; the children reach the test hooks through the environment
(GART_TEST_KILL_AT, GART_TEST_PAUSE_AT, read by gitartifacts/config.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from conftest import GartResult

TESTS = Path(__file__).resolve().parent


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS / "faultsite"), env.get("PYTHONPATH", "")])
    env.update(extra)
    return env


def run(cwd: Path, *args: str | os.PathLike[str], **extra: str) -> GartResult:
    done = subprocess.run(
        [sys.executable, "-m", "gitartifacts", *map(str, args)], cwd=cwd,
        env=child_env(**extra), capture_output=True, text=True, timeout=180, check=False)
    return GartResult(done.returncode, done.stdout, done.stderr)


def ok(cwd: Path, *args: str | os.PathLike[str], **extra: str) -> GartResult:
    result = run(cwd, *args, **extra)
    assert result.rc == 0, f"gart {' '.join(map(str, args))}: {result.err}"
    return result


def start(cwd: Path, *args: str | os.PathLike[str], **extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "gitartifacts", *map(str, args)], cwd=cwd,
        env=child_env(**extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen[str], timeout: float = 180) -> GartResult:
    out, err = proc.communicate(timeout=timeout)
    return GartResult(proc.returncode, out, err)


def wait_for(path: Path, proc: subprocess.Popen[str] | None = None, limit: float = 60) -> None:
    """Wait until a paused child has created its flag file (never a timing assertion: the
    limit only turns a hang into a failure)."""
    deadline = time.monotonic() + limit
    while not path.exists():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"child exited ({proc.returncode}) before pausing: "
                                 f"{proc.stderr.read() if proc.stderr else ''}")
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def fsck_remote(cwd: Path, *extra: str) -> dict[str, Any]:
    result = run(cwd, "fsck", "--remote", "--json", *extra)
    data = json.loads(result.out)
    data["rc"] = result.rc
    return data


def temp_files(*roots: Path) -> list[Path]:
    return [p for root in roots if root.exists() for p in root.rglob(".tmp-*")]
