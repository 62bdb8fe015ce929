"""Distributed versions: parallel jobs each upsert a part, one `finish` publishes the version.

W&B's `run.upsert_artifact(art, distributed_id=ID)` in every worker and
`run.finish_artifact(art, distributed_id=ID)` once; the CLI's `gart upsert`, `gart finish`,
`gart parts`. Jobs share only `origin` and the remote: no disk, no checkout.

- A part is a git blob (JSON: which job, which files, state) at
  `refs/gart/parts/<name>@<id>/<job>` on origin, written with compare-and-swap (push with
  `--force-with-lease`), so a job replaces only its own part and no job overwrites another's.
  An upsert declares its part (`uploading`), uploads its blobs, then marks it `complete`:
  a worker killed mid-upload leaves a part that `finish` sees and names.
- `finish` claims `refs/gart/finished/<name>@<id>` (state `finishing`, so later upserts are
  refused), merges every part (the same path with different content in two parts is a
  conflict: all of them are listed and nothing is published), checks that the remote holds
  every blob (a part lacking some is refused unless skipped), then publishes one version
  through the step `gart push` uses (nothing is uploaded again), marks the id `finished` and
  deletes the parts. Upserting to, or finishing, a finished id is an error.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitartifacts import manifest as manifestmod
from gitartifacts.aliases import Version
from gitartifacts.drafts import Drafts, gather_files, upload_objects
from gitartifacts.errors import (
    ArtifactNotFoundError,
    ConflictError,
    GartError,
    GitError,
    InvalidNameError,
    ManifestError,
    TagRaceError,
    UsageError,
)
from gitartifacts.gitcli import first_line, git_checked, remote_hint, run_git
from gitartifacts.integrity import Roots
from gitartifacts.manifest import Entry, Manifest
from gitartifacts.paths import ALIAS_RE, check_relative_path, validate_name, validate_type
from gitartifacts.storeops import StoreLock

if TYPE_CHECKING:
    from gitartifacts.repocore import ProgressHook
    from gitartifacts.sync import TransferResult

__all__ = ["FinishResult", "Part", "Parts", "PartsConflictError", "PartsIncompleteError",
           "UpsertResult"]

PARTS = "refs/gart/parts/"
FINISHED = "refs/gart/finished/"
MAX_PART_BYTES = 256 << 20
PART_FORMAT = 1


class PartsConflictError(ConflictError):
    """Parts disagree: the same path with different content (or different types)."""


class PartsIncompleteError(GartError):
    """A part's blobs are not all on the remote (its worker died mid-upload)."""


class FinishedError(ConflictError):
    """The distributed version was finished already (or is being finished)."""


@dataclass
class Part:
    """One job's contribution: its files (artifact path -> Entry) and its state."""

    name: str
    distributed_id: str
    job: str
    state: str  # "uploading" until its blobs are on the remote, then "complete"
    entries: dict[str, Entry]
    type: str = "dataset"
    description: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    host: str = ""
    sha: str | None = None  # the blob the ref pointed at when read

    @property
    def size(self) -> int:
        return sum(e.size for e in self.entries.values())

    def dumps(self) -> bytes:
        block = "".join(f"{e.oid} {e.size} {e.path}\n" for e in sorted(self.entries.values()))
        return json.dumps({
            "gart_part": PART_FORMAT, "name": self.name, "distributed_id": self.distributed_id,
            "job": self.job, "state": self.state, "type": self.type,
            "description": self.description, "metadata": self.metadata,
            "created": self.created, "host": self.host, "files": block,
        }, sort_keys=True, ensure_ascii=False).encode("utf-8")

    @classmethod
    def loads(cls, data: bytes, what: str) -> Part:
        """Parse a part strictly (it came from origin: untrusted)."""
        if len(data) > MAX_PART_BYTES:
            raise ManifestError(f"{what} is larger than {MAX_PART_BYTES} bytes",
                                hint="delete it with `git push origin :REF` and re-run its job")
        try:
            raw = json.loads(data)
            if raw.get("gart_part") != PART_FORMAT:
                raise ValueError(f"unknown part format {raw.get('gart_part')!r}")
            entries: dict[str, Entry] = {}
            for line in str(raw["files"]).splitlines():
                oid, size, path = line.split(" ", 2)
                entries[path] = Entry(path, oid, int(size))
            part = cls(str(raw["name"]), str(raw["distributed_id"]), str(raw["job"]),
                       str(raw["state"]), entries, str(raw["type"]), str(raw["description"]),
                       dict(raw["metadata"]), str(raw["created"]), str(raw["host"]))
            manifestmod.validate(Manifest(name=part.name, type=part.type,
                                          description=part.description, metadata=part.metadata,
                                          entries=tuple(entries.values())))
        except (ValueError, KeyError, TypeError, AttributeError, GartError) as exc:
            detail = exc.message if isinstance(exc, GartError) else str(exc)
            raise ManifestError(f"{what} is not a valid part: {detail}",
                                hint="delete it with `git push origin :REF` and re-run its "
                                "job") from None
        if part.state not in ("uploading", "complete"):
            raise ManifestError(f"{what} has an unknown state {part.state!r}",
                                hint="re-run its job")
        return part


