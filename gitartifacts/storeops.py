"""Store maintenance: a full listing with ages, sweeping garbage, repacking, and remote locks.

Row 5.5, over `objects.ObjectStore` (the cache and every remote alike), for `gart gc` and
`gart fsck --remote` (integrity.py). Nothing here knows about manifests or git: callers pass
the set of live oids.

- `survey(store)` lists every key once (os.walk locally, one recursive `find` on fsspec,
  paginated 1,000 keys a request on S3) with sizes and modification times, and reads the
  pack indexes (kept locally for remotes, so each is fetched once).
- `plan_sweep` decides, with a grace period, which loose objects and packs go, and which
  packs are partly garbage and get repacked; `sweep` carries the plan out in an order that
  keeps every live object readable at every instant: new packs, then old indexes, then old
  packs, then loose objects.
- `StoreLock` is a lock file under `locks/` in the store: pushes hold shared locks, gc an
  exclusive one (restic's model); a lock whose holder died is recognised and removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gitartifacts import chunking, testhooks
from gitartifacts.backends import LocalBackend
from gitartifacts.errors import CorruptObjectError, ObjectNotFoundError, RemoteError
from gitartifacts.objects import TEMP_PREFIX, ObjectStore, chunk_list_key, loose_key
from gitartifacts.packformat import PackLocation, check_pack_layout, is_pack_id, parse_index
from gitartifacts.retry import RetryPolicy

LOCKS = "locks"
LOCK_STALE = 6 * 3600.0  # a lock this old is abandoned even if its holder cannot be checked
LOCK_WAIT = 600.0  # how long a command waits for a conflicting lock to go
RETRY = RetryPolicy(attempts=3, backoff=0.2)  # transient faults on lock files
COALESCE_GAP = 1 << 20  # sampled ranges of one pack closer than this are read in one request


@dataclass
class Item:
    """One stored file: its size and modification time (seconds since the epoch)."""

    size: int
    mtime: float


@dataclass
class Survey:
    """Everything a store holds, from one listing, plus its readable pack indexes."""

    packs: dict[str, Item] = field(default_factory=dict)  # pack id -> its .pack
    indexes: dict[str, Item] = field(default_factory=dict)  # pack id -> its .idx
    rows: dict[str, dict[str, PackLocation]] = field(default_factory=dict)  # usable indexes
    refused: dict[str, str] = field(default_factory=dict)  # pack id -> why its index is unusable
    loose: dict[str, Item] = field(default_factory=dict)  # oid -> item
    chunk_lists: dict[str, Item] = field(default_factory=dict)  # file oid -> its chunk list
    temps: dict[str, Item] = field(default_factory=dict)  # key -> item (killed writers)
    other: dict[str, Item] = field(default_factory=dict)  # anything else (locks, markers)

    def where(self) -> dict[str, PackLocation]:
        """oid -> one packed location (the first usable pack in id order)."""
        out: dict[str, PackLocation] = {}
        for pack_id in sorted(self.rows):
            for oid, loc in self.rows[pack_id].items():
                out.setdefault(oid, loc)
        return out

    def present(self) -> set[str]:
        """Every oid the store can serve: packed through a usable index, loose, or as a chunk
        list (whose chunks are oids of their own: see `with_chunks`)."""
        out = set(self.loose) | set(self.chunk_lists)
        for rows in self.rows.values():
            out.update(rows)
        return out


def _mtime(info: dict[str, Any]) -> float:
    for key in ("LastModified", "mtime", "last_modified", "created", "updated"):
        value = info.get(key)
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return 0.0  # unknown: counts as old, like git's prune of objects without a date


def list_all(store: ObjectStore) -> dict[str, Item]:
    """key -> Item for every file under the store's root, temporaries included."""
    backend = store.backend
    out: dict[str, Item] = {}
    if isinstance(backend, LocalBackend):
        root = str(backend.root)
        for directory, _dirs, files in os.walk(root):
            for name in files:
                path = os.path.join(directory, name)
                with contextlib.suppress(OSError):
                    st = os.lstat(path)
                    key = os.path.relpath(path, root).replace(os.sep, "/")
                    out[key] = Item(st.st_size, st.st_mtime)
        return out
    fs = backend.fs
    root = fs._strip_protocol(backend.root).rstrip("/")
    try:
        found = fs.find(backend.root, detail=True, withdirs=False)
    except FileNotFoundError:
        return out
    except Exception as exc:  # noqa: BLE001 - translated as every backend error is
        raise RemoteError(f"listing {backend.describe()} failed: {exc}") from exc
    for path, info in found.items():
        text = fs._strip_protocol(str(path)).rstrip("/")
        if not text.startswith(root + "/") or info.get("type", "file") != "file":
            continue
        out[text[len(root) + 1 :]] = Item(int(info.get("size") or 0), _mtime(info))
    return out


