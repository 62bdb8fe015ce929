"""`gart` commands for drafts and distributed versions: rm, rebase, upsert, finish, parts."""

from __future__ import annotations

from typing import Any

import click

from gitartifacts.cli_work import _draft_done, _draft_json
from gitartifacts.clibase import (
    State,
    cli,
    emit_json,
    human_size,
    open_repo,
    pass_state,
)


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


