"""End-to-end `gart` versions/aliases: real processes, real bare origins, local gart remotes."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pytest
from conftest import GART, GartResult, build_dataset, git, read_tree, run_gart

from gitartifacts.aliases import parse_message
from gitartifacts.api import Repo

Gart = Callable[..., GartResult]
NAME = "raw"
PUBLISHED = re.compile(r"raw: published (v\d+)")


class Project(NamedTuple):
    root: Path
    origin: Path
    store: Path
    tmp: Path


def start(cwd: Path, *args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*GART, *args], cwd=cwd, env={**os.environ, **env},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def finish(proc: subprocess.Popen[str]) -> GartResult:
    out, err = proc.communicate(timeout=120)
    return GartResult(proc.returncode, out, err)


def tags_on(repo: Path, pattern: str = "raw@*") -> dict[str, str]:
    """{tag: ref sha} held by a repository (bare or not)."""
    out = git(repo, "for-each-ref", "--format=%(refname:strip=2) %(objectname)",
              f"refs/tags/{pattern}")
    return dict(line.split(" ") for line in out.splitlines())


def ls_remote(origin: Path) -> dict[str, str]:
    out = git(origin.parent, "ls-remote", "--tags", "--refs", str(origin))
    return {ref.removeprefix("refs/tags/"): sha for sha, ref in
            (line.split("\t") for line in out.splitlines())}


def message(repo: Path, tag: str) -> dict[str, str]:
    return parse_message(git(repo, "for-each-ref", "--format=%(contents)", f"refs/tags/{tag}"))


def commit_of(repo: Path, rev: str) -> str:
    return git(repo, "rev-parse", f"{rev}^{{commit}}").strip()


def errors_of(result: GartResult) -> list[str]:
    assert "Traceback" not in result.err, result.err
    return [line for line in result.err.splitlines() if line.startswith("gart: error:")]


def write_data(root: Path, seed: int) -> dict[str, bytes]:
    shutil.rmtree(root / "data", ignore_errors=True)
    return build_dataset(root / "data", files=4, seed=seed, max_size=2048, dirs=2)


def add_and_commit(root: Path, seed: int, msg: str = "data") -> tuple[dict[str, bytes], str]:
    """Write a data set and `gart add` + commit it (in process: setup, not the thing tested)."""
    data = write_data(root, seed)
    repo = Repo(root)
    try:
        digest = repo.add([root / "data"], name=NAME).manifest.digest
    finally:
        repo.git.close()
    git(root, "commit", "-q", "-m", f"{msg} {digest[7:15]}")
    return data, git(root, "rev-parse", "HEAD").strip()


def publish(root: Path, seed: int) -> tuple[dict[str, bytes], str]:
    data, commit = add_and_commit(root, seed)
    repo = Repo(root)
    try:
        ((version, created),) = repo.push().versions
    finally:
        repo.git.close()
    assert created
    return data, commit


def set_alias(root: Path, ref: str, alias: str) -> None:
    repo = Repo(root)
    try:
        repo.set_alias(NAME, ref, alias)
    finally:
        repo.git.close()


def clone(project: Project, dest: str, *extra: str) -> Path:
    root = project.tmp / dest
    git(project.tmp, "clone", "-q", *extra, project.origin.as_uri(), str(root))
    return root


@pytest.fixture
def project(repo: Path, tmp_path: Path) -> Project:
    """The conftest repo with a bare `origin` and a default gart remote in a local directory."""
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    git(repo, "remote", "add", "origin", str(origin))
    store = tmp_path / "store"
    gart_repo = Repo(repo)
    gart_repo.remote_add("storage", str(store), default=True)
    gart_repo.git.close()
    git(repo, "commit", "-q", "-m", "gart init")
    git(repo, "push", "-q", "-u", "origin", "main")
    return Project(repo, origin, store, tmp_path)


class Published(NamedTuple):
    data: list[dict[str, bytes]]  # v0, v1, v2 contents
    commits: list[str]


@pytest.fixture
def published(project: Project) -> Published:
    """v0, v1, v2 published from the project, production -> v1, main pushed to origin."""
    data, commits = [], []
    for seed in range(3):
        d, c = publish(project.root, seed)
        data.append(d)
        commits.append(c)
    set_alias(project.root, "v1", "production")
    git(project.root, "push", "-q", "origin", "main")
    return Published(data, commits)


# -- publish and aliases, one command at a time -------------------------------------------


def test_add_commit_push_publishes_annotated_version_tags(project: Project, gart: Gart) -> None:
    root, origin = project.root, project.origin
    first = write_data(root, 0)
    assert gart("add", "data", "--name", NAME).rc == 0
    git(root, "commit", "-q", "-m", "v0 data")
    pushed = gart("push")
    assert pushed.rc == 0, pushed.err
    assert "raw: published v0" in pushed.err
    assert git(root, "cat-file", "-t", "raw@v0").strip() == "tag"
    assert commit_of(root, "raw@v0") == commit_of(root, "HEAD")
    assert ls_remote(origin) == tags_on(root) == {"raw@v0": tags_on(root)["raw@v0"]}
    fields = message(origin, "raw@v0")
    assert fields["version"] == "v0" and fields["size"] == str(sum(map(len, first.values())))

    write_data(root, 1)
    assert gart("add", "data", "--name", NAME).rc == 0
    git(root, "commit", "-q", "-m", "v1 data")
    pushed = gart("push")
    assert pushed.rc == 0 and "raw: published v1" in pushed.err, pushed.err
    assert commit_of(root, "raw@v1") == commit_of(root, "HEAD")
    assert set(ls_remote(origin)) == {"raw@v0", "raw@v1"}

    # Identical content (here: back to the v0 files, new commit) maps to the existing version.
    write_data(root, 0)
    assert gart("add", "data", "--name", NAME).rc == 0
    git(root, "commit", "-q", "-m", "back to v0 data")
    before = ls_remote(origin)
    pushed = gart("push")
    assert pushed.rc == 0 and "raw: already published as v0" in pushed.err, pushed.err
    assert ls_remote(origin) == before
    assert set(tags_on(root)) == {"raw@v0", "raw@v1"}


def test_alias_versions_and_show(project: Project, published: Published, gart: Gart) -> None:
    root, origin = project.root, project.origin
    pushed = gart("push", "--alias", "best")
    assert pushed.rc == 0, pushed.err
    assert "already published as v2 (best)" in pushed.err
    assert commit_of(origin, "raw@best") == published.commits[2]

    moved = gart("alias", "raw@v0", "production")
    assert moved.rc == 0, moved.err
    assert "raw@production -> v0 (was v1)" in moved.err
    assert commit_of(origin, "raw@production") == published.commits[0]
    assert message(origin, "raw@production")["version"] == "v0"

    listed = gart("versions", NAME, "--json")
    assert listed.rc == 0, listed.err
    rows = json.loads(listed.out)
    assert [r["version"] for r in rows] == ["v2", "v1", "v0"]
    assert [r["aliases"] for r in rows] == [["latest", "best"], [], ["production"]]
    assert [r["commit"] for r in rows] == published.commits[::-1]
    for row, data in zip(rows, published.data[::-1], strict=True):
        assert row["size"] == sum(map(len, data.values())) and row["files"] == len(data)
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", row["digest"])
        assert row["author"] == "Test User <test@example.com>"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", row["date"])
    assert len({r["digest"] for r in rows}) == 3

    text = gart("versions", NAME)
    assert text.rc == 0 and re.search(r"^v2 +\(latest, best\)", text.out, re.M), text.out

    shown = gart("show", "raw@production", "--json")
    assert shown.rc == 0, shown.err
    info = json.loads(shown.out)
    assert (info["version"], info["aliases"], info["commit"]) == (
        "v0", ["production"], published.commits[0])
    assert info["digest"] == rows[2]["digest"] and info["author"] == rows[2]["author"]
    shown = gart("show", "raw@production")
    assert re.search(r"^version: +v0$", shown.out, re.M) and "production" in shown.out

    deleted = gart("alias", "--delete", NAME, "production")
    assert deleted.rc == 0 and "was v0" in deleted.err, deleted.err
    assert "raw@production" not in ls_remote(origin) and "raw@production" not in tags_on(root)
    gone = gart("show", "raw@production")
    assert gone.rc == 1 and "known: v0, v1, v2, best, latest" in gone.err


def test_pull_every_reference_form(project: Project, published: Published, gart: Gart) -> None:
    root = project.root
    git(root, "branch", "old-data", published.commits[0])
    shutil.rmtree(root / ".gart" / "cache")  # every byte must come from the remote, verified
    v0, v1, v2 = published.data
    cases = {
        "raw@production": v1, "raw:production": v1, "raw@v0": v0, "raw@latest": v2,
        "raw@old-data": v0, "raw@HEAD~1": v1, "raw": v2,
    }
    for i, (spec, expected) in enumerate(cases.items()):
        pulled = gart("pull", spec, "--to", f"out{i}")
        assert pulled.rc == 0, (spec, pulled.err)
        assert read_tree(root / f"out{i}") == expected, spec
    shutil.rmtree(root / "data")
    pulled = gart("pull", "raw@production")  # into the artifact's own place
    assert pulled.rc == 0, pulled.err
    assert read_tree(root / "data") == v1


def test_bad_references_and_reserved_aliases(project: Project, published: Published,
                                             gart: Gart) -> None:
    root = project.root
    for spec in ("raw@staging", "raw@v9", "raw:v9"):
        bad = gart("pull", spec)
        assert bad.rc == 1, (spec, bad.err)
        assert len(errors_of(bad)) == 1
        assert "hint: known: v0, v1, v2, latest, production" in bad.err, bad.err
    for alias in ("v3", "latest"):
        refused = gart("alias", "raw@v1", alias)
        assert refused.rc != 0 and len(errors_of(refused)) == 1, refused.err
        assert "reserved" in refused.err
    refused = gart("push", "--alias", "v7")
    assert refused.rc != 0 and len(errors_of(refused)) == 1 and "reserved" in refused.err
    assert set(tags_on(project.origin)) == {"raw@v0", "raw@v1", "raw@v2", "raw@production"}

    # A hand-made version tag whose digest is not the manifest's at its commit.
    digest = message(root, "raw@v0")["digest"]
    forged = f"gart-version: 1\nname: raw\nversion: v5\ndigest: {digest}\nsize: 1\ncount: 1\n"
    git(root, "tag", "-a", "raw@v5", "-m", forged, published.commits[2])
    tampered = gart("pull", "raw@v5", "--to", "out")
    assert tampered.rc == 1 and "tampered" in tampered.err, tampered.err
    assert not (root / "out").exists()


def test_protected_alias_moves_only_with_force(project: Project, published: Published,
                                               gart: Gart) -> None:
    root, origin = project.root, project.origin
    with (root / ".gart" / "config.yaml").open("a") as config:
        config.write("aliases:\n  protected: [production]\n")
    refused = gart("alias", "raw@v2", "production")
    assert refused.rc == 1 and len(errors_of(refused)) == 1, refused.err
    assert "protected" in refused.err and "--force" in refused.err
    assert message(origin, "raw@production")["version"] == "v1"
    refused = gart("alias", "--delete", NAME, "production")
    assert refused.rc == 1 and "--force" in refused.err
    forced = gart("alias", "raw@v2", "production", "--force")
    assert forced.rc == 0, forced.err
    assert message(origin, "raw@production")["version"] == "v2"
    assert gart("alias", "raw@v0", "staging").rc == 0  # other aliases move freely
    assert gart("alias", "raw@v1", "staging").rc == 0


def test_uncommitted_manifest_is_uploaded_but_not_published(project: Project, gart: Gart) -> None:
    root = project.root
    write_data(root, 0)
    assert gart("add", "data", "--name", NAME).rc == 0
    pushed = gart("push")
    assert pushed.rc == 0, pushed.err
    assert "raw: manifest not committed; commit it and push again to publish" in pushed.err
    assert tags_on(root) == {} and ls_remote(project.origin) == {}
    assert any(p.is_file() for p in project.store.rglob("*"))  # the bytes did travel
    git(root, "commit", "-q", "-m", "data")
    pushed = gart("push", "--json")
    assert pushed.rc == 0, pushed.err
    report = json.loads(pushed.out)
    assert report["sent"] == 0 and report["unpublished"] == [] and report["tags_pushed"]
    assert [(v["version"], v["created"]) for v in report["versions"]] == [("v0", True)]


def test_push_alias_with_uncommitted_changes_does_not_move_the_alias(
        project: Project, published: Published, gart: Gart) -> None:
    """`gart push --alias best` names the content being pushed; if that content is not
    committed (so not publishable), `best` must not silently land on the older HEAD version."""
    assert gart("alias", "raw@v0", "best").rc == 0
    write_data(project.root, 7)
    assert gart("add", "data", "--name", NAME).rc == 0  # new content, not committed
    pushed = gart("push", "--alias", "best")
    assert "raw: manifest not committed" in pushed.err, pushed.err
    assert message(project.origin, "raw@best")["version"] == "v0", pushed.err


def test_without_a_git_remote_tags_stay_local_and_it_says_so(repo: Path, tmp_path: Path,
                                                             gart: Gart) -> None:
    assert gart("remote", "add", "storage", tmp_path / "store", "--default").rc == 0
    data = write_data(repo, 0)
    assert gart("add", "data", "--name", NAME).rc == 0
    git(repo, "commit", "-q", "-m", "data")
    pushed = gart("push")
    assert pushed.rc == 0, pushed.err
    assert "raw: published v0" in pushed.err
    assert "No git remote 'origin': version tags were created locally only." in pushed.err
    assert list(tags_on(repo)) == ["raw@v0"]
    assert gart("alias", "raw@v0", "production").rc == 0
    assert "(latest, production)" in gart("versions", NAME).out
    shutil.rmtree(repo / ".gart" / "cache")
    pulled = gart("pull", "raw@production", "--to", "out")
    assert pulled.rc == 0 and read_tree(repo / "out") == data, pulled.err


def test_versions_published_without_origin_reach_it_once_it_exists(
        repo: Path, tmp_path: Path, gart: Gart) -> None:
    assert gart("remote", "add", "storage", tmp_path / "store", "--default").rc == 0
    write_data(repo, 0)
    assert gart("add", "data", "--name", NAME).rc == 0
    git(repo, "commit", "-q", "-m", "data")
    assert gart("push").rc == 0  # no origin yet: raw@v0 is local only
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(origin))
    git(repo, "remote", "add", "origin", str(origin))
    again = gart("push")
    assert again.rc == 0 and "already published as v0" in again.err, again.err
    assert list(tags_on(origin)) == ["raw@v0"]  # shared now, not silently kept local


# -- races between real processes ----------------------------------------------------------

# Both processes stop in git's pre-push hook (after gart fetched tags and tagged locally,
# before anything reaches origin) until the other one got there too: a real overlap every time.
BARRIER_HOOK = """#!/bin/sh
cat >/dev/null
[ -n "$RACE_BARRIER" ] || exit 0
touch "$RACE_BARRIER/$RACE_ME"
i=0
while [ "$(ls "$RACE_BARRIER" | wc -l)" -lt 2 ] && [ $i -lt 300 ]; do
  sleep 0.05; i=$((i+1))
