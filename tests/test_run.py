"""The W&B-style run API: init/use_artifact/log_artifact records, lineage lookups and joins."""

from __future__ import annotations

import getpass
import hashlib
import re
import socket
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import GartResult, World, build_dataset, git, init_git_repo, read_tree

import gitartifacts
from gitartifacts.api import Artifact, Repo
from gitartifacts.errors import GartError

TIME_RE = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


def digest_of(root: Path, name: str) -> str:
    return Repo(root).load_manifest(name).digest


def published_digest(root: Path, spec: str) -> str:
    return Repo(root).resolve(spec).digest


def run_files(root: Path) -> list[Path]:
    return sorted((root / ".gart" / "runs").glob("*.yaml"))


def only_record(root: Path) -> dict[str, Any]:
    """The single run record in the repo, as the YAML a user would read."""
    files = run_files(root)
    assert len(files) == 1, [f.name for f in files]
    data = yaml.safe_load(files[0].read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    assert files[0].name == f"{data['id']}.yaml"
    return data


def staged(root: Path) -> set[str]:
    return set(git(root, "diff", "--cached", "--name-only").split())


def write_model(root: Path, seed: int = 1) -> dict[str, bytes]:
    return build_dataset(root / "models", files=3, seed=seed, max_size=512, dirs=0)


def clone(world: World, where: Path) -> Path:
    """A colleague's fresh clone of origin: manifests and records only, no data, no cache."""
    git(where.parent, "clone", "-q", str(world.origin), str(where))
    git(where, "config", "user.name", "Test User")
    git(where, "config", "user.email", "test@example.com")
    return where


# -- the record ------------------------------------------------------------------------------


def test_context_manager_writes_a_complete_record(
    published: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = published.root
    monkeypatch.chdir(root)
    head = git(root, "rev-parse", "HEAD").strip()
    write_model(root)
    with gitartifacts.init(job_type="train", name="api-train") as run:
        assert only_record(root)["status"] == "running"  # visible while the run is going
        raw = run.use_artifact("raw:production")
        model = Artifact("model", type="model", metadata={"epochs": 3})
        model.add_dir(root / "models")
        logged = run.log_artifact(model, aliases=["best"])

    rec = only_record(root)
    assert rec["id"] == run.id
    assert rec["gart"] == 1
    assert (rec["name"], rec["job_type"], rec["status"], rec["exit_code"]) == (
        "api-train", "train", "finished", 0)
    assert rec["command"][0] == sys.executable and all(isinstance(a, str) for a in rec["command"])
    assert rec["git_commit"] == head
    assert rec["git_dirty"] is False
    assert rec["user"] == getpass.getuser()
    assert rec["host"] == socket.gethostname()
    assert re.fullmatch(TIME_RE, rec["started"]) and re.fullmatch(TIME_RE, rec["ended"])
    assert rec["started"] <= rec["ended"]
    assert rec["inputs"] == [{
        "name": "raw", "version": "v0", "requested": "production",
        "digest": published_digest(root, "raw@v0"), "path": "raw",
    }]
    assert rec["outputs"] == [{  # log_artifact published it at once: the version is known
        "name": "model", "version": "v0", "requested": "best",
        "digest": digest_of(root, "model"), "path": "models",
    }]
    assert (raw.name, raw.version, raw.digest) == ("raw:v0", "v0", rec["inputs"][0]["digest"])
    assert (logged.name, logged.digest) == ("model:v0", rec["outputs"][0]["digest"])
    # Committed: log_artifact commits the manifest, finish() the record.
    assert git(root, "status", "--porcelain", ".gart") == ""


def test_a_run_started_on_a_modified_checkout_says_it_was_dirty(
    published: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = published.root
    (root / "train.py").write_text("print('v1')\n")
    git(root, "add", "train.py")
    git(root, "commit", "-q", "-m", "train script")
    (root / "train.py").write_text("print('v2, not committed')\n")
    head = git(root, "rev-parse", "HEAD").strip()
    monkeypatch.chdir(root)
    with gitartifacts.init(job_type="train") as run:
        pass
    rec = only_record(root)
    assert rec["git_dirty"] is True
    assert rec["git_commit"] == head  # where it started; finish() then commits the record
    assert git(root, "diff", "HEAD", "--name-only").split() == ["train.py"]  # still the user's
    assert rec["name"] == "train"  # no name given: the job type
    assert (rec["inputs"], rec["outputs"], rec["id"]) == ([], [], run.id)


def test_use_artifact_records_the_exact_version_and_download_fetches_it(
    published: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A later version exists, so 'production' (v0) and 'latest' (v1) differ.
    build_dataset(published.root / "raw", files=7, seed=13, dirs=2)
    Repo(published.root).add([published.root / "raw"], name="raw")
    git(published.root, "commit", "-q", "-am", "raw v1")
    Repo(published.root).push()
    git(published.root, "push", "-q", "origin", "HEAD:main")
    v0 = published_digest(published.root, "raw@v0")
    v1 = published_digest(published.root, "raw@v1")
    assert v0 != v1

    colleague = clone(published, tmp_path / "colleague")
    assert not (colleague / "raw").exists() and not (colleague / ".gart" / "cache").exists()
    monkeypatch.chdir(colleague)
    with gitartifacts.init(job_type="eval") as run:
        prod = run.use_artifact("raw:production")
        other = run.use_artifact("labels@v0")
        assert not (colleague / "raw").exists()  # recorded only: the working tree is untouched
        assert not (colleague / "labels").exists()
        elsewhere = prod.download(tmp_path / "copy")
        default = prod.download()  # W&B's default: ./artifacts/<name>:<version>/
    assert read_tree(Path(elsewhere)) == published.raw
    assert Path(default) == colleague / "artifacts" / "raw:v0"
    assert read_tree(Path(default)) == published.raw
    assert not (colleague / "raw").exists()
    assert (prod.version, prod.digest, other.version) == ("v0", v0, "v0")
    rec = only_record(colleague)
    assert [(i["name"], i["version"], i["requested"], i["digest"]) for i in rec["inputs"]] == [
        ("raw", "v0", "production", v0),
        ("labels", "v0", "v0", published_digest(published.root, "labels@v0")),
    ]


def test_use_artifact_of_an_unknown_version_raises_and_records_nothing_more(
    published: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(published.root)
    with gitartifacts.init(job_type="eval") as run:
        with pytest.raises(GartError) as caught:
            run.use_artifact("raw:no-such-alias")
        assert "no-such-alias" in str(caught.value)
    assert only_record(published.root)["inputs"] == []


def test_log_artifact_accepts_a_path_or_an_artifact(
    published: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = published.root
    monkeypatch.chdir(root)
    write_model(root)
    (root / "eval").mkdir()
    (root / "eval" / "metrics.json").write_text('{"acc": 0.9}\n')
    with gitartifacts.init(job_type="train") as run:
        by_path = run.log_artifact("models/", name="model", type="model")
        art = Artifact("metrics", type="metrics")
        art.add_file(root / "eval" / "metrics.json")
        by_object = run.log_artifact(art)
        again = run.log_artifact("models/", name="model", type="model")  # same content
    rec = only_record(root)
    assert [(o["name"], o["digest"], o["path"]) for o in rec["outputs"]] == [
        ("model", digest_of(root, "model"), "models"),
        ("metrics", digest_of(root, "metrics"), "eval"),
    ]
    assert again.digest == by_path.digest and again.version == by_path.version == "v0"
    assert by_object.manifest.type == "metrics" and by_path.manifest.type == "model"
    tracked = set(git(root, "ls-files", ".gart/artifacts").split())
    assert {".gart/artifacts/model.yaml", ".gart/artifacts/metrics.yaml"} <= tracked
    assert staged(root) == set()


def test_an_exception_in_the_block_marks_the_run_failed_and_propagates(
    published: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(published.root)
    with pytest.raises(RuntimeError, match="diverged"):
        with gitartifacts.init(job_type="train", name="boom") as run:
            run.use_artifact("labels:v0")
            raise RuntimeError("loss diverged")
    rec = only_record(published.root)
    assert (rec["status"], rec["exit_code"], rec["name"]) == ("failed", 1, "boom")
    assert rec["ended"] is not None
    assert [i["name"] for i in rec["inputs"]] == ["labels"]


def test_finish_without_a_context_manager(
    published: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(published.root)
    run = gitartifacts.init(job_type="sweep")
    run.finish(exit_code=2)
    run.finish()  # a second finish changes nothing
    rec = only_record(published.root)
    assert (rec["status"], rec["exit_code"]) == ("failed", 2)


# -- lineage lookups ------------------------------------------------------------------------


def test_logged_by_and_used_by_return_the_runs(
    published: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = published.root
    monkeypatch.chdir(root)
    write_model(root)
    with gitartifacts.init(job_type="train", name="trainer") as train:
        raw = train.use_artifact("raw:production")
        model = train.log_artifact("models/", name="model", type="model")
    with gitartifacts.init(job_type="eval", name="evaluator") as evaluate:
        used = evaluate.use_artifact("model")  # a bare name means model:latest
    assert used.digest == model.digest and used.version == "v0"
    logged_by = model.logged_by()  # W&B: one run or None
    assert logged_by is not None and logged_by.id == train.id and logged_by.name == "trainer"
    assert [r.id for r in model.used_by()] == [evaluate.id]
    assert [r.id for r in raw.used_by()] == [train.id]
    assert raw.logged_by() is None


# -- publishing what a run logged -----------------------------------------------------------


def test_log_artifact_publishes_the_version_and_its_aliases_at_once(
    published: World, gart: Callable[..., GartResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = published.root
    monkeypatch.chdir(root)
    write_model(root)
    with gitartifacts.init(job_type="train") as run:
        run.use_artifact("raw:production")
        logged = run.log_artifact("models/", name="model", type="model",
                                  aliases=["best", "staging"])
        assert logged.version == "v0"  # no commit, no `gart push` needed
    tags = set(git(root, "tag", "--list", "model@*").split())
    assert tags == {"model@v0", "model@best", "model@staging"}
    remote_tags = git(root, "ls-remote", "--tags", "origin", "refs/tags/model@*")
    for tag in ("model@v0", "model@best", "model@staging"):
        assert f"refs/tags/{tag}" in remote_tags
    assert published_digest(root, "model@best") == logged.digest
    versions = gart("versions", "model")
    assert versions.rc == 0 and "best" in versions.out and "staging" in versions.out
    # A later `gart push` (the CLI's door) publishes nothing new and moves nothing.
    before = git(root, "show-ref", "--tags")
    assert gart("push").rc == 0
    assert gart("push").rc == 0
    assert git(root, "show-ref", "--tags") == before


def test_aliases_requested_for_already_published_content_are_applied(
    published: World, gart: Callable[..., GartResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = published.root
    monkeypatch.chdir(root)
    with gitartifacts.init(job_type="select") as run:
        same = run.log_artifact("raw/", name="raw", aliases=["best"])  # identical to raw@v0
    assert same.version == "v0" and "best" in same.aliases
    assert "raw@best" in git(root, "tag", "--list", "raw@*").split()
    assert "refs/tags/raw@best" in git(root, "ls-remote", "--tags", "origin")
    assert gart("push").rc == 0
    assert set(git(root, "tag", "--list", "raw@*").split()) == {
        "raw@v0", "raw@production", "raw@best"}


# -- joining `gart run` ---------------------------------------------------------------------

INNER = textwrap.dedent("""\
    import os, pathlib
    import gitartifacts
    with gitartifacts.init(job_type="inner", name="inner-name") as run:
        assert run.id == os.environ["GART_RUN_ID"]
        run.use_artifact("labels:v0")
        pathlib.Path("eval").mkdir(exist_ok=True)
        pathlib.Path("eval/metrics.json").write_text('{"acc": 1}')
        run.log_artifact("eval/metrics.json", name="metrics", aliases=["candidate"])
        pathlib.Path("models").mkdir(exist_ok=True)
        pathlib.Path("models/w.bin").write_bytes(b"weights")
    print("inner done", run.id)
""")


def test_an_api_run_inside_gart_run_joins_the_outer_record(
    published: World, gart: Callable[..., GartResult]
) -> None:
    root = published.root
    (root / "inner.py").write_text(INNER)
    done = gart("run", "--job-type", "train", "--name", "outer", "-i", "raw@production",
                "-o", "model=models/", "--", sys.executable, "inner.py")
    assert done.rc == 0, done.err
    rec = only_record(root)  # one record, not two
    assert done.out == f"inner done {rec['id']}\n"
    assert (rec["name"], rec["job_type"], rec["status"], rec["exit_code"]) == (
        "outer", "train", "finished", 0)
    assert [(i["name"], i["version"], i["requested"]) for i in rec["inputs"]] == [
        ("raw", "v0", "production"), ("labels", "v0", "v0")]
    outputs = {o["name"]: o for o in rec["outputs"]}
    assert set(outputs) == {"metrics", "model"}
    assert outputs["metrics"]["requested"] == "candidate"
    assert outputs["model"]["digest"] == digest_of(root, "model")
    assert hashlib.sha256(b"weights").hexdigest() in (
        root / ".gart" / "artifacts" / "model.yaml").read_text()


def test_an_api_run_outside_any_repository_fails_clearly(
    tmp_path: Path, git_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = init_git_repo(tmp_path / "plain")  # git, but no `gart init`
    monkeypatch.chdir(plain)
    with pytest.raises(GartError) as caught:
        gitartifacts.init(job_type="train")
    assert "gart init" in f"{caught.value.message} {caught.value.hint}"
    assert not (plain / ".gart").exists()
