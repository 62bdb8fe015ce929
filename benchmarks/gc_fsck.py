"""Benchmark `gart gc --remote` and `gart fsck --remote --sample 5%` against the moto S3 endpoint.

    python benchmarks/gc_fsck.py [--files 20000] [--versions 50] [--change 200]

Builds one artifact of FILES small files, publishes VERSIONS versions (each changes CHANGE
files) to an S3 remote served by moto on 127.0.0.1 (tests/s3_server.py), then times the real
`gart` commands and counts their S3 requests. Prints figures; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from s3_server import ACCESS_KEY, REGION, SECRET_KEY, S3Server  # noqa: E402


def sh(cwd: Path, *args: str) -> str:
    return subprocess.run(args, cwd=cwd, check=True, capture_output=True, text=True).stdout


def gart(cwd: Path, *args: str) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "gitartifacts", "-q", *args], cwd=cwd,
                          capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise SystemExit(f"gart {' '.join(args)} failed: {done.stderr}")
    return elapsed, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--versions", type=int, default=50)
    parser.add_argument("--change", type=int, default=200)
    args = parser.parse_args()
    os.environ.update(AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY,
                      AWS_DEFAULT_REGION=REGION, GIT_AUTHOR_NAME="b", GIT_COMMITTER_NAME="b",
                      GIT_AUTHOR_EMAIL="b@b", GIT_COMMITTER_EMAIL="b@b")
    server = S3Server()
    server.create_bucket("bench")
    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        sh(base, "git", "init", "-q", "--bare", "-b", "main", "origin.git")
        work = base / "work"
        work.mkdir()
        sh(work, "git", "init", "-q", "-b", "main")
        sh(work, "git", "remote", "add", "origin", "../origin.git")
        data = work / "data"
        for i in range(args.files):
            path = data / f"d{i % 100:02d}" / f"f{i:05d}.bin"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(rng.randbytes(rng.randint(200, 3000)))
        gart(work, "init")
        gart(work, "remote", "add", "storage", "s3://bench/gart", "--default")
        gart(work, "remote", "modify", "storage", "endpoint_url", server.endpoint)
        built = time.perf_counter()
        for version in range(args.versions):
            if version:
                for i in rng.sample(range(args.files), args.change):
                    path = data / f"d{i % 100:02d}" / f"f{i:05d}.bin"
                    path.write_bytes(rng.randbytes(rng.randint(200, 3000)))
            gart(work, "add", "data", "--name", "big")
            sh(work, "git", "add", "-A")
            sh(work, "git", "commit", "-q", "-m", f"v{version}")
            gart(work, "push")
        sh(work, "git", "push", "-q", "origin", "main")
        print(f"setup: {args.versions} versions of {args.files} files "
              f"({args.change} changed per version) in {time.perf_counter() - built:.1f} s")

        def measure(label: str, *command: str) -> None:
            server.take()
            elapsed, out = gart(work, *command)
            requests = Counter(r.method for r in server.take())
            print(f"{label:42s} {elapsed:6.2f} s  {sum(requests.values()):5d} requests "
                  f"{dict(requests)}")

        measure("gart fsck --remote --sample 5%", "fsck", "--remote", "--sample", "5%")
        measure("gart gc --remote --dry-run (all kept)", "gc", "--remote", "--dry-run")
        measure("gart gc --remote --grace 0 (all kept)", "gc", "--remote", "--grace", "0")
        measure("gart gc --remote --keep-versions 5 --grace 0", "gc", "--remote",
                "--keep-versions", "5", "--grace", "0")
        measure("gart fsck --remote --sample 5% (after gc)", "fsck", "--remote", "--sample",
                "5%")
        measure("gart fsck --remote (everything)", "fsck", "--remote")
    server.close()


if __name__ == "__main__":
    main()