done
"""


def install_barrier(root: Path) -> None:
    hook = root / ".git" / "hooks" / "pre-push"
    hook.parent.mkdir(parents=True, exist_ok=True)
    hook.write_text(BARRIER_HOOK)
    hook.chmod(hook.stat().st_mode | stat.S_IXUSR)


def race(project: Project, label: str, runs: dict[str, tuple[Path, list[str]]],
         barrier: bool = True) -> dict[str, GartResult]:
    """Start one `gart` process per writer at once; returns each writer's result."""
    gate = project.tmp / f"barrier-{label}"
    gate.mkdir()
    procs = {
        who: start(cwd, *args, env={
            "RACE_BARRIER": str(gate) if barrier else "", "RACE_ME": who,
            "GIT_COMMITTER_NAME": who, "GIT_AUTHOR_NAME": who,
        })
        for who, (cwd, args) in runs.items()
    }
    return {who: finish(p) for who, p in procs.items()}


def test_concurrent_publishers_get_distinct_versions(project: Project) -> None:
    a = project.root
    b = clone(project, "b")
    for root in (a, b):
        install_barrier(root)
    digests: dict[str, str] = {}
    for rnd in range(3):
        mine = {}
        for who, root in (("Alice", a), ("Bob", b)):
            add_and_commit(root, seed=100 * rnd + len(who))
            mine[who] = git(root, "rev-parse", "HEAD").strip()
        # The last round has no barrier: plain simultaneous starts must be safe too.
        results = race(project, f"publish{rnd}", {"Alice": (a, ["push"]), "Bob": (b, ["push"])},
                       barrier=rnd < 2)
        labels = {}
        for who, result in results.items():
            assert result.rc == 0, (who, result.err)
            found = PUBLISHED.search(result.err)
            assert found, (who, result.err)
            labels[who] = found.group(1)
            # The tag is on the writer's own commit, on origin: nothing was lost or swapped.
            assert commit_of(project.origin, f"raw@{labels[who]}") == mine[who]
            digests[labels[who]] = message(project.origin, f"raw@{labels[who]}")["digest"]
        assert sorted(labels.values()) == [f"v{2 * rnd}", f"v{2 * rnd + 1}"]
    assert set(ls_remote(project.origin)) == {f"raw@v{n}" for n in range(6)}
    assert len(set(digests.values())) == 6
    # Both writers uploaded into the same gart remote at once: every version's bytes are there.
    fresh = clone(project, "fresh", "--no-tags")
    fetched = run_gart(fresh, "fetch", *[f"raw@v{n}" for n in range(6)], "--json")
    assert fetched.rc == 0, fetched.err
    assert json.loads(fetched.out)["downloaded"] == 6 * 4


