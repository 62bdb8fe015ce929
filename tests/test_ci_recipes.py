"""docs/ci.md runs: its GitHub Actions and GitLab CI workflows are extracted from the page and
their shell steps executed, each job in a fresh `git clone --depth 1` of a bare origin served
by `git daemon` on loopback, with the S3 endpoint and credentials only in the environment."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import git
from s3_server import S3Bucket

DOC = Path(__file__).resolve().parent.parent / "docs" / "ci.md"
KEY_ID, SECRET = "AKIACIRECIPE0001", "ci-recipe-secret-value-0001"
BUCKET = "team-bucket"

PREPARE = """import pathlib
root = pathlib.Path("data")
(root / "cats").mkdir(parents=True, exist_ok=True)
for i in range(5):
    (root / "cats" / f"{i}.txt").write_text(f"cat {i}\\n")
(root / "big.bin").write_bytes(bytes(range(256)) * 8192)  # 2 MiB: a loose object
"""
TRAIN = """import hashlib, os, pathlib
src = pathlib.Path(os.environ["GART_INPUT_RAW_IMAGES"])
files = sorted(p for p in src.rglob("*") if p.is_file())
digest = hashlib.sha256(b"".join(p.read_bytes() for p in files)).hexdigest()
out = pathlib.Path("models")
out.mkdir(exist_ok=True)
(out / "model.txt").write_text(f"trained on {len(files)} files {digest}\\n")
"""
EVALUATE = """import os, pathlib, sys
split = sys.argv[1] if len(sys.argv) > 1 else "test"
model = pathlib.Path(os.environ.get("GART_INPUT_MODEL", "models")) / "model.txt"
data = pathlib.Path(os.environ.get("GART_INPUT_RAW_IMAGES", "data"))
assert model.read_text().startswith("trained on 6 files"), model.read_text()
count = sum(1 for p in data.rglob("*") if p.is_file())
out = pathlib.Path("metrics")
out.mkdir(exist_ok=True)
(out / f"{split}.json").write_text(f'{{"split": "{split}", "files": {count}}}\\n')
print(f"{split}: {count} files")
"""


def code_blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of every fenced code block."""
    return [(m.group(1), m.group(2))
            for m in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.M | re.S)]


def recipes() -> dict[str, Any]:
    """Every workflow of docs/ci.md, by the file name on its first line."""
    found: dict[str, Any] = {}
    for lang, body in code_blocks(DOC.read_text(encoding="utf-8")):
        first = body.splitlines()[0] if body else ""
        if lang == "yaml" and first.startswith(("# .github/workflows/", "# .gitlab-ci.yml")):
            found[first[2:].strip()] = yaml.safe_load(body)
    return found