def survey(store: ObjectStore, listing: dict[str, Item] | None = None) -> Survey:
    """Classify one listing of the store and read its pack indexes (each checked against its
    pack's exact layout: a usable index describes its pack byte for byte)."""
    listing = list_all(store) if listing is None else listing
    out = Survey()
    for key, item in listing.items():
        head, _, name = key.rpartition("/")
        if name.startswith("."):
            if name.startswith(TEMP_PREFIX):
                out.temps[key] = item
            continue
        if head == "packs" and name.endswith((".pack", ".idx")):
            stem, _, ext = name.rpartition(".")
            if is_pack_id(stem):
                (out.packs if ext == "pack" else out.indexes)[stem] = item
                continue
        parts = key.split("/")
        if (len(parts) == 4 and parts[:2] == ["files", "sha256"] and len(parts[2]) == 2
                and is_pack_id(parts[2] + parts[3])):
            out.loose[parts[2] + parts[3]] = item
            continue
        if (len(parts) == 4 and parts[:2] == ["chunks", "sha256"] and len(parts[2]) == 2
                and is_pack_id(parts[2] + parts[3])):
            out.chunk_lists[parts[2] + parts[3]] = item
            continue
        out.other[key] = item
    for pack_id in sorted(out.indexes):
        pack = out.packs.get(pack_id)
        if pack is None:
            out.refused[pack_id] = f"pack {pack_id}.pack is missing but its index exists"
            continue
        try:
            data = store.index_bytes(pack_id)
            rows = parse_index(data, pack_id)
            check_pack_layout(data, pack_id, pack.size)
        except (CorruptObjectError, ObjectNotFoundError) as exc:
            out.refused[pack_id] = exc.message
            continue
        out.rows[pack_id] = rows
    return out


# -- sweeping -------------------------------------------------------------------------------


@dataclass
class SweepPlan:
    """What a gc removes from one store, and what it keeps by repacking."""

    loose: list[str] = field(default_factory=list)  # oids
    packs: list[str] = field(default_factory=list)  # whole packs (and their indexes) to delete
    repack: dict[str, list[str]] = field(default_factory=dict)  # pack id -> live oids to keep
    orphans: list[str] = field(default_factory=list)  # keys: packs without index, temps
    bytes_freed: int = 0
    objects_freed: int = 0
    kept_young: int = 0  # garbage younger than the grace period, left for a later gc

    @property
    def empty(self) -> bool:
        return not (self.loose or self.packs or self.repack or self.orphans)


def with_chunks(store: ObjectStore, found: Survey, referenced: dict[str, str]
                ) -> dict[str, str]:
    """`referenced` (oid -> where it is used) plus the chunks of every referenced file the
    store keeps as a chunk list: those chunks live exactly as long as their file."""
    out = dict(referenced)
    for oid in sorted(set(referenced) & set(found.chunk_lists)):
        for chunk in chunking.chunk_oids(store, oid):
            out.setdefault(chunk, f"a chunk of {referenced[oid]}")
    return out


def plan_sweep(found: Survey, live: set[str], cutoff: float) -> SweepPlan:
    """Garbage is what no live oid needs; only garbage last written before `cutoff` goes.

    A pack whose objects are all garbage goes whole; one that is partly garbage is repacked
    (its live objects move to a new pack) unless another kept pack or loose copy already
    holds them. Packs whose index is unusable are left alone (fsck reports them)."""
    plan = SweepPlan()
    keep_packed: set[str] = set()
    partial: list[tuple[str, list[str]]] = []
    for pack_id, rows in sorted(found.rows.items()):
        pack, index = found.packs[pack_id], found.indexes[pack_id]
        alive = [oid for oid in rows if oid in live]
        dead = len(rows) - len(alive)
        old = max(pack.mtime, index.mtime) < cutoff
        if not dead or not old:
            keep_packed.update(alive)
            plan.kept_young += dead if not old else 0
            continue
        if not alive:
            plan.packs.append(pack_id)
            plan.bytes_freed += pack.size + index.size
            plan.objects_freed += len(rows)
            continue
        partial.append((pack_id, alive))
    for pack_id, alive in partial:
        rows = found.rows[pack_id]
        moved = [oid for oid in alive if oid not in keep_packed and oid not in found.loose]
        keep_packed.update(moved)
        moved_bytes = sum(rows[oid].length for oid in moved)
        if moved:
            plan.repack[pack_id] = moved
        else:
            plan.packs.append(pack_id)
        plan.bytes_freed += found.packs[pack_id].size + found.indexes[pack_id].size - moved_bytes
        plan.objects_freed += len(rows) - len(moved)
    for oid, item in sorted(found.loose.items()):
        if oid in live:
            continue
        if item.mtime < cutoff:
            plan.loose.append(oid)
            plan.bytes_freed += item.size
            plan.objects_freed += 1
        else:
            plan.kept_young += 1
    for pack_id, item in sorted(found.packs.items()):  # a pack whose index never came
        if pack_id not in found.indexes and item.mtime < cutoff:
            plan.orphans.append(f"packs/{pack_id}.pack")
            plan.bytes_freed += item.size
    for oid, item in sorted(found.chunk_lists.items()):  # a chunked file no one needs
        if oid not in live and item.mtime < cutoff:
            plan.orphans.append(chunk_list_key(oid))
            plan.bytes_freed += item.size
            plan.objects_freed += 1
    for key, item in sorted(found.temps.items()):
        if item.mtime < cutoff:
            plan.orphans.append(key)
            plan.bytes_freed += item.size
    return plan


