"""`gart run`, `gart repro`, `gart runs` and `gart lineage` end to end: real git, real gart."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import (
    GART,
    GartResult,
    World,
    build_published_world,
    git,
    init_git_repo,
    isolate_git,
    read_tree,
    run_gart,
)

from gitartifacts import runrecord
from gitartifacts.api import Repo

Gart = Callable[..., GartResult]
PY = sys.executable


def records(root: Path) -> list[dict[str, Any]]:
    """Every run record file in the repo, parsed as plain YAML (what a user reads)."""
    out = []
    for path in sorted((root / ".gart" / "runs").glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert path.name == f"{data['id']}.yaml"
        out.append(data)
    return out


def only_record(root: Path) -> dict[str, Any]:
    found = records(root)
    assert len(found) == 1, found
    return found[0]


def staged(root: Path) -> set[str]:
    return set(git(root, "diff", "--cached", "--name-only").split())


def digest(root: Path, spec: str) -> str:
    return Repo(root).resolve(spec).digest


def no_traceback(result: GartResult) -> None:
    assert "Traceback" not in result.err, result.err


def publish(root: Path, name: str, alias: str | None = None) -> str:
    """Re-add `name` from its directory, commit, push and (optionally) move an alias to it."""
    repo = Repo(root)
    manifest = repo.load_manifest(name)
    repo.add([root / manifest.path], name=name)
    git(root, "commit", "-q", "-m", f"new {name}")
    result = Repo(root).push([name])
    version = result.versions[0][0]
    if alias is not None:
        Repo(root).set_alias(name, version.label, alias)
    return version.label


# -- gart run --------------------------------------------------------------------------------

TRAIN = textwrap.dedent("""\
    import hashlib, json, os, pathlib, sys
    raw = pathlib.Path(os.environ["GART_INPUT_RAW"])
    seen = {
        "run_id": os.environ.get("GART_RUN_ID"),
        "raw": str(raw),
        "labels": os.environ.get("GART_INPUT_LABELS"),
        "files": {p.relative_to(raw).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                  for p in sorted(raw.rglob("*")) if p.is_file()},
    }
    pathlib.Path("seen.json").write_text(json.dumps(seen))
    pathlib.Path("models").mkdir(exist_ok=True)
    pathlib.Path("models/weights.bin").write_bytes(b"w" * 100)
    pathlib.Path("eval").mkdir(exist_ok=True)
    pathlib.Path("eval/metrics.json").write_text('{"acc": 0.93}')
    sys.stdout.write("epoch 1 loss=0.5\\nunicode ✓ stays\\nno newline at the end")
    sys.stderr.write("warning: from the command\\n")
    sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
