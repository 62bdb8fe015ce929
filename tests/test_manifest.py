"""The manifest format: canonical bytes, strict reading, digests, a property-tested round trip."""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gitartifacts import manifest as mm
from gitartifacts.errors import GartError, ManifestError
from gitartifacts.manifest import Entry, Manifest
from gitartifacts.paths import CONTROL_CHARS_RE


def oid_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


A, B, C = oid_of(b"a"), oid_of(b"bb"), oid_of(b"ccc")


def sample(**fields: Any) -> Manifest:
    base: dict[str, Any] = dict(
        name="raw-images", type="dataset", description="Raw camera images",
        metadata={"source": "camera-a"}, path="data",
        entries=(Entry("b/c.txt", B, 2), Entry("a.txt", A, 1)),
    )
    base.update(fields)
    return Manifest(**base)


def craft(lines: list[str], **overrides: str) -> str:
    """A manifest written by hand (not by dumps) whose digest, size and count are correct."""
    block = "".join(f"{line}\n" for line in lines)
    sizes = [int(size) for _oid, size, *_ in (line.split(" ") for line in lines) if size.isdigit()]
    fields = {
        "gart": "1", "name": "x", "type": "dataset", 'description': '""', "metadata": "{}",
        "path": "data", "include": '["."]', "exclude": "[]",
        "digest": "sha256:" + hashlib.sha256(block.encode()).hexdigest(),
        "size": str(sum(sizes)), "count": str(len(lines)),
        "files": "|\n" + "".join(f"  {line}\n" for line in lines) if lines else '""\n',
    }
    fields.update(overrides)
    return "".join(
        f"{key}: {value}" + ("" if key == "files" else "\n") for key, value in fields.items()
    )


# ---- the canonical form -----------------------------------------------------------------


def test_golden_canonical_text() -> None:
    block = f"{A} 1 a.txt\n{B} 2 b/c.txt\n"
    expected = (
        "gart: 1\n"
        "name: raw-images\n"
        "type: dataset\n"
        'description: "Raw camera images"\n'
        "metadata: {source: camera-a}\n"
        "path: data\n"
        'include: ["."]\n'
        "exclude: []\n"
        f"digest: sha256:{hashlib.sha256(block.encode()).hexdigest()}\n"
        "size: 3\n"
        "count: 2\n"
        "files: |\n"
        f"  {A} 1 a.txt\n"
        f"  {B} 2 b/c.txt\n"
    )
    assert mm.dumps(sample()) == expected


def test_rewrite_is_byte_identical(tmp_path: Path) -> None:
    text = mm.dumps(sample(metadata={"z": [1, 2.5, None], "a": {"nested": True}}))
    path = tmp_path / "m.yaml"
    path.write_text(text, encoding="utf-8")
    again = mm.dumps(mm.loads(path.read_bytes()))
    assert again == text
    assert mm.loads(again) == mm.loads(text) == sample(
        metadata={"z": [1, 2.5, None], "a": {"nested": True}}
    )


def test_empty_artifact_round_trips() -> None:
    m = sample(entries=())
    assert "files: \"\"\n" in mm.dumps(m)
    assert mm.loads(mm.dumps(m)) == m
    assert m.count == 0 and m.size == 0


def test_metadata_keys_are_sorted_in_the_text() -> None:
    text = mm.dumps(sample(metadata={"b": 1, "a": 2, "c": {"z": 0, "y": 1}}))
    assert "metadata: {a: 2, b: 1, c: {y: 1, z: 0}}\n" in text


@pytest.mark.parametrize(
    "value",
    ["0x1F", "0b101", "0o17", "1_000", "+1", "-.5", "1.5", "190:20:30", "yes", "Off", "NULL",
     "~", "", "=", "<<", "2001-12-14", "a: b", "- x", "#c", "'q'", '"dq"', "\\", "é", "\ufffe",
     "\x85", "\u2028", "tab\there", "line\nbreak", " lead", "trail ", ".inf", ".nan"],
)
def test_string_metadata_stays_a_string(value: str) -> None:
    m = sample(metadata={value: value, "k": [value]}, description=CONTROL_CHARS_RE.sub("", value))
    back = mm.loads(mm.dumps(m))
    assert back.metadata == {value: value, "k": [value]}
    assert back.description == m.description


