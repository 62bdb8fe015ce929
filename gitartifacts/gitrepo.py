"""One git repository read in process with dulwich: revisions, files, tags, CAS ref updates."""

from __future__ import annotations

import atexit
import os
import re
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gitartifacts import testhooks
from gitartifacts.errors import (
    GartError,
    GitError,
    InvalidPathError,
    NotARepositoryError,
    TagRaceError,
    UsageError,
)
from gitartifacts.gitcli import (
    FULL_SHA,
    TAGS,
    GitCommands,
    RemoteTag,
    RevisionNotFoundError,
    fetch_ref_into,
    init_bare_dir,
    list_remote_tags,
    tag_ref,
    valid_ref,
)

if TYPE_CHECKING:
    from dulwich.config import StackedConfig
    from dulwich.object_store import BaseObjectStore
    from dulwich.objects import ShaFile
    from dulwich.repo import Repo

__all__ = [
    "GitRepo",
    "RemoteTag",
    "RevisionNotFoundError",
    "TagInfo",
    "fetch_ref_shallow",
    "find_root",
    "init_bare",
    "list_remote_tags",
]

_COMMIT, _TAG = 1, 4  # git's object type numbers
_FULL_SHA = FULL_SHA
_SHORT_SHA = re.compile(r"[0-9a-f]{4,63}")
_REV_OPS = re.compile(r"\^\{(?:commit)?\}|~\d*|\^\d*")
# How long a ref lock held by a concurrent writer is waited for before giving up.
_LOCK_WAIT_S = 2.0


@dataclass(frozen=True)
class TagInfo:
    """One tag as gart sees it: where the ref points, the commit behind it and its message."""

    name: str
    ref_sha: str
    commit: str
    message: str
    tagger: str
    time: int


def find_root(start: Path | None = None) -> Path:
    """Return the working-tree root containing `start` (default: the current directory)."""
    origin = Path(start) if start is not None else Path.cwd()
    here = origin.resolve()
    if here.is_file():
        here = here.parent
    for candidate in (here, *here.parents):
        # `.git` is a file in worktrees and submodules, hence lexists rather than isdir.
        if os.path.lexists(candidate / ".git"):
            return candidate
    raise NotARepositoryError(
        f"not inside a git repository: {origin}",
        hint="run `git init` first, or cd into a git repository",
    )


def index_may_track(root: Path, prefixes: tuple[str, ...]) -> bool:
    """Whether git's index may hold paths under `prefixes`, read without starting git.

    Index versions 2 and 3 store every path whole, so a substring test answers "no" with
    certainty; version 4 compresses paths (and an unreadable index proves nothing), so the
    answer is then "maybe" and the caller asks `git ls-files`."""
    dot_git = root / ".git"
    try:
        if dot_git.is_file():  # a worktree or submodule: `gitdir: <path>`
            target = dot_git.read_text(encoding="utf-8").strip().removeprefix("gitdir: ")
            dot_git = (root / target).resolve()
        data = (dot_git / "index").read_bytes()
    except FileNotFoundError:
        return False
    except (OSError, UnicodeDecodeError):
        return True
    if data[:4] != b"DIRC" or data[4:8] not in (b"\0\0\0\x02", b"\0\0\0\x03"):
        return True
    return any(prefix.encode() in data for prefix in prefixes)


