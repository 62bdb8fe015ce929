"""Rules for names, aliases, `name@alias` specs and the relative paths a manifest may hold."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from gitartifacts.errors import InvalidNameError, InvalidPathError

# W&B's rule: letters, digits, '_', '.', '-', at most 128 characters; a segment never starts
# with '.' or '-' (git refuses '.x' ref components, and a tag starting with '-' reads as an
# option). Names may be namespaced with '/' ('team/name'), each segment following the rule.
MAX_SEGMENT_LENGTH = 128
_SEGMENT = rf"[A-Za-z0-9_][A-Za-z0-9._-]{{0,{MAX_SEGMENT_LENGTH - 1}}}"
NAME_RE = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT})*")
ALIAS_RE = re.compile(_SEGMENT)
TYPE_RE = re.compile(_SEGMENT)
VERSION_RE = re.compile(r"v(0|[1-9][0-9]*)")
MAX_NAME_LENGTH = 200
# C0, DEL, C1, the Unicode line/paragraph separators, BOM, lone surrogates and U+FFFE/U+FFFF:
# never in a path; YAML would mangle or refuse them (YAML allows no raw U+FFFE/U+FFFF at all).
CONTROL_CHARS_RE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ufeff\ud800-\udfff\ufffe\uffff]")
MAX_PATH_LENGTH = 4096
NAME_HINT = ("names use letters, digits, '.', '_', '-', at most 128 characters (optionally "
             "'team/name'), e.g. My-Dataset")


def validate_name(name: str) -> str:
    """Return `name` if it is a valid artifact name (also valid inside a git ref), else raise."""
    if (
        not NAME_RE.fullmatch(name)
        or len(name) > MAX_NAME_LENGTH
        or ".." in name
        or name.endswith((".", ".lock"))
        or "/." in name
        or ".lock/" in name
    ):
        raise InvalidNameError(f"invalid artifact name {name!r}", hint=NAME_HINT)
    return name


def validate_type(kind: str) -> str:
    """Return `kind` if it is a valid artifact type such as 'dataset' or 'model', else raise."""
    if not TYPE_RE.fullmatch(kind):
        raise InvalidNameError(
            f"invalid artifact type {kind!r}",
            hint="types use letters, digits, '.', '_', '-', at most 128 characters, e.g. dataset",
        )
    return kind


def validate_alias(alias: str) -> str:
    """Return `alias` if it may be set by a user: not `latest`, not shaped like a version."""
    if not ALIAS_RE.fullmatch(alias) or alias.endswith((".", ".lock")) or ".." in alias:
        raise InvalidNameError(
            f"invalid alias {alias!r}",
            hint="aliases use letters, digits, '.', '_', '-', at most 128 characters, e.g. best",
        )
    if alias == "latest" or VERSION_RE.fullmatch(alias):
        raise InvalidNameError(
            f"alias {alias!r} is reserved",
            hint="'latest' and 'v<N>' are assigned by gart push; choose another alias name",
        )
    return alias


def case_clash(name: str, existing: Iterable[str]) -> str | None:
    """The existing name that differs from `name` only in case, if any.

    Two such names would share refs and files on a case-insensitive filesystem (macOS,
    Windows), so they are refused."""
    folded = name.casefold()
    return next((e for e in existing if e != name and e.casefold() == folded), None)


@dataclass(frozen=True)
class Spec:
    """An artifact reference as typed by a user: `name`, `name@alias`, `name:v3`, `name@<rev>`."""

    name: str
    ref: str | None = None

    def __str__(self) -> str:
        return self.name if self.ref is None else f"{self.name}@{self.ref}"


def parse_spec(text: str) -> Spec:
    """Split `name@ref` or the W&B form `name:ref`; the name is validated, the ref only shaped."""
    name, sep, ref = text.partition("@")
    if not sep:
        name, sep, ref = text.partition(":")
    validate_name(name)
    if sep and (not ref or CONTROL_CHARS_RE.search(ref) or " " in ref):
        raise InvalidNameError(
            f"invalid reference {text!r}",
            hint="write NAME, NAME@ALIAS, NAME@vN or NAME@<git revision>",
        )
    return Spec(name, ref if sep else None)


def check_relative_path(path: str, what: str = "path") -> str:
    """Refuse any path a manifest must not hold; return it unchanged when it is canonical."""
    if not path or len(path) > MAX_PATH_LENGTH:
        raise InvalidPathError(f"{what} {path!r} is empty or too long")
    if CONTROL_CHARS_RE.search(path):
        raise InvalidPathError(f"{what} {path!r} contains control characters")
    if path.startswith("/") or "\\" in path or (len(path) > 1 and path[1] == ":"):
        raise InvalidPathError(f"{what} {path!r} is not a relative '/'-separated path")
    for segment in path.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidPathError(f"{what} {path!r} is not normalized (empty, '.' or '..' part)")
        if segment.lower() == ".git":
            raise InvalidPathError(f"{what} {path!r} points inside .git")
    return path


_BAD_SEGMENT_RE = re.compile(r"(?:^|/)(?:\.\.?|(?i:\.git))(?:/|$)|//|^/|/$|\\|^.:")
# A Windows drive ('C:x', 'C:/x') at the start of any path of the joined block.
_DRIVE_RE = re.compile(r"^.:", re.MULTILINE)
# Substrings of "\n" + paths joined by "\n" + "\n" that betray a non-canonical or unsafe path.
_BAD_MARKERS = tuple(
    f"{left}{segment}{right}"
    for segment in (".", "..", ".git")
    for left in ("\n", "/")
    for right in ("\n", "/")
) + ("//", "\n/", "/\n", "\\")


def check_entry_paths(paths: list[str], what: str) -> None:
    """Validate a list of manifest paths in bulk: canonical, sorted, unique, no file-under-file.

    Checks run over the joined text (one C-level regex pass) because a manifest may hold
    millions of paths and per-path Python work dominates load time.
    """
    if not paths:
        return
    block = "\n".join(paths)
    # A newline inside a path would hide among the separators: count them instead.
    if (CONTROL_CHARS_RE.search(block.replace("\n", "")) or "" in paths
            or block.count("\n") != len(paths) - 1):
        bad = next(p for p in paths if not p or CONTROL_CHARS_RE.search(p))
        raise InvalidPathError(f"{what}: path {bad!r} is empty or contains control characters")
    framed = f"\n{block.lower()}\n"
    if (any(marker in framed for marker in _BAD_MARKERS) or _DRIVE_RE.search(block)
            or max(map(len, paths)) > MAX_PATH_LENGTH):
        bad = next(
            p for p in paths if _BAD_SEGMENT_RE.search(p) or len(p) > MAX_PATH_LENGTH
        )
        check_relative_path(bad, f"{what}: path")
        raise InvalidPathError(f"{what}: path {bad!r} is not allowed")
    if not all(map(str.__lt__, paths, paths[1:])):
        for previous, path in zip(paths, paths[1:], strict=False):
            if not previous < path:
                problem = "duplicated" if path == previous else "out of order"
                raise InvalidPathError(f"{what}: path {path!r} is {problem}")
    parents = {p.rpartition("/")[0] for p in paths}
    for parent in list(parents):
        while parent:
            parent = parent.rpartition("/")[0]
            if parent in parents:
                break
            parents.add(parent)
    clash = parents.intersection(paths)
    if clash:
        raise InvalidPathError(f"{what}: {sorted(clash)[0]!r} is both a file and a directory")
