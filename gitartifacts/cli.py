"""The `gart` command: click commands that parse arguments and call one API function each."""

from __future__ import annotations

import errno
import gc
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
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("-n", "--name", help="Artifact name (default: the path's base name).")
@click.option("-t", "--type", "kind", help="Artifact type, e.g. dataset or model.")
@click.option("-d", "--description", help="Free-text description.")
@click.option("-m", "--metadata", multiple=True, metavar="KEY=VALUE",
              help="Metadata entry (repeatable); JSON values are parsed: epochs=3.")
@click.option("-x", "--exclude", multiple=True, metavar="GLOB",
              help="Leave out matching files (repeatable); also read from .gartignore.")
@click.option("--ref", "refs", multiple=True, metavar="URI",
              help="Record bytes that stay at URI (s3://, gs://, az://, http(s)://, "
              "file://); a prefix expands to its objects (repeatable).")
@click.option("--max-objects", type=click.IntRange(min=1), metavar="N",
              help="With --ref: refuse a prefix holding more than N objects (default 10000).")
@click.option("--no-checksum", is_flag=True,
              help="With --ref: record the URI only (checked by existence only).")
@click.option("--sha256", "read_bytes", is_flag=True,
              help="With --ref: also read s3/gs/az objects to record their sha256.")
@click.option("--to-remote", is_flag=True,
              help="With --ref: copy the bytes into gart's remote once; stored entries.")
@click.option("--ref-options", metavar="REMOTE",
              help="With --ref: read sources with this remote's options (endpoint, keys).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--incremental", is_flag=True,
              help="Add to the artifact's manifest, keeping its other files (a draft).")
@click.option("--prefix", help="With --incremental: where the files go inside the artifact.")
@click.option("--publish", is_flag=True,
              help="With --incremental: commit the manifest and publish at once.")
@pass_state
def add(state: State, paths: tuple[str, ...], name: str | None, kind: str | None,
        description: str | None, metadata: tuple[str, ...], exclude: tuple[str, ...],
        refs: tuple[str, ...], max_objects: int | None, no_checksum: bool, read_bytes: bool,
        to_remote: bool, ref_options: str | None, as_json: bool, incremental: bool = False,
        prefix: str | None = None, publish: bool = False) -> None:
    """Hash files into the cache and write the artifact's manifest.

    The manifest (.gart/artifacts/NAME.yaml) and the .gitignore entry are staged in git;
    commit them, then `gart push`.

    \b
    Examples:
      gart add data/ --name raw-images --type dataset --metadata source=camera-a
      gart add models/model.pt --name resnet --type model
      gart add data/train data/test --name splits --exclude '*.tmp'
      gart add batch-17/ --name images --incremental --prefix dogs/ --publish
      gart add --ref s3://bucket/images/ --name images-ref --max-objects 100000
      gart add data/ --ref https://example.org/labels.csv --name mixed
    """
    if incremental or prefix or publish:
        if refs:
            raise errors.UsageError("--ref does not combine with --incremental",
                                    hint="add the references with a plain `gart add --ref`")
        _add_incremental(state, paths, name, prefix, publish, incremental, as_json)
        return
    if not paths and not refs:  # click's own usage error, as for a missing argument
        raise click.UsageError("Missing argument 'PATHS...' (or --ref URI).")
    if not refs and (max_objects or no_checksum or read_bytes or to_remote or ref_options):
        raise errors.UsageError("--max-objects, --no-checksum, --sha256, --to-remote and "
                                "--ref-options go with --ref URI", hint="add --ref URI")
    from gitartifacts.tracking import RefRequest

    requests = [RefRequest(uri, None, not no_checksum, max_objects, to_remote,
                           True if read_bytes else None) for uri in refs]
    repo = open_repo()
    with state.bar(None, "hashing") as bar:
        result = repo.add(list(paths), name=name, type=kind, description=description,
                          metadata=parse_metadata(metadata), excludes=exclude, progress=bar,
                          refs=requests, ref_options=ref_options)
    m = result.manifest
    if to_remote and result.changed:
        _upload_added(state, repo, m.name)
    if m.references and not as_json:
        unchecked = sum(1 for r in m.references if not r.checksum)
        state.say(f"{m.name}: {len(m.references)} reference(s) recorded, bytes left at the "
                  "source" + (f"; {unchecked} with --no-checksum (URI only: checked by "
                              "existence only)" if unchecked else ""))
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


def _upload_added(state: State, repo: Any, name: str) -> None:
    """`gart add --ref ... --to-remote`: the copied bytes go to the default remote now."""
    try:
        repo.remote_config(None)
    except errors.UsageError:
        state.say(f"{name}: no default remote yet; `gart push` uploads the copied bytes")
        return
    result = repo.push([name], publish=False)
    state.say(f"{name}: {result.transfer.transferred} object(s) uploaded to {result.remote}")


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
@click.option("--exit-code", is_flag=True,
              help="Exit 1 unless every artifact is clean, cached and pushed (a CI gate).")
@click.option("--check-refs", is_flag=True,
              help="Ask each reference's source whether it changed or vanished (exit 1 if so).")
@click.option("--ref-options", metavar="REMOTE",
              help="With --check-refs: read sources with this remote's options.")
@pass_state
def status(state: State, names: tuple[str, ...], as_json: bool, exit_code: bool,
           check_refs: bool, ref_options: str | None) -> None:
    """Compare each artifact's files with its manifest and the cache.

    Exit code 0 whatever the state, unless --exit-code: then 1 when anything is modified,
    not checked out, missing from the cache or not pushed to the default remote.

    \b
    Examples:
      gart status
      gart status raw-images --json
      gart status --exit-code          # CI: fail on anything unsaved or unpushed
      gart status images-ref --check-refs
    """
    repo = open_repo()
    if check_refs:
        _check_refs(repo, list(names) or None, ref_options, as_json)
        return
    if exit_code:
        _status_gate(repo, list(names) or None, as_json)
        return
    results = repo.status(list(names) or None)
    warn_tracked_private(repo)
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


def _check_refs(repo: Any, names: list[str] | None, ref_options: str | None,
                as_json: bool) -> None:
    """`gart status --check-refs`: every reference against its source; exit 1 on changes."""
    found = repo.check_references(names, ref_options)
    bad = {name: [c for c in checks if c.state in ("changed", "missing")]
           for name, checks in found.items()}
    if as_json:
        emit_json([{"name": name, "references": len(checks),
                    "changed": [c.ref.path for c in checks if c.state == "changed"],
                    "missing": [c.ref.path for c in checks if c.state == "missing"],
                    "overwritten": [c.ref.path for c in checks if c.state == "overwritten"]}
                   for name, checks in found.items()])
    else:
        if not found:
            click.echo("No references to check.")
        for name, checks in found.items():
            counts = {state: sum(1 for c in checks if c.state == state)
                      for state in ("ok", "changed", "overwritten", "missing")}
            summary = ", ".join(f"{n} {state}" for state, n in counts.items() if n)
            click.echo(f"{name}: {len(checks)} reference(s): {summary}")
            for c in checks:
                if c.state != "ok":
                    detail = f" ({c.detail})" if c.detail else ""
                    click.echo(f"  {c.state:<11} {c.ref.path}  {c.ref.uri}{detail}")
    if any(bad.values()):
        sys.exit(1)


