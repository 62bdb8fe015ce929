"""Distributed versions (issue 11): `gart upsert` / `gart finish` / `gart parts` and W&B's
`run.upsert_artifact` / `run.finish_artifact`.

Jobs share only `origin` (a real bare repository) and the remote (a local directory, or S3
through moto for the parallel test); each works in its own fresh shallow clone."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from conftest import GART, GartResult, Project, build_dataset, git, one_error, read_tree, run_gart

import gitartifacts as wandb
from gitartifacts.api import Repo


def ok(result: GartResult) -> GartResult:
    assert result.rc == 0, f"exit {result.rc}\nstdout: {result.out}\nstderr: {result.err}"
    return result


def worker_clone(project: Project, name: str) -> Path:
    """A job's own fresh shallow clone of origin (no shared disk with any other job)."""
    dest = project.tmp / "jobs" / name
    dest.parent.mkdir(exist_ok=True)
    git(dest.parent, "clone", "-q", "--depth", "1", f"file://{project.origin}", str(dest))
    return dest


def origin_refs(origin: Path, prefix: str) -> set[str]:
    return set(git(origin, "for-each-ref", "--format=%(refname)", prefix).split())


def shard(project: Project, name: str, files: int, seed: int) -> Path:
    where = project.tmp / "shards" / name
    build_dataset(where, files=files, seed=seed, max_size=200, dirs=0)
    return where


@pytest.fixture
def shared(project: Project) -> Project:
    """The project with its gart config (the default remote) committed and pushed."""
    git(project.root, "add", ".gart")
    git(project.root, "commit", "-q", "-m", "gart config", "--allow-empty")
    git(project.root, "push", "-q", "origin", "HEAD:main")
    return project


def upsert(clone: Path, path: Path, job: str, ident: str = "day-1", *extra: str) -> GartResult:
    return run_gart(clone, "upsert", str(path), "--name", "ingest", "--distributed-id", ident,
                    "--job", job, "--json", *extra)


def test_parts_merge_into_one_version_at_finish_and_nothing_moves_before(
        shared: Project) -> None:
    a, b, finisher = (worker_clone(shared, n) for n in ("a", "b", "finisher"))
    common = shard(shared, "common", 3, seed=1)
    ok(upsert(a, shard(shared, "a", 4, seed=2), "job-a", "day-1", "--prefix", "a"))
    ok(upsert(a, common, "job-a2", "day-1", "--prefix", "common"))
    ok(upsert(b, shard(shared, "b", 5, seed=3), "job-b", "day-1", "--prefix", "b"))
    ok(upsert(b, common, "job-b2", "day-1", "--prefix", "common"))  # same paths, same bytes
    # Nothing is published before finish: no tag, no alias on origin.
    assert origin_refs(shared.origin, "refs/tags/") == set()
    listed = json.loads(ok(run_gart(finisher, "parts", "--name", "ingest", "--distributed-id",
                                    "day-1", "--json")).out)
    assert [(p["job"], p["state"], p["files"]) for p in listed["parts"]] == [
        ("job-a", "complete", 4), ("job-a2", "complete", 3), ("job-b", "complete", 5),
        ("job-b2", "complete", 3)]
    assert listed["finished"] is None
    done = json.loads(ok(run_gart(finisher, "finish", "--name", "ingest", "--distributed-id",
                                  "day-1", "--alias", "fresh", "--json")).out)
    assert (done["version"], done["count"], done["created"]) == ("v0", 12, True)
    assert origin_refs(shared.origin, "refs/tags/") == {
        "refs/tags/ingest@v0", "refs/tags/ingest@fresh"}
    assert origin_refs(shared.origin, "refs/gart/parts/") == set()  # parts removed
    # Anyone pulls the merged version, byte for byte.
    reader = worker_clone(shared, "reader")
    ok(run_gart(reader, "pull", "ingest@v0", "--to", str(shared.tmp / "got")))
    got = read_tree(shared.tmp / "got")
    assert sorted(got) == sorted(
        [f"a/{p}" for p in read_tree(shared.tmp / "shards" / "a")]
        + [f"b/{p}" for p in read_tree(shared.tmp / "shards" / "b")]
        + [f"common/{p}" for p in read_tree(common)])
    # A second finish, and an upsert after finish: clear errors.
    line = one_error(run_gart(finisher, "finish", "--name", "ingest", "--distributed-id",
                              "day-1"))
    assert "finished already as ingest@v0" in line
    line = one_error(upsert(a, common, "late"))
    assert "finished already" in line and "no more parts" in line
    # Finish of an id with no parts: a clear error, nothing published.
    line = one_error(run_gart(finisher, "finish", "--name", "ingest", "--distributed-id",
                              "day-2"))
    assert "has no parts" in line
    assert "refs/tags/ingest@v1" not in origin_refs(shared.origin, "refs/tags/")


