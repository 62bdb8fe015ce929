"""What every `gart` command shares: the click group, options, the one error table, output."""

from __future__ import annotations

import errno
import json
import sys
from typing import Any, NoReturn

import click

from gitartifacts import errors
from gitartifacts.progress import Bar

# One table for every failure: exception type -> exit code and the next step to suggest
# when the error itself carries no hint. First match wins, so specific types come first.
ERROR_TABLE: list[tuple[type[BaseException], int, str]] = [
    (errors.UsageError, 2, "see `gart COMMAND --help`"),
    (errors.NotARepositoryError, 1, "run `git init` and `gart init` first"),
    (errors.TagRaceError, 1, "someone else moved it first; fetch and retry"),
    (errors.ConflictError, 1, "re-run with --force to overwrite"),
    (errors.ObjectNotFoundError, 1, "run `gart pull NAME` to download missing objects"),
    (errors.CorruptObjectError, 1, "run `gart fsck`; re-download with `gart pull`"),
    (errors.RemoteError, 1, "check the remote with `gart remote list`, network and credentials"),
    (errors.ManifestError, 1,
     "restore the file from git (`git checkout -- FILE`), or re-create it with gart"),
    (errors.InvalidPathError, 1, "use a relative path inside the repository, outside .git/"),
    (errors.InvalidNameError, 1, "names use a-z, 0-9, '.', '_', '-' (optionally 'team/name'), "
     "e.g. raw-images"),
    (errors.ConfigError, 1, "fix the key named above in .gart/config.yaml or "
     ".gart/config.local.yaml; `gart remote --help` shows how to set remotes"),
    (errors.ArtifactNotFoundError, 1, "list artifacts with `gart status`, versions with "
     "`gart versions NAME`"),
    (errors.GitError, 1, "run the git command by hand to see what git says"),
    (errors.GartError, 1, "see `gart COMMAND --help`"),
    (PermissionError, 1, "check file permissions"),
    (OSError, 1, "check the path and the disk"),
]


def fail(exc: BaseException) -> NoReturn:
    """Print an error as one line (plus a hint line) and exit with its code."""
    row = next((r for r in ERROR_TABLE if isinstance(exc, r[0])), None)
    if row is None:  # pragma: no cover - the table ends with OSError; other types are bugs
        raise exc
    _kind, code, default_hint = row
    if isinstance(exc, errors.GartError):
        message, hint = exc.message, exc.hint or default_hint
    elif isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        message, hint = "no space left on device", "free disk space or move the cache (cache.dir)"
    elif isinstance(exc, OSError):
        where = f": {exc.filename}" if exc.filename else ""
        message, hint = f"{exc.strerror or exc}{where}", default_hint
    else:  # pragma: no cover
        message, hint = str(exc), default_hint
    from gitartifacts.config import redact  # the one place errors are printed: mask secrets

    click.echo(f"gart: error: {redact(message)}", err=True)
    if hint:
        click.echo(f"hint: {redact(hint)}", err=True)
    sys.exit(code)


class State:
    """Options shared by every command."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    def say(self, message: str) -> None:
        if not self.quiet:
            click.echo(message, err=True)

    def bar(self, total: int | None, desc: str, unit: str = "file", scale: bool = False) -> Bar:
        return Bar(total, desc, unit=unit, quiet=self.quiet, unit_scale=scale)


pass_state = click.make_pass_decorator(State)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def open_repo() -> Any:
    from gitartifacts.api import Repo

    return Repo()


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or messages on stderr.")
@click.version_option(package_name="gitartifacts", prog_name="gart")
@click.pass_context
def cli(ctx: click.Context, quiet: bool) -> None:
    """gart — versioned datasets and models: manifests in git, bytes in any remote.

    \b
    Typical session:
      gart init
      gart add data/ --name raw-images --type dataset
      git commit -m "raw images" && gart push
      gart pull raw-images@production
    """
    from gitartifacts.config import env_flag

    ctx.obj = State(quiet or env_flag("GART_QUIET"))




def parse_metadata(pairs: tuple[str, ...]) -> dict[str, Any] | None:
    if not pairs:
        return None
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise errors.UsageError(
                f"--metadata {pair!r} is not KEY=VALUE", hint="e.g. --metadata source=camera-a"
            )
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover


def resolve_manifest(spec: str) -> Any:
    return open_repo().resolve(spec)


optional_remote = click.option(
    "-r", "--remote", "remote_name", is_flag=False, flag_value="", default=None,
    metavar="[NAME]", help="Also check/clean this remote (no NAME: the default remote).")


def warn_tracked_private(repo: Any) -> None:
    """Say (even under -q) that git tracks files under .gart/tmp or .gart/cache."""
    tracked = repo.tracked_private_files()
    if tracked:
        click.echo(
            f"warning: git tracks {len(tracked)} file(s) under .gart/tmp or .gart/cache "
            f"(e.g. {tracked[0]}); gart never uses them. Remove them with "
            "`git rm -r --cached .gart/tmp .gart/cache`", err=True,
        )


remote_option = click.option("-r", "--remote", "remote_name", help="Remote (default: the default).")
jobs_option = click.option("-j", "--jobs", type=click.IntRange(1, 256),
                           help="Concurrent transfers (default: core.jobs, 8).")


def split_spec(spec: str) -> tuple[str, str | None]:
    from gitartifacts.paths import parse_spec

    parsed = parse_spec(spec)
    return parsed.name, parsed.ref


def version_row(v: Any) -> dict[str, Any]:
    import time as _time

    return {"version": v.label, "aliases": v.aliases, "digest": v.digest, "size": v.size,
            "files": v.count, "date": _time.strftime("%Y-%m-%dT%H:%M:%SZ", _time.gmtime(v.time)),
            "author": v.author, "commit": v.commit, "tag": v.tag}


def _quiet_here(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.find_object(State).quiet = True  # type: ignore[union-attr]


def _add_quiet_everywhere(group: click.Group) -> None:
    """`gart push -q` as well as `gart -q push`: every command takes -q/--quiet."""
    for command in group.commands.values():
        if isinstance(command, click.Group):
            _add_quiet_everywhere(command)
        command.params.append(click.Option(
            ["-q", "--quiet"], is_flag=True, expose_value=False, callback=_quiet_here,
            help="No progress bars or messages on stderr.",
        ))
