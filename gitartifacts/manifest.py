"""The artifact manifest: schema, strict parse and canonical, byte-stable YAML dump."""

from __future__ import annotations

import gc
import hashlib
import json
import marshal
import math
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, NamedTuple

from gitartifacts.errors import GartError, ManifestError
from gitartifacts.fsutil import atomic_write
from gitartifacts.paths import (
    CONTROL_CHARS_RE,
    check_entry_paths,
    check_relative_path,
    validate_name,
    validate_type,
)

FORMAT_VERSION = 1
# gart: 2 marks a manifest some of whose files may be stored as content-defined chunks, and
# gart: 3 one with external references (a `refs` field; docs/format.md §3.7, §3.9). Each
# is written only when needed, so readers of an older version refuse a file they would
# misread, and never a file they can read.
CHUNKED_FORMAT_VERSION = 2
REFERENCES_FORMAT_VERSION = 3
READABLE_VERSIONS = (FORMAT_VERSION, CHUNKED_FORMAT_VERSION, REFERENCES_FORMAT_VERSION)
MAX_MANIFEST_BYTES = 1 << 30
MAX_ENTRIES = 10_000_000
MAX_METADATA_BYTES = 1 << 20
MAX_METADATA_DEPTH = 16  # the YAML reader refuses nesting deeper than 32 levels
GART_DIR = ".gart"  # gart's own directory: no artifact may write into it
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
MAX_FILE_SIZE = 1 << 50
OID_RE = re.compile(r"[0-9a-f]{64}")
DIGEST_PREFIX = "sha256:"
_KEYS = (
    "gart", "name", "type", "description", "metadata", "path", "include", "exclude",
    "digest", "size", "count", "files",
)
_KEYS_WITH_REFS = (*_KEYS, "refs")
# What pins a reference, by source kind (docs/format.md §3.9): values are printable ASCII.
PIN_KEYS = frozenset(
    {"etag", "version_id", "generation", "md5", "crc32c", "last_modified", "mtime_ns"}
)
MAX_URI_CHARS = 8192
_PIN_VALUE_RE = re.compile(r"[\x21-\x7e][\x20-\x7e]{0,1023}")
_URI_RE = re.compile(r"(s3|gs|az|https?|file)://\S(?:.*\S)?")
REFS_SEPARATOR = "refs\n"  # between the two blocks in the digest: never a files line
_ENTRY_RE = re.compile(r"([0-9a-f]{64}) (0|[1-9][0-9]{0,15}) ([^\n]+)")
_ENTRY_LINE_RE = re.compile(r"^" + _ENTRY_RE.pattern + r"$", re.MULTILINE)


CONFLICT_MARKERS = ("<<<<<<<", "=======", ">>>>>>>")  # git's, as the merge driver writes them
_NAME_IN_PATH_RE = re.compile(r"(?:^|/)\.gart/artifacts/(.+)\.yaml")


class MergeConflictError(ManifestError):
    """A manifest still holds the conflict markers of an unfinished merge."""


def has_conflict_markers(text: str | bytes) -> bool:
    """True when `text` has a line starting with git's `<<<<<<< ` conflict marker."""
    marker = CONFLICT_MARKERS[0] + " "
    if isinstance(text, bytes):
        return text.startswith(marker.encode()) or b"\n" + marker.encode() in text
    return text.startswith(marker) or "\n" + marker in text


def _conflict_error(what: str) -> MergeConflictError:
    found = _NAME_IN_PATH_RE.search(what)
    name = found.group(1) if found else "NAME"
    return MergeConflictError(
        f"{what}: unresolved merge conflict (the same files changed on both sides)",
        hint=f"keep one side with `gart checkout --ours {name}` or `gart checkout --theirs "
        f"{name}`, or put the files you want in place and `gart add PATH --name {name}`",
    )


class Entry(NamedTuple):
    """One file of an artifact: its path relative to the artifact root, sha256 and size."""

    path: str
    oid: str
    size: int


