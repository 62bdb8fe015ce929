"""Everything gart does by running the git binary: working-tree commands and remote tags."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from gitartifacts import testhooks
from gitartifacts.errors import (
    ArtifactNotFoundError,
    GitError,
    InvalidNameError,
    TagRaceError,
    UsageError,
)
from gitartifacts.retry import RetryPolicy

__all__ = [
    "TAGS",
    "GitCommands",
    "RemoteTag",
    "RevisionNotFoundError",
    "check_pattern",
    "fetch_ref_into",
    "first_line",
    "git_checked",
    "init_bare_dir",
    "list_remote_tags",
    "run_git",
    "tag_ref",
    "valid_ref",
]

TAGS = "refs/tags/"
FULL_SHA = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")
# Never wait for a password on a terminal nobody watches (CI); the C locale keeps git's
# messages parseable (GitPython also sets it, this makes it explicit).
_GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", "LANGUAGE": "C"}
_PUSH_RETRY = RetryPolicy(attempts=5, backoff=0.1)  # a concurrent push holding a ref lock
_TRANSIENT_REJECTS = ("lock", "atomic transaction failed", "failed to update ref", "stale info")
_ARG_BUDGET = 100_000


class RevisionNotFoundError(GitError, ArtifactNotFoundError):
    """A revision, tag or path does not exist in the repository (or on the remote)."""


@dataclass(frozen=True)
class RemoteTag:
    """A tag as `git ls-remote` reports it: the ref's value and the commit it peels to."""

    name: str
    ref_sha: str
    commit: str


