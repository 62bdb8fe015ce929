"""Large files as content-defined chunks: a small edit stores and sends little, every byte
is verified on the way back, and interruptions converge (issue 15)."""

from __future__ import annotations

import hashlib
import json
import os
import random
from pathlib import Path

import pytest
from conftest import git, init_git_repo
from test_cli_remote import (
    Project,
    data_of,
    faulty_remote,
    run_until_stalled,
    temp_files,
    with_local_remote,
)

from gitartifacts import chunking
from gitartifacts.errors import CorruptObjectError
from gitartifacts.hashing import StateCache
from gitartifacts.manifest import Entry, Manifest, loads
from gitartifacts.objects import ObjectStore, chunk_list_key
from gitartifacts.packformat import PACK_MAGIC
from gitartifacts.workspace import compute_digests, scan

MiB = 1 << 20
CONFIG = "gart: 1\ncache:\n  chunk_threshold: 1048576\n  chunk_avg: 8192\n"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def random_bytes(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def packed_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in (root / "packs").glob("*.pack"))


def store_tree(tmp: Path, root: Path, store: ObjectStore) -> Manifest:
    files = scan(root)
    result = compute_digests(files, StateCache(tmp / "state.db"), str(root) + "/", store=store)
    entries = tuple(Entry(p, oid, size) for p, (oid, size) in result.digests.items())
    return Manifest(name="m", path="data", entries=entries)


# -- the chunk list ------------------------------------------------------------------------


def test_a_chunk_list_round_trips_and_a_damaged_one_is_refused() -> None:
    listing = chunking.ChunkList("ab" * 32, 7, (("cd" * 32, 3), ("ef" * 32, 4)))
    data = listing.serialize()
    assert data.startswith(b"GARTCL\x00\x01")
    assert chunking.ChunkList.parse(data, "ab" * 32) == listing
    damaged = bytearray(data)
    damaged[20] ^= 1
    with pytest.raises(CorruptObjectError, match="damaged"):
        chunking.ChunkList.parse(bytes(damaged), "ab" * 32)
    lying = chunking.ChunkList("ab" * 32, 8, listing.chunks).serialize()  # lengths != size
    with pytest.raises(CorruptObjectError, match="add up"):
        chunking.ChunkList.parse(lying, "ab" * 32)


def test_a_large_file_is_stored_as_packed_chunks_under_its_whole_file_oid(tmp_path: Path) -> None:
    data = random_bytes(3 * MiB)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "big").write_bytes(data)
    store = ObjectStore.local(tmp_path / "cache", chunk_threshold=MiB, chunk_avg=8192)
    manifest = store_tree(tmp_path, tmp_path / "data", store)
    oid = sha(data)
    assert manifest.entries[0].oid == oid  # the oid does not depend on storage
    assert not (tmp_path / "cache" / "files").exists()  # no loose copy
    listing = chunking.chunk_list(store, oid)
    assert listing is not None and listing.size == len(data)
    assert 100 < len(listing.chunks) < 1000  # ~8 KiB average
    assert all(c in store.packed_oids for c in chunking.chunk_oids(store, oid))
    assert store.missing({oid}) == set()
    assert chunking.read_range(store, oid, 1_000_000, 1_000_100) == data[1_000_000:1_000_100]
    assert b"".join(chunking.iter_file(store, oid)) == data


@pytest.mark.parametrize("window", [1, 100_000, 4 * MiB])
def test_a_file_read_in_windows_is_cut_exactly_as_if_read_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, window: int
) -> None:
    # Random bytes, then zeros (every chunk there is cut at the maximum size), then random.
    data = random_bytes(700_000, 1) + bytes(300_000) + random_bytes(333_333, 2)
    (tmp_path / "big").write_bytes(data)
    monkeypatch.setattr(chunking, "WINDOW", window)  # at least two maximal chunks is used
    store = ObjectStore.local(tmp_path / "cache", chunk_threshold=MiB, chunk_avg=8192)
    oid, size = chunking.store_file(store, tmp_path / "big")
    assert (oid, size) == (sha(data), len(data))
    whole = [(sha(c.data), c.length) for c in chunking._cdc(8192).cut_buf(data)]
    listing = chunking.chunk_list(store, oid)
    assert listing is not None and list(listing.chunks) == whole
    assert b"".join(chunking.iter_file(store, oid)) == data
    assert store.verify() == []


