"""``tars init [DIR]``: scaffold a project that passes ``tars validate`` as it is."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tars.cli import output
from tars.errors import UserError


def init(
    directory: Annotated[Path, typer.Argument(help="Folder for the new project (created if missing).")] = Path("."),
    name: Annotated[str | None, typer.Option(help="Your name, as the assistant says it.")] = None,
    phone: Annotated[str | None, typer.Option(help="Your mobile number, E.164 (+447700900123).")] = None,
    timezone: Annotated[str | None, typer.Option(help="Your IANA timezone, e.g. Europe/London.")] = None,
) -> None:
    """Create a TARS project from the example. Existing files are never overwritten."""
    from tars.scaffold import OwnerDetails, scaffold

    if phone is not None:
        import re

        if not re.fullmatch(r"\+[1-9][0-9]{6,14}", phone):
            raise UserError(
                f"'{phone}' is not an E.164 phone number",
                "Write it like +447700900123: a '+', the country code, then digits.",
            )
    if timezone is not None:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise UserError(
                f"'{timezone}' is not a known timezone", "Use an IANA name such as Europe/London."
            ) from None
    if directory.exists() and not directory.is_dir():
        raise UserError(f"{directory} exists and is not a folder")
    report = scaffold(directory, OwnerDetails(name, phone, timezone))
    for rel in report.created:
        output.out.print(f"[green]created[/] {directory / rel}")
    for rel in report.kept:
        output.out.print(f"[yellow]kept[/]    {directory / rel} (already there; not overwritten)")
    where = "" if directory.resolve() == Path.cwd() else f" --project {directory}"
    output.out.print(
        f"\nNext: edit {directory / 'tars.yaml'} (owner, numbers), put secrets in .env "
        f"(see .env.example), then run [bold]tars{where} validate[/]."
    )


def register(app: typer.Typer) -> None:
    app.command("init")(init)
