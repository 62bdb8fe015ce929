"""Fixed-seed benchmark datasets, generated once into a cache dir and copied per run."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

DEFAULT_DATA_DIR = Path(os.environ.get("GART_BENCH_DATA", "/tmp/gart-bench-data"))
CHUNK = 4 << 20  # big files are written in 4 MiB pieces so memory stays flat


@dataclass(frozen=True)
class DatasetSpec:
    """Shape of one dataset; any change to a field regenerates its cache."""

    files: int
    folders: int
    min_size: int
    max_size: int
    seed: int

    def layout(self) -> list[tuple[str, int]]:
        """Relative paths and sizes, deterministic for the spec."""
        rng = random.Random(self.seed)
        per = max(1, -(-self.files // self.folders))  # ceil: every folder but the last is full
        out = []
        for i in range(self.files):
            size = rng.randint(self.min_size, self.max_size)
            out.append((f"d{i // per:04d}/f{i:06d}.bin", size))
        return out


SPECS: dict[str, DatasetSpec] = {
    # 20,000 files of 1-8 KiB in 200 folders: the many-small-files case.
    "small": DatasetSpec(files=20_000, folders=200, min_size=1024, max_size=8192, seed=1),
    # 2 x 256 MiB: the throughput case.
    "large": DatasetSpec(files=2, folders=1, min_size=256 << 20, max_size=256 << 20, seed=2),
    # 2,000 small files: S3 against moto, where every object is a request.
    "s3small": DatasetSpec(files=2_000, folders=20, min_size=1024, max_size=8192, seed=3),
    # One 1 GiB file: new versions after 1% edits (append, overwrite, insert).
    "huge": DatasetSpec(files=1, folders=1, min_size=1 << 30, max_size=1 << 30, seed=5),
    # 100,000 tiny files: peak memory of `gart add`.
    "tiny": DatasetSpec(files=100_000, folders=1_000, min_size=1, max_size=64, seed=4),
}


def _write(path: Path, size: int, rng: random.Random) -> None:
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, CHUNK)
            f.write(rng.randbytes(n))
            left -= n


def ensure(name: str, data_dir: Path = DEFAULT_DATA_DIR) -> Path:
    """Return the cached dataset directory, generating it first if missing or stale."""
    spec = SPECS[name]
    root = data_dir / name
    marker = data_dir / f"{name}.done"  # outside root, so it is never copied into a repo
    stamp = json.dumps(asdict(spec), sort_keys=True)
    if root.is_dir() and marker.is_file() and marker.read_text() == stamp:
        return root
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = data_dir / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(root, ignore_errors=True)
    marker.unlink(missing_ok=True)
    # Content comes from a second stream so the layout stays stable if content changes.
    rng = random.Random(spec.seed * 1_000_003)
    for rel, size in spec.layout():
        p = tmp / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        _write(p, size, rng)
    tmp.rename(root)
    marker.write_text(stamp)
    return root


def copy_into(name: str, dest: Path, data_dir: Path = DEFAULT_DATA_DIR) -> None:
    """Copy a cached dataset to dest (must not exist); cp -a beats shutil on 100k files."""
    src = ensure(name, data_dir)
    subprocess.run(["cp", "-a", str(src), str(dest)], check=True)


def edit_one(root: Path, edit: str, share: float = 0.01, seed: int = 7) -> None:
    """Edit the one file under `root` in place: append `share` of its size ("append"),
    overwrite `share` of it at 10 scattered offsets ("overwrite"), or insert 1 MiB in its
    middle ("insert")."""
    (path,) = [p for p in root.rglob("*") if p.is_file()]
    rng = random.Random(seed)
    size = path.stat().st_size
    if edit == "append":
        with open(path, "ab") as f:
            f.write(rng.randbytes(int(size * share)))
    elif edit == "overwrite":
        piece = int(size * share) // 10
        with open(path, "r+b") as f:
            for i in range(10):
                f.seek(i * size // 10 + 12345)
                f.write(rng.randbytes(piece))
    elif edit == "insert":
        tmp = path.with_name(path.name + ".new")
        with open(path, "rb") as src, open(tmp, "wb") as dst:
            left = size // 2
            while left:
                data = src.read(min(CHUNK, left))
                dst.write(data)
                left -= len(data)
            dst.write(rng.randbytes(1 << 20))
            shutil.copyfileobj(src, dst, length=CHUNK)
        os.replace(tmp, path)
    else:
        raise ValueError(f"unknown edit {edit!r}")


def rewrite_fraction(root: Path, every: int = 100, seed: int = 99) -> int:
    """Rewrite every `every`-th file (sorted order) with new random content; return count."""
    rng = random.Random(seed)
    files = sorted(p for p in root.rglob("*") if p.is_file())
    n = 0
    for p in files[::every]:
        size = rng.randint(1024, 8192)
        with open(p, "wb") as f:
            f.write(rng.randbytes(size))
        n += 1
    return n


def fingerprint(root: Path) -> dict[str, str]:
    """Map relative path -> sha256 of every file under root, to check that a pull is whole."""
    out = {}
    for p in root.rglob("*"):
        if p.is_file():
            h = hashlib.sha256()
            with open(p, "rb") as f:
                for block in iter(lambda: f.read(CHUNK), b""):
                    h.update(block)
            out[p.relative_to(root).as_posix()] = h.hexdigest()
    return out


def compare(expected: dict[str, str], root: Path) -> str | None:
    """None when root holds exactly the expected files, else a one-line difference."""
    if not root.is_dir():
        return f"{root} missing"
    got = fingerprint(root)
    missing = expected.keys() - got.keys()
    extra = got.keys() - expected.keys()
    differ = [k for k in expected.keys() & got.keys() if expected[k] != got[k]]
    if not (missing or extra or differ):
        return None
    return f"{len(missing)} missing, {len(extra)} extra, {len(differ)} differ"


RUN_BASE = datetime(2026, 11, 27, 22, 15, tzinfo=timezone.utc)


def run_record(i: int, digests: Mapping[tuple[str, int], str] | None = None) -> tuple[str, str]:
    """Return (run id, YAML text) of the i-th synthetic run record.

    Runs form chains prepare(raw -> features) -> train(features -> model) ->
    evaluate(model -> metrics), so run 3*k+1 produced model@v<k> and lineage of
    model@v2 has one producer upstream and one consumer downstream. `digests` gives
    real digests for (name, version) pairs that exist as published versions; all
    others get a stand-in derived from name and version.
    """
    stage, v = i % 3, i // 3
    job, (iname, iver), (oname, over) = (
        ("prepare", ("raw", v // 100), ("features", v)),
        ("train", ("features", v), ("model", v)),
        ("evaluate", ("model", v), ("metrics", v)),
    )[stage]
    started = RUN_BASE + timedelta(minutes=i)
    ended = started + timedelta(minutes=1)
    run_id = f"{started:%Y%m%dT%H%M%SZ}-{i % 10000:04d}"

    def digest(name: str, ver: int) -> str:
        if digests and (name, ver) in digests:
            return digests[(name, ver)]
        return "sha256:" + hashlib.sha256(f"{name}@v{ver}".encode()).hexdigest()

    record = {
        "gart": 1, "id": run_id, "name": f"{job}-{v}", "job_type": job, "status": "finished",
        "command": ["python", f"{job}.py"], "git_commit": "0" * 40, "git_dirty": False,
        "user": "bench", "host": "bench", "started": f"{started:%Y-%m-%dT%H:%M:%SZ}",
        "ended": f"{ended:%Y-%m-%dT%H:%M:%SZ}", "exit_code": 0,
        "inputs": [{"name": iname, "version": f"v{iver}", "requested": f"v{iver}",
                    "digest": digest(iname, iver), "path": iname}],
        "outputs": [{"name": oname, "version": f"v{over}", "requested": None,
                     "digest": digest(oname, over), "path": oname}],
    }
    # The shape gart's own writer produces (runrecord.dump_record): JSON-style YAML.
    text = json.dumps(record, indent=1) + "\n"
    return run_id, text


def write_runs(
    runs_dir: Path, count: int, digests: Mapping[tuple[str, int], str] | None = None
) -> None:
    """Write `count` run records as <id>.yaml files into runs_dir."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        run_id, text = run_record(i, digests)
        (runs_dir / f"{run_id}.yaml").write_text(text)


if __name__ == "__main__":
    import sys

    for n in sys.argv[1:] or list(SPECS):
        print(n, ensure(n))
