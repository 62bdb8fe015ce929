"""Render a lineage graph as JSON, Graphviz dot, Mermaid, a terminal tree or a standalone page."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from collections import deque
from functools import cache
from importlib import resources
from typing import Any

from gitartifacts.lineage import ArtifactNode, LineageGraph, Node, RunNode, short_digest

JSON_FORMAT_VERSION = 1

# Shared palette: the same colours in dot, mermaid and HTML, so a person recognises the kinds.
_ARTIFACT_FILL, _ARTIFACT_LINE = "#ede9fe", "#6d28d9"
_STATUS_COLOURS = {
    "finished": ("#dcfce7", "#15803d"),
    "failed": ("#fee2e2", "#b91c1c"),
    "running": ("#fef3c7", "#b45309"),
}


# ---------------------------------------------------------------------------------------------
# JSON


def graph_data(graph: LineageGraph) -> dict[str, Any]:
    """The graph as plain data: what `to_json` prints and what the HTML page embeds."""
    nodes: list[dict[str, Any]] = []
    for node in graph.nodes:
        if isinstance(node, ArtifactNode):
            nodes.append(
                {
                    "id": node.id,
                    "kind": "artifact",
                    "label": node.label,
                    "name": node.name,
                    "version": node.version,
                    "digest": node.digest,
                    "aliases": list(node.aliases),
                }
            )
        else:
            nodes.append(
                {"id": node.id, "kind": "run", "label": node.label, "run": node.run.to_dict()}
            )
    edges = [
        {
            "source": e.source,
            "target": e.target,
            "kind": e.kind,
            "requested": e.requested,
            "path": e.path,
        }
        for e in graph.edges
    ]
    return {
        "gart_lineage": JSON_FORMAT_VERSION,
        "root": graph.root,
        "nodes": nodes,
        "edges": edges,
        "truncated": {
            "upstream": sorted(graph.truncated_upstream),
            "downstream": sorted(graph.truncated_downstream),
        },
    }


def to_json(graph: LineageGraph) -> str:
    """Nodes (runs with their whole record, artifact versions) and edges, deterministic."""
    return json.dumps(graph_data(graph), indent=2, ensure_ascii=False) + "\n"


# ---------------------------------------------------------------------------------------------
# Graphviz dot


def _dot_str(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(graph: LineageGraph) -> str:
    """A Graphviz digraph, left to right: runs as boxes, artifact versions as notes."""
    lines = [
        "digraph lineage {",
        '  graph [rankdir=LR, fontname="Helvetica", nodesep=0.3, ranksep=0.6];',
        '  node [fontname="Helvetica", fontsize=10];',
        '  edge [color="#64748b", fontname="Helvetica", fontsize=9];',
    ]
    for node in graph.nodes:
        penwidth = ", penwidth=2.5" if node.id == graph.root else ""
        if isinstance(node, ArtifactNode):
            label = f"{node.label}\n{short_digest(node.digest)}"
            if node.aliases:
                label += "\n(" + ", ".join(node.aliases) + ")"
            attrs = (
                f'shape=note, style=filled, fillcolor="{_ARTIFACT_FILL}", '
                f'color="{_ARTIFACT_LINE}"{penwidth}, label={_dot_str(label)}'
            )
        else:
            run = node.run
            fill, line = _STATUS_COLOURS.get(run.status, ("#f1f5f9", "#475569"))
            label = f"{run.name}\n[{run.job_type}] {_status_text(node)}\n{run.id}"
            attrs = (
                f'shape=box, style="rounded,filled", fillcolor="{fill}", '
                f'color="{line}"{penwidth}, label={_dot_str(label)}'
            )
        lines.append(f"  {_dot_str(node.id)} [{attrs}];")
    for e in graph.edges:
        label = _edge_label(graph, e.source, e.requested)
        attrs = f" [label={_dot_str('@' + label)}]" if label else ""
        lines.append(f"  {_dot_str(e.source)} -> {_dot_str(e.target)}{attrs};")
    lines.append("}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Mermaid


def _mermaid_str(text: str) -> str:
    # Mermaid entity codes keep quotes and markup inside a quoted label from breaking out.
    out = []
    for ch in text:
        if ch in '"#<>&`':
            out.append(f"#{ord(ch)};")
        elif ch in "\r\n":
            out.append(" ")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def to_mermaid(graph: LineageGraph) -> str:
    """A Mermaid flowchart; node ids are n0, n1… with a `%%` comment naming each node."""
    nodes = graph.nodes
    short = {node.id: f"n{i}" for i, node in enumerate(nodes)}
    lines = ["flowchart LR"]
    for node in nodes:
        lines.append(f"  %% {short[node.id]} = {node.id}")
        if isinstance(node, ArtifactNode):
            label = node.label + (" (" + ", ".join(node.aliases) + ")" if node.aliases else "")
            lines.append(f"  {short[node.id]}([{_mermaid_str(label)}])")
        else:
            label = f"{node.run.name} [{node.run.job_type}] {_status_text(node)}"
            lines.append(f"  {short[node.id]}[{_mermaid_str(label)}]")
    for e in graph.edges:
        label = _edge_label(graph, e.source, e.requested)
        arrow = f"-->|{_mermaid_str('@' + label)}|" if label else "-->"
        lines.append(f"  {short[e.source]} {arrow} {short[e.target]}")
    lines.append(f"  classDef artifact fill:{_ARTIFACT_FILL},stroke:{_ARTIFACT_LINE}")
    for status, (fill, line) in _STATUS_COLOURS.items():
        lines.append(f"  classDef {status} fill:{fill},stroke:{line}")
    by_class: dict[str, list[str]] = {}
    for node in nodes:
        cls = "artifact" if isinstance(node, ArtifactNode) else node.run.status
        by_class.setdefault(cls, []).append(short[node.id])
    for cls in sorted(by_class):
        lines.append(f"  class {','.join(by_class[cls])} {cls}")
    if graph.root is not None:
        lines.append(f"  style {short[graph.root]} stroke-width:3px")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# terminal tree


def _status_text(node: RunNode) -> str:
    run = node.run
    if run.status == "failed":
        return "failed" + (f" (exit {run.exit_code})" if run.exit_code is not None else "")
    return run.status


def _asked_by_alias(requested: str | None, node: Node) -> bool:
    """Whether an edge's requested name adds anything beyond the version and aliases shown."""
    if not requested or not isinstance(node, ArtifactNode):
        return False
    return requested != node.version and requested not in node.aliases


