"""`gart gc` and `gart fsck --remote` end to end: real git origin, local and S3 remotes.

Includes the interleaving proofs: a gc and a push running at the same moment never leave a
published version pointing at a blob the remote lacks."""

from __future__ import annotations

import hashlib
import json
import os
import socket
from pathlib import Path

import pytest
from conftest import git
from integrity_kit import finish, fsck_remote, ok, run, start, temp_files, wait_for
from s3_server import S3Bucket
from test_cli_remote import Project, make_project

from gitartifacts.objects import loose_key


@pytest.fixture
def project(tmp_path: Path, git_env: None) -> Project:
    return make_project(tmp_path, small=12, large=1)


def local_remote(project: Project) -> Path:
    path = project.tmp / "remote"
    ok(project.work, "remote", "add", "storage", path, "--default")
    git(project.work, "add", ".gart/config.yaml")
    git(project.work, "commit", "-q", "-m", "remote")
    return path


def new_version(project: Project, rel: str, data: bytes, message: str) -> None:
    (project.work / "data" / rel).write_bytes(data)
    ok(project.work, "add", "data", "--name", "pets")
    git(project.work, "add", "-A")
    git(project.work, "commit", "-q", "-m", message)
    ok(project.work, "push")
    git(project.work, "push", "-q", "origin", "main")


