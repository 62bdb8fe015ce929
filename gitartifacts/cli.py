"""The `gart` command: click commands that parse arguments and call one API function each."""

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
    (errors.RemoteError, 1, "check the remote with `gart remote list`"),
    (errors.GartError, 1, ""),
    (PermissionError, 1, "check file permissions"),
    (OSError, 1, ""),
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
    click.echo(f"gart: error: {message}", err=True)
    if hint:
        click.echo(f"hint: {hint}", err=True)
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


@cli.command()
@pass_state
def init(state: State) -> None:
    """Set up gart in the current git repository (creates .gart/).

    \b
    Example:
      git init && gart init
    """
    from gitartifacts.api import Repo

    repo, created = Repo.init()
    if created:
        state.say(f"Initialised gart in {repo.root / '.gart'}")
    else:
        state.say(f"gart is already initialised in {repo.root / '.gart'}")


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


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("-n", "--name", help="Artifact name (default: the path's base name).")
@click.option("-t", "--type", "kind", help="Artifact type, e.g. dataset or model.")
@click.option("-d", "--description", help="Free-text description.")
@click.option("-m", "--metadata", multiple=True, metavar="KEY=VALUE",
              help="Metadata entry (repeatable); JSON values are parsed: epochs=3.")
@click.option("-x", "--exclude", multiple=True, metavar="GLOB",
              help="Leave out matching files (repeatable); also read from .gartignore.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_state
def add(state: State, paths: tuple[str, ...], name: str | None, kind: str | None,
        description: str | None, metadata: tuple[str, ...], exclude: tuple[str, ...],
        as_json: bool) -> None:
    """Hash files into the cache and write the artifact's manifest.

    The manifest (.gart/artifacts/NAME.yaml) and the .gitignore entry are staged in git;
    commit them, then `gart push`.

    \b
    Examples:
      gart add data/ --name raw-images --type dataset --metadata source=camera-a
      gart add models/model.pt --name resnet --type model
      gart add data/train data/test --name splits --exclude '*.tmp'
    """
    repo = open_repo()
    with state.bar(None, "hashing") as bar:
        result = repo.add(list(paths), name=name, type=kind, description=description,
                          metadata=parse_metadata(metadata), excludes=exclude, progress=bar)
    m = result.manifest
    if as_json:
        emit_json({"name": m.name, "changed": result.changed, "digest": m.digest, "size": m.size,
                   "count": m.count, "hashed": result.hashed, "stored": result.stored,
                   "manifest": str(result.manifest_path.relative_to(repo.root))})
        return
    if not result.changed:
        state.say(f"{m.name}: unchanged ({m.count} files, {human_size(m.size)})")
        return
    state.say(
        f"Added {m.name}: {m.count} files, {human_size(m.size)} "
        f"({result.hashed} hashed, {result.stored} new objects)"
    )
    state.say(f"Next: git commit -m '{m.name}' && gart push")


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover


@cli.command()
@click.argument("names", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="File-by-file detail as JSON.")
@pass_state
def status(state: State, names: tuple[str, ...], as_json: bool) -> None:
    """Compare each artifact's files with its manifest and the cache.

    Exit code 0 whatever the state; use --json for scripts.

    \b
    Examples:
      gart status
      gart status raw-images --json
    """
    repo = open_repo()
    results = repo.status(list(names) or None)
    if as_json:
        emit_json([
            {"name": s.name, "path": s.path, "state": s.state,
             "added": s.comparison.added, "changed": s.comparison.changed,
             "removed": s.comparison.removed, "unchanged": s.comparison.unchanged,
             "missing_from_cache": s.missing_from_cache}
            for s in results
        ])
        return
    if not results:
        state.say("No artifacts yet. Add one with `gart add PATH --name NAME`.")
        return
    width = max(len(s.name) for s in results)
    for s in results:
        c = s.comparison
        detail = ""
        if not c.clean:
            detail = f"  (+{len(c.added)} ~{len(c.changed)} -{len(c.removed)})"
        if s.missing_from_cache:
            detail += f"  [{len(s.missing_from_cache)} missing from cache]"
        click.echo(f"{s.name:<{width}}  {s.state}{detail}  {s.path}")


@cli.command()
@click.argument("spec")
@click.option("-f", "--force", is_flag=True, help="Overwrite or delete changed files.")
@click.option("--to", "to", type=click.Path(file_okay=False), help="Check out into DIR instead.")
@click.option("--json", "as_json", is_flag=True, help="Print what was done as JSON.")
@pass_state
def checkout(state: State, spec: str, force: bool, to: str | None, as_json: bool) -> None:
    """Restore an artifact's files exactly as its manifest says, from the cache.

    Files you changed are never overwritten or deleted without --force; the conflicts are
    listed and the exit code is 1.

    \b
    Examples:
      gart checkout raw-images
      gart checkout raw-images@HEAD~1 --force
      gart checkout raw-images --to /tmp/raw
    """
    repo = open_repo()
    with state.bar(None, "checkout") as bar:
        plan = repo.checkout(spec, force=force, to=to, progress=bar)
    if as_json:
        emit_json({"written": [e.path for e in plan.write], "deleted": plan.delete,
                   "unchanged": plan.unchanged})
        return
    state.say(f"{spec}: {len(plan.write)} written, {len(plan.delete)} deleted, "
              f"{plan.unchanged} unchanged")


@cli.command("ls")
@click.argument("spec")
@click.option("--json", "as_json", is_flag=True, help="Print entries as JSON.")
def ls_command(spec: str, as_json: bool) -> None:
    """List an artifact's files with sizes and digests.

    \b
    Examples:
      gart ls raw-images
      gart ls raw-images@v3 --json
    """
    manifest = resolve_manifest(spec)
    if as_json:
        emit_json({"name": manifest.name, "digest": manifest.digest, "path": manifest.path,
                   "files": [{"path": e.path, "size": e.size, "sha256": e.oid}
                             for e in manifest.entries]})
        return
    for e in manifest.entries:
        click.echo(f"{e.oid[:12]}  {e.size:>12}  {e.path}")


def resolve_manifest(spec: str) -> Any:
    return open_repo().resolve(spec)


@cli.command()
@click.argument("name")
@click.argument("old", required=False)
@click.argument("new", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the difference as JSON.")
def diff(name: str, old: str | None, new: str | None, as_json: bool) -> None:
    """Show what changed: working tree vs manifest, or between git revisions.

    \b
    Examples:
      gart diff raw-images              # working tree vs its manifest
      gart diff raw-images HEAD~1       # manifest at HEAD~1 vs the current one
      gart diff raw-images v1 v2        # two revisions (tags, branches, commits)
    """
    result = open_repo().diff(name, old, new)
    if as_json:
        emit_json({
            "name": result.name, "old": result.old_label, "new": result.new_label,
            "added": [{"path": e.path, "size": e.size, "sha256": e.oid} for e in result.added],
            "removed": [{"path": e.path, "size": e.size, "sha256": e.oid}
                        for e in result.removed],
            "changed": [{"path": a.path, "old_sha256": a.oid, "new_sha256": b.oid,
                         "old_size": a.size, "new_size": b.size} for a, b in result.changed],
        })
        return
    if result.empty:
        click.echo(f"No differences between {result.old_label} and {result.new_label}.", err=True)
        return
    for e in result.added:
        click.echo(f"+ {e.path}")
    for a, _b in result.changed:
        click.echo(f"~ {a.path}")
    for e in result.removed:
        click.echo(f"- {e.path}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print problems as JSON.")
@pass_state
def fsck(state: State, as_json: bool) -> None:
    """Verify every object in the local cache against its sha256.

    Exit 1 when anything is damaged.

    \b
    Example:
      gart fsck
    """
    problems = open_repo().fsck()
    if as_json:
        emit_json({"problems": problems})
    else:
        for problem in problems:
            click.echo(problem)
        if not problems:
            state.say("cache OK")
    if problems:
        sys.exit(1)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning every expected failure into one line + exit code."""
    try:
        cli.main(args=argv, prog_name="gart", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(1)
    except (errors.GartError, OSError) as exc:
        fail(exc)