def _edge_label(graph: LineageGraph, source: str, requested: str | None) -> str | None:
    return requested if _asked_by_alias(requested, graph.node(source)) else None


def _run_text(node: RunNode) -> str:
    run = node.run
    return f"run {run.id}  {run.name} [{run.job_type}] {_status_text(node)}"


def _artifact_text(node: ArtifactNode) -> str:
    aliases = f" ({', '.join(node.aliases)})" if node.aliases else ""
    return node.label + aliases


def _root_text(node: Node) -> str:
    if isinstance(node, RunNode):
        return _run_text(node)
    version = node.name + "@" + node.version if node.version else node.name
    extra = f"  ({', '.join(node.aliases)})" if node.aliases else ""
    if not node.version:
        extra += "  (unpublished)"
    return f"{version}  {short_digest(node.digest)}{extra}"


def to_tree(graph: LineageGraph, root: str | None = None) -> str:
    """The graph as an indented tree from `root`: upstream branches first, then downstream.

    ```
    model@v2  sha256:ab12cd34ef56  (production)
    ├─ produced by run 20261127T221500Z-3f9a1c  train-resnet [train] finished
    │  ├─ consumed labels@v1
    │  └─ consumed raw-images@v3  via @production
    └─ consumed by run 20261128T090000Z-77aa01  eval-resnet [eval] finished
       └─ produced report@v0
    ```
    A node met a second time is marked "(see above)" and not expanded again. Without a root
    (the whole graph), every node nothing flows into starts a downstream-only tree.
    """
    root = root if root is not None else graph.root
    if root is None:
        return _forest(graph)
    root_node = graph.node(root)
    lines = [_root_text(root_node)]
    seen = {root}
    children = _children(graph, root, "up") + _children(graph, root, "down")
    if not children:
        empty = "no inputs or outputs" if isinstance(root_node, RunNode) else "no recorded runs"
        children = [(f"({empty})", None, "up")]
    _tree_lines(graph, children, "", seen, lines)
    return "\n".join(lines) + "\n"


