"""Hostile manifests, generated: whatever bytes git carries, the parser answers with a
manifest or a ManifestError — never another exception — and a manifest it accepts is
safe to write out (paths relative, normalized, outside .git and .gart).

An atheris target for longer runs by hand: `python tests/test_manifest_fuzz.py` (needs
`pip install atheris`)."""

from __future__ import annotations

import sys

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gitartifacts import manifest as mm
from gitartifacts.errors import ManifestError
from gitartifacts.paths import check_relative_path

OID = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
VALID = mm.dumps(mm.Manifest(
    "data", entries=(mm.Entry("a/b.bin", OID, 4), mm.Entry("c.txt", OID, 4)))).encode()

# Pieces an attacker would splice in: YAML tricks, path tricks, huge numbers, other versions.
TRICKS = [b"..", b"/", b"\\", b".git", b".gart", b"\x00", b"\n", b"&a", b"*a", b"!!python/",
          b"<<: ", b"gart: 3", b"gart: 2", b"refs: |", b"  ", b"\t", b"99999999999999999999",
          b"-1", b"{", b"[", b"'", b'"', b"\xff", b"\xc3", b"~", b"null", b"yes"]


def parse(data: bytes) -> None:
    try:
        manifest = mm.loads(data, "fuzzed.yaml")
    except ManifestError:
        return
    for entry in manifest.entries:  # accepted: every path is one gart may write
        check_relative_path(entry.path, "path")
    for ref in manifest.references:
        check_relative_path(ref.path, "path")
    if manifest.path != ".":
        check_relative_path(manifest.path, "path")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_random_bytes_give_a_manifest_or_a_manifest_error(data: bytes) -> None:
    parse(data)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(VALID)), st.integers(0, 8),
                          st.sampled_from(TRICKS)), max_size=6))
def test_spliced_valid_manifests_give_a_manifest_or_a_manifest_error(
    edits: list[tuple[int, int, bytes]],
) -> None:
    data = bytearray(VALID)
    for at, cut, piece in edits:
        at = min(at, len(data))
        data[at : at + cut] = piece
    parse(bytes(data))


if __name__ == "__main__":  # pragma: no cover - a longer, coverage-guided run by hand
    import atheris  # type: ignore[import-not-found]

    atheris.instrument_all()
    atheris.Setup(sys.argv, lambda data: parse(bytes(data)))
    atheris.Fuzz()
