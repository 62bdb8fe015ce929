"""Streaming sha256 and the state cache that spares unchanged files from being read again."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from gitartifacts.hashing import CHUNK, FileStat, StateCache, hash_bytes, hash_file
from gitartifacts.workspace import HashResult, compute_digests, scan


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 7])
def test_hash_file_matches_hashlib(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    path = tmp_path / "f"
    path.write_bytes(data)
    assert hash_file(path) == (hashlib.sha256(data).hexdigest(), size)
    assert hash_bytes(data) == hashlib.sha256(data).hexdigest()


def test_filestat_keys_on_inode_mtime_and_size(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    st = os.stat(path)
    assert FileStat.of(st) == FileStat(st.st_ino, st.st_mtime_ns, 3)


# ---- the state cache as a table -------------------------------------------------------


def test_record_and_lookup_by_directory_prefix(tmp_path: Path) -> None:
    state = StateCache(tmp_path / "tmp" / "state.db")
    rows = [
        ("/r/data/a", FileStat(1, 10, 3), "a" * 64),
        ("/r/data/sub/b", FileStat(2, 20, 4), "b" * 64),
        ("/r/data-other/c", FileStat(3, 30, 5), "c" * 64),  # same prefix text, other dir
        ("/r/datb/d", FileStat(4, 40, 6), "d" * 64),
    ]
    state.record(rows)
    found = state.lookup_under("/r/data/")
    assert found == {"/r/data/a": (FileStat(1, 10, 3), "a" * 64),
                     "/r/data/sub/b": (FileStat(2, 20, 4), "b" * 64)}
    state.record([("/r/data/a", FileStat(1, 11, 3), "e" * 64)])  # replaces, never duplicates
    assert state.lookup_under("/r/data/")["/r/data/a"] == (FileStat(1, 11, 3), "e" * 64)
    state.close()
    assert StateCache(tmp_path / "tmp" / "state.db").lookup_under("/r/") != {}  # persisted


def test_a_damaged_state_db_degrades_to_an_empty_cache(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    db.write_bytes(b"this is not a sqlite database" * 100)
    state = StateCache(db)
    assert state.lookup_under("/") == {}
    state.record([("/x", FileStat(1, 1, 1), "a" * 64)])  # must not raise either


# ---- the state cache at work: what is read again and what is not ----------------------


def digests(root: Path, state: StateCache) -> HashResult:
    return compute_digests(scan(root), state, os.path.join(os.path.abspath(root), ""))


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, StateCache]:
    root = tmp_path / "data"
    (root / "sub").mkdir(parents=True)
    (root / "a.bin").write_bytes(b"A" * 100)
    (root / "sub" / "b.bin").write_bytes(b"B" * 200)
    return root, StateCache(tmp_path / "state.db")


def test_first_pass_reads_everything_second_reads_nothing(tree: tuple[Path, StateCache]) -> None:
    root, state = tree
    first = digests(root, state)
    assert first.hashed == 2
    assert first.digests["a.bin"] == (hashlib.sha256(b"A" * 100).hexdigest(), 100)
    second = digests(root, state)
    assert second.hashed == 0
    assert second.digests == first.digests


def test_same_size_same_mtime_same_inode_is_trusted(tree: tuple[Path, StateCache]) -> None:
    # The documented limitation (shared with git and DVC): rewriting a file in place with
    # the same size and then restoring its mtime hides the change from the state cache.
    # This is also the proof that a file whose stat is unchanged is not read again.
    root, state = tree
    path = root / "a.bin"
    old = digests(root, state).digests["a.bin"]
    before = os.stat(path)
    with open(path, "r+b") as handle:
        handle.write(b"Z" * 100)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(path).st_ino == before.st_ino
    again = digests(root, state)
    assert again.hashed == 0
    assert again.digests["a.bin"] == old  # the cached digest, not the new content's


def test_changed_mtime_is_hashed_again(tree: tuple[Path, StateCache]) -> None:
    root, state = tree
    path = root / "a.bin"
    digests(root, state)
    before = os.stat(path)
    with open(path, "r+b") as handle:
        handle.write(b"Z" * 100)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))
    again = digests(root, state)
    assert again.hashed == 1
    assert again.digests["a.bin"] == (hashlib.sha256(b"Z" * 100).hexdigest(), 100)


def test_replaced_file_with_same_size_and_mtime_is_hashed_again(
    tree: tuple[Path, StateCache],
) -> None:
    root, state = tree
    path = root / "a.bin"
    digests(root, state)
    before = os.stat(path)
    replacement = root / "new.tmp"
    replacement.write_bytes(b"Y" * 100)
    keep = replacement.open("rb")  # keep the old inode number from being reused at once
    try:
        os.utime(replacement, ns=(before.st_atime_ns, before.st_mtime_ns))
        os.replace(replacement, path)
        assert os.stat(path).st_ino != before.st_ino
        again = digests(root, state)
    finally:
        keep.close()
    assert again.hashed == 1
    assert again.digests["a.bin"][0] == hashlib.sha256(b"Y" * 100).hexdigest()


def test_changed_size_is_hashed_again(tree: tuple[Path, StateCache]) -> None:
    root, state = tree
    digests(root, state)
    with open(root / "sub" / "b.bin", "ab") as handle:
        handle.write(b"more")
    again = digests(root, state)
    assert again.hashed == 1
    assert again.digests["sub/b.bin"][1] == 204


def test_losing_the_state_db_costs_a_rehash_not_correctness(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    (root / "f").write_bytes(b"x")
    db = tmp_path / "state.db"
    first = digests(root, StateCache(db))
    for leftover in tmp_path.glob("state.db*"):
        leftover.unlink()
    again = digests(root, StateCache(db))
    assert again.hashed == 1 and again.digests == first.digests
