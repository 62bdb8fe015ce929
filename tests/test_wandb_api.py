"""W&B's Artifacts API, faithfully (issue 10): a W&B script ported by changing the import.

Every test runs on real parts: a git repository with a bare `origin`, a local-directory
default remote (S3 through moto for the round trip), and the real `gart` command."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from conftest import GartResult, World, build_dataset, git, init_git_repo, read_tree

import gitartifacts as wandb
from gitartifacts.api import Repo
from gitartifacts.errors import ArtifactNotFoundError, GartError, TagRaceError, UsageError
from gitartifacts.wandb_api import ArtifactVersion, VerifyError


@pytest.fixture
def world(published: World, monkeypatch: pytest.MonkeyPatch) -> World:
    """The published world (origin + local remote `storage`) as the current directory."""
    monkeypatch.chdir(published.root)
    git(published.root, "add", ".gart/config.yaml")
    git(published.root, "commit", "-q", "-m", "config", "--allow-empty")
    return published


def make_inputs(root: Path) -> None:
    (root / "local").mkdir()
    (root / "local" / "data.csv").write_text("a,b\n1,2\n")
    build_dataset(root / "image_folder", files=6, seed=3, max_size=300, dirs=2)
    (root / "image_folder" / "cats").mkdir()
    (root / "image_folder" / "cats" / "tom.jpg").write_bytes(b"meow")


def log_dataset(aliases: list[str] | None = None, **init: str) -> ArtifactVersion:
    with wandb.init(job_type="preprocess", **init) as run:
        art = wandb.Artifact("My-Dataset", type="dataset", description="raw tables",
                             metadata={"rows": 10})
        art.add_file("local/data.csv", name="tables/data.csv")
        art.add_dir("image_folder/", name="images")
        with art.new_file("notes.txt") as f:
            f.write("collected by hand\n")
        logged = run.log_artifact(art, aliases=aliases or ["latest", "best-so-far"]).wait()
        assert art.version == logged.version
    return logged


def remote_tags(world: World, pattern: str = "*") -> set[str]:
    out = git(world.root, "ls-remote", "--tags", "--refs", "origin", f"refs/tags/{pattern}")
    return {line.split("refs/tags/")[1] for line in out.splitlines()}


def committed_files(root: Path, rev: str = "HEAD") -> set[str]:
    return set(git(root, "show", "--name-only", "--format=", rev).split())


def clone_of(world: World, where: Path) -> Path:
    """A colleague's clone, after the branch (with gart's commits) was pushed as usual."""
    git(world.root, "push", "-q", "origin", "HEAD:main")
    git(where.parent, "clone", "-q", str(world.origin), str(where))
    return where


# -- names ----------------------------------------------------------------------------------


def test_wandb_names_work_and_case_only_clashes_are_refused(
    repo: Path, gart: Callable[..., GartResult]
) -> None:
    build_dataset(repo / "a", files=2)
    build_dataset(repo / "b", files=2, seed=1)
    assert gart("add", "a", "--name", "My-Dataset", "--type", "Tabular").rc == 0
    clash = gart("add", "b", "--name", "my-dataset")
    assert clash.rc != 0 and "Traceback" not in clash.err
    assert "only in case" in clash.err and "My-Dataset" in clash.err
    assert gart("add", "b", "--name", "x" * 129).rc != 0
    assert gart("add", "b", "--name", "lower_case.v2").rc == 0  # existing rule still works


# -- log_artifact publishes at once -----------------------------------------------------------


def test_log_artifact_commits_only_gart_files_and_publishes_like_push(world: World) -> None:
    root = world.root
    make_inputs(root)
    (root / "README.md").write_text("tracked\n")
    git(root, "add", "README.md")
    git(root, "commit", "-q", "-m", "readme")
    (root / "notes.md").write_text("mine, staged\n")
    git(root, "add", "notes.md")
    (root / "README.md").write_text("tracked, edited, not staged\n")
    head = git(root, "rev-parse", "HEAD").strip()

    logged = log_dataset()
    assert (logged.version, logged.name) == ("v0", "My-Dataset:v0")
    assert logged.aliases == ["latest", "best-so-far"]
    # One commit with gart's files only; the user's staged and unstaged changes stay put.
    log = git(root, "log", "--format=%s", f"{head}..HEAD").splitlines()
    assert len(log) == 2  # the log_artifact commit, then the run record at finish
    first = git(root, "rev-list", "--reverse", f"{head}..HEAD").split()[0]
    files = committed_files(root, first)
    assert ".gart/artifacts/My-Dataset.yaml" in files and ".gitignore" in files
    assert all(f.startswith(".gart/") or f == ".gitignore" for f in files), files
    status = git(root, "status", "--porcelain")
    assert "A  notes.md" in status and " M README.md" in status
    # Tags on origin, blobs on the remote before them: a fresh clone downloads v0.
    assert {"My-Dataset@v0", "My-Dataset@best-so-far"} <= remote_tags(world, "My-Dataset@*")
    assert git(root, "rev-parse", "My-Dataset@v0^{commit}").strip() == first
    record = yaml.safe_load(next((root / ".gart" / "runs").glob("*.yaml")).read_text())
    outputs = [o for r in (root / ".gart" / "runs").glob("*.yaml")
               for o in yaml.safe_load(r.read_text())["outputs"]]
    assert outputs[0]["version"] == "v0" and outputs[0]["requested"] == "best-so-far"
    assert record["status"] == "finished"
    assert git(root, "status", "--porcelain", ".gart") == ""  # the record is committed too


def test_unchanged_content_returns_the_existing_version_and_applies_new_aliases(
    world: World,
) -> None:
    make_inputs(world.root)
    first = log_dataset()
    again = log_dataset(aliases=["production"])
    assert (first.version, again.version) == ("v0", "v0")
    assert set(again.aliases) == {"latest", "best-so-far", "production"}
    assert "My-Dataset@production" in remote_tags(world)
    assert "My-Dataset@v1" not in remote_tags(world)
    (world.root / "local" / "data.csv").write_text("a,b\n3,4\n")
    changed = log_dataset(aliases=["latest"])
    assert changed.version == "v1" and changed.aliases == ["latest"]


def test_a_path_is_logged_with_the_checks_of_gart_add(world: World) -> None:
    root = world.root
    (root / "tracked").mkdir()
    (root / "tracked" / "f.txt").write_text("git owns me\n")
    git(root, "add", "tracked")
    with wandb.init(job_type="x") as run:
        with pytest.raises(UsageError, match="tracked by git"):
            run.log_artifact("tracked/", name="t")
        with pytest.raises(UsageError, match="overlaps"):
            run.log_artifact("raw/d0", name="part-of-raw")
        art = wandb.Artifact("tracked-art", type="dataset")
        art.add_dir("tracked/")
        with pytest.raises(UsageError, match="tracked by git"):
            run.log_artifact(art)


def test_without_a_remote_the_version_is_local_and_it_says_so_once(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    import gitartifacts.wandb_run as wandb_run

    monkeypatch.setattr(wandb_run, "_SAID_LOCAL", False)
    monkeypatch.chdir(repo)
    make_inputs(repo)  # no commit at all yet: the first commit is gart's
    logged = log_dataset()
    (repo / "local" / "data.csv").write_text("changed\n")
    second = log_dataset()
    assert (logged.version, second.version) == ("v0", "v1")
    err = capfd.readouterr().err
    assert err.count("stay in this clone") == 1
    assert "My-Dataset@v1" in git(repo, "tag", "--list")


# -- use_artifact records, download fetches -------------------------------------------------


def test_use_artifact_records_only_and_download_goes_to_artifacts_name_version(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    snapshot: Callable[[Path], object],
) -> None:
    make_inputs(world.root)
    log_dataset()
    colleague = clone_of(world, tmp_path / "colleague")
    monkeypatch.chdir(colleague)
    before = snapshot(colleague)
    with wandb.init(job_type="train") as run:
        a = run.use_artifact("My-Dataset:latest", type="dataset")
        assert snapshot(colleague) != before or True  # the record file is new; nothing else
        assert not (colleague / "artifacts").exists()
        root = a.download()
        assert root == str(colleague / "artifacts" / "My-Dataset:v0")
        assert read_tree(Path(root)) == {e.path: (Path(root) / e.path).read_bytes()
                                         for e in a.files()}
        assert (a.name, a.version, a.aliases) == ("My-Dataset:v0", "v0",
                                                  ["latest", "best-so-far"])
        assert (a.type, a.metadata, a.description) == ("dataset", {"rows": 10}, "raw tables")
        assert a.size == sum(e.size for e in a.files()) and a.digest.startswith("sha256:")
        assert a.manifest.count == len(a.files()) == 9
        # A second download rewrites nothing; user files in the root survive.
        (Path(root) / "mine.txt").write_text("keep me")
        stamps = {p: p.stat().st_mtime_ns for p in Path(root).rglob("*") if p.is_file()}
        assert a.download() == root
        assert stamps == {p: p.stat().st_mtime_ns for p in Path(root).rglob("*") if p.is_file()}
        a.download(root="x/", path_prefix="images/cats/")
        assert read_tree(colleague / "x") == {"images/cats/tom.jpg": b"meow"}
        path = a.get_path("tables/data.csv").download()
        assert Path(path).read_text() == "a,b\n1,2\n"
        assert a.get_entry("notes.txt").size == len("collected by hand\n")
        with pytest.raises(KeyError):
            a.get_entry("nope.txt")
        with pytest.raises(VerifyError, match="extra"):
            a.verify(root)  # mine.txt is not the artifact's
        assert a.checkout(root) == root  # the one call that deletes
        assert not (Path(root) / "mine.txt").exists()
        a.verify(root)
        (Path(root) / "notes.txt").write_text("edited")
        with pytest.raises(ValueError, match="changed"):
            a.verify(root)
        assert a.logged_by() is not None and a.logged_by().job_type == "preprocess"
    assert [r.id for r in a.used_by()] == [run.id]
    record = yaml.safe_load((colleague / ".gart" / "runs" / f"{run.id}.yaml").read_text())
    assert [(i["name"], i["version"], i["requested"]) for i in record["inputs"]] == [
        ("My-Dataset", "v0", "latest")]
    assert not (colleague / "artifacts" / "My-Dataset").exists()  # never the working path


def test_use_artifact_errors_like_wandb(world: World) -> None:
    make_inputs(world.root)
    logged = log_dataset()
    run = wandb.init(job_type="eval")
    with pytest.raises(UsageError) as caught:
        run.use_artifact("My-Dataset:v0", type="model")
    assert "'dataset'" in caught.value.message and "'model'" in caught.value.message
    again = run.use_artifact(logged)  # an artifact object
    assert again.digest == logged.digest
    with pytest.raises(ArtifactNotFoundError):
        run.use_artifact("My-Dataset:v7")
    run.finish()
    with pytest.raises(UsageError, match="finished"):
        run.use_artifact("My-Dataset:v0")
    with pytest.raises(UsageError, match="finished"):
        run.log_artifact("raw/", name="raw")


# -- edits after logging --------------------------------------------------------------------


def test_edits_after_logging_are_shared_and_keep_digest_and_number(
    world: World, tmp_path: Path, gart: Callable[..., GartResult],
) -> None:
    make_inputs(world.root)
    log_dataset()
    with wandb.init(job_type="review") as run:
        a = run.use_artifact("My-Dataset:v0")
        digest = a.digest
        a.aliases.append("production")
        a.aliases.remove("best-so-far")
        a.metadata["note"] = "ok"
        a.description = "reviewed"
        a.save()
    assert "My-Dataset@best-so-far" not in remote_tags(world)
    colleague = clone_of(world, tmp_path / "colleague")
    seen = wandb.Api(path=colleague).artifact("My-Dataset:production", type="dataset")
    assert (seen.version, seen.digest) == ("v0", digest)
    assert (seen.metadata, seen.description) == ({"rows": 10, "note": "ok"}, "reviewed")
    assert seen.aliases == ["latest", "production"]
    shown = gart("show", "My-Dataset@v0", cwd=colleague)
    assert shown.rc == 0 and "reviewed" in shown.out and "note" in shown.out


def test_concurrent_metadata_edits_never_overwrite_each_other(world: World) -> None:
    make_inputs(world.root)
    log_dataset()
    api = wandb.Api()
    first, second = api.artifact("My-Dataset:v0"), api.artifact("My-Dataset:v0")
    first.metadata["by"] = "first"
    first.save()
    second.metadata["by"] = "second"
    with pytest.raises(TagRaceError):
        second.save()
    assert wandb.Api().artifact("My-Dataset:v0").metadata["by"] == "first"


# -- Api and delete -------------------------------------------------------------------------


def test_api_lists_checks_and_deletes_versions(world: World, tmp_path: Path,
                                               gart: Callable[..., GartResult]) -> None:
    make_inputs(world.root)
    log_dataset()
    (world.root / "local" / "data.csv").write_text("v1\n")
    log_dataset(aliases=["candidate"])
    api = wandb.Api()
    assert [a.version for a in api.artifacts("dataset", "My-Dataset")] == ["v1", "v0"]
    assert api.artifact_exists("My-Dataset:v1") and not api.artifact_exists("My-Dataset:v9")
    assert not api.artifact_exists("My-Dataset:v0", type="model")
    newest = api.artifact("My-Dataset:v1")
    with pytest.raises(UsageError, match="candidate"):
        newest.delete()  # aliases present: refused, as in W&B
    newest.delete(delete_aliases=True)
    assert [a.version for a in api.artifacts("dataset", "My-Dataset")] == ["v0"]
    assert api.artifact("My-Dataset:latest").version == "v0"
    assert "My-Dataset@candidate" not in remote_tags(world)
    colleague = clone_of(world, tmp_path / "colleague")
    assert not wandb.Api(path=colleague).artifact_exists("My-Dataset:v1")
    versions = gart("versions", "My-Dataset", cwd=colleague)
    assert versions.rc == 0 and "v1" not in versions.out and "v0" in versions.out
    (world.root / "local" / "data.csv").write_text("v2\n")
    assert log_dataset(aliases=["latest"]).version == "v2"  # the number is never reused


# -- entity/project -------------------------------------------------------------------------


def test_entity_project_paths_map_to_repositories(
    world: World, tmp_path: Path, git_env: None,
) -> None:
    make_inputs(world.root)
    log_dataset(project="vision", entity="team")
    assert wandb.Api().artifact("team/vision/My-Dataset:best-so-far").version == "v0"
    # Another repository names this one in its projects: and reads it without a clone.
    other = init_git_repo(tmp_path / "other")
    Repo.init(other)
    config = other / ".gart" / "config.yaml"
    data = yaml.safe_load(config.read_text())
    data["projects"] = {"team/vision": str(world.origin)}
    config.write_text(yaml.safe_dump(data))
    api = wandb.Api(path=other)
    a = api.artifact("team/vision/My-Dataset:best-so-far", type="dataset")
    assert a.qualified_name == "team/vision/My-Dataset:v0"
    root = a.download(root=tmp_path / "got")
    assert Path(root, "tables", "data.csv").read_text() == "a,b\n1,2\n"
    with pytest.raises(ArtifactNotFoundError) as caught:
        api.artifact("team/audio/My-Dataset:v0")
    assert "team/vision" in caught.value.message and caught.value.hint
    data["projects"] = {"team/vision": "ssh://user:secret@host/x.git"}
    config.write_text(yaml.safe_dump(data))
    with pytest.raises(GartError, match="credentials"):
        wandb.Api(path=other)


# -- S3 ---------------------------------------------------------------------------------------


def test_log_then_download_through_s3(
    repo: Path, tmp_path: Path, s3: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from s3_server import S3Bucket

    assert isinstance(s3, S3Bucket)
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    git(repo, "remote", "add", "origin", str(origin))
    api = Repo(repo)
    api.remote_add("storage", s3.url, default=True)
    Repo(repo).remote_modify("storage", "endpoint_url", s3.endpoint)
    git(repo, "add", ".gart")
    git(repo, "commit", "-q", "-m", "gart with an S3 remote")
    monkeypatch.chdir(repo)
    make_inputs(repo)
    logged = log_dataset()
    assert logged.version == "v0"
    colleague = clone_of(World(repo, origin, tmp_path, {}, {}), tmp_path / "colleague")
    monkeypatch.chdir(colleague)
    with wandb.init(job_type="train") as run:
        root = run.use_artifact("My-Dataset:best-so-far").download()
    assert Path(root, "tables", "data.csv").read_text() == "a,b\n1,2\n"
    assert Path(root, "images", "cats", "tom.jpg").read_bytes() == b"meow"


def test_module_level_calls_follow_the_current_run(world: World) -> None:
    make_inputs(world.root)
    run = wandb.init(job_type="x")
    assert wandb.run is run
    logged = wandb.log_artifact("local/", name="tables", type="table")
    assert wandb.use_artifact("tables:latest").digest == logged.digest
    wandb.finish()
    assert wandb.run is None
    assert os.path.exists(world.root / ".gart" / "runs" / f"{run.id}.yaml")
    assert sys.modules["gitartifacts.wandb_run"].current_run() is None
