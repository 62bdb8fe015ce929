"""Where the floor of a chunked add is on this machine: the `dd conv=fsync` disk floor of
issue 15 beside the CPU floor of the work the chunk format requires (two sha256 passes —
the file's oid and every chunk's oid — and FastCDC), over the `large` dataset's bytes.

The CPU floor is measured in memory, on as many threads as the machine has cores (hashlib
and pyfastcdc release the GIL), with no I/O and no interpreter start-up: no implementation
of the format can add the files faster on this machine. Prints one table; asserts nothing.

    python benchmarks/chunk_floor.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import datasets  # noqa: E402

from gitartifacts.chunking import _cdc  # noqa: E402

WINDOW = 16 << 20


def files_in_memory(root: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()]


def dd_floor(root: Path, work: Path) -> float:
    """`dd conv=fsync` of every file, as benchmarks/bench.py measures it."""
    out = Path(tempfile.mkdtemp(prefix="dd-", dir=work))
    os.sync()
    start = time.perf_counter()
    for i, path in enumerate(sorted(p for p in root.rglob("*") if p.is_file())):
        subprocess.run(["dd", f"if={path}", f"of={out / str(i)}", "bs=4M", "conv=fsync",
                        "status=none"], check=True)
    elapsed = time.perf_counter() - start
    for child in out.iterdir():
        child.unlink()
    out.rmdir()
    return elapsed


def whole_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def chunk_hashes(data: bytes) -> int:
    view = memoryview(data)
    cdc = _cdc(64 << 10)
    return sum(1 for chunk in cdc.cut_buf(view) if hashlib.sha256(chunk.data).digest())


def cpu_floor(blobs: list[bytes], threads: int) -> float:
    """Both passes of every file, as parallel as the cores allow."""
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        jobs = [pool.submit(whole_hash, b) for b in blobs]
        jobs += [pool.submit(chunk_hashes, b) for b in blobs]
        for job in jobs:
            job.result()
    return time.perf_counter() - start


def one_pass(blobs: list[bytes], threads: int) -> float:
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(whole_hash, blobs))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--work-dir", default=os.environ.get("GART_BENCH_WORK",
                                                             "/tmp/gart-bench-work"))
    args = parser.parse_args()
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    root = datasets.ensure("large")
    blobs = files_in_memory(root)
    cores = os.cpu_count() or 1
    rows = {
        "dd conv=fsync (disk floor)": [dd_floor(root, work) for _ in range(args.repeat)],
        "one sha256 pass (a loose file)": [one_pass(blobs, cores) for _ in range(args.repeat)],
        "two sha256 passes + FastCDC (chunks)": [cpu_floor(blobs, cores)
                                                 for _ in range(args.repeat)],
    }
    size = sum(len(b) for b in blobs) >> 20
    print(f"{len(blobs)} files, {size} MiB, {cores} cores, medians of {args.repeat}")
    for label, times in rows.items():
        print(f"  {label:<40} {statistics.median(times):6.3f} s")


if __name__ == "__main__":
    main()
