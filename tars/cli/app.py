"""The ``tars`` command: one Typer app, one module per command group.

Heavy libraries (pipecat, google-genai, twilio, fastapi, sqlmodel) are imported inside
the commands that need them, never here, so ``tars --help`` and ``tars validate`` answer
at once. A lint rule (ruff TID253) and a test keep it that way.

Command modules are imported lazily too: ``COMMANDS`` names each command's module and its
one-line help, so ``tars --help`` lists every command without importing any of them, and
``tars remind add`` imports ``tars.cli.remind`` alone. tests/cli/test_cli_lazy.py checks
the table against the commands the modules really register.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from typer import _click as click
from typer.core import TyperCommand, TyperGroup, TyperOption

from tars import __version__
from tars.cli import errors
from tars.errors import UserError

#: name → (module whose ``register(app)`` adds it, its one-line help as ``tars --help`` shows it).
#: In the order ``tars --help`` lists them (as Typer did: commands, then groups).
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("tars.cli.init", "Create a TARS project from the example. Existing files are never overwritten."),
    "validate": ("tars.cli.validate", "Check tars.yaml, personas/ and playbooks/: YAML, schemas and cross-references."),
    "graph": ("tars.cli.graph", "Show how playbooks, steps, roles and tools connect."),
    "serve": (
        "tars.cli.serve",
        "Answer calls to the TARS number: Twilio webhooks in, one Gemini Live pipeline per call.",
    ),
    "call": ("tars.cli.call", "Call someone on your behalf, following a playbook, and report what was achieved."),
    "simulate": (
        "tars.cli.simulate",
        "Play scripted calls against this project, offline: transcript and ✓/✗ per expectation.",
    ),
    "send": (
        "tars.cli.send",
        "Text TARS as the owner, offline: your role and tools, the emulated text model, this project's store.",
    ),
    "test": ("tars.cli.test", "Play each playbook's scenarios offline and check what they expect: a pass/fail table."),
    "config": ("tars.cli.config", "Inspect the resolved configuration."),
    "contacts": (
        "tars.cli.contacts",
        "The people TARS knows: numbers, birthdays and roles (what they may ask TARS for).",
    ),
    "remind": (
        "tars.cli.remind",
        "Reminders in plain words: 'tomorrow 2pm', 'in 20 minutes', 'every weekday at 9'.",
    ),
    "persona": (
        "tars.cli.persona",
        "Who TARS is on the phone: list, show (--rendered: what the model is told), set, use, history.",
    ),
    "calls": ("tars.cli.calls", "Calls TARS made and answered: what was said, which tools ran, how it went."),
    "sessions": (
        "tars.cli.sessions",
        "The calls live now, on every tars serve sharing this database: who, why, which step, which server.",
    ),
    "security": (
        "tars.cli.security",
        "The requests TARS refused (forged webhooks, used stream parameters, PIN lockouts, wrong API tokens), "
        "latest first.",
    ),
    "sim": ("tars.cli.sim", "Run one loopback emulator (Gemini or Twilio) in the foreground for manual testing."),
}


class _LazyGroup(TyperGroup):
    """A group whose sub-commands are imported when one is run (or asked for by name), not
    when the group is built: listing them in ``--help`` uses ``COMMANDS`` alone."""

    lazy: dict[str, tuple[str, str]] = {}

    def __init__(self, **attrs: Any):
        super().__init__(**attrs)
        self._listing = False
        plain_help(self)

    def list_commands(self, ctx: Any) -> list[str]:
        return [*self.lazy, *(name for name in self.commands if name not in self.lazy)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            if self._listing:  # --help: the name and the line from the table will do
                return TyperCommand(name=cmd_name, help=self.lazy[cmd_name][1])
            self.commands[cmd_name] = load_command(cmd_name)
        return self.commands.get(cmd_name)

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        try:
            return self._click_resolve_command(ctx, args)
        except click.exceptions.UsageError as exc:  # "did you mean", over every command
            if self.suggest_commands and args:
                from difflib import get_close_matches

                matches = get_close_matches(args[0], self.list_commands(ctx))
                if matches:
                    exc.message = f"{exc.message.rstrip('.')}. Did you mean {', '.join(map(repr, matches))}?"
            raise

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


#: What the option parser says (pydantic's words) → what TARS says.
_PLAIN_WORDS = (
    (r"^Value error, ", ""),
    (r"Input should be a valid integer(, unable to parse string as an integer)?", "expected a whole number"),
    (r"Input should be a valid number(, unable to parse string as a number)?", "expected a number"),
    (r"Input should be greater than or equal to (\S+)", r"must be at least \1"),
    (r"Input should be less than or equal to (\S+)", r"must be at most \1"),
    (r"Input should be greater than (\S+)", r"must be more than \1"),
    (r"Input should be less than (\S+)", r"must be less than \1"),
    (r"Input should be ", "must be "),
)


def plain_words(message: str) -> str:
    """A parameter error in the words TARS uses elsewhere, not the option parser's."""
    import re

    for pattern, replacement in _PLAIN_WORDS:
        message = re.sub(pattern, replacement, message)
    return message


