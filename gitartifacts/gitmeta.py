"""Git operations of the W&B front door: commits of an explicit path list, and small records
kept under `refs/gart/` (per-version edits, tombstones) with compare-and-swap, shared via origin.

Like `gitrepo`, it runs the git binary (through gitrepo's runner) so the user's own
credentials, hooks and config apply. A record is a blob; its ref `refs/gart/<kind>/<key>`
moves only from the value the writer read (`git update-ref NEW OLD` locally,
`--force-with-lease` on origin), so two writers never silently overwrite each other.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from gitartifacts.errors import GitError, TagRaceError
from gitartifacts.gitcli import check_pattern, first_line, git_checked, remote_hint, run_git

__all__ = ["GitMeta"]

META_PREFIX = "refs/gart/"
_ZERO = "0" * 40


class GitMeta:
    """Path-list commits and `refs/gart/...` records of one working tree."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    # -- commits of gart's own files ----------------------------------------------------

    def commit_paths(self, paths: Sequence[str], message: str) -> str | None:
        """Commit exactly `paths` (their working-tree content) on the current branch.

        Everything else the user staged stays staged and out of this commit (`git commit
        --only`); hooks run as for any commit. Returns the new HEAD, or None when the paths
        held nothing new to commit."""
        paths = sorted(set(paths))
        if not paths:
            return None
        hint = "check `git status`; finish any merge or rebase in progress, then retry"
        git_checked(self.root, ["add", "--", *paths], "staging gart's files", hint)
        changed = git_checked(
            self.root, ["status", "--porcelain", "--untracked-files=no", "-z", "--", *paths],
            "checking gart's files", hint,
        )
        if not changed.strip("\0\n"):
            return None
        git_checked(
            self.root, ["commit", "--quiet", "--only", "-m", message, "--", *paths],
            "committing gart's files", hint,
        )
        return git_checked(self.root, ["rev-parse", "HEAD"], "reading HEAD", hint).strip()

    # -- records under refs/gart/ --------------------------------------------------------

    def refs(self, kind: str, prefix: str = "") -> dict[str, str]:
        """{key: blob sha} of `refs/gart/<kind>/<prefix>*` (a `*` never crosses a '/')."""
        base = f"{META_PREFIX}{kind}/"
        out = git_checked(
            self.root, ["for-each-ref", "--format=%(objectname) %(refname)", f"{base}{prefix}*"],
            "listing gart records", "run `git fsck`",
        )
        found: dict[str, str] = {}
        for line in out.splitlines():
            sha, _, ref = line.partition(" ")
            if ref.startswith(base + prefix):
                found[ref[len(base):]] = sha
        return found

    def read(self, sha: str) -> bytes:
        status, out, err = run_git(self.root, ["cat-file", "blob", sha])
        if status != 0:
            raise GitError(f"reading gart record {sha[:12]}: {first_line(err)}",
                           hint="run `git fsck`")
        return out.encode("utf-8", "surrogateescape")

    def write(self, kind: str, key: str, data: bytes, expected: str | None,
              remote: str | None) -> str:
        """Point `refs/gart/<kind>/<key>` at a blob of `data` if it still holds `expected`
        (None: must not exist), locally and then on `remote`; returns the blob sha."""
        ref = self._ref(kind, key)
        fd, tmp = tempfile.mkstemp(prefix="gart-record-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            sha = git_checked(self.root, ["hash-object", "-w", "--", tmp], "storing a record",
                               "run `git fsck`").strip()
        finally:
            os.unlink(tmp)
        status, _out, err = run_git(self.root, ["update-ref", ref, sha, expected or _ZERO])
        if status != 0:
            raise TagRaceError(f"{ref} changed while we were updating it",
                               hint="another writer updated it first; reload and retry")
        if remote is not None:
            try:
                self._push(ref, expected, sha, remote)
            except GitError:
                self._restore(ref, sha, expected)
                raise
        return sha

    def fetch(self, kind: str, pattern: str, remote: str) -> None:
        """Fetch `refs/gart/<kind>/<pattern>` from `remote`, force-updating local copies."""
        check_pattern(pattern)
        spec = f"+{META_PREFIX}{kind}/{pattern}:{META_PREFIX}{kind}/{pattern}"
        git_checked(self.root, ["fetch", "--no-tags", "--quiet", "--", remote, spec],
                     f"fetching gart records from {remote}", remote_hint(remote))

    # -- internals ---------------------------------------------------------------------

    def _ref(self, kind: str, key: str) -> str:
        ref = f"{META_PREFIX}{kind}/{key}"
        status, _out, _err = run_git(self.root, ["check-ref-format", ref])
        if status != 0:
            raise GitError(f"not a valid record name: {ref}", hint="check the artifact name")
        return ref

    def _push(self, ref: str, expected: str | None, new: str, remote: str) -> None:
        args = ["push", "--porcelain", f"--force-with-lease={ref}:{expected or ''}",
                "--", remote, f"{new}:{ref}"]
        status, out, err = run_git(self.root, args)
        if status == 0:
            return
        if any(line.startswith("!\t") for line in out.splitlines()):
            raise TagRaceError(
                f"{ref} changed on {remote} while we were updating it",
                hint="another writer won; reload the artifact and retry the edit",
            )
        raise GitError(f"push to {remote} failed: {first_line(err) or status}",
                       hint=remote_hint(remote))

    def _restore(self, ref: str, ours: str, previous: str | None) -> None:
        if previous is None:
            run_git(self.root, ["update-ref", "-d", ref, ours])
        else:
            run_git(self.root, ["update-ref", ref, previous, ours])
