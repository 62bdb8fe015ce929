"""Naming rules for artifacts, aliases and types; `name@ref` specs; manifest path rules."""

from __future__ import annotations

import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gitartifacts.errors import InvalidNameError, InvalidPathError
from gitartifacts.paths import (
    Spec,
    check_entry_paths,
    check_relative_path,
    parse_spec,
    validate_alias,
    validate_name,
    validate_type,
)

# ---- names ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["raw-images", "a", "0", "model_v2", "x.y", "team/raw-images", "a/b/c", "a" * 128,
             "My-Dataset", "UPPER", "_private", "Team/Raw_Images.v2", "/".join(["a" * 99] * 2)]
)
def test_valid_names(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "", "a..b", "x.lock", "a/x.lock", "x.lock/b", "a.", "-a", ".a",
        "a b", "a@b", "a:b", "a~1", "a^", "a?", "a*", "a[b", "a\\b", "/a", "a/", "a//b",
        "a/.b", "a/-b", "é", "a\nb", "a" * 129, "/".join(["a" * 100] * 3),
    ],
)
def test_invalid_names(name: str) -> None:
    with pytest.raises(InvalidNameError) as info:
        validate_name(name)
    assert info.value.hint, "a bad name must come with a hint showing a good one"


def _git_ref_ok(ref: str) -> bool:
    done = subprocess.run(["git", "check-ref-format", ref], capture_output=True, check=False)
    return done.returncode == 0


@pytest.mark.parametrize("name", ["a..b", "x.lock", "a/x.lock", "a.", "a/.b"])
def test_refused_names_are_exactly_ones_git_would_reject(name: str) -> None:
    assert not _git_ref_ok(f"refs/tags/{name}") or not _git_ref_ok(f"refs/tags/{name}@v0")


_NAME_SEGMENT = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,12}", fullmatch=True)


@settings(max_examples=40, deadline=None)
@given(st.lists(_NAME_SEGMENT, min_size=1, max_size=3).map("/".join))
def test_every_accepted_name_makes_valid_git_tags(name: str) -> None:
    try:
        validate_name(name)
    except InvalidNameError:
        return
    assert _git_ref_ok(f"refs/tags/{name}@v0"), name
    assert _git_ref_ok(f"refs/tags/{name}@production"), name


def test_types() -> None:
    assert validate_type("dataset") == "dataset"
    assert validate_type("model.onnx") == "model.onnx"
    assert validate_type("Dataset") == "Dataset"  # W&B's rule: letters of either case
    assert validate_type("x" * 128) == "x" * 128
    for bad in ["", "a b", "-x", "x" * 129, "a/b", "a:b"]:
        with pytest.raises(InvalidNameError):
            validate_type(bad)


def test_aliases() -> None:
    assert validate_alias("production") == "production"
    assert validate_alias("best-2024.01") == "best-2024.01"
    assert validate_alias("Best-So-Far") == "Best-So-Far"
    assert validate_alias("best-so-far") == "best-so-far"
    for bad in ["", "a/b", "a:b", "a..b", "x.lock", "a.", "a b", "a@b", "x" * 129]:
        with pytest.raises(InvalidNameError):
            validate_alias(bad)


@pytest.mark.parametrize("reserved", ["latest", "v0", "v1", "v42"])
def test_reserved_aliases(reserved: str) -> None:
    with pytest.raises(InvalidNameError, match="reserved"):
        validate_alias(reserved)


def test_version_lookalikes_are_ordinary_aliases() -> None:
    assert validate_alias("v01") == "v01"  # not a version number: v<N> has no leading zero
    assert validate_alias("v1-rc") == "v1-rc"


# ---- specs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("raw-images", Spec("raw-images")),
        ("raw-images@production", Spec("raw-images", "production")),
        ("raw-images:production", Spec("raw-images", "production")),
        ("raw-images@v3", Spec("raw-images", "v3")),
        ("raw-images:v3", Spec("raw-images", "v3")),
        ("team/raw@latest", Spec("team/raw", "latest")),
        ("raw@HEAD~1", Spec("raw", "HEAD~1")),
        ("raw@main:path", Spec("raw", "main:path")),  # '@' wins; the ref keeps its colon
        ("My-Dataset:best-so-far", Spec("My-Dataset", "best-so-far")),
    ],
)
def test_parse_spec(text: str, spec: Spec) -> None:
    assert parse_spec(text) == spec


