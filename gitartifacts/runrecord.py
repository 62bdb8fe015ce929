"""Run records: one YAML file per run (schema, strict parse, write), and a fast index over them."""

from __future__ import annotations

import gc
import json
import os
import re
import secrets
import stat
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from gitartifacts.errors import ManifestError
from gitartifacts.fsutil import atomic_write

FORMAT_VERSION = 1
RUN_SUFFIX = ".yaml"
# A run record is small; anything bigger is a mistake or an attack, so it is refused unread.
MAX_RECORD_BYTES = 4 * 1024 * 1024
# Bump when the cached form of a record changes, so stale caches are rebuilt, never misread.
INDEX_VERSION = 2
# Files modified this recently may be rewritten within one timestamp tick (git's "racily clean"
# problem); they are re-parsed on every load until they age past this window.
_RACY_NS = 2_000_000_000

RunStatus = Literal["running", "finished", "failed"]
STATUSES: tuple[str, ...] = ("running", "finished", "failed")

_RUN_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
_NAME_PART = r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}"  # paths.NAME_RE, W&B's rule
_ARTIFACT_NAME_RE = re.compile(rf"{_NAME_PART}(?:/{_NAME_PART})*")
_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
_VERSION_RE = re.compile(r"v(?:0|[1-9][0-9]*)")
_COMMIT_RE = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")
_TIME_RE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})Z"
)
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")

_RECORD_KEYS: tuple[str, ...] = (
    "gart",
    "id",
    "name",
    "job_type",
    "status",
    "command",
    "git_commit",
    "git_dirty",
    "user",
    "host",
    "started",
    "ended",
    "exit_code",
    "inputs",
    "outputs",
)
_REF_KEYS: tuple[str, ...] = ("name", "version", "requested", "digest", "path")


