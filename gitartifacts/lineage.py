"""The lineage graph: runs and artifact versions joined on (name, digest), and its queries."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from gitartifacts.runrecord import ArtifactRef, RunRecord, filter_runs, newest_first_key

# ---------------------------------------------------------------------------------------------
# the lineage graph


@dataclass(frozen=True)
class ArtifactNode:
    """One artifact version in the graph: a (name, digest), labelled with its version if any."""

    id: str
    name: str
    digest: str
    version: str | None
    aliases: tuple[str, ...] = ()

    kind: Literal["artifact"] = "artifact"

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version or short_digest(self.digest)}"


@dataclass(frozen=True)
class RunNode:
    """One run in the graph."""

    id: str
    run: RunRecord

    kind: Literal["run"] = "run"

    @property
    def label(self) -> str:
        return self.run.name


Node = ArtifactNode | RunNode


@dataclass(frozen=True)
class Edge:
    """artifact -> run ('consumed') or run -> artifact ('produced')."""

    source: str
    target: str
    kind: Literal["consumed", "produced"]
    requested: str | None = None
    path: str | None = None


def short_digest(digest: str, hex_chars: int = 12) -> str:
    algo, _, hexpart = digest.partition(":")
    return f"{algo}:{hexpart[:hex_chars]}"


def run_node_id(run_id: str) -> str:
    return "run:" + run_id


Key = tuple[str, str]  # (artifact name, digest)
# Inside the graph a node is a run id (str) or an artifact Key (tuple): cheap to make and hash.
_Handle = str | Key


class LineageGraph:
    """Runs and artifact versions joined on (name, digest); edges artifact->run->artifact.

    Building it only indexes who produced and consumed what, so a 10k-run graph costs a few
    tens of milliseconds; node objects and ids are made on first use, for queries' small
    subgraphs as a rule.
    """

    def __init__(
        self,
        runs: Iterable[RunRecord],
        versions: Mapping[Key, str] | None = None,
        aliases: Mapping[Key, Sequence[str]] | None = None,
    ) -> None:
        self._versions: Mapping[Key, str] = versions or {}
        self._aliases: Mapping[Key, Sequence[str]] = aliases or {}
        self._runs: dict[str, RunRecord] = {r.id: r for r in runs}
        self._keys: set[Key] | None = None  # None: every artifact some run touches
        self._index()
        self.root: str | None = None
        self._cut_up: set[_Handle] = set()
        self._cut_down: set[_Handle] = set()

    def _index(self) -> None:
        produced: dict[Key, list[str]] = {}
        consumed: dict[Key, list[str]] = {}
        keys = self._keys
        for run in self._runs.values():
            rid = run.id
            for ref in run.inputs:
                key = (ref.name, ref.digest)
                if keys is None or key in keys:
                    consumed.setdefault(key, []).append(rid)
            for ref in run.outputs:
                key = (ref.name, ref.digest)
                if keys is None or key in keys:
                    produced.setdefault(key, []).append(rid)
        self._produced_by = produced
        self._consumed_by = consumed
        self._cache: _Materialized | None = None

    # -- basic access ------------------------------------------------------------------------

    @property
    def nodes(self) -> list[Node]:
        """All nodes, artifacts first, each kind sorted by id."""
        m = self._materialized()
        return sorted(m.nodes.values(), key=lambda n: (n.kind != "artifact", n.id))

    @property
    def edges(self) -> list[Edge]:
        """All edges, sorted by (source, target)."""
        m = self._materialized()
        return [m.edges[k] for k in sorted(m.edges)]

    @property
    def runs(self) -> list[RunRecord]:
        """The runs in the graph, newest first."""
        return sorted(self._runs.values(), key=newest_first_key, reverse=True)

    @property
    def truncated_upstream(self) -> frozenset[str]:
        """Node ids whose further upstream was cut off by `depth`."""
        return frozenset(self._materialized().ids[h] for h in self._cut_up)

    @property
    def truncated_downstream(self) -> frozenset[str]:
        """Node ids whose further downstream was cut off by `depth`."""
        return frozenset(self._materialized().ids[h] for h in self._cut_down)

    def node(self, node_id: str) -> Node:
        return self._materialized().nodes[node_id]

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._materialized().nodes

    def __len__(self) -> int:
        return len(self._materialized().nodes)

    def artifact_node_id(self, name: str, digest: str) -> str | None:
        """The node id of (name, digest) in this graph, or None when it is not in it."""
        return self._materialized().ids.get((name, digest))

    def predecessors(self, node_id: str) -> list[str]:
        m = self._materialized()
        return sorted(set(m.pred.get(node_id, ())), key=self._order_key)

    def successors(self, node_id: str) -> list[str]:
        m = self._materialized()
        return sorted(set(m.succ.get(node_id, ())), key=self._order_key)

    def edge(self, source: str, target: str) -> Edge | None:
        return self._materialized().edges.get((source, target))

    def _order_key(self, node_id: str) -> tuple[Any, ...]:
        # One deterministic child order for every renderer: artifacts by name and version,
        # runs oldest first.
        node = self._materialized().nodes.get(node_id)
        if isinstance(node, RunNode):
            return (1, node.run.started, node.run.id)
        if isinstance(node, ArtifactNode):
            return (0, node.name, _version_number(node.version), node.digest)
        return (2, node_id)

    # -- queries -----------------------------------------------------------------------------

    def producers_of(self, name: str, digest: str) -> list[RunRecord]:
        """Runs that produced this artifact version, newest first."""
        return self._sorted_runs(self._produced_by.get((name, digest), ()))

    def consumers_of(self, name: str, digest: str) -> list[RunRecord]:
        """Runs that consumed this artifact version, newest first."""
        return self._sorted_runs(self._consumed_by.get((name, digest), ()))

    def _sorted_runs(self, run_ids: Iterable[str]) -> list[RunRecord]:
        runs = [self._runs[i] for i in set(run_ids)]
        return sorted(runs, key=newest_first_key, reverse=True)

    def find_runs(
        self, job_type: str | None = None, artifact: str | None = None, digest: str | None = None
    ) -> list[RunRecord]:
        """Runs of that job type that consumed or produced that artifact, newest first."""
        return filter_runs(self.runs, job_type=job_type, artifact=artifact, digest=digest)

    def around(
        self,
        name: str,
        digest: str,
        depth: int | None = None,
        upstream: bool = True,
        downstream: bool = True,
    ) -> LineageGraph:
        """The subgraph around one artifact version, rooted at it.

        `depth` counts runs: 1 = the runs that produced (upstream) / consumed (downstream) it,
        with the artifacts those runs consumed / produced; None = everything reachable. An
        artifact no run touched yields a graph holding just that node.
        """
        return self._around((name, digest), depth, upstream, downstream)

    def around_run(
        self,
        run_id: str,
        depth: int | None = None,
        upstream: bool = True,
        downstream: bool = True,
    ) -> LineageGraph:
        """The subgraph around one run: depth 0 = the run with its inputs and outputs."""
        if run_id not in self._runs:
            raise KeyError(run_id)
        return self._around(run_id, depth, upstream, downstream)

    def around_node(
        self,
        node_id: str,
        depth: int | None = None,
        upstream: bool = True,
        downstream: bool = True,
    ) -> LineageGraph:
        """The subgraph around any node id of this graph (`run:<id>` or `artifact:...`)."""
        if node_id.startswith("run:") and node_id[4:] in self._runs:
            return self._around(node_id[4:], depth, upstream, downstream)
        node = self._materialized().nodes.get(node_id)
        if not isinstance(node, ArtifactNode):
            raise KeyError(node_id)
        return self._around((node.name, node.digest), depth, upstream, downstream)

    def _around(
        self, root: _Handle, depth: int | None, upstream: bool, downstream: bool
    ) -> LineageGraph:
        if depth is not None and depth < 0:
            raise ValueError("depth must be >= 0")
        limit = None
        if depth is not None:
            # A run root already brings its own inputs and outputs, one edge away.
            limit = 2 * depth + (1 if isinstance(root, str) else 0)
        keep: set[_Handle] = {root}
        cut_up: set[_Handle] = set()
        cut_down: set[_Handle] = set()
        if upstream:
            keep |= self._reach(root, self._upstream_of, limit, cut_up)
        if downstream:
            keep |= self._reach(root, self._downstream_of, limit, cut_down)
        sub = self._restricted(keep)
        sub.root = sub._materialized().ids[root]
        sub._cut_up = cut_up
        sub._cut_down = cut_down
        return sub

    def _upstream_of(self, h: _Handle) -> list[_Handle]:
        if isinstance(h, str):
            return self._refs_in_graph(self._runs[h].inputs)
        return list(self._produced_by.get(h, ()))

    def _downstream_of(self, h: _Handle) -> list[_Handle]:
        if isinstance(h, str):
            return self._refs_in_graph(self._runs[h].outputs)
        return list(self._consumed_by.get(h, ()))

    def _refs_in_graph(self, refs: list[ArtifactRef]) -> list[_Handle]:
        keys = self._keys
        return [(r.name, r.digest) for r in refs if keys is None or (r.name, r.digest) in keys]

    @staticmethod
    def _reach(
        start: _Handle,
        neighbours: Callable[[_Handle], list[_Handle]],
        limit: int | None,
        cut: set[_Handle],
    ) -> set[_Handle]:
        seen = {start}
        queue = deque([(start, 0)])
        while queue:
            current, dist = queue.popleft()
            nexts = neighbours(current)
            if limit is not None and dist >= limit:
                # BFS order: everything within the limit is already seen, so this is exact.
                if any(n not in seen for n in nexts):
                    cut.add(current)
                continue
            for n in nexts:
                if n not in seen:
                    seen.add(n)
                    queue.append((n, dist + 1))
        return seen

    def _restricted(self, keep: set[_Handle]) -> LineageGraph:
        sub = LineageGraph.__new__(LineageGraph)
        sub._versions = self._versions
        sub._aliases = self._aliases
        sub._runs = {h: self._runs[h] for h in keep if isinstance(h, str)}
        sub._keys = {h for h in keep if isinstance(h, tuple)}
        sub._index()
        sub.root = None
        sub._cut_up = set()
        sub._cut_down = set()
        return sub

    # -- node objects, made on demand ----------------------------------------------------------

    def _materialized(self) -> _Materialized:
        if self._cache is None:
            self._cache = self._materialize()
        return self._cache

    def _materialize(self) -> _Materialized:
        keys = set(self._produced_by) | set(self._consumed_by)
        if self._keys is not None:
            keys |= self._keys  # artifacts no run touched, e.g. the root of a lone subgraph
        labels = {key: self._label_of(key) for key in keys}
        ids: dict[_Handle, str] = dict(_assign_artifact_ids(labels))
        nodes: dict[str, Node] = {}
        for key in sorted(keys):
            nid = ids[key]
            aliases = tuple(self._aliases.get(key, ()))
            nodes[nid] = ArtifactNode(nid, key[0], key[1], labels[key], aliases)
        edges: dict[tuple[str, str], Edge] = {}
        for run in self._runs.values():
            rid = run_node_id(run.id)
            ids[run.id] = rid
            nodes[rid] = RunNode(rid, run)
            for ref in run.inputs:
                aid = ids.get((ref.name, ref.digest))
                if aid is not None and (aid, rid) not in edges:
                    edges[(aid, rid)] = Edge(aid, rid, "consumed", ref.requested, ref.path)
            for ref in run.outputs:
                aid = ids.get((ref.name, ref.digest))
                if aid is not None and (rid, aid) not in edges:
                    edges[(rid, aid)] = Edge(rid, aid, "produced", ref.requested, ref.path)
        succ: dict[str, list[str]] = {}
        pred: dict[str, list[str]] = {}
        for src, dst in edges:
            succ.setdefault(src, []).append(dst)
            pred.setdefault(dst, []).append(src)
        return _Materialized(ids, nodes, edges, succ, pred)

    def _label_of(self, key: Key) -> str | None:
        """The caller's version for (name, digest), else what the runs recorded if they agree."""
        version = self._versions.get(key)
        if version:
            return version
        seen: set[str] = set()
        for rid in (*self._produced_by.get(key, ()), *self._consumed_by.get(key, ())):
            run = self._runs[rid]
            for ref in (*run.inputs, *run.outputs):
                if ref.version and ref.name == key[0] and ref.digest == key[1]:
                    seen.add(ref.version)
        return next(iter(seen)) if len(seen) == 1 else None


