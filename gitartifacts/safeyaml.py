"""Strict YAML reading for untrusted files: core tags only, no aliases, no duplicate keys, caps."""

from __future__ import annotations

from typing import Any

import yaml

from gitartifacts.errors import ManifestError

try:  # the C loader is ~10x faster; fall back to pure Python where libyaml is absent
    _BaseLoader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    _BaseLoader = yaml.SafeLoader

_CORE_TAGS = frozenset(
    "tag:yaml.org,2002:" + t for t in ("str", "int", "float", "bool", "null", "map", "seq")
)

DEFAULT_MAX_BYTES = 512 * 1024 * 1024
DEFAULT_MAX_NODES = 1_000_000
DEFAULT_MAX_DEPTH = 32


def load(
    text: str | bytes,
    *,
    what: str,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_nodes: int = DEFAULT_MAX_NODES,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> Any:
    """Parse one YAML document strictly; every problem becomes a ManifestError naming `what`."""
    if len(text) > max_bytes:
        raise ManifestError(f"{what}: {len(text)} bytes exceeds the {max_bytes}-byte limit")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ManifestError(f"{what}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    loader = _BaseLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check(node, what, max_nodes, max_depth)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ManifestError(f"{what}: invalid YAML{where}: {problem}") from None
    finally:
        loader.dispose()


def _check(root: yaml.Node, what: str, max_nodes: int, max_depth: int) -> None:
    """Refuse what a hostile file could use against us: aliases, custom tags, dup keys, bombs."""
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, int]] = [(root, 0)]
    while stack:
        node, depth = stack.pop()
        if id(node) in seen:
            raise ManifestError(f"{what}: YAML anchors and aliases are not allowed")
        seen.add(id(node))
        if len(seen) > max_nodes:
            raise ManifestError(f"{what}: more than {max_nodes} YAML nodes")
        if depth > max_depth:
            raise ManifestError(f"{what}: nested deeper than {max_depth} levels")
        if node.tag not in _CORE_TAGS:
            raise ManifestError(f"{what}: YAML tag {node.tag!r} is not allowed")
        if isinstance(node, yaml.MappingNode):
            keys: set[Any] = set()
            for key, value in node.value:
                if not isinstance(key, yaml.ScalarNode):
                    raise ManifestError(f"{what}: mapping keys must be plain scalars")
                if key.tag == "tag:yaml.org,2002:merge" or key.value == "<<":
                    raise ManifestError(f"{what}: YAML merge keys are not allowed")
                if key.value in keys:
                    line = key.start_mark.line + 1
                    raise ManifestError(f"{what}: duplicate key {key.value!r} (line {line})")
                keys.add(key.value)
                stack.append((key, depth + 1))
                stack.append((value, depth + 1))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((child, depth + 1) for child in node.value)


def dump(data: Any) -> str:
    """Block-style YAML with keys in insertion order, for records that are not byte-canonical."""
    return yaml.dump(
        data,
        Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper),
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=1 << 16,
    )