def test_spec_prints_with_at() -> None:
    assert str(parse_spec("raw:v3")) == "raw@v3"
    assert str(parse_spec("raw")) == "raw"


def test_case_clash() -> None:
    from gitartifacts.paths import case_clash

    assert case_clash("My-Dataset", ["my-dataset", "other"]) == "my-dataset"
    assert case_clash("my-dataset", ["my-dataset", "other"]) is None  # itself is no clash
    assert case_clash("new", ["NEWER", "ne"]) is None


@pytest.mark.parametrize("text", ["raw@", "raw:", "R w@v1", "@v1", "raw@a b", "raw@x\ny", ""])
def test_parse_spec_refuses(text: str) -> None:
    with pytest.raises(InvalidNameError):
        parse_spec(text)


# ---- entry paths ------------------------------------------------------------------------


GOOD_PATHS = ["b", "a/b.txt", "with space/ü ñ.bin", "日本/データ.csv", ".hidden", "a/.gitkeep",
              "..a", "a..", "x/...", "emoji 😀", "#hash", "- dash", "trailing "]


@pytest.mark.parametrize("path", GOOD_PATHS)
def test_good_relative_paths(path: str) -> None:
    assert check_relative_path(path) == path


def test_good_entry_path_list() -> None:
    check_entry_paths(sorted(GOOD_PATHS), "files")


BAD_PATHS = {
    "": "empty",
    "..": "normalized",
    "../x": "normalized",
    "a/../../x": "normalized",
    "a/..": "normalized",
    "./a": "normalized",
    "a/./b": "normalized",
    "a//b": "normalized",
    "a/": "normalized",
    "/etc/passwd": "relative",
    "a\\b": "relative",
    "..\\x": "relative",
    "C:/x": "relative",
    ".git": ".git",
    ".git/config": ".git",
    "a/.git/hooks/pre-commit": ".git",
    ".GIT/config": ".git",
    "a\nb": "control",
    "a\tb": "control",
    "a\x00b": "control",
    "a\x7fb": "control",
    "a\x85b": "control",
    "a\u2028b": "control",
    "a\ufeffb": "control",
    "a\ufffeb": "control",
    "a\uffffb": "control",
}


@pytest.mark.parametrize(("path", "problem"), BAD_PATHS.items())
def test_bad_relative_paths(path: str, problem: str) -> None:
    with pytest.raises(InvalidPathError, match=problem):
        check_relative_path(path)


@pytest.mark.parametrize("path", list(BAD_PATHS))
def test_bad_paths_in_entry_lists(path: str) -> None:
    # The bulk check must catch the same paths wherever they sit in a list.
    paths = sorted({"a", "m/n", "z", path})
    with pytest.raises(InvalidPathError) as info:
        check_entry_paths(paths, "files")
    assert "files" in str(info.value)


def test_entry_paths_must_be_sorted_and_unique() -> None:
    with pytest.raises(InvalidPathError, match="out of order"):
        check_entry_paths(["b", "a"], "files")
    with pytest.raises(InvalidPathError, match="duplicated"):
        check_entry_paths(["a", "a"], "files")


@pytest.mark.parametrize(
    "paths", [["a", "a/b"], ["a/b", "a/b/c"], ["x", "x/y/z"], ["a", "a/b/c/d"]]
)
def test_file_and_directory_clash(paths: list[str]) -> None:
    with pytest.raises(InvalidPathError, match="both a file and a directory"):
        check_entry_paths(paths, "files")


def test_prefix_names_are_not_a_clash() -> None:
    check_entry_paths(["a", "a-b/c", "a.txt", "ab/c"], "files")


def test_empty_list_is_fine() -> None:
    check_entry_paths([], "files")
