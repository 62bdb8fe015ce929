"""End to end: the real `gart` command with a bare git origin, local-dir, S3 and faulty remotes."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import GartResult, build_dataset, git, init_git_repo, read_tree, run_gart
from s3_server import S3Bucket

TESTS = Path(__file__).resolve().parent
LARGE = (1 << 20) + 4096  # above the default pack threshold: stored loose


@dataclass
class Project:
    """A work clone with an artifact `pets` committed and pushed to a bare origin."""

    tmp: Path
    origin: Path
    work: Path
    files: dict[str, bytes]

    def gart(self, *args: str | os.PathLike[str], cwd: Path | None = None) -> GartResult:
        """Run the real `gart` (faulty:// is registered through sitecustomize on PYTHONPATH)."""
        path = os.pathsep.join([str(TESTS / "faultsite"), os.environ.get("PYTHONPATH", "")])
        return run_gart(cwd or self.work, *args, env={"PYTHONPATH": path})

    def ok(self, *args: str | os.PathLike[str], cwd: Path | None = None) -> GartResult:
        result = self.gart(*args, cwd=cwd)
        assert result.rc == 0, f"gart {' '.join(map(str, args))}: {result.err}"
        return result

    def clone(self, name: str = "clone") -> Path:
        dest = self.tmp / name
        git(self.tmp, "clone", "-q", str(self.origin), str(dest))
        return dest

    def commit_config(self, message: str = "remotes") -> None:
        git(self.work, "add", ".gart/config.yaml")
        git(self.work, "commit", "-q", "-m", message)
        git(self.work, "push", "-q", "origin", "main")

    def oid(self, rel: str) -> str:
        return hashlib.sha256(self.files[rel]).hexdigest()


def make_project(tmp: Path, small: int = 30, large: int = 2) -> Project:
    origin = tmp / "origin.git"
    git(tmp, "init", "-q", "--bare", "-b", "main", str(origin))
    work = init_git_repo(tmp / "work")
    git(work, "remote", "add", "origin", str(origin))
    files = {f"cats/{k}": v for k, v in build_dataset(work / "data" / "cats", small // 2).items()}
    files.update(
        {f"dogs/{k}": v for k, v in build_dataset(work / "data" / "dogs", small - small // 2,
                                                   seed=1).items()}
    )
    for i in range(large):
        data = hashlib.sha256(str(i).encode()).digest() * (LARGE // 32 + i)
        (work / "data" / f"big{i}.bin").write_bytes(data)
        files[f"big{i}.bin"] = data
    project = Project(tmp, origin, work, files)
    project.ok("init")
    project.ok("add", "data", "--name", "pets", "--type", "dataset")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "pets")
    git(work, "push", "-q", "origin", "main")
    return project


@pytest.fixture
def project(tmp_path: Path, git_env: None) -> Project:
    return make_project(tmp_path)


def with_local_remote(project: Project, name: str = "storage", default: bool = True) -> Path:
    path = project.tmp / f"remote-{name}"
    project.ok("remote", "add", name, path, *(["--default"] if default else []))
    return path


def data_of(root: Path) -> dict[str, bytes]:
    return read_tree(root) if root.exists() else {}


def temp_files(root: Path) -> list[Path]:
    return list(root.rglob(".tmp-*"))


# -- gart remote ---------------------------------------------------------------------------


def test_remote_add_modify_list_remove(project: Project) -> None:
    config = project.work / ".gart" / "config.yaml"
    local = project.work / ".gart" / "config.local.yaml"
    project.ok("remote", "add", "storage", "s3://team-bucket/gart", "--default")
    project.ok("remote", "add", "backup", "../shared/gart")
    project.ok("remote", "modify", "storage", "endpoint_url", "http://127.0.0.1:9000")
    project.ok("remote", "modify", "storage", "profile", "ci", "--local")
    refused = project.gart("remote", "modify", "storage", "secret", "wJalrXUtnFEMI")
    assert refused.rc != 0 and "secret" in refused.err and "--local" in refused.err
    assert "Traceback" not in refused.err
    project.ok("remote", "modify", "storage", "secret", "wJalrXUtnFEMI", "--local")
    leaked = project.gart("remote", "add", "leaky", "s3://AKIA:wJalrXUtnFEMI@bucket/x")
    assert leaked.rc != 0 and "credentials" in leaked.err and "Traceback" not in leaked.err
    assert "wJalrXUtnFEMI" not in config.read_text() and "AKIA" not in config.read_text()
    assert "wJalrXUtnFEMI" in local.read_text() and "profile: ci" in local.read_text()
    assert "http://127.0.0.1:9000" in config.read_text()
    git(project.work, "check-ignore", "-q", ".gart/config.local.yaml")  # never committed

    listed = json.loads(project.ok("remote", "list", "--json").out)
    by_name = {r["name"]: r for r in listed}
    assert set(by_name) == {"storage", "backup"}
    assert by_name["storage"]["default"] and not by_name["backup"]["default"]
    assert by_name["storage"]["url"] == "s3://team-bucket/gart"
    assert by_name["storage"]["options"] == {
        "endpoint_url": "http://127.0.0.1:9000", "profile": "ci", "secret": "***",
    }
    plain = project.ok("remote", "list").out
    assert "wJalrXUtnFEMI" not in plain and "* storage" in plain

    project.ok("remote", "modify", "storage", "endpoint_url", "--unset")
    assert "endpoint_url" not in config.read_text()
    project.ok("remote", "remove", "backup")
    assert [r["name"] for r in json.loads(project.ok("remote", "list", "--json").out)] == [
        "storage"
    ]
    assert "backup" not in config.read_text()
    unknown = project.gart("remote", "remove", "backup")
    assert unknown.rc == 2 and "no remote named 'backup'" in unknown.err


def test_removing_a_remote_with_local_options(project: Project) -> None:
    project.ok("remote", "add", "storage", "s3://team-bucket/gart", "--default")
    project.ok("remote", "modify", "storage", "profile", "ci", "--local")
    project.ok("remote", "remove", "storage")
    assert json.loads(project.ok("remote", "list", "--json").out) == []
    assert "storage" not in (project.work / ".gart" / "config.local.yaml").read_text()


def test_a_misspelt_option_is_refused_by_remote_modify(project: Project) -> None:
    project.ok("remote", "add", "storage", "s3://team-bucket/gart", "--default")
    config = project.work / ".gart" / "config.yaml"
    before = config.read_text()
    result = project.gart("remote", "modify", "storage", "endpoint", "http://127.0.0.1:9000")
    assert result.rc == 1 and "Traceback" not in result.err
    assert "did you mean 'endpoint_url'" in result.err
    assert config.read_text() == before  # nothing saved


def test_a_remote_with_a_missing_backend_gets_an_install_hint(project: Project) -> None:
    project.ok("remote", "add", "gcs", "gs://bucket/gart", "--default")
    result = project.gart("push")
    assert result.rc == 1 and "Traceback" not in result.err
    assert "not installed" in result.err and "pip install gcsfs" in result.err


# -- push / clone / pull -------------------------------------------------------------------


def test_push_then_pull_in_a_fresh_clone_local_dir(project: Project) -> None:
    remote = with_local_remote(project)
    project.commit_config()
    first = project.ok("push")
    assert f"Pushed {len(project.files)} object(s)" in first.err
    again = project.ok("push", "--json")
    sent = json.loads(again.out)
    assert (sent["sent"], sent["already_present"]) == (0, len(project.files))
    assert "Pushed 0 object(s)" in project.ok("push").err
    assert not temp_files(remote)

    clone = project.clone()
    project.ok("pull", "pets", cwd=clone)
    assert data_of(clone / "data") == data_of(project.work / "data")
    assert project.ok("fsck", cwd=clone).rc == 0
    assert "downloaded 0 object(s)" in project.ok("pull", "pets@v0", cwd=clone).err


def test_push_then_pull_through_s3(tmp_path: Path, git_env: None, s3: S3Bucket) -> None:
    project = make_project(tmp_path, small=2000, large=1)
    project.ok("remote", "add", "storage", s3.url, "--default")
    project.ok("remote", "modify", "storage", "endpoint_url", s3.endpoint)
    project.commit_config()
    s3.take()
    project.ok("push")
    push = Counter(r.method for r in s3.take())
    assert "Pushed 0" in project.ok("push").err
    noop = Counter(r.method for r in s3.take())
    clone = project.clone()
    project.ok("pull", "pets", cwd=clone)
    pull = Counter(r.method for r in s3.take())
    print(f"\nS3 requests — push of 2,000 small files + 1 large: {sum(push.values())} {dict(push)};"
          f" no-op push: {sum(noop.values())} {dict(noop)}; pull: {sum(pull.values())} "
          f"{dict(pull)}")
    # one pack, its index, one loose object; plus the push's lock: PUT, list, DELETE
    assert sum(push.values()) <= 13 and push["PUT"] == 4
    assert sum(noop.values()) <= 6  # the listings, plus the lock that keeps a gc out
    assert sum(pull.values()) <= 10
    assert data_of(clone / "data") == data_of(project.work / "data")
    assert project.ok("fsck", cwd=clone).rc == 0


def test_partial_pull_into_another_directory(project: Project) -> None:
    with_local_remote(project)
    project.commit_config()
    project.ok("push")
    clone = project.clone()
    target = project.tmp / "only-cats"
    project.ok("pull", "pets", "--to", target, "--path-prefix", "cats/", cwd=clone)
    cats = {k: v for k, v in project.files.items() if k.startswith("cats/")}
    assert data_of(target) == cats
    assert not (clone / "data").exists()  # the working tree was left alone
    cache = clone / ".gart" / "cache"
    fetched = {p.name for p in cache.rglob("*") if p.is_file()}
    assert not any(project.oid(k)[2:] in fetched for k in project.files if k.startswith("big"))


def test_fetch_fills_the_cache_only(project: Project) -> None:
    remote = with_local_remote(project)
    project.commit_config()
    project.ok("push")
    clone = project.clone()
    fetched = json.loads(project.ok("fetch", "pets", "--json", cwd=clone).out)
    assert fetched["downloaded"] == len(project.files)
    assert not (clone / "data").exists()
    remote.rename(project.tmp / "gone")  # the checkout needs nothing from the remote now
    project.ok("checkout", "pets", cwd=clone)
    assert data_of(clone / "data") == data_of(project.work / "data")


def test_two_remotes(project: Project) -> None:
    with_local_remote(project)
    backup = with_local_remote(project, "backup", default=False)
    project.commit_config()
    project.ok("push")
    assert not backup.exists()
    assert f"Pushed {len(project.files)} object(s)" in project.ok("push", "-r", "backup").err
    clone = project.clone()
    (project.tmp / "remote-storage").rename(project.tmp / "storage-lost")
    assert project.gart("pull", "pets", cwd=clone).rc == 1
    project.ok("pull", "pets", "-r", "backup", cwd=clone)
    assert data_of(clone / "data") == data_of(project.work / "data")


# -- damage and loss on the remote ---------------------------------------------------------


def test_a_corrupt_remote_object_fails_the_pull_and_touches_nothing(project: Project) -> None:
    remote = with_local_remote(project)
    project.commit_config()
    project.ok("push")
    key = f"files/sha256/{project.oid('big0.bin')[:2]}/{project.oid('big0.bin')[2:]}"
    bad = remote / key
    bad.chmod(0o644)
    data = bytearray(bad.read_bytes())
    data[1000] ^= 0xFF
    bad.write_bytes(bytes(data))
    clone = project.clone()
    before = git(clone, "status", "--porcelain", "--untracked-files=all")
    result = project.gart("pull", "pets", cwd=clone)
    assert result.rc == 1 and "Traceback" not in result.err
    assert "pets:big0.bin" in result.err and key in result.err and "corrupt" in result.err
    assert not (clone / "data").exists()
    cache = clone / ".gart" / "cache"
    assert not (cache / key).exists() and not temp_files(cache)
    assert git(clone, "status", "--porcelain", "--untracked-files=all") == before


def test_missing_objects_are_all_named(project: Project) -> None:
    remote = with_local_remote(project)
    project.commit_config()
    project.ok("push")
    for pack in (remote / "packs").iterdir():  # lose every small file
        pack.unlink()
    clone = project.clone()
    result = project.gart("pull", "pets", cwd=clone)
    assert result.rc == 1 and "missing" in result.err
    small = [k for k in project.files if not k.startswith("big")]
    assert len(small) > 10
    missing = [k for k in small if f"pets:{k}" in result.err]
    assert missing == small, f"only {len(missing)} of {len(small)} named: {result.err}"


def test_missing_objects_fail_the_pull(project: Project) -> None:
    remote = with_local_remote(project)
    project.commit_config()
    project.ok("push")
    for pack in (remote / "packs").iterdir():
        pack.unlink()
    clone = project.clone()
    result = project.gart("pull", "pets", cwd=clone)
    assert result.rc == 1 and "Traceback" not in result.err
    assert f"{len(project.files) - 2} file(s) missing from" in result.err
    assert "gart push" in result.err  # the next step
    assert not (clone / "data").exists()


# -- interruptions -------------------------------------------------------------------------


def faulty_remote(project: Project, remote: Path, name: str, **options: str) -> None:
    project.ok("remote", "add", name, f"faulty://{remote}")
    for key, value in options.items():
        project.ok("remote", "modify", name, key, value, "--local")


def test_a_failed_push_publishes_nothing_and_a_rerun_completes(project: Project) -> None:
    remote = with_local_remote(project)
    faulty_remote(project, remote, "flaky", fault_method="pipe_file", fault_count="0",
                  fault_path="packs/")  # the data, not the push's lock file
    project.commit_config()
    result = project.gart("push", "-r", "flaky")
    assert result.rc == 1 and "Traceback" not in result.err
    assert "push failed" in result.err and "injected fault" in result.err
    assert not list((remote / "packs").glob("*.idx"))
    assert "pets@" not in git(project.origin, "tag", "--list")  # nothing published
    assert "pets@" not in git(project.work, "tag", "--list")
    assert "published v0" in project.ok("push").err
    assert "pets@v0" in git(project.origin, "tag", "--list")


def run_until_stalled(project: Project, marker: Path, *args: str, cwd: Path) -> None:
    """Start `gart ARGS`, wait for the faulty remote to stall it, then SIGKILL it."""
    env = dict(os.environ, PYTHONPATH=str(TESTS / "faultsite"))
    child = subprocess.Popen(
        [sys.executable, "-m", "gitartifacts", *args], cwd=cwd, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while not marker.exists():
        if child.poll() is not None:
            stderr = child.stderr.read().decode() if child.stderr else ""
            pytest.fail(f"gart exited ({child.returncode}) before the remote stalled: {stderr}")
        assert time.monotonic() < deadline, "the faulty remote never stalled"
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL
    if child.stderr:
        child.stderr.close()


def test_a_killed_pull_leaves_only_temp_files_and_a_rerun_completes(
    tmp_path: Path, git_env: None
) -> None:
    project = make_project(tmp_path, small=20, large=4)
    remote = with_local_remote(project)
    project.ok("push")
    marker = tmp_path / "stalled"
    faulty_remote(project, remote, "stalling", fault_method="get_file", fault_path="files/",
                  fault_call="3", fault_mode="stall", stall_marker=str(marker))
    project.commit_config()
    clone = project.clone()
    local = clone / ".gart" / "config.local.yaml"
    local.write_bytes((project.work / ".gart" / "config.local.yaml").read_bytes())
    run_until_stalled(project, marker, "pull", "pets", "-r", "stalling", "-j", "1", cwd=clone)

    assert not (clone / "data").exists()  # nothing checked out
    cache = clone / ".gart" / "cache"
    loose = [p for p in (cache / "files").rglob("*") if p.is_file() and ".tmp-" not in p.name]
    assert len(loose) == 2  # two loose objects complete, the third was stalled mid-way
    assert temp_files(cache)  # the interrupted one is only a temp file
    assert project.ok("fsck", cwd=clone).rc == 0

    project.ok("pull", "pets", cwd=clone)  # the re-run (default remote) completes
    assert data_of(clone / "data") == data_of(project.work / "data")
    fsck = project.ok("fsck", "--json", cwd=clone)
    assert json.loads(fsck.out) == {"problems": []}


def test_a_killed_push_publishes_nothing_and_a_rerun_completes(project: Project) -> None:
    remote = with_local_remote(project)
    marker = project.tmp / "stalled"
    faulty_remote(project, remote, "stalling", fault_method="pipe_file", fault_mode="stall",
                  stall_marker=str(marker), fault_path="packs/")
    project.commit_config()
    run_until_stalled(project, marker, "push", "-r", "stalling", cwd=project.work)
    landed = [p.name for p in (remote / "packs").iterdir()]
    assert landed and all(name.startswith(".tmp-") for name in landed)  # half a pack, unseen
    assert "pets@" not in git(project.origin, "tag", "--list")
    project.ok("push")
    clone = project.clone()
    project.ok("pull", "pets", cwd=clone)
    assert data_of(clone / "data") == data_of(project.work / "data")
