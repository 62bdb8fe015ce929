""".gartignore and --exclude: gitignore patterns, matched the way git matches them.

Patterns follow gitignore(5), compiled by the `pathspec` library, and are matched against
paths relative to the artifact's root:

- a pattern without a '/' (other than a trailing one) matches a name at any depth: `*.tmp`;
- a pattern with a '/' is anchored at the artifact root: `sub/*.tmp` matches `sub/x.tmp`,
  never `sub/deep/x.tmp`; `*` never crosses a '/', `**` does (`a/**/b` matches `a/b`);
- a trailing '/' matches directories only: `cache/`;
- `!pattern` re-includes what an earlier pattern excluded, and the last matching pattern wins;
  as in git, a file inside an excluded directory cannot be re-included, because the scan
  never descends into an excluded directory;
- blank lines and lines starting with '#' are skipped.

The scan calls `IgnoreRules.ignores` once per directory entry (20,000 files and more), so the
patterns are compiled once into a few combined regular expressions: one of every exclusion
(most paths match none and stop there), then one per run of consecutive patterns with the
same sign, tried from the last run back.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from gitartifacts.errors import ConfigError

IGNORE_FILE = ".gartignore"

_GROUP_NAME = re.compile(r"\(\?P<[A-Za-z_]\w*>")


class _Matcher(NamedTuple):
    """Compiled rules for files or for directories."""

    excluding: re.Pattern[str] | None  # any exclusion at all: the one regex most paths need
    runs: tuple[tuple[bool, re.Pattern[str]], ...]  # (excluded?, regex), the last-written first


_NOTHING = _Matcher(None, ())
_ANY_DEPTH = "(?:.+/)?"  # how pathspec starts the regex of a pattern without a '/'


class IgnoreRules:
    """Exclusion patterns (`--exclude`, `.gartignore`) with gitignore semantics."""

    __slots__ = ("_dirs", "_files")

    def __init__(self, patterns: Iterable[str]) -> None:
        lines = tuple(p for p in patterns if p.strip() and not p.startswith("#"))
        # Empty when there is nothing to ignore, so such repositories never import pathspec.
        self._files, self._dirs = _compile(lines) if lines else (_NOTHING, _NOTHING)

    def __bool__(self) -> bool:
        return self._files.excluding is not None or self._dirs.excluding is not None

    def ignores(self, relpath: str, is_dir: bool = False) -> bool:
        """Whether the file (or, with is_dir, the directory) at `relpath` is left out.

        `relpath` is '/'-separated and relative to the artifact root. As in git, the last
        pattern that matches the path itself decides; the caller does not look inside an
        ignored directory, which is what makes its contents ignored too.
        """
        matcher = self._dirs if is_dir else self._files
        if matcher.excluding is None or matcher.excluding.match(relpath) is None:
            return False
        for excluded, regex in matcher.runs:
            if regex.match(relpath) is not None:
                return excluded
        return False


# pathspec compiles a pattern to a regex searched in a file path, ending in one of these tails:
# a match may end at the path's end or at a '/' (the pattern matched a parent directory), or
# only at a '/' (a directory-only pattern, `cache/`), or anywhere (`dir/**` is `^dir/`).
_ANY_ENDS = ("(?:(?P<ps_d>/)|$)", "(?:(?P<ps_d>/).*)?$")  # pathspec 1.x, 0.12
_DIR_ENDS = ("(?P<ps_d>/)", "(?P<ps_d>/).*$")


def _self_match(source: str, below: bool) -> tuple[str | None, str]:
    """Regexes (for files, for directories) that match a path itself, not a parent of it.

    The scan never descends into an ignored directory, so matching a parent is never needed;
    and it must not count, or `!dir/sub/` would re-include `dir/sub/x` under `dir/**`.
    `below`: `source` is the regex of `dir/**` standing for `dir/**/`, directories under dir.
    """
    if below:
        return None, source
    for end in _ANY_ENDS:
        if source.endswith(end):
            body = source[: -len(end)] + r"\Z"
            return body, body
    for end in _DIR_ENDS:
        if source.endswith(end):
            return None, source[: -len(end)] + r"\Z"
    return source, source


def _anchored(source: str) -> str:
    """`source` (for re.search) rewritten for re.match, and without group names."""
    source = _GROUP_NAME.sub("(?:", source)
    return source[1:] if source.startswith("^") else "(?s:.*?)" + source


@lru_cache(maxsize=64)
def _compile(lines: tuple[str, ...]) -> tuple[_Matcher, _Matcher]:
    """Compile gitignore lines into (file runs, directory runs)."""
    from pathspec import GitIgnoreSpec

    files: list[tuple[bool, list[str]]] = []
    dirs: list[tuple[bool, list[str]]] = []
    for line in lines:
        # pathspec reads `dir/**/` as `dir/`; git ignores the directories below dir, not dir.
        text = line.rstrip(" ")
        below = text.endswith("/**/") and not text.endswith("\\/**/") and len(text) > 4
        try:
            pattern = GitIgnoreSpec.from_lines([text[:-1] if below else line]).patterns[0]
        except ValueError as exc:  # pathspec's GitIgnorePatternError
            raise ConfigError(
                f"invalid ignore pattern {line!r}: {exc}",
                hint=f"fix the pattern in {IGNORE_FILE} or --exclude "
                "(gitignore syntax; escape a literal '!' or '#' as '\\!' or '\\#')",
            ) from None
        regex = getattr(pattern, "regex", None)
        if pattern.include is None or regex is None:  # a no-op line
            continue
        for runs, source in zip((files, dirs), _self_match(regex.pattern, below), strict=True):
            if source is None:
                continue
            if runs and runs[-1][0] == pattern.include:
                runs[-1][1].append(_anchored(source))
            else:
                runs.append((pattern.include, [_anchored(source)]))
    return _joined(files), _joined(dirs)


def _joined(runs: list[tuple[bool, list[str]]]) -> _Matcher:
    def either(sources: list[str]) -> re.Pattern[str]:
        # Patterns without a '/' match at any depth: one shared "(?:.+/)?" backtracks once.
        anywhere = [s[len(_ANY_DEPTH):] for s in sources if s.startswith(_ANY_DEPTH)]
        rest = [f"(?:{s})" for s in sources if not s.startswith(_ANY_DEPTH)]
        if anywhere:
            rest.append(_ANY_DEPTH + "(?:" + "|".join(f"(?:{s})" for s in anywhere) + ")")
        return re.compile("|".join(rest))

    excluding = [s for excluded, sources in runs if excluded for s in sources]
    return _Matcher(
        either(excluding) if excluding else None,
        tuple((excluded, either(sources)) for excluded, sources in reversed(runs)),
    )


def read_ignore_file(path: Path) -> list[str]:
    """The lines of an ignore file; none when it does not exist."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    try:
        text = data.decode("utf-8-sig")  # like git, skip a UTF-8 byte-order mark
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path} is not UTF-8 text (byte {exc.start} cannot be decoded)",
            hint=f"save {path.name} as UTF-8: one gitignore pattern per line",
        ) from None
    return text.splitlines()