@cli.command()
@click.argument("spec")
@click.option("-f", "--force", is_flag=True, help="Overwrite or delete changed files.")
@click.option("--to", "to", type=click.Path(file_okay=False), help="Check out into DIR instead.")
@click.option("--ours", "side", flag_value="ours",
              help="After a merge conflict: keep our side of every conflicting path.")
@click.option("--theirs", "side", flag_value="theirs",
              help="After a merge conflict: keep their side of every conflicting path.")
@click.option("--json", "as_json", is_flag=True, help="Print what was done as JSON.")
@pass_state
def checkout(state: State, spec: str, force: bool, to: str | None, side: str | None,
             as_json: bool) -> None:
    """Restore an artifact's files exactly as its manifest says, from the cache.

    Files you changed are never overwritten or deleted without --force; the conflicts are
    listed and the exit code is 1. After a merge left NAME's manifest conflicted,
    --ours/--theirs resolve every conflicting path to one side (changes the merge combined
    are kept), write and stage the manifest, and check the files out.

    \b
    Examples:
      gart checkout raw-images
      gart checkout raw-images@HEAD~1 --force
      gart checkout raw-images --to /tmp/raw
      gart checkout --theirs raw-images      # after `git merge` reported a conflict
    """
    repo = open_repo()
    if side is not None:
        _resolve_side(state, repo, spec, side, force, to, as_json)
        return
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


# ---- integrity: fsck (cache and --remote) and gc (issue 13) --------------------------------

optional_remote = click.option(
    "-r", "--remote", "remote_name", is_flag=False, flag_value="", default=None,
    metavar="[NAME]", help="Also check/clean this remote (no NAME: the default remote).")


@cli.command()
@optional_remote
@click.option("--sample", metavar="PCT|N",
              help="With --remote: re-read only a random share (5%) or count (200) of objects.")
@click.option("--repair", is_flag=True,
              help="With --remote: re-upload missing or corrupt objects the local cache has.")
@click.option("-j", "--jobs", type=click.IntRange(1, 256), help="Concurrent reads (default 8).")
@click.option("--json", "as_json", is_flag=True, help="Print problems as JSON.")
@pass_state
def fsck(state: State, remote_name: str | None, sample: str | None, repair: bool,
         jobs: int | None, as_json: bool) -> None:
    """Verify the local cache and, with --remote, a remote against what is published.

    Every cached object is re-hashed. With --remote, every object referenced by a version,
    alias or remote-tracking branch must exist on the remote, and all of them (or a
    --sample) are downloaded again and re-hashed; tags must agree with their manifests and
    indexes with their packs. Exit 1 with the list when anything is wrong.

    \b
    Examples:
      gart fsck
      gart fsck --remote --sample 5%
      gart fsck --remote storage --repair
    """
    if (sample or repair) and remote_name is None:
        fail(errors.UsageError("--sample and --repair check a remote",
                               hint="add --remote (the default remote) or --remote NAME"))
    repo = open_repo()
    problems = repo.fsck()
    report = None
    if remote_name is not None:
        report = repo.fsck_remote(remote_name or None, sample=sample, repair=repair, jobs=jobs)
    clean = not problems and (report is None or not report.problems)
    if as_json:
        data: dict[str, Any] = {"problems": problems}
        if report is not None:
            data["remote"] = {
                "url": report.remote, "referenced": report.referenced,
                "present": report.present, "verified": report.verified,
                "verified_bytes": report.verified_bytes, "packs": report.packs,
                "problems": report.problems, "pruned": report.pruned,
                "repaired": report.repaired, "found_before_repair": report.found,
            }
        emit_json(data)
    else:
        for problem in problems:
            click.echo(problem)
        if not problems:
            state.say("cache OK")
        if report is not None:
            for problem in report.problems:
                click.echo(problem)
            for where in report.pruned:
                state.say(f"{where}: pruned by `gart gc --keep-versions` (its bytes were removed)")
            for problem in report.found:
                state.say(f"found: {problem}")
            if report.repaired:
                state.say(f"repaired {len(report.repaired)} object(s) from the local cache")
            state.say(
                f"{report.remote}: {report.present} of {report.referenced} referenced objects "
                f"present, {report.verified} re-hashed ({human_size(report.verified_bytes)}), "
                f"{len(report.problems)} problem(s)")
    if not clean:
        sys.exit(1)


@cli.command("gc")
@optional_remote
@click.option("-n", "--dry-run", is_flag=True, help="List what would go and the bytes freed.")
@click.option("--keep-versions", metavar="N|all", default="all", show_default=True,
              help="Keep the bytes of only the newest N versions (plus aliased ones).")