""")
CMD_OUT = "epoch 1 loss=0.5\nunicode ✓ stays\nno newline at the end"
CMD_ERR = "warning: from the command\n"
TRAIN_ARGS = ("run", "--job-type", "train", "--name", "t", "-i", "raw@production",
              "-i", "labels@v0", "-o", "model=models/", "-o", "metrics=eval/metrics.json",
              "--", PY, "train.py")


def test_run_resolves_and_pulls_inputs_then_adds_the_outputs(
    published: World, tmp_path: Path
) -> None:
    # CI's view: a fresh clone of origin with neither the data nor the cache.
    root = tmp_path / "ci"
    git(tmp_path, "clone", "-q", str(published.origin), str(root))
    assert not (root / "raw").exists() and not (root / ".gart" / "cache").exists()
    (root / "train.py").write_text(TRAIN)
    git(root, "add", "train.py")
    git(root, "commit", "-q", "-m", "train script")
    head = git(root, "rev-parse", "HEAD").strip()

    done = run_gart(root, *TRAIN_ARGS)

    assert done.rc == 0, done.err
    assert done.out == CMD_OUT  # the command's stdout, byte for byte, and nothing else
    assert CMD_ERR in done.err
    rec = only_record(root)
    seen = json.loads((root / "seen.json").read_text())
    # Inputs were resolved to exact versions and checked out before the command started.
    assert seen["run_id"] == rec["id"]
    assert Path(seen["raw"]) == root / "raw"
    assert Path(seen["labels"]) == root / "labels"
    expected = {rel: hashlib.sha256(b).hexdigest()
                for rel, b in published.raw.items()}
    assert seen["files"] == expected
    assert read_tree(root / "labels") == published.labels
    raw_v0, labels_v0 = digest(root, "raw@v0"), digest(root, "labels@v0")
    assert [(i["name"], i["version"], i["requested"], i["digest"]) for i in rec["inputs"]] == [
        ("raw", "v0", "production", raw_v0), ("labels", "v0", "v0", labels_v0)]
    # On exit 0 the outputs became artifacts, staged with the record.
    repo = Repo(root)
    model, metrics = repo.load_manifest("model"), repo.load_manifest("metrics")
    assert [e.path for e in model.entries] == ["weights.bin"]
    assert [e.path for e in metrics.entries] == ["metrics.json"]
    assert [(o["name"], o["digest"], o["version"]) for o in rec["outputs"]] == [
        ("model", model.digest, None), ("metrics", metrics.digest, None)]
    assert {".gart/artifacts/model.yaml", ".gart/artifacts/metrics.yaml",
            f".gart/runs/{rec['id']}.yaml"} <= staged(root)
    assert (rec["status"], rec["exit_code"], rec["job_type"], rec["name"]) == (
        "finished", 0, "train", "t")
    assert rec["command"] == [PY, "train.py"]
    assert (rec["git_commit"], rec["git_dirty"]) == (head, False)
    assert rec["ended"] >= rec["started"]


def test_run_after_deleting_the_data_pulls_it_again(published: World, gart: Gart) -> None:
    root = published.root
    shutil.rmtree(root / "raw")
    (root / "train.py").write_text(TRAIN)
    done = gart(*TRAIN_ARGS)
    assert done.rc == 0, done.err
    assert read_tree(root / "raw") == published.raw
    assert only_record(root)["inputs"][0]["version"] == "v0"


def test_a_failing_command_keeps_its_exit_code_and_adds_no_output(
    published: World, gart: Gart
) -> None:
    root = published.root
    (root / "train.py").write_text(TRAIN)
    done = gart(*TRAIN_ARGS, "3")
    assert done.rc == 3
    assert done.out == CMD_OUT
    assert CMD_ERR in done.err
    no_traceback(done)
    rec = only_record(root)
    assert (rec["status"], rec["exit_code"], rec["outputs"]) == ("failed", 3, [])
    assert rec["ended"] is not None
    assert len(rec["inputs"]) == 2  # what it consumed is still on record
    # The files the command wrote are left alone, but none became an artifact.
    assert (root / "models" / "weights.bin").exists()
    assert not (root / ".gart" / "artifacts" / "model.yaml").exists()
    assert not (root / ".gart" / "artifacts" / "metrics.yaml").exists()
    assert f".gart/runs/{rec['id']}.yaml" in staged(root)


def test_a_command_that_is_not_found_exits_127_and_is_recorded_failed(
    published: World, gart: Gart
) -> None:
    done = gart("run", "-i", "labels@v0", "-o", "model=models/", "--", "no-such-command-xyz")
    assert done.rc == 127
    assert "no-such-command-xyz" in done.err
    no_traceback(done)
    rec = only_record(published.root)
    assert (rec["status"], rec["exit_code"], rec["outputs"]) == ("failed", 127, [])
    assert rec["command"] == ["no-such-command-xyz"]


@pytest.mark.parametrize("spec", ["raw@no-such-alias", "unknown-thing@v0"])
def test_an_input_that_does_not_resolve_fails_before_the_command_runs(
    published: World, gart: Gart, spec: str,
    snapshot: Callable[[Path], tuple[str, dict[str, tuple[int, int, int]]]],
) -> None:
    root = published.root
    shutil.rmtree(root / "labels")  # a valid input that would have to be downloaded

    def files() -> dict[str, tuple[int, int, int]]:  # gart's own hash-state db may be touched
        return {k: v for k, v in snapshot(root)[1].items() if not k.startswith(".gart/tmp/")}

    before = (snapshot(root)[0], files())
    done = gart("run", "-i", "labels@v0", "-i", spec, "-o", "model=models/", "--",
                PY, "-c", "open('command-ran', 'w').write('yes')")
    assert done.rc != 0
    assert spec.split("@")[0] in done.err
    assert done.err.startswith("gart: error: ")
    no_traceback(done)
    assert not (root / "command-ran").exists()
    assert records(root) == []
    assert not (root / "labels").exists()  # nothing downloaded for a run that cannot start
    assert (snapshot(root)[0], files()) == before


def test_a_missing_output_fails_the_run_and_adds_no_output_at_all(
    published: World, gart: Gart
) -> None:
    root = published.root
    done = gart("run", "-o", "model=models/", "-o", "metrics=eval/metrics.json", "--", PY, "-c",
                "import os; os.makedirs('models'); open('models/w', 'w').write('w')")
    assert done.rc != 0
    assert "eval/metrics.json" in done.err
    no_traceback(done)
    rec = only_record(root)
    assert (rec["status"], rec["outputs"]) == ("failed", [])
    assert rec["exit_code"] != 0
    assert not (root / ".gart" / "artifacts" / "model.yaml").exists()


def test_a_command_killed_by_a_signal_exits_as_a_shell_would(
    published: World, gart: Gart
) -> None:
    done = gart("run", "--", PY, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    assert done.rc == 128 + signal.SIGKILL
    rec = only_record(published.root)
    assert (rec["status"], rec["exit_code"]) == ("failed", 128 + signal.SIGKILL)


def start_long_run(root: Path, script: str) -> subprocess.Popen[str]:
    """`gart run` of a Python command that prints 'started' and then waits, in its own session."""
    proc = subprocess.Popen(
        [*GART, "run", "--name", "long", "--", PY, "-c", script],
        cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == "started\n"
    return proc


def finish(proc: subprocess.Popen[str]) -> str:
    try:
        return proc.communicate(timeout=30)[1]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_ctrl_c_is_the_commands_to_handle_and_the_run_is_recorded_failed(
    published: World,
) -> None:
    script = ("import sys, time\ntry:\n    print('started', flush=True); time.sleep(60)\n"
              "except KeyboardInterrupt:\n    print('saving checkpoint'); sys.exit(130)")
    proc = start_long_run(published.root, script)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole group
    err = finish(proc)
    assert proc.returncode == 130
    assert "Traceback" not in err
    rec = only_record(published.root)
    assert (rec["name"], rec["status"], rec["exit_code"]) == ("long", "failed", 130)
    assert rec["ended"] is not None


def test_sigterm_to_gart_stops_the_command_and_the_run_is_recorded_failed(
    published: World,
) -> None:
    proc = start_long_run(published.root,
                          "import time; print('started', flush=True); time.sleep(60)")
    os.kill(proc.pid, signal.SIGTERM)  # a CI runner cancelling the job: gart alone
    err = finish(proc)
    assert proc.returncode == 128 + signal.SIGTERM, err
    rec = only_record(published.root)
    assert (rec["status"], rec["exit_code"]) == ("failed", 128 + signal.SIGTERM)


# -- stages and repro -------------------------------------------------------------------------

PIPELINE = textwrap.dedent("""\
    gart: 1
    stages:
      train:
        cmd: python stages/train.py
        inputs: [features, labels@latest]
        outputs: {model: models/}
      featurize:
        cmd: python stages/featurize.py
        job_type: preprocess
        inputs: [raw@production]
        outputs: {features: features/}
