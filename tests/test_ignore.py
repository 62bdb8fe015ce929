""".gartignore and --exclude follow gitignore semantics, checked against git itself."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import GartResult, git, init_git_repo

from gitartifacts.errors import ConfigError
from gitartifacts.ignore import IgnoreRules, read_ignore_file
from gitartifacts.workspace import scan

Gart = Callable[..., GartResult]

TREE = [
    "keep.txt", "top.txt", "x.tmp", "keep.log", "run.log", "cache", "!important",
    "sub/x.tmp", "sub/deep/x.tmp", "sub/top.txt", "sub/keep.log", "sub/other.log",
    "a/b", "a/x/b", "a/x/y/b", "a/c", "cachedir/cache/y", "cache.d/cache/z",
    "logs/keep.txt", "logs/run.log", "other/logs/run.log",
    "dir/keep", "dir/drop", "dir/sub/keep", "#hash", "space ",
]


def write_tree(root: Path, names: list[str] = TREE) -> None:
    for rel in names:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rel.encode())


def scanned(root: Path, patterns: list[str]) -> list[str]:
    return sorted(scan(root, ignore=IgnoreRules(patterns)))


# Each row: what the bug (or a reasonable guess) gets wrong, and git decides.
PATTERN_SETS = {
    "slash_is_anchored_and_star_stays_in_one_directory": ["sub/*.tmp"],
    "negation_re_includes": ["*.log", "!keep.log"],
    "double_star_matches_zero_directories": ["a/**/b"],
    "trailing_slash_matches_directories_only": ["cache/"],
    "leading_slash_anchors_at_the_root": ["/top.txt"],
    "excluded_directory_cannot_be_re_included": ["logs/", "!logs/keep.txt"],
    "contents_glob_can_be_re_included": ["dir/**", "!dir/keep", "!dir/sub/"],
    "escapes_and_comments": ["\\!important", "# a comment", "", "\\#hash"],
    "negation_then_exclusion_last_wins": ["!keep.log", "*.log"],
    "name_at_any_depth": ["x.tmp", "run.log"],
    "bare_double_star_prefix": ["**/logs/run.log", "**/cache"],
    "trailing_space_is_trimmed": ["space ", "keep.txt   "],
    "directories_below": ["dir/**/", "a/*/"],
    "every_directory": ["**/"],
    "contents_of_a_directory_can_be_re_included": ["logs/*", "!logs/keep.txt"],
    "only_the_top_level_then_one_back": ["/*", "!/sub/", "sub/deep/"],
    "anchored_negation": ["*.log", "!sub/*.log"],
    "everything_but": ["*", "!*/", "!*.log"],
    "bracket_and_question_mark": ["[kx].t?p", "sub/[!o]*.log"],
}


@pytest.mark.parametrize("patterns", PATTERN_SETS.values(), ids=PATTERN_SETS.keys())
def test_scan_leaves_out_exactly_what_git_ignores(
    tmp_path: Path, git_env: None, patterns: list[str]
) -> None:
    root = init_git_repo(tmp_path / "repo")
    write_tree(root)
    (root / ".gitignore").write_text("\n".join(patterns) + "\n", encoding="utf-8")
    listed = git(root, "ls-files", "-z", "--others", "--exclude-standard")
    expected = sorted(p for p in listed.split("\0") if p and p != ".gitignore")
    (root / ".gitignore").unlink()
    assert scanned(root, patterns) == expected


def test_the_three_old_mistakes(tmp_path: Path) -> None:
    write_tree(tmp_path)
    found = scanned(tmp_path, ["sub/*.tmp", "*.log", "!keep.log", "a/**/b"])
    assert "sub/deep/x.tmp" in found and "sub/x.tmp" not in found
    assert "keep.log" in found and "sub/keep.log" in found and "run.log" not in found
    assert "a/b" not in found and "a/x/y/b" not in found and "a/c" in found


def test_rules_without_patterns_are_false_and_ignore_nothing() -> None:
    assert not IgnoreRules([])
    assert not IgnoreRules(["# only a comment", "", "   "])
    assert IgnoreRules(["*.tmp"])
    assert not IgnoreRules(["*.tmp"]).ignores("x.txt")


def test_a_directory_rule_is_asked_with_is_dir() -> None:
    rules = IgnoreRules(["cache/"])
    assert rules.ignores("cache", is_dir=True) and rules.ignores("sub/cache", is_dir=True)
    assert not rules.ignores("cache") and not rules.ignores("cachedir", is_dir=True)


def test_an_invalid_pattern_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="invalid ignore pattern '!'") as info:
        IgnoreRules(["*.tmp", "!"])
    assert ".gartignore" in info.value.hint


def test_read_ignore_file(tmp_path: Path) -> None:
    path = tmp_path / ".gartignore"
    assert read_ignore_file(path) == []
    path.write_bytes(b"\xef\xbb\xbf*.tmp\r\ncache/\n")  # a BOM and CRLF, as some editors save
    assert read_ignore_file(path) == ["*.tmp", "cache/"]
    path.write_bytes(b"*.tmp\n\xff\xfe.bin\n")
    with pytest.raises(ConfigError, match="not UTF-8") as info:
        read_ignore_file(path)
    assert "UTF-8" in info.value.hint


# ---- through the real command ------------------------------------------------------------


def one_line_error(result: GartResult) -> str:
    assert result.rc == 1, result
    assert "Traceback" not in result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("gart: error: "), result.err
    assert lines[1].startswith("hint: ")
    return result.err


def test_a_non_utf8_gartignore_is_one_line_error_for_add_and_status(
    repo: Path, gart: Gart
) -> None:
    write_tree(repo / "data", ["a.txt", "b.tmp"])
    assert gart("add", "data").rc == 0
    (repo / ".gartignore").write_bytes(b"*.tmp\n\xff\n")
    for args in (("status",), ("add", "data")):
        err = one_line_error(gart(*args))
        assert ".gartignore is not UTF-8" in err and "save .gartignore as UTF-8" in err


def test_an_invalid_gartignore_pattern_is_one_line_error(repo: Path, gart: Gart) -> None:
    write_tree(repo / "data", ["a.txt"])
    (repo / ".gartignore").write_text("!\n", encoding="utf-8")
    assert "invalid ignore pattern" in one_line_error(gart("add", "data"))


def test_gartignore_and_exclude_use_git_semantics_end_to_end(repo: Path, gart: Gart) -> None:
    write_tree(repo / "data")
    (repo / ".gartignore").write_text("*.log\n!keep.log\nlogs/\n", encoding="utf-8")
    done = gart("add", "data", "--exclude", "sub/*.tmp", "--exclude", "a/**/b")
    assert done.rc == 0, done.err
    listed = json.loads(gart("ls", "data", "--json").out)
    paths = {f["path"] for f in listed["files"]}
    assert {"sub/deep/x.tmp", "keep.log", "sub/keep.log", "a/c", "x.tmp"} <= paths
    assert not paths & {"sub/x.tmp", "run.log", "a/b", "a/x/b", "logs/keep.txt"}
    assert "other/logs/run.log" not in paths
    status = json.loads(gart("status", "--json").out)
    assert status[0]["state"] == "clean"
