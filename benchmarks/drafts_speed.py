"""Drafts and distributed versions against S3 (moto, in this process): issue 11's targets.

- Incremental: a published 20,000-file version; in a fresh clone (manifests and tags only),
  `gart add 10 files --incremental --publish` -> S3 requests (target <= 10) and time (target
  <= 1 s plus the git push); `gart rm` of one file (target <= 0.5 s).
- Distributed: 8 workers x 2,500 small files, each `gart upsert` in its own shallow clone
  (target <= 2 s each, requests independent of the file count), then `gart finish` (target
  <= 2 s plus the git push).

Each `gart` is a real child process (start-up included). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))

ENV = {
    **os.environ,
    "PYTHONPATH": str(ROOT),
    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": "/nonexistent",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost", "GIT_AUTHOR_NAME": "Bench", "GIT_AUTHOR_EMAIL": "b@x",
    "GIT_COMMITTER_NAME": "Bench", "GIT_COMMITTER_EMAIL": "b@x", "GART_QUIET": "1",
}


def sh(cwd: Path, *args: str) -> str:
    done = subprocess.run(list(args), cwd=cwd, env=ENV, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed in {cwd}:\n{done.stderr}")
    return done.stdout


def gart(cwd: Path, *args: str) -> float:
    start = time.perf_counter()
    sh(cwd, sys.executable, "-m", "gitartifacts", *args)
    return time.perf_counter() - start


def make_files(root: Path, count: int, seed: int, dirs: int = 100) -> None:
    rng = random.Random(seed)
    for i in range(count):
        path = root / f"d{i % dirs:03d}" / f"f{seed}-{i:06d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(rng.randint(64, 1024)))


def counted(requests: list[Any]) -> str:
    by = Counter(r.method for r in requests)
    return f"{len(requests)} requests ({', '.join(f'{m} {n}' for m, n in sorted(by.items()))})"


def git_push_time(clone: Path) -> float:
    """One `git push` of a small ref to the bare origin: the unit "plus the git push" means."""
    sha = sh(clone, "git", "rev-parse", "HEAD").strip()
    start = time.perf_counter()
    sh(clone, "git", "push", "-q", "origin", f"{sha}:refs/bench/probe")
    took = time.perf_counter() - start
    sh(clone, "git", "push", "-q", "origin", ":refs/bench/probe")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--per-worker", type=int, default=2_500)
    args = parser.parse_args()
    from s3_server import S3Server

    server = S3Server()
    server.create_bucket("bench")
    work = Path(tempfile.mkdtemp(prefix="gart-drafts-bench-"))
    try:
        origin = work / "origin.git"
        sh(work, "git", "init", "-q", "--bare", "-b", "main", str(origin))
        repo = work / "repo"
        repo.mkdir()
        sh(repo, "git", "init", "-q", "-b", "main")
        sh(repo, "git", "remote", "add", "origin", str(origin))
        gart(repo, "init")
        gart(repo, "remote", "add", "storage", "s3://bench/gart", "--default")
        gart(repo, "remote", "modify", "storage", "endpoint_url", server.endpoint)
        make_files(repo / "data", args.files, seed=1)
        gart(repo, "add", "data", "--name", "data")
        sh(repo, "git", "add", "-A")
        sh(repo, "git", "commit", "-q", "-m", "data")
        gart(repo, "push")
        sh(repo, "git", "push", "-q", "origin", "HEAD:main")
        server.take()
        print(f"{args.files:,} small files published as data@v0 to moto S3; "
              f"{os.cpu_count()} cpus")

        # -- incremental --------------------------------------------------------------
        clone = work / "clone"
        sh(work, "git", "clone", "-q", str(origin), str(clone))
        push_unit = git_push_time(clone)
        print(f"  one git push of a ref to the bare origin: {push_unit:.3f} s")
        make_files(work / "batch", 10, seed=2, dirs=1)
        took = gart(clone, "add", str(work / "batch"), "--name", "data", "--incremental",
                    "--prefix", "new/", "--publish")
        requests = server.take()
        print(f"  fresh clone: add 10 files --incremental --publish: {took:.3f} s, S3: "
              f"{counted(requests)}  (targets: <= 10 requests, <= 1 s + git push)")
        clone2 = work / "clone2"
        sh(work, "git", "clone", "-q", str(origin), str(clone2))
        took = gart(clone2, "rm", "data", "d000/f1-000000.bin")
        print(f"  fresh clone: gart rm of one file: {took:.3f} s, S3: "
              f"{counted(server.take())}  (target <= 0.5 s)")
        took = gart(clone2, "rm", "data", "d001/f1-000001.bin")
        print(f"  same clone, a second gart rm: {took:.3f} s")

        # -- distributed ---------------------------------------------------------------
        sh(repo, "git", "add", "-A")
        sh(repo, "git", "commit", "-q", "-m", "config", "--allow-empty")
        sh(repo, "git", "push", "-q", "origin", "HEAD:main")
        jobs = []
        for i in range(args.workers):
            clone_i = work / "jobs" / f"w{i}"
            clone_i.parent.mkdir(exist_ok=True)
            sh(work, "git", "clone", "-q", "--depth", "1", f"file://{origin}", str(clone_i))
            make_files(work / "shards" / f"s{i}", args.per_worker, seed=100 + i, dirs=10)
            jobs.append(clone_i)
        server.take()
        print(f"{args.workers} workers x {args.per_worker:,} small files, one at a time "
              "(2 cores: run serially so each upsert is timed alone)")
        for i, clone_i in enumerate(jobs):
            took = gart(clone_i, "upsert", str(work / "shards" / f"s{i}"), "--name", "ingest",
                        "--distributed-id", "d1", "--prefix", f"s{i}", "--job", f"w{i}")
            print(f"  upsert w{i}: {took:.3f} s, S3: {counted(server.take())}  (target <= 2 s)")
        finisher = work / "jobs" / "finisher"
        sh(work, "git", "clone", "-q", "--depth", "1", f"file://{origin}", str(finisher))
        server.take()
        took = gart(finisher, "finish", "--name", "ingest", "--distributed-id", "d1")
        print(f"  finish ({args.workers * args.per_worker:,} files): {took:.3f} s, S3: "
              f"{counted(server.take())}  (target <= 2 s + git push; it pushes 4 times: "
              f"claim, tag, finished, part removal ~ {4 * push_unit:.2f} s)")
    finally:
        server.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