def test_concurrent_alias_moves_one_wins_the_other_is_told(project: Project) -> None:
    a = project.root
    for seed in range(4):
        publish(a, seed)
    set_alias(a, "v0", "production")
    b = clone(project, "b")
    for root in (a, b):
        install_barrier(root)
    clones = {"Alice": a, "Bob": b}
    for rnd in range(3):
        current = message(project.origin, "raw@production")["version"]
        others = [v for v in ("v0", "v1", "v2", "v3") if v != current]
        targets = [others[rnd % 3], others[(rnd + 1) % 3]]
        wanted = dict(zip(clones, targets, strict=True))
        results = race(project, f"alias{rnd}", {
            who: (root, ["alias", f"raw@{wanted[who]}", "production"])
            for who, root in clones.items()
        })
        winners = [who for who, r in results.items() if r.rc == 0]
        assert len(winners) == 1, {w: r.err for w, r in results.items()}
        (winner,) = winners
        (loser,) = set(clones) - {winner}
        lost = results[loser]
        assert lost.rc == 1 and len(errors_of(lost)) == 1, lost.err
        assert f"moved it to {wanted[winner]} ({winner} <" in lost.err, lost.err
        on_origin = ls_remote(project.origin)["raw@production"]
        assert on_origin == tags_on(clones[winner])["raw@production"]
        assert message(project.origin, "raw@production")["version"] == wanted[winner]
        assert tags_on(clones[loser])["raw@production"] == on_origin  # loser sees the winner


