"""The `gart` command: click commands that parse arguments and call one API function each.

The commands live in cli_* modules by subject; importing them here registers them on the
one group, and `main` turns every expected failure into one line and an exit code."""

from __future__ import annotations

import gc
import sys

import click

from gitartifacts import (  # noqa: F401 - registers the commands
    cli_drafts,
    cli_git,
    cli_integrity,
    cli_remote,
    cli_runs,
    cli_versions,
    cli_work,
    errors,
)
from gitartifacts.clibase import _add_quiet_everywhere, cli, fail

__all__ = ["cli", "main"]


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


