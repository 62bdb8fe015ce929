"""git hooks and the merge driver: install, uninstall, and what each hook does when git runs it.

- `pre-push` (git-lfs's rule): uploads the objects of every manifest added or changed by
  the commits being pushed (read from the refs git writes on stdin) to the default remote,
  and blocks the push, naming the files, when they cannot be uploaded. gart's own version
  and alias tags (`NAME@…`) are skipped: `gart push` uploads before it tags.
- `post-checkout` (branch switches) and `post-merge`: when `core.autocheckout: true`, run
  `gart checkout` for the artifacts whose manifests changed. Files you changed are never
  overwritten; conflicts are reported and the hook exits 1.
- The merge driver (`merge.gart.driver` in `.git/config`, `merge=gart` in `.gitattributes`)
  merges manifests entry by entry (`mergedriver`).

A hook that was already in place (the user's own, or a manager's such as `pre-commit`) is
kept as `<hook>.pre-gart` and runs first, with the same arguments and stdin; its failure
stops the chain. `core.hooksPath` is respected. `--uninstall` restores what was there.
Hooks call `<this python> -m gitartifacts`, falling back to `gart` on PATH.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from gitartifacts import gitplumbing
from gitartifacts.api import Repo
from gitartifacts.config import GART_DIR, env_flag
from gitartifacts.errors import GartError, NotARepositoryError
from gitartifacts.fsutil import atomic_write
from gitartifacts.gitrepo import find_root

HOOKS = ("pre-push", "post-checkout", "post-merge")
MARKER = "# gart-hook v1"
CHAINED_SUFFIX = ".pre-gart"
ATTRIBUTES = (f"{GART_DIR}/artifacts/*.yaml merge=gart",
              f"{GART_DIR}/artifacts/**/*.yaml merge=gart")
ARTIFACTS_PREFIX = f"{GART_DIR}/artifacts/"

_SCRIPT = """#!/bin/sh
{marker}: installed by `gart install-hooks`, removed by `gart install-hooks --uninstall`.
# The hook that was here before is kept as {name}{suffix} and runs first.
chained="$(dirname -- "$0")/{name}{suffix}"
GART_PY={python}
gart_hook() {{
  if [ -x "$GART_PY" ]; then "$GART_PY" -m gitartifacts hook {name} "$@"
  else gart hook {name} "$@"; fi
}}
"""
_TAIL_PLAIN = """if [ -x "$chained" ]; then "$chained" "$@" || exit $?; fi
gart_hook "$@"
"""
_TAIL_STDIN = """input=$(cat)
if [ -x "$chained" ]; then printf '%s\\n' "$input" | "$chained" "$@" || exit $?; fi
printf '%s\\n' "$input" | gart_hook "$@"
"""


def hook_script(name: str, python: str) -> str:
    """The shell script installed as hook `name`."""
    head = _SCRIPT.format(marker=MARKER, name=name, suffix=CHAINED_SUFFIX,
                          python=shlex.quote(python))
    return head + (_TAIL_STDIN if name == "pre-push" else _TAIL_PLAIN)


def _is_ours(path: Path) -> bool:
    try:
        return MARKER in path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


@dataclass
class HookReport:
    """What install or uninstall did."""

    hooks_dir: str
    hooks: dict[str, str] = field(default_factory=dict)  # hook -> what happened to it
    merge_driver: str = ""
    attributes: str = ""


def install(root: Path | None = None, python: str | None = None) -> HookReport:
    """Install the hooks (chaining existing ones) and register the merge driver."""
    repo = Repo(root)
    python = python or sys.executable
    where = gitplumbing.hooks_dir(repo.root)
    where.mkdir(parents=True, exist_ok=True)
    report = HookReport(str(where))
    for name in HOOKS:
        path = where / name
        chained = where / (name + CHAINED_SUFFIX)
        if path.exists() and not _is_ours(path):
            if chained.exists():
                raise GartError(
                    f"{path} exists and so does {chained.name}; gart will not overwrite either",
                    hint=f"merge them by hand or remove {chained.name}, then run "
                    "`gart install-hooks` again",
                )
            os.replace(path, chained)
            report.hooks[name] = f"installed; existing hook kept as {chained.name}, runs first"
        else:
            report.hooks[name] = "updated" if path.exists() else "installed"
        atomic_write(path, hook_script(name, python).encode("utf-8"))
        path.chmod(0o755)
    driver = f"{shlex.quote(python)} -m gitartifacts merge-driver %O %A %B %P"
    gitplumbing.config_set(repo.root, "merge.gart.name", "gart: merge manifests entry by entry")
    gitplumbing.config_set(repo.root, "merge.gart.driver", driver)
    report.merge_driver = "registered in .git/config (merge.gart.driver)"
    report.attributes = _edit_attributes(repo, add=True)
    return report


def uninstall(root: Path | None = None) -> HookReport:
    """Remove gart's hooks (restoring chained ones), the merge driver and its attributes."""
    repo = Repo(root)
    where = gitplumbing.hooks_dir(repo.root)
    report = HookReport(str(where))
    for name in HOOKS:
        path = where / name
        chained = where / (name + CHAINED_SUFFIX)
        if path.exists() and not _is_ours(path):
            report.hooks[name] = "not gart's (left alone)"
            continue
        if path.exists():
            path.unlink()
            report.hooks[name] = "removed"
        else:
            report.hooks[name] = "absent"
        if chained.exists():
            os.replace(chained, path)
            report.hooks[name] += "; previous hook restored"
    gitplumbing.config_unset_section(repo.root, "merge.gart")
    report.merge_driver = "removed from .git/config"
    report.attributes = _edit_attributes(repo, add=False)
    return report


