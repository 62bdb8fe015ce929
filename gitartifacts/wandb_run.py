"""W&B's `init()` and `Run`: `use_artifact` records an input, `log_artifact` publishes at once.

`log_artifact` caches the files, writes the manifest, commits only gart's own files (the
manifest, its `.gitignore` line, the run record) on the current branch, then publishes
through the same step as `gart push`: blobs uploaded to the default remote first, then the
version tag and the aliases, pushed to origin. `use_artifact` never touches the working tree;
the artifact's `download()` fetches. A run records into `.gart/runs/<id>.yaml`, the format
`gart run` writes, and commits it when it finishes.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from gitartifacts import config as configmod
from gitartifacts import runrecord
from gitartifacts.api import AddResult, Artifact, Repo
from gitartifacts.drafts import Draft, DraftResult
from gitartifacts.errors import UsageError
from gitartifacts.paths import validate_alias, validate_name
from gitartifacts.runrecord import ArtifactRef, RunRecord
from gitartifacts.runs import add_ref, new_record, update_record
from gitartifacts.wandb_artifact import ArtifactVersion, mark_latest
from gitartifacts.wandb_public import load_version, own_project, set_default_project

_SAID_LOCAL = False  # "no remote: versions stay local" is said once per process
_CURRENT: Run | None = None  # W&B's `wandb.run`: the run init() started last


class Run:
    """A W&B-style run: records the artifacts it uses and logs, in `.gart/runs/<id>.yaml`.

    Inside `gart run` (GART_RUN_ID set) it joins that run's record instead of making one."""

    def __init__(self, repo: Repo, job_type: str = "run", name: str | None = None,
                 project: str | None = None, entity: str | None = None,
                 config: dict[str, Any] | None = None) -> None:
        self.repo = repo
        self.project = project
        self.entity = entity
        self.job_type = validate_name(job_type)
        self.config: dict[str, Any] = dict(config or {})
        joined = configmod.env_value("GART_RUN_ID")
        self.joined = joined is not None and (repo.runs_dir / f"{joined}.yaml").exists()
        if self.joined:
            assert joined is not None
            self.id = joined
        else:
            record = new_record(repo, name, self.job_type, [sys.executable, *sys.argv])
            self.id = record.id
            runrecord.write_run(repo.runs_dir, record)
        self.name = name or self.job_type
        self._given_name = name  # a distributed part's job name, when the user chose one
        self._finished = False

    @property
    def record(self) -> RunRecord:
        return runrecord.read_run(self.repo.runs_dir / f"{self.id}.yaml")

    @property
    def _record_path(self) -> str:
        return f"{configmod.GART_DIR}/runs/{self.id}.yaml"

    def _live(self, call: str) -> None:
        if self._finished:
            raise UsageError(f"run {self.id} is finished; {call}() needs a live run",
                             hint="start a new one with init()")

    # -- inputs ----------------------------------------------------------------------------

    def use_artifact(
        self,
        artifact_or_name: str | ArtifactVersion,
        type: str | None = None,
        aliases: Sequence[str] | None = None,
        use_as: str | None = None,
    ) -> ArtifactVersion:
        """Record a version as this run's input and return it; nothing is downloaded or
        written to the working tree (call `download()` on the result for the files).

        Takes `[entity/project/]name[:version|alias]` (a bare name means `:latest`) or an
        artifact object; `type`, when given, must match."""
        del aliases, use_as
        self._live("use_artifact")
        if isinstance(artifact_or_name, ArtifactVersion):
            found = artifact_or_name
            if type is not None and found.type != type:
                raise UsageError(f"{found.name} is of type {found.type!r}, not {type!r}",
                                 hint=f"pass type={found.type!r}, or no type")
            requested = found.version
        elif isinstance(artifact_or_name, Artifact):
            raise UsageError(f"artifact {artifact_or_name.name!r} has not been logged",
                             hint="log it first: run.log_artifact(artifact)")
        else:
            found = load_version(self.repo, artifact_or_name, type,
                                 own_project(self.entity, self.project))
            requested = _requested(artifact_or_name)
        ref = ArtifactRef(
            name=found.manifest.name, digest=found.digest, version=found.version,
            requested=requested, path=found.manifest.path,
        )
        update_record(self.repo, self.id, lambda rec: add_ref(rec.inputs, ref))
        return found

    # -- outputs ---------------------------------------------------------------------------

    def log_artifact(
        self,
        artifact_or_path: Artifact | str | os.PathLike[str],
        name: str | None = None,
        type: str | None = None,
        aliases: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
    ) -> ArtifactVersion:
        """Store, commit and publish an artifact (an `Artifact`, or a path with `name`/`type`);
        the returned version knows its number at once (`.version`, `.wait()`).

        Identical content returns the existing version and still applies `aliases`; `latest`
        is accepted and always means the newest version."""
        del tags
        self._live("log_artifact")
        wanted = [a for a in dict.fromkeys(aliases or ()) if a != "latest"]
        for alias in wanted:
            validate_alias(alias)
        result: AddResult | DraftResult
        draft = artifact_or_path if isinstance(artifact_or_path, Draft) else None
        if draft is not None:  # new_draft(): base entries ± changes; base must not have moved
            self.repo.check_draft(draft)
            result = self.repo.save_draft(draft)
        elif isinstance(artifact_or_path, Artifact):
            result = self.repo.save(artifact_or_path)
        else:
            result = self.repo.add([artifact_or_path], name=name, type=type)
        manifest = result.manifest
        ref = ArtifactRef(name=manifest.name, digest=manifest.digest, version=None,
                          requested=",".join(wanted) or None, path=manifest.path)
        update_record(self.repo, self.id, lambda rec: add_ref(rec.outputs, ref))
        paths = [self.repo.manifest_relpath(manifest.name), self._record_path]
        if self._gitignore_needs_commit(manifest.path):
            paths.append(".gitignore")
        self.repo.gitmeta.commit_paths(paths, f"gart: log {manifest.name} ({self.job_type} run "
                                              f"{self.id})")
        head = self.repo.git.head_commit()
        assert head is not None
        if draft is not None:
            version, _created, shared = self.repo.publish_logged_draft(manifest, head, wanted)
        else:
            version, _created, shared = self.repo.publish_logged(manifest, head, wanted)
        if not shared:
            _say_local_once(self.repo)

        def set_version(rec: RunRecord) -> None:
            rec.outputs = [
                replace(out, version=version.label)
                if out.name == manifest.name and out.digest == manifest.digest else out
                for out in rec.outputs
            ]

        update_record(self.repo, self.id, set_version)
        mark_latest(version, self.repo.versions(manifest.name, offline=True))
        logged = ArtifactVersion(self.repo, manifest, version, own_project(self.entity,
                                                                          self.project))
        if isinstance(artifact_or_path, Artifact):
            artifact_or_path.logged = logged
        return logged

    # -- distributed versions (W&B's upsert_artifact / finish_artifact) --------------------

    def upsert_artifact(
        self,
        artifact_or_path: Artifact | str | os.PathLike[str],
        name: str | None = None,
        type: str | None = None,
        aliases: Sequence[str] | None = None,
        distributed_id: str | None = None,
    ) -> Artifact | None:
        """Contribute this job's files to a distributed version (a part on origin); nothing
        is published until `finish_artifact`. The part is named after the run when `init`
        got a `name` (else after its content), so a retried job replaces its own part."""
        del aliases  # applied by finish_artifact
        self._live("upsert_artifact")
        art, files, name = self._part_files(artifact_or_path, name, type, "upsert_artifact")
        self.repo.upsert(files, name, _distributed_id(distributed_id, "upsert_artifact"),
                         job=self._given_name, type=art.type if art else type,
                         description=art.description if art else "",
                         metadata=art.metadata if art else None)
        return art

    def finish_artifact(
        self,
        artifact_or_path: Artifact | str | os.PathLike[str],
        name: str | None = None,
        type: str | None = None,
        aliases: Sequence[str] | None = None,
        distributed_id: str | None = None,
    ) -> ArtifactVersion:
        """Publish a distributed version: every part merged into one version (its files,
        if any, are sent as this run's part first). The manifest is committed (only gart's
        files), the version tagged and pushed; the parts are removed."""
        self._live("finish_artifact")
        ident = _distributed_id(distributed_id, "finish_artifact")
        wanted = [a for a in dict.fromkeys(aliases or ()) if a != "latest"]
        for alias in wanted:
            validate_alias(alias)
        art, files, name = self._part_files(artifact_or_path, name, type, "finish_artifact",
                                            allow_empty=True)
        if files:
            self.repo.upsert(files, name, ident, job=self._given_name,
                             type=art.type if art else type,
                             description=art.description if art else "",
                             metadata=art.metadata if art else None)
        result = self.repo.finish(
            name, ident, aliases=wanted, type=art.type if art else type,
            description=(art.description or None) if art else None,
            metadata=(art.metadata or None) if art else None)
        manifest, version = result.manifest, result.version
        ref = ArtifactRef(name=manifest.name, digest=manifest.digest, version=version.label,
                          requested=",".join(wanted) or None, path=manifest.path)
        update_record(self.repo, self.id, lambda rec: add_ref(rec.outputs, ref))
        mark_latest(version, self.repo.versions(manifest.name, offline=True))
        logged = ArtifactVersion(self.repo, manifest, version,
                                 own_project(self.entity, self.project))
        if art is not None:
            art.logged = logged
        return logged

    def _part_files(self, artifact_or_path: Artifact | str | os.PathLike[str],
                    name: str | None, type: str | None, call: str, allow_empty: bool = False,
                    ) -> tuple[Artifact | None, dict[str, Any], str]:
        if isinstance(artifact_or_path, Artifact):
            art = artifact_or_path
            if not art.files and not allow_empty:
                raise UsageError(f"artifact {art.name!r} has no files",
                                 hint="call add_file or add_dir first")
            return art, dict(art.files), art.name
        if name is None:
            raise UsageError(f"{call}(path) needs name=", hint=f"e.g. run.{call}('out/', "
                             "name='preds', distributed_id='eval-1')")
        if type is not None:
            validate_name(type)
        return None, self.repo._gather([artifact_or_path], None), validate_name(name)

    def _gitignore_needs_commit(self, data_path: str) -> bool:
        """Whether HEAD's .gitignore lacks the artifact's line (then gart's edit is committed;
        otherwise .gitignore is left to the user, with whatever else they changed in it)."""
        if not (self.repo.root / ".gitignore").exists():
            return False
        head = self.repo.git.head_commit()
        committed = self.repo.git.read_file(head, ".gitignore") if head else None
        lines = set((committed or b"").decode("utf-8", "replace").splitlines())
        return f"/{data_path}" not in lines and f"/{data_path}/" not in lines

    # -- end -------------------------------------------------------------------------------

    def finish(self, exit_code: int | None = None, quiet: bool | None = None) -> None:
        """Close the run and commit its record (a joined run is closed by `gart run`)."""
        del quiet
        if self._finished or self.joined:
            self._finished = True
            return
        code = exit_code or 0

        def close(rec: RunRecord) -> None:
            rec.status = "finished" if code == 0 else "failed"
            rec.exit_code = code
            rec.ended = runrecord.utc_now()

        update_record(self.repo, self.id, close)
        self._finished = True
        global _CURRENT
        if _CURRENT is self:
            _CURRENT = None
        self.repo.gitmeta.commit_paths([self._record_path], f"gart: {self.job_type} run "
                                       f"{self.id} {'finished' if code == 0 else 'failed'}")

    def __enter__(self) -> Run:
        return self

    def __exit__(self, kind: type | None, exc: BaseException | None, tb: Any) -> None:
        self.finish(0 if exc is None else 1)