class Reference(NamedTuple):
    """One file whose bytes stay at a URI (W&B's add_reference): where, and what pins it.

    `pin` holds sorted (key, value) pairs from PIN_KEYS; `sha256` is set when gart read the
    bytes; `checksum` False records the URI only (checked by existence only)."""

    path: str
    uri: str
    size: int | None = None
    sha256: str | None = None
    pin: tuple[tuple[str, str], ...] = ()
    checksum: bool = True

    @property
    def pins(self) -> dict[str, str]:
        return dict(self.pin)

    def line(self) -> str:
        """The canonical refs-block line (docs/format.md §3.9)."""
        data: dict[str, Any] = {"path": self.path, "uri": self.uri}
        if not self.checksum:
            data["checksum"] = False
        else:
            data["size"] = self.size
            if self.sha256 is not None:
                data["sha256"] = self.sha256
            data.update(sorted(self.pin))
        return json.dumps(data, ensure_ascii=False)


@dataclass(frozen=True)
class Manifest:
    """An artifact version's content: what files, where they live, what they are (immutable)."""

    name: str
    type: str = "dataset"
    description: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    path: str = "."
    include: tuple[str, ...] = (".",)
    exclude: tuple[str, ...] = ()
    entries: tuple[Entry, ...] = ()
    references: tuple[Reference, ...] = ()  # external URIs; stored-only artifacts have none
    # The storage format its writer chose: 1, or 2 when files may be stored as chunks. Not
    # part of the content: the digest, and so the version, never depends on it.
    format: int = field(default=FORMAT_VERSION, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "entries", tuple(sorted(self.entries)))
        object.__setattr__(self, "references", tuple(self.references))
        if self.references:
            object.__setattr__(self, "references", tuple(sorted(
                r if list(r.pin) == sorted(r.pin) else r._replace(pin=tuple(sorted(r.pin)))
                for r in self.references)))
        object.__setattr__(self, "include", tuple(self.include))
        object.__setattr__(self, "exclude", tuple(self.exclude))

    @cached_property
    def files_block(self) -> str:
        return "".join([f"{e.oid} {e.size} {e.path}\n" for e in self.entries])

    @cached_property
    def refs_block(self) -> str:
        return "".join([r.line() + "\n" for r in self.references])

    @cached_property
    def digest(self) -> str:
        text = self.files_block
        if self.references:  # a stored-only artifact's digest is the format-1 one
            text += REFS_SEPARATOR + self.refs_block
        return DIGEST_PREFIX + hashlib.sha256(text.encode("utf-8")).hexdigest()

    @cached_property
    def size(self) -> int:
        return sum(e.size for e in self.entries) + sum(r.size or 0 for r in self.references)

    @property
    def count(self) -> int:
        return len(self.entries) + len(self.references)

    @property
    def format_version(self) -> int:
        """The `gart:` value this manifest is written with: 3 with references, else its
        storage format (1, or 2 with chunks)."""
        return REFERENCES_FORMAT_VERSION if self.references else self.format

    def by_path(self) -> dict[str, Entry]:
        return {e.path: e for e in self.entries}


def dumps(manifest: Manifest) -> str:
    """The canonical text: fixed key order, one line per file, byte-identical on re-write."""
    validate(manifest, entries=True)
    block = manifest.files_block
    files = "|\n" + "".join("  " + line + "\n" for line in block.splitlines()) if block else '""\n'
    refs = ""
    if manifest.references:
        refs = "refs: |\n" + "".join("  " + line + "\n" for line in
                                     manifest.refs_block.splitlines())
    return (
        f"gart: {manifest.format_version}\n"
        f"name: {_scalar(manifest.name)}\n"  # quoted when YAML would read it as non-string:
        f"type: {_scalar(manifest.type)}\n"  # a name such as `yes`, `null` or `0`
        f"description: {_scalar(manifest.description)}\n"
        f"metadata: {_flow(manifest.metadata)}\n"
        f"path: {_scalar(manifest.path)}\n"
        f"include: {_flow(list(manifest.include))}\n"
        f"exclude: {_flow(list(manifest.exclude))}\n"
        f"digest: {manifest.digest}\n"
        f"size: {manifest.size}\n"
        f"count: {manifest.count}\n"
        f"files: {files}"
        f"{refs}"
    )


