"""What every pxnas command does at its edge: one line on stderr and a clear exit status."""

from __future__ import annotations

import signal
import sys

import click

from .errors import ToolError, UserError

EXIT_BAD_INPUT = 2
EXIT_TOOL = 1
EXIT_INTERRUPTED = 130


def _terminate(signum, frame):
    # A kill is handled like Ctrl-C, so the same code path keeps finished work.
    raise KeyboardInterrupt


def run(group: click.Command, prog: str, argv=None) -> None:
    signal.signal(signal.SIGTERM, _terminate)
    try:
        code = group.main(args=argv, prog_name=prog, standalone_mode=False)
    except (KeyboardInterrupt, click.exceptions.Abort):
        click.echo(f"{prog}: interrupted; finished work is kept (rerun with --resume)", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as exc:
        click.echo(f"{prog}: error: {exc.format_message()}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    except UserError as exc:
        click.echo(f"{prog}: error: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    except ToolError as exc:
        click.echo(f"{prog}: failed: {exc}", err=True)
        sys.exit(EXIT_TOOL)
    sys.exit(code or 0)
