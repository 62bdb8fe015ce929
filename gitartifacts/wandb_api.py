"""The W&B-shaped Python API: `init()` gives a `Run` that uses and logs artifact versions."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gitartifacts import config as configmod
from gitartifacts import runrecord
from gitartifacts.api import Artifact, Repo
from gitartifacts.manifest import Manifest
from gitartifacts.paths import parse_spec, validate_alias, validate_name
from gitartifacts.runrecord import ArtifactRef, RunRecord
from gitartifacts.runs import (
    add_ref,
    lineage_graph,
    new_record,
    output_ref,
    resolve_input,
    stage_record,
    update_record,
    version_label,
)


class ArtifactVersion:
    """A used or logged artifact version: its manifest plus lineage lookups."""

    def __init__(self, repo: Repo, manifest: Manifest, version: str | None) -> None:
        self.repo = repo
        self.manifest = manifest
        self.version = version

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def digest(self) -> str:
        return self.manifest.digest

    @property
    def path(self) -> Path:
        return self.repo.root / self.manifest.path

    def download(self, root: str | os.PathLike[str] | None = None) -> Path:
        """Fetch and check out this version (into `root` if given); returns its directory."""
        target = Path(root) if root is not None else None
        self.repo.pull([self.manifest], to=target)
        return target or self.path

    def logged_by(self) -> list[RunRecord]:
        graph, _bad = lineage_graph(self.repo)
        return graph.producers_of(self.name, self.digest)

    def used_by(self) -> list[RunRecord]:
        graph, _bad = lineage_graph(self.repo)
        return graph.consumers_of(self.name, self.digest)

    def __repr__(self) -> str:
        return f"ArtifactVersion({self.name}@{self.version or self.digest[:19]})"


class Run:
    """A W&B-style run: records the artifacts it uses and logs, in `.gart/runs/<id>.yaml`.

    Inside `gart run` (GART_RUN_ID set) it joins that run's record instead of making one.
    """

    def __init__(self, repo: Repo, job_type: str = "run", name: str | None = None) -> None:
        self.repo = repo
        joined = configmod.env_value("GART_RUN_ID")
        self.joined = joined is not None and (repo.runs_dir / f"{joined}.yaml").exists()
        if self.joined:
            assert joined is not None
            self.id = joined
        else:
            record = new_record(repo, name, validate_name(job_type), [sys.executable, *sys.argv])
            self.id = record.id
            runrecord.write_run(repo.runs_dir, record)
        self._finished = False

    @property
    def record(self) -> RunRecord:
        return runrecord.read_run(self.repo.runs_dir / f"{self.id}.yaml")

    def use_artifact(self, spec: str, download: bool = True) -> ArtifactVersion:
        """Record `spec` (e.g. 'raw-images:production') as an input; fetched unless told not."""
        if download:
            manifest, ref = resolve_input(self.repo, spec)
        else:
            parsed = parse_spec(spec)
            manifest, resolved = self.repo.resolve_ref(spec)
            ref = ArtifactRef(manifest.name, manifest.digest, version_label(resolved),
                              parsed.ref, manifest.path)
        update_record(self.repo, self.id, lambda rec: add_ref(rec.inputs, ref))
        return ArtifactVersion(self.repo, manifest, ref.version)

    def log_artifact(
        self,
        artifact: Artifact | str | os.PathLike[str],
        name: str | None = None,
        type: str | None = None,
        aliases: Sequence[str] = (),
    ) -> ArtifactVersion:
        """Store an artifact (an Artifact, or a path) and record it as an output.

        Aliases are recorded with the output and applied when `gart push` publishes it."""
        for alias in aliases:
            validate_alias(alias)
        if isinstance(artifact, Artifact):
            result = self.repo.save(artifact)
        else:
            result = self.repo.add([artifact], name=name, type=type)
        ref = output_ref(self.repo, result, aliases)
        update_record(self.repo, self.id, lambda rec: add_ref(rec.outputs, ref))
        stage_record(self.repo, self.record)
        return ArtifactVersion(self.repo, result.manifest, ref.version)

    def finish(self, exit_code: int = 0) -> None:
        """Close the run (a joined run is closed by the surrounding `gart run`)."""
        if self._finished or self.joined:
            self._finished = True
            return

        def close(rec: RunRecord) -> None:
            rec.status = "finished" if exit_code == 0 else "failed"
            rec.exit_code = exit_code
            rec.ended = runrecord.utc_now()

        record = update_record(self.repo, self.id, close)
        stage_record(self.repo, record)
        self._finished = True

    def __enter__(self) -> Run:
        return self

    def __exit__(self, kind: type | None, exc: BaseException | None, tb: Any) -> None:
        self.finish(0 if exc is None else 1)


def init(
    job_type: str = "run", name: str | None = None, path: str | os.PathLike[str] | None = None
) -> Run:
    """Start a run in the gart repository at `path` (default: the current directory)."""
    return Run(Repo(path), job_type=job_type, name=name)




__all__ = ["ArtifactVersion", "Run", "init"]