def loads(text: str | bytes, what: str = "manifest") -> Manifest:
    """Parse and validate a manifest; anything unexpected is a ManifestError naming `what`
    and, like every user-facing error, the next step."""
    # The parse builds one tuple per file and no cycles: the cyclic GC would only re-walk
    # them (a third of the load time at 100k entries).
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _loads(text, what)
    except ManifestError as exc:
        if not exc.hint:
            exc.hint = (
                f"the manifest was edited by hand or damaged: restore it with "
                f"`git checkout -- {what}`, or re-create it with `gart add`"
            )
        raise
    finally:
        if collecting:
            gc.enable()


def _loads(text: str | bytes, what: str) -> Manifest:
    from gitartifacts import safeyaml  # not at import: a cached manifest needs no YAML parser

    if has_conflict_markers(text):
        raise _conflict_error(what)
    data = safeyaml.load(text, what=what, max_bytes=MAX_MANIFEST_BYTES)
    if not isinstance(data, dict):
        raise ManifestError(f"{what}: expected a mapping")
    version = data.get("gart")
    if version not in READABLE_VERSIONS or isinstance(version, bool):  # `gart: true` == 1
        raise ManifestError(
            f"{what}: manifest format gart: {version!r} is not supported (this gart reads "
            f"{' and '.join(map(str, READABLE_VERSIONS))})",
            hint="upgrade gitartifacts (pip install -U gitartifacts)",
        )
    keys = _KEYS_WITH_REFS if version == REFERENCES_FORMAT_VERSION else _KEYS
    unknown = set(data) - set(keys)
    if unknown:
        raise ManifestError(f"{what}: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    missing = [k for k in keys if k not in data]
    if missing:
        raise ManifestError(f"{what}: missing field(s) {', '.join(missing)}")
    files = data["files"]
    if not isinstance(files, str):
        raise ManifestError(f"{what}: 'files' must be a block of lines")
    refs = data.get("refs", "")
    if not isinstance(refs, str):
        raise ManifestError(f"{what}: 'refs' must be a block of lines")
    try:
        manifest = Manifest(
            name=_expect(data, "name", str, what),
            type=_expect(data, "type", str, what),
            description=_expect(data, "description", str, what),
            metadata=_expect(data, "metadata", dict, what),
            path=_expect(data, "path", str, what),
            include=tuple(_expect(data, "include", list, what)),
            exclude=tuple(_expect(data, "exclude", list, what)),
            entries=_parse_files(files, what),
            references=_parse_refs(refs, what),
            format=min(version, CHUNKED_FORMAT_VERSION),
        )
        if files:  # the block as read is the canonical block: reuse it instead of rebuilding
            manifest.__dict__["files_block"] = files
        if manifest.references:
            manifest.__dict__["refs_block"] = refs
            check_entry_paths(sorted([*(e.path for e in manifest.entries),
                                      *(r.path for r in manifest.references)]), what)
        validate(manifest, entries=False)  # _parse_files already checked every entry
    except GartError as exc:
        message = exc.message if what in exc.message else f"{what}: {exc.message}"
        raise ManifestError(message) from None
    if data["digest"] != manifest.digest:
        raise ManifestError(
            f"{what}: digest does not match its file list (edited by hand or corrupted)",
            hint=f"restore the manifest from git (git checkout -- {what}) or re-run gart add",
        )
    if data["size"] != manifest.size or data["count"] != manifest.count:
        raise ManifestError(f"{what}: size/count do not match its file list")
    return manifest


def _parse_files(block: str, what: str) -> list[Entry]:
    found = _ENTRY_LINE_RE.findall(block)
    if len(found) > MAX_ENTRIES:
        raise ManifestError(f"{what}: more than {MAX_ENTRIES} entries")
    if len(found) != block.count("\n") or (block and not block.endswith("\n")):
        lines = block.split("\n")
        number = next((i for i, line in enumerate(lines, 1) if not _ENTRY_RE.fullmatch(line)),
                      None)
        if number is None:  # every line is well formed: the last one lacks its newline
            raise ManifestError(f"{what}: file line {len(lines)} does not end with a newline")
        raise ManifestError(f"{what}: file line {number} is not '<sha256> <size> <path>'")
    new = tuple.__new__
    entries = [new(Entry, (path, oid, int(size))) for oid, size, path in found]
    check_entry_paths([e[0] for e in entries], what)
    return entries


def _parse_refs(block: str, what: str) -> list[Reference]:
    if not block:
        return []
    if not block.endswith("\n"):
        raise ManifestError(f"{what}: the refs block must end with a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_ENTRIES:
        raise ManifestError(f"{what}: more than {MAX_ENTRIES} references")
    try:
        rows = json.loads("[" + ",".join(lines) + "]")
    except ValueError:
        rows = None
    if rows is None or len(rows) != len(lines):
        rows = []
        for number, line in enumerate(lines, 1):
            try:
                rows.append(json.loads(line))
            except ValueError:
                raise ManifestError(
                    f"{what}: refs line {number} is not a JSON object") from None
    out = []
    previous = ""
    for number, (row, line) in enumerate(zip(rows, lines, strict=True), 1):
        ref = _reference(row, f"{what}: refs line {number}")
        if ref.line() != line:
            raise ManifestError(f"{what}: refs line {number} is not in canonical form")
        if ref.path <= previous:
            raise ManifestError(f"{what}: refs line {number} is out of order or repeated")
        previous = ref.path
        out.append(ref)
    check_entry_paths([r.path for r in out], what)
    return out


def _reference(row: Any, where: str) -> Reference:
    if not isinstance(row, dict):
        raise ManifestError(f"{where} is not a JSON object")
    path, uri = row.get("path"), row.get("uri")
    if not isinstance(path, str) or not isinstance(uri, str):
        raise ManifestError(f"{where} needs string 'path' and 'uri'")
    if row.get("checksum", True) is False:
        if set(row) != {"path", "uri", "checksum"}:
            raise ManifestError(f"{where}: an entry with checksum false holds path and uri only")
        return check_reference(Reference(path, uri, None, None, (), False))
    unknown = set(row) - {"path", "uri", "size", "sha256"} - PIN_KEYS
    if unknown:
        raise ManifestError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    size, sha256 = row.get("size"), row.get("sha256")
    if not isinstance(size, int) or isinstance(size, bool):
        raise ManifestError(f"{where}: 'size' must be an integer")
    if sha256 is not None and not isinstance(sha256, str):
        raise ManifestError(f"{where}: 'sha256' must be 64 hex digits")
    pin = tuple(sorted((k, v) for k, v in row.items() if k in PIN_KEYS))
    return check_reference(Reference(path, uri, size, sha256, pin, True))


def check_reference(ref: Reference) -> Reference:
    """Raise unless a reference could be written canonically and read back identically."""
    check_relative_path(ref.path, "reference path")
    if (len(ref.uri) > MAX_URI_CHARS or not _URI_RE.fullmatch(ref.uri)
            or CONTROL_CHARS_RE.search(ref.uri) or _SURROGATE_RE.search(ref.uri)):
        raise ManifestError(f"reference {ref.path!r}: {ref.uri!r} is not an s3, gs, az, http(s) "
                            "or file URI without control characters")
    from gitartifacts.config import url_has_credentials

    if url_has_credentials(ref.uri):
        raise ManifestError(f"reference {ref.path!r}: its URI carries credentials",
                            hint="leave them out of the URI; sources take credentials from "
                            "the environment or --ref-options REMOTE")
    if not ref.checksum:
        if ref.size is not None or ref.sha256 is not None or ref.pin:
            raise ManifestError(f"reference {ref.path!r}: checksum=False records the URI only")
        return ref
    if ref.size is None or not 0 <= ref.size <= MAX_FILE_SIZE:
        raise ManifestError(f"reference {ref.path!r} has an invalid size")
    if ref.sha256 is not None and not OID_RE.fullmatch(ref.sha256):
        raise ManifestError(f"reference {ref.path!r} has an invalid sha256")
    for key, value in ref.pin:
        if key not in PIN_KEYS or not isinstance(value, str) or not _PIN_VALUE_RE.fullmatch(
                value):
            raise ManifestError(f"reference {ref.path!r} has an invalid {key!r}")
    if ref.sha256 is None and not ref.pin:
        raise ManifestError(f"reference {ref.path!r} has nothing that pins it (no sha256, "
                            "ETag, version or mtime)")
    return ref


def validate(manifest: Manifest, entries: bool = True) -> None:
    """Raise unless the manifest could be written canonically and read back identically."""
    validate_name(manifest.name)
    validate_type(manifest.type)
    if CONTROL_CHARS_RE.sub("", manifest.description.replace("\n", "")) != (
        manifest.description.replace("\n", "")
    ):
        raise ManifestError("description contains control characters")
    if manifest.path != ".":
        check_relative_path(manifest.path, "artifact path")
    if not manifest.include or not all(isinstance(p, str) for p in manifest.include):
        raise ManifestError("include must list at least one path")
    if manifest.include != (".",):
        check_entry_paths(list(manifest.include), "include")
    for pattern in manifest.exclude:
        if not isinstance(pattern, str) or not pattern or CONTROL_CHARS_RE.search(pattern):
            raise ManifestError(f"exclude pattern {pattern!r} is empty or not a plain string")
    _check_metadata(manifest.metadata)
    if manifest.path == ".":  # at the repository root: nothing may land inside .gart/
        _check_outside_gart([*manifest.include, *(e.path for e in manifest.entries)])
    elif manifest.path.partition("/")[0].lower() == GART_DIR:
        raise ManifestError(f"artifact path {manifest.path!r} points inside {GART_DIR}")
    if manifest.path == "." and manifest.references:
        _check_outside_gart([r.path for r in manifest.references])
    if not entries:
        return
    for entry in manifest.entries:
        if not OID_RE.fullmatch(entry.oid) or not 0 <= entry.size <= MAX_FILE_SIZE:
            raise ManifestError(f"entry {entry.path!r} has an invalid digest or size")
    for ref in manifest.references:
        check_reference(ref)
    check_entry_paths(sorted([*(e.path for e in manifest.entries),
                              *(r.path for r in manifest.references)]), "files")


def _check_outside_gart(paths: list[str]) -> None:
    for path in paths:
        if path.partition("/")[0].lower() == GART_DIR:
            raise ManifestError(f"path {path!r} points inside {GART_DIR}")


def _check_metadata(metadata: dict[str, Any]) -> None:
    def walk(value: Any, depth: int) -> None:
        if depth > MAX_METADATA_DEPTH:
            raise ManifestError(f"metadata is nested deeper than {MAX_METADATA_DEPTH} levels")
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise ManifestError(f"metadata key {key!r} must be a string")
                walk(key, depth + 1)
                walk(item, depth + 1)
        elif isinstance(value, list):
            for item in value:
                walk(item, depth + 1)
        elif isinstance(value, str):
            if _SURROGATE_RE.search(value):
                raise ManifestError(f"metadata string {value!r} is not valid Unicode")
        elif value is not None and not isinstance(value, (int, float, bool)):
            raise ManifestError(f"metadata value {value!r} is not a string, number or bool")

    walk(metadata, 1)  # types first: _flow below can only render what walk accepts
    if len(_flow(metadata)) > MAX_METADATA_BYTES:
        raise ManifestError(f"metadata exceeds {MAX_METADATA_BYTES} bytes")


def _expect(data: dict[str, Any], key: str, kind: type, what: str) -> Any:
    value = data[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ManifestError(f"{what}: '{key}' must be a {kind.__name__}")
    return value


_PLAIN_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]*")


def _scalar(value: str) -> str:
    """A string as YAML: plain when unambiguous, else JSON-style double quotes (valid YAML)."""
    # The YAML resolver itself decides: regexes of our own miss forms like 0x1F or 0b101.
    from gitartifacts.safeyaml import reads_as_string

    if _PLAIN_RE.fullmatch(value) and reads_as_string(value):
        return value
    quoted = json.dumps(value, ensure_ascii=False)
    # json leaves C1 controls and U+2028/9 raw; YAML readers would fold or refuse them.
    return CONTROL_CHARS_RE.sub(lambda m: f"\\u{ord(m.group()):04x}", quoted)


def _flow(value: Any) -> str:
    """Metadata as one line of YAML flow style with sorted keys (canonical)."""
    if isinstance(value, dict):
        items = (f"{_scalar(k)}: {_flow(v)}" for k, v in sorted(value.items()))
        return "{" + ", ".join(items) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    if isinstance(value, str):
        return _scalar(value) if _PLAIN_RE.fullmatch(value) else _quoted(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return _float(value)


def _quoted(value: str) -> str:
    quoted = json.dumps(value, ensure_ascii=False)
    return CONTROL_CHARS_RE.sub(lambda m: f"\\u{ord(m.group()):04x}", quoted)


def _float(value: float) -> str:
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    text = repr(value)
    mantissa, e, exponent = text.partition("e")
    if "." not in mantissa:  # YAML 1.1 floats need a dot, else 1e-05 would read back as a string
        mantissa += ".0"
    return mantissa + e + exponent


_PARSE_CACHE_VERSION = 4  # 2: format, 3: references, 4: both


def loads_cached(data: bytes, what: str, cache_dir: Path | None) -> Manifest:
    """`loads`, remembering the result under the sha256 of the exact bytes parsed.

    A manifest with the same bytes was already validated strictly, so the cached fields can
    be trusted; any change to the file changes the key. This keeps `gart status` fast on
    manifests with many entries (marshal reads 100k entries in a few milliseconds)."""
    if cache_dir is None:
        return loads(data, what)
    key = hashlib.sha256(data).hexdigest()
    path = cache_dir / key[:2] / key
    try:
        raw = marshal.loads(path.read_bytes())
        if raw[0] == _PARSE_CACHE_VERSION:
            (_version, name, kind, description, metadata, root, include, exclude, rows, digest,
             refs, fmt) = raw
            new = tuple.__new__
            manifest = Manifest(name, kind, description, metadata, root, include, exclude,
                                tuple([new(Entry, row) for row in rows]),
                                tuple([Reference(p, u, n, h, tuple(map(tuple, pin)), c)
                                       for p, u, n, h, pin, c in refs]), fmt)
            manifest.__dict__["digest"] = digest
            return manifest
    except (OSError, ValueError, EOFError, TypeError):
        pass  # absent or unreadable: parse the bytes again
    manifest = loads(data, what)
    remember(data, manifest, cache_dir)
    return manifest


def remember(data: bytes, manifest: Manifest, cache_dir: Path) -> None:
    """Record that `data` (exactly these bytes) parses to `manifest`; see `loads_cached`.

    Writers call it with the canonical text they just wrote, so the first read after
    `gart add` is as fast as later ones."""
    key = hashlib.sha256(data).hexdigest()
    try:
        blob = marshal.dumps((
            _PARSE_CACHE_VERSION, manifest.name, manifest.type, manifest.description,
            manifest.metadata, manifest.path, manifest.include, manifest.exclude,
            [tuple(e) for e in manifest.entries], manifest.digest,
            [tuple(r) for r in manifest.references], manifest.format,
        ))
        atomic_write(cache_dir / key[:2] / key, blob)
    except (OSError, ValueError):
        pass  # the cache only saves time; never fail because of it
