"""``tars send "…"``: text TARS as the owner, here and offline."""

from __future__ import annotations

from typing import Annotated

import typer

from tars.cli import context, errors, output

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def register(root: typer.Typer) -> None:
    root.command("send")(send)


def send(
    ctx: typer.Context,
    message: Annotated[str, typer.Argument(help="What you would text TARS, e.g. 'what reminders do I have?'.")],
    as_json: JsonOpt = False,
) -> None:
    """Text TARS as the owner, offline: your role and tools, the emulated text model, this project's store."""
    import asyncio

    from tars.cli.simulate import QuietLogs
    from tars.sim.texting import send_locally

    if not message.strip():
        raise errors.UserError("the message is empty", 'say what you want, e.g. tars send "what reminders do I have?"')
    project = context.load(ctx)
    with QuietLogs(False):
        sent = asyncio.run(send_locally(project, message.strip()))
    if as_json:
        output.print_json(sent.to_json())
        return
    for tool in sent.exchange.tools:
        mark = "" if tool["allowed"] else " (refused)"
        output.line(f"[dim]  tool {output.escape(tool['name'])}{mark}[/]")
    output.line(f"[bold]{output.escape(project.persona.name)}[/]  {output.escape(sent.exchange.answer)}")
    output.line(f"[dim]Stored as text session {sent.session_id}: tars calls show {sent.session_id}[/]")
