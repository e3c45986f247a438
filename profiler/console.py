"""What every pxnas command does at its edge: one line on stderr and a clear exit status."""

from __future__ import annotations

import signal
import sys
import warnings

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
        # Libraries' warnings are held back until the command succeeds: a refused input gets its
        # one line, not a library's chatter about the same bad file.
        with warnings.catch_warnings(record=True) as held:
            _run(group, prog, argv)
    finally:
        # The command has ended: a SIGTERM now (a launcher stopping its processes, say) ends the
        # process as it ends any program, not as an interruption raised in exit handlers.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    for w in held:
        warnings.showwarning(w.message, w.category, w.filename, w.lineno)


def _run(group: click.Command, prog: str, argv) -> None:
    try:
        code = group.main(args=argv, prog_name=prog, standalone_mode=False)
    except (KeyboardInterrupt, click.exceptions.Abort):
        click.echo(f"{prog}: interrupted; finished work is kept (rerun with --resume)", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.exceptions.NoArgsIsHelpError as exc:
        # Bare `pxprof`: the help is what was asked for, not an error.
        click.echo(exc.ctx.get_help())
        sys.exit(0)
    except click.ClickException as exc:
        click.echo(f"{prog}: error: {exc.format_message()}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    except UserError as exc:
        click.echo(f"{prog}: error: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    except ToolError as exc:
        click.echo(f"{prog}: failed: {exc}", err=True)
        sys.exit(EXIT_TOOL)
    if code:
        sys.exit(code)
