"""Run records shared by `gart run`, pipelines and the W&B-style API: inputs, outputs, lineage."""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import re
import socket
from collections.abc import Iterator, Sequence
from typing import Any

from gitartifacts import config as configmod
from gitartifacts import runrecord
from gitartifacts.aliases import Resolved, parse_message
from gitartifacts.api import AddResult, Repo
from gitartifacts.lineage import LineageGraph
from gitartifacts.manifest import Manifest
from gitartifacts.paths import VERSION_RE, parse_spec
from gitartifacts.runrecord import ArtifactRef, RunRecord

_ENV_NAME_RE = re.compile(r"[^A-Z0-9]+")


def input_env_name(name: str) -> str:
    """GART_INPUT_RAW_IMAGES for raw-images: where the command finds an input."""
    return "GART_INPUT_" + _ENV_NAME_RE.sub("_", name.upper()).strip("_")


# -- the record file, shared between `gart run` and an API run inside it ------------------------


@contextlib.contextmanager
def locked_record(repo: Repo, run_id: str) -> Iterator[None]:
    """Serialise read-modify-write of one record between a `gart run` and its child process."""
    lock_dir = repo.config.tmp_path / "locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / f"run-{run_id}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def update_record(repo: Repo, run_id: str, change: Any) -> RunRecord:
    with locked_record(repo, run_id):
        record = runrecord.read_run(repo.runs_dir / f"{run_id}.yaml")
        change(record)
        runrecord.write_run(repo.runs_dir, record)
        return record


def add_ref(refs: list[ArtifactRef], ref: ArtifactRef) -> None:
    if not any(r.name == ref.name and r.digest == ref.digest for r in refs):
        refs.append(ref)


# -- inputs ---------------------------------------------------------------------------------


def resolve_input(repo: Repo, spec: str, download: bool = True) -> tuple[Manifest, ArtifactRef]:
    """Resolve an input to an exact version, fetching and checking it out when absent."""
    parsed = parse_spec(spec)
    manifest, resolved = repo.resolve_ref(spec)
    ref = ArtifactRef(
        name=manifest.name, digest=manifest.digest, version=version_label(resolved),
        requested=parsed.ref, path=manifest.path,
    )
    if download:
        ensure_present(repo, manifest, ref)
    return manifest, ref


def ensure_present(repo: Repo, manifest: Manifest, ref: ArtifactRef) -> None:
    status = repo.status([manifest.name])[0] if ref.requested is None else None
    if status is None or status.state != "clean":
        repo.pull([manifest])


def version_label(resolved: Resolved | None) -> str | None:
    if resolved is None or resolved.version is None:
        return None
    return resolved.version.label


def output_ref(repo: Repo, result: AddResult, aliases: Sequence[str] = ()) -> ArtifactRef:
    digest = result.manifest.digest
    version = next(
        (v.label for v in repo.registry.versions(result.manifest.name) if v.digest == digest), None
    )
    return ArtifactRef(
        name=result.manifest.name, digest=digest, version=version,
        requested=",".join(aliases) or None, path=result.manifest.path,
    )




def new_record(repo: Repo, name: str | None, job_type: str, command: Sequence[str]) -> RunRecord:
    run_id = runrecord.new_run_id()
    head = repo.git.head_commit()
    return RunRecord(
        id=run_id, name=name or job_type, job_type=job_type, status="running",
        command=list(command), git_commit=head,
        git_dirty=repo.git.is_dirty() if head else False,
        user=_user(), host=socket.gethostname(), started=runrecord.utc_now(),
    )


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def stage_record(repo: Repo, record: RunRecord) -> None:
    if repo.config.autostage:
        repo.git.stage([f"{configmod.GART_DIR}/runs/{record.file_name}"])


# -- lineage queries ------------------------------------------------------------------------


def version_maps(repo: Repo) -> tuple[dict[tuple[str, str], str], dict[tuple[str, str], list[str]]]:
    """(name, digest) -> 'vN' and -> aliases, from one listing of all tags."""
    versions: dict[tuple[str, str], str] = {}
    aliases: dict[tuple[str, str], list[str]] = {}
    tags = repo.git.list_tags("")
    latest: dict[str, tuple[int, tuple[str, str]]] = {}
    for tag, info in tags.items():
        name, sep, ref = tag.partition("@")
        if not sep:
            continue
        digest = parse_message(info.message).get("digest")
        if not digest:
            continue
        key = (name, digest)
        if VERSION_RE.fullmatch(ref):
            versions[key] = ref
            number = int(ref[1:])
            if name not in latest or number > latest[name][0]:
                latest[name] = (number, key)
        else:
            aliases.setdefault(key, []).append(ref)
    for _name, (_number, key) in latest.items():
        aliases.setdefault(key, []).insert(0, "latest")
    return versions, aliases


def lineage_graph(repo: Repo) -> tuple[LineageGraph, list[tuple[str, str]]]:
    runs, bad = repo.load_runs()
    versions, aliases = version_maps(repo)
    return LineageGraph(runs, versions, aliases), bad


def lineage_around(
    repo: Repo, spec: str, depth: int | None, upstream: bool, downstream: bool
) -> tuple[LineageGraph, str, list[tuple[str, str]]]:
    manifest = repo.resolve(spec)
    graph, bad = lineage_graph(repo)
    sub = graph.around(manifest.name, manifest.digest, depth, upstream, downstream)
    root = sub.artifact_node_id(manifest.name, manifest.digest) or ""
    return sub, root, bad

