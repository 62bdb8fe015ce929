"""The pack and index formats (docs/format.md §6.2–6.5): writing and checking them.

Writing an index, and checking an index, a pack's layout and a pack's bytes: pure functions
over bytes and file handles."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

from gitartifacts.errors import CorruptObjectError

PACK_MAGIC = b"GARTPK\x00\x01"
INDEX_MAGIC = b"GARTIX\x00\x02"  # format 2, what writers write: pack-id = sha256(index file)
INDEX_MAGIC_V1 = b"GARTIX\x00\x01"  # format 1, still read: pack-id = sha256(pack file)
_INDEX_HEADER = struct.Struct(">8sI")
_INDEX_ENTRY = struct.Struct(">32sQQ")
_READ = 1 << 20  # bytes of a pack read at a time when it is verified whole


class PackLocation(NamedTuple):
    """Where a packed object sits: which pack, at what offset, how long."""

    pack_id: str
    offset: int
    length: int


def serialize_index(
    entries: dict[str, PackLocation] | Iterable[tuple[str, int, int]], magic: bytes = INDEX_MAGIC
) -> bytes:
    """The binary .idx: magic, count, sorted (oid, offset, length) rows, then a checksum."""
    if isinstance(entries, dict):
        rows = sorted((oid, loc.offset, loc.length) for oid, loc in entries.items())
    else:
        rows = sorted(entries)
    body = bytearray(_INDEX_HEADER.pack(magic, len(rows)))
    for oid, offset, length in rows:
        body += _INDEX_ENTRY.pack(bytes.fromhex(oid), offset, length)
    body += hashlib.sha256(body).digest()
    return bytes(body)


def pack_id_of(index: bytes) -> str:
    """The id of the pack a format-2 index describes."""
    return hashlib.sha256(index).hexdigest()


def names_by_pack_hash(index: bytes) -> bool:
    """Whether the pack of this (checked) index is named by the sha256 of its own bytes
    (format 1), so adopting it whole means hashing it whole."""
    return index[:8] == INDEX_MAGIC_V1


def check_index(data: bytes, pack_id: str) -> None:
    """Refuse a damaged or foreign .idx (checksum, magic, length), and a format-2 index
    that is not the one its pack's name was made from."""
    if len(data) < _INDEX_HEADER.size + 32 or hashlib.sha256(data[:-32]).digest() != data[-32:]:
        raise CorruptObjectError(f"pack index {pack_id}.idx is damaged (checksum mismatch)")
    magic, count = _INDEX_HEADER.unpack_from(data)
    if (magic not in (INDEX_MAGIC, INDEX_MAGIC_V1)
            or len(data) != _INDEX_HEADER.size + count * _INDEX_ENTRY.size + 32):
        raise CorruptObjectError(f"pack index {pack_id}.idx has an unknown format")
    if magic == INDEX_MAGIC and pack_id_of(data) != pack_id:
        raise CorruptObjectError(
            f"pack index {pack_id}.idx does not hash to its name (replaced or forged)")


def parse_index(data: bytes, pack_id: str) -> dict[str, PackLocation]:
    """Read a .idx, checking its magic and checksum; a damaged index is refused whole."""
    check_index(data, pack_id)
    return index_rows(data, pack_id)


def index_rows(data: bytes, pack_id: str) -> dict[str, PackLocation]:
    new = tuple.__new__
    return {
        raw.hex(): new(PackLocation, (pack_id, offset, length))
        for raw, offset, length in _INDEX_ENTRY.iter_unpack(data[_INDEX_HEADER.size : -32])
    }


_SPAN_ROWS = 4096  # rows unpacked per struct call when checking an index's extent
_SPAN = struct.Struct(">" + "32xQQ" * _SPAN_ROWS)


