"""``tars send "…"``: text TARS as the owner — through the running `tars serve` (the real text
model, every tool, goal calls placed for real), or ``--simulate``: here and offline."""

from __future__ import annotations

from typing import Annotated

import typer

from tars.cli import context, errors, output

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
SimulateOpt = Annotated[
    bool,
    typer.Option(
        "--simulate", help="Offline: the emulated text model and this project's store, no server, nothing placed."
    ),
]


def register(root: typer.Typer) -> None:
    root.command("send")(send)


def send(
    ctx: typer.Context,
    message: Annotated[str, typer.Argument(help="What you would text TARS, e.g. 'what reminders do I have?'.")],
    simulate: SimulateOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Text TARS as the owner: the running `tars serve` answers with your tools (--simulate: offline).

    A follow-up continues the conversation until it has been idle texts.idle_seconds."""
    if not message.strip():
        raise errors.UserError("the message is empty", 'say what you want, e.g. tars send "what reminders do I have?"')
    project = context.load(ctx)
    if simulate:
        sent = _simulated(project, message.strip())
    else:
        from tars.cli.call import api_client

        sent = api_client(project).post("/api/texts", {"message": message.strip()})
    if as_json:
        output.print_json(sent)
        return
    for tool in sent["tools"]:
        mark = "" if tool["allowed"] else " (refused)"
        output.line(f"[dim]  tool {output.escape(tool['name'])}{mark}[/]")
    output.line(f"[bold]{output.escape(project.persona.name)}[/]  {output.escape(sent['answer'])}")
    output.line(f"[dim]Stored as text session {sent['session_id']}: tars calls show {sent['session_id']}[/]")


def _simulated(project: object, message: str) -> dict[str, object]:
    import asyncio

    from tars.cli.simulate import QuietLogs
    from tars.scenarios.texting import send_locally

    with QuietLogs(False):
        return asyncio.run(send_locally(project, message)).to_json()  # type: ignore[arg-type]
