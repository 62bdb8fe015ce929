"""CI gates over a repository: status --exit-code, push --dry-run, verify, conflict exits.

"Pushed" is decided without the network: an artifact's working-tree manifest counts as
pushed when its digest

- was pushed to (or fetched whole from, or verified on) the default remote by this clone,
  as recorded in `.gart/tmp/local-…/pushed/<remote id>/<digest>`; or
- is the digest of a published version (a local `NAME@vN` tag): gart publishes a version
  only after its bytes are on the default remote.

`gart verify` asks the remote itself, for CI jobs that must not trust a local record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitartifacts import manifest as manifestmod
from gitartifacts.errors import ArtifactNotFoundError, UsageError
from gitartifacts.manifest import Entry, Manifest
from gitartifacts.sync import PushResult, Sync
from gitartifacts.tracking import ArtifactStatus
from gitartifacts.workspace import CheckoutPlan


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

    # -- the local record of what reached a remote ---------------------------------------

    def _pushed_dir(self, remote: str | None) -> Path | None:
        from gitartifacts.remote import remote_id

        try:
            config = self.remote_config(remote)
        except UsageError:
            return None
        return self.config.tmp_path / "pushed" / remote_id(config)

    def record_pushed(self, remote: str | None, digests: Sequence[str]) -> None:
        """Note that `remote` holds every object of manifests with these digests."""
        where = self._pushed_dir(remote)
        if where is None:
            return
        try:
            where.mkdir(parents=True, exist_ok=True)
            for digest in digests:
                (where / digest.removeprefix(manifestmod.DIGEST_PREFIX)).touch()
        except OSError:
            pass  # only a record; `gart verify` asks the remote itself

    def known_pushed(self, remote: str | None, name: str, digest: str) -> bool:
        where = self._pushed_dir(remote)
        if where is not None and (where / digest.removeprefix(
                manifestmod.DIGEST_PREFIX)).exists():
            return True
        return any(v.digest == digest for v in self.registry.versions(name))

    def push(self, *args: Any, **kwargs: Any) -> PushResult:
        result = super().push(*args, **kwargs)
        remote = kwargs.get("remote", args[1] if len(args) > 1 else None)
        digests = [m.digest for m in result.manifests] + [v.digest for v, _ in result.versions]
        self.record_pushed(remote, digests)
        return result

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
        names = list(names or self.artifact_names())
        working = [self.load_manifest(n) for n in names]
        head = self.git.head_commit()
        committed: dict[str, Manifest] = {}
        if head is not None:
            for name in names:
                data = self.git.read_file(head, self.manifest_relpath(name))
                if data is not None:
                    committed[name] = manifestmod.loads(
                        data, f"HEAD:{self.manifest_relpath(name)}")
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

    def _existing_manifest(self, name: str) -> Manifest | None:
        """A conflicted manifest counts as its ours-side when re-added (`gart add`)."""
        try:
            return super()._existing_manifest(name)
        except manifestmod.MergeConflictError:
            from gitartifacts.mergedriver import OURS, resolve_conflicted

            return resolve_conflicted(self.manifest_path(name).read_bytes(), OURS,
                                      self.manifest_relpath(name))
