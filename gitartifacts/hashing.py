"""Streaming sha256 of files and the state cache that lets unchanged files skip re-reading."""

from __future__ import annotations

import hashlib
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
                self._conn = conn
            except sqlite3.Error:
                return None
        return self._conn

    def lookup_under(self, prefix: str) -> dict[str, tuple[FileStat, str]]:
        """Every cached row whose path starts with `prefix` (an absolute directory path)."""
        conn = self._connect()
        if conn is None:
            return {}
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
        try:
            conn.execute("BEGIN")
            conn.executemany(
                "INSERT OR REPLACE INTO state VALUES (?, ?, ?, ?, ?)",
                ((p, s.inode, s.mtime_ns, s.size, oid) for p, s, oid in rows),
            )
            conn.execute("COMMIT")
        except sqlite3.Error:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
