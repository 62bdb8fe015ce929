"""`gart` commands on versions and aliases: alias, versions, show."""

from __future__ import annotations

from typing import Any

import click

from gitartifacts import errors
from gitartifacts.clibase import (
    State,
    cli,
    emit_json,
    human_size,
    open_repo,
    pass_state,
    split_spec,
    version_row,
)


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


