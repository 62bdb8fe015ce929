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
from gitartifacts.gitrepo import GitRepo, RemoteTag, TagInfo
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

    def __init__(
        self, git: GitRepo, remote: str | None = "origin", *, foreign: bool = False
    ) -> None:
        """`remote` is a configured remote name (ignored when not configured); with `foreign`
        it is another repository's URL, read into a bare cache at depth 1."""
        self.git = git
        self.foreign = foreign
        if foreign:
            self.remote = remote
        else:
            self.remote = remote if remote and git.has_remote(remote) else None

    # -- reading ------------------------------------------------------------------------

    def sync(self, name: str) -> None:
        """Bring this artifact's tags in line with origin, checking each as a claim.

        New versions are fetched, but a version never changes: one rewritten on origin is
        refused (ConflictError) and the local tag kept. Aliases follow origin: moved ones are
        force-updated, ones origin no longer has are deleted here (compare-and-swap). Nothing
        is deleted unless origin answered. Fetches never reshape a shallow clone's history."""
        if self.remote is None:
            return
        prefix = f"{validate_name(name)}@"

        def own(tag: str) -> bool:  # `name@x/y` belongs to a longer namespaced name
            return "/" not in tag[len(prefix):]

        def is_version(tag: str) -> bool:
            return VERSION_RE.fullmatch(tag[len(prefix):]) is not None

        theirs = {t: r for t, r in self.git.remote_tag_targets(prefix + "*", self.remote).items()
                  if own(t)}
        ours = {t: sha for t, sha in self.git.tag_values(prefix).items() if own(t)}
        rewritten = sorted(
            t for t in theirs if is_version(t) and t in ours and ours[t] != theirs[t].ref_sha
        )
        if rewritten:
            raise self._rewritten(rewritten[0], theirs[rewritten[0]], len(rewritten) - 1)
        keep = [t for t in theirs if is_version(t) and t not in ours]
        move = [t for t in theirs if not is_version(t) and ours.get(t) != theirs[t].ref_sha]
        self._fetch(keep, move, theirs)
        for tag, sha in sorted(ours.items()):
            if not is_version(tag) and tag not in theirs:
                try:
                    self.git.delete_tag(tag, sha)
                except (GitError, TagRaceError):
                    pass  # changed here meanwhile: a newer local write, not ours to drop

    def _fetch(self, keep: list[str], move: list[str], theirs: dict[str, RemoteTag]) -> None:
        if keep or move:
            self.git.fetch_tags_keeping_shape(
                keep, move, {t: r.commit for t, r in theirs.items()},
                remote=self.remote or "origin", shallow=self.foreign or self.git.is_shallow(),
            )

    def _rewritten(self, tag: str, theirs: RemoteTag, more: int) -> ConflictError:
        """The error for a version tag origin now holds with another value than ours."""
        local = self.git.list_tags(tag)[tag]
        digest = parse_message(local.message).get("digest", "no digest")
        now = f"commit {theirs.commit[:12]}"
        if theirs.commit == local.commit:
            now += f" with another tag object ({theirs.ref_sha[:12]}, not {local.ref_sha[:12]})"
        others = f" (and {more} more)" if more else ""
        hint = (
            f"ask whoever rewrote it to restore it (`git push --force {self.remote} "
            f"refs/tags/{tag}` from this clone); to accept theirs, `git tag -d {tag}` first"
        )
        if self.foreign:
            hint = (f"ask the owners of {self.remote} to restore it; to accept theirs, delete "
                    f"gart's copy of that repository ({self.git.root})")
        return ConflictError(
            f"version {tag} was rewritten on {self.remote}: here it is commit "
            f"{local.commit[:12]} ({digest}), there it now names {now}{others}; "
            "a published version never changes, so it is refused",
            hint=hint,
        )

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
        ordered = [versions[n] for n in sorted(versions)]
        for ref, info in tags.items():
            if VERSION_RE.fullmatch(ref):
                continue
            target = alias_target(info, ordered)
            if target is not None:  # an alias naming no published version is not listed
                target.aliases.append(ref)
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
            version = alias_target(info, versions)
            if version is None:
                raise ArtifactNotFoundError(
                    f"alias {name}@{ref} is not a published version of {name}: "
                    f"{alias_claim(info)}",
                    hint=f"refusing it; re-point it at a published version with "
                    f"`gart alias {name}@vN {ref}` (`gart versions {name}` lists them)",
                )
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
        tags = self.tags(name)
        current = tags.get(alias)
        old_label = parse_message(current.message).get("version") if current else None
        target = alias_target(current, self.versions(name, tags)) if current else None
        if target is not None and target.label == version.label:
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


def alias_target(info: TagInfo, versions: list[Version]) -> Version | None:
    """The published version an alias tag names, or None: an alias counts only if its
    message's version and digest match a version tag and it sits on that version's commit.
    A tag that claims nothing (lightweight, made by hand) counts on a version's commit."""
    fields = parse_message(info.message)
    label, digest = fields.get("version"), fields.get("digest")
    if label or digest:
        target = next((v for v in versions if (not label or v.label == label)
                       and (not digest or v.digest == digest)), None)
    else:
        target = next((v for v in reversed(versions) if v.commit == info.commit), None)
    return target if target is not None and target.commit == info.commit else None


def alias_claim(info: TagInfo) -> str:
    """What an alias tag claims, for an error message: its version, digest and commit."""
    fields = parse_message(info.message)
    claims = [f"digest {fields['digest']}"] if fields.get("digest") else []
    claims.append(f"commit {info.commit[:12]}")
    if fields.get("version"):
        return f"it claims {fields['version']} ({', '.join(claims)})"
    return f"it points at {claims[-1]}, on which no version is published"


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