def oid(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def remote_has(remote: Path, cwd: Path, wanted: str) -> bool:
    from gitartifacts.backends import LocalBackend
    from gitartifacts.objects import ObjectStore

    store = ObjectStore(LocalBackend(remote))
    return wanted in store.packed_oids or (remote / loose_key(wanted)).exists()


def test_gc_keep_versions_dry_run_then_for_real(project: Project) -> None:
    remote = local_remote(project)
    ok(project.work, "push")
    git(project.work, "push", "-q", "origin", "main")
    old_small = project.files["cats/d0/f0000.bin"]
    new_version(project, "cats/d0/f0000.bin", b"changed small", "v1")
    big_old = project.files["big0.bin"]
    new_version(project, "big0.bin", b"B" * ((1 << 20) + 10), "v2")
    before = {p: p.stat().st_mtime_ns for p in remote.rglob("*") if p.is_file()}

    dry = json.loads(ok(project.work, "gc", "--remote", "--keep-versions", "1", "--grace",
                        "0", "--dry-run", "--json").out)
    assert dry["dry_run"] and dry["pruned_versions"] == ["pets@v0", "pets@v1"]
    remote_plan = dry["stores"][1]
    assert remote_plan["bytes"] > len(big_old) and loose_key(oid(big_old)) in remote_plan["items"]
    assert {p: p.stat().st_mtime_ns for p in remote.rglob("*") if p.is_file()} == before

    done = json.loads(ok(project.work, "gc", "--remote", "--keep-versions", "1", "--grace",
                         "0", "--json").out)
    assert done["stores"][1]["bytes"] == remote_plan["bytes"]
    assert done["stores"][1]["packs_repacked"] >= 1  # the small files' pack was partly garbage
    assert not remote_has(remote, project.work, oid(big_old))
    assert not remote_has(remote, project.work, oid(old_small))
    report = fsck_remote(project.work)
    assert report["rc"] == 0, report
    assert report["remote"]["pruned"] == ["pets@v0", "pets@v1"]
    clone = project.clone()
    ok(clone, "pull", "pets@v2")
    assert (clone / "data" / "big0.bin").read_bytes() == b"B" * ((1 << 20) + 10)
    refused = run(clone, "pull", "pets@v0", "--to", project.tmp / "old")
    assert refused.rc == 1 and "missing" in refused.err and "Traceback" not in refused.err
    assert temp_files(remote, project.work / ".gart") == []


def test_gc_keeps_everything_reachable_and_respects_the_grace_period(project: Project) -> None:
    remote = local_remote(project)
    ok(project.work, "push")
    git(project.work, "push", "-q", "origin", "main")
    # Bytes uploaded for a manifest nobody committed: garbage once it is thrown away.
    (project.work / "data" / "stray.bin").write_bytes(b"never committed")
    ok(project.work, "add", "data", "--name", "pets")
    ok(project.work, "push", "--no-publish")
    (project.work / "data" / "stray.bin").unlink()
    git(project.work, "checkout", "HEAD", "--", ".gart/artifacts/pets.yaml")
    stray = oid(b"never committed")
    assert remote_has(remote, project.work, stray)

    young = json.loads(ok(project.work, "gc", "--remote", "--json").out)  # default grace 1h
    assert young["stores"][1]["bytes"] == 0 and young["stores"][1]["kept_young"] >= 1
    assert remote_has(remote, project.work, stray)

    ok(project.work, "gc", "--remote", "--grace", "0")
    assert not remote_has(remote, project.work, stray)
    assert all(remote_has(remote, project.work, oid(d)) for d in project.files.values())
    assert fsck_remote(project.work)["rc"] == 0
    assert ok(project.work, "fsck").rc == 0


def test_fsck_remote_finds_every_kind_of_damage_and_repair_fixes_what_the_cache_has(
        project: Project) -> None:
    remote = local_remote(project)
    ok(project.work, "push")
    git(project.work, "push", "-q", "origin", "main")
    assert fsck_remote(project.work)["rc"] == 0
    big = oid(project.files["big0.bin"])
    os.chmod(remote / loose_key(big), 0o644)
    (remote / loose_key(big)).unlink()  # missing loose object
    pack = next((remote / "packs").glob("*.pack"))
    data = bytearray(pack.read_bytes())
    data[20] ^= 0xFF  # one packed object corrupt (the index still fits the pack)
    os.chmod(pack, 0o644)
    pack.write_bytes(bytes(data))

    report = fsck_remote(project.work)
    problems = "\n".join(report["remote"]["problems"])
    assert report["rc"] == 1
    assert f"object {big} is missing (pets@v0:big0.bin)" in problems
    assert "is corrupt on the remote" in problems
    sampled = run(project.work, "fsck", "--remote", "--sample", "1")
    assert sampled.rc == 1 and big in sampled.out  # missing objects are found without reads

    repaired = fsck_remote(project.work, "--repair")
    assert repaired["rc"] == 0, repaired
    assert big in repaired["remote"]["repaired"]
    assert fsck_remote(project.work)["rc"] == 0
    clone = project.clone()
    ok(clone, "pull", "pets@v0")
    assert (clone / "data" / "big0.bin").read_bytes() == project.files["big0.bin"]


def test_fsck_remote_reports_a_tag_whose_digest_disagrees(project: Project) -> None:
    local_remote(project)
    ok(project.work, "push")
    head = git(project.work, "rev-parse", "HEAD").strip()
    message = ("gart-version: 1\nname: pets\nversion: v1\ndigest: sha256:" + "0" * 64
               + "\nsize: 1\ncount: 1\n")
    git(project.work, "tag", "-a", "pets@v1", head, "-m", message)
    report = fsck_remote(project.work)
    assert report["rc"] == 1
    assert any("pets@v1 looks tampered with" in p for p in report["remote"]["problems"])
    refused = run(project.work, "gc", "--remote", "--grace", "0")
    assert refused.rc == 1 and "nothing was deleted" in refused.err


def test_fsck_remote_sample_on_s3_reads_a_share_with_byte_ranges(
        tmp_path: Path, git_env: None, s3: S3Bucket) -> None:
    project = make_project(tmp_path, small=40, large=1)
    ok(project.work, "remote", "add", "storage", s3.url, "--default")
    ok(project.work, "remote", "modify", "storage", "endpoint_url", s3.endpoint)
    ok(project.work, "push")
    s3.take()
    report = fsck_remote(project.work, "--sample", "10%")
    requests = s3.take()
    assert report["rc"] == 0, report
    remote = report["remote"]
    assert remote["referenced"] == 41 and 1 <= remote["verified"] < 41
    assert not any(r.method in ("PUT", "DELETE") for r in requests)
    ranged = [r for r in requests if r.method == "GET" and r.range]
    assert ranged or remote["verified"] == 1  # packed objects come by byte range
    full = fsck_remote(project.work)
    assert full["rc"] == 0 and full["remote"]["verified"] == 41
    ok(project.work, "gc", "--remote", "--grace", "0")
    assert fsck_remote(project.work)["rc"] == 0


# -- concurrency: gc beside push --------------------------------------------------------------


def garbage_then_reuse(project: Project) -> tuple[Path, bytes]:
    """A remote holding bytes no published version needs (pushed with --no-publish, never
    committed), which the next version will reuse."""
    remote = local_remote(project)
    ok(project.work, "push")
    git(project.work, "push", "-q", "origin", "main")
    data = os.urandom(3000)
    (project.work / "data" / "reused.bin").write_bytes(data)
    ok(project.work, "add", "data", "--name", "pets")
    ok(project.work, "push", "--no-publish")
    git(project.work, "add", "-A")
    git(project.work, "commit", "-q", "-m", "reuse")  # committed here, unknown to origin
    return remote, data


def test_push_paused_before_publishing_holds_off_a_gc(project: Project) -> None:
    remote, data = garbage_then_reuse(project)
    admin = project.clone("admin")  # gc runs in another clone: it cannot see the new commit
    flag = project.tmp / "push-paused"
    push = start(project.work, "push", GART_TEST_PAUSE_AT=f"push-publish:{flag}")
    wait_for(flag, push)  # push has seen the object on the remote and not uploaded it
    gc = start(admin, "gc", "--remote", "--grace", "0")
    flag.unlink()  # let the push publish; the gc waits for its lock meanwhile
    pushed, collected = finish(push), finish(gc)
    assert pushed.rc == 0 and collected.rc == 0, (pushed.err, collected.err)
    git(admin, "fetch", "-q", "origin", "--tags")
    assert remote_has(remote, admin, oid(data))
    assert fsck_remote(admin)["rc"] == 0
    fresh = project.clone("fresh")
    ok(fresh, "pull", "pets@v1")
    assert (fresh / "data" / "reused.bin").read_bytes() == data


def test_gc_paused_before_deleting_makes_a_push_upload_again(project: Project) -> None:
    remote, data = garbage_then_reuse(project)
    admin = project.clone("admin")
    flag = project.tmp / "gc-paused"
    gc = start(admin, "gc", "--remote", "--grace", "0", GART_TEST_PAUSE_AT=f"gc-sweep:{flag}")
    wait_for(flag, gc)  # gc holds its lock and has decided the reused object is garbage
    push = start(project.work, "push")
    flag.unlink()
    collected, pushed = finish(gc), finish(push)
    assert collected.rc == 0 and pushed.rc == 0, (collected.err, pushed.err)
    assert remote_has(remote, project.work, oid(data))  # gc removed it; the push put it back
    assert fsck_remote(project.work)["rc"] == 0
    fresh = project.clone("fresh")
    ok(fresh, "pull", "pets@v1")
    assert (fresh / "data" / "reused.bin").read_bytes() == data


def test_a_lock_left_by_a_killed_gc_is_recovered(project: Project) -> None:
    remote = local_remote(project)
    ok(project.work, "push")
    flag = project.tmp / "gc-paused"
    gc = start(project.work, "gc", "--remote", "--grace", "0",
               GART_TEST_PAUSE_AT=f"gc-sweep:{flag}")
    wait_for(flag, gc)
    gc.kill()
    gc.wait()
    assert list((remote / "locks").iterdir())  # the killed gc's lock is still there
    # A lock from a host we cannot check stays until it is old; from ours, a dead pid frees it.
    (remote / "locks" / "exclusive-feedfacefeedface").write_text(json.dumps(
        {"command": "gc", "host": socket.gethostname(), "pid": 2**22 + 7, "time": 0}))
    (project.work / "data" / "more.bin").write_bytes(b"more")
    ok(project.work, "add", "data", "--name", "pets")  # the cache flock died with the gc
    git(project.work, "add", "-A")
    git(project.work, "commit", "-q", "-m", "more")
    ok(project.work, "push")
    assert not list((remote / "locks").iterdir())
    assert fsck_remote(project.work)["rc"] == 0