class GitCommands:
    """The git-binary half of GitRepo (a mixin): the user's hooks, credentials and config apply.

    Subclasses provide `root` and may override `_refresh` to drop state git changed on disk."""

    root: Path

    def _refresh(self) -> None:
        """Called after git wrote refs or packs behind our back; nothing to forget here."""

    # ---- working tree ----------------------------------------------------------------

    def is_dirty(self) -> bool:
        """True when tracked files differ from HEAD (staged or not); untracked files ignored."""
        # git itself, not dulwich: it honours the stat cache, fsmonitor, filters and eol
        # settings exactly, so a run record never claims a clean tree that git calls dirty.
        out = self._git_ok(
            ["status", "--porcelain", "--untracked-files=no", "-z"],
            "checking the working tree",
            hint="run `git status` to see what git objects to",
        )
        return bool(out.strip("\0\n"))

    def stage(self, paths: list[str]) -> None:
        """`git add -- paths`, so the user's hooks, attributes and ignore rules apply.

        Another git (or gart) process holding `.git/index.lock` is waited for: two
        `gart add` runs at once must both succeed."""
        for batch in _batches(paths):
            _INDEX_RETRY.call(
                lambda batch=batch: self._git_ok(
                    ["add", "--", *batch],
                    "git add failed",
                    hint="check the paths; `git check-ignore -v <path>` shows an ignore rule",
                ),
                transient=_index_locked,
            )

    def tracked_files(self, paths: list[str]) -> list[str]:
        """The files under `paths` that git tracks (`git ls-files`), so gart never co-owns them."""
        out = self._git_ok(
            ["ls-files", "-z", "--", *paths],
            "listing tracked files",
            hint="run `git status` to see what git objects to",
        )
        return [p for p in out.split("\0") if p]

    # ---- tags on a remote ------------------------------------------------------------

    def remote_tags(self, pattern: str = "*", remote: str = "origin") -> dict[str, str]:
        """{tag name: ref sha} on `remote` for tags matching the glob `pattern`.

        The sha is what the remote ref holds (the tag object for annotated tags), i.e. the
        value `push_tags` compares against; peeled `^{}` lines are not reported."""
        return {n: t.ref_sha for n, t in _ls_remote(self.root, remote, pattern).items()}

    def remote_tag_targets(
        self, pattern: str = "*", remote: str = "origin"
    ) -> dict[str, RemoteTag]:
        """Like `remote_tags`, with the commit each tag peels to (from the same listing)."""
        return _ls_remote(self.root, remote, pattern, peel=True)

    def fetch_tags(
        self, pattern: str = "*", remote: str = "origin", depth: int | None = None
    ) -> None:
        """Fetch tags matching `pattern`, force-updating local tags that moved on `remote`.

        The raw mechanism: it checks nothing (aliases.Registry.sync is the checked path).
        Pass `depth` (usually 1) in a shallow clone so the fetched commits stay shallow
        instead of pulling their whole history."""
        check_pattern(pattern)
        args = ["fetch", "--no-tags", "--no-recurse-submodules"]
        if depth is not None:
            args.append(f"--depth={int(depth)}")
        args += ["--", remote, f"+{TAGS}{pattern}:{TAGS}{pattern}"]
        try:
            git_checked(self.root, args, f"fetching tags from {remote}", remote_hint(remote))
        except RevisionNotFoundError:
            raise RevisionNotFoundError(
                f"tag {pattern} does not exist on {remote}",
                hint=f"list the published tags with `git ls-remote --tags {remote}`",
            ) from None
        except GitError:
            # A shallow fetch of a glob that matches nothing fails (git 2.39) where a full
            # one succeeds: nothing to fetch is not an error.
            if depth is None or _ls_remote(self.root, remote, pattern):
                raise
        finally:
            self._refresh()  # new packs and refs on disk: start from a fresh view

    def fetch_tag_refs(
        self, keep: Iterable[str] = (), move: Iterable[str] = (), remote: str = "origin",
        depth: int | None = None,
    ) -> None:
        """Fetch exactly the named tags from `remote` into refs/tags, in one `git fetch`.

        Tags in `keep` are fetched without force: git refuses to change one that exists here
        with another value (a version never moves). Tags in `move` are force-updated (aliases
        move). Pass `depth` only for tags whose commits are absent: for a commit this shallow
        clone has, `--depth` would list it in .git/shallow and cut the user's history there."""
        specs = [f"{TAGS}{n}:{TAGS}{n}" for n in sorted(set(keep))]
        specs += [f"+{TAGS}{n}:{TAGS}{n}" for n in sorted(set(move))]
        if not specs:
            return
        for spec in specs:
            tag_ref(spec.rpartition(":")[2].removeprefix(TAGS))
        args = ["fetch", "--no-tags", "--no-recurse-submodules"]
        if depth is not None:
            args.append(f"--depth={int(depth)}")
        try:
            for batch in _batches(specs):
                git_checked(self.root, [*args, "--", remote, *batch],
                            f"fetching tags from {remote}", remote_hint(remote))
        finally:
            self._refresh()

    def push_tags(
        self,
        updates: dict[str, tuple[str | None, str | None]],
        remote: str = "origin",
    ) -> None:
        """Atomically push tag updates {name: (expected remote sha or None, new sha or None)}.

        Each tag is guarded by --force-with-lease with its expected remote value (None: must
        not exist), so a concurrent writer is never overwritten; a lost race raises
        TagRaceError naming the tag and its value on the remote. A new sha of None deletes."""
        if not updates:
            return
        testhooks.hit()  # crash suite
        args = ["push", "--atomic", "--porcelain"]
        specs = []
        for name, (expected, new) in sorted(updates.items()):
            ref = tag_ref(name).decode()
            args.append(f"--force-with-lease={ref}:{expected or ''}")
            specs.append(f"{new}:{ref}" if new else f":{ref}")
        args += ["--", remote, *specs]
        def once() -> None:
            status, out, err = run_git(self.root, args)
            if status == 0:
                return
            rejected = _porcelain_rejections(out)
            if not rejected:  # never reached the remote: network, auth, unknown remote
                raise GitError(
                    f"push to {remote} failed: {first_line(err) or f'git exited with {status}'}",
                    hint=remote_hint(remote),
                )
            moved = self._remote_conflicts(updates, remote)
            if moved:
                name, current = moved[0]
                now = f"points to {current}" if current else "does not exist"
                more = f" (and {len(moved) - 1} more)" if len(moved) > 1 else ""
                raise TagRaceError(
                    f"push to {remote} was rejected: tag {name} changed on {remote} meanwhile,"
                    f" it now {now}{more}",
                    hint=f"another writer won; run `git fetch {remote} --tags --force` "
                    "(or `gart pull`) and retry",
                )
            # --atomic marks innocent refs "atomic push failed"; report the real culprit.
            tag, reason = min(rejected.items(), key=lambda kv: "atomic" in kv[1])
            said = [ln[7:].strip() for ln in err.splitlines() if ln.startswith("remote:")]
            said = [ln for ln in said if ln]
            detail = f"{tag} {reason}" + (f": {said[0]}" if said else "")
            # A concurrent push still holding the ref lock fails ours before the tag has
            # moved: retrying lets the lease decide once that push is done. Hook refusals
            # are final.
            locked = any(t in r for r in rejected.values() for t in _TRANSIENT_REJECTS)
            raise (_RefLocked if locked else GitError)(
                f"push to {remote} was rejected: {detail}",
                hint=f"check `git push {remote}` by hand: access rights, hooks or the network",
            )

        _PUSH_RETRY.call(once, transient=lambda exc: isinstance(exc, _RefLocked))

    # ---- history walks for gc and fsck (integrity.py) ----------------------------------

    def fetch_branches(self, remote: str = "origin") -> None:
        """Update the remote-tracking branches of `remote` (what others pushed)."""
        self._git_ok(["fetch", "--quiet", "--no-tags", "--", remote],
                     f"fetching branches from {remote}", remote_hint(remote))
        self._refresh()

    def files_under(self, prefix: str, history: bool) -> dict[str, set[str]]:
        """{blob sha: paths} of every file under `prefix` at the tip of each local and
        remote-tracking branch or, with `history`, in any commit reachable from them."""
        out: dict[str, set[str]] = {}
        if history:
            text = self._git_ok(
                ["log", "--branches", "--remotes", "--full-history", "-m", "--raw",
                 "--no-abbrev", "--no-renames", "--format=", "--", prefix],
                "walking the history of the manifests", "check the repository with git log")
            for line in text.splitlines():
                meta, _, path = line.partition("\t")
                fields = meta.split()
                if line.startswith(":") and len(fields) >= 5 and set(fields[3]) != {"0"}:
                    out.setdefault(fields[3], set()).add(path)
            return out
        tips = self._git_ok(["for-each-ref", "--format=%(objectname)", "refs/heads",
                             "refs/remotes"], "listing branches", "check the repository")
        for tip in sorted(set(tips.split())):
            with suppress(GitError):  # a symbolic ref to a missing branch, a non-commit
                listing = self._git_ok(["ls-tree", "-r", "--full-tree", tip, "--", prefix],
                                       "listing a branch's manifests", "check the repository")
                for line in listing.splitlines():
                    meta, _, path = line.partition("\t")
                    fields = meta.split()
                    if len(fields) == 3 and fields[1] == "blob":
                        out.setdefault(fields[2], set()).add(path)
        return out

    def _git_ok(self, args: list[str], action: str, hint: str) -> str:
        return git_checked(self.root, args, action, hint)

    def _remote_conflicts(
        self, updates: dict[str, tuple[str | None, str | None]], remote: str
    ) -> list[tuple[str, str | None]]:
        """Tags whose remote value differs from what the push expected, with that value."""
        now = self.remote_tags(next(iter(updates)) if len(updates) == 1 else "*", remote)
        return [
            (name, now.get(name))
            for name, (expected, _new) in sorted(updates.items())
            if now.get(name) != (expected or None)
        ]


