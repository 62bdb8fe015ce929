"""The Python API: `Repo`, one facade over a repository's rooms, and the names callers use."""

from __future__ import annotations

from gitartifacts.foreign import ForeignRepo
from gitartifacts.gates import Gates
from gitartifacts.ignore import IGNORE_FILE
from gitartifacts.parts import Parts
from gitartifacts.repocore import GART_GITIGNORE, RepoCore
from gitartifacts.sync import PushResult
from gitartifacts.tracking import AddResult, Artifact, ArtifactStatus, DiffResult, default_name

__all__ = [
    "GART_GITIGNORE", "IGNORE_FILE", "AddResult", "Artifact", "ArtifactStatus", "DiffResult",
    "ForeignRepo", "PushResult", "Repo", "RepoCore", "default_name",
]


class Repo(Parts, Gates):
    """A git repository with gart initialised in it.

    Its methods come from the rooms: `repocore` (config, git, cache, manifests, resolve),
    `tracking` (add, save, status, checkout, diff), `remoteconfig` (remote_*),
    `versioning` (versions, aliases), `sync` (push, fetch, pull, fsck), `gates`
    (status_gate, push_plan, verify, resolve_conflict), `drafts` (add_incremental,
    remove_paths, rebase_draft, publish_draft) and `parts` (upsert, finish, parts)."""
