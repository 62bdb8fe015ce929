"""Streaming sha256 of files and the state cache that lets unchanged files skip re-reading."""

from __future__ import annotations

import hashlib
import marshal
import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

CHUNK = 1 << 20


def hash_bytes(data: bytes) -> str:
    """Hex sha256 of a byte string."""
    return hashlib.sha256(data).hexdigest()


def hash_file(path: str | os.PathLike[str]) -> tuple[str, int]:
    """Hex sha256 and size of a file, read in chunks so memory stays flat."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb", buffering=0) as handle:
        buffer = bytearray(CHUNK)
        view = memoryview(buffer)
        while True:
            n = handle.readinto(buffer)
            if not n:
                break
            digest.update(view[:n])
            size += n
    return digest.hexdigest(), size


class FileStat(NamedTuple):
    """What the state cache keys on: a file counts as unchanged while all three match.

    A NamedTuple, not a dataclass: status builds one per file and tuples are far cheaper."""

    inode: int
    mtime_ns: int
    size: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileStat:
        return tuple.__new__(cls, (st.st_ino, st.st_mtime_ns, st.st_size))


class StateCache:
    """sqlite3 table path -> (inode, mtime_ns, size, sha256), local to one working tree.

    It is only an accelerator: losing it costs a re-hash, never correctness, so any
    database error degrades to an empty cache instead of failing the command.
    """

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self._conn: sqlite3.Connection | None = None
        self.last_from_snapshot = False  # did the last lookup come from a whole-tree snapshot?

    def _connect(self) -> sqlite3.Connection | None:
        if self._conn is None:
            try:
                self.db_path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.db_path, timeout=30, isolation_level=None)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS state (path TEXT PRIMARY KEY, inode INTEGER,"
                    " mtime_ns INTEGER, size INTEGER, oid TEXT) WITHOUT ROWID"
                )
                # One marshal blob per scanned tree: read in a few ms where 20k rows cost 50.
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS snapshot (prefix TEXT PRIMARY KEY, data BLOB)"
                )
                self._conn = conn
            except sqlite3.Error:
                return None
        return self._conn

    def lookup_under(self, prefix: str) -> dict[str, tuple[FileStat, str]]:
        """Every cached row whose path starts with `prefix` (an absolute directory path)."""
        conn = self._connect()
        self.last_from_snapshot = False
        if conn is None:
            return {}
        try:
            blob = conn.execute("SELECT data FROM snapshot WHERE prefix = ?", (prefix,)).fetchone()
            if blob is not None:
                snapshot = marshal.loads(blob[0])
                self.last_from_snapshot = True
                return snapshot  # type: ignore[no-any-return]
        except (sqlite3.Error, ValueError, EOFError, TypeError):
            pass
        # A range scan on the primary key: rows for other artifacts are never read.
        upper = prefix[:-1] + chr(ord(prefix[-1]) + 1) if prefix else "\U0010ffff"
        try:
            rows = conn.execute(
                "SELECT path, inode, mtime_ns, size, oid FROM state WHERE path >= ? AND path < ?",
                (prefix, upper),
            ).fetchall()
        except sqlite3.Error:
            return {}
        new = tuple.__new__
        return {path: (new(FileStat, (ino, mtime, size)), oid)
                for path, ino, mtime, size, oid in rows}

    def record(self, rows: Iterable[tuple[str, FileStat, str]]) -> None:
        """Remember that each path, with that stat, has that digest."""
        conn = self._connect()
        if conn is None:
            return
        rows = list(rows)
        try:
            conn.execute("BEGIN")
            conn.executemany(
                "INSERT OR REPLACE INTO state VALUES (?, ?, ?, ?, ?)",
                ((p, s[0], s[1], s[2], oid) for p, s, oid in rows),
            )
            # A snapshot covering any of these paths is now stale: drop it.
            prefixes = [r[0] for r in conn.execute("SELECT prefix FROM snapshot").fetchall()]
            stale = [(p,) for p in prefixes if any(path.startswith(p) for path, _, _ in rows)]
            conn.executemany("DELETE FROM snapshot WHERE prefix = ?", stale)
            conn.execute("COMMIT")
        except sqlite3.Error:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass

    def save_snapshot(self, prefix: str, entries: dict[str, tuple[FileStat, str]]) -> None:
        """Remember the whole tree under `prefix` as one blob (after a complete scan)."""
        conn = self._connect()
        if conn is None:
            return
        try:
            blob = marshal.dumps({p: (tuple(s), oid) for p, (s, oid) in entries.items()})
            conn.execute("INSERT OR REPLACE INTO snapshot VALUES (?, ?)", (prefix, blob))
        except (sqlite3.Error, ValueError):
            pass

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
