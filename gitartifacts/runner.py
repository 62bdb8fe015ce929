"""`gart run`: resolve inputs, run the command under supervision, add outputs, record the run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitartifacts import runrecord
from gitartifacts.api import AddResult, Repo
from gitartifacts.errors import GartError, ManifestError, UsageError
from gitartifacts.paths import validate_name
from gitartifacts.runrecord import RunRecord
from gitartifacts.runs import (
    add_ref,
    ensure_present,
    input_env_name,
    new_record,
    output_ref,
    resolve_input,
    stage_record,
    update_record,
)

COMMAND_NOT_FOUND = 127


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
        ensure_present(repo, manifest, ref)
    record = new_record(repo, name, job_type, command)
    record.inputs = [ref for _manifest, ref in resolved]
    runrecord.write_run(repo.runs_dir, record)
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
    finished = runrecord.utc_now()

    def finish(rec: RunRecord) -> None:
        rec.status = "finished" if exit_code == 0 and failure is None else "failed"
        rec.exit_code = exit_code if failure is None else (exit_code or 1)
        rec.ended = finished
        for result in added:
            add_ref(rec.outputs, output_ref(repo, result))

    record = update_record(repo, record.id, finish)
    stage_record(repo, record)
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
        rec.status, rec.exit_code, rec.ended = "failed", 130, runrecord.utc_now()

    stage_record(repo, update_record(repo, run_id, close))

