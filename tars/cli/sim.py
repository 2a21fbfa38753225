"""``tars sim``: one loopback emulator in the foreground, for trying things by hand.

    tars sim gemini [--port N]    # Gemini Live + REST over TLS (the model repeats what it hears)
    tars sim twilio [--port N]    # Twilio REST, webhooks, TwiML and media streams

Each prints its URLs and credentials and runs on 127.0.0.1 until Ctrl-C.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from tars.cli import errors, output

app = typer.Typer(
    help="Run one loopback emulator (Gemini or Twilio) in the foreground for manual testing.",
    no_args_is_help=True,
)

PortOpt = Annotated[int, typer.Option("--port", min=0, max=65535, help="Port on 127.0.0.1 (0: a free one).")]


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="sim")


@app.command("gemini")
def gemini(
    port: PortOpt = 0,
    api_key: Annotated[str, typer.Option("--api-key", help="The API key clients must send.")] = "test-key",
    realtime: Annotated[
        bool, typer.Option("--realtime/--fast", help="Send the model's speech in real time, or as fast as possible.")
    ] = True,
) -> None:
    """The Gemini emulator: Live API websocket and REST, over TLS with its own CA.

    The model greets, repeats what it hears and acknowledges tool results.
    """
    from tars.emulators.gemini.emulator import GeminiEmulator

    emulator = GeminiEmulator(api_key=api_key, realtime=realtime, port=port)

    def ready() -> None:
        lines = [
            ("Live API", emulator.ws_url),
            ("REST", f"{emulator.base_url}/v1beta/models/MODEL:generateContent"),
            ("Models", ", ".join(sorted(emulator.models.models))),
            ("API key", api_key),
            ("CA file", emulator.ca_file),
        ]
        _banner(
            "Gemini emulator",
            lines,
            [
                "google-genai: " + " ".join(f"{k}={v}" for k, v in emulator.env().items() if k.isupper()),
                f"tars serve: model.base_url: {emulator.base_url} in tars.yaml, "
                f"TARS_GEMINI_CA_FILE={emulator.ca_file}, GEMINI_API_KEY={api_key}",
            ],
        )

    _serve(emulator, ready)


@app.command("twilio")
def twilio(
    port: PortOpt = 0,
    account_sid: Annotated[str, typer.Option("--account-sid", help="The account SID clients authenticate with.")] = "AC"
    + "0" * 32,
    auth_token: Annotated[
        str, typer.Option("--auth-token", help="The auth token; webhooks are signed with it.")
    ] = "test-token",
    realtime: Annotated[
        bool,
        typer.Option("--realtime/--fast", help="Ring, play and stream audio in real time, or as fast as possible."),
    ] = True,
) -> None:
    """The Twilio emulator: REST API, signed webhooks, TwiML and media streams.

    Calls created through its REST API run their TwiML against your webhooks.

    The party who answers stays silent; messages are kept, not sent.
    """
    from tars.emulators.twilio.emulator import TwilioEmulator

    emulator = TwilioEmulator(account_sid=account_sid, auth_token=auth_token, realtime=realtime, port=port)

    def ready() -> None:
        _banner(
            "Twilio emulator",
            [
                ("REST API", f"{emulator.base_url}/2010-04-01/Accounts/{account_sid}"),
                ("Account SID", account_sid),
                ("Auth token", auth_token),
            ],
            [
                f'twilio-python: Client(account_sid, auth_token); client.api.base_url = "{emulator.base_url}"',
                f"tars serve: telephony.api_base_url: {emulator.base_url} in tars.yaml, "
                f"TWILIO_ACCOUNT_SID={account_sid}, TWILIO_AUTH_TOKEN={auth_token}",
            ],
        )

    _serve(emulator, ready)


def _banner(title: str, rows: list[tuple[str, str]], hints: list[str]) -> None:
    out, esc = output.out, output.escape
    out.print(f"[green]{title}[/] running on 127.0.0.1 (Ctrl-C stops it)")
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        out.print(f"  {esc(key.ljust(width))}  {esc(value)}")
    for hint in hints:
        out.print(f"  [dim]{esc(hint)}[/]")
    out.file.flush()


def _serve(emulator: Any, ready: Any) -> None:
    """Run ``emulator`` until SIGINT/SIGTERM, then stop it cleanly; exit 130 on Ctrl-C."""
    import asyncio
    import contextlib
    import signal

    stopped_by: list[int] = []

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def stop_on(sig: int) -> None:
            stopped_by.append(sig)
            stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop_on, sig)
        try:
            await emulator.start()
        except OSError as exc:
            with contextlib.suppress(Exception):
                await emulator.stop()
            raise errors.UserError(
                f"cannot listen on 127.0.0.1: {exc.strerror or exc}", "pick another --port, or --port 0 for a free one"
            ) from None
        try:
            ready()
            await stop.wait()
        finally:
            await emulator.stop()
            output.err.print("[dim]stopped[/]")

    asyncio.run(main())
    if stopped_by and stopped_by[0] == signal.SIGINT:
        raise typer.Exit(errors.INTERRUPTED)
