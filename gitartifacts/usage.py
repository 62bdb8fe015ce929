"""`gart du`: logical size, stored size and deduplication per artifact and version.

A version's *logical* size is the sum of its files' sizes. Its *stored* size is what its
distinct objects take in a store: a file kept there as chunks counts its distinct chunks,
any other file its size. *New* is what the version added over the versions before it (the
bytes a push of it sends), and the artifact's total counts every distinct byte once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from gitartifacts import chunking
from gitartifacts.errors import CorruptObjectError, GartError
from gitartifacts.manifest import Manifest
from gitartifacts.objects import ObjectStore


@dataclass
class VersionUsage:
    """One version's (or the working manifest's) sizes."""

    version: str
    logical: int
    stored: int
    new: int

    @property
    def ratio(self) -> float:
        return self.logical / self.stored if self.stored else 1.0


@dataclass
class ArtifactUsage:
    """An artifact's versions, and its totals with every distinct byte counted once."""

    name: str
    versions: list[VersionUsage] = field(default_factory=list)
    logical: int = 0
    stored: int = 0

    @property
    def ratio(self) -> float:
        return self.logical / self.stored if self.stored else 1.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "logical": self.logical, "stored": self.stored,
            "dedup_ratio": round(self.ratio, 3),
            "versions": [{**asdict(v), "dedup_ratio": round(v.ratio, 3)} for v in self.versions],
        }


class _Pieces:
    """What each file oid is stored as in one store: its chunks, or itself whole."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self._known: dict[str, list[tuple[str, int]]] = {}

    def of(self, oid: str, size: int) -> list[tuple[str, int]]:
        pieces = self._known.get(oid)
        if pieces is None:
            listing = None
            if size >= chunking.MIN_THRESHOLD:  # smaller files are never stored as chunks
                try:
                    listing = chunking.chunk_list(self.store, oid)
                except CorruptObjectError:
                    listing = None
            pieces = list(dict(listing.chunks).items()) if listing else [(oid, size)]
            self._known[oid] = pieces
        return pieces


def artifact_usage(
    name: str, manifests: Sequence[tuple[str, Manifest]], store: ObjectStore
) -> ArtifactUsage:
    """Sizes of `manifests` ((label, manifest), oldest first) as stored in `store`."""
    pieces = _Pieces(store)
    out = ArtifactUsage(name)
    seen: dict[str, int] = {}
    for label, manifest in manifests:
        mine: dict[str, int] = {}
        for entry in manifest.entries:
            for oid, length in pieces.of(entry.oid, entry.size):
                mine[oid] = length
        new = sum(length for oid, length in mine.items() if oid not in seen)
        seen.update(mine)
        out.versions.append(VersionUsage(label, manifest.size, sum(mine.values()), new))
        out.logical += manifest.size
    out.stored = sum(seen.values())
    return out


def disk_usage(repo: Any, names: Sequence[str] = (), remote: str | None = None,
               ) -> list[ArtifactUsage]:
    """Usage of each named artifact (default: all), every published version then the
    working manifest when it differs from the latest version; in the local cache, or in
    `remote`'s store."""
    store = repo.remote_store(remote) if remote is not None else repo.cache
    out = []
    for name in names or repo.artifact_names():
        manifests: list[tuple[str, Manifest]] = []
        versions = repo.versions(name)
        for version in versions:
            manifests.append((version.label, repo.resolve(f"{name}@{version.label}")))
        try:
            working = repo.load_manifest(name)
        except GartError:
            if not versions:
                raise
            working = None
        if working is not None and (not versions or versions[-1].digest != working.digest):
            manifests.append(("working", working))
        out.append(artifact_usage(name, manifests, store))
    return out