def _distributed_id(value: str | None, call: str) -> str:
    if not value:
        raise UsageError(f"{call}() needs distributed_id", hint="pass the id every job of "
                         "this version shares, e.g. distributed_id='ingest-2026-12-01'")
    return value


def _requested(path: str) -> str | None:
    """What the user asked for after the name (`production`, `v3`), for the record."""
    tail = path.rpartition("/")[2]
    for sep in ("@", ":"):
        if sep in tail:
            return tail.partition(sep)[2]
    return None


def _say_local_once(repo: Repo) -> None:
    global _SAID_LOCAL
    if _SAID_LOCAL:
        return
    _SAID_LOCAL = True
    where = "no default remote is configured" if not repo.config.remotes else (
        "no default remote is set")
    print(f"gart: {where}: logged versions stay in this clone; add one with `gart remote add "
          "NAME URL --default`, then `gart push` shares them", file=sys.stderr)


def init(
    project: str | None = None,
    entity: str | None = None,
    job_type: str | None = None,
    name: str | None = None,
    config: dict[str, Any] | None = None,
    path: str | os.PathLike[str] | None = None,
    **ignored: Any,
) -> Run:
    """Start a run in the gart repository at `path` (default: the current directory).

    `project`/`entity` name this repository's own W&B project, so `entity/project/name:v0`
    paths of it resolve locally; W&B's other options (tags, notes, mode, …) are accepted and
    have no effect."""
    del ignored
    global _CURRENT
    repo = Repo(path)
    set_default_project(repo, entity, project)
    _CURRENT = Run(repo, job_type=job_type or "run", name=name, project=project,
                   entity=entity, config=config)
    return _CURRENT


