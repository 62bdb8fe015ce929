"""W&B's public `Api` over git: look artifacts up by `[entity/project/]name[:version|alias]`.

`entity/project` names a git repository through `projects:` in `.gart/config.yaml`
(`team/vision: git@host:team/vision.git`; `.` means this repository), and the project given
to `init()` / `Api(overrides=...)` names this repository's own project, so its own paths
resolve locally. Other projects are read without a clone (`ForeignRepo`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gitartifacts.api import ForeignRepo, Repo
from gitartifacts.errors import ArtifactNotFoundError, GartError, UsageError
from gitartifacts.paths import VERSION_RE, parse_spec
from gitartifacts.wandb_artifact import ArtifactVersion, mark_latest


@dataclass(frozen=True)
class Located:
    """Where a W&B path points: this repository, or another one by URL."""

    spec: str  # name[:ref] inside that repository
    project: str | None  # 'entity/project' as written, if any
    url: str | None  # None: this repository


_DEFAULT: dict[str, str] = {}  # repository root -> the project init() named there, for Api()


def own_project(entity: str | None, project: str | None) -> str | None:
    """'entity/project' (or 'project'); None when no project is named."""
    if project is None:
        return None
    return project if entity is None or "/" in project else f"{entity}/{project}"


def set_default_project(repo: Repo, entity: str | None, project: str | None) -> None:
    """Remember the project init() named for this repository, so a later `Api()` in this
    process resolves its paths locally."""
    named = own_project(entity, project)
    if named is not None:
        _DEFAULT[str(repo.root)] = named


def locate(repo: Repo, path: str, own: str | None = None) -> Located:
    """Split `entity/project/name:ref`, `project/name:ref` or `name:ref` into a repository
    and a spec. A namespaced artifact name of this repository (`team/raw`) stays a name."""
    if "/" not in path:
        return Located(path, None, None)
    projects = repo.config.projects
    parts = path.split("/")
    own_short = own.rpartition("/")[2] if own else None
    for width in (2, 1):
        if len(parts) <= width:
            continue
        project, rest = "/".join(parts[:width]), "/".join(parts[width:])
        if project in projects:  # the committed mapping first, then the run's own project
            url = projects[project]
            return Located(rest, project, None if url == "." else _absolute(repo, url))
        if project == own or (width == 1 and project == own_short):
            return Located(rest, project, None)
    name = parse_spec(path).name
    if name in repo.artifact_names() or repo.registry.tags(name) or len(parts) != 3:
        return Located(path, None, None)
    known = ", ".join(sorted(projects)) or "none"
    raise ArtifactNotFoundError(
        f"unknown project {'/'.join(parts[:2])!r} in {path!r} (configured projects: {known})",
        hint=f"map it to its git repository in .gart/config.yaml: `projects: "
        f"{{{'/'.join(parts[:2])}: git@host:{'/'.join(parts[:2])}.git}}`",
    )


def _absolute(repo: Repo, url: str) -> str:
    """A relative local path in `projects:` is relative to the repository root."""
    if "://" in url or ":" in url.split("/")[0] or os.path.isabs(os.path.expanduser(url)):
        return os.path.expanduser(url)
    return str((repo.root / url).resolve())


def load_version(repo: Repo, path: str, type: str | None = None,
                 own: str | None = None) -> ArtifactVersion:
    """The version a W&B path names; a bare name means `:latest`. Deleted versions are not
    found; `type`, when given, must match (the error names both)."""
    where = locate(repo, path, own)
    if where.url is not None:
        found = _foreign_version(repo, where)
    else:
        found = _local_version(repo, where.spec, where.project)
    if type is not None and found.type != type:
        raise UsageError(
            f"{found.name} is of type {found.type!r}, not {type!r}",
            hint=f"pass type={found.type!r}, or no type",
        )
    return found


def _local_version(repo: Repo, spec: str, project: str | None) -> ArtifactVersion:
    parsed = parse_spec(spec)
    name, ref = parsed.name, parsed.ref
    every = repo.versions(name, include_deleted=True)  # syncs tags and edit records
    live = repo.versions(name, offline=True)
    if ref is None and not every and name in repo.artifact_names():
        # Added with `gart add` but never published: the working-tree manifest.
        return ArtifactVersion(repo, repo.load_manifest(name), None, project)
    ref = ref or "latest"
    if ref == "latest":
        if not live:
            raise ArtifactNotFoundError(
                f"{name} has no versions" + (" left (all deleted)" if every else ""),
                hint=f"log one with run.log_artifact, or check the name: {repo._known_hint()}",
            )
        label = live[-1].label
    elif VERSION_RE.fullmatch(ref):
        label = ref
    else:
        label = ""
    if label and label not in {v.label for v in live}:
        gone = label in {v.label for v in every}
        raise ArtifactNotFoundError(
            f"{name}:{label} " + ("was deleted" if gone else "does not exist"),
            hint=repo.registry.known_refs_hint(name),
        )
    manifest, resolved = repo.resolve_ref(f"{name}@{label or ref}", offline=True)
    version = resolved.version if resolved is not None else None
    if version is not None and version.label not in {v.label for v in live}:
        raise ArtifactNotFoundError(f"{name}:{ref} points at {version.label}, which was deleted",
                                    hint=repo.registry.known_refs_hint(name))
    if version is not None:
        mark_latest(version, live)
    return ArtifactVersion(repo, manifest, version, project)


def _foreign_version(repo: Repo, where: Located) -> ArtifactVersion:
    assert where.url is not None
    foreign = ForeignRepo(where.url)
    parsed = parse_spec(where.spec)
    manifest, commit, label = foreign.resolve_labelled(where.spec)
    version = next((v for v in foreign.registry.versions(parsed.name) if v.label == label), None)
    return ArtifactVersion(repo, manifest, version, where.project, foreign, commit)


class Api:
    """W&B's public API (`wandb.Api()`), no run needed: look up, list, check, delete."""

    def __init__(self, overrides: Mapping[str, Any] | None = None, timeout: int | None = None,
                 api_key: str | None = None, path: str | os.PathLike[str] | None = None) -> None:
        del timeout, api_key  # no server: git and the remote bring their own credentials
        overrides = dict(overrides or {})
        self.repo = Repo(path)
        self.entity: str | None = overrides.get("entity")
        self.project: str | None = overrides.get("project")

    @property
    def _own(self) -> str | None:
        return own_project(self.entity, self.project) or _DEFAULT.get(str(self.repo.root))

    def artifact(self, name: str, type: str | None = None) -> ArtifactVersion:
        """One version: `[entity/project/]name[:version|alias]` (bare name: latest)."""
        if not name:
            raise UsageError("an artifact name is required", hint="e.g. api.artifact('data:v0')")
        return load_version(self.repo, name, type, self._own)

    def artifacts(self, type_name: str, name: str, per_page: int = 50,
                  tags: Any = None) -> list[ArtifactVersion]:
        """Every live version of an artifact, newest first (deleted ones are hidden)."""
        del per_page, tags
        where = locate(self.repo, name, self._own)
        base = parse_spec(where.spec).name
        if where.url is not None:
            foreign = ForeignRepo(where.url)
            labels = [v.label for v in foreign.versions(base)]
        else:
            labels = [v.label for v in self.repo.versions(base)]
        prefix = f"{where.project}/" if where.project else ""
        found = [load_version(self.repo, f"{prefix}{base}:{label}", None, self._own)
                 for label in reversed(labels)]
        for version in found[:1]:
            if version.type != type_name:
                raise UsageError(f"{base} is of type {version.type!r}, not {type_name!r}",
                                 hint=f"pass {version.type!r} as the type")
        return found

    artifact_versions = artifacts

    def artifact_exists(self, name: str, type: str | None = None) -> bool:
        """Whether `name` resolves to a live version (of `type`, when given)."""
        try:
            self.artifact(name, type)
        except (ArtifactNotFoundError, UsageError):
            return False
        except GartError as exc:
            if isinstance(exc, LookupError | ValueError):
                return False
            raise
        return True

    def artifact_collection_exists(self, name: str, type: str) -> bool:
        try:
            return bool(self.artifacts(type, name))
        except (ArtifactNotFoundError, UsageError):
            return False


__all__ = ["Api", "Located", "load_version", "locate", "own_project"]
