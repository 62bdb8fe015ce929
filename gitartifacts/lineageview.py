"""Render a lineage graph as JSON, Graphviz dot, Mermaid, a terminal tree or a standalone page."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from collections import deque
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
    script = _JS
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
        "CSS": _CSS,
        "W": f"{width:.0f}",
        "H": f"{height:.0f}",
        "NW": str(NODE_W),
        "NH": str(NODE_H),
        "SVG": svg_body,
        "DATA": _script_json(data),
        "JS": script,
    }
    # One pass over the template only: placeholders that appear in user data stay literal.
    return re.sub(r"@@([A-Z]+)@@", lambda m: values[m.group(1)], _PAGE)


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="@@CSP@@">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>@@TITLE@@</title>
<style>@@CSS@@</style>
</head>
<body>
<header>
  <h1>@@TITLE@@</h1>
  <span class="stats">@@STATS@@</span>
  <input id="gart-search" type="search" placeholder="Find a run or artifact  ( / )"
         aria-label="Find a node" autocomplete="off">
  <div class="buttons">
    <button type="button" id="gart-zoom-in" title="Zoom in">+</button>
    <button type="button" id="gart-zoom-out" title="Zoom out">−</button>
    <button type="button" id="gart-fit" title="Fit the graph to the window">Fit</button>
  </div>
</header>
<main>
  <svg id="gart-graph" xmlns="http://www.w3.org/2000/svg" role="img"
       aria-label="lineage graph" data-width="@@W@@" data-height="@@H@@"
       data-node-w="@@NW@@" data-node-h="@@NH@@">
    <defs>
      <marker id="gart-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7"
              markerHeight="7" orient="auto-start-reverse">
        <path d="M0,0 L10,5 L0,10 z" class="arrow"/>
      </marker>
      <marker id="gart-arrow-hi" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7"
              markerHeight="7" orient="auto-start-reverse">
        <path d="M0,0 L10,5 L0,10 z" class="arrow-hi"/>
      </marker>
    </defs>
    <g id="gart-viewport">
@@SVG@@
    </g>
  </svg>
  <aside id="gart-details" aria-live="polite">
    <div class="empty">
      <p>Click a run or an artifact version to see its details.</p>
      <ul class="legend">
        <li><span class="swatch artifact"></span>artifact version</li>
        <li><span class="swatch run finished"></span>run, finished</li>
        <li><span class="swatch run failed"></span>run, failed</li>
        <li><span class="swatch run running"></span>run, running or interrupted</li>
      </ul>
      <p class="hint">Drag to pan, scroll to zoom, Esc to clear.</p>
    </div>
  </aside>
</main>
<script type="application/json" id="gart-lineage-data">@@DATA@@</script>
<script>@@JS@@</script>
</body>
</html>
"""

