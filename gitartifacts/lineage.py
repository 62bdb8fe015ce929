"""Run records (lineage) as one YAML file per run, a fast index over them, and graph queries."""

from __future__ import annotations

import gc
import json
import os
import re
import secrets
import stat
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
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
_NAME_PART = r"[a-z0-9][a-z0-9._-]*"
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
        runs.sort(key=_newest_first_key, reverse=True)
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


def _newest_first_key(run: RunRecord) -> tuple[str, str]:
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


# ---------------------------------------------------------------------------------------------
# the lineage graph


@dataclass(frozen=True)
class ArtifactNode:
    """One artifact version in the graph: a (name, digest), labelled with its version if any."""

    id: str
    name: str
    digest: str
    version: str | None
    aliases: tuple[str, ...] = ()

    kind: Literal["artifact"] = "artifact"

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version or short_digest(self.digest)}"


@dataclass(frozen=True)
class RunNode:
    """One run in the graph."""

    id: str
    run: RunRecord

    kind: Literal["run"] = "run"

    @property
    def label(self) -> str:
        return self.run.name


Node = ArtifactNode | RunNode


@dataclass(frozen=True)
class Edge:
    """artifact -> run ('consumed') or run -> artifact ('produced')."""

    source: str
    target: str
    kind: Literal["consumed", "produced"]
    requested: str | None = None
    path: str | None = None


def short_digest(digest: str, hex_chars: int = 12) -> str:
    algo, _, hexpart = digest.partition(":")
    return f"{algo}:{hexpart[:hex_chars]}"


def run_node_id(run_id: str) -> str:
    return "run:" + run_id


Key = tuple[str, str]  # (artifact name, digest)
# Inside the graph a node is a run id (str) or an artifact Key (tuple): cheap to make and hash.
_Handle = str | Key