def sweep(store: ObjectStore, found: Survey, plan: SweepPlan,
          progress: Callable[[int], None] | None = None) -> None:
    """Carry out `plan`: write the repacked objects first, then delete old indexes, packs and
    loose objects. A crash at any point leaves every live object readable (at worst twice)."""
    for pack_id in [*plan.repack, *plan.packs]:
        # Out of the store's view first: the writer skips objects it believes are packed, and
        # the repacked objects must land in the new pack.
        store._forget_pack(pack_id)
    if plan.repack:
        with store.writer(durable=True) as writer:  # the old packs are deleted next
            for pack_id, oids in sorted(plan.repack.items()):
                for oid, data in read_objects(store, found.rows[pack_id], oids):
                    writer.add_bytes(oid, data)
    for pack_id in [*sorted(plan.repack), *plan.packs]:
        testhooks.hit()
        store.backend.delete(f"packs/{pack_id}.idx")  # index first: no reader uses the pack
        testhooks.hit()
        store.backend.delete(f"packs/{pack_id}.pack")
        if progress:
            progress(1)
    for oid in plan.loose:
        testhooks.hit()
        store.backend.delete(loose_key(oid))
        if progress:
            progress(1)
    for key in plan.orphans:
        testhooks.hit()
        store.backend.delete(key)
    store.refresh()


def read_objects(store: ObjectStore, rows: dict[str, PackLocation],
                 oids: Iterable[str]) -> Iterable[tuple[str, bytes]]:
    """The given objects of one pack, each verified, read as one span per nearby group."""
    wanted = sorted((rows[oid].offset, rows[oid].length, oid) for oid in oids)
    for span_start, span_end, members in coalesce(wanted):
        key = f"packs/{rows[members[0][2]].pack_id}.pack"
        data = store.backend.read_range(key, span_start, span_end)
        for offset, length, oid in members:
            piece = data[offset - span_start : offset - span_start + length]
            if hashlib.sha256(piece).hexdigest() != oid:
                raise CorruptObjectError(
                    f"object {oid} is corrupt ({store.describe()}/{key})",
                    hint="nothing was deleted; run `gart fsck --remote` and `--repair`")
            yield oid, piece


def coalesce(ranges: list[tuple[int, int, str]], gap: int = COALESCE_GAP
             ) -> list[tuple[int, int, list[tuple[int, int, str]]]]:
    """Group sorted (offset, length, oid) rows into (start, end, rows) spans whose members are
    less than `gap` bytes apart, so a sample costs one request per span, not per object."""
    spans: list[tuple[int, int, list[tuple[int, int, str]]]] = []
    for row in ranges:
        offset, length, _oid = row
        if spans and offset - spans[-1][1] < gap:
            start, _end, members = spans[-1]
            members.append(row)
            spans[-1] = (start, max(spans[-1][1], offset + length), members)
        else:
            spans.append((offset, offset + length, [row]))
    return spans


# -- locks ----------------------------------------------------------------------------------


