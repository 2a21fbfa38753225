"""``tars serve``: answer calls (and, later, run reminders) until stopped."""

from __future__ import annotations

from typing import Annotated

import typer

from tars.cli import context, output
from tars.errors import UserError

LOG_LEVELS = ("trace", "debug", "info", "warning", "error")


def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Interface to listen on (default: server.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on, 1-65535 (default: server.port).")] = None,
    public_url: Annotated[
        str | None,
        typer.Option(
            "--public-url", help="The https:// URL Twilio reaches this server at (default: telephony.public_url)."
        ),
    ] = None,
    log_level: Annotated[
        str,
        typer.Option(
            help="trace, debug, info, warning or error. Secrets are redacted at every level; what callers say "
            "(the libraries' per-frame lines) is logged only at trace."
        ),
    ] = "info",
    log_format: Annotated[
        str,
        typer.Option(help="text (for a person) or json (one object per line: time, level, logger, message)."),
    ] = "text",
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="Server processes sharing the port and the database; any of them may take any call.",
        ),
    ] = 1,
) -> None:
    """Answer calls to the TARS number: Twilio webhooks in, one Gemini Live pipeline per call."""
    import asyncio
    import logging

    if log_level.lower() not in LOG_LEVELS:
        raise UserError(f"--log-level {log_level!r} is not a log level", f"use one of {', '.join(LOG_LEVELS)}", code=2)
    log_level = log_level.lower()
    if log_format.lower() not in ("text", "json"):
        raise UserError(f"--log-format {log_format!r} is not a log format", "use text or json", code=2)
    log_format = log_format.lower()
    if port is not None and not 1 <= port <= 65535:
        raise UserError(f"--port {port} is not a port number", "ports run from 1 to 65535", code=2)
    project = context.load(ctx)
    from tars.logs import install

    # Before anything imports pipecat (its banner, its per-call notices) or opens a socket.
    logging.basicConfig(level=_std_level(log_level), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install(log_level, project.secrets, json_lines=log_format == "json")
    endpoints = _endpoints(project)
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
    host = host or settings.get("host", "127.0.0.1")
    port = port or int(settings.get("port", 8080))
    _check_port_free(host, port)
    from tars.calls.models import model_problems

    problems = model_problems(project.section("model"), endpoints)
    if problems:
        raise UserError(
            " ".join(problems),
            "Use a model name your key can use (see https://ai.google.dev/gemini-api/docs/models).",
        )
    from tars import telemetry

    telemetry.install(project.section("telemetry"))
    if workers > 1:
        _serve_workers(project, host, port, str(public), log_level, log_format, workers)
        return
    from tars.server.run import running

    async def main() -> int | None:
        async with running(
            project,
            endpoints,
            host=host,
            port=port,
            public_base=public,
            watch=True,
        ) as server:
            output.err.print(
                f"[green]TARS is answering[/] on {server.local_url} (public: {public}); "
                f"point the Twilio number's voice webhook at {public}/twilio/voice; "
                f"the web view is at {server.local_url}/ (sign in with the API token)"
            )
            await _until_stopped(server)
            return server.uvicorn.stopped_by

    import signal

    try:
        stopped_by = asyncio.run(main())
    except SystemExit as exc:  # uvicorn exits when it cannot listen (taken after our check)
        raise UserError(
            f"tars serve could not listen on {host}:{port} (uvicorn exited with {exc.code})",
            "the log above says why; pick another port with --port",
        ) from None
    if stopped_by == signal.SIGINT:
        raise typer.Exit(130)


def _serve_workers(
    project: object, host: str, port: int, public: str, log_level: str, log_format: str, workers: int
) -> None:
    """``--workers N``: N server processes on one socket (``tars.server.workers``)."""
    import signal

    from tars.server.workers import WorkerOptions, Workers, listen

    try:
        sock = listen(host, port)
    except OSError as exc:
        raise UserError(
            f"tars serve could not listen on {host}:{port}: {exc.strerror}", "pick another --port"
        ) from None
    options = WorkerOptions(str(project.root), public, log_level, log_format)  # type: ignore[attr-defined]
    output.err.print(
        f"[green]TARS is answering[/] on http://{host}:{port} with {workers} workers (public: {public}); "
        f"point the Twilio number's voice webhook at {public}/twilio/voice; "
        f"the web view is at http://{host}:{port}/ (sign in with the API token)"
    )
    stopped_by = Workers(options, sock, workers).run()
    if stopped_by == signal.SIGINT:
        raise typer.Exit(130)


def _endpoints(project: object) -> object:
    """The project's endpoints, with a missing or unreadable ``TARS_GEMINI_CA_FILE`` as a sentence."""
    import os
    import ssl
    from pathlib import Path

    from tars.endpoints import Endpoints

    ca_file = os.environ.get("TARS_GEMINI_CA_FILE")
    fix = "point TARS_GEMINI_CA_FILE at a PEM certificate file, or unset it to use the system's certificates"
    if ca_file and not Path(ca_file).is_file():
        raise UserError(f"TARS_GEMINI_CA_FILE names {ca_file}, which is not a file", fix)
    try:
        return Endpoints.from_project(project)  # type: ignore[arg-type]
    except (ssl.SSLError, OSError) as exc:
        if not ca_file:
            raise
        reason = getattr(exc, "reason", None) or exc.strerror or type(exc).__name__
        raise UserError(f"TARS_GEMINI_CA_FILE {ca_file} is not a usable certificate file ({reason})", fix) from None


def _check_port_free(host: str, port: int) -> None:
    """Fail with a sentence, before anything starts, when another program listens on the port."""
    import errno
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise UserError(f"cannot listen on {host!r}: {exc.strerror}", "check server.host or --host") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn's own socket does
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise UserError(
                    f"port {port} on {host} is already in use by another program",
                    "stop the other program, or pick another port with --port (or server.port in tars.yaml)",
                ) from None
            raise UserError(
                f"tars serve cannot listen on {host}:{port} ({exc.strerror})",
                "pick another port with --port, or another interface with --host",
            ) from None


async def _until_stopped(server: object) -> None:
    import asyncio

    while not server.uvicorn.should_exit:  # type: ignore[attr-defined]
        await asyncio.sleep(0.2)


def _std_level(level: str) -> str:
    return "DEBUG" if level.lower() == "trace" else level.upper()


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