def check_index_span(data: bytes, pack_id: str, pack_size: int | None) -> None:
    """Refuse an index whose rows cannot describe its pack: a row before the magic or past
    the pack's end, or lengths that do not add up to the pack (objects lie back to back).

    Linear and allocation-light (offsets and lengths only, never the oids): it runs on every
    index a command reads. `pack_size` None (the pack is not there) checks the rows against
    the extent they claim themselves. The exact layout is checked where the bytes are read
    anyway (check_pack_layout)."""
    body = memoryview(data)[_INDEX_HEADER.size : -32]
    count = len(body) // _INDEX_ENTRY.size
    total = 0
    low = None
    high = len(PACK_MAGIC)
    step = _SPAN_ROWS * _INDEX_ENTRY.size
    for start in range(0, len(body), step):
        chunk = body[start : start + step]
        unpack = (_SPAN if len(chunk) == step
                  else struct.Struct(">" + "32xQQ" * (len(chunk) // _INDEX_ENTRY.size)))
        values = unpack.unpack(chunk)
        offsets, lengths = values[0::2], values[1::2]
        total += sum(lengths)
        first = min(offsets)
        low = first if low is None else min(low, first)
        high = max(high, max(map(int.__add__, offsets, lengths)))
    size = high if pack_size is None else pack_size
    problem = ""
    if low is not None and low < len(PACK_MAGIC):
        problem = "a row points into the pack header"
    elif high > size:
        problem = f"a row ends at byte {high}, past the pack's end ({size} bytes)"
    elif total != size - len(PACK_MAGIC) or count > size - len(PACK_MAGIC) + 1:
        problem = f"its {count} rows cover {total} bytes of a {size}-byte pack"
    if problem:
        raise CorruptObjectError(f"pack index {pack_id}.idx does not match its pack: {problem}")


def check_pack_layout(data: bytes, pack_id: str, pack_size: int) -> list[tuple[int, int, str]]:
    """The exact layout (docs/format.md §6.2–6.3): oids sorted and unique, objects back to
    back from the magic to the pack's end. Returns (offset, length, oid) in pack order."""
    rows: list[tuple[int, int, str]] = []
    previous = b""
    for raw, offset, length in _INDEX_ENTRY.iter_unpack(data[_INDEX_HEADER.size : -32]):
        if raw <= previous:
            raise CorruptObjectError(
                f"pack index {pack_id}.idx is not sorted or repeats object {raw.hex()}")
        previous = raw
        rows.append((offset, length, raw.hex()))
    rows.sort()
    expected = len(PACK_MAGIC)
    for offset, length, oid in rows:
        if offset != expected:
            what = "overlaps another" if offset < expected else "leaves a gap before it"
            raise CorruptObjectError(
                f"pack index {pack_id}.idx: the row of object {oid} {what} (offset {offset})")
        expected = offset + length
        if expected > pack_size:
            raise CorruptObjectError(
                f"pack index {pack_id}.idx: the row of object {oid} ends past the pack's end "
                f"({expected} > {pack_size} bytes)")
    if expected != pack_size:
        raise CorruptObjectError(
            f"pack index {pack_id}.idx: its rows end at byte {expected}, "
            f"the pack at {pack_size}")
    return rows


def verify_pack_stream(
    handle: Any, pack_id: str, rows: list[tuple[int, int, str]], by_pack_hash: bool
) -> tuple[list[str], bool]:
    """One sequential read of a pack laid out as `rows` (check_pack_layout): each object
    must hash to its oid and, for a format-1 pack (`by_pack_hash`), the whole file to
    `pack_id`. Returns the oids that do not, and whether the pack is whole under its name."""
    whole: Any = hashlib.sha256() if by_pack_hash else _NoDigest()
    magic = handle.read(len(PACK_MAGIC))
    whole.update(magic)
    bad: list[str] = []
    for _offset, length, oid in rows:
        digest = hashlib.sha256()
        left = length
        while left > 0:
            chunk = handle.read(min(left, _READ))
            if not chunk:
                break
            left -= len(chunk)
            digest.update(chunk)
            whole.update(chunk)
        if left or digest.hexdigest() != oid:
            bad.append(oid)
    while chunk := handle.read(_READ):
        whole.update(chunk)
    return bad, magic == PACK_MAGIC and (not by_pack_hash or whole.hexdigest() == pack_id)


class _NoDigest:
    """Stands in for the whole-pack hash where a pack is named by its index."""

    def update(self, data: bytes) -> None:
        pass


def is_pack_id(name: str) -> bool:
    """64 lowercase hex digits: the only pack names a store reads."""
    return len(name) == 64 and all(c in "0123456789abcdef" for c in name)


def index_oids(data: bytes) -> Iterator[str]:
    """The oids an index lists, in its order (membership checks need no locations)."""
    hexed = data[_INDEX_HEADER.size : -32].hex()
    step = _INDEX_ENTRY.size * 2
    return (hexed[i : i + 64] for i in range(0, len(hexed), step))