def _edit_attributes(repo: Repo, add: bool) -> str:
    path = repo.root / ".gitattributes"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    lines = text.splitlines()
    if add:
        wanted = [line for line in ATTRIBUTES if line not in lines]
        if not wanted:
            return ".gitattributes already routes manifests to the gart merge driver"
        if text and not text.endswith("\n"):
            text += "\n"
        new = text + "".join(f"{line}\n" for line in wanted)
    else:
        kept = [line for line in lines if line not in ATTRIBUTES]
        if kept == lines:
            return ".gitattributes had no gart lines"
        new = "".join(f"{line}\n" for line in kept)
    if new.strip():
        atomic_write(path, new.encode("utf-8"))
    elif path.exists():
        path.unlink()
    if repo.config.autostage:
        gitplumbing.git(repo.root, "add", "-A", "--", ".gitattributes", check=False)
    return ".gitattributes updated" + (" and staged" if repo.config.autostage else "")


# -- running the hooks -------------------------------------------------------------------


def _say(message: str) -> None:
    if not env_flag("GART_QUIET"):
        print(message, file=sys.stderr)


def _open_repo() -> Repo | None:
    """The gart repository of the working directory; None (hook does nothing) if none."""
    try:
        return Repo(find_root(None))
    except NotARepositoryError:
        return None


def _names(paths: Iterable[str]) -> list[str]:
    return sorted({p[len(ARTIFACTS_PREFIX):-len(".yaml")] for p in paths
                   if p.startswith(ARTIFACTS_PREFIX) and p.endswith(".yaml")})


def run_pre_push(remote_name: str, stdin_lines: Iterable[str]) -> int:
    """Upload the objects of manifests changed by the pushed commits; 1 blocks the push."""
    from gitartifacts import manifest as manifestmod
    from gitartifacts import transfer

    repo = _open_repo()
    if repo is None:
        return 0
    commits: list[str] = []
    for line in stdin_lines:
        parts = line.split()
        if len(parts) != 4:
            continue
        _local_ref, local_sha, remote_ref, remote_sha = parts
        if local_sha == gitplumbing.ZERO_SHA:
            continue  # a deletion carries no data
        if remote_ref.startswith("refs/tags/") and "@" in remote_ref:
            continue  # gart's version/alias tags: `gart push` uploaded before it tagged
        for sha in gitplumbing.pushed_commits(repo.root, local_sha, remote_sha, remote_name):
            if sha not in commits:
                commits.append(sha)
    changed = gitplumbing.manifests_changed_in(repo.root, commits, ARTIFACTS_PREFIX)
    manifests = []
    for commit, path in changed:
        data = repo.git.read_file(commit, path)
        if data is not None:
            manifests.append(manifestmod.loads(data, f"{commit[:12]}:{path}"))
    oids = {e.oid for m in manifests for e in m.entries}
    if not oids:
        return 0
    names = sorted({m.name for m in manifests})
    try:
        store = repo.remote_store(None)
        result = transfer.push(repo.cache, store, oids, repo.config.jobs)
    except GartError as exc:
        _block(f"could not upload the data of {', '.join(names)}: {exc.message}",
               exc.hint or "fix the remote, then push again")
        return 1
    if result.failed:
        files = sorted({f"{m.name}:{e.path}" for m in manifests for e in m.entries
                        if e.oid in result.failed})
        reason = next(iter(result.failed.values()))
        _block(f"{len(files)} file(s) could not be uploaded ({reason}): {', '.join(files)}",
               "`gart pull`/`gart add` them so the cache has them (or fix the remote), then "
               "push again; `git push --no-verify` skips this check")
        return 1
    repo.record_pushed(None, [m.digest for m in manifests])
    if result.transferred:
        _say(f"gart: uploaded {result.transferred} object(s) of {', '.join(names)} to "
             f"{store.describe()}")
    return 0


def _block(message: str, hint: str) -> None:
    from gitartifacts.config import redact

    print(f"gart: error: pre-push: {redact(message)}; the push was stopped", file=sys.stderr)
    print(f"hint: {redact(hint)}", file=sys.stderr)


def run_checkout_hook(old: str | None, new: str) -> int:
    """post-checkout / post-merge: check out artifacts whose manifests changed."""
    repo = _open_repo()
    if repo is None or not repo.config.autocheckout:
        return 0
    failed = 0
    for name in _names(gitplumbing.changed_between(repo.root, old, new, ARTIFACTS_PREFIX)):
        if not repo.manifest_path(name).exists():
            continue
        try:
            manifest = repo.load_manifest(name)
            if repo.cache.missing({e.oid for e in manifest.entries}):
                _say(f"gart: {name}: objects not in the cache; run `gart pull {name}`")
                continue
            plan = repo.checkout(manifest)
        except GartError as exc:
            failed += 1
            print(f"gart: error: {name}: {exc.message}", file=sys.stderr)
            if exc.hint:
                print(f"hint: {exc.hint}", file=sys.stderr)
            continue
        if plan.write or plan.delete:
            _say(f"gart: {name}: {len(plan.write)} written, {len(plan.delete)} deleted")
    return 1 if failed else 0


def run_hook(name: str, args: list[str], stdin: Iterable[str]) -> int:
    """Entry point of the installed scripts: `gart hook NAME ARGS...`."""
    if name == "pre-push":
        return run_pre_push(args[0] if args else "origin", stdin)
    if name == "post-checkout":
        if len(args) < 3 or args[2] != "1":
            return 0  # a file checkout, not a branch switch
        return run_checkout_hook(args[0], args[1])
    if name == "post-merge":
        return run_checkout_hook("ORIG_HEAD", "HEAD")
    return 0
