"""The git plumbing that hooks and the merge driver need: hook paths, config, commit ranges.

Hooks run inside git commands, once per push, checkout or merge, and keep to a handful of
calls of the git binary through gitcli's one runner (the user's own git, config and
credentials, no prompts). Reads of files at a revision still go through `gitrepo.GitRepo`.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from gitartifacts.errors import GitError
from gitartifacts.gitcli import git_checked, run_git

ZERO_SHA = "0" * 40
_ENV = {"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}


def git(root: Path, *args: str, check: bool = True) -> str:
    """Run `git args...` in `root`; stdout, or a GitError naming the command on failure."""
    if not check:
        return run_git(root, list(args))[1]
    return git_checked(root, list(args), f"git {args[0]}",
                       hint=f"run `git {' '.join(args)}` to see more")


def hooks_dir(root: Path) -> Path:
    """Where git looks for hooks: `core.hooksPath` when set, else `.git/hooks`."""
    path = Path(git(root, "rev-parse", "--git-path", "hooks").strip())
    return path if path.is_absolute() else root / path


def hooks_path_setting(root: Path) -> str | None:
    """The value of core.hooksPath (None: unset)."""
    value = git(root, "config", "--get", "core.hooksPath", check=False).strip()
    return value or None


def config_get(root: Path, key: str) -> str | None:
    value = git(root, "config", "--local", "--get", key, check=False).strip()
    return value or None


def config_set(root: Path, key: str, value: str) -> None:
    git(root, "config", "--local", key, value)


def config_unset_section(root: Path, section: str) -> None:
    git(root, "config", "--local", "--remove-section", section, check=False)


def commit_exists(root: Path, sha: str) -> bool:
    return run_git(root, ["cat-file", "-e", f"{sha}^{{commit}}"])[0] == 0


def pushed_commits(root: Path, local_sha: str, remote_sha: str, remote: str) -> list[str]:
    """Commits reachable from `local_sha` that the remote does not have (as far as we know):
    not reachable from `remote_sha` (when known locally) nor from any remote-tracking branch
    of `remote`. This is git-lfs's rule for which objects a push must carry."""
    named = remote and not any(c in remote for c in ":/\\")  # a remote name, not a URL
    excludes = [f"--remotes={remote}"] if named else []
    if remote_sha != ZERO_SHA and commit_exists(root, remote_sha):
        excludes.append(remote_sha)
    out = git(root, "rev-list", local_sha, "--not", *excludes)
    return out.split()


def manifests_changed_in(root: Path, commits: list[str], prefix: str) -> list[tuple[str, str]]:
    """(commit, path) for every file under `prefix` added or modified by one of `commits`
    (merges compared with each parent)."""
    if not commits:
        return []
    found: list[tuple[str, str]] = []
    # The one call that feeds git on stdin (any number of commits), which gitcli's runner
    # does not do: plain subprocess, with the same no-prompt environment.
    done = subprocess.run(
        ["git", "diff-tree", "--stdin", "-r", "-m", "--root", "--no-renames", "--name-only",
         "--diff-filter=AM", "--", prefix],
        cwd=root, input="\n".join(commits) + "\n", capture_output=True, text=True, check=False,
        env={**os.environ, **_ENV},
    )
    if done.returncode != 0:
        raise GitError(f"git diff-tree: {done.stderr.strip()}", hint="check the repository")
    current = None
    for line in done.stdout.splitlines():
        if not line:
            continue
        if len(line) == 40 and all(c in "0123456789abcdef" for c in line):
            current = line
        elif current is not None and (current, line) not in found:
            found.append((current, line))
    return found


def changed_between(root: Path, old: str | None, new: str, prefix: str) -> list[str]:
    """Paths under `prefix` that differ between two commits (all of them when `old` is None
    or the null sha, as after a clone)."""
    if old is None or old == ZERO_SHA or not commit_exists(root, old):
        out = git(root, "ls-tree", "-r", "--name-only", new, "--", prefix, check=False)
    else:
        out = git(root, "diff", "--name-only", "--no-renames", old, new, "--", prefix,
                  check=False)
    return [line for line in out.splitlines() if line]
