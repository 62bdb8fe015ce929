"""ForeignRepo: another repository's artifacts, read without a clone (`--repo URL`)."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitartifacts import config as configmod
from gitartifacts import workspace
from gitartifacts.aliases import Registry, Version
from gitartifacts.errors import ArtifactNotFoundError, UsageError
from gitartifacts.hashing import StateCache
from gitartifacts.ignore import IgnoreRules
from gitartifacts.manifest import Manifest
from gitartifacts.objects import ObjectStore
from gitartifacts.paths import VERSION_RE, parse_spec, validate_name
from gitartifacts.repocore import ProgressHook, _only_prefix, _resolve_in
from gitartifacts.sync import _transfer_error
from gitartifacts.workspace import CheckoutPlan

if TYPE_CHECKING:  # imported only by the commands that need them, to keep start-up fast
    from gitartifacts.transfer import TransferResult


class ForeignRepo:
    """Another repository's artifacts, read without cloning it (the W&B `entity/project` case).

    Only the tags asked about are fetched, at depth 1, into a bare repository kept under the
    user cache; its committed `.gart/config.yaml` says where the blobs live.
    """

    def __init__(self, url: str) -> None:
        import hashlib

        from gitartifacts.gitrepo import init_bare

        self.url = url
        key = hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]
        self.home = configmod.user_cache_dir()
        self.git_dir = self.home / "repos" / key
        self.git = init_bare(self.git_dir)
        self.registry = Registry(self.git, remote=self.url, foreign=True)

    def fetch_tags(self, name: str) -> None:
        self.registry.sync(validate_name(name))  # checked: a rewritten version is refused

    def versions(self, name: str) -> list[Version]:
        self.fetch_tags(name)
        return self.registry.versions(name)

    def resolve(self, spec: str) -> tuple[Manifest, str]:
        """(manifest, commit) for `name@ref`; a bare `name` means its latest version."""
        manifest, commit, _label = self.resolve_labelled(spec)
        return manifest, commit

    def resolve_labelled(self, spec: str) -> tuple[Manifest, str, str]:
        """(manifest, commit, label): the label is the version (`v3`) when `ref` names one,
        else the ref itself (a branch or commit)."""
        parsed = parse_spec(spec)
        ref = parsed.ref or "latest"
        self.fetch_tags(parsed.name)
        if self.registry.resolve(parsed.name, ref) is None and not (
            VERSION_RE.fullmatch(ref) or ref == "latest"
        ):
            from gitartifacts.gitrepo import RevisionNotFoundError, fetch_ref_shallow

            try:
                fetch_ref_shallow(self.url, ref, self.git_dir)  # a branch or full commit sha
            except RevisionNotFoundError:
                raise ArtifactNotFoundError(
                    f"{parsed.name}@{ref} is neither a version, an alias nor a branch of "
                    f"{self.url}",
                    hint=self.registry.known_refs_hint(parsed.name),
                ) from None
        manifest, resolved = _resolve_in(self.git, self.registry, parsed.name, ref, offline=True)
        if resolved is not None:
            label = resolved.version.label if resolved.version is not None else ref
            return manifest, resolved.commit, label
        return manifest, self.git.resolve_rev(ref), ref

    def remote_store(self, commit: str, remote: str | None = None) -> ObjectStore:
        from gitartifacts.remote import local_path_of, open_store

        data = self.git.read_file(commit, f"{configmod.GART_DIR}/{configmod.CONFIG_FILE}")
        raw = {} if data is None else _foreign_config(data, self.url)
        config = configmod.parse_config(self.home, raw, source=f"{self.url}:.gart/config.yaml")
        chosen = remote or config.default_remote or next(iter(config.remotes), None)
        if chosen is None or chosen not in config.remotes:
            raise UsageError(
                f"{self.url} defines no remote {chosen or ''}".rstrip(),
                hint="ask its owners to `gart remote add NAME URL --default` and commit it",
            )
        remote_config = config.remotes[chosen]
        local_base = local_path_of(self.url, Path.cwd())
        if local_path_of(remote_config.url, Path("/")) is not None and not os.path.isabs(
            os.path.expanduser(remote_config.url.removeprefix("file://"))
        ) and local_base is None:
            raise UsageError(
                f"remote {chosen!r} of {self.url} is a relative path, usable only on its machine",
                hint="give it an absolute path or a URL in that repository's config",
            )
        return open_store(remote_config, local_base or Path.cwd(), self.home / "remote-indexes")

    def pull(
        self,
        spec: str,
        to: str | os.PathLike[str] | None = None,
        remote: str | None = None,
        jobs: int = configmod.DEFAULT_JOBS,
        path_prefix: str | None = None,
        force: bool = False,
        progress: ProgressHook | None = None,
        cache: ObjectStore | None = None,
    ) -> tuple[Manifest, TransferResult, CheckoutPlan]:
        """Download and verify an artifact version of this repository into `to` (default:
        `./artifacts/<name>:<version>/`, never the path its manifest names)."""
        from gitartifacts import transfer

        manifest, commit, label = self.resolve_labelled(spec)
        manifest = _only_prefix(manifest, path_prefix)
        store = self.remote_store(commit, remote)
        cache = cache or ObjectStore.local(self.home / "objects")
        oids = {e.oid for e in manifest.entries}
        result = transfer.fetch(store, cache, oids, jobs, progress)
        if result.failed:
            raise _transfer_error("pull", result.failed, [manifest], store.describe())
        # Another repository's manifest says where *its* files live; that path means nothing
        # here and is never followed. Without --to, a directory of the artifact's own, as W&B.
        root = Path(to) if to is not None else default_download_root(manifest.name, label)
        if path_prefix:
            manifest = replace(manifest, include=(path_prefix.strip("/"),))
        plan = workspace.checkout(
            manifest, root, cache, StateCache(self.home / "state.db"),
            configmod.DEFAULT_LINK_TYPES, IgnoreRules(manifest.exclude), force=force,
            progress=progress, anchor=Path.cwd() if to is None else None,
            recoverable_elsewhere=lambda oids: oids - store.missing(oids),
        )
        return manifest, result, plan


def default_download_root(name: str, label: str) -> Path:
    """`./artifacts/<name>:<label>/`, W&B's default download directory."""
    return Path.cwd() / "artifacts" / f"{name}:{label.replace('/', '-')}"


def _foreign_config(data: bytes, url: str) -> dict[str, Any]:
    from gitartifacts import safeyaml

    raw = safeyaml.load(data, what=f"{url}:.gart/config.yaml", max_bytes=1 << 20)
    return raw if isinstance(raw, dict) else {}