def setup_script() -> str:
    blocks = [body for lang, body in code_blocks(DOC.read_text(encoding="utf-8"))
              if lang == "sh" and body.startswith("# once, on a laptop")]
    assert len(blocks) == 1
    return blocks[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def git_daemon(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A `git daemon` on loopback serving (and accepting pushes to) repositories in a dir."""
    base = tmp_path / "served"
    base.mkdir()
    port = free_port()
    proc = subprocess.Popen(
        ["git", "daemon", "--reuseaddr", "--listen=127.0.0.1", f"--port={port}",
         f"--base-path={base}", "--export-all", "--enable=receive-pack",
         "--informative-errors", str(base)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        for _attempt in range(400):  # wait until it listens (polling, not timing)
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, "git daemon exited"
                time.sleep(0.05)
        yield base, f"git://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


class Runner:
    """Runs recipe shell steps the way a CI runner would, in fresh shallow clones."""

    def __init__(self, tmp: Path, origin_url: str, endpoint: str) -> None:
        self.tmp, self.url, self.endpoint = tmp, origin_url, endpoint
        self.shims = tmp / "shims"
        self.shims.mkdir()
        for name, body in {
            "gart": f'exec {sys.executable} -m gitartifacts "$@"',
            "python": f'exec {sys.executable} "$@"',
            "pip": 'echo "pip (test runner): $* - already installed"',
        }.items():
            path = self.shims / name
            path.write_text(f"#!/bin/sh\n{body}\n")
            path.chmod(0o755)
        self.jobs = 0
        self.ran: set[str] = set()

    def base_env(self) -> dict[str, str]:
        keep = ("PYTHONPATH", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
        env = {k: os.environ[k] for k in keep if k in os.environ}
        env.update({
            "PATH": f"{self.shims}:{os.environ['PATH']}", "HOME": str(self.tmp / "home"),
            "GIT_CONFIG_NOSYSTEM": "1", "AWS_CONFIG_FILE": "/nonexistent/aws-config",
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
            "AWS_DEFAULT_REGION": "us-east-1", "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost", "CI": "true",
        })
        return env

    def context(self, matrix: dict[str, str]) -> dict[str, str]:
        return {"secrets.AWS_ACCESS_KEY_ID": KEY_ID, "secrets.AWS_SECRET_ACCESS_KEY": SECRET,
                "vars.S3_ENDPOINT_URL": self.endpoint,
                **{f"matrix.{k}": v for k, v in matrix.items()}}

    @staticmethod
    def substitute(text: str, context: dict[str, str]) -> str:
        def one(match: re.Match[str]) -> str:
            key = match.group(1)
            assert key in context, f"docs/ci.md uses ${{{{ {key} }}}}, unknown to the test"
            return context[key]

        return re.sub(r"\$\{\{\s*([\w.]+)\s*\}\}", one, text)

    def clone(self, branch: str | None = None) -> Path:
        self.jobs += 1
        dest = self.tmp / f"job{self.jobs}"
        args = ["clone", "-q", "--depth", "1", "--no-tags",
                *(["--branch", branch] if branch else []), f"{self.url}/project.git", str(dest)]
        git(self.tmp, *args)
        assert "@" not in git(dest, "tag")  # as actions/checkout and GIT_DEPTH: no gart tags
        return dest

    def sh(self, script: str, cwd: Path, env: dict[str, str], what: str) -> str:
        done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
                              cwd=cwd, env=env, capture_output=True, text=True, check=False,
                              timeout=600)
        assert done.returncode == 0, (f"{what} failed ({done.returncode}):\n{script}\n"
                                      f"--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}")
        assert "Traceback" not in done.stderr, done.stderr
        return done.stdout

    def github(self, workflow: str, job: str, branch: str | None = None,
               extra: dict[str, str] | None = None) -> list[str]:
        spec = recipes()[workflow]["jobs"][job]
        matrix = (spec.get("strategy") or {}).get("matrix") or {"": [""]}
        (axis, values), = matrix.items()
        outputs = []
        for value in values:
            context = self.context({axis: str(value)} if axis else {})
            env = {**self.base_env(), "GITHUB_RUN_ID": str(1000 + self.jobs),
                   "GITHUB_REF_NAME": branch or "main", **(extra or {})}
            env.update({k: self.substitute(str(v), context)
                        for k, v in (spec.get("env") or {}).items()})
            cwd = self.clone(branch)
            for step in spec["steps"]:
                if "uses" in step:
                    continue  # checkout: done above; setup-python: this interpreter
                outputs.append(self.sh(self.substitute(step["run"], context), cwd, env,
                                       f"{workflow}:{job}"))
        self.ran.add(workflow)
        return outputs

    def gitlab(self, job: str, endpoint_in_settings: bool = True) -> str:
        pipeline = recipes()[".gitlab-ci.yml"]
        spec = pipeline[job]
        env = {**self.base_env(), "CI_JOB_ID": str(2000 + self.jobs)}
        env.update({k: str(v) for k, v in (pipeline.get("variables") or {}).items()})
        env.update({k: str(v) for k, v in (spec.get("variables") or {}).items()})
        # What the page says to set under Settings > CI/CD > Variables:
        env.update({"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET,
                    "GART_REMOTE_STORAGE_ENDPOINT_URL": self.endpoint})
        cwd = self.clone()
        script = "\n".join([*spec.get("before_script", []), *spec["script"]])
        self.ran.add(".gitlab-ci.yml")
        return self.sh(script, cwd, env, f".gitlab-ci.yml:{job}")


def test_ci_recipes_run(git_daemon: tuple[Path, str], s3: S3Bucket, tmp_path: Path,
                        git_env: None) -> None:
    served, url = git_daemon
    s3.server.create_bucket(BUCKET)
    git(served, "init", "-q", "--bare", "-b", "main", "project.git")
    runner = Runner(tmp_path, url, s3.endpoint)

    # The one-time setup, on a laptop (the laptop's user has a git identity).
    laptop = tmp_path / "laptop"
    git(tmp_path, "clone", "-q", f"{url}/project.git", str(laptop))
    for name, body in {"prepare.py": PREPARE, "train.py": TRAIN,
                       "evaluate.py": EVALUATE}.items():
        (laptop / name).write_text(body)
    laptop_env = {**runner.base_env(), **{k: os.environ[k] for k in os.environ
                                          if k.startswith(("GIT_AUTHOR", "GIT_COMMITTER"))}}
    runner.sh(setup_script(), laptop, laptop_env, "setup")

    runner.github(".github/workflows/data.yml", "publish")
    out = runner.github(".github/workflows/train.yml", "train")
    assert "published model@v0" in "".join(out)
    git(served / "project.git", "tag", "release-1", "main")  # a developer tags a release
    out = runner.github(".github/workflows/promote.yml", "promote", branch="release-1")
    assert "release release-1: model@production -> v0" in "".join(out)
    runner.github(".github/workflows/eval-matrix.yml", "evaluate")
    runner.gitlab("gate")
    out = runner.gitlab("eval")
    assert "test: 6 files" in out

    assert runner.ran == set(recipes()), "every workflow in docs/ci.md must be run here"
    tags = git(served / "project.git", "tag").split()
    for tag in ("raw-images@v0", "raw-images@production", "model@v0", "model@staging",
                "model@production", "metrics-val@v0", "metrics-test@v0"):
        assert tag in tags
    # Nothing secret, and not even the endpoint, was committed anywhere.
    final = tmp_path / "final"
    git(tmp_path, "clone", "-q", f"{url}/project.git", str(final))
    for path in final.rglob("*"):
        if path.is_file() and ".git" not in path.parts:
            text = path.read_text(errors="replace")
            assert SECRET not in text and KEY_ID not in text and s3.endpoint not in text
    shutil.rmtree(final)