@dataclass
class _Materialized:
    ids: dict[_Handle, str]
    nodes: dict[str, Node]
    edges: dict[tuple[str, str], Edge]
    succ: dict[str, list[str]]
    pred: dict[str, list[str]]


def _version_number(version: str | None) -> int:
    return int(version[1:]) if version else -1


def _assign_artifact_ids(labels: Mapping[Key, str | None]) -> dict[Key, str]:
    """`artifact:<name>@<vN>` where that is unambiguous, else `artifact:<name>@sha256:<prefix>`."""
    by_version: dict[tuple[str, str], int] = {}
    by_prefix: dict[tuple[str, str], int] = {}
    for (name, digest), version in labels.items():
        if version:
            by_version[(name, version)] = by_version.get((name, version), 0) + 1
        p = (name, short_digest(digest))
        by_prefix[p] = by_prefix.get(p, 0) + 1
    ids = {}
    for (name, digest), version in labels.items():
        if version and by_version[(name, version)] == 1:
            ids[(name, digest)] = f"artifact:{name}@{version}"
        elif by_prefix[(name, short_digest(digest))] == 1:
            ids[(name, digest)] = f"artifact:{name}@{short_digest(digest)}"
        else:
            ids[(name, digest)] = f"artifact:{name}@{digest}"
    return ids