# -- other clones and other repositories ---------------------------------------------------


def test_shallow_ci_clone_pulls_alias_and_follows_its_moves(project: Project,
                                                            published: Published) -> None:
    ci = clone(project, "ci", "--depth", "1", "--no-tags")
    assert tags_on(ci) == {}
    pulled = run_gart(ci, "pull", "raw@production")
    assert pulled.rc == 0, pulled.err
    assert read_tree(ci / "data") == published.data[1]
    assert git(ci, "rev-parse", "--is-shallow-repository").strip() == "true"
    assert git(ci, "rev-list", "--count", "HEAD").strip() == "1"

    assert run_gart(project.root, "alias", "raw@v0", "production").rc == 0  # someone moves it
    pulled = run_gart(ci, "pull", "raw@production")
    assert pulled.rc == 0, pulled.err
    assert read_tree(ci / "data") == published.data[0]
    assert commit_of(ci, "raw@production") == published.commits[0]
    assert git(ci, "rev-parse", "--is-shallow-repository").strip() == "true"


def test_repo_option_reads_another_repository_without_a_clone(project: Project,
                                                               published: Published) -> None:
    outside = project.tmp / "outside"
    outside.mkdir()
    env = {"GART_HOME": str(project.tmp / "gart-home")}
    url = project.origin.as_uri()
    pulled = run_gart(outside, "pull", "raw@production", "--repo", url, "--to", "out", env=env)
    assert pulled.rc == 0, pulled.err
    assert read_tree(outside / "out") == published.data[1]
    assert not (outside / ".git").exists()

    listed = run_gart(outside, "versions", NAME, "--repo", project.origin, "--json", env=env)
    assert listed.rc == 0, listed.err
    rows = json.loads(listed.out)
    assert [(r["version"], r["aliases"]) for r in rows] == [
        ("v2", ["latest"]), ("v1", ["production"]), ("v0", [])]
    assert [r["commit"] for r in rows] == published.commits[::-1]

    unknown = run_gart(outside, "pull", "raw@staging", "--repo", url, "--to", "x", env=env)
    assert unknown.rc == 1 and len(errors_of(unknown)) == 1, unknown.err
    assert "known: v0, v1, v2, latest, production" in unknown.err


