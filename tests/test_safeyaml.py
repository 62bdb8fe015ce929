"""Strict YAML reading: what hostile or sloppy files can and cannot get past safeyaml.load."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from gitartifacts import safeyaml
from gitartifacts.errors import ManifestError


def load(text: str | bytes, **caps: int) -> object:
    return safeyaml.load(text, what="test.yaml", **caps)


def refused(text: str | bytes, **caps: int) -> str:
    with pytest.raises(ManifestError) as info:
        load(text, **caps)
    assert "test.yaml" in str(info.value), "the error must name the file"
    return str(info.value)


def test_normal_yaml_is_accepted_with_core_types() -> None:
    text = textwrap.dedent(
        """\
        name: raw-images
        count: 3
        ratio: 0.5
        flag: true
        nothing: null
        quoted: "0x1F"
        items: [1, two, 3.0]
        nested:
          a: {b: [x, y]}
          block: |
            line one
            line two
        """
    )
    assert load(text) == {
        "name": "raw-images", "count": 3, "ratio": 0.5, "flag": True, "nothing": None,
        "quoted": "0x1F", "items": [1, "two", 3.0],
        "nested": {"a": {"b": ["x", "y"]}, "block": "line one\nline two\n"},
    }


def test_empty_document_is_none() -> None:
    assert load("") is None
    assert load("# only a comment\n") is None


def test_bytes_must_be_utf8() -> None:
    assert load("k: é\n".encode()) == {"k": "é"}
    assert "not UTF-8" in refused(b"k: \xff\n")


def test_aliases_are_refused() -> None:
    assert "aliases" in refused("a: &x [1, 2]\nb: *x\n")


def test_anchor_without_alias_is_refused() -> None:
    assert "anchors" in refused("a: &x 1\nb: 2\n")


def test_billion_laughs_is_refused_quickly() -> None:
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    refused("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    "text",
    [
        "x: !!python/object/apply:os.system [echo hi]\n",
        "x: !!python/object:builtins.dict {}\n",
        "x: !!python/name:os.system ''\n",
        "x: !custom 3\n",
        "x: !!binary aGVsbG8=\n",
        "x: !!set {a, b}\n",
        "x: !!omap [a: 1]\n",
        "x: 2001-12-14\n",  # an implicit timestamp is a non-core type too
    ],
)
def test_non_core_tags_are_refused(text: str) -> None:
    assert "tag" in refused(text)


def test_explicit_core_tags_are_accepted() -> None:
    assert load("x: !!str 12\ny: !!int '7'\n") == {"x": "12", "y": 7}


@pytest.mark.parametrize(
    "text",
    [
        "a: 1\na: 2\n",
        "true: a\nyes: b\n",  # both are the boolean True
        "1: a\n0x1: b\n",  # both are the integer 1
        "1: a\n1.0: b\n",  # equal as Python keys
        "outer:\n  k: 1\n  k: 2\n",
        "- {k: 1, k: 2}\n",
    ],
)
def test_duplicate_keys_are_refused(text: str) -> None:
    assert "duplicate key" in refused(text)


def test_merge_keys_are_refused() -> None:
    assert "merge" in refused("base: {a: 1}\nderived:\n  <<: {b: 2}\n  c: 3\n")


def test_quoted_merge_lookalike_is_an_ordinary_key() -> None:
    assert load('"<<": 1\n') == {"<<": 1}


def test_complex_keys_are_refused() -> None:
    assert "keys" in refused("? [a, b]\n: 1\n")


def test_size_cap() -> None:
    text = "k: " + "x" * 100 + "\n"
    assert load(text, max_bytes=len(text)) == {"k": "x" * 100}
    assert "limit" in refused(text, max_bytes=len(text) - 1)


def test_node_cap() -> None:
    text = "[" + ", ".join(["1"] * 50) + "]"
    assert load(text, max_nodes=51) == [1] * 50
    assert "nodes" in refused(text, max_nodes=50)


def test_depth_cap() -> None:
    assert load("[" * 32 + "]" * 32) is not None
    assert "nested deeper" in refused("[" * 34 + "]" * 34)
    assert "nested deeper" in refused("- " * 40 + "x\n")


def test_deep_nesting_is_refused_without_crashing_the_process() -> None:
    # PyYAML's composer recurses; 100,000 levels used to kill the interpreter (SIGSEGV).
    code = textwrap.dedent(
        """
        from gitartifacts import safeyaml
        from gitartifacts.errors import ManifestError
        for text in ("[" * 100000 + "]" * 100000, "{a: " * 100000 + "1" + "}" * 100000):
            try:
                safeyaml.load(text, what="deep.yaml")
            except ManifestError as exc:
                print("refused:", exc)
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    # Refused by our depth cap or, on PyYAML >= 6.0.4, by its own: either way, one line each.
    lines = done.stdout.splitlines()
    assert len(lines) == 2 and all(
        line.startswith("refused: deep.yaml:") and "nest" in line for line in lines
    ), done.stdout


def test_several_documents_are_refused() -> None:
    assert "one YAML document" in refused("a: 1\n---\nb: 2\n")


def test_syntax_errors_name_the_line() -> None:
    message = refused("a: 1\nb: [unclosed\nc: 3\n")
    assert "invalid YAML" in message and "line" in message


@pytest.mark.parametrize(
    ("plain", "as_string"),
    [("raw-images", True), ("0x1F", False), ("0b101", False), ("1_000", False), ("yes", False),
     ("Null", False), ("1.5", False), ("1e5", True), ("2001-12-14", False), ("v1.2", True),
     ("data/x", True)],
)
def test_reads_as_string(plain: str, as_string: bool) -> None:
    assert safeyaml.reads_as_string(plain) is as_string
    if as_string:
        assert load(f"k: {plain}\n") == {"k": plain}


def test_dump_then_load_round_trips() -> None:
    data = {"gart": 1, "b": [1, "two", {"c": None}], "a": "é \"q\"", "n": 0.25}
    text = safeyaml.dump(data)
    assert list(load(text)) == ["gart", "b", "a", "n"]  # insertion order kept
    assert load(text) == data
