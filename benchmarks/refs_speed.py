"""Issue 12's speed targets for references, against moto's S3 on loopback:

- `gart add --ref s3://bucket/prefix/` of 10,000 objects: <= 5 s, in O(listing pages) requests
  (no HEAD per object);
- `gart status --check-refs` of them: likewise.

Both on an unversioned and a versioned bucket. Prints figures and request counts; asserts
nothing about time (run it on an idle machine).

    python benchmarks/refs_speed.py [--objects 10000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from s3_server import S3Server, s3_environment  # noqa: E402

GART = [sys.executable, "-m", "gitartifacts"]


def run(cwd: Path, *args: str) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run([*GART, *args], cwd=cwd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise SystemExit(f"gart {' '.join(args)} failed: {done.stderr}")
    return elapsed, done.stdout + done.stderr


def fill(server: S3Server, bucket: str, count: int, versioned: bool) -> None:
    server.create_bucket(bucket, versioned=versioned)
    client = server._make_client()

    def put(i: int) -> None:
        client.put_object(Bucket=bucket, Key=f"images/{i % 100:02d}/img{i:06d}.jpg",
                          Body=f"image {i}".encode())

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, range(count)))
    server.take()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--objects", type=int, default=10_000)
    args = parser.parse_args()
    os.environ.update(s3_environment())
    server = S3Server()
    work = Path(tempfile.mkdtemp(prefix="gart-refs-bench-"))
    try:
        repo = work / "repo"
        repo.mkdir()
        for git_args in (["init", "-q", "-b", "main"], ["config", "user.name", "Bench"],
                         ["config", "user.email", "bench@example.com"]):
            subprocess.run(["git", *git_args], cwd=repo, check=True)
        run(repo, "init")
        print(f"{args.objects:,} objects per bucket on moto at {server.endpoint}")
        for bucket, versioned in (("refs-plain", False), ("refs-versioned", True)):
            start = time.perf_counter()
            fill(server, bucket, args.objects, versioned)
            print(f"\n{bucket} ({'versioned' if versioned else 'unversioned'}): filled in "
                  f"{time.perf_counter() - start:.1f} s")
            run(repo, "remote", "add", bucket, f"s3://{bucket}")
            run(repo, "remote", "modify", bucket, "endpoint_url", server.endpoint)
            server.take()
            for label, command in (
                ("gart add --ref", ["add", "--ref", f"s3://{bucket}/images/", "--name", bucket,
                                    "--max-objects", str(args.objects)]),
                ("gart status --check-refs", ["status", bucket, "--check-refs"]),
            ):
                elapsed, output = run(repo, *command)
                requests = server.take()
                methods = Counter(r.method for r in requests)
                pages = sum(1 for r in requests if "list-type=2" in r.query
                            or "versions" in r.query)
                print(f"  {label:<26} {elapsed:6.2f} s  {len(requests)} requests "
                      f"({', '.join(f'{k} {v}' for k, v in sorted(methods.items()))}; "
                      f"{pages} listing pages; HEAD per object: "
                      f"{'no' if methods['HEAD'] <= 1 else 'YES'})  target <= 5 s")
                if label.startswith("gart status") and "0 changed" not in output and \
                        f"{args.objects} ok" not in output:
                    print("    unexpected:", output.strip()[:200])
    finally:
        server.close()
        import shutil

        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