@dataclass
class UpsertResult:
    """What one job contributed."""

    part: Part
    transfer: TransferResult
    hashed: int
    replaced: bool  # the job had a part already (a retry): it was replaced


@dataclass
class FinishResult:
    """The version a finish published, from which parts."""

    version: Version
    created: bool
    manifest: Manifest
    parts: list[Part]
    skipped: list[Part]


def check_key(value: str, what: str) -> str:
    """A distributed id or job name: W&B's name rule, and valid in a git ref."""
    if not ALIAS_RE.fullmatch(value) or value.endswith((".", ".lock")) or ".." in value:
        raise InvalidNameError(
            f"invalid {what} {value!r}",
            hint=f"a {what} uses letters, digits, '.', '_', '-', at most 128 characters",
        )
    return value


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Parts(Drafts):
    """Distributed versions over origin's `refs/gart/parts/` and the default remote."""

    # -- refs on origin ------------------------------------------------------------------

    def _origin(self) -> str:
        remote = self.registry.remote
        if remote is None:
            raise UsageError(
                "distributed versions need a git remote 'origin' that every job shares",
                hint="add one with `git remote add origin URL` (a bare repository will do)",
            )
        return remote

    @staticmethod
    def _refs(name: str, distributed_id: str) -> tuple[str, str]:
        key = f"{validate_name(name)}@{check_key(distributed_id, 'distributed id')}"
        return f"{PARTS}{key}/", f"{FINISHED}{key}"

    def _ls_remote(self, remote: str, *refs: str) -> dict[str, str]:
        out = git_checked(self.root, ["ls-remote", "--", remote, *refs],
                          f"listing parts on {remote}", remote_hint(remote))
        found: dict[str, str] = {}
        for line in out.splitlines():
            sha, _, ref = line.partition("\t")
            found[ref] = sha
        return found

    def _store_blob(self, data: bytes) -> str:
        fd, tmp = tempfile.mkstemp(prefix="gart-part-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            return git_checked(self.root, ["hash-object", "-w", "--", tmp], "storing a part",
                               "run `git fsck`").strip()
        finally:
            os.unlink(tmp)

    def _push_refs(self, remote: str, updates: dict[str, tuple[str | None, str | None]],
                   what: str) -> None:
        """Move refs on `remote` from old to new (None: absent) in one atomic push, each
        with a lease: a ref someone else changed meanwhile makes it fail, changing nothing."""
        args = ["push", "--porcelain", "--atomic"]
        specs = []
        for ref, (old, new) in updates.items():
            args.append(f"--force-with-lease={ref}:{old or ''}")
            specs.append(f"{new}:{ref}" if new else f":{ref}")
        status, out, err = run_git(self.root, [*args, "--", remote, *specs])
        if status == 0:
            return
        if any(line.startswith("!\t") for line in out.splitlines()):
            raise TagRaceError(f"{what}: another writer changed it on {remote} first",
                               hint="re-run the command")
        raise GitError(f"{what}: push to {remote} failed: {first_line(err) or status}",
                       hint=remote_hint(remote))

    def _read_blob(self, sha: str, what: str) -> bytes:
        status, out, err = run_git(self.root, ["cat-file", "blob", sha])
        if status != 0:
            raise GitError(f"reading {what}: {first_line(err)}", hint="run `git fsck`")
        return out.encode("utf-8", "surrogateescape")

    def _fetch_parts(self, remote: str, prefix: str) -> dict[str, str]:
        """Fetch the parts under `prefix` (pruning local copies origin dropped)."""
        spec = f"+{prefix}*:{prefix}*"
        git_checked(self.root, ["fetch", "--no-tags", "--prune", "--quiet", "--", remote, spec],
                    f"fetching parts from {remote}", remote_hint(remote))
        out = git_checked(self.root, ["for-each-ref", "--format=%(objectname) %(refname)",
                                      prefix], "listing parts", "run `git fsck`")
        found: dict[str, str] = {}
        for line in out.splitlines():
            sha, _, ref = line.partition(" ")
            job = ref[len(prefix):]
            if "/" not in job:
                found[job] = sha
        return found

    def _finish_state(self, sha: str | None, what: str) -> dict[str, Any] | None:
        if sha is None:
            return None
        try:
            self._fetch_one(sha)
            raw = json.loads(self._read_blob(sha, what))
            return raw if isinstance(raw, dict) else {"state": "finished"}
        except (ValueError, GartError):
            return {"state": "finished"}  # unreadable: still a claim, never ignored

    def _fetch_one(self, sha: str) -> None:
        status, _out, _err = run_git(self.root, ["cat-file", "-e", sha])
        if status != 0:
            git_checked(self.root, ["fetch", "--no-tags", "--quiet", "--", self._origin(), sha],
                        "fetching a record", remote_hint(self._origin()))

    # -- upsert ----------------------------------------------------------------------------

    def upsert(
        self,
        paths: Sequence[str | os.PathLike[str]] | dict[str, Path],
        name: str,
        distributed_id: str,
        prefix: str | None = None,
        job: str | None = None,
        type: str | None = None,
        description: str = "",
        metadata: dict[str, Any] | None = None,
        progress: ProgressHook | None = None,
    ) -> UpsertResult:
        """Contribute files to the distributed version `name`/`distributed_id`: hash them
        into the cache, declare the part on origin, upload the blobs, mark it complete.

        `job` names the part (default: derived from its content, so a retry of the same work
        replaces its own part); a re-sent part replaces only that job's."""
        validate_name(name)
        if type is not None:
            validate_type(type)
        remote = self._origin()
        part_prefix, finished_ref = self._refs(name, distributed_id)
        files = paths if isinstance(paths, dict) else self._gather(paths, prefix)
        if not files:
            raise UsageError("no files to upsert", hint="give a file or a directory that "
                             "holds files")
        store = self.remote_store(None)
        entries, hashed, _stored = self.hash_into_cache(files, progress)
        block = "".join(f"{e.oid} {e.size} {e.path}\n" for e in sorted(entries.values()))
        job = check_key(job or "p-" + hashlib.sha256(block.encode()).hexdigest()[:16], "job")
        ref = part_prefix + job
        seen = self._ls_remote(remote, finished_ref, ref)
        self._refuse_finished(seen.get(finished_ref), name, distributed_id)
        part = Part(name, distributed_id, job, "uploading", entries, type or "dataset",
                    description, dict(metadata or {}), _now(), socket.gethostname())
        declared = self._store_blob(part.dumps())
        old = seen.get(ref)
        self._push_refs(remote, {ref: (old, declared)}, f"part {job} of {name}@{distributed_id}")
        # Under a shared store lock until the part is complete: gc counts parts as live.
        with self.cache_locked(), StoreLock(store, exclusive=False, command="upsert"):
            result = upload_objects(self.cache, store, {e.oid for e in entries.values()},
                                    self.config.jobs)
            if result.failed:
                from gitartifacts.sync import _transfer_error

                raise _transfer_error("push", result.failed, [Manifest(
                    name=name, entries=tuple(entries.values()))], store.describe())
            part.state = "complete"
            done = self._store_blob(part.dumps())
            self._push_refs(remote, {ref: (declared, done)},
                            f"part {job} of {name}@{distributed_id}")
        part.sha = done
        after = self._ls_remote(remote, finished_ref)
        if finished_ref in after:
            raise FinishedError(
                f"{name}@{distributed_id} started finishing while part {job} was being sent; "
                "it may not be in the published version",
                hint=f"check with `gart versions {name}`; send it to a new distributed id",
            )
        return UpsertResult(part, result, hashed, old is not None)

    def _gather(self, paths: Sequence[str | os.PathLike[str]],
                prefix: str | None) -> dict[str, Path]:
        files = gather_files(paths, prefix, self.ignore_rules(()))
        for rel in files:
            check_relative_path(rel, "artifact path")
        return files

    def _refuse_finished(self, sha: str | None, name: str, distributed_id: str) -> None:
        state = self._finish_state(sha, f"the finish record of {name}@{distributed_id}")
        if state is None:
            return
        if state.get("state") == "finishing":
            raise FinishedError(
                f"{name}@{distributed_id} is being finished (since {state.get('time', '?')}); "
                "no more parts are accepted",
                hint="send this part to a new distributed id; if that finish died, run "
                f"`gart finish --name {name} --distributed-id {distributed_id}` again",
            )
        raise FinishedError(
            f"{name}@{distributed_id} was finished already as "
            f"{name}@{state.get('version', '?')}; no more parts are accepted",
            hint="a new version needs a new --distributed-id (distributed_id=...)",
        )

    # -- gc: parts keep their blobs alive --------------------------------------------------

    def roots(self, keep_versions: int | None = None, fetch: bool = True,
              working: bool = True, history: bool = True) -> Roots:
        """integrity's live manifests, plus every part on origin: blobs sent by `upsert`
        stay until `finish` publishes them (or the part is deleted)."""
        out = super().roots(keep_versions, fetch, working, history)
        remote = self.registry.remote
        if fetch and remote is not None:
            with contextlib.suppress(GartError):
                git_checked(self.root, ["fetch", "--no-tags", "--prune", "--quiet", "--",
                                        remote, f"+{PARTS}*:{PARTS}*"],
                            "fetching parts", remote_hint(remote))
        listing = git_checked(self.root, ["for-each-ref", "--format=%(objectname) %(refname)",
                                          PARTS], "listing parts", "run `git fsck`")
        for line in listing.splitlines():
            sha, _, ref = line.partition(" ")
            try:
                part = Part.loads(self._read_blob(sha, ref), ref)
            except GartError as exc:
                out.problems.append(f"{ref}: {exc.message}")
                continue
            out.manifests[f"{ref} (part)"] = Manifest(name=part.name,
                                                      entries=tuple(part.entries.values()))
        return out

    # -- parts -----------------------------------------------------------------------------

    def parts(self, name: str, distributed_id: str) -> tuple[list[Part], dict[str, Any] | None]:
        """The parts on origin (sorted by job) and the finish record, if any."""
        remote = self._origin()
        part_prefix, finished_ref = self._refs(name, distributed_id)
        marker = self._ls_remote(remote, finished_ref).get(finished_ref)
        found = self._fetch_parts(remote, part_prefix)
        parts = []
        for job, sha in sorted(found.items()):
            part = Part.loads(self._read_blob(sha, f"part {job}"), f"part {job} of "
                              f"{name}@{distributed_id}")
            part.sha = sha
            parts.append(part)
        return parts, self._finish_state(marker, "the finish record")

    # -- finish ----------------------------------------------------------------------------

    def finish(
        self,
        name: str,
        distributed_id: str,
        aliases: Sequence[str] = (),
        skip_incomplete: bool = False,
        type: str | None = None,
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
        extra_paths: Sequence[str] = (),
    ) -> FinishResult:
        """Merge every part, publish one version, mark the id finished, delete the parts."""
        remote = self._origin()
        part_prefix, finished_ref = self._refs(name, distributed_id)
        old_marker = self._ls_remote(remote, finished_ref).get(finished_ref)
        state = self._finish_state(old_marker, "the finish record")
        if state is not None and state.get("state") != "finishing":
            raise FinishedError(
                f"{name}@{distributed_id} was finished already as "
                f"{name}@{state.get('version', '?')}",
                hint="nothing to do; a new version needs a new --distributed-id",
            )
        claim = self._store_blob(json.dumps({"state": "finishing", "time": _now(),
                                             "host": socket.gethostname()}).encode())
        self._push_refs(remote, {finished_ref: (old_marker, claim)},
                        f"finishing {name}@{distributed_id}")
        try:
            store = self.remote_store(None)
            with StoreLock(store, exclusive=False, command="finish"):
                parts, skipped, manifest = self._merge_checked(
                    name, distributed_id, part_prefix, skip_incomplete, type, description,
                    metadata)
                version, created = self._publish_merged(manifest, aliases, distributed_id,
                                                        extra_paths)
        except BaseException:
            self._push_refs_quietly(remote, {finished_ref: (claim, None)})
            raise
        done = self._store_blob(json.dumps({"state": "finished", "version": version.label,
                                            "digest": manifest.digest, "time": _now()}).encode())
        self._push_refs(remote, {finished_ref: (claim, done)}, f"finishing {name}@{distributed_id}")
        drop = {part_prefix + p.job: (p.sha, None) for p in [*parts, *skipped]}
        self._push_refs_quietly(remote, drop)
        for ref, (sha, _new) in drop.items():
            run_git(self.root, ["update-ref", "-d", ref, sha or ""])
        return FinishResult(version, created, manifest, parts, skipped)

    def _push_refs_quietly(self, remote: str, updates: dict[str, tuple[str | None, str | None]]
                           ) -> None:
        try:
            self._push_refs(remote, updates, "cleaning up")
        except GartError:
            pass  # best effort: leftovers are listed by `gart parts` and never published twice

    def _merge_checked(self, name: str, distributed_id: str, part_prefix: str,
                       skip_incomplete: bool, type: str | None, description: str | None,
                       metadata: dict[str, Any] | None) -> tuple[list[Part], list[Part], Manifest]:
        remote = self._origin()
        found = self._fetch_parts(remote, part_prefix)
        if not found:
            raise ArtifactNotFoundError(
                f"{name}@{distributed_id} has no parts on {remote}; nothing was published",
                hint=f"send some first with `gart upsert PATH --name {name} --distributed-id "
                f"{distributed_id}` (run.upsert_artifact)",
            )
        parts = []
        for job, sha in sorted(found.items()):
            part = Part.loads(self._read_blob(sha, f"part {job}"),
                              f"part {job} of {name}@{distributed_id}")
            part.sha = sha
            parts.append(part)
        _merge(parts, name, distributed_id)  # conflicts first: they need no remote
        store = self.remote_store(None)
        store.refresh()
        incomplete: list[tuple[Part, int]] = []
        for part in parts:
            lacking = store.missing({e.oid for e in part.entries.values()})
            if lacking:
                incomplete.append((part, len(lacking)))
        if incomplete and not skip_incomplete:
            listing = ", ".join(f"{p.job} ({n} of {len(p.entries)} blobs missing, "
                                f"{p.state}, from {p.host or '?'} at {p.created or '?'})"
                                for p, n in incomplete)
            raise PartsIncompleteError(
                f"{len(incomplete)} part(s) of {name}@{distributed_id} lack blobs on "
                f"{store.describe()}: {listing}; nothing was published",
                hint="re-run those jobs (a retry replaces its own part), or leave them out "
                "with `gart finish ... --skip-incomplete`",
            )
        bad = {p.job for p, _ in incomplete}
        kept = [p for p in parts if p.job not in bad]
        skipped = [p for p in parts if p.job in bad]
        if not kept:
            raise PartsIncompleteError(
                f"every part of {name}@{distributed_id} lacks blobs; nothing was published",
                hint="re-run the jobs",
            )
        entries, kind, merged_description, merged_metadata = _merge(kept, name, distributed_id)
        try:
            path = self.load_manifest(name).path
        except GartError:
            path = f"artifacts/{name}"
        manifest = Manifest(
            name=name, type=type or kind,
            description=description if description is not None else merged_description,
            metadata=metadata if metadata is not None else merged_metadata,
            path=path, entries=tuple(entries.values()),
        )  # validated when written (manifest.dumps), inside finish's claim
        return kept, skipped, manifest

    def _publish_merged(self, manifest: Manifest, aliases: Sequence[str], distributed_id: str,
                        extra_paths: Sequence[str]) -> tuple[Version, bool]:
        """Write and commit the merged manifest (only gart's files), then publish it; every
        blob is on the remote already, so nothing is uploaded."""
        ignored = self._write_gitignore(self._gitignore_update([manifest.path]))
        self.write_manifest(manifest)
        self.gitmeta.commit_paths(
            [self.manifest_relpath(manifest.name), *ignored, *extra_paths],
            f"gart: finish {manifest.name} (distributed id {distributed_id})")
        head = self.git.head_commit()
        assert head is not None
        self.record_pushed(None, [manifest.digest])
        return self.publish_version(self.registry, manifest, head, aliases)