class LineageGraph:
    """Runs and artifact versions joined on (name, digest); edges artifact->run->artifact.

    Building it only indexes who produced and consumed what, so a 10k-run graph costs a few
    tens of milliseconds; node objects and ids are made on first use, for queries' small
    subgraphs as a rule.
    """

    def __init__(
        self,
        runs: Iterable[RunRecord],
        versions: Mapping[Key, str] | None = None,
        aliases: Mapping[Key, Sequence[str]] | None = None,
    ) -> None:
        self._versions: Mapping[Key, str] = versions or {}
        self._aliases: Mapping[Key, Sequence[str]] = aliases or {}
        self._runs: dict[str, RunRecord] = {r.id: r for r in runs}
        self._keys: set[Key] | None = None  # None: every artifact some run touches
        self._index()
        self.root: str | None = None
        self._cut_up: set[_Handle] = set()
        self._cut_down: set[_Handle] = set()

    def _index(self) -> None:
        produced: dict[Key, list[str]] = {}
        consumed: dict[Key, list[str]] = {}
        keys = self._keys
        for run in self._runs.values():
            rid = run.id
            for ref in run.inputs:
                key = (ref.name, ref.digest)
                if keys is None or key in keys:
                    consumed.setdefault(key, []).append(rid)
            for ref in run.outputs:
                key = (ref.name, ref.digest)
                if keys is None or key in keys:
                    produced.setdefault(key, []).append(rid)
        self._produced_by = produced
        self._consumed_by = consumed
        self._cache: _Materialized | None = None

    # -- basic access ------------------------------------------------------------------------

    @property
    def nodes(self) -> list[Node]:
        """All nodes, artifacts first, each kind sorted by id."""
        m = self._materialized()
        return sorted(m.nodes.values(), key=lambda n: (n.kind != "artifact", n.id))

    @property
    def edges(self) -> list[Edge]:
        """All edges, sorted by (source, target)."""
        m = self._materialized()
        return [m.edges[k] for k in sorted(m.edges)]

    @property
    def runs(self) -> list[RunRecord]:
        """The runs in the graph, newest first."""
        return sorted(self._runs.values(), key=_newest_first_key, reverse=True)

    @property
    def truncated_upstream(self) -> frozenset[str]:
        """Node ids whose further upstream was cut off by `depth`."""
        return frozenset(self._materialized().ids[h] for h in self._cut_up)

    @property
    def truncated_downstream(self) -> frozenset[str]:
        """Node ids whose further downstream was cut off by `depth`."""
        return frozenset(self._materialized().ids[h] for h in self._cut_down)

    def node(self, node_id: str) -> Node:
        return self._materialized().nodes[node_id]

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._materialized().nodes

    def __len__(self) -> int:
        return len(self._materialized().nodes)

    def artifact_node_id(self, name: str, digest: str) -> str | None:
        """The node id of (name, digest) in this graph, or None when it is not in it."""
        return self._materialized().ids.get((name, digest))

    def predecessors(self, node_id: str) -> list[str]:
        m = self._materialized()
        return sorted(set(m.pred.get(node_id, ())), key=self._order_key)

    def successors(self, node_id: str) -> list[str]:
        m = self._materialized()
        return sorted(set(m.succ.get(node_id, ())), key=self._order_key)

    def edge(self, source: str, target: str) -> Edge | None:
        return self._materialized().edges.get((source, target))

    def _order_key(self, node_id: str) -> tuple[Any, ...]:
        # One deterministic child order for every renderer: artifacts by name and version,
        # runs oldest first.
        node = self._materialized().nodes.get(node_id)
        if isinstance(node, RunNode):
            return (1, node.run.started, node.run.id)
        if isinstance(node, ArtifactNode):
            return (0, node.name, _version_number(node.version), node.digest)
        return (2, node_id)

    # -- queries -----------------------------------------------------------------------------

    def producers_of(self, name: str, digest: str) -> list[RunRecord]:
        """Runs that produced this artifact version, newest first."""
        return self._sorted_runs(self._produced_by.get((name, digest), ()))

    def consumers_of(self, name: str, digest: str) -> list[RunRecord]:
        """Runs that consumed this artifact version, newest first."""
        return self._sorted_runs(self._consumed_by.get((name, digest), ()))

    def _sorted_runs(self, run_ids: Iterable[str]) -> list[RunRecord]:
        runs = [self._runs[i] for i in set(run_ids)]
        return sorted(runs, key=_newest_first_key, reverse=True)

    def find_runs(
        self, job_type: str | None = None, artifact: str | None = None, digest: str | None = None
    ) -> list[RunRecord]:
        """Runs of that job type that consumed or produced that artifact, newest first."""
        return filter_runs(self.runs, job_type=job_type, artifact=artifact, digest=digest)

    def around(
        self,
        name: str,
        digest: str,
        depth: int | None = None,
        upstream: bool = True,
        downstream: bool = True,
    ) -> LineageGraph:
        """The subgraph around one artifact version, rooted at it.

        `depth` counts runs: 1 = the runs that produced (upstream) / consumed (downstream) it,
        with the artifacts those runs consumed / produced; None = everything reachable. An
        artifact no run touched yields a graph holding just that node.
        """
        return self._around((name, digest), depth, upstream, downstream)

    def around_run(
        self,
        run_id: str,
        depth: int | None = None,
        upstream: bool = True,
        downstream: bool = True,
    ) -> LineageGraph:
        """The subgraph around one run: depth 0 = the run with its inputs and outputs."""
        if run_id not in self._runs:
            raise KeyError(run_id)
        return self._around(run_id, depth, upstream, downstream)

    def around_node(
        self,
        node_id: str,
        depth: int | None = None,
        upstream: bool = True,
        downstream: bool = True,
    ) -> LineageGraph:
        """The subgraph around any node id of this graph (`run:<id>` or `artifact:...`)."""
        if node_id.startswith("run:") and node_id[4:] in self._runs:
            return self._around(node_id[4:], depth, upstream, downstream)
        node = self._materialized().nodes.get(node_id)
        if not isinstance(node, ArtifactNode):
            raise KeyError(node_id)
        return self._around((node.name, node.digest), depth, upstream, downstream)

    def _around(
        self, root: _Handle, depth: int | None, upstream: bool, downstream: bool
    ) -> LineageGraph:
        if depth is not None and depth < 0:
            raise ValueError("depth must be >= 0")
        limit = None
        if depth is not None:
            # A run root already brings its own inputs and outputs, one edge away.
            limit = 2 * depth + (1 if isinstance(root, str) else 0)
        keep: set[_Handle] = {root}
        cut_up: set[_Handle] = set()
        cut_down: set[_Handle] = set()
        if upstream:
            keep |= self._reach(root, self._upstream_of, limit, cut_up)
        if downstream:
            keep |= self._reach(root, self._downstream_of, limit, cut_down)
        sub = self._restricted(keep)
        sub.root = sub._materialized().ids[root]
        sub._cut_up = cut_up
        sub._cut_down = cut_down
        return sub

    def _upstream_of(self, h: _Handle) -> list[_Handle]:
        if isinstance(h, str):
            return self._refs_in_graph(self._runs[h].inputs)
        return list(self._produced_by.get(h, ()))

    def _downstream_of(self, h: _Handle) -> list[_Handle]:
        if isinstance(h, str):
            return self._refs_in_graph(self._runs[h].outputs)
        return list(self._consumed_by.get(h, ()))

    def _refs_in_graph(self, refs: list[ArtifactRef]) -> list[_Handle]:
        keys = self._keys
        return [(r.name, r.digest) for r in refs if keys is None or (r.name, r.digest) in keys]

    @staticmethod
    def _reach(
        start: _Handle,
        neighbours: Callable[[_Handle], list[_Handle]],
        limit: int | None,
        cut: set[_Handle],
    ) -> set[_Handle]:
        seen = {start}
        queue = deque([(start, 0)])
        while queue:
            current, dist = queue.popleft()
            nexts = neighbours(current)
            if limit is not None and dist >= limit:
                # BFS order: everything within the limit is already seen, so this is exact.
                if any(n not in seen for n in nexts):
                    cut.add(current)
                continue
            for n in nexts:
                if n not in seen:
                    seen.add(n)
                    queue.append((n, dist + 1))
        return seen

    def _restricted(self, keep: set[_Handle]) -> LineageGraph:
        sub = LineageGraph.__new__(LineageGraph)
        sub._versions = self._versions
        sub._aliases = self._aliases
        sub._runs = {h: self._runs[h] for h in keep if isinstance(h, str)}
        sub._keys = {h for h in keep if isinstance(h, tuple)}
        sub._index()
        sub.root = None
        sub._cut_up = set()
        sub._cut_down = set()
        return sub

    # -- node objects, made on demand ----------------------------------------------------------

    def _materialized(self) -> _Materialized:
        if self._cache is None:
            self._cache = self._materialize()
        return self._cache

    def _materialize(self) -> _Materialized:
        keys = set(self._produced_by) | set(self._consumed_by)
        if self._keys is not None:
            keys |= self._keys  # artifacts no run touched, e.g. the root of a lone subgraph
        labels = {key: self._label_of(key) for key in keys}
        ids: dict[_Handle, str] = dict(_assign_artifact_ids(labels))
        nodes: dict[str, Node] = {}
        for key in sorted(keys):
            nid = ids[key]
            aliases = tuple(self._aliases.get(key, ()))
            nodes[nid] = ArtifactNode(nid, key[0], key[1], labels[key], aliases)
        edges: dict[tuple[str, str], Edge] = {}
        for run in self._runs.values():
            rid = run_node_id(run.id)
            ids[run.id] = rid
            nodes[rid] = RunNode(rid, run)
            for ref in run.inputs:
                aid = ids.get((ref.name, ref.digest))
                if aid is not None and (aid, rid) not in edges:
                    edges[(aid, rid)] = Edge(aid, rid, "consumed", ref.requested, ref.path)
            for ref in run.outputs:
                aid = ids.get((ref.name, ref.digest))
                if aid is not None and (rid, aid) not in edges:
                    edges[(rid, aid)] = Edge(rid, aid, "produced", ref.requested, ref.path)
        succ: dict[str, list[str]] = {}
        pred: dict[str, list[str]] = {}
        for src, dst in edges:
            succ.setdefault(src, []).append(dst)
            pred.setdefault(dst, []).append(src)
        return _Materialized(ids, nodes, edges, succ, pred)

    def _label_of(self, key: Key) -> str | None:
        """The caller's version for (name, digest), else what the runs recorded if they agree."""
        version = self._versions.get(key)
        if version:
            return version
        seen: set[str] = set()
        for rid in (*self._produced_by.get(key, ()), *self._consumed_by.get(key, ())):
            run = self._runs[rid]
            for ref in (*run.inputs, *run.outputs):
                if ref.version and ref.name == key[0] and ref.digest == key[1]:
                    seen.add(ref.version)
        return next(iter(seen)) if len(seen) == 1 else None


