"""Run records: format round trip, strict parsing, the index cache, and lineage graph queries."""

from __future__ import annotations

import json
import os
import re
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml
from lineage_graph import ALIASES, VERSIONS, D, dg, known_runs, make_run  # noqa: E402, F401

from gitartifacts import runrecord, safeyaml
from gitartifacts.errors import ManifestError
from gitartifacts.lineage import LineageGraph
from gitartifacts.runrecord import (
    ArtifactRef,
    RunRecord,
    filter_runs,
    is_valid_run_id,
    load_runs,
    new_run_id,
    read_run,
    write_run,
)

OLD = 1_600_000_000  # a fixed past mtime (2020), far outside the racy-timestamp window



PREP, TRAIN, EVAL, DEPLOY, OTHER = (
    f"run:20261127T{t}00Z-{n:06x}"
    for n, t in enumerate(("1000", "1100", "1200", "1300", "1400"), start=1)
)
MODEL, RAW, LABELS, SRC, REPORT = (
    "artifact:model@v2",
    "artifact:raw-images@v3",
    "artifact:labels@v1",
    "artifact:raw-source@v0",
    "artifact:report@v0",
)
METRICS = f"artifact:metrics@sha256:{D['metrics'][7:19]}"
OTHER_MODEL = f"artifact:other-model@sha256:{D['other'][7:19]}"


@pytest.fixture
def graph() -> LineageGraph:
    return LineageGraph(known_runs(), VERSIONS, ALIASES)


def node_ids(g: LineageGraph) -> set[str]:
    return {n.id for n in g.nodes}


def edge_pairs(g: LineageGraph) -> set[tuple[str, str]]:
    return {(e.source, e.target) for e in g.edges}


def age(path: Path) -> None:
    os.utime(path, (OLD, OLD))


# ---------------------------------------------------------------------------------------------
# record format


def test_write_then_read_round_trips_every_field(tmp_path: Path) -> None:
    run = known_runs()[1]
    path = write_run(tmp_path, run)
    assert path == tmp_path / f"{run.id}.yaml"
    assert read_run(path) == run
    text = path.read_text()
    # JSON-shaped YAML: read by PyYAML as the same data (so any YAML tool can read it), and
    # times stay strings, never YAML timestamps (which strict parsing refuses).
    assert text.startswith('{\n "gart": 1,\n')
    data = yaml.safe_load(text)
    assert data["started"] == "2026-11-27T11:00:00Z"
    assert data["exit_code"] == 0 and data["git_dirty"] is True


def test_hand_written_block_yaml_records_are_read_too(tmp_path: Path) -> None:
    run = known_runs()[1]
    (tmp_path / f"{run.id}.yaml").write_text(block_yaml(run))
    assert read_run(tmp_path / f"{run.id}.yaml") == run


def test_rewriting_a_record_is_byte_identical_and_leaves_no_temp_files(tmp_path: Path) -> None:
    run = known_runs()[0]
    first = write_run(tmp_path, run).read_bytes()
    second = write_run(tmp_path, run).read_bytes()
    assert first == second
    assert sorted(os.listdir(tmp_path)) == [f"{run.id}.yaml"]


def test_a_running_record_is_overwritten_when_the_run_finishes(tmp_path: Path) -> None:
    run = replace(known_runs()[0], status="running", ended=None, exit_code=None)
    write_run(tmp_path, run)
    done = replace(run, status="failed", ended="2026-11-27T10:05:00Z", exit_code=137)
    write_run(tmp_path, done)
    assert read_run(tmp_path / run.file_name) == done


def test_strings_that_look_like_other_yaml_types_survive(tmp_path: Path) -> None:
    run = replace(
        known_runs()[0],
        name="null",
        job_type="true",
        command=["echo", "1.0", "yes", "~", "2026-11-27T10:00:00Z", "a: b", "- x", "é\n#"],
        user="0x10",
        host="no",
    )
    path = write_run(tmp_path, run)
    assert read_run(path) == run


@pytest.mark.parametrize("bad_id", ["", "../escape", "a/b", ".hidden", "-x", "x\n", "a b", "x."])
def test_write_refuses_ids_that_are_not_safe_file_names(tmp_path: Path, bad_id: str) -> None:
    runs_dir = tmp_path / "runs"
    with pytest.raises(ManifestError):
        write_run(runs_dir, replace(known_runs()[0], id=bad_id))
    assert not runs_dir.exists() or os.listdir(runs_dir) == []
    assert sorted(os.listdir(tmp_path)) in ([], ["runs"])