_CSS = """
:root {
  --bg: #f8fafc; --panel: #ffffff; --fg: #0f172a; --muted: #64748b; --line: #e2e8f0;
  --edge: #94a3b8; --edge-hi: #2563eb; --accent: #2563eb;
  --art-fill: #f5f3ff; --art-line: #7c3aed; --art-text: #4c1d95;
  --run-fill: #ffffff; --run-line: #cbd5e1;
  --ok: #16a34a; --bad: #dc2626; --warn: #d97706;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0b1120; --panel: #111827; --fg: #e5e7eb; --muted: #94a3b8; --line: #1f2937;
    --edge: #475569; --edge-hi: #60a5fa; --accent: #60a5fa;
    --art-fill: #1e1b4b; --art-line: #a78bfa; --art-text: #ddd6fe;
    --run-fill: #0f172a; --run-line: #334155;
  }
}
* { box-sizing: border-box; }
html, body { height: 100%; margin: 0; }
body {
  display: flex; flex-direction: column; background: var(--bg); color: var(--fg);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
}
header {
  display: flex; align-items: center; gap: 16px; padding: 10px 18px;
  border-bottom: 1px solid var(--line); background: var(--panel);
}
header h1 { font-size: 16px; margin: 0; font-weight: 650; }
header .stats { color: var(--muted); font-size: 13px; }
#gart-search {
  margin-left: auto; width: 280px; padding: 6px 10px; border-radius: 6px;
  border: 1px solid var(--line); background: var(--bg); color: var(--fg); font: inherit;
}
.buttons { display: flex; gap: 4px; }
button {
  font: inherit; min-width: 34px; padding: 5px 10px; border-radius: 6px; cursor: pointer;
  border: 1px solid var(--line); background: var(--bg); color: var(--fg);
}
button:hover { border-color: var(--accent); }
main { flex: 1; display: flex; min-height: 0; }
#gart-graph { flex: 1; min-width: 0; height: 100%; cursor: grab; user-select: none; }
#gart-graph.panning { cursor: grabbing; }
#gart-details {
  width: 380px; flex: none; overflow: auto; padding: 18px 20px;
  border-left: 1px solid var(--line); background: var(--panel);
}
.edge { fill: none; stroke: var(--edge); stroke-width: 1.6; marker-end: url(#gart-arrow); }
.arrow { fill: var(--edge); }
.arrow-hi { fill: var(--edge-hi); }
.node { cursor: pointer; }
.node:focus { outline: none; }
.node .shape { stroke-width: 1.5; }
.node.run .shape { fill: var(--run-fill); stroke: var(--run-line); }
.node.run .stripe { fill: var(--muted); }
.node.status-finished .stripe { fill: var(--ok); }
.node.status-failed .stripe { fill: var(--bad); }
.node.status-running .stripe { fill: var(--warn); }
.node.artifact .shape { fill: var(--art-fill); stroke: var(--art-line); }
.node.artifact .title { fill: var(--art-text); }
.node .title { font-size: 13px; font-weight: 600; fill: var(--fg); }
.node .sub { font-size: 11.5px; fill: var(--muted); font-family: ui-monospace, monospace; }
.node.root .shape { stroke-width: 3; }
.node.truncated .shape { stroke-dasharray: 5 3; }
.node:hover .shape, .node:focus-visible .shape { stroke: var(--accent); }
.node.match .shape { stroke: var(--warn); stroke-width: 3; }
#gart-graph.has-selection .node { opacity: 0.35; }
#gart-graph.has-selection .edge { opacity: 0.2; }
#gart-graph.has-selection .node.related,
#gart-graph.has-selection .node.selected { opacity: 1; }
#gart-graph.has-selection .edge.related {
  opacity: 1; stroke: var(--edge-hi); stroke-width: 2.4; marker-end: url(#gart-arrow-hi);
}
.node.selected .shape { stroke: var(--accent); stroke-width: 3.5; }
#gart-details h2 { font-size: 18px; margin: 6px 0 4px; word-break: break-all; }
#gart-details .kind {
  display: inline-block; font-size: 11px; font-weight: 700; letter-spacing: .06em;
  text-transform: uppercase; padding: 2px 8px; border-radius: 999px;
  background: var(--art-fill); color: var(--art-text); border: 1px solid var(--art-line);
}
#gart-details .kind.run { background: var(--bg); color: var(--fg); border-color: var(--run-line); }
#gart-details dl { display: grid; grid-template-columns: 96px 1fr; gap: 6px 12px; margin: 14px 0; }
#gart-details dt { color: var(--muted); font-size: 12.5px; padding-top: 1px; }
#gart-details dd { margin: 0; word-break: break-word; }
#gart-details code, #gart-details pre {
  font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12.5px;
}
#gart-details pre {
  margin: 0; padding: 8px 10px; border-radius: 6px; background: var(--bg);
  border: 1px solid var(--line); white-space: pre-wrap; word-break: break-all;
}
#gart-details ul.refs { list-style: none; margin: 0; padding: 0; }
#gart-details ul.refs li { margin: 0 0 4px; }
#gart-details a { color: var(--accent); text-decoration: none; cursor: pointer; }
#gart-details a:hover { text-decoration: underline; }
.note { color: var(--muted); font-size: 12.5px; }
.pill {
  display: inline-block; padding: 0 7px; border-radius: 999px; font-size: 12px;
  border: 1px solid var(--line); margin: 0 4px 2px 0;
}
.pill.finished { color: var(--ok); border-color: var(--ok); }
.pill.failed { color: var(--bad); border-color: var(--bad); }
.pill.running, .pill.dirty { color: var(--warn); border-color: var(--warn); }
.empty p { color: var(--muted); }
.legend { list-style: none; padding: 0; margin: 16px 0; }
.legend li { display: flex; align-items: center; gap: 10px; margin: 8px 0; }
.swatch { width: 34px; height: 18px; border-radius: 4px; border: 1.5px solid var(--run-line); }
.swatch.artifact { border-radius: 9px; background: var(--art-fill); border-color: var(--art-line); }
.swatch.run { background: var(--run-fill); border-left: 6px solid var(--muted); }
.swatch.run.finished { border-left-color: var(--ok); }
.swatch.run.failed { border-left-color: var(--bad); }
.swatch.run.running { border-left-color: var(--warn); }
.hint { font-size: 12.5px; }
"""

