"""End to end: the real `gart` command with a bare git origin, local-dir, S3, GCS, Azure,
faulty and silent remotes."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from azure_server import AzureContainer, connection_string
from conftest import GartResult, build_dataset, git, init_git_repo, read_tree, run_gart
from gcs_server import GcsBucket
from s3_server import HttpFault, S3Bucket, s3_environment
from silent_server import SilentServer

from gitartifacts.remote import BACKEND_PACKAGES

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
    # Mirrors tests/test_remote.py: the test extras install gcsfs and adlfs, so the hint is
    # checked on a backend that is absent here.
    absent = [(scheme, package) for scheme, package in BACKEND_PACKAGES.items()
              if scheme in ("gs", "webdav", "hdfs") and importlib.util.find_spec(package) is None]
    if not absent:
        pytest.skip("gcsfs, webdav4 and pyarrow are all installed here")
    scheme, package = absent[0]
    project.ok("remote", "add", "other", f"{scheme}://bucket/gart", "--default")
    result = project.gart("push")
    assert result.rc == 1 and "Traceback" not in result.err
    assert "not installed" in result.err and f"pip install {package}" in result.err


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


def run_until_stalled(marker: Path, *args: str, cwd: Path) -> None:
    """Start `gart ARGS` (this checkout's code, plus faulty://), wait for the remote to
    stall it, then SIGKILL it."""
    path = [str(TESTS / "faultsite"), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path))
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
    run_until_stalled(marker, "pull", "pets", "-r", "stalling", "-j", "1", cwd=clone)

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
    run_until_stalled(marker, "push", "-r", "stalling", cwd=project.work)
    landed = [p.name for p in (remote / "packs").iterdir()]
    assert landed and all(name.startswith(".tmp-") for name in landed)  # half a pack, unseen
    assert "pets@" not in git(project.origin, "tag", "--list")
    project.ok("push")
    clone = project.clone()
    project.ok("pull", "pets", cwd=clone)
    assert data_of(clone / "data") == data_of(project.work / "data")


# -- backends that fail: a silent endpoint, a missing bucket, refused credentials ---------


def backend_remote(project: Project, kind: str, endpoint: str, bucket: str = "gart-test",
                   name: str = "storage", *, default: bool = True) -> None:
    """Add remote `name` of `kind` (s3, gs, az) whose requests go to `endpoint`."""
    scheme = {"s3": "s3", "gs": "gs", "az": "az"}[kind]
    project.ok("remote", "add", name, f"{scheme}://{bucket}/gart",
               *(["--default"] if default else []))
    if kind == "az":
        project.ok("remote", "modify", name, "connection_string", connection_string(endpoint),
                   "--local")
    else:
        project.ok("remote", "modify", name, "endpoint_url", endpoint)
    if kind == "gs":
        project.ok("remote", "modify", name, "token", "anon", "--local")


def one_line_error(result: GartResult) -> str:
    """The `gart: error:` line of a failed command (and no traceback anywhere)."""
    assert result.rc == 1, result
    assert "Traceback" not in result.err, result.err
    errors = [line for line in result.err.splitlines() if line.startswith("gart: error:")]
    assert len(errors) == 1, result.err
    assert any(line.startswith("hint: ") for line in result.err.splitlines()), result.err
    return errors[0]


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Test credentials for s3 remotes (the silent endpoint never checks them)."""
    for name, value in s3_environment().items():
        monkeypatch.setenv(name, value)


def test_a_silent_endpoint_fails_push_and_pull_with_one_line(
    tmp_path: Path, git_env: None, aws_env: None, silent_server: SilentServer
) -> None:
    """An S3 endpoint that accepts and never answers once held push for 411 s and pull for
    423 s. With a 1 s read_timeout both fail with one line naming the endpoint (the 120 s
    subprocess timeout catches a hang; no wall-clock assertion)."""
    project = make_project(tmp_path, small=4, large=1)
    with_local_remote(project, "good")
    project.ok("push")  # pets@v0 published through the local remote
    backend_remote(project, "s3", silent_server.endpoint, name="dead", default=False)
    project.ok("remote", "modify", "dead", "read_timeout", "1")
    project.ok("remote", "modify", "dead", "connect_timeout", "1")
    project.commit_config()
    tags = git(project.work, "tag", "--list")

    push = one_line_error(project.gart("push", "-r", "dead"))
    assert silent_server.endpoint in push and "did not answer within 1 s" in push, push
    assert "remote 'dead'" in push
    assert git(project.work, "tag", "--list") == tags  # nothing published

    clone = project.clone()
    pull = one_line_error(project.gart("pull", "pets", "-r", "dead", cwd=clone))
    assert silent_server.endpoint in pull and "did not answer within 1 s" in pull, pull
    assert not (clone / "data").exists()  # nothing checked out


@pytest.mark.parametrize("kind", ["gs", "az"])
def test_a_silent_gcs_or_azure_endpoint_fails_push_with_one_line(
    tmp_path: Path, git_env: None, silent_server: SilentServer, kind: str
) -> None:
    """gcsfs (6 tries, up to 32 s apart) and the Azure SDK (300 s reads, 10 tries) get the
    same limits; pull goes through the same listing as push."""
    project = make_project(tmp_path, small=4, large=1)
    backend_remote(project, kind, silent_server.endpoint)
    project.ok("remote", "modify", "storage", "read_timeout", "1")
    project.ok("remote", "modify", "storage", "connect_timeout", "1")
    push = one_line_error(project.gart("push"))
    assert silent_server.endpoint in push and "did not answer within 1 s" in push, push
    assert git(project.work, "tag", "--list") == ""


def test_a_missing_s3_bucket_is_an_error_not_an_empty_remote(
    tmp_path: Path, git_env: None, s3: S3Bucket
) -> None:
    project = make_project(tmp_path, small=4, large=1)
    backend_remote(project, "s3", s3.endpoint, bucket="no-such-bucket")
    push = one_line_error(project.gart("push"))
    assert "bucket 'no-such-bucket' does not exist" in push and s3.endpoint in push, push
    assert "packs" not in push
    assert git(project.work, "tag", "--list") == ""  # nothing published
    tried = [r for r in s3.take() if r.method in ("PUT", "POST")]
    assert tried and all("/locks/" in r.path for r in tried)  # only the push's lock, refused
    assert len(tried) == 1  # and a missing bucket is never retried


def test_a_missing_gcs_bucket_is_an_error(tmp_path: Path, git_env: None, gcs: GcsBucket) -> None:
    project = make_project(tmp_path, small=4, large=1)
    backend_remote(project, "gs", gcs.endpoint, bucket="no-such-bucket")
    push = one_line_error(project.gart("push"))
    assert "bucket 'no-such-bucket' does not exist" in push and gcs.endpoint in push, push
    assert git(project.work, "tag", "--list") == ""


def test_a_missing_azure_container_is_an_error(
    tmp_path: Path, git_env: None, azure: AzureContainer
) -> None:
    project = make_project(tmp_path, small=4, large=1)
    backend_remote(project, "az", azure.endpoint, bucket="no-such-container")
    push = one_line_error(project.gart("push"))
    assert "container 'no-such-container' does not exist" in push, push
    assert git(project.work, "tag", "--list") == ""


def test_refused_s3_credentials_are_named_and_never_printed(
    tmp_path: Path, git_env: None, s3: S3Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzzzzzzzzz"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    project = make_project(tmp_path, small=4, large=1)
    backend_remote(project, "s3", s3.endpoint)
    s3.server.fail(HttpFault("GET", "/gart-test", status=403, code="InvalidAccessKeyId"))
    push = one_line_error(project.gart("push"))
    assert "credentials of remote 'storage' were refused by" in push, push
    assert "InvalidAccessKeyId" in push
    assert secret not in push
    assert git(project.work, "tag", "--list") == ""


def test_a_wrong_azure_account_key_is_refused(
    tmp_path: Path, git_env: None, azure: AzureContainer
) -> None:
    wrong = "V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3JvbmdLZXlXcm9uZ0tleQ=="
    project = make_project(tmp_path, small=4, large=1)
    project.ok("remote", "add", "storage", azure.url, "--default")
    project.ok("remote", "modify", "storage", "connection_string",
               connection_string(azure.endpoint, key=wrong), "--local")
    result = project.gart("push")
    push = one_line_error(result)
    assert "credentials of remote 'storage' were refused" in push, push
    assert wrong not in result.err
    assert git(project.work, "tag", "--list") == ""


def test_an_invalid_endpoint_url_is_one_line_not_a_traceback(
    project: Project, snapshot: Any
) -> None:
    project.ok("remote", "add", "storage", "s3://bucket/gart", "--default")
    config = project.work / ".gart" / "config.yaml"
    before = config.read_text()
    refused = one_line_error(project.gart("remote", "modify", "storage", "endpoint_url",
                                          "localhost:9000"))
    assert "endpoint_url 'localhost:9000' must start with http:// or https://" in refused
    assert config.read_text() == before  # nothing saved
    # A hand-edited config: `gart push` used to die with botocore's ValueError traceback.
    config.write_text(before.replace("url: s3://bucket/gart",
                                     "url: s3://bucket/gart\n    endpoint_url: not a url"))
    state = snapshot(project.work)
    push = one_line_error(project.gart("push"))
    assert "endpoint_url 'not a url' is not a URL" in push, push
    assert without_config_cache(snapshot(project.work)) == without_config_cache(state)


def without_config_cache(state: Any) -> Any:
    """A tree snapshot minus gart's parsed-config cache (a read cache, not a write)."""
    status, files = state
    lines = [line for line in status.splitlines() if "parsed-config" not in line]
    return lines, {k: v for k, v in files.items() if "parsed-config" not in k}


def test_timeouts_must_be_numbers(project: Project) -> None:
    project.ok("remote", "add", "storage", "s3://bucket/gart", "--default")
    bad = one_line_error(project.gart("remote", "modify", "storage", "read_timeout", "soon"))
    assert "read_timeout must be a number of seconds" in bad
    bad = one_line_error(project.gart("remote", "modify", "storage", "retries", "11"))
    assert "retries must be a whole number" in bad
    project.ok("remote", "modify", "storage", "read_timeout", "2.5")  # safe to commit
    assert "read_timeout: '2.5'" in (project.work / ".gart" / "config.yaml").read_text()


def test_push_then_pull_through_gcs_quietly(
    tmp_path: Path, git_env: None, gcs: GcsBucket
) -> None:
    """gcsfs's experimental bucket-type lookup once made a no-op push take 28 s and print 41
    warnings; gart uses gcsfs's core class and keeps library logging quiet."""
    project = make_project(tmp_path, small=6, large=1)
    backend_remote(project, "gs", gcs.endpoint)
    project.commit_config()
    project.ok("push")
    again = project.ok("push")
    assert "Pushed 0" in again.err and again.err.count("\n") <= 2, again.err
    clone = project.clone()
    project.ok("remote", "modify", "storage", "token", "anon", "--local", cwd=clone)
    pulled = project.ok("pull", "pets", cwd=clone)
    assert "warn" not in pulled.err.lower() and "Traceback" not in pulled.err
    assert data_of(clone / "data") == data_of(project.work / "data")


def test_push_then_pull_through_azure(
    tmp_path: Path, git_env: None, azure: AzureContainer
) -> None:
    project = make_project(tmp_path, small=6, large=1)
    project.ok("remote", "add", "storage", azure.url, "--default")
    project.ok("remote", "modify", "storage", "connection_string",
               azure.server.connection_string, "--local")
    project.commit_config()
    project.ok("push")
    assert "Pushed 0" in project.ok("push").err
    clone = project.clone()
    project.ok("remote", "modify", "storage", "connection_string",
               azure.server.connection_string, "--local", cwd=clone)
    project.ok("pull", "pets", cwd=clone)
    assert data_of(clone / "data") == data_of(project.work / "data")
