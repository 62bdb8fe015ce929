"""Runs and lineage: execute commands with resolved inputs, record them, and the W&B-style API."""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitartifacts import config as configmod
from gitartifacts import lineage
from gitartifacts.aliases import Resolved, parse_message
from gitartifacts.api import AddResult, Artifact, Repo
from gitartifacts.errors import (
    ArtifactNotFoundError,
    GartError,
    ManifestError,
    UsageError,
)
from gitartifacts.lineage import ArtifactRef, LineageGraph, RunRecord
from gitartifacts.manifest import Manifest
from gitartifacts.paths import VERSION_RE, parse_spec, validate_alias, validate_name

PIPELINE_FILE = "pipeline.yaml"
COMMAND_NOT_FOUND = 127
_ENV_NAME_RE = re.compile(r"[^A-Z0-9]+")


def input_env_name(name: str) -> str:
    """GART_INPUT_RAW_IMAGES for raw-images: where the command finds an input."""
    return "GART_INPUT_" + _ENV_NAME_RE.sub("_", name.upper()).strip("_")


# -- the record file, shared between `gart run` and an API run inside it ------------------------


@contextlib.contextmanager
def _locked(repo: Repo, run_id: str) -> Iterator[None]:
    """Serialise read-modify-write of one record between a `gart run` and its child process."""
    lock_dir = repo.config.tmp_path / "locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / f"run-{run_id}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _update_record(repo: Repo, run_id: str, change: Any) -> RunRecord:
    with _locked(repo, run_id):
        record = lineage.read_run(repo.runs_dir / f"{run_id}.yaml")
        change(record)
        lineage.write_run(repo.runs_dir, record)
        return record


def _add_ref(refs: list[ArtifactRef], ref: ArtifactRef) -> None:
    if not any(r.name == ref.name and r.digest == ref.digest for r in refs):
        refs.append(ref)


# -- inputs ---------------------------------------------------------------------------------


def resolve_input(repo: Repo, spec: str, download: bool = True) -> tuple[Manifest, ArtifactRef]:
    """Resolve an input to an exact version, fetching and checking it out when absent."""
    parsed = parse_spec(spec)
    manifest, resolved = repo.resolve_ref(spec)
    ref = ArtifactRef(
        name=manifest.name, digest=manifest.digest, version=_version_label(resolved),
        requested=parsed.ref, path=manifest.path,
    )
    if download:
        _ensure_present(repo, manifest, ref)
    return manifest, ref


def _ensure_present(repo: Repo, manifest: Manifest, ref: ArtifactRef) -> None:
    status = repo.status([manifest.name])[0] if ref.requested is None else None
    if status is None or status.state != "clean":
        repo.pull([manifest])


def _version_label(resolved: Resolved | None) -> str | None:
    if resolved is None or resolved.version is None:
        return None
    return resolved.version.label


def _output_ref(repo: Repo, result: AddResult, aliases: Sequence[str] = ()) -> ArtifactRef:
    digest = result.manifest.digest
    version = next(
        (v.label for v in repo.registry.versions(result.manifest.name) if v.digest == digest), None
    )
    return ArtifactRef(
        name=result.manifest.name, digest=digest, version=version,
        requested=",".join(aliases) or None, path=result.manifest.path,
    )


# -- gart run -------------------------------------------------------------------------------


@dataclass
class RunOutcome:
    record: RunRecord
    exit_code: int
    outputs: list[AddResult] = field(default_factory=list)


def parse_outputs(pairs: Sequence[str]) -> list[tuple[str, str]]:
    out = []
    for pair in pairs:
        name, sep, path = pair.partition("=")
        if not sep or not name or not path:
            raise UsageError(f"output {pair!r} is not NAME=PATH", hint="e.g. -o model=models/")
        out.append((validate_name(name), path))
    return out


