"""`gart` commands on runs and lineage: run, repro, lineage, runs."""

from __future__ import annotations

import sys

import click

from gitartifacts import errors
from gitartifacts.clibase import (
    State,
    cli,
    emit_json,
    open_repo,
    pass_state,
)


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


