"""CI gates: `gart status --exit-code`, `gart push --dry-run`, `gart verify`, and remote
options from the environment (GART_REMOTE_<NAME>_<OPTION>)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import GartResult, World, git
from s3_server import S3Bucket

Gart = Callable[..., GartResult]


def files_under(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_status_exit_code_tracks_modified_and_pushed(published: World, gart: Gart) -> None:
    repo = published.root
    done = gart("status", "--exit-code")
    assert done.rc == 0, done.out + done.err
    assert "pushed" in done.out
    (repo / "raw" / "extra.bin").write_bytes(b"new")
    done = gart("status", "--exit-code", "--json")
    assert done.rc == 1
    rows = {r["name"]: r for r in json.loads(done.out)}
    assert rows["raw"]["state"] == "modified" and rows["labels"]["state"] == "clean"
    assert "raw" in done.err
    assert gart("status", "--exit-code", "labels").rc == 0
    assert gart("status", "raw").rc == 0  # without the flag, status always exits 0
    assert gart("add", "raw").rc == 0
    done = gart("status", "--exit-code", "--json", "raw")
    assert done.rc == 1 and json.loads(done.out)[0]["pushed"] is False
    assert "not pushed" in gart("status", "--exit-code", "raw").out
    assert gart("push", "--no-publish").rc == 0
    assert gart("status", "--exit-code", "raw").rc == 0


def test_status_exit_code_counts_published_versions_as_pushed(
        published: World, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{published.origin}", str(clone))

    def run(*args: str) -> GartResult:
        done = subprocess.run([sys.executable, "-m", "gitartifacts", *args], cwd=clone,
                              capture_output=True, text=True, check=False)
        return GartResult(done.returncode, done.stdout, done.stderr)

    assert run("status", "--exit-code", "raw").rc == 1  # not checked out, not cached
    assert run("pull", "raw@production").rc == 0
    done = run("status", "--exit-code", "--json", "raw")
    assert done.rc == 0, done.out + done.err
    assert json.loads(done.out)[0]["pushed"] is True


def test_push_dry_run_sends_nothing(published: World, gart: Gart) -> None:
    repo = published.root
    (repo / "raw" / "extra.bin").write_bytes(b"brand new bytes")
    assert gart("add", "raw").rc == 0
    git(repo, "commit", "-q", "-m", "more raw")
    before = files_under(published.storage)
    tags = git(repo, "tag")
    done = gart("push", "--dry-run", "--json")
    assert done.rc == 0, done.err
    plan = json.loads(done.out)
    assert plan["dry_run"] is True and plan["objects"] == 1 and plan["bytes"] == 15
    assert [s["path"] for s in plan["send"]] == ["extra.bin"]
    assert {p["name"]: p["new"] for p in plan["publish"]} == {"raw": True, "labels": False}
    text = gart("push", "-n")
    assert "raw:extra.bin" in text.out and "publish new version" in text.out
    assert files_under(published.storage) == before and git(repo, "tag") == tags
    assert gart("push").rc == 0
    assert json.loads(gart("push", "--dry-run", "--json").out)["objects"] == 0


def test_verify_names_missing_files(published: World, gart: Gart) -> None:
    done = gart("verify", "raw@production", "labels@v0", "--json")
    assert done.rc == 0, done.err
    report = json.loads(done.out)
    assert [r["ok"] for r in report] == [True, True] and report[0]["version"] == "v0"
    # Lose the remote's copy of everything: verify must say which files are gone.
    shutil.rmtree(published.storage)
    published.storage.mkdir()
    done = gart("verify", "raw@production")
    assert done.rc == 1
    assert "missing" in done.out and "d0/" in done.out and "Traceback" not in done.err
    assert gart("verify", "raw@v9").rc == 1
    backup = published.root.parent / "backup"
    assert gart("remote", "add", "backup", str(backup)).rc == 0
    assert gart("verify", "labels@v0", "-r", "backup").rc == 1


def test_remote_options_from_environment(repo: Path, s3: S3Bucket,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the bucket URL is committed; endpoint and credentials live in the environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ACCESS")
           and not k.startswith("AWS_SECRET")}
    env.update({
        "GART_REMOTE_STORAGE_ENDPOINT_URL": s3.endpoint,
        "GART_REMOTE_STORAGE_KEY": "AKIAENVKEY0001",
        "GART_REMOTE_STORAGE_SECRET": "env-secret-value-42",
    })

    def run(*args: str) -> GartResult:
        done = subprocess.run([sys.executable, "-m", "gitartifacts", *args], cwd=repo, env=env,
                              capture_output=True, text=True, check=False, timeout=120)
        return GartResult(done.returncode, done.stdout, done.stderr)

    assert run("remote", "add", "storage", s3.url, "--default").rc == 0
    (repo / "data").mkdir()
    (repo / "data" / "x.bin").write_bytes(b"x" * 100)
    assert run("add", "data").rc == 0
    git(repo, "commit", "-q", "-m", "data")
    done = run("push")
    assert done.rc == 0, done.err
    assert any(k.startswith("packs/") for k in s3.keys())
    listed = run("remote", "list", "--json")
    options = json.loads(listed.out)[0]["options"]
    assert options["endpoint_url"] == s3.endpoint and options["secret"] == "***"
    assert "env-secret-value-42" not in listed.out + listed.err
    for path in (repo / ".gart").rglob("*.yaml"):
        assert "env-secret-value-42" not in path.read_text() and s3.endpoint not in (
            path.read_text())
    assert run("verify", "data@HEAD").rc == 0
    # A bad option from the environment fails with one line, the secret masked.
    env["GART_REMOTE_STORAGE_BOGUS_OPTION"] = "env-secret-value-42"
    done = run("verify", "data@HEAD")
    assert done.rc == 1 and "bogus_option" in done.err
    assert "env-secret-value-42" not in done.err and "Traceback" not in done.err
    # A remote defined by the environment alone.
    env.pop("GART_REMOTE_STORAGE_BOGUS_OPTION")
    env.update({"GART_REMOTE_MIRROR_URL": s3.url,
                "GART_REMOTE_MIRROR_ENDPOINT_URL": s3.endpoint,
                "GART_REMOTE_MIRROR_KEY": "AKIAENVKEY0002", "GART_REMOTE_MIRROR_SECRET": "x" * 12})
    assert run("verify", "data@HEAD", "-r", "mirror").rc == 0