def init_bare_dir(dest: Path) -> None:
    """Create a bare repository at `dest` unless one is there already."""
    dest = Path(dest)
    if not (dest / "HEAD").exists():
        dest.mkdir(parents=True, exist_ok=True)
        git_checked(dest, ["init", "--bare", "--quiet"], f"creating {dest}", "check the path")


def fetch_ref_into(url: str, tag_or_rev: str, dest: Path) -> None:
    """Fetch one tag, branch or full sha of another repository (depth 1) into the bare
    repository `dest` (created when absent), without cloning it."""
    dest = Path(dest)
    init_bare_dir(dest)
    if FULL_SHA.fullmatch(tag_or_rev):
        specs = [f"{tag_or_rev}:refs/gart/fetched/{tag_or_rev}"]
    elif tag_or_rev.startswith("refs/"):
        specs = [f"+{tag_or_rev}:{tag_or_rev}"]
    else:
        tag_ref(tag_or_rev)
        specs = [f"+{TAGS}{tag_or_rev}:{TAGS}{tag_or_rev}"]
        specs.append(f"+refs/heads/{tag_or_rev}:refs/heads/{tag_or_rev}")
    hint = f"check that {url} is reachable and that {tag_or_rev} exists there"
    # Tags first: that is what gart asks for; a branch of the same name is the fallback.
    for spec in specs:
        status, _out, err = run_git(dest, ["fetch", "--depth=1", "--no-tags", "--", url, spec])
        if status == 0:
            return
        if not _is_missing_ref(err):
            raise GitError(f"fetching {tag_or_rev} from {url} failed: {first_line(err)}",
                           hint=hint)
    raise RevisionNotFoundError(
        f"{tag_or_rev} is neither a tag nor a branch of {url}",
        hint=f"list its tags with `git ls-remote --tags {url}`",
    )


def list_remote_tags(url: str, pattern: str = "*") -> dict[str, str]:
    """{tag name: ref sha} of another repository's tags matching `pattern`, without cloning."""
    return {n: t.ref_sha for n, t in _ls_remote(None, url, pattern).items()}


# ---- names -----------------------------------------------------------------------------


def valid_ref(ref: bytes) -> bool:
    """`git check-ref-format` rules (dulwich's implementation, no subprocess)."""
    from dulwich.refs import check_ref_format

    return check_ref_format(ref)  # type: ignore[arg-type]


def tag_ref(name: str) -> bytes:
    """refs/tags/<name> as bytes; InvalidNameError when git would not accept it."""
    ref = (TAGS + name).encode("utf-8")
    if not name or name.startswith("-") or not valid_ref(ref):
        raise InvalidNameError(
            f"not a valid tag name: {name!r}",
            hint="use letters, digits, '.', '_', '-', '/' and '@' (see `git check-ref-format`)",
        )
    return ref