@click.option("--grace", metavar="DURATION", default="1h", show_default=True,
              help="Never delete what was written more recently than this (0, 15m, 2d).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_state
def gc_command(state: State, remote_name: str | None, dry_run: bool, keep_versions: str, grace: str,
       as_json: bool) -> None:
    """Remove objects no branch, version or alias needs, from the cache and a remote.

    Live: manifests in the working tree, in the history of every branch (local and
    remote-tracking) and at every version and alias tag. Packs that are partly garbage are
    repacked. Safe beside a running push (it waits for gc's lock, then re-uploads what gc
    removed) and nothing younger than --grace is deleted.

    \b
    Examples:
      gart gc --dry-run
      gart gc --remote storage --keep-versions 5
    """
    from gitartifacts.integrity import parse_duration, parse_keep

    keep = parse_keep(keep_versions)
    seconds = parse_duration(grace)
    repo = open_repo()
    remote = None if remote_name is None else (remote_name or repo.remote_config(None).name)
    result = repo.gc(remote, dry_run=dry_run, keep_versions=keep, grace=seconds)
    if as_json:
        emit_json({
            "dry_run": result.dry_run, "live_manifests": result.live_manifests,
            "live_objects": result.live_objects, "pruned_versions": result.pruned_versions,
            "stores": [vars(s) for s in result.stores],
        })
        return
    verb = "would free" if dry_run else "freed"
    for store in result.stores:
        if dry_run:
            for item in store.items:
                click.echo(f"{store.store}: {item}")
        state.say(
            f"{store.store}: {verb} {human_size(store.bytes)} ({store.objects} object(s); "
            f"{store.packs_deleted} pack(s) deleted, {store.packs_repacked} repacked, "
            f"{store.loose_deleted} loose, {store.orphans} leftover(s))"
            + (f"; {store.kept_young} kept for the grace period" if store.kept_young else ""))
    for label in result.pruned_versions:
        state.say(f"{label}: older than --keep-versions, its bytes are no longer kept")


def warn_tracked_private(repo: Any) -> None:
    """Say (even under -q) that git tracks files under .gart/tmp or .gart/cache."""
    tracked = repo.tracked_private_files()
    if tracked:
        click.echo(
            f"warning: git tracks {len(tracked)} file(s) under .gart/tmp or .gart/cache "
            f"(e.g. {tracked[0]}); gart never uses them. Remove them with "
            "`git rm -r --cached .gart/tmp .gart/cache`", err=True,
        )


@cli.group()
def remote() -> None:
    """Manage remotes: where blobs are pushed to and pulled from.

    \b
    Examples:
      gart remote add storage s3://team-bucket/gart --default
      gart remote modify storage endpoint_url http://127.0.0.1:9000
      gart remote modify storage profile ci --local
      gart remote add backup /mnt/shared/gart
      gart remote list --json
    """


@remote.command("add")
@click.argument("name")
@click.argument("url")
@click.option("--default", "make_default", is_flag=True, help="Make it the default remote.")
@click.option("--local", is_flag=True, help="Store in .gart/config.local.yaml (not committed).")
@pass_state
def remote_add(state: State, name: str, url: str, make_default: bool, local: bool) -> None:
    """Add a remote: a local directory or any fsspec URL (s3://, gs://, memory://…).

    \b
    Examples:
      gart remote add storage s3://team-bucket/gart --default
      gart remote add backup /mnt/shared/gart
    """
    open_repo().remote_add(name, url, default=make_default, local=local)
    state.say(f"Added remote {name} -> {url}" + (" (default)" if make_default else ""))


@remote.command("modify")
@click.argument("name")
@click.argument("key")
@click.argument("value", required=False)
@click.option("--local", is_flag=True, help="Store in .gart/config.local.yaml (not committed).")
@click.option("--unset", is_flag=True, help="Remove the option.")
@pass_state
def remote_modify(state: State, name: str, key: str, value: str | None, local: bool,
                  unset: bool) -> None:
    """Set an option of a remote (passed to its fsspec filesystem).

    Secrets (key, secret, token, password…) are accepted only with --local.

    \b
    Examples:
      gart remote modify storage endpoint_url http://127.0.0.1:9000
      gart remote modify storage profile ci --local
      gart remote modify storage profile --unset --local
    """
    open_repo().remote_modify(name, key, value, local=local, unset=unset)
    state.say(f"{'Unset' if unset else 'Set'} {name}.{key}" + (" (local)" if local else ""))


@remote.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print remotes as JSON.")
def remote_list(as_json: bool) -> None:
    """List remotes; the default one is marked with *.

    \b
    Example:
      gart remote list --json
    """
    from gitartifacts.config import display_option, redact

    repo = open_repo()
    default = repo.config.default_remote
    remotes = sorted(repo.config.remotes.values(), key=lambda r: r.name)
    # Values of options not known to be safe are masked; URLs lose their passwords.
    rows = [{"name": r.name, "url": redact(r.url), "default": r.name == default,
             "options": {k: display_option(k, v) for k, v in r.options.items()}}
            for r in remotes]
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        options = " ".join(f"{k}={v}" for k, v in row["options"].items())
        mark = "*" if row["default"] else " "
        click.echo(f"{mark} {row['name']}\t{row['url']}\t{options}".rstrip())


@remote.command("remove")
@click.argument("name")
@pass_state
def remote_remove(state: State, name: str) -> None:
    """Forget a remote (its data is left untouched).

    \b
    Example:
      gart remote remove backup
    """
    open_repo().remote_remove(name)
    state.say(f"Removed remote {name}")


@remote.command("default")
@click.argument("name")
@pass_state
def remote_default(state: State, name: str) -> None:
    """Make NAME the default remote.

    \b
    Example:
      gart remote default storage
    """
    open_repo().remote_default(name)
    state.say(f"Default remote is now {name}")


remote_option = click.option("-r", "--remote", "remote_name", help="Remote (default: the default).")
jobs_option = click.option("-j", "--jobs", type=click.IntRange(1, 256),
                           help="Concurrent transfers (default: core.jobs, 8).")


@cli.command()
@click.argument("names", nargs=-1)
@remote_option
@jobs_option
@click.option("-a", "--alias", "aliases", multiple=True, help="Also set this alias (repeatable).")
@click.option("--no-publish", is_flag=True, help="Upload blobs only; create no version tags.")
@click.option("-f", "--force", is_flag=True, help="Allow moving protected aliases.")
@click.option("-n", "--dry-run", is_flag=True, help="List what would be sent; send nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print what was sent as JSON.")
@click.option("--publish-anyway", is_flag=True,
              help="Publish a draft even though a newer version appeared since it started.")
@pass_state
def push(state: State, names: tuple[str, ...], remote_name: str | None, jobs: int | None,
         aliases: tuple[str, ...], no_publish: bool, force: bool, dry_run: bool,
         as_json: bool, publish_anyway: bool = False) -> None:
    """Upload the objects your artifacts need, then publish committed manifests as versions.

    Blobs go first; only once the remote has them is `NAME@vN` tagged on the commit and
    pushed to origin. Identical content keeps its existing version. Small files travel in
    packs (a handful of requests for thousands of files).

    \b
    Examples:
      git commit -m "raw images" && gart push
      gart push raw-images --alias best
      gart push -r backup -j 16 --no-publish
      gart push --dry-run              # what would be uploaded and published
    """
    repo = open_repo()
    if dry_run:
        _push_dry_run(repo, list(names) or None, remote_name, as_json)
        return
    with state.bar(None, "push", unit="B", scale=True) as bar:
        result = repo.push(list(names) or None, remote=remote_name, jobs=jobs, progress=bar,
                           publish=not no_publish, aliases=aliases, force=force,
                           publish_anyway=publish_anyway)
    t = result.transfer
    if as_json:
        emit_json({"remote": result.remote, "artifacts": [m.name for m in result.manifests],
                   "sent": t.transferred, "bytes": t.bytes, "already_present": t.present,
                   "versions": [{"name": v.name, "version": v.label, "created": created,
                                 "digest": v.digest, "aliases": v.aliases}
                                for v, created in result.versions],
                   "unpublished": result.unpublished, "held_back": result.held_back,
                   "tags_pushed": not result.tags_local_only})
        return
    state.say(f"Pushed {t.transferred} object(s), {human_size(t.bytes)} to {result.remote} "
              f"({t.present} already there)")
    for version, created in result.versions:
        what = "published" if created else "already published as"
        state.say(f"{version.name}: {what} {version.label}"
                  + (f" ({', '.join(aliases)})" if aliases else ""))
    for name in result.unpublished:
        state.say(f"{name}: manifest not committed; commit it and push again to publish"
                  + (" (aliases not moved)" if aliases else ""))
    if result.versions and result.tags_local_only:
        state.say("No git remote 'origin': version tags were created locally only.")
    if result.held_back:
        click.echo(f"Not published: {result.held_back}", err=True)


def _pull_like(state: State, specs: tuple[str, ...], remote_name: str | None, jobs: int | None,
               checkout: bool, to: str | None = None, prefix: str | None = None,
               force: bool = False, dry_run: bool = False,
               refs: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    repo = open_repo()
    rows = []
    with state.bar(None, "pull" if checkout else "fetch", unit="B", scale=True) as bar:
        if checkout:
            for manifest, t, plan in repo.pull(list(specs), remote=remote_name, jobs=jobs, to=to,
                                               path_prefix=prefix, force=force, progress=bar,
                                               dry_run=dry_run, **(refs or {})):
                rows.append({"name": manifest.name, "digest": manifest.digest,
                             "dry_run": dry_run, "conflicts": plan.conflicts,
                             "downloaded": t.transferred, "bytes": t.bytes,
                             "written": len(plan.write), "deleted": len(plan.delete),
                             "unchanged": plan.unchanged})
        else:
            manifests, t = repo.fetch(list(specs), remote=remote_name, jobs=jobs,
                                      path_prefix=prefix, progress=bar)
            rows.append({"names": [m.name for m in manifests], "downloaded": t.transferred,
                         "bytes": t.bytes, "already_cached": t.present})
    return rows


@cli.command()
@click.argument("specs", nargs=-1, required=True)
@remote_option
@jobs_option
@click.option("--to", type=click.Path(file_okay=False), help="Check out into DIR instead.")
@click.option("--path-prefix", help="Only files under this path inside the artifact.")
@click.option("-f", "--force", is_flag=True, help="Overwrite files changed in the working tree.")
@click.option("--repo", "repo_url", metavar="GIT_URL",
              help="Read the artifact from another git repository, without cloning it.")
@click.option("-n", "--dry-run", is_flag=True,
              help="Resolve and plan only: say what would be downloaded and written.")
@click.option("--allow-changed-references", is_flag=True,
              help="Place references whose source changed as they are now (warned).")
@click.option("--allow-missing-references", is_flag=True,
              help="Skip references whose source vanished (warned).")
@click.option("--ref-options", metavar="REMOTE",
              help="Read references' sources with this remote's options.")
@click.option("--json", "as_json", is_flag=True, help="Print what was done as JSON.")
@pass_state
def pull(state: State, specs: tuple[str, ...], remote_name: str | None, jobs: int | None,
         to: str | None, path_prefix: str | None, force: bool, repo_url: str | None,
         dry_run: bool, allow_changed_references: bool, allow_missing_references: bool,
         ref_options: str | None, as_json: bool) -> None:
    """Download an artifact's objects (verified) and check its files out.

    NAME is the manifest in the working tree; NAME@vN, NAME@latest, NAME@ALIAS (or
    NAME:ALIAS) are published versions, fetched from origin in fresh or shallow clones;
    NAME@REV is the manifest at a git branch or commit.

    \b
    Examples:
      gart pull raw-images
      gart pull raw-images@production
      gart pull raw-images --to /tmp/x --path-prefix cats/
      gart pull raw-images@production --repo git@github.com:team/data.git --to data/
      gart pull raw-images --repo https://github.com/team/data.git   # ./artifacts/raw-images:vN/

    With --repo, files go only to --to DIR, or to ./artifacts/NAME:VERSION/ (as W&B): the
    other repository's manifest never decides where they land.
    """
    if repo_url is not None:
        if dry_run:
            raise errors.UsageError("--dry-run does not combine with --repo",
                                    hint="use `gart versions NAME --repo URL` to look first")
        if to is not None and len(specs) > 1:
            raise errors.UsageError("--to takes one artifact", hint="pull them one at a time")
        rows = [_pull_foreign(state, repo_url, spec, remote_name, jobs, to, path_prefix, force)
                for spec in specs]
    else:
        rows = _pull_like(state, specs, remote_name, jobs, True, to, path_prefix, force,
                          dry_run, {"allow_changed_references": allow_changed_references,
                                    "allow_missing_references": allow_missing_references,
                                    "ref_options": ref_options})
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        if dry_run:  # a report the user asked for: stdout
            conflicts = f"; {len(row['conflicts'])} conflict(s)" if row["conflicts"] else ""
            click.echo(f"{row['name']} {row['digest'][:19]}: would download "
                       f"{row['downloaded']} object(s), write {row['written']} file(s), "
                       f"delete {row['deleted']}{conflicts}")
            continue
        state.say(f"{row['name']}: downloaded {row['downloaded']} object(s), "
                  f"{human_size(row['bytes'])}; {row['written']} file(s) written")


def _pull_foreign(state: State, url: str, spec: str, remote_name: str | None, jobs: int | None,
                  to: str | None, prefix: str | None, force: bool) -> dict[str, Any]:
    from gitartifacts.api import ForeignRepo

    cache = None
    try:
        cache = open_repo().cache  # inside a gart repository: share its cache
    except errors.NotARepositoryError:
        pass
    with state.bar(None, "pull", unit="B", scale=True) as bar:
        manifest, t, plan = ForeignRepo(url).pull(
            spec, to=to, remote=remote_name, jobs=jobs or 8, path_prefix=prefix, force=force,
            progress=bar, cache=cache)
    return {"name": manifest.name, "digest": manifest.digest, "downloaded": t.transferred,
            "bytes": t.bytes, "written": len(plan.write), "deleted": len(plan.delete),
            "unchanged": plan.unchanged}


@cli.command()
@click.argument("specs", nargs=-1, required=True)
@remote_option
@jobs_option
@click.option("--path-prefix", help="Only files under this path inside the artifact.")
@click.option("--json", "as_json", is_flag=True, help="Print what was fetched as JSON.")
@pass_state
def fetch(state: State, specs: tuple[str, ...], remote_name: str | None, jobs: int | None,
          path_prefix: str | None, as_json: bool) -> None:
    """Download an artifact's objects into the cache only (no checkout).

    \b
    Examples:
      gart fetch raw-images
      gart fetch raw-images@v3 -r backup
    """
    rows = _pull_like(state, specs, remote_name, jobs, False, prefix=path_prefix)
    if as_json:
        emit_json(rows[0])
        return
    state.say(f"Fetched {rows[0]['downloaded']} object(s), {human_size(rows[0]['bytes'])} "
              f"({rows[0]['already_cached']} already cached)")


def split_spec(spec: str) -> tuple[str, str | None]:
    from gitartifacts.paths import parse_spec

    parsed = parse_spec(spec)
    return parsed.name, parsed.ref


@cli.command()
@click.argument("spec")
@click.argument("alias", required=False)
@click.option("--delete", "delete", is_flag=True, help="Remove the alias: gart alias --delete "
              "NAME ALIAS.")
@click.option("-f", "--force", is_flag=True, help="Move or delete a protected alias.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_state
def alias(state: State, spec: str, alias: str | None, delete: bool, force: bool,
          as_json: bool) -> None:
    """Point an alias (a moving git tag NAME@ALIAS) at a published version.

    The move is a compare-and-swap locally and on origin: if someone else moved it
    first, nothing is overwritten and the command exits 1 naming the winner.

    \b
    Examples:
      gart alias raw-images@v1 production
      gart alias raw-images@latest staging
      gart alias --delete raw-images production
    """
    repo = open_repo()
    if alias is None:
        raise errors.UsageError("missing ALIAS", hint="e.g. gart alias raw-images@v1 production")
    if delete:
        name, ref = split_spec(spec)
        if ref is not None:
            raise errors.UsageError("--delete takes NAME ALIAS",
                                    hint=f"gart alias --delete {name} {alias}")
        was = repo.delete_alias(name, alias, force=force)
        if as_json:
            emit_json({"name": name, "alias": alias, "deleted": True, "was": was})
        else:
            state.say(f"Deleted {name}@{alias} (was {was})")
        return
    name, ref = split_spec(spec)
    version, previous = repo.set_alias(name, ref or "latest", alias, force=force)
    if as_json:
        emit_json({"name": name, "alias": alias, "version": version.label,
                   "previous": previous, "digest": version.digest})
        return
    moved = f" (was {previous})" if previous and previous != version.label else ""
    state.say(f"{name}@{alias} -> {version.label}{moved}")


def version_row(v: Any) -> dict[str, Any]:
    import time as _time

    return {"version": v.label, "aliases": v.aliases, "digest": v.digest, "size": v.size,
            "files": v.count, "date": _time.strftime("%Y-%m-%dT%H:%M:%SZ", _time.gmtime(v.time)),
            "author": v.author, "commit": v.commit, "tag": v.tag}


@cli.command()
@click.argument("name")
@click.option("--offline", is_flag=True, help="Do not fetch tags from origin first.")
@click.option("--repo", "repo_url", metavar="GIT_URL",
              help="List another git repository's versions, without cloning it.")
@click.option("--json", "as_json", is_flag=True, help="Print versions as JSON.")
@pass_state
def versions(state: State, name: str, offline: bool, repo_url: str | None,
             as_json: bool) -> None:
    """List an artifact's published versions, newest first, with their aliases.

    \b
    Examples:
      gart versions raw-images
      gart versions raw-images --json
      gart versions raw-images --repo https://github.com/team/data.git
    """
    if repo_url is not None:
        from gitartifacts.api import ForeignRepo

        found = ForeignRepo(repo_url).versions(name)
    else:
        found = open_repo().versions(name, offline=offline)
    rows = [version_row(v) for v in reversed(found)]
    if as_json:
        emit_json(rows)
        return
    if not rows:
        state.say(f"{name} has no published versions yet (commit the manifest, then gart push)")
        return
    for r in rows:
        aliases = f"({', '.join(r['aliases'])})" if r["aliases"] else ""
        click.echo(f"{r['version']:<6} {aliases:<24} {r['digest'][7:19]}  "
                   f"{human_size(r['size']):>10}  {r['files']:>7} files  {r['date']}  "
                   f"{r['author']}  {r['commit'][:10]}")


@cli.command()
@click.argument("spec")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def show(spec: str, as_json: bool) -> None:
    """Summarise an artifact version: manifest fields, aliases, who published it.

    \b
    Examples:
      gart show raw-images@production
      gart show raw-images --json
    """
    repo = open_repo()
    manifest, resolved = repo.resolve_ref(spec)
    data: dict[str, Any] = {
        "name": manifest.name, "type": manifest.type, "description": manifest.description,
        "metadata": manifest.metadata, "path": manifest.path, "digest": manifest.digest,
        "size": manifest.size, "files": manifest.count,
    }
    if resolved is not None and resolved.version is not None:
        data.update(version_row(resolved.version))
        repo.sync_meta(manifest.name)
        edits = repo.version_meta(resolved.version)  # description/metadata edited later
        if edits.description is not None:
            data["description"] = edits.description
        if edits.metadata is not None:
            data["metadata"] = edits.metadata
        data["deleted"] = edits.deleted
    else:
        data["version"] = None
    if as_json:
        emit_json(data)
        return
    for key in ("name", "version", "deleted", "aliases", "type", "description", "path", "digest",
                "size", "files", "metadata", "author", "date", "commit"):
        if key in data and data[key] not in (None, "", {}, []):
            value = data[key]
            if key == "size":
                value = f"{human_size(value)} ({value} bytes)"
            elif isinstance(value, list):
                value = ", ".join(value)
            click.echo(f"{key + ':':<13}{value}")


@cli.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("stage_or_command", nargs=-1, type=click.UNPROCESSED)
@click.option("-i", "--input", "inputs", multiple=True, metavar="NAME[@REF]",
              help="Input artifact, resolved to an exact version and pulled (repeatable).")
@click.option("-o", "--output", "outputs", multiple=True, metavar="NAME=PATH",
              help="Output path added as artifact NAME when the command succeeds (repeatable).")
@click.option("--job-type", default=None, help="Kind of run: train, eval, preprocess…")
@click.option("--name", "run_name", help="Run name (default: the job type or stage).")
@click.option("--json", "as_json", is_flag=True, help="Print the run record as JSON on stdout.")
@pass_state
def run(state: State, stage_or_command: tuple[str, ...], inputs: tuple[str, ...],
        outputs: tuple[str, ...], job_type: str | None, run_name: str | None,
        as_json: bool) -> None:
    """Run a command (or a stage of .gart/pipeline.yaml) and record its lineage.

    Inputs are resolved to exact versions and pulled before the command starts; it sees
    GART_RUN_ID and GART_INPUT_<NAME> (each input's directory) in its environment. On exit 0
    each output is added like `gart add`; the record goes to .gart/runs/<id>.yaml either
    way. The command's output and exit code pass through (127: command not found).
    gart's own options go before the stage or command: everything after it is the command's.

    \b
    Examples:
      gart run --job-type train -i raw-images@production -o model=models/ -- python train.py
      gart run prepare          # a stage declared in .gart/pipeline.yaml
    """
    from gitartifacts import pipeline, runner

    repo = open_repo()
    words = list(stage_or_command)
    if words and words[0] == "--":
        words = words[1:]
    stages = pipeline.load_pipeline(repo)
    if len(words) == 1 and words[0] in stages and not inputs and not outputs:
        outcome = pipeline.run_stage(repo, stages[words[0]])
    else:
        if not words:
            raise errors.UsageError("no command given", hint="gart run -i NAME -- python train.py")
        outcome = runner.execute(repo, words, inputs, runner.parse_outputs(outputs),
                                 job_type or "run", run_name)
    record = outcome.record
    if as_json:
        emit_json(record.to_dict())
    else:
        state.say(f"run {record.id} {record.status} (exit {record.exit_code}); "
                  f"record: .gart/runs/{record.file_name}")
    sys.exit(outcome.exit_code)


@cli.command()
@click.argument("stage", required=False)
@click.option("-n", "--dry-run", is_flag=True, help="Only say which stages would run.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def repro(stage: str | None, dry_run: bool, as_json: bool) -> None:
    """Re-run the pipeline stages whose inputs changed since their last successful run.

    Stages run in dependency order (a stage producing another's input runs first); stages
    whose inputs' digests match their last successful run are skipped.

    \b
    Examples:
      gart repro
      gart repro train --dry-run
    """
    from gitartifacts import pipeline

    report = pipeline.repro(open_repo(), stage, dry_run=dry_run)
    if as_json:
        emit_json([{"stage": s, "result": r} for s, r in report])
    else:
        for s, r in report:
            click.echo(f"{s}: {r}")
    if any(r.startswith("failed") for _s, r in report):
        sys.exit(1)


@cli.command()
@click.argument("spec", required=False)
@click.option("--depth", type=click.IntRange(0), help="How many runs away to follow.")
@click.option("--upstream", "direction", flag_value="up", help="Only what it came from.")
@click.option("--downstream", "direction", flag_value="down", help="Only what used it.")
@click.option("--format", "fmt", type=click.Choice(["tree", "json", "dot", "mermaid"]),
              default="tree", show_default=True, help="Output format on stdout.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False),
              help="Write a self-contained page drawing the graph.")
def lineage(spec: str | None, depth: int | None, direction: str | None, fmt: str,
            html_path: str | None) -> None:
    """Show the lineage graph around an artifact version: runs and artifacts up and down.

    Without SPEC, the whole graph (useful with --html or --format).

    \b
    Examples:
      gart lineage model@v2
      gart lineage model@latest --upstream --depth 2
      gart lineage raw-images@production --format mermaid
      gart lineage --html lineage.html
    """
    from gitartifacts import lineageview, runs

    repo = open_repo()
    if spec is None:
        graph, bad = runs.lineage_graph(repo)
        root = None
    else:
        graph, root, bad = runs.lineage_around(
            repo, spec, depth, upstream=direction != "down", downstream=direction != "up")
    for file_name, problem in bad:
        click.echo(f"gart: warning: skipped corrupt run record {file_name}: {problem}", err=True)
    if html_path is not None:
        with open(html_path, "w", encoding="utf-8") as handle:
            handle.write(lineageview.to_html(graph, title=f"gart lineage {spec or ''}".strip()))
        click.echo(f"wrote {html_path}", err=True)
        return
    if fmt == "json":
        click.echo(lineageview.to_json(graph))
    elif fmt == "dot":
        click.echo(lineageview.to_dot(graph))
    elif fmt == "mermaid":
        click.echo(lineageview.to_mermaid(graph))
    else:
        click.echo(lineageview.to_tree(graph, root))


@cli.command()
@click.option("--job-type", help="Only runs of this job type.")
@click.option("--artifact", help="Only runs that used or produced this artifact.")
@click.option("-n", "--limit", type=click.IntRange(1), help="At most this many runs.")
@click.option("--json", "as_json", is_flag=True, help="Print runs as JSON.")
def runs(job_type: str | None, artifact: str | None, limit: int | None, as_json: bool) -> None:
    """List recorded runs, newest first.

    \b
    Examples:
      gart runs
      gart runs --job-type train --artifact raw-images --json
    """
    from gitartifacts.runrecord import filter_runs

    records, bad = open_repo().load_runs()
    for file_name, problem in bad:
        click.echo(f"gart: warning: skipped corrupt run record {file_name}: {problem}", err=True)
    chosen = filter_runs(records, job_type=job_type, artifact=artifact)[:limit]
    if as_json:
        emit_json([r.to_dict() for r in chosen])
        return
    for r in chosen:
        ins = ", ".join(f"{i.name}@{i.version or i.requested or i.digest[7:15]}" for i in r.inputs)
        outs = ", ".join(o.name for o in r.outputs)
        click.echo(f"{r.id}  {r.name:<16} [{r.job_type}] {r.status:<8} {r.started}  "
                   f"in: {ins or '-'}  out: {outs or '-'}")


# -- CI gates and git integration: status --exit-code, push --dry-run, verify, hooks, merges --


def _status_gate(repo: Any, names: list[str] | None, as_json: bool) -> None:
    rows = repo.status_gate(names)
    warn_tracked_private(repo)
    if as_json:
        emit_json([
            {"name": r.status.name, "path": r.status.path, "state": r.status.state,
             "added": r.status.comparison.added, "changed": r.status.comparison.changed,
             "removed": r.status.comparison.removed,
             "unchanged": r.status.comparison.unchanged,
             "missing_from_cache": r.status.missing_from_cache, "pushed": r.pushed}
            for r in rows
        ])
    else:
        width = max((len(r.status.name) for r in rows), default=0)
        for r in rows:
            pushed = {True: "pushed", False: "not pushed", None: "no remote"}[r.pushed]
            click.echo(f"{r.status.name:<{width}}  {r.status.state}  {pushed}  {r.status.path}")
    failing = [r.status.name for r in rows if r.failing]
    if failing:
        click.echo(f"gart: {len(failing)} artifact(s) not clean and pushed: "
                   f"{', '.join(failing)}", err=True)
        sys.exit(1)


def _push_dry_run(repo: Any, names: list[str] | None, remote_name: str | None,
                  as_json: bool) -> None:
    plan = repo.push_plan(names, remote_name)
    if as_json:
        emit_json({"remote": plan.remote, "dry_run": True, "objects": len(plan.send),
                   "bytes": plan.bytes, "already_present": plan.present,
                   "send": [{"name": n, "path": e.path, "sha256": e.oid, "size": e.size}
                            for n, e in plan.send],
                   "not_cached": plan.not_cached, "publish": plan.publish,
                   "unpublished": plan.unpublished})
        return
    for name, entry in plan.send:
        click.echo(f"send     {name}:{entry.path}  {human_size(entry.size)}")
    for item in plan.not_cached:
        click.echo(f"missing  {item}  (not in the local cache: push would fail)")
    for item in plan.publish:
        what = "publish new version" if item["new"] else f"already {item['version']}"
        click.echo(f"tag      {item['name']}: {what}")
    for name in plan.unpublished:
        click.echo(f"skip     {name}: working-tree manifest not committed")
    click.echo(f"would send {len(plan.send)} object(s), {human_size(plan.bytes)} to "
               f"{plan.remote} ({plan.present} already there)", err=True)


def _resolve_side(state: State, repo: Any, spec: str, side: str, force: bool, to: str | None,
                  as_json: bool) -> None:
    if to is not None or "@" in spec or ":" in spec:
        raise errors.UsageError(f"--{side} takes a bare artifact NAME",
                                hint=f"gart checkout --{side} NAME")
    manifest, plan = repo.resolve_conflict(spec, side, force=force)
    if as_json:
        emit_json({"name": manifest.name, "side": side, "digest": manifest.digest,
                   "written": [e.path for e in plan.write] if plan else [],
                   "deleted": plan.delete if plan else [], "checked_out": plan is not None})
        return
    state.say(f"{manifest.name}: conflicts resolved to {side}; manifest written and staged")
    if plan is None:
        state.say(f"Some objects are not in the cache: run `gart pull {manifest.name}`")
    else:
        state.say(f"{manifest.name}: {len(plan.write)} written, {len(plan.delete)} deleted")
    state.say("Next: git commit (or git rebase --continue)")


@cli.command()
@click.argument("specs", nargs=-1, required=True)
@remote_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@pass_state
def verify(state: State, specs: tuple[str, ...], remote_name: str | None, as_json: bool) -> None:
    """Check that the remote holds every file of each version; exit 1 if any is missing.

    A CI check that a merged change references only published data. Tags are fetched
    from origin first, so it works in fresh and shallow clones.

    \b
    Examples:
      gart verify raw-images@production
      gart verify model@latest raw-images@v3 -r backup --json
    """
    repo = open_repo()
    results = [repo.verify(spec, remote_name) for spec in specs]
    if as_json:
        emit_json([{"name": r.name, "ref": r.ref, "version": r.version, "digest": r.digest,
                    "remote": r.remote, "checked": r.checked, "missing": r.missing,
                    "ok": not r.missing} for r in results])
    else:
        for r, spec in zip(results, specs, strict=True):
            if r.missing:
                click.echo(f"{spec}: {len(r.missing)} of {r.checked} file(s) missing on "
                           f"{r.remote}: {', '.join(r.missing)}")
            else:
                click.echo(f"{spec}: all {r.checked} file(s) present on {r.remote}")
    if any(r.missing for r in results):
        click.echo("hint: push them from a clone that has them (`gart push`)", err=True)
        sys.exit(1)


@cli.command("install-hooks")
@click.option("--uninstall", is_flag=True, help="Remove gart's hooks and merge driver.")
@click.option("--json", "as_json", is_flag=True, help="Print what was done as JSON.")
@pass_state
def install_hooks(state: State, uninstall: bool, as_json: bool) -> None:
    """Install git hooks (pre-push upload, post-checkout/post-merge checkout) and the
    manifest merge driver.

    Existing hooks are kept as HOOK.pre-gart and run first; core.hooksPath is respected.
    post-checkout/post-merge act only with `core.autocheckout: true` in .gart/config.yaml.

    \b
    Examples:
      gart install-hooks
      gart install-hooks --uninstall
    """
    from gitartifacts import hooks

    report = hooks.uninstall() if uninstall else hooks.install()
    if as_json:
        emit_json({"hooks_dir": report.hooks_dir, "hooks": report.hooks,
                   "merge_driver": report.merge_driver, "attributes": report.attributes})
        return
    for name, what in report.hooks.items():
        state.say(f"{name}: {what}")
    state.say(f"merge driver: {report.merge_driver}; {report.attributes}")


@cli.command("hook", hidden=True, context_settings={"ignore_unknown_options": True})
@click.argument("name")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def hook_command(name: str, args: tuple[str, ...]) -> None:
    """Run one installed hook (called by the scripts `gart install-hooks` writes)."""
    from gitartifacts import hooks

    stdin = sys.stdin.read().splitlines() if name == "pre-push" else []
    sys.exit(hooks.run_hook(name, list(args), stdin))


@cli.command("merge-driver", hidden=True)
@click.argument("base", type=click.Path(dir_okay=False))
@click.argument("ours", type=click.Path(dir_okay=False))
@click.argument("theirs", type=click.Path(dir_okay=False))
@click.argument("path", default="manifest")
def merge_driver(base: str, ours: str, theirs: str, path: str) -> None:
    """git's merge driver for manifests (merge.gart.driver): %O %A %B %P."""
    from gitartifacts.mergedriver import run_driver

    conflicts = run_driver(base, ours, theirs, path)
    if conflicts:
        name = path.removeprefix(".gart/artifacts/").removesuffix(".yaml")
        click.echo(f"gart: {path}: {len(conflicts)} conflict(s), changed on both sides: "
                   f"{'; '.join(conflicts)}", err=True)
        click.echo(f"hint: keep one side with `gart checkout --ours {name}` or `gart checkout "
                   f"--theirs {name}`, or put the files in place and `gart add PATH --name "
                   f"{name}`", err=True)
        sys.exit(1)


# -- drafts and distributed versions (issue 11): add --incremental, rm, rebase, upsert,
# -- finish, parts. Each builds on drafts.Drafts / parts.Parts through the Repo facade.


def _draft_json(result: Any, version: Any = None) -> dict[str, Any]:
    m = result.manifest
    return {"name": m.name, "changed": result.changed, "digest": m.digest, "size": m.size,
            "count": m.count, "added": result.added, "replaced": result.replaced,
            "removed": result.removed, "hashed": result.hashed, "base": result.record.base,
            "version": None if version is None else version.label}


def _draft_done(state: State, repo: Any, result: Any, publish: bool, as_json: bool,
                what: str) -> None:
    version = created = None
    if publish:
        version, created = repo.publish_draft(result.manifest.name, new_oids=result.new_oids)
    if as_json:
        emit_json(_draft_json(result, version))
        return
    m = result.manifest
    base = f" (from {m.name}@{result.record.base})" if result.record.base else ""
    state.say(f"{m.name}: {what}; now {m.count} files, {human_size(m.size)}{base}")
    if version is not None:
        verb = "published" if created else "already published as"
        state.say(f"{m.name}: {verb} {version.label}")
    elif result.changed:
        state.say(f"Next: git commit -m '{m.name}' && gart push   (or re-run with --publish)")


def _add_incremental(state: State, paths: tuple[str, ...], name: str | None,
                     prefix: str | None, publish: bool, incremental: bool,
                     as_json: bool) -> None:
    if not incremental:
        raise errors.UsageError("--prefix and --publish go with --incremental",
                                hint="e.g. gart add batch/ --name images --incremental "
                                "--prefix dogs/")
    if name is None:
        raise errors.UsageError("--incremental needs --name",
                                hint="name the artifact to add to: --name NAME")
    repo = open_repo()
    with state.bar(None, "hashing") as bar:
        result = repo.add_incremental(list(paths), name, prefix=prefix, progress=bar,
                                      stage=not publish)
    _draft_done(state, repo, result, publish, as_json,
                f"{result.added} file(s) added, {result.replaced} replaced")


@cli.command("rm")
@click.argument("name")
@click.argument("paths", nargs=-1, required=True)
@click.option("--publish", is_flag=True, help="Commit the manifest and publish at once.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_state
def rm_command(state: State, name: str, paths: tuple[str, ...], publish: bool,
               as_json: bool) -> None:
    """Remove files or directories (prefixes) from an artifact's manifest.

    Nothing is downloaded and the working folder is not touched; every path must be in
    the artifact. Commit and `gart push` as usual, or pass --publish.

    \b
    Examples:
      gart rm images cats/blurry.jpg tmp/
      gart rm images old/ --publish
    """
    repo = open_repo()
    result = repo.remove_paths(name, list(paths), stage=not publish)
    _draft_done(state, repo, result, publish, as_json, f"{result.removed} file(s) removed")


@cli.command("rebase")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_state
def rebase_command(state: State, name: str, as_json: bool) -> None:
    """Re-apply a draft's additions and removals onto the artifact's latest version.

    For a draft whose base moved (someone published a newer version first); commit and
    push afterwards.

    \b
    Example:
      gart rebase images && git commit -am "images: rebased" && gart push
    """
    repo = open_repo()
    result = repo.rebase_draft(name)
    if as_json:
        emit_json({**_draft_json(result), "overridden": result.overridden})
        return
    m = result.manifest
    state.say(f"{m.name}: draft rebased onto {m.name}@{result.record.base}: {result.added} "
              f"added or changed, {result.removed} removed; now {m.count} files")
    if result.overridden:
        state.say(f"{len(result.overridden)} path(s) changed on both sides; yours kept: "
                  + ", ".join(result.overridden))
    state.say(f"Next: git commit -m '{m.name}' && gart push")


def _part_json(part: Any) -> dict[str, Any]:
    return {"job": part.job, "state": part.state, "files": len(part.entries),
            "bytes": part.size, "host": part.host, "created": part.created}


@cli.command("upsert")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("-n", "--name", required=True, help="Artifact name.")
@click.option("--distributed-id", "distributed_id", required=True,
              help="The id every job of this version shares.")
@click.option("--prefix", help="Where the files go inside the artifact.")
@click.option("--job", help="This job's part name (default: derived from its files).")
@click.option("-t", "--type", "kind", help="Artifact type.")
@click.option("--json", "as_json", is_flag=True, help="Print the part as JSON.")
@pass_state
def upsert_command(state: State, paths: tuple[str, ...], name: str, distributed_id: str,
                   prefix: str | None, job: str | None, kind: str | None,
                   as_json: bool) -> None:
    """Contribute files to a distributed version (one part per job; `gart finish` publishes).

    \b
    Examples:
      gart upsert shard-3/ --name ingest --distributed-id run-2026-12-01 --prefix shard-3
      gart finish --name ingest --distributed-id run-2026-12-01
    """
    repo = open_repo()
    with state.bar(None, "hashing") as bar:
        result = repo.upsert(list(paths), name, distributed_id, prefix=prefix, job=job,
                             type=kind, progress=bar)
    part = result.part
    if as_json:
        emit_json({**_part_json(part), "name": name, "distributed_id": distributed_id,
                   "replaced": result.replaced, "sent": result.transfer.transferred,
                   "already_present": result.transfer.present})
        return
    again = " (replacing its earlier part)" if result.replaced else ""
    state.say(f"{name}@{distributed_id}: part {part.job}{again}: {len(part.entries)} files, "
              f"{human_size(part.size)}; {result.transfer.transferred} object(s) sent")


@cli.command("finish")
@click.option("-n", "--name", required=True, help="Artifact name.")
@click.option("--distributed-id", "distributed_id", required=True, help="The shared id.")
@click.option("-a", "--alias", "aliases", multiple=True, help="Also set this alias (repeatable).")
@click.option("--skip-incomplete", is_flag=True,
              help="Leave out parts whose blobs are missing from the remote.")
@click.option("--json", "as_json", is_flag=True, help="Print the version as JSON.")
@pass_state
def finish_command(state: State, name: str, distributed_id: str, aliases: tuple[str, ...],
                   skip_incomplete: bool, as_json: bool) -> None:
    """Merge every part of a distributed version and publish it as one version.

    Commits the manifest (only gart's files) on the current branch; the parts are removed.

    \b
    Examples:
      gart finish --name ingest --distributed-id run-2026-12-01 --alias fresh
      gart finish --name ingest --distributed-id run-2026-12-01 --skip-incomplete
    """
    repo = open_repo()
    result = repo.finish(name, distributed_id, aliases=aliases, skip_incomplete=skip_incomplete)
    v = result.version
    if as_json:
        emit_json({"name": name, "distributed_id": distributed_id, "version": v.label,
                   "created": result.created, "digest": result.manifest.digest,
                   "count": result.manifest.count, "size": result.manifest.size,
                   "parts": [_part_json(p) for p in result.parts],
                   "skipped": [_part_json(p) for p in result.skipped]})
        return
    verb = "published" if result.created else "already published as"
    state.say(f"{name}: {verb} {v.label} from {len(result.parts)} part(s): "
              f"{result.manifest.count} files, {human_size(result.manifest.size)}")
    for part in result.skipped:
        state.say(f"skipped incomplete part {part.job} ({len(part.entries)} files)")


@cli.command("parts")
@click.option("-n", "--name", required=True, help="Artifact name.")
@click.option("--distributed-id", "distributed_id", required=True, help="The shared id.")
@click.option("--json", "as_json", is_flag=True, help="Print the parts as JSON.")
def parts_command(name: str, distributed_id: str, as_json: bool) -> None:
    """What has been contributed to a distributed version: by which job, files, bytes.

    \b
    Example:
      gart parts --name ingest --distributed-id run-2026-12-01 --json
    """
    repo = open_repo()
    parts, finished = repo.parts(name, distributed_id)
    if as_json:
        emit_json({"name": name, "distributed_id": distributed_id,
                   "finished": finished, "parts": [_part_json(p) for p in parts]})
        return
    if finished is not None:
        what = finished.get("version") or finished.get("state")
        click.echo(f"# {name}@{distributed_id}: {finished.get('state')} ({what})")
    for p in parts:
        click.echo(f"{p.job}\t{p.state}\t{len(p.entries)} files\t{human_size(p.size)}\t"
                   f"{p.host}\t{p.created}")
    if not parts:
        click.echo(f"# no parts of {name}@{distributed_id} on origin", err=True)


def _quiet_here(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.find_object(State).quiet = True  # type: ignore[union-attr]


# -- gart du (storage use per version; issue 15) -------------------------------------------


@cli.command("du")
@click.argument("names", nargs=-1)
@remote_option
@click.option("--json", "as_json", is_flag=True, help="Print sizes as JSON.")
def du_command(names: tuple[str, ...], remote_name: str | None, as_json: bool) -> None:
    """Logical size, stored size and dedup ratio per artifact and version.

    LOGICAL is the sum of a version's file sizes, STORED what its distinct objects take
    (large files stored as chunks count their distinct chunks), NEW what it added over the
    versions before it. In the local cache, or with -r in a remote.

    \b
    Examples:
      gart du
      gart du model -r storage --json
    """
    from gitartifacts.usage import disk_usage

    usages = disk_usage(open_repo(), list(names), remote_name)
    if as_json:
        emit_json({"artifacts": [u.to_dict() for u in usages]})
        return
    rows = [("ARTIFACT", "VERSION", "LOGICAL", "STORED", "NEW", "DEDUP")]
    for u in usages:
        for v in u.versions:
            rows.append((u.name, v.version, human_size(v.logical), human_size(v.stored),
                         human_size(v.new), f"{v.ratio:.2f}x"))
        rows.append((u.name, "total", human_size(u.logical), human_size(u.stored), "",
                     f"{u.ratio:.2f}x"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def _add_quiet_everywhere(group: click.Group) -> None:
    """`gart push -q` as well as `gart -q push`: every command takes -q/--quiet."""
    for command in group.commands.values():
        if isinstance(command, click.Group):
            _add_quiet_everywhere(command)
        command.params.append(click.Option(
            ["-q", "--quiet"], is_flag=True, expose_value=False, callback=_quiet_here,
            help="No progress bars or messages on stderr.",
        ))


_add_quiet_everywhere(cli)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning every expected failure into one line + exit code."""
    # A gart process is short-lived and builds large acyclic tables (one tuple per file);
    # the cyclic collector would re-walk them again and again for nothing (~15% of status).
    gc.disable()
    try:
        cli.main(args=argv, prog_name="gart", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        from gitartifacts.config import redact

        exc.message = redact(exc.message)  # argument errors may quote a URL with a token
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(1)
    except (errors.GartError, OSError) as exc:
        fail(exc)