class GitRepo(GitCommands):
    """One git repository (working tree or bare); opened lazily so importing gart stays cheap.

    Reads and local ref updates run in process (dulwich); the methods that run the git
    binary (status, add, fetch, push) come from gitcli.GitCommands."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._repo: Repo | None = None

    def __del__(self) -> None:
        with suppress(Exception):
            self.close()

    def __repr__(self) -> str:
        return f"GitRepo({str(self.root)!r})"

    def __enter__(self) -> GitRepo:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release open pack files; the next call reopens the repository."""
        if self._repo is not None:
            self._repo.close()
            self._repo = None

    @property
    def _dul(self) -> Repo:
        if self._repo is None:
            from dulwich.errors import NotGitRepository
            from dulwich.repo import Repo

            _close_at_exit(self)
            try:
                self._repo = Repo(str(self.root))
            except (NotGitRepository, FileNotFoundError, NotADirectoryError) as exc:
                raise NotARepositoryError(
                    f"not a git repository: {self.root}",
                    hint="run `git init` first, or cd into a git repository",
                ) from exc
            except Exception as exc:
                raise _as_git_error(f"cannot open git repository {self.root}", exc) from exc
        return self._repo

    # ---- reads (dulwich, in process) -------------------------------------------------

    def head_commit(self) -> str | None:
        """Commit HEAD points at, or None in a repository without commits."""
        with _translate("reading HEAD"):
            try:
                sha = self._dul.refs[b"HEAD"]
            except KeyError:
                return None
            return self._peel(sha, "HEAD")

    def is_shallow(self) -> bool:
        """True in a shallow clone, where fetches should pass a depth to stay shallow."""
        with _translate("reading the shallow file"):
            return bool(self._dul.get_shallow())

    def resolve_rev(self, rev: str) -> str:
        """Commit sha for HEAD, HEAD~2, HEAD^2, a branch, a tag, a full or abbreviated sha."""
        if not rev:
            raise UsageError("empty revision", hint="name a commit, branch or tag, e.g. HEAD")
        cut = min((i for i in (rev.find("~"), rev.find("^")) if i >= 0), default=len(rev))
        base, ops = rev[:cut], rev[cut:]
        steps = _REV_OPS.findall(ops)
        # Anything a ref name cannot hold (':', '@{', '..') is revision syntax we do not speak.
        if not base or "".join(steps) != ops or not valid_ref(b"refs/x/" + base.encode()):
            raise UsageError(
                f"unsupported revision syntax: {rev}",
                hint="use a branch, tag or sha, optionally followed by ~N or ^N",
            )
        with _translate(f"resolving {rev}"):
            sha = self._peel(self._resolve_base(base, rev), rev)
            for step in steps:
                if step.startswith("^{"):
                    continue
                count = int(step[1:]) if len(step) > 1 else 1
                if step[0] == "~":
                    for _ in range(count):
                        sha = self._parent(sha, 1, rev)
                elif count:
                    sha = self._parent(sha, count, rev)
            return sha

    def read_file(self, rev: str, path: str) -> bytes | None:
        """Bytes of the repo-relative '/'-separated `path` at `rev`; None when it is not a file."""
        parts = [p for p in path.split("/") if p not in ("", ".")]
        if not parts or ".." in parts or path.startswith("/"):
            raise InvalidPathError(
                f"not a repository-relative path: {path!r}",
                hint="give a path relative to the repository root, with '/' separators",
            )
        commit = self.resolve_rev(rev)
        from dulwich.objects import Blob, Tree

        with _translate(f"reading {path} at {rev}"):
            store = self._dul.object_store
            obj: ShaFile = store[self._dul[commit.encode()].tree]  # type: ignore[attr-defined]
            for part in parts:
                if not isinstance(obj, Tree):
                    return None
                try:
                    _mode, sha = obj[part.encode()]
                except KeyError:
                    return None
                try:
                    obj = store[sha]
                except KeyError:
                    # A submodule (gitlink) points at a commit of another repository.
                    return None
            return obj.as_raw_string() if isinstance(obj, Blob) else None

    def user(self) -> str:
        """'Name <email>' as git would record a tagger: env, then git config, then the OS."""
        with _translate("reading the git identity"):
            return _identity(self._dul.get_config_stack())

    def has_remote(self, remote: str = "origin") -> bool:
        """True when `remote.<remote>.url` is configured."""
        with _translate("reading the git config"):
            try:
                return bool(self._dul.get_config_stack().get(("remote", remote), "url"))
            except KeyError:
                return False

    def list_tags(self, prefix: str = "") -> dict[str, TagInfo]:
        """Every tag whose name starts with `prefix`, with annotations and peeled commits."""
        with _translate("listing tags"):
            store = self._dul.object_store
            commit_times: dict[bytes, int] = {}
            result: dict[str, TagInfo] = {}
            for name, ref_sha in sorted(self._tag_refs(prefix).items()):
                # Raw headers are parsed by hand: building dulwich objects for thousands of
                # tags costs several times more than the bytes themselves.
                type_num, raw = self._raw(store, ref_sha, name)
                sha, message, tagger, when = ref_sha, "", "", 0
                if type_num == _TAG:
                    head, message = _split_tag(raw)
                    tagger, when = _ident(head.get(b"tagger", b""))
                    sha = head.get(b"object", b"")
                    while head.get(b"type") == b"tag":  # a tag of a tag: keep peeling
                        head, _ = _split_tag(self._raw(store, sha, name)[1])
                        sha = head.get(b"object", b"")
                elif type_num == _COMMIT:
                    if sha not in commit_times:
                        head, _ = _split_tag(raw)
                        commit_times[sha] = _ident(head.get(b"committer", b""))[1]
                    when = commit_times[sha]
                result[name] = TagInfo(
                    name=name,
                    ref_sha=ref_sha.decode(),
                    commit=sha.decode(),
                    message=message,
                    tagger=tagger,
                    time=when,
                )
            return result

    def tag_values(self, prefix: str = "") -> dict[str, str]:
        """{tag name: ref sha} of the tags starting with `prefix`; no object is read."""
        with _translate("listing tags"):
            return {name: sha.decode() for name, sha in self._tag_refs(prefix).items()}

    def has_object(self, sha: str) -> bool:
        """True when the object `sha` (e.g. a tag's commit) is in this repository already."""
        with _translate(f"looking up {sha}"):
            return bool(_FULL_SHA.fullmatch(sha)) and sha.encode() in self._dul.object_store

    def _tag_refs(self, prefix: str) -> dict[str, bytes]:
        """{tag name: ref sha} from packed-refs and loose refs (loose ones win, as in git)."""
        refs = self._dul.refs
        pfx = prefix.encode()
        found = {
            ref[len(TAGS) :]: sha
            for ref, sha in refs.get_packed_refs().items()
            if ref.startswith(b"refs/tags/" + pfx)
        }
        # Walk only the directory the prefix pins down ('team/' -> refs/tags/team).
        tags_dir = os.path.join(self._dul.commondir(), "refs", "tags")
        sub = prefix.rpartition("/")[0].split("/")
        safe = all(part not in ("", ".", "..") for part in sub)
        top = os.path.join(tags_dir, *sub) if safe else tags_dir
        for dirpath, _dirs, files in os.walk(top):
            rel = os.path.relpath(dirpath, tags_dir).replace(os.sep, "/")
            for file in files:
                key = (file if rel == "." else f"{rel}/{file}").encode("utf-8", "surrogateescape")
                if not key.startswith(pfx) or not valid_ref(b"refs/tags/" + key):
                    continue
                content = refs.read_loose_ref(b"refs/tags/" + key)
                if content is None:
                    continue  # deleted while we walked
                if content.startswith(b"ref: "):
                    try:
                        content = refs[b"refs/tags/" + key]
                    except KeyError:
                        continue  # dangling symbolic ref
                found[key] = content
        return {k.decode("utf-8", "surrogateescape"): v for k, v in found.items()}

    def _raw(self, store: BaseObjectStore, sha: bytes, name: str) -> tuple[int, bytes]:
        try:
            return store.get_raw(sha)  # type: ignore[arg-type]
        except KeyError:
            raise RevisionNotFoundError(
                f"tag {name}: object {sha.decode()} is missing from the repository",
                hint=f"fetch it again (`git fetch origin +refs/tags/{name}:refs/tags/{name}`) "
                f"or delete it (`git tag -d {name}`)",
            ) from None

    # ---- local ref updates (dulwich, compare-and-swap) -------------------------------

    def create_tag(self, name: str, commit: str, message: str, expected_old: str | None) -> str:
        """Write an annotated tag on `commit` and point `name` at it only if it still equals
        `expected_old` (None: only if the tag does not exist). Returns the new tag object sha."""
        ref = tag_ref(name)
        target = commit if _FULL_SHA.fullmatch(commit) else self.resolve_rev(commit)
        from dulwich.objects import Commit, Tag

        testhooks.hit()  # crash suite

        with _translate(f"creating tag {name}"):
            repo = self._dul
            obj = self._object(target.encode(), f"commit {target}")
            if not isinstance(obj, Commit):
                raise UsageError(
                    f"cannot tag {target}: it is a {obj.type_name.decode()}, not a commit",
                    hint="tag a commit sha, branch or HEAD",
                )
            now = int(time.time())
            tag = Tag()
            tag.tagger = self.user().encode("utf-8")
            tag.tag_time = now
            tag.tag_timezone = time.localtime(now).tm_gmtoff
            tag.name = name.encode()
            tag.object = (Commit, obj.id)
            tag.message = (message if message.endswith("\n") else message + "\n").encode("utf-8")
            repo.object_store.add_object(tag)
            new = tag.id
            if expected_old is None:
                won = _locked(ref, lambda: repo.refs.add_if_new(ref, new))
            else:
                old = expected_old.encode()
                won = _locked(ref, lambda: repo.refs.set_if_equals(ref, old, new))
            if not won:
                raise self._race(name, expected_old)
            return new.decode()

    def delete_tag(self, name: str, expected_old: str) -> None:
        """Delete tag `name` only if it still points at `expected_old`."""
        ref = tag_ref(name)
        with _translate(f"deleting tag {name}"):
            refs = self._dul.refs
            old = expected_old.encode()
            if not _locked(ref, lambda: refs.remove_if_equals(ref, old)):
                raise self._race(name, expected_old)

    def fetch_tags_keeping_shape(
        self, keep: list[str], move: list[str], commits: dict[str, str], remote: str,
        shallow: bool,
    ) -> None:
        """`fetch_tag_refs` without changing the shape of this repository's history.

        `commits` maps each tag to the commit it peels to (from `remote_tag_targets`). Tags
        on commits present here are fetched without --depth (git would list those commits in
        .git/shallow and cut the user's history there). With `shallow`, the others are fetched
        at depth 1, and any of their commits whose parents are all here (a child of the
        user's history) is taken off .git/shallow again: it is no history boundary."""
        if not shallow:
            self.fetch_tag_refs(keep, move, remote=remote)
            return
        here = {t for t in (*keep, *move) if self.has_object(commits[t])}
        self.fetch_tag_refs([t for t in keep if t in here], [t for t in move if t in here],
                            remote=remote)
        absent_keep = [t for t in keep if t not in here]
        absent_move = [t for t in move if t not in here]
        if not absent_keep and not absent_move:
            return
        with _translate("reading the shallow file"):
            before = self._dul.get_shallow()
        self.fetch_tag_refs(absent_keep, absent_move, remote=remote, depth=1)
        with _translate("updating the shallow file"):
            _unshallow_children(self._dul, self._dul.get_shallow() - before)

    def read_blob(self, sha: str) -> bytes:
        """A blob's bytes by its sha (gc and fsck read every manifest in history)."""
        with _translate(f"reading blob {sha[:12]}"):
            return bytes(self._object(sha.encode(), f"blob {sha[:12]}").as_raw_string())

    # ---- internals -------------------------------------------------------------------

    def _refresh(self) -> None:
        self.close()  # git wrote packs and refs on disk: start from a fresh view

    def _object(self, sha: bytes, what: str) -> ShaFile:
        try:
            return self._dul.object_store[sha]
        except KeyError:
            hint = "run `git fsck`; in a shallow clone fetch it with `gart pull` or `git fetch`"
            raise RevisionNotFoundError(
                f"{what}: object {sha.decode()} is missing from the repository", hint=hint
            ) from None

    def _peel(self, sha: bytes, rev: str) -> str:
        """Follow tag objects down to the commit; anything else is not a revision for us."""
        from dulwich.objects import Commit, Tag

        obj = self._object(sha, rev)
        while isinstance(obj, Tag):
            obj = self._object(obj.object[1], rev)
        if not isinstance(obj, Commit):
            raise UsageError(
                f"{rev} is a {obj.type_name.decode()}, not a commit",
                hint="name a commit, branch or tag",
            )
        return obj.id.decode()

    def _parent(self, sha: str, nth: int, rev: str) -> str:
        from dulwich.objects import Commit

        commit = self._object(sha.encode(), rev)
        assert isinstance(commit, Commit)
        # A shallow commit still names its parents, but their objects are not here.
        if commit.id in self._dul.get_shallow():
            raise RevisionNotFoundError(
                f"{rev} is beyond the history of this shallow clone",
                hint="deepen it with `git fetch --deepen=<n>` or `git fetch --unshallow`",
            )
        if len(commit.parents) < nth:
            raise RevisionNotFoundError(
                f"unknown revision {rev}: commit {sha[:12]} has no parent #{nth}",
                hint="check the revision with `git log`",
            )
        return commit.parents[nth - 1].decode()

    def _resolve_base(self, base: str, rev: str) -> bytes:
        repo = self._dul
        if base == "@":
            base = "HEAD"
        raw = base.encode()
        if _FULL_SHA.fullmatch(base) and raw in repo.object_store:
            return raw
        if base == "HEAD" or base.startswith("refs/"):
            candidates = [raw]
        else:
            candidates = [
                b"refs/tags/" + raw,
                b"refs/heads/" + raw,
                b"refs/remotes/" + raw,
                b"refs/remotes/" + raw + b"/HEAD",
            ]
        for ref in candidates:
            try:
                return repo.refs[ref]
            except KeyError:
                continue
        if _SHORT_SHA.fullmatch(base):
            found = [s for s in repo.object_store.iter_prefix(raw) if self._is_commitish(s)]
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                raise UsageError(
                    f"short sha {base} is ambiguous ({len(found)} objects)",
                    hint="give more hex digits of the commit",
                )
        if base == "HEAD":
            raise RevisionNotFoundError(
                "HEAD does not point at a commit yet",
                hint="commit something first (`git commit`)",
            )
        raise RevisionNotFoundError(
            f"unknown revision {rev}",
            hint="check the name with `git tag -l` or `git log`; "
            "tags on the remote arrive with `git fetch --tags`",
        )

    def _is_commitish(self, sha: bytes) -> bool:
        from dulwich.objects import Commit, Tag

        obj = self._dul.object_store[sha]
        return isinstance(obj, (Commit, Tag))

    def _race(self, name: str, expected: str | None) -> TagRaceError:
        try:
            current: str | None = self._dul.refs[tag_ref(name)].decode()
        except KeyError:
            current = None
        if expected is None:
            what = f"tag {name} already exists (it points to {current})"
        elif current is None:
            what = f"tag {name} no longer exists (expected it at {expected})"
        else:
            what = f"tag {name} moved meanwhile: it points to {current}, expected {expected}"
        return TagRaceError(
            what, hint="another writer updated it first; re-read the tags and retry"
        )