""")
FEATURIZE = textwrap.dedent("""\
    import os, pathlib
    raw = pathlib.Path(os.environ["GART_INPUT_RAW"])
    names = sorted(p.relative_to(raw).as_posix() for p in raw.rglob("*") if p.is_file())
    pathlib.Path("features").mkdir(exist_ok=True)
    pathlib.Path("features/names.txt").write_text("\\n".join(names))
    with open("stage-log.txt", "a") as log:
        log.write("featurize\\n")
""")
TRAIN_STAGE = textwrap.dedent("""\
    import os, pathlib
    labels = pathlib.Path(os.environ["GART_INPUT_LABELS"])
    text = pathlib.Path("features/names.txt").read_text()
    n_labels = sum(1 for p in labels.iterdir())
    pathlib.Path("models").mkdir(exist_ok=True)
    pathlib.Path("models/model.txt").write_text(f"{len(text.split())} {n_labels}")
    with open("stage-log.txt", "a") as log:
        log.write("train\\n")
""")


def stage_log(root: Path) -> list[str]:
    path = root / "stage-log.txt"
    return path.read_text().split() if path.exists() else []


def report(result: GartResult) -> dict[str, str]:
    assert result.rc == 0, result.err
    return dict(line.split(": ", 1) for line in result.out.splitlines())


def test_stages_run_by_name_and_repro_reruns_only_what_changed(
    published: World, gart: Gart
) -> None:
    root = published.root
    (root / ".gart" / "pipeline.yaml").write_text(PIPELINE.replace("python", PY))
    (root / "stages").mkdir()
    (root / "stages" / "featurize.py").write_text(FEATURIZE)
    (root / "stages" / "train.py").write_text(TRAIN_STAGE)

    # `gart run STAGE` works from anywhere in the repository: stages run at its root.
    one = gart("run", "featurize", cwd=root / "stages")
    assert one.rc == 0, one.err
    rec = only_record(root)
    assert (rec["name"], rec["job_type"], rec["status"]) == ("featurize", "preprocess", "finished")
    assert [(i["name"], i["version"], i["requested"]) for i in rec["inputs"]] == [
        ("raw", "v0", "production")]
    assert (root / ".gart" / "artifacts" / "features.yaml").exists()
    assert stage_log(root) == ["featurize"]

    first = gart("repro", cwd=root / "stages")
    assert first.out.splitlines()[0].startswith("featurize: ")  # dependency order
    assert report(first) == {"featurize": "up to date", "train": "ran: never ran successfully"}
    assert stage_log(root) == ["featurize", "train"]
    assert (root / "models" / "model.txt").read_text() == f"{len(published.raw)} 2"

    assert report(gart("repro")) == {"featurize": "up to date", "train": "up to date"}
    assert stage_log(root) == ["featurize", "train"]

    # New raw bytes under the same names: featurize reruns, its output is identical, so
    # train is skipped.
    (root / "raw" / "d0" / "f0000.bin").write_bytes(b"different bytes")
    assert publish(root, "raw", "production") == "v1"
    assert report(gart("repro")) == {"featurize": "ran: input raw changed", "train": "up to date"}
    assert stage_log(root) == ["featurize", "train", "featurize"]

    # Only train's own input changes: only train reruns.
    (root / "labels" / "extra.bin").write_bytes(b"more labels")
    assert publish(root, "labels") == "v1"
    assert report(gart("repro")) == {
        "featurize": "up to date", "train": "ran: input labels changed"}
    assert stage_log(root) == ["featurize", "train", "featurize", "train"]
    assert (root / "models" / "model.txt").read_text() == f"{len(published.raw)} 3"

    # A new raw file changes featurize's output, so train follows in the same call.
    (root / "raw" / "d1" / "new.bin").write_bytes(b"new file")
    assert publish(root, "raw", "production") == "v2"
    assert report(gart("repro")) == {
        "featurize": "ran: input raw changed", "train": "ran: input features changed"}
    assert stage_log(root)[-2:] == ["featurize", "train"]
    assert report(gart("repro")) == {"featurize": "up to date", "train": "up to date"}
    assert len(stage_log(root)) == 6
    finished = [r for r in records(root) if r["status"] == "finished"]
    assert len(finished) == 6


def test_repro_stops_at_a_failing_stage(published: World, gart: Gart) -> None:
    root = published.root
    (root / ".gart" / "pipeline.yaml").write_text(PIPELINE.replace("python", PY))
    (root / "stages").mkdir()
    (root / "stages" / "featurize.py").write_text("import sys; sys.exit(4)\n")
    (root / "stages" / "train.py").write_text(TRAIN_STAGE)
    done = gart("repro")
    assert done.rc != 0
    assert "featurize: failed (exit 4)" in done.out
    assert "train" not in done.out
    assert [(r["name"], r["status"], r["exit_code"]) for r in records(root)] == [
        ("featurize", "failed", 4)]


# -- a recorded history: gart runs and gart lineage -------------------------------------------


@dataclass
class History:
    """raw@v0 (production), labels@v0 -> train -> model@v0, metrics@v0 -> eval -> report@v0."""

    world: World
    train: str
    eval: str

    @property
    def root(self) -> Path:
        return self.world.root


EVAL = textwrap.dedent("""\
    import os, pathlib
    pathlib.Path("report").mkdir(exist_ok=True)
    pathlib.Path("report/report.md").write_text(str(os.listdir(os.environ["GART_INPUT_MODEL"])))
