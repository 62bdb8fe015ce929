"""End to end: the real `gart` command in temporary git repositories (init/add/status/...)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import GartResult, git, init_git_repo, ok, read_tree

Gart = Callable[..., GartResult]
Snapshot = Callable[[Path], tuple[str, dict[str, tuple[int, int, int]]]]
Dataset = Callable[..., dict[str, bytes]]


def user_error(result: GartResult, code: int = 1) -> str:
    """The error contract: exit code, `gart: error:` one line, a `hint:` line, no traceback."""
    assert result.rc == code, f"exit {result.rc}\nstdout: {result.out}\nstderr: {result.err}"
    assert "Traceback" not in result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 2, result.err
    assert lines[0].startswith("gart: error: ") and lines[1].startswith("hint: "), result.err
    return lines[0]


def without_tmp(files: dict[str, tuple[int, int, int]]) -> dict[str, tuple[int, int, int]]:
    return {k: v for k, v in files.items() if not k.startswith(".gart/tmp/")}


def manifest_path(root: Path, name: str) -> Path:
    return root / ".gart" / "artifacts" / f"{name}.yaml"


def cache_problems(gart: Gart, cwd: Path) -> GartResult:
    return gart("fsck", cwd=cwd)


# ---- init -------------------------------------------------------------------------------


def test_init_outside_a_git_repo_fails_and_writes_nothing(
    tmp_path: Path, gart: Gart
) -> None:
    outside = tmp_path / "not-a-repo"
    outside.mkdir()
    message = user_error(gart("init", cwd=outside))
    assert "not inside a git repository" in message
    assert list(outside.iterdir()) == []


def test_init_creates_config_and_stages_it(tmp_path: Path, gart: Gart) -> None:
    root = init_git_repo(tmp_path / "fresh")
    ok(gart("init", cwd=root))
    assert (root / ".gart" / "config.yaml").read_text().startswith("gart: 1\n")
    assert set(git(root, "diff", "--cached", "--name-only").split()) == {
        ".gart/config.yaml", ".gart/.gitignore"}
    again = ok(gart("init", cwd=root))
    assert "already" in again.err


# ---- add --------------------------------------------------------------------------------


def test_add_directory_stages_manifest_ignores_data(repo: Path, gart: Gart,
                                                    make_dataset: Dataset) -> None:
    data = make_dataset(repo / "data", files=8, seed=3)
    result = ok(gart("add", "data/", "--name", "raw-images", "--type", "dataset",
                     "--description", "Raw camera images", "--metadata", "source=camera-a",
                     "--metadata", "epochs=3"))
    assert "raw-images" in result.err
    text = manifest_path(repo, "raw-images").read_text()
    assert "metadata: {epochs: 3, source: camera-a}\n" in text
    assert "count: 8\n" in text
    assert "/data" in (repo / ".gitignore").read_text().splitlines()
    status = git(repo, "status", "--porcelain", "--untracked-files=all")
    assert "A  .gart/artifacts/raw-images.yaml" in status
    assert "A  .gitignore" in status
    assert "data/" not in status  # git never sees the bytes
    assert git(repo, "ls-files", "data") == ""
    # every file is recoverable from the cache alone
    shutil.rmtree(repo / "data")
    ok(gart("checkout", "raw-images"))
    assert read_tree(repo / "data") == data


def test_second_add_is_unchanged_and_touches_nothing(repo: Path, gart: Gart,
                                                     make_dataset: Dataset,
                                                     snapshot: Snapshot) -> None:
    make_dataset(repo / "data", files=5)
    ok(gart("add", "data"))
    before = snapshot(repo)
    mtime = manifest_path(repo, "data").stat().st_mtime_ns
    again = ok(gart("add", "data", "--json"))
    report = json.loads(again.out)
    assert report["changed"] is False and report["hashed"] == 0 and report["stored"] == 0
    plain = ok(gart("add", "data"))
    assert "unchanged" in plain.err
    assert manifest_path(repo, "data").stat().st_mtime_ns == mtime
    after = snapshot(repo)
    def outside_tmp(status: str) -> list[str]:
        return [line for line in status.splitlines() if ".gart/tmp/" not in line]

    assert outside_tmp(after[0]) == outside_tmp(before[0])  # git sees no change
    # nothing but the hash state cache (.gart/tmp) may be touched
    assert without_tmp(after[1]) == without_tmp(before[1])


def test_add_refusals_are_one_line_and_write_nothing(repo: Path, gart: Gart, tmp_path: Path,
                                                     snapshot: Snapshot) -> None:
    (repo / "data").mkdir()
    (repo / "data" / "f.bin").write_bytes(b"x")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "g.bin").write_bytes(b"y")
    before = snapshot(repo)
    cases = [
        ((str(outside),), 1, "outside the repository"),
        (("../outside",), 1, "outside the repository"),
        ((".git",), 1, "inside .git"),
        ((".git/config",), 1, "inside .git"),
        ((".gart/config.yaml",), 1, "inside .gart"),
        (("data", "--name", "Bad Name"), 1, "invalid artifact name"),
        (("data", "--name", "x" * 129), 1, "invalid artifact name"),
        (("data", "--name", "a..b"), 1, "invalid artifact name"),
        (("data", "--name", "x.lock"), 1, "invalid artifact name"),
        (("data", "--type", "Bad Type"), 1, "invalid artifact type"),
        (("missing-dir",), 1, "does not exist"),
        (("data", str(outside / "g.bin")), 1, "outside the repository"),
        (("data", ".gitignore-does-not-exist-either"), 1, "does not exist"),
        (("data", "data/f.bin"), 2, "--name"),
        (("data", "--metadata", "novalue"), 2, "KEY=VALUE"),
    ]
    for args, code, problem in cases:
        message = user_error(gart("add", *args), code)
        assert problem in message, (args, message)
    assert snapshot(repo) == before


def test_non_utf8_root_gitignore_fails_before_the_manifest_is_written(
        repo: Path, gart: Gart, snapshot: Snapshot) -> None:
    (repo / "data").mkdir()
    (repo / "data" / "f.bin").write_bytes(b"x")
    (repo / ".gitignore").write_bytes(b"/build\n\xff\xfe caf\xe9\n")
    before = snapshot(repo)
    message = user_error(gart("add", "data"))
    assert ".gitignore" in message and "UTF-8" in message
    assert without_tmp(snapshot(repo)[1]) == without_tmp(before[1])
    assert not manifest_path(repo, "data").exists()


def test_click_usage_errors_exit_2_without_traceback(repo: Path, gart: Gart,
                                                      snapshot: Snapshot) -> None:
    before = snapshot(repo)
    for args in (("add",), ("add", "--bogus-option", "x"), ("no-such-command",)):
        result = gart(*args)
        assert result.rc == 2 and "Traceback" not in result.err
        assert "Usage:" in result.err or "Error" in result.err
    assert snapshot(repo) == before


def test_symlink_pointing_outside_is_refused_naming_the_link(repo: Path, gart: Gart,
                                                             tmp_path: Path,
                                                             snapshot: Snapshot) -> None:
    (repo / "data").mkdir()
    (repo / "data" / "ok.bin").write_bytes(b"ok")
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the cache")
    os.symlink(secret, repo / "data" / "sneaky")
    before = snapshot(repo)
    message = user_error(gart("add", "data"))
    assert "data/sneaky" in message
    assert snapshot(repo) == before
    cache = repo / ".gart" / "cache"
    assert not cache.exists() or not any(p.is_file() for p in cache.rglob("*"))


def test_symlinked_data_dir_leading_outside_the_repo_is_refused(repo: Path, gart: Gart,
                                                                tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "f").write_bytes(b"f")
    os.symlink(tmp_path / "elsewhere", repo / "data")
    assert "outside the repository" in user_error(gart("add", "data"))


def test_non_utf8_file_name_is_refused_naming_the_file(repo: Path, gart: Gart,
                                                       snapshot: Snapshot) -> None:
    (repo / "data").mkdir()
    (repo / "data" / "fine.txt").write_bytes(b"fine")
    os.close(os.open(os.fsencode(repo / "data") + b"/\xff.bin", os.O_CREAT | os.O_WRONLY))
    before = snapshot(repo)
    message = user_error(gart("add", "data"))
    assert "not valid UTF-8" in message and "data/\\xff.bin" in message
    assert snapshot(repo) == before
    ok(gart("add", "data", "--exclude", "*.bin"))  # the way out the hint offers
    assert "fine.txt" in manifest_path(repo, "data").read_text()


def test_exclude_and_gartignore(repo: Path, gart: Gart) -> None:
    files = {"keep.txt": b"k", "drop.tmp": b"t", "sub/keep2.txt": b"k2", "sub/drop.log": b"l",
             "scratch/x": b"x"}
    for rel, data in files.items():
        (repo / "data" / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / "data" / rel).write_bytes(data)
    (repo / ".gartignore").write_text("# scratch files\n*.tmp\nscratch/\n")
    ok(gart("add", "data", "--exclude", "*.log"))
    listed = json.loads(ok(gart("ls", "data", "--json")).out)
    assert [f["path"] for f in listed["files"]] == ["keep.txt", "sub/keep2.txt"]
    # excluded and ignored files do not make the artifact look modified
    status = json.loads(ok(gart("status", "--json")).out)
    assert status[0]["state"] == "clean" and status[0]["added"] == []
    # a re-add keeps the exclusions given the first time
    (repo / "data" / "sub" / "more.log").write_bytes(b"m")
    again = json.loads(ok(gart("add", "data", "--json")).out)
    assert again["changed"] is False and again["count"] == 2


def test_several_paths_into_one_artifact(repo: Path, gart: Gart) -> None:
    for rel in ("data/train/a", "data/train/b", "data/test/c", "data/other/d"):
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_bytes(rel.encode())
    ok(gart("add", "data/train", "data/test", "--name", "splits"))
    listed = json.loads(ok(gart("ls", "splits", "--json")).out)
    assert listed["path"] == "data"
    assert [f["path"] for f in listed["files"]] == ["test/c", "train/a", "train/b"]
    ignored = (repo / ".gitignore").read_text().splitlines()
    assert "/data/train" in ignored and "/data/test" in ignored
    assert "?? data/other/d" in git(repo, "status", "--porcelain", "--untracked-files=all")
    (repo / "data" / "other" / "d").write_bytes(b"not part of it")
    assert json.loads(ok(gart("status", "splits", "--json")).out)[0]["state"] == "clean"


def test_single_file_artifact(repo: Path, gart: Gart) -> None:
    (repo / "models").mkdir()
    weights = os.urandom(3000)
    (repo / "models" / "model.pt").write_bytes(weights)
    (repo / "models" / "notes.txt").write_text("mine, not the artifact's")
    ok(gart("add", "models/model.pt", "--name", "resnet", "--type", "model"))
    listed = json.loads(ok(gart("ls", "resnet", "--json")).out)
    assert [f["path"] for f in listed["files"]] == ["model.pt"]
    assert listed["files"][0]["sha256"] == hashlib.sha256(weights).hexdigest()
    untracked = git(repo, "status", "--porcelain", "--untracked-files=all")
    assert "models/model.pt" not in untracked and "?? models/notes.txt" in untracked
    (repo / "models" / "model.pt").unlink()
    ok(gart("checkout", "resnet"))
    assert (repo / "models" / "model.pt").read_bytes() == weights
    assert (repo / "models" / "notes.txt").exists()


@pytest.mark.parametrize("target", [".hidden-data/model.bin", ".top.bin"])
def test_dot_named_data_is_ignored_by_git(repo: Path, gart: Gart, target: str) -> None:
    (repo / target).parent.mkdir(parents=True, exist_ok=True)
    (repo / target).write_bytes(b"weights")
    ok(gart("add", target, "--name", "dotted"))
    untracked = git(repo, "status", "--porcelain", "--untracked-files=all")
    assert target not in untracked, f".gitignore misses {target}:\n{untracked}"


# ---- status / checkout ------------------------------------------------------------------


def test_status_counts_and_json(repo: Path, gart: Gart, make_dataset: Dataset) -> None:
    make_dataset(repo / "data", files=6, dirs=2)
    ok(gart("add", "data", "--name", "raw"))
    clean = ok(gart("status"))
    assert clean.out.split()[:2] == ["raw", "clean"]
    (repo / "data" / "d0" / "f0000.bin").write_bytes(b"edited")
    (repo / "data" / "d0" / "f0002.bin").write_bytes(b"edited too")
    (repo / "data" / "d1" / "f0001.bin").unlink()
    (repo / "data" / "brand-new.bin").write_bytes(b"new")
    text = ok(gart("status"))
    assert "modified" in text.out and "(+1 ~2 -1)" in text.out
    [detail] = json.loads(ok(gart("status", "raw", "--json")).out)
    assert detail["name"] == "raw" and detail["state"] == "modified"
    assert detail["added"] == ["brand-new.bin"]
    assert detail["changed"] == ["d0/f0000.bin", "d0/f0002.bin"]
    assert detail["removed"] == ["d1/f0001.bin"]
    assert detail["unchanged"] == 3


def test_status_reports_objects_missing_from_the_cache(repo: Path, gart: Gart) -> None:
    (repo / "data").mkdir()
    (repo / "data" / "big").write_bytes(os.urandom(2 << 20))
    ok(gart("add", "data"))
    for obj in (repo / ".gart" / "cache" / "files").rglob("*"):
        if obj.is_file():
            obj.unlink()
    [detail] = json.loads(ok(gart("status", "--json")).out)
    assert detail["missing_from_cache"] == ["big"]
    assert "missing from cache" in ok(gart("status")).out


def test_checkout_refuses_to_overwrite_then_force_restores_exactly(
    repo: Path, gart: Gart, make_dataset: Dataset
) -> None:
    original = make_dataset(repo / "data", files=6)
    (repo / "data" / "big.bin").write_bytes(os.urandom(1 << 20 | 5))  # a loose object too
    original["big.bin"] = (repo / "data" / "big.bin").read_bytes()
    ok(gart("add", "data"))
    (repo / "data" / "d0" / "f0000.bin").write_bytes(b"my unsaved work")
    (repo / "data" / "mine.txt").write_bytes(b"also mine")
    (repo / "data" / "big.bin").unlink()
    edited = read_tree(repo / "data")
    result = gart("checkout", "data")
    message = user_error(result)
    # mine.txt is not the artifact's: never called changed, never deleted (even with --force)
    assert "d0/f0000.bin" in message and "mine.txt" not in message
    assert "--force" in result.err
    assert read_tree(repo / "data") == edited  # untouched, not even the deleted file restored
    ok(gart("checkout", "data", "--force"))
    assert read_tree(repo / "data") == dict(original, **{"mine.txt": b"also mine"})
    (repo / "data" / "mine.txt").unlink()
    assert ok(gart("status")).out.split()[1] == "clean"


def test_checkout_deletes_only_recoverable_extra_files(repo: Path, gart: Gart) -> None:
    (repo / "data").mkdir()
    (repo / "data" / "a").write_bytes(b"a")
    (repo / "data" / "b").write_bytes(b"b")
    ok(gart("add", "data"))
    git(repo, "commit", "-q", "-m", "two files")
    (repo / "data" / "b").unlink()
    ok(gart("add", "data"))  # now only a; b's bytes stay in the cache
    (repo / "data" / "b").write_bytes(b"b")
    ok(gart("checkout", "data"))  # b is recoverable: deleting it loses nothing
    assert sorted(p.name for p in (repo / "data").iterdir()) == ["a"]
    ok(gart("checkout", "data@HEAD"))
    assert (repo / "data" / "b").read_bytes() == b"b"


def test_checkout_to_another_directory(repo: Path, gart: Gart, make_dataset: Dataset,
                                       tmp_path: Path) -> None:
    data = make_dataset(repo / "data", files=4)
    ok(gart("add", "data"))
    target = tmp_path / "exported"
    ok(gart("checkout", "data", "--to", str(target)))
    assert read_tree(target) == data
    assert read_tree(repo / "data") == data


def test_ls_and_ls_json(repo: Path, gart: Gart) -> None:
    (repo / "data" / "sub").mkdir(parents=True)
    (repo / "data" / "sub" / "x.bin").write_bytes(b"xyz")
    (repo / "data" / "a.txt").write_bytes(b"")
    ok(gart("add", "data", "--name", "raw"))
    listed = json.loads(ok(gart("ls", "raw", "--json")).out)
    assert listed["name"] == "raw" and listed["path"] == "data"
    assert listed["digest"].startswith("sha256:")
    assert listed["files"] == [
        {"path": "a.txt", "size": 0, "sha256": hashlib.sha256(b"").hexdigest()},
        {"path": "sub/x.bin", "size": 3, "sha256": hashlib.sha256(b"xyz").hexdigest()},
    ]
    lines = ok(gart("ls", "raw")).out.splitlines()
    assert len(lines) == 2 and lines[1].endswith("sub/x.bin") and " 3 " in lines[1]
    assert "no artifact named 'nope'" in user_error(gart("ls", "nope"))


def test_diff_working_tree_and_commits(repo: Path, gart: Gart) -> None:
    (repo / "data").mkdir()
    for name in ("keep", "edit", "drop"):
        (repo / "data" / name).write_bytes(name.encode())
    ok(gart("add", "data"))
    git(repo, "commit", "-q", "-m", "v1")
    (repo / "data" / "edit").write_bytes(b"edited")
    (repo / "data" / "drop").unlink()
    (repo / "data" / "new").write_bytes(b"new")
    worktree = ok(gart("diff", "data"))
    assert worktree.out.splitlines() == ["+ new", "~ edit", "- drop"]
    ok(gart("add", "data"))
    git(repo, "commit", "-q", "-m", "v2")
    assert ok(gart("diff", "data")).out == ""  # working tree matches the manifest
    between = json.loads(ok(gart("diff", "data", "HEAD~1", "--json")).out)
    assert [e["path"] for e in between["added"]] == ["new"]
    assert [e["path"] for e in between["removed"]] == ["drop"]
    assert [(c["path"], c["old_sha256"], c["new_sha256"]) for c in between["changed"]] == [
        ("edit", hashlib.sha256(b"edit").hexdigest(), hashlib.sha256(b"edited").hexdigest())]
    assert ok(gart("diff", "data", "HEAD~1")).out.splitlines() == ["+ new", "~ edit", "- drop"]
    assert user_error(gart("diff", "data", "no-such-rev"))


# ---- link types and the cache -----------------------------------------------------------


@pytest.fixture
def world_readable_tmp() -> Iterator[Path]:
    """A temp dir another user can traverse (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="gart-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def write_as_unprivileged_user(path: Path) -> subprocess.CompletedProcess[str]:
    """Try an in-place write the way a careless tool would, as a normal (non-root) user:
    root ignores file modes, so under root the attempt runs as `nobody`."""
    kwargs: dict[str, int] = {"user": 65534, "group": 65534} if os.geteuid() == 0 else {}
    # `1<>` opens read-write without truncating: an in-place overwrite of the first bytes
    return subprocess.run(["/bin/sh", "-c", 'printf CORRUPTED 1<>"$1"', "sh", str(path)],
                          capture_output=True, text=True, check=False, timeout=60, **kwargs)


@pytest.mark.parametrize("link", ["hardlink", "symlink"])
def test_linked_checkouts_cannot_corrupt_the_cache(world_readable_tmp: Path, gart: Gart,
                                                   link: str) -> None:
    root = init_git_repo(world_readable_tmp / "repo")
    ok(gart("init", cwd=root))
    config = root / ".gart" / "config.yaml"
    config.write_text(config.read_text() + f"cache: {{type: [{link}, copy]}}\n")
    (root / "data").mkdir()
    big = os.urandom((1 << 20) + 100)
    (root / "data" / "big.bin").write_bytes(big)
    (root / "data" / "small.txt").write_bytes(b"small")
    ok(gart("add", "data", cwd=root))
    shutil.rmtree(root / "data")
    ok(gart("checkout", "data", cwd=root))
    placed = root / "data" / "big.bin"
    obj = root / ".gart" / "cache" / "files" / "sha256" / hashlib.sha256(big).hexdigest()[:2]
    if link == "hardlink":
        assert placed.stat().st_nlink >= 2 and not placed.is_symlink()
        assert any(placed.stat().st_ino == o.stat().st_ino for o in obj.iterdir())
    else:
        assert placed.is_symlink()
        assert Path(os.readlink(placed)).resolve().parent == obj.resolve()
    assert stat.S_IMODE(placed.stat().st_mode) & 0o222 == 0  # read-only
    assert (root / "data" / "small.txt").read_bytes() == b"small"  # packed: a plain copy
    attempt = write_as_unprivileged_user(placed)
    assert attempt.returncode != 0 and "ermission denied" in attempt.stderr
    assert placed.read_bytes() == big
    ok(cache_problems(gart, root))
    assert ok(gart("status", cwd=root)).out.split()[1] == "clean"
    # an editor that saves through a temp file + rename replaces the link, never the object
    tmp = root / "data" / "big.bin.swp"
    tmp.write_bytes(b"edited in an editor")
    os.replace(tmp, placed)
    ok(cache_problems(gart, root))
    assert "modified" in ok(gart("status", cwd=root)).out
    ok(gart("checkout", "data", "--force", cwd=root))
    assert placed.read_bytes() == big


def test_shared_cache_dir_between_two_clones(tmp_path: Path, gart: Gart,
                                             make_dataset: Dataset) -> None:
    shared = tmp_path / "shared-cache"
    first = init_git_repo(tmp_path / "first")
    ok(gart("init", cwd=first))
    (first / ".gart" / "config.local.yaml").write_text(f"cache: {{dir: {shared}}}\n")
    data = make_dataset(first / "data", files=5, seed=9)
    (first / "data" / "big.bin").write_bytes(os.urandom((1 << 20) + 1))
    data["big.bin"] = (first / "data" / "big.bin").read_bytes()
    ok(gart("add", "data", cwd=first))
    git(first, "commit", "-q", "-m", "data")
    assert not (first / ".gart" / "cache").exists()
    assert any((shared / "packs").glob("*.idx")) and any((shared / "files").rglob("*"))
    second = tmp_path / "second"
    git(tmp_path, "clone", "-q", str(first), str(second))
    (second / ".gart" / "config.local.yaml").write_text(f"cache: {{dir: {shared}}}\n")
    assert not (second / "data").exists()
    assert "not checked out" in ok(gart("status", cwd=second)).out
    ok(gart("checkout", "data", cwd=second))
    assert read_tree(second / "data") == data


def test_fsck_reports_damage(repo: Path, gart: Gart) -> None:
    (repo / "data").mkdir()
    big = os.urandom((1 << 20) + 10)
    (repo / "data" / "big").write_bytes(big)
    ok(gart("add", "data"))
    assert ok(cache_problems(gart, repo)).out == ""
    oid = hashlib.sha256(big).hexdigest()
    obj = repo / ".gart" / "cache" / "files" / "sha256" / oid[:2] / oid[2:]
    obj.chmod(0o644)
    obj.write_bytes(b"rot" + big[3:])
    damaged = cache_problems(gart, repo)
    assert damaged.rc == 1 and oid in damaged.out


# ---- crafted manifests ------------------------------------------------------------------


def craft_manifest(root: Path, name: str, lines: list[str], path: str = "data") -> None:
    block = "".join(f"{line}\n" for line in lines)
    sizes = sum(int(line.split(" ")[1]) for line in lines)
    text = (
        f"gart: 1\nname: {name}\ntype: dataset\ndescription: \"\"\nmetadata: {{}}\n"
        f"path: {path}\ninclude: [\".\"]\nexclude: []\n"
        f"digest: sha256:{hashlib.sha256(block.encode()).hexdigest()}\n"
        f"size: {sizes}\ncount: {len(lines)}\nfiles: |\n"
        + "".join(f"  {line}\n" for line in lines)
    )
    manifest_path(root, name).write_text(text)


UNSAFE = [("data", "../escape.txt"), ("data", "../../outside.txt"), ("data", ".git/config"),
          ("data", "sub/../../escape.txt"), (".", ".git/hooks/post-checkout"),
          (".", ".gart/config.yaml"), ("../outside", "x.txt"), ("/tmp", "x.txt")]


def test_crafted_manifests_with_unsafe_paths_are_refused(repo: Path, gart: Gart,
                                                         tmp_path: Path) -> None:
    payload = b"#!/bin/sh\necho pwned\n"
    (repo / "seed").mkdir()
    (repo / "seed" / "payload").write_bytes(payload)
    ok(gart("add", "seed"))  # the payload's bytes are in the cache: only the paths protect us
    oid = hashlib.sha256(payload).hexdigest()
    git_config = (repo / ".git" / "config").read_bytes()
    gart_config = (repo / ".gart" / "config.yaml").read_bytes()

    def outside_gart_tmp() -> list[str]:
        return sorted(str(p) for p in tmp_path.rglob("*") if ".gart/tmp" not in str(p))

    for path, entry in UNSAFE:
        craft_manifest(repo, "evil", [f"{oid} {len(payload)} {entry}"], path=path)
        before = outside_gart_tmp()
        message = user_error(gart("checkout", "evil", "--force"))
        assert "evil.yaml" in message, (path, entry, message)
        assert outside_gart_tmp() == before, (path, entry)
    assert "evil.yaml" in user_error(gart("status"))  # every command reads it the same way
    assert (repo / ".git" / "config").read_bytes() == git_config
    assert (repo / ".gart" / "config.yaml").read_bytes() == gart_config


@pytest.mark.parametrize(
    "text",
    [
        "gart: 1\nname: !!python/object/apply:os.system ['touch {marker}']\n",
        "gart: 1\nname: &a evil\ntype: *a\n",
        "gart: 2\nname: evil\n",
        "[" * 100000 + "]" * 100000 + "\n",
    ],
    ids=["python-tag", "alias", "future-format", "deep-nesting"],
)
def test_hostile_manifest_yaml_is_refused(repo: Path, gart: Gart, tmp_path: Path,
                                          text: str) -> None:
    marker = tmp_path / "pwned"
    manifest_path(repo, "evil").write_text(text.replace("{marker}", str(marker)))
    for command in (("checkout", "evil"), ("status",), ("ls", "evil")):
        user_error(gart(*command))
    assert not marker.exists()


def test_broken_config_is_a_one_line_error(repo: Path, gart: Gart) -> None:
    (repo / ".gart" / "config.yaml").write_text("gart: 1\ncache: {type: [teleport]}\n")
    assert "cache.type" in user_error(gart("status"))


# ---- help -------------------------------------------------------------------------------


def _commands() -> list[list[str]]:
    import click

    from gitartifacts.cli import cli

    found: list[list[str]] = []

    def walk(group: click.Group, prefix: list[str]) -> None:
        for name, command in sorted(group.commands.items()):
            if command.hidden:
                continue
            found.append([*prefix, name])
            if isinstance(command, click.Group):
                walk(command, [*prefix, name])

    walk(cli, [])
    return found


def test_help_shows_examples_for_every_command(gart: Gart, repo: Path) -> None:
    top = ok(gart("--help"))
    assert "gart init" in top.out and "gart add" in top.out
    commands = _commands()
    assert {"init", "add", "status", "checkout", "ls", "diff", "fsck"} <= {c[0] for c in commands}
    code = (
        "import sys\nfrom click.testing import CliRunner\nfrom gitartifacts.cli import cli\n"
        "for args in sys.argv[1:]:\n"
        "    r = CliRunner().invoke(cli, [*args.split(), '--help'], prog_name='gart')\n"
        "    print(args, r.exit_code, 'Example' in r.output, sep='|')\n"
    )
    done = subprocess.run([sys.executable, "-c", code, *(" ".join(c) for c in commands)],
                          capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    rows = [line.split("|") for line in done.stdout.splitlines()]
    assert [r[0] for r in rows] == [" ".join(c) for c in commands]
    bad = [r[0] for r in rows if r[1] != "0" or r[2] != "True"]
    assert bad == [], f"--help without exit 0 and an example: {bad}"
    sub = ok(gart("add", "--help"))
    assert "Example" in sub.out and "gart add data/" in sub.out


def test_pull_dry_run_plans_without_writing(repo: Path, gart: Gart,
                                            make_dataset: Dataset) -> None:
    data = make_dataset(repo / "data", files=6)
    ok(gart("add", "data"))
    git(repo, "commit", "-q", "-m", "data")
    shutil.rmtree(repo / "data")
    plan = ok(gart("pull", "data@HEAD", "--dry-run"))
    assert f"write {len(data)} file(s)" in plan.out and "download 0 object(s)" in plan.out
    assert not (repo / "data").exists()  # nothing written
    report = json.loads(ok(gart("pull", "data@HEAD", "--dry-run", "--json")).out)
    assert report[0]["dry_run"] is True and report[0]["written"] == len(data)
    ok(gart("pull", "data@HEAD"))  # all in the cache: no remote needed
    assert read_tree(repo / "data") == data