def init_bare(dest: Path) -> GitRepo:
    """A bare repository at `dest` (created when absent), e.g. to fetch another repo's tags."""
    init_bare_dir(dest)
    return GitRepo(dest)


def fetch_ref_shallow(url: str, tag_or_rev: str, dest: Path) -> GitRepo:
    """Fetch one tag, branch or full sha of another repository (depth 1) into a bare cache
    repository at `dest`, without cloning it; the returned GitRepo reads files at that rev."""
    fetch_ref_into(url, tag_or_rev, dest)
    return GitRepo(dest)


# ---- helpers -------------------------------------------------------------------------


_OPEN: weakref.WeakSet[GitRepo] = weakref.WeakSet()


def _close_at_exit(repo: GitRepo) -> None:
    # dulwich's destructors warn about open packs, and at interpreter shutdown they fail
    # noisily ("sys.meta_path is None"); closing before shutdown keeps a CLI's stderr clean.
    if not _OPEN:
        atexit.unregister(_close_all)
        atexit.register(_close_all)
    _OPEN.add(repo)


def _close_all() -> None:
    for repo in list(_OPEN):
        with suppress(Exception):
            repo.close()


def _locked(ref: bytes, update: Callable[[], bool]) -> bool:
    """Run a ref update, waiting briefly while another writer holds the ref's lock file."""
    from dulwich.file import FileLocked

    deadline = time.monotonic() + _LOCK_WAIT_S
    while True:
        try:
            return update()
        except FileLocked:
            if time.monotonic() > deadline:
                raise GitError(
                    f"{ref.decode()} is locked by another process",
                    hint="if no git process is running, delete the stale .lock file under .git",
                ) from None
            time.sleep(0.01)


