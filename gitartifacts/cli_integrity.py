"""`gart` commands that prove and reclaim storage: fsck, gc, du."""

from __future__ import annotations

import sys
from typing import Any

import click

from gitartifacts import errors
from gitartifacts.clibase import (
    State,
    cli,
    emit_json,
    fail,
    human_size,
    open_repo,
    optional_remote,
    pass_state,
    remote_option,
)


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

    Every cached object is re-hashed; corrupt ones are dropped from the cache (the next
    pull fetches them again). With --remote, every object referenced by a version,
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