@pytest.mark.parametrize(
    "value", [0, -1, 2**70, 0.1, -0.0, 1e16, 1e-5, 5e-324, 1.7976931348623157e308,
              math.inf, -math.inf, True, False, None, [], {}, [[], {}], {"a": {"b": [1]}}],
)
def test_typed_metadata_round_trips(value: Any) -> None:
    back = mm.loads(mm.dumps(sample(metadata={"v": value}))).metadata["v"]
    assert back == value and type(back) is type(value)


def test_nan_metadata_round_trips() -> None:
    assert math.isnan(mm.loads(mm.dumps(sample(metadata={"v": math.nan}))).metadata["v"])


@pytest.mark.parametrize("name", ["yes", "no", "on", "null", "y", "0", "007", "1.5", "0x1f",
                                  "1_000", "true"])
def test_names_and_types_yaml_would_misread_round_trip(name: str) -> None:
    m = sample(name=name, type=name)
    back = mm.loads(mm.dumps(m))
    assert back.name == name and back.type == name


# ---- digest -----------------------------------------------------------------------------


def test_same_content_same_digest_whatever_the_metadata() -> None:
    one = sample()
    other = sample(name="other-name", type="model", description="x", metadata={"k": [1]},
                   path="elsewhere", entries=tuple(reversed(one.entries)))
    assert one.digest == other.digest
    assert one.digest.startswith("sha256:")


def test_digest_covers_content_sizes_and_paths() -> None:
    base = sample().digest
    assert sample(entries=(Entry("a.txt", C, 1), Entry("b/c.txt", B, 2))).digest != base
    assert sample(entries=(Entry("a.txt", A, 9), Entry("b/c.txt", B, 2))).digest != base
    assert sample(entries=(Entry("a2.txt", A, 1), Entry("b/c.txt", B, 2))).digest != base


def test_digest_is_sha256_of_the_file_lines() -> None:
    block = f"{A} 1 a.txt\n{B} 2 b/c.txt\n"
    assert sample().digest == "sha256:" + hashlib.sha256(block.encode()).hexdigest()


# ---- strict reading ---------------------------------------------------------------------


def refused(text: str | bytes, match: str) -> None:
    with pytest.raises(ManifestError, match=match):
        mm.loads(text, what="m.yaml")


def test_crafted_manifest_is_accepted() -> None:
    m = mm.loads(craft([f"{A} 1 a.txt", f"{B} 2 b/c.txt"]))
    assert m.by_path() == {"a.txt": Entry("a.txt", A, 1), "b/c.txt": Entry("b/c.txt", B, 2)}


@pytest.mark.parametrize("version", ["4", "0", "true", "1.5", '"1"', "null"])
def test_unknown_format_version_is_refused(version: str) -> None:
    with pytest.raises(ManifestError, match="not supported") as info:
        mm.loads(craft([f"{A} 1 a"], gart=version))
    assert "upgrade" in info.value.hint


def test_edited_digest_is_refused() -> None:
    text = mm.dumps(sample())
    digest = re.search(r"digest: sha256:([0-9a-f]{64})", text)
    assert digest is not None
    flipped = digest.group(1)[:-1] + ("0" if digest.group(1)[-1] != "0" else "1")
    with pytest.raises(ManifestError, match="digest does not match") as info:
        mm.loads(text.replace(digest.group(1), flipped))
    assert "git checkout" in info.value.hint


def test_hand_edited_file_line_is_refused() -> None:
    text = mm.dumps(sample())
    refused(text.replace(f"{A} 1 a.txt", f"{C} 1 a.txt"), "digest does not match")
    refused(text.replace(f"{A} 1 a.txt", f"{A} 1 a-renamed.txt"), "digest does not match")


@pytest.mark.parametrize(
    "line",
    [f"{A}  1 a", f"{A} 01 a", f"{A.upper()} 1 a", f"{A[:-1]} 1 a", f"{A} -1 a", f"{A} 1",
     f"{A} 1 ", f"{A} x a", f"sha256:{A} 1 a"],
)
def test_malformed_file_lines_are_refused(line: str) -> None:
    refused(craft([f"{B} 2 0-first", line]), "file line 2 is not")


