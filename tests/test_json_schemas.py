"""Every `--json` output matches the JSON Schema documented for it in docs/cli.md."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from conftest import GartResult, World, git

DOC = Path(__file__).resolve().parent.parent / "docs" / "cli.md"
REQUIRED = {"status", "versions", "show", "ls", "diff", "runs", "lineage", "fsck"}

# For each documented schema, the commands whose output it describes (run in `published`
# after a `gart run`, with one file added to raw and one changed in labels).
COMMANDS: dict[str, list[list[str]]] = {
    "status": [["status", "--json"], ["status", "--json", "--exit-code"]],
    "versions": [["versions", "raw", "--json"], ["versions", "model", "--json"]],
    "show": [["show", "raw@production", "--json"], ["show", "labels", "--json"],
             ["show", "model@HEAD", "--json"]],
    "ls": [["ls", "raw@v0", "--json"], ["ls", "labels", "--json"]],
    "diff": [["diff", "raw", "--json"], ["diff", "labels", "--json"],
             ["diff", "raw", "v0", "--json"]],
    "runs": [["runs", "--json"], ["runs", "--job-type", "nothing", "--json"]],
    "lineage": [["lineage", "raw@production", "--format", "json"],
                ["lineage", "--format", "json"], ["lineage", "model@v0", "--format", "json"]],
    "fsck": [["fsck", "--json"]],
    "verify": [["verify", "raw@production", "model@latest", "--json"]],
    "push --dry-run": [["push", "--dry-run", "--json"]],
    "du": [["du", "--json"], ["du", "raw", "--json"]],
}


def documented_schemas() -> dict[str, Any]:
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## JSON output schemas"):]
    found = {}
    for match in re.finditer(r"^### `([^`]+)`\n(.*?)^```json\n(.*?)^```", section,
                             re.M | re.S):
        found[match.group(1)] = json.loads(match.group(3))
    return found


def test_the_schemas_are_valid_and_cover_the_commands() -> None:
    schemas = documented_schemas()
    assert REQUIRED <= set(schemas)
    assert set(schemas) == set(COMMANDS)
    for schema in schemas.values():
        jsonschema.Draft202012Validator.check_schema(schema)


@pytest.fixture
def world(published: World, gart: Callable[..., GartResult]) -> World:
    repo = published.root
    done = gart("run", "--job-type", "train", "-i", "raw@production", "-o", "model=models",
                "--", "sh", "-c", "mkdir -p models && echo weights > models/w.bin")
    assert done.rc == 0, done.err
    git(repo, "commit", "-q", "-m", "train")
    assert gart("push").rc == 0
    (repo / "raw" / "new.bin").write_bytes(b"new")
    first = sorted((repo / "labels").iterdir())[0]
    first.write_bytes(b"changed")
    return published


def test_every_json_output_matches_its_schema(world: World,
                                              gart: Callable[..., GartResult]) -> None:
    schemas = documented_schemas()
    for name, runs in COMMANDS.items():
        validator = jsonschema.Draft202012Validator(schemas[name])
        for args in runs:
            done = gart(*args)
            assert done.rc in (0, 1), done.err  # status --exit-code: 1 for the edits
            data = json.loads(done.out)
            errors = sorted(validator.iter_errors(data), key=lambda e: list(e.path))
            assert not errors, f"gart {' '.join(args)}: " + "; ".join(
                f"{list(e.path)}: {e.message}" for e in errors[:5])
