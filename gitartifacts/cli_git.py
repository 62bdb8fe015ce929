"""`gart` commands git runs: install-hooks, and the hook and merge-driver entry points."""

from __future__ import annotations

import sys

import click

from gitartifacts.clibase import (
    State,
    cli,
    emit_json,
    pass_state,
)


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


