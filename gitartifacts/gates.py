"""CI gates over a repository: status --exit-code, push --dry-run, verify, conflict exits.

"Pushed" is decided without the network: an artifact's working-tree manifest counts as
pushed when its digest

- was pushed to (or verified on) the default remote by this clone,
  as recorded in `.gart/tmp/local-…/pushed/<remote id>/<digest>`; or
- is the digest of a published version (a local `NAME@vN` tag): gart publishes a version
  only after its bytes are on the default remote.

`gart verify` asks the remote itself, for CI jobs that must not trust a local record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from gitartifacts.checkout import CheckoutPlan
from gitartifacts.errors import ArtifactNotFoundError, UsageError
from gitartifacts.manifest import Entry, Manifest
from gitartifacts.sync import Sync
from gitartifacts.tracking import ArtifactStatus


@dataclass
class GateRow:
    """One artifact's status plus whether its manifest's bytes are known to be pushed."""

    status: ArtifactStatus
    digest: str
    pushed: bool | None  # None: no remote configured, nothing to push to

    @property
    def failing(self) -> bool:
        return self.status.state != "clean" or self.pushed is False


@dataclass
class PushPlan:
    """What `gart push` would do, computed without sending anything."""

    remote: str
    send: list[tuple[str, Entry]] = field(default_factory=list)  # (artifact, entry) per object
    bytes: int = 0
    present: int = 0
    not_cached: list[str] = field(default_factory=list)  # "name:path" the cache lacks
    publish: list[dict[str, Any]] = field(default_factory=list)
    unpublished: list[str] = field(default_factory=list)


@dataclass
class VerifyResult:
    """Which files of a version the remote lacks."""

    name: str
    ref: str | None
    version: str | None
    digest: str
    remote: str
    checked: int
    missing: list[str]


class Gates(Sync):
    """Checks a CI job runs before it trusts the state of a repository."""

    # -- gates ----------------------------------------------------------------------------

    def status_gate(self, names: Sequence[str] | None = None) -> list[GateRow]:
        """status plus "pushed", for `gart status --exit-code`."""
        rows = []
        has_remote = self._pushed_dir(None) is not None
        for status in self.status(names):
            manifest = self.load_manifest(status.name)
            pushed: bool | None = None
            if has_remote:
                pushed = not manifest.entries or self.known_pushed(
                    None, manifest.name, manifest.digest)
            rows.append(GateRow(status, manifest.digest, pushed))
        return rows

    def push_plan(self, names: Sequence[str] | None = None,
                  remote: str | None = None) -> PushPlan:
        """What `gart push` would send and publish; nothing is uploaded or tagged."""
        working, committed, _head = self.push_set(names)
        every = working + [m for m in committed.values() if m not in working]
        owner: dict[str, tuple[str, Entry]] = {}
        for m in every:
            for e in m.entries:
                owner.setdefault(e.oid, (m.name, e))
        store = self.remote_store(remote)
        absent = store.missing(set(owner))
        plan = PushPlan(store.describe(), present=len(owner) - len(absent))
        uncached = self.cache.missing(absent)
        for oid in sorted(absent, key=lambda o: (owner[o][0], owner[o][1].path)):
            name, entry = owner[oid]
            if oid in uncached:
                plan.not_cached.append(f"{name}:{entry.path}")
            else:
                plan.send.append((name, entry))
                plan.bytes += entry.size
        for manifest in working:
            published = committed.get(manifest.name)
            if published is None or published.digest != manifest.digest:
                plan.unpublished.append(manifest.name)
            if published is None:
                continue
            existing = next((v for v in self.registry.versions(manifest.name)
                             if v.digest == published.digest), None)
            plan.publish.append({"name": manifest.name, "digest": published.digest,
                                 "version": existing.label if existing else None,
                                 "new": existing is None})
        return plan

    def verify(self, spec: str, remote: str | None = None) -> VerifyResult:
        """Which files of `spec` the remote lacks (resolving fetches tags from origin)."""
        manifest, resolved = self.resolve_ref(spec)
        store = self.remote_store(remote)
        oids = {e.oid for e in manifest.entries}
        absent = store.missing(oids)
        if not absent:
            self.record_pushed(remote, [manifest.digest])
        version = resolved.version.label if resolved and resolved.version else None
        return VerifyResult(
            manifest.name, resolved.ref if resolved else None, version, manifest.digest,
            store.describe(), len(oids),
            [e.path for e in manifest.entries if e.oid in absent],
        )

    # -- the ways out of a merge conflict -------------------------------------------------

    def resolve_conflict(self, name: str, side: str, force: bool = False) -> tuple[
            Manifest, CheckoutPlan | None]:
        """Resolve a conflicted manifest to `side` (ours/theirs), write and stage it, then
        check its files out when the cache has them (else the plan is None: pull first)."""
        from gitartifacts.mergedriver import has_conflict, resolve_conflicted

        path = self.manifest_path(name)
        try:
            text = path.read_bytes()
        except FileNotFoundError:
            raise ArtifactNotFoundError(f"no artifact named {name!r} in this repository",
                                        hint=self._known_hint()) from None
        if not has_conflict(text):
            raise UsageError(
                f"{name} has no merge conflict to resolve",
                hint=f"--ours/--theirs resolve a conflicted manifest; use `gart checkout {name}`",
            )
        manifest = resolve_conflicted(text, side, self.manifest_relpath(name))
        self.write_manifest(manifest)
        self.git.stage([self.manifest_relpath(name)])
        if self.cache.missing({e.oid for e in manifest.entries}):
            return manifest, None
        return manifest, self.checkout(manifest, force=force)
