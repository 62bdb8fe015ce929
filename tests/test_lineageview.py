"""Lineage renderers: JSON, dot, Mermaid, terminal tree, and the HTML page in real Chromium."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from gitartifacts.lineage import LineageGraph
from gitartifacts.lineageview import to_dot, to_html, to_json, to_mermaid, to_tree
from gitartifacts.runrecord import ArtifactRef

# GART_TEST_CHROMIUM points the browser tests at another Chromium build.
CHROMIUM = os.environ.get("GART_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


from lineage_graph import ALIASES, VERSIONS, D, dg, known_runs, make_run  # noqa: E402, F401

TRAIN = "run:20261127T110000Z-000002"
EVAL = "run:20261127T120000Z-000003"
DEPLOY = "run:20261127T130000Z-000004"
MODEL = "artifact:model@v2"


@pytest.fixture
def graph() -> LineageGraph:
    return LineageGraph(known_runs(), VERSIONS, ALIASES)


@pytest.fixture
def around_model(graph: LineageGraph) -> LineageGraph:
    return graph.around("model", D["model"])


# ---------------------------------------------------------------------------------------------
# text formats


def test_json_has_every_node_edge_and_the_whole_run_record(around_model: LineageGraph) -> None:
    data = json.loads(to_json(around_model))
    assert data["gart_lineage"] == 1
    assert data["root"] == MODEL
    assert {n["id"] for n in data["nodes"]} == {n.id for n in around_model.nodes}
    assert {(e["source"], e["target"], e["kind"]) for e in data["edges"]} == {
        (e.source, e.target, e.kind) for e in around_model.edges
    }
    by_id = {n["id"]: n for n in data["nodes"]}
    model = by_id[MODEL]
    assert model == {
        "id": MODEL,
        "kind": "artifact",
        "label": "model@v2",
        "name": "model",
        "version": "v2",
        "digest": D["model"],
        "aliases": ["production", "latest"],
    }
    train = by_id[TRAIN]["run"]
    assert train["command"] == ["python", "train-resnet.py", "--lr", "0.1"]
    assert train["git_commit"] == "ab" * 20 and train["git_dirty"] is True
    assert train["inputs"][0] == {
        "name": "raw-images",
        "version": "v3",
        "requested": "production",
        "digest": D["raw"],
        "path": "data/",
    }
    consumed = next(e for e in data["edges"] if e["target"] == EVAL)
    assert consumed == {
        "source": MODEL,
        "target": EVAL,
        "kind": "consumed",
        "requested": "production",
        "path": "models/",
    }
    assert to_json(around_model) == to_json(around_model)  # deterministic


def test_json_reports_what_depth_cut_off(graph: LineageGraph) -> None:
    data = json.loads(to_json(graph.around("model", D["model"], depth=1)))
    assert data["truncated"] == {
        "upstream": ["artifact:raw-images@v3"],
        "downstream": ["artifact:report@v0"],
    }


def test_dot_declares_every_node_and_edge(around_model: LineageGraph) -> None:
    dot = to_dot(around_model)
    assert dot.startswith("digraph lineage {\n") and dot.endswith("}\n")
    assert "rankdir=LR" in dot
    for node in around_model.nodes:
        assert re.search(rf'^  "{re.escape(node.id)}" \[.*label=', dot, re.M), node.id
    edge_lines = [line for line in dot.splitlines() if " -> " in line]
    assert len(edge_lines) == len(around_model.edges)
    for e in around_model.edges:
        assert any(line.startswith(f'  "{e.source}" -> "{e.target}"') for line in edge_lines)
    assert 'label="@production"' in dot  # raw-images was asked for by alias
    assert re.search(r'"run:20261127T130000Z-000004" \[shape=box.*fillcolor="#fee2e2"', dot)


def test_dot_and_mermaid_escape_hostile_labels() -> None:
    run = replace(known_runs()[0], name='say "hi" \\ [x] <b>#1</b>')
    graph = LineageGraph([run])
    dot = to_dot(graph)
    assert r'label="say \"hi\" \\ [x] <b>#1</b>' in dot
    mermaid = to_mermaid(graph)
    node_line = next(line for line in mermaid.splitlines() if "say" in line)
    label = node_line.split("[", 1)[1]
    assert label.count('"') == 2  # only the delimiters: the quote inside is an entity code
    assert "#34;hi#34;" in label and "<b>" not in label


def test_mermaid_flowchart_has_every_node_and_edge(around_model: LineageGraph) -> None:
    mermaid = to_mermaid(around_model)
    lines = mermaid.splitlines()
    assert lines[0] == "flowchart LR"
    short = dict(re.findall(r"^  %% (n\d+) = (\S+)$", mermaid, re.M))
    assert set(short.values()) == {n.id for n in around_model.nodes}
    ids = {v: k for k, v in short.items()}
    arrow = re.compile(r" -->(?:\|[^|]*\|)? ")
    arrows = {tuple(arrow.split(line.strip())) for line in lines if "-->" in line}
    assert arrows == {(ids[e.source], ids[e.target]) for e in around_model.edges}
    assert f'{ids[MODEL]}(["model@v2 (production, latest)"])' in mermaid
    assert f"class {ids[DEPLOY]} failed" in mermaid


def test_tree_shows_upstream_then_downstream(around_model: LineageGraph) -> None:
    assert to_tree(around_model) == (
        "model@v2  sha256:9372c470eead  (production, latest)\n"
        "├─ produced by run 20261127T110000Z-000002  train-resnet [train] finished\n"
        "│  ├─ consumed labels@v1\n"
        "│  └─ consumed raw-images@v3  via @production\n"
        "│     └─ produced by run 20261127T100000Z-000001  prep [preprocess] finished\n"
        "│        └─ consumed raw-source@v0  via @latest\n"
        "└─ consumed by run 20261127T120000Z-000003  eval-resnet [eval] finished\n"
        "   └─ produced report@v0\n"
        "      └─ consumed by run 20261127T130000Z-000004  deploy [deploy] failed (exit 1)\n"
    )


def test_tree_says_where_depth_cut_and_handles_lone_and_unpublished_roots(
    graph: LineageGraph,
) -> None:
    tree = to_tree(graph.around("model", D["model"], depth=1, downstream=False))
    assert tree.splitlines()[-1] == "      └─ … more upstream (raise --depth)"
    assert "consumed by" not in tree
    lone = to_tree(graph.around("ghost", dg("ghost")))
    assert lone == f"ghost  sha256:{dg('ghost')[7:19]}  (unpublished)\n└─ (no recorded runs)\n"
    metrics = to_tree(graph.around("metrics", D["metrics"], depth=0))
    assert metrics.startswith(f"metrics  sha256:{D['metrics'][7:19]}  (unpublished)\n")


def test_tree_of_the_whole_graph_is_a_forest_from_its_sources(graph: LineageGraph) -> None:
    tree = to_tree(graph)
    blocks = tree.split("\n\n")
    assert [block.splitlines()[0] for block in blocks] == [
        f"labels@v1  sha256:{D['labels'][7:19]}",
        f"raw-source@v0  sha256:{D['src'][7:19]}",
    ]
    assert tree.count("deploy [deploy] failed (exit 1)") == 1
    assert "train-resnet [train] finished  (see above)" in blocks[1]
    assert to_tree(LineageGraph([])) == "(no recorded runs)\n"


def test_tree_of_a_cycle_terminates_and_marks_repeats(graph: LineageGraph) -> None:
    loop = make_run(
        9, "copy", "copy", "1500",
        [ArtifactRef("model", D["model"], "v2", "v2", None)],
        [ArtifactRef("model", D["model"], None, None, None)],
    )  # fmt: skip
    g = LineageGraph([*known_runs(), loop], VERSIONS)
    tree = to_tree(g.around("model", D["model"]))
    assert "produced by run 20261127T150000Z-000009  copy [copy] finished" in tree
    assert "(see above)" in tree
    assert tree.count("train-resnet") == 1


# ---------------------------------------------------------------------------------------------
# the HTML page, statically


def test_html_is_self_contained_and_deterministic(graph: LineageGraph) -> None:
    page = to_html(graph, "lineage")
    assert page == to_html(graph, "lineage")
    # The only URL is the SVG namespace, which is a name, never fetched.
    assert re.findall(r"https?://[^\s\"'<>]+", page) == ["http://www.w3.org/2000/svg"]
    assert not re.search(r"<(?:link|img|iframe|object|embed)\b", page)
    assert not re.search(r"<script[^>]*\ssrc=", page)
    assert "Content-Security-Policy" in page and "default-src 'none'" in page


def test_html_inlines_the_shipped_template_files(graph: LineageGraph) -> None:
    # page.html/.css/.js are package data (editors and linters see real files); the page that
    # comes out still carries all of them inline, and the CSP allows exactly the inlined script.
    folder = resources.files("gitartifacts") / "lineage_page"
    css, js = ((folder / name).read_text(encoding="utf-8") for name in ("page.css", "page.js"))
    assert "@@" not in css + js and "</style" not in css and "</script" not in js.lower()
    page = to_html(graph, "lineage")
    assert f"<style>{css}</style>" in page and f"<script>{js}</script>" in page
    digest = base64.b64encode(hashlib.sha256(js.encode("utf-8")).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in page
    assert "@@" not in page  # every placeholder filled


def test_html_data_cannot_break_out_of_its_script_tag() -> None:
    run = replace(known_runs()[0], name="</script><script>alert(1)</script><!--")
    page = to_html(LineageGraph([run]), "x")
    data = page.split('id="gart-lineage-data">', 1)[1].split("</script>", 1)[0]
    assert "<" not in data and ">" not in data
    assert json.loads(data)["nodes"][-1]["run"]["name"] == run.name


# ---------------------------------------------------------------------------------------------
# the HTML page in real Chromium


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # CI installs Debian's chromium and the playwright package; without them this must fail,
    # never skip, so a missing browser cannot turn the page's tests green.
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} not found: apt-get install -y chromium, or set GART_TEST_CHROMIUM")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: pip install playwright")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


class Opened:
    def __init__(self, page: Any, requests: list[str], problems: list[str]) -> None:
        self.page, self.requests, self.problems = page, requests, problems

    def field(self, name: str) -> str:
        return self.page.locator(f'#gart-details [data-field="{name}"]').inner_text()

    def click_node(self, node_id: str) -> None:
        self.page.click(f'[data-node-id="{node_id}"]')


@pytest.fixture
def open_page(browser: Any, tmp_path: Path) -> Iterator[Any]:
    contexts: list[Any] = []

    def opener(graph: LineageGraph, title: str = "lineage") -> Opened:
        path = tmp_path / "lineage.html"
        path.write_text(to_html(graph, title), encoding="utf-8")
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        contexts.append(context)
        # Fail in seconds, not playwright's default 30 s, when an element never appears.
        context.set_default_timeout(5_000)
        page = context.new_page()
        requests: list[str] = []
        problems: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("dialog", lambda d: (problems.append("dialog: " + d.message), d.dismiss()))
        page.goto(path.as_uri())
        page.wait_for_selector("[data-node-id]")
        return Opened(page, requests, problems)

    yield opener
    for context in contexts:
        context.close()


def test_page_draws_every_node_and_edge_left_to_right(open_page: Any, graph: LineageGraph) -> None:
    opened = open_page(graph)
    page = opened.page
    assert page.locator("[data-node-id]").count() == len(graph.nodes) == 12
    assert page.locator("[data-edge]").count() == len(graph.edges) == 11
    for node in graph.nodes:
        el = page.locator(f'[data-node-id="{node.id}"]')
        assert el.count() == 1 and el.is_visible(), node.id
        assert node.label.split("@")[0] in (el.text_content() or "")
    for e in graph.edges:
        assert page.locator(f'[data-edge="{e.source}->{e.target}"]').count() == 1
    # Geometry: each arrow starts at its source's box and ends at its target's box, to the right.
    boxes = {
        n.id: page.locator(f'[data-node-id="{n.id}"] .shape').bounding_box() for n in graph.nodes
    }
    ends = page.evaluate(
        """() => Array.from(document.querySelectorAll('[data-edge]')).map(p => {
            const m = p.getScreenCTM(), len = p.getTotalLength();
            const a = p.getPointAtLength(0).matrixTransform(m);
            const b = p.getPointAtLength(len).matrixTransform(m);
            return [p.dataset.source, p.dataset.target, a.x, a.y, b.x, b.y];
        })"""
    )
    for source, target, ax, ay, bx, by in ends:
        s, t = boxes[source], boxes[target]
        assert abs(ax - (s["x"] + s["width"])) < 2 and s["y"] <= ay <= s["y"] + s["height"]
        assert abs(bx - t["x"]) < 2 and t["y"] <= by <= t["y"] + t["height"]
        assert bx > ax, f"{source} -> {target} points left"
    assert page.locator('[data-node-id="artifact:model@v2"].artifact').count() == 1
    assert page.locator(f'[data-node-id="{DEPLOY}"].run.status-failed').count() == 1
    assert opened.problems == []
    assert all(url.startswith("file://") for url in opened.requests), opened.requests


def test_clicking_a_run_shows_its_record(open_page: Any, graph: LineageGraph) -> None:
    opened = open_page(graph)
    page = opened.page
    assert "Click a run" in page.locator("#gart-details").inner_text()
    page.click("#gart-fit")
    opened.click_node(TRAIN)
    assert page.locator("#gart-details h2").inner_text() == "train-resnet"
    assert opened.field("id") == "20261127T110000Z-000002"
    assert opened.field("job_type") == "train"
    assert opened.field("status") == "finished"
    assert opened.field("exit_code") == "0"
    assert opened.field("command") == "python train-resnet.py --lr 0.1"
    assert opened.field("git_commit") == "ab" * 20 + " dirty"
    assert opened.field("user") == "alice" and opened.field("host") == "ci-7"
    assert opened.field("started") == "2026-11-27T11:00:00Z"
    assert opened.field("ended") == "2026-11-27T11:00:59Z"
    assert opened.field("duration") == "59s"
    inputs = opened.field("inputs")
    assert "labels@v1" in inputs and "raw-images@v3" in inputs and "as @production" in inputs
    assert "model@v2" in opened.field("outputs") and "eval/metrics.json" in opened.field("outputs")
    assert page.locator(f'[data-node-id="{TRAIN}"].selected').count() == 1
    assert page.locator("[data-edge].related").count() == 4
    assert opened.problems == []


def test_clicking_an_artifact_shows_version_digest_aliases_and_links(
    open_page: Any, around_model: LineageGraph
) -> None:
    opened = open_page(around_model, "model@v2")
    page = opened.page
    page.click("#gart-fit")
    opened.click_node(MODEL)
    assert opened.field("name") == "model"
    assert opened.field("version") == "v2"
    assert opened.field("digest") == D["model"]
    assert opened.field("aliases").split() == ["production", "latest"]
    assert "train-resnet" in opened.field("produced_by")
    assert "eval-resnet" in opened.field("consumed_by")
    # Details link to the neighbours: following one shows that node.
    page.click(f'#gart-details a[data-goto="{EVAL}"]')
    assert opened.field("id") == "20261127T120000Z-000003"
    assert page.locator(f'[data-node-id="{EVAL}"].selected').count() == 1
    page.keyboard.press("Escape")
    assert "Click a run" in page.locator("#gart-details").inner_text()
    assert page.locator(".selected").count() == 0
    assert opened.problems == []


def test_failed_and_running_runs_show_their_state(open_page: Any, graph: LineageGraph) -> None:
    opened = open_page(graph)
    opened.page.click("#gart-fit")
    opened.click_node(DEPLOY)
    assert opened.field("status") == "failed" and opened.field("exit_code") == "1"
    opened.click_node("run:20261127T140000Z-000005")
    assert opened.field("status") == "running"
    assert opened.field("ended") == "—" and opened.field("exit_code") == "—"


def test_hostile_names_show_as_text_and_never_run(open_page: Any) -> None:
    evil = "</script><script>document.title='pwned'</script>"
    run = replace(
        known_runs()[0],
        name=evil,
        command=["sh", "-c", "<img src=x onerror=\"document.title='pwned2'\">"],
    )
    aliases = {("raw-images", D["raw"]): ['"><svg onload=alert(1)>']}
    opened = open_page(LineageGraph([run], {}, aliases), "<b>title</b>")
    page = opened.page
    assert page.title() == "<b>title</b>"
    page.click("#gart-fit")
    opened.click_node(f"run:{run.id}")
    assert page.locator("#gart-details h2").inner_text() == evil
    assert "<img src=x" in opened.field("command")
    assert page.title() == "<b>title</b>"
    opened.click_node(f"artifact:raw-images@sha256:{D['raw'][7:19]}")
    assert opened.field("aliases") == '"><svg onload=alert(1)>'
    assert page.locator("#gart-details img, #gart-details svg").count() == 0
    assert opened.problems == []