def test_unknown_and_missing_fields_are_refused() -> None:
    text = mm.dumps(sample())
    refused(text + "extra: 1\n", "unknown field")
    refused(text.replace("type: dataset\n", ""), "missing field")


def test_wrong_field_types_are_refused() -> None:
    refused(craft([f"{A} 1 a"], metadata="[1, 2]"), "'metadata' must be")
    refused(craft([f"{A} 1 a"], name="3"), "'name' must be")
    refused(craft([f"{A} 1 a"], files="[a]\n"), "block of lines")


def test_size_and_count_must_match() -> None:
    refused(craft([f"{A} 1 a"], size="2"), "size/count")
    refused(craft([f"{A} 1 a"], count="2"), "size/count")


@pytest.mark.parametrize(
    "path", ["../escape", "a/../../x", "/etc/passwd", ".git/config", "a/.git/hooks/post-checkout",
             ".GIT/config", "a\\b", "C:/x", "a//b", "./a"],
)
def test_unsafe_entry_paths_are_refused_even_with_a_correct_digest(path: str) -> None:
    refused(craft([f"{A} 1 {path}"]), "path")


def test_unsorted_duplicate_and_clashing_entries_are_refused() -> None:
    refused(craft([f"{A} 1 b", f"{B} 2 a"]), "out of order")
    refused(craft([f"{A} 1 a", f"{B} 2 a"]), "duplicated")
    refused(craft([f"{A} 1 a", f"{B} 2 a/b"]), "both a file and a directory")


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [("path", "../outside", "not normalized"), ("path", "/abs", "not a relative"),
     ("path", ".git", "inside .git"), ("path", ".gart/cache", r"inside \.gart"),
     ("name", "../../etc", "invalid artifact name"), ("name", "Bad Name", "invalid artifact name"),
     ("type", "Bad Type", "invalid artifact type"), ("include", '["../x"]', "not normalized"),
     ("include", "[]", "at least one path"), ("exclude", '[""]', "exclude pattern")],
)
def test_unsafe_fields_are_refused(field: str, value: str, problem: str) -> None:
    refused(craft([f"{A} 1 a"], **{field: value}), problem)


def test_repository_root_artifact_cannot_reach_into_gart_dir() -> None:
    refused(craft([f"{A} 1 .gart/config.yaml"], path='"."'), r"inside \.gart")
    refused(craft([f"{A} 1 x"], path='"."', include='[".gart"]'), r"inside \.gart")
    ok = mm.loads(craft([f"{A} 1 model.pt"], path='"."', include='["model.pt"]'))
    assert ok.path == "." and ok.include == ("model.pt",)