def test_conflicting_parts_fail_listing_every_conflict_and_a_retry_replaces_its_own(
        shared: Project) -> None:
    a, b = worker_clone(shared, "a"), worker_clone(shared, "b")
    one = shard(shared, "one", 3, seed=1)
    other = shard(shared, "other", 3, seed=2)  # same names f0000..f0002, other bytes
    ok(upsert(a, one, "job-a"))
    ok(upsert(b, other, "job-b"))
    result = run_gart(a, "finish", "--name", "ingest", "--distributed-id", "day-1")
    line = one_error(result)
    for path in ("f0000.bin", "f0001.bin", "f0002.bin"):
        assert f"{path} (job-a vs job-b)" in line
    assert "nothing was published" in line
    assert origin_refs(shared.origin, "refs/tags/") == set()
    assert origin_refs(shared.origin, "refs/gart/finished/") == set()  # not claimed
    # job-b re-sends a fixed part: it replaces its own, job-a's stays.
    retry = json.loads(ok(upsert(b, one, "job-b")).out)
    assert retry["replaced"] is True
    assert origin_refs(shared.origin, "refs/gart/parts/") == {
        "refs/gart/parts/ingest@day-1/job-a", "refs/gart/parts/ingest@day-1/job-b"}
    done = json.loads(ok(run_gart(b, "finish", "--name", "ingest", "--distributed-id",
                                  "day-1", "--json")).out)
    assert (done["version"], done["count"]) == ("v0", 3)


def test_a_part_with_missing_blobs_fails_finish_unless_skipped(shared: Project) -> None:
    a, b = worker_clone(shared, "a"), worker_clone(shared, "b")
    ok(upsert(a, shard(shared, "a", 3, seed=1), "job-a", "day-1", "--prefix", "a"))
    packs_before = set((shared.storage / "packs").iterdir())
    ok(upsert(b, shard(shared, "b", 3, seed=2), "job-b", "day-1", "--prefix", "b"))
    for path in set((shared.storage / "packs").iterdir()) - packs_before:
        path.unlink()  # job-b's blobs vanish from the remote (as if never uploaded)
    line = one_error(run_gart(a, "finish", "--name", "ingest", "--distributed-id", "day-1"))
    assert "job-b (3 of 3 blobs missing" in line and "job-a" not in line
    assert origin_refs(shared.origin, "refs/tags/") == set()
    done = json.loads(ok(run_gart(a, "finish", "--name", "ingest", "--distributed-id", "day-1",
                                  "--skip-incomplete", "--json")).out)
    assert (done["count"], [p["job"] for p in done["skipped"]]) == (3, ["job-b"])


