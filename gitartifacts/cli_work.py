"""`gart` commands on the working tree: init, add, status, checkout, ls, diff."""

from __future__ import annotations

import sys
from typing import Any

import click

from gitartifacts import errors
from gitartifacts.clibase import (
    State,
    cli,
    emit_json,
    human_size,
    open_repo,
    parse_metadata,
    pass_state,
    resolve_manifest,
    warn_tracked_private,
)


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