@contextmanager
def _translate(action: str) -> Iterator[None]:
    """Turn whatever dulwich raises (KeyError, OSError, its own types) into a GitError."""
    try:
        yield
    except GartError:
        raise
    except (TypeError, AttributeError, NameError):
        raise  # programming errors stay visible as such
    except Exception as exc:
        raise _as_git_error(action, exc) from exc


def _as_git_error(action: str, exc: BaseException) -> GitError:
    detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return GitError(f"{action} failed: {detail}", hint="check the repository with `git fsck`")


def _unshallow_children(repo: Repo, added: set[bytes]) -> None:
    """Take commits off .git/shallow whose parents are all present: no history boundary."""
    from dulwich.objects import Commit

    store = repo.object_store
    whole = {
        sha for sha in added
        if isinstance(obj := store[sha], Commit) and obj.parents
        and all(parent in store for parent in obj.parents)
    }
    if whole:  # git's own lock protocol (shallow.lock), waited for like a ref's
        _locked(b"shallow", lambda: repo.update_shallow(None, whole) is None)


def _identity(config: StackedConfig) -> str:
    """'Name <email>' from the environment, then the git config, then the OS."""

    def setting(section: str, key: str) -> str | None:
        try:
            value = config.get((section,), key)
        except KeyError:
            return None
        return value.decode("utf-8", "replace") if value else None

    env = os.environ.get
    login = _login()
    name = (
        env("GIT_COMMITTER_NAME")
        or setting("committer", "name")
        or setting("user", "name")
        or env("GIT_AUTHOR_NAME")
        or login
    )
    email = (
        env("GIT_COMMITTER_EMAIL")
        or setting("committer", "email")
        or setting("user", "email")
        or env("GIT_AUTHOR_EMAIL")
        or env("EMAIL")
        or f"{login}@{_hostname()}"
    )
    return f"{name} <{email}>"


