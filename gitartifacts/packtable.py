"""The index table of a store: which packs it has and where each packed object lies.

Indexes are listed once and kept (they never change); each is checked against its pack's
size, and one that does not fit is refused (`refused` says why) so its objects count as
absent. ObjectStore builds on it."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from gitartifacts.backends import FsspecBackend, LocalBackend
from gitartifacts.errors import CorruptObjectError
from gitartifacts.fsutil import temp_name
from gitartifacts.packformat import (
    PackLocation,
    check_index,
    check_index_span,
    index_oids,
    index_rows,
    is_pack_id,
)

RACY = -1  # a pack-directory stamp too recent to trust


class PackTable:
    """The packs of one store and their indexes, read once and kept."""

    def __init__(
        self,
        backend: LocalBackend | FsspecBackend,
        *,
        index_cache: Path | None = None,
        drop_corrupt: bool = False,
    ) -> None:
        self.backend = backend
        self.index_cache = index_cache
        # The local cache drops what it finds corrupt, so the next pull fetches it again;
        # a remote is never changed by a reader.
        self.drop_corrupt = drop_corrupt
        self.refused: dict[str, str] = {}  # pack id -> why its index is not used
        self._cached_index: set[str] = set()  # pack ids whose index came from index_cache
        self._packed: dict[str, PackLocation] | None = None  # built on first need
        self._pack_ids: set[str] = set()
        self._indexes: dict[str, bytes] = {}  # pack id -> its validated .idx bytes
        self._oids: set[str] = set()  # every packed oid: membership without locations
        self._refreshed = False
        self._packs_stamp: int | None = None  # local stores: packs/ mtime when last listed

    @property
    def local_root(self) -> Path | None:
        return self.backend.root if isinstance(self.backend, LocalBackend) else None

    def describe(self) -> str:
        return self.backend.describe()

    # -- what is here -------------------------------------------------------------------

    @property
    def packed(self) -> dict[str, PackLocation]:
        """oid -> location for every packed object (indexes read once, then kept)."""
        if not self._refreshed:
            self.refresh()
        if self._packed is None:
            packed: dict[str, PackLocation] = {}
            for pack_id, data in self._indexes.items():
                packed.update(index_rows(data, pack_id))
            self._packed = packed
        return self._packed

    @property
    def packed_oids(self) -> set[str]:
        """Every packed oid; cheaper than `packed` when only membership matters (status)."""
        if not self._refreshed:
            self.refresh()
        return self._oids

    def revalidate(self) -> None:
        """Re-list a local store's packs if its packs/ directory changed since the last listing,
        so a long-lived store sees packs another process wrote. Callers do it once per
        operation (not per object); a remote store keeps its one listing."""
        if self._refreshed and self._packs_stamp is not None and (
                self._packs_stamp == RACY or self._packs_stamp != self._local_packs_stamp()):
            self.refresh()

    def _local_packs_stamp(self) -> int | None:
        root = self.local_root
        if root is None:
            return None
        try:
            mtime = os.stat(root / "packs").st_mtime_ns
        except OSError:
            return 0
        # A directory changed within the last second may change again inside the same clock
        # tick without its mtime moving: keep listing it until it has settled (git's "racy" rule).
        return RACY if time.time_ns() - mtime < 1_000_000_000 else mtime

    def refresh(self) -> None:
        """Re-list the pack indexes; indexes never change, so only new ones are read.

        Each is checked against its pack's size from the same listing; one that does not
        fit (damaged, hostile, or whose pack is gone from the cache) is not used, and
        `refused` says why: its objects count as absent, so a pull fetches them again and a
        push uploads them again."""
        self._packs_stamp = self._local_packs_stamp()  # before listing: a later change shows
        listing = self.backend.list_sizes("packs")
        self.refused = {}
        for name in listing:
            if not name.endswith(".idx") or not is_pack_id(name[:-4]):
                continue
            pack_id = name[:-4]
            if pack_id in self._pack_ids:
                continue
            pack_size = listing.get(f"{pack_id}.pack")
            if pack_size is None and self.drop_corrupt:
                # The pack was deleted (an index is written only after its pack): the
                # index can never be used again; drop it so its objects are fetched anew.
                if not self.backend.exists(f"packs/{pack_id}.pack"):
                    self.backend.delete(f"packs/{pack_id}.idx")
                continue
            try:
                data = self._read_index(pack_id)
                check_index_span(data, pack_id, pack_size)
            except CorruptObjectError as exc:
                self._drop_cached_index(pack_id)
                self.refused[pack_id] = exc.message
                continue
            self._add_index(pack_id, data)
        self._refreshed = True

    def _add_index(self, pack_id: str, data: bytes) -> None:
        self._indexes[pack_id] = data
        self._oids.update(index_oids(data))
        if self._packed is not None:
            for oid, loc in index_rows(data, pack_id).items():
                self._packed.setdefault(oid, loc)
        self._pack_ids.add(pack_id)

    def _read_index(self, pack_id: str, use_cache: bool = True) -> bytes:
        cached = self.index_cache / f"{pack_id}.idx" if self.index_cache else None
        if cached is not None and use_cache:
            try:
                data = cached.read_bytes()
                check_index(data, pack_id)
                self._cached_index.add(pack_id)
                return data
            except (OSError, CorruptObjectError):
                pass
        self._cached_index.discard(pack_id)
        data = self.backend.read(f"packs/{pack_id}.idx")
        check_index(data, pack_id)
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(temp_name(str(cached.parent)))
            tmp.write_bytes(data)
            os.replace(tmp, cached)
        return data

    def index_bytes(self, pack_id: str) -> bytes:
        """The raw .idx of a pack (from the local index cache when kept)."""
        if not self._refreshed:
            self.refresh()
        data = self._indexes.get(pack_id)
        return data if data is not None else self._read_index(pack_id)

    def reload_index(self, pack_id: str) -> bool:
        """Forget a kept copy of a pack's index (bytes read through it did not verify) and
        read it from the store again; True when that gave a different, usable index, so
        what failed is worth one more try."""
        if pack_id not in self._cached_index:
            return False
        old = self._indexes.get(pack_id)
        self._drop_cached_index(pack_id)
        self._forget_pack(pack_id)
        try:
            data = self._read_index(pack_id, use_cache=False)
            sizes = self.backend.list_sizes("packs")
            check_index_span(data, pack_id, sizes.get(f"{pack_id}.pack"))
        except CorruptObjectError as exc:
            self.refused[pack_id] = exc.message
            return False
        self._add_index(pack_id, data)
        return data != old

    def _drop_cached_index(self, pack_id: str) -> None:
        self._cached_index.discard(pack_id)
        if self.index_cache is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.index_cache / f"{pack_id}.idx")

    def _forget_pack(self, pack_id: str) -> None:
        """Stop using a pack's index in memory (its objects become absent unless another
        pack holds them)."""
        if self._indexes.pop(pack_id, None) is None:
            return
        self._pack_ids.discard(pack_id)
        oids: set[str] = set()
        for data in self._indexes.values():
            oids.update(index_oids(data))
        self._oids = oids
        self._packed = None

    def pack_sizes(self) -> dict[str, int]:
        """pack id -> bytes its objects span, derived from the indexes (no request)."""
        sizes: dict[str, int] = {}
        for loc in self.packed.values():
            end = loc.offset + loc.length
            if end > sizes.get(loc.pack_id, 0):
                sizes[loc.pack_id] = end
        return sizes

    def _register_pack(self, pack_id: str, index: bytes) -> None:
        if not self._refreshed:
            return  # nothing loaded yet: the next refresh() reads this pack's index too
        self._add_index(pack_id, index)