def test_a_pack_written_as_it_fills_is_whole_or_absent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gitartifacts import objects

    monkeypatch.setattr(objects, "SPILL_BYTES", 50_000)  # spill to the temp pack often
    store = ObjectStore.local(tmp_path / "cache")
    blobs = [random_bytes(20_000, seed) for seed in range(10)]
    with pytest.raises(RuntimeError), store.writer(pack_all=True) as writer:
        for blob in blobs:
            writer.add_bytes(sha(blob), memoryview(blob))
        raise RuntimeError("the writer fails after spilling")
    assert os.listdir(tmp_path / "cache" / "packs") == []  # no temp pack left behind
    with store.writer(pack_all=True) as writer:
        for blob in blobs:
            writer.add_bytes(sha(blob), memoryview(blob))
    names = sorted(os.listdir(tmp_path / "cache" / "packs"))
    assert len(names) == 2 and all(not n.startswith(".") for n in names)
    idx, pack = (tmp_path / "cache" / "packs" / n for n in names)
    assert sha(idx.read_bytes()) == pack.stem  # named by its index, which fixes every byte
    assert pack.read_bytes() == PACK_MAGIC + b"".join(blobs)  # in the order added
    assert store.verify() == []
    assert [store.read(sha(blob)) for blob in blobs] == blobs


