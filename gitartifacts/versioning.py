"""Versions and aliases of a repository's artifacts (git tags), and aliases that runs asked for."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gitartifacts.aliases import Version
from gitartifacts.errors import ArtifactNotFoundError, InvalidNameError
from gitartifacts.paths import case_clash, validate_name
from gitartifacts.repocore import RepoCore, _resolve_in

if TYPE_CHECKING:  # imported only by the commands that need them, to keep start-up fast
    pass


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

    def versions(self, name: str, offline: bool = False) -> list[Version]:
        validate_name(name)
        if not offline:
            self.registry.sync(name)
        return self.registry.versions(name)

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