def utc_now() -> str:
    """The current time in the record format, 'YYYY-MM-DDTHH:MM:SSZ'."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class ArtifactRef:
    """One artifact version a run consumed or produced, joined to versions by (name, digest)."""

    name: str
    digest: str
    version: str | None = None  # the exact 'vN', when known (outputs: None until published)
    requested: str | None = None  # what the user asked for: 'production', 'v3', 'latest'
    path: str | None = None  # where it sat in the working tree during the run

    @property
    def key(self) -> tuple[str, str]:
        return (self.name, self.digest)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "requested": self.requested,
            "digest": self.digest,
            "path": self.path,
        }


@dataclass(slots=True)
class RunRecord:
    """Everything recorded about one run; `.gart/runs/<id>.yaml` is its source of truth."""

    id: str
    name: str
    job_type: str
    status: str = "running"
    command: list[str] = field(default_factory=list)
    git_commit: str | None = None
    git_dirty: bool = False
    user: str | None = None
    host: str | None = None
    started: str = field(default_factory=utc_now)
    ended: str | None = None
    exit_code: int | None = None
    inputs: list[ArtifactRef] = field(default_factory=list)
    outputs: list[ArtifactRef] = field(default_factory=list)

    @property
    def file_name(self) -> str:
        return self.id + RUN_SUFFIX

    def to_dict(self) -> dict[str, Any]:
        """The record as plain data in file order (without the `gart:` format key)."""
        return {
            "id": self.id,
            "name": self.name,
            "job_type": self.job_type,
            "status": self.status,
            "command": list(self.command),
            "git_commit": self.git_commit,
            "git_dirty": self.git_dirty,
            "user": self.user,
            "host": self.host,
            "started": self.started,
            "ended": self.ended,
            "exit_code": self.exit_code,
            "inputs": [r.to_dict() for r in self.inputs],
            "outputs": [r.to_dict() for r in self.outputs],
        }

    def uses(self, name: str, digest: str | None = None) -> bool:
        """True when the run consumed or produced `name` (that exact digest, if given)."""
        return any(
            r.name == name and (digest is None or r.digest == digest)
            for r in (*self.inputs, *self.outputs)
        )


# ---------------------------------------------------------------------------------------------
# ids and times


def new_run_id(now: datetime | None = None) -> str:
    """A file-name-safe id that sorts by start time to the millisecond:
    '20261127T221500123Z-3f9a1c2b' (runs of one second keep their order)."""
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    # 32 random bits: runs started in the same millisecond on different machines never collide.
    stamp = now.strftime("%Y%m%dT%H%M%S") + f"{now.microsecond // 1000:03d}Z"
    return f"{stamp}-{secrets.token_hex(4)}"


def is_valid_run_id(run_id: str) -> bool:
    return (
        isinstance(run_id, str)
        and _RUN_ID_RE.fullmatch(run_id) is not None
        and not run_id.endswith(".")
    )


# ---------------------------------------------------------------------------------------------
# validation (shared by the reader and the writer, so nothing invalid is ever written)


class _Invalid(Exception):
    """A field failed validation; the message is turned into a ManifestError naming the file."""


def _text(value: Any, key: str, *, optional: bool = False, max_len: int = 256) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        kind = "a non-empty string or null" if optional else "a non-empty string"
        raise _Invalid(f"{key!r} must be {kind}, not {_show(value)}")
    if len(value) > max_len:
        raise _Invalid(f"{key!r} is longer than {max_len} characters")
    if _CONTROL_RE.search(value):
        raise _Invalid(f"{key!r} contains control characters")
    return value


def _time(value: Any, key: str, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    match = _TIME_RE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise _Invalid(
            f"{key!r} must be a quoted UTC time like '2026-01-31T23:59:59Z', not {_show(value)}"
        )
    try:  # datetime() checks the calendar; strptime would be 10x slower per record
        datetime(*map(int, match.groups()))
    except ValueError:
        raise _Invalid(f"{key!r} is not a real date and time: {value!r}") from None
    return value


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_keys(data: Any, keys: tuple[str, ...], what: str) -> None:
    if not isinstance(data, dict):
        raise _Invalid(f"{what} must be a mapping, not {type(data).__name__}")
    for key in data:
        if key not in keys:
            raise _Invalid(f"unknown key {_show(key)} in {what}")
    missing = [k for k in keys if k not in data]
    if missing:
        raise _Invalid(f"{what} is missing {', '.join(repr(k) for k in missing)}")


def _ref_from_dict(data: Any, where: str) -> ArtifactRef:
    _check_keys(data, _REF_KEYS, where)
    name = data["name"]
    if (
        not isinstance(name, str)
        or len(name) > 200
        or not _ARTIFACT_NAME_RE.fullmatch(name)
        or ".." in name
        or name.endswith((".", ".lock"))
    ):
        raise _Invalid(f"{where}: invalid artifact name {_show(name)}")
    digest = data["digest"]
    if not isinstance(digest, str) or not _DIGEST_RE.fullmatch(digest):
        raise _Invalid(f"{where}: digest must be 'sha256:<64 hex>', not {_show(digest)}")
    version = data["version"]
    if version is not None and (not isinstance(version, str) or not _VERSION_RE.fullmatch(version)):
        raise _Invalid(f"{where}: version must be 'v<N>' or null, not {_show(version)}")
    requested = _text(data["requested"], f"{where}.requested", optional=True)
    path = _text(data["path"], f"{where}.path", optional=True, max_len=4096)
    return ArtifactRef(name, digest, version, requested, path)


def _record_from_dict(data: Any) -> RunRecord:
    if not isinstance(data, dict):
        raise _Invalid(f"a run record must be a mapping, not {type(data).__name__}")
    if "gart" not in data:
        raise _Invalid("missing 'gart:' format version (not a gart run record?)")
    fmt = data["gart"]
    if fmt != FORMAT_VERSION or isinstance(fmt, bool):
        raise _Invalid(
            f"unknown run record format gart: {_show(fmt)} (this gart reads {FORMAT_VERSION}; "
            "upgrade gitartifacts)"
        )
    _check_keys(data, _RECORD_KEYS, "the run record")
    run_id = data["id"]
    if not isinstance(run_id, str) or not is_valid_run_id(run_id):
        raise _Invalid(f"'id' is not a safe run id: {_show(run_id)}")
    name = _text(data["name"], "name")
    job_type = _text(data["job_type"], "job_type")
    status = data["status"]
    if status not in STATUSES or not isinstance(status, str):
        raise _Invalid(f"'status' must be one of {', '.join(STATUSES)}, not {_show(status)}")
    command = data["command"]
    if not isinstance(command, list) or not all(isinstance(a, str) for a in command):
        raise _Invalid("'command' must be a list of strings")
    if any("\x00" in a for a in command):
        raise _Invalid("'command' contains a NUL character")
    commit = data["git_commit"]
    if commit is not None and (not isinstance(commit, str) or not _COMMIT_RE.fullmatch(commit)):
        raise _Invalid(f"'git_commit' must be a full hex commit id or null, not {_show(commit)}")
    dirty = data["git_dirty"]
    if not isinstance(dirty, bool):
        raise _Invalid(f"'git_dirty' must be true or false, not {_show(dirty)}")
    user = _text(data["user"], "user", optional=True)
    host = _text(data["host"], "host", optional=True)
    started = _time(data["started"], "started")
    ended = _time(data["ended"], "ended", optional=True)
    exit_code = data["exit_code"]
    if exit_code is not None and (isinstance(exit_code, bool) or not isinstance(exit_code, int)):
        raise _Invalid(f"'exit_code' must be an integer or null, not {_show(exit_code)}")
    if status == "running" and (ended is not None or exit_code is not None):
        raise _Invalid("a 'running' run cannot have 'ended' or 'exit_code'")
    if status != "running" and ended is None:
        raise _Invalid(f"a {status!r} run must have 'ended'")
    if status == "finished" and exit_code != 0:
        raise _Invalid(f"a 'finished' run must have exit_code 0, not {_show(exit_code)}")
    refs: dict[str, list[ArtifactRef]] = {}
    for key in ("inputs", "outputs"):
        items = data[key]
        if not isinstance(items, list):
            raise _Invalid(f"{key!r} must be a list")
        refs[key] = [_ref_from_dict(item, f"{key}[{i}]") for i, item in enumerate(items)]
    assert name is not None and job_type is not None and started is not None
    return RunRecord(
        run_id,
        name,
        job_type,
        status,
        list(command),
        commit,
        dirty,
        user,
        host,
        started,
        ended,
        exit_code,
        refs["inputs"],
        refs["outputs"],
    )


def _record_to_yaml_data(record: RunRecord) -> dict[str, Any]:
    return {"gart": FORMAT_VERSION, **record.to_dict()}


def validate_run(record: RunRecord) -> RunRecord:
    """Check a record as the reader would; raises ManifestError naming the run id."""
    try:
        return _record_from_dict(_record_to_yaml_data(record))
    except _Invalid as exc:
        raise ManifestError(f"run {record.id!r}: {exc}") from None


# ---------------------------------------------------------------------------------------------
# reading and writing one record


def write_run(runs_dir: Path, record: RunRecord) -> Path:
    """Write `<runs_dir>/<id>.yaml` atomically (temp file, fsync, rename); returns its path."""
    if not is_valid_run_id(record.id):
        raise ManifestError(f"run id {record.id!r} is not a safe file name")
    validate_run(record)
    data = dump_record(record).encode("utf-8")
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    target = runs_dir / record.file_name
    # The temp name is dot-prefixed, which load_runs skips: a crash mid-write never shows a
    # half-written record to queries.
    atomic_write(target, data, durable=True, mode=0o644)
    return target


def dump_record(record: RunRecord) -> str:
    """The record as YAML in JSON's flow syntax (valid YAML, one key per line).

    JSON-shaped YAML reads ~50x faster (json's C parser) than block YAML through PyYAML,
    which is what keeps a cold `gart runs` over 10,000 records fast in a fresh clone."""
    return json.dumps(_record_to_yaml_data(record), indent=1, ensure_ascii=False) + "\n"


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("duplicate key")
    return out


def parse_run(data: bytes | str, file_name: str) -> RunRecord:
    """Strictly parse one record's bytes; `file_name` (its `<id>.yaml`) must match its id."""
    if len(data) > MAX_RECORD_BYTES:
        raise ManifestError(f"{file_name}: larger than {MAX_RECORD_BYTES} bytes")
    try:  # the shape gart writes; anything else (hand-written block YAML) takes the YAML path
        parsed = json.loads(data, object_pairs_hook=_no_duplicate_keys)
    except (ValueError, RecursionError):
        # Imported here: a warm index answers queries without loading PyYAML at all.
        from gitartifacts.safeyaml import load

        parsed = load(data, what=file_name, max_bytes=MAX_RECORD_BYTES, max_nodes=100_000)
    try:
        record = _record_from_dict(parsed)
    except _Invalid as exc:
        raise ManifestError(f"{file_name}: {exc}") from None
    if record.file_name != file_name:
        raise ManifestError(
            f"{file_name}: holds run id {record.id!r}; the file must be named {record.file_name}"
        )
    return record


def read_run(path: Path | str) -> RunRecord:
    """Read and strictly validate one run record; every problem is a ManifestError naming it."""
    path = Path(path)
    try:
        st = os.lstat(path)
        if not _is_regular(st.st_mode):
            raise ManifestError(f"{path}: not a regular file")
        if st.st_size > MAX_RECORD_BYTES:
            raise ManifestError(f"{path}: larger than {MAX_RECORD_BYTES} bytes")
        with open(path, "rb") as fh:
            data = fh.read(MAX_RECORD_BYTES + 1)
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read run record: {exc.strerror or exc}") from None
    try:
        return parse_run(data, path.name)
    except ManifestError as exc:
        # parse_run names the file; the caller of read_run wants the whole path.
        msg = exc.message
        if msg.startswith(path.name + ":"):
            msg = msg[len(path.name) + 1 :].lstrip()
        raise ManifestError(f"{path}: {msg}") from None


def _is_regular(mode: int) -> bool:
    return stat.S_ISREG(mode)


# ---------------------------------------------------------------------------------------------
# all records, through an incremental index cache


def _read_index(index_path: Path) -> tuple[list[Any], dict[str, Any]]:
    """(ref table, file entries), or empty ones when the index is missing, foreign or damaged."""
    try:
        with open(index_path, "rb") as fh:
            data = json.loads(fh.read())
    except (OSError, ValueError):
        return [], {}
    if not isinstance(data, dict) or data.get("index") != INDEX_VERSION:
        return [], {}
    refs, files = data.get("refs"), data.get("files")
    if not isinstance(refs, list) or not isinstance(files, dict):
        return [], {}
    return refs, files


def _write_index(index_path: Path, files: dict[str, tuple[list[int], RunRecord | str]]) -> None:
    """Store every entry; identical refs (a dataset many runs consumed) are stored once."""
    table: dict[ArtifactRef, int] = {}

    def ref_ids(refs: list[ArtifactRef]) -> list[int]:
        return [table.setdefault(r, len(table)) for r in refs]

    out: dict[str, list[Any]] = {}
    for name, (stamp, value) in files.items():
        if isinstance(value, RunRecord):
            r = value
            row = [
                r.id, r.name, r.job_type, r.status, r.command, r.git_commit, r.git_dirty,
                r.user, r.host, r.started, r.ended, r.exit_code,
                ref_ids(r.inputs), ref_ids(r.outputs),
            ]  # fmt: skip
            out[name] = [stamp, row]
        else:
            out[name] = [stamp, value]
    refs = [[a.name, a.digest, a.version, a.requested, a.path] for a in table]
    # The index is only a cache: failing to write it must never fail the query.
    try:
        index_path.parent.mkdir(parents=True, exist_ok=True)
        # dumps, not dump: only the one-shot call uses json's C encoder (10x faster).
        atomic_write(index_path, json.dumps(
            {"index": INDEX_VERSION, "refs": refs, "files": out}, separators=(",", ":"),
        ).encode("utf-8"))
    except OSError:
        pass


def load_runs(runs_dir: Path, index_path: Path) -> tuple[list[RunRecord], list[tuple[str, str]]]:
    """All valid run records newest first, plus (file name, problem) for each corrupt one.

    Parsed records are cached in `index_path` keyed by file name, size, mtime_ns, ctime_ns and
    inode; only new or changed files are parsed again. The YAML files stay the source of truth:
    a missing or damaged index is rebuilt silently.
    """
    runs_dir = Path(runs_dir)
    index_path = Path(index_path)
    try:
        scan = os.scandir(runs_dir)
    except FileNotFoundError:
        return [], []
    except OSError as exc:
        raise ManifestError(f"{runs_dir}: cannot list run records: {exc.strerror or exc}") from None
    # Building ~50k small objects triggers many useless GC passes; nothing here forms cycles.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        with scan:
            files, changed = _scan(scan, index_path)
        runs: list[RunRecord] = []
        errors: list[tuple[str, str]] = []
        for name, (_, value) in files.items():
            if isinstance(value, RunRecord):
                runs.append(value)
            else:
                errors.append((name, value))
        runs.sort(key=newest_first_key, reverse=True)
        errors.sort()
    finally:
        if gc_was_enabled:
            gc.enable()
    if changed:
        _write_index(index_path, files)
    return runs, errors


def _scan(
    scan: Iterable[os.DirEntry[str]], index_path: Path
) -> tuple[dict[str, tuple[list[int], RunRecord | str]], bool]:
    now_ns = time.time_ns()
    ref_rows, old = _read_index(index_path)
    ref_objs: list[ArtifactRef | None] = [None] * len(ref_rows)

    def ref(i: int) -> ArtifactRef:
        obj = ref_objs[i] if i >= 0 else None  # negative indexes would silently wrap around
        if obj is None:
            obj = ref_objs[i] = ArtifactRef(*ref_rows[i][:5])
        return obj

    files: dict[str, tuple[list[int], RunRecord | str]] = {}
    changed = False
    for entry in scan:
        name = entry.name
        if name.startswith(".") or not name.endswith(RUN_SUFFIX):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue  # deleted while we listed
        stamp = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
        racy = now_ns - st.st_mtime_ns <= _RACY_NS
        value: RunRecord | str | None = None
        cached = old.get(name)
        if not racy and type(cached) is list and len(cached) == 2 and cached[0] == stamp:
            row = cached[1]
            try:
                if type(row) is str:
                    value = row
                else:
                    value = RunRecord(
                        *row[:12], [ref(i) for i in row[12]], [ref(i) for i in row[13]]
                    )
            except (TypeError, IndexError, ValueError):
                value = None  # a damaged cache entry: parse the file instead
        if value is None:
            changed = True
            value = _parse_entry(entry.path, name, st)
            if racy:
                # A stamp that never matches: parse it again until it is old enough to trust.
                stamp = [-1, 0, 0, 0]
        files[name] = (stamp, value)
    return files, changed or len(files) != len(old)


def _parse_entry(path: str, name: str, st: os.stat_result) -> RunRecord | str:
    """The record, or a one-line description of what is wrong with the file."""
    if not _is_regular(st.st_mode):
        return "not a regular file (symlinks are not followed)"
    if st.st_size > MAX_RECORD_BYTES:
        return f"larger than {MAX_RECORD_BYTES} bytes"
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_RECORD_BYTES + 1)
        record = parse_run(data, name)
    except OSError as exc:
        return f"cannot read: {exc.strerror or exc}"
    except ManifestError as exc:
        msg = exc.message
        if msg.startswith(name + ":"):
            msg = msg[len(name) + 1 :].lstrip()
        return msg
    return record


def newest_first_key(run: RunRecord) -> tuple[str, str]:
    return (run.started, run.id)


def filter_runs(
    runs: Iterable[RunRecord],
    job_type: str | None = None,
    artifact: str | None = None,
    digest: str | None = None,
) -> list[RunRecord]:
    """Runs of that job type that consumed or produced that artifact (and digest), order kept."""
    out = []
    for run in runs:
        if job_type is not None and run.job_type != job_type:
            continue
        if artifact is not None and not run.uses(artifact, digest):
            continue
        if artifact is None and digest is not None:
            if not any(r.digest == digest for r in (*run.inputs, *run.outputs)):
                continue
        out.append(run)
    return out