@dataclass
class _Materialized:
    ids: dict[_Handle, str]
    nodes: dict[str, Node]
    edges: dict[tuple[str, str], Edge]
    succ: dict[str, list[str]]
    pred: dict[str, list[str]]


def _version_number(version: str | None) -> int:
    return int(version[1:]) if version else -1


def _assign_artifact_ids(labels: Mapping[Key, str | None]) -> dict[Key, str]:
    """`artifact:<name>@<vN>` where that is unambiguous, else `artifact:<name>@sha256:<prefix>`."""
    by_version: dict[tuple[str, str], int] = {}
    by_prefix: dict[tuple[str, str], int] = {}
    for (name, digest), version in labels.items():
        if version:
            by_version[(name, version)] = by_version.get((name, version), 0) + 1
        p = (name, short_digest(digest))
        by_prefix[p] = by_prefix.get(p, 0) + 1
    ids = {}
    for (name, digest), version in labels.items():
        if version and by_version[(name, version)] == 1:
            ids[(name, digest)] = f"artifact:{name}@{version}"
        elif by_prefix[(name, short_digest(digest))] == 1:
            ids[(name, digest)] = f"artifact:{name}@{short_digest(digest)}"
        else:
            ids[(name, digest)] = f"artifact:{name}@{digest}"
    return ids
