"""W&B front door vs the CLI's, on 20,000 small files, no remote (issue 10's speed targets).

- `run.log_artifact(path)` (hash, cache, manifest, commit, tag) vs `Repo.add` (hash, cache,
  manifest) of the same files, cold and again with a warm hash state: target <= 1.5x;
- `ArtifactVersion.download()` of a cached version vs `Repo.pull(..., to=DIR)`: target <= 1x.

Prints figures; asserts nothing about time (run it on an idle machine, compare ratios).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def make_files(root: Path, count: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    for i in range(count):
        path = root / f"d{i % 200:03d}" / f"f{i:06d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(rng.randint(1024, 8192)))


def new_repo(where: Path, count: int) -> Path:
    from gitartifacts.api import Repo

    where.mkdir(parents=True)
    for args in (["init", "-q", "-b", "main"], ["config", "user.name", "Bench"],
                 ["config", "user.email", "bench@example.com"]):
        subprocess.run(["git", *args], cwd=where, check=True)
    Repo.init(where)
    subprocess.run(["git", "commit", "-qm", "gart init"], cwd=where, check=True)
    make_files(where / "data", count)
    return where


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=20_000)
    args = parser.parse_args()
    import gitartifacts as wandb
    from gitartifacts.api import Repo

    work = Path(tempfile.mkdtemp(prefix="gart-wandb-bench-"))
    here = os.getcwd()
    try:
        cli_repo = new_repo(work / "cli", args.files)
        api_repo = new_repo(work / "api", args.files)
        add_cold, _ = timed(lambda: Repo(cli_repo).add([cli_repo / "data"], name="data"))
        os.chdir(api_repo)
        with wandb.init(job_type="bench") as run:
            log_cold, logged = timed(lambda: run.log_artifact("data", name="data"))
            # Warm: one file changed, every other digest comes from the hash state.
            (api_repo / "data" / "d000" / "f000000.bin").write_bytes(b"changed")
            (cli_repo / "data" / "d000" / "f000000.bin").write_bytes(b"changed")
            add_warm, _ = timed(lambda: Repo(cli_repo).add([cli_repo / "data"], name="data"))
            log_warm, logged = timed(lambda: run.log_artifact("data", name="data"))
        download, root = timed(lambda: logged.download())
        again, _ = timed(lambda: logged.download())
        # Both write every file from the cache into an empty directory; alternated, best of 3,
        # since file creation dominates and a shared machine is noisy.
        pulls, downloads = [], []
        for i in range(3):
            pulls.append(timed(lambda i=i: Repo(api_repo).pull(
                [logged.manifest], to=work / f"pulled{i}"))[0])
            downloads.append(timed(lambda i=i: logged.download(root=work / f"dl{i}"))[0])
        pull, download_fresh = min(pulls), min(downloads)
        del root
        rows = [
            ("log_artifact cold", log_cold, "gart add cold", add_cold, 1.5),
            ("log_artifact, 1 file changed", log_warm, "gart add, 1 file changed", add_warm, 1.5),
            ("download() of the cached version", download_fresh, "pull --to of it", pull, 1.0),
        ]
        print(f"{args.files:,} small files, no remote, {os.cpu_count()} cpus")
        for mine, mine_s, theirs, theirs_s, target in rows:
            ratio = mine_s / theirs_s
            verdict = "pass" if ratio <= target else "FAIL"
            print(f"  {mine:<34} {mine_s:7.3f} s  vs {theirs:<26} {theirs_s:7.3f} s  "
                  f"ratio {ratio:5.2f} (target <= {target}) {verdict}")
        print(f"  second download() (nothing to write): {again:7.3f} s; first into the "
              f"working dir: {download:7.3f} s")
    finally:
        os.chdir(here)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
