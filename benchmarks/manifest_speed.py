"""Time writing and strictly reading a manifest of 100,000 entries (targets: 0.5 s, 0.3 s)."""

from __future__ import annotations

import argparse
import random
import statistics
import time

from gitartifacts.manifest import Entry, Manifest, dumps, loads

WRITE_LIMIT_S = 0.5
LOAD_LIMIT_S = 0.3


def build(count: int, seed: int = 0) -> Manifest:
    rng = random.Random(seed)
    entries = tuple(
        Entry(f"d{i % 200:03d}/f{i:06d}.bin", rng.randbytes(32).hex(), rng.randint(1024, 8192))
        for i in range(count)
    )
    return Manifest(name="bench", type="dataset", path="data", entries=entries)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    writes, loads_ = [], []
    for i in range(args.repeat):
        manifest = build(args.entries, seed=i)  # fresh object: no cached file list or digest
        start = time.perf_counter()
        text = dumps(manifest)
        writes.append(time.perf_counter() - start)
        start = time.perf_counter()
        loaded = loads(text)
        loads_.append(time.perf_counter() - start)
        assert loaded.digest == manifest.digest
    write, load = statistics.median(writes), statistics.median(loads_)
    print(f"manifest of {args.entries} entries ({len(text) / 2**20:.1f} MiB), "
          f"median of {args.repeat}:")
    print(f"  write (canonical dump): {write:.3f} s  target < {WRITE_LIMIT_S} s  "
          f"{'pass' if write < WRITE_LIMIT_S else 'FAIL'}")
    print(f"  load (strict parse):    {load:.3f} s  target < {LOAD_LIMIT_S} s  "
          f"{'pass' if load < LOAD_LIMIT_S else 'FAIL'}")


if __name__ == "__main__":
    main()