def _merge(parts: Sequence[Part], name: str, distributed_id: str) -> tuple[
        dict[str, Entry], str, str, dict[str, Any]]:
    """Union of the parts' files; the same path with different content (or parts of different
    types) is a conflict, and every conflict is listed."""
    entries: dict[str, Entry] = {}
    owner: dict[str, str] = {}
    conflicts: dict[str, set[str]] = {}
    for part in parts:
        for path, entry in part.entries.items():
            have = entries.get(path)
            if have is None:
                entries[path] = entry
                owner[path] = part.job
            elif have.oid != entry.oid or have.size != entry.size:
                conflicts.setdefault(path, {owner[path]}).add(part.job)
    kinds = sorted({p.type for p in parts})
    problems = [f"{path} ({' vs '.join(sorted(jobs))})" for path, jobs in sorted(conflicts.items())]
    if len(kinds) > 1:
        problems.append("type (" + " vs ".join(
            f"{k} in {', '.join(p.job for p in parts if p.type == k)}" for k in kinds) + ")")
    if problems:
        raise PartsConflictError(
            f"{len(problems)} conflict(s) between parts of {name}@{distributed_id}, nothing "
            f"was published: {'; '.join(problems)}",
            hint="re-run the jobs so each path has one content (a retry replaces its own "
            "part), then finish again",
        )
    metadata: dict[str, Any] = {}
    for part in parts:
        metadata.update(part.metadata)
    description = next((p.description for p in parts if p.description), "")
    return entries, kinds[0], description, metadata
