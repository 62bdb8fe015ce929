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
_RESOLVER = yaml.resolver.Resolver()


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
        node = _compose(loader, what, max_nodes, max_depth)
        if node is None:
            return None
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ManifestError(f"{what}: invalid YAML{where}: {problem}") from None
    finally:
        loader.dispose()


def _compose(loader: Any, what: str, max_nodes: int, max_depth: int) -> yaml.Node | None:
    """Build the node tree from parser events, refusing what a hostile file could use against
    us: anchors, aliases, custom tags, merge and duplicate keys, node counts and depth.

    PyYAML's own composer recurses (in C for the C loader: deep nesting overflows the stack
    and kills the process), so the tree is built here with an explicit stack and the depth
    is refused before any recursion can happen.
    """
    loader.get_event()  # StreamStart
    if loader.check_event(yaml.StreamEndEvent):
        return None
    loader.get_event()  # DocumentStart
    root: yaml.Node | None = None
    stack: list[tuple[yaml.Node, list[yaml.Node]]] = []
    count = 0
    while True:
        event = loader.get_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise ManifestError(f"{what}: YAML anchors and aliases are not allowed")
        if isinstance(event, yaml.DocumentEndEvent):
            break
        if isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            node, children = stack.pop()
            node.end_mark = event.end_mark
            if isinstance(node, yaml.MappingNode):
                node.value = list(zip(children[::2], children[1::2], strict=True))
                _check_keys(loader, node, what)
            else:
                node.value = children
            continue
        count += 1
        if count > max_nodes:
            raise ManifestError(f"{what}: more than {max_nodes} YAML nodes")
        if len(stack) > max_depth:
            raise ManifestError(f"{what}: nested deeper than {max_depth} levels")
        if isinstance(event, yaml.ScalarEvent):
            kind: type = yaml.ScalarNode
            value: Any = event.value
        else:
            mapping = isinstance(event, yaml.MappingStartEvent)
            kind = yaml.MappingNode if mapping else yaml.SequenceNode
            value = None
        tag = event.tag
        if tag is None or tag == "!":
            tag = loader.resolve(kind, value, event.implicit)
        if tag == "tag:yaml.org,2002:merge":
            raise ManifestError(f"{what}: YAML merge keys are not allowed")
        if tag not in _CORE_TAGS:
            raise ManifestError(f"{what}: YAML tag {tag!r} is not allowed")
        if value is not None:
            node = yaml.ScalarNode(tag, value, event.start_mark, event.end_mark, event.style)
        else:
            node = kind(tag, [], event.start_mark, None, event.flow_style)
        if stack:
            stack[-1][1].append(node)
        else:
            root = node
        if value is None:
            stack.append((node, []))
    if not loader.check_event(yaml.StreamEndEvent):
        raise ManifestError(f"{what}: expected one YAML document, found several")
    return root


def _check_keys(loader: Any, node: yaml.MappingNode, what: str) -> None:
    """Keys must be plain scalars, each distinct as a value: `true` and `yes`, or `1` and
    `0x1`, are the same key and would silently overwrite each other."""
    keys: set[Any] = set()
    for key, _value in node.value:
        if not isinstance(key, yaml.ScalarNode):
            raise ManifestError(f"{what}: mapping keys must be plain scalars")
        constructed = loader.construct_object(key)
        if constructed in keys:
            line = key.start_mark.line + 1
            raise ManifestError(f"{what}: duplicate key {key.value!r} (line {line})")
        keys.add(constructed)


def reads_as_string(value: str) -> bool:
    """Whether `value`, written as a plain (unquoted) scalar, would be read back as a string."""
    return _RESOLVER.resolve(yaml.ScalarNode, value, (True, False)) == "tag:yaml.org,2002:str"


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
