"""The working tree: scanning (links, odd names, ignores), hashing into the cache, checkout."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from gitartifacts.errors import ConflictError, CorruptObjectError, InvalidPathError
from gitartifacts.hashing import StateCache
from gitartifacts.manifest import Entry, Manifest
from gitartifacts.objects import ObjectStore, loose_key
from gitartifacts.workspace import (
    IgnoreRules,
    Placer,
    checkout,
    compare,
    compute_digests,
    plan_checkout,
    scan,
)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*")) if p.is_file()
    }


class Env:
    """A data directory, a cache and a state db side by side in tmp_path."""

    def __init__(self, tmp_path: Path) -> None:
        self.root = tmp_path / "data"
        self.root.mkdir()
        self.cache = ObjectStore.local(tmp_path / "cache", pack_threshold=1024)
        self.state = StateCache(tmp_path / "state.db")

    def add(self, name: str = "x") -> Manifest:
        files = scan(self.root)
        result = compute_digests(files, self.state, str(self.root) + os.sep, store=self.cache)
        entries = tuple(Entry(p, oid, size) for p, (oid, size) in result.digests.items())
        return Manifest(name=name, path="data", entries=entries)

    def checkout(self, manifest: Manifest, force: bool = False, root: Path | None = None,
                 link_types: tuple[str, ...] = ("copy",)) -> object:
        return checkout(manifest, root or self.root, self.cache, self.state, list(link_types),
                        IgnoreRules(()), force=force)


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return Env(tmp_path)


# ---- scanning ---------------------------------------------------------------------------


def test_scan_finds_regular_files_with_relative_posix_paths(env: Env) -> None:
    write(env.root, {"a.txt": b"a", "sub/b.txt": b"b", "sub/deeper/c.txt": b"c", "é ü/d": b"d"})
    assert sorted(scan(env.root)) == ["a.txt", "sub/b.txt", "sub/deeper/c.txt", "é ü/d"]


def test_scan_skips_nested_git_dirs_and_gitlink_files(env: Env) -> None:
    write(env.root, {"keep": b"k", "clone/.git/config": b"x", "submodule/.git": b"gitdir: ../x",
                     "submodule/file": b"f"})
    assert sorted(scan(env.root)) == ["keep", "submodule/file"]


def test_symlink_inside_the_data_dir_is_followed(env: Env) -> None:
    write(env.root, {"real.bin": b"payload"})
    os.symlink("real.bin", env.root / "alias.bin")
    found = scan(env.root)
    assert sorted(found) == ["alias.bin", "real.bin"]
    result = compute_digests(found, env.state, str(env.root) + os.sep)
    assert result.digests["alias.bin"] == (sha(b"payload"), 7)


@pytest.mark.parametrize("kind", ["outside-file", "outside-dir", "inside-dir", "dangling"])
def test_other_symlinks_are_refused_by_name(env: Env, tmp_path: Path, kind: str) -> None:
    (tmp_path / "secret.txt").write_bytes(b"do not take me")
    write(env.root, {"sub/f": b"f"})
    target = {
        "outside-file": tmp_path / "secret.txt", "outside-dir": tmp_path,
        "inside-dir": env.root / "sub", "dangling": env.root / "nowhere",
    }[kind]
    os.symlink(target, env.root / "link")
    with pytest.raises(InvalidPathError) as info:
        scan(env.root)
    assert str(env.root / "link") in str(info.value)
    assert info.value.hint


def test_fifo_is_refused(env: Env) -> None:
    os.mkfifo(env.root / "pipe")
    with pytest.raises(InvalidPathError, match="not a regular file"):
        scan(env.root)


def test_non_utf8_name_is_refused_naming_the_file(env: Env) -> None:
    fd = os.open(os.fsencode(env.root) + b"/bad-\xff.bin", os.O_CREAT | os.O_WRONLY)
    os.close(fd)
    with pytest.raises(InvalidPathError, match=r"not valid UTF-8: .*bad-\\xff\.bin") as info:
        scan(env.root)
    assert "--exclude" in info.value.hint


def test_non_utf8_name_can_be_excluded_as_the_hint_says(env: Env) -> None:
    write(env.root, {"good.txt": b"g"})
    fd = os.open(os.fsencode(env.root) + b"/bad-\xff.bin", os.O_CREAT | os.O_WRONLY)
    os.close(fd)
    assert sorted(scan(env.root, ignore=IgnoreRules(["*.bin"]))) == ["good.txt"]


def test_control_characters_in_names_are_refused_before_hashing(env: Env) -> None:
    write(env.root, {"line\nbreak.txt": b"x"})
    with pytest.raises(InvalidPathError, match="control characters"):
        scan(env.root)


def test_ignore_rules(env: Env) -> None:
    write(env.root, {
        "keep.txt": b"1", "drop.tmp": b"2", "sub/drop.tmp": b"3", "cache/x": b"4",
        "sub/cache/y": b"5", "logs/run.log": b"6", "other/logs/run.log": b"7",
    })
    rules = IgnoreRules(["*.tmp", "# a comment", "", "cache/", "/logs/*.log"])
    assert sorted(scan(env.root, ignore=rules)) == ["keep.txt", "other/logs/run.log"]


def test_include_limits_the_scan(env: Env) -> None:
    write(env.root, {"a/1": b"1", "b/2": b"2", "c": b"3", "d": b"4"})
    assert sorted(scan(env.root, include=["a", "c"])) == ["a/1", "c"]


# ---- hashing into the cache ---------------------------------------------------------------


def test_compute_digests_stores_small_in_a_pack_and_large_loose(env: Env) -> None:
    big = os.urandom(4096)
    write(env.root, {"small1": b"s1", "small2": b"s2", "big": big})
    result = compute_digests(scan(env.root), env.state, str(env.root) + os.sep, store=env.cache)
    assert result.hashed == 3 and result.stored == 3
    cache_root = env.cache.local_root
    assert cache_root is not None
    assert (cache_root / loose_key(sha(big))).exists()
    assert len(list((cache_root / "packs").glob("*.pack"))) == 1
    again = compute_digests(scan(env.root), env.state, str(env.root) + os.sep, store=env.cache)
    assert again.hashed == 0 and again.stored == 0


def test_objects_lost_from_the_cache_are_stored_again(env: Env) -> None:
    big = os.urandom(4096)
    write(env.root, {"big": big})
    compute_digests(scan(env.root), env.state, str(env.root) + os.sep, store=env.cache)
    cache_root = env.cache.local_root
    assert cache_root is not None
    (cache_root / loose_key(sha(big))).unlink()
    fresh = ObjectStore.local(cache_root, pack_threshold=1024)
    again = compute_digests(scan(env.root), env.state, str(env.root) + os.sep, store=fresh)
    assert again.stored == 1
    assert fresh.read(sha(big)) == big


def test_compare_classifies_each_path() -> None:
    entries = [Entry("same", sha(b"1"), 1), Entry("edited", sha(b"2"), 1),
               Entry("gone", "0" * 64, 1)]
    now = {"same": (sha(b"1"), 1), "edited": (sha(b"X"), 1), "new": (sha(b"n"), 1)}
    result = compare(entries, now)
    assert (result.added, result.changed, result.removed, result.unchanged) == (
        ["new"], ["edited"], ["gone"], 1)
    assert not result.clean
    assert compare(entries[:1], {"same": (sha(b"1"), 1)}).clean


# ---- checkout ---------------------------------------------------------------------------


def test_plan_protects_only_unrecoverable_files() -> None:
    manifest = Manifest(name="x", path="d", entries=(Entry("a", sha(b"a"), 1),))
    current = {"a": (sha(b"edited"), 6), "extra": (sha(b"extra"), 5)}
    nothing_cached = plan_checkout(manifest, current, lambda oids: set(), force=False)
    # a file the manifest does not list, with bytes gart cannot restore, is not the artifact's:
    # never a conflict, never deleted (not even with force)
    assert nothing_cached.conflicts == ["a"] and nothing_cached.delete == []
    all_cached = plan_checkout(manifest, current, lambda oids: set(oids), force=False)
    assert all_cached.conflicts == [] and all_cached.delete == ["extra"]
    forced = plan_checkout(manifest, current, lambda oids: set(), force=True)
    assert forced.conflicts == [] and [e.path for e in forced.write] == ["a"]
    assert forced.delete == []


def test_checkout_restores_exactly(env: Env) -> None:
    original = {"a.txt": b"alpha", "sub/b.bin": os.urandom(3000), "sub/deep/c": b""}
    write(env.root, original)
    manifest = env.add()
    for path in list(env.root.rglob("*"))[::-1]:
        if path.is_file():
            path.unlink()
    env.checkout(manifest)
    assert tree_bytes(env.root) == original


def test_checkout_refuses_to_lose_user_changes_then_force_restores(env: Env) -> None:
    original = {"a.txt": b"alpha", "b.txt": b"beta"}
    write(env.root, original)
    manifest = env.add()
    (env.root / "a.txt").write_bytes(b"my precious edit")
    (env.root / "new.txt").write_bytes(b"brand new")
    (env.root / "b.txt").unlink()
    with pytest.raises(ConflictError) as info:
        env.checkout(manifest)
    assert "a.txt" in str(info.value) and "new.txt" not in str(info.value)
    assert "--force" in info.value.hint
    assert tree_bytes(env.root) == {"a.txt": b"my precious edit", "new.txt": b"brand new"}
    env.checkout(manifest, force=True)
    assert tree_bytes(env.root) == dict(original, **{"new.txt": b"brand new"})  # not its file


def test_checkout_into_another_directory(env: Env, tmp_path: Path) -> None:
    write(env.root, {"a": b"1", "s/b": os.urandom(2000)})
    manifest = env.add()
    elsewhere = tmp_path / "elsewhere" / "deep"
    env.checkout(manifest, root=elsewhere)
    assert tree_bytes(elsewhere) == tree_bytes(env.root)


def test_copy_checkout_never_places_a_corrupt_loose_object(env: Env, tmp_path: Path) -> None:
    big = os.urandom(4096)
    write(env.root, {"big": big})
    manifest = env.add()
    cache_root = env.cache.local_root
    assert cache_root is not None
    obj = cache_root / loose_key(sha(big))
    obj.chmod(0o644)
    obj.write_bytes(b"\x00" + big[1:])
    target = tmp_path / "out"
    with pytest.raises(CorruptObjectError):
        env.checkout(manifest, root=target)
    assert not (target / "big").exists()
    assert [p.name for p in target.rglob("*") if p.is_file()] == []  # no temp file left


def test_checkout_never_writes_through_a_symlinked_directory(env: Env, tmp_path: Path) -> None:
    write(env.root, {"sub/f": b"data"})
    manifest = env.add()
    (env.root / "sub" / "f").unlink()
    (env.root / "sub").rmdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, env.root / "sub")
    with pytest.raises(InvalidPathError, match="sub"):
        env.checkout(manifest, force=True)
    placer = Placer(env.root, env.cache, ["copy"])
    with pytest.raises(InvalidPathError, match="symlink"):
        placer.target("sub/f")
    assert list(outside.iterdir()) == []


def test_checkout_records_state_so_status_reads_nothing(env: Env) -> None:
    write(env.root, {"a": b"1", "b": os.urandom(3000)})
    manifest = env.add()
    for name in ("a", "b"):
        (env.root / name).unlink()
    env.checkout(manifest)
    again = compute_digests(scan(env.root), env.state, str(env.root) + os.sep)
    assert again.hashed == 0
