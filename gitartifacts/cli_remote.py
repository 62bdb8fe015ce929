"""`gart` commands that move bytes: remote definitions, push, pull, fetch, verify."""

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
    jobs_option,
    open_repo,
    pass_state,
    remote_option,
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