class StoreLock:
    """A lock object `locks/<kind>-<16 hex>` in a store (restic's lock files).

    Shared locks (pushes) coexist; an exclusive lock (gc) excludes every other lock. Each
    taker writes its lock, then lists the others: whichever of two racing takers lists second
    sees the first, so they never both proceed. On conflict the taker removes its own lock
    and waits (randomised back-off) up to `wait` seconds. A lock is stale, and removed, when
    its holder ran on this host and is gone, or when it is older than LOCK_STALE."""

    def __init__(self, store: ObjectStore, exclusive: bool, command: str,
                 wait: float = LOCK_WAIT) -> None:
        self.store = store
        self.exclusive = exclusive
        self.command = command
        self.wait = wait
        kind = "exclusive" if exclusive else "shared"
        self.key = f"{LOCKS}/{kind}-{os.urandom(8).hex()}"
        self.held = False

    def _body(self) -> bytes:
        return json.dumps({
            "command": self.command, "exclusive": self.exclusive, "host": socket.gethostname(),
            "pid": os.getpid(), "time": time.time(),
        }, sort_keys=True).encode()

    def _write(self) -> None:
        self.store.backend.write(self.key, self._body())

    def __enter__(self) -> StoreLock:
        deadline = time.monotonic() + self.wait
        delay = 0.05
        while True:
            testhooks.hit()
            RETRY.call(self._write)
            self.held = True
            blocker = self._conflict()
            if blocker is None:
                return self
            self.release()
            if time.monotonic() >= deadline:
                raise RemoteError(
                    f"{self.store.describe()} is busy: {blocker}",
                    hint="retry when it has finished; a lock whose process died is removed "
                    "automatically on its host, or after 6 hours elsewhere")
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 2.0)

    def __exit__(self, *exc: object) -> None:
        self.release()

    def release(self) -> None:
        if self.held:
            self.held = False
            with contextlib.suppress(ObjectNotFoundError, RemoteError, OSError):
                RETRY.call(lambda: self.store.backend.delete(self.key))

    def _conflict(self) -> str | None:
        """A description of a live lock that excludes ours, or None."""
        mine = self.key.rpartition("/")[2]
        for name in sorted(self.store.backend.list(LOCKS)):
            if name == mine or not name.startswith(("shared-", "exclusive-")):
                continue
            if not self.exclusive and not name.startswith("exclusive-"):
                continue
            try:
                info = json.loads(self.store.backend.read(f"{LOCKS}/{name}"))
                if not isinstance(info, dict):
                    raise ValueError(name)
            except (ObjectNotFoundError, ValueError):
                continue  # released meanwhile, or unreadable: not a lock we honour
            if _stale(info):
                with contextlib.suppress(ObjectNotFoundError, RemoteError, OSError):
                    self.store.backend.delete(f"{LOCKS}/{name}")
                continue
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(info.get("time", 0))))
            return (f"`gart {info.get('command', '?')}` holds a lock since {when} "
                    f"(host {info.get('host', '?')}, pid {info.get('pid', '?')})")
        return None


def _stale(info: dict[str, Any]) -> bool:
    try:
        age = time.time() - float(info.get("time", 0))
        pid = int(info.get("pid", 0))
    except (TypeError, ValueError):
        return True
    if age > LOCK_STALE:
        return True
    if info.get("host") == socket.gethostname() and pid > 0:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
    return False


class CacheLock:
    """An flock on the cache directory itself: commands that put objects into the cache or
    read them out hold it shared, gc holds it exclusive. The kernel drops it when its
    process dies, so a killed command never leaves it behind, and no lock file is written
    (a refused command writes nothing). Before the cache directory exists there is nothing
    to lock or collect: the first writer goes unlocked and the grace period covers it.
    Re-entrant within one object."""

    def __init__(self, path: os.PathLike[str] | str) -> None:
        self.path = os.fspath(path)
        self._fd: int | None = None
        self.depth = 0

    def acquire(self, exclusive: bool) -> None:
        import fcntl

        self.depth += 1
        if self.depth > 1:
            return
        try:
            self._fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            self._fd = None
            return
        fcntl.flock(self._fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)

    def release(self) -> None:
        self.depth -= 1
        if self.depth == 0 and self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None


TEMP_DIRS = ("packs", "files/sha256", LOCKS)


def remove_dead_temps(store: ObjectStore, directories: Iterable[str] = TEMP_DIRS) -> int:
    """Delete temporaries (`.tmp-<pid>-…`) that a killed writer on this host left in a local
    store's write directories; returns how many. A listing of a few directories, cheap
    enough for every command (a full walk of old temporaries is fsck's job)."""
    root = store.local_root
    if root is None:
        return 0
    removed = 0
    for directory in directories:
        try:
            names = os.listdir(root / directory)
        except OSError:
            continue
        for name in names:
            if name.startswith(TEMP_PREFIX) and _writer_is_dead(name):
                with contextlib.suppress(OSError):
                    os.unlink(root / directory / name)
                    removed += 1
    return removed


def _writer_is_dead(name: str) -> bool:
    pid_text = name[len(TEMP_PREFIX):].partition("-")[0]
    if not pid_text.isdigit() or int(pid_text) == os.getpid():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