def _forest(graph: LineageGraph) -> str:
    nodes = graph.nodes
    if not nodes:
        return "(no recorded runs)\n"
    starts = [n.id for n in nodes if not graph.predecessors(n.id)]
    seen: set[str] = set()
    blocks: list[str] = []
    # Pure cycles have no start; whatever is left unseen gets its own tree after the sources.
    for start in [*starts, *(n.id for n in nodes)]:
        if start in seen:
            continue
        seen.add(start)
        lines = [_root_text(graph.node(start))]
        _tree_lines(graph, _children(graph, start, "down"), "", seen, lines)
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


_Child = tuple[str, str | None, str]  # (text, node id to expand or None, direction)


def _children(graph: LineageGraph, node_id: str, direction: str) -> list[_Child]:
    out: list[_Child] = []
    if direction == "up":
        for pid in graph.predecessors(node_id):
            pred = graph.node(pid)
            if isinstance(pred, RunNode):
                out.append(("produced by " + _run_text(pred), pid, "up"))
            else:
                assert isinstance(pred, ArtifactNode)
                edge = graph.edge(pid, node_id)
                via = ""
                if edge is not None and _asked_by_alias(edge.requested, pred):
                    via = f"  via @{edge.requested}"
                out.append(("consumed " + _artifact_text(pred) + via, pid, "up"))
        if node_id in graph.truncated_upstream:
            out.append(("… more upstream (raise --depth)", None, "up"))
    else:
        for sid in graph.successors(node_id):
            succ = graph.node(sid)
            if isinstance(succ, RunNode):
                out.append(("consumed by " + _run_text(succ), sid, "down"))
            else:
                assert isinstance(succ, ArtifactNode)
                out.append(("produced " + _artifact_text(succ), sid, "down"))
        if node_id in graph.truncated_downstream:
            out.append(("… more downstream (raise --depth)", None, "down"))
    return out


def _tree_lines(
    graph: LineageGraph, children: list[_Child], prefix: str, seen: set[str], lines: list[str]
) -> None:
    # Iterative, because a long pipeline history would overflow Python's recursion limit.
    stack: list[tuple[list[_Child], int, str]] = [(children, 0, prefix)]
    while stack:
        items, index, pre = stack.pop()
        if index >= len(items):
            continue
        stack.append((items, index + 1, pre))
        text, node_id, direction = items[index]
        last = index == len(items) - 1
        branch, carry = ("└─ ", "   ") if last else ("├─ ", "│  ")
        if node_id is not None and node_id in seen:
            lines.append(pre + branch + text + "  (see above)")
            continue
        lines.append(pre + branch + text)
        if node_id is not None:
            seen.add(node_id)
            grand = _children(graph, node_id, direction)
            if grand:
                stack.append((grand, 0, pre + carry))


# ---------------------------------------------------------------------------------------------
# layout for the HTML page

NODE_W, NODE_H = 236, 54
COL_GAP, ROW_GAP = 96, 22
PAD = 40