def current_run() -> Run | None:
    """W&B's `wandb.run`: the run started by the last init() and not yet finished."""
    return _CURRENT


def _active(call: str) -> Run:
    if _CURRENT is None:
        raise UsageError(f"{call}() needs a run", hint="call init() first")
    return _CURRENT


def use_artifact(artifact_or_name: str | ArtifactVersion, type: str | None = None,
                 **options: Any) -> ArtifactVersion:
    """W&B's `wandb.use_artifact`: `use_artifact` on the current run."""
    return _active("use_artifact").use_artifact(artifact_or_name, type, **options)


def log_artifact(artifact_or_path: Artifact | str | os.PathLike[str], name: str | None = None,
                 type: str | None = None, aliases: Sequence[str] | None = None,
                 **options: Any) -> ArtifactVersion:
    """W&B's `wandb.log_artifact`: `log_artifact` on the current run."""
    return _active("log_artifact").log_artifact(artifact_or_path, name, type, aliases, **options)


def finish(exit_code: int | None = None, quiet: bool | None = None) -> None:
    """W&B's `wandb.finish`: finish the current run, if any."""
    if _CURRENT is not None:
        _CURRENT.finish(exit_code, quiet)


__all__ = ["Run", "current_run", "finish", "init", "log_artifact", "use_artifact"]