def test_write_refuses_an_invalid_record_and_writes_nothing(tmp_path: Path) -> None:
    bad = replace(known_runs()[0], inputs=[ArtifactRef("raw", "md5:abc")])
    with pytest.raises(ManifestError, match="digest"):
        write_run(tmp_path, bad)
    assert os.listdir(tmp_path) == []


def test_new_run_ids_sort_by_time_and_do_not_collide() -> None:
    early = new_run_id(datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc))
    late = new_run_id(datetime(2026, 11, 27, 22, 15, 0, tzinfo=timezone.utc))
    assert re.fullmatch(r"20260102T030405000Z-[0-9a-f]{8}", early)
    assert early < late
    ids = {new_run_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(is_valid_run_id(i) for i in ids)


# ---------------------------------------------------------------------------------------------
# strict parsing

def block_yaml(run: RunRecord) -> str:
    """A record as a person would write it: block-style YAML."""
    return safeyaml.dump({"gart": 1, **run.to_dict()})


def record_text(tmp_path: Path) -> tuple[str, str]:
    """(file name, block-YAML text) of a valid record to corrupt."""
    run = known_runs()[1]
    return f"{run.id}.yaml", block_yaml(run)


def _alias(t: str) -> str:
    head = t.split("outputs:")[0].replace("inputs:\n", "inputs: &x\n")
    return head + "outputs: *x\n"


def _tag(t: str) -> str:
    return t.replace("name: train-resnet", "name: !!python/object/apply:os.system [id]")


# corruption -> (how to corrupt a good record, what the error must mention)
CORRUPTIONS = {
    "future format": (lambda t: t.replace("gart: 1", "gart: 2"), "format"),
    "no format key": (lambda t: t.replace("gart: 1\n", ""), "gart:"),
    "format as string": (lambda t: t.replace("gart: 1", "gart: '1'"), "format"),
    "alias": (_alias, "aliases"),
    "python tag": (_tag, "tag"),
    "duplicate key": (lambda t: t + "name: again\n", "duplicate key 'name'"),
    "unquoted time": (lambda t: t.replace("'2026-11-27T11:00:00Z'", "2026-11-27T11:00:00Z"), "tag"),
    "impossible date": (lambda t: t.replace("2026-11-27T11", "2026-13-45T11"), "started"),
    "exit code as text": (lambda t: t.replace("exit_code: 0", "exit_code: '0'"), "exit_code"),
    "dirty as text": (lambda t: t.replace("git_dirty: true", "git_dirty: 'yes'"), "git_dirty"),
    "command as string": (
        lambda t: re.sub(r"command:\n(- .*\n)+", "command: python train.py\n", t),
        "command",
    ),
    "bad digest": (lambda t: t.replace("digest: sha256:", "digest: sha1:", 1), "digest"),
    "bad version": (lambda t: t.replace("version: v3", "version: '3'"), "version"),
    "bad artifact name": (lambda t: t.replace("name: labels", "name: ../labels"), "name"),
    "unknown status": (lambda t: t.replace("status: finished", "status: done"), "status"),
    "finished but failed": (lambda t: t.replace("exit_code: 0", "exit_code: 2"), "exit_code"),
    "unknown key": (lambda t: t + "extra: 1\n", "unknown key 'extra'"),
    "missing key": (lambda t: t.replace("host: ci-7\n", ""), "'host'"),
    "short commit": (lambda t: t.replace("git_commit: " + "ab" * 20, "git_commit: abab"), "commit"),
    "control character": (lambda t: t.replace("user: alice", 'user: "al\\x07ice"'), "control"),
    "not a mapping": (lambda t: "- just\n- a list\n", "mapping"),
    "empty": (lambda t: "", "mapping"),
    "truncated": (lambda t: t[: len(t) // 2].rsplit("\n", 3)[0] + "\n", "missing"),
    "not yaml": (lambda t: "gart: 1\nid: [unclosed\n", "invalid YAML"),
}


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_read_refuses_corrupt_and_hostile_records_naming_the_file(
    tmp_path: Path, corruption: str
) -> None:
    name, text = record_text(tmp_path)
    corrupt, expected = CORRUPTIONS[corruption]
    bad = corrupt(text)
    assert bad != text
    path = tmp_path / name
    path.write_text(bad)
    with pytest.raises(ManifestError) as info:
        read_run(path)
    assert str(info.value).startswith(f"{path}: ")
    assert expected in str(info.value)


def test_unknown_format_version_tells_the_user_to_upgrade(tmp_path: Path) -> None:
    name, text = record_text(tmp_path)
    (tmp_path / name).write_text(text.replace("gart: 1", "gart: 7"))
    with pytest.raises(ManifestError, match="upgrade"):
        read_run(tmp_path / name)


def test_read_refuses_a_record_whose_id_differs_from_its_file_name(tmp_path: Path) -> None:
    name, text = record_text(tmp_path)
    (tmp_path / "20300101T000000Z-aaaaaa.yaml").write_text(text)
    with pytest.raises(ManifestError, match="must be named"):
        read_run(tmp_path / "20300101T000000Z-aaaaaa.yaml")


def test_read_refuses_binary_and_oversized_files(tmp_path: Path) -> None:
    (tmp_path / "bin.yaml").write_bytes(b"gart: 1\nname: \xff\xfe\n")
    with pytest.raises(ManifestError, match="UTF-8"):
        read_run(tmp_path / "bin.yaml")
    with open(tmp_path / "big.yaml", "wb") as fh:
        fh.truncate(runrecord.MAX_RECORD_BYTES + 1)
    with pytest.raises(ManifestError, match="larger"):
        read_run(tmp_path / "big.yaml")


# ---------------------------------------------------------------------------------------------
# load_runs and its index


def write_all(runs_dir: Path, runs: list[RunRecord]) -> None:
    for run in runs:
        age(write_run(runs_dir, run))


@pytest.fixture
def counted_parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """File names load_runs actually parsed (rather than took from its index)."""
    parsed: list[str] = []
    real = runrecord.parse_run

    def counting(data: bytes | str, file_name: str) -> RunRecord:
        parsed.append(file_name)
        return real(data, file_name)

    monkeypatch.setattr(runrecord, "parse_run", counting)
    return parsed


def test_load_runs_returns_runs_newest_first(tmp_path: Path) -> None:
    write_all(tmp_path / "runs", known_runs())
    runs, errors = load_runs(tmp_path / "runs", tmp_path / "tmp" / "runs-index.json")
    assert errors == []
    assert [r.name for r in runs] == ["other", "deploy", "eval-resnet", "train-resnet", "prep"]
    assert runs == sorted(known_runs(), key=lambda r: r.started, reverse=True)


def test_missing_runs_directory_means_no_runs(tmp_path: Path) -> None:
    assert load_runs(tmp_path / "nope", tmp_path / "index.json") == ([], [])


def test_a_corrupt_record_is_reported_by_name_and_skipped(tmp_path: Path) -> None:
    runs_dir = tmp_path / "runs"
    write_all(runs_dir, known_runs())
    (runs_dir / "20261127T090000Z-badbad.yaml").write_text("gart: 1\nid: [oops\n")
    evil = "gart: 1\nname: !!python/name:os.system\n"
    (runs_dir / "20261127T080000Z-evil00.yaml").write_text(evil)
    os.symlink("/etc/passwd", runs_dir / "20261127T070000Z-link00.yaml")
    runs, errors = load_runs(runs_dir, tmp_path / "index.json")
    assert len(runs) == 5
    assert [name for name, _ in errors] == [
        "20261127T070000Z-link00.yaml",
        "20261127T080000Z-evil00.yaml",
        "20261127T090000Z-badbad.yaml",
    ]
    messages = dict(errors)
    assert "symlink" in messages["20261127T070000Z-link00.yaml"]
    assert "tag" in messages["20261127T080000Z-evil00.yaml"]
    assert "invalid YAML" in messages["20261127T090000Z-badbad.yaml"]
    # Graph queries over what loaded still work.
    graph = LineageGraph(runs, VERSIONS)
    assert [r.name for r in graph.producers_of("model", D["model"])] == ["train-resnet"]


def test_temp_and_foreign_files_are_ignored(tmp_path: Path) -> None:
    runs_dir = tmp_path / "runs"
    write_all(runs_dir, known_runs()[:1])
    (runs_dir / ".20261127T100000Z-000009.abc.tmp").write_text("half a rec")
    (runs_dir / "README.md").write_text("# runs")
    (runs_dir / ".gitkeep").write_text("")
    (runs_dir / "sub.yaml").mkdir()
    runs, errors = load_runs(runs_dir, tmp_path / "index.json")
    assert [r.name for r in runs] == ["prep"]
    assert [name for name, _ in errors] == ["sub.yaml"]


def test_warm_index_parses_nothing(tmp_path: Path, counted_parses: list[str]) -> None:
    runs_dir, index = tmp_path / "runs", tmp_path / "tmp" / "index.json"
    write_all(runs_dir, known_runs())
    cold = load_runs(runs_dir, index)
    assert len(counted_parses) == 5 and index.exists()
    counted_parses.clear()
    warm = load_runs(runs_dir, index)
    assert counted_parses == []
    assert warm == cold


def test_index_follows_added_modified_and_deleted_records(
    tmp_path: Path, counted_parses: list[str]
) -> None:
    runs_dir, index = tmp_path / "runs", tmp_path / "index.json"
    runs = known_runs()
    write_all(runs_dir, runs[:3])
    load_runs(runs_dir, index)

    counted_parses.clear()
    write_all(runs_dir, runs[3:4])  # add
    loaded, _ = load_runs(runs_dir, index)
    assert counted_parses == [runs[3].file_name]
    assert {r.id for r in loaded} == {r.id for r in runs[:4]}

    counted_parses.clear()
    renamed = replace(runs[0], name="prep-renamed-and-longer")  # modify (size changes)
    write_all(runs_dir, [renamed])
    loaded, _ = load_runs(runs_dir, index)
    assert counted_parses == [runs[0].file_name]
    assert renamed in loaded and runs[0] not in loaded

    counted_parses.clear()
    (runs_dir / runs[1].file_name).unlink()  # delete
    loaded, _ = load_runs(runs_dir, index)
    assert counted_parses == []
    assert {r.id for r in loaded} == {runs[0].id, runs[2].id, runs[3].id}
    assert runs[1].file_name not in json.loads(index.read_text())["files"]


def test_same_size_rewrite_with_the_old_mtime_is_still_noticed(tmp_path: Path) -> None:
    runs_dir, index = tmp_path / "runs", tmp_path / "index.json"
    write_all(runs_dir, known_runs()[:1])
    load_runs(runs_dir, index)
    path = runs_dir / known_runs()[0].file_name
    text = path.read_text()
    changed = text.replace('"user": "alice"', '"user": "bobby"')
    assert len(changed) == len(text)
    with open(path, "r+") as fh:  # in place: same inode, same size
        fh.write(changed)
    age(path)  # and the same mtime as before
    (loaded,), _ = load_runs(runs_dir, index)
    assert loaded.user == "bobby"


def test_a_fixed_record_comes_back_and_a_broken_one_goes(tmp_path: Path) -> None:
    runs_dir, index = tmp_path / "runs", tmp_path / "index.json"
    write_all(runs_dir, known_runs()[:2])
    path = runs_dir / known_runs()[0].file_name
    good = path.read_text()
    path.write_text(good.replace('"status": "finished"', '"status": "???"'))
    age(path)
    runs, errors = load_runs(runs_dir, index)
    assert len(runs) == 1 and [n for n, _ in errors] == [path.name]
    path.write_text(good)
    age(path)
    runs, errors = load_runs(runs_dir, index)
    assert len(runs) == 2 and errors == []


def test_a_freshly_written_record_is_reparsed_until_its_mtime_is_safely_old(
    tmp_path: Path, counted_parses: list[str]
) -> None:
    # Within one timestamp tick a rewrite could keep size and mtime; such files are never
    # trusted from the index until they are older than the racy window.
    runs_dir, index = tmp_path / "runs", tmp_path / "index.json"
    write_run(runs_dir, known_runs()[0])
    load_runs(runs_dir, index)
    load_runs(runs_dir, index)
    assert len(counted_parses) == 2
    age(runs_dir / known_runs()[0].file_name)
    load_runs(runs_dir, index)
    load_runs(runs_dir, index)
    assert len(counted_parses) == 3


@pytest.mark.parametrize(
    "damage",
    [
        b"\x00\x01garbage",
        b'{"index": 2, "refs": [], "files": []}',
        b'{"index": 999, "refs": [], "files": {}}',
        b"[1, 2, 3]",
        b"",
    ],
)
def test_a_damaged_index_is_rebuilt_silently(tmp_path: Path, damage: bytes) -> None:
    runs_dir, index = tmp_path / "runs", tmp_path / "index.json"
    write_all(runs_dir, known_runs())
    expected = load_runs(runs_dir, index)
    index.write_bytes(damage)
    assert load_runs(runs_dir, index) == expected
    assert load_runs(runs_dir, index) == expected


def test_a_tampered_index_entry_is_reparsed_not_trusted_blindly(tmp_path: Path) -> None:
    runs_dir, index = tmp_path / "runs", tmp_path / "index.json"
    write_all(runs_dir, known_runs())
    expected = load_runs(runs_dir, index)
    data = json.loads(index.read_text())
    for entry in data["files"].values():
        if isinstance(entry[1], list):
            entry[1][12] = [-1, 10_000]  # ref ids that do not exist
    index.write_text(json.dumps(data))
    assert load_runs(runs_dir, index) == expected


def test_many_records_load_the_same_from_a_warm_index(tmp_path: Path) -> None:
    # Behaviour only; the time this takes for 10,000 records: benchmarks/lineage_speed.py.
    runs_dir, index = tmp_path / "runs", tmp_path / "index.json"
    runs_dir.mkdir()
    template = write_run(tmp_path / "t", known_runs()[1]).read_text()
    old_id = known_runs()[1].id
    for i in range(1_000):
        run_id = f"2026{i:08d}T000000Z-{i:06x}"
        text = template.replace(old_id, run_id).replace(D["model"], dg(f"model{i}"))
        path = runs_dir / f"{run_id}.yaml"
        path.write_text(text)
        os.utime(path, (OLD, OLD))
    cold = load_runs(runs_dir, index)  # parses every file once and writes the index
    runs, errors = cold
    assert len(runs) == 1_000 and errors == [] and index.exists()
    assert load_runs(runs_dir, index) == cold  # warm: from the index
    sub = LineageGraph(runs).around("model", dg("model500"))
    assert len(sub.nodes) == 4  # the model, its run, and the run's two inputs


# ---------------------------------------------------------------------------------------------
# graph queries


def test_graph_joins_outputs_to_later_inputs_by_digest(graph: LineageGraph) -> None:
    # train recorded its output without a version; eval consumed "model@v2": one node.
    assert graph.artifact_node_id("model", D["model"]) == MODEL
    assert (TRAIN, MODEL) in edge_pairs(graph) and (MODEL, EVAL) in edge_pairs(graph)
    assert graph.artifact_node_id("metrics", D["metrics"]) == METRICS
    assert node_ids(graph) == {
        PREP, TRAIN, EVAL, DEPLOY, OTHER, MODEL, RAW, LABELS, SRC, REPORT, METRICS, OTHER_MODEL
    }  # fmt: skip
    assert graph.node(MODEL).aliases == ("production", "latest")


def test_recorded_versions_label_nodes_the_caller_did_not_map() -> None:
    graph = LineageGraph(known_runs())  # no tags known at all
    assert graph.artifact_node_id("model", D["model"]) == MODEL  # eval recorded v2
    assert graph.artifact_node_id("report", D["report"]) == REPORT


def test_around_both_directions_without_depth(graph: LineageGraph) -> None:
    sub = graph.around("model", D["model"])
    assert sub.root == MODEL
    # Siblings (metrics) and unrelated consumers of shared inputs (other) are not lineage.
    assert node_ids(sub) == {MODEL, TRAIN, RAW, LABELS, PREP, SRC, EVAL, REPORT, DEPLOY}
    assert edge_pairs(sub) == {
        (SRC, PREP), (PREP, RAW), (RAW, TRAIN), (LABELS, TRAIN), (TRAIN, MODEL),
        (MODEL, EVAL), (EVAL, REPORT), (REPORT, DEPLOY),
    }  # fmt: skip
    assert sub.truncated_upstream == frozenset() and sub.truncated_downstream == frozenset()


def test_around_upstream_only_and_downstream_only(graph: LineageGraph) -> None:
    up = graph.around("model", D["model"], downstream=False)
    assert node_ids(up) == {MODEL, TRAIN, RAW, LABELS, PREP, SRC}
    down = graph.around("model", D["model"], upstream=False)
    assert node_ids(down) == {MODEL, EVAL, REPORT, DEPLOY}


def test_around_depth_counts_runs_and_marks_what_was_cut(graph: LineageGraph) -> None:
    one = graph.around("model", D["model"], depth=1)
    assert node_ids(one) == {MODEL, TRAIN, RAW, LABELS, EVAL, REPORT}
    assert one.truncated_upstream == {RAW}
    assert one.truncated_downstream == {REPORT}
    zero = graph.around("model", D["model"], depth=0)
    assert node_ids(zero) == {MODEL}
    assert zero.truncated_upstream == {MODEL} and zero.truncated_downstream == {MODEL}
    two = graph.around("model", D["model"], depth=2)
    assert node_ids(two) == node_ids(graph.around("model", D["model"]))
    assert two.truncated_upstream == frozenset() and two.truncated_downstream == frozenset()
    with pytest.raises(ValueError):
        graph.around("model", D["model"], depth=-1)


def test_around_a_run_and_around_a_node_id(graph: LineageGraph) -> None:
    sub = graph.around_run(TRAIN[4:], depth=0)
    assert sub.root == TRAIN
    assert node_ids(sub) == {TRAIN, RAW, LABELS, MODEL, METRICS}
    assert node_ids(graph.around_node(LABELS, downstream=True, upstream=False)) == {
        LABELS, TRAIN, MODEL, METRICS, EVAL, REPORT, DEPLOY, OTHER, OTHER_MODEL
    }  # fmt: skip
    with pytest.raises(KeyError):
        graph.around_node("run:nope")


def test_around_an_artifact_no_run_touched_is_a_lone_node(graph: LineageGraph) -> None:
    digest = dg("never used")
    lone = LineageGraph(known_runs(), {**VERSIONS, ("fresh", digest): "v0"}).around("fresh", digest)
    assert node_ids(lone) == {"artifact:fresh@v0"} and lone.edges == []
    unknown = graph.around("ghost", digest)
    assert node_ids(unknown) == {f"artifact:ghost@sha256:{digest[7:19]}"}


def test_producers_and_consumers(graph: LineageGraph) -> None:
    assert [r.name for r in graph.producers_of("model", D["model"])] == ["train-resnet"]
    assert [r.name for r in graph.consumers_of("labels", D["labels"])] == ["other", "train-resnet"]
    assert graph.producers_of("labels", D["labels"]) == []
    assert graph.consumers_of("model", dg("another digest")) == []


def test_filter_runs_by_job_type_artifact_and_digest(graph: LineageGraph) -> None:
    runs = graph.runs
    assert [r.name for r in filter_runs(runs, job_type="train")] == ["other", "train-resnet"]
    assert [r.name for r in filter_runs(runs, artifact="model")] == ["eval-resnet", "train-resnet"]
    assert [r.name for r in filter_runs(runs, job_type="eval", artifact="model")] == ["eval-resnet"]
    assert filter_runs(runs, artifact="model", digest=dg("nope")) == []
    assert filter_runs(runs, job_type="nope") == []
    assert [r.name for r in graph.find_runs(artifact="labels")] == ["other", "train-resnet"]


def test_a_run_that_reproduces_its_input_makes_a_cycle_queries_survive() -> None:
    loop = make_run(
        9, "noop", "copy", "1500",
        [ArtifactRef("model", D["model"], "v2", "v2", None)],
        [ArtifactRef("model", D["model"], None, None, None)],
    )  # fmt: skip
    graph = LineageGraph([*known_runs(), loop], VERSIONS)
    sub = graph.around("model", D["model"])
    loop_id = f"run:{loop.id}"
    assert {(MODEL, loop_id), (loop_id, MODEL)} <= edge_pairs(sub)
    assert loop_id in node_ids(sub)


def test_conflicting_versions_do_not_merge_distinct_digests() -> None:
    # A broken tag mapping claiming v1 for two digests must not fold them into one node.
    a, b = dg("a"), dg("b")
    run = make_run(
        1, "r", "t", "1000",
        [ArtifactRef("data", a, None, None, None), ArtifactRef("data", b, None, None, None)], [],
    )  # fmt: skip
    graph = LineageGraph([run], {("data", a): "v1", ("data", b): "v1"})
    ids = {graph.artifact_node_id("data", a), graph.artifact_node_id("data", b)}
    assert len(ids) == 2 and all(i and "sha256:" in i for i in ids)
