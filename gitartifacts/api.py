"""The Python API: `Repo`, one facade over a repository's rooms, and the names callers use."""

from __future__ import annotations

from gitartifacts.foreign import ForeignRepo
from gitartifacts.gates import Gates
from gitartifacts.ignore import IGNORE_FILE
from gitartifacts.integrity import FsckReport, GcResult
from gitartifacts.parts import Parts
from gitartifacts.repocore import GART_GITIGNORE, RepoCore
from gitartifacts.sync import PushResult
from gitartifacts.tracking import AddResult, Artifact, ArtifactStatus, DiffResult, default_name

__all__ = [
    "GART_GITIGNORE", "IGNORE_FILE", "AddResult", "Artifact", "ArtifactStatus", "DiffResult",
    "ForeignRepo", "FsckReport", "GcResult", "PushResult", "Repo", "RepoCore", "default_name",
]


class Repo(Parts, Gates):
    """A git repository with gart initialised in it.

    Its methods come from the rooms: `repocore` (config, git, cache, manifests, resolve),
    `tracking` (add, save, status, checkout, diff), `remoteconfig` (remote_*),
    `versioning` (versions, aliases), `sync` (push, fetch, pull, fsck), `integrity` (gc,
    fsck --remote, and the locks that keep them safe beside add, pull and push), `gates`
    (status_gate, push_plan, verify, resolve_conflict), `drafts` (add_incremental,
    remove_paths, rebase_draft, publish_draft) and `parts` (upsert, finish, parts, over
    integrity: a draft or part takes the same locks as add and push)."""