# -- speed (printed, never asserted) --------------------------------------------------------


def test_versions_with_2000_tags(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    root, origin = project.root, project.origin
    publish(root, 0)
    commit = commit_of(root, "raw@v0")
    stream = []
    for i in range(2000 - 1):
        name, number = ("raw", i + 1) if i < 1499 else ("other", i - 1499)
        body = (f"gart-version: 1\nname: {name}\nversion: v{number}\n"
                f"digest: sha256:{i:064x}\nsize: {i}\ncount: 1\nauthor: Bulk <b@x>\n").encode()
        stream.append(f"tag {name}@v{number}\nfrom {commit}\n"
                      f"tagger Bulk <b@x> {1_700_000_000 + i} +0000\ndata {len(body)}\n".encode()
                      + body)
    subprocess.run(["git", "fast-import", "--quiet"], cwd=origin, input=b"".join(stream),
                   check=True)
    git(root, "fetch", "-q", "origin", "--tags")
    assert len(tags_on(root, "*")) == 2000
    set_alias(root, "v0", "production")  # the bulk tags' digests are fake: only v0 resolves

    timings = {}
    for label, args in (("versions", ["versions", NAME]),
                        ("versions --offline", ["versions", NAME, "--offline"]),
                        ("show @production", ["show", "raw@production", "--json"])):
        t0 = time.perf_counter()
        result = run_gart(root, *args)
        timings[label] = time.perf_counter() - t0
        assert result.rc == 0, result.err
        if label == "versions":
            lines = result.out.splitlines()
            assert len(lines) == 1500 and lines[0].startswith("v1499  (latest)")
            assert lines[-1].startswith("v0     (production)")
    repo = Repo(root)
    try:
        t0 = time.perf_counter()
        assert len(repo.versions(NAME, offline=True)) == 1500
        timings["Registry.versions in process"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        resolved = repo.registry.resolve(NAME, "production")
        timings["Registry.resolve in process"] = time.perf_counter() - t0
        assert resolved is not None and resolved.version and resolved.version.label == "v0"
    finally:
        repo.git.close()
    with capsys.disabled():
        print("\n2,000 tags: " + ", ".join(f"{k} {v:.3f}s" for k, v in timings.items()))
