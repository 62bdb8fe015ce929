"""Versions and aliases as git tags: publish `name@vN`, move `name@alias`, resolve refs.

Tags are annotated; their message is a small `key: value` record (digest, size, count,
version) that lets a reader list versions without reading any manifest, and lets
`resolve` detect a tag whose commit holds a manifest with another digest (tampering).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gitartifacts.errors import (
    ArtifactNotFoundError,
    ConflictError,
    GartError,
    GitError,
    ManifestError,
    TagRaceError,
)
from gitartifacts.gitrepo import GitRepo, TagInfo
from gitartifacts.manifest import Manifest
from gitartifacts.paths import VERSION_RE, validate_alias, validate_name

PUBLISH_ATTEMPTS = 8
_FIELD_RE = re.compile(r"([a-z_]+): (.*)")
MESSAGE_HEADER = "gart-version: 1"
ALIAS_HEADER = "gart-alias: 1"


@dataclass
class Version:
    """One published version of an artifact."""

    name: str
    number: int
    digest: str
    size: int
    count: int
    commit: str
    author: str
    time: int
    tag: str
    aliases: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"v{self.number}"


@dataclass(frozen=True)
class Resolved:
    """What a `name@ref` pointed at: the commit holding the manifest, and how we got there."""

    name: str
    ref: str
    commit: str
    version: Version | None  # None for plain git revisions


def parse_message(text: str) -> dict[str, str]:
    """The `key: value` fields of a gart tag message (unknown lines are ignored)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        match = _FIELD_RE.fullmatch(line.strip())
        if match:
            out[match.group(1)] = match.group(2)
    return out


def version_message(name: str, number: int, manifest: Manifest, author: str) -> str:
    return (
        f"{MESSAGE_HEADER}\nname: {name}\nversion: v{number}\ndigest: {manifest.digest}\n"
        f"size: {manifest.size}\ncount: {manifest.count}\nauthor: {author}\n"
        f"time: {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n"
    )


def alias_message(name: str, alias: str, version: Version, author: str) -> str:
    return (
        f"{ALIAS_HEADER}\nname: {name}\nalias: {alias}\nversion: {version.label}\n"
        f"digest: {version.digest}\nauthor: {author}\n"
    )


