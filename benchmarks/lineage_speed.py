"""Time loading 10,000 run records from a warm index and one graph query over them
(targets: 0.5 s, 0.3 s). tests/test_lineage.py checks the same path for correctness only."""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from datasets import run_record

from gitartifacts.lineage import LineageGraph, load_runs

WARM_LOAD_LIMIT_S = 0.5
GRAPH_LIMIT_S = 0.3
OLD = 1_600_000_000  # a fixed past mtime: no record is inside the racy-timestamp window


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gart-lineage-bench-") as tmp:
        runs_dir, index = Path(tmp) / "runs", Path(tmp) / "index.json"
        runs_dir.mkdir()
        for i in range(args.runs):
            run_id, text = run_record(i)
            path = runs_dir / f"{run_id}.yaml"
            path.write_text(text, encoding="utf-8")
            os.utime(path, (OLD, OLD))
        cold = timed(lambda: load_runs(runs_dir, index))
        runs, errors = load_runs(runs_dir, index)
        assert len(runs) == args.runs and errors == [], errors[:3]
        warm = statistics.median(
            timed(lambda: load_runs(runs_dir, index)) for _ in range(args.repeat)
        )
        version = args.runs // 6  # a model in the middle of the history
        digest = "sha256:" + hashlib.sha256(f"model@v{version}".encode()).hexdigest()
        nodes: list[int] = []
        graph = statistics.median(
            timed(lambda: nodes.append(len(LineageGraph(runs).around("model", digest).nodes)))
            for _ in range(args.repeat)
        )
    print(f"{args.runs} run records, median of {args.repeat}:")
    print(f"  cold load (parse every file): {cold:.3f} s")
    print(f"  warm load (index):            {warm:.3f} s  target < {WARM_LOAD_LIMIT_S} s  "
          f"{'pass' if warm < WARM_LOAD_LIMIT_S else 'FAIL'}")
    print(f"  graph + lineage of model@v{version} ({nodes[0]} nodes): {graph:.3f} s  "
          f"target < {GRAPH_LIMIT_S} s  {'pass' if graph < GRAPH_LIMIT_S else 'FAIL'}")


if __name__ == "__main__":
    main()