def _split_tag(raw: bytes) -> tuple[dict[bytes, bytes], str]:
    """Headers (first occurrence of each) and message of a raw tag or commit object."""
    head, _, body = raw.partition(b"\n\n")
    fields: dict[bytes, bytes] = {}
    for line in head.split(b"\n"):
        key, _, value = line.partition(b" ")
        if key and not key.startswith(b" "):
            fields.setdefault(key, value)
    # A signed tag carries its signature after the message; it is not part of the message.
    for marker in (b"-----BEGIN PGP SIGNATURE-----", b"-----BEGIN SSH SIGNATURE-----"):
        body = body.partition(marker)[0]
    return fields, _text(body).rstrip("\n")


def _ident(line: bytes) -> tuple[str, int]:
    """'Name <email> 1700000000 +0100' -> ('Name <email>', 1700000000)."""
    ident, _, rest = line.rpartition(b"> ")
    if not ident:
        return _text(line), 0
    stamp = rest.split(b" ")[0]
    return _text(ident + b">"), int(stamp) if stamp.isdigit() else 0


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def _hostname() -> str:
    import socket  # only when git knows no email: keeps gitrepo cheap to import

    return socket.gethostname()


def _login() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (OSError, KeyError):  # containers without a passwd entry
        return "unknown"
