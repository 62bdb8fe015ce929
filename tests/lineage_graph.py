"""A known lineage graph shared by the lineage and lineage-view tests."""

from __future__ import annotations

import hashlib

from gitartifacts.runrecord import ArtifactRef, RunRecord


def dg(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


D = {k: dg(k) for k in ("src", "raw", "labels", "model", "metrics", "report", "other")}


def make_run(
    n: int,
    name: str,
    job_type: str,
    hhmm: str,
    inputs: list[ArtifactRef],
    outputs: list[ArtifactRef],
    status: str = "finished",
    exit_code: int | None = 0,
) -> RunRecord:
    done = status != "running"
    return RunRecord(
        id=f"20261127T{hhmm}00Z-{n:06x}",
        name=name,
        job_type=job_type,
        status=status,
        command=["python", f"{name}.py", "--lr", "0.1"],
        git_commit="ab" * 20,
        git_dirty=n == 2,
        user="alice",
        host="ci-7",
        started=f"2026-11-27T{hhmm[:2]}:{hhmm[2:]}:00Z",
        ended=f"2026-11-27T{hhmm[:2]}:{hhmm[2:]}:59Z" if done else None,
        exit_code=exit_code if done else None,
        inputs=inputs,
        outputs=outputs,
    )


def known_runs() -> list[RunRecord]:
    """raw-source -> prep -> raw-images -+-> train -> model -> eval -> report -> deploy (failed)
    labels ----------------------------+         -> metrics
    labels -> other (running) -> other-model
    """
    prep = make_run(
        1, "prep", "preprocess", "1000",
        [ArtifactRef("raw-source", D["src"], "v0", "latest", "src/")],
        [ArtifactRef("raw-images", D["raw"], None, None, "data/")],
    )  # fmt: skip
    train = make_run(
        2, "train-resnet", "train", "1100",
        [
            ArtifactRef("raw-images", D["raw"], "v3", "production", "data/"),
            ArtifactRef("labels", D["labels"], "v1", "v1", "labels/"),
        ],
        [
            ArtifactRef("model", D["model"], None, None, "models/"),
            ArtifactRef("metrics", D["metrics"], None, None, "eval/metrics.json"),
        ],
    )  # fmt: skip
    evaluate = make_run(
        3, "eval-resnet", "eval", "1200",
        [ArtifactRef("model", D["model"], "v2", "production", "models/")],
        [ArtifactRef("report", D["report"], None, None, "report/")],
    )  # fmt: skip
    deploy = make_run(
        4, "deploy", "deploy", "1300",
        [ArtifactRef("report", D["report"], "v0", "latest", None)], [],
        status="failed", exit_code=1,
    )  # fmt: skip
    other = make_run(
        5, "other", "train", "1400",
        [ArtifactRef("labels", D["labels"], "v1", "v1", None)],
        [ArtifactRef("other-model", D["other"], None, None, None)],
        status="running",
    )  # fmt: skip
    return [prep, train, evaluate, deploy, other]


# Versions and aliases the graph's artifacts are published under.
VERSIONS = {
    ("raw-source", D["src"]): "v0",
    ("raw-images", D["raw"]): "v3",
    ("labels", D["labels"]): "v1",
    ("model", D["model"]): "v2",
    ("report", D["report"]): "v0",
}
ALIASES = {("model", D["model"]): ["production", "latest"]}
