"""The ``tars`` command: one Typer app, one module per command group.

Heavy libraries (pipecat, google-genai, twilio, fastapi, sqlmodel) are imported inside
the commands that need them, never here, so ``tars --help`` and ``tars validate`` answer
at once. A lint rule (ruff TID253) and a test keep it that way.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from tars import __version__
from tars.cli import errors
from tars.cli.errors import UserError


class _ErrorBoundary(TyperGroup):
    """Every command runs inside this: user errors exit 1 with the fix, crashes exit 3 with a log."""

    def invoke(self, ctx: Any) -> Any:
        from tars.cli import output
        from tars.config.diagnostics import ConfigError

        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            root = ctx.obj.get("root") if isinstance(ctx.obj, dict) else None
            output.show_diagnostics(exc.diagnostics, root, output.err)
            raise typer.Exit(errors.USER_ERROR) from None
        except UserError as exc:
            output.err.print(f"[red]Error:[/] {output.escape(str(exc))}")
            if exc.hint:
                output.err.print(f"[dim]{output.escape(exc.hint)}[/]")
            raise typer.Exit(exc.code) from None
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:
            if type(exc).__module__.startswith(("click.", "typer.")):
                raise
            project = ctx.obj.get("project") if isinstance(ctx.obj, dict) else None
            log = errors.write_crash_log(exc, sys.argv[1:], project)
            output.err.print(f"[red]TARS crashed:[/] {type(exc).__name__}: {output.escape(str(exc))}")
            output.err.print(f"A crash log with the details is at {log}; please attach it to a bug report.")
            raise typer.Exit(errors.CRASH) from None


app = typer.Typer(
    name="tars",
    cls=_ErrorBoundary,
    help="TARS: your phone assistant, declared in YAML.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tars {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    project: Annotated[
        Path | None,
        typer.Option(
            "--project",
            "-p",
            help="The project folder (else $TARS_PROJECT, else the nearest tars.yaml upwards).",
            show_default=False,
        ),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """TARS answers your phone and makes calls for you. Everything it is lives in YAML."""
    from tars.cli import output

    output.reset_consoles()
    ctx.obj = {"project": project, "root": None}


def _register() -> None:
    from tars.cli import config, init, validate

    app.command("init")(init.init)
    app.command("validate")(validate.validate)
    app.add_typer(config.app, name="config")
    for name in ("graph", "contacts", "remind", "calls", "serve", "call", "simulate", "sim", "test"):
        _try_register(name)


def _try_register(name: str) -> None:
    """Command groups from later modules register themselves if present."""
    import importlib

    try:
        module = importlib.import_module(f"tars.cli.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"tars.cli.{name}":
            return
        raise
    module.register(app)


_register()


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
