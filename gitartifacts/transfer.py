"""Moving objects between stores: push to a remote, fetch into the cache, verified and batched.

Both directions collect failures instead of stopping at the first one (as dvc-data's
transfer does), retry transient errors with backoff, and never let a byte that does not
hash to its name reach the destination.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Collection, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitartifacts import chunking, testhooks
from gitartifacts.backends import FsspecBackend, LocalBackend, check_file
from gitartifacts.errors import CorruptObjectError, GartError
from gitartifacts.objects import ObjectStore, check_bytes, chunk_list_key, loose_key, temp_name
from gitartifacts.retry import RetryPolicy

RETRY = RetryPolicy(attempts=3, backoff=0.2)  # transient faults only; see retry.py
# Fetch a whole pack once at least this share of its bytes is wanted; else byte ranges.
WHOLE_PACK_SHARE = 0.5
ProgressHook = Callable[[int], None]


@dataclass
class TransferResult:
    """What moved, what was already there, and what failed (oid -> reason)."""

    transferred: int = 0
    bytes: int = 0
    present: int = 0
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed


def _run_many(
    backend: LocalBackend | FsspecBackend,
    jobs: int,
    items: Sequence[Any],
    sync_call: Callable[[Any], Any],
    async_call: Callable[[Any, Any], Any] | None,
) -> list[Any]:
    """Run one call per item with bounded concurrency; returns a result or exception each.

    Async fsspec backends (s3fs) get one event-loop batch with a semaphore, not a
    thread per file; others use a thread pool.
    """
    if not items:
        return []
    fs = getattr(backend, "fs", None)
    if async_call is not None and fs is not None and getattr(fs, "async_impl", False):
        from fsspec.asyn import sync

        async def run_all() -> list[Any]:
            gate = asyncio.Semaphore(max(1, jobs))

            async def one(item: Any) -> Any:
                async with gate:
                    try:
                        return await RETRY.call_async(lambda: async_call(fs, item))
                    except Exception as exc:  # noqa: BLE001 - reported per object
                        return exc

            return await asyncio.gather(*(one(item) for item in items))

        return sync(fs.loop, run_all)

    def guarded(item: Any) -> Any:
        try:
            return RETRY.call(lambda: sync_call(item))
        except (GartError, OSError) as exc:
            return exc

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(guarded, items))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, GartError):
        return exc.message
    return f"{type(exc).__name__}: {exc}"


def push(
    cache: ObjectStore,
    remote: ObjectStore,
    oids: Collection[str],
    jobs: int = 8,
    progress: ProgressHook | None = None,
) -> TransferResult:
    """Upload the objects the remote lacks: small ones packed, large ones as loose files.

    Every object is hashed as it is read out of the cache for upload; a corrupt one is not
    uploaded, is reported in `failed` and dropped from the cache (so `gart add` or a pull
    can bring it back)."""
    wanted = set(oids)
    result = TransferResult()
    remote.refresh()
    need = remote.missing(wanted)
    result.present = len(wanted) - len(need)
    if not need:
        return result
    not_local = cache.missing(need)
    for oid in not_local:
        result.failed[oid] = "not in the local cache"
    packed = cache.packed
    small = [oid for oid in need - not_local if oid in packed]
    large = [oid for oid in need - not_local if oid not in packed]
    if small:
        _push_packed(cache, remote, small, result, progress)
    sources = {oid: cache.loose_path(oid) for oid in large}
    chunked = [oid for oid, path in sources.items() if path is None]
    if chunked:
        _push_chunked(cache, remote, chunked, jobs, result, progress)
    pairs = [(oid, path) for oid, path in sources.items() if path is not None]
    backend = remote.backend

    async def put_async(fs: Any, item: tuple[str, Path]) -> None:
        await asyncio.to_thread(check_file, item[0], item[1])
        testhooks.hit()
        await fs._put_file(str(item[1]), backend.path(loose_key(item[0])))

    outcomes = _run_many(
        backend, jobs, pairs,
        lambda item: backend.put_file(item[1], loose_key(item[0]), oid=item[0]),
        put_async if isinstance(backend, FsspecBackend) and backend.atomic_put else None,
    )
    for (oid, path), outcome in zip(pairs, outcomes, strict=True):
        if isinstance(outcome, CorruptObjectError):
            cache.drop(oid)
            result.failed[oid] = f"{_describe(outcome)}; removed from the local cache"
            continue
        if isinstance(outcome, BaseException):
            result.failed[oid] = _describe(outcome)
            continue
        size = path.stat().st_size
        result.transferred += 1
        result.bytes += size
        if progress:
            progress(size)
    return result


def _owners(lists: dict[str, chunking.ChunkList]) -> dict[str, list[str]]:
    """chunk oid -> the file oids whose lists name it."""
    owners: dict[str, list[str]] = {}
    for oid, listing in lists.items():
        for chunk in listing.chunk_oids:
            owners.setdefault(chunk, []).append(oid)
    return owners


def _blame(sub: TransferResult, owners: dict[str, list[str]], result: TransferResult) -> None:
    """Report each failed chunk under the files it belongs to (so errors name the file)."""
    for chunk, reason in sub.failed.items():
        for oid in owners.get(chunk, ()):
            result.failed.setdefault(oid, f"chunk {chunk}: {reason}")


def _push_chunked(
    cache: ObjectStore,
    remote: ObjectStore,
    oids: list[str],
    jobs: int,
    result: TransferResult,
    progress: ProgressHook | None,
) -> None:
    """Files stored as chunks: upload the chunks the remote lacks (packed), then, once they
    are all confirmed, each file's chunk list (its presence proves its chunks)."""
    lists: dict[str, chunking.ChunkList] = {}
    for oid in oids:
        try:
            listing = chunking.chunk_list(cache, oid)
        except CorruptObjectError as exc:
            result.failed[oid] = f"{exc.message}; removed from the local cache"
            continue
        if listing is None:
            result.failed[oid] = "not in the local cache"
            continue
        lists[oid] = listing
    owners = _owners(lists)
    on_remote = remote.packed_oids
    need = [chunk for chunk in owners if chunk not in on_remote]
    sub = TransferResult()
    if need:
        _push_packed(cache, remote, need, sub, progress, pack_all=True)
    _blame(sub, owners, result)
    result.bytes += sub.bytes
    for oid in lists:
        if "corrupt" in result.failed.get(oid, ""):
            cache.drop(oid)  # the list names a chunk the cache lost: `gart add` stores it anew
    ready = [oid for oid in lists if oid not in result.failed]
    backend = remote.backend

    async def put_async(fs: Any, oid: str) -> None:
        await fs._pipe_file(backend.path(chunk_list_key(oid)), lists[oid].serialize())

    outcomes = _run_many(
        backend, jobs, ready,
        lambda oid: backend.write(chunk_list_key(oid), lists[oid].serialize()),
        put_async if isinstance(backend, FsspecBackend) and backend.atomic_put else None,
    )
    for oid, outcome in zip(ready, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            result.failed[oid] = _describe(outcome)
        else:
            result.transferred += 1


def _push_packed(
    cache: ObjectStore,
    remote: ObjectStore,
    oids: Iterable[str],
    result: TransferResult,
    progress: ProgressHook | None,
    pack_all: bool = False,
) -> None:
    # flushed here, so uploads are retried
    writer = remote.writer(auto_flush=False, pack_all=pack_all)
    pending: list[tuple[str, int]] = []

    def flush() -> None:
        try:
            RETRY.call(writer.flush)
        except (GartError, OSError) as exc:
            for oid, _ in pending:
                result.failed[oid] = _describe(exc)
            writer.discard()
        else:
            for _oid, size in pending:
                result.transferred += 1
                result.bytes += size
                if progress:
                    progress(size)
        pending.clear()

    # Objects are read and verified on two threads while this one writes the pack.
    for oid, data in cache.read_packed_parallel(oids, failed=result.failed, jobs=2):
        writer.add_bytes(oid, data)
        pending.append((oid, len(data)))
        if writer.pending_bytes >= remote.pack_target:
            flush()
    flush()


def fetch(
    remote: ObjectStore,
    cache: ObjectStore,
    oids: Collection[str],
    jobs: int = 8,
    progress: ProgressHook | None = None,
) -> TransferResult:
    """Download into the local cache the objects it lacks, verifying every byte."""
    result = TransferResult()
    cache_root = cache.local_root
    assert cache_root is not None, "fetch targets the local cache"
    wanted = set(oids)
    need = cache.missing(wanted)
    result.present = len(wanted) - len(need)
    if not need:
        return result
    remote.refresh()
    remote_packed = remote.packed
    in_packs = [oid for oid in need if oid in remote_packed]
    loose = sorted(need - set(in_packs))
    chunked = chunking.listed(remote, set(loose))
    loose = [oid for oid in loose if oid not in chunked]
    absent = remote.missing(loose) if loose else set()
    _report_absent(remote, absent, result)
    loose = [oid for oid in loose if oid not in absent]
    if in_packs:
        _fetch_packed(remote, cache, in_packs, jobs, result, progress)
        _retry_with_fresh_indexes(remote, cache, in_packs, jobs, result, progress)
    if loose:
        _fetch_loose(remote, cache, loose, jobs, result, progress)
    if chunked:
        _fetch_chunked(remote, cache, sorted(chunked), jobs, result, progress)
    return result


def _fetch_chunked(
    remote: ObjectStore,
    cache: ObjectStore,
    oids: list[str],
    jobs: int,
    result: TransferResult,
    progress: ProgressHook | None,
) -> None:
    """Files stored as chunks on the remote: read their lists, fetch the chunks the cache
    lacks (verified like any packed object), then install each list whose chunks all
    arrived. The whole file is verified when it is reassembled (checkout)."""
    backend = remote.backend

    async def get_async(fs: Any, oid: str) -> bytes:
        return bytes(await fs._cat_file(backend.path(chunk_list_key(oid))))

    datas = _run_many(
        backend, jobs, oids, lambda oid: backend.read(chunk_list_key(oid)),
        get_async if isinstance(backend, FsspecBackend) else None,
    )
    lists: dict[str, chunking.ChunkList] = {}
    for oid, data in zip(oids, datas, strict=True):
        where = f"{remote.describe()}/{chunk_list_key(oid)}"
        if isinstance(data, FileNotFoundError):
            result.failed[oid] = f"missing on the remote ({where})"
            continue
        if isinstance(data, BaseException):
            result.failed[oid] = f"{_describe(data)} ({where})"
            continue
        try:
            lists[oid] = chunking.ChunkList.parse(data, oid)
        except CorruptObjectError as exc:
            result.failed[oid] = f"{exc.message} ({where})"
    owners = _owners(lists)
    in_cache = cache.packed_oids
    want = [chunk for chunk in owners if chunk not in in_cache]
    remote_packed = remote.packed
    sub = TransferResult()
    for chunk in want:
        if chunk not in remote_packed:
            sub.failed[chunk] = _absent(remote, remote.describe())
    get = [chunk for chunk in want if chunk in remote_packed]
    if get:
        _fetch_packed(remote, cache, get, jobs, sub, progress, pack_all=True)
        _retry_with_fresh_indexes(remote, cache, get, jobs, sub, progress, pack_all=True)
    _blame(sub, owners, result)
    result.bytes += sub.bytes
    for oid, listing in lists.items():
        if oid in result.failed:
            continue
        cache.backend.write(chunk_list_key(oid), listing.serialize())
        result.transferred += 1


REFUSED_NOTE = "; the remote has an index this gart refused: "


def _absent(remote: ObjectStore, where: str) -> str:
    """Why an object counts as missing, naming an index of the remote this gart refused (a
    damaged one, or one a newer gart wrote): the likelier cause then."""
    refused = sorted(remote.refused.values())[:1]
    return f"missing on the remote ({where})" + "".join(REFUSED_NOTE + r for r in refused)


def _report_absent(remote: ObjectStore, absent: Iterable[str], result: TransferResult) -> None:
    for oid in absent:
        result.failed[oid] = _absent(remote, f"{remote.describe()}/{loose_key(oid)}")


def _retry_with_fresh_indexes(
    remote: ObjectStore,
    cache: ObjectStore,
    oids: list[str],
    jobs: int,
    result: TransferResult,
    progress: ProgressHook | None,
    pack_all: bool = False,
) -> None:
    """Objects from a pack did not verify though the remote's index was a kept local copy:
    that copy may be stale or forged (.gart/tmp is only a cache). Read the index from the
    remote again and, when it differs, fetch those objects once more."""
    packed = remote.packed
    suspects: dict[str, list[str]] = {}
    for oid in oids:
        if oid in result.failed and "corrupt" in result.failed[oid]:
            suspects.setdefault(packed[oid].pack_id, []).append(oid)
    again: list[str] = []
    for pack_id, items in suspects.items():
        if remote.reload_index(pack_id):
            again.extend(items)
    if not again:
        return
    for oid in again:
        del result.failed[oid]
    packed = remote.packed
    present = [oid for oid in again if oid in packed]
    _report_absent(remote, remote.missing(set(again) - set(present)), result)
    if present:
        _fetch_packed(remote, cache, present, jobs, result, progress, pack_all)


# Longer than most (~100 lines): the whole-pack and byte-range strategies share the plan,
# the retry policy and the install step; split apart they would pass all of it back and forth.
def _fetch_packed(
    remote: ObjectStore,
    cache: ObjectStore,
    oids: list[str],
    jobs: int,
    result: TransferResult,
    progress: ProgressHook | None,
    pack_all: bool = False,
) -> None:
    packed = remote.packed
    sizes = remote.pack_sizes()
    by_pack: dict[str, list[str]] = {}
    for oid in oids:
        by_pack.setdefault(packed[oid].pack_id, []).append(oid)
    whole = [p for p, items in by_pack.items()
             if sum(packed[o].length for o in items) >= WHOLE_PACK_SHARE * sizes[p]]
    ranged = [oid for p, items in by_pack.items() if p not in whole for oid in items]
    cache_root = cache.local_root
    assert cache_root is not None
    tmp_dir = cache_root / "packs"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    backend = remote.backend
    downloads = [(pack_id, Path(temp_name(str(tmp_dir)))) for pack_id in whole]

    # Each pack is verified and installed as soon as it is down, so a killed pull keeps
    # what it finished and the re-run fetches only the rest.
    def install(item: tuple[str, Path]) -> None:
        try:
            cache.install_pack(item[0], item[1], remote.index_bytes(item[0]))
        except BaseException:
            item[1].unlink(missing_ok=True)
            raise

    def get_sync(item: tuple[str, Path]) -> None:
        backend.get_file(f"packs/{item[0]}.pack", item[1])
        install(item)

    async def get_async(fs: Any, item: tuple[str, Path]) -> None:
        await fs._get_file(backend.path(f"packs/{item[0]}.pack"), str(item[1]))
        await asyncio.to_thread(install, item)

    outcomes = _run_many(
        backend, jobs, downloads, get_sync,
        get_async if isinstance(backend, FsspecBackend) else None,
    )
    for (pack_id, tmp), outcome in zip(downloads, outcomes, strict=True):
        wanted = by_pack[pack_id]
        if isinstance(outcome, BaseException):
            tmp.unlink(missing_ok=True)
            reason = (
                f"missing on the remote ({remote.describe()}/packs/{pack_id}.pack)"
                if isinstance(outcome, FileNotFoundError)  # its index is there, the pack not
                else f"{_describe(outcome)} (pack {pack_id})"
            )
            for oid in wanted:
                result.failed[oid] = reason
            continue
        size = sum(packed[o].length for o in wanted)
        result.transferred += len(wanted)
        result.bytes += size
        if progress:
            progress(size)
    if not ranged:
        return

    async def range_async(fs: Any, oid: str) -> bytes:
        loc = packed[oid]
        path = backend.path(f"packs/{loc.pack_id}.pack")
        return bytes(await fs._cat_file(path, start=loc.offset, end=loc.offset + loc.length))

    def range_sync(oid: str) -> bytes:
        loc = packed[oid]
        return backend.read_range(f"packs/{loc.pack_id}.pack", loc.offset, loc.offset + loc.length)

    datas = _run_many(
        backend, jobs, ranged, range_sync,
        range_async if isinstance(backend, FsspecBackend) else None,
    )
    with cache.writer(pack_all=pack_all) as writer:
        for oid, data in zip(ranged, datas, strict=True):
            pack_id = packed[oid].pack_id
            try:
                if isinstance(data, BaseException):
                    raise data
                check_bytes(oid, data, f"{remote.describe()}: pack {pack_id}")
            except FileNotFoundError:
                result.failed[oid] = (
                    f"missing on the remote ({remote.describe()}/packs/{pack_id}.pack)"
                )
                continue
            except (GartError, OSError) as exc:
                result.failed[oid] = _describe(exc)
                continue
            writer.add_bytes(oid, data)
            result.transferred += 1
            result.bytes += len(data)
            if progress:
                progress(len(data))


def _fetch_loose(
    remote: ObjectStore,
    cache: ObjectStore,
    oids: list[str],
    jobs: int,
    result: TransferResult,
    progress: ProgressHook | None,
) -> None:
    cache_root = cache.local_root
    assert cache_root is not None
    tmp_dir = cache_root / "files" / "sha256"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    backend = remote.backend
    items = [(oid, Path(temp_name(str(tmp_dir)))) for oid in oids]

    # Each object is verified and installed as soon as it is down (see _fetch_packed).
    def install(item: tuple[str, Path]) -> int:
        try:
            size = os.path.getsize(item[1])
            cache.install_loose(item[0], item[1])
        except BaseException:
            item[1].unlink(missing_ok=True)
            raise
        return size

    def get_sync(item: tuple[str, Path]) -> int:
        backend.get_file(loose_key(item[0]), item[1])
        return install(item)

    async def get_async(fs: Any, item: tuple[str, Path]) -> int:
        await fs._get_file(backend.path(loose_key(item[0])), str(item[1]))
        return await asyncio.to_thread(install, item)

    outcomes = _run_many(
        backend, jobs, items, get_sync,
        get_async if isinstance(backend, FsspecBackend) else None,
    )
    for (oid, tmp), outcome in zip(items, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            tmp.unlink(missing_ok=True)
            result.failed[oid] = f"{_describe(outcome)} ({remote.describe()}/{loose_key(oid)})"
            continue
        result.transferred += 1
        result.bytes += outcome
        if progress:
            progress(outcome)