def load_command(name: str) -> click.Command:
    """Import the module of command ``name`` and build its click command (as Typer would)."""
    import importlib

    module = importlib.import_module(COMMANDS[name][0])
    holder = typer.Typer(rich_markup_mode="rich", add_completion=False)
    module.register(holder)
    command = typer.main.get_group(holder).commands[name]
    plain_help(command)
    return command


#: How ``--help`` names a value, in the user's words rather than Python's (``<str>``, ``<bool>``).
_VALUE_WORDS = {"str": "TEXT", "int": "INTEGER", "float": "NUMBER", "Path": "PATH", "path": "PATH",
                "file": "FILE", "directory": "DIR", "int range": "INTEGER", "float range": "NUMBER"}  # fmt: skip


def plain_help(command: Any) -> None:
    """Say what each option takes as click does (TEXT, INTEGER, PATH…, nothing for a flag),
    for ``command`` and its sub-commands."""

    def words(param: Any, shown: Any) -> Any:
        def display(ctx: Any) -> str | None:
            if getattr(param, "is_flag", False):
                return None
            if param.metavar is not None:
                return param.metavar if isinstance(param, TyperOption) else None
            label = str(shown(ctx)).strip("<>")
            many = label.startswith("list[") and label.endswith("]")
            label = label[5:-1] if many else label
            label = _VALUE_WORDS.get(label, label)
            return f"{label}..." if many or param.nargs != 1 else label

        return display

    for param in command.params:
        param.display_type_rich = words(param, param.display_type)
    help_option = command.get_help_option

    def plain_help_option(ctx: Any) -> Any:
        option = help_option(ctx)
        if option is not None:
            option.display_type_rich = words(option, option.display_type)
        return option

    command.get_help_option = plain_help_option
    for sub in getattr(command, "commands", {}).values():
        plain_help(sub)


class _ErrorBoundary(_LazyGroup):
    """Every command runs inside this: user errors exit 1 with the fix, crashes exit 3 with a log."""

    lazy = COMMANDS

    def parse_args(self, ctx: Any, args: list[str]) -> Any:
        ctx.meta["tars.argv"] = list(args)
        return super().parse_args(ctx, args)

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
            if "--json" in ctx.meta.get("tars.argv", ()):  # scripts read the error from stdout too
                output.print_json({"ok": False, "error": str(exc), "hint": exc.hint, "exit_code": exc.code})
            output.err.print(f"[red]Error:[/] {output.escape(str(exc))}")
            if exc.hint:
                output.err.print(f"[dim]{output.escape(exc.hint)}[/]")
            raise typer.Exit(exc.code) from None
        except click.exceptions.BadParameter as exc:
            exc.message = plain_words(exc.message)
            raise
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


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
