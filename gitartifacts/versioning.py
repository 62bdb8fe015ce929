"""Versions and aliases of a repository's artifacts (git tags), and aliases that runs asked for."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from gitartifacts import manifest as manifestmod
from gitartifacts.aliases import Version
from gitartifacts.errors import (
    ArtifactNotFoundError,
    GartError,
    InvalidNameError,
    ManifestError,
    UsageError,
)
from gitartifacts.paths import case_clash, validate_name
from gitartifacts.repocore import RepoCore, _resolve_in

if TYPE_CHECKING:  # imported only by the commands that need them, to keep start-up fast
    from gitartifacts.gitmeta import GitMeta

META_KIND = "meta"
META_FORMAT = 1
MAX_META_BYTES = 2 << 20


@dataclass
class VersionMeta:
    """What was edited on a published version after the fact (W&B allows it): description,
    metadata, deletion. None means "as in the manifest". `sha` is the record it was read from,
    the compare-and-swap guard of the next write. Stored as a JSON blob at
    `refs/gart/meta/<name>@v<N>`, shared through origin like tags; never changes the digest."""

    name: str
    version: str
    digest: str
    description: str | None = None
    metadata: dict[str, Any] | None = None
    deleted: str | None = None  # UTC time of the deletion
    sha: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def dumps(self) -> bytes:
        body = {"gart_meta": META_FORMAT, "name": self.name, "version": self.version,
                "digest": self.digest, "description": self.description,
                "metadata": self.metadata, "deleted": self.deleted}
        return json.dumps(body, sort_keys=True, ensure_ascii=False).encode("utf-8")


def parse_meta(data: bytes, version: Version) -> VersionMeta | None:
    """A record read from git (untrusted): None unless well-formed and about this version."""
    if len(data) > MAX_META_BYTES:
        return None
    try:
        body = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(body, dict) or body.get("gart_meta") != META_FORMAT:
        return None
    if (body.get("name"), body.get("version"), body.get("digest")) != (
            version.name, version.label, version.digest):
        return None  # a record copied onto another version is not this version's
    description, metadata, deleted = (body.get(k) for k in ("description", "metadata", "deleted"))
    if description is not None and not isinstance(description, str):
        return None
    if metadata is not None and not isinstance(metadata, dict):
        return None
    if deleted is not None and not isinstance(deleted, str):
        return None
    try:  # the same rules as a manifest's own description and metadata
        manifestmod.validate(manifestmod.Manifest(
            name=version.name, description=description or "", metadata=metadata or {}),
            entries=False)
    except GartError:
        return None
    return VersionMeta(version.name, version.label, version.digest, description, metadata,
                       deleted)


class Versioning(RepoCore):
    """Versions and aliases of artifacts, as git tags."""

    def requested_aliases(self, name: str, digest: str) -> list[str]:
        """Aliases that runs asked for (log_artifact(aliases=…)) and that belong to this
        content: for each alias, the newest run requesting it decides where it points."""
        newest: dict[str, str] = {}  # alias -> digest its newest requester logged
        for run in self.load_runs()[0]:  # newest first
            for ref in run.outputs:
                if ref.name == name and ref.requested:
                    for alias in ref.requested.split(","):
                        newest.setdefault(alias, ref.digest)
        return sorted(alias for alias, wanted in newest.items() if wanted == digest)

    # -- versions and aliases -------------------------------------------------------------

    def versions(self, name: str, offline: bool = False,
                 include_deleted: bool = False) -> list[Version]:
        """Published versions, oldest first; deleted ones (tombstoned) only if asked."""
        validate_name(name)
        if not offline:
            self.registry.sync(name)
            self.sync_meta(name)
        found = self.registry.versions(name)
        if include_deleted:
            return found
        deleted = {label for label, meta in self.version_metas(name, found).items()
                   if meta.deleted}
        return [v for v in found if v.label not in deleted]

    # -- edits after publishing: description, metadata, deletion --------------------------

    @property
    def gitmeta(self) -> GitMeta:
        from gitartifacts.gitmeta import GitMeta

        return GitMeta(self.root)

    def sync_meta(self, name: str) -> None:
        """Fetch the artifact's edit records from origin (force: origin's value wins)."""
        if self.registry.remote is not None:
            self.gitmeta.fetch(META_KIND, f"{validate_name(name)}@*", self.registry.remote)

    def version_metas(self, name: str, versions: list[Version]) -> dict[str, VersionMeta]:
        """{label: VersionMeta} of the versions that have an edit record (local refs only)."""
        refs = self.gitmeta.refs(META_KIND, f"{validate_name(name)}@")
        if not refs:
            return {}
        by_label = {v.label: v for v in versions}
        out: dict[str, VersionMeta] = {}
        for key, sha in refs.items():
            version = by_label.get(key.rpartition("@")[2])
            if version is None or key != f"{name}@{version.label}":
                continue
            meta = parse_meta(self.gitmeta.read(sha), version)
            if meta is not None:
                meta.sha = sha
                out[version.label] = meta
        return out

    def version_meta(self, version: Version) -> VersionMeta:
        """The edit record of one version (an empty one when it was never edited)."""
        found = self.version_metas(version.name, [version]).get(version.label)
        if found is not None:
            return found
        sha = self.gitmeta.refs(META_KIND, f"{version.name}@{version.label}").get(
            f"{version.name}@{version.label}")
        return VersionMeta(version.name, version.label, version.digest, sha=sha)

    def write_version_meta(self, meta: VersionMeta) -> VersionMeta:
        """Store an edit record if nobody changed it since `meta.sha` was read (locally and on
        origin); a lost race raises TagRaceError and changes nothing."""
        manifestmod.validate(manifestmod.Manifest(
            name=meta.name, description=meta.description or "", metadata=meta.metadata or {}),
            entries=False)
        data = meta.dumps()
        if len(data) > MAX_META_BYTES:
            raise ManifestError(f"the edits of {meta.name}@{meta.version} are too large",
                                hint="keep metadata under 1 MiB")
        sha = self.gitmeta.write(META_KIND, f"{meta.name}@{meta.version}", data, meta.sha,
                                 self.registry.remote)
        return replace(meta, sha=sha)

    def delete_version(self, name: str, label: str, delete_aliases: bool = False) -> Version:
        """Tombstone a version (W&B's `delete`): its aliases go, its number is never reused,
        `versions` hides it. The tag stays, so the next version still counts past it."""
        self.registry.sync(name)
        self.sync_meta(name)
        version = next((v for v in self.registry.versions(name) if v.label == label), None)
        if version is None:
            raise ArtifactNotFoundError(f"{name} has no version {label}",
                                        hint=self.registry.known_refs_hint(name))
        meta = self.version_meta(version)
        if meta.deleted:
            return version
        custom = [a for a in version.aliases if a != "latest"]
        if custom and not delete_aliases:
            raise UsageError(
                f"{name}:{label} has aliases ({', '.join(custom)}); deleting it would leave "
                "them dangling",
                hint="pass delete_aliases=True to remove them too, or move them first",
            )
        for alias in custom:
            self.delete_alias(name, alias, force=True)
        meta.deleted = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.write_version_meta(meta)
        return version

    def set_alias(self, name: str, ref: str, alias: str, force: bool = False) -> tuple[
            Version, str | None]:
        """Point `name@alias` at the version `ref` resolves to; returns (version, previous)."""
        version = self._published(name, ref)
        self.check_alias_case(name, alias)
        protected = alias in self.config.protected_aliases
        previous = self.registry.set_alias(name, version, alias, protected, force)
        return version, previous

    def check_alias_case(self, name: str, alias: str) -> None:
        """Refuse an alias that differs from one of the artifact's aliases only in case."""
        clash = case_clash(alias, self.registry.aliases(name))
        if clash is not None:
            raise InvalidNameError(
                f"alias {alias!r} of {name} differs from its alias {clash!r} only in case",
                hint=f"use {clash!r}, or a name that differs in more than case "
                "(case-insensitive filesystems would merge their tags)",
            )

    def delete_alias(self, name: str, alias: str, force: bool = False) -> str:
        protected = alias in self.config.protected_aliases
        return self.registry.delete_alias(name, alias, protected, force)

    def _published(self, name: str, ref: str) -> Version:
        manifest, resolved = _resolve_in(self.git, self.registry, name, ref, offline=False)
        if resolved is None or resolved.version is None:
            raise ArtifactNotFoundError(
                f"{name}@{ref} is not a published version",
                hint=self.registry.known_refs_hint(name),
            )
        return resolved.version

