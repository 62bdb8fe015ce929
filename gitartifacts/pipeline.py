"""Stages declared in `.gart/pipeline.yaml` and `gart repro`: re-run what changed, in order."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitartifacts import config as configmod
from gitartifacts.api import Repo
from gitartifacts.errors import ArtifactNotFoundError, ManifestError, UsageError
from gitartifacts.paths import parse_spec, validate_name
from gitartifacts.runner import RunOutcome, execute
from gitartifacts.runrecord import RunRecord

PIPELINE_FILE = "pipeline.yaml"


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