def layout(graph: LineageGraph) -> dict[str, tuple[float, float]]:
    """Top-left corner of every node: layers left to right (longest path), barycenter order."""
    ids = [n.id for n in graph.nodes]
    if not ids:
        return {}
    succ = {i: graph.successors(i) for i in ids}
    # Break cycles (a run that consumed and re-produced the same content) with a DFS: back
    # edges are ignored for layering only; they are still drawn.
    back: set[tuple[str, str]] = set()
    state: dict[str, int] = {}  # 1 = on the DFS stack, 2 = done
    for start in ids:
        if start in state:
            continue
        state[start] = 1
        stack = [(start, iter(succ[start]))]
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                back.add((node, nxt))
            elif nxt not in state:
                state[nxt] = 1
                stack.append((nxt, iter(succ[nxt])))
    dag_succ = {i: [s for s in succ[i] if (i, s) not in back] for i in ids}
    dag_pred: dict[str, list[str]] = {i: [] for i in ids}
    for i in ids:
        for s in dag_succ[i]:
            dag_pred[s].append(i)
    # Longest-path layering in Kahn order.
    indeg = {i: len(dag_pred[i]) for i in ids}
    queue = deque(i for i in ids if indeg[i] == 0)
    topo: list[str] = []
    layer: dict[str, int] = {}
    while queue:
        node = queue.popleft()
        topo.append(node)
        layer[node] = max((layer[p] + 1 for p in dag_pred[node]), default=0)
        for s in dag_succ[node]:
            indeg[s] -= 1
            if indeg[s] == 0:
                queue.append(s)
    # Pull sources right, next to their first consumer, instead of stacking them all in
    # column 0 with long edges across the page.
    for node in reversed(topo):
        if not dag_pred[node] and dag_succ[node]:
            layer[node] = max(0, min(layer[s] for s in dag_succ[node]) - 1)
    layers: dict[int, list[str]] = {}
    for node in topo:
        layers.setdefault(layer[node], []).append(node)
    depth = max(layers) + 1
    order = [layers.get(i, []) for i in range(depth)]
    pos = {n: k for row in order for k, n in enumerate(row)}
    for _ in range(4):
        for li in range(1, depth):
            _barycenter_sort(order[li], dag_pred, pos)
        for li in range(depth - 2, -1, -1):
            _barycenter_sort(order[li], dag_succ, pos)
    tallest = max(len(row) for row in order)
    coords: dict[str, tuple[float, float]] = {}
    for li, row in enumerate(order):
        offset = (tallest - len(row)) * (NODE_H + ROW_GAP) / 2
        for k, node in enumerate(row):
            coords[node] = (PAD + li * (NODE_W + COL_GAP), PAD + offset + k * (NODE_H + ROW_GAP))
    return coords


def _barycenter_sort(row: list[str], neighbours: dict[str, list[str]], pos: dict[str, int]) -> None:
    def key(node: str) -> tuple[float, int]:
        ns = neighbours[node]
        bary = sum(pos[n] for n in ns) / len(ns) if ns else float(pos[node])
        return (bary, pos[node])

    row.sort(key=key)
    for k, node in enumerate(row):
        pos[node] = k