""")


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    base = tmp_path_factory.mktemp("history")
    with pytest.MonkeyPatch.context() as mp:
        isolate_git(mp, base / "home")
        root = init_git_repo(base / "repo")
        Repo.init(root)
        world = build_published_world(root)
        (root / "train.py").write_text(TRAIN)
        (root / "eval.py").write_text(EVAL)
        git(root, "add", "train.py", "eval.py")
        git(root, "commit", "-q", "-m", "scripts")
        train = run_gart(root, *TRAIN_ARGS)
        assert train.rc == 0, train.err
        train_rec = only_record(root)
        git(root, "commit", "-q", "-m", "train run")
        assert run_gart(root, "push").rc == 0
        while runrecord.utc_now() <= train_rec["started"]:  # so "newest first" is unambiguous
            time.sleep(0.05)
        done = run_gart(root, "run", "--job-type", "eval", "--name", "e", "-i", "model@v0",
                       "-o", "report=report/", "--", PY, "eval.py")
        assert done.rc == 0, done.err
        eval_id = next(r["id"] for r in records(root) if r["id"] != train_rec["id"])
        git(root, "commit", "-q", "-m", "eval run")
        assert run_gart(root, "push").rc == 0
        yield History(world, train_rec["id"], eval_id)


def test_runs_lists_newest_first_and_filters(history: History) -> None:
    root = history.root
    plain = run_gart(root, "runs")
    assert plain.rc == 0 and plain.err == ""
    lines = plain.out.splitlines()
    assert [line.split()[0] for line in lines] == [history.eval, history.train]
    assert "raw@v0" in lines[1] and "model" in lines[1] and "[train]" in lines[1]

    as_json = json.loads(run_gart(root, "runs", "--json").out)
    assert [r["id"] for r in as_json] == [history.eval, history.train]
    assert as_json[1] == only_matching(root, history.train)  # the whole record

    def ids(*args: str) -> list[str]:
        done = run_gart(root, "runs", "--json", *args)
        assert done.rc == 0, done.err
        return [r["id"] for r in json.loads(done.out)]

    assert ids("--job-type", "train") == [history.train]
    assert ids("--job-type", "deploy") == []
    assert ids("--artifact", "raw") == [history.train]
    assert ids("--artifact", "model") == [history.eval, history.train]
    assert ids("--artifact", "report", "--job-type", "train") == []


def only_matching(root: Path, run_id: str) -> dict[str, Any]:
    data = next(r for r in records(root) if r["id"] == run_id)
    data.pop("gart")
    return data


def lineage_json(root: Path, *args: str) -> tuple[set[str], set[tuple[str, str, str]]]:
    done = run_gart(root, "lineage", *args, "--format", "json")
    assert done.rc == 0, done.err
    data = json.loads(done.out)
    nodes = {n["id"] for n in data["nodes"]}
    edges = {(e["source"], e["target"], e["kind"]) for e in data["edges"]}
    return nodes, edges


def test_lineage_tree_shows_the_producer_and_its_inputs(history: History) -> None:
    done = run_gart(history.root, "lineage", "model@v0")
    assert done.rc == 0, done.err
    lines = done.out.splitlines()
    assert lines[0].startswith("model@v0")
    text = done.out
    assert f"produced by run {history.train}" in text and " t [train] finished" in text
    assert "consumed raw@v0" in text and "production" in text
    assert "consumed labels@v0" in text
    assert f"consumed by run {history.eval}" in text and "produced report@v0" in text
    # The inputs hang below the producing run.
    producer = next(i for i, line in enumerate(lines) if "produced by run" in line)
    raw_line = next(i for i, line in enumerate(lines) if "consumed raw@v0" in line)
    assert raw_line > producer
    assert lines[raw_line].index("consumed") > lines[producer].index("produced")


def test_lineage_directions_and_depth(history: History) -> None:
    t, e = f"run:{history.train}", f"run:{history.eval}"
    raw, labels = "artifact:raw@v0", "artifact:labels@v0"
    model, report = "artifact:model@v0", "artifact:report@v0"

    nodes, edges = lineage_json(history.root, "model@v0", "--upstream")
    assert {raw, labels, t, model} <= nodes and not {e, report} & nodes
    assert {(raw, t, "consumed"), (labels, t, "consumed"), (t, model, "produced")} <= edges

    nodes, edges = lineage_json(history.root, "model@v0", "--downstream")
    assert {model, e, report} <= nodes and not {raw, labels, t} & nodes
    assert edges == {(model, e, "consumed"), (e, report, "produced")}

    nodes, _ = lineage_json(history.root, "raw@v0", "--downstream", "--depth", "1")
    assert {raw, t, model, "artifact:metrics@v0"} == nodes
    nodes, _ = lineage_json(history.root, "raw@production", "--downstream")
    assert {e, report} <= nodes  # no depth limit: all the way down


def test_lineage_formats_name_the_known_nodes_and_edges(history: History) -> None:
    t, e = f"run:{history.train}", f"run:{history.eval}"
    done = run_gart(history.root, "lineage", "model@v0", "--format", "json")
    data = json.loads(done.out)
    by_id = {n["id"]: n for n in data["nodes"]}
    assert data["root"] == "artifact:model@v0"
    assert by_id["artifact:raw@v0"]["digest"] == digest(history.root, "raw@v0")
    assert "production" in by_id["artifact:raw@v0"]["aliases"]
    assert by_id[t]["run"]["id"] == history.train and by_id[t]["run"]["job_type"] == "train"
    requested = {(x["source"], x["target"]): x["requested"] for x in data["edges"]}
    assert requested[("artifact:raw@v0", t)] == "production"

    dot = run_gart(history.root, "lineage", "model@v0", "--format", "dot").out
    assert dot.startswith("digraph")
    for source, target in [("artifact:raw@v0", t), (t, "artifact:model@v0"),
                           ("artifact:model@v0", e), (e, "artifact:report@v0")]:
        assert f'"{source}" -> "{target}"' in dot

    mermaid = run_gart(history.root, "lineage", "model@v0", "--format", "mermaid").out
    assert mermaid.startswith("flowchart")
    short = dict(re.findall(r"%% (n\d+) = (\S+)", mermaid))
    node = {v: k for k, v in short.items()}
    for source, target in [("artifact:labels@v0", t), (t, "artifact:model@v0"),
                           ("artifact:model@v0", e)]:
        assert re.search(rf"^\s*{node[source]} --(>|>\|[^|]*\|) {node[target]}$", mermaid, re.M)


def test_lineage_html_is_one_self_contained_page(history: History, tmp_path: Path) -> None:
    out = tmp_path / "lineage.html"
    done = run_gart(history.root, "lineage", "model@v0", "--html", out)
    assert done.rc == 0, done.err
    assert done.out == ""
    page = out.read_text(encoding="utf-8")
    assert page.lstrip().lower().startswith("<!doctype html>")
    for node_id in ("artifact:raw@v0", "artifact:model@v0", f"run:{history.train}",
                    f"run:{history.eval}", "artifact:report@v0"):
        assert node_id in page
    # Nothing is fetched from anywhere: no external scripts, styles, images or fonts.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page, re.I)
    assert not re.search(r"@import|url\(\s*['\"]?(https?:)?//", page, re.I)
    assert not re.search(r"<link\b", page, re.I)


def test_a_corrupt_run_record_is_named_and_skipped(
    history: History, tmp_path: Path
) -> None:
    root = tmp_path / "repo"
    shutil.copytree(history.root, root, symlinks=True)
    bad = root / ".gart" / "runs" / "20990101T000000Z-badbad.yaml"
    bad.write_text("gart: 1\nid: [unclosed\n  : : garbage {{{\n")
    wrong = root / ".gart" / "runs" / "20990101T000000Z-wrong1.yaml"
    wrong.write_text("gart: 1\nid: 20990101T000000Z-wrong1\nstatus: exploded\n")

    runs = run_gart(root, "runs")
    assert runs.rc == 0
    no_traceback(runs)
    assert bad.name in runs.err and wrong.name in runs.err
    assert [line.split()[0] for line in runs.out.splitlines()] == [history.eval, history.train]
    assert json.loads(run_gart(root, "runs", "--json").out)[0]["id"] == history.eval

    tree = run_gart(root, "lineage", "model@v0")
    assert tree.rc == 0
    no_traceback(tree)
    assert bad.name in tree.err and wrong.name in tree.err
    assert f"produced by run {history.train}" in tree.out


# -- speed (printed, never asserted) ---------------------------------------------------------


def test_speed_with_ten_thousand_run_records(
    history: History, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "repo"
    shutil.copytree(history.root, root, symlinks=True)
    raw_digest = digest(root, "raw@v0")
    runs_dir = root / ".gart" / "runs"
    template = (runs_dir / f"{history.train}.yaml").read_text()
    old = time.time() - 3600
    for i in range(10_000):
        run_id = f"20250101T{i // 3600 % 24:02d}{i // 60 % 60:02d}{i % 60:02d}Z-{i:06x}"
        started = f"2025-01-01T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z"
        text = template.replace(history.train, run_id)
        text = re.sub(r"started: '[^']*'", f"started: '{started}'", text)
        text = re.sub(r"ended: '[^']*'", f"ended: '{started}'", text)
        if i % 500:  # most runs touch other data; every 500th consumes raw@v0
            text = text.replace(raw_digest, "sha256:" + f"{i:064x}")
        path = runs_dir / f"{run_id}.yaml"
        path.write_text(text)
        os.utime(path, (old, old))
    assert runrecord.read_run(runs_dir / "20250101T000001Z-000001.yaml").id.endswith("000001")

    timings: list[str] = []
    outputs: dict[str, str] = {}
    for label, args in [("gart runs", ("runs",)), ("gart lineage raw@v0", ("lineage", "raw@v0"))]:
        for phase in ("cold", "warm"):
            if phase == "cold":
                for index in (root / ".gart" / "tmp").glob("runs-index*"):
                    index.unlink()
            start = time.perf_counter()
            done = run_gart(root, *args)
            elapsed = time.perf_counter() - start
            assert done.rc == 0, done.err
            outputs[label] = done.out
            timings.append(f"{label} ({phase}): {elapsed:.2f} s")
    assert len(outputs["gart runs"].splitlines()) == 10_002
    assert outputs["gart lineage raw@v0"].count("consumed by run 2025") == 20
    with capsys.disabled():
        print("\n10,000 run records: " + "; ".join(timings))
