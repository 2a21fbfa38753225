"""``tars serve``: answer calls (and, later, run reminders) until stopped."""

from __future__ import annotations

from typing import Annotated

import typer

from tars.cli import context, output
from tars.cli.logs import send_loguru_to_stderr
from tars.errors import UserError


def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Interface to listen on (default: server.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (default: server.port).")] = None,
    public_url: Annotated[
        str | None,
        typer.Option(
            "--public-url", help="The https:// URL Twilio reaches this server at (default: telephony.public_url)."
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Answer calls to the TARS number: Twilio webhooks in, one Gemini Live pipeline per call."""
    import asyncio
    import logging

    project = context.load(ctx)
    from tars.endpoints import Endpoints

    endpoints = Endpoints.from_project(project)
    missing = endpoints.missing()
    if missing:
        raise UserError(
            "tars serve needs credentials that are not set: " + ", ".join(missing),
            "Put them in the environment or in .env beside tars.yaml (see .env.example); "
            "to try TARS without them, run `tars simulate` or `tars call … --simulate`.",
        )
    settings = project.section("server")
    public = public_url or project.section("telephony").get("public_url")
    if not public or not str(public).startswith(("https://", "http://")):
        raise UserError("no public URL for Twilio to call", "set telephony.public_url or pass --public-url https://…")
    from tars.calls.models import model_problems

    problems = model_problems(project.section("model"), endpoints)
    if problems:
        raise UserError(
            " ".join(problems),
            "Use a model name your key can use (see https://ai.google.dev/gemini-api/docs/models).",
        )
    _quiet_pipecat(log_level)
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from tars.server.run import running

    async def main() -> int | None:
        async with running(
            project,
            endpoints,
            host=host or settings.get("host", "127.0.0.1"),
            port=port or int(settings.get("port", 8080)),
            public_base=public,
            log_level=log_level,
        ) as server:
            output.err.print(
                f"[green]TARS is answering[/] on {server.local_url} (public: {public}); "
                f"point the Twilio number's voice webhook at {public}/twilio/voice"
            )
            await _until_stopped(server)
            return server.uvicorn.stopped_by

    import signal

    stopped_by = asyncio.run(main())
    if stopped_by == signal.SIGINT:
        raise typer.Exit(130)


async def _until_stopped(server: object) -> None:
    import asyncio

    while not server.uvicorn.should_exit:  # type: ignore[attr-defined]
        await asyncio.sleep(0.2)


def _quiet_pipecat(level: str) -> None:
    """pipecat logs through loguru at DEBUG by default; follow our level instead."""

    def wanted(record: dict) -> bool:  # type: ignore[type-arg]
        # pipecat 1.14 logs an ERROR for the close handshake of every call Twilio hangs up.
        return "exception while closing the websocket" not in record["message"]

    send_loguru_to_stderr("WARNING" if level.lower() in ("info", "warning") else level.upper(), filter=wanted)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