# ---------------------------------------------------------------------------------------------
# HTML


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _fit(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _script_json(data: Any) -> str:
    # Inside <script>, "</script>" or "<!--" in the data would end or confuse the element;
    # escaping every <, > and & as \\u00XX keeps the JSON identical after JSON.parse.
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _svg(graph: LineageGraph, coords: dict[str, tuple[float, float]]) -> tuple[str, float, float]:
    width = max((x for x, _ in coords.values()), default=0) + NODE_W + PAD
    height = max((y for _, y in coords.values()), default=0) + NODE_H + PAD
    parts: list[str] = []
    for e in graph.edges:
        x1, y1 = coords[e.source]
        x2, y2 = coords[e.target]
        sx, sy = x1 + NODE_W, y1 + NODE_H / 2
        tx, ty = x2, y2 + NODE_H / 2
        bend = max(40.0, abs(tx - sx) / 2)
        d = (
            f"M{sx:.1f},{sy:.1f} C{sx + bend:.1f},{sy:.1f} "
            f"{tx - bend:.1f},{ty:.1f} {tx:.1f},{ty:.1f}"
        )
        title = f"{e.source} → {e.target}" + (f" (as @{e.requested})" if e.requested else "")
        parts.append(
            f'<path class="edge {e.kind}" data-edge="{_esc(e.source)}-&gt;{_esc(e.target)}" '
            f'data-source="{_esc(e.source)}" data-target="{_esc(e.target)}" d="{d}">'
            f"<title>{_esc(title)}</title></path>"
        )
    for node in graph.nodes:
        x, y = coords[node.id]
        classes = ["node", node.kind]
        if node.id == graph.root:
            classes.append("root")
        if node.id in graph.truncated_upstream or node.id in graph.truncated_downstream:
            classes.append("truncated")
        if isinstance(node, RunNode):
            run = node.run
            classes.append(f"status-{run.status}")
            title = _fit(run.name, 25)
            sub = _fit(f"{run.job_type} · {_status_text(node)}", 29)
            tip = f"run {run.name} [{run.job_type}] {_status_text(node)}\n{run.id}"
            shape = (
                f'<rect class="shape" width="{NODE_W}" height="{NODE_H}" rx="7"/>'
                f'<rect class="stripe" x="0" y="0" width="7" height="{NODE_H}" rx="3"/>'
            )
            text_x = 18
        else:
            assert isinstance(node, ArtifactNode)
            # Unpublished versions have no short name: the digest goes on the second line.
            title = _fit(node.label if node.version else node.name, 24)
            sub_parts = [short_digest(node.digest, 8)]
            if node.aliases:
                sub_parts.append(", ".join(node.aliases))
            elif not node.version:
                sub_parts.append("unpublished")
            sub = _fit(" · ".join(sub_parts), 28)
            tip = f"{node.label}\n{node.digest}"
            r = NODE_H / 2
            shape = f'<rect class="shape" width="{NODE_W}" height="{NODE_H}" rx="{r}"/>'
            text_x = 24
        parts.append(
            f'<g class="{" ".join(classes)}" data-node-id="{_esc(node.id)}" '
            f'transform="translate({x:.1f},{y:.1f})" tabindex="0" role="button" '
            f'aria-label="{_esc(node.kind + " " + node.label)}">'
            f"<title>{_esc(tip)}</title>{shape}"
            f'<text class="title" x="{text_x}" y="23">{_esc(title)}</text>'
            f'<text class="sub" x="{text_x}" y="41">{_esc(sub)}</text></g>'
        )
    return "\n".join(parts), width, height


def to_html(graph: LineageGraph, title: str = "gart lineage") -> str:
    """One self-contained page (inline CSS, JS and SVG; no network) drawing the lineage DAG."""
    coords = layout(graph)
    svg_body, width, height = _svg(graph, coords)
    data = graph_data(graph)
    data["title"] = title
    data["layout"] = {"width": width, "height": height}
    runs = sum(1 for n in data["nodes"] if n["kind"] == "run")
    artifacts = len(data["nodes"]) - runs
    stats = f"{runs} run{'s' * (runs != 1)} · {artifacts} artifact version{'s' * (artifacts != 1)}"
    page, css, script = (_asset(name) for name in ("page.html", "page.css", "page.js"))
    # The page allows exactly this script and nothing from anywhere else (no CDN, no network).
    script_hash = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode()
    csp = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        f"script-src 'sha256-{script_hash}'"
    )
    values = {
        "CSP": html.escape(csp, quote=False),  # our own text, inside a double-quoted attribute
        "TITLE": _esc(title),
        "STATS": _esc(stats),
        "CSS": css,
        "W": f"{width:.0f}",
        "H": f"{height:.0f}",
        "NW": str(NODE_W),
        "NH": str(NODE_H),
        "SVG": svg_body,
        "DATA": _script_json(data),
        "JS": script,
    }
    # One pass over the template only: placeholders that appear in user data stay literal.
    return re.sub(r"@@([A-Z]+)@@", lambda m: values[m.group(1)], page)


PAGE_ASSETS = "lineage_page"  # package data beside this module: page.html, page.css, page.js


@cache
def _asset(name: str) -> str:
    """One file of the page's template, shipped as package data and inlined into every page."""
    return (resources.files("gitartifacts") / PAGE_ASSETS / name).read_text(encoding="utf-8")
