"""Three-way merge of artifact manifests, entry by entry: git's `merge=gart` driver.

git calls the driver with the common ancestor (%O), our version (%A, also where the result
goes) and theirs (%B). Each side is parsed strictly; then every field and every file path is
merged on its own:

- a path (or field) changed on one side only takes that side's value, changed identically on
  both sides takes it once, and changed differently on both sides is a conflict;
- the result's digest, size and count are recomputed and it is written canonically.

With conflicts, nothing is dropped: the file written is the canonical text of the merge
with every conflict resolved to *ours*, interleaved with that of the merge resolved to
*theirs*, between git's usual markers (`<<<<<<< ours`, `=======`, `>>>>>>> theirs`). Such
a file is refused by every reader (`MergeConflictError`) until it is resolved with
`gart checkout --ours/--theirs NAME` (`resolve_conflicted`) or re-added with `gart add`.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from gitartifacts import manifest as manifestmod
from gitartifacts.errors import ManifestError, UsageError
from gitartifacts.manifest import CONFLICT_MARKERS, Manifest

OURS, THEIRS = "ours", "theirs"
_MISSING = object()
_HEADER = ("type", "description", "path", "include", "exclude")


@dataclass
class MergeResult:
    """The merged text and the conflicts (empty: a clean merge)."""

    text: str
    conflicts: list[str] = field(default_factory=list)  # "files: a/b.bin", "description", ...

    @property
    def clean(self) -> bool:
        return not self.conflicts


def _parse(data: bytes, what: str) -> Manifest | None:
    if not data.strip():
        return None  # git hands an empty ancestor when both sides added the file
    return manifestmod.loads(data, what)


def _pick(base: Any, ours: Any, theirs: Any) -> tuple[Any, Any, bool]:
    """(value resolving to ours, value resolving to theirs, conflicted)."""
    if ours == theirs or theirs == base:
        return ours, ours, False
    if ours == base:
        return theirs, theirs, False
    return ours, theirs, True


def merge_manifests(
    base: Manifest | None, ours: Manifest, theirs: Manifest
) -> tuple[Manifest, Manifest, list[str]]:
    """Merge field by field and path by path: (resolved to ours, resolved to theirs,
    conflicts). Both results are the same manifest when there is no conflict."""
    conflicts: list[str] = []
    mine: dict[str, Any] = {}
    other: dict[str, Any] = {}
    for name in _HEADER:
        a, b, bad = _pick(getattr(base, name, _MISSING), getattr(ours, name),
                          getattr(theirs, name))
        mine[name], other[name] = a, b
        if bad:
            conflicts.append(name)
    mine["metadata"], other["metadata"] = {}, {}
    base_meta = base.metadata if base is not None else {}
    for key in sorted(set(base_meta) | set(ours.metadata) | set(theirs.metadata)):
        a, b, bad = _pick(base_meta.get(key, _MISSING), ours.metadata.get(key, _MISSING),
                          theirs.metadata.get(key, _MISSING))
        if a is not _MISSING:
            mine["metadata"][key] = a
        if b is not _MISSING:
            other["metadata"][key] = b
        if bad:
            conflicts.append(f"metadata.{key}")
    mine_entries, other_entries = _merge_by_path(
        base.by_path() if base is not None else {}, ours.by_path(), theirs.by_path(),
        "files", conflicts)
    mine_refs, other_refs = _merge_by_path(
        {r.path: r for r in base.references} if base is not None else {},
        {r.path: r for r in ours.references}, {r.path: r for r in theirs.references},
        "refs", conflicts)
    # A side that may hold chunked files keeps the merge readable only by readers that know
    # them (gart: 2); the storage format is no content, so it never conflicts.
    mine["format"] = other["format"] = max(ours.format, theirs.format)
    return (Manifest(ours.name, entries=tuple(mine_entries), references=mine_refs, **mine),
            Manifest(ours.name, entries=tuple(other_entries), references=other_refs, **other),
            conflicts)


def _merge_by_path(base: dict[str, Any], ours: dict[str, Any], theirs: dict[str, Any],
                   label: str, conflicts: list[str]) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """Items keyed by path merged one by one: (resolved to ours, resolved to theirs)."""
    mine: list[Any] = []
    other: list[Any] = []
    for path in sorted(set(base) | set(ours) | set(theirs)):
        a, b, bad = _pick(base.get(path), ours.get(path), theirs.get(path))
        if a is not None:
            mine.append(a)
        if b is not None:
            other.append(b)
        if bad:
            conflicts.append(f"{label}: {path}")
    return tuple(mine), tuple(other)


def merge_texts(base: bytes, ours: bytes, theirs: bytes, what: str = "manifest") -> MergeResult:
    """Merge three manifest texts; see the module docstring for the conflicted form."""
    mine = _parse(ours, f"{what} (ours)")
    other = _parse(theirs, f"{what} (theirs)")
    if mine is None or other is None:
        raise ManifestError(f"{what}: one side of the merge is empty")
    ancestor = _parse(base, f"{what} (ancestor)")
    if mine.name != other.name:
        raise ManifestError(f"{what}: the two sides name different artifacts "
                            f"({mine.name!r}, {other.name!r})")
    to_ours, to_theirs, conflicts = merge_manifests(ancestor, mine, other)
    ours_text = manifestmod.dumps(to_ours)
    if not conflicts:
        return MergeResult(ours_text)
    return MergeResult(conflicted_text(ours_text, manifestmod.dumps(to_theirs)), conflicts)


def conflicted_text(ours_text: str, theirs_text: str) -> str:
    """Two canonical texts as one, their differing line runs between conflict markers."""
    a, b = ours_text.splitlines(keepends=True), theirs_text.splitlines(keepends=True)
    out: list[str] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            out.extend(a[i1:i2])
            continue
        out.append(f"{CONFLICT_MARKERS[0]} {OURS}\n")
        out.extend(a[i1:i2])
        out.append(f"{CONFLICT_MARKERS[1]}\n")
        out.extend(b[j1:j2])
        out.append(f"{CONFLICT_MARKERS[2]} {THEIRS}\n")
    return "".join(out)


def has_conflict(text: bytes | str) -> bool:
    """True when a manifest file still holds conflict markers."""
    return manifestmod.has_conflict_markers(text)


def resolve_conflicted(text: bytes | str, side: str, what: str = "manifest") -> Manifest:
    """The manifest a conflicted file resolves to when every conflict takes `side`."""
    if side not in (OURS, THEIRS):  # pragma: no cover - the CLI offers only the two
        raise UsageError(f"side must be {OURS} or {THEIRS}")
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    kept: list[str] = []
    state = None  # None: outside a conflict; OURS / THEIRS: inside that half
    for line in text.splitlines(keepends=True):
        if line.startswith(CONFLICT_MARKERS[0]) and state is None:
            state = OURS
        elif line.startswith(CONFLICT_MARKERS[1]) and state == OURS:
            state = THEIRS
        elif line.startswith(CONFLICT_MARKERS[2]) and state == THEIRS:
            state = None
        elif state is None or state == side:
            kept.append(line)
    if state is not None:
        raise ManifestError(f"{what}: a conflict is not closed ({CONFLICT_MARKERS[2]} missing)",
                            hint=f"restore the file with `git checkout --merge -- {what}`")
    return manifestmod.loads("".join(kept), f"{what} ({side})")


def run_driver(base_path: str, ours_path: str, theirs_path: str, path: str) -> list[str]:
    """git's `merge.gart.driver`: merge into `ours_path`; returns the conflicts.

    On a parse error nothing is written (git keeps ours and reports the conflict)."""
    from gitartifacts.fsutil import atomic_write

    with open(base_path, "rb") as f:
        base = f.read()
    with open(ours_path, "rb") as f:
        ours = f.read()
    with open(theirs_path, "rb") as f:
        theirs = f.read()
    result = merge_texts(base, ours, theirs, path)
    from pathlib import Path

    atomic_write(Path(ours_path), result.text.encode("utf-8"))
    return result.conflicts