@pytest.mark.parametrize(
    "hostile",
    [
        "gart: 1\nname: !!python/object/apply:os.system ['touch {marker}']\n",
        "gart: 1\nname: &n x\ntype: *n\n",
        "gart: 1\ngart: 1\n",
        "gart: 1\nmetadata:\n  <<: {a: 1}\n",
        "[" * 5000 + "]" * 5000,
        "- just\n- a list\n",
    ],
)
def test_hostile_yaml_is_refused(hostile: str, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    with pytest.raises(ManifestError):
        mm.loads(hostile.replace("{marker}", str(marker)).replace("{a}", A))
    assert not marker.exists()


def test_files_block_may_not_hide_extra_lines_through_a_newline_in_a_path() -> None:
    # A file named "x\n<oid> 1 injected" must not turn into two entries.
    with pytest.raises(GartError):
        mm.dumps(sample(entries=(Entry(f"x\n{A} 1 injected", A, 1),)))


def test_writer_refuses_what_the_reader_would_refuse() -> None:
    deep: dict[str, Any] = {}
    cursor = deep
    for _ in range(40):
        cursor["k"] = {}
        cursor = cursor["k"]
    with pytest.raises(ManifestError, match="nested deeper"):
        mm.dumps(sample(metadata=deep))
    with pytest.raises(ManifestError):
        mm.dumps(sample(metadata={"k": "\ud800"}))
    with pytest.raises(ManifestError):
        mm.dumps(sample(metadata={1: "non-string key"}))  # type: ignore[dict-item]
    with pytest.raises(ManifestError):
        mm.dumps(sample(metadata={"k": object()}))
    with pytest.raises(ManifestError):
        mm.dumps(sample(description="bell\x07"))
    with pytest.raises(GartError):
        mm.dumps(sample(entries=(Entry("a", "not-hex", 1),)))
    with pytest.raises(GartError):
        mm.dumps(sample(entries=(Entry("a", A, -1),)))


# ---- property: write then read gives the same bytes and the same entries -----------------


def _segment_ok(segment: str) -> bool:
    return (
        segment not in (".", "..")
        and segment.lower() != ".git"
        and not CONTROL_CHARS_RE.search(segment)
    )


SEGMENTS = st.text(
    alphabet=st.characters(exclude_characters="/\\", exclude_categories=("Cs",)),
    min_size=1, max_size=12,
).filter(_segment_ok)
PATHS = st.lists(SEGMENTS, min_size=1, max_size=4).map("/".join).filter(
    lambda p: not (len(p) > 1 and p[1] == ":") and p.split("/")[0].lower() != ".gart"
)


def _without_clashes(paths: set[str]) -> list[str]:
    dirs = {p.rsplit("/", 1)[0] for p in paths if "/" in p}
    every_dir = set()
    for d in dirs:
        parts = d.split("/")
        every_dir.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    return sorted(p for p in paths if p not in every_dir)


PATH_SETS = st.sets(PATHS, max_size=25).map(_without_clashes)
OIDS = st.binary(min_size=32, max_size=32).map(bytes.hex)
SIZES = st.integers(min_value=0, max_value=mm.MAX_FILE_SIZE)
SCALARS = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=20)
)
METADATA = st.dictionaries(
    st.text(max_size=10),
    st.recursive(
        SCALARS,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                    max_size=4),
        max_leaves=12,
    ),
    max_size=6,
)
NAMES = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,20}(/[a-z0-9][a-z0-9_-]{0,10})?", fullmatch=True)
DESCRIPTIONS = st.text(max_size=40).map(lambda s: CONTROL_CHARS_RE.sub("", s.replace("\n", "")))


@st.composite
def manifests(draw: st.DrawFn) -> Manifest:
    paths = draw(PATH_SETS)
    entries = tuple(Entry(p, draw(OIDS), draw(SIZES)) for p in paths)
    return Manifest(
        name=draw(NAMES), type=draw(st.sampled_from(["dataset", "model", "eval.results"])),
        description=draw(DESCRIPTIONS), metadata=draw(METADATA),
        path=draw(PATHS), entries=entries,
        exclude=tuple(draw(st.lists(SEGMENTS.filter(lambda s: s.strip()), max_size=3))),
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(manifests())
@example(sample(metadata={"hex": "0x1F", "bin": "0b11", "<<": "merge?", "yes": "no"}))
@example(sample(entries=(Entry("with space/ü ñ 😀.bin", A, 0), Entry(" lead/trail ", B, 2))))
def test_write_then_read_gives_same_bytes_and_entries(manifest: Manifest) -> None:
    text = mm.dumps(manifest)
    back = mm.loads(text.encode("utf-8"))
    assert back == manifest
    assert back.entries == manifest.entries
    assert back.digest == manifest.digest
    assert mm.dumps(back) == text
    assert text.count("\n") == 12 + len(manifest.entries)  # one line per field and per file


def test_a_files_block_whose_last_line_lacks_its_newline_is_one_manifest_error() -> None:
    """Found by the splice fuzzer: every line well formed but the last one unterminated
    used to escape as a StopIteration traceback."""
    text = mm.dumps(sample(entries=(Entry("a/b.bin", A, 4), Entry("c.bin", A, 4))))
    assert text.endswith("c.bin\n")
    with pytest.raises(ManifestError, match="does not end with a newline"):
        mm.loads(text[:-1])