class Registry:
    """Versions and aliases of the artifacts in one git repository (and its origin)."""

    def __init__(self, git: GitRepo, remote: str | None = "origin") -> None:
        self.git = git
        self.remote = remote if remote and git.has_remote(remote) else None

    # -- reading ------------------------------------------------------------------------

    def sync(self, name: str) -> None:
        """Fetch this artifact's tags from origin, force-updating moved aliases."""
        if self.remote is None:
            return
        depth = 1 if self.git.is_shallow() else None
        self.git.fetch_tags(f"{validate_name(name)}@*", remote=self.remote, depth=depth)

    def tags(self, name: str) -> dict[str, TagInfo]:
        prefix = f"{validate_name(name)}@"
        # A prefix also matches `name@x/...` of a longer namespaced name: keep exact ones.
        return {
            t[len(prefix):]: info
            for t, info in self.git.list_tags(prefix).items()
            if "/" not in t[len(prefix):]
        }

    def versions(self, name: str, tags: dict[str, TagInfo] | None = None) -> list[Version]:
        """Published versions, oldest first, each with the aliases pointing at it."""
        tags = self.tags(name) if tags is None else tags
        versions: dict[int, Version] = {}
        for ref, info in tags.items():
            if not VERSION_RE.fullmatch(ref):
                continue
            fields = parse_message(info.message)
            number = int(ref[1:])
            versions[number] = Version(
                name=name, number=number, digest=fields.get("digest", ""),
                size=_int(fields.get("size")), count=_int(fields.get("count")),
                commit=info.commit, author=fields.get("author") or info.tagger,
                time=info.time, tag=info.name,
            )
        by_digest = {v.digest: v for v in versions.values()}
        for ref, info in tags.items():
            if VERSION_RE.fullmatch(ref):
                continue
            target = by_digest.get(parse_message(info.message).get("digest", ""))
            if target is None:
                target = next((v for v in versions.values() if v.commit == info.commit), None)
            if target is not None:
                target.aliases.append(ref)
        ordered = [versions[n] for n in sorted(versions)]
        if ordered:
            ordered[-1].aliases.insert(0, "latest")
        for v in ordered:
            v.aliases.sort(key=lambda a: (a != "latest", a))
        return ordered

    def aliases(self, name: str) -> dict[str, TagInfo]:
        return {r: i for r, i in self.tags(name).items() if not VERSION_RE.fullmatch(r)}

    def resolve(self, name: str, ref: str) -> Resolved | None:
        """A version (`vN`, `latest`) or alias to its commit; None if no such tag exists."""
        tags = self.tags(name)  # listed once: with thousands of tags this is the cost
        versions = self.versions(name, tags)
        if ref == "latest":
            if not versions:
                raise ArtifactNotFoundError(
                    f"{name} has no published versions yet",
                    hint="publish one with `gart push` after committing the manifest",
                )
            return Resolved(name, ref, versions[-1].commit, versions[-1])
        info = tags.get(ref)
        if info is None:
            return None
        if VERSION_RE.fullmatch(ref):
            version = next(v for v in versions if v.label == ref)
        else:
            fields = parse_message(info.message)
            version = next((v for v in versions if v.label == fields.get("version")), None)
            if version is None:
                version = next((v for v in versions if v.commit == info.commit), None)
        return Resolved(name, ref, info.commit, version)

    def known_refs_hint(self, name: str) -> str:
        versions = self.versions(name)
        if not versions:
            return f"{name} has no published versions; run `gart push` to publish one"
        labels = [v.label for v in versions[-10:]]
        aliases = sorted({a for v in versions for a in v.aliases})
        return "known: " + ", ".join(labels + aliases)

    # -- writing ------------------------------------------------------------------------

    def publish(
        self, name: str, manifest: Manifest, commit: str, on_retry: Callable[[], None] | None = None
    ) -> tuple[Version, bool]:
        """Give the manifest's digest a version (the existing one if any); returns
        (version, created). Races with other publishers are retried with the next number."""
        for _attempt in range(PUBLISH_ATTEMPTS):
            self.sync(name)
            versions = self.versions(name)
            existing = next((v for v in versions if v.digest == manifest.digest), None)
            if existing is not None:
                self._share(existing)
                return existing, False
            number = versions[-1].number + 1 if versions else 0
            tag = f"{name}@v{number}"
            message = version_message(name, number, manifest, self.git.user())
            try:
                new_sha = self.git.create_tag(tag, commit, message, expected_old=None)
            except TagRaceError:
                if on_retry:
                    on_retry()
                continue
            if self.remote is None:
                return self._version_of(name, number), True
            try:
                self.git.push_tags({tag: (None, new_sha)}, remote=self.remote)
            except TagRaceError:
                # Someone else took this number first: drop ours and try the next one.
                self.git.delete_tag(tag, new_sha)
                if on_retry:
                    on_retry()
                continue
            except GartError:
                # Origin unreachable or refusing: a tag only we have is not a published
                # version, and would make the next push think it already was.
                self._restore(tag, new_sha, None)
                raise
            return self._version_of(name, number), True
        raise TagRaceError(
            f"could not publish {name}: {PUBLISH_ATTEMPTS} attempts lost to concurrent publishers",
            hint="re-run `gart push`",
        )

    def _share(self, version: Version) -> None:
        """Push a version tag origin lacks: one published while the clone had no origin."""
        if self.remote is None or version.tag in self.git.remote_tags(version.tag, self.remote):
            return
        local = self.git.list_tags(version.tag).get(version.tag)
        if local is not None:
            self.git.push_tags({version.tag: (None, local.ref_sha)}, remote=self.remote)

    def _version_of(self, name: str, number: int) -> Version:
        return next(v for v in self.versions(name) if v.number == number)

    def set_alias(
        self, name: str, version: Version, alias: str, protected: bool = False, force: bool = False
    ) -> str | None:
        """Point `name@alias` at a version (compare-and-swap locally and on origin).

        Returns the version label it pointed at before (None if new)."""
        validate_alias(alias)
        self.sync(name)
        tag = f"{name}@{alias}"
        current = self.tags(name).get(alias)
        old_label = parse_message(current.message).get("version") if current else None
        if current is not None and current.commit == version.commit and old_label == version.label:
            return old_label
        if current is not None and protected and not force:
            raise ConflictError(
                f"alias {alias!r} of {name} is protected (now at {old_label})",
                hint=f"re-run with --force to move it: gart alias {name}@{version.label} "
                f"{alias} --force",
            )
        message = alias_message(name, alias, version, self.git.user())
        expected = current.ref_sha if current else None
        try:
            new_sha = self.git.create_tag(tag, version.commit, message, expected_old=expected)
        except TagRaceError:
            raise self._lost(name, alias) from None
        if self.remote is not None:
            try:
                self.git.push_tags({tag: (expected, new_sha)}, remote=self.remote)
            except TagRaceError:
                self._restore(tag, new_sha, current)
                self.sync(name)
                raise self._lost(name, alias) from None
            except GartError:
                self._restore(tag, new_sha, current)  # the next sync resets a moved alias
                raise
        return old_label

    def delete_alias(self, name: str, alias: str, protected: bool = False,
                     force: bool = False) -> str:
        """Remove `name@alias` (locally and on origin); returns the version it pointed at."""
        validate_alias(alias)
        self.sync(name)
        current = self.tags(name).get(alias)
        if current is None:
            raise ArtifactNotFoundError(
                f"{name} has no alias {alias!r}", hint=self.known_refs_hint(name)
            )
        if protected and not force:
            raise ConflictError(
                f"alias {alias!r} of {name} is protected",
                hint=f"re-run with --force: gart alias --delete {name} {alias} --force",
            )
        tag = f"{name}@{alias}"
        if self.remote is not None:
            try:
                self.git.push_tags({tag: (current.ref_sha, None)}, remote=self.remote)
            except TagRaceError:
                self.sync(name)
                raise self._lost(name, alias) from None
        try:
            self.git.delete_tag(tag, current.ref_sha)
        except GartError:
            pass  # already gone locally: the remote deletion is what counts
        return parse_message(current.message).get("version", "?")

    def _restore(self, tag: str, ours: str, previous: TagInfo | None) -> None:
        if previous is None:  # a later sync cannot delete a tag origin lacks: do it here
            try:
                self.git.delete_tag(tag, ours)
            except (GitError, TagRaceError):  # gone or changed meanwhile: not ours to drop
                pass
        # Otherwise the following sync force-updates the tag to origin's value.

    def _lost(self, name: str, alias: str) -> TagRaceError:
        winner = self.tags(name).get(alias)
        if winner is None:
            where = "deleted it"
        else:
            fields = parse_message(winner.message)
            who = fields.get("author") or winner.tagger or "someone"
            where = f"moved it to {fields.get('version', winner.commit[:12])} ({who})"
        return TagRaceError(
            f"alias {name}@{alias} changed while we were moving it: another writer {where}",
            hint=f"check with `gart versions {name}` and retry if still wanted",
        )


def check_digest(resolved: Resolved, manifest: Manifest) -> None:
    """Refuse a tag whose recorded digest disagrees with the manifest in its commit."""
    if resolved.version is not None and resolved.version.digest != manifest.digest:
        raise ManifestError(
            f"{resolved.name}@{resolved.ref} looks tampered with: the tag records "
            f"{resolved.version.digest} but its commit holds a manifest with {manifest.digest}",
            hint="inspect the tag with `git show` and ask its author; do not use this version",
        )


def _int(text: str | None) -> int:
    try:
        return int(text or 0)
    except ValueError:
        return 0