@pytest.mark.parametrize("edit", ["append", "overwrite", "insert"])
def test_a_one_percent_edit_stores_about_one_percent(tmp_path: Path, edit: str) -> None:
    data = random_bytes(4 * MiB, seed=1)
    root = tmp_path / "data"
    root.mkdir()
    (root / "big").write_bytes(data)
    store = ObjectStore.local(tmp_path / "cache", chunk_threshold=MiB, chunk_avg=8192)
    store_tree(tmp_path, root, store)
    before = packed_bytes(tmp_path / "cache")
    rng = random.Random(2)
    if edit == "append":
        new = data + rng.randbytes(len(data) // 100)
    elif edit == "overwrite":  # 1% in place, at 10 scattered offsets
        buf = bytearray(data)
        for i in range(10):
            at = (i * len(data)) // 10 + 1234
            buf[at : at + len(data) // 1000] = rng.randbytes(len(data) // 1000)
        new = bytes(buf)
    else:
        middle = len(data) // 2
        new = data[:middle] + rng.randbytes(len(data) // 100) + data[middle:]
    (root / "big").write_bytes(new)
    manifest = store_tree(tmp_path, root, store)
    added = packed_bytes(tmp_path / "cache") - before
    assert manifest.entries[0].oid == sha(new)
    assert added <= 0.05 * len(new), f"{edit}: {added} new bytes for a 1% edit"


# -- through the command line --------------------------------------------------------------


def chunk_project(tmp: Path, size: int = 3 * MiB) -> Project:
    """A work clone whose artifact `model` holds one large (chunked) and two small files."""
    origin = tmp / "origin.git"
    git(tmp, "init", "-q", "--bare", "-b", "main", str(origin))
    work = init_git_repo(tmp / "work")
    git(work, "remote", "add", "origin", str(origin))
    files = {"weights.bin": random_bytes(size, seed=3), "a.txt": b"alpha\n", "b.txt": b"beta\n"}
    for rel, data in files.items():
        (work / "model" / rel).parent.mkdir(parents=True, exist_ok=True)
        (work / "model" / rel).write_bytes(data)
    project = Project(tmp, origin, work, files)
    project.ok("init")
    (work / ".gart" / "config.yaml").write_text(CONFIG)
    project.ok("add", "model", "--name", "model")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "model")
    git(work, "push", "-q", "origin", "main")
    return project


@pytest.fixture
def chunked(tmp_path: Path, git_env: None) -> Project:
    return chunk_project(tmp_path)


def edit_and_commit(project: Project, seed: int = 5) -> bytes:
    path = project.work / "model" / "weights.bin"
    data = bytearray(path.read_bytes())
    at = len(data) // 3
    data[at : at + 20_000] = random_bytes(20_000, seed=seed)
    path.write_bytes(bytes(data))
    project.files["weights.bin"] = bytes(data)
    project.ok("add", "model", "--name", "model")
    git(project.work, "commit", "-q", "-am", f"edit {seed}")
    git(project.work, "push", "-q", "origin", "main")
    return bytes(data)


def test_push_sends_only_the_chunks_the_remote_lacks_and_pull_reassembles(
    chunked: Project,
) -> None:
    manifest = (chunked.work / ".gart" / "artifacts" / "model.yaml").read_text()
    assert manifest.startswith("gart: 2\n")  # version-1 readers refuse it
    assert loads(manifest).format == 2
    remote = with_local_remote(chunked)
    chunked.commit_config()
    first = json.loads(chunked.ok("push", "--json").out)
    assert first["bytes"] >= 3 * MiB
    assert (remote / chunk_list_key(chunked.oid("weights.bin"))).is_file()
    assert not (remote / "files").exists()  # chunks travel in packs
    edit_and_commit(chunked)
    second = json.loads(chunked.ok("push", "--json").out)
    assert second["bytes"] < 0.05 * 3 * MiB  # a 20 kB edit sends a few chunks, not 3 MiB
    clone = chunked.clone()
    chunked.ok("pull", "model@v1", cwd=clone)
    assert data_of(clone / "model") == chunked.files
    chunked.ok("pull", "model@v0", cwd=clone)
    assert sha((clone / "model" / "weights.bin").read_bytes()) != chunked.oid("weights.bin")
    fsck = chunked.ok("fsck", "--json", cwd=clone)
    assert json.loads(fsck.out) == {"problems": []}


def test_du_reports_logical_and_stored_sizes_per_version(chunked: Project) -> None:
    with_local_remote(chunked)
    chunked.commit_config()
    chunked.ok("push")
    edit_and_commit(chunked)
    chunked.ok("push")
    for args in ((), ("-r", "storage")):
        report = json.loads(chunked.ok("du", "model", "--json", *args).out)
        (model,) = report["artifacts"]
        v0, v1 = model["versions"]
        assert v0["version"] == "v0" and v1["version"] == "v1"
        assert v0["logical"] == v1["logical"] == 3 * MiB + 11
        assert v1["new"] < 0.05 * 3 * MiB
        assert model["stored"] < 1.1 * (3 * MiB)
        assert model["dedup_ratio"] > 1.8
    table = chunked.ok("du").out
    assert "LOGICAL" in table and "v1" in table and "total" in table


def test_a_corrupt_chunk_on_the_remote_fails_the_pull_naming_the_file(chunked: Project) -> None:
    remote = with_local_remote(chunked)
    chunked.commit_config()
    chunked.ok("push")
    store = ObjectStore.local(remote, drop_corrupt=False)
    chunk = chunking.chunk_oids(store, chunked.oid("weights.bin"))[5]
    location = store.packed[chunk]
    pack = remote / "packs" / f"{location.pack_id}.pack"
    pack.chmod(0o644)
    raw = bytearray(pack.read_bytes())
    raw[location.offset + 7] ^= 0xFF
    pack.write_bytes(bytes(raw))
    clone = chunked.clone()
    result = chunked.gart("pull", "model", cwd=clone)
    assert result.rc == 1 and "Traceback" not in result.err
    assert "model:weights.bin" in result.err and "corrupt" in result.err
    assert not (clone / "model" / "weights.bin").exists()
    assert not temp_files(clone / "model") if (clone / "model").exists() else True


def test_a_corrupt_chunk_in_the_cache_is_never_placed_and_a_pull_repairs_it(
    chunked: Project,
) -> None:
    with_local_remote(chunked)
    chunked.commit_config()
    chunked.ok("push")
    cache = chunked.work / ".gart" / "cache"
    store = ObjectStore.local(cache)
    oid = chunked.oid("weights.bin")
    chunk = chunking.chunk_oids(store, oid)[3]
    location = store.packed[chunk]
    pack = cache / "packs" / f"{location.pack_id}.pack"
    pack.chmod(0o644)
    raw = bytearray(pack.read_bytes())
    raw[location.offset] ^= 0xFF
    pack.write_bytes(bytes(raw))
    target = chunked.work / "model" / "weights.bin"
    target.unlink()
    result = chunked.gart("checkout", "model")
    assert result.rc == 1 and "Traceback" not in result.err
    assert "weights.bin" in result.err and "gart pull" in result.err
    assert not target.exists() and not temp_files(chunked.work / "model")
    assert not (cache / chunk_list_key(oid)).exists()  # dropped: the next pull refetches it
    chunked.ok("pull", "model")
    assert target.read_bytes() == chunked.files["weights.bin"]


@pytest.mark.parametrize("loss", ["emptied", "zeroed"])
def test_cache_packs_a_power_loss_emptied_or_zeroed_are_fetched_again(
    chunked: Project, loss: str
) -> None:
    """A cache is not fsynced (docs/format.md §6.4). What a crash can leave of a pack under
    its index — no bytes, or zeros where its bytes were — is found on read, never placed,
    and fetched again from the remote."""
    with_local_remote(chunked)
    chunked.commit_config()
    chunked.ok("push")
    cache = chunked.work / ".gart" / "cache"
    packs = list((cache / "packs").glob("*.pack"))
    assert packs
    for pack in packs:
        size = pack.stat().st_size
        pack.chmod(0o644)
        pack.write_bytes(b"" if loss == "emptied" else bytes(size))
    target = chunked.work / "model" / "weights.bin"
    target.unlink()
    first = chunked.gart("pull", "model")
    if first.rc != 0:  # found while placing: dropped, and the message says what to run
        assert "Traceback" not in first.err and "gart pull" in first.err
        assert not target.exists()
        chunked.ok("pull", "model")
    assert data_of(chunked.work / "model") == chunked.files
    fsck = chunked.gart("fsck")  # what no read touched: reported once, and dropped
    assert fsck.rc == 0 or "next `gart pull` fetches them again" in fsck.out
    assert json.loads(chunked.ok("fsck", "--json").out) == {"problems": []}
    chunked.ok("pull", "model")
    assert data_of(chunked.work / "model") == chunked.files


def test_push_fsyncs_every_file_it_publishes_and_add_does_not_wait_for_the_cache(
    tmp_path: Path, git_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The durability promise (issue 15): nothing a version is published on can be lost by
    a crash, so every file push writes into a local-directory remote is fsynced before the
    tag; the cache is only handed to the disk (docs/format.md §6.4)."""
    from gitartifacts.api import Repo

    synced: list[str] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    project = chunk_project(tmp_path)  # adds in a gart process of its own: not spied on
    remote = with_local_remote(project)
    project.commit_config()
    weights = project.work / "model" / "weights.bin"
    weights.write_bytes(random_bytes(3 * MiB, seed=9))
    monkeypatch.chdir(project.work)
    Repo(project.work).add(["model"], name="model")
    assert not [p for p in synced if "/.gart/" in p]  # the cache: not waited for
    git(project.work, "commit", "-q", "-am", "new weights")
    git(project.work, "push", "-q", "origin", "main")
    Repo(project.work).push()
    published = [p for p in remote.rglob("*") if p.is_file() and "locks" not in p.parts]
    into_remote = [p for p in synced if p.startswith(str(remote))]
    assert published and len(into_remote) >= len(published)
    assert "model@v0" in git(project.work, "tag", "--list")


def test_packs_of_a_future_format_are_refused_loudly_not_called_missing(
    chunked: Project,
) -> None:
    """Pack indexes a newer gart may write (an unknown magic, valid checksum) are refused,
    and the pull says so and what to do, not only that the files are missing."""
    remote = with_local_remote(chunked)
    chunked.commit_config()
    chunked.ok("push")
    for idx in (remote / "packs").glob("*.idx"):
        body = b"GARTIX\x00\x03" + idx.read_bytes()[8:-32]
        idx.chmod(0o644)
        idx.write_bytes(body + hashlib.sha256(body).digest())
    clone = chunked.clone()
    result = chunked.gart("pull", "model", cwd=clone)
    assert result.rc == 1 and "Traceback" not in result.err
    assert "unknown format" in result.err and "upgrade gart" in result.err
    assert not data_of(clone / "model")


def test_files_reassembled_side_by_side_are_placed_unless_their_own_bytes_are_bad(
    tmp_path: Path,
) -> None:
    from gitartifacts.placer import Placer

    store = ObjectStore.local(tmp_path / "cache", chunk_threshold=MiB, chunk_avg=8192)
    root = tmp_path / "data"
    for i in range(5):
        (root / f"d{i % 2}").mkdir(parents=True, exist_ok=True)
        (root / f"d{i % 2}" / f"f{i}").write_bytes(random_bytes(MiB + 1000 * i, seed=10 + i))
    manifest = store_tree(tmp_path, root, store)
    by_path = {e.path: e for e in manifest.entries}
    bad = by_path["d0/f2"]
    chunk = chunking.chunk_oids(store, bad.oid)[1]
    location = store.packed[chunk]
    pack = tmp_path / "cache" / "packs" / f"{location.pack_id}.pack"
    pack.chmod(0o644)
    raw = bytearray(pack.read_bytes())
    raw[location.offset] ^= 0xFF
    pack.write_bytes(bytes(raw))
    out = tmp_path / "out"
    items = []
    for entry in sorted(manifest.entries, key=lambda e: e.path):
        listing = chunking.chunk_list(store, entry.oid)
        assert listing is not None
        items.append((entry, listing))
    placer = Placer(out, store, ["copy"])
    try:
        placer.put_chunked_many(items, jobs=3)
    finally:
        placer.close()
    assert placer.corrupt == [("d0/f2", bad.oid)]
    assert not (out / "d0" / "f2").exists() and not temp_files(out)
    for path, entry in by_path.items():
        if path != "d0/f2":
            assert sha((out / path).read_bytes()) == entry.oid
    assert sorted(p for p, _stat, _oid in placer.written) == sorted(
        str(out / p) for p in by_path if p != "d0/f2")
    assert not (tmp_path / "cache" / chunk_list_key(bad.oid)).exists()  # dropped for a re-pull
    assert chunk not in ObjectStore.local(tmp_path / "cache").packed_oids


def test_a_missing_chunk_on_the_remote_fails_the_pull_naming_the_file(chunked: Project) -> None:
    remote = with_local_remote(chunked)
    chunked.commit_config()
    chunked.ok("push")
    for idx in (remote / "packs").glob("*.idx"):  # the chunks' packs vanish, the list stays
        idx.unlink()
    clone = chunked.clone()
    result = chunked.gart("pull", "model", cwd=clone)
    assert result.rc == 1 and "Traceback" not in result.err
    assert "model:weights.bin" in result.err and "missing" in result.err


# -- interruptions (a real SIGKILL) --------------------------------------------------------


def test_a_killed_chunked_push_publishes_nothing_and_a_rerun_completes(
    tmp_path: Path, git_env: None
) -> None:
    project = chunk_project(tmp_path, size=6 * MiB)
    remote = with_local_remote(project)
    marker = tmp_path / "stalled"
    # Remote packs close at 32 MiB; chunk lists are written last: stall on the list.
    faulty_remote(project, remote, "stalling", fault_method="pipe_file", fault_path="chunks/",
                  fault_mode="stall", stall_marker=str(marker))
    project.commit_config()
    run_until_stalled(marker, "push", "-r", "stalling", cwd=project.work)
    assert list((remote / "packs").glob("*.idx"))  # the chunks landed
    lists = [p for p in (remote / "chunks").rglob("*") if p.is_file()]
    assert lists and all(p.name.startswith(".tmp-") for p in lists)  # the list did not
    assert "model@" not in git(project.origin, "tag", "--list")
    again = json.loads(project.ok("push", "--json").out)
    assert again["bytes"] < MiB  # the chunks already there are not sent again
    clone = project.clone()
    project.ok("pull", "model", cwd=clone)
    assert data_of(clone / "model") == project.files


def test_a_killed_chunked_pull_places_nothing_and_a_rerun_completes(
    tmp_path: Path, git_env: None
) -> None:
    project = chunk_project(tmp_path, size=6 * MiB)
    remote = with_local_remote(project)
    project.ok("push")
    marker = tmp_path / "stalled"
    faulty_remote(project, remote, "stalling", fault_method="get_file", fault_path="packs/",
                  fault_mode="stall", stall_marker=str(marker))
    project.commit_config()
    clone = project.clone()
    local = clone / ".gart" / "config.local.yaml"
    local.write_bytes((project.work / ".gart" / "config.local.yaml").read_bytes())
    run_until_stalled(marker, "pull", "model", "-r", "stalling", "-j", "1", cwd=clone)
    assert not (clone / "model" / "weights.bin").exists()
    project.ok("pull", "model", cwd=clone)
    assert data_of(clone / "model") == project.files
    fsck = project.ok("fsck", "--json", cwd=clone)
    assert json.loads(fsck.out) == {"problems": []}


def test_small_artifacts_stay_format_1_and_an_unknown_format_is_refused(chunked: Project) -> None:
    (chunked.work / "notes").mkdir()
    (chunked.work / "notes" / "n.txt").write_text("hi\n")
    chunked.ok("add", "notes", "--name", "notes")
    text = (chunked.work / ".gart" / "artifacts" / "notes.yaml").read_text()
    assert text.startswith("gart: 1\n")
    with pytest.raises(Exception, match="upgrade gitartifacts|not supported"):
        loads(text.replace("gart: 1\n", "gart: 4\n"))


def test_fsck_reports_a_chunk_list_whose_chunks_are_gone(chunked: Project) -> None:
    cache = chunked.work / ".gart" / "cache"
    for idx in (cache / "packs").glob("*.idx"):
        idx.unlink()
    result = chunked.gart("fsck")
    assert result.rc == 1 and "Traceback" not in result.err
    assert f"chunk list of {chunked.oid('weights.bin')}" in result.out


def test_gc_and_fsck_remote_keep_and_check_the_chunks_of_live_files(chunked: Project) -> None:
    with_local_remote(chunked)
    chunked.commit_config()
    chunked.ok("push")
    edit_and_commit(chunked)
    chunked.ok("push")
    clean = json.loads(chunked.ok("fsck", "--remote", "--json").out)
    assert clean["problems"] == []
    # Both versions are live: gc frees nothing either side needs, and both still pull.
    chunked.ok("gc", "--remote", "--grace", "0")
    chunked.ok("gc", "--grace", "0")
    assert json.loads(chunked.ok("fsck", "--remote", "--json").out)["problems"] == []
    clone = chunked.clone()
    chunked.ok("pull", "model@v1", cwd=clone)
    assert data_of(clone / "model") == chunked.files
    chunked.ok("pull", "model@v0", cwd=clone)
    chunked.ok("checkout", "model@v1", "--force")
    assert data_of(chunked.work / "model") == chunked.files
