"""Push (upload, then publish), fetch, pull and fsck of a repository's artifacts."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from gitartifacts import manifest as manifestmod
from gitartifacts import testhooks
from gitartifacts.aliases import Registry, Version
from gitartifacts.checkout import CheckoutPlan
from gitartifacts.errors import GartError, UsageError
from gitartifacts.manifest import Manifest
from gitartifacts.paths import validate_alias
from gitartifacts.remoteconfig import RemoteConfigRoom
from gitartifacts.repocore import ProgressHook, _only_prefix
from gitartifacts.tracking import Tracking
from gitartifacts.versioning import Versioning

if TYPE_CHECKING:  # imported only by the commands that need them, to keep start-up fast
    from gitartifacts.transfer import TransferResult


@dataclass
class PushResult:
    """What `gart push` sent, for which artifacts, to where, and what it published."""

    manifests: list[Manifest]
    transfer: TransferResult
    remote: str
    versions: list[tuple[Version, bool]] = field(default_factory=list)  # (version, created)
    unpublished: list[str] = field(default_factory=list)  # working tree differs from HEAD
    tags_local_only: bool = False
    held_back: str | None = None  # why nothing was published, when the bytes went elsewhere


class Sync(Tracking, RemoteConfigRoom, Versioning):
    """Byte movement: push (upload, then publish), fetch, pull, fsck."""

    # -- push / fetch / pull --------------------------------------------------------------

    def push(
        self,
        names: Sequence[str] | None = None,
        remote: str | None = None,
        jobs: int | None = None,
        progress: ProgressHook | None = None,
        publish: bool = True,
        aliases: Sequence[str] = (),
        force: bool = False,
        publish_anyway: bool = False,
    ) -> PushResult:
        """Upload what the named (default: all) artifacts need, then publish versions.

        Order matters (restic's rule): blobs are uploaded and confirmed first; only then are
        version tags created for committed manifests, so a published version never points
        at bytes the remote lacks."""
        from gitartifacts import transfer

        for alias in aliases:
            validate_alias(alias)
        working, committed, head = self.push_set(names)
        every = working + [m for m in committed.values() if m not in working]
        oids = {e.oid for m in every for e in m.entries}
        store = self.remote_store(remote)
        result = transfer.push(self.cache, store, oids, jobs or self.config.jobs, progress)
        if result.failed:
            raise _transfer_error("push", result.failed, every, store.describe())
        out = PushResult(working, result, store.describe())
        self.record_pushed(remote, [m.digest for m in every])
        testhooks.pause("push-publish")  # concurrency suite: a gc tries to run here
        if not publish:
            return out
        out.held_back = self._consumers_lack(remote, committed.values())
        if out.held_back is not None:
            return out
        for manifest in working:  # a draft whose base moved is refused before any publish
            if manifest.name in committed:
                self.check_publishable(committed[manifest.name], publish_anyway)
        for manifest in working:
            published = committed.get(manifest.name)
            stale = published is None or published.digest != manifest.digest
            if stale:
                out.unpublished.append(manifest.name)
                if published is None:
                    continue
            assert head is not None
            # Aliases name the content being pushed: never move them to an older commit.
            wanted = [] if stale else list(aliases)
            version, created = self.publish_version(
                self.registry, published, head, wanted, force=force, requested=True)
            out.versions.append((version, created))
        out.tags_local_only = self.registry.remote is None
        return out

    def check_publishable(self, manifest: Manifest, anyway: bool = False) -> None:
        """Hook run before `push` publishes a committed manifest (drafts.Drafts refuses a
        draft whose base version moved, unless `anyway`)."""

    def publish_version(
        self,
        registry: Registry,
        manifest: Manifest,
        commit: str,
        aliases: Sequence[str] = (),
        force: bool = False,
        requested: bool = False,
    ) -> tuple[Version, bool]:
        """Give a committed manifest its version tag, then point `aliases` at it.

        The one publish step of both front doors: `gart push` (after uploading) and the W&B
        API's `log_artifact` (after committing and uploading). With `requested`, the aliases
        runs asked for this content are applied too. Returns (version, created)."""
        version, created = registry.publish(manifest.name, manifest, commit)
        wanted = list(aliases)
        if requested:
            wanted += [a for a in self.requested_aliases(manifest.name, version.digest)
                       if a not in wanted]
        for alias in wanted:
            self.check_alias_case(manifest.name, alias)
            registry.set_alias(manifest.name, version, alias,
                               alias in self.config.protected_aliases, force)
        if wanted:
            version.aliases = sorted(set(version.aliases) | set(wanted),
                                     key=lambda a: (a != "latest", a))
        return version, created

    def publish_logged(
        self, manifest: Manifest, commit: str, aliases: Sequence[str] = ()
    ) -> tuple[Version, bool, bool]:
        """W&B's `log_artifact` after its commit: upload the blobs to the default remote, then
        publish exactly as `gart push` does (blobs first, then tags, pushed to origin).

        Without a default remote the version and aliases are tags of this clone only (a blob
        nobody can fetch must not be published). Returns (version, created, shared): shared
        is False when the version exists only in this clone."""
        from gitartifacts import transfer

        try:
            self.remote_config(None)
        except UsageError:
            local = Registry(self.git, remote=None)
            return (*self.publish_version(local, manifest, commit, aliases), False)
        store = self.remote_store(None)
        oids = {e.oid for e in manifest.entries}
        result = transfer.push(self.cache, store, oids, self.config.jobs)
        if result.failed:
            raise _transfer_error("push", result.failed, [manifest], store.describe())
        version, created = self.publish_version(self.registry, manifest, commit, aliases)
        return version, created, self.registry.remote is not None


    def push_set(self, names: Sequence[str] | None) -> tuple[
            list[Manifest], dict[str, Manifest], str | None]:
        """What a push of `names` (default: all) covers: the working-tree manifests, the
        ones committed at HEAD (those get published) and HEAD itself."""
        names = list(names or self.artifact_names())
        working = [self.load_manifest(n) for n in names]
        head = self.git.head_commit()
        committed: dict[str, Manifest] = {}
        if head is not None:
            for name in names:
                data = self.git.read_file(head, self.manifest_relpath(name))
                if data is not None:
                    committed[name] = manifestmod.loads(data, f"HEAD:{self.manifest_relpath(name)}")
        return working, committed, head

    # -- the local record of what reached a remote (see gates: "pushed" without network) --

    def _pushed_dir(self, remote: str | None) -> Path | None:
        from gitartifacts.remote import remote_id

        try:
            config = self.remote_config(remote)
        except UsageError:
            return None
        return self.config.tmp_path / "pushed" / remote_id(config)

    def record_pushed(self, remote: str | None, digests: Iterable[str]) -> None:
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

    def _consumers_lack(self, remote: str | None, manifests: Iterable[Manifest]) -> str | None:
        """Why versions may not be published after pushing to `remote` (None: they may).

        Consumers of the repository pull from its default remote, so a version is published
        only once that remote holds every byte it refers to, wherever this push sent them."""
        chosen = self.remote_config(remote).name
        try:
            default = self.remote_config(None).name
        except UsageError:
            return (f"the bytes went to {chosen!r} but no default remote is set, so nobody "
                    "would know where to pull them from; set one with `gart remote default "
                    "NAME` and push to it")
        if default == chosen:
            return None
        lacking = self.remote_store(default).missing({e.oid for m in manifests for e in m.entries})
        if not lacking:
            return None
        return (f"{len(lacking)} object(s) are on {chosen!r} but not on the default remote "
                f"{default!r}, where consumers pull from; run `gart push` to publish")

    def fetch(
        self,
        specs: Sequence[str | Manifest],
        remote: str | None = None,
        jobs: int | None = None,
        path_prefix: str | None = None,
        progress: ProgressHook | None = None,
    ) -> tuple[list[Manifest], TransferResult]:
        """Download into the cache what the given artifacts need; nothing is checked out."""
        from gitartifacts import transfer

        manifests = [
            _only_prefix(s if isinstance(s, Manifest) else self.resolve(s), path_prefix)
            for s in specs
        ]
        oids = {e.oid for m in manifests for e in m.entries}
        if not self.cache.missing(oids):  # all cached: no remote needed, none contacted
            return manifests, transfer.TransferResult(present=len(oids))
        store = self.remote_store(remote)
        result = transfer.fetch(store, self.cache, oids, jobs or self.config.jobs, progress)
        if result.failed:
            raise _transfer_error("pull", result.failed, manifests, store.describe())
        return manifests, result

    def pull(
        self,
        specs: Sequence[str | Manifest],
        remote: str | None = None,
        jobs: int | None = None,
        to: str | os.PathLike[str] | None = None,
        path_prefix: str | None = None,
        force: bool = False,
        progress: ProgressHook | None = None,
        dry_run: bool = False,
        allow_changed_references: bool = False,
        allow_missing_references: bool = False,
        ref_options: str | None = None,
    ) -> list[tuple[Manifest, TransferResult, CheckoutPlan]]:
        """Fetch, verify, then check out each artifact (into `to` when given).

        References are fetched from their sources (fetch_references). With `dry_run`, only
        resolve and plan: the result's `transferred` counts the objects that would be
        downloaded, and the plan the files that would be written."""
        from gitartifacts.transfer import TransferResult

        if to is not None and len(specs) > 1:
            raise UsageError("--to takes one artifact", hint="pull them one at a time")
        out = []
        for spec in specs:
            if dry_run:
                manifest = _only_prefix(
                    spec if isinstance(spec, Manifest) else self.resolve(spec), path_prefix)
                oids = {e.oid for e in manifest.entries}
                absent = self.cache.missing(oids)
                result = TransferResult(transferred=len(absent), present=len(oids) - len(absent))
            else:
                (manifest,), result = self.fetch([spec], remote, jobs, path_prefix, progress)
            if manifest.references and not dry_run:
                resolved, downloaded = self.fetch_references(
                    manifest, allow_changed_references, allow_missing_references, ref_options,
                    jobs)
                result.transferred += downloaded
                manifest = replace(resolved, name=manifest.name)
            plan = self.checkout(manifest, force=force, to=to, partial=path_prefix,
                                 dry_run=dry_run,
                                 recoverable_elsewhere=self._on_remote(remote))
            out.append((manifest, result, plan))
        return out

    def fetch_references(
        self, manifest: Manifest, allow_changed: bool = False, allow_missing: bool = False,
        ref_options: str | None = None, jobs: int | None = None,
    ) -> tuple[Manifest, int]:
        """Bring the manifest's references into the cache from their sources, verified;
        returns the manifest with them as stored entries (allowed-missing ones left out) and
        how many were downloaded. Sources are asked only for what the cache lacks."""
        from gitartifacts import references as refsmod

        done = refsmod.materialize(
            self.reference_sources(ref_options), manifest.references, self.cache,
            self._ref_memo(), allow_changed, allow_missing, jobs or self.config.jobs,
            manifest.name)
        for check in [*done.skipped, *done.taken_changed]:  # allowed, but never silent
            what = ("vanished upstream: not placed" if check.state == "missing"
                    else "changed upstream: placed as it is now")
            print(f"warning: {manifest.name}: {check.ref.path} ({check.ref.uri}) {what}",
                  file=sys.stderr)
        return replace(manifest, entries=manifest.entries + tuple(done.entries),
                       references=()), done.downloaded

    def _on_remote(self, remote: str | None) -> Callable[[set[str]], set[str]]:
        """For pull: which of these oids the remote has (their files are safe to replace)."""
        return lambda oids: oids - self.remote_store(remote).missing(oids)

    def fsck(self) -> list[str]:
        """Verify every object in the cache; also clears temp files of killed writers, and
        drops corrupt objects (as a read would: a crash can leave them, the cache not being
        fsynced) so that the next pull fetches them again."""
        self.cache.remove_stale_temp()
        corrupt: list[str] = []
        problems = self.cache.verify(corrupt=corrupt)
        for oid in corrupt:
            self.cache.drop(oid)
        if corrupt:
            problems.append(f"dropped {len(corrupt)} corrupt object(s) from the cache: the "
                            "next `gart pull` fetches them again")
        from gitartifacts.chunking import verify_lists

        problems += verify_lists(self.cache)
        problems += [f"{path}: tracked by git although gart keeps it private; gart ignores it "
                     "(remove it with `git rm --cached`)" for path in self.tracked_private_files()]
        return problems


def _transfer_error(
    action: str, failed: dict[str, str], manifests: Sequence[Manifest], remote: str
) -> GartError:
    from gitartifacts.errors import ObjectNotFoundError, RemoteError

    paths = [
        f"{m.name}:{e.path}" for m in manifests for e in m.entries if e.oid in failed
    ]
    first = failed[next(iter(failed))]
    listing = ", ".join(paths)  # every path: the user must know exactly what is missing
    if action == "push" and any("corrupt" in reason for reason in failed.values()):
        from gitartifacts.errors import CorruptObjectError

        bad = [f"{m.name}:{e.path}" for m in manifests for e in m.entries
               if "corrupt" in failed.get(e.oid, "")]
        return CorruptObjectError(
            f"{len(bad)} file(s) corrupt in the local cache, nothing published: "
            f"{', '.join(bad)} ({next(r for r in failed.values() if 'corrupt' in r)})",
            hint="the corrupt copies were removed from the cache: re-add the files with "
            "`gart add PATH`, or pull them from a remote that has them (`gart pull NAME`)",
        )
    if all("missing" in reason or "not in the local cache" in reason for reason in failed.values()):
        where = "the local cache" if action == "push" else remote
        hint = (
            "re-run `gart add` for those paths (their bytes are not in this cache)"
            if action == "push"
            else "push them from a clone that has them (`gart push`), then pull again"
        )
        # A pack index the remote has but this gart refused (damaged, or written by a newer
        # gart) may be why: say so, loudly, rather than only "missing".
        from gitartifacts.transfer import REFUSED_NOTE

        refused = sorted({r.partition(REFUSED_NOTE)[2] for r in failed.values()} - {""})
        if refused:
            listing += f" (the remote has pack indexes this gart refuses: {refused[0]})"
            if "unknown format" in refused[0]:
                hint = ("a newer gart wrote part of this remote: upgrade gart "
                        "(`pip install -U gitartifacts`), then pull again")
        return ObjectNotFoundError(f"{len(paths)} file(s) missing from {where}: {listing}", hint)
    return RemoteError(
        f"{action} failed for {len(paths)} file(s) ({first}): {listing}",
        hint=f"nothing partial was kept; re-run `gart {action}` to resume",
    )