class _RefLocked(GitError):
    """The remote refused a tag because another push held its lock: worth another try."""


_INDEX_RETRY = RetryPolicy(attempts=8, backoff=0.05)  # up to ~6 s for another git to finish


def _index_locked(exc: BaseException) -> bool:
    return isinstance(exc, GitError) and "index.lock" in str(exc)


def check_pattern(pattern: str) -> None:
    """Refuse a tag glob a refspec cannot hold: exactly one '*' and no other glob characters."""
    if not pattern or pattern.count("*") > 1 or any(c in pattern for c in "?[]"):
        raise UsageError(
            f"unsupported tag pattern: {pattern!r}",
            hint="use a tag name or one '*' wildcard, e.g. 'raw-images@*'",
        )
    tag_ref(pattern.replace("*", "x"))


# ---- running git -----------------------------------------------------------------------


def run_git(cwd: Path | None, args: list[str]) -> tuple[int, str, str]:
    """Run the git binary through GitPython; returns (status, stdout, stderr)."""
    try:
        from git.cmd import Git
        from git.exc import GitCommandNotFound
    except ImportError as exc:  # GitPython refuses to import when no git binary is found
        raise GitError(
            f"cannot run git: {first_line(str(exc))}",
            hint="install git and make sure it is on PATH",
        ) from exc
    try:
        status, out, err = Git(str(cwd) if cwd is not None else None).execute(
            ["git", *args],
            with_extended_output=True,
            with_exceptions=False,
            env=_GIT_ENV,
            stdout_as_string=True,
        )
    except GitCommandNotFound as exc:
        raise GitError("the git command was not found", hint="install git") from exc
    except OSError as exc:
        raise GitError(f"cannot run git {args[0]}: {exc}", hint="check PATH and cwd") from exc
    return int(status or 0), str(out), str(err)


def git_checked(cwd: Path | None, args: list[str], action: str, hint: str) -> str:
    """Run git; stdout on success, else GitError (RevisionNotFoundError for a missing ref)."""
    status, out, err = run_git(cwd, args)
    if status != 0:
        if _is_missing_ref(err):
            raise RevisionNotFoundError(f"{action}: {first_line(err)}", hint=hint)
        raise GitError(f"{action}: {first_line(err) or f'git exited with {status}'}", hint=hint)
    return out


def first_line(err: str) -> str:
    """The most telling line of git's stderr: the first fatal/error line, else the first."""
    lines = [line.strip() for line in err.splitlines() if line.strip()]
    for line in lines:
        for prefix in ("fatal: ", "error: "):
            if line.startswith(prefix):
                return line[len(prefix) :]
    return lines[0] if lines else ""


def _ls_remote(
    cwd: Path | None, target: str, pattern: str, peel: bool = False
) -> dict[str, RemoteTag]:
    """Tags of `target` matching `pattern`; with `peel`, each one's commit from `^{}` lines."""
    check_pattern(pattern)
    out = git_checked(
        cwd,
        ["ls-remote", "--tags", *([] if peel else ["--refs"]), "--", target, TAGS + pattern],
        f"listing tags of {target}",
        remote_hint(target),
    )
    values: dict[str, str] = {}
    peeled: dict[str, str] = {}
    for line in out.splitlines():
        sha, _, ref = line.partition("\t")
        name = ref.removeprefix(TAGS)
        if name.endswith("^{}"):
            peeled[name[:-3]] = sha
            continue
        # git matches patterns against the ref's tail; keep only true matches of our glob.
        if ref.startswith(TAGS) and fnmatch.fnmatchcase(name, pattern):
            values[name] = sha
    return {n: RemoteTag(n, sha, peeled.get(n, sha)) for n, sha in values.items()}


def remote_hint(remote: str) -> str:
    return f"check `git remote -v`, the network and your credentials for {remote}"


def _porcelain_rejections(out: str) -> dict[str, str]:
    """{ref: reason} for every '!' line of `git push --porcelain` output."""
    rejected = {}
    for line in out.splitlines():
        if line.startswith("!\t"):
            fields = line.split("\t")
            ref = fields[1].rpartition(":")[2] if len(fields) > 1 else "?"
            reason = fields[2] if len(fields) > 2 else "rejected"
            rejected[ref.removeprefix(TAGS)] = reason
    return rejected


def _is_missing_ref(err: str) -> bool:
    return "couldn't find remote ref" in err or "not our ref" in err


def _batches(items: list[str]) -> Iterator[list[str]]:
    """Split long argument lists so one git command never exceeds the OS argument limit."""
    batch: list[str] = []
    size = 0
    for item in items:
        if batch and size + len(item) > _ARG_BUDGET:
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += len(item) + 1
    if batch:
        yield batch