_JS = r"""
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("gart-lineage-data").textContent);
  var svg = document.getElementById("gart-graph");
  var viewport = document.getElementById("gart-viewport");
  var panel = document.getElementById("gart-details");
  var search = document.getElementById("gart-search");
  var nodes = new Map(), nodeEls = new Map(), incoming = new Map(), outgoing = new Map();
  data.nodes.forEach(function (n) {
    nodes.set(n.id, n); incoming.set(n.id, []); outgoing.set(n.id, []);
  });
  data.edges.forEach(function (e) {
    outgoing.get(e.source).push(e); incoming.get(e.target).push(e);
  });
  document.querySelectorAll("[data-node-id]").forEach(function (el) {
    nodeEls.set(el.getAttribute("data-node-id"), el);
  });
  var edgeEls = Array.prototype.slice.call(document.querySelectorAll("[data-edge]"));
  var emptyPanel = panel.innerHTML;
  var NODE_W = +svg.getAttribute("data-node-w"), NODE_H = +svg.getAttribute("data-node-h");
  var selected = null;

  function h(tag, cls, text) {
    var el = document.createElement(tag);
    if (cls) el.className = cls;
    if (text !== undefined && text !== null) el.textContent = String(text);
    return el;
  }
  function link(id) {
    var n = nodes.get(id);
    var a = h("a", "goto", n ? n.label : id);
    a.href = "#";
    a.setAttribute("data-goto", id);
    a.addEventListener("click", function (ev) { ev.preventDefault(); select(id, true); });
    return a;
  }
  function shellQuote(arg) {
    return /^[A-Za-z0-9_.\/:=@%+,-]+$/.test(arg) ? arg : "'" + arg.replace(/'/g, "'\\''") + "'";
  }
  function duration(a, b) {
    if (!a || !b) return null;
    var s = Math.round((Date.parse(b) - Date.parse(a)) / 1000);
    if (!(s >= 0)) return null;
    var hh = Math.floor(s / 3600), mm = Math.floor(s % 3600 / 60), ss = s % 60;
    return (hh ? hh + "h " : "") + (hh || mm ? mm + "m " : "") + ss + "s";
  }
  function row(dl, label, value, key) {
    var dt = h("dt", null, label), dd = h("dd");
    dd.setAttribute("data-field", key);
    if (value instanceof Node) dd.appendChild(value);
    else if (value === null || value === undefined || value === "") {
      dd.appendChild(h("span", "note", "—"));
    }
    else dd.textContent = String(value);
    dl.appendChild(dt); dl.appendChild(dd);
  }
  function refList(edges, end, other) {
    if (!edges.length) return h("span", "note", "none recorded");
    var ul = h("ul", "refs");
    edges.forEach(function (e) {
      var li = h("li");
      li.appendChild(link(e[end]));
      var bits = [];
      var n = nodes.get(e[end]);
      if (other && n && n.run) bits.push("[" + n.run.job_type + "] " + n.run.started);
      if (e.requested) bits.push("as @" + e.requested);
      if (e.path) bits.push(e.path);
      if (bits.length) li.appendChild(h("span", "note", "  " + bits.join(" · ")));
      ul.appendChild(li);
    });
    return ul;
  }
  function showDetails(n) {
    panel.textContent = "";
    panel.setAttribute("data-selected", n.id);
    var head = h("div");
    head.appendChild(h("span", "kind " + n.kind, n.kind === "run" ? "run" : "artifact version"));
    panel.appendChild(head);
    var dl = h("dl");
    if (n.kind === "run") {
      var r = n.run;
      panel.appendChild(h("h2", null, r.name));
      row(dl, "Run ID", h("code", null, r.id), "id");
      row(dl, "Job type", r.job_type, "job_type");
      row(dl, "Status", h("span", "pill " + r.status, r.status), "status");
      row(dl, "Exit code", r.exit_code, "exit_code");
      row(dl, "Command", h("pre", null, r.command.map(shellQuote).join(" ")), "command");
      var git = h("span");
      if (r.git_commit) git.appendChild(h("code", null, r.git_commit));
      else git.appendChild(h("span", "note", "not recorded"));
      if (r.git_dirty) {
        git.appendChild(document.createTextNode(" "));
        git.appendChild(h("span", "pill dirty", "dirty"));
      }
      row(dl, "Git commit", git, "git_commit");
      row(dl, "User", r.user, "user");
      row(dl, "Host", r.host, "host");
      row(dl, "Started", r.started, "started");
      row(dl, "Ended", r.ended, "ended");
      row(dl, "Duration", duration(r.started, r.ended), "duration");
      row(dl, "Inputs", refList(incoming.get(n.id), "source", false), "inputs");
      row(dl, "Outputs", refList(outgoing.get(n.id), "target", false), "outputs");
    } else {
      panel.appendChild(h("h2", null, n.label));
      row(dl, "Name", n.name, "name");
      row(dl, "Version", n.version || "unpublished", "version");
      row(dl, "Digest", h("code", null, n.digest), "digest");
      var al = h("span");
      n.aliases.forEach(function (a, i) {
        if (i) al.appendChild(document.createTextNode(" "));
        al.appendChild(h("span", "pill", a));
      });
      row(dl, "Aliases", n.aliases.length ? al : null, "aliases");
      row(dl, "Produced by", refList(incoming.get(n.id), "source", true), "produced_by");
      row(dl, "Consumed by", refList(outgoing.get(n.id), "target", true), "consumed_by");
    }
    panel.appendChild(dl);
    var tr = [];
    if (data.truncated.upstream.indexOf(n.id) >= 0) tr.push("upstream");
    if (data.truncated.downstream.indexOf(n.id) >= 0) tr.push("downstream");
    if (tr.length) {
      var more = "More " + tr.join(" and ") + " lineage exists beyond this page's depth.";
      panel.appendChild(h("p", "note", more));
    }
    panel.appendChild(h("p", "note", n.id));
  }
  function select(id, center) {
    var n = nodes.get(id);
    if (!n) return;
    selected = id;
    svg.classList.add("has-selection");
    nodeEls.forEach(function (el, nid) {
      el.classList.toggle("selected", nid === id);
      el.classList.remove("related");
    });
    edgeEls.forEach(function (el) {
      var s = el.getAttribute("data-source"), t = el.getAttribute("data-target");
      var on = s === id || t === id;
      el.classList.toggle("related", on);
      if (on) nodeEls.get(s === id ? t : s).classList.add("related");
    });
    showDetails(n);
    if (center) centerOn(id);
    setHash("#" + encodeURIComponent(id));
  }
  function setHash(url) {
    try { history.replaceState(null, "", url); } catch (e) { /* some file:// setups refuse */ }
  }
  function clearSelection() {
    selected = null;
    svg.classList.remove("has-selection");
    nodeEls.forEach(function (el) { el.classList.remove("selected", "related"); });
    edgeEls.forEach(function (el) { el.classList.remove("related"); });
    panel.innerHTML = emptyPanel;
    panel.removeAttribute("data-selected");
    setHash(location.pathname + location.search);
  }

  // Pan and zoom by a transform on one group: cheap even for thousands of nodes.
  var view = { x: 0, y: 0, k: 1 };
  function apply() {
    var t = "translate(" + view.x + "," + view.y + ") scale(" + view.k + ")";
    viewport.setAttribute("transform", t);
  }
  function fit() {
    var w = svg.clientWidth || 800, hgt = svg.clientHeight || 600;
    var gw = +svg.getAttribute("data-width"), gh = +svg.getAttribute("data-height");
    view.k = Math.min(1.25, w / gw, hgt / gh);
    view.x = (w - gw * view.k) / 2; view.y = (hgt - gh * view.k) / 2;
    apply();
  }
  function initialView() {
    // Fit when the text stays readable; otherwise keep a readable scale and start at the root.
    fit();
    if (view.k >= 0.55) return;
    view.k = 0.55;
    var root = data.root && nodeEls.get(data.root);
    if (root) { view.x = 0; view.y = 0; centerOn(data.root, true); return; }
    var hgt = svg.clientHeight || 600, gh = +svg.getAttribute("data-height");
    view.x = 0; view.y = Math.max(0, (hgt - gh * view.k) / 2); apply();
  }
  function trimLabels() {
    // Fonts differ per platform: shorten any label that still overflows its box.
    document.querySelectorAll(".node text").forEach(function (t) {
      var max = NODE_W - (+t.getAttribute("x")) - 12, s = t.textContent;
      if (!t.getComputedTextLength || t.getComputedTextLength() <= max) return;
      while (s.length > 1 && t.getComputedTextLength() > max) {
        s = s.slice(0, -1); t.textContent = s + "…";
      }
    });
  }
  function zoomAt(factor, cx, cy) {
    var k = Math.max(0.05, Math.min(4, view.k * factor));
    view.x = cx - (cx - view.x) * (k / view.k);
    view.y = cy - (cy - view.y) * (k / view.k);
    view.k = k;
    apply();
  }
  function centerOn(id, always) {
    var el = nodeEls.get(id);
    var m = /translate\(([-\d.]+),([-\d.]+)\)/.exec(el.getAttribute("transform"));
    var w = svg.clientWidth, hgt = svg.clientHeight;
    var bx = +m[1] + NODE_W / 2, by = +m[2] + NODE_H / 2;
    var sx = view.x + bx * view.k, sy = view.y + by * view.k;
    if (always || sx < 40 || sy < 40 || sx > w - 40 || sy > hgt - 40) {
      view.x = w / 2 - bx * view.k; view.y = hgt / 2 - by * view.k; apply();
    }
  }
  var drag = null;
  svg.addEventListener("pointerdown", function (ev) {
    if (ev.button !== 0 || ev.target.closest("[data-node-id]")) return;
    drag = { x: ev.clientX, y: ev.clientY, vx: view.x, vy: view.y, moved: false };
    svg.setPointerCapture(ev.pointerId);
  });
  svg.addEventListener("pointermove", function (ev) {
    if (!drag) return;
    var dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
    if (Math.abs(dx) + Math.abs(dy) > 3) { drag.moved = true; svg.classList.add("panning"); }
    view.x = drag.vx + dx; view.y = drag.vy + dy; apply();
  });
  svg.addEventListener("pointerup", function () {
    if (drag && !drag.moved) clearSelection();
    drag = null; svg.classList.remove("panning");
  });
  svg.addEventListener("wheel", function (ev) {
    ev.preventDefault();
    var r = svg.getBoundingClientRect();
    zoomAt(Math.exp(-ev.deltaY * 0.0015), ev.clientX - r.left, ev.clientY - r.top);
  }, { passive: false });
  nodeEls.forEach(function (el, id) {
    el.addEventListener("click", function () { select(id, false); });
    el.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); select(id, false); }
    });
  });
  document.getElementById("gart-fit").addEventListener("click", fit);
  function zoomCentre(f) { zoomAt(f, svg.clientWidth / 2, svg.clientHeight / 2); }
  var zin = document.getElementById("gart-zoom-in");
  var zout = document.getElementById("gart-zoom-out");
  zin.addEventListener("click", function () { zoomCentre(1.25); });
  zout.addEventListener("click", function () { zoomCentre(0.8); });
  function matches(q) {
    q = q.trim().toLowerCase();
    var hits = [];
    nodeEls.forEach(function (el, id) {
      var n = nodes.get(id);
      var extra = n.run ? n.run.job_type : (n.aliases || []).join(" ");
      var hay = (id + " " + n.label + " " + extra).toLowerCase();
      var on = q !== "" && hay.indexOf(q) >= 0;
      el.classList.toggle("match", on);
      if (on) hits.push(id);
    });
    return hits;
  }
  search.addEventListener("input", function () { matches(search.value); });
  search.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter") {
      var hits = matches(search.value);
      if (hits.length) select(hits[0], true);
    }
    if (ev.key === "Escape") { search.value = ""; matches(""); search.blur(); }
  });
  document.addEventListener("keydown", function (ev) {
    if (ev.target === search) return;
    if (ev.key === "Escape") clearSelection();
    if (ev.key === "/") { ev.preventDefault(); search.focus(); }
  });
  window.addEventListener("resize", fit);
  trimLabels();
  initialView();
  var start = decodeURIComponent(location.hash.slice(1));
  if (nodes.has(start)) select(start, true);
})();
"""