def new_record(repo: Repo, name: str | None, job_type: str, command: Sequence[str]) -> RunRecord:
    run_id = lineage.new_run_id()
    head = repo.git.head_commit()
    return RunRecord(
        id=run_id, name=name or job_type, job_type=job_type, status="running",
        command=list(command), git_commit=head,
        git_dirty=repo.git.is_dirty() if head else False,
        user=_user(), host=socket.gethostname(), started=lineage.utc_now(),
    )


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def execute(
    repo: Repo,
    command: Sequence[str],
    inputs: Sequence[str] = (),
    outputs: Sequence[tuple[str, str]] = (),
    job_type: str = "run",
    name: str | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> RunOutcome:
    """Resolve inputs, run the command, add outputs on success, and record the run.

    The command runs in `cwd` (default: the current directory) and output paths are relative
    to it. Inputs that do not resolve fail before anything runs; the command's own output and
    exit code pass through untouched (a signal N becomes 128+N, as in a shell)."""
    if not command:
        raise UsageError("no command to run", hint="gart run -i NAME@ALIAS -- python train.py")
    validate_name(job_type)
    # Every input must resolve before any is downloaded, and all are present before the run.
    resolved = [resolve_input(repo, spec, download=False) for spec in inputs]
    for manifest, ref in resolved:
        _ensure_present(repo, manifest, ref)
    record = new_record(repo, name, job_type, command)
    record.inputs = [ref for _manifest, ref in resolved]
    lineage.write_run(repo.runs_dir, record)
    env = dict(os.environ)
    env["GART_RUN_ID"] = record.id
    env["GART_REPO"] = str(repo.root)
    for manifest, _ref in resolved:
        env[input_env_name(manifest.name)] = str(repo.root / manifest.path)
    workdir = Path(cwd) if cwd is not None else Path.cwd()
    try:
        exit_code = _run_command(command, workdir, env)
    except KeyboardInterrupt:
        # Ctrl-C: the record must not claim forever that the run is still going.
        _close_interrupted(repo, record.id)
        raise
    except FileNotFoundError:
        exit_code = COMMAND_NOT_FOUND
        print(f"gart: command not found: {command[0]}", flush=True, file=sys.stderr)
    except PermissionError:
        exit_code = 126
        print(f"gart: command not executable: {command[0]}", flush=True, file=sys.stderr)
    added: list[AddResult] = []
    failure: str | None = None
    if exit_code == 0:
        missing = [path for _name, path in outputs if not os.path.lexists(workdir / path)]
        try:
            if missing:  # checked first, so a failed run never leaves some outputs added
                raise ManifestError(f"{', '.join(missing)} does not exist")
            for out_name, path in outputs:
                added.append(repo.add([workdir / path], name=out_name))
        except GartError as exc:
            failure = exc.message
    finished = lineage.utc_now()

    def finish(rec: RunRecord) -> None:
        rec.status = "finished" if exit_code == 0 and failure is None else "failed"
        rec.exit_code = exit_code if failure is None else (exit_code or 1)
        rec.ended = finished
        for result in added:
            _add_ref(rec.outputs, _output_ref(repo, result))

    record = _update_record(repo, record.id, finish)
    _stage_record(repo, record)
    if failure is not None:
        raise ManifestError(
            f"the command succeeded but an output could not be added: {failure}",
            hint="check the -o NAME=PATH arguments; the run is recorded as failed",
        )
    return RunOutcome(record, record.exit_code or 0, added)


def _run_command(command: Sequence[str], cwd: Path, env: dict[str, str]) -> int:
    """Run the command and return its exit status as a shell reports it (signal N: 128+N).

    While it runs, Ctrl-C is the command's to handle (it gets the terminal's SIGINT itself, as
    with POSIX system()), and a SIGTERM sent to gart is passed on, so gart always lives to
    record how the command ended."""
    children: list[subprocess.Popen[bytes]] = []

    def forward(signum: int, _frame: Any) -> None:
        for child in children:
            child.send_signal(signum)

    handlers: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        handlers[signal.SIGINT] = signal.signal(signal.SIGINT, lambda _signum, _frame: None)
        handlers[signal.SIGTERM] = signal.signal(signal.SIGTERM, forward)
    try:
        proc = subprocess.Popen(list(command), cwd=cwd, env=env)
        children.append(proc)
        try:
            code = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
    return 128 - code if code < 0 else code


def _close_interrupted(repo: Repo, run_id: str) -> None:
    def close(rec: RunRecord) -> None:
        rec.status, rec.exit_code, rec.ended = "failed", 130, lineage.utc_now()

    _stage_record(repo, _update_record(repo, run_id, close))


def _stage_record(repo: Repo, record: RunRecord) -> None:
    if repo.config.autostage:
        repo.git.stage([f"{configmod.GART_DIR}/runs/{record.file_name}"])


# -- stages: .gart/pipeline.yaml ------------------------------------------------------------


@dataclass
class Stage:
    """A named, repeatable run declared in .gart/pipeline.yaml."""

    name: str
    command: list[str]
    job_type: str
    inputs: list[str]
    outputs: list[tuple[str, str]]


def load_pipeline(repo: Repo) -> dict[str, Stage]:
    from gitartifacts import safeyaml

    path = repo.config.gart_dir / PIPELINE_FILE
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return {}
    data = safeyaml.load(text, what=str(path), max_bytes=1 << 20)
    if not isinstance(data, dict) or data.get("gart", 1) != 1:
        raise ManifestError(f"{path}: expected a mapping with `gart: 1`")
    stages_raw = data.get("stages") or {}
    if not isinstance(stages_raw, dict):
        raise ManifestError(f"{path}: 'stages' must be a mapping of stage names")
    stages = {}
    for name, body in stages_raw.items():
        stages[str(name)] = _parse_stage(str(name), body, path)
    return stages


def _parse_stage(name: str, body: Any, path: Path) -> Stage:
    where = f"{path}: stage {name!r}"
    if not isinstance(body, dict):
        raise ManifestError(f"{where} must be a mapping")
    unknown = set(body) - {"cmd", "job_type", "inputs", "outputs"}
    if unknown:
        raise ManifestError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    cmd = body.get("cmd")
    if isinstance(cmd, str):
        command = shlex.split(cmd)
    elif isinstance(cmd, list) and all(isinstance(c, str) for c in cmd):
        command = list(cmd)
    else:
        raise ManifestError(f"{where}: 'cmd' must be a string or a list of strings")
    inputs = body.get("inputs") or []
    outputs = body.get("outputs") or {}
    if not isinstance(inputs, list) or not all(isinstance(i, str) for i in inputs):
        raise ManifestError(f"{where}: 'inputs' must be a list like [raw-images@production]")
    if not isinstance(outputs, dict) or not all(isinstance(v, str) for v in outputs.values()):
        raise ManifestError(f"{where}: 'outputs' must map names to paths, e.g. {{model: models/}}")
    for spec in inputs:
        parse_spec(spec)
    return Stage(
        name=name, command=command, job_type=str(body.get("job_type") or name),
        inputs=list(inputs),
        outputs=[(validate_name(str(k)), v) for k, v in outputs.items()],
    )


def stage_order(stages: Mapping[str, Stage]) -> list[Stage]:
    """Stages in dependency order: a stage runs after those producing its inputs."""
    producers = {out: s.name for s in stages.values() for out, _ in s.outputs}
    order: list[Stage] = []
    state: dict[str, int] = {}

    def visit(stage: Stage, chain: tuple[str, ...]) -> None:
        mark = state.get(stage.name)
        if mark == 2:
            return
        if mark == 1:
            raise ManifestError(f"pipeline stages form a cycle: {' -> '.join(chain)}")
        state[stage.name] = 1
        for spec in stage.inputs:
            producer = producers.get(parse_spec(spec).name)
            if producer is not None and producer != stage.name:
                visit(stages[producer], (*chain, producer))
        state[stage.name] = 2
        order.append(stage)

    for stage in stages.values():
        visit(stage, (stage.name,))
    return order


def run_stage(repo: Repo, stage: Stage) -> RunOutcome:
    """Run a stage from the repository root, where its command and output paths are rooted."""
    return execute(repo, stage.command, stage.inputs, stage.outputs, stage.job_type, stage.name,
                   cwd=repo.root)


def repro(repo: Repo, target: str | None = None, dry_run: bool = False) -> list[tuple[str, str]]:
    """Re-run the stages whose inputs changed since their last successful run, in order.

    Returns (stage, what happened) for every stage considered."""
    stages = load_pipeline(repo)
    if not stages:
        raise UsageError(
            f"no stages in {configmod.GART_DIR}/{PIPELINE_FILE}",
            hint="declare stages (cmd, inputs, outputs) there, or use `gart run -- CMD`",
        )
    order = stage_order(stages)
    if target is not None:
        if target not in stages:
            raise ArtifactNotFoundError(f"no stage named {target!r}",
                                        hint="stages: " + ", ".join(sorted(stages)))
        needed = _upstream_of(stages, target)
        order = [s for s in order if s.name in needed]
    report = []
    runs, _bad = repo.load_runs()
    for stage in order:
        reason = _why_run(repo, stage, runs)
        if reason is None:
            report.append((stage.name, "up to date"))
            continue
        if dry_run:
            report.append((stage.name, f"would run: {reason}"))
            continue
        outcome = run_stage(repo, stage)
        if outcome.exit_code != 0:
            report.append((stage.name, f"failed (exit {outcome.exit_code})"))
            break
        report.append((stage.name, f"ran: {reason}"))
        runs.insert(0, outcome.record)
    return report


def _upstream_of(stages: Mapping[str, Stage], target: str) -> set[str]:
    producers = {out: s.name for s in stages.values() for out, _ in s.outputs}
    seen: set[str] = set()
    todo = [target]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for spec in stages[name].inputs:
            producer = producers.get(parse_spec(spec).name)
            if producer is not None:
                todo.append(producer)
    return seen


def _why_run(repo: Repo, stage: Stage, runs: list[RunRecord]) -> str | None:
    last = next((r for r in runs if r.name == stage.name and r.status == "finished"), None)
    if last is None:
        return "never ran successfully"
    before = {ref.name: ref.digest for ref in last.inputs}
    for spec in stage.inputs:
        name = parse_spec(spec).name
        manifest, _resolved = repo.resolve_ref(spec)
        if before.get(name) != manifest.digest:
            return f"input {name} changed"
    for out_name, path in stage.outputs:
        if not (repo.root / path).exists():
            return f"output {out_name} ({path}) is missing"
    return None


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


# -- the Python API -------------------------------------------------------------------------


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
            lineage.write_run(repo.runs_dir, record)
        self._finished = False

    @property
    def record(self) -> RunRecord:
        return lineage.read_run(self.repo.runs_dir / f"{self.id}.yaml")

    def use_artifact(self, spec: str, download: bool = True) -> ArtifactVersion:
        """Record `spec` (e.g. 'raw-images:production') as an input; fetched unless told not."""
        if download:
            manifest, ref = resolve_input(self.repo, spec)
        else:
            parsed = parse_spec(spec)
            manifest, resolved = self.repo.resolve_ref(spec)
            ref = ArtifactRef(manifest.name, manifest.digest, _version_label(resolved),
                              parsed.ref, manifest.path)
        _update_record(self.repo, self.id, lambda rec: _add_ref(rec.inputs, ref))
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
        ref = _output_ref(self.repo, result, aliases)
        _update_record(self.repo, self.id, lambda rec: _add_ref(rec.outputs, ref))
        _stage_record(self.repo, self.record)
        return ArtifactVersion(self.repo, result.manifest, ref.version)

    def finish(self, exit_code: int = 0) -> None:
        """Close the run (a joined run is closed by the surrounding `gart run`)."""
        if self._finished or self.joined:
            self._finished = True
            return

        def close(rec: RunRecord) -> None:
            rec.status = "finished" if exit_code == 0 else "failed"
            rec.exit_code = exit_code
            rec.ended = lineage.utc_now()

        record = _update_record(self.repo, self.id, close)
        _stage_record(self.repo, record)
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


__all__ = [
    "ArtifactVersion", "Run", "RunOutcome", "Stage", "execute", "init", "lineage_around",
    "lineage_graph", "load_pipeline", "repro",
]