def test_wandb_upsert_and_finish_artifact(shared: Project, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    clones = [worker_clone(shared, f"w{i}") for i in range(3)]
    for i, clone in enumerate(clones[:2]):
        monkeypatch.chdir(clone)
        build_dataset(clone / "out", files=2, seed=i, max_size=50, dirs=0)
        with wandb.init(job_type="eval", name=f"worker-{i}") as run:
            art = wandb.Artifact("preds", type="predictions", metadata={f"w{i}": True})
            art.add_dir("out", name=f"shard-{i}")
            run.upsert_artifact(art, distributed_id="eval-7")
        assert Repo(clone).registry.versions("preds") == []
    monkeypatch.chdir(clones[2])
    with wandb.init(job_type="eval-finish") as run:
        with pytest.raises(wandb.errors.UsageError, match="distributed_id"):
            run.finish_artifact(wandb.Artifact("preds", type="predictions"))
        logged = run.finish_artifact(wandb.Artifact("preds", type="predictions"),
                                     distributed_id="eval-7", aliases=["candidate"])
    assert logged.version == "v0" and "candidate" in logged.aliases
    assert {e.path for e in logged.manifest.entries} == {
        "shard-0/f0000.bin", "shard-0/f0001.bin", "shard-1/f0000.bin", "shard-1/f0001.bin"}
    assert logged.metadata == {"w0": True, "w1": True}
    with wandb.init(job_type="late") as run, pytest.raises(wandb.errors.ConflictError,
                                                         match="finished already"):
        art = wandb.Artifact("preds", type="predictions")
        art.add_dir(str(clones[0] / "out"))
        run.upsert_artifact(art, distributed_id="eval-7")


# -- 8 parallel workers against S3, one SIGKILLed mid-upload and retried --------------------


class StallFirstPack:
    """WSGI wrapper around moto: the first PUT of a pack waits until released (a worker
    stuck mid-upload, to be SIGKILLed); every other request passes straight through."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.stalled = threading.Event()
        self.release = threading.Event()
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        if environ["REQUEST_METHOD"] == "PUT" and path.endswith(".pack"):
            with self.lock:
                first = not self.stalled.is_set()
                self.stalled.set()
            if first:
                self.release.wait(60)
        return self.app(environ, start_response)


def test_eight_parallel_workers_on_s3_one_killed_mid_upsert_and_retried(
        repo: Path, tmp_path: Path, s3: Any) -> None:
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    git(repo, "remote", "add", "origin", str(origin))
    Repo(repo).remote_add("storage", s3.url, default=True)
    Repo(repo).remote_modify("storage", "endpoint_url", s3.endpoint)
    git(repo, "add", ".gart")
    git(repo, "commit", "-q", "-m", "gart with an S3 remote")
    git(repo, "push", "-q", "origin", "HEAD:main")
    project = Project(repo, origin, tmp_path / "unused", tmp_path)
    clones = [worker_clone(project, f"w{i}") for i in range(8)]
    shards = [shard(project, f"s{i}", 25, seed=100 + i) for i in range(8)]
    stall = StallFirstPack(s3.server.app.app)
    s3.server.app.app = stall
    try:
        procs = [subprocess.Popen(
            [*GART, "upsert", str(shards[i]), "--name", "ingest", "--distributed-id", "d1",
             "--prefix", f"s{i}", "--job", f"w{i}"], cwd=clones[i],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(8)]
        deadline = time.monotonic() + 90
        while sum(p.poll() is None for p in procs) > 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        running = [i for i, p in enumerate(procs) if p.poll() is None]
        assert stall.stalled.is_set() and len(running) == 1, running
        killed = running[0]
        os.kill(procs[killed].pid, signal.SIGKILL)
        procs[killed].wait()
    finally:
        stall.release.set()
        s3.server.app.app = stall.app
    for i, p in enumerate(procs):
        out, err = p.communicate()
        if i != killed:
            assert p.returncode == 0, err.decode()
    finisher = worker_clone(project, "finisher")
    parts = json.loads(ok(run_gart(finisher, "parts", "--name", "ingest", "--distributed-id",
                                   "d1", "--json")).out)["parts"]
    states = {p["job"]: p["state"] for p in parts}
    assert states.pop(f"w{killed}") == "uploading"
    assert set(states.values()) == {"complete"} and len(states) == 7
    line = one_error(run_gart(finisher, "finish", "--name", "ingest", "--distributed-id", "d1"))
    assert f"w{killed} (25 of 25 blobs missing, uploading" in line
    assert origin_refs(origin, "refs/tags/") == set()
    ok(run_gart(clones[killed], "upsert", str(shards[killed]), "--name", "ingest",
                "--distributed-id", "d1", "--prefix", f"s{killed}", "--job", f"w{killed}"))
    s3.take()
    done = json.loads(ok(run_gart(finisher, "finish", "--name", "ingest", "--distributed-id",
                                  "d1", "--json")).out)
    requests = s3.take()
    assert (done["version"], done["count"]) == ("v0", 200)
    uploads = [r for r in requests if r.method in ("PUT", "POST") and "/locks/" not in r.path]
    assert uploads == []  # nothing uploaded again (only finish's store lock is written)
    reader = worker_clone(project, "reader")
    ok(run_gart(reader, "pull", "ingest@v0", "--to", str(tmp_path / "got")))
    got = read_tree(tmp_path / "got")
    for i in range(8):
        assert {f"s{i}/{p}": b for p, b in read_tree(shards[i]).items()}.items() <= got.items()
    assert origin_refs(origin, "refs/gart/parts/") == set()


def test_part_names_and_ids_are_checked(shared: Project) -> None:
    line = one_error(run_gart(shared.root, "upsert", "README", "--name", "ingest",
                              "--distributed-id", "bad id"))
    assert "invalid distributed id 'bad id'" in line
    line = one_error(run_gart(shared.root, "upsert", "README", "--name", "ingest",
                              "--distributed-id", "ok", "--job", "a/b"))
    assert "invalid job 'a/b'" in line


def test_gc_keeps_the_blobs_of_unfinished_parts(shared: Project) -> None:
    a = worker_clone(shared, "a")
    ok(upsert(a, shard(shared, "a", 3, seed=1), "job-a"))
    packs = set((shared.storage / "packs").iterdir())
    report = json.loads(ok(run_gart(shared.root, "gc", "--remote", "storage", "--grace", "0s",
                                    "--json")).out)
    assert report["live_objects"] == 3, report
    assert set((shared.storage / "packs").iterdir()) == packs  # the part's pack stays
    done = json.loads(ok(run_gart(a, "finish", "--name", "ingest", "--distributed-id", "day-1",
                                  "--json")).out)
    assert done["count"] == 3 and done["skipped"] == []
